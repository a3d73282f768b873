//! Hot rotation: the secret changes while requests are in flight on a multi-thread runtime.

use crate::support;

use http::HeaderValue;
use tokio::sync::{mpsc, watch};
use tower::{Layer, Service, ServiceExt};
use tower_api_auth::providers::akkio;
use tower_api_auth::{AuthLayer, CredentialError};
use tower_api_auth_mock::Provider;

use support::{client, get, scoped_key};

const TASKS: usize = 8;
const BEFORE: usize = 25;
const AFTER: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_carry_the_old_or_the_new_key_and_only_the_new_after_rotate() {
    let (server, credential) = scoped_key(Provider::Akkio, akkio::api_key, "old-key").await;
    server.accept_key("new-key");
    let api = AuthLayer::new(credential.clone()).layer(client());
    let url = format!("{}/api/v1/models", server.base_url());

    // Each task signals once it has sent `BEFORE` requests and keeps sending until it has sent
    // `AFTER` requests that it *started* after seeing the rotation finished.
    let (warm, mut warmed) = mpsc::channel::<()>(TASKS);
    let (rotated_tx, rotated_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let mut api = api.clone();
        let url = url.clone();
        let warm = warm.clone();
        let rotated = rotated_rx.clone();
        tasks.push(tokio::spawn(async move {
            let (mut sent, mut after) = (0, 0);
            while after < AFTER {
                let phase = if *rotated.borrow() { "after" } else { "during" };
                let mut request = get(&url);
                request
                    .headers_mut()
                    .insert("x-phase", HeaderValue::from_static(phase));
                let response = api.ready().await.unwrap().call(request).await.unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                sent += 1;
                after += usize::from(phase == "after");
                if sent == BEFORE {
                    warm.send(()).await.unwrap();
                }
            }
            sent
        }));
    }
    drop(warm);
    for _ in 0..TASKS {
        warmed.recv().await.unwrap();
    }

    // An invalid key is refused and changes nothing.
    assert_eq!(
        credential.rotate("new key"),
        Err(CredentialError::Whitespace { at: 3 })
    );
    credential.rotate("new-key").unwrap();
    rotated_tx.send(true).unwrap();

    let mut sent = 0;
    for task in tasks {
        sent += task.await.unwrap();
    }

    let requests = server.requests();
    assert_eq!(requests.len(), sent, "every request arrived, once");
    let (mut old, mut new) = (0, 0);
    for request in &requests {
        let keys: Vec<_> = request.headers.get_all("x-api-key").iter().collect();
        assert_eq!(keys.len(), 1, "exactly one key per request");
        let after = request.headers["x-phase"] == "after";
        match keys[0].to_str().unwrap() {
            "old-key" if !after => old += 1,
            "new-key" => new += 1,
            other => panic!("unexpected key {other:?} (after rotation: {after})"),
        }
    }
    assert!(
        old >= TASKS * BEFORE,
        "the old key served before the rotation"
    );
    assert!(new >= TASKS * AFTER, "the new key served after it");
}

#[tokio::test]
async fn rotating_to_an_invalid_secret_keeps_the_old_one() {
    let (server, credential) = scoped_key(Provider::Akkio, akkio::api_key, "good-key").await;
    let api = AuthLayer::new(credential.clone()).layer(client());

    let bad: &[(&str, CredentialError)] = &[
        ("", CredentialError::EmptySecret),
        (" good-key", CredentialError::Whitespace { at: 0 }),
        ("good-key\r\n", CredentialError::ControlCharacter { at: 8 }),
        ("güt", CredentialError::NonVisibleAscii { at: 1 }),
    ];
    for (secret, expected) in bad {
        assert_eq!(credential.rotate(*secret).as_ref(), Err(expected));
    }

    let url = format!("{}/api/v1/models", server.base_url());
    let response = api.oneshot(get(url)).await.unwrap();
    assert!(response.status().is_success());
    assert_eq!(server.requests()[0].headers["x-api-key"], "good-key");
}
