//! The GET algorithm: fill a caller buffer from `[offset, offset + len)` of an object.
//!
//! 1. The first request is a ranged GET of the first part. Its `Content-Range` gives the
//!    object's total size and its ETag (else Last-Modified) pins the version: no HEAD round
//!    trip, and an object that fits in one part costs exactly one request.
//! 2. The remaining parts go out concurrently with `If-Match: <etag>`, and every response's
//!    ETag / Last-Modified is compared with the first's whether or not the server honoured
//!    `If-Match`: an object replaced mid-download fails with `ObjectChanged`, never arrives
//!    torn. A server that sends neither validator gets the window in one request.
//! 3. Every part streams its body chunks straight into its own disjoint slice of the caller's
//!    buffer (one memcpy per byte) and must deliver exactly the bytes it asked for; a part is
//!    done when its slice is full. (The destination may also be a scatter window, the slices
//!    of several ranges with gaps between them: `engine::window`.)
//! 4. A body that breaks off mid-way (reset, truncation) is resumed from the first missing
//!    byte, not restarted. Request-level failures (5xx, SlowDown, connect errors) are retried
//!    by the data plane's standard retries before they reach us; one that failed before any
//!    response byte because its pooled connection was bad gets another attempt on a fresh
//!    connection (`engine::http`).
//! 5. A server that ignores Range answers 200 with the whole object, perhaps chunked with no
//!    length: that body is counted to its end, never taken as empty.
//! 6. A full-object checksum the server announces (`x-amz-checksum-*`) is verified when the
//!    read covers the whole object (`engine::checksum`).
//!
//! A single read runs on the calling thread's runtime (`Placement::CallingThread`): the first
//! part streams there, and — when the caller granted an `Offload` — every other part is its
//! own task on the shared workers (`Placement::spread`), which the read awaits — or, if the
//! read ends early, aborts and waits for. One task per part, not one for them all: a task is
//! polled by one worker at a time, and the parts' socket reads and copies are most of a large
//! read's CPU. A batch spreads the same way, one task per read. Either way, after success,
//! error or cancellation no write into the buffer can still be in flight, and the code stays
//! free of raw pointers.

use crate::checksum::{self, Announced, ChecksumMode, Verifier};
use crate::client::{Client, Session, MAX_PART_SIZE};
use crate::error::{Error, ErrorKind, Result};
use crate::get_request::{self, Response, Validator};
use crate::head;
use crate::http::{Body, Connection, DirectBody, ObjectId};
use crate::parts::PartPlan;
use crate::path::{check_bucket, check_key};
use crate::runtime::Placement;
use crate::result_buffer::ResultBuffer;
use crate::window::{Region, Scatter, Window};
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;

/// How many times one part's body may break off and be resumed before we give up.
const MAX_BODY_RESUMES: u32 = 5;
const RESUME_BACKOFF: Duration = Duration::from_millis(50);
/// Where the gap bytes of a scatter window are read to be dropped, a piece at a time.
const GAP_SCRATCH: usize = 64 * 1024;

/// Where the bytes of one read go.
pub enum Destination<'a> {
    /// The caller's buffer: receives bytes `[offset, offset + len)`.
    Caller(&'a mut [u8]),
    /// Pieces of the caller's memory at offsets in the window `[offset, offset + len)`; the
    /// window's other bytes are read and dropped (a coalesced span of `get_ranges`).
    Scatter(Scatter<'a>),
    /// A buffer the engine allocates once the object's size is known (from the first
    /// response's headers, before any body byte arrives), sized exactly to what is read:
    /// at most `max_len` bytes from `offset`.
    Allocate { max_len: u64 },
}

impl Destination<'_> {
    /// The same destination, borrowed again (for a second attempt of a read).
    fn reborrow(&mut self) -> Destination<'_> {
        match self {
            Destination::Caller(buf) => Destination::Caller(buf),
            Destination::Scatter(s) => Destination::Scatter(s.reborrow()),
            Destination::Allocate { max_len } => Destination::Allocate { max_len: *max_len },
        }
    }

    fn max_len(&self) -> u64 {
        match self {
            Destination::Caller(buf) => buf.len() as u64,
            Destination::Scatter(s) => s.len() as u64,
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
    pub owned: Option<ResultBuffer>,
}

/// One read of a batch.
pub struct GetRequest<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub offset: u64,
    pub dest: Destination<'a>,
    pub options: ReadOptions<'a>,
}

