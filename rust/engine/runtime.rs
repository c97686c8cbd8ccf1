//! Where calls run: the shared multi-thread runtime, or a runtime owned by the calling thread.
//!
//! - The shared runtime's workers carry work that wants every core: batches, parallel
//!   listings, and the parts of a large object after its first request.
//! - Each calling thread also gets its own current-thread runtime (built on its first call)
//!   for single requests: the thread that asked drives the socket itself, so a small GET
//!   costs no hand-off to a worker and back. Cross-thread wake-ups were the largest part of a
//!   small GET's CPU time; see `block_on_here`.
//!
//! A forked child inherits the parent's memory but none of its threads, so the parent's
//! runtimes are unusable there (their workers are gone) and must not be dropped either
//! (dropping would try to join threads that do not exist and touch the parent's epoll/socket
//! state). Everything tied to them is held in a [`PidBound`]: a child sees it is not the owner,
//! builds its own, and leaks the parent's. This is the pid-check approach s3torchconnector uses.

use std::cell::RefCell;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::sync::{Arc, Condvar, Mutex};
use futures_util::future::{Either, FutureExt};
use tokio::runtime::Runtime;

/// Name of the shared runtime's worker threads.
const WORKER_NAME: &str = "fasts3-io";

static RUNTIME: Mutex<Option<PidBound<Arc<Runtime>>>> = Mutex::new(None);

/// The shared runtime of this process, built on first use (and again in a forked child).
pub fn runtime() -> Arc<Runtime> {
    let mut slot = RUNTIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if slot.as_ref().is_some_and(|rt| !rt.is_ours()) {
        slot.take(); // inherited across fork(): leaked, see PidBound
    }
    let rt = slot.get_or_insert_with(|| {
        PidBound::new(Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name(WORKER_NAME)
                .build()
                .expect("failed to build the tokio runtime"),
        ))
    });
    Arc::clone(rt)
}

/// Run `fut` to completion on the shared runtime, blocking the calling thread.
/// For batches and other work that spreads across cores.
///
/// The future runs as a task on the runtime's workers, next to the connection tasks it talks
/// to (polling it on the calling thread instead costs a cross-thread wake-up for every
/// request and body chunk: measured as the largest part of a small GET's CPU time). It may
/// borrow from the caller (buffers, strings): this function does not return, not even by
/// unwinding, before the task has finished and its future has been dropped, so no borrow
/// outlives the call and no write into a caller buffer continues after it.
pub fn block_on<'a, F>(fut: F) -> F::Output
where
    F: Future + Send + 'a,
    F::Output: Send + 'static,
{
    // Blocking inside a runtime would panic after the spawn, with the task still borrowing:
    // refuse before anything is spawned.
    assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "libfasts3 was called from inside a tokio runtime; call it from a plain thread"
    );
    // SAFETY: `Runtime::block_on` polls the future to completion on this thread; it is never
    // dropped early or leaked (a panic in the task is re-raised only after the join).
    runtime().block_on(unsafe { on_workers(fut) })
}

tokio::task_local! {
    /// Clean-ups (aborting a multipart upload...) that futures dropped inside
    /// [`awaiting_cleanups`] started with [`spawn_cleanup`]: it waits for them.
    static CLEANUPS: std::cell::RefCell<Vec<tokio::task::JoinHandle<()>>>;
}

