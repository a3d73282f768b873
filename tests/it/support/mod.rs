//! What the integration tests share: a real hyper-util client and request helpers, the
//! provider stand-ins as the tests start them (the servers are the crate's own loopback
//! stand-ins, `tower_api_auth_mock`), throwaway PostgreSQL and Redis servers, and the path by
//! which a test runs this binary again as a child process.
#![allow(dead_code, unreachable_pub)]

pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
pub mod silent_proxy;

use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower_api_auth::providers::akool;
use tower_api_auth::{Credential, CredentialBuilder, TokenCredential, TokenError};
use tower_api_auth_mock::{MockServer, Provider};

/// The request body every test sends.
pub type Body = Full<Bytes>;

/// A plain HTTP/1 hyper-util client, as a user would build it.
pub type HttpClient = Client<HttpConnector, Body>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An HTTP/2 (prior knowledge) client: thousands of concurrent requests share one connection.
pub fn client_h2() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

pub fn get(url: impl AsRef<str>) -> Request<Body> {
    Request::get(url.as_ref()).body(Body::default()).unwrap()
}

pub fn post_json(url: impl AsRef<str>, json: &str) -> Request<Body> {
    Request::post(url.as_ref())
        .body(Full::new(Bytes::copy_from_slice(json.as_bytes())))
        .unwrap()
}

/// Reads the whole response body as JSON.
pub async fn json<B>(response: Response<B>) -> serde_json::Value
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

