"""HTTPS trust and proxies, as boto3 reads them.

Trust: a private CA given as ca_bundle= (or verify=<path>), AWS_CA_BUNDLE, ca_bundle in the
AWS config file or REQUESTS_CA_BUNDLE is trusted besides the system roots; an untrusted
certificate is refused by default with TlsError, promptly; verify=False accepts anything.
Proxies: proxy= or HTTPS_PROXY / HTTP_PROXY / NO_PROXY; a small CONNECT / forwarding proxy
written here (threads on 127.0.0.1) counts what goes through it.

Runs on the TLS lane only (versitygw over HTTPS, see conftest.py), plus a plain-HTTP
versitygw for the plain-HTTP proxy test.
"""
from __future__ import annotations

import base64
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

import pyfasts3
from s3servers import S3Server, find_versitygw, start_versitygw, write_test_pki

LANES = ["versitygw-tls"]  # conftest: this module runs on the TLS lane only

TRUST_ENV = ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "AWS_CONFIG_FILE", "AWS_PROFILE",
             "AWS_SHARED_CREDENTIALS_FILE", "SSL_CERT_FILE", "SSL_CERT_DIR")
PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
             "http_proxy", "https_proxy", "no_proxy", "all_proxy")
DATA = bytes(range(256)) * 1024  # 256 KiB: several parts with part_size=64 KiB


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No trust or proxy settings leak in from the machine; an empty AWS config file."""
    for name in TRUST_ENV + PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "empty-aws-config"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))


@pytest.fixture
def obj(server, s3, bucket) -> str:
    assert server.ca_bundle, "the TLS lane serves HTTPS"
    s3.put_object(Bucket=bucket, Key="obj", Body=DATA)
    return f"{bucket}/obj"


def tls_client(server: S3Server, **kwargs) -> pyfasts3.Client:
    """A client on the server with no trust settings unless given."""
    return pyfasts3.Client(server.endpoint_url, region=server.region,
                           access_key_id=server.access_key_id,
                           secret_access_key=server.secret_access_key,
                           part_size=64 * 1024, **kwargs)


def read_all(c: pyfasts3.Client, path: str) -> None:
    """Every kind of request: ranged GETs in parallel, HEAD, a listing."""
    buf = bytearray(len(DATA))
    assert c.get_into(buf, path) == len(DATA) and bytes(buf) == DATA
    assert bytes(c.get(path)) == DATA
    assert c.head(path).size == len(DATA)
    bucket = path.split("/")[0]
    assert [k for k in c.list_keys(bucket)] == ["obj"]


@pytest.fixture
def other_ca(tmp_path) -> str:
    """A CA that did not issue the server's certificate."""
    ca, _, _ = write_test_pki(str(tmp_path))
    return ca


# -- trust -----------------------------------------------------------------------------------

def test_ca_bundle_option_trusts_the_private_ca(server, obj):
    with tls_client(server, ca_bundle=server.ca_bundle) as c:
        read_all(c, obj)
    with tls_client(server, ca_bundle=Path(server.ca_bundle)) as c:  # os.PathLike too
        read_all(c, obj)


def test_verify_may_be_a_path_as_in_boto3(server, obj):
    with tls_client(server, verify=server.ca_bundle) as c:
        read_all(c, obj)
    with pytest.raises(ValueError):
        tls_client(server, verify=server.ca_bundle, ca_bundle=server.ca_bundle)


def test_aws_ca_bundle_env_trusts_the_private_ca(server, obj, monkeypatch):
    monkeypatch.setenv("AWS_CA_BUNDLE", server.ca_bundle)
    with tls_client(server) as c:
        read_all(c, obj)


def test_requests_ca_bundle_env_is_the_last_fallback(server, obj, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca_bundle)
    with tls_client(server) as c:
        read_all(c, obj)


