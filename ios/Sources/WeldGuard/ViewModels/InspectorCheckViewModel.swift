// Inspector check (逢查必核): scan or type a welder's code, see the licence as the registry keeps
// it, note findings and record the inspection (sealed with the inspector's key). Mirrors the
// Kotlin shell's InspectorCheckViewModel.
import Foundation

#if canImport(Observation)
    import Observation
#endif

/// What the inspector check screen shows.
public struct InspectorCheckState: Sendable, Equatable {
    public enum Phase: Sendable, Equatable {
        case scanning
        case checking
        case checked(WelderCheck)
        case recording
        case recorded(inspectionId: String)
        case failed(UiError)
    }

    public var phase: Phase
    public var findings: [InspectionFinding]

    public init(phase: Phase = .scanning, findings: [InspectionFinding] = []) {
        self.phase = phase
        self.findings = findings
    }
}

#if canImport(Observation)
    @Observable
#endif
@MainActor
public final class InspectorCheckViewModel {
    public private(set) var state = InspectorCheckState()
    private let session: WeldGuardSession
    private var welderText: String?

    public init(session: WeldGuardSession) {
        self.session = session
    }

    /// A photo of the welder's code (PNG or JPEG bytes).
    public func onImage(_ bytes: Data) async {
        do {
            let codes = try await session.scanImage(
                bytes, settings: ScanSettings(mode: .photo, expected: .one, region: nil))
            if let text = codes.first?.text {
                await onText(text)
            }
        } catch {
            state.phase = .failed(UiError.from(error, language: session.language))
        }
    }

    /// A live camera frame (luma plane, row stride).
    public func onFrame(
        luma: Data, width: UInt32, height: UInt32, rowStride: UInt32, region: ScanRegion? = nil
    ) async {
        guard case .scanning = state.phase else { return }
        do {
            let codes = try await session.scanFrame(
                luma: luma, width: width, height: height, rowStride: rowStride,
                settings: ScanSettings(mode: .live, expected: .one, region: region))
            if let text = codes.first?.text {
                await onText(text)
            }
        } catch {
            state.phase = .failed(UiError.from(error, language: session.language))
        }
    }

    /// A code read or typed (a certificate number typed by hand works too: the core says what it is).
    public func onText(_ text: String) async {
        state.phase = .checking
        welderText = text
        do {
            state.phase = .checked(try await session.checkWelder(text))
        } catch {
            state.phase = .failed(UiError.from(error, language: session.language))
        }
    }

    /// Note a finding (a checklist item and how it was found).
    public func addFinding(
        itemId: String, outcome: FindingOutcome, note: String = "", photos: [Data] = []
    ) {
        state.findings.append(
            InspectionFinding(itemId: itemId, outcome: outcome, note: note, photos: photos))
    }

    /// Record the inspection at `siteId` with the findings noted; the inspector is the person
    /// this phone is enrolled as.
    public func record(
        siteId: String, machineText: String? = nil, permit: PermitShown? = nil,
        photos: [Data] = [], location: InspectionLocation? = nil, notes: String = ""
    ) async {
        guard let inspector = session.enrolment else {
            state.phase = .failed(UiError.from(SessionError.notEnrolled, language: session.language))
            return
        }
        state.phase = .recording
        let input = InspectionInput(
            siteId: siteId, inspectorName: inspector.personName, inspectorId: inspector.personId,
            welderText: welderText, machineText: machineText, permit: permit,
            findings: state.findings, photos: photos, location: location, notes: notes)
        do {
            let result = try await session.recordInspection(input)
            state.phase = .recorded(inspectionId: result.inspectionId)
            state.findings = []
        } catch {
            state.phase = .failed(UiError.from(error, language: session.language))
        }
    }

    /// Start a new check.
    public func reset() {
        welderText = nil
        state = InspectorCheckState()
    }
}
