//! ABI versioning and the last-error accessors.

use crate::ffi::boundary::{guard_infallible, with_last_error};
use std::ffi::c_char;

/// Bumped on every incompatible change of the C ABI; loaders refuse a library whose
/// version differs from the one they were written for.
pub const FASTS3_ABI_VERSION: u32 = 1;

/// The ABI version this library implements.
#[no_mangle]
pub extern "C" fn fasts3_abi_version() -> u32 {
    FASTS3_ABI_VERSION
}

/// Message of the last failed call made from this thread, as NUL-terminated UTF-8.
/// Never NULL (empty when the last call succeeded).
///
/// Lifetime: the pointer stays valid until the next libfasts3 call from this thread other
/// than the `fasts3_last_error_*` accessors, which never change the last error.
#[no_mangle]
pub extern "C" fn fasts3_last_error_message() -> *const c_char {
    guard_infallible(c"".as_ptr(), || with_last_error(|message, _, _| message.as_ptr()))
}

/// S3 error code (e.g. "NoSuchKey", "SlowDown") of the last failed call from this thread, or
/// "" when the failure had no S3 response. Never NULL. Same lifetime as
/// `fasts3_last_error_message`.
#[no_mangle]
pub extern "C" fn fasts3_last_error_code() -> *const c_char {
    guard_infallible(c"".as_ptr(), || with_last_error(|_, code, _| code.as_ptr()))
}

/// HTTP status of the response behind the last failed call from this thread; 0 if none.
#[no_mangle]
pub extern "C" fn fasts3_last_error_http_status() -> u16 {
    guard_infallible(0, || with_last_error(|_, _, status| status))
}
