//! SigV4 signing of data-plane requests, with the client's credentials cached until they
//! near expiry (the SDK's identity cache does this for its own requests).

use super::endpoint::Resolved;
use crate::error::{Error, ErrorKind, Result};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_types::error::display::DisplayErrorContext;
use std::sync::RwLock;
use std::time::{Duration, SystemTime};

/// SHA-256 of the empty body: GET and HEAD have one, and S3 requires `x-amz-content-sha256`.
const EMPTY_BODY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What `x-amz-content-sha256` says of the body.
#[derive(Clone, Copy)]
pub(super) enum Payload {
    /// No body (GET, HEAD).
    Empty,
    /// A body whose SHA-256 is not computed (`UNSIGNED-PAYLOAD`): hashing every byte would
    /// cost more CPU than sending it. The AWS SDKs do the same for S3 bodies; uploads carry
    /// an `x-amz-checksum-*` the server verifies instead.
    Unsigned,
}
/// Credentials are refreshed this long before they expire, so none expires in flight.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(30);

pub(super) struct Signer {
    /// None: anonymous requests, sent unsigned.
    provider: Option<SharedCredentialsProvider>,
    cached: RwLock<Option<Credentials>>,
    /// One refresh at a time: the others wait for its result instead of all calling the
    /// provider (which may be STS or IMDS).
    refreshing: tokio::sync::Mutex<()>,
}

impl Signer {
    pub fn new(provider: Option<SharedCredentialsProvider>) -> Signer {
        Signer { provider, cached: RwLock::new(None), refreshing: tokio::sync::Mutex::new(()) }
    }

    /// Add the SigV4 headers (`authorization`, `x-amz-date`, `x-amz-content-sha256`, and
    /// `x-amz-security-token` for temporary credentials) to `request`, signing every header it
    /// already carries.
    pub async fn sign<B>(&self, request: &mut http::Request<B>, endpoint: &Resolved, payload: Payload) -> Result<()> {
        let Some(credentials) = self.credentials().await? else {
            return Ok(());
        };
        let identity = Identity::from(credentials);
        let mut settings = SigningSettings::default();
        // S3 signs the path as sent (no second encoding, no dot-segment normalization).
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&endpoint.signing_region)
            .name(&endpoint.signing_name)
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| Error::new(ErrorKind::Config, format!("cannot sign the request: {e}")))?
            .into();
        let uri = request.uri().to_string();
        // A value that is not visible ASCII cannot be signed as sent: refuse it rather than
        // sign something else (every header we set is checked so already, see `http::header`).
        let headers = request
            .headers()
            .iter()
            .map(|(name, value)| match value.to_str() {
                Ok(text) => Ok((name.as_str(), text)),
                Err(_) => Err(Error::invalid(format!("header {name} has a value that is not visible ASCII"))),
            })
            .collect::<Result<Vec<_>>>()?;
        let signable = SignableRequest::new(
            request.method().as_str(),
            uri,
            headers.into_iter(),
            match payload {
                Payload::Empty => SignableBody::Precomputed(EMPTY_BODY_SHA256.to_string()),
                Payload::Unsigned => SignableBody::UnsignedPayload,
            },
        )
        .map_err(|e| Error::invalid(format!("cannot sign the request: {e}")))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| Error::new(ErrorKind::Config, format!("cannot sign the request: {e}")))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }

    async fn credentials(&self) -> Result<Option<Credentials>> {
        let Some(provider) = &self.provider else {
            return Ok(None);
        };
        if let Some(fresh) = self.fresh() {
            return Ok(Some(fresh));
        }
        let _refreshing = self.refreshing.lock().await;
        if let Some(fresh) = self.fresh() {
            return Ok(Some(fresh)); // another request refreshed them while we waited
        }
        let credentials = provider.provide_credentials().await.map_err(|e| {
            Error::new(ErrorKind::Config, format!("could not load credentials: {}", DisplayErrorContext(&e)))
        })?;
        *self.cached.write().unwrap_or_else(|p| p.into_inner()) = Some(credentials.clone());
        Ok(Some(credentials))
    }

    fn fresh(&self) -> Option<Credentials> {
        let cached = self.cached.read().unwrap_or_else(|p| p.into_inner());
        let credentials = cached.as_ref()?;
        match credentials.expiry() {
            Some(expiry) if expiry <= SystemTime::now() + REFRESH_BEFORE_EXPIRY => None,
            _ => Some(credentials.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn a_header_value_that_is_not_visible_ascii_is_refused_not_signed_as_empty() {
        let credentials = Credentials::new("AKID", "SECRET", None, None, "test");
        let signer = Signer::new(Some(SharedCredentialsProvider::new(credentials)));
        let endpoint = Resolved {
            base: "http://127.0.0.1:1/bkt".into(),
            host_header: http::HeaderValue::from_static("127.0.0.1:1"),
            host: "127.0.0.1:1".into(),
            signing_region: "us-east-1".into(),
            signing_name: "s3".into(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut request = http::Request::get("http://127.0.0.1:1/bkt/key").body(()).unwrap();
        request.headers_mut().insert("x-amz-meta-name", http::HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let err = runtime.block_on(signer.sign(&mut request, &endpoint, Payload::Empty)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArgument, "{err:?}");
        assert!(request.headers().get("authorization").is_none());

        let mut request = http::Request::get("http://127.0.0.1:1/bkt/key").body(()).unwrap();
        request.headers_mut().insert("x-amz-meta-name", http::HeaderValue::from_static("cafe"));
        runtime.block_on(signer.sign(&mut request, &endpoint, Payload::Empty)).unwrap();
        assert!(request.headers().get("authorization").is_some());
    }
}
