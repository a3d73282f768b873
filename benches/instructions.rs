//! Instruction counts per request, with gungraun (callgrind): the same paths as the criterion
//! benches, each next to its baseline in the same group, counted exactly instead of timed.
//!
//! Run: `cargo bench --bench instructions` (needs valgrind and `gungraun-runner` of the same
//! version as the `gungraun` dev-dependency; `.ci/run` installs both). The regression gate reads
//! the counts from `-- --output-format=json`; see `benches/gate.toml`.
//!
//! Every benchmark is one request through a service built beforehand: its `setup` (the service,
//! the request, a store of 100,000 keys, a cached token) runs outside the counted function. The
//! counted function calls the service, drives the (ready) future with `now_or_never`, drops the
//! response, and hands the service back so its drop is not counted either.
//!
//! Keep the benchmark functions' names and `#[bench::…]` ids stable: the gate refers to them as
//! `group::function::id`.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use gungraun::{library_benchmark, library_benchmark_group, main};
use http::header::{ACCEPT, AUTHORIZATION, HOST, HeaderName, USER_AGENT};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::retry::RetryLayer;
use tower::{Layer, Service, ServiceExt};
use tower_api_auth::outcome::{EnvelopeClassifier, StatusClassifier, Then};
use tower_api_auth::providers::akool;
use tower_api_auth::server::MemoryKeyStore;
use tower_api_auth::server::sql::SqlKeyStore;
use tower_api_auth::token_auth::AttachTokenLayer;
use tower_api_auth::{
    AuthLayer, ClassifyLayer, Credential, Placement, Token, TokenAuthLayer, TokenCredential,
    ValidateCredentialLayer,
};
use tower_http::auth::AddAuthorizationLayer;
#[allow(deprecated)]
use tower_http::auth::require_authorization::Bearer;
use tower_http::validate_request::ValidateRequestHeaderLayer;

mod support;

use support::{Bare, Body, CopyForRetry, PRESENTED, key, store, unknown_key, with_typical_headers};

const URL: &str = "https://api.example.com/v1/things";
const ORIGIN: &str = "https://api.example.com";
const SECRET: &str = "sk-0123456789abcdef0123456789abcdef";

/// The service under test (handed back, so dropping it is not counted) and its request.
type Input<S, B = Body> = (S, Request<B>);

/// The counted part: one request through `service`, the ready future driven without a runtime,
/// the response dropped.
fn one_request<S, B>((mut service, request): Input<S, B>) -> S
where
    S: Service<Request<B>>,
    S::Error: std::fmt::Debug,
{
    let response = service.call(request).now_or_never().expect("ready");
    drop(std::hint::black_box(response.expect("ok")));
    service
}

/// The service and a request from `request`, after one identical request went through it:
/// the counted request is the second, so one-time costs (a lazily built value, a thread's first
/// `arc_swap` read, `tracing`'s call-site registration) stay out of the per-request count.
fn warmed<S, B>(mut service: S, request: impl Fn() -> Request<B>) -> Input<S, B>
where
    S: Service<Request<B>>,
    S::Error: std::fmt::Debug,
{
    let response = service.call(request()).now_or_never().expect("ready");
    drop(response.expect("ok"));
    (service, request())
}

// ---------------------------------------------------------------------------------------------
// static: the static credential layer against tower-http's `AddAuthorization`.

type AddAuthorization = <AddAuthorizationLayer as Layer<Bare>>::Service;
type Auth = <AuthLayer as Layer<Bare>>::Service;

/// A client request with the first `existing` of 8 typical headers already on it.
fn client_request(existing: usize) -> Request<Body> {
    with_typical_headers(URL, existing)
}

fn setup_bare(existing: usize) -> Input<Bare> {
    warmed(Bare, || client_request(existing))
}

