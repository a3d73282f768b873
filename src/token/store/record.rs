//! What a store keeps for one credential: the token, its expiry, its generation and the
//! fingerprint of the credentials it was fetched with, encoded with a checksum (or sealed).

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::{StoreError, StoreErrorKind};
use crate::{Secret, Token};

/// Identifies the credentials a token was fetched with, without revealing them: HMAC-SHA256
/// keyed by the secret over a description of the rest (provider, client id, token endpoint).
///
/// - A changed secret changes it (the key of the HMAC changed), so a token fetched with the old
///   secret is never found under the new one.
/// - It does not reveal the secret: finding the secret from it means guessing secrets one by
///   one and computing an HMAC for each, hopeless for the random client secrets and access keys
///   providers issue (a short, human-chosen secret could be guessed, as from any digest).
/// - Two credentials with the same secret but another client id or endpoint get two keys.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint([u8; 32]);

impl Fingerprint {
    const DOMAIN: &'static [u8] = b"tower-api-auth token-store fingerprint v1\0";

    pub(crate) fn new(identity: &str, secret: &Secret) -> Self {
        // HMAC accepts keys of any length: `new_from_slice` cannot fail for it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(Self::DOMAIN);
        mac.update(identity.as_bytes());
        Self(mac.finalize().into_bytes().into())
    }

    /// Lower-case hex: the file name or Redis key of the credential's record.
    pub(crate) fn hex(&self) -> String {
        hex(&self.0)
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({})", &self.hex()[..16])
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// A stored token (its `Debug` redacts the token, as [`Secret`]'s does).
#[derive(Clone, Debug)]
pub(crate) struct Record {
    /// Counts the tokens stored for this fingerprint: a rejection of generation `g` is answered
    /// by any record of a later generation, without a fetch.
    pub(crate) generation: u64,
    pub(crate) token: Secret,
    pub(crate) expires_at: Option<SystemTime>,
}

impl Record {
    pub(crate) fn token(&self) -> Token {
        let token = Token::new(self.token.clone());
        match self.expires_at {
            Some(at) => token.expires_at(at),
            None => token,
        }
    }

    /// Whether its known expiry has passed.
    pub(crate) fn expired(&self) -> bool {
        self.expires_at.is_some_and(|at| at <= SystemTime::now())
    }

    /// How long the store should keep it: until its expiry, when known.
    pub(crate) fn ttl(&self) -> Option<Duration> {
        self.expires_at.map(|at| {
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        })
    }
}

/// The record as JSON. Field names are short and stable: files outlive versions.
#[derive(serde::Serialize, serde::Deserialize)]
struct Wire<'a> {
    v: u32,
    fingerprint: &'a str,
    generation: u64,
    token: &'a str,
    /// Milliseconds since the Unix epoch.
    expires_at: Option<u64>,
}

/// The first line of an unsealed record: a version tag and a checksum of the JSON that follows,
/// so that a torn or altered file is told apart from a token.
const PLAIN_TAG: &str = "tower-api-auth/token v1 sha256=";

/// Encodes `record` as a checksummed JSON document.
pub(crate) fn encode(record: &Record, fingerprint: &Fingerprint) -> Vec<u8> {
    let fingerprint = fingerprint.hex();
    let wire = Wire {
        v: 1,
        fingerprint: &fingerprint,
        generation: record.generation,
        token: record.token.expose(),
        expires_at: record.expires_at.map(|at| {
            at.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |since| {
                    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
                })
        }),
    };
    // Serializing a struct of strings and integers cannot fail.
    let json = serde_json::to_vec(&wire).unwrap_or_default();
    let mut out = format!("{PLAIN_TAG}{}\n", hex(&Sha256::digest(&json))).into_bytes();
    out.extend_from_slice(&json);
    out
}

/// Decodes what [`encode`] wrote, checking the checksum and that the record belongs to
/// `fingerprint`. Errors never quote the record: it holds a token.
pub(crate) fn decode(bytes: &[u8], fingerprint: &Fingerprint) -> Result<Record, StoreError> {
    let corrupt = |what: &'static str| StoreError::new(StoreErrorKind::Corrupt, what);
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| corrupt("the record has no header line (torn or not a token record)"))?;
    let (head, json) = (&bytes[..newline], &bytes[newline + 1..]);
    let head = std::str::from_utf8(head).map_err(|_| corrupt("the record's header is not text"))?;
    let sum = head
        .strip_prefix(PLAIN_TAG)
        .ok_or_else(|| corrupt("the record's header is not a token record's (or it is sealed)"))?;
    if sum != hex(&Sha256::digest(json)) {
        return Err(corrupt(
            "the record's checksum does not match (torn or altered)",
        ));
    }
    let wire: Wire<'_> = serde_json::from_slice(json)
        .map_err(|_| corrupt("the record's body is not a token record"))?;
    if wire.v != 1 {
        return Err(corrupt("the record is of an unknown version"));
    }
    if wire.fingerprint != fingerprint.hex() {
        return Err(corrupt("the record belongs to other credentials"));
    }
    if wire.token.is_empty() {
        return Err(corrupt("the record holds an empty token"));
    }
    Ok(Record {
        generation: wire.generation,
        token: Secret::new(wire.token),
        expires_at: wire
            .expires_at
            .and_then(|ms| SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(ms))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            generation: 7,
            token: Secret::new("tok-123"),
            expires_at: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(4_000_000_000)),
        }
    }

    #[test]
    fn a_record_round_trips_and_every_damage_is_refused_without_quoting_it() {
        let fp = Fingerprint::new("akool\0id\0https://x", &Secret::new("s1"));
        let bytes = encode(&record(), &fp);
        let back = decode(&bytes, &fp).unwrap();
        assert_eq!(back.generation, 7);
        assert_eq!(back.token.expose(), "tok-123");
        assert_eq!(back.expires_at, record().expires_at);

        let other = Fingerprint::new("akool\0id\0https://x", &Secret::new("s2"));
        assert_ne!(fp, other, "a changed secret changes the fingerprint");
        assert!(!fp.hex().contains("s1"));
        let mut damaged = vec![
            bytes[..bytes.len() / 2].to_vec(),
            Vec::new(),
            b"garbage".to_vec(),
        ];
        let mut flipped = bytes.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 1;
        damaged.push(flipped);
        for bytes in damaged {
            let err = decode(&bytes, &fp).unwrap_err();
            assert_eq!(err.kind(), StoreErrorKind::Corrupt);
            assert!(!format!("{err} {err:?}").contains("tok-123"));
        }
        let err = decode(&bytes, &other).unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Corrupt);
    }
}
