//! Building a [`TokenCredential`]: where the token goes, how it is refreshed, and how the API
//! says it is no good.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::header::{HeaderName, HeaderValue};
use http::response::Parts;

use super::TokenSource;
use super::credential::{Inner, State, TokenCredential};
use crate::classify::{Classifier, DEFAULT_BODY_LIMIT, Outcome};
use crate::credential::RulesBuilder;
use crate::{CredentialError, Placement};

#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) refresh_margin: Duration,
    pub(super) refresh_jitter: Duration,
    pub(super) fetch_timeout: Duration,
    pub(super) backoff_min: Duration,
    pub(super) backoff_max: Duration,
    pub(super) rejection_refetch_interval: Duration,
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

/// How the API says that a token is no good: a `401`, or what a provider's classifier calls
/// [`CredentialRejected`](crate::classify::OutcomeKind::CredentialRejected) (Akool's body code
/// 1101 in an HTTP 200).
#[derive(Clone)]
pub(crate) struct Rejection {
    classifier: Option<Arc<dyn Classifier>>,
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

    /// The classifier's verdict on a response, or `None` without a classifier.
    pub(crate) fn classify(&self, head: &Parts, body: Option<&[u8]>) -> Option<Outcome> {
        let classifier = self.classifier.as_ref()?;
        let outcome = classifier.classify(head, body);
        if !outcome.is_success() {
            crate::classify::trace_failure(classifier.provider(), &outcome);
        }
        Some(outcome)
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
}

impl TokenCredentialBuilder {
    pub(super) fn new(source: Box<dyn TokenSource>) -> Self {
        Self {
            rules: RulesBuilder::new(Ok(Placement::bearer())),
            rejection: Rejection { classifier: None },
            source,
            config: Config::default(),
        }
    }

    /// Makes [`build`](Self::build) fail with `err`: for presets that check their own settings
    /// (a token flow's client id and secret) and report like every other builder setting.
    pub(crate) fn fail(mut self, err: CredentialError) -> Self {
        self.rules.fail(err);
        self
    }

    /// How the API says that a token is no good, beyond a `401`: a response that `classifier`
    /// calls [`CredentialRejected`](crate::classify::OutcomeKind::CredentialRejected) makes
    /// [`TokenAuth`](crate::TokenAuth) refetch the token and replay the request once, wherever
    /// a [`ClassifyLayer`](crate::classify::ClassifyLayer) sits in the stack, or with none.
    /// Its verdict is put into the response's extensions as an
    /// [`Outcome`](crate::classify::Outcome).
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

    /// How long a fetch may take before it fails with
    /// [`TokenErrorKind::Timeout`](super::TokenErrorKind::Timeout) (default 30 s).
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
    /// refetch waits at least this long since the last one (default 5 s); meanwhile
    /// [`TokenCredential::rejected`] fails with
    /// [`TokenErrorKind::Rejected`](super::TokenErrorKind::Rejected), and
    /// [`TokenAuth`](crate::TokenAuth) hands back the API's answer unreplayed. The first
    /// rejection of a token obtained any other way always refetches.
    pub fn rejection_refetch_interval(mut self, interval: Duration) -> Self {
        self.config.rejection_refetch_interval = interval;
        self
    }

    /// Validates the configuration and builds the credential. Nothing is fetched yet.
    pub fn build(self) -> Result<TokenCredential, CredentialError> {
        Ok(TokenCredential::from_inner(Inner {
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
