//! Uploads from memory: one PUT below the multipart threshold, a parallel multipart upload
//! above it (`engine::multipart`).
//!
//! Bodies go out on the lean data plane (`engine::http`), unsigned (`UNSIGNED-PAYLOAD`) but
//! with a CRC32C (`x-amz-checksum-crc32c`, the AWS SDKs' default algorithm) the server
//! verifies, per request. Parts are slices of the caller's buffer, lent without a copy when the
//! caller granted it (`engine::payload`).

use crate::client::{Client, Session};
use crate::error::{Error, ErrorKind, Result};
use crate::http::{self, Body, BodyRequest};
use crate::multipart;
use crate::path::{check_bucket, check_key};
use crate::payload::Payload;
use crate::runtime::Placement;
use aws_smithy_checksums::ChecksumAlgorithm;
use bytes::Bytes;
use ::http::HeaderMap;

/// Default size above which an upload is multipart. Below it, one PUT is one round trip and
/// one connection; above it, parts go out in parallel.
pub(crate) const DEFAULT_MULTIPART_THRESHOLD: u64 = 16 << 20;
/// Default part size of a multipart upload (AWS's transfer managers use 8 MiB).
pub(crate) const DEFAULT_PART_SIZE: u64 = 8 << 20;
/// S3's limits on parts: every part but the last at least 5 MiB, at most 5 GiB, at most
/// 10,000 parts.
pub(crate) const MIN_PART_SIZE: u64 = 5 << 20;
pub(crate) const MAX_PART_SIZE: u64 = 5 << 30;
pub(crate) const MAX_PARTS: u64 = 10_000;
/// S3's largest single PUT.
const MAX_SINGLE_PUT: u64 = 5 << 30;
/// Bodies up to this size are copied and sent on the client's pooled connections (the copy
/// costs less than a connection of its own); larger ones are lent (see `engine::payload`).
const COPY_AT_MOST: usize = 256 << 10;

/// What an upload sets besides the bytes.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    pub content_type: Option<String>,
    /// User metadata (`x-amz-meta-<name>: <value>`).
    pub metadata: Vec<(String, String)>,
    /// Only create the object: fail with `PreconditionFailed` if the key exists
    /// (`If-None-Match: *`).
    pub if_none_match: bool,
    /// Uploads larger than this are multipart; 0: [`DEFAULT_MULTIPART_THRESHOLD`].
    pub multipart_threshold: u64,
    /// Part size of a multipart upload; 0: [`DEFAULT_PART_SIZE`], grown for huge uploads.
    pub part_size: u64,
}

impl PutOptions {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.part_size != 0 && !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return Err(Error::invalid(format!(
                "part_size must be between 5 MiB and 5 GiB (S3's limits), got {}",
                self.part_size
            )));
        }
        if self.multipart_threshold > MAX_SINGLE_PUT {
            return Err(Error::invalid("multipart_threshold must be at most 5 GiB (S3's largest PUT)"));
        }
        for (name, value) in &self.metadata {
            let token = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !token {
                return Err(Error::invalid(format!(
                    "metadata name {name:?} must be made of ASCII letters, digits, '-', '_' and '.'"
                )));
            }
            if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(Error::invalid(format!(
                    "metadata value {value:?} of {name:?} must be printable ASCII (S3 sends metadata as HTTP headers)"
                )));
            }
        }
        Ok(())
    }

    pub(crate) fn threshold(&self) -> u64 {
        if self.multipart_threshold == 0 {
            DEFAULT_MULTIPART_THRESHOLD
        } else {
            self.multipart_threshold
        }
    }
}

/// The outcome of an upload.
#[derive(Debug, Clone)]
pub struct PutOutcome {
    /// The new object's ETag, as the server sent it (quotes included).
    pub etag: String,
    /// How many parts were sent (0: a single PUT).
    pub parts: u32,
}

/// Upload `data` as object `key` of `bucket`. `placement` says where the returned future is
/// polled and whether the data may be lent to request bodies (see `engine::payload`).
///
/// A failed or cancelled multipart upload is aborted, so no parts are left stored.
pub async fn put(
    client: &Client,
    placement: Placement,
    bucket: &str,
    key: &str,
    data: &[u8],
    options: &PutOptions,
) -> Result<PutOutcome> {
    check_bucket(bucket)?;
    check_key(key)?;
    options.validate()?;
    // Declared first, so dropped last: after every data plane and connection holding a lent
    // slice of it (see `engine::payload`).
    let payload = Payload::new(data, placement);
    let session = client.session(placement).await?;
    let result = if data.len() as u64 <= options.threshold() {
        let put = single_put(&session, &payload, bucket, key, options).await;
        if options.if_none_match {
            put.map_err(precondition_failed)
        } else {
            put
        }
    } else {
        multipart::upload(client, placement, &session, &payload, bucket, key, options).await
    };
    result.map_err(|e| e.context(format!("s3://{bucket}/{key}")))
}

