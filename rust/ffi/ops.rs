//! Asynchronous operations: submit a read or an upload now, collect its outcome later from a
//! completion queue the caller polls.
//!
//! Decisions (issue 10, "Async completion"):
//!
//! - **A polled queue, not a callback.** Ops finish on the shared tokio workers; a callback
//!   would run foreign code (Python, Go) on those threads. Instead each finished op leaves a
//!   completion in its queue, and the caller collects it on its own thread with
//!   `fasts3_completion_queue_pop`. The queue has a file descriptor (an eventfd on Linux, a
//!   pipe on other Unixes) that is readable exactly while completions wait, so an event loop
//!   (asyncio's `add_reader`, epoll, kqueue, libuv) wakes up for them; nothing else wakes it.
//! - **Ops run as tasks on the shared workers** (`engine::runtime`, `Placement::Workers`), as
//!   batches do: a submit only copies its strings and spawns a task, so it returns at once.
//!   Uploads therefore send copies of their parts (lending caller memory to hyper needs the
//!   calling-thread `Offload` permission, see `engine::payload`); reads write straight into
//!   the caller's buffer, every part of a large read a task of its own
//!   (`Placement::WorkersSpreading`), so that its bytes are received on every core.
//! - **Buffers.** A caller buffer is lent to the op from submit until its completion has been
//!   popped (or the queue freed). The only raw pointers live in [`LentBuffer`] / [`LentData`],
//!   made by `unsafe` constructors at this boundary; an op's future (and with it every borrow
//!   of the buffer) is dropped *before* its completion is queued, so a popped completion
//!   means no write into the buffer is still in flight, whether the op succeeded, failed,
//!   was cancelled, or panicked.
//! - **Cancellation.** `fasts3_op_cancel` stops one op (its completion then says
//!   `FASTS3_CANCELLED`, unless it had already finished). Freeing an op handle does *not*
//!   cancel: the handle is only the means to cancel, and `out_op` may be NULL for callers that
//!   never cancel. `fasts3_completion_queue_free` cancels every op still running on the queue
//!   and waits until each one's future is gone before it returns; their completions are
//!   discarded.
//! - **Owned client.** An op holds its own reference to the client, so the client handle may
//!   be freed while ops run.
//! - **Errors and results as the blocking calls give them.** A failed op's completion holds
//!   the error record its blocking twin would hand back (`fasts3_error::of`, the one
//!   conversion, naming the op's bucket and key); `fasts3_completion_take_error` gives the
//!   caller a copy once, so async callers handle the one error shape (request id included),
//!   while the older accessors keep reading the completion's own record. An upload's
//!   completion counts its parts as `fasts3_put_from` does (`fasts3_completion_parts`).
//! - **fork().** A child does not inherit the workers that run the parent's ops: a queue made
//!   before fork() refuses submits and pops in the child (`FASTS3_INVALID_ARGUMENT`), and
//!   freeing it there waits for nothing. Make a new queue in the child.

use fasts3_engine::get::{self, Destination, ReadOptions};
use fasts3_engine::put;
use fasts3_engine::runtime::{self, Placement};
use fasts3_engine::result_buffer::ResultBuffer;
use fasts3_engine::{CancelToken, Client, Error, ErrorKind, Result};
use crate::ffi::boundary::{bytes, bytes_mut, export, guard_infallible, optional_out, out_ptr, panic_failure, Failure, FfiResult};
use crate::ffi::error::fasts3_error;
use crate::ffi::client::{client_ref, fasts3_client};
use crate::ffi::handles::{free_handle, handle_mut, handle_or_report, handle_ref, handle_type, into_handle, read_handle};
use crate::ffi::status::fasts3_status;
use crate::ffi::transfer::{fasts3_bytes, fasts3_read_options, read_options};
use crate::ffi::writes::{fasts3_put_options, put_options};
use std::collections::{HashMap, VecDeque};
use std::ffi::c_char;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

// ---- handles --------------------------------------------------------------------------------

/// A completion queue: where submitted ops leave their outcome. Create with
/// `fasts3_completion_queue_new`, release with `fasts3_completion_queue_free`.
///
/// Thread safety: any thread may submit to, pop from or poll a queue, concurrently.
#[allow(non_camel_case_types)]
pub struct fasts3_completion_queue {
    queue: Arc<Queue>,
}
handle_type!(fasts3_completion_queue, CompletionQueue);

/// A submitted operation, to cancel it (`fasts3_op_cancel`). Release with `fasts3_op_free`,
/// before or after the op finished: freeing does not cancel it.
///
/// Thread safety: `fasts3_op_cancel` may be called from any thread, concurrently;
/// `fasts3_op_free` only once no other call uses the op.
#[allow(non_camel_case_types)]
pub struct fasts3_op {
    cancel: CancelToken,
}
handle_type!(fasts3_op, Op);

/// The outcome of one op, popped from its queue. Read it with the `fasts3_completion_*`
/// accessors, take a failed op's error object with `fasts3_completion_take_error`, release
/// it with `fasts3_completion_free`.
///
/// Thread safety: the accessors and `fasts3_completion_take_error` do not modify it and may
/// be called from any thread, concurrently; `fasts3_completion_take_bytes` and
/// `fasts3_completion_free` need the completion to themselves.
#[allow(non_camel_case_types)]
pub struct fasts3_completion {
    user_data: u64,
    status: fasts3_status,
    written: u64,
    parts: u32,
    bytes: Option<ResultBuffer>,
    /// A failed op's error, made as a blocking call makes its `*err` (None on success). The
    /// accessors read it; `fasts3_completion_take_error` hands the caller a copy, once.
    error: Option<fasts3_error>,
    error_taken: std::sync::atomic::AtomicBool,
}
handle_type!(fasts3_completion, Completion);

// ---- the queue ------------------------------------------------------------------------------

