//! What the fuzz targets share: their text input formats (so that seeds are written by hand and
//! findings read as they are), the checks on what errors print, and the token targets' fetch.
//!
//! Every target reads lines of `name: value` headers the way HTTP writes them. Control bytes
//! cannot appear in a header value nor in a JSON string, so the formats use a few of them as
//! macros without losing any input a target could otherwise express.

use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use tower_api_auth::token::TokenErrorKind;
use tower_api_auth::{TokenCredential, TokenError};

/// `input` split at its first empty line: the head (its lines) and the rest.
pub fn split_head(input: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let (head, rest) = match input.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&input[..at], &input[at + 2..]),
        None => (input, &b""[..]),
    };
    (lines(head), rest)
}

/// The lines of `text`, a trailing `\r` removed from each.
pub fn lines(text: &[u8]) -> Vec<&[u8]> {
    text.split(|b| *b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .collect()
}

/// A `name: value` line: the name up to the first colon, the value after it without one
/// leading space. `None` when there is no colon.
pub fn header_line(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = line.iter().position(|b| *b == b':')?;
    let value = &line[colon + 1..];
    Some((&line[..colon], value.strip_prefix(b" ").unwrap_or(value)))
}

/// A `name: value` line as a header, if both are valid.
pub fn header(line: &[u8]) -> Option<(HeaderName, HeaderValue)> {
    let (name, value) = header_line(line)?;
    Some((
        HeaderName::from_bytes(name).ok()?,
        HeaderValue::from_bytes(value).ok()?,
    ))
}

/// The words of a line, split at spaces.
pub fn words(line: &[u8]) -> impl Iterator<Item = &str> {
    line.split(|b| *b == b' ')
        .filter_map(|word| std::str::from_utf8(word).ok())
        .filter(|word| !word.is_empty())
}

/// The first line of a token endpoint's answer: `<status> [json]`, the status clamped to
/// 100..=999 (default 200).
pub fn status_line(line: &[u8]) -> (http::StatusCode, bool) {
    let mut words = words(line);
    let status = words
        .next()
        .and_then(|word| word.parse::<u16>().ok())
        .and_then(|code| http::StatusCode::from_u16(code).ok())
        .unwrap_or(http::StatusCode::OK);
    let json = words.any(|word| word.eq_ignore_ascii_case("json"));
    (status, json)
}

/// A token endpoint's answer body with its macros expanded:
///
/// - `\x01 bytes \x02`: the bytes base64url-encoded without padding (a JWT's claims), up to the
///   end when there is no `\x02`;
/// - `\x03`: `secret`, as a careless endpoint might echo it;
/// - `\x04`: 64 KiB of spaces, past the size a token answer may have.
pub fn expand_answer(body: &[u8], secret: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        match b {
            0x01 => {
                let end = rest.iter().position(|b| *b == 0x02).unwrap_or(rest.len());
                out.extend_from_slice(URL_SAFE_NO_PAD.encode(&rest[..end]).as_bytes());
                rest = rest.get(end + 1..).unwrap_or_default();
            }
            0x03 => out.extend_from_slice(secret.as_bytes()),
            0x04 => out.resize(out.len() + 64 * 1024, b' '),
            _ => out.push(b),
        }
    }
    out
}

/// Whether a body that is not valid JSON could still be read by a derived `Deserialize`:
/// `serde_json` skips unknown fields without checking that their strings are UTF-8.
pub fn lenient_json(body: &[u8]) -> bool {
    std::str::from_utf8(body).is_err()
}

/// `text` with every ASCII letter and digit replaced by the next one (`z` by `a`, `9` by `0`):
/// a token that is as valid or invalid as `text`, at the same places, and differs from it
/// wherever it can. An error about the one that reads differently from the same error about
/// the other depends on more than where and what kind the fault is.
pub fn disguise(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'z' => 'a',
            'Z' => 'A',
            '9' => '0',
            c if c.is_ascii_alphanumeric() => (c as u8 + 1) as char,
            c => c,
        })
        .collect()
}

/// A valid `Authorization: Bearer` token: 1 or more bytes of visible ASCII.
pub fn is_header_token(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| (b'!'..=b'~').contains(&b))
}

/// Everything an error prints: its `Display` and `Debug`, and those of its sources.
pub fn printed(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = format!("{error}\n{error:?}");
    let mut source = error.source();
    while let Some(err) = source {
        text.push_str(&format!("\n{err}\n{err:?}"));
        source = err.source();
    }
    text
}

/// Whether `body` carried `needle`, as bytes or inside a JSON string or key.
pub fn answer_contains(body: &[u8], needle: &str) -> bool {
    fn in_strings(value: &serde_json::Value, needle: &str) -> bool {
        match value {
            serde_json::Value::String(text) => text.contains(needle),
            serde_json::Value::Array(items) => items.iter().any(|v| in_strings(v, needle)),
            serde_json::Value::Object(map) => map
                .iter()
                .any(|(k, v)| k.contains(needle) || in_strings(v, needle)),
            _ => false,
        }
    }
    body.windows(needle.len()).any(|w| w == needle.as_bytes())
        || serde_json::from_slice(body).is_ok_and(|value| in_strings(&value, needle))
}

/// `body` as a JSON value, if it is exactly one JSON document with no object that repeats a
/// key (where `serde_json::Value` keeps the last, a derived `Deserialize` refuses the document:
/// the models do not guess).
pub fn strict_json(body: &[u8]) -> Option<serde_json::Value> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let NoRepeats(value) = NoRepeats::deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(value)
}

struct NoRepeats(serde_json::Value);

