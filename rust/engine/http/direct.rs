//! GET on connections of our own, with the body read straight into the caller's memory.
//!
//! hyper reads a response body into its own buffer and hands it out in chunks, which the
//! engine then copies into the destination: two copies of every body byte on the client (the
//! kernel's into hyper's buffer, then ours out of it), and the second was about a third of a
//! large read's client CPU (bench/profile_large_get.py). Here a GET is written, and its
//! response head parsed (httparse, hyper's own parser), by us on the connector's connections
//! (same TLS, trust, CONNECT tunnel and connect timeout), and a `Content-Length` body is read
//! with `read` calls whose buffer is the destination itself: the kernel's copy (over TLS,
//! rustls' copy of the decrypted record) is the only one.
//!
//! Only the common shape of answer is handled: a final status, one `Content-Length`, no
//! `Transfer-Encoding`. Any other (chunked or length-less bodies, 1xx, 204/304, a malformed
//! length, header bytes the `http` crate refuses) is handed back unread, and
//! the caller sends the request again through hyper, which knows every shape of HTTP/1.1: a
//! GET has no side effects, and such servers are the exception.
//!
//! Connections are pooled per data plane, as hyper's are, and go back to the pool only after
//! their body was read to its last byte on a keep-alive response. A connection is checked
//! when taken from the pool: one the server closed, or one holding bytes nobody asked for (a
//! server that sent more than it announced), is dropped, never reused.

use crate::connector::{Connector, Stream};
use crate::error::{Error, ErrorKind, Result};
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{Request, Response, StatusCode, Version};
use hyper::rt::{Read, ReadBuf, Write};
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tower_service::Service;

/// The first read of a response: its head, and perhaps the first body bytes.
const HEAD_READ: usize = 16 * 1024;
/// A response head longer than this is refused (hyper's default limit is about 400 KiB of
/// buffer; S3's heads are under 2 KiB).
const MAX_HEAD: usize = 64 * 1024;
/// Headers one response may carry (hyper's limit too).
const MAX_HEADERS: usize = 100;
/// Idle connections kept per data plane, all destinations together.
const MAX_IDLE: usize = 256;
/// Chunks handed out by [`DirectBody::next`] (error bodies, whole-object answers).
const CHUNK: usize = 64 * 1024;

/// A connection, boxed: a TLS one holds rustls' state inline (over 1 KiB), and responses and
/// bodies that hold one are moved around.
type Conn = Box<Stream>;

/// The idle connections of one data plane.
pub(crate) struct Pool {
    connector: Connector,
    idle_timeout: Duration,
    idle: Mutex<Vec<Idle>>,
}

struct Idle {
    /// `scheme://authority` the connection leads to.
    origin: String,
    io: Conn,
    since: Instant,
}

impl Pool {
    pub fn new(connector: Connector, idle_timeout: Duration) -> Arc<Pool> {
        Arc::new(Pool { connector, idle_timeout, idle: Mutex::new(Vec::new()) })
    }

