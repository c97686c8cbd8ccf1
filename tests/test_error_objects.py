"""ABI v2 from Python: versions and the loader's check, status names and the exception map
derived from them, and the per-item error objects of batches (get_many, delete_many)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import pyfasts3
from pyfasts3 import _lowlevel
from pyfasts3._lowlevel import ffi, lib

ROOT = Path(__file__).resolve().parents[1]

# What each status must raise: the public contract, written out once here so that a change
# of the derived map shows up as a failure.
EXPECTED_CLASSES = {
    "FASTS3_INVALID_ARGUMENT": pyfasts3.InvalidArgument,
    "FASTS3_NULL_POINTER": pyfasts3.InvalidArgument,
    "FASTS3_OUT_OF_MEMORY": pyfasts3.LibraryOutOfMemory,
    "FASTS3_INVALID_HANDLE": pyfasts3.InvalidHandle,
    "FASTS3_NO_SUCH_KEY": pyfasts3.NoSuchKey,
    "FASTS3_NO_SUCH_BUCKET": pyfasts3.NoSuchBucket,
    "FASTS3_ACCESS_DENIED": pyfasts3.AccessDenied,
    "FASTS3_INVALID_RANGE": pyfasts3.InvalidRange,
    "FASTS3_OBJECT_CHANGED": pyfasts3.ObjectChanged,
    "FASTS3_CHECKSUM_MISMATCH": pyfasts3.ChecksumMismatch,
    "FASTS3_CHECKSUM_UNAVAILABLE": pyfasts3.ChecksumUnavailable,
    "FASTS3_PRECONDITION_FAILED": pyfasts3.PreconditionFailed,
    "FASTS3_THROTTLED": pyfasts3.Throttled,
    "FASTS3_NETWORK": pyfasts3.NetworkError,
    "FASTS3_TIMEOUT": pyfasts3.Timeout,
    "FASTS3_CANCELLED": pyfasts3.Cancelled,
    "FASTS3_PANIC": pyfasts3.InternalError,
    "FASTS3_CONFIG": pyfasts3.ConfigError,
    "FASTS3_PROTOCOL": pyfasts3.ProtocolError,
    "FASTS3_TLS": pyfasts3.TlsError,
    "FASTS3_S3_ERROR": pyfasts3.S3Error,
}


def _header_statuses() -> dict:
    return dict(ffi.typeof("fasts3_status").relements)


def test_status_name_of_every_header_status_and_of_unknown_values():
    statuses = _header_statuses()
    assert len(statuses) == len(EXPECTED_CLASSES) + 1  # + FASTS3_OK
    for name, value in statuses.items():
        assert _lowlevel.status_name(value) == name
    for value in (-1, 1, 99, 208, 405, 501, 2**31 - 1, -(2**31)):
        assert _lowlevel.status_name(value) == "FASTS3_UNKNOWN", value


def test_every_status_maps_to_its_exception_class():
    for name, value in _header_statuses().items():
        if name == "FASTS3_OK":
            continue
        e = _lowlevel.error_for_status(value, "m", "Code", 404, "b", "k")
        assert type(e) is EXPECTED_CLASSES[name], name
        assert (e.fasts3_status, e.code, e.status, e.bucket, e.key) == (value, "Code", 404, "b", "k")
    # A status this pyfasts3 does not know (a newer library's) is still an S3Error.
    assert type(_lowlevel.error_for_status(999, "m", "", 0)) is pyfasts3.S3Error


def test_version_is_the_crate_version():
    cargo = re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
    assert ffi.string(lib.fasts3_version()).decode() == cargo
    assert lib.fasts3_abi_version() == _lowlevel.ABI_VERSION
    assert lib.fasts3_abi_minor_version() >= _lowlevel.ABI_MINOR_VERSION


def test_loader_needs_the_same_major_and_at_least_its_minor():
    major, minor = _lowlevel.ABI_VERSION, _lowlevel.ABI_MINOR_VERSION
    _lowlevel.check_abi("lib", major, minor)
    _lowlevel.check_abi("lib", major, minor + 3)  # later additions are fine
    for bad in [(major - 1, minor), (major + 1, 0)] + ([(major, minor - 1)] if minor else []):
        with pytest.raises(ImportError, match=f"ABI version {bad[0]}.{bad[1]}"):
            _lowlevel.check_abi("lib", *bad)


def test_error_object_of_a_failed_call_from_python(client, bucket):
    """The `err` out-parameter as a cffi caller would use it (what Go or Julia do)."""
    err = ffi.new("fasts3_error **")
    out = ffi.new("fasts3_object_page **")
    b, k = bucket.encode(), b"no/such/key"
    with client._handle.borrow() as handle:
        status = lib.fasts3_head(handle, b, len(b), k, len(k), ffi.NULL, out, err)
    assert status == lib.FASTS3_NO_SUCH_KEY
    e = _lowlevel.take_error(err[0])
    assert type(e) is pyfasts3.NoSuchKey
    assert (e.status, e.bucket, e.key) == (404, bucket, "no/such/key")


def test_get_many_raises_the_first_failed_items_own_error(client, put, bucket):
    good = put("good", b"x" * 10)
    with pytest.raises(pyfasts3.NoSuchKey) as info:
        client.get_many([good, f"{bucket}/missing-1", good, f"{bucket}/missing-2"])
    e = info.value
    assert (e.bucket, e.key, e.code, e.status) == (bucket, "missing-1", "NoSuchKey", 404)
    assert "request 1" in e.message


def test_delete_many_failures_carry_code_and_request_id(client, bucket):
    missing = f"{bucket}-no-such-bucket"
    failures = client.delete_many([f"{missing}/a", f"{missing}/b"])
    assert [p for p, _ in failures] == [f"{missing}/a", f"{missing}/b"]
    for (path, e), key in zip(failures, ["a", "b"]):
        assert type(e) is pyfasts3.NoSuchBucket
        assert (e.code, e.bucket, e.key) == ("NoSuchBucket", missing, key)
        assert e.request_id, "a batch item's error carries the server's request id"