/// Which version of an object a read must return.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions<'a> {
    /// The ETag the object must have (e.g. from a listing or a HEAD): every request of the
    /// read carries `If-Match` with it, and a different version fails with `ObjectChanged`.
    /// Quotes are added when missing (S3 lists ETags quoted).
    pub if_match: Option<&'a str>,
    /// Read this version of a versioned bucket's object (`versionId`).
    pub version_id: Option<&'a str>,
    /// Bytes per ranged GET of this read, the first one included; None: the client's part
    /// size. A caller running several reads side by side (windows of one download) wants
    /// few requests per read; one read alone wants several in flight.
    pub part_size: Option<u64>,
}

impl ReadOptions<'_> {
    /// InvalidArgument for a part size of 0 or over 5 GiB (the bounds of the client's).
    pub fn check(&self) -> Result<()> {
        match self.part_size {
            Some(0) => Err(Error::invalid("part_size must be at least 1 byte")),
            Some(n) if n > MAX_PART_SIZE => Err(Error::invalid(format!("part_size must be at most 5 GiB, got {n}"))),
            _ => Ok(()),
        }
    }

    /// How this read is cut into requests: its own part size, else the client's plan.
    pub(crate) fn parts(&self, client: &Client) -> PartPlan {
        self.part_size.map_or(client.parts(), PartPlan::fixed)
    }
}

/// Read an object's bytes from `offset` into `dest`.
///
/// Writes 0 bytes when `offset` is at or past the end (like `readinto` at EOF). On error a
/// caller buffer's contents are unspecified. `placement` says where the returned future
/// will be polled (see `runtime::Placement`).
pub async fn get(
    client: &Client,
    placement: Placement,
    bucket: &str,
    key: &str,
    offset: u64,
    dest: Destination<'_>,
    options: ReadOptions<'_>,
) -> Result<Fetched> {
    check_bucket(bucket)?;
    check_key(key)?;
    let session = client.session(placement).await?;
    get_with_session(client, placement, &session, bucket, key, offset, dest, options)
        .await
        .map_err(|e| e.context(format!("s3://{bucket}/{key}")))
}

/// Run a batch of reads sharing the client's concurrency budget; one result per request.
/// When `placement` spreads, every read is its own task on the shared workers.
pub async fn get_many(client: &Client, placement: Placement, requests: Vec<GetRequest<'_>>) -> Vec<Result<Fetched>> {
    let (session, read_placement) = client.piece_session(placement).await;
    let session = match session {
        Ok(s) => s,
        Err(e) => return requests.iter().map(|_| Err(e.clone())).collect(),
    };
    let session = &session;
    let reads = requests.into_iter().map(|r| {
        placement.spread(async move {
            check_bucket(r.bucket)?;
            check_key(r.key)?;
            get_with_session(client, read_placement, session, r.bucket, r.key, r.offset, r.dest, r.options)
                .await
                .map_err(|e| e.context(format!("s3://{}/{}", r.bucket, r.key)))
        })
    });
    futures_util::future::join_all(reads).await
}

/// How many times a whole read is attempted when a response turns out not to belong to it
/// (see `confirm_whole_object`).
const READ_ATTEMPTS: u32 = 2;

