//! Property tests: valid secrets reach the wire byte for byte, invalid ones are refused with the
//! right typed error, and the server side accepts exactly the keys in its store.

use std::convert::Infallible;

use futures::FutureExt;
use http::{HeaderValue, Request, Response, StatusCode};
use proptest::prelude::*;
use tower::{Layer, Service, ServiceExt};
use tower_api_auth::server::{KeyRecord, MemoryKeyStore, Principal};
use tower_api_auth::{AuthLayer, Credential, CredentialError, Placement, ValidateCredentialLayer};

/// Visible ASCII: the alphabet of API keys and tokens.
fn secret() -> impl Strategy<Value = String> {
    "[!-~]{1,200}"
}

fn placement() -> impl Strategy<Value = Placement> {
    prop_oneof![
        Just(Placement::bearer()),
        Just(Placement::api_key()),
        Just(Placement::header("x-api-key").unwrap()),
        "[A-Za-z][A-Za-z0-9-]{0,20}".prop_map(|scheme| Placement::authorization(&scheme).unwrap()),
    ]
}

/// The header `credential` puts on a request, as the inner service receives it.
fn sent(credential: Credential, name: &http::HeaderName) -> Option<HeaderValue> {
    let service = tower::service_fn(|request: Request<()>| async move {
        Ok::<_, Infallible>(Response::new(request.headers().clone()))
    });
    let request = Request::get("https://api.example.com/x").body(()).unwrap();
    let response = AuthLayer::new(credential).layer(service).oneshot(request);
    let headers = response.now_or_never().unwrap().unwrap().into_body();
    headers.get(name).cloned()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_valid_secret_reaches_the_wire_byte_for_byte(secret in secret(), placement in placement()) {
        let expected = match placement.scheme() {
            Some(scheme) => format!("{scheme} {secret}"),
            None => secret.clone(),
        };
        let name = placement.header_name().clone();
        let credential = Credential::builder(placement, secret.as_str())
            .any_origin()
            .build()
            .unwrap();
        let value = sent(credential, &name).unwrap();
        prop_assert_eq!(value.as_bytes(), expected.as_bytes());
        prop_assert!(value.is_sensitive());
    }

    #[test]
    fn an_invalid_secret_is_refused_with_where_not_what(
        secret in secret(),
        at in any::<prop::sample::Index>(),
        bad in prop_oneof![
            Just(' '), Just('\t'), Just('\r'), Just('\n'), Just('\0'), Just('\x7f'),
            Just('é'), Just('\u{a0}'), Just('鍵'),
        ],
    ) {
        // A prefix no error message contains: a short secret ("s") could be a word of one.
        let mut chars: Vec<char> = format!("zq9{secret}").chars().collect();
        let at = at.index(chars.len() + 1);
        chars.insert(at, bad);
        let secret: String = chars.into_iter().collect();
        let expected = match bad {
            ' ' | '\t' => CredentialError::Whitespace { at },
            '\r' | '\n' | '\0' | '\x7f' => CredentialError::ControlCharacter { at },
            _ => CredentialError::NonVisibleAscii { at },
        };
        let err = Credential::bearer(secret.as_str()).any_origin().build().unwrap_err();
        prop_assert_eq!(&err, &expected);
        prop_assert!(!err.to_string().contains(&secret));
    }
}

/// What a request presents: a key in one of the accepted places, sometimes two.
#[derive(Debug, Clone)]
enum Presented {
    Bearer(String),
    ApiKey(String),
    Header(String),
    Raw(Vec<u8>),
}

fn presented(keys: Vec<String>) -> impl Strategy<Value = Presented> {
    let known = prop::sample::select(if keys.is_empty() {
        vec!["none".to_owned()]
    } else {
        keys
    });
    let key = prop_oneof![
        known.clone(),
        known.prop_map(|key| format!("{key}x")),
        "[!-~]{1,40}",
    ];
    prop_oneof![
        key.clone().prop_map(Presented::Bearer),
        key.clone().prop_map(Presented::ApiKey),
        key.prop_map(Presented::Header),
        proptest::collection::vec(any::<u8>(), 0..60).prop_map(Presented::Raw),
    ]
}

fn store_and_request() -> impl Strategy<Value = (Vec<String>, Vec<Presented>)> {
    proptest::collection::vec("[!-~]{1,40}", 0..16).prop_flat_map(|keys| {
        let requests = proptest::collection::vec(presented(keys.clone()), 0..3);
        (Just(keys), requests)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_server_accepts_exactly_one_stored_key_in_an_accepted_place(
        (keys, presented) in store_and_request(),
    ) {
        let store = MemoryKeyStore::new();
        for (index, key) in keys.iter().enumerate() {
            store.insert(key.as_str(), KeyRecord::new(Principal::new(index.to_string())));
        }
        let layer = ValidateCredentialLayer::new(Placement::bearer(), store)
            .accept(Placement::api_key())
            .accept(Placement::header("x-api-key").unwrap());
        // Answers with the index of the key the layer accepted.
        let mut service = layer.layer(tower::service_fn(|request: Request<()>| async move {
            let principal = request.extensions().get::<Principal>().unwrap();
            Ok::<_, Infallible>(Response::new(principal.id().parse::<usize>().unwrap()))
        }));

        let mut request = Request::get("/").body(()).unwrap();
        let mut credentials = Vec::new();
        for credential in &presented {
            let (name, value) = match credential {
                Presented::Bearer(key) => ("authorization", format!("Bearer {key}").into_bytes()),
                Presented::ApiKey(key) => ("authorization", format!("Api-Key {key}").into_bytes()),
                Presented::Header(key) => ("x-api-key", key.clone().into_bytes()),
                Presented::Raw(bytes) => ("authorization", bytes.clone()),
            };
            let Ok(value) = HeaderValue::from_bytes(&value) else { continue };
            request.headers_mut().append(name, value);
            credentials.push(credential.clone());
        }
        let headers = request.headers().clone();
        let response = service.call(request).now_or_never().unwrap().unwrap();
        let status = response.status();
        prop_assert!(status == StatusCode::OK || status == StatusCode::UNAUTHORIZED);
        if status == StatusCode::OK {
            // Never a key that was not presented, in an accepted form, as a whole.
            let http_body_util::Either::Left(index) = response.into_body() else {
                panic!("a 200 from the layer itself");
            };
            let key = keys[index].as_bytes();
            let presented_as = |value: &HeaderValue, scheme: &[u8]| {
                let value = value.as_bytes();
                value.len() == scheme.len() + key.len()
                    && value[..scheme.len()].eq_ignore_ascii_case(scheme)
                    && &value[scheme.len()..] == key
            };
            let presented = headers.get_all("x-api-key").iter().any(|v| presented_as(v, b""))
                || headers
                    .get_all("authorization")
                    .iter()
                    .any(|v| presented_as(v, b"bearer ") || presented_as(v, b"api-key "));
            prop_assert!(presented, "accepted a key that was not presented: {:?}", credentials);
        }
        // Without raw values the oracle is exact: one credential, and it is in the store.
        if credentials.iter().all(|c| !matches!(c, Presented::Raw(_))) {
            let expected = match credentials.as_slice() {
                [Presented::Bearer(key) | Presented::ApiKey(key) | Presented::Header(key)] => {
                    keys.contains(key)
                }
                _ => false,
            };
            prop_assert_eq!(status == StatusCode::OK, expected, "{:?}", credentials);
        }
    }
}
