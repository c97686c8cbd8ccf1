//! Library and ABI versions, and the last-error accessors.

use crate::ffi::boundary::{guard_infallible, with_last_error};
use std::ffi::{c_char, CStr};

/// Major ABI version: bumped on every incompatible change of the C ABI (a signature, a
/// struct layout, a meaning). A loader refuses a library whose major version differs from
/// the one it was written for. Version 2: every fallible call takes a trailing
/// `fasts3_error **err`; batch results carry a `fasts3_error *`. Version 3: `fasts3_get_request`
/// starts with `struct_size` and carries per-read `options` (ETag or version pin).
pub const FASTS3_ABI_VERSION: u32 = 3;

/// Minor ABI version: bumped when functions or options are added compatibly, and reset to 0
/// with each major version. A loader needs a minor version at least the one whose additions
/// it uses. Minor 1: the asynchronous interface (completion queues, `fasts3_submit_*`,
/// `fasts3_op_*`, `fasts3_completion_*`). Minor 2: `fasts3_completion_take_error` (a failed
/// op's error object, as blocking calls give it), `fasts3_completion_parts` (the parts an
/// async upload sent) and `fasts3_last_error_request_id`. Major version 3 starts again at 0:
/// the functions of 2.2 and `fasts3_get_ranges_at` (ranges placed at given offsets). Minor 1:
/// `fasts3_read_options.part_size` (a library of 3.0 ignores it).
pub const FASTS3_ABI_MINOR_VERSION: u32 = 1;

/// The major ABI version this library implements (`FASTS3_ABI_VERSION` of its header).
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn fasts3_abi_version() -> u32 {
    FASTS3_ABI_VERSION
}

/// The minor ABI version this library implements (`FASTS3_ABI_MINOR_VERSION` of its header).
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn fasts3_abi_minor_version() -> u32 {
    FASTS3_ABI_MINOR_VERSION
}

const CRATE_VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(version) => version,
    Err(_) => panic!("the crate version contains a NUL"),
};

/// The library's version (its crate version, e.g. "0.1.0"), NUL-terminated.
///
/// Ownership: a static string, never freed, valid for the life of the process.
///
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn fasts3_version() -> *const c_char {
    CRATE_VERSION.as_ptr()
}

/// Message of the last failed call made from this thread, as NUL-terminated UTF-8.
/// Never NULL (empty when the last call succeeded). Correct only when the failed call and
/// this accessor run on the same OS thread with no libfasts3 call between them (C, CPython);
/// callers that may change thread (Go, async runtimes) use the call's `fasts3_error **err`.
///
/// Lifetime: the pointer stays valid until the next libfasts3 call from this thread other
/// than the `fasts3_last_error_*` accessors, which never change the last error.
///
/// Thread safety: any thread; each thread reads its own last error.
#[no_mangle]
pub extern "C" fn fasts3_last_error_message() -> *const c_char {
    guard_infallible(c"".as_ptr(), || with_last_error(|last| last.message.as_ptr()))
}

/// S3 error code (e.g. "NoSuchKey", "SlowDown") of the last failed call from this thread, or
/// "" when the failure had no S3 response. Never NULL. Same lifetime as
/// `fasts3_last_error_message`.
///
/// Thread safety: any thread; each thread reads its own last error.
#[no_mangle]
pub extern "C" fn fasts3_last_error_code() -> *const c_char {
    guard_infallible(c"".as_ptr(), || with_last_error(|last| last.code.as_ptr()))
}

/// HTTP status of the response behind the last failed call from this thread; 0 if none.
///
/// Thread safety: any thread; each thread reads its own last error.
#[no_mangle]
pub extern "C" fn fasts3_last_error_http_status() -> u16 {
    guard_infallible(0, || with_last_error(|last| last.http_status))
}

/// The server's id of the request behind the last failed call from this thread
/// (`x-amz-request-id`, what AWS support asks for), or "" when there was no response or the
/// server sent none. Never NULL. Same lifetime as `fasts3_last_error_message`.
///
/// Thread safety: any thread; each thread reads its own last error.
#[no_mangle]
pub extern "C" fn fasts3_last_error_request_id() -> *const c_char {
    guard_infallible(c"".as_ptr(), || with_last_error(|last| last.request_id.as_ptr()))
}
