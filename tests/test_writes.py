"""The write path: put_from / put (single PUT and parallel multipart from caller memory),
delete, delete_many and server-side copy, on every server lane.

Uploads are checked byte for byte by reading them back; failures and cancellation are made by
tests/faultproxy.py (a rejected or held UploadPart), and every such test lists the bucket's
multipart uploads afterwards: none may be left behind. The TLS lane runs everything but the
proxy-based tests (uploads over HTTPS: lent part bodies go through rustls).
"""
from __future__ import annotations

import base64
import struct
import threading
import time

import numpy as np
import pytest

import pyfasts3
from conftest import make_client
from faultproxy import FaultProxy, proxied_client, random_bytes, run_guarded, start_guarded
from fakes3 import FakeS3, crc32c
from pyfasts3._lowlevel import ffi, lib

MIB = 1 << 20
PART = 5 * MIB  # S3's smallest part
PROMPT = 10.0  # hang guard for "returns promptly after cancel"


def _uploads_left(s3, bucket):
    return s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def _read_back(client, path) -> bytes:
    return client.get(path).tobytes()


@pytest.fixture
def writer(server):
    with make_client(server, max_concurrency=4) as c:
        yield c


# -- put_from / put: round trips ---------------------------------------------------------

@pytest.mark.parametrize("size, parts", [
    (0, 0), (1, 0),
    (300_000, 0),                       # single PUT, body lent (above the copy limit)
    (PART, 0),                          # exactly the threshold: one PUT
    (PART + 1, 2),                      # threshold + 1: a part of 5 MiB and one of 1 byte
    (3 * PART, 3),                      # exactly 3 parts
    (3 * PART + 12_345, 4),
])
def test_round_trip_around_threshold_and_part_boundaries(writer, bucket, size, parts):
    data = random_bytes(size, seed=size)
    path = f"{bucket}/obj-{size}"
    sent = writer.put_from(np.frombuffer(data, dtype=np.uint8), path, multipart_threshold=PART, part_size=PART)
    assert sent == parts
    assert _read_back(writer, path) == data
    assert writer.head(path).size == size


def test_default_threshold_is_16_mib_and_parts_8_mib(writer, bucket, s3):
    data = random_bytes(16 * MIB + 1, seed=7)
    assert writer.put_from(data[: 16 * MIB], f"{bucket}/at") == 0
    assert writer.put_from(data, f"{bucket}/above") == 3  # 8 + 8 + 1 byte
    assert _read_back(writer, f"{bucket}/above") == data
    assert _uploads_left(s3, bucket) == []


def test_put_accepts_any_bytes_like(writer, bucket):
    floats = np.arange(1000, dtype=np.float64)
    writer.put(floats, f"{bucket}/floats")
    assert _read_back(writer, f"{bucket}/floats") == floats.tobytes()
    writer.put(b"bytes", f"{bucket}/b")
    writer.put(bytearray(b"bytearray"), f"{bucket}/ba")
    writer.put(memoryview(b"view"), f"s3://{bucket}/mv")
    assert [_read_back(writer, f"{bucket}/{k}") for k in ("b", "ba", "mv")] == [b"bytes", b"bytearray", b"view"]
    with pytest.raises(TypeError, match="not str"):
        writer.put("text", f"{bucket}/s")
    with pytest.raises(ValueError, match="C-contiguous"):
        writer.put(np.arange(10, dtype=np.uint8)[::2], f"{bucket}/strided")


def test_put_refuses_bad_options_before_sending(writer, bucket):
    with pytest.raises(pyfasts3.InvalidArgument, match="part_size"):
        writer.put_from(b"x" * 100, f"{bucket}/k", part_size=MIB)
    with pytest.raises(pyfasts3.InvalidArgument, match="metadata name"):
        writer.put(b"x", f"{bucket}/k", metadata={"bad name": "v"})
    with pytest.raises(pyfasts3.InvalidArgument, match="printable ASCII"):
        writer.put(b"x", f"{bucket}/k", metadata={"name": "line\nbreak"})
    with pytest.raises(pyfasts3.NoSuchBucket):
        writer.put(b"x", f"{bucket}-missing/k")


@pytest.mark.parametrize("size", [10, 2 * PART + 1])
def test_content_type_and_metadata_are_stored(writer, bucket, s3, size):
    path = f"{bucket}/typed"
    writer.put_from(random_bytes(size, 1), path, content_type="application/x-test",
                    metadata={"origin": "pyfasts3", "run-id": "42"}, multipart_threshold=PART, part_size=PART)
    assert writer.head(path).content_type == "application/x-test"
    assert s3.head_object(Bucket=bucket, Key="typed")["Metadata"] == {"origin": "pyfasts3", "run-id": "42"}


