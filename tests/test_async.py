"""asyncio API on the native completion queue (pyfasts3.aio, rust/ffi/ops.rs).

Each test runs its coroutine with asyncio.run under a hang guard (asyncio.wait_for), so a
lost completion fails the test instead of hanging CI. Slow transfers come from
tests/faultproxy.py (throttled or paused), never from sleeps in the server.
"""
from __future__ import annotations

import asyncio
import gc
import os
import time

import numpy as np
import pytest

import pyfasts3
from conftest import make_client
from faultproxy import proxied_client, random_bytes
from test_fork import _in_forked_child
from test_writes import _is_part, _uploads_left

PART = 64 * 1024
HANG_GUARD = 60.0
PROMPT = 2.0  # seconds a cancelled op may take to end

pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")


def run(coro, timeout: float = HANG_GUARD):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def until(predicate, timeout: float = 10.0) -> bool:
    """Poll `predicate` without blocking the loop."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


SIZES = [0, 1, 100, PART - 1, PART, PART + 1, 3 * PART + 17, 1 << 20]


def test_many_concurrent_reads_on_one_loop_every_byte_checked(client, put):
    data = {f"obj-{i}-{n}": random_bytes(n, i) for i, n in enumerate(SIZES * 4)}
    paths = {name: put(name, body) for name, body in data.items()}

    async def main():
        names = list(data)
        bufs = [np.full(len(data[n]), 0xEE, np.uint8) for n in names]
        # get_into_async, get_async and get_many_async all at once, on one loop.
        intos = [client.get_into_async(buf, paths[n]) for buf, n in zip(bufs, names)]
        gets = [client.get_async(paths[n]) for n in names]
        batch = client.get_many_async([paths[n] for n in names])
        results = await asyncio.gather(asyncio.gather(*intos), asyncio.gather(*gets), batch)
        written, arrays, batch_arrays = results
        for n, buf, w, a, b in zip(names, bufs, written, arrays, batch_arrays):
            assert w == len(data[n]), n
            assert buf.tobytes() == data[n], n
            assert a.dtype == np.uint8 and a.tobytes() == data[n], n
            assert b.tobytes() == data[n], n

    run(main())


def test_offsets_lengths_and_out_buffers(client, put):
    body = random_bytes(5 * PART + 3, 7)
    path = put("ranged", body)

    async def main():
        buf = bytearray(1000)
        assert await client.get_into_async(buf, path, offset=PART - 10) == 1000
        assert bytes(buf) == body[PART - 10:PART + 990]
        # Past the end: readinto semantics.
        assert await client.get_into_async(bytearray(10), path, offset=len(body)) == 0
        tail = bytearray(100)
        assert await client.get_into_async(tail, path, offset=len(body) - 40) == 40
        assert bytes(tail[:40]) == body[-40:]
        a = await client.get_async(path, offset=3, length=PART * 2)
        assert a.tobytes() == body[3:3 + 2 * PART]
        items = [(path, 0, 10), (path, 5 * PART, None), path]
        arrays = await client.get_many_async(items)
        assert [x.tobytes() for x in arrays] == [body[:10], body[5 * PART:], body]
        outs = [np.zeros(10, np.uint8), np.zeros(2 * PART, np.uint8), np.zeros(100, np.uint8)]
        written = await client.get_many_async([(path, 0, 10), (path, PART, None), (path, 1, 50)], out=outs)
        assert written == [10, 2 * PART, 50]
        assert outs[0].tobytes() == body[:10] and outs[1].tobytes() == body[PART:3 * PART]
        assert outs[2][:50].tobytes() == body[1:51] and not outs[2][50:].any(), "wrote past the item's length"
        with pytest.raises(ValueError):
            await client.get_many_async([(path, 0, 11)], out=[np.zeros(10, np.uint8)])

    run(main())


def test_missing_key_and_bucket_raise_the_sync_exceptions(client, put, bucket):
    put("present", b"x" * 10)

    async def main():
        with pytest.raises(pyfasts3.NoSuchKey) as err:
            await client.get_into_async(bytearray(10), f"{bucket}/absent")
        assert isinstance(err.value, FileNotFoundError)
        assert (err.value.bucket, err.value.key) == (bucket, "absent")
        assert err.value.status == 404 and "absent" in str(err.value)
        with pytest.raises(pyfasts3.NoSuchKey):
            await client.get_async(f"{bucket}/absent")
        with pytest.raises((pyfasts3.NoSuchBucket, pyfasts3.AccessDenied)):
            await client.get_async("no-such-bucket-pyfasts3-async/k")
        # One failure in a batch: raised with its key; the batch ends with every op.
        with pytest.raises(pyfasts3.NoSuchKey) as err:
            await client.get_many_async([f"{bucket}/present", f"{bucket}/absent", f"{bucket}/present"])
        assert err.value.key == "absent"
        # Bad arguments fail at once, before anything is submitted.
        with pytest.raises(TypeError):
            await client.get_into_async(b"read-only", f"{bucket}/present")
        with pytest.raises(ValueError):
            await client.get_async("no-key-here")
        # The loop's queue is still healthy afterwards.
        assert (await client.get_async(f"{bucket}/present")).tobytes() == b"x" * 10

    run(main())


def test_put_from_async_round_trip(client, bucket):
    small = random_bytes(1000, 1)
    big = random_bytes(11 << 20, 2)  # multipart with 5 MiB parts

    async def main():
        # The number of parts sent, as put_from returns: 0 for a single PUT.
        assert await client.put_from_async(small, f"{bucket}/small", content_type="text/plain",
                                           metadata={"origin": "async"}) == 0
        arr = np.frombuffer(big, np.uint8)
        assert await client.put_from_async(arr, f"{bucket}/big", multipart_threshold=5 << 20,
                                           part_size=5 << 20) == 3
        assert await client.put_from_async(b"", f"{bucket}/empty") == 0
        assert (await client.get_async(f"{bucket}/small")).tobytes() == small
        assert (await client.get_async(f"{bucket}/big")).tobytes() == big
        assert (await client.get_async(f"{bucket}/empty")).size == 0
        with pytest.raises(pyfasts3.PreconditionFailed):
            await client.put_from_async(b"other", f"{bucket}/small", if_none_match=True)

    run(main())
    info = client.head(f"{bucket}/small")
    assert info.content_type == "text/plain" and info.size == len(small)


@pytest.mark.plain_http_only
def test_cancelling_a_slow_read_returns_promptly_and_nothing_writes_after(server, put, proxy):
    size = 4 << 20
    data = random_bytes(size, 3)
    path = put("slow", data)
    proxy.throttle(128 * 1024)  # 4 connections x 128 KiB/s: 8 s for the object

    async def main(client):
        buf = np.zeros(size, np.uint8)
        task = asyncio.ensure_future(client.get_into_async(buf, path))
        assert await until(lambda: proxy.bytes_down >= 2 * PART, HANG_GUARD), "the read never got going"
        assert not task.done(), "the throttled read finished before it could be cancelled"
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - cancelled_at < PROMPT
        assert buf.any(), "no byte had arrived before the cancel: the test proves nothing"
        snapshot = buf.tobytes()
        # Bytes keep flowing through the throttled proxy: an op still running would write.
        await asyncio.sleep(0.5)
        assert buf.tobytes() == snapshot, "the buffer changed after the cancelled await returned"
        assert await until(lambda: proxy.active == 0, 10), f"connections left open: {proxy.stats()}"
        # The loop's queue and the client still work.
        proxy.throttle(None)
        again = np.zeros(size, np.uint8)
        assert await client.get_into_async(again, path) == size
        assert again.tobytes() == data

    with proxied_client(server, proxy, part_size=PART, max_concurrency=4) as client:
        run(main(client))


@pytest.mark.plain_http_only
def test_cancelling_reads_stalled_before_any_byte(server, put, proxy):
    paths = [put(f"stalled-{i}", random_bytes(PART * 3, i)) for i in range(4)]
    proxy.pause()  # no response byte at all

    async def main(client):
        bufs = [np.zeros(PART * 3, np.uint8) for _ in paths]
        batch = asyncio.ensure_future(client.get_many_async(paths, out=bufs))
        single = asyncio.ensure_future(client.get_async(paths[0]))
        assert await until(lambda: len(proxy.requests) >= 5, HANG_GUARD), "requests never went out"
        started = time.monotonic()
        batch.cancel()
        single.cancel()
        for t in (batch, single):
            with pytest.raises(asyncio.CancelledError):
                await t
        assert time.monotonic() - started < PROMPT
        proxy.resume()
        await asyncio.sleep(0.3)
        assert not any(b.any() for b in bufs), "a cancelled read wrote after its await ended"

    with proxied_client(server, proxy, part_size=PART) as client:
        run(main(client))


@pytest.mark.plain_http_only
def test_the_event_loop_keeps_running_during_a_large_read(server, put, proxy):
    size = 2 << 20
    data = random_bytes(size, 5)
    path = put("large", data)
    proxy.throttle(512 * 1024)  # about 1 s for the whole object over 4 connections

    async def main(client):
        gaps, stop = [], asyncio.Event()

        async def ticker():
            last = time.monotonic()
            while not stop.is_set():
                await asyncio.sleep(0.005)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        tick = asyncio.ensure_future(ticker())
        await asyncio.sleep(0.02)
        buf = np.zeros(size, np.uint8)
        started = time.monotonic()
        ticks_before = len(gaps)
        assert await client.get_into_async(buf, path) == size
        took = time.monotonic() - started
        ticks = len(gaps) - ticks_before
        stop.set()
        await tick
        assert buf.tobytes() == data
        assert took > 0.3, f"the read took {took:.2f}s: too fast to show anything"
        # A blocked loop would not tick at all during the read.
        assert ticks >= took / 0.005 / 4, f"{ticks} ticks in {took:.2f}s"
        assert max(gaps) < 0.2, f"the loop stalled for {max(gaps):.3f}s"

    with proxied_client(server, proxy, part_size=PART, max_concurrency=4) as client:
        run(main(client))


UPLOAD_PART = 5 << 20  # S3's smallest part


@pytest.mark.plain_http_only  # the fault proxy reads plain HTTP
def test_cancelling_put_from_async_mid_upload_aborts_it(server, bucket, s3, proxy):
    """As test_writes' blocking twin: part 2 is held by the proxy, the task is cancelled, and
    no multipart upload is left once the await ends: like the blocking call, the op aborts
    the upload before its completion arrives."""
    data = random_bytes(3 * UPLOAD_PART, 31)
    proxy.hold(_is_part(2))

    async def main(client):
        task = asyncio.ensure_future(client.put_from_async(data, f"{bucket}/cancelled", multipart_threshold=UPLOAD_PART,
                                                           part_size=UPLOAD_PART))
        assert await until(lambda: proxy.held >= 1, HANG_GUARD), "part 2 never reached the proxy"
        assert _uploads_left(s3, bucket) != []  # the upload exists while it runs
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - cancelled_at < PROMPT
        assert _uploads_left(s3, bucket) == [], "the cancelled upload was not aborted before the await ended"

    with proxied_client(server, proxy) as client:
        run(main(client))
        with pytest.raises(pyfasts3.NoSuchKey):
            client.head(f"{bucket}/cancelled")


@pytest.mark.plain_http_only  # the fault proxy reads plain HTTP
def test_put_from_async_with_a_part_failing_every_attempt_aborts_the_upload(server, bucket, s3, proxy):
    proxy.reject(_is_part(2), status=500, code="InternalError")
    with proxied_client(server, proxy, max_attempts=2) as client:
        with pytest.raises(pyfasts3.S3Error) as info:
            run(client.put_from_async(random_bytes(3 * UPLOAD_PART, 32), f"{bucket}/fails",
                                      multipart_threshold=UPLOAD_PART, part_size=UPLOAD_PART))
        assert proxy.rejected >= 2  # part 2 was retried before the upload gave up
        assert "part 2" in str(info.value)
        assert _uploads_left(s3, bucket) == []
        with pytest.raises(pyfasts3.NoSuchKey):
            client.head(f"{bucket}/fails")


def test_one_queue_per_loop_and_loops_in_turn(client, put):
    path = put("k", b"abc")
    from pyfasts3 import aio

    async def main():
        q = aio.queue()
        assert (await client.get_async(path)).tobytes() == b"abc"
        assert aio.queue() is q
        return q

    first = run(main())
    second = run(main())  # a new loop gets its own queue
    assert first is not second
    del first, second
    gc.collect()


def test_forked_child_reads_with_async(client, put):
    path = put("forky", random_bytes(3 * PART, 9))
    expected = random_bytes(3 * PART, 9)

    async def read():
        return (await client.get_async(path)).tobytes()

    assert run(read()) == expected  # the parent has a queue and a running runtime

    def child():
        assert asyncio.run(read()) == expected

    status, report = _in_forked_child(child)
    assert status == 0, report
    assert run(read()) == expected  # the parent is unharmed


def test_client_closed_while_an_op_runs(server, put):
    path = put("closing", random_bytes(PART * 8, 11))
    client = make_client(server, part_size=PART)

    async def main():
        task = asyncio.ensure_future(client.get_async(path))
        await asyncio.sleep(0)  # submitted
        client.close()  # the op holds its own reference to the native client
        assert (await task).tobytes() == random_bytes(PART * 8, 11)
        with pytest.raises(ValueError):
            await client.get_async(path)

    run(main())


# -- the async twins return and raise what the blocking calls do -------------------------------


def _raised(call):
    """The S3Error `call()` raises; when it returns a coroutine (an async twin), the one
    awaiting it raises, on a fresh loop."""
    try:
        result = call()
    except pyfasts3.S3Error as e:
        return e
    assert asyncio.iscoroutine(result), f"no error raised, got {result!r}"

    async def main():
        with pytest.raises(pyfasts3.S3Error) as info:
            await result
        return info.value

    return run(main())


def assert_same_error(sync_call, async_call, expected_class):
    """The async call raises exactly what the blocking call raises for the same failure:
    class, S3 code, HTTP status, bucket, key, status and message; and both carry the
    server's request id (moto and versitygw send one with every error)."""
    sync_e, async_e = _raised(sync_call), _raised(async_call)
    assert type(sync_e) is expected_class, repr(sync_e)
    assert type(async_e) is expected_class, repr(async_e)
    fields = ("code", "status", "bucket", "key", "fasts3_status", "message")
    assert {f: getattr(async_e, f) for f in fields} == {f: getattr(sync_e, f) for f in fields}
    assert str(async_e) == str(sync_e)
    assert sync_e.request_id, f"the blocking call's error has no request id: {sync_e!r}"
    assert async_e.request_id, f"the async call's error has no request id: {async_e!r}"
    return sync_e, async_e


