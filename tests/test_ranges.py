"""get_ranges: many byte ranges of one object, coalesced when close, pinned to one version,
packed into one buffer (the caller's or one allocation)."""
from __future__ import annotations

import numpy as np
import pytest

import pyfasts3
from fakes3 import FakeS3, gets
from faultproxy import proxied_client, run_guarded

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
    # Inside one outer range: a nested one, a duplicate, one ending past it, one inside that
    # (so its shared bytes come from a range that shares some itself), and one touching.
    "nested": [(100 * KIB, 300 * KIB), (150 * KIB, 10), (100 * KIB, 300 * KIB), (350 * KIB, 200 * KIB),
               (420 * KIB, 100 * KIB), (550 * KIB, 64 * KIB), (0, 1)],
    "touching": [(0, 70 * KIB), (70 * KIB, 70 * KIB), (140 * KIB, 1)],
    "past-the-end": [(6 * MIB - 10, 100), (7 * MIB, 10), (0, 0)],
    # Ranges running past the end next to ones inside it (coalesced unless max_gap is 0).
    "past-the-end-coalesced": [(6 * MIB - 100 * KIB, 50 * KIB), (6 * MIB - 30, 100), (-200 * KIB, 300 * KIB),
                               (6 * MIB + 5, 10)],
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


def test_out_offsets_place_each_range_in_out(client, put):
    """The safetensors pattern: ranges land at the given offsets of one buffer, in any order
    and with gaps between them (left as they were); each view is the range's place in out."""
    data = payload(300 * KIB, 5)
    path = put("obj", data)
    ranges = [(200 * KIB, 10), (5, 3), (-4, 4), (7, 0), (299 * KIB, 2 * KIB)]  # the last ends past the object
    places = [30, 0, 12, 50, 50]
    out = np.full(60 + 2 * KIB, 0xEE, np.uint8)
    views = client.get_ranges(path, ranges, out=out, out_offsets=places)
    want = {30: data[200 * KIB:200 * KIB + 10], 0: data[5:8], 12: data[-4:], 50: data[299 * KIB:]}
    expected = bytearray(b"\xee" * out.nbytes)
    for at, piece in want.items():
        expected[at:at + len(piece)] = piece
    assert out.tobytes() == bytes(expected)
    assert [len(v) for v in views] == [10, 3, 4, 0, KIB]
    assert [v.ctypes.data - out.ctypes.data for v in views if len(v)] == [30, 0, 12, 50]
    assert views[0].tobytes() == data[200 * KIB:200 * KIB + 10]


def test_out_offsets_that_overlap_or_fall_outside_out_are_refused(client, put):
    path = put("obj", payload(KIB, 6))
    out = bytearray(b"\xee" * 40)
    for places, message in [([0, 5], "overlap"), ([0, 35], "past the destination"), ([0], "out_offsets")]:
        with pytest.raises(ValueError, match=message):
            client.get_ranges(path, [(0, 10), (100, 10)], out=out, out_offsets=places)
    assert out == bytearray(b"\xee" * 40), "nothing was written"
    with pytest.raises(ValueError, match="give out"):
        client.get_ranges(path, [(0, 10)], out_offsets=[0])
    # A buffer the bytes could not land in directly (a strided view, read-only memory) is
    # refused, never filled through a copy.
    strided = np.zeros((4, 64), np.uint8)[:, :32]
    with pytest.raises(ValueError, match="contiguous"):
        client.get_ranges(path, [(0, 10)], out=strided, out_offsets=[0])
    with pytest.raises(TypeError, match="read-only"):
        client.get_ranges(path, [(0, 10)], out=bytes(40), out_offsets=[0])


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


def test_past_the_end_inside_a_coalesced_span_leaves_the_rest_of_its_slice(client, put):
    data = payload(200 * KIB, 8)
    path = put("obj", data)
    size = len(data)
    ranges = [(size - 1000, 500), (size - 300, 1000), (size - 700, 100)]
    out = bytearray(b"\xee" * 1700)
    views = client.get_ranges(path, ranges, out=out, max_gap=MIB)
    assert [len(v) for v in views] == [500, 300, 100]
    assert bytes(out[:500]) == data[-1000:-500]
    assert bytes(out[500:800]) == data[-300:]
    assert bytes(out[800:1500]) == b"\xee" * 700, "the part of a range past the end is left as it was"
    assert bytes(out[1500:1600]) == data[-700:-600]
    assert bytes(out[1600:]) == b"\xee" * 100


