//! Credentials: a secret, where it goes in a request, and which origins may receive it.
//!
//! ```
//! use tower_api_auth::{Credential, Placement};
//!
//! // `Authorization: Bearer <token>`, sent to one API only.
//! let bearer = Credential::bearer("token-123")
//!     .origin("https://api.example.com")
//!     .build()?;
//!
//! // `X-API-Key: <key>`, sent wherever the client goes: this must be asked for.
//! let anywhere = Credential::header("X-API-Key", "key-456").any_origin().build()?;
//!
//! // `Authorization: Api-Key <key>`.
//! let api_key = Credential::builder(Placement::api_key(), "key-789")
//!     .origin("https://api.erathos.com")
//!     .build()?;
//!
//! // Bad input is a typed error at construction, never a panic, never an echo of the secret.
//! let err = Credential::bearer("token\r\nX-Injected: 1").any_origin().build().unwrap_err();
//! assert_eq!(err.to_string(), "the secret contains a control character at byte 5");
//!
//! // The secret can be rotated at run time; every clone (and every service built from one)
//! // sends the new value from its next request on.
//! bearer.rotate("token-124")?;
//! # Ok::<(), tower_api_auth::CredentialError>(())
//! ```

mod error;
mod placement;
mod scope;

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use arc_swap::{ArcSwap, Cache};
use http::Request;
use http::header::{HeaderName, HeaderValue};

pub use self::error::CredentialError;
pub use self::placement::Placement;
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
/// is seen by all of them. See the [module docs](self) for an example.
#[derive(Clone)]
pub struct Credential {
    shared: Arc<Shared>,
}

struct Shared {
    placement: Placement,
    /// Replaced whole by `rotate` (a plain `store`: the new value does not depend on the old).
    value: ArcSwap<HeaderValue>,
    scope: Scope,
    strip: Box<[HeaderName]>,
    defaults: Box<[(HeaderName, HeaderValue)]>,
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
        let value = self.shared.placement.header_value(&secret.into())?;
        self.shared.value.store(Arc::new(value));
        tracing::debug!(
            header = %self.shared.placement.header_name(),
            "credential rotated"
        );
        Ok(())
    }

    /// Where the secret goes in a request.
    pub fn placement(&self) -> &Placement {
        &self.shared.placement
    }

    /// The origins the credential is sent to, or `None` if it is sent to every origin.
    pub fn origins(&self) -> Option<&[Origin]> {
        match &self.shared.scope {
            Scope::Any => None,
            Scope::Origins(origins) => Some(origins),
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
            .field("header", self.shared.placement.header_name())
            .field("scheme", &self.shared.placement.scheme())
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
        let shared = &*self.credential.shared;
        if !shared.scope.permits(request.uri()) {
            tracing::debug!(
                header = %shared.placement.header_name(),
                host = request.uri().host().unwrap_or("<none>"),
                "request goes outside the credential's origins; credential not attached"
            );
            return;
        }
        // One cached load per request: the value cannot change halfway through.
        let value = HeaderValue::clone(self.value.load());
        let headers = request.headers_mut();
        for name in &shared.strip {
            headers.remove(name);
        }
        headers.insert(shared.placement.header_name().clone(), value);
        for (name, value) in &shared.defaults {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
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
    placement: Result<Placement, CredentialError>,
    secret: Secret,
    origins: Vec<Origin>,
    default_origin: Option<&'static str>,
    any_origin: bool,
    strip: Vec<HeaderName>,
    defaults: Vec<(HeaderName, HeaderValue)>,
    error: Option<CredentialError>,
}

impl CredentialBuilder {
    fn new(placement: Result<Placement, CredentialError>, secret: Secret) -> Self {
        Self {
            placement,
            secret,
            origins: Vec::new(),
            default_origin: None,
            any_origin: false,
            strip: Vec::new(),
            defaults: Vec::new(),
            error: None,
        }
    }

    /// Sends the credential to this origin (may be called for several). Takes an origin or a
    /// base URL (`https://api.example.com/v1`): only scheme, host and port count. Replaces a
    /// preset's default origin.
    pub fn origin(mut self, url: impl AsRef<str>) -> Self {
        match Origin::parse(url.as_ref()) {
            Ok(origin) => self.origins.push(origin),
            Err(err) => self.fail(err),
        }
        self
    }

    /// Sends the credential with every request, whatever its origin, including redirects to
    /// other hosts. Only for clients that talk to one API and nothing else (a gRPC channel to
    /// one endpoint, say).
    pub fn any_origin(mut self) -> Self {
        self.any_origin = true;
        self
    }

    /// Removes this header from every request the credential is attached to. Akool, for one,
    /// lets `Authorization` shadow `x-api-key`, so its preset strips `Authorization`.
    pub fn strip_header(mut self, name: HeaderName) -> Self {
        self.strip.push(name);
        self
    }

    /// Adds this header to requests that do not have it. Polyteia, for one, requires
    /// `Content-Type: application/json` on every call.
    pub fn default_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.defaults.push((name, value));
        self
    }

    pub(crate) fn default_origin(mut self, url: &'static str) -> Self {
        self.default_origin = Some(url);
        self
    }

    fn fail(&mut self, err: CredentialError) {
        self.error.get_or_insert(err);
    }

    /// Validates everything and builds the credential.
    pub fn build(mut self) -> Result<Credential, CredentialError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let placement = self.placement?;
        let value = placement.header_value(&self.secret)?;
        let scope = if self.any_origin {
            Scope::Any
        } else {
            if self.origins.is_empty() {
                let default = self.default_origin.ok_or(CredentialError::NoOrigin)?;
                self.origins.push(Origin::parse(default)?);
            }
            Scope::Origins(self.origins.into())
        };
        // The credential's own header is set, never stripped.
        self.strip.retain(|name| name != placement.header_name());
        Ok(Credential {
            shared: Arc::new(Shared {
                placement,
                value: ArcSwap::from_pointee(value),
                scope,
                strip: self.strip.into(),
                defaults: self.defaults.into(),
            }),
        })
    }
}

impl fmt::Debug for CredentialBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialBuilder")
            .field("placement", &self.placement)
            .field("secret", &self.secret)
            .field("origins", &self.origins)
            .field("any_origin", &self.any_origin)
            .finish_non_exhaustive()
    }
}
