//! Object metadata across the ABI: HEAD, listing cursors, and the page they produce.

use fasts3_engine::list::{self, ListCursor, ListRequest};
use fasts3_engine::page::{ObjectPage, StringTable};
use fasts3_engine::head;
use crate::ffi::boundary::{export, optional_cstr, out_ptr, utf8};
use fasts3_engine::runtime::Placement;
use crate::ffi::cancel::{block_on_cancellable, cancel_ref, fasts3_cancel_token, on_calling_thread};
use crate::ffi::client::{client_ref, fasts3_client};
use crate::ffi::handles::{free_handle, handle_mut, handle_ref, handle_type, into_handle};
use crate::ffi::error::fasts3_error;
use crate::ffi::status::fasts3_status;

/// Metadata of a set of objects: one listing page, or the single object of a HEAD.
///
/// Thread safety: immutable once made; any threads may take and read views of one page at
/// once, but not during `fasts3_object_page_free`.
#[allow(non_camel_case_types)]
pub struct fasts3_object_page {
    page: ObjectPage,
}
handle_type!(fasts3_object_page, ObjectPage);

/// A listing in progress.
///
/// Thread safety: one call at a time per cursor (any thread may make it); different cursors,
/// even of one client, may be used concurrently.
#[allow(non_camel_case_types)]
pub struct fasts3_list_cursor {
    cursor: ListCursor,
}
handle_type!(fasts3_list_cursor, ListCursor);

/// `count` strings packed in `data`: string `i` starts at `data + offsets[i]`, is
/// NUL-terminated, and is `offsets[i + 1] - offsets[i] - 1` bytes long (UTF-8).
/// `offsets` has `count + 1` entries; `offsets[count]` is `data_len`.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct fasts3_strings {
    pub count: usize,
    pub data: *const u8,
    pub data_len: usize,
    pub offsets: *const usize,
}

/// A borrowed view of a page's arrays, valid until the page is freed.
/// Entry `i` of `keys`, `sizes`, `last_modified_ms`, `etags` and `content_types` describe
/// the same object.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct fasts3_object_page_view {
    /// Number of objects.
    pub count: usize,
    pub keys: fasts3_strings,
    pub sizes: *const u64,
    /// Milliseconds since the Unix epoch (UTC); INT64_MIN when the server gave none.
    pub last_modified_ms: *const i64,
    /// ETags as the server sent them (with quotes).
    pub etags: fasts3_strings,
    /// Content types (HEAD only; empty strings in listings).
    pub content_types: fasts3_strings,
    /// Common prefixes, for listings with a delimiter (each ends with the delimiter).
    pub common_prefixes: fasts3_strings,
}

fn strings(t: &StringTable) -> fasts3_strings {
    fasts3_strings { count: t.len(), data: t.data.as_ptr(), data_len: t.data.len(), offsets: t.offsets.as_ptr() }
}

/// HEAD one object (`bucket`, `key`: `(ptr, len)` UTF-8) into a one-entry page in `*out`.
/// `cancel` may be NULL.
///
/// Ownership: on success the caller owns `*out` and releases it with
/// `fasts3_object_page_free`. Thread safety: may run concurrently with other calls on `client`.
///
/// # Safety
/// - `client` and `cancel` are not freed until this call returns.
/// - `bucket` and `key` point to `bucket_len` and `key_len` readable bytes (or are NULL when
///   the length is 0), not modified until this call returns.
/// - `out` is NULL or points to a writable `fasts3_object_page *`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_head(
    client: *const fasts3_client,
    bucket: *const u8,
    bucket_len: usize,
    key: *const u8,
    key_len: usize,
    cancel: *const fasts3_cancel_token,
    out: *mut *mut fasts3_object_page,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |call| {
        // SAFETY: every pointer argument meets this function's contract, which is the
        // helpers' contracts (handles not freed, ranges readable and unchanged for the call,
        // `out` writable). The borrows end when the call returns.
        let (client, (bucket, key), cancel, out) = unsafe {
            (client_ref(client)?, call.object(bucket, bucket_len, key, key_len)?, cancel_ref(cancel)?, out_ptr(out, "out")?)
        };
        let page = block_on_cancellable(cancel, on_calling_thread(), head::head(client, on_calling_thread(), bucket, key))?;
        *out = into_handle(fasts3_object_page { page });
        Ok(())
    })
}

