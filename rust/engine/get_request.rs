//! One GET request of a read: how it is sent (range, version pin, checksum mode, a retry on a
//! fresh connection) and what its response headers say about the bytes that follow.

use crate::checksum::Announced;
use crate::client::Session;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{self, Body, ObjectId, ObjectRequest};
use aws_sdk_s3::primitives::DateTime;
use aws_smithy_types::date_time::Format;
use ::http::{HeaderMap, Method};

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
    pub body: Body,
    /// `Content-Range` of a 206. None: a 200, whose body is the whole object.
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
/// from (sent as `If-Match` when it has an ETag, and checked on the answer either way).
/// `x-amz-checksum-mode: ENABLED` is sent when the client's checksum mode wants checksums
/// and the range starts at byte 0: a full-object checksum can only ever cover a read from
/// the start, so asking on later parts would only make the server
/// look one up for nothing (tests/test_integrity.py, `test_checksum_mode_header`).
pub(crate) async fn send(
    session: &Session,
    id: ObjectId<'_>,
    start: u64,
    len: u64,
    pin: Option<&Validator>,
) -> Result<Response> {
    let mut headers = HeaderMap::new();
    http::header(&mut headers, "range", &range_header(start, len))?;
    if let Some(pin) = pin {
        pin.add_preconditions(&mut headers)?;
    }
    if session.ask_for_checksums && start == 0 {
        http::header(&mut headers, "x-amz-checksum-mode", "ENABLED")?;
    }
    let request = ObjectRequest { method: Method::GET, id, headers };
    let response = session.plane.send(&request).await?;
    let response = Response::parse(response)?;
    if let Some(pin) = pin {
        pin.check(&response.validator)?;
    }
    Ok(response)
}

impl Validator {
    /// The validators of a response's headers.
    pub fn from_headers(headers: &HeaderMap) -> Result<Validator> {
        let last_modified = match header_str(headers, "last-modified") {
            Some(text) => Some(DateTime::from_str(text, Format::HttpDate).map_err(|_| {
                Error::protocol(format!("cannot parse Last-Modified {text:?}"))
            })?),
            None => None,
        };
        Ok(Validator { etag: header_str(headers, "etag").filter(|e| !e.is_empty()).map(str::to_string), last_modified })
    }

    /// `If-Match` pinning a request to this version, when it has an ETag. Last-Modified alone
    /// is not sent (as `If-Unmodified-Since`): an HTTP date has whole seconds and servers
    /// compare it with finer modification times (versitygw fails every part after the first
    /// of a file whose mtime is not on a whole second with 412, tests/test_foreign_files.py).
    /// `check` compares every answer's Last-Modified instead, which is all that header could
    /// have caught.
    pub fn add_preconditions(&self, headers: &mut HeaderMap) -> Result<()> {
        match &self.etag {
            Some(etag) => http::header(headers, "if-match", etag),
            None => Ok(()),
        }
    }
}

/// A header's value as text; None when absent or not visible ASCII.
pub(crate) fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `Content-Length`, when present. Never read as 0 when absent.
pub(crate) fn content_length(headers: &HeaderMap) -> Result<Option<u64>> {
    match header_str(headers, "content-length") {
        Some(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| Error::protocol(format!("invalid Content-Length {text:?}"))),
        None => Ok(None),
    }
}

/// The full-object checksum a response announces, and whether any checksum header came.
pub(crate) fn announced_checksum(headers: &HeaderMap) -> (Option<Announced>, bool) {
    let values = [
        header_str(headers, "x-amz-checksum-crc64nvme"),
        header_str(headers, "x-amz-checksum-crc32c"),
        header_str(headers, "x-amz-checksum-crc32"),
        header_str(headers, "x-amz-checksum-sha1"),
        header_str(headers, "x-amz-checksum-sha256"),
    ];
    let composite = header_str(headers, "x-amz-checksum-type").is_some_and(|t| t.eq_ignore_ascii_case("COMPOSITE"));
    let checksum = Announced::pick(!composite, values[0], values[1], values[2], values[3], values[4]);
    (checksum, Announced::any_present(&values))
}

impl Response {
    fn parse(response: ::http::Response<Body>) -> Result<Response> {
        let partial = http::is_partial(&response);
        let (parts, body) = response.into_parts();
        let headers = &parts.headers;
        let range = match (partial, header_str(headers, "content-range")) {
            (true, Some(text)) => Some(ContentRange::parse(text)?),
            (true, None) => return Err(Error::protocol("a 206 answer without Content-Range")),
            // A 200 is the whole object, whatever else it says.
            (false, _) => None,
        };
        let (checksum, checksum_present) = announced_checksum(headers);
        Ok(Response {
            range,
            length: content_length(headers)?,
            validator: Validator::from_headers(headers)?,
            checksum,
            checksum_present,
            body,
        })
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

    #[test]
    fn only_an_etag_becomes_a_precondition() {
        let mut headers = HeaderMap::new();
        let modified = Validator { etag: None, last_modified: Some(DateTime::from_secs(5)) };
        modified.add_preconditions(&mut headers).unwrap();
        assert!(headers.is_empty(), "{headers:?}");
        Validator { etag: Some("\"a\"".into()), ..modified }.add_preconditions(&mut headers).unwrap();
        assert_eq!(headers.len(), 1);
        assert_eq!(headers["if-match"], "\"a\"");
    }
}
