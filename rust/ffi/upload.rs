//! Streaming uploads: a multipart upload written one part at a time (`engine::upload`), for
//! writers that do not hold the whole object in memory.

use fasts3_engine::runtime::Placement;
use fasts3_engine::upload::Upload;
use crate::ffi::boundary::{bytes, export, optional_out, out_ptr};
use crate::ffi::error::fasts3_error;
use crate::ffi::cancel::{block_on_cancellable, cancel_ref, fasts3_cancel_token};
use crate::ffi::client::{client_ref, fasts3_client};
use crate::ffi::handles::{free_handle, handle_mut, handle_type, into_handle};
use crate::ffi::status::fasts3_status;
use crate::ffi::writes::{put_options, fasts3_put_options};
use std::sync::Arc;

/// A multipart upload in progress. Create with `fasts3_upload_begin`, send parts with
/// `fasts3_upload_write_part`, end with `fasts3_upload_finish`, release with
/// `fasts3_upload_free` (which aborts an upload that was not finished).
///
/// Thread safety: one call at a time per upload (not `fasts3_upload_free` during another
/// call); any thread may make them.
#[allow(non_camel_case_types)]
pub struct fasts3_upload {
    /// Kept beside the upload so that a call's error can name them while it uses the upload.
    bucket: String,
    key: String,
    upload: Upload,
}
handle_type!(fasts3_upload, Upload);

/// Start a multipart upload (CreateMultipartUpload) of object `key` of `bucket` (both
/// `(ptr, len)` UTF-8) in `*out`. `options` may be NULL: its content type, metadata and
/// `if_none_match` apply (`if_none_match` is checked when the upload completes);
/// `multipart_threshold` and `part_size` are ignored (the caller chooses its parts).
///
/// Ownership: on success the caller owns `*out` and releases it with `fasts3_upload_free`.
/// The upload keeps the client alive (it may be freed first).
///
/// Thread safety: may run concurrently with other calls on `client`, from any thread.
///
/// # Safety
/// - `client` and `cancel` (NULL allowed) are not freed until this call returns.
/// - `bucket` and `key` point to `bucket_len` and `key_len` readable bytes (or are NULL when
///   the length is 0), not modified until this call returns.
/// - `options` is NULL or as in `fasts3_put_from`.
/// - `out` is NULL or points to a writable `fasts3_upload *`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_upload_begin(
    client: *const fasts3_client,
    bucket: *const u8,
    bucket_len: usize,
    key: *const u8,
    key_len: usize,
    options: *const fasts3_put_options,
    cancel: *const fasts3_cancel_token,
    out: *mut *mut fasts3_upload,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |call| {
        // SAFETY: the pointers meet this function's contract (handles live, ranges readable
        // and unchanged, `options` NULL or a readable struct of `struct_size` bytes, `out` NULL
        // or writable, for the call); the borrows end when it returns.
        let (client, (bucket, key), options, cancel, out) = unsafe {
            (
                Arc::clone(client_ref(client)?),
                call.object(bucket, bucket_len, key, key_len)?,
                put_options(options)?,
                cancel_ref(cancel)?,
                out_ptr(out, "out")?,
            )
        };
        let upload = block_on_cancellable(cancel, Placement::Workers, Upload::begin(client, bucket, key, &options))?;
        *out = into_handle(fasts3_upload { bucket: bucket.to_string(), key: key.to_string(), upload });
        Ok(())
    })
}

/// Send `data[0..data_len)` as the upload's next part (numbered from 1). The bytes are copied
/// before the part is sent: `data` is free again when this returns. Parts are sent in the
/// background, at most the client's `max_concurrency` at a time; when that many are in
/// flight this call waits for one to finish. The error of an earlier part may surface here or
/// at `fasts3_upload_finish`; after an error, only `fasts3_upload_free` (which aborts) is
/// useful. Every part but the last must hold at least 5 MiB (S3's rule): a part written
/// after a smaller one is refused with `FASTS3_INVALID_ARGUMENT`. A part holds 1 byte to
/// 5 GiB; an upload has at most 10,000 parts.
///
/// Thread safety: one call at a time per upload, from any thread; may run concurrently with
/// calls on other uploads and on the client.
///
/// # Safety
/// - `upload` is a live upload not used by another call meanwhile; `cancel` (NULL allowed)
///   is not freed until this call returns.
/// - `data` points to `data_len` readable bytes (NULL only when `data_len` is 0), unchanged
///   until this call returns.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_upload_write_part(
    upload: *mut fasts3_upload,
    data: *const u8,
    data_len: usize,
    cancel: *const fasts3_cancel_token,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |call| {
        // SAFETY: live and not used by another call (this function's contract).
        let fasts3_upload { bucket, key, upload } = unsafe { handle_mut(upload, "upload") }?;
        call.about(bucket, Some(key));
        // SAFETY: `data` readable and unchanged, `cancel` not freed, for the call (this
        // function's contract).
        let (data, cancel) = unsafe { (bytes(data, data_len, "data")?, cancel_ref(cancel)?) };
        block_on_cancellable(cancel, Placement::Workers, upload.write_part(data))?;
        Ok(())
    })
}

/// Wait for every part and complete the upload (CompleteMultipartUpload). On success
/// `*out_parts` (if not NULL) is the number of parts. On failure the upload is aborted before
/// this returns (no parts stay stored), unless the call was cancelled: then
/// `fasts3_upload_free` aborts it. Either way the upload cannot be written to afterwards;
/// release it with `fasts3_upload_free`.
///
/// Thread safety: one call at a time per upload, from any thread; may run concurrently with
/// calls on other uploads and on the client.
///
/// # Safety
/// - `upload` is a live upload not used by another call meanwhile; `cancel` (NULL allowed)
///   is not freed until this call returns.
/// - `out_parts` is NULL or points to a writable `uint32_t`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_upload_finish(
    upload: *mut fasts3_upload,
    cancel: *const fasts3_cancel_token,
    out_parts: *mut u32,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |call| {
        // SAFETY: live and not used by another call (this function's contract).
        let fasts3_upload { bucket, key, upload } = unsafe { handle_mut(upload, "upload") }?;
        call.about(bucket, Some(key));
        // SAFETY: `cancel` not freed, `out_parts` NULL or writable, for the call (this
        // function's contract).
        let (cancel, out_parts) = unsafe { (cancel_ref(cancel)?, optional_out(out_parts)) };
        let outcome = block_on_cancellable(cancel, Placement::Workers, upload.finish())?;
        if let Some(out_parts) = out_parts {
            *out_parts = outcome.parts;
        }
        Ok(())
    })
}

/// Release an upload. One that was not finished is aborted first (AbortMultipartUpload,
/// parts in flight stopped): when this returns, no parts of it stay stored (unless the abort
/// request itself failed; that is reported on stderr). NULL is ignored; a pointer that is not
/// a live upload is reported on stderr and otherwise ignored (debug builds abort instead).
///
/// Thread safety: any thread, once no other call uses `upload`.
///
/// # Safety
/// - `upload` is not used by another call, during or after this one.
#[no_mangle]
pub unsafe extern "C" fn fasts3_upload_free(upload: *mut fasts3_upload) {
    // SAFETY: forwarded contract; the upload's Drop aborts an unfinished upload.
    unsafe { free_handle(upload, "fasts3_upload_free") }
}
