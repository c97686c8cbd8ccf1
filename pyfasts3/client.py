"""The Client: one native client handle and the public operations on it."""
from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import sys
import threading
import weakref
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

# numpy is imported where arrays are made, not with the package: importing it takes
# 0.1-0.3 s, and the command line's ls, cp, rm and head never need it.
if TYPE_CHECKING:
    import numpy as np

from . import _interrupt
from ._lowlevel import DEFAULT_MAX_GAP, TO_END, ffi, last_error, lib, rustcall, take_error
from ._paths import split_object, split_prefix
from .errors import S3Error
from .types import ObjectInfo, Read

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_UNKNOWN_TIME = -(2**63)


class _Handle:
    """Owns the native client pointer. Calls borrow it; close() frees it once the last
    borrower is done, so closing while another thread is mid-call cannot free memory that
    call is using. ffi.gc is only the safety net for clients never closed."""

    def __init__(self, raw):
        self._ptr = ffi.gc(raw, lib.fasts3_client_free)
        self._lock = threading.Lock()
        self._users = 0
        self._closed = False
        _LIVE_HANDLES.add(self)

    def _after_fork_in_child(self) -> None:
        # Only the thread that forked exists in the child: borrows by other threads are
        # gone, and a lock one of them held at fork() time would never be released.
        self._lock = threading.Lock()
        self._users = 0

    def borrow(self) -> "_Handle":
        """``with handle.borrow() as ptr:`` keeps the native client alive for the block.
        (A class-based context manager: the per-call path is kept short on purpose, since
        small reads pay for every Python step.)"""
        return self

    def __enter__(self):
        with self._lock:
            if self._closed:
                raise ValueError("I/O operation on a closed pyfasts3.Client")
            self._users += 1
            return self._ptr

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self._users -= 1
            if self._closed and self._users == 0:
                self._free()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._users == 0:
                self._free()

    @property
    def closed(self) -> bool:
        return self._closed

    def _free(self) -> None:
        if self._ptr is not None:
            ffi.release(self._ptr)
            self._ptr = None


_LIVE_HANDLES: "weakref.WeakSet[_Handle]" = weakref.WeakSet()


def _reset_handles_in_child() -> None:
    for handle in list(_LIVE_HANDLES):
        handle._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_handles_in_child)


def _writable_bytes(buf: Any) -> memoryview:
    """A flat byte view of a writable C-contiguous buffer, or a clear error. The caller
    must release() it (and anything made from it) when the call is over."""
    try:
        view = memoryview(buf)
    except TypeError:
        raise TypeError(
            f"buf must be a writable buffer (numpy array, bytearray, memoryview, mmap), "
            f"got {type(buf).__name__}"
        ) from None
    with view:
        if view.readonly:
            raise TypeError(f"buf is read-only ({type(buf).__name__}); pass a writable buffer")
        if view.nbytes == 0:
            # cast() refuses views with a 0 in their shape; nothing will be written anyway.
            return memoryview(bytearray())
        if not view.c_contiguous:
            raise ValueError("buf is not C-contiguous; pass a contiguous array (e.g. np.ascontiguousarray)")
        return view.cast("B")


def _readable_bytes(data: Any, name: str = "buf") -> memoryview:
    """A flat byte view of any C-contiguous buffer (read-only ones too), or a clear error.
    The caller must release() it when the call is over."""
    if isinstance(data, str):
        raise TypeError(f"{name} must be bytes-like, not str (encode it first)")
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(
            f"{name} must be a bytes-like object (bytes, bytearray, numpy array, memoryview, mmap), "
            f"got {type(data).__name__}"
        ) from None
    with view:
        if view.nbytes == 0:
            return memoryview(b"")
        if not view.c_contiguous:
            raise ValueError(f"{name} is not C-contiguous; pass a contiguous array (e.g. np.ascontiguousarray)")
        return view.cast("B")


def _size_option(name: str, value: Optional[int]) -> int:
    return 0 if value is None else _non_negative(name, value)


def _read_options(if_match: Optional[str], version_id: Optional[str], part_size: Optional[int] = None):
    """A ``fasts3_read_options *`` for these options (NULL when all are None) and the
    objects that must outlive the call (the struct's strings)."""
    if if_match is None and version_id is None and part_size is None:
        return ffi.NULL, ()
    options = ffi.new("fasts3_read_options *")
    options.struct_size = ffi.sizeof("fasts3_read_options")
    if part_size is not None:
        # 0 means "the client's" in the C struct: here, leaving part_size out says that.
        options.part_size = _non_negative("part_size", part_size)
        if options.part_size == 0:
            raise ValueError("part_size must be at least 1 byte (None: the client's part size)")
    keep = [options]
    for name, value in (("if_match", if_match), ("version_id", version_id)):
        if value is None:
            continue
        if not isinstance(value, str) or not value or "\0" in value:
            raise ValueError(f"{name} must be a non-empty str without NUL, got {value!r}")
        text = ffi.new("char[]", value.encode())
        keep.append(text)
        setattr(options, name, text)
    return options, keep


