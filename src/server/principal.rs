//! Who a credential belongs to, and the record a key store keeps for it.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// The caller a credential authenticated: put into the request's extensions by
/// [`ValidateCredential`](crate::ValidateCredential) for the handler to read.
///
/// Cloning is cheap (a reference count).
///
/// ```
/// use tower_api_auth::server::Principal;
///
/// let principal = Principal::new("svc-reports")
///     .with_organization("acme")
///     .with_scopes(["jobs:read", "jobs:write"]);
/// assert_eq!(principal.id(), "svc-reports");
/// assert_eq!(principal.organization(), Some("acme"));
/// assert!(principal.has_scope("jobs:write"));
/// assert!(!principal.has_scope("admin"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Principal(Arc<Inner>);

#[derive(Clone, PartialEq, Eq)]
struct Inner {
    id: Box<str>,
    organization: Option<Box<str>>,
    scopes: BTreeSet<Box<str>>,
}

impl Principal {
    /// A principal with this id (a user, a service account, a key's owner), no organization and
    /// no scopes.
    pub fn new(id: impl Into<Box<str>>) -> Self {
        Self(Arc::new(Inner {
            id: id.into(),
            organization: None,
            scopes: BTreeSet::new(),
        }))
    }

    /// The organization or workspace the principal acts in.
    pub fn with_organization(mut self, organization: impl Into<Box<str>>) -> Self {
        self.inner_mut().organization = Some(organization.into());
        self
    }

    /// Adds scopes (permissions) the principal holds.
    pub fn with_scopes<I>(mut self, scopes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Box<str>>,
    {
        self.inner_mut()
            .scopes
            .extend(scopes.into_iter().map(Into::into));
        self
    }

    /// The principal's id.
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// The organization or workspace, if one was given.
    pub fn organization(&self) -> Option<&str> {
        self.0.organization.as_deref()
    }

    /// Whether the principal holds `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.0.scopes.contains(scope)
    }

    /// Every scope the principal holds, in order.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.0.scopes.iter().map(|scope| &**scope)
    }

    fn inner_mut(&mut self) -> &mut Inner {
        // Only the builder methods mutate, on a principal nobody else holds yet: no copy.
        Arc::make_mut(&mut self.0)
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("id", &self.id())
            .field("organization", &self.organization())
            .field("scopes", &self.0.scopes)
            .finish()
    }
}

/// What a key store knows about one key: whose it is, until when it is valid, and whether it
/// was revoked.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use tower_api_auth::server::{KeyRecord, Principal};
///
/// let record = KeyRecord::new(Principal::new("svc-reports"))
///     .with_expiry(SystemTime::now() + Duration::from_secs(86_400));
/// assert!(!record.is_revoked());
/// assert_eq!(record.principal().id(), "svc-reports");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    principal: Principal,
    expires_at: Option<SystemTime>,
    revoked: bool,
}

impl KeyRecord {
    /// A valid key of `principal`, with no expiry.
    pub fn new(principal: Principal) -> Self {
        Self {
            principal,
            expires_at: None,
            revoked: false,
        }
    }

    /// The key is refused from `at` on.
    pub fn with_expiry(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// The same record, revoked: the key is refused, and the refusal is logged with its
    /// principal.
    pub fn revoked(mut self) -> Self {
        self.revoked = true;
        self
    }

    /// Whose key this is.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// When the key stops being valid, if ever.
    pub fn expiry(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// Whether the key was revoked.
    pub fn is_revoked(&self) -> bool {
        self.revoked
    }

    /// Whether the key is expired at `now`.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}
