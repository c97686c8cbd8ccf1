//! A response body read chunk by chunk, with stalled-body detection.

use crate::error::{Error, ErrorKind, Result};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::time::Duration;

/// A response body. A body that delivers nothing for the stall grace period fails with a
/// `Network` error (transient: a read resumes after the bytes it has), as the SDK's
/// stalled-stream protection does.
pub(crate) struct Body {
    incoming: Incoming,
    stall_grace: Duration,
}

impl Body {
    pub(super) fn new(incoming: Incoming, stall_grace: Duration) -> Body {
        Body { incoming, stall_grace }
    }

    /// The next chunk of data; None at the end of the body. A body shorter than its
    /// Content-Length ends with an error, never with None.
    pub async fn next(&mut self) -> Option<Result<Bytes>> {
        loop {
            let frame = match tokio::time::timeout(self.stall_grace, self.incoming.frame()).await {
                Err(_) => {
                    return Some(Err(Error::new(
                        ErrorKind::Network,
                        format!("the body stalled: no byte for {:?}", self.stall_grace),
                    )))
                }
                Ok(None) => return None,
                Ok(Some(Err(e))) => {
                    return Some(Err(Error::new(ErrorKind::Network, format!("reading the body failed: {e}"))))
                }
                Ok(Some(Ok(frame))) => frame,
            };
            // Trailers carry no data: skip them.
            if let Ok(data) = frame.into_data() {
                if !data.is_empty() {
                    return Some(Ok(data));
                }
            }
        }
    }
}
