"""Parallel listing walks the '/' tree concurrently but must return exactly what a
sequential listing returns, in S3's (UTF-8 byte) order."""
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

import pyfasts3
from conftest import make_client

# Direct keys that sort before, between and after directories ('-' < '.' < '/' < '0' < 'é'),
# nested directories, unicode, and a directory holding more than one page. (No key is also a
# directory name: versitygw's posix backend stores keys as files and refuses that.)
TREE = (
    ["a-b", "a/x", "a/y/z", "a/y/zz", "a.b/q", "a0", "b/c", "é/ü", "日本/語", "z"]
    + [f"big/{i:05d}" for i in range(1100)]
    + [f"d{i}/sub{j}/leaf" for i in range(8) for j in range(5)]
)


@pytest.fixture(scope="module")
def tree(s3):
    """Seeded once per server lane; the tests only read it."""
    bucket = f"tree-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=bucket)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=k.encode()), TREE))
    return bucket


def utf8_sorted(keys):
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def test_parallel_listing_equals_sequential_and_s3_order(tree, server):
    with make_client(server, max_concurrency=8) as c:
        sequential = c.list_keys(tree)
        parallel = c.list_keys(tree, parallel=True)
    assert sequential == utf8_sorted(TREE)
    assert parallel == sequential


@pytest.mark.parametrize("prefix", ["a", "a/", "big/", "d3", "nothing-here/"])
def test_parallel_listing_under_a_prefix(tree, client, prefix):
    expected = utf8_sorted(k for k in TREE if k.startswith(prefix))
    assert client.list_keys(f"{tree}/{prefix}", parallel=True) == expected


def test_parallel_list_objects_carries_metadata(tree, client, s3):
    infos = list(client.list_objects(tree, parallel=True))
    assert [i.key for i in infos] == utf8_sorted(TREE)
    by_key = {i.key: i for i in infos}
    assert by_key["a/y/zz"].size == len("a/y/zz".encode())
    head = s3.head_object(Bucket=tree, Key="a/y/zz")
    assert by_key["a/y/zz"].etag == head["ETag"]
    assert by_key["a/y/zz"].last_modified is not None


def test_parallel_is_ignored_with_a_delimiter(tree, client):
    assert client.list_keys(tree, delimiter="/", parallel=True) == client.list_keys(tree, delimiter="/")


def test_parallel_listing_of_missing_bucket_raises(client):
    with pytest.raises(pyfasts3.NoSuchBucket):
        client.list_keys("no-such-bucket-parallel", parallel=True)
