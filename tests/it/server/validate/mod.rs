//! The server side on loopback: an axum app behind `ValidateCredentialLayer`, called by a real
//! hyper-util client.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, StatusCode};
use support::{Body, CapturedLogs, Served, client, client_h2, get, json};
use tower::{Layer, ServiceExt};
use tower_api_auth::outcome::{Outcome, OutcomeKind};
use tower_api_auth::providers::akool;
use tower_api_auth::server::{KeyDigest, KeyRecord, MemoryKeyStore, Principal};
use tower_api_auth::{ClassifyLayer, Placement, ValidateCredentialLayer};

mod akool_mode;
mod headers;
mod key_states;
mod refusals;
mod revocation;
mod stores;

const T0: u64 = 1_900_000_000;

/// A clock the test moves by hand, in seconds since the epoch.
fn clock(now: &Arc<AtomicU64>) -> impl Fn() -> SystemTime + Send + Sync + 'static {
    let now = Arc::clone(now);
    move || SystemTime::UNIX_EPOCH + Duration::from_secs(now.load(Ordering::SeqCst))
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// Keys in every state the matrix needs.
fn keys() -> MemoryKeyStore {
    let keys = MemoryKeyStore::new();
    let reader = Principal::new("reader").with_scopes(["read"]);
    let writer = Principal::new("writer")
        .with_organization("acme")
        .with_scopes(["read", "write"]);
    keys.insert("key-reader", KeyRecord::new(reader));
    keys.insert("key-writer", KeyRecord::new(writer.clone()));
    keys.insert(
        "key-expiring",
        KeyRecord::new(writer.clone()).with_expiry(at(T0 + 60)),
    );
    keys.insert("key-revoked", KeyRecord::new(writer).revoked());
    keys
}

async fn whoami(principal: Principal) -> String {
    format!(
        "{}@{}",
        principal.id(),
        principal.organization().unwrap_or("-")
    )
}

async fn hello(principal: Option<Principal>) -> String {
    match principal {
        Some(principal) => format!("hello {}", principal.id()),
        None => "hello stranger".to_owned(),
    }
}

/// Public, authenticated, read-scoped and write-scoped routes.
fn app(auth: ValidateCredentialLayer<MemoryKeyStore>) -> Router {
    Router::new()
        .route(
            "/read",
            routing::get(whoami).route_layer(auth.clone().require_scopes(["read"])),
        )
        .route(
            "/write",
            routing::get(whoami).route_layer(auth.clone().require_scopes(["write"])),
        )
        .route("/me", routing::get(whoami).route_layer(auth))
        .route("/public", routing::get(hello))
        .route("/forgot-the-layer", routing::get(whoami))
}

fn bearer(url: &str, key: Option<&str>) -> Request<Body> {
    let mut request = get(url);
    if let Some(key) = key {
        let value = HeaderValue::from_str(&format!("Bearer {key}")).unwrap();
        request.headers_mut().insert(AUTHORIZATION, value);
    }
    request
}
