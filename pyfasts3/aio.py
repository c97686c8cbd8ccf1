"""asyncio on libfasts3's completion queue: no thread per call, the event loop never blocks.

How it works: each running event loop gets one native completion queue
(``fasts3_completion_queue``), whose file descriptor the loop watches with ``add_reader``.
A call submits its op (``fasts3_submit_get_into`` / ``_get`` / ``_put_from``), which returns
at once while libfasts3's worker threads do the transfer, and awaits a future; when ops
finish, the queue's fd becomes readable and the loop's reader callback pops every waiting
completion and resolves the futures. No foreign thread ever calls into Python.

Decisions:

- One queue per event loop, shared by every Client used on it (the brief suggested one per
  (loop, client); a queue does not depend on the client, so one per loop means one fd and
  one reader callback whatever the number of clients). It is freed when its loop is garbage
  collected.
- Buffers: a caller buffer is exported (``memoryview`` + ``ffi.from_buffer``) for as long as
  the op may write into it, i.e. until its completion has been popped, whatever happens to
  the awaiting task.
- Cancellation: cancelling the awaiting task cancels the op (``fasts3_op_cancel``) and then
  waits, shielded from further cancellation, for the op's completion before
  ``CancelledError`` propagates: once the coroutine has finished, nothing writes into its
  buffer any more, so the buffer can be reused at once. A cancelled op ends at its next step
  (milliseconds).
- Errors: a failed op's error object (``fasts3_completion_take_error``) becomes its exception
  through ``_lowlevel.take_error``, as the blocking API's batch items do, so an async call
  raises what its blocking twin raises: class, code, HTTP status, request id, bucket, key.
- Results and batches behave as the blocking twins: ``put_from`` returns the parts sent;
  ``get_many`` runs every read to its end and raises the first failed item's error (by
  position, its message prefixed "request i", as the library does for ``get_many``).
- fork(): queues belong to the process that made them; a forked child makes its own.
"""
from __future__ import annotations

import asyncio
import os
import weakref
from typing import Any, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ._lowlevel import TO_END, error_for_status, ffi, lib, rustcall, take_error
from ._paths import split_object
from .client import _batch_item, _non_negative, _owned_array, _put_options, _read_options, _readable_bytes, _writable_bytes

# Kinds of result a completion resolves its future with: bytes written, an allocated array,
# the parts an upload sent.
_WRITTEN, _ALLOCATED, _PARTS = 0, 1, 2


class _Op:
    """One submitted op: the future its awaiter waits on, and what must live until its
    completion has been popped (the buffer export, the op handle)."""

    __slots__ = ("future", "handle", "kind", "context", "keep", "completed", "abandoned", "on_complete")

    def __init__(self, future, kind: int, keep: tuple, context: Optional[str]):
        self.future = future
        self.handle = ffi.NULL
        self.kind = kind
        self.context = context  # prefixes its error's message ("request 3" in a batch)
        self.keep = keep
        self.completed = False  # its completion was popped: no more writes into its buffer
        self.abandoned = False  # nobody wants its result any more
        self.on_complete = None  # a future to wake when the completion arrives


