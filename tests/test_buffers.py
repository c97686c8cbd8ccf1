"""get_into with every kind of destination buffer: bytes land byte-exact, counts are in bytes,
and unusable buffers are refused before any request is sent."""
from __future__ import annotations

import array
import ctypes
import mmap

import numpy as np
import pytest

import pyfasts3

PART = 64 * 1024
SENTINEL = 0xAB


def payload(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.fixture
def big(put):
    """(path, data): a 5-part object, larger than every buffer below."""
    data = payload(5 * PART + 123, seed=42)
    return put("big", data), data


# -- numpy arrays --------------------------------------------------------------------------

DTYPES = [np.uint8, np.int8, np.int16, np.uint32, np.int64, np.float16, np.float32,
          np.float64, np.complex64, np.complex128, np.bool_]
# "multi-part" is a 1-D array of about 3 parts' worth of bytes, whatever the item size.
SHAPES = [(1000,), (100, 30), (7, 11, 13), "multi-part", (1,)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s if isinstance(s, str) else "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("offset", [0, PART - 3], ids=["off0", "off-unaligned"])
def test_numpy_dtype_and_shape(client, big, dtype, shape, offset):
    path, data = big
    if shape == "multi-part":
        shape = ((3 * PART + 5) // np.dtype(dtype).itemsize,)
    arr = np.empty(shape, dtype=dtype)
    assert arr.nbytes + offset <= len(data)
    n = client.get_into(arr, path, offset=offset)
    assert n == arr.nbytes  # bytes, not elements
    assert arr.view(np.uint8).tobytes() == data[offset:offset + arr.nbytes]
    assert arr.shape == shape and arr.dtype == dtype


@pytest.mark.parametrize("dtype", [np.int16, np.float32, np.float64, np.complex64], ids=lambda d: np.dtype(d).name)
def test_numpy_object_ends_mid_element(client, put, dtype):
    """A 1001-byte object into a wider-dtype array: the count is in bytes, the partial last
    element holds the object's last bytes and the rest keeps its old contents."""
    data = payload(1001, seed=1)
    path = put("odd", data)
    arr = np.empty((40, 50), dtype=dtype)
    arr.view(np.uint8)[...] = SENTINEL
    assert client.get_into(arr, path) == 1001
    raw = arr.view(np.uint8).reshape(-1)
    assert raw[:1001].tobytes() == data
    assert (raw[1001:] == SENTINEL).all()


def test_numpy_float64_values(client, put):
    """The object's bytes reinterpreted as the array's dtype: real values round-trip."""
    values = np.linspace(-1e6, 1e6, 3 * PART // 8 + 17).astype("<f8")
    path = put("floats", values.tobytes())
    out = np.empty_like(values)
    assert client.get_into(out, path) == values.nbytes
    np.testing.assert_array_equal(out, values)


def test_numpy_big_endian_dtype(client, put):
    values = np.arange(5000, dtype=">i4")
    path = put("be", values.tobytes())
    out = np.zeros(5000, dtype=">i4")
    assert client.get_into(out, path) == values.nbytes
    np.testing.assert_array_equal(out, values)


def test_numpy_structured_dtype(client, put):
    dt = np.dtype([("a", "<i4"), ("b", "<f8"), ("c", "S3")])
    rec = np.zeros(2000, dtype=dt)
    rec["a"] = np.arange(2000)
    rec["b"] = np.arange(2000) * 0.5
    rec["c"] = b"xyz"
    path = put("rec", rec.tobytes())
    out = np.empty(2000, dtype=dt)
    assert client.get_into(out, path) == rec.nbytes
    assert out.tobytes() == rec.tobytes()


def test_numpy_zero_dim_array(client, put):
    path = put("eight", b"ABCDEFGH")
    out = np.zeros((), dtype=np.float64)
    assert client.get_into(out, path) == 8
    assert out.tobytes() == b"ABCDEFGH"


def test_numpy_contiguous_slice_writes_in_place(client, big):
    """A contiguous view (base[10:510]) is filled in place; the rest of the base is untouched."""
    path, data = big
    base = np.full(1000, SENTINEL, dtype=np.uint8)
    assert client.get_into(base[10:510], path, offset=PART) == 500
    assert base[10:510].tobytes() == data[PART:PART + 500]
    assert (base[:10] == SENTINEL).all() and (base[510:] == SENTINEL).all()


def test_numpy_row_block_of_2d_array(client, big):
    """Rows 2..5 of a C-order 2-D array are one contiguous block."""
    path, data = big
    base = np.full((8, PART // 4), SENTINEL, dtype=np.uint8)
    block = base[2:5]
    assert block.flags.c_contiguous
    assert client.get_into(block, path) == block.nbytes
    assert block.tobytes() == data[:block.nbytes]
    assert (base[:2] == SENTINEL).all() and (base[5:] == SENTINEL).all()


def test_numpy_column_vector_view_is_contiguous(client, put):
    """arr[:, None] and a one-column Fortran array are contiguous too: accepted."""
    path = put("obj", bytes(range(100)))
    col = np.zeros(100, np.uint8)[:, None]
    assert client.get_into(col, path) == 100
    assert col.tobytes() == bytes(range(100))


def test_numpy_memmap(client, big, tmp_path):
    path, data = big
    mm = np.memmap(tmp_path / "out.bin", dtype=np.uint8, mode="w+", shape=(3 * PART,))
    assert client.get_into(mm, path, offset=7) == 3 * PART
    mm.flush()
    assert (tmp_path / "out.bin").read_bytes() == data[7:7 + 3 * PART]
    del mm


def test_numpy_zero_size_2d_array_returns_zero(client, put):
    """np.empty((0, 4)) is a valid (empty) writable C-contiguous buffer: 0 bytes to read."""
    path = put("obj", b"0123456789")
    assert client.get_into(np.empty((0, 4), np.float64), path) == 0


# -- other buffer types --------------------------------------------------------------------


def test_bytearray(client, big):
    path, data = big
    buf = bytearray(2 * PART + 9)
    assert client.get_into(buf, path, offset=11) == len(buf)
    assert bytes(buf) == data[11:11 + len(buf)]


def test_bytearray_larger_than_object(client, put):
    path = put("small", b"hello")
    buf = bytearray(b"\xab" * 64)
    assert client.get_into(buf, path) == 5
    assert bytes(buf) == b"hello" + b"\xab" * 59


def test_bytearray_can_be_resized_afterwards(client, big):
    """get_into releases its buffer export: the bytearray is resizable again."""
    path, data = big
    buf = bytearray(1000)
    client.get_into(buf, path)
    buf.extend(b"tail")  # BufferError if a view were still exported
    assert bytes(buf) == data[:1000] + b"tail"


def test_memoryview_of_bytearray(client, big):
    path, data = big
    backing = bytearray(PART + 100)
    assert client.get_into(memoryview(backing), path, offset=PART - 50) == len(backing)
    assert bytes(backing) == data[PART - 50:2 * PART + 50]


def test_memoryview_slice_writes_into_backing_store(client, big):
    path, data = big
    backing = bytearray(b"\xab" * 3000)
    mv = memoryview(backing)[1000:2000]
    assert client.get_into(mv, path) == 1000
    assert bytes(backing) == b"\xab" * 1000 + data[:1000] + b"\xab" * 1000


def test_memoryview_with_wide_format(client, big):
    """A memoryview cast to 32-bit ints: count in bytes, data byte-exact."""
    path, data = big
    backing = bytearray(4 * 1000)
    mv = memoryview(backing).cast("I")
    assert client.get_into(mv, path) == 4000
    assert bytes(backing) == data[:4000]


def test_memoryview_of_numpy_array(client, big):
    path, data = big
    arr = np.zeros((50, 20), dtype=np.float32)
    assert client.get_into(memoryview(arr), path) == arr.nbytes
    assert arr.tobytes() == data[:arr.nbytes]


def test_anonymous_mmap(client, big):
    path, data = big
    mm = mmap.mmap(-1, 2 * PART + 1)
    assert client.get_into(mm, path, offset=3) == 2 * PART + 1
    assert mm[:] == data[3:3 + 2 * PART + 1]
    mm.close()  # BufferError if get_into still held an export


def test_anonymous_mmap_larger_than_object(client, put):
    path = put("small", b"abc")
    mm = mmap.mmap(-1, mmap.PAGESIZE)
    mm.write(b"\xab" * mmap.PAGESIZE)
    assert client.get_into(mm, path) == 3
    assert mm[:3] == b"abc" and mm[3:] == b"\xab" * (mmap.PAGESIZE - 3)
    mm.close()


def test_array_module_array(client, big):
    path, data = big
    arr = array.array("d", [0.0]) * 1000
    assert client.get_into(arr, path) == 8000
    assert arr.tobytes() == data[:8000]


def test_ctypes_array(client, big):
    path, data = big
    buf = (ctypes.c_char * 777)()
    assert client.get_into(buf, path, offset=PART) == 777
    assert bytes(buf) == data[PART:PART + 777]


# -- refused buffers -----------------------------------------------------------------------
# The path names a key that does not exist: a TypeError/ValueError (not NoSuchKey) proves the
# buffer was refused while checking arguments, before any request.


def _readonly_array():
    a = np.zeros(10, np.uint8)
    a.flags.writeable = False
    return a


READONLY = {
    "bytes": lambda: b"\0" * 10,
    "empty-bytes": lambda: b"",
    "numpy-readonly": _readonly_array,
    "numpy-frombuffer-bytes": lambda: np.frombuffer(b"\0" * 16, np.uint8),
    "memoryview-of-bytes": lambda: memoryview(b"\0" * 10),
    "memoryview-toreadonly": lambda: memoryview(bytearray(10)).toreadonly(),
    "readonly-mmap": lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_READ),
}


@pytest.mark.parametrize("make", READONLY.values(), ids=READONLY.keys())
def test_readonly_buffer_is_type_error(client, bucket, make):
    buf = make()
    with pytest.raises(TypeError) as ei:
        client.get_into(buf, f"{bucket}/missing")
    assert not isinstance(ei.value, pyfasts3.S3Error)
    assert "read-only" in str(ei.value)


NON_CONTIGUOUS = {
    "strided-1d": lambda: np.zeros(20, np.uint8)[::2],
    "reversed": lambda: np.zeros(20, np.uint8)[::-1],
    "transposed-2d": lambda: np.zeros((4, 6), np.float64).T,
    "fortran-order": lambda: np.asfortranarray(np.zeros((4, 6), np.int16)),
    "column-of-2d": lambda: np.zeros((5, 5), np.float32)[:, 1],
    "memoryview-strided": lambda: memoryview(bytearray(20))[::2],
}


@pytest.mark.parametrize("make", NON_CONTIGUOUS.values(), ids=NON_CONTIGUOUS.keys())
def test_non_contiguous_buffer_is_value_error(client, bucket, make):
    with pytest.raises(ValueError) as ei:
        client.get_into(make(), f"{bucket}/missing")
    assert not isinstance(ei.value, pyfasts3.S3Error)
    assert "contiguous" in str(ei.value)


NOT_BUFFERS = {
    "list": lambda: [0] * 10,
    "none": lambda: None,
    "str": lambda: "0123456789",
    "int": lambda: 10,
    "dict": lambda: {},
}


@pytest.mark.parametrize("make", NOT_BUFFERS.values(), ids=NOT_BUFFERS.keys())
def test_non_buffer_is_type_error(client, bucket, make):
    with pytest.raises(TypeError) as ei:
        client.get_into(make(), f"{bucket}/missing")
    assert not isinstance(ei.value, pyfasts3.S3Error)
    assert "writable buffer" in str(ei.value)


def test_refusal_leaves_buffer_untouched(client, big):
    """A refused (non-contiguous) buffer on an existing object: nothing is written."""
    path, _ = big
    base = np.full(20, SENTINEL, np.uint8)
    with pytest.raises(ValueError):
        client.get_into(base[::2], path)
    assert (base == SENTINEL).all()


# -- buffer exports are released -----------------------------------------------------------


def test_failed_get_into_releases_bytearray(client, bucket):
    """After get_into raised, the caller's bytearray is no longer exported: it can be resized."""
    buf = bytearray(100)
    with pytest.raises(pyfasts3.NoSuchKey):
        client.get_into(buf, f"{bucket}/missing")
    buf.extend(b"!")  # BufferError if an export were still alive
    assert len(buf) == 101


def test_failed_get_into_releases_mmap(client, bucket):
    mm = mmap.mmap(-1, 4096)
    with pytest.raises(pyfasts3.NoSuchKey):
        client.get_into(mm, f"{bucket}/missing")
    mm.close()  # BufferError if an export were still alive

