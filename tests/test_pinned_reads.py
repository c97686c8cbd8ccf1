"""Reads pinned to a version: ``if_match`` (the ETag a listing or HEAD gave) and
``version_id``, on every lane. A pinned read returns that version's bytes or raises
ObjectChanged, never another version's bytes."""
from __future__ import annotations

import numpy as np
import pytest

import pyfasts3

KIB, MIB = 1024, 1024 * 1024
# One request, and a read in several parts (part_size 1 MiB below).
SIZES = pytest.mark.parametrize("size", [10 * KIB, 5 * MIB + 3], ids=["one-part", "multi-part"])


def payload(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.fixture
def pclient(server):
    from conftest import make_client

    with make_client(server, part_size=MIB) as c:
        yield c


@SIZES
@pytest.mark.parametrize("quoted", [True, False], ids=["quoted", "bare"])
def test_if_match_current_etag_reads_the_object(pclient, put, size, quoted):
    data = payload(size, 1)
    path = put("obj", data)
    etag = pclient.head(path).etag
    assert etag.startswith('"')
    pin = etag if quoted else etag.strip('"')
    buf = np.zeros(size, np.uint8)
    assert pclient.get_into(buf, path, if_match=pin) == size
    assert buf.tobytes() == data
    assert pclient.get(path, offset=7, if_match=pin).tobytes() == data[7:]


@SIZES
def test_if_match_of_a_replaced_object_raises_object_changed(pclient, put, s3, bucket, size):
    path = put("obj", payload(size, 2))
    old = pclient.head(path).etag
    s3.put_object(Bucket=bucket, Key="obj", Body=payload(size, 3))
    buf = np.zeros(size, np.uint8)
    with pytest.raises(pyfasts3.ObjectChanged):
        pclient.get_into(buf, path, if_match=old)
    with pytest.raises(pyfasts3.ObjectChanged):
        pclient.get(path, offset=size // 2, if_match=old)
    # Reads that touch no byte still check the version.
    with pytest.raises(pyfasts3.ObjectChanged):
        pclient.get_into(np.zeros(0, np.uint8), path, if_match=old)
    with pytest.raises(pyfasts3.ObjectChanged):
        pclient.get(path, offset=size + 10, if_match=old)


def test_if_match_on_a_missing_key_is_no_such_key(pclient, bucket):
    with pytest.raises(pyfasts3.NoSuchKey):
        pclient.get(f"{bucket}/missing", if_match='"abc"')


@pytest.mark.parametrize("bad", ["", "a\0b", 5])
def test_bad_pins_are_refused(pclient, put, bad):
    path = put("obj", b"x")
    with pytest.raises((ValueError, TypeError)):
        pclient.get(path, if_match=bad)
    with pytest.raises((ValueError, TypeError)):
        pclient.get(path, version_id=bad)


def test_module_level_functions_take_the_pins():
    import inspect

    for fn in (pyfasts3.get, pyfasts3.get_into):
        params = inspect.signature(fn).parameters
        assert "if_match" in params and "version_id" in params


@SIZES
def test_version_id_reads_an_older_version(pclient, s3, bucket, server, size):
    try:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    except Exception as e:  # noqa: BLE001 - a server without versioning support
        pytest.skip(f"{server.name} does not support bucket versioning here: {e}")
    first, second = payload(size, 4), payload(size, 5)
    v1 = s3.put_object(Bucket=bucket, Key="obj", Body=first).get("VersionId")
    s3.put_object(Bucket=bucket, Key="obj", Body=second)
    if not v1:
        pytest.skip(f"{server.name} returned no VersionId")
    path = f"{bucket}/obj"
    assert pclient.get(path).tobytes() == second
    assert pclient.get(path, version_id=v1).tobytes() == first
    buf = np.zeros(size, np.uint8)
    assert pclient.get_into(buf, path, version_id=v1) == size
    assert buf.tobytes() == first
    with pytest.raises(pyfasts3.S3Error):
        pclient.get(path, version_id="no-such-version-id")
