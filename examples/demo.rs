//! The main job: every provider's credential on the wire, offline.
//!
//! Starts loopback stand-ins of Akkio, Polyteia, Erathos and Akool, sends requests through a
//! hyper-util client wrapped in the crate's layers, and shows what arrived and what came back:
//! the header each provider expects, 401/403 for wrong or missing keys, Akool's body codes, a
//! key rotated mid-run, a key that stays home when a request goes to another origin, and the
//! server side: an axum app of your own that checks keys, scopes and revocations.
//!
//! ```sh
//! cargo run --example demo
//! RUST_LOG=tower_api_auth=trace cargo run --example demo   # more of the crate's tracing
//! cargo run --example demo --features metrics    # and the metrics it recorded, at the end
//! ```

#[path = "shared/jobs_api.rs"]
mod jobs_api;

use std::error::Error;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_api_auth::outcome::Outcome;
use tower_api_auth::providers::{akkio, akool, erathos, polyteia};
use tower_api_auth::{AuthLayer, ClassifyLayer, Credential, TokenAuthLayer};
use tower_api_auth_mock::{MockProviders, MockServer};
use tracing_subscriber::EnvFilter;

type HttpClient = Client<HttpConnector, Full<Bytes>>;
type Result<T = (), E = Box<dyn Error + Send + Sync>> = std::result::Result<T, E>;

