//! The one connector behind every HTTP client of a pyfasts3 client: the SDK's (listing,
//! credentials, see `engine::sdk_http`) and the lean data plane's. It decides how a
//! connection to a URI is made, so trust and proxy rules are the same for every request:
//!
//! - TCP with TCP_NODELAY (requests are written in pieces; Nagle would hold them back);
//! - TLS through rustls (ring provider; aws-lc-rs with the `aws-lc` cargo feature), ALPN
//!   `http/1.1` only;
//! - trust: the system roots (rustls-native-certs, which also honours SSL_CERT_FILE /
//!   SSL_CERT_DIR) plus one PEM bundle, resolved as boto3 resolves `verify`: the `ca_bundle`
//!   option, else `AWS_CA_BUNDLE`, else `ca_bundle` in the selected profile of the AWS config
//!   file, else `REQUESTS_CA_BUNDLE`. Unlike boto3 the bundle is added to the system roots
//!   rather than replacing them. `verify=false` (explicit option only) accepts any certificate;
//! - proxies: the `proxy` option for every destination, else `HTTPS_PROXY` / `HTTP_PROXY` /
//!   `NO_PROXY` (lowercase names first, as Python's urllib reads them; `ALL_PROXY` is ignored,
//!   as boto3 ignores it). https destinations go through a CONNECT tunnel; plain http ones are
//!   sent to the proxy in absolute form, with `Proxy-Authorization` added by the caller
//!   (see [`Connector::proxy_authorization`]);
//! - a connect timeout covering TCP, the proxy tunnel and the TLS handshake.

use crate::client::{redact_userinfo, ClientOptions, DEFAULT_CONNECT_TIMEOUT};
use crate::error::{Error, ErrorKind, Result};
use http::{HeaderValue, Uri};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tower_service::Service;

pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// A connection as the connector hands it to hyper: TCP (direct, through a CONNECT tunnel, or
/// to an HTTP proxy), wrapped in TLS for https destinations.
pub(crate) type Stream = MaybeHttpsStream<Tcp>;

/// Makes connections for `hyper_util::client::legacy::Client` (a `tower::Service<http::Uri>`
/// whose responses implement hyper's `Read`/`Write` and hyper-util's `Connection`). Cheap to
/// clone; clones share the TLS configuration.
#[derive(Clone)]
pub(crate) struct Connector {
    https: HttpsConnector<Route>,
    proxy: Option<Arc<Matcher>>,
    connect_timeout: Duration,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Matcher's Debug never shows proxy credentials.
        f.debug_struct("Connector")
            .field("proxy", &self.proxy)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Build the connector for a client's options: trust (system roots + CA bundle, or none with
/// `verify=false`), proxy rules and connect timeout. Reads the CA bundle now, so a bundle that
/// cannot be read or holds no certificate fails here, with `ErrorKind::Config`, the path and
/// the reason; so does a proxy URL that is not `http://host[:port]`.
///
/// Requests sent through the returned connector to a plain-http destination via a proxy must
/// carry [`Connector::proxy_authorization`] (hyper writes them in absolute form, but it does
/// not add proxy credentials).
pub(crate) fn build(options: &ClientOptions) -> Result<Connector> {
    let tls = tls_config(options)?;
    let proxy = proxy_rules(options)?.map(Arc::new);
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    // The whole connection (TCP, tunnel, TLS) is timed by Connector::call instead.
    tcp.set_connect_timeout(None);
    tcp.enforce_http(false);
    let route = Route { tcp, proxy: proxy.clone() };
    // http and https destinations both; TLS with our config, ALPN http/1.1 set in it (the
    // builder of hyper-rustls refuses a config with ALPN already set).
    let https = HttpsConnector::from((route, tls));
    Ok(Connector { https, proxy, connect_timeout: options.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT) })
}

