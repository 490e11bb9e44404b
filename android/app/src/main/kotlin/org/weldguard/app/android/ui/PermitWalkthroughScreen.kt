// The permit walk-through (十不准、九必须): the permit's state and summary as the core names them,
// the checklist with one confirm button per item, what blocks the check or the approval, the
// actions the core allows (each with why not), the deadlines and the signatures.

package org.weldguard.app.android.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.text.font.FontWeight
import androidx.compose.ui.unit.dp
import androidx.compose.ui.unit.sp
import org.weldguard.app.PermitWalkthroughState
import org.weldguard.app.android.R
import org.weldguard.core.ChecklistEvidence
import org.weldguard.core.PermitAction

@Composable
fun PermitWalkthroughScreen(
    state: PermitWalkthroughState,
    onAnswer: (itemId: String, evidence: List<ChecklistEvidence>) -> Unit,
    onPreview: () -> Unit,
    onAction: (PermitAction) -> Unit,
) {
    LazyColumn(Modifier.fillMaxWidth(), verticalArrangement = Arrangement.spacedBy(10.dp)) {
        item { Heading(stringResource(R.string.permit_title)) }
        item { ErrorBanner(state.error) }
        val permit = state.permit
        if (permit == null) {
            item { Text(stringResource(R.string.permit_none), fontSize = 20.sp) }
            return@LazyColumn
        }
        item {
            Text("${permit.stateName.text} · ${permit.levelName.text}", fontSize = 22.sp, fontWeight = FontWeight.Bold)
            Text("${permit.summary.siteName} · ${permit.summary.hotWorkPoint}", fontSize = 18.sp)
            Text(permit.summary.work, fontSize = 18.sp)
        }
        items(permit.deadlines) { d -> Text("⏰ ${d.text.text}", color = if (d.overdue) Refused else Allowed, fontSize = 20.sp) }
        items(state.dues.filter { it.permitId == permit.permitId }) { d -> Text("⏰ ${d.text}", fontSize = 20.sp) }
        if (state.blockedBy.isNotEmpty()) {
            item { Text(stringResource(R.string.permit_blocked), color = Refused, fontSize = 20.sp, fontWeight = FontWeight.Bold) }
            items(state.blockedBy) { f -> Text("• ${f.text}", color = Refused, fontSize = 18.sp) }
        }
        if (state.checklist.isNotEmpty()) {
            items(state.checklist) { item ->
                val given = state.answers.firstOrNull { it.itemId == item.id }
                Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                    Text("${item.number}. ${item.text.text}", Modifier.weight(1f), fontSize = 18.sp)
                    // Evidence (photo, numbers, people, gas) is collected by the item's form; this
                    // button confirms what was collected.
                    SecondButton(
                        stringResource(if (given != null) R.string.permit_answered else R.string.permit_confirm),
                        { onAnswer(item.id, given?.evidence ?: emptyList()) },
                    )
                }
            }
            item { SecondButton(stringResource(R.string.permit_preview), onPreview, Modifier.fillMaxWidth()) }
        }
        items(permit.actions.filter { it.allowed }) { a -> BigButton(a.name.text, { onAction(a.action) }) }
        items(permit.actions.filter { !it.allowed && it.whyNot.isNotEmpty() }) { a ->
            Text("${a.name.text}: ${a.whyNot.joinToString("；") { it.text }}", fontSize = 16.sp)
        }
        items(permit.signatures) { s -> Text("✍ ${s.stepName.text} · ${s.signer.name}", fontSize = 18.sp) }
    }
}
