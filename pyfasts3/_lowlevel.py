"""Loading libfasts3 through cffi (ABI mode) and the single path every native call takes."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

from .errors import S3Error, class_for_status_name

# The C ABI this wrapper was written for: the library's major version must be this one
# (fasts3_abi_version()), its minor version at least this one (fasts3_abi_minor_version()).
ABI_VERSION = 3  # 3: fasts3_get_request has struct_size and per-read options
ABI_MINOR_VERSION = 1  # 1: fasts3_read_options.part_size

_HERE = Path(__file__).resolve().parent
_LIB_NAMES = ("libfasts3.so", "libfasts3.dylib", "fasts3.dll")


def check_abi(path, major: int, minor: int) -> None:
    """Refuse a library of another major ABI version, or one older than the additions used."""
    if major != ABI_VERSION or minor < ABI_MINOR_VERSION:
        raise ImportError(f"libfasts3 at {path} has ABI version {major}.{minor}, pyfasts3 needs "
                          f"{ABI_VERSION}.{ABI_MINOR_VERSION} or a later {ABI_VERSION}.x; rebuild it")


def _load():
    try:
        # The declarations, generated from fasts3.h when the library was built (build.py:
        # cffi's out-of-line ABI mode), so that importing parses nothing.
        from ._fasts3_ffi import ffi
    except ImportError as e:
        raise ImportError(f"{_HERE / '_fasts3_ffi.py'} is missing: build the library with `python build.py`") from e
    for name in _LIB_NAMES:
        path = _HERE / name
        if path.exists():
            lib = ffi.dlopen(str(path))
            break
    else:
        raise ImportError(f"libfasts3 not found in {_HERE}: build it with `python build.py`")
    # The major version is checked before anything else is called: a library of another
    # major version may lack fasts3_abi_minor_version (version 1 did).
    major = lib.fasts3_abi_version()
    check_abi(path, major, lib.fasts3_abi_minor_version() if major == ABI_VERSION else 0)
    return ffi, lib


ffi, lib = _load()
TO_END = lib.FASTS3_TO_END  # a length meaning "to the end of the object"
DEFAULT_MAX_GAP = lib.FASTS3_DEFAULT_MAX_GAP  # get_ranges' coalescing gap unless told


def status_name(status: int) -> str:
    """The library's name of a status value ("FASTS3_NO_SUCH_KEY"; "FASTS3_UNKNOWN")."""
    return ffi.string(lib.fasts3_status_name(status)).decode()


def _status_classes() -> Dict[int, type]:
    """Every status value the header declares -> its exception class, through the names the
    library gives them (so the numbers live only in the library)."""
    values = ffi.typeof("fasts3_status").relements.values()
    return {v: class_for_status_name(status_name(v)) for v in values if v != lib.FASTS3_OK}


_STATUS_CLASSES = _status_classes()


def error_for_status(fasts3_status: int, message: str, code: str, http_status: int,
                     bucket: Optional[str] = None, key: Optional[str] = None,
                     request_id: str = "") -> S3Error:
    """Build the exception for a non-OK status."""
    cls = _STATUS_CLASSES.get(fasts3_status) or class_for_status_name(status_name(fasts3_status))
    return cls(message or f"libfasts3 status {fasts3_status}", code=code, status=http_status,
               bucket=bucket, key=key, fasts3_status=fasts3_status, request_id=request_id)


def last_error(status: int, bucket: Optional[str] = None, key: Optional[str] = None) -> S3Error:
    """The exception for `status`, from this thread's last-error state (call right after
    the failing call, on the same thread)."""
    message = ffi.string(lib.fasts3_last_error_message()).decode("utf-8", "replace")
    code = ffi.string(lib.fasts3_last_error_code()).decode("utf-8", "replace")
    request_id = ffi.string(lib.fasts3_last_error_request_id()).decode("utf-8", "replace")
    return error_for_status(status, message, code, lib.fasts3_last_error_http_status(), bucket, key, request_id)


def take_error(error, context: Optional[str] = None) -> S3Error:
    """The exception for a `fasts3_error *` (a batch item's, a completion's), which this
    frees. `context` ("request 3") prefixes the message as the library's own context does."""
    def text(accessor) -> str:
        return ffi.string(accessor(error)).decode("utf-8", "replace")

    try:
        message = text(lib.fasts3_error_message)
        return error_for_status(lib.fasts3_error_status(error), f"{context}: {message}" if context else message,
                                text(lib.fasts3_error_code), lib.fasts3_error_http_status(error),
                                text(lib.fasts3_error_bucket) or None, text(lib.fasts3_error_key) or None,
                                text(lib.fasts3_error_request_id))
    finally:
        lib.fasts3_error_free(error)


def rustcall(func, *args, bucket: Optional[str] = None, key: Optional[str] = None) -> None:
    """Call a fallible export; raise the mapped exception unless it returned FASTS3_OK.

    Callers pass `ffi.NULL` for the export's trailing `fasts3_error **err`: the error is read
    from this thread's last-error state instead, which costs no allocation and is correct
    here (a Python thread stays on one OS thread). (Appending the NULL here instead would cost
    every call ~0.2-0.4 us of argument repacking.)"""
    status = func(*args)
    if status != 0:
        raise last_error(status, bucket, key)
