//! The [`Principal`] extractor for axum handlers.

use std::convert::Infallible;
use std::fmt;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use super::Principal;

/// The principal [`ValidateCredentialLayer`](crate::ValidateCredentialLayer) authenticated.
///
/// ```
/// use axum::{Router, routing::get};
/// use tower_api_auth::{Placement, ValidateCredentialLayer};
/// use tower_api_auth::server::{MemoryKeyStore, Principal};
///
/// async fn whoami(principal: Principal) -> String {
///     principal.id().to_owned()
/// }
///
/// async fn hello(principal: Option<Principal>) -> String {
///     match principal {
///         Some(principal) => format!("hello, {}", principal.id()),
///         None => "hello, stranger".to_owned(),
///     }
/// }
///
/// let keys = MemoryKeyStore::new();
/// let app: Router = Router::new()
///     .route("/whoami", get(whoami))
///     .route_layer(ValidateCredentialLayer::new(Placement::bearer(), keys))
///     .route("/hello", get(hello));
/// ```
///
/// As `Principal`, it refuses a request the layer did not authenticate with
/// [`MissingPrincipal`] (500: the route is missing the layer, a bug to fix, not a client
/// error). As `Option<Principal>`, it never refuses.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = MissingPrincipal;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(MissingPrincipal(()))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Principal>().cloned())
    }
}

/// The request reached a handler that takes a [`Principal`] without passing
/// [`ValidateCredentialLayer`](crate::ValidateCredentialLayer): answered with 500.
#[derive(Debug)]
pub struct MissingPrincipal(());

impl fmt::Display for MissingPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no authenticated principal: the route is not behind ValidateCredentialLayer")
    }
}

impl std::error::Error for MissingPrincipal {}

impl IntoResponse for MissingPrincipal {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}
