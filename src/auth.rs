//! Attach a static credential to outgoing requests.

use std::fmt;
use std::task::{Context, Poll};

use http::Request;
use tower::{Layer, Service};

use crate::Credential;
use crate::credential::CachedCredential;

/// Layer that applies [`Auth`], which attaches a [`Credential`] to outgoing requests.
///
/// # Example
///
/// ```
/// use http::{Request, Response};
/// use tower::{Service, ServiceBuilder, ServiceExt};
/// use tower_api_auth::{AuthLayer, Credential};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let credential = Credential::header("X-API-Key", "my-key")
///     .origin("https://api.akkio.com")
///     .build()?;
///
/// // Any `Service<Request<B>>`: a hyper-util client in real code.
/// let client = tower::service_fn(|request: Request<()>| async move {
///     let key = request.headers().get("x-api-key").cloned();
///     Ok::<_, std::convert::Infallible>(Response::new(key))
/// });
/// let mut client = ServiceBuilder::new()
///     .layer(AuthLayer::new(credential.clone()))
///     .service(client);
///
/// let request = Request::get("https://api.akkio.com/v1/models").body(())?;
/// let response = client.ready().await?.call(request).await?;
/// assert_eq!(response.into_body().unwrap(), "my-key");
///
/// // Rotate the key: the next request carries the new one.
/// credential.rotate("my-new-key")?;
/// let request = Request::get("https://api.akkio.com/v1/models").body(())?;
/// let response = client.ready().await?.call(request).await?;
/// assert_eq!(response.into_body().unwrap(), "my-new-key");
///
/// // Another origin never sees the key.
/// let request = Request::get("https://elsewhere.example/").body(())?;
/// let response = client.ready().await?.call(request).await?;
/// assert!(response.into_body().is_none());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AuthLayer {
    credential: Credential,
}

impl AuthLayer {
    /// Attaches `credential` to every request bound for one of its origins.
    pub fn new(credential: Credential) -> Self {
        Self { credential }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth::new(inner, self.credential.clone())
    }
}

impl fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("credential", &self.credential)
            .finish()
    }
}

/// Middleware that attaches a [`Credential`] to every request bound for one of its origins,
/// replacing any value the request already had for that header. Requests to other origins pass
/// through untouched.
///
/// No async work happens here: the response future is the inner service's own.
///
/// See [`AuthLayer`] for an example.
#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    credential: CachedCredential,
}

impl<S> Auth<S> {
    /// Wraps `inner`, attaching `credential` to its requests.
    pub fn new(inner: S, credential: Credential) -> Self {
        Self {
            inner,
            credential: credential.cached(),
        }
    }

    /// Returns a new [`Layer`] that wraps services with an [`Auth`] middleware.
    pub fn layer(credential: Credential) -> AuthLayer {
        AuthLayer::new(credential)
    }

    inner_service_accessors!();
}

impl<S, B> Service<Request<B>> for Auth<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        self.credential.attach(&mut request);
        self.inner.call(request)
    }
}

impl<S: fmt::Debug> fmt::Debug for Auth<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("inner", &self.inner)
            .field("credential", self.credential.credential())
            .finish()
    }
}
