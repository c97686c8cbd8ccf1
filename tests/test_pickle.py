"""Pickling a Client (Dask, Ray, multiprocessing spawn): the other side rebuilds a Client
from the same constructor arguments; credentials travel only if they were given explicitly."""
from __future__ import annotations

import hashlib
import multiprocessing
import pickle

import numpy as np
import pytest

import pyfasts3
from conftest import make_client


def _data(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def test_round_trip_in_process_reads_same_bytes(server, put):
    data = _data(300_000, 1)
    path = put("obj", data)
    with make_client(server, part_size=64 * 1024, max_concurrency=4) as c:
        blob = pickle.dumps(c)
        with pickle.loads(blob) as clone:
            assert clone is not c
            assert clone.get(path).tobytes() == data
            assert clone._init_kwargs == c._init_kwargs
            assert clone._init_kwargs["part_size"] == 64 * 1024


def test_explicit_credentials_travel(server):
    with make_client(server) as c:
        blob = pickle.dumps(c)
    assert server.secret_access_key.encode() in blob
    assert pickle.loads(blob)._init_kwargs["secret_access_key"] == server.secret_access_key


def test_environment_credentials_do_not_travel(server_env, put, monkeypatch):
    """A client built from the environment pickles without keys; the receiving side uses
    its own environment (here: the same variables, still set)."""
    data = _data(1000, 2)
    path = put("obj", data)
    c = pyfasts3.Client()
    blob = pickle.dumps(c)
    for secret in (server_env.secret_access_key, server_env.access_key_id, server_env.endpoint_url):
        assert secret.encode() not in blob
    clone = pickle.loads(blob)
    assert clone.get(path).tobytes() == data
    # The receiving side really resolves from its own environment: without an endpoint and
    # keys there, the clone cannot reach the test server.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    with pickle.loads(blob) as elsewhere, pytest.raises(pyfasts3.S3Error):
        elsewhere.get(path)
    c.close()
    clone.close()


def test_closed_client_refuses_to_pickle(server):
    c = make_client(server)
    c.close()
    with pytest.raises(pickle.PicklingError, match="closed"):
        pickle.dumps(c)


def _child_read(blob: bytes, path: str):
    client = pickle.loads(blob)
    data = client.get(path).tobytes()
    return len(data), hashlib.sha256(data).hexdigest()


def test_spawn_child_reads_with_pickled_client(server, put):
    data = _data(700_000, 3)
    path = put("obj", data)
    with make_client(server, part_size=64 * 1024) as c:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1) as pool:
            # Pool.apply pickles the arguments: pass the Client itself, not only a blob.
            n, digest = pool.apply_async(_child_read_client, (c, path)).get(timeout=60)
            assert (n, digest) == (len(data), hashlib.sha256(data).hexdigest())
            n, digest = pool.apply_async(_child_read, (pickle.dumps(c), path)).get(timeout=60)
            assert (n, digest) == (len(data), hashlib.sha256(data).hexdigest())


def _child_read_client(client, path: str):
    data = client.get(path).tobytes()
    return len(data), hashlib.sha256(data).hexdigest()
