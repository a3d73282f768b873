//! `last_used_at`, written in batches.

use super::*;

#[tokio::test]
async fn last_used_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    last_used_is_written_once_per_key_per_interval(&sqlite_url(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_used_postgres() {
    let Some(pg) = postgres::Postgres::start("last_used_postgres") else {
        return;
    };
    last_used_is_written_once_per_key_per_interval(&pg.url()).await;
}

/// A key used many times is written once per flush; `last_used_at` shows it.
async fn last_used_is_written_once_per_key_per_interval(url: &str) {
    let database = KeyDatabase::connect(url, format()).await.unwrap();
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
