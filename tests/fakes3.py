"""A programmable fake S3 server for integrity tests (stdlib only: threads + raw sockets).

    with FakeS3() as fake:
        fake.put("bucket/key", data)
        fake.behave(ignore_range=True, chunked=True)            # every request
        fake.behave_when(gets(2, 3), length_delta=+1000)         # only the 2nd and 3rd GET
        client = pyfasts3.Client(fake.url, region="us-east-1", access_key_id="k",
                                 secret_access_key="s")

It listens on 127.0.0.1 (port 0), speaks HTTP/1.1 with keep-alive (several requests per
connection) and serves GET and HEAD of objects held in memory, path-style (/bucket/key,
URL-decoded), with Range (bytes=a-b, bytes=a-, bytes=-n), If-Match (412 PreconditionFailed),
ETag, Last-Modified and Content-Range, and DeleteObjects (POST /bucket?delete). Signatures
are ignored. Every request is recorded in `requests` (number, GET number, method, target,
headers, body, connection id).

Why not http.server: the faults below are about framing (lengths that lie, chunked bodies
without their terminator, garbage between responses), which needs byte-level control.

What a response looks like is decided by a `Behaviour` (one dataclass of switches, all off
by default): the base behaviour set with behave(), overlaid by the switches of every rule
added with behave_when(predicate, ...) whose predicate matches the request (predicates:
gets(), first_requests(), on_connection(), or any callable on a `Request`). build_response()
turns (request, object, behaviour) into a `Response`; send_response() puts it on the wire
with the framing faults.

Objects have versions: the `new_version_after_gets` switch replaces an object by a new
version (different bytes, same size, new ETag and Last-Modified) once it served that many
GETs; fake.versions(path) lists every version's bytes, so tests can check that a result is
entirely one version.
"""
from __future__ import annotations

import base64
import dataclasses
import email.utils
import hashlib
import re
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlsplit
from xml.etree import ElementTree
from xml.sax.saxutils import escape

CHUNK = 16 * 1024  # the size of the chunks of a chunked body
_HEAD_LIMIT = 64 * 1024


# -- checksums, as S3 sends them: base64 of the big-endian digest ---------------------------


