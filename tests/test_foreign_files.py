"""Objects a server holds without an ETag: files laid into versitygw's posix root by something
other than versitygw (serving an existing directory tree over S3 is what its posix backend is
for). versitygw answers for them with Last-Modified only, and compares If-Unmodified-Since with
the file's mtime to the nanosecond, while an HTTP date carries whole seconds: a request
"unmodified since <its own Last-Modified>" fails with 412 on an object nobody touched.

Every read must return the file's exact bytes: multi-part reads, ranges, file objects, batches
of listed objects, and the command line's windowed download. (These failed with
ObjectChanged / PreconditionFailed, and ``cp`` with "if_match must be a non-empty str".)
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

import pyfasts3
import pyfasts3.io
from pyfasts3.cli import main as cli_main
from s3servers import REGION, start_versitygw

PART = 64 * 1024
# Over 4 MiB, so that the command line's client (adaptive parts: 4 MiB first) reads it in
# several requests too; 81 parts of this module's client.
SIZE = 5 * 1024 * 1024 + 12_345
BUCKET = "foreign"


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    """(client, data, root): a versitygw whose bucket holds file "tree/file.bin", written straight
    into its root with a sub-second mtime."""
    root = tmp_path_factory.mktemp("vgw-root")
    server = start_versitygw(root=str(root))
    try:
        server.boto3_client().create_bucket(Bucket=BUCKET)
        data = np.random.default_rng(7).integers(0, 256, SIZE, dtype=np.uint8).tobytes()
        path = root / BUCKET / "tree" / "file.bin"
        path.parent.mkdir()
        path.write_bytes(data)
        # Not on a whole second, whatever the clock said when it was written.
        os.utime(path, ns=(time.time_ns(), (int(time.time()) - 60) * 10**9 + 123_456_789))
        # Small files beside it, for the command line's batched copies (cp -r).
        for name, body in SMALL_FILES.items():
            (root / BUCKET / "tree" / name).write_bytes(body)
        client = pyfasts3.Client(server.endpoint_url, region=REGION, access_key_id=server.access_key_id,
                                 secret_access_key=server.secret_access_key, part_size=PART)
        yield client, data, server
    finally:
        server.stop()


KEY = f"{BUCKET}/tree/file.bin"
SMALL_FILES = {"a.txt": b"alpha\n", "b.bin": bytes(range(256)) * 300, "empty": b""}


def test_the_server_sends_no_etag(foreign):
    client, data, _ = foreign
    info = client.head(KEY)
    # The premise of this module: if versitygw starts sending ETags for such files, the rest
    # no longer tests reads without one.
    assert (info.size, info.etag) == (SIZE, "")


def test_multi_part_reads(foreign):
    client, data, _ = foreign
    buf = np.empty(SIZE, np.uint8)
    assert client.get_into(buf, KEY) == SIZE
    assert buf.tobytes() == data
    assert client.get(KEY, offset=PART + 1).tobytes() == data[PART + 1:]


def test_ranges(foreign):
    client, data, _ = foreign
    ranges = [(0, 10), (PART * 5, PART * 3), (-100, 100), (SIZE // 2, 1)]
    got = client.get_ranges(KEY, ranges, max_gap=0)
    assert [g.tobytes() for g in got] == [data[o:o + n] if o >= 0 else data[o:] for o, n in ranges]


def test_listed_batch(foreign):
    client, data, _ = foreign
    listed = [o for o in client.list_objects(f"{BUCKET}/tree/") if o.key == "tree/file.bin"]
    assert [o.etag for o in listed] == [""]
    (arr,) = client.get_many(listed)
    assert arr.tobytes() == data


def test_file_object(foreign):
    client, data, _ = foreign
    with client.open(KEY) as f:
        assert f.read(100) == data[:100]
        f.seek(SIZE - 1000)
        assert f.read() == data[-1000:]
        f.seek(0)
        assert f.read() == data


@pytest.mark.parametrize("window", [256 * 1024, 16 << 20], ids=["over-two-windows", "under-two-windows"])
def test_cp_download(foreign, tmp_path, monkeypatch, window):
    client, data, server = foreign
    # A small window makes this object one that would be downloaded window by window (no
    # ETag to pin the windows to: one get_into instead); the default window, one get_into.
    monkeypatch.setattr(pyfasts3.io, "DOWNLOAD_WINDOW", window)
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "file.bin"
    assert cli_main(["cp", "-q", "--no-progress", f"s3://{KEY}", str(out)]) == 0
    assert out.read_bytes() == data


def test_cp_recursive_download(foreign, tmp_path, monkeypatch):
    """cp -r: the small files go through the batched reads, the large one on its own."""
    client, data, server = foreign
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "copy"
    assert cli_main(["cp", "-r", "-q", "--no-progress", f"s3://{BUCKET}/tree/", str(out)]) == 0
    got = {p.name: p.read_bytes() for p in out.iterdir()}
    assert got == {"file.bin": data, **SMALL_FILES}
