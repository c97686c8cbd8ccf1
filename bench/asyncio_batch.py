#!/usr/bin/env python3
"""asyncio: 2,000 x 256 KiB objects fetched with ``asyncio.gather`` on one event loop,
pyfasts3's async API (native completion queue, no thread per call) against obstore's
(``obstore.get_async`` + ``bytes_async``), on a local versitygw (posix backend), interleaved
repetitions, medians.

    python bench/asyncio_batch.py [--count 2000] [--size-kib 256] [--reps 5] [--root /var/tmp]

Clients (each with its defaults; pyfasts3 keeps at most 16 requests in flight per client,
obstore sends every request at once):
- ``pyfasts3 gather(get_async)``: one coroutine per object, like the obstore row;
- ``pyfasts3 get_many_async``: one coroutine submitting every read (no task per object);
- ``pyfasts3 gather(get_into_async)``: into preallocated buffers;
- ``obstore gather(get_async)``.

Reports per client: median MB/s (min-max) over the batch's wall time, and client CPU
seconds per GB (this process's user+system time, all threads). Every result's length is
checked, and a sample of objects byte for byte, in every repetition. The server runs on the
same machine, so rows compare within one run only.
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyfasts3  # noqa: E402
from servers import make_root, start_versitygw  # noqa: E402
from workloads import _obj  # noqa: E402

BUCKET = "asyncio-bench"


def seed(root: Path, count: int, size: int):
    """Write the objects straight into the server's bucket directory; (key, crc32) each."""
    rng = np.random.default_rng(2026)
    blob = rng.bytes(count * size)
    return [(o.key, o.crc) for o in (_obj(root / BUCKET, f"a/k{i:05d}", memoryview(blob)[i * size:(i + 1) * size])
                                     for i in range(count))]


def readers(lane):
    import obstore
    from obstore.store import S3Store

    fast = pyfasts3.Client(lane.endpoint_url, region=lane.region, access_key_id=lane.access_key_id,
                           secret_access_key=lane.secret_access_key)
    store = S3Store(BUCKET, endpoint=lane.endpoint_url, region=lane.region, access_key_id=lane.access_key_id,
                    secret_access_key=lane.secret_access_key, virtual_hosted_style_request=False,
                    client_options={"allow_http": True})

    async def fast_gather(keys, size):
        return await asyncio.gather(*(fast.get_async(f"{BUCKET}/{k}") for k in keys))

    async def fast_many(keys, size):
        return await fast.get_many_async([f"{BUCKET}/{k}" for k in keys])

    async def fast_into(keys, size):
        bufs = [np.empty(size, np.uint8) for _ in keys]
        written = await asyncio.gather(*(fast.get_into_async(b, f"{BUCKET}/{k}") for b, k in zip(bufs, keys)))
        assert all(n == size for n in written)
        return bufs

    async def obstore_gather(keys, size):
        async def one(k):
            resp = await obstore.get_async(store, k)
            return await resp.bytes_async()

        return await asyncio.gather(*(one(k) for k in keys))

    return {
        "pyfasts3 gather(get_async)": fast_gather,
        "pyfasts3 get_many_async": fast_many,
        "pyfasts3 gather(get_into_async)": fast_into,
        "obstore gather(get_async)": obstore_gather,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size-kib", type=int, default=256)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--root", default=None, help="parent directory of the server's data")
    args = parser.parse_args()
    size = args.size_kib << 10
    root = make_root(args.root)
    lane = start_versitygw(root, root.parent / f"{root.name}.log")
    try:
        import boto3

        boto3.client("s3", endpoint_url=lane.endpoint_url, region_name=lane.region,
                     aws_access_key_id=lane.access_key_id,
                     aws_secret_access_key=lane.secret_access_key).create_bucket(Bucket=BUCKET)
        objects = seed(root, args.count, size)
        keys = [k for k, _ in objects]
        crcs = dict(objects)
        clients = readers(lane)
        names = list(clients)
        total = args.count * size
        print(f"versitygw {lane.version}; {args.count} x {args.size_kib} KiB; reps {args.reps}, order rotated each rep")
        samples = {n: [] for n in names}

        async def one_rep(order):
            for name in order:
                cpu0, t0 = time.process_time(), time.perf_counter()
                results = await clients[name](keys, size)
                wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                assert len(results) == len(keys), name
                for k, r in zip(keys, results):
                    assert len(memoryview(r)) == size, (name, k)
                for k, r in list(zip(keys, results))[::97]:
                    assert zlib.crc32(memoryview(r)) == crcs[k], (name, k)
                samples[name].append((total / wall / 1e6, cpu / (total / 1e9)))
                del results

        async def warm_up():
            for name in names:  # connections and runtimes made before anything is timed
                await clients[name](keys[:64], size)

        asyncio.run(warm_up())
        for rep in range(args.reps):
            order = names[rep % len(names):] + names[: rep % len(names)]
            asyncio.run(one_rep(order))
        print(f"  {'client':34} {'MB/s median':>12} {'(min-max)':>16} {'CPU s/GB':>9}")
        for name in names:
            rates = [r for r, _ in samples[name]]
            cpus = [c for _, c in samples[name]]
            print(f"  {name:34} {statistics.median(rates):12,.0f} {f'({min(rates):,.0f}-{max(rates):,.0f})':>16} "
                  f"{statistics.median(cpus):9.2f}")
    finally:
        lane.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
