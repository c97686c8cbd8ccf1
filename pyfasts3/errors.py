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
    """

    def __init__(self, message: str, *, code: str = "", status: int = 0,
                 bucket: Optional[str] = None, key: Optional[str] = None, fasts3_status: int = 0):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.bucket = bucket
        self.key = key
        self.fasts3_status = fasts3_status

    def __str__(self) -> str:
        if self.code:
            return f"{self.code} (HTTP {self.status}): {self.message}"
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


# fasts3_status value -> exception class (see include/fasts3.h).
_BY_STATUS = {
    100: InvalidArgument,
    101: InvalidArgument,
    102: LibraryOutOfMemory,
    103: InvalidHandle,
    200: NoSuchKey,
    201: NoSuchBucket,
    202: AccessDenied,
    203: InvalidRange,
    204: ObjectChanged,
    205: ChecksumMismatch,
    206: ChecksumUnavailable,
    207: PreconditionFailed,
    300: Throttled,
    301: NetworkError,
    302: Timeout,
    400: Cancelled,
    401: InternalError,
    402: ConfigError,
    403: ProtocolError,
    404: TlsError,
    500: S3Error,
}


def error_for_status(fasts3_status: int, message: str, code: str, http_status: int,
                     bucket: Optional[str] = None, key: Optional[str] = None) -> S3Error:
    """Build the exception for a non-OK status."""
    cls = _BY_STATUS.get(fasts3_status, S3Error)
    return cls(message or f"libfasts3 status {fasts3_status}", code=code, status=http_status,
               bucket=bucket, key=key, fasts3_status=fasts3_status)
