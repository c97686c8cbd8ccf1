//! The lean data plane: GET, HEAD and PUT of objects, sent on pooled HTTP/1.1
//! connections and signed with `aws-sigv4` (the SDK's own signer).
//!
//! The SDK's orchestrator (interceptors, identity cache, retry strategy, endpoint resolution,
//! response deserializers) costs about as much client CPU per small GET as everything else
//! together (bench/README.md, "Small GETs"). Here each request is: look up the bucket's
//! resolved endpoint (cached), take cached credentials, sign, send, classify. What the SDK
//! still does: configuration (aws-config: region, credentials chain, retry settings, endpoint
//! URL from the environment or profile), the endpoint rules (its `DefaultResolver`, run once per
//! bucket), credential providers, and every operation off the hot path (listing, HEAD bucket).
//!
//! What a request gets here, as from the SDK:
//! - standard retries: connection errors, timeouts, 5xx, throttling and transient S3 codes,
//!   exponential backoff with full jitter, `max_attempts` from the client option, else
//!   `AWS_MAX_ATTEMPTS` / the profile (`retry`);
//! - a response-headers timeout (`read_timeout`) and stalled-body detection (`body`);
//! - S3 error codes and messages from XML error bodies, status-derived codes for HEAD
//!   (`s3_error`);
//! - a wrong region answered by re-resolving the bucket's region from the response
//!   (`x-amz-bucket-region`, or `<Region>` in the body) and sending again, as boto3 does.

mod body;
mod direct;
mod endpoint;
mod retry;
mod s3_error;
mod scoped;
mod sign;

pub(crate) use body::Body;
pub(crate) use direct::DirectBody;
pub(crate) use endpoint::EndpointConfig;
pub(crate) use retry::RetryPolicy;
pub(crate) use scoped::Connections;

use crate::error::{Error, ErrorKind, Result};
use bytes::Bytes;
use endpoint::Endpoints;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use sign::Signer;
use std::sync::Arc;
use std::time::Duration;

use crate::connector::Connector;

/// Attempts, beyond the retry policy's, for a request that failed before any response byte
/// in a way that says the connection was bad rather than the server (a pooled connection
/// holding bytes a misbehaving server left after a body: the next response on it does not
/// parse). The pool drops such a connection, so the next attempt gets a fresh one, at once.
const FRESH_CONNECTION_RETRIES: u32 = 3;
/// An error response's body is read up to this size (S3's are well under 1 KiB).
const MAX_ERROR_BODY: usize = 64 * 1024;
/// How long an idle pooled connection is kept (S3 closes idle connections after ~20 s).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// Settings every thread's data plane of one client shares, and the caches they share:
/// credentials and resolved endpoints.
pub(crate) struct Shared {
    signer: Signer,
    endpoints: Endpoints,
    retry: RetryPolicy,
    /// How connections are made: trust (CA bundle, verify), proxies, connect timeout
    /// (engine::connector, shared with the SDK's HTTP client).
    connector: Connector,
    read_timeout: Duration,
    stall_grace: Duration,
    user_agent: HeaderValue,
    /// GETs go on `direct`'s connections, their bodies read straight into the destination;
    /// `PYFASTS3_HYPER_GET=1` sends them through hyper instead (for comparing the two).
    direct_get: bool,
    /// PUTs go on `direct`'s connections too; `PYFASTS3_HYPER_PUT=1` sends them through hyper.
    direct_put: bool,
    /// A hyper client with no pool, for [`Connection::Fresh`]: every request on a new
    /// connection, closed after its answer. Having no pool, one serves every data plane.
    unpooled: HyperClient<Connector, Full<Bytes>>,
}

/// Which connection a request goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Connection {
    /// A pooled one when there is one (the normal case).
    Pooled,
    /// A new one, for a request whose answer settles whether another answer can be trusted:
    /// a pooled connection may hold a stale answer a misbehaving server left on it, read as
    /// the answer to whatever is sent next; a new one holds only the answer to this request.
    Fresh,
}

/// What a data plane is built from (see `engine::client`).
pub(crate) struct Settings {
    pub credentials: Option<aws_credential_types::provider::SharedCredentialsProvider>,
    pub endpoint: EndpointConfig,
    pub retry: RetryPolicy,
    pub connector: Connector,
    pub read_timeout: Duration,
    pub stall_grace: Duration,
    pub user_agent: &'static str,
}

