// The view models against the core alone (no platform): scan to start from a photo and a camera
// frame with the core's refusal in the app's language, scan errors as UiError state, the permit
// walk-through on one phone, and the one error mapping.

package org.weldguard.app

import java.net.ServerSocket
import javax.imageio.ImageIO
import kotlin.test.Test
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.runBlocking
import org.weldguard.core.PermitPerson
import org.weldguard.core.Role
import org.weldguard.core.WeldGuardException

/** 2026-12-01 09:00 China time: a day after the fixture label was issued. */
private const val NOW: Long = 1_796_086_800L

private fun hasChinese(s: String) = s.any { it in '\u4e00'..'\u9fff' }

/** The label photo as CameraX hands a frame over: the Y plane with padded rows. */
private class Frame(val luma: ByteArray, val width: Int, val height: Int, val rowStride: Int)

private fun labelFrame(pad: Int): Frame {
    val image = ImageIO.read(fixture("machine-label.png")) ?: error("the label PNG does not decode")
    val (w, h) = image.width to image.height
    val stride = w + pad
    val luma = ByteArray(stride * h)
    for (y in 0 until h) for (x in 0 until w) {
        val rgb = image.getRGB(x, y)
        luma[y * stride + x] = ((299 * ((rgb shr 16) and 0xff) + 587 * ((rgb shr 8) and 0xff) + 114 * (rgb and 0xff)) / 1000).toByte()
    }
    return Frame(luma, w, h, stride)
}

class ViewModelsOfflineTest {
    private fun labelledSession(language: AppLanguage): WeldGuardSession {
        val session = newSession(clock = TestClock(NOW), language = language)
        session.device.setTrust(fixture("trust.json").readText(), NOW)
        return session
    }

    @Test
    fun scanToStartReadsThePhotoAndTheFrameAndShowsTheCoresRefusalInTheAppLanguage() = runBlocking {
        TestScope().use { t ->
            val session = labelledSession(AppLanguage.ZH)
            val vm = ScanToStartViewModel(session, t.scope, "site-370983-001")
            val png = fixture("machine-label.png").readBytes()
            vm.onImage(png).join()
            assertEquals(ScanToStartState.Step.SCAN_WELDER, vm.state.value.step, "${vm.state.value}")
            assertEquals("370983-DH-2024-000123", vm.state.value.machineId)
            // A machine label where the welder's code belongs: the core refuses, in Chinese.
            vm.onImage(png).join()
            val zh = vm.state.value
            assertEquals(ScanToStartState.Step.DECIDED, zh.step)
            val refusedZh = assertNotNull(zh.decision)
            assertFalse(refusedZh.allowed)
            assertTrue(refusedZh.reasons.isNotEmpty() && refusedZh.reasons.all(::hasChinese), "${refusedZh.reasons}")

            // The same in English, the label read from a live camera frame this time.
            session.language = AppLanguage.EN
            vm.reset()
            assertEquals(ScanToStartState(), vm.state.value)
            val frame = labelFrame(pad = 48)
            assertNotNull(vm.onFrame(frame.luma, frame.width, frame.height, frame.rowStride)).join()
            assertEquals(ScanToStartState.Step.SCAN_WELDER, vm.state.value.step, "${vm.state.value}")
            // The label still in the viewfinder: the next frame is not taken for the welder's code.
            // This time the frame is lent as the camera holds it: a direct buffer (no copy).
            val direct = java.nio.ByteBuffer.allocateDirect(frame.luma.size).put(frame.luma).flip()
            assertNotNull(vm.onFrame(direct, frame.width, frame.height, frame.rowStride)).join()
            assertEquals(frame.luma.size, direct.remaining(), "the camera's buffer is left as it was")
            assertEquals(ScanToStartState.Step.SCAN_WELDER, vm.state.value.step, "${vm.state.value}")
            assertNull(vm.state.value.decision)
            vm.onImage(png).join()
            val refusedEn = assertNotNull(vm.state.value.decision)
            assertFalse(refusedEn.allowed)
            assertEquals(refusedZh.reasonCodes, refusedEn.reasonCodes)
            assertTrue(refusedEn.reasons.none(::hasChinese), "${refusedEn.reasons}")
            assertTrue(refusedEn.reasons != refusedZh.reasons)
            session.close()
        }
    }

    @Test
    fun aFileThatIsNoPhotoIsAnErrorStateAndTheStepStays() = runBlocking {
        TestScope().use { t ->
            val session = labelledSession(AppLanguage.ZH)
            val vm = ScanToStartViewModel(session, t.scope, "site-1")
            vm.onImage("not a photo".toByteArray()).join()
            val error = assertNotNull(vm.state.value.error)
            assertEquals("scan.unsupported_format", error.code)
            assertEquals(UiErrorKind.INVALID_INPUT, error.kind)
            assertTrue(hasChinese(error.message), error.message)
            assertEquals(ScanToStartState.Step.SCAN_MACHINE, vm.state.value.step)
            // A bad frame shape too; a good photo then clears the error.
            vm.onFrame(ByteArray(99), 10, 10, 10)!!.join()
            assertEquals("scan.buffer_too_short", vm.state.value.error?.code)
            vm.onFrame(java.nio.ByteBuffer.allocateDirect(99), 10, 10, 10)!!.join()
            assertEquals("scan.buffer_too_short", vm.state.value.error?.code)
            vm.onImage(fixture("machine-label.png").readBytes()).join()
            assertNull(vm.state.value.error)
            assertEquals(ScanToStartState.Step.SCAN_WELDER, vm.state.value.step)

            val inspector = InspectorCheckViewModel(session, t.scope)
            inspector.onText(fixture("machine-label.txt").readText().trim()).join()
            val failed = assertIs<InspectorCheckState.Phase.Failed>(inspector.state.value.phase)
            assertEquals("code.not_a_welder_code", failed.error.code)
            // Frames are read only while the screen scans.
            assertNull(inspector.onFrame(ByteArray(100), 10, 10, 10))
            inspector.reset()
            assertNotNull(inspector.onFrame(ByteArray(100), 10, 10, 10)).join()
            assertEquals(InspectorCheckState.Phase.Scanning, inspector.state.value.phase)
            session.close()
        }
    }

