//! Long calls (sync, enrolment, photo scans) as `async` functions for Kotlin coroutines and Swift
//! concurrency. The blocking work runs on a thread of its own; the foreign side awaits a one-shot
//! channel, so no Rust async runtime is compiled into the phone library. When the foreign caller
//! cancels (the coroutine or task is cancelled and UniFFI drops the future), the call's cancel flag
//! is raised, and the work stops at its next request or page as with [`crate::SyncTask::cancel`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_channel::oneshot;

use crate::error::WeldGuardError;

/// Raises the flag when dropped before the answer arrived (the caller went away).
struct CancelOnDrop {
    flag: Arc<AtomicBool>,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.flag.store(true, Ordering::Relaxed);
        }
    }
}

/// Run `work` on its own thread and await its answer. `cancel` is the call's flag: raised by the
/// shell's cancel handle, or here when the awaiting future is dropped. A panic in `work` becomes a
/// typed error, never an unwind across the FFI.
pub(crate) async fn run<T, F>(
    what: &'static str,
    cancel: Arc<AtomicBool>,
    work: F,
) -> Result<T, WeldGuardError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, WeldGuardError> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let mut guard = CancelOnDrop {
        flag: cancel,
        armed: true,
    };
    std::thread::Builder::new()
        .name(format!("weldguard-{what}"))
        .spawn(move || {
            let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                .unwrap_or_else(|_| Err(WeldGuardError::interrupted(what)));
            // The caller may have gone away: nobody to tell.
            let _ = tx.send(answer);
        })
        .map_err(|e| WeldGuardError::interrupted(&format!("{what}: {e}")))?;
    let answer = rx
        .await
        .unwrap_or_else(|_| Err(WeldGuardError::interrupted(what)));
    guard.armed = false;
    answer
}

/// Drive a future to its end on this thread (the unit tests' stand-in for a coroutine): a waker
/// that unparks the waiting thread.
#[cfg(test)]
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}
