//! Which failed requests are sent again, and after how long: the AWS SDKs' "standard" mode.

use crate::error::{Error, ErrorKind};
use aws_smithy_types::retry::RetryConfig;
use std::time::Duration;

/// How many attempts a request gets, and the backoff between them.
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl RetryPolicy {
    /// From the retry configuration aws-config resolved (the client's `max_attempts`, else
    /// `AWS_MAX_ATTEMPTS` / `AWS_RETRY_MODE` or the profile's `max_attempts` / `retry_mode`;
    /// default 3 attempts). "adaptive" mode's client-side rate limiter is not implemented:
    /// it retries as "standard" does.
    pub fn from_config(config: Option<&RetryConfig>) -> RetryPolicy {
        let standard = RetryConfig::standard();
        let config = config.unwrap_or(&standard);
        RetryPolicy {
            max_attempts: config.max_attempts().max(1),
            initial_backoff: config.initial_backoff(),
            max_backoff: config.max_backoff(),
        }
    }

    /// Whether a request whose attempt number `attempt` (1-based) failed with `err` is sent
    /// again.
    pub fn should_retry(&self, err: &Error, attempt: u32) -> bool {
        attempt < self.max_attempts && is_retryable(err)
    }

    /// Full jitter: uniform in [0, min(initial * 2^(attempt-1), max)].
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.initial_backoff.saturating_mul(1u32 << (attempt - 1).min(16));
        exp.min(self.max_backoff).mul_f64(fastrand::f64())
    }
}

/// The SDKs' standard classification: connection failures, timeouts, 5xx, throttling, and
/// S3's transient codes.
fn is_retryable(err: &Error) -> bool {
    match err.kind {
        ErrorKind::Network | ErrorKind::Timeout | ErrorKind::Throttled => true,
        _ => {
            matches!(err.http_status, 500 | 502 | 503 | 504)
                || matches!(
                    err.code.as_str(),
                    "RequestTimeout" | "RequestTimeoutException" | "InternalError" | "PriorRequestNotComplete"
                )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_transient_failures_until_the_budget_is_spent() {
        let policy = RetryPolicy::from_config(Some(&RetryConfig::standard().with_max_attempts(3)));
        let throttled = Error::new(ErrorKind::Throttled, "SlowDown");
        assert!(policy.should_retry(&throttled, 1));
        assert!(policy.should_retry(&throttled, 2));
        assert!(!policy.should_retry(&throttled, 3));
        let mut internal = Error::new(ErrorKind::S3Other, "x");
        internal.http_status = 500;
        assert!(policy.should_retry(&internal, 1));
        let mut timeout = Error::new(ErrorKind::S3Other, "x");
        timeout.http_status = 400;
        timeout.code = "RequestTimeout".into();
        assert!(policy.should_retry(&timeout, 1));
        assert!(!policy.should_retry(&Error::new(ErrorKind::NoSuchKey, "x"), 1));
        assert!(!policy.should_retry(&Error::new(ErrorKind::AccessDenied, "x"), 1));
        assert!(!policy.should_retry(&Error::new(ErrorKind::Tls, "x"), 1));
    }

    #[test]
    fn backoff_is_jittered_below_an_exponential_cap() {
        let policy = RetryPolicy::from_config(Some(
            &RetryConfig::standard().with_initial_backoff(Duration::from_millis(100)).with_max_backoff(Duration::from_secs(1)),
        ));
        for _ in 0..100 {
            assert!(policy.backoff(1) <= Duration::from_millis(100));
            assert!(policy.backoff(3) <= Duration::from_millis(400));
            assert!(policy.backoff(30) <= Duration::from_secs(1));
        }
    }
}
