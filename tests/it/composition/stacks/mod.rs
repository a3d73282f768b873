//! `TokenAuthLayer` composed with the rest of the tower ecosystem, as a table: every stack a user
//! builds around a real hyper-util client (HTTP/1 and HTTP/2), against every way a loopback Akool
//! stand-in says "token expired" (code 1101 sized, 1101 chunked, HTTP 401). Whatever the stack,
//! the first token is rejected once, refetched once, the request replayed once with its body
//! intact, and the caller reads the API's answer byte for byte. Then: callers made ready on a
//! `Buffer` shared with the token source, under a `ConcurrencyLimit`, and request body types
//! that can and cannot be sent twice (a proxy forwarding `hyper::body::Incoming` included).

use crate::support;

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response as AxumResponse};
use axum::routing::{any, post};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{Request, Response, StatusCode, Version};
use http_body::Body;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Either, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use support::Served;
use tower::buffer::Buffer;
use tower::limit::ConcurrencyLimitLayer;
use tower::retry::RetryLayer;
use tower::timeout::TimeoutLayer;
use tower::util::{BoxCloneService, BoxCloneSyncService};
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt};
use tower_api_auth::outcome::{Outcome, OutcomeKind, RetryPolicy};
use tower_api_auth::providers::akool;
use tower_api_auth::{ClassifyLayer, ServiceBuilderAuthExt, TokenAuthLayer, TokenCredential};
use tower_http::follow_redirect::FollowRedirectLayer;
use tower_http::trace::TraceLayer;

mod bodies;
mod callers;
mod stand_in;
mod table;
mod timeouts;

use stand_in::StandIn;

/// A cell that has not answered by then is taken as a deadlock.
const CELL_TIMEOUT: Duration = Duration::from_secs(5);
const API_PATH: &str = "/api/open/v3/content/video/createbytalkingphoto";
const CLIENT_ID: &str = "client-id";
const CLIENT_SECRET: &str = "client-secret";

/// The hyper-util client every stack is built around, with the request body every row sends.
type Http = Client<HttpConnector, Full<Bytes>>;

/// A stack, whatever its layers: the same request and response types for every row.
type Api =
    BoxCloneService<Request<Full<Bytes>>, Response<UnsyncBoxBody<Bytes, BoxError>>, BoxError>;

/// A stack to put `TokenAuthLayer` in: built from the client and the stand-in's base URL (the
/// token source is built by the row, since one row shares its `Buffer` with it).
struct Row {
    name: &'static str,
    build: fn(Http, &str) -> Api,
}

/// How the stand-in answers the first token's API call (columns of the matrix).
#[derive(Clone, Copy, Debug)]
enum Rejection {
    /// `{"code":1101,"msg":"token expired"}` in an HTTP 200, with a Content-Length.
    Code1101Sized,
    /// The same, chunked: two chunks, no Content-Length.
    Code1101Chunked,
    /// HTTP 401 with a JSON body.
    Unauthorized,
}

const REJECTIONS: [Rejection; 3] = [
    Rejection::Code1101Sized,
    Rejection::Code1101Chunked,
    Rejection::Unauthorized,
];

#[derive(Clone, Copy, Debug)]
enum Protocol {
    Http1,
    Http2,
}

const PROTOCOLS: [Protocol; 2] = [Protocol::Http1, Protocol::Http2];

/// A client behind the token layer, replay on (`TokenAuthLayer`) or off (`AttachTokenLayer`,
/// which answers the client's own response), with one type for both.
type TokenApi<B> =
    BoxCloneSyncService<Request<B>, Response<UnsyncBoxBody<Bytes, BoxError>>, BoxError>;

fn token_api<B>(
    tokens: &TokenCredential,
    replay: bool,
    client: Client<HttpConnector, B>,
) -> TokenApi<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fn boxed<R: Body<Data = Bytes> + Send + 'static>(
        response: Response<R>,
    ) -> Response<UnsyncBoxBody<Bytes, BoxError>>
    where
        R::Error: Into<BoxError>,
    {
        response.map(|body| body.map_err(Into::into).boxed_unsync())
    }
    if replay {
        let api = TokenAuthLayer::new(tokens.clone()).layer(client);
        BoxCloneSyncService::new(api.map_response(boxed))
    } else {
        let api = TokenAuthLayer::new(tokens.clone())
            .without_replay()
            .layer(client);
        BoxCloneSyncService::new(api.map_response(boxed))
    }
}

