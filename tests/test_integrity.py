"""Integrity under a misbehaving server (issue 8, "Keep it proven").

Every test points a pyfasts3.Client at tests/fakes3.py, a fake S3 that can ignore Range or
If-Match, omit ETag, Last-Modified or Content-Length, stream chunked, lie in Content-Length,
corrupt bytes, send wrong checksums, break connections or stall. The contract: a read returns
the object's exact bytes or raises a typed pyfasts3 error; never success with wrong bytes,
never a hang (calls run under faultproxy.run_guarded).

These tests use no S3 server lane (the fake is the server), so they run once.
"""
from __future__ import annotations

import re
import socket
import time
from typing import Callable, Tuple, Type, Union

import numpy as np
import pytest

import pyfasts3
from fakes3 import CHUNK, FakeS3, checksum_value, crc32c, first_requests, gets
from faultproxy import random_bytes, run_guarded

PART = 64 * 1024
MULTI = 1 << 20  # 16 parts of PART
SINGLE = 40_000  # fits in the first part
GUARD = 30.0  # hang guard for one call
PATH = "bkt/dir/obj"
SIZES = pytest.mark.parametrize("size", [MULTI, SINGLE], ids=["multi-part", "single-part"])
OPS = pytest.mark.parametrize("op", ["get_into", "get", "get_many"])

Errors = Union[Type[BaseException], Tuple[Type[BaseException], ...]]


@pytest.fixture
def fake():
    with FakeS3() as f:
        yield f


def make_client(fake: FakeS3, **kwargs) -> pyfasts3.Client:
    kwargs.setdefault("part_size", PART)
    return pyfasts3.Client(fake.url, region="us-east-1", access_key_id="k", secret_access_key="s", **kwargs)


def read(client: pyfasts3.Client, path: str, size: int, op: str, offset: int = 0) -> bytes:
    """The bytes [offset, size) of the object through one public operation."""
    if op == "get_into":
        buf = np.zeros(size - offset, np.uint8)
        n = client.get_into(buf, path, offset=offset)
        assert n == size - offset, f"get_into wrote {n} bytes, expected {size - offset}"
        return buf.tobytes()
    if op == "get_many":
        assert offset == 0
        (arr,) = client.get_many([path])
        return arr.tobytes()
    return client.get(path, offset=offset).tobytes()


def guarded(fn: Callable[[], bytes], timeout: float = GUARD):
    return run_guarded(fn, timeout)


def describe(value) -> str:
    if isinstance(value, (bytes, bytearray)):
        return f"{len(value)} bytes"
    return repr(value)


class _Done:
    """A finished call's outcome (the shape run_guarded returns)."""

    def __init__(self, value=None, error=None):
        self.value, self.error = value, error


def _value(out, i: int) -> _Done:
    return _Done(out.value[i])


def repeated_gets(client: pyfasts3.Client, path: str, n: int) -> list:
    """n client.get(path) on this one thread (so on the same kept-alive connections), each
    outcome kept: the bytes or the exception."""
    results = []
    for _ in range(n):
        try:
            results.append(_Done(client.get(path).tobytes()))
        except pyfasts3.S3Error as e:
            results.append(_Done(error=e.with_traceback(None)))
    return results


def assert_all_right(results: list, expected: bytes, what: str) -> None:
    for i, done in enumerate(results):
        assert_right_bytes(done, expected, f"{what} {i + 1} of {len(results)}")


def assert_right_bytes(out, expected: bytes, what: str = "read") -> None:
    assert out.error is None, f"{what} failed: {out.error!r}"
    if out.value != expected:
        first = next((i for i, (a, b) in enumerate(zip(out.value, expected)) if a != b), None)
        raise AssertionError(f"{what} returned WRONG BYTES as success ({describe(out.value)}, expected "
                             f"{len(expected)}; first difference at {first})")


def assert_typed_error(out, errors: Errors, what: str = "read") -> None:
    assert out.error is not None, f"{what} returned success ({describe(out.value)}) where it must raise {errors}"
    assert isinstance(out.error, errors), f"{what} raised {out.error!r}, expected {errors}"
    assert str(out.error), "the error has no message"


