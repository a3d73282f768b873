//! The key store's contract, run alike against `MemoryKeyStore`, SQLite and PostgreSQL, over
//! real HTTP: insert, lookup, expiry, revoke, roll with overlap, several keys per principal.
//! Then what only the SQL store does: `last_used_at` in batches, the outage policy on SQLite.

use crate::support;
use crate::support::postgres;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use http::StatusCode;
use tower_api_auth::ValidateCredentialLayer;
use tower_api_auth::server::sql::{KeyDatabase, NewKey, OutagePolicy, SqlKeyStore};
use tower_api_auth::server::{
    KeyDigest, KeyFormat, KeyRecord, KeyStore, MemoryKeyStore, Principal,
};
use tower_api_auth::{Placement, Secret};

use support::{Served, client, get as request};

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

/// The operations of the contract, on each store.
enum Keys {
    Memory {
        store: MemoryKeyStore,
        format: KeyFormat,
        issued: Mutex<HashMap<String, (Secret, KeyRecord)>>,
    },
    Sql(SqlKeyStore),
}

impl Keys {
    fn memory() -> Self {
        Self::Memory {
            store: MemoryKeyStore::new(),
            format: format(),
            issued: Mutex::default(),
        }
    }

    /// A `SqlKeyStore` on `url`: a snapshot, or lookup-through with caches of `capacity`.
    async fn sql(url: &str, lookup_through: Option<usize>) -> Self {
        let database = KeyDatabase::connect(url, format()).await.unwrap();
        let mut builder = SqlKeyStore::builder(database);
        if let Some(capacity) = lookup_through {
            builder = builder.lookup_through(capacity);
        }
        Self::Sql(builder.open().await.unwrap())
    }

    fn format(&self) -> KeyFormat {
        match self {
            Self::Memory { format, .. } => format.clone(),
            Self::Sql(store) => store.database().format().clone(),
        }
    }

    /// A new key of `principal`; returns its id and the key.
    async fn create(
        &self,
        principal: &str,
        scopes: &[&str],
        expires: Option<SystemTime>,
    ) -> (String, Secret) {
        match self {
            Self::Memory {
                store,
                format,
                issued,
            } => {
                let key = format.issue();
                let mut record =
                    KeyRecord::new(Principal::new(principal).with_scopes(scopes.iter().copied()));
                if let Some(at) = expires {
                    record = record.with_expiry(at);
                }
                store.insert(key.clone(), record.clone());
                let id = key.expose()[..20].to_owned();
                issued
                    .lock()
                    .unwrap()
                    .insert(id.clone(), (key.clone(), record));
                (id, key)
            }
            Self::Sql(store) => {
                let mut new = NewKey::new(principal).scopes(scopes.iter().copied());
                if let Some(at) = expires {
                    new = new.expires_at(at);
                }
                let issued = store.database().create(new).await.unwrap();
                store.refresh().await.unwrap();
                (issued.info().id().to_owned(), issued.key().clone())
            }
        }
    }

    async fn revoke(&self, id: &str) {
        match self {
            Self::Memory { store, issued, .. } => {
                let (key, _) = issued.lock().unwrap()[id].clone();
                assert!(store.revoke(key));
            }
            Self::Sql(store) => {
                assert!(store.database().revoke(id).await.unwrap());
                assert!(
                    !store.database().revoke(id).await.unwrap(),
                    "already revoked"
                );
                store.refresh().await.unwrap();
            }
        }
    }

