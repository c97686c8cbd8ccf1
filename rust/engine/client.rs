//! Client configuration and the SDK client behind it (rebuilt in a forked child).

use crate::checksum::ChecksumMode;
use crate::error::{Error, ErrorKind, Result};
use crate::parts::PartPlan;
use crate::runtime::{PidBound, Placement};
use crate::connector::{self, Connector};
use crate::http::{DataPlane, EndpointConfig, RetryPolicy};
use crate::sdk_http::SdkHttpClient;
use crate::tls::TlsAwareHttpClient;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{AppName, BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation, SharedHttpClient};
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Largest part_size accepted (S3's largest single PUT; keeps range arithmetic far from
/// overflow).
pub(crate) const MAX_PART_SIZE: u64 = 5 << 30;
/// Default bound on HTTP requests in flight per client.
pub const DEFAULT_MAX_CONCURRENCY: usize = 16;
/// Time allowed to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed from sending a request to its response headers. A body that stops flowing
/// is caught separately by the SDK's stalled-stream protection (no progress for 5 s, or for
/// the read timeout when shorter) and resumed. boto3 uses 60 s for both.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// A body that delivers nothing for this long is cut and resumed (the SDK's stalled-stream
/// protection; 5 s is its default), or for `read_timeout` when that is shorter: a caller who
/// asks for a 1 s read timeout expects a silent body to count as stalled after 1 s too.
const MAX_STALL_GRACE: Duration = Duration::from_secs(5);

fn stall_grace(read_timeout: Duration) -> Duration {
    read_timeout.min(MAX_STALL_GRACE)
}

/// How requests name pyfasts3 in their User-Agent (the SDK adds `app/` before it).
const USER_AGENT_APP: &str = concat!("pyfasts3-", env!("CARGO_PKG_VERSION"));
/// The data plane's User-Agent (its requests do not go through the SDK).
const USER_AGENT: &str = concat!("pyfasts3/", env!("CARGO_PKG_VERSION"), " app/pyfasts3-", env!("CARGO_PKG_VERSION"));
/// S3 answers a region-less client from us-east-1, as boto3 assumes.
const FALLBACK_REGION: &str = "us-east-1";

/// How bucket names go into request URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PathStyle {
    /// Virtual-hosted on AWS; path-style when the endpoint is an IP address or localhost,
    /// where `bucket.host` cannot resolve.
    #[default]
    Auto,
    VirtualHosted,
    Path,
}

/// Everything a client is built from. Unset fields come from the AWS environment
/// (env vars, shared config/credentials files, profiles, web identity, IMDS).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub profile: Option<String>,
    /// Send unsigned requests (public buckets).
    pub anonymous: bool,
    pub path_style: PathStyle,
    /// Requests in flight per client; 0 means [`DEFAULT_MAX_CONCURRENCY`].
    pub max_concurrency: usize,
    /// Bytes per ranged GET; 0 means adaptive (see `engine::parts`).
    pub part_size: u64,
    /// None means [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Option<Duration>,
    /// None means [`DEFAULT_READ_TIMEOUT`].
    pub read_timeout: Option<Duration>,
    /// Whether reads ask for and verify `x-amz-checksum-*` values (see `engine::checksum`).
    pub checksum: ChecksumMode,
    /// A PEM file of CA certificates to trust besides the system roots. None: AWS_CA_BUNDLE,
    /// the profile's `ca_bundle`, REQUESTS_CA_BUNDLE (see `engine::connector`).
    pub ca_bundle: Option<PathBuf>,
    /// false: accept any server certificate (explicit choice only; default true).
    pub verify: bool,
    /// `http://[user:password@]host:port` for every request. None: HTTPS_PROXY / HTTP_PROXY /
    /// NO_PROXY. Never shown with its credentials.
    pub proxy: Option<String>,
    /// Attempts per request (first try included). None: `AWS_MAX_ATTEMPTS`, the profile's
    /// `max_attempts`, else 3.
    pub max_attempts: Option<u32>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            endpoint_url: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            profile: None,
            anonymous: false,
            path_style: PathStyle::default(),
            max_concurrency: 0,
            part_size: 0,
            connect_timeout: None,
            read_timeout: None,
            checksum: ChecksumMode::default(),
            ca_bundle: None,
            verify: true,
            proxy: None,
            max_attempts: None,
        }
    }
}

