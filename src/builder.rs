//! [`ServiceBuilderAuthExt`]: the crate's layers as `ServiceBuilder` methods.

use tower::ServiceBuilder;
use tower::layer::util::Stack;

use crate::outcome::Classifier;
use crate::{AuthLayer, ClassifyLayer, Credential, TokenAuthLayer, TokenCredential};

/// The crate's layers as methods of [`ServiceBuilder`], so a stack reads
/// `ServiceBuilder::new().classify(classifier).auth(credential)`. Layers apply outermost first,
/// as with [`ServiceBuilder::layer`].
///
/// ```
/// use http::{Request, Response};
/// use tower::{Service, ServiceBuilder, ServiceExt};
/// use tower_api_auth::ServiceBuilderAuthExt;
/// use tower_api_auth::outcome::Outcome;
/// use tower_api_auth::providers::erathos;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// # let hyper_util_client = tower::service_fn(|request: Request<String>| async move {
/// #     let auth = request.headers()["authorization"].to_str().unwrap().to_owned();
/// #     Ok::<_, std::convert::Infallible>(Response::new(http_body_util::Full::<bytes::Bytes>::from(auth)))
/// # });
/// let mut client = ServiceBuilder::new()
///     .classify(erathos::classifier())
///     .auth(erathos::api_key("erathos-key").build()?)
///     .service(hyper_util_client);
///
/// let request = Request::get("https://api.erathos.com/developers/workspaces/ws1/jobs/")
///     .body(String::new())?;
/// let response = client.ready().await?.call(request).await?;
/// assert!(response.extensions().get::<Outcome>().unwrap().is_success());
/// # Ok(())
/// # }
/// ```
///
/// Sealed: implemented for `ServiceBuilder` only.
pub trait ServiceBuilderAuthExt<L>: sealed::Sealed<L> + Sized {
    /// Adds [`AuthLayer`]: `credential` on every request bound for its origins.
    fn auth(self, credential: Credential) -> ServiceBuilder<Stack<AuthLayer, L>>;

    /// Adds [`TokenAuthLayer`]: a fetched token on every request, replayed once on rejection.
    fn token_auth(self, tokens: TokenCredential) -> ServiceBuilder<Stack<TokenAuthLayer, L>>;

    /// Adds [`ClassifyLayer`]: a typed [`Outcome`](crate::outcome::Outcome) on every response.
    fn classify<C: Classifier>(self, classifier: C) -> ServiceBuilder<Stack<ClassifyLayer<C>, L>>;

    /// Adds [`ValidateCredentialLayer`](crate::ValidateCredentialLayer) with the
    /// credential read from `placement` and looked up in `store`; for more settings, build the
    /// layer and pass it to [`ServiceBuilder::layer`].
    #[cfg(feature = "server")]
    #[cfg_attr(docsrs, doc(cfg(feature = "server")))]
    fn validate_credential<K: crate::server::KeyStore>(
        self,
        placement: crate::Placement,
        store: K,
    ) -> ServiceBuilder<Stack<crate::ValidateCredentialLayer<K>, L>>;
}

impl<L> ServiceBuilderAuthExt<L> for ServiceBuilder<L> {
    fn auth(self, credential: Credential) -> ServiceBuilder<Stack<AuthLayer, L>> {
        self.layer(AuthLayer::new(credential))
    }

    fn token_auth(self, tokens: TokenCredential) -> ServiceBuilder<Stack<TokenAuthLayer, L>> {
        self.layer(TokenAuthLayer::new(tokens))
    }

    fn classify<C: Classifier>(self, classifier: C) -> ServiceBuilder<Stack<ClassifyLayer<C>, L>> {
        self.layer(ClassifyLayer::new(classifier))
    }

    #[cfg(feature = "server")]
    fn validate_credential<K: crate::server::KeyStore>(
        self,
        placement: crate::Placement,
        store: K,
    ) -> ServiceBuilder<Stack<crate::ValidateCredentialLayer<K>, L>> {
        self.layer(crate::ValidateCredentialLayer::new(placement, store))
    }
}

mod sealed {
    pub trait Sealed<L> {}

    impl<L> Sealed<L> for tower::ServiceBuilder<L> {}
}
