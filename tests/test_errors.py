"""The exception contract: missing keys and buckets, refused credentials, bad arguments and
malformed paths, each raising the right class with the right attributes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyfasts3
from conftest import make_client

PART = 64 * 1024


def _ops_on_object(client):
    """Every object operation, as (name, call(path))."""
    return {
        "get_into": lambda p: client.get_into(np.empty(100, np.uint8), p),
        "get_into-multipart-buf": lambda p: client.get_into(np.empty(3 * PART, np.uint8), p),
        "get_into-offset": lambda p: client.get_into(bytearray(10), p, offset=5),
        "get_into-empty-buf": lambda p: client.get_into(bytearray(), p),
        "get": lambda p: client.get(p),
        "get-range": lambda p: client.get(p, offset=10, length=10),
        "get-length0": lambda p: client.get(p, length=0),
        "get_many": lambda p: client.get_many([p]),
        "head": lambda p: client.head(p),
    }


OBJECT_OPS = list(_ops_on_object(None))


# -- missing key / bucket ------------------------------------------------------------------


@pytest.mark.parametrize("op", OBJECT_OPS)
def test_missing_key(client, put, bucket, op):
    put("present", b"x")  # the bucket is not empty: only the key is missing
    with pytest.raises(pyfasts3.NoSuchKey) as ei:
        _ops_on_object(client)[op](f"{bucket}/dir/missing.bin")
    e = ei.value
    assert isinstance(e, FileNotFoundError)
    assert isinstance(e, pyfasts3.S3Error)
    assert isinstance(e, OSError)
    assert e.code == "NoSuchKey"
    assert e.status == 404
    assert e.bucket == bucket
    assert e.key == "dir/missing.bin"
    assert "dir/missing.bin" in str(e)
    assert e.message


def test_missing_key_in_s3_scheme_path(client, bucket):
    with pytest.raises(pyfasts3.NoSuchKey) as ei:
        client.get(f"s3://{bucket}/nope")
    assert (ei.value.bucket, ei.value.key) == (bucket, "nope")


def test_no_such_key_is_catchable_as_file_not_found(client, bucket):
    try:
        client.get(f"{bucket}/nope")
    except FileNotFoundError as e:
        assert isinstance(e, pyfasts3.NoSuchKey)
    else:
        pytest.fail("no exception")


@pytest.mark.parametrize("op", OBJECT_OPS)
def test_missing_bucket_object_ops(client, bucket, op):
    missing = f"{bucket}-missing"
    with pytest.raises(pyfasts3.NoSuchBucket) as ei:
        _ops_on_object(client)[op](f"{missing}/key")
    e = ei.value
    assert isinstance(e, FileNotFoundError) and isinstance(e, pyfasts3.S3Error)
    assert not isinstance(e, pyfasts3.NoSuchKey)
    assert e.code == "NoSuchBucket"
    assert e.status == 404
    assert e.bucket == missing
    assert missing in str(e)


@pytest.mark.parametrize("delimiter", [None, "/"])
def test_missing_bucket_list_keys(client, bucket, delimiter):
    missing = f"{bucket}-missing"
    with pytest.raises(pyfasts3.NoSuchBucket) as ei:
        client.list_keys(f"{missing}/prefix", delimiter=delimiter)
    e = ei.value
    assert isinstance(e, FileNotFoundError)
    assert e.code == "NoSuchBucket" and e.status == 404
    assert e.bucket == missing
    assert missing in str(e)


def test_missing_bucket_list_objects(client, bucket):
    with pytest.raises(pyfasts3.NoSuchBucket) as ei:
        list(client.list_objects(f"s3://{bucket}-missing"))
    assert ei.value.bucket == f"{bucket}-missing"


def test_failed_get_into_raises_and_returns_nothing(client, bucket):
    """A failure is an exception, never a short count (which would look like EOF)."""
    buf = np.full(10, 0xAB, np.uint8)
    result = "not called"
    with pytest.raises(pyfasts3.NoSuchKey):
        result = client.get_into(buf, f"{bucket}/missing")
    assert result == "not called"


# A failed get_into followed by garbage collection, in a fresh interpreter (a crash must fail
# the test, not kill the run). This crashed CPython until 5f94dac; see also
# test_regressions.py, which covers the crash alone. Each variant is
# ordinary user code after which the failed call's frame is unreachable but sits in a
# reference cycle (the library's own Future/traceback cycle for "except-pass", the caller's
# local list for the others). The caller's buffer must be released (resizable) once the
# error is gone, and collecting the garbage must neither crash the interpreter nor report
# "Exception ignored in tp_clear of memoryview".
GC_AFTER_FAILED_GET_INTO = {
    "except-pass": """
