"""Client construction, options, lifecycle (close / context manager), configuration from the
environment and shared config files, and the module-level functions."""
from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

import pyfasts3
from conftest import make_client

PART = 64 * 1024
MIB = 1024 * 1024


def payload(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def within(seconds: float, fn):
    """Run fn() on a daemon thread; fail if it has not finished after `seconds`.
    Returns ("ok", value) or ("error", exception)."""
    outcome = []

    def run():
        try:
            outcome.append(("ok", fn()))
        except BaseException as e:  # noqa: BLE001 - reported to the test
            e.__traceback__ = None
            outcome.append(("error", e))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"call still running after {seconds}s"
    return outcome[0]


def localhost(url: str) -> str:
    """The same endpoint spelled with 'localhost': the AWS SDK itself only falls back to
    path-style for IP-address hosts, so with 'localhost' only pyfasts3's own automatic
    path-style keeps 'bucket.localhost' (which does not resolve) out of the URL."""
    assert "127.0.0.1" in url
    return url.replace("127.0.0.1", "localhost")


def make_anonymous(server) -> pyfasts3.Client:
    return pyfasts3.Client(server.endpoint_url, server.region, anonymous=True)


# -- options -------------------------------------------------------------------------------


def test_explicit_endpoint_keys_and_region(server, put):
    data = payload(1000)
    path = put("obj", data)
    c = pyfasts3.Client(server.endpoint_url, server.region,
                        access_key_id=server.access_key_id, secret_access_key=server.secret_access_key)
    try:
        assert c.get(path).tobytes() == data
    finally:
        c.close()


def test_default_part_size_and_concurrency(server, put):
    data = payload(3 * PART + 1)
    path = put("obj", data)
    with make_client(server) as c:
        buf = np.empty(len(data), np.uint8)
        assert c.get_into(buf, path) == len(data)
        assert buf.tobytes() == data


def test_max_concurrency_one_fetches_many_parts(server, put):
    data = payload(MIB + 7, seed=1)
    path = put("obj", data)
    with make_client(server, part_size=PART, max_concurrency=1) as c:
        kind, value = within(60, lambda: c.get(path))
        assert kind == "ok", value
        assert value.tobytes() == data
        buf = np.empty(5 * PART, np.uint8)
        assert c.get_into(buf, path, offset=PART // 2) == len(buf)
        assert buf.tobytes() == data[PART // 2:PART // 2 + len(buf)]


def test_max_concurrency_one_get_many_of_multi_part_objects(server, put):
    """Several multi-part reads sharing a budget of one request must not deadlock."""
    objects = [payload(n, seed=n) for n in (3 * PART + 1, 0, 2 * PART, 5, 4 * PART - 1)]
    paths = [put(f"k{i}", d) for i, d in enumerate(objects)]
    with make_client(server, part_size=PART, max_concurrency=1) as c:
        kind, value = within(60, lambda: c.get_many(paths))
        assert kind == "ok", value
        assert [a.tobytes() for a in value] == objects


def test_part_size_one_byte(server, put):
    data = payload(300, seed=2)
    path = put("obj", data)
    with make_client(server, part_size=1) as c:
        assert c.get(path).tobytes() == data
        buf = bytearray(50)
        assert c.get_into(buf, path, offset=260) == 40
        assert bytes(buf[:40]) == data[260:]


@pytest.mark.parametrize("part_size", [1000, 4096, PART - 1, 10 * MIB])
def test_various_part_sizes(server, put, part_size):
    data = payload(2 * PART + 333, seed=part_size)
    path = put("obj", data)
    with make_client(server, part_size=part_size, max_concurrency=4) as c:
        assert c.get(path).tobytes() == data
        assert c.get(path, offset=101, length=PART).tobytes() == data[101:101 + PART]


def test_numpy_integer_options_accepted(server, put):
    path = put("obj", b"abc")
    with make_client(server, part_size=np.int64(2), max_concurrency=np.uint8(3)) as c:
        assert c.get(path).tobytes() == b"abc"


@pytest.mark.parametrize("kwargs,exc", [
    ({"part_size": 0}, ValueError),
    ({"part_size": -1}, ValueError),
    ({"part_size": 2**63}, ValueError),
    ({"part_size": 1.5}, TypeError),
    ({"part_size": "8MiB"}, TypeError),
    ({"part_size": True}, TypeError),
    ({"max_concurrency": 0}, ValueError),
    ({"max_concurrency": -3}, ValueError),
    ({"max_concurrency": 2**62}, ValueError),
    ({"max_concurrency": 2.0}, TypeError),
    ({"max_concurrency": "4"}, TypeError),
], ids=lambda v: repr(v) if isinstance(v, dict) else v.__name__)
def test_invalid_numeric_options(server, kwargs, exc):
    with pytest.raises(exc):
        make_client(server, **kwargs)


@pytest.mark.parametrize("kwargs,exc", [
    ({"access_key_id": "AKIA"}, ValueError),
    ({"secret_access_key": "secret"}, ValueError),
    ({"session_token": "token"}, ValueError),
    ({"anonymous": True, "access_key_id": "a", "secret_access_key": "b"}, ValueError),
    ({"endpoint_url": "not a url"}, ValueError),
    ({"endpoint_url": "127.0.0.1:9000"}, ValueError),
    ({"endpoint_url": "ftp://127.0.0.1"}, ValueError),
    ({"endpoint_url": "http://"}, ValueError),
    ({"endpoint_url": 9000}, TypeError),
    ({"endpoint_url": b"http://127.0.0.1:9000"}, TypeError),
    ({"region": 1}, TypeError),
    ({"access_key_id": 1, "secret_access_key": "x"}, TypeError),
    ({"profile": ["pf"]}, TypeError),
], ids=lambda v: repr(v) if isinstance(v, dict) else v.__name__)
def test_invalid_client_options(kwargs, exc):
    with pytest.raises(exc):
        pyfasts3.Client(**kwargs)


def test_invalid_argument_error_is_value_error_and_s3error():
    with pytest.raises(pyfasts3.InvalidArgument) as ei:
        pyfasts3.Client("http://127.0.0.1:9", access_key_id="only-half")
    assert isinstance(ei.value, ValueError)


# -- lifecycle -----------------------------------------------------------------------------


def test_close_then_every_call_raises_value_error(server, put, bucket):
    path = put("obj", b"data")
    c = make_client(server)
    assert not c.closed
    c.close()
    assert c.closed
    assert "closed" in repr(c)
    calls = [
        lambda: c.get_into(bytearray(4), path),
        lambda: c.get_into(bytearray(), path),
        lambda: c.get(path),
        lambda: c.get(path, length=0),
        lambda: c.get_many([path]),
        lambda: c.head(path),
        lambda: c.list_keys(bucket),
        lambda: list(c.list_objects(bucket)),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="closed"):
            call()


def test_close_is_idempotent(server):
    c = make_client(server)
    c.close()
    c.close()
    assert c.closed


def test_failed_call_after_close_leaves_buffer_untouched(server, put):
    path = put("obj", b"data")
    c = make_client(server)
    c.close()
    buf = bytearray(b"\xab" * 4)
    with pytest.raises(ValueError):
        c.get_into(buf, path)
    assert buf == b"\xab" * 4


def test_context_manager_closes(server, put):
    path = put("obj", b"payload")
    with make_client(server) as c:
        assert isinstance(c, pyfasts3.Client)
        assert not c.closed
        assert "open" in repr(c)
        assert c.get(path).tobytes() == b"payload"
    assert c.closed
    with pytest.raises(ValueError):
        c.get(path)


def test_context_manager_closes_on_exception(server):
    with pytest.raises(RuntimeError):
        with make_client(server) as c:
            raise RuntimeError("boom")
    assert c.closed


def test_unclosed_client_is_garbage_collected(server, put):
    """A client never closed is freed by the GC without trouble; others keep working."""
    path = put("obj", b"x" * 10)
    c = make_client(server)
    assert c.get(path).tobytes() == b"x" * 10
    del c
    gc.collect()
    with make_client(server) as c2:
        assert c2.get(path).tobytes() == b"x" * 10


def test_close_during_listing_does_not_crash(server, s3, bucket):
    """A listing already under way holds its own reference to the native client: closing the
    Client must not free memory under it. It may finish or raise ValueError, never crash."""
    keys = [f"k{i:02d}" for i in range(10)]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"")
    c = make_client(server)
    it = c.list_objects(bucket, page_size=2)
    got = [next(it).key]
    c.close()
    gc.collect()
    try:
        got += [o.key for o in it]
    except ValueError:
        return
    assert got == keys


def test_close_while_other_thread_reads(server, put):
    """close() from another thread while reads are in flight: each read either completes
    with the right bytes or raises ValueError; nothing crashes."""
    data = payload(8 * PART, seed=3)
    path = put("obj", data)
    c = make_client(server, part_size=PART, max_concurrency=2)
    results = []

    def reader():
        for _ in range(20):
            try:
                results.append(c.get(path).tobytes() == data)
            except ValueError:
                results.append("closed")

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    c.close()
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    assert all(r is True or r == "closed" for r in results)


# -- environment ---------------------------------------------------------------------------


def test_client_from_environment(server_env, put):
    """No arguments: endpoint, keys and region from AWS_* variables; the endpoint is
    127.0.0.1, so requests must go out path-style."""
    data = payload(2 * PART + 1)
    path = put("obj", data)
    with pyfasts3.Client() as c:
        assert c.get(path).tobytes() == data
        assert c.head(path).size == len(data)


def test_automatic_path_style_for_localhost_env_endpoint(server_env, monkeypatch, put):
    monkeypatch.setenv("AWS_ENDPOINT_URL", localhost(server_env.endpoint_url))
    path = put("obj", b"via localhost")
    with pyfasts3.Client() as c:
        assert c.get(path).tobytes() == b"via localhost"
    with pyfasts3.Client(localhost(server_env.endpoint_url)) as c:
        assert c.list_keys(path.split("/")[0]) == ["obj"]


def test_region_from_aws_default_region(server_env, monkeypatch, put):
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_DEFAULT_REGION", server_env.region)
    path = put("obj", b"r")
    with pyfasts3.Client() as c:
        assert c.get(path).tobytes() == b"r"


def test_region_falls_back_to_us_east_1(server_env, monkeypatch, tmp_path, put):
    """No region anywhere: us-east-1, which is what versitygw checks signatures against."""
    assert server_env.region == "us-east-1"
    monkeypatch.delenv("AWS_REGION")
    (tmp_path / "empty").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "empty"))
    path = put("obj", b"r")
    with pyfasts3.Client() as c:
        assert c.get(path).tobytes() == b"r"


