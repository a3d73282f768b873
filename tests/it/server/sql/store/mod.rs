//! The key store's contract, run alike against `MemoryKeyStore`, SQLite and PostgreSQL, over
//! real HTTP: insert, lookup, expiry, revoke, roll with overlap, several keys per principal.
//! Then what only the SQL store does: `last_used_at` in batches (SQLite and PostgreSQL), the
//! outage policy on SQLite.

use crate::support;
use crate::support::postgres;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use http::StatusCode;
use tower_api_auth::ValidateCredentialLayer;
use tower_api_auth::server::sql::{KeyDatabase, NewKey, OutagePolicy, SqlKeyStore, SqlStoreError};
use tower_api_auth::server::{
    KeyDigest, KeyFormat, KeyRecord, KeyStore, MemoryKeyStore, Principal,
};
use tower_api_auth::{Placement, Secret};

use support::{Served, client, get as request};

/// `$body` with `$pool` a new pool on `$url`, SQLite or PostgreSQL: a connection of the test's
/// own, as an operator or another replica has. Closed after.
macro_rules! by_hand {
    ($url:expr, $pool:ident => $body:expr) => {{
        let url: &str = $url;
        if url.starts_with("sqlite:") {
            let $pool = sqlx::SqlitePool::connect(url).await.unwrap();
            let done = $body;
            $pool.close().await;
            done
        } else {
            let $pool = sqlx::PgPool::connect(url).await.unwrap();
            let done = $body;
            $pool.close().await;
            done
        }
    }};
}

mod admin;
mod changes;
mod connect;
mod contract;
mod lookup_through;
mod outage;
mod usage;

const HOUR: Duration = Duration::from_secs(3600);

/// A clock the test moves: expiry is checked against it, not against the wall.
#[derive(Clone)]
struct Clock(Arc<AtomicU64>);

impl Clock {
    fn new() -> Self {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        Self(Arc::new(AtomicU64::new(now.as_millis() as u64)))
    }
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0.load(Ordering::SeqCst))
    }
    fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

fn format() -> KeyFormat {
    KeyFormat::new("acme_test").unwrap()
}

/// An axum app behind the layer over `store`, answering with the principal's id.
async fn serve<K: KeyStore + Clone>(store: K, format: KeyFormat, clock: Clock) -> Served {
    let layer = ValidateCredentialLayer::new(Placement::bearer(), store)
        .key_format(format)
        .clock(move || clock.now());
    let router = axum::Router::new()
        .route(
            "/whoami",
            get(|principal: Principal| async move { principal.id().to_owned() }),
        )
        .layer(layer);
    Served::start(router).await
}

/// The status (and body) of a request presenting `key`.
async fn call(served: &Served, key: &Secret) -> (StatusCode, String) {
    use http_body_util::BodyExt;
    let mut request = request(format!("{}/whoami", served.base_url));
    request.headers_mut().insert(
        http::header::AUTHORIZATION,
        format!("Bearer {}", key.expose()).parse().unwrap(),
    );
    let response = client().request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("keys.db").display())
}

/// A key database in a new SQLite file (deleted with the directory).
async fn sqlite_database() -> (tempfile::TempDir, KeyDatabase) {
    let dir = tempfile::tempdir().unwrap();
    let database = KeyDatabase::connect(&sqlite_url(&dir), format())
        .await
        .unwrap();
    (dir, database)
}
