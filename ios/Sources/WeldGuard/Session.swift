// WeldGuardSession: the idiomatic layer over the generated bindings for one user profile. It owns
// the profile's `Device`, the app language, the clock, the enrolment (server, token) and the keys;
// blocking core calls run on an injected executor, the core's async calls (enrol, sync, scanImage)
// are awaited directly. Same design as the Kotlin shell's WeldGuardSession (notes: shells.md).
import Foundation

#if canImport(WeldGuardFFI)
    import WeldGuardFFI
#endif

/// The app's language setting; every text the core returns is in it.
public enum AppLanguage: String, Sendable, CaseIterable {
    case zh
    case en

    /// The core's language value.
    public var lang: Lang {
        switch self {
        case .zh: return .zh
        case .en: return .en
        }
    }

    /// Pick the text of this language.
    public func pick(zh: String, en: String) -> String {
        self == .zh ? zh : en
    }
}

/// Where the session reads the time (Unix seconds): the system clock in the app, a fixed or
/// manual one in tests. The core itself reads no clock.
public protocol Clock: Sendable {
    func nowUnix() -> Int64
}

/// The device's clock.
public struct SystemClock: Clock {
    public init() {}
    public func nowUnix() -> Int64 { Int64(Date().timeIntervalSince1970) }
}

/// A clock the caller sets (tests, demos); it reads the system clock until set.
public final class ManualClock: Clock, @unchecked Sendable {
    private let lock = NSLock()
    private var fixed: Int64?

    public init(_ now: Int64? = nil) { fixed = now }

    public func nowUnix() -> Int64 {
        lock.withLock { fixed } ?? SystemClock().nowUnix()
    }

    /// Fix the time at `now` (Unix seconds); `nil` follows the system clock again.
    public func set(_ now: Int64?) {
        lock.withLock { fixed = now }
    }
}

/// Runs blocking core calls off the caller's thread (the main actor stays free).
public protocol BlockingExecutor: Sendable {
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T
}

/// A `BlockingExecutor` over a dispatch queue (default: a global queue).
public struct DispatchExecutor: BlockingExecutor {
    private let queue: DispatchQueue

    public init(queue: DispatchQueue = .global(qos: .userInitiated)) {
        self.queue = queue
    }

    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try body() })
            }
        }
    }
}

/// Who this phone is enrolled as, and the device token (the shell keeps it in the Keychain).
public struct SessionEnrolment: Sendable, Equatable {
    public var server: String
    public var deviceId: String
    public var personName: String
    public var personId: String
    public var role: Role
    public var permitRoles: [String]
    public var token: String
    public var tokenExpiresAtMs: Int64?

    public init(
        server: String, deviceId: String, personName: String, personId: String, role: Role,
        permitRoles: [String], token: String, tokenExpiresAtMs: Int64?
    ) {
        self.server = server
        self.deviceId = deviceId
        self.personName = personName
        self.personId = personId
        self.role = role
        self.permitRoles = permitRoles
        self.token = token
        self.tokenExpiresAtMs = tokenExpiresAtMs
    }
}

/// Where the shell keeps the enrolment between launches (the Keychain in the app).
public protocol EnrolmentStore: Sendable {
    func load() -> SessionEnrolment?
    func save(_ enrolment: SessionEnrolment?)
}

/// An `EnrolmentStore` in memory (tests, previews).
public final class InMemoryEnrolmentStore: EnrolmentStore, @unchecked Sendable {
    private let lock = NSLock()
    private var value: SessionEnrolment?

    public init(_ value: SessionEnrolment? = nil) { self.value = value }
    public func load() -> SessionEnrolment? { lock.withLock { value } }
    public func save(_ enrolment: SessionEnrolment?) { lock.withLock { value = enrolment } }
}

/// What the shell itself refuses before the core is asked (texts in both languages).
public enum SessionError: Error, Sendable, Equatable {
    /// Sync or a step that needs the platform was asked before the phone enrolled.
    case notEnrolled
}