/// Run `fut`, then wait for every clean-up that futures dropped inside it started with
/// [`spawn_cleanup`] (a cancelled upload's abort): work running as a task on the shared
/// workers, which cannot block in `Drop`, still ends only once its clean-up is done. Also
/// when `fut` panics: the panic is resumed after the clean-ups.
pub async fn awaiting_cleanups<F: Future>(fut: F) -> F::Output {
    CLEANUPS
        .scope(std::cell::RefCell::new(Vec::new()), async {
            // `fut` is dropped when this await ends, inside the scope, whether it finished or
            // panicked: the clean-ups its drop starts are recorded.
            let output = std::panic::AssertUnwindSafe(fut).catch_unwind().await;
            let started = CLEANUPS.with(|c| std::mem::take(&mut *c.borrow_mut()));
            for cleanup in started {
                let _ = cleanup.await; // a clean-up's own failure is not the work's
            }
            output.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
        .await
}

/// Start `cleanup` as a task on the shared runtime, without blocking (callable from `Drop` on
/// a shared worker). Inside [`awaiting_cleanups`], that call waits for it before returning;
/// elsewhere it runs in the background.
pub(crate) fn spawn_cleanup(cleanup: impl Future<Output = ()> + Send + 'static) {
    let handle = runtime().spawn(cleanup);
    let _ = CLEANUPS.try_with(|c| c.borrow_mut().push(handle));
}

/// A value owned by the process that made it: dropped normally there, leaked in a forked
/// child. A child inherits the parent's thread-locals, and they may be destroyed when it
/// exits (glibc runs them for the main thread at `exit()`); dropping the parent's runtime or
/// connections there would deregister the parent's sockets from the epoll instance both
/// share, or wait for threads that do not exist in the child.
pub(crate) struct PidBound<T> {
    pid: u32,
    value: ManuallyDrop<T>,
}

impl<T> PidBound<T> {
    pub fn new(value: T) -> Self {
        PidBound { pid: std::process::id(), value: ManuallyDrop::new(value) }
    }

    /// Whether this process made the value (false in a forked child).
    pub fn is_ours(&self) -> bool {
        self.pid == std::process::id()
    }
}

impl<T> std::ops::Deref for PidBound<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> Drop for PidBound<T> {
    fn drop(&mut self) {
        if self.is_ours() {
            // SAFETY: dropped exactly once, here; `value` is not used afterwards.
            unsafe { ManuallyDrop::drop(&mut self.value) }
        }
    }
}

/// What [`block_on_here`] needs to know about a finished call's result.
pub trait Outcome {
    /// Whether the call may have ended with requests still open (it failed or was cancelled,
    /// possibly mid-body).
    fn ended_early(&self) -> bool;
}

impl<T, E> Outcome for std::result::Result<T, E> {
    fn ended_early(&self) -> bool {
        self.is_err()
    }
}

thread_local! {
    /// The runtime for calls made on this thread; see `block_on_here`.
    static HERE: RefCell<Option<PidBound<Runtime>>> = const { RefCell::new(None) };
}

/// Run `fut` to completion on this thread's own current-thread runtime.
///
/// The future, the connections it opens and their I/O are all driven by the calling thread
/// while it waits, so a single request needs no wake-up of another thread. Connections made
/// here belong to this thread's runtime and are only usable from it: code running here must
/// use the per-thread session (`Client::session` picks it) and hand work meant for the
/// shared workers over with [`on_workers`].
pub fn block_on_here<F>(fut: F) -> F::Output
where
    F: Future,
    F::Output: Outcome,
{
    assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "libfasts3 was called from inside a tokio runtime; call it from a plain thread"
    );
    HERE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_some_and(|rt| !rt.is_ours()) {
            slot.take(); // inherited across fork(): leaked, see PidBound
        }
        let rt = slot.get_or_insert_with(|| {
            PidBound::new(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("failed to build this thread's tokio runtime"),
            )
        });
        let output = rt.block_on(fut);
        // A call that ended early (cancelled or failed) may have dropped requests whose
        // connection tasks live here. Dropping a request wakes its connection task, which
        // closes the socket when next polled: poll it now, instead of leaving the socket open
        // until this thread's next call. Skipped after success, where every body was read to
        // its end: the two extra turns of the runtime (each an epoll_wait) were measurable
        // in a small GET.
        if output.ended_early() {
            rt.block_on(async {
                for _ in 0..2 {
                    tokio::task::yield_now().await;
                }
            });
        }
        output
    })
}