@pytest.mark.parametrize("size", [10, 2 * PART + 1])
def test_if_none_match_creates_only(writer, bucket, s3, size):
    path = f"{bucket}/once"
    first = random_bytes(size, 1)
    writer.put_from(first, path, if_none_match=True, multipart_threshold=PART, part_size=PART)
    with pytest.raises(pyfasts3.PreconditionFailed) as info:
        writer.put_from(random_bytes(size, 2), path, if_none_match=True, multipart_threshold=PART, part_size=PART)
    assert isinstance(info.value, FileExistsError)
    assert info.value.status == 412
    assert _read_back(writer, path) == first
    assert _uploads_left(s3, bucket) == []


def test_unicode_and_odd_keys_round_trip(writer, bucket):
    for key in ("a b/c+d%e?f#g", "deep/" * 20 + "ü.bin"):
        writer.put(key.encode(), f"{bucket}/{key}")
        assert _read_back(writer, f"{bucket}/{key}") == key.encode()


# -- checksums ---------------------------------------------------------------------------

def _crc32c_b64(data: bytes) -> str:
    return base64.b64encode(struct.pack(">I", crc32c(data))).decode()


@pytest.mark.plain_http_only  # the fault proxy reads plain HTTP
def test_every_upload_request_carries_its_crc32c(server, bucket, s3):
    data = random_bytes(2 * PART + 10, 3)
    with FaultProxy(server.endpoint_url) as proxy, proxied_client(server, proxy) as c:
        c.put(data[:1000], f"{bucket}/small")
        c.put_from(data, f"{bucket}/big", multipart_threshold=PART, part_size=PART)
        puts = [r for r in proxy.requests if r.method == "PUT"]
    by_part = {r.target.split("partNumber=")[1].split("&")[0]: r for r in puts if "partNumber=" in r.target}
    assert sorted(by_part) == ["1", "2", "3"]
    assert by_part["1"].headers["x-amz-checksum-crc32c"] == _crc32c_b64(data[:PART])
    assert by_part["3"].headers["x-amz-checksum-crc32c"] == _crc32c_b64(data[2 * PART:])
    single = next(r for r in puts if "small" in r.target)
    assert single.headers["x-amz-checksum-crc32c"] == _crc32c_b64(data[:1000])
    assert single.headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"
    # The server stored (and so checked) the value we sent.
    stored = s3.head_object(Bucket=bucket, Key="small", ChecksumMode="ENABLED")
    assert stored.get("ChecksumCRC32C") == _crc32c_b64(data[:1000])


def test_a_wrong_checksum_is_refused_by_the_server(server, bucket):
    """The header is verified, not just stored: a PUT whose body does not match its
    x-amz-checksum-crc32c fails (sent here with boto3, since pyfasts3 never sends a wrong one)."""
    if server.name == "moto":
        pytest.skip("moto 5.2.5 does not verify x-amz-checksum-* of a PUT (AWS and versitygw do)")
    s3 = server.boto3_client()
    with pytest.raises(Exception) as info:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"hello", ChecksumCRC32C=_crc32c_b64(b"hellO"))
    assert "BadDigest" in str(info.value) or "InvalidRequest" in str(info.value) or "XAmzContentChecksumMismatch" in str(info.value)


# -- failures, retries, cancel -------------------------------------------------------------

def _is_part(number: int):
    return lambda r: r.method == "PUT" and f"partNumber={number}&" in r.target + "&"


@pytest.mark.plain_http_only  # the fault proxy reads plain HTTP
def test_a_part_failing_every_attempt_aborts_the_upload(server, bucket, s3):
    data = random_bytes(3 * PART, 4)
    with FaultProxy(server.endpoint_url) as proxy, proxied_client(server, proxy, max_attempts=2) as c:
        proxy.reject(_is_part(2), status=500, code="InternalError")
        out = run_guarded(lambda: c.put_from(data, f"{bucket}/fails", multipart_threshold=PART, part_size=PART))
        assert proxy.rejected >= 2  # part 2 was retried before the upload gave up
    assert isinstance(out.error, pyfasts3.S3Error), out
    assert "part 2" in str(out.error)
    assert _uploads_left(s3, bucket) == []
    with pytest.raises(pyfasts3.NoSuchKey):
        c2 = make_client(server)
        try:
            c2.head(f"{bucket}/fails")
        finally:
            c2.close()


