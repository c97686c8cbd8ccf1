"""One Client shared by many threads: concurrent reads are byte-exact, and closing the
client while other threads are inside calls neither crashes nor corrupts anything (calls in
flight finish or raise ValueError; later calls raise ValueError)."""
from __future__ import annotations

import threading
import time
import traceback

import numpy as np
import pytest

from faultproxy import FaultProxy, proxied_client

PART = 64 * 1024
THREADS = 8
HANG_GUARD = 60.0


def _data(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _run_threads(targets, timeout: float = HANG_GUARD):
    """Start one thread per target; return the formatted failures (empty when all passed)."""
    failures = []
    lock = threading.Lock()

    def wrap(i, fn):
        def run():
            try:
                fn()
            except BaseException:
                with lock:
                    failures.append(f"thread {i}:\n{traceback.format_exc()}")
        return run

    threads = [threading.Thread(target=wrap(i, fn), name=f"worker-{i}", daemon=True) for i, fn in enumerate(targets)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"threads still running after {timeout}s: {stuck}"
    return failures


def test_threads_share_one_client(client, put):
    objects = []
    for i in range(THREADS):
        small = _data(1000 + i, i)
        large = _data(200_000 + 1000 * i, 100 + i)  # 4 parts
        objects.append({
            "prefix": f"t{i}/",
            "small": (put(f"t{i}/small", small), small),
            "large": (put(f"t{i}/large", large), large),
        })
    bucket = objects[0]["small"][0].split("/")[0]
    start = threading.Barrier(THREADS)

    def worker(obj):
        start.wait(HANG_GUARD)
        (small_path, small), (large_path, large) = obj["small"], obj["large"]
        for _ in range(3):
            buf = np.zeros(len(large), np.uint8)
            assert client.get_into(buf, large_path) == len(large)
            assert buf.tobytes() == large
            assert client.get(small_path).tobytes() == small
            assert client.get(large_path, offset=12345, length=100_000).tobytes() == large[12345:112345]
            assert client.head(large_path).size == len(large)
            assert client.list_keys(f"{bucket}/{obj['prefix']}") == [obj["prefix"] + "large", obj["prefix"] + "small"]
            got = client.get_many([small_path, large_path])
            assert [a.tobytes() for a in got] == [small, large]

    failures = _run_threads([lambda o=o: worker(o) for o in objects])
    assert not failures, "\n".join(failures)


def test_close_while_other_threads_are_mid_call(server, put):
    size = 256 * 1024  # 4 parts
    objects = [(put(f"o{i}", _data(size, i)), _data(size, i)) for i in range(THREADS)]
    bucket = objects[0][0].split("/")[0]
    keys = sorted(p.split("/", 1)[1] for p, _ in objects)
    closing = threading.Event()  # set just before close() is called
    stats_lock = threading.Lock()
    finished_in_flight = []  # calls that started before close() and succeeded after it
    ended_with = {}

    with FaultProxy(server.endpoint_url) as proxy:
        proxy.throttle(128 * 1024)  # every call takes about a second
        client = proxied_client(server, proxy, part_size=PART)

        def call(op, path, data):
            if op == "get_into":
                buf = np.zeros(size, np.uint8)
                assert client.get_into(buf, path) == size
                assert buf.tobytes() == data
            elif op == "get":
                assert client.get(path).tobytes() == data
            elif op == "head":
                assert client.head(path).size == size
            elif op == "list_keys":
                assert client.list_keys(bucket) == keys
            else:
                assert [a.tobytes() for a in client.get_many([path])] == [data]

        def worker(i):
            path, data = objects[i]
            ops = ["get_into", "get", "head", "list_keys", "get_many"]
            n = i
            while True:
                op = ops[n % len(ops)]
                n += 1
                before = closing.is_set()
                try:
                    call(op, path, data)
                except ValueError as e:
                    assert "closed" in str(e), f"{op}: unexpected ValueError {e!r}"
                    assert closing.is_set(), f"{op} raised ValueError before close(): {e!r}"
                    ended_with[i] = "ValueError"
                    return
                if not before and closing.is_set():
                    with stats_lock:
                        finished_in_flight.append(op)

        def closer():
            closing.set()
            client.close()

        workers = [lambda i=i: worker(i) for i in range(THREADS)]
        results = {}

        def orchestrate():
            # Close (from two threads at once: close is idempotent) only once calls are
            # on the wire.
            assert proxy.wait_for(lambda p: p.active >= THREADS // 2, HANG_GUARD), proxy.stats()
            results["closers"] = _run_threads([closer, lambda: client.close()])

        failures = _run_threads(workers + [orchestrate])
        assert not failures, "\n".join(failures)
        assert not results["closers"], results["closers"]
        assert ended_with == {i: "ValueError" for i in range(THREADS)}
        assert finished_in_flight, "no call was in flight when the client was closed: the test proves nothing"

        # After close, every call raises ValueError right away.
        path, _ = objects[0]
        assert client.closed and "closed" in repr(client)
        for fn in (
            lambda: client.get_into(bytearray(10), path),
            lambda: client.get(path),
            lambda: client.head(path),
            lambda: client.list_keys(bucket),
            lambda: list(client.list_objects(bucket)),
            lambda: client.get_many([path]),
        ):
            with pytest.raises(ValueError, match="closed"):
                fn()
        client.close()

        # The last call out freed the native client: its pooled connections are closed.
        assert proxy.wait_for(lambda p: p.active == 0, 10), f"connections still open: {proxy.stats()}"


def test_listing_started_before_close_continues(client, put):
    """A listing cursor holds its own reference to the native client (fasts3.h), so a
    list_objects iteration begun before close() runs to the end."""
    keys = [f"k{i}" for i in range(5)]
    for k in keys:
        put(k, k.encode())
    bucket = put("k0", b"k0").split("/")[0]
    it = client.list_objects(bucket, page_size=2)
    first = next(it)
    client.close()
    assert [first.key] + [o.key for o in it] == keys
    with pytest.raises(ValueError):
        list(client.list_objects(bucket, page_size=2))
