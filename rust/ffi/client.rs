//! Client configuration (a key/value builder, so new options never break the ABI) and the
//! client handle.

use fasts3_engine::{ChecksumMode, Client, ClientOptions, Error, PathStyle};
use crate::ffi::boundary::{export, optional_cstr, out_ptr, Failure, FfiResult};
use crate::ffi::handles::{free_handle, handle_mut, handle_ref, handle_type, into_handle, optional_handle};
use crate::ffi::error::fasts3_error;
use crate::ffi::status::fasts3_status;
use std::ffi::c_char;
use std::sync::Arc;
use std::time::Duration;

/// Options for a client, filled with `fasts3_config_set`.
///
/// Thread safety: `fasts3_config_set` and `fasts3_config_free` need the config to
/// themselves; `fasts3_client_new` calls on several threads may read one config at once.
#[allow(non_camel_case_types)]
pub struct fasts3_config {
    options: ClientOptions,
}
handle_type!(fasts3_config, Config);

/// An S3 client: configuration, credentials, connection pool and request budget.
///
/// Thread safety: a client may be used by any number of threads at once.
#[allow(non_camel_case_types)]
pub struct fasts3_client {
    pub(crate) inner: Arc<Client>,
}
handle_type!(fasts3_client, Client);

/// Create an empty configuration (everything from the AWS environment) in `*out`.
///
/// Ownership: the caller owns `*out` and releases it with `fasts3_config_free`.
///
/// Thread safety: any thread, concurrently with any other call.
///
/// # Safety
/// - `out` is NULL or points to a writable `fasts3_config *`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_config_new(out: *mut *mut fasts3_config, err: *mut *mut fasts3_error) -> fasts3_status {
    export!(err, |_| {
        // SAFETY: NULL or writable (this function's contract).
        let out = unsafe { out_ptr(out, "out") }?;
        *out = into_handle(fasts3_config { options: ClientOptions::default() });
        Ok(())
    })
}

/// Set one option by name; `value` NULL restores its default. Both are NUL-terminated UTF-8,
/// borrowed for the duration of the call. Names:
///
/// - `endpoint_url`: e.g. `http://127.0.0.1:9000`. Default: AWS_ENDPOINT_URL_S3,
///   AWS_ENDPOINT_URL, the shared config file, then AWS itself.
/// - `region`: default from AWS_REGION / AWS_DEFAULT_REGION / the profile, else us-east-1.
/// - `access_key_id`, `secret_access_key`, `session_token`: explicit credentials.
/// - `profile`: a named profile of the shared config/credentials files.
/// - `anonymous`: `true`/`false`: send unsigned requests.
/// - `path_style`: `auto` (default: path-style for IP/localhost endpoints), `path`, `virtual`.
/// - `max_concurrency`: requests in flight per client (decimal, >= 1).
/// - `part_size`: bytes per ranged GET (decimal, >= 1). Unset: adaptive, from the object's size.
/// - `connect_timeout`, `read_timeout`: seconds (decimal, may have a fraction, > 0).
///   Read timeout is the wait for response headers; defaults 10 and 60.
/// - `checksum`: `when_available` (default: reads ask for `x-amz-checksum-*` and verify one
///   that covers the bytes read), `required` (a read nothing can verify fails with
///   `FASTS3_CHECKSUM_UNAVAILABLE`), `off` (neither asked for nor verified). A mismatch fails
///   with `FASTS3_CHECKSUM_MISMATCH`.
/// - `ca_bundle`: path of a PEM file of CA certificates trusted besides the system roots.
///   Default: AWS_CA_BUNDLE, else `ca_bundle` of the selected profile in the AWS config file,
///   else REQUESTS_CA_BUNDLE. A file that cannot be read or holds no certificate makes
///   `fasts3_client_new` fail with `FASTS3_CONFIG`.
/// - `verify`: `true` (default) or `false`: `false` accepts any server certificate. There is
///   no environment variable for it: only an explicit choice turns verification off.
/// - `proxy`: `http://[user:password@]host:port` used for every request (https ones through a
///   CONNECT tunnel). Default: HTTPS_PROXY / HTTP_PROXY / NO_PROXY (and their lowercase forms).
/// - `max_attempts`: attempts per request, the first included (decimal, >= 1). Default:
///   AWS_MAX_ATTEMPTS, else the profile's `max_attempts`, else 3.
///
/// Unknown names and unparsable values fail with `FASTS3_INVALID_ARGUMENT`; a `config` that
/// is not a live configuration (e.g. already freed) with `FASTS3_INVALID_HANDLE`.
/// Thread safety: no other call may use `config` meanwhile (neither another
/// `fasts3_config_set` nor a `fasts3_client_new` reading it); different configs may be set
/// from different threads at once.
///
/// # Safety
/// - `config` is not freed, nor used by another call, until this call returns.
/// - `name` and `value` are NULL or NUL-terminated strings, not modified until this call returns.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_config_set(
    config: *mut fasts3_config,
    name: *const c_char,
    value: *const c_char,
    err: *mut *mut fasts3_error,
) -> fasts3_status {
    export!(err, |_| {
        // SAFETY: the arguments meet this function's contract: `config` not freed nor used by
        // another call, the strings NULL or NUL-terminated and unchanged, during the call.
        let (config, name, value) = unsafe {
            (
                handle_mut(config, "config")?,
                optional_cstr(name, "name")?.ok_or_else(|| Failure::null("name"))?,
                optional_cstr(value, "value")?,
            )
        };
        set_option(&mut config.options, name, value)
    })
}

