"""What the benchmark fetches: the data set (seeded straight onto versitygw's posix
backend, which nginx serves too) and how each workload's results are checked.

Seeding writes plain files plus the ``user.etag`` (quoted MD5 hex) and
``user.content-type`` xattrs -- exactly what versitygw's own PUT leaves on disk -- so
every key lists and GETs with a real ETag. The bucket itself is created through the S3
API (versitygw keeps bucket ACL/ownership in xattrs on the bucket directory).

Correctness: every payload is checked against the CRC-32 and length recorded while
seeding (zlib.crc32 runs at ~5 GB/s here; a random corruption passes with probability
2^-32); listings are checked as the exact set (and count) of expected keys. Any mismatch
raises WrongResult, which fails the run.
"""
from __future__ import annotations

import hashlib
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
BUCKET = "bench"
EMPTY_MD5 = hashlib.md5(b"").hexdigest()


class WrongResult(AssertionError):
    """A client returned bytes or keys that differ from what was seeded."""


def human(n: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} B"


@dataclass
class Spec:
    """Sizes and counts for one run (full or --quick)."""

    large_sizes: List[int]
    small_sizes: List[int]
    small_requests: int          # sequential GETs per repetition (distinct keys)
    batch_count: int
    batch_size: int
    list_dirs: int               # listing tree: list/dNNNN/kNNNNNNN
    list_per_dir: int
    reps: int
    warmup: bool
    large_reps: Dict[int, int] = field(default_factory=dict)  # per-size override (>= 5)

    @property
    def list_keys(self) -> int:
        return self.list_dirs * self.list_per_dir


FULL = Spec(
    large_sizes=[64 * MiB, 256 * MiB, 1 * GiB],
    small_sizes=[4 * KiB, 64 * KiB, 1 * MiB],
    small_requests=200,
    batch_count=2000,
    batch_size=256 * KiB,
    list_dirs=400,
    list_per_dir=1000,
    reps=5,
    warmup=True,
)

# Correctness only: multi-part objects (> the 4 MiB first part, so parallel ranged GETs
# with If-Match run on both lanes), pagination (> 1000 keys), a small batch.
QUICK = Spec(
    large_sizes=[1 * MiB, 20 * MiB],
    small_sizes=[4 * KiB, 64 * KiB],
    small_requests=10,
    batch_count=40,
    batch_size=256 * KiB,
    list_dirs=5,
    list_per_dir=500,
    reps=1,
    warmup=False,
)


@dataclass
class Obj:
    key: str
    size: int
    crc: int


@dataclass
class DataSet:
    bucket: str
    large: Dict[int, Obj]                 # size -> object
    small: Dict[int, List[Obj]]           # size -> distinct objects
    batch: List[Obj]
    list_prefix: str                      # "list/"
    list_keys: List[str]                  # every key under list_prefix, sorted
    list_dirs: List[str]                  # the common prefixes one level below list_prefix
    seed_seconds: float = 0.0
    bytes_on_disk: int = 0

    def by_key(self) -> Dict[str, Obj]:
        out = {o.key: o for o in self.large.values()}
        for objs in self.small.values():
            out.update((o.key, o) for o in objs)
        out.update((o.key, o) for o in self.batch)
        return out


def _write(path: Path, data, etag: str) -> None:
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data).cast("B")
        written = 0
        while written < len(view):
            written += os.write(fd, view[written:written + 64 * MiB])
        os.setxattr(fd, "user.etag", f'"{etag}"'.encode())
        os.setxattr(fd, "user.content-type", b"binary/octet-stream")
    finally:
        os.close(fd)


def _obj(bucket_dir: Path, key: str, data) -> Obj:
    path = bucket_dir / key
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, data, hashlib.md5(data).hexdigest())
    return Obj(key, len(memoryview(data).cast("B")), zlib.crc32(data))


