//! Writing: upload from caller memory (`fasts3_put_from`), delete one or many objects, and
//! server-side copy.

use fasts3_engine::copy::{self, CopyOptions};
use fasts3_engine::put::{self, PutOptions};
use fasts3_engine::runtime::Placement;
use fasts3_engine::{delete, Error};
use crate::ffi::boundary::{bytes, export, optional_cstr, optional_out, utf8, Failure, FfiResult};
use crate::ffi::cancel::{block_on_cancellable, cancel_ref, fasts3_cancel_token, on_calling_thread};
use crate::ffi::client::{client_ref, fasts3_client};
use crate::ffi::error::{fasts3_error, new_error};
use crate::ffi::status::fasts3_status;
use std::ffi::c_char;

/// Options of `fasts3_put_from`. Extensible like `fasts3_read_options`: set `struct_size` to
/// `sizeof(fasts3_put_options)` as your header declares it; fields a later header adds after
/// it then take their defaults. Zero-fill the struct before setting fields (`= {0}` in C).
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct fasts3_put_options {
    /// `sizeof(fasts3_put_options)` of the caller's header (at least the size of this field).
    pub struct_size: usize,
    /// The object's Content-Type, NUL-terminated UTF-8; NULL for none (the server's default).
    pub content_type: *const c_char,
    /// `metadata_count` user metadata names (without `x-amz-meta-`; letters, digits, '-', '_',
    /// '.') and values (printable ASCII), NUL-terminated; NULL when `metadata_count` is 0.
    pub metadata_names: *const *const c_char,
    pub metadata_values: *const *const c_char,
    pub metadata_count: usize,
    /// Non-zero: create only (`If-None-Match: *`); `FASTS3_PRECONDITION_FAILED` if the key
    /// exists. (A byte rather than `bool`: any value a caller writes is valid.)
    pub if_none_match: u8,
    /// Uploads larger than this many bytes are multipart; 0 for the default (16 MiB).
    pub multipart_threshold: u64,
    /// Part size of a multipart upload (5 MiB..5 GiB); 0 for the default (8 MiB, grown so
    /// that at most 10,000 parts are needed).
    pub part_size: u64,
}

/// Options of `fasts3_copy`, extensible like `fasts3_put_options` (`struct_size` first).
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct fasts3_copy_options {
    /// `sizeof(fasts3_copy_options)` of the caller's header (at least the size of this field).
    pub struct_size: usize,
    /// Sources larger than this are copied in parts (UploadPartCopy); 0 for the default,
    /// 5 GiB (the largest CopyObject).
    pub multipart_threshold: u64,
    /// Part size of a multipart copy (5 MiB..5 GiB); 0 for the default (256 MiB).
    pub part_size: u64,
}

/// A `(ptr, len)` UTF-8 string (a key of `fasts3_delete_many`).
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct fasts3_str {
    pub ptr: *const u8,
    pub len: usize,
}

/// Outcome of one key of `fasts3_delete_many`.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct fasts3_delete_result {
    pub status: fasts3_status,
    /// When `status` is not OK: this key's error (S3 code, message, bucket and key), owned by
    /// the caller (release with `fasts3_error_free`). NULL when `status` is OK.
    pub error: *mut fasts3_error,
}