impl Connector {
    /// The same connector with another connect timeout (the SDK's credential providers bring
    /// their own, e.g. 1 s for instance metadata).
    pub(crate) fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Whether a request to `uri` is written to an HTTP proxy (a plain-http destination the
    /// proxy rules intercept): then it goes in absolute form, which only hyper writes.
    pub(crate) fn via_http_proxy(&self, uri: &Uri) -> bool {
        uri.scheme() == Some(&http::uri::Scheme::HTTP) && self.proxy.as_ref().is_some_and(|p| p.intercept(uri).is_some())
    }

    /// The `Proxy-Authorization` value a request to `uri` needs: Some only for a plain-http
    /// destination sent through a proxy whose URL holds credentials (https destinations send
    /// them in the CONNECT request instead).
    pub(crate) fn proxy_authorization(&self, uri: &Uri) -> Option<HeaderValue> {
        if uri.scheme() != Some(&http::uri::Scheme::HTTP) {
            return None;
        }
        let mut value = self.proxy.as_ref()?.intercept(uri)?.basic_auth()?.clone();
        value.set_sensitive(true);
        Some(value)
    }
}

/// The connect timeout expired (TCP connect, proxy tunnel and TLS handshake together).
#[derive(Debug)]
pub(crate) struct ConnectTimeout {
    host: String,
    after: Duration,
}

impl fmt::Display for ConnectTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connecting to {} timed out after {:?}", self.host, self.after)
    }
}

impl StdError for ConnectTimeout {}

type Connecting = Pin<Box<dyn Future<Output = std::result::Result<Stream, BoxError>> + Send>>;

impl Service<Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), BoxError>> {
        self.https.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> Connecting {
        let host = dst.authority().map_or_else(|| "the server".to_string(), |a| a.to_string());
        let after = self.connect_timeout;
        let connecting = self.https.call(dst);
        Box::pin(async move {
            match tokio::time::timeout(after, connecting).await {
                Ok(result) => result,
                Err(_) => Err(Box::new(ConnectTimeout { host, after }) as BoxError),
            }
        })
    }
}

/// The TCP step: straight to the destination, or to the proxy its rules name.
#[derive(Clone)]
struct Route {
    tcp: HttpConnector,
    proxy: Option<Arc<Matcher>>,
}

/// A proxy refused or broke the tunnel (the source says how: 407, another status, EOF...).
#[derive(Debug)]
pub(crate) struct ProxyError {
    proxy: String,
    source: BoxError,
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not open a tunnel through proxy {}", self.proxy)
    }
}

impl StdError for ProxyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.source.as_ref())
    }
}

type Routing = Pin<Box<dyn Future<Output = std::result::Result<Tcp, BoxError>> + Send>>;

impl Service<Uri> for Route {
    type Response = Tcp;
    type Error = BoxError;
    type Future = Routing;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), BoxError>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Routing {
        let via = self.proxy.as_ref().and_then(|rules| rules.intercept(&dst));
        let Some(proxy) = via else {
            let connecting = self.tcp.call(dst);
            return Box::pin(async move { Ok(Tcp { io: connecting.await?, to_http_proxy: false }) });
        };
        if dst.scheme() == Some(&http::uri::Scheme::HTTPS) {
            // TLS end to end through a CONNECT tunnel; credentials go in the CONNECT request.
            let mut tunnel = Tunnel::new(proxy.uri().clone(), self.tcp.clone());
            if let Some(auth) = proxy.basic_auth() {
                tunnel = tunnel.with_auth(auth.clone());
            }
            let shown = proxy.uri().authority().map_or_else(String::new, |a| a.to_string());
            let connecting = tunnel.call(dst);
            Box::pin(async move {
                let io = connecting.await.map_err(|e| ProxyError { proxy: shown, source: Box::new(e) })?;
                Ok(Tcp { io, to_http_proxy: false })
            })
        } else {
            // Plain http: the request itself goes to the proxy, in absolute form.
            let connecting = self.tcp.call(proxy.uri().clone());
            Box::pin(async move { Ok(Tcp { io: connecting.await?, to_http_proxy: true }) })
        }
    }
}

/// A TCP connection that knows whether it leads to an HTTP proxy (then hyper writes request
/// targets in absolute form: `GET http://host/path`).
pub(crate) struct Tcp {
    io: TokioIo<TcpStream>,
    to_http_proxy: bool,
}

impl Connection for Tcp {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.to_http_proxy)
    }
}