    /// Send a GET (already signed, no body) and read its response head. None: the answer has
    /// a shape left to hyper (see the module doc); send the request again there. Errors before
    /// a complete head say whether another attempt on a fresh connection may succeed, as
    /// hyper's do (`Error::retry_on_fresh_connection`). `host` names the server in errors.
    pub async fn get<B>(
        self: &Arc<Pool>,
        request: &Request<B>,
        host: &str,
        stall_grace: Duration,
    ) -> Result<Option<Response<DirectBody>>> {
        let uri = request.uri();
        let origin = format!("{}://{}", uri.scheme_str().unwrap_or("http"), uri.authority().map_or("", |a| a.as_str()));
        let mut io = match self.checkout(&origin) {
            Some(io) => io,
            None => self.connect(uri, host).await?,
        };
        write_all(&mut io, &request_head(request)).await.map_err(|e| before_response(&e, "sending the request failed"))?;
        let head = read_head(&mut io).await?;
        let Some(length) = head.body_length() else {
            return Ok(None);
        };
        let keep_alive = head.keep_alive();
        let Head { status, version, headers, mut early, .. } = head;
        let body = DirectBody {
            // Bytes past the announced length: the server sent more than it said (or answered
            // ahead); the connection is not reused.
            keep_alive: keep_alive && early.len() as u64 <= length,
            io: Some(io),
            pool: self.clone(),
            origin,
            remaining: length,
            length,
            early: {
                early.truncate(usize::try_from(length).unwrap_or(usize::MAX).min(early.len()));
                early
            },
            early_pos: 0,
            stall_grace,
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        *response.version_mut() = version;
        *response.headers_mut() = headers;
        if length == 0 {
            response.body_mut().release();
        }
        Ok(Some(response))
    }

    async fn connect(&self, uri: &http::Uri, host: &str) -> Result<Conn> {
        let mut connector = self.connector.clone();
        let connecting = async {
            poll_fn(|cx| connector.poll_ready(cx)).await?;
            connector.call(uri.clone()).await
        };
        connecting.await.map(Box::new).map_err(|e| super::connect_failure(&*e, host))
    }

    /// The most recently used idle connection to `origin` that is still open and quiet.
    fn checkout(&self, origin: &str) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(i) = idle.iter().rposition(|c| c.origin == origin) {
            let mut candidate = idle.remove(i);
            if candidate.since.elapsed() < self.idle_timeout && is_quiet(&mut candidate.io) {
                return Some(candidate.io);
            }
        }
        None
    }

    fn checkin(&self, origin: String, io: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain(|c| c.since.elapsed() < self.idle_timeout);
        if idle.len() >= MAX_IDLE {
            idle.remove(0);
        }
        idle.push(Idle { origin, io, since: Instant::now() });
    }
}

/// Whether an idle connection has nothing to say: not closed, no unread bytes. One read is
/// tried without waiting (a waker that does nothing: the next real read registers its own).
fn is_quiet(io: &mut Conn) -> bool {
    let mut byte = [0u8; 1];
    let mut buf = ReadBuf::new(&mut byte);
    let mut cx = Context::from_waker(Waker::noop());
    matches!(Pin::new(&mut **io).poll_read(&mut cx, buf.unfilled()), Poll::Pending)
}

/// `GET /path?query HTTP/1.1`, then every header of `request` (Host among them).
fn request_head<B>(request: &Request<B>) -> Vec<u8> {
    let mut head = Vec::with_capacity(1024);
    head.extend_from_slice(request.method().as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(request.uri().path_and_query().map_or("/", |p| p.as_str()).as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in request.headers() {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

async fn write_all(io: &mut Conn, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut **io).poll_write(cx, bytes)).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
    }
    poll_fn(|cx| Pin::new(&mut **io).poll_flush(cx)).await
}

/// One `read` into `dst`: how many bytes landed (0 at end of stream).
async fn read(io: &mut Conn, dst: &mut [u8]) -> io::Result<usize> {
    let mut buf = ReadBuf::new(dst);
    poll_fn(|cx| Pin::new(&mut **io).poll_read(cx, buf.unfilled())).await?;
    Ok(buf.filled().len())
}

/// A parsed response head, and the bytes read after it.
struct Head {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    /// Every header name and value was accepted by the `http` crate.
    clean: bool,
    early: Vec<u8>,
}

async fn read_head(io: &mut Conn) -> Result<Head> {
    let mut buf = vec![0u8; HEAD_READ];
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            if buf.len() >= MAX_HEAD {
                return Err(Error::protocol(format!("the response head is longer than {MAX_HEAD} bytes")));
            }
            buf.resize(buf.len() * 2, 0);
        }
        let n = read(io, &mut buf[filled..]).await.map_err(|e| before_response(&e, "reading the response failed"))?;
        if n == 0 {
            let what = if filled == 0 { "the connection closed before a response" } else { "the connection closed inside the response head" };
            let mut err = Error::new(ErrorKind::Network, what);
            err.retry_on_fresh_connection = true;
            return Err(err);
        }
        filled += n;
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut slots);
        let head_len = match parsed.parse(&buf[..filled]) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => continue,
            Err(e) => {
                // As hyper's parse errors: nothing usable came back, perhaps stale bytes left
                // on a reused connection.
                let mut err = Error::new(ErrorKind::Network, format!("cannot parse the response head: {e}"));
                err.retry_on_fresh_connection = true;
                return Err(err);
            }
        };
        let status = parsed.code.and_then(|c| StatusCode::from_u16(c).ok());
        let Some(status) = status else {
            return Err(Error::protocol(format!("invalid response status {:?}", parsed.code)));
        };
        let version = if parsed.version == Some(1) { Version::HTTP_11 } else { Version::HTTP_10 };
        let mut headers = HeaderMap::with_capacity(parsed.headers.len());
        let mut clean = true;
        for h in parsed.headers.iter() {
            match (HeaderName::from_bytes(h.name.as_bytes()), HeaderValue::from_bytes(h.value)) {
                (Ok(name), Ok(value)) => {
                    headers.append(name, value);
                }
                _ => clean = false,
            }
        }
        buf.truncate(filled);
        buf.drain(..head_len);
        return Ok(Head { status, version, headers, clean, early: buf });
    }
}