    /// Rolls key `id`: a new key, the old one expiring `overlap` from `now`.
    async fn roll(&self, id: &str, overlap: Duration, now: SystemTime) -> (String, Secret) {
        match self {
            Self::Memory { store, issued, .. } => {
                let (old_key, old) = issued.lock().unwrap()[id].clone();
                let principal = old.principal();
                let scopes: Vec<&str> = principal.scopes().collect();
                let (new_id, new_key) = self.create(principal.id(), &scopes, old.expiry()).await;
                store.insert(old_key, old.clone().with_expiry(now + overlap));
                (new_id, new_key)
            }
            Self::Sql(store) => {
                let issued = store.database().roll(id, overlap).await.unwrap();
                store.refresh().await.unwrap();
                (issued.info().id().to_owned(), issued.key().clone())
            }
        }
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

async fn contract(keys: Keys) {
    let clock = Clock::new();
    let served = match &keys {
        Keys::Memory { store, .. } => serve(store.clone(), keys.format(), clock.clone()).await,
        Keys::Sql(store) => serve(store.clone(), keys.format(), clock.clone()).await,
    };
    let ok = |principal: &str| (StatusCode::OK, principal.to_owned());

    // Insert and lookup; a key never issued is refused.
    let (alice_1, alice_key_1) = keys.create("alice", &["jobs:read"], None).await;
    assert_eq!(call(&served, &alice_key_1).await, ok("alice"));
    let stranger = keys.format().issue();
    assert_eq!(call(&served, &stranger).await.0, StatusCode::UNAUTHORIZED);

    // Several keys per principal, each its own.
    let (_, alice_key_2) = keys.create("alice", &["jobs:read"], None).await;
    let (_, bob_key) = keys.create("bob", &[], None).await;
    assert_eq!(call(&served, &alice_key_2).await, ok("alice"));
    assert_eq!(call(&served, &bob_key).await, ok("bob"));

    // Revoking one key of alice's leaves her other key valid.
    keys.revoke(&alice_1).await;
    assert_eq!(
        call(&served, &alice_key_1).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(call(&served, &alice_key_2).await, ok("alice"));

    // Expiry: valid before, refused after.
    let (_, carol_key) = keys.create("carol", &[], Some(clock.now() + HOUR)).await;
    assert_eq!(call(&served, &carol_key).await, ok("carol"));

    // Roll with an overlap of an hour: both keys valid, then the old one expires.
    let (dave, dave_old) = keys.create("dave", &["jobs:read"], None).await;
    let (_, dave_new) = keys.roll(&dave, HOUR, SystemTime::now()).await;
    assert_ne!(dave_old.expose(), dave_new.expose());
    assert_eq!(call(&served, &dave_old).await, ok("dave"));
    assert_eq!(call(&served, &dave_new).await, ok("dave"));

    clock.advance(2 * HOUR);
    assert_eq!(call(&served, &carol_key).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&served, &dave_old).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&served, &dave_new).await, ok("dave"));
    assert_eq!(call(&served, &alice_key_2).await, ok("alice"));

    // A malformed key is refused as such.
    let mut typo = alice_key_2.expose().to_owned();
    typo.replace_range(12..13, if &typo[12..13] == "x" { "y" } else { "x" });
    let (status, body) = call(&served, &Secret::new(typo)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("malformed_credential"), "{body}");
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("keys.db").display())
}

#[tokio::test]
async fn contract_memory() {
    contract(Keys::memory()).await;
}

#[tokio::test]
async fn contract_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    contract(Keys::sql(&sqlite_url(&dir), None).await).await;
}