@pytest.mark.plain_http_only  # the fault proxy reads plain HTTP
def test_a_coalesced_span_cut_short_by_the_network_is_a_typed_error(server, proxy, put):
    """Every connection breaks after 32 KiB: the span's body is resumed a few times, then the
    call fails with NetworkError; it never returns what it got as if complete."""
    data = payload(2 * MIB, 9)
    path = put("obj", data)
    proxy.cut(after=32 * KIB, connections=None)
    ranges = [(0, 100 * KIB), (200 * KIB, 100 * KIB), (150 * KIB, 100 * KIB), (MIB, 512 * KIB)]
    with proxied_client(server, proxy) as c:
        out = run_guarded(lambda: c.get_ranges(path, ranges))
    assert isinstance(out.error, pyfasts3.NetworkError), out
    assert proxy.cuts > 1, "the body was not cut short: the test proves nothing"


# -- against tests/fakes3.py: exact request counts, and a server that misbehaves ------------

PATH = "bkt/obj"
OBJECT_SIZE = 600 * KIB
# One span with the default gap: 10 KiB..430 KiB, with an overlapping range and a nested one.
SPAN = [(10 * KIB, 20 * KIB), (100 * KIB, 50 * KIB), (120 * KIB, 10 * KIB), (140 * KIB, 30 * KIB),
        (400 * KIB, 30 * KIB)]
PART_SIZES = pytest.mark.parametrize("part_size", [64 * KIB, None], ids=["in-parts", "one-request"])


def fake_client(fake: FakeS3, **kwargs) -> pyfasts3.Client:
    return pyfasts3.Client(fake.url, region="us-east-1", access_key_id="k", secret_access_key="s", **kwargs)


def slices(data: bytes, ranges) -> list:
    return [expected(data, o, n) for o, n in ranges]


@pytest.mark.parametrize("beyond", [0, 1], ids=["exactly-max_gap", "one-byte-more"])
def test_a_gap_of_exactly_max_gap_is_coalesced(beyond):
    data = payload(MIB, 7)
    gap = 100 * KIB
    ranges = [(1000, 500), (1500 + gap + beyond, 700)]
    with FakeS3() as fake:
        fake.put(PATH, data)
        with fake_client(fake) as c:
            views = c.get_ranges(PATH, ranges, max_gap=gap)
        assert [v.tobytes() for v in views] == slices(data, ranges)
        asked = sorted(r.range for r in fake.gets_log())
    if beyond:
        assert asked == sorted(["bytes=1000-1499", f"bytes={1501 + gap}-{1501 + gap + 699}"]), asked
    else:
        assert asked == [f"bytes=1000-{1500 + gap + 699}"], asked


@PART_SIZES
def test_a_span_cut_short_once_is_resumed_not_restarted(part_size):
    data = payload(OBJECT_SIZE, 10)
    with FakeS3() as fake:
        fake.put(PATH, data)
        fake.behave_when(gets(1), close_after_body_bytes=50 * KIB)
        with fake_client(fake, part_size=part_size) as c:
            out = run_guarded(lambda: c.get_ranges(PATH, SPAN))
        assert out.error is None, out
        assert [v.tobytes() for v in out.value] == slices(data, SPAN)
        asked = [r.range for r in fake.gets_log()]
    assert any(r.startswith(f"bytes={60 * KIB}-") for r in asked), f"not resumed after the cut: {asked}"


