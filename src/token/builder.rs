//! Building a [`TokenCredential`]: where the token goes, how it is refreshed, and how the API
//! says it is no good.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::response::Parts;

use super::credential::{Inner, State, TokenCredential};
use crate::credential::RulesBuilder;
use crate::outcome::{Classifier, DEFAULT_BODY_LIMIT, Outcome};
use crate::{CredentialError, Placement, TokenSource};

#[derive(Debug, Clone)]
pub(super) struct Config {
    /// Explicit windows; `None` sizes them by the token's lifetime.
    pub(super) advisory: Option<Duration>,
    pub(super) mandatory: Option<Duration>,
    pub(super) refresh_jitter: Duration,
    pub(super) static_stability: bool,
    pub(super) stale_backoff_min: Duration,
    pub(super) stale_backoff_max: Duration,
    pub(super) unrecoverable_hold: Duration,
    pub(super) fetch_timeout: Duration,
    pub(super) backoff_min: Duration,
    pub(super) backoff_max: Duration,
    pub(super) rejection_refetch_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            advisory: None,
            mandatory: None,
            refresh_jitter: Duration::from_secs(15),
            static_stability: true,
            stale_backoff_min: Duration::from_secs(5 * 60),
            stale_backoff_max: Duration::from_secs(10 * 60),
            unrecoverable_hold: Duration::from_secs(5),
            fetch_timeout: Duration::from_secs(30),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            rejection_refetch_interval: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// The advisory and mandatory windows of a token that lasts `lifetime`: how long before its
    /// expiry a background refresh starts, and from when requests wait for that refresh.
    ///
    /// Advisory: 5 min for lifetimes up to 20 min, 15 min below 90 min, 60 min beyond; never
    /// more than half the lifetime (a wider window would spend most of every token's life
    /// refreshing it). Mandatory: 60 s, never more than a quarter of the lifetime. An explicit
    /// setting replaces the table, within the same caps.
    pub(super) fn windows(&self, lifetime: Duration) -> (Duration, Duration) {
        const MINUTE: u64 = 60;
        let by_table = match lifetime.as_secs() {
            s if s <= 20 * MINUTE => 5 * MINUTE,
            s if s < 90 * MINUTE => 15 * MINUTE,
            _ => 60 * MINUTE,
        };
        let advisory = self
            .advisory
            .unwrap_or(Duration::from_secs(by_table))
            .min(lifetime / 2);
        let mandatory = self
            .mandatory
            .unwrap_or(Duration::from_secs(60))
            .min(lifetime / 4)
            .min(advisory);
        (advisory, mandatory)
    }
}

/// How the API says that a token is no good: a `401`, or what a provider's classifier calls
/// [`CredentialRejected`](crate::outcome::OutcomeKind::CredentialRejected) (Akool's body code
/// 1101 in an HTTP 200).
#[derive(Clone)]
pub(crate) struct Rejection {
    classifier: Option<Arc<dyn Classifier>>,
    outcomes: crate::outcome::OutcomeCounters,
}

impl Rejection {
    /// JSON bodies up to this size are read to find a body code; a larger one is judged by its
    /// head alone.
    pub(crate) const BODY_LIMIT: usize = DEFAULT_BODY_LIMIT;

    /// Whether the body of this response could turn it into a rejection.
    pub(crate) fn wants_body(&self, head: &Parts) -> bool {
        self.classifier
            .as_ref()
            .is_some_and(|classifier| classifier.wants_body(head))
    }

    /// The classifier's verdict on a response, or `None` without a classifier. Not traced
    /// here: a rejection the layer replays is its own `debug` event, and a `ClassifyLayer`
    /// reports the answers that reach the caller.
    pub(crate) fn classify(&self, head: &Parts, body: Option<&[u8]>) -> Option<Outcome> {
        Some(self.classifier.as_ref()?.classify(head, body))
    }

    /// Counts an outcome of the classifier's (metrics).
    pub(crate) fn count(&self, outcome: &Outcome) {
        let provider = self.classifier.as_ref().map_or("api", |c| c.provider());
        self.outcomes.count(provider, outcome);
    }
}

