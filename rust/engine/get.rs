//! The GET algorithm: fill a caller buffer from `[offset, offset + len)` of an object.
//!
//! 1. The first request is a ranged GET of the first part. Its `Content-Range` gives the
//!    object's total size and its ETag pins the version: no HEAD round trip, and an object
//!    that fits in one part costs exactly one request.
//! 2. The remaining parts go out concurrently with `If-Match: <etag>`, so an object replaced
//!    mid-download fails with `ObjectChanged` instead of arriving torn.
//! 3. Every part streams its body chunks straight into its own disjoint slice of the caller's
//!    buffer (one memcpy per byte) and must deliver exactly the bytes it asked for.
//! 4. A body that breaks off mid-way (reset, truncation) is resumed from the first missing
//!    byte, not restarted. Request-level failures (5xx, SlowDown, connect errors) are retried
//!    by the SDK's standard retry strategy before they reach us.
//!
//! A read runs on the calling thread's runtime (`runtime::block_on_here`): the first part
//! streams there, and the other parts run together in one future (a `FuturesUnordered`)
//! handed to the shared workers (`runtime::on_workers`), which the read awaits — or, if the
//! read ends early, aborts and waits for. In a batch, everything runs on the shared workers.
//! Either way, after success, error or cancellation no write into the buffer can still be in
//! flight, and the code stays free of raw pointers.

use crate::engine::client::{Client, Session};
use crate::engine::error::{Error, ErrorKind, Result};
use crate::engine::head;
use crate::engine::path::{check_bucket, check_key};
use crate::engine::runtime;
use aws_sdk_s3::primitives::ByteStream;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;

/// How many times one part's body may break off and be resumed before we give up.
const MAX_BODY_RESUMES: u32 = 5;
const RESUME_BACKOFF: Duration = Duration::from_millis(50);

/// Where the bytes of one read go.
pub enum Destination<'a> {
    /// The caller's buffer: receives bytes `[offset, offset + len)`.
    Caller(&'a mut [u8]),
    /// A buffer the engine allocates once the object's size is known (from the first
    /// response's headers, before any body byte arrives), sized exactly to what is read:
    /// at most `max_len` bytes from `offset`.
    Allocate { max_len: u64 },
}

impl Destination<'_> {
    fn max_len(&self) -> u64 {
        match self {
            Destination::Caller(buf) => buf.len() as u64,
            Destination::Allocate { max_len } => *max_len,
        }
    }
}

/// The outcome of one read.
#[derive(Debug)]
pub struct Fetched {
    /// Bytes written: fewer than asked only when the object ended first.
    pub written: u64,
    /// The engine-allocated buffer, for [`Destination::Allocate`] (exactly `written` bytes).
    pub owned: Option<Vec<u8>>,
}

/// One read of a batch.
pub struct GetRequest<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub offset: u64,
    pub dest: Destination<'a>,
}

/// Read an object's bytes from `offset` into `dest`.
///
/// Writes 0 bytes when `offset` is at or past the end (like `readinto` at EOF). On error a
/// caller buffer's contents are unspecified.
pub async fn get(client: &Client, bucket: &str, key: &str, offset: u64, dest: Destination<'_>) -> Result<Fetched> {
    check_bucket(bucket)?;
    check_key(key)?;
    let session = client.session().await?;
    get_with_session(client, &session, bucket, key, offset, dest)
        .await
        .map_err(|e| e.context(format!("s3://{bucket}/{key}")))
}

/// Run a batch of reads sharing the client's concurrency budget; one result per request.
pub async fn get_many(client: &Client, requests: Vec<GetRequest<'_>>) -> Vec<Result<Fetched>> {
    let session = match client.session().await {
        Ok(s) => s,
        Err(e) => return requests.iter().map(|_| Err(e.clone())).collect(),
    };
    let session = &session;
    let reads = requests.into_iter().map(|r| async move {
        check_bucket(r.bucket)?;
        check_key(r.key)?;
        get_with_session(client, session, r.bucket, r.key, r.offset, r.dest)
            .await
            .map_err(|e| e.context(format!("s3://{}/{}", r.bucket, r.key)))
    });
    futures_util::future::join_all(reads).await
}

