//! The cached-token path with a token store configured, against the same credential without
//! one, in the same run: a request reads the token from memory and never touches the store, so
//! the three rows should be one. The store costs only at a fetch; the fleet's cold start (8
//! processes, one getToken) is timed by `tests/it/tokens/store/fleet/`.
//!
//! Run: `cargo bench --bench token_store` (the Redis row needs `redis-server` on PATH).

use std::convert::Infallible;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use tower::Layer;
use tower_api_auth::token::store::TokenStore;
use tower_api_auth::{Secret, Token, TokenAuthLayer, TokenCredential};

#[path = "../tests/it/support/redis.rs"]
#[allow(dead_code)]
mod redis_server;
mod support;

use support::{Bare, Body};

const URL: &str = "https://api.example.com/v1/things";

fn request() -> Request<Body> {
    Request::get(URL).body(Body::new()).unwrap()
}

/// A credential holding a token that expires in an hour (each request reads the clock),
/// fetched through `store` when given.
fn credential(runtime: &tokio::runtime::Runtime, store: Option<TokenStore>) -> TokenCredential {
    let mut builder = TokenCredential::builder(|| async {
        Ok::<_, Infallible>(Token::new("cached-token").expires_in(Duration::from_secs(3600)))
    })
    .origin("https://api.example.com");
    if let Some(store) = store {
        builder = builder
            .store(store)
            .store_identity("bench https://api.example.com/token", &Secret::new("s"));
    }
    let tokens = builder.build().unwrap();
    runtime.block_on(tokens.fetch()).unwrap();
    tokens
}

fn cached_path(c: &mut Criterion) {
    let runtime = support::runtime(1);
    let dir = tempfile::tempdir().unwrap();
    let redis = redis_server::RedisServer::start("the redis row of benches/token_store.rs");
    let mut variants = vec![
        ("no store", credential(&runtime, None)),
        (
            "file store",
            credential(&runtime, Some(TokenStore::file(dir.path()))),
        ),
    ];
    if let Some(redis) = &redis {
        let store = TokenStore::redis(&redis.url()).unwrap();
        variants.push(("redis store", credential(&runtime, Some(store))));
    }
    let mut group = c.benchmark_group("token store/cached path");
    for (name, tokens) in variants {
        let service = TokenAuthLayer::new(tokens).without_replay().layer(Bare);
        support::bench(&mut group, name, service, request);
    }
    group.finish();
}

criterion_group!(benches, cached_path);
criterion_main!(benches);
