"""pyfasts3.fsspec.FastS3FileSystem: fsspec's read behaviour on both server lanes, and the
libraries that reach S3 through fsspec (pandas, pyarrow datasets, zarr)."""
from __future__ import annotations

import io
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

fsspec = pytest.importorskip("fsspec")
from fsspec.spec import AbstractFileSystem  # noqa: E402

import pyfasts3  # noqa: E402
from pyfasts3.fsspec import FastS3FileSystem, register_s3  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _data(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def storage_options(server, **extra) -> dict:
    """What an s3fs user passes."""
    return {"key": server.access_key_id, "secret": server.secret_access_key,
            "endpoint_url": server.endpoint_url, "client_kwargs": {"region_name": server.region}, **extra}


@pytest.fixture
def fs(server):
    return FastS3FileSystem(**storage_options(server), skip_instance_cache=True)


TREE = {
    "a.txt": b"top level",
    "dir/b.bin": _data(200_000, 1),
    "dir/sub/c.csv": b"x,y\n1,2\n",
    "dir/sub/deep/d.txt": b"deep",
    "dir2/e": b"",
    "odd dir/key with space+%#?.txt": b"odd",
}


@pytest.fixture
def tree(s3, bucket):
    for key, data in TREE.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)
    return bucket


def test_ls(fs, tree):
    b = tree
    assert fs.ls(b, detail=False) == [f"{b}/a.txt", f"{b}/dir", f"{b}/dir2", f"{b}/odd dir"]
    detail = {e["name"]: e for e in fs.ls(f"fasts3://{b}/dir/")}
    assert set(detail) == {f"{b}/dir/b.bin", f"{b}/dir/sub"}
    assert detail[f"{b}/dir/b.bin"]["type"] == "file"
    assert detail[f"{b}/dir/b.bin"]["size"] == 200_000
    assert detail[f"{b}/dir/b.bin"]["ETag"]
    assert detail[f"{b}/dir/sub"]["type"] == "directory"
    # ls of a file is the file, of nothing FileNotFoundError.
    assert fs.ls(f"{b}/a.txt", detail=False) == [f"{b}/a.txt"]
    with pytest.raises(FileNotFoundError):
        fs.ls(f"{b}/nothing")
    with pytest.raises(FileNotFoundError):
        fs.ls("no-such-bucket-pyfasts3")


def test_info_exists_isdir_isfile(fs, tree):
    b = tree
    info = fs.info(f"{b}/dir/b.bin")
    assert (info["type"], info["size"], info["name"]) == ("file", 200_000, f"{b}/dir/b.bin")
    assert info["LastModified"] is not None
    assert fs.info(f"{b}/dir/sub")["type"] == "directory"
    assert fs.info(b)["type"] == "directory"
    assert fs.info(f"{b}/dir2/e")["size"] == 0
    with pytest.raises(FileNotFoundError):
        fs.info(f"{b}/dir/b")
    assert fs.exists(f"{b}/odd dir/key with space+%#?.txt")
    assert not fs.exists(f"{b}/missing")
    assert fs.isdir(f"{b}/dir") and not fs.isfile(f"{b}/dir")
    assert fs.isfile(f"{b}/a.txt") and not fs.isdir(f"{b}/a.txt")
    assert fs.size(f"{b}/dir/b.bin") == 200_000
    assert fs.ukey(f"{b}/a.txt") == fs.info(f"{b}/a.txt")["ETag"]
    assert fs.modified(f"{b}/a.txt") == fs.info(f"{b}/a.txt")["LastModified"]


@pytest.mark.parametrize("root", ["", "/dir", "/dir/sub", "/odd dir", "/a.txt", "/missing"])
@pytest.mark.parametrize("withdirs", [False, True])
def test_find_matches_fsspec_walk_over_ls(fs, tree, root, withdirs):
    """The one-listing find agrees with fsspec's generic find (a walk over ls)."""
    path = tree + root
    ours = fs.find(path, withdirs=withdirs, detail=True)
    generic = AbstractFileSystem.find(fs, path, withdirs=withdirs, detail=True)
    assert list(ours) == list(generic)
    for name, entry in ours.items():
        if generic[name]:  # fsspec's find gives {} for a file found as the path itself
            assert entry["type"] == generic[name]["type"] and entry["size"] == generic[name]["size"], name


