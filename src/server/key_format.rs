//! Recognisable API keys: `<prefix>_<random>_<checksum>`, issued here and checked before any
//! hashing or lookup.
//!
//! ```
//! use tower_api_auth::server::KeyFormat;
//!
//! let format = KeyFormat::new("acme_live")?;
//! let key = format.issue();
//! assert!(key.expose().starts_with("acme_live_"));
//! assert!(format.check(key.expose()).is_ok());
//!
//! // One character changed: the checksum no longer matches.
//! let mut typo = key.expose().to_owned();
//! let last = typo.pop().unwrap();
//! typo.push(if last == 'A' { 'B' } else { 'A' });
//! assert!(format.check(&typo).is_err());
//! # Ok::<(), tower_api_auth::server::KeyFormatError>(())
//! ```
//!
//! The random part is [`RANDOM_LEN`] base62 characters drawn from the operating system's
//! generator (178 bits); the checksum is the CRC32 of `<prefix>_<random>`, in six base62
//! characters, as GitHub's tokens carry it. A secret scanner recognises the prefix and can
//! confirm the checksum without asking anyone; a server refuses a mistyped or guessed key
//! without hashing it or touching its store
//! ([`ValidateCredentialLayer::key_format`](crate::ValidateCredentialLayer::key_format)).

use std::fmt;

use rand::Rng;
use rand::distr::Alphanumeric;

use crate::Secret;

/// How many base62 characters of randomness a key carries (178 bits).
pub const RANDOM_LEN: usize = 30;

/// How many base62 characters the checksum takes (a CRC32 is below 62⁶).
const CHECKSUM_LEN: usize = 6;

/// The longest prefix accepted.
const MAX_PREFIX_LEN: usize = 32;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Issues and checks keys of the form `<prefix>_<random>_<checksum>`.
///
/// The random part is [`RANDOM_LEN`] base62 characters from the operating system's generator
/// (178 bits); the checksum is the CRC32 of `<prefix>_<random>` in six base62 characters, as
/// GitHub's tokens carry it. A secret scanner recognises the prefix and can confirm the
/// checksum offline; a server refuses a mistyped or guessed key without hashing it or asking
/// its store ([`ValidateCredentialLayer::key_format`](crate::ValidateCredentialLayer::key_format)).
///
/// ```
/// use tower_api_auth::server::KeyFormat;
///
/// let format = KeyFormat::new("acme_live")?;
/// let key = format.issue();
/// assert!(key.expose().starts_with("acme_live_"));
/// assert!(format.check(key.expose()).is_ok());
/// assert!(format.check("acme_live_guess").is_err());
/// # Ok::<(), tower_api_auth::server::KeyFormatError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct KeyFormat {
    prefix: Box<str>,
}

/// Why a prefix is refused, or why a key does not have the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFormatError {
    /// The prefix is empty, longer than 32 bytes, or holds something other than ASCII letters,
    /// digits and `_`, or starts or ends with `_`.
    #[error(
        "a key prefix is 1 to 32 ASCII letters, digits and inner underscores (`acme_live`, say)"
    )]
    Prefix,
    /// The key is not `<prefix>_<random>_<checksum>` with this format's prefix and lengths.
    #[error("the key does not have the expected format")]
    Shape,
    /// The key has the format, but its checksum does not match (a typo, or a guess).
    #[error("the key's checksum does not match")]
    Checksum,
}