// One argument per thing a read is about; grouping them would only move the list elsewhere.
#[allow(clippy::too_many_arguments)]
async fn get_with_session(
    client: &Client,
    placement: Placement,
    session: &Session,
    bucket: &str,
    key: &str,
    offset: u64,
    dest: Destination<'_>,
    options: ReadOptions<'_>,
) -> Result<Fetched> {
    options.check()?;
    let id = ObjectId { bucket, key, version_id: options.version_id };
    let wanted = options.if_match.map(|etag| Validator { etag: Some(quoted(etag)), last_modified: None });
    read_pinned(client, placement, session, id, offset, dest, wanted.as_ref(), options.parts(client)).await
}

/// Read `[offset, offset + dest.max_len())` of the version `wanted` names (any version when
/// None), in requests of the sizes `parts` gives.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn read_pinned(
    client: &Client,
    placement: Placement,
    session: &Session,
    id: ObjectId<'_>,
    offset: u64,
    mut dest: Destination<'_>,
    wanted: Option<&Validator>,
    parts: PartPlan,
) -> Result<Fetched> {
    let mut attempt = 1;
    loop {
        match read_once(client, placement, session, id, offset, dest.reborrow(), wanted, parts).await {
            Err(e) if e.retry_on_fresh_connection && attempt < READ_ATTEMPTS => attempt += 1,
            result => return result,
        }
    }
}

/// An ETag as S3 sends and compares it: quoted (`"abc"`); weak ones (`W/"abc"`) as given.
pub(crate) fn quoted(etag: &str) -> String {
    if etag.starts_with('"') || etag.starts_with("W/") {
        etag.to_string()
    } else {
        format!("\"{etag}\"")
    }
}

