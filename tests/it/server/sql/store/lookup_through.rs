//! Lookup-through mode: bounded caches of known keys and unknown digests.

use super::*;

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
    by_hand!(url, pool => {
        let query = sqlx::query(sql).bind(principal).bind(digest).bind(principal);
        query.execute(&pool).await.unwrap();
    });
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