/// One connection pool and the shared state above. One per runtime that drives requests:
/// pooled connections are tasks of the runtime that opened them.
#[derive(Clone)]
pub(crate) struct DataPlane {
    /// Request bodies are `Full<Bytes>`: empty for GET and HEAD (hyper sends exactly what it
    /// sent for `Empty`: no body, no Content-Length), a part of the caller's data for uploads.
    http: HyperClient<Connector, Full<Bytes>>,
    /// The connections GETs are sent on (see `direct`).
    direct: Arc<direct::Pool>,
    shared: Arc<Shared>,
}

/// A request that carries a body (PUT of an object or of a multipart upload's part).
pub(crate) struct BodyRequest<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    /// Query string without the `?` (`partNumber=1&uploadId=...`), already encoded; or "".
    pub query: &'a str,
    /// Headers to send (and sign) besides those every request carries.
    pub headers: HeaderMap,
    /// Cloned (a reference count) for every attempt.
    pub body: Bytes,
}

/// What one attempt sends.
struct Outgoing<'a> {
    method: &'a Method,
    id: ObjectId<'a>,
    /// Query string of an upload (`partNumber=...`); "" otherwise.
    query: &'a str,
    headers: &'a HeaderMap,
    body: Option<&'a Bytes>,
    connection: Connection,
}

/// Which object (and which version of it) a request is about.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ObjectId<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    /// `versionId`: a specific version of a versioned bucket; None for the current one.
    pub version_id: Option<&'a str>,
}

/// A GET or HEAD of one object.
pub(crate) struct ObjectRequest<'a> {
    pub method: Method,
    pub id: ObjectId<'a>,
    /// Headers to send (and sign) besides those every request carries.
    pub headers: HeaderMap,
}

impl DataPlane {
    pub fn new(settings: Settings) -> Result<DataPlane> {
        let user_agent = HeaderValue::from_static(settings.user_agent);
        let shared = Shared {
            signer: Signer::new(settings.credentials),
            endpoints: Endpoints::new(settings.endpoint),
            retry: settings.retry,
            read_timeout: settings.read_timeout,
            stall_grace: settings.stall_grace,
            user_agent,
            direct_get: std::env::var_os("PYFASTS3_HYPER_GET").is_none_or(|v| v != "1"),
            direct_put: std::env::var_os("PYFASTS3_HYPER_PUT").is_none_or(|v| v != "1"),
            unpooled: HyperClient::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build(settings.connector.clone()),
            connector: settings.connector,
        };
        Ok(DataPlane::with_shared(Arc::new(shared)))
    }

    /// A data plane sharing this one's credentials and endpoints, with a pool of its own.
    pub fn with_own_pool(&self) -> DataPlane {
        DataPlane::with_shared(self.shared.clone())
    }

    fn with_shared(shared: Arc<Shared>) -> DataPlane {
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(shared.connector.clone());
        let direct = direct::Pool::new(shared.connector.clone(), POOL_IDLE_TIMEOUT);
        DataPlane { http, direct, shared }
    }

    /// A data plane sharing this one's credentials and endpoints whose connections are not
    /// spawned as runtime tasks but run inside the returned [`Connections`], which the caller
    /// polls alongside its requests (see `scoped`). Dropping both closes every connection and
    /// drops every request body they still held: nothing of a call outlives it.
    pub fn scoped_to_call(&self) -> (DataPlane, Connections) {
        let (executor, connections) = scoped::executor();
        let http = HyperClient::builder(executor)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .build(self.shared.connector.clone());
        let direct = direct::Pool::new(self.shared.connector.clone(), POOL_IDLE_TIMEOUT);
        (DataPlane { http, direct, shared: self.shared.clone() }, connections)
    }

    /// Send `request`, retrying as the policy says; a 2xx response is returned with its body
    /// unread, anything else becomes an [`Error`] carrying the S3 code and message.
    pub async fn send(&self, request: &ObjectRequest<'_>) -> Result<http::Response<Body>> {
        self.send_on(request, Connection::Pooled).await
    }

    /// `send` on `connection` (every attempt on a new one, for [`Connection::Fresh`]).
    pub async fn send_on(&self, request: &ObjectRequest<'_>, connection: Connection) -> Result<http::Response<Body>> {
        let outgoing = Outgoing { method: &request.method, id: request.id, query: "", headers: &request.headers, body: None, connection };
        self.send_outgoing(&outgoing).await
    }

