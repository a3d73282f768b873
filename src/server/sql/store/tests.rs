//! The revision guard against in-flight loads and lookups, and usage of revoked keys, on SQLite.

use super::*;
use crate::server::KeyFormat;
use crate::server::sql::NewKey;
use futures::FutureExt;

fn lookup(store: &SqlKeyStore, digest: &KeyDigest) -> Option<KeyRecord> {
    match store.lookup(digest).now_or_never() {
        Some(Ok(found)) => found,
        other => panic!("{other:?}"),
    }
}

/// A key database in a SQLite file of a temporary directory (kept while the handle lives).
async fn sqlite_database() -> (tempfile::TempDir, KeyDatabase) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());
    let database = KeyDatabase::connect(&url, KeyFormat::new("acme").unwrap())
        .await
        .unwrap();
    (dir, database)
}

/// A load that read the key before its revocation and lands after it (a slow start-up
/// load, a sync racing the follower, a late event) must not re-admit the key. Without the
/// revision guard in `Snapshot::with` the stale row overwrites the revoked one and this
/// fails.
#[tokio::test]
async fn an_in_flight_load_cannot_re_admit_a_revoked_key() {
    let (_dir, database) = sqlite_database().await;
    let issued = database.create(NewKey::new("alice")).await.unwrap();
    let digest = KeyDigest::of(issued.key().expose());
    let store = SqlKeyStore::open(database.clone()).await.unwrap();

    // The in-flight load: rows read now, while the key is valid...
    let in_flight = database.changes_since(0).await.unwrap();
    assert!(!lookup(&store, &digest).unwrap().is_revoked());

    // ...the revocation is applied meanwhile...
    database.revoke(issued.info().id()).await.unwrap();
    store.refresh().await.unwrap();
    assert!(lookup(&store, &digest).unwrap().is_revoked());
    let revision = store.revision();

    // ...and the load lands late, twice over (a repeated event too).
    store.apply(in_flight.clone()).await;
    store.apply(in_flight).await;
    assert!(lookup(&store, &digest).unwrap().is_revoked());
    assert_eq!(store.revision(), revision);
}

/// A lookup-through store that applies changes only when told to (`refresh`, `apply`).
async fn unpolled_lookup_through(database: &KeyDatabase) -> SqlKeyStore {
    SqlKeyStore::builder(database.clone())
        .lookup_through(16)
        .poll_interval(Duration::from_secs(3600))
        .open()
        .await
        .unwrap()
}

/// A lookup-through miss reads the key while it is valid; the key is revoked and the
/// revocation applied before the answer reaches the caches. The answer must not be cached
/// (it would admit the key until the next change to it) nor be given: the lookup asks
/// again. Without the guard in `Caches::fill` both assertions fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_flight_lookup_cannot_cache_a_revoked_key() {
    let (_dir, database) = sqlite_database().await;
    let issued = database.create(NewKey::new("alice")).await.unwrap();
    let digest = KeyDigest::of(issued.key().expose());
    let store = unpolled_lookup_through(&database).await;

    let (answered, release) = store.hold_next_query();
    let in_flight = tokio::spawn(store.lookup(&digest));
    // The database has answered: the key, valid.
    answered.await.unwrap();
    database.revoke(issued.info().id()).await.unwrap();
    store.refresh().await.unwrap();
    release.send(()).unwrap();

    let answer = in_flight.await.unwrap().unwrap().unwrap();
    assert!(
        answer.is_revoked(),
        "the in-flight lookup answered a revoked key as valid"
    );
    let cached = store.lookup(&digest).await.unwrap().unwrap();
    assert!(cached.is_revoked(), "the stale answer was cached");
    let stats = store.cache_stats().unwrap();
    assert_eq!(stats.keys, 1);
    assert_eq!(
        stats.database_lookups, 2,
        "asked again once, then answered from the cache"
    );
}

/// The same with a key created while a lookup that found nothing was in flight: the
/// "unknown" answer is not cached, so the key is admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_flight_miss_cannot_hide_a_created_key() {
    let (_dir, database) = sqlite_database().await;
    let store = unpolled_lookup_through(&database).await;
    let key = database.format().issue();
    let digest = KeyDigest::of(key.expose());

    let (answered, release) = store.hold_next_query();
    let in_flight = tokio::spawn(store.lookup(&digest));
    answered.await.unwrap();
    let row = Row {
        id: "bob-key".into(),
        start: "acme_".into(),
        digest,
        principal: "bob".into(),
        organization: None,
        scopes: "[]".into(),
        metadata: "{}".into(),
        created_at: 0,
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
        revision: 0,
    };
    database.insert_row(&row).await.unwrap();
    store.refresh().await.unwrap();
    release.send(()).unwrap();

    let answer = in_flight.await.unwrap().unwrap();
    assert_eq!(answer.unwrap().principal().id(), "bob");
    let cached = store.lookup(&digest).await.unwrap().unwrap();
    assert_eq!(cached.principal().id(), "bob");
    assert_eq!(store.cache_stats().unwrap().unknown, 0);
}

#[tokio::test]
async fn revoked_keys_are_not_marked_used() {
    let (_dir, database) = sqlite_database().await;
    let issued = database.create(NewKey::new("alice")).await.unwrap();
    database.revoke(issued.info().id()).await.unwrap();
    let store = SqlKeyStore::open(database).await.unwrap();
    assert!(
        lookup(&store, &KeyDigest::of(issued.key().expose()))
            .unwrap()
            .is_revoked()
    );
    assert_eq!(store.flush_usage().await.unwrap(), 0);
}
