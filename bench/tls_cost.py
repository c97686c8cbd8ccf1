#!/usr/bin/env python3
"""What TLS costs pyfasts3, and ring against aws-lc-rs: a short targeted measurement.

    python bench/tls_cost.py                          # this checkout's library, HTTP vs HTTPS
    python bench/tls_cost.py --lib ring=pyfasts3/libfasts3.so --lib aws-lc=/path/libfasts3.so

Two versitygw processes serve the same seeded files, one over plain HTTP, one over HTTPS with
a certificate from a private CA made at start-up (as the benchmark's TLS lane). For each
library given (default: the one beside pyfasts3/) and each lane, it measures `get_into` of
large objects and sequential GETs of small ones, in fresh child processes, repetitions
interleaved (lib x lane rotated within every round) so drifts in machine load hit every
variant alike. Reported per variant: median MB/s (min-max) or req/s, and client CPU
(the child's user+system time over the timed calls) per GB or per request. Every result is
checked byte for byte (CRC32).

Not part of the full run (bench/run.py); figures and the commands that made them are in
bench/README.md ("TLS").
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

BUCKET = "tlscost"
MiB = 1 << 20


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("IB")
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def human(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} B"


# -- child: one measurement in a fresh process ---------------------------------------------

def child(spec: Dict) -> Dict:
    sys.path.insert(0, spec["pkg_parent"])
    import numpy as np
    import zlib

    import pyfasts3

    c = pyfasts3.Client(spec["endpoint"], region="us-east-1", access_key_id=spec["access"],
                        secret_access_key=spec["secret"], ca_bundle=spec.get("ca_bundle"))
    out: Dict = {"lib": pyfasts3.__file__}
    if spec["kind"] == "large":
        buf = np.empty(spec["size"], np.uint8)
        c.get_into(buf, f"{BUCKET}/{spec['key']}")  # warm-up: connections, credentials
        t0, c0 = time.perf_counter(), time.process_time()
        n = c.get_into(buf, f"{BUCKET}/{spec['key']}")
        t1, c1 = time.perf_counter(), time.process_time()
        assert n == spec["size"] and zlib.crc32(buf) == spec["crc"], "wrong bytes"
        out.update(wall=t1 - t0, cpu=c1 - c0)
    else:
        keys = spec["keys"]
        buf = np.empty(spec["size"], np.uint8)
        c.get_into(buf, f"{BUCKET}/{keys[0]}")  # warm-up
        wall = cpu = 0.0
        for key, crc in zip(keys, spec["crcs"]):
            t0, c0 = time.perf_counter(), time.process_time()
            n = c.get_into(buf, f"{BUCKET}/{key}")
            wall += time.perf_counter() - t0
            cpu += time.process_time() - c0
            assert n == spec["size"] and zlib.crc32(buf) == crc, "wrong bytes"  # outside the timing
        out.update(wall=wall, cpu=cpu)
    c.close()
    return out


# -- parent --------------------------------------------------------------------------------

def package_for(lib: Path, workdir: Path, name: str) -> Path:
    """A copy of the pyfasts3 package beside `lib` (a libfasts3.so of the same ABI)."""
    parent = workdir / f"pkg-{name}"
    pkg = parent / "pyfasts3"
    shutil.copytree(ROOT / "pyfasts3", pkg, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    shutil.copy2(lib, pkg / "libfasts3.so")
    return parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lib", action="append", default=[],
                    help="NAME=path of a libfasts3.so to measure (repeatable); default: this checkout's")
    ap.add_argument("--sizes", default="256M,1G", help="large objects (get_into)")
    ap.add_argument("--small", default="64K", help="small object size (sequential get_into)")
    ap.add_argument("--small-requests", type=int, default=200)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--lanes", default="http,https")
    ap.add_argument("--json", help="write the raw samples here")
    args = ap.parse_args()

    import boto3  # noqa: F401  (fail early if the environment is incomplete)
    import numpy as np
    import zlib

    import servers
    import workloads

    libs = dict(item.split("=", 1) for item in args.lib) or {"this": str(ROOT / "pyfasts3" / "libfasts3.so")}
    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    small = parse_size(args.small)
    work = Path(tempfile.mkdtemp(prefix="pyfasts3-tlscost-", dir="/var/tmp"))
    data = work / "data"
    (data / BUCKET).mkdir(parents=True)
    lanes = {}
    try:
        if "http" in args.lanes.split(","):
            lanes["http"] = servers.start_versitygw(data, work / "vgw.log")
        if "https" in args.lanes.split(","):
            lanes["https"] = servers.start_versitygw(data, work / "vgw-tls.log", tls=True)
        rng = np.random.default_rng(7)
        objs = {}
        for size in sizes:
            payload = rng.integers(0, 256, size, dtype=np.uint8)
            objs[size] = workloads._obj(data / BUCKET, f"large-{size}", payload)
        smalls = [workloads._obj(data / BUCKET, f"small/{i:05d}", rng.integers(0, 256, small, dtype=np.uint8))
                  for i in range(args.small_requests)]
        pkgs = {name: str(package_for(Path(path), work, name)) for name, path in libs.items()}

        variants = [(lib, lane) for lib in libs for lane in lanes]
        workloads_ = [("large", s) for s in sizes] + [("small", small)]
        samples: Dict[str, List[Dict]] = {}
        for rep in range(args.reps):
            for kind, size in workloads_:
                order = variants[rep % len(variants):] + variants[:rep % len(variants)]
                for lib, lane_name in order:
                    lane = lanes[lane_name]
                    spec = {"pkg_parent": pkgs[lib], "endpoint": lane.endpoint_url, "access": lane.access_key_id,
                            "secret": lane.secret_access_key, "ca_bundle": lane.ca_bundle, "kind": kind,
                            "size": size}
                    if kind == "large":
                        spec.update(key=objs[size].key, crc=objs[size].crc)
                    else:
                        spec.update(keys=[o.key for o in smalls], crcs=[o.crc for o in smalls])
                    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                                          capture_output=True, text=True, timeout=900)
                    if proc.returncode != 0:
                        raise RuntimeError(f"{lib}/{lane_name}/{kind} {size}: {proc.stderr[-2000:]}")
                    res = json.loads(proc.stdout.strip().splitlines()[-1])
                    samples.setdefault(f"{kind} {human(size)} | {lib} | {lane_name}", []).append(res)
            print(f"round {rep + 1}/{args.reps} done", file=sys.stderr, flush=True)

        print(f"\n{'workload | library | lane':<40} {'median':>14} {'min-max':>20} {'client CPU':>18}")
        for name, rows in samples.items():
            kind, size_text = name.split(" | ")[0].split(" ", 1)
            if kind == "large":
                size = parse_size(size_text.replace(" ", "").replace("iB", ""))
                rates = [size / r["wall"] / 1e6 for r in rows]
                cpu = statistics.median(r["cpu"] / (size / 1e9) for r in rows)
                print(f"{name:<40} {statistics.median(rates):>9,.0f} MB/s {min(rates):>9,.0f}-{max(rates):<7,.0f} "
                      f"{cpu:>10.3f} s/GB")
            else:
                n = args.small_requests
                rates = [n / r["wall"] for r in rows]
                cpu = statistics.median(r["cpu"] / n * 1e6 for r in rows)
                print(f"{name:<40} {statistics.median(rates):>8,.0f} req/s {min(rates):>9,.0f}-{max(rates):<7,.0f} "
                      f"{cpu:>10.0f} us/req")
        if args.json:
            Path(args.json).write_text(json.dumps(samples, indent=1))
    finally:
        for lane in lanes.values():
            lane.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(json.loads(sys.argv[2]))))
        sys.exit(0)
    sys.exit(main())
