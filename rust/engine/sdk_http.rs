//! The SDK's HTTP client (listing, credential providers, the operations off the lean path)
//! on our own connector, so it follows the same trust and proxy rules as the data plane.
//!
//! aws-smithy-http-client 1.5 builds its hyper client only from its own TCP/TLS connectors
//! (the hook that takes a custom one, `build_with_tcp_conn_fn`, is crate-private), so this is
//! the SDK's `HttpClient` implemented directly over `hyper_util::client::legacy::Client`. It
//! mirrors what aws-smithy-http-client's adapter does: one hyper client (connection pool) per
//! (connect, read) timeout pair, a read timeout on the response headers, connection poisoning
//! for the retry layer, and the same classification of failures into timeout / io / user /
//! other, which decides what the SDK retries.

use crate::connector::{self, ConnectTimeout, Connector, ProxyError};
use aws_sdk_s3::config::http::{HttpRequest, HttpResponse};
use aws_sdk_s3::config::{HttpClient, RuntimeComponents};
use aws_smithy_runtime_api::client::connection::{CaptureSmithyConnection, ConnectionMetadata};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind as RetryKind;
use hyper_util::client::legacy::connect::{capture_connection, CaptureConnection, HttpInfo};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::HashMap;
use std::error::Error as StdError;
use std::fmt;
use std::sync::RwLock;
use std::time::Duration;

type Key = (Option<Duration>, Option<Duration>);

/// An SDK `HttpClient` whose connections come from a [`Connector`].
pub(crate) struct SdkHttpClient {
    connector: Connector,
    /// Idle connections kept per host; None: hyper's default (no limit).
    max_idle_per_host: Option<usize>,
    pools: RwLock<HashMap<Key, SharedHttpConnector>>,
}

impl fmt::Debug for SdkHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SdkHttpClient").field("connector", &self.connector).finish()
    }
}

impl SdkHttpClient {
    /// A client with a connection pool (idle connections kept for reuse).
    pub(crate) fn pooled(connector: Connector) -> Self {
        SdkHttpClient { connector, max_idle_per_host: None, pools: RwLock::default() }
    }

    /// A client that closes every connection after its request.
    pub(crate) fn unpooled(connector: Connector) -> Self {
        SdkHttpClient { connector, max_idle_per_host: Some(0), pools: RwLock::default() }
    }

    fn new_adapter(&self, settings: &HttpConnectorSettings) -> Adapter {
        let mut builder = hyper_util::client::legacy::Client::builder(TokioExecutor::new());
        // Idle connections expire only with a timer.
        builder.pool_timer(TokioTimer::new());
        if let Some(max) = self.max_idle_per_host {
            builder.pool_max_idle_per_host(max);
        }
        let connector = match settings.connect_timeout() {
            Some(timeout) => self.connector.clone().with_connect_timeout(timeout),
            None => self.connector.clone(),
        };
        Adapter {
            client: builder.build(connector.clone()),
            connector,
            read_timeout: settings.read_timeout(),
        }
    }
}

impl HttpClient for SdkHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, _components: &RuntimeComponents) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        if let Some(found) = self.pools.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return found.clone();
        }
        let mut pools = self.pools.write().unwrap_or_else(|p| p.into_inner());
        pools
            .entry(key)
            .or_insert_with(|| SharedHttpConnector::new(self.new_adapter(settings)))
            .clone()
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        Some(ConnectorMetadata::new("hyper", Some(std::borrow::Cow::Borrowed("1.x"))))
    }
}

struct Adapter {
    client: hyper_util::client::legacy::Client<Connector, SdkBody>,
    connector: Connector,
    read_timeout: Option<Duration>,
}

impl fmt::Debug for Adapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Adapter").field("read_timeout", &self.read_timeout).finish()
    }
}

/// No response headers within the read timeout.
#[derive(Debug)]
struct ReadTimeout(Duration);

impl fmt::Display for ReadTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no response within the read timeout ({:?})", self.0)
    }
}

impl StdError for ReadTimeout {}

impl HttpConnector for Adapter {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let mut request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(err) => return HttpConnectorFuture::ready(Err(ConnectorError::user(err.into()))),
        };
        if let Some(auth) = self.connector.proxy_authorization(request.uri()) {
            request.headers_mut().entry(http::header::PROXY_AUTHORIZATION).or_insert(auth);
        }
        // The retry layer poisons the connection of a failed attempt so that it is not reused.
        let captured = capture_connection(&mut request);
        if let Some(capture) = request.extensions().get::<CaptureSmithyConnection>() {
            capture.set_connection_retriever(move || connection_metadata(&captured));
        }
        let response = self.client.request(request);
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let result = match read_timeout {
                Some(after) => match tokio::time::timeout(after, response).await {
                    Ok(result) => result,
                    Err(_) => return Err(ConnectorError::timeout(Box::new(ReadTimeout(after)))),
                },
                None => response.await,
            };
            match result {
                Ok(response) => HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                    .map_err(|err| ConnectorError::other(err.into(), None)),
                Err(err) => Err(classify(Box::new(err))),
            }
        })
    }
}

fn connection_metadata(captured: &CaptureConnection) -> Option<ConnectionMetadata> {
    let connected = captured.connection_metadata();
    let connected = connected.as_ref()?;
    let mut extensions = http::Extensions::new();
    connected.get_extras(&mut extensions);
    let info = extensions.get::<HttpInfo>();
    let poison = captured.clone();
    let mut builder = ConnectionMetadata::builder()
        .proxied(connected.is_proxied())
        .poison_fn(move || {
            if let Some(c) = poison.connection_metadata().as_ref() {
                c.poison()
            }
        });
    builder
        .set_local_addr(info.map(|i| i.local_addr()))
        .set_remote_addr(info.map(|i| i.remote_addr()));
    Some(builder.build())
}

/// What the SDK's retry policy sees: timeouts and I/O failures are retried, `user` errors are
/// not, `other` only with an explicit transient kind. The same rules as aws-smithy-http-client
/// (`downcast_error` / `to_connector_error`), plus our connector's own errors.
fn classify(err: connector::BoxError) -> ConnectorError {
    if find::<ConnectTimeout>(err.as_ref()).is_some() || find::<ReadTimeout>(err.as_ref()).is_some() {
        return ConnectorError::timeout(err);
    }
    if let Some(proxy) = find::<ProxyError>(err.as_ref()) {
        // Reaching the proxy failed: retried like any connection failure. The proxy refused
        // the tunnel (407, 403, a broken answer): another attempt would get the same.
        return match find::<std::io::Error>(proxy) {
            Some(_) => ConnectorError::io(err),
            None => ConnectorError::other(err, None),
        };
    }
    if let Some(hyper_err) = find::<hyper::Error>(err.as_ref()) {
        if hyper_err.is_timeout() {
            return ConnectorError::timeout(err);
        }
        if hyper_err.is_user() {
            return ConnectorError::user(err);
        }
        if hyper_err.is_closed() || hyper_err.is_canceled() || find::<std::io::Error>(hyper_err).is_some() {
            return ConnectorError::io(err);
        }
        if hyper_err.is_incomplete_message() {
            // Seen from S3: the connection closed before a complete response.
            return ConnectorError::other(err, Some(RetryKind::TransientError));
        }
        return ConnectorError::other(err, None);
    }
    if let Some(client_err) = find::<hyper_util::client::legacy::Error>(err.as_ref()) {
        if client_err.is_connect() || find::<std::io::Error>(client_err).is_some() {
            return ConnectorError::io(err);
        }
    }
    ConnectorError::other(err, None)
}

fn find<'a, E: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}
