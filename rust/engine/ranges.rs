//! Many byte ranges of one object, pinned to one version: the footer-then-columns pattern
//! of Parquet, safetensors tensor slices, zarr chunks.
//!
//! 1. One HEAD gives the object's size (for suffix ranges and ranges past the end) and its
//!    version (ETag, else Last-Modified), unless the caller pinned an ETag already, which the
//!    HEAD then checks.
//! 2. Ranges at most `max_gap` bytes apart are coalesced into one request (fewer round trips
//!    for a few wasted bytes); every request is pinned to that version (`If-Match` when it
//!    has an ETag; a Last-Modified is compared on every answer).
//! 3. Each span is one read of the GET algorithm (`engine::get`: parts in parallel, resumed
//!    bodies, Content-Range, length and version checks, checksums) straight into the
//!    destination, with no buffer in between: a span holding one range reads into that
//!    range's slice; a coalesced span reads into a scatter window (`engine::window`) whose
//!    pieces are its ranges' slices, the bytes of the gaps between them dropped as they
//!    arrive. Every byte is copied once, from the response body to its place. At most
//!    `max_concurrency` spans are in flight.
//! 4. Overlapping ranges (coalescing merges `0..10` and `5..8` whatever `max_gap` is): in a
//!    span, ranges are taken by offset, and the bytes a range shares with the ones before it
//!    are received once, into the slice of the earlier range reaching furthest (which holds
//!    them all: it starts no later and ends no earlier), then copied into the later range's
//!    slice once the span is complete. Only shared bytes are copied twice.
//!
//! The destination holds the ranges packed in the order given (range `i` starts at the sum of
//! the lengths before it), or each at the place the caller gives (`places`: slices inside the
//! destination that overlap no other range's, in any order). A range running past the end of
//! the object gets the bytes that exist (its reported length says how many); the rest of its
//! slice is left as it was.
//! A server that sends neither ETag nor Last-Modified gets one request for everything (one
//! response is one version); the bytes between the ranges are dropped as they arrive.

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::get::{quoted, read_pinned, Destination, ReadOptions};
use crate::get_request::Validator;
use crate::head;
use crate::http::{Connection, ObjectId};
use crate::parts::PartPlan;
use crate::path::{check_bucket, check_key};
use crate::runtime::Placement;
use crate::window::Scatter;
use futures_util::stream::{self, StreamExt};
use std::borrow::Cow;

/// One range: `offset` < 0 counts from the end of the object (`-8` with length 8: the last 8
/// bytes, as `bytes=-8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub offset: i64,
    pub len: u64,
}

/// Largest gap between two ranges fetched with one request, by default: a round trip costs
/// more than reading this much more on any link S3 is reached over.
pub const DEFAULT_MAX_GAP: u64 = 1 << 20;

/// Read `ranges` of one object into `dest`: range `i` at `places[i]`, or packed in order when
/// `places` is None (then `dest` holds at least the sum of the lengths). Returns how many
/// bytes each range got (fewer than asked only where the object ends). On error `dest` is
/// unspecified: spans are written in place as they arrive, so any range may be partly
/// written. Nothing is sent when the places do not fit (see [`destination_slices`]).
// One argument per thing the read is about, as for `get::get`.
#[allow(clippy::too_many_arguments)]
pub async fn get_ranges(
    client: &Client,
    placement: Placement,
    bucket: &str,
    key: &str,
    ranges: &[ByteRange],
    places: Option<&[u64]>,
    dest: &mut [u8],
    max_gap: u64,
    options: ReadOptions<'_>,
) -> Result<Vec<u64>> {
    check_bucket(bucket)?;
    check_key(key)?;
    options.check()?;
    let slices = destination_slices(ranges, places, dest)?;
    let id = ObjectId { bucket, key, version_id: options.version_id };
    read_ranges(client, placement, id, ranges, slices, max_gap, options.if_match, options.parts(client))
        .await
        .map_err(|e| e.context(format!("s3://{bucket}/{key}")))
}

