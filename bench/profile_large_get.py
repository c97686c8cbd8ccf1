"""Where a large get_into's client CPU goes: a 1 GiB get_into loop on the nginx lane, under perf.

    python bench/profile_large_get.py 12 /tmp/large.data
    perf report -i /tmp/large.data --no-children --sort dso,symbol --stdio | grep '%' | head
    python bench/profile_large_get.py --async 12     # the same reads with get_into_async

Starts nginx (bench/servers.py: static files, so the client is what is measured), seeds one
1 GiB object (one random MiB, repeated), reads it once into a reused numpy array (connections warm,
the array faulted in), then reads it REPS more times and prints MiB/s and the process's
CPU seconds per GiB. With a second argument, ``perf record`` samples this process (all its
threads, nothing else: not nginx, not the seeding) during those REPS reads only, into that
file. The machine has no hardware counters, hence ``cpu-clock``.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def main() -> int:
    import numpy as np

    import pyfasts3
    import servers
    from perf_record import perf_record

    args = sys.argv[1:]
    use_async = "--async" in args
    args = [a for a in args if a != "--async"]
    reps = int(args[0]) if args else 12
    perf_out = args[1] if len(args) > 1 else None
    root = Path(tempfile.mkdtemp(prefix="pyfasts3-profile-"))
    try:
        root.chmod(0o755)
        (root / "bkt").mkdir(mode=0o755)
        block = os.urandom(1 << 20)  # repeated: seeding stays out of the profile
        with open(root / "bkt" / "obj", "wb") as f:
            for _ in range(1024):
                f.write(block)
        servers.ensure_nginx()
        lane = servers.start_nginx(root, root / "prefix")
        try:
            client = pyfasts3.Client(lane.endpoint_url, region="us-east-1", anonymous=True)
            buf = np.empty(1 << 30, np.uint8)
            client.get_into(buf, "bkt/obj")
            async def read_async() -> None:
                for _ in range(reps):
                    await client.get_into_async(buf, "bkt/obj")

            with perf_record(perf_out):
                wall, cpu = time.perf_counter(), time.process_time()
                if use_async:
                    asyncio.run(read_async())
                else:
                    for _ in range(reps):
                        client.get_into(buf, "bkt/obj")
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"{reps * 1024 / wall:.0f} MiB/s, client CPU {cpu / reps:.3f} s/GiB")
        finally:
            lane.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
