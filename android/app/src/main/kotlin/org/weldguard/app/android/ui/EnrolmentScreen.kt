// Enrolment: the platform's address, the one-time code, the phone's name; then who the phone is
// enrolled as (from the platform).

package org.weldguard.app.android.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.heightIn
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.res.stringResource
import androidx.compose.ui.unit.dp
import androidx.compose.ui.unit.sp
import org.weldguard.app.EnrolmentState
import org.weldguard.app.android.R

@Composable
fun EnrolmentScreen(state: EnrolmentState, onEnrol: (serverUrl: String, code: String, deviceName: String) -> Unit) {
    var server by rememberSaveable { mutableStateOf("https://") }
    var code by rememberSaveable { mutableStateOf("") }
    var name by rememberSaveable { mutableStateOf("") }
    Column(Modifier.fillMaxWidth().padding(16.dp), verticalArrangement = Arrangement.spacedBy(12.dp)) {
        Heading(stringResource(R.string.enrol_title))
        val field = Modifier.fillMaxWidth().heightIn(min = MinTouch)
        OutlinedTextField(server, { server = it }, field, label = { Text(stringResource(R.string.enrol_server)) }, singleLine = true)
        OutlinedTextField(code, { code = it }, field, label = { Text(stringResource(R.string.enrol_code)) }, singleLine = true)
        OutlinedTextField(name, { name = it }, field, label = { Text(stringResource(R.string.enrol_device_name)) }, singleLine = true)
        when (val phase = state.phase) {
            EnrolmentState.Phase.Idle -> BigButton(stringResource(R.string.enrol_action), { onEnrol(server, code, name) })
            EnrolmentState.Phase.Enrolling -> Text(stringResource(R.string.enrol_running), fontSize = 20.sp)
            is EnrolmentState.Phase.Enrolled ->
                Text(stringResource(R.string.enrol_done, phase.personName, phase.personId), fontSize = 22.sp)
            is EnrolmentState.Phase.Failed -> {
                ErrorBanner(phase.error)
                BigButton(stringResource(R.string.enrol_action), { onEnrol(server, code, name) })
            }
        }
    }
}
