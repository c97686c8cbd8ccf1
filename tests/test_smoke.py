import numpy as np


def test_roundtrip_multi_part(client, put):
    data = np.random.default_rng(1).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    path = put("obj", data)
    buf = np.empty(len(data), np.uint8)
    assert client.get_into(buf, path) == len(data)
    assert buf.tobytes() == data