    /// PUT `request.body` (an object, or a part of a multipart upload), retried as `send`
    /// retries (the body is sent again from its start). The payload is not hashed into the
    /// signature (`UNSIGNED-PAYLOAD`, as the AWS SDKs send S3 bodies): its integrity is
    /// checked by the `x-amz-checksum-*` header the caller adds, which the server verifies.
    pub async fn put(&self, request: &BodyRequest<'_>) -> Result<http::Response<Body>> {
        let outgoing = Outgoing {
            method: &Method::PUT,
            id: ObjectId { bucket: request.bucket, key: request.key, version_id: None },
            query: request.query,
            headers: &request.headers,
            body: Some(&request.body),
            connection: Connection::Pooled,
        };
        self.send_outgoing(&outgoing).await
    }

    async fn send_outgoing(&self, request: &Outgoing<'_>) -> Result<http::Response<Body>> {
        let mut attempt = 1;
        let mut fresh_connection_retries = 0;
        let mut redirected = false;
        loop {
            let endpoint = self.shared.endpoints.resolve(request.id.bucket)?;
            let err = match self.attempt(&endpoint, request).await {
                Ok(Answer::Success(response)) => return Ok(response),
                Ok(Answer::Failure(failure)) => {
                    match failure.region_hint() {
                        Some(region) if !redirected && region != endpoint.signing_region => {
                            // The bucket lives in another region: resolve it there, send again.
                            self.shared.endpoints.move_bucket(request.id.bucket, region)?;
                            redirected = true;
                            continue;
                        }
                        _ => failure.error,
                    }
                }
                Err(err) => err,
            };
            if err.retry_on_fresh_connection && fresh_connection_retries < FRESH_CONNECTION_RETRIES {
                fresh_connection_retries += 1;
                continue;
            }
            if self.shared.retry.should_retry(&err, attempt) {
                tokio::time::sleep(self.shared.retry.backoff(attempt)).await;
                attempt += 1;
                continue;
            }
            return Err(err);
        }
    }

    async fn attempt(&self, endpoint: &endpoint::Resolved, request: &Outgoing<'_>) -> Result<Answer> {
        let uri = if request.query.is_empty() {
            endpoint.object_uri(request.id.key, request.id.version_id)?
        } else {
            endpoint.object_uri_with_query(request.id.key, request.query)?
        };
        let body = request.body.cloned().unwrap_or_default();
        let body_len = body.len();
        let mut http_request = http::Request::builder()
            .method(request.method.clone())
            .uri(uri)
            .body(body)
            .map_err(|e| Error::invalid(format!("cannot build the request: {e}")))?;
        let headers = http_request.headers_mut();
        headers.extend(request.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        let host = endpoint.host_header();
        headers.insert(http::header::HOST, host);
        let payload = match request.body {
            None => sign::Payload::Empty,
            Some(_) => {
                // Stated, not left to hyper: it is signed, and a 0-byte PUT needs it too.
                headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body_len));
                sign::Payload::Unsigned
            }
        };
        self.shared.signer.sign(&mut http_request, endpoint, payload).await?;
        // After signing: proxies and load balancers may rewrite the User-Agent.
        http_request.headers_mut().insert(http::header::USER_AGENT, self.shared.user_agent.clone());
        // Plain http through a proxy with credentials; unsigned, as the proxy removes it.
        if let Some(auth) = self.shared.connector.proxy_authorization(http_request.uri()) {
            http_request.headers_mut().insert(http::header::PROXY_AUTHORIZATION, auth);
        }