impl Head {
    /// The body's length, when this response has the shape read here (see the module doc).
    fn body_length(&self) -> Option<u64> {
        if !self.clean
            || self.status.is_informational()
            || self.status == StatusCode::NO_CONTENT
            || self.status == StatusCode::NOT_MODIFIED
            || self.headers.contains_key(TRANSFER_ENCODING)
        {
            return None;
        }
        let mut lengths = self.headers.get_all(CONTENT_LENGTH).iter();
        let (Some(only), None) = (lengths.next(), lengths.next()) else {
            return None;
        };
        let text = only.to_str().ok()?;
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    }

    /// HTTP/1.1 without `Connection: close` (HTTP/1.0 connections are not reused).
    fn keep_alive(&self) -> bool {
        self.version == Version::HTTP_11
            && !self
                .headers
                .get_all(CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|token| token.trim().eq_ignore_ascii_case("close"))
    }
}

/// A failure before a complete response head: as hyper's, worth one more try on a fresh
/// connection (a pooled one may have been closed by the server meanwhile).
fn before_response(e: &io::Error, what: &str) -> Error {
    let mut err = Error::new(ErrorKind::Network, format!("{what}: {e}"));
    err.retry_on_fresh_connection = true;
    err
}

/// The body of a response read here: exactly `Content-Length` bytes, read into whatever
/// buffer the caller gives. A body that ends early or stalls fails with a `Network` error
/// (transient: a read resumes after the bytes it has), as hyper's does.
pub(crate) struct DirectBody {
    /// None once the body is complete (the connection went back to the pool) or failed.
    io: Option<Conn>,
    pool: Arc<Pool>,
    origin: String,
    remaining: u64,
    length: u64,
    /// Body bytes read together with the head; handed out first.
    early: Vec<u8>,
    early_pos: usize,
    keep_alive: bool,
    stall_grace: Duration,
}

impl DirectBody {
    /// Body bytes not yet read.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Read the next body bytes into `dst` (at most `dst.len()`, at most what remains), with
    /// one copy: from the kernel (or rustls) into `dst`. Ok(0) only at the end of the body.
    pub async fn read_into(&mut self, dst: &mut [u8]) -> Result<usize> {
        let limit = usize::try_from(self.remaining).unwrap_or(usize::MAX).min(dst.len());
        if limit == 0 {
            return Ok(0);
        }
        let dst = &mut dst[..limit];
        let n = if self.early_pos < self.early.len() {
            let n = limit.min(self.early.len() - self.early_pos);
            dst[..n].copy_from_slice(&self.early[self.early_pos..self.early_pos + n]);
            self.early_pos += n;
            n
        } else {
            let read_so_far = self.length - self.remaining;
            let io = self.io.as_mut().ok_or_else(|| Error::new(ErrorKind::Network, "the body's connection failed earlier"))?;
            match tokio::time::timeout(self.stall_grace, read(io, dst)).await {
                Ok(Ok(n)) if n > 0 => n,
                failed => {
                    let message = match failed {
                        Ok(Err(e)) => format!("reading the body failed: {e}"),
                        Err(_) => format!("the body stalled: no byte for {:?}", self.stall_grace),
                        Ok(Ok(_)) => format!("the connection closed after {read_so_far} of {} body bytes", self.length),
                    };
                    self.io = None;
                    return Err(Error::new(ErrorKind::Network, message));
                }
            }
        };
        self.remaining -= n as u64;
        if self.remaining == 0 {
            self.release();
        }
        Ok(n)
    }