def test_no_such_key_async_raises_the_sync_error_with_request_id(client, put, bucket):
    present = put("present", b"x" * 10)
    absent = f"{bucket}/absent"
    _, e = assert_same_error(lambda: client.get(absent), lambda: client.get_async(absent), pyfasts3.NoSuchKey)
    assert (e.code, e.status, e.bucket, e.key) == ("NoSuchKey", 404, bucket, "absent")
    assert_same_error(lambda: client.get_into(bytearray(10), absent),
                      lambda: client.get_into_async(bytearray(10), absent), pyfasts3.NoSuchKey)
    # A batch raises the error of its first failed item (by position, whichever fails first
    # in time), which names the item.
    items = [present, f"{bucket}/absent-1", present, f"{bucket}/absent-2"]
    for _ in range(3):
        _, e = assert_same_error(lambda: client.get_many(items), lambda: client.get_many_async(items),
                                 pyfasts3.NoSuchKey)
        assert e.key == "absent-1" and e.message.startswith("request 1: "), e.message
    outs = lambda: [np.zeros(10, np.uint8) for _ in items]  # noqa: E731
    assert_same_error(lambda: client.get_many(items, out=outs()), lambda: client.get_many_async(items, out=outs()),
                      pyfasts3.NoSuchKey)


def test_access_denied_async_raises_the_sync_error_with_request_id(server, put):
    """Unsigned requests for a private object are refused by both lanes."""
    path = put("private", b"secret")
    extra = {"ca_bundle": server.ca_bundle} if server.ca_bundle else {}
    with pyfasts3.Client(server.endpoint_url, region=server.region, anonymous=True, **extra) as anon:
        _, e = assert_same_error(lambda: anon.get(path), lambda: anon.get_async(path), pyfasts3.AccessDenied)
        assert e.status == 403 and e.code
        assert_same_error(lambda: anon.get_into(bytearray(6), path),
                          lambda: anon.get_into_async(bytearray(6), path), pyfasts3.AccessDenied)
        assert_same_error(lambda: anon.get_many([path]), lambda: anon.get_many_async([path]),
                          pyfasts3.AccessDenied)


