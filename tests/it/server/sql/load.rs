//! Start-up with a million keys: `SqlKeyStore::open` loads them from SQLite and from
//! PostgreSQL; the time is printed (BENCHMARKS.md records it from a release run:
//! `cargo test --release --all-features --test it server::sql::load -- --nocapture`). About a
//! minute in a debug build, most of it inserting the keys.

use crate::support::postgres;

use std::time::{Duration, Instant};

use futures::FutureExt;
use tower_api_auth::server::sql::{KeyDatabase, NewKey, SqlKeyStore};
use tower_api_auth::server::{KeyDigest, KeyFormat, KeyStore};

const KEYS: i64 = 1_000_000;

fn format() -> KeyFormat {
    KeyFormat::new("acme_live").unwrap()
}

/// Opens the store on a database holding a million bulk-loaded keys and one issued key; checks
/// that every key is in the snapshot and the issued one is admitted, then revokes it. Returns
/// the load time and the time one revocation takes to apply (the snapshot is copied).
async fn load(database: KeyDatabase) -> (Duration, Duration) {
    let issued = database.create(NewKey::new("alice")).await.unwrap();
    let started = Instant::now();
    let store = SqlKeyStore::open(database).await.unwrap();
    let took = started.elapsed();
    assert_eq!(store.len(), KEYS as usize + 1);
    let found = store
        .lookup(&KeyDigest::of(issued.key().expose()))
        .now_or_never()
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(found.principal().id(), "alice");

    store.database().revoke(issued.info().id()).await.unwrap();
    let started = Instant::now();
    store.refresh().await.unwrap();
    let revocation = started.elapsed();
    let found = store
        .lookup(&KeyDigest::of(issued.key().expose()))
        .now_or_never();
    assert!(found.unwrap().unwrap().unwrap().is_revoked());
    (took, revocation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_keys_load_from_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());
    let database = KeyDatabase::connect(&url, format()).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let inserted = Instant::now();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO api_keys (id, start, digest, principal, scopes, created_at) \
         SELECT 'key-' || i, 'acme_live_', randomblob(32), 'user-' || (i % 1000), \
         '[\"jobs:read\"]', 0 FROM n",
    )
    .bind(KEYS)
    .execute(&pool)
    .await
    .unwrap();
    let inserted = inserted.elapsed();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (took, revocation) = load(database).await;
    eprintln!(
        "SQLite: {KEYS} keys inserted in {inserted:?}; SqlKeyStore::open loaded them in {took:?}; \
         a revocation applied in {revocation:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_keys_load_from_postgres() {
    let Some(pg) = postgres::Postgres::start("a_million_keys_load_from_postgres") else {
        return;
    };
    let database = KeyDatabase::connect(&pg.url(), format()).await.unwrap();
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    let inserted = Instant::now();
    // A bulk import: the per-row revision trigger is off, revisions are set in one go and the
    // counter moved past them, so followers see a consistent history.
    let mut transaction = pool.begin().await.unwrap();
    for sql in [
        "ALTER TABLE api_keys DISABLE TRIGGER api_keys_changed",
        "INSERT INTO api_keys (id, start, digest, principal, scopes, created_at, revision) \
         SELECT 'key-' || i, 'acme_live_', sha256(i::text::bytea), 'user-' || (i % 1000), \
         '[\"jobs:read\"]', 0, i FROM generate_series(1, 1000000) AS i",
        "UPDATE api_keys_revision SET revision = revision + 1000000",
        "ALTER TABLE api_keys ENABLE TRIGGER api_keys_changed",
    ] {
        sqlx::query(sql).execute(&mut *transaction).await.unwrap();
    }
    transaction.commit().await.unwrap();
    let inserted = inserted.elapsed();
    pool.close().await;
    let (took, revocation) = load(database).await;
    eprintln!(
        "PostgreSQL: {KEYS} keys inserted in {inserted:?}; SqlKeyStore::open loaded them in \
         {took:?}; a revocation applied in {revocation:?}"
    );
}