def test_find_content(fs, tree):
    b = tree
    assert fs.find(b) == sorted(f"{b}/{k}" for k in TREE)
    assert fs.find(f"{b}/dir", maxdepth=1) == [f"{b}/dir/b.bin"]
    assert fs.find(f"{b}/dir", maxdepth=2) == [f"{b}/dir/b.bin", f"{b}/dir/sub/c.csv"]


@pytest.mark.parametrize("root", ["", "/dir", "/dir/sub/deep"])
@pytest.mark.parametrize("topdown", [True, False])
@pytest.mark.parametrize("detail", [False, True])
def test_walk_matches_fsspec_walk_over_ls(fs, tree, root, topdown, detail):
    path = tree + root
    ours = list(fs.walk(path, topdown=topdown, detail=detail))
    generic = list(AbstractFileSystem.walk(fs, path, topdown=topdown, detail=detail))
    if detail:
        strip = lambda d: {k: (v["type"], v["size"]) for k, v in d.items()}  # noqa: E731
        ours = [(p, strip(d), strip(f)) for p, d, f in ours]
        generic = [(p, strip(d), strip(f)) for p, d, f in generic]
    assert ours == generic


def test_glob(fs, tree):
    b = tree
    assert fs.glob(f"{b}/*.txt") == [f"{b}/a.txt"]
    assert fs.glob(f"fasts3://{b}/dir/**/*.txt") == [f"{b}/dir/sub/deep/d.txt"]
    assert fs.glob(f"{b}/dir/*") == [f"{b}/dir/b.bin", f"{b}/dir/sub"]
    assert fs.glob(f"{b}/*/sub/*.csv") == [f"{b}/dir/sub/c.csv"]
    assert fs.glob(f"{b}/**") == AbstractFileSystem.glob(fs, f"{b}/**")


@pytest.mark.parametrize("start,end", [
    (None, None), (0, None), (None, 10), (5, 100), (100_000, None), (199_999, 200_000), (150_000, 300_000),
    (-10, None), (-100, -50), (10, -10), (300_000, None), (50, 50), (60, 50),
])
def test_cat_file_ranges_match_slices(fs, tree, start, end):
    data = TREE["dir/b.bin"]
    assert fs.cat_file(f"{tree}/dir/b.bin", start=start, end=end) == data[slice(start, end)]


def test_cat_file_missing(fs, tree):
    with pytest.raises(FileNotFoundError):
        fs.cat_file(f"{tree}/missing")
    with pytest.raises(FileNotFoundError):
        fs.cat_file(f"{tree}/missing", 5, 5)


def test_cat_ranges_and_cat(fs, tree):
    b = tree
    data = TREE["dir/b.bin"]
    starts = list(range(0, 200_000, 9_999))
    paths = [f"{b}/dir/b.bin"] * len(starts) + [f"{b}/a.txt", f"{b}/missing"]
    ends = [s + 777 for s in starts] + [3, 4]
    out = fs.cat_ranges(paths, starts + [0, 0], ends)
    assert out[:-2] == [data[s:s + 777] for s in starts]
    assert out[-2] == b"top"
    assert isinstance(out[-1], FileNotFoundError)
    with pytest.raises(FileNotFoundError):
        fs.cat_ranges(paths, starts + [0, 0], ends, on_error="raise")

    assert fs.cat(f"{b}/dir/sub", recursive=True) == {
        f"{b}/dir/sub/c.csv": TREE["dir/sub/c.csv"], f"{b}/dir/sub/deep/d.txt": TREE["dir/sub/deep/d.txt"]}
    assert fs.cat(f"{b}/a.txt") == b"top level"
    assert fs.cat([f"{b}/a.txt", f"{b}/missing"], on_error="omit") == {f"{b}/a.txt": b"top level"}
    got = fs.cat([f"{b}/a.txt", f"{b}/missing"], on_error="return")
    assert got[f"{b}/a.txt"] == b"top level" and isinstance(got[f"{b}/missing"], FileNotFoundError)
    with pytest.raises(FileNotFoundError):
        fs.cat([f"{b}/a.txt", f"{b}/missing"])


