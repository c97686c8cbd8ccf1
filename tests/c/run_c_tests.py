#!/usr/bin/env python3
"""Build and run the C ABI tests (tests/c/test_fasts3.c, and test_async.c for the completion
queue) under AddressSanitizer, UBSan and
LeakSanitizer, against local S3 servers; also build examples/quickstart.c the same way and run
it as a README reader would (endpoint and credentials in the AWS_* environment, BUCKET KEY as
arguments), checking what it prints about the seeded objects and the object it writes, reads
back, lists and deletes, and how it fails on a missing one.

    python tests/c/run_c_tests.py                  # lanes from PYFASTS3_TEST_SERVERS (default versitygw,moto)
    python tests/c/run_c_tests.py --servers moto   # one lane
    python tests/c/run_c_tests.py --no-leak-selftest

How the memory checker is set up (and why it is ASan, not valgrind):

- The test is compiled with gcc -fsanitize=address,undefined. Because the *executable* is
  instrumented, gcc links libasan first in its DT_NEEDED list, so ASan's malloc/free
  interposers are in place before libfasts3.so is loaded: no LD_PRELOAD is needed (that is
  only required when the main program is not instrumented, e.g. python). The Rust library is
  not instrumented, but Rust's global allocator is the system malloc, so every Rust
  allocation goes through ASan's allocator: a libfasts3 object the C side forgets to free
  (page, bytes, cursor, client...) is a leak LeakSanitizer reports, with a Rust stack.
- ASAN_OPTIONS=detect_leaks=1 turns LeakSanitizer on (fast_unwind_on_malloc=0: the Rust code
  has no frame pointers, so allocation stacks are unwound from .eh_frame); with -fno-sanitize-recover UBSan errors
  abort the run. No suppressions are needed: libfasts3's one-time global allocations (the
  tokio runtime behind a static Mutex, thread-locals, its worker threads) stay reachable from
  globals and live threads at exit, so LSan does not report them. tests/c/lsan.supp exists
  and is passed to LSan, but lists nothing; if a future libfasts3 needs an entry there, it
  must name the specific global frame and say why, never a blanket pattern.
- Proof that leaks are caught: unless --no-leak-selftest, the runner also builds the test with
  -DFASTS3_TEST_INJECT_LEAK (which skips exactly one fasts3_object_page_free) and requires
  that run to fail with a LeakSanitizer report naming fasts3_head. If LSan were silently
  off or blind to Rust allocations, that selftest fails the runner.
- The test fork()s once; the child leaves with _exit() (no leak check there) because it
  deliberately abandons its copy of the parent's runtime (see rust/engine/runtime.rs).
- Why not valgrind: memcheck runs the plain (uninstrumented) build about as fast here, but its
  leak check reports ~170 "possibly lost" blocks held through interior pointers by tokio and
  aws-sdk globals (a suppression list for them would have to name broad library frames), and
  it checks the forked child too, which abandons the parent's runtime on purpose. ASan also
  catches overflows of the C side's stack/heap buffers precisely, which memcheck does not
  for stack arrays. So ASan+UBSan+LSan it is.

Exit status is non-zero if compiling, any lane, or the leak selftest fails. The last line is
"N passed, M failed" over all checks of all lanes.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from s3servers import S3Server, start  # noqa: E402

LIB_DIR = ROOT / "pyfasts3"
INCLUDE = ROOT / "include"
SUPPRESSIONS = HERE / "lsan.supp"

CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-O1",
          "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
          "-I", str(INCLUDE)]
LDFLAGS = [f"-L{LIB_DIR}", f"-Wl,-rpath,{LIB_DIR}", "-lfasts3", "-pthread"]

# Keep in sync with the header comment of test_fasts3.c (and tests/c/check.h).
PART_SIZE = 262144
SMALL_SIZE = 100
MULTI_SIZE = 3 * 1024 * 1024 + 12345

SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$", re.M)


def quiet_moto() -> None:
    # ThreadedMotoServer runs in this process; its werkzeug access log would drown the output.
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def warn_if_stale() -> None:
    lib = LIB_DIR / "libfasts3.so"
    built = lib.stat().st_mtime
    newer = [p for p in (ROOT / "rust").rglob("*.rs") if p.stat().st_mtime > built]
    if newer:
        print(f"WARNING: {len(newer)} Rust sources are newer than {lib} (e.g. {newer[0].relative_to(ROOT)}); "
              "rebuild with `python build.py`", flush=True)


def pattern(n: int) -> bytes:
    return bytes((i * 31 + 7) & 0xFF for i in range(n))


def crate_version() -> str:
    """The version in Cargo.toml, which fasts3_version() must return."""
    match = re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M)
    if match is None:
        raise SystemExit("no version in Cargo.toml")
    return match.group(1)


def compile_c(sources: list[Path], out: Path, extra: list[str] = ()) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        raise SystemExit("gcc not found: the C ABI test needs gcc (apt-get install gcc)")
    cmd = [gcc, *CFLAGS, *extra, *map(str, sources), "-o", str(out), *LDFLAGS]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def seed(server: S3Server) -> tuple[str, str]:
    """A fresh bucket with the objects test_fasts3.c expects; returns (bucket, etag of small)."""
    s3 = server.boto3_client()
    bucket = f"c-abi-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=bucket)
    data = pattern(MULTI_SIZE)
    small = s3.put_object(Bucket=bucket, Key="small", Body=data[:SMALL_SIZE], ContentType="text/plain")
    s3.put_object(Bucket=bucket, Key="multi", Body=data)
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    for i in range(20):
        s3.put_object(Bucket=bucket, Key=f"list/k{i:02d}", Body=b"x" * i)
    for key in ("list/sub1/a", "list/sub1/b", "list/sub2/a", "list/sub2/b", "list/sub3/a"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"y")
    etag = small["ETag"]
    assert etag.strip('"') == hashlib.md5(data[:SMALL_SIZE]).hexdigest(), etag
    return bucket, etag


def sanitizer_env(server: S3Server, bucket: str, etag: str) -> dict:
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("AWS_"):
            del env[name]  # the test configures everything explicitly
    env.update({
        "FASTS3_TEST_ENDPOINT": server.endpoint_url,
        "FASTS3_TEST_ACCESS_KEY_ID": server.access_key_id,
        "FASTS3_TEST_SECRET_ACCESS_KEY": server.secret_access_key,
        "FASTS3_TEST_REGION": server.region,
        "FASTS3_TEST_BUCKET": bucket,
        "FASTS3_TEST_SMALL_ETAG": etag,
        "FASTS3_TEST_VERIFIES_SIGNATURES": "1" if server.verifies_signatures else "0",
        # No HOME-based shared config can leak in.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1:detect_stack_use_after_return=1"
                        # libfasts3 is built without frame pointers: unwind allocation stacks
                        # through .eh_frame so leak reports name the Rust frames (fasts3_head...).
                        ":fast_unwind_on_malloc=0"
                        ":strict_string_checks=1:check_initialization_order=1",
        "LSAN_OPTIONS": f"suppressions={SUPPRESSIONS}:print_suppressions=1:report_objects=1",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    })
    env.pop("LD_PRELOAD", None)
    return env


def run(binary: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary)], env=env, capture_output=True, text=True, timeout=timeout)


def run_async_test(name: str, binary: Path, env: dict) -> tuple[int, int, list[str]]:
    """tests/c/test_async.c (the completion queue) on the same seeded bucket."""
    print(f"--- test_async on {name} ---", flush=True)
    proc = run(binary, env)
    sys.stdout.write(proc.stdout)
    if proc.stderr:
        sys.stdout.write("--- stderr ---\n" + proc.stderr + "--------------\n")
    summaries = SUMMARY.findall(proc.stdout)
    passed, failed = (int(summaries[-1][0]), int(summaries[-1][1])) if summaries else (0, 1)
    problems = []
    if not summaries or proc.returncode != 0 or failed or passed == 0:
        problems.append(f"{name}: test_async failed (exit {proc.returncode}, {passed} passed, {failed} failed)")
    if "ERROR: AddressSanitizer" in proc.stderr or "ERROR: LeakSanitizer" in proc.stderr \
            or "runtime error:" in proc.stderr:
        problems.append(f"{name}: sanitizer report on stderr (test_async)")
    return passed, failed, problems


# What examples/quickstart.c prints after its read: a put_from, get_ranges (first 5 and last 10
# bytes), list_all of its prefix, delete; its prefix ends in its pid.
QUICKSTART_PREFIX = "fasts3-quickstart-"
QUICKSTART_TEXT = "Hello from the libfasts3 C quickstart"
WRITES = (
    r"wrote s3://{bucket}/(?P<prefix>{qp}\d+/)hello\.txt: {n} bytes, 0 parts \(0: a single PUT\)",
    r'ranges: "{first}" "{last}"',
    r"listed s3://{bucket}/(?P=prefix): 1 object",
    r"  (?P=prefix)hello\.txt {n} bytes",
    r"deleted s3://{bucket}/(?P=prefix)hello\.txt",
)


def writes(bucket: str) -> str:
    return "\n".join(WRITES).format(bucket=re.escape(bucket), qp=re.escape(QUICKSTART_PREFIX),
                                    n=len(QUICKSTART_TEXT), first=re.escape(QUICKSTART_TEXT[:5]),
                                    last=re.escape(QUICKSTART_TEXT[-10:]))


def run_quickstart(name: str, binary: Path, server: S3Server, bucket: str, etag: str,
                   env: dict) -> tuple[int, int, list[str]]:
    """examples/quickstart.c against the seeded bucket: what it prints for each object must
    match what seed() stored, then what it writes, reads back, lists and deletes (WRITES), and
    nothing of it may stay stored; a missing key must fail with the error's fields."""
    print(f"--- examples/quickstart.c on {name} ---", flush=True)
    env = {k: v for k, v in env.items() if not k.startswith("FASTS3_TEST_")}
    env.update(server.env())
    checks: list[tuple[bool, str]] = []

    def check(ok: bool, what: str, proc: subprocess.CompletedProcess) -> None:
        if not ok:
            what += f"\n  exit {proc.returncode}\n  stdout: {proc.stdout!r}\n  stderr: {proc.stderr[-3000:]!r}"
        checks.append((ok, what))

    def clean(proc: subprocess.CompletedProcess) -> bool:
        return not any(report in proc.stderr for report in
                       ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"))

    data = pattern(MULTI_SIZE)
    for key, size, content_type, object_etag in (
        ("small", SMALL_SIZE, "text/plain", etag),
        ("multi", MULTI_SIZE, None, f'"{hashlib.md5(data).hexdigest()}"'),
        ("empty", 0, None, f'"{hashlib.md5(b"").hexdigest()}"'),
    ):
        proc = subprocess.run([str(binary), bucket, key], env=env, capture_output=True, text=True, timeout=120)
        lines = proc.stdout.splitlines()
        head = f"s3://{bucket}/{key}: {size} bytes, ETag {object_etag}, Content-Type "
        first = " ".join(f"{b:02x}" for b in data[:min(size, 16)])
        read = f"read {size} bytes; first bytes:" + (f" {first}" if first else "")
        ok = proc.returncode == 0 and len(lines) == 2 + len(WRITES) and lines[0].startswith(head) \
            and (content_type is None or lines[0] == head + content_type) and lines[1] == read and clean(proc)
        check(ok, f"quickstart {bucket} {key}: exit 0, prints {head!r}... and {read!r}", proc)
        written = "\n".join(lines[2:])
        check(re.fullmatch(writes(bucket), written) is not None,
              f"quickstart {bucket} {key}: then writes, reads two ranges of, lists and deletes its own object", proc)
    left = server.boto3_client().list_objects_v2(Bucket=bucket, Prefix=QUICKSTART_PREFIX).get("KeyCount", 0)
    checks.append((left == 0, f"quickstart left no object under {QUICKSTART_PREFIX} ({left} found)"))

    proc = subprocess.run([str(binary), bucket, "no/such/key"], env=env, capture_output=True, text=True, timeout=120)
    check(proc.returncode == 1 and proc.stdout == "" and clean(proc)
          and "fasts3_head failed: FASTS3_NO_SUCH_KEY, NoSuchKey: " in proc.stderr and "no/such/key" in proc.stderr,
          "quickstart on a missing key: exit 1, fasts3_head failed: FASTS3_NO_SUCH_KEY, NoSuchKey: <message naming "
          "the key>", proc)
    proc = subprocess.run([str(binary)], env=env, capture_output=True, text=True, timeout=120)
    check(proc.returncode == 2 and "usage:" in proc.stderr and clean(proc), "quickstart without arguments: exit 2, usage",
          proc)

    for ok, what in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {what}")
    failed = sum(not ok for ok, _ in checks)
    problems = [f"{name}: examples/quickstart.c: {failed} checks failed"] if failed else []
    return len(checks) - failed, failed, problems


def lane(name: str, binary: Path, leak_binary: Path | None,
         async_binary: Path | None = None, quickstart: Path | None = None) -> tuple[int, int, list[str]]:
    """Run the test on one server; returns (passed, failed, problems)."""
    problems: list[str] = []
    print(f"\n=== lane {name} ===", flush=True)
    server = start(name)
    try:
        bucket, etag = seed(server)
        env = sanitizer_env(server, bucket, etag)
        proc = run(binary, env)
        sys.stdout.write(proc.stdout)
        if proc.stderr:
            sys.stdout.write("--- stderr ---\n" + proc.stderr + "--------------\n")
        summaries = SUMMARY.findall(proc.stdout)
        passed, failed = (int(summaries[-1][0]), int(summaries[-1][1])) if summaries else (0, 1)
        if not summaries:
            problems.append(f"{name}: no summary line (exit {proc.returncode})")
        if proc.returncode != 0:
            problems.append(f"{name}: test_fasts3 exited with {proc.returncode}")
        if "ERROR: AddressSanitizer" in proc.stderr or "ERROR: LeakSanitizer" in proc.stderr \
                or "runtime error:" in proc.stderr:
            problems.append(f"{name}: sanitizer report on stderr")
        if failed:
            problems.append(f"{name}: {failed} checks failed")
        if passed == 0:
            problems.append(f"{name}: no checks passed")
        if async_binary is not None:
            a_passed, a_failed, a_problems = run_async_test(name, async_binary, env)
            passed, failed, problems = passed + a_passed, failed + a_failed, problems + a_problems
        if quickstart is not None:
            q_passed, q_failed, q_problems = run_quickstart(name, quickstart, server, bucket, etag, env)
            passed, failed, problems = passed + q_passed, failed + q_failed, problems + q_problems

        if leak_binary is not None:
            print(f"--- leak selftest on {name}: one fasts3_object_page_free removed ---", flush=True)
            leak = run(leak_binary, env)
            report = leak.stderr
            caught = leak.returncode != 0 and "ERROR: LeakSanitizer: detected memory leaks" in report \
                and "fasts3_head" in report
            tail = "\n".join(report.splitlines()[:40])
            print(tail)
            print(f"leak selftest: exit {leak.returncode}; LeakSanitizer "
                  f"{'caught the leaked fasts3_object_page' if caught else 'DID NOT catch the leak'}", flush=True)
            if not caught:
                problems.append(f"{name}: LeakSanitizer did not report the deliberately leaked page")
            if any(line.startswith("FAIL") for line in leak.stdout.splitlines()):
                problems.append(f"{name}: leak selftest build had failing checks")
    finally:
        server.stop()
    return passed, failed, problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default=os.environ.get("PYFASTS3_TEST_SERVERS", "versitygw,moto"),
                    help="comma-separated lanes: versitygw, moto")
    ap.add_argument("--no-leak-selftest", action="store_true",
                    help="skip proving that LSan catches a deliberately leaked page")
    ap.add_argument("--build-dir", help="where to put the binaries (default: a temp dir)")
    args = ap.parse_args()

    lib = LIB_DIR / "libfasts3.so"
    if not lib.exists():
        print(f"{lib} is missing: run `python build.py` first", file=sys.stderr)
        return 1
    warn_if_stale()
    quiet_moto()
    servers = [s for s in args.servers.split(",") if s]
    if not servers:
        print("no servers requested", file=sys.stderr)
        return 1

    build = Path(args.build_dir) if args.build_dir else Path(tempfile.mkdtemp(prefix="fasts3-c-"))
    build.mkdir(parents=True, exist_ok=True)
    try:
        binary = build / "test_fasts3"
        leak_binary = build / "test_fasts3_leak"
        expected_version = f'-DFASTS3_CRATE_VERSION="{crate_version()}"'
        compile_c([HERE / "test_fasts3.c"], binary, [expected_version])
        async_binary = build / "test_async"
        compile_c([HERE / "test_async.c"], async_binary)
        quickstart = build / "quickstart"
        compile_c([ROOT / "examples" / "quickstart.c"], quickstart)
        if not args.no_leak_selftest:
            compile_c([HERE / "test_fasts3.c"], leak_binary, [expected_version, "-DFASTS3_TEST_INJECT_LEAK"])

        total_passed = total_failed = 0
        problems: list[str] = []
        for i, name in enumerate(servers):
            # The leak selftest needs one server only: run it on the first lane.
            selftest = None if args.no_leak_selftest or i else leak_binary
            passed, failed, lane_problems = lane(name, binary, selftest, async_binary, quickstart)
            total_passed += passed
            total_failed += failed
            problems += lane_problems
    finally:
        if not args.build_dir:
            shutil.rmtree(build, ignore_errors=True)

    print()
    for p in problems:
        print(f"PROBLEM: {p}")
    print(f"lanes: {', '.join(servers)}; examples/quickstart.c compiled and run on each")
    print(f"{total_passed} passed, {total_failed} failed")
    return 1 if problems or total_failed else 0


if __name__ == "__main__":
    sys.exit(main())
