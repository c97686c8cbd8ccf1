"""File objects over S3 objects: ``client.open(path)`` for code that wants a file
(pyarrow, numpy, tarfile, h5py, torch.load, pandas...).

The reader is an :class:`io.BufferedReader` over :class:`ObjectRawReader`, an
:class:`io.RawIOBase` whose ``readinto`` asks libfasts3 to write straight into the
caller's buffer (``Client.get_into`` at the current offset). Its size and ETag come from one
HEAD at open time.

Readahead adapts to the access pattern: a read smaller than the current readahead fetches
``readahead`` bytes into an internal block and serves later reads from it; every fetch that
starts where the previous one ended doubles the readahead (up to 64 MiB), and a seek
elsewhere resets it. A sequential scan therefore turns into ever larger requests, which the
engine splits into parallel ranged GETs, while random access (Parquet footers, tar headers)
stays cheap. Reads at least as large as the readahead skip the block and land directly in the
caller's memory.

Version pinning: every fetch is pinned to the ETag seen at open (``get_into(...,
if_match=etag)``, sent as ``If-Match`` and checked on every response), so a file object never
mixes two versions of an object: a replaced object raises :class:`~pyfasts3.ObjectChanged` at
the next fetch, whatever its size. A server that sends no ETag (versitygw serving files it did
not write) leaves only Last-Modified, which the engine compares across the parts of one fetch;
between fetches such an object is checked by its size alone.

Writing: ``client.open(path, "wb")`` returns an :class:`ObjectWriter`, which streams: each
16 MiB written goes out as a part of a multipart upload, sent in the background (several at
a time) while writing continues, so memory stays bounded however large the object; ``close()``
completes the upload. An object smaller than one part is stored with one PUT at close.
Leaving a ``with`` block by an exception (or a failed part) aborts the upload: nothing is
stored and no parts are left behind. ``"xb"`` only creates (``FileExistsError`` at close if
the key exists). S3 objects cannot be appended to or updated in place: ``"a"`` and ``"+"``
modes raise NotImplementedError.
"""
from __future__ import annotations

import contextlib
import io
import mmap
import os
import threading
from typing import TYPE_CHECKING, Any, BinaryIO, Iterator, Optional

from ._paths import split_object
from .errors import InvalidRange, ObjectChanged

if TYPE_CHECKING:  # pragma: no cover
    from .client import Client

#: Default first readahead (and the minimum request for small reads).
DEFAULT_BLOCK_SIZE = 1 << 20
#: Readahead never grows beyond this.
MAX_READAHEAD = 64 << 20
#: Part size of the writer's multipart upload (S3 allows 5 MiB..5 GiB; 10,000 parts of
#: 16 MiB cover 156 GiB).
WRITE_PART_SIZE = 16 << 20
MIN_WRITE_PART_SIZE = 5 << 20

# No readahead block yet.
_EMPTY = b""

NO_APPEND = "S3 objects cannot be appended to or updated in place; open with 'wb' to replace the object"