/// `wanted`: the version the caller pinned the read to (`ReadOptions::if_match`), if any.
#[allow(clippy::too_many_arguments)]
async fn read_once(
    client: &Client,
    placement: Placement,
    session: &Session,
    id: ObjectId<'_>,
    offset: u64,
    dest: Destination<'_>,
    wanted: Option<&Validator>,
    parts: PartPlan,
) -> Result<Fetched> {
    let want = dest.max_len();
    if want == 0 {
        // Nothing to read, but a missing object (or another version) must still be reported.
        let (_, found) = head::identity(session, id, Connection::Pooled).await?;
        if let Some(wanted) = wanted {
            wanted.check(&found)?;
        }
        return Ok(Fetched::empty(&dest));
    }
    let mode = client.checksum_mode();
    let first_len = want.min(parts.first());

    let (first, permit) = match first_request(session, id, offset, first_len, wanted).await? {
        FirstResponse::PastEnd => return Ok(Fetched::empty(&dest)),
        FirstResponse::Opened(first, permit) => (first, permit),
    };
    let Some(range) = first.range else {
        // 200: the server ignored the Range. This one response holds the whole object.
        let (fetched, seen) = read_whole_body(first, permit, offset, dest, mode).await?;
        confirm_whole_object(session, id, seen).await?;
        return Ok(fetched);
    };
    if range.start != offset {
        return Err(Error::protocol(format!(
            "asked for bytes from {offset}, server sent Content-Range bytes {}-{}/{}",
            range.start, range.end, range.total
        )));
    }
    let total = range.total;
    let n = want.min(total - offset);
    let whole_object = offset == 0 && n == total;
    let multi_request = n > first_len;
    let mut announced = match mode {
        ChecksumMode::Off => None,
        _ if whole_object => first.checksum.clone(),
        _ => None,
    };
    if mode == ChecksumMode::Required && announced.is_none() {
        if !whole_object {
            return Err(checksum::unavailable(
                "a byte range cannot be verified: S3 checksums describe whole objects",
            ));
        }
        if first.checksum_present {
            return Err(checksum::unavailable(
                "the object has only a composite checksum (a checksum of its upload's part \
                 checksums), which a read cannot recompute",
            ));
        }
        if first.validator.is_empty() && multi_request {
            return Err(checksum::unavailable(
                "the server sends neither ETag nor Last-Modified, so no checksum fetched \
                 separately can be tied to the bytes read",
            ));
        }
    }

    let mut target = Target::new(dest, n)?;
    if first.validator.is_empty() && multi_request {
        // No ETag and no Last-Modified: parts of two versions could not be told apart. Read
        // the window with one request instead (one response is one version), unresumed.
        drop((first, permit));
        let object = ObjectVersion { id, pin: None, total };
        fill_part(session, object, offset, target.window(), None, None).await?;
        return Ok(target.finish());
    }

    let object = ObjectVersion { id, pin: Some(&first.validator), total };
    let contiguous = target.is_contiguous();
    if mode == ChecksumMode::Required && announced.is_none() && whole_object && !contiguous {
        // A scatter window keeps no copy of its bytes to verify once they are in: fetch the
        // checksum first (ranged GETs carry none on AWS), so it is verified as they stream.
        announced = Some(head::full_object_checksum(session, id, object.pin).await?);
    }
    let (first_buf, rest) = target.window().split_at(first_len.min(n) as usize);
    let rest_start = offset + first_len;
    let part_size = parts.rest(n);
    if rest.is_empty() {
        // One part: a checksum is computed as the bytes stream in, while they are in cache.
        let mut verifier = announced.take().map(Verifier::new);
        fill_part(session, object, offset, first_buf, Some((first.body, permit)), verifier.as_mut()).await?;
        match verifier {
            Some(verifier) => verifier.finish()?,
            None if mode == ChecksumMode::Required => {
                let announced = head::full_object_checksum(session, id, object.pin).await?;
                target.verify(&announced)?;
            }
            None => {}
        }
        return Ok(target.finish());
    }
    if let (Some(expected), false) = (&announced, contiguous) {
        // A checksum over a scatter window is computed as the bytes stream in, so in order:
        // the first part, then the rest in one request (no parallel parts for this rare case:
        // a coalesced span covering a whole multi-part object with a checksum to verify).
        let mut verifier = Verifier::new(expected.clone());
        fill_part(session, object, offset, first_buf, Some((first.body, permit)), Some(&mut verifier)).await?;
        fill_part(session, object, rest_start, rest, None, Some(&mut verifier)).await?;
        verifier.finish()?;
        return Ok(target.finish());
    }
    let first_part = fill_part(session, object, offset, first_buf, Some((first.body, permit)), None);
    // The first body keeps streaming on this connection; when the placement spreads, every
    // other part is its own task on the shared workers (with their session), so a large
    // object is received (and, over TLS, decrypted) on every core, not only on this thread.
    let shared;
    let parts_session = if placement.spreads() {
        shared = client.shared_session().await?;
        &shared
    } else {
        session
    };
    futures_util::future::try_join(first_part, fill_parts(parts_session, placement, object, rest_start, rest, part_size))
        .await?;

    if mode == ChecksumMode::Required && announced.is_none() {
        // Ranged GETs carry no checksum on AWS: ask HEAD, pinned to the same version.
        announced = Some(head::full_object_checksum(session, id, object.pin).await?);
    }
    if let Some(announced) = announced {
        target.verify(&announced)?;
    }
    Ok(target.finish())
}

/// Fill `window` with object bytes from `start` on, one ranged GET per `part_size` bytes, all
/// in flight at once (bounded by the session's request budget), each its own task on the
/// shared workers when `placement` spreads (then `session` must be the shared one); parts
/// lying entirely in a gap of a scatter window are not requested.
async fn fill_parts(
    session: &Session,
    placement: Placement,
    object: ObjectVersion<'_>,
    mut start: u64,
    mut window: Window<'_>,
    part_size: u64,
) -> Result<()> {
    let mut parts = FuturesUnordered::new();
    while !window.is_empty() {
        let len = (window.len() as u64).min(part_size) as usize;
        let (part, tail) = window.split_at(len);
        // A part lying entirely in a gap of a scatter window would fetch bytes only to drop them.
        if part.keeps_bytes() {
            parts.push(placement.spread(fill_part(session, object, start, part, None, None)));
        }
        start += len as u64;
        window = tail;
    }
    while let Some(done) = parts.next().await {
        // On the first failure, returning drops every other part future right here.
        done?;
    }
    Ok(())
}

