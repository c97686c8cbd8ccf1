//! The panic boundary, the calling thread's last error, and checked pointer conversions.

use fasts3_engine::{Error, ErrorKind};
use crate::ffi::error::{new_error, fasts3_error};
use crate::ffi::status::fasts3_status;
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A failed call: the status to return plus the error to record for this thread.
pub struct Failure {
    pub status: fasts3_status,
    pub error: Error,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure { status: error.kind.into(), error }
    }
}

impl Failure {
    pub fn null(name: &str) -> Self {
        Failure {
            status: fasts3_status::FASTS3_NULL_POINTER,
            error: Error::invalid(format!("{name} is NULL")),
        }
    }
}

pub type FfiResult<T> = Result<T, Failure>;

struct LastError {
    message: CString,
    code: CString,
    http_status: u16,
    request_id: CString,
}

thread_local! {
    /// This thread's last failure; None after a success (clearing it allocates nothing).
    static LAST_ERROR: RefCell<Option<LastError>> = const { RefCell::new(None) };
}

/// The failure a caught panic becomes: `FASTS3_PANIC`, with the panic's message.
pub(crate) fn panic_failure(payload: Box<dyn std::any::Any + Send>) -> Failure {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic payload".into());
    Failure {
        status: fasts3_status::FASTS3_PANIC,
        error: Error::new(ErrorKind::Protocol, format!("libfasts3 panicked: {what}")),
    }
}

fn to_cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

pub(crate) fn set_last_error(error: &Error) {
    LAST_ERROR.with(|slot| {
        *slot.borrow_mut() = Some(LastError {
            message: to_cstring(&error.message),
            code: to_cstring(&error.code),
            http_status: error.http_status,
            request_id: to_cstring(&error.request_id),
        })
    });
}

fn clear_last_error() {
    let previous = LAST_ERROR.with(|slot| slot.borrow_mut().take());
    drop(previous);
}

/// This thread's last failure, as C strings: message, code, HTTP status and request id
/// ("", "", 0, "" after a success).
pub(crate) struct LastErrorView<'a> {
    pub message: &'a CStr,
    pub code: &'a CStr,
    pub http_status: u16,
    pub request_id: &'a CStr,
}

pub(crate) fn with_last_error<T>(f: impl FnOnce(LastErrorView<'_>) -> T) -> T {
    LAST_ERROR.with(|slot| {
        let slot = slot.borrow();
        f(match slot.as_ref() {
            Some(e) => LastErrorView { message: &e.message, code: &e.code, http_status: e.http_status, request_id: &e.request_id },
            None => LastErrorView { message: c"", code: c"", http_status: 0, request_id: c"" },
        })
    })
}

/// Where an export hands its caller the error of a failed call: the export's trailing
/// `fasts3_error **err` parameter. NULL means the caller does not want one.
pub struct ErrorOut(*mut *mut fasts3_error);

impl ErrorOut {
    /// # Safety
    /// `err` is NULL or valid for writing a `fasts3_error *` (properly aligned) until the
    /// export that received it returns, and nothing else reads or writes it meanwhile.
    pub unsafe fn new(err: *mut *mut fasts3_error) -> Self {
        ErrorOut(err)
    }

    fn write(&self, error: *mut fasts3_error) {
        if !self.0.is_null() {
            // SAFETY: non-NULL, so writable and unaliased until the export returns (`new`'s
            // contract); `guard` writes it before returning.
            unsafe { self.0.write(error) };
        }
    }
}

/// What a call is about, recorded by its body as it reads its arguments so that a failure's
/// error object names the bucket and key. Borrows the caller's strings, which outlive the call.
#[derive(Default)]
pub struct Call<'a> {
    bucket: Option<&'a str>,
    key: Option<&'a str>,
}

impl<'a> Call<'a> {
    /// Name the object a failure is about (replacing what was recorded before).
    pub fn about(&mut self, bucket: &'a str, key: Option<&'a str>) {
        self.bucket = Some(bucket);
        self.key = key;
    }

