// Scan to start (扫码开机), the welder's screen: the machine label first, then the welder's code
// (credential or live presentation); the core decides and records the answer, the view model
// only shows it. Mirrors the Kotlin shell's ScanToStartViewModel.
import Foundation

#if canImport(Observation)
    import Observation
#endif

/// The core's decision, as the screen shows it.
public struct Decision: Sendable, Equatable {
    public var allowed: Bool
    /// Every reason, in the app language.
    public var reasons: [String]
    public var reasonCodes: [String]
    public var sessionId: String?

    public init(_ r: StartWorkResult) {
        allowed = r.allowed
        reasons = r.reasons.map(\.text)
        reasonCodes = r.reasons.map(\.code)
        sessionId = r.sessionId
    }
}

/// What the scan-to-start screen shows.
public struct ScanToStartState: Sendable, Equatable {
    public enum Step: Sendable, Equatable {
        case scanMachine
        case scanWelder
        case deciding
        case decided
    }

    public var step: Step
    public var machineId: String?
    public var welderName: String?
    public var decision: Decision?
    public var error: UiError?

    public init(
        step: Step = .scanMachine, machineId: String? = nil, welderName: String? = nil,
        decision: Decision? = nil, error: UiError? = nil
    ) {
        self.step = step
        self.machineId = machineId
        self.welderName = welderName
        self.decision = decision
        self.error = error
    }
}

#if canImport(Observation)
    @Observable
#endif
@MainActor
public final class ScanToStartViewModel {
    public private(set) var state = ScanToStartState()
    private let session: WeldGuardSession
    private let siteId: String
    private var machineText: String?

    public init(session: WeldGuardSession, siteId: String) {
        self.session = session
        self.siteId = siteId
    }

    /// A photo taken or picked (PNG or JPEG bytes): every code in it, in turn.
    public func onImage(_ bytes: Data) async {
        do {
            let codes = try await session.scanImage(
                bytes, settings: ScanSettings(mode: .photo, expected: .all, region: nil))
            for text in codes.compactMap(\.text) where state.step != .decided {
                await onCode(text)
            }
        } catch {
            state.error = UiError.from(error, language: session.language)
        }
    }

    /// A photo file on disk.
    public func onImage(path: String) async {
        do {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            await onImage(bytes)
        } catch {
            state.error = UiError.from(error, language: session.language)
        }
    }

    /// A live camera frame: its luma plane and row stride; `region` is the viewfinder.
    public func onFrame(
        luma: Data, width: UInt32, height: UInt32, rowStride: UInt32, region: ScanRegion? = nil
    ) async {
        guard state.step == .scanMachine || state.step == .scanWelder else { return }
        do {
            let codes = try await session.scanFrame(
                luma: luma, width: width, height: height, rowStride: rowStride,
                settings: ScanSettings(mode: .live, expected: .one, region: region))
            if let text = codes.first?.text {
                await onCode(text)
            }
        } catch {
            state.error = UiError.from(error, language: session.language)
        }
    }

    /// Start again from the machine label.
    public func reset() {
        machineText = nil
        state = ScanToStartState()
    }

    private func onCode(_ text: String) async {
        switch state.step {
        case .scanMachine:
            machineText = text
            state.error = nil
            // A label's check has no side effect (presentations are not verified here: the
            // decision counts them as seen).
            if let check = try? await session.verifyCode(text) {
                state.machineId = check.machine?.machineId
            }
            state.step = .scanWelder
        case .scanWelder:
            guard let machine = machineText, text != machine else { return }
            state.step = .deciding
            do {
                let result = try await session.startWork(
                    machineText: machine, welderText: text, siteId: siteId)
                state.machineId = result.machineId ?? state.machineId
                state.decision = Decision(result)
                if let check = try? await session.verifyCode(text), let welder = check.welder {
                    state.welderName = welder.name
                }
                state.error = nil
                state.step = .decided
            } catch {
                state.error = UiError.from(error, language: session.language)
                state.step = .scanWelder
            }
        case .deciding, .decided:
            return
        }
    }
}
