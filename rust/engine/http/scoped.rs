//! Connections that live inside one call's future instead of as runtime tasks.
//!
//! hyper runs each HTTP/1.1 connection as a future handed to an executor; normally that is
//! `tokio::spawn`, so a connection (and any request body it still holds in its write queue or
//! dispatch channel) can outlive the call that opened it. An upload whose bodies borrow the
//! caller's memory cannot allow that: here the "executor" only queues the futures, and the
//! call polls them itself through [`Connections::drive`]. When the call's future ends or is
//! dropped, its `Connections` is dropped with it, and every connection and body goes too.

use futures_util::stream::{FuturesUnordered, StreamExt};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Default)]
struct Queue {
    new: Vec<Task>,
    /// Woken when a future is queued, so `drive` picks it up.
    waker: Option<Waker>,
}

/// The executor hyper-util's client is built with: it queues what it is given.
#[derive(Clone)]
pub(super) struct QueueExecutor(Arc<Mutex<Queue>>);

impl hyper::rt::Executor<Task> for QueueExecutor {
    fn execute(&self, fut: Task) {
        let waker = {
            let mut queue = self.0.lock().unwrap_or_else(|p| p.into_inner());
            queue.new.push(fut);
            queue.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The connection futures of one call's data plane (see `DataPlane::scoped_to_call`).
pub(crate) struct Connections {
    queue: Arc<Mutex<Queue>>,
    running: FuturesUnordered<Task>,
}

pub(super) fn executor() -> (QueueExecutor, Connections) {
    let queue = Arc::new(Mutex::new(Queue::default()));
    (QueueExecutor(queue.clone()), Connections { queue, running: FuturesUnordered::new() })
}

impl Connections {
    /// Poll the connections for as long as this future is polled; it never completes. Run it
    /// beside the requests (`tokio::select!`), in the same task.
    pub async fn drive(&mut self) -> std::convert::Infallible {
        std::future::poll_fn(|cx| self.poll_all(cx)).await
    }

    fn poll_all(&mut self, cx: &mut Context<'_>) -> Poll<std::convert::Infallible> {
        loop {
            {
                let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                self.running.extend(queue.new.drain(..));
                // Registered under the lock: a future queued after this is seen by the wake.
                queue.waker = Some(cx.waker().clone());
            }
            match self.running.poll_next_unpin(cx) {
                Poll::Ready(Some(())) => continue, // one ended: look again
                Poll::Ready(None) | Poll::Pending => {
                    let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                    if queue.new.is_empty() {
                        return Poll::Pending;
                    }
                }
            }
        }
    }
}
