// The five view models of org.weldguard.app, held for the activity's lifetime in one AndroidX
// ViewModel (their scope is its viewModelScope, so a rotation keeps their state).

package org.weldguard.app.android

import android.app.Application
import androidx.lifecycle.AndroidViewModel
import androidx.lifecycle.viewModelScope
import org.weldguard.app.EnrolmentViewModel
import org.weldguard.app.InspectorCheckViewModel
import org.weldguard.app.PermitWalkthroughViewModel
import org.weldguard.app.ScanToStartViewModel
import org.weldguard.app.SyncStatusViewModel

class ShellViewModels(application: Application) : AndroidViewModel(application) {
    val session = (application as WeldGuardApplication).session
    val enrolment = EnrolmentViewModel(session, viewModelScope)
    val sync = SyncStatusViewModel(session, viewModelScope)
    val inspector = InspectorCheckViewModel(session, viewModelScope)
    val permit = PermitWalkthroughViewModel(session, viewModelScope)

    /** Scan to start at the site the phone works at (kept with the app's settings). */
    val scan = ScanToStartViewModel(
        session,
        viewModelScope,
        application.getSharedPreferences(WeldGuardApplication.PREFS, 0).getString("site_id", "") ?: "",
    )
}
