"""What fresh memory costs this machine: fault in 1 GiB in 4 KiB pages or transparent huge
pages, reused at once or after a pause.

    python bench/fresh_memory.py [--size-mib 1024] [--reps 4] [--pause 5]

Each repetition maps anonymous memory, optionally asks for huge pages (MADV_HUGEPAGE), writes
every byte (as a `get()` writes its result), and unmaps it; prints the seconds to fill and to
unmap. With `--pause`, it sleeps between repetitions. On a VM whose kernel reports free
memory to the hypervisor (virtio-balloon free page reporting), huge pages are quick only when
freed memory is reused at once: after a pause they come from blocks given back to the host,
and each is faulted in twice. This is why `get()` does not ask for huge pages by default
(rust/engine/result_buffer.rs).
"""
from __future__ import annotations

import argparse
import mmap
import statistics
import time


def fill_once(size: int, huge: bool) -> tuple[float, float]:
    block = bytes(4 << 20)
    start = time.perf_counter()
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if huge:
        m.madvise(mmap.MADV_HUGEPAGE)
    view = memoryview(m)
    for at in range(0, size, len(block)):
        view[at:at + len(block)] = block
    filled = time.perf_counter()
    view.release()
    m.close()
    return filled - start, time.perf_counter() - filled


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=4)
    parser.add_argument("--pause", type=float, default=5.0, help="seconds between repetitions in the paused settings")
    args = parser.parse_args()
    size = args.size_mib << 20
    print("| pages | between repetitions | fill s (median, min-max) | unmap s (median) |")
    print("|---|---|---|---|")
    for huge in (False, True):
        for pause in (0.0, args.pause):
            fills, unmaps = [], []
            for _ in range(args.reps):
                fill, unmap = fill_once(size, huge)
                fills.append(fill)
                unmaps.append(unmap)
                time.sleep(pause)
            print(f"| {'2 MiB (MADV_HUGEPAGE)' if huge else '4 KiB'} | {'reused at once' if not pause else f'{pause:g} s pause'} "
                  f"| {statistics.median(fills):.3f} ({min(fills):.3f}-{max(fills):.3f}) | {statistics.median(unmaps):.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