try:
    client.get_into(buf, path)
except pyfasts3.NoSuchKey:
    pass
""",
    "error-kept-in-local-list": """
def attempt():
    errors = []
    try:
        client.get_into(buf, path)
    except pyfasts3.NoSuchKey as e:
        errors.append(e)
    return len(errors)
assert attempt() == 1
""",
    "worker-thread": """
import threading
done = []
def attempt():
    errors = []
    try:
        client.get_into(buf, path)
    except pyfasts3.NoSuchKey as e:
        errors.append(e)
    done.append(len(errors))
t = threading.Thread(target=attempt)
t.start(); t.join()
assert done == [1]
""",
    "closed-client": """
closed = pyfasts3.Client()
closed.close()
def attempt():
    errors = []
    try:
        closed.get_into(buf, path)
    except ValueError as e:
        errors.append(e)
    return len(errors)
assert attempt() == 1
""",
}

_GC_SCRIPT_HEAD = """
import gc, sys
import pyfasts3
client = pyfasts3.Client()
path = sys.argv[1]
buf = bytearray(100)
"""

_GC_SCRIPT_TAIL = """
locked = False
try:
    buf.extend(b"!")  # BufferError while an export of buf is still alive
except BufferError:
    locked = True
print("buffer still exported after the failed call:", locked, flush=True)
for _ in range(3):
    gc.collect()