class ObjectRawReader(io.RawIOBase):
    """Unbuffered, seekable reader of one S3 object (see the module docstring).

    Attributes: ``size`` and ``etag`` (from the HEAD at open), ``name`` (the path given),
    ``bucket``, ``key``.
    """

    def __init__(self, client: "Client", path: str, *, block_size: Optional[int] = None):
        super().__init__()
        if block_size is None:
            block_size = DEFAULT_BLOCK_SIZE
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise ValueError(f"block_size must be a positive int, got {block_size!r}")
        self.bucket, self.key = split_object(path)
        self.name = path
        self._client = client
        info = client.head(path)
        self.size: int = info.size
        self.etag: str = info.etag
        self._pos = 0
        self._block_size = block_size
        self._readahead = block_size
        # The readahead block: numpy.empty, not bytearray, because bytearray(n) zero-fills
        # (touching every page before the download writes it).
        self._block = _EMPTY
        self._block_start = 0
        self._block_len = 0
        self._last_fetch_end: Optional[int] = None
        # True while every fetch so far continued a scan that began at byte 0.

    # -- io.RawIOBase ----------------------------------------------------------------

    def readable(self) -> bool:
        self._check_open()
        return True

    def seekable(self) -> bool:
        self._check_open()
        return True

    def writable(self) -> bool:
        self._check_open()
        return False

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        if whence == io.SEEK_SET:
            new = offset
        elif whence == io.SEEK_CUR:
            new = self._pos + offset
        elif whence == io.SEEK_END:
            new = self.size + offset
        else:
            raise ValueError(f"invalid whence ({whence!r}, should be 0, 1 or 2)")
        if new < 0:
            raise OSError(22, f"negative seek position {new}")
        self._pos = new
        return new

    def readinto(self, buf: Any) -> int:
        self._check_open()
        with memoryview(buf) as raw_view:
            if raw_view.readonly:
                raise TypeError("readinto() needs a writable buffer")
            if raw_view.nbytes == 0:
                return 0  # (cast() refuses shapes with a 0 in them)
            with raw_view.cast("B") as view:
                return self._readinto(view)

    def readall(self) -> bytes:
        self._check_open()
        remaining = max(0, self.size - self._pos)
        out = bytearray(remaining)
        n = self._readinto(memoryview(out)) if remaining else 0
        del out[n:]
        return bytes(out)

    def close(self) -> None:
        self._block = _EMPTY
        super().close()

    # -- internals -----------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def _readinto(self, view: memoryview) -> int:
        want = min(len(view), max(0, self.size - self._pos))
        if want == 0:
            return 0
        done = self._copy_from_block(view[:want], self._pos)
        if done < want:
            pos = self._pos + done
            self._adapt_readahead(pos)
            if want - done >= self._readahead:
                # Large read: straight into the caller's memory.
                self._fetch(view[done:want], pos)
            else:
                n = min(self._readahead, self.size - pos)
                if len(self._block) < n:
                    # Once, at the largest size the readahead can reach for this object:
                    # only the pages a fetch writes are ever faulted in, and a growing
                    # readahead reuses the ones earlier fetches touched. (Anonymous memory
                    # comes zeroed by the kernel as it is touched; numpy is not needed.)
                    self._block = mmap.mmap(-1, min(MAX_READAHEAD, self.size))
                self._block_len = 0
                with memoryview(self._block) as block:
                    self._fetch(block[:n], pos)
                self._block_start, self._block_len = pos, n
                self._copy_from_block(view[done:want], pos)
        self._pos += want
        return want

    def _copy_from_block(self, view: memoryview, pos: int) -> int:
        """Copy into ``view`` what the readahead block holds from ``pos`` on; the count."""
        start = pos - self._block_start
        if self._block_len == 0 or start < 0 or start >= self._block_len:
            return 0
        n = min(len(view), self._block_len - start)
        with memoryview(self._block) as block:
            view[:n] = block[start:start + n]
        return n

    def _adapt_readahead(self, pos: int) -> None:
        if pos == self._last_fetch_end:
            self._readahead = min(self._readahead * 2, MAX_READAHEAD)
        else:
            self._readahead = self._block_size

    def _fetch(self, view: memoryview, pos: int) -> None:
        """Fill ``view`` with the bytes at ``pos`` (all inside the size seen at open)."""
        expected = len(view)
        try:
            got = self._client.get_into(view, f"{self.bucket}/{self.key}", offset=pos, if_match=self.etag or None)
        except InvalidRange:
            got = 0
        if got != expected:
            raise ObjectChanged(
                f"s3://{self.bucket}/{self.key} changed while open: {expected} bytes expected at offset "
                f"{pos} (size {self.size} at open, ETag {self.etag}), got {got}",
                code="ObjectChanged", bucket=self.bucket, key=self.key,
            )
        self._last_fetch_end = pos + expected


class ObjectReader(io.BufferedReader):
    """The buffered reader ``Client.open`` returns: an :class:`io.BufferedReader` with the
    object's ``size``, ``etag``, ``bucket`` and ``key`` as attributes."""

    raw: ObjectRawReader

    @property
    def size(self) -> int:
        return self.raw.size

    @property
    def etag(self) -> str:
        return self.raw.etag

    @property
    def bucket(self) -> str:
        return self.raw.bucket

    @property
    def key(self) -> str:
        return self.raw.key

    def __reduce__(self):
        raise TypeError("an open pyfasts3 file cannot be pickled: pickle the Client (or the path) instead")