def test_open_and_get_file(fs, tree, tmp_path):
    b = tree
    data = TREE["dir/b.bin"]
    with fs.open(f"fasts3://{b}/dir/b.bin", "rb") as f:
        assert f.size == len(data)
        f.seek(1000)
        assert f.read(10) == data[1000:1010]
    with fs.open(f"{b}/dir/sub/c.csv", "r") as f:  # text mode through fsspec
        assert f.read() == "x,y\n1,2\n"
    fs.get_file(f"{b}/dir/b.bin", str(tmp_path / "b.bin"))
    assert (tmp_path / "b.bin").read_bytes() == data
    fs.get(f"{b}/dir/", str(tmp_path / "copy"), recursive=True)
    assert (tmp_path / "copy" / "sub" / "deep" / "d.txt").read_bytes() == b"deep"
    assert not list(tmp_path.rglob("*.pyfasts3-part"))


def test_pipe_and_pipe_file_round_trip(fs, bucket):
    b = bucket
    data = _data(300_000, 7)
    fs.pipe_file(f"fasts3://{b}/p/one.bin", data)
    assert fs.cat_file(f"{b}/p/one.bin") == data
    fs.pipe({f"{b}/p/two": b"2", f"{b}/p/empty": b""})
    assert fs.cat(f"{b}/p", recursive=True) == {f"{b}/p/empty": b"", f"{b}/p/one.bin": data, f"{b}/p/two": b"2"}
    fs.pipe_file(f"{b}/p/two", b"overwritten")
    assert fs.cat_file(f"{b}/p/two") == b"overwritten"
    with pytest.raises(FileExistsError):
        fs.pipe_file(f"{b}/p/two", b"again", mode="create")
    assert fs.cat_file(f"{b}/p/two") == b"overwritten"
    fs.pipe_file(f"{b}/p/new", b"created", mode="create")
    assert fs.cat_file(f"{b}/p/new") == b"created"


def test_put_file_and_put_recursive(fs, bucket, tmp_path):
    b = bucket
    data = _data(1_000_000, 8)
    (tmp_path / "big.bin").write_bytes(data)
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "x.txt").write_bytes(b"x")
    (tmp_path / "d" / "sub" / "y.txt").write_bytes(b"yy")
    fs.put_file(str(tmp_path / "big.bin"), f"{b}/up/big.bin")
    fs.put_file(str(tmp_path / "empty"), f"{b}/up/empty")
    assert fs.cat_file(f"{b}/up/big.bin") == data
    assert fs.cat_file(f"{b}/up/empty") == b""
    fs.put(str(tmp_path / "d"), f"{b}/tree", recursive=True)
    assert fs.find(f"{b}/tree") == [f"{b}/tree/sub/y.txt", f"{b}/tree/x.txt"]
    assert fs.cat_file(f"{b}/tree/sub/y.txt") == b"yy"
    with pytest.raises(FileNotFoundError):
        fs.put_file(str(tmp_path / "missing"), f"{b}/up/missing")


def test_rm_file_rm_and_recursive(fs, tree, server):
    b = tree
    fs.rm_file(f"{b}/a.txt")
    assert not fs.exists(f"{b}/a.txt")
    fs.rm(f"fasts3://{b}/dir2/e")
    assert not fs.exists(f"{b}/dir2/e")
    with pytest.raises(FileNotFoundError):
        fs.rm(f"{b}/missing")
    fs.rm(f"{b}/dir", recursive=True)
    assert fs.find(b) == [f"{b}/odd dir/key with space+%#?.txt"]
    fs.rm([f"{b}/odd dir/key with space+%#?.txt"])
    assert fs.find(b) == []
    if server.name.startswith("versitygw"):
        return  # its posix backend cannot store "both" and "both/inner" together
    # A key that is both an object and a directory: recursive rm deletes both.
    fs.pipe({f"{b}/both": b"file", f"{b}/both/inner": b"inner", f"{b}/bothx": b"kept"})
    fs.rm(f"{b}/both", recursive=True)
    assert fs.find(b) == [f"{b}/bothx"]