/// Progress of one sync, as `WeldGuardSession.sync()` streams it.
public enum SyncEvent: Sendable {
    case progress(stage: SyncStage, done: UInt64, total: UInt64?)
    case finished(SyncSummary)
    /// The core's error (`WeldGuardError`) or the shell's (`SessionError`); map it with
    /// `UiError.from(_:language:)`.
    case failed(any Error)
}

/// One user profile's session.
public final class WeldGuardSession: @unchecked Sendable {
    /// The profile's core handle.
    public let device: Device
    public let clock: Clock
    /// The person's key (permit signatures, inspection seals).
    public let personSigner: PersonSigner
    /// The device's key (credential presentations, token refresh); the same key in this app.
    public let deviceKey: DeviceKey
    private let executor: BlockingExecutor
    private let store: EnrolmentStore
    private let lock = NSLock()
    private var _language: AppLanguage

    /// Open (or create) the profile database at `profilePath`.
    public init(
        profilePath: String,
        language: AppLanguage = .zh,
        clock: Clock = SystemClock(),
        key: some PersonSigner & DeviceKey,
        store: EnrolmentStore = InMemoryEnrolmentStore(),
        executor: BlockingExecutor = DispatchExecutor()
    ) throws {
        device = try Device.open(dbPath: profilePath)
        _language = language
        self.clock = clock
        personSigner = key
        deviceKey = key
        self.store = store
        self.executor = executor
    }

    /// The app language (a setting the user changes).
    public var language: AppLanguage {
        get { lock.withLock { _language } }
        set { lock.withLock { _language = newValue } }
    }

    /// The enrolment the shell keeps, if any.
    public var enrolment: SessionEnrolment? { store.load() }

    /// Run a blocking core call on the executor with the device, the language and the time now.
    public func call<T: Sendable>(
        _ body: @escaping @Sendable (Device, Lang, Int64) throws -> T
    ) async throws -> T {
        let device = self.device
        let lang = language.lang
        let now = clock.nowUnix()
        return try await executor.run { try body(device, lang, now) }
    }

    // MARK: enrolment and sync

    /// Enrol with the platform at `serverUrl` with a one-time `code`; the enrolment is kept.
    public func enrol(serverUrl: String, code: String, deviceName: String, task: SyncTask = SyncTask())
        async throws -> SessionEnrolment
    {
        let e = try await device.enrol(
            serverUrl: serverUrl, code: code, publicKey: personSigner.publicKey(),
            deviceName: deviceName, task: task, nowUnix: clock.nowUnix())
        let kept = SessionEnrolment(
            server: e.server, deviceId: e.deviceId, personName: e.person, personId: e.personId,
            role: e.role, permitRoles: e.permitRoles ?? [], token: e.token,
            tokenExpiresAtMs: e.tokenExpiresAtMs)
        store.save(kept)
        return kept
    }

    /// Sync with the platform: progress events, then `finished` or `failed`. Ending the
    /// iteration early (the consumer's task is cancelled) cancels `task`, as does `task.cancel()`.
    public func sync(task: SyncTask = SyncTask()) -> AsyncStream<SyncEvent> {
        AsyncStream { continuation in
            let listener = StreamListener(continuation: continuation, store: store)
            let work = Task {
                do {
                    guard let e = self.store.load() else { throw SessionError.notEnrolled }
                    let summary = try await self.device.syncWithKey(
                        serverUrl: e.server, token: e.token, deviceId: e.deviceId,
                        key: self.deviceKey, listener: listener, task: task,
                        nowUnix: self.clock.nowUnix())
                    continuation.yield(.finished(summary))
                } catch {
                    continuation.yield(.failed(error))
                }
                continuation.finish()
            }
            continuation.onTermination = { reason in
                if case .cancelled = reason {
                    task.cancel()
                    work.cancel()
                }
            }
        }
    }