fn set_option(o: &mut ClientOptions, name: &str, value: Option<&str>) -> FfiResult<()> {
    let text = || value.map(str::to_string);
    match name {
        "endpoint_url" => o.endpoint_url = text(),
        "region" => o.region = text(),
        "access_key_id" => o.access_key_id = text(),
        "secret_access_key" => o.secret_access_key = text(),
        "session_token" => o.session_token = text(),
        "profile" => o.profile = text(),
        "anonymous" => o.anonymous = boolean(name, value, false)?,
        "path_style" => {
            o.path_style = match value {
                None | Some("auto") => PathStyle::Auto,
                Some("path") => PathStyle::Path,
                Some("virtual") => PathStyle::VirtualHosted,
                Some(v) => return Err(Error::invalid(format!("path_style must be auto, path or virtual, got {v:?}")).into()),
            }
        }
        "max_concurrency" => o.max_concurrency = positive(name, value)? as usize,
        "part_size" => o.part_size = positive(name, value)?,
        "connect_timeout" => o.connect_timeout = seconds(name, value)?,
        "read_timeout" => o.read_timeout = seconds(name, value)?,
        "checksum" => o.checksum = ChecksumMode::parse(value.unwrap_or("when_available"))?,
        "ca_bundle" => o.ca_bundle = value.map(std::path::PathBuf::from),
        "verify" => o.verify = boolean(name, value, true)?,
        "proxy" => o.proxy = text(),
        "max_attempts" => {
            o.max_attempts = match positive(name, value)? {
                0 => None,
                n => Some(u32::try_from(n).map_err(|_| Error::invalid(format!("max_attempts is too large: {n}")))?),
            }
        }
        _ => return Err(Error::invalid(format!("unknown option {name:?}")).into()),
    }
    Ok(())
}

/// `true`/`1` or `false`/`0`; NULL means `default`.
fn boolean(name: &str, value: Option<&str>, default: bool) -> FfiResult<bool> {
    match value {
        None => Ok(default),
        Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(v) => Err(Error::invalid(format!("{name} must be true or false, got {v:?}")).into()),
    }
}

