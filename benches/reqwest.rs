//! The reqwest adapter against calling reqwest directly, in the same run, over loopback HTTP/1
//! to a hyper server answering a small body: reqwest alone, the same request through
//! `ReqwestService`, and through `AuthLayer` around `ReqwestService` (against reqwest with the
//! header set by hand).
//!
//! Run: `cargo bench --bench reqwest --features reqwest`.

use std::convert::Infallible;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use http_body_util::BodyExt;
use tower::{ServiceBuilder, ServiceExt};
use tower_api_auth::AuthLayer;
use tower_api_auth::providers::akkio;
use tower_api_auth::reqwest::ReqwestService;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route(
            "/v1/things",
            axum::routing::get(|| async { Ok::<_, Infallible>(r#"{"things":[1,2,3]}"#) }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/v1/things")
    });
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
        b.iter(|| {
            rt.block_on(async {
                let request = Request::get(&url).body(reqwest::Body::default()).unwrap();
                let response = service.clone().oneshot(request).await.unwrap();
                std::hint::black_box(response.into_body().collect().await.unwrap().to_bytes());
            })
        })
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
        b.iter(|| {
            rt.block_on(async {
                let request = Request::get(&url).body(reqwest::Body::default()).unwrap();
                let response = authed.clone().oneshot(request).await.unwrap();
                std::hint::black_box(response.into_body().collect().await.unwrap().to_bytes());
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