impl ClientOptions {
    fn validate(&self) -> Result<()> {
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return Err(Error::invalid(
                "access_key_id and secret_access_key must be given together",
            ));
        }
        if self.session_token.is_some() && self.access_key_id.is_none() {
            return Err(Error::invalid("session_token needs access_key_id and secret_access_key"));
        }
        if self.anonymous && self.access_key_id.is_some() {
            return Err(Error::invalid("anonymous=true conflicts with explicit credentials"));
        }
        if let Some(url) = &self.endpoint_url {
            endpoint_host(url)?;
            refuse_userinfo(url).map_err(|m| Error::invalid(format!("endpoint_url {m}")))?;
        }
        if let Some(region) = &self.region {
            check_region(region)?;
        }
        if self.max_attempts == Some(0) {
            return Err(Error::invalid("max_attempts must be at least 1"));
        }
        if self.part_size > MAX_PART_SIZE {
            return Err(Error::invalid(format!("part_size must be at most 5 GiB, got {}", self.part_size)));
        }
        Ok(())
    }

    /// The endpoint that decides automatic path-style: explicit, else the env vars
    /// boto3 and the AWS SDKs read.
    fn effective_endpoint(&self) -> Option<String> {
        if self.endpoint_url.is_some() {
            return self.endpoint_url.clone();
        }
        let ignore = std::env::var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .map(|v| v.eq_ignore_ascii_case("true"))
            .unwrap_or(false);
        if ignore {
            return None;
        }
        ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|v| !v.is_empty())
    }

    /// `config_endpoint`: what aws-config resolved (it also reads `endpoint_url` from the
    /// shared config profile, which boto3 honours too).
    fn use_path_style(&self, config_endpoint: Option<&str>) -> bool {
        match self.path_style {
            PathStyle::Path => true,
            PathStyle::VirtualHosted => false,
            PathStyle::Auto => self
                .effective_endpoint()
                .or_else(|| config_endpoint.map(str::to_string))
                .and_then(|url| endpoint_host(&url).ok())
                .map(|host| host_needs_path_style(&host))
                .unwrap_or(false),
        }
    }
}

fn endpoint_host(url: &str) -> Result<String> {
    let shown = redact_userinfo(url);
    let uri: http::Uri = url
        .parse()
        .map_err(|e| Error::invalid(format!("endpoint_url {shown:?} is not a URL: {e}")))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(host)) => Ok(host.to_string()),
        _ => Err(Error::invalid(format!(
            "endpoint_url {shown:?} must look like http(s)://host[:port]"
        ))),
    }
}

/// `url` with any `user:password@` replaced by `***@`, for messages. Textual, so that it
/// also covers strings that do not parse as URLs.
pub(crate) fn redact_userinfo(url: &str) -> std::borrow::Cow<'_, str> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]).into(),
        None => url.into(),
    }
}

/// Credentials in an endpoint URL (`http://user:secret@host`) are refused rather than
/// stripped: S3 would ignore them (requests are signed with the access keys), and a secret
/// in a URL ends up in logs and reprs. The message never repeats the secret.
fn refuse_userinfo(url: &str) -> std::result::Result<(), String> {
    let shown = redact_userinfo(url);
    if shown == url {
        return Ok(());
    }
    Err(format!(
        "{shown:?} holds credentials (user:password@), which S3 does not use: remove them and \
         give keys as access_key_id/secret_access_key or through the AWS environment"
    ))
}

/// What the AWS endpoint rules accept as a region (`isValidHostLabel(Region, true)`):
/// dot-separated labels of 1-63 ASCII letters, digits and '-', none starting with '-'.
/// Anything else would fail, or worse build a URL for another host, on the first request.
pub(crate) fn check_region(region: &str) -> Result<()> {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if region.split('.').all(label_ok) {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Config,
        format!(
            "region {region:?} is not a valid region name: expected labels of letters, digits \
             and '-' (e.g. \"us-east-1\"), 1-63 characters each, separated by dots"
        ),
    ))
}

fn host_needs_path_style(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>().is_ok()
        || bare.eq_ignore_ascii_case("localhost")
        || bare.to_ascii_lowercase().ends_with(".localhost")
}

