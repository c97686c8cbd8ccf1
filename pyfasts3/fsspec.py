"""An fsspec filesystem over pyfasts3 (read side): pandas, pyarrow, dask, zarr and xarray
reach S3 through it with ``fasts3://bucket/key`` URLs.

    import pandas as pd
    df = pd.read_parquet("fasts3://bucket/table.parquet",
                         storage_options={"endpoint_url": "http://127.0.0.1:9000"})

The protocol ``fasts3`` is registered through the ``fsspec.specs`` entry point when pyfasts3
is installed (and when this module is imported). To serve ``s3://`` URLs with pyfasts3
instead of s3fs as well, one line: ``pyfasts3.fsspec.register_s3()``.

``storage_options`` are the ones s3fs users pass: ``key``, ``secret``, ``token``, ``anon``,
``endpoint_url``, ``profile``, ``client_kwargs={"region_name": ..., "endpoint_url": ...}``;
from ``config_kwargs`` (botocore's Config) the addressing style (``{"s3":
{"addressing_style": "path"}}``), ``connect_timeout``, ``read_timeout`` and
``max_pool_connections`` (as ``max_concurrency``) are honoured and every other entry is
ignored (pyfasts3 has its own retry policy and transport). pyfasts3's own Client options
(``region``, ``path_style``, ``max_concurrency``, ``part_size``, ``connect_timeout``,
``read_timeout``, ``checksum``) are accepted too. Options pyfasts3 cannot honour
(``version_aware=True``, ``requester_pays=True``, ``s3_additional_kwargs``) raise
NotImplementedError rather than being dropped silently.

Reading is complete: ls / info / find / glob / walk (``find`` and ``walk`` without a
``maxdepth`` use one parallel listing of the whole subtree), cat_file with start/end and
cat_ranges on the ranged GET path (ranges fetched concurrently), cat of many files through
``get_many``, open (``Client.open``'s reader), get_file (straight into a memory-mapped
temporary file, then renamed).

Writing: pipe_file / pipe (``Client.put_from``; ``mode="create"`` only creates), put_file
(from a memory map of the local file, so large files go up as a parallel multipart upload
without a copy), rm_file / rm (recursive rm lists once and deletes in batches of 1,000 with
``delete_many``; any key the server refuses raises an OSError naming it), cp_file (server-side
copy), mv (copy then delete), touch (an empty object), open "wb" (each 16 MiB written goes
out as a part of a multipart upload, completed on close; see :class:`pyfasts3.io.ObjectWriter`). This filesystem keeps no
listing cache, so there is nothing to invalidate after a write. Creating or deleting buckets
is not available.

Why ``_open`` returns :class:`pyfasts3.io.ObjectReader` rather than an
``AbstractBufferedFile``: its ``readinto`` lands bytes directly in the caller's buffer (what
pyarrow and numpy use), its readahead adapts to sequential scans, and the one implementation
serves ``Client.open`` and fsspec alike. It has ``size`` like fsspec files.
"""
from __future__ import annotations

import errno
import mmap
import os
import threading
from glob import has_magic
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Tuple

import fsspec
from fsspec.callbacks import DEFAULT_CALLBACK
from fsspec.spec import AbstractFileSystem

from .client import DEFAULT_MAX_GAP, Client
from .errors import NoSuchKey
from .io import download_to_file, open_object

__all__ = ["FastS3FileSystem", "register_s3"]

# s3fs options that change nothing for a pyfasts3 reader (caching knobs of s3fs's own file
# class and session plumbing); accepted so that s3fs storage_options work unchanged.
_S3FS_IGNORED = {
    "use_ssl", "default_fill_cache", "default_cache_type", "cache_regions", "session",
    "fixed_upload_size", "username", "password", "kwargs", "loop",
}
# Options of fsspec's own base class.
_FSSPEC_BASE = {"use_listings_cache", "listings_expiry_time", "max_paths", "add_docs", "add_aliases"}
_CLIENT_KWARGS = {
    "region_name": "region", "endpoint_url": "endpoint_url", "aws_access_key_id": "access_key_id",
    "aws_secret_access_key": "secret_access_key", "aws_session_token": "session_token",
}
_NOT_SUPPORTED_FLAGS = ("version_aware", "requester_pays")


def _enoent(path: str) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)


