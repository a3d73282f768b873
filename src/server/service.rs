//! [`ValidateCredential`]: find the credential, look it up, admit or refuse.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Full};
use tower::{BoxError, Service};

use super::future::{Pending, ResponseFuture, State};
use super::layer::{Settings, ValidateCredentialLayer};
use super::{KeyDigest, KeyRecord, KeyStore, Principal, Rejection};

/// The service of [`ValidateCredentialLayer`].
pub struct ValidateCredential<S, K> {
    pub(super) inner: S,
    pub(super) config: ValidateCredentialLayer<K>,
}

impl<S, K> ValidateCredential<S, K> {
    inner_service_accessors!();
}

impl<S: Clone, K> Clone for ValidateCredential<S, K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: self.config.clone(),
        }
    }
}

impl<S: fmt::Debug, K> fmt::Debug for ValidateCredential<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidateCredential")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

impl<S, K, B, ResBody> Service<Request<B>> for ValidateCredential<S, K>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    K: KeyStore,
{
    type Response = Response<Either<ResBody, Full<Bytes>>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, K, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let settings = &self.config.settings;
        let placements = &self.config.placements;
        let lookup = match super::extract::credential(placements, request.headers()) {
            Ok(credential) if settings.well_formed(credential) => {
                let lookup = self.config.store.lookup(&KeyDigest::of(credential));
                super::extract::mark_sensitive(placements, request.headers_mut());
                lookup
            }
            Ok(_) => {
                let response = settings.respond(refused(Rejection::Malformed, None));
                return ResponseFuture::new(State::Refused {
                    response: Some(response),
                });
            }
            Err(rejection) => {
                let response = settings.respond(refused(rejection, None));
                return ResponseFuture::new(State::Refused {
                    response: Some(response),
                });
            }
        };
        // Hand the service that was made ready to the future; keep a fresh clone for later.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::new(State::LookingUp {
            lookup,
            pending: Some(Pending {
                inner,
                request,
                settings: Arc::clone(settings),
            }),
        })
    }
}

impl Settings {
    /// Whether `credential` has the configured key format, if any.
    #[cfg(feature = "key-format")]
    pub(super) fn well_formed(&self, credential: &[u8]) -> bool {
        self.format
            .as_ref()
            .is_none_or(|format| format.check(credential).is_ok())
    }

    #[cfg(not(feature = "key-format"))]
    pub(super) fn well_formed(&self, _: &[u8]) -> bool {
        true
    }

    /// Judges the record found for a request's credential: the request, with its principal in
    /// its extensions, or why it is refused.
    pub(super) fn admit<B>(
        &self,
        found: Result<Option<KeyRecord>, BoxError>,
        request: Request<B>,
    ) -> Result<Request<B>, Rejection> {
        let failing = &self.store_failing.0;
        let record = match found {
            Err(error) => {
                if failing.swap(true, Relaxed) {
                    tracing::debug!(%error, "the key store failed to look a credential up");
                } else {
                    tracing::error!(
                        %error,
                        "the key store failed to look a credential up; refusing with 503 while \
                         it fails (said once, and when it answers again)"
                    );
                }
                return Err(refused(Rejection::Unavailable, None));
            }
            Ok(found) => {
                if failing.load(Relaxed) && failing.swap(false, Relaxed) {
                    tracing::info!("the key store answers again");
                }
                match found {
                    Some(record) => record,
                    None => return Err(refused(Rejection::Unknown, None)),
                }
            }
        };
        let principal = record.principal();
        if record.is_revoked() {
            return Err(refused(Rejection::Revoked, Some(principal)));
        }
        // The clock is read only for keys that can expire.
        if record.expiry().is_some_and(|at| at <= (self.clock)()) {
            return Err(refused(Rejection::Expired, Some(principal)));
        }
        let (mut parts, body) = request.into_parts();
        if let Some(requirement) = &self.requirement {
            if !requirement.allows(principal, &parts) {
                return Err(refused(Rejection::Forbidden, Some(principal)));
            }
        }
        tracing::trace!(principal = principal.id(), "credential accepted");
        crate::metrics::server_accepted();
        parts.extensions.insert(principal.clone());
        Ok(Request::from_parts(parts, body))
    }

    /// The answer to a refused request.
    pub(super) fn respond(&self, rejection: Rejection) -> Response<Full<Bytes>> {
        let challenge = self
            .challenges
            .as_ref()
            .map(|(missing, invalid)| match rejection {
                Rejection::Missing => missing,
                _ => invalid,
            });
        let mut response = self.respond.respond(rejection, challenge);
        if response.status() == http::StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, self.retry_after.clone());
        }
        response
    }
}

/// Logs why a request is refused: the reason and the principal, never the credential.
fn refused(rejection: Rejection, principal: Option<&Principal>) -> Rejection {
    crate::metrics::server_refused(rejection.label());
    tracing::info!(
        reason = %rejection,
        principal = principal.map(Principal::id),
        "request refused"
    );
    rejection
}
