//! The per-call error object (`fasts3_error`): what a failed call hands back through its
//! trailing `fasts3_error **err` parameter, and what each failed item of a batch carries.
//!
//! Unlike the thread-local last error, an error object belongs to the call that made it, so
//! it stays correct for callers whose code may change OS thread between calls (goroutines,
//! async runtimes) and for batches, where each item has its own.

use crate::ffi::boundary::{guard_infallible, Failure};
use crate::ffi::handles::{free_handle, handle_or_report, handle_type, into_handle, read_handle};
use crate::ffi::status::fasts3_status;
use std::ffi::{c_char, CString};

/// The error of one failed call (or of one failed item of a batch): status, S3 error code,
/// message, HTTP status, request id, bucket and key. Read it with the `fasts3_error_*`
/// accessors; release it with `fasts3_error_free`.
///
/// The `err` parameter, the last one of every fallible call (`fasts3_error **err`): pass
/// NULL when you do not want the error object. Otherwise `err` must point to a writable
/// `fasts3_error *`, which the call sets to NULL on success and on failure to a new error
/// owned by the caller (release it with `fasts3_error_free`). The same failure is also kept
/// for the calling thread (`fasts3_last_error_message`...).
///
/// Thread safety: immutable once made; the accessors may be called from any thread, but
/// `fasts3_error_free` must not run while another thread still reads the error.
#[allow(non_camel_case_types)]
#[derive(Clone)]
pub struct fasts3_error {
    status: fasts3_status,
    http_status: u16,
    code: CString,
    message: CString,
    request_id: CString,
    bucket: CString,
    key: CString,
}
handle_type!(fasts3_error, Error);

fn to_cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

impl fasts3_error {
    /// What C reads of `failure` (about `bucket`/`key` when known): the one conversion from
    /// an engine failure, shared by the error objects of blocking calls, batch items and
    /// completions (`ffi::ops`).
    pub(crate) fn of(failure: &Failure, bucket: Option<&str>, key: Option<&str>) -> fasts3_error {
        let e = &failure.error;
        fasts3_error {
            status: failure.status,
            http_status: e.http_status,
            code: to_cstring(&e.code),
            message: to_cstring(&e.message),
            request_id: to_cstring(&e.request_id),
            bucket: to_cstring(bucket.unwrap_or_default()),
            key: to_cstring(key.unwrap_or_default()),
        }
    }

    pub(crate) fn message(&self) -> &std::ffi::CStr {
        &self.message
    }

    pub(crate) fn code(&self) -> &std::ffi::CStr {
        &self.code
    }

    pub(crate) fn http_status(&self) -> u16 {
        self.http_status
    }
}

/// A new error object for `failure` (about `bucket`/`key` when known), owned by whoever
/// receives the pointer: it must reach the caller, who frees it with `fasts3_error_free`.
pub(crate) fn new_error(failure: &Failure, bucket: Option<&str>, key: Option<&str>) -> *mut fasts3_error {
    into_handle(fasts3_error::of(failure, bucket, key))
}

/// The status of the failed call. `FASTS3_OK` for NULL (no error).
///
/// Thread safety: any thread, concurrently with the other accessors of `error` (it is
/// immutable); not during `fasts3_error_free(error)`.
///
/// # Safety
/// - `error` is NULL or an error not freed until this call returns.
#[no_mangle]
pub unsafe extern "C" fn fasts3_error_status(error: *const fasts3_error) -> fasts3_status {
    // A panic (none is expected) must not pass for success: PANIC then, OK only for NULL.
    guard_infallible(fasts3_status::FASTS3_PANIC, || {
        // SAFETY: not freed during the call (this function's contract).
        unsafe { handle_or_report(error, "fasts3_error_status") }.map_or(fasts3_status::FASTS3_OK, |e| e.status)
    })
}