def _crc32c_table() -> List[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), reflected, as S3's x-amz-checksum-crc32c (no stdlib route; a
    table loop, fine for the small objects of the tests)."""
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def checksum_value(algorithm: str, data: bytes) -> str:
    """The x-amz-checksum-<algorithm> header value of `data`."""
    key = (algorithm, len(data), hashlib.md5(data).digest())
    value = _CHECKSUMS.get(key)
    if value is None:
        value = _CHECKSUMS[key] = _checksum_value(algorithm, data)
    return value


_CHECKSUMS: Dict[Tuple[str, int, bytes], str] = {}  # the crc32c loop is slow on a MiB: computed once


def _checksum_value(algorithm: str, data: bytes) -> str:
    if algorithm == "crc32":
        digest = (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")
    elif algorithm == "crc32c":
        digest = crc32c(data).to_bytes(4, "big")
    elif algorithm == "sha256":
        digest = hashlib.sha256(data).digest()
    else:
        raise ValueError(f"unknown checksum algorithm {algorithm!r}")
    return base64.b64encode(digest).decode()


# -- requests, objects, behaviours ----------------------------------------------------------


@dataclass
class Request:
    """One request as the fake saw it (header names lower-cased)."""

    number: int  # 1-based, over every request the fake received
    get_number: int  # 1-based over GETs (0 for other methods)
    conn: int  # 1-based connection id
    index_on_conn: int  # 1-based position on its connection (keep-alive reuse when > 1)
    method: str
    target: str
    path: str  # URL-decoded path without the query, e.g. "/bucket/key"
    headers: Dict[str, str]
    body: bytes = b""  # set once read (after the behaviour was chosen from the head)

    @property
    def range(self) -> Optional[str]:
        return self.headers.get("range")


@dataclass
class Version:
    data: bytes
    etag: str
    last_modified: float  # seconds since the epoch (whole seconds: HTTP dates have no more)


class StoredObject:
    def __init__(self, data: bytes, mtime: float):
        self.versions = [Version(data, _etag(data), mtime)]
        self.gets = 0  # GETs served, over all versions

    @property
    def current(self) -> Version:
        return self.versions[-1]

    def new_version(self) -> None:
        """Different bytes (every byte changed), same size, new ETag, Last-Modified 1 h later."""
        old = self.current
        data = old.data.translate(_XOR_5A)
        self.versions.append(Version(data, _etag(data), old.last_modified + 3600))


_XOR_5A = bytes(b ^ 0x5A for b in range(256))


def _etag(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest() + '"'


@dataclass
class Behaviour:
    """Switches of the fake, all off by default. Body offsets count body bytes (not headers)."""

    # Semantics
    ignore_range: bool = False  # answer 200 with the whole object
    ignore_if_match: bool = False  # never 412
    new_version_after_gets: Optional[int] = None  # GETs > N of an object see a new version
    omit_etag: bool = False
    omit_last_modified: bool = False
    error: Optional[Tuple[int, str]] = None  # e.g. (503, "SlowDown"): an XML error response
    bucket_region: Optional[str] = None  # requests signed for another region get S3's 301
    #                                      PermanentRedirect with x-amz-bucket-region
    delete_errors: Optional[Dict[str, Tuple[str, str]]] = None  # DeleteObjects: key -> (code,
    #                                      message) of a per-key <Error> (the key is kept)
    # Framing
    chunked: bool = False  # GET: no Content-Length, Transfer-Encoding: chunked (200 and 206)
    chunked_no_terminator: bool = False  # chunked, every byte sent, closed before "0\r\n\r\n"
    head_without_length: bool = False  # HEAD: no Content-Length
    length_delta: int = 0  # Content-Length lies by this much: > 0 body short then close; < 0
    #                        the whole body is sent anyway (the extra bytes stay on the wire)
    garbage_after_body: Optional[bytes] = None  # bytes right after the body, connection kept
    extra_bytes_delay: float = 0.0  # send the garbage / the bytes past a short Content-Length
    #                                 this many seconds late (once the client reused the
    #                                 connection for its next request)
    close_after_body_bytes: Optional[int] = None  # FIN after that many body bytes (mid-chunk
    #                                               when chunked: chunks are CHUNK bytes)
    reset_after_body_bytes: Optional[int] = None  # RST (SO_LINGER 0) after that many body bytes
    stall_after_body_bytes: Optional[int] = None  # then hold the connection open, silent
    stall_before_headers: bool = False  # send nothing at all, hold the connection open
    # Integrity
    flip_byte_at: Optional[int] = None  # flip (xor 0xFF) this body byte (relative to the body)
    checksum: Optional[str] = None  # "crc32" | "crc32c" | "sha256": send x-amz-checksum-<alg>
    checksum_wrong: bool = False  # ... with a value that is not the object's
    checksum_composite_parts: Optional[int] = None  # ... as a composite "<b64>-N" (multipart)
    checksum_on_get: bool = True  # ... on GETs whose body is the whole object
    checksum_on_head: bool = False  # ... on HEADs
    checksum_unasked: bool = False  # ... even without x-amz-checksum-mode: ENABLED


Predicate = Callable[[Request], bool]


def gets(*numbers: int) -> Predicate:
    """Matches the GETs with these 1-based numbers (counted over the whole fake)."""
    wanted = set(numbers)
    return lambda r: r.get_number in wanted


def first_requests(k: int) -> Predicate:
    """Matches the first k requests (any method)."""
    return lambda r: r.number <= k


def on_connection(*conns: int) -> Predicate:
    """Matches every request on these 1-based connections."""
    wanted = set(conns)
    return lambda r: r.conn in wanted


@dataclass
class Response:
    status: int
    reason: str
    headers: List[Tuple[str, str]]
    body: bytes = b""
    is_head: bool = False
    length: Optional[int] = None  # the true Content-Length (a HEAD's is the object's size)

    @property
    def content_length(self) -> int:
        return len(self.body) if self.length is None else self.length


# -- building a response --------------------------------------------------------------------


def _http_date(t: float) -> str:
    return email.utils.formatdate(t, usegmt=True)


def _error(status: int, code: str, message: str, resource: str, extra: Optional[List[Tuple[str, str]]] = None,
           is_head: bool = False) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><Resource>{resource}</Resource>"
        "<RequestId>fake</RequestId></Error>"
    ).encode()
    reasons = {301: "Moved Permanently", 404: "Not Found", 412: "Precondition Failed", 416: "Requested Range Not Satisfiable",
               500: "Internal Server Error", 503: "Service Unavailable", 400: "Bad Request"}
    headers = [("Content-Type", "application/xml")] + (extra or [])
    return Response(status, reasons.get(status, "Error"), headers, b"" if is_head else body, is_head)


def _parse_range(value: str, size: int) -> Optional[Tuple[int, int]]:
    """(first, last) inclusive; None when unsatisfiable; raises ValueError when malformed
    (then the header is ignored, as RFC 9110 says)."""
    unit, _, spec = value.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        raise ValueError(value)
    first_s, _, last_s = spec.strip().partition("-")
    if first_s == "":
        n = int(last_s)
        if n <= 0:
            return None
        return max(0, size - n), size - 1
    first = int(first_s)
    last = int(last_s) if last_s else size - 1
    if last < first:
        raise ValueError(value)
    if first >= size:
        return None
    return first, min(last, size - 1)


def signed_region(req: Request) -> Optional[str]:
    """The region of the request's SigV4 credential scope (None when unsigned)."""
    match = re.search(r"Credential=[^/]*/[0-9]{8}/([^/]+)/", req.headers.get("authorization", ""))
    return match.group(1) if match else None