fn setup_add_authorization(existing: usize) -> Input<AddAuthorization> {
    // Marked sensitive, as the static layer marks its value: a fair comparison.
    let service = AddAuthorizationLayer::bearer(SECRET)
        .as_sensitive(true)
        .layer(Bare);
    warmed(service, || client_request(existing))
}

fn setup_scoped(existing: usize) -> Input<Auth> {
    let credential = Credential::bearer(SECRET).origin(ORIGIN).build().unwrap();
    warmed(AuthLayer::new(credential).layer(Bare), || {
        client_request(existing)
    })
}

fn setup_any_origin(existing: usize) -> Input<Auth> {
    let credential = Credential::bearer(SECRET).any_origin().build().unwrap();
    warmed(AuthLayer::new(credential).layer(Bare), || {
        client_request(existing)
    })
}

fn setup_x_api_key(existing: usize) -> Input<Auth> {
    let credential = Credential::header(HeaderName::from_static("x-api-key"), SECRET)
        .any_origin()
        .build()
        .unwrap();
    warmed(AuthLayer::new(credential).layer(Bare), || {
        client_request(existing)
    })
}

#[library_benchmark]
#[bench::no_headers(args = (0), setup = setup_bare)]
#[bench::eight_headers(args = (8), setup = setup_bare)]
fn bare(input: Input<Bare>) -> Bare {
    one_request(input)
}

#[library_benchmark]
#[bench::no_headers(args = (0), setup = setup_add_authorization)]
#[bench::eight_headers(args = (8), setup = setup_add_authorization)]
fn add_authorization(input: Input<AddAuthorization>) -> AddAuthorization {
    one_request(input)
}

#[library_benchmark]
#[bench::no_headers(args = (0), setup = setup_scoped)]
#[bench::eight_headers(args = (8), setup = setup_scoped)]
fn auth_layer_scoped(input: Input<Auth>) -> Auth {
    one_request(input)
}

#[library_benchmark]
#[bench::no_headers(args = (0), setup = setup_any_origin)]
#[bench::eight_headers(args = (8), setup = setup_any_origin)]
fn auth_layer_any_origin(input: Input<Auth>) -> Auth {
    one_request(input)
}

#[library_benchmark]
#[bench::no_headers(args = (0), setup = setup_x_api_key)]
#[bench::eight_headers(args = (8), setup = setup_x_api_key)]
fn auth_layer_x_api_key(input: Input<Auth>) -> Auth {
    one_request(input)
}

library_benchmark_group!(
    name = static_auth;
    compare_by_id = true;
    benchmarks = bare, add_authorization, auth_layer_scoped, auth_layer_any_origin,
        auth_layer_x_api_key
);

// ---------------------------------------------------------------------------------------------
// tokens: a cached token against the static layer and `tower::retry` copying each request.

type TokenAuth = <TokenAuthLayer as Layer<Bare>>::Service;
type AttachToken = <AttachTokenLayer as Layer<Bare>>::Service;
type RetryCopying = <RetryLayer<CopyForRetry> as Layer<Auth>>::Service;

/// Enters a current-thread runtime for the rest of this (one-benchmark) process, as a client
/// runs inside one: a token with a known expiry arms its refresh timer on it. Nothing runs on
/// it, and no thread is started.
fn enter_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let runtime: &'static tokio::runtime::Runtime = Box::leak(Box::new(runtime));
    std::mem::forget(runtime.enter());
}

/// A credential with `token` already cached; its source is never called.
fn cached(token: Token) -> TokenCredential {
    enter_runtime();
    let tokens = TokenCredential::builder(|| async { Ok::<_, Infallible>(Token::new("fetched")) })
        .origin(ORIGIN)
        .build()
        .unwrap();
    tokens.swap(token).unwrap();
    tokens
}

fn token_request() -> Request<Body> {
    Request::get(URL).body(Body::new()).unwrap()
}

