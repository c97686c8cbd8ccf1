"""Local S3-compatible servers on 127.0.0.1 for tests, the demo and benchmarks.

- moto's standalone server (ThreadedMotoServer, in-process thread): fast to start, but it
  does not verify request signatures.
- versitygw (Apache-2.0) with its posix backend on a temp dir: a separate process that
  verifies SigV4 exactly as AWS does. Installed by `.ci/run` with `go install`; found on
  PATH, in $GOBIN or in ~/go/bin.
- versitygw-tls: the same over HTTPS, with a certificate for 127.0.0.1 / localhost issued at
  start-up by a private CA (python `trustme`). `S3Server.ca_bundle` is the CA's PEM file:
  every client must be handed it (pyfasts3 `ca_bundle=`, boto3 `verify=`, curl `--cacert`).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Tuple

VERSITYGW_VERSION = "v1.7.0"
REGION = "us-east-1"


@dataclass
class S3Server:
    name: str
    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    region: str = REGION
    verifies_signatures: bool = False
    #: PEM file of the CA that issued the server's certificate (HTTPS lanes only).
    ca_bundle: Optional[str] = None
    _stop: Callable[[], None] = field(repr=False, default=lambda: None)

    def stop(self) -> None:
        self._stop()

    def env(self) -> dict:
        """Environment variables that point AWS clients (and pyfasts3) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": self.region,
            **({"AWS_CA_BUNDLE": self.ca_bundle} if self.ca_bundle else {}),
        }

    def boto3_client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
            verify=self.ca_bundle,
        )


def terminate(proc: subprocess.Popen) -> None:
    """Stop a server process: SIGTERM, then SIGKILL if it has not exited within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_moto() -> S3Server:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    return S3Server("moto", f"http://127.0.0.1:{port}", "testing", "testing", _stop=server.stop)


def find_versitygw() -> Optional[str]:
    candidates = [shutil.which("versitygw")]
    gobin = os.environ.get("GOBIN")
    if gobin:
        candidates.append(str(Path(gobin) / "versitygw"))
    candidates.append(str(Path.home() / "go" / "bin" / "versitygw"))
    return next((c for c in candidates if c and Path(c).exists()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, name: str, log: Path, timeout: float = 20.0) -> None:
    """Return once something listens on 127.0.0.1:port; raise (with the log's tail) if
    `proc` exits first or nothing listens within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{text}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{name} did not listen on 127.0.0.1:{port} within {timeout}s")


def write_test_pki(directory: str) -> Tuple[str, str, str]:
    """A private CA and a server certificate for 127.0.0.1 / localhost / ::1 issued by it,
    written as PEM files in `directory`: (ca, cert, key)."""
    import trustme

    ca = trustme.CA(organization_name="pyfasts3 test CA")
    leaf = ca.issue_cert("127.0.0.1", "localhost", "::1")
    paths = tuple(str(Path(directory) / name) for name in ("ca.pem", "server.pem", "server.key"))
    ca.cert_pem.write_to_path(paths[0])
    with open(paths[1], "wb") as out:
        for pem in leaf.cert_chain_pems:
            out.write(pem.bytes())
    leaf.private_key_pem.write_to_path(paths[2])
    return paths


def start_versitygw(root: Optional[str] = None, access_log: bool = False, tls: bool = False) -> S3Server:
    exe = find_versitygw()
    if exe is None:
        raise RuntimeError(
            f"versitygw not found: go install github.com/versity/versitygw/cmd/versitygw@{VERSITYGW_VERSION}"
        )
    owned_root = root is None
    root = root or tempfile.mkdtemp(prefix="pyfasts3-vgw-")
    port = free_port()
    log = Path(root).with_name(Path(root).name + ".log")
    access, secret = "pyfasts3-test", "pyfasts3-test-secret"
    cmd = [exe, "--port", f"127.0.0.1:{port}", "--access", access, "--secret", secret, "--region", REGION]
    if not access_log:
        cmd.append("--quiet")
    ca_bundle = None
    if tls:
        pki = tempfile.mkdtemp(prefix="pyfasts3-pki-")
        ca_bundle, cert, key = write_test_pki(pki)
        cmd += ["--cert", cert, "--key", key]
    cmd += ["posix", root]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    wait_for_port(port, proc, "versitygw", log)

    def stop() -> None:
        terminate(proc)
        if owned_root:
            shutil.rmtree(root, ignore_errors=True)
            log.unlink(missing_ok=True)
        if ca_bundle:
            shutil.rmtree(Path(ca_bundle).parent, ignore_errors=True)

    scheme = "https" if tls else "http"
    # Named "versitygw" either way: tests that allow for its quirks check the name.
    return S3Server("versitygw", f"{scheme}://127.0.0.1:{port}", access, secret,
                    verifies_signatures=True, ca_bundle=ca_bundle, _stop=stop)


def start(name: str) -> S3Server:
    starters = {
        "moto": start_moto,
        "versitygw": start_versitygw,
        "versitygw-tls": lambda: start_versitygw(tls=True),
    }
    return starters[name]()
