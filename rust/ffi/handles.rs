//! Handle validation: which pointers are live libfasts3 handles, and of which type.
//!
//! Every handle (`fasts3_config`, `fasts3_client`, `fasts3_cancel_token`,
//! `fasts3_list_cursor`, `fasts3_object_page`, `fasts3_bytes`, `fasts3_error`, and the async
//! `fasts3_completion_queue`, `fasts3_op`, `fasts3_completion`) is registered, by address,
//! in a process-wide registry for its type when it is created, and removed when it is freed.
//! Before an export touches a handle it checks that the pointer *value* is registered:
//!
//! - a fallible export given an unknown pointer (freed, never created, or a handle of
//!   another type) returns `FASTS3_INVALID_HANDLE`, naming the argument and its type;
//! - a `_free` given an unknown non-NULL pointer (a double free, most likely) leaves memory
//!   alone and reports it on stderr; so do the exports that return nothing
//!   (`fasts3_cancel_token_cancel`, `fasts3_cancel_token_watch_sigint`). In debug builds
//!   (`cfg(debug_assertions)`) those reports abort the process, to stop at the bug.
//!
//! Why a registry rather than a magic tag inside each struct: reading a tag through a freed
//! pointer is itself a use after free (undefined behaviour, and it may read memory that was
//! unmapped or reused), whereas testing whether an address is in a set never dereferences
//! it. A tag would add nothing once the registry said yes: the registries are per type, so a
//! registered address is a live handle of that type.
//!
//! Limits, as far as a C ABI allows:
//! - An address freed and then reused by a *new* handle of the same type is that new handle:
//!   a stale pointer to the old one is accepted and acts on the new one. Nothing can tell
//!   them apart from the pointer value alone.
//! - Freeing a handle while another thread is still inside a call using it remains a use
//!   after free (the check happens when the call starts). The `_free` contracts still say
//!   "not while in use".
//!
//! Cost: one read lock of one of 16 shards (chosen by address) per handle argument, and a
//! write lock per creation and free; `bench/c/handle_overhead.c` measures it. Shards are on
//! their own cache lines so that calls on different handles do not contend.
//!
//! fork(): a child inherits the registries (its copies of the parent's handles stay valid,
//! as documented for clients). So that no shard is left locked by a thread the child does
//! not have, a `pthread_atfork` hook holds every shard's write lock across `fork()`.

use fasts3_engine::Error;
use crate::ffi::boundary::{Failure, FfiResult};
use crate::ffi::status::fasts3_status;
use std::cell::RefCell;
use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Once, PoisonError, RwLock, RwLockWriteGuard};

/// A C handle type: a Rust struct handed to C as an opaque pointer.
pub(crate) trait Handle: Sized + 'static {
    /// The C type's name, for messages.
    const TYPE_NAME: &'static str;
    /// Which registry holds the live handles of this type.
    const KIND: Kind;
}

/// One registry per handle type.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Config,
    Client,
    CancelToken,
    ListCursor,
    ObjectPage,
    Bytes,
    Error,
    Upload,
    CompletionQueue,
    Op,
    Completion,
}
const KINDS: usize = 11;

/// Declare a struct a handle type, registered under `Kind::$kind`.
macro_rules! handle_type {
    ($ty:ident, $kind:ident) => {
        impl $crate::ffi::handles::Handle for $ty {
            const TYPE_NAME: &'static str = stringify!($ty);
            const KIND: $crate::ffi::handles::Kind = $crate::ffi::handles::Kind::$kind;
        }
    };
}
pub(crate) use handle_type;

/// Move `value` to the heap and register it: the pointer to give to C. It stays valid
/// until `free_handle`.
pub(crate) fn into_handle<T: Handle>(value: T) -> *mut T {
    let ptr = Box::into_raw(Box::new(value));
    let fresh = registry::<T>().insert(ptr as usize);
    debug_assert!(fresh, "a new {} at {ptr:p} was already registered", T::TYPE_NAME);
    ptr
}

