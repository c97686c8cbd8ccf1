"""Every client the benchmark runs, each used the way its documentation recommends.

A ``Runner`` is one (client, API) pair for one workload: ``fn(arg)`` does the work and
returns what the harness checks (a buffer, a list of buffers, a list of keys) wrapped in
``Out``. Clients that cannot run a workload are listed as ``Unavailable`` with the reason,
so the report can say precisely why a cell is empty.

- pyfasts3: ``Client.get_into`` into a preallocated numpy array (allocated and faulted in
  once per size, outside the timing, and reused: the documented pattern), ``get``,
  ``get_many``, ``list_keys``.
- boto3: ``get_object()["Body"].read()``; ``download_fileobj`` into a BytesIO with the
  default s3transfer config; the CRT transfer manager (see make_crt); a 16-thread pool for
  batches (``max_pool_connections=16``, as botocore asks for threaded use).
- s3fs: ``cat_file``, ``open().read()``, ``cat([...])``, ``find`` and ``walk``.
- obstore: ``get().bytes()``, ``get_ranges`` (8 MiB ranges, coalescing off, so its own
  up-to-10-way parallelism applies), ``get_async`` under ``asyncio.gather`` (16 at a time),
  ``list`` and ``list_with_delimiter``.
- curl (the ceiling): parallel ranged GETs into /dev/null with ``--aws-sigv4``, 16 at a
  time with 8 MiB ranges (pyfasts3's former fixed parts) split over one ``curl --parallel``
  process per core (curl's transfer loop is single-threaded); CPU from their own rusage
  (os.wait4), peak RSS from their VmHWM.

Run as a script (``python bench/clients.py probe '<json>'``) it fetches one object once in
a fresh process and prints that process's peak RSS: the harness's fresh-process memory
probe for the largest object.
"""
from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pyfasts3  # noqa: E402

PART = 8 << 20          # ranged GET size for curl's ceiling and obstore's get_ranges ...
CONCURRENCY = 16        # ... and requests in flight (pyfasts3's default concurrency)


@dataclass
class Out:
    payload: Any = None
    rusage: Any = None              # resource.struct_rusage of a child process (curl)
    latencies: Optional[List[float]] = None
    nbytes: Optional[int] = None    # bytes counted but discarded (curl)
    peak_kb: Optional[int] = None   # a child's peak RSS (curl)


@dataclass
class Runner:
    client: str                     # table name, e.g. "boto3 get_object().read()"
    library: str
    fn: Callable[[Any], Out]
    primary: bool = False           # the pyfasts3 call that ratios are taken against
    external: bool = False          # a child process: CPU/RSS from its rusage
    ceiling: bool = False
    note: str = ""
    prepare: Optional[Callable[[Any], None]] = None     # untimed, before the reps
    cleanup: Optional[Callable[[], None]] = None


@dataclass
class Unavailable:
    client: str
    library: str
    reason: str


Entry = Union[Runner, Unavailable]


