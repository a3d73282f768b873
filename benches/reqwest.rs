//! The reqwest adapter against calling reqwest directly, in the same run, over loopback HTTP/1
//! to a hyper server answering a small body: reqwest alone, the same request through
//! `ReqwestService`, and through `AuthLayer` around `ReqwestService` (against reqwest with the
//! header set by hand).
//!
//! Run: `cargo bench --bench reqwest --features reqwest`.

use std::convert::Infallible;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::BodyExt;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_api_auth::AuthLayer;
use tower_api_auth::providers::akkio;
use tower_api_auth::reqwest::ReqwestService;

mod support;

fn bench(c: &mut Criterion) {
    let rt = support::current_thread();
    let app = axum::Router::new().route(
        "/v1/things",
        axum::routing::get(|| async { Ok::<_, Infallible>(r#"{"things":[1,2,3]}"#) }),
    );
    let url = format!("{}/v1/things", rt.block_on(support::serve(app)));
    let client = reqwest::Client::new();
    let service = ReqwestService::new(client.clone());
    let credential = akkio::api_key("bench-key")
        .origin(url.trim_end_matches("/v1/things"))
        .build()
        .unwrap();
    let authed = ServiceBuilder::new()
        .layer(AuthLayer::new(credential))
        .service(service.clone());

    let mut group = c.benchmark_group("reqwest");
    group.bench_function("reqwest directly", |b| {
        b.iter(|| {
            rt.block_on(async {
                let response = client.get(&url).send().await.unwrap();
                std::hint::black_box(response.bytes().await.unwrap());
            })
        })
    });
    group.bench_function("ReqwestService", |b| {
        b.iter(|| rt.block_on(get(&service, &url)))
    });
    group.bench_function("reqwest directly, X-API-Key set by hand", |b| {
        b.iter(|| {
            rt.block_on(async {
                let response = client
                    .get(&url)
                    .header("x-api-key", "bench-key")
                    .send()
                    .await
                    .unwrap();
                std::hint::black_box(response.bytes().await.unwrap());
            })
        })
    });
    group.bench_function("AuthLayer around ReqwestService", |b| {
        b.iter(|| rt.block_on(get(&authed, &url)))
    });
    group.finish();
}

/// A GET of `url` through a clone of `service`, its whole body read.
async fn get<S, B>(service: &S, url: &str)
where
    S: Service<Request<reqwest::Body>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let request = Request::get(url).body(reqwest::Body::default()).unwrap();
    let response = service.clone().oneshot(request).await.unwrap();
    std::hint::black_box(response.into_body().collect().await.unwrap().to_bytes());
}

criterion_group!(benches, bench);
criterion_main!(benches);
