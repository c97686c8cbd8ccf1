//! Filling buffers: one object (`fasts3_get_into`, `fasts3_get`) or a batch (`fasts3_get_many`).

use fasts3_engine::get::{self, Destination, GetRequest, ReadOptions};
use fasts3_engine::ranges::{self, ByteRange};
use fasts3_engine::result_buffer::ResultBuffer;
use fasts3_engine::Error;
use crate::ffi::boundary::{bytes_mut, export, optional_cstr, out_ptr, utf8, Failure, FfiResult};
use std::ffi::c_char;
use crate::ffi::cancel::{block_on_cancellable, cancel_ref, fasts3_cancel_token, on_calling_thread};
use crate::ffi::client::{client_ref, fasts3_client};
use crate::ffi::handles::{free_handle, handle_mut, handle_type, into_handle};
use crate::ffi::error::{fasts3_error, new_error};
use crate::ffi::status::fasts3_status;

/// Pass as a length to mean "to the end of the object".
pub const FASTS3_TO_END: u64 = u64::MAX;

/// A byte buffer allocated by libfasts3 (the result of `fasts3_get`).
///
/// Thread safety: any thread may use a buffer, one call at a time (`fasts3_bytes_data` and
/// `fasts3_bytes_free` must not overlap on one buffer); its data is plain memory, the
/// caller's to share between threads until `fasts3_bytes_free`.
#[allow(non_camel_case_types)]
pub struct fasts3_bytes {
    data: ResultBuffer,
}
handle_type!(fasts3_bytes, Bytes);

impl fasts3_bytes {
    /// A result handle over `data` (for results made elsewhere, e.g. async completions).
    pub(crate) fn from_buffer(data: ResultBuffer) -> Self {
        fasts3_bytes { data }
    }
}

/// Fill `buf[0..buf_len)` with bytes `[offset, offset + buf_len)` of object `key` in
/// `bucket` (both `(ptr, len)` UTF-8, borrowed for the call), using parallel ranged GETs.
///
/// On success `*out_written` is the number of bytes written: `buf_len`, or fewer when the
/// object ends first, 0 when `offset` is at or past its end. On failure `buf`'s contents
/// are unspecified and `*out_written` is untouched.
///
/// `buf` may be NULL only when `buf_len` is 0 (which checks that the object exists).
/// `cancel` may be NULL. The caller keeps ownership of `buf`; libfasts3 writes to it only
/// during the call. Thread safety: any number of calls may share `client`.
///
/// # Safety
/// - `client` and `cancel` are not freed until this call returns.
/// - `bucket` and `key` point to `bucket_len` and `key_len` readable bytes (or are NULL when
///   the length is 0), not modified until this call returns.
/// - `buf` points to `buf_len` writable bytes (or is NULL when `buf_len` is 0) that overlap no
///   other argument and that nothing else reads or writes until this call returns.
/// - `out_written` is NULL or points to a writable `uint64_t`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_get_into(
    client: *const fasts3_client,
    bucket: *const u8,
    bucket_len: usize,
    key: *const u8,
    key_len: usize,
    offset: u64,
    buf: *mut u8,
    buf_len: usize,
    cancel: *const fasts3_cancel_token,
    out_written: *mut u64,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    // SAFETY: this function's contract is `fasts3_get_into_with_options`' with NULL options.
    unsafe {
        fasts3_get_into_with_options(
            client,
            bucket,
            bucket_len,
            key,
            key_len,
            offset,
            buf,
            buf_len,
            std::ptr::null(),
            cancel,
            out_written,
            err,
        )
    }
}

