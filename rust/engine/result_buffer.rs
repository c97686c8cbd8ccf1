//! Memory for results the library allocates (`get()`), and a small cache of freed ones.
//!
//! A large `get()` writes into fresh memory, and fresh memory costs: the kernel faults in and
//! zero-fills every page on first touch (`python bench/get_alloc.py` measures it). A program
//! that reads objects one after another (a training loop, a scan over shards) frees one
//! result as it asks for the next, so large freed results are kept for a few seconds and
//! handed to the next `get()` of a similar size, already faulted in.
//!
//! Bounds, so that the cache never holds much nor for long:
//! - only results of at least [`MIN_CACHED`] bytes (smaller ones are malloc's business);
//! - at most `PYFASTS3_RESULT_CACHE_MB` MiB in all (default [`DEFAULT_LIMIT_MB`]; 0 turns the
//!   cache off);
//! - a cached buffer is freed after [`IDLE`] without use, by a short-lived thread that exits
//!   once the cache is empty;
//! - a buffer is reused only for a result at most a quarter smaller than it.
//!
//! Every access uses `try_lock`: a thread never waits for the cache (it allocates or frees as
//! if there were none), and a child of fork() that inherited the lock held simply does
//! without. The cache holds only initialized memory, so reuse needs no `unsafe`: a reused
//! buffer's old bytes beyond the new result are never exposed, and every byte of the result
//! is written by the read before it is returned.

use crate::error::{Error, ErrorKind, Result};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Results smaller than this are allocated and freed normally.
const MIN_CACHED: usize = 16 << 20;
/// How much the cache may hold unless `PYFASTS3_RESULT_CACHE_MB` says otherwise.
const DEFAULT_LIMIT_MB: usize = 1024;
/// A cached buffer unused for this long is freed.
const IDLE: Duration = Duration::from_secs(5);

/// A result's bytes: the first `len` bytes of `memory`, all of which are initialized.
/// Dropping it offers the memory to the cache.
pub struct ResultBuffer {
    memory: Vec<u8>,
    len: usize,
}

impl ResultBuffer {
    /// `n` bytes to be overwritten by a read: a cached buffer when one fits, else fresh
    /// zeroed memory. Fails (instead of aborting) when the memory cannot be had.
    pub fn for_read(n: usize) -> Result<ResultBuffer> {
        let memory = match take_cached(n) {
            Some(memory) => memory,
            None => zeroed_vec(n)?,
        };
        Ok(ResultBuffer { memory, len: n })
    }

    /// The result of a read whose length was not known in advance.
    pub fn from_vec(memory: Vec<u8>) -> ResultBuffer {
        let len = memory.len();
        ResultBuffer { memory, len }
    }

    pub fn empty() -> ResultBuffer {
        ResultBuffer::from_vec(Vec::new())
    }

    /// Keep only the first `len` bytes.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.memory[..self.len]
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.memory[..self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for ResultBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultBuffer").field("len", &self.len).finish()
    }
}

impl Drop for ResultBuffer {
    fn drop(&mut self) {
        offer(std::mem::take(&mut self.memory));
    }
}

// ---- the cache -----------------------------------------------------------------------------

struct Cached {
    memory: Vec<u8>,
    since: Instant,
}

struct Cache {
    buffers: Vec<Cached>,
    bytes: usize,
    /// The process whose trimming thread is running, 0 when none (a forked child has none).
    trimmer_pid: u32,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache { buffers: Vec::new(), bytes: 0, trimmer_pid: 0 });

fn limit() -> usize {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        let mb = std::env::var("PYFASTS3_RESULT_CACHE_MB").ok().and_then(|v| v.trim().parse::<usize>().ok());
        mb.unwrap_or(DEFAULT_LIMIT_MB).saturating_mul(1 << 20)
    })
}

/// The smallest cached buffer that holds `n` bytes and is at most a quarter larger.
fn take_cached(n: usize) -> Option<Vec<u8>> {
    if n < MIN_CACHED {
        return None;
    }
    let mut cache = CACHE.try_lock().ok()?;
    let fits = |c: &Cached| c.memory.len() >= n && c.memory.len() - n <= n / 4;
    let (at, _) = cache.buffers.iter().enumerate().filter(|(_, c)| fits(c)).min_by_key(|(_, c)| c.memory.len())?;
    let taken = cache.buffers.swap_remove(at).memory;
    cache.bytes -= taken.len();
    Some(taken)
}

