// Scanning through the generated Kotlin bindings on the JVM, as the Android shell calls it: a luma
// plane with row padding (what CameraX's ImageProxy.planes[0] holds), a photo file's bytes, and
// the scanned text verified against a trust file. The fixtures are a machine label the project's
// CLI issued (kotlin-tests/fixtures/README.md says how).

package org.weldguard.core

import java.io.File
import javax.imageio.ImageIO
import kotlinx.coroutines.runBlocking
import kotlin.test.Test
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNotNull
import kotlin.test.assertTrue

/** 2026-12-01 09:00 China time: a day after the label was issued. */
private const val NOW: Long = 1_796_086_800L

private fun fixture(name: String): File {
    val dir = System.getProperty("weldguard.fixtures") ?: error("-Dweldguard.fixtures is not set")
    return File(dir, name)
}

private val labelText: String by lazy { fixture("machine-label.txt").readText().trim() }
private val trustJson: String by lazy { fixture("trust.json").readText() }

/** The label photo as a camera would hand it over: one luma byte per pixel, rows `pad` bytes
 * longer than the width and filled with noise, the last row stopping at the width. */
private class CameraFrame(val luma: ByteArray, val width: Int, val height: Int, val rowStride: Int)

private fun cameraFrame(pad: Int): CameraFrame {
    val image = ImageIO.read(fixture("machine-label.png")) ?: error("the label PNG does not decode")
    val (w, h) = image.width to image.height
    val stride = w + pad
    val luma = ByteArray(stride * (h - 1) + w)
    for (y in 0 until h) {
        for (x in 0 until stride) {
            val i = y * stride + x
            if (i >= luma.size) break
            luma[i] = if (x < w) {
                val rgb = image.getRGB(x, y)
                val (r, g, b) = Triple((rgb shr 16) and 0xff, (rgb shr 8) and 0xff, rgb and 0xff)
                ((299 * r + 587 * g + 114 * b) / 1000).toByte()
            } else {
                ((x * 31 + y * 17) and 0xff).toByte()
            }
        }
    }
    return CameraFrame(luma, w, h, stride)
}

class ScanTest {
    @Test
    fun aCameraFrameWithRowPaddingScansAndTheLabelVerifies() {
        val frame = cameraFrame(pad = 32)
        for (mode in ScanMode.values()) {
            val codes = scanFrame(
                frame.luma, frame.width.toUInt(), frame.height.toUInt(), frame.rowStride.toUInt(), mode,
            )
            assertEquals(1, codes.size, "$mode")
            val code = codes.single()
            assertEquals(labelText, code.text)
            assertContentEquals(labelText.toByteArray(Charsets.UTF_8), code.bytes)
            assertEquals(10.toUByte(), code.version)
            assertEquals(QrEccLevel.Q, code.eccLevel)
            assertEquals(4, code.corners.size)
            for (corner in code.corners) {
                assertTrue(corner.x in 0f..frame.width.toFloat() && corner.y in 0f..frame.height.toFloat(), "$corner")
            }
            // Top-left, top-right, bottom-right, bottom-left: the order the shell draws in.
            val (tl, tr, br, bl) = code.corners
            assertTrue(tl.x < tr.x && bl.x < br.x && tl.y < bl.y && tr.y < br.y, "${code.corners}")

            val check = verifyCode(code.text!!, trustJson, NOW)
            assertTrue(check.valid, "${check.reason}")
            assertEquals(CodeKind.MACHINE_LABEL, check.kind)
            assertEquals("370983-DH-2024-000123", check.machine?.machineId)
        }
    }

    @Test
    fun theLabelIsNotValidBeforeItWasIssued() {
        val check = verifyCode(labelText, trustJson, NOW - 2 * 86_400)
        assertFalse(check.valid)
        assertEquals("code.not_yet_valid", check.reason?.code)
        assertTrue(check.reason!!.zh.isNotEmpty() && check.reason!!.en.isNotEmpty())
    }

    @Test
    fun aPhotoFileScansFromItsBytes() = runBlocking {
        // A suspend fun: the decoding runs on a thread of the library's own.
        val codes = scanImage(fixture("machine-label.png").readBytes(), ScanMode.PHOTO)
        assertEquals(listOf(labelText), codes.map { it.text })
    }

    @Test
    fun aFrameWithoutACodeIsAnEmptyList() {
        val blank = ByteArray(640 * 480) { 0x80.toByte() }
        assertEquals(emptyList(), scanFrame(blank, 640u, 480u, 640u, ScanMode.LIVE))
    }

    @Test
    fun badFramesAndFilesThrowTypedErrorsWithStableCodes() {
        fun expect(code: String, call: suspend () -> Unit) {
            val e = assertFailsWith<WeldGuardException.InvalidInput> { runBlocking { call() } }
            assertEquals(code, e.code)
            assertTrue(e.messageZh.any { it in '\u4e00'..'\u9fff' }, e.messageZh)
            assertTrue(e.messageEn.isNotEmpty())
        }
        expect("scan.empty_frame") { scanFrame(ByteArray(0), 0u, 0u, 0u, ScanMode.LIVE) }
        expect("scan.stride_too_small") { scanFrame(ByteArray(100), 10u, 10u, 9u, ScanMode.LIVE) }
        expect("scan.buffer_too_short") { scanFrame(ByteArray(99), 10u, 10u, 10u, ScanMode.LIVE) }
        expect("scan.too_large") { scanFrame(ByteArray(64), 20_000u, 20_000u, 20_000u, ScanMode.PHOTO) }
        expect("scan.unsupported_format") { scanImage("not a photo".toByteArray(), ScanMode.PHOTO) }
        val png = fixture("machine-label.png").readBytes()
        expect("scan.image_decode") { scanImage(png.copyOf(png.size / 2), ScanMode.PHOTO) }
    }
}