/// The state a client's requests run with: SDK client, data plane (connection pool), request
/// budget.
/// One per process for the shared runtime's workers, plus one per calling thread (sharing
/// the budget and the credentials cache), whose connections live on that thread's runtime.
#[derive(Clone)]
pub(crate) struct Session {
    /// Listings, HEAD bucket: the operations off the hot path.
    pub s3: aws_sdk_s3::Client,
    /// GET and HEAD of objects (`engine::http`).
    pub plane: DataPlane,
    /// Whether GETs ask for `x-amz-checksum-*` (the client's checksum mode wants them).
    pub ask_for_checksums: bool,
    /// Bounds requests in flight across every call sharing this client.
    pub permits: Arc<Semaphore>,
}

impl Session {
    /// A slot of the client's request budget, held for one HTTP request (and its body).
    pub async fn acquire(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::new(ErrorKind::Cancelled, "client is shutting down"))
    }
}

/// An S3 client. Safe to share across threads; calls may run concurrently.
pub struct Client {
    options: ClientOptions,
    /// How every connection of this client is made (trust, proxy, timeouts); shared by all
    /// its HTTP clients.
    connector: Connector,
    parts: PartPlan,
    max_concurrency: usize,
    /// The shared runtime's session. A forked child rebuilds it: pooled connections and the
    /// semaphore's state belong to the parent.
    session: Mutex<Option<PidBound<Session>>>,
    /// Identifies this client's per-thread sessions. Once the client is gone, each thread
    /// drops its session (closing its idle connections) at its next call or when it exits.
    id: u64,
    alive: Arc<()>,
}

thread_local! {
    /// This thread's sessions, one per live client it has called (see `Client::session`).
    static THREAD_SESSIONS: RefCell<Vec<PidBound<ThreadSession>>> = const { RefCell::new(Vec::new()) };
}

struct ThreadSession {
    client_id: u64,
    client_alive: Weak<()>,
    session: Session,
}

