use std::future::Future;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

use tower::BoxError;

use crate::Secret;

/// Where fetched tokens come from: a token endpoint (Akool's getToken, Polyteia's key exchange),
/// or a store of your own (Vault, Redis, a file).
///
/// A fetch is rare and off the per-request path, so it returns a boxed future. Any
/// `Fn() -> impl Future<Output = Result<Token, E>>` is a source:
///
/// ```
/// use std::time::Duration;
/// use tower_api_auth::{Token, TokenSource};
///
/// let source = || async {
///     // Read it from wherever you keep it.
///     Ok::<_, std::io::Error>(Token::new("token-from-vault").expires_in(Duration::from_secs(3600)))
/// };
/// fn assert_source(_: &impl TokenSource) {}
/// assert_source(&source);
/// ```
pub trait TokenSource: Send + Sync + 'static {
    /// Fetches a new token. The error should say what failed without the secrets involved.
    fn fetch(&self) -> BoxFuture<'static, Result<Token, BoxError>>;
}

impl<F, Fut, E> TokenSource for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Token, E>> + Send + 'static,
    E: Into<BoxError>,
{
    fn fetch(&self) -> BoxFuture<'static, Result<Token, BoxError>> {
        let fetch = self();
        Box::pin(async move { fetch.await.map_err(Into::into) })
    }
}

/// A fetched token and, when known, how long it lasts.
///
/// A relative lifetime (`expires_in`) is preferred over an absolute time (`expires_at`) when a
/// source knows both: it does not depend on the two clocks agreeing.
#[derive(Debug, Clone)]
pub struct Token {
    pub(crate) secret: Secret,
    pub(crate) lifetime: Option<Lifetime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifetime {
    In(Duration),
    At(SystemTime),
}

impl Token {
    /// A token with no known expiry: it is used until the API rejects it.
    pub fn new(secret: impl Into<Secret>) -> Self {
        Self {
            secret: secret.into(),
            lifetime: None,
        }
    }

    /// The token lasts `lifetime` from now (an `expires_in` from the server). Takes precedence
    /// over [`expires_at`](Self::expires_at).
    pub fn expires_in(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(Lifetime::In(lifetime));
        self
    }

    /// The token expires at `time` (an `expiresAt` or a JWT `exp` claim). Ignored when a
    /// relative lifetime is already known. A time already past is taken as "unknown": a
    /// skewed clock must not make every request refetch.
    pub fn expires_at(mut self, time: SystemTime) -> Self {
        if !matches!(self.lifetime, Some(Lifetime::In(_))) {
            self.lifetime = Some(Lifetime::At(time));
        }
        self
    }

    /// The token itself.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// How long the token lasts from now, if known and not already past.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        match self.lifetime? {
            Lifetime::In(lifetime) => Some(lifetime),
            Lifetime::At(time) => time.duration_since(SystemTime::now()).ok(),
        }
        .filter(|remaining| !remaining.is_zero())
    }

    /// Whether the source announced an expiry that has already passed: as a refresh of a cached
    /// token, such an answer is a failure (with nothing cached, it is used as a token of
    /// unknown expiry, since a skewed clock must not make every request refetch).
    pub(crate) fn already_expired(&self) -> bool {
        self.lifetime.is_some() && self.remaining().is_none()
    }
}

/// A token source's error that retrying cannot fix: wrong client credentials, a revoked
/// personal access key. Return it (`Err(Unrecoverable::new(err).into())`, into a
/// [`tower::BoxError`]) and every waiting
/// request gets a [`TokenError`](crate::TokenError) of kind
/// [`Unrecoverable`](super::TokenErrorKind::Unrecoverable) at once; the cached token, now
/// worthless, is dropped; the error is remembered for a few seconds (see
/// [`unrecoverable_hold`](super::TokenCredentialBuilder::unrecoverable_hold)) so that callers in
/// a loop do not reach the endpoint again within them, and no long backoff follows, so a fixed
/// configuration recovers within seconds. The presets use it for Akool's invalid-client codes
/// and Polyteia's 401 and 403.
///
/// ```
/// use tower_api_auth::{Token, TokenCredential};
/// use tower_api_auth::token::{TokenErrorKind, Unrecoverable, Window};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tokens = TokenCredential::builder(|| async {
///     // The token endpoint answered 401 to our client secret: asking again will not help.
///     Err::<Token, tower::BoxError>(Unrecoverable::new("the client secret was refused").into())
/// })
/// .any_origin()
/// .build()?;
///
/// let err = tokens.fetch().await.unwrap_err();
/// assert_eq!(err.kind(), TokenErrorKind::Unrecoverable);
/// let status = tokens.status();
/// assert_eq!(status.window, Window::Empty);
/// assert!(status.fetch_not_before.is_some()); // held: the next fetch waits a few seconds
/// assert!(status.last_error.is_some());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Unrecoverable(BoxError);

impl Unrecoverable {
    /// Marks `err` as one that retrying cannot fix.
    pub fn new(err: impl Into<BoxError>) -> Self {
        Self(err.into())
    }

    pub(super) fn into_inner(self) -> BoxError {
        self.0
    }
}

impl std::fmt::Display for Unrecoverable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Unrecoverable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}
