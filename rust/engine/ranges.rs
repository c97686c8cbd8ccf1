//! Many byte ranges of one object, pinned to one version: the footer-then-columns pattern
//! of Parquet, safetensors tensor slices, zarr chunks.
//!
//! 1. One HEAD gives the object's size (for suffix ranges and ranges past the end) and its
//!    version (ETag, else Last-Modified), unless the caller pinned an ETag already, which the
//!    HEAD then checks.
//! 2. Ranges closer than `max_gap` are coalesced into one request (fewer round trips for a
//!    few wasted bytes); every request is pinned to that version (`If-Match`).
//! 3. A span holding one range is read straight into that range's slice of the destination;
//!    a coalesced span is read into a scratch buffer and its ranges copied out. At most
//!    `max_concurrency` spans are in flight, and their scratch buffers are reused: fresh
//!    memory costs a page fault per 4 KiB, which on the benchmark VM (0.4-1.7 ms per MiB)
//!    would cost more than the network for a call coalescing a hundred 1 MiB spans.
//!
//! The destination holds the ranges packed in the order given: range `i` starts at the sum of
//! the lengths before it. A range running past the end of the object gets the bytes that
//! exist (its reported length says how many); the rest of its slice is left as it was.
//! A server that sends neither ETag nor Last-Modified gets one request for everything (one
//! response is one version).

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::get::{quoted, read_pinned, Destination, ReadOptions};
use crate::get_request::Validator;
use crate::head;
use crate::http::ObjectId;
use crate::path::{check_bucket, check_key};
use crate::runtime::Placement;
use futures_util::stream::{self, StreamExt};
use std::sync::Mutex;

/// One range: `offset` < 0 counts from the end of the object (`-8` with length 8: the last 8
/// bytes, as `bytes=-8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub offset: i64,
    pub len: u64,
}

/// Gap below which two ranges are fetched with one request, by default: a round trip costs
/// more than reading this much more on any link S3 is reached over.
pub const DEFAULT_MAX_GAP: u64 = 1 << 20;

/// Read `ranges` of one object into `dest` (packed in order; at least the sum of the lengths).
/// Returns how many bytes each range got (fewer than asked only where the object ends).
// One argument per thing the read is about, as for `get::get`.
#[allow(clippy::too_many_arguments)]
pub async fn get_ranges(
    client: &Client,
    placement: Placement,
    bucket: &str,
    key: &str,
    ranges: &[ByteRange],
    dest: &mut [u8],
    max_gap: u64,
    options: ReadOptions<'_>,
) -> Result<Vec<u64>> {
    check_bucket(bucket)?;
    check_key(key)?;
    let needed = ranges.iter().try_fold(0u64, |sum, r| sum.checked_add(r.len));
    match needed {
        Some(n) if n <= dest.len() as u64 => {}
        _ => {
            return Err(Error::invalid(format!(
                "the destination holds {} bytes, the ranges need {}",
                dest.len(),
                needed.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string())
            )))
        }
    }
    let session = client.session(placement).await?;
    let id = ObjectId { bucket, key, version_id: options.version_id };
    read_ranges(client, placement, &session, id, ranges, dest, max_gap, options.if_match)
        .await
        .map_err(|e| e.context(format!("s3://{bucket}/{key}")))
}

#[allow(clippy::too_many_arguments)]
async fn read_ranges(
    client: &Client,
    placement: Placement,
    session: &crate::client::Session,
    id: ObjectId<'_>,
    ranges: &[ByteRange],
    dest: &mut [u8],
    max_gap: u64,
    if_match: Option<&str>,
) -> Result<Vec<u64>> {
    let (size, version) = head::identity(session, id).await?;
    if let Some(etag) = if_match {
        Validator { etag: Some(quoted(etag)), last_modified: None }.check(&version)?;
    }
    let resolved: Vec<(u64, u64)> = ranges.iter().map(|r| resolve(r, size)).collect();
    let max_gap = if version.is_empty() { u64::MAX } else { max_gap };
    let pin = (!version.is_empty()).then_some(&version);

    // Each range's slice of the destination, in the order given.
    let mut slices: Vec<Option<&mut [u8]>> = Vec::with_capacity(ranges.len());
    let mut rest = dest;
    for r in ranges {
        let (slice, tail) = rest.split_at_mut(r.len as usize);
        slices.push(Some(slice));
        rest = tail;
    }

    let scratch = ScratchPool::default();
    let mut jobs = Vec::new();
    for span in coalesce(&resolved, max_gap) {
        let members: Vec<(usize, &mut [u8])> =
            span.members.iter().map(|&i| (i, slices[i].take().expect("each range is in one span"))).collect();
        jobs.push((span, members));
    }
    // Futures do nothing until polled, and buffer_unordered polls at most max_concurrency of
    // them at a time: only that many spans hold a scratch buffer at once.
    let reads: Vec<_> = jobs
        .into_iter()
        .map(|(span, members)| read_span(client, placement, session, id, span, members, &resolved, pin, &scratch))
        .collect();
    let mut reads = stream::iter(reads).buffer_unordered(client.max_concurrency());
    let mut got = vec![0u64; ranges.len()];
    while let Some(done) = reads.next().await {
        for (i, n) in done? {
            got[i] = n;
        }
    }
    Ok(got)
}