impl Read for Tcp {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl Write for Tcp {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

// ---- trust ---------------------------------------------------------------------------------

fn crypto_provider() -> CryptoProvider {
    #[cfg(feature = "aws-lc")]
    {
        rustls::crypto::aws_lc_rs::default_provider()
    }
    #[cfg(not(feature = "aws-lc"))]
    {
        rustls::crypto::ring::default_provider()
    }
}

fn tls_config(options: &ClientOptions) -> Result<ClientConfig> {
    let provider = Arc::new(crypto_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::Config, format!("TLS setup failed: {e}")))?;
    let mut config = if options.verify {
        let mut roots = RootCertStore::clone(system_roots());
        if let Some(bundle) = ca_bundle(options) {
            add_bundle(&mut roots, &bundle)?;
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The system's CA certificates, read once per process (a few ms of parsing that every client
/// would otherwise repeat). rustls-native-certs reads SSL_CERT_FILE / SSL_CERT_DIR instead of
/// the system store when they are set.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        // Unreadable entries are skipped, as hyper-rustls does: one bad file in /etc/ssl/certs
        // must not make every HTTPS endpoint unusable.
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        roots
    })
}

/// A CA bundle to trust besides the system roots, and where its path came from (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaBundle {
    pub path: PathBuf,
    pub origin: String,
}

/// The bundle boto3 would use: the option, AWS_CA_BUNDLE, the profile's `ca_bundle`,
/// REQUESTS_CA_BUNDLE (botocore's last fallback). Empty values count as unset.
pub(crate) fn ca_bundle(options: &ClientOptions) -> Option<CaBundle> {
    let found = |path: &str, origin: &str| Some(CaBundle { path: PathBuf::from(path), origin: origin.to_string() });
    if let Some(path) = &options.ca_bundle {
        return Some(CaBundle { path: path.clone(), origin: "the ca_bundle option".into() });
    }
    if let Some(path) = env_value("AWS_CA_BUNDLE") {
        return found(&path, "AWS_CA_BUNDLE");
    }
    if let Some((profile, path)) = profile_ca_bundle(options.profile.as_deref()) {
        return found(&path, &format!("ca_bundle of profile {profile:?} in the AWS config file"));
    }
    env_value("REQUESTS_CA_BUNDLE").and_then(|path| found(&path, "REQUESTS_CA_BUNDLE"))
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `ca_bundle` of the selected profile (`profile` option, else AWS_PROFILE, else "default"),
/// read with aws-config's own parser from the files it reads (AWS_CONFIG_FILE and
/// AWS_SHARED_CREDENTIALS_FILE honoured). Files that do not parse yield None here: the
/// client's configuration loading reports them.
fn profile_ca_bundle(profile: Option<&str>) -> Option<(String, String)> {
    use futures_util::FutureExt;
    let files = aws_runtime::env_config::file::EnvConfigFiles::default();
    let fs = aws_types::os_shim_internal::Fs::real();
    let env = aws_types::os_shim_internal::Env::real();
    let selected = profile.map(|p| std::borrow::Cow::Owned(p.to_string()));
    // aws-config reads the real files with std::fs, so this future is ready at its first poll.
    let profiles = aws_config::profile::load(&fs, &env, &files, selected).now_or_never()?.ok()?;
    let path = profiles.get("ca_bundle").filter(|v| !v.is_empty())?;
    Some((profiles.selected_profile().to_string(), path.to_string()))
}

/// Trust every certificate of the PEM file `bundle` names.
fn add_bundle(roots: &mut RootCertStore, bundle: &CaBundle) -> Result<()> {
    let fail = |reason: String| {
        Error::new(
            ErrorKind::Config,
            format!("CA bundle {} (from {}) {reason}", bundle.path.display(), bundle.origin),
        )
    };
    let certs = read_pem_certificates(&bundle.path).map_err(|e| fail(format!("cannot be read: {e}")))?;
    if certs.is_empty() {
        return Err(fail("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
    }
    let total = certs.len();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(fail(format!("holds {total} certificate(s), none of which parses as a CA certificate")));
    }
    Ok(())
}

fn read_pem_certificates(path: &Path) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    if path.is_dir() {
        return Err("it is a directory, not a PEM file".into());
    }
    CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error_text(&e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| pem_error_text(&e))
}

fn pem_error_text(e: &rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not valid PEM ({other:?})"),
    }
}

/// `verify=false`: any certificate, for any name, is accepted. Handshake signatures are still
/// checked (the peer must hold the key of the certificate it sent), which keeps the TLS
/// session itself sound; who the peer is, is not checked at all.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

// ---- proxies -------------------------------------------------------------------------------