/// The static layer holding the same value as the cached token.
fn static_auth() -> Auth {
    enter_runtime();
    let credential = Credential::bearer("cached-token")
        .origin(ORIGIN)
        .build()
        .unwrap();
    AuthLayer::new(credential).layer(Bare)
}

fn setup_token_bare() -> Input<Bare> {
    enter_runtime();
    warmed(Bare, token_request)
}

fn setup_token_static() -> Input<Auth> {
    warmed(static_auth(), token_request)
}

fn setup_retry_copying() -> Input<RetryCopying> {
    let service = RetryLayer::new(CopyForRetry).layer(static_auth());
    warmed(service, token_request)
}

fn setup_no_replay() -> Input<AttachToken> {
    let tokens = cached(Token::new("cached-token"));
    let service = TokenAuthLayer::new(tokens).without_replay().layer(Bare);
    warmed(service, token_request)
}

fn setup_replay() -> Input<TokenAuth> {
    let tokens = cached(Token::new("cached-token"));
    warmed(TokenAuthLayer::new(tokens).layer(Bare), token_request)
}

fn setup_expiry_known() -> Input<AttachToken> {
    let token = Token::new("cached-token").expires_in(Duration::from_secs(3600));
    let tokens = cached(token);
    let service = TokenAuthLayer::new(tokens).without_replay().layer(Bare);
    warmed(service, token_request)
}

/// The token of `setup_expiry_known`, fetched through a file store (token-store): requests
/// never touch the store, so the count is `cached_expiry_known`'s.
fn setup_file_store() -> Input<AttachToken> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let runtime: &'static tokio::runtime::Runtime = Box::leak(Box::new(runtime));
    std::mem::forget(runtime.enter());
    let dir = std::env::temp_dir().join(format!("tower-api-auth-bench-{}", std::process::id()));
    let tokens = TokenCredential::builder(|| async {
        Ok::<_, Infallible>(Token::new("cached-token").expires_in(Duration::from_secs(3600)))
    })
    .origin(ORIGIN)
    .store(tower_api_auth::token::store::TokenStore::file(&dir))
    .store_identity("bench", &tower_api_auth::Secret::new("s"))
    .build()
    .unwrap();
    runtime.block_on(tokens.fetch()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let service = TokenAuthLayer::new(tokens).without_replay().layer(Bare);
    warmed(service, token_request)
}

#[library_benchmark]
#[bench::request(setup = setup_token_bare)]
fn token_bare(input: Input<Bare>) -> Bare {
    one_request(input)
}

#[library_benchmark]
#[bench::request(setup = setup_token_static)]
fn static_layer(input: Input<Auth>) -> Auth {
    one_request(input)
}

#[library_benchmark]
#[bench::request(setup = setup_no_replay)]
fn cached_no_replay(input: Input<AttachToken>) -> AttachToken {
    one_request(input)
}

#[library_benchmark]
#[bench::request(setup = setup_expiry_known)]
fn cached_expiry_known(input: Input<AttachToken>) -> AttachToken {
    one_request(input)
}

#[library_benchmark]
#[bench::request(setup = setup_file_store)]
fn cached_file_store(input: Input<AttachToken>) -> AttachToken {
    one_request(input)
}

#[library_benchmark]
#[bench::request(setup = setup_replay)]
fn cached_replay(input: Input<TokenAuth>) -> TokenAuth {
    one_request(input)
}

#[library_benchmark]
#[bench::request(setup = setup_retry_copying)]
fn static_in_retry(input: Input<RetryCopying>) -> RetryCopying {
    one_request(input)
}

library_benchmark_group!(
    name = tokens;
    compare_by_id = true;
    benchmarks = token_bare, static_layer, cached_no_replay, cached_expiry_known, cached_file_store,
        cached_replay, static_in_retry
);

// ---------------------------------------------------------------------------------------------
// classify: the Akool preset against the same response passed through.

/// The Akool preset's classifier (`akool::classifier()`).
type AkoolClassifier = Then<StatusClassifier, EnvelopeClassifier>;
type Classified = <ClassifyLayer<AkoolClassifier> as Layer<Answer>>::Service;

