//! HEAD: size, ETag, last-modified and content type of one object.

use crate::checksum::{self, Announced};
use crate::client::{Client, Session};
use crate::error::{Error, ErrorKind, Result};
use crate::get_request::{announced_checksum, content_length, header_str, Validator};
use crate::http::{self, Connection, ObjectId, ObjectRequest};
use crate::page::ObjectPage;
use crate::path::{check_bucket, check_key};
use crate::runtime::Placement;
use ::http::{HeaderMap, Method};

/// HEAD one object; the result is a one-entry page.
pub async fn head(client: &Client, placement: Placement, bucket: &str, key: &str) -> Result<ObjectPage> {
    check_bucket(bucket)?;
    check_key(key)?;
    let session = client.session(placement).await?;
    head_object(&session, ObjectId { bucket, key, version_id: None })
        .await
        .map_err(|e| e.context(format!("s3://{bucket}/{key}")))
}

pub(crate) async fn head_object(session: &Session, id: ObjectId<'_>) -> Result<ObjectPage> {
    let headers = send_head(session, id, HeaderMap::new(), Connection::Pooled).await?;
    let validator = Validator::from_headers(&headers)?;
    let mut page = ObjectPage::default();
    page.push_object(
        id.key,
        size_of(&headers)?,
        validator.last_modified.as_ref(),
        validator.etag.as_deref().unwrap_or(""),
        header_str(&headers, "content-type").unwrap_or(""),
    );
    Ok(page)
}

/// The object's size and version (ETag, Last-Modified), from a HEAD on `connection`.
/// [`Connection::Fresh`] when the HEAD settles whether a GET's odd answer (a 200 to a ranged
/// GET, a 416) was the server's answer to that GET or a stale one a misbehaving server left on
/// a pooled connection: a pooled connection could hand the HEAD such a stale answer too.
pub(crate) async fn identity(session: &Session, id: ObjectId<'_>, connection: Connection) -> Result<(u64, Validator)> {
    let headers = send_head(session, id, HeaderMap::new(), connection).await?;
    Ok((size_of(&headers)?, Validator::from_headers(&headers)?))
}

/// The response headers of a HEAD with `headers` added.
async fn send_head(session: &Session, id: ObjectId<'_>, headers: HeaderMap, connection: Connection) -> Result<HeaderMap> {
    let request = ObjectRequest { method: Method::HEAD, id, headers };
    match session.plane.send_on(&request, connection).await {
        Ok(response) => Ok(response.into_parts().0.headers),
        // Boxed: the SDK call's state would otherwise sit inline in every HEAD's future
        // (and every read's, which may send one), for a path taken only on 404.
        Err(e) => Err(Box::pin(disambiguate_not_found(session, id.bucket, e)).await),
    }
}

/// A missing length is never read as 0: a HEAD cannot stream, so there is no size.
fn size_of(headers: &HeaderMap) -> Result<u64> {
    content_length(headers)?.ok_or_else(|| {
        Error::protocol("the HEAD response has no valid Content-Length, so the object's size is unknown")
    })
}

/// The full-object checksum of the version `pin` identifies, from a HEAD with
/// `x-amz-checksum-mode: ENABLED` (AWS returns none on ranged GETs). `ChecksumUnavailable`
/// when the server has none (or only a composite one); `ObjectChanged` when the version moved.
pub(crate) async fn full_object_checksum(
    session: &Session,
    id: ObjectId<'_>,
    pin: Option<&Validator>,
) -> Result<Announced> {
    let mut headers = HeaderMap::new();
    http::header(&mut headers, "x-amz-checksum-mode", "ENABLED")?;
    if let Some(pin) = pin {
        pin.add_preconditions(&mut headers)?;
    }
    let response = send_head(session, id, headers, Connection::Pooled).await?;
    if let Some(pin) = pin {
        pin.check(&Validator::from_headers(&response)?)?;
    }
    announced_checksum(&response)
        .0
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