def test_precondition_failed_async_raises_the_sync_error_with_request_id(client, put, bucket):
    path = put("exists", b"old")
    _, e = assert_same_error(lambda: client.put_from(b"new", path, if_none_match=True),
                             lambda: client.put_from_async(b"new", path, if_none_match=True),
                             pyfasts3.PreconditionFailed)
    assert (e.status, e.bucket, e.key) == (412, bucket, "exists")
    assert client.get(path).tobytes() == b"old"


def test_put_from_async_returns_what_put_from_returns(client, bucket):
    small = random_bytes(1000, 21)
    big = random_bytes(11 << 20, 22)
    options = dict(multipart_threshold=5 << 20, part_size=5 << 20)
    single = client.put_from(small, f"{bucket}/s-sync")
    multi = client.put_from(big, f"{bucket}/m-sync", **options)
    assert (single, multi) == (0, 3)

    async def main():
        return (await client.put_from_async(small, f"{bucket}/s-async"),
                await client.put_from_async(big, f"{bucket}/m-async", **options))

    assert run(main()) == (single, multi)
    assert client.get(f"{bucket}/m-async").tobytes() == big


def test_get_twins_return_what_the_blocking_calls_return(client, put, bucket):
    body = random_bytes(3 * PART + 5, 23)
    path = put("obj", body)
    items = [path, (path, 7, 100), (path, len(body) - 3, None), (path, len(body) + 10, 5)]

    async def main():
        into = bytearray(PART)
        return (await client.get_into_async(into, path, offset=len(body) - 9), bytes(into[:9]),
                await client.get_async(path, offset=2, length=PART),
                await client.get_many_async(items),
                await client.get_many_async(items[1:], out=[np.zeros(200, np.uint8) for _ in items[1:]]))

    written, head, array, arrays, counts = run(main())
    sync_into = bytearray(PART)
    assert written == client.get_into(sync_into, path, offset=len(body) - 9) and head == bytes(sync_into[:9])
    expected = client.get(path, offset=2, length=PART)
    assert (array.dtype, array.shape, array.tobytes()) == (expected.dtype, expected.shape, expected.tobytes())
    sync_arrays = client.get_many(items)
    assert [a.tobytes() for a in arrays] == [a.tobytes() for a in sync_arrays]
    assert [a.dtype for a in arrays] == [a.dtype for a in sync_arrays]
    assert counts == client.get_many(items[1:], out=[np.zeros(200, np.uint8) for _ in items[1:]])


def test_get_many_async_checks_out_as_get_many_does(client, put):
    path = put("k", b"abc")
    for items, out in [([], [bytearray(3)]), ([path], "abc"), ([path], [])]:
        with pytest.raises(ValueError) as sync_info:
            client.get_many(items, out=out)

        async def main():
            with pytest.raises(ValueError) as info:
                await client.get_many_async(items, out=out)
            return info.value

        assert str(run(main())) == str(sync_info.value)