@pytest.mark.plain_http_only  # the fault proxy reads plain HTTP
def test_a_part_failing_once_is_retried_and_the_upload_succeeds(server, bucket, s3):
    data = random_bytes(3 * PART, 5)
    failed = []

    def first_attempt_of_part_3(r):
        if _is_part(3)(r) and not failed:
            failed.append(r)
            return True
        return False

    with FaultProxy(server.endpoint_url) as proxy, proxied_client(server, proxy) as c:
        proxy.reject(first_attempt_of_part_3, status=503, code="SlowDown")
        assert c.put_from(data, f"{bucket}/retried", multipart_threshold=PART, part_size=PART) == 3
        assert sum(1 for r in proxy.requests if _is_part(3)(r)) == 2
        assert _read_back(c, f"{bucket}/retried") == data
    assert _uploads_left(s3, bucket) == []


class Token:
    def __init__(self):
        out = ffi.new("fasts3_cancel_token **")
        assert lib.fasts3_cancel_token_new(out, ffi.NULL) == lib.FASTS3_OK
        self.ptr = out[0]

    def cancel(self) -> None:
        lib.fasts3_cancel_token_cancel(self.ptr)

    def free(self) -> None:
        lib.fasts3_cancel_token_free(self.ptr)


@pytest.mark.plain_http_only  # the fault proxy reads plain HTTP
def test_cancel_mid_upload_aborts_it_before_returning(server, bucket, s3):
    data = np.frombuffer(random_bytes(3 * PART, 6), dtype=np.uint8)
    token = Token()
    with FaultProxy(server.endpoint_url) as proxy, proxied_client(server, proxy) as c:
        proxy.hold(_is_part(2))
        options = ffi.new("fasts3_put_options *")
        options.struct_size = ffi.sizeof("fasts3_put_options")
        options.multipart_threshold = PART
        options.part_size = PART
        b, k = bucket.encode(), b"cancelled"
        cbuf = ffi.from_buffer("uint8_t[]", data)

        def call():
            with c._handle.borrow() as client:
                return lib.fasts3_put_from(client, b, len(b), k, len(k), cbuf, len(data), options, token.ptr, ffi.NULL, ffi.NULL)

        out = start_guarded(call)
        assert proxy.wait_for(lambda p: p.held >= 1, timeout=30), "part 2 never reached the proxy"
        assert _uploads_left(s3, bucket) != []  # the upload exists while it runs
        token.cancel()
        assert out.done.wait(PROMPT), "put_from did not return after cancel"
        assert out.value == lib.FASTS3_CANCELLED, out
        # Aborted before the call returned: nothing to wait for.
        assert _uploads_left(s3, bucket) == []
        proxy.release()
    token.free()


# -- delete ------------------------------------------------------------------------------

def test_delete_removes_the_object_and_ignores_missing_keys(writer, bucket):
    writer.put(b"x", f"{bucket}/gone")
    writer.delete(f"{bucket}/gone")
    with pytest.raises(pyfasts3.NoSuchKey):
        writer.head(f"{bucket}/gone")
    writer.delete(f"{bucket}/never-existed")  # S3: deleting a missing key succeeds
    with pytest.raises(pyfasts3.NoSuchBucket):
        writer.delete(f"{bucket}-missing/k")


def test_delete_many_spans_several_requests(writer, bucket):
    keys = [f"k/{i:05d}" for i in range(1005)]
    for key in keys:
        writer.put(key.encode(), f"{bucket}/{key}")
    failures = writer.delete_many([f"{bucket}/{k}" for k in keys] + [f"{bucket}/missing-key"])
    assert failures == []
    assert writer.list_keys(bucket) == []


def test_delete_many_reports_each_key_of_a_failed_request(writer, bucket):
    writer.put(b"x", f"{bucket}/kept")
    paths = [f"{bucket}-missing/a", f"{bucket}/kept", f"{bucket}-missing/b"]
    failures = writer.delete_many(paths)
    assert [p for p, _ in failures] == [paths[0], paths[2]]
    assert all(isinstance(e, pyfasts3.NoSuchBucket) for _, e in failures)
    assert writer.list_keys(bucket) == []  # the key in the existing bucket was deleted
    assert writer.delete_many([]) == []
    with pytest.raises(TypeError):
        writer.delete_many(f"{bucket}/kept")


