//! A response body read chunk by chunk, with stalled-body detection; or, for a GET read on
//! our own connections (`direct`), straight into the caller's buffer.

use super::direct::DirectBody;
use crate::error::{Error, ErrorKind, Result};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::time::Duration;

/// A response body. A body that delivers nothing for the stall grace period fails with a
/// `Network` error (transient: a read resumes after the bytes it has), as the SDK's
/// stalled-stream protection does.
pub(crate) struct Body {
    inner: Inner,
}

enum Inner {
    /// Read by hyper into its buffers, handed out as chunks.
    Hyper { incoming: Incoming, stall_grace: Duration },
    /// `Content-Length` bytes on a connection of `direct`'s pool.
    Direct(DirectBody),
}

impl Body {
    pub(super) fn new(incoming: Incoming, stall_grace: Duration) -> Body {
        Body { inner: Inner::Hyper { incoming, stall_grace } }
    }

    pub(super) fn direct(body: DirectBody) -> Body {
        Body { inner: Inner::Direct(body) }
    }

    /// The body as one that reads into a caller's buffer, when it is one (`direct`).
    pub fn as_direct(&mut self) -> Option<&mut DirectBody> {
        match &mut self.inner {
            Inner::Direct(body) => Some(body),
            Inner::Hyper { .. } => None,
        }
    }

    /// The next chunk of data; None at the end of the body. A body shorter than its
    /// Content-Length ends with an error, never with None.
    pub async fn next(&mut self) -> Option<Result<Bytes>> {
        let (incoming, stall_grace) = match &mut self.inner {
            Inner::Direct(body) => return body.next().await,
            Inner::Hyper { incoming, stall_grace } => (incoming, *stall_grace),
        };
        loop {
            let frame = match tokio::time::timeout(stall_grace, incoming.frame()).await {
                Err(_) => {
                    return Some(Err(Error::new(
                        ErrorKind::Network,
                        format!("the body stalled: no byte for {stall_grace:?}"),
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

    /// The body's first `limit` bytes (an error response's XML); whatever came before a
    /// failure or the limit.
    pub async fn first_bytes(mut self, limit: usize) -> Bytes {
        let mut collected = Vec::new();
        while collected.len() < limit {
            match self.next().await {
                Some(Ok(chunk)) => collected.extend_from_slice(&chunk[..chunk.len().min(limit - collected.len())]),
                _ => break,
            }
        }
        Bytes::from(collected)
    }
}
