//! Redirects that keep the credential home: a tower-http `FollowRedirect` policy that removes

use http::uri::{Scheme, Uri};
use http::{HeaderName, Request};
use tower_http::follow_redirect::policy::{Action, Attempt, Policy, Standard};

use crate::Placement;

/// A `FollowRedirect` policy that removes the credential's header once a redirect leaves the
/// origin of the first request, and then decides as `P` does (tower-http's standard policy by
/// default: at most 20 redirects, `Authorization` and cookies filtered across origins).
///
/// the credential's header from any request a redirect sends to another origin.
///
/// tower-http's own `FilterCredentials` removes `Authorization` and `Cookie` on a cross-origin
/// hop, not `X-API-Key` or any other header a credential may use. With `FollowRedirect` *inside*
/// [`AuthLayer`](crate::AuthLayer) (the redirects are followed below the layer that adds the
/// key), wrap the policy in [`KeepCredentialHome`]. With `FollowRedirect` *outside*, every hop
/// goes through the auth layer, which attaches the credential only to the origins it belongs to
/// (unless it was built with `any_origin()`); the policy is harmless there too.
///
/// ```
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Full;
/// use tower::{Service, ServiceBuilder, ServiceExt};
/// use tower_api_auth::{AuthLayer, KeepCredentialHome};
/// use tower_api_auth::providers::akool;
/// use tower_http::follow_redirect::FollowRedirectLayer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tower::BoxError> {
/// let credential = akool::api_key("akool-key").build()?;
/// // Akool's API redirects to another host, which must never see the key.
/// let http = tower::service_fn(|request: Request<Full<Bytes>>| async move {
///     let response = match request.uri().host() {
///         Some("openapi.akool.com") => Response::builder()
///             .status(StatusCode::TEMPORARY_REDIRECT)
///             .header("location", "https://elsewhere.example/file"),
///         _ => Response::builder().header("x-saw-key", request.headers().contains_key("x-api-key").to_string()),
///     };
///     Ok::<_, std::convert::Infallible>(response.body(Full::<Bytes>::default()).unwrap())
/// });
/// let mut client = ServiceBuilder::new()
///     .layer(AuthLayer::new(credential.clone()))
///     .layer(FollowRedirectLayer::with_policy(KeepCredentialHome::new(credential.placement())))
///     .service(http);
///
/// let request = Request::get("https://openapi.akool.com/api/open/v3/file").body(Full::default())?;
/// let response = client.ready().await?.call(request).await?;
/// assert_eq!(response.headers()["x-saw-key"], "false");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct KeepCredentialHome<P = Standard> {
    inner: P,
    header: HeaderName,
    /// Set once a hop left the first request's origin: the header stays removed from then on.
    left_home: bool,
}

impl KeepCredentialHome {
    /// Keeps the header of `placement` (`credential.placement()`, `tokens.placement()`) home,
    /// with tower-http's standard policy.
    pub fn new(placement: &Placement) -> Self {
        Self::with_policy(placement, Standard::default())
    }
}

impl<P> KeepCredentialHome<P> {
    /// Keeps the header of `placement` home, deciding the rest with `policy`.
    pub fn with_policy(placement: &Placement, policy: P) -> Self {
        Self {
            inner: policy,
            header: placement.header_name().clone(),
            left_home: false,
        }
    }
}

fn default_port(scheme: Option<&Scheme>) -> Option<u16> {
    match scheme?.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Same scheme, host and port (a missing port being the scheme's default).
fn same_origin(a: &Uri, b: &Uri) -> bool {
    let port = |uri: &Uri| uri.port_u16().or_else(|| default_port(uri.scheme()));
    a.scheme() == b.scheme()
        && a.host().map(str::to_ascii_lowercase) == b.host().map(str::to_ascii_lowercase)
        && port(a) == port(b)
}

impl<B, E, P: Policy<B, E>> Policy<B, E> for KeepCredentialHome<P> {
    fn redirect(&mut self, attempt: &Attempt<'_>) -> Result<Action, E> {
        if !same_origin(attempt.previous(), attempt.location()) {
            self.left_home = true;
        }
        self.inner.redirect(attempt)
    }

    fn on_request(&mut self, request: &mut Request<B>) {
        if self.left_home && request.headers_mut().remove(&self.header).is_some() {
            tracing::debug!(
                header = %self.header,
                host = request.uri().host().unwrap_or("<none>"),
                "redirected to another origin: credential removed"
            );
        }
        self.inner.on_request(request);
    }

    fn clone_body(&self, body: &B) -> Option<B> {
        self.inner.clone_body(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let same = [
            ("https://api.example.com/a", "https://API.example.com:443/b"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/x?y"),
        ];
        for (a, b) in same {
            assert!(
                same_origin(&a.parse().unwrap(), &b.parse().unwrap()),
                "{a} {b}"
            );
        }
        let other = [
            ("https://api.example.com/", "http://api.example.com/"),
            ("https://api.example.com/", "https://api.example.com:8443/"),
            ("https://api.example.com/", "https://evil.example/"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8081/"),
        ];
        for (a, b) in other {
            assert!(
                !same_origin(&a.parse().unwrap(), &b.parse().unwrap()),
                "{a} {b}"
            );
        }
    }
}
