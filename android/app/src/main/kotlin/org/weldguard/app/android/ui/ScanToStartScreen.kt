// Scan to start (扫码开机): the viewfinder with the step's instruction (machine label, then the
// welder's code), then the core's decision in big colours, every reason as the core wrote it.

package org.weldguard.app.android.ui

import androidx.compose.foundation.background
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.Color
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.text.font.FontWeight
import androidx.compose.ui.unit.dp
import androidx.compose.ui.unit.sp
import org.weldguard.android.LumaAnalyzer
import org.weldguard.app.ScanToStartState
import org.weldguard.app.android.R

@Composable
fun ScanToStartScreen(state: ScanToStartState, onFrame: LumaAnalyzer.FrameSink, onReset: () -> Unit) {
    Column(Modifier.fillMaxWidth(), verticalArrangement = Arrangement.spacedBy(12.dp)) {
        Heading(stringResource(R.string.scan_title))
        state.machineId?.let { Text(stringResource(R.string.scan_machine, it), fontSize = 18.sp) }
        state.welderName?.let { Text(stringResource(R.string.scan_welder, it), fontSize = 18.sp) }
        ErrorBanner(state.error)
        when (state.step) {
            ScanToStartState.Step.SCAN_MACHINE -> {
                Text(stringResource(R.string.scan_step_machine), fontSize = 22.sp, fontWeight = FontWeight.Bold)
                CameraScanner(onFrame)
            }
            ScanToStartState.Step.SCAN_WELDER -> {
                Text(stringResource(R.string.scan_step_welder), fontSize = 22.sp, fontWeight = FontWeight.Bold)
                CameraScanner(onFrame)
            }
            ScanToStartState.Step.DECIDING -> Text(stringResource(R.string.scan_deciding), fontSize = 22.sp)
            ScanToStartState.Step.DECIDED -> {
                val decision = state.decision
                if (decision != null) {
                    val colour = if (decision.allowed) Allowed else Refused
                    Column(Modifier.fillMaxWidth().background(colour).padding(20.dp)) {
                        Text(
                            stringResource(if (decision.allowed) R.string.scan_allowed else R.string.scan_refused),
                            color = Color.Black, fontSize = 34.sp, fontWeight = FontWeight.Bold,
                        )
                        for (reason in decision.reasons) Text("• $reason", color = Color.Black, fontSize = 20.sp)
                    }
                }
                BigButton(stringResource(R.string.scan_again), onReset)
            }
        }
    }
}
