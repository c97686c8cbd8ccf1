//! Ctrl-C for callers whose runtime turns SIGINT into an exception (CPython): while a call
//! made with a SIGINT-watching cancel token runs, a chaining SIGINT handler records the
//! signal (and still runs the previous handler, so the interpreter also sees it); the call
//! notices within a few milliseconds and ends as CANCELLED, with every write into the
//! caller's buffer finished. This replaces a thread hop per call in the Python wrapper.
//! POSIX only (sigaction), like the rest of the library in practice.
//!
//! One installation per process, reference-counted by the calls watching (any number of
//! threads may watch at once; they all see every SIGINT):
//!
//! - The first watcher installs the handler, remembering the one it replaced.
//! - Later watchers only count themselves.
//! - The last watcher to finish restores the replaced handler, *if ours is still SIGINT's
//!   handler*. If another library installed its own meanwhile, that one stays (it most
//!   likely chains to ours, which stays callable and keeps chaining to the handler we
//!   replaced): our handler is then "left in the chain".
//! - While ours is left in another library's chain, a new first watcher does not install
//!   ours on top of that library's handler (ours would chain to it and it back to ours, a
//!   loop); it relies on that library chaining down to ours. It does install when SIGINT's
//!   handler is SIG_DFL or the very handler ours replaced (that one predates ours, so it
//!   cannot chain to it: e.g. CPython's, after `signal.signal` replaced the other library's),
//!   and simply resumes when ours is SIGINT's handler again.
//! - While SIGINT is ignored (SIG_IGN), nothing is installed and no SIGINT is watched.
//! - fork(): the child has only the forking thread, which is not inside a call, so the
//!   parent's watchers are not the child's: the first watch in the child sees the recorded
//!   process id differ and starts counting from zero. Our handler, if installed at the fork,
//!   stays installed in the child (it keeps chaining correctly) until a watch there ends.
//!   The lock guarding this state is taken over by the child if the parent held it on a
//!   thread the child does not have.
//!
//! Only async-signal-safe work happens in the handler: atomic loads and stores, a call to
//! the previous handler, and for SIG_DFL, sigaction and raise.

use std::cell::{RefCell, UnsafeCell};
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Sleep;

/// How often a watching call looks at the signal count.
const POLL: Duration = Duration::from_millis(5);

/// SIGINTs our handler has seen since the process started. A watch ends its call when this
/// moves past the value it saw at its start (a count rather than a flag: no watcher resets
/// what another one still has to see).
static SIGNALS: AtomicU64 = AtomicU64::new(0);

/// A watch on SIGINT for one call.
pub(crate) struct Watch {
    /// SIGNALS when the watch began.
    seen_at_start: u64,
    /// The process in which this watch was counted; None when it was not counted (SIGINT
    /// ignored).
    counted_in: Option<u32>,
}

impl Watch {
    pub(crate) fn start() -> Watch {
        let seen_at_start = SIGNALS.load(Ordering::SeqCst);
        let pid = std::process::id();
        let mut state = STATE.lock(pid);
        state.adopt(pid);
        let counted = state.watchers > 0 || state.first_watcher_arrives();
        if counted {
            state.watchers += 1;
        }
        Watch { seen_at_start, counted_in: counted.then_some(pid) }
    }

    /// Resolves once SIGINT has arrived during this watch. `on_thread_runtime`: the call
    /// runs on the calling thread's own runtime (`runtime::block_on_here`), whose poll timer
    /// can then be kept for the thread's next call (see [`ThreadTick`]).
    pub(crate) async fn interrupted(&self, on_thread_runtime: bool) {
        let mut tick = on_thread_runtime.then(ThreadTick::take);
        loop {
            if SIGNALS.load(Ordering::SeqCst) != self.seen_at_start {
                return;
            }
            match &mut tick {
                Some(tick) => tick.wait().await,
                None => tokio::time::sleep(POLL).await,
            }
        }
    }
}

thread_local! {
    /// The poll timer of the watches made on this thread's own runtime, with the process that
    /// made it. See [`ThreadTick`].
    static TICK: RefCell<Option<(u32, Pin<Box<Sleep>>)>> = const { RefCell::new(None) };
}