/// Each range's slice of `dest`, by range: at `places[i]`, or packed in order. Fails unless
/// every slice lies inside `dest` and no two non-empty slices overlap (two writers of one
/// byte).
fn destination_slices<'d>(
    ranges: &[ByteRange],
    places: Option<&[u64]>,
    dest: &'d mut [u8],
) -> Result<Vec<Option<&'d mut [u8]>>> {
    let starts: Cow<[u64]> = match places {
        Some(places) if places.len() != ranges.len() => {
            return Err(Error::invalid(format!("{} places for {} ranges", places.len(), ranges.len())))
        }
        Some(places) => Cow::Borrowed(places),
        None => {
            let needed = ranges.iter().try_fold(0u64, |sum, r| sum.checked_add(r.len));
            if needed.is_none_or(|n| n > dest.len() as u64) {
                return Err(Error::invalid(format!(
                    "the destination holds {} bytes, the ranges need {}",
                    dest.len(),
                    needed.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string())
                )));
            }
            let mut at = 0u64;
            let mut starts = Vec::with_capacity(ranges.len());
            for r in ranges {
                starts.push(at);
                at = at.saturating_add(r.len);
            }
            Cow::Owned(starts)
        }
    };
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|&i| (starts[i], ranges[i].len));
    let capacity = dest.len() as u64;
    let mut slices: Vec<Option<&mut [u8]>> = (0..ranges.len()).map(|_| None).collect();
    let (mut rest, mut cursor, mut previous): (&mut [u8], u64, Option<usize>) = (dest, 0, None);
    for i in order {
        let (start, len) = (starts[i], ranges[i].len);
        // (Packed ranges were checked above: only a place can fail here.)
        let end = start.checked_add(len).filter(|&end| end <= capacity).ok_or_else(|| {
            Error::invalid(format!("range {i} placed at {start} ends past the destination's {capacity} bytes"))
        })?;
        if len == 0 {
            slices[i] = Some(&mut []);
            continue;
        }
        if start < cursor {
            let other = previous.expect("cursor moved past 0 only after a slice");
            return Err(Error::invalid(format!("ranges {other} and {i} overlap in the destination")));
        }
        let tail = std::mem::take(&mut rest);
        let (_, from_start) = tail.split_at_mut((start - cursor) as usize);
        let (slice, after) = from_start.split_at_mut(len as usize);
        slices[i] = Some(slice);
        (rest, cursor, previous) = (after, end, Some(i));
    }
    Ok(slices)
}

