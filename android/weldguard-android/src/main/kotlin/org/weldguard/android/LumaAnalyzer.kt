// CameraX analyzer for scanning: hands the frame's Y plane (planes[0] of YUV_420_888) with its row
// stride to the scan view model as it is, row padding included (the core reads the stride; no
// repacking). Use with ImageAnalysis.STRATEGY_KEEP_ONLY_LATEST; the view model drops frames that
// arrive while one is being read.

package org.weldguard.android

import androidx.camera.core.ImageAnalysis
import androidx.camera.core.ImageProxy

class LumaAnalyzer(private val sink: FrameSink) : ImageAnalysis.Analyzer {
    /** Where frames go: e.g. `ScanToStartViewModel::onFrame` or `InspectorCheckViewModel::onFrame`. */
    fun interface FrameSink {
        fun onFrame(luma: ByteArray, width: Int, height: Int, rowStride: Int)
    }

    override fun analyze(image: ImageProxy) {
        image.use {
            val plane = it.planes[0]
            val buffer = plane.buffer
            val luma = ByteArray(buffer.remaining())
            buffer.get(luma)
            sink.onFrame(luma, it.width, it.height, plane.rowStride)
        }
    }
}