/// Where a call's future is polled. Decided by whoever runs the future (the C boundary) and
/// passed down to the engine, never guessed from the runtime the code happens to be on.
#[derive(Clone, Copy, Debug)]
pub enum Placement {
    /// On the calling thread's own runtime ([`block_on_here`]): single requests, with this
    /// thread's connections. With an [`Offload`], a read may hand its later parts to the
    /// shared workers; without, everything runs on the calling thread.
    CallingThread { offload: Option<Offload> },
    /// As a task on the shared runtime's workers ([`block_on`]): batches, parallel listings.
    Workers,
    /// As a task on the shared runtime's workers whose pieces (the parts of a large read) may
    /// each be a task of their own ([`Placement::spread`]): an asynchronous op, whose future
    /// its task polls to completion or drops, never leaks (the [`Offload`]'s condition).
    WorkersSpreading(Offload),
}

impl Placement {
    /// Run `fut` where this placement says, blocking the calling thread until it is done.
    pub fn block_on<'a, F>(self, fut: F) -> F::Output
    where
        F: Future + Send + 'a,
        F::Output: Outcome + Send + 'static,
    {
        match self {
            Placement::CallingThread { .. } => block_on_here(fut),
            Placement::Workers | Placement::WorkersSpreading(_) => block_on(fut),
        }
    }

    /// One piece of this call's work (a part of a large read, a read of a batch), run as its
    /// own task on the shared workers when this placement may offload, else inline in the
    /// call's future. Pieces that are separate tasks are received on every core at once: a
    /// future polls its pieces one at a time, so pieces left inside one future (one task)
    /// share one core however many workers there are.
    ///
    /// A piece that is offloaded runs with [`Placement::Workers`] semantics: it must use the
    /// shared session, and whatever it calls must be given `Placement::Workers`.
    pub(crate) fn spread<'a, T: Send + 'static>(
        self,
        piece: impl Future<Output = T> + Send + 'a,
    ) -> impl Future<Output = T> + Send + 'a {
        match self {
            Placement::CallingThread { offload: Some(_) } | Placement::WorkersSpreading(_) => {
                // SAFETY: an Offload exists, so the call's future, which this one becomes part
                // of, is polled to completion or dropped, never leaked (Offload::new).
                Either::Left(unsafe { on_workers(piece) })
            }
            _ => Either::Right(piece),
        }
    }

    /// Whether [`Placement::spread`] runs pieces on the shared workers.
    pub(crate) fn spreads(self) -> bool {
        matches!(self, Placement::CallingThread { offload: Some(_) } | Placement::WorkersSpreading(_))
    }
}

/// Permission for a future to hand work that borrows from it to the shared workers
/// ([`on_workers`]). Only `unsafe` code can make one, because the permission is only sound
/// while the future it is given to cannot be leaked.
#[derive(Clone, Copy, Debug)]
pub struct Offload {
    _only_through_new: (),
}

impl Offload {
    /// # Safety
    ///
    /// Every future this permission is given to (in a [`Placement`], and so every future
    /// [`Placement::spread`] makes with it) must be polled to completion or dropped before
    /// any borrow it holds ends — never leaked (`mem::forget`, `Box::leak`, a reference
    /// cycle). Passing the future straight to [`Placement::block_on`] or [`block_on_here`] in
    /// the same expression satisfies this: they poll it to completion on the calling thread
    /// before returning. So does a task on the shared runtime that owns the future and
    /// everything it borrows until the future is gone ([`Placement::WorkersSpreading`]).
    pub unsafe fn new() -> Offload {
        Offload { _only_through_new: () }
    }
}

