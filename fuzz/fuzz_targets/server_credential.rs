//! Arbitrary header maps through `ValidateCredentialLayer` (Bearer, Api-Key and `x-api-key`
//! accepted, `read` scope required) over a store of keys in every state.
//!
//! Checks, against a model of the rules in `src/server/mod.rs` written here independently:
//! nothing panics; a request reaches the inner service exactly when it presents one
//! well-formed credential that is an active stored key with the scope, and with that key's
//! principal; every refusal is the documented one for the request (status, JSON error, Akool
//! code, gRPC status, `WWW-Authenticate`).

#![no_main]

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::executor::block_on;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Either};
use libfuzzer_sys::fuzz_target;
use tower::{BoxError, Layer, ServiceExt};
use tower_api_auth::providers::akool;
use tower_api_auth::server::{
    KeyDigest, KeyRecord, KeyStore, MAX_CREDENTIAL_LEN, MemoryKeyStore, Principal, Rejection,
    RejectionResponse,
};
use tower_api_auth::{Placement, ValidateCredentialLayer};

/// The fixed time of the layer's clock, in seconds since the epoch.
const NOW: u64 = 1_900_000_000;

/// What the store says about a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stored {
    /// Active, with the `read` scope the layer requires: let through as this principal.
    Reader(&'static str),
    /// Active, without the `read` scope: 403.
    NoScope,
    Revoked,
    /// Its expiry is `NOW`: refused from that instant on.
    Expired,
    /// The store fails to look it up: 503.
    Broken,
    /// Not in the store.
    Absent,
}

/// The keys the fuzzer can name with `\x01` and an index (see [`parse`]).
fn keys() -> &'static [(Vec<u8>, Stored)] {
    static KEYS: OnceLock<Vec<(Vec<u8>, Stored)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        vec![
            (b"key-reader".to_vec(), Stored::Reader("reader")),
            (b"key-noscope".to_vec(), Stored::NoScope),
            (b"key-revoked".to_vec(), Stored::Revoked),
            (b"key-expired".to_vec(), Stored::Expired),
            (b"key-later".to_vec(), Stored::Reader("later")),
            (b"key-broken".to_vec(), Stored::Broken),
            (b"k".to_vec(), Stored::Reader("short")),
            (vec![b'L'; MAX_CREDENTIAL_LEN], Stored::Reader("longest")),
            // Stored, but never presentable: too long, a space, not ASCII.
            (
                vec![b'L'; MAX_CREDENTIAL_LEN + 1],
                Stored::Reader("too-long"),
            ),
            (b"key with space".to_vec(), Stored::Reader("spaced")),
            ("cl\u{e9}".as_bytes().to_vec(), Stored::Reader("accented")),
            (b"KEY-READER".to_vec(), Stored::Absent),
            (b"key-unknown".to_vec(), Stored::Absent),
            (b"Bearer".to_vec(), Stored::Reader("scheme-like")),
        ]
    })
}

/// A key store that fails for `key-broken` and asks a `MemoryKeyStore` otherwise.
struct Store {
    keys: MemoryKeyStore,
    broken: KeyDigest,
}

impl KeyStore for Store {
    type Lookup = Ready<Result<Option<KeyRecord>, BoxError>>;

