"""A fault-injecting TCP proxy for tests (stdlib only, thread-based).

    with FaultProxy(server.endpoint_url) as proxy:
        proxy.throttle(256 * 1024)          # bytes/s per connection, server -> client
        proxy.cut(after=20_000, connections=3)
        client = pyfasts3.Client(proxy.url, ...)

The proxy listens on 127.0.0.1 (port 0) and forwards every connection byte for byte to the
upstream server (it only reads request heads, to record them). Faults apply to server ->
client traffic only:

- throttle(rate): at most `rate` bytes/s per connection (None: unlimited).
- cut(after, connections): a connection that has forwarded `after` response bytes (headers
  included, counted over its whole life, keep-alive included) is closed right there, for the
  first `connections` connections that carry that much (None: every one). With reset=True
  the close is an RST instead of a FIN.
- pause() / resume() / pause_at(total): hold all server -> client bytes (a gate), manually or
  automatically once exactly `total` response bytes went through the proxy. Held
  connections stay open (a stalled server); one its client closes is dropped.

Request rules (client -> server), matched on each request's head (bodies with a
Content-Length are skipped over, so every request on a keep-alive connection is seen):

- reject(match, status, code): answer a matching request with that S3 error instead of
  forwarding it, and close the connection (a client still sending the body sees a reset).
- hold(match): stop forwarding a matching request (the connection stays open, its body
  unread) until release() or close(): a stalled upload.

Counters (connections, active, bytes_down, bytes_up, cuts) are plain attributes, and
`requests` lists the head (method, target, headers) of every request, which is how tests
check Range and If-Match. wait_for() blocks until a predicate on the proxy holds.

Helpers for tests: proxied_client() (a pyfasts3.Client whose endpoint is the proxy), and
run_guarded()/start_guarded() (a call on a daemon thread with a hang guard, its exception
kept without traceback). Because the proxy forwards bytes unchanged, the
Host header the server sees is the proxy's address, which is also what the client signed:
SigV4 verification (versitygw) succeeds.
"""
from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Set, Tuple
from urllib.parse import urlsplit

_MAX_CHUNK = 64 * 1024


class Request(NamedTuple):
    """The head of one request seen by the proxy (header names lower-cased)."""

    conn: int
    method: str
    target: str
    headers: Dict[str, str]