async fn get_with_session(
    client: &Client,
    session: &Session,
    bucket: &str,
    key: &str,
    offset: u64,
    dest: Destination<'_>,
) -> Result<Fetched> {
    let want = dest.max_len();
    if want == 0 {
        // Nothing to read, but a missing object must still be reported.
        head::head_object(session, bucket, key).await?;
        return Ok(Fetched::empty(&dest));
    }
    let first_len = want.min(client.parts().first());

    let (first, permit) = match first_request(session, bucket, key, offset, first_len).await? {
        FirstResponse::PastEnd => return Ok(Fetched::empty(&dest)),
        FirstResponse::WholeObject { body, total, permit } => {
            // The server ignored the Range (or the object is empty): one stream holds it all.
            let n = want.min(total.saturating_sub(offset));
            let mut target = Target::new(dest, n)?;
            copy_window(body, total, offset, target.slice(), permit).await?;
            return Ok(target.finish());
        }
        FirstResponse::Partial(first, permit) => (first, permit),
    };

    let n = want.min(first.total - offset);
    let mut target = Target::new(dest, n)?;
    let (first_buf, rest) = target.slice().split_at_mut(first_len.min(n) as usize);
    let object = ObjectVersion { bucket, key, etag: first.etag.as_deref(), total: first.total };

    let first_part = fill_part(session, object, offset, first_buf, Some((first.body, permit)));
    let rest_start = offset + first_len;
    let part_size = client.parts().rest(n);
    if rest.is_empty() {
        first_part.await?;
    } else if runtime::on_calling_thread() {
        // The first body keeps streaming on this thread's connection; the other parts go to
        // the shared workers so a large object is received (and, over TLS, decrypted) on
        // every core, not only on the calling thread.
        let shared = client.shared_session().await?;
        // SAFETY: awaited right below by try_join, which polls it to completion or drops it.
        let rest_parts = unsafe {
            runtime::on_workers(async { fill_parts(&shared, object, rest_start, rest, part_size).await })
        };
        futures_util::future::try_join(first_part, rest_parts).await?;
    } else {
        futures_util::future::try_join(first_part, fill_parts(session, object, rest_start, rest, part_size)).await?;
    }
    Ok(target.finish())
}

/// Fill `buf` with object bytes from `start` on, one ranged GET per `part_size` bytes, all in
/// flight at once (bounded by the session's request budget).
async fn fill_parts(
    session: &Session,
    object: ObjectVersion<'_>,
    mut start: u64,
    mut buf: &mut [u8],
    part_size: u64,
) -> Result<()> {
    let mut parts = FuturesUnordered::new();
    while !buf.is_empty() {
        let len = (buf.len() as u64).min(part_size) as usize;
        let (slice, tail) = buf.split_at_mut(len);
        parts.push(fill_part(session, object, start, slice, None));
        start += len as u64;
        buf = tail;
    }
    while let Some(done) = parts.next().await {
        // On the first failure, returning drops every other part future right here.
        done?;
    }
    Ok(())
}

impl Fetched {
    fn empty(dest: &Destination<'_>) -> Fetched {
        let owned = matches!(dest, Destination::Allocate { .. }).then(Vec::new);
        Fetched { written: 0, owned }
    }
}

/// The `n` bytes a read fills: a prefix of the caller's buffer, or a fresh allocation.
enum Target<'a> {
    Caller(&'a mut [u8]),
    Owned(Vec<u8>),
}

impl<'a> Target<'a> {
    fn new(dest: Destination<'a>, n: u64) -> Result<Self> {
        let n = usize::try_from(n)
            .map_err(|_| Error::new(ErrorKind::OutOfMemory, "object too large for this platform"))?;
        Ok(match dest {
            Destination::Caller(buf) => Target::Caller(&mut buf[..n]),
            Destination::Allocate { .. } => Target::Owned(zeroed_vec(n)?),
        })
    }

    fn slice(&mut self) -> &mut [u8] {
        match self {
            Target::Caller(buf) => buf,
            Target::Owned(v) => v,
        }
    }

    fn finish(self) -> Fetched {
        match self {
            Target::Caller(buf) => Fetched { written: buf.len() as u64, owned: None },
            Target::Owned(v) => Fetched { written: v.len() as u64, owned: Some(v) },
        }
    }
}

/// A zero-filled buffer that reports allocation failure instead of aborting the process
/// (a huge object must not kill the caller's interpreter). `alloc_zeroed` is calloc: large
/// blocks come straight from the OS as untouched zero pages, so this costs no extra pass.
fn zeroed_vec(n: usize) -> Result<Vec<u8>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let oom = || Error::new(ErrorKind::OutOfMemory, format!("cannot allocate {n} bytes"));
    let layout = std::alloc::Layout::array::<u8>(n).map_err(|_| oom())?;
    // SAFETY: `layout` has non-zero size. On success the block is n initialized (zero) bytes
    // allocated by the global allocator with exactly this layout, which is what
    // Vec::from_raw_parts requires for capacity n.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    if ptr.is_null() {
        return Err(oom());
    }
    advise_huge_pages(ptr, n);
    Ok(unsafe { Vec::from_raw_parts(ptr, n, n) })
}

