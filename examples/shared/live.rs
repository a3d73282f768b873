//! What the provider examples share: the runtime and tracing, the choice between the real API
//! and a loopback stand-in, an HTTPS-capable client, and one call printed as its classified
//! outcome. Used with `#[path]` by `akkio.rs`, `polyteia.rs`, `erathos.rs` and `akool.rs`, so
//! that each reads as its provider's usage.

use std::env;
use std::future::Future;
use std::process::ExitCode;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{BoxError, Service, ServiceExt};
use tower_api_auth::outcome::Outcome;
use tower_api_auth::providers::{akkio, akool, erathos, polyteia};
use tower_api_auth_mock::{MockServer, Provider};

/// HTTPS for the real APIs (rustls, with the Mozilla roots), plain HTTP for loopback.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Runs an example: tracing on, `run` on a multi-threaded Tokio runtime, success when the call
/// succeeded (the error printed otherwise).
pub fn main<F>(run: impl FnOnce() -> F) -> ExitCode
where
    F: Future<Output = Result<Outcome, BoxError>>,
{
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => exit_code(runtime.block_on(run())),
        Err(err) => exit_code(Err(err.into())),
    }
}

/// Where an example's calls go and with which credentials: the real API when its credentials
/// are in the environment, a loopback stand-in of the provider otherwise (so that every example
/// runs offline as it is).
pub struct Api<C> {
    /// The credentials from the environment, or the ones the stand-in accepts.
    pub credentials: C,
    /// `{PROVIDER}_BASE_URL` or the real API's (with credentials), else the stand-in's.
    pub base_url: String,
    /// The stand-in, when the environment had no credentials; it stops when dropped.
    // Held for its lifetime by every example, read by those that steer it (akool.rs).
    #[allow(dead_code)]
    pub stand_in: Option<MockServer>,
}

impl<C> Api<C> {
    /// The real API with the credentials `from_env` when there are some; otherwise a stand-in of
    /// `provider` that accepts `demo_key`, with the `demo` credentials.
    pub async fn choose(
        provider: Provider,
        from_env: Option<C>,
        demo: C,
        demo_key: &str,
    ) -> Result<Self, BoxError> {
        let (needed, base_url_var, real_url) = environment(provider)?;
        if let Some(credentials) = from_env {
            let base_url = var(base_url_var).unwrap_or_else(|| real_url.to_owned());
            return Ok(Self {
                credentials,
                base_url,
                stand_in: None,
            });
        }
        println!("No {needed} in the environment: using a loopback stand-in");
        let stand_in = MockServer::start(provider).await?;
        stand_in.accept_key(demo_key);
        Ok(Self {
            credentials: demo,
            base_url: stand_in.base_url(),
            stand_in: Some(stand_in),
        })
    }
}

/// What each provider's example reads from the environment: the credentials' variables (as
/// said when they are missing), the base URL's variable, and the real API's base URL.
fn environment(provider: Provider) -> Result<(&'static str, &'static str, &'static str), BoxError> {
    Ok(match provider {
        Provider::Akkio => ("AKKIO_API_KEY", "AKKIO_BASE_URL", akkio::BASE_URL),
        Provider::Polyteia => (
            "POLYTEIA_ACCESS_KEY",
            "POLYTEIA_BASE_URL",
            polyteia::BASE_URL,
        ),
        Provider::Erathos => (
            "ERATHOS_API_KEY and ERATHOS_WORKSPACE_ID",
            "ERATHOS_BASE_URL",
            erathos::BASE_URL,
        ),
        Provider::Akool => (
            "AKOOL_CLIENT_ID and AKOOL_CLIENT_SECRET, nor AKOOL_API_KEY,",
            "AKOOL_BASE_URL",
            akool::BASE_URL,
        ),
        other => return Err(format!("no example environment for {other:?}").into()),
    })
}

/// Logs to stderr; `RUST_LOG` overrides the default filter.
fn init_tracing() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_api_auth=debug".into()),
        )
        .init();
}

pub fn http_client() -> HttpClient {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(https)
}

/// A non-empty environment variable.
pub fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|value| !value.is_empty())
}

/// Success when the call succeeded; the error printed otherwise.
fn exit_code(result: Result<Outcome, BoxError>) -> ExitCode {
    match result {
        Ok(outcome) if outcome.is_success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Sends `request` through `client` (whose stack classifies responses) and prints the outcome;
/// returns it with the JSON body.
pub async fn call<S, B>(
    client: S,
    request: Request<Full<Bytes>>,
) -> Result<(Outcome, serde_json::Value), BoxError>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    println!("{} {}", request.method(), request.uri());
    let response = client.oneshot(request).await.map_err(Into::into)?;
    let outcome = response
        .extensions()
        .get::<Outcome>()
        .cloned()
        .ok_or("the response was not classified")?;
    let body = response.into_body().collect().await.map_err(Into::into)?;
    let json = serde_json::from_slice(&body.to_bytes()).unwrap_or_default();
    println!("outcome: {outcome}");
    Ok((outcome, json))
}
