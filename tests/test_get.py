"""get_into / get / get_many: exact bytes for every size, offset and length edge case.

The `client` fixture reads in 64 KiB parts, so objects of a few hundred KiB already take the
multi-part path (first ranged GET, then concurrent If-Match parts).
"""
from __future__ import annotations

import asyncio
import gc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import pyfasts3
from conftest import make_client

PART = 64 * 1024
MIB = 1024 * 1024
SENTINEL = 0xAB

# 0 bytes, 1 byte, one part minus one, exactly one part, one part + 1, many parts.
SIZES = [0, 1, PART - 1, PART, PART + 1, MIB + 7]
SIZE_IDS = ["empty", "1B", "part-1", "part", "part+1", "1MiB+7"]


def payload(n: int, seed: int = 0) -> bytes:
    """Random bytes: a misplaced or repeated chunk cannot go unnoticed."""
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def sentinel_buf(n: int) -> np.ndarray:
    return np.full(n, SENTINEL, dtype=np.uint8)


# -- get_into ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_get_into_exact_size_buffer(client, put, size):
    data = payload(size, seed=size)
    path = put("obj", data)
    buf = sentinel_buf(size)
    assert client.get_into(buf, path) == size
    assert buf.tobytes() == data


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_get_into_buffer_larger_than_object(client, put, size):
    """Returns the object size; the tail of the buffer is left untouched."""
    data = payload(size, seed=size + 1)
    path = put("obj", data)
    buf = sentinel_buf(size + 1000)
    assert client.get_into(buf, path) == size
    assert buf[:size].tobytes() == data
    assert (buf[size:] == SENTINEL).all()


@pytest.mark.parametrize("size,buflen", [
    (2, 1),
    (PART, PART - 1),
    (PART + 1, PART),
    (MIB + 7, 1),
    (MIB + 7, PART + 1),
    (MIB + 7, MIB + 6),
], ids=["2B-into-1", "part-into-part-1", "part+1-into-part", "1MiB+7-into-1",
        "1MiB+7-into-part+1", "1MiB+7-into-1MiB+6"])
def test_get_into_buffer_smaller_than_object(client, put, size, buflen):
    data = payload(size, seed=3)
    path = put("obj", data)
    buf = sentinel_buf(buflen)
    assert client.get_into(buf, path) == buflen
    assert buf.tobytes() == data[:buflen]


@pytest.mark.parametrize("offset,buflen", [
    (1, 10),                    # tiny read inside the first part
    (1000, 5000),               # inside the first part
    (PART - 10, 20),            # straddles the first part boundary
    (PART - 10, 3 * PART),      # unaligned multi-part read
    (PART, PART),               # exactly the second part
    (3 * PART + 5, 2 * PART + 3),
    (MIB - 1, 8),               # the last 8 bytes exactly
    (MIB + 6, 1),               # the last byte
], ids=["1+10", "1000+5000", "straddle-boundary", "unaligned-multi", "second-part",
        "middle", "last-8", "last-1"])
def test_get_into_offset_inside(client, put, offset, buflen):
    data = payload(MIB + 7, seed=4)
    path = put("obj", data)
    buf = sentinel_buf(buflen)
    assert client.get_into(buf, path, offset=offset) == buflen
    assert buf.tobytes() == data[offset:offset + buflen]


@pytest.mark.parametrize("size,offset", [
    (100, 95),
    (PART + 1, PART - 3),
    (MIB + 7, MIB - 100),
    (MIB + 7, 2 * PART - 1),
], ids=["small", "across-boundary", "many-parts-tail", "many-parts-long-tail"])
def test_get_into_read_runs_past_end(client, put, size, offset):
    """offset + len(buf) beyond the end: returns what exists, leaves the rest untouched."""
    data = payload(size, seed=5)
    path = put("obj", data)
    buf = sentinel_buf(size - offset + 4321)
    n = client.get_into(buf, path, offset=offset)
    assert n == size - offset
    assert buf[:n].tobytes() == data[offset:]
    assert (buf[n:] == SENTINEL).all()


