"""Faults on the wire, injected by tests/faultproxy.py between pyfasts3 and the server:
bodies cut short are resumed, connections that always break fail with NetworkError (no hang,
no short count), and an object replaced mid-read fails with ObjectChanged.

Failing calls run on a helper thread (faultproxy.run_guarded): a hang guard, and the error
is kept without its traceback (see test_failed_get_into_releases_the_caller_buffer for why
that matters).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from botocore.exceptions import ClientError

import pyfasts3
from faultproxy import FaultProxy, proxied_client, run_guarded, start_guarded, random_bytes
from pyfasts3._lowlevel import ffi, lib

PART = 64 * 1024
MULTI = 1 << 20  # 16 parts
SINGLE = 40_000  # fits in the first part
REPO = Path(__file__).resolve().parents[1]
HANG_GUARD = 60.0


_data = random_bytes


def _read(client, path: str, size: int, op: str) -> bytes:
    if op == "get_into":
        buf = np.zeros(size, np.uint8)
        n = client.get_into(buf, path)
        assert n == size
        return buf.tobytes()
    if op == "get_many":
        (arr,) = client.get_many([path])
        return arr.tobytes()
    return client.get(path).tobytes()


def test_proxy_forwards_signed_requests(server, put, proxy):
    """The baseline every other fault test relies on: through the proxy (whose address is
    the Host the client signs, and the Host the server sees) reads are byte-exact, also on
    versitygw, which verifies SigV4."""
    data = _data(MULTI, 1)
    path = put("obj", data)
    with proxied_client(server, proxy, part_size=PART) as client:
        assert _read(client, path, MULTI, "get_into") == data
        assert client.head(path).size == MULTI
        assert client.list_keys(path.split("/")[0]) == ["obj"]
    assert proxy.connections >= 1
    assert proxy.bytes_down >= MULTI
    assert proxy.cuts == 0


@pytest.mark.parametrize("op", ["get_into", "get", "get_many"])
@pytest.mark.parametrize("size", [MULTI, SINGLE], ids=["multi-part", "single-part"])
def test_truncated_bodies_are_resumed(server, put, proxy, size, op):
    data = _data(size, 2)
    path = put("obj", data)
    # The first 3 connections to carry 8000 response bytes (headers + part of a body) are
    # closed right there; every later connection is clean.
    proxy.cut(after=8000, connections=3)
    with proxied_client(server, proxy, part_size=PART) as client:
        out = run_guarded(lambda: _read(client, path, size, op), HANG_GUARD)
    assert out.error is None, f"{op} failed although only 3 connections were cut: {out.error!r}"
    assert out.value == data
    assert proxy.cuts == 3, "the faults were not all injected: the test proves nothing"

    # A resume asks for the first missing byte onwards, with If-Match pinning the version
    # (a restart from the part's start would re-download what already landed).
    gets = [r for r in proxy.requests if r.method == "GET"]
    ranges = [r.headers.get("range") for r in gets]
    assert all(ranges), f"every GET must be ranged: {ranges}"
    starts = [int(r.split("=")[1].split("-")[0]) for r in ranges]
    part_starts = set(range(0, size, PART))
    resumed = [s for s in starts if s not in part_starts]
    assert len(resumed) == 3, f"expected 3 resumed ranges (one per cut), got ranges {ranges}"
    etag = None
    for r in gets:
        if r.headers.get("range", "").startswith("bytes=0-"):
            continue
        assert r.headers.get("if-match"), f"a later part or a resume went out without If-Match: {r}"
        etag = etag or r.headers["if-match"]
        assert r.headers["if-match"] == etag


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
def test_listing_page_cut_mid_body_is_asked_for_again(server, s3, bucket, proxy, parallel):
    """pyfasts3 reads listing bodies itself (the SDK never sees them), so a page whose body
    breaks off must be requested again by pyfasts3, not surface as an error or a short list."""
    keys = [f"d{i % 3}/k{i:04d}" for i in range(1200)]  # the sequential listing takes 2 pages
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=b""), keys))
    # The first 2 connections that carry 20,000 response bytes (well inside a page of ~400
    # entries or more) are closed right there.
    proxy.cut(after=20_000, connections=2)
    with proxied_client(server, proxy) as client:
        out = run_guarded(lambda: client.list_keys(bucket, parallel=parallel), HANG_GUARD)
    assert out.error is None, f"listing failed although only 2 connections were cut: {out.error!r}"
    assert out.value == sorted(keys)
    assert proxy.cuts == 2, "the faults were not all injected: the test proves nothing"


@pytest.mark.parametrize(
    "op, after, reset",
    [
        ("get_into", 100, False),  # inside the response headers: the SDK's retries run out
        ("get_into", 1000, False),  # inside the body: pyfasts3's resumes run out
        ("get_into", 1000, True),  # the same with an RST instead of a FIN
        ("get", 1000, False),
    ],
    ids=["get_into-headers", "get_into-body", "get_into-body-rst", "get-body"],
)
def test_connection_always_cut_raises_network_error(server, put, proxy, op, after, reset):
    data = _data(MULTI, 3)
    path = put("obj", data)
    proxy.cut(after=after, connections=None, reset=reset)
    buf = np.zeros(MULTI, np.uint8)
    with proxied_client(server, proxy, part_size=PART) as client:
        if op == "get_into":
            out = run_guarded(lambda: client.get_into(buf, path), HANG_GUARD)
        else:
            out = run_guarded(lambda: client.get(path), HANG_GUARD)
        assert out.value is None, f"{op} reported success ({out.value!r}) although every connection was cut"
        assert isinstance(out.error, pyfasts3.NetworkError), repr(out.error)
        assert isinstance(out.error, ConnectionError)
        assert out.error.fasts3_status == 301
        assert (out.error.bucket, out.error.key) == tuple(path.split("/", 1))
        assert proxy.cuts >= 2

        # Once the network heals, the same client reads the object.
        proxy.cut(None)
        assert run_guarded(lambda: _read(client, path, MULTI, op), HANG_GUARD).value == data


def test_failed_get_into_leaves_out_written_untouched(server, put, proxy):
    """C ABI: on failure `*out_written` is untouched (never a short count)."""
    path = put("obj", _data(MULTI, 4))
    proxy.cut(after=1000, connections=None)
    bucket, key = (s.encode() for s in path.split("/", 1))
    buf = bytearray(MULTI)
    cbuf = ffi.from_buffer("uint8_t[]", buf, require_writable=True)
    written = ffi.new("uint64_t *", 0xDEADBEEF)
    with proxied_client(server, proxy, part_size=PART) as client:
        def call():
            with client._handle.borrow() as handle:
                status = lib.fasts3_get_into(handle, bucket, len(bucket), key, len(key), 0, cbuf, MULTI,
                                             ffi.NULL, written, ffi.NULL)
                return status, ffi.string(lib.fasts3_last_error_message()).decode()

        status, message = run_guarded(call, HANG_GUARD).value
    ffi.release(cbuf)
    assert status == lib.FASTS3_NETWORK, (status, message)
    assert message
    assert written[0] == 0xDEADBEEF


def _require_if_match(s3, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="if-match-probe", Body=b"x")
    try:
        s3.get_object(Bucket=bucket, Key="if-match-probe", IfMatch='"wrong"')
    except ClientError as e:
        if e.response["ResponseMetadata"]["HTTPStatusCode"] == 412:
            return
        raise
    pytest.skip("this server ignores If-Match on GET: a replaced object cannot be detected")


@pytest.mark.parametrize(
    "op, new_size",
    [("get_into", MULTI), ("get", MULTI), ("get_into", MULTI + PART)],
    ids=["get_into-same-size", "get-same-size", "get_into-bigger"],
)
def test_object_replaced_mid_read_raises_object_changed(server, s3, bucket, put, proxy, op, new_size):
    _require_if_match(s3, bucket)
    data = _data(MULTI, 5)
    path = put("obj", data)
    # Two requests in flight at a time, so most parts are requested after the overwrite.
    # The proxy stops forwarding responses once about one part went through (a
    # deterministic stand-in for "slow"); the object is replaced while it holds.
    proxy.pause_at(PART)
    buf = np.zeros(MULTI, np.uint8)
    with proxied_client(server, proxy, part_size=PART, max_concurrency=2) as client:
        if op == "get_into":
            out = start_guarded(lambda: client.get_into(buf, path))
        else:
            out = start_guarded(lambda: client.get(path))
        assert proxy.wait_for(lambda p: p.paused, HANG_GUARD), "the read never started"
        assert not out.done.is_set()
        s3.put_object(Bucket=bucket, Key="obj", Body=_data(new_size, 6))
        proxy.resume()
        assert out.done.wait(HANG_GUARD), "the read hung after the object was replaced"

    assert out.value is None, f"{op} returned {out.value!r} for an object replaced mid-read"
    assert isinstance(out.error, pyfasts3.ObjectChanged), repr(out.error)
    assert out.error.fasts3_status == 204
    if new_size == MULTI:
        # Same size: only the ETag tells, through If-Match -> 412 PreconditionFailed.
        assert out.error.status == 412, repr(out.error)
    later = [r for r in proxy.requests if r.method == "GET" and not r.headers["range"].startswith("bytes=0-")]
    assert later and all(r.headers.get("if-match") for r in later)


_RELEASE_CHILD = textwrap.dedent(
    """
    import gc, sys, threading
    import pyfasts3

    url, region, ak, sk, bucket, mode = sys.argv[1:]
    client = pyfasts3.Client(url, region=region, access_key_id=ak, secret_access_key=sk)
    buf = bytearray(1000)

    def fail():
        client.get_into(buf, bucket + "/no-such-key")

    if mode == "main-thread":
        try:
            fail()
        except pyfasts3.NoSuchKey:
            pass
    else:
        # A worker keeps its error, as thread wrappers commonly do (a cycle: error ->
        # traceback -> run() frame -> self -> error), then drops the wrapper.
        class Worker(threading.Thread):
            def run(self):
                try:
                    fail()
                except pyfasts3.NoSuchKey as e:
                    self.error = e

        w = Worker()
        w.start()
        w.join()
        assert isinstance(w.error, pyfasts3.NoSuchKey)
        del w

    try:
        buf.append(0)
        print("buffer released", flush=True)
    except BufferError as e:
        print("buffer still exported after the call raised:", e, flush=True)
    gc.collect()
    print("gc survived", flush=True)
    """
)


@pytest.mark.parametrize("mode", ["main-thread", "worker-keeps-error"])
def test_failed_get_into_releases_the_caller_buffer(server, bucket, mode):
    """After get_into raised and the caller dropped the error, the caller's buffer is no
    longer exported (a bytearray can be resized) and a garbage collection is safe.

    Runs in a subprocess because the failure mode is a segfault of the interpreter: if the
    error's traceback sits in a reference cycle (an earlier main-thread Future path of
    pyfasts3 made one: error -> traceback -> frame -> future -> error), the frame of
    get_into keeps its memoryview `view` exported by the cffi buffer `cbuf`; the collector
    may clear the memoryview first (BufferError "memoryview has 1 exported buffer", ignored)
    and CPython then crashes when the cffi buffer releases it."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-c", _RELEASE_CHILD, server.endpoint_url, server.region, server.access_key_id,
         server.secret_access_key, bucket, mode],
        env=env, capture_output=True, text=True, timeout=HANG_GUARD,
    )
    report = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-3000:]}"
    assert "buffer released" in proc.stdout, report
    assert "Exception ignored" not in proc.stderr, report
    assert proc.returncode == 0 and "gc survived" in proc.stdout, report