/// A provider's stand-in accepting the static `key`, and the preset's credential for that key
/// scoped to the stand-in: `scoped_key(Provider::Akkio, akkio::api_key, "akkio-key")`.
pub async fn scoped_key(
    provider: Provider,
    preset: impl FnOnce(&'static str) -> CredentialBuilder,
    key: &'static str,
) -> (MockServer, Credential) {
    let server = MockServer::start(provider).await.unwrap();
    server.accept_key(key);
    let credential = preset(key).origin(server.base_url()).build().unwrap();
    (server, credential)
}

/// The Akool stand-in, accepting the client secret `client-secret`.
pub async fn akool_server() -> MockServer {
    let server = MockServer::start(Provider::Akool).await.unwrap();
    server.accept_key("client-secret");
    server
}

/// The Polyteia stand-in, accepting the personal access key `pak_1`.
pub async fn polyteia_server() -> MockServer {
    let server = MockServer::start(Provider::Polyteia).await.unwrap();
    server.accept_key("pak_1");
    server
}

/// Akool tokens (client credentials `client-id`, `client-secret`) from `server`, fetched through
/// `http`.
pub fn akool_tokens(server: &MockServer, http: HttpClient) -> TokenCredential {
    akool::client_credentials("client-id", "client-secret")
        .base_url(server.base_url())
        .build(http)
        .unwrap()
}

/// A Polyteia API request (`list_datasets`), which wants a token.
pub fn polyteia_request(server: &MockServer) -> Request<Body> {
    post_json(
        format!("{}/api", server.base_url()),
        r#"{"query":"list_datasets"}"#,
    )
}

/// An Akool API endpoint that wants a token.
pub fn quota_url(server: &MockServer) -> String {
    format!("{}/api/open/v3/faceswap/quota/info", server.base_url())
}

/// The `TokenError` a request through `TokenAuthLayer` failed with; panics on any other error.
pub fn token_error(err: tower::BoxError) -> TokenError {
    match err.downcast::<TokenError>() {
        Ok(err) => *err,
        Err(other) => panic!("expected a TokenError, got {other}"),
    }
}

/// The name libtest knows a test function of this binary by, for a test that runs the binary
/// again to run only that function (with `--exact`): its module path without the crate's name,
/// so `test_path(module_path!(), "fleet_worker")` in `tests/it/tokens/store/fleet/worker.rs` is
/// `tokens::store::fleet::worker::fleet_worker`.
pub fn test_path(module_path: &str, function: &str) -> String {
    let (_binary, path) = module_path
        .split_once("::")
        .expect("called from a module of the test binary");
    format!("{path}::{function}")
}

/// Everything a `tracing` subscriber writes, kept for assertions.
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Installs a TRACE-level subscriber writing here, for the current thread, until the guard
    /// is dropped.
    ///
    /// `tracing` caches each callsite's interest process-wide, computed on whichever thread hits
    /// it first. A sibling test without a subscriber would cache "never" and silence the event
    /// here too, so a silent always-interested global subscriber is installed once first: with
    /// two dispatchers live, interest is the union of both and never collapses to "never".
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        static GLOBAL: std::sync::Once = std::sync::Once::new();
        GLOBAL.call_once(|| {
            let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
        });
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(self.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// A loopback server that answers from a fixed table, for the classification tests: every row
/// of the provider tables, plus endpoints that fail a number of times before they succeed.
pub struct CannedServer {
    pub base_url: String,
    hits: Arc<Mutex<std::collections::HashMap<String, usize>>>,
    _served: Served,
}

impl CannedServer {
    pub async fn start() -> Self {
        use axum::extract::{Path, Query, State};
        use axum::response::{IntoResponse, Response as AxumResponse};
        use axum::routing::get;

        type Hits = Arc<Mutex<std::collections::HashMap<String, usize>>>;
        fn json() -> [(http::HeaderName, &'static str); 1] {
            [(http::header::CONTENT_TYPE, "application/json")]
        }

        async fn status(
            Path(code): Path<u16>,
            Query(query): Query<std::collections::HashMap<String, String>>,
        ) -> AxumResponse {
            let status = http::StatusCode::from_u16(code).unwrap();
            let mut response = (
                status,
                [(http::header::CONTENT_TYPE, "application/json")],
                format!(r#"{{"detail":"status {code}"}}"#),
            )
                .into_response();
            if let Some(retry_after) = query.get("retry_after") {
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, retry_after.parse().unwrap());
            }
            response
        }
        async fn akool(Path(code): Path<i64>) -> AxumResponse {
            let body = format!(r#"{{"code":{code},"msg":"message for {code}","data":null}}"#);
            ([(http::header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        /// Fails `n` times (status `code`, `Retry-After: 0` for 429 and when `?retry_after` is
        /// given) and then succeeds; any method.
        async fn flaky(
            State(hits): State<Hits>,
            Path((code, n)): Path<(u16, usize)>,
            Query(query): Query<std::collections::HashMap<String, String>>,
        ) -> AxumResponse {
            let key = format!("{code}/{n}");
            let hit = {
                let mut hits = hits.lock().unwrap();
                let hit = hits.entry(key).or_default();
                *hit += 1;
                *hit
            };
            if hit <= n {
                let mut response = http::StatusCode::from_u16(code).unwrap().into_response();
                if code == 429 || query.contains_key("retry_after") {
                    response
                        .headers_mut()
                        .insert(http::header::RETRY_AFTER, "0".parse().unwrap());
                }
                response
            } else {
                "ok".into_response()
            }
        }

        let hits: Hits = Arc::default();
        let huge = format!(
            r#"{{"code":1101,"msg":"expired","data":"{}"}}"#,
            "x".repeat(100 * 1024)
        );
        let router = axum::Router::new()
            .route("/status/{code}", get(status))
            .route("/akool/{code}", get(akool))
            .route("/flaky/{code}/{n}", get(flaky).post(flaky))
            .route("/malformed", get(|| async { (json(), r#"{"code": 11"#) }))
            .route(
                "/nocode",
                get(|| async { (json(), r#"{"data":{"credit":1}}"#) }),
            )
            .route(
                "/huge",
                get(move || std::future::ready((json(), huge.clone()))),
            )
            .route(
                "/text",
                get(|| async {
                    (
                        [(http::header::CONTENT_TYPE, "text/plain")],
                        r#"{"code":1101}"#,
                    )
                }),
            )
            .route(
                "/chunked",
                get(|| async {
                    let chunks = [r#"{"code":1101,"#, r#""msg":"expired"}"#]
                        .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c.as_bytes())));
                    let body = axum::body::Body::from_stream(futures::stream::iter(chunks));
                    (json(), body)
                }),
            )
            .with_state(Arc::clone(&hits));
        let served = Served::start(router).await;
        Self {
            base_url: served.base_url.clone(),
            hits,
            _served: served,
        }
    }

    /// How many times `/flaky/{code}/{n}` was called.
    pub fn hits(&self, code: u16, n: usize) -> usize {
        let key = format!("{code}/{n}");
        self.hits.lock().unwrap().get(&key).copied().unwrap_or(0)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

/// An axum app served on `127.0.0.1` with a free port, until dropped.
pub struct Served {
    pub base_url: String,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Served {
    pub async fn start(router: axum::Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            base_url,
            _shutdown: shutdown,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}
