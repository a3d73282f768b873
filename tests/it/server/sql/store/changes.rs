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
