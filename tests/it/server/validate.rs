//! The server side on loopback: an axum app behind `ValidateCredentialLayer`, called by a real
//! hyper-util client.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::routing;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, StatusCode};
use support::{Body, CapturedLogs, Served, client, client_h2, get, json};
use tower::{Layer, ServiceExt};
use tower_api_auth::outcome::{Outcome, OutcomeKind};
use tower_api_auth::providers::akool;
use tower_api_auth::server::{KeyDigest, KeyRecord, MemoryKeyStore, Principal};
use tower_api_auth::{ClassifyLayer, Placement, ValidateCredentialLayer};

const T0: u64 = 1_900_000_000;

/// A clock the test moves by hand, in seconds since the epoch.
fn clock(now: &Arc<AtomicU64>) -> impl Fn() -> SystemTime + Send + Sync + 'static {
    let now = Arc::clone(now);
    move || SystemTime::UNIX_EPOCH + Duration::from_secs(now.load(Ordering::SeqCst))
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// Keys in every state the matrix needs.
fn keys() -> MemoryKeyStore {
    let keys = MemoryKeyStore::new();
    let reader = Principal::new("reader").with_scopes(["read"]);
    let writer = Principal::new("writer")
        .with_organization("acme")
        .with_scopes(["read", "write"]);
    keys.insert("key-reader", KeyRecord::new(reader));
    keys.insert("key-writer", KeyRecord::new(writer.clone()));
    keys.insert(
        "key-expiring",
        KeyRecord::new(writer.clone()).with_expiry(at(T0 + 60)),
    );
    keys.insert("key-revoked", KeyRecord::new(writer).revoked());
    keys
}

async fn whoami(principal: Principal) -> String {
    format!(
        "{}@{}",
        principal.id(),
        principal.organization().unwrap_or("-")
    )
}

async fn hello(principal: Option<Principal>) -> String {
    match principal {
        Some(principal) => format!("hello {}", principal.id()),
        None => "hello stranger".to_owned(),
    }
}

/// Public, authenticated, read-scoped and write-scoped routes.
fn app(auth: ValidateCredentialLayer<MemoryKeyStore>) -> Router {
    Router::new()
        .route(
            "/read",
            routing::get(whoami).route_layer(auth.clone().require_scopes(["read"])),
        )
        .route(
            "/write",
            routing::get(whoami).route_layer(auth.clone().require_scopes(["write"])),
        )
        .route("/me", routing::get(whoami).route_layer(auth))
        .route("/public", routing::get(hello))
        .route("/forgot-the-layer", routing::get(whoami))
}

fn bearer(url: &str, key: Option<&str>) -> Request<Body> {
    let mut request = get(url);
    if let Some(key) = key {
        let value = HeaderValue::from_str(&format!("Bearer {key}")).unwrap();
        request.headers_mut().insert(AUTHORIZATION, value);
    }
    request
}

#[tokio::test]
async fn every_key_state_and_scope_gets_the_right_status() {
    let now = Arc::new(AtomicU64::new(T0));
    let auth = ValidateCredentialLayer::new(Placement::bearer(), keys()).clock(clock(&now));
    let server = Served::start(app(auth)).await;
    let client = client();

    use StatusCode as S;
    #[rustfmt::skip]
    let matrix: &[(Option<&str>, S, S, S)] = &[
        //  key                 /me            /read          /write
        (None,                  S::UNAUTHORIZED, S::UNAUTHORIZED, S::UNAUTHORIZED),
        (Some("key-unknown"),   S::UNAUTHORIZED, S::UNAUTHORIZED, S::UNAUTHORIZED),
        (Some("key-revoked"),   S::UNAUTHORIZED, S::UNAUTHORIZED, S::UNAUTHORIZED),
        (Some("key-reader"),    S::OK,           S::OK,           S::FORBIDDEN),
        (Some("key-writer"),    S::OK,           S::OK,           S::OK),
        (Some("key-expiring"),  S::OK,           S::OK,           S::OK),
    ];
    let check = |now_label: &'static str, matrix: Vec<(Option<&'static str>, [S; 3])>| {
        let client = client.clone();
        let server_url = server.base_url.clone();
        async move {
            for (key, expected) in matrix {
                for (path, status) in ["/me", "/read", "/write"].into_iter().zip(expected) {
                    let url = format!("{server_url}{path}");
                    let response = client.request(bearer(&url, key)).await.unwrap();
                    assert_eq!(response.status(), status, "{now_label} {key:?} {path}");
                    let public = client.request(bearer(&format!("{server_url}/public"), key));
                    assert_eq!(public.await.unwrap().status(), S::OK);
                }
            }
        }
    };
    let rows = matrix
        .iter()
        .map(|(k, a, b, c)| (*k, [*a, *b, *c]))
        .collect();
    check("before expiry", rows).await;

    // The expiring key's time passes: the same request is now refused.
    now.store(T0 + 60, Ordering::SeqCst);
    let rows = vec![(Some("key-expiring"), [S::UNAUTHORIZED; 3])];
    check("at expiry", rows).await;

    let response = client
        .request(bearer(&server.url("/write"), Some("key-writer")))
        .await
        .unwrap();
    let body = http_body_util::BodyExt::collect(response.into_body()).await;
    assert_eq!(&body.unwrap().to_bytes()[..], b"writer@acme");
}

