//! The GET algorithm against the fake server: request counts, edge behaviours, faults.

use crate::cancel::CancelToken;
use crate::fake_s3::{self, Behaviour, FakeS3};
use crate::get::{self, Destination, GetRequest};
use crate::ranges::{self, ByteRange};
use crate::runtime::{block_on, block_on_here, runtime, Offload, Placement};
use crate::{Client, ClientOptions, ErrorKind, PathStyle};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + 7) as u8).collect()
}

fn serve(data: Vec<u8>, behaviour: Behaviour) -> FakeS3 {
    runtime().block_on(fake_s3::start(data, behaviour))
}

fn client(server: &FakeS3, part_size: u64) -> Arc<Client> {
    Client::new(ClientOptions {
        endpoint_url: Some(server.endpoint.clone()),
        region: Some("us-east-1".into()),
        access_key_id: Some("key".into()),
        secret_access_key: Some("secret".into()),
        path_style: PathStyle::Auto,
        part_size,
        max_concurrency: 4,
        ..Default::default()
    })
    .unwrap()
}

/// A read as the C ABI runs it: on the calling thread's runtime, parts after the first
/// handed to the shared workers.
fn get_into(c: &Client, offset: u64, buf: &mut [u8]) -> crate::Result<u64> {
    block_on_here(get::get(c, as_the_c_abi_runs(), "bkt", "key", offset, Destination::Caller(buf), Default::default()))
        .map(|f| f.written)
}

/// The placement the C ABI gives a call: polled on the calling thread, pieces (parts, the
/// reads of a batch, the spans of `get_ranges`) spread over the shared workers. Every future
/// given it in these tests is handed straight to `block_on_here`.
fn as_the_c_abi_runs() -> Placement {
    // SAFETY: each caller passes the future straight to block_on_here, which polls it to
    // completion on this thread.
    Placement::CallingThread { offload: Some(unsafe { Offload::new() }) }
}

/// The same read run entirely on the shared workers (as reads in a batch are).
fn get_into_on_workers(c: &Client, offset: u64, buf: &mut [u8]) -> crate::Result<u64> {
    block_on(get::get(c, Placement::Workers, "bkt", "key", offset, Destination::Caller(buf), Default::default())).map(|f| f.written)
}

/// The placement an async op gives its read: a task on the shared workers, every later part a
/// task of its own. Every future given it in these tests is handed straight to `block_on`.
fn as_an_op_runs() -> Placement {
    // SAFETY: each caller passes the future straight to block_on, which runs it as a task and
    // polls it to completion before returning.
    Placement::WorkersSpreading(unsafe { Offload::new() })
}

/// The same read as an async op runs it.
fn get_into_as_an_op(c: &Client, offset: u64, buf: &mut [u8]) -> crate::Result<u64> {
    block_on(get::get(c, as_an_op_runs(), "bkt", "key", offset, Destination::Caller(buf), Default::default())).map(|f| f.written)
}

#[test]
fn many_parts_arrive_byte_exact_with_one_request_per_part() {
    let data = pattern(10_500);
    let s = serve(data.clone(), Behaviour::default());
    let c = client(&s, 1000);
    for (round, read) in [get_into, get_into_on_workers, get_into_as_an_op].into_iter().enumerate() {
        let mut buf = vec![0u8; data.len()];
        assert_eq!(read(&c, 0, &mut buf).unwrap(), 10_500);
        assert_eq!(buf, data);
        assert_eq!(s.gets.load(Ordering::SeqCst), 11 * (round + 1));
    }
    assert_eq!(s.heads.load(Ordering::SeqCst), 0, "size discovery must not cost a HEAD");
}

#[test]
fn small_object_costs_exactly_one_request() {
    let s = serve(pattern(100), Behaviour::default());
    let c = client(&s, 1 << 20);
    let mut buf = vec![0xAAu8; 4096];
    assert_eq!(get_into(&c, 0, &mut buf).unwrap(), 100);
    assert_eq!(&buf[..100], &pattern(100)[..]);
    assert!(buf[100..].iter().all(|&b| b == 0xAA), "bytes past the object must be untouched");
    assert_eq!(s.gets.load(Ordering::SeqCst), 1);
}

#[test]
fn offsets_inside_at_and_past_the_end() {
    let data = pattern(5000);
    let s = serve(data.clone(), Behaviour::default());
    let c = client(&s, 1000);
    let mut buf = vec![0u8; 2500];
    assert_eq!(get_into(&c, 1234, &mut buf).unwrap(), 2500);
    assert_eq!(buf, &data[1234..3734]);
    assert_eq!(get_into(&c, 4000, &mut buf).unwrap(), 1000);
    assert_eq!(&buf[..1000], &data[4000..]);
    assert_eq!(get_into(&c, 5000, &mut buf).unwrap(), 0);
    assert_eq!(get_into(&c, 9999, &mut buf).unwrap(), 0);
}