/// Options of one read. Extensible: set `struct_size` to `sizeof(fasts3_read_options)` as
/// your header declares it; fields a later header adds after it then take their defaults,
/// so a caller compiled against this header keeps working with later libraries. Zero-fill
/// the struct before setting fields (`= {0}` in C).
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct fasts3_read_options {
    /// `sizeof(fasts3_read_options)` of the caller's header (at least the size of this field).
    pub struct_size: usize,
    /// NULL, or a NUL-terminated ETag the object must have (as a listing or HEAD returned
    /// it; quotes optional): every request of the read sends `If-Match`, and another version
    /// fails with `FASTS3_OBJECT_CHANGED`.
    pub if_match: *const c_char,
    /// NULL, or a NUL-terminated version id: read that version of the object.
    pub version_id: *const c_char,
    /// Bytes per ranged GET of this read, the first one included (at most 5 GiB); 0: the
    /// client's part size (`fasts3_client_options.part_size`, adaptive by default). A
    /// caller reading several windows of one object side by side gives each window one or
    /// two requests; a read on its own is best left to the client's. (ABI 3.1)
    pub part_size: u64,
}

/// The options `options` points to (NULL: the defaults), read as far as the caller's
/// `struct_size` says and the fields this library knows.
///
/// # Safety
/// `options` is NULL or points to `options->struct_size` readable bytes starting with a
/// `size_t`, whose strings are NULL or NUL-terminated, unchanged until the borrow ends.
pub(crate) unsafe fn read_options<'a>(options: *const fasts3_read_options) -> FfiResult<ReadOptions<'a>> {
    if options.is_null() {
        return Ok(ReadOptions::default());
    }
    // SAFETY: non-NULL and starts with a readable size_t (the contract); unaligned-safe read.
    let declared = unsafe { std::ptr::read_unaligned(options.cast::<usize>()) };
    if declared < std::mem::size_of::<usize>() {
        return Err(Error::invalid(format!("options.struct_size is {declared}: set it to sizeof(fasts3_read_options)")).into());
    }
    let mut known =
        fasts3_read_options { struct_size: declared, if_match: std::ptr::null(), version_id: std::ptr::null(), part_size: 0 };
    let n = declared.min(std::mem::size_of::<fasts3_read_options>());
    // SAFETY: the caller's struct has `declared` >= n readable bytes (the contract); `known`
    // is a distinct local of at least n bytes, and every field is valid for any bytes a C
    // caller can write into a pointer, size_t or uint64_t.
    unsafe { std::ptr::copy_nonoverlapping(options.cast::<u8>(), (&mut known as *mut fasts3_read_options).cast::<u8>(), n) };
    Ok(ReadOptions {
        // SAFETY: NULL or NUL-terminated and unchanged during the call (the contract).
        if_match: unsafe { optional_cstr(known.if_match, "options.if_match") }?.filter(|e| !e.is_empty()),
        // SAFETY: as for `if_match`.
        version_id: unsafe { optional_cstr(known.version_id, "options.version_id") }?.filter(|v| !v.is_empty()),
        part_size: Some(known.part_size).filter(|&n| n != 0),
    })
}

/// `fasts3_get_into` with read options (NULL for the defaults): pin the read to an ETag,
/// read a given version, or cut it into parts of its own size.
///
/// Thread safety: may run concurrently with other calls on `client`, from any thread.
///
/// # Safety
/// As for `fasts3_get_into`, and `options` is NULL or points to a `fasts3_read_options`
/// whose `struct_size` bytes are readable and whose strings are NULL or NUL-terminated, all
/// unchanged until this call returns.
#[no_mangle]
pub unsafe extern "C" fn fasts3_get_into_with_options(
    client: *const fasts3_client,
    bucket: *const u8,
    bucket_len: usize,
    key: *const u8,
    key_len: usize,
    offset: u64,
    buf: *mut u8,
    buf_len: usize,
    options: *const fasts3_read_options,
    cancel: *const fasts3_cancel_token,
    out_written: *mut u64,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |call| {
        // SAFETY: the pointers meet this function's contract, the helpers' (handles live, ranges
        // readable or writable and unaliased, `buf` overlapping no other argument, `out_written`
        // writable, for the call); the borrows end when the call returns.
        let (client, (bucket, key), buf, cancel, out_written, options) = unsafe {
            (
                client_ref(client)?,
                call.object(bucket, bucket_len, key, key_len)?,
                bytes_mut(buf, buf_len, "buf")?,
                cancel_ref(cancel)?,
                out_ptr(out_written, "out_written")?,
                read_options(options)?,
            )
        };
        check_offset(offset)?;
        let read = get::get(client, on_calling_thread(), bucket, key, offset, Destination::Caller(buf), options);
        let fetched = block_on_cancellable(cancel, on_calling_thread(), read)?;
        *out_written = fetched.written;
        Ok(())
    })
}