// --- Helpers ------------------------------------------------------------------------------------

/// Akool's client credentials against the stand-in at `base`, fetched through `http`.
fn tokens<S, B>(http: S, base: &str) -> TokenCredential
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    akool::client_credentials(CLIENT_ID, CLIENT_SECRET)
        .base_url(base)
        .build(http)
        .expect("client credentials")
}

/// `service` with its response body boxed, so that every row is an [`Api`].
fn boxed<S, B>(service: S) -> Api
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    BoxCloneService::new(
        service
            .map_response(|response| response.map(|body| body.map_err(Into::into).boxed_unsync()))
            .map_err(Into::into),
    )
}

impl Protocol {
    /// A hyper-util client for request bodies of type `B`: HTTP/1, or HTTP/2 with prior
    /// knowledge.
    fn client<B>(self) -> Client<HttpConnector, B>
    where
        B: Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let mut builder = Client::builder(TokioExecutor::new());
        if let Protocol::Http2 = self {
            builder.http2_only(true);
        }
        builder.build_http()
    }

    fn version(self) -> Version {
        match self {
            Protocol::Http1 => Version::HTTP_11,
            Protocol::Http2 => Version::HTTP_2,
        }
    }
}

/// A JSON body naming what sent it.
fn request_json(sender: &str) -> Bytes {
    let body = json!({
        "talking_photo_url": "https://example.com/photo.jpg",
        "audio_url": "https://example.com/audio.mp3",
        "sender": sender,
    });
    Bytes::from(serde_json::to_vec(&body).unwrap())
}

fn json_post<B>(url: &str, body: B) -> Request<B> {
    Request::post(url)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap()
}

/// What the caller got: status, the verdict a layer put in the extensions, the whole body.
struct Answer {
    status: StatusCode,
    outcome: Option<Outcome>,
    bytes: Bytes,
}

async fn read<B, E>(response: Result<Response<B>, E>) -> Answer
where
    B: Body,
    B::Error: fmt::Debug,
    E: fmt::Debug,
{
    let response = response.expect("no answer");
    Answer {
        status: response.status(),
        outcome: response.extensions().get::<Outcome>().cloned(),
        bytes: collect(response).await,
    }
}

async fn collect<B>(response: Response<B>) -> Bytes
where
    B: Body,
    B::Error: fmt::Debug,
{
    response
        .into_body()
        .collect()
        .await
        .expect("reading the body")
        .to_bytes()
}

/// The Akool body code of a JSON answer.
fn code(bytes: &[u8]) -> Option<i64> {
    serde_json::from_slice::<Value>(bytes).ok()?["code"].as_i64()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The cells of one table: each run bounded, the failures gathered, all reported at the end.
#[derive(Default)]
struct Tally {
    total: usize,
    failures: Vec<String>,
}

impl Tally {
    async fn run(&mut self, name: String, cell: impl Future<Output = ()> + Send + 'static) {
        self.total += 1;
        if let Err(failure) = bounded(cell).await {
            self.failures.push(format!("{name}: {failure}"));
        }
    }

    fn assert_all_passed(self) {
        assert!(
            self.failures.is_empty(),
            "{} of {} cells failed:\n{}",
            self.failures.len(),
            self.total,
            self.failures.join("\n")
        );
    }
}

/// Runs `cell` in a task of its own, bounded by [`CELL_TIMEOUT`]: its panic message, or a
/// deadlock, is the error.
async fn bounded(cell: impl Future<Output = ()> + Send + 'static) -> Result<(), String> {
    let mut task = tokio::spawn(cell);
    match tokio::time::timeout(CELL_TIMEOUT, &mut task).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) if err.is_panic() => {
            let panic = err.into_panic();
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panicked".to_owned());
            Err(message)
        }
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => {
            task.abort();
            Err(format!("no answer within {CELL_TIMEOUT:?}: deadlock?"))
        }
    }
}
