"""The embedding examples, built and run against each server lane: examples/cpp (C++17 under
ASan/UBSan/LSan) and examples/go (cgo, many goroutines at once, under the race detector). The
C example is built by tests/c/run_c_tests.py.

Each example reads an object this test uploads with boto3 (whole and in ranges), writes
objects, reads them back, lists, and checks one failure's error fields; it exits non-zero on
any wrong byte or unexpected error. The test then reads what the example wrote with boto3, so a
write and a read that were wrong in the same way cannot pass either. A second test uploads the
object with one byte changed and requires each example to fail naming that byte: proof that
the examples' checks can fail.

A missing g++ or go fails its tests with the reason (as a missing gcc fails test_c_abi.py): CI
must not go green without running the examples.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "pyfasts3" / "libfasts3.so"
CPP_SOURCE = ROOT / "examples" / "cpp" / "example.cpp"
GO_MODULE = ROOT / "examples" / "go"

# The examples take their endpoint from the environment, CA bundle included: every lane works.
LANES = ("moto", "versitygw", "versitygw-tls")

# Where `go build -race` works (a subset of Go's list, enough for CI and developers' machines).
RACE_PLATFORMS = {"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"}

MiB = 1 << 20
SEED_SIZE = 3 * MiB + 12345
RUN_TIMEOUT = 300


def pattern(size: int, salt: int) -> bytes:
    """Byte i is (i * 0x9E3779B97F4A7C15 + salt * 0xBF58476D1CE4E5B9) >> 56 (mod 2**64), as
    patternByte / pattern_byte in the examples compute it."""
    with np.errstate(over="ignore"):
        x = np.arange(size, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) \
            + np.uint64((salt * 0xBF58476D1CE4E5B9) % 2**64)
    return (x >> np.uint64(56)).astype(np.uint8).tobytes()


def test_pattern_matches_the_examples():
    # Spot values computed by hand, so the Python side cannot drift from the C++ and Go ones.
    def byte(i: int, salt: int) -> int:
        return ((i * 0x9E3779B97F4A7C15 + salt * 0xBF58476D1CE4E5B9) % 2**64) >> 56

    data = pattern(70000, 3)
    assert [data[i] for i in (0, 1, 255, 256, 69999)] == [byte(i, 3) for i in (0, 1, 255, 256, 69999)]
    assert data[:256] != data[256:512], "the pattern must not repeat every 256 bytes"
    for source in (CPP_SOURCE, GO_MODULE / "main.go"):
        text = source.read_text()
        assert "0x9E3779B97F4A7C15" in text and "0xBF58476D1CE4E5B9" in text and ">> 56" in text, source


@pytest.fixture(scope="module")
def build_dir():
    assert LIB.exists(), f"{LIB} is missing: run `python build.py` first"
    path = Path(tempfile.mkdtemp(prefix="fasts3-embed-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def build(cmd: list[str], cwd: Path, env: dict | None = None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stdout}{proc.stderr}"


@pytest.fixture(scope="module")
def cpp_example(build_dir) -> Path:
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.fail("g++ not found: the C++ example needs it (apt-get install g++)")
    out = build_dir / "fasts3-cpp-example"
    build([gxx, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-g", "-O1",
           "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
           "-I", str(ROOT / "include"), str(CPP_SOURCE), "-o", str(out),
           f"-L{LIB.parent}", f"-Wl,-rpath,{LIB.parent}", "-lfasts3", "-pthread"], cwd=ROOT)
    return out


def find_go() -> str | None:
    candidates = [shutil.which("go"), str(Path.home() / "go" / "bin" / "go"), "/usr/local/go/bin/go"]
    return next((c for c in candidates if c and Path(c).is_file()), None)


def writable(path: str) -> bool:
    """Whether `path`, or the nearest directory above it that exists, is writable."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return bool(path) and os.access(p, os.W_OK)


def go_env(go: str) -> dict:
    env = dict(os.environ)
    # No network but the module proxy (and the module has no dependencies), no toolchain
    # download, cgo on.
    env.update({"GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", "CGO_ENABLED": "1"})
    for name in ("GOCACHE", "GOPATH"):
        value = subprocess.run([go, "env", name], env=env, capture_output=True, text=True).stdout.strip()
        if not writable(value):
            env[name] = str(Path(tempfile.gettempdir()) / f"pyfasts3-{name.lower()}")
    # Key the cgo build on the header's contents: the go build cache is not guaranteed to
    # notice a change of a header outside the module.
    digest = hashlib.sha256((ROOT / "include" / "fasts3.h").read_bytes()).hexdigest()[:16]
    env["CGO_CFLAGS"] = f"-O2 -g -DFASTS3_HEADER_SHA256_{digest}"
    return env


@pytest.fixture(scope="module")
def go_example(build_dir) -> Path:
    go = find_go()
    if go is None:
        pytest.fail("go not found: the Go example needs the Go toolchain (https://go.dev/dl)")
    env = go_env(go)
    out = build_dir / "fasts3-go-example"
    build([go, "vet", "./..."], cwd=GO_MODULE, env=env)
    # With the race detector where Go has one: the goroutines share one client.
    platform = subprocess.run([go, "env", "GOOS", "GOARCH"], env=env, capture_output=True, text=True)
    race = ["-race"] if "/".join(platform.stdout.split()) in RACE_PLATFORMS else []
    build([go, "build", *race, "-o", str(out), "."], cwd=GO_MODULE, env=env)
    return out


