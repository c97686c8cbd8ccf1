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

from ._lowlevel import ffi, lib, rustcall

_main_thread_id = threading.main_thread().ident
_token = ffi.NULL


def _forget_token_in_child() -> None:
    # The parent's token is not ours after fork(), and the thread that forked is now the
    # child's main thread.
    global _token, _main_thread_id
    _token = ffi.NULL
    _main_thread_id = threading.get_ident()


os.register_at_fork(after_in_child=_forget_token_in_child)


def cancel_token():
    """The cancel token to pass to a native call made on this thread: on the main thread, a
    token that watches SIGINT (made once per process; SIGINT does not cancel the token
    itself, so it is reused); elsewhere NULL (no signal reaches other threads).

    No look at Python's SIGINT handler here (signal.getsignal costs more than the rest of a
    small read's Python path): libfasts3 only chains to whatever handler is installed, and
    does nothing while SIGINT is ignored.
    """
    global _token
    if threading.get_ident() != _main_thread_id:
        return ffi.NULL
    if _token == ffi.NULL:
        out = ffi.new("fasts3_cancel_token **")
        rustcall(lib.fasts3_cancel_token_new, out, ffi.NULL)
        lib.fasts3_cancel_token_watch_sigint(out[0])
        _token = out[0]
    return _token
