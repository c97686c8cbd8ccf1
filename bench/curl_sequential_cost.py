#!/usr/bin/env python3
"""What one sequential curl transfer costs, two ways, on the nginx lane.

    python bench/curl_sequential_cost.py [--size 4096] [--reps 5]

The harness's "curl sequential (ceiling)" rate (bench/run.py, small objects) is 200 divided by
the sum of curl's own ``time_total`` per transfer; pyfasts3's rate is 200 divided by the wall
time of 200 whole calls. This script runs the same kind of curl process (one connection, a
config file of 200 URLs, output to /dev/null) and, in turn, one of a single URL, and prints
per request: curl's ``time_total`` (the harness's measure) and the marginal wall time,
``(wall of 200 - wall of 1) / 199``, which counts everything curl does per transfer but not its
start-up. Starts its own nginx (bench/servers.py) over 200 random objects.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

COUNT = 200


def write_config(path: Path, endpoint: str, n: int) -> Path:
    lines = []
    for i in range(n):
        if lines:
            lines.append("next")
        lines += [f'url = "{endpoint}/bkt/k{i}"', 'output = "/dev/null"',
                  'write-out = "%{http_code} %{size_download} %{time_total}\\n"']
    path.write_text("\n".join(lines) + "\n")
    return path


def timed_curl(config: Path) -> (float, str):
    start = time.perf_counter()
    out = subprocess.run(["curl", "--silent", "--show-error", "--config", str(config)],
                         capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4096, help="object size in bytes (default 4096)")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    import servers

    root = Path(tempfile.mkdtemp(prefix="pyfasts3-curl-cost-"))
    root.chmod(0o755)
    (root / "bkt").mkdir()
    for i in range(COUNT):
        (root / "bkt" / f"k{i}").write_bytes(os.urandom(args.size))
    lane = servers.start_nginx(root, root / "nginx")
    try:
        many = write_config(root / "many.cfg", lane.endpoint_url, COUNT)
        one = write_config(root / "one.cfg", lane.endpoint_url, 1)
        timed_curl(many)  # warm
        marginal, own = [], []
        for _ in range(args.reps):
            wall_many, out = timed_curl(many)
            wall_one, _ = timed_curl(one)
            lines = [line.split() for line in out.splitlines() if line.strip()]
            if len(lines) != COUNT or any(code != "200" or int(size) != args.size for code, size, _ in lines):
                raise SystemExit(f"curl did not fetch {COUNT} objects of {args.size} bytes: {out[:200]!r}")
            own.append(sum(float(t) for _, _, t in lines) / COUNT)
            marginal.append((wall_many - wall_one) / (COUNT - 1))
            print(f"200 URLs {wall_many * 1e3:6.1f} ms, 1 URL {wall_one * 1e3:5.1f} ms: marginal "
                  f"{marginal[-1] * 1e6:5.1f} us/request, curl's time_total {own[-1] * 1e6:5.1f} us", flush=True)
        print(f"median: marginal {statistics.median(marginal) * 1e6:.1f} us/request "
              f"({1 / statistics.median(marginal):,.0f} req/s), time_total {statistics.median(own) * 1e6:.1f} us "
              f"({1 / statistics.median(own):,.0f} req/s)")
    finally:
        lane.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