/// Upload `data[0..data_len)` as object `key` of `bucket` (both `(ptr, len)` UTF-8): one PUT
/// up to the multipart threshold, above it a multipart upload whose parts (at most the
/// client's `max_concurrency` in flight, each retried as GETs are) are sent straight from
/// `data`, without a copy. Every request carries the CRC32C of its bytes
/// (`x-amz-checksum-crc32c`), which the server verifies.
///
/// A multipart upload that fails or is cancelled is aborted (AbortMultipartUpload) before
/// this call returns, so no parts stay stored. `options` may be NULL (defaults); `cancel`
/// may be NULL. On success `*out_parts` (if `out_parts` is not NULL) is the number of parts
/// sent, 0 for a single PUT.
///
/// Ownership: `data` stays the caller's; libfasts3 reads it only during the call and keeps no
/// pointer into it afterwards. Thread safety: any number of calls may share `client`.
///
/// # Safety
/// - `client` and `cancel` are not freed until this call returns.
/// - `bucket` and `key` point to `bucket_len` and `key_len` readable bytes (or are NULL when
///   the length is 0), not modified until this call returns.
/// - `data` points to `data_len` readable bytes (or is NULL when `data_len` is 0) that nothing
///   writes until this call returns.
/// - `options` is NULL or points to a `fasts3_put_options` whose `struct_size` bytes are
///   readable and whose strings are NULL or NUL-terminated, all unchanged during the call.
/// - `out_parts` is NULL or points to a writable `uint32_t`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_put_from(
    client: *const fasts3_client,
    bucket: *const u8,
    bucket_len: usize,
    key: *const u8,
    key_len: usize,
    data: *const u8,
    data_len: usize,
    options: *const fasts3_put_options,
    cancel: *const fasts3_cancel_token,
    out_parts: *mut u32,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |call| {
        // SAFETY: the pointers meet this function's contract, the helpers' (handles live, ranges
        // readable and unchanged, `options` NULL or `struct_size` readable bytes, `out_parts`
        // NULL or writable, for the call); the borrows end when the call returns.
        let (client, (bucket, key), data, cancel, options, out_parts) = unsafe {
            (
                client_ref(client)?,
                call.object(bucket, bucket_len, key, key_len)?,
                bytes(data, data_len, "data")?,
                cancel_ref(cancel)?,
                put_options(options)?,
                optional_out(out_parts),
            )
        };
        let outcome = block_on_cancellable(
            cancel,
            on_calling_thread(),
            put::put(client, on_calling_thread(), bucket, key, data, &options),
        )?;
        if let Some(out_parts) = out_parts {
            *out_parts = outcome.parts;
        }
        Ok(())
    })
}

/// The options behind a `fasts3_put_options *` (NULL: defaults).
///
/// # Safety
/// As `fasts3_put_from`'s contract for `options`.
pub(crate) unsafe fn put_options(options: *const fasts3_put_options) -> FfiResult<PutOptions> {
    let mut known = fasts3_put_options {
        struct_size: 0,
        content_type: std::ptr::null(),
        metadata_names: std::ptr::null(),
        metadata_values: std::ptr::null(),
        metadata_count: 0,
        if_none_match: 0,
        multipart_threshold: 0,
        part_size: 0,
    };
    // SAFETY: forwarded contract; every field of the struct is valid for any bytes.
    if !unsafe { read_extensible(options, &mut known, "fasts3_put_options") }? {
        return Ok(PutOptions::default());
    }
    let o = &known;
    // SAFETY: NULL or NUL-terminated and unchanged (the caller's contract).
    let content_type = unsafe { optional_cstr(o.content_type, "options.content_type") }?.map(str::to_string);
    let mut metadata = Vec::with_capacity(o.metadata_count);
    if o.metadata_count > 0 {
        if o.metadata_names.is_null() {
            return Err(Failure::null("options.metadata_names"));
        }
        if o.metadata_values.is_null() {
            return Err(Failure::null("options.metadata_values"));
        }
        for i in 0..o.metadata_count {
            // SAFETY: both arrays hold `metadata_count` readable pointers (the caller's
            // contract), and i < metadata_count.
            let (name, value) = unsafe { (*o.metadata_names.add(i), *o.metadata_values.add(i)) };
            // SAFETY: NUL-terminated strings, unchanged during the call (the caller's contract).
            let name = unsafe { optional_cstr(name, "metadata name") }?.ok_or_else(|| Failure::null("metadata name"))?;
            // SAFETY: as for `name`.
            let value = unsafe { optional_cstr(value, "metadata value") }?.ok_or_else(|| Failure::null("metadata value"))?;
            metadata.push((name.to_string(), value.to_string()));
        }
    }
    Ok(PutOptions {
        content_type,
        metadata,
        if_none_match: o.if_none_match != 0,
        multipart_threshold: o.multipart_threshold,
        part_size: o.part_size,
    })
}

