//! The C ABI. Conventions (after rustls-ffi and hyper's C API):
//!
//! - Every fallible function returns a [`fasts3_status`]; results leave only through
//!   out-parameters, written only on success.
//! - Every exported body runs inside the panic boundary: a Rust panic becomes
//!   `FASTS3_PANIC`, never unwinds into C. A fallible export's body is `export!(err, |call|
//!   ...)` ([`boundary::export`], around [`boundary::guard`]); the others go through
//!   [`handles::read_handle`] (getters), [`handles::free_handle`] (`_free`) or
//!   [`boundary::guard_infallible`].
//! - Every fallible function takes a trailing `fasts3_error **err`: NULL when the caller
//!   does not want it; otherwise `*err` is set to NULL on success and to a new
//!   [`error::fasts3_error`] (owned by the caller) on failure. [`boundary::guard`] fills it.
//!   The header says so once, in `fasts3_error`'s doc; each export's `# Safety` section
//!   points there.
//! - An export reads its pointer arguments first, through the checked conversions of
//!   [`boundary`] and [`handles`], in one `unsafe` block whose SAFETY comment points at the
//!   `# Safety` section (two blocks where the error must name the object before the later
//!   arguments are checked); then it does its work in safe code.
//! - On failure a message, the S3 error code and HTTP status are also kept for the *calling*
//!   thread (`fasts3_last_error_*`), set after all work of the call has finished. That is
//!   correct only for callers that stay on one OS thread between the call and the accessor
//!   (C, CPython); others (Go, async runtimes) should use `err`.
//! - Handles are created through `**out` parameters ([`handles::into_handle`]) and released
//!   by a `_free` that accepts NULL ([`handles::free_handle`]).
//!   Every handle argument is checked against a registry of live handles ([`handles`]):
//!   a freed or foreign pointer is `FASTS3_INVALID_HANDLE`, a double free is reported.
//! - Caller buffers are `(uint8_t *ptr, size_t len)`; no pointer into them is kept after
//!   the call returns. The one exception is the asynchronous interface ([`ops`]): a submit
//!   lends its buffer to the op until the op's completion has been popped from its queue.
//! - Every export that takes a pointer is an `unsafe extern "C" fn` whose `# Safety` section
//!   (copied into the header) lists what the C caller guarantees for each pointer, in one
//!   phrasing: handles "not freed (nor used by another call) until this call returns",
//!   inputs "readable ... not modified until this call returns", outputs "NULL or points to
//!   a writable ...". What the library checks (NULL, registered handles, UTF-8, overlapping
//!   batch buffers) is refused with a status instead.

pub mod boundary;
pub mod cancel;
pub mod client;
pub mod error;
pub mod handles;
// SIGINT watching needs POSIX sigaction; elsewhere a watch that never fires.
#[cfg(unix)]
pub mod interrupt;
#[cfg(not(unix))]
#[path = "interrupt_unsupported.rs"]
pub mod interrupt;
pub mod objects;
pub mod ops;
pub mod status;
pub mod transfer;
pub mod upload;
pub mod version;
pub mod writes;