def _put_options(content_type: Optional[str], if_none_match: bool, metadata: Optional[Mapping[str, str]],
                 multipart_threshold: Optional[int] = None, part_size: Optional[int] = None):
    """A ``fasts3_put_options *`` (NULL when every option is the default: the library's
    defaults are the same, and a small PUT then skips the struct's allocation) and the
    objects that must outlive the call (its strings)."""
    if content_type is None and not if_none_match and not metadata and multipart_threshold is None \
            and part_size is None:
        return ffi.NULL, ()
    if content_type is not None and not isinstance(content_type, str):
        raise TypeError(f"content_type must be a str, got {type(content_type).__name__}")
    options = ffi.new("fasts3_put_options *")
    options.struct_size = ffi.sizeof("fasts3_put_options")
    keepalive = [options]
    if content_type is not None:
        ct = ffi.new("char[]", content_type.encode())
        keepalive.append(ct)
        options.content_type = ct
    if metadata:
        items = list(metadata.items())
        for name, value in items:
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError("metadata names and values must be str")
        names = [ffi.new("char[]", n.encode()) for n, _ in items]
        values = [ffi.new("char[]", v.encode()) for _, v in items]
        name_array = ffi.new("const char *[]", names)
        value_array = ffi.new("const char *[]", values)
        keepalive += names + values + [name_array, value_array]
        options.metadata_names, options.metadata_values = name_array, value_array
        options.metadata_count = len(items)
    options.if_none_match = 1 if if_none_match else 0
    options.multipart_threshold = _size_option("multipart_threshold", multipart_threshold)
    options.part_size = _size_option("part_size", part_size)
    return options, keepalive


class _Upload:
    """A multipart upload written part by part (``fasts3_upload_*``), for the streaming
    writer of ``open(path, "wb")``. Owns the native handle: ``close()`` (or garbage
    collection) frees it, which aborts an upload that was not finished."""

    def __init__(self, client: "Client", path: str, *, content_type: Optional[str] = None,
                 if_none_match: bool = False, metadata: Optional[Mapping[str, str]] = None):
        self.bucket, self.key = split_object(path)
        b, k = self.bucket.encode(), self.key.encode()
        options, keep = _put_options(content_type, if_none_match, metadata)
        out = ffi.new("fasts3_upload **")
        with client._handle.borrow() as native:
            rustcall(lib.fasts3_upload_begin, native, b, len(b), k, len(k), options, _interrupt.cancel_token(),
                     out, ffi.NULL, bucket=self.bucket, key=self.key)
        self._ptr = ffi.gc(out[0], lib.fasts3_upload_free)

    def write_part(self, data: Any) -> None:
        """Send ``data`` (any C-contiguous buffer) as the next part: copied before this
        returns, sent in the background."""
        with _readable_bytes(data) as view:
            cbuf = ffi.from_buffer("uint8_t[]", view)
            try:
                rustcall(lib.fasts3_upload_write_part, self._ptr, cbuf, view.nbytes, _interrupt.cancel_token(),
                         ffi.NULL, bucket=self.bucket, key=self.key)
            finally:
                ffi.release(cbuf)

    def finish(self) -> int:
        """Wait for the parts and complete the upload; the number of parts."""
        parts = ffi.new("uint32_t *")
        rustcall(lib.fasts3_upload_finish, self._ptr, _interrupt.cancel_token(), parts, ffi.NULL,
                 bucket=self.bucket, key=self.key)
        return int(parts[0])

    def close(self) -> None:
        """Free the handle now, aborting the upload unless it was finished."""
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            ffi.release(ptr)  # runs fasts3_upload_free


def _batch_item(item: Any) -> Read:
    """A get_many item -- a path, a ``(path, offset, length)`` tuple, a :class:`Read`, or an
    :class:`ObjectInfo` (the whole object, pinned to its ETag) -- as a checked Read whose
    path is split later."""
    if isinstance(item, str):
        return Read(item)
    if isinstance(item, ObjectInfo):
        return Read(f"{item.bucket}/{item.key}", if_match=item.etag or None)
    if not isinstance(item, Read):
        try:
            path, offset, length = item
        except (TypeError, ValueError):
            raise TypeError("each item must be a path, a (path, offset, length) tuple, a pyfasts3.Read or an "
                            f"ObjectInfo, got {item!r}") from None
        item = Read(path, offset, length)
    if not isinstance(item.path, str):
        raise TypeError(f"each item's path must be a str, got {type(item.path).__name__}")
    length = None if item.length is None else _non_negative("length", item.length)
    return item._replace(offset=_non_negative("offset", item.offset), length=length)


def _is_int(value: Any) -> bool:
    """An int or a numpy integer (never a bool); a numpy integer exists only once numpy is
    imported, so this does not import it."""
    if isinstance(value, int):
        return not isinstance(value, bool)
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.integer)


def _non_negative(name: str, value: Any) -> int:
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    if value >= 2**63:
        raise ValueError(f"{name} is too large: {value}")
    return int(value)


def _owned_array(handle) -> np.ndarray:
    """A uint8 array over a fasts3_bytes result without copying; the native buffer is
    released when the array (and every view of it) is garbage."""
    import numpy as np

    data = ffi.new("uint8_t **")
    size = ffi.new("size_t *")
    rustcall(lib.fasts3_bytes_data, handle, data, size, ffi.NULL)
    if size[0] == 0:
        lib.fasts3_bytes_free(handle)
        return np.empty(0, dtype=np.uint8)
    owner = ffi.gc(data[0], lambda _ptr, h=handle: lib.fasts3_bytes_free(h))
    return np.frombuffer(ffi.buffer(owner, size[0]), dtype=np.uint8)


def _take_page(raw) -> "_Page":
    """Decode a fasts3_object_page the caller owns into Python lists, then free it (also
    when decoding fails)."""
    page = ffi.gc(raw, lib.fasts3_object_page_free)
    try:
        return _Page(page)
    finally:
        ffi.release(page)


def _strings(table) -> List[str]:
    if table.count == 0:
        return []
    blob = ffi.buffer(table.data, table.data_len)[:]
    return blob[:-1].decode("utf-8").split("\0")


def _time(ms: int) -> Optional[datetime]:
    return None if ms == _UNKNOWN_TIME else _EPOCH + timedelta(milliseconds=ms)


