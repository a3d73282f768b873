use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use arc_swap::{ArcSwapOption, Cache};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use http::header::{HeaderName, HeaderValue};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tower::util::rng::{HasherRng, Rng};

use super::{Token, TokenError, TokenErrorKind, TokenSource};
use crate::credential::{Rules, RulesBuilder};
use crate::{CredentialError, Placement};

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

struct Inner {
    rules: Rules,
    source: Box<dyn TokenSource>,
    config: Config,
    /// The token requests use. Written only under `state`'s lock (so a fetch's store and its
    /// flight's end are seen together); read lock-free on every request.
    current: ArcSwapOption<Current>,
    state: Mutex<State>,
    fetches: AtomicU64,
}

/// A cached token, as requests see it.
#[derive(Debug)]
pub(crate) struct Current {
    pub(crate) generation: u64,
    pub(crate) value: HeaderValue,
    expires_at: Option<Instant>,
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

type Flight = Shared<BoxFuture<'static, Result<Arc<Current>, TokenError>>>;

#[derive(Default)]
struct State {
    generation: u64,
    flight: Option<Flight>,
    flight_after_rejection: bool,
    failures: u32,
    /// Backoff after a failed fetch: the next fetch does not start before this.
    not_before: Option<Instant>,
    last_rejection_refetch: Option<Instant>,
    refresh_timer: Option<AbortHandle>,
}

#[derive(Debug, Clone)]
struct Config {
    refresh_margin: Duration,
    refresh_jitter: Duration,
    fetch_timeout: Duration,
    backoff_min: Duration,
    backoff_max: Duration,
    rejection_refetch_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            refresh_margin: Duration::from_secs(60),
            refresh_jitter: Duration::from_secs(15),
            fetch_timeout: Duration::from_secs(30),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            rejection_refetch_interval: Duration::from_secs(5),
        }
    }
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

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Nothing panics while holding the lock; if something did, the state is still consistent
    // field by field, and refusing every later request would be worse.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TokenCredential {
    /// Starts a token credential fetching from `source`, sent as `Authorization: Bearer` unless
    /// [`placement`](TokenCredentialBuilder::placement) says otherwise.
    pub fn builder(source: impl TokenSource) -> TokenCredentialBuilder {
        TokenCredentialBuilder {
            rules: RulesBuilder::new(Ok(Placement::bearer())),
            source: Box::new(source),
            config: Config::default(),
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

    /// How many fetches have started so far, failed ones included.
    pub fn fetch_count(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// Installs a token obtained elsewhere, as if it had just been fetched; returns its
    /// generation. An invalid token is refused and the cached one stays.
    pub fn swap(&self, token: Token) -> Result<u64, CredentialError> {
        let value = self.inner.rules.placement.header_value(&token.secret)?;
        let mut state = lock(&self.inner.state);
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
            // Already replaced (or being replaced): use the newer token, or wait for it.
            Some(current) if current.generation != generation => return Acquire::Ready(current),
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

    /// Joins the fetch under way, or starts one in a task of its own: the task, not the
    /// requests waiting on it, owns the fetch, so dropping any of them cancels nothing.
    fn start_flight(self: &Arc<Self>, state: &mut State, after_rejection: bool) -> Flight {
        if let Some(flight) = &state.flight {
            return flight.clone();
        }
        let task = tokio::spawn(Arc::clone(self).fetch_and_install());
        let flight = async move {
            task.await.unwrap_or_else(|join| {
                Err(TokenError::new(TokenErrorKind::Aborted, Some(join.into())))
            })
        }
        .boxed()
        .shared();
        state.flight = Some(flight.clone());
        state.flight_after_rejection = after_rejection;
        flight
    }

    async fn fetch_and_install(self: Arc<Self>) -> Result<Arc<Current>, TokenError> {
        let not_before = lock(&self.state).not_before;
        if let Some(not_before) = not_before {
            tokio::time::sleep_until(not_before).await;
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = tokio::time::timeout(self.config.fetch_timeout, self.source.fetch()).await;
        let result = match fetched {
            Ok(Ok(token)) => match self.rules.placement.header_value(&token.secret) {
                Ok(value) => Ok((value, token.remaining())),
                Err(err) => Err(TokenError::new(
                    TokenErrorKind::InvalidToken,
                    Some(err.into()),
                )),
            },
            Ok(Err(err)) => Err(TokenError::new(TokenErrorKind::Fetch, Some(err))),
            Err(_elapsed) => Err(TokenError::new(TokenErrorKind::Timeout, None)),
        };

        let mut state = lock(&self.state);
        state.flight = None;
        match result {
            Ok((value, remaining)) => {
                state.failures = 0;
                state.not_before = None;
                let after_rejection = state.flight_after_rejection;
                let current = self.install(&mut state, value, remaining, after_rejection);
                tracing::debug!(
                    generation = current.generation,
                    expires_in = ?remaining,
                    "access token fetched"
                );
                Ok(current)
            }
            Err(err) => {
                state.failures = state.failures.saturating_add(1);
                let backoff = self.backoff(state.failures);
                state.not_before = Some(Instant::now() + backoff);
                tracing::warn!(error = %err, failures = state.failures, ?backoff, "access token fetch failed");
                Err(err)
            }
        }
    }

    /// Bounded exponential backoff: `min * 2^(failures - 1)`, at most `max`.
    fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.config
            .backoff_min
            .saturating_mul(factor)
            .min(self.config.backoff_max)
    }

    /// Makes `value` the cached token, with a new generation, and arms its refresh.
    fn install(
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

    /// Spawns the task that refreshes `current` ahead of its expiry and, should every refresh
    /// fail, drops it at its expiry. Without a Tokio runtime (a `swap` from plain code) the
    /// token is kept until the API rejects it.
    fn arm_refresh(
        self: &Arc<Self>,
        current: &Arc<Current>,
        now: Instant,
        lifetime: Duration,
    ) -> Option<AbortHandle> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let jitter = self
            .config
            .refresh_jitter
            .mul_f64(HasherRng::new().next_f64());
        let ahead = (self.config.refresh_margin + jitter).min(lifetime / 2);
        let expires_at = now + lifetime;
        let weak = Arc::downgrade(self);
        let generation = current.generation;
        let task = runtime.spawn(refresh_ahead(
            weak,
            generation,
            expires_at - ahead,
            expires_at,
        ));
        Some(task.abort_handle())
    }

    fn holds(&self, generation: u64) -> bool {
        self.current
            .load()
            .as_ref()
            .is_some_and(|current| current.generation == generation)
    }

    /// Drops the cached token and stops its refresh; the caller holds the state lock.
    fn clear(&self, state: &mut State) {
        self.current.store(None);
        if let Some(timer) = state.refresh_timer.take() {
            timer.abort();
        }
    }

    /// Drops the token of `generation` at its expiry, unless another one replaced it.
    fn expire(&self, generation: u64) {
        let mut state = lock(&self.state);
        if self.holds(generation) {
            self.clear(&mut state);
            tracing::debug!(
                generation,
                "access token expired before a refresh succeeded"
            );
        }
    }
}

/// The refresh task of one token generation. It holds the cache weakly, so a dropped cache
/// ends it, and is aborted when another token is installed.
async fn refresh_ahead(
    inner: Weak<Inner>,
    generation: u64,
    refresh_at: Instant,
    expires_at: Instant,
) {
    let mut at = refresh_at;
    loop {
        tokio::time::sleep_until(at).await;
        let Some(cache) = inner.upgrade() else { return };
        if !cache.holds(generation) {
            return;
        }
        if Instant::now() >= expires_at {
            cache.expire(generation);
            return;
        }
        let flight = cache.start_flight(&mut lock(&cache.state), false);
        let expiry = std::pin::pin!(tokio::time::sleep_until(expires_at));
        let refreshed = match futures::future::select(flight, expiry).await {
            futures::future::Either::Left((refreshed, _)) => refreshed,
            // The refresh outlasts the token: drop it at its expiry, so that requests wait for
            // this same fetch instead of sending the expired token meanwhile.
            futures::future::Either::Right(((), _)) => {
                cache.expire(generation);
                return;
            }
        };
        if refreshed.is_ok() {
            return;
        }
        // The failed fetch set a backoff; try again after it, or give up at the expiry.
        let not_before = lock(&cache.state).not_before.unwrap_or_else(Instant::now);
        at = not_before.min(expires_at);
    }
}

/// Builds a [`TokenCredential`]; every problem is reported once, by [`build`](Self::build).
#[must_use = "call `.build()` to get the token credential"]
pub struct TokenCredentialBuilder {
    rules: RulesBuilder,
    source: Box<dyn TokenSource>,
    config: Config,
}

impl TokenCredentialBuilder {
    /// Where the token goes in a request (default `Authorization: Bearer`).
    pub fn placement(mut self, placement: Placement) -> Self {
        self.rules.placement(placement);
        self
    }

    /// Sends the token to this origin (may be called for several); see
    /// [`CredentialBuilder::origin`](crate::CredentialBuilder::origin).
    pub fn origin(mut self, url: impl AsRef<str>) -> Self {
        self.rules.origin(url.as_ref());
        self
    }

    /// Sends the token with every request, whatever its origin; see
    /// [`CredentialBuilder::any_origin`](crate::CredentialBuilder::any_origin).
    pub fn any_origin(mut self) -> Self {
        self.rules.any_origin();
        self
    }

    /// Removes this header from every request the token is attached to.
    pub fn strip_header(mut self, name: HeaderName) -> Self {
        self.rules.strip_header(name);
        self
    }

    /// Adds this header to requests that do not have it.
    pub fn default_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.rules.default_header(name, value);
        self
    }

    /// How long before a known expiry the background refresh starts (default 60 s; at most
    /// half the token's lifetime).
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.config.refresh_margin = margin;
        self
    }

    /// A random extra of up to this much is added to the refresh margin (default 15 s), so
    /// that many processes started together do not refresh together.
    pub fn refresh_jitter(mut self, jitter: Duration) -> Self {
        self.config.refresh_jitter = jitter;
        self
    }

    /// How long a fetch may take before it fails with [`TokenErrorKind::Timeout`]
    /// (default 30 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.config.fetch_timeout = timeout;
        self
    }

    /// After a failed fetch, the next one waits `min`, doubling with each further failure up to
    /// `max` (default 100 ms to 10 s).
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.config.backoff_min = min;
        self.config.backoff_max = max.max(min);
        self
    }

    /// When a token fetched after a rejection is rejected too, the next rejection-triggered
    /// refetch waits at least this long since the last one (default 5 s); rejected requests
    /// fail with [`TokenErrorKind::Rejected`] meanwhile. The first rejection of a token obtained
    /// any other way always refetches.
    pub fn rejection_refetch_interval(mut self, interval: Duration) -> Self {
        self.config.rejection_refetch_interval = interval;
        self
    }

    /// Validates the configuration and builds the credential. Nothing is fetched yet.
    pub fn build(self) -> Result<TokenCredential, CredentialError> {
        Ok(TokenCredential {
            inner: Arc::new(Inner {
                rules: self.rules.build()?,
                source: self.source,
                config: self.config,
                current: ArcSwapOption::empty(),
                state: Mutex::new(State::default()),
                fetches: AtomicU64::new(0),
            }),
        })
    }
}