/// One PUT of the whole payload.
async fn single_put(session: &Session, payload: &Payload<'_>, bucket: &str, key: &str, options: &PutOptions) -> Result<PutOutcome> {
    let mut headers = HeaderMap::new();
    if let Some(content_type) = &options.content_type {
        http::header(&mut headers, "content-type", content_type)?;
    }
    for (name, value) in &options.metadata {
        let name = ::http::header::HeaderName::from_bytes(format!("x-amz-meta-{}", name.to_ascii_lowercase()).as_bytes())
            .map_err(|_| Error::invalid(format!("metadata name {name:?} cannot be an HTTP header")))?;
        let value = ::http::HeaderValue::from_str(value)
            .map_err(|_| Error::invalid(format!("metadata value {value:?} cannot be sent in an HTTP header")))?;
        headers.insert(name, value);
    }
    if options.if_none_match {
        http::header(&mut headers, "if-none-match", "*")?;
    }
    add_checksum(&mut headers, &crc32c(payload.bytes()))?;
    let _permit = session.acquire().await?;
    let etag = if payload.len() <= COPY_AT_MOST || !payload.lends() {
        let body = Bytes::copy_from_slice(payload.bytes());
        let request = BodyRequest { bucket, key, query: "", headers, body };
        finish(session.plane.put(&request).await?).await?
    } else {
        // The body is lent: only a data plane scoped to this call may hold it.
        let (plane, mut connections) = session.plane.scoped_to_call();
        let request = BodyRequest { bucket, key, query: "", headers, body: payload.slice(0..payload.len()) };
        tokio::select! {
            etag = async { finish(plane.put(&request).await?).await } => etag?,
            never = connections.drive() => match never {},
        }
    };
    Ok(PutOutcome { etag, parts: 0 })
}

/// Read a PUT's (empty) response body to its end, so the connection can be reused, and
/// return the ETag the server gave the bytes.
pub(crate) async fn finish(response: ::http::Response<Body>) -> Result<String> {
    let (parts, mut body) = response.into_parts();
    while let Some(chunk) = body.next().await {
        chunk?;
    }
    let etag = parts.headers.get("etag").and_then(|v| v.to_str().ok()).unwrap_or("");
    Ok(etag.to_string())
}

/// Base64 of the big-endian CRC32C of `data`, as `x-amz-checksum-crc32c` carries it.
pub(crate) fn crc32c(data: &[u8]) -> String {
    let mut hasher = ChecksumAlgorithm::Crc32c.into_impl();
    hasher.update(data);
    hasher.header_value().to_str().unwrap_or_default().to_string()
}

/// The body's checksum, and which algorithm it is (the AWS SDKs send both; some servers
/// store the value only when the algorithm is named).
pub(crate) fn add_checksum(headers: &mut HeaderMap, crc32c: &str) -> Result<()> {
    http::header(headers, "x-amz-sdk-checksum-algorithm", "CRC32C")?;
    http::header(headers, "x-amz-checksum-crc32c", crc32c)
}

/// 412 to a conditional write: the condition (`If-None-Match: *`) failed.
pub(crate) fn precondition_failed(mut err: Error) -> Error {
    if err.http_status == 412 || err.code == "PreconditionFailed" {
        err.kind = ErrorKind::PreconditionFailed;
        err.message = format!("{} (the key exists already and if_none_match was set)", err.message);
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_reference_value() {
        // CRC32C("123456789") = 0xE3069283 (RFC 3720's check value).
        assert_eq!(crc32c(b"123456789"), "4waSgw==");
    }

    #[test]
    fn options_are_checked_against_s3_limits() {
        let small = PutOptions { part_size: 1 << 20, ..Default::default() };
        assert_eq!(small.validate().unwrap_err().kind, ErrorKind::InvalidArgument);
        let bad_name = PutOptions { metadata: vec![("a b".into(), "x".into())], ..Default::default() };
        assert_eq!(bad_name.validate().unwrap_err().kind, ErrorKind::InvalidArgument);
        let bad_value = PutOptions { metadata: vec![("a".into(), "\n".into())], ..Default::default() };
        assert_eq!(bad_value.validate().unwrap_err().kind, ErrorKind::InvalidArgument);
        assert!(PutOptions { part_size: 5 << 20, ..Default::default() }.validate().is_ok());
    }
}
