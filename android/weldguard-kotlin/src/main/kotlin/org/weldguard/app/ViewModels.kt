// What every view model shares: a StateFlow of an immutable state, events launched in the scope the
// shell gives (Android: viewModelScope; tests: a scope of their own). Events return their Job so a
// caller (a test) can wait for them; a screen ignores it.

package org.weldguard.app

import java.util.concurrent.atomic.AtomicBoolean
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Job
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch

abstract class StateViewModel<S>(
    protected val session: WeldGuardSession,
    protected val scope: CoroutineScope,
    initial: S,
) {
    private val mutable = MutableStateFlow(initial)
    val state: StateFlow<S> = mutable.asStateFlow()

    protected fun set(update: (S) -> S) = mutable.update(update)

    private val frameBusy = AtomicBoolean(false)

    /** A live camera frame: run [block] unless the last frame is still being read (then the frame
     * is dropped and null returned: the next frame is another chance). */
    protected fun frame(onError: (S, UiError) -> S, block: suspend () -> Unit): Job? {
        if (!frameBusy.compareAndSet(false, true)) return null
        return event(onError, block).also { job -> job.invokeOnCompletion { frameBusy.set(false) } }
    }

    /** Launch an event; any failure (not a cancellation) goes to [onError] as a UiError. */
    protected fun event(onError: (S, UiError) -> S, block: suspend () -> Unit): Job = scope.launch {
        try {
            block()
        } catch (e: CancellationException) {
            throw e
        } catch (e: Exception) {
            val error = uiError(e, session.language)
            set { onError(it, error) }
        }
    }
}
