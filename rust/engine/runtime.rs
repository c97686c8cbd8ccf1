//! The one shared tokio runtime, created lazily and re-created after `fork()`.
//!
//! A forked child inherits the parent's memory but none of its threads, so the parent's
//! runtime is unusable there (its workers are gone) and must not be dropped either (dropping
//! would try to join threads that do not exist and touch the parent's epoll/socket state).
//! We remember the pid that built the runtime; a different pid means we are in a child and
//! the old runtime is deliberately leaked. This is the pid-check approach s3torchconnector uses.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use tokio::runtime::Runtime;

static RUNTIME: Mutex<Option<(u32, Arc<Runtime>)>> = Mutex::new(None);

/// The runtime for this process, built on first use (and again in a forked child).
pub fn runtime() -> Arc<Runtime> {
    let pid = std::process::id();
    let mut slot = RUNTIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((owner, rt)) = slot.as_ref() {
        if *owner == pid {
            return rt.clone();
        }
    }
    if let Some((_, inherited)) = slot.take() {
        // Inherited from the parent across fork(): never drop it here.
        std::mem::forget(inherited);
    }
    let rt = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("fasts3-io")
            .build()
            .expect("failed to build the tokio runtime"),
    );
    *slot = Some((pid, rt.clone()));
    rt
}

/// Run `fut` to completion on the shared runtime, blocking the calling thread.
///
/// The future runs as a task on the runtime's workers, next to the connection tasks it talks
/// to (polling it on the calling thread instead costs a cross-thread wake-up for every
/// request and body chunk: measured as the largest part of a small GET's CPU time). It may
/// borrow from the caller (buffers, strings): this function does not return, not even by
/// unwinding, before the task has finished and its future has been dropped, so no borrow
/// outlives the call and no write into a caller buffer continues after it.
pub fn block_on<'a, F>(fut: F) -> F::Output
where
    F: Future + Send + 'a,
    F::Output: Send + 'static,
{
    // Blocking inside a runtime would panic after the spawn, with the task still borrowing:
    // refuse before anything is spawned.
    assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "libfasts3 was called from inside a tokio runtime; call it from a plain thread"
    );
    let rt = runtime();
    let boxed: Pin<Box<dyn Future<Output = F::Output> + Send + 'a>> = Box::pin(fut);
    // SAFETY: the only thing that makes this 'static is a lie about the borrows' lifetime.
    // It holds because we wait below for the task to complete — a JoinHandle resolves only
    // after the task's future has finished or been dropped (panics included) — and nothing
    // else can end this function early: the wait cannot be cancelled, and a panic in the task
    // is only re-raised after the join.
    let task: Pin<Box<dyn Future<Output = F::Output> + Send + 'static>> = unsafe { std::mem::transmute(boxed) };
    let handle = rt.spawn(task);
    match rt.block_on(handle) {
        Ok(output) => output,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("libfasts3 task was cancelled unexpectedly: {e}"),
    }
}
