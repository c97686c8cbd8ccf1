//! TLS failures: a handshake that fails because of the server's certificate (or because the
//! endpoint does not speak TLS) is a configuration problem, not a flaky network. It gets its
//! own kind ([`ErrorKind::Tls`]), a message naming the host, the verification failure and
//! the remedy, and it is not retried.
//!
//! The SDK's connector reports every handshake failure as an I/O error, which its retry
//! policy retries. [`TlsAwareHttpClient`] wraps the connector: it knows the request's host,
//! finds the rustls error in the failure's source chain, and replaces the failure with a
//! non-retryable one carrying a [`TlsFailure`]; `error.rs` turns that into `ErrorKind::Tls`.

use crate::error::{Error, ErrorKind};
use aws_sdk_s3::config::http::HttpRequest;
use aws_sdk_s3::config::{HttpClient, RuntimeComponents, SharedHttpClient};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::result::ConnectorError;
use std::error::Error as StdError;
use std::fmt;

/// How a user makes a private CA trusted (see `engine::connector`).
const CA_HINT: &str = "to trust a private or self-signed CA, pass ca_bundle=<PEM file> (or set AWS_CA_BUNDLE, \
     or ca_bundle in the AWS config profile); verify=False turns certificate checks off";

/// A failed TLS handshake with `host` (`name:port`), caused by `cause`.
#[derive(Debug)]
pub(crate) struct TlsFailure {
    host: String,
    cause: rustls::Error,
}

impl TlsFailure {
    pub(crate) fn new(host: impl Into<String>, cause: rustls::Error) -> Self {
        TlsFailure { host: host.into(), cause }
    }

    pub(crate) fn to_error(&self) -> Error {
        Error::new(ErrorKind::Tls, self.to_string())
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use rustls::CertificateError as C;
        let host = &self.host;
        match &self.cause {
            rustls::Error::InvalidCertificate(C::UnknownIssuer) => write!(
                f,
                "TLS: the certificate of {host} is not trusted (UnknownIssuer: no CA this process trusts \
                 issued it); {CA_HINT}"
            ),
            rustls::Error::InvalidCertificate(
                cert @ (C::NotValidForName | C::NotValidForNameContext { .. }),
            ) => write!(
                f,
                "TLS: the certificate of {host} is not valid for that name ({cert}); use an endpoint \
                 whose host name the certificate covers"
            ),
            rustls::Error::InvalidCertificate(
                cert @ (C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. }),
            ) => write!(
                f,
                "TLS: the certificate of {host} is outside its validity period ({cert}); check the \
                 server's certificate and this machine's clock"
            ),
            rustls::Error::InvalidCertificate(cert) => {
                write!(f, "TLS: the certificate of {host} is not trusted ({cert}); {CA_HINT}")
            }
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => write!(
                f,
                "TLS handshake with {host} failed ({}); if that endpoint speaks plain HTTP, use an \
                 http:// endpoint_url",
                self.cause
            ),
            other => write!(f, "TLS handshake with {host} failed: {other}"),
        }
    }
}

impl StdError for TlsFailure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.cause)
    }
}

/// The rustls error that made a handshake fail, if that is what `err` (or anything in its
/// source chain) is. Only failures a retry cannot cure count: the certificate, or a peer
/// that does not speak TLS; a record corrupted mid-stream stays an I/O error.
pub(crate) fn handshake_failure<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return is_handshake_failure(tls).then_some(tls);
        }
        // io::Error::source() skips the error it wraps (hyper-rustls puts the rustls error
        // there): step into it instead.
        next = match e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(wrapped) => Some(wrapped as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    None
}

fn is_handshake_failure(e: &rustls::Error) -> bool {
    use rustls::Error as E;
    matches!(
        e,
        E::InvalidCertificate(_)
            | E::NoCertificatesPresented
            | E::UnsupportedNameType
            | E::InvalidCertRevocationList(_)
            | E::PeerIncompatible(_)
            | E::InvalidMessage(_)
            | E::InappropriateMessage { .. }
            | E::InappropriateHandshakeMessage { .. }
            | E::AlertReceived(_)
    )
}

/// The `TlsFailure` carried somewhere in `err`'s source chain.
pub(crate) fn find_tls_failure<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a TlsFailure> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(failure) = e.downcast_ref::<TlsFailure>() {
            return Some(failure);
        }
        next = e.source();
    }
    None
}

/// `host[:port]` of a request URI, for messages (never the userinfo).
fn host_of(uri: &str) -> String {
    match uri.parse::<http::Uri>() {
        Ok(uri) => match (uri.host(), uri.port_u16()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            _ => "the server".to_string(),
        },
        Err(_) => "the server".to_string(),
    }
}

/// An HTTP client whose connectors turn TLS handshake failures into non-retryable errors
/// carrying a [`TlsFailure`].
#[derive(Debug)]
pub(crate) struct TlsAwareHttpClient(pub SharedHttpClient);

impl HttpClient for TlsAwareHttpClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(TlsAwareConnector(self.0.http_connector(settings, components)))
    }

    fn connector_metadata(&self) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

#[derive(Debug)]
struct TlsAwareConnector(SharedHttpConnector);

impl HttpConnector for TlsAwareConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let uri = request.uri().to_string();
        let response = self.0.call(request);
        HttpConnectorFuture::new(async move {
            response.await.map_err(|err| match handshake_failure(&err) {
                // "other" with no error kind: the SDK's retry policy does not retry it.
                Some(tls) => ConnectorError::other(Box::new(TlsFailure::new(host_of(&uri), tls.clone())), None),
                None => err,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io_wrapped(e: rustls::Error) -> Box<dyn StdError + Send + Sync> {
        // What hyper-rustls hands up: the rustls error inside an io::Error (twice, in fact).
        let inner = std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        Box::new(std::io::Error::other(inner))
    }

    #[test]
    fn finds_a_certificate_error_inside_io_errors() {
        let err = io_wrapped(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer));
        let found = handshake_failure(err.as_ref()).expect("found");
        assert!(matches!(found, rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)));
    }

    #[test]
    fn mid_stream_record_errors_are_not_handshake_failures() {
        assert!(handshake_failure(io_wrapped(rustls::Error::DecryptError).as_ref()).is_none());
        let plain = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(handshake_failure(&plain).is_none());
    }

    #[test]
    fn messages_name_host_failure_and_remedy() {
        let unknown = TlsFailure::new(
            host_of("https://127.0.0.1:8443/bkt/key?x=1"),
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let text = unknown.to_string();
        assert!(text.contains("127.0.0.1:8443") && text.contains("UnknownIssuer") && text.contains("ca_bundle="), "{text}");
        assert_eq!(unknown.to_error().kind, ErrorKind::Tls);
        assert!(!unknown.to_error().is_transient());
        let expired = TlsFailure::new("h", rustls::Error::InvalidCertificate(rustls::CertificateError::Expired));
        assert!(expired.to_string().contains("clock"));
        assert_eq!(host_of("https://s3.amazonaws.com/b"), "s3.amazonaws.com");
    }
}
