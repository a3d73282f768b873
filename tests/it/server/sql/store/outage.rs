//! The outage policies while the database is gone, snapshot and lookup-through.

use super::*;

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

/// The database gone, lookup-through: the snapshot policy serves the cached key and refuses
/// an uncached one with 503; fail closed refuses both.
#[tokio::test]
async fn lookup_through_outage_policies_hold() {
    let (_dir, database) = sqlite_database().await;
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