def test_delete_many_reports_the_per_key_errors_of_a_200_answer():
    """A DeleteObjects answered 200 whose result lists an <Error> for some keys (tests/fakes3.py
    scripts them): exactly those keys are failures, each with its own S3 code and message;
    the others were deleted."""
    with FakeS3() as fake:
        paths = [fake.put(f"b/k{i}", b"x") for i in range(5)]
        fake.behave(delete_errors={"k1": ("AccessDenied", "Access Denied by policy"),
                                   "k3": ("InternalError", "We encountered an internal error")})
        with pyfasts3.Client(fake.url, region="us-east-1", access_key_id="k", secret_access_key="s") as c:
            failures = c.delete_many(paths + [paths[1]])  # a key listed twice fails twice
            assert [p for p, _ in failures] == ["b/k1", "b/k3", "b/k1"]
            (_, denied), (_, internal), (_, again) = failures
            assert type(denied) is pyfasts3.AccessDenied
            assert (denied.code, denied.bucket, denied.key) == ("AccessDenied", "b", "k1")
            assert "Access Denied by policy" in denied.message
            # No HTTP status of its own (the answer was a 200), but the id of the request
            # that reported it.
            assert (denied.status, denied.request_id) == (0, "fake")
            assert str(denied).startswith("AccessDenied: ") and "HTTP" not in str(denied)
            assert type(internal) is pyfasts3.S3Error
            assert (internal.code, internal.bucket, internal.key) == ("InternalError", "b", "k3")
            assert "We encountered an internal error" in internal.message
            assert (type(again), again.code, again.key) == (pyfasts3.AccessDenied, "AccessDenied", "k1")
            assert [r.method for r in fake.requests] == ["POST"]  # one DeleteObjects, no retry
        assert [fake.exists(p) for p in paths] == [False, True, False, True, False]


# -- copy --------------------------------------------------------------------------------

def test_copy_keeps_bytes_type_and_metadata(writer, bucket, s3):
    data = random_bytes(100_000, 8)
    writer.put(data, f"{bucket}/src", content_type="text/x-src", metadata={"m": "1"})
    writer.copy(f"{bucket}/src", f"{bucket}/dst")
    assert _read_back(writer, f"{bucket}/dst") == data
    assert writer.head(f"{bucket}/dst").content_type == "text/x-src"
    assert s3.head_object(Bucket=bucket, Key="dst")["Metadata"] == {"m": "1"}
    with pytest.raises(pyfasts3.NoSuchKey):
        writer.copy(f"{bucket}/missing", f"{bucket}/dst2")


def test_multipart_copy_above_the_threshold(writer, bucket, s3):
    data = random_bytes(2 * PART + 777, 9)
    writer.put(data, f"{bucket}/big-src", content_type="text/x-big", metadata={"m": "2"})
    writer.copy(f"{bucket}/big-src", f"{bucket}/big-dst", multipart_threshold=PART, part_size=PART)
    assert _read_back(writer, f"{bucket}/big-dst") == data
    assert writer.head(f"{bucket}/big-dst").content_type == "text/x-big"
    assert s3.head_object(Bucket=bucket, Key="big-dst")["Metadata"] == {"m": "2"}
    assert _uploads_left(s3, bucket) == []


@pytest.mark.plain_http_only  # the fault proxy reads plain HTTP
def test_multipart_copy_sends_upload_part_copy_requests(server, bucket, s3):
    data = random_bytes(2 * PART + 1, 10)
    s3.put_object(Bucket=bucket, Key="src", Body=data)
    with FaultProxy(server.endpoint_url) as proxy, proxied_client(server, proxy) as c:
        c.copy(f"{bucket}/src", f"{bucket}/dst", multipart_threshold=PART, part_size=PART)
        ranges = sorted((r.headers.get("x-amz-copy-source-range") for r in proxy.requests if "partNumber=" in r.target),
                        key=lambda v: int(v.split("=")[1].split("-")[0]))
    assert ranges == [f"bytes=0-{PART - 1}", f"bytes={PART}-{2 * PART - 1}", f"bytes={2 * PART}-{2 * PART}"]
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == data


# -- module-level functions ----------------------------------------------------------------

def test_module_level_functions(server_env, bucket):
    pyfasts3.put(b"module", f"{bucket}/m")
    pyfasts3.put_from(np.frombuffer(b"from", dtype=np.uint8), f"{bucket}/f")
    pyfasts3.copy(f"{bucket}/m", f"{bucket}/c")
    assert pyfasts3.get(f"{bucket}/c").tobytes() == b"module"
    pyfasts3.delete(f"{bucket}/m")
    assert pyfasts3.delete_many([f"{bucket}/f", f"{bucket}/c"]) == []
    assert pyfasts3.list_keys(bucket) == []
