//! [`keep_credential_home`]: a reqwest redirect policy under which no redirect carries a
//! credential to another origin.

/// A `reqwest` redirect policy under which no redirect carries a credential to another origin.
///
/// reqwest follows redirects inside the client, below every layer and middleware, and removes
/// only `Authorization`, `Cookie` and `Proxy-Authorization` when a redirect leaves the host: a
/// key in another header (Akkio's `X-API-Key`, Akool's `x-api-key`) would go along. Under this
/// policy, redirects within the first request's origin (scheme, host and port) are followed, up
/// to 10 as reqwest's default policy does; the first one that leaves it is not followed, and its
/// `3xx` response is the answer.
///
/// ```
/// let client = reqwest::Client::builder()
///     .redirect(tower_api_auth::reqwest::keep_credential_home())
///     .build()?;
/// let http = tower_api_auth::reqwest::ReqwestService::new(client);
/// # Ok::<(), reqwest::Error>(())
/// ```
pub fn keep_credential_home() -> ::reqwest::redirect::Policy {
    ::reqwest::redirect::Policy::custom(|attempt| {
        let home = attempt.previous().first().map(|first| first.origin());
        if attempt.previous().len() > 10 {
            attempt.error("too many redirects")
        } else if home.is_some_and(|home| home == attempt.url().origin()) {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}
