#!/usr/bin/env python3
"""pyfasts3 benchmark harness: one command, end to end.

    python bench/run.py            # the full run; writes bench/results.json, RESULTS.md, *.png
    python bench/run.py --quick    # correctness only (tiny sizes, 1 rep): exits 1 on any wrong result

It starts the servers itself (versitygw from ~/go/bin or PATH; nginx, installed with
apt-get if missing), seeds the data set straight onto versitygw's posix backend, runs
every workload for every client in this one process, checks every answer, and writes
the results. See bench/README.md for what is measured and how.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

import clients  # noqa: E402
import servers  # noqa: E402
import workloads  # noqa: E402
from clients import Out, PeakRss, Runner, Unavailable  # noqa: E402
from workloads import BUCKET, WrongResult, human  # noqa: E402


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- measurement -----------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores; /proc/stat, not idle/iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / _TICK     # user nice system [idle iowait] irq softirq steal


def measure(lane, runner: Runner, arg) -> (Dict[str, float], Out):
    """One timed call: wall seconds, client CPU seconds (this process, all threads; or the
    child's own rusage for external clients), server CPU seconds, RSS growth."""
    with PeakRss() as rss:
        b0 = machine_busy()
        s0 = lane.cpu_seconds()
        c0 = time.process_time()
        t0 = time.perf_counter()
        out = runner.fn(arg)
        t1 = time.perf_counter()
        c1 = time.process_time()
        s1 = lane.cpu_seconds()
        b1 = machine_busy()
    m = {"wall": t1 - t0, "server_cpu": s1 - s0, "busy": b1 - b0}
    if runner.external:
        m["cpu"] = out.rusage.ru_utime + out.rusage.ru_stime
        m["rss_kb"] = out.peak_kb                     # the child's whole peak RSS
        mine = m["cpu"] + (c1 - c0)
    else:
        m["cpu"] = c1 - c0
        m["rss_kb"] = rss.growth_kb
        mine = m["cpu"]
    # CPU that neither this benchmark nor the server used: other processes on the machine
    m["other_cpu"] = max(0.0, m["busy"] - mine - m["server_cpu"])
    m["elapsed"] = m["wall"]
    return m, out


def measure_sequential(lane, runner: Runner, objs) -> (Dict[str, Any], None):
    """Sequential GETs of ``objs``: each call timed on its own and checked right after it
    (the check is outside the per-request time and CPU)."""
    lat, cpu = [], 0.0
    t_start = time.perf_counter()
    p_start = time.process_time()
    with PeakRss() as rss:
        b0 = machine_busy()
        s0 = lane.cpu_seconds()
        for o in objs:
            c0 = time.process_time()
            t0 = time.perf_counter()
            out = runner.fn(o)
            t1 = time.perf_counter()
            cpu += time.process_time() - c0
            lat.append(t1 - t0)
            workloads.check_bytes(out.payload, o, runner.client)
            del out
        s1 = lane.cpu_seconds()
        b1 = machine_busy()
    # busy/elapsed cover the whole loop (checks included): they only feed the "other
    # processes" estimate, which subtracts this process's whole CPU over the same span.
    proc_all = time.process_time() - p_start
    return {"wall": sum(lat), "req_time": sum(lat), "cpu": cpu, "server_cpu": s1 - s0,
            "rss_kb": rss.growth_kb, "lat": lat, "busy": b1 - b0,
            "other_cpu": max(0.0, (b1 - b0) - proc_all - (s1 - s0)),
            "elapsed": time.perf_counter() - t_start}, None


def rotate(seq: List, k: int) -> List:
    k %= max(1, len(seq))
    return seq[k:] + seq[:k]


# -- running one workload ----------------------------------------------------------------

class Harness:
    def __init__(self, args, spec: workloads.Spec):
        self.args = args
        self.spec = spec
        self.results: List[Dict[str, Any]] = []
        self.failures: List[str] = []

    def _record(self, lane, workload: str, param: str, entry, samples=None, error=None, extra=None):
        row = {
            "lane": lane.name, "workload": workload, "param": param, "client": entry.client,
            "library": entry.library,
        }
        if isinstance(entry, Unavailable):
            row.update(status="unavailable", reason=entry.reason)
        else:
            row.update(primary=entry.primary, ceiling=entry.ceiling, external=entry.external, note=entry.note)
            if error:
                row.update(status="error", reason=error)
            else:
                row.update(status="ok", reps=samples)
        if extra:
            row.update(extra)
        self.results.append(row)
        return row

    def run(self, lane, workload: str, param: str, entries: List, arg, check, sequential=False,
            warm=None, reps: Optional[int] = None, extra: Optional[Dict] = None):
        """Interleaved repetitions: every rep runs each client once (the order rotates);
        the first rep is a warm-up (not recorded) unless ``warm`` replaces it."""
        reps = reps or self.spec.reps
        runners = [e for e in entries if isinstance(e, Runner)]
        for e in entries:
            if isinstance(e, Unavailable):
                self._record(lane, workload, param, e, extra=extra)
        samples = {r.client: [] for r in runners}
        errors: Dict[str, str] = {}
        for r in runners:
            if r.prepare:
                r.prepare(arg)
        if warm is not None:
            for r in runners:
                try:
                    warm(r)
                except Exception as e:  # noqa: BLE001
                    errors[r.client] = f"warm-up: {type(e).__name__}: {e}"
        warmup = 1 if (self.spec.warmup and warm is None) else 0
        for rep in range(warmup + reps):
            for r in rotate(runners, rep):
                if r.client in errors:
                    continue
                try:
                    if sequential and not r.external:
                        m, _ = measure_sequential(lane, r, arg)
                    else:
                        m, out = measure(lane, r, arg)
                        check(r, out)
                        if r.external and out.latencies is not None and sequential:
                            m["lat"] = out.latencies          # curl's own time per transfer
                            m["req_time"] = sum(out.latencies)  # (wall stays the process's life)
                        del out
                except WrongResult as e:
                    errors[r.client] = f"WRONG RESULT: {e}"
                except Exception as e:  # noqa: BLE001
                    errors[r.client] = f"{type(e).__name__}: {e}"
                    if self.args.verbose:
                        traceback.print_exc()
                else:
                    if rep >= warmup:
                        samples[r.client].append(m)
                gc.collect()
        for r in runners:
            if r.cleanup:
                r.cleanup()
        for r in runners:
            err = errors.get(r.client)
            if err:
                self.failures.append(f"{lane.name} / {workload} {param} / {r.client}: {err}")
                log(f"  FAILED {r.client}: {err}")
            row = self._record(lane, workload, param, r, samples[r.client], err, extra)
            if not err:
                log("  " + brief(row))
        gc.collect()


def brief(row) -> str:
    reps = row["reps"]
    if row["workload"] == "small":
        rate = statistics.median(len(m["lat"]) / m["req_time"] for m in reps)
        return f"{row['client']:<44} {rate:>9,.0f} req/s"
    if row["workload"].startswith("list"):
        return f"{row['client']:<44} {statistics.median(m['wall'] for m in reps):>9.2f} s"
    return f"{row['client']:<44} {statistics.median(row['bytes'] / m['wall'] / 1e6 for m in reps):>9,.0f} MB/s"


# -- the whole run -------------------------------------------------------------------

def machine() -> Dict[str, Any]:
    info = {"kernel": platform.release(), "cores": os.cpu_count()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "Hypervisor vendor", "Thread(s) per core", "Core(s) per socket"):
                info[k.strip()] = v.strip()
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                info["ram_gib"] = round(int(line.split()[1]) / (1 << 20), 1)
    return info


def loadavg() -> List[float]:
    return [round(x, 2) for x in os.getloadavg()]


ALL_LANES = ("versitygw", "nginx", "versitygw-tls")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, 1 rep: correctness only (CI); writes to a temp dir unless --out")
    parser.add_argument("--out", help="directory for results.json, RESULTS.md and plots "
                                      "(default: bench/ for a full run, a temp dir for --quick)")
    parser.add_argument("--lanes", default=",".join(ALL_LANES),
                        help="comma-separated subset of " + ",".join(ALL_LANES))
    parser.add_argument("--workloads", default="large,small,batch,list",
                        help="comma-separated subset of large,small,batch,list")
    parser.add_argument("--data-dir", default="/var/tmp", help="where the seeded files go (a fresh subdir)")
    parser.add_argument("--keep-data", action="store_true", help="do not delete the seeded files")
    parser.add_argument("--verbose", action="store_true", help="print tracebacks of client errors")
    args = parser.parse_args()

    spec = workloads.QUICK if args.quick else workloads.FULL
    lanes_wanted = [x for x in args.lanes.split(",") if x]
    wanted = set(args.workloads.split(","))
    partial = set(lanes_wanted) != set(ALL_LANES) or wanted != {"large", "small", "batch", "list"}
    out_dir = Path(args.out) if args.out else (None if args.quick else HERE)
    if out_dir is None:
        import tempfile

        out_dir = Path(tempfile.mkdtemp(prefix="pyfasts3-bench-quick-"))
    if partial and not args.out and not args.quick:
        parser.error("a partial run (--lanes/--workloads) needs --out, so it cannot overwrite the committed results")
    out_dir.mkdir(parents=True, exist_ok=True)

    command = "python bench/run.py" + ("".join(f" {a}" for a in sys.argv[1:]))
    started = time.time()
    meta: Dict[str, Any] = {
        "command": command, "quick": args.quick,
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(), "load_before": loadavg(), "versions": clients.versions(),
        "spec": {k: v for k, v in vars(spec).items()},
    }
    log(f"pyfasts3 benchmark ({'quick' if args.quick else 'full'}); load average {meta['load_before']}")
    log("versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))

    run_dir = servers.make_root(args.data_dir)
    data = run_dir / "data"
    data.mkdir()
    data.chmod(0o755)
    harness = Harness(args, spec)
    lanes: List = []
    exit_code = 0
    try:
        vgw = servers.start_versitygw(data, run_dir / "versitygw.log")
        lanes.append(vgw)
        meta["servers"] = {"versitygw": {"version": vgw.version, "endpoint": vgw.endpoint_url,
                                         "flags": "--keep-alive --quiet posix <root>"}}
        log(f"versitygw {vgw.version} at {vgw.endpoint_url} (pid {vgw.processes[0].pid}); root {data}")
        peers_vgw = clients.Peers(vgw, BUCKET, run_dir / "work-versitygw")
        peers_vgw.boto.create_bucket(Bucket=BUCKET)
        log(f"seeding: {len(spec.large_sizes)} large, {len(spec.small_sizes)}x{spec.small_requests} small, "
            f"{spec.batch_count} x {human(spec.batch_size)} batch, {spec.list_keys:,} listing keys...")
        ds = workloads.seed(data / BUCKET, spec)
        meta["seed"] = {"seconds": round(ds.seed_seconds, 1), "bytes": ds.bytes_on_disk,
                        "listing_keys": len(ds.list_keys), "method": "files + user.etag xattrs written directly"}
        log(f"seeded {ds.bytes_on_disk / 1e9:.2f} GB and {len(ds.list_keys):,} listing keys in {ds.seed_seconds:.1f} s")

        if "versitygw-tls" in lanes_wanted:
            vgw_tls = servers.start_versitygw(data, run_dir / "versitygw-tls.log", tls=True)
            lanes.append(vgw_tls)
            meta["servers"]["versitygw-tls"] = {"version": vgw_tls.version, "endpoint": vgw_tls.endpoint_url,
                                                "flags": "--keep-alive --quiet --cert <leaf> --key <key> posix <root>",
                                                "ca": "private CA made at start-up (trustme), given to every client"}
            log(f"versitygw (HTTPS) at {vgw_tls.endpoint_url} (pid {vgw_tls.processes[0].pid}); CA {vgw_tls.ca_bundle}")

        if "nginx" in lanes_wanted:
            ngx = servers.start_nginx(data, run_dir / "nginx")
            lanes.append(ngx)
            meta["servers"]["nginx"] = {"version": ngx.version, "endpoint": ngx.endpoint_url,
                                        "config": "worker_processes 1; sendfile on; access_log off; keepalive"}
            log(f"nginx {ngx.version} at {ngx.endpoint_url} (pids {[p.pid for p in ngx.processes]})")

        # memcpy ceiling
        mc_size = max(spec.large_sizes)
        mc, _ = workloads.memcpy_bandwidth(mc_size, max(spec.reps, 5 if not args.quick else 1))
        meta["memcpy"] = {"bytes": mc_size, "mb_s": mc, "median_mb_s": statistics.median(mc)}
        log(f"memcpy ceiling (numpy copy of {human(mc_size)}): {statistics.median(mc):,.0f} MB/s")

        # boto3's own CRT switch: record what it does here
        if args.quick or "large" in wanted:
            probe = peers_vgw.probe_boto3_crt(ds.large[min(ds.large)].key)
            meta["boto3_crt_probe"] = probe
            log(f"boto3 CRT via TransferConfig(preferred_transfer_client='crt'): {probe}")

        for lane in [x for x in lanes if x.name in lanes_wanted]:
            peers = peers_vgw if lane is vgw else clients.Peers(lane, BUCKET, run_dir / f"work-{lane.name}")
            log(f"=== lane {lane.label}")
            if "large" in wanted:
                peers.check_crt(ds.large[min(ds.large)].key)
                if peers.crt_error:
                    log(f"  boto3 CRT transfer manager not usable on this lane: {peers.crt_error}")
            if "large" in wanted:
                for size, obj in ds.large.items():
                    log(f"- large object {human(size)}")
                    harness.run(lane, "large", human(size), peers.large(obj), obj,
                                check=lambda r, out, obj=obj: check_one(r, out, obj),
                                extra={"bytes": size})
            if "small" in wanted:
                for size, objs in ds.small.items():
                    log(f"- small objects {human(size)}: {len(objs)} sequential GETs per rep")
                    harness.run(lane, "small", human(size), peers.small(objs), objs,
                                check=lambda r, out, objs=objs: check_many_bytes(r, out, objs),
                                sequential=True, extra={"bytes": size, "requests": len(objs)})
            if "batch" in wanted:
                log(f"- batch of {len(ds.batch)} x {human(spec.batch_size)}")
                total = sum(o.size for o in ds.batch)
                harness.run(lane, "batch", f"{len(ds.batch)} x {human(spec.batch_size)}",
                            peers.batch(ds.batch), ds.batch,
                            check=lambda r, out: check_batch(r, out, ds.batch),
                            extra={"bytes": total, "objects": len(ds.batch)})
            # Listing is measured on the plain lane only: over TLS it adds CI/bench minutes and
            # says nothing the large/small/batch rows do not (TLS costs per byte and per handshake).
            if "list" in wanted and lane.s3 and not lane.ca_bundle:
                for walk in (False, True):
                    expected = ds.list_keys + (ds.list_dirs if walk else [])
                    name = "list-walk" if walk else "list"
                    log(f"- listing {len(ds.list_keys):,} keys under {ds.list_prefix!r}"
                        f"{' level by level with delimiter' if walk else ', no delimiter'}")
                    warm_entries = {e.client: e for e in peers.listing(ds.list_dirs[0], walk)}
                    harness.run(lane, name, f"{len(ds.list_keys):,} keys",
                                peers.listing(ds.list_prefix, walk), None,
                                check=lambda r, out, expected=expected: check_listing(r, out, expected),
                                warm=lambda r, w=warm_entries: w[r.client].fn(None),
                                extra={"keys": len(ds.list_keys), "entries": len(expected)})
            if peers is not peers_vgw:
                peers.close()

        # fresh-process peak RSS for the largest object, S3 lane
        if "large" in wanted:
            meta["rss_probe"] = rss_probe(vgw, ds, run_dir, harness)
            meta["rss_probe_bytes"] = max(ds.large)
        peers_vgw.close()
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        harness.failures.append("harness error: " + traceback.format_exc().splitlines()[-1])
        exit_code = 1
    finally:
        for lane in lanes:
            lane.stop()
        if not args.keep_data:
            shutil.rmtree(run_dir, ignore_errors=True)

    meta["finished"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    meta["duration_s"] = round(time.time() - started, 1)
    meta["load_after"] = loadavg()
    meta["failures"] = harness.failures
    doc = {"meta": meta, "results": harness.results}
    (out_dir / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    import report

    report.write(doc, out_dir)
    log(f"wrote {out_dir}/results.json, RESULTS.md and plots in {meta['duration_s']:.0f} s")
    if harness.failures:
        log(f"{len(harness.failures)} FAILURE(S):")
        for f in harness.failures:
            print("  " + f, flush=True)
        exit_code = 1
    ok = sum(1 for r in harness.results if r["status"] == "ok")
    print(f"bench: {ok} passed, {len(harness.failures)} failed", flush=True)
    return exit_code


def check_one(r: Runner, out: Out, obj) -> None:
    if r.external:
        if out.nbytes != obj.size:
            raise WrongResult(f"{r.client}: {obj.key}: curl received {out.nbytes} bytes, expected {obj.size}")
    else:
        workloads.check_bytes(out.payload, obj, r.client)


def check_many_bytes(r: Runner, out: Out, objs) -> None:
    # only reached for external (curl) runners in the sequential workload
    want = sum(o.size for o in objs)
    if out.nbytes != want or len(out.latencies) != len(objs):
        raise WrongResult(f"{r.client}: received {out.nbytes} bytes in {len(out.latencies)} responses, "
                          f"expected {want} in {len(objs)}")


def check_batch(r: Runner, out: Out, objs) -> None:
    if r.external:
        check_many_bytes(r, out, objs)
    else:
        workloads.check_batch(out.payload, objs, r.client)


def check_listing(r: Runner, out: Out, expected) -> None:
    workloads.check_keys(out.payload, expected, r.client)


def rss_probe(lane, ds, run_dir: Path, harness: Harness) -> List[Dict[str, Any]]:
    """Each large-object client once in a fresh process (python bench/clients.py probe)."""
    obj = ds.large[max(ds.large)]
    log(f"- fresh-process peak RSS, {human(obj.size)} object, {lane.label}")
    peers_spec = {"lane": {k: getattr(lane, k) for k in ("name", "endpoint_url", "anonymous", "region",
                                                         "access_key_id", "secret_access_key", "ca_bundle")},
                  "bucket": BUCKET, "workdir": str(run_dir / "work-probe"),
                  "key": obj.key, "size": obj.size, "crc": obj.crc}
    names = [e.client for e in clients.Peers.large(_Stub(lane, run_dir), obj) if isinstance(e, Runner)]
    out = []
    for name in names:
        spec = dict(peers_spec, client=name)
        proc = subprocess.run([sys.executable, str(HERE / "clients.py"), "probe", json.dumps(spec)],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            err = (proc.stderr.strip().splitlines() or ["?"])[-1]
            harness.failures.append(f"rss probe / {name}: {err}")
            out.append({"client": name, "error": err})
            log(f"  FAILED {name}: {err}")
            continue
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        res["client"] = name
        out.append(res)
        log(f"  {name:<44} peak RSS {res['peak_rss_kb'] / 1024:>7,.0f} MiB, growth {res['growth_kb'] / 1024:>7,.0f} MiB")
    return out


class _Stub(clients.Peers):
    """Just enough of a Peers to list the large-object client names (no connections)."""

    def __init__(self, lane, run_dir):
        self.lane, self.bucket, self.workdir = lane, BUCKET, run_dir / "work-probe"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.fast = self.boto = self.fs = self.store = None
        self.crt, self.crt_error = object(), None
        self._buffers = {}


if __name__ == "__main__":
    sys.exit(main())