/// The contract with no snapshot: caches of 4 keys and 4 unknown digests, so that keys are
/// dropped from the cache and read again along the way.
#[tokio::test]
async fn contract_sqlite_lookup_through() {
    let dir = tempfile::tempdir().unwrap();
    contract(Keys::sql(&sqlite_url(&dir), Some(4)).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_postgres() {
    let Some(pg) = postgres::Postgres::start("contract_postgres") else {
        return;
    };
    contract(Keys::sql(&pg.url(), None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_postgres_lookup_through() {
    let Some(pg) = postgres::Postgres::start("contract_postgres_lookup_through") else {
        return;
    };
    contract(Keys::sql(&pg.url(), Some(4)).await).await;
}

/// Keys created by one handle (the admin tool, another replica) reach a server's snapshot by
/// polling, with no refresh called.
#[tokio::test]
async fn sqlite_changes_reach_a_running_store_by_polling() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let admin = KeyDatabase::connect(&url, format()).await.unwrap();
    let database = KeyDatabase::connect(&url, format()).await.unwrap();
    let store = SqlKeyStore::builder(database)
        .poll_interval(Duration::from_millis(20))
        .open()
        .await
        .unwrap();
    let issued = admin.create(NewKey::new("erin")).await.unwrap();
    let digest = KeyDigest::of(issued.key().expose());
    // Wait for the poll (by watching the revision), then for the revocation likewise: a minute
    // at most, so that a store that never follows fails instead of hanging.
    let polled = async {
        while store.revision() < issued.info().revision() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!store.lookup(&digest).await.unwrap().unwrap().is_revoked());
        admin.revoke(issued.info().id()).await.unwrap();
        while !store.lookup(&digest).await.unwrap().unwrap().is_revoked() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), polled)
        .await
        .expect("the store followed both changes within a minute");
}

/// A key used many times is written once per flush; `last_used_at` shows it.
#[tokio::test]
async fn last_used_is_written_once_per_key_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let database = KeyDatabase::connect(&sqlite_url(&dir), format())
        .await
        .unwrap();
    let used = database.create(NewKey::new("frank")).await.unwrap();
    let unused = database.create(NewKey::new("grace")).await.unwrap();
    let store = SqlKeyStore::open(database.clone()).await.unwrap();
    let served = serve(store.clone(), format(), Clock::new()).await;
    for _ in 0..50 {
        assert_eq!(call(&served, used.key()).await.0, StatusCode::OK);
    }
    assert_eq!(store.flush_usage().await.unwrap(), 1);
    assert_eq!(store.flush_usage().await.unwrap(), 0, "nothing used since");
    let listed = database.list().await.unwrap();
    let last_used = |id: &str| {
        listed
            .iter()
            .find(|key| key.id() == id)
            .unwrap()
            .last_used_at()
    };
    assert!(last_used(used.info().id()).is_some());
    assert!(last_used(unused.info().id()).is_none());
    // Writing last_used_at takes no revision: servers are not woken for it.
    assert_eq!(
        database
            .key(used.info().id())
            .await
            .unwrap()
            .unwrap()
            .revision(),
        used.info().revision()
    );
    assert_eq!(call(&served, used.key()).await.0, StatusCode::OK);
    assert_eq!(
        store.flush_usage().await.unwrap(),
        1,
        "used again: written again"
    );
}

/// SQLite's pool closed mid-run: fail closed answers 503 with Retry-After, the snapshot policy
/// keeps serving. (Recovery is tested on PostgreSQL, stopped and started: `server::sql::replicas`.)
#[tokio::test]
async fn sqlite_outage_policies_hold() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let database = KeyDatabase::connect(&url, format()).await.unwrap();
    let issued = database.create(NewKey::new("heidi")).await.unwrap();
    let closed = SqlKeyStore::builder(database.clone())
        .outage(OutagePolicy::FailClosed)
        .open()
        .await
        .unwrap();
    let stale = SqlKeyStore::builder(database.clone())
        .outage(OutagePolicy::serve_snapshot(HOUR))
        .open()
        .await
        .unwrap();
    let served_closed = serve(closed.clone(), format(), Clock::new()).await;
    let served_stale = serve(stale.clone(), format(), Clock::new()).await;

    // The database goes away: its pool is closed (as a crashed server or a lost volume would).
    database.close().await;
    assert!(closed.refresh().await.is_err());
    assert!(stale.refresh().await.is_err());
    assert!(!closed.database_reachable());

    let mut request = request(format!("{}/whoami", served_closed.base_url));
    request.headers_mut().insert(
        http::header::AUTHORIZATION,
        format!("Bearer {}", issued.key().expose()).parse().unwrap(),
    );
    let response = client().request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[http::header::RETRY_AFTER], "5");
    assert_eq!(call(&served_stale, issued.key()).await.0, StatusCode::OK);
}

/// The key is shown once, by `expose`: never by `Debug`, in a listing, or in the logs.
#[tokio::test]
async fn issued_keys_never_show_the_key() {
    let logs = support::CapturedLogs::default();
    let _guard = logs.install();
    let dir = tempfile::tempdir().unwrap();
    let database = KeyDatabase::connect(&sqlite_url(&dir), format())
        .await
        .unwrap();
    let issued = database.create(NewKey::new("ivan")).await.unwrap();
    let key = issued.key().expose().to_owned();
    let random = &key["acme_test_".len()..];
    let store = SqlKeyStore::open(database.clone()).await.unwrap();
    let served = serve(store.clone(), format(), Clock::new()).await;
    assert_eq!(call(&served, issued.key()).await.0, StatusCode::OK);
    database.revoke(issued.info().id()).await.unwrap();
    store.refresh().await.unwrap();
    assert_eq!(
        call(&served, issued.key()).await.0,
        StatusCode::UNAUTHORIZED
    );
    let shown = format!(
        "{issued:?} {:?} {store:?} {database:?} {}",
        database.list().await.unwrap(),
        logs.text()
    );
    assert!(shown.contains("ivan"), "{shown}");
    assert!(!shown.contains(&random[4..]), "{shown}");
}

