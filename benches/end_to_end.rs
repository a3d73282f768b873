//! End to end on loopback: a hyper-util client calling an axum server over HTTP/1, bare against
//! the crate's full stacks, in requests per second at a fixed concurrency.
//!
//! Run: `cargo bench --bench end_to_end`. One iteration sends 256 GET requests, 32 in flight,
//! over the client's connection pool, and reads every response body. Client and server share
//! one tokio runtime, as a service calling a sidecar would, in two settings:
//!
//! - `1 thread`: a current-thread runtime. Every request's whole cost, client and server, lands
//!   on one core, so the ratios between variants are what the layers cost per request.
//! - `2 workers`: a two-worker runtime on this 2-core machine. Closer to a deployment, but its
//!   throughput swings between runs (seen: 2.5 ms and 3.8 ms for the same variant in separate
//!   processes), with how the workers, the criterion thread and the kernel's network work share
//!   the two cores; compare its rows with care.
//!
//! - bare: the key written into each request by hand, a plain router;
//! - client stack: `ClassifyLayer` + `AuthLayer` on the client, plain router;
//! - server stack: hand-written key, `ValidateCredentialLayer` (1,000 keys) on the route, which
//!   puts the `Principal` into the request (the handler is the same as bare);
//! - both stacks.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::{StreamExt, stream};
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::runtime::Runtime;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_api_auth::providers::akkio;
use tower_api_auth::server::{KeyRecord, MemoryKeyStore, Principal};
use tower_api_auth::{Credential, Placement, ServiceBuilderAuthExt, ValidateCredentialLayer};

mod support;

use support::serve;

const REQUESTS: usize = 256;
const IN_FLIGHT: usize = 32;
const KEY: &str = "sk-live-0123456789abcdef0123456789abcdef";

type Body = support::Body;
type HttpClient = Client<HttpConnector, Body>;

async fn handler() -> &'static str {
    r#"{"status":"ok"}"#
}

fn guarded() -> Router {
    let keys = MemoryKeyStore::new();
    keys.insert(KEY, KeyRecord::new(Principal::new("bench")));
    for n in 0..999 {
        keys.insert(
            format!("sk-other-{n:032}"),
            KeyRecord::new(Principal::new("other")),
        );
    }
    Router::new()
        .route("/v1/things", get(handler))
        .route_layer(ValidateCredentialLayer::new(Placement::bearer(), keys))
}

/// Sends the batch through `client`, `IN_FLIGHT` at a time, and reads every body.
async fn batch<S, B>(client: &S, url: &str, with_key: bool)
where
    S: Service<Request<Body>, Response = Response<B>> + Clone,
    S::Error: Into<BoxError>,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    stream::iter(0..REQUESTS)
        .map(|_| {
            let mut request = Request::get(url).body(Body::new()).unwrap();
            if with_key {
                let value = HeaderValue::from_str(&format!("Bearer {KEY}")).unwrap();
                request.headers_mut().insert(AUTHORIZATION, value);
            }
            let client = client.clone();
            async move {
                let response = client.oneshot(request).await.map_err(Into::into).unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                response.into_body().collect().await.unwrap();
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<()>()
        .await;
}

fn end_to_end(c: &mut Criterion) {
    compare(c, "end_to_end/1 thread", &support::current_thread());
    compare(c, "end_to_end/2 workers", &support::runtime(2));
}

/// Bare against the stacks, client and servers on `rt`.
fn compare(c: &mut Criterion, group: &str, rt: &Runtime) {
    let (plain, protected) = rt.block_on(async {
        let plain = serve(Router::new().route("/v1/things", get(handler))).await;
        (plain, serve(guarded()).await)
    });
    let http: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let stack = |origin: &str| {
        let credential = Credential::bearer(KEY).origin(origin).build().unwrap();
        ServiceBuilder::new()
            .classify(akkio::classifier())
            .auth(credential)
            .service(http.clone())
    };

    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Elements(REQUESTS as u64));
    let url = format!("{plain}/v1/things");
    group.bench_function("bare", |b| b.iter(|| run(rt, &http, &url, true)));
    let client = stack(&plain);
    group.bench_function("client stack", |b| b.iter(|| run(rt, &client, &url, false)));
    let url = format!("{protected}/v1/things");
    group.bench_function("server stack", |b| b.iter(|| run(rt, &http, &url, true)));
    let client = stack(&protected);
    group.bench_function("both stacks", |b| b.iter(|| run(rt, &client, &url, false)));
    group.finish();
}

fn run<S, B>(rt: &Runtime, client: &S, url: &str, with_key: bool)
where
    S: Service<Request<Body>, Response = Response<B>> + Clone,
    S::Error: Into<BoxError>,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    rt.block_on(batch(client, url, with_key));
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .sample_size(30);
    targets = end_to_end
}
criterion_main!(benches);
