// CameraX analyzer for scanning: lends the frame's Y plane (planes[0] of YUV_420_888, a direct
// buffer) with its row stride to the scan view model as it is, row padding included: the core
// reads the stride, and the plane crosses the FFI without a copy (`scan_frame_buffer`). The image
// stays open until the scan of it has finished, so the buffer is valid while the core reads it;
// the analyzer runs on its own executor, so waiting there keeps the UI thread free. Use with
// ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST; the view model drops frames that arrive while one is
// being read.

package org.weldguard.android

import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy
import java.nio.ByteBuffer
import kotlinx.coroutines.Job
import kotlinx.coroutines.runBlocking

class LumaAnalyzer(private val sink: FrameSink) : ImageAnalysis.Analyzer {
    /** Where frames go: e.g. `ScanToStartViewModel::onFrame` or `InspectorCheckViewModel::onFrame`.
     * Returns the scan's job (null when the frame was dropped). */
    fun interface FrameSink {
        fun onFrame(luma: ByteBuffer, width: Int, height: Int, rowStride: Int): Job?
    }

    override fun analyze(image: ImageProxy) {
        image.use {
            val plane = it.planes[0]
            val job = sink.onFrame(plane.buffer, it.width, it.height, plane.rowStride)
            if (job != null) runBlocking { job.join() }
        }
    }
}
