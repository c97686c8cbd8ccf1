"""Many random ranges of one large object into one buffer (issue "C ABI v2", Ranges).

    python bench/ranges.py [--size-mib 1024] [--ranges 1000] [--range-kib 64] [--reps 5]

Starts versitygw (bench/servers.py) on a fresh root, seeds one object of --size-mib random
bytes, draws --ranges random offsets (fixed seed; the same for every client and rep), and
reads those ranges of --range-kib into one preallocated numpy buffer with each client:

- pyfasts3 ``get_ranges(path, ranges, out=buf)`` (coalescing default: 1 MiB gap)
- obstore ``get_ranges`` (its default coalescing), each returned buffer copied into place
- s3fs ``cat_ranges`` (max_gap default), each result copied into place
- boto3 ``get_object(Range=...)`` on 16 threads, each body read into place

Reps are interleaved (each rep runs every client once, the order rotating). Prints each
client's median wall time, MB/s of range bytes, and client CPU seconds (this process's
user+sys) per rep, and checks every byte against the seeded object.
"""
from __future__ import annotations

import argparse
import hashlib
import resource
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import pyfasts3  # noqa: E402
import servers  # noqa: E402
from workloads import _write  # noqa: E402

BUCKET = "bench-ranges"


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--ranges", type=int, default=1000)
    ap.add_argument("--range-kib", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()

    import boto3
    import obstore
    import s3fs
    from botocore.config import Config
    from obstore.store import S3Store

    root = servers.make_root()
    lane = servers.start_versitygw(root, root.with_suffix(".log"))
    try:
        boto = boto3.client("s3", endpoint_url=lane.endpoint_url, region_name=lane.region,
                            aws_access_key_id=lane.access_key_id, aws_secret_access_key=lane.secret_access_key,
                            config=Config(s3={"addressing_style": "path"}, max_pool_connections=16))
        boto.create_bucket(Bucket=BUCKET)
        size = args.size_mib << 20
        data = np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes()
        _write(root / BUCKET / "big", data, hashlib.md5(data).hexdigest())
        n, length = args.ranges, args.range_kib << 10
        offsets = np.random.default_rng(2).integers(0, size - length, n).tolist()
        ranges = [(o, length) for o in offsets]
        expected = b"".join(data[o:o + length] for o in offsets)
        buf = np.empty(n * length, np.uint8)

        fast = pyfasts3.Client(lane.endpoint_url, region=lane.region, access_key_id=lane.access_key_id,
                               secret_access_key=lane.secret_access_key)
        store = S3Store(BUCKET, endpoint=lane.endpoint_url, region=lane.region, access_key_id=lane.access_key_id,
                        secret_access_key=lane.secret_access_key, virtual_hosted_style_request=False,
                        client_options={"allow_http": True})
        fs = s3fs.S3FileSystem(key=lane.access_key_id, secret=lane.secret_access_key, endpoint_url=lane.endpoint_url,
                               client_kwargs={"region_name": lane.region},
                               config_kwargs={"s3": {"addressing_style": "path"}}, skip_instance_cache=True)
        pool = ThreadPoolExecutor(16)
        path = f"{BUCKET}/big"

        def place(parts) -> None:
            for i, part in enumerate(parts):
                buf[i * length:(i + 1) * length] = np.frombuffer(memoryview(part), np.uint8)

        def run_fast() -> None:
            fast.get_ranges(path, ranges, out=buf)

        def run_obstore() -> None:
            place(obstore.get_ranges(store, "big", starts=offsets, ends=[o + length for o in offsets]))

        def run_s3fs() -> None:
            place(fs.cat_ranges([path] * n, offsets, [o + length for o in offsets]))

        def run_boto3() -> None:
            def one(i: int) -> None:
                o = offsets[i]
                body = boto.get_object(Bucket=BUCKET, Key="big", Range=f"bytes={o}-{o + length - 1}")["Body"]
                view = memoryview(buf)[i * length:(i + 1) * length]
                got = 0
                while got < length:
                    k = body.readinto(view[got:]) if hasattr(body, "readinto") else 0
                    if not k:
                        chunk = body.read(length - got)
                        view[got:got + len(chunk)] = chunk
                        k = len(chunk)
                    if not k:
                        raise RuntimeError("short body")
                    got += k

            list(pool.map(one, range(n)))

        clients = [("pyfasts3 get_ranges", run_fast), ("obstore get_ranges", run_obstore),
                   ("s3fs cat_ranges", run_s3fs), ("boto3, 16 threads", run_boto3)]
        results = {name: [] for name, _ in clients}
        for rep in range(args.reps + 1):
            order = clients[rep % len(clients):] + clients[:rep % len(clients)]
            for name, fn in order:
                buf[:] = 0
                c0, t0 = cpu(), time.perf_counter()
                fn()
                wall, used = time.perf_counter() - t0, cpu() - c0
                if buf.tobytes() != expected:
                    raise SystemExit(f"{name}: WRONG BYTES")
                if rep > 0:  # rep 0 warms up connections and caches
                    results[name].append((wall, used))
        total = n * length
        print(f"{n} random ranges of {length >> 10} KiB of a {args.size_mib} MiB object, versitygw, "
              f"{args.reps} interleaved reps (medians, min-max):")
        for name, rows in results.items():
            walls = [w for w, _ in rows]
            cpus = [c for _, c in rows]
            mbs = [total / w / 1e6 for w in walls]
            print(f"  {name:22s} {statistics.median(mbs):8,.0f} MB/s ({min(mbs):,.0f}-{max(mbs):,.0f})  "
                  f"wall {statistics.median(walls) * 1e3:7.0f} ms  client CPU {statistics.median(cpus):.2f} s")
        fast.close()
    finally:
        lane.stop()
        import shutil

        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
