//! Ctrl-C for callers whose runtime turns SIGINT into an exception (CPython): while a call
//! made with a SIGINT-watching cancel token runs, a chaining SIGINT handler records the
//! signal (and still runs the previous handler, so the interpreter also sees it); the call
//! notices within a few milliseconds and ends as CANCELLED, with every write into the
//! caller's buffer finished. This replaces a thread hop per call in the Python wrapper.
//! POSIX only (sigaction), like the rest of the library in practice.
//!
//! Only async-signal-safe work happens in the handler: an atomic store and a call to the
//! previous handler. One call at a time may watch (the interpreter's main thread); a second
//! concurrent watcher just shares the flag without reinstalling anything.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static SEEN: AtomicBool = AtomicBool::new(false);
static WATCHING: AtomicBool = AtomicBool::new(false);
/// The handler we replaced; written before ours is installed, read only by ours.
static mut PREVIOUS: Option<libc::sigaction> = None;

/// How often a watching call looks at the flag.
const POLL: Duration = Duration::from_millis(5);

/// Installs the chaining handler for its lifetime (if no other call already did).
pub(crate) struct Watch {
    installed: bool,
}

impl Watch {
    pub(crate) fn start() -> Watch {
        if WATCHING.swap(true, Ordering::AcqRel) {
            return Watch { installed: false };
        }
        SEEN.store(false, Ordering::SeqCst);
        // SAFETY: plain sigaction calls; PREVIOUS is written before our handler can run
        // and is only read by it (no other writer while WATCHING is held).
        unsafe {
            let mut ours: libc::sigaction = std::mem::zeroed();
            ours.sa_sigaction = on_sigint as *const () as usize;
            ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut ours.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGINT, std::ptr::null(), &mut previous) != 0
                || previous.sa_sigaction == libc::SIG_IGN
            {
                WATCHING.store(false, Ordering::Release);
                return Watch { installed: false };
            }
            *std::ptr::addr_of_mut!(PREVIOUS) = Some(previous);
            libc::sigaction(libc::SIGINT, &ours, std::ptr::null_mut());
        }
        Watch { installed: true }
    }

    /// Resolves once SIGINT has arrived during this watch.
    pub(crate) async fn interrupted(&self) {
        loop {
            if SEEN.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if !self.installed {
            return;
        }
        // SAFETY: restore exactly what start() replaced.
        unsafe {
            if let Some(previous) = *std::ptr::addr_of!(PREVIOUS) {
                libc::sigaction(libc::SIGINT, &previous, std::ptr::null_mut());
            }
        }
        WATCHING.store(false, Ordering::Release);
    }
}

extern "C" fn on_sigint(signo: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    SEEN.store(true, Ordering::SeqCst);
    // SAFETY: PREVIOUS was set before this handler was installed.
    let Some(previous) = (unsafe { *std::ptr::addr_of!(PREVIOUS) }) else { return };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL {
        // Default action is to terminate: do exactly that.
        unsafe {
            libc::sigaction(libc::SIGINT, &previous, std::ptr::null_mut());
            libc::raise(signo);
        }
    } else if handler != libc::SIG_IGN {
        // SAFETY: the previous handler was installed for SIGINT with these flags.
        unsafe {
            if previous.sa_flags & libc::SA_SIGINFO != 0 {
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = std::mem::transmute(handler);
                f(signo, info, context);
            } else {
                let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
                f(signo);
            }
        }
    }
}