def test_module_level_functions(server_env, s3, bucket):
    objects = {"a/1": payload(PART + 9, seed=1), "a/2": b"", "b": b"bee"}
    for k, v in objects.items():
        s3.put_object(Bucket=bucket, Key=k, Body=v, ContentType="text/x-test")
    buf = np.empty(PART + 20, np.uint8)
    assert pyfasts3.get_into(buf, f"{bucket}/a/1") == PART + 9
    assert buf[:PART + 9].tobytes() == objects["a/1"]
    buf2 = bytearray(10)
    assert pyfasts3.get_into(buf2, f"s3://{bucket}/a/1", offset=PART) == 9
    assert bytes(buf2[:9]) == objects["a/1"][PART:]
    assert pyfasts3.get(f"{bucket}/b").tobytes() == b"bee"
    assert pyfasts3.get(f"{bucket}/a/1", offset=3, length=4).tobytes() == objects["a/1"][3:7]
    assert [a.tobytes() for a in pyfasts3.get_many([f"{bucket}/b", f"{bucket}/a/2", f"{bucket}/a/1"])] == \
        [b"bee", b"", objects["a/1"]]
    info = pyfasts3.head(f"{bucket}/a/1")
    assert (info.bucket, info.key, info.size, info.content_type) == (bucket, "a/1", PART + 9, "text/x-test")
    assert pyfasts3.list_keys(bucket) == ["a/1", "a/2", "b"]
    assert pyfasts3.list_keys(f"{bucket}/a/") == ["a/1", "a/2"]
    assert pyfasts3.list_keys(bucket, delimiter="/") == ["a/", "b"]
    assert [(o.key, o.size) for o in pyfasts3.list_objects(bucket, page_size=1)] == \
        [("a/1", PART + 9), ("a/2", 0), ("b", 3)]
    assert [o.key for o in pyfasts3.list_objects(bucket, delimiter="/")] == ["b"]
    with pytest.raises(pyfasts3.NoSuchKey):
        pyfasts3.get(f"{bucket}/missing")


