#!/usr/bin/env python3
"""Command-line copies, both directions: ``pyfasts3 cp`` against ``aws s3 cp`` semantics
(boto3's s3transfer) and s5cmd, on a local versitygw (posix backend).

    python bench/cli_copy.py [--reps 3] [--data-dir /var/tmp] [--out bench/cli_copy]
                             [--tools pyfasts3,s3transfer,s5cmd,awscli] [--cases ...]

Cases (issue 11, "Benchmarks"):

- ``prefix-down``: ``cp -r`` of a prefix of 2,000 x 256 KiB objects to a local directory;
- ``prefix-up``:   a local directory of the same 2,000 files to a new prefix;
- ``1GiB-down`` / ``1GiB-up``: one 1 GiB object / file.

Tools, each run as its own process (so every row pays its own interpreter or binary start-up,
as a user typing the command does):

- ``pyfasts3``: ``python -m pyfasts3 cp [-r] -q --no-progress`` (pyfasts3/cli.py, defaults).
- ``s3transfer``: ``python bench/cli_copy.py --s3transfer-worker ...``: what ``aws s3 cp``
  does, without the AWS CLI around it: list the prefix (or walk the directory), then one
  ``s3transfer.manager.TransferManager`` with boto3's default ``TransferConfig`` (10 threads,
  8 MiB multipart threshold and parts, like the AWS CLI's defaults) and one transfer per file.
- ``s5cmd``: ``s5cmd --endpoint-url URL cp`` with its defaults (256 workers, 5 parts of 50 MiB
  in flight per file). s5cmd is a Go tool (MIT), found on PATH or in ~/go/bin; its row is
  skipped with a message when it is missing. Install (pinned to the version measured)::

      go install github.com/peak/s5cmd/v2@v2.3.0

  Where the module registry serves that version but not the module's version list (``go
  install`` then fails with "loading deprecation ... 403"), build it from a scratch module
  instead: ``go mod init tmp && go get github.com/peak/s5cmd/v2@v2.3.0 && go build -o
  ~/go/bin/s5cmd github.com/peak/s5cmd/v2`` (with a one-line ``tools.go`` importing it).
- ``awscli``: the real ``aws s3 cp [--recursive] --only-show-errors`` when the ``aws``
  command is on PATH (awscli v1 runs on the same s3transfer); skipped otherwise.

Each repetition runs every case with every tool, the tools' order rotated per repetition
(interleaved, so drift on this shared machine hits everyone alike). Every copy is checked
byte for byte: downloads by the size and CRC-32 of every local file, uploads by the size and
CRC-32 of every file the server stored (versitygw's posix backend keeps objects as plain files
under ``<root>/<bucket>/<key>``), and the object count. Local directories and uploaded prefixes
are deleted and ``sync``ed between runs, so one tool's dirty pages are not written back on the
next one's time.

Reported per case and tool: MB/s (10^6 bytes per second of wall time, process start to exit)
median, min and max; client CPU seconds per GB (user + system of the tool's process and its
children, from ``getrusage(RUSAGE_CHILDREN)``); and versitygw's CPU seconds per GB. The
server data and the local source files are written just before the runs on a 24 GiB machine:
reads come from a warm page cache (checked with ``fincore`` when it is installed and
reported). The server runs on the same 2 cores as the clients: the figures are indicative,
comparable within one run only.

Writes ``<out>.json`` (every sample) and ``<out>.md`` (the table).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

BUCKET = "clibench"
PREFIX_COUNT = 2000
PREFIX_SIZE = 256 * KiB
BIG_SIZE = 1 * GiB
SRC_PREFIX = "prefix/"
BIG_KEY = "big/obj-1GiB"

CASES = ["prefix-down", "prefix-up", "1GiB-down", "1GiB-up"]
TOOLS = ["pyfasts3", "s3transfer", "s5cmd", "awscli"]


# -- the s3transfer worker (a separate process, like the other tools) ---------------------

def s3transfer_worker(argv: List[str]) -> int:
    """``--s3transfer-worker {down,up} SRC DST [-r]``: aws s3 cp's transfer path, bare.

    Endpoint, region and keys come from the AWS_* environment (AWS_ENDPOINT_URL included,
    which botocore reads). Exit 0, or 1 with the first error on stderr."""
    import boto3
    from boto3.s3.transfer import TransferConfig
    from s3transfer.manager import TransferManager

    direction, src, dst = argv[0], argv[1], argv[2]
    recursive = "-r" in argv[3:]
    client = boto3.client("s3")
    jobs: List[Tuple[str, str, str]] = []  # (bucket, key, local)
    if direction == "down":
        bucket, _, key = src[len("s3://"):].partition("/")
        if recursive:
            paginator = client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=key):
                for obj in page.get("Contents", []):
                    jobs.append((bucket, obj["Key"], os.path.join(dst, obj["Key"][len(key):])))
        else:
            jobs.append((bucket, key, dst))
    else:
        bucket, _, key = dst[len("s3://"):].partition("/")
        if recursive:
            for root, _dirs, files in os.walk(src):
                for name in files:
                    local = os.path.join(root, name)
                    rel = os.path.relpath(local, src).replace(os.sep, "/")
                    jobs.append((bucket, key + rel, local))
        else:
            jobs.append((bucket, key, src))
    with TransferManager(client, TransferConfig()) as manager:
        futures = []
        for bucket, key, local in jobs:
            if direction == "down":
                os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
                futures.append(manager.download(bucket, key, local))
            else:
                futures.append(manager.upload(local, bucket, key))
        for f in futures:
            f.result()
    return 0


# -- data ---------------------------------------------------------------------------------

class Expected:
    """Names, sizes and CRC-32s of what every copy must reproduce."""

    def __init__(self) -> None:
        self.prefix: Dict[str, Tuple[int, int]] = {}   # relative name -> (size, crc)
        self.big: Tuple[int, int] = (0, 0)


def seed(bucket_dir: Path, local_src: Path) -> Expected:
    """The server's objects (plain files + versitygw's ETag xattr, as bench/workloads.py
    seeds) and the identical local source files for the upload cases."""
    import numpy as np

    from workloads import _obj

    exp = Expected()
    rng = np.random.default_rng(20261130)
    blob = rng.bytes(PREFIX_COUNT * PREFIX_SIZE)
    (local_src / "dir").mkdir(parents=True)
    for i in range(PREFIX_COUNT):
        name = f"k{i:05d}"
        part = memoryview(blob)[i * PREFIX_SIZE:(i + 1) * PREFIX_SIZE]
        o = _obj(bucket_dir, SRC_PREFIX + name, part)
        (local_src / "dir" / name).write_bytes(part)
        exp.prefix[name] = (o.size, o.crc)
    del blob
    big = rng.bytes(BIG_SIZE)
    o = _obj(bucket_dir, BIG_KEY, big)
    (local_src / "obj-1GiB").write_bytes(big)
    exp.big = (o.size, o.crc)
    del big
    os.sync()
    return exp


def crc_file(path: Path) -> Tuple[int, int]:
    crc, n = 0, 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(16 * MiB)
            if not chunk:
                return n, crc
            n += len(chunk)
            crc = zlib.crc32(chunk, crc)


class WrongResult(AssertionError):
    pass


def check_dir(directory: Path, expected: Dict[str, Tuple[int, int]], who: str) -> None:
    """Exactly the expected files (no more, no fewer), each with the expected size and CRC."""
    if not directory.is_dir():
        raise WrongResult(f"{who}: {directory} does not exist")
    found = sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())
    if found != sorted(expected):
        missing = sorted(set(expected) - set(found))[:3]
        extra = sorted(set(found) - set(expected))[:3]
        raise WrongResult(f"{who}: {len(found)} files in {directory}, expected {len(expected)}; "
                          f"missing e.g. {missing}, unexpected e.g. {extra}")
    for name, want in expected.items():
        got = crc_file(directory / name)
        if got != want:
            raise WrongResult(f"{who}: {directory / name}: {got[0]} bytes crc {got[1]:08x}, "
                              f"expected {want[0]} bytes crc {want[1]:08x}")


def check_file(path: Path, want: Tuple[int, int], who: str) -> None:
    if not path.is_file():
        raise WrongResult(f"{who}: {path} does not exist")
    got = crc_file(path)
    if got != want:
        raise WrongResult(f"{who}: {path}: {got[0]} bytes crc {got[1]:08x}, expected {want[0]} bytes crc {want[1]:08x}")


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def page_cache_note(paths: List[Path]) -> str:
    """What fincore says of the files the runs read (resident / total), or why not known."""
    exe = shutil.which("fincore")
    if not exe:
        return "not checked (no fincore)"
    files = []
    for p in paths:
        files += [str(f) for f in p.rglob("*") if f.is_file()] if p.is_dir() else [str(p)]
    resident = total = 0
    for i in range(0, len(files), 500):
        out = subprocess.run([exe, "--bytes", "--noheadings", "--raw", "--output", "RES,SIZE"] + files[i:i + 500],
                             capture_output=True, text=True)
        for line in out.stdout.splitlines():
            res, size = line.split()
            resident += int(res)
            total += int(size)
    return f"{resident / max(total, 1):.0%} of {total / GiB:.2f} GiB resident (fincore)"


# -- tools ----------------------------------------------------------------------------------

def find_s5cmd() -> Optional[str]:
    return shutil.which("s5cmd") or next(
        (str(p) for p in [Path.home() / "go" / "bin" / "s5cmd"] if p.exists()), None)


def find_aws() -> Optional[str]:
    """The ``aws`` script beside this interpreter when there is one: a version manager's
    shim on PATH (pyenv's is a shell script) would add its own start-up to every run."""
    beside = Path(sys.executable).parent / "aws"
    return str(beside) if beside.exists() else shutil.which("aws")


def tool_version(tool: str, exe: Optional[str]) -> str:
    try:
        if tool == "s5cmd":
            out = subprocess.run(["go", "version", "-m", exe], capture_output=True, text=True, timeout=30).stdout
            for line in out.splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[0] == "mod" and parts[1] == "github.com/peak/s5cmd/v2":
                    return parts[2]
            return subprocess.run([exe, "version"], capture_output=True, text=True).stdout.strip()
        if tool == "awscli":
            r = subprocess.run([exe, "--version"], capture_output=True, text=True)
            return (r.stdout or r.stderr).strip().split()[0]
        if tool == "s3transfer":
            import boto3
            import s3transfer
            return f"s3transfer {s3transfer.__version__}, boto3 {boto3.__version__}"
        if tool == "pyfasts3":
            out = subprocess.run([sys.executable, "-c", "import pyfasts3; print(pyfasts3.__version__)"],
                                 capture_output=True, text=True, env=tool_env(None), cwd=ROOT)
            return "pyfasts3 " + out.stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"unknown ({e})"
    return "unknown"


LANE = None  # set in main


def tool_env(lane) -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if lane is not None:
        env.update({
            "AWS_ACCESS_KEY_ID": lane.access_key_id, "AWS_SECRET_ACCESS_KEY": lane.secret_access_key,
            "AWS_REGION": lane.region, "AWS_DEFAULT_REGION": lane.region, "AWS_ENDPOINT_URL": lane.endpoint_url,
            # No config or credential files of this machine's user leak into the runs.
            "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        })
        env.pop("AWS_PROFILE", None)
        env.pop("AWS_SESSION_TOKEN", None)
    return env


def command(tool: str, exe: str, lane, case: str, src: str, dst: str) -> List[str]:
    recursive = case.startswith("prefix")
    if tool == "pyfasts3":
        return [sys.executable, "-m", "pyfasts3", "--endpoint-url", lane.endpoint_url, "--region", lane.region,
                "cp"] + (["-r"] if recursive else []) + ["-q", "--no-progress", src, dst]
    if tool == "s3transfer":
        direction = "down" if case.endswith("down") else "up"
        return [sys.executable, str(Path(__file__).resolve()), "--s3transfer-worker", direction, src, dst] + (
            ["-r"] if recursive else [])
    if tool == "awscli":
        return [exe, "--endpoint-url", lane.endpoint_url, "s3", "cp"] + (["--recursive"] if recursive else []) + [
            "--only-show-errors", src, dst]
    if tool == "s5cmd":
        if recursive and case.endswith("down"):
            src = src.rstrip("/") + "/*"     # every object under the prefix, names kept
        if recursive and case.endswith("up"):
            src = src.rstrip("/") + "/*"
        return [exe, "--endpoint-url", lane.endpoint_url, "cp", src, dst]
    raise ValueError(tool)


def run_timed(cmd: List[str], env: Dict[str, str]) -> Tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr.decode(errors='replace')[-3000:]}"
                           f"\n{proc.stdout.decode(errors='replace')[-1000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


# -- main -----------------------------------------------------------------------------------

def summarize(samples: List[dict]) -> dict:
    rates = [s["mb_s"] for s in samples]
    return {
        "mb_s_median": statistics.median(rates), "mb_s_min": min(rates), "mb_s_max": max(rates),
        "cpu_s_per_gb": statistics.median(s["cpu_s_per_gb"] for s in samples),
        "server_cpu_s_per_gb": statistics.median(s["server_cpu_s_per_gb"] for s in samples),
        "reps": len(samples),
    }


def markdown(results: Dict[str, Dict[str, dict]], tools: List[str], meta: dict) -> str:
    lines = [
        f"versitygw {meta['versitygw']} (posix backend, 127.0.0.1), {meta['reps']} interleaved reps; "
        f"{meta['host']}; page cache: {meta['page_cache']}.",
        "",
        "| case | tool | MB/s median | min-max | client CPU s/GB | server CPU s/GB | vs pyfasts3 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for case in CASES:
        if case not in results:
            continue
        ours = results[case].get("pyfasts3", {}).get("mb_s_median")
        for tool in tools:
            r = results[case].get(tool)
            if r is None:
                continue
            ratio = f"{ours / r['mb_s_median']:.2f}x" if ours and tool != "pyfasts3" else ""
            lines.append(f"| {case} | {tool} | {r['mb_s_median']:,.0f} | {r['mb_s_min']:,.0f}-{r['mb_s_max']:,.0f} | "
                         f"{r['cpu_s_per_gb']:.2f} | {r['server_cpu_s_per_gb']:.2f} | {ratio} |")
    lines.append("")
    lines.append("vs pyfasts3: pyfasts3's median MB/s over that tool's (above 1 = pyfasts3 faster).")
    lines.append("Tools: " + "; ".join(f"{t}: {meta['versions'][t]}" for t in tools) + ".")
    for t, why in meta["skipped"].items():
        lines.append(f"Skipped {t}: {why}.")
    return "\n".join(lines) + "\n"


def main() -> int:
    global PREFIX_COUNT, BIG_SIZE
    if len(sys.argv) > 1 and sys.argv[1] == "--s3transfer-worker":
        return s3transfer_worker(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--data-dir", default="/var/tmp", help="parent of the run's directory (on disk)")
    parser.add_argument("--out", default=str(HERE / ".work" / "cli_copy"), help="writes OUT.json and OUT.md")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--keep-data", action="store_true")
    parser.add_argument("--prefix-count", type=int, default=PREFIX_COUNT, help="objects in the prefix (smoke runs)")
    parser.add_argument("--big-mib", type=int, default=BIG_SIZE // MiB, help="size of the big object (smoke runs)")
    args = parser.parse_args()
    PREFIX_COUNT, BIG_SIZE = args.prefix_count, args.big_mib * MiB

    sys.path.insert(0, str(HERE))
    import servers

    tools = [t for t in args.tools.split(",") if t]
    cases = [c for c in args.cases.split(",") if c]
    exes: Dict[str, Optional[str]] = {"pyfasts3": sys.executable, "s3transfer": sys.executable,
                                      "s5cmd": find_s5cmd(), "awscli": find_aws()}
    skipped = {}
    for t in list(tools):
        if exes.get(t) is None:
            why = {"s5cmd": "s5cmd not found on PATH or in ~/go/bin (go install github.com/peak/s5cmd/v2@v2.3.0)",
                   "awscli": "the aws command is not on PATH"}.get(t, "unknown tool")
            print(f"skipping {t}: {why}", flush=True)
            skipped[t] = why
            tools.remove(t)

    run_dir = servers.make_root(args.data_dir)
    data = run_dir / "server"
    data.mkdir()
    data.chmod(0o755)
    local = run_dir / "local"
    lane = servers.start_versitygw(data, run_dir / "versitygw.log")
    try:
        import boto3

        boto3.client("s3", endpoint_url=lane.endpoint_url, region_name=lane.region,
                     aws_access_key_id=lane.access_key_id,
                     aws_secret_access_key=lane.secret_access_key).create_bucket(Bucket=BUCKET)
        t0 = time.perf_counter()
        exp = seed(data / BUCKET, local / "src")
        print(f"seeded {PREFIX_COUNT} x {PREFIX_SIZE // KiB} KiB + {BIG_SIZE // MiB} MiB (and the same locally) in "
              f"{time.perf_counter() - t0:.1f} s under {run_dir}", flush=True)
        env = tool_env(lane)
        versions = {t: tool_version(t, exes[t]) for t in tools}
        print("tools: " + "; ".join(f"{t}: {v}" for t, v in versions.items()), flush=True)
        cache = page_cache_note([data / BUCKET, local / "src"])
        print(f"page cache before the runs: {cache}", flush=True)
        samples: Dict[str, Dict[str, List[dict]]] = {c: {t: [] for t in tools} for c in cases}
        for rep in range(args.reps):
            order = tools[rep % len(tools):] + tools[:rep % len(tools)]
            for case in cases:
                for tool in order:
                    tag = f"{tool}-{rep}"
                    if case == "prefix-down":
                        src, dst = f"s3://{BUCKET}/{SRC_PREFIX}", local / f"down-{tag}"
                        nbytes = PREFIX_COUNT * PREFIX_SIZE
                        dst_arg = str(dst) + "/"
                    elif case == "1GiB-down":
                        src, dst = f"s3://{BUCKET}/{BIG_KEY}", local / f"down-{tag}.bin"
                        nbytes = BIG_SIZE
                        dst_arg = str(dst)
                    elif case == "prefix-up":
                        src, dst = str(local / "src" / "dir"), data / BUCKET / f"up-{tag}"
                        nbytes = PREFIX_COUNT * PREFIX_SIZE
                        dst_arg = f"s3://{BUCKET}/up-{tag}/"
                    elif case == "1GiB-up":
                        src, dst = str(local / "src" / "obj-1GiB"), data / BUCKET / f"up1g-{tag}" / "obj-1GiB"
                        nbytes = BIG_SIZE
                        dst_arg = f"s3://{BUCKET}/up1g-{tag}/obj-1GiB"
                    else:
                        raise SystemExit(f"unknown case {case}")
                    cmd = command(tool, exes[tool], lane, case, src, dst_arg)
                    server0 = lane.cpu_seconds()
                    wall, cpu = run_timed(cmd, env)
                    server_cpu = lane.cpu_seconds() - server0
                    who = f"{tool} {case} rep {rep}"
                    if case.startswith("prefix"):
                        check_dir(dst, exp.prefix, who)
                    else:
                        check_file(dst, exp.big, who)
                    remove(dst.parent if case == "1GiB-up" else dst)
                    os.sync()
                    s = {"rep": rep, "wall_s": wall, "cpu_s": cpu, "server_cpu_s": server_cpu,
                         "mb_s": nbytes / wall / 1e6, "cpu_s_per_gb": cpu / (nbytes / 1e9),
                         "server_cpu_s_per_gb": server_cpu / (nbytes / 1e9)}
                    samples[case][tool].append(s)
                    print(f"rep {rep} {case:12} {tool:11} {s['mb_s']:8,.0f} MB/s  {wall:6.2f} s  "
                          f"client CPU {cpu:5.2f} s  server CPU {server_cpu:5.2f} s", flush=True)
        results = {c: {t: summarize(samples[c][t]) for t in tools} for c in cases}
        meta = {
            "versitygw": lane.version, "reps": args.reps, "versions": versions, "skipped": skipped,
            "host": f"{os.cpu_count()} cores, {platform.platform()}", "page_cache": cache,
            "python": platform.python_version(),
            "data": {"prefix": f"{PREFIX_COUNT} x {PREFIX_SIZE} B", "big": BIG_SIZE, "run_dir": str(run_dir)},
            "commands": {t: " ".join(command(t, exes[t], lane, c, "SRC", "DST")) for t in tools
                         for c in ["prefix-down"]},
        }
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps({"meta": meta, "results": results, "samples": samples},
                                                       indent=1) + "\n")
        table = markdown(results, tools, meta)
        out.with_suffix(".md").write_text(table)
        print("\n" + table)
        print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    finally:
        lane.stop()
        if not args.keep_data:
            shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
