"""The C ABI test (tests/c/test_fasts3.c) under ASan/UBSan/LSan, via tests/c/run_c_tests.py.

Runs on the lanes of PYFASTS3_TEST_SERVERS (default "moto,versitygw"), like the rest of the
suite. A missing gcc or server is a failure, not a skip: CI must not go green without it.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "tests" / "c" / "run_c_tests.py"


def test_gcc_is_available():
    assert shutil.which("gcc"), "gcc is required for the C ABI test (apt-get install gcc)"


def test_c_abi_under_sanitizers():
    assert shutil.which("gcc"), "gcc is required for the C ABI test (apt-get install gcc)"
    # The C tests have no CA to hand a TLS lane's server: plain lanes only.
    lanes = os.environ.get("PYFASTS3_TEST_SERVERS", "moto,versitygw").split(",")
    servers = ",".join(s for s in lanes if s and s != "versitygw-tls")
    proc = subprocess.run(
        [sys.executable, str(RUNNER), "--servers", servers],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"run_c_tests.py exited with {proc.returncode}:\n{output[-20000:]}"
    summary = re.findall(r"^(\d+) passed, (\d+) failed$", proc.stdout, re.M)
    assert summary, f"no summary line:\n{output[-5000:]}"
    passed, failed = map(int, summary[-1])
    assert failed == 0 and passed > 100, summary[-1]
    assert "LeakSanitizer caught the leaked fasts3_object_page" in proc.stdout, \
        "the leak selftest did not prove that LSan catches a leaked libfasts3 object"
