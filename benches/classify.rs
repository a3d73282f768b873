//! The cost of classifying a response: a 1 KiB Akool envelope read and classified against the
//! same response passed through untouched, and a 1 MiB non-JSON body (which must not be
//! buffered: its cost must equal pass-through).
//!
//! Run: `cargo bench --bench classify`. Each iteration calls the service, awaits the ready
//! future, and reads the whole body, as a caller would.

use std::convert::Infallible;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures::FutureExt;
use http::{Request, Response};
use http_body_util::Full;
use tower::{Layer, Service, ServiceExt};
use tower_api_auth::ClassifyLayer;
use tower_api_auth::providers::akool;

mod support;

/// An inner service answering `body` with `content_type` at once.
fn server(
    body: Bytes,
    content_type: &'static str,
) -> impl Service<Request<()>, Response = Response<Full<Bytes>>, Error = Infallible> + Clone {
    tower::service_fn(move |_: Request<()>| {
        let response = Response::builder()
            .header("content-type", content_type)
            .body(Full::new(body.clone()))
            .unwrap();
        std::future::ready(Ok(response))
    })
}

/// One call, with the whole body read; every future here is ready.
fn call<S, B>(service: &mut S)
where
    S: Service<Request<()>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let service = service.ready().now_or_never().unwrap().unwrap();
    support::read_whole(support::once(service, Request::new(())));
}

fn envelope_1k() -> Bytes {
    let padding = "x".repeat(1024 - 70);
    let body = format!(r#"{{"code":1101,"msg":"token expired","data":{{"padding":"{padding}"}}}}"#);
    Bytes::from(body)
}

fn bench_classify(c: &mut Criterion) {
    let mut group = c.benchmark_group("classify/1 KiB Akool envelope");
    let envelope = envelope_1k();
    let mut bare = server(envelope.clone(), "application/json");
    group.bench_function("pass-through", |b| b.iter(|| call(&mut bare)));
    let mut classified =
        ClassifyLayer::new(akool::classifier()).layer(server(envelope, "application/json"));
    group.bench_function("classified (body read)", |b| {
        b.iter(|| call(&mut classified))
    });
    group.finish();

    let mut group = c.benchmark_group("classify/1 MiB non-JSON body");
    let big = Bytes::from(vec![b'x'; 1024 * 1024]);
    let mut bare = server(big.clone(), "application/octet-stream");
    group.bench_function("pass-through", |b| b.iter(|| call(&mut bare)));
    let mut classified =
        ClassifyLayer::new(akool::classifier()).layer(server(big, "application/octet-stream"));
    group.bench_function("classified (streamed)", |b| {
        b.iter(|| call(&mut classified))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = bench_classify
}
criterion_main!(benches);
