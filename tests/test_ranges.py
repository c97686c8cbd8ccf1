"""get_ranges: many byte ranges of one object, coalesced when close, pinned to one version,
packed into one buffer (the caller's or one allocation)."""
from __future__ import annotations

import numpy as np
import pytest

import pyfasts3
from fakes3 import FakeS3

KIB, MIB = 1024, 1024 * 1024


def payload(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def expected(data: bytes, offset: int, length: int) -> bytes:
    start = max(len(data) + offset, 0) if offset < 0 else min(offset, len(data))
    return data[start:start + length]


CASES = {
    "scattered": [(0, 100), (5 * MIB, 4 * KIB), (123_457, 999), (3 * MIB - 10, 20)],
    "footer": [(-8, 8), (-4 * KIB - 8, 4 * KIB)],
    "overlapping": [(1000, 5000), (3000, 5000), (1000, 5000)],
    "past-the-end": [(6 * MIB - 10, 100), (7 * MIB, 10), (0, 0)],
    "whole": [(0, 6 * MIB)],
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("max_gap", [0, MIB, 2**62], ids=["no-gap", "1MiB", "everything"])
def test_ranges_match_slices_of_the_object(client, put, case, max_gap):
    data = payload(6 * MIB, 1)
    path = put("obj", data)
    ranges = CASES[case]
    views = client.get_ranges(path, ranges, max_gap=max_gap)
    assert len(views) == len(ranges)
    for (offset, length), view in zip(ranges, views):
        assert view.dtype == np.uint8
        assert view.tobytes() == expected(data, offset, length), (offset, length)


def test_out_buffer_receives_ranges_packed_in_order(client, put):
    data = payload(300 * KIB, 2)
    path = put("obj", data)
    ranges = [(200 * KIB, 10), (5, 3), (-4, 4)]
    out = bytearray(b"\xee" * 40)
    views = client.get_ranges(path, ranges, out=out)
    packed = data[200 * KIB:200 * KIB + 10] + data[5:8] + data[-4:]
    assert bytes(out[:17]) == packed
    assert bytes(out[17:]) == b"\xee" * 23, "nothing is written past the ranges"
    assert [v.tobytes() for v in views] == [data[200 * KIB:200 * KIB + 10], data[5:8], data[-4:]]
    with pytest.raises(ValueError):
        client.get_ranges(path, ranges, out=bytearray(16))


def test_close_ranges_cost_one_request():
    """1,000 ranges of 64 bytes spread over 1 MiB, through a counting fake: coalesced with
    the default gap, they are one HEAD and one GET."""
    data = payload(MIB, 3)
    with FakeS3() as fake:
        fake.put("bkt/obj", data)
        with pyfasts3.Client(fake.url, region="us-east-1", access_key_id="k", secret_access_key="s") as c:
            rng = np.random.default_rng(4)
            ranges = [(int(o), 64) for o in rng.integers(0, MIB - 64, 1000)]
            views = c.get_ranges("bkt/obj", ranges)
            assert all(v.tobytes() == data[o:o + 64] for (o, _), v in zip(ranges, views))
            methods = [r.method for r in fake.requests]
            assert methods.count("HEAD") == 1 and methods.count("GET") == 1, methods
            fake.requests.clear()
            c.get_ranges("bkt/obj", [(0, 10), (MIB - 10, 10)], max_gap=0)
            gets = [r for r in fake.requests if r.method == "GET"]
            assert len(gets) == 2 and all("if-match" in r.headers for r in gets), [r.headers for r in gets]


def test_ranges_never_mix_versions(client, put, s3, bucket):
    data = payload(MIB, 5)
    path = put("obj", data)
    old = client.head(path).etag
    s3.put_object(Bucket=bucket, Key="obj", Body=payload(MIB, 6))
    with pytest.raises(pyfasts3.ObjectChanged):
        client.get_ranges(path, [(0, 10), (-10, 10)], if_match=old)


def test_missing_object_and_bad_ranges(client, put, bucket):
    with pytest.raises(pyfasts3.NoSuchKey):
        client.get_ranges(f"{bucket}/missing", [(0, 10)])
    path = put("obj", b"x" * 100)
    for bad in ([(0, -1)], [(0,)], "0-10", [(1.5, 2)], [(2**63, 1)]):
        with pytest.raises((TypeError, ValueError)):
            client.get_ranges(path, bad)
    assert client.get_ranges(path, []) == []
