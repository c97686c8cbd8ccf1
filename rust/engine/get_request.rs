//! One GET request of a read: how it is sent (range, version pin, checksum mode, a retry on a
//! fresh connection) and what its response headers say about the bytes that follow.

use crate::engine::checksum::Announced;
use crate::engine::client::Session;
use crate::engine::error::{Error, ErrorKind, Result};
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::ChecksumType;

/// Extra attempts for a request that failed before any response byte arrived in a way the
/// SDK does not retry (e.g. a pooled connection holding bytes a misbehaving server left
/// after a body: the next response on it does not parse). The pool drops that connection,
/// so the next attempt gets a fresh one. GET and HEAD are idempotent.
const FRESH_CONNECTION_RETRIES: u32 = 3;

/// What identifies the object version a response came from: its ETag, else its
/// Last-Modified. Every response of one read must carry the same as the first.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Validator {
    pub etag: Option<String>,
    pub last_modified: Option<DateTime>,
}

impl Validator {
    /// Neither ETag nor Last-Modified: responses cannot be told apart by version.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }

    /// `ObjectChanged` unless `later` (a later response of the same read) shows the same
    /// version. Checked whether or not the server honoured `If-Match`: a server or caching
    /// proxy that ignores it must not get a mix of two versions past us.
    pub fn check(&self, later: &Validator) -> Result<()> {
        let changed = |what: String| {
            let mut err = Error::new(ErrorKind::ObjectChanged, format!("the object changed during the read: {what}"));
            err.code = "ObjectChanged".into();
            Err(err)
        };
        if let Some(etag) = &self.etag {
            return match &later.etag {
                Some(e) if e == etag => Ok(()),
                Some(e) => changed(format!("ETag {etag} became {e}")),
                None => changed(format!("the first response had ETag {etag}, a later one none")),
            };
        }
        if let Some(modified) = &self.last_modified {
            return match &later.last_modified {
                Some(m) if m == modified => Ok(()),
                Some(m) => changed(format!("Last-Modified {modified} became {m}")),
                None => changed(format!("the first response had Last-Modified {modified}, a later one none")),
            };
        }
        Ok(())
    }
}

/// A response's head, parsed, and its body (not yet read).
pub(crate) struct Response {
    pub body: ByteStream,
    /// `Content-Range`: present on a 206. Absent means the body is the whole object.
    pub range: Option<ContentRange>,
    /// `Content-Length`: absent for chunked bodies. Never read as 0.
    pub length: Option<u64>,
    pub validator: Validator,
    /// A full-object checksum the server announced (`x-amz-checksum-*`).
    pub checksum: Option<Announced>,
    /// Whether any checksum header came at all (a composite one included).
    pub checksum_present: bool,
}

/// GET `len` bytes from `start` (`len` > 0). `pin`: the version every response must come
/// from (sent as `If-Match`, or `If-Unmodified-Since` when only Last-Modified is known, and
/// checked on the answer either way). Checksums are asked for by the client's
/// [`AskForChecksums`] interceptor when its checksum mode wants them.
pub(crate) async fn send(
    session: &Session,
    bucket: &str,
    key: &str,
    start: u64,
    len: u64,
    pin: Option<&Validator>,
) -> Result<Response> {
    let mut attempt = 0;
    let out = loop {
        let mut request = session.s3.get_object().bucket(bucket).key(key).range(range_header(start, len));
        if let Some(pin) = pin {
            request = match (&pin.etag, &pin.last_modified) {
                (Some(etag), _) => request.if_match(etag),
                (None, Some(modified)) => request.if_unmodified_since(*modified),
                (None, None) => request,
            };
        }
        let sent = request.send().await;
        match sent {
            Ok(out) => break out,
            Err(e) => {
                let err = Error::from(e);
                if err.retry_on_fresh_connection && attempt < FRESH_CONNECTION_RETRIES {
                    attempt += 1;
                    continue;
                }
                return Err(err);
            }
        }
    };
    let response = Response::from_output(out)?;
    if let Some(pin) = pin {
        pin.check(&response.validator)?;
    }
    Ok(response)
}