/// Read up to `length` bytes (`FASTS3_TO_END` for all) of an object from `offset` into a
/// buffer libfasts3 allocates with exactly the size read, once the first response told it
/// the object's size. Arguments as for `fasts3_get_into`.
///
/// Ownership: on success the caller owns `*out` and releases it with `fasts3_bytes_free`.
///
/// Thread safety: may run concurrently with other calls on `client`, from any thread.
///
/// # Safety
/// - `client` and `cancel` are not freed until this call returns.
/// - `bucket` and `key` point to `bucket_len` and `key_len` readable bytes (or are NULL when
///   the length is 0), not modified until this call returns.
/// - `out` is NULL or points to a writable `fasts3_bytes *`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_get(
    client: *const fasts3_client,
    bucket: *const u8,
    bucket_len: usize,
    key: *const u8,
    key_len: usize,
    offset: u64,
    length: u64,
    cancel: *const fasts3_cancel_token,
    out: *mut *mut fasts3_bytes,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    // SAFETY: this function's contract is `fasts3_get_with_options`' with NULL options.
    unsafe { fasts3_get_with_options(client, bucket, bucket_len, key, key_len, offset, length, std::ptr::null(), cancel, out, err) }
}

/// `fasts3_get` with read options (NULL for the defaults; see `fasts3_read_options`).
///
/// Ownership: on success the caller owns `*out` and releases it with `fasts3_bytes_free`.
///
/// Thread safety: may run concurrently with other calls on `client`, from any thread.
///
/// # Safety
/// As for `fasts3_get`, and `options` as for `fasts3_get_into_with_options`.
#[no_mangle]
pub unsafe extern "C" fn fasts3_get_with_options(
    client: *const fasts3_client,
    bucket: *const u8,
    bucket_len: usize,
    key: *const u8,
    key_len: usize,
    offset: u64,
    length: u64,
    options: *const fasts3_read_options,
    cancel: *const fasts3_cancel_token,
    out: *mut *mut fasts3_bytes,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |call| {
        // SAFETY: every pointer argument meets this function's contract, which is the
        // helpers' contracts (handles not freed, ranges readable and unchanged for the call,
        // `out` writable). The borrows end when the call returns.
        let (client, (bucket, key), cancel, out, options) = unsafe {
            (
                client_ref(client)?,
                call.object(bucket, bucket_len, key, key_len)?,
                cancel_ref(cancel)?,
                out_ptr(out, "out")?,
                read_options(options)?,
            )
        };
        check_offset(offset)?;
        let dest = Destination::Allocate { max_len: length };
        let read = get::get(client, on_calling_thread(), bucket, key, offset, dest, options);
        let fetched = block_on_cancellable(cancel, on_calling_thread(), read)?;
        *out = into_handle(fasts3_bytes { data: fetched.owned.unwrap_or_else(ResultBuffer::empty) });
        Ok(())
    })
}