class ObjectWriter(io.RawIOBase):
    """Write-only file object for one S3 object (see the module docstring). Bytes gather in
    a buffer of ``part_size``; each time it fills, it is sent as a part of a multipart upload
    (started then), in the background while writing goes on. ``close()`` sends the rest and
    completes the upload, or, for an object that never filled one part, stores it with one
    PUT. Closing after :meth:`discard` (what leaving a ``with`` block by an exception does)
    stores nothing and aborts an upload in progress; so does a failed part.

    Attributes: ``name`` (the path given), ``bucket``, ``key``.
    """

    def __init__(self, client: "Client", path: str, *, if_none_match: bool = False,
                 content_type: Optional[str] = None, part_size: int = WRITE_PART_SIZE):
        super().__init__()
        self.bucket, self.key = split_object(path)  # invalid paths fail now, not at close
        self.name = path
        self._client = client
        self._if_none_match = if_none_match
        self._content_type = content_type
        if not isinstance(part_size, int) or part_size < MIN_WRITE_PART_SIZE:
            raise ValueError(f"part_size must be an int of at least {MIN_WRITE_PART_SIZE} bytes (5 MiB)")
        self._part_size = part_size
        self._buffer: Optional[bytearray] = bytearray()
        self._upload = None  # a client._Upload once the first part is sent
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        with memoryview(data) as view:
            n = view.nbytes
            if n == 0:
                return 0
            with (view.cast("B") if view.c_contiguous else memoryview(view.tobytes())) as flat:
                start = 0
                while start < n:
                    if not self._buffer and n - start >= self._part_size:
                        # A whole part of the caller's memory: sent from there (libfasts3
                        # copies it once), not copied into the buffer first.
                        self._send_part(flat[start:start + self._part_size])
                        start += self._part_size
                        continue
                    take = min(n - start, self._part_size - len(self._buffer))
                    self._buffer += flat[start:start + take]
                    start += take
                    if len(self._buffer) == self._part_size:
                        self._send_part(self._buffer)
                        self._buffer = bytearray()
        self._written += n
        return n

    def _send_part(self, part: Any) -> None:
        try:
            if self._upload is None:
                from .client import _Upload

                self._upload = _Upload(self._client, self.name, content_type=self._content_type,
                                       if_none_match=self._if_none_match)
            self._upload.write_part(part)
        except BaseException:
            self.discard()  # aborts the upload: no parts stay stored
            raise

    def tell(self) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        return self._written

    def discard(self) -> None:
        """Drop the buffered bytes and close without storing anything (an upload in
        progress is aborted)."""
        self._buffer = None
        upload, self._upload = self._upload, None
        try:
            if upload is not None:
                upload.close()
        finally:
            super().close()

    def close(self) -> None:
        """Store what was written (once) and close. If that fails the file is closed anyway
        (nothing is stored: an upload in progress is aborted) and the error propagates."""
        if self.closed:
            return
        buffer, self._buffer = self._buffer, None
        upload, self._upload = self._upload, None
        try:
            if upload is None:
                if buffer is not None:
                    self._client.put_from(buffer, self.name, content_type=self._content_type,
                                          if_none_match=self._if_none_match)
            else:
                if buffer:
                    upload.write_part(buffer)
                upload.finish()
        finally:
            if upload is not None:
                upload.close()
            super().close()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.discard()
        else:
            self.close()

    def __reduce__(self):
        raise TypeError("an open pyfasts3 file cannot be pickled: pickle the Client (or the path) instead")