/// Run `fut` as a task on the shared runtime's workers and wait for it, from any thread that
/// is not one of those workers (a calling thread's own runtime, or `block_on`).
///
/// `fut` may borrow from the caller, as in `block_on`: if this future is dropped before the
/// task finished (cancellation, or a sibling failing first), the drop aborts the task and
/// blocks until the task's future is gone, so no borrow outlives it. The wait is short (an
/// aborted task is dropped at its next poll by a shared worker) and cannot deadlock: on a
/// calling thread, because it is not one of those workers; on a shared worker (an async op's
/// parts), because the wait goes through `block_in_place`, which hands the worker's other
/// tasks to a new thread first.
///
/// # Safety
///
/// The returned future must be polled to completion or dropped, never leaked
/// (`mem::forget`, `Box::leak`): a leaked one would let the task keep using `fut`'s borrows
/// after they ended. Inside the engine, holding an [`Offload`] is what establishes this.
pub(crate) async unsafe fn on_workers<'a, T: Send + 'static>(fut: impl Future<Output = T> + Send + 'a) -> T {
    let finished = Arc::new((Mutex::new(false), Condvar::new()));
    let boxed: Pin<Box<dyn Future<Output = T> + Send + 'a>> = Box::pin(fut);
    // SAFETY: as in `block_on`, only the borrows' lifetime is extended; `WaitOnDrop` keeps
    // this function from ending (by completion or by being dropped) before the task's future,
    // and with it every borrow, has been dropped — `SignalWhenDropped` signals only after.
    let boxed: Pin<Box<dyn Future<Output = T> + Send + 'static>> = unsafe { std::mem::transmute(boxed) };
    let task = SignalWhenDropped { fut: boxed, _signal: FinishedSignal(finished.clone()) };
    let mut guard = WaitOnDrop { handle: Some(runtime().spawn(task)), finished };
    let joined = guard.handle.as_mut().expect("handle present until joined").await;
    guard.handle = None; // completed: its future is already gone
    match joined {
        Ok(output) => output,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("libfasts3 task was cancelled unexpectedly: {e}"),
    }
}

/// A task's future, then its signal: fields drop in declaration order, so the signal fires
/// only once the future (and every borrow it holds) is gone.
struct SignalWhenDropped<T> {
    fut: Pin<Box<dyn Future<Output = T> + Send + 'static>>,
    _signal: FinishedSignal,
}

impl<T> Future for SignalWhenDropped<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.fut.as_mut().poll(cx)
    }
}

/// Set when a task's future is dropped.
struct FinishedSignal(Arc<(Mutex<bool>, Condvar)>);

impl Drop for FinishedSignal {
    fn drop(&mut self) {
        let (done, cvar) = &*self.0;
        *done.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cvar.notify_all();
    }
}

/// Aborts a still-running task on drop and waits until its future has been dropped.
struct WaitOnDrop<T> {
    handle: Option<tokio::task::JoinHandle<T>>,
    finished: Arc<(Mutex<bool>, Condvar)>,
}

impl<T> Drop for WaitOnDrop<T> {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
            let wait = || {
                let (done, cvar) = &*self.finished;
                let mut finished = done.lock().unwrap_or_else(|p| p.into_inner());
                while !*finished {
                    finished = cvar.wait(finished).unwrap_or_else(|p| p.into_inner());
                }
            };
            if std::thread::current().name() == Some(WORKER_NAME) {
                // A shared worker must not block the tasks queued on it (the aborted one may be
                // among them): hand them to another thread while this one waits.
                tokio::task::block_in_place(wait);
            } else {
                wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::AssertUnwindSafe;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// Starts a slow clean-up that sets `done` when dropped, as an upload's abort guard does.
    struct StartsCleanup(Arc<AtomicBool>);

    impl Drop for StartsCleanup {
        fn drop(&mut self) {
            let done = self.0.clone();
            spawn_cleanup(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                done.store(true, Ordering::SeqCst);
            });
        }
    }

    #[test]
    fn awaiting_cleanups_waits_for_them_after_success_and_after_a_panic() {
        for panics in [false, true] {
            let done = Arc::new(AtomicBool::new(false));
            let guard = StartsCleanup(done.clone());
            let work = async move {
                let _guard = guard;
                tokio::task::yield_now().await;
                assert!(!panics, "the work panicked");
            };
            let outcome = block_on(AssertUnwindSafe(awaiting_cleanups(work)).catch_unwind());
            assert_eq!(outcome.is_err(), panics, "a panic is resumed after the clean-ups");
            assert!(done.load(Ordering::SeqCst), "the clean-up finished first (panics: {panics})");
        }
    }
}
