"""Loading libfasts3 through cffi (ABI mode) and the single path every native call takes."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from cffi import FFI

from .errors import S3Error, error_for_status

# The C ABI version this wrapper was written for (fasts3_abi_version()).
ABI_VERSION = 1
TO_END = 2**64 - 1  # FASTS3_TO_END

_HERE = Path(__file__).resolve().parent
_LIB_NAMES = ("libfasts3.so", "libfasts3.dylib", "fasts3.dll")


def _cdef_source(header: str) -> str:
    """cffi's cdef cannot parse preprocessor lines: drop the C++ guard blocks and every
    remaining directive (include guard, includes, #defines mirrored as Python constants)."""
    header = re.sub(r"#ifdef __cplusplus.*?#endif[^\n]*\n", "", header, flags=re.S)
    return "\n".join(line for line in header.splitlines() if not line.lstrip().startswith("#"))


def _load():
    header = _HERE / "fasts3.h"
    if not header.exists():
        raise ImportError(f"{header} is missing: build the library with `python build.py`")
    ffi = FFI()
    ffi.cdef(_cdef_source(header.read_text()))
    for name in _LIB_NAMES:
        path = _HERE / name
        if path.exists():
            lib = ffi.dlopen(str(path))
            break
    else:
        raise ImportError(f"libfasts3 not found in {_HERE}: build it with `python build.py`")
    found = lib.fasts3_abi_version()
    if found != ABI_VERSION:
        raise ImportError(f"libfasts3 at {path} has ABI version {found}, pyfasts3 needs {ABI_VERSION}; rebuild it")
    return ffi, lib


ffi, lib = _load()


def last_error(status: int, bucket: Optional[str] = None, key: Optional[str] = None) -> S3Error:
    """The exception for `status`, from this thread's last-error state (call right after
    the failing call, on the same thread)."""
    message = ffi.string(lib.fasts3_last_error_message()).decode("utf-8", "replace")
    code = ffi.string(lib.fasts3_last_error_code()).decode("utf-8", "replace")
    return error_for_status(status, message, code, lib.fasts3_last_error_http_status(), bucket, key)


def rustcall(func, *args, bucket: Optional[str] = None, key: Optional[str] = None) -> None:
    """Call a fallible export; raise the mapped exception unless it returned FASTS3_OK."""
    status = func(*args)
    if status != 0:
        raise last_error(status, bucket, key)
