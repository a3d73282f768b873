use bytes::{BufMut, BytesMut};
use http::HeaderValue;
use http::header::{AUTHORIZATION, HeaderName};

use super::CredentialError;
use crate::Secret;

/// Where and how a secret goes into a request: a header of its own (`X-API-Key: <secret>`), or
/// `Authorization: <Scheme> <secret>`.
///
/// ```
/// use tower_api_auth::Placement;
///
/// let bearer = Placement::bearer();
/// assert_eq!(bearer.header_name(), "authorization");
/// assert_eq!(bearer.scheme(), Some("Bearer"));
///
/// let value = bearer.header_value(&"abc".into())?;
/// assert_eq!(value, "Bearer abc");
/// assert!(value.is_sensitive());
///
/// let custom = Placement::header("X-API-Key")?;
/// assert_eq!(custom.header_value(&"abc".into())?, "abc");
///
/// assert!(Placement::header("not a header").is_err());
/// # Ok::<(), tower_api_auth::CredentialError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    header: HeaderName,
    scheme: Option<Box<str>>,
}

impl Placement {
    /// `Authorization: Bearer <secret>` (RFC 6750).
    pub fn bearer() -> Self {
        Self::authorization_scheme("Bearer")
    }

    /// `Authorization: Api-Key <secret>`, as Erathos (and Django REST framework's API-key
    /// package) expects.
    pub fn api_key() -> Self {
        Self::authorization_scheme("Api-Key")
    }

    /// `Authorization: <scheme> <secret>`, for any scheme that is an RFC 9110 token.
    pub fn authorization(scheme: &str) -> Result<Self, CredentialError> {
        if scheme.is_empty() || !scheme.bytes().all(is_tchar) {
            return Err(CredentialError::InvalidScheme);
        }
        Ok(Self::authorization_scheme(scheme))
    }

    /// `<name>: <secret>`, the secret alone in a header of its own (`X-API-Key`, `x-api-key`).
    pub fn header<N>(name: N) -> Result<Self, CredentialError>
    where
        N: TryInto<HeaderName>,
    {
        let header = name
            .try_into()
            .map_err(|_| CredentialError::InvalidHeaderName)?;
        Ok(Self {
            header,
            scheme: None,
        })
    }

    fn authorization_scheme(scheme: &str) -> Self {
        Self {
            header: AUTHORIZATION,
            scheme: Some(scheme.into()),
        }
    }

    /// The header the secret goes into.
    pub fn header_name(&self) -> &HeaderName {
        &self.header
    }

    /// The `Authorization` scheme, if the secret goes behind one.
    pub fn scheme(&self) -> Option<&str> {
        self.scheme.as_deref()
    }

    /// Builds the header value for `secret`, marked sensitive so that HTTP/2 never indexes it
    /// and `Debug` of the header map does not print it.
    ///
    /// The secret must be visible ASCII (`!` to `~`): an empty secret, whitespace, control
    /// characters (CR/LF above all) and non-ASCII bytes are refused with a typed error that
    /// says where the problem is, never what the secret is.
    pub fn header_value(&self, secret: &Secret) -> Result<HeaderValue, CredentialError> {
        let secret = secret.expose().as_bytes();
        check_secret(secret)?;
        let mut buf = match &self.scheme {
            Some(scheme) => {
                let mut buf = BytesMut::with_capacity(scheme.len() + 1 + secret.len());
                buf.put_slice(scheme.as_bytes());
                buf.put_u8(b' ');
                buf
            }
            None => BytesMut::with_capacity(secret.len()),
        };
        buf.put_slice(secret);
        let mut value = HeaderValue::from_maybe_shared(buf.freeze())
            .expect("visible ASCII is a valid header value");
        value.set_sensitive(true);
        Ok(value)
    }
}

/// Accepts visible ASCII only (RFC 9110 `VCHAR`), the alphabet of API keys and of `token68`.
pub(crate) fn check_secret(secret: &[u8]) -> Result<(), CredentialError> {
    if secret.is_empty() {
        return Err(CredentialError::EmptySecret);
    }
    match secret.iter().position(|b| !matches!(b, b'!'..=b'~')) {
        None => Ok(()),
        Some(at) => Err(match secret[at] {
            b' ' | b'\t' => CredentialError::Whitespace { at },
            0x00..=0x1f | 0x7f => CredentialError::ControlCharacter { at },
            _ => CredentialError::NonVisibleAscii { at },
        }),
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_secrets_are_refused_with_where_not_what() {
        let cases: &[(&str, CredentialError)] = &[
            ("", CredentialError::EmptySecret),
            (" key", CredentialError::Whitespace { at: 0 }),
            ("key ", CredentialError::Whitespace { at: 3 }),
            ("ke y", CredentialError::Whitespace { at: 2 }),
            ("key\t", CredentialError::Whitespace { at: 3 }),
            (
                "key\r\nX-Evil: 1",
                CredentialError::ControlCharacter { at: 3 },
            ),
            ("key\n", CredentialError::ControlCharacter { at: 3 }),
            ("k\0ey", CredentialError::ControlCharacter { at: 1 }),
            ("key\x7f", CredentialError::ControlCharacter { at: 3 }),
            ("kéy", CredentialError::NonVisibleAscii { at: 1 }),
        ];
        for (secret, expected) in cases {
            for placement in [Placement::bearer(), Placement::header("x-api-key").unwrap()] {
                let err = placement.header_value(&Secret::new(*secret)).unwrap_err();
                assert_eq!(&err, expected, "{secret:?}");
            }
        }
    }

    #[test]
    fn bad_schemes_and_header_names_are_refused() {
        for scheme in ["", "Bear er", "Bearer:", "Bé", "a\nb"] {
            assert_eq!(
                Placement::authorization(scheme),
                Err(CredentialError::InvalidScheme),
                "{scheme:?}"
            );
        }
        for name in ["", "x api key", "x-api-key:", "x\napi", "ключ"] {
            assert_eq!(
                Placement::header(name),
                Err(CredentialError::InvalidHeaderName),
                "{name:?}"
            );
        }
    }

    #[test]
    fn every_visible_ascii_secret_round_trips_exactly() {
        let all: String = (b'!'..=b'~').map(char::from).collect();
        let value = Placement::authorization("Token")
            .unwrap()
            .header_value(&all.as_str().into())
            .unwrap();
        assert_eq!(value.as_bytes(), format!("Token {all}").as_bytes());
        assert!(value.is_sensitive());
    }
}
