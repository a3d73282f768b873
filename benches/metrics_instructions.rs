//! Instruction counts of one request on the cached token path with metrics on (a Prometheus
//! recorder installed) and off (no recorder), counted exactly: the criterion bench
//! (`benches/metrics.rs`) gives times, which move by more than the difference on a shared
//! machine. The credential has Akool's classifier and the API answers `{"code":1000}`, so each
//! request reads the body code and counts one outcome: the most the crate records per request.
//!
//! Run: `cargo bench --bench metrics_instructions --features metrics` (valgrind and
//! `gungraun-runner`, as for `benches/instructions.rs`).

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::FutureExt;
use gungraun::{library_benchmark, library_benchmark_group, main};
use http::{Request, Response};
use http_body_util::{Empty, Full};
use tower::{Layer, Service};
use tower_api_auth::providers::akool;
use tower_api_auth::{Token, TokenAuth, TokenAuthLayer, TokenCredential};

const URL: &str = "https://openapi.akool.com/api/open/v3/faceswap/quota/info";

/// Akool's success envelope, answered at once.
#[derive(Clone)]
struct AkoolOk;

impl Service<Request<Empty<Bytes>>> for AkoolOk {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Empty<Bytes>>) -> Self::Future {
        let body = Full::new(Bytes::from_static(br#"{"code":1000,"msg":"OK","data":{}}"#));
        let mut response = Response::new(body);
        response
            .headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        ready(Ok(response))
    }
}

type Input = (TokenAuth<AkoolOk>, Request<Empty<Bytes>>);

fn request() -> Request<Empty<Bytes>> {
    Request::get(URL).body(Empty::new()).unwrap()
}

/// The service, after one request went through it (its counters registered, its cache warm).
fn service() -> Input {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let runtime: &'static tokio::runtime::Runtime = Box::leak(Box::new(runtime));
    std::mem::forget(runtime.enter());
    let tokens = TokenCredential::builder(|| async { Ok::<_, Infallible>(Token::new("t")) })
        .origin("https://openapi.akool.com")
        .classifier(akool::classifier())
        .build()
        .unwrap();
    tokens.swap(Token::new("cached-token")).unwrap();
    let mut service = TokenAuthLayer::new(tokens).layer(AkoolOk);
    drop(service.call(request()).now_or_never().unwrap().unwrap());
    (service, request())
}

fn setup_off() -> Input {
    service()
}

fn setup_on() -> Input {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    metrics::set_global_recorder(recorder).unwrap();
    service()
}

fn one_request((mut service, request): Input) -> TokenAuth<AkoolOk> {
    let response = service.call(request).now_or_never().expect("ready");
    drop(std::hint::black_box(response.expect("ok")));
    service
}

#[library_benchmark]
#[bench::request(setup = setup_off)]
fn metrics_off(input: Input) -> TokenAuth<AkoolOk> {
    one_request(input)
}

#[library_benchmark]
#[bench::request(setup = setup_on)]
fn metrics_on(input: Input) -> TokenAuth<AkoolOk> {
    one_request(input)
}

library_benchmark_group!(
    name = cached_token_akool;
    compare_by_id = true;
    benchmarks = metrics_off, metrics_on
);

main!(library_benchmark_groups = cached_token_akool);
