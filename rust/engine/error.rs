//! One error type for the whole engine: a kind (which becomes the C status), plus the S3
//! error code, message and HTTP status when the server supplied them.

use crate::tls;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::RequestId;
use aws_smithy_types::error::display::DisplayErrorContext;
use std::fmt;

pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong, at the granularity a caller acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidArgument,
    NoSuchKey,
    NoSuchBucket,
    AccessDenied,
    /// The requested range cannot be satisfied (416 from the server in a case we do not map to EOF).
    InvalidRange,
    /// The object changed between the first and a later ranged GET (`If-Match` failed).
    ObjectChanged,
    /// A conditional write's condition failed (HTTP 412): with `if_none_match`, the key
    /// exists already.
    PreconditionFailed,
    /// The bytes received do not match the checksum the server sent for them.
    ChecksumMismatch,
    /// `checksum="required"` and nothing the server sent can verify the bytes read.
    ChecksumUnavailable,
    Throttled,
    Network,
    Timeout,
    /// A TLS handshake failed: a certificate the client does not trust (or not valid for the
    /// host, or expired), or an endpoint that does not speak TLS. Not retried.
    Tls,
    Cancelled,
    /// Credentials, region or profile could not be resolved.
    Config,
    /// The server answered something that breaks the protocol (wrong range, short body...).
    Protocol,
    /// A result buffer could not be allocated.
    OutOfMemory,
    /// Any other error response from S3.
    S3Other,
}

#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    /// The S3 error code (`NoSuchKey`, `SlowDown`...), or empty when there was no response.
    pub code: String,
    pub message: String,
    /// HTTP status of the failing response, 0 when there was none.
    pub http_status: u16,
    /// The server's id of the failing request (`x-amz-request-id`), empty when unknown.
    pub request_id: String,
    /// The request failed before any response arrived, in a way the SDK does not retry
    /// (e.g. what came back on a reused connection did not parse): another attempt, on a
    /// fresh connection, may succeed.
    pub retry_on_fresh_connection: bool,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            code: String::new(),
            message: message.into(),
            http_status: 0,
            request_id: String::new(),
            retry_on_fresh_connection: false,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    pub fn cancelled() -> Self {
        Self::new(ErrorKind::Cancelled, "the operation was cancelled")
    }

    pub fn protocol(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, message)
    }

    /// Prefix the message with where it happened (`bucket/key`, part range...).
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// True for failures worth another attempt of the same request.
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, ErrorKind::Network | ErrorKind::Timeout | ErrorKind::Throttled)
            || (self.kind == ErrorKind::S3Other && self.http_status >= 500)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.code.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{} ({}): {}", self.code, self.http_status, self.message)
        }
    }
}

impl std::error::Error for Error {}

/// Map an S3 error code (and HTTP status, for bodiless responses such as HEAD) to a kind.
pub fn kind_for(code: &str, http_status: u16) -> ErrorKind {
    match code {
        "NoSuchKey" | "NotFound" => ErrorKind::NoSuchKey,
        "NoSuchBucket" => ErrorKind::NoSuchBucket,
        "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "Forbidden"
        | "ExpiredToken" | "InvalidToken" | "AllAccessDisabled" => ErrorKind::AccessDenied,
        "PreconditionFailed" => ErrorKind::ObjectChanged,
        "InvalidRange" => ErrorKind::InvalidRange,
        "SlowDown" | "Throttling" | "ThrottlingException" | "RequestLimitExceeded"
        | "TooManyRequests" => ErrorKind::Throttled,
        // Bodiless responses (HEAD) carry no code: the status is all there is. An unknown
        // code with a 404 is something else (e.g. a server's admin error), not a missing key.
        _ => match http_status {
            404 if code.is_empty() => ErrorKind::NoSuchKey,
            403 => ErrorKind::AccessDenied,
            412 => ErrorKind::ObjectChanged,
            416 => ErrorKind::InvalidRange,
            429 | 503 => ErrorKind::Throttled,
            _ => ErrorKind::S3Other,
        },
    }
}

impl<E, R> From<SdkError<E, R>> for Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug + HttpStatus + 'static,
{
    fn from(err: SdkError<E, R>) -> Self {
        match &err {
            SdkError::ServiceError(ctx) => {
                let http_status = ctx.raw().status_u16();
                let code = match ctx.err().code() {
                    Some(c) if !c.is_empty() => c.to_string(),
                    _ => code_for_bodiless(http_status).to_string(),
                };
                let message = match ctx.err().message() {
                    Some(m) if !m.is_empty() => m.to_string(),
                    _ => default_message(&code, http_status),
                };
                let request_id = ctx.err().meta().request_id().unwrap_or_default().to_string();
                Error { kind: kind_for(&code, http_status), code, message, http_status, request_id, retry_on_fresh_connection: false }
            }
            SdkError::TimeoutError(_) => {
                Error::new(ErrorKind::Timeout, DisplayErrorContext(&err).to_string())
            }
            SdkError::DispatchFailure(d) => {
                if let Some(failure) = tls::find_tls_failure(&err) {
                    return failure.to_error();
                }
                if let Some(cause) = tls::handshake_failure(&err) {
                    // From a connector that is not ours (e.g. a credential provider's).
                    return tls::TlsFailure::new("the server", cause.clone()).to_error();
                }
                let kind = if d.is_timeout() {
                    ErrorKind::Timeout
                } else if d.is_io() {
                    ErrorKind::Network
                } else if d.is_user() || caused_by_credentials(&err) {
                    // Identity resolution fails before anything is sent: not a network issue.
                    ErrorKind::Config
                } else {
                    ErrorKind::Network
                };
                let mut error = Error::new(kind, DisplayErrorContext(&err).to_string());
                error.retry_on_fresh_connection = kind == ErrorKind::Network && d.is_other();
                error
            }
            SdkError::ResponseError(_) => {
                Error::new(ErrorKind::Network, DisplayErrorContext(&err).to_string())
            }
            SdkError::ConstructionFailure(_) => {
                Error::new(ErrorKind::Config, DisplayErrorContext(&err).to_string())
            }
            _ => Error::new(ErrorKind::S3Other, DisplayErrorContext(&err).to_string()),
        }
    }
}

/// The S3 code a bodiless error response (HEAD) stands for.
pub(crate) fn code_for_bodiless(http_status: u16) -> &'static str {
    match http_status {
        403 => "AccessDenied",
        404 => "NotFound",
        412 => "PreconditionFailed",
        416 => "InvalidRange",
        503 => "SlowDown",
        _ => "",
    }
}

fn caused_by_credentials(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if e.downcast_ref::<aws_credential_types::provider::error::CredentialsError>().is_some() {
            return true;
        }
        source = e.source();
    }
    false
}

pub(crate) fn default_message(code: &str, http_status: u16) -> String {
    match (code, http_status) {
        (_, 404) => "not found".into(),
        (_, 403) => "access denied".into(),
        (_, 412) => "precondition failed: the object changed".into(),
        ("", s) => format!("HTTP {s} with no error body"),
        (c, _) => c.to_string(),
    }
}

/// The raw response type differs per operation generic; all we need from it is the status.
pub trait HttpStatus {
    fn status_u16(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_u16(&self) -> u16 {
        self.status().as_u16()
    }
}