/// What a finished op produced.
enum Outcome {
    /// Bytes written into the caller's buffer.
    Written(u64),
    /// A buffer the op allocated (`fasts3_submit_get`).
    Allocated(ResultBuffer),
    /// An upload: its bytes, and the parts sent (0 for a single PUT), as `fasts3_put_from`
    /// counts them.
    Uploaded { bytes: u64, parts: u32 },
}

/// The object an op is about: what its error object names.
struct Object {
    bucket: String,
    key: String,
}

struct Done {
    user_data: u64,
    object: Object,
    result: FfiResult<Outcome>,
}

struct Queue {
    /// The process that made the queue: a forked child has none of the tasks running its ops.
    pid: u32,
    state: Mutex<QueueState>,
    /// Signalled when the last running op of a closed queue has ended.
    idle: Condvar,
    wakeup: Wakeup,
}

struct QueueState {
    ready: VecDeque<Done>,
    /// The ops not finished yet, by id: what `close` cancels and waits for.
    running: HashMap<u64, CancelToken>,
    next_id: u64,
    closed: bool,
}

impl Queue {
    fn new() -> FfiResult<Queue> {
        Ok(Queue {
            pid: std::process::id(),
            state: Mutex::new(QueueState { ready: VecDeque::new(), running: HashMap::new(), next_id: 0, closed: false }),
            idle: Condvar::new(),
            wakeup: Wakeup::new()?,
        })
    }

    fn check_process(&self) -> FfiResult<()> {
        if self.pid != std::process::id() {
            return Err(Error::invalid(
                "this completion queue was made before fork(): its ops ran in the parent; make a new queue in this process",
            )
            .into());
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // Nothing panics while the lock is held; a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Record a new op; its id for `finish`.
    fn register(&self, cancel: CancelToken) -> u64 {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.running.insert(id, cancel);
        id
    }

    /// An op ended (its future is already dropped): queue its outcome, unless the queue was
    /// closed meanwhile.
    fn finish(&self, id: u64, done: Done) {
        let discarded;
        {
            let mut state = self.lock();
            state.running.remove(&id);
            if state.closed {
                discarded = Some(done);
                if state.running.is_empty() {
                    self.idle.notify_all();
                }
            } else {
                discarded = None;
                state.ready.push_back(done);
                if state.ready.len() == 1 {
                    self.wakeup.set();
                }
            }
        }
        drop(discarded); // frees an allocated result outside the lock
    }

    fn pop(&self) -> Option<Done> {
        let mut state = self.lock();
        let done = state.ready.pop_front();
        if done.is_some() && state.ready.is_empty() {
            self.wakeup.clear();
        }
        done
    }

    /// Cancel every running op and wait until all of them have ended; drop what was queued.
    fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        for cancel in state.running.values() {
            cancel.cancel();
        }
        let queued = std::mem::take(&mut state.ready);
        if !queued.is_empty() {
            self.wakeup.clear();
        }
        while !state.running.is_empty() {
            state = self.idle.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        drop(state);
        drop(queued);
    }
}

// ---- the wake-up fd -------------------------------------------------------------------------

/// A file descriptor readable exactly while the queue holds completions. Set and cleared
/// only under the queue's lock, on the empty <-> non-empty transitions.
#[cfg(target_os = "linux")]
struct Wakeup {
    fd: std::os::fd::OwnedFd,
}

#[cfg(target_os = "linux")]
impl Wakeup {
    fn new() -> FfiResult<Wakeup> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain syscall; no pointer arguments.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(Error::new(ErrorKind::Network, format!("eventfd failed: {}", std::io::Error::last_os_error())).into());
        }
        // SAFETY: a new descriptor that nothing else owns.
        Ok(Wakeup { fd: unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) } })
    }

    fn raw(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.fd.as_raw_fd()
    }

    fn set(&self) {
        let one: u64 = 1;
        // SAFETY: writes the 8 bytes of a live local to our own eventfd. It cannot fail here:
        // the counter is 0 or 1 (set only on the empty -> non-empty transition).
        unsafe { libc::write(self.raw(), (&one as *const u64).cast(), 8) };
    }

    fn clear(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live local; EAGAIN (already 0) is fine.
        unsafe { libc::read(self.raw(), (&mut count as *mut u64).cast(), 8) };
    }
}

#[cfg(all(unix, not(target_os = "linux")))]
struct Wakeup {
    read: std::os::fd::OwnedFd,
    write: std::os::fd::OwnedFd,
}