class _Page:
    """The decoded arrays of one fasts3_object_page."""

    def __init__(self, page):
        view = ffi.new("fasts3_object_page_view *")
        rustcall(lib.fasts3_object_page_get_view, page, view, ffi.NULL)
        n = view.count
        self.keys = _strings(view.keys)
        self.sizes = ffi.unpack(view.sizes, n) if n else []
        self.last_modified_ms = ffi.unpack(view.last_modified_ms, n) if n else []
        self.etags = _strings(view.etags)
        self.content_types = _strings(view.content_types)
        self.common_prefixes = _strings(view.common_prefixes)

    def infos(self, bucket: str, with_content_type: bool = False) -> List[ObjectInfo]:
        return [
            ObjectInfo(bucket, key, size, etag, _time(ms), ctype if with_content_type else None)
            for key, size, etag, ms, ctype in zip(
                self.keys, self.sizes, self.etags, self.last_modified_ms, self.content_types
            )
        ]


def _redact_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@`` (for reprs and messages)."""
    start = url.find("://")
    start = 0 if start < 0 else start + 3
    end = len(url)
    for sep in "/?#":
        i = url.find(sep, start)
        if i >= 0:
            end = min(end, i)
    at = url.rfind("@", start, end)
    return url if at < 0 else url[:start] + "***" + url[at:]


class Client:
    """An S3 client backed by libfasts3. Safe to share between threads.

    Every argument left as None comes from the environment exactly as boto3 reads it:
    AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_REGION / AWS_DEFAULT_REGION, AWS_PROFILE,
    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, the shared config and
    credentials files, web identity and instance metadata.

    Args:
        endpoint_url: e.g. ``"http://127.0.0.1:9000"`` for an S3-compatible server.
        region: AWS region; defaults to the environment, else ``us-east-1``.
        access_key_id, secret_access_key, session_token: explicit credentials.
        profile: a named profile from the shared config/credentials files.
        anonymous: send unsigned requests (public buckets).
        path_style: True for ``host/bucket/key`` URLs, False for ``bucket.host/key``; None
            (default) picks path-style when the endpoint is an IP address or localhost.
            IP-address endpoints are always path-style (the AWS SDK's endpoint rules: a
            bucket cannot be a subdomain of an IP address).
        max_concurrency: HTTP requests in flight for this client (default 16).
        part_size: bytes per ranged GET (default: adaptive -- a 4 MiB first request, then
            parts of about 1/8 of the object, 2-16 MiB; see bench/README.md, "Defaults").
        connect_timeout: seconds to establish a connection (default 10).
        read_timeout: seconds to wait for a response's headers (default 60). A body that
            stops flowing for 5 s (or read_timeout, when shorter) is detected separately and
            the read resumed.
        checksum: verification of the ``x-amz-checksum-*`` values the server returns.
            ``"when_available"`` (default): every read asks for them and verifies one that
            covers exactly the bytes read (a whole object), else reads unverified;
            ``"required"``: a read that cannot be verified fails with ChecksumUnavailable
            (a whole object read in parts is verified against the checksum a HEAD returns);
            ``"off"``: never asked for, never verified. A mismatch raises ChecksumMismatch.
        ca_bundle: path of a PEM file of CA certificates to trust for HTTPS, in addition to
            the system's. Default as boto3: ``AWS_CA_BUNDLE``, else ``ca_bundle`` of the
            selected profile in the AWS config file, else ``REQUESTS_CA_BUNDLE``. A file that
            cannot be read or holds no certificate raises ConfigError here.
        verify: ``False`` accepts any server certificate (for test servers only: anyone on
            the path can then read and change the traffic). As in boto3 it may also be a
            path, meaning ``ca_bundle=path``. Only this argument turns verification off.
        proxy: ``"http://[user:password@]host:port"`` for every request (https ones through
            a CONNECT tunnel). Default: ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` (and
            their lowercase forms), as boto3 reads them. The credentials are never shown.
        max_attempts: attempts per request, the first included (default: AWS_MAX_ATTEMPTS,
            else the profile's ``max_attempts``, else 3). Connection errors, timeouts, 5xx,
            throttling and S3's transient codes are retried with exponential backoff and
            jitter, as boto3's "standard" mode does.
    """

    def __init__(
        self,
        endpoint_url: Optional[str] = None,
        region: Optional[str] = None,
        *,
        access_key_id: Optional[str] = None,
        secret_access_key: Optional[str] = None,
        session_token: Optional[str] = None,
        profile: Optional[str] = None,
        anonymous: bool = False,
        path_style: Optional[bool] = None,
        max_concurrency: Optional[int] = None,
        part_size: Optional[int] = None,
        connect_timeout: Optional[float] = None,
        read_timeout: Optional[float] = None,
        checksum: Optional[str] = None,
        ca_bundle: Optional[Union[str, "os.PathLike[str]"]] = None,
        verify: Union[bool, str, "os.PathLike[str]"] = True,
        proxy: Optional[str] = None,
        max_attempts: Optional[int] = None,
    ):
        # Every constructor argument as given (see __reduce__: a pickle rebuilds from these).
        self._init_kwargs = {name: value for name, value in locals().items() if name != "self"}
        options = {
            "endpoint_url": endpoint_url,
            "region": region,
            "access_key_id": access_key_id,
            "secret_access_key": secret_access_key,
            "session_token": session_token,
            "profile": profile,
            "checksum": checksum,
            "proxy": proxy,
        }
        for name, value in options.items():
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{name} must be a str, got {type(value).__name__}")
        if anonymous:
            options["anonymous"] = "true"
        if not isinstance(verify, bool):
            if not isinstance(verify, (str, os.PathLike)):
                raise TypeError(f"verify must be a bool or a CA bundle path, got {type(verify).__name__}")
            if ca_bundle is not None:
                raise ValueError("give the CA bundle as ca_bundle= or verify=, not both")
            ca_bundle, verify = verify, True
        if ca_bundle is not None:
            if not isinstance(ca_bundle, (str, os.PathLike)):
                raise TypeError(f"ca_bundle must be a path, got {type(ca_bundle).__name__}")
            options["ca_bundle"] = os.fsdecode(os.fspath(ca_bundle))
        if not verify:
            options["verify"] = "false"
        if path_style is not None:
            options["path_style"] = "path" if path_style else "virtual"
        for name, value in (("max_concurrency", max_concurrency), ("part_size", part_size),
                            ("max_attempts", max_attempts)):
            if value is not None:
                if _non_negative(name, value) == 0:
                    raise ValueError(f"{name} must be >= 1, got {value}")
                options[name] = str(int(value))

        for name, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
                if not value > 0:
                    raise ValueError(f"{name} must be > 0, got {value}")
                options[name] = repr(float(value))

        out = ffi.new("fasts3_config **")
        rustcall(lib.fasts3_config_new, out, ffi.NULL)
        config = ffi.gc(out[0], lib.fasts3_config_free)
        try:
            for name, value in options.items():
                if value is not None:
                    rustcall(lib.fasts3_config_set, config, name.encode(), value.encode(), ffi.NULL)
            client_out = ffi.new("fasts3_client **")
            rustcall(lib.fasts3_client_new, config, client_out, ffi.NULL)
        finally:
            ffi.release(config)
        self._handle = _Handle(client_out[0])
        self._description = endpoint_url or "environment"
        if proxy is not None:
            self._description += f" via proxy {_redact_userinfo(proxy)}"

    def __repr__(self) -> str:
        state = "closed" if self._handle.closed else "open"
        return f"<pyfasts3.Client {self._description} ({state})>"

    def __reduce__(self):
        """Pickling (Dask, Ray, multiprocessing spawn): the other side builds a new Client
        from the same constructor arguments. Only what was passed explicitly travels:
        credentials given as arguments are in the pickle (treat it as a secret then), while
        anything left to the environment (keys, profile files, endpoint, region) is resolved
        again by the receiving process from its own environment."""
        if self._handle.closed:
            raise pickle.PicklingError("cannot pickle a closed pyfasts3.Client")
        return (_rebuild_client, (dict(self._init_kwargs),))

    def open(self, path: str, mode: str = "rb", *, block_size: Optional[int] = None):
        """A file object on the object at ``path`` (see :func:`pyfasts3.io.open_object`):
        ``"rb"`` a seekable binary reader; ``"wb"`` / ``"xb"`` a writer that sends each 16 MiB
        written as a part of a multipart upload and completes it on close (one PUT for less);
        nothing is stored if a ``with`` block exits by an exception."""
        from .io import open_object

        return open_object(self, path, mode, block_size=block_size)

    def close(self) -> None:
        """Release the native client. Further calls raise ValueError. Idempotent."""
        self._handle.close()

    @property
    def closed(self) -> bool:
        return self._handle.closed

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading objects ---------------------------------------------------------------

    def get_into(self, buf: Any, path: str, *, offset: int = 0, if_match: Optional[str] = None,
                 version_id: Optional[str] = None, part_size: Optional[int] = None) -> int:
        """Fill ``buf`` with the object's bytes ``[offset, offset + nbytes(buf))``.

        ``readinto`` semantics: returns how many bytes were written, fewer than
        ``nbytes(buf)`` only when the object ends first (0 when ``offset`` is at or past
        the end). ``buf`` is any writable C-contiguous buffer: a numpy array of any dtype
        and shape, bytearray, memoryview, mmap. The GIL is released during the transfer;
        Ctrl-C cancels it promptly. On error the buffer's contents are unspecified.

        ``if_match``: the ETag the object must have (as a listing or :meth:`head` gave it);
        another version raises :class:`ObjectChanged`. ``version_id``: read that version
        of an object in a versioned bucket. ``part_size``: bytes per ranged GET of this read
        (default: the client's, adaptive). Several reads side by side, each a window of one
        large object, go faster with one request per window (``pyfasts3 cp`` reads 16 MiB
        windows with ``part_size`` 16 MiB: bench/README.md, "Command line copies").
        """
        bucket, key = split_object(path)
        offset = _non_negative("offset", offset)
        options, keep = _read_options(if_match, version_id, part_size)
        b, k = bucket.encode(), key.encode()
        written = ffi.new("uint64_t *")
        # Release the buffer exports explicitly when the call is over: an exception's
        # traceback would otherwise keep them in a reference cycle, and the GC clearing a
        # memoryview that still has a cffi export crashes CPython.
        with _writable_bytes(buf) as view:
            nbytes = view.nbytes
            cbuf = ffi.from_buffer("uint8_t[]", view, require_writable=True) if nbytes else ffi.NULL
            try:
                with self._handle.borrow() as client:
                    if options == ffi.NULL:
                        rustcall(lib.fasts3_get_into, client, b, len(b), k, len(k), offset, cbuf, nbytes,
                                 _interrupt.cancel_token(), written, ffi.NULL, bucket=bucket, key=key)
                    else:
                        rustcall(lib.fasts3_get_into_with_options, client, b, len(b), k, len(k), offset, cbuf,
                                 nbytes, options, _interrupt.cancel_token(), written, ffi.NULL, bucket=bucket, key=key)
            finally:
                if nbytes:
                    ffi.release(cbuf)
        return int(written[0])

    def get(self, path: str, *, offset: int = 0, length: Optional[int] = None, if_match: Optional[str] = None,
            version_id: Optional[str] = None, part_size: Optional[int] = None) -> np.ndarray:
        """The object's bytes from ``offset`` (``length`` of them, or to the end) as a new
        uint8 numpy array, exactly as long as what was read (shorter than ``length`` only
        when the object ends first). No copy: the array's memory is where the bytes landed.
        ``if_match``, ``version_id`` and ``part_size`` as for :meth:`get_into`.
        """
        bucket, key = split_object(path)
        offset = _non_negative("offset", offset)
        max_len = TO_END if length is None else _non_negative("length", length)
        options, keep = _read_options(if_match, version_id, part_size)
        b, k = bucket.encode(), key.encode()
        out = ffi.new("fasts3_bytes **")
        with self._handle.borrow() as client:
            if options == ffi.NULL:
                rustcall(lib.fasts3_get, client, b, len(b), k, len(k), offset, max_len, _interrupt.cancel_token(),
                         out, ffi.NULL, bucket=bucket, key=key)
            else:
                rustcall(lib.fasts3_get_with_options, client, b, len(b), k, len(k), offset, max_len, options,
                         _interrupt.cancel_token(), out, ffi.NULL, bucket=bucket, key=key)
        return _owned_array(out[0])

    def get_ranges(self, path: str, ranges: Sequence[Tuple[int, int]], *, out: Any = None,
                   out_offsets: Optional[Sequence[int]] = None, max_gap: int = DEFAULT_MAX_GAP,
                   if_match: Optional[str] = None, version_id: Optional[str] = None,
                   part_size: Optional[int] = None) -> List[np.ndarray]:
        """Many ``(offset, length)`` byte ranges of one object, all from one version of it.

        A negative offset counts from the end (``(-8, 8)``: the last 8 bytes, a Parquet
        footer). One HEAD gives the object's size and ETag (or checks ``if_match``); every
        request is pinned to that version, so the ranges never mix two versions
        (:class:`ObjectChanged` otherwise). Ranges at most ``max_gap`` bytes apart are read
        with one request (0: only touching or overlapping ones); the requests run concurrently.
        ``part_size``, as for :meth:`get_into`, caps the request a large merged range is read in.

        ``out``: a writable C-contiguous buffer receiving the ranges packed in order (range
        ``i`` at the sum of the lengths before it); None allocates one buffer. With
        ``out_offsets`` (one per range, ``out`` required), range ``i`` lands at byte
        ``out_offsets[i]`` of ``out`` instead: in any order, inside ``out``, no two
        overlapping (ValueError otherwise) -- tensors into their places in one preallocated
        buffer. Returns one uint8 view per range, into ``out`` or that buffer, shorter than
        asked only where the object ends first. If the call raises, ``out`` may hold some of
        the ranges and its other bytes are unspecified.
        """
        bucket, key = split_object(path)
        if isinstance(ranges, (str, bytes)):
            raise TypeError("ranges must be a sequence of (offset, length) pairs")
        pairs = []
        for item in ranges:
            try:
                offset, length = item
            except (TypeError, ValueError):
                raise TypeError(f"each range must be an (offset, length) pair, got {item!r}") from None
            if not _is_int(offset):
                raise TypeError(f"range offset must be an int, got {type(offset).__name__}")
            if not -2**63 <= offset < 2**63:
                raise ValueError(f"range offset out of range: {offset}")
            pairs.append((int(offset), _non_negative("range length", length)))
        max_gap = _non_negative("max_gap", max_gap)
        total = sum(n for _, n in pairs)
        options, keep = _read_options(if_match, version_id, part_size)
        if out_offsets is not None:
            if out is None:
                raise ValueError("out_offsets places the ranges in out: give out too")
            if isinstance(out_offsets, (str, bytes)) or len(out_offsets) != len(pairs):
                raise ValueError(f"out_offsets must hold one offset per range ({len(pairs)})")
            starts = [_non_negative("out offset", o) for o in out_offsets]
        else:
            starts = list(itertools.accumulate((n for _, n in pairs), initial=0))[:len(pairs)]
        import numpy as np

        if out is None:
            array = np.empty(total, np.uint8)
        else:
            # Writable and C-contiguous (else reshape below would read into a copy of it).
            with _writable_bytes(out) as probe:
                if out_offsets is None and probe.nbytes < total:
                    raise ValueError(f"out holds {probe.nbytes} bytes, the ranges need {total}")
            array = np.frombuffer(out, np.uint8) if not isinstance(out, np.ndarray) else out.reshape(-1).view(np.uint8)
        c_ranges = ffi.new("fasts3_range[]", pairs) if pairs else ffi.NULL
        c_offsets = ffi.new("uint64_t[]", starts) if out_offsets is not None and pairs else ffi.NULL
        lengths = ffi.new("uint64_t[]", max(len(pairs), 1))
        b, k = bucket.encode(), key.encode()
        with _writable_bytes(array) as view:
            cbuf = ffi.from_buffer("uint8_t[]", view, require_writable=True) if view.nbytes else ffi.NULL
            try:
                with self._handle.borrow() as client:
                    rustcall(lib.fasts3_get_ranges_at, client, b, len(b), k, len(k), c_ranges, len(pairs), max_gap,
                             cbuf, view.nbytes, c_offsets, options, _interrupt.cancel_token(), lengths, ffi.NULL,
                             bucket=bucket, key=key)
            finally:
                if view.nbytes:
                    ffi.release(cbuf)
        return [array[at:at + int(lengths[i])] for i, at in enumerate(starts)]

    def get_many(self, items: Sequence[Any], *, out: Optional[Sequence[Any]] = None) -> List[Any]:
        """Many reads at once, sharing this client's concurrency budget; results in order.

        Each item is a path (the whole object), a ``(path, offset, length)`` tuple
        (``length`` None: to the end of the object) -- the safetensors / parquet-footer /
        zarr-chunk pattern of many slices of many objects -- a :class:`pyfasts3.Read`, which
        may also pin its read to an ETag (``if_match``) or a version (``version_id``), or an
        :class:`ObjectInfo` from :meth:`list` or :meth:`head`: the whole object, pinned to the
        ETag listed (an object replaced since fails with ``ObjectChanged``).

        ``out=None``: returns one uint8 array per item, exactly as long as what was read.
        ``out``: one writable C-contiguous buffer per item (numpy arrays of any dtype,
        bytearrays, memoryviews...; several may be views of one array), item ``i`` landing
        at the start of ``out[i]`` -- ``length`` bytes, or ``nbytes(out[i])`` when ``length``
        is None; a ``length`` larger than the buffer is a ValueError. Returns the number of
        bytes written per item (fewer only where the object ends first). Buffers must not
        overlap; if the call raises, their contents are unspecified.

        Raises the error of the first failed item (its ``bucket``/``key`` attributes say
        which).
        """
        if isinstance(items, (str, bytes)):
            raise TypeError("get_many takes a sequence of paths, not a single path")
        reads = [_batch_item(item) for item in items]
        n = len(reads)
        if out is not None:
            if isinstance(out, (str, bytes)) or len(out) != n:
                raise ValueError(f"out must be a sequence of {n} writable buffers, one per item")
        if n == 0:
            return []
        requests = ffi.new("fasts3_get_request[]", n)
        keepalive = []
        with contextlib.ExitStack() as exports:
            for i, (req, read) in enumerate(zip(requests, reads)):
                bucket, key = split_object(read.path)
                offset, length = read.offset, read.length
                b = ffi.from_buffer("uint8_t[]", bucket.encode())
                k = ffi.from_buffer("uint8_t[]", key.encode())
                options, keep = _read_options(read.if_match, read.version_id, read.part_size)
                keepalive += (b, k, keep)
                req.struct_size = ffi.sizeof("fasts3_get_request")
                req.bucket, req.bucket_len, req.key, req.key_len = b, len(b), k, len(k)
                req.offset, req.options = offset, options
                if out is None:
                    req.buf, req.buf_len = ffi.NULL, TO_END if length is None else length
                    continue
                view = exports.enter_context(_writable_bytes(out[i]))
                if length is not None and length > view.nbytes:
                    raise ValueError(f"item {i} asks for {length} bytes but out[{i}] holds {view.nbytes}")
                req.buf_len = view.nbytes if length is None else length
                if req.buf_len:
                    cbuf = ffi.from_buffer("uint8_t[]", view, require_writable=True)
                    exports.callback(ffi.release, cbuf)
                else:
                    cbuf = ffi.new("uint8_t[1]")  # not NULL: NULL asks libfasts3 to allocate
                    keepalive.append(cbuf)
                req.buf = cbuf
            results = ffi.new("fasts3_get_result[]", n)
            with self._handle.borrow() as client:
                status = lib.fasts3_get_many(client, requests, n, _interrupt.cancel_token(), results, ffi.NULL)
        if status and not any(r.status != 0 for r in results):
            # A failure of the batch itself (not of one read) leaves every result untouched:
            # then no item is to blame, and the error is raised as it is.
            raise last_error(status)
        if out is None:
            found = [_owned_array(r.bytes) if r.status == 0 and r.bytes != ffi.NULL else None for r in results]
        else:
            found = [int(r.written) for r in results]
        # Each failed read carries its own error (naming its bucket and key); take them all so
        # each is freed, and raise the first.
        errors = [take_error(r.error) for r in results if r.status != 0 and r.error != ffi.NULL]
        if errors:
            raise errors[0]
        return found

    def head(self, path: str) -> ObjectInfo:
        """Size, ETag, last-modified time and content type of one object."""
        bucket, key = split_object(path)
        b, k = bucket.encode(), key.encode()
        out = ffi.new("fasts3_object_page **")
        with self._handle.borrow() as client:
            rustcall(lib.fasts3_head, client, b, len(b), k, len(k), _interrupt.cancel_token(), out, ffi.NULL,
                     bucket=bucket, key=key)
        return _take_page(out[0]).infos(bucket, with_content_type=True)[0]

    # -- asyncio (pyfasts3.aio: a native completion queue, no thread per call) ----------

    async def get_into_async(self, buf: Any, path: str, *, offset: int = 0, if_match: Optional[str] = None,
                             version_id: Optional[str] = None, part_size: Optional[int] = None) -> int:
        """:meth:`get_into` for asyncio: the event loop keeps running during the transfer.
        ``buf`` must stay alive and untouched until the await returns. Cancelling the task
        cancels the read and returns only once nothing writes into ``buf`` any more."""
        from . import aio

        return await aio.get_into(self, buf, path, offset=offset, if_match=if_match, version_id=version_id,
                                  part_size=part_size)

    async def get_async(self, path: str, *, offset: int = 0, length: Optional[int] = None,
                        if_match: Optional[str] = None, version_id: Optional[str] = None,
                        part_size: Optional[int] = None) -> np.ndarray:
        """:meth:`get` for asyncio (a new uint8 array; cancelled with its task)."""
        from . import aio

        return await aio.get(self, path, offset=offset, length=length, if_match=if_match, version_id=version_id,
                             part_size=part_size)

    async def get_many_async(self, items: Sequence[Any], *, out: Optional[Sequence[Any]] = None) -> list:
        """:meth:`get_many` for asyncio (same items, ``out=``, results and errors): every read
        runs to its end, then the error of the first failed item (by position) is raised.
        Cancelling the task cancels every read and returns once all have ended."""
        from . import aio

        return await aio.get_many(self, items, out=out)

    async def put_from_async(self, buf: Any, path: str, *, content_type: Optional[str] = None,
                             if_none_match: bool = False, metadata: Optional[Mapping[str, str]] = None,
                             multipart_threshold: Optional[int] = None, part_size: Optional[int] = None) -> int:
        """:meth:`put_from` for asyncio. Returns the number of parts sent (0 for a single PUT),
        as :meth:`put_from` does. ``buf`` must stay alive and unchanged until the await
        returns. Parts are copied as they are sent (bounded by ``max_concurrency``); a
        cancelled multipart upload is aborted."""
        from . import aio

        return await aio.put_from(self, buf, path, content_type=content_type, if_none_match=if_none_match,
                                  metadata=metadata, multipart_threshold=multipart_threshold, part_size=part_size)

    # -- writing ---------------------------------------------------------------------

    def put_from(self, buf: Any, path: str, *, content_type: Optional[str] = None,
                 if_none_match: bool = False, metadata: Optional[Mapping[str, str]] = None,
                 multipart_threshold: Optional[int] = None, part_size: Optional[int] = None) -> int:
        """Upload the bytes of ``buf`` (any C-contiguous buffer: numpy array, bytearray,
        bytes, memoryview, mmap) as the object at ``path``.

        Up to ``multipart_threshold`` bytes (default 16 MiB) go in one PUT; above it, a
        multipart upload sends parts of ``part_size`` bytes (default 8 MiB, grown so that at
        most 10,000 parts are needed; S3 allows 5 MiB..5 GiB) in parallel, within the
        client's ``max_concurrency``, straight from ``buf``'s memory (no copy). Each request
        carries the CRC32C of its bytes, which the server verifies. A failed or interrupted
        multipart upload is aborted before this returns: no parts stay stored.

        ``content_type`` and ``metadata`` (user metadata: names of ASCII letters, digits,
        ``-``, ``_``, ``.``; printable-ASCII values) are stored with the object.
        ``if_none_match=True`` only creates: if the key exists, nothing is written and
        :class:`PreconditionFailed` (a ``FileExistsError``) is raised.

        Returns the number of parts sent (0 for a single PUT). ``buf`` must not change
        during the call. The GIL is released; Ctrl-C cancels (and aborts) the upload.
        """
        bucket, key = split_object(path)
        b, k = bucket.encode(), key.encode()
        options, keepalive = _put_options(content_type, if_none_match, metadata, multipart_threshold, part_size)
        parts = ffi.new("uint32_t *")
        with _readable_bytes(buf) as view:
            nbytes = view.nbytes
            cbuf = ffi.from_buffer("uint8_t[]", view) if nbytes else ffi.NULL
            try:
                with self._handle.borrow() as client:
                    rustcall(lib.fasts3_put_from, client, b, len(b), k, len(k), cbuf, nbytes, options,
                             _interrupt.cancel_token(), parts, ffi.NULL, bucket=bucket, key=key)
            finally:
                if nbytes:
                    ffi.release(cbuf)
        return int(parts[0])

    def put(self, data: Any, path: str, *, content_type: Optional[str] = None,
            if_none_match: bool = False, metadata: Optional[Mapping[str, str]] = None) -> None:
        """Upload ``data`` (``bytes`` or any bytes-like object) as the object at ``path``;
        see :meth:`put_from` for the options."""
        self.put_from(data, path, content_type=content_type, if_none_match=if_none_match, metadata=metadata)

    def delete(self, path: str) -> None:
        """Delete the object at ``path``. Deleting a key that does not exist succeeds (as in
        S3); a missing bucket raises :class:`NoSuchBucket`."""
        bucket, key = split_object(path)
        b, k = bucket.encode(), key.encode()
        with self._handle.borrow() as client:
            rustcall(lib.fasts3_delete, client, b, len(b), k, len(k), _interrupt.cancel_token(), ffi.NULL,
                     bucket=bucket, key=key)

    def delete_many(self, paths: Sequence[str]) -> List[Tuple[str, S3Error]]:
        """Delete many objects (DeleteObjects: 1,000 keys per request, a few requests in
        flight, per bucket). Keys that do not exist count as deleted, as in S3.

        Returns the failures as ``(path, error)`` pairs, in the order of ``paths`` (empty
        when everything was deleted): one key refused (e.g. AccessDenied) does not stop the
        others. A failure of a whole request (e.g. a missing bucket) is reported for each of
        its keys. Invalid arguments raise before anything is deleted."""
        if isinstance(paths, (str, bytes)):
            raise TypeError("delete_many takes a sequence of paths, not a single path")
        by_bucket: Dict[str, List[Tuple[int, str, str]]] = {}
        for i, p in enumerate(paths):
            bucket, key = split_object(p)
            by_bucket.setdefault(bucket, []).append((i, p, key))
        failures: List[Tuple[int, str, S3Error]] = []
        for bucket, items in by_bucket.items():
            b = bucket.encode()
            encoded = [ffi.from_buffer("uint8_t[]", key.encode()) for _, _, key in items]
            keys = ffi.new("fasts3_str[]", len(items))
            for entry, k in zip(keys, encoded):
                entry.ptr, entry.len = k, len(k)
            results = ffi.new("fasts3_delete_result[]", len(items))
            with self._handle.borrow() as client:
                status = lib.fasts3_delete_many(client, b, len(b), keys, len(items), _interrupt.cancel_token(), results,
                                                ffi.NULL)
            if status != 0 and not any(r.status != 0 for r in results):
                raise last_error(status, bucket)  # the call itself failed: nothing to report per key
            for (i, p, _key), r in zip(items, results):
                if r.status != 0:
                    failures.append((i, p, take_error(r.error)))
        failures.sort(key=lambda f: f[0])
        return [(p, e) for _, p, e in failures]

    def copy(self, src: str, dst: str, *, multipart_threshold: Optional[int] = None,
             part_size: Optional[int] = None) -> None:
        """Copy the object at ``src`` to ``dst`` on the server (no bytes pass through this
        machine), keeping its content type and metadata. Sources above
        ``multipart_threshold`` (default 5 GiB, the largest CopyObject) are copied in parts
        of ``part_size`` (default 256 MiB) in parallel, pinned to the source's ETag
        (:class:`ObjectChanged` if it is replaced meanwhile); a failed multipart copy is
        aborted."""
        sb, sk = split_object(src)
        db, dk = split_object(dst)
        options = ffi.new("fasts3_copy_options *")
        options.struct_size = ffi.sizeof("fasts3_copy_options")
        options.multipart_threshold = _size_option("multipart_threshold", multipart_threshold)
        options.part_size = _size_option("part_size", part_size)
        args = [x.encode() for x in (sb, sk, db, dk)]
        with self._handle.borrow() as client:
            rustcall(lib.fasts3_copy, client, args[0], len(args[0]), args[1], len(args[1]), args[2], len(args[2]),
                     args[3], len(args[3]), options, _interrupt.cancel_token(), ffi.NULL, bucket=sb, key=sk)

    # -- listing ---------------------------------------------------------------------

    def _pages(self, path: str, delimiter: Optional[str], page_size: int,
               start_after: Optional[str] = None) -> Iterator[Tuple[str, _Page]]:
        bucket, prefix = split_prefix(path)
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= 1000:
            raise ValueError(f"page_size must be an int between 1 and 1000, got {page_size!r}")
        _check_delimiter(delimiter)
        b, p = bucket.encode(), prefix.encode()
        d = delimiter.encode() if delimiter else ffi.NULL
        s = start_after.encode() if start_after else ffi.NULL
        out = ffi.new("fasts3_list_cursor **")
        with self._handle.borrow() as client:
            rustcall(lib.fasts3_list_cursor_new, client, b, len(b), p, len(p), d, s, page_size, out, ffi.NULL,
                     bucket=bucket)
        cursor = ffi.gc(out[0], lib.fasts3_list_cursor_free)
        try:
            while True:
                page_out = ffi.new("fasts3_object_page **")
                rustcall(lib.fasts3_list_next, cursor, _interrupt.cancel_token(), page_out, ffi.NULL, bucket=bucket)
                if page_out[0] == ffi.NULL:
                    return
                yield bucket, _take_page(page_out[0])
        finally:
            ffi.release(cursor)

    def _list_all(self, path: str, delimiter: Optional[str], parallel: bool) -> Tuple[str, _Page]:
        """The whole listing in one native call (pages fetched and concatenated in Rust)."""
        bucket, prefix = split_prefix(path)
        _check_delimiter(delimiter)
        b, p = bucket.encode(), prefix.encode()
        d = delimiter.encode() if delimiter else ffi.NULL
        out = ffi.new("fasts3_object_page **")
        with self._handle.borrow() as client:
            rustcall(lib.fasts3_list_all, client, b, len(b), p, len(p), d, bool(parallel), _interrupt.cancel_token(),
                     out, ffi.NULL, bucket=bucket)
        return bucket, _take_page(out[0])

    def list_keys(self, path: str, *, delimiter: Optional[str] = None, parallel: bool = False) -> List[str]:
        """Keys (without the bucket) starting with the prefix in ``path`` (``"bucket"`` or
        ``"bucket/prefix"``), in S3's order. With a delimiter: the keys at that level and
        the common prefixes (each ending in the delimiter), merged in S3's order.

        ``parallel=True`` (no delimiter) lists the ``/`` tree under the prefix concurrently:
        each directory's subdirectories are listed at the same time, within the client's
        ``max_concurrency``, and merged back into S3's order. Same result; much faster on
        key spaces spread over many directories, no faster on a flat one."""
        _, page = self._list_all(path, delimiter, parallel)
        if not page.common_prefixes:
            return page.keys
        level = page.keys + page.common_prefixes
        if page.keys:
            # Keys and prefixes interleave in UTF-8 byte order.
            level.sort(key=lambda s: s.encode("utf-8"))
        return level

    def list_objects(self, path: str, *, delimiter: Optional[str] = None,
                     page_size: int = 1000, parallel: bool = False) -> Iterator[ObjectInfo]:
        """Iterate over the objects under ``path`` as :class:`ObjectInfo`, fetched one page
        (``page_size`` keys) at a time, so memory stays flat on huge buckets. With a
        delimiter, only the objects at that level are yielded (see ``list_keys`` for the
        common prefixes). ``content_type`` is None: listings do not carry it.

        ``parallel=True`` (no delimiter) walks the ``/`` tree concurrently as in
        ``list_keys``; the whole listing is then fetched before the first item is yielded."""
        if parallel and delimiter is None:
            bucket, page = self._list_all(path, None, True)
            yield from page.infos(bucket)
            return
        for bucket, page in self._pages(path, delimiter, page_size):
            yield from page.infos(bucket)


def _rebuild_client(kwargs: dict) -> Client:
    return Client(**kwargs)


def _check_delimiter(delimiter: Optional[str]) -> None:
    if delimiter is not None and (not isinstance(delimiter, str) or not delimiter or "\0" in delimiter):
        raise ValueError(f"delimiter must be a non-empty str, got {delimiter!r}")