        let response = self.exchange(http_request, endpoint, request.connection).await?;
        if response.status().is_success() {
            return Ok(Answer::Success(response));
        }
        let (parts, body) = response.into_parts();
        let body = match tokio::time::timeout(self.shared.read_timeout, body.first_bytes(MAX_ERROR_BODY)).await {
            Ok(bytes) => bytes,
            // The status still says what happened; the message is just less detailed.
            Err(_) => Bytes::new(),
        };
        Ok(Answer::Failure(s3_error::Failure::new(parts.status, &parts.headers, &body)))
    }

    /// Send a signed request and wait for its response head (within the read timeout). A GET
    /// or PUT goes on `direct`'s connections unless it must be written for a plain-HTTP proxy,
    /// or a GET's answer has a shape only hyper reads (then it is sent again through hyper);
    /// HEAD goes through hyper. [`Connection::Fresh`]: through hyper, on a new connection.
    async fn exchange(
        &self,
        request: http::Request<Bytes>,
        endpoint: &endpoint::Resolved,
        connection: Connection,
    ) -> Result<http::Response<Body>> {
        let read_timeout = self.shared.read_timeout;
        let grace = self.shared.stall_grace;
        let timed_out = || Error::new(ErrorKind::Timeout, format!("no response within the read timeout ({read_timeout:?})"));
        let direct = match *request.method() {
            Method::GET => self.shared.direct_get,
            Method::PUT => self.shared.direct_put,
            _ => false,
        } && connection == Connection::Pooled
            && !self.shared.connector.via_http_proxy(request.uri());
        if direct {
            let sending = self.direct.send(&request, endpoint.host(), grace);
            match tokio::time::timeout(read_timeout, sending).await {
                Err(_) => return Err(timed_out()),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(Some(response))) => return Ok(response.map(Body::direct)),
                Ok(Ok(None)) => {}
            }
        }
        let client = match connection {
            Connection::Pooled => &self.http,
            Connection::Fresh => &self.shared.unpooled,
        };
        match tokio::time::timeout(read_timeout, client.request(request.map(Full::new))).await {
            Err(_) => Err(timed_out()),
            Ok(Err(e)) => Err(send_error(e, endpoint)),
            Ok(Ok(response)) => Ok(response.map(|incoming| Body::new(incoming, grace))),
        }
    }
}

enum Answer {
    Success(http::Response<Body>),
    Failure(s3_error::Failure),
}

/// A request that got no response: which kind of failure, and whether a fresh connection may
/// do better.
fn send_error(err: hyper_util::client::legacy::Error, endpoint: &endpoint::Resolved) -> Error {
    let source: &(dyn std::error::Error + 'static) = &err;
    if let Some(cause) = crate::tls::handshake_failure(source) {
        return crate::tls::TlsFailure::new(endpoint.host(), cause.clone()).to_error();
    }
    if err.is_connect() {
        return connect_failure(source, endpoint.host());
    }
    let detail = error_chain(source);
    let hyper_error = find::<hyper::Error>(source);
    let mut error = Error::new(ErrorKind::Network, format!("request to {} failed: {detail}", endpoint.host()));
    // Nothing (or nothing parseable) came back on a connection that may have been pooled:
    // another attempt on a fresh connection can succeed.
    error.retry_on_fresh_connection = hyper_error
        .is_some_and(|e| e.is_parse() || e.is_parse_status() || e.is_incomplete_message() || e.is_canceled());
    error
}

/// A connection that could not be made (TCP, proxy tunnel or TLS handshake). Another attempt
/// gets a fresh connection at once.
fn connect_failure(source: &(dyn std::error::Error + 'static), host: &str) -> Error {
    if let Some(cause) = crate::tls::handshake_failure(source) {
        return crate::tls::TlsFailure::new(host, cause.clone()).to_error();
    }
    let detail = error_chain(source);
    let timed_out = detail.contains("timed out") || detail.contains("timeout");
    let kind = if timed_out { ErrorKind::Timeout } else { ErrorKind::Network };
    let mut error = Error::new(kind, format!("cannot connect to {host}: {detail}"));
    error.retry_on_fresh_connection = true;
    error
}

fn find<'a, T: std::error::Error + 'static>(mut e: &'a (dyn std::error::Error + 'static)) -> Option<&'a T> {
    loop {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        e = e.source()?;
    }
}

/// "outer: inner: innermost", without repeating a cause already in its parent's message.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}

/// `name: value` for the request headers the engine adds (all ASCII it controls).
pub(crate) fn header(headers: &mut HeaderMap, name: &'static str, value: &str) -> Result<()> {
    let value = HeaderValue::from_str(value)
        .map_err(|_| Error::invalid(format!("{name} value {value:?} cannot be sent in an HTTP header")))?;
    headers.insert(HeaderName::from_static(name), value);
    Ok(())
}

/// The status a 2xx response carried, for callers telling 200 from 206.
pub(crate) fn is_partial(response: &http::Response<Body>) -> bool {
    response.status() == StatusCode::PARTIAL_CONTENT
}
