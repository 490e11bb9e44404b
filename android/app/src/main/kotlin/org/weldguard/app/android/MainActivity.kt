// The one activity: the screen for the enrolled person's role (enrolment first), sync always at
// hand. Each screen is a function of its view model's state; the activity only wires events.

package org.weldguard.app.android

import android.os.Bundle
import androidx.activity.compose.setContent
import androidx.activity.viewModels
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.fragment.app.FragmentActivity
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import org.weldguard.android.BiometricPresencePrompt
import org.weldguard.app.android.ui.EnrolmentScreen
import org.weldguard.app.android.ui.InspectorCheckScreen
import org.weldguard.app.android.ui.PermitWalkthroughScreen
import org.weldguard.app.android.ui.ScanToStartScreen
import org.weldguard.app.android.ui.Screen
import org.weldguard.app.android.ui.ShellScaffold
import org.weldguard.app.android.ui.SyncStatusScreen
import org.weldguard.app.android.ui.WeldGuardTheme
import org.weldguard.app.EnrolmentRecord
import org.weldguard.core.PermitAction
import org.weldguard.core.PermitActorInput
import org.weldguard.core.Role

class MainActivity : FragmentActivity() {
    private val models: ShellViewModels by viewModels()

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        (application as WeldGuardApplication).prompt = BiometricPresencePrompt(this)
        setContent { WeldGuardTheme { App(models) } }
    }

    override fun onDestroy() {
        (application as WeldGuardApplication).prompt = null
        super.onDestroy()
    }
}

@Composable
private fun App(models: ShellViewModels) {
    val enrolled by models.session.enrolment.collectAsStateWithLifecycle()
    var screen by remember { mutableStateOf<Screen?>(null) }
    val record = enrolled
    if (record == null) {
        val state by models.enrolment.state.collectAsStateWithLifecycle()
        EnrolmentScreen(state, onEnrol = { url, code, name -> models.enrolment.enrol(url, code, name) })
        return
    }
    val home = when (record.role) {
        Role.WELDER -> Screen.SCAN_TO_START
        Role.INSPECTOR -> Screen.INSPECTOR_CHECK
        Role.SUPERVISOR, Role.ADMIN -> Screen.PERMIT
    }
    val current = screen ?: home
    ShellScaffold(current, home, onNavigate = { screen = it }) {
        when (current) {
            Screen.SYNC -> {
                val state by models.sync.state.collectAsStateWithLifecycle()
                SyncStatusScreen(state, onSync = { models.sync.sync() }, onCancel = models.sync::cancel)
            }
            Screen.SCAN_TO_START -> {
                val state by models.scan.state.collectAsStateWithLifecycle()
                ScanToStartScreen(state, onFrame = { l, w, h, s -> models.scan.onFrame(l, w, h, s) }, onReset = models.scan::reset)
            }
            Screen.INSPECTOR_CHECK -> {
                val state by models.inspector.state.collectAsStateWithLifecycle()
                InspectorCheckScreen(
                    state,
                    onFrame = { l, w, h, s -> models.inspector.onFrame(l, w, h, s) },
                    onFinding = models.inspector::addFinding,
                    onRecord = { site, notes -> models.inspector.record(site, notes) },
                    onReset = models.inspector::reset,
                )
            }
            Screen.PERMIT -> {
                val state by models.permit.state.collectAsStateWithLifecycle()
                PermitWalkthroughScreen(
                    state,
                    onAnswer = { item, evidence -> models.permit.answer(item, evidence) },
                    onPreview = { models.permit.preview() },
                    onAction = { action -> permitAction(models, record, action) },
                )
            }
        }
    }
}

/** A permit action the person on this phone takes, signed with this phone's key when signed. */
private fun permitAction(models: ShellViewModels, me: EnrolmentRecord, action: PermitAction) {
    val by = PermitActorInput(name = me.personName, id = me.personId, role = null)
    val key = models.session.key
    val vm = models.permit
    when (action) {
        PermitAction.SUBMIT -> vm.submit(by, key)
        PermitAction.SITE_CHECK -> vm.siteCheck(by, key)
        PermitAction.APPROVE -> vm.approve(by, key)
        PermitAction.START -> vm.start()
        PermitAction.COMPLETE -> vm.complete()
        PermitAction.CLOSE -> vm.close(by, key)
        else -> Unit // suspend, resume, reject, cancel, gas: their forms are part 2 (#16 follow-up)
    }
}
