//! Cancellation shared between the thread running a call and any other thread.

use crate::error::{Error, Result};
use std::future::Future;
use tokio_util::sync::CancellationToken;

/// A token another thread can trigger to stop a running call. Cheap to clone; all clones
/// share one state. Once cancelled it stays cancelled (make a new token for the next call).
#[derive(Clone, Debug, Default)]
pub struct CancelToken(CancellationToken);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.cancel()
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }

    /// Run `fut` unless/until the token fires. On cancellation `fut` is dropped right here,
    /// on this thread: every part future (and so every write into a caller buffer) is gone
    /// before this returns.
    pub async fn run<T>(token: Option<&CancelToken>, fut: impl Future<Output = Result<T>>) -> Result<T> {
        match token {
            None => fut.await,
            Some(t) => {
                if t.is_cancelled() {
                    return Err(Error::cancelled());
                }
                tokio::select! {
                    biased;
                    _ = t.0.cancelled() => Err(Error::cancelled()),
                    r = fut => r,
                }
            }
        }
    }
}
