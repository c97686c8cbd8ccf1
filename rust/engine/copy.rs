//! Server-side copies: CopyObject up to the multipart threshold (S3 copies at most 5 GiB in
//! one request), above it a multipart upload of UploadPartCopy ranges in parallel, each
//! pinned to the source's ETag so a source replaced mid-copy fails instead of mixing versions.
//! Off the hot path (no bytes cross the client): the SDK client sends these requests.

use crate::client::Client;
use crate::error::{Error, Result};
use crate::multipart::{self, AbortOnDrop};
use crate::path::{check_bucket, check_key};
use crate::runtime::Placement;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_http::label::{fmt_string, EncodingStrategy};
use futures_util::stream::{self, StreamExt, TryStreamExt};

/// Largest source CopyObject accepts.
pub(crate) const MAX_SINGLE_COPY: u64 = 5 << 30;
/// Default part size of a multipart copy: large, since no bytes pass through the client.
pub(crate) const DEFAULT_COPY_PART_SIZE: u64 = 256 << 20;

#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// Sources larger than this are copied in parts; 0: 5 GiB (S3's CopyObject limit).
    pub multipart_threshold: u64,
    /// Part size of a multipart copy; 0: [`DEFAULT_COPY_PART_SIZE`] (grown for huge sources).
    pub part_size: u64,
}

/// Copy `src_bucket/src_key` to `dst_bucket/dst_key` on the server; the copy keeps the
/// source's content type and metadata.
pub async fn copy(
    client: &Client,
    placement: Placement,
    (src_bucket, src_key): (&str, &str),
    (dst_bucket, dst_key): (&str, &str),
    options: &CopyOptions,
) -> Result<()> {
    for (bucket, key) in [(src_bucket, src_key), (dst_bucket, dst_key)] {
        check_bucket(bucket)?;
        check_key(key)?;
    }
    if options.multipart_threshold > MAX_SINGLE_COPY {
        return Err(Error::invalid("multipart_threshold must be at most 5 GiB (S3's CopyObject limit)"));
    }
    if options.part_size != 0 && !(crate::put::MIN_PART_SIZE..=crate::put::MAX_PART_SIZE).contains(&options.part_size) {
        return Err(Error::invalid(format!("part_size must be between 5 MiB and 5 GiB, got {}", options.part_size)));
    }
    let threshold = if options.multipart_threshold == 0 { MAX_SINGLE_COPY } else { options.multipart_threshold };
    let session = client.session(placement).await?;
    let source = format!("{src_bucket}/{}", fmt_string(src_key, EncodingStrategy::Greedy));
    let context = format!("copy s3://{src_bucket}/{src_key} to s3://{dst_bucket}/{dst_key}");
    let head = session
        .s3
        .head_object()
        .bucket(src_bucket)
        .key(src_key)
        .send()
        .await
        .map_err(|e| Error::from(e).context(format!("s3://{src_bucket}/{src_key}")).context(&context))?;
    let size = head.content_length().unwrap_or(0).max(0) as u64;
    if size <= threshold {
        let mut request = session.s3.copy_object().bucket(dst_bucket).key(dst_key).copy_source(&source);
        if let Some(etag) = head.e_tag() {
            request = request.copy_source_if_match(etag);
        }
        request.send().await.map_err(|e| Error::from(e).context(&context))?;
        return Ok(());
    }

    // Multipart: content type and metadata are not copied by UploadPartCopy; set them here.
    let part_size = multipart::part_size(size, if options.part_size == 0 { DEFAULT_COPY_PART_SIZE } else { options.part_size })?;
    let created = session
        .s3
        .create_multipart_upload()
        .bucket(dst_bucket)
        .key(dst_key)
        .set_content_type(head.content_type().map(str::to_string))
        .set_metadata(head.metadata().cloned())
        .send()
        .await
        .map_err(|e| Error::from(e).context("CreateMultipartUpload").context(&context))?;
    let upload_id = created
        .upload_id()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Error::protocol("CreateMultipartUpload answered no UploadId"))?
        .to_string();
    let mut guard = AbortOnDrop::new(client, placement, &session, dst_bucket, dst_key, &upload_id);
    let etag = head.e_tag().map(str::to_string);
    let session_ref = &session;
    let (source_ref, upload_ref, etag_ref) = (&source, &upload_id, &etag);
    let parts = stream::iter(multipart::part_ranges(size, part_size))
        .map(|(number, range)| async move {
            let _permit = session_ref.acquire().await?;
            let mut request = session_ref
                .s3
                .upload_part_copy()
                .bucket(dst_bucket)
                .key(dst_key)
                .upload_id(upload_ref)
                .part_number(number)
                .copy_source(source_ref)
                .copy_source_range(format!("bytes={}-{}", range.start, range.end - 1));
            if let Some(etag) = etag_ref {
                request = request.copy_source_if_match(etag);
            }
            let output = request.send().await.map_err(|e| Error::from(e).context(format!("UploadPartCopy part {number}")))?;
            let etag = output.copy_part_result().and_then(|r| r.e_tag()).unwrap_or_default();
            if etag.is_empty() {
                return Err(Error::protocol(format!("UploadPartCopy part {number} answered no ETag")));
            }
            Ok(CompletedPart::builder().part_number(number).e_tag(etag).build())
        })
        .buffer_unordered(client.max_concurrency().max(1))
        .try_collect::<Vec<_>>()
        .await;
    let completed = match parts {
        Ok(mut parts) => {
            parts.sort_by_key(|p| p.part_number());
            session
                .s3
                .complete_multipart_upload()
                .bucket(dst_bucket)
                .key(dst_key)
                .upload_id(&upload_id)
                .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| Error::from(e).context("CompleteMultipartUpload"))
        }
        Err(e) => Err(e),
    };
    guard.armed = false;
    if let Err(e) = completed {
        multipart::abort(&session.s3, dst_bucket, dst_key, &upload_id).await;
        return Err(e.context(&context));
    }
    Ok(())
}

