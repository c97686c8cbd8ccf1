#!/usr/bin/env python3
"""Upload from memory: pyfasts3 ``put_from`` against boto3 ``upload_fileobj``, boto3's CRT
transfer manager, obstore ``put`` and s3fs ``pipe`` on a local versitygw (posix backend),
interleaved repetitions, medians.

    python bench/upload.py [--sizes 64,1024] [--reps 5] [--root /var/tmp]
    python bench/upload.py --threshold-sweep [--reps 5]   # one PUT vs multipart, 4-64 MiB
    python bench/upload.py --small-puts 4 [--count 500] [--reps 5]   # sequential 4 KiB PUTs

Reports, per size and client: median MB/s (min-max) and client CPU seconds per GB (this
process's user+system time over the upload, all threads). The server runs on the same
machine, so its CPU and disk bound everyone alike; rows are comparable within one run only.
Each client uses its defaults:
- pyfasts3 ``put_from``: one PUT up to 16 MiB, else 8 MiB parts, 16 in flight;
- boto3 ``upload_fileobj`` of an io.BytesIO: TransferConfig, 8 MiB threshold and parts,
  10 threads;
- the CRT transfer manager (s3transfer.crt.CRTTransferManager ``upload`` of an io.BytesIO,
  waiting on its future): assembled by clients.make_crt, because boto3's own CRT switch
  cannot reach a custom http endpoint; 8 MiB parts, awscrt's recommended throughput target
  (10 Gb/s when it has none for the machine), which sets how many parts fly at once;
- obstore ``put``: its multipart put, 5 MiB chunks, 12 in flight;
- s3fs ``pipe``: one put_object below 100 MiB (2 x its 50 MiB chunksize), above that its
  multipart path: 50 MiB parts (slices of the bytes), in batches of max_concurrency=10 parts,
  each batch awaited before the next. So at 64 MiB s3fs sends one PUT.

Each client first uploads 1 MiB untimed (sessions, connections, credentials; s3fs creates
its aiobotocore client on first use). After every upload (outside the timing) a HEAD checks the stored ContentLength, and for the
small PUTs the ETag against the data's MD5 (each rep writes different bytes, so an object
left by an earlier rep fails it): a client that stores the wrong thing fails the run
instead of reporting a speed.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyfasts3  # noqa: E402
from clients import make_crt  # noqa: E402
from servers import make_root, start_versitygw  # noqa: E402

BUCKET = "upload-bench"


@dataclass
class Clients:
    """Every client of one run, built once against the lane, the bucket created."""
    lane: Any
    s3: Any  # boto3
    fast: pyfasts3.Client
    store: Any  # obstore S3Store on BUCKET
    crt: Any  # s3transfer.crt.CRTTransferManager, or None when awscrt is missing
    crt_error: Any  # why crt is None
    fs: Any  # s3fs.S3FileSystem


@contextlib.contextmanager
def versitygw_clients(args) -> Iterator[Clients]:
    """A versitygw lane under ``args.root`` with the bucket made, and every client on it."""
    import boto3
    import s3fs
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
        crt, crt_error = make_crt(lane, s3)
        fs = s3fs.S3FileSystem(key=lane.access_key_id, secret=lane.secret_access_key,
                               client_kwargs={"endpoint_url": lane.endpoint_url, "region_name": lane.region},
                               skip_instance_cache=True, use_listings_cache=False)
        try:
            yield Clients(lane, s3, fast, store, crt, crt_error, fs)
        finally:
            if crt is not None:
                crt.shutdown()
            fast.close()
    finally:
        lane.stop()


def check_stored(s3, key: str, size: int, md5: Optional[str] = None) -> None:
    """The object ``key`` is ``size`` bytes (and, given ``md5``, has that single-PUT ETag),
    or RuntimeError: a client that stored the wrong thing must not report a speed."""
    head = s3.head_object(Bucket=BUCKET, Key=key)
    if head["ContentLength"] != size:
        raise RuntimeError(f"{key}: stored {head['ContentLength']} bytes, uploaded {size}")
    if md5 is not None and head["ETag"].strip('"') != md5:
        raise RuntimeError(f"{key}: stored ETag {head['ETag']}, the uploaded bytes' MD5 is {md5}")


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
            "boto3 CRT upload": lambda data, key: c.crt.upload(io.BytesIO(data), BUCKET, key).result(),
            "obstore put": lambda data, key: obstore.put(c.store, key, memoryview(data)),
            "s3fs pipe": lambda data, key: c.fs.pipe(f"{BUCKET}/{key}", data),
        }
        print(f"versitygw {c.lane.version}; reps {args.reps}, order rotated each rep")
        if c.crt is None:
            del uploaders["boto3 CRT upload"]
            print(f"boto3 CRT upload: unavailable ({c.crt_error})")
        names = list(uploaders)
        warm = np.random.default_rng(0).integers(0, 256, 1 << 20, dtype=np.uint8).tobytes()
        for name in names:  # untimed: sessions, connections, credentials (s3fs makes its client here)
            uploaders[name](warm, "warm")
            check_stored(c.s3, "warm", len(warm))
            c.s3.delete_object(Bucket=BUCKET, Key="warm")
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
                    check_stored(c.s3, key, size)
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
                    check_stored(c.s3, key, size)
                    samples[way].append((size / wall / 1e6, cpu / (size / 1e9)))
            for way in ways:
                print(f"{mib:5} {way:18} {spread(samples[way])}")
    return 0


def small_puts(args) -> int:
    """Sequential small PUTs (one request each, one after the other): the per-request cost of
    a write. Keys are distinct within a rep and overwritten by the next rep; each rep writes
    different bytes so the ETag check after it cannot pass on an earlier rep's object.

    CPU us/req is this process's CPU (all threads: obstore works on its runtime's threads,
    so the calling thread alone would undercount it). The process also holds the idle
    clients of the other rows (boto3, obstore's runtime, the CRT's event loop threads, s3fs's
    io thread); the "idle" line measures what they cost while nobody uploads, and the
    "thread" column gives the calling thread's CPU for comparison (pyfasts3 and boto3 do
    their small-PUT work on the calling thread, obstore does not). "server us/req" is
    versitygw's CPU per request: what each client sends (checksums, signed payloads) costs
    the server differently, and on a shared machine the server's time is the client's too."""
    import obstore

    with versitygw_clients(args) as c:
        putters = {
            "pyfasts3 put": lambda data, key: c.fast.put(data, f"{BUCKET}/{key}"),
            "boto3 put_object": lambda data, key: c.s3.put_object(Bucket=BUCKET, Key=key, Body=data),
            "obstore put": lambda data, key: obstore.put(c.store, key, data),
        }
        size = args.small_puts << 10
        names = list(putters)
        warm = np.random.default_rng(4).integers(0, 256, size, dtype=np.uint8).tobytes()
        for i, name in enumerate(names):  # warm connections and credentials
            putters[name](warm, f"warm-{i}")
            check_stored(c.s3, f"warm-{i}", size, hashlib.md5(warm).hexdigest())
        idle_cpu0, idle_t0 = time.process_time(), time.perf_counter()
        time.sleep(2.0)
        idle = (time.process_time() - idle_cpu0) / (time.perf_counter() - idle_t0)
        samples = {n: [] for n in names}
        thread_us = {n: [] for n in names}
        server_us = {n: [] for n in names}
        for rep in range(args.reps):
            data = np.random.default_rng(1000 + rep).integers(0, 256, size, dtype=np.uint8).tobytes()
            md5 = hashlib.md5(data).hexdigest()
            for name in rotated(names, rep):
                put, prefix = putters[name], f"small-{names.index(name)}-"
                server0 = c.lane.cpu_seconds()
                cpu0, thread0, t0 = time.process_time(), time.thread_time(), time.perf_counter()
                for i in range(args.count):
                    put(data, f"{prefix}{i}")
                wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                thread_us[name].append((time.thread_time() - thread0) / args.count * 1e6)
                server_us[name].append((c.lane.cpu_seconds() - server0) / args.count * 1e6)
                for i in range(args.count):
                    check_stored(c.s3, f"{prefix}{i}", size, md5)
                samples[name].append((args.count / wall, cpu / args.count * 1e6))
        print(f"versitygw {c.lane.version}; {args.count} sequential {args.small_puts} KiB PUTs per client per rep, "
              f"{args.reps} reps, order rotated each rep")
        print(f"idle clients: {idle * 1e3:.1f} ms process CPU per second over 2 s with nobody uploading")
        print(f"  {'client':20} {'req/s median':>12} {'(min-max)':>16} {'CPU us/req':>10} {'thread us/req':>13} "
              f"{'server us/req':>13}")
        for name in names:
            print(f"  {name:20} {spread(samples[name], '10.0f')} {statistics.median(thread_us[name]):13.0f} "
                  f"{statistics.median(server_us[name]):13.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