/// An inner service answering `body` with `content_type` at once (a clone of one `Bytes`).
#[derive(Clone)]
struct Answer {
    body: Bytes,
    content_type: &'static str,
}

impl Service<Request<()>> for Answer {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        let response = Response::builder()
            .header("content-type", self.content_type)
            .body(Full::new(self.body.clone()))
            .unwrap();
        ready(Ok(response))
    }
}

/// A 1 KiB Akool envelope (code 1101), as in `benches/classify.rs`.
fn envelope_1k() -> Answer {
    let padding = "x".repeat(1024 - 70);
    let body = format!(r#"{{"code":1101,"msg":"token expired","data":{{"padding":"{padding}"}}}}"#);
    Answer {
        body: Bytes::from(body),
        content_type: "application/json",
    }
}

/// A 1 MiB body that is not JSON: streamed through, never buffered.
fn octets_1m() -> Answer {
    Answer {
        body: Bytes::from(vec![b'x'; 1024 * 1024]),
        content_type: "application/octet-stream",
    }
}

fn answer(kind: &str) -> Answer {
    match kind {
        "envelope" => envelope_1k(),
        _ => octets_1m(),
    }
}

fn setup_pass_through(kind: &str) -> Input<Answer, ()> {
    warmed_read(answer(kind))
}

fn setup_classified(kind: &str) -> Input<Classified, ()> {
    warmed_read(ClassifyLayer::new(akool::classifier()).layer(answer(kind)))
}

/// As `warmed`, with the first response's body read.
fn warmed_read<S, B>(service: S) -> Input<S, ()>
where
    S: Service<Request<()>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let service = read_response((service, Request::new(())));
    (service, Request::new(()))
}

/// The counted part for classification: ready, call, and the whole body read, as a caller
/// would.
fn read_response<S, B>((mut service, request): Input<S, ()>) -> S
where
    S: Service<Request<()>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let response = service
        .ready()
        .now_or_never()
        .unwrap()
        .unwrap()
        .call(request)
        .now_or_never()
        .unwrap()
        .unwrap();
    let body = response.into_body().collect().now_or_never().unwrap();
    drop(std::hint::black_box(body.unwrap()));
    service
}

#[library_benchmark]
#[bench::envelope_1k(args = ("envelope"), setup = setup_pass_through)]
#[bench::octets_1m(args = ("octets"), setup = setup_pass_through)]
fn pass_through(input: Input<Answer, ()>) -> Answer {
    read_response(input)
}

#[library_benchmark]
#[bench::envelope_1k(args = ("envelope"), setup = setup_classified)]
#[bench::octets_1m(args = ("octets"), setup = setup_classified)]
fn classified(input: Input<Classified, ()>) -> Classified {
    read_response(input)
}

library_benchmark_group!(
    name = classify;
    compare_by_id = true;
    benchmarks = pass_through, classified
);

// ---------------------------------------------------------------------------------------------
// server: `ValidateCredentialLayer` over 10 and 100,000 keys against tower-http's bearer check.

// tower-http deprecated its `require_authorization` module ("too basic"); it is still the
// ecosystem's one-line bearer check, so it is the baseline here.
#[allow(deprecated)]
type TowerHttpBearer = <ValidateRequestHeaderLayer<Bearer<Body>> as Layer<Bare>>::Service;
type Validate = <ValidateCredentialLayer<MemoryKeyStore> as Layer<Bare>>::Service;
type ValidateSql = <ValidateCredentialLayer<SqlKeyStore> as Layer<Bare>>::Service;

/// An incoming request with a few typical headers and `Authorization: Bearer <key>`.
fn server_request(key: &str) -> Request<Body> {
    Request::get("/v1/things")
        .header(HOST, "api.example.com")
        .header(USER_AGENT, "my-client/1.0")
        .header(ACCEPT, "application/json")
        .header(AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::new())
        .unwrap()
}

