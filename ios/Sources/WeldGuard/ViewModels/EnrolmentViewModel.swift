// Enrolment screen: trade the administrator's one-time code for this phone's identity.
// Mirrors the Kotlin shell's EnrolmentViewModel (same state shape and event).
import Foundation

#if canImport(Observation)
    import Observation
#endif

/// What the enrolment screen shows.
public struct EnrolmentState: Sendable, Equatable {
    public enum Phase: Sendable, Equatable {
        case idle
        case enrolling
        case enrolled(personName: String, personId: String, role: Role)
        case failed(UiError)
    }

    public var phase: Phase

    public init(phase: Phase = .idle) { self.phase = phase }
}

#if canImport(Observation)
    @Observable
#endif
@MainActor
public final class EnrolmentViewModel {
    public private(set) var state = EnrolmentState()
    private let session: WeldGuardSession

    public init(session: WeldGuardSession) {
        self.session = session
        if let e = session.enrolment {
            state.phase = .enrolled(personName: e.personName, personId: e.personId, role: e.role)
        }
    }

    /// Enrol with the platform at `serverUrl` with the one-time `code`.
    public func enrol(serverUrl: String, code: String, deviceName: String) async {
        state.phase = .enrolling
        do {
            let e = try await session.enrol(serverUrl: serverUrl, code: code, deviceName: deviceName)
            state.phase = .enrolled(personName: e.personName, personId: e.personId, role: e.role)
        } catch {
            state.phase = .failed(UiError.from(error, language: session.language))
        }
    }
}
