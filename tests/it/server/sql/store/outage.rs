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

/// Asks `served` with `key` until it answers `status` (bounded: a minute); how long it took.
async fn until_status(served: &Served, key: &Secret, status: StatusCode) -> Duration {
    let started = std::time::Instant::now();
    while call(served, key).await.0 != status {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// A fail-closed store over `database` polling every 100 ms, served, admitting `key`.
async fn fail_closed(database: KeyDatabase, key: &Secret) -> (SqlKeyStore, Served) {
    let store = SqlKeyStore::builder(database)
        .outage(OutagePolicy::FailClosed)
        .poll_interval(Duration::from_millis(100))
        .open()
        .await
        .unwrap();
    let served = serve(store.clone(), format(), Clock::new()).await;
    assert_eq!(call(&served, key).await.0, StatusCode::OK);
    (store, served)
}

/// With the database out of reach and `key` revoked there: 503 until `reach` gives it back,
/// then 401. Prints how long each took.
async fn refused_then_caught_up<F: Future<Output = ()>>(
    store: &SqlKeyStore,
    served: &Served,
    key: &Secret,
    reach: F,
) {
    let noticed = until_status(served, key, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(!store.database_reachable());
    eprintln!("out of reach: noticed after {noticed:?}");
    reach.await;
    let recovered = until_status(served, key, StatusCode::UNAUTHORIZED).await;
    assert!(store.database_reachable());
    eprintln!("back: caught up in {recovered:?}");
}

/// A database that stops answering (connections open, nothing coming back: a dead link, a
/// hung server) is noticed within the store's query timeout, and the policy applies: fail
/// closed answers 503, so the key revoked meanwhile is refused; once it answers again, the
/// store catches up. Without a timeout on the store's queries the sync waits forever, the
/// store stays "reachable", and the revoked key is admitted for as long as the link is dead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_stops_answering_is_noticed() {
    use support::silent_proxy::SilentProxy;
    let Some(pg) = postgres::Postgres::start("a_database_that_stops_answering_is_noticed") else {
        return;
    };
    let admin = KeyDatabase::connect(&pg.url(), format()).await.unwrap();
    let issued = admin.create(NewKey::new("ivy")).await.unwrap();
    let proxy = SilentProxy::start(pg.address()).await;
    let behind_proxy = KeyDatabase::connect(&pg.url_via(proxy.address()), format())
        .await
        .unwrap();
    let (store, served) = fail_closed(behind_proxy, issued.key()).await;

    proxy.set_silent(true);
    admin.revoke(issued.info().id()).await.unwrap();
    let reach = async { proxy.set_silent(false) };
    refused_then_caught_up(&store, &served, issued.key(), reach).await;
}

/// A database that takes the store's query and never answers it (here: the table locked by a
/// transaction that does not end; as a hung server or a link lost mid-query does) counts as
/// unreachable after the store's query timeout: fail closed answers 503, and when the
/// transaction ends (revoking the key) the store catches up. Without the timeout the sync
/// waits for the lock forever and the store keeps admitting the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_is_never_answered_is_noticed() {
    use sqlx::Connection;
    let Some(pg) = postgres::Postgres::start("a_query_that_is_never_answered_is_noticed") else {
        return;
    };
    let database = KeyDatabase::connect(&pg.url(), format()).await.unwrap();
    let issued = database.create(NewKey::new("jay")).await.unwrap();
    let (store, served) = fail_closed(database, issued.key()).await;

    let mut connection = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
    let mut transaction = connection.begin().await.unwrap();
    sqlx::query("LOCK TABLE api_keys_revision, api_keys IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *transaction)
        .await
        .unwrap();
    sqlx::query("UPDATE api_keys SET revoked_at = 1 WHERE id = $1")
        .bind(issued.info().id())
        .execute(&mut *transaction)
        .await
        .unwrap();
    let reach = async { transaction.commit().await.unwrap() };
    refused_then_caught_up(&store, &served, issued.key(), reach).await;
}
