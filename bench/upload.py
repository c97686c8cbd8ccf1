#!/usr/bin/env python3
"""Upload from memory: pyfasts3 ``put_from`` against boto3 ``upload_fileobj`` and obstore
``put`` on a local versitygw (posix backend), interleaved repetitions, medians.

    python bench/upload.py [--sizes 64,1024] [--reps 5] [--root /var/tmp]
    python bench/upload.py --threshold-sweep [--reps 5]   # one PUT vs multipart, 4-64 MiB
    python bench/upload.py --small-puts 4 [--count 500] [--reps 5]   # sequential 4 KiB PUTs

Reports, per size and client: median MB/s (min-max) and client CPU seconds per GB (this
process's user+system time over the upload, all threads). The server runs on the same
machine, so its CPU and disk bound everyone alike; rows are comparable within one run only.
Each client uses its defaults (pyfasts3: 16 MiB threshold, 8 MiB parts, 16 in flight;
boto3 TransferConfig: 8 MiB parts, 10 threads; obstore: its multipart put, 5 MiB chunks,
12 in flight).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, List, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyfasts3  # noqa: E402
from servers import make_root, start_versitygw  # noqa: E402

BUCKET = "upload-bench"


@dataclass
class Clients:
    """Every client of one run, built once against the lane, the bucket created."""
    lane: Any
    s3: Any  # boto3
    fast: pyfasts3.Client
    store: Any  # obstore S3Store on BUCKET


@contextlib.contextmanager
def versitygw_clients(args) -> Iterator[Clients]:
    """A versitygw lane under ``args.root`` with the bucket made, and every client on it."""
    import boto3
    from obstore.store import S3Store

    root = make_root(args.root)
    lane = start_versitygw(root, root.parent / f"{root.name}.log")
    try:
        s3 = boto3.client("s3", endpoint_url=lane.endpoint_url, region_name=lane.region,
                          aws_access_key_id=lane.access_key_id, aws_secret_access_key=lane.secret_access_key)
        s3.create_bucket(Bucket=BUCKET)
        fast = pyfasts3.Client(lane.endpoint_url, region=lane.region, access_key_id=lane.access_key_id,
                               secret_access_key=lane.secret_access_key)
        store = S3Store(BUCKET, endpoint=lane.endpoint_url, region=lane.region, access_key_id=lane.access_key_id,
                        secret_access_key=lane.secret_access_key, virtual_hosted_style_request=False,
                        client_options={"allow_http": True})
        yield Clients(lane, s3, fast, store)
    finally:
        lane.stop()


def spread(samples: List[Tuple[float, float]], cost_format: str = "9.2f") -> str:
    """'median (min-max)' of the rates, then the median cost, of (rate, cost) samples."""
    rates = [r for r, _ in samples]
    costs = [c for _, c in samples]
    return (f"{statistics.median(rates):12,.0f} {f'({min(rates):,.0f}-{max(rates):,.0f})':>16} "
            f"{statistics.median(costs):{cost_format}}")


def rotated(names: List[str], rep: int) -> List[str]:
    """The clients' order in repetition ``rep``: rotated, so drift hits everyone alike."""
    return names[rep % len(names):] + names[: rep % len(names)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,1024", help="sizes in MiB, comma-separated")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--root", default=None, help="parent directory of the server's data")
    parser.add_argument("--threshold-sweep", action="store_true",
                        help="pyfasts3 only: one PUT against multipart (8 MiB parts) at 4-64 MiB")
    parser.add_argument("--small-puts", type=int, metavar="KIB", default=None,
                        help="sequential PUTs of KIB KiB each: pyfasts3 put, boto3 put_object, obstore put")
    parser.add_argument("--count", type=int, default=500, help="PUTs per client per rep (--small-puts)")
    args = parser.parse_args()
    if args.threshold_sweep:
        return threshold_sweep(args)
    if args.small_puts:
        return small_puts(args)
    import obstore
    from boto3.s3.transfer import TransferConfig

    with versitygw_clients(args) as c:
        config = TransferConfig()
        uploaders = {
            "pyfasts3 put_from": lambda data, key: c.fast.put_from(data, f"{BUCKET}/{key}"),
            "boto3 upload_fileobj": lambda data, key: c.s3.upload_fileobj(io.BytesIO(data), BUCKET, key, Config=config),
            "obstore put": lambda data, key: obstore.put(c.store, key, memoryview(data)),
        }
        names = list(uploaders)
        print(f"versitygw {c.lane.version}; reps {args.reps}, order rotated each rep")
        for mib in (int(s) for s in args.sizes.split(",")):
            size = mib << 20
            data = np.random.default_rng(mib).integers(0, 256, size, dtype=np.uint8).tobytes()
            samples = {n: [] for n in names}
            for rep in range(args.reps):
                for name in rotated(names, rep):
                    key = f"{mib}-{rep}-{names.index(name)}"
                    cpu0, t0 = time.process_time(), time.perf_counter()
                    uploaders[name](data, key)
                    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                    samples[name].append((size / wall / 1e6, cpu / (size / 1e9)))
                    c.s3.delete_object(Bucket=BUCKET, Key=key)
            print(f"\n{mib} MiB upload from memory")
            print(f"  {'client':24} {'MB/s median':>12} {'(min-max)':>16} {'CPU s/GB':>9}")
            for name in names:
                print(f"  {name:24} {spread(samples[name])}")
            del data
    return 0