    @Test
    fun aPermitWalksFromDraftToClosedOnOnePhone() = runBlocking {
        TestScope().use { t ->
            val clock = TestClock()
            val session = newSession(clock = clock, language = AppLanguage.ZH)
            val vm = PermitWalkthroughViewModel(session, t.scope)
            val closed = walkPermit(
                session, clock, vm,
                Signers(JcaKey(), JcaKey(), JcaKey(present = true), JcaKey()),
                permitId = "0193a1b2-0000-7000-8000-0000000a0d01", siteId = "site-370983-001",
                machineId = "370983-DH-2024-000777", welder = PermitPerson("李四", "T370983199001011233"),
            )
            assertEquals(4, closed.permit!!.signatures.map { it.signer.id }.toSet().size)
            session.close()
        }
    }

    @Test
    fun everyErrorMapsToOneUiErrorInTheAppLanguage() {
        val cases = listOf(
            WeldGuardException.InvalidInput("a.b", "中文", "english") to UiErrorKind.INVALID_INPUT,
            WeldGuardException.Storage("store.full", "存储已满", "storage full") to UiErrorKind.STORAGE,
            WeldGuardException.Sync("sync.network", "网络错误", "network", true) to UiErrorKind.SYNC,
            WeldGuardException.Signing("signer.failed", "签名失败", "signing failed") to UiErrorKind.SIGNING,
            ShellException.notEnrolled() to UiErrorKind.SHELL,
            IllegalStateException("boom") to UiErrorKind.SHELL,
        )
        for ((e, kind) in cases) {
            val zh = uiError(e, AppLanguage.ZH)
            val en = uiError(e, AppLanguage.EN)
            assertEquals(kind, zh.kind)
            assertEquals(zh.code, en.code)
            assertTrue(hasChinese(zh.message), zh.message)
            assertFalse(hasChinese(en.message), en.message)
            assertEquals(e is WeldGuardException.Sync, zh.retryable)
        }
        assertFalse(uiError(WeldGuardException.Sync("sync.refused", "拒绝", "refused", false), AppLanguage.EN).retryable)
    }

    @Test
    fun aCancelledSyncGoesBackToIdleAndTheNextOneStartsAfresh() = runBlocking {
        TestScope().use { t ->
            // Enrolled with a platform that does not answer: the sync retries until cancelled.
            val port = ServerSocket(0).use { it.localPort }
            val kept = EnrolmentRecord(
                server = "http://127.0.0.1:$port", deviceId = "dev-1", token = "token", tokenExpiresAtMs = null,
                personName = "李四", personId = "T370983199001011233", role = Role.WELDER, permitRoles = null,
            )
            val session = WeldGuardSession.open(
                java.io.File(tempDir("wg-phone"), "profile.db").path, JcaKey(), TestClock(), AppLanguage.ZH,
                MemoryEnrolmentStore(kept),
            )
            val vm = SyncStatusViewModel(session, t.scope)
            val first = vm.sync()
            assertIs<SyncStatusState.Phase.Syncing>(vm.state.value.phase)
            assertTrue(vm.sync() === first, "a second tap joins the running sync")
            vm.cancel()
            first.join()
            assertTrue(first.isCancelled)
            assertEquals(SyncStatusState.Phase.Idle, vm.state.value.phase)
            val second = vm.sync()
            assertTrue(second !== first)
            vm.cancel()
            second.join()
            assertEquals(SyncStatusState.Phase.Idle, vm.state.value.phase)
            session.close()
        }
    }

    @Test
    fun syncAndEnrolmentFailuresAreStatesNotCrashes() = runBlocking {
        TestScope().use { t ->
            val session = newSession(language = AppLanguage.EN)
            val sync = SyncStatusViewModel(session, t.scope)
            sync.sync().join()
            val notEnrolled = assertIs<SyncStatusState.Phase.Failed>(sync.state.value.phase)
            assertEquals("shell.not_enrolled", notEnrolled.error.code)
            assertEquals(UiErrorKind.SHELL, notEnrolled.error.kind)

            // Nothing listens on this port: a network failure, typed and retryable.
            val port = ServerSocket(0).use { it.localPort }
            val enrolment = EnrolmentViewModel(session, t.scope)
            enrolment.enrol("http://127.0.0.1:$port", "ENROL-CODE", "test phone").join()
            val failed = assertIs<EnrolmentState.Phase.Failed>(enrolment.state.value.phase)
            assertEquals(UiErrorKind.SYNC, failed.error.kind, "${failed.error}")
            assertTrue(failed.error.retryable, "${failed.error}")
            assertNull(session.enrolment.value, "a failed enrolment keeps nothing")
            session.close()
        }
    }
}