/// The message, NUL-terminated UTF-8: what failed, where (e.g. "request 3: ..."), and why.
/// Never NULL ("" for NULL `error`).
///
/// Ownership: the string belongs to `error` and stays valid until `fasts3_error_free(error)`.
///
/// Thread safety as for `fasts3_error_status`.
///
/// # Safety
/// - `error` is NULL or an error not freed until this call returns.
#[no_mangle]
pub unsafe extern "C" fn fasts3_error_message(error: *const fasts3_error) -> *const c_char {
    // SAFETY: not freed during the call (this function's contract).
    unsafe { read_handle(error, "fasts3_error_message", c"".as_ptr(), |e| e.message.as_ptr()) }
}

/// The S3 error code ("NoSuchKey", "SlowDown"...), or "" when the failure had no S3 response
/// (a network error, an invalid argument). Never NULL. Same ownership as
/// `fasts3_error_message`.
///
/// Thread safety as for `fasts3_error_status`.
///
/// # Safety
/// - `error` is NULL or an error not freed until this call returns.
#[no_mangle]
pub unsafe extern "C" fn fasts3_error_code(error: *const fasts3_error) -> *const c_char {
    // SAFETY: not freed during the call (this function's contract).
    unsafe { read_handle(error, "fasts3_error_code", c"".as_ptr(), |e| e.code.as_ptr()) }
}

/// The HTTP status of the failing response; 0 when there was none (or for NULL).
///
/// Thread safety as for `fasts3_error_status`.
///
/// # Safety
/// - `error` is NULL or an error not freed until this call returns.
#[no_mangle]
pub unsafe extern "C" fn fasts3_error_http_status(error: *const fasts3_error) -> u16 {
    // SAFETY: not freed during the call (this function's contract).
    unsafe { read_handle(error, "fasts3_error_http_status", 0, |e| e.http_status) }
}

/// The server's id of the failing request (`x-amz-request-id`, what AWS support asks for),
/// or "" when there was no response or the server sent none. Never NULL. Same ownership as
/// `fasts3_error_message`.
///
/// Thread safety as for `fasts3_error_status`.
///
/// # Safety
/// - `error` is NULL or an error not freed until this call returns.
#[no_mangle]
pub unsafe extern "C" fn fasts3_error_request_id(error: *const fasts3_error) -> *const c_char {
    // SAFETY: not freed during the call (this function's contract).
    unsafe { read_handle(error, "fasts3_error_request_id", c"".as_ptr(), |e| e.request_id.as_ptr()) }
}

/// The bucket the failed call (or batch item) was about, or "" when it had none or failed
/// before reading it. Never NULL. Same ownership as `fasts3_error_message`.
///
/// Thread safety as for `fasts3_error_status`.
///
/// # Safety
/// - `error` is NULL or an error not freed until this call returns.
#[no_mangle]
pub unsafe extern "C" fn fasts3_error_bucket(error: *const fasts3_error) -> *const c_char {
    // SAFETY: not freed during the call (this function's contract).
    unsafe { read_handle(error, "fasts3_error_bucket", c"".as_ptr(), |e| e.bucket.as_ptr()) }
}

/// The key the failed call (or batch item) was about, or "" when it had none (a listing, a
/// copy) or failed before reading it. Never NULL. Same ownership as `fasts3_error_message`.
///
/// Thread safety as for `fasts3_error_status`.
///
/// # Safety
/// - `error` is NULL or an error not freed until this call returns.
#[no_mangle]
pub unsafe extern "C" fn fasts3_error_key(error: *const fasts3_error) -> *const c_char {
    // SAFETY: not freed during the call (this function's contract).
    unsafe { read_handle(error, "fasts3_error_key", c"".as_ptr(), |e| e.key.as_ptr()) }
}

/// Release an error and the strings its accessors returned. NULL is ignored. A pointer that
/// is not a live error (a double free) is reported on stderr and otherwise ignored (debug
/// builds of libfasts3 abort instead).
///
/// Thread safety: any thread, once no other thread reads `error` or its strings.
///
/// # Safety
/// - `error` is not in use by a call on another thread, and no string it returned is used
///   afterwards.
#[no_mangle]
pub unsafe extern "C" fn fasts3_error_free(error: *mut fasts3_error) {
    // SAFETY: no call uses `error` (this function's contract); an unknown pointer is not touched.
    unsafe { free_handle(error, "fasts3_error_free") }
}
