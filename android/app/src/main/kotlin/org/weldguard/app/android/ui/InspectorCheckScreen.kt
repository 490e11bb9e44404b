// The inspector's check (逢查必核): scan the welder's code, see the licence as the registry keeps it
// and the core's reasons, note findings, record.

package org.weldguard.app.android.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.heightIn
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.text.font.FontWeight
import androidx.compose.ui.unit.dp
import androidx.compose.ui.unit.sp
import org.weldguard.android.LumaAnalyzer
import org.weldguard.app.InspectorCheckState
import org.weldguard.app.android.R
import org.weldguard.core.FindingOutcome
import org.weldguard.core.LicenceState

@Composable
fun InspectorCheckScreen(
    state: InspectorCheckState,
    onFrame: LumaAnalyzer.FrameSink,
    onFinding: (itemId: String, outcome: FindingOutcome, note: String, photos: List<ByteArray>) -> Unit,
    onRecord: (siteId: String, notes: String) -> Unit,
    onReset: () -> Unit,
) {
    var site by rememberSaveable { mutableStateOf("") }
    var notes by rememberSaveable { mutableStateOf("") }
    var item by rememberSaveable { mutableStateOf("") }
    Column(Modifier.fillMaxWidth(), verticalArrangement = Arrangement.spacedBy(12.dp)) {
        Heading(stringResource(R.string.inspect_title))
        when (val phase = state.phase) {
            InspectorCheckState.Phase.Scanning -> {
                Text(stringResource(R.string.inspect_scan), fontSize = 22.sp, fontWeight = FontWeight.Bold)
                CameraScanner(onFrame)
            }
            InspectorCheckState.Phase.Checking, InspectorCheckState.Phase.Recording ->
                Text(stringResource(R.string.working), fontSize = 22.sp)
            is InspectorCheckState.Phase.Checked -> {
                val check = phase.check
                val valid = check.state == LicenceState.VALID && check.codeVerified
                Text(
                    stringResource(if (valid) R.string.inspect_valid else R.string.inspect_not_valid),
                    color = if (valid) Allowed else Refused, fontSize = 30.sp, fontWeight = FontWeight.Bold,
                )
                check.licence?.let { l ->
                    Text("${l.name}  ${l.certificateNo}", fontSize = 22.sp)
                    Text(l.idNumberMasked, fontSize = 18.sp)
                    Text(stringResource(R.string.inspect_expires, l.expiresOn, l.nextReviewOn), fontSize = 18.sp)
                    for (c in l.categories) Text(c.name, fontSize = 18.sp)
                }
                for (r in check.reasons) Text("• ${r.text}", fontSize = 18.sp)
                for (m in check.boundMachines) Text(stringResource(R.string.inspect_machine, m.machineId), fontSize = 18.sp)
                val field = Modifier.fillMaxWidth().heightIn(min = MinTouch)
                OutlinedTextField(item, { item = it }, field, label = { Text(stringResource(R.string.inspect_item)) }, singleLine = true)
                Row(horizontalArrangement = Arrangement.spacedBy(12.dp)) {
                    SecondButton(stringResource(R.string.inspect_compliant), { onFinding(item, FindingOutcome.COMPLIANT, notes, emptyList()) }, Modifier.weight(1f))
                    SecondButton(stringResource(R.string.inspect_not_compliant), { onFinding(item, FindingOutcome.NOT_COMPLIANT, notes, emptyList()) }, Modifier.weight(1f))
                }
                Text(stringResource(R.string.inspect_findings, state.findings.size), fontSize = 18.sp)
                OutlinedTextField(site, { site = it }, field, label = { Text(stringResource(R.string.inspect_site)) }, singleLine = true)
                OutlinedTextField(notes, { notes = it }, field, label = { Text(stringResource(R.string.inspect_notes)) })
                BigButton(stringResource(R.string.inspect_record), { onRecord(site, notes) })
            }
            is InspectorCheckState.Phase.Recorded -> {
                Text(phase.inspectionId, fontSize = 14.sp)
                Text(stringResource(R.string.inspect_recorded), fontSize = 24.sp, fontWeight = FontWeight.Bold)
                BigButton(stringResource(R.string.inspect_next), onReset)
            }
            is InspectorCheckState.Phase.Failed -> {
                ErrorBanner(phase.error)
                BigButton(stringResource(R.string.inspect_next), onReset)
            }
        }
    }
}
