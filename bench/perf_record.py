"""Sampling this process with perf during a block: the profile scripts' shared piece.

    with perf_record("/tmp/x.data"):      # None: no sampling, the block just runs
        ...

``perf record -e cpu-clock`` (the machines here have no hardware counters) at 2,000 Hz on
every thread of this process, nothing else. Call chains come from frame pointers (``-g``);
libfasts3 has none, so set ``PERF_CALLGRAPH="--call-graph dwarf,16384"`` for chains through it.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from typing import Iterator, Optional


@contextlib.contextmanager
def perf_record(out: Optional[str]) -> Iterator[None]:
    if not out:
        yield
        return
    callgraph = os.environ.get("PERF_CALLGRAPH", "-g").split()
    perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "2000", *callgraph, "-p",
                             str(os.getpid()), "-o", out], stderr=subprocess.DEVNULL)
    time.sleep(1)  # perf attaches to every thread
    try:
        yield
    finally:
        perf.send_signal(signal.SIGINT)
        perf.wait()