/// The proxy rules: the `proxy` option for every destination (NO_PROXY does not apply, as
/// with boto3's `proxies`), else the environment as boto3 reads it. None: no proxy at all.
fn proxy_rules(options: &ClientOptions) -> Result<Option<Matcher>> {
    if let Some(url) = &options.proxy {
        check_proxy_url(url, "the proxy option")?;
        return Ok(Some(Matcher::builder().all(url.as_str()).build()));
    }
    let http = env_first(&["http_proxy", "HTTP_PROXY"]);
    let https = env_first(&["https_proxy", "HTTPS_PROXY"]);
    if http.is_none() && https.is_none() {
        return Ok(None);
    }
    let mut rules = Matcher::builder();
    if let Some((name, url)) = &http {
        check_proxy_url(url, name)?;
        rules = rules.http(url.as_str());
    }
    if let Some((name, url)) = &https {
        check_proxy_url(url, name)?;
        rules = rules.https(url.as_str());
    }
    if let Some((_, no)) = env_first(&["no_proxy", "NO_PROXY"]) {
        rules = rules.no(no.as_str());
    }
    Ok(Some(rules.build()))
}

/// The first of `names` set to a non-empty value: (name, value).
fn env_first(names: &[&'static str]) -> Option<(&'static str, String)> {
    names.iter().find_map(|&name| env_value(name).map(|v| (name, v)))
}

/// A proxy must be `http://[user:password@]host[:port]` (a missing scheme means http, as in
/// curl and botocore). Messages never repeat the credentials.
fn check_proxy_url(url: &str, origin: &str) -> Result<()> {
    let shown = redact_userinfo(url);
    let bad = |why: &str| Error::new(ErrorKind::Config, format!("proxy {shown:?} (from {origin}) {why}"));
    let uri: Uri = url.parse().map_err(|_| bad("is not a URL: expected http://host:port"))?;
    match uri.scheme_str() {
        None | Some("http") => {}
        Some("https") => return Err(bad("uses https://, which is not supported: give an http:// proxy (https requests still travel encrypted through its CONNECT tunnel)")),
        Some(other) => return Err(bad(&format!("uses the unsupported scheme {other:?}: expected http://host:port"))),
    }
    match uri.host() {
        Some(host) if !host.is_empty() => Ok(()),
        _ => Err(bad("has no host: expected http://host:port")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_must_be_plain_http_and_are_never_echoed_with_secrets() {
        for ok in ["http://127.0.0.1:3128", "proxy.example.com:8080", "http://u:p@h:1"] {
            assert!(check_proxy_url(ok, "test").is_ok(), "{ok}");
        }
        for bad in ["https://u:S3cr3t@h:1", "socks5://u:S3cr3t@h:1", "http://u:S3cr3t@", "not a url"] {
            let err = check_proxy_url(bad, "test").unwrap_err();
            assert_eq!(err.kind, ErrorKind::Config, "{bad}");
            assert!(!err.message.contains("S3cr3t"), "{err}");
        }
    }

    #[test]
    fn proxy_option_applies_to_every_destination_with_credentials_only_for_plain_http() {
        let options = ClientOptions { proxy: Some("http://user:pw@127.0.0.1:3128".into()), ..Default::default() };
        let connector = build(&options).unwrap();
        let plain: Uri = "http://localhost:9000/b/k".parse().unwrap();
        let tls: Uri = "https://s3.amazonaws.com/b/k".parse().unwrap();
        let auth = connector.proxy_authorization(&plain).expect("plain http through the proxy");
        assert_eq!(auth, "Basic dXNlcjpwdw==");
        assert!(connector.proxy_authorization(&tls).is_none());
        assert!(!format!("{connector:?}").contains("pw"), "{connector:?}");
    }

    #[test]
    fn unreadable_or_empty_bundles_fail_with_path_and_reason() {
        let dir = std::env::temp_dir().join(format!("fasts3-bundle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        for (path, reason) in [
            (dir.join("missing.pem"), "cannot be read"),
            (empty.clone(), "holds no PEM certificate"),
            (garbage.clone(), "none of which parses"),
            (dir.clone(), "directory"),
        ] {
            let options = ClientOptions { ca_bundle: Some(path.clone()), ..Default::default() };
            let err = build(&options).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Config, "{path:?}");
            assert!(err.message.contains(&path.display().to_string()) && err.message.contains(reason), "{err}");
        }
        // verify=false never reads the bundle.
        let options = ClientOptions { ca_bundle: Some(empty), verify: false, ..Default::default() };
        assert!(build(&options).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
