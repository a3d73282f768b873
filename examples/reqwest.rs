//! The four providers through a `reqwest::Client` (feature `reqwest`), against their loopback
//! stand-ins, offline:
//!
//! ```sh
//! cargo run --example reqwest --features reqwest
//! ```
//!
//! Akkio and Erathos with their API keys, Polyteia's key exchange and Akool's getToken fetched
//! through the same reqwest client; then Polyteia answers a 401 and Akool code 1101 in an HTTP
//! 200, and each request is replayed once with a new token. Against the real APIs, enable
//! reqwest's TLS (`rustls` or `native-tls`) and drop the `.origin(..)`/`.base_url(..)` calls.

use http::Request;
use http_body_util::BodyExt;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_api_auth::ServiceBuilderAuthExt;
use tower_api_auth::outcome::Outcome;
use tower_api_auth::providers::{akkio, akool, erathos, polyteia};
use tower_api_auth::reqwest::ReqwestService;
use tower_api_auth_mock::MockProviders;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mock = MockProviders::start().await?;
    mock.akkio.accept_key("akkio-key");
    mock.erathos.accept_key("erathos-key");
    mock.polyteia.accept_key("pak-key");
    mock.akool.accept_key("akool-client-secret");
    let http = ReqwestService::new(reqwest::Client::new());

    let akkio = akkio::api_key("akkio-key")
        .origin(mock.akkio.base_url())
        .build()?;
    let client = ServiceBuilder::new()
        .classify(akkio::classifier())
        .auth(akkio)
        .service(http.clone());
    call(
        "Akkio",
        client,
        format!("{}/api/v1/models", mock.akkio.base_url()),
        None,
    )
    .await?;

    let erathos = erathos::api_key("erathos-key")
        .origin(mock.erathos.base_url())
        .build()?;
    let client = ServiceBuilder::new()
        .classify(erathos::classifier())
        .auth(erathos)
        .service(http.clone());
    let url = format!(
        "{}/developers/workspaces/ws1/jobs/",
        mock.erathos.base_url()
    );
    call("Erathos", client, url, None).await?;

    let tokens = polyteia::key_exchange("pak-key")
        .base_url(mock.polyteia.base_url())
        .build(http.clone())?;
    let client = ServiceBuilder::new()
        .classify(polyteia::classifier())
        .token_auth(tokens.clone())
        .service(http.clone());
    let url = format!("{}/api", mock.polyteia.base_url());
    let command = r#"{"query":"list_solutions","params":{}}"#;
    call("Polyteia", client.clone(), url.clone(), Some(command)).await?;
    mock.polyteia.expire_tokens();
    call("Polyteia, token expired (401)", client, url, Some(command)).await?;
    println!(
        "  Polyteia key exchanges: {}",
        mock.polyteia.token_request_count()
    );

    let tokens = akool::client_credentials("akool-client", "akool-client-secret")
        .base_url(mock.akool.base_url())
        .build(http.clone())?;
    let client = ServiceBuilder::new()
        .classify(akool::classifier())
        .token_auth(tokens.clone())
        .service(http);
    let url = format!("{}/api/open/v3/faceswap/quota/info", mock.akool.base_url());
    call("Akool", client.clone(), url.clone(), None).await?;
    mock.akool.expire_tokens();
    call("Akool, token expired (code 1101)", client, url, None).await?;
    println!(
        "  Akool getToken calls: {}",
        mock.akool.token_request_count()
    );
    Ok(())
}

/// Sends a GET (or a POST of `json`) through `client` and prints the classified outcome.
async fn call<S, B>(what: &str, client: S, url: String, json: Option<&str>) -> Result<(), BoxError>
where
    S: tower::Service<Request<reqwest::Body>, Response = http::Response<B>>,
    S::Error: Into<BoxError>,
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let request = match json {
        Some(json) => Request::post(&url)
            .header("content-type", "application/json")
            .body(reqwest::Body::from(json.to_owned()))?,
        None => Request::get(&url).body(reqwest::Body::default())?,
    };
    let response = client.oneshot(request).await.map_err(Into::into)?;
    let outcome = response
        .extensions()
        .get::<Outcome>()
        .cloned()
        .ok_or("not classified")?;
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(Into::into)?
        .to_bytes();
    println!("{what}: {outcome} ({} bytes)", body.len());
    if !outcome.is_success() {
        return Err(format!("{what}: {outcome}").into());
    }
    Ok(())
}
