"""Where a small GET's client CPU goes: a 4 KiB get_into loop on the nginx lane, under perf.

    perf record -e cpu-clock -F 4000 -o /tmp/small.data -- python bench/profile_small_get.py run 10
    python bench/profile_small_get.py report /tmp/small.data

``run SECONDS`` starts nginx (bench/servers.py), reads one 4 KiB object in a loop on the main
thread for that long and prints req/s and the thread's CPU per request. ``report`` groups the
samples of the calling thread (it does all of a small GET's work: see "Where calls run" in
the README) by who spends them: the kernel, Python and cffi, libc, the AWS SDK and smithy
runtime, hyper/http, tokio, other Rust code the SDK pulls in (core, alloc, hashbrown...), and
pyfasts3's own Rust code (symbols of the ``fasts3`` crate). The machine has no hardware
counters, hence ``cpu-clock``.
"""
from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

HTTP = {"hyper", "hyper_util", "http", "httparse", "http_body", "http_body_util", "bytes"}
ASYNC = {"tokio", "mio", "futures_util", "futures_core", "tokio_util"}


def run(seconds: float) -> None:
    import numpy as np

    import pyfasts3
    import servers

    root = Path(tempfile.mkdtemp(prefix="pyfasts3-profile-"))
    root.chmod(0o755)
    (root / "bkt").mkdir()
    (root / "bkt" / "k").write_bytes(os.urandom(4096))
    lane = servers.start_nginx(root, root / "nginx")
    try:
        client = pyfasts3.Client(lane.endpoint_url, anonymous=True)
        buf = np.empty(4096, np.uint8)
        for _ in range(200):
            client.get_into(buf, "bkt/k")
        n, cpu0, t0 = 0, time.thread_time(), time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            client.get_into(buf, "bkt/k")
            n += 1
        wall, cpu = time.perf_counter() - t0, time.thread_time() - cpu0
        print(f"{n / wall:,.0f} req/s, calling thread CPU {cpu / n * 1e6:.0f} us per request")
    finally:
        lane.stop()


def group(dso: str, symbol: str) -> str:
    if dso.startswith("[kernel"):
        return "kernel (TCP over loopback, syscalls, scheduling)"
    if "libpython" in dso or "_cffi_backend" in dso or "numpy" in dso:
        return "Python and cffi (pyfasts3's wrapper, the loop)"
    if dso.startswith(("libc", "ld-linux", "[vdso]")):
        return "libc (malloc/free, memcpy)"
    if "libfasts3" not in dso:
        return f"other: {dso}"
    crate = re.split(r"::| as ", symbol.lstrip("<&"))[0]
    if crate == "fasts3":
        return "pyfasts3's own Rust code (fasts3 crate)"
    if crate.startswith("aws"):
        return "AWS SDK and smithy runtime"
    if crate in HTTP:
        return "hyper / http"
    if crate in ASYNC:
        return "tokio / futures"
    return "other Rust code (core, alloc, hashbrown, tracing...)"


def report(data: str) -> None:
    out = subprocess.run(
        ["perf", "report", "-i", data, "--no-children", "--comm", "python,python3", "--sort", "dso,sym", "-g", "none"],
        capture_output=True, text=True, check=True,
    ).stdout
    shares: collections.Counter = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*)", line)
        if m:
            shares[group(m.group(2), m.group(3))] += float(m.group(1))
    total = sum(shares.values())
    print(f"calling thread: {total:.1f}% of all samples")
    for name, share in shares.most_common():
        print(f"{share / total * 100:5.1f}%  {name}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "run":
        run(float(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "report":
        report(sys.argv[2])
    else:
        sys.exit(__doc__)