#[cfg(all(unix, not(target_os = "linux")))]
impl Wakeup {
    fn new() -> FfiResult<Wakeup> {
        use std::os::fd::FromRawFd;
        let mut fds = [0i32; 2];
        // SAFETY: `fds` is a live array of the two ints pipe() writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(Error::new(ErrorKind::Network, format!("pipe failed: {}", std::io::Error::last_os_error())).into());
        }
        for fd in fds {
            // SAFETY: plain fcntl calls on the descriptors pipe() just made.
            unsafe {
                libc::fcntl(fd, libc::F_SETFL, libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK);
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        // SAFETY: new descriptors that nothing else owns.
        Ok(unsafe { Wakeup { read: std::os::fd::OwnedFd::from_raw_fd(fds[0]), write: std::os::fd::OwnedFd::from_raw_fd(fds[1]) } })
    }

    fn raw(&self) -> i32 {
        use std::os::fd::AsRawFd;
        self.read.as_raw_fd()
    }

    fn set(&self) {
        use std::os::fd::AsRawFd;
        // SAFETY: writes one byte of a live local to our own pipe.
        unsafe { libc::write(self.write.as_raw_fd(), b"x".as_ptr().cast(), 1) };
    }

    fn clear(&self) {
        let mut sink = [0u8; 64];
        // SAFETY: reads into a live local buffer of its length; stops at EAGAIN (empty).
        while unsafe { libc::read(self.raw(), sink.as_mut_ptr().cast(), sink.len()) } > 0 {}
    }
}

/// Without file descriptors (Windows): callers poll with `fasts3_completion_queue_pop`.
#[cfg(not(unix))]
struct Wakeup;

#[cfg(not(unix))]
impl Wakeup {
    fn new() -> FfiResult<Wakeup> {
        Ok(Wakeup)
    }
    fn raw(&self) -> i32 {
        -1
    }
    fn set(&self) {}
    fn clear(&self) {}
}

// ---- caller memory lent to an op ------------------------------------------------------------

/// A caller buffer an op writes into, from its submit until its completion is queued.
struct LentBuffer {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the memory is lent to one op alone (the constructor's contract), so the task may
// write it from whichever worker thread polls it.
unsafe impl Send for LentBuffer {}

impl LentBuffer {
    /// # Safety
    /// `ptr` is NULL with `len` 0, or valid for reads and writes of `len` bytes (at most
    /// isize::MAX) that nothing else reads or writes until the value is dropped.
    unsafe fn new(ptr: *mut u8, len: usize) -> LentBuffer {
        LentBuffer { ptr, len }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: valid, exclusive and at most isize::MAX bytes until `self` is dropped (the
        // constructor's contract); the slice borrows `self`, so it cannot outlive it.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

/// Caller data an upload reads, from its submit until its completion is queued.
struct LentData {
    ptr: *const u8,
    len: usize,
}

// SAFETY: the memory is only read, and nothing writes it while lent (the constructor's
// contract), so reading it from any worker thread is sound.
unsafe impl Send for LentData {}

impl LentData {
    /// # Safety
    /// `ptr` is NULL with `len` 0, or valid for reads of `len` bytes (at most isize::MAX)
    /// that nothing writes until the value is dropped.
    unsafe fn new(ptr: *const u8, len: usize) -> LentData {
        LentData { ptr, len }
    }

    fn as_slice(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: valid and unchanged until `self` is dropped (the constructor's contract).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

// ---- running an op --------------------------------------------------------------------------

type Work = Pin<Box<dyn Future<Output = Result<Outcome>> + Send + 'static>>;

/// The task of one op: its work, then the duty to report it. Fields drop in declaration
/// order, so if the runtime drops the task early, the work (and every borrow of caller
/// memory) is gone before the completion is queued.
struct OpTask {
    work: Option<Work>,
    report: Report,
}

/// Queues the op's completion exactly once; if the task is dropped unfinished, as cancelled.
struct Report {
    queue: Arc<Queue>,
    id: u64,
    user_data: u64,
    /// Taken by `send`.
    object: Option<Object>,
}

impl Report {
    fn send(&mut self, result: FfiResult<Outcome>) {
        if let Some(object) = self.object.take() {
            self.queue.finish(self.id, Done { user_data: self.user_data, object, result });
        }
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        if self.object.is_some() {
            self.send(Err(Error::cancelled().context("the runtime dropped the operation").into()));
        }
    }
}

impl Future for OpTask {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let Some(work) = this.work.as_mut() else { return Poll::Ready(()) };
        let result = match catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(result)) => result.map_err(Failure::from),
            Err(payload) => Err(panic_failure(payload)),
        };
        // The work ends here, before its completion can be seen: no write after a pop.
        let work = this.work.take();
        let _ = catch_unwind(AssertUnwindSafe(move || drop(work)));
        this.report.send(result);
        Poll::Ready(())
    }
}

/// Start `work` (about `object`) on the shared workers, cancellable through the returned
/// handle, reporting to `queue` with `user_data`.
fn spawn_op(
    queue: &Arc<Queue>,
    user_data: u64,
    object: Object,
    work: impl Future<Output = Result<Outcome>> + Send + 'static,
) -> fasts3_op {
    let cancel = CancelToken::new();
    let id = queue.register(cancel.clone());
    let token = cancel.clone();
    // A cancelled op's clean-up (a started multipart upload's abort) finishes before its
    // completion is queued, as the blocking calls finish it before they return.
    let work: Work = Box::pin(runtime::awaiting_cleanups(async move { CancelToken::run(Some(&token), work).await }));
    let report = Report { queue: queue.clone(), id, user_data, object: Some(object) };
    runtime::runtime().spawn(OpTask { work: Some(work), report });
    fasts3_op { cancel }
}

/// Where an op's read runs: on the shared workers, each part of a large read a task of its
/// own (one task for them all would receive every part's bytes on one core).
fn spreading() -> Placement {
    // An op's future is owned by its OpTask, which polls it to completion or drops it (in
    // `poll`, or with the task); what it borrows lives in the future itself (strings, client)
    // or outlives it (a LentBuffer's memory is the op's until its completion is queued).
    // SAFETY: so the future given this permission is never leaked, and no borrow ends first.
    let offload = unsafe { runtime::Offload::new() };
    Placement::WorkersSpreading(offload)
}

/// The queue behind a `queue` argument, usable in this process.
///
/// # Safety
/// `queue` is not freed during the call.
unsafe fn queue_ref(queue: *const fasts3_completion_queue) -> FfiResult<Arc<Queue>> {
    // SAFETY: forwarded contract.
    let q = unsafe { handle_ref(queue, "queue") }?;
    q.queue.check_process()?;
    Ok(Arc::clone(&q.queue))
}

fn check_offset(offset: u64) -> FfiResult<()> {
    if offset > i64::MAX as u64 {
        return Err(Error::invalid(format!("offset {offset} is out of range")).into());
    }
    Ok(())
}

/// Owned copies of read options, for an op that outlives the submit call.
struct OwnedReadOptions {
    if_match: Option<String>,
    version_id: Option<String>,
    part_size: Option<u64>,
}

impl OwnedReadOptions {
    fn of(options: ReadOptions<'_>) -> Self {
        OwnedReadOptions {
            if_match: options.if_match.map(str::to_owned),
            version_id: options.version_id.map(str::to_owned),
            part_size: options.part_size,
        }
    }
    fn borrow(&self) -> ReadOptions<'_> {
        ReadOptions { if_match: self.if_match.as_deref(), version_id: self.version_id.as_deref(), part_size: self.part_size }
    }
}

// ---- exports: the queue ---------------------------------------------------------------------

/// Create a completion queue in `*out`.
///
/// Ownership: the caller owns `*out` and releases it with `fasts3_completion_queue_free`.
///
/// Thread safety: any thread, concurrently with any other call.
///
/// # Safety
/// - `out` is NULL or points to a writable `fasts3_completion_queue *`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_completion_queue_new(out: *mut *mut fasts3_completion_queue, err: *mut *mut fasts3_error) -> fasts3_status {
    export!(err, |_call| {
        // SAFETY: NULL or writable (this function's contract).
        let out = unsafe { out_ptr(out, "out") }?;
        *out = into_handle(fasts3_completion_queue { queue: Arc::new(Queue::new()?) });
        Ok(())
    })
}

/// A file descriptor that is readable exactly while completions wait in `queue`: wait for it
/// with poll/epoll/kqueue (or an event loop's reader callback), then pop until
/// `fasts3_completion_queue_pop` gives NULL. Only wait on it: never read, write or close it
/// (popping the last completion clears it). An eventfd on Linux, a pipe's read end on other
/// Unixes; -1 on other systems (poll with `fasts3_completion_queue_pop` there), and for a
/// NULL or freed queue. Valid until `fasts3_completion_queue_free`.
///
/// Thread safety: any thread, concurrently with other calls on `queue` (not
/// `fasts3_completion_queue_free`).
///
/// # Safety
/// - `queue` is not freed until this call returns.
#[no_mangle]
pub unsafe extern "C" fn fasts3_completion_queue_fd(queue: *const fasts3_completion_queue) -> i32 {
    // SAFETY: not freed during the call (this function's contract).
    unsafe { read_handle(queue, "fasts3_completion_queue_fd", -1, |q| q.queue.wakeup.raw()) }
}

/// Take the oldest completion waiting in `queue`, without blocking: `*out` is the completion
/// (owned by the caller: release it with `fasts3_completion_free`), or NULL when none waits.
/// Completions arrive in the order ops finish, not the order they were submitted: match them
/// to ops by `fasts3_completion_user_data`.
///
/// Fails with `FASTS3_INVALID_ARGUMENT` in a forked child for a queue made before fork().
///
/// Thread safety: any thread, concurrently with submits and other pops on `queue`: each
/// completion is popped by exactly one of them.
///
/// # Safety
/// - `queue` is not freed until this call returns.
/// - `out` is NULL or points to a writable `fasts3_completion *`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_completion_queue_pop(
    queue: *const fasts3_completion_queue,
    out: *mut *mut fasts3_completion,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |_call| {
        // SAFETY: `queue` not freed, `out` NULL or writable, during the call (this function's
        // contract).
        let (queue, out) = unsafe { (queue_ref(queue)?, out_ptr(out, "out")?) };
        *out = match queue.pop() {
            None => std::ptr::null_mut(),
            Some(done) => into_handle(completion(done)),
        };
        Ok(())
    })
}

fn completion(done: Done) -> fasts3_completion {
    let mut c = fasts3_completion {
        user_data: done.user_data,
        status: fasts3_status::FASTS3_OK,
        written: 0,
        parts: 0,
        bytes: None,
        error: None,
        error_taken: std::sync::atomic::AtomicBool::new(false),
    };
    match done.result {
        Ok(Outcome::Written(n)) => c.written = n,
        Ok(Outcome::Allocated(data)) => {
            c.written = data.len() as u64;
            c.bytes = Some(data);
        }
        Ok(Outcome::Uploaded { bytes, parts }) => (c.written, c.parts) = (bytes, parts),
        Err(failure) => {
            c.status = failure.status;
            c.error = Some(fasts3_error::of(&failure, Some(&done.object.bucket), Some(&done.object.key)));
        }
    }
    c
}

/// Release a queue. Ops still running on it are cancelled, and this call waits until every
/// one of them has ended, so that none writes into a caller buffer after it returns (the
/// wait is short: a cancelled op stops at its next step). Their completions, and those not
/// popped yet, are discarded (allocated results freed). Completions already popped stay
/// valid. NULL is ignored; a pointer that is not a live queue (a double free) is reported on
/// stderr and otherwise ignored (debug builds of libfasts3 abort instead). In a forked child,
/// a queue made before fork() is released without waiting (its ops ran in the parent).
///
/// Thread safety: any thread, once no other call uses `queue` (no submit, pop or fd call on
/// it is running).
///
/// # Safety
/// - `queue` is not in use by a call on another thread.
#[no_mangle]
pub unsafe extern "C" fn fasts3_completion_queue_free(queue: *mut fasts3_completion_queue) {
    guard_infallible((), || {
        // SAFETY: not in use by another call (this function's contract).
        if let Some(q) = unsafe { handle_or_report(queue, "fasts3_completion_queue_free") } {
            if q.queue.check_process().is_ok() {
                q.queue.close();
            }
        }
        // SAFETY: as above; an unknown pointer was reported and is not touched.
        unsafe { free_handle(queue, "fasts3_completion_queue_free") }
    })
}

// ---- exports: submitting --------------------------------------------------------------------

/// Start filling `buf[0..buf_len)` with bytes `[offset, offset + buf_len)` of object `key` in
/// `bucket` (both `(ptr, len)` UTF-8, copied before this returns), and return at once. The
/// read runs on libfasts3's worker threads, as `fasts3_get_into_with_options` would (parallel
/// ranged GETs, `options` NULL for the defaults), and its outcome arrives in `queue` as a
/// completion carrying `user_data`: its status, and on success the number of bytes written
/// (`buf_len`, or fewer when the object ends first).
///
/// Lifetime of `buf`: lent to the op from this call until its completion has been popped
/// from `queue` (or `queue` freed): the caller must keep it alive and must neither read nor
/// write it meanwhile. After that no write into it happens any more, whatever the outcome.
/// On failure of this call nothing was started and nothing will be queued.
///
/// `*out_op` (if `out_op` is not NULL) is a handle to cancel the op with `fasts3_op_cancel`;
/// the caller owns it and releases it with `fasts3_op_free` (freeing does not cancel). The
/// op keeps its own reference to the client: `client` may be freed while it runs.
/// Thread safety: any thread may submit, to any queue, with any client.
///
/// # Safety
/// - `client`, `queue` are not freed until this call returns.
/// - `bucket` and `key` point to `bucket_len` and `key_len` readable bytes (or are NULL when
///   the length is 0), not modified until this call returns.
/// - `buf` points to `buf_len` writable bytes (or is NULL when `buf_len` is 0) that stay
///   valid, and that nothing else reads or writes, until the op's completion is popped.
/// - `options` is NULL or as for `fasts3_get_into_with_options` (read during this call only).
/// - `out_op` is NULL or points to a writable `fasts3_op *`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_submit_get_into(
    client: *const fasts3_client,
    queue: *const fasts3_completion_queue,
    bucket: *const u8,
    bucket_len: usize,
    key: *const u8,
    key_len: usize,
    offset: u64,
    buf: *mut u8,
    buf_len: usize,
    options: *const fasts3_read_options,
    user_data: u64,
    out_op: *mut *mut fasts3_op,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |call| {
        // SAFETY: the pointers meet this function's contract (handles live, strings and options
        // readable, `buf` writable for `buf_len`, `out_op` NULL or writable); `bytes_mut` only
        // checks NULL and the length before the buffer is lent, and its slice is not kept.
        let (client, queue, (bucket, key), options, _, out_op) = unsafe {
            (
                client_ref(client)?,
                queue_ref(queue)?,
                call.object(bucket, bucket_len, key, key_len)?,
                read_options(options)?,
                bytes_mut(buf, buf_len, "buf")?,
                optional_out(out_op),
            )
        };
        let client: Arc<Client> = Arc::clone(client);
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        options.check()?;
        let options = OwnedReadOptions::of(options);
        check_offset(offset)?;
        // SAFETY: `buf` is valid and exclusively the op's until its completion is popped or
        // the queue freed (this function's contract); the op drops the LentBuffer before
        // queueing its completion (OpTask), and queue_free waits for running ops.
        let mut target = unsafe { LentBuffer::new(buf, buf_len) };
        let object = Object { bucket: bucket.clone(), key: key.clone() };
        let op = spawn_op(&queue, user_data, object, async move {
            let dest = Destination::Caller(target.as_mut_slice());
            let fetched = get::get(&client, spreading(), &bucket, &key, offset, dest, options.borrow()).await?;
            Ok(Outcome::Written(fetched.written))
        });
        if let Some(out_op) = out_op {
            *out_op = into_handle(op);
        }
        Ok(())
    })
}