print("survived gc", flush=True)
sys.exit(1 if locked else 0)
"""


@pytest.mark.parametrize("variant", GC_AFTER_FAILED_GET_INTO)
def test_failed_get_into_then_gc_does_not_crash(server_env, bucket, variant):
    """A failed get_into must release the caller's buffer; collecting the garbage it leaves
    must not crash the interpreter (runs in a subprocess so a crash cannot kill pytest)."""
    code = _GC_SCRIPT_HEAD + GC_AFTER_FAILED_GET_INTO[variant] + _GC_SCRIPT_TAIL
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(pyfasts3.__file__).resolve().parent.parent),
                                         env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-X", "faulthandler", "-c", code, f"{bucket}/missing"],
                          env=env, capture_output=True, text=True, timeout=120)
    detail = f"exit status {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-3000:]}"
    assert "survived gc" in proc.stdout, detail
    assert "Exception ignored" not in proc.stderr, detail
    assert proc.returncode == 0, detail


# -- credentials ---------------------------------------------------------------------------


def _require_signature_checks(server):
    if not server.verifies_signatures:
        pytest.skip(f"{server.name} does not verify request signatures: any credentials are accepted")


WRONG_CREDENTIAL_OPS = {
    "get_into": lambda c, p: c.get_into(np.empty(10, np.uint8), p),
    "get_into-empty-buf": lambda c, p: c.get_into(bytearray(), p),
    "get": lambda c, p: c.get(p),
    "get_many": lambda c, p: c.get_many([p, p]),
    "head": lambda c, p: c.head(p),
    "list_keys": lambda c, p: c.list_keys(p.split("/")[0]),
    "list_objects": lambda c, p: list(c.list_objects(p.split("/")[0])),
}


@pytest.mark.parametrize("op", WRONG_CREDENTIAL_OPS)
def test_wrong_secret_key_is_access_denied(server, put, op):
    _require_signature_checks(server)
    path = put("obj", b"secret data")
    c = pyfasts3.Client(server.endpoint_url, region=server.region, ca_bundle=server.ca_bundle,
                        access_key_id=server.access_key_id, secret_access_key="wrong-secret")
    with c:
        with pytest.raises(pyfasts3.AccessDenied) as ei:
            WRONG_CREDENTIAL_OPS[op](c, path)
    e = ei.value
    assert isinstance(e, PermissionError) and isinstance(e, pyfasts3.S3Error)
    assert e.status == 403
    if not op.startswith(("head", "get_into-empty")):  # HEAD responses carry no error body
        assert e.code  # SignatureDoesNotMatch, AccessDenied...


def test_unknown_access_key_is_refused(server, put):
    """AWS answers 403 InvalidAccessKeyId. versitygw v1.7.0 answers 404 XAdminUserNotFound,
    which the library maps to NoSuchKey, so only "refused with an S3Error" is portable."""
    _require_signature_checks(server)
    path = put("obj", b"secret data")
    with pyfasts3.Client(server.endpoint_url, region=server.region, ca_bundle=server.ca_bundle,
                         access_key_id="NOSUCHKEYID", secret_access_key="whatever") as c:
        with pytest.raises(pyfasts3.S3Error) as ei:
            c.get(path)
    assert ei.value.status in (403, 404)


def test_wrong_secret_missing_key_is_access_denied_not_no_such_key(server, bucket):
    """Without valid credentials the server must not reveal whether the key exists."""
    _require_signature_checks(server)
    with pyfasts3.Client(server.endpoint_url, region=server.region, ca_bundle=server.ca_bundle,
                         access_key_id=server.access_key_id, secret_access_key="wrong") as c:
        with pytest.raises(pyfasts3.AccessDenied):
            c.head(f"{bucket}/missing")


# -- invalid arguments ---------------------------------------------------------------------
# Paths name a bucket that does not exist: ValueError/TypeError (not NoSuchBucket) shows the
# argument was refused before any request.


@pytest.fixture
def nowhere(bucket):
    return f"{bucket}-missing/key"


@pytest.mark.parametrize("call", [
    lambda c, p: c.get_into(bytearray(10), p, offset=-1),
    lambda c, p: c.get_into(bytearray(0), p, offset=-1),
    lambda c, p: c.get_into(bytearray(10), p, offset=2**63),
    lambda c, p: c.get(p, offset=-1),
    lambda c, p: c.get(p, length=-1),
    lambda c, p: c.get(p, offset=-5, length=10),
    lambda c, p: c.get(p, length=2**64),
    lambda c, p: pyfasts3.get_into(bytearray(10), p, offset=-1),
    lambda c, p: pyfasts3.get(p, length=-1),
], ids=["get_into-offset-1", "get_into-empty-offset-1", "get_into-offset-2**63", "get-offset-1",
        "get-length-1", "get-offset-5", "get-length-2**64", "module-get_into", "module-get"])
def test_negative_or_huge_offset_length_is_value_error(client, server_env, nowhere, call):
    with pytest.raises(ValueError) as ei:
        call(client, nowhere)
    assert not isinstance(ei.value, pyfasts3.NoSuchBucket)


@pytest.mark.parametrize("call", [
    lambda c, p: c.get_into(bytearray(10), p, offset=1.5),
    lambda c, p: c.get_into(bytearray(10), p, offset="0"),
    lambda c, p: c.get_into(bytearray(10), p, offset=None),
    lambda c, p: c.get(p, offset=True),
    lambda c, p: c.get(p, length=2.0),
    lambda c, p: c.get(p, length="10"),
], ids=["float-offset", "str-offset", "none-offset", "bool-offset", "float-length", "str-length"])
def test_non_int_offset_length_is_type_error(client, nowhere, call):
    with pytest.raises(TypeError):
        call(client, nowhere)


def test_numpy_integer_offset_and_length_accepted(client, put):
    path = put("obj", b"0123456789")
    assert client.get(path, offset=np.int64(2), length=np.uint32(3)).tobytes() == b"234"
    buf = bytearray(2)
    assert client.get_into(buf, path, offset=np.int32(8)) == 2 and buf == b"89"


@pytest.mark.parametrize("page_size", [0, 1001, -1, 10**6, True, 2.5, "10"])
def test_bad_page_size_is_value_error(client, bucket, page_size):
    with pytest.raises(ValueError) as ei:
        list(client.list_objects(f"{bucket}-missing", page_size=page_size))
    assert not isinstance(ei.value, pyfasts3.NoSuchBucket)


@pytest.mark.parametrize("delimiter", ["", "\0", 5, b"/"])
def test_bad_delimiter_is_value_error(client, bucket, delimiter):
    missing = f"{bucket}-missing"
    with pytest.raises(ValueError):
        client.list_keys(missing, delimiter=delimiter)
    with pytest.raises(ValueError):
        list(client.list_objects(missing, delimiter=delimiter))


def test_page_size_boundaries_accepted(client, put, bucket):
    put("a", b"1")
    put("b", b"2")
    assert [o.key for o in client.list_objects(bucket, page_size=1)] == ["a", "b"]
    assert [o.key for o in client.list_objects(bucket, page_size=1000)] == ["a", "b"]


# -- paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["bucket", "", "/key", "s3://", "s3://bucket", "bucket/", "s3:///key",
                                  "s3://bucket/", "/"])
@pytest.mark.parametrize("op", ["get_into", "get", "head", "get_many"])
def test_malformed_object_path_is_value_error(client, op, path):
    calls = {
        "get_into": lambda: client.get_into(bytearray(4), path),
        "get": lambda: client.get(path),
        "head": lambda: client.head(path),
        "get_many": lambda: client.get_many([path]),
    }
    with pytest.raises(ValueError) as ei:
        calls[op]()
    assert not isinstance(ei.value, pyfasts3.S3Error) or isinstance(ei.value, pyfasts3.InvalidArgument)


@pytest.mark.parametrize("path", ["", "/prefix", "s3://", "s3:///prefix", "/"])
def test_malformed_list_path_is_value_error(client, path):
    with pytest.raises(ValueError):
        client.list_keys(path)
    with pytest.raises(ValueError):
        list(client.list_objects(path))


@pytest.mark.parametrize("path", [b"bucket/key", None, 42, ["bucket/key"]], ids=["bytes", "none", "int", "list"])
def test_non_str_path_is_type_error(client, path):
    with pytest.raises(TypeError):
        client.get(path)
    with pytest.raises(TypeError):
        client.get_into(bytearray(4), path)
    with pytest.raises(TypeError):
        client.head(path)
    with pytest.raises(TypeError):
        client.list_keys(path)
    with pytest.raises(TypeError):
        list(client.list_objects(path))


def test_non_str_path_in_get_many_is_type_error(client, put):
    with pytest.raises(TypeError):
        client.get_many([put("a", b"a"), b"bucket/key"])


def test_key_longer_than_1024_bytes_is_value_error(client, bucket):
    with pytest.raises(ValueError):
        client.get(f"{bucket}-missing/" + "k" * 1025)


def test_both_path_forms_read_the_same_object(client, put, bucket):
    data = bytes(range(256)) * 300
    put("x/y", data)
    assert client.get(f"{bucket}/x/y").tobytes() == data
    assert client.get(f"s3://{bucket}/x/y").tobytes() == data
    assert client.head(f"s3://{bucket}/x/y").size == len(data)


# -- exception classes ---------------------------------------------------------------------


def test_exception_hierarchy():
    assert issubclass(pyfasts3.NoSuchKey, FileNotFoundError)
    assert issubclass(pyfasts3.NoSuchBucket, FileNotFoundError)
    assert issubclass(pyfasts3.AccessDenied, PermissionError)
    assert issubclass(pyfasts3.InvalidArgument, ValueError)
    assert issubclass(pyfasts3.InvalidHandle, pyfasts3.InvalidArgument)
    assert issubclass(pyfasts3.NetworkError, ConnectionError)
    assert issubclass(pyfasts3.Timeout, TimeoutError)
    assert issubclass(pyfasts3.TlsError, ConnectionError)
    assert not issubclass(pyfasts3.TlsError, pyfasts3.NetworkError)
    for name in ["TlsError", "NoSuchKey", "NoSuchBucket", "AccessDenied", "ObjectChanged", "Cancelled",
                 "InvalidArgument", "InvalidRange", "Throttled", "NetworkError", "Timeout",
                 "ConfigError", "ProtocolError", "InternalError", "LibraryOutOfMemory", "InvalidHandle"]:
        assert issubclass(getattr(pyfasts3, name), pyfasts3.S3Error), name


def test_freed_native_handle_raises_invalid_handle():
    """A freed handle handed to libfasts3 (a bug in whatever holds it) is refused with
    InvalidHandle naming its type, instead of being written through."""
    from pyfasts3._lowlevel import ffi, lib, rustcall

    out = ffi.new("fasts3_config **")
    rustcall(lib.fasts3_config_new, out, ffi.NULL)
    lib.fasts3_config_free(out[0])
    with pytest.raises(pyfasts3.InvalidHandle, match="config is not a live fasts3_config") as info:
        rustcall(lib.fasts3_config_set, out[0], b"region", b"us-east-1", ffi.NULL)
    assert info.value.fasts3_status == 103
    assert isinstance(info.value, ValueError)


def test_errors_from_one_client_do_not_leak_into_the_next_call(client, put, bucket):
    """After a failure, a successful call on the same client is unaffected."""
    path = put("ok", b"fine")
    with pytest.raises(pyfasts3.NoSuchKey):
        client.get(f"{bucket}/missing")
    assert client.get(path).tobytes() == b"fine"
    with pytest.raises(pyfasts3.NoSuchBucket):
        client.head(f"{bucket}-missing/x")
    assert client.head(path).size == 4


def test_separate_client_sees_the_same_errors(server, bucket):
    with make_client(server) as c:
        with pytest.raises(pyfasts3.NoSuchKey):
            c.get(f"{bucket}/missing")


# -- TLS: a certificate the client does not trust -------------------------------------------

import datetime as _dt
import socket
import ssl
import threading


def _write_pki(tmp: Path):
    """A private CA and a leaf certificate for 127.0.0.1 signed by it (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = _dt.datetime.now(_dt.timezone.utc)

    def make(subject, issuer, key, signer, ca):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - _dt.timedelta(hours=1)).not_valid_after(now + _dt.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pyfasts3 test CA")])
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    ca = make(ca_name, ca_name, ca_key, ca_key, True)
    leaf = make(leaf_name, ca_name, leaf_key, ca_key, False)
    pem = serialization.Encoding.PEM
    (tmp / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (tmp / "leaf.key").write_bytes(leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return tmp / "ca.pem"


class _TlsServer:
    """HTTPS on 127.0.0.1 with a certificate from a private CA. Counts connections; a request
    that gets through the handshake is answered 404 with no body."""

    def __init__(self, tmp: Path):
        self.ca = _write_pki(tmp)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(tmp / "leaf.pem", tmp / "leaf.key")
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    tls.settimeout(5)
                    while tls.recv(65536):
                        tls.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            except (OSError, ssl.SSLError):
                conn.close()

    def close(self):
        self.sock.close()


@pytest.fixture
def tls_server(tmp_path):
    server = _TlsServer(tmp_path)
    yield server
    server.close()


def test_untrusted_certificate_is_tls_error_not_retried(tls_server):
    """A certificate the client does not trust raises TlsError (status 404), not a generic
    NetworkError; the message names the host and the verification failure and says how to
    pass a CA (ca_bundle=); the handshake is not retried (one connection per call)."""
    host = f"127.0.0.1:{tls_server.port}"
    with pyfasts3.Client(f"https://{host}", region="us-east-1", access_key_id="a",
                         secret_access_key="b") as c:
        for call in (lambda: c.head("bkt/key"), lambda: c.get("bkt/key"), lambda: c.list_keys("bkt")):
            before = tls_server.connections
            with pytest.raises(pyfasts3.TlsError) as ei:
                call()
            e = ei.value
            assert e.fasts3_status == 404 and isinstance(e, pyfasts3.S3Error) and isinstance(e, ConnectionError)
            assert not isinstance(e, pyfasts3.NetworkError)
            text = str(e)
            assert host in text and "UnknownIssuer" in text and "ca_bundle=" in text, text
            assert tls_server.connections - before == 1, "a failed certificate check must not be retried"


def test_ssl_cert_file_trusts_a_private_ca(tls_server):
    """SSL_CERT_FILE (read by rustls-native-certs in place of the system store) still works:
    with it naming the CA, the handshake succeeds and the server's own answer (404) comes
    through. The remedy the message gives, ca_bundle=, is tested in test_tls.py."""
    code = ("import pyfasts3, sys\n"
            f"c = pyfasts3.Client('https://127.0.0.1:{tls_server.port}', region='us-east-1',"
            " access_key_id='a', secret_access_key='b')\n"
            "try:\n    c.head('bkt/key')\nexcept pyfasts3.S3Error as e:\n    print(type(e).__name__, e)\n")
    env = dict(os.environ, SSL_CERT_FILE=str(tls_server.ca), PYTHONPATH=str(Path(__file__).parent.parent))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] in ("NoSuchKey", "NoSuchBucket"), out.stdout