#[test]
fn server_that_ignores_range_still_gives_the_right_window() {
    let data = pattern(3000);
    let s = serve(data.clone(), Behaviour { ignore_range: true, ..Default::default() });
    let c = client(&s, 1000);
    let mut buf = vec![0u8; 1500];
    assert_eq!(get_into(&c, 700, &mut buf).unwrap(), 1500);
    assert_eq!(buf, &data[700..2200]);
}

#[test]
fn empty_object_reads_zero_bytes_whether_server_says_416_or_200() {
    for ignore_range in [false, true] {
        let s = serve(Vec::new(), Behaviour { ignore_range, ..Default::default() });
        let c = client(&s, 1000);
        let mut buf = vec![0u8; 10];
        assert_eq!(get_into(&c, 0, &mut buf).unwrap(), 0, "ignore_range={ignore_range}");
        let owned = block_on(get::get(&c, Placement::Workers, "bkt", "key", 0, Destination::Allocate { max_len: u64::MAX }, Default::default())).unwrap();
        assert_eq!(owned.owned.unwrap().len(), 0);
    }
}

#[test]
fn truncated_bodies_are_resumed_not_restarted() {
    let data = pattern(8000);
    let s = serve(data.clone(), Behaviour { truncate_bodies: 3, ..Default::default() });
    let c = client(&s, 2000);
    let mut buf = vec![0u8; data.len()];
    assert_eq!(get_into(&c, 0, &mut buf).unwrap(), 8000);
    assert_eq!(buf, data);
    // 4 parts + 3 resumptions of the missing halves.
    assert_eq!(s.gets.load(Ordering::SeqCst), 7);
}

#[test]
fn endless_truncation_fails_as_network_error() {
    let s = serve(pattern(4000), Behaviour { truncate_bodies: usize::MAX, ..Default::default() });
    let c = client(&s, 1000);
    let mut buf = vec![0u8; 4000];
    let err = get_into(&c, 0, &mut buf).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Network, "{err}");
}

#[test]
fn object_replaced_mid_read_is_detected_not_torn() {
    let data = pattern(5000);
    let replacement = vec![0xEEu8; 5000];
    let s = serve(data, Behaviour { replace_after_first: Some(replacement), ..Default::default() });
    let c = client(&s, 1000);
    let mut buf = vec![0u8; 5000];
    let err = get_into(&c, 0, &mut buf).unwrap_err();
    assert_eq!(err.kind, ErrorKind::ObjectChanged, "{err}");
    assert_eq!(err.code, "PreconditionFailed");
}

#[test]
fn missing_key_maps_to_no_such_key_with_code_and_status() {
    let s = serve(pattern(10), Behaviour::default());
    let c = client(&s, 1000);
    let mut buf = vec![0u8; 10];
    let err = block_on(get::get(&c, Placement::Workers, "bkt", "missing", 0, Destination::Caller(&mut buf), Default::default())).unwrap_err();
    assert_eq!((err.kind, err.code.as_str(), err.http_status), (ErrorKind::NoSuchKey, "NoSuchKey", 404));
    // A zero-length read still reports the missing object (through HEAD).
    let err = block_on(get::get(&c, Placement::Workers, "bkt", "missing", 0, Destination::Caller(&mut []), Default::default())).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NoSuchKey);
}

#[test]
fn allocated_destination_is_sized_to_what_was_read() {
    let data = pattern(3500);
    let s = serve(data.clone(), Behaviour::default());
    let c = client(&s, 1000);
    let all = block_on(get::get(&c, Placement::Workers, "bkt", "key", 0, Destination::Allocate { max_len: u64::MAX }, Default::default())).unwrap();
    assert_eq!(all.owned.unwrap().as_slice(), &data[..]);
    let window = block_on(get::get(&c, Placement::Workers, "bkt", "key", 3000, Destination::Allocate { max_len: 2000 }, Default::default())).unwrap();
    assert_eq!(window.owned.unwrap().as_slice(), &data[3000..]);
}

