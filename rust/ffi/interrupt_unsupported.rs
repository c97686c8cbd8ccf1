//! SIGINT watching where POSIX `sigaction` does not exist (non-Unix targets, e.g. Windows):
//! a watch never fires, so a call ends by completing or by an explicit
//! `fasts3_cancel_token_cancel`. The Unix implementation is `interrupt.rs`; this file only
//! keeps the crate compiling elsewhere with the same interface.

/// A watch on SIGINT for one call: on this platform no signal is ever observed.
pub(crate) struct Watch;

impl Watch {
    pub(crate) fn start() -> Watch {
        Watch
    }

    /// Never resolves: there is no SIGINT handler to record a signal here.
    pub(crate) async fn interrupted(&self, _on_thread_runtime: bool) {
        std::future::pending::<()>().await
    }
}
