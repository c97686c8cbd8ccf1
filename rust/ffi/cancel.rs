//! Cancel tokens: trigger from any thread to stop calls that were given the token.

use crate::engine::CancelToken;
use crate::ffi::boundary::{guard, guard_infallible, out_ptr};
use crate::ffi::status::fasts3_status;

/// A cancel token. Create with `fasts3_cancel_token_new`, release with
/// `fasts3_cancel_token_free`.
#[allow(non_camel_case_types)]
pub struct fasts3_cancel_token {
    pub(crate) token: CancelToken,
}

/// Create a cancel token, not yet triggered, in `*out`.
///
/// Ownership: the caller owns `*out` and releases it with `fasts3_cancel_token_free`.
#[no_mangle]
pub extern "C" fn fasts3_cancel_token_new(out: *mut *mut fasts3_cancel_token) -> fasts3_status {
    guard(|| {
        let out = unsafe { out_ptr(out, "out") }?;
        *out = Box::into_raw(Box::new(fasts3_cancel_token { token: CancelToken::new() }));
        Ok(())
    })
}

/// Trigger the token: every running and future call given this token stops and returns
/// `FASTS3_CANCELLED` once all of its work on caller buffers has ended. A token stays
/// triggered; use a new token for new calls.
///
/// Thread safety: may be called from any thread, concurrently with calls using the token.
/// NULL is ignored.
#[no_mangle]
pub extern "C" fn fasts3_cancel_token_cancel(token: *const fasts3_cancel_token) {
    guard_infallible((), || {
        if let Some(t) = unsafe { token.as_ref() } {
            t.token.cancel();
        }
    })
}

/// Release a token. NULL is ignored. The token must not be in use by a running call.
#[no_mangle]
pub extern "C" fn fasts3_cancel_token_free(token: *mut fasts3_cancel_token) {
    guard_infallible((), || {
        if !token.is_null() {
            drop(unsafe { Box::from_raw(token) });
        }
    })
}