/// Rolling changes a key's secret, not its life: an expired key cannot be rolled into a key
/// that is dead on arrival.
#[tokio::test]
async fn an_expired_key_cannot_be_rolled() {
    let dir = tempfile::tempdir().unwrap();
    let database = KeyDatabase::connect(&sqlite_url(&dir), format())
        .await
        .unwrap();
    let expired = NewKey::new("judy").expires_at(SystemTime::now() - Duration::from_secs(60));
    let expired = database.create(expired).await.unwrap();
    let err = database
        .roll(expired.info().id(), Duration::from_secs(3600))
        .await
        .unwrap_err();
    assert!(
        matches!(err, tower_api_auth::server::sql::SqlStoreError::Expired(ref id) if id == expired.info().id()),
        "{err:?}"
    );
    assert_eq!(database.list().await.unwrap().len(), 1, "no key issued");
}

// Lookup-through mode: no snapshot, bounded caches of known keys and unknown digests.

/// Ten times more distinct keys, and ten times more distinct unknown digests, than the caches
/// hold: both caches stay within their capacity after every lookup, every answer is right, and
/// a key looked up again while still cached does not reach the database.
#[tokio::test]
async fn lookup_through_caches_stay_within_their_bounds() {
    const CAPACITY: usize = 100;
    const KEYS: usize = 10 * CAPACITY;
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let database = KeyDatabase::connect(&url, format()).await.unwrap();
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let mut transaction = pool.begin().await.unwrap();
    for index in 0..KEYS {
        sqlx::query(
            "INSERT INTO api_keys (id, start, digest, principal, scopes, created_at) \
             VALUES ($1, 'key-', $2, $3, '[]', 0)",
        )
        .bind(format!("key-{index}"))
        .bind(KeyDigest::of(format!("key-{index}")).as_bytes().to_vec())
        .bind(format!("svc-{index}"))
        .execute(&mut *transaction)
        .await
        .unwrap();
    }
    transaction.commit().await.unwrap();
    pool.close().await;

    let store = SqlKeyStore::builder(database)
        .lookup_through(CAPACITY)
        .open()
        .await
        .unwrap();
    assert!(store.is_empty(), "nothing loaded at start-up");
    for index in 0..KEYS {
        let found = store
            .lookup(&KeyDigest::of(format!("key-{index}")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.principal().id(), format!("svc-{index}"));
        let unknown = store
            .lookup(&KeyDigest::of(format!("unknown-{index}")))
            .await
            .unwrap();
        assert!(unknown.is_none());
        let stats = store.cache_stats().unwrap();
        assert!(stats.keys <= CAPACITY, "{stats:?} after {index}");
        assert!(stats.unknown <= CAPACITY, "{stats:?} after {index}");
    }
    let stats = store.cache_stats().unwrap();
    assert_eq!(stats.database_lookups, 2 * KEYS as u64);
    assert!(stats.keys > CAPACITY / 2, "the cache is used: {stats:?}");
    assert_eq!(store.len(), stats.keys);

    // The last key and digest looked up are cached: answered without the database.
    let last = store
        .lookup(&KeyDigest::of(format!("key-{}", KEYS - 1)))
        .await
        .unwrap();
    assert!(last.is_some());
    let unknown = KeyDigest::of(format!("unknown-{}", KEYS - 1));
    assert!(store.lookup(&unknown).await.unwrap().is_none());
    assert_eq!(
        store.cache_stats().unwrap().database_lookups,
        2 * KEYS as u64
    );
    // The first ones were dropped long ago: asked again.
    assert!(
        store
            .lookup(&KeyDigest::of("key-0"))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.cache_stats().unwrap().database_lookups,
        2 * KEYS as u64 + 1
    );
}

/// Inserts a key row for `key` of `principal` by SQL (as another replica or an import would),
/// on SQLite or PostgreSQL; the trigger gives it the next revision.
async fn insert_key(url: &str, key: &Secret, principal: &str) {
    let sql = "INSERT INTO api_keys (id, start, digest, principal, scopes, created_at) \
               VALUES ($1, 'acme_test_', $2, $3, '[]', 0)";
    let digest = KeyDigest::of(key.expose()).as_bytes().to_vec();
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        let query = sqlx::query(sql)
            .bind(principal)
            .bind(digest)
            .bind(principal);
        query.execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let query = sqlx::query(sql)
            .bind(principal)
            .bind(digest)
            .bind(principal);
        query.execute(&pool).await.unwrap();
        pool.close().await;
    }
}