/// Start reading up to `length` bytes (`FASTS3_TO_END` for all) of an object from `offset`
/// into a buffer libfasts3 allocates, and return at once; as `fasts3_get_with_options`, but
/// the result arrives in `queue` as a completion carrying `user_data`. Take the bytes with
/// `fasts3_completion_take_bytes` (`fasts3_completion_written` is their length). Other
/// arguments, ownership and thread safety as for `fasts3_submit_get_into`.
///
/// # Safety
/// - `client`, `queue` are not freed until this call returns.
/// - `bucket` and `key` point to `bucket_len` and `key_len` readable bytes (or are NULL when
///   the length is 0), not modified until this call returns.
/// - `options` is NULL or as for `fasts3_get_into_with_options` (read during this call only).
/// - `out_op` is NULL or points to a writable `fasts3_op *`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_submit_get(
    client: *const fasts3_client,
    queue: *const fasts3_completion_queue,
    bucket: *const u8,
    bucket_len: usize,
    key: *const u8,
    key_len: usize,
    offset: u64,
    length: u64,
    options: *const fasts3_read_options,
    user_data: u64,
    out_op: *mut *mut fasts3_op,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |call| {
        // SAFETY: every pointer argument meets this function's contract (handles live,
        // strings and options readable, `out_op` NULL or writable, for the call).
        let (client, queue, (bucket, key), options, out_op) = unsafe {
            (
                client_ref(client)?,
                queue_ref(queue)?,
                call.object(bucket, bucket_len, key, key_len)?,
                read_options(options)?,
                optional_out(out_op),
            )
        };
        let client: Arc<Client> = Arc::clone(client);
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        options.check()?;
        let options = OwnedReadOptions::of(options);
        check_offset(offset)?;
        let object = Object { bucket: bucket.clone(), key: key.clone() };
        let op = spawn_op(&queue, user_data, object, async move {
            let dest = Destination::Allocate { max_len: length };
            let fetched = get::get(&client, spreading(), &bucket, &key, offset, dest, options.borrow()).await?;
            Ok(Outcome::Allocated(fetched.owned.unwrap_or_else(ResultBuffer::empty)))
        });
        if let Some(out_op) = out_op {
            *out_op = into_handle(op);
        }
        Ok(())
    })
}

