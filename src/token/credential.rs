use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arc_swap::{ArcSwapOption, Cache};
use futures::future::{BoxFuture, Shared};
use http::header::HeaderValue;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::builder::{Config, Rejection};
use super::{Token, TokenCredentialBuilder, TokenError, TokenErrorKind, TokenSource};
use crate::CredentialError;
use crate::credential::Rules;

/// A credential whose secret is fetched: an access token obtained from a [`TokenSource`],
/// cached, shared by every clone, refreshed ahead of its expiry, and replaced when the API
/// rejects it.
///
/// - **Lazy**: nothing is fetched until a request needs a token.
/// - **Single flight**: however many requests wait for a token, one fetch runs and all of them
///   get its result, success or error. The fetch runs in a task of its own, so a request that is
///   dropped while waiting cancels nothing.
/// - **Refresh ahead**: when the expiry is known, a background refresh starts a margin (with
///   jitter) before it while requests keep using the current token; a failed refresh is retried
///   after a backoff, and only past the real expiry do requests wait for a fetch. Needs a Tokio
///   runtime, like the fetch itself.
/// - **Generation-aware invalidation**: each token has a generation. A rejection of generation
///   `g` refetches only if `g` is still the cached one; otherwise the newer token is used, so a
///   thousand requests hit by one expiry cause one refetch.
/// - **No storms**: a failed fetch is never cached, and the next fetch waits a bounded
///   exponential backoff; rejection-triggered refetches of a token that was itself fetched after
///   a rejection are rate-limited.
///
/// The handle also lets you look inside ([`generation`](Self::generation),
/// [`expires_in`](Self::expires_in), [`fetch_count`](Self::fetch_count)) and intervene
/// ([`swap`](Self::swap), [`invalidate`](Self::invalidate)). See the
/// [module docs](crate::token) for an example.
#[derive(Clone)]
pub struct TokenCredential {
    inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) rules: Rules,
    pub(super) rejection: Rejection,
    pub(super) source: Box<dyn TokenSource>,
    pub(super) config: Config,
    /// The token requests use. Written only under `state`'s lock (so a fetch's store and its
    /// flight's end are seen together); read lock-free on every request.
    pub(super) current: ArcSwapOption<Current>,
    pub(super) state: Mutex<State>,
    pub(super) fetches: AtomicU64,
}

/// A cached token, as requests see it.
#[derive(Debug)]
pub(crate) struct Current {
    pub(crate) generation: u64,
    pub(crate) value: HeaderValue,
    pub(super) expires_at: Option<Instant>,
    /// Fetched because the previous token was rejected: a rejection of this one is rate-limited.
    after_rejection: bool,
}

impl Current {
    /// Whether the token's known expiry has passed: it must not be sent any more, whether or
    /// not the refresh task has run yet (it may be late: a starved runtime, a clock jump).
    /// Reads the clock only for a token whose expiry is known.
    pub(crate) fn expired(&self) -> bool {
        self.expires_at
            .is_some_and(|expires_at| Instant::now() >= expires_at)
    }
}

/// The fetch under way, shared by every request waiting for it.
pub(crate) type Flight = Shared<BoxFuture<'static, Result<Arc<Current>, TokenError>>>;

#[derive(Default)]
pub(super) struct State {
    pub(super) generation: u64,
    pub(super) flight: Option<Flight>,
    /// Which flight `flight` is: a finished fetch task clears `flight` only if it is its own.
    pub(super) flight_id: u64,
    pub(super) flight_after_rejection: bool,
    /// A token was swapped in while the flight ran: the flight's token must not replace it.
    pub(super) swapped_in_flight: bool,
    pub(super) failures: u32,
    /// Backoff after a failed fetch: the next fetch does not start before this.
    pub(super) not_before: Option<Instant>,
    pub(super) last_rejection_refetch: Option<Instant>,
    pub(super) refresh_timer: Option<AbortHandle>,
}

/// What a request gets when it asks for a token.
pub(crate) enum Acquire {
    /// A token is cached: use it.
    Ready(Arc<Current>),
    /// A fetch is under way (or was just started): wait for it.
    Wait(Flight),
    /// No token, and none will be fetched now.
    Refused(TokenError),
}

