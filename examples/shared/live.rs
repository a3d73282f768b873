//! What the provider examples share: tracing, an HTTPS-capable client, the environment, and
//! one call printed as its classified outcome. Used with `#[path]` by `akkio.rs`, `polyteia.rs`,
//! `erathos.rs` and `akool.rs`.

use std::env;
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

/// HTTPS for the real APIs (rustls, with the Mozilla roots), plain HTTP for loopback.
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Logs to stderr; `RUST_LOG` overrides the default filter.
pub fn init_tracing() {
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
pub fn exit_code(result: Result<Outcome, BoxError>) -> ExitCode {
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
