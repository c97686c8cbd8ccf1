"""head(): size, ETag, last-modified time and content type of one object."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

import pyfasts3

PART = 64 * 1024


def payload(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("size", [0, 1, PART + 1], ids=["empty", "1B", "part+1"])
def test_head_matches_boto3(client, s3, put, bucket, size):
    path = put("dir/obj", payload(size))
    info = client.head(path)
    ref = s3.head_object(Bucket=bucket, Key="dir/obj")
    assert isinstance(info, pyfasts3.ObjectInfo)
    assert info.bucket == bucket
    assert info.key == "dir/obj"
    assert info.size == size == ref["ContentLength"]
    assert info.etag == ref["ETag"]
    assert info.etag.startswith('"') and info.etag.endswith('"')  # quotes kept
    assert info.last_modified == ref["LastModified"]
    assert info.content_type == ref["ContentType"]


def test_head_last_modified_is_recent_aware_utc(client, put):
    info = client.head(put("obj", b"x"))
    lm = info.last_modified
    assert isinstance(lm, datetime)
    assert lm.tzinfo is not None and lm.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - lm) < timedelta(minutes=1)


@pytest.mark.parametrize("ctype", [
    "application/json",
    "text/plain; charset=utf-8",
    "image/png",
    "application/x-custom+type",
])
def test_head_content_type(client, s3, bucket, ctype):
    s3.put_object(Bucket=bucket, Key="obj", Body=b"{}", ContentType=ctype)
    assert client.head(f"{bucket}/obj").content_type == ctype


def test_head_etag_is_md5_for_single_put(client, put):
    import hashlib

    data = payload(1234)
    info = client.head(put("obj", data))
    assert info.etag == f'"{hashlib.md5(data).hexdigest()}"'


def test_head_etag_changes_when_object_replaced(client, put):
    path = put("obj", b"first")
    before = client.head(path)
    put("obj", b"second!")
    after = client.head(path)
    assert after.etag != before.etag
    assert after.size == 7


def test_head_s3_scheme_and_deep_key(client, put, bucket):
    put("a/b/c/d/e/f", b"deep")
    info = client.head(f"s3://{bucket}/a/b/c/d/e/f")
    assert (info.bucket, info.key, info.size) == (bucket, "a/b/c/d/e/f", 4)


def test_head_agrees_with_listing(client, put, bucket):
    put("k", payload(PART * 2 + 1))
    info = client.head(f"{bucket}/k")
    (listed,) = list(client.list_objects(bucket))
    assert (listed.key, listed.size, listed.etag) == (info.key, info.size, info.etag)
    # HTTP dates have whole seconds; listings may carry milliseconds.
    assert abs(listed.last_modified - info.last_modified) < timedelta(seconds=1)


def test_object_info_is_frozen(client, put):
    info = client.head(put("obj", b"x"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.size = 5  # type: ignore[misc]


def test_head_on_prefix_is_no_such_key(client, put, bucket):
    """'dir' is only a prefix of 'dir/obj', not an object."""
    put("dir/obj", b"x")
    with pytest.raises(pyfasts3.NoSuchKey):
        client.head(f"{bucket}/dir")
