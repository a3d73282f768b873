//! Records sealed with ChaCha20-Poly1305: `TAAS1` (a version tag), a random 96-bit nonce, the
//! ciphertext of the record and its tag. The record's key in the store (the fingerprint) is the
//! associated data, so a sealed record copied under another credential's key does not open.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use super::{StoreError, StoreErrorKind};

const TAG: &[u8] = b"TAAS1";
const NONCE: usize = 12;

pub(crate) struct Seal {
    cipher: ChaCha20Poly1305,
}

impl Seal {
    pub(crate) fn new(key: [u8; 32]) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        // Random nonces: a key seals one record per fetch, far below the 2^32 messages after
        // which random 96-bit nonces would risk a repeat.
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encrypting a slice in memory fails only past 256 GiB.
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(TAG.len() + NONCE + ciphertext.len());
        out.extend_from_slice(TAG);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let rest = sealed.strip_prefix(TAG).ok_or_else(|| {
            StoreError::new(
                StoreErrorKind::Sealed,
                "the record is not sealed, and this store only takes sealed records",
            )
        })?;
        if rest.len() < NONCE {
            return Err(StoreError::new(
                StoreErrorKind::Sealed,
                "the sealed record is cut short",
            ));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| {
                StoreError::new(
                    StoreErrorKind::Sealed,
                    "the record does not open under the key (another key, or altered)",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_records_open_only_under_their_key_and_their_name() {
        let seal = Seal::new([7; 32]);
        let sealed = seal.seal(b"key-a", b"{\"token\":\"tok-secret\"}");
        assert!(!sealed.windows(10).any(|w| w == b"tok-secret"));
        assert_eq!(
            seal.open(b"key-a", &sealed).unwrap(),
            b"{\"token\":\"tok-secret\"}"
        );
        let kinds = [
            Seal::new([8; 32]).open(b"key-a", &sealed),
            seal.open(b"key-b", &sealed),
            seal.open(b"key-a", &sealed[..sealed.len() - 1]),
            seal.open(b"key-a", b"plain record"),
            seal.open(b"key-a", b"TAAS1abc"),
        ];
        for result in kinds {
            assert_eq!(result.unwrap_err().kind(), StoreErrorKind::Sealed);
        }
    }
}