#[tokio::main]
async fn main() -> Result {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,tower_api_auth=debug")),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    #[cfg(feature = "metrics")]
    let prometheus = install_metrics()?;

    let mocks = MockProviders::start().await?;
    mocks.akkio.accept_key("akkio-demo-key");
    mocks.polyteia.accept_key("pak-demo-1");
    mocks.erathos.accept_key("erathos-demo-key");
    mocks.akool.accept_key("akool-demo-key");
    mocks.akool.ban_key("akool-banned-key");
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();

    section("Akkio: X-API-Key");
    let credential = akkio::api_key("akkio-demo-key")
        .origin(mocks.akkio.base_url())
        .build()?;
    let mut api = ServiceBuilder::new()
        .layer(AuthLayer::new(credential))
        .service(client.clone());
    let base = mocks.akkio.base_url();
    send(&mut api, &mocks.akkio, get(format!("{base}/api/v1/models"))).await?;
    send(
        &mut api,
        &mocks.akkio,
        get(format!("{base}/api/v1/restricted/models")),
    )
    .await?;
    let mut bare = client.clone();
    send(
        &mut bare,
        &mocks.akkio,
        get(format!("{base}/api/v1/models")),
    )
    .await?;

    section("Polyteia: Bearer personal access key, rotated mid-run");
    let credential = polyteia::access_key("pak-demo-1")
        .origin(mocks.polyteia.base_url())
        .build()?;
    let mut api = AuthLayer::new(credential.clone()).layer(client.clone());
    let url = format!("{}/api", mocks.polyteia.base_url());
    let query = r#"{"query":"list_datasets","params":{}}"#;
    send(&mut api, &mocks.polyteia, post(&url, query)).await?;
    send(
        &mut api,
        &mocks.polyteia,
        post(&url, r#"{"query":"restricted"}"#),
    )
    .await?;
    println!("  (the key pak-demo-1 is deleted upstream; a new one is issued)");
    mocks.polyteia.revoke_key("pak-demo-1");
    mocks.polyteia.accept_key("pak-demo-2");
    send(&mut api, &mocks.polyteia, post(&url, query)).await?;
    credential.rotate("pak-demo-2")?;
    println!("  (credential.rotate(..): every clone of the client sends the new key from now on)");
    send(&mut api, &mocks.polyteia, post(&url, query)).await?;
    println!(
        "  rotating to \"pak demo 3\" is refused: {}",
        credential.rotate("pak demo 3").unwrap_err()
    );

    section("Erathos: Authorization: Api-Key");
    let credential = erathos::api_key("erathos-demo-key")
        .origin(mocks.erathos.base_url())
        .build()?;
    let mut api = AuthLayer::new(credential).layer(client.clone());
    let base = mocks.erathos.base_url();
    send(
        &mut api,
        &mocks.erathos,
        get(format!("{base}/developers/workspaces/ws1/jobs/")),
    )
    .await?;
    let restricted = format!("{base}/developers/workspaces/restricted/jobs/");
    send(&mut api, &mocks.erathos, get(restricted)).await?;
    println!("  (the same client, pointed at the Akkio stand-in: the key stays home)");
    let elsewhere = format!("{}/api/v1/models", mocks.akkio.base_url());
    send(&mut api, &mocks.akkio, get(elsewhere)).await?;

    section("Akool: x-api-key; errors arrive as HTTP 200 with a body code");
    let credential = akool::api_key("akool-demo-key")
        .origin(mocks.akool.base_url())
        .build()?;
    let mut api = AuthLayer::new(credential).layer(client.clone());
    let url = format!("{}/api/open/v3/faceswap/quota/info", mocks.akool.base_url());
    let mut stale = get(&url);
    stale
        .headers_mut()
        .insert(AUTHORIZATION, "Bearer stale-token".parse()?);
    println!("  (a stale Authorization header would shadow the key: the preset removes it)");
    send(&mut api, &mocks.akool, stale).await?;
    let mut bare = client.clone();
    send(&mut bare, &mocks.akool, get(&url)).await?;
    let banned = akool::api_key("akool-banned-key")
        .origin(mocks.akool.base_url())
        .build()?;
    let mut api = AuthLayer::new(banned).layer(client.clone());
    send(&mut api, &mocks.akool, get(&url)).await?;

    section("Akool client credentials: a token fetched once, lazily, for everyone");
    mocks.akool.accept_key("akool-client-secret");
    let tokens = akool::client_credentials("akool-client-id", "akool-client-secret")
        .base_url(mocks.akool.base_url())
        .build(client.clone())?;
    println!(
        "  before any request: {} token fetches",
        tokens.fetch_count()
    );
    // The classify layer inside turns Akool's code 1101 (in an HTTP 200) into the verdict
    // "token expired" that the token layer acts on.
    let api = ServiceBuilder::new()
        .layer(TokenAuthLayer::new(tokens.clone()))
        .layer(ClassifyLayer::new(akool::classifier()))
        .service(client.clone());
    let burst = (0..100).map(|_| api.clone().oneshot(get(&url)));
    let responses = futures::future::try_join_all(burst).await?;
    println!(
        "  100 concurrent requests: {} answered, {} token fetch (getToken called {} time)",
        responses.len(),
        tokens.fetch_count(),
        mocks.akool.token_request_count()
    );
    println!("  (Akool expires every token it issued: the next call gets code 1101)");
    mocks.akool.expire_tokens();
    let before = mocks.akool.request_count();
    let response = api.clone().oneshot(get(&url)).await?;
    let outcome = response.extensions().get::<Outcome>().cloned();
    let body = response.into_body().collect().await?.to_bytes();
    println!(
        "  one request: {} attempts (1101, then replayed with a new token), {} token fetches",
        mocks.akool.request_count() - before - 1,
        tokens.fetch_count()
    );
    if let Some(outcome) = outcome {
        println!("    outcome  {outcome}");
    }
    println!("    received {}", String::from_utf8_lossy(&body));

    section("Your own API: an axum app behind ValidateCredentialLayer");
    let keys = jobs_api::demo_keys();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = jobs_api::app(keys.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let as_key = |key: &str| -> Result<_> {
        let credential = Credential::header("x-api-key", key).origin(&base).build()?;
        Ok(AuthLayer::new(credential).layer(client.clone()))
    };
    let reader = as_key("reader-key-0001")?;
    for (what, api, request) in [
        ("reader, GET /v1/me", &reader, get(format!("{base}/v1/me"))),
        (
            "reader, POST /v1/jobs",
            &reader,
            post(&format!("{base}/v1/jobs"), "{}"),
        ),
        (
            "writer, POST /v1/jobs",
            &as_key("writer-key-0002")?,
            post(&format!("{base}/v1/jobs"), "{}"),
        ),
        (
            "unknown key",
            &as_key("nobody-key")?,
            get(format!("{base}/v1/me")),
        ),
    ] {
        let response = api.clone().oneshot(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        println!(
            "  {what:<22} -> {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    keys.revoke("reader-key-0001");
    let response = reader.clone().oneshot(get(format!("{base}/v1/me"))).await?;
    println!("  reader, after revoke   -> {}", response.status());

    section("Bad input is a typed error at construction, and names no secret");
    for (what, result) in [
        (
            "a key with a trailing space",
            akkio::api_key("akkio-demo-key ").build(),
        ),
        (
            "a key with CR/LF",
            akkio::api_key("key\r\nX-Injected: 1").build(),
        ),
        (
            "an origin with userinfo",
            akkio::api_key("k").origin("https://u:p@h").build(),
        ),
    ] {
        println!("  {what:<28} -> {}", result.unwrap_err());
    }

    #[cfg(feature = "metrics")]
    {
        println!("\n== The metrics this run recorded (Prometheus text format)\n");
        print!("{}", prometheus.render());
    }
    #[cfg(not(feature = "metrics"))]
    println!(
        "\n(`--features metrics` also prints the metrics this run recorded, in Prometheus text)"
    );
    Ok(())
}

/// A Prometheus recorder for the whole process; `render()` writes the text format.
#[cfg(feature = "metrics")]
fn install_metrics() -> Result<metrics_exporter_prometheus::PrometheusHandle> {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)?;
    tower_api_auth::metrics::describe();
    Ok(handle)
}

fn section(title: &str) {
    println!("\n== {title}");
}

fn get(url: impl AsRef<str>) -> Request<Full<Bytes>> {
    Request::get(url.as_ref())
        .body(Full::default())
        .expect("a valid request")
}

fn post(url: &str, json: &'static str) -> Request<Full<Bytes>> {
    Request::post(url)
        .body(Full::new(Bytes::from_static(json.as_bytes())))
        .expect("a valid request")
}

/// Sends `request`, then prints the credential headers the server received (redacted to their
/// shape) and the response.
async fn send<S>(api: &mut S, server: &MockServer, request: Request<Full<Bytes>>) -> Result
where
    S: Service<Request<Full<Bytes>>, Response = http::Response<hyper::body::Incoming>>,
    S::Error: Into<Box<dyn Error + Send + Sync>>,
{
    let line = format!("{} {}", request.method(), request.uri().path());
    let response = api
        .ready()
        .await
        .map_err(Into::into)?
        .call(request)
        .await
        .map_err(Into::into)?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let arrived = server
        .requests()
        .pop()
        .map(|r| r.headers)
        .unwrap_or_default();
    println!("  {line}");
    println!("    sent     {}", credential_headers(&arrived));
    println!("    received {status} {}", String::from_utf8_lossy(&body));
    Ok(())
}

/// The auth headers that arrived, each value shown as its shape (`Bearer <10 bytes>`), never
/// its content: even a demo does not print keys.
fn credential_headers(headers: &HeaderMap) -> String {
    let shown: Vec<String> = ["x-api-key", "authorization", "content-type"]
        .into_iter()
        .flat_map(|name| headers.get_all(name).iter().map(move |v| (name, v)))
        .map(|(name, value)| {
            let value = value.to_str().unwrap_or("<binary>");
            if name == "content-type" {
                return format!("{name}: {value}");
            }
            match value.split_once(' ') {
                Some((scheme, secret)) => format!("{name}: {scheme} <{} bytes>", secret.len()),
                None => format!("{name}: <{} bytes>", value.len()),
            }
        })
        .collect();
    if shown.is_empty() {
        "(no credential)".to_owned()
    } else {
        shown.join(", ")
    }
}