/// Delete object `key` of `bucket` (`(ptr, len)` UTF-8). Deleting a key that does not exist
/// succeeds, as in S3; a missing bucket is `FASTS3_NO_SUCH_BUCKET`. `cancel` may be NULL.
/// Thread safety: any number of calls may share `client`.
///
/// # Safety
/// - `client` and `cancel` are not freed until this call returns.
/// - `bucket` and `key` point to `bucket_len` and `key_len` readable bytes (or are NULL when
///   the length is 0), not modified until this call returns.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_delete(
    client: *const fasts3_client,
    bucket: *const u8,
    bucket_len: usize,
    key: *const u8,
    key_len: usize,
    cancel: *const fasts3_cancel_token,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |call| {
        // SAFETY: every pointer argument meets this function's contract, which is the
        // helpers' contracts. The borrows end when the call returns.
        let (client, (bucket, key), cancel) =
            unsafe { (client_ref(client)?, call.object(bucket, bucket_len, key, key_len)?, cancel_ref(cancel)?) };
        let placement = Placement::CallingThread { offload: None };
        block_on_cancellable(cancel, placement, delete::delete(client, placement, bucket, key))?;
        Ok(())
    })
}

/// Delete `count` keys of `bucket` (DeleteObjects, 1,000 keys per request, a few requests in
/// flight) and write one `fasts3_delete_result` per key into `results` (an array of `count`
/// the caller provides). Keys that do not exist count as deleted, as in S3.
///
/// Returns `FASTS3_OK` when every key was deleted. Otherwise returns the status of the
/// lowest-index failed key, whose error (message prefixed with its index) also becomes
/// `*err` and this thread's last error; `results` tells which keys failed, each with its own
/// `error` for the caller to release. A failed request (e.g. a missing bucket)
/// fails each of its keys. If the call itself is invalid (NULL pointers, bad UTF-8) nothing
/// is deleted and `results` is untouched; on cancellation `results` is untouched too (some
/// keys may have been deleted).
///
/// Thread safety: may run concurrently with other calls on `client`, from any thread.
///
/// # Safety
/// - `client` and `cancel` are not freed until this call returns.
/// - `bucket` points to `bucket_len` readable bytes, not modified until this call returns.
/// - `keys` points to `count` readable `fasts3_str` (or is NULL when `count` is 0), whose
///   strings are readable and unchanged until this call returns.
/// - `results` points to `count` writable `fasts3_delete_result`s (or is NULL when `count` is
///   0), overlapping no other argument.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_delete_many(
    client: *const fasts3_client,
    bucket: *const u8,
    bucket_len: usize,
    keys: *const fasts3_str,
    count: usize,
    cancel: *const fasts3_cancel_token,
    results: *mut fasts3_delete_result,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |call| {
        // SAFETY: every pointer argument meets this function's contract, which is the
        // helpers' contracts. The borrows end when the call returns.
        let (client, bucket, cancel) = unsafe { (client_ref(client)?, call.bucket(bucket, bucket_len)?, cancel_ref(cancel)?) };
        if count == 0 {
            return Ok(());
        }
        if keys.is_null() {
            return Err(Failure::null("keys"));
        }
        if results.is_null() {
            return Err(Failure::null("results"));
        }
        // SAFETY: non-NULL, `count` readable entries, unchanged during the call (this
        // function's contract; a C array is aligned and smaller than isize::MAX).
        let raw = unsafe { std::slice::from_raw_parts(keys, count) };
        let mut names = Vec::with_capacity(count);
        for (i, k) in raw.iter().enumerate() {
            // SAFETY: each key is readable and unchanged for the call (this function's contract).
            let key = unsafe { utf8(k.ptr, k.len, "key") }
                .map_err(|f| Failure { status: f.status, error: f.error.context(format!("key {i}")) })?;
            call.about(bucket, Some(key));
            names.push(key);
        }
        let placement = Placement::CallingThread { offload: None };
        let outcomes = block_on_cancellable(cancel, placement, delete::delete_many(client, placement, bucket, &names))?;
        // One outcome per key: the writes below rely on it to stay inside `results`.
        assert_eq!(outcomes.len(), count, "delete_many returned a wrong number of outcomes");
        let mut first_failure: Option<(Failure, usize)> = None;
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let mut result = fasts3_delete_result { status: fasts3_status::FASTS3_OK, error: std::ptr::null_mut() };
            if let Err(e) = outcome {
                let failure = Failure::from(e.context(format!("key {i}")));
                result.status = failure.status;
                result.error = new_error(&failure, Some(bucket), Some(names[i]));
                first_failure.get_or_insert((failure, i));
            }
            // SAFETY: `results` is non-NULL and writable for `count` results (this function's
            // contract), and i < count (asserted above).
            unsafe { results.add(i).write(result) };
        }
        match first_failure {
            None => Ok(()),
            Some((failure, i)) => {
                call.about(bucket, Some(names[i]));
                Err(failure)
            }
        }
    })
}