# (behaviour of every GET, what the call must do: "ok" or the error it must raise, or a tuple
# of errors it may raise instead of returning the right bytes)
MISBEHAVIOURS = {
    "body-closed-early": (dict(close_after_body_bytes=4 * KIB), pyfasts3.NetworkError),
    "body-reset-early": (dict(reset_after_body_bytes=4 * KIB), pyfasts3.NetworkError),
    "content-length-short": (dict(length_delta=-1000), (pyfasts3.NetworkError, pyfasts3.ProtocolError)),
    "content-length-long": (dict(length_delta=+1000), (pyfasts3.NetworkError, pyfasts3.ProtocolError)),
    "chunked-without-terminator": (dict(chunked_no_terminator=True), (pyfasts3.NetworkError,)),
    "range-ignored": (dict(ignore_range=True), "ok"),
    "range-ignored-chunked": (dict(ignore_range=True, chunked=True), "ok"),
    "replaced-mid-read": (dict(new_version_after_gets=1, ignore_if_match=True), (pyfasts3.ObjectChanged,)),
}


@PART_SIZES
@pytest.mark.parametrize("case", list(MISBEHAVIOURS))
def test_a_misbehaving_server_gives_a_typed_error_never_wrong_bytes(case, part_size):
    behaviour, outcome = MISBEHAVIOURS[case]
    data = payload(OBJECT_SIZE, 11)
    with FakeS3() as fake:
        fake.put(PATH, data)
        fake.behave(**behaviour)
        with fake_client(fake, part_size=part_size) as c:
            out = run_guarded(lambda: c.get_ranges(PATH, SPAN))
    if isinstance(outcome, type):  # this error, always
        assert isinstance(out.error, outcome), f"{case}: {out!r} where it must raise {outcome.__name__}"
    elif out.error is not None and outcome != "ok":  # one of these errors, or the right bytes
        assert isinstance(out.error, outcome), f"{case}: {out.error!r}, expected one of {outcome}"
    else:
        assert out.error is None, f"{case}: {out.error!r}"
        assert [v.tobytes() for v in out.value] == slices(data, SPAN), f"{case}: WRONG BYTES returned as success"
    assert out.error is None or str(out.error), "an error without a message"


# A span covering the whole object: its checksum can be verified, gap bytes included.
WHOLE_SPAN = [(0, 100), (-100, 100), (1000, 50), (500, 1000)]


@PART_SIZES
@pytest.mark.parametrize("fault", [None, "checksum_wrong", "flip_in_a_gap"])
def test_a_span_covering_the_whole_object_is_checksum_verified(part_size, fault):
    """In parts (64 KiB) the GETs carry no checksum: mode "required" fetches it with a HEAD and
    verifies the span's bytes as they stream in. In one request the GET's own checksum is used.
    A byte flipped in a gap between ranges (bytes the call drops) still fails the read."""
    data = payload(300 * KIB, 12)
    with FakeS3() as fake:
        fake.put(PATH, data)
        switches = dict(checksum="crc32c", checksum_on_head=True)
        if fault == "checksum_wrong":
            switches["checksum_wrong"] = True
        elif fault == "flip_in_a_gap":
            # Byte 2000 of every body (they start at 0 or at multiples of 64 KiB): a gap byte.
            switches["flip_byte_at"] = 2000
        fake.behave(**switches)
        with fake_client(fake, part_size=part_size, checksum="required") as c:
            out = run_guarded(lambda: c.get_ranges(PATH, WHOLE_SPAN, max_gap=2**62))
        heads = sum(r.method == "HEAD" for r in fake.requests)
    if fault is None:
        assert out.error is None, out
        assert [v.tobytes() for v in out.value] == slices(data, WHOLE_SPAN)
    else:
        assert isinstance(out.error, pyfasts3.ChecksumMismatch), out
    # The HEAD of get_ranges, plus the checksum's when the GETs carry none.
    assert heads == (2 if part_size else 1), heads


def test_required_checksum_of_a_span_short_of_the_whole_object_is_unavailable():
    data = payload(300 * KIB, 13)
    with FakeS3() as fake:
        fake.put(PATH, data)
        fake.behave(checksum="crc32c", checksum_on_head=True)
        with fake_client(fake, checksum="required") as c:
            out = run_guarded(lambda: c.get_ranges(PATH, [(0, 100), (1000, 50)]))
    assert isinstance(out.error, pyfasts3.ChecksumUnavailable), out