    /// Read a `(ptr, len)` UTF-8 bucket name and record it.
    ///
    /// # Safety
    /// As for [`utf8`]; the string also stays unchanged until the export returns.
    pub unsafe fn bucket(&mut self, ptr: *const u8, len: usize) -> FfiResult<&'a str> {
        // SAFETY: forwarded contract.
        let bucket = unsafe { utf8(ptr, len, "bucket") }?;
        self.about(bucket, None);
        Ok(bucket)
    }

    /// Read a `(ptr, len)` UTF-8 bucket and key and record them.
    ///
    /// # Safety
    /// As for [`utf8`], for both strings; they also stay unchanged until the export returns.
    pub unsafe fn object(
        &mut self,
        bucket: *const u8,
        bucket_len: usize,
        key: *const u8,
        key_len: usize,
    ) -> FfiResult<(&'a str, &'a str)> {
        // SAFETY: forwarded contract.
        let bucket = unsafe { self.bucket(bucket, bucket_len) }?;
        // SAFETY: forwarded contract.
        let key = unsafe { utf8(key, key_len, "key") }?;
        self.about(bucket, Some(key));
        Ok((bucket, key))
    }
}

/// Run an export's body: clear this thread's last error, catch panics, map failures to a
/// status, and report a failure in both places a caller may look: this thread's last error
/// (`fasts3_last_error_*`) and, when `err` is not NULL, a new `fasts3_error` in `*err`
/// (NULL in `*err` on success).
pub fn guard<'a>(err: ErrorOut, body: impl FnOnce(&mut Call<'a>) -> FfiResult<()>) -> fasts3_status {
    clear_last_error();
    let mut call = Call::default();
    let failure = match catch_unwind(AssertUnwindSafe(|| body(&mut call))) {
        Ok(Ok(())) => {
            err.write(std::ptr::null_mut());
            return fasts3_status::FASTS3_OK;
        }
        Ok(Err(failure)) => failure,
        Err(payload) => panic_failure(payload),
    };
    set_last_error(&failure.error);
    if !err.0.is_null() {
        // Nothing here may unwind into C either (into_handle's debug assertion could).
        let error = catch_unwind(AssertUnwindSafe(|| new_error(&failure, call.bucket, call.key)));
        err.write(error.unwrap_or(std::ptr::null_mut()));
    }
    failure.status
}

/// The body of every fallible export: `export!(err, |call| { ...; Ok(()) })` runs the
/// closure inside [`guard`] (panic boundary, this thread's last error, `*err`) and evaluates
/// to the status the export returns. The closure reads the arguments through the checked
/// conversions (`handles::handle_ref`, [`out_ptr`], [`Call::object`]...) and does the work.
///
/// It compiles only inside an `unsafe fn` (or an `unsafe` block): it hands `err` to
/// [`ErrorOut::new`] without an `unsafe` block of its own, so the obligation that `err` is
/// NULL or writable until the call returns stays with the enclosing export's `# Safety`
/// section, which states it (see `fasts3_error`). A safe fn using it fails to build (E0133).
/// (A macro, not a fn taking a closure, for exactly that: a fn would need the `unsafe` block.)
macro_rules! export {
    ($err:ident, |$call:pat_param| $body:expr) => {{
        // Deliberately no `unsafe` block: the caller of this export vouches for `err`.
        #[allow(unsafe_op_in_unsafe_fn)]
        let err = $crate::ffi::boundary::ErrorOut::new($err);
        $crate::ffi::boundary::guard(err, |$call| $body)
    }};
}
pub(crate) use export;

