"""Turn results.json into RESULTS.md and PNG plots (matplotlib, Agg backend).

Every number written here is computed from the raw per-repetition measurements in
results.json, i.e. from the run that wrote it.

    python bench/report.py [results.json] [out_dir]     # re-render without re-running
"""
from __future__ import annotations

import json
import statistics
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional

LANE_LABEL = {"versitygw": "versitygw (S3, posix backend)", "nginx": "nginx (static files, not S3)",
              "versitygw-tls": "versitygw over HTTPS (S3, posix backend, private CA)"}
LANES = ("versitygw", "nginx", "versitygw-tls")
WORKLOAD_TITLE = {
    "large": "Large objects into memory",
    "small": "Small objects: sequential GETs (latency)",
    "batch": "Many objects as one batch",
    "list": "Listing a prefix, no delimiter",
    "list-walk": "Listing the same prefix with delimiter '/', level by level",
}
WORKLOAD_SHORT = {"large": "large", "small": "small", "batch": "batch", "list": "list",
                  "list-walk": "list, delimiter (walk)"}
PEER_LIBS = ["boto3", "boto3+awscrt", "s3fs", "obstore", "curl"]


def _med(xs):
    return statistics.median(xs) if xs else float("nan")


def _pct(xs: List[float], q: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


# -- summaries ------------------------------------------------------------------------

def summarize(row: Dict[str, Any]) -> Dict[str, Any]:
    reps = row["reps"]
    wl = row["workload"]
    s: Dict[str, Any] = {"n": len(reps)}
    cores = [m["cpu"] / m["wall"] for m in reps if m["wall"] > 0]
    score = [m["server_cpu"] / m["wall"] for m in reps if m["wall"] > 0]
    s["client_cores"] = _med(cores)
    s["server_cores"] = _med(score)
    other = [m["other_cpu"] / m["elapsed"] for m in reps if "other_cpu" in m and m.get("elapsed")]
    s["other_cores"] = _med(other) if other else None
    s["rss_mb"] = max(m["rss_kb"] for m in reps) / 1024
    if wl in ("large", "batch"):
        nbytes = row["bytes"]
        rates = [nbytes / m["wall"] / 1e6 for m in reps]
        s.update(rate=_med(rates), lo=min(rates), hi=max(rates), unit="MB/s",
                 cpu_s_per_gb=_med([m["cpu"] / (nbytes / 1e9) for m in reps]),
                 server_cpu_s_per_gb=_med([m["server_cpu"] / (nbytes / 1e9) for m in reps]))
    elif wl == "small":
        n = row["requests"]
        rates = [len(m["lat"]) / m["req_time"] for m in reps]
        lat = [x for m in reps for x in m["lat"]]
        s.update(rate=_med(rates), lo=min(rates), hi=max(rates), unit="req/s",
                 p50_ms=_pct(lat, 0.5) * 1e3, p99_ms=_pct(lat, 0.99) * 1e3,
                 mb_s=_med(rates) * row["bytes"] / 1e6,
                 cpu_us_per_req=_med([m["cpu"] / n * 1e6 for m in reps]),
                 server_cpu_us_per_req=_med([m["server_cpu"] / n * 1e6 for m in reps]),
                 cpu_s_per_gb=_med([m["cpu"] / (n * row["bytes"] / 1e9) for m in reps]))
    else:  # listing
        secs = [m["wall"] for m in reps]
        k = row["keys"] / 1000
        s.update(rate=_med(secs), lo=min(secs), hi=max(secs), unit="s",
                 keys_per_s=row["keys"] / _med(secs),
                 cpu_s_per_1k=_med([m["cpu"] / k for m in reps]),
                 server_cpu_s_per_1k=_med([m["server_cpu"] / k for m in reps]))
    return s


def enrich(doc: Dict[str, Any]) -> Dict[str, Any]:
    """Add a summary to every measured row and the pyfasts3/peer ratio within its group."""
    groups: Dict[tuple, List[Dict]] = OrderedDict()
    for row in doc["results"]:
        if row["status"] == "ok" and row["reps"]:
            row["summary"] = summarize(row)
        groups.setdefault((row["lane"], row["workload"], row["param"]), []).append(row)
    for rows in groups.values():
        prim = next((r for r in rows if r.get("primary") and "summary" in r), None)
        for r in rows:
            if prim is None or "summary" not in r:
                continue
            a, b = prim["summary"]["rate"], r["summary"]["rate"]
            # ratio > 1: pyfasts3 is faster (higher rate, or shorter listing time)
            r["summary"]["ratio"] = (b / a) if r["workload"].startswith("list") else (a / b)
    return doc


# -- formatting -------------------------------------------------------------------------

def f0(x):
    return "–" if x is None or x != x else f"{x:,.0f}"


def f1(x):
    return "–" if x is None or x != x else f"{x:,.1f}"


def f2(x):
    return "–" if x is None or x != x else f"{x:,.2f}"


def f3(x):
    return "–" if x is None or x != x else f"{x:,.3f}"


def ratio(x):
    return "–" if x is None or x != x else f"{x:.2f}×"


def rate_cell(s):
    if s["unit"] == "s":
        return f"{s['rate']:.2f} s ({s['lo']:.2f}–{s['hi']:.2f})"
    return f"{f0(s['rate'])} ({f0(s['lo'])}–{f0(s['hi'])})"


def groups_of(doc, lane: str, workload: str) -> "OrderedDict[str, List[Dict]]":
    out: "OrderedDict[str, List[Dict]]" = OrderedDict()
    for r in doc["results"]:
        if r["lane"] == lane and r["workload"] == workload:
            out.setdefault(r["param"], []).append(r)
    return out


def status_cell(r) -> Optional[str]:
    if r["status"] == "unavailable":
        return f"not run: {r['reason']}"
    if r["status"] == "error":
        return f"FAILED: {r['reason']}"
    return None


def table(doc, lane: str, workload: str) -> List[str]:
    lines = []
    for param, rows in groups_of(doc, lane, workload).items():
        rows = [r for r in rows if r["status"] != "unavailable"] + [r for r in rows if r["status"] == "unavailable"]
        lines.append(f"**{param}**" + (f" — {rows[0].get('requests')} sequential GETs per rep"
                                        if workload == "small" else ""))
        lines.append("")
        if workload in ("large", "batch"):
            lines.append("| client | MB/s median (min–max) | pyfasts3 / this | client CPU s/GB | server CPU s/GB "
                         "| client / server cores | RSS growth MiB |")
            lines.append("|---|---:|---:|---:|---:|---:|---:|")
        elif workload == "small":
            lines.append("| client | req/s median (min–max) | pyfasts3 / this | p50 ms | p99 ms | client CPU µs/req "
                         "| server CPU µs/req | client / server cores |")
            lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        else:
            lines.append("| client | time median (min–max) | this / pyfasts3 time | keys/s | client CPU s per 1k keys "
                         "| server CPU s per 1k keys | client / server cores | RSS growth MiB |")
            lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            name = f"**{r['client']}**" if r.get("primary") else r["client"]
            bad = status_cell(r)
            ncols = 7 if workload in ("large", "batch") else 8
            if bad:
                lines.append(f"| {name} | {bad} |" + " |" * (ncols - 1))
                continue
            s = r["summary"]
            cores = f"{f2(s['client_cores'])} / {f2(s['server_cores'])}"
            rss = f1(s["rss_mb"]) + (" (curl process peak)" if r.get("external") else "")
            if workload in ("large", "batch"):
                lines.append(f"| {name} | {rate_cell(s)} | {ratio(s.get('ratio'))} | {f2(s['cpu_s_per_gb'])} "
                             f"| {f2(s['server_cpu_s_per_gb'])} | {cores} | {rss} |")
            elif workload == "small":
                lines.append(f"| {name} | {rate_cell(s)} | {ratio(s.get('ratio'))} | {f3(s['p50_ms'])} "
                             f"| {f3(s['p99_ms'])} | {f0(s['cpu_us_per_req'])} | {f0(s['server_cpu_us_per_req'])} "
                             f"| {cores} |")
            else:
                lines.append(f"| {name} | {rate_cell(s)} | {ratio(s.get('ratio'))} | {f0(s['keys_per_s'])} "
                             f"| {f3(s['cpu_s_per_1k'])} | {f3(s['server_cpu_s_per_1k'])} | {cores} | {rss} |")
        notes = [f"{r['client']}: {r['note']}" for r in rows if r.get("note")]
        if notes:
            lines.append("")
            lines.append("Notes: " + "; ".join(notes) + ".")
        lines.append("")
    return lines


def best_by_library(rows) -> Dict[str, Dict]:
    """Per peer library, its fastest variant in this group (by median)."""
    best: Dict[str, Dict] = {}
    for r in rows:
        if "summary" not in r or r["library"] == "pyfasts3":
            continue
        lib = r["library"]
        cur = best.get(lib)
        if cur is None or r["summary"]["ratio"] < cur["summary"]["ratio"]:
            best[lib] = r
    return best


def headline(doc) -> List[str]:
    lines = ["| lane | workload | pyfasts3 (call) | " + " | ".join(
        f"vs {lib}" for lib in PEER_LIBS) + " |", "|---|---|---|" + "---:|" * len(PEER_LIBS)]
    for lane in LANES:
        for wl in ("large", "small", "batch", "list", "list-walk"):
            for param, rows in groups_of(doc, lane, wl).items():
                prim = next((r for r in rows if r.get("primary")), None)
                if prim is None or "summary" not in prim:
                    continue
                s = prim["summary"]
                val = f"{s['rate']:.2f} s" if s["unit"] == "s" else f"{f0(s['rate'])} {s['unit']}"
                best = best_by_library(rows)
                cells = []
                for lib in PEER_LIBS:
                    b = best.get(lib)
                    cells.append(f"{ratio(b['summary']['ratio'])}" if b else "–")
                lines.append(f"| {lane} | {WORKLOAD_SHORT[wl]} {param} "
                             f"| {val} ({prim['client']}) | " + " | ".join(cells) + " |")
    return lines


def bounds(doc) -> List[str]:
    """Who used the CPU: the pyfasts3 call and the ceiling (or fastest peer), per group."""
    cores = doc["meta"]["machine"].get("cores", 2)
    lines = [f"| lane | workload | client | client cores | server cores | sum (of {cores}) "
             "| other processes, cores | reading |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for lane in LANES:
        for wl in ("large", "small", "batch", "list", "list-walk"):
            for param, rows in groups_of(doc, lane, wl).items():
                picks = [r for r in rows if (r.get("primary") or r.get("ceiling") or wl.startswith("list"))
                         and "summary" in r]
                for r in picks:
                    s = r["summary"]
                    c, sv = s["client_cores"], s["server_cores"]
                    total = c + sv
                    if total >= 0.8 * cores:
                        who = "server" if sv > c else "client"
                        reading = f"CPU-saturated (both cores busy); the {who} spends the larger share"
                    elif wl == "small":
                        reading = "sequential: client and server take turns (sum ≈ 1); per-request CPU sets the rate"
                    elif wl.startswith("list") and sv >= 0.75:
                        reading = ("server-bound: pages are sequential (each needs the previous page's token) "
                                   "and versitygw keeps about one core busy")
                    elif sv >= 0.8:
                        reading = "server-bound: about one core busy in the server"
                    elif c >= 0.8:
                        reading = "client-bound: about one core busy in the client"
                    else:
                        reading = "neither side saturated: waiting on the other / round trips"
                    lines.append(f"| {lane} | {WORKLOAD_SHORT[wl]} {param} | {r['client']} | {f2(c)} | {f2(sv)} | {f2(total)} "
                                 f"| {f2(s.get('other_cores'))} | {reading} |")
    return lines


PALETTE = {
    "pyfasts3": ["#08306b", "#2171b5"],
    "boto3": ["#006d2c", "#41ab5d", "#a1d99b"],
    "s3fs": ["#a63603", "#fd8d3c"],
    "obstore": ["#54278f", "#9e9ac8"],
    "curl": ["#252525", "#737373"],
}


def _style(name: str):
    lib = name.split()[0]
    names = _style.seen.setdefault(lib, [])
    if name not in names:
        names.append(name)
    colors = PALETTE.get(lib, ["#999999"])
    color = colors[names.index(name) % len(colors)]
    if lib == "pyfasts3":
        return color, "-", 2.4
    if lib == "curl":
        return color, "--", 1.3
    return color, ":" if names.index(name) else "-.", 1.4


_style.seen = {}


def _size_label(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} B"


def plots(doc, out_dir: Path) -> List[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    lanes = [l for l in LANES if any(r["lane"] == l for r in doc["results"])]
    if not lanes:
        return written
    fig, axes = plt.subplots(1, len(lanes), figsize=(7.5 * len(lanes), 5.5), squeeze=False)
    for ax, lane in zip(axes[0], lanes):
        series: Dict[str, List] = OrderedDict()
        for r in doc["results"]:
            if r["lane"] != lane or r["workload"] not in ("small", "large") or "summary" not in r:
                continue
            s = r["summary"]
            mbs = s["mb_s"] if r["workload"] == "small" else s["rate"]
            series.setdefault(r["client"], []).append((r["bytes"], mbs))
        for name, pts in series.items():
            pts.sort()
            color, style, width = _style(name)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=color, marker="o", markersize=3,
                    linewidth=width, label=name)
        ticks = sorted({p[0] for pts in series.values() for p in pts})
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks)
        ax.set_xticklabels([_size_label(t) for t in ticks], fontsize=8)
        ax.minorticks_off()
        ax.set_yscale("log")
        ax.set_xlabel("object size")
        ax.set_ylabel("MB/s (median)")
        ax.set_title(LANE_LABEL[lane] + "\n≤1 MiB: sequential GETs; ≥64 MiB: one object, each client's own strategy",
                     fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    written.append(_save(fig, out_dir / "throughput_vs_size.png"))

    rows = [r for r in doc["results"] if r["workload"].startswith("list") and "summary" in r]
    if rows:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        labels = [f"{r['client']}\n({'walk, delimiter' if r['workload'] == 'list-walk' else 'no delimiter'})"
                  for r in rows]
        secs = [r["summary"]["rate"] for r in rows]
        client = [r["summary"]["cpu_s_per_1k"] * r["keys"] / 1000 for r in rows]
        server = [r["summary"]["server_cpu_s_per_1k"] * r["keys"] / 1000 for r in rows]
        y = list(range(len(rows)))
        ax.barh([i - 0.27 for i in y], secs, height=0.27, label="wall time (median)")
        ax.barh(y, client, height=0.27, label="client CPU s")
        ax.barh([i + 0.27 for i in y], server, height=0.27, label="server (versitygw) CPU s")
        _label_bars(ax, labels, "seconds", f"Listing {rows[0]['keys']:,} keys from versitygw")
        ax.legend(fontsize=8)
        written.append(_save(fig, out_dir / "listing.png"))

    rows = [r for r in doc["results"] if r["workload"] == "batch" and "summary" in r]
    if rows:
        fig, ax = plt.subplots(figsize=(9, 4))
        labels = [f"{r['client']} [{r['lane']}]" for r in rows]
        y = list(range(len(rows)))
        ax.barh(y, [r["summary"]["rate"] for r in rows],
                color=[{"versitygw": "tab:blue", "versitygw-tls": "tab:green"}.get(r["lane"], "tab:orange") for r in rows])
        _label_bars(ax, labels, "MB/s (median)", f"Batch: {rows[0]['param']} (blue: versitygw, orange: nginx)")
        written.append(_save(fig, out_dir / "batch.png"))
    return written


def _label_bars(ax, labels: List[str], xlabel: str, title: str) -> None:
    """Axes of a horizontal bar chart: one labelled row per bar, top to bottom."""
    ax.set_yticks(list(range(len(labels))))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="x", alpha=0.3)


def _save(fig, path: Path) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def render(doc, pngs: List[str]) -> str:
    meta = doc["meta"]
    m = meta["machine"]
    v = meta["versions"]
    sp = meta["spec"]
    L = []
    L.append("# pyfasts3 benchmark results")
    L.append("")
    if meta.get("quick"):
        L.append("**Quick mode (correctness check): sizes are tiny and there is one repetition; "
                 "these numbers mean nothing.**")
        L.append("")
    L.append("Generated by `bench/run.py` from the raw measurements in `results.json` of the same run; "
             "every number below comes from that run.")
    L.append("")
    L.append(f"- Command: `{meta['command']}` (from the repository root)")
    L.append(f"- Run: {meta['started']} → {meta.get('finished', '?')}, {meta.get('duration_s', 0) / 60:.1f} min; "
             f"load average (1/5/15 min) before {meta['load_before']}, after {meta.get('load_after')}")
    L.append(f"- Machine: {m.get('Model name', '?')} ({m.get('Hypervisor vendor', 'bare metal')} guest), "
             f"{m.get('cores')} cores, {m.get('ram_gib')} GiB RAM, Linux {m.get('kernel')}. "
             "Server and client share the 2 cores.")
    L.append("- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    srv = meta.get("servers", {})
    if "versitygw" in srv:
        L.append(f"- versitygw {srv['versitygw']['version']} ({srv['versitygw']['flags']}); "
                 + (f"nginx {srv['nginx']['version']} ({srv['nginx']['config']})" if "nginx" in srv else ""))
    if "seed" in meta:
        L.append(f"- Data: {meta['seed']['bytes'] / 1e9:.2f} GB of random bytes and {meta['seed']['listing_keys']:,} "
                 f"empty listing keys, seeded in {meta['seed']['seconds']} s ({meta['seed']['method']}); "
                 "served from the page cache.")
    L.append(f"- Repetitions: {sp['reps']} measured, interleaved (each rep runs every client once, the order "
             f"rotating), after {'one warm-up rep' if sp['warmup'] else 'no warm-up'} "
             "(listing: a one-directory listing per client as warm-up). Medians, with min–max.")
    if "memcpy" in meta:
        mc = meta["memcpy"]
        L.append(f"- Ceiling, memory: single-threaded numpy copy of {mc['bytes'] >> 20} MiB: "
                 f"**{f0(mc['median_mb_s'])} MB/s** (median of {len(mc['mb_s'])}).")
    others = [m["other_cpu"] / m["elapsed"] for r in doc["results"] if r["status"] == "ok"
              for m in r["reps"] if "other_cpu" in m and m.get("elapsed")]
    if others:
        others.sort()
        L.append(f"- Noise: other processes on the machine (busy CPU from /proc/stat minus this benchmark's and "
                 f"the server's) used a median of {others[len(others) // 2]:.2f} cores during the measured calls "
                 f"(90th percentile {others[int(len(others) * 0.9)]:.2f}, max {others[-1]:.2f}).")
    if meta.get("failures"):
        L.append("")
        L.append("**FAILURES in this run:**")
        for f in meta["failures"]:
            L.append(f"- {f}")
    L.append("")
    L.append("## Headline: pyfasts3 / best variant of each peer")
    L.append("")
    L.append("Ratio of medians, > 1 means pyfasts3 is faster (listing: peer time / pyfasts3 time). "
             "Each peer column takes that library's fastest variant in the group; the per-workload tables "
             "below have every variant.")
    L.append("")
    L += headline(doc)
    L.append("")
    L.append("## What bounds each workload")
    L.append("")
    L.append("CPU cores used during the call (CPU seconds / wall seconds, medians): the client process "
             "(all its threads; curl: its own rusage) and the server process(es) (psutil on the "
             "versitygw pid, or nginx master + worker). Both share the machine's cores, so a sum near "
             f"{m.get('cores')} means the machine's CPU is the limit and the larger share says who spends it. "
             "'other processes' is the machine's busy CPU (/proc/stat) minus the client's and the server's during "
             "the same calls: anything else running on the machine (noise).")
    L.append("")
    L += bounds(doc)
    L.append("")
    for lane in LANES:
        if not any(r["lane"] == lane for r in doc["results"]):
            continue
        L.append(f"## Lane: {LANE_LABEL[lane]}")
        L.append("")
        if lane == "versitygw-tls":
            L.append("A second versitygw process over the same files, serving HTTPS with a certificate for "
                     "127.0.0.1 issued at start-up by a private CA (python `trustme`). Every client is given "
                     "the CA: pyfasts3 `ca_bundle=`, boto3 `verify=`, s3fs `client_kwargs={'verify': ...}`, "
                     "obstore `client_options={'root_certificate': ...}`, the CRT `verify=`, curl `--cacert`. "
                     "Compare client CPU s/GB here with the plain-HTTP versitygw lane for the cost of TLS.")
            L.append("")
        if lane == "nginx":
            L.append("nginx serves the same files as static content (`GET /bench/<key>`), from the page cache "
                     "with sendfile; clients send unsigned requests (pyfasts3 `anonymous=True`, boto3 "
                     "`signature_version=UNSIGNED`, s3fs `anon=True`, obstore `skip_signature=True`). "
                     "Not S3: GET workloads only. pyfasts3's multi-part GET sends `If-Match` with nginx's ETag "
                     "and is checked byte for byte like every other result. nginx is cheap but not free here: on loopback "
                     "the TCP send path (and sendfile's page handling) runs in its process, so its CPU grows with "
                     "the bytes sent.")
            L.append("")
        for wl in ("large", "small", "batch", "list", "list-walk"):
            if not any(r["lane"] == lane and r["workload"] == wl for r in doc["results"]):
                continue
            L.append(f"### {WORKLOAD_TITLE[wl]}")
            L.append("")
            L += table(doc, lane, wl)
    if meta.get("rss_probe"):
        L.append("## Peak memory in a fresh process (largest object, versitygw)")
        L.append("")
        L.append("Each client fetched the object once in a new Python process (`python bench/clients.py probe`): "
                 "the RSS high-water mark was reset just before the call, so 'peak' is the process's largest RSS "
                 "during it and 'growth' is that minus the RSS at its start (after imports and client "
                 "construction). For `pyfasts3 get_into` the growth includes allocating the destination array. "
                 "curl: the peak of its processes (they write to /dev/null).")
        L.append("")
        L.append("| client | peak RSS MiB | growth MiB | growth / object size |")
        L.append("|---|---:|---:|---:|")
        size_mib = meta["rss_probe_bytes"] / (1 << 20) if meta.get("rss_probe_bytes") else None
        for p in meta["rss_probe"]:
            if "error" in p:
                L.append(f"| {p['client']} | FAILED: {p['error']} | | |")
            else:
                rel = f"{p['growth_kb'] / 1024 / size_mib:.2f}" if size_mib else "–"
                L.append(f"| {p['client']} | {f0(p['peak_rss_kb'] / 1024)} | {f0(p['growth_kb'] / 1024)} | {rel} |")
        L.append("")
    L.append("## How it is measured")
    L.append("")
    L.append("- Correctness, every call: CRC-32 and length of the returned bytes against the values recorded "
             "while seeding (curl writes to /dev/null: its HTTP status and byte counts are checked); listings: "
             "the exact set and number of keys (and common prefixes for the walk). A wrong answer fails the run.")
    L.append("- Client CPU: `time.process_time()` around the call (the whole process, every thread: Rust, CRT "
             "and event-loop threads included); curl: its own `ru_utime + ru_stime` from `os.wait4` (process "
             "start-up included).")
    L.append("- Server CPU: psutil `cpu_times()` (user + system) of the server process(es), read before and "
             "after each call (10 ms resolution).")
    L.append("- RSS growth: the process's RSS high-water mark is reset before each call "
             "(`echo 5 > /proc/self/clear_refs`) and read after it (`VmHWM`); the column is the largest "
             "peak-minus-start across reps, exact (no sampling). Memory the allocator kept from an earlier "
             "call can be reused without growth, so the fresh-process table above is the one to read for "
             "the largest object. `pyfasts3 get_into`'s destination is preallocated, so it is not counted in "
             "the per-rep column. curl: its whole process's peak (VmHWM polled every 2 ms until it exits; "
             "`ru_maxrss` is not usable, it inherits the parent's size across fork+exec).")
    L.append("- Small objects: each request is timed alone; req/s = requests / sum of request times; "
             "p50/p99 pool all measured requests. curl's times are its own `%{time_total}` per transfer.")
    L.append("- Large objects: pyfasts3 uses its defaults (adaptive parts, 16 in flight; bench/README.md "
             "'Defaults'); curl's ceiling uses 16 parallel 8 MiB ranged GETs (SigV4-signed on versitygw), split over one "
             "`curl --parallel` process per core, since curl's transfer loop is single-threaded. Batch: the "
             "same 16 in flight over the same processes. Small objects: one curl process, one connection.")
    L.append("- Listing: the tree is `list/dNNNN/` × 1,000 keys each (400 directories). versitygw's posix "
             "backend re-reads and sorts the whole directory for every 1,000-key page, so a flat "
             "400,000-entry directory makes its cost quadratic in the key count; the tree keeps each page "
             "cheap. 'With delimiter' walks the tree level by level with `delimiter='/'` (one listing of the "
             "prefix, then one per common prefix), the way `s3fs.walk` does.")
    probe = meta.get("boto3_crt_probe")
    if probe:
        L.append("- boto3 + CRT: boto3's documented switch "
                 f"`{probe.get('call')}` was tried against versitygw in this run: transfer manager "
                 f"`{probe.get('manager')}`, result `{probe.get('result')}`"
                 + (f", `awscrt.s3.is_optimized_for_system()` = {probe['awscrt.s3.is_optimized_for_system()']}"
                    if "awscrt.s3.is_optimized_for_system()" in probe else "")
                 + ". boto3's CRT path (boto3/crt.py) builds its request serializer with `endpoint_url=None` "
                 "and its CRT client with `use_ssl=True`, so it cannot reach a custom plain-HTTP endpoint. "
                 "The 'boto3 CRT transfer manager' rows therefore use the same `s3transfer.crt.CRTTransferManager` "
                 "built from s3transfer's public pieces with the endpoint and `use_ssl=False`; on the nginx lane "
                 "unsigned (no credentials provider).")
    L.append("")
    if pngs:
        L.append("## Plots")
        L.append("")
        for p in pngs:
            L.append(f"![{p}]({p})")
            L.append("")
    return "\n".join(L) + "\n"


def write(doc: Dict[str, Any], out_dir: Path) -> None:
    enrich(doc)
    pngs = plots(doc, out_dir)
    (out_dir / "RESULTS.md").write_text(render(doc, pngs))
    # keep the summaries in results.json too
    (out_dir / "results.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("results.json")
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else src.parent
    write(json.loads(src.read_text()), out)
    print(f"wrote {out / 'RESULTS.md'}")