impl Fetched {
    fn empty(dest: &Destination<'_>) -> Fetched {
        let owned = matches!(dest, Destination::Allocate { .. }).then(ResultBuffer::empty);
        Fetched { written: 0, owned }
    }
}

/// The `n` bytes a read fills: the first `n` bytes of the caller's window (a buffer or a
/// scatter), or a fresh allocation.
enum Target<'a> {
    Caller(Window<'a>),
    Owned(ResultBuffer),
}

impl<'a> Target<'a> {
    fn new(dest: Destination<'a>, n: u64) -> Result<Self> {
        let n = usize::try_from(n)
            .map_err(|_| Error::new(ErrorKind::OutOfMemory, "object too large for this platform"))?;
        Ok(match dest {
            Destination::Caller(buf) => Target::Caller(Window::Contiguous(&mut buf[..n])),
            Destination::Scatter(s) => Target::Caller(Window::Scatter(s).split_at(n).0),
            Destination::Allocate { .. } => Target::Owned(ResultBuffer::for_read(n)?),
        })
    }

    fn window(&mut self) -> Window<'_> {
        match self {
            Target::Caller(window) => window.reborrow(),
            Target::Owned(v) => Window::Contiguous(v.as_mut_slice()),
        }
    }

    /// Store window bytes `[at, at + bytes.len())`.
    fn write(&mut self, at: usize, bytes: &[u8]) {
        match self {
            Target::Caller(window) => window.write(at, bytes),
            Target::Owned(v) => Window::Contiguous(v.as_mut_slice()).write(at, bytes),
        }
    }

    /// Whether every byte read stays in memory once it is in (not so for a scatter window,
    /// which drops its gaps), so that a checksum can be verified afterwards.
    fn is_contiguous(&self) -> bool {
        match self {
            Target::Caller(window) => window.contiguous().is_some(),
            Target::Owned(_) => true,
        }
    }

    /// Verify `announced` over the bytes read, once they are all in.
    fn verify(&self, announced: &Announced) -> Result<()> {
        match self {
            Target::Caller(window) => match window.contiguous() {
                Some(bytes) => announced.verify(bytes),
                // read_once verifies a scatter window's bytes as they stream in instead.
                None => Err(checksum::unavailable("the bytes of a scatter window cannot be verified after the read")),
            },
            Target::Owned(v) => announced.verify(v.as_slice()),
        }
    }

    fn finish(self) -> Fetched {
        match self {
            Target::Caller(window) => Fetched { written: window.len() as u64, owned: None },
            Target::Owned(v) => Fetched { written: v.len() as u64, owned: Some(v) },
        }
    }
}

// Opened is the common case, so boxing its Response would only add an allocation per read:
// the enum is a short-lived return value, never stored in bulk.
#[allow(clippy::large_enum_variant)]
enum FirstResponse {
    /// The first request's response, body not yet read.
    Opened(Response, OwnedSemaphorePermit),
    /// `offset` is at or past the end of the object.
    PastEnd,
}

async fn first_request(
    session: &Session,
    id: ObjectId<'_>,
    offset: u64,
    len: u64,
    wanted: Option<&Validator>,
) -> Result<FirstResponse> {
    let permit = session.acquire().await?;
    match get_request::send(session, id, offset, len, wanted).await {
        Ok(response) => Ok(FirstResponse::Opened(response, permit)),
        Err(err) if err.kind == ErrorKind::InvalidRange => {
            // 416: the range starts at or past the end (always so for a 0-byte object on
            // servers that answer ranged GETs of empty objects with 416). Confirm with a HEAD
            // on a new connection (see `confirm_whole_object`).
            drop(permit);
            let (size, found) = head::identity(session, id, Connection::Fresh).await?;
            if let Some(wanted) = wanted {
                wanted.check(&found)?;
            }
            if offset >= size {
                return Ok(FirstResponse::PastEnd);
            }
            Err(err)
        }
        Err(err) => Err(err),
    }
}

