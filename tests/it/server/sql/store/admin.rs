//! Issuing and rolling keys: the key shown once, an expired key never rolled.

use super::*;

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