def test_config_file_ca_bundle_of_the_selected_profile(server, obj, monkeypatch, tmp_path, other_ca):
    config = tmp_path / "config"
    config.write_text(f"[default]\nca_bundle = {other_ca}\n\n[profile tls]\nca_bundle = {server.ca_bundle}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    with tls_client(server, profile="tls") as c:
        read_all(c, obj)
    monkeypatch.setenv("AWS_PROFILE", "tls")
    with tls_client(server) as c:
        read_all(c, obj)
    monkeypatch.delenv("AWS_PROFILE")
    with tls_client(server) as c:  # the default profile names the wrong CA
        with pytest.raises(pyfasts3.TlsError):
            c.head(obj)


def test_bundle_precedence_option_then_env_then_config(server, obj, monkeypatch, tmp_path, other_ca):
    config = tmp_path / "config"
    config.write_text(f"[default]\nca_bundle = {server.ca_bundle}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_CA_BUNDLE", other_ca)
    with tls_client(server) as c:  # AWS_CA_BUNDLE wins over the config file
        with pytest.raises(pyfasts3.TlsError):
            c.head(obj)
    with tls_client(server, ca_bundle=server.ca_bundle) as c:  # the option wins over both
        read_all(c, obj)


def test_untrusted_certificate_refused_promptly_by_default(server, obj):
    with tls_client(server) as c:
        for call in (lambda: c.head(obj), lambda: c.get(obj), lambda: c.list_keys(obj.split("/")[0])):
            started = time.monotonic()
            with pytest.raises(pyfasts3.TlsError) as ei:
                call()
            assert time.monotonic() - started < 5, "a certificate failure must not be retried for long"
            text = str(ei.value)
            assert "UnknownIssuer" in text and "ca_bundle=" in text and "127.0.0.1" in text, text


def test_verify_false_accepts_the_certificate(server, obj):
    with tls_client(server, verify=False) as c:
        read_all(c, obj)
    assert "verify" not in repr(tls_client(server, verify=False))


@pytest.mark.parametrize("content", [None, "", "not a certificate\n",
                                     "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"],
                         ids=["missing", "empty", "no-pem", "bad-der"])
def test_unusable_bundle_is_config_error_naming_the_path(server, tmp_path, content, monkeypatch):
    path = tmp_path / "bundle.pem"
    if content is not None:
        path.write_text(content)
    with pytest.raises(pyfasts3.ConfigError) as ei:
        tls_client(server, ca_bundle=str(path))
    assert str(path) in str(ei.value)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(path))
    with pytest.raises(pyfasts3.ConfigError) as ei:
        tls_client(server)
    assert str(path) in str(ei.value) and "AWS_CA_BUNDLE" in str(ei.value)


# -- proxies ---------------------------------------------------------------------------------

class Proxy:
    """An HTTP proxy on 127.0.0.1: CONNECT opens a tunnel; any other request is forwarded
    byte for byte to the host its absolute-form target names (and everything after it on that
    connection). Records each connection's first request line and Proxy-Authorization; with
    `credentials`, refuses (407) requests without the matching Basic credentials."""

    def __init__(self, credentials: Optional[Tuple[str, str]] = None):
        self.expected = None
        if credentials:
            token = base64.b64encode(":".join(credentials).encode()).decode()
            self.expected = f"Basic {token}"
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: List[Tuple[str, Optional[str]]] = []  # (request line, proxy auth)
        self.refused = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, userinfo: str = "") -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    @property
    def tunnels(self) -> int:
        return sum(1 for line, _ in self.requests if line.startswith("CONNECT "))

    @property
    def forwarded(self) -> int:
        return sum(1 for line, _ in self.requests if not line.startswith("CONNECT "))

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket):
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            text, _, rest = head.partition(b"\r\n\r\n")
            lines = text.decode("latin-1").split("\r\n")
            auth = next((l.split(":", 1)[1].strip() for l in lines[1:]
                         if l.lower().startswith("proxy-authorization:")), None)
            with self._lock:
                self.requests.append((lines[0], auth))
            if self.expected and auth != self.expected:
                self.refused += 1
                conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                             b"Proxy-Authenticate: Basic\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            method, target, _ = lines[0].split(" ", 2)
            if method == "CONNECT":
                host, port = target.rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)))
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                first = rest
            else:
                assert target.startswith("http://"), f"not absolute-form: {lines[0]}"
                authority = target[len("http://"):].split("/", 1)[0]
                host, port = authority.rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)))
                first = head
            if first:
                upstream.sendall(first)
            self._pipe(conn, upstream)
        except OSError:
            pass
        finally:
            conn.close()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket):
        def one_way(src, dst):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        t = threading.Thread(target=one_way, args=(b, a), daemon=True)
        t.start()
        one_way(a, b)
        t.join()
        b.close()

    def close(self):
        self.sock.close()