@pytest.mark.parametrize("size", [0, 1, PART, MIB + 7], ids=["empty", "1B", "part", "1MiB+7"])
@pytest.mark.parametrize("past", [0, 1, 10 * MIB], ids=["at-end", "end+1", "far-past"])
def test_get_into_offset_at_or_past_end_returns_zero(client, put, size, past):
    path = put("obj", payload(size))
    buf = sentinel_buf(100)
    assert client.get_into(buf, path, offset=size + past) == 0
    assert (buf == SENTINEL).all()


def test_get_into_empty_object_into_empty_buffer(client, put):
    path = put("empty", b"")
    assert client.get_into(bytearray(), path) == 0
    assert client.get_into(np.empty(0, np.uint8), path) == 0


@pytest.mark.parametrize("offset", [0, 5, 10**9])
def test_get_into_zero_length_buffer_on_existing_object(client, put, offset):
    path = put("obj", b"0123456789")
    assert client.get_into(bytearray(), path, offset=offset) == 0
    assert client.get_into(np.empty(0, np.float64), path, offset=offset) == 0


def test_get_into_zero_length_buffer_on_missing_key_raises(client, bucket):
    """Nothing to read, but a missing object must still be reported."""
    with pytest.raises(pyfasts3.NoSuchKey) as ei:
        client.get_into(bytearray(), f"{bucket}/missing")
    assert ei.value.key == "missing"
    assert ei.value.bucket == bucket


def test_get_into_overwrites_previous_contents(client, put):
    """Reusing a buffer: every byte comes from the new object."""
    a, b = payload(3 * PART + 11, seed=10), payload(3 * PART + 11, seed=11)
    pa, pb = put("a", a), put("b", b)
    buf = np.empty(len(a), np.uint8)
    assert client.get_into(buf, pa) == len(a)
    assert client.get_into(buf, pb) == len(b)
    assert buf.tobytes() == b


def test_get_into_sees_overwritten_object(client, put):
    path = put("obj", payload(PART * 2, seed=1))
    new = payload(PART * 3 + 1, seed=2)
    put("obj", new)
    buf = np.empty(len(new), np.uint8)
    assert client.get_into(buf, path) == len(new)
    assert buf.tobytes() == new