impl fmt::Debug for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let provider = self
            .classifier
            .as_ref()
            .map(|classifier| classifier.provider());
        f.debug_struct("Rejection")
            .field("classifier", &provider)
            .finish()
    }
}

/// Builds a [`TokenCredential`]; every problem is reported once, by [`build`](Self::build).
#[must_use = "call `.build()` to get the token credential"]
pub struct TokenCredentialBuilder {
    rules: RulesBuilder,
    rejection: Rejection,
    source: Box<dyn TokenSource>,
    config: Config,
    #[cfg(feature = "token-store")]
    store: Option<super::store::TokenStore>,
    #[cfg(feature = "token-store")]
    identity: Option<super::store::Fingerprint>,
}

impl TokenCredentialBuilder {
    pub(super) fn new(source: Box<dyn TokenSource>) -> Self {
        Self {
            rules: RulesBuilder::new(Ok(Placement::bearer())),
            rejection: Rejection {
                classifier: None,
                outcomes: Default::default(),
            },
            source,
            config: Config::default(),
            #[cfg(feature = "token-store")]
            store: None,
            #[cfg(feature = "token-store")]
            identity: None,
        }
    }

    /// Makes [`build`](Self::build) fail with `err`: for presets that check their own settings
    /// (a token flow's client id and secret) and report like every other builder setting.
    pub(crate) fn fail(mut self, err: CredentialError) -> Self {
        self.rules.fail(err);
        self
    }

    /// How the API says that a token is no good, beyond a `401`: a response that `classifier`
    /// calls [`CredentialRejected`](crate::outcome::OutcomeKind::CredentialRejected) makes
    /// [`TokenAuth`](crate::TokenAuth) refetch the token and replay the request once, wherever
    /// a [`ClassifyLayer`](crate::ClassifyLayer) sits in the stack, or with none.
    /// Its verdict is put into the response's extensions as an
    /// [`Outcome`](crate::outcome::Outcome).
    ///
    /// The presets set it (Akool: code 1101 in an HTTP 200, read from a JSON body up to
    /// 64 KiB, sized or chunked, and handed on byte for byte).
    pub fn classifier(mut self, classifier: impl Classifier) -> Self {
        self.rejection.classifier = Some(Arc::new(classifier));
        self
    }

    /// Where the token goes in a request (default `Authorization: Bearer`).
    pub fn placement(mut self, placement: Placement) -> Self {
        self.rules.placement(placement);
        self
    }

    rules_methods!("token");

    /// How long before a known expiry a background refresh starts while requests keep using
    /// the token (the advisory window). Default: sized by the token's lifetime, 5 min for
    /// lifetimes up to 20 min, 15 min below 90 min, 60 min beyond; never more than half the
    /// lifetime, recomputed for every token fetched.
    pub fn advisory_window(mut self, window: Duration) -> Self {
        self.config.advisory = Some(window);
        self
    }

    /// How long before a known expiry requests stop using the token without a refresh: they
    /// wait for the one refresh in flight (the mandatory window). Default 60 s, never more than
    /// a quarter of the lifetime.
    pub fn mandatory_window(mut self, window: Duration) -> Self {
        self.config.mandatory = Some(window);
        self
    }

    /// The background refresh starts up to this much later into the advisory window, at
    /// random (default 15 s, at most half the time between the two windows), so that many
    /// processes started together do not refresh together.
    pub fn refresh_jitter(mut self, jitter: Duration) -> Self {
        self.config.refresh_jitter = jitter;
        self
    }

    /// Static stability (on by default): when refreshing a cached token fails (an error, a
    /// timeout, or an answer already expired or expiring no later than the cached one), the
    /// cached token keeps serving, past its expiry if need be, and the next refresh waits
    /// [`stale_backoff`](Self::stale_backoff). An API that still accepts the token (clock skew,
    /// a grace period) keeps working through a token-endpoint outage; one that refuses it
    /// answers as it would anyway. Off, a token is dropped at its expiry and requests wait for
    /// a fetch, failing while the endpoint fails.
    pub fn static_stability(mut self, on: bool) -> Self {
        self.config.static_stability = on;
        self
    }