/// For exports that cannot fail (`_free`, getters): swallow panics, since they must not
/// unwind into C.
pub fn guard_infallible<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// Write a result through an out-pointer (NULL fails with NULL_POINTER). Handles are not
/// out-pointers: borrow them through `handles::handle_ref` / `handle_mut`, which check them.
///
/// # Safety
/// `ptr` is NULL or valid for writes of a `T` (properly aligned), and nothing else reads or
/// writes it while the returned reference is in use.
pub unsafe fn out_ptr<'a, T>(ptr: *mut T, name: &str) -> FfiResult<&'a mut T> {
    // SAFETY: non-NULL `ptr` is valid, aligned and unaliased for 'a (this fn's contract).
    unsafe { ptr.as_mut() }.ok_or_else(|| Failure::null(name))
}

/// A `(ptr, len)` UTF-8 string. `ptr` may be NULL only when `len` is 0.
///
/// # Safety
/// As for [`bytes`].
pub unsafe fn utf8<'a>(ptr: *const u8, len: usize, name: &str) -> FfiResult<&'a str> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { bytes(ptr, len, name) }?;
    std::str::from_utf8(bytes)
        .map_err(|e| Error::invalid(format!("{name} is not valid UTF-8: {e}")).into())
}

/// A `(ptr, len)` read-only byte range. `ptr` may be NULL only when `len` is 0.
///
/// # Safety
/// When `len` > 0 and `ptr` is not NULL, `ptr` is valid for reads of `len` bytes, which
/// nothing writes while the returned slice is in use.
pub unsafe fn bytes<'a>(ptr: *const u8, len: usize, name: &str) -> FfiResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    check_len(len, name)?;
    // SAFETY: non-NULL, readable and unchanged for `len` bytes (this fn's contract); `len`
    // is at most isize::MAX (checked); u8 needs no alignment.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A `(ptr, len)` caller buffer to fill. `ptr` may be NULL only when `len` is 0.
///
/// # Safety
/// When `len` > 0 and `ptr` is not NULL, `ptr` is valid for reads and writes of `len` bytes,
/// which nothing else reads or writes while the returned slice is in use.
pub unsafe fn bytes_mut<'a>(ptr: *mut u8, len: usize, name: &str) -> FfiResult<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    check_len(len, name)?;
    // SAFETY: non-NULL, writable and unaliased for `len` bytes (this fn's contract); `len`
    // is at most isize::MAX (checked); u8 needs no alignment.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

fn check_len(len: usize, name: &str) -> FfiResult<()> {
    if len > isize::MAX as usize {
        return Err(Error::invalid(format!("{name} length {len} is too large")).into());
    }
    Ok(())
}

/// An out-pointer the caller may leave NULL (meaning "not wanted"): None then.
///
/// # Safety
/// As for [`out_ptr`].
pub unsafe fn optional_out<'a, T>(ptr: *mut T) -> Option<&'a mut T> {
    // SAFETY: non-NULL `ptr` is valid, aligned and unaliased for 'a (this fn's contract).
    unsafe { ptr.as_mut() }
}