/// A calling thread's SIGINT poll timer, kept from one call to the next. A fresh 5 ms timer
/// per call is always the earliest deadline of the thread's runtime, and registering the
/// earliest deadline wakes the runtime's driver (an eventfd write and an extra epoll event):
/// a few microseconds of every small GET. The kept timer is re-armed only once it has fired,
/// so at most once per `POLL` however many calls the thread makes.
///
/// Only for calls on the thread's own runtime: the timer belongs to that runtime and fires
/// only while it runs. Borrowed for one call and put back when the call's future is dropped
/// (within `block_on_here`, on this thread). A timer inherited through fork() belongs to the
/// parent's runtime, which the child leaks (`runtime::PidBound`): it is leaked too.
struct ThreadTick(Option<Pin<Box<Sleep>>>);

impl ThreadTick {
    fn take() -> ThreadTick {
        let kept = TICK.with(|slot| slot.borrow_mut().take());
        ThreadTick(kept.and_then(|(pid, sleep)| {
            if pid == std::process::id() {
                Some(sleep)
            } else {
                std::mem::forget(sleep); // the parent's, see above
                None
            }
        }))
    }

    /// Wait until the next tick (at most `POLL` from now).
    async fn wait(&mut self) {
        let sleep = self.0.get_or_insert_with(|| Box::pin(tokio::time::sleep(POLL)));
        if sleep.is_elapsed() {
            sleep.as_mut().reset(tokio::time::Instant::now() + POLL);
        }
        sleep.as_mut().await
    }
}

impl Drop for ThreadTick {
    fn drop(&mut self) {
        if let Some(sleep) = self.0.take() {
            // `try_with`: at thread exit the slot may already be gone; the timer is then
            // simply dropped.
            let _ = TICK.try_with(|slot| *slot.borrow_mut() = Some((std::process::id(), sleep)));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let Some(pid) = self.counted_in else { return };
        if pid != std::process::id() {
            return; // counted by the parent before a fork(); the child's count excludes it
        }
        let mut state = STATE.lock(pid);
        state.adopt(pid);
        state.watchers = state.watchers.saturating_sub(1);
        if state.watchers == 0 {
            state.last_watcher_left();
        }
    }
}

// ---- the installation ------------------------------------------------------------------------

struct Installation {
    /// Watches counted in `pid`.
    watchers: usize,
    pid: u32,
    /// The handler ours replaced, while ours may be reachable: installed, or left in
    /// another library's chain. None when ours was never installed or has been restored.
    replaced: Option<libc::sigaction>,
}

impl Installation {
    /// After fork(), forget the parent's watchers (their threads are not in this process).
    fn adopt(&mut self, pid: u32) {
        if self.pid != pid {
            self.pid = pid;
            self.watchers = 0;
        }
    }

    /// With no watcher yet: make sure our handler will see SIGINT. Returns whether the watch
    /// counts (false while SIGINT is ignored).
    fn first_watcher_arrives(&mut self) -> bool {
        let Some(current) = current_handler() else { return false };
        let handler = current.sa_sigaction;
        if handler == our_handler() {
            return true; // still (or again) ours
        }
        if handler == libc::SIG_IGN {
            return false;
        }
        if let Some(replaced) = &self.replaced {
            if handler != libc::SIG_DFL && handler != replaced.sa_sigaction {
                // Ours is left in the chain of another library's handler: see the module doc.
                return true;
            }
        }
        set_chain_target(&current);
        self.replaced = Some(current);
        // SAFETY: installs a handler for SIGINT; `on_sigint` is async-signal-safe and its
        // chain target was set just above.
        unsafe {
            let mut ours: libc::sigaction = std::mem::zeroed();
            ours.sa_sigaction = our_handler();
            ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut ours.sa_mask);
            if libc::sigaction(libc::SIGINT, &ours, std::ptr::null_mut()) != 0 {
                self.replaced = None;
                return false;
            }
        }
        true
    }

    /// The last watcher left: restore what ours replaced, unless another library's handler
    /// has replaced ours meanwhile (then leave it, and ours in its chain).
    fn last_watcher_left(&mut self) {
        let Some(replaced) = self.replaced else { return };
        let Some(current) = current_handler() else { return };
        if current.sa_sigaction != our_handler() {
            return;
        }
        // SAFETY: reinstalls the handler that was SIGINT's before ours.
        if unsafe { libc::sigaction(libc::SIGINT, &replaced, std::ptr::null_mut()) } == 0 {
            self.replaced = None;
        }
    }
}