/// Borrow the live handle `ptr` (argument `name`): `FASTS3_NULL_POINTER` if NULL,
/// `FASTS3_INVALID_HANDLE` if it is not a live handle of type `T`.
///
/// # Safety
/// A registered pointer is a live `T` (see the module doc for the limits); the caller must
/// not free it while the returned reference is in use, and must not let two mutable borrows
/// of one handle overlap (the exports document which handles are not thread-safe).
pub(crate) unsafe fn handle_ref<'a, T: Handle>(ptr: *const T, name: &str) -> FfiResult<&'a T> {
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    if !registry::<T>().contains(ptr as usize) {
        return Err(invalid_handle::<T>(name));
    }
    // SAFETY: registered, so `ptr` came from `into_handle::<T>` and has not been freed.
    Ok(unsafe { &*ptr })
}

/// As [`handle_ref`], for a handle the call modifies.
///
/// # Safety
/// As for [`handle_ref`].
pub(crate) unsafe fn handle_mut<'a, T: Handle>(ptr: *mut T, name: &str) -> FfiResult<&'a mut T> {
    // SAFETY: forwarded contract.
    unsafe { handle_ref::<T>(ptr, name) }?;
    // SAFETY: checked live above; exclusivity is the caller's contract.
    Ok(unsafe { &mut *ptr })
}

/// A handle argument that may be NULL (meaning "none"); otherwise as [`handle_ref`].
///
/// # Safety
/// As for [`handle_ref`].
pub(crate) unsafe fn optional_handle<'a, T: Handle>(ptr: *const T, name: &str) -> FfiResult<Option<&'a T>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    unsafe { handle_ref(ptr, name) }.map(Some)
}

/// For exports that return nothing: the live handle, or None for NULL (ignored, as
/// documented) and for an unknown pointer (reported, see [`report_misuse`]).
///
/// # Safety
/// As for [`handle_ref`].
pub(crate) unsafe fn handle_or_report<'a, T: Handle>(ptr: *const T, function: &str) -> Option<&'a T> {
    if ptr.is_null() {
        return None;
    }
    if !registry::<T>().contains(ptr as usize) {
        report_misuse::<T>(function, ptr as usize, "use after free?");
        return None;
    }
    // SAFETY: registered, so live.
    Some(unsafe { &*ptr })
}

/// For exports that return no status (getters, `_cancel`): `read` of the live handle `ptr`
/// (for `function`), or `fallback` for NULL, for an unknown pointer (reported, see
/// [`handle_or_report`]) and if anything panics (no panic may unwind into C).
///
/// # Safety
/// As for [`handle_ref`].
pub(crate) unsafe fn read_handle<T: Handle, R: Copy>(ptr: *const T, function: &str, fallback: R, read: impl FnOnce(&T) -> R) -> R {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: forwarded contract.
        match unsafe { handle_or_report(ptr, function) } {
            Some(handle) => read(handle),
            None => fallback,
        }
    }))
    .unwrap_or(fallback)
}

/// The body of a `_free` export: unregister and drop the handle `ptr`. NULL is ignored. An
/// unknown pointer (double free, or not a handle of this type) is reported and its memory is
/// not touched. Never unwinds: a panic (in a handle's `Drop`) is swallowed.
///
/// # Safety
/// No call may still be using the handle.
pub(crate) unsafe fn free_handle<T: Handle>(ptr: *mut T, function: &str) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if ptr.is_null() {
            return;
        }
        // Removing first makes a concurrent second free of the same pointer lose the race
        // cleanly: only one of them drops the box.
        if !registry::<T>().remove(ptr as usize) {
            report_misuse::<T>(function, ptr as usize, "double free?");
            return;
        }
        // SAFETY: it was registered, so it came from `into_handle::<T>` (Box::into_raw) and
        // this is the only free that removed it.
        drop(unsafe { Box::from_raw(ptr) });
    }));
}

fn invalid_handle<T: Handle>(name: &str) -> Failure {
    Failure {
        status: fasts3_status::FASTS3_INVALID_HANDLE,
        error: Error::invalid(format!(
            "{name} is not a live {}: it was already freed, or was not made by libfasts3",
            T::TYPE_NAME
        )),
    }
}