impl Acquire {
    async fn generation(self) -> Result<u64, TokenError> {
        match self {
            Acquire::Ready(current) => Ok(current.generation),
            Acquire::Wait(flight) => flight.await.map(|current| current.generation),
            Acquire::Refused(err) => Err(err),
        }
    }
}

pub(super) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Nothing panics while holding the lock; if something did, the state is still consistent
    // field by field, and refusing every later request would be worse.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TokenCredential {
    /// Starts a token credential fetching from `source`, sent as `Authorization: Bearer` unless
    /// [`placement`](TokenCredentialBuilder::placement) says otherwise.
    pub fn builder(source: impl TokenSource) -> TokenCredentialBuilder {
        TokenCredentialBuilder::new(Box::new(source))
    }

    pub(super) fn from_inner(inner: Inner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The generation of the cached token (1 for the first one fetched), or `None` when no
    /// token is cached.
    pub fn generation(&self) -> Option<u64> {
        self.inner.current.load().as_ref().map(|c| c.generation)
    }

    /// How long the cached token has left, when its expiry is known.
    pub fn expires_in(&self) -> Option<Duration> {
        let current = self.inner.current.load();
        let expires_at = current.as_ref()?.expires_at?;
        Some(expires_at.saturating_duration_since(Instant::now()))
    }

    /// Where the token goes in a request.
    pub fn placement(&self) -> &crate::Placement {
        &self.inner.rules.placement
    }

    /// How many fetches have started so far, failed ones included.
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// Installs a token obtained elsewhere, as if it had just been fetched; returns its
    /// generation. An invalid token is refused and the cached one stays. A fetch under way
    /// when it is swapped in does not replace it: its waiters get the swapped token.
    pub fn swap(&self, token: Token) -> Result<u64, CredentialError> {
        let value = self.inner.rules.placement.header_value(&token.secret)?;
        let mut state = lock(&self.inner.state);
        state.swapped_in_flight = state.flight.is_some();
        let current = self
            .inner
            .install(&mut state, value, token.remaining(), false);
        Ok(current.generation)
    }

    /// Drops the cached token: the next request fetches a new one.
    pub fn invalidate(&self) {
        self.inner.clear(&mut lock(&self.inner.state));
    }

    /// Fetches a token now if none is cached (waiting for a fetch already under way), and
    /// returns the cached token's generation. Requests do this by themselves; call it to warm
    /// the cache, or to fail fast at start-up on bad client credentials.
    pub async fn fetch(&self) -> Result<u64, TokenError> {
        self.inner.acquire().generation().await
    }

    /// Reports that the API rejected the token of `generation` (expired or revoked), and
    /// returns the generation to retry with: a newer token if one already replaced it, or one
    /// fetched now. Requests through [`TokenAuth`](crate::TokenAuth) do this by themselves; call
    /// it from your own retry logic.
    ///
    /// However many callers report the same generation, one refetch runs. A token that was
    /// itself fetched after a rejection is refetched at most once per
    /// [`rejection_refetch_interval`](TokenCredentialBuilder::rejection_refetch_interval);
    /// meanwhile this fails with [`TokenErrorKind::Rejected`].
    pub async fn rejected(&self, generation: u64) -> Result<u64, TokenError> {
        self.inner.reject(generation).generation().await
    }

    /// Like [`rejected`](Self::rejected), without waiting: what a request gets to replay with.
    pub(crate) fn reject(&self, generation: u64) -> Acquire {
        self.inner.reject(generation)
    }

    pub(crate) fn rules(&self) -> &Rules {
        &self.inner.rules
    }

    /// How the API says that a token is no good.
    pub(crate) fn rejection(&self) -> &Rejection {
        &self.inner.rejection
    }

    /// A per-service view of the cached token that skips the shared load while it is unchanged.
    pub(crate) fn cached(&self) -> Cache<CurrentCell, Option<Arc<Current>>> {
        Cache::new(CurrentCell(Arc::clone(&self.inner)))
    }

    /// A token for a request: the cached one, or a fetch to wait for.
    pub(crate) fn acquire(&self) -> Acquire {
        self.inner.acquire()
    }
}

