// Enrolment screen: a one-time code from the platform's administrator turns this phone into the
// person's phone. The state is what the screen shows; the person, id and role come from the
// platform.

package org.weldguard.app

import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import org.weldguard.core.Role

data class EnrolmentState(val phase: Phase = Phase.Idle) {
    sealed interface Phase {
        data object Idle : Phase
        data object Enrolling : Phase
        data class Enrolled(val personName: String, val personId: String, val role: Role) : Phase
        data class Failed(val error: UiError) : Phase
    }
}

class EnrolmentViewModel(session: WeldGuardSession, scope: CoroutineScope) :
    StateViewModel<EnrolmentState>(session, scope, initialState(session)) {

    fun enrol(serverUrl: String, code: String, deviceName: String): Job =
        event({ s, e -> s.copy(phase = EnrolmentState.Phase.Failed(e)) }) {
            set { it.copy(phase = EnrolmentState.Phase.Enrolling) }
            val e = session.enrol(serverUrl, code, deviceName)
            set { it.copy(phase = EnrolmentState.Phase.Enrolled(e.person, e.personId, e.role)) }
        }

    private companion object {
        fun initialState(session: WeldGuardSession): EnrolmentState {
            val kept = session.enrolment.value ?: return EnrolmentState()
            return EnrolmentState(EnrolmentState.Phase.Enrolled(kept.personName, kept.personId, kept.role))
        }
    }
}