class _Queue:
    """The completion queue of one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        out = ffi.new("fasts3_completion_queue **")
        rustcall(lib.fasts3_completion_queue_new, out, ffi.NULL)
        self._ptr = out[0]
        self._pid = os.getpid()
        self._loop = loop
        self._ops = {}  # user_data -> _Op
        self._next = 1
        self._popped = ffi.new("fasts3_completion **")
        self._fd = lib.fasts3_completion_queue_fd(self._ptr)
        # Freed with the loop; freeing cancels and waits for ops still running.
        self._finalizer = weakref.finalize(self, _free_queue, self._ptr, self._pid)
        if self._fd < 0:
            self._finalizer()
            raise RuntimeError("pyfasts3 async calls need a completion queue fd (Unix)")
        try:
            loop.add_reader(self._fd, self._drain)
        except NotImplementedError:
            self._finalizer()
            raise RuntimeError(
                "pyfasts3 async calls need an event loop with add_reader (on Windows, the selector event loop)"
            ) from None

    # -- submitting -------------------------------------------------------------------

    def start(self, submit, kind: int, bucket: str, key: str, keep: tuple, context: Optional[str] = None) -> _Op:
        """``submit(queue_ptr, user_data, out_op)`` makes the native call and returns its
        status; on success the op is tracked until its completion is popped."""
        user_data = self._next
        self._next += 1
        op = _Op(self._loop.create_future(), kind, keep, context)
        out_op = ffi.new("fasts3_op **")
        rustcall(submit, self._ptr, user_data, out_op, ffi.NULL, bucket=bucket, key=key)
        op.handle = out_op[0]
        self._ops[user_data] = op
        return op

    # -- completing -------------------------------------------------------------------

    def _drain(self) -> None:
        """The loop's reader callback: pop every waiting completion, resolve its future."""
        if os.getpid() != self._pid:  # the parent's fd, inherited: not ours to serve
            self._loop.remove_reader(self._fd)
            return
        popped = self._popped
        while True:
            status = lib.fasts3_completion_queue_pop(self._ptr, popped, ffi.NULL)
            if status != 0 or popped[0] == ffi.NULL:
                return
            c = popped[0]
            try:
                op = self._ops.pop(lib.fasts3_completion_user_data(c), None)
                if op is None:
                    continue
                op.completed = True
                _release(op.keep)  # nothing writes into the buffer any more
                op.keep = None
                if not op.abandoned and not op.future.done():
                    try:
                        _resolve(op, c)
                    except BaseException as e:  # never leave an awaiter hanging
                        if not op.future.done():
                            op.future.set_exception(e)
                if op.on_complete is not None and not op.on_complete.done():
                    op.on_complete.set_result(None)
            finally:
                lib.fasts3_completion_free(c)

    async def wait(self, ops: List[_Op]) -> list:
        """The results of `ops`, in order, once every op has ended; raises the failure of the
        first failed op (by position, as the blocking get_many does). On task cancellation
        every op not finished is cancelled and waited for before this raises."""
        try:
            if len(ops) == 1:
                return [await ops[0].future]
            results = await asyncio.gather(*(op.future for op in ops), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            return results
        except BaseException:
            for op in ops:
                if not op.completed:
                    op.abandoned = True
                    lib.fasts3_op_cancel(op.handle)
            await self._settle(ops)
            raise
        finally:
            for op in ops:
                lib.fasts3_op_free(op.handle)
                op.handle = ffi.NULL

    async def wait_cancelled(self, ops: List[_Op]) -> None:
        """Cancel `ops` and wait for their completions (a batch whose start failed)."""
        for op in ops:
            op.abandoned = True
            lib.fasts3_op_cancel(op.handle)
        try:
            await self._settle(ops)
        finally:
            for op in ops:
                lib.fasts3_op_free(op.handle)
                op.handle = ffi.NULL

    async def _settle(self, ops: List[_Op]) -> None:
        """Wait until every op's completion was popped, even if cancelled again meanwhile:
        until then libfasts3 may still write into their buffers."""
        while True:
            left = [op for op in ops if not op.completed]
            if not left:
                return
            woken = self._loop.create_future()
            for op in left:
                op.on_complete = woken
            try:
                await woken
            except asyncio.CancelledError:
                continue


def _resolve(op: _Op, c) -> None:
    """Set op's future from its completion `c`: the result, or the exception of its error
    object (the one path blocking calls' error objects take too)."""
    status = lib.fasts3_completion_status(c)
    if status != 0:
        error = lib.fasts3_completion_take_error(c)
        if error == ffi.NULL:  # not expected (taken once, and only here): the completion's own record
            op.future.set_exception(error_for_status(
                status, ffi.string(lib.fasts3_completion_message(c)).decode("utf-8", "replace"),
                ffi.string(lib.fasts3_completion_code(c)).decode("utf-8", "replace"),
                int(lib.fasts3_completion_http_status(c))))
        else:
            op.future.set_exception(take_error(error, op.context))
    elif op.kind == _ALLOCATED:
        taken = ffi.new("fasts3_bytes **")
        rustcall(lib.fasts3_completion_take_bytes, c, taken, ffi.NULL)
        op.future.set_result(_owned_array(taken[0]))
    elif op.kind == _PARTS:
        op.future.set_result(int(lib.fasts3_completion_parts(c)))
    else:
        op.future.set_result(int(lib.fasts3_completion_written(c)))


def _free_queue(ptr, pid: int) -> None:
    if os.getpid() == pid:
        lib.fasts3_completion_queue_free(ptr)
    # In a forked child the parent's queue is left alone (its ops ran in the parent).


def _release(keep) -> None:
    """End the buffer exports an op held: cffi's first, then the memoryview's (explicitly:
    the GC clearing a memoryview that still has a cffi export crashes CPython)."""
    if keep:
        for item in keep:
            if isinstance(item, memoryview):
                item.release()
            elif item is not None:
                ffi.release(item)


_QUEUES: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue]" = weakref.WeakKeyDictionary()


