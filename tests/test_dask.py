"""Dask distributed: a pickled Client goes to worker processes, which read a prefix of
objects; every byte is checked against what was uploaded."""
from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from conftest import make_client

distributed = pytest.importorskip("distributed")


def _read(client, path: str):
    """Runs in a worker process: the Client arrived pickled."""
    data = client.get(path)
    return path, os.getpid(), len(data), hashlib.sha256(data).hexdigest()


def _read_through_fsspec(fs, path: str):
    data = fs.cat_file(path)
    return path, os.getpid(), len(data), hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True, host="127.0.0.1",
                                  dashboard_address=None, silence_logs=40) as cluster, \
            distributed.Client(cluster) as dask_client:
        dask_client.wait_for_workers(2, timeout=60)
        yield dask_client


def test_workers_read_prefix_with_pickled_client(cluster, server, put):
    expected = {}
    for i in range(40):
        data = np.random.default_rng(i).integers(0, 256, 1000 * i + 7, dtype=np.uint8).tobytes()
        expected[put(f"shards/{i:03d}.bin", data)] = hashlib.sha256(data).hexdigest()
    bucket = next(iter(expected)).split("/")[0]
    with make_client(server, part_size=64 * 1024) as client:
        paths = [f"{bucket}/{k}" for k in client.list_keys(f"{bucket}/shards/")]
        assert sorted(paths) == sorted(expected)
        remote = cluster.scatter(client, broadcast=True)
        # Pinned round-robin to the two worker processes, so both must read.
        worker_pids = cluster.run(os.getpid)  # worker address -> pid
        workers = sorted(worker_pids)
        futures = [cluster.submit(_read, remote, p, workers=[workers[i % len(workers)]], allow_other_workers=False)
                   for i, p in enumerate(paths)]
        results = cluster.gather(futures)
    pids = {pid for _, pid, _, _ in results}
    assert len(set(worker_pids.values())) == 2 and os.getpid() not in worker_pids.values()
    assert pids == set(worker_pids.values()), "each worker process read objects"
    for path, _, n, digest in results:
        assert digest == expected[path], path
    assert {p for p, _, _, _ in results} == set(expected)


def test_workers_read_through_fsspec(cluster, server, put):
    from pyfasts3.fsspec import FastS3FileSystem

    data = b"dask via fsspec " * 1000
    path = put("f/x.bin", data)
    fs = FastS3FileSystem(key=server.access_key_id, secret=server.secret_access_key,
                          endpoint_url=server.endpoint_url, client_kwargs={"region_name": server.region})
    results = cluster.gather(cluster.map(_read_through_fsspec, [fs] * 4, [path] * 4, pure=False))
    assert {r[3] for r in results} == {hashlib.sha256(data).hexdigest()}
    assert os.getpid() not in {r[1] for r in results}