    /// After a failed refresh of a cached token, the next one waits a random time between `min`
    /// and `max` (default 5 to 10 min); meanwhile the cached token serves.
    pub fn stale_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.config.stale_backoff_min = min;
        self.config.stale_backoff_max = max.max(min);
        self
    }

    /// How long an [`Unrecoverable`](super::Unrecoverable) error is answered again without
    /// contacting the source (default 5 s).
    pub fn unrecoverable_hold(mut self, hold: Duration) -> Self {
        self.config.unrecoverable_hold = hold;
        self
    }

    /// How long a fetch may take before it fails with
    /// [`TokenErrorKind::Timeout`](super::TokenErrorKind::Timeout) (default 30 s).
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.config.fetch_timeout = timeout;
        self
    }

    /// With no token cached, after a failed fetch the next one waits `min`, doubling with each
    /// further failure up to `max` (default 100 ms to 10 s); every request meanwhile waits for
    /// that next fetch.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.config.backoff_min = min;
        self.config.backoff_max = max.max(min);
        self
    }

    /// When a token fetched after a rejection is rejected too, the next rejection-triggered
    /// refetch waits at least this long since the last one (default 5 s); meanwhile
    /// [`TokenCredential::rejected`] fails with
    /// [`TokenErrorKind::Rejected`](super::TokenErrorKind::Rejected), and
    /// [`TokenAuth`](crate::TokenAuth) hands back the API's answer unreplayed. The first
    /// rejection of a token obtained any other way always refetches.
    pub fn rejection_refetch_interval(mut self, interval: Duration) -> Self {
        self.config.rejection_refetch_interval = interval;
        self
    }

    /// Keeps fetched tokens in `store` too, so that other processes (and this one, restarted)
    /// take them instead of fetching: see [`TokenStore`](super::store::TokenStore). Requests still
    /// read the token from memory; the store is read only when no cached token may be used,
    /// and written after each fetch.
    ///
    /// The store keys tokens by the credentials they were fetched with: the presets say what
    /// those are; with a source of your own, name them with
    /// [`store_identity`](Self::store_identity), or `build` fails with
    /// [`CredentialError::StoreWithoutIdentity`].
    #[cfg(feature = "token-store")]
    pub fn store(mut self, store: super::store::TokenStore) -> Self {
        self.store = Some(store);
        self
    }

    /// The credentials the source fetches with, for the [`store`](Self::store): `identity`
    /// names them apart from the secret (a client id and the token endpoint's URL, say),
    /// `secret` is the client secret or key. Only a fingerprint is kept (HMAC-SHA256 keyed by
    /// the secret over the identity): a changed secret never finds a token fetched with the
    /// old one, and the fingerprint does not reveal the secret.
    #[cfg(feature = "token-store")]
    pub fn store_identity(mut self, identity: &str, secret: &crate::Secret) -> Self {
        self.identity = Some(super::store::Fingerprint::new(
            &format!("custom\0{identity}"),
            secret,
        ));
        self
    }

    /// What a preset's token flow fetches with: its provider, client id, and token endpoint.
    #[cfg(feature = "token-store")]
    pub(crate) fn preset_identity(
        mut self,
        provider: &str,
        client_id: &str,
        endpoint: &str,
        secret: &crate::Secret,
    ) -> Self {
        self.identity = Some(super::store::Fingerprint::new(
            &format!("{provider}\0{client_id}\0{endpoint}"),
            secret,
        ));
        self
    }

    /// Validates the configuration and builds the credential. Nothing is fetched yet.
    pub fn build(self) -> Result<TokenCredential, CredentialError> {
        #[cfg(feature = "token-store")]
        let store = match (self.store, self.identity) {
            (None, _) => None,
            (Some(store), Some(identity)) => Some(super::store::Attached::new(store, identity)),
            (Some(_), None) => return Err(CredentialError::StoreWithoutIdentity),
        };
        Ok(TokenCredential::from_inner(Inner {
            #[cfg(feature = "token-store")]
            store,
            rules: self.rules.build()?,
            rejection: self.rejection,
            source: self.source,
            config: self.config,
            current: ArcSwapOption::empty(),
            state: Mutex::new(State::default()),
            fetches: AtomicU64::new(0),
        }))
    }
}

impl fmt::Debug for TokenCredentialBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCredentialBuilder")
            .field("rules", &self.rules)
            .field("rejection", &self.rejection)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