/// Ask for transparent huge pages on a large fresh buffer: faulting it in 2 MiB at a time
/// instead of 4 KiB halves the cost of `get()` on big objects (the kernel zero-fills every
/// page on first touch either way). Advisory: failure changes nothing.
fn advise_huge_pages(ptr: *mut u8, n: usize) {
    const HUGE: usize = 2 * 1024 * 1024;
    if n < 2 * HUGE {
        return;
    }
    let page = 4096usize;
    let start = (ptr as usize + page - 1) & !(page - 1);
    let end = (ptr as usize + n) & !(page - 1);
    if end > start {
        // SAFETY: [start, end) lies inside the allocation we own; madvise does not touch data.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
}

/// What the first ranged GET told us.
struct FirstPart {
    body: ByteStream,
    total: u64,
    etag: Option<String>,
}

enum FirstResponse {
    /// 206: the object is at least partly in range; `total` known.
    Partial(FirstPart, OwnedSemaphorePermit),
    /// 200 to a ranged request: the body is the whole object of `total` bytes.
    WholeObject { body: ByteStream, total: u64, permit: OwnedSemaphorePermit },
    /// `offset` is at or past the end of the object.
    PastEnd,
}

async fn first_request(session: &Session, bucket: &str, key: &str, offset: u64, len: u64) -> Result<FirstResponse> {
    let permit = session.acquire().await?;
    let sent = session
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(range_header(offset, len))
        .send()
        .await;
    let out = match sent {
        Ok(out) => out,
        Err(e) => {
            let err = Error::from(e);
            if err.kind == ErrorKind::InvalidRange {
                // 416: the range starts at or past the end (always so for a 0-byte object on
                // servers that answer ranged GETs of empty objects with 416). Confirm with HEAD.
                drop(permit);
                let size = head::head_object(session, bucket, key).await?.sizes[0];
                if offset >= size {
                    return Ok(FirstResponse::PastEnd);
                }
                return Err(err);
            }
            return Err(err);
        }
    };
    let etag = out.e_tag().map(str::to_string);
    match out.content_range() {
        Some(cr) => {
            let range = ContentRange::parse(cr)?;
            if range.start != offset {
                return Err(Error::protocol(format!(
                    "asked for bytes from {offset}, server sent Content-Range {cr:?}"
                )));
            }
            Ok(FirstResponse::Partial(FirstPart { body: out.body, total: range.total, etag }, permit))
        }
        None => {
            let total = out.content_length().unwrap_or(0).max(0) as u64;
            if offset >= total && total > 0 {
                return Ok(FirstResponse::PastEnd);
            }
            Ok(FirstResponse::WholeObject { body: out.body, total, permit })
        }
    }
}

/// Copy `[offset, offset + buf.len())` out of a body holding the whole object.
async fn copy_window(
    mut body: ByteStream,
    total: u64,
    offset: u64,
    buf: &mut [u8],
    _permit: OwnedSemaphorePermit,
) -> Result<u64> {
    let end = (offset + buf.len() as u64).min(total);
    if end <= offset {
        return Ok(0);
    }
    let mut pos: u64 = 0; // absolute position of the next body byte
    while pos < end {
        let chunk = match body.next().await {
            Some(c) => c.map_err(body_error)?,
            None => break,
        };
        let (chunk_start, chunk_end) = (pos, pos + chunk.len() as u64);
        let lo = chunk_start.max(offset);
        let hi = chunk_end.min(end);
        if lo < hi {
            buf[(lo - offset) as usize..(hi - offset) as usize]
                .copy_from_slice(&chunk[(lo - chunk_start) as usize..(hi - chunk_start) as usize]);
        }
        pos = chunk_end;
    }
    if pos < end {
        return Err(Error::new(
            ErrorKind::Network,
            format!("body ended after {pos} of {total} bytes"),
        ));
    }
    Ok(end - offset)
}

/// Identity of the object version every part must come from.
#[derive(Clone, Copy)]
struct ObjectVersion<'a> {
    bucket: &'a str,
    key: &'a str,
    etag: Option<&'a str>,
    total: u64,
}