def test_get_into_multipart_uploaded_object(client, s3, bucket):
    """An object whose ETag is a multipart ETag ("...-2"): the If-Match parts must still match."""
    first, second = payload(5 * MIB, seed=20), payload(PART + 3, seed=21)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mpu")
    parts = []
    for number, chunk in enumerate([first, second], start=1):
        r = s3.upload_part(Bucket=bucket, Key="mpu", UploadId=up["UploadId"], PartNumber=number, Body=chunk)
        parts.append({"PartNumber": number, "ETag": r["ETag"]})
    s3.complete_multipart_upload(Bucket=bucket, Key="mpu", UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": parts})
    data = first + second
    buf = np.empty(len(data), np.uint8)
    assert client.get_into(buf, f"{bucket}/mpu") == len(data)
    assert buf.tobytes() == data
    # A window across the two uploaded parts, starting mid-part for our reader too.
    win = client.get(f"{bucket}/mpu", offset=5 * MIB - 100, length=PART)
    assert win.tobytes() == data[5 * MIB - 100:5 * MIB - 100 + PART]


def test_get_into_s3_scheme_path(client, put, bucket):
    data = payload(PART + 17)
    put("dir/obj", data)
    buf = np.empty(len(data), np.uint8)
    assert client.get_into(buf, f"s3://{bucket}/dir/obj") == len(data)
    assert buf.tobytes() == data


def test_get_into_concurrent_calls_on_one_client(client, put):
    """A client is shared between threads: concurrent reads land in their own buffers."""
    objects = {f"o{i}": payload(PART * (i % 4) + i * 37, seed=i) for i in range(12)}
    paths = {k: put(k, v) for k, v in objects.items()}

    def read(key):
        buf = np.empty(len(objects[key]), np.uint8)
        n = client.get_into(buf, paths[key])
        return key, n, buf.tobytes()

    with ThreadPoolExecutor(6) as pool:
        for key, n, got in pool.map(read, objects):
            assert n == len(objects[key])
            assert got == objects[key]


# -- get -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_get_whole_object(client, put, size):
    data = payload(size, seed=size + 2)
    arr = client.get(put("obj", data))
    assert isinstance(arr, np.ndarray)
    assert arr.dtype == np.uint8
    assert arr.ndim == 1
    assert arr.shape == (size,)
    assert arr.tobytes() == data


def test_get_empty_object_returns_empty_uint8(client, put):
    arr = client.get(put("empty", b""))
    assert arr.dtype == np.uint8 and arr.shape == (0,)


@pytest.mark.parametrize("offset,length", [
    (0, 1),
    (0, 10),
    (7, 100),
    (PART - 1, 2),
    (PART - 10, 3 * PART),
    (0, PART),
    (0, PART + 1),
    (PART, None),
    (MIB, None),
    (MIB + 6, None),
    (12345, None),
], ids=lambda v: str(v))
def test_get_offset_and_length(client, put, offset, length):
    data = payload(MIB + 7, seed=6)
    path = put("obj", data)
    arr = client.get(path, offset=offset, length=length)
    end = len(data) if length is None else offset + length
    assert arr.tobytes() == data[offset:end]


@pytest.mark.parametrize("offset,length", [(0, 10**9), (PART - 50, 100), (PART - 5, 10**6), (PART, 2)])
def test_get_length_past_end_returns_what_exists(client, put, offset, length):
    data = payload(PART + 1, seed=7)
    arr = client.get(put("obj", data), offset=offset, length=length)
    assert arr.tobytes() == data[offset:]
    assert len(arr) == len(data) - offset


@pytest.mark.parametrize("offset", [0, 3, 10, 11, 10**12])
def test_get_length_zero_returns_empty(client, put, offset):
    arr = client.get(put("obj", b"0123456789"), offset=offset, length=0)
    assert arr.dtype == np.uint8 and arr.shape == (0,)


@pytest.mark.parametrize("size,offset", [(10, 10), (10, 11), (0, 0), (0, 5), (PART, PART), (MIB + 7, 10**10)])
def test_get_offset_at_or_past_end_returns_empty(client, put, size, offset):
    arr = client.get(put("obj", payload(size)), offset=offset)
    assert arr.dtype == np.uint8 and arr.shape == (0,)


def test_get_returns_writable_array(client, put):
    data = payload(PART + 5)
    arr = client.get(put("obj", data))
    assert arr.flags.writeable
    arr[:] = 7
    arr[-1] = 9
    assert arr[0] == 7 and arr[-1] == 9
    # A second get is a fresh array, not the one we scribbled on.
    assert client.get(put("obj", data)).tobytes() == data


def test_get_small_object_returns_writable_array(client, put):
    arr = client.get(put("obj", b"abc"))
    assert arr.flags.writeable
    arr[1] = ord("X")
    assert arr.tobytes() == b"aXc"


def test_get_arrays_are_independent(client, put):
    data = payload(2 * PART + 3)
    path = put("obj", data)
    a, b = client.get(path), client.get(path)
    assert not np.shares_memory(a, b)
    a[:] = 0
    assert b.tobytes() == data


# Large results (>= 16 MiB) freed by the caller are kept a few seconds and handed to the
# next get() of a similar size (rust/engine/result_buffer.rs): the reused memory must never
# show the old object's bytes, never be shared with a live array, and never outlive use.
CACHED = 16 * MIB


def test_get_reusing_a_freed_large_result_returns_only_the_new_bytes(client, put):
    big, smaller = payload(CACHED + 4 * MIB, seed=21), payload(CACHED + 1 * MIB + 3, seed=22)
    big_path, smaller_path = put("big", big), put("smaller", smaller)
    first = client.get(big_path)
    first_address = first.__array_interface__["data"][0]
    assert first.tobytes() == big
    first[:] = 0x5A  # the caller scribbles on its result before dropping it
    del first
    gc.collect()
    # Without the cache, the freed mapping's address would go to this array.
    other = np.ones(len(big), np.uint8)
    second = client.get(smaller_path)
    # The same memory, now exactly the smaller object: nothing of the old one shows.
    assert second.__array_interface__["data"][0] == first_address
    assert not np.shares_memory(second, other)
    assert second.nbytes == len(smaller)
    assert second.tobytes() == smaller


def test_get_never_hands_out_memory_of_a_live_result(client, put):
    data = payload(CACHED + 7, seed=23)
    path = put("obj", data)
    results = [client.get(path) for _ in range(3)]
    for i, a in enumerate(results):
        for b in results[i + 1:]:
            assert not np.shares_memory(a, b)
    results[0][:] = 0
    assert results[1].tobytes() == data and results[2].tobytes() == data


def test_get_reused_memory_after_a_failed_read_is_not_returned(client, put, bucket):
    data = payload(CACHED + 11, seed=24)
    path = put("obj", data)
    arr = client.get(path)
    del arr
    gc.collect()
    with pytest.raises(pyfasts3.NoSuchKey):
        client.get(f"{bucket}/missing")
    assert client.get(path).tobytes() == data


def test_get_array_outlives_closed_and_collected_client(server, put):
    """The array owns its memory: closing and collecting the client must not invalidate it."""
    data = payload(3 * PART + 9, seed=8)
    small = b"tiny object"
    path, small_path = put("obj", data), put("small", small)
    c = make_client(server, part_size=PART)
    arr = c.get(path)
    tiny = c.get(small_path)
    view = arr[PART:2 * PART]
    c.close()
    del c
    gc.collect()
    # Churn the allocator so freed memory would be reused and overwritten.
    junk = [np.full(len(data), 0x55, np.uint8) for _ in range(8)]
    assert arr.tobytes() == data
    assert tiny.tobytes() == small
    del arr
    gc.collect()
    junk += [np.full(len(data), 0x66, np.uint8) for _ in range(8)]
    assert view.tobytes() == data[PART:2 * PART]
    del junk


def test_get_many_arrays_outlive_client(server, put):
    objects = [payload(n, seed=n) for n in (0, 5, PART + 1)]
    paths = [put(f"k{i}", d) for i, d in enumerate(objects)]
    with make_client(server, part_size=PART) as c:
        arrays = c.get_many(paths)
    gc.collect()
    _junk = [np.full(PART * 2, 1, np.uint8) for _ in range(8)]
    assert [a.tobytes() for a in arrays] == objects


# -- get_many ------------------------------------------------------------------------------


def test_get_many_items_with_offset_and_length(client, put):
    a, b = payload(3 * PART + 5, seed=31), payload(PART // 2, seed=32)
    pa, pb = put("a", a), put("b", b)
    got = client.get_many([pa, (pa, PART - 3, PART + 10), (pb, 100, None), (pa, len(a) - 8, 8),
                           (pb, 10, 10**9), (pa, len(a) + 5, 4), (pb, 0, 0)])
    assert [g.tobytes() for g in got] == [a, a[PART - 3:2 * PART + 7], b[100:], a[-8:], b[10:], b"", b""]


def test_get_many_items_pinned_to_a_listing_or_an_etag(client, put, s3, bucket):
    """Items from a listing read the version listed; a pyfasts3.Read pins any slice to an
    ETag. A changed object fails its own item with ObjectChanged, never with other bytes."""
    a, b = payload(3 * PART + 5, seed=36), payload(PART // 2, seed=37)
    pa, pb = put("pin/a", a), put("pin/b", b)
    listed = sorted(client.list_objects(f"{bucket}/pin/"), key=lambda info: info.key)
    got = client.get_many(listed)
    assert [g.tobytes() for g in got] == [a, b]
    old_b = listed[1].etag
    b2 = payload(PART // 2, seed=38)
    s3.put_object(Bucket=bucket, Key="pin/b", Body=b2)
    with pytest.raises(pyfasts3.ObjectChanged) as raised:
        client.get_many(listed)
    assert raised.value.key == "pin/b"
    new_b = client.head(pb).etag
    out = [np.zeros(10, np.uint8), np.zeros(PART, np.uint8)]
    reads = [pyfasts3.Read(pb, 5, 10, if_match=new_b), pyfasts3.Read(pa, PART - 3, None, if_match=listed[0].etag)]
    assert client.get_many(reads, out=out) == [10, PART]
    assert out[0].tobytes() == b2[5:15] and out[1].tobytes() == a[PART - 3:2 * PART - 3]
    stale = [pyfasts3.Read(pa), pyfasts3.Read(pb, 0, 100, if_match=old_b)]
    with pytest.raises(pyfasts3.ObjectChanged) as raised:
        client.get_many(stale)
    assert raised.value.key == "pin/b" and "request 1" in str(raised.value)
    with pytest.raises(pyfasts3.ObjectChanged) as raised:
        asyncio.run(client.get_many_async(stale))
    assert "request 1" in str(raised.value)
    assert [g.tobytes() for g in asyncio.run(client.get_many_async(reads))] == [b2[5:15], a[PART - 3:]]


def test_get_many_into_caller_buffers(client, put):
    """The tensor-slices pattern: many slices of several objects land in views of one
    preallocated array; each returns the bytes written."""
    a, b = payload(2 * PART + 9, seed=33), payload(5000, seed=34)
    pa, pb = put("a", a), put("b", b)
    dest = np.full(3 * PART, SENTINEL, dtype=np.uint8)
    views = [dest[:PART], dest[PART:PART + 4000], dest[2 * PART:3 * PART], dest[PART + 4000:PART + 4000]]
    written = client.get_many([(pa, 7, None), (pb, 0, 4000), (pb, 1000, None), (pa, 0, None)], out=views)
    assert written == [PART, 4000, 4000, 0]
    assert dest[:PART].tobytes() == a[7:PART + 7]
    assert dest[PART:PART + 4000].tobytes() == b[:4000]
    assert dest[2 * PART:2 * PART + 4000].tobytes() == b[1000:]
    # Nothing outside what was written changed.
    assert (dest[PART + 4000:2 * PART] == SENTINEL).all()
    assert (dest[2 * PART + 4000:] == SENTINEL).all()


def test_get_many_into_typed_arrays_and_bytearrays(client, put):
    data = payload(4096, seed=35)
    path = put("obj", data)
    floats, raw = np.zeros(256, dtype=np.float64), bytearray(100)
    assert client.get_many([path, (path, 2048, None)], out=[floats, raw]) == [2048, 100]
    assert floats.tobytes() == data[:2048]
    assert bytes(raw) == data[2048:2148]


@pytest.mark.parametrize("items,out,error", [
    (["b/k"], [], ValueError),                      # one buffer per item
    (["b/k"], [bytes(4)], TypeError),               # read-only buffer
    ([("b/k", 0, 10)], [bytearray(4)], ValueError),  # length larger than the buffer
    ([("b/k", -1, 4)], None, ValueError),           # negative offset
    ([("b/k", 0)], None, TypeError),                # not a triple
    ([(b"b/k", 0, 4)], None, TypeError),            # path not a str
])
def test_get_many_bad_items_or_buffers_are_refused_before_any_request(client, items, out, error):
    with pytest.raises(error):
        client.get_many(items, out=out)


def test_get_many_into_buffers_names_the_failed_item(client, put, bucket):
    path = put("obj", payload(100))
    with pytest.raises(pyfasts3.NoSuchKey) as info:
        client.get_many([path, (f"{bucket}/missing", 0, 10)], out=[bytearray(100), bytearray(10)])
    assert info.value.key == "missing"


def test_get_many_mixed_sizes_in_order(client, put):
    sizes = [0, 1, MIB + 7, 5, PART, 0, PART + 1, 3 * PART - 1, 100]
    objects = [payload(n, seed=i) for i, n in enumerate(sizes)]
    paths = [put(f"k{i:02d}", d) for i, d in enumerate(objects)]
    arrays = client.get_many(paths)
    assert isinstance(arrays, list)
    assert len(arrays) == len(paths)
    for arr, data in zip(arrays, objects):
        assert isinstance(arr, np.ndarray) and arr.dtype == np.uint8 and arr.ndim == 1
        assert arr.tobytes() == data


def test_get_many_reverse_and_duplicate_paths(client, put):
    objects = {k: payload(n, seed=n) for k, n in [("a", 10), ("b", PART + 2), ("c", 0)]}
    paths = {k: put(k, d) for k, d in objects.items()}
    order = ["c", "b", "a", "b", "b", "a", "c"]
    arrays = client.get_many([paths[k] for k in order])
    assert [a.tobytes() for a in arrays] == [objects[k] for k in order]
    # Duplicates are separate arrays, not one shared buffer.
    assert not np.shares_memory(arrays[1], arrays[3])


def test_get_many_more_than_100_paths(client, s3, bucket):
    n = 130
    objects = [payload(i * 13 % 500, seed=i) for i in range(n)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: s3.put_object(Bucket=bucket, Key=f"many/{i:04d}", Body=objects[i]), range(n)))
    # Plus a few multi-part objects in the middle of the batch.
    big = payload(4 * PART + 3, seed=999)
    s3.put_object(Bucket=bucket, Key="many/big", Body=big)
    paths = [f"{bucket}/many/{i:04d}" for i in range(n)]
    paths[50:50] = [f"{bucket}/many/big"] * 3
    expected = objects[:50] + [big] * 3 + objects[50:]
    arrays = client.get_many(paths)
    assert len(arrays) == len(expected)
    assert [a.tobytes() for a in arrays] == expected


def test_get_many_accepts_tuple_and_s3_scheme(client, put, bucket):
    put("x", b"xx")
    put("y/z", b"yz")
    arrays = client.get_many((f"s3://{bucket}/x", f"{bucket}/y/z"))
    assert [a.tobytes() for a in arrays] == [b"xx", b"yz"]


def test_get_many_across_buckets(client, s3, put, bucket):
    other = bucket[:-1] + ("0" if bucket[-1] != "0" else "1")
    s3.create_bucket(Bucket=other)
    s3.put_object(Bucket=other, Key="k", Body=b"other bucket")
    put("k", b"this bucket")
    arrays = client.get_many([f"{bucket}/k", f"{other}/k"])
    assert [a.tobytes() for a in arrays] == [b"this bucket", b"other bucket"]


def test_get_many_empty_list(client):
    assert client.get_many([]) == []


def test_get_many_missing_key_names_it(client, put, bucket):
    paths = [put("a", b"a"), put("b", payload(PART + 1)), f"{bucket}/no/such/key", put("c", b"")]
    with pytest.raises(pyfasts3.NoSuchKey) as ei:
        client.get_many(paths)
    assert ei.value.key == "no/such/key"
    assert ei.value.bucket == bucket
    assert isinstance(ei.value, FileNotFoundError)


def test_get_many_missing_bucket_names_it(client, put, bucket):
    paths = [put("a", b"a"), f"{bucket}-nope/a"]
    with pytest.raises(pyfasts3.NoSuchBucket) as ei:
        client.get_many(paths)
    assert ei.value.bucket == f"{bucket}-nope"


def test_get_many_rejects_single_string(client, put):
    path = put("a", b"a")
    with pytest.raises(TypeError):
        client.get_many(path)
    with pytest.raises(TypeError):
        client.get_many(path.encode())


def test_get_many_malformed_path_is_value_error(client, put, bucket):
    with pytest.raises(ValueError):
        client.get_many([put("a", b"a"), bucket])


# -- keys ----------------------------------------------------------------------------------

ODD_KEYS = [
    "with space",
    "two  spaces",
    "plus+sign",
    "percent%",
    "percent%20encoded-looking",
    "question?mark",
    "hash#tag",
    "eq=amp&more=1",
    "semi;colon:comma,",
    "quotes'\"",
    "star*tilde~caret^",
    "brackets[]{}()<>",
    "dollar$at@bang!",
    "back\\slash",
    "pipe|and`tick",
    "a/b/c/d/e/f",
    "dir with space/file+name%.bin",
    "caf\u00e9",
    "e\u0301-combining",
    "\u65e5\u672c\u8a9e/\u30d5\u30a1\u30a4\u30eb",
    "emoji\U0001F600",
    "\U0001F4C1/\U0001F4C4",
    # Leading/trailing spaces: both moto and versitygw (posix backend) keep them.
    " leading-space",
    "trailing-space ",
]


@pytest.mark.parametrize("key", ODD_KEYS, ids=lambda k: k.encode("unicode_escape").decode())
def test_odd_key_roundtrip(client, put, bucket, key):
    """put (boto3) -> get / get_into / get_many / head / list_keys, all with the same key."""
    data = payload(PART + 3, seed=len(key)) + key.encode()
    path = put(key, data)
    assert client.get(path).tobytes() == data
    assert client.get(f"s3://{path}", offset=PART, length=10).tobytes() == data[PART:PART + 10]
    buf = np.empty(len(data), np.uint8)
    assert client.get_into(buf, path) == len(data)
    assert buf.tobytes() == data
    assert client.get_many([path])[0].tobytes() == data
    info = client.head(path)
    assert info.key == key and info.bucket == bucket and info.size == len(data)
    assert client.list_keys(f"{bucket}/{key}") == [key]
    assert client.list_keys(bucket) == [key]


def test_odd_keys_listed_together_in_byte_order(client, s3, bucket):
    for key in ODD_KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    expected = sorted(ODD_KEYS, key=lambda k: k.encode("utf-8"))
    assert client.list_keys(bucket) == expected
    assert [o.key for o in client.list_objects(bucket, page_size=5)] == expected
    arrays = client.get_many([f"{bucket}/{k}" for k in expected])
    assert [a.tobytes() for a in arrays] == [k.encode() for k in expected]


def test_long_key_roundtrip(client, put, bucket):
    """A key at S3's 1024-byte limit, with multi-byte characters. Segments stay under 255
    bytes so that versitygw's posix backend (one file-system name per segment) accepts it."""
    segment = "\u00e9" * 50 + "x" * 100  # 200 bytes
    key = "/".join([segment] * 5)  # 1004 bytes
    key += "/" + "y" * (1024 - len(key.encode()) - 1)
    assert len(key.encode()) == 1024
    path = put(key, b"long key")
    assert client.get(path).tobytes() == b"long key"
    assert client.head(path).key == key


# Keys that look like file-system paths. The URL must carry them verbatim (no dot-segment
# removal, no slash collapsing), and SigV4 must sign exactly that.
PATH_LIKE_KEYS = ["/leading-slash", "a//double", "./dot", "x/../y", "x/./y", "end/."]


@pytest.mark.parametrize("key", PATH_LIKE_KEYS)
def test_path_like_key_roundtrip(client, server, put, bucket, key):
    data = f"contents of {key}".encode() + payload(PART, seed=1)
    path = put(key, data)
    assert client.get(path).tobytes() == data
    buf = np.empty(len(data), np.uint8)
    assert client.get_into(buf, path) == len(data)
    assert buf.tobytes() == data
    assert client.head(path).key == key
    if server.name == "versitygw":
        # Its posix backend stores "x/../y" as the file y, "a//double" as a/double...: the
        # listing shows the normalized name, so only check the key is found under it.
        return
    assert client.list_keys(f"{bucket}/{key}") == [key]


def test_huge_offset_returns_zero(client, put):
    path = put("obj", b"data")
    buf = bytearray(b"\xab" * 8)
    assert client.get_into(buf, path, offset=2**63 - 1) == 0
    assert buf == b"\xab" * 8
    assert client.get(path, offset=2**63 - 1, length=2**63 - 1).size == 0


def test_huge_length_returns_whole_object(client, put):
    data = payload(PART + 1)
    assert client.get(put("obj", data), length=2**63 - 1).tobytes() == data


def test_get_many_with_two_failures_names_a_consistent_one(client, put, bucket):
    """The raised class matches the path its .bucket/.key name (first failure in order)."""
    paths = [put("a", b"a"), f"{bucket}-nope/x", f"{bucket}/missing"]
    with pytest.raises(pyfasts3.NoSuchBucket) as ei:
        client.get_many(paths)
    assert (ei.value.bucket, ei.value.key) == (f"{bucket}-nope", "x")
    with pytest.raises(pyfasts3.NoSuchKey) as ei:
        client.get_many(paths[::-1])
    assert (ei.value.bucket, ei.value.key) == (bucket, "missing")