/// Keep `memory` for a later read if it is large enough and fits under the limit; free it
/// otherwise.
fn offer(memory: Vec<u8>) {
    let size = memory.len();
    if size < MIN_CACHED || size > limit() {
        return;
    }
    let Ok(mut cache) = CACHE.try_lock() else { return };
    // Make room by freeing the oldest buffers (outside the lock: munmap of a large buffer
    // takes a while).
    let mut evicted = Vec::new();
    while cache.bytes + size > limit() && !cache.buffers.is_empty() {
        let oldest = (0..cache.buffers.len()).min_by_key(|&i| cache.buffers[i].since).expect("not empty");
        let old = cache.buffers.swap_remove(oldest);
        cache.bytes -= old.memory.len();
        evicted.push(old);
    }
    cache.bytes += size;
    cache.buffers.push(Cached { memory, since: Instant::now() });
    let pid = std::process::id();
    if cache.trimmer_pid != pid {
        let spawned = std::thread::Builder::new().name("fasts3-cache".into()).spawn(trim_until_empty);
        if spawned.is_ok() {
            cache.trimmer_pid = pid;
        } else {
            // No thread: do not keep what nobody would free.
            evicted.append(&mut cache.buffers);
            cache.bytes = 0;
        }
    }
    drop(cache);
    drop(evicted);
}

/// The trimming thread: every half `IDLE`, free the buffers unused for `IDLE`; exit when
/// the cache is empty (the next `offer` starts a new one).
fn trim_until_empty() {
    loop {
        std::thread::sleep(IDLE / 2);
        let Ok(mut cache) = CACHE.lock() else { return };
        let now = Instant::now();
        let (expired, kept): (Vec<Cached>, Vec<Cached>) =
            std::mem::take(&mut cache.buffers).into_iter().partition(|c| now.duration_since(c.since) >= IDLE);
        cache.buffers = kept;
        cache.bytes -= expired.iter().map(|c| c.memory.len()).sum::<usize>();
        let done = cache.buffers.is_empty();
        if done {
            cache.trimmer_pid = 0;
        }
        drop(cache);
        drop(expired);
        if done {
            return;
        }
    }
}

// ---- fresh memory ----------------------------------------------------------------------------

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
    // SAFETY: `ptr` is a non-NULL block from the global allocator with the layout of
    // [u8; n], all n bytes initialized (zeroed): what from_raw_parts needs for length and
    // capacity n.
    Ok(unsafe { Vec::from_raw_parts(ptr, n, n) })
}

/// Ask for transparent huge pages on a large fresh buffer, only when the environment says
/// `PYFASTS3_HUGE_PAGES=1`. Off by default: where the kernel hands free memory back to a
/// hypervisor (virtio-balloon free page reporting, as on Firecracker VMs), a huge page comes
/// from exactly the large free blocks that were given back, and writing 1 GiB of it after a
/// 5 s pause took 1.15 s against 0.58 s (+0.06 s unmapping) in 4 KiB pages
/// (`python bench/fresh_memory.py`); the first 1 GiB `get()` of a process ran at 736 against
/// 1,486 MB/s (`python bench/get_alloc.py`; both in bench/README.md). Huge pages only win when freed memory is reused at once, and the result
/// cache above already reuses it with no faults at all. Advisory: failure changes nothing.
fn advise_huge_pages(ptr: *mut u8, n: usize) {
    const HUGE: usize = 2 * 1024 * 1024;
    static WANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let wanted = *WANTED.get_or_init(|| std::env::var("PYFASTS3_HUGE_PAGES").is_ok_and(|v| v.trim() == "1"));
    if n < 2 * HUGE || !wanted {
        return;
    }
    let page = 4096usize;
    let start = (ptr as usize + page - 1) & !(page - 1);
    let end = (ptr as usize + n) & !(page - 1);
    if end > start {
        // Transparent huge pages are Linux-only (no MADV_HUGEPAGE elsewhere): a no-op there.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        // SAFETY: [start, end) lies inside the allocation we own; madvise does not touch data.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_large_result_is_reused_for_a_similar_size_and_only_then() {
        let first = ResultBuffer::for_read(MIN_CACHED + 4096).unwrap();
        let addr = first.memory.as_ptr();
        drop(first);
        // Too small to reuse a buffer a quarter larger: fresh memory.
        let small = ResultBuffer::for_read(MIN_CACHED / 2).unwrap();
        assert_ne!(small.memory.as_ptr(), addr);
        let mut again = ResultBuffer::for_read(MIN_CACHED).unwrap();
        assert_eq!(again.memory.as_ptr(), addr, "the freed buffer is handed out again");
        assert_eq!(again.len(), MIN_CACHED, "only the asked length is exposed");
        again.as_mut_slice().fill(7);
        again.truncate(10);
        assert_eq!(again.as_slice(), &[7; 10]);
    }
}