def open_object(client: "Client", path: str, mode: str = "rb", *, block_size: Optional[int] = None):
    """Open the S3 object at ``path`` (``"bucket/key"`` or ``"s3://bucket/key"``).

    ``"rb"`` (or ``"r"``, treated as binary) returns an :class:`ObjectReader`:
    ``block_size`` is the first readahead in bytes (default 1 MiB); it doubles on sequential
    reads up to 64 MiB. One HEAD is sent now (size and ETag; NoSuchKey raises here).

    ``"wb"`` (or ``"w"``) returns an :class:`ObjectWriter`, which sends each 16 MiB written as
    a part of a multipart upload and completes it on close (one PUT for smaller objects);
    ``"xb"`` likewise but only creates the object. Use as a context manager or close().
    """
    if not isinstance(mode, str):
        raise TypeError(f"mode must be a str, got {type(mode).__name__}")
    if "a" in mode or "+" in mode:
        raise NotImplementedError(NO_APPEND)
    kinds = [c for c in mode if c in "rwx"]
    if len(kinds) != 1 or set(mode) - {kinds[0], "b"} or len(mode) > 2:
        raise ValueError(f"invalid mode {mode!r}: use 'rb', 'wb' or 'xb'")
    if kinds[0] in "wx":
        return ObjectWriter(client, path, if_none_match=kinds[0] == "x")
    raw = ObjectRawReader(client, path, block_size=block_size)
    # The buffered layer only serves reads smaller than 8 KiB; larger ones go straight
    # through to readinto (and so to the caller's memory when they exceed the readahead).
    return ObjectReader(raw, buffer_size=io.DEFAULT_BUFFER_SIZE)


# Objects of two windows or more are downloaded window by window through reused buffers
# (below); smaller ones are read in one call straight into a memory map of the file.
DOWNLOAD_WINDOW = 16 << 20
# Windows in flight per file: the others download while one is written out, so the transfer
# does not drain at every window's end. Each window is one request (``part_size``): the
# windows are the parallelism, and the engine's default of about eight requests per read
# cost the server 0.42 CPU s/GB against 0.34 (bench/README.md, "Command line copies").
DOWNLOAD_WINDOWS_IN_FLIGHT = 4
# Files are written in pieces of this size, not in one write per window or object. The page
# cache allocates a folio as large as the write (up to 2 MiB), and large folios are carved
# from large free blocks, which a VM that hands free memory back to its host (virtio-balloon
# free page reporting, as on Firecracker) must fault in from the host again: `pyfasts3 cp` of
# 1 GiB spent half its CPU copying into such folios with 256 KiB writes. Pieces up to 32 KiB
# kept it off them; 64 KiB did not (bench/README.md, "Command line copies").
FILE_WRITE_CHUNK = 32 << 10


def write_in_pieces(fd: int, data: memoryview, offset: int) -> None:
    """``pwrite`` all of ``data`` at ``offset`` in ``FILE_WRITE_CHUNK`` pieces."""
    while data:
        written = os.pwrite(fd, data[:FILE_WRITE_CHUNK], offset)
        data, offset = data[written:], offset + written


def download_to_file(client: "Client", path: str, local_path: str, *, size: Optional[int] = None,
                     etag: Optional[str] = None) -> int:
    """Download one object to ``local_path``, resumable-safe: the bytes land in a temporary
    file beside the target, which is renamed over it only once complete, so an interrupted
    copy never leaves a torn file. ``size`` and ``etag`` (from a listing) spare a HEAD for
    objects under two windows. Returns the number of bytes written.

    An object the server gives no ETag (versitygw serving files it did not write) cannot be
    pinned window by window (``if_match`` needs an ETag): it is read in one ``get_into``, whose
    parts the engine pins to the first response's Last-Modified."""
    if size is None or (size >= 2 * DOWNLOAD_WINDOW and etag is None):
        info = client.head(path)
        size, etag = info.size, info.etag
    with replaced_atomically(local_path) as f:
        if size >= 2 * DOWNLOAD_WINDOW and etag:
            return _download_in_windows(client, path, f.fileno(), size, etag)
        return _download_mapped(client, path, f, size)