def test_rm_reports_failures(fs, tree, monkeypatch):
    """A key the server refuses is not silently dropped: rm raises, naming it."""
    from pyfasts3.errors import AccessDenied

    b = tree
    refused = f"{b}/dir/b.bin"

    def delete_many(paths):
        return [(p, AccessDenied("denied", code="AccessDenied", bucket=b, key=p)) for p in paths if p == refused]

    monkeypatch.setattr(fs.client, "delete_many", delete_many)
    with pytest.raises(OSError, match="b.bin"):
        fs.rm(f"{b}/dir", recursive=True)


def test_cp_file_mv_and_touch(fs, tree):
    b = tree
    fs.cp_file(f"{b}/dir/b.bin", f"{b}/copy/b.bin")
    assert fs.cat_file(f"{b}/copy/b.bin") == TREE["dir/b.bin"]
    fs.copy(f"{b}/dir/sub", f"{b}/copy/sub", recursive=True)
    assert fs.find(f"{b}/copy/sub") == [f"{b}/copy/sub/c.csv", f"{b}/copy/sub/deep/d.txt"]
    fs.mv(f"{b}/a.txt", f"{b}/moved.txt")
    assert fs.cat_file(f"{b}/moved.txt") == b"top level" and not fs.exists(f"{b}/a.txt")
    with pytest.raises(FileNotFoundError):
        fs.cp_file(f"{b}/missing", f"{b}/x")
    fs.touch(f"{b}/t")
    assert fs.cat_file(f"{b}/t") == b""
    fs.touch(f"{b}/moved.txt")  # truncate=True: empties it
    assert fs.cat_file(f"{b}/moved.txt") == b""
    with pytest.raises(ValueError):
        fs.touch(f"{b}/dir/b.bin", truncate=False)
    assert fs.cat_file(f"{b}/dir/b.bin") == TREE["dir/b.bin"]


def test_open_wb_uploads_on_close_and_nothing_on_error(fs, bucket):
    b = bucket
    data = _data(500_000, 9)
    with fs.open(f"{b}/w/obj", "wb") as f:
        f.write(data[:1000])
        f.write(memoryview(data)[1000:])
        assert not fs.exists(f"{b}/w/obj")  # buffered until close
    assert fs.cat_file(f"{b}/w/obj") == data
    with fs.open(f"{b}/w/t.txt", "w") as f:  # text mode through fsspec
        f.write("hello\n")
    assert fs.cat_file(f"{b}/w/t.txt") == b"hello\n"
    with pytest.raises(RuntimeError):
        with fs.open(f"{b}/w/aborted", "wb") as f:
            f.write(b"partial")
            raise RuntimeError("boom")
    assert not fs.exists(f"{b}/w/aborted")
    with pytest.raises(NotImplementedError, match="in place"):
        fs.open(f"{b}/w/obj", "r+b")


def test_bucket_level_writes_not_available(fs, tree):
    with pytest.raises(NotImplementedError, match="bucket"):
        fs.mkdir("new-bucket-pyfasts3")
    fs.mkdir(f"{tree}/some/dir")  # no-op under a bucket, as in s3fs


