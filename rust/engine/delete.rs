//! Deleting objects: one (DELETE on the lean data plane) or many (DeleteObjects, 1,000 keys
//! per request, per-key errors kept).

use aws_sdk_s3::operation::RequestId;
use crate::client::{Client, Session};
use crate::error::{kind_for, Error, Result};
use crate::http::{ObjectId, ObjectRequest};
use crate::path::{check_bucket, check_key};
use crate::runtime::Placement;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use futures_util::stream::{self, StreamExt};
use ::http::{HeaderMap, Method};

/// Keys per DeleteObjects request (S3's limit).
pub(crate) const KEYS_PER_REQUEST: usize = 1000;
/// DeleteObjects requests in flight per call.
const REQUESTS_IN_FLIGHT: usize = 4;

/// Delete one object. Deleting a key that does not exist succeeds, as in S3.
pub async fn delete(client: &Client, placement: Placement, bucket: &str, key: &str) -> Result<()> {
    check_bucket(bucket)?;
    check_key(key)?;
    let session = client.session(placement).await?;
    let request = ObjectRequest {
        method: Method::DELETE,
        id: ObjectId { bucket, key, version_id: None },
        headers: HeaderMap::new(),
    };
    let response = session.plane.send(&request).await.map_err(|e| e.context(format!("s3://{bucket}/{key}")))?;
    let mut body = response.into_body();
    while let Some(chunk) = body.next().await {
        chunk?;
    }
    Ok(())
}

/// Delete `keys` of `bucket`: one result per key, in order. A failure of a whole request
/// (e.g. NoSuchBucket) becomes every one of its keys' error; keys that do not exist count as
/// deleted, as in S3.
pub async fn delete_many(client: &Client, placement: Placement, bucket: &str, keys: &[&str]) -> Result<Vec<Result<()>>> {
    check_bucket(bucket)?;
    for key in keys {
        check_key(key)?;
    }
    let session = client.session(placement).await?;
    let session = &session;
    // Futures made before the stream (not by a closure inside it): keeps the call's future
    // `Send` for every lifetime (a closure over borrowed keys would not be).
    let requests: Vec<_> = keys.chunks(KEYS_PER_REQUEST).map(|chunk| delete_chunk(session, bucket, chunk)).collect();
    let chunks = stream::iter(requests)
        .buffered(REQUESTS_IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    let mut results = Vec::with_capacity(keys.len());
    for (chunk, outcome) in keys.chunks(KEYS_PER_REQUEST).zip(chunks) {
        match outcome {
            Ok(per_key) => results.extend(per_key),
            Err(e) => {
                let e = e.context(format!("DeleteObjects on bucket {bucket}"));
                results.extend(chunk.iter().map(|_| Err(e.clone())));
            }
        }
    }
    Ok(results)
}

/// One DeleteObjects request: one result per key of `chunk`.
async fn delete_chunk(session: &Session, bucket: &str, chunk: &[&str]) -> Result<Vec<Result<()>>> {
    let _permit = session.acquire().await?;
    let objects = chunk.iter().map(|k| ObjectIdentifier::builder().key(*k).build()).collect::<std::result::Result<Vec<_>, _>>();
    let objects = objects.map_err(|e| Error::invalid(format!("cannot build the request: {e}")))?;
    let delete = Delete::builder()
        .set_objects(Some(objects))
        .quiet(true)
        .build()
        .map_err(|e| Error::invalid(format!("cannot build the request: {e}")))?;
    let output = session.s3.delete_objects().bucket(bucket).delete(delete).send().await?;
    // Quiet mode: only the keys that failed are listed.
    let mut results: Vec<Result<()>> = chunk.iter().map(|_| Ok(())).collect();
    let request_id = output.request_id().unwrap_or_default();
    for failed in output.errors() {
        let Some(key) = failed.key() else { continue };
        let code = failed.code().unwrap_or_default().to_string();
        let mut error = Error::new(kind_for(&code, 0), failed.message().unwrap_or(&code).to_string());
        error.code = code;
        // The answer was a 200 carrying this key's error: no HTTP status of its own (0), but
        // the request id names the request that reported it.
        error.request_id = request_id.to_string();
        // A key may appear twice in a request; each occurrence gets the error.
        for (k, slot) in chunk.iter().zip(results.iter_mut()) {
            if *k == key {
                *slot = Err(error.clone().context(format!("s3://{bucket}/{key}")));
            }
        }
    }
    Ok(results)
}