def build_response(req: Request, obj: Optional[StoredObject], b: Behaviour) -> Response:
    """The response to `req` (the object's version already chosen by the caller: its
    current one), before any framing fault."""
    is_head = req.method == "HEAD"
    if b.error is not None:
        status, code = b.error
        return _error(status, code, "fault injected by the fake", req.path, is_head=is_head)
    if b.bucket_region is not None and signed_region(req) != b.bucket_region:
        return _error(301, "PermanentRedirect", "The bucket you are attempting to access must be addressed "
                      "using the specified endpoint.", req.path, [("x-amz-bucket-region", b.bucket_region)],
                      is_head=is_head)
    if req.method not in ("GET", "HEAD"):
        return _error(400, "NotImplemented", f"the fake serves GET and HEAD only, not {req.method}", req.path)
    if obj is None:
        return _error(404, "NoSuchKey", "The specified key does not exist.", req.path, is_head=is_head)
    version = obj.current
    data = version.data
    size = len(data)

    meta: List[Tuple[str, str]] = [("Accept-Ranges", "bytes"), ("Content-Type", "application/octet-stream")]
    if not b.omit_etag:
        meta.append(("ETag", version.etag))
    if not b.omit_last_modified:
        meta.append(("Last-Modified", _http_date(version.last_modified)))

    if_match = req.headers.get("if-match")
    if if_match is not None and not b.ignore_if_match and if_match.strip() not in ("*", version.etag):
        return _error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold",
                      req.path, is_head=is_head)

    status, reason, first, last = 200, "OK", 0, size - 1
    if req.range and not b.ignore_range:
        try:
            parsed = _parse_range(req.range, size)
        except ValueError:
            parsed = (0, size - 1)  # malformed: ignored, the whole object
        else:
            if parsed is None:
                return _error(416, "InvalidRange", "The requested range is not satisfiable", req.path,
                              [("Content-Range", f"bytes */{size}")], is_head)
            status, reason = 206, "Partial Content"
        first, last = parsed
    body = data[first:last + 1]
    headers = list(meta)
    if status == 206:
        headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))

    whole = first == 0 and last == size - 1
    asked = req.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED" or b.checksum_unasked
    wanted_here = b.checksum_on_head if is_head else (b.checksum_on_get and whole)
    if b.checksum and asked and wanted_here:
        headers += _checksum_headers(b, data)

    if b.flip_byte_at is not None and not is_head and 0 <= b.flip_byte_at < len(body):
        i = b.flip_byte_at
        body = body[:i] + bytes([body[i] ^ 0xFF]) + body[i + 1:]
    return Response(status, reason, headers, b"" if is_head else body, is_head, len(body))


def _checksum_headers(b: Behaviour, data: bytes) -> List[Tuple[str, str]]:
    value = checksum_value(b.checksum, data)
    if b.checksum_wrong:
        value = checksum_value(b.checksum, data + b"\0")
    name = f"x-amz-checksum-{b.checksum}"
    if b.checksum_composite_parts is not None:
        # A checksum of the parts' checksums: not recomputable from the object's bytes.
        return [(name, f"{checksum_value(b.checksum, value.encode())}-{b.checksum_composite_parts}"),
                ("x-amz-checksum-type", "COMPOSITE")]
    return [(name, value), ("x-amz-checksum-type", "FULL_OBJECT")]


# -- the server -----------------------------------------------------------------------------


class _Closed(Exception):
    """The connection is over (closed by the peer, or by a fault)."""