    /// The next chunk of the body, in a buffer of its own; None at its end. For the paths that
    /// do not read into a destination (error bodies, a whole object answered to a range).
    pub async fn next(&mut self) -> Option<Result<Bytes>> {
        let size = usize::try_from(self.remaining).unwrap_or(usize::MAX).min(CHUNK);
        if size == 0 {
            return None;
        }
        let mut chunk = vec![0u8; size];
        Some(self.read_into(&mut chunk).await.map(|n| {
            chunk.truncate(n);
            Bytes::from(chunk)
        }))
    }

    /// The body is complete: its connection can serve the next request.
    fn release(&mut self) {
        self.early = Vec::new();
        if let Some(io) = self.io.take() {
            if self.keep_alive {
                self.pool.checkin(std::mem::take(&mut self.origin), io);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::runtime;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server answering every request on a connection with `answer`; counts connections.
    async fn serve(answer: &'static [u8]) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/bkt/key", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut byte = [0u8; 1];
                    while sock.read(&mut byte).await.unwrap_or(0) == 1 {
                        request.push(byte[0]);
                        if request.ends_with(b"\r\n\r\n") {
                            request.clear();
                            if sock.write_all(answer).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    fn pool() -> Arc<Pool> {
        let connector = crate::connector::build(&crate::ClientOptions::default()).unwrap();
        Pool::new(connector, Duration::from_secs(15))
    }

    fn get_request(url: &str) -> Request<()> {
        let uri: http::Uri = url.parse().unwrap();
        let host = uri.authority().unwrap().to_string();
        Request::get(uri).header("host", host).body(()).unwrap()
    }

    /// GET `url` through `pool`, reading the body into place 4 bytes at a time.
    async fn fetch(pool: &Arc<Pool>, url: &str) -> Option<(StatusCode, Vec<u8>)> {
        let response = pool.get(&get_request(url), "test", Duration::from_secs(5)).await.unwrap()?;
        let status = response.status();
        let mut body = response.into_body();
        let mut bytes = vec![0u8; body.remaining() as usize];
        let mut at = 0;
        loop {
            let end = bytes.len().min(at + 4);
            match body.read_into(&mut bytes[at..end]).await.unwrap() {
                0 => break,
                n => at += n,
            }
        }
        assert_eq!(at, bytes.len());
        Some((status, bytes))
    }

    fn idle(pool: &Pool) -> usize {
        pool.idle.lock().unwrap().len()
    }

    #[test]
    fn bodies_arrive_in_place_and_connections_are_reused_after_a_complete_body() {
        runtime().block_on(async {
            let (url, accepted) = serve(b"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nETag: \"e\"\r\n\r\n0123456789").await;
            let pool = pool();
            for _ in 0..3 {
                let (status, body) = fetch(&pool, &url).await.unwrap();
                assert_eq!((status, &body[..]), (StatusCode::PARTIAL_CONTENT, &b"0123456789"[..]));
                assert_eq!(idle(&pool), 1);
            }
            assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection for three GETs");
            // A body dropped before its end takes its connection with it.
            let response = pool.get(&get_request(&url), "test", Duration::from_secs(5)).await.unwrap().unwrap();
            assert_eq!(idle(&pool), 0);
            drop(response);
            assert_eq!(idle(&pool), 0);
            fetch(&pool, &url).await.unwrap();
            assert_eq!(accepted.load(Ordering::SeqCst), 2);
        });
    }

    #[test]
    fn answers_of_other_shapes_are_handed_back_unread() {
        runtime().block_on(async {
            let (url, _) = serve(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n").await;
            let pool = pool();
            assert!(fetch(&pool, &url).await.is_none());
            assert_eq!(idle(&pool), 0);
        });
    }

    #[test]
    fn a_connection_with_bytes_nobody_asked_for_is_never_reused() {
        runtime().block_on(async {
            // Two bytes more than announced, sent with the body.
            let (url, accepted) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcXY").await;
            let pool = pool();
            for round in 1..=2 {
                let (_, body) = fetch(&pool, &url).await.unwrap();
                assert_eq!(body, b"abc");
                assert_eq!(idle(&pool), 0);
                assert_eq!(accepted.load(Ordering::SeqCst), round);
            }
        });
    }

    #[test]
    fn an_idle_connection_that_received_bytes_is_dropped_at_checkout() {
        runtime().block_on(async {
            let (url, accepted) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc").await;
            let pool = pool();
            fetch(&pool, &url).await.unwrap();
            assert_eq!(idle(&pool), 1);
            // Bytes arrive on the idle connection (as from a server that sent more than it
            // announced, late): simulated by the server answering a request nobody will read.
            let mut stolen = pool.idle.lock().unwrap().pop().unwrap();
            write_all(&mut stolen.io, &request_head(&get_request(&url))).await.unwrap();
            pool.idle.lock().unwrap().push(stolen);
            tokio::time::sleep(Duration::from_millis(200)).await;
            let (_, body) = fetch(&pool, &url).await.unwrap();
            assert_eq!(body, b"abc");
            assert_eq!(accepted.load(Ordering::SeqCst), 2, "the dirty connection was not reused");
        });
    }

    fn head(lines: &[(&str, &str)], status: u16, version: Version) -> Head {
        let mut headers = HeaderMap::new();
        for (name, value) in lines {
            headers.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        Head { status: StatusCode::from_u16(status).unwrap(), version, headers, clean: true, early: Vec::new() }
    }

    #[test]
    fn only_one_plain_content_length_is_read_here() {
        let v11 = Version::HTTP_11;
        assert_eq!(head(&[("content-length", "10")], 206, v11).body_length(), Some(10));
        assert_eq!(head(&[("content-length", "0")], 404, v11).body_length(), Some(0));
        assert_eq!(head(&[], 200, v11).body_length(), None);
        assert_eq!(head(&[("transfer-encoding", "chunked")], 200, v11).body_length(), None);
        assert_eq!(head(&[("content-length", "10"), ("transfer-encoding", "chunked")], 200, v11).body_length(), None);
        assert_eq!(head(&[("content-length", "10"), ("content-length", "10")], 200, v11).body_length(), None);
        assert_eq!(head(&[("content-length", "+10")], 200, v11).body_length(), None);
        assert_eq!(head(&[("content-length", "1 0")], 200, v11).body_length(), None);
        assert_eq!(head(&[("content-length", "10")], 100, v11).body_length(), None);
        assert_eq!(head(&[("content-length", "10")], 204, v11).body_length(), None);
        let mut unclean = head(&[("content-length", "10")], 200, v11);
        unclean.clean = false;
        assert_eq!(unclean.body_length(), None);
    }

    #[test]
    fn connections_are_kept_for_http11_without_close() {
        assert!(head(&[], 200, Version::HTTP_11).keep_alive());
        assert!(head(&[("connection", "keep-alive")], 200, Version::HTTP_11).keep_alive());
        assert!(!head(&[("connection", "Keep-Alive, Close")], 200, Version::HTTP_11).keep_alive());
        assert!(!head(&[], 200, Version::HTTP_10).keep_alive());
    }

    #[test]
    fn the_request_head_is_the_signed_request() {
        let request = Request::builder()
            .method("GET")
            .uri("http://127.0.0.1:9000/bucket/a%20key?versionId=3")
            .header("host", "127.0.0.1:9000")
            .header("range", "bytes=0-9")
            .body(())
            .unwrap();
        assert_eq!(
            String::from_utf8(request_head(&request)).unwrap(),
            "GET /bucket/a%20key?versionId=3 HTTP/1.1\r\nhost: 127.0.0.1:9000\r\nrange: bytes=0-9\r\n\r\n"
        );
    }
}
