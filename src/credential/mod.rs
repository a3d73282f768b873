//! Credentials: a secret, where it goes in a request, and which origins may receive it.

mod error;
mod placement;
mod rules;
mod scope;

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use arc_swap::{ArcSwap, Cache};
use http::Request;
use http::header::{HeaderName, HeaderValue};

pub use self::error::CredentialError;
pub use self::placement::Placement;
pub(crate) use self::placement::check_secret;
pub(crate) use self::rules::{Rules, RulesBuilder};
pub use self::scope::Origin;
use self::scope::Scope;
use crate::Secret;

/// A validated secret, its [`Placement`] in a request, and the origins it may be sent to.
///
/// Built with [`Credential::builder`] or a shortcut ([`bearer`](Credential::bearer),
/// [`header`](Credential::header), [`authorization`](Credential::authorization)), or by a
/// provider preset in [`providers`](crate::providers). The header value is built once, marked
/// sensitive, and shared: attaching it to a request clones a reference-counted buffer and
/// formats nothing.
///
/// Cloning is cheap, and clones share the secret: [`rotate`](Credential::rotate) on any clone
/// is seen by all of them.
///
/// ```
/// use tower_api_auth::{Credential, Placement};
///
/// // `Authorization: Bearer <token>`, sent to one API only.
/// let bearer = Credential::bearer("token-123")
///     .origin("https://api.example.com")
///     .build()?;
///
/// // `X-API-Key: <key>`, sent wherever the client goes: this must be asked for.
/// let anywhere = Credential::header("X-API-Key", "key-456").any_origin().build()?;
///
/// // `Authorization: Api-Key <key>`.
/// let api_key = Credential::builder(Placement::api_key(), "key-789")
///     .origin("https://api.erathos.com")
///     .build()?;
///
/// // Bad input is a typed error at construction, never a panic, never an echo of the secret.
/// let err = Credential::bearer("token\r\nX-Injected: 1").any_origin().build().unwrap_err();
/// assert_eq!(err.to_string(), "the secret contains a control character at byte 5");
///
/// // The secret can be rotated at run time; every clone (and every service built from one)
/// // sends the new value from its next request on.
/// bearer.rotate("token-124")?;
/// # Ok::<(), tower_api_auth::CredentialError>(())
/// ```
#[derive(Clone)]
pub struct Credential {
    shared: Arc<Shared>,
}

struct Shared {
    rules: Rules,
    /// Replaced whole by `rotate` (a plain `store`: the new value does not depend on the old).
    value: ArcSwap<HeaderValue>,
}

impl Credential {
    /// Starts a credential that places `secret` as `placement` says.
    pub fn builder(placement: Placement, secret: impl Into<Secret>) -> CredentialBuilder {
        CredentialBuilder::new(Ok(placement), secret.into())
    }

    /// Starts an `Authorization: Bearer <secret>` credential.
    pub fn bearer(secret: impl Into<Secret>) -> CredentialBuilder {
        Self::builder(Placement::bearer(), secret)
    }

    /// Starts an `Authorization: <scheme> <secret>` credential. An invalid scheme is reported
    /// by [`CredentialBuilder::build`].
    pub fn authorization(scheme: &str, secret: impl Into<Secret>) -> CredentialBuilder {
        CredentialBuilder::new(Placement::authorization(scheme), secret.into())
    }

    /// Starts a `<name>: <secret>` credential. An invalid name is reported by
    /// [`CredentialBuilder::build`].
    pub fn header<N>(name: N, secret: impl Into<Secret>) -> CredentialBuilder
    where
        N: TryInto<HeaderName>,
    {
        CredentialBuilder::new(Placement::header(name), secret.into())
    }

    /// Replaces the secret. Every clone of this credential, and every service holding one,
    /// sends the new value from its next request on; requests already sent keep the old one.
    ///
    /// An invalid secret is refused with the same error [`CredentialBuilder::build`] gives,
    /// and the current secret stays in place.
    pub fn rotate(&self, secret: impl Into<Secret>) -> Result<(), CredentialError> {
        let value = self.shared.rules.placement.header_value(&secret.into())?;
        self.shared.value.store(Arc::new(value));
        tracing::debug!(
            header = %self.shared.rules.placement.header_name(),
            "credential rotated"
        );
        Ok(())
    }

