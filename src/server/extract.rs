//! Finding the one credential a request presents.
//!
//! The rules, for each accepted [`Placement`]:
//!
//! - A header of its own (`X-API-Key`): its whole value is the credential.
//! - `Authorization: <Scheme> <credential>`: the scheme is matched case-insensitively (RFC 9110:
//!   `bearer` is `Bearer`), followed by exactly one space; an `Authorization` header with a scheme
//!   that is not accepted is not a credential (it may be meant for someone else).
//! - The credential itself is compared exactly. It must be 1 to [`MAX_CREDENTIAL_LEN`] bytes of
//!   visible ASCII: no space, tab or control character, nothing outside ASCII.
//! - The header must appear once, and the request must present one credential: a repeated
//!   header, or two credentials (`X-API-Key` and `Authorization` both), is malformed, even if
//!   the values agree: there is no telling which one the client meant.

use http::{HeaderMap, HeaderName};

use super::Rejection;
use crate::Placement;

/// The longest credential accepted, in bytes. Longer ones are malformed.
pub const MAX_CREDENTIAL_LEN: usize = 4096;

/// The credential `headers` present in one of `placements`.
pub(crate) fn credential<'h>(
    placements: &[Placement],
    headers: &'h HeaderMap,
) -> Result<&'h [u8], Rejection> {
    let mut found = None;
    for placement in placements {
        let values = headers.get_all(placement.header_name());
        let mut iter = values.iter();
        let Some(first) = iter.next() else { continue };
        let repeated = iter.next().is_some();
        let credential = match placement.scheme() {
            None => first.as_bytes(),
            // Every value is searched: an `Authorization` with another scheme must not hide one
            // with this scheme behind it (tests/it/fuzz_regressions.rs).
            Some(scheme) => match values
                .iter()
                .find_map(|value| strip_scheme(value.as_bytes(), scheme))
            {
                Some(rest) => rest.strip_prefix(b" ").ok_or(Rejection::Malformed)?,
                None => continue,
            },
        };
        if repeated || found.is_some() || !is_well_formed(credential) {
            return Err(Rejection::Malformed);
        }
        found = Some(credential);
    }
    found.ok_or(Rejection::Missing)
}

/// Marks every value of the headers `placements` read sensitive, so that what runs after the
/// layer (a `TraceLayer` recording headers, say) shows the credential as `Sensitive`.
///
/// Never allocates: `HeaderMap::entry` would make room for an insertion first, and grow a full
/// map on the request path. A header's first value is reached by name; the others, in the rare
/// request that repeats a header, by a pass over all values.
pub(crate) fn mark_sensitive(placements: &[Placement], headers: &mut HeaderMap) {
    for placement in placements {
        if let Some(value) = headers.get_mut(placement.header_name()) {
            value.set_sensitive(true);
        }
    }
    if headers.len() > headers.keys_len() {
        let read = |name: &HeaderName| placements.iter().any(|p| p.header_name() == name);
        headers
            .iter_mut()
            .filter(|(name, _)| read(name))
            .for_each(|(_, value)| value.set_sensitive(true));
    }
}

/// What follows `scheme` in `value`, if `value` starts with that scheme as a whole token.
fn strip_scheme<'v>(value: &'v [u8], scheme: &str) -> Option<&'v [u8]> {
    let end = value
        .iter()
        .position(|b| !is_tchar(*b))
        .unwrap_or(value.len());
    let (token, rest) = value.split_at(end);
    token
        .eq_ignore_ascii_case(scheme.as_bytes())
        .then_some(rest)
}