impl fmt::Debug for TokenCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCredential")
            .field("header", self.inner.rules.placement.header_name())
            .field("scheme", &self.inner.rules.placement.scheme())
            .field("generation", &self.generation())
            .field("expires_in", &self.expires_in())
            .field("fetches", &self.fetch_count())
            .field("token", &format_args!("[redacted]"))
            .finish()
    }
}

/// Lets an `arc_swap::Cache` reach the cached token.
#[derive(Clone)]
pub(crate) struct CurrentCell(Arc<Inner>);

impl Deref for CurrentCell {
    type Target = ArcSwapOption<Current>;

    fn deref(&self) -> &Self::Target {
        &self.0.current
    }
}

impl Inner {
    fn acquire(self: &Arc<Self>) -> Acquire {
        let cached = self.current.load_full();
        if let Some(current) = cached.filter(|current| !current.expired()) {
            return Acquire::Ready(current);
        }
        let mut state = lock(&self.state);
        // Checked again under the lock: a fetch stores its token before its flight ends, both
        // under this lock, so seeing no flight here means seeing its token too.
        match self.current.load_full() {
            Some(current) if !current.expired() => return Acquire::Ready(current),
            // Past its expiry, and the refresh task has not dropped it yet: drop it here (every
            // writer holds the state lock, so it is still the one just loaded).
            Some(_) => self.clear(&mut state),
            None => {}
        }
        Acquire::Wait(self.start_flight(&mut state, false))
    }

    fn reject(self: &Arc<Self>, generation: u64) -> Acquire {
        let mut state = lock(&self.state);
        let current = match self.current.load_full() {
            // Already replaced: use the newer token, unless it is past its expiry too.
            Some(current) if current.generation != generation => {
                if !current.expired() {
                    return Acquire::Ready(current);
                }
                self.clear(&mut state);
                return Acquire::Wait(self.start_flight(&mut state, false));
            }
            // Being replaced: wait for it.
            None => return Acquire::Wait(self.start_flight(&mut state, false)),
            Some(current) => current,
        };
        let now = Instant::now();
        if current.after_rejection {
            let interval = self.config.rejection_refetch_interval;
            if state
                .last_rejection_refetch
                .is_some_and(|last| now < last + interval)
            {
                tracing::warn!(
                    generation,
                    "a freshly fetched token was rejected again; refetch rate-limited"
                );
                return Acquire::Refused(TokenError::new(TokenErrorKind::Rejected, None));
            }
        }
        tracing::debug!(generation, "token rejected; refetching");
        state.last_rejection_refetch = Some(now);
        // No new request may use the rejected token while the new one is fetched.
        self.clear(&mut state);
        Acquire::Wait(self.start_flight(&mut state, true))
    }

    /// Makes `value` the cached token, with a new generation, and arms its refresh.
    pub(super) fn install(
        self: &Arc<Self>,
        state: &mut State,
        value: HeaderValue,
        lifetime: Option<Duration>,
        after_rejection: bool,
    ) -> Arc<Current> {
        state.generation += 1;
        let now = Instant::now();
        // A lifetime past what the clock can represent (`Duration::MAX`) is no known expiry,
        // not a panic in the fetch task.
        let lifetime = lifetime.filter(|lifetime| now.checked_add(*lifetime).is_some());
        let current = Arc::new(Current {
            generation: state.generation,
            value,
            expires_at: lifetime.map(|lifetime| now + lifetime),
            after_rejection,
        });
        // A plain store: the new token does not depend on the old one, and every writer holds
        // the state lock.
        self.current.store(Some(Arc::clone(&current)));
        if let Some(timer) = state.refresh_timer.take() {
            timer.abort();
        }
        if let Some(lifetime) = lifetime {
            state.refresh_timer = self.arm_refresh(&current, now, lifetime);
        }
        current
    }

    pub(super) fn holds(&self, generation: u64) -> bool {
        self.current
            .load()
            .as_ref()
            .is_some_and(|current| current.generation == generation)
    }

    /// Drops the cached token and stops its refresh; the caller holds the state lock.
    pub(super) fn clear(&self, state: &mut State) {
        self.current.store(None);
        if let Some(timer) = state.refresh_timer.take() {
            timer.abort();
        }
    }
}
