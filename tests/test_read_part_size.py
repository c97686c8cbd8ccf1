"""A read's own part size (``part_size=`` on get_into, get, get_ranges, Read items and the
async reads; C: ``fasts3_read_options.part_size``, ABI 3.1): the read is cut into ranged GETs
of that many bytes, the first one included, whatever the client's part size. Counted on
tests/fakes3.py, which logs every request's Range. Runs once (the fake is the server).
"""
from __future__ import annotations

import asyncio
import os

import numpy as np
import pytest

import pyfasts3
import pyfasts3.io
from fakes3 import FakeS3
from pyfasts3._lowlevel import ffi, lib

KIB = 1024
MIB = 1024 * KIB
SIZE = MIB + 5 * KIB
PATH = "bkt/obj"
DATA = np.random.default_rng(11).integers(0, 256, SIZE, dtype=np.uint8).tobytes()


@pytest.fixture
def fake():
    with FakeS3() as f:
        f.put(PATH, DATA)
        yield f


def client_of(fake: FakeS3, **kwargs) -> pyfasts3.Client:
    # The client's own part size is small, so a read's larger one shows in the request count.
    kwargs.setdefault("part_size", 64 * KIB)
    return pyfasts3.Client(fake.url, region="us-east-1", access_key_id="k", secret_access_key="s", **kwargs)


def get_ranges_asked(fake: FakeS3) -> list:
    """The Range headers of the GETs since the last call, in byte order."""
    asked = sorted((r.range for r in fake.gets_log()), key=lambda r: int(r[6:].split("-")[0]))
    fake.requests.clear()
    return asked


def ranges_of(start: int, end: int, part: int) -> list:
    return [f"bytes={o}-{min(o + part, end) - 1}" for o in range(start, end, part)]


def test_get_into_and_get_use_the_reads_part_size(fake):
    with client_of(fake) as c:
        buf = np.empty(SIZE, np.uint8)
        assert c.get_into(buf, PATH, part_size=256 * KIB) == SIZE and buf.tobytes() == DATA
        assert get_ranges_asked(fake) == ranges_of(0, SIZE, 256 * KIB)
        assert c.get(PATH, offset=100, part_size=4 * MIB).tobytes() == DATA[100:]
        assert get_ranges_asked(fake) == [f"bytes=100-{100 + 4 * MIB - 1}"]
        # Without it, the client's part size.
        assert c.get(PATH).tobytes() == DATA
        assert get_ranges_asked(fake) == ranges_of(0, SIZE, 64 * KIB)


def test_batch_items_ranges_and_async_reads_take_it_too(fake):
    with client_of(fake) as c:
        (a, b) = c.get_many([pyfasts3.Read(PATH, part_size=512 * KIB), pyfasts3.Read(PATH, offset=SIZE - 10)])
        assert a.tobytes() == DATA and b.tobytes() == DATA[-10:]
        assert get_ranges_asked(fake) == sorted(ranges_of(0, SIZE, 512 * KIB) + [f"bytes={SIZE - 10}-{SIZE - 10 + 64 * KIB - 1}"],
                                                key=lambda r: int(r[6:].split("-")[0]))
        (view,) = c.get_ranges(PATH, [(0, SIZE)], part_size=MIB)
        assert view.tobytes() == DATA
        assert [r for r in get_ranges_asked(fake)] == ranges_of(0, SIZE, MIB)

        async def both():
            buf = np.empty(SIZE, np.uint8)
            n = await c.get_into_async(buf, PATH, part_size=300 * KIB)
            arr = await c.get_async(PATH, part_size=400 * KIB)
            return n, buf, arr
        n, buf, arr = asyncio.run(both())
        assert n == SIZE and buf.tobytes() == DATA and arr.tobytes() == DATA
        assert get_ranges_asked(fake) == sorted(ranges_of(0, SIZE, 300 * KIB) + ranges_of(0, SIZE, 400 * KIB),
                                                key=lambda r: int(r[6:].split("-")[0]))


