"""list_keys / list_objects: prefixes, S3 (UTF-8 byte) order, pagination, delimiters."""
from __future__ import annotations

import inspect
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta, timezone

import pytest

import pyfasts3


def utf8_sorted(keys):
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def seed(s3, bucket, keys, body=lambda k: b"x"):
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=body(k)), keys))


@pytest.fixture(scope="session")
def big_bucket(s3):
    """1100 keys (shared, read-only): every third is a 'directory' holding one object, so a
    delimiter listing also spans more than one 1000-entry page.
    Returns (bucket, keys, level) where level is the delimiter listing of the root."""
    name = f"big-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    keys, level = [], []
    for i in range(1100):
        if i % 3 == 0:
            keys.append(f"{i:04d}/obj")
            level.append(f"{i:04d}/")
        else:
            keys.append(f"{i:04d}")
            level.append(f"{i:04d}")
    seed(s3, name, keys)
    return name, keys, level


# -- list_keys -----------------------------------------------------------------------------


def test_list_keys_whole_bucket_and_prefix_forms(client, s3, bucket):
    keys = ["a/1", "a/2", "a/b/3", "ab", "b/1", "top"]
    seed(s3, bucket, keys)
    assert client.list_keys(bucket) == keys
    assert client.list_keys(f"s3://{bucket}") == keys
    assert client.list_keys(f"{bucket}/") == keys  # empty prefix
    assert client.list_keys(f"{bucket}/a") == ["a/1", "a/2", "a/b/3", "ab"]
    assert client.list_keys(f"{bucket}/a/") == ["a/1", "a/2", "a/b/3"]
    assert client.list_keys(f"s3://{bucket}/a/b") == ["a/b/3"]
    assert client.list_keys(f"{bucket}/top") == ["top"]


def test_list_keys_utf8_byte_order(client, s3, bucket):
    """S3 sorts keys by their UTF-8 bytes: 'B' < 'a' < '~' < 'é' < '日本' < emoji."""
    keys = ["a", "B", "~tilde", "\u00e9t\u00e9", "\u65e5\u672c", "\U0001F600", "a-b", "a.b", "a_b",
            "Z", "0", "9", " space", "a b", "\uff21fullwidth"]
    seed(s3, bucket, keys)
    got = client.list_keys(bucket)
    assert got == utf8_sorted(keys)
    assert got[0] == " space" and got[-1] == "\U0001F600"


