//! The validation middleware: [`ValidateCredentialLayer`], [`ValidateCredential`] and their
//! [`ResponseFuture`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::{Either, Full};
use pin_project_lite::pin_project;
use tower::{BoxError, Layer, Service};

use super::{KeyDigest, KeyRecord, KeyStore, Principal, Rejection, RejectionResponse, Requirement};
use crate::Placement;

/// Validates the credential of every request against a [`KeyStore`]; see the
/// [module docs](super) for an example.
///
/// A request is let through with its [`Principal`] in its extensions, or answered with a
/// [`Rejection`]'s response (401, 403, 503, or Akool's codes) without reaching the inner
/// service. Cloning is cheap: clones share the store.
pub struct ValidateCredentialLayer<K> {
    store: Arc<K>,
    placements: Arc<[Placement]>,
    settings: Arc<Settings>,
}

/// What the request path needs after the lookup, shared by every request.
#[derive(Clone)]
struct Settings {
    requirement: Option<Requirement>,
    respond: RejectionResponse,
    clock: Arc<dyn Fn() -> SystemTime + Send + Sync>,
    /// `WWW-Authenticate` for a missing credential, and for an invalid one.
    challenges: Option<(HeaderValue, HeaderValue)>,
    /// `Retry-After` on a 503.
    retry_after: HeaderValue,
    /// The format every key must have, checked before hashing.
    #[cfg(feature = "key-format")]
    format: Option<super::KeyFormat>,
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
    /// checksum) as [`Malformed`](Rejection::Malformed), before hashing it or asking the store:
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

/// The service of [`ValidateCredentialLayer`].
pub struct ValidateCredential<S, K> {
    inner: S,
    config: ValidateCredentialLayer<K>,
}

impl<S, K> ValidateCredential<S, K> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
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

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let settings = &self.config.settings;
        let lookup = match super::extract::credential(&self.config.placements, request.headers()) {
            Ok(credential) if settings.well_formed(credential) => {
                self.config.store.lookup(&KeyDigest::of(credential))
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
    fn well_formed(&self, credential: &[u8]) -> bool {
        self.format
            .as_ref()
            .is_none_or(|format| format.check(credential).is_ok())
    }

    #[cfg(not(feature = "key-format"))]
    fn well_formed(&self, _: &[u8]) -> bool {
        true
    }

    /// Judges the record found for a request's credential: the request, with its principal in
    /// its extensions, or why it is refused.
    fn admit<B>(
        &self,
        found: Result<Option<KeyRecord>, BoxError>,
        request: Request<B>,
    ) -> Result<Request<B>, Rejection> {
        let record = match found {
            Ok(Some(record)) => record,
            Ok(None) => return Err(refused(Rejection::Unknown, None)),
            Err(error) => {
                tracing::error!(%error, "the key store failed to look a credential up");
                return Err(refused(Rejection::Unavailable, None));
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
    fn respond(&self, rejection: Rejection) -> Response<Full<Bytes>> {
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

pin_project! {
    /// The future of [`ValidateCredential`].
    pub struct ResponseFuture<S, K, B>
    where
        S: Service<Request<B>>,
        K: KeyStore,
    {
        #[pin]
        state: State<S, K, B>,
    }
}

/// What waits for the lookup.
struct Pending<S, B> {
    inner: S,
    request: Request<B>,
    settings: Arc<Settings>,
}

pin_project! {
    #[project = StateProj]
    enum State<S, K, B>
    where
        S: Service<Request<B>>,
        K: KeyStore,
    {
        // Refused before any lookup (no credential, or a malformed one).
        Refused { response: Option<Response<Full<Bytes>>> },
        // Waiting for the key store.
        LookingUp {
            #[pin]
            lookup: K::Lookup,
            pending: Option<Pending<S, B>>,
        },
        // Admitted: the inner service answers.
        Calling {
            #[pin]
            future: S::Future,
        },
    }
}

impl<S, K, B> ResponseFuture<S, K, B>
where
    S: Service<Request<B>>,
    K: KeyStore,
{
    fn new(state: State<S, K, B>) -> Self {
        Self { state }
    }
}

const POLLED_AFTER_COMPLETION: &str = "ResponseFuture polled after completion";

impl<S, K, B, ResBody> Future for ResponseFuture<S, K, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    K: KeyStore,
{
    type Output = Result<Response<Either<ResBody, Full<Bytes>>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::Refused { response } => {
                    let response = response.take().expect(POLLED_AFTER_COMPLETION);
                    return Poll::Ready(Ok(response.map(Either::Right)));
                }
                StateProj::LookingUp { lookup, pending } => {
                    let found = ready!(lookup.poll(cx));
                    let Pending {
                        mut inner,
                        request,
                        settings,
                    } = pending.take().expect(POLLED_AFTER_COMPLETION);
                    match settings.admit(found, request) {
                        Ok(request) => State::Calling {
                            future: inner.call(request),
                        },
                        Err(rejection) => {
                            let response = settings.respond(rejection);
                            return Poll::Ready(Ok(response.map(Either::Right)));
                        }
                    }
                }
                StateProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(Either::Left)));
                }
            };
            this.state.set(next);
        }
    }
}

impl<S, K, B> fmt::Debug for ResponseFuture<S, K, B>
where
    S: Service<Request<B>>,
    K: KeyStore,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