#[allow(deprecated)]
fn setup_tower_http(presented: &str) -> Input<TowerHttpBearer> {
    let service = ValidateRequestHeaderLayer::bearer(&key(PRESENTED)).layer(Bare);
    warmed_checked(service, presented)
}

fn setup_validate(size: usize, presented: &str) -> Input<Validate> {
    let service = ValidateCredentialLayer::new(Placement::bearer(), store(size)).layer(Bare);
    warmed_checked(service, presented)
}

/// The layer over a `SqlKeyStore` (SQLite) holding the keys of `store(size)`. Its background
/// tasks stop with the runtime at the end of the setup: the snapshot answers without them.
fn setup_sql_accepted(size: usize) -> Input<ValidateSql> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = support::sql_store(&runtime, &dir, size);
    drop(runtime);
    let service = ValidateCredentialLayer::new(Placement::bearer(), store).layer(Bare);
    warmed_checked(service, &key(PRESENTED))
}

fn setup_server_bare(_: usize) -> Input<Bare> {
    warmed_checked(Bare, &key(PRESENTED))
}

fn setup_tower_http_accepted(_: usize) -> Input<TowerHttpBearer> {
    setup_tower_http(&key(PRESENTED))
}

fn setup_tower_http_rejected(_: usize) -> Input<TowerHttpBearer> {
    setup_tower_http(&unknown_key())
}

fn setup_accepted(size: usize) -> Input<Validate> {
    setup_validate(size, &key(PRESENTED))
}

fn setup_rejected(size: usize) -> Input<Validate> {
    setup_validate(size, &unknown_key())
}

/// As `warmed`, checking the first answer: 200 for a key the service knows, 401 otherwise.
fn warmed_checked<S, B>(mut service: S, presented: &str) -> Input<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    let expected = if presented == key(PRESENTED) {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    };
    let response = service.call(server_request(presented)).now_or_never();
    let status = response.expect("ready").expect("ok").status();
    assert_eq!(status, expected, "{presented}");
    (service, server_request(presented))
}

#[library_benchmark]
#[bench::accepted(args = (0), setup = setup_server_bare)]
fn server_bare(input: Input<Bare>) -> Bare {
    one_request(input)
}

#[library_benchmark]
#[bench::accepted(args = (0), setup = setup_tower_http_accepted)]
fn tower_http_bearer(input: Input<TowerHttpBearer>) -> TowerHttpBearer {
    one_request(input)
}

#[library_benchmark]
#[bench::rejected(args = (0), setup = setup_tower_http_rejected)]
fn tower_http_bearer_wrong(input: Input<TowerHttpBearer>) -> TowerHttpBearer {
    one_request(input)
}

#[library_benchmark]
#[bench::keys_10(args = (10), setup = setup_accepted)]
#[bench::keys_100000(args = (100_000), setup = setup_accepted)]
fn validate_accepted(input: Input<Validate>) -> Validate {
    one_request(input)
}

#[library_benchmark]
#[bench::keys_10(args = (10), setup = setup_sql_accepted)]
#[bench::keys_10000(args = (10_000), setup = setup_sql_accepted)]
fn validate_sql_accepted(input: Input<ValidateSql>) -> ValidateSql {
    one_request(input)
}

#[library_benchmark]
#[bench::keys_10(args = (10), setup = setup_rejected)]
#[bench::keys_100000(args = (100_000), setup = setup_rejected)]
fn validate_rejected(input: Input<Validate>) -> Validate {
    one_request(input)
}

library_benchmark_group!(
    name = server;
    benchmarks = server_bare, tower_http_bearer, tower_http_bearer_wrong, validate_accepted,
        validate_rejected, validate_sql_accepted
);

main!(
    library_benchmark_groups = static_auth,
    tokens,
    classify,
    server
);