/// Start listing `bucket` (`(ptr, len)` UTF-8) under `prefix` (`(ptr, len)`, may be empty).
/// `delimiter` and `start_after` are NUL-terminated UTF-8 or NULL for none. `page_size` is
/// S3's max-keys, 1..=1000. No request is sent until `fasts3_list_next`.
///
/// Ownership: the caller owns `*out` (release with `fasts3_list_cursor_free`). The cursor
/// keeps its own reference to the client, so it may outlive `client`'s handle.
///
/// Thread safety: may run concurrently with other calls on `client`, from any thread.
///
/// # Safety
/// - `client` is not freed until this call returns.
/// - `bucket` and `prefix` point to `bucket_len` and `prefix_len` readable bytes (or are NULL when
///   the length is 0), not modified until this call returns.
/// - `delimiter` and `start_after` are NULL or NUL-terminated strings, not modified until this
///   call returns.
/// - `out` is NULL or points to a writable `fasts3_list_cursor *`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_list_cursor_new(
    client: *const fasts3_client,
    bucket: *const u8,
    bucket_len: usize,
    prefix: *const u8,
    prefix_len: usize,
    delimiter: *const std::ffi::c_char,
    start_after: *const std::ffi::c_char,
    page_size: i32,
    out: *mut *mut fasts3_list_cursor,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |call| {
        // SAFETY: every pointer argument meets this function's contract, which is the
        // helpers' contracts (handle not freed, strings readable and unchanged for the call,
        // `out` writable). The borrows end when the call returns (the strings are copied).
        let (client, bucket, prefix, delimiter, start_after, out) = unsafe {
            (
                client_ref(client)?.clone(),
                call.bucket(bucket, bucket_len)?,
                utf8(prefix, prefix_len, "prefix")?,
                optional_cstr(delimiter, "delimiter")?,
                optional_cstr(start_after, "start_after")?,
                out_ptr(out, "out")?,
            )
        };
        let request = ListRequest {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            delimiter: delimiter.map(str::to_string),
            start_after: start_after.map(str::to_string),
            page_size,
        };
        let cursor = ListCursor::new(client, request)?;
        *out = into_handle(fasts3_list_cursor { cursor });
        Ok(())
    })
}

/// Fetch the next page into `*out`, or set `*out` to NULL when the listing is complete.
/// On failure the cursor does not advance, so the call can be retried. `cancel` may be NULL.
///
/// Ownership: a non-NULL `*out` belongs to the caller (release with `fasts3_object_page_free`).
///
/// Thread safety: one call at a time per cursor, from any thread; may run concurrently with
/// calls on other cursors and on the client.
///
/// # Safety
/// - `cursor` is not freed, nor used by another call, until this call returns.
/// - `cancel` is not freed until this call returns.
/// - `out` is NULL or points to a writable `fasts3_object_page *`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_list_next(
    cursor: *mut fasts3_list_cursor,
    cancel: *const fasts3_cancel_token,
    out: *mut *mut fasts3_object_page,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |call| {
        // SAFETY: `cursor` not freed nor used by another call, `cancel` not freed, `out` NULL
        // or writable, during the call (this function's contract).
        let (cursor, cancel, out) = unsafe { (handle_mut(cursor, "cursor")?, cancel_ref(cancel)?, out_ptr(out, "out")?) };
        let page = block_on_cancellable(cancel, on_calling_thread(), cursor.cursor.next_page(on_calling_thread()));
        call.about(cursor.cursor.bucket(), None);
        *out = page?.map_or(std::ptr::null_mut(), |page| into_handle(fasts3_object_page { page }));
        Ok(())
    })
}