def test_storage_options(server, tree):
    b = tree
    fs = fsspec.filesystem("fasts3", **storage_options(server))
    assert isinstance(fs, FastS3FileSystem)
    assert fs.cat_file(f"{b}/a.txt") == b"top level"
    # botocore-style options s3fs users pass.
    fs2 = fsspec.filesystem("fasts3", key=server.access_key_id, secret=server.secret_access_key,
                            client_kwargs={"endpoint_url": server.endpoint_url, "region_name": server.region},
                            config_kwargs={"s3": {"addressing_style": "path"}, "retries": {"max_attempts": 3},
                                           "max_pool_connections": 4},
                            use_listings_cache=False, default_cache_type="readahead")
    assert fs2.client._init_kwargs["path_style"] is True
    assert fs2.client._init_kwargs["max_concurrency"] == 4
    assert fs2.ls(b, detail=False)[0] == f"{b}/a.txt"
    fs3, path = fsspec.url_to_fs(f"fasts3://{b}/a.txt", **storage_options(server))
    assert isinstance(fs3, FastS3FileSystem) and path == f"{b}/a.txt"
    with fsspec.open(f"fasts3://{b}/dir/sub/c.csv", "rt", **storage_options(server)) as f:
        assert f.read() == "x,y\n1,2\n"
    with pytest.raises(TypeError, match="no_such_option"):
        FastS3FileSystem(no_such_option=1, skip_instance_cache=True)
    with pytest.raises(TypeError, match="verify"):
        FastS3FileSystem(client_kwargs={"verify": False}, skip_instance_cache=True)
    with pytest.raises(NotImplementedError, match="version_aware"):
        FastS3FileSystem(version_aware=True, skip_instance_cache=True)


def test_token_and_anon_reach_the_client(server):
    fs = FastS3FileSystem(key="k", secret="s", token="t", endpoint_url=server.endpoint_url, skip_instance_cache=True)
    kw = fs.client._init_kwargs
    assert (kw["access_key_id"], kw["secret_access_key"], kw["session_token"]) == ("k", "s", "t")
    assert FastS3FileSystem(anon=True, endpoint_url=server.endpoint_url,
                            skip_instance_cache=True).client._init_kwargs["anonymous"] is True


def test_filesystem_pickles(fs, tree):
    clone = pickle.loads(pickle.dumps(fs))
    assert clone.cat_file(f"{tree}/a.txt") == b"top level"


def test_register_s3(server, tree):
    registry = sys.modules["fsspec.registry"]._registry
    saved = {k: registry.get(k) for k in ("s3", "s3a")}
    try:
        register_s3()
        fs = fsspec.filesystem("s3", **storage_options(server), skip_instance_cache=True)
        assert isinstance(fs, FastS3FileSystem)
        with fsspec.open(f"s3://{tree}/a.txt", **storage_options(server)) as f:
            assert f.read() == b"top level"
    finally:
        for k, v in saved.items():
            if v is None:
                registry.pop(k, None)
            else:
                registry[k] = v


def test_entry_points_declared():
    """pyproject.toml registers the protocol with fsspec and the console script."""
    import importlib
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    target = project["entry-points"]["fsspec.specs"]["fasts3"]
    module, _, attr = target.partition(":")
    assert getattr(importlib.import_module(module), attr) is FastS3FileSystem
    module, _, attr = project["scripts"]["pyfasts3"].partition(":")
    assert callable(getattr(importlib.import_module(module), attr))


# -- libraries on top of fsspec --------------------------------------------------------


def test_pandas_read_parquet_and_csv(server, bucket, s3):
    pd = pytest.importorskip("pandas")
    n = 20_000
    df = pd.DataFrame({"i": np.arange(n), "x": np.random.default_rng(0).random(n),
                       "s": [f"r{i}" for i in range(n)]})
    buf = io.BytesIO()
    df.to_parquet(buf, row_group_size=5_000)
    s3.put_object(Bucket=bucket, Key="t/df.parquet", Body=buf.getvalue())
    s3.put_object(Bucket=bucket, Key="t/df.csv", Body=df.to_csv(index=False).encode())
    opts = storage_options(server)
    pd.testing.assert_frame_equal(pd.read_parquet(f"fasts3://{bucket}/t/df.parquet", storage_options=opts), df)
    pd.testing.assert_frame_equal(
        pd.read_parquet(f"fasts3://{bucket}/t/df.parquet", columns=["x"], storage_options=opts), df[["x"]])
    pd.testing.assert_frame_equal(pd.read_csv(f"fasts3://{bucket}/t/df.csv", storage_options=opts), df)