#[allow(clippy::too_many_arguments)]
async fn read_ranges(
    client: &Client,
    placement: Placement,
    id: ObjectId<'_>,
    ranges: &[ByteRange],
    mut slices: Vec<Option<&mut [u8]>>,
    max_gap: u64,
    if_match: Option<&str>,
    parts: PartPlan,
) -> Result<Vec<u64>> {
    // The HEAD runs where the call does, on that place's connections.
    let (size, version) = head::identity(&client.session(placement).await?, id, Connection::Pooled).await?;
    // Every span is a piece of the call: its own task on the workers when `placement` spreads.
    let (session, span_placement) = client.piece_session(placement).await;
    let session = &session?;
    if let Some(etag) = if_match {
        Validator { etag: Some(quoted(etag)), last_modified: None }.check(&version)?;
    }
    let resolved: Vec<(u64, u64)> = ranges.iter().map(|r| resolve(r, size)).collect();
    let max_gap = if version.is_empty() { u64::MAX } else { max_gap };
    let pin = (!version.is_empty()).then_some(&version);

    let mut jobs = Vec::new();
    for span in coalesce(&resolved, max_gap) {
        let members: Vec<(usize, &mut [u8])> =
            span.members.iter().map(|&i| (i, slices[i].take().expect("each range is in one span"))).collect();
        jobs.push((span, members));
    }
    // Futures do nothing until polled, and buffer_unordered polls at most max_concurrency of
    // them at a time (each span's parts share the session's request budget besides).
    let reads: Vec<_> = jobs
        .into_iter()
        .map(|(span, members)| {
            placement.spread(read_span(client, span_placement, session, id, span, members, &resolved, pin, parts))
        })
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

/// How one member of a coalesced span gets its bytes `[start, end)`: `[own_from, end)` from the
/// response body, into its own slice; `[start, own_from)`, which an earlier member also holds,
/// copied from that member's slice (`shared_with`) once the span is complete.
#[derive(Debug, PartialEq)]
struct MemberPlan {
    own_from: u64,
    shared_with: Option<usize>,
}

/// One plan per member of a span, `members` being their `[start, end)` in increasing order
/// (as `coalesce` lists them). A member's bytes before the furthest end reached by the members
/// before it are in the member reaching it, which starts no later than this one: those are
/// shared, the rest its own. The own parts are then disjoint and in order.
fn plan_members(members: &[(u64, u64)]) -> Vec<MemberPlan> {
    let mut reach: Option<(u64, usize)> = None; // furthest end so far, and which member
    members
        .iter()
        .enumerate()
        .map(|(k, &(start, end))| {
            debug_assert!(k == 0 || members[k - 1] <= (start, end), "members must be sorted");
            let plan = match reach {
                Some((furthest, holder)) if furthest > start => {
                    MemberPlan { own_from: furthest.min(end), shared_with: Some(holder) }
                }
                _ => MemberPlan { own_from: start, shared_with: None },
            };
            if reach.is_none_or(|(furthest, _)| end > furthest) {
                reach = Some((end, k));
            }
            plan
        })
        .collect()
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
    parts: PartPlan,
) -> Result<Vec<(usize, u64)>> {
    let len = span.end - span.start;
    if let [(i, slice)] = members.as_mut_slice() {
        // One range: straight into its slice.
        let n = resolved[*i].1 - resolved[*i].0;
        let fetched = read_pinned(client, placement, session, id, span.start, Destination::Caller(&mut slice[..n as usize]), pin, parts).await?;
        check_length(fetched.written, n)?;
        return Ok(vec![(*i, n)]);
    }
    let window_len = usize::try_from(len).map_err(|_| Error::new(ErrorKind::OutOfMemory, "span too large"))?;
    let bounds: Vec<(u64, u64)> = members.iter().map(|(i, _)| resolved[*i]).collect();
    let plans = plan_members(&bounds);
    let pieces = members.iter_mut().zip(&bounds).zip(&plans).map(|(((_, slice), &(start, end)), plan)| {
        let own = &mut slice[(plan.own_from - start) as usize..(end - start) as usize];
        ((plan.own_from - span.start) as usize, own)
    });
    let scatter = Scatter::new(window_len, pieces);
    let fetched = read_pinned(client, placement, session, id, span.start, Destination::Scatter(scatter), pin, parts).await?;
    check_length(fetched.written, len)?;
    // The shared bytes, in member order: a holder comes before the members it serves, so its
    // own shared bytes are already in place.
    for (k, plan) in plans.iter().enumerate() {
        let Some(holder) = plan.shared_with else { continue };
        let ((start, _), (holder_start, _)) = (bounds[k], bounds[holder]);
        let n = (plan.own_from - start) as usize;
        let from = (start - holder_start) as usize;
        let (before, after) = members.split_at_mut(k);
        after[0].1[..n].copy_from_slice(&before[holder].1[from..from + n]);
    }
    Ok(members.iter().zip(&bounds).map(|((i, _), &(start, end))| (*i, end - start)).collect())
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

    #[test]
    fn a_gap_of_exactly_max_gap_coalesces_one_byte_more_does_not() {
        let r = [(0, 10), (110, 120)];
        assert_eq!(coalesce(&r, 100).len(), 1);
        assert_eq!(coalesce(&r, 99).len(), 2);
        // Touching ranges: a gap of 0.
        assert_eq!(coalesce(&[(0, 10), (10, 20)], 0).len(), 1);
    }

    fn plan(own_from: u64, shared_with: Option<usize>) -> MemberPlan {
        MemberPlan { own_from, shared_with }
    }

    #[test]
    fn overlapping_and_nested_members_share_bytes_with_the_one_reaching_furthest() {
        // Disjoint: every byte is the member's own.
        assert_eq!(plan_members(&[(0, 10), (20, 30)]), vec![plan(0, None), plan(20, None)]);
        // Overlap: 5..10 of the second is in the first.
        assert_eq!(plan_members(&[(0, 10), (5, 15)]), vec![plan(0, None), plan(10, Some(0))]);
        // Nested, then one starting inside the outer one and ending past it; then a duplicate
        // of the outer one (sorted next to it), served by it.
        assert_eq!(
            plan_members(&[(0, 100), (0, 100), (10, 20), (50, 150), (120, 130), (200, 210)]),
            vec![
                plan(0, None),
                plan(100, Some(0)),
                plan(20, Some(0)),
                plan(100, Some(0)),
                plan(130, Some(3)),
                plan(200, None),
            ]
        );
        // Touching: nothing shared.
        assert_eq!(plan_members(&[(0, 10), (10, 20)]), vec![plan(0, None), plan(10, None)]);
    }

    fn ranges(lens: &[u64]) -> Vec<ByteRange> {
        lens.iter().map(|&len| ByteRange { offset: 0, len }).collect()
    }

    #[test]
    fn placed_ranges_get_their_own_slices_in_any_order() {
        let mut dest = [0u8; 20];
        let addr = dest.as_ptr() as usize;
        let places = [12, 0, 5, 20];
        let slices = destination_slices(&ranges(&[8, 5, 2, 0]), Some(&places), &mut dest).unwrap();
        let got: Vec<(usize, usize)> =
            slices.iter().map(|s| s.as_deref().map_or((99, 99), |s| ((s.as_ptr() as usize).wrapping_sub(addr), s.len()))).collect();
        assert_eq!(got[..3], [(12, 8), (0, 5), (5, 2)]);
        assert_eq!(got[3].1, 0, "an empty range may sit at the very end (its slice is empty)");
        // Packed: each after the one before.
        let slices = destination_slices(&ranges(&[3, 4]), None, &mut dest).unwrap();
        let starts: Vec<usize> = slices.iter().map(|s| s.as_deref().unwrap().as_ptr() as usize - addr).collect();
        assert_eq!(starts, [0, 3]);
    }

    #[test]
    fn places_that_overlap_or_run_past_the_destination_are_refused() {
        let mut dest = [0u8; 20];
        let err = |lens: &[u64], places: &[u64], dest: &mut [u8]| {
            destination_slices(&ranges(lens), Some(places), dest).map(|_| ()).unwrap_err().message
        };
        assert_eq!(err(&[8, 5], &[0, 7], &mut dest), "ranges 0 and 1 overlap in the destination");
        assert_eq!(err(&[5, 8], &[10, 4], &mut dest), "ranges 1 and 0 overlap in the destination");
        assert_eq!(err(&[5], &[16], &mut dest), "range 0 placed at 16 ends past the destination's 20 bytes");
        assert_eq!(err(&[5], &[u64::MAX], &mut dest), format!("range 0 placed at {} ends past the destination's 20 bytes", u64::MAX));
        assert_eq!(err(&[5, 5], &[0], &mut dest), "1 places for 2 ranges");
        let packed = destination_slices(&ranges(&[15, 6]), None, &mut dest).map(|_| ()).unwrap_err().message;
        assert_eq!(packed, "the destination holds 20 bytes, the ranges need 21");
    }
}