class _Conn:
    def __init__(self, cid: int, client: socket.socket, upstream: socket.socket):
        self.id = cid
        self.client = client
        self.upstream = upstream
        self.down = 0  # response bytes forwarded on this connection
        self.was_cut = False
        self.client_gone = False  # the client closed its side
        self._closed = False
        self._lock = threading.Lock()

    def close(self, reset: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for sock in (self.client, self.upstream):
            try:
                if reset and sock is self.client:
                    # Linger 0: the close sends an RST. SHUT_RD (which sends nothing) wakes
                    # the other pump's recv; the socket is only released, and the RST only
                    # sent, once no thread is inside a call on it.
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.shutdown(socket.SHUT_RD)
                else:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass


class FaultProxy:
    def __init__(self, upstream_url: str):
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        # Fault configuration (read under _cond).
        self._rate: Optional[int] = None
        self._cut_after: Optional[int] = None
        self._cuts_left: Optional[int] = 0  # None: cut every connection
        self._cut_reset = False
        self._paused = False
        self._pause_at: Optional[int] = None
        # Counters.
        self.connections = 0
        self.active = 0
        self.bytes_down = 0
        self.bytes_up = 0
        self.cuts = 0
        # Heads of the requests that went through, in order (see _record_request).
        self.requests: List[Request] = []
        self._conns: Set[_Conn] = set()
        # Request rules: (match, action, status, code); see reject() and hold().
        self._rules: List[Tuple[Callable[[Request], bool], str, int, str]] = []
        self._released = False
        self.rejected = 0
        self.held = 0

        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._acceptor = threading.Thread(target=self._accept_loop, name="faultproxy-accept", daemon=True)
        self._acceptor.start()

    # -- configuration -------------------------------------------------------------------

    def throttle(self, rate: Optional[int]) -> "FaultProxy":
        """Limit each connection's server -> client bytes/s (None: unlimited)."""
        if rate is not None and rate <= 0:
            raise ValueError("rate must be > 0")
        with self._cond:
            self._rate = rate
        return self

    def cut(self, after: Optional[int], connections: Optional[int] = 1, reset: bool = False) -> "FaultProxy":
        """Close a connection once it forwarded `after` response bytes, for the first
        `connections` connections that get that far (None: all). after=None disables."""
        with self._cond:
            self._cut_after = after
            self._cuts_left = connections
            self._cut_reset = reset
        return self

    def reject(self, match: Callable[[Request], bool], status: int = 500, code: str = "InternalError") -> "FaultProxy":
        """Answer every request whose head matches with an S3 error (status, code) and close
        its connection, instead of forwarding it."""
        with self._cond:
            self._rules.append((match, "reject", status, code))
        return self

    def hold(self, match: Callable[[Request], bool]) -> "FaultProxy":
        """Stop forwarding (hold) every request whose head matches, until release()."""
        with self._cond:
            self._rules.append((match, "hold", 0, ""))
        return self

    def release(self) -> None:
        """End every hold: held connections are closed."""
        with self._cond:
            self._released = True
            self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._pause_at = None
            self._cond.notify_all()

    def pause_at(self, total_down: int) -> None:
        """Engage the gate as soon as `total_down` response bytes have gone through."""
        with self._cond:
            if self.bytes_down >= total_down:
                self._paused = True
            else:
                self._pause_at = total_down
            self._cond.notify_all()

    @property
    def paused(self) -> bool:
        return self._paused

    def wait_for(self, predicate: Callable[["FaultProxy"], bool], timeout: float = 10.0) -> bool:
        """Block until predicate(self) is true (re-checked on every forwarded chunk and
        connection change); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    def stats(self) -> dict:
        with self._cond:
            return {"connections": self.connections, "active": self.active, "bytes_down": self.bytes_down,
                    "bytes_up": self.bytes_up, "cuts": self.cuts}

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._paused = False
            self._released = True
            self._cond.notify_all()
            conns = list(self._conns)
        for conn in conns:
            conn.close()
        self._acceptor.join(5)
        try:
            self._listener.close()
        except OSError:
            pass

    def __enter__(self) -> "FaultProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- forwarding ----------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), name="faultproxy-conn", daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._cond:
            if self._stop.is_set():
                client.close()
                upstream.close()
                return
            self.connections += 1
            self.active += 1
            conn = _Conn(self.connections, client, upstream)
            self._conns.add(conn)
            self._cond.notify_all()
        up = threading.Thread(target=self._pump_up, args=(conn,), name="faultproxy-up", daemon=True)
        up.start()
        try:
            self._pump_down(conn)
        finally:
            up.join()
            conn.close()
            with self._cond:
                self._conns.discard(conn)
                self.active -= 1
                self._cond.notify_all()

    def _pump_up(self, conn: _Conn) -> None:
        """Client -> server, unchanged (request heads are recorded and matched on the way)."""
        head = b""  # bytes of a request head not complete yet
        body_left = 0  # bytes of the current request's body still to forward
        parsing = True  # False after a chunked body: forwarded blind from then on
        try:
            while True:
                data = conn.client.recv(_MAX_CHUNK)
                if not data:
                    with self._cond:
                        conn.client_gone = True
                        self._cond.notify_all()
                    conn.upstream.shutdown(socket.SHUT_WR)
                    return
                out = bytearray()
                while data:
                    if not parsing:
                        out += data
                        break
                    if body_left:
                        n = min(body_left, len(data))
                        out += data[:n]
                        body_left -= n
                        data = data[n:]
                        continue
                    head += data
                    data = b""
                    end = head.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    request_head, data = head[: end + 4], head[end + 4:]
                    head = b""
                    request = self._record_request(conn, request_head)
                    rule = self._rule_for(request)
                    if rule is not None:
                        self._send_up(conn, bytes(out))
                        self._apply(conn, rule)
                        return
                    out += request_head
                    if "transfer-encoding" in request.headers:
                        parsing = False
                    else:
                        body_left = int(request.headers.get("content-length", "0") or 0)
                self._send_up(conn, bytes(out))
        except OSError:
            conn.close()

    def _send_up(self, conn: _Conn, data: bytes) -> None:
        if data:
            conn.upstream.sendall(data)
            with self._cond:
                self.bytes_up += len(data)
                self._cond.notify_all()

    def _record_request(self, conn: _Conn, head: bytes) -> Request:
        lines = head[:-4].decode("latin-1").split("\r\n")
        method, _, rest = lines[0].partition(" ")
        target = rest.rsplit(" ", 1)[0]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        request = Request(conn.id, method, target, headers)
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()
        return request

    def _rule_for(self, request: Request):
        with self._cond:
            rules = list(self._rules)
        for rule in rules:
            if rule[0](request):
                return rule
        return None

    def _apply(self, conn: _Conn, rule) -> None:
        _, action, status, code = rule
        if action == "reject":
            body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>"
                    f"<Message>rejected by the fault proxy</Message></Error>").encode()
            head = (f"HTTP/1.1 {status} Error\r\nContent-Type: application/xml\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
            with self._cond:
                self.rejected += 1
                self._cond.notify_all()
            try:
                conn.client.sendall(head + body)
            except OSError:
                pass
        else:
            with self._cond:
                self.held += 1
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._released or self._stop.is_set() or conn.client_gone)
        conn.close()

    def _pump_down(self, conn: _Conn) -> None:
        """Server -> client, through the faults."""
        try:
            while True:
                rate = self._rate
                size = _MAX_CHUNK if rate is None else max(256, min(_MAX_CHUNK, rate // 20))
                data = conn.upstream.recv(size)
                if not data:
                    conn.client.shutdown(socket.SHUT_WR)
                    return
                while data:
                    # Re-read the rate per slice so throttle() applies to running transfers.
                    rate = self._rate
                    step = len(data) if rate is None else max(256, min(_MAX_CHUNK, rate // 20))
                    sent, cut = self._forward(conn, data[:step], rate)
                    if cut:
                        return
                    data = data[sent:]
        except OSError:
            pass
        finally:
            conn.close(reset=conn.was_cut and self._cut_reset)

    def _forward(self, conn: _Conn, piece: bytes, rate: Optional[int]) -> Tuple[int, bool]:
        """Send (a prefix of) one piece to the client; return how many bytes were sent and
        whether the connection was cut after them."""
        with self._cond:
            self._cond.wait_for(lambda: not self._paused or self._stop.is_set() or conn.client_gone)
            if self._stop.is_set():
                raise OSError("proxy closed")
            if self._paused:
                raise OSError("the client closed the connection while it was held")
            if self._pause_at is not None and self.bytes_down + len(piece) >= self._pause_at:
                # Exactly `pause_at` bytes go through; the rest waits behind the gate.
                piece = piece[: self._pause_at - self.bytes_down]
                self._paused = True
                self._pause_at = None
            cut = False
            after = self._cut_after
            if after is not None and conn.down < after <= conn.down + len(piece) and self._cuts_left != 0:
                piece = piece[: after - conn.down]
                cut = True
                conn.was_cut = True
                self.cuts += 1
                if self._cuts_left is not None:
                    self._cuts_left -= 1
            # Counted before the send, so a client that has its bytes never sees a counter
            # lagging behind them.
            conn.down += len(piece)
            self.bytes_down += len(piece)
            self._cond.notify_all()
        if piece:
            conn.client.sendall(piece)
        if rate and not cut:
            self._stop.wait(len(piece) / rate)
        return len(piece), cut


# -- test helpers ----------------------------------------------------------------------------


def proxied_client(server: Any, proxy: FaultProxy, **kwargs: Any):
    """A pyfasts3.Client for `server` whose endpoint is the proxy (what conftest.make_client
    builds, with endpoint_url replaced)."""
    import pyfasts3

    return pyfasts3.Client(
        proxy.url,
        region=server.region,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        **kwargs,
    )


class Outcome:
    """What a guarded call did: `value` or `error` (with its traceback dropped, so no frame
    of the failed call, and none of the locals it holds, stays alive in a reference cycle),
    plus when it ended (time.monotonic())."""

    def __init__(self):
        self.done = threading.Event()
        self.value: Any = None
        self.error: Optional[BaseException] = None
        self.ended_at: Optional[float] = None

    def __repr__(self) -> str:
        state = f"error={self.error!r}" if self.error is not None else f"value={self.value!r}"
        return f"<Outcome {state}>" if self.done.is_set() else "<Outcome still running>"


def start_guarded(fn: Callable[[], Any], name: str = "guarded-call") -> Outcome:
    """Run fn() on a daemon thread; the returned Outcome is filled when it ends."""
    out = Outcome()

    def target() -> None:
        try:
            out.value = fn()
        except BaseException as e:  # noqa: BLE001 - reported to the test
            out.error = e.with_traceback(None)
            out.error.__context__ = None
        finally:
            out.ended_at = time.monotonic()
            out.done.set()

    threading.Thread(target=target, name=name, daemon=True).start()
    return out


def run_guarded(fn: Callable[[], Any], timeout: float = 60.0) -> Outcome:
    """Run fn() on a daemon thread and wait at most `timeout` s for it (a hang guard: the
    test fails instead of hanging CI)."""
    out = start_guarded(fn)
    if not out.done.wait(timeout):
        raise AssertionError(f"call still running after the {timeout:.0f}s hang guard")
    return out


def random_bytes(n: int, seed: int) -> bytes:
    """Reproducible test data."""
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()
