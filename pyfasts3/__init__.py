"""pyfasts3: the fastest way to get S3 objects into Python memory.

A Rust core (aws-sdk-s3 + tokio, behind a C ABI) fills buffers that Python owns with
parallel ranged GETs; no intermediate copy, no Python in the data path.

    import numpy as np, pyfasts3
    arr = np.empty(1 << 20, dtype=np.uint8)
    n = pyfasts3.get_into(arr, "my-bucket/path/to/object")

The module-level functions use a default :class:`Client` configured from the environment
(created on first use); make your own Client for anything else.
"""
from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Iterator, List, Mapping, Optional, Sequence, Tuple

if TYPE_CHECKING:  # numpy is imported on first use (see client.py)
    import numpy as np

from .client import Client
from .errors import (
    AccessDenied,
    Cancelled,
    ChecksumMismatch,
    ChecksumUnavailable,
    ConfigError,
    InternalError,
    InvalidArgument,
    InvalidHandle,
    InvalidRange,
    LibraryOutOfMemory,
    NetworkError,
    NoSuchBucket,
    NoSuchKey,
    ObjectChanged,
    PreconditionFailed,
    ProtocolError,
    S3Error,
    Throttled,
    Timeout,
    TlsError,
)
from .types import ObjectInfo, Read

__version__ = "0.1.0"

__all__ = [
    "Client", "ObjectInfo", "Read", "default_client",
    "get_into", "get", "get_ranges", "get_many", "head", "list_keys", "list_objects",
    "put_from", "put", "delete", "delete_many", "copy", "PreconditionFailed",
    "S3Error", "NoSuchKey", "NoSuchBucket", "AccessDenied", "ObjectChanged", "Cancelled",
    "InvalidArgument", "InvalidRange", "Throttled", "NetworkError", "Timeout", "ConfigError",
    "ProtocolError", "InternalError", "LibraryOutOfMemory", "ChecksumMismatch", "ChecksumUnavailable",
    "TlsError",
    "InvalidHandle",
]

_default: Optional[Client] = None
_default_lock = threading.Lock()


def _reset_default_lock_in_child() -> None:
    # Another thread may have held it at fork() time; only the forking thread survives.
    global _default_lock
    _default_lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_default_lock_in_child)


def default_client() -> Client:
    """The shared client behind the module-level functions, created from the environment
    on first use (and again if it was closed)."""
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            _default = Client()
        return _default


def get_into(buf: Any, path: str, *, offset: int = 0, if_match: Optional[str] = None,
             version_id: Optional[str] = None, part_size: Optional[int] = None) -> int:
    """:meth:`Client.get_into` on the default client."""
    return default_client().get_into(buf, path, offset=offset, if_match=if_match, version_id=version_id,
                                     part_size=part_size)


def get(path: str, *, offset: int = 0, length: Optional[int] = None, if_match: Optional[str] = None,
        version_id: Optional[str] = None, part_size: Optional[int] = None) -> np.ndarray:
    """:meth:`Client.get` on the default client."""
    return default_client().get(path, offset=offset, length=length, if_match=if_match, version_id=version_id,
                                part_size=part_size)


def get_ranges(path: str, ranges: Sequence[Tuple[int, int]], **kwargs: Any) -> List[np.ndarray]:
    """:meth:`Client.get_ranges` on the default client."""
    return default_client().get_ranges(path, ranges, **kwargs)


def get_many(items: Sequence[Any], *, out: Optional[Sequence[Any]] = None) -> List[Any]:
    """:meth:`Client.get_many` on the default client."""
    return default_client().get_many(items, out=out)


def head(path: str) -> ObjectInfo:
    """:meth:`Client.head` on the default client."""
    return default_client().head(path)


def list_keys(path: str, *, delimiter: Optional[str] = None, parallel: bool = False) -> List[str]:
    """:meth:`Client.list_keys` on the default client."""
    return default_client().list_keys(path, delimiter=delimiter, parallel=parallel)


def list_objects(path: str, *, delimiter: Optional[str] = None, page_size: int = 1000,
                 parallel: bool = False) -> Iterator[ObjectInfo]:
    """:meth:`Client.list_objects` on the default client."""
    return default_client().list_objects(path, delimiter=delimiter, page_size=page_size, parallel=parallel)


def put_from(buf: Any, path: str, *, content_type: Optional[str] = None, if_none_match: bool = False,
             metadata: Optional[Mapping[str, str]] = None) -> None:
    """:meth:`Client.put_from` on the default client."""
    default_client().put_from(buf, path, content_type=content_type, if_none_match=if_none_match, metadata=metadata)


def put(data: Any, path: str, *, content_type: Optional[str] = None, if_none_match: bool = False,
        metadata: Optional[Mapping[str, str]] = None) -> None:
    """:meth:`Client.put` on the default client."""
    default_client().put(data, path, content_type=content_type, if_none_match=if_none_match, metadata=metadata)


def delete(path: str) -> None:
    """:meth:`Client.delete` on the default client."""
    default_client().delete(path)


def delete_many(paths: Sequence[str]) -> List[Tuple[str, S3Error]]:
    """:meth:`Client.delete_many` on the default client."""
    return default_client().delete_many(paths)


def copy(src: str, dst: str) -> None:
    """:meth:`Client.copy` on the default client."""
    default_client().copy(src, dst)