/// A positive decimal integer, or 0 (the default) for NULL.
fn positive(name: &str, value: Option<&str>) -> FfiResult<u64> {
    let Some(v) = value else { return Ok(0) };
    match v.trim().parse::<u64>() {
        Ok(n) if n >= 1 && n <= u32::MAX as u64 * 1024 => Ok(n),
        _ => Err(Error::invalid(format!("{name} must be a positive integer, got {v:?}")).into()),
    }
}

/// A positive number of seconds, or None (the default) for NULL.
fn seconds(name: &str, value: Option<&str>) -> FfiResult<Option<Duration>> {
    let Some(v) = value else { return Ok(None) };
    match v.trim().parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() && s <= 1e9 => Ok(Some(Duration::from_secs_f64(s))),
        _ => Err(Error::invalid(format!("{name} must be a positive number of seconds, got {v:?}")).into()),
    }
}

/// Release a configuration. NULL is ignored. Clients created from it are unaffected.
/// A pointer that is not a live configuration (a double free) is reported on stderr and
/// otherwise ignored (debug builds of libfasts3 abort instead).
///
/// Thread safety: any thread, once no other call uses `config`.
///
/// # Safety
/// - `config` is not in use by a call on another thread.
#[no_mangle]
pub unsafe extern "C" fn fasts3_config_free(config: *mut fasts3_config) {
    // SAFETY: no call uses `config` (this function's contract); an unknown pointer is not touched.
    unsafe { free_handle(config, "fasts3_config_free") }
}

/// Create a client in `*out`. `config` may be NULL (all defaults) and is only read during
/// the call. Configuration is resolved now; credentials are fetched on first use.
/// A non-NULL `config` that is not a live configuration fails with `FASTS3_INVALID_HANDLE`.
///
/// Ownership: the caller owns `*out` and releases it with `fasts3_client_free`.
/// After `fork()`, a child may keep using a client made by the parent: it transparently
/// rebuilds its runtime and connection pool.
///
/// Thread safety: any thread; calls on several threads may read one `config` at once, but
/// not while `fasts3_config_set` changes it.
///
/// # Safety
/// - `config` is not freed, nor changed by `fasts3_config_set`, until this call returns.
/// - `out` is NULL or points to a writable `fasts3_client *`.
/// - `err` is NULL or points to a writable `fasts3_error *` (see `fasts3_error`).
#[no_mangle]
pub unsafe extern "C" fn fasts3_client_new(config: *const fasts3_config, out: *mut *mut fasts3_client, err: *mut *mut fasts3_error) -> fasts3_status {
    export!(err, |_| {
        // SAFETY: `out` NULL or writable, `config` not freed nor changed meanwhile (this
        // function's contract).
        let (out, config) = unsafe { (out_ptr(out, "out")?, optional_handle(config, "config")?) };
        let options = config.map_or_else(ClientOptions::default, |c| c.options.clone());
        let inner = Client::new(options)?;
        *out = into_handle(fasts3_client { inner });
        Ok(())
    })
}

/// Release a client. NULL is ignored. Listing cursors, uploads and ops made from it stay
/// valid (they hold their own reference). A pointer that is not a live client (a double
/// free) is reported on stderr and otherwise ignored (debug builds of libfasts3 abort
/// instead).
///
/// Thread safety: any thread, but not while another thread is still in a call on this
/// client.
///
/// # Safety
/// - `client` is not in use by a call on another thread.
#[no_mangle]
pub unsafe extern "C" fn fasts3_client_free(client: *mut fasts3_client) {
    // SAFETY: no call uses `client` (this function's contract); an unknown pointer is not touched.
    unsafe { free_handle(client, "fasts3_client_free") }
}

/// The engine client behind a `client` argument: NULL_POINTER or INVALID_HANDLE otherwise.
///
/// # Safety
/// `client` must not be freed during the call (the `_free` contract).
pub(crate) unsafe fn client_ref<'a>(client: *const fasts3_client) -> FfiResult<&'a Arc<Client>> {
    // SAFETY: forwarded contract.
    Ok(&unsafe { handle_ref(client, "client") }?.inner)
}