/// A misuse that no status can report: say so on stderr; in debug builds stop right here.
fn report_misuse<T: Handle>(function: &str, address: usize, guess: &str) {
    let message = format!(
        "libfasts3: {function}({address:#x}): not a live {} ({guess}); ignored, memory untouched",
        T::TYPE_NAME
    );
    // Not eprintln!: a closed stderr must not turn into a panic.
    let _ = writeln!(std::io::stderr(), "{message}");
    if cfg!(debug_assertions) {
        let _ = writeln!(std::io::stderr(), "libfasts3: aborting (debug build)");
        std::process::abort();
    }
}

// ---- the registries -----------------------------------------------------------------------

const SHARDS: usize = 16;

/// The live addresses of one shard. (A struct, not a type alias: cbindgen cannot parse an
/// alias of a two-parameter HashSet.)
struct AddressSet {
    addresses: HashSet<usize, BuildHasherDefault<AddressHasher>>,
}

/// One shard, alone on its cache line(s), so that lookups of handles in different shards
/// never share a line.
#[repr(align(128))]
struct Shard(RwLock<AddressSet>);

struct Registry {
    shards: [Shard; SHARDS],
}

static REGISTRIES: [Registry; KINDS] = [const { Registry::new() }; KINDS];

fn registry<T: Handle>() -> &'static Registry {
    &REGISTRIES[T::KIND as usize]
}

impl Registry {
    const fn new() -> Self {
        Registry { shards: [const { Shard(RwLock::new(AddressSet { addresses: HashSet::with_hasher(BuildHasherDefault::new()) })) }; SHARDS] }
    }

    fn shard(&self, key: usize) -> &RwLock<AddressSet> {
        &self.shards[(mix(key) >> 60) as usize % SHARDS].0
    }

    fn contains(&self, address: usize) -> bool {
        let key = hidden(address);
        // Nothing panics while a shard is locked; a poisoned lock's set is still consistent.
        self.shard(key).read().unwrap_or_else(PoisonError::into_inner).addresses.contains(&key)
    }

    fn insert(&self, address: usize) -> bool {
        install_fork_hooks();
        let key = hidden(address);
        self.shard(key).write().unwrap_or_else(PoisonError::into_inner).addresses.insert(key)
    }

    fn remove(&self, address: usize) -> bool {
        let key = hidden(address);
        self.shard(key).write().unwrap_or_else(PoisonError::into_inner).addresses.remove(&key)
    }
}

/// Addresses are stored complemented, so the registry holds no value that looks like a
/// pointer: leak checkers (LeakSanitizer, valgrind) scanning it must still report a handle
/// the caller never freed, instead of finding it "reachable" from here.
fn hidden(address: usize) -> usize {
    !address
}

/// A multiplicative hash of a (hidden) address: heap addresses share their low (alignment)
/// and high bits, so both the table index and the shard need the middle bits spread out.
fn mix(address: usize) -> u64 {
    let h = (address as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    h ^ (h >> 29)
}

#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix((self.0 << 8 | b as u64) as usize);
        }
    }
    fn write_usize(&mut self, address: usize) {
        self.0 = mix(address);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

// ---- fork ----------------------------------------------------------------------------------

thread_local! {
    /// The write locks the forking thread holds between the prepare and after-fork hooks.
    static HELD_ACROSS_FORK: RefCell<Vec<RwLockWriteGuard<'static, AddressSet>>> = const { RefCell::new(Vec::new()) };
}

fn install_fork_hooks() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers three extern "C" fns that never unwind (see below).
        unsafe { libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork)) };
    });
}

/// Take every shard's write lock, so the child starts with none held by a thread it lacks.
extern "C" fn before_fork() {
    let _ = std::panic::catch_unwind(|| {
        let guards: Vec<_> = REGISTRIES
            .iter()
            .flat_map(|r| r.shards.iter())
            .map(|s| s.0.write().unwrap_or_else(PoisonError::into_inner))
            .collect();
        // During thread teardown the slot may be gone: then the guards drop here (unlocked).
        let _ = HELD_ACROSS_FORK.try_with(|held| *held.borrow_mut() = guards);
    });
}