def test_a_coalesced_span_and_an_async_batch_take_it_too(fake):
    with client_of(fake) as c:
        # Three ranges merged into one span over the whole object: the span is cut by part_size,
        # and the parts holding none of the ranges (only gap bytes) are not asked for.
        ranges = [(0, 100), (200_000, 100), (SIZE - 100, 100)]
        views = c.get_ranges(PATH, ranges, max_gap=SIZE, part_size=256 * KIB)
        assert [v.tobytes() for v in views] == [DATA[o:o + n] for o, n in ranges]
        parts = ranges_of(0, SIZE, 256 * KIB)
        assert get_ranges_asked(fake) == [parts[0], parts[-1]]
        (arr,) = asyncio.run(c.get_many_async([pyfasts3.Read(PATH, part_size=512 * KIB)]))
        assert arr.tobytes() == DATA
        assert get_ranges_asked(fake) == ranges_of(0, SIZE, 512 * KIB)


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1, ValueError), (2**64, ValueError), (True, TypeError),
                                        (1.5, TypeError), ("1", TypeError)])
def test_a_part_size_that_is_not_a_positive_int_is_refused(fake, bad, error):
    with client_of(fake) as c, pytest.raises(error, match="part_size"):
        c.get(PATH, part_size=bad)
    assert fake.gets_log() == []


def test_a_numpy_integer_part_size_is_taken(fake):
    with client_of(fake) as c:
        assert c.get(PATH, part_size=np.int64(MIB)).tobytes() == DATA
    assert len(fake.gets_log()) == 2


def test_a_part_size_over_5_gib_is_an_invalid_argument_everywhere(fake):
    too_big = (5 << 30) + 1
    with client_of(fake) as c:
        with pytest.raises(pyfasts3.InvalidArgument, match="part_size"):
            c.get(PATH, part_size=too_big)
        with pytest.raises(pyfasts3.InvalidArgument, match="part_size"):
            c.get_ranges(PATH, [(0, 10)], part_size=too_big)
        with pytest.raises(pyfasts3.InvalidArgument, match="part_size"):
            asyncio.run(c.get_async(PATH, part_size=too_big))
        assert fake.gets_log() == []
        # In a batch, the item fails before any request of its own; the others are read.
        with pytest.raises(pyfasts3.InvalidArgument, match="part_size"):
            c.get_many([pyfasts3.Read(PATH, offset=SIZE - 1, part_size=too_big), pyfasts3.Read(PATH, offset=10)])
    asked = [r.range for r in fake.gets_log()]
    assert asked and not any(r.startswith(f"bytes={SIZE - 1}-") for r in asked), asked


def test_a_caller_of_the_3_0_layout_gets_the_clients_part_size(fake):
    """A struct_size that ends before part_size (a caller compiled against ABI 3.0) leaves
    the field unread, whatever the bytes after the caller's struct hold."""
    options = ffi.new("fasts3_read_options *")
    options.struct_size = ffi.offsetof("fasts3_read_options", "part_size")
    options.part_size = 256 * KIB  # beyond the declared size: must be ignored
    buf = np.empty(SIZE, np.uint8)
    written = ffi.new("uint64_t *")
    with client_of(fake) as c, c._handle.borrow() as handle:
        status = lib.fasts3_get_into_with_options(handle, b"bkt", 3, b"obj", 3, 0, ffi.from_buffer("uint8_t[]", buf),
                                                  SIZE, options, ffi.NULL, written, ffi.NULL)
    assert (status, written[0]) == (0, SIZE) and buf.tobytes() == DATA
    assert get_ranges_asked(fake) == ranges_of(0, SIZE, 64 * KIB)


def test_cp_reads_each_window_in_one_request(fake, tmp_path, monkeypatch):
    """pyfasts3.io.download_to_file: an object of two windows or more is read window by
    window, each window one ranged GET pinned to the object's ETag."""
    monkeypatch.setattr(pyfasts3.io, "DOWNLOAD_WINDOW", 128 * KIB)
    out = tmp_path / "obj"
    with client_of(fake) as c:
        assert pyfasts3.io.download_to_file(c, PATH, str(out)) == SIZE
    assert out.read_bytes() == DATA
    gets = fake.gets_log()
    assert sorted((r.range for r in gets), key=lambda r: int(r[6:].split("-")[0])) == ranges_of(0, SIZE, 128 * KIB)
    assert all(r.headers.get("if-match") for r in gets)
    assert os.listdir(tmp_path) == ["obj"]
