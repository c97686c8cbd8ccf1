"""The two benchmark servers, both on 127.0.0.1 and serving the same files on disk.

- versitygw (Apache-2.0) with its posix backend: a real S3 server that verifies SigV4; a
  second versitygw process over the same root serves HTTPS (the TLS lane) with a
  certificate from a private CA generated at start-up.
  Objects are plain files under ``<root>/<bucket>/<key>``; the ETag lives in the
  ``user.etag`` xattr, which the benchmark writes itself when it seeds data (see
  workloads.seed), so seeding 400,000 keys takes seconds instead of 400,000 PUTs.
  Started with ``--keep-alive``: versitygw's default closes the connection after every
  response, which no real S3 endpoint does and which would make every client pay a TCP
  handshake per request.
- nginx (BSD-2-Clause; Debian package ``nginx``): the same ``<root>`` as a static docroot,
  so ``GET /<bucket>/<key>`` is the very same file, answered from the page cache with
  sendfile. Not S3 (no listing, no auth; it ignores Authorization headers): a lane whose
  server costs almost nothing, so the client is what bounds it. Its config is generated
  into a temp prefix (``nginx -c <conf> -p <prefix>``); nothing in /etc is touched.

Each server's CPU time is read with psutil from its pid (nginx: master + worker), so the
harness can report server CPU seconds per workload.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from s3servers import (REGION, VERSITYGW_VERSION, find_versitygw, free_port, terminate,  # noqa: E402
                       wait_for_port, write_test_pki)

ACCESS_KEY = "pyfasts3-bench"
SECRET_KEY = "pyfasts3-bench-secret"


@dataclass
class Lane:
    """A running server the clients are pointed at."""

    name: str                      # "versitygw" | "nginx"
    label: str                     # how tables name the lane
    endpoint_url: str
    anonymous: bool                # clients send unsigned requests
    s3: bool                       # a real S3 API (listing works); False for nginx
    version: str
    processes: List[psutil.Process]
    #: PEM file of the private CA that issued the server's certificate (HTTPS lanes), handed
    #: to every client: pyfasts3 ca_bundle=, boto3/s3fs verify=, obstore root_certificate,
    #: curl --cacert.
    ca_bundle: Optional[str] = None
    access_key_id: str = ACCESS_KEY
    secret_access_key: str = SECRET_KEY
    region: str = REGION
    _stop: Callable[[], None] = field(repr=False, default=lambda: None)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds used so far by the server's processes."""
        total = 0.0
        for p in self.processes:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                raise RuntimeError(f"{self.name} (pid {p.pid}) died during the benchmark")
        return total

    def stop(self) -> None:
        self._stop()


def _die_with_parent() -> None:
    """preexec_fn: the server gets SIGTERM if the harness dies (Linux PR_SET_PDEATHSIG), so
    an interrupted run does not leave servers behind."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001
        pass


# -- versitygw ----------------------------------------------------------------------------

def versitygw_version(exe: str) -> str:
    """The module version Go recorded in the binary (``versitygw --version`` says "git"
    for a ``go install`` build)."""
    try:
        out = subprocess.run(["go", "version", "-m", exe], capture_output=True, text=True, timeout=30).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "mod" and parts[1] == "github.com/versity/versitygw":
                return parts[2]
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "unknown"


def start_versitygw(root: Path, log: Path, tls: bool = False) -> Lane:
    """versitygw posix backend over ``root`` (its subdirectories are the buckets). With
    ``tls``, over HTTPS with a certificate for 127.0.0.1 from a private CA made now (the
    ``versitygw-tls`` lane: the same files, so nothing is seeded twice)."""
    exe = find_versitygw()
    if exe is None:
        raise RuntimeError(
            f"versitygw not found: go install github.com/versity/versitygw/cmd/versitygw@{VERSITYGW_VERSION}"
        )
    port = free_port()
    cmd = [exe, "--port", f"127.0.0.1:{port}", "--access", ACCESS_KEY, "--secret", SECRET_KEY,
           "--region", REGION, "--quiet", "--keep-alive"]
    ca_bundle = None
    if tls:
        ca_bundle, cert, key = write_test_pki(str(log.parent))
        cmd += ["--cert", cert, "--key", key]
    cmd += ["posix", str(root)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=_die_with_parent)
    wait_for_port(port, proc, "versitygw", log)
    return Lane(
        name="versitygw-tls" if tls else "versitygw",
        label="versitygw over HTTPS (S3, posix backend, private CA)" if tls else "versitygw (S3, posix backend)",
        endpoint_url=f"{'https' if tls else 'http'}://127.0.0.1:{port}",
        ca_bundle=ca_bundle,
        anonymous=False,
        s3=True,
        version=versitygw_version(exe),
        processes=[psutil.Process(proc.pid)],
        _stop=lambda: terminate(proc),
    )


# -- nginx --------------------------------------------------------------------------------

def ensure_nginx() -> str:
    """Path of the nginx binary; installs Debian's ``nginx`` package if it is missing."""
    exe = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if exe:
        return exe
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError("nginx is not installed (apt-get install nginx)")
    print("nginx not found: installing Debian's nginx package (apt-get)...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    # policy-rc.d is not ours to change; the package may try to start its own service on
    # port 80, which we neither need nor touch (we run our own instance from a temp prefix).
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "nginx"], check=True, env=env)
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(exe).exists():
        raise RuntimeError("apt-get install nginx did not provide an nginx binary")
    return exe


NGINX_CONF = """\
# Generated by bench/servers.py for one benchmark run; not a system config.
worker_processes 1;
daemon off;
master_process on;
user {user};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    sendfile on;
    # no tcp_nopush: with it, ~1 in 1,000 sequential 64 KiB responses stalled 40 ms here
    # (TCP_CORK + delayed ACK), which would make the client-bound lane measure nginx.
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    default_type application/octet-stream;
    etag on;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {docroot};
        location / {{
        }}
    }}
}}
"""


def nginx_version(exe: str) -> str:
    out = subprocess.run([exe, "-v"], capture_output=True, text=True).stderr.strip()
    return out.split("/", 1)[-1] if "/" in out else out


def start_nginx(docroot: Path, prefix: Path) -> Lane:
    """nginx serving ``docroot`` as static files: ``GET /<bucket>/<key>``."""
    exe = ensure_nginx()
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    import pwd

    user = "root" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(user=user, prefix=prefix, port=port, docroot=docroot))
    log = prefix / "error.log"
    proc = subprocess.Popen([exe, "-c", str(conf), "-p", str(prefix)], stdout=subprocess.DEVNULL,
                            stderr=open(prefix / "stderr.log", "wb"), stdin=subprocess.DEVNULL,
                            preexec_fn=_die_with_parent)
    wait_for_port(port, proc, "nginx", log)
    master = psutil.Process(proc.pid)
    deadline = time.monotonic() + 10
    while not master.children() and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = master.children()
    if len(workers) != 1:
        terminate(proc)
        raise RuntimeError(f"expected one nginx worker, found {len(workers)}")
    return Lane(
        name="nginx",
        label="nginx (static files, not S3)",
        endpoint_url=f"http://127.0.0.1:{port}",
        anonymous=True,
        s3=False,
        version=nginx_version(exe),
        processes=[master] + workers,
        _stop=lambda: terminate(proc),
    )


def make_root(base: Optional[str] = None) -> Path:
    """A fresh directory for the server's data (on disk, page-cached once seeded)."""
    parent = Path(base or "/var/tmp")
    parent.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="pyfasts3-bench-", dir=parent))
    root.chmod(0o755)
    return root
