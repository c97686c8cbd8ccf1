//! The status code every fallible export returns.

use fasts3_engine::ErrorKind;
use crate::ffi::boundary::guard_infallible;
use std::ffi::{c_char, CStr};

/// Result of a libfasts3 call. `FASTS3_OK` is 0; other codes are grouped by hundreds:
/// 1xx the caller's arguments, 2xx the object or bucket, 3xx transient transport problems,
/// 4xx control flow and library faults, 5xx other S3 errors.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum fasts3_status {
    FASTS3_OK = 0,
    /// An argument is invalid (bad UTF-8, empty bucket, unknown option...).
    FASTS3_INVALID_ARGUMENT = 100,
    /// A required pointer argument was NULL.
    FASTS3_NULL_POINTER = 101,
    /// A result buffer could not be allocated.
    FASTS3_OUT_OF_MEMORY = 102,
    /// A handle argument is not a live handle of its type: already freed (use after free),
    /// not made by libfasts3, or a handle of another type. Nothing was done. Best effort: a
    /// stale pointer whose address a new handle of the same type has since reused is taken
    /// for that new handle, and freeing a handle while another thread's call still uses it
    /// stays undefined behaviour.
    FASTS3_INVALID_HANDLE = 103,
    /// The key does not exist (HTTP 404).
    FASTS3_NO_SUCH_KEY = 200,
    /// The bucket does not exist (HTTP 404).
    FASTS3_NO_SUCH_BUCKET = 201,
    /// Credentials were refused or lack permission (HTTP 403).
    FASTS3_ACCESS_DENIED = 202,
    /// The server refused the byte range (HTTP 416) in a case that is not end-of-object.
    FASTS3_INVALID_RANGE = 203,
    /// The object was replaced during a multi-part read (`If-Match` failed, HTTP 412).
    FASTS3_OBJECT_CHANGED = 204,
    /// The bytes received do not match the checksum (`x-amz-checksum-*`) the server sent for
    /// the object: corrupted in transit or at rest. The buffer's contents are unspecified.
    FASTS3_CHECKSUM_MISMATCH = 205,
    /// The client requires verified reads (`checksum=required`) and the server sent no
    /// full-object checksum covering the bytes read (a byte range, a composite checksum...).
    FASTS3_CHECKSUM_UNAVAILABLE = 206,
    /// A conditional write's condition failed (HTTP 412): with `if_none_match`, an object
    /// with that key exists already. Nothing was written.
    FASTS3_PRECONDITION_FAILED = 207,
    /// The server asked us to slow down and retries were exhausted (SlowDown, HTTP 503).
    FASTS3_THROTTLED = 300,
    /// Connection or I/O failure, including bodies cut short, after retries.
    FASTS3_NETWORK = 301,
    /// A connect or operation timeout elapsed.
    FASTS3_TIMEOUT = 302,
    /// The call was cancelled through its cancel token.
    FASTS3_CANCELLED = 400,
    /// A bug in libfasts3: a Rust panic was caught at the ABI boundary.
    FASTS3_PANIC = 401,
    /// Configuration, credentials or region could not be resolved.
    FASTS3_CONFIG = 402,
    /// The server's response broke the protocol (wrong range, oversized body...).
    FASTS3_PROTOCOL = 403,
    /// A TLS handshake failed: the server's certificate is not trusted (unknown CA,
    /// self-signed), not valid for the host or expired, or the endpoint does not speak TLS.
    /// Not retried; the message names the host, the failure and how to trust a CA.
    FASTS3_TLS = 404,
    /// Any other error response from S3; see the error code and message.
    FASTS3_S3_ERROR = 500,
}

impl From<ErrorKind> for fasts3_status {
    fn from(kind: ErrorKind) -> Self {
        use fasts3_status::*;
        match kind {
            ErrorKind::InvalidArgument => FASTS3_INVALID_ARGUMENT,
            ErrorKind::OutOfMemory => FASTS3_OUT_OF_MEMORY,
            ErrorKind::NoSuchKey => FASTS3_NO_SUCH_KEY,
            ErrorKind::NoSuchBucket => FASTS3_NO_SUCH_BUCKET,
            ErrorKind::AccessDenied => FASTS3_ACCESS_DENIED,
            ErrorKind::InvalidRange => FASTS3_INVALID_RANGE,
            ErrorKind::ObjectChanged => FASTS3_OBJECT_CHANGED,
            ErrorKind::PreconditionFailed => FASTS3_PRECONDITION_FAILED,
            ErrorKind::ChecksumMismatch => FASTS3_CHECKSUM_MISMATCH,
            ErrorKind::ChecksumUnavailable => FASTS3_CHECKSUM_UNAVAILABLE,
            ErrorKind::Throttled => FASTS3_THROTTLED,
            ErrorKind::Network => FASTS3_NETWORK,
            ErrorKind::Timeout => FASTS3_TIMEOUT,
            ErrorKind::Cancelled => FASTS3_CANCELLED,
            ErrorKind::Config => FASTS3_CONFIG,
            ErrorKind::Protocol => FASTS3_PROTOCOL,
            ErrorKind::Tls => FASTS3_TLS,
            ErrorKind::S3Other => FASTS3_S3_ERROR,
        }
    }
}

