"""Bugs found once, pinned so they stay fixed."""
import gc
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_failed_get_into_then_gc_does_not_crash_the_interpreter():
    """A get_into that raised used to leave its memoryview + cffi buffer export in a
    traceback cycle; clearing that cycle in the GC segfaulted CPython. Run in a child so a
    crash is a test failure, not a dead test run."""
    script = textwrap.dedent(
        """
        import gc, numpy as np, pyfasts3
        c = pyfasts3.Client("http://127.0.0.1:9", "us-east-1", access_key_id="a", secret_access_key="b")
        for buf in (bytearray(5), np.zeros((2, 3), np.float32), memoryview(bytearray(8))):
            try:
                c.get_into(buf, "bkt/key")
            except pyfasts3.S3Error:
                pass
            gc.collect()
        print("survived")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "survived" in proc.stdout