impl Client {
    /// Build a client. Resolves configuration now (blocking on the shared runtime), so bad
    /// options fail here; credentials themselves are fetched lazily on first request.
    pub fn new(options: ClientOptions) -> Result<Arc<Client>> {
        options.validate()?;
        let connector = connector::build(&options)?;
        let client = Client {
            connector,
            parts: if options.part_size == 0 { PartPlan::adaptive() } else { PartPlan::fixed(options.part_size) },
            max_concurrency: if options.max_concurrency == 0 {
                DEFAULT_MAX_CONCURRENCY
            } else {
                options.max_concurrency
            },
            options,
            session: Mutex::new(None),
            id: NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed),
            alive: Arc::new(()),
        };
        crate::runtime::block_on(client.shared_session())?;
        Ok(Arc::new(client))
    }

    pub fn parts(&self) -> PartPlan {
        self.parts
    }

    pub fn checksum_mode(&self) -> ChecksumMode {
        self.options.checksum
    }

    pub fn max_concurrency(&self) -> usize {
        self.max_concurrency
    }

    /// The session for code placed as `placement` says: the calling thread's own (its
    /// connections must be driven by this thread's runtime), else the shared one.
    pub(crate) async fn session(&self, placement: Placement) -> Result<Session> {
        if let Placement::Workers | Placement::WorkersSpreading(_) = placement {
            return self.shared_session().await;
        }
        if let Some(session) = self.thread_session() {
            return Ok(session);
        }
        let shared = self.shared_session().await?;
        Ok(self.add_thread_session(&shared))
    }

    /// This thread's session, if it made one already.
    fn thread_session(&self) -> Option<Session> {
        THREAD_SESSIONS.with(|cell| {
            let mut sessions = cell.borrow_mut();
            // Close the connections of clients that are gone; the parent's, inherited across
            // fork(), are leaked instead (see PidBound).
            sessions.retain(|s| s.is_ours() && s.client_alive.strong_count() > 0);
            sessions.iter().find(|s| s.client_id == self.id).map(|s| s.session.clone())
        })
    }

    /// Make this thread's session from the shared one's configuration, with an HTTP client
    /// (connection pool) of its own.
    fn add_thread_session(&self, shared: &Session) -> Session {
        let conf = shared.s3.config().to_builder().http_client(http_client(&self.connector)).build();
        let session = Session {
            s3: aws_sdk_s3::Client::from_conf(conf),
            plane: shared.plane.with_own_pool(),
            ask_for_checksums: shared.ask_for_checksums,
            permits: shared.permits.clone(),
        };
        THREAD_SESSIONS.with(|cell| {
            cell.borrow_mut().push(PidBound::new(ThreadSession {
                client_id: self.id,
                client_alive: Arc::downgrade(&self.alive),
                session: session.clone(),
            }))
        });
        session
    }

    /// The session and placement for the pieces of a call polled with `placement`: pieces that
    /// `placement` spreads run on the shared workers, with the shared session, as
    /// `Placement::Workers`; otherwise they run where the call does.
    pub(crate) async fn piece_session(&self, placement: Placement) -> (Result<Session>, Placement) {
        if placement.spreads() {
            (self.shared_session().await, Placement::Workers)
        } else {
            (self.session(placement).await, placement)
        }
    }

    /// The session of the shared runtime (for work on its workers, e.g. `runtime::on_workers`),
    /// built on first use and again after fork().
    pub(crate) async fn shared_session(&self) -> Result<Session> {
        {
            let mut slot = self.session.lock().unwrap_or_else(|p| p.into_inner());
            match slot.as_ref() {
                Some(session) if session.is_ours() => return Ok(Session::clone(session)),
                _ => drop(slot.take()), // inherited across fork(): leaked, see PidBound
            }
        }
        // Boxed: configuration loading is a large future, awaited once per client, and every
        // call's future would otherwise carry its state inline.
        let fresh = Box::pin(self.build_session()).await?;
        let mut slot = self.session.lock().unwrap_or_else(|p| p.into_inner());
        // Another call may have built one meanwhile: everyone uses the first.
        Ok(Session::clone(slot.get_or_insert_with(|| PidBound::new(fresh))))
    }

    async fn build_session(&self) -> Result<Session> {
        let o = &self.options;
        // Credential providers (IMDS, STS, SSO...) get an HTTP client that keeps no idle
        // connections: they load inline on whichever runtime asks, and a pooled connection
        // made on one calling thread's runtime would stall when another thread reused it.
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(unpooled_http_client(&self.connector))
            // Checksums only where S3 requires them: a CRC over every byte would cost more
            // CPU than the copy itself, and ranged GETs carry no full-object checksum anyway.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .stalled_stream_protection(
                StalledStreamProtectionConfig::enabled()
                    .grace_period(stall_grace(o.read_timeout.unwrap_or(DEFAULT_READ_TIMEOUT)))
                    .build(),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(o.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
                    .read_timeout(o.read_timeout.unwrap_or(DEFAULT_READ_TIMEOUT))
                    .build(),
            );
        if let Some(max_attempts) = o.max_attempts {
            loader = loader.retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(max_attempts));
        }
        if let Some(profile) = &o.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &o.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &o.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if o.anonymous {
            loader = loader.no_credentials();
        } else if let (Some(ak), Some(sk)) = (&o.access_key_id, &o.secret_access_key) {
            let creds = Credentials::new(ak, sk, o.session_token.clone(), None, "pyfasts3");
            loader = loader.credentials_provider(creds);
        }
        let sdk = loader.load().await;
        // Also what came from the environment or the shared config file.
        let endpoint_url = s3_endpoint_url(o, &sdk);
        for url in [sdk.endpoint_url(), endpoint_url.as_deref()].into_iter().flatten() {
            refuse_userinfo(url).map_err(|m| Error::new(ErrorKind::Config, format!("the configured endpoint URL {m}")))?;
        }
        let region = sdk
            .region()
            .cloned()
            .unwrap_or_else(|| Region::new(FALLBACK_REGION));
        check_region(region.as_ref())?;
        let force_path_style = o.use_path_style(sdk.endpoint_url());
        let plane = DataPlane::new(crate::http::Settings {
            credentials: sdk.credentials_provider(),
            endpoint: EndpointConfig {
                region: region.to_string(),
                endpoint_url,
                force_path_style,
                use_fips: sdk.use_fips().unwrap_or(false),
                use_dual_stack: sdk.use_dual_stack().unwrap_or(false),
            },
            retry: RetryPolicy::from_config(sdk.retry_config()),
            connector: self.connector.clone(),
            read_timeout: o.read_timeout.unwrap_or(DEFAULT_READ_TIMEOUT),
            stall_grace: stall_grace(o.read_timeout.unwrap_or(DEFAULT_READ_TIMEOUT)),
            user_agent: USER_AGENT,
        })?;
        let conf = aws_sdk_s3::config::Builder::from(&sdk)
            // Servers' logs name the caller: the User-Agent ends in `app/pyfasts3-<version>`.
            .app_name(AppName::new(USER_AGENT_APP).expect("a valid app name"))
            .http_client(http_client(&self.connector))
            .region(region)
            .force_path_style(force_path_style)
            .build();
        if self.max_concurrency > Semaphore::MAX_PERMITS {
            return Err(Error::new(ErrorKind::InvalidArgument, "max_concurrency is too large"));
        }
        Ok(Session {
            s3: aws_sdk_s3::Client::from_conf(conf),
            plane,
            ask_for_checksums: o.checksum.requested(),
            permits: Arc::new(Semaphore::new(self.max_concurrency)),
        })
    }
}