/// Adds `x-amz-checksum-mode: ENABLED` to every ranged GET (our reads; listings and HEADs
/// have no Range), before signing, so the header is signed as S3 requires of `x-amz-*`.
/// Only the header: the SDK's own validation (`checksum_mode`) would check a ranged body
/// against a whole-object value and fail the stream mid-read; `engine::checksum` verifies.
#[derive(Debug)]
pub(crate) struct AskForChecksums;

impl Intercept for AskForChecksums {
    fn name(&self) -> &'static str {
        "fasts3::AskForChecksums"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        let request = context.request_mut();
        if request.method() == "GET" && request.headers().contains_key("range") {
            request.headers_mut().insert("x-amz-checksum-mode", "ENABLED");
        }
        Ok(())
    }
}

impl Response {
    fn from_output(out: GetObjectOutput) -> Result<Response> {
        let range = out.content_range().map(ContentRange::parse).transpose()?;
        let length = match out.content_length() {
            Some(n) if n >= 0 => Some(n as u64),
            Some(n) => return Err(Error::protocol(format!("negative Content-Length {n}"))),
            None => None,
        };
        let values = [
            out.checksum_crc64_nvme(),
            out.checksum_crc32_c(),
            out.checksum_crc32(),
            out.checksum_sha1(),
            out.checksum_sha256(),
        ];
        let checksum = Announced::pick(
            !matches!(out.checksum_type(), Some(ChecksumType::Composite)),
            values[0],
            values[1],
            values[2],
            values[3],
            values[4],
        );
        let checksum_present = Announced::any_present(&values);
        let validator = Validator {
            etag: out.e_tag().filter(|e| !e.is_empty()).map(str::to_string),
            last_modified: out.last_modified().copied(),
        };
        Ok(Response { range, length, validator, checksum, checksum_present, body: out.body })
    }
}

fn range_header(start: u64, len: u64) -> String {
    debug_assert!(len > 0);
    format!("bytes={}-{}", start, start + len - 1)
}

/// A parsed `Content-Range: bytes START-END/TOTAL` (206 responses always carry a total).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ContentRange {
    pub start: u64,
    pub end: u64,
    pub total: u64,
}

impl ContentRange {
    fn parse(header: &str) -> Result<Self> {
        let bad = || Error::protocol(format!("cannot parse Content-Range {header:?}"));
        let rest = header.trim().strip_prefix("bytes ").ok_or_else(bad)?;
        let (range, total) = rest.split_once('/').ok_or_else(bad)?;
        let (start, end) = range.split_once('-').ok_or_else(bad)?;
        let parsed = ContentRange {
            start: start.trim().parse().map_err(|_| bad())?,
            end: end.trim().parse().map_err(|_| bad())?,
            total: total.trim().parse().map_err(|_| bad())?,
        };
        if parsed.start > parsed.end || parsed.end >= parsed.total {
            return Err(bad());
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parses() {
        assert_eq!(
            ContentRange::parse("bytes 0-99/1000").unwrap(),
            ContentRange { start: 0, end: 99, total: 1000 }
        );
        assert!(ContentRange::parse("bytes 0-99/*").is_err());
        assert!(ContentRange::parse("bytes 5-4/10").is_err());
        assert!(ContentRange::parse("bytes 0-10/10").is_err());
        assert!(ContentRange::parse("items 0-1/2").is_err());
    }

    #[test]
    fn range_header_is_inclusive() {
        assert_eq!(range_header(0, 1), "bytes=0-0");
        assert_eq!(range_header(10, 5), "bytes=10-14");
    }

    #[test]
    fn validators_compare_etag_first_then_last_modified() {
        let etag = |e: &str| Validator { etag: Some(e.into()), last_modified: None };
        let modified = |s: i64| Validator { etag: None, last_modified: Some(DateTime::from_secs(s)) };
        etag("\"a\"").check(&etag("\"a\"")).unwrap();
        assert_eq!(etag("\"a\"").check(&etag("\"b\"")).unwrap_err().kind, ErrorKind::ObjectChanged);
        assert_eq!(etag("\"a\"").check(&Validator::default()).unwrap_err().kind, ErrorKind::ObjectChanged);
        modified(5).check(&modified(5)).unwrap();
        assert_eq!(modified(5).check(&modified(6)).unwrap_err().kind, ErrorKind::ObjectChanged);
        Validator::default().check(&etag("\"x\"")).unwrap();
    }
}