/// The contents of `bytes`: `*out_data` (never NULL, even when empty) and `*out_len`.
/// The data stays valid, and writable by the caller, until `fasts3_bytes_free`.
///
/// Thread safety: any thread, one call at a time per `bytes` (not concurrently with another
/// `fasts3_bytes_data` or `fasts3_bytes_free` of it).
///
/// # Safety
/// - `bytes` is not freed, nor used by another call, until this call returns.
/// - `out_data` is NULL or points to a writable `uint8_t *`; `out_len` is NULL or points to a
///   writable `size_t`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_bytes_data(bytes: *mut fasts3_bytes, out_data: *mut *mut u8, out_len: *mut usize, err: *mut *mut fasts3_error) -> fasts3_status {
    export!(err, |_| {
        // SAFETY: `bytes` not freed nor used by another call, the out-pointers NULL or
        // writable, during the call (this function's contract).
        let (bytes, out_data, out_len) =
            unsafe { (handle_mut(bytes, "bytes")?, out_ptr(out_data, "out_data")?, out_ptr(out_len, "out_len")?) };
        *out_data = bytes.data.as_mut_slice().as_mut_ptr();
        *out_len = bytes.data.len();
        Ok(())
    })
}

/// Release a buffer from `fasts3_get` or `fasts3_get_many`. NULL is ignored. A pointer that
/// is not a live buffer (a double free) is reported on stderr and otherwise ignored (debug
/// builds of libfasts3 abort instead).
///
/// Thread safety: any thread, once no other call uses `bytes`.
///
/// # Safety
/// - `bytes` is not in use by a call on another thread, and its data is no longer used.
#[no_mangle]
pub unsafe extern "C" fn fasts3_bytes_free(bytes: *mut fasts3_bytes) {
    // SAFETY: no call uses `bytes` (this function's contract); an unknown pointer is not touched.
    unsafe { free_handle(bytes, "fasts3_bytes_free") }
}

/// Coalescing gap `fasts3_get_ranges` callers should use unless they know better: ranges
/// at most 1 MiB apart are read with one request.
pub const FASTS3_DEFAULT_MAX_GAP: u64 = 1 << 20;
// A literal above, so that cbindgen can write it into the header; the engine's is the same.
const _: () = assert!(FASTS3_DEFAULT_MAX_GAP == ranges::DEFAULT_MAX_GAP);

/// One byte range of `fasts3_get_ranges`: `length` bytes from `offset`; a negative `offset`
/// counts from the end of the object (`{-8, 8}`: the last 8 bytes).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fasts3_range {
    pub offset: i64,
    pub length: u64,
}

/// Read `count` byte ranges of one object into `buf`, packed in the order given (range `i`
/// starts at the sum of the lengths before it): `fasts3_get_ranges_at` with `buf_offsets`
/// NULL. Arguments and results as there; thread safety as for `fasts3_get_ranges_at`.
///
/// # Safety
/// As for `fasts3_get_ranges_at` with `buf_offsets` NULL.
#[no_mangle]
pub unsafe extern "C" fn fasts3_get_ranges(
    client: *const fasts3_client,
    bucket: *const u8,
    bucket_len: usize,
    key: *const u8,
    key_len: usize,
    ranges: *const fasts3_range,
    count: usize,
    max_gap: u64,
    buf: *mut u8,
    buf_len: usize,
    options: *const fasts3_read_options,
    cancel: *const fasts3_cancel_token,
    out_lengths: *mut u64,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    // SAFETY: this function's contract is `fasts3_get_ranges_at`'s with NULL `buf_offsets`.
    unsafe {
        fasts3_get_ranges_at(
            client,
            bucket,
            bucket_len,
            key,
            key_len,
            ranges,
            count,
            max_gap,
            buf,
            buf_len,
            std::ptr::null(),
            options,
            cancel,
            out_lengths,
            err,
        )
    }
}