fn is_well_formed(credential: &[u8]) -> bool {
    !credential.is_empty()
        && credential.len() <= MAX_CREDENTIAL_LEN
        && credential.iter().all(|b| matches!(b, b'!'..=b'~'))
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use http::header::AUTHORIZATION;

    use super::*;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn every_header_variant_gets_its_documented_answer() {
        let accepted = [
            Placement::bearer(),
            Placement::api_key(),
            Placement::header("x-api-key").unwrap(),
        ];
        let long = format!("Bearer {}", "k".repeat(MAX_CREDENTIAL_LEN + 1));
        let longest = format!("Bearer {}", "k".repeat(MAX_CREDENTIAL_LEN));
        type Headers<'a> = &'a [(&'a str, &'a [u8])];
        let cases: &[(Headers<'_>, Result<&[u8], Rejection>)] = &[
            (&[("authorization", b"Bearer abc")], Ok(b"abc")),
            (&[("authorization", b"bearer abc")], Ok(b"abc")),
            (&[("authorization", b"BEARER abc")], Ok(b"abc")),
            (&[("authorization", b"Api-Key abc")], Ok(b"abc")),
            (&[("authorization", b"api-key abc")], Ok(b"abc")),
            (&[("x-api-key", b"abc")], Ok(b"abc")),
            (
                &[("authorization", longest.as_bytes())],
                Ok(&longest.as_bytes()[7..]),
            ),
            // The credential is exact: its case is kept.
            (&[("authorization", b"Bearer AbC")], Ok(b"AbC")),
            (&[], Err(Rejection::Missing)),
            (&[("authorization", b"Basic abc")], Err(Rejection::Missing)),
            (&[("authorization", b"Bearerabc")], Err(Rejection::Missing)),
            (&[("authorization", b"Bearer")], Err(Rejection::Malformed)),
            (&[("authorization", b"Bearer ")], Err(Rejection::Malformed)),
            (
                &[("authorization", b"Bearer  abc")],
                Err(Rejection::Malformed),
            ),
            (
                &[("authorization", b"Bearer\tabc")],
                Err(Rejection::Malformed),
            ),
            (
                &[("authorization", b"Bearer abc def")],
                Err(Rejection::Malformed),
            ),
            (
                &[("authorization", b"Bearer abc\t")],
                Err(Rejection::Malformed),
            ),
            (
                &[("authorization", b"Bearer k\xc3\xa9y")],
                Err(Rejection::Malformed),
            ),
            (
                &[("authorization", long.as_bytes())],
                Err(Rejection::Malformed),
            ),
            (&[("x-api-key", b"")], Err(Rejection::Malformed)),
            (&[("x-api-key", b"a b")], Err(Rejection::Malformed)),
            (
                &[
                    ("authorization", b"Bearer abc"),
                    ("authorization", b"Bearer abc"),
                ],
                Err(Rejection::Malformed),
            ),
            (
                &[("x-api-key", b"abc"), ("x-api-key", b"def")],
                Err(Rejection::Malformed),
            ),
            (
                &[("x-api-key", b"abc"), ("authorization", b"Bearer def")],
                Err(Rejection::Malformed),
            ),
            (
                &[("x-api-key", b"abc"), ("authorization", b"Bearer abc")],
                Err(Rejection::Malformed),
            ),
            // A scheme that is not accepted does not count as a second credential.
            (
                &[("x-api-key", b"abc"), ("authorization", b"Basic def")],
                Ok(b"abc"),
            ),
        ];
        for (pairs, expected) in cases {
            let map = headers(pairs);
            assert_eq!(&credential(&accepted, &map), expected, "{pairs:?}");
        }
    }

    #[test]
    fn only_accepted_places_are_read() {
        let bearer_only = [Placement::bearer()];
        let map = headers(&[("x-api-key", b"abc")]);
        assert_eq!(credential(&bearer_only, &map), Err(Rejection::Missing));
        let map = headers(&[("authorization", b"Api-Key abc")]);
        assert_eq!(credential(&bearer_only, &map), Err(Rejection::Missing));
        let map = headers(&[(AUTHORIZATION.as_str(), b"Bearer abc")]);
        assert_eq!(credential(&bearer_only, &map), Ok(&b"abc"[..]));
    }

    #[test]
    fn every_value_of_a_credential_header_is_marked_sensitive() {
        let mut map = headers(&[
            ("authorization", b"Basic dXNlcjpwYXNz"),
            ("authorization", b"Bearer key-1"),
            ("x-api-key", b"key-2"),
            ("accept", b"application/json"),
        ]);
        let placements = [Placement::bearer(), Placement::header("x-api-key").unwrap()];
        mark_sensitive(&placements, &mut map);
        for name in ["authorization", "x-api-key"] {
            assert!(
                map.get_all(name).iter().all(HeaderValue::is_sensitive),
                "{name}"
            );
        }
        assert!(!map["accept"].is_sensitive());
    }

    #[test]
    fn marking_never_grows_a_full_map() {
        let mut map = HeaderMap::new();
        map.insert(AUTHORIZATION, HeaderValue::from_static("Bearer key-1"));
        let mut index = 0;
        while map.len() < map.capacity() {
            let name = http::HeaderName::try_from(format!("x-filler-{index}")).unwrap();
            map.insert(name, HeaderValue::from_static("1"));
            index += 1;
        }
        let capacity = map.capacity();
        mark_sensitive(&[Placement::bearer()], &mut map);
        assert_eq!(map.capacity(), capacity);
        assert!(map[AUTHORIZATION].is_sensitive());
    }
}
