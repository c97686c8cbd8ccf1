"""Soak run: mixed reads from many threads and forked children against versitygw through the
fault-injecting proxy, every byte checked.

    python bench/soak.py                      # 10 minutes, 32 threads (the documented run)
    python bench/soak.py --duration 60        # a short one
    python bench/soak.py --out bench/soak.json

What runs at once, for --duration seconds:
- --threads reader threads, each doing random operations on one shared pyfasts3.Client:
  get_into (whole object), get(), get() of a random byte range, get_many of a few keys, head,
  list_keys. Every result is compared byte for byte with the versions of the object that were
  ever written (an overwrite may land during a read: the result must then be exactly one
  version, or a typed ObjectChanged -- never a mix).
- a writer thread overwriting the "mutable" keys with new same-size versions (boto3, direct to
  the server), so reads race overwrites;
- a chaos thread injecting faults through tests/faultproxy.py: connections cut (FIN or RST)
  mid-response, stalls (all traffic held for 1-4 s), throttling;
- every 10 s, a forked child that reads with the inherited client (and must get the right
  bytes) and exits.

Reported (stdout, and JSON with --out): operations by kind, faults injected, wrong bytes (must be
0), typed errors by class, untyped errors (must be 0), the longest operation, failed children,
and the RSS and open-fd slopes over the second half of the run (leaks show as a steady slope).
Exit status 1 if any byte was wrong, any error untyped, any child failed or any call hung.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
import zlib
from collections import Counter
from pathlib import Path
from typing import Dict, List

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import pyfasts3  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402
from s3servers import start  # noqa: E402

BUCKET = "soak"
SIZES = [0, 1, 4096, 100_000, 1 << 20, 5 << 20, 12 << 20]
HANG_LIMIT = 120.0  # seconds: an operation running longer than this counts as a hang


def data_for(key: str, version: int, size: int) -> bytes:
    seed = zlib.crc32(f"{key}#{version}".encode())
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


class Store:
    """The versions of every key a read may legitimately return. A read returns a version
    that was current at some moment during the read: the last one whose PUT had completed
    when the read began, or a later one. Older versions are dropped once no read in flight
    can still return them, so the harness's own memory stays flat (it is part of the RSS the
    run reports)."""

    def __init__(self):
        # key -> [(PUT started, PUT completed or None, bytes)], oldest first
        self.versions: Dict[str, List[list]] = {}
        self.lock = threading.Lock()

    def add(self, key: str, data: bytes) -> list:
        entry = [time.monotonic(), None, data]
        with self.lock:
            self.versions.setdefault(key, []).append(entry)
        return entry

    def completed(self, entry: list) -> None:
        with self.lock:
            entry[1] = time.monotonic()

    @staticmethod
    def _first_possible(versions: List[list], since: float) -> int:
        """Index of the oldest version a read that began at `since` may return."""
        first = 0
        for i, (_, done, _) in enumerate(versions):
            if done is not None and done < since:
                first = i
        return first

    def candidates(self, key: str, since: float = float("inf")) -> List[bytes]:
        with self.lock:
            versions = self.versions[key]
            return [v[2] for v in versions[self._first_possible(versions, since):]]

    def prune(self, oldest_read: float) -> None:
        with self.lock:
            for key, versions in self.versions.items():
                del versions[:self._first_possible(versions, oldest_read)]


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.server = start("versitygw")
        self.s3 = self.server.boto3_client()
        self.proxy = FaultProxy(self.server.endpoint_url)
        self.store = Store()
        self.ops: Counter = Counter()
        self.errors: Counter = Counter()
        self.untyped: List[str] = []
        self.wrong: List[str] = []
        self.faults: Counter = Counter()
        self.children = Counter()
        self.server_temp_files_listed = 0
        self.longest = 0.0
        self.in_flight: Dict[int, float] = {}
        self.samples: List[tuple] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    # -- setup ---------------------------------------------------------------------------
    def seed(self) -> None:
        self.s3.create_bucket(Bucket=BUCKET)
        self.keys, self.mutable = [], []
        for i, size in enumerate(SIZES * 3):
            key = f"obj/{i:03d}-{size}"
            data = data_for(key, 0, size)
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)
            self.store.completed(self.store.add(key, data))
            self.keys.append(key)
            if i % 3 == 0 and size > 0:
                self.mutable.append(key)

    def client(self) -> pyfasts3.Client:
        return pyfasts3.Client(self.proxy.url, region=self.server.region,
                               access_key_id=self.server.access_key_id,
                               secret_access_key=self.server.secret_access_key,
                               read_timeout=10, connect_timeout=5)

    # -- checks --------------------------------------------------------------------------
    def check(self, key: str, got: bytes, since: float, start: int = 0, length: int = -1) -> None:
        for data in self.store.candidates(key, since):
            end = len(data) if length < 0 else min(len(data), start + length)
            if got == data[start:end]:
                return
        with self.lock:
            self.wrong.append(f"{key}[{start}:{start + length if length >= 0 else ''}] "
                              f"({len(got)} bytes) matches no version")

    # -- workers -------------------------------------------------------------------------
    def reader(self, client: pyfasts3.Client, seed: int) -> None:
        rng = random.Random(seed)
        me = threading.get_ident()
        while not self.stop.is_set():
            op = rng.choice(["get_into", "get", "range", "get_many", "head", "list"])
            key = rng.choice(self.keys)
            path = f"{BUCKET}/{key}"
            began = time.monotonic()
            with self.lock:
                self.in_flight[me] = began
            try:
                if op == "get_into":
                    size = len(self.store.candidates(key)[0])
                    buf = np.empty(size, np.uint8)
                    n = client.get_into(buf, path)
                    self.check(key, buf[:n].tobytes(), began)
                elif op == "get":
                    self.check(key, client.get(path).tobytes(), began)
                elif op == "range":
                    size = len(self.store.candidates(key)[0])
                    start = rng.randrange(0, size + 1)
                    length = rng.randrange(0, size + 1)
                    self.check(key, client.get(path, offset=start, length=length).tobytes(), began, start, length)
                elif op == "get_many":
                    keys = rng.sample(self.keys, 4)
                    for k, arr in zip(keys, client.get_many([f"{BUCKET}/{k}" for k in keys])):
                        self.check(k, arr.tobytes(), began)
                elif op == "head":
                    info = client.head(path)
                    if info.size not in {len(d) for d in self.store.candidates(key, began)}:
                        with self.lock:
                            self.wrong.append(f"head {key}: size {info.size}")
                else:
                    listed = client.list_keys(f"{BUCKET}/obj/")
                    # versitygw's posix backend writes an upload to a temp file beside the
                    # object (".<name>.sgwtmp.<n>"), and lists it while the PUT runs: it is
                    # in the server's answer, so it is reported apart.
                    temp = [k for k in listed if ".sgwtmp." in k]
                    listed = [k for k in listed if ".sgwtmp." not in k]
                    if sorted(listed) != sorted(self.keys):
                        with self.lock:
                            self.wrong.append(f"list: {sorted(set(listed) ^ set(self.keys))} differ")
                    if temp:
                        with self.lock:
                            self.server_temp_files_listed += 1
                outcome = "ok"
            except pyfasts3.S3Error as e:
                outcome = type(e).__name__
            except Exception as e:  # noqa: BLE001 - an untyped failure is a finding
                outcome = "untyped"
                with self.lock:
                    self.untyped.append(f"{op} {key}: {type(e).__name__}: {e}")
            took = time.monotonic() - began
            with self.lock:
                self.in_flight.pop(me, None)
                self.ops[op] += 1
                if outcome != "ok":
                    self.errors[outcome] += 1
                self.longest = max(self.longest, took)

    def writer(self) -> None:
        version = 1
        while not self.stop.wait(self.rng.uniform(0.5, 1.5)):
            key = self.rng.choice(self.mutable)
            size = len(self.store.candidates(key)[0])
            data = data_for(key, version, size)
            # Recorded before the PUT: a read may see the new version as soon as it lands.
            entry = self.store.add(key, data)
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)
            self.store.completed(entry)
            with self.lock:
                oldest = min(self.in_flight.values(), default=time.monotonic())
            self.store.prune(oldest)
            self.ops["overwrite"] += 1
            version += 1

    def chaos(self) -> None:
        rng = random.Random(self.args.seed + 1)
        while not self.stop.wait(rng.uniform(0.3, 1.5)):
            fault = rng.choice(["cut", "reset", "stall", "throttle", "none"])
            if fault in ("cut", "reset"):
                self.proxy.cut(after=rng.randrange(200, 3 << 20), connections=rng.randint(1, 3),
                               reset=fault == "reset")
            elif fault == "stall":
                self.proxy.pause()
                self.stop.wait(rng.uniform(1, 4))
                self.proxy.resume()
            elif fault == "throttle":
                self.proxy.throttle(rng.choice([256 << 10, 2 << 20]))
                self.stop.wait(rng.uniform(1, 3))
                self.proxy.throttle(None)
            self.faults[fault] += 1
        self.proxy.cut(None)
        self.proxy.throttle(None)
        self.proxy.resume()

    def fork_child(self, client: pyfasts3.Client) -> None:
        """A child reads with the inherited client and sends back (key, CRC-32, length) of
        each result; the parent checks them (an overwrite after the fork is in the parent's
        store only)."""
        rfd, wfd = os.pipe()
        forked_at = time.monotonic()
        with self.lock:
            self.in_flight[-1] = forked_at  # keeps the versions its reads may return
        pid = os.fork()
        if pid == 0:
            os.close(rfd)
            code = 0
            try:
                lines = []
                # No lock taken here: another thread may have held one at fork() time.
                for key in random.Random(os.getpid()).sample(self.keys, 8):
                    try:
                        got = client.get(f"{BUCKET}/{key}")
                    except pyfasts3.S3Error as e:
                        lines.append(f"{key} error {type(e).__name__}")
                        continue
                    lines.append(f"{key} {zlib.crc32(got)} {len(got)}")
                os.write(wfd, ("\n".join(lines) + "\n").encode())
            except BaseException:  # noqa: BLE001
                code = 2
            os._exit(code)
        os.close(wfd)
        deadline = time.monotonic() + HANG_LIMIT
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            os.close(rfd)
            self.children["hung"] += 1
            with self.lock:
                self.in_flight.pop(-1, None)
            return
        with os.fdopen(rfd) as f:
            report = f.read().split("\n")
        code = os.waitstatus_to_exitcode(status)
        for line in filter(None, report):
            key, crc, length = line.split(" ")
            self.ops["forked child get"] += 1
            if crc == "error":
                self.errors[f"{length} (forked child)"] += 1
            elif not any(zlib.crc32(d) == int(crc) and len(d) == int(length)
                         for d in self.store.candidates(key, forked_at)):
                code = 1
                with self.lock:
                    self.wrong.append(f"forked child: {key} matches no version")
        self.children["ok" if code == 0 else f"exit {code}"] += 1
        with self.lock:
            self.in_flight.pop(-1, None)

    def sample(self) -> None:
        rss = int(next(line for line in open("/proc/self/status") if line.startswith("VmRSS")).split()[1])
        self.samples.append((time.monotonic(), rss / 1024, len(os.listdir("/proc/self/fd"))))

    # -- the run -------------------------------------------------------------------------
    def run(self) -> dict:
        self.seed()
        client = self.client()
        threads = [threading.Thread(target=self.reader, args=(client, self.args.seed * 1000 + i), daemon=True)
                   for i in range(self.args.threads)]
        threads += [threading.Thread(target=self.writer, daemon=True),
                    threading.Thread(target=self.chaos, daemon=True)]
        began = time.monotonic()
        for t in threads:
            t.start()
        next_fork = began + 10
        hung = []
        while time.monotonic() - began < self.args.duration:
            time.sleep(1)
            if len(self.samples) == 0 or time.monotonic() - self.samples[-1][0] >= 5:
                self.sample()
            if time.monotonic() >= next_fork:
                self.fork_child(client)
                next_fork = time.monotonic() + 10
            with self.lock:
                now = time.monotonic()
                hung = [now - t0 for t0 in self.in_flight.values() if now - t0 > HANG_LIMIT]
            if hung:
                break
        self.stop.set()
        for t in threads:
            t.join(HANG_LIMIT)
        still = [t.name for t in threads if t.is_alive()]
        elapsed = time.monotonic() - began
        client.close()
        self.proxy.close()
        self.server.stop()
        return self.report(elapsed, hung, still)

    def report(self, elapsed: float, hung, still) -> dict:
        half = [s for s in self.samples if s[0] >= self.samples[0][0] + elapsed / 2]

        def slope(i):  # per minute, least squares over the second half
            if len(half) < 3:
                return None
            t = np.array([s[0] for s in half]) / 60
            y = np.array([s[i] for s in half])
            return float(np.polyfit(t, y, 1)[0])

        result = {
            "duration_s": round(elapsed, 1),
            "threads": self.args.threads,
            "operations": dict(self.ops),
            "operations_total": sum(v for k, v in self.ops.items() if k != "overwrite"),
            "faults_injected": dict(self.faults),
            "connections_cut": self.proxy.cuts,
            "wrong_bytes": len(self.wrong),
            "wrong_examples": self.wrong[:10],
            "typed_errors": dict(self.errors),
            "untyped_errors": len(self.untyped),
            "listings_showing_server_temp_files": self.server_temp_files_listed,
            "untyped_examples": self.untyped[:10],
            "longest_operation_s": round(self.longest, 2),
            "hung_calls": len(hung) + len(still),
            "forked_children": dict(self.children),
            "rss_mib": [round(self.samples[0][1], 1), round(self.samples[-1][1], 1)],
            "rss_slope_mib_per_min_second_half": slope(1),
            "fds": [self.samples[0][2], self.samples[-1][2]],
            "fd_slope_per_min_second_half": slope(2),
            "command": "python bench/soak.py " + " ".join(sys.argv[1:]),
        }
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = Soak(args).run()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    bad = (result["wrong_bytes"] or result["untyped_errors"] or result["hung_calls"]
           or any(k != "ok" for k in result["forked_children"]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