/// Read a response whose body is the whole object (a 200 to a ranged request), keeping
/// `[offset, offset + want)`. Its length may be unknown (chunked): then the body is counted
/// to its end, never taken as empty. A checksum it announces is verified over every byte.
/// Also returns what the response said about the object, for `confirm_whole_object`.
async fn read_whole_body(
    response: Response,
    _permit: OwnedSemaphorePermit,
    offset: u64,
    dest: Destination<'_>,
    mode: ChecksumMode,
) -> Result<(Fetched, WholeObjectSeen)> {
    let announced = if mode.requested() { response.checksum.clone() } else { None };
    if mode == ChecksumMode::Required && announced.is_none() {
        return Err(checksum::unavailable("the server sent no full-object checksum with the object"));
    }
    let mut verifier = announced.map(Verifier::new);
    let window_end = offset.saturating_add(dest.max_len());
    let mut target = match (dest, response.length) {
        (Destination::Caller(buf), _) => WholeTarget::Fixed(Target::Caller(Window::Contiguous(buf))),
        (Destination::Scatter(s), _) => WholeTarget::Fixed(Target::Caller(Window::Scatter(s))),
        (dest @ Destination::Allocate { .. }, Some(total)) => {
            WholeTarget::Fixed(Target::new(dest, window_end.min(total).saturating_sub(offset))?)
        }
        (Destination::Allocate { .. }, None) => WholeTarget::Growing(Vec::new()),
    };
    let mut body = response.body;
    let mut pos: u64 = 0; // object position of the next body byte
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if let Some(v) = verifier.as_mut() {
            v.update(&chunk);
        }
        let (chunk_start, chunk_end) = (pos, pos + chunk.len() as u64);
        let (lo, hi) = (chunk_start.max(offset), chunk_end.min(window_end));
        if lo < hi {
            let piece = &chunk[(lo - chunk_start) as usize..(hi - chunk_start) as usize];
            target.put((lo - offset) as usize, piece)?;
        }
        pos = chunk_end;
        if pos >= window_end && verifier.is_none() && response.length.is_some() {
            break; // the window is full, the size is known, nothing needs the rest
        }
    }
    if let Some(expected) = response.length.filter(|&total| pos < window_end.min(total)) {
        return Err(Error::new(ErrorKind::Network, format!("body ended after {pos} of {expected} bytes")));
    }
    if let Some(v) = verifier {
        v.finish()?;
    }
    let written = window_end.min(pos).saturating_sub(offset);
    let seen = WholeObjectSeen { size: response.length.unwrap_or(pos), validator: response.validator };
    Ok((target.finish(written), seen))
}

/// What a 200 answer said about the object: its size and version.
struct WholeObjectSeen {
    size: u64,
    validator: Validator,
}

/// A 200 to a ranged GET is what a server that ignores Range sends, but it is also what a
/// stale response left on a reused connection by a misbehaving server looks like (such a
/// connection answers each request with the previous one's response), and nothing in it
/// says which request it answers. So it is checked against a HEAD on a new connection (a
/// pooled one could hold a stale answer for the HEAD too): same size, same ETag
/// (Last-Modified) where both carry one. A mismatch fails the read with an error that asks
/// for one more attempt from scratch. This costs one HEAD per read, on servers that ignore
/// Range only; a server that refuses HEAD (405/501) leaves the 200 unconfirmed.
async fn confirm_whole_object(session: &Session, id: ObjectId<'_>, seen: WholeObjectSeen) -> Result<()> {
    let (size, head) = match head::identity(session, id, Connection::Fresh).await {
        Ok(identity) => identity,
        // A plain HTTP server that ignores Range may not implement HEAD either: nothing to
        // confirm against, so the 200 stands as it is (docs/RELIABILITY.md, "Known limits").
        Err(e) if e.http_status == 405 || e.http_status == 501 => return Ok(()),
        Err(e) => return Err(e),
    };
    let same_version = match (&seen.validator.etag, &head.etag) {
        (Some(a), Some(b)) => a == b,
        _ => match (&seen.validator.last_modified, &head.last_modified) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        },
    };
    if size == seen.size && same_version {
        return Ok(());
    }
    let mut err = Error::protocol(format!(
        "a 200 answer to a ranged GET ({} bytes, ETag {:?}) does not match the object's HEAD \
         ({} bytes, ETag {:?}): the server ignored Range and the object changed, or a stale \
         response was left on a reused connection",
        seen.size, seen.validator.etag, size, head.etag
    ));
    err.retry_on_fresh_connection = true;
    Err(err)
}