def seed(bucket_dir: Path, spec: Spec, rng_seed: int = 20260) -> DataSet:
    """Write the data set into an existing (S3-created) bucket directory."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(rng_seed)
    total = 0
    large = {}
    for size in spec.large_sizes:
        data = np.frombuffer(rng.bytes(size), dtype=np.uint8)
        large[size] = _obj(bucket_dir, f"large/obj-{human(size).replace(' ', '')}", data)
        total += size
        del data
    small = {}
    for size in spec.small_sizes:
        blob = rng.bytes(size * spec.small_requests)
        tag = human(size).replace(" ", "")
        small[size] = [_obj(bucket_dir, f"small/{tag}/k{i:05d}", memoryview(blob)[i * size:(i + 1) * size])
                       for i in range(spec.small_requests)]
        total += len(blob)
        del blob
    blob = rng.bytes(spec.batch_size * spec.batch_count)
    bs = spec.batch_size
    batch = [_obj(bucket_dir, f"batch/k{i:05d}", memoryview(blob)[i * bs:(i + 1) * bs])
             for i in range(spec.batch_count)]
    total += len(blob)
    del blob

    # The listing tree: empty objects (ETag = MD5 of nothing), 1,000 per directory.
    keys, dirs = [], []
    etag = f'"{EMPTY_MD5}"'.encode()
    for d in range(spec.list_dirs):
        dname = f"list/d{d:04d}/"
        dpath = bucket_dir / dname
        dpath.mkdir(parents=True, exist_ok=True)
        dirs.append(dname)
        for i in range(spec.list_per_dir):
            name = f"k{d * spec.list_per_dir + i:07d}"
            fd = os.open(dpath / name, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
            try:
                os.setxattr(fd, "user.etag", etag)
            finally:
                os.close(fd)
            keys.append(dname + name)
    os.sync()
    return DataSet(BUCKET, large, small, batch, "list/", keys, dirs,
                   seed_seconds=time.perf_counter() - t0, bytes_on_disk=total)


# -- checks ----------------------------------------------------------------------------

def _chunks(payload) -> Iterable:
    if isinstance(payload, (list, tuple)):
        return payload
    return (payload,)


def check_bytes(payload, obj: Obj, who: str) -> None:
    """``payload``: one buffer, or a list of buffers forming the object in order."""
    crc, n = 0, 0
    for chunk in _chunks(payload):
        view = memoryview(chunk)
        n += view.nbytes
        crc = zlib.crc32(view, crc)
    if n != obj.size or crc != obj.crc:
        raise WrongResult(f"{who}: {obj.key}: got {n} bytes crc32 {crc:08x}, "
                          f"expected {obj.size} bytes crc32 {obj.crc:08x}")


def check_batch(payloads: Sequence, objs: Sequence[Obj], who: str) -> None:
    if len(payloads) != len(objs):
        raise WrongResult(f"{who}: batch returned {len(payloads)} results for {len(objs)} keys")
    for p, o in zip(payloads, objs):
        check_bytes(p, o, who)


def check_keys(got: Sequence[str], expected: Sequence[str], who: str) -> None:
    if len(got) != len(expected) or set(got) != set(expected):
        missing = sorted(set(expected) - set(got))[:3]
        extra = sorted(set(got) - set(expected))[:3]
        raise WrongResult(f"{who}: listed {len(got)} entries, expected {len(expected)}; "
                          f"missing e.g. {missing}, unexpected e.g. {extra}")


def memcpy_bandwidth(nbytes: int, reps: int) -> Tuple[List[float], int]:
    """MB/s of a single-threaded numpy copy between two prefaulted arrays of ``nbytes``."""
    src = np.ones(nbytes, dtype=np.uint8)
    dst = np.zeros(nbytes, dtype=np.uint8)
    np.copyto(dst, src)
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        np.copyto(dst, src)
        out.append(nbytes / (time.perf_counter() - t) / 1e6)
    return out, nbytes