/// A NUL-terminated UTF-8 string that may be NULL (meaning "not set").
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string, readable up to and including its NUL,
/// which nothing writes while the returned `&str` is in use.
pub unsafe fn optional_cstr<'a>(ptr: *const c_char, name: &str) -> FfiResult<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL, so a NUL-terminated string that stays unchanged (this fn's contract).
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map(Some)
        .map_err(|e| Error::invalid(format!("{name} is not valid UTF-8: {e}")).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The panic boundary needs a working unwinder: the library is linked by zig (for glibc
    /// 2.17), which brings its own. A panic must come back as FASTS3_PANIC with its message.
    #[test]
    fn a_panic_becomes_the_panic_status_with_its_message() {
        let mut err: *mut fasts3_error = std::ptr::null_mut();
        // SAFETY: `err` is a local, writable until this statement ends.
        let status = guard(unsafe { ErrorOut::new(&mut err) }, |_| panic!("boom from a test"));
        assert_eq!(status, fasts3_status::FASTS3_PANIC);
        with_last_error(|last| {
            assert_eq!(last.message.to_str().unwrap(), "libfasts3 panicked: boom from a test");
        });
        assert!(!err.is_null(), "a panic must fill *err too");
        // SAFETY: a live error just made by `guard`, freed once.
        unsafe {
            assert_eq!(crate::ffi::error::fasts3_error_status(err), fasts3_status::FASTS3_PANIC);
            crate::ffi::error::fasts3_error_free(err);
        }
        assert_eq!(guard_infallible(7, || -> i32 { panic!("again") }), 7);
    }

    /// What an export built on `export!` looks like: reads a `(ptr, len)` bucket, then fails,
    /// panics or succeeds as told.
    ///
    /// # Safety
    /// `bucket` is readable for `bucket_len` bytes; `err` is NULL or writable.
    unsafe fn an_export(bucket: *const u8, bucket_len: usize, outcome: &str, err: *mut *mut fasts3_error) -> fasts3_status {
        export!(err, |call| {
            // SAFETY: readable for `bucket_len` bytes (this function's contract).
            let _bucket = unsafe { call.bucket(bucket, bucket_len) }?;
            match outcome {
                "fail" => Err(Error::new(ErrorKind::NoSuchBucket, "no such bucket").into()),
                "panic" => panic!("a bug"),
                _ => Ok(()),
            }
        })
    }

    fn message_of(error: *mut fasts3_error) -> String {
        // SAFETY: a live error made by the export, read before it is freed.
        unsafe { CStr::from_ptr(crate::ffi::error::fasts3_error_message(error)) }.to_str().unwrap().to_owned()
    }

    /// `export!` is the whole contract of a fallible export: OK with `*err` NULL (even over a
    /// stale value) and no last error; a failure's status in both `*err` (naming what the
    /// body recorded) and the thread's last error; a panic as FASTS3_PANIC; `err` NULL
    /// allowed.
    #[test]
    fn export_reports_success_failure_and_panic_through_status_err_and_last_error() {
        let bucket = b"bkt";
        let mut stale: *mut fasts3_error = std::ptr::dangling_mut(); // never read: must be overwritten
        // SAFETY: `bucket` is a live array of its length, `stale` a writable local.
        let status = unsafe { an_export(bucket.as_ptr(), bucket.len(), "ok", &mut stale) };
        assert_eq!(status, fasts3_status::FASTS3_OK);
        assert!(stale.is_null(), "success must set *err to NULL");
        with_last_error(|last| assert_eq!(last.message.to_bytes(), b""));

        let mut err: *mut fasts3_error = std::ptr::null_mut();
        // SAFETY: `bucket` is a live array of its length, `err` a writable local.
        let status = unsafe { an_export(bucket.as_ptr(), bucket.len(), "fail", &mut err) };
        assert_eq!(status, fasts3_status::FASTS3_NO_SUCH_BUCKET);
        assert!(!err.is_null(), "a failure must fill *err");
        assert_eq!(message_of(err), "no such bucket");
        // SAFETY: a live error; its bucket string is read before the free.
        unsafe {
            assert_eq!(CStr::from_ptr(crate::ffi::error::fasts3_error_bucket(err)).to_bytes(), b"bkt");
            crate::ffi::error::fasts3_error_free(err);
        }
        with_last_error(|last| assert_eq!(last.message.to_bytes(), b"no such bucket"));

        // SAFETY: as for the failing call.
        let status = unsafe { an_export(bucket.as_ptr(), bucket.len(), "panic", &mut err) };
        assert_eq!(status, fasts3_status::FASTS3_PANIC);
        assert_eq!(message_of(err), "libfasts3 panicked: a bug");
        // SAFETY: a live error, freed once.
        unsafe { crate::ffi::error::fasts3_error_free(err) };

        // SAFETY: NULL bucket with length 3 is refused by the check, never read; `err` NULL.
        let status = unsafe { an_export(std::ptr::null(), 3, "ok", std::ptr::null_mut()) };
        assert_eq!(status, fasts3_status::FASTS3_NULL_POINTER);
        with_last_error(|last| assert_eq!(last.message.to_bytes(), b"bucket is NULL"));
    }
}
