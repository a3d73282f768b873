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

/// A row's stack: `$layer` outside `TokenAuthLayer` (added by `ServiceBuilderExt::token_auth`).
macro_rules! outside {
    ($layer:expr) => {
        |http, base| {
            let stack = ServiceBuilder::new()
                .layer($layer)
                .token_auth(tokens(http.clone(), base));
            boxed(stack.service(http))
        }
    };
}

/// A row's stack: `$layer` inside `TokenAuthLayer` (added by `ServiceBuilderExt::token_auth`).
macro_rules! inside {
    ($layer:expr) => {
        |http, base| {
            let stack = ServiceBuilder::new()
                .token_auth(tokens(http.clone(), base))
                .layer($layer);
            boxed(stack.service(http))
        }
    };
}

/// The stacks, outermost layer first.
fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "TokenAuthLayer alone",
            build: |http, base| boxed(TokenAuthLayer::new(tokens(http.clone(), base)).layer(http)),
        },
        Row {
            name: "ClassifyLayer outside TokenAuthLayer",
            build: |http, base| {
                let stack = ServiceBuilder::new()
                    .layer(ClassifyLayer::new(akool::classifier()))
                    .layer(TokenAuthLayer::new(tokens(http.clone(), base)));
                boxed(stack.service(http))
            },
        },
        Row {
            name: "ClassifyLayer inside TokenAuthLayer",
            build: |http, base| {
                let stack = ServiceBuilder::new()
                    .layer(TokenAuthLayer::new(tokens(http.clone(), base)))
                    .layer(ClassifyLayer::new(akool::classifier()));
                boxed(stack.service(http))
            },
        },
        Row {
            name: "ServiceBuilderAuthExt .classify().token_auth() (examples/akool.rs)",
            build: |http, base| {
                let tokens = tokens(http.clone(), base);
                let stack = ServiceBuilder::new()
                    .classify(akool::classifier())
                    .token_auth(tokens);
                boxed(stack.service(http))
            },
        },
        Row {
            name: "RetryLayer(RetryPolicy) outside TokenAuthLayer",
            build: outside!(RetryLayer::new(RetryPolicy::new())),
        },
        Row {
            name: "RetryLayer(RetryPolicy) outside ClassifyLayer outside TokenAuthLayer",
            build: |http, base| {
                let stack = ServiceBuilder::new()
                    .layer(RetryLayer::new(RetryPolicy::new()))
                    .classify(akool::classifier())
                    .token_auth(tokens(http.clone(), base));
                boxed(stack.service(http))
            },
        },
        Row {
            name: "Buffer(4) outside TokenAuthLayer",
            build: |http, base| {
                let tokens = tokens(http.clone(), base);
                boxed(
                    ServiceBuilder::new()
                        .buffer(4)
                        .token_auth(tokens)
                        .service(http),
                )
            },
        },
        Row {
            name: "Buffer(4) shared by the token source and TokenAuthLayer",
            build: |http, base| {
                let shared = Buffer::new(http, 4);
                let tokens = tokens(shared.clone(), base);
                boxed(TokenAuthLayer::new(tokens).layer(shared))
            },
        },
        Row {
            name: "FollowRedirectLayer inside TokenAuthLayer",
            build: inside!(FollowRedirectLayer::new()),
        },
        Row {
            name: "FollowRedirectLayer outside TokenAuthLayer",
            build: outside!(FollowRedirectLayer::new()),
        },
        Row {
            name: "TraceLayer outside TokenAuthLayer",
            build: outside!(TraceLayer::new_for_http()),
        },
        Row {
            name: "TraceLayer inside TokenAuthLayer",
            build: inside!(TraceLayer::new_for_http()),
        },
        Row {
            name: "ConcurrencyLimitLayer(1) inside TokenAuthLayer",
            build: inside!(ConcurrencyLimitLayer::new(1)),
        },
        Row {
            name: "ConcurrencyLimitLayer(1) inside TokenAuthLayer, one limit shared with the token source",
            build: |http, base| {
                let limited = ConcurrencyLimitLayer::new(1).layer(http);
                let stack = ServiceBuilder::new().token_auth(tokens(limited.clone(), base));
                boxed(stack.service(limited))
            },
        },
        Row {
            name: "TimeoutLayer outside TokenAuthLayer",
            build: outside!(TimeoutLayer::new(Duration::from_secs(30))),
        },
        Row {
            name: "everything: Retry, Trace, Buffer, Classify, TokenAuth, FollowRedirect, \
                   ConcurrencyLimit(1), Trace over a Buffer shared with the token source",
            build: |http, base| {
                let shared = Buffer::new(http, 4);
                let stack = ServiceBuilder::new()
                    .layer(RetryLayer::new(RetryPolicy::new()))
                    .layer(TraceLayer::new_for_http())
                    .buffer(4)
                    .classify(akool::classifier())
                    .token_auth(tokens(shared.clone(), base))
                    .layer(FollowRedirectLayer::new())
                    .concurrency_limit(1)
                    .layer(TraceLayer::new_for_http());
                boxed(stack.service(shared))
            },
        },
    ]
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_stack_refetches_once_and_replays_once_whatever_the_rejection() {
    let mut cells = Vec::new();
    for row in rows() {
        for rejection in REJECTIONS {
            for protocol in PROTOCOLS {
                let name = format!("{} / {rejection:?} / {protocol:?}", row.name);
                cells.push((name, cell(row.build, rejection, protocol)));
            }
        }
    }
    let total = cells.len();
    let mut failures = Vec::new();
    for (name, cell) in cells {
        if let Err(failure) = bounded(cell).await {
            failures.push(format!("{name}: {failure}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One cell: a fresh stand-in rejecting `token-1` with `rejection`, one POST through the stack.
async fn cell(build: fn(Http, &str) -> Api, rejection: Rejection, protocol: Protocol) {
    let stand_in = StandIn::start(Some(rejection)).await;
    let api = build(protocol.client(), &stand_in.base_url());
    let body = request_json("matrix");
    let response = api
        .oneshot(stand_in.request(&body))
        .await
        .expect("no answer");
    let status = response.status();
    let bytes = collect(response).await;

    assert_eq!(status, StatusCode::OK, "status; body {}", text(&bytes));
    assert_eq!(code(&bytes), Some(1000), "body code; body {}", text(&bytes));
    let log = stand_in.log();
    assert_eq!(log.get_token, 2, "getToken calls");
    assert_eq!(
        log.bearers(),
        ["Bearer token-1", "Bearer token-2"],
        "API calls"
    );
    for call in &log.api {
        assert_eq!(call.body, body, "request body received by the API");
        assert_eq!(call.version, protocol.version(), "HTTP version");
    }
    assert_eq!(
        text(&bytes),
        text(&log.api[1].sent),
        "the body read by the caller is the body the API sent"
    );
}

/// Four callers at once, each on a clone of the stack.
#[derive(Clone, Copy, Debug)]
enum Callers {
    /// `TokenAuth<Buffer(4)>`, the `Buffer` shared with the token source; all four made ready
    /// before any calls.
    SharedBuffer,
    /// `TokenAuth<ConcurrencyLimit(1)<Buffer(4)>>`, a limit of its own for each caller; all
    /// four made ready before any calls.
    OwnLimits,
    /// `TokenAuth<ConcurrencyLimit(1)<Buffer(4)>>`, one limit (one semaphore) cloned for all.
    /// The first caller made ready holds the only permit until it calls, so all four cannot be
    /// ready at once: each is made ready and calls in its own task, all four tasks at once.
    OneLimit,
    /// `Buffer(4)<TokenAuth>`; all four made ready before any calls.
    BufferOutside,
}

const CALLERS: [Callers; 4] = [
    Callers::SharedBuffer,
    Callers::OwnLimits,
    Callers::OneLimit,
    Callers::BufferOutside,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_callers_at_once_all_succeed_with_one_fetch_per_token() {
    let mut failures = Vec::new();
    let mut total = 0;
    for callers in CALLERS {
        for rejection in [None].into_iter().chain(REJECTIONS.map(Some)) {
            for protocol in PROTOCOLS {
                total += 1;
                let name = format!("{callers:?} / {rejection:?} / {protocol:?}");
                if let Err(failure) = bounded(four_callers(callers, rejection, protocol)).await {
                    failures.push(format!("{name}: {failure}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Four callers, each sending its own body, against a stand-in that rejects `token-1` with
/// `rejection` (or accepts it).
async fn four_callers(callers: Callers, rejection: Option<Rejection>, protocol: Protocol) {
    let stand_in = StandIn::start(rejection).await;
    let http = protocol.client();
    let shared = Buffer::new(http.clone(), 4);
    let tokens = match callers {
        Callers::BufferOutside => tokens(http.clone(), &stand_in.base_url()),
        _ => tokens(shared.clone(), &stand_in.base_url()),
    };
    let layer = TokenAuthLayer::new(tokens.clone());
    let bodies: Vec<_> = (0..4)
        .map(|i| request_json(&format!("caller {i}")))
        .collect();

    let answers = if let Callers::OneLimit = callers {
        let api = boxed(layer.layer(ConcurrencyLimitLayer::new(1).layer(shared.clone())));
        let calls = bodies.iter().map(|body| {
            let request = stand_in.request(body);
            let api = api.clone();
            tokio::spawn(async move { read(api.oneshot(request).await).await })
        });
        futures::future::join_all(calls).await
    } else {
        let outside =
            matches!(callers, Callers::BufferOutside).then(|| Buffer::new(layer.layer(http), 4));
        let mut ready = Vec::new();
        for _ in 0..4 {
            let mut caller = match callers {
                Callers::OwnLimits => {
                    boxed(layer.layer(ConcurrencyLimitLayer::new(1).layer(shared.clone())))
                }
                Callers::BufferOutside => boxed(outside.clone().unwrap()),
                _ => boxed(layer.layer(shared.clone())),
            };
            caller.ready().await.expect("ready");
            ready.push(caller);
        }
        // All four calls are made before any answer is awaited, each answer in a task.
        let calls = ready.into_iter().zip(&bodies).map(|(mut caller, body)| {
            let answer = caller.call(stand_in.request(body));
            tokio::spawn(async move { read(answer.await).await })
        });
        futures::future::join_all(calls).await
    };

    for (i, answer) in answers.into_iter().enumerate() {
        let Answer { status, bytes, .. } = answer.expect("caller task");
        assert_eq!(status, StatusCode::OK, "caller {i}: {}", text(&bytes));
        assert_eq!(code(&bytes), Some(1000), "caller {i}: {}", text(&bytes));
        let echo = serde_json::from_slice::<Value>(&bytes).unwrap()["data"]["echo"].clone();
        assert_eq!(echo, serde_json::from_slice::<Value>(&bodies[i]).unwrap());
    }
    let log = stand_in.log();
    let calls = log.calls();
    for i in 0..4 {
        let caller = format!("caller {i}");
        let expected: &[&[&str]] = match rejection {
            None => &[&["Bearer token-1"]],
            // Rejected with `token-1` and replayed once with `token-2`; or, called once another
            // caller's rejection was reported, sent with `token-2` straight away.
            Some(_) => &[&["Bearer token-1", "Bearer token-2"], &["Bearer token-2"]],
        };
        let bearers = log.bearers_from(&caller);
        assert!(
            expected.contains(&bearers.as_slice()),
            "{caller}: API calls {calls:?}"
        );
    }
    // One fetch, and one refetch for all the requests rejected with `token-1`.
    let fetches = if rejection.is_some() { 2 } else { 1 };
    assert_eq!(
        log.get_token, fetches,
        "getToken calls; API calls {calls:?}"
    );
    assert_eq!(tokens.fetch_count(), fetches as u64);
}

/// Request body types other than `Full<Bytes>` (columns: replay on and off).
#[derive(Clone, Copy, Debug)]
enum BodyKind {
    /// `axum::body::Body` of known small size: read into memory and replayed.
    AxumBody,
    /// `Either<Full<Bytes>, Empty<Bytes>>`: sent once.
    Either,
    /// `Limited<Full<Bytes>>`: sent once.
    Limited,
    /// A hyper server forwarding the `hyper::body::Incoming` it received: sent once.
    IncomingProxy,
    /// An axum server forwarding the `axum::body::Body` it received (its size known from the
    /// Content-Length): read into memory and replayed.
    AxumProxy,
}

impl BodyKind {
    fn replayable(self) -> bool {
        matches!(self, BodyKind::AxumBody | BodyKind::AxumProxy)
    }
}

const BODY_KINDS: [BodyKind; 5] = [
    BodyKind::AxumBody,
    BodyKind::Either,
    BodyKind::Limited,
    BodyKind::IncomingProxy,
    BodyKind::AxumProxy,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn other_request_body_types_are_replayed_when_they_can_be_and_sent_once_otherwise() {
    let mut failures = Vec::new();
    let mut total = 0;
    for kind in BODY_KINDS {
        for replay in [true, false] {
            for rejection in REJECTIONS {
                for protocol in PROTOCOLS {
                    total += 1;
                    let name = format!("{kind:?} / replay {replay} / {rejection:?} / {protocol:?}");
                    if let Err(failure) =
                        bounded(body_cell(kind, replay, rejection, protocol)).await
                    {
                        failures.push(format!("{name}: {failure}"));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cells failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One request with a body of `kind`; then, when it was not replayed, the next request (a
/// `Full` body) gets the new token.
async fn body_cell(kind: BodyKind, replay: bool, rejection: Rejection, protocol: Protocol) {
    let stand_in = StandIn::start(Some(rejection)).await;
    let base = stand_in.base_url();
    let tokens = tokens(protocol.client::<Full<Bytes>>(), &base);
    let body = request_json(&format!("{kind:?}"));
    let url = format!("{base}{API_PATH}");
    let data = body.clone();
    let response = match kind {
        BodyKind::AxumBody => {
            let body = axum::body::Body::from(data);
            send(&tokens, replay, protocol, &url, body).await
        }
        BodyKind::Either => {
            let either: Either<Full<Bytes>, Empty<Bytes>> = Either::Left(Full::new(data));
            send(&tokens, replay, protocol, &url, either).await
        }
        BodyKind::Limited => {
            let body = Limited::new(Full::new(data), 1024);
            send(&tokens, replay, protocol, &url, body).await
        }
        BodyKind::IncomingProxy => {
            let api = token_api(&tokens, replay, protocol.client());
            let proxy = IncomingProxy::start(api, base.clone()).await;
            post_plain(&format!("{}{API_PATH}", proxy.base_url), data).await
        }
        BodyKind::AxumProxy => {
            let proxy =
                axum_proxy(token_api(&tokens, replay, protocol.client()), base.clone()).await;
            post_plain(&proxy.url(API_PATH), data).await
        }
    };
    let Answer {
        status,
        outcome,
        bytes,
    } = response;
    let log = stand_in.log();
    for call in &log.api {
        assert_eq!(call.body, body, "request body received by the API");
    }

    if replay && kind.replayable() {
        assert_eq!(status, StatusCode::OK, "replayed: {}", text(&bytes));
        assert_eq!(code(&bytes), Some(1000), "replayed: {}", text(&bytes));
        assert_eq!(log.get_token, 2, "getToken calls");
        assert_eq!(
            log.bearers(),
            ["Bearer token-1", "Bearer token-2"],
            "API calls"
        );
        assert_eq!(text(&bytes), text(&log.api[1].sent), "caller's body");
        return;
    }

    // Sent once: the rejection is the caller's answer, as the API sent it.
    assert_eq!(
        status,
        rejection.status(),
        "rejection handed back: {}",
        text(&bytes)
    );
    assert_eq!(log.bearers(), ["Bearer token-1"], "sent once");
    assert_eq!(text(&bytes), text(&log.api[0].sent), "caller's body");
    if replay {
        // Judged, and reported: a refetch is under way or done, and the next request waits
        // for it. The caller reads the verdict (not through a proxy: the wire drops it).
        if !matches!(kind, BodyKind::IncomingProxy | BodyKind::AxumProxy) {
            let kind = outcome.as_ref().map(Outcome::kind);
            assert_eq!(kind, Some(OutcomeKind::CredentialRejected), "{outcome:?}");
        }
    } else {
        // Nothing looked at the answer: reporting the rejection is the caller's job.
        assert_eq!(log.get_token, 1, "no refetch without replay");
        assert_eq!(tokens.rejected(1).await.expect("refetch"), 2);
    }

    let next = request_json("next");
    let response = TokenAuthLayer::new(tokens.clone())
        .layer(protocol.client::<Full<Bytes>>())
        .oneshot(json_post(&url, Full::new(next.clone())))
        .await;
    let Answer { status, bytes, .. } = read(response).await;
    assert_eq!(status, StatusCode::OK, "next request: {}", text(&bytes));
    assert_eq!(code(&bytes), Some(1000), "next request: {}", text(&bytes));
    let log = stand_in.log();
    assert_eq!(log.get_token, 2, "getToken calls: one refetch");
    assert_eq!(
        log.bearers(),
        ["Bearer token-1", "Bearer token-2"],
        "API calls"
    );
    assert_eq!(log.api[1].body, next);
}

/// Sends one request with a body of type `B` through `layer` over a hyper-util client.
async fn send<B>(
    tokens: &TokenCredential,
    replay: bool,
    protocol: Protocol,
    url: &str,
    body: B,
) -> Answer
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let api = token_api(tokens, replay, protocol.client::<B>());
    read(api.oneshot(json_post(url, body)).await).await
}

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

// --- The Akool stand-in -------------------------------------------------------------------------

/// A loopback Akool: `getToken` issues `token-1`, `token-2`, ...; the API rejects `token-1` as
/// configured (or accepts it, given no rejection) and echoes the request body for any later
/// token. Everything is recorded.
struct StandIn {
    served: Served,
    state: Arc<StandInState>,
}

struct StandInState {
    reject: Option<Rejection>,
    log: Mutex<Log>,
}

#[derive(Clone, Default)]
struct Log {
    get_token: usize,
    api: Vec<ApiCall>,
}

#[derive(Clone)]
struct ApiCall {
    bearer: String,
    body: Bytes,
    version: Version,
    /// The response body bytes the stand-in sent.
    sent: Bytes,
}

impl Log {
    fn bearers(&self) -> Vec<&str> {
        self.api.iter().map(|call| call.bearer.as_str()).collect()
    }

    /// The bearers of the API calls whose body names `sender`, in order.
    fn bearers_from(&self, sender: &str) -> Vec<&str> {
        let calls = self.api.iter().filter(|call| call.sender() == sender);
        calls.map(|call| call.bearer.as_str()).collect()
    }

    /// Each API call's bearer and sender, in order, for failure messages.
    fn calls(&self) -> Vec<String> {
        let calls = self.api.iter();
        calls
            .map(|call| format!("{} from {}", call.bearer, call.sender()))
            .collect()
    }
}

impl ApiCall {
    /// Who sent the request, as its body says.
    fn sender(&self) -> String {
        let body = serde_json::from_slice::<Value>(&self.body).unwrap_or_default();
        body["sender"].as_str().unwrap_or_default().to_owned()
    }
}

impl StandIn {
    async fn start(reject: Option<Rejection>) -> Self {
        let state = Arc::new(StandInState {
            reject,
            log: Mutex::default(),
        });
        let router = Router::new()
            .route("/api/open/v3/getToken", post(get_token))
            .route(API_PATH, post(api))
            .with_state(Arc::clone(&state));
        Self {
            served: Served::start(router).await,
            state,
        }
    }

    fn base_url(&self) -> String {
        self.served.base_url.clone()
    }

    fn request(&self, body: &Bytes) -> Request<Full<Bytes>> {
        json_post(&self.served.url(API_PATH), Full::new(body.clone()))
    }

    fn log(&self) -> Log {
        self.state.log.lock().unwrap().clone()
    }
}

async fn get_token(State(state): State<Arc<StandInState>>, body: Bytes) -> AxumResponse {
    let n = {
        let mut log = state.log.lock().unwrap();
        log.get_token += 1;
        log.get_token
    };
    let expected = json!({"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET});
    if serde_json::from_slice::<Value>(&body).ok() != Some(expected) {
        let body = r#"{"code":1101,"msg":"invalid client credentials"}"#;
        return ([(CONTENT_TYPE, "application/json")], body).into_response();
    }
    let body = format!(r#"{{"code":1000,"msg":"OK","token":"token-{n}"}}"#);
    ([(CONTENT_TYPE, "application/json")], body).into_response()
}

async fn api(
    State(state): State<Arc<StandInState>>,
    request: axum::extract::Request,
) -> AxumResponse {
    let version = request.version();
    let bearer = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = match axum::body::to_bytes(request.into_body(), usize::MAX).await {
        Ok(body) => body,
        Err(err) => return (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    };
    let (response, sent) = match (bearer.as_str(), state.reject) {
        ("Bearer token-1", Some(rejection)) => rejection.response(),
        (bearer, _) if bearer.starts_with("Bearer token-") => {
            let echo = serde_json::from_slice::<Value>(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
            let sent = Bytes::from(
                serde_json::to_vec(&json!({"code": 1000, "msg": "OK", "data": {"echo": echo}}))
                    .unwrap(),
            );
            let response = ([(CONTENT_TYPE, "application/json")], sent.clone()).into_response();
            (response, sent)
        }
        _ => {
            let sent = Bytes::from_static(br#"{"code":1102,"msg":"no token"}"#);
            let response = ([(CONTENT_TYPE, "application/json")], sent.clone()).into_response();
            (response, sent)
        }
    };
    state.log.lock().unwrap().api.push(ApiCall {
        bearer,
        body,
        version,
        sent,
    });
    response
}

impl Rejection {
    /// The answer, and the bytes of its body.
    fn response(self) -> (AxumResponse, Bytes) {
        const JSON: [(http::HeaderName, &str); 1] = [(CONTENT_TYPE, "application/json")];
        match self {
            Rejection::Code1101Sized => {
                let body = Bytes::from_static(br#"{"code":1101,"msg":"token expired"}"#);
                ((JSON, body.clone()).into_response(), body)
            }
            Rejection::Code1101Chunked => {
                let chunks = [&br#"{"code":1101,"#[..], br#""msg":"token expired"}"#];
                let stream = futures::stream::iter(
                    chunks.map(|chunk| Ok::<_, Infallible>(Bytes::from_static(chunk))),
                );
                let body = axum::body::Body::from_stream(stream);
                ((JSON, body).into_response(), Bytes::from(chunks.concat()))
            }
            Rejection::Unauthorized => {
                let body = Bytes::from_static(br#"{"code":401,"msg":"invalid token"}"#);
                let response = (StatusCode::UNAUTHORIZED, JSON, body.clone()).into_response();
                (response, body)
            }
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Rejection::Code1101Sized | Rejection::Code1101Chunked => StatusCode::OK,
            Rejection::Unauthorized => StatusCode::UNAUTHORIZED,
        }
    }
}

// --- Proxies forwarding the body they received ---------------------------------------------------

/// A hyper server whose handler forwards each request, body `Incoming` as received, through
/// `api` to `upstream`.
struct IncomingProxy {
    base_url: String,
    accept: tokio::task::JoinHandle<()>,
}

impl IncomingProxy {
    async fn start(api: TokenApi<Incoming>, upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (api, upstream) = (api.clone(), upstream.clone());
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    forward(api.clone(), &upstream, request)
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Self { base_url, accept }
    }
}

impl Drop for IncomingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// An axum server whose handler forwards each request, body `axum::body::Body` as received,
/// through `api` to `upstream`.
async fn axum_proxy(api: TokenApi<axum::body::Body>, upstream: String) -> Served {
    let handler = move |request: axum::extract::Request| {
        let forwarded = forward(api.clone(), &upstream, request);
        async move {
            match forwarded.await {
                Ok(response) => response.map(axum::body::Body::new),
                Err(err) => (StatusCode::BAD_GATEWAY, err.to_string()).into_response(),
            }
        }
    };
    Served::start(Router::new().route(API_PATH, any(handler))).await
}

/// Sends `request` to the same path on `upstream` through `api`.
fn forward<B>(
    api: TokenApi<B>,
    upstream: &str,
    mut request: Request<B>,
) -> impl Future<Output = Result<Response<UnsyncBoxBody<Bytes, BoxError>>, BoxError>> + use<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let uri = format!("{upstream}{path}").parse();
    request.headers_mut().remove(HOST);
    async move {
        *request.uri_mut() = uri?;
        api.oneshot(request).await
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

/// POSTs `body` to `url` with a plain hyper-util client (no layer).
async fn post_plain(url: &str, body: Bytes) -> Answer {
    let client: Http = Client::builder(TokioExecutor::new()).build_http();
    read(client.oneshot(json_post(url, Full::new(body))).await).await
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

/// A documented limit, shared with every layer that waits in `poll_ready` (`ConcurrencyLimit`,
/// `Buffer`): tower's `Timeout` starts its clock at `call`, so outside `TokenAuthLayer` it does
/// not bound the wait for a token; the credential's `fetch_timeout` does. A `Buffer` between
/// them moves the wait into the response future, where the `Timeout` sees it.
#[tokio::test(start_paused = true)]
async fn a_timeout_outside_bounds_the_wait_for_a_token_only_through_a_buffer() {
    // A token endpoint that never answers; the credential gives up after 2 s.
    let stalled = || {
        TokenCredential::builder(|| {
            std::future::pending::<Result<tower_api_auth::Token, Infallible>>()
        })
        .any_origin()
        .fetch_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
    };
    let api = tower::service_fn(|_: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
    });
    let request = || {
        Request::get("https://api.example.com/")
            .body(Full::default())
            .unwrap()
    };

    let direct = ServiceBuilder::new()
        .layer(TimeoutLayer::new(Duration::from_millis(100)))
        .token_auth(stalled())
        .service(api);
    let started = tokio::time::Instant::now();
    let err = direct.oneshot(request()).await.unwrap_err();
    let err = err.downcast::<tower_api_auth::TokenError>().unwrap();
    assert_eq!(err.kind(), tower_api_auth::token::TokenErrorKind::Timeout);
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(2),
        "the fetch timeout, not the 100 ms"
    );

    let buffered = ServiceBuilder::new()
        .layer(TimeoutLayer::new(Duration::from_millis(100)))
        .buffer(1)
        .token_auth(stalled())
        .service(api);
    let started = tokio::time::Instant::now();
    let err = buffered.oneshot(request()).await.unwrap_err();
    assert!(err.is::<tower::timeout::error::Elapsed>(), "{err}");
    assert_eq!(started.elapsed(), Duration::from_millis(100));
}