def _forget_queues_in_child() -> None:
    _QUEUES.clear()


os.register_at_fork(after_in_child=_forget_queues_in_child)


def queue() -> _Queue:
    """The completion queue of the running event loop (made on first use)."""
    loop = asyncio.get_running_loop()
    q = _QUEUES.get(loop)
    if q is None or q._pid != os.getpid():
        q = _Queue(loop)
        _QUEUES[loop] = q
    return q


# -- the operations (Client.*_async delegate here) ---------------------------------------------


def _export_writable(buf: Any, limit: Optional[int] = None, index: Optional[int] = None) -> Tuple[Any, int, tuple]:
    """(cbuf, nbytes, keep) for a writable buffer (its first `limit` bytes when given: item
    `index` of a batch); keep is released when the op completes."""
    view = _writable_bytes(buf)
    keep: tuple = (view,)
    try:
        if limit is not None:
            if limit > view.nbytes:  # Client.get_many's message
                raise ValueError(f"item {index} asks for {limit} bytes but out[{index}] holds {view.nbytes}")
            keep = (view[:limit], view)
        target = keep[0]
        nbytes = target.nbytes
        if not nbytes:
            _release(keep)
            return ffi.NULL, 0, ()
        cbuf = ffi.from_buffer("uint8_t[]", target, require_writable=True)
    except BaseException:
        _release(keep)
        raise
    return cbuf, nbytes, (cbuf,) + keep


def _start_get_into(q: _Queue, client, buf: Any, bucket: str, key: str, offset: int, options,
                    limit: Optional[int] = None, index: Optional[int] = None) -> _Op:
    """Item `index` of a batch when given (its errors say "request <index>")."""
    b, k = bucket.encode(), key.encode()
    cbuf, nbytes, keep = _export_writable(buf, limit, index)
    try:
        with client._handle.borrow() as c:
            return q.start(lambda qp, ud, out, err: lib.fasts3_submit_get_into(
                c, qp, b, len(b), k, len(k), offset, cbuf, nbytes, options, ud, out, err), _WRITTEN, bucket, key, keep,
                _batch_context(index))
    except BaseException:
        _release(keep)
        raise


def _start_get(q: _Queue, client, bucket: str, key: str, offset: int, length: int, options,
               index: Optional[int] = None) -> _Op:
    """Item `index` of a batch when given (its errors say "request <index>")."""
    b, k = bucket.encode(), key.encode()
    with client._handle.borrow() as c:
        return q.start(lambda qp, ud, out, err: lib.fasts3_submit_get(
            c, qp, b, len(b), k, len(k), offset, length, options, ud, out, err), _ALLOCATED, bucket, key, (),
            _batch_context(index))


def _batch_context(index: Optional[int]) -> Optional[str]:
    """What prefixes a batch item's error message: the blocking fasts3_get_many's context."""
    return None if index is None else f"request {index}"