def status_kb(field: str, pid: Union[int, str] = "self") -> Optional[int]:
    """A ``VmRSS``/``VmHWM`` value (kB) from /proc/<pid>/status, None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (VmHWM) to its current RSS (Linux >= 4.0:
    ``echo 5 > /proc/self/clear_refs``). Note ru_maxrss is not usable for this: it keeps
    the parent's size across fork+exec, and never goes down."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakRss:
    """Peak RSS growth of this process during a ``with`` block: the high-water mark is
    reset at entry, so VmHWM at exit is the exact peak during the block (no sampling)."""

    def __enter__(self):
        if not reset_peak_rss():
            raise RuntimeError("cannot reset VmHWM through /proc/self/clear_refs")
        self.base = status_kb("VmRSS")
        return self

    def __exit__(self, *exc):
        self.peak = status_kb("VmHWM")

    @property
    def growth_kb(self) -> int:
        return self.peak - self.base


def versions() -> Dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0], "pyfasts3": pyfasts3.__version__}
    for name in ("numpy", "boto3", "botocore", "s3transfer", "awscrt", "s3fs", "fsspec",
                 "aiobotocore", "aiohttp", "obstore", "psutil", "matplotlib"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    try:
        out["curl"] = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split()[1]
    except (OSError, IndexError):
        out["curl"] = "not installed"
    return out


# -- curl -----------------------------------------------------------------------------

def _curl_block(lane, url: str, rng: Optional[str], out: str = "/dev/null") -> List[str]:
    lines = [f'url = "{url}"', f'output = "{out}"',
             'write-out = "%{http_code} %{size_download} %{time_total}\\n"']
    if rng:
        lines.append(f'range = "{rng}"')
    if getattr(lane, "ca_bundle", None):
        lines.append(f'cacert = "{lane.ca_bundle}"')
    if not lane.anonymous:
        lines += [f'aws-sigv4 = "aws:amz:{lane.region}:s3"',
                  f'user = "{lane.access_key_id}:{lane.secret_access_key}"',
                  'header = "x-amz-content-sha256: UNSIGNED-PAYLOAD"']
    return lines


CURL_PROCS = max(1, min(2, os.cpu_count() or 1))   # one curl process per core (2 here)


def write_curl_configs(base: Path, blocks: List[List[str]], procs: int) -> List[Path]:
    """Split per-transfer option blocks round-robin over ``procs`` config files."""
    paths = []
    for p in range(procs):
        mine = blocks[p::procs]
        if not mine:
            continue
        lines: List[str] = []
        for blk in mine:
            if lines:
                lines.append("next")      # per-URL options: each request signed for its own URL/range
            lines += blk
        path = base.with_name(f"{base.name}.{p}.cfg")
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def run_curl(configs: List[Path], parallel: bool, expect_status: Sequence[int]) -> Out:
    """Run one curl process per config file, all at once. ``Out.rusage`` sums their own
    CPU (os.wait4), ``Out.peak_kb`` sums their peak RSS (VmHWM of /proc/<pid>/status,
    polled every 2 ms until each exits)."""
    import tempfile
    import threading
    from types import SimpleNamespace

    procs, files = [], []
    for cfg in configs:
        cmd = ["curl", "--silent", "--show-error", "--config", str(cfg)]
        if parallel:
            cmd[1:1] = ["--parallel", "--parallel-max", str(max(1, CONCURRENCY // len(configs)))]
        out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        files += [out, err]
        procs.append((subprocess.Popen(cmd, stdout=out, stderr=err), out, err))
    peaks = {p.pid: 0 for p, _, _ in procs}
    done = threading.Event()

    def poll():
        while not done.is_set():
            for pid in peaks:
                v = status_kb("VmHWM", pid)
                if v:
                    peaks[pid] = max(peaks[pid], v)
            done.wait(0.002)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    utime = stime = 0.0
    total, lat, errors = 0, [], []
    try:
        for proc, out, err in procs:
            _, status, ru = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            utime += ru.ru_utime
            stime += ru.ru_stime
            if proc.returncode != 0:
                err.seek(0)
                errors.append(f"curl exited {proc.returncode}: {err.read().decode(errors='replace')[-300:]}")
                continue
            out.seek(0)
            for line in out.read().decode().split("\n"):
                if not line.strip():
                    continue
                code, size, t = line.split()
                if int(code) not in expect_status:
                    errors.append(f"curl got HTTP {code}")
                    break
                total += int(size)
                lat.append(float(t))
    finally:
        done.set()
        watcher.join()
        for f in files:
            f.close()
    if errors:
        raise RuntimeError("; ".join(errors))
    return Out(payload=None, rusage=SimpleNamespace(ru_utime=utime, ru_stime=stime), latencies=lat,
               nbytes=total, peak_kb=sum(peaks.values()))


def make_crt(lane, boto, ca_bundle: Optional[str] = None):
    """boto3's CRT transfer manager, assembled from s3transfer.crt's public pieces, pointed at
    ``lane``: ``(manager, None)``, or ``(None, reason)`` when awscrt is missing. ``boto`` is a
    boto3 client on the lane (its credentials feed the CRT's provider); ``ca_bundle`` switches
    the CRT to TLS trusting that CA. Defaults: 8 MiB parts, awscrt's recommended throughput
    target (10 Gb/s when it has none for this machine), which sets how many parts fly at once.

    boto3's own switch (TransferConfig(preferred_transfer_client="crt")) does pick a
    CRTTransferManager here, but that manager cannot reach a custom http endpoint:
    boto3/crt.py serializes requests with endpoint_url=None (so they go to AWS) and
    creates the CRT client with use_ssl=True. Peers.probe_boto3_crt() records what happens.
    Built directly, with the endpoint and use_ssl=False, the same CRT engine runs.
    """
    try:
        import botocore.session
        from botocore.config import Config
        from s3transfer.crt import (BotocoreCRTCredentialsWrapper, BotocoreCRTRequestSerializer,
                                    CRTTransferManager, create_s3_crt_client)
    except ImportError as e:
        return None, f"awscrt not importable: {e}"
    provider = None
    kw = {"endpoint_url": lane.endpoint_url, "region_name": lane.region,
          "config": Config(s3={"addressing_style": "path"})}
    if not lane.anonymous:
        provider = BotocoreCRTCredentialsWrapper(boto._get_credentials()).to_crt_credentials_provider()
        kw.update(aws_access_key_id=lane.access_key_id, aws_secret_access_key=lane.secret_access_key)
    tls = bool(ca_bundle)
    crt_client = create_s3_crt_client(lane.region, crt_credentials_provider=provider, use_ssl=tls,
                                      verify=ca_bundle if tls else None)
    serializer = BotocoreCRTRequestSerializer(botocore.session.Session(), kw)
    return CRTTransferManager(crt_client, serializer), None


class Peers:
    """All clients, pointed at one lane."""

    def __init__(self, lane, bucket: str, workdir: Path):
        self.lane = lane
        self.bucket = bucket
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        creds = {} if lane.anonymous else {"access_key_id": lane.access_key_id,
                                             "secret_access_key": lane.secret_access_key}
        self.ca_bundle = getattr(lane, "ca_bundle", None)  # HTTPS lanes: every client trusts this CA
        self.fast = pyfasts3.Client(lane.endpoint_url, region=lane.region, anonymous=lane.anonymous,
                                    ca_bundle=self.ca_bundle, **creds)
        self.boto = self._boto3()
        self.fs = self._s3fs()
        self.store = self._obstore()
        self.loop = asyncio.new_event_loop()
        self.crt, self.crt_error = self._crt()
        self.boto_crt_probe = None
        self._buffers: Dict[int, np.ndarray] = {}

    # -- construction ---------------------------------------------------------------
    def _boto3(self):
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config

        kw = dict(s3={"addressing_style": "path"}, max_pool_connections=CONCURRENCY)
        if self.lane.anonymous:
            kw["signature_version"] = UNSIGNED
            return boto3.client("s3", endpoint_url=self.lane.endpoint_url, region_name=self.lane.region,
                                config=Config(**kw), verify=self.ca_bundle)
        return boto3.client("s3", endpoint_url=self.lane.endpoint_url, region_name=self.lane.region,
                            verify=self.ca_bundle, aws_access_key_id=self.lane.access_key_id,
                            aws_secret_access_key=self.lane.secret_access_key, config=Config(**kw))

    def _s3fs(self):
        import s3fs

        client_kwargs = {"region_name": self.lane.region}
        if self.ca_bundle:
            client_kwargs["verify"] = self.ca_bundle
        kw = dict(endpoint_url=self.lane.endpoint_url, client_kwargs=client_kwargs,
                  config_kwargs={"s3": {"addressing_style": "path"}},
                  skip_instance_cache=True, use_listings_cache=False)
        if self.lane.anonymous:
            return s3fs.S3FileSystem(anon=True, **kw)
        return s3fs.S3FileSystem(key=self.lane.access_key_id, secret=self.lane.secret_access_key, **kw)

    def _obstore(self):
        from obstore.store import S3Store

        options = {"allow_http": True}
        if self.ca_bundle:
            options["root_certificate"] = Path(self.ca_bundle).read_text()  # added to the system roots
        kw = dict(endpoint=self.lane.endpoint_url, region=self.lane.region,
                  virtual_hosted_style_request=False, client_options=options)
        if self.lane.anonymous:
            return S3Store(self.bucket, skip_signature=True, **kw)
        return S3Store(self.bucket, access_key_id=self.lane.access_key_id,
                       secret_access_key=self.lane.secret_access_key, **kw)

    def _crt(self):
        """boto3's CRT transfer manager on this lane (see make_crt)."""
        return make_crt(self.lane, self.boto, self.ca_bundle)

    def check_crt(self, key: str, timeout: float = 15.0) -> None:
        """One CRT download with a deadline: against nginx it never completes (it sends its
        HEAD, gets nginx's 200, and stalls). A stalled transfer is cancelled and the CRT
        client is marked unavailable on this lane, with the reason."""
        if self.crt is None:
            return
        bio = io.BytesIO()
        fut = self.crt.download(self.bucket, key, bio)
        deadline = time.monotonic() + timeout
        while not fut.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        if fut.done():
            try:
                fut.result()
                return
            except Exception as e:  # noqa: BLE001
                reason = f"CRT download failed: {type(e).__name__}: {e}"
        else:
            fut.cancel()
            try:
                fut.result()
            except BaseException:  # noqa: BLE001
                pass
            reason = (f"the CRT download of {key} did not complete within {timeout:.0f} s against this "
                      f"server (it stalls after its HEAD request) and was cancelled")
        try:
            self.crt.shutdown()
        except Exception:  # noqa: BLE001
            pass
        self.crt, self.crt_error = None, reason

    def probe_boto3_crt(self, key: str) -> Dict[str, str]:
        """What boto3's documented CRT switch does against this endpoint."""
        from boto3.s3.transfer import TransferConfig, create_transfer_manager

        cfg = TransferConfig(preferred_transfer_client="crt")
        info = {"call": 'client.download_fileobj(..., Config=TransferConfig(preferred_transfer_client="crt"))'}
        try:
            import awscrt.s3

            info["awscrt.s3.is_optimized_for_system()"] = str(awscrt.s3.is_optimized_for_system())
        except ImportError:
            pass
        try:
            tm = create_transfer_manager(self.boto, cfg)
            info["manager"] = type(tm).__name__
        except Exception as e:  # noqa: BLE001
            info["manager"] = f"error: {e}"
        buf = io.BytesIO()
        try:
            self.boto.download_fileobj(self.bucket, key, buf, Config=cfg)
            info["result"] = f"ok ({len(buf.getvalue())} bytes)"
        except Exception as e:  # noqa: BLE001
            info["result"] = f"{type(e).__name__}: {e}"
        self.boto_crt_probe = info
        return info

    def close(self) -> None:
        try:
            if self.crt is not None:
                self.crt.shutdown()
        except Exception:  # noqa: BLE001
            pass
        self.fast.close()
        self.loop.close()

    def path(self, key: str) -> str:
        return f"{self.bucket}/{key}"

    # -- large objects --------------------------------------------------------------
    def large(self, obj) -> List[Entry]:
        b, key, size = self.bucket, obj.key, obj.size
        fast, boto, fs, store = self.fast, self.boto, self.fs, self.store
        import obstore

        def prep_buf(_):
            buf = np.empty(size, dtype=np.uint8)
            buf.fill(0)                       # fault the pages in once, outside the timing
            self._buffers[size] = buf

        def get_into(_):
            buf = self._buffers[size]
            n = fast.get_into(buf, f"{b}/{key}")
            return Out(buf[:n])

        def dl_fileobj(_):
            bio = io.BytesIO()
            boto.download_fileobj(b, key, bio)
            return Out(bio.getbuffer())

        def crt(_):
            bio = io.BytesIO()
            self.crt.download(b, key, bio).result()
            return Out(bio.getbuffer())

        def obs_ranges(_):
            n = obstore.head(store, key)["size"]
            starts = list(range(0, n, PART))
            ends = [min(s + PART, n) for s in starts]
            return Out(obstore.get_ranges(store, key, starts=starts, ends=ends, coalesce=0))

        def s3fs_open(_):
            with fs.open(f"{b}/{key}", "rb") as f:
                return Out(f.read())

        blocks = [_curl_block(self.lane, f"{self.lane.endpoint_url}/{b}/{key}",
                              f"{start}-{min(start + PART, size) - 1}") for start in range(0, size, PART)]
        cfgs = write_curl_configs(self.workdir / f"curl-large-{size}", blocks, CURL_PROCS)

        entries: List[Entry] = [
            Runner("pyfasts3 get_into", "pyfasts3", get_into, primary=True, prepare=prep_buf,
                   cleanup=lambda: self._buffers.pop(size, None),
                   note="into a preallocated, reused numpy array"),
            Runner("pyfasts3 get", "pyfasts3", lambda _: Out(fast.get(f"{b}/{key}"))),
            Runner("boto3 get_object().read()", "boto3",
                   lambda _: Out(boto.get_object(Bucket=b, Key=key)["Body"].read())),
            Runner("boto3 download_fileobj", "boto3", dl_fileobj,
                   note="into BytesIO, default s3transfer TransferConfig"),
        ]
        if self.crt is not None:
            entries.append(Runner("boto3 CRT transfer manager", "boto3+awscrt", crt,
                                  note="s3transfer.crt.CRTTransferManager built directly (see notes)"))
        else:
            entries.append(Unavailable("boto3 CRT transfer manager", "boto3+awscrt", self.crt_error))
        entries += [
            Runner("s3fs cat_file", "s3fs", lambda _: Out(fs.cat_file(f"{b}/{key}"))),
            Runner("s3fs open().read()", "s3fs", s3fs_open),
            Runner("obstore get().bytes()", "obstore", lambda _: Out(obstore.get(store, key).bytes())),
            Runner("obstore get_ranges", "obstore", obs_ranges,
                   note="head + 8 MiB ranges, coalesce=0; returns a list of Bytes"),
            Runner("curl --parallel (ceiling)", "curl",
                   lambda _: run_curl(cfgs, True, (206,)), external=True, ceiling=True,
                   note=f"{CURL_PROCS} curl processes, {CONCURRENCY} parallel 8 MiB ranged GETs in all, "
                        "into /dev/null"),
        ]
        return entries

    # -- small objects: sequential GETs --------------------------------------------
    def small(self, objs) -> List[Entry]:
        """``fn(obj)`` fetches one object; the harness times each call. curl's runner
        takes the whole list and reports per-request times from its own -w output."""
        b = self.bucket
        fast, boto, fs, store = self.fast, self.boto, self.fs, self.store
        import obstore

        size = objs[0].size
        buf = np.zeros(size, dtype=np.uint8)

        def get_into(obj):
            n = fast.get_into(buf, f"{b}/{obj.key}")
            return Out(buf[:n])               # checked right after the call, before the next

        blocks = [_curl_block(self.lane, f"{self.lane.endpoint_url}/{b}/{o.key}", None) for o in objs]
        cfgs = write_curl_configs(self.workdir / f"curl-small-{size}", blocks, 1)

        return [
            Runner("pyfasts3 get", "pyfasts3", lambda o: Out(fast.get(f"{b}/{o.key}")), primary=True),
            Runner("pyfasts3 get_into", "pyfasts3", get_into,
                   note="one preallocated buffer, reused"),
            Runner("boto3 get_object().read()", "boto3",
                   lambda o: Out(boto.get_object(Bucket=b, Key=o.key)["Body"].read())),
            Runner("s3fs cat_file", "s3fs", lambda o: Out(fs.cat_file(f"{b}/{o.key}"))),
            Runner("obstore get().bytes()", "obstore", lambda o: Out(obstore.get(store, o.key).bytes())),
            Runner("curl sequential (ceiling)", "curl",
                   lambda _: run_curl(cfgs, False, (200,)), external=True, ceiling=True,
                   note="one curl process, one connection, the same keys in order"),
        ]

    # -- many objects as one batch ------------------------------------------------
    def batch(self, objs) -> List[Entry]:
        b = self.bucket
        fast, boto, fs, store = self.fast, self.boto, self.fs, self.store
        import obstore

        paths = [f"{b}/{o.key}" for o in objs]
        keys = [o.key for o in objs]

        def boto_one(k):
            return boto.get_object(Bucket=b, Key=k)["Body"].read()

        def boto_pool(_):
            with ThreadPoolExecutor(max_workers=CONCURRENCY) as ex:
                return Out(list(ex.map(boto_one, keys)))

        def s3fs_cat(_):
            got = fs.cat(paths)               # {path: bytes}
            return Out([got[p] for p in paths])

        async def obs_gather():
            sem = asyncio.Semaphore(CONCURRENCY)

            async def one(k):
                async with sem:
                    r = await obstore.get_async(store, k)
                    return await r.bytes_async()

            return await asyncio.gather(*(one(k) for k in keys))

        blocks = [_curl_block(self.lane, f"{self.lane.endpoint_url}/{b}/{o.key}", None) for o in objs]
        cfgs = write_curl_configs(self.workdir / "curl-batch", blocks, CURL_PROCS)
        return [
            Runner("pyfasts3 get_many", "pyfasts3", lambda _: Out(fast.get_many(paths)), primary=True),
            Runner("boto3 get_object() sequential", "boto3", lambda _: Out([boto_one(k) for k in keys])),
            Runner("boto3 get_object() 16 threads", "boto3", boto_pool,
                   note="ThreadPoolExecutor(16), max_pool_connections=16"),
            Runner("s3fs cat([...])", "s3fs", s3fs_cat),
            Runner("obstore get_async gather", "obstore",
                   lambda _: Out(self.loop.run_until_complete(obs_gather())),
                   note="asyncio.gather, 16 in flight (semaphore)"),
            Runner("curl --parallel (ceiling)", "curl", lambda _: run_curl(cfgs, True, (200,)),
                   external=True, ceiling=True,
                   note=f"{CURL_PROCS} curl processes, {CONCURRENCY} in flight in all, into /dev/null"),
        ]

    # -- listing ------------------------------------------------------------------
    def listing(self, prefix: str, walk: bool) -> List[Entry]:
        """walk=False: every key under the prefix, no delimiter (ListObjectsV2 pages).
        walk=True: delimiter "/" level by level: the prefix, then each common prefix it
        returns; the result is every key plus every common prefix (ending in "/")."""
        b = self.bucket
        fast, boto, fs, store = self.fast, self.boto, self.fs, self.store
        import obstore

        def fast_flat(_):
            return Out(fast.list_keys(f"{b}/{prefix}"))

        def fast_walk(_):
            out, todo = [], [prefix]
            while todo:
                level = fast.list_keys(f"{b}/{todo.pop()}", delimiter="/")
                out += level
                todo += [k for k in reversed(level) if k.endswith("/")]
            return Out(out)

        def boto_pages(p, delim):
            kw = {"Bucket": b, "Prefix": p}
            if delim:
                kw["Delimiter"] = "/"
            keys, dirs = [], []
            for page in boto.get_paginator("list_objects_v2").paginate(**kw):
                keys += [o["Key"] for o in page.get("Contents", ())]
                dirs += [c["Prefix"] for c in page.get("CommonPrefixes", ())]
            return keys, dirs

        def boto_walk(_):
            out, todo = [], [prefix]
            while todo:
                keys, dirs = boto_pages(todo.pop(), True)
                out += keys + dirs
                todo += reversed(dirs)
            return Out(out)

        def s3fs_find(_):
            return Out([p[len(b) + 1:] for p in fs.find(f"{b}/{prefix}")])

        def s3fs_walk(_):
            out = []
            for root, dirs, files in fs.walk(f"{b}/{prefix}"):
                rel = root[len(b) + 1:].rstrip("/") + "/"
                out += [rel + f for f in files] + [rel + d + "/" for d in dirs]
            return Out(out)

        def obs_list(_):
            out = []
            for chunk in obstore.list(store, prefix=prefix, chunk_size=1000):
                out += [m["path"] for m in chunk]
            return Out(out)

        def obs_walk(_):
            out, todo = [], [prefix]
            while todo:
                r = obstore.list_with_delimiter(store, prefix=todo.pop())
                dirs = [d.rstrip("/") + "/" for d in r["common_prefixes"]]
                out += [m["path"] for m in r["objects"]] + dirs
                todo += reversed(dirs)
            return Out(out)

        if walk:
            return [
                Runner("pyfasts3 list_keys(delimiter='/')", "pyfasts3", fast_walk, primary=True),
                Runner("boto3 list_objects_v2 paginator, Delimiter='/'", "boto3", boto_walk),
                Runner("s3fs walk()", "s3fs", s3fs_walk),
                Runner("obstore list_with_delimiter()", "obstore", obs_walk),
            ]
        import inspect

        extra: List[Entry] = []
        if "parallel" in inspect.signature(fast.list_keys).parameters:
            extra.append(Runner("pyfasts3 list_keys(parallel=True)", "pyfasts3",
                                lambda _: Out(fast.list_keys(f"{b}/{prefix}", parallel=True)),
                                note="lists the / tree's directories concurrently (max_concurrency 16)"))
        return [
            Runner("pyfasts3 list_keys", "pyfasts3", fast_flat, primary=True),
            *extra,
            Runner("boto3 list_objects_v2 paginator", "boto3",
                   lambda _: Out(boto_pages(prefix, False)[0])),
            Runner("s3fs find()", "s3fs", s3fs_find),
            Runner("obstore list()", "obstore", obs_list),
        ]


# -- fresh-process memory probe -------------------------------------------------------

def probe(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Run one large-object client once in this (fresh) process; report its peak RSS."""
    from types import SimpleNamespace

    sys.path.insert(0, str(HERE))
    import workloads

    lane = SimpleNamespace(**spec["lane"])
    obj = workloads.Obj(spec["key"], spec["size"], spec["crc"])
    peers = Peers(lane, spec["bucket"], Path(spec["workdir"]))
    runner = next(r for r in peers.large(obj) if isinstance(r, Runner) and r.client == spec["client"])
    t = time.perf_counter()
    with PeakRss() as rss:
        if runner.prepare:
            runner.prepare(obj)      # the get_into buffer counts: it is memory the call needs
        out = runner.fn(obj)
    wall = time.perf_counter() - t
    if runner.external:
        result = {"peak_rss_kb": out.peak_kb, "baseline_kb": 0, "growth_kb": out.peak_kb}
    else:
        workloads.check_bytes(out.payload, obj, runner.client)
        result = {"peak_rss_kb": rss.peak, "baseline_kb": rss.base, "growth_kb": rss.growth_kb}
    result["wall"] = wall
    return result


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "probe":
        print(json.dumps(probe(json.loads(sys.argv[2]))))
    else:
        print("usage: clients.py probe '<json spec>'", file=sys.stderr)
        sys.exit(2)
