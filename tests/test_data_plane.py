"""The lean data plane (rust/engine/http): what GET and HEAD keep from the SDK's request
path — retries as boto3's standard mode does them, the attempt budget from the client option
and AWS_MAX_ATTEMPTS, and a bucket in another region found from S3's redirect."""
from __future__ import annotations

import numpy as np
import pytest

import pyfasts3
from fakes3 import FakeS3, first_requests, signed_region
from faultproxy import random_bytes

PATH = "bkt/obj"


@pytest.fixture
def fake():
    with FakeS3() as f:
        yield f


def client_for(fake: FakeS3, **kwargs) -> pyfasts3.Client:
    kwargs.setdefault("region", "us-east-1")
    return pyfasts3.Client(fake.url, access_key_id="k", secret_access_key="s", **kwargs)


@pytest.mark.parametrize("op", ["get", "head"])
def test_a_bucket_in_another_region_is_followed(fake, op):
    """S3 answers a request signed for the wrong region with 301 PermanentRedirect naming the
    bucket's region (x-amz-bucket-region); boto3 re-signs for that region and sends again.
    So does pyfasts3, once per bucket: later requests go to the right region at once."""
    data = random_bytes(3000, 1)
    fake.put(PATH, data)
    fake.behave(bucket_region="eu-west-3")
    with client_for(fake, region="us-east-1") as client:
        for _ in range(3):
            if op == "get":
                assert client.get(PATH).tobytes() == data
            else:
                assert client.head(PATH).size == len(data)
    regions = [signed_region(r) for r in fake.requests]
    assert regions[0] == "us-east-1", regions
    assert regions[1:] == ["eu-west-3"] * 3, regions


def test_a_redirect_without_a_region_is_an_error(fake):
    """A 301 that names no region cannot be followed: it is an error, not a loop."""
    fake.put(PATH, b"x" * 10)
    fake.behave(error=(301, "PermanentRedirect"))
    with client_for(fake, max_attempts=1) as client:
        with pytest.raises(pyfasts3.S3Error) as info:
            client.get(PATH)
    assert info.value.code == "PermanentRedirect"
    assert len(fake.requests) == 1


@pytest.mark.parametrize("max_attempts", [1, 2, 4])
def test_max_attempts_bounds_the_attempts(fake, max_attempts):
    fake.put(PATH, b"x" * 10)
    fake.behave(error=(500, "InternalError"))
    with client_for(fake, max_attempts=max_attempts) as client:
        with pytest.raises(pyfasts3.S3Error) as info:
            client.head(PATH)
    assert info.value.status == 500
    assert len(fake.requests) == max_attempts


def test_aws_max_attempts_is_read_from_the_environment(fake, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    fake.put(PATH, b"x" * 10)
    fake.behave(error=(503, "SlowDown"))
    with client_for(fake) as client:
        with pytest.raises(pyfasts3.Throttled):
            client.get(PATH)
    assert len(fake.requests) == 2


@pytest.mark.parametrize("status,code", [(500, "InternalError"), (503, "SlowDown"), (400, "RequestTimeout")])
def test_transient_failures_are_retried_then_succeed(fake, status, code):
    data = random_bytes(5000, 2)
    fake.put(PATH, data)
    fake.behave_when(first_requests(2), error=(status, code))
    with client_for(fake) as client:
        buf = np.zeros(len(data), np.uint8)
        assert client.get_into(buf, PATH) == len(data)
    assert buf.tobytes() == data
    assert len(fake.requests) == 3


def test_client_errors_are_not_retried(fake):
    fake.put(PATH, b"x" * 10)
    fake.behave(error=(403, "AccessDenied"))
    with client_for(fake, max_attempts=5) as client:
        with pytest.raises(pyfasts3.AccessDenied):
            client.get(PATH)
    assert len(fake.requests) == 1


def test_max_attempts_is_validated():
    with pytest.raises(ValueError):
        pyfasts3.Client("http://127.0.0.1:9", max_attempts=0)
