// Scan to start (扫码开机), the welder's screen: the first code read is the machine's label, the
// second the welder's code (credential or live presentation); then the core decides and records
// the decision. The view model only carries the core's answer (allowed, reasons in the app's
// language) to the screen.

package org.weldguard.app

import java.nio.ByteBuffer
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import org.weldguard.core.ExpectedCodes
import org.weldguard.core.ScanMode
import org.weldguard.core.ScanRegion
import org.weldguard.core.ScanSettings
import org.weldguard.core.ScannedQr

data class ScanToStartState(
    val step: Step = Step.SCAN_MACHINE,
    val machineId: String? = null,
    val welderName: String? = null,
    val decision: Decision? = null,
    val error: UiError? = null,
) {
    enum class Step { SCAN_MACHINE, SCAN_WELDER, DECIDING, DECIDED }

    /** The core's decision: reasons in the app's language, their stable codes alongside. */
    data class Decision(
        val allowed: Boolean,
        val reasons: List<String>,
        val reasonCodes: List<String>,
        val sessionId: String?,
    )
}

class ScanToStartViewModel(
    session: WeldGuardSession,
    scope: CoroutineScope,
    /** The site the phone works at (from the enrolment or the site picker). */
    private val siteId: String,
) : StateViewModel<ScanToStartState>(session, scope, ScanToStartState()) {
    @Volatile
    private var machineText: String? = null

    /** A photo (taken or picked): every code in it, the first used. */
    fun onImage(bytes: ByteArray): Job = scanned {
        session.scanImage(bytes, ScanSettings(ScanMode.PHOTO, ExpectedCodes.ALL, null))
    }

    /** A photo file (PNG or JPEG) by its path. */
    fun onImage(path: String): Job = scanned {
        val bytes = session.call { java.io.File(path).readBytes() }
        session.scanImage(bytes, ScanSettings(ScanMode.PHOTO, ExpectedCodes.ALL, null))
    }

    /** A frame held in a byte array (tests, other frame sources): as [onFrame] on a buffer. */
    fun onFrame(luma: ByteArray, width: Int, height: Int, rowStride: Int, region: ScanRegion? = null): Job? =
        onFrame(ByteBuffer.wrap(luma), width, height, rowStride, region)

    /** A live preview frame's luma plane where the camera keeps it (see
     * [WeldGuardSession.scanFrame]: the caller keeps the buffer valid until the returned job
     * completes). A frame arriving while the last one is still being read is dropped (returns
     * null): the next frame is another chance. */
    fun onFrame(luma: ByteBuffer, width: Int, height: Int, rowStride: Int, region: ScanRegion? = null): Job? =
        frame({ s, e -> s.copy(error = e) }) {
            val codes = session.scanFrame(luma, width, height, rowStride, ScanSettings(ScanMode.LIVE, ExpectedCodes.ONE, region))
            codes.firstNotNullOfOrNull { it.text }?.let { onText(it, live = true) }
        }

    /** Start over with the machine's label. */
    fun reset() {
        machineText = null
        set { ScanToStartState() }
    }

    private fun scanned(scan: suspend () -> List<ScannedQr>): Job =
        event({ s, e -> s.copy(error = e) }) {
            val text = scan().firstNotNullOfOrNull { it.text } ?: return@event
            onText(text, live = false)
        }

    private suspend fun onText(text: String, live: Boolean) {
        when (state.value.step) {
            ScanToStartState.Step.SCAN_MACHINE -> {
                machineText = text
                // What the label says, for the screen (a label is never a replay); the decision
                // itself is the core's, below.
                val check = session.call { verifyCode(text, session.now()) }
                set {
                    it.copy(step = ScanToStartState.Step.SCAN_WELDER, machineId = check.machine?.machineId, error = null)
                }
            }
            ScanToStartState.Step.SCAN_WELDER -> {
                val machine = machineText ?: return
                // The label still in the viewfinder: the same code in the next live frame is not
                // the welder's (a photo is the person's choice and goes to the core as it is).
                if (live && text == machine) return
                set { it.copy(step = ScanToStartState.Step.DECIDING, error = null) }
                val lang = session.lang
                val result = try {
                    session.call { startWork(machine, text, siteId, session.now(), null, lang) }
                } catch (e: Exception) {
                    set { it.copy(step = ScanToStartState.Step.SCAN_WELDER) }
                    throw e
                }
                // The welder's name as their code carries it, for the screen: read after the
                // decision (a live presentation is seen once, by the decision; it then reads as a
                // replay and the name stays unknown).
                val welderName = result.certificateNo?.let {
                    session.call { verifyCode(text, session.now()) }.welder?.name
                }
                set {
                    it.copy(
                        step = ScanToStartState.Step.DECIDED,
                        machineId = result.machineId ?: it.machineId,
                        welderName = welderName,
                        decision = ScanToStartState.Decision(
                            allowed = result.allowed,
                            reasons = result.reasons.map { r -> r.text },
                            reasonCodes = result.reasons.map { r -> r.code },
                            sessionId = result.sessionId,
                        ),
                    )
                }
            }
            ScanToStartState.Step.DECIDING, ScanToStartState.Step.DECIDED -> Unit
        }
    }
}