impl<'de> Deserialize<'de> for NoRepeats {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(NoRepeatsVisitor)
            .map(NoRepeats)
    }
}

struct NoRepeatsVisitor;

impl<'de> Visitor<'de> for NoRepeatsVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(NoRepeats(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(items.into())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = HashSet::new();
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom("a repeated key"));
            }
            let NoRepeats(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(object.into())
    }
}

/// The `exp` claim of a JWT, in seconds since the epoch, read as RFC 7519 says.
pub fn jwt_exp(token: &str) -> Option<u64> {
    let mut parts = token.split('.');
    let (_, payload) = (parts.next()?, parts.next()?);
    let claims = strict_json(&URL_SAFE_NO_PAD.decode(payload).ok()?)?;
    claims.get("exp")?.as_u64()
}

/// `YYYY-MM-DDTHH:MM:SSZ` as seconds since the epoch; `None` for anything else.
pub fn rfc3339_utc(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let shape = b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return None;
    }
    let n = |range: std::ops::Range<usize>| text[range].parse::<i64>().ok();
    let (year, month, day) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hour, minute, second) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month[month as usize - 1]).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid || year < 1970 {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second).ok()
}

/// A hundred years: an expiry further away than this is not judged (it may be taken as
/// unknown).
pub const FAR: u64 = 100 * 365 * 86_400;

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// The token endpoint's answer: `status` and `body`, declared JSON when `json`.
pub fn answer(status: StatusCode, json: bool, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    if json {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    response
}

/// What one fetch gave.
pub struct Fetched {
    /// The generation fetched, or why not.
    pub result: Result<u64, TokenError>,
    /// The cached token's time left, when its expiry is known.
    pub expires_in: Option<Duration>,
    /// The cached token's generation.
    pub generation: Option<u64>,
}

/// Fetches once on a current-thread runtime of its own, dropped (with the refresh task it may
/// hold) before this returns.
pub fn fetch_once(tokens: &TokenCredential) -> Fetched {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let result = runtime.block_on(tokens.fetch());
    Fetched {
        result,
        expires_in: tokens.expires_in(),
        generation: tokens.generation(),
    }
}

/// What the model of a token endpoint expects of one answer: the token and its announced expiry
/// (epoch seconds), or a refusal (`true`: an invalid token, the error kind `InvalidToken`).
pub type Verdict = Result<(String, Option<u64>), bool>;

/// Checks one fetch of a token target against the model's verdict (`None`: the model has no
/// opinion). A token is generation 1, with the announced expiry when it is plausible; a refusal
/// is a `Fetch` or `InvalidToken` error printing no `secret` (unless the answer `body` echoed
/// it) and reading the same as `disguised` gives: the error of the same answer with another
/// token, as invalid at the same place (`None` where the answer has no token to replace).
pub fn check_fetch(
    fetched: Fetched,
    expected: Option<Verdict>,
    body: &[u8],
    secret: &str,
    disguised: impl FnOnce() -> Option<TokenError>,
) {
    let Fetched {
        result,
        expires_in,
        generation: cached,
    } = fetched;
    match result {
        Ok(generation) => {
            assert_eq!(generation, 1);
            assert_eq!(cached, Some(1));
            let Some(expected) = expected else { return };
            let Ok((_, expires_at)) = expected else {
                panic!("a token, where the model expects {expected:?}");
            };
            let now = now_secs();
            match expires_at {
                Some(at) if at > now + 2 && at < now + FAR => {
                    let left = expires_in.expect("a known expiry");
                    assert!(left <= Duration::from_secs(at - now + 1), "{left:?}");
                }
                Some(at) if at.saturating_add(1) < now => assert_eq!(expires_in, None),
                _ => {}
            }
        }
        Err(error) => {
            assert_eq!(cached, None);
            let kind = error.kind();
            assert!(
                matches!(kind, TokenErrorKind::Fetch | TokenErrorKind::InvalidToken),
                "{error:?}"
            );
            let text = printed(&error);
            assert!(
                !text.contains(secret) || answer_contains(body, secret),
                "the secret leaked: {text}"
            );
            match expected {
                Some(Ok((token, _))) => panic!("the valid token {token:?} was refused: {text}"),
                Some(Err(invalid_token)) => {
                    assert_eq!(
                        invalid_token,
                        kind == TokenErrorKind::InvalidToken,
                        "{text}"
                    );
                }
                None => {}
            }
            // The error says where and what kind the fault is, never what the token is.
            if kind == TokenErrorKind::InvalidToken
                && let Some(other) = disguised()
            {
                assert_eq!(text, printed(&other), "the refused token leaked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_utc("2033-05-18T03:33:20Z"), Some(2_000_000_000));
        assert_eq!(rfc3339_utc("2024-02-29T00:00:00Z"), Some(1_709_164_800));
        assert_eq!(rfc3339_utc("2023-02-29T00:00:00Z"), None);
    }

    #[test]
    fn repeated_keys_are_not_judged() {
        assert!(strict_json(br#"{"a":1,"b":{"c":2}}"#).is_some());
        assert!(strict_json(br#"{"a":1,"a":2}"#).is_none());
        assert!(strict_json(br#"{"b":{"c":1,"c":2}}"#).is_none());
        assert!(strict_json(br#"{"a":1} x"#).is_none());
    }

    #[test]
    fn a_disguised_token_differs_where_it_can() {
        assert_eq!(disguise("az-AZ 09\u{e9}"), "ba-BA 10\u{e9}");
    }

    #[test]
    fn macros_expand() {
        assert_eq!(
            expand_answer(b"a\x01{\"exp\":1}\x02b\x03", "s"),
            b"aeyJleHAiOjF9bs".to_vec()
        );
    }
}