/// Start uploading `data[0..data_len)` as object `key` of `bucket`, and return at once; as
/// `fasts3_put_from` (one PUT up to the threshold, a parallel multipart upload above it, each
/// request checksummed; a failed or cancelled multipart upload is aborted), but the outcome
/// arrives in `queue` as a completion carrying `user_data`, whose `written` is `data_len` on
/// success and `fasts3_completion_parts` the number of parts sent (0 for a single PUT), as
/// `fasts3_put_from` reports them. Parts are copied from `data` as they are sent (at most
/// `max_concurrency` parts in flight), so the extra memory stays bounded. A cancelled or
/// failed multipart upload is aborted before its completion is queued.
///
/// Lifetime of `data`: lent to the op until its completion has been popped from `queue` (or
/// `queue` freed); the caller keeps it alive and unchanged meanwhile. Options, `out_op`,
/// ownership and thread safety as for `fasts3_submit_get_into`.
///
/// # Safety
/// - `client`, `queue` are not freed until this call returns.
/// - `bucket` and `key` point to `bucket_len` and `key_len` readable bytes (or are NULL when
///   the length is 0), not modified until this call returns.
/// - `data` points to `data_len` readable bytes (or is NULL when `data_len` is 0) that stay
///   valid, and that nothing writes, until the op's completion is popped.
/// - `options` is NULL or as for `fasts3_put_from` (read during this call only).
/// - `out_op` is NULL or points to a writable `fasts3_op *`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_submit_put_from(
    client: *const fasts3_client,
    queue: *const fasts3_completion_queue,
    bucket: *const u8,
    bucket_len: usize,
    key: *const u8,
    key_len: usize,
    data: *const u8,
    data_len: usize,
    options: *const fasts3_put_options,
    user_data: u64,
    out_op: *mut *mut fasts3_op,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |call| {
        // SAFETY: the pointers meet this function's contract (handles live, strings and options
        // readable and copied, `data` readable for `data_len`, `out_op` NULL or writable); `bytes`
        // only checks NULL and the length before the data is lent, and its slice is not kept.
        let (client, queue, (bucket, key), options, _, out_op) = unsafe {
            (
                client_ref(client)?,
                queue_ref(queue)?,
                call.object(bucket, bucket_len, key, key_len)?,
                put_options(options)?,
                bytes(data, data_len, "data")?,
                optional_out(out_op),
            )
        };
        let client: Arc<Client> = Arc::clone(client);
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        // SAFETY: `data` is valid and unchanged until the op's completion is popped or the
        // queue freed (this function's contract); the op drops the LentData before queueing
        // its completion (OpTask), and queue_free waits for running ops.
        let source = unsafe { LentData::new(data, data_len) };
        let object = Object { bucket: bucket.clone(), key: key.clone() };
        let op = spawn_op(&queue, user_data, object, async move {
            let data = source.as_slice();
            let uploaded = put::put(&client, Placement::Workers, &bucket, &key, data, &options).await?;
            Ok(Outcome::Uploaded { bytes: data.len() as u64, parts: uploaded.parts })
        });
        if let Some(out_op) = out_op {
            *out_op = into_handle(op);
        }
        Ok(())
    })
}