STALL_GUARD = 60.0


@pytest.mark.parametrize("stall_at", [1, 40_000], ids=["before-headers", "mid-body"])
def test_stalled_connection_does_not_hang_forever(server, put, proxy, stall_at):
    """A server that stops sending without closing (a dead peer, a NAT dropping state) must
    surface as Timeout/NetworkError, not block the calling thread forever: threads other
    than the main one cannot even be interrupted with Ctrl-C."""
    data = _data(MULTI, 7)
    path = put("obj", data)
    proxy.pause_at(stall_at)  # after that many response bytes, nothing more, connection open
    buf = np.zeros(MULTI, np.uint8)
    # read_timeout bounds the wait for headers; a body stalled mid-way is caught by the SDK's
    # stalled-stream protection (5 s without progress), then resumed into the same stall.
    with proxied_client(server, proxy, part_size=PART, max_concurrency=1, read_timeout=1.0) as client:
        out = start_guarded(lambda: client.get_into(buf, path))
        finished = out.done.wait(STALL_GUARD)
        stats = proxy.stats()
        proxy.close()  # frees a stuck call (its connections get closed) before the client goes
        assert out.done.wait(HANG_GUARD)
    assert finished, f"get_into still blocked on a stalled connection after {STALL_GUARD:.0f}s ({stats})"
    assert isinstance(out.error, (pyfasts3.Timeout, pyfasts3.NetworkError)), repr(out.error)
