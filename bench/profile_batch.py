"""Where a batch's client CPU goes: 2,000 x 256 KiB `get_many` in a loop on the nginx lane.

    python bench/profile_batch.py 10                   # 10 batches: MB/s, CPU s/GB, cores busy
    python bench/profile_batch.py 10 --out             # the same into preallocated buffers (out=)
    python bench/profile_batch.py 10 /tmp/batch.data   # ... with perf sampling this process
    perf report -i /tmp/batch.data --no-children --sort dso,symbol --stdio | grep '%' | head -40

Starts nginx (bench/servers.py: static files, so the client is what is measured), seeds the
objects (one random 256 KiB block, repeated), runs one batch untimed (connections warm),
then REPS batches, and prints the batch's MB/s, this process's CPU seconds per GB and how
many cores it kept busy (CPU / wall). Without ``--out``, each batch returns fresh arrays (as
the benchmark's batch workload does, bench/run.py); they are dropped before the next one.
With a perf file, ``perf record`` samples this process (all its threads) during the REPS
batches only (bench/perf_record.py: ``cpu-clock``; ``PERF_CALLGRAPH`` for call chains through
libfasts3).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

COUNT, SIZE = 2000, 256 << 10


def main() -> int:
    import numpy as np

    import pyfasts3
    import servers
    from perf_record import perf_record

    args = [a for a in sys.argv[1:] if a != "--out"]
    into_out = "--out" in sys.argv[1:]
    reps = int(args[0]) if args else 10
    perf_out = args[1] if len(args) > 1 else None
    root = Path(tempfile.mkdtemp(prefix="pyfasts3-profile-"))
    try:
        root.chmod(0o755)
        (root / "bkt").mkdir(mode=0o755)
        block = os.urandom(SIZE)
        for i in range(COUNT):
            (root / "bkt" / f"o{i:05d}").write_bytes(block)
        paths = [f"bkt/o{i:05d}" for i in range(COUNT)]
        servers.ensure_nginx()
        lane = servers.start_nginx(root, root / "prefix")
        try:
            client = pyfasts3.Client(lane.endpoint_url, region="us-east-1", anonymous=True)
            out = [np.empty(SIZE, np.uint8) for _ in range(COUNT)] if into_out else None
            got = client.get_many(paths, out=out)
            check = got if out is None else out
            if any(bytes(memoryview(a)) != block for a in check[:: COUNT // 20]):
                raise SystemExit("wrong bytes")
            del got, check
            with perf_record(perf_out):
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(reps):
                    got = client.get_many(paths, out=out)
                    del got
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            gb = reps * COUNT * SIZE / 1e9
            print(f"{gb / wall * 1e3:,.0f} MB/s, client CPU {cpu / gb:.3f} s/GB, "
                  f"{cpu / wall:.2f} cores busy ({'out=' if into_out else 'fresh arrays'})")
        finally:
            lane.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
