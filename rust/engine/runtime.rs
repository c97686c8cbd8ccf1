//! The one shared tokio runtime, created lazily and re-created after `fork()`.
//!
//! A forked child inherits the parent's memory but none of its threads, so the parent's
//! runtime is unusable there (its workers are gone) and must not be dropped either (dropping
//! would try to join threads that do not exist and touch the parent's epoll/socket state).
//! We remember the pid that built the runtime; a different pid means we are in a child and
//! the old runtime is deliberately leaked. This is the pid-check approach s3torchconnector uses.

use std::future::Future;
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
/// The future itself is polled on the calling thread (so writes into a caller buffer happen
/// here and end when this returns); the runtime's workers drive the sockets.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    runtime().block_on(fut)
}