def test_pandas_to_parquet_and_to_csv_round_trip(server, bucket):
    pd = pytest.importorskip("pandas")
    n = 20_000
    df = pd.DataFrame({"i": np.arange(n), "x": np.random.default_rng(1).random(n),
                       "s": [f"r{i}" for i in range(n)]})
    opts = storage_options(server)
    df.to_parquet(f"fasts3://{bucket}/w/df.parquet", storage_options=opts, row_group_size=5_000)
    df.to_csv(f"fasts3://{bucket}/w/df.csv", index=False, storage_options=opts)
    pd.testing.assert_frame_equal(pd.read_parquet(f"fasts3://{bucket}/w/df.parquet", storage_options=opts), df)
    pd.testing.assert_frame_equal(pd.read_csv(f"fasts3://{bucket}/w/df.csv", storage_options=opts), df)


def test_pyarrow_dataset_over_prefix(fs, bucket, s3):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    ds = pytest.importorskip("pyarrow.dataset")
    tables = []
    for part in range(4):
        t = pa.table({"v": np.arange(1000) + 1000 * part})
        sink = io.BytesIO()
        pq.write_table(t, sink)
        s3.put_object(Bucket=bucket, Key=f"ds/part={part}/data.parquet", Body=sink.getvalue())
        tables.append(t)
    s3.put_object(Bucket=bucket, Key="other/not-in-dataset.parquet", Body=b"junk")
    dataset = ds.dataset(f"{bucket}/ds", filesystem=fs, format="parquet", partitioning="hive")
    got = dataset.to_table().sort_by("v")
    assert got.column("v").to_pylist() == list(range(4000))
    assert got.column("part").to_pylist() == [i // 1000 for i in range(4000)]
    filtered = dataset.to_table(filter=ds.field("part") == 2)
    assert sorted(filtered.column("v").to_pylist()) == list(range(2000, 3000))


def test_zarr_array_written_with_boto3(server, bucket, s3, tmp_path):
    zarr = pytest.importorskip("zarr")
    arr = np.random.default_rng(5).standard_normal((120, 90)).astype("float32")
    local = zarr.open_array(str(tmp_path / "a.zarr"), mode="w", shape=arr.shape, chunks=(50, 40),
                            dtype="float32", zarr_format=3)
    local[:] = arr
    for f in (tmp_path / "a.zarr").rglob("*"):
        if f.is_file():
            s3.put_object(Bucket=bucket, Key=f"z/a.zarr/{f.relative_to(tmp_path / 'a.zarr').as_posix()}",
                          Body=f.read_bytes())
    z = zarr.open_array(f"fasts3://{bucket}/z/a.zarr", mode="r", storage_options=storage_options(server))
    assert z.shape == arr.shape and z.chunks == (50, 40)
    np.testing.assert_array_equal(z[:], arr)
    np.testing.assert_array_equal(z[7:93, 13:61], arr[7:93, 13:61])


def test_fsspec_import_does_not_load_with_pyfasts3():
    """`import pyfasts3` stays free of fsspec (it is an optional dependency)."""
    import subprocess

    code = "import sys, pyfasts3; sys.exit('fsspec' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
    assert pyfasts3.Client


def test_instances_share_one_client_per_configuration(server):
    """fsspec caches one instance per thread: they must still share one Client (one
    connection pool and concurrency budget), and different options get different ones."""
    import threading

    made = []
    opts = storage_options(server)
    t = threading.Thread(target=lambda: made.append(fsspec.filesystem("fasts3", **opts)))
    t.start()
    t.join()
    here = fsspec.filesystem("fasts3", **opts)
    assert made[0] is not here  # fsspec's per-thread instances
    assert made[0].client is here.client
    other = fsspec.filesystem("fasts3", **opts, max_concurrency=3)
    assert other.client is not here.client
