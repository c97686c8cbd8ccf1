//! A multipart upload written piece by piece, for writers that do not hold the whole object
//! (`Client.open(path, "wb")`, `fasts3_upload_*`).
//!
//! The writer hands over each part as it fills. The part is copied once (the writer's buffer
//! is then free for the next part) and sent on the shared workers while the writer goes on;
//! at most `in_flight` parts (the client's `max_concurrency`) are being sent at a time, and a
//! writer that gets ahead waits for one to finish, so memory stays bounded. `finish` waits for
//! every part and completes the upload. An upload dropped before it finished (an error, a
//! cancelled call, a writer closed after a failure) is aborted, so no parts stay stored.
//!
//! Parts are sent like `put_from`'s (multipart.rs): a PUT on the data plane with its CRC32C,
//! retried by the plane's standard retries. Every part but the last must hold at least 5 MiB
//! (S3's rule); a smaller part followed by another one is refused here, before S3 would refuse
//! the completion.

use crate::client::{Client, Session};
use crate::error::{Error, Result};
use crate::multipart;
use crate::path::{check_bucket, check_key};
use crate::put::{PutOptions, PutOutcome, MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE};
use crate::runtime;
use aws_sdk_s3::types::CompletedPart;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// An upload in progress. Created by [`Upload::begin`]; ended by [`Upload::finish`], or
/// aborted when dropped unfinished.
pub struct Upload {
    client: Arc<Client>,
    session: Session,
    bucket: String,
    key: String,
    upload_id: String,
    if_none_match: bool,
    /// Parts being sent, on the shared workers.
    sending: FuturesUnordered<JoinHandle<Result<CompletedPart>>>,
    sent: Vec<CompletedPart>,
    parts: u32,
    /// A part smaller than S3's minimum was written: only if it was the last.
    short_part: Option<(u32, usize)>,
    /// Completed, or aborted after a failure: nothing left to abort.
    ended: bool,
}

impl Upload {
    /// CreateMultipartUpload for `key` of `bucket`, with the options' content type, metadata
    /// and `if_none_match` (checked at completion). Run on the shared runtime.
    pub async fn begin(client: Arc<Client>, bucket: &str, key: &str, options: &PutOptions) -> Result<Upload> {
        check_bucket(bucket)?;
        check_key(key)?;
        options.validate()?;
        let session = client.shared_session().await?;
        let upload_id = multipart::create(&session, bucket, key, options)
            .await
            .map_err(|e| e.context(format!("s3://{bucket}/{key}")))?;
        Ok(Upload {
            client,
            session,
            bucket: bucket.to_string(),
            key: key.to_string(),
            upload_id,
            if_none_match: options.if_none_match,
            sending: FuturesUnordered::new(),
            sent: Vec::new(),
            parts: 0,
            short_part: None,
            ended: false,
        })
    }

    /// Send `data` as the next part (copied now; the caller's memory is free when this
    /// returns). Waits while `max_concurrency` parts are already being sent. An error of an
    /// earlier part surfaces here or at `finish`.
    pub async fn write_part(&mut self, data: &[u8]) -> Result<()> {
        self.usable()?;
        if data.is_empty() {
            return Err(Error::invalid("an upload part cannot be empty"));
        }
        if data.len() as u64 > MAX_PART_SIZE {
            return Err(Error::invalid(format!("a part holds at most 5 GiB, got {} bytes", data.len())));
        }
        if let Some((number, len)) = self.short_part {
            return Err(Error::invalid(format!(
                "part {number} holds {len} bytes: only the last part may be smaller than {MIN_PART_SIZE} bytes"
            )));
        }
        if u64::from(self.parts) >= MAX_PARTS {
            return Err(Error::invalid("an upload has at most 10,000 parts"));
        }
        while self.sending.len() >= self.client.max_concurrency().max(1) {
            self.collect_one().await?;
        }
        self.parts += 1;
        let number = self.parts;
        if (data.len() as u64) < MIN_PART_SIZE {
            self.short_part = Some((number, data.len()));
        }
        let body = bytes::Bytes::copy_from_slice(data);
        let (session, bucket, key) = (self.session.clone(), self.bucket.clone(), self.key.clone());
        let query_id = aws_smithy_http::query::fmt_string(&self.upload_id);
        self.sending.push(runtime::runtime().spawn(async move {
            let len = body.len();
            multipart::send_part(&session, &session.plane, &bucket, &key, &query_id, number as i32, body)
                .await
                .map_err(|e| e.context(format!("part {number} ({len} bytes)")))
        }));
        Ok(())
    }

