// Sync status: records waiting, a sync's progress (push, then pull), what it did, or why it failed.

package org.weldguard.app.android.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.heightIn
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.dp
import androidx.compose.ui.unit.sp
import org.weldguard.app.SyncStatusState
import org.weldguard.app.android.R
import org.weldguard.core.SyncStage

@Composable
fun SyncStatusScreen(state: SyncStatusState, onSync: () -> Unit, onCancel: () -> Unit) {
    Column(Modifier.fillMaxWidth(), verticalArrangement = Arrangement.spacedBy(12.dp)) {
        Heading(stringResource(R.string.sync_title))
        Text(stringResource(R.string.sync_pending, state.pendingRecords), fontSize = 20.sp)
        when (val phase = state.phase) {
            SyncStatusState.Phase.Idle -> BigButton(stringResource(R.string.sync_action), onSync)
            is SyncStatusState.Phase.Syncing -> {
                val stage = when (phase.stage) {
                    SyncStage.PUSH -> R.string.sync_stage_push
                    SyncStage.PULL -> R.string.sync_stage_pull
                    null -> R.string.sync_stage_start
                }
                Text(stringResource(stage), fontSize = 20.sp)
                val total = phase.total
                if (total != null && total > 0) {
                    LinearProgressIndicator(
                        progress = { phase.done.toFloat() / total },
                        modifier = Modifier.fillMaxWidth().heightIn(min = 12.dp),
                    )
                } else {
                    LinearProgressIndicator(Modifier.fillMaxWidth().heightIn(min = 12.dp))
                }
                SecondButton(stringResource(R.string.sync_cancel), onCancel, Modifier.fillMaxWidth())
            }
            is SyncStatusState.Phase.Synced -> {
                Text(stringResource(R.string.sync_done, phase.pushed, phase.applied, phase.rejected, phase.pulledChanges), fontSize = 20.sp)
                if (phase.changedPermits.isNotEmpty()) {
                    Text(stringResource(R.string.sync_permits_changed, phase.changedPermits.size), fontSize = 18.sp)
                }
                BigButton(stringResource(R.string.sync_action), onSync)
            }
            is SyncStatusState.Phase.Failed -> {
                ErrorBanner(phase.error)
                BigButton(stringResource(R.string.sync_action), onSync)
            }
        }
    }
}
