//! [`ValidateCredentialLayer`]: what the validation middleware is configured with.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

use http::HeaderValue;
use tower::Layer;

use super::service::ValidateCredential;
use super::{KeyStore, RejectionResponse, Requirement};
use crate::Placement;

/// Validates the credential of every request against a [`KeyStore`]; see the
/// [module docs](super) for an example.
///
/// A request is let through with its [`Principal`](super::Principal) in its extensions, or
/// answered with a [`Rejection`](super::Rejection)'s response (401, 403 or 503, or as
/// [`reject_with`](Self::reject_with) says) without reaching the inner service. Cloning is
/// cheap: clones share the store.
pub struct ValidateCredentialLayer<K> {
    pub(super) store: Arc<K>,
    pub(super) placements: Arc<[Placement]>,
    pub(super) settings: Arc<Settings>,
}

/// What the request path needs after the lookup, shared by every request.
#[derive(Clone)]
pub(super) struct Settings {
    pub(super) requirement: Option<Requirement>,
    pub(super) respond: RejectionResponse,
    pub(super) clock: Arc<dyn Fn() -> SystemTime + Send + Sync>,
    /// `WWW-Authenticate` for a missing credential, and for an invalid one.
    pub(super) challenges: Option<(HeaderValue, HeaderValue)>,
    /// `Retry-After` on a 503.
    pub(super) retry_after: HeaderValue,
    /// The format every key must have, checked before hashing.
    #[cfg(feature = "key-format")]
    pub(super) format: Option<super::KeyFormat>,
    /// Whether the store's last lookup failed: its failures are logged once each way, not at
    /// every request refused meanwhile.
    pub(super) store_failing: StoreFailing,
}

/// A flag of [`Settings`]; a copy starts with the value copied.
#[derive(Default)]
pub(super) struct StoreFailing(pub(super) AtomicBool);

impl Clone for StoreFailing {
    fn clone(&self) -> Self {
        Self(AtomicBool::new(self.0.load(Relaxed)))
    }
}

impl<K: KeyStore> ValidateCredentialLayer<K> {
    /// Reads the credential from `placement` (`Placement::bearer()`,
    /// `Placement::header("x-api-key")?`, ...) and looks it up in `store`.
    pub fn new(placement: Placement, store: K) -> Self {
        Self {
            store: Arc::new(store),
            placements: Arc::new([]),
            settings: Arc::new(Settings {
                requirement: None,
                respond: RejectionResponse::json(),
                clock: Arc::new(SystemTime::now),
                challenges: None,
                retry_after: HeaderValue::from_static("5"),
                #[cfg(feature = "key-format")]
                format: None,
                store_failing: StoreFailing::default(),
            }),
        }
        .accept(placement)
    }
}

impl<K> ValidateCredentialLayer<K> {
    /// Also reads the credential from `placement`. A request must still present exactly one
    /// credential (see [`server`](super#what-a-request-must-present)).
    pub fn accept(mut self, placement: Placement) -> Self {
        if !self.placements.contains(&placement) {
            let mut placements = self.placements.to_vec();
            placements.push(placement);
            self.settings_mut().challenges = challenges(&placements);
            self.placements = placements.into();
        }
        self
    }

    /// Also requires `requirement` of the principal (else 403). Requirements add up: each one
    /// must hold.
    pub fn require(mut self, requirement: Requirement) -> Self {
        let settings = self.settings_mut();
        settings.requirement = Some(match settings.requirement.take() {
            Some(earlier) => earlier.and(requirement),
            None => requirement,
        });
        self
    }

    /// Also requires every one of `scopes` (else 403).
    pub fn require_scopes<I>(self, scopes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Box<str>>,
    {
        self.require(Requirement::scopes(scopes))
    }

    /// Answers refused requests as `respond` says (default: [`RejectionResponse::json`]).
    pub fn reject_with(mut self, respond: RejectionResponse) -> Self {
        self.settings_mut().respond = respond;
        self
    }

    /// Reads the time from `clock` to check expiries (default: `SystemTime::now`).
    pub fn clock<C>(mut self, clock: C) -> Self
    where
        C: Fn() -> SystemTime + Send + Sync + 'static,
    {
        self.settings_mut().clock = Arc::new(clock);
        self
    }

    /// Refuses a credential that does not have `format` (a wrong prefix or length, a bad
    /// checksum) as [`Malformed`](super::Rejection::Malformed), before hashing it or asking the store:
    /// a client guessing keys costs a CRC32 per request, and the store never sees it.
    #[cfg(feature = "key-format")]
    #[cfg_attr(docsrs, doc(cfg(feature = "key-format")))]
    pub fn key_format(mut self, format: super::KeyFormat) -> Self {
        self.settings_mut().format = Some(format);
        self
    }

    /// The `Retry-After` of a 503 (the store could not answer), in seconds (default 5).
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.settings_mut().retry_after = HeaderValue::from(seconds);
        self
    }

    fn settings_mut(&mut self) -> &mut Settings {
        Arc::make_mut(&mut self.settings)
    }
}

/// The challenges of the accepted `Authorization` schemes, if any: `Bearer` when the credential
/// is missing, `Bearer error="invalid_token"` when it is not valid (RFC 6750).
fn challenges(placements: &[Placement]) -> Option<(HeaderValue, HeaderValue)> {
    let schemes: Vec<&str> = placements.iter().filter_map(Placement::scheme).collect();
    if schemes.is_empty() {
        return None;
    }
    let invalid: Vec<String> = schemes
        .iter()
        .map(|scheme| match scheme.eq_ignore_ascii_case("bearer") {
            true => format!("{scheme} error=\"invalid_token\""),
            false => (*scheme).to_owned(),
        })
        .collect();
    // Schemes are RFC 9110 tokens, so both are valid header values.
    let missing = HeaderValue::from_str(&schemes.join(", ")).ok()?;
    let invalid = HeaderValue::from_str(&invalid.join(", ")).ok()?;
    Some((missing, invalid))
}

impl<K> Clone for ValidateCredentialLayer<K> {
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            placements: Arc::clone(&self.placements),
            settings: Arc::clone(&self.settings),
        }
    }
}

impl<K> fmt::Debug for ValidateCredentialLayer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidateCredentialLayer")
            .field("placements", &self.placements)
            .field("requirement", &self.settings.requirement)
            .field("respond", &self.settings.respond)
            .finish_non_exhaustive()
    }
}

impl<S, K> Layer<S> for ValidateCredentialLayer<K> {
    type Service = ValidateCredential<S, K>;

    fn layer(&self, inner: S) -> Self::Service {
        ValidateCredential {
            inner,
            config: self.clone(),
        }
    }
}
