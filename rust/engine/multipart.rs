//! Multipart uploads: CreateMultipartUpload, the parts in parallel, CompleteMultipartUpload;
//! AbortMultipartUpload when anything fails or the call is cancelled, so no parts stay stored
//! (and billed) behind a failed upload.
//!
//! The parts are the hot path: each is a PUT on the lean data plane (`engine::http`) with its
//! CRC32C, retried by the plane's standard retries, bounded by the client's request budget.
//! Create / Complete / Abort are three requests per upload and go through the SDK client,
//! which also parses Complete's "200 with an error inside" answers.

use crate::client::{Client, Session};
use crate::error::{Error, Result};
use crate::http::{BodyRequest, DataPlane};
use crate::payload::Payload;
use crate::put::{self, PutOptions, PutOutcome, DEFAULT_PART_SIZE, MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE};
use crate::runtime::{self, Placement};
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use ::http::HeaderMap;
use std::ops::Range;
use std::time::Duration;

/// How long an abort after a failure or a cancel may take before we give up on it.
const ABORT_TIMEOUT: Duration = Duration::from_secs(30);
/// Aborts sent while the upload is still listed after one (see `abort`).
const ABORT_ROUNDS: u32 = 4;
/// The wait before the next abort grows by this much each round.
const ABORT_RECHECK: Duration = Duration::from_millis(100);

/// The part size for `len` bytes: `requested` (or the default), grown so that no more than
/// 10,000 parts are needed, in whole MiB.
pub(crate) fn part_size(len: u64, requested: u64) -> Result<u64> {
    let base = if requested == 0 { DEFAULT_PART_SIZE } else { requested };
    let needed = len.div_ceil(MAX_PARTS).next_multiple_of(1 << 20);
    let size = base.max(needed).max(MIN_PART_SIZE);
    if size > MAX_PART_SIZE {
        return Err(Error::invalid(format!("{len} bytes is more than S3's largest object (10,000 parts of 5 GiB)")));
    }
    Ok(size)
}

/// The byte ranges of the parts, numbered from 1.
pub(crate) fn part_ranges(len: u64, part_size: u64) -> impl Iterator<Item = (i32, Range<u64>)> {
    (0..len.div_ceil(part_size)).map(move |i| ((i + 1) as i32, i * part_size..((i + 1) * part_size).min(len)))
}

/// Upload `payload` in parts (see the module docs).
pub(crate) async fn upload(
    client: &Client,
    placement: Placement,
    session: &Session,
    payload: &Payload<'_>,
    bucket: &str,
    key: &str,
    options: &PutOptions,
) -> Result<PutOutcome> {
    let len = payload.len() as u64;
    let part_size = part_size(len, options.part_size)?;
    let upload_id = create(session, bucket, key, options).await?;
    let mut guard = AbortOnDrop::new(client, placement, session, bucket, key, &upload_id);

    let sent = send_parts(session, payload, bucket, key, &upload_id, part_size, client.max_concurrency()).await;
    let completed = match sent {
        Ok(parts) => complete(session, bucket, key, &upload_id, parts, options.if_none_match).await,
        Err(e) => Err(e),
    };
    guard.armed = false;
    match completed {
        Ok(etag) => Ok(PutOutcome { etag, parts: len.div_ceil(part_size) as u32 }),
        Err(e) => {
            abort(&session.s3, bucket, key, &upload_id).await;
            Err(e)
        }
    }
}

/// CreateMultipartUpload with the options' content type and metadata, CRC32C parts: the
/// upload id.
pub(crate) async fn create(session: &Session, bucket: &str, key: &str, options: &PutOptions) -> Result<String> {
    let metadata = (!options.metadata.is_empty()).then(|| options.metadata.iter().cloned().collect());
    let created = session
        .s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .set_content_type(options.content_type.clone())
        .set_metadata(metadata)
        .checksum_algorithm(ChecksumAlgorithm::Crc32C)
        .send()
        .await
        .map_err(|e| Error::from(e).context("CreateMultipartUpload"))?;
    Ok(created
        .upload_id()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Error::protocol("CreateMultipartUpload answered no UploadId"))?
        .to_string())
}