def test_default_client_is_shared_and_recreated_after_close(server_env, put):
    path = put("obj", b"x")
    c = pyfasts3.default_client()
    assert pyfasts3.default_client() is c
    assert pyfasts3.get(path).tobytes() == b"x"
    c.close()
    c2 = pyfasts3.default_client()
    assert c2 is not c and not c2.closed
    assert pyfasts3.get(path).tobytes() == b"x"


def test_endpoint_url_s3_takes_precedence(server_env, monkeypatch, put):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", server_env.endpoint_url)
    path = put("obj", b"s3-specific endpoint")
    with pyfasts3.Client() as c:
        assert c.get(path).tobytes() == b"s3-specific endpoint"
    assert pyfasts3.get(path).tobytes() == b"s3-specific endpoint"


def test_explicit_endpoint_beats_environment(server_env, monkeypatch, put):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    path = put("obj", b"explicit")
    with pyfasts3.Client(server_env.endpoint_url) as c:
        assert c.get(path).tobytes() == b"explicit"


def test_dead_endpoint_is_network_error(server, bucket):
    with pyfasts3.Client("http://127.0.0.1:9", server.region, access_key_id="a", secret_access_key="b") as c:
        kind, err = within(60, lambda: c.get(f"{bucket}/k"))
    assert kind == "error" and isinstance(err, pyfasts3.NetworkError), err
    assert isinstance(err, ConnectionError)


