//! `TokenAuthLayer` and `TokenAuth`: wait for the token, attach it, replay once.

use std::fmt;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower::{BoxError, Layer, Service};

use super::attach::AttachTokenLayer;
use super::future::{Pending, ResponseFuture, State};
use super::gate::{Blocked, TokenGate, release};
use crate::TokenCredential;
use crate::body::{ResponseBody, can_rebuild, try_copy_request};

/// Layer that applies [`TokenAuth`], which attaches a [`TokenCredential`]'s token to outgoing
/// requests.
///
/// See the [`token_auth`](crate::token_auth) module for an example.
#[derive(Clone)]
pub struct TokenAuthLayer {
    tokens: TokenCredential,
    /// Bodies that cannot be copied are buffered up to this many bytes, to be replayable.
    replay: usize,
}

/// By default, bodies that cannot be copied are read into memory up to this size to be
/// replayable.
const DEFAULT_REPLAY_BUFFER_LIMIT: usize = 64 * 1024;

impl TokenAuthLayer {
    /// Attaches the tokens of `tokens` to every request bound for one of its origins; a request
    /// whose token the API rejects reports it and is replayed once with a new one. A rejection
    /// is a `401`, or what the credential's
    /// [`classifier`](crate::token::TokenCredentialBuilder::classifier) calls one (Akool's code
    /// 1101 in an HTTP 200): this layer reads it from the response itself, so where a
    /// [`ClassifyLayer`](crate::ClassifyLayer) sits, if anywhere, changes nothing.
    pub fn new(tokens: TokenCredential) -> Self {
        Self {
            tokens,
            replay: DEFAULT_REPLAY_BUFFER_LIMIT,
        }
    }

    /// Attaches tokens only ([`AttachTokenLayer`]): no request is copied for a replay, no
    /// response is looked at, the inner service's response comes back untouched, and a
    /// rejection is the caller's to handle (see [`TokenCredential::rejected`]). The cheapest
    /// setting, for tokens whose expiry is known and refreshed ahead.
    pub fn without_replay(self) -> AttachTokenLayer {
        AttachTokenLayer::new(self.tokens)
    }

    /// A request body that cannot be copied but can be rebuilt from bytes (`BoxBody`,
    /// `UnsyncBoxBody`, `axum::body::Body`, `tonic::body::Body`) is read into memory before it is
    /// sent, when its size is known and at most `limit` bytes (default 64 KiB), so that it can
    /// be replayed. A larger or unsized one, or a body of any other type (`hyper::body::Incoming`
    /// in a proxy, say), is sent once as it streams, and a rejection of its token is reported
    /// (the next requests get a new token) and handed back as the API's response. `0` buffers
    /// nothing.
    pub fn replay_buffer_limit(mut self, limit: usize) -> Self {
        self.replay = limit;
        self
    }
}

impl<S> Layer<S> for TokenAuthLayer {
    type Service = TokenAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TokenAuth {
            inner,
            gate: TokenGate::new(self.tokens.clone()),
            replay: self.replay,
        }
    }
}

impl fmt::Debug for TokenAuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAuthLayer")
            .field("tokens", &self.tokens)
            .field("replay_buffer_limit", &self.replay)
            .finish()
    }
}

/// Middleware that attaches the cached access token to every request bound for one of the
/// credential's origins, fetching one first when none is cached, and replays a request once
/// when the API rejects its token.
///
/// - **Waiting for a token is readiness.** `poll_ready` drives the shared fetch until a token is
///   cached, and only then makes the inner service ready: no request holds capacity of a
///   `Buffer` or a `ConcurrencyLimit` while it waits, so a `Buffer` shared with the token source
///   cannot deadlock. A failed fetch is not a `poll_ready` error (a `Buffer` would take it as
///   fatal): it comes back from the next call's future.
/// - With a token cached, a request costs a cached pointer check, a header insert, a clock read
///   when the token's expiry is known (in its mandatory window the request waits for the
///   refresh; past its expiry a token is sent only while refreshing fails, under static
///   stability) and, with replay on, a copy of the request for the replay.
/// - On a rejection (a `401`, or the credential's
///   [`classifier`](crate::token::TokenCredentialBuilder::classifier) verdict, read here from
///   the response), the token's generation is reported to the [`TokenCredential`] (one refetch
///   for all the requests rejected with that generation), and the request is replayed once
///   with the new token. A second rejection is handed back as the API's response, never a
///   loop; so is the rejection of a request whose body cannot be copied.
///
/// Errors are the inner service's, boxed, or a [`TokenError`](crate::TokenError) when no token
/// could be had. See the [`token_auth`](crate::token_auth) module for an example.
pub struct TokenAuth<S> {
    inner: S,
    gate: TokenGate,
    replay: usize,
}

impl<S: Clone> Clone for TokenAuth<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            gate: self.gate.clone(),
            replay: self.replay,
        }
    }
}

impl<S> TokenAuth<S> {
    /// Wraps `inner`, attaching the tokens of `tokens` to its requests (replay on).
    pub fn new(inner: S, tokens: TokenCredential) -> Self {
        TokenAuthLayer::new(tokens).layer(inner)
    }