def example_env(server) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "LD_PRELOAD"}
    env.update(server.env())
    env.update({
        # Nothing from the home directory's AWS files can leak in.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        # For the C++ build: leaks of libfasts3 objects are errors (as in tests/c).
        "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:fast_unwind_on_malloc=0",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        # For the Go build: a data race ends the run with a failure.
        "GORACE": "halt_on_error=1 exitcode=66",
    })
    return env


def seed(s3, data: bytes) -> tuple[str, str]:
    """A fresh bucket with PREFIX/seed.bin holding `data`; returns (bucket, prefix)."""
    bucket = f"emb-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=bucket)
    prefix = "embed/"
    s3.put_object(Bucket=bucket, Key=prefix + "seed.bin", Body=data)
    return bucket, prefix


def run_example(binary: Path, server, bucket: str, prefix: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), bucket, prefix], env=example_env(server), capture_output=True,
                          text=True, timeout=RUN_TIMEOUT)


def assert_succeeded(proc: subprocess.CompletedProcess) -> None:
    output = f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-20000:]}"
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{output}"
    assert proc.stdout.rstrip().endswith("OK: all checks passed"), output
    for report in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "WARNING: DATA RACE", "FAILED"):
        assert report not in proc.stderr, output


def assert_object(s3, bucket: str, key: str, expected: bytes) -> None:
    got = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert len(got) == len(expected), f"{key}: {len(got)} bytes, expected {len(expected)}"
    assert got == expected, f"{key}: wrong bytes (first difference at " \
        f"{next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)})"


def test_cpp_example(server, s3, cpp_example):
    bucket, prefix = seed(s3, pattern(SEED_SIZE, 0))
    proc = run_example(cpp_example, server, bucket, prefix)
    assert_succeeded(proc)
    out = proc.stdout
    assert f"get_into: {SEED_SIZE} bytes of seed.bin verified" in out, out
    assert "get_ranges: 4 ranges verified" in out, out
    assert f"put_from: {12 * MiB + 7} bytes in 3 parts, read back and verified" in out, out
    assert f"upload: {5 * MiB + 100000} bytes streamed in 2 parts, read back and verified" in out, out
    assert f"list: 2 objects under {prefix}cpp/ with the sizes written" in out, out
    failure = re.search(r"^expected failure: (.*)$", out, re.M)
    assert failure, out
    assert "status FASTS3_NO_SUCH_KEY, code NoSuchKey, HTTP 404" in failure.group(1), failure.group(1)
    assert f"bucket {bucket}, key {prefix}no-such-key" in failure.group(1), failure.group(1)

    # What the example wrote, read back by another client.
    assert_object(s3, bucket, prefix + "cpp/put.bin", pattern(12 * MiB + 7, 1))
    assert_object(s3, bucket, prefix + "cpp/stream.bin", pattern(5 * MiB + 100000, 2))
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_go_example(server, s3, go_example):
    bucket, prefix = seed(s3, pattern(SEED_SIZE, 0))
    proc = run_example(go_example, server, bucket, prefix)
    assert_succeeded(proc)
    summary = re.search(r"^16 goroutines x 3 rounds .*every byte verified, on (\d+) OS threads$", proc.stdout, re.M)
    assert summary, proc.stdout
    # The per-call errors were checked from goroutines spread over several OS threads.
    assert int(summary.group(1)) > 1, proc.stdout

    # What the example wrote, read back by another client (sizes and salts as in main.go).
    listed = {o["Key"]: o["Size"] for o in
              s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "go/").search("Contents")}
    expected_keys = {f"{prefix}go/w{w:02d}/r{r}.bin" for w in range(16) for r in range(3)} | {f"{prefix}go/stream.bin"}
    assert set(listed) == expected_keys
    for w in range(16):
        for r in range(3):
            assert_object(s3, bucket, f"{prefix}go/w{w:02d}/r{r}.bin", pattern(100000 + 1000 * w + r, 100 + 10 * w + r))
    assert_object(s3, bucket, prefix + "go/stream.bin", pattern(5 * MiB + 100000, 7))
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.parametrize("example", ["cpp_example", "go_example"])
def test_examples_fail_on_a_wrong_byte(server, s3, example, request):
    """The seed object with one byte changed (its checksum matching, so libfasts3 rightly
    returns it): the example's own check must catch it and exit non-zero."""
    binary = request.getfixturevalue(example)
    data = bytearray(pattern(SEED_SIZE, 0))
    wrong_at = SEED_SIZE // 2 + 3
    data[wrong_at] ^= 0x5A
    bucket, prefix = seed(s3, bytes(data))
    proc = run_example(binary, server, bucket, prefix)
    assert proc.returncode == 1, f"exit status {proc.returncode}\n{proc.stdout}\n{proc.stderr[-5000:]}"
    assert "FAILED:" in proc.stderr and f"wrong byte at offset {wrong_at}" in proc.stderr, proc.stderr[-5000:]
    assert "OK: all checks passed" not in proc.stdout
