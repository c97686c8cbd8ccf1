"""get() of a large object: what the fresh allocation costs, with and without huge pages.

    python bench/get_alloc.py [--size-mib 1024] [--processes 6] [--reps 6]

Starts nginx (the client-bound lane of bench/run.py) on one file of --size-mib, then runs
--processes fresh Python processes per setting, alternating PYFASTS3_HUGE_PAGES=1 (the
default: MADV_HUGEPAGE on get()'s buffer) and =0, each doing --reps get() calls; prints every
repetition's MB/s, then per setting the median, the median of first calls and of later calls,
and the slowest repetition as a fraction of the median. get_into into a reused buffer is the
yardstick (no fresh memory at all). Also prints /proc/vmstat's THP counters before and after.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from servers import ensure_nginx, start_nginx  # noqa: E402

CHILD = """
import sys, time, numpy as np, pyfasts3
url, key, reps, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
c = pyfasts3.Client(url, anonymous=True)
out, buf = [], None
for _ in range(reps):
    if mode == "get_into" and buf is None:
        buf = np.empty(c.head(f"bkt/{key}").size, np.uint8)
        c.get_into(buf, f"bkt/{key}")  # buffer faulted in, connections warm
    t = time.perf_counter()
    n = c.get_into(buf, f"bkt/{key}") if mode == "get_into" else c.get(f"bkt/{key}").nbytes
    out.append(n / (time.perf_counter() - t) / 1e6)
print(" ".join(f"{x:.0f}" for x in out))
"""


def vmstat() -> dict:
    keep = ("thp_fault_alloc", "thp_fault_fallback", "compact_stall")
    with open("/proc/vmstat") as f:
        return {k: int(v) for k, v in (line.split() for line in f) if k in keep}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--processes", type=int, default=6)
    parser.add_argument("--reps", type=int, default=6)
    args = parser.parse_args()
    ensure_nginx()
    with tempfile.TemporaryDirectory(prefix="pyfasts3-get-alloc-") as tmp:
        root = Path(tmp) / "root"
        (root / "bkt").mkdir(parents=True)
        with open(root / "bkt" / "obj", "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
        lane = start_nginx(root, Path(tmp) / "prefix")
        try:
            settings = {"get, huge pages (default)": ("get", "1"), "get, PYFASTS3_HUGE_PAGES=0": ("get", "0"),
                        "get_into, reused buffer": ("get_into", "1")}
            runs = {name: [] for name in settings}
            before = vmstat()
            for _ in range(args.processes):
                for name, (mode, huge) in settings.items():
                    env = dict(os.environ, PYFASTS3_HUGE_PAGES=huge, PYTHONPATH=str(ROOT))
                    out = subprocess.run([sys.executable, "-c", CHILD, lane.endpoint_url, "obj", str(args.reps), mode],
                                         env=env, check=True, capture_output=True, text=True).stdout.split()
                    runs[name].append([float(x) for x in out])
                    print(f"{name:30} {' '.join(out)}", flush=True)
            after = vmstat()
        finally:
            lane.stop()
    print(f"\n{args.size_mib} MiB, {args.processes} processes x {args.reps} reps (MB/s)")
    print("| setting | median | first call of a process (median) | later calls (median) | slowest / median |")
    print("|---|---:|---:|---:|---:|")
    for name, per_process in runs.items():
        every = [x for p in per_process for x in p]
        med = statistics.median(every)
        print(f"| {name} | {med:.0f} | {statistics.median(p[0] for p in per_process):.0f} | "
              f"{statistics.median(x for p in per_process for x in p[1:]):.0f} | {min(every) / med:.2f} |")
    print("vmstat:", {k: after[k] - before[k] for k in after})
    return 0


if __name__ == "__main__":
    sys.exit(main())
