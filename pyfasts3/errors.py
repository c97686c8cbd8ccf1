"""The exception hierarchy. Every native failure arrives as an :class:`S3Error` subclass
chosen by the library's status code, carrying the S3 error code, message and HTTP status."""
from __future__ import annotations

from typing import Optional


class S3Error(Exception):
    """A failed S3 operation.

    Attributes:
        code: the S3 error code (``"NoSuchKey"``, ``"SlowDown"``...), ``""`` if no response.
        message: human-readable description from the server or the library.
        status: HTTP status of the failing response, ``0`` if there was none.
        bucket, key: what the operation was about, when known.
        fasts3_status: the library's numeric status code.
        request_id: the server's id of the failing request (``x-amz-request-id``, what AWS
            support asks for), ``""`` when there was no response or the server sent none.
    """

    def __init__(self, message: str, *, code: str = "", status: int = 0,
                 bucket: Optional[str] = None, key: Optional[str] = None, fasts3_status: int = 0,
                 request_id: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.bucket = bucket
        self.key = key
        self.fasts3_status = fasts3_status
        self.request_id = request_id

    def __str__(self) -> str:
        if self.code and self.status:
            return f"{self.code} (HTTP {self.status}): {self.message}"
        if self.code:  # e.g. one key's error inside a 200 DeleteObjects answer
            return f"{self.code}: {self.message}"
        return self.message


class InvalidArgument(S3Error, ValueError):
    """The library refused an argument before sending anything."""


class InvalidHandle(InvalidArgument):
    """A native handle was not live: freed already (use after free / double free) or not
    made by libfasts3. Reaching this through the public API is a bug in pyfasts3."""


class NoSuchKey(S3Error, FileNotFoundError):
    """The object does not exist."""


class NoSuchBucket(S3Error, FileNotFoundError):
    """The bucket does not exist."""


class AccessDenied(S3Error, PermissionError):
    """Credentials were refused or lack permission."""


class InvalidRange(S3Error):
    """The server refused the requested byte range."""


class ObjectChanged(S3Error):
    """The object was replaced while it was being read in parts (its ETag changed)."""


class PreconditionFailed(S3Error, FileExistsError):
    """A conditional write's condition failed (HTTP 412): ``put_from(...,
    if_none_match=True)`` found an object with that key already. Nothing was written."""


class ChecksumMismatch(S3Error):
    """The bytes received do not match the checksum the server sent for them
    (``x-amz-checksum-*``): corrupted in transit or at rest. Nothing is returned."""


class ChecksumUnavailable(S3Error):
    """``checksum="required"`` and the server sent no full-object checksum that covers the
    bytes read (e.g. a byte range, or an object uploaded without a checksum)."""


class Throttled(S3Error):
    """The server kept asking us to slow down (SlowDown / 503) after retries."""


class NetworkError(S3Error, ConnectionError):
    """Connection or I/O failure (including bodies cut short) after retries."""


class Timeout(S3Error, TimeoutError):
    """A connect or operation timeout elapsed."""


class TlsError(S3Error, ConnectionError):
    """A TLS handshake failed: the server's certificate is not trusted (unknown or
    self-signed CA), not valid for the host or expired, or the endpoint does not speak TLS.
    Not retried: retrying cannot fix it. The message names the host and the failure; to
    trust a private CA, set SSL_CERT_FILE to a PEM file holding it before the first call."""


class Cancelled(S3Error):
    """The operation was cancelled."""


class ConfigError(S3Error):
    """Configuration, credentials or region could not be resolved."""


class ProtocolError(S3Error):
    """The server's response broke the S3 protocol."""


class InternalError(S3Error):
    """A bug in libfasts3 (a Rust panic caught at the C boundary)."""


class LibraryOutOfMemory(S3Error, MemoryError):
    """A result buffer could not be allocated."""


# fasts3_status name (as fasts3_status_name() returns it) -> exception class. The numeric
# values are not repeated here: pyfasts3._lowlevel maps each value the library's header
# declares to a class through the library's own names.
_BY_STATUS_NAME = {
    "FASTS3_INVALID_ARGUMENT": InvalidArgument,
    "FASTS3_NULL_POINTER": InvalidArgument,
    "FASTS3_OUT_OF_MEMORY": LibraryOutOfMemory,
    "FASTS3_INVALID_HANDLE": InvalidHandle,
    "FASTS3_NO_SUCH_KEY": NoSuchKey,
    "FASTS3_NO_SUCH_BUCKET": NoSuchBucket,
    "FASTS3_ACCESS_DENIED": AccessDenied,
    "FASTS3_INVALID_RANGE": InvalidRange,
    "FASTS3_OBJECT_CHANGED": ObjectChanged,
    "FASTS3_CHECKSUM_MISMATCH": ChecksumMismatch,
    "FASTS3_CHECKSUM_UNAVAILABLE": ChecksumUnavailable,
    "FASTS3_PRECONDITION_FAILED": PreconditionFailed,
    "FASTS3_THROTTLED": Throttled,
    "FASTS3_NETWORK": NetworkError,
    "FASTS3_TIMEOUT": Timeout,
    "FASTS3_CANCELLED": Cancelled,
    "FASTS3_PANIC": InternalError,
    "FASTS3_CONFIG": ConfigError,
    "FASTS3_PROTOCOL": ProtocolError,
    "FASTS3_TLS": TlsError,
    "FASTS3_S3_ERROR": S3Error,
}


def class_for_status_name(name: str) -> type:
    """The exception class for a status name; :class:`S3Error` for names this version of
    pyfasts3 does not know (a newer library's additions, ``FASTS3_UNKNOWN``)."""
    return _BY_STATUS_NAME.get(name, S3Error)