    /// Returns a new [`Layer`] that wraps services with a [`TokenAuth`] middleware.
    pub fn layer(tokens: TokenCredential) -> TokenAuthLayer {
        TokenAuthLayer::new(tokens)
    }

    inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for TokenAuth<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAuth")
            .field("inner", &self.inner)
            .field("tokens", &self.gate.tokens)
            .field("replay_buffer_limit", &self.replay)
            .finish()
    }
}

impl<S, B, ResBody> Service<Request<B>> for TokenAuth<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    B: Body<Error: 'static> + 'static,
    B::Error: Into<BoxError>,
    ResBody: Body,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = BoxError;
    type Future = ResponseFuture<S, B, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // First a token, then the inner service: capacity is taken only once it can be used.
        let inner = &mut self.inner;
        self.gate
            .poll_ready(cx, |cx| inner.poll_ready(cx))
            .map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if self.gate.blocked() {
            return self.after_wait(request);
        }
        if !self.gate.tokens.rules().permits(request.uri()) {
            return ResponseFuture::new(State::final_answer(self.inner.call(request)));
        }
        let Some((value, generation)) = self.gate.token() else {
            return self.prepare(request);
        };
        let copy = match try_copy_request(&request) {
            Some(copy) => Some(copy),
            None if rebuildable(&request, self.replay) => return self.prepare(request),
            // Sent once; a rejection is reported and handed back.
            None => None,
        };
        let tokens = &self.gate.tokens;
        tokens.rules().apply(value, request.headers_mut());
        let pending = Pending::sent(self.inner.clone(), tokens, copy, generation);
        ResponseFuture::new(State::Sent {
            future: self.inner.call(request),
            pending: Some(pending),
        })
    }
}

/// Whether a body that cannot be copied should be read into memory to be replayable.
fn rebuildable<B: Body<Error: 'static> + 'static>(request: &Request<B>, limit: usize) -> bool {
    can_rebuild::<B>()
        && request
            .body()
            .size_hint()
            .upper()
            .is_some_and(|size| size <= limit as u64)
}

impl<S: Clone> TokenAuth<S> {
    /// A call after `poll_ready` found the fetch failed (or a fetch under way, for a caller
    /// that did not wait for readiness): out of line, so the cached path stays small.
    #[cold]
    #[inline(never)]
    fn after_wait<B, ResBody>(&mut self, request: Request<B>) -> ResponseFuture<S, B, ResBody>
    where
        S: Service<Request<B>>,
        B: Body<Error: 'static> + 'static,
        ResBody: Body,
    {
        let blocked = self.gate.take_blocked();
        if !self.gate.tokens.rules().permits(request.uri()) {
            // The inner service was not made ready; this request needs no token, so it is sent
            // once a clone is ready.
            let inner = release(&mut self.inner);
            let pending = Pending::new(inner, &self.gate.tokens, request, None, false);
            return ResponseFuture::new(State::Readying {
                token: None,
                pending: Some(pending),
            });
        }
        match blocked {
            Blocked::Failed(error) => ResponseFuture::new(State::Failed { error: Some(error) }),
            Blocked::Waiting => self.prepare(request),
        }
    }

    /// The rare path, kept out of line so the cached path stays small: the request must wait
    /// for its body to be read into memory, or for a token (none is cached: the caller skipped
    /// `poll_ready`, or the token was dropped since).
    #[cold]
    #[inline(never)]
    fn prepare<B, ResBody>(&mut self, request: Request<B>) -> ResponseFuture<S, B, ResBody>
    where
        S: Service<Request<B>>,
        B: Body<Error: 'static> + 'static,
        ResBody: Body,
    {
        let inner = release(&mut self.inner);
        let tokens = &self.gate.tokens;
        if let Some(copy) = try_copy_request(&request) {
            let pending = Pending::new(inner, tokens, request, Some(copy), true);
            return ResponseFuture::new(State::acquire(pending));
        }
        if rebuildable(&request, self.replay) {
            return ResponseFuture::new(State::buffering(inner, tokens, request));
        }
        let pending = Pending::new(inner, tokens, request, None, true);
        ResponseFuture::new(State::acquire(pending))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::Ready;

    use bytes::Bytes;
    use http_body_util::{Empty, Full};

    use super::*;

    type Inner = tower::util::ServiceFn<
        fn(Request<Full<Bytes>>) -> Ready<Result<Response<Empty<Bytes>>, Infallible>>,
    >;

    /// The cached path moves the future at least once: it stays the inner future and a few
    /// words, whatever the rare paths need (they are boxed).
    #[test]
    fn the_response_future_is_the_inner_one_and_a_few_words() {
        let inner = size_of::<<Inner as Service<Request<Full<Bytes>>>>::Future>();
        let ours = size_of::<ResponseFuture<Inner, Full<Bytes>, Empty<Bytes>>>();
        println!("response future: {ours} bytes around an inner future of {inner}");
        assert!(ours <= inner + 4 * size_of::<usize>(), "{ours} vs {inner}");
    }
}
