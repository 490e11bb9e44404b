// Sync status screen: progress of a sync (push, then pull), what it did, and how many records still
// wait in the outbox. Cancelling stops the sync; what was applied stays.

package org.weldguard.app

import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import org.weldguard.core.PermitChange
import org.weldguard.core.SyncStage

data class SyncStatusState(val phase: Phase = Phase.Idle, val pendingRecords: Int = 0) {
    sealed interface Phase {
        data object Idle : Phase
        data class Syncing(val stage: SyncStage?, val done: Long, val total: Long?) : Phase
        data class Synced(
            val pushed: Long,
            val applied: Long,
            val duplicate: Long,
            val rejected: Long,
            val pulledChanges: Long,
            val changedPermits: List<PermitChange>,
        ) : Phase
        data class Failed(val error: UiError) : Phase
    }
}

class SyncStatusViewModel(session: WeldGuardSession, scope: CoroutineScope) :
    StateViewModel<SyncStatusState>(session, scope, SyncStatusState()) {
    @Volatile
    private var running: Job? = null

    /** Start a sync (a second call while one runs returns the running one). */
    fun sync(): Job {
        running?.takeIf { it.isActive }?.let { return it }
        set { it.copy(phase = SyncStatusState.Phase.Syncing(null, 0, null)) }
        val job = event({ s, e -> s.copy(phase = SyncStatusState.Phase.Failed(e)) }) {
            try {
                session.sync().collect { event -> show(event) }
            } catch (e: CancellationException) {
                set { it.copy(phase = SyncStatusState.Phase.Idle) }
                throw e
            }
            refreshNow()
        }
        running = job
        return job
    }

    /** Stop the running sync; what was already applied stays. */
    fun cancel() {
        running?.cancel()
        set { if (it.phase is SyncStatusState.Phase.Syncing) it.copy(phase = SyncStatusState.Phase.Idle) else it }
    }

    private fun show(event: SyncEvent) = when (event) {
        is SyncEvent.Progress -> set {
            it.copy(phase = SyncStatusState.Phase.Syncing(event.stage, event.done, event.total))
        }
        is SyncEvent.Finished -> {
            val s = event.summary
            set {
                it.copy(
                    phase = SyncStatusState.Phase.Synced(
                        pushed = s.pushed.toLong(), applied = s.applied.toLong(),
                        duplicate = s.duplicate.toLong(), rejected = s.rejected.toLong(),
                        pulledChanges = s.pulledChanges.toLong(),
                        changedPermits = s.changedPermits,
                    ),
                )
            }
        }
        is SyncEvent.Failed -> set { it.copy(phase = SyncStatusState.Phase.Failed(event.error)) }
    }

    /** Re-read the outbox counts. */
    fun refresh(): Job = event({ s, e -> s.copy(phase = SyncStatusState.Phase.Failed(e)) }) { refreshNow() }

    private suspend fun refreshNow() {
        val counts = session.outboxSummary()
        val pending = counts.pending + counts.sent
        set { it.copy(pendingRecords = pending.toInt()) }
    }
}
