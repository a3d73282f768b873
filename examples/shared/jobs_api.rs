//! A small jobs API protected by `ValidateCredentialLayer`: public, authenticated and
//! scope-protected routes. Shared by the `axum_server` and `demo` examples.

use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tower_api_auth::server::{KeyRecord, KeyStore, MemoryKeyStore, Principal};
use tower_api_auth::{Placement, ValidateCredentialLayer};

/// Keys for two service accounts: one that reads jobs, one that also writes them.
pub fn demo_keys() -> MemoryKeyStore {
    let keys = MemoryKeyStore::new();
    let reader = Principal::new("svc-dashboard")
        .with_organization("acme")
        .with_scopes(["jobs:read"]);
    let writer = Principal::new("svc-scheduler")
        .with_organization("acme")
        .with_scopes(["jobs:read", "jobs:write"]);
    keys.insert("reader-key-0001", KeyRecord::new(reader));
    keys.insert("writer-key-0002", KeyRecord::new(writer));
    keys
}

/// `GET /health` for anyone; `GET /v1/me` for any valid key; `GET /v1/jobs` with `jobs:read`;
/// `POST /v1/jobs` with `jobs:write`. Keys are accepted as `Authorization: Bearer` or
/// `X-API-Key`.
pub fn app<K: KeyStore>(keys: K) -> Router {
    app_with(ValidateCredentialLayer::new(Placement::bearer(), keys))
}

/// The same API, checking keys with `auth` (a SQL store, a key format): `X-API-Key` is
/// accepted besides what `auth` accepts.
pub fn app_with<K: KeyStore>(auth: ValidateCredentialLayer<K>) -> Router {
    let x_api_key = Placement::header("x-api-key").expect("a valid header name");
    let auth = auth.accept(x_api_key);
    Router::new()
        .route("/v1/me", get(me))
        .route_layer(auth.clone())
        .route(
            "/v1/jobs",
            get(list_jobs)
                .route_layer(auth.clone().require_scopes(["jobs:read"]))
                .merge(post(create_job).route_layer(auth.require_scopes(["jobs:write"]))),
        )
        .route("/health", get(|| async { "ok" }))
}

async fn me(principal: Principal) -> Json<Value> {
    Json(json!({
        "id": principal.id(),
        "organization": principal.organization(),
        "scopes": principal.scopes().collect::<Vec<_>>(),
    }))
}

async fn list_jobs(principal: Principal) -> Json<Value> {
    Json(json!({ "jobs": [], "organization": principal.organization() }))
}

async fn create_job(principal: Principal) -> Json<Value> {
    Json(json!({ "created": true, "by": principal.id() }))
}