/// Copy object `src_key` of `src_bucket` to `dst_key` of `dst_bucket` on the server (all
/// `(ptr, len)` UTF-8): CopyObject, or a multipart copy (UploadPartCopy, in parallel) for
/// sources above the threshold, pinned to the source's ETag (`FASTS3_OBJECT_CHANGED` if it is
/// replaced meanwhile) and aborted on failure or cancel. Content type and user metadata are
/// kept. `options` and `cancel` may be NULL. An error names the source bucket and key.
///
/// Thread safety: may run concurrently with other calls on `client`, from any thread.
///
/// # Safety
/// - `client` and `cancel` are not freed until this call returns.
/// - the four strings point to their length's readable bytes (or are NULL when the length is
///   0), not modified until this call returns.
/// - `options` is NULL or points to a `fasts3_copy_options` whose `struct_size` bytes are
///   readable.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_copy(
    client: *const fasts3_client,
    src_bucket: *const u8,
    src_bucket_len: usize,
    src_key: *const u8,
    src_key_len: usize,
    dst_bucket: *const u8,
    dst_bucket_len: usize,
    dst_key: *const u8,
    dst_key_len: usize,
    options: *const fasts3_copy_options,
    cancel: *const fasts3_cancel_token,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |call| {
        // SAFETY: every pointer argument meets this function's contract, which is the
        // helpers' contracts. The borrows end when the call returns.
        let (client, src_bucket, src_key) = unsafe {
            (client_ref(client)?, utf8(src_bucket, src_bucket_len, "src_bucket")?, utf8(src_key, src_key_len, "src_key")?)
        };
        call.about(src_bucket, Some(src_key));
        // SAFETY: as above.
        let (dst_bucket, dst_key, cancel) = unsafe {
            (utf8(dst_bucket, dst_bucket_len, "dst_bucket")?, utf8(dst_key, dst_key_len, "dst_key")?, cancel_ref(cancel)?)
        };
        let mut known = fasts3_copy_options { struct_size: 0, multipart_threshold: 0, part_size: 0 };
        // SAFETY: NULL or `struct_size` readable bytes (this function's contract); every field
        // of the struct is valid for any bytes.
        unsafe { read_extensible(options, &mut known, "fasts3_copy_options") }?;
        let options = CopyOptions { multipart_threshold: known.multipart_threshold, part_size: known.part_size };
        let placement = Placement::CallingThread { offload: None };
        block_on_cancellable(
            cancel,
            placement,
            copy::copy(client, placement, (src_bucket, src_key), (dst_bucket, dst_key), &options),
        )?;
        Ok(())
    })
}

/// Copy an extensible options struct (`struct_size` first) into `known`, which holds the
/// defaults: as many bytes as both the caller's `struct_size` and this library's struct
/// cover, so a caller built against an older (shorter) or newer (longer) header works.
/// Returns false for NULL (`known` untouched).
///
/// # Safety
/// `options` is NULL or points to `struct_size` readable bytes starting with a `size_t`, and
/// every field of `T` is valid for any bytes (integers and raw pointers only).
unsafe fn read_extensible<T>(options: *const T, known: &mut T, name: &str) -> FfiResult<bool> {
    if options.is_null() {
        return Ok(false);
    }
    // SAFETY: non-NULL and starts with a readable size_t (the contract); unaligned-safe read.
    let declared = unsafe { std::ptr::read_unaligned(options.cast::<usize>()) };
    if declared < std::mem::size_of::<usize>() {
        return Err(Error::invalid(format!("options.struct_size is {declared}: set it to sizeof({name})")).into());
    }
    let n = declared.min(std::mem::size_of::<T>());
    // SAFETY: the caller's struct has `declared` >= n readable bytes (the contract); `known`
    // is a distinct object of at least n bytes, and any bytes are a valid `T` (the contract).
    unsafe { std::ptr::copy_nonoverlapping(options.cast::<u8>(), (known as *mut T).cast::<u8>(), n) };
    Ok(true)
}
