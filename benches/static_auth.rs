//! The static credential layer against a bare service and tower-http's own header layers,
//! per request, with 0 and 8 headers already on the request.
//!
//! Run: `cargo bench --bench static_auth`. Requests are built outside the timed section
//! (`iter_batched`); the timed part is: call the layer, await the (ready) inner future, drop
//! the response.

use std::convert::Infallible;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures::FutureExt;
use http::Request;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use tower::{Layer, Service};
use tower_api_auth::{AuthLayer, Credential};
use tower_http::auth::AddAuthorizationLayer;
use tower_http::set_header::SetRequestHeaderLayer;

mod support;

use support::{Bare, Body, with_typical_headers};

const URL: &str = "https://api.example.com/v1/things";
const TOKEN: &str = "sk-0123456789abcdef0123456789abcdef";

fn request(existing: usize) -> Request<Body> {
    with_typical_headers(URL, existing)
}

fn once<S: Service<Request<Body>, Error = Infallible>>(service: &mut S, request: Request<Body>) {
    let response = service.call(request).now_or_never().expect("ready");
    std::hint::black_box(response.expect("infallible"));
}

fn bench_layers(c: &mut Criterion) {
    let bearer = HeaderValue::try_from(format!("Bearer {TOKEN}")).unwrap();
    let ours_anywhere = Credential::bearer(TOKEN).any_origin().build().unwrap();
    let ours_scoped = Credential::bearer(TOKEN)
        .origin("https://api.example.com")
        .build()
        .unwrap();

    for existing in [0, 8] {
        let mut group = c.benchmark_group(format!("static/{existing} existing headers"));
        let mut bare = Bare;
        group.bench_function("bare", |b| {
            b.iter_batched(
                || request(existing),
                |r| once(&mut bare, r),
                BatchSize::SmallInput,
            )
        });
        let mut add_authorization = AddAuthorizationLayer::bearer(TOKEN)
            .as_sensitive(true)
            .layer(Bare);
        group.bench_function("tower-http AddAuthorization", |b| {
            b.iter_batched(
                || request(existing),
                |r| once(&mut add_authorization, r),
                BatchSize::SmallInput,
            )
        });
        let mut set_header =
            SetRequestHeaderLayer::overriding(AUTHORIZATION, bearer.clone()).layer(Bare);
        group.bench_function("tower-http SetRequestHeader", |b| {
            b.iter_batched(
                || request(existing),
                |r| once(&mut set_header, r),
                BatchSize::SmallInput,
            )
        });
        let mut anywhere = AuthLayer::new(ours_anywhere.clone()).layer(Bare);
        group.bench_function("AuthLayer, any origin", |b| {
            b.iter_batched(
                || request(existing),
                |r| once(&mut anywhere, r),
                BatchSize::SmallInput,
            )
        });
        let mut scoped = AuthLayer::new(ours_scoped.clone()).layer(Bare);
        group.bench_function("AuthLayer, scoped to the origin", |b| {
            b.iter_batched(
                || request(existing),
                |r| once(&mut scoped, r),
                BatchSize::SmallInput,
            )
        });
        let mut custom = AuthLayer::new(
            Credential::header(HeaderName::from_static("x-api-key"), TOKEN)
                .any_origin()
                .build()
                .unwrap(),
        )
        .layer(Bare);
        group.bench_function("AuthLayer, X-API-Key header", |b| {
            b.iter_batched(
                || request(existing),
                |r| once(&mut custom, r),
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = bench_layers
}
criterion_main!(benches);
