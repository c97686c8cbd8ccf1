//! HEAD: size, ETag, last-modified and content type of one object.

use crate::engine::client::{Client, Session};
use crate::engine::error::{Error, ErrorKind, Result};
use crate::engine::page::ObjectPage;
use crate::engine::path::{check_bucket, check_key};

/// HEAD one object; the result is a one-entry page.
pub async fn head(client: &Client, bucket: &str, key: &str) -> Result<ObjectPage> {
    check_bucket(bucket)?;
    check_key(key)?;
    let session = client.session().await?;
    head_object(&session, bucket, key)
        .await
        .map_err(|e| e.context(format!("s3://{bucket}/{key}")))
}

pub(crate) async fn head_object(session: &Session, bucket: &str, key: &str) -> Result<ObjectPage> {
    let out = match session.s3.head_object().bucket(bucket).key(key).send().await {
        Ok(out) => out,
        Err(e) => return Err(disambiguate_not_found(session, bucket, Error::from(e)).await),
    };
    let mut page = ObjectPage::default();
    page.push_object(
        key,
        out.content_length().unwrap_or(0).max(0) as u64,
        out.last_modified(),
        out.e_tag().unwrap_or(""),
        out.content_type().unwrap_or(""),
    );
    Ok(page)
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
