//! Listing: ListObjectsV2 pages, walked by a cursor (one page at a time) or collected whole —
//! sequentially, or in parallel by walking the `/` prefix tree.

use crate::client::{Client, Session};
use crate::error::{Error, ErrorKind, Result};
use crate::list_xml;
use crate::page::ObjectPage;
use crate::path::check_bucket;
use crate::runtime::Placement;
use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::EncodingType;
use aws_smithy_types::body::SdkBody;
use futures_util::future::{join_all, BoxFuture};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The delimiter the parallel walk splits the key space on.
pub const TREE_DELIMITER: &str = "/";

/// What to list. `page_size` is S3's `max-keys` (S3 caps it at 1000).
#[derive(Debug, Clone)]
pub struct ListRequest {
    pub bucket: String,
    pub prefix: String,
    pub delimiter: Option<String>,
    pub start_after: Option<String>,
    pub page_size: i32,
}

impl ListRequest {
    fn validate(&self) -> Result<()> {
        check_bucket(&self.bucket)?;
        if !(1..=1000).contains(&self.page_size) {
            return Err(Error::invalid(format!("page_size must be between 1 and 1000, got {}", self.page_size)));
        }
        if self.delimiter.as_deref() == Some("") {
            return Err(Error::invalid("delimiter must not be empty"));
        }
        Ok(())
    }
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
        request.validate()?;
        Ok(ListCursor { client, request, continuation: None, finished: false })
    }

    /// The bucket being listed.
    pub fn bucket(&self) -> &str {
        &self.request.bucket
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The next page, or `None` once the listing is exhausted. A failed page can be retried
    /// by calling again: the cursor only advances on success.
    pub async fn next_page(&mut self, placement: Placement) -> Result<Option<ObjectPage>> {
        if self.finished {
            return Ok(None);
        }
        let session = self.client.session(placement).await?;
        let (page, next) = list_page(&session, &self.request, self.continuation.as_deref()).await?;
        match next {
            Some(token) => self.continuation = Some(token),
            None => self.finished = true,
        }
        Ok(Some(page))
    }
}

/// How many times a page whose body broke off mid-way is asked for again (request-level
/// failures are retried by the SDK before they reach us).
const MAX_BODY_RETRIES: u32 = 3;
const BODY_RETRY_BACKOFF: Duration = Duration::from_millis(50);

/// One ListObjectsV2 page; returns it and the continuation token if there is more.
async fn list_page(session: &Session, r: &ListRequest, continuation: Option<&str>) -> Result<(ObjectPage, Option<String>)> {
    let context = || format!("listing s3://{}/{}", r.bucket, r.prefix);
    let _permit = session.acquire().await?;
    let mut retries = 0;
    let body = loop {
        let mut call = session
            .s3
            .list_objects_v2()
            .bucket(&r.bucket)
            .max_keys(r.page_size)
            // Keys may hold characters XML 1.0 cannot carry (most control characters) or
            // that XML parsers rewrite (a CR becomes a LF): ask for them URL-encoded, as
            // boto3 does; list_xml decodes them if the server did encode.
            .encoding_type(EncodingType::Url)
            .set_delimiter(r.delimiter.clone())
            .set_continuation_token(continuation.map(str::to_string));
        if !r.prefix.is_empty() {
            call = call.prefix(&r.prefix);
        }
        if continuation.is_none() {
            call = call.set_start_after(r.start_after.clone());
        }
        let taken = TakeListBody::default();
        call.customize()
            .interceptor(taken.clone())
            .send()
            .await
            .map_err(|e| Error::from(e).context(context()))?;
        let body = taken.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        let body = body.ok_or_else(|| Error::protocol("the listing's response body was not captured"))?;
        match ByteStream::new(body).collect().await {
            Ok(bytes) => break bytes.into_bytes(),
            Err(_) if retries < MAX_BODY_RETRIES => {
                retries += 1;
                tokio::time::sleep(BODY_RETRY_BACKOFF * retries).await;
            }
            Err(e) => {
                return Err(Error::new(ErrorKind::Network, format!("reading the listing failed: {e}")).context(context()))
            }
        }
    };
    let parsed = list_xml::parse_list_objects_v2(&body).map_err(|e| e.context(context()))?;
    let next = match (parsed.is_truncated, parsed.next_continuation_token) {
        (true, Some(token)) if !token.is_empty() => Some(token),
        (true, _) => return Err(Error::protocol("listing page is truncated but carries no continuation token")),
        (false, _) => None,
    };
    Ok((parsed.page, next))
}

/// Takes a successful ListObjectsV2 response's body before the SDK deserializes it, leaving
/// an empty `ListBucketResult` in its place: `list_xml` parses the real one (see there for
/// why). Error responses are left alone, so the SDK still maps them to its error types.
#[derive(Debug, Default, Clone)]
struct TakeListBody(Arc<Mutex<Option<SdkBody>>>);

impl Intercept for TakeListBody {
    fn name(&self) -> &'static str {
        "fasts3::TakeListBody"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), BoxError> {
        let response = context.response_mut();
        if response.status().is_success() {
            let body = std::mem::replace(response.body_mut(), SdkBody::from("<ListBucketResult></ListBucketResult>"));
            *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(body);
        }
        Ok(())
    }
}

/// Every page of a listing, concatenated (S3's order).
async fn list_sequential(session: &Session, request: &ListRequest) -> Result<ObjectPage> {
    let (mut all, mut next) = list_page(session, request, None).await?;
    while let Some(token) = next {
        let (page, after) = list_page(session, request, Some(&token)).await?;
        all.append(page);
        next = after;
    }
    Ok(all)
}

/// The whole listing in one page. With `parallel` (and no delimiter), the key space is split
/// along the `/` tree: each "directory" is listed with the delimiter, its subdirectories
/// concurrently (bounded by the client's request budget), and the results are merged back
/// into S3's order. A flat key space gains nothing from this; a tree of many directories
/// lists roughly as many pages at once as the client allows requests in flight.
pub async fn list_all(client: &Client, placement: Placement, request: ListRequest, parallel: bool) -> Result<ObjectPage> {
    request.validate()?;
    let session = client.session(placement).await?;
    if parallel && request.delimiter.is_none() && request.start_after.is_none() {
        let level = ListRequest { delimiter: Some(TREE_DELIMITER.into()), ..request };
        walk_tree(&session, level).await
    } else {
        list_sequential(&session, &request).await
    }
}

fn walk_tree(session: &Session, level: ListRequest) -> BoxFuture<'_, Result<ObjectPage>> {
    Box::pin(async move {
        let mut here = list_sequential(session, &level).await?;
        let subdirs = std::mem::take(&mut here.common_prefixes);
        if subdirs.is_empty() {
            return Ok(here);
        }
        let children = join_all((0..subdirs.len()).map(|i| {
            walk_tree(session, ListRequest { prefix: subdirs.get(i).to_string(), ..level.clone() })
        }))
        .await;
        let mut merged = ObjectPage::default();
        let mut direct = 0;
        for (i, child) in children.into_iter().enumerate() {
            // A direct key never starts with a subdirectory prefix, so comparing it with the
            // prefix orders it against every key in that subdirectory.
            let subdir = subdirs.get(i).as_bytes();
            while direct < here.len() && here.keys.get(direct).as_bytes() < subdir {
                merged.push_from(&here, direct);
                direct += 1;
            }
            merged.append(child?);
        }
        while direct < here.len() {
            merged.push_from(&here, direct);
            direct += 1;
        }
        Ok(merged)
    })
}