/// Read `count` byte ranges of one object into `buf`, range `i` at `buf + buf_offsets[i]`
/// (the safetensors pattern: tensors into their places in one preallocated buffer), or packed
/// in the order given when `buf_offsets` is NULL (range `i` at the sum of the lengths before
/// it). Placed ranges may come in any order but must lie inside `buf` and not overlap one
/// another (`FASTS3_INVALID_ARGUMENT` otherwise, before anything is sent). All ranges come
/// from one version of the object: one HEAD gives its size and ETag (or checks the ETag
/// `options->if_match` names), and every request is pinned to it (`FASTS3_OBJECT_CHANGED`
/// otherwise). Ranges at most `max_gap` bytes apart in the object are read with one request
/// (`FASTS3_DEFAULT_MAX_GAP` is a good default; 0 coalesces only touching ranges). Requests
/// run concurrently within the client's concurrency budget.
///
/// On success `out_lengths[i]` is how many bytes range `i` got: its `length`, or fewer where
/// the object ends first (bytes of its slice past that are left as they were). On failure
/// `buf`'s contents are unspecified and `out_lengths` untouched.
///
/// Thread safety: may run concurrently with other calls on `client`, from any thread.
///
/// # Safety
/// - `client`, `cancel` and `options` as for `fasts3_get_into_with_options`; `bucket`, `key`
///   as for `fasts3_get_into`.
/// - `ranges` points to `count` readable `fasts3_range`s (NULL when `count` is 0).
/// - `buf` points to `buf_len` writable bytes (NULL when `buf_len` is 0) that overlap no other
///   argument and that nothing else reads or writes until this call returns.
/// - `buf_offsets` is NULL or points to `count` readable `uint64_t`s.
/// - `out_lengths` points to `count` writable `uint64_t`s (NULL when `count` is 0).
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_get_ranges_at(
    client: *const fasts3_client,
    bucket: *const u8,
    bucket_len: usize,
    key: *const u8,
    key_len: usize,
    ranges: *const fasts3_range,
    count: usize,
    max_gap: u64,
    buf: *mut u8,
    buf_len: usize,
    buf_offsets: *const u64,
    options: *const fasts3_read_options,
    cancel: *const fasts3_cancel_token,
    out_lengths: *mut u64,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |call| {
        // SAFETY: every pointer argument meets this function's contract (handles not freed,
        // strings and ranges readable, `buf` writable and unaliased, for the call).
        let (client, (bucket, key), buf, cancel, options) = unsafe {
            (
                client_ref(client)?,
                call.object(bucket, bucket_len, key, key_len)?,
                bytes_mut(buf, buf_len, "buf")?,
                cancel_ref(cancel)?,
                read_options(options)?,
            )
        };
        if count > 0 && (ranges.is_null() || out_lengths.is_null()) {
            return Err(Failure::null(if ranges.is_null() { "ranges" } else { "out_lengths" }));
        }
        let wanted: Vec<ByteRange> = if count == 0 {
            Vec::new()
        } else {
            // SAFETY: non-NULL and `count` readable ranges (the contract); a C array of them is
            // aligned and smaller than isize::MAX bytes.
            unsafe { std::slice::from_raw_parts(ranges, count) }
                .iter()
                .map(|r| ByteRange { offset: r.offset, len: r.length })
                .collect()
        };
        let places: Option<&[u64]> = if buf_offsets.is_null() || count == 0 {
            None
        } else {
            // SAFETY: non-NULL, `count` readable offsets unchanged until this call returns (the
            // contract); a C array of them is aligned and smaller than isize::MAX bytes.
            Some(unsafe { std::slice::from_raw_parts(buf_offsets, count) })
        };
        // Driven from the calling thread, every span its own task on the shared workers: the
        // spans are many requests, received on every core.
        let placement = on_calling_thread();
        let read = ranges::get_ranges(client, placement, bucket, key, &wanted, places, buf, max_gap, options);
        let got = block_on_cancellable(cancel, placement, read)?;
        for (i, n) in got.into_iter().enumerate() {
            // SAFETY: `out_lengths` is non-NULL and writable for `count` values (the contract);
            // `got` has one entry per range, so i < count.
            unsafe { out_lengths.add(i).write(n) };
        }
        Ok(())
    })
}