/// Every status, for turning a C integer back into one (an out-of-range value must never
/// become a `fasts3_status`: that would be undefined behaviour).
const ALL_STATUSES: [fasts3_status; 22] = {
    use fasts3_status::*;
    [
        FASTS3_OK,
        FASTS3_INVALID_ARGUMENT,
        FASTS3_NULL_POINTER,
        FASTS3_OUT_OF_MEMORY,
        FASTS3_INVALID_HANDLE,
        FASTS3_NO_SUCH_KEY,
        FASTS3_NO_SUCH_BUCKET,
        FASTS3_ACCESS_DENIED,
        FASTS3_INVALID_RANGE,
        FASTS3_OBJECT_CHANGED,
        FASTS3_CHECKSUM_MISMATCH,
        FASTS3_CHECKSUM_UNAVAILABLE,
        FASTS3_PRECONDITION_FAILED,
        FASTS3_THROTTLED,
        FASTS3_NETWORK,
        FASTS3_TIMEOUT,
        FASTS3_CANCELLED,
        FASTS3_PANIC,
        FASTS3_CONFIG,
        FASTS3_PROTOCOL,
        FASTS3_TLS,
        FASTS3_S3_ERROR,
    ]
};

impl fasts3_status {
    /// The status with this value, if any.
    fn from_raw(raw: i32) -> Option<fasts3_status> {
        ALL_STATUSES.into_iter().find(|s| *s as i32 == raw)
    }

    /// The enumerator's name, as the header spells it.
    fn name(self) -> &'static CStr {
        use fasts3_status::*;
        match self {
            FASTS3_OK => c"FASTS3_OK",
            FASTS3_INVALID_ARGUMENT => c"FASTS3_INVALID_ARGUMENT",
            FASTS3_NULL_POINTER => c"FASTS3_NULL_POINTER",
            FASTS3_OUT_OF_MEMORY => c"FASTS3_OUT_OF_MEMORY",
            FASTS3_INVALID_HANDLE => c"FASTS3_INVALID_HANDLE",
            FASTS3_NO_SUCH_KEY => c"FASTS3_NO_SUCH_KEY",
            FASTS3_NO_SUCH_BUCKET => c"FASTS3_NO_SUCH_BUCKET",
            FASTS3_ACCESS_DENIED => c"FASTS3_ACCESS_DENIED",
            FASTS3_INVALID_RANGE => c"FASTS3_INVALID_RANGE",
            FASTS3_OBJECT_CHANGED => c"FASTS3_OBJECT_CHANGED",
            FASTS3_CHECKSUM_MISMATCH => c"FASTS3_CHECKSUM_MISMATCH",
            FASTS3_CHECKSUM_UNAVAILABLE => c"FASTS3_CHECKSUM_UNAVAILABLE",
            FASTS3_PRECONDITION_FAILED => c"FASTS3_PRECONDITION_FAILED",
            FASTS3_THROTTLED => c"FASTS3_THROTTLED",
            FASTS3_NETWORK => c"FASTS3_NETWORK",
            FASTS3_TIMEOUT => c"FASTS3_TIMEOUT",
            FASTS3_CANCELLED => c"FASTS3_CANCELLED",
            FASTS3_PANIC => c"FASTS3_PANIC",
            FASTS3_CONFIG => c"FASTS3_CONFIG",
            FASTS3_PROTOCOL => c"FASTS3_PROTOCOL",
            FASTS3_TLS => c"FASTS3_TLS",
            FASTS3_S3_ERROR => c"FASTS3_S3_ERROR",
        }
    }
}

/// The name of status value `status` as the header spells it (`"FASTS3_NO_SUCH_KEY"`), or
/// `"FASTS3_UNKNOWN"` for a value that is not a `fasts3_status` (e.g. one a newer library
/// added). Takes an `int32_t` so that any value is valid to pass.
///
/// Ownership: a static string, never freed, valid for the life of the process.
/// Thread safety: any thread.
#[no_mangle]
pub extern "C" fn fasts3_status_name(status: i32) -> *const c_char {
    guard_infallible(c"FASTS3_UNKNOWN".as_ptr(), || {
        fasts3_status::from_raw(status).map_or(c"FASTS3_UNKNOWN", fasts3_status::name).as_ptr()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_its_own_name_and_unknown_values_are_unknown() {
        let mut names = std::collections::HashSet::new();
        for s in ALL_STATUSES {
            let name = fasts3_status::name(s).to_str().unwrap();
            assert_eq!(name, format!("{s:?}"));
            assert!(names.insert(name), "{name} twice");
            assert_eq!(fasts3_status::from_raw(s as i32), Some(s));
        }
        for raw in [-1, 1, 99, 208, 405, 501, i32::MAX, i32::MIN] {
            assert_eq!(fasts3_status::from_raw(raw), None, "{raw}");
        }
    }
}