    /// Wait for every part and complete the upload. On failure the upload is aborted before
    /// this returns.
    pub async fn finish(&mut self) -> Result<PutOutcome> {
        self.usable()?;
        let outcome = self.send_rest_and_complete().await;
        if outcome.is_err() {
            self.abort().await;
        }
        self.ended = true;
        outcome.map_err(|e| e.context(format!("s3://{}/{}", self.bucket, self.key)))
    }

    /// AbortMultipartUpload, once the parts being sent have ended. Nothing is left stored;
    /// the upload cannot be used afterwards.
    pub async fn abort(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        let sending = std::mem::take(&mut self.sending);
        abort_after(sending, self.session.s3.clone(), self.bucket.clone(), self.key.clone(), self.upload_id.clone()).await;
    }

    async fn send_rest_and_complete(&mut self) -> Result<PutOutcome> {
        while !self.sending.is_empty() {
            self.collect_one().await?;
        }
        if self.parts == 0 {
            return Err(Error::invalid("an upload needs at least one part"));
        }
        let mut parts = std::mem::take(&mut self.sent);
        parts.sort_by_key(|p| p.part_number());
        let etag = multipart::complete(&self.session, &self.bucket, &self.key, &self.upload_id, parts, self.if_none_match).await?;
        Ok(PutOutcome { etag, parts: self.parts })
    }

    async fn collect_one(&mut self) -> Result<()> {
        if let Some(joined) = self.sending.next().await {
            let part = match joined {
                Ok(part) => part?,
                // A panic in a part is a bug: re-raised, the C ABI's boundary reports it.
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => return Err(Error::cancelled().context("an upload part was stopped")),
            };
            self.sent.push(part);
        }
        Ok(())
    }

    fn usable(&self) -> Result<()> {
        if self.ended {
            return Err(Error::invalid("the upload has already been completed or aborted"));
        }
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        // Dropped unfinished: abort on the shared runtime. From a plain thread (the C ABI's
        // `fasts3_upload_free`), wait for it, so that nothing is stored when free returns;
        // from inside a runtime, in the background.
        let sending = std::mem::take(&mut self.sending);
        let (s3, bucket, key, upload_id) =
            (self.session.s3.clone(), self.bucket.clone(), self.key.clone(), self.upload_id.clone());
        let aborting = abort_after(sending, s3, bucket, key, upload_id);
        if tokio::runtime::Handle::try_current().is_ok() {
            runtime::runtime().spawn(aborting);
        } else {
            runtime::block_on(aborting);
        }
    }
}

/// How long an abort waits for the parts being sent to end.
const PARTS_END_WAIT: Duration = Duration::from_secs(10);

/// AbortMultipartUpload once the parts being sent have ended (or `PARTS_END_WAIT` passed). A
/// part still being stored by the server when the abort arrives could otherwise be stored
/// after it (seen on versitygw: the upload listed again after its abort).
async fn abort_after(
    mut sending: FuturesUnordered<JoinHandle<Result<CompletedPart>>>,
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
) {
    let parts_ended = async { while sending.next().await.is_some() {} };
    if tokio::time::timeout(PARTS_END_WAIT, parts_ended).await.is_err() {
        for part in sending.iter() {
            part.abort();
        }
    }
    multipart::abort(&s3, &bucket, &key, &upload_id).await;
}