    /// Where the secret goes in a request.
    pub fn placement(&self) -> &Placement {
        &self.shared.rules.placement
    }

    /// The origins the credential is sent to, or `None` if it is sent to every origin.
    pub fn origins(&self) -> Option<&[Origin]> {
        match &self.shared.rules.scope {
            Scope::Any => None,
            Scope::Origins(origins) => Some(origins),
        }
    }

    /// Puts the credential on a request's `headers` if `uri` is in scope (the reqwest
    /// middleware, which has no per-service cache).
    #[cfg(feature = "reqwest-middleware")]
    pub(crate) fn attach_to(&self, uri: &http::Uri, headers: &mut http::HeaderMap) {
        let rules = &self.shared.rules;
        if rules.permits(uri) {
            rules.apply(HeaderValue::clone(&self.shared.value.load()), headers);
        }
    }

    /// A per-service view that skips the shared load while the secret has not changed.
    pub(crate) fn cached(&self) -> CachedCredential {
        CachedCredential {
            value: Cache::new(ValueCell(Arc::clone(&self.shared))),
            credential: self.clone(),
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("header", self.shared.rules.placement.header_name())
            .field("scheme", &self.shared.rules.placement.scheme())
            .field("origins", &self.origins())
            .field("secret", &format_args!("[redacted]"))
            .finish()
    }
}

/// Lets an `arc_swap::Cache` reach the value inside the shared state.
#[derive(Clone)]
pub(crate) struct ValueCell(Arc<Shared>);

impl Deref for ValueCell {
    type Target = ArcSwap<HeaderValue>;

    fn deref(&self) -> &Self::Target {
        &self.0.value
    }
}

/// A credential plus a cache of its current value, owned by one service clone.
#[derive(Clone)]
pub(crate) struct CachedCredential {
    credential: Credential,
    value: Cache<ValueCell, Arc<HeaderValue>>,
}

impl CachedCredential {
    pub(crate) fn credential(&self) -> &Credential {
        &self.credential
    }

    /// Puts the credential on `request` if the request goes to an origin in scope: removes the
    /// headers the credential conflicts with, sets its header (replacing any value the request
    /// had), and adds the default headers the request lacks.
    pub(crate) fn attach<B>(&mut self, request: &mut Request<B>) {
        let rules = &self.credential.shared.rules;
        if rules.permits(request.uri()) {
            // One cached load per request: the value cannot change halfway through.
            rules.apply(HeaderValue::clone(self.value.load()), request.headers_mut());
        }
    }
}

/// Builds a [`Credential`]; every problem is reported once, by [`build`](Self::build).
///
/// A credential must be scoped: give it the origins it belongs to with
/// [`origin`](Self::origin), or ask for [`any_origin`](Self::any_origin) explicitly. Provider
/// presets come with their provider's origin, which `origin` replaces (a loopback stand-in, a
/// proxy).
#[must_use = "call `.build()` to get the credential"]
pub struct CredentialBuilder {
    rules: RulesBuilder,
    secret: Secret,
}

impl CredentialBuilder {
    fn new(placement: Result<Placement, CredentialError>, secret: Secret) -> Self {
        Self {
            rules: RulesBuilder::new(placement),
            secret,
        }
    }

    rules_methods!("credential");

    pub(crate) fn default_origin(mut self, url: &'static str) -> Self {
        self.rules.default_origin(url);
        self
    }

    /// Validates everything and builds the credential.
    pub fn build(self) -> Result<Credential, CredentialError> {
        let value = self.rules.placement_ref()?.header_value(&self.secret)?;
        let rules = self.rules.build()?;
        Ok(Credential {
            shared: Arc::new(Shared {
                rules,
                value: ArcSwap::from_pointee(value),
            }),
        })
    }
}

impl fmt::Debug for CredentialBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialBuilder")
            .field("rules", &self.rules)
            .field("secret", &self.secret)
            .finish()
    }
}