/// In the parent and in the child: release what `before_fork` took.
extern "C" fn after_fork() {
    let _ = std::panic::catch_unwind(|| {
        let _ = HELD_ACROSS_FORK.try_with(|held| held.borrow_mut().clear());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Thing(u64);
    handle_type!(Thing, Bytes);

    // The tests below are single-threaded: no handle is freed while borrowed, which is all
    // the `handle_*` and `free_handle` contracts ask.

    #[test]
    fn live_freed_and_foreign_pointers() {
        let ptr = into_handle(Thing(7));
        // SAFETY: single-threaded, the reference is dropped at once.
        assert!(unsafe { handle_ref(ptr, "thing") }.is_ok());
        // SAFETY: no borrow of `ptr` is alive.
        unsafe { free_handle(ptr, "thing_free") };
        // SAFETY: a freed pointer is refused without being read.
        let err = unsafe { handle_ref(ptr, "thing") }.err().expect("freed handle accepted");
        assert_eq!(err.status, fasts3_status::FASTS3_INVALID_HANDLE);
        assert!(err.error.message.contains("thing is not a live Thing"), "{}", err.error.message);
        let stack = Thing(1);
        // SAFETY: an unregistered pointer is refused without being read.
        let err = unsafe { handle_ref(&stack as *const Thing, "thing") }.err().expect("foreign pointer accepted");
        assert_eq!(err.status, fasts3_status::FASTS3_INVALID_HANDLE);
        // SAFETY: NULL is refused without being read.
        let err = unsafe { handle_ref(std::ptr::null::<Thing>(), "thing") }.err().expect("NULL accepted");
        assert_eq!(err.status, fasts3_status::FASTS3_NULL_POINTER);
        // SAFETY: NULL is "none", never read.
        assert!(matches!(unsafe { optional_handle(std::ptr::null::<Thing>(), "thing") }, Ok(None)));
    }

    /// Release builds report a double free and carry on (debug builds abort instead).
    #[cfg(not(debug_assertions))]
    #[test]
    fn double_free_leaves_memory_alone() {
        let ptr = into_handle(Thing(9));
        // SAFETY: no borrow of `ptr` is alive.
        unsafe { free_handle(ptr, "thing_free") };
        // SAFETY: the second free finds `ptr` unregistered and leaves its memory alone.
        unsafe { free_handle(ptr, "thing_free") };
        // SAFETY: an unregistered pointer is reported without being read.
        assert!(unsafe { handle_or_report(ptr, "thing_use") }.is_none());
    }

    /// Panics in a `_free` or a getter stay on this side of the ABI: the free still
    /// unregisters the handle, the getter returns its fallback.
    #[test]
    fn free_and_read_never_unwind() {
        struct PanicsOnDrop(#[allow(dead_code)] u64);
        impl Drop for PanicsOnDrop {
            fn drop(&mut self) {
                panic!("drop of a handle panicked");
            }
        }
        handle_type!(PanicsOnDrop, Bytes);
        let ptr = into_handle(PanicsOnDrop(0));
        // SAFETY: live and not borrowed; the closure panics while reading it.
        let read = unsafe { read_handle(ptr, "thing_get", 5u8, |_| panic!("getter panicked")) };
        assert_eq!(read, 5);
        // SAFETY: live and not borrowed.
        unsafe { free_handle(ptr, "thing_free") };
        // SAFETY: a freed pointer is refused without being read.
        assert!(unsafe { handle_ref(ptr, "thing") }.is_err(), "a panicking drop left the handle registered");
        let thing = into_handle(Thing(3));
        // SAFETY: live until the free below; NULL is "none".
        unsafe {
            assert_eq!(read_handle(thing, "thing_get", 0, |t| t.0), 3);
            assert_eq!(read_handle(std::ptr::null::<Thing>(), "thing_get", 9, |t| t.0), 9);
            free_handle(thing, "thing_free");
        }
    }

    #[test]
    fn shards_spread_heap_addresses() {
        let things: Vec<*mut Thing> = (0..256).map(|i| into_handle(Thing(i))).collect();
        let mut used = [0usize; SHARDS];
        for &t in &things {
            used[(mix(hidden(t as usize)) >> 60) as usize % SHARDS] += 1;
        }
        assert!(used.iter().all(|&n| n > 0), "some shard unused: {used:?}");
        for t in things {
            // SAFETY: each is live and not borrowed.
            unsafe { free_handle(t, "thing_free") };
        }
    }
}