/// One read of a `fasts3_get_many` batch. Strings are `(ptr, len)` UTF-8.
/// With `buf` non-NULL, bytes `[offset, offset + buf_len)` go into the caller's `buf`.
/// With `buf` NULL, libfasts3 allocates a result of up to `buf_len` bytes (`FASTS3_TO_END`
/// for the whole rest of the object), returned in the item's `fasts3_get_result.bytes`.
///
/// Extensible: set `struct_size` to `sizeof(fasts3_get_request)` as your header declares it,
/// the same in every request of one call (libfasts3 steps through the array by it, so a
/// later header may add fields, which then take their defaults). Zero-fill each request
/// before setting fields (`= {0}` in C).
///
/// Thread safety: read only during the `fasts3_get_many` call it is passed to, whose `buf` it
/// writes; a request with a `buf` must not be in two calls at once.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy)]
pub struct fasts3_get_request {
    /// `sizeof(fasts3_get_request)` of the caller's header.
    pub struct_size: usize,
    pub bucket: *const u8,
    pub bucket_len: usize,
    pub key: *const u8,
    pub key_len: usize,
    pub offset: u64,
    pub buf: *mut u8,
    pub buf_len: u64,
    /// NULL, or this read's options (`fasts3_read_options`: pin it to the ETag a listing
    /// gave, read a given version, give it its own part size).
    pub options: *const fasts3_read_options,
}

/// Every caller's request has at least the fields of this first versioned layout (ABI 3).
/// When a field is added, this stays the ABI 3 size, and `read_requests` must copy
/// `min(struct_size, size_of)` bytes into a zeroed request instead of reading a whole one.
const GET_REQUEST_MIN_SIZE: usize = std::mem::size_of::<fasts3_get_request>();

/// Copies of the `count` requests at `requests`, stepping through the caller's array by the
/// `struct_size` its first request declares (every request must declare the same).
///
/// # Safety
/// `requests` is non-NULL and points to `count` requests laid out as a C array whose element
/// size is the first request's `struct_size`, each starting with that `size_t`, readable and
/// unchanged until this function returns.
unsafe fn read_requests(requests: *const fasts3_get_request, count: usize) -> FfiResult<Vec<fasts3_get_request>> {
    let base = requests.cast::<u8>();
    // SAFETY: non-NULL and starts with a readable size_t (the contract); unaligned-safe read.
    let stride = unsafe { std::ptr::read_unaligned(base.cast::<usize>()) };
    if stride < GET_REQUEST_MIN_SIZE {
        return Err(Error::invalid(format!(
            "requests[0].struct_size is {stride}: set it to sizeof(fasts3_get_request) ({GET_REQUEST_MIN_SIZE} here)"
        ))
        .into());
    }
    if stride.checked_mul(count).is_none_or(|n| n > isize::MAX as usize) {
        return Err(Error::invalid(format!("{count} requests of {stride} bytes do not fit in memory")).into());
    }
    let mut copies = Vec::with_capacity(count);
    for i in 0..count {
        // SAFETY: request i starts i * stride bytes into the caller's array of `count`
        // requests of `stride` bytes (the contract; the product was checked above).
        let at = unsafe { base.add(i * stride) };
        // SAFETY: each request starts with a readable size_t (the contract).
        let declared = unsafe { std::ptr::read_unaligned(at.cast::<usize>()) };
        if declared != stride {
            return Err(Error::invalid(format!(
                "request {i}: struct_size is {declared}, request 0's is {stride}: every request of one call has the same"
            ))
            .into());
        }
        // SAFETY: `stride` >= size_of::<fasts3_get_request>() bytes are readable at `at` (the
        // contract), and every field (integers, raw pointers) is valid for any bytes.
        copies.push(unsafe { std::ptr::read_unaligned(at.cast::<fasts3_get_request>()) });
    }
    Ok(copies)
}