fn current_handler() -> Option<libc::sigaction> {
    // SAFETY: queries SIGINT's action into a local.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        (libc::sigaction(libc::SIGINT, std::ptr::null(), &mut current) == 0).then_some(current)
    }
}

fn our_handler() -> libc::sighandler_t {
    on_sigint as *const () as libc::sighandler_t
}

static STATE: ForkSafeLock<Installation> =
    ForkSafeLock::new(Installation { watchers: 0, pid: 0, replaced: None });

// ---- what the handler chains to ----------------------------------------------------------

/// The previous handler and its flags, as the signal handler reads them: atomics in two
/// slots, so that changing the target (only done while ours is not installed) never tears
/// a pair that a handler still running on another thread is reading.
struct ChainTarget {
    handler: AtomicUsize,
    flags: AtomicI32,
}

static CHAIN: [ChainTarget; 2] = [const { ChainTarget { handler: AtomicUsize::new(0), flags: AtomicI32::new(0) } }; 2];
static CHAIN_SLOT: AtomicUsize = AtomicUsize::new(0);

fn set_chain_target(previous: &libc::sigaction) {
    let slot = 1 - CHAIN_SLOT.load(Ordering::Acquire);
    CHAIN[slot].handler.store(previous.sa_sigaction, Ordering::Relaxed);
    CHAIN[slot].flags.store(previous.sa_flags, Ordering::Relaxed);
    CHAIN_SLOT.store(slot, Ordering::Release);
}

extern "C" fn on_sigint(signo: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
    let target = &CHAIN[CHAIN_SLOT.load(Ordering::Acquire)];
    let handler = target.handler.load(Ordering::Relaxed);
    let flags = target.flags.load(Ordering::Relaxed);
    if handler == libc::SIG_DFL {
        // The default action is to terminate: do exactly that (SIGINT is blocked while this
        // handler runs, so the raised signal is delivered, by default, when it returns).
        // SAFETY: sigaction and raise are async-signal-safe.
        unsafe {
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut default.sa_mask);
            libc::sigaction(libc::SIGINT, &default, std::ptr::null_mut());
            libc::raise(signo);
        }
    } else if handler != libc::SIG_IGN {
        // SAFETY: `handler` was installed for SIGINT with these flags, which say its signature.
        unsafe {
            if flags & libc::SA_SIGINFO != 0 {
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = std::mem::transmute(handler);
                f(signo, info, context);
            } else {
                let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
                f(signo);
            }
        }
    }
}

// ---- a lock fork() cannot leave held ------------------------------------------------------

/// A spin lock (held for a few system calls) that records its holder's process id: a child
/// of fork() that finds it held by its parent (on a thread the child does not have) takes
/// it over instead of waiting forever.
struct ForkSafeLock<T> {
    /// 0: free; otherwise the pid of the process whose thread holds it.
    holder: AtomicU32,
    value: UnsafeCell<T>,
}

// SAFETY: `value` is only reached through a guard, and one guard exists at a time per process.
unsafe impl<T: Send> Sync for ForkSafeLock<T> {}

struct ForkSafeGuard<'a, T> {
    lock: &'a ForkSafeLock<T>,
}

impl<T> ForkSafeLock<T> {
    const fn new(value: T) -> Self {
        ForkSafeLock { holder: AtomicU32::new(0), value: UnsafeCell::new(value) }
    }

    fn lock(&self, pid: u32) -> ForkSafeGuard<'_, T> {
        loop {
            match self.holder.compare_exchange(0, pid, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => break,
                // Held in another process: the parent, at fork(). Take it over.
                Err(other) if other != pid => {
                    if self.holder.compare_exchange(other, pid, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                        break;
                    }
                }
                Err(_) => std::thread::yield_now(),
            }
        }
        ForkSafeGuard { lock: self }
    }
}

impl<T> std::ops::Deref for ForkSafeGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> std::ops::DerefMut for ForkSafeGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard holds the lock.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for ForkSafeGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.holder.store(0, Ordering::Release);
    }
}