def assert_right_bytes_or(out, expected: bytes, errors: Errors, what: str = "read") -> None:
    if out.error is not None:
        assert_typed_error(out, errors, what)
    else:
        assert_right_bytes(out, expected, what)


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def assert_sane_ranges(fake: FakeS3, size: int) -> None:
    """No GET asked for zero bytes, an inverted range, or a range starting past the end."""
    for r in fake.gets_log():
        if r.range is None:
            continue
        m = _RANGE.match(r.range)
        assert m, f"malformed Range sent: {r.range!r}"
        first, last = m.groups()
        if first and last:
            assert int(first) <= int(last), f"an empty/inverted range was requested: {r.range!r} (request {r.number})"
        if first:
            assert int(first) < size, f"a range past the end was requested: {r.range!r} (size {size})"


# -- the fake itself ------------------------------------------------------------------------


@SIZES
@OPS
def test_fake_serves_exact_bytes(fake, size, op):
    """Baseline every fault test relies on: with no fault the reads are exact, in several
    requests on kept-alive connections."""
    data = random_bytes(size, 1)
    fake.put(PATH, data)
    with make_client(fake) as client:
        # One thread for both reads: pyfasts3 keeps its connections per thread.
        out = guarded(lambda: (read(client, PATH, size, op), read(client, PATH, size, op)))
        info = client.head(PATH)
    assert out.error is None, repr(out.error)
    assert_right_bytes(_value(out, 0), data)
    assert_right_bytes(_value(out, 1), data, "second read")
    assert info.size == size and info.etag and info.last_modified
    gets_ = fake.gets_log()
    assert len(gets_) >= (2 if size == SINGLE else 2 * (MULTI // PART))
    assert any(r.index_on_conn > 1 for r in fake.requests), "no connection was ever reused"
    assert_sane_ranges(fake, size)


def _raw_exchange(fake: FakeS3, request: bytes, timeout: float = 3.0) -> bytes:
    """Send one raw request; return every byte the fake sent until it closed (or went quiet
    for `timeout` s)."""
    with socket.create_connection(("127.0.0.1", fake.port), timeout=timeout) as sock:
        sock.sendall(request)
        out = b""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return out
                out += data
        except socket.timeout:
            return out


def _get(path: str, *headers: str) -> bytes:
    return ("GET /" + path + " HTTP/1.1\r\nHost: x\r\n" + "".join(h + "\r\n" for h in headers)
            + "Connection: close\r\n\r\n").encode()


def test_fake_puts_the_faults_on_the_wire(fake):
    """The fake's framing faults are what they claim to be, byte for byte."""
    data = bytes(range(256)) * 200  # 51,200 bytes: 4 chunks of CHUNK
    fake.put("b/k", data)

    fake.behave(chunked_no_terminator=True)
    wire = _raw_exchange(fake, _get("b/k", "Range: bytes=0-999"))
    head, body = wire.split(b"\r\n\r\n", 1)
    assert b"206 Partial Content" in head and b"Transfer-Encoding: chunked" in head
    assert b"Content-Length" not in head
    assert body == b"3e8\r\n" + data[:1000] + b"\r\n", "every byte, no 0-chunk"

    fake.behave(length_delta=-100, ignore_range=True)
    head, body = _raw_exchange(fake, _get("b/k", "Range: bytes=0-9")).split(b"\r\n\r\n", 1)
    assert b"HTTP/1.1 200 OK" in head and f"Content-Length: {len(data) - 100}".encode() in head
    assert body == data, "the whole body, past the announced length"

    fake.behave(length_delta=1000, chunked=False)
    head, body = _raw_exchange(fake, _get("b/k")).split(b"\r\n\r\n", 1)
    assert f"Content-Length: {len(data) + 1000}".encode() in head and body == data

    fake.behave(chunked=True, close_after_body_bytes=CHUNK + 5)
    head, body = _raw_exchange(fake, _get("b/k")).split(b"\r\n\r\n", 1)
    assert body == b"4000\r\n" + data[:CHUNK] + b"\r\n4000\r\n" + data[CHUNK:CHUNK + 5], "cut inside a chunk"

    fake.behave(omit_etag=True, omit_last_modified=True, flip_byte_at=3, checksum="sha256", checksum_unasked=True)
    head, body = _raw_exchange(fake, _get("b/k")).split(b"\r\n\r\n", 1)
    assert b"ETag" not in head and b"Last-Modified" not in head
    assert body[3] == data[3] ^ 0xFF and body[:3] + body[4:] == data[:3] + data[4:]
    assert checksum_value("sha256", data).encode() in head, "the checksum of the original bytes"
    assert b"x-amz-checksum-type: FULL_OBJECT" in head

    fake.behave(checksum="crc32c")
    head, _ = _raw_exchange(fake, _get("b/k", "x-amz-checksum-mode: ENABLED")).split(b"\r\n\r\n", 1)
    assert f"x-amz-checksum-crc32c: {checksum_value('crc32c', data)}".encode() in head
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value

    fake.behave(head_without_length=True)
    wire = _raw_exchange(fake, b"HEAD /b/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert wire.startswith(b"HTTP/1.1 200") and b"Content-Length" not in wire

    fake.behave(new_version_after_gets=1)
    fake.put("b/v", data)
    first = _raw_exchange(fake, _get("b/v", "Range: bytes=0-9"))
    second = _raw_exchange(fake, _get("b/v", "Range: bytes=0-9", 'If-Match: "x"'))
    assert b"206" in first.split(b"\r\n")[0] and b"412 Precondition Failed" in second
    old, new = fake.versions("b/v")
    assert len(old) == len(new) and all(a != b for a, b in zip(old, new))


# -- missing Content-Length, Range ignored ------------------------------------------------


@SIZES
@OPS
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_range_ignored_whole_object_200(fake, size, op, chunked):
    """The server ignores Range and answers 200 with the whole object, with or without a
    Content-Length: the engine reads to the end and counts."""
    data = random_bytes(size, 2)
    fake.put(PATH, data)
    fake.behave(ignore_range=True, chunked=chunked)
    with make_client(fake) as client:
        assert_right_bytes(guarded(lambda: read(client, PATH, size, op)), data)
        assert_right_bytes(guarded(lambda: read(client, PATH, size, op)), data, "second read")


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
@pytest.mark.parametrize("op", ["get_into", "get"])
@pytest.mark.parametrize("offset", [1, PART + 7, MULTI - 10])
def test_range_ignored_with_offset(fake, op, offset, chunked):
    """An offset read answered with the whole object: the bytes from the offset, not from 0."""
    data = random_bytes(MULTI, 3)
    fake.put(PATH, data)
    fake.behave(ignore_range=True, chunked=chunked)
    with make_client(fake) as client:
        out = guarded(lambda: read(client, PATH, MULTI, op, offset=offset))
    assert_right_bytes(out, data[offset:])


@SIZES
@OPS
def test_206_chunked_without_content_length(fake, size, op):
    data = random_bytes(size, 4)
    fake.put(PATH, data)
    fake.behave(chunked=True)
    with make_client(fake) as client:
        assert_right_bytes(guarded(lambda: read(client, PATH, size, op)), data)
    assert_sane_ranges(fake, size)


def test_head_without_content_length_is_protocol_error(fake):
    """A HEAD that says nothing about the size must not become size 0."""
    fake.put(PATH, random_bytes(1000, 5))
    fake.behave(head_without_length=True)
    with make_client(fake) as client:
        out = guarded(lambda: client.head(PATH))
    assert_typed_error(out, pyfasts3.ProtocolError, "head")


# -- the object changes between parts ------------------------------------------------------


@pytest.mark.parametrize("op", ["get_into", "get", "get_many"])
def test_version_switch_detected_by_if_match(fake, op):
    """Control: a server that honours If-Match answers 412 to the parts after the switch."""
    data = random_bytes(MULTI, 6)
    fake.put(PATH, data)
    fake.behave(new_version_after_gets=1)
    with make_client(fake, max_concurrency=2) as client:
        out = guarded(lambda: read(client, PATH, MULTI, op))
    assert_typed_error(out, pyfasts3.ObjectChanged)


@pytest.mark.parametrize("op", ["get_into", "get", "get_many"])
@pytest.mark.parametrize("omit_etag", [False, True], ids=["etag-changes", "no-etag-last-modified-changes"])
def test_version_switch_with_if_match_ignored(fake, op, omit_etag):
    """The server ignores If-Match and the object changes after the first part: the engine
    compares every part's ETag (Last-Modified where there is none) with the first one's."""
    data = random_bytes(MULTI, 7)
    fake.put(PATH, data)
    fake.behave(ignore_if_match=True, new_version_after_gets=1, omit_etag=omit_etag)
    with make_client(fake, max_concurrency=2) as client:
        out = guarded(lambda: read(client, PATH, MULTI, op))
    versions = fake.versions(PATH)
    assert len(versions) == 2, "the object was never switched: the test proves nothing"
    assert_typed_error(out, pyfasts3.ObjectChanged)


@pytest.mark.parametrize("op", ["get_into", "get", "get_many"])
@pytest.mark.parametrize("switch_after", [1, 3])
def test_version_switch_without_etag_or_last_modified_never_mixes(fake, op, switch_after):
    """With neither ETag nor Last-Modified a change cannot be detected: the engine then reads
    the window in one request, so the result is entirely one version."""
    data = random_bytes(MULTI, 8)
    fake.put(PATH, data)
    fake.behave(ignore_if_match=True, new_version_after_gets=switch_after, omit_etag=True,
                omit_last_modified=True)
    with make_client(fake, max_concurrency=2) as client:
        out = guarded(lambda: read(client, PATH, MULTI, op))
    assert out.error is None, f"read failed: {out.error!r}"
    versions = fake.versions(PATH)
    assert out.value in versions, (
        f"the result is a MIX of versions: {sum(a != b for a, b in zip(out.value, data))} bytes differ from "
        f"the first version ({len(versions)} versions served)")


# -- Content-Length lies -------------------------------------------------------------------


@SIZES
@OPS
def test_content_length_longer_than_body_then_close(fake, size, op):
    """Content-Length promises 1000 bytes more than are sent, then the connection closes
    (the first two GETs): resumed -> right bytes, or NetworkError."""
    data = random_bytes(size, 9)
    fake.put(PATH, data)
    fake.behave_when(gets(1, 2), length_delta=1000)
    with make_client(fake) as client:
        out = guarded(lambda: read(client, PATH, size, op))
    assert_right_bytes_or(out, data, pyfasts3.NetworkError)
    assert_sane_ranges(fake, size)


@SIZES
@OPS
@pytest.mark.parametrize("delay", [0.0, 0.2], ids=["extra-at-once", "extra-late"])
def test_content_length_shorter_than_body(fake, size, op, delay):
    """Content-Length announces 100 bytes fewer than the body sent (the extra bytes stay on
    the connection, sent with the body or once the client reused the connection): the part
    is not full, the rest is fetched again; the leftover bytes never poison later reads on
    the same client."""
    data = random_bytes(size, 10)
    small = random_bytes(3000, 11)
    fake.put(PATH, data)
    fake.put("bkt/small", small)
    fake.behave_when(gets(1, 2), length_delta=-100, extra_bytes_delay=delay)
    with make_client(fake, max_concurrency=1) as client:
        # One thread: the later GETs go out on the connections the faulty reads left.
        out = guarded(lambda: (read(client, PATH, size, op), repeated_gets(client, "bkt/small", 20)))
    assert out.error is None, f"read failed: {out.error!r}"
    assert_right_bytes(_value(out, 0), data)
    assert_all_right(out.value[1], small, "GET after the lie")
    assert_sane_ranges(fake, size)


# -- garbage on a kept-alive connection ----------------------------------------------------


@pytest.mark.parametrize("garbage", [b"garbage\r\n\r\n", b"\x00\x01\xff not http at all"], ids=["text", "binary"])
@pytest.mark.parametrize("delay", [0.0, 0.2], ids=["at-once", "late"])
def test_garbage_after_body_on_keep_alive(fake, garbage, delay):
    """Every response is followed by garbage on its connection (with the body, or once the
    client sent its next request on it): a request sent on such a connection fails before
    any real response byte, and the engine retries it on a fresh connection. The next 20
    GETs all succeed with the right bytes."""
    data = random_bytes(3000, 12)
    fake.put(PATH, data)
    fake.behave(garbage_after_body=garbage, extra_bytes_delay=delay)
    with make_client(fake, max_concurrency=1) as client:
        out = guarded(lambda: repeated_gets(client, PATH, 21))
    assert out.error is None, repr(out.error)
    assert_all_right(out.value, data, "GET")
    assert fake.connections > 1, "the garbage never broke a connection: the test proves nothing"


@pytest.mark.parametrize("delay", [0.0, 0.2], ids=["at-once", "late"])
def test_stale_response_left_on_a_connection_is_never_returned(fake, delay):
    """After every response the server leaves a complete, well-formed but stale response
    (200, 3 bytes, no Content-Range) on the connection, so a request sent on it reads that
    stale answer as its own: indistinguishable by itself from a server that ignores Range.
    Whatever happens, no GET may return those 3 bytes as the 3,000-byte object: every
    result is the object's bytes or a typed error."""
    data = random_bytes(3000, 14)
    fake.put(PATH, data)
    fake.behave(garbage_after_body=b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad", extra_bytes_delay=delay)
    with make_client(fake, max_concurrency=1) as client:
        # One thread: its GETs reuse the connections the stale responses were left on.
        out = guarded(lambda: repeated_gets(client, PATH, 21))
    assert out.error is None, repr(out.error)
    results = out.value
    for i, out in enumerate(results):
        if out.error is None:
            assert out.value == data, f"GET {i + 1} returned WRONG BYTES as success ({len(out.value)} bytes)"
        else:
            assert isinstance(out.error, pyfasts3.S3Error), repr(out.error)
    assert any(out.error is None for out in results), [r.error for r in results]


# -- chunked 206 without its terminator ---------------------------------------------------


@SIZES
@OPS
def test_chunked_206_without_terminator(fake, size, op):
    """Every byte of the part arrives, then the connection closes before the final 0-chunk:
    the part is complete (its slice is full), and no request for zero bytes follows."""
    data = random_bytes(size, 13)
    fake.put(PATH, data)
    fake.behave(chunked_no_terminator=True)
    with make_client(fake) as client:
        out = guarded(lambda: read(client, PATH, size, op))
    assert_sane_ranges(fake, size)
    assert_right_bytes(out, data)


@pytest.mark.parametrize("op", ["get_into", "get"])
@pytest.mark.parametrize("offset", [1, PART, MULTI - 1])
def test_chunked_206_without_terminator_at_offset(fake, op, offset):
    data = random_bytes(MULTI, 131)
    fake.put(PATH, data)
    fake.behave(chunked_no_terminator=True)
    with make_client(fake) as client:
        out = guarded(lambda: read(client, PATH, MULTI, op, offset=offset))
    assert_sane_ranges(fake, MULTI)
    assert_right_bytes(out, data[offset:])


# -- checksums -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [None, "when_available", "required", "off"], ids=["default", "when_available",
                                                                                    "required", "off"])
@SIZES
def test_checksum_mode_header(fake, mode, size):
    """Every GET from byte 0 asks for checksums (x-amz-checksum-mode: ENABLED) unless
    checksum="off"; later parts never do (a full-object checksum cannot cover them, and asking
    costs the server a lookup: versitygw serves about 10% fewer small GETs with it)."""
    data = random_bytes(size, 14)
    fake.put(PATH, data)
    fake.behave(checksum="crc32", checksum_on_head=True)  # so that "required" can succeed
    kwargs = {} if mode is None else {"checksum": mode}
    out = guarded(lambda: _read_with(fake, kwargs, size))
    assert_right_bytes(out, data)
    gets = fake.gets_log()
    assert any(_range_start(r) == 0 for r in gets)
    for r in gets:
        sent = r.headers.get("x-amz-checksum-mode")
        if mode == "off" or _range_start(r) > 0:
            assert sent is None, f"checksum={mode} sent x-amz-checksum-mode: {sent} on {r.headers}"
        else:
            assert sent == "ENABLED", f"a GET went out without x-amz-checksum-mode: ENABLED: {r.headers}"


def _range_start(request) -> int:
    """The first byte a logged GET asked for (0 without a Range header)."""
    value = request.headers.get("range")
    return int(value.split("=", 1)[1].split("-", 1)[0]) if value else 0


def _read_with(fake: FakeS3, kwargs: dict, size: int, op: str = "get_into") -> bytes:
    with make_client(fake, **kwargs) as client:
        return read(client, PATH, size, op)


def _whole_object_cases():
    """(size, ignore_range): reads answered by one response carrying the whole object."""
    return pytest.mark.parametrize("size, ignore_range", [(SINGLE, False), (MULTI, True)],
                                   ids=["single-part", "multi-part-200"])


@_whole_object_cases()
@pytest.mark.parametrize("algorithm", ["crc32", "crc32c", "sha256"])
@OPS
def test_wrong_checksum_is_mismatch(fake, size, ignore_range, algorithm, op):
    data = random_bytes(size, 15)
    fake.put(PATH, data)
    fake.behave(ignore_range=ignore_range, checksum=algorithm, checksum_wrong=True)
    with make_client(fake) as client:
        out = guarded(lambda: read(client, PATH, size, op))
    assert_typed_error(out, pyfasts3.ChecksumMismatch)


@_whole_object_cases()
@OPS
def test_corrupt_body_with_true_checksum_is_mismatch(fake, size, ignore_range, op):
    """One byte flipped in transit; the checksum is the original object's."""
    data = random_bytes(size, 16)
    fake.put(PATH, data)
    fake.behave(ignore_range=ignore_range, checksum="crc32", flip_byte_at=size // 2)
    with make_client(fake) as client:
        out = guarded(lambda: read(client, PATH, size, op))
    assert_typed_error(out, pyfasts3.ChecksumMismatch)


@_whole_object_cases()
@pytest.mark.parametrize("algorithm", ["crc32", "crc32c", "sha256"])
@pytest.mark.parametrize("mode", ["when_available", "required"])
def test_right_checksum_succeeds(fake, size, ignore_range, algorithm, mode):
    data = random_bytes(size, 17)
    fake.put(PATH, data)
    fake.behave(ignore_range=ignore_range, checksum=algorithm)
    assert_right_bytes(guarded(lambda: _read_with(fake, {"checksum": mode}, size)), data)


@_whole_object_cases()
def test_checksum_off_does_not_verify(fake, size, ignore_range):
    """checksum="off": nothing asked for, nothing verified (the fake sends a wrong checksum
    anyway)."""
    data = random_bytes(size, 18)
    fake.put(PATH, data)
    fake.behave(ignore_range=ignore_range, checksum="crc32", checksum_wrong=True, checksum_unasked=True)
    assert_right_bytes(guarded(lambda: _read_with(fake, {"checksum": "off"}, size)), data)
    assert all("x-amz-checksum-mode" not in r.headers for r in fake.requests)


@SIZES
@pytest.mark.parametrize("op", ["get_into", "get", "get_many"])
def test_required_without_any_checksum_is_unavailable(fake, size, op):
    data = random_bytes(size, 19)
    fake.put(PATH, data)
    with make_client(fake, checksum="required") as client:
        out = guarded(lambda: read(client, PATH, size, op))
    assert_typed_error(out, pyfasts3.ChecksumUnavailable)


@pytest.mark.parametrize("op", ["get_into", "get"])
def test_required_on_a_partial_read_is_unavailable(fake, op):
    """A byte range cannot be checked against a full-object checksum."""
    data = random_bytes(MULTI, 191)
    fake.put(PATH, data)
    fake.behave(checksum="crc32", checksum_on_head=True)
    with make_client(fake, checksum="required") as client:
        if op == "get":
            out = guarded(lambda: client.get(PATH, offset=10, length=100).tobytes())
        else:
            out = guarded(lambda: read(client, PATH, MULTI, op, offset=PART + 1))
    assert_typed_error(out, pyfasts3.ChecksumUnavailable)


@pytest.mark.parametrize("algorithm", ["crc32", "crc32c", "sha256"])
@pytest.mark.parametrize("op", ["get_into", "get"])
def test_required_multipart_verified_against_head(fake, algorithm, op):
    """As AWS does for ranged GETs, the parts carry no checksum; the full-object checksum
    comes with HEAD (and whole-object GETs). "required" verifies the assembled object."""
    data = random_bytes(MULTI, 20)
    fake.put(PATH, data)
    fake.behave(checksum=algorithm, checksum_on_head=True)
    with make_client(fake, checksum="required") as client:
        out = guarded(lambda: read(client, PATH, MULTI, op))
    assert_right_bytes(out, data)


@pytest.mark.parametrize("part", [1, 5])
@pytest.mark.parametrize("op", ["get_into", "get"])
def test_required_multipart_corrupt_part_is_mismatch(fake, part, op):
    data = random_bytes(MULTI, 21)
    fake.put(PATH, data)
    fake.behave(checksum="crc32c", checksum_on_head=True)
    fake.behave_when(gets(part), flip_byte_at=100)
    with make_client(fake, checksum="required") as client:
        out = guarded(lambda: read(client, PATH, MULTI, op))
    assert fake.gets_log(), "nothing was read"
    assert_typed_error(out, pyfasts3.ChecksumMismatch)


@SIZES
@pytest.mark.parametrize("mode, error", [("when_available", None), (None, None),
                                         ("required", pyfasts3.ChecksumUnavailable)],
                         ids=["when_available", "default", "required"])
def test_composite_checksum(fake, size, mode, error):
    """A composite checksum ("<b64>-N", multipart uploads) cannot be verified from the
    bytes: read unverified, unless "required"."""
    data = random_bytes(size, 22)
    fake.put(PATH, data)
    fake.behave(checksum="crc32", checksum_composite_parts=4, checksum_on_head=True, checksum_unasked=True)
    kwargs = {} if mode is None else {"checksum": mode}
    out = guarded(lambda: _read_with(fake, kwargs, size))
    if error is None:
        assert_right_bytes(out, data)
    else:
        assert_typed_error(out, error)


# -- broken connections, stalls, throttling -----------------------------------------------


@SIZES
@OPS
def test_close_mid_chunk_is_resumed(fake, size, op):
    data = random_bytes(size, 23)
    fake.put(PATH, data)
    fake.behave_when(gets(1, 2), chunked=True, close_after_body_bytes=CHUNK + 100)
    with make_client(fake) as client:
        out = guarded(lambda: read(client, PATH, size, op))
    assert_right_bytes(out, data)
    assert len(fake.gets_log()) >= 3, "the faults were not all injected: the test proves nothing"
    assert_sane_ranges(fake, size)


@SIZES
@OPS
@pytest.mark.parametrize("at", [0, 5000], ids=["before-body", "mid-body"])
def test_reset_is_resumed(fake, size, op, at):
    data = random_bytes(size, 24)
    fake.put(PATH, data)
    fake.behave_when(gets(1, 2), reset_after_body_bytes=at)
    with make_client(fake) as client:
        out = guarded(lambda: read(client, PATH, size, op))
    assert_right_bytes(out, data)
    assert len(fake.gets_log()) >= 3, "the faults were not all injected: the test proves nothing"
    assert_sane_ranges(fake, size)


STALL_GUARD = 45.0


@pytest.mark.parametrize("op", ["get"])
def test_stall_before_headers_is_timeout_not_hang(fake, op):
    """Every GET stalls before its headers (connection open, nothing sent): Timeout or
    NetworkError within the timeouts (read_timeout=2), never a hang. (A body that stalls
    mid-way on every request is test_faults.py's test_stalled_connection_does_not_hang_forever.)"""
    fake.put(PATH, random_bytes(SINGLE, 25))
    fake.behave(stall_before_headers=True)
    with make_client(fake, read_timeout=2.0, connect_timeout=2.0) as client:
        out = guarded(lambda: read(client, PATH, SINGLE, op), STALL_GUARD)
    assert_typed_error(out, (pyfasts3.Timeout, pyfasts3.NetworkError))


@pytest.mark.parametrize("size", [MULTI], ids=["multi-part"])
def test_stall_mid_body_once(fake, size):
    """The first GET stalls after 1000 body bytes: the stall is detected and the read
    resumed (right bytes), or it fails with Timeout/NetworkError; never a hang."""
    data = random_bytes(size, 251)
    fake.put(PATH, data)
    fake.behave_when(gets(1), stall_after_body_bytes=1000)
    with make_client(fake, read_timeout=2.0, connect_timeout=2.0) as client:
        out = guarded(lambda: read(client, PATH, size, "get_into"), STALL_GUARD)
    assert_right_bytes_or(out, data, (pyfasts3.Timeout, pyfasts3.NetworkError))
    assert_sane_ranges(fake, size)


def test_body_stalling_on_every_get_fails_within_the_read_timeout(fake):
    """Every GET's body stalls after 1000 bytes. A stalled body counts as stalled after
    read_timeout without a byte (at most 5 s, the SDK's default), and each of the part's 6
    attempts pays that once: with read_timeout=1 the read fails in about 6 s plus backoff,
    not 6 x 5 s."""
    fake.put(PATH, random_bytes(SINGLE, 252))
    fake.behave(stall_after_body_bytes=1000)
    with make_client(fake, read_timeout=1.0, connect_timeout=2.0) as client:
        began = time.monotonic()
        out = guarded(lambda: read(client, PATH, SINGLE, "get_into"), STALL_GUARD)
        took = time.monotonic() - began
    assert_typed_error(out, (pyfasts3.Timeout, pyfasts3.NetworkError))
    assert took < 20, f"a body stalling on every attempt took {took:.1f} s to fail with read_timeout=1"


@pytest.mark.parametrize("status, code, op", [(503, "SlowDown", "get_into"), (503, "SlowDown", "get"),
                                              (503, "SlowDown", "get_many"), (500, "InternalError", "get_into")])
@SIZES
def test_server_errors_for_the_first_two_requests_are_retried(fake, size, op, status, code):
    data = random_bytes(size, 26)
    fake.put(PATH, data)
    fake.behave_when(first_requests(2), error=(status, code))
    with make_client(fake) as client:
        out = guarded(lambda: read(client, PATH, size, op))
    assert_right_bytes(out, data)
    assert len(fake.requests) >= 3 and fake.requests[0].method == "GET"


@pytest.mark.parametrize("op", ["get_into", "get", "get_many"])
def test_slowdown_forever_is_throttled(fake, op):
    fake.put(PATH, random_bytes(SINGLE, 27))
    fake.behave(error=(503, "SlowDown"))
    with make_client(fake) as client:
        out = guarded(lambda: read(client, PATH, SINGLE, op))
    assert_typed_error(out, pyfasts3.Throttled)
    assert out.error.code == "SlowDown" and out.error.status == 503, repr(out.error)


# -- get_many with several objects under a framing fault ----------------------------------


@pytest.mark.parametrize("fault", [dict(ignore_range=True, chunked=True), dict(chunked_no_terminator=True),
                                   dict(ignore_range=True)], ids=["200-chunked", "206-no-terminator", "200"])
def test_get_many_mixed_sizes(fake, fault):
    objects = {f"bkt/o{i}": random_bytes(n, 30 + i) for i, n in enumerate([0, 1, 999, PART, PART + 1, 300_000])}
    for path, data in objects.items():
        fake.put(path, data)
    fake.behave(**fault)
    with make_client(fake) as client:
        out = guarded(lambda: [a.tobytes() for a in client.get_many(list(objects))])
    assert out.error is None, f"get_many failed: {out.error!r}"
    for (path, data), got in zip(objects.items(), out.value):
        assert got == data, f"{path}: WRONG BYTES ({len(got)} bytes, expected {len(data)})"