#[test]
fn batch_mixes_caller_buffers_and_allocations_and_reports_each_failure() {
    let data = pattern(2500);
    let s = serve(data.clone(), Behaviour::default());
    let c = client(&s, 1000);
    // Both ways a batch runs: one task on the workers, or every read its own task (the C ABI).
    for spread in [false, true] {
        let mut buf = vec![0u8; 2500];
        let requests = vec![
            GetRequest { bucket: "bkt", key: "a", offset: 0, dest: Destination::Caller(&mut buf), options: Default::default() },
            GetRequest { bucket: "bkt", key: "missing", offset: 0, dest: Destination::Allocate { max_len: u64::MAX }, options: Default::default() },
            GetRequest { bucket: "bkt", key: "b", offset: 500, dest: Destination::Allocate { max_len: u64::MAX }, options: Default::default() },
        ];
        let results = if spread {
            block_on_here(async { Ok::<_, ()>(get::get_many(&c, as_the_c_abi_runs(), requests).await) }).unwrap()
        } else {
            block_on(get::get_many(&c, Placement::Workers, requests))
        };
        assert_eq!(results[0].as_ref().unwrap().written, 2500);
        assert_eq!(results[1].as_ref().unwrap_err().kind, ErrorKind::NoSuchKey);
        assert_eq!(results[2].as_ref().unwrap().owned.as_ref().unwrap().as_slice(), &data[500..]);
        assert_eq!(buf, data);
    }
}

#[test]
fn cancelling_a_spread_batch_waits_for_every_read() {
    // Every read hangs on the shared workers (one task each) until the batch is cancelled.
    let s = serve(pattern(3000), Behaviour { delay: Duration::from_secs(30), ..Default::default() });
    let c = client(&s, 1000);
    let token = cancelled_after(Duration::from_millis(300));
    let mut bufs = vec![vec![0u8; 3000]; 3];
    let requests = bufs
        .iter_mut()
        .map(|buf| GetRequest { bucket: "bkt", key: "key", offset: 0, dest: Destination::Caller(buf), options: Default::default() })
        .collect();
    let started = Instant::now();
    let err = block_on_here(CancelToken::run(Some(&token), async {
        Ok(get::get_many(&c, as_the_c_abi_runs(), requests).await)
    }))
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(10), "cancel took {:?}", started.elapsed());
    assert_eq!(s.gets.load(Ordering::SeqCst), 3, "every read was in flight");
    // Nothing writes into the buffers any more: they are ours again.
    assert!(bufs.iter().all(|b| b.iter().all(|&x| x == 0)));
}

#[test]
fn a_reads_future_stays_small() {
    // Futures are moved whole (into a task, into a batch's list): a large one costs a copy
    // per move. A 16 KiB stack buffer once held across an await in the PUT answer path made
    // every GET's future 32 KiB; a batch of 2,000 reads copied about 200 MB.
    let s = serve(pattern(10), Behaviour::default());
    let c = client(&s, 1000);
    let mut buf = vec![0u8; 10];
    let read = get::get(&c, as_the_c_abi_runs(), "bkt", "key", 0, Destination::Caller(&mut buf), Default::default());
    let size = std::mem::size_of_val(&read);
    assert!(size <= 8 * 1024, "a read's future is {size} bytes");
}

/// A token another thread cancels after `delay`.
fn cancelled_after(delay: Duration) -> CancelToken {
    let token = CancelToken::new();
    let trigger = token.clone();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        trigger.cancel();
    });
    token
}

#[test]
fn cancellation_returns_promptly() {
    let s = serve(pattern(4000), Behaviour { delay: Duration::from_secs(30), ..Default::default() });
    let c = client(&s, 1000);
    let token = cancelled_after(Duration::from_millis(200));
    let mut buf = vec![0u8; 4000];
    let started = Instant::now();
    let err = block_on(CancelToken::run(Some(&token), get::get(&c, Placement::Workers, "bkt", "key", 0, Destination::Caller(&mut buf), Default::default())))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(10), "cancel took {:?}", started.elapsed());
}

/// The first part arrives at once; the others hang on the shared workers until the token
/// fires. `cancelled_read` must return only once every part is gone (so the buffer is the
/// caller's again), and the place it ran must still serve `read` afterwards.
fn cancel_while_later_parts_run(
    cancelled_read: impl FnOnce(&Client, &CancelToken, &mut [u8]) -> crate::Result<u64>,
    read: fn(&Client, u64, &mut [u8]) -> crate::Result<u64>,
) {
    let data = pattern(4000);
    let s = serve(data.clone(), Behaviour { delay: Duration::from_secs(30), delay_from: 1, ..Default::default() });
    let c = client(&s, 1000);
    let token = cancelled_after(Duration::from_millis(300));
    let mut buf = vec![0u8; 4000];
    let started = Instant::now();
    let err = cancelled_read(&c, &token, &mut buf).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(10), "cancel took {:?}", started.elapsed());
    assert_eq!(&buf[..1000], &data[..1000], "the first part had arrived");
    assert_eq!(s.gets.load(Ordering::SeqCst), 4, "the other parts were in flight");
    let quick = serve(data.clone(), Behaviour::default());
    let c2 = client(&quick, 1000);
    assert_eq!(read(&c2, 0, &mut buf).unwrap(), 4000);
    assert_eq!(buf, data);
}

