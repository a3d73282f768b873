//! Akool's account credit, through the crate's layers.
//!
//! Against the real API when credentials are in the environment, against a loopback stand-in
//! otherwise (so it runs offline as it is):
//!
//! ```sh
//! cargo run --example akool                                               # loopback stand-in
//! AKOOL_CLIENT_ID=.. AKOOL_CLIENT_SECRET=.. cargo run --example akool     # getToken flow
//! AKOOL_API_KEY=.. cargo run --example akool                              # x-api-key
//! AKOOL_BASE_URL=http://127.0.0.1:8080 AKOOL_API_KEY=.. cargo run --example akool
//! ```
//!
//! It asks for `GET {base}/api/open/v3/faceswap/quota/info`, prints the classified outcome and
//! the credit (never a key or a token), and exits non-zero when the call fails.

use std::env;
use std::process::ExitCode;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_api_auth::classify::{ClassifyLayer, Outcome};
use tower_api_auth::mock::{MockServer, Provider};
use tower_api_auth::providers::akool;
use tower_api_auth::{AuthLayer, TokenAuthLayer};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_api_auth=debug".into()),
        )
        .init();
    match run().await {
        Ok(outcome) if outcome.is_success() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<Outcome, BoxError> {
    // HTTPS for the real API (rustls, with the Mozilla roots), plain HTTP for loopback.
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    let http = Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(https);

    let var = |name| env::var(name).ok().filter(|value| !value.is_empty());
    let client_credentials = var("AKOOL_CLIENT_ID").zip(var("AKOOL_CLIENT_SECRET"));
    let api_key = var("AKOOL_API_KEY");
    let mut stand_in = None;
    let base_url = match var("AKOOL_BASE_URL") {
        Some(url) => url,
        None if client_credentials.is_some() || api_key.is_some() => akool::BASE_URL.to_owned(),
        None => {
            let server = MockServer::start(Provider::Akool).await?;
            server.accept_key("demo-client-secret");
            let url = server.base_url();
            stand_in = Some(server);
            url
        }
    };
    let url = format!("{base_url}/api/open/v3/faceswap/quota/info");
    let classify = ClassifyLayer::new(akool::classifier());

    let outcome = match (client_credentials, api_key) {
        (None, Some(key)) => {
            println!("Akool at {base_url}, with an API key (x-api-key)");
            let credential = akool::api_key(key).origin(&base_url).build()?;
            let client = ServiceBuilder::new()
                .layer(AuthLayer::new(credential))
                .layer(classify)
                .service(http);
            credit(client, &url).await?
        }
        (credentials, _) => {
            let (id, secret) = credentials.unwrap_or_else(|| {
                println!("No Akool credentials in the environment: using a loopback stand-in");
                ("demo-client".to_owned(), "demo-client-secret".to_owned())
            });
            println!("Akool at {base_url}, with client credentials (getToken, then Bearer)");
            let tokens = akool::client_credentials(id, secret)
                .base_url(&base_url)
                .build(http.clone())?;
            let client = ServiceBuilder::new()
                .layer(TokenAuthLayer::new(tokens.clone()))
                .layer(classify)
                .service(http);
            let outcome = credit(client, &url).await?;
            println!("token fetches: {}", tokens.fetch_count());
            outcome
        }
    };
    drop(stand_in);
    Ok(outcome)
}

/// Asks for the credit and prints what came back.
async fn credit<S, B>(client: S, url: &str) -> Result<Outcome, BoxError>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let request = Request::get(url).body(Full::default())?;
    let response = client.oneshot(request).await.map_err(Into::into)?;
    let outcome = response
        .extensions()
        .get::<Outcome>()
        .cloned()
        .ok_or("the response was not classified")?;
    let body = response.into_body().collect().await.map_err(Into::into)?;
    let json: serde_json::Value = serde_json::from_slice(&body.to_bytes()).unwrap_or_default();
    println!("outcome: {outcome}");
    if let Some(credit) = json.pointer("/data/credit") {
        println!("credit: {credit}");
    }
    Ok(outcome)
}
