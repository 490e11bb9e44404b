// The inspector's check (逢查必核): scan a welder's code, show the licence as the registry keeps it
// (state and reasons from the core), note findings, and record the inspection sealed with the
// inspector's key. The record waits in the outbox until the next sync.

package org.weldguard.app

import java.nio.ByteBuffer
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import org.weldguard.core.ExpectedCodes
import org.weldguard.core.FindingOutcome
import org.weldguard.core.InspectionFinding
import org.weldguard.core.InspectionInput
import org.weldguard.core.InspectionLocation
import org.weldguard.core.PermitShown
import org.weldguard.core.ScanMode
import org.weldguard.core.ScanRegion
import org.weldguard.core.ScanSettings
import org.weldguard.core.ScannedQr
import org.weldguard.core.WelderCheck

data class InspectorCheckState(
    val phase: Phase = Phase.Scanning,
    val findings: List<InspectionFinding> = emptyList(),
) {
    sealed interface Phase {
        data object Scanning : Phase
        data object Checking : Phase

        /** The licence view from the core's check (texts in the app's language). */
        data class Checked(val check: WelderCheck) : Phase
        data object Recording : Phase

        /** Recorded (sealed, waiting in the outbox for the next sync). */
        data class Recorded(val inspectionId: String) : Phase
        data class Failed(val error: UiError) : Phase
    }
}

class InspectorCheckViewModel(session: WeldGuardSession, scope: CoroutineScope) :
    StateViewModel<InspectorCheckState>(session, scope, InspectorCheckState()) {
    @Volatile
    private var welderText: String? = null

    private val failed: (InspectorCheckState, UiError) -> InspectorCheckState =
        { s, e -> s.copy(phase = InspectorCheckState.Phase.Failed(e)) }

    /** A photo of the welder's code. */
    fun onImage(bytes: ByteArray): Job = scanned {
        session.scanImage(bytes, ScanSettings(ScanMode.PHOTO, ExpectedCodes.ONE, null))
    }

    /** A frame held in a byte array (tests, other frame sources): as [onFrame] on a buffer. */
    fun onFrame(luma: ByteArray, width: Int, height: Int, rowStride: Int, region: ScanRegion? = null): Job? =
        onFrame(ByteBuffer.wrap(luma), width, height, rowStride, region)

    /** A live preview frame's luma plane where the camera keeps it (kept valid by the caller
     * until the returned job completes): read while scanning (dropped otherwise, and while the
     * last frame is still being read). */
    fun onFrame(luma: ByteBuffer, width: Int, height: Int, rowStride: Int, region: ScanRegion? = null): Job? {
        if (state.value.phase != InspectorCheckState.Phase.Scanning) return null
        return frame(failed) {
            val codes = session.scanFrame(luma, width, height, rowStride, ScanSettings(ScanMode.LIVE, ExpectedCodes.ONE, region))
            val text = codes.firstNotNullOfOrNull { it.text } ?: return@frame
            if (state.value.phase == InspectorCheckState.Phase.Scanning) check(text)
        }
    }

    /** A code's text (typed in, or read by another scanner). */
    fun onText(text: String): Job = event(failed) { check(text) }

    fun addFinding(itemId: String, outcome: FindingOutcome, note: String, photos: List<ByteArray> = emptyList()) {
        set { it.copy(findings = it.findings + InspectionFinding(itemId, outcome, note, photos)) }
    }

    /** Record the inspection with the findings so far, sealed with this phone's key, as the
     * enrolled person. */
    fun record(
        siteId: String,
        notes: String,
        machineText: String? = null,
        permit: PermitShown? = null,
        photos: List<ByteArray> = emptyList(),
        location: InspectionLocation? = null,
    ): Job = event(failed) {
        val inspector = session.enrolment.value ?: throw ShellException.notEnrolled()
        set { it.copy(phase = InspectorCheckState.Phase.Recording) }
        val input = InspectionInput(
            siteId = siteId, inspectorName = inspector.personName, inspectorId = inspector.personId,
            welderText = welderText, machineText = machineText, permit = permit,
            findings = state.value.findings, photos = photos, location = location, notes = notes,
        )
        val lang = session.lang
        val result = session.call { recordInspection(input, session.key, session.now(), lang) }
        set { it.copy(phase = InspectorCheckState.Phase.Recorded(result.inspectionId)) }
    }

    /** Start a new inspection. */
    fun reset() {
        welderText = null
        set { InspectorCheckState() }
    }

    private fun scanned(scan: suspend () -> List<ScannedQr>): Job = event(failed) {
        val text = scan().firstNotNullOfOrNull { it.text } ?: return@event
        check(text)
    }

    private suspend fun check(text: String) {
        set { it.copy(phase = InspectorCheckState.Phase.Checking) }
        val lang = session.lang
        val result = session.call { checkWelder(text, session.now(), lang) }
        welderText = text
        set { it.copy(phase = InspectorCheckState.Phase.Checked(result)) }
    }
}