@pytest.fixture
def http_proxy():
    p = Proxy()
    yield p
    p.close()


@pytest.fixture(scope="module")
def plain_server():
    """versitygw over plain HTTP, for requests that go through a proxy in absolute form."""
    if find_versitygw() is None:
        pytest.fail("versitygw is required (see tests/s3servers.py)")
    srv = start_versitygw()
    yield srv
    srv.stop()


@pytest.fixture
def plain_obj(plain_server) -> str:
    s3 = plain_server.boto3_client()
    name = f"t-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="obj", Body=DATA)
    return f"{name}/obj"


def test_proxy_option_tunnels_https(server, obj, http_proxy):
    with tls_client(server, ca_bundle=server.ca_bundle, proxy=http_proxy.url()) as c:
        read_all(c, obj)
    host = server.endpoint_url.split("://")[1]
    assert http_proxy.tunnels >= 1 and http_proxy.forwarded == 0
    assert all(line == f"CONNECT {host} HTTP/1.1" for line, _ in http_proxy.requests), http_proxy.requests


def test_https_proxy_env_is_used_and_no_proxy_bypasses_it(server, obj, http_proxy, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", http_proxy.url())
    with tls_client(server, ca_bundle=server.ca_bundle) as c:
        read_all(c, obj)
    assert http_proxy.tunnels >= 1
    before = len(http_proxy.requests)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    with tls_client(server, ca_bundle=server.ca_bundle) as c:
        read_all(c, obj)
    assert len(http_proxy.requests) == before, "NO_PROXY names the host: no request may go through the proxy"


def test_http_proxy_env_forwards_plain_http_in_absolute_form(plain_server, plain_obj, http_proxy, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", http_proxy.url())
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # must not be used for http://
    with tls_client(plain_server) as c:
        read_all(c, plain_obj)
    assert http_proxy.forwarded >= 1 and http_proxy.tunnels == 0
    prefix = f"GET {plain_server.endpoint_url}/"
    assert any(line.startswith(prefix) for line, _ in http_proxy.requests), http_proxy.requests
    before = len(http_proxy.requests)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with tls_client(plain_server) as c:
        read_all(c, plain_obj)
    assert len(http_proxy.requests) == before


def test_proxy_credentials_sent_and_never_shown(server, obj, plain_server, plain_obj):
    user, secret = "proxyuser", "pr0xy-S3cret"
    proxy = Proxy(credentials=(user, secret))
    try:
        url = proxy.url(f"{user}:{secret}")
        with tls_client(server, ca_bundle=server.ca_bundle, proxy=url) as c:
            assert secret not in repr(c) and "***@127.0.0.1" in repr(c)
            read_all(c, obj)
        with tls_client(plain_server, proxy=url) as c:
            read_all(c, plain_obj)
        assert proxy.tunnels >= 1 and proxy.forwarded >= 1 and proxy.refused == 0
        wrong = proxy.url(f"{user}:wrong-S3cret")
        for srv, path in ((server, obj), (plain_server, plain_obj)):
            with tls_client(srv, ca_bundle=srv.ca_bundle, proxy=wrong) as c:
                started = time.monotonic()
                with pytest.raises(pyfasts3.S3Error) as ei:
                    c.head(path)
                assert time.monotonic() - started < 10
                assert "S3cret" not in str(ei.value) and "S3cret" not in repr(c)
                assert "407" in str(ei.value) or "proxy" in str(ei.value).lower(), str(ei.value)
    finally:
        proxy.close()


@pytest.mark.parametrize("url", ["https://u:S3cret@127.0.0.1:1", "socks5://127.0.0.1:1", "http://"])
def test_unsupported_proxy_is_config_error_without_secrets(server, url):
    with pytest.raises(pyfasts3.ConfigError) as ei:
        tls_client(server, proxy=url)
    assert "S3cret" not in str(ei.value)