def test_list_keys_xml_special_characters_and_edge_spaces(client, s3, bucket):
    """Keys that the listing XML must escape (& < > " '), and leading/trailing spaces and
    tabs, come back exactly, in the same order boto3 sees, with the same sizes and ETags."""
    keys = ["a&b", "a<b>", 'q"uote', "apos'", " lead", "trail ", "mid  dle", "tab\there", "&amp;literal",
            "d/&/x", "d/<x>/y"]
    seed(s3, bucket, keys, body=lambda k: k.encode() * 3)
    assert client.list_keys(bucket) == utf8_sorted(keys)
    ref = {o["Key"]: o for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    for parallel in (False, True):
        infos = list(client.list_objects(bucket, parallel=parallel))
        assert [o.key for o in infos] == utf8_sorted(keys)
        for o in infos:
            assert o.size == ref[o.key]["Size"] and o.etag == ref[o.key]["ETag"], o
    assert client.list_keys(f"{bucket}/d/", delimiter="/") == ["d/&/", "d/<x>/"]


def test_list_keys_more_than_1000(client, big_bucket):
    bucket, keys, _ = big_bucket
    got = client.list_keys(bucket)
    assert len(got) == 1100
    assert got == utf8_sorted(keys)


def test_list_keys_more_than_1000_with_prefix(client, big_bucket):
    bucket, keys, _ = big_bucket
    assert client.list_keys(f"{bucket}/10") == [k for k in keys if k.startswith("10")]
    assert client.list_keys(f"s3://{bucket}/0999") == ["0999/obj"]


def test_list_keys_delimiter_more_than_1000(client, big_bucket):
    """Keys and common prefixes merged in order across a page boundary."""
    bucket, _, level = big_bucket
    got = client.list_keys(bucket, delimiter="/")
    assert len(got) == 1100
    assert got == level


def test_list_keys_delimiter_levels(client, s3, bucket):
    keys = ["a.txt", "b/1", "b/2", "b/c/3", "c", "d/e/f", "d/g"]
    seed(s3, bucket, keys)
    assert client.list_keys(bucket, delimiter="/") == ["a.txt", "b/", "c", "d/"]
    assert client.list_keys(f"{bucket}/b/", delimiter="/") == ["b/1", "b/2", "b/c/"]
    assert client.list_keys(f"{bucket}/d/", delimiter="/") == ["d/e/", "d/g"]
    assert client.list_keys(f"{bucket}/d/e/", delimiter="/") == ["d/e/f"]
    assert client.list_keys(f"{bucket}/b", delimiter="/") == ["b/"]


def test_list_keys_delimiter_merge_order(client, s3, bucket):
    """A common prefix sorts among the keys by bytes: 'a.txt' < 'a/' < 'a0' < 'b'."""
    keys = ["a0", "a.txt", "a/x", "a/y/z", "b", "A/q"]
    seed(s3, bucket, keys)
    got = client.list_keys(bucket, delimiter="/")
    assert got == ["A/", "a.txt", "a/", "a0", "b"]


def test_list_keys_delimiter_only_prefixes(client, s3, bucket):
    seed(s3, bucket, ["x/1", "y/2", "z/3/4"])
    assert client.list_keys(bucket, delimiter="/") == ["x/", "y/", "z/"]


def test_list_keys_other_delimiter(client, s3, bucket):
    keys = ["a-1", "a-2", "b", "c-d-e"]
    seed(s3, bucket, keys)
    assert client.list_keys(bucket, delimiter="-") == ["a-", "b", "c-"]


def test_list_keys_empty_bucket(client, bucket):
    assert client.list_keys(bucket) == []
    assert client.list_keys(bucket, delimiter="/") == []
    assert list(client.list_objects(bucket)) == []


def test_list_keys_prefix_without_matches(client, s3, bucket):
    seed(s3, bucket, ["a/1", "b"])
    assert client.list_keys(f"{bucket}/zzz") == []
    assert client.list_keys(f"{bucket}/a/1/") == []
    assert client.list_keys(f"{bucket}/nope/", delimiter="/") == []
    assert list(client.list_objects(f"{bucket}/zzz", page_size=1)) == []


def test_list_keys_returns_plain_str_list(client, s3, bucket):
    seed(s3, bucket, ["k"])
    got = client.list_keys(bucket)
    assert type(got) is list and type(got[0]) is str


# -- list_objects --------------------------------------------------------------------------


def test_list_objects_small_pages(client, s3, bucket):
    keys = [f"k{i:02d}" for i in range(30)]
    seed(s3, bucket, keys, body=lambda k: k.encode() * int(k[1:]))
    ref = {o["Key"]: o for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    infos = list(client.list_objects(bucket, page_size=7))
    assert [o.key for o in infos] == keys
    for o in infos:
        assert isinstance(o, pyfasts3.ObjectInfo)
        assert o.bucket == bucket
        assert o.size == len(o.key) * int(o.key[1:]) == ref[o.key]["Size"]
        assert o.etag == ref[o.key]["ETag"]
        assert o.content_type is None
        assert o.last_modified.tzinfo is not None and o.last_modified.utcoffset() == timedelta(0)
        assert abs(o.last_modified - ref[o.key]["LastModified"].astimezone(timezone.utc)) < timedelta(seconds=1)


@pytest.mark.parametrize("page_size", [1, 2, 29, 30, 31, 1000])
def test_list_objects_page_sizes(client, s3, bucket, page_size):
    keys = [f"p/{i:03d}" for i in range(30)]
    seed(s3, bucket, keys)
    assert [o.key for o in client.list_objects(f"{bucket}/p/", page_size=page_size)] == keys


def test_list_objects_more_than_1000(client, big_bucket):
    bucket, keys, _ = big_bucket
    infos = list(client.list_objects(f"s3://{bucket}"))
    assert [o.key for o in infos] == utf8_sorted(keys)
    assert all(o.size == 1 for o in infos)


def test_list_objects_is_lazy(client, s3, bucket):
    """Pages are fetched as the iterator advances: keys added after the first page are seen."""
    seed(s3, bucket, ["a1", "a2", "a3"])
    it = client.list_objects(bucket, page_size=2)
    assert inspect.isgenerator(it)
    first = next(it)
    assert first.key == "a1"
    s3.put_object(Bucket=bucket, Key="z9", Body=b"late")
    assert [o.key for o in it] == ["a2", "a3", "z9"]


def test_list_objects_missing_bucket_raises_on_iteration(client, bucket):
    it = client.list_objects(f"{bucket}-missing")  # no request yet: must not raise
    with pytest.raises(pyfasts3.NoSuchBucket) as ei:
        next(it)
    assert ei.value.bucket == f"{bucket}-missing"


def test_list_objects_with_delimiter_yields_only_level_objects(client, s3, bucket):
    seed(s3, bucket, ["a.txt", "b/1", "c", "d/e/f"])
    assert [o.key for o in client.list_objects(bucket, delimiter="/")] == ["a.txt", "c"]
    assert [o.key for o in client.list_objects(f"{bucket}/d/e/", delimiter="/", page_size=1)] == ["d/e/f"]


def test_list_objects_with_delimiter_small_pages(client, s3, bucket):
    """Pages made only of common prefixes must not end the iteration early."""
    keys = [f"dir{i}/x" for i in range(5)] + ["file1", "file2"]
    seed(s3, bucket, keys)
    got = [o.key for o in client.list_objects(bucket, delimiter="/", page_size=2)]
    assert got == ["file1", "file2"]


def test_list_objects_empty_objects_and_sizes(client, s3, bucket):
    sizes = {"e": 0, "one": 1, "big": 200_000}
    for k, n in sizes.items():
        s3.put_object(Bucket=bucket, Key=k, Body=b"\0" * n)
    assert {o.key: o.size for o in client.list_objects(bucket)} == sizes


def test_module_level_list_objects_is_generator(server_env, bucket):
    """Even via the module-level function, nothing is sent until iteration."""
    it = pyfasts3.list_objects(f"{bucket}-missing")
    with pytest.raises(pyfasts3.NoSuchBucket):
        next(it)


# -- keys XML cannot carry as they are -------------------------------------------------------

def _xml10_char(c: str) -> bool:
    """Whether XML 1.0 can carry the character at all (as text or as a character reference)."""
    o = ord(c)
    return o in (0x9, 0xA, 0xD) or 0x20 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD or o >= 0x10000


# Every control character, CR and CRLF in every position, '%' and '+' (which a URL-decoder
# must not mangle), spaces, unicode, XML-invalid characters, and all of these in "directory"
# names too (the parallel walk lists them back as common prefixes).
HOSTILE_KEYS = (
    [f"ctl-{c:02x}-{chr(c)}-end" for c in range(0x01, 0x20)]
    + ["del-\x7f", "cr\rkey", "crlf\r\nkey", "trailing-cr\r", "\rleading-cr", "lf\nkey",
       "pct%41", "pct%", "pct%%2B%zz", "plus+key", "plus+%2B+", "sp ace", "  two-lead", "trail  ",
       "uni-\u00e9\u4e2d\U0001F600", "nc-\ufffe", "nc-\uffff", "amp&lt;", "d\r/k", "d%41/k", "d+ /k",
       "d\x01/k", "d\u00e9/k\r\n"]
)


def _seed_hostile(s3, bucket):
    """Upload HOSTILE_KEYS (body: the key's UTF-8 bytes); return the keys the server stored.
    A server may refuse some keys (moto cannot route a key with a line feed): those are left
    out, but the issue's own case (a CR) must be stored everywhere."""
    stored = []
    for key in HOSTILE_KEYS:
        try:
            s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
        except Exception:  # noqa: BLE001 -- a refusal, recorded by leaving the key out
            continue
        stored.append(key)
    assert "cr\rkey" in stored and "pct%41" in stored and "plus+key" in stored, stored
    return stored


def test_list_round_trips_keys_xml_cannot_carry(client, s3, bucket):
    """Keys holding control characters, CR/CRLF, '%', '+', spaces, unicode and XML-invalid
    characters come back from every form of listing exactly as stored, and each listed key
    can be read back. The listing asks for encoding-type=url and decodes only when the
    server says it encoded (a server that ignores the request sends keys raw, and decoding
    those would turn 'pct%41' into 'pctA')."""
    stored = _seed_hostile(s3, bucket)
    raw = s3.list_objects_v2(Bucket=bucket, EncodingType="url")  # boto3 leaves these encoded
    if raw.get("EncodingType") != "url":
        # versitygw 1.7 ignores encoding-type, and its XML writer replaces the characters XML
        # cannot carry with U+FFFD: the server's listing loses those keys (boto3 sees the
        # same). Check that it is the server, drop them, and test every other key.
        lost = [k for k in utf8_sorted(stored) if not all(map(_xml10_char, k))]
        assert len(lost) > 20
        mangled = ["".join(c if _xml10_char(c) else "\ufffd" for c in k) for k in lost]
        assert [k for k in (o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]) if k in mangled] \
            == mangled
        for key in lost:
            s3.delete_object(Bucket=bucket, Key=key)
        stored = [k for k in stored if k not in lost]
    expected = utf8_sorted(stored)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == expected

    assert client.list_keys(bucket) == expected
    assert client.list_keys(bucket, parallel=True) == expected
    assert [o.key for o in client.list_objects(bucket, page_size=7)] == expected
    assert [o.key for o in client.list_objects(bucket, parallel=True)] == expected
    dirs = sorted({k.split("/")[0] + "/" for k in expected if "/" in k}, key=lambda s: s.encode())
    level = client.list_keys(bucket, delimiter="/")
    assert [x for x in level if x.endswith("/")] == dirs
    for d in dirs:  # each listed common prefix lists its own keys
        assert client.list_keys(f"{bucket}/{d}") == [k for k in expected if k.startswith(d)]

    for key in expected:
        assert client.head(f"{bucket}/{key}").size == len(key.encode()), repr(key)
        assert client.get(f"{bucket}/{key}").tobytes() == key.encode(), repr(key)