/// Every part, at most the client's `max_concurrency` at a time; the first failure (after the
/// plane's retries) ends the others.
async fn send_parts(
    session: &Session,
    payload: &Payload<'_>,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part_size: u64,
    concurrency: usize,
) -> Result<Vec<CompletedPart>> {
    // Lent bodies may only go to a data plane scoped to this call (`engine::payload`).
    let (plane, mut connections) = session.plane.scoped_to_call();
    let query_id = aws_smithy_http::query::fmt_string(upload_id);
    let parts = stream::iter(part_ranges(payload.len() as u64, part_size))
        .map(|(number, range)| {
            let plane = &plane;
            let query_id = &query_id;
            async move {
                let body = payload.slice(range.start as usize..range.end as usize);
                send_part(session, plane, bucket, key, query_id, number, body)
                    .await
                    .map_err(|e| e.context(format!("part {number} (bytes {}-{})", range.start, range.end - 1)))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<CompletedPart>>();
    let mut parts = tokio::select! {
        parts = parts => parts?,
        never = connections.drive() => match never {},
    };
    parts.sort_by_key(|p| p.part_number());
    Ok(parts)
}

pub(crate) async fn send_part(
    session: &Session,
    plane: &DataPlane,
    bucket: &str,
    key: &str,
    query_id: &str,
    number: i32,
    body: bytes::Bytes,
) -> Result<CompletedPart> {
    let checksum = put::crc32c(&body);
    let mut headers = HeaderMap::new();
    put::add_checksum(&mut headers, &checksum)?;
    let query = format!("partNumber={number}&uploadId={query_id}");
    let request = BodyRequest { bucket, key, query: &query, headers, body };
    let _permit = session.acquire().await?;
    let etag = put::finish(plane.put(&request).await?).await?;
    if etag.is_empty() {
        return Err(Error::protocol("the server answered UploadPart without an ETag"));
    }
    Ok(CompletedPart::builder().part_number(number).e_tag(etag).checksum_crc32_c(checksum).build())
}

pub(crate) async fn complete(
    session: &Session,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: Vec<CompletedPart>,
    if_none_match: bool,
) -> Result<String> {
    let mut request = session
        .s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build());
    if if_none_match {
        request = request.if_none_match("*");
    }
    let done = request.send().await.map_err(|e| {
        let e = Error::from(e).context("CompleteMultipartUpload");
        if if_none_match {
            put::precondition_failed(e)
        } else {
            e
        }
    })?;
    Ok(done.e_tag().unwrap_or_default().to_string())
}

/// AbortMultipartUpload, best effort: a failure here must not hide the error that caused it
/// (the upload then stays until a lifecycle rule cleans it up; the message says so).
///
/// A part whose request reached the server before the abort may still be stored after it (S3's
/// AbortMultipartUpload documentation: "it might be necessary to abort a given multipart
/// upload multiple times"; versitygw does this too when a cancel leaves a part in flight). So
/// the abort is checked with ListParts and repeated, after a short wait, while the upload is
/// still there.
pub(crate) async fn abort(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, upload_id: &str) {
    let until_gone = async {
        for round in 1..=ABORT_ROUNDS {
            if let Err(e) = s3.abort_multipart_upload().bucket(bucket).key(key).upload_id(upload_id).send().await {
                let e = Error::from(e);
                // Already gone (completed or aborted elsewhere): nothing is left behind.
                if e.http_status != 404 {
                    eprintln!("libfasts3: could not abort multipart upload {upload_id} of s3://{bucket}/{key}: {e}");
                }
                return;
            }
            match s3.list_parts().bucket(bucket).key(key).upload_id(upload_id).max_parts(1).send().await {
                Ok(_) if round < ABORT_ROUNDS => tokio::time::sleep(ABORT_RECHECK * round).await,
                Ok(_) => eprintln!(
                    "libfasts3: multipart upload {upload_id} of s3://{bucket}/{key} is still listed after {ABORT_ROUNDS} aborts"
                ),
                // NoSuchUpload: gone. Another failure: the abort itself succeeded; nothing
                // better to do than stop.
                Err(_) => return,
            }
        }
    };
    if tokio::time::timeout(ABORT_TIMEOUT, until_gone).await.is_err() {
        eprintln!("libfasts3: aborting multipart upload {upload_id} of s3://{bucket}/{key} timed out");
    }
}

/// Aborts the upload if the call's future is dropped before it finished (cancellation).
/// Set `armed` to false once the upload was completed or aborted.
pub(crate) struct AbortOnDrop<'a> {
    client: &'a Client,
    placement: Placement,
    s3: aws_sdk_s3::Client,
    bucket: &'a str,
    key: &'a str,
    upload_id: &'a str,
    pub armed: bool,
}

impl<'a> AbortOnDrop<'a> {
    pub fn new(client: &'a Client, placement: Placement, session: &Session, bucket: &'a str, key: &'a str, upload_id: &'a str) -> Self {
        AbortOnDrop { client, placement, s3: session.s3.clone(), bucket, key, upload_id, armed: true }
    }
}

impl Drop for AbortOnDrop<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (bucket, key, upload_id) = (self.bucket.to_string(), self.key.to_string(), self.upload_id.to_string());
        match self.placement {
            // Dropped on the caller's thread, which may block: abort before the call returns,
            // from a helper thread on the shared runtime (this thread's own runtime is the one
            // dropping us, and its connections cannot be driven from here).
            Placement::CallingThread { .. } => {
                let client = self.client;
                std::thread::scope(|scope| {
                    let aborting = scope.spawn(|| {
                        runtime::block_on(async {
                            if let Ok(session) = client.shared_session().await {
                                abort(&session.s3, &bucket, &key, &upload_id).await;
                            }
                        })
                    });
                    let _ = aborting.join();
                });
            }
            // Dropped on a shared worker, which must not block: abort in a task of its own,
            // which an async op waits for before it completes (`runtime::awaiting_cleanups`).
            Placement::Workers | Placement::WorkersSpreading(_) => {
                let s3 = self.s3.clone();
                runtime::spawn_cleanup(async move { abort(&s3, &bucket, &key, &upload_id).await });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn part_size_grows_to_stay_within_10000_parts() {
        assert_eq!(part_size(100 << 20, 0).unwrap(), DEFAULT_PART_SIZE);
        assert_eq!(part_size(100 << 20, 5 << 20).unwrap(), 5 << 20);
        // 1 TiB / 10,000 = 104.9 MiB, rounded up to whole MiB.
        let huge = part_size(1 << 40, 0).unwrap();
        assert_eq!(huge, 105 << 20);
        assert!((1u64 << 40).div_ceil(huge) <= MAX_PARTS);
        assert_eq!(part_size(MAX_PARTS * MAX_PART_SIZE + 1, 0).unwrap_err().kind, ErrorKind::InvalidArgument);
    }

    #[test]
    fn part_ranges_cover_the_bytes_exactly_once() {
        let ranges: Vec<_> = part_ranges(11, 5).collect();
        assert_eq!(ranges, vec![(1, 0..5), (2, 5..10), (3, 10..11)]);
        assert_eq!(part_ranges(10, 5).count(), 2);
    }
}
