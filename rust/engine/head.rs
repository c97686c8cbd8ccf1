//! HEAD: size, ETag, last-modified and content type of one object.

use crate::engine::checksum::{self, Announced};
use crate::engine::client::{Client, Session};
use crate::engine::error::{Error, ErrorKind, Result};
use crate::engine::get_request::Validator;
use crate::engine::page::ObjectPage;
use crate::engine::path::{check_bucket, check_key};
use crate::engine::runtime::Placement;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;

/// HEAD one object; the result is a one-entry page.
pub async fn head(client: &Client, placement: Placement, bucket: &str, key: &str) -> Result<ObjectPage> {
    check_bucket(bucket)?;
    check_key(key)?;
    let session = client.session(placement).await?;
    head_object(&session, bucket, key)
        .await
        .map_err(|e| e.context(format!("s3://{bucket}/{key}")))
}

pub(crate) async fn head_object(session: &Session, bucket: &str, key: &str) -> Result<ObjectPage> {
    let out = send_head(session, bucket, key).await?;
    let mut page = ObjectPage::default();
    page.push_object(
        key,
        size_of(&out)?,
        out.last_modified(),
        out.e_tag().unwrap_or(""),
        out.content_type().unwrap_or(""),
    );
    Ok(page)
}

/// The object's size and version (ETag, Last-Modified), from a HEAD.
pub(crate) async fn identity(session: &Session, bucket: &str, key: &str) -> Result<(u64, Validator)> {
    let out = send_head(session, bucket, key).await?;
    let validator = Validator {
        etag: out.e_tag().filter(|e| !e.is_empty()).map(str::to_string),
        last_modified: out.last_modified().copied(),
    };
    Ok((size_of(&out)?, validator))
}

async fn send_head(session: &Session, bucket: &str, key: &str) -> Result<HeadObjectOutput> {
    match session.s3.head_object().bucket(bucket).key(key).send().await {
        Ok(out) => Ok(out),
        Err(e) => Err(disambiguate_not_found(session, bucket, Error::from(e)).await),
    }
}

/// A missing length is never read as 0: a HEAD cannot stream, so there is no size.
fn size_of(out: &HeadObjectOutput) -> Result<u64> {
    match out.content_length() {
        Some(n) if n >= 0 => Ok(n as u64),
        _ => Err(Error::protocol(
            "the HEAD response has no valid Content-Length, so the object's size is unknown",
        )),
    }
}

/// The full-object checksum of the version `pin` identifies, from a HEAD with
/// `x-amz-checksum-mode: ENABLED` (AWS returns none on ranged GETs). `ChecksumUnavailable`
/// when the server has none (or only a composite one); `ObjectChanged` when the version moved.
pub(crate) async fn full_object_checksum(
    session: &Session,
    bucket: &str,
    key: &str,
    pin: Option<&Validator>,
) -> Result<Announced> {
    let mut request = session
        .s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled);
    if let Some(pin) = pin {
        request = match (&pin.etag, &pin.last_modified) {
            (Some(etag), _) => request.if_match(etag),
            (None, Some(modified)) => request.if_unmodified_since(*modified),
            (None, None) => request,
        };
    }
    let out = request.send().await?;
    if let Some(pin) = pin {
        pin.check(&Validator {
            etag: out.e_tag().filter(|e| !e.is_empty()).map(str::to_string),
            last_modified: out.last_modified().copied(),
        })?;
    }
    Announced::pick(
        !matches!(out.checksum_type(), Some(aws_sdk_s3::types::ChecksumType::Composite)),
        out.checksum_crc64_nvme(),
        out.checksum_crc32_c(),
        out.checksum_crc32(),
        out.checksum_sha1(),
        out.checksum_sha256(),
    )
    .ok_or_else(|| checksum::unavailable("the server has no full-object checksum for this object"))
}

/// A HEAD response has no body, so a 404 cannot say whether the key or the bucket is
/// missing. Ask the bucket (error path only) so callers get NoSuchBucket when it is that.
async fn disambiguate_not_found(session: &Session, bucket: &str, err: Error) -> Error {
    if err.kind != ErrorKind::NoSuchKey {
        return err;
    }
    let mut err = err;
    let bucket_status = match session.s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => 200,
        Err(e) => Error::from(e).http_status,
    };
    match bucket_status {
        404 => {
            err.kind = ErrorKind::NoSuchBucket;
            err.code = "NoSuchBucket".into();
            err.message = "the specified bucket does not exist".into();
        }
        _ => {
            err.code = "NoSuchKey".into();
            err.message = "the specified key does not exist".into();
        }
    }
    err
}