def _download_mapped(client: "Client", path: str, f: BinaryIO, size: int) -> int:
    """The whole object in one ``get_into`` straight into a memory map of ``f``."""
    bucket, key = split_object(path)
    # One byte more than expected: a whole object is read (and its version pinned by the
    # engine) in one call, and an object that grew since it was listed shows.
    f.truncate(size + 1)
    with mmap.mmap(f.fileno(), size + 1) as mm:
        got = client.get_into(mm, path)
    if got > size:
        raise ObjectChanged(
            f"s3://{bucket}/{key} changed during the copy: listed with {size} bytes, now larger",
            code="ObjectChanged", bucket=bucket, key=key,
        )
    f.truncate(got)
    return got


def _download_in_windows(client: "Client", path: str, fd: int, size: int, etag: str) -> int:
    """A large object, window by window: each window is read with ``get_into`` into one of a
    few reused buffers (pinned to ``etag``) and written to ``fd`` at its offset.

    Why not one memory map of the file, as for smaller objects: the map makes the whole file
    resident in the process and faults every 4 KiB page in through the filesystem, one at a
    time; here only the reused buffers are faulted in, and the file gets one copy into the
    page cache per window. `pyfasts3 cp` of a 1 GiB object from versitygw, 8 interleaved runs
    each (30 Nov 2026): 171 MiB peak RSS against 1,062, 0.95x the wall time, 0.92x the CPU.
    """
    bucket, key = split_object(path)
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
    import queue

    buffers: "queue.SimpleQueue[bytearray]" = queue.SimpleQueue()
    for _ in range(DOWNLOAD_WINDOWS_IN_FLIGHT):
        buffers.put(bytearray(DOWNLOAD_WINDOW))
    # One window writes at a time: writes to one file take its inode lock in turn anyway,
    # and a second writer waiting in the kernel spins on that lock (30% of the CPU of a 1 GiB
    # copy in a perf profile) where here it sleeps.
    writing = threading.Lock()

    def window(offset: int) -> None:
        want = min(DOWNLOAD_WINDOW, size - offset)
        buf = buffers.get()
        try:
            view = memoryview(buf)[:want]
            got = client.get_into(view, path, offset=offset, if_match=etag, part_size=DOWNLOAD_WINDOW)
            if got != want:
                raise ObjectChanged(
                    f"s3://{bucket}/{key} changed during the copy: expected {size} bytes, "
                    f"it ends at {offset + got}", code="ObjectChanged", bucket=bucket, key=key)
            with writing:
                write_in_pieces(fd, view, offset)
        finally:
            buffers.put(buf)

    os.ftruncate(fd, size)
    pool = ThreadPoolExecutor(DOWNLOAD_WINDOWS_IN_FLIGHT, thread_name_prefix="pyfasts3-download")
    try:
        # The first failure ends the wait, whichever window it is in (not only once every
        # earlier window has been waited for), and is raised with its own message.
        done, _ = wait([pool.submit(window, at) for at in range(0, size, DOWNLOAD_WINDOW)],
                       return_when=FIRST_EXCEPTION)
        for finished in done:
            finished.result()
    finally:
        # On error or Ctrl-C: windows not started are dropped; the ones running end (each is
        # at most one window) before the temporary file is removed.
        pool.shutdown(wait=True, cancel_futures=True)
    return size


@contextlib.contextmanager
def replaced_atomically(local_path: str) -> Iterator[BinaryIO]:
    """A new temporary file beside ``local_path``, open for reading and writing; renamed over
    ``local_path`` when the block ends normally, deleted when it raises, so an interrupted
    write never leaves a torn file at ``local_path``."""
    directory = os.path.dirname(os.path.abspath(local_path))
    tmp, fd = _create_temp_beside(directory, os.path.basename(local_path))
    try:
        with os.fdopen(fd, "r+b") as f:
            yield f
        os.replace(tmp, local_path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _create_temp_beside(directory: str, name: str):
    """A new file ``.<name>.<random>.pyfasts3-part`` in ``directory`` with the permissions
    a normal file gets (the umask applies), opened for read and write: (path, fd)."""
    for _ in range(100):
        tmp = os.path.join(directory, f".{name}.{os.urandom(4).hex()}.pyfasts3-part")
        try:
            return tmp, os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {directory}")
