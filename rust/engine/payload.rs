//! Request bodies over the caller's memory: parts of an upload sent without a copy.
//!
//! hyper takes bodies as `Bytes`, which must be `'static`. A part of the caller's buffer is
//! made into one with `Bytes::from_owner` over a [`Lent`] slice, which is sound only if no
//! such `Bytes` survives the buffer. Two rules make that hold:
//! - lending needs the [`Offload`] permission (made only by `unsafe` code at the C boundary,
//!   where the buffer outlives the call and the call's future is never leaked);
//! - every lent `Bytes` goes only to a data plane made by `DataPlane::scoped_to_call`, whose
//!   connections live inside the call's future (`http::scoped`), declared after the
//!   [`Payload`], so they are dropped before it. `Payload`'s drop then checks that no lent
//!   slice is left, and aborts the process if one is (a bug: better than a use after free).
//!
//! Without the permission (a safe Rust caller), parts are copied.

use crate::runtime::Placement;
use bytes::Bytes;
use std::ops::Range;
use std::sync::Arc;

/// The bytes an upload sends.
pub(crate) struct Payload<'a> {
    data: &'a [u8],
    /// Some: slices are lent (no copy); None: copied.
    lend: Option<Lease>,
}

/// Counts the lent slices still alive (the `Arc`'s strong count, minus this one).
struct Lease(Arc<()>);

impl<'a> Payload<'a> {
    /// `placement` carries the permission to lend (`Placement::CallingThread` with an
    /// `Offload`).
    pub fn new(data: &'a [u8], placement: Placement) -> Payload<'a> {
        let lend = match placement {
            Placement::CallingThread { offload: Some(_) } => Some(Lease(Arc::new(()))),
            _ => None,
        };
        Payload { data, lend }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// Whether [`slice`](Self::slice) lends (the data plane it goes to must then be scoped).
    pub fn lends(&self) -> bool {
        self.lend.is_some()
    }

    /// `data[range]` as `Bytes`: lent when permitted, else copied.
    pub fn slice(&self, range: Range<usize>) -> Bytes {
        let part = &self.data[range];
        match &self.lend {
            None => Bytes::copy_from_slice(part),
            Some(lease) => Bytes::from_owner(Lent { ptr: part.as_ptr(), len: part.len(), _lease: lease.0.clone() }),
        }
    }
}

impl Drop for Payload<'_> {
    fn drop(&mut self) {
        if let Some(lease) = &self.lend {
            if Arc::strong_count(&lease.0) != 1 {
                // A lent slice outlived its call: the caller may free the memory it points to.
                eprintln!("libfasts3: an upload body outlived its call (a bug in libfasts3); aborting");
                std::process::abort();
            }
        }
    }
}

/// A slice of the caller's buffer handed to hyper as the owner of a `Bytes`.
struct Lent {
    ptr: *const u8,
    len: usize,
    _lease: Arc<()>,
}

// SAFETY: `Lent` only reads the memory it points to, which nothing writes during the call
// (the C contract of the upload's buffer), so reading it from another thread is sound.
unsafe impl Send for Lent {}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr`/`len` come from a live `&[u8]` of the call's buffer; every `Lent` is
        // dropped before the call ends (module docs: the `Offload` permission and the scoped
        // data plane, checked by `Payload`'s drop), so the memory is valid and unchanged.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}