# -- addressing style ----------------------------------------------------------------------


def test_path_style_true_works(server, put):
    path = put("obj", b"path style")
    with make_client(server, path_style=True) as c:
        assert c.get(path).tobytes() == b"path style"


def test_ip_endpoint_is_always_path_style(server, put):
    """bucket.127.0.0.1 cannot exist, so the AWS SDK's endpoint rules address IP endpoints
    path-style even with path_style=False (documented on Client): the read succeeds."""
    path = put("obj", b"data")
    with make_client(server, path_style=False) as c:
        kind, value = within(60, lambda: c.get(path))
    assert kind == "ok", value
    assert value.tobytes() == b"data"


@pytest.mark.parametrize("op", ["get_into", "list_keys"])
def test_virtual_hosted_against_localhost_fails_cleanly(server, put, op):
    """bucket.localhost does not resolve: S3Error (NetworkError) promptly, not a hang."""
    path = put("obj", b"data")
    calls = {
        "get": lambda c: c.get(path),
        "get_into": lambda c: c.get_into(bytearray(4), path),
        "head": lambda c: c.head(path),
        "list_keys": lambda c: c.list_keys(path.split("/")[0]),
    }
    c = pyfasts3.Client(localhost(server.endpoint_url), server.region, path_style=False,
                        access_key_id=server.access_key_id, secret_access_key=server.secret_access_key)
    with c:
        kind, value = within(60, lambda: calls[op](c))
    assert kind == "error", value
    assert isinstance(value, pyfasts3.S3Error), repr(value)


# -- credentials: profiles, anonymous ------------------------------------------------------


