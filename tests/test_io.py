"""client.open(): a seekable binary reader behaving like a local file, byte for byte."""
from __future__ import annotations

import io
import pickle
import shutil
import tarfile

import numpy as np
import pytest

import pyfasts3
from pyfasts3.io import ObjectRawReader, ObjectReader

KIB = 1024
MIB = 1024 * KIB


def _data(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.fixture
def obj(put):
    data = _data(3 * MIB + 123, 7)
    return put("dir/obj.bin", data), data


def test_reader_type_and_attributes(client, obj):
    path, data = obj
    with client.open(path) as f:
        assert isinstance(f, io.BufferedReader) and isinstance(f, ObjectReader)
        assert isinstance(f.raw, io.RawIOBase) and isinstance(f.raw, ObjectRawReader)
        assert f.readable() and f.seekable() and not f.writable()
        assert f.size == len(data)
        assert f.etag.strip('"')
        assert f.name == path
        assert not f.closed
    assert f.closed
    with pytest.raises(ValueError):
        f.read(1)
    with pytest.raises(ValueError):
        f.seek(0)


def test_random_seek_read_patterns_match_local_file(client, obj, tmp_path):
    """The same random sequence of seek/read/readinto/tell on the S3 reader and on a local
    copy: every result must be identical, past EOF included."""
    path, data = obj
    local = tmp_path / "local.bin"
    local.write_bytes(data)
    rng = np.random.default_rng(11)
    size = len(data)
    with client.open(path, block_size=64 * KIB) as f, open(local, "rb") as g:
        for step in range(400):
            op = rng.integers(0, 6)
            if op == 0:
                whence = int(rng.integers(0, 3))
                off = int(rng.integers(-size // 2, size + 10_000)) if whence != 0 else int(rng.integers(0, size + 10_000))
                if whence == 2:
                    off = int(rng.integers(-size, 10_000))
                if whence == 1 and g.tell() + off < 0:
                    off = -g.tell()
                assert f.seek(off, whence) == g.seek(off, whence), step
            elif op == 1:
                n = int(rng.choice([0, 1, 7, 100, 4096, 8191, 8192, 70_000, 1 << 20, 3 << 20]))
                assert f.read(n) == g.read(n), step
            elif op == 2:
                n = int(rng.integers(0, 200_000))
                a, b = bytearray(n), bytearray(n)
                assert f.readinto(a) == g.readinto(b), step
                assert a == b, step
            elif op == 3:
                # read1 may return fewer bytes than asked: the local file must agree on those.
                got = f.read1(int(rng.integers(1, 100_000)))
                assert got == g.read(len(got)), step
                if g.tell() < size:
                    assert got, step
            elif op == 4:
                assert f.peek(10)[:1] == g.peek(10)[:1], step
            assert f.tell() == g.tell(), step
        f.seek(0)
        g.seek(0)
        assert f.read() == g.read()


def test_eof_semantics(client, put):
    path = put("small", b"hello world")
    with client.open(path) as f:
        assert f.read(0) == b""
        assert f.read(5) == b"hello"
        assert f.read() == b" world"
        assert f.read() == b""
        assert f.read(10) == b""
        assert f.readinto(bytearray(4)) == 0
        assert f.seek(100) == 100
        assert f.read(3) == b""
        assert f.tell() == 100
        assert f.seek(-5, io.SEEK_END) == 6
        assert f.read() == b"world"
        with pytest.raises(OSError):
            f.seek(-1)
        with pytest.raises(ValueError):
            f.seek(0, 7)


def test_empty_object(client, put):
    path = put("empty", b"")
    with client.open(path) as f:
        assert f.size == 0
        assert f.read() == b""
        assert f.read(10) == b""
        assert f.readinto(bytearray(3)) == 0


@pytest.mark.parametrize("kind", ["bytearray", "memoryview", "numpy-u8", "numpy-f64"])
def test_readinto_buffer_kinds(client, obj, kind):
    path, data = obj
    n = 2 * MIB + 8
    if kind == "bytearray":
        buf = bytearray(n)
    elif kind == "memoryview":
        buf = memoryview(bytearray(n + 10))[5:n + 5]
    elif kind == "numpy-u8":
        buf = np.zeros(n, dtype=np.uint8)
    else:
        buf = np.zeros(n // 8, dtype=np.float64)
    with client.open(path) as f:
        f.seek(1000)
        got = f.readinto(buf)
        assert got == n
        assert bytes(memoryview(buf).cast("B")) == data[1000:1000 + n]
        # Short at EOF like a local file.
        f.seek(len(data) - 10)
        small = bytearray(100)
        assert f.readinto(small) == 10
        assert bytes(small[:10]) == data[-10:]


def test_readinto_refuses_readonly(client, obj):
    path, _ = obj
    with client.open(path) as f, pytest.raises(TypeError):
        f.raw.readinto(b"immutable")


def test_large_reads_go_straight_into_caller_buffer(client, obj, monkeypatch):
    """A read larger than the readahead is one get_into on the caller's buffer, not a copy
    through the readahead block; small sequential reads grow the readahead."""
    path, data = obj
    calls = []
    real = client.get_into

    def spy(buf, p, *, offset=0, **pins):
        calls.append((memoryview(buf).nbytes, offset))
        return real(buf, p, offset=offset, **pins)

    monkeypatch.setattr(client, "get_into", spy)
    with client.open(path, block_size=64 * KIB) as f:
        buf = bytearray(MIB)
        f.raw.readinto(buf)
        assert calls == [(MIB, 0)]
        assert f.raw._block_len == 0  # never went through the block
        calls.clear()
        # Sequential small reads: each fetch doubles the request size.
        for _ in range(100):
            f.read(16 * KIB)
        sizes = [n for n, _ in calls]
        assert sizes[:4] == [128 * KIB, 256 * KIB, 512 * KIB, 1024 * KIB], sizes
        calls.clear()
        f.seek(100)  # random access resets the readahead
        f.read(10)
        assert calls == [(64 * KIB, 100)]
        f.seek(0)
        assert f.read() == data


def test_streaming_scan_uses_few_large_requests(client, put, monkeypatch):
    data = _data(20 * MIB + 5, 9)
    path = put("big", data)
    calls = []
    real = client.get_into
    monkeypatch.setattr(client, "get_into",
                        lambda buf, p, *, offset=0, **pins: calls.append(offset) or real(buf, p, offset=offset, **pins))
    out = io.BytesIO()
    with client.open(path) as f:
        shutil.copyfileobj(f, out, 64 * KIB)
    assert out.getvalue() == data
    # 1 + 2 + 4 + 8 MiB, then the rest: 5 requests instead of 320 of 64 KiB.
    assert len(calls) <= 6, calls


def test_missing_key_raises_at_open(client, bucket):
    with pytest.raises(pyfasts3.NoSuchKey) as e:
        client.open(f"{bucket}/nope")
    assert isinstance(e.value, FileNotFoundError)


def test_writer_uploads_on_close(client, bucket):
    path = f"{bucket}/w/obj"
    data = np.random.default_rng(3).integers(0, 256, 400_000, dtype=np.uint8).tobytes()
    with client.open(path, "wb") as f:
        assert f.writable() and not f.readable()
        assert f.write(data[:10]) == 10
        f.write(memoryview(data)[10:])
        assert f.tell() == len(data)
        with pytest.raises(pyfasts3.NoSuchKey):
            client.head(path)  # nothing sent before close
    assert f.closed
    assert client.get(path).tobytes() == data
    f.close()  # idempotent, uploads nothing again
    with client.open(f"{bucket}/w/empty", "wb"):
        pass
    assert client.head(f"{bucket}/w/empty").size == 0
    # "xb" only creates.
    with pytest.raises(FileExistsError):
        with client.open(path, "xb") as f:
            f.write(b"other")
    assert client.get(path).tobytes() == data
    with pytest.raises(ValueError):
        f.write(b"closed")


def test_writer_aborts_on_exception(client, bucket):
    path = f"{bucket}/w/aborted"
    with pytest.raises(RuntimeError, match="boom"):
        with client.open(path, "wb") as f:
            f.write(b"partial")
            raise RuntimeError("boom")
    with pytest.raises(pyfasts3.NoSuchKey):
        client.head(path)


def _uploads_in_progress(s3, bucket):
    return s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def test_writer_streams_parts_while_writing(client, bucket, s3):
    """A writer larger than one part starts a multipart upload as soon as a part fills (the
    object is not held in memory until close), and close completes it exactly."""
    path = f"{bucket}/w/streamed"
    part = 5 * MIB
    data = _data(3 * part + 12345, 7)
    with client.open(path, "wb") as f:
        f._part_size = part  # the smallest S3 allows, to keep the test small
        f.write(data[:part - 1])
        assert _uploads_in_progress(s3, bucket) == []  # nothing sent before a part fills
        f.write(data[part - 1:2 * part + 10])
        assert len(f._buffer) == 10  # two parts sent, only the rest is held
        assert [u["Key"] for u in _uploads_in_progress(s3, bucket)] == ["w/streamed"]
        with pytest.raises(pyfasts3.NoSuchKey):
            client.head(path)  # not visible before close
        for i in range(2 * part + 10, len(data), 999_999):  # odd-sized writes across parts
            f.write(data[i:i + 999_999])
        assert f.tell() == len(data)
    assert client.get(path).tobytes() == data
    assert _uploads_in_progress(s3, bucket) == []


def test_writer_exactly_one_part_and_typed_arrays(client, bucket):
    path = f"{bucket}/w/one-part"
    arr = np.arange(5 * MIB // 8, dtype=np.float64)
    with client.open(path, "wb") as f:
        f._part_size = 5 * MIB
        assert f.write(arr) == arr.nbytes  # any buffer, counted in bytes
        f.write(arr[::2])  # a strided view is copied, not refused
    assert client.get(path).tobytes() == arr.tobytes() + arr[::2].tobytes()


def test_writer_aborts_a_started_upload_on_exception(client, bucket, s3):
    path = f"{bucket}/w/aborted-multipart"
    with pytest.raises(RuntimeError, match="boom"):
        with client.open(path, "wb") as f:
            f._part_size = 5 * MIB
            f.write(_data(11 * MIB, 8))
            assert len(_uploads_in_progress(s3, bucket)) == 1
            raise RuntimeError("boom")
    assert _uploads_in_progress(s3, bucket) == []
    with pytest.raises(pyfasts3.NoSuchKey):
        client.head(path)


def test_writer_xb_refuses_an_existing_key_after_streaming(client, put, bucket, s3):
    path = put("w/exists", b"old")
    with pytest.raises(FileExistsError):
        with client.open(path, "xb") as f:
            f._part_size = 5 * MIB
            f.write(_data(11 * MIB, 9))
    assert client.get(path).tobytes() == b"old"
    assert _uploads_in_progress(s3, bucket) == []


def test_writer_refuses_a_part_size_below_s3s_minimum(client, bucket):
    with pytest.raises(ValueError, match="5 MiB"):
        pyfasts3.io.ObjectWriter(client, f"{bucket}/w/x", part_size=1 << 20)


def test_unsupported_modes(client, obj):
    path, _ = obj
    for mode in ("ab", "r+b", "w+b"):
        with pytest.raises(NotImplementedError, match="append|in place"):
            client.open(path, mode)
    for mode in ("rt", "wt", "q"):
        with pytest.raises(ValueError):
            client.open(path, mode)


def test_open_file_does_not_pickle(client, obj):
    path, _ = obj
    with client.open(path) as f, pytest.raises(TypeError):
        pickle.dumps(f)


def test_object_replaced_same_size_detected_at_end_of_scan(client, put, s3, bucket):
    data = _data(3 * MIB, 1)
    path = put("changing", data)
    with client.open(path, block_size=256 * KIB) as f:
        first = f.read(256 * KIB)
        s3.put_object(Bucket=bucket, Key="changing", Body=_data(3 * MIB, 2))
        with pytest.raises(pyfasts3.ObjectChanged):
            while f.read(256 * KIB):
                pass
    assert first == data[:256 * KIB]


def test_object_replaced_same_size_detected_at_the_next_random_read(client, put, s3, bucket):
    """Random access (a Parquet footer, then a column chunk) never mixes two versions: every
    fetch is pinned to the ETag seen at open."""
    data = _data(MIB, 5)
    path = put("random", data)
    with client.open(path, block_size=64 * KIB) as f:
        f.seek(-8, io.SEEK_END)
        assert f.read(8) == data[-8:]
        s3.put_object(Bucket=bucket, Key="random", Body=_data(MIB, 6))
        f.seek(100_000)
        with pytest.raises(pyfasts3.ObjectChanged):
            f.read(1000)


def test_object_shrunk_detected(client, put, s3, bucket):
    path = put("shrinks", _data(MIB, 1))
    with client.open(path) as f:
        s3.put_object(Bucket=bucket, Key="shrinks", Body=b"tiny")
        f.seek(1000)
        with pytest.raises(pyfasts3.ObjectChanged):
            f.read(10)


def test_tarfile_from_s3(client, put, tmp_path):
    members = {f"m{i}.bin": _data(1000 * i + 1, i) for i in range(20)}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    path = put("archive.tar", buf.getvalue())
    with client.open(path) as f, tarfile.open(fileobj=f, mode="r:") as tar:
        names = tar.getnames()
        assert names == list(members)
        # Random access to members.
        for name in reversed(names):
            assert tar.extractfile(name).read() == members[name]


def test_numpy_load(client, put):
    arr = np.random.default_rng(3).standard_normal((300, 257))
    buf = io.BytesIO()
    np.save(buf, arr)
    path = put("arr.npy", buf.getvalue())
    with client.open(path) as f:
        np.testing.assert_array_equal(np.load(f), arr)


def test_pyarrow_parquet_read_table(client, put):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    n = 50_000
    table = pa.table({"i": np.arange(n), "x": np.random.default_rng(1).random(n), "s": [f"row{i}" for i in range(n)]})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=10_000)
    path = put("t.parquet", sink.getvalue())
    with client.open(path) as f:
        assert pq.read_table(f).equals(table)
    with client.open(path) as f:
        got = pq.read_table(f, columns=["x"])
        assert got.column("x").equals(table.column("x"))


def test_module_level_open_uses_default_client(server_env, put):
    path = put("o", b"abc")
    with pyfasts3.default_client().open(path) as f:
        assert f.read() == b"abc"


def test_os_level_errors_are_clear(client, obj):
    path, _ = obj
    with client.open(path) as f:
        with pytest.raises(io.UnsupportedOperation):
            f.fileno()
        with pytest.raises(io.UnsupportedOperation):
            f.write(b"x")


def test_readinto_zero_sized_buffers(client, obj):
    path, _ = obj
    with client.open(path) as f:
        assert f.readinto(np.empty((0, 3), dtype=np.float32)) == 0
        assert f.raw.readinto(np.empty((0, 3), dtype=np.float32)) == 0
        assert f.readinto(bytearray()) == 0
        assert f.tell() == 0


def test_whole_small_object_costs_one_head_and_one_get(client, put, monkeypatch):
    """Opening costs one HEAD; reads are pinned to its ETag by If-Match, so no read, and no
    scan over several fetches, costs another."""
    path = put("small", b"x" * 1000)
    heads = []
    real = client.head
    monkeypatch.setattr(client, "head", lambda p: heads.append(p) or real(p))
    with client.open(path) as f:
        assert f.read() == b"x" * 1000
    assert len(heads) == 1
    heads.clear()
    big = put("big", _data(300 * KIB, 4))
    with client.open(big, block_size=64 * KIB) as f:
        while f.read(10 * KIB):
            pass
    assert len(heads) == 1


# -- download_to_file: large objects go window by window through reused buffers ----------------


class _GetIntoSpy:
    """Wraps a client, recording the (offset, length, if_match) of every get_into."""

    def __init__(self, client):
        self._client = client
        self.calls = []

    def get_into(self, buf, path, *, offset=0, if_match=None, **kw):
        self.calls.append((offset, memoryview(buf).nbytes, if_match))
        return self._client.get_into(buf, path, offset=offset, if_match=if_match, **kw)

    def __getattr__(self, name):
        return getattr(self._client, name)


@pytest.mark.parametrize("from_listing", [False, True], ids=["head", "listing"])
def test_download_to_file_in_windows_writes_every_byte(client, put, tmp_path, monkeypatch, from_listing):
    from pyfasts3 import io as pio

    window = 256 * KIB
    monkeypatch.setattr(pio, "DOWNLOAD_WINDOW", window)
    # Several writes per window, the last one of each shorter.
    monkeypatch.setattr(pio, "FILE_WRITE_CHUNK", 100 * KIB)
    data = _data(5 * window + 4321, 11)
    path = put("big/obj.bin", data)
    info = client.head(path)
    spy = _GetIntoSpy(client)
    kw = dict(size=info.size, etag=info.etag) if from_listing else {}
    local = tmp_path / "out.bin"
    assert pio.download_to_file(spy, path, str(local), **kw) == len(data)
    assert local.read_bytes() == data
    # One pinned read per window, at every window's offset; the last one shorter.
    assert sorted(spy.calls) == [(at, min(window, len(data) - at), info.etag) for at in range(0, len(data), window)]
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_download_to_file_in_windows_refuses_a_replaced_object(client, put, tmp_path, monkeypatch):
    from pyfasts3 import io as pio

    window = 256 * KIB
    monkeypatch.setattr(pio, "DOWNLOAD_WINDOW", window)
    path = put("big/changing.bin", _data(3 * window, 12))
    listed = client.head(path)
    put("big/changing.bin", _data(3 * window, 13))  # same size, new contents, new ETag
    local = tmp_path / "keep.bin"
    local.write_bytes(b"old contents")
    with pytest.raises(pyfasts3.ObjectChanged):
        pio.download_to_file(client, path, str(local), size=listed.size, etag=listed.etag)
    assert local.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.bin"]
