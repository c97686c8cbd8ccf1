//! Cancel tokens: trigger from any thread to stop calls that were given the token.

use fasts3_engine::runtime::{Offload, Placement};
use fasts3_engine::{CancelToken, Error, Result};
use crate::ffi::boundary::{export, out_ptr, FfiResult};
use crate::ffi::handles::{free_handle, handle_type, into_handle, optional_handle, read_handle};
use crate::ffi::error::fasts3_error;
use crate::ffi::status::fasts3_status;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

/// A cancel token. Create with `fasts3_cancel_token_new`, release with
/// `fasts3_cancel_token_free`.
///
/// Thread safety: a token may be given to any number of calls at once, on any threads, and
/// cancelled from any thread while they run; only `fasts3_cancel_token_free` must wait
/// until no call uses it.
#[allow(non_camel_case_types)]
pub struct fasts3_cancel_token {
    pub(crate) token: CancelToken,
    /// Also end calls using this token when SIGINT arrives (see `fasts3_cancel_token_watch_sigint`).
    watch_sigint: AtomicBool,
}
handle_type!(fasts3_cancel_token, CancelToken);

/// The token behind a `cancel` argument (NULL: none), or INVALID_HANDLE.
///
/// # Safety
/// `cancel` must not be freed during the call (the `_free` contract).
pub(crate) unsafe fn cancel_ref<'a>(cancel: *const fasts3_cancel_token) -> FfiResult<Option<&'a fasts3_cancel_token>> {
    // SAFETY: forwarded contract.
    unsafe { optional_handle(cancel, "cancel") }
}

/// Where a single call's future runs: the calling thread's own runtime, with permission for
/// a read to hand its later parts to the shared workers. Only for futures passed straight to
/// [`block_on_cancellable`].
pub(crate) fn on_calling_thread() -> Placement {
    // SAFETY: every future the C ABI gives this placement is passed directly to
    // `block_on_cancellable`, which polls it on the calling thread (block_on_here) to
    // completion, or drops it, before returning: none is stored, sent elsewhere or leaked.
    Placement::CallingThread { offload: Some(unsafe { Offload::new() }) }
}

/// Run a call's future to completion, ending it early (as CANCELLED) when `cancel` fires or,
/// for a SIGINT-watching token, when SIGINT arrives. Either way the future is dropped before
/// returning: no write into a caller buffer continues.
pub(crate) fn block_on_cancellable<T: Send + 'static>(
    token: Option<&fasts3_cancel_token>,
    placement: Placement,
    fut: impl Future<Output = Result<T>> + Send,
) -> Result<T> {
    // On the heap once, here: the engine's futures are large (the whole state of a read), and
    // each layer below (cancel token, SIGINT watch, placement, the runtime's block_on) would
    // otherwise move it by value: measured as ~10% of a small GET's CPU, in memcpy.
    let fut = Box::pin(fut);
    let on_thread_runtime = matches!(placement, Placement::CallingThread { .. });
    let watch = token
        .filter(|t| t.watch_sigint.load(Ordering::Relaxed))
        .map(|_| crate::ffi::interrupt::Watch::start());
    let call = CancelToken::run(token.map(|t| &t.token), async {
        match &watch {
            None => fut.await,
            Some(w) => tokio::select! {
                biased;
                _ = w.interrupted(on_thread_runtime) => Err(Error::cancelled().context("interrupted (SIGINT)")),
                r = fut => r,
            },
        }
    });
    placement.block_on(call)
}

/// Create a cancel token, not yet triggered, in `*out`.
///
/// Ownership: the caller owns `*out` and releases it with `fasts3_cancel_token_free`.
///
/// Thread safety: any thread, concurrently with any other call.
///
/// # Safety
/// - `out` is NULL or points to a writable `fasts3_cancel_token *`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_cancel_token_new(out: *mut *mut fasts3_cancel_token, err: *mut *mut fasts3_error) -> fasts3_status {
    export!(err, |_| {
        // SAFETY: NULL or writable (this function's contract).
        let out = unsafe { out_ptr(out, "out") }?;
        *out = into_handle(fasts3_cancel_token {
            token: CancelToken::new(),
            watch_sigint: AtomicBool::new(false),
        });
        Ok(())
    })
}

/// Trigger the token: every running and future call given this token stops and returns
/// `FASTS3_CANCELLED` once all of its work on caller buffers has ended. A token stays
/// triggered; use a new token for new calls.
///
/// Thread safety: may be called from any thread, concurrently with calls using the token.
/// NULL is ignored; a pointer that is not a live token (already freed) is reported on stderr
/// and otherwise ignored (debug builds of libfasts3 abort instead).
///
/// # Safety
/// - `token` is not freed until this call returns.
#[no_mangle]
pub unsafe extern "C" fn fasts3_cancel_token_cancel(token: *const fasts3_cancel_token) {
    // SAFETY: not freed during the call (this function's contract).
    unsafe { read_handle(token, "fasts3_cancel_token_cancel", (), |t| t.token.cancel()) }
}

/// Make calls given this token also end (as `FASTS3_CANCELLED`, after all their work on
/// caller buffers has finished) when SIGINT arrives while they run. During such a call a
/// SIGINT handler is installed that records the signal and then runs the handler it
/// replaced (so e.g. CPython still raises KeyboardInterrupt afterwards). Unix only.
///
/// The handler is installed once per process, however many calls watch at once (from any
/// threads): the first watching call installs it, every watching call sees each SIGINT that
/// arrives while it runs, and the last one to return restores the replaced handler, unless
/// another library has installed its own SIGINT handler meanwhile: that one is left in
/// place (ours stays callable from its chain). While SIGINT is ignored nothing is installed.
/// After fork() the child counts only its own watching calls.
///
/// The token itself is not cancelled by SIGINT and can be reused. NULL is ignored; a pointer
/// that is not a live token is reported on stderr and otherwise ignored (debug builds of
/// libfasts3 abort instead).
///
/// Thread safety: may be called from any thread, concurrently with calls using the token;
/// only calls that start after it returns watch SIGINT.
///
/// # Safety
/// - `token` is not freed until this call returns.
#[no_mangle]
pub unsafe extern "C" fn fasts3_cancel_token_watch_sigint(token: *const fasts3_cancel_token) {
    // SAFETY: not freed during the call (this function's contract).
    unsafe { read_handle(token, "fasts3_cancel_token_watch_sigint", (), |t| t.watch_sigint.store(true, Ordering::Relaxed)) }
}

/// Release a token. NULL is ignored. The token must not be in use by a running call.
/// A pointer that is not a live token (a double free) is reported on stderr and otherwise
/// ignored (debug builds of libfasts3 abort instead).
///
/// Thread safety: any thread, once no call (on any thread) uses `token`.
///
/// # Safety
/// - `token` is not in use by a call on another thread.
#[no_mangle]
pub unsafe extern "C" fn fasts3_cancel_token_free(token: *mut fasts3_cancel_token) {
    // SAFETY: no call uses `token` (this function's contract); an unknown pointer is not touched.
    unsafe { free_handle(token, "fasts3_cancel_token_free") }
}