    fn lookup(&self, digest: &KeyDigest) -> Self::Lookup {
        if *digest == self.broken {
            return ready(Err("the store is down".into()));
        }
        self.keys.lookup(digest)
    }
}

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// One layer per rejection style, built once.
fn layers() -> &'static [(Style, ValidateCredentialLayer<Store>); 3] {
    static LAYERS: OnceLock<[(Style, ValidateCredentialLayer<Store>); 3]> = OnceLock::new();
    LAYERS.get_or_init(|| {
        let memory = MemoryKeyStore::new();
        for (key, stored) in keys() {
            let key = String::from_utf8(key.clone()).expect("UTF-8 keys");
            let record = match stored {
                Stored::Reader(id) => KeyRecord::new(Principal::new(*id).with_scopes(["read"])),
                Stored::NoScope => KeyRecord::new(Principal::new("noscope")),
                Stored::Revoked => {
                    KeyRecord::new(Principal::new("revoked").with_scopes(["read"])).revoked()
                }
                Stored::Expired => KeyRecord::new(Principal::new("expired").with_scopes(["read"]))
                    .with_expiry(at(NOW)),
                Stored::Broken | Stored::Absent => continue,
            };
            let record = match *stored {
                Stored::Reader("later") => record.with_expiry(at(NOW + 1)),
                _ => record,
            };
            memory.insert(key, record);
        }
        let layer = |style: Style| {
            let store = Store {
                keys: memory.clone(),
                broken: KeyDigest::of("key-broken"),
            };
            let respond = match style {
                Style::Json => RejectionResponse::json(),
                Style::Akool => akool::rejection_response(),
                Style::Grpc => RejectionResponse::grpc(),
            };
            let layer = ValidateCredentialLayer::new(Placement::bearer(), store)
                .accept(Placement::api_key())
                .accept(Placement::header("x-api-key").expect("a valid header name"))
                .require_scopes(["read"])
                .reject_with(respond)
                .clock(|| at(NOW));
            (style, layer)
        };
        [layer(Style::Json), layer(Style::Akool), layer(Style::Grpc)]
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Json,
    Akool,
    Grpc,
}

/// The request's headers: `name: value` lines after a first line naming the rejection style
/// (`json`, `akool` or `grpc`). In a value, `\x01` and the byte after it stand for
/// `keys()[byte % len]` (a control byte cannot be in a header value, so nothing is lost).
fn parse(input: &[u8]) -> (Style, HeaderMap) {
    let lines = tower_api_auth_fuzz::lines(input);
    let style = match lines.first().map(|line| line.trim_ascii()) {
        Some(b"akool") => Style::Akool,
        Some(b"grpc") => Style::Grpc,
        _ => Style::Json,
    };
    let mut headers = HeaderMap::new();
    for line in lines.iter().skip(1) {
        let Some((name, value)) = tower_api_auth_fuzz::header_line(line) else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name),
            HeaderValue::from_bytes(&expand_keys(value)),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    (style, headers)
}

fn expand_keys(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        match (value[i], value.get(i + 1)) {
            (0x01, Some(key)) => {
                out.extend_from_slice(&keys()[*key as usize % keys().len()].0);
                i += 2;
            }
            (0x01, None) => i += 1,
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What follows an accepted scheme (`Bearer`, `Api-Key`, any case) at the start of an
/// `Authorization` value, or `None` for another scheme.
fn after_accepted_scheme(value: &[u8]) -> Option<&[u8]> {
    let end = value
        .iter()
        .position(|b| !is_tchar(*b))
        .unwrap_or(value.len());
    let (scheme, rest) = value.split_at(end);
    let accepted =
        scheme.eq_ignore_ascii_case(b"bearer") || scheme.eq_ignore_ascii_case(b"api-key");
    accepted.then_some(rest)
}

/// The model: the principal id a request is let through as, or why it is refused, from the
/// rules as the server module documents them.
fn expected(headers: &HeaderMap) -> Result<&'static str, Rejection> {
    let keys_: Vec<&[u8]> = headers
        .get_all("x-api-key")
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    let authorizations: Vec<&[u8]> = headers
        .get_all(AUTHORIZATION)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    // An `Authorization` with another scheme is not a credential (it may be meant for
    // someone else).
    let schemed: Vec<&[u8]> = authorizations
        .iter()
        .filter_map(|v| after_accepted_scheme(v))
        .collect();
    let presented = keys_.len() + schemed.len();
    if presented == 0 {
        return Err(Rejection::Missing);
    }
    // A repeated header, or two credentials, whatever they say.
    let repeated = keys_.len() > 1 || (!schemed.is_empty() && authorizations.len() > 1);
    if repeated || presented > 1 {
        return Err(Rejection::Malformed);
    }
    let credential = match (keys_.first(), schemed.first()) {
        (Some(key), _) => *key,
        (None, Some(rest)) => rest.strip_prefix(b" ").ok_or(Rejection::Malformed)?,
        (None, None) => unreachable!("one credential is presented"),
    };
    let well_formed = (1..=MAX_CREDENTIAL_LEN).contains(&credential.len())
        && credential.iter().all(|b| (b'!'..=b'~').contains(b));
    if !well_formed {
        return Err(Rejection::Malformed);
    }
    let stored = keys()
        .iter()
        .find(|(key, _)| key == credential)
        .map_or(Stored::Absent, |(_, stored)| *stored);
    match stored {
        Stored::Reader(id) => Ok(id),
        Stored::NoScope => Err(Rejection::Forbidden),
        Stored::Revoked => Err(Rejection::Revoked),
        Stored::Expired => Err(Rejection::Expired),
        Stored::Broken => Err(Rejection::Unavailable),
        Stored::Absent => Err(Rejection::Unknown),
    }
}

/// The weakest promise, checked apart from the model: a request let through presented a stored
/// active key, exactly, in an accepted place.
fn presents_active_key(headers: &HeaderMap) -> bool {
    let active = |credential: &[u8]| {
        keys()
            .iter()
            .any(|(key, stored)| key == credential && matches!(stored, Stored::Reader(_)))
    };
    let by_key = headers
        .get_all("x-api-key")
        .iter()
        .any(|v| active(v.as_bytes()));
    let by_scheme = headers.get_all(AUTHORIZATION).iter().any(|v| {
        after_accepted_scheme(v.as_bytes())
            .and_then(|rest| rest.strip_prefix(b" "))
            .is_some_and(active)
    });
    by_key || by_scheme
}

fn inner(request: Request<()>) -> Ready<Result<Response<String>, Infallible>> {
    let principal = request
        .extensions()
        .get::<Principal>()
        .expect("an admitted request carries its principal");
    ready(Ok(Response::new(principal.id().to_owned())))
}

fuzz_target!(|input: &[u8]| {
    let (style, headers) = parse(input);
    let mut request = Request::new(());
    *request.headers_mut() = headers.clone();
    let want = expected(&headers);

    let (style, layer) = &layers()[style as usize];
    let service = layer.layer(tower::service_fn(inner));
    let response = block_on(service.oneshot(request)).expect("the inner service is infallible");
    let (head, body) = response.into_parts();
    match body {
        Either::Left(principal) => {
            assert!(presents_active_key(&headers), "let through: {headers:?}");
            assert_eq!(Ok(principal.as_str()), want, "let through: {headers:?}");
            assert_eq!(head.status, StatusCode::OK);
        }
        Either::Right(body) => {
            let body: Bytes = block_on(body.collect()).expect("Full").to_bytes();
            let Err(rejection) = want else {
                panic!("refused, expected {want:?}: {headers:?}: {body:?}");
            };
            check_refusal(*style, rejection, &head, &body, &headers);
        }
    }
});

/// A refusal is the documented answer to `rejection` in `style`.
fn check_refusal(
    style: Style,
    rejection: Rejection,
    head: &http::response::Parts,
    body: &[u8],
    headers: &HeaderMap,
) {
    let context = || format!("expected {rejection:?} for {headers:?}");
    match style {
        Style::Json => {
            assert_eq!(head.status, rejection.status(), "{}", context());
            assert!(
                [401, 403, 503].contains(&head.status.as_u16()),
                "{}",
                context()
            );
            assert_eq!(head.headers[CONTENT_TYPE], "application/json");
            let json: serde_json::Value = serde_json::from_slice(body).expect("a JSON body");
            assert_eq!(json["error"], rejection.error_code(), "{}", context());
            assert_eq!(json["message"], rejection.public_message(), "{}", context());
            let challenge = head.headers.get(http::header::WWW_AUTHENTICATE);
            assert_eq!(
                challenge.is_some(),
                head.status == StatusCode::UNAUTHORIZED,
                "{}",
                context()
            );
        }
        Style::Akool => {
            assert_eq!(head.status, StatusCode::OK, "{}", context());
            let json: serde_json::Value = serde_json::from_slice(body).expect("a JSON body");
            assert_eq!(
                json["code"],
                akool::refusal_code(rejection),
                "{}",
                context()
            );
        }
        Style::Grpc => {
            assert_eq!(head.status, StatusCode::OK, "{}", context());
            let code = match rejection.status().as_u16() {
                403 => "7",
                503 => "14",
                _ => "16",
            };
            assert_eq!(head.headers["grpc-status"], code, "{}", context());
            assert!(body.is_empty());
        }
    }
}