/// Where a whole-object body's window goes: a buffer of known size, or (for an allocating
/// read whose length the server did not send) one that grows as bytes arrive.
enum WholeTarget<'a> {
    Fixed(Target<'a>),
    Growing(Vec<u8>),
}

impl WholeTarget<'_> {
    /// Put `piece` at window position `at` (pieces arrive in order, without gaps).
    fn put(&mut self, at: usize, piece: &[u8]) -> Result<()> {
        match self {
            WholeTarget::Fixed(t) => t.write(at, piece),
            WholeTarget::Growing(v) => {
                debug_assert_eq!(v.len(), at);
                v.try_reserve(piece.len()).map_err(|_| {
                    Error::new(ErrorKind::OutOfMemory, format!("cannot allocate {} bytes", at + piece.len()))
                })?;
                v.extend_from_slice(piece);
            }
        }
        Ok(())
    }

    fn finish(self, written: u64) -> Fetched {
        match self {
            WholeTarget::Fixed(Target::Caller(_)) => Fetched { written, owned: None },
            WholeTarget::Fixed(Target::Owned(mut v)) => {
                v.truncate(written as usize);
                Fetched { written: v.len() as u64, owned: Some(v) }
            }
            WholeTarget::Growing(mut v) => {
                v.truncate(written as usize);
                Fetched { written: v.len() as u64, owned: Some(ResultBuffer::from_vec(v)) }
            }
        }
    }
}

/// The object version every part of a read must come from.
#[derive(Clone, Copy)]
struct ObjectVersion<'a> {
    id: ObjectId<'a>,
    /// The first response's ETag / Last-Modified. None: the server sent neither, so this
    /// read is one request, and a body that breaks off cannot be resumed (a second response
    /// could be of another version).
    pin: Option<&'a Validator>,
    total: u64,
}

/// Fill `window` with object bytes `[start, start + window.len())`, resuming broken bodies.
/// `first` is the already-open response of the first request, if this is that part;
/// `verifier` sees every byte of the window, in order.
async fn fill_part(
    session: &Session,
    object: ObjectVersion<'_>,
    start: u64,
    mut window: Window<'_>,
    mut first: Option<(Body, OwnedSemaphorePermit)>,
    mut verifier: Option<&mut Verifier>,
) -> Result<()> {
    let max_resumes = if object.pin.is_some() { MAX_BODY_RESUMES } else { 0 };
    let mut filled = 0usize;
    let mut resumes = 0u32;
    let len = window.len();
    // A part is done when its window is full, even if the connection then failed (e.g. a
    // chunked body missing its terminator): never ask for zero bytes.
    while filled < len {
        let (body, _permit) = match first.take() {
            Some(opened) => opened,
            None => open_part(session, object, start + filled as u64, (len - filled) as u64).await?,
        };
        let (got, result) = stream_into(body, &mut window, filled, verifier.as_deref_mut()).await;
        filled += got;
        let Err(err) = result else { continue };
        if filled == len {
            break;
        }
        if !err.is_transient() || resumes >= max_resumes {
            return Err(err.context(format!(
                "bytes {}-{} (after {resumes} resumes)",
                start,
                start + len as u64 - 1
            )));
        }
        resumes += 1;
        tokio::time::sleep(RESUME_BACKOFF * resumes).await;
    }
    Ok(())
}

