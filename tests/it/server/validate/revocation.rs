//! A revocation under load: every request after it refused, other keys never failing.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_holds_for_every_request_after_it_while_other_keys_never_fail() {
    let keys = MemoryKeyStore::new();
    keys.insert("victim", KeyRecord::new(Principal::new("victim")));
    for n in 0..1000 {
        keys.insert(
            format!("other-{n}"),
            KeyRecord::new(Principal::new(format!("o{n}"))),
        );
    }
    let auth = ValidateCredentialLayer::new(Placement::bearer(), keys.clone());
    let server = Served::start(app(auth)).await;
    let client = client_h2();
    let url = server.url("/me");

    let stop = Arc::new(AtomicBool::new(false));
    let revoked = Arc::new(AtomicBool::new(false));
    let other_ok = Arc::new(AtomicUsize::new(0));
    let victim_after = Arc::new(AtomicUsize::new(0));
    let (warm, mut warmed) = tokio::sync::mpsc::channel::<()>(64);
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let (client, url, stop, other_ok, warm) = (
            client.clone(),
            url.clone(),
            Arc::clone(&stop),
            Arc::clone(&other_ok),
            warm.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = worker;
            while !stop.load(Ordering::SeqCst) {
                let key = format!("other-{}", n % 1000);
                let response = client.request(bearer(&url, Some(&key))).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK, "{key}");
                other_ok.fetch_add(1, Ordering::SeqCst);
                let _ = warm.try_send(());
                n += 8;
            }
        }));
    }
    for worker in 0..4 {
        let (client, url, stop, revoked, victim_after) = (
            client.clone(),
            url.clone(),
            Arc::clone(&stop),
            Arc::clone(&revoked),
            Arc::clone(&victim_after),
        );
        tasks.push(tokio::spawn(async move {
            let _ = worker;
            while !stop.load(Ordering::SeqCst) {
                let after_revoke = revoked.load(Ordering::SeqCst);
                let response = client.request(bearer(&url, Some("victim"))).await.unwrap();
                if after_revoke {
                    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
                    victim_after.fetch_add(1, Ordering::SeqCst);
                } else {
                    assert!(matches!(response.status().as_u16(), 200 | 401));
                }
            }
        }));
    }
    drop(warm);

    // Let the load build up, then churn the store while it runs: swaps of the whole set, and
    // the revoke among them.
    for _ in 0..200 {
        warmed.recv().await.unwrap();
    }
    for n in 0..50 {
        keys.insert(
            format!("churn-{n}"),
            KeyRecord::new(Principal::new("churn")),
        );
    }
    assert!(keys.revoke("victim"));
    revoked.store(true, Ordering::SeqCst);
    keys.retain(|_, record| record.principal().id() != "churn");
    let before = other_ok.load(Ordering::SeqCst);
    for _ in 0..200 {
        warmed.recv().await.unwrap();
    }
    while victim_after.load(Ordering::SeqCst) < 100 {
        tokio::task::yield_now().await;
    }
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    assert!(other_ok.load(Ordering::SeqCst) >= before + 200);
    let refused = client.request(bearer(&url, Some("victim"))).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}
