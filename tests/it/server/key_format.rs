//! Recognisable keys: a malformed key is refused before any hashing or lookup (the store's
//! calls are counted), a valid one reaches the store, one changed character fails the checksum.

use crate::support;

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::FutureExt;
use http::{Request, Response, StatusCode};
use rand::Rng;
use tower::{BoxError, Layer, Service};
use tower_api_auth::server::{
    KeyDigest, KeyFormat, KeyFormatError, KeyRecord, KeyStore, MemoryKeyStore, Principal,
};
use tower_api_auth::{Placement, Secret, ValidateCredentialLayer};

use support::{Served, client, get};

/// A `MemoryKeyStore` that counts its lookups.
#[derive(Clone)]
struct Counting {
    keys: MemoryKeyStore,
    calls: Arc<AtomicUsize>,
}

impl KeyStore for Counting {
    type Lookup = Ready<Result<Option<KeyRecord>, BoxError>>;

    fn lookup(&self, digest: &KeyDigest) -> Self::Lookup {
        self.calls.fetch_add(1, Ordering::Relaxed);
        ready(self.keys.lookup(digest).into_inner())
    }
}

/// A key format, a counting store holding one key of it (alice's), and that key.
fn alices_key() -> (KeyFormat, Counting, Secret) {
    let format = KeyFormat::new("acme_live").unwrap();
    let store = Counting {
        keys: MemoryKeyStore::new(),
        calls: Arc::default(),
    };
    let valid = format.issue();
    store
        .keys
        .insert(valid.clone(), KeyRecord::new(Principal::new("alice")));
    (format, store, valid)
}

/// A key that is not of `format`: garbage, the right length with the wrong prefix, or a valid
/// key with one character changed. Each of them must fail.
fn malformed(format: &KeyFormat, rng: &mut impl Rng) -> String {
    const VISIBLE: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-.";
    match rng.random_range(0..3) {
        0 => {
            let len = rng.random_range(1..=80);
            (0..len)
                .map(|_| char::from(VISIBLE[rng.random_range(0..VISIBLE.len())]))
                .collect()
        }
        1 => {
            let mut key = format.issue().expose().to_owned();
            key.replace_range(0..4, "evil");
            key
        }
        _ => {
            let key = format.issue();
            let mut bytes = key.expose().as_bytes().to_vec();
            let at = rng.random_range(0..bytes.len());
            let original = bytes[at];
            while bytes[at] == original {
                bytes[at] = VISIBLE[rng.random_range(0..VISIBLE.len())];
            }
            String::from_utf8(bytes).unwrap()
        }
    }
}

#[test]
fn a_million_malformed_keys_are_refused_without_a_lookup() {
    let (format, store, valid) = alices_key();
    let mut service = ValidateCredentialLayer::new(Placement::bearer(), store.clone())
        .key_format(format.clone())
        .layer(tower::service_fn(|_: Request<()>| {
            ready(Ok::<_, Infallible>(Response::new(())))
        }));
    let mut call = |key: &str| {
        let request = Request::get("/")
            .header("authorization", format!("Bearer {key}"))
            .body(())
            .unwrap();
        let response = service.call(request).now_or_never().unwrap().unwrap();
        response.status()
    };

    let mut rng = rand::rng();
    for _ in 0..1_000_000 {
        let key = malformed(&format, &mut rng);
        assert!(format.check(&key).is_err(), "{key}");
        assert_eq!(call(&key), StatusCode::UNAUTHORIZED, "{key}");
    }
    assert_eq!(
        store.calls.load(Ordering::Relaxed),
        0,
        "the store was asked"
    );

    assert_eq!(call(valid.expose()), StatusCode::OK);
    assert_eq!(store.calls.load(Ordering::Relaxed), 1);
}

#[test]
fn one_changed_character_fails_the_checksum() {
    let format = KeyFormat::new("acme_live").unwrap();
    let key = format.issue();
    let key = key.expose();
    let random_start = "acme_live_".len();
    for at in random_start..random_start + tower_api_auth::server::RANDOM_LEN {
        let mut changed = key.as_bytes().to_vec();
        changed[at] = if changed[at] == b'a' { b'b' } else { b'a' };
        let changed = String::from_utf8(changed).unwrap();
        assert_eq!(
            format.check(&changed),
            Err(KeyFormatError::Checksum),
            "{at}"
        );
    }
}

/// The same over HTTP: a guessed key is refused as malformed, the store is never asked.
#[tokio::test]
async fn guessed_keys_over_http_never_reach_the_store() {
    let (format, store, valid) = alices_key();
    let router = axum::Router::new()
        .route("/", axum::routing::get(|| async { "ok" }))
        .layer(
            ValidateCredentialLayer::new(Placement::bearer(), store.clone())
                .key_format(format.clone()),
        );
    let served = Served::start(router).await;
    let client = client();
    let mut keys: Vec<String> = {
        let mut rng = rand::rng();
        (0..500).map(|_| malformed(&format, &mut rng)).collect()
    };
    keys.push(valid.expose().to_owned());
    for key in &keys {
        let mut request = get(&served.base_url);
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
        let status = client.request(request).await.unwrap().status();
        let expected = match key == valid.expose() {
            true => StatusCode::OK,
            false => StatusCode::UNAUTHORIZED,
        };
        assert_eq!(status, expected, "{key}");
    }
    assert_eq!(store.calls.load(Ordering::Relaxed), 1);
}
