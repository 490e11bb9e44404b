// Sync status: run a sync with its progress, cancel it, and show what waits in the outbox.
// Mirrors the Kotlin shell's SyncStatusViewModel.
import Foundation

#if canImport(Observation)
    import Observation
#endif

/// What the last sync did, as the screen shows it.
public struct SyncedSummary: Sendable, Equatable {
    public var pushed: UInt64
    public var applied: UInt64
    public var duplicate: UInt64
    public var rejected: UInt64
    public var pulledChanges: UInt64
    public var changedPermits: [PermitChange]

    public init(_ s: SyncSummary) {
        pushed = s.pushed
        applied = s.applied
        duplicate = s.duplicate
        rejected = s.rejected
        pulledChanges = s.pulledChanges
        changedPermits = s.changedPermits
    }
}

/// What the sync status screen shows.
public struct SyncStatusState: Sendable, Equatable {
    public enum Phase: Sendable, Equatable {
        case idle
        case syncing(stage: SyncStage?, done: UInt64, total: UInt64?)
        case synced(SyncedSummary)
        case failed(UiError)
    }

    public var phase: Phase
    /// Records waiting for upload.
    public var pendingRecords: Int

    public init(phase: Phase = .idle, pendingRecords: Int = 0) {
        self.phase = phase
        self.pendingRecords = pendingRecords
    }
}

#if canImport(Observation)
    @Observable
#endif
@MainActor
public final class SyncStatusViewModel {
    public private(set) var state = SyncStatusState()
    private let session: WeldGuardSession
    private var running: SyncTask?

    public init(session: WeldGuardSession) {
        self.session = session
    }

    /// Sync now; returns when the sync ended (finished, failed or cancelled).
    public func sync() async {
        if running != nil { return }
        let task = SyncTask()
        running = task
        state.phase = .syncing(stage: nil, done: 0, total: nil)
        for await event in session.sync(task: task) {
            switch event {
            case let .progress(stage, done, total):
                state.phase = .syncing(stage: stage, done: done, total: total)
            case let .finished(summary):
                state.phase = .synced(SyncedSummary(summary))
            case let .failed(error):
                state.phase = .failed(UiError.from(error, language: session.language))
            }
        }
        running = nil
        await refresh()
    }

    /// Cancel the running sync: it stops at its next request, and the core's cancellation
    /// arrives as the failure shown.
    public func cancel() {
        running?.cancel()
    }

    /// Re-read the outbox's pending count.
    public func refresh() async {
        do {
            let summary = try await session.outboxSummary()
            state.pendingRecords = Int(clamping: summary.pending)
        } catch {
            state.phase = .failed(UiError.from(error, language: session.language))
        }
    }
}
