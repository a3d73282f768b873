//! What an authenticated principal must satisfy to make a request (else 403).

use std::fmt;
use std::sync::Arc;

use http::request::Parts;

use super::Principal;

/// A requirement on the principal and the request: scopes it must hold, or any predicate.
///
/// ```
/// use http::Method;
/// use tower_api_auth::server::Requirement;
///
/// // Holds both scopes.
/// let writers = Requirement::scopes(["jobs:read", "jobs:write"]);
/// // Only reads, unless the principal is an admin.
/// let reads = Requirement::predicate(|principal, request| {
///     request.method == Method::GET || principal.has_scope("admin")
/// });
/// let both = writers.and(reads);
/// # let _ = both;
/// ```
#[derive(Clone)]
pub struct Requirement(Arc<Predicate>);

type Predicate = dyn Fn(&Principal, &Parts) -> bool + Send + Sync;

impl Requirement {
    /// The principal holds every one of `scopes`.
    pub fn scopes<I>(scopes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Box<str>>,
    {
        let scopes: Box<[Box<str>]> = scopes.into_iter().map(Into::into).collect();
        Self::predicate(move |principal, _| scopes.iter().all(|s| principal.has_scope(s)))
    }

    /// `allows` answers `true` for the principal and the request (its head: method, URI,
    /// headers, extensions).
    pub fn predicate<F>(allows: F) -> Self
    where
        F: Fn(&Principal, &Parts) -> bool + Send + Sync + 'static,
    {
        Self(Arc::new(allows))
    }

    /// Both this requirement and `other`.
    pub fn and(self, other: Requirement) -> Self {
        Self::predicate(move |principal, request| {
            self.allows(principal, request) && other.allows(principal, request)
        })
    }

    pub(crate) fn allows(&self, principal: &Principal, request: &Parts) -> bool {
        (self.0)(principal, request)
    }
}

impl fmt::Debug for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Requirement(..)")
    }
}
