"""Sweep part size and concurrency for large get_into reads: the measurements behind the
defaults in rust/engine/client.rs (see bench/README.md, "Defaults").

    python bench/tune_parts.py [--reps 5] [--sizes 16,64,256,1024] [--out bench/tune_parts.json]

Both benchmark lanes (versitygw, nginx), the same objects, every (part size, concurrency)
pair interleaved within each rep so machine noise hits all of them alike. Prints MB/s
medians per object size and writes them as JSON. ``adaptive`` is the library's own choice
(no part_size / max_concurrency given: rust/engine/parts.rs), measured in the same rotation.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import boto3
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import pyfasts3  # noqa: E402
import servers  # noqa: E402
import workloads  # noqa: E402

BUCKET = "tune"
MIB = 1024 * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--sizes", default="16,64,256,1024", help="object sizes in MiB")
    parser.add_argument("--parts", default="2,4,8,16,32", help="fixed part sizes to try, MiB")
    parser.add_argument("--concurrency", default="8,16,32", help="max_concurrency values to try")
    parser.add_argument("--out", default=str(HERE / "tune_parts.json"))
    args = parser.parse_args()
    sizes = [int(s) * MIB for s in args.sizes.split(",")]

    run_dir = servers.make_root()
    data = run_dir / "data"
    data.mkdir()
    data.chmod(0o755)
    lanes = [servers.start_versitygw(data, run_dir / "versitygw.log"), servers.start_nginx(data, run_dir / "nginx")]
    vgw = lanes[0]
    boto3.client("s3", endpoint_url=vgw.endpoint_url, region_name=vgw.region, aws_access_key_id=vgw.access_key_id,
                 aws_secret_access_key=vgw.secret_access_key).create_bucket(Bucket=BUCKET)
    rng = np.random.default_rng(7)
    objs = {}
    for size in sizes:
        payload = np.frombuffer(rng.bytes(size), dtype=np.uint8)
        objs[size] = (workloads._obj(data / BUCKET, f"obj-{size // MIB}M", payload), payload)
    configs = [("adaptive", None, None)] + [
        (f"{p}MiB x{c}", p * MIB, c)
        for p in map(int, args.parts.split(",")) for c in map(int, args.concurrency.split(","))
    ]
    results = {"command": "python bench/tune_parts.py" + "".join(f" {a}" for a in sys.argv[1:]),
               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "reps": args.reps, "lanes": {}}
    try:
        for lane in lanes:
            creds = {} if lane.anonymous else {"access_key_id": lane.access_key_id,
                                               "secret_access_key": lane.secret_access_key}
            clients = {name: pyfasts3.Client(lane.endpoint_url, lane.region, anonymous=lane.anonymous,
                                             part_size=part, max_concurrency=conc, **creds)
                       for name, part, conc in configs}
            table = {}
            for size, (obj, payload) in objs.items():
                buf = np.empty(size, np.uint8)
                speeds = {name: [] for name, _, _ in configs}
                for client in clients.values():  # warm each client's connections
                    client.get_into(buf, f"{BUCKET}/{obj.key}")
                for rep in range(args.reps):
                    order = configs[rep % len(configs):] + configs[:rep % len(configs)]
                    for name, _, _ in order:
                        t = time.perf_counter()
                        n = clients[name].get_into(buf, f"{BUCKET}/{obj.key}")
                        speeds[name].append(size / (time.perf_counter() - t) / 1e6)
                        assert n == size
                if not np.array_equal(buf, payload):
                    raise AssertionError(f"{lane.name} {obj.key}: wrong bytes")
                table[size // MIB] = {name: round(statistics.median(v)) for name, v in speeds.items()}
                best = max(table[size // MIB].items(), key=lambda kv: kv[1])
                print(f"{lane.name:9s} {size // MIB:5d} MiB  adaptive {table[size // MIB]['adaptive']:6,} MB/s"
                      f"  best {best[0]} {best[1]:,} MB/s", flush=True)
                print("          " + "  ".join(f"{k}={v:,}" for k, v in table[size // MIB].items()), flush=True)
            results["lanes"][lane.name] = table
            for client in clients.values():
                client.close()
    finally:
        for lane in lanes:
            lane.stop()
        import shutil

        shutil.rmtree(run_dir, ignore_errors=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
