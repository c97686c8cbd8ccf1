"""get() of a large object: what the fresh allocation costs, with and without huge pages.

    python bench/get_alloc.py [--lane nginx|versitygw] [--size-mib 1024] [--processes 6] [--reps 6]

Starts the lane's server (bench/servers.py: nginx is client-bound, versitygw shares the two
cores with the client) on one file of --size-mib, then runs --processes fresh Python
processes per setting, settings rotated, each doing --reps calls; prints every repetition's
MB/s, then per setting the median, the median of first calls and of later calls, and the
slowest repetition as a fraction of the median. Settings: get() as it is by default (4 KiB
pages) and with PYFASTS3_HUGE_PAGES=1 (MADV_HUGEPAGE on get()'s fresh buffer); get_into into a reused buffer (the
yardstick: no fresh memory at all); and the peers' fresh-memory reads, boto3
``get_object()["Body"].read()`` and obstore ``get().bytes()``. Also prints /proc/vmstat's
THP counters before and after.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from servers import ensure_nginx, start_nginx, start_versitygw  # noqa: E402

CHILD = """
import sys, time, numpy as np
url, key, reps, mode, creds = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:]
if mode == "boto3":
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config
    kw = dict(aws_access_key_id=creds[0], aws_secret_access_key=creds[1]) if creds else {}
    cfg = Config(s3={"addressing_style": "path"}, **({} if creds else {"signature_version": UNSIGNED}))
    b = boto3.client("s3", endpoint_url=url, region_name="us-east-1", config=cfg, **kw)
    read = lambda: len(b.get_object(Bucket="bkt", Key=key)["Body"].read())
elif mode == "obstore":
    from obstore.store import S3Store
    import obstore
    kw = dict(access_key_id=creds[0], secret_access_key=creds[1]) if creds else dict(skip_signature=True)
    s = S3Store("bkt", endpoint=url, region="us-east-1", virtual_hosted_style_request=False,
                client_options={"allow_http": True}, **kw)
    read = lambda: len(obstore.get(s, key).bytes())
else:
    import pyfasts3
    kw = dict(access_key_id=creds[0], secret_access_key=creds[1]) if creds else dict(anonymous=True)
    c = pyfasts3.Client(url, region="us-east-1", **kw)
    if mode == "get_into":
        buf = np.empty(c.head(f"bkt/{key}").size, np.uint8)
        c.get_into(buf, f"bkt/{key}")  # buffer faulted in, connections warm
        read = lambda: c.get_into(buf, f"bkt/{key}")
    else:
        read = lambda: c.get(f"bkt/{key}").nbytes
out = []
for _ in range(reps):
    t = time.perf_counter()
    n = read()
    out.append(n / (time.perf_counter() - t) / 1e6)
print(" ".join(f"{x:.0f}" for x in out))
"""


def vmstat() -> dict:
    keep = ("thp_fault_alloc", "thp_fault_fallback", "compact_stall")
    with open("/proc/vmstat") as f:
        return {k: int(v) for k, v in (line.split() for line in f) if k in keep}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lane", choices=("nginx", "versitygw"), default="nginx")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--processes", type=int, default=6)
    parser.add_argument("--reps", type=int, default=6)
    args = parser.parse_args()
    if args.lane == "nginx":
        ensure_nginx()
    with tempfile.TemporaryDirectory(prefix="pyfasts3-get-alloc-") as tmp:
        root = Path(tmp) / "root"
        (root / "bkt").mkdir(parents=True)
        md5 = hashlib.md5()
        with open(root / "bkt" / "obj", "wb") as f:
            for _ in range(args.size_mib):
                chunk = os.urandom(1 << 20)
                md5.update(chunk)
                f.write(chunk)
            # versitygw's posix backend serves the ETag its PUT would have stored here.
            os.setxattr(f.fileno(), "user.etag", f'"{md5.hexdigest()}"'.encode())
        root.chmod(0o755)
        if args.lane == "nginx":
            lane = start_nginx(root, Path(tmp) / "prefix")
        else:
            lane = start_versitygw(root, Path(tmp) / "versitygw.log")
        creds = [] if lane.anonymous else [lane.access_key_id, lane.secret_access_key]
        try:
            settings = {"get (default)": ("get", "0"), "get, PYFASTS3_HUGE_PAGES=1": ("get", "1"),
                        "get_into, reused buffer": ("get_into", "1"), "boto3 get_object().read()": ("boto3", "1"),
                        "obstore get().bytes()": ("obstore", "1")}
            runs = {name: [] for name in settings}
            before = vmstat()
            for _ in range(args.processes):
                for name, (mode, huge) in settings.items():
                    env = dict(os.environ, PYFASTS3_HUGE_PAGES=huge, PYTHONPATH=str(ROOT))
                    out = subprocess.run([sys.executable, "-c", CHILD, lane.endpoint_url, "obj", str(args.reps), mode, *creds],
                                         env=env, check=True, stdout=subprocess.PIPE, text=True).stdout.split()
                    runs[name].append([float(x) for x in out])
                    print(f"{name:30} {' '.join(out)}", flush=True)
            after = vmstat()
        finally:
            lane.stop()
    print(f"\n{args.lane}, {args.size_mib} MiB, {args.processes} processes x {args.reps} reps (MB/s)")
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