@pytest.fixture
def profiles(server_env, monkeypatch, tmp_path):
    """Shared config/credentials files with profile "pf" (the server's keys) and "bad"
    (wrong secret); no credentials left in the environment."""
    s = server_env
    creds = tmp_path / "credentials"
    creds.write_text(
        f"[pf]\naws_access_key_id = {s.access_key_id}\naws_secret_access_key = {s.secret_access_key}\n\n"
        f"[bad]\naws_access_key_id = {s.access_key_id}\naws_secret_access_key = not-the-secret\n"
    )
    config = tmp_path / "config"
    config.write_text(f"[profile pf]\nregion = {s.region}\n\n[profile bad]\nregion = {s.region}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    return s


def test_profile_argument(profiles, put):
    data = payload(PART + 2)
    path = put("obj", data)
    with pyfasts3.Client(profiles.endpoint_url, profile="pf") as c:
        assert c.get(path).tobytes() == data
        assert c.list_keys(path.split("/")[0]) == ["obj"]


def test_aws_profile_env(profiles, monkeypatch, put):
    monkeypatch.setenv("AWS_PROFILE", "pf")
    path = put("obj", b"from AWS_PROFILE")
    with pyfasts3.Client() as c:
        assert c.get(path).tobytes() == b"from AWS_PROFILE"
    assert pyfasts3.get(path).tobytes() == b"from AWS_PROFILE"


def test_profile_with_wrong_secret_is_access_denied(profiles, put):
    if not profiles.verifies_signatures:
        pytest.skip(f"{profiles.name} does not verify signatures: a wrong secret is accepted")
    path = put("obj", b"x")
    with pyfasts3.Client(profiles.endpoint_url, profile="bad") as c:
        with pytest.raises(pyfasts3.AccessDenied) as ei:
            c.get(path)
    assert ei.value.status == 403


def test_aws_profile_env_with_wrong_secret_is_access_denied(profiles, monkeypatch, put):
    if not profiles.verifies_signatures:
        pytest.skip(f"{profiles.name} does not verify signatures: a wrong secret is accepted")
    monkeypatch.setenv("AWS_PROFILE", "bad")
    path = put("obj", b"x")
    with pyfasts3.Client() as c:
        with pytest.raises(pyfasts3.AccessDenied):
            c.head(path)


def test_explicit_keys_override_profile(profiles, put):
    """Explicit keys win over a (wrong) profile; meaningful where signatures are checked."""
    path = put("obj", b"explicit keys")
    with pyfasts3.Client(profiles.endpoint_url, profile="bad", access_key_id=profiles.access_key_id,
                         secret_access_key=profiles.secret_access_key) as c:
        assert c.get(path).tobytes() == b"explicit keys"


def test_profile_endpoint_url_gets_automatic_path_style(profiles, monkeypatch, tmp_path, put):
    """endpoint_url from the shared config profile (as boto3 reads it) is a localhost
    endpoint too: automatic path-style must apply to it, not only to env/explicit endpoints."""
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    with open(tmp_path / "config", "a") as f:
        f.write(f"\n[profile local]\nregion = {profiles.region}\n"
                f"endpoint_url = {localhost(profiles.endpoint_url)}\n")
    with open(tmp_path / "credentials", "a") as f:
        f.write(f"\n[local]\naws_access_key_id = {profiles.access_key_id}\n"
                f"aws_secret_access_key = {profiles.secret_access_key}\n")
    path = put("obj", b"profile endpoint")
    with pyfasts3.Client(profile="local") as c:
        kind, value = within(60, lambda: c.get(path))
    assert kind == "ok", repr(value)
    assert value.tobytes() == b"profile endpoint"


def test_missing_credentials_is_config_error(profiles, put):
    """A profile that does not exist: credentials cannot be resolved -> ConfigError
    (errors.py: "Configuration, credentials or region could not be resolved")."""
    path = put("obj", b"x")
    with pyfasts3.Client(profiles.endpoint_url, profile="no-such-profile") as c:
        kind, err = within(60, lambda: c.get(path))
    assert kind == "error"
    assert isinstance(err, pyfasts3.ConfigError), repr(err)


def test_anonymous_on_private_bucket_is_access_denied(server, put):
    """Unsigned requests for a private object are refused (moto too, for object reads)."""
    path = put("obj", b"private")
    with make_anonymous(server) as c:
        with pytest.raises(pyfasts3.AccessDenied) as ei:
            c.get(path)
        assert ei.value.status == 403
        with pytest.raises(pyfasts3.AccessDenied):
            c.get_into(bytearray(7), path)
        with pytest.raises(pyfasts3.AccessDenied):
            c.head(path)
        with pytest.raises(pyfasts3.AccessDenied):
            c.get_many([path])
        if not server.verifies_signatures:
            pytest.skip(f"{server.name} lets anonymous requests list a private bucket")
        with pytest.raises(pyfasts3.AccessDenied):
            c.list_keys(path.split("/")[0])


def test_anonymous_reads_public_object(server, s3, bucket):
    if server.verifies_signatures:
        pytest.skip(f"{server.name} (posix backend, default config) ignores public-read ACLs")
    s3.put_object(Bucket=bucket, Key="pub", Body=b"public data", ACL="public-read")
    with make_anonymous(server) as c:
        assert c.get(f"{bucket}/pub").tobytes() == b"public data"


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-1.5, ValueError), ("5", TypeError), (True, TypeError)])
def test_invalid_timeouts_are_refused(server, bad, exc):
    for name in ("connect_timeout", "read_timeout"):
        with pytest.raises(exc):
            make_client(server, **{name: bad})