/// An unknown (well-formed) key presented twice is looked up in the database once; created
/// later, it is admitted once the change event has reached the store: `refresh` on SQLite (the
/// poll, called at once), `NOTIFY` on PostgreSQL (the poll interval is an hour here).
async fn negative_cache(url: &str, notified: bool) {
    let database = KeyDatabase::connect(url, format()).await.unwrap();
    let store = SqlKeyStore::builder(database)
        .lookup_through(16)
        .poll_interval(HOUR)
        .open()
        .await
        .unwrap();
    let served = serve(store.clone(), format(), Clock::new()).await;
    let key = format().issue();
    assert_eq!(call(&served, &key).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&served, &key).await.0, StatusCode::UNAUTHORIZED);
    let stats = store.cache_stats().unwrap();
    assert_eq!((stats.database_lookups, stats.unknown), (1, 1), "{stats:?}");

    let before = store.revision();
    insert_key(url, &key, "kim").await;
    if notified {
        tokio::time::timeout(Duration::from_secs(60), async {
            while store.revision() == before {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the NOTIFY reached the store within a minute");
    } else {
        // Until the change is applied, the negative entry answers (the database is not asked).
        assert_eq!(call(&served, &key).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(store.cache_stats().unwrap().database_lookups, 1);
        store.refresh().await.unwrap();
    }
    assert_eq!(
        call(&served, &key).await,
        (StatusCode::OK, "kim".to_owned())
    );
    assert_eq!(call(&served, &key).await.0, StatusCode::OK);
    let stats = store.cache_stats().unwrap();
    assert_eq!((stats.database_lookups, stats.unknown), (2, 0), "{stats:?}");
}

#[tokio::test]
async fn lookup_through_negative_cache_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    negative_cache(&sqlite_url(&dir), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_through_negative_cache_postgres() {
    let Some(pg) = postgres::Postgres::start("lookup_through_negative_cache_postgres") else {
        return;
    };
    negative_cache(&pg.url(), true).await;
}

/// The database gone, lookup-through: the snapshot policy serves the cached key and refuses
/// an uncached one with 503; fail closed refuses both.
#[tokio::test]
async fn lookup_through_outage_policies_hold() {
    let dir = tempfile::tempdir().unwrap();
    let database = KeyDatabase::connect(&sqlite_url(&dir), format())
        .await
        .unwrap();
    let cached = database.create(NewKey::new("leo")).await.unwrap();
    let uncached = database.create(NewKey::new("mia")).await.unwrap();
    let open = |policy| {
        SqlKeyStore::builder(database.clone())
            .lookup_through(16)
            .outage(policy)
            .open()
    };
    let closed = open(OutagePolicy::FailClosed).await.unwrap();
    let stale = open(OutagePolicy::serve_snapshot(HOUR)).await.unwrap();
    let served_closed = serve(closed.clone(), format(), Clock::new()).await;
    let served_stale = serve(stale.clone(), format(), Clock::new()).await;
    assert_eq!(call(&served_closed, cached.key()).await.0, StatusCode::OK);
    assert_eq!(call(&served_stale, cached.key()).await.0, StatusCode::OK);

    database.close().await;
    assert!(closed.refresh().await.is_err());
    assert!(stale.refresh().await.is_err());

    assert_eq!(call(&served_stale, cached.key()).await.0, StatusCode::OK);
    assert_eq!(
        call(&served_stale, uncached.key()).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        call(&served_closed, cached.key()).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        call(&served_closed, uncached.key()).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}