#[test]
fn cancelling_while_later_parts_run_on_the_workers_waits_for_them() {
    // Read on the calling thread's runtime; afterwards the same thread's runtime and session
    // still work.
    cancel_while_later_parts_run(
        |c, token, buf| {
            let read = get::get(c, as_the_c_abi_runs(), "bkt", "key", 0, Destination::Caller(buf), Default::default());
            block_on_here(CancelToken::run(Some(token), read)).map(|f| f.written)
        },
        get_into,
    );
}

#[test]
fn cancelling_an_op_while_its_parts_run_waits_for_them_on_a_worker() {
    // As an async op: the cancelled read's future is dropped on a worker, which must wait for
    // the parts without stalling the workers that drop them; the workers serve reads after.
    cancel_while_later_parts_run(
        |c, token, buf| {
            let read = get::get(c, as_an_op_runs(), "bkt", "key", 0, Destination::Caller(buf), Default::default());
            block_on(CancelToken::run(Some(token), read)).map(|f| f.written)
        },
        get_into_as_an_op,
    );
}

/// `get_ranges` as `fasts3_get_ranges` runs it, packed output (one slice per range, in order).
fn get_ranges(c: &Client, wanted: &[(i64, u64)], max_gap: u64) -> crate::Result<(Vec<u8>, Vec<u64>)> {
    let wanted: Vec<ByteRange> = wanted.iter().map(|&(offset, len)| ByteRange { offset, len }).collect();
    let mut out = vec![0xEEu8; wanted.iter().map(|r| r.len as usize).sum()];
    let got = block_on_here(ranges::get_ranges(c, as_the_c_abi_runs(), "bkt", "key", &wanted, None, &mut out, max_gap, Default::default()))?;
    Ok((out, got))
}

/// What `get_ranges` must return: each range's bytes of `data`, the rest of its slice untouched.
fn expected_ranges(data: &[u8], wanted: &[(i64, u64)]) -> (Vec<u8>, Vec<u64>) {
    let size = data.len() as i64;
    let (mut out, mut got) = (Vec::new(), Vec::new());
    for &(offset, len) in wanted {
        let start = if offset < 0 { (size + offset).max(0) } else { offset.min(size) } as usize;
        let end = (start + len as usize).min(data.len());
        out.extend_from_slice(&data[start..end]);
        out.resize(out.len() + len as usize - (end - start), 0xEE);
        got.push((end - start) as u64);
    }
    (out, got)
}

/// No two positions within 64 KiB share a byte pattern of period 256 (a byte landing at the
/// wrong multiple of 256 shows).
fn distinct(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8).collect()
}

#[test]
fn coalesced_ranges_land_in_their_slices_across_parts_and_resumes() {
    let data = distinct(10_500);
    // Overlapping, nested, duplicated, touching, past the end, a suffix, empty.
    let wanted = [
        (100, 3000),
        (2500, 2000),
        (100, 3000),
        (700, 50),
        (4500, 10),
        (9000, 3000),
        (-200, 100),
        (20_000, 5),
        (6000, 0),
        (5990, 20),
    ];
    let want = expected_ranges(&data, &wanted);
    for truncate_bodies in [0, 3] {
        let s = serve(data.clone(), Behaviour { truncate_bodies, ..Default::default() });
        let c = client(&s, 1000);
        for max_gap in [0, 1, 1000, u64::MAX] {
            let got = get_ranges(&c, &wanted, max_gap).unwrap();
            assert!(got == want, "max_gap {max_gap}, truncate_bodies {truncate_bodies}: {:?} != {:?}", got.1, want.1);
        }
    }
}

#[test]
fn a_span_in_which_the_server_ignores_range_still_lands_right() {
    let data = distinct(5000);
    let s = serve(data.clone(), Behaviour { ignore_range: true, ..Default::default() });
    let c = client(&s, 1000);
    let wanted = [(100, 200), (250, 100), (4000, 2000)];
    assert!(get_ranges(&c, &wanted, u64::MAX).unwrap() == expected_ranges(&data, &wanted));
}

#[test]
fn a_span_whose_bodies_always_break_off_fails_as_network_error() {
    let s = serve(distinct(6000), Behaviour { truncate_bodies: usize::MAX, ..Default::default() });
    let c = client(&s, 1000);
    let err = get_ranges(&c, &[(0, 10), (3000, 10), (2000, 500)], u64::MAX).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Network, "{err}");
}

#[test]
fn a_span_replaced_mid_read_fails_as_object_changed() {
    let data = distinct(6000);
    let s = serve(data.clone(), Behaviour { replace_after_first: Some(distinct(6001)), ..Default::default() });
    let c = client(&s, 1000);
    let err = get_ranges(&c, &[(0, 10), (3000, 10), (2000, 500)], u64::MAX).unwrap_err();
    assert_eq!(err.kind, ErrorKind::ObjectChanged, "{err}");
}