def test_timeouts_are_accepted(server, put):
    path = put("obj", b"abc")
    with make_client(server, connect_timeout=2.5, read_timeout=30) as c:
        assert c.get(path).tobytes() == b"abc"


# -- region and endpoint validation ---------------------------------------------------------


@pytest.mark.parametrize("region", ["us east 1", "us-east-1!", "-us-east-1", "us..east", "us.", "",
                                    "x" * 64, "us_east_1", "\u00fcs-east-1", "us-east-1\n", "us/east"])
def test_invalid_region_is_config_error_at_construction(region):
    """What the AWS endpoint rules accept as a region is a DNS name (host labels of letters,
    digits and '-', not starting with '-', 1-63 long, joined by dots). Anything else is a
    configuration error when the client is made, not a network error on first use."""
    with pytest.raises(pyfasts3.ConfigError) as ei:
        pyfasts3.Client("http://127.0.0.1:9", region=region, access_key_id="a", secret_access_key="b")
    assert ei.value.fasts3_status == 402
    assert "region" in str(ei.value) and repr(region) in str(ei.value).replace('"', "'"), str(ei.value)


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1", "us-gov-west-1", "cn-north-1", "local",
                                    "garage", "x" * 63, "a.b-c.d1", "1"])
def test_valid_regions_are_accepted(region):
    pyfasts3.Client("http://127.0.0.1:9", region=region, access_key_id="a", secret_access_key="b").close()


def test_invalid_region_from_environment_is_config_error(server_env, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "us east 1")
    with pytest.raises(pyfasts3.ConfigError, match="region"):
        pyfasts3.Client()


SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize("url", [
    f"http://user:{SECRET}@127.0.0.1:9",
    f"http://user:{SECRET}@127.0.0.1:9/",
    f"https://{SECRET}@example.com",
    f"http://user:{SECRET}@",
    f"http://us er:{SECRET}@127.0.0.1:9",
    f"ftp://user:{SECRET}@127.0.0.1",
    f"user:{SECRET}@127.0.0.1:9",
    f"http://user:{SECRET}@[::1",
])
def test_credentials_in_endpoint_url_are_refused_and_never_echoed(url):
    """userinfo in endpoint_url is refused (keys go in access_key_id/secret_access_key),
    and the secret appears nowhere in the exception."""
    with pytest.raises(pyfasts3.InvalidArgument) as ei:
        pyfasts3.Client(url, access_key_id="a", secret_access_key="b")
    e = ei.value
    for text in (str(e), repr(e), e.message, *map(str, e.args)):
        assert SECRET not in text, text
    assert "endpoint_url" in str(e)


def test_credentials_in_endpoint_from_environment_are_refused_and_never_echoed(server_env, monkeypatch):
    url = server_env.endpoint_url.replace("http://", f"http://user:{SECRET}@")
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    with pytest.raises(pyfasts3.S3Error) as ei:
        c = pyfasts3.Client()
        try:
            c.list_keys("bkt")
        finally:
            assert SECRET not in repr(c)
            c.close()
    assert isinstance(ei.value, (pyfasts3.ConfigError, pyfasts3.InvalidArgument))
    assert SECRET not in str(ei.value) and SECRET not in repr(ei.value)
    assert "credentials" in str(ei.value) or "user" in str(ei.value)


def test_requests_name_pyfasts3_and_its_version_in_user_agent(server, put, proxy):
    """Servers' logs should show who called: every request's User-Agent carries
    pyfasts3-<version> (the native library's version, which must match the package's)."""
    from faultproxy import proxied_client

    path = put("ua", b"x" * 100)
    with proxied_client(server, proxy) as c:
        c.get(path)
        c.head(path)
        c.list_keys(path.split("/")[0])
    agents = [r.headers.get("user-agent", "") for r in proxy.requests]
    assert len(agents) >= 3
    assert all(f"pyfasts3-{pyfasts3.__version__}" in ua for ua in agents), agents
