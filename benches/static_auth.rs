//! The static credential layer against a bare service and tower-http's own header layers,
//! per request, with 0 and 8 headers already on the request.
//!
//! Run: `cargo bench --bench static_auth`. Requests are built outside the timed section
//! (`iter_batched`); the timed part is: call the layer, await the (ready) inner future, drop
//! the response.

use criterion::{Criterion, criterion_group, criterion_main};
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use tower::Layer;
use tower_api_auth::{AuthLayer, Credential};
use tower_http::auth::AddAuthorizationLayer;
use tower_http::set_header::SetRequestHeaderLayer;

mod support;

use support::{Bare, bench, with_typical_headers};

const URL: &str = "https://api.example.com/v1/things";
const TOKEN: &str = "sk-0123456789abcdef0123456789abcdef";

fn bench_layers(c: &mut Criterion) {
    let bearer = HeaderValue::try_from(format!("Bearer {TOKEN}")).unwrap();
    let ours_anywhere = Credential::bearer(TOKEN).any_origin().build().unwrap();
    let ours_scoped = Credential::bearer(TOKEN)
        .origin("https://api.example.com")
        .build()
        .unwrap();
    let ours_custom = Credential::header(HeaderName::from_static("x-api-key"), TOKEN)
        .any_origin()
        .build()
        .unwrap();

    for existing in [0, 8] {
        let mut group = c.benchmark_group(format!("static/{existing} existing headers"));
        let request = || with_typical_headers(URL, existing);
        bench(&mut group, "bare", Bare, request);
        let add_authorization = AddAuthorizationLayer::bearer(TOKEN).as_sensitive(true);
        let set_header = SetRequestHeaderLayer::overriding(AUTHORIZATION, bearer.clone());
        let layers = [
            ("AuthLayer, any origin", ours_anywhere.clone()),
            ("AuthLayer, scoped to the origin", ours_scoped.clone()),
            ("AuthLayer, X-API-Key header", ours_custom.clone()),
        ];
        bench(
            &mut group,
            "tower-http AddAuthorization",
            add_authorization.layer(Bare),
            request,
        );
        bench(
            &mut group,
            "tower-http SetRequestHeader",
            set_header.layer(Bare),
            request,
        );
        for (name, credential) in layers {
            bench(
                &mut group,
                name,
                AuthLayer::new(credential).layer(Bare),
                request,
            );
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = support::criterion();
    targets = bench_layers
}
criterion_main!(benches);