// ---- exports: ops ---------------------------------------------------------------------------

/// Cancel the op: it stops at its next step, and its completion says `FASTS3_CANCELLED`
/// (unless it had finished already; then nothing changes). As always, the completion is
/// queued only once the op no longer touches its buffer. NULL is ignored; a pointer that is
/// not a live op (already freed) is reported on stderr and otherwise ignored (debug builds
/// of libfasts3 abort instead).
///
/// Thread safety: may be called from any thread, any number of times, concurrently.
///
/// # Safety
/// - `op` is not freed until this call returns.
#[no_mangle]
pub unsafe extern "C" fn fasts3_op_cancel(op: *const fasts3_op) {
    // SAFETY: not freed during the call (this function's contract).
    unsafe { read_handle(op, "fasts3_op_cancel", (), |op| op.cancel.cancel()) }
}

/// Release an op handle. Does not cancel the op: its completion still arrives. NULL is
/// ignored; a double free is reported on stderr and otherwise ignored (debug builds abort).
///
/// Thread safety: any thread, once no other call uses `op` (e.g. a `fasts3_op_cancel`).
///
/// # Safety
/// - `op` is not in use by a call on another thread.
#[no_mangle]
pub unsafe extern "C" fn fasts3_op_free(op: *mut fasts3_op) {
    // SAFETY: no call uses `op` (this function's contract); an unknown pointer is not touched.
    unsafe { free_handle(op, "fasts3_op_free") }
}

// ---- exports: completions -------------------------------------------------------------------

/// The `user_data` the op was submitted with (0 for a NULL or freed completion).
///
/// Thread safety: any thread, concurrently with the other accessors and
/// `fasts3_completion_take_error` (the completion is not modified); not during
/// `fasts3_completion_take_bytes` or `fasts3_completion_free` of it.
///
/// # Safety
/// - `completion` is not freed until this call returns.
#[no_mangle]
pub unsafe extern "C" fn fasts3_completion_user_data(completion: *const fasts3_completion) -> u64 {
    // SAFETY: not freed during the call (this function's contract).
    unsafe { read_handle(completion, "fasts3_completion_user_data", 0, |c| c.user_data) }
}

/// The op's outcome: `FASTS3_OK`, or the status the blocking call would have returned
/// (`FASTS3_CANCELLED` after `fasts3_op_cancel`). For a NULL completion `FASTS3_NULL_POINTER`,
/// for one that is not live `FASTS3_INVALID_HANDLE` (no op reports either).
///
/// Thread safety as for `fasts3_completion_user_data`.
///
/// # Safety
/// - `completion` is not freed until this call returns.
#[no_mangle]
pub unsafe extern "C" fn fasts3_completion_status(completion: *const fasts3_completion) -> fasts3_status {
    guard_infallible(fasts3_status::FASTS3_PANIC, || {
        if completion.is_null() {
            return fasts3_status::FASTS3_NULL_POINTER;
        }
        // SAFETY: not freed during the call (this function's contract).
        match unsafe { handle_or_report(completion, "fasts3_completion_status") } {
            Some(c) => c.status,
            None => fasts3_status::FASTS3_INVALID_HANDLE,
        }
    })
}

/// Bytes written into the caller's buffer (`fasts3_submit_get_into`), read into the allocated
/// result (`fasts3_submit_get`) or uploaded (`fasts3_submit_put_from`); 0 when the op failed.
///
/// Thread safety as for `fasts3_completion_user_data`.
///
/// # Safety
/// - `completion` is not freed until this call returns.
#[no_mangle]
pub unsafe extern "C" fn fasts3_completion_written(completion: *const fasts3_completion) -> u64 {
    // SAFETY: not freed during the call (this function's contract).
    unsafe { read_handle(completion, "fasts3_completion_written", 0, |c| c.written) }
}

