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
        # Heads of the requests that went through, in order (see _record_requests).
        self.requests: List[Request] = []
        self._conns: Set[_Conn] = set()

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
        """Client -> server, unchanged (request heads are recorded on the way)."""
        pending: Optional[bytes] = b""
        try:
            while True:
                data = conn.client.recv(_MAX_CHUNK)
                if not data:
                    with self._cond:
                        conn.client_gone = True
                        self._cond.notify_all()
                    conn.upstream.shutdown(socket.SHUT_WR)
                    return
                if pending is not None:
                    pending = self._record_requests(conn, pending + data)
                conn.upstream.sendall(data)
                with self._cond:
                    self.bytes_up += len(data)
                    self._cond.notify_all()
        except OSError:
            conn.close()

    def _record_requests(self, conn: _Conn, pending: bytes) -> bytes:
        """Parse complete request heads out of `pending`; return the unparsed rest. Only
        bodiless requests (GET, HEAD) are expected through the proxy: after a head that
        announces a body, recording stops for this connection."""
        while b"\r\n\r\n" in pending:
            head, pending = pending.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, _, rest = lines[0].partition(" ")
            target = rest.rsplit(" ", 1)[0]
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            with self._cond:
                self.requests.append(Request(conn.id, method, target, headers))
                self._cond.notify_all()
            if int(headers.get("content-length", "0") or 0) or "transfer-encoding" in headers:
                return None
        return pending

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
