//! GET and PUT on connections of our own; a GET's body read straight into the caller's memory.
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
//! A PUT goes the same way: its head and body are written from the caller's bytes by the
//! calling task, without hyper's connection task and the hand-offs to it, which were a sixth
//! of a small PUT's client CPU (bench/README.md, "Small PUTs").
//!
//! Only the common shape of answer is read as it comes: a final status, one
//! `Content-Length`, no `Transfer-Encoding`. For a GET any other (chunked or length-less
//! bodies, 1xx, 204/304, a malformed length, header bytes the `http` crate refuses) is handed
//! back unread, and the caller sends the request again through hyper, which knows every shape
//! of HTTP/1.1: a GET has no side effects, and such servers are the exception. A PUT is not
//! sent twice for that: interim 1xx answers are skipped, and a body of another shape (a
//! chunked or close-delimited error document, say) is read whole, up to [`MAX_BUFFERED`], and
//! its connection closed.
//!
//! Connections are pooled per data plane, as hyper's are, and go back to the pool only after
//! their body was read to its last byte on a keep-alive response. A connection is checked
//! when taken from the pool: one the server closed, or one holding bytes nobody asked for (a
//! server that sent more than it announced), is dropped, never reused.

use crate::connector::{Connector, Stream};
use crate::error::{Error, ErrorKind, Result};
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{Method, Request, Response, StatusCode, Version};
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
/// A PUT's answer of a shape not read as it comes is read whole up to this size (S3 answers
/// a PUT with an empty body, or an error document well under 1 KiB); the rest is dropped.
const MAX_BUFFERED: usize = 64 * 1024;
/// How much one read of an unframed answer's body may take.
const READ_MORE: usize = 16 * 1024;
/// A request body up to this size is written together with the head, in one write.
const WRITE_WITH_HEAD: usize = 64 * 1024;

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

    /// Send a signed GET (empty body) or PUT and read its response head. None: a GET's
    /// answer has a shape left to hyper (see the module doc); send the request again there.
    /// Errors before a complete head say whether another attempt on a fresh connection may
    /// succeed, as hyper's do (`Error::retry_on_fresh_connection`). `host` names the server in
    /// errors.
    pub async fn send(
        self: &Arc<Pool>,
        request: &Request<Bytes>,
        host: &str,
        stall_grace: Duration,
    ) -> Result<Option<Response<DirectBody>>> {
        let uri = request.uri();
        let origin = format!("{}://{}", uri.scheme_str().unwrap_or("http"), uri.authority().map_or("", |a| a.as_str()));
        let mut io = match self.checkout(&origin) {
            Some(io) => io,
            // Boxed: a connection attempt's state (TLS handshake, proxy tunnel) is most of
            // this future's size, and every request's future would otherwise carry it inline
            // and be copied whole each time it moves (into a task, a batch's list).
            None => Box::pin(self.connect(uri, host)).await?,
        };
        let sending = |e: io::Error| before_response(&e, "sending the request failed");
        let mut head = request_head(request);
        let body = request.body();
        if body.len() <= WRITE_WITH_HEAD {
            head.extend_from_slice(body);
            write_all(&mut io, &head).await.map_err(sending)?;
        } else {
            write_all(&mut io, &head).await.map_err(sending)?;
            write_all(&mut io, body).await.map_err(sending)?;
        }
        let retry_elsewhere = request.method() == Method::GET;
        let mut head = read_head(&mut io, Vec::new()).await?;
        while !retry_elsewhere && head.status.is_informational() && head.status != StatusCode::SWITCHING_PROTOCOLS {
            // `100 Continue` and the like: the final answer follows.
            head = read_head(&mut io, std::mem::take(&mut head.early)).await?;
        }
        let (length, keep_alive, early) = match head.framing() {
            // A PUT's answer with header bytes the `http` crate refused: those headers are
            // left out, the framing stands.
            Framing::Length(length) if head.clean || !retry_elsewhere => {
                (length, head.keep_alive(), std::mem::take(&mut head.early))
            }
            Framing::Unframed(unframed) if !retry_elsewhere => {
                let whole = read_unframed(&mut io, unframed, std::mem::take(&mut head.early), stall_grace)
                    .await
                    .map_err(|mut e| {
                        e.http_status = head.status.as_u16();
                        e
                    })?;
                (whole.len() as u64, false, whole)
            }
            // A GET's answer of another shape: sent again through hyper.
            _ => return Ok(None),
        };
        let Head { status, version, headers, .. } = head;
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
                let mut early = early;
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

/// Read a response head; `carry` holds bytes already read after an earlier (interim) head.
async fn read_head(io: &mut Conn, carry: Vec<u8>) -> Result<Head> {
    let mut filled = carry.len();
    let mut buf = carry;
    buf.resize(filled.max(HEAD_READ), 0);
    let mut parse_first = filled > 0;
    loop {
        if filled == buf.len() {
            if buf.len() >= MAX_HEAD {
                return Err(Error::protocol(format!("the response head is longer than {MAX_HEAD} bytes")));
            }
            buf.resize(buf.len() * 2, 0);
        }
        if !std::mem::take(&mut parse_first) {
            let n = read(io, &mut buf[filled..]).await.map_err(|e| before_response(&e, "reading the response failed"))?;
            if n == 0 {
                let what = if filled == 0 { "the connection closed before a response" } else { "the connection closed inside the response head" };
                let mut err = Error::new(ErrorKind::Network, what);
                err.retry_on_fresh_connection = true;
                return Err(err);
            }
            filled += n;
        }
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

/// How a response's body is delimited (RFC 9112, section 6.3).
#[derive(Debug, PartialEq)]
enum Framing {
    /// Exactly one all-digit `Content-Length`, no `Transfer-Encoding`: read as it comes.
    Length(u64),
    /// Any other shape (read whole by [`read_unframed`], for a PUT).
    Unframed(Unframed),
}

/// The shapes of body not delimited by one `Content-Length`.
#[derive(Debug, PartialEq)]
enum Unframed {
    /// No body whatever the headers say: 1xx, 204, 304.
    Empty,
    /// `Transfer-Encoding` ending in `chunked`.
    Chunked,
    /// Until the server closes the connection: no length, or another transfer coding.
    UntilClose,
    /// Several or malformed `Content-Length`s: where the body ends is unknown.
    Invalid,
}

impl Head {
    fn framing(&self) -> Framing {
        if self.status.is_informational() || self.status == StatusCode::NO_CONTENT || self.status == StatusCode::NOT_MODIFIED {
            return Framing::Unframed(Unframed::Empty);
        }
        if let Some(coding) = self.headers.get_all(TRANSFER_ENCODING).iter().next_back() {
            let last = coding.to_str().ok().and_then(|v| v.rsplit(',').next()).map(str::trim);
            let chunked = last.is_some_and(|c| c.eq_ignore_ascii_case("chunked"));
            return Framing::Unframed(if chunked { Unframed::Chunked } else { Unframed::UntilClose });
        }
        let mut lengths = self.headers.get_all(CONTENT_LENGTH).iter();
        match (lengths.next(), lengths.next()) {
            (None, _) => Framing::Unframed(Unframed::UntilClose),
            (Some(only), None) => {
                let text = only.to_str().unwrap_or("");
                match text.parse() {
                    Ok(length) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => Framing::Length(length),
                    _ => Framing::Unframed(Unframed::Invalid),
                }
            }
            _ => Framing::Unframed(Unframed::Invalid),
        }
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

/// The whole body of an answer framed otherwise than by one `Content-Length` (a PUT's: see
/// the module doc), up to [`MAX_BUFFERED`] bytes; `raw` holds the bytes read after the head.
/// The connection is not reused afterwards, so reading stops at the limit.
async fn read_unframed(io: &mut Conn, framing: Unframed, mut raw: Vec<u8>, stall_grace: Duration) -> Result<Vec<u8>> {
    match framing {
        Unframed::Empty => Ok(Vec::new()),
        Unframed::Invalid => Err(Error::protocol("the response's Content-Length is not one number: where its body ends is unknown")),
        Unframed::UntilClose => {
            while raw.len() < MAX_BUFFERED {
                if !read_more_or_end(io, &mut raw, stall_grace).await? {
                    break;
                }
            }
            raw.truncate(MAX_BUFFERED);
            Ok(raw)
        }
        Unframed::Chunked => {
            let mut body = Vec::new();
            let mut at = 0;
            loop {
                let (line, size) = match httparse::parse_chunk_size(&raw[at..]) {
                    Ok(httparse::Status::Complete(parsed)) => parsed,
                    Ok(httparse::Status::Partial) => {
                        read_more(io, &mut raw, stall_grace).await?;
                        continue;
                    }
                    Err(_) => return Err(Error::protocol("the response's chunked body has an invalid chunk size")),
                };
                at += line;
                if size == 0 {
                    return Ok(body); // trailers are not read: the connection is closed
                }
                let take = usize::try_from(size).unwrap_or(usize::MAX).min(MAX_BUFFERED - body.len());
                while raw.len() < at + take {
                    read_more(io, &mut raw, stall_grace).await?;
                }
                body.extend_from_slice(&raw[at..at + take]);
                if body.len() == MAX_BUFFERED {
                    return Ok(body);
                }
                // The chunk's data and the CRLF after it.
                at += take + 2;
                while raw.len() < at {
                    read_more(io, &mut raw, stall_grace).await?;
                }
            }
        }
    }
}

/// Append the next bytes the server sends to `raw`; the end of the stream is an error.
async fn read_more(io: &mut Conn, raw: &mut Vec<u8>, stall_grace: Duration) -> Result<()> {
    if read_more_or_end(io, raw, stall_grace).await? {
        Ok(())
    } else {
        Err(Error::new(ErrorKind::Network, "the connection closed inside the response body"))
    }
}

/// Append the next bytes the server sends to `raw`: false at the end of the stream.
async fn read_more_or_end(io: &mut Conn, raw: &mut Vec<u8>, stall_grace: Duration) -> Result<bool> {
    // Read straight into `raw`'s tail: a buffer on the stack here would be held across the
    // await, making every request's future (this is reachable from `Pool::send`) that much
    // larger, and futures are copied whole when they move.
    let filled = raw.len();
    raw.resize(filled + READ_MORE, 0);
    let read = read_body_bytes(io, &mut raw[filled..], stall_grace).await;
    raw.truncate(filled + *read.as_ref().unwrap_or(&0));
    Ok(read? > 0)
}

/// One read of body bytes into `dst`, failing if none comes within `stall_grace`. Ok(0): the
/// server closed the connection.
async fn read_body_bytes(io: &mut Conn, dst: &mut [u8], stall_grace: Duration) -> Result<usize> {
    match tokio::time::timeout(stall_grace, read(io, dst)).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(Error::new(ErrorKind::Network, format!("reading the body failed: {e}"))),
        Err(_) => Err(Error::new(ErrorKind::Network, format!("the body stalled: no byte for {stall_grace:?}"))),
    }
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
            match read_body_bytes(io, dst, self.stall_grace).await {
                Ok(n) if n > 0 => n,
                failed => {
                    self.io = None;
                    return Err(failed.err().unwrap_or_else(|| {
                        let closed = format!("the connection closed after {read_so_far} of {} body bytes", self.length);
                        Error::new(ErrorKind::Network, closed)
                    }));
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

    /// Every request a test server received (head and body), in order.
    type Received = Arc<Mutex<Vec<Vec<u8>>>>;

    /// A server answering every request on a connection with `answer`; counts connections.
    async fn serve(answer: &'static [u8]) -> (String, Arc<AtomicUsize>) {
        let (url, accepted, _) = serve_logged(answer).await;
        (url, accepted)
    }

    /// As `serve`, keeping each request with its `Content-Length` body; closes the
    /// connection after an answer that says `Connection: close`.
    async fn serve_logged(answer: &'static [u8]) -> (String, Arc<AtomicUsize>, Received) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/bkt/key", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let received = Received::default();
        let (counter, log) = (accepted.clone(), received.clone());
        let closes = answer.windows(17).any(|w| w.eq_ignore_ascii_case(b"connection: close"));
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let log = log.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut byte = [0u8; 1];
                    while sock.read(&mut byte).await.unwrap_or(0) == 1 {
                        request.push(byte[0]);
                        if request.ends_with(b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&request).to_ascii_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length: "))
                                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                            let mut body = vec![0u8; length];
                            sock.read_exact(&mut body).await.unwrap();
                            request.extend_from_slice(&body);
                            log.lock().unwrap().push(std::mem::take(&mut request));
                            if sock.write_all(answer).await.is_err() || closes {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (url, accepted, received)
    }

    fn pool() -> Arc<Pool> {
        let connector = crate::connector::build(&crate::ClientOptions::default()).unwrap();
        Pool::new(connector, Duration::from_secs(15))
    }

    fn get_request(url: &str) -> Request<Bytes> {
        let uri: http::Uri = url.parse().unwrap();
        let host = uri.authority().unwrap().to_string();
        Request::get(uri).header("host", host).body(Bytes::new()).unwrap()
    }

    /// GET `url` through `pool`, reading the body into place 4 bytes at a time.
    async fn fetch(pool: &Arc<Pool>, url: &str) -> Option<(StatusCode, Vec<u8>)> {
        let response = pool.send(&get_request(url), "test", Duration::from_secs(5)).await.unwrap()?;
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
            let response = pool.send(&get_request(&url), "test", Duration::from_secs(5)).await.unwrap().unwrap();
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
    fn bodies_are_framed_as_rfc_9112_says() {
        let v11 = Version::HTTP_11;
        let framing = |lines: &[(&str, &str)], status| head(lines, status, v11).framing();
        assert_eq!(framing(&[("content-length", "10")], 206), Framing::Length(10));
        assert_eq!(framing(&[("content-length", "0")], 404), Framing::Length(0));
        assert_eq!(framing(&[], 200), Framing::Unframed(Unframed::UntilClose));
        assert_eq!(framing(&[("transfer-encoding", "gzip")], 200), Framing::Unframed(Unframed::UntilClose));
        assert_eq!(framing(&[("transfer-encoding", "chunked")], 200), Framing::Unframed(Unframed::Chunked));
        assert_eq!(framing(&[("transfer-encoding", "gzip, Chunked")], 200), Framing::Unframed(Unframed::Chunked));
        assert_eq!(framing(&[("content-length", "10"), ("transfer-encoding", "chunked")], 200), Framing::Unframed(Unframed::Chunked));
        assert_eq!(framing(&[("content-length", "10"), ("content-length", "10")], 200), Framing::Unframed(Unframed::Invalid));
        assert_eq!(framing(&[("content-length", "+10")], 200), Framing::Unframed(Unframed::Invalid));
        assert_eq!(framing(&[("content-length", "1 0")], 200), Framing::Unframed(Unframed::Invalid));
        assert_eq!(framing(&[("content-length", "10")], 100), Framing::Unframed(Unframed::Empty));
        assert_eq!(framing(&[("content-length", "10")], 204), Framing::Unframed(Unframed::Empty));
        assert_eq!(framing(&[("content-length", "10")], 304), Framing::Unframed(Unframed::Empty));
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

    fn put_request(url: &str, body: &[u8]) -> Request<Bytes> {
        let uri: http::Uri = url.parse().unwrap();
        let host = uri.authority().unwrap().to_string();
        let request = Request::put(uri).header("host", host).header("content-length", body.len());
        request.body(Bytes::copy_from_slice(body)).unwrap()
    }

    /// PUT `body` to `url` through `pool`: the answer's status and whole body.
    async fn put(pool: &Arc<Pool>, url: &str, body: &[u8]) -> Result<(StatusCode, Vec<u8>)> {
        let response = pool.send(&put_request(url, body), "test", Duration::from_secs(5)).await?;
        let response = response.expect("a PUT's answer is never handed back");
        let status = response.status();
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            bytes.extend_from_slice(&chunk?);
        }
        Ok((status, bytes))
    }

    #[test]
    fn put_bodies_are_sent_whole_and_connections_reused() {
        runtime().block_on(async {
            let (url, accepted, received) = serve_logged(b"HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 0\r\n\r\n").await;
            let pool = pool();
            let small = b"0123456789".to_vec();
            // Larger than what is written with the head: head and body go in two writes.
            let large: Vec<u8> = (0..WRITE_WITH_HEAD * 3 + 7).map(|i| (i % 251) as u8).collect();
            for body in [&small, &large, &small] {
                assert_eq!(put(&pool, &url, body).await.unwrap(), (StatusCode::OK, Vec::new()));
                let request = received.lock().unwrap().last().unwrap().clone();
                assert!(request.starts_with(b"PUT /bkt/key HTTP/1.1\r\n"));
                assert!(request.ends_with(body), "the server got the body as sent");
                assert_eq!(idle(&pool), 1);
            }
            assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection for three PUTs");
        });
    }

    #[test]
    fn a_put_skips_interim_answers() {
        runtime().block_on(async {
            let answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            let (url, _, received) = serve_logged(answer).await;
            let pool = pool();
            assert_eq!(put(&pool, &url, b"abc").await.unwrap(), (StatusCode::OK, b"ok".to_vec()));
            assert_eq!(received.lock().unwrap().len(), 1, "sent once");
        });
    }

    #[test]
    fn a_puts_answer_of_another_shape_is_read_whole_and_its_connection_closed() {
        runtime().block_on(async {
            let chunked = b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n<Error>\r\n8\r\n</Error>\r\n0\r\n\r\n";
            let (url, accepted, received) = serve_logged(chunked).await;
            let pool = pool();
            for round in 1..=2 {
                let answer = put(&pool, &url, b"abc").await.unwrap();
                assert_eq!(answer, (StatusCode::FORBIDDEN, b"<Error></Error>".to_vec()));
                assert_eq!(idle(&pool), 0);
                assert_eq!((accepted.load(Ordering::SeqCst), received.lock().unwrap().len()), (round, round));
            }
            let until_close = b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n<Error>boom</Error>";
            let (url, _, received) = serve_logged(until_close).await;
            let answer = put(&pool, &url, b"abc").await.unwrap();
            assert_eq!(answer, (StatusCode::INTERNAL_SERVER_ERROR, b"<Error>boom</Error>".to_vec()));
            assert_eq!(received.lock().unwrap().len(), 1, "sent once");
        });
    }

    #[test]
    fn a_puts_answer_whose_length_is_unknown_is_a_protocol_error() {
        runtime().block_on(async {
            let (url, _, _) = serve_logged(b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nx").await;
            let err = put(&pool(), &url, b"abc").await.unwrap_err();
            assert_eq!(err.kind, ErrorKind::Protocol, "{err}");
        });
    }
}