    /// What is due (`Device.due`) every `period`, from now on, until the iteration ends.
    public func deadlines(every period: Duration) -> AsyncStream<[DueItem]> {
        AsyncStream { continuation in
            let work = Task {
                while !Task.isCancelled {
                    if let items = try? await self.due() {
                        continuation.yield(items)
                    }
                    do {
                        try await Task.sleep(for: period)
                    } catch {
                        break
                    }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in work.cancel() }
        }
    }

    /// What is due now, soonest first, in the app language.
    public func due() async throws -> [DueItem] {
        try await call { device, lang, now in try device.due(nowUnix: now, lang: lang) }
    }

    /// The outbox's counts.
    public func outboxSummary() async throws -> OutboxSummary {
        try await call { device, _, _ in try device.outboxSummary() }
    }

    // MARK: scanning and deciding

    /// Every QR code in a photo's PNG or JPEG bytes.
    public func scanImage(_ bytes: Data, settings: ScanSettings) async throws -> [ScannedQr] {
        try await scanImageWith(fileBytes: bytes, settings: settings)
    }

    /// Every QR code in a camera frame's luma plane (row stride included). The plane is lent to
    /// the core for the call (`scanFrameBuffer`: `Data.withUnsafeBytes`, no copy across the FFI;
    /// a copied plane would be lifted byte by byte, `cargo xtask bench ffi`).
    public func scanFrame(
        luma: Data, width: UInt32, height: UInt32, rowStride: UInt32, settings: ScanSettings
    ) async throws -> [ScannedQr] {
        try await executor.run {
            try scanFrameBuffer(
                luma: luma, width: width, height: height, rowStride: rowStride, settings: settings)
        }
    }

    /// Verify one scanned code now.
    public func verifyCode(_ text: String) async throws -> CodeCheck {
        try await call { device, _, now in device.verifyCode(text: text, nowUnix: now) }
    }

    /// Scan to start: the core decides and records the answer.
    public func startWork(
        machineText: String, welderText: String, siteId: String, position: DevicePosition? = nil
    ) async throws -> StartWorkResult {
        try await call { device, lang, now in
            try device.startWork(
                machineText: machineText, welderText: welderText, siteId: siteId, nowUnix: now,
                position: position, lang: lang)
        }
    }

    /// A live presentation of the welder's credential, signed with this phone's key now.
    public func presentCredential(_ credentialText: String) async throws -> String {
        let key = deviceKey
        return try await call { _, _, now in
            try WeldGuard.presentCredential(credentialText: credentialText, key: key, nowUnix: now)
        }
    }

    /// The inspector's check of a welder's code.
    public func checkWelder(_ text: String) async throws -> WelderCheck {
        try await call { device, lang, now in
            try device.checkWelder(scannedText: text, nowUnix: now, lang: lang)
        }
    }

    /// Record an inspection, sealed with the person's key.
    public func recordInspection(_ input: InspectionInput) async throws -> InspectionResult {
        let signer = personSigner
        return try await call { device, lang, now in
            try device.recordInspection(input: input, signer: signer, nowUnix: now, lang: lang)
        }
    }
}

/// Forwards the core's sync callbacks to a stream and keeps a refreshed token.
private final class StreamListener: SyncListener, @unchecked Sendable {
    private let continuation: AsyncStream<SyncEvent>.Continuation
    private let store: EnrolmentStore

    init(continuation: AsyncStream<SyncEvent>.Continuation, store: EnrolmentStore) {
        self.continuation = continuation
        self.store = store
    }

    func onProgress(stage: SyncStage, done: UInt64, total: UInt64?) {
        continuation.yield(.progress(stage: stage, done: done, total: total))
    }

    func onToken(token: String, expiresAtMs: Int64?) {
        if var e = store.load() {
            e.token = token
            e.tokenExpiresAtMs = expiresAtMs
            store.save(e)
        }
    }
}

extension PermitView {
    /// The entry for `action`, when the life cycle offers it in this state.
    public func action(_ action: PermitAction) -> PermitActionView? {
        actions.first { $0.action == action }
    }
}