def threshold_sweep(args) -> int:
    """Where multipart starts to pay: put_from as one PUT and as 8 MiB parts, interleaved."""
    with versitygw_clients(args) as c:
        ways = {"one PUT": 1 << 40, "multipart 8 MiB": 1}
        print(f"{'MiB':>5} {'way':18} {'MB/s median':>12} {'(min-max)':>16} {'CPU s/GB':>9}")
        for mib in (4, 8, 16, 32, 64):
            size = mib << 20
            data = np.random.default_rng(mib).integers(0, 256, size, dtype=np.uint8).tobytes()
            samples = {w: [] for w in ways}
            for rep in range(args.reps):
                for way in (list(ways) if rep % 2 == 0 else list(ways)[::-1]):
                    key = f"sweep-{mib}-{rep}"
                    cpu0, t0 = time.process_time(), time.perf_counter()
                    c.fast.put_from(data, f"{BUCKET}/{key}", multipart_threshold=min(ways[way], 5 << 30),
                                    part_size=8 << 20)
                    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                    samples[way].append((size / wall / 1e6, cpu / (size / 1e9)))
            for way in ways:
                print(f"{mib:5} {way:18} {spread(samples[way])}")
    return 0


def small_puts(args) -> int:
    """Sequential small PUTs (one request each, one after the other): the per-request cost of
    a write. Keys are distinct within a rep and overwritten by the next rep."""
    import obstore

    with versitygw_clients(args) as c:
        putters = {
            "pyfasts3 put": lambda data, key: c.fast.put(data, f"{BUCKET}/{key}"),
            "boto3 put_object": lambda data, key: c.s3.put_object(Bucket=BUCKET, Key=key, Body=data),
            "obstore put": lambda data, key: obstore.put(c.store, key, data),
        }
        data = np.random.default_rng(4).integers(0, 256, args.small_puts << 10, dtype=np.uint8).tobytes()
        names = list(putters)
        for i, name in enumerate(names):  # warm connections and credentials
            putters[name](data, f"warm-{i}")
        samples = {n: [] for n in names}
        for rep in range(args.reps):
            for name in rotated(names, rep):
                put, prefix = putters[name], f"small-{names.index(name)}-"
                cpu0, t0 = time.process_time(), time.perf_counter()
                for i in range(args.count):
                    put(data, f"{prefix}{i}")
                wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                samples[name].append((args.count / wall, cpu / args.count * 1e6))
        print(f"versitygw {c.lane.version}; {args.count} sequential {args.small_puts} KiB PUTs per client per rep, "
              f"{args.reps} reps, order rotated each rep")
        print(f"  {'client':20} {'req/s median':>12} {'(min-max)':>16} {'CPU us/req':>10}")
        for name in names:
            print(f"  {name:20} {spread(samples[name], '10.0f')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