impl KeyFormat {
    /// Keys starting with `prefix_` (`acme_live` gives `acme_live_…`).
    pub fn new(prefix: impl Into<Box<str>>) -> Result<Self, KeyFormatError> {
        let prefix = prefix.into();
        let valid = !prefix.is_empty()
            && prefix.len() <= MAX_PREFIX_LEN
            && !prefix.starts_with('_')
            && !prefix.ends_with('_')
            && prefix
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
        match valid {
            true => Ok(Self { prefix }),
            false => Err(KeyFormatError::Prefix),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// How long every key of this format is, in bytes.
    pub fn key_len(&self) -> usize {
        self.prefix.len() + 1 + RANDOM_LEN + 1 + CHECKSUM_LEN
    }

    /// A new key, from the operating system's random generator. It is shown once to whoever
    /// asked for it; a store keeps its [`KeyDigest`](super::KeyDigest) only.
    pub fn issue(&self) -> Secret {
        let mut key = String::with_capacity(self.key_len());
        key.push_str(&self.prefix);
        key.push('_');
        key.extend(
            rand::rng()
                .sample_iter(Alphanumeric)
                .take(RANDOM_LEN)
                .map(char::from),
        );
        let checksum = crc32fast::hash(key.as_bytes());
        key.push('_');
        key.push_str(&base62(checksum));
        Secret::new(key)
    }

    /// Whether `key` has this format and a matching checksum. Costs a length check, a byte scan
    /// and a CRC32: far less than a digest, and no lookup.
    pub fn check(&self, key: impl AsRef<[u8]>) -> Result<(), KeyFormatError> {
        let bytes = key.as_ref();
        if bytes.len() != self.key_len() {
            return Err(KeyFormatError::Shape);
        }
        let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        let (head, separator) = body.split_at(body.len() - 1);
        let (prefix, random) = head.split_at(self.prefix.len());
        let shape = prefix == self.prefix.as_bytes()
            && separator == b"_"
            && random[0] == b'_'
            && random[1..].iter().all(u8::is_ascii_alphanumeric)
            && checksum.iter().all(u8::is_ascii_alphanumeric);
        if !shape {
            return Err(KeyFormatError::Shape);
        }
        match base62(crc32fast::hash(head)).as_bytes() == checksum {
            true => Ok(()),
            false => Err(KeyFormatError::Checksum),
        }
    }

    /// The first characters of `key`'s random part after the prefix (`acme_live_Ab3d`), to show
    /// in listings: four characters, 24 of the 178 bits. `None` if `key` is not of this format.
    pub fn display_start(&self, key: &str) -> Option<String> {
        self.check(key).ok()?;
        key.get(..self.prefix.len() + 1 + 4).map(str::to_owned)
    }
}

/// `value` in six base62 characters, most significant first, zero-padded.
fn base62(mut value: u32) -> String {
    let mut digits = [b'0'; CHECKSUM_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    // Every byte comes from `BASE62`: ASCII.
    digits.iter().map(|&byte| char::from(byte)).collect()
}

impl fmt::Debug for KeyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFormat")
            .field("prefix", &self.prefix)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked_at_construction() {
        for bad in [
            "",
            "_acme",
            "acme_",
            "acme-live",
            "acme live",
            "ä",
            &"a".repeat(33),
        ] {
            assert_eq!(KeyFormat::new(bad), Err(KeyFormatError::Prefix), "{bad:?}");
        }
        assert!(KeyFormat::new("acme_live").is_ok());
        assert!(KeyFormat::new("a".repeat(32)).is_ok());
    }

    #[test]
    fn issued_keys_check_and_differ() {
        let format = KeyFormat::new("acme_live").unwrap();
        let a = format.issue();
        let b = format.issue();
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose().len(), format.key_len());
        assert_eq!(format.check(a.expose()), Ok(()));
        assert_eq!(
            format.display_start(a.expose()).unwrap(),
            a.expose()[..14].to_owned()
        );
        // Another format's keys are refused.
        let other = KeyFormat::new("acme_test").unwrap();
        assert_eq!(other.check(a.expose()), Err(KeyFormatError::Shape));
    }

    #[test]
    fn every_single_character_change_fails() {
        let format = KeyFormat::new("acme").unwrap();
        let key = format.issue();
        let key = key.expose();
        for at in 0..key.len() {
            for replacement in BASE62.iter().chain(b"_-") {
                let mut changed = key.as_bytes().to_vec();
                if changed[at] == *replacement {
                    continue;
                }
                changed[at] = *replacement;
                let changed = String::from_utf8(changed).unwrap();
                assert!(format.check(&changed).is_err(), "{at} {replacement}");
            }
        }
    }

    #[test]
    fn checksums_are_six_base62_digits() {
        assert_eq!(base62(0), "000000");
        assert_eq!(base62(61), "00000z");
        assert_eq!(base62(62), "000010");
        assert_eq!(base62(u32::MAX), "4gfFC3");
    }
}