/// `[start, end)` of a range in an object of `size` bytes, clamped to the object.
fn resolve(r: &ByteRange, size: u64) -> (u64, u64) {
    let start = if r.offset < 0 { size.saturating_sub(r.offset.unsigned_abs()) } else { (r.offset as u64).min(size) };
    (start, start.saturating_add(r.len).min(size))
}

/// Ranges read with one request: the union `[start, end)` of its members' bytes.
#[derive(Debug, PartialEq)]
struct Span {
    start: u64,
    end: u64,
    members: Vec<usize>,
}

/// Group ranges (indices into `resolved`) whose bytes lie within `max_gap` of each other.
/// Empty ranges (past the end, or zero length) need no request and belong to no span.
fn coalesce(resolved: &[(u64, u64)], max_gap: u64) -> Vec<Span> {
    let mut order: Vec<usize> = (0..resolved.len()).filter(|&i| resolved[i].1 > resolved[i].0).collect();
    order.sort_by_key(|&i| resolved[i]);
    let mut spans: Vec<Span> = Vec::new();
    for i in order {
        let (start, end) = resolved[i];
        match spans.last_mut() {
            Some(span) if start <= span.end.saturating_add(max_gap) => {
                span.end = span.end.max(end);
                span.members.push(i);
            }
            _ => spans.push(Span { start, end, members: vec![i] }),
        }
    }
    spans
}

/// Read one span and put each member range's bytes into its slice. Returns (range index,
/// bytes it got).
#[allow(clippy::too_many_arguments)]
async fn read_span(
    client: &Client,
    placement: Placement,
    session: &crate::client::Session,
    id: ObjectId<'_>,
    span: Span,
    mut members: Vec<(usize, &mut [u8])>,
    resolved: &[(u64, u64)],
    pin: Option<&Validator>,
    pool: &ScratchPool,
) -> Result<Vec<(usize, u64)>> {
    let len = span.end - span.start;
    if let [(i, slice)] = members.as_mut_slice() {
        // One range: straight into its slice.
        let n = resolved[*i].1 - resolved[*i].0;
        let fetched = read_pinned(client, placement, session, id, span.start, Destination::Caller(&mut slice[..n as usize]), pin).await?;
        check_length(fetched.written, n)?;
        return Ok(vec![(*i, n)]);
    }
    let scratch_len = usize::try_from(len).map_err(|_| Error::new(ErrorKind::OutOfMemory, "span too large"))?;
    let mut scratch = pool.take(scratch_len)?;
    let fetched = read_pinned(client, placement, session, id, span.start, Destination::Caller(&mut scratch), pin).await?;
    check_length(fetched.written, len)?;
    let got = members
        .into_iter()
        .map(|(i, slice)| {
            let (start, end) = resolved[i];
            let from = (start - span.start) as usize;
            let n = (end - start) as usize;
            slice[..n].copy_from_slice(&scratch[from..from + n]);
            (i, n as u64)
        })
        .collect();
    pool.give(scratch);
    Ok(got)
}

/// Scratch buffers of one call, handed from finished spans to the next ones.
#[derive(Default)]
struct ScratchPool(Mutex<Vec<Vec<u8>>>);

impl ScratchPool {
    /// A zero-filled buffer of `len` bytes, reusing a returned one when there is one.
    fn take(&self, len: usize) -> Result<Vec<u8>> {
        let mut buf = self.0.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_default();
        buf.clear();
        buf.try_reserve_exact(len)
            .map_err(|_| Error::new(ErrorKind::OutOfMemory, format!("cannot allocate {len} bytes")))?;
        buf.resize(len, 0);
        Ok(buf)
    }

    fn give(&self, buf: Vec<u8>) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(buf);
    }
}

/// The object is pinned, so every byte the HEAD promised exists.
fn check_length(written: u64, expected: u64) -> Result<()> {
    if written == expected {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::ObjectChanged,
        format!("the object ended after {written} of {expected} bytes: it changed during the read"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_and_past_end_ranges_resolve_inside_the_object() {
        assert_eq!(resolve(&ByteRange { offset: -8, len: 8 }, 100), (92, 100));
        assert_eq!(resolve(&ByteRange { offset: -200, len: 8 }, 100), (0, 8));
        assert_eq!(resolve(&ByteRange { offset: 95, len: 10 }, 100), (95, 100));
        assert_eq!(resolve(&ByteRange { offset: 150, len: 10 }, 100), (100, 100));
    }

    #[test]
    fn close_ranges_coalesce_far_ones_do_not() {
        let r = [(0, 10), (500, 600), (15, 20), (5, 8), (10_000, 10_010), (30, 30)];
        let spans = coalesce(&r, 100);
        assert_eq!(
            spans,
            vec![
                Span { start: 0, end: 20, members: vec![0, 3, 2] },
                Span { start: 500, end: 600, members: vec![1] },
                Span { start: 10_000, end: 10_010, members: vec![4] },
            ]
        );
        assert_eq!(coalesce(&r, 0).len(), 4); // 0..10 and 5..8 overlap: one span
        assert_eq!(coalesce(&r, u64::MAX).len(), 1);
    }
}
