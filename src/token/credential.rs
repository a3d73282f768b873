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
use super::{Current, TokenCredentialBuilder, TokenErrorKind, TokenStatus, Window};
use crate::credential::Rules;
use crate::{CredentialError, Token, TokenError, TokenSource};

/// A credential whose secret is fetched: an access token obtained from a [`TokenSource`],
/// cached, shared by every clone, refreshed ahead of its expiry, and replaced when the API
/// rejects it.
///
/// - **Lazy**: nothing is fetched until a request needs a token.
/// - **Single flight**: however many requests wait for a token, one fetch runs and all of them
///   get its result, success or error. The fetch runs in a task of its own, so a request that is
///   dropped while waiting cancels nothing.
/// - **Refresh windows**: when the expiry is known, a background refresh starts in the
///   *advisory* window (5 min before the expiry for tokens of up to 20 min, 15 min below 90 min,
///   60 min beyond; never more than half the lifetime) while requests keep using the token; in
///   the *mandatory* window (the last 60 s, at most a quarter of the lifetime) requests wait for
///   that one refresh. Needs a Tokio runtime, like the fetch itself.
/// - **Static stability**: when a refresh fails, the cached token keeps serving, past its expiry
///   if need be (logged once at WARN), and the next refresh waits 5 to 10 minutes: a
///   token-endpoint outage is not an outage of the API as long as the API accepts the token.
///   An [`Unrecoverable`](super::Unrecoverable) error (wrong client credentials) drops the
///   token instead, and is answered again for 5 s without reaching the endpoint.
/// - **Generation-aware invalidation**: each token has a generation. A rejection of generation
///   `g` refetches only if `g` is still the cached one; otherwise the newer token is used, so a
///   thousand requests hit by one expiry cause one refetch.
/// - **No storms**: with nothing cached, a failed fetch is never cached and the next one waits
///   a bounded exponential backoff (100 ms doubling to 10 s); a rejection during a backoff does
///   not reach the endpoint; rejection-triggered refetches of a token that was itself fetched
///   after a rejection are rate-limited.
///
/// The handle also lets you look inside ([`status`](Self::status),
/// [`generation`](Self::generation), [`expires_in`](Self::expires_in),
/// [`fetch_count`](Self::fetch_count)) and intervene
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
    /// Where fetched tokens are shared with other processes, if anywhere.
    #[cfg(feature = "token-store")]
    pub(super) store: Option<super::store::Attached>,
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
    /// An unrecoverable error, answered again without a fetch until the instant given.
    pub(super) unrecoverable: Option<(TokenError, Instant)>,
    /// The last fetch error, for [`TokenCredential::status`].
    pub(super) last_error: Option<TokenError>,
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
            .install(&mut state, value, token.remaining(), false, None);
        Ok(current.generation)
    }

    /// Marks the cached token as no good: the next request waits for a refresh. Should the
    /// refresh fail, the token keeps serving (static stability) until the backoff ends.
    pub fn invalidate(&self) {
        if let Some(current) = self.inner.current.load().as_ref() {
            current.invalidate();
        }
    }

    /// Where the cached token stands: its window, whether it is served past its expiry, when
    /// the next fetch may start, and the last fetch error.
    pub fn status(&self) -> TokenStatus {
        let state = lock(&self.inner.state);
        let now = Instant::now();
        let current = self.inner.current.load_full();
        let window = match &current {
            None => Window::Empty,
            Some(current) if current.expired(now) => Window::Expired,
            Some(current) if current.invalidated() => Window::Invalidated,
            Some(current) if current.mandatory_at.is_some_and(|at| now >= at) => Window::Mandatory,
            Some(current) if current.advisory_at.is_some_and(|at| now >= at) => Window::Advisory,
            Some(_) => Window::Fresh,
        };
        TokenStatus {
            window,
            advisory_in: current
                .as_ref()
                .and_then(|current| current.advisory_at)
                .map(|at| at.saturating_duration_since(now)),
            fetch_not_before: state
                .not_before
                .into_iter()
                .chain(state.unrecoverable.as_ref().map(|(_, until)| *until))
                .filter(|at| *at > now)
                .max()
                .map(|at| at - now),
            last_error: state.last_error.clone(),
            #[cfg(feature = "token-store")]
            store_error: self
                .inner
                .store
                .as_ref()
                .and_then(super::store::Attached::last_error),
        }
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
    /// However many callers report the same generation, one refetch runs; a report naming a
    /// token that was already replaced changes nothing. Should the refetch fail, the rejected
    /// token keeps being returned (static stability) until the backoff ends. A token that was
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
        if let Some(current) = self.current.load_full() {
            if !current.refresh_due() {
                return Acquire::Ready(current);
            }
        }
        let mut state = lock(&self.state);
        self.acquire_locked(&mut state)
    }

    /// A token for a request, under the state lock: the cached one while it needs no refresh
    /// (or while a failed refresh backs off), or the fetch to wait for.
    fn acquire_locked(self: &Arc<Self>, state: &mut State) -> Acquire {
        // Checked again under the lock: a fetch stores its token before its flight ends, both
        // under this lock, so seeing no flight here means seeing its token too.
        let now = Instant::now();
        let Some(current) = self.current.load_full() else {
            if let Some((err, until)) = &state.unrecoverable {
                if now < *until {
                    return Acquire::Refused(err.clone());
                }
            }
            return Acquire::Wait(self.start_flight(state, false));
        };
        if !current.refresh_due() {
            return Acquire::Ready(current);
        }
        if !self.config.static_stability && current.expired(now) {
            // Without static stability an expired token is never sent: drop it (every writer
            // holds the state lock, so it is still the one just loaded) and wait for a fetch,
            // which follows the short backoff of an empty cache, not a failed refresh's.
            self.clear(state);
            state.not_before = None;
            return Acquire::Wait(self.start_flight(state, false));
        }
        if let Some(flight) = &state.flight {
            return Acquire::Wait(flight.clone());
        }
        if state.not_before.is_some_and(|not_before| now < not_before) {
            // A refresh failed a moment ago: serve the cached token, reach the endpoint only
            // once the backoff is over.
            current.warn_if_stale(now);
            return Acquire::Ready(current);
        }
        let after_rejection = current.invalidated();
        Acquire::Wait(self.start_flight(state, after_rejection))
    }

    fn reject(self: &Arc<Self>, generation: u64) -> Acquire {
        let mut state = lock(&self.state);
        let Some(current) = self
            .current
            .load_full()
            .filter(|current| current.generation == generation)
        else {
            // Already replaced (or being replaced): a rejection of an old token changes nothing.
            return self.acquire_locked(&mut state);
        };
        let now = Instant::now();
        if current.after_rejection && !current.invalidated() {
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
        if !current.invalidate() {
            tracing::debug!(generation, "token rejected; refreshing");
            state.last_rejection_refetch = Some(now);
        }
        self.acquire_locked(&mut state)
    }

    /// Makes `value` the cached token, with a new generation, and arms its refresh.
    pub(super) fn install(
        self: &Arc<Self>,
        state: &mut State,
        value: HeaderValue,
        lifetime: Option<Duration>,
        after_rejection: bool,
        stored: Option<u64>,
    ) -> Arc<Current> {
        state.generation += 1;
        let now = Instant::now();
        // A lifetime past what the clock can represent (`Duration::MAX`) is no known expiry,
        // not a panic in the fetch task.
        let lifetime = lifetime.filter(|lifetime| now.checked_add(*lifetime).is_some());
        let windows = lifetime.map(|lifetime| {
            let (advisory, mandatory) = self.config.windows(lifetime);
            let expires_at = now + lifetime;
            (expires_at - advisory, expires_at - mandatory, expires_at)
        });
        let current = Arc::new(Current::new(
            state.generation,
            value,
            windows,
            after_rejection,
            stored,
        ));
        // A plain store: the new token does not depend on the old one, and every writer holds
        // the state lock.
        self.current.store(Some(Arc::clone(&current)));
        if let Some(timer) = state.refresh_timer.take() {
            timer.abort();
        }
        if lifetime.is_some() {
            state.refresh_timer = self.arm_refresh(&current);
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
