//! [`LookupFuture`]: a [`SqlKeyStore`](super::SqlKeyStore) lookup, ready at once unless it
//! must ask the database.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower::BoxError;

use crate::server::KeyRecord;

type Answer = Result<Option<KeyRecord>, BoxError>;

/// The future of a [`SqlKeyStore`](super::SqlKeyStore) lookup.
///
/// Ready at once when the snapshot or a cache answers; a database query (boxed: off the hot
/// path) when a lookup-through store's caches miss. See the [module docs](super) for an example.
pub struct LookupFuture {
    state: State,
}

enum State {
    Ready(Option<Answer>),
    Query(Pin<Box<dyn Future<Output = Answer> + Send>>),
}

impl LookupFuture {
    pub(super) fn ready(answer: Answer) -> Self {
        Self {
            state: State::Ready(Some(answer)),
        }
    }

    pub(super) fn query(query: impl Future<Output = Answer> + Send + 'static) -> Self {
        Self {
            state: State::Query(Box::pin(query)),
        }
    }
}

impl Future for LookupFuture {
    type Output = Answer;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        // Both states are `Unpin`.
        match &mut self.get_mut().state {
            State::Ready(answer) => {
                Poll::Ready(answer.take().expect("LookupFuture polled after completion"))
            }
            State::Query(query) => query.as_mut().poll(cx),
        }
    }
}

impl fmt::Debug for LookupFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Ready(_) => "ready",
            State::Query(_) => "querying the database",
        };
        f.debug_struct("LookupFuture")
            .field("state", &state)
            .finish()
    }
}
