"""Cancellation: cancel tokens through the C ABI (triggered from another thread, or before
the call), and Ctrl-C in a real interpreter whose main thread is inside a long get_into.

Transfers are made slow by tests/faultproxy.py (throttled, or held entirely), never by
timing assumptions; the time limits below are hang guards, except the 1 s Ctrl-C latency
the library promises ("Ctrl-C cancels it promptly").
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from faultproxy import FaultProxy, proxied_client, run_guarded, start_guarded, random_bytes
from pyfasts3._lowlevel import ffi, lib

PART = 64 * 1024
REPO = Path(__file__).resolve().parents[1]
PROMPT = 5.0  # hang guard for "returns promptly after cancel"
HANG_GUARD = 60.0
SENTINEL = 0xDEADBEEF


_data = random_bytes


class Token:
    def __init__(self):
        out = ffi.new("fasts3_cancel_token **")
        assert lib.fasts3_cancel_token_new(out, ffi.NULL) == lib.FASTS3_OK
        self.ptr = out[0]

    def cancel(self) -> None:
        lib.fasts3_cancel_token_cancel(self.ptr)

    def free(self) -> None:
        lib.fasts3_cancel_token_free(self.ptr)
        self.ptr = ffi.NULL


def _message() -> str:
    return ffi.string(lib.fasts3_last_error_message()).decode("utf-8", "replace")


class NativeRead:
    """One native read (get_into, get or get_many into caller buffers) of `path`, set up so
    the test can inspect the caller memory and out-parameters after the call."""

    def __init__(self, kind: str, path: str, size: int):
        self.kind = kind
        bucket, key = path.split("/", 1)
        self.bucket, self.key = bucket.encode(), key.encode()
        self.size = size
        self.buf = bytearray(size)
        self.cbuf = ffi.from_buffer("uint8_t[]", self.buf, require_writable=True)
        self.written = ffi.new("uint64_t *", SENTINEL)
        self.out = ffi.new("fasts3_bytes **")
        if kind == "get_many":
            # Two reads into the two halves of the buffer.
            half = size // 2
            self._names = (ffi.from_buffer("uint8_t[]", self.bucket), ffi.from_buffer("uint8_t[]", self.key))
            self.requests = ffi.new("fasts3_get_request[]", 2)
            for i, req in enumerate(self.requests):
                req.struct_size = ffi.sizeof("fasts3_get_request")
                req.bucket, req.bucket_len = self._names[0], len(self.bucket)
                req.key, req.key_len = self._names[1], len(self.key)
                req.offset = i * half
                req.buf, req.buf_len = self.cbuf + i * half, half
            self.results = ffi.new("fasts3_get_result[]", 2)
            for r in self.results:
                r.status, r.written, r.bytes = 12345, SENTINEL, ffi.NULL

    def run(self, client, token) -> tuple:
        """Call it on `client`'s native handle (borrowed for the call, so closing the client
        cannot free it under a call that outlives a failed test); return (status, message,
        snapshot of the caller buffer right after)."""
        with client._handle.borrow() as handle:
            return self._run(handle, token)

    def _run(self, handle, token) -> tuple:
        if self.kind == "get_into":
            status = lib.fasts3_get_into(handle, self.bucket, len(self.bucket), self.key, len(self.key), 0,
                                         self.cbuf, self.size, token, self.written, ffi.NULL)
        elif self.kind == "get":
            status = lib.fasts3_get(handle, self.bucket, len(self.bucket), self.key, len(self.key), 0,
                                    2**64 - 1, token, self.out, ffi.NULL)
        else:
            status = lib.fasts3_get_many(handle, self.requests, 2, token, self.results, ffi.NULL)
        return status, _message(), bytes(self.buf)

    def check_untouched_outputs(self) -> None:
        if self.kind == "get_into":
            assert self.written[0] == SENTINEL, "out_written was written by a failed call"
        elif self.kind == "get":
            assert self.out[0] == ffi.NULL, "a cancelled fasts3_get returned a buffer"
        else:
            for r in self.results:
                assert r.status == lib.FASTS3_CANCELLED
                assert r.bytes == ffi.NULL
                # Each cancelled read carries its own error, which the caller frees.
                assert lib.fasts3_error_status(r.error) == lib.FASTS3_CANCELLED
                lib.fasts3_error_free(r.error)
                r.error = ffi.NULL


@pytest.mark.parametrize("kind", ["get_into", "get", "get_many"])
def test_cancel_from_another_thread_stops_a_running_read(server, put, proxy, kind):
    size = 4 << 20
    data = _data(size, 1)
    path = put("big", data)
    # 4 connections x 128 KiB/s: a 4 MiB read would take 8 s.
    proxy.throttle(128 * 1024)
    read = NativeRead(kind, path, size)
    token = Token()
    with proxied_client(server, proxy, part_size=PART, max_concurrency=4) as client:
        out = start_guarded(lambda: read.run(client, token.ptr), name="native-read")
        assert proxy.wait_for(lambda p: p.bytes_down >= 4 * PART // 2, HANG_GUARD), "the read never got going"
        assert not out.done.is_set(), "the throttled read finished before it could be cancelled"
        cancelled_at = time.monotonic()
        token.cancel()
        assert out.done.wait(PROMPT), f"still running {PROMPT}s after its token was cancelled"
        status, message, snapshot = out.value
        assert out.ended_at - cancelled_at < PROMPT
        assert status == lib.FASTS3_CANCELLED, (status, message)
        assert "cancel" in message.lower(), message
        read.check_untouched_outputs()
        # No write into the caller's memory after return.
        time.sleep(0.3)
        assert bytes(read.buf) == snapshot, "the caller buffer changed after the call returned"
        # The cancelled transfers are abandoned, not left running in the background.
        assert proxy.wait_for(lambda p: p.active == 0, 10), f"connections still open after cancel: {proxy.stats()}"

        # The client is unharmed: the same handle reads the object once the network is fast.
        token.free()
        proxy.throttle(None)
        buf = np.zeros(size, np.uint8)
        assert run_guarded(lambda: client.get_into(buf, path), HANG_GUARD).value == size
        assert buf.tobytes() == data
    ffi.release(read.cbuf)


@pytest.mark.parametrize("kind", ["get_into", "get", "get_many", "head", "list_next"])
def test_token_cancelled_before_the_call_returns_immediately(server, put, proxy, kind):
    path = put("obj", _data(200_000, 2))
    bucket, key = (s.encode() for s in path.split("/", 1))
    token = Token()
    token.cancel()
    with proxied_client(server, proxy, part_size=PART) as client:
        # Every native call borrows the handle itself, so a call outliving its guard (a
        # failed test) cannot have the client freed under it.
        if kind in ("get_into", "get", "get_many"):
            read = NativeRead(kind, path, 200_000)
            status, message, _ = run_guarded(lambda: read.run(client, token.ptr), PROMPT).value
            read.check_untouched_outputs()
        elif kind == "head":
            page = ffi.new("fasts3_object_page **")

            def call():
                with client._handle.borrow() as handle:
                    return lib.fasts3_head(handle, bucket, len(bucket), key, len(key), token.ptr, page, ffi.NULL), _message()

            status, message = run_guarded(call, PROMPT).value
            assert page[0] == ffi.NULL
        else:
            cursor = ffi.new("fasts3_list_cursor **")
            with client._handle.borrow() as handle:  # the cursor keeps its own reference
                assert lib.fasts3_list_cursor_new(handle, bucket, len(bucket), b"", 0, ffi.NULL, ffi.NULL, 1000,
                                                  cursor, ffi.NULL) == lib.FASTS3_OK
            page = ffi.new("fasts3_object_page **")

            def call():
                return lib.fasts3_list_next(cursor[0], token.ptr, page, ffi.NULL), _message()

            status, message = run_guarded(call, PROMPT).value
            assert page[0] == ffi.NULL
            assert status == lib.FASTS3_CANCELLED, (status, message)
            assert proxy.connections == 0, "a call with an already-cancelled token sent a request"
            # A failed list_next does not advance the cursor: without the token it lists.
            assert run_guarded(lambda: lib.fasts3_list_next(cursor[0], ffi.NULL, page, ffi.NULL), HANG_GUARD).value == 0
            view = ffi.new("fasts3_object_page_view *")
            assert lib.fasts3_object_page_get_view(page[0], view, ffi.NULL) == lib.FASTS3_OK
            assert view.count == 1
            lib.fasts3_object_page_free(page[0])
            lib.fasts3_list_cursor_free(cursor[0])
    token.free()
    assert status == lib.FASTS3_CANCELLED, (status, message)
    assert "cancel" in message.lower(), message
    if kind != "list_next":  # (checked above, before the retry)
        assert proxy.connections == 0, "a call with an already-cancelled token sent a request"


def test_one_token_cancels_every_call_given_it(server, put, proxy):
    """A token stops all the running calls it was given (here two, held by the proxy), and
    stays triggered: a later call with it returns CANCELLED without a request."""
    paths = [put(f"o{i}", _data(300_000, 10 + i)) for i in range(2)]
    proxy.pause()
    token = Token()
    with proxied_client(server, proxy, part_size=PART) as client:
        reads = [NativeRead(k, p, 300_000) for k, p in zip(["get_into", "get"], paths)]
        outs = [start_guarded(lambda r=r: r.run(client, token.ptr)) for r in reads]
        assert proxy.wait_for(lambda p: len(p.requests) >= 2, HANG_GUARD)
        token.cancel()
        for out, read in zip(outs, reads):
            assert out.done.wait(PROMPT), "a call ignored the cancelled token"
            assert out.value[0] == lib.FASTS3_CANCELLED, out.value[:2]
            read.check_untouched_outputs()
        sent = len(proxy.requests)
        again = NativeRead("get_into", paths[0], 300_000)
        status, message, _ = run_guarded(lambda: again.run(client, token.ptr), PROMPT).value
        assert status == lib.FASTS3_CANCELLED, (status, message)
        assert len(proxy.requests) == sent
    token.free()
    for r in reads + [again]:
        ffi.release(r.cbuf)


def test_cancel_while_queued_for_the_concurrency_budget(server, put, proxy):
    """With max_concurrency=1 and the only request slot held by a stalled read, a second
    call waits for a slot; cancelling it returns CANCELLED at once without sending anything,
    and the first read completes once the network moves again."""
    data_a, data_b = _data(300_000, 3), _data(300_000, 4)
    path_a, path_b = put("a", data_a), put("b", data_b)
    proxy.pause()
    token = Token()
    with proxied_client(server, proxy, part_size=PART, max_concurrency=1) as client:
        first = start_guarded(lambda: client.get(path_a), name="holds-the-slot")
        assert proxy.wait_for(lambda p: len(p.requests) == 1, HANG_GUARD)
        read = NativeRead("get_into", path_b, len(data_b))
        queued = start_guarded(lambda: read.run(client, token.ptr), name="queued")
        time.sleep(0.3)  # let it reach the semaphore (a cancel before that is fine too)
        assert not queued.done.is_set(), f"the queued call did not wait for a slot: {queued}"
        token.cancel()
        assert queued.done.wait(PROMPT), "a call queued for a request slot ignored its cancel token"
        status, message, _ = queued.value
        assert status == lib.FASTS3_CANCELLED, (status, message)
        read.check_untouched_outputs()
        assert len(proxy.requests) == 1, "the cancelled call sent a request"
        assert not first.done.is_set()
        proxy.resume()
        assert first.done.wait(HANG_GUARD)
        assert first.error is None, repr(first.error)
        assert first.value.tobytes() == data_a
        # The slot the cancelled call never got is not lost either.
        assert run_guarded(lambda: client.get(path_b), HANG_GUARD).value.tobytes() == data_b
    token.free()
    ffi.release(read.cbuf)


# -- Ctrl-C ---------------------------------------------------------------------------------

_CTRL_C_CHILD = textwrap.dedent(
    """
    import json, signal, sys, threading, time
    import numpy as np
    import pyfasts3

    url, region, ak, sk, path, size, op = sys.argv[1:]
    size = int(size)
    client = pyfasts3.Client(url, region=region, access_key_id=ak, secret_access_key=sk,
                             part_size=64 * 1024, max_concurrency=2)
    buf = np.zeros(size, np.uint8)
    handled = []

    def on_sigint(signum, frame):  # what the default handler does, plus a timestamp
        handled.append(time.monotonic())
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    print("started", flush=True)
    try:
        if op == "get_into":
            client.get_into(buf, path)
        else:
            client.get(path)
    except KeyboardInterrupt:
        caught = time.monotonic()
        snapshot = buf.copy()
        time.sleep(0.3)
        report = {
            "caught_at": caught,
            "handler_to_caught": caught - handled[0] if handled else None,
            "buffer_stable": bool((buf == snapshot).all()),
            "bytes_landed": int(np.count_nonzero(snapshot)),
            "threads": sorted(t.name for t in threading.enumerate()),
        }
        print("interrupted " + json.dumps(report), flush=True)
        # The parent checks that the interrupted transfer's connections are closed before
        # this opens a new one (it says "go").
        sys.stdin.readline()
        # The client still works after an interrupted call.
        info = client.head(path)
        print("head " + str(info.size), flush=True)
        client.close()
        sys.exit(0 if report["buffer_stable"] else 5)
    except BaseException as e:
        print("error " + repr(e), flush=True)
        sys.exit(4)
    print("completed without interruption", flush=True)
    sys.exit(3)
    """
)


def _lines(proc: subprocess.Popen) -> "queue.Queue[str]":
    q: "queue.Queue[str]" = queue.Queue()

    def pump():
        for line in proc.stdout:
            q.put(line.rstrip("\n"))
        q.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return q


def _next_line(q: "queue.Queue[str]", proc: subprocess.Popen, what: str, timeout: float = HANG_GUARD) -> str:
    try:
        line = q.get(timeout=timeout)
    except queue.Empty:
        proc.kill()
        pytest.fail(f"child printed no {what!r} line within {timeout}s; stderr:\n{proc.stderr.read()[-3000:]}")
    if line is None:
        proc.wait()
        pytest.fail(f"child exited ({proc.returncode}) before {what!r}; stderr:\n{proc.stderr.read()[-3000:]}")
    return line


@pytest.mark.parametrize("op, fault", [("get_into", "throttled"), ("get", "stalled")])
def test_ctrl_c_interrupts_a_main_thread_read(server, put, proxy, op, fault):
    size = 2 << 20
    path = put("big", _data(size, 5))
    if fault == "throttled":
        proxy.throttle(64 * 1024)  # 2 connections x 64 KiB/s: 16 s for the whole object
    else:
        proxy.pause()  # no response byte at all until the test says so
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", _CTRL_C_CHILD, proxy.url, server.region, server.access_key_id,
         server.secret_access_key, path, str(size), op],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = _lines(proc)
        assert _next_line(lines, proc, "started") == "started"
        # Interrupt only once the native call is on the wire.
        assert proxy.wait_for(lambda p: len(p.requests) >= 1, HANG_GUARD), "the child sent no request"
        time.sleep(0.3)
        sent_at = time.monotonic()
        proc.send_signal(signal.SIGINT)

        line = _next_line(lines, proc, "interrupted")
        assert line.startswith("interrupted "), f"child: {line!r}"
        report = json.loads(line[len("interrupted "):])
        latency = report["caught_at"] - sent_at  # CLOCK_MONOTONIC is system-wide on Linux
        assert latency < 1.0, f"KeyboardInterrupt arrived {latency:.2f}s after SIGINT ({report})"
        assert report["buffer_stable"], f"the buffer changed after KeyboardInterrupt ({report})"
        # The interrupted transfers were abandoned: their connections are closed.
        assert proxy.wait_for(lambda p: p.active == 0, 10), f"connections still open: {proxy.stats()}"

        proxy.resume()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        line = _next_line(lines, proc, "head")
        assert line == f"head {size}", f"child: {line!r}"
        proc.wait(HANG_GUARD)
        assert proc.returncode == 0, f"child exit {proc.returncode}; stderr:\n{proc.stderr.read()[-3000:]}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