/// Fill `slice` with object bytes `[start, start + slice.len())`, resuming broken bodies.
/// `first` is the already-open response of the first request, if this is that part.
async fn fill_part(
    session: &Session,
    object: ObjectVersion<'_>,
    start: u64,
    slice: &mut [u8],
    mut first: Option<(ByteStream, OwnedSemaphorePermit)>,
) -> Result<()> {
    let mut filled = 0usize;
    let mut resumes = 0u32;
    loop {
        let (body, _permit) = match first.take() {
            Some(opened) => opened,
            None => open_part(session, object, start + filled as u64, (slice.len() - filled) as u64).await?,
        };
        match stream_into(body, &mut slice[filled..]).await {
            Ok(()) => return Ok(()),
            Err((got, err)) => {
                filled += got;
                if !err.is_transient() || resumes >= MAX_BODY_RESUMES {
                    return Err(err.context(format!(
                        "bytes {}-{} (after {resumes} resumes)",
                        start,
                        start + slice.len() as u64 - 1
                    )));
                }
                resumes += 1;
                tokio::time::sleep(RESUME_BACKOFF * resumes).await;
            }
        }
    }
}

async fn open_part(
    session: &Session,
    object: ObjectVersion<'_>,
    start: u64,
    len: u64,
) -> Result<(ByteStream, OwnedSemaphorePermit)> {
    let permit = session.acquire().await?;
    let out = session
        .s3
        .get_object()
        .bucket(object.bucket)
        .key(object.key)
        .range(range_header(start, len))
        .set_if_match(object.etag.map(str::to_string))
        .send()
        .await?;
    let cr = out
        .content_range()
        .ok_or_else(|| Error::protocol("ranged GET answered without Content-Range"))?;
    let range = ContentRange::parse(cr)?;
    if range.total != object.total {
        return Err(Error::new(
            ErrorKind::ObjectChanged,
            format!("object size changed from {} to {} during the read", object.total, range.total),
        ));
    }
    if range.start != start || range.end != start + len - 1 {
        return Err(Error::protocol(format!(
            "asked for bytes {start}-{}, server sent Content-Range {cr:?}",
            start + len - 1
        )));
    }
    Ok((out.body, permit))
}

/// Copy a body into `dst`, which it must fill exactly. On failure, report how many bytes
/// landed so the caller can resume after them.
async fn stream_into(mut body: ByteStream, dst: &mut [u8]) -> std::result::Result<(), (usize, Error)> {
    let mut got = 0usize;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| (got, body_error(e)))?;
        let end = got + chunk.len();
        if end > dst.len() {
            return Err((got, Error::protocol(format!(
                "body is longer than the {} bytes requested", dst.len()
            ))));
        }
        dst[got..end].copy_from_slice(&chunk);
        got = end;
    }
    if got < dst.len() {
        return Err((got, Error::new(
            ErrorKind::Network,
            format!("body ended after {got} of {} bytes", dst.len()),
        )));
    }
    Ok(())
}

fn body_error(e: aws_smithy_types::byte_stream::error::Error) -> Error {
    Error::new(
        ErrorKind::Network,
        format!("reading the body failed: {}", aws_smithy_types::error::display::DisplayErrorContext(&e)),
    )
}

fn range_header(start: u64, len: u64) -> String {
    debug_assert!(len > 0);
    format!("bytes={}-{}", start, start + len - 1)
}

/// A parsed `Content-Range: bytes START-END/TOTAL` (206 responses always carry a total).
#[derive(Debug, PartialEq, Eq)]
struct ContentRange {
    start: u64,
    end: u64,
    total: u64,
}

impl ContentRange {
    fn parse(header: &str) -> Result<Self> {
        let bad = || Error::protocol(format!("cannot parse Content-Range {header:?}"));
        let rest = header.trim().strip_prefix("bytes ").ok_or_else(bad)?;
        let (range, total) = rest.split_once('/').ok_or_else(bad)?;
        let (start, end) = range.split_once('-').ok_or_else(bad)?;
        let parsed = ContentRange {
            start: start.trim().parse().map_err(|_| bad())?,
            end: end.trim().parse().map_err(|_| bad())?,
            total: total.trim().parse().map_err(|_| bad())?,
        };
        if parsed.start > parsed.end || parsed.end >= parsed.total {
            return Err(bad());
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parses() {
        assert_eq!(
            ContentRange::parse("bytes 0-99/1000").unwrap(),
            ContentRange { start: 0, end: 99, total: 1000 }
        );
        assert!(ContentRange::parse("bytes 0-99/*").is_err());
        assert!(ContentRange::parse("bytes 5-4/10").is_err());
        assert!(ContentRange::parse("bytes 0-10/10").is_err());
        assert!(ContentRange::parse("items 0-1/2").is_err());
    }

    #[test]
    fn range_header_is_inclusive() {
        assert_eq!(range_header(0, 1), "bytes=0-0");
        assert_eq!(range_header(10, 5), "bytes=10-14");
    }
}