async def _run(q: _Queue, starts: list) -> list:
    """Start every op (callables taking the queue), then wait for all of them. If a start
    fails, the ops already started are cancelled and waited for before the error is raised."""
    ops: List[_Op] = []
    try:
        for start in starts:
            ops.append(start(q))
    except BaseException:
        if ops:
            await q.wait_cancelled(ops)
        raise
    return await q.wait(ops)


async def get_into(client, buf: Any, path: str, *, offset: int = 0, if_match: Optional[str] = None,
                   version_id: Optional[str] = None, part_size: Optional[int] = None) -> int:
    bucket, key = split_object(path)
    offset = _non_negative("offset", offset)
    options, _keep = _read_options(if_match, version_id, part_size)
    q = queue()
    op = _start_get_into(q, client, buf, bucket, key, offset, options)
    return (await q.wait([op]))[0]


async def get(client, path: str, *, offset: int = 0, length: Optional[int] = None, if_match: Optional[str] = None,
              version_id: Optional[str] = None, part_size: Optional[int] = None) -> np.ndarray:
    bucket, key = split_object(path)
    offset = _non_negative("offset", offset)
    max_len = TO_END if length is None else _non_negative("length", length)
    options, _keep = _read_options(if_match, version_id, part_size)
    q = queue()
    op = _start_get(q, client, bucket, key, offset, max_len, options)
    return (await q.wait([op]))[0]


async def get_many(client, items: Sequence[Any], *, out: Optional[Sequence[Any]] = None) -> list:
    """As Client.get_many (items, out=, results and errors alike), on the running loop."""
    if isinstance(items, (str, bytes)):
        raise TypeError("get_many_async takes a sequence of paths, not a single path")
    parsed = [_batch_item(i) for i in items]
    n = len(parsed)
    if out is not None:
        if isinstance(out, (str, bytes)) or len(out) != n:  # as Client.get_many checks it
            raise ValueError(f"out must be a sequence of {n} writable buffers, one per item")
    if n == 0:
        return []
    # (bucket, key, offset, length, options) per item; a submit copies the options' strings,
    # so they need only outlive the submits (`pins` keeps them until every one has started).
    pins = [_read_options(r.if_match, r.version_id, r.part_size) for r in parsed]
    items = [(*split_object(r.path), r.offset, r.length, options) for r, (options, _) in zip(parsed, pins)]
    if out is not None:
        starts = [lambda q, i=i, p=p, buf=buf: _start_get_into(q, client, buf, p[0], p[1], p[2], p[4], p[3], i)
                  for i, (p, buf) in enumerate(zip(items, out))]
    else:
        starts = [lambda q, i=i, p=p: _start_get(q, client, p[0], p[1], p[2], TO_END if p[3] is None else p[3],
                                                 p[4], i)
                  for i, p in enumerate(items)]
    return await _run(queue(), starts)


async def put_from(client, buf: Any, path: str, *, content_type: Optional[str] = None, if_none_match: bool = False,
                   metadata: Optional[Mapping[str, str]] = None, multipart_threshold: Optional[int] = None,
                   part_size: Optional[int] = None) -> int:
    bucket, key = split_object(path)
    b, k = bucket.encode(), key.encode()
    options, _keep = _put_options(content_type, if_none_match, metadata, multipart_threshold, part_size)
    view = _readable_bytes(buf)
    nbytes = view.nbytes
    keep: tuple = (view,)
    cbuf = ffi.NULL
    try:
        if nbytes:
            cbuf = ffi.from_buffer("uint8_t[]", view)
            keep = (cbuf, view)
        q = queue()
        with client._handle.borrow() as c:
            op = q.start(lambda qp, ud, out, err: lib.fasts3_submit_put_from(
                c, qp, b, len(b), k, len(k), cbuf, nbytes, options, ud, out, err), _PARTS, bucket, key, keep)
    except BaseException:
        _release(keep)
        raise
    return (await q.wait([op]))[0]
