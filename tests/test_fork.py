"""fork(): a child inherits clients the parent already used (runtime, connection pool,
request budget all built in the parent) and must read correct bytes with them, with the
same Client objects and with the module-level default client; the parent must be unharmed.

Children end with os._exit(status) (0 = every check passed) and report failures through a
pipe; the parent polls waitpid and kills a child that is still running after 30 s, so a
deadlock fails the test instead of hanging CI.
"""
from __future__ import annotations

import hashlib
import http.server
import multiprocessing
import os
import signal
import threading
import time
import traceback

import numpy as np
import pytest

import pyfasts3
from faultproxy import FaultProxy, proxied_client, run_guarded, start_guarded

PART = 64 * 1024
CHILD_GUARD = 30.0

pytestmark = pytest.mark.filterwarnings(
    # Python >= 3.12 warns that forking a multi-threaded process may deadlock: that risk is
    # exactly what these tests exercise (with a kill-on-timeout guard).
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


def _data(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _sha(b) -> str:
    return hashlib.sha256(bytes(b)).hexdigest()


def _in_forked_child(body, timeout: float = CHILD_GUARD):
    """Run body() in a forked child; return (exit status, what the child reported)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        status = 1
        try:
            os.close(r)
            body()
            status = 0
        except BaseException:
            status = 2
            os.write(w, traceback.format_exc().encode())
        finally:
            os._exit(status)
    os.close(w)
    deadline = time.monotonic() + timeout
    while True:
        done, wait_status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(r)
            pytest.fail(f"forked child still running after {timeout}s: deadlock")
        time.sleep(0.05)
    with os.fdopen(r, "rb") as f:
        report = f.read().decode(errors="replace")
    return os.waitstatus_to_exitcode(wait_status), report


@pytest.fixture
def objects(put):
    """Three objects (one part, a few parts, many parts) -> (path, bytes)."""
    sizes = {"small": 1000, "medium": 200_000, "large": 700_000}
    return {name: (put(name, _data(n, i)), _data(n, i)) for i, (name, n) in enumerate(sizes.items())}


def _check_reads(client, objects) -> None:
    for path, data in objects.values():
        buf = np.zeros(len(data), np.uint8)
        assert client.get_into(buf, path) == len(data)
        assert buf.tobytes() == data, path
        assert client.get(path).tobytes() == data, path
        assert client.head(path).size == len(data)
    paths = [p for p, _ in objects.values()]
    assert [a.tobytes() for a in client.get_many(paths)] == [d for _, d in objects.values()]
    bucket = paths[0].split("/")[0]
    assert sorted(client.list_keys(bucket)) == sorted(objects)


def test_forked_child_uses_the_parents_clients(server_env, client, objects):
    # The parent uses both clients first: runtime, sessions and pooled connections exist.
    _check_reads(client, objects)
    _check_reads(pyfasts3.default_client(), objects)
    default = pyfasts3.default_client()

    def child():
        _check_reads(client, objects)
        assert pyfasts3.default_client() is default
        for path, data in objects.values():
            assert pyfasts3.get(path).tobytes() == data
        # A thread of the child shares the (child's) client too.
        out = run_guarded(lambda: _check_reads(client, objects), CHILD_GUARD)
        assert out.error is None, repr(out.error)
        # Freeing inherited clients in the child must leave the parent's connections alone.
        client.close()
        default.close()

    status, report = _in_forked_child(child)
    assert status == 0, f"child failed (exit {status}):\n{report}"

    # The parent's clients (and their pooled connections) still work.
    _check_reads(client, objects)
    _check_reads(pyfasts3.default_client(), objects)
    assert pyfasts3.default_client() is default


def test_fork_while_another_thread_is_mid_read(server, server_env, put, objects):
    """Fork while a parent thread is inside a read (a tokio worker and the request budget
    busy): the child's copy of that client must not inherit the busy state."""
    big = _data(1 << 20, 9)
    big_path = put("big", big)
    with FaultProxy(server.endpoint_url) as proxy:
        proxy.throttle(64 * 1024)  # 2 x 64 KiB/s: 8 s for the big object
        slow = proxied_client(server, proxy, part_size=PART, max_concurrency=2)
        try:
            reading = start_guarded(lambda: slow.get(big_path), name="mid-read")
            assert proxy.wait_for(lambda p: p.bytes_down >= PART // 2, CHILD_GUARD)
            assert not reading.done.is_set()
            small_path, small = objects["small"]

            def child():
                # The same (throttled) client: its budget of 2 is all taken in the parent.
                assert slow.get(small_path).tobytes() == small
                for path, data in objects.values():
                    assert pyfasts3.get(path).tobytes() == data

            status, report = _in_forked_child(child)
            assert status == 0, f"child failed (exit {status}):\n{report}"

            proxy.throttle(None)
            assert reading.done.wait(CHILD_GUARD), "the parent's read did not finish after the fork"
            assert reading.error is None, repr(reading.error)
            assert reading.value.tobytes() == big
            assert slow.get(small_path).tobytes() == small
        finally:
            slow.close()


# multiprocessing workers look these up by module and name after the fork.
_POOL_CLIENT = None


def _pool_fetch(path: str):
    own = _POOL_CLIENT.get(path)
    default = pyfasts3.get(path)
    buf = np.zeros(len(own), np.uint8)
    _POOL_CLIENT.get_into(buf, path)
    return os.getpid(), path, _sha(own), _sha(default), _sha(buf)


def test_multiprocessing_fork_pool(server_env, client, put):
    global _POOL_CLIENT
    blobs = {put(f"key-{i}", _data(50_000 * (i + 1), 20 + i)): None for i in range(8)}
    expected = {}
    for path in blobs:
        expected[path] = _sha(client.get(path))
        assert _sha(pyfasts3.get(path)) == expected[path]
    _POOL_CLIENT = client
    pool = multiprocessing.get_context("fork").Pool(2)
    try:
        pending = pool.map_async(_pool_fetch, list(blobs), chunksize=1)
        try:
            results = pending.get(timeout=CHILD_GUARD)
        except multiprocessing.TimeoutError:
            pytest.fail(f"fork pool workers still busy after {CHILD_GUARD}s: deadlock")
    finally:
        pool.terminate()
        pool.join()
        _POOL_CLIENT = None
    assert len(results) == len(blobs)
    for pid, path, own, default, into in results:
        assert pid != os.getpid()
        assert own == default == into == expected[path], path
    # The parent still works with both clients.
    for path in blobs:
        assert _sha(client.get(path)) == expected[path]
        assert _sha(pyfasts3.get(path)) == expected[path]


class _KeepAliveHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the same 4 KiB body and keeps the connection open (the S3
    servers the other tests use close idle connections, so nothing would be pooled)."""

    protocol_version = "HTTP/1.1"
    body = bytes(range(256)) * 16

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.send_header("ETag", '"keepalive"')
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_child_exiting_through_exit_leaves_the_parents_connections_alone():
    """A child that ends with C exit() (as a forked Python program does when it simply ends)
    runs the destructors of the forking thread's thread-locals. That thread's runtime and
    pooled connections live there, and they are the parent's: tearing them down in the child
    deregisters the sockets from the epoll instance both processes share, and the parent's
    next read on a pooled connection stalls until its read timeout (measured before the fix:
    the child's EPOLL_CTL_DEL, then a 3 s stall in the parent)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _KeepAliveHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    body = _KeepAliveHandler.body
    try:
        client = pyfasts3.Client(f"http://127.0.0.1:{server.server_address[1]}", anonymous=True, read_timeout=5)
        buf = np.zeros(len(body), np.uint8)
        assert client.get_into(buf, "bkt/key") == len(body)  # this thread's pool now holds it
        pid = os.fork()
        if pid == 0:
            import ctypes

            ctypes.CDLL(None).exit(0)  # unlike os._exit, runs thread-local destructors
            os._exit(3)  # not reached
        deadline = time.monotonic() + CHILD_GUARD
        while not os.waitpid(pid, os.WNOHANG)[0]:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail("the child hung in exit()")
            time.sleep(0.05)
        started = time.monotonic()
        for _ in range(3):
            buf[:] = 0
            assert client.get_into(buf, "bkt/key") == len(body)
            assert buf.tobytes() == body
        assert time.monotonic() - started < 2, "the parent's reads stalled after the child exited"
        client.close()
    finally:
        server.shutdown()
        server.server_close()


def test_fork_while_another_thread_holds_the_wrappers_locks(server_env, client, objects):
    """A thread that is inside the wrapper's critical sections at fork() time (the client
    handle's borrow lock, the default client's lock) does not exist in the child: the child
    must not inherit those locks held, or its first call deadlocks."""
    _check_reads(client, objects)
    held = threading.Event()
    release = threading.Event()

    def hold_locks():
        with client._handle._lock, pyfasts3._default_lock:
            held.set()
            release.wait(CHILD_GUARD)

    holder = threading.Thread(target=hold_locks, daemon=True)
    holder.start()
    assert held.wait(10)
    try:
        status, report = _in_forked_child(lambda: (_check_reads(client, objects),
                                                   _check_reads(pyfasts3.default_client(), objects)))
    finally:
        release.set()
        holder.join(10)
    assert status == 0, report
