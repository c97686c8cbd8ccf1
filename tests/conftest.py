"""Shared fixtures: every integration test runs once per S3 server lane.

Lanes come from PYFASTS3_TEST_SERVERS (default "moto,versitygw"): moto's standalone server
(no signature checks) and versitygw (verifies SigV4 like AWS). A requested lane that cannot
start is an error, not a skip: CI must not go green on a missing server.
"""
from __future__ import annotations

import os
import uuid

import pytest

import pyfasts3
from faultproxy import FaultProxy
from s3servers import S3Server, start

SERVERS = [s for s in os.environ.get("PYFASTS3_TEST_SERVERS", "moto,versitygw").split(",") if s]


@pytest.fixture(scope="session", params=SERVERS)
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