class FastS3FileSystem(AbstractFileSystem):
    """fsspec filesystem for S3 on pyfasts3 (see the module docstring).

    Paths are ``bucket/key`` (``fasts3://``, ``s3://`` and ``s3a://`` prefixes are stripped).
    Directories are key prefixes ending in ``/``, as in s3fs.
    """

    protocol = ("fasts3", "s3", "s3a")
    root_marker = ""

    def __init__(
        self,
        key: Optional[str] = None,
        secret: Optional[str] = None,
        token: Optional[str] = None,
        anon: bool = False,
        endpoint_url: Optional[str] = None,
        profile: Optional[str] = None,
        client_kwargs: Optional[Dict[str, Any]] = None,
        config_kwargs: Optional[Dict[str, Any]] = None,
        default_block_size: Optional[int] = None,
        asynchronous: bool = False,
        s3_additional_kwargs: Optional[Dict[str, Any]] = None,
        region: Optional[str] = None,
        path_style: Optional[bool] = None,
        max_concurrency: Optional[int] = None,
        part_size: Optional[int] = None,
        connect_timeout: Optional[float] = None,
        read_timeout: Optional[float] = None,
        checksum: Optional[str] = None,
        **kwargs: Any,
    ):
        # `asynchronous` is accepted for callers that ask every filesystem for it (zarr does,
        # and wraps a synchronous one like this in fsspec's AsyncFileSystemWrapper).
        base_options = {k: kwargs.pop(k) for k in list(kwargs) if k in _FSSPEC_BASE}
        for flag in _NOT_SUPPORTED_FLAGS:
            if kwargs.pop(flag, False):
                raise NotImplementedError(f"pyfasts3's fsspec filesystem does not support {flag}=True yet")
        if s3_additional_kwargs:
            raise NotImplementedError(
                "pyfasts3's fsspec filesystem does not support s3_additional_kwargs "
                f"({sorted(s3_additional_kwargs)}) yet"
            )
        unknown = sorted(k for k in kwargs if k not in _S3FS_IGNORED)
        if unknown:
            raise TypeError(f"FastS3FileSystem got unexpected storage option(s): {', '.join(unknown)}")
        super().__init__(**base_options)

        options: Dict[str, Any] = {
            "endpoint_url": endpoint_url, "region": region, "access_key_id": key,
            "secret_access_key": secret, "session_token": token, "profile": profile,
            "anonymous": bool(anon), "path_style": path_style, "max_concurrency": max_concurrency,
            "part_size": part_size, "connect_timeout": connect_timeout, "read_timeout": read_timeout,
            "checksum": checksum,
        }
        for name, value in (client_kwargs or {}).items():
            if name not in _CLIENT_KWARGS:
                raise TypeError(
                    f"client_kwargs[{name!r}] is not supported by pyfasts3 "
                    f"(supported: {', '.join(sorted(_CLIENT_KWARGS))})"
                )
            if options.get(_CLIENT_KWARGS[name]) is None:
                options[_CLIENT_KWARGS[name]] = value
        config = dict(config_kwargs or {})
        style = (config.get("s3") or {}).get("addressing_style")
        if options["path_style"] is None and style in ("path", "virtual"):
            options["path_style"] = style == "path"
        for ours, theirs in (("connect_timeout", "connect_timeout"), ("read_timeout", "read_timeout"),
                             ("max_concurrency", "max_pool_connections")):
            if options[ours] is None and config.get(theirs) is not None:
                options[ours] = config[theirs]
        self.client = _shared_client(options)
        self.default_block_size = default_block_size

    # -- paths ---------------------------------------------------------------------

    @classmethod
    def _strip_protocol(cls, path):
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        path = fsspec.utils.stringify_path(path)
        for proto in cls.protocol:
            if path.startswith(proto + "://"):
                path = path[len(proto) + 3:]
                break
        return path.lstrip("/").rstrip("/")

    @staticmethod
    def _split(path: str) -> Tuple[str, str]:
        bucket, _, key = path.partition("/")
        return bucket, key

    @staticmethod
    def _file_entry(bucket: str, info) -> Dict[str, Any]:
        name = f"{bucket}/{info.key}"
        entry = {"name": name, "size": info.size, "type": "file", "ETag": info.etag,
                 "LastModified": info.last_modified, "Key": name, "Size": info.size}
        if info.content_type is not None:
            entry["ContentType"] = info.content_type
        return entry

    @staticmethod
    def _dir_entry(name: str) -> Dict[str, Any]:
        name = name.rstrip("/")
        return {"name": name, "size": 0, "type": "directory", "Key": name, "Size": 0, "StorageClass": "DIRECTORY"}

    def _first_page(self, path: str, delimiter: Optional[str]):
        """The first (up to 1-key) listing page under ``path``, or None."""
        pages = self.client._pages(path, delimiter, 1)
        try:
            return next(pages, (None, None))[1]
        finally:
            pages.close()

    # -- listing -------------------------------------------------------------------

    def ls(self, path, detail=True, **kwargs):
        path = self._strip_protocol(path)
        if not path:
            raise NotImplementedError("listing buckets is not available in pyfasts3 yet; list 'bucket/prefix'")
        bucket, key = self._split(path)
        prefix = f"{key}/" if key else ""
        entries: List[Dict[str, Any]] = []
        saw_marker = False
        for _, page in self.client._pages(f"{bucket}/{prefix}", "/", 1000):
            for info in page.infos(bucket):
                if info.key == prefix:
                    saw_marker = True  # the directory's own marker object ("dir/")
                    continue
                entries.append(self._file_entry(bucket, info))
            entries.extend(self._dir_entry(f"{bucket}/{p}") for p in page.common_prefixes)
        if not entries and key and not saw_marker:
            # Like s3fs: ls of a file is that file; of nothing, FileNotFoundError.
            entries = [self.info(path)]
            if entries[0]["type"] == "directory":
                entries = []
        entries.sort(key=lambda e: e["name"])
        return entries if detail else [e["name"] for e in entries]

    def info(self, path, **kwargs):
        path = self._strip_protocol(path)
        if not path:
            return self._dir_entry("")
        bucket, key = self._split(path)
        if not key:
            self._first_page(bucket, "/")  # NoSuchBucket (a FileNotFoundError) if missing
            return self._dir_entry(bucket)
        try:
            return self._file_entry(bucket, self.client.head(path))
        except NoSuchKey:
            pass
        page = self._first_page(f"{path}/", "/")
        if page is not None and (page.keys or page.common_prefixes):
            return self._dir_entry(path)
        raise _enoent(path)

    def _flat_listing(self, path: str) -> Dict[str, Dict[str, Any]]:
        """Every object under the directory ``path`` (one parallel listing): name -> entry.
        Directory marker objects (keys ending in "/") come back as directory entries."""
        bucket, key = self._split(path)
        prefix = f"{key}/" if key else ""
        _, page = self.client._list_all(f"{bucket}/{prefix}", None, True)
        out = {}
        for info in page.infos(bucket):
            if info.key.endswith("/"):
                if info.key != prefix:
                    entry = self._dir_entry(f"{bucket}/{info.key}")
                    out[entry["name"]] = entry
            else:
                out[f"{bucket}/{info.key}"] = self._file_entry(bucket, info)
        return out

    def find(self, path, maxdepth=None, withdirs=False, detail=False, **kwargs):
        if maxdepth is not None:
            # Depth-limited: fsspec's walk, one delimiter listing per directory.
            return super().find(path, maxdepth=maxdepth, withdirs=withdirs, detail=detail, **kwargs)
        path = self._strip_protocol(path)
        if not path:
            raise NotImplementedError("listing buckets is not available in pyfasts3 yet; find 'bucket/prefix'")
        try:
            listing = self._flat_listing(path)
        except FileNotFoundError:
            listing = {}
        out: Dict[str, Dict[str, Any]] = {}
        for name, entry in listing.items():
            if entry["type"] == "directory":
                if withdirs:
                    out[name] = entry
                continue
            out[name] = entry
            if withdirs:
                # Every directory between `path` and the file.
                parent = name.rsplit("/", 1)[0]
                while len(parent) > len(path) and parent not in out:
                    out[parent] = self._dir_entry(parent)
                    parent = parent.rsplit("/", 1)[0]
        if out and withdirs:
            out[path] = self._dir_entry(path)
        if not out and "/" in path:
            try:
                entry = self.info(path)
            except FileNotFoundError:
                entry = None
            if entry is not None and entry["type"] == "file":
                out[path] = entry
        names = sorted(out)
        return {n: out[n] for n in names} if detail else names

    def walk(self, path, maxdepth=None, topdown=True, on_error="omit", **kwargs):
        if maxdepth is not None:
            yield from super().walk(path, maxdepth=maxdepth, topdown=topdown, on_error=on_error, **kwargs)
            return
        detail = kwargs.pop("detail", False)
        path = self._strip_protocol(path)
        try:
            if not path:
                raise NotImplementedError("listing buckets is not available in pyfasts3 yet")
            listing = self._flat_listing(path)
            if not listing and "/" in path and self.info(path)["type"] == "file":
                listing = {path: self.info(path)}
        except (FileNotFoundError, OSError) as e:
            if on_error == "raise":
                raise
            if callable(on_error):
                on_error(e)
            return
        # Build the tree of directories from the flat listing.
        tree: Dict[str, Tuple[Dict[str, Any], Dict[str, Any]]] = {path: ({}, {})}

        def ensure_dir(d: str) -> None:
            while d not in tree:
                tree[d] = ({}, {})
                parent, _, base = d.rpartition("/")
                tree.setdefault(parent, ({}, {}))[0][base] = self._dir_entry(d)
                d = parent

        for name, entry in sorted(listing.items()):
            if name == path:  # the path itself is a file
                tree[path][1][""] = entry
                continue
            parent, _, base = name.rpartition("/")
            ensure_dir(parent)
            if entry["type"] == "directory":
                ensure_dir(name)
            else:
                tree[parent][1][base] = entry

        def visit(d: str):
            dirs, files = tree[d]
            dirs_out: Any = dict(dirs) if detail else sorted(dirs)
            files_out: Any = dict(files) if detail else sorted(files)
            if topdown:
                yield d, dirs_out, files_out
            for sub in list(dirs_out):
                yield from visit(f"{d}/{sub}")
            if not topdown:
                yield d, dirs_out, files_out

        yield from visit(path)

    # -- reading -------------------------------------------------------------------

    def cat_file(self, path, start=None, end=None, **kwargs):
        path = self._strip_protocol(path)
        if (start is not None and start < 0) or (end is not None and end < 0):
            size = self.client.head(path).size
            if start is not None and start < 0:
                start = max(0, size + start)
            if end is not None and end < 0:
                end = max(0, size + end)
        start = start or 0
        if end is None:
            return self.client.get(path, offset=start).tobytes()
        if end <= start:
            self.client.head(path)  # still FileNotFoundError for a missing object
            return b""
        return self.client.get(path, offset=start, length=end - start).tobytes()

    def cat_ranges(self, paths, starts, ends, max_gap=None, on_error="return", **kwargs):
        """Byte ranges of one or more files. The ranges of one file go to
        :meth:`Client.get_ranges` together (coalesced below ``max_gap``, default 1 MiB, and
        pinned to one version of the file); files are fetched concurrently. Ranges with a
        negative or open end go through :meth:`cat_file` one by one."""
        if not isinstance(paths, list):
            raise TypeError("paths must be a list")
        starts = starts if isinstance(starts, list) else [starts] * len(paths)
        ends = ends if isinstance(ends, list) else [ends] * len(paths)
        if len(starts) != len(paths) or len(ends) != len(paths):
            raise ValueError("paths, starts and ends must have the same length")
        out: List[Any] = [None] * len(paths)
        by_file: Dict[str, List[int]] = {}
        singles = []
        for i, (p, s, e) in enumerate(zip(paths, starts, ends)):
            s = 0 if s is None else s
            if e is not None and s >= 0 and e >= 0:
                by_file.setdefault(self._strip_protocol(p), []).append(i)
            else:
                singles.append(i)
        gap = DEFAULT_MAX_GAP if max_gap is None else max_gap

        def fetch_file(item):
            path, idx = item
            try:
                ranges = [(starts[i] or 0, max(0, ends[i] - (starts[i] or 0))) for i in idx]
                for i, view in zip(idx, self.client.get_ranges(path, ranges, max_gap=gap)):
                    out[i] = view.tobytes()
            except Exception as exc:  # noqa: BLE001 - returned or raised below, per on_error
                for i in idx:
                    out[i] = exc

        def fetch_single(i):
            try:
                out[i] = self.cat_file(paths[i], starts[i], ends[i])
            except Exception as exc:  # noqa: BLE001 - returned or raised below, per on_error
                out[i] = exc

        jobs = [(fetch_file, item) for item in by_file.items()] + [(fetch_single, i) for i in singles]
        if jobs:
            with ThreadPoolExecutor(max_workers=min(32, len(jobs))) as pool:
                list(pool.map(lambda job: job[0](job[1]), jobs))
        if on_error != "return":
            for item in out:
                if isinstance(item, Exception):
                    raise item
        return out

    def cat(self, path, recursive=False, on_error="raise", **kwargs):
        paths = self.expand_path(path)
        if recursive:
            # The files under each path (find), not the directories expand_path adds.
            paths = sorted({f for p in paths for f in self.find(p)})
        if len(paths) == 1 and not isinstance(path, list) and paths[0] == self._strip_protocol(path):
            return self.cat_file(paths[0])
        try:
            return {p: a.tobytes() for p, a in zip(paths, self.client.get_many(paths))}
        except Exception:
            if on_error == "raise":
                raise
        # Some paths failed: fetch them one by one to know which.
        out = {}
        for p, value in zip(paths, self.cat_ranges(paths, None, None, on_error="return")):
            if isinstance(value, Exception):
                if on_error == "omit":
                    continue
            out[p] = value
        return out

    def _open(self, path, mode="rb", block_size=None, autocommit=True, cache_options=None, **kwargs):
        return open_object(self.client, self._strip_protocol(path), mode,
                           block_size=block_size or self.default_block_size)

    def get_file(self, rpath, lpath, callback=DEFAULT_CALLBACK, outfile=None, **kwargs):
        rpath = self._strip_protocol(rpath)
        if outfile is not None:
            return super().get_file(rpath, lpath, callback=callback, outfile=outfile, **kwargs)
        if self.isdir(rpath):
            os.makedirs(lpath, exist_ok=True)
            return None
        info = self.info(rpath)
        callback.set_size(info["size"])
        download_to_file(self.client, rpath, lpath, size=info["size"], etag=info.get("ETag"))
        callback.relative_update(info["size"])
        return None

    def modified(self, path):
        return self.info(path)["LastModified"]

    def ukey(self, path):
        return self.info(path)["ETag"]

    # -- writing -------------------------------------------------------------------

    def pipe_file(self, path, value, mode="overwrite", **kwargs):
        """Store ``value`` (bytes-like) as the object at ``path``; ``mode="create"`` raises
        FileExistsError (and writes nothing) if it exists."""
        if mode not in ("overwrite", "create"):
            raise ValueError(f"mode must be 'overwrite' or 'create', got {mode!r}")
        self.client.put_from(value, self._strip_protocol(path), if_none_match=mode == "create",
                             content_type=kwargs.get("ContentType"))

    def put_file(self, lpath, rpath, callback=DEFAULT_CALLBACK, mode="overwrite", **kwargs):
        if os.path.isdir(lpath):
            return None  # S3 has no directories: the files under it make the prefix
        rpath = self._strip_protocol(rpath)
        with open(lpath, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            callback.set_size(size)
            if size == 0:  # mmap cannot map an empty file
                self.pipe_file(rpath, b"", mode=mode, **kwargs)
            else:
                with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as mm:
                    self.pipe_file(rpath, mm, mode=mode, **kwargs)
        callback.relative_update(size)
        return None

    def rm_file(self, path):
        path = self._strip_protocol(path)
        if not self.exists(path):
            raise _enoent(path)
        self.client.delete(path)

    def _rm(self, path):
        if isinstance(path, list):
            self._delete_keys([self._strip_protocol(p) for p in path])
        else:
            self.rm_file(path)

    def rm(self, path, recursive=False, maxdepth=None):
        """Delete files; with ``recursive=True`` everything under directories (one parallel
        listing per directory, then DeleteObjects in batches of 1,000 keys, directory marker
        objects last). FileNotFoundError if a path matches nothing, IsADirectoryError for a
        directory without ``recursive``; an OSError naming the keys the server refused to
        delete (the others are deleted)."""
        if recursive and maxdepth is not None:
            # Depth-limited: fsspec's expansion (files and directories down to maxdepth).
            files = [p for p in self.expand_path(path, recursive=True, maxdepth=maxdepth) if not self.isdir(p)]
            self._delete_keys(files)
            return
        paths = path if isinstance(path, list) else [path]
        files: List[str] = []
        markers: List[str] = []
        for p in paths:
            p = self._strip_protocol(p)
            matches = self.expand_path(p) if has_magic(p) else [p]
            for m in matches:
                bucket, key = self._split(m)
                if not key:
                    raise NotImplementedError(f"deleting buckets is not available in pyfasts3 ({m})")
                if recursive:
                    _, page = self.client._list_all(f"{m}/", None, True)
                    under = [f"{bucket}/{k}" for k in page.keys]
                    if under:
                        files += [k for k in under if not k.endswith("/")]
                        markers += [k for k in under if k.endswith("/")]
                        try:  # "a" can be an object as well as the directory "a/"
                            self.client.head(m)
                            files.append(m)
                        except NoSuchKey:
                            pass
                        continue
                info = self.info(m)  # FileNotFoundError for nothing
                if info["type"] == "directory":
                    if not recursive:
                        raise IsADirectoryError(errno.EISDIR, "is a directory (use recursive=True)", m)
                    continue  # an empty bucket root: nothing to delete
                files.append(m)
        self._delete_keys(files)
        # Markers after the files, deepest first: some servers (versitygw's posix backend)
        # map them to real directories that must be empty to go.
        self._delete_keys(sorted(markers, key=lambda k: -k.count("/")))

    def _delete_keys(self, keys: List[str]) -> None:
        failures = self.client.delete_many(keys) if keys else []
        if failures:
            shown = "; ".join(f"{p}: {e}" for p, e in failures[:5])
            more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
            error = OSError(errno.EIO, f"could not delete {len(failures)} of {len(keys)} objects: {shown}{more}")
            error.failures = failures
            raise error from failures[0][1]

    def cp_file(self, path1, path2, **kwargs):
        """Server-side copy (no bytes pass through this machine)."""
        path1, path2 = self._strip_protocol(path1), self._strip_protocol(path2)
        if self.isdir(path1):
            return None  # directories are prefixes: nothing to copy
        self.client.copy(path1, path2)
        return None

    def touch(self, path, truncate=True, **kwargs):
        """Create an empty object (replacing an existing one when ``truncate``). As in
        s3fs, S3 cannot update an existing object's time: ``truncate=False`` on an existing
        object raises ValueError."""
        path = self._strip_protocol(path)
        if not truncate and self.exists(path):
            raise ValueError("S3 does not support touching an existing object without truncating it")
        self.client.put_from(b"", path)

    def rmdir(self, path):
        # S3 has no directories: under a bucket this is a no-op (as in s3fs); deleting a
        # bucket is not available.
        if "/" not in self._strip_protocol(path):
            raise NotImplementedError("deleting buckets is not available in pyfasts3")

    def mkdir(self, path, create_parents=True, **kwargs):
        # S3 has no directories: under a bucket this is a no-op (as in s3fs).
        if "/" not in self._strip_protocol(path):
            raise NotImplementedError("creating buckets is not available in pyfasts3")

    def makedirs(self, path, exist_ok=False):
        self.mkdir(path)


_CLIENTS: Dict[Tuple[Tuple[str, str], ...], Client] = {}
_CLIENTS_LOCK = threading.Lock()


def _shared_client(options: Dict[str, Any]) -> Client:
    """One Client (connection pool, concurrency budget) per configuration in this process:
    fsspec caches a filesystem instance per thread, and they should not each open their own."""
    key = tuple(sorted((name, repr(value)) for name, value in options.items()))
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None or client.closed:
            client = _CLIENTS[key] = Client(**options)
        return client


def _reset_lock_in_child() -> None:
    # Another thread may have held it at fork() time; clients themselves survive fork.
    global _CLIENTS_LOCK
    _CLIENTS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_reset_lock_in_child)


def register_s3(clobber: bool = True) -> None:
    """Serve ``s3://`` and ``s3a://`` URLs with pyfasts3 (instead of s3fs) in this process:
    ``pyfasts3.fsspec.register_s3()``."""
    for name in ("s3", "s3a"):
        fsspec.register_implementation(name, FastS3FileSystem, clobber=clobber)


fsspec.register_implementation("fasts3", FastS3FileSystem, clobber=True)