/// The failure's message, NUL-terminated UTF-8 (`""` on success, or for a NULL or freed
/// completion): the message of the error object `fasts3_completion_take_error` gives. Owned
/// by the completion: valid until `fasts3_completion_free`, whether or not its error object
/// was taken (and freed) meanwhile.
///
/// Thread safety as for `fasts3_completion_user_data`.
///
/// # Safety
/// - `completion` is not freed while the returned string is in use.
#[no_mangle]
pub unsafe extern "C" fn fasts3_completion_message(completion: *const fasts3_completion) -> *const c_char {
    // SAFETY: not freed during the call (this function's contract).
    unsafe {
        read_handle(completion, "fasts3_completion_message", c"".as_ptr(), |c| {
            c.error.as_ref().map_or(c"".as_ptr(), |e| e.message().as_ptr())
        })
    }
}

/// The S3 error code of the failure (`NoSuchKey`...), `""` when there was none. Owned by the
/// completion, like `fasts3_completion_message`.
///
/// Thread safety as for `fasts3_completion_user_data`.
///
/// # Safety
/// - `completion` is not freed while the returned string is in use.
#[no_mangle]
pub unsafe extern "C" fn fasts3_completion_code(completion: *const fasts3_completion) -> *const c_char {
    // SAFETY: not freed during the call (this function's contract).
    unsafe {
        read_handle(completion, "fasts3_completion_code", c"".as_ptr(), |c| {
            c.error.as_ref().map_or(c"".as_ptr(), |e| e.code().as_ptr())
        })
    }
}

/// The HTTP status of the failing response, 0 when there was none (or on success).
///
/// Thread safety as for `fasts3_completion_user_data`.
///
/// # Safety
/// - `completion` is not freed until this call returns.
#[no_mangle]
pub unsafe extern "C" fn fasts3_completion_http_status(completion: *const fasts3_completion) -> u16 {
    // SAFETY: not freed during the call (this function's contract).
    unsafe {
        read_handle(completion, "fasts3_completion_http_status", 0, |c| c.error.as_ref().map_or(0, |e| e.http_status()))
    }
}

/// The error object of a failed op: the same `fasts3_error` the blocking call would have
/// handed back through its `err` (status, S3 code, message, HTTP status, the server's
/// request id, bucket and key), read with the `fasts3_error_*` accessors. NULL when the op
/// succeeded, when the error was taken already (only the first call gets it), and for a NULL
/// completion or one that is not live (the latter reported on stderr; debug builds abort).
///
/// Ownership: the caller owns the returned error and releases it with `fasts3_error_free`;
/// it outlives the completion, and the completion's own accessors
/// (`fasts3_completion_message`...) stay valid after it is freed.
/// Thread safety: the returned error is the caller's alone; if two threads take from one
/// completion at once, one of them gets it and the other NULL.
///
/// # Safety
/// - `completion` is not freed until this call returns.
#[no_mangle]
pub unsafe extern "C" fn fasts3_completion_take_error(completion: *mut fasts3_completion) -> *mut fasts3_error {
    // SAFETY: not freed during the call (this function's contract).
    unsafe {
        read_handle(completion, "fasts3_completion_take_error", std::ptr::null_mut(), |c| match &c.error {
            Some(error) if !c.error_taken.swap(true, std::sync::atomic::Ordering::AcqRel) => into_handle(error.clone()),
            _ => std::ptr::null_mut(),
        })
    }
}

/// The number of parts a successful `fasts3_submit_put_from` sent, as `fasts3_put_from`'s
/// `out_parts` counts them: 0 for a single PUT. 0 for other ops, failed ops, and a NULL or
/// freed completion.
///
/// Thread safety as for `fasts3_completion_user_data`.
///
/// # Safety
/// - `completion` is not freed until this call returns.
#[no_mangle]
pub unsafe extern "C" fn fasts3_completion_parts(completion: *const fasts3_completion) -> u32 {
    // SAFETY: not freed during the call (this function's contract).
    unsafe { read_handle(completion, "fasts3_completion_parts", 0, |c| c.parts) }
}

/// Move the allocated result of a successful `fasts3_submit_get` out of the completion:
/// `*out` is the buffer (owned by the caller: release it with `fasts3_bytes_free`), or NULL
/// when there is none (another kind of op, a failed op, or taken already).
///
/// Thread safety: any thread, but no other call may use `completion` meanwhile.
///
/// # Safety
/// - `completion` is not freed, nor used by another call, until this call returns.
/// - `out` is NULL or points to a writable `fasts3_bytes *`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_completion_take_bytes(
    completion: *mut fasts3_completion,
    out: *mut *mut fasts3_bytes,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |_call| {
        // SAFETY: `completion` not freed nor used by another call, `out` NULL or writable,
        // during the call (this function's contract).
        let (completion, out) = unsafe { (handle_mut(completion, "completion")?, out_ptr(out, "out")?) };
        *out = match completion.bytes.take() {
            Some(data) => into_handle(fasts3_bytes::from_buffer(data)),
            None => std::ptr::null_mut(),
        };
        Ok(())
    })
}

