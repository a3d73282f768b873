//! What both token services share: the cached token, read lock-free, and a readiness that
//! waits for one.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use arc_swap::Cache;
use futures::Future;
use http::HeaderValue;

use crate::token::{Acquire, Current, CurrentCell, Flight};
use crate::{TokenCredential, TokenError};

/// The token side of [`TokenAuth`](crate::TokenAuth) and [`AttachToken`](super::AttachToken).
pub(super) struct TokenGate {
    pub(super) tokens: TokenCredential,
    current: Cache<CurrentCell, Option<Arc<Current>>>,
    wait: Wait,
}

/// What `poll_token` found about the token.
enum Wait {
    /// Nothing pending: a token was cached when the service was last made ready.
    Nothing,
    /// A token was found, and the inner service's readiness is under way. It may hold capacity
    /// already (a semaphore assigns a freed permit to its next waiter before that waiter is
    /// polled again), so the token is not waited for again until the inner service is ready:
    /// a token gone bad meanwhile is the call's to handle, and it gives the capacity back
    /// before it waits. Waiting here instead would deadlock a limit shared with the token
    /// source, whose refetch needs a permit too.
    Readying,
    /// Waiting for the shared fetch.
    Fetch(Flight),
    /// The fetch failed: the next call answers with this error, without the inner service.
    Failed(TokenError),
}

/// After `poll_ready`, what a call must do before anything else.
pub(super) enum Blocked {
    /// The fetch failed: answer with the error.
    Failed(TokenError),
    /// No token yet (the caller skipped `poll_ready`): wait for one.
    Waiting,
}

impl TokenGate {
    pub(super) fn new(tokens: TokenCredential) -> Self {
        Self {
            current: tokens.cached(),
            tokens,
            wait: Wait::Nothing,
        }
    }

    /// Ready once a token can be used, or once its fetch failed (the failure is kept for the
    /// next call: a `poll_ready` error is fatal to a `Buffer`).
    pub(super) fn poll_token(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match &mut self.wait {
                Wait::Failed(_) => return Poll::Ready(()),
                Wait::Fetch(flight) => match ready!(Pin::new(flight).poll(cx)) {
                    // Fetched: look at the cache again (the token may be gone already).
                    Ok(_) => self.wait = Wait::Nothing,
                    Err(err) => {
                        self.wait = Wait::Failed(err);
                        return Poll::Ready(());
                    }
                },
                Wait::Readying => return Poll::Ready(()),
                Wait::Nothing => {
                    if self.usable().is_some() {
                        return Poll::Ready(());
                    }
                    self.wait = match self.tokens.acquire() {
                        Acquire::Ready(_) => return Poll::Ready(()),
                        Acquire::Wait(flight) => Wait::Fetch(flight),
                        Acquire::Refused(err) => Wait::Failed(err),
                    };
                }
            }
        }
    }

    /// The readiness of a token service: a token first, then the inner service's (`inner`).
    /// Ready without the inner service when the fetch failed: the call answers with the error.
    pub(super) fn poll_ready<E>(
        &mut self,
        cx: &mut Context<'_>,
        inner: impl FnOnce(&mut Context<'_>) -> Poll<Result<(), E>>,
    ) -> Poll<Result<(), E>> {
        ready!(self.poll_token(cx));
        // `poll_token` is ready with a token (`Nothing`), mid-readiness (`Readying`), or failed.
        if let Wait::Failed(_) = self.wait {
            return Poll::Ready(Ok(()));
        }
        let ready = inner(cx);
        self.wait = match ready {
            Poll::Pending => Wait::Readying,
            Poll::Ready(_) => Wait::Nothing,
        };
        ready
    }

    /// Whether `poll_token` left something for the call to handle first.
    #[inline(always)]
    pub(super) fn blocked(&self) -> bool {
        !matches!(self.wait, Wait::Nothing)
    }

    /// What `poll_token` left for the call, taken.
    pub(super) fn take_blocked(&mut self) -> Blocked {
        match std::mem::replace(&mut self.wait, Wait::Nothing) {
            Wait::Failed(err) => Blocked::Failed(err),
            Wait::Fetch(_) | Wait::Readying | Wait::Nothing => Blocked::Waiting,
        }
    }

    /// Whether the cached token may be sent now.
    #[inline(always)]
    fn usable(&mut self) -> Option<&Arc<Current>> {
        self.current
            .load()
            .as_ref()
            .filter(|current| !current.refresh_due())
    }

    /// The token for a request, without waiting: the cached one, or, when it is due for a
    /// refresh, whatever the credential says to use now (the same token while a failed refresh
    /// backs off). `None`: the request must wait for a fetch.
    #[inline(always)]
    pub(super) fn token(&mut self) -> Option<(HeaderValue, u64)> {
        match self.usable() {
            Some(current) => Some((current.value.clone(), current.generation)),
            None => self.token_due(),
        }
    }

    #[cold]
    #[inline(never)]
    fn token_due(&self) -> Option<(HeaderValue, u64)> {
        match self.tokens.acquire() {
            Acquire::Ready(current) => Some((current.value.clone(), current.generation)),
            Acquire::Wait(_) | Acquire::Refused(_) => None,
        }
    }
}

impl Clone for TokenGate {
    fn clone(&self) -> Self {
        // A clone is not ready, as in every tower service: it waits for its own token.
        Self {
            tokens: self.tokens.clone(),
            current: self.current.clone(),
            wait: Wait::Nothing,
        }
    }
}

/// Gives up the readiness of `inner` and returns an unready clone: what a request that must
/// wait (for a token, for its body) holds, so that nothing reserved in `poll_ready` (a `Buffer`
/// slot, a `ConcurrencyLimit` permit) is held while it waits.
pub(super) fn release<S: Clone>(inner: &mut S) -> S {
    let unready = inner.clone();
    drop(std::mem::replace(inner, unready.clone()));
    unready
}
