#!/usr/bin/env python3
"""pandas ``read_parquet`` of a ~256 MiB file through fsspec: pyfasts3 (``fasts3://``,
pyfasts3/fsspec.py) against s3fs (``s3://``), on a local versitygw (posix backend).

    python bench/parquet_read.py [--reps 5] [--mib 256] [--data-dir /var/tmp] [--out bench/.work/parquet_read]

The file is written with pyarrow (default writer settings: snappy, 1 Mi-row row groups) from a
table of numeric and string columns -- an int64 row id, a float64 and a float32 of random
values, an int32 count, a 16-value category string and a 12-character random hex string --
sized to ~``--mib`` MiB, and placed on the server (a plain file plus versitygw's ETag xattr, as
bench/workloads.py seeds). Both clients are given the same ``storage_options``, the ones an
s3fs user writes (key, secret, endpoint_url, client_kwargs region_name, config_kwargs path
addressing)::

    pd.read_parquet("fasts3://bucket/table.parquet", storage_options=opts)   # pyfasts3
    pd.read_parquet("s3://bucket/table.parquet", storage_options=opts)       # s3fs

One untimed read per client first (imports, filesystem instance, connection pool: what a
session pays once), then ``--reps`` timed reads per client, interleaved with the client order
rotated each repetition. Each read goes through pandas as a user calls it, so fsspec's
instance cache hands both clients their filesystem from the previous read. Every frame is
checked equal (``pandas.testing.assert_frame_equal``) to the one read from the local file,
which is checked against the table it was written from. A third row reads that local file (on
/var/tmp, page-cached) with the same call: the parquet decode cost both S3 rows include.

Reported: seconds (median, min, max), MB/s (file bytes / median seconds, 10^6 B) and the
process's CPU seconds per read (user + system, all threads: decode included). The server runs
on the same 2 shared cores: figures are indicative, comparable within one run only.
Writes ``<out>.json`` and ``<out>.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

MiB = 1 << 20
BUCKET = "parquetbench"
KEY = "table.parquet"
BYTES_PER_ROW = 41  # measured with these columns and pyarrow's defaults; refined below


def make_table(rows: int, seed: int = 20261130):
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    width = 12
    text = hexdigits[rng.integers(0, 16, rows * width, dtype=np.uint8)].tobytes()
    offsets = np.arange(0, (rows + 1) * width, width, dtype=np.int32)
    names = pa.StringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(text))
    categories = np.array([f"category-{i:02d}" for i in range(16)], dtype=object)
    return pa.table({
        "id": pa.array(np.arange(rows, dtype=np.int64)),
        "value": pa.array(rng.standard_normal(rows)),
        "ratio": pa.array(rng.random(rows, dtype=np.float32)),
        "count": pa.array(rng.integers(0, 1_000_000, rows, dtype=np.int32)),
        "category": pa.array(categories[rng.integers(0, 16, rows)].tolist(), type=pa.string()),
        "name": names,
    })


def write_parquet(path: Path, target_bytes: int):
    """A table whose parquet file is within a few percent of ``target_bytes``."""
    import pyarrow.parquet as pq

    rows = target_bytes // BYTES_PER_ROW
    for _ in range(3):
        table = make_table(rows)
        pq.write_table(table, path)
        size = path.stat().st_size
        if abs(size - target_bytes) / target_bytes < 0.03:
            break
        rows = int(rows * target_bytes / size)
    return table, path.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--mib", type=int, default=256, help="parquet file size to aim for")
    parser.add_argument("--data-dir", default="/var/tmp")
    parser.add_argument("--out", default=str(HERE / ".work" / "parquet_read"))
    parser.add_argument("--keep-data", action="store_true")
    args = parser.parse_args()

    import boto3
    import fsspec
    import pandas as pd
    import pyarrow
    import pyarrow.parquet
    import s3fs

    import pyfasts3
    import pyfasts3.fsspec  # registers fasts3://
    import servers
    from workloads import _obj

    # s3:// must stay s3fs's here (pyfasts3 only takes it over through register_s3()).
    assert fsspec.get_filesystem_class("s3") is s3fs.S3FileSystem, fsspec.get_filesystem_class("s3")
    assert fsspec.get_filesystem_class("fasts3") is pyfasts3.fsspec.FastS3FileSystem

    run_dir = servers.make_root(args.data_dir)
    data = run_dir / "server"
    data.mkdir()
    data.chmod(0o755)
    lane = servers.start_versitygw(data, run_dir / "versitygw.log")
    try:
        boto3.client("s3", endpoint_url=lane.endpoint_url, region_name=lane.region,
                     aws_access_key_id=lane.access_key_id,
                     aws_secret_access_key=lane.secret_access_key).create_bucket(Bucket=BUCKET)
        local = run_dir / KEY
        t0 = time.perf_counter()
        table, size = write_parquet(local, args.mib * MiB)
        blob = local.read_bytes()
        _obj(data / BUCKET, KEY, blob)
        del blob
        os.sync()
        print(f"wrote {size / MiB:.1f} MiB parquet ({table.num_rows:,} rows, {table.num_columns} columns, "
              f"{pyarrow.parquet.ParquetFile(local).num_row_groups} row groups) in {time.perf_counter() - t0:.1f} s",
              flush=True)

        reference = table.to_pandas()
        del table
        opts = {
            "key": lane.access_key_id, "secret": lane.secret_access_key, "endpoint_url": lane.endpoint_url,
            "client_kwargs": {"region_name": lane.region}, "config_kwargs": {"s3": {"addressing_style": "path"}},
        }
        readers = {
            "pyfasts3 (fasts3://)": lambda: pd.read_parquet(f"fasts3://{BUCKET}/{KEY}", storage_options=opts),
            "s3fs (s3://)": lambda: pd.read_parquet(f"s3://{BUCKET}/{KEY}", storage_options=opts),
            "local file (decode only)": lambda: pd.read_parquet(str(local)),
        }
        names = list(readers)
        # The local read is the reference every S3 read is compared with; it is itself checked
        # against the frame the file was written from.
        ref = readers["local file (decode only)"]()
        pd.testing.assert_frame_equal(ref, reference)
        del reference
        first = {}
        for name in names:
            t0 = time.perf_counter()
            df = readers[name]()
            first[name] = time.perf_counter() - t0
            pd.testing.assert_frame_equal(df, ref)
            del df
            print(f"warm-up {name:26} {first[name]:6.2f} s (untimed in the table)", flush=True)
        samples = {n: [] for n in names}
        for rep in range(args.reps):
            order = names[rep % len(names):] + names[:rep % len(names)]
            for name in order:
                cpu0, t0 = time.process_time(), time.perf_counter()
                df = readers[name]()
                wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                pd.testing.assert_frame_equal(df, ref)
                del df
                samples[name].append({"rep": rep, "seconds": wall, "cpu_s": cpu})
                print(f"rep {rep} {name:26} {wall:6.2f} s {size / wall / 1e6:7,.0f} MB/s  CPU {cpu:5.2f} s", flush=True)

        results = {}
        for name in names:
            secs = [s["seconds"] for s in samples[name]]
            results[name] = {"s_median": statistics.median(secs), "s_min": min(secs), "s_max": max(secs),
                             "mb_s": size / statistics.median(secs) / 1e6,
                             "cpu_s_median": statistics.median(s["cpu_s"] for s in samples[name]),
                             "first_read_s": first[name]}
        versions = {"pyfasts3": pyfasts3.__version__, "s3fs": s3fs.__version__, "fsspec": fsspec.__version__,
                    "pandas": pd.__version__, "pyarrow": pyarrow.__version__, "versitygw": lane.version}
        ours = results[names[0]]["s_median"]
        lines = [
            f"{size / MiB:.1f} MiB parquet, {len(ref):,} rows x {len(ref.columns)} columns; versitygw {lane.version} "
            f"(127.0.0.1); {args.reps} interleaved reps after one untimed read each; "
            f"{os.cpu_count()} cores shared.",
            "",
            "| reader | s median | min-max | MB/s | CPU s | s3fs / this |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        theirs = results[names[1]]["s_median"]
        for name in names:
            r = results[name]
            lines.append(f"| {name} | {r['s_median']:.2f} | {r['s_min']:.2f}-{r['s_max']:.2f} | {r['mb_s']:,.0f} | "
                         f"{r['cpu_s_median']:.2f} | {theirs / r['s_median']:.2f}x |")
        lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "."]
        table_md = "\n".join(lines) + "\n"
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps({
            "meta": {"size": size, "rows": len(ref), "versions": versions, "reps": args.reps,
                     "host": f"{os.cpu_count()} cores, {platform.platform()}", "storage_options_keys": sorted(opts)},
            "results": results, "samples": samples, "pyfasts3_speedup": theirs / ours}, indent=1) + "\n")
        out.with_suffix(".md").write_text(table_md)
        print("\n" + table_md)
        print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    finally:
        lane.stop()
        if not args.keep_data:
            shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