class FakeS3:
    def __init__(self):
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._objects: Dict[str, StoredObject] = {}
        self._base = Behaviour()
        self._rules: List[Tuple[Predicate, Dict[str, object]]] = []
        self.requests: List[Request] = []
        self.connections = 0
        self._socks: List[socket.socket] = []
        self._mtime = float(int(time.time()) - 86400)

        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.02)  # how soon close() stops the acceptor
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._acceptor = threading.Thread(target=self._accept_loop, name="fakes3-accept", daemon=True)
        self._acceptor.start()

    # -- configuration -------------------------------------------------------------------

    def put(self, path: str, data: bytes) -> str:
        """Store `data` at "bucket/key"; returns the path."""
        with self._lock:
            self._objects["/" + path] = StoredObject(bytes(data), self._mtime)
        return path

    def exists(self, path: str) -> bool:
        with self._lock:
            return "/" + path in self._objects

    def versions(self, path: str) -> List[bytes]:
        with self._lock:
            return [v.data for v in self._objects["/" + path].versions]

    def behave(self, **switches) -> "FakeS3":
        """Replace the base behaviour (every request) with these switches."""
        with self._lock:
            self._base = Behaviour(**switches)
        return self

    def behave_when(self, predicate: Predicate, **switches) -> "FakeS3":
        """Overlay these switches on the requests `predicate` matches (later rules win)."""
        Behaviour(**switches)  # reject unknown switches now, not in a server thread
        with self._lock:
            self._rules.append((predicate, switches))
        return self

    def reset_faults(self) -> None:
        with self._lock:
            self._base = Behaviour()
            self._rules = []

    def gets_log(self) -> List[Request]:
        with self._lock:
            return [r for r in self.requests if r.method == "GET"]

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        self._stop.set()
        self._acceptor.join(5)
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            _close(sock)
        try:
            self._listener.close()
        except OSError:
            pass

    def __enter__(self) -> "FakeS3":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- serving -------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                cid = self.connections
                self._socks.append(sock)
            threading.Thread(target=self._serve, args=(sock, cid), name=f"fakes3-conn{cid}", daemon=True).start()

    def _serve(self, sock: socket.socket, cid: int) -> None:
        pending = b""
        index = 0
        try:
            # Inside the try: stop() may close the socket before this thread first runs.
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while not self._stop.is_set():
                while b"\r\n\r\n" not in pending:
                    data = sock.recv(65536)
                    if not data:
                        raise _Closed
                    pending += data
                    if len(pending) > _HEAD_LIMIT:
                        raise _Closed
                head, pending = pending.split(b"\r\n\r\n", 1)
                index += 1
                req, obj, behaviour = self._admit(head, cid, index)
                # Bodies with a Content-Length only (DeleteObjects'); not chunked ones.
                length = int(req.headers.get("content-length", "0") or 0)
                while len(pending) < length:
                    data = sock.recv(65536)
                    if not data:
                        raise _Closed
                    pending += data
                req.body, pending = pending[:length], pending[length:]
                if req.method == "POST" and "delete" in parse_qs(urlsplit(req.target).query, keep_blank_values=True) \
                        and behaviour.error is None:
                    response = self._delete_objects(req, behaviour)
                else:
                    response = build_response(req, obj, behaviour)
                self.send_response(sock, response, behaviour)
                if req.headers.get("connection", "").lower() == "close":
                    raise _Closed
        except (_Closed, OSError):
            pass
        finally:
            _close(sock)

    def _admit(self, head: bytes, cid: int, index: int) -> Tuple[Request, Optional[StoredObject], Behaviour]:
        """Parse and record a request head; pick its behaviour; count the GET (and switch the
        object to a new version once it served the configured number of GETs)."""
        lines = head.decode("latin-1").split("\r\n")
        method, _, rest = lines[0].partition(" ")
        target = rest.rsplit(" ", 1)[0]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        path = unquote(urlsplit(target).path)
        with self._lock:
            get_number = sum(1 for r in self.requests if r.method == "GET") + 1 if method == "GET" else 0
            req = Request(len(self.requests) + 1, get_number, cid, index, method, target, path, headers)
            self.requests.append(req)
            switches: Dict[str, object] = {}
            for predicate, overlay in self._rules:
                if predicate(req):
                    switches.update(overlay)
            behaviour = dataclasses.replace(self._base, **switches)
            obj = self._objects.get(path)
            if obj is not None and method == "GET":
                obj.gets += 1
                limit = behaviour.new_version_after_gets
                if limit is not None and obj.gets == limit + 1 and len(obj.versions) == 1:
                    obj.new_version()
        return req, obj, behaviour

    def _delete_objects(self, req: Request, b: Behaviour) -> Response:
        """DeleteObjects: delete the listed keys of the bucket, but answer a per-key <Error>
        (and keep the key) for those in `delete_errors`; quiet mode lists only the errors."""
        bucket = req.path.strip("/")
        root = ElementTree.fromstring(req.body)
        local = lambda e: e.tag.rsplit("}", 1)[-1]  # noqa: E731 - the tag without its namespace
        quiet = any(local(e) == "Quiet" and (e.text or "").strip() == "true" for e in root)
        keys = [k.text or "" for o in root if local(o) == "Object" for k in o if local(k) == "Key"]
        failing = b.delete_errors or {}
        entries = []
        with self._lock:
            for key in keys:
                if key in failing:
                    code, message = failing[key]
                    entries.append(f"<Error><Key>{escape(key)}</Key><Code>{escape(code)}</Code>"
                                   f"<Message>{escape(message)}</Message></Error>")
                else:
                    self._objects.pop(f"/{bucket}/{key}", None)
                    if not quiet:
                        entries.append(f"<Deleted><Key>{escape(key)}</Key></Deleted>")
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' + "".join(entries) + "</DeleteResult>")
        return Response(200, "OK", [("Content-Type", "application/xml")], body.encode())

    def send_response(self, sock: socket.socket, resp: Response, b: Behaviour) -> None:
        """Put `resp` on the wire with the framing faults of `b`; raises _Closed when the
        fault ends the connection."""
        if b.stall_before_headers:
            self._stall()
        body = resp.body
        chunked = (b.chunked or b.chunked_no_terminator) and not resp.is_head and resp.status in (200, 206)
        headers = list(resp.headers)
        if chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        elif not (resp.is_head and b.head_without_length):
            headers.append(("Content-Length", str(max(0, resp.content_length + b.length_delta))))
        headers += [("Date", _http_date(time.time())), ("Server", "fakes3"), ("x-amz-request-id", "fake")]
        head = f"HTTP/1.1 {resp.status} {resp.reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"

        wire = _chunked(body) if chunked else body
        # Where the body stops early (in body bytes), and how.
        stop: Optional[int] = None
        how = ""
        for limit, kind in ((b.close_after_body_bytes, "close"), (b.reset_after_body_bytes, "reset"),
                            (b.stall_after_body_bytes, "stall")):
            if limit is not None and (stop is None or limit < stop):
                stop, how = limit, kind
        if not chunked and b.length_delta > 0 and not resp.is_head and (stop is None or len(body) < stop):
            stop, how = len(body), "close"  # Content-Length promised more: send what there is, close
        if chunked and b.chunked_no_terminator and stop is None:
            wire = wire[: -len(b"0\r\n\r\n")]
            stop, how = None, "close-after"

        if stop is not None:
            wire = _wire_prefix(body, stop, chunked)
        # Bytes past the end of the response as framed: the rest of a body longer than its
        # Content-Length, garbage.
        extra = b""
        if not chunked and b.length_delta < 0 and stop is None and not resp.is_head:
            cut = max(0, len(body) + b.length_delta)
            wire, extra = wire[:cut], wire[cut:]
        if b.garbage_after_body and stop is None and how != "close-after":
            extra += b.garbage_after_body
        if b.extra_bytes_delay <= 0:
            wire, extra = wire + extra, b""
        sock.sendall(head.encode("latin-1") + wire)
        if stop is not None or how == "close-after":
            if how == "stall":
                self._stall()
            _close(sock, reset=how == "reset")
            raise _Closed
        if extra:
            if self._stop.wait(b.extra_bytes_delay):
                raise _Closed
            sock.sendall(extra)

    def _stall(self) -> None:
        """Hold the connection open without sending, until the fake closes."""
        self._stop.wait()
        raise _Closed


def _chunked(body: bytes) -> bytes:
    out = bytearray()
    for i in range(0, len(body), CHUNK):
        piece = body[i:i + CHUNK]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    out += b"0\r\n\r\n"
    return bytes(out)


def _wire_prefix(body: bytes, n: int, chunked: bool) -> bytes:
    """The wire bytes that carry exactly the first n body bytes (for a chunked body: every
    chunk up to the one holding byte n, that one cut inside its data)."""
    if not chunked:
        return body[:n]
    out = bytearray()
    for i in range(0, min(n, len(body)), CHUNK):
        piece = body[i:i + CHUNK]
        out += b"%x\r\n" % len(piece) + piece[: n - i]
        if n - i >= len(piece):
            out += b"\r\n"
    return bytes(out)


def _close(sock: socket.socket, reset: bool = False) -> None:
    try:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
