//! The status code every fallible export returns.

use crate::engine::ErrorKind;

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
