//! Changes made by another handle reach a running store.

use super::*;

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

/// A database restored from a backup under running servers (its history wound back, as a
/// failover to a standby that lagged also does): its revision counter is below what the
/// stores applied, so its next changes would take revisions they have seen, and the revision
/// guard would skip them. The stores read everything again instead: a key revoked after the
/// restore is refused, and keys the backup never held are unknown. Snapshot and lookup-through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restored_from_a_backup_is_read_again() {
    let Some(pg) = postgres::Postgres::start("a_database_restored_from_a_backup_is_read_again")
    else {
        return;
    };
    let database = KeyDatabase::connect(&pg.url(), format()).await.unwrap();
    let kept = database.create(NewKey::new("kept")).await.unwrap();
    let snapshot = SqlKeyStore::open(database.clone()).await.unwrap();
    let through = SqlKeyStore::builder(database.clone())
        .lookup_through(16)
        .open()
        .await
        .unwrap();
    let stores = [snapshot, through];
    let mut served = Vec::new();
    for store in &stores {
        served.push(serve(store.clone(), format(), Clock::new()).await);
    }

    pg.back_up();
    let lost = database.create(NewKey::new("lost")).await.unwrap();
    for _ in 0..3 {
        let other = database.create(NewKey::new("other")).await.unwrap();
        database.revoke(other.info().id()).await.unwrap();
    }
    for (store, served) in stores.iter().zip(&served) {
        retry(|| store.refresh()).await;
        assert_eq!(call(served, kept.key()).await.0, StatusCode::OK);
        assert_eq!(call(served, lost.key()).await.0, StatusCode::OK);
    }

    pg.restore();
    // The first change after the restore takes a revision the stores have applied already.
    retry(|| database.revoke(kept.info().id())).await;
    for (store, served) in stores.iter().zip(&served) {
        retry(|| store.refresh()).await;
        assert_eq!(call(served, kept.key()).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(call(served, lost.key()).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(store.revision(), database_revision(&pg).await);
    }
}

/// `step` until it succeeds (a pool reconnecting after a restart), bounded: a minute.
async fn retry<T, F: Future<Output = Result<T, tower_api_auth::server::sql::SqlStoreError>>>(
    step: impl Fn() -> F,
) -> T {
    let started = std::time::Instant::now();
    loop {
        match step().await {
            Ok(done) => return done,
            Err(error) if started.elapsed() > Duration::from_secs(60) => panic!("{error}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The database's revision counter, read directly.
async fn database_revision(pg: &postgres::Postgres) -> i64 {
    let pool = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    sqlx::query_scalar("SELECT revision FROM api_keys_revision")
        .fetch_one(&pool)
        .await
        .unwrap()
}