/// The endpoint URL the SDK's S3 client would use: the explicit option, else the S3-specific
/// setting (`AWS_ENDPOINT_URL_S3`, a profile's `services` section), else the global one.
fn s3_endpoint_url(options: &ClientOptions, sdk: &aws_config::SdkConfig) -> Option<String> {
    if let Some(url) = &options.endpoint_url {
        return Some(url.clone());
    }
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id("S3")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .expect("every field is set");
    sdk.service_config()
        .and_then(|config| config.load_config(key))
        .or_else(|| sdk.endpoint_url().map(str::to_string))
}

static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);

/// An HTTP client with a connection pool of its own, on the client's connector.
fn http_client(connector: &Connector) -> SharedHttpClient {
    let client = SharedHttpClient::new(SdkHttpClient::pooled(connector.clone()));
    SharedHttpClient::new(TlsAwareHttpClient(client))
}

/// An HTTP client that closes every connection after its request.
fn unpooled_http_client(connector: &Connector) -> SharedHttpClient {
    let client = SharedHttpClient::new(SdkHttpClient::unpooled(connector.clone()));
    SharedHttpClient::new(TlsAwareHttpClient(client))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_style_is_automatic_for_ip_and_localhost() {
        assert!(host_needs_path_style("127.0.0.1"));
        assert!(host_needs_path_style("[::1]"));
        assert!(host_needs_path_style("localhost"));
        assert!(host_needs_path_style("s3.localhost"));
        assert!(!host_needs_path_style("s3.us-east-1.amazonaws.com"));
        assert!(!host_needs_path_style("minio.example.com"));
    }

    #[test]
    fn endpoint_must_be_http_url() {
        assert_eq!(endpoint_host("http://127.0.0.1:9000").unwrap(), "127.0.0.1");
        assert!(endpoint_host("127.0.0.1:9000").is_err());
        assert!(endpoint_host("ftp://host").is_err());
    }

    #[test]
    fn userinfo_is_redacted_and_refused() {
        assert_eq!(redact_userinfo("http://u:secret@h:9/p@q"), "http://***@h:9/p@q");
        assert_eq!(redact_userinfo("u:secret@h"), "***@h");
        assert_eq!(redact_userinfo("http://a@b:secret@h"), "http://***@h");
        assert_eq!(redact_userinfo("http://h:9/x?y=a@b"), "http://h:9/x?y=a@b");
        for url in ["http://u:pw-S3cr3t@127.0.0.1:9", "http://us er:pw-S3cr3t@h", "ftp://u:pw-S3cr3t@h"] {
            let o = ClientOptions { endpoint_url: Some(url.into()), ..Default::default() };
            let err = o.validate().unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidArgument, "{url}");
            assert!(!err.message.contains("S3cr3t"), "{url}: {err}");
        }
    }

    #[test]
    fn regions_must_be_host_labels() {
        for ok in ["us-east-1", "eu-central-1", "local", "a.b-c.d1", "1"] {
            assert!(check_region(ok).is_ok(), "{ok}");
        }
        for bad in ["", "us east 1", "us-east-1!", "-us", "us..east", "us.", "us_east", "\u{fc}s", &"x".repeat(64)] {
            assert_eq!(check_region(bad).unwrap_err().kind, ErrorKind::Config, "{bad:?}");
        }
    }

    #[test]
    fn half_credentials_are_rejected() {
        let o = ClientOptions { access_key_id: Some("a".into()), ..Default::default() };
        assert_eq!(o.validate().unwrap_err().kind, ErrorKind::InvalidArgument);
    }

    #[test]
    fn part_size_is_capped_at_5_gib() {
        let ok = ClientOptions { part_size: 5 << 30, ..Default::default() };
        assert!(ok.validate().is_ok());
        let too_big = ClientOptions { part_size: (5 << 30) + 1, ..Default::default() };
        assert_eq!(too_big.validate().unwrap_err().kind, ErrorKind::InvalidArgument);
    }
}
