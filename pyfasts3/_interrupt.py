"""Ctrl-C during a native call.

CPython raises KeyboardInterrupt only on the main thread, between bytecodes, so a main
thread blocked inside a native call cannot be interrupted by Python itself. Instead, calls
made on the main thread pass a cancel token that
asks libfasts3 to watch SIGINT: its chaining handler records the signal and runs Python's,
the call ends as CANCELLED within milliseconds — after every task writing into the caller's
buffer has finished — and Python runs the handler as soon as control returns (the default
one raises KeyboardInterrupt; a handler that does not raise leaves pyfasts3.Cancelled).
No thread hop per call. Calls from other threads pass no token: no signal reaches them.
"""
from __future__ import annotations

import os
import threading
from typing import Callable, TypeVar

from ._lowlevel import ffi, lib, rustcall

T = TypeVar("T")

_main_thread = threading.main_thread()
_token = ffi.NULL
_token_pid = 0


def _sigint_token():
    """The main thread's SIGINT-watching token (made once per process; SIGINT does not
    cancel the token itself, so it is reused)."""
    global _token, _token_pid
    if _token == ffi.NULL or _token_pid != os.getpid():
        out = ffi.new("fasts3_cancel_token **")
        rustcall(lib.fasts3_cancel_token_new, out)
        lib.fasts3_cancel_token_watch_sigint(out[0])
        _token, _token_pid = out[0], os.getpid()
    return _token


def call(native: Callable[[object], T]) -> T:
    """Run ``native(cancel_token_ptr)``; on the main thread Ctrl-C ends it promptly and
    KeyboardInterrupt is raised."""
    # No need to look at Python's SIGINT handler here (signal.getsignal costs more than the
    # rest of this path): libfasts3 only chains to whatever handler is installed, and does
    # nothing while SIGINT is ignored.
    if threading.current_thread() is _main_thread:
        return native(_sigint_token())
    return native(ffi.NULL)
