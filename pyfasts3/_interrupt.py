"""Ctrl-C during a native call.

SIGINT is handled by Python only on the main thread, between bytecodes: while the main
thread sits inside a native call, KeyboardInterrupt cannot be raised. So main-thread calls
run on a helper thread while the main thread waits (interruptibly). On Ctrl-C we trigger the
call's cancel token, wait until the native call has returned (so no write into the caller's
buffer is still going on), then re-raise KeyboardInterrupt. Calls from other threads run
directly: no signal can reach them anyway.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Optional, TypeVar

from ._lowlevel import ffi, lib, rustcall

T = TypeVar("T")

_executor: Optional[ThreadPoolExecutor] = None
_executor_pid = 0
_executor_lock = threading.Lock()


def _helper() -> ThreadPoolExecutor:
    global _executor, _executor_pid
    with _executor_lock:
        # After fork() the child inherits the executor object but not its thread.
        if _executor is None or _executor_pid != os.getpid():
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyfasts3-call")
            _executor_pid = os.getpid()
        return _executor


class CancelToken:
    """A native cancel token, freed when the call is over."""

    def __init__(self):
        out = ffi.new("fasts3_cancel_token **")
        rustcall(lib.fasts3_cancel_token_new, out)
        self.ptr = out[0]

    def cancel(self) -> None:
        lib.fasts3_cancel_token_cancel(self.ptr)

    def free(self) -> None:
        lib.fasts3_cancel_token_free(self.ptr)
        self.ptr = ffi.NULL


def _wait_out(future: Future) -> None:
    """Wait for the native call to end, whatever further Ctrl-C presses happen."""
    while True:
        try:
            future.exception()
            return
        except KeyboardInterrupt:
            continue


def call(native: Callable[[object], T]) -> T:
    """Run `native(cancel_ptr)`, interruptible by Ctrl-C when on the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return native(ffi.NULL)
    token = CancelToken()
    try:
        future = _helper().submit(native, token.ptr)
        try:
            return future.result()
        except KeyboardInterrupt:
            token.cancel()
            _wait_out(future)
            raise
    finally:
        token.free()