/// Outcome of one read of a batch.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct fasts3_get_result {
    pub status: fasts3_status,
    /// Bytes written (valid when `status` is `FASTS3_OK`).
    pub written: u64,
    /// For requests with `buf` NULL and status OK: the allocated result, owned by the caller
    /// (release with `fasts3_bytes_free`). NULL otherwise.
    pub bytes: *mut fasts3_bytes,
    /// When `status` is not OK: this read's error (naming its bucket and key), owned by the
    /// caller (release with `fasts3_error_free`). NULL when `status` is OK.
    pub error: *mut fasts3_error,
}

/// Run `count` reads concurrently, sharing the client's concurrency budget, and write one
/// `fasts3_get_result` per request into `results` (an array of `count` the caller provides).
///
/// Returns `FASTS3_OK` when every read succeeded. Otherwise returns the status of the
/// lowest-index failed read, whose error (message prefixed with its index) also becomes
/// `*err` and this thread's last error; `results` then tells which reads failed and which
/// succeeded. Release the `bytes` of the successful results and the `error` of the failed
/// ones. If the batch itself is invalid (NULL pointers, bad UTF-8, caller buffers that
/// overlap) nothing is read and `results` is untouched. On cancellation every result is
/// `FASTS3_CANCELLED` with its own `error` to release, and no write into any buffer
/// continues after return.
///
/// A request's `options` may pin its read (`if_match`, `version_id`); a read of a changed
/// object then fails alone with `FASTS3_OBJECT_CHANGED`. Thread safety: any number of calls
/// may share `client`.
///
/// # Safety
/// - `client` and `cancel` are not freed until this call returns.
/// - `requests` points to `count` readable `fasts3_get_request`s (or is NULL when `count` is
///   0), an array whose element size is the `struct_size` every request declares, not
///   modified until this call returns; in each, `bucket`, `key` and `buf` meet the
///   requirements of `fasts3_get_into` (a `buf` must not overlap `requests`, `results` or
///   any string; overlapping buffers of two requests are refused), and `options` is NULL or
///   as in `fasts3_get_into_with_options`.
/// - `results` points to `count` writable `fasts3_get_result`s (or is NULL when `count` is 0),
///   overlapping no other argument.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_get_many(
    client: *const fasts3_client,
    requests: *const fasts3_get_request,
    count: usize,
    cancel: *const fasts3_cancel_token,
    results: *mut fasts3_get_result,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |call| {
        // SAFETY: not freed during the call (this function's contract).
        let (client, cancel) = unsafe { (client_ref(client)?, cancel_ref(cancel)?) };
        if count == 0 {
            return Ok(());
        }
        if requests.is_null() {
            return Err(Failure::null("requests"));
        }
        if results.is_null() {
            return Err(Failure::null("results"));
        }
        // SAFETY: non-NULL, `count` readable requests laid out by their `struct_size`,
        // unchanged during the call (this function's contract).
        let raw = unsafe { read_requests(requests, count) }?;
        check_disjoint(&raw)?;
        let mut batch = Vec::with_capacity(count);
        let mut objects = Vec::with_capacity(count);
        for (i, r) in raw.iter().enumerate() {
            let at = |f: Failure| Failure { status: f.status, error: f.error.context(format!("request {i}")) };
            // SAFETY: each request's strings are readable and unchanged for the call (this
            // function's contract).
            let bucket = unsafe { utf8(r.bucket, r.bucket_len, "bucket") }.map_err(at)?;
            // SAFETY: as for `bucket`.
            let key = unsafe { utf8(r.key, r.key_len, "key") }.map_err(at)?;
            call.about(bucket, Some(key));
            objects.push((bucket, key));
            check_offset(r.offset).map_err(at)?;
            let dest = if r.buf.is_null() {
                Destination::Allocate { max_len: r.buf_len }
            } else {
                let len = usize::try_from(r.buf_len)
                    .map_err(|_| Error::invalid("buf_len too large"))
                    .map_err(Failure::from)
                    .map_err(at)?;
                // SAFETY: writable for `buf_len` bytes and used by nothing else during the
                // call (this function's contract); it overlaps no other request's buffer
                // (check_disjoint) nor any other argument (the contract).
                Destination::Caller(unsafe { bytes_mut(r.buf, len, "buf") }.map_err(at)?)
            };
            // SAFETY: NULL or a readable `fasts3_read_options` with NULL or NUL-terminated
            // strings, unchanged during the call (this function's contract).
            let options = unsafe { read_options(r.options) }.map_err(at)?;
            batch.push(GetRequest { bucket, key, offset: r.offset, dest, options });
        }
        // Driven from the calling thread, every read its own task on the shared workers.
        let placement = on_calling_thread();
        let outcomes = block_on_cancellable(cancel, placement, async {
            Ok(get::get_many(client, placement, batch).await)
        });
        let outcomes = match outcomes {
            Ok(o) => o,
            Err(cancelled) => {
                let failure = Failure::from(cancelled);
                for (i, &(bucket, key)) in objects.iter().enumerate() {
                    let error = new_error(&failure, Some(bucket), Some(key));
                    let result = fasts3_get_result { status: failure.status, written: 0, bytes: std::ptr::null_mut(), error };
                    // SAFETY: `results` is non-NULL and writable for `count` results (this
                    // function's contract), and i < count (one object per request).
                    unsafe { results.add(i).write(result) };
                }
                call.about(objects[0].0, Some(objects[0].1));
                return Err(failure);
            }
        };
        // One outcome per request: the writes below rely on it to stay inside `results`.
        assert_eq!(outcomes.len(), count, "get_many returned a wrong number of outcomes");
        let mut first_failure: Option<(Failure, usize)> = None;
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let result = match outcome {
                Ok(f) => fasts3_get_result {
                    status: fasts3_status::FASTS3_OK,
                    written: f.written,
                    bytes: f.owned.map_or(std::ptr::null_mut(), |data| into_handle(fasts3_bytes { data })),
                    error: std::ptr::null_mut(),
                },
                Err(e) => {
                    let failure = Failure::from(e.context(format!("request {i}")));
                    let (bucket, key) = objects[i];
                    let result = fasts3_get_result {
                        status: failure.status,
                        written: 0,
                        bytes: std::ptr::null_mut(),
                        error: new_error(&failure, Some(bucket), Some(key)),
                    };
                    first_failure.get_or_insert((failure, i));
                    result
                }
            };
            // SAFETY: `results` is non-NULL and writable for `count` results (this function's
            // contract), and i < count (asserted above).
            unsafe { results.add(i).write(result) };
        }
        match first_failure {
            None => Ok(()),
            Some((failure, i)) => {
                call.about(objects[i].0, Some(objects[i].1));
                Err(failure)
            }
        }
    })
}

/// Overlapping caller buffers would be two writers on one memory: refuse the batch.
fn check_disjoint(requests: &[fasts3_get_request]) -> FfiResult<()> {
    let mut spans: Vec<(usize, usize, usize)> = requests
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.buf.is_null() && r.buf_len > 0)
        .map(|(i, r)| (r.buf as usize, (r.buf as usize).saturating_add(r.buf_len.min(usize::MAX as u64) as usize), i))
        .collect();
    spans.sort_unstable();
    for pair in spans.windows(2) {
        if pair[1].0 < pair[0].1 {
            return Err(Error::invalid(format!(
                "buffers of requests {} and {} overlap",
                pair[0].2, pair[1].2
            ))
            .into());
        }
    }
    Ok(())
}

fn check_offset(offset: u64) -> FfiResult<()> {
    if offset > i64::MAX as u64 {
        return Err(Error::invalid(format!("offset {offset} is out of range")).into());
    }
    Ok(())
}
