//! Listing: a cursor over ListObjectsV2 pages.

use crate::engine::client::Client;
use crate::engine::error::{Error, Result};
use crate::engine::page::ObjectPage;
use crate::engine::path::check_bucket;
use std::sync::Arc;

/// What to list. `page_size` is S3's `max-keys` (S3 caps it at 1000).
#[derive(Debug, Clone)]
pub struct ListRequest {
    pub bucket: String,
    pub prefix: String,
    pub delimiter: Option<String>,
    pub start_after: Option<String>,
    pub page_size: i32,
}

/// Walks the pages of one listing. Holds its own reference to the client, so it stays
/// valid even if the caller drops its client handle first.
pub struct ListCursor {
    client: Arc<Client>,
    request: ListRequest,
    continuation: Option<String>,
    finished: bool,
}

impl ListCursor {
    pub fn new(client: Arc<Client>, request: ListRequest) -> Result<Self> {
        check_bucket(&request.bucket)?;
        if !(1..=1000).contains(&request.page_size) {
            return Err(Error::invalid(format!(
                "page_size must be between 1 and 1000, got {}",
                request.page_size
            )));
        }
        if request.delimiter.as_deref() == Some("") {
            return Err(Error::invalid("delimiter must not be empty"));
        }
        Ok(ListCursor { client, request, continuation: None, finished: false })
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The next page, or `None` once the listing is exhausted. A failed page can be retried
    /// by calling again: the cursor only advances on success.
    pub async fn next_page(&mut self) -> Result<Option<ObjectPage>> {
        if self.finished {
            return Ok(None);
        }
        let session = self.client.session().await?;
        let r = &self.request;
        let mut call = session
            .s3
            .list_objects_v2()
            .bucket(&r.bucket)
            .max_keys(r.page_size)
            .set_delimiter(r.delimiter.clone())
            .set_continuation_token(self.continuation.clone());
        if !r.prefix.is_empty() {
            call = call.prefix(&r.prefix);
        }
        if self.continuation.is_none() {
            call = call.set_start_after(r.start_after.clone());
        }
        let out = call
            .send()
            .await
            .map_err(|e| Error::from(e).context(format!("listing s3://{}/{}", r.bucket, r.prefix)))?;

        let mut page = ObjectPage::default();
        for obj in out.contents() {
            page.push_object(
                obj.key().unwrap_or(""),
                obj.size().unwrap_or(0).max(0) as u64,
                obj.last_modified(),
                obj.e_tag().unwrap_or(""),
                "",
            );
        }
        for p in out.common_prefixes() {
            page.common_prefixes.push(p.prefix().unwrap_or(""));
        }
        match (out.is_truncated().unwrap_or(false), out.next_continuation_token()) {
            (true, Some(token)) if !token.is_empty() => self.continuation = Some(token.to_string()),
            (true, _) => {
                return Err(Error::protocol(
                    "listing page is truncated but carries no continuation token",
                ))
            }
            (false, _) => self.finished = true,
        }
        Ok(Some(page))
    }
}