/// List everything under `prefix` of `bucket` into one page in `*out` (objects in S3's
/// order, plus the common prefixes when `delimiter` is given). Arguments as for
/// `fasts3_list_cursor_new`, with S3's maximum page size.
///
/// `parallel`: when true and `delimiter` is NULL, split the key space along the `/` tree and
/// list directories concurrently (within the client's request budget), merging the results
/// back into S3's order. Same result as a sequential listing; faster on trees of many
/// directories, no faster on a flat key space. Ignored when `delimiter` is set.
///
/// Ownership: on success the caller owns `*out` (release with `fasts3_object_page_free`).
/// Thread safety: may run concurrently with other calls on `client`.
///
/// # Safety
/// - `client` and `cancel` are not freed until this call returns.
/// - `bucket` and `prefix` point to `bucket_len` and `prefix_len` readable bytes (or are NULL when
///   the length is 0), not modified until this call returns.
/// - `delimiter` is NULL or a NUL-terminated string, not modified until this call returns.
/// - `out` is NULL or points to a writable `fasts3_object_page *`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_list_all(
    client: *const fasts3_client,
    bucket: *const u8,
    bucket_len: usize,
    prefix: *const u8,
    prefix_len: usize,
    delimiter: *const std::ffi::c_char,
    parallel: bool,
    cancel: *const fasts3_cancel_token,
    out: *mut *mut fasts3_object_page,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |call| {
        // SAFETY: every pointer argument meets this function's contract, which is the
        // helpers' contracts (handles not freed, strings readable and unchanged for the call,
        // `out` writable). The borrows end when the call returns.
        let (client, bucket, prefix, delimiter, cancel, out) = unsafe {
            (
                client_ref(client)?,
                call.bucket(bucket, bucket_len)?,
                utf8(prefix, prefix_len, "prefix")?,
                optional_cstr(delimiter, "delimiter")?,
                cancel_ref(cancel)?,
                out_ptr(out, "out")?,
            )
        };
        let request = ListRequest {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            delimiter: delimiter.map(str::to_string),
            start_after: None,
            page_size: 1000,
        };
        // A parallel listing keeps many requests in flight and parses pages on every core; a
        // sequential one is a chain of single requests.
        let placement = if parallel { Placement::Workers } else { on_calling_thread() };
        let page = block_on_cancellable(cancel, placement, list::list_all(client, placement, request, parallel))?;
        *out = into_handle(fasts3_object_page { page });
        Ok(())
    })
}

/// Release a cursor. NULL is ignored. A pointer that is not a live cursor (a double free)
/// is reported on stderr and otherwise ignored (debug builds of libfasts3 abort instead).
///
/// Thread safety: any thread, once no other call uses `cursor`.
///
/// # Safety
/// - `cursor` is not in use by a call on another thread.
#[no_mangle]
pub unsafe extern "C" fn fasts3_list_cursor_free(cursor: *mut fasts3_list_cursor) {
    // SAFETY: no call uses `cursor` (this function's contract); an unknown pointer is not touched.
    unsafe { free_handle(cursor, "fasts3_list_cursor_free") }
}

/// Fill `*out` with a view of `page`'s arrays. The pointers in the view borrow from `page`
/// and stay valid until `fasts3_object_page_free(page)`.
///
/// Thread safety: any thread, concurrently with other views of `page`; not during
/// `fasts3_object_page_free(page)`.
///
/// # Safety
/// - `page` is not freed until this call returns.
/// - `out` is NULL or points to a writable `fasts3_object_page_view`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_object_page_get_view(
    page: *const fasts3_object_page,
    out: *mut fasts3_object_page_view,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |_| {
        // SAFETY: `page` not freed, `out` NULL or writable, during the call (this function's
        // contract).
        let (page, out) = unsafe { (handle_ref(page, "page")?, out_ptr(out, "out")?) };
        let p = &page.page;
        *out = fasts3_object_page_view {
            count: p.len(),
            keys: strings(&p.keys),
            sizes: p.sizes.as_ptr(),
            last_modified_ms: p.last_modified_ms.as_ptr(),
            etags: strings(&p.etags),
            content_types: strings(&p.content_types),
            common_prefixes: strings(&p.common_prefixes),
        };
        Ok(())
    })
}

/// Release a page. NULL is ignored. A pointer that is not a live page (a double free) is
/// reported on stderr and otherwise ignored (debug builds of libfasts3 abort instead).
///
/// Thread safety: any thread, once no other thread uses `page` or a view of it.
///
/// # Safety
/// - `page` is not in use by a call on another thread, and no view of it is used afterwards.
#[no_mangle]
pub unsafe extern "C" fn fasts3_object_page_free(page: *mut fasts3_object_page) {
    // SAFETY: no call uses `page` (this function's contract); an unknown pointer is not touched.
    unsafe { free_handle(page, "fasts3_object_page_free") }
}
