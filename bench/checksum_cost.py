"""What verifying checksums costs: pyfasts3 get() with checksum="off", "when_available" (the
default) and "required", interleaved, on versitygw (a real S3 server that stores and returns
x-amz-checksum-* values).

    python bench/checksum_cost.py [--reps 9] [--algorithms CRC32C,CRC64NVME,SHA256]

Objects are uploaded by boto3 with each algorithm (full-object checksums). Sizes: 64 KiB and
4 MiB fit in pyfasts3's first request, whose range covers the whole object, so versitygw returns
the checksum with it and "when_available" verifies it; 64 MiB and 256 MiB are read in parts,
and ranged GETs carry no checksum, so "when_available" reads them unverified while "required"
adds a HEAD (x-amz-checksum-mode: ENABLED, If-Match) and one pass over the buffer.
Reported: median wall seconds per get() and the ratio to "off" measured in the same run, and
the ratio of the client's CPU seconds (this process, every thread: time.process_time) to
"off"'s, which separates pyfasts3's own cost from the server's (versitygw may do more work
when asked for checksums; both share the machine's cores).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import pyfasts3  # noqa: E402
from s3servers import start  # noqa: E402

SIZES = [64 << 10, 4 << 20, 64 << 20, 256 << 20]
MODES = ["off", "when_available", "required"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--algorithms", default="CRC32C,CRC64NVME,SHA256")
    args = parser.parse_args()
    server = start("versitygw")
    try:
        s3 = server.boto3_client()
        s3.create_bucket(Bucket="cost")
        clients = {m: pyfasts3.Client(server.endpoint_url, region=server.region,
                                      access_key_id=server.access_key_id,
                                      secret_access_key=server.secret_access_key, checksum=m)
                   for m in MODES}
        print("| algorithm | size | off (s) | when_available (s) | ratio | client CPU ratio "
              "| required (s) | ratio | client CPU ratio |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for algorithm in args.algorithms.split(","):
            for size in SIZES:
                data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
                key = f"{algorithm}-{size}"
                s3.put_object(Bucket="cost", Key=key, Body=data, ChecksumAlgorithm=algorithm)
                times = {m: [] for m in MODES}
                cpu = {m: [] for m in MODES}
                reps = args.reps if size >= (64 << 20) else args.reps * 20
                for rep in range(reps + 1):
                    for m in MODES if rep % 2 else reversed(MODES):
                        c0, t0 = time.process_time(), time.perf_counter()
                        got = clients[m].get(f"cost/{key}")
                        took, used = time.perf_counter() - t0, time.process_time() - c0
                        if got.nbytes != size or (rep == 0 and got.tobytes() != data):
                            raise SystemExit(f"wrong bytes: {m} {key}")
                        if rep:  # the first round warms connections
                            times[m].append(took)
                            cpu[m].append(used)
                med = {m: statistics.median(times[m]) for m in MODES}
                # CPU: total over the reps (process_time ticks are coarse for one small call).
                tot = {m: sum(cpu[m]) for m in MODES}
                print(f"| {algorithm} | {size >> 10} KiB | {med['off']:.5f} | {med['when_available']:.5f} | "
                      f"{med['when_available'] / med['off']:.2f} | {tot['when_available'] / tot['off']:.2f} | "
                      f"{med['required']:.5f} | {med['required'] / med['off']:.2f} | "
                      f"{tot['required'] / tot['off']:.2f} |", flush=True)
                s3.delete_object(Bucket="cost", Key=key)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