async fn open_part(
    session: &Session,
    object: ObjectVersion<'_>,
    start: u64,
    len: u64,
) -> Result<(Body, OwnedSemaphorePermit)> {
    let permit = session.acquire().await?;
    let response = get_request::send(session, object.id, start, len, object.pin).await?;
    let range = response
        .range
        .ok_or_else(|| Error::protocol("ranged GET answered without Content-Range"))?;
    if range.total != object.total {
        return Err(Error::new(
            ErrorKind::ObjectChanged,
            format!("object size changed from {} to {} during the read", object.total, range.total),
        ));
    }
    if range.start != start || range.end != start + len - 1 {
        return Err(Error::protocol(format!(
            "asked for bytes {start}-{}, server sent Content-Range bytes {}-{}/{}",
            start + len - 1,
            range.start,
            range.end,
            range.total
        )));
    }
    Ok((response.body, permit))
}

/// Copy a body into `dst` from window position `from`; it must fill the rest of `dst`
/// exactly. Returns how many bytes landed (so a failed part can resume after them) and
/// whether the body ended cleanly at exactly the end of `dst`.
async fn stream_into(
    mut body: Body,
    dst: &mut Window<'_>,
    from: usize,
    mut verifier: Option<&mut Verifier>,
) -> (usize, Result<()>) {
    if let Some(direct) = body.as_direct() {
        return read_into_place(direct, dst, from, verifier).await;
    }
    let want = dst.len() - from;
    let mut got = 0usize;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => return (got, Err(e)),
        };
        let end = got + chunk.len();
        if end > want {
            return (got, Err(Error::protocol(format!("body is longer than the {want} bytes requested"))));
        }
        dst.write(from + got, &chunk);
        if let Some(v) = verifier.as_deref_mut() {
            v.update(&chunk);
        }
        got = end;
    }
    if got < want {
        return (got, Err(Error::new(ErrorKind::Network, format!("body ended after {got} of {want} bytes"))));
    }
    (got, Ok(()))
}

/// `stream_into` for a body read on our own connection (`http::direct`): each `read` goes
/// straight into the window's memory, so a byte is copied once, by the kernel (a scatter
/// window's gaps are read into a scratch buffer and dropped).
async fn read_into_place(
    body: &mut DirectBody,
    dst: &mut Window<'_>,
    from: usize,
    mut verifier: Option<&mut Verifier>,
) -> (usize, Result<()>) {
    let want = dst.len() - from;
    let mut scratch = Vec::new();
    let mut got = 0usize;
    while got < want {
        let read = match dst.region_at(from + got, want - got) {
            Region::Kept(slice) => body.read_into(slice).await.inspect(|&n| {
                if let Some(v) = verifier.as_deref_mut() {
                    v.update(&slice[..n]);
                }
            }),
            Region::Dropped(len) => {
                if scratch.is_empty() {
                    scratch = vec![0u8; GAP_SCRATCH];
                }
                let room = len.min(scratch.len());
                body.read_into(&mut scratch[..room]).await.inspect(|&n| {
                    if let Some(v) = verifier.as_deref_mut() {
                        v.update(&scratch[..n]);
                    }
                })
            }
        };
        match read {
            Ok(0) => break, // every announced byte came, and fewer than asked for
            Ok(n) => got += n,
            Err(e) => return (got, Err(e)),
        }
    }
    if got < want {
        return (got, Err(Error::new(ErrorKind::Network, format!("body ended after {got} of {want} bytes"))));
    }
    if body.remaining() > 0 {
        // Never read past the window; the connection is closed with the body, not reused.
        return (got, Err(Error::protocol(format!("body is longer than the {want} bytes requested"))));
    }
    (got, Ok(()))
}