#[tokio::test]
async fn refusals_say_why_in_json_with_a_challenge() {
    let now = Arc::new(AtomicU64::new(T0 + 3600));
    let auth = ValidateCredentialLayer::new(Placement::bearer(), keys()).clock(clock(&now));
    let server = Served::start(app(auth)).await;
    let client = client();

    let cases = [
        (
            None,
            StatusCode::UNAUTHORIZED,
            "missing_credential",
            "Bearer",
        ),
        (
            Some("key-unknown"),
            StatusCode::UNAUTHORIZED,
            "invalid_credential",
            "Bearer error=\"invalid_token\"",
        ),
        (
            Some("key-revoked"),
            StatusCode::UNAUTHORIZED,
            "invalid_credential",
            "Bearer error=\"invalid_token\"",
        ),
        (
            Some("key-expiring"),
            StatusCode::UNAUTHORIZED,
            "expired_credential",
            "Bearer error=\"invalid_token\"",
        ),
    ];
    for (key, status, error, challenge) in cases {
        let response = client
            .request(bearer(&server.url("/me"), key))
            .await
            .unwrap();
        assert_eq!(response.status(), status);
        assert_eq!(response.headers()[WWW_AUTHENTICATE], challenge, "{key:?}");
        assert_eq!(json(response).await["error"], error, "{key:?}");
    }

    let response = client
        .request(bearer(&server.url("/write"), Some("key-reader")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
    let body = json(response).await;
    assert_eq!(body["error"], "forbidden");
    assert_eq!(
        body["message"],
        "the credential does not allow this request"
    );

    // A handler that takes a `Principal` on a route without the layer is a bug: 500.
    let response = client
        .request(bearer(&server.url("/forgot-the-layer"), Some("key-writer")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

type Headers<'a> = &'a [(&'a str, &'a [u8])];

/// Sends `headers` to `/me` of a server accepting Bearer, Api-Key and X-API-Key, with one key
/// known: `good-key`.
async fn status_for(server: &Served, headers: Headers<'_>) -> StatusCode {
    let mut request = get(server.url("/me"));
    for (name, value) in headers {
        request.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    client().request(request).await.unwrap().status()
}

#[tokio::test]
async fn header_variants_are_accepted_or_refused_as_documented() {
    let keys = MemoryKeyStore::new();
    keys.insert("good-key", KeyRecord::new(Principal::new("someone")));
    let auth = ValidateCredentialLayer::new(Placement::bearer(), keys)
        .accept(Placement::api_key())
        .accept(Placement::header("x-api-key").unwrap());
    let server = Served::start(app(auth)).await;

    let huge = format!("Bearer {}", "k".repeat(16 * 1024));
    let ok = StatusCode::OK;
    let no = StatusCode::UNAUTHORIZED;
    #[rustfmt::skip]
    let cases: &[(Headers<'_>, StatusCode)] = &[
        (&[("authorization", b"Bearer good-key")], ok),
        (&[("authorization", b"bearer good-key")], ok),
        (&[("authorization", b"BEARER good-key")], ok),
        (&[("authorization", b"Api-Key good-key")], ok),
        (&[("authorization", b"API-KEY good-key")], ok),
        (&[("x-api-key", b"good-key")], ok),
        (&[("X-Api-Key", b"good-key")], ok),
        // The credential is exact.
        (&[("authorization", b"Bearer GOOD-KEY")], no),
        (&[("authorization", b"Bearer good-ke")], no),
        (&[("authorization", b"Bearer good-key2")], no),
        // Spaces and tabs.
        (&[("authorization", b"Bearer  good-key")], no),
        (&[("authorization", b"Bearergood-key")], no),
        (&[("authorization", b"Bearer\tgood-key")], no),
        (&[("authorization", b"Bearer good key")], no),
        (&[("authorization", b"Bearer good-key extra")], no),
        // Empty.
        (&[("authorization", b"Bearer")], no),
        (&[("authorization", b"Bearer ")], no),
        (&[("x-api-key", b"")], no),
        // Other schemes are not credentials.
        (&[("authorization", b"Basic good-key")], no),
        (&[("authorization", b"Token good-key")], no),
        // Duplicates and conflicts.
        (&[("authorization", b"Bearer good-key"), ("authorization", b"Bearer good-key")], no),
        (&[("x-api-key", b"good-key"), ("x-api-key", b"other")], no),
        (&[("x-api-key", b"good-key"), ("authorization", b"Bearer other")], no),
        (&[("x-api-key", b"other"), ("authorization", b"Bearer good-key")], no),
        (&[("x-api-key", b"good-key"), ("authorization", b"Bearer good-key")], no),
        (&[("x-api-key", b"good-key"), ("authorization", b"Basic dXNlcjpwYXNz")], ok),
        // Not ASCII, too long.
        (&[("authorization", "Bearer good-kéy".as_bytes())], no),
        (&[("x-api-key", b"good-key\xff")], no),
        (&[("authorization", huge.as_bytes())], no),
    ];
    for (headers, expected) in cases {
        let shown: Vec<_> = headers
            .iter()
            .map(|(n, v)| (n, String::from_utf8_lossy(v)))
            .collect();
        assert_eq!(status_for(&server, headers).await, *expected, "{shown:?}");
    }
}

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

#[tokio::test]
async fn akool_mode_answers_the_documented_codes_and_the_client_reads_them_back() {
    let keys = MemoryKeyStore::new();
    let member = Principal::new("member").with_scopes(["faceswap"]);
    keys.insert("akool-key", KeyRecord::new(member.clone()));
    keys.insert("revoked-key", KeyRecord::new(member).revoked());
    keys.insert("no-scope-key", KeyRecord::new(Principal::new("guest")));
    let auth = ValidateCredentialLayer::new(Placement::header("x-api-key").unwrap(), keys)
        .accept(Placement::bearer())
        .require_scopes(["faceswap"])
        .reject_with(akool::rejection_response());
    let router = Router::new().route(
        "/api/open/v3/faceswap/quota/info",
        routing::get(|| async { axum::Json(serde_json::json!({ "code": 1000, "msg": "OK" })) })
            .route_layer(auth),
    );
    let server = Served::start(router).await;
    let url = server.url("/api/open/v3/faceswap/quota/info");
    let api = ClassifyLayer::new(akool::classifier()).layer(client());

    let with = |name: &'static str, value: &str| {
        let mut request = get(&url);
        request
            .headers_mut()
            .insert(name, HeaderValue::from_str(value).unwrap());
        request
    };
    let cases = [
        (get(&url), 1102, OutcomeKind::CredentialMissing),
        (
            with("x-api-key", "wrong"),
            1101,
            OutcomeKind::CredentialRejected,
        ),
        (
            with("authorization", "Bearer wrong"),
            1101,
            OutcomeKind::CredentialRejected,
        ),
        // Revoked looks exactly like unknown: a key-guesser learns nothing.
        (
            with("x-api-key", "revoked-key"),
            1101,
            OutcomeKind::CredentialRejected,
        ),
        (
            with("x-api-key", "no-scope-key"),
            1009,
            OutcomeKind::Forbidden,
        ),
        (with("x-api-key", "akool-key"), 1000, OutcomeKind::Success),
        (
            with("authorization", "Bearer akool-key"),
            1000,
            OutcomeKind::Success,
        ),
    ];
    for (request, code, kind) in cases {
        let response = api.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let outcome = response.extensions().get::<Outcome>().unwrap().clone();
        assert_eq!((outcome.kind(), outcome.code()), (kind, Some(code)));
        assert_eq!(json(response).await["code"], code);
    }
}

#[tokio::test]
async fn a_failing_store_answers_503_and_a_closure_is_a_store() {
    let known = KeyDigest::of("db-key");
    let store = move |digest: &KeyDigest| {
        let found = *digest == known;
        async move {
            match found {
                true => Ok(Some(KeyRecord::new(Principal::new("from-db")))),
                false => Err("connection refused".into()),
            }
        }
    };
    let auth = ValidateCredentialLayer::new(Placement::bearer(), store);
    let router = Router::new().route("/me", routing::get(whoami).route_layer(auth));
    let server = Served::start(router).await;

    let response = client().request(bearer(&server.url("/me"), Some("db-key")));
    assert_eq!(response.await.unwrap().status(), StatusCode::OK);
    let response = client()
        .request(bearer(&server.url("/me"), Some("other")))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(response).await["error"], "unavailable");
}

#[tokio::test]
async fn refusals_are_logged_with_principal_and_reason_never_the_key() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let now = Arc::new(AtomicU64::new(T0 + 3600));
    let auth = ValidateCredentialLayer::new(Placement::bearer(), keys()).clock(clock(&now));
    let server = Served::start(app(auth)).await;
    let client = client();

    for key in ["key-unknown", "key-revoked", "key-expiring", "key-reader"] {
        let response = client.request(bearer(&server.url("/write"), Some(key)));
        assert_ne!(response.await.unwrap().status(), StatusCode::OK);
    }
    let text = logs.text();
    assert!(text.contains("reason=unknown credential"), "{text}");
    assert!(
        text.contains("reason=revoked credential principal=\"writer\""),
        "{text}"
    );
    assert!(
        text.contains("reason=expired credential principal=\"writer\""),
        "{text}"
    );
    assert!(
        text.contains("reason=credential not allowed this request principal=\"reader\""),
        "{text}"
    );
    assert!(!text.contains("key-"), "{text}");
}