/// Release a completion (and a result not taken from it). NULL is ignored; a double free is
/// reported on stderr and otherwise ignored (debug builds of libfasts3 abort instead).
///
/// Thread safety: any thread, once no other call uses `completion` and none of its strings
/// is in use.
///
/// # Safety
/// - `completion` is not in use by a call on another thread, nor its strings.
#[no_mangle]
pub unsafe extern "C" fn fasts3_completion_free(completion: *mut fasts3_completion) {
    // SAFETY: no call uses `completion` (this function's contract); an unknown pointer is not touched.
    unsafe { free_handle(completion, "fasts3_completion_free") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// Sets its flag when dropped: stands for an op's borrow of caller memory.
    struct DropFlag(Arc<AtomicBool>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn object() -> Object {
        Object { bucket: "b".into(), key: "k".into() }
    }

    #[cfg(unix)]
    fn readable(queue: &Queue) -> bool {
        let mut fds = libc::pollfd { fd: queue.wakeup.raw(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one live pollfd, zero timeout.
        unsafe { libc::poll(&mut fds, 1, 0) == 1 }
    }

    fn pop_within(queue: &Queue, wait: Duration) -> Option<Done> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            if let Some(done) = queue.pop() {
                return Some(done);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The fd is readable exactly while completions wait, and a completion is queued only
    /// after the op's future (its borrows) has been dropped.
    #[test]
    fn completions_wake_the_fd_and_arrive_after_the_work_is_gone() {
        let queue = Arc::new(Queue::new().unwrap_or_else(|f| panic!("{}", f.error)));
        #[cfg(unix)]
        assert!(!readable(&queue), "fresh queue readable");
        let mut flags = Vec::new();
        for user_data in [7u64, 8] {
            let dropped = Arc::new(AtomicBool::new(false));
            let guard = DropFlag(dropped.clone());
            flags.push(dropped);
            // Only borrowed inside, as ops borrow their LentBuffer: the guard then lives as
            // long as the future itself, not just until the block returns.
            spawn_op(&queue, user_data, object(), async move {
                let _borrow = &guard;
                Ok(Outcome::Written(user_data * 10))
            });
        }
        let mut seen = Vec::new();
        for _ in 0..2 {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            #[cfg(unix)]
            while !readable(&queue) {
                assert!(std::time::Instant::now() < deadline, "fd never became readable");
                std::thread::sleep(Duration::from_millis(1));
            }
            let done = pop_within(&queue, Duration::from_secs(10)).expect("a completion");
            let i = (done.user_data - 7) as usize;
            assert!(flags[i].load(Ordering::SeqCst), "completion queued before the op's future was dropped");
            assert!(matches!(done.result, Ok(Outcome::Written(n)) if n == done.user_data * 10));
            seen.push(done.user_data);
        }
        seen.sort();
        assert_eq!(seen, [7, 8]);
        #[cfg(unix)]
        assert!(!readable(&queue), "fd still readable with the queue empty");
        assert!(queue.pop().is_none());
    }

    /// Closing cancels running ops and returns only once their futures are gone.
    #[test]
    fn close_cancels_and_waits_for_running_ops() {
        let queue = Arc::new(Queue::new().unwrap_or_else(|f| panic!("{}", f.error)));
        let dropped = Arc::new(AtomicBool::new(false));
        let guard = DropFlag(dropped.clone());
        let op = spawn_op(&queue, 1, object(), async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok(Outcome::Written(0))
        });
        std::thread::sleep(Duration::from_millis(20));
        assert!(!dropped.load(Ordering::SeqCst));
        queue.close();
        assert!(dropped.load(Ordering::SeqCst), "close returned while the op's future was alive");
        assert!(queue.pop().is_none(), "a closed queue kept a completion");
        drop(op);
    }

    /// A cancelled op reports CANCELLED; a panicking one PANIC, and the queue lives on.
    #[test]
    fn cancelled_and_panicking_ops_still_complete() {
        let queue = Arc::new(Queue::new().unwrap_or_else(|f| panic!("{}", f.error)));
        let op = spawn_op(&queue, 1, object(), async {
            std::future::pending::<()>().await;
            Ok(Outcome::Written(0))
        });
        op.cancel.cancel();
        let done = pop_within(&queue, Duration::from_secs(10)).expect("cancelled op completed");
        assert_eq!(done.result.err().map(|f| f.status), Some(fasts3_status::FASTS3_CANCELLED));
        spawn_op(&queue, 2, object(), async {
            if std::hint::black_box(true) {
                panic!("op panicked on purpose");
            }
            Ok(Outcome::Written(0))
        });
        let done = pop_within(&queue, Duration::from_secs(10)).expect("panicked op completed");
        let failure = done.result.err().expect("a failure");
        assert_eq!(failure.status, fasts3_status::FASTS3_PANIC);
        assert!(failure.error.message.contains("op panicked on purpose"), "{}", failure.error.message);
        queue.close();
    }

    /// A failed op's completion carries the error object a blocking call would make (bucket
    /// and key included), handed out once; its own accessors outlive the taken copy.
    #[test]
    fn a_failed_completion_hands_out_its_error_object_once() {
        use crate::ffi::error::{fasts3_error_bucket, fasts3_error_free, fasts3_error_key, fasts3_error_request_id};
        use std::ffi::CStr;
        let mut error = Error::new(ErrorKind::NoSuchKey, "s3://b/k: not there");
        error.code = "NoSuchKey".into();
        error.http_status = 404;
        error.request_id = "REQ-1".into();
        let done = Done { user_data: 5, object: object(), result: Err(Failure::from(error)) };
        let c = into_handle(completion(done));
        // SAFETY: `c` is a live completion until the free at the end; each error is freed once.
        unsafe {
            assert_eq!(fasts3_completion_status(c), fasts3_status::FASTS3_NO_SUCH_KEY);
            let message = fasts3_completion_message(c);
            let e = fasts3_completion_take_error(c);
            assert!(!e.is_null());
            assert!(fasts3_completion_take_error(c).is_null(), "taken twice");
            let text = |p: *const c_char| CStr::from_ptr(p).to_str().unwrap().to_owned();
            assert_eq!(text(fasts3_error_request_id(e)), "REQ-1");
            assert_eq!((text(fasts3_error_bucket(e)), text(fasts3_error_key(e))), ("b".into(), "k".into()));
            assert_eq!(text(crate::ffi::error::fasts3_error_message(e)), text(message));
            fasts3_error_free(e);
            assert_eq!(text(message), "s3://b/k: not there", "the completion's string outlives the error");
            assert_eq!(text(fasts3_completion_code(c)), "NoSuchKey");
            assert_eq!(fasts3_completion_http_status(c), 404);
            fasts3_completion_free(c);
        }
        let ok = into_handle(completion(Done { user_data: 6, object: object(), result: Ok(Outcome::Uploaded { bytes: 9, parts: 3 }) }));
        // SAFETY: live until the free just after.
        unsafe {
            assert!(fasts3_completion_take_error(ok).is_null(), "no error object on success");
            assert_eq!((fasts3_completion_written(ok), fasts3_completion_parts(ok)), (9, 3));
            fasts3_completion_free(ok);
        }
    }
}
