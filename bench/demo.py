#!/usr/bin/env python3
"""The main job, in one command (./dev.sh demo): start versitygw (a real, signature-checking
S3 server) on 127.0.0.1, upload sample objects, fetch them with pyfasts3 and with boto3
side by side, check every byte, and print sizes, MB/s and the ratio.

Repetitions are interleaved (pyfasts3, boto3, pyfasts3, ...) and medians reported, because
this machine is shared and noisy; the ratio from one run is the figure to read. The full
benchmark harness (more peers, more workloads) lives in bench/ as well.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import pyfasts3  # noqa: E402
from s3servers import start_moto, start_versitygw  # noqa: E402

MiB = 1024 * 1024


def human(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", MiB), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} B"


def timed(fn):
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", choices=["versitygw", "moto"], default="versitygw")
    parser.add_argument("--sizes", default="4096,1048576,67108864,268435456",
                        help="object sizes in bytes, comma-separated")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=200, help="objects of 256 KiB for get_many")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    server = start_versitygw() if args.server == "versitygw" else start_moto()
    try:
        s3 = server.boto3_client()
        bucket = "demo"
        s3.create_bucket(Bucket=bucket)
        rng = np.random.default_rng(0)
        digests = {}
        print(f"server: {server.name} at {server.endpoint_url}; uploading sample objects...")
        for size in sizes:
            data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
            s3.put_object(Bucket=bucket, Key=f"obj-{size}", Body=data)
            digests[size] = hashlib.sha256(data).hexdigest()
        batch = [f"batch/{i:05d}" for i in range(args.batch)]
        small = rng.integers(0, 256, 256 * 1024, dtype=np.uint8).tobytes()
        for key in batch:
            s3.put_object(Bucket=bucket, Key=key, Body=small)

        client = pyfasts3.Client(server.endpoint_url, region=server.region,
                                 access_key_id=server.access_key_id,
                                 secret_access_key=server.secret_access_key)
        print(f"pyfasts3 {pyfasts3.__version__}; boto3 from the same process; {args.reps} interleaved reps, medians\n")
        print(f"{'workload':<28}{'pyfasts3 MB/s':>15}{'boto3 MB/s':>13}{'ratio':>8}  bytes checked")
        for size in sizes:
            key = f"obj-{size}"
            buf = np.empty(size, dtype=np.uint8)
            buf.fill(0)  # fault the pages in once, outside the timing
            ours, theirs = [], []
            for _ in range(args.reps):
                dt, n = timed(lambda: client.get_into(buf, f"{bucket}/{key}"))
                assert n == size and hashlib.sha256(buf).hexdigest() == digests[size], "pyfasts3 returned wrong bytes"
                ours.append(size / dt / 1e6)
                dt, body = timed(lambda: s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                assert hashlib.sha256(body).hexdigest() == digests[size], "boto3 returned wrong bytes"
                theirs.append(size / dt / 1e6)
                del body
            a, b = statistics.median(ours), statistics.median(theirs)
            print(f"{'get_into ' + human(size):<28}{a:>15,.0f}{b:>13,.0f}{a / b:>7.2f}x  sha256 ok")

        total = len(batch) * len(small)
        ours, theirs = [], []
        digest = hashlib.sha256(small).hexdigest()
        for _ in range(max(1, args.reps // 2)):
            dt, arrays = timed(lambda: client.get_many([f"{bucket}/{k}" for k in batch]))
            assert all(hashlib.sha256(a).hexdigest() == digest for a in arrays)
            ours.append(total / dt / 1e6)
            dt, bodies = timed(lambda: [s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in batch])
            assert all(hashlib.sha256(x).hexdigest() == digest for x in bodies)
            theirs.append(total / dt / 1e6)
        a, b = statistics.median(ours), statistics.median(theirs)
        label = f"get_many {len(batch)} x 256 KiB"
        print(f"{label:<28}{a:>15,.0f}{b:>13,.0f}{a / b:>7.2f}x  sha256 ok (boto3: sequential loop)")

        info = client.head(f"{bucket}/obj-{sizes[-1]}")
        keys = client.list_keys(f"{bucket}/batch/")
        print(f"\nhead: {info.key} {human(info.size)} etag={info.etag} modified={info.last_modified:%Y-%m-%d %H:%M:%S}Z")
        print(f"list_keys('{bucket}/batch/'): {len(keys)} keys, first {keys[0]!r}, last {keys[-1]!r}")
        client.close()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