impl fmt::Debug for TokenCredentialBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCredentialBuilder")
            .field("rules", &self.rules)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use tokio::sync::mpsc;

    use super::*;

    /// A source that answers from a script and reports each fetch on a channel.
    fn scripted(
        answers: impl IntoIterator<Item = Result<Token, &'static str>>,
    ) -> (TokenCredentialBuilder, mpsc::UnboundedReceiver<u64>) {
        let answers = Arc::new(Mutex::new(answers.into_iter().collect::<VecDeque<_>>()));
        let (fetched, fetches) = mpsc::unbounded_channel();
        let count = Arc::new(AtomicU64::new(0));
        let source = move || {
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            let _ = fetched.send(n);
            let answer = answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Err("script ended"));
            async move { answer.map_err(BoxError::from) }
        };
        let builder = TokenCredential::builder(source)
            .any_origin()
            .refresh_jitter(Duration::ZERO)
            .backoff(Duration::from_secs(1), Duration::from_secs(4));
        (builder, fetches)
    }

    type BoxError = tower::BoxError;

    /// The generation a request would use right now without waiting, if any.
    fn generation(acquire: Acquire) -> Option<u64> {
        match acquire {
            Acquire::Ready(current) => Some(current.generation),
            _ => None,
        }
    }

    #[tokio::test]
    async fn a_rejection_refetches_once_per_generation() {
        let (builder, _fetches) = scripted((1..=3).map(|n| Ok(Token::new(format!("t{n}")))));
        let tokens = builder.build().unwrap();
        assert_eq!(tokens.fetch().await.unwrap(), 1);

        // A thousand requests rejected with generation 1: one refetch; all get generation 2.
        let rejections = (0..1000).map(|_| tokens.rejected(1));
        for generation in futures::future::join_all(rejections).await {
            assert_eq!(generation.unwrap(), 2);
        }
        assert_eq!(tokens.fetch_count(), 2);
        // A late rejection of generation 1 uses generation 2 without fetching.
        assert_eq!(tokens.rejected(1).await.unwrap(), 2);
        assert_eq!(tokens.fetch_count(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn rejections_of_a_token_fetched_after_a_rejection_are_rate_limited() {
        let (builder, _fetches) = scripted((1..=4).map(|n| Ok(Token::new(format!("t{n}")))));
        let tokens = builder
            .rejection_refetch_interval(Duration::from_secs(5))
            .build()
            .unwrap();
        assert_eq!(tokens.fetch().await.unwrap(), 1);
        // The first rejection of a token obtained normally always refetches.
        assert_eq!(tokens.rejected(1).await.unwrap(), 2);
        // Generation 2 was fetched because of a rejection: its rejection within 5 s is refused,
        // and the token stays (no lazy refetch storm behind the limiter's back).
        let refused = tokens.rejected(2).await.unwrap_err();
        assert_eq!(refused.kind(), TokenErrorKind::Rejected);
        assert_eq!(tokens.generation(), Some(2));
        assert_eq!(tokens.fetch_count(), 2);
        // After the interval, one more refetch is allowed.
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(tokens.rejected(2).await.unwrap(), 3);
        assert_eq!(tokens.fetch_count(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_fetches_back_off_and_are_never_cached() {
        let (builder, mut fetches) = scripted([Err("down"), Err("down"), Ok(Token::new("t"))]);
        let tokens = builder.build().unwrap();
        let started = Instant::now();
        assert_eq!(
            tokens.fetch().await.unwrap_err().kind(),
            TokenErrorKind::Fetch
        );
        assert_eq!(
            tokens.fetch().await.unwrap_err().kind(),
            TokenErrorKind::Fetch
        );
        assert_eq!(tokens.fetch().await.unwrap(), 1);
        // Backoff: the second fetch waited 1 s, the third 2 s more.
        for _ in 0..3 {
            fetches.recv().await.unwrap();
        }
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn the_token_is_refreshed_ahead_of_expiry_while_requests_keep_using_it() {
        let lifetime = Duration::from_secs(100);
        let (builder, mut fetches) =
            scripted((1..=2).map(|n| Ok(Token::new(format!("t{n}")).expires_in(lifetime))));
        let tokens = builder
            .refresh_margin(Duration::from_secs(10))
            .build()
            .unwrap();
        let started = Instant::now();
        assert_eq!(tokens.fetch().await.unwrap(), 1);
        assert_eq!(fetches.recv().await, Some(1));

        // Time runs (paused, it jumps to the next timer) until the background refresh fetches.
        assert_eq!(fetches.recv().await, Some(2));
        assert_eq!(started.elapsed(), Duration::from_secs(90));
        // The refresh ran in the background: a request right now never waits.
        let generation = generation(tokens.acquire());
        assert!(matches!(generation, Some(1 | 2)), "{generation:?}");
        tokio::task::yield_now().await;
        assert_eq!(tokens.generation(), Some(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_keeps_the_valid_token_and_retries_until_expiry() {
        let lifetime = Duration::from_secs(100);
        let (builder, mut fetches) = scripted([
            Ok(Token::new("t1").expires_in(lifetime)),
            Err("down"),
            Err("down"),
            Ok(Token::new("t2").expires_in(lifetime)),
        ]);
        let tokens = builder
            .refresh_margin(Duration::from_secs(10))
            .build()
            .unwrap();
        let started = Instant::now();
        tokens.fetch().await.unwrap();
        fetches.recv().await.unwrap();

        assert_eq!(fetches.recv().await, Some(2)); // refresh at 90 s fails
        assert_eq!(
            generation(tokens.acquire()),
            Some(1),
            "still valid, still served"
        );
        assert_eq!(fetches.recv().await, Some(3)); // retried after 1 s backoff, fails
        assert_eq!(started.elapsed(), Duration::from_secs(91));
        assert_eq!(fetches.recv().await, Some(4)); // retried after 2 s, succeeds
        assert_eq!(started.elapsed(), Duration::from_secs(93));
        tokio::task::yield_now().await;
        assert_eq!(tokens.generation(), Some(2));
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_real_expiry_requests_wait_for_a_fetch() {
        let lifetime = Duration::from_secs(100);
        let (builder, _fetches) = scripted([
            Ok(Token::new("t1").expires_in(lifetime)),
            Err("down"),
            Err("down"),
            Err("down"),
            Err("down"),
            Ok(Token::new("t2")),
        ]);
        let tokens = builder
            .refresh_margin(Duration::from_secs(10))
            .backoff(Duration::from_secs(4), Duration::from_secs(4))
            .build()
            .unwrap();
        tokens.fetch().await.unwrap();
        // Refreshes at 90, 94, 98 s fail; at 100 s the token is dropped.
        tokio::time::sleep(Duration::from_secs(100)).await;
        tokio::task::yield_now().await;
        assert_eq!(tokens.generation(), None);
        assert!(matches!(tokens.acquire(), Acquire::Wait(_)));
    }

    #[tokio::test]
    async fn swap_installs_a_token_from_elsewhere_and_invalid_ones_are_refused() {
        let (builder, _fetches) = scripted([]);
        let tokens = builder.build().unwrap();
        assert_eq!(tokens.swap(Token::new("from-elsewhere")).unwrap(), 1);
        assert_eq!(
            tokens.swap(Token::new("bad token")),
            Err(CredentialError::Whitespace { at: 3 })
        );
        assert_eq!(tokens.generation(), Some(1));
        assert_eq!(tokens.fetch_count(), 0);
        tokens.invalidate();
        assert_eq!(tokens.generation(), None);
    }

    #[tokio::test]
    async fn a_token_that_cannot_be_a_header_value_is_a_typed_error() {
        let (builder, _fetches) = scripted([Ok(Token::new("line\nbreak"))]);
        let err = builder.build().unwrap().fetch().await.unwrap_err();
        assert_eq!(err.kind(), TokenErrorKind::InvalidToken);
    }
}
