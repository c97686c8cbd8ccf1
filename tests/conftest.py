"""Shared fixtures: every integration test runs once per S3 server lane.

Lanes come from PYFASTS3_TEST_SERVERS (default "moto,versitygw,versitygw-tls"): moto's
standalone server (no signature checks), versitygw (verifies SigV4 like AWS), and versitygw
over HTTPS with a private CA (the TLS lane). The TLS lane runs only the modules in
TLS_LANE_MODULES (reads, ranges, pinned reads, file objects, head, listing, errors and error
objects, writes, async, TLS: the whole suite on a third lane would cost CI minutes for little);
a test there that needs plain HTTP (e.g. the byte-level fault proxy, which reads request heads)
takes the `proxy` fixture or is marked `plain_http_only`. A requested lane that cannot start
is an error, not a skip: CI must not go green on a missing server.
"""
from __future__ import annotations

import os
import uuid

import pytest

import pyfasts3
from faultproxy import FaultProxy
from s3servers import S3Server, start

TLS_LANE = "versitygw-tls"
SERVERS = [s for s in os.environ.get("PYFASTS3_TEST_SERVERS", f"moto,versitygw,{TLS_LANE}").split(",") if s]
TLS_LANE_MODULES = {"test_get", "test_ranges", "test_pinned_reads", "test_io", "test_head", "test_list", "test_errors",
                    "test_error_objects", "test_tls", "test_writes", "test_async"}
# Fixtures whose tests cannot run over HTTPS (the fault proxy parses plain HTTP).
PLAIN_HTTP_FIXTURES = {"proxy"}


def pytest_configure(config):
    config.addinivalue_line("markers", "plain_http_only: not run on the TLS lane")


def pytest_generate_tests(metafunc):
    """Parametrize `server` by lane: every lane but the TLS one for every test, the TLS lane
    for the chosen modules only."""
    if "server" not in metafunc.fixturenames:
        return
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    only = getattr(metafunc.module, "LANES", None)  # a module bound to some lanes
    if only is not None:
        metafunc.parametrize("server", [s for s in SERVERS if s in only], indirect=True, scope="session")
        return
    lanes = [s for s in SERVERS if s != TLS_LANE]
    wants_tls = (
        TLS_LANE in SERVERS
        and module in TLS_LANE_MODULES
        and not PLAIN_HTTP_FIXTURES & set(metafunc.fixturenames)
        and metafunc.definition.get_closest_marker("plain_http_only") is None
    )
    if wants_tls:
        lanes.append(TLS_LANE)
    metafunc.parametrize("server", lanes, indirect=True, scope="session")


@pytest.fixture(scope="session")
def server(request) -> S3Server:
    srv = start(request.param)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def s3(server):
    """A boto3 client on the same server, used to seed and mutate objects."""
    return server.boto3_client()


@pytest.fixture
def bucket(s3) -> str:
    """A fresh, empty bucket per test."""
    name = f"t-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def put(s3, bucket):
    """put(key, data) uploads `data` (bytes) to the test bucket and returns "bucket/key"."""

    def _put(key: str, data: bytes) -> str:
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        return f"{bucket}/{key}"

    return _put


def make_client(server: S3Server, **kwargs) -> pyfasts3.Client:
    if server.ca_bundle and "verify" not in kwargs:
        kwargs.setdefault("ca_bundle", server.ca_bundle)
    return pyfasts3.Client(
        server.endpoint_url,
        region=server.region,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        **kwargs,
    )


@pytest.fixture
def client(server):
    """A pyfasts3 client on the server with a small part size (64 KiB), so multi-part paths
    are exercised with small objects."""
    with make_client(server, part_size=64 * 1024) as c:
        yield c


@pytest.fixture
def server_env(server, monkeypatch):
    """Point the AWS environment (and so pyfasts3's default client) at the server, with a
    fresh default client for the test."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    if pyfasts3._default is not None:
        pyfasts3._default.close()
    yield server
    if pyfasts3._default is not None:
        pyfasts3._default.close()


@pytest.fixture
def proxy(server):
    """A fault-injecting TCP proxy in front of the server (see faultproxy.py)."""
    with FaultProxy(server.endpoint_url) as p:
        yield p
