//! Where valid keys are looked up: the [`KeyStore`] trait, key digests, and the in-memory,
//! hot-reloadable [`MemoryKeyStore`].

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, Ready, ready};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower::BoxError;

use super::KeyRecord;
use crate::Secret;

/// The SHA-256 digest of a key: what a key store holds and looks up instead of the key.
///
/// Equality is constant-time ([`subtle`]), so comparing a presented key's digest with a stored
/// one reveals nothing through timing. `Debug` shows the first four bytes only.
///
/// ```
/// use tower_api_auth::server::KeyDigest;
///
/// let digest = KeyDigest::of("akkio-key");
/// assert_eq!(digest, KeyDigest::from_bytes(*digest.as_bytes()));
/// assert_ne!(digest, KeyDigest::of("akkio-kez"));
/// ```
#[derive(Clone, Copy, Eq)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    /// The digest of `key`.
    pub fn of(key: impl AsRef<[u8]>) -> Self {
        Self(Sha256::digest(key.as_ref()).into())
    }

    /// A digest computed elsewhere (read from a database, say).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest's bytes, to store them.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for KeyDigest {
    fn eq(&self, other: &Self) -> bool {
        // Word by word: as constant-time as byte by byte, with an eighth of the steps.
        self.words().ct_eq(&other.words()).into()
    }
}

impl KeyDigest {
    fn words(&self) -> [u64; 4] {
        let mut words = [0; 4];
        for (word, bytes) in words.iter_mut().zip(self.0.chunks_exact(8)) {
            *word = u64::from_ne_bytes(bytes.try_into().expect("chunks of 8 bytes"));
        }
        words
    }
}

impl Hash for KeyDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The digest is uniformly distributed: eight bytes place it as well as thirty-two.
        let (prefix, _) = self.0.split_first_chunk::<8>().expect("32 bytes");
        state.write_u64(u64::from_le_bytes(*prefix));
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyDigest(")?;
        for byte in &self.0[..4] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…)")
    }
}

/// Looks keys up by digest: an in-memory set ([`MemoryKeyStore`]), a database, a remote
/// service.
///
/// A closure `Fn(&KeyDigest) -> impl Future<Output = Result<Option<KeyRecord>, BoxError>>` is a
/// key store:
///
/// ```
/// use tower_api_auth::server::{KeyDigest, KeyRecord, KeyStore, Principal};
///
/// let admin = KeyDigest::of("admin-key");
/// let store = move |digest: &KeyDigest| {
///     let found = (*digest == admin).then(|| KeyRecord::new(Principal::new("admin")));
///     async move { Ok(found) }
/// };
/// # fn is_store(_: &impl KeyStore) {}
/// # is_store(&store);
/// ```
///
/// `Ok(None)` means "no such key" (the request is refused with 401); an error means the store
/// could not answer (the request is refused with 503, and the error is logged).
pub trait KeyStore: Send + Sync + 'static {
    /// The future of a lookup.
    type Lookup: Future<Output = Result<Option<KeyRecord>, BoxError>> + Send + 'static;

    /// Looks up the key whose digest is `digest`.
    fn lookup(&self, digest: &KeyDigest) -> Self::Lookup;
}

impl<F, Fut> KeyStore for F
where
    F: Fn(&KeyDigest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<KeyRecord>, BoxError>> + Send + 'static,
{
    type Lookup = Fut;

    fn lookup(&self, digest: &KeyDigest) -> Fut {
        self(digest)
    }
}

type Keys = HashMap<KeyDigest, KeyRecord>;

/// Keys held in memory as digests, replaced, added to and revoked while requests are served.
///
/// A lookup is one atomic load and one hash-map probe: no lock. A change copies the set and
/// swaps the copy in, so it costs time in the size of the set; batch changes with
/// [`retain`](Self::retain) or [`replace`](Self::replace). A request that starts after a change
/// returns sees the change. Clones share the same set.
///
/// ```
/// use tower_api_auth::server::{KeyRecord, MemoryKeyStore, Principal};
///
/// let store = MemoryKeyStore::new();
/// store.insert("key-1", KeyRecord::new(Principal::new("alice")));
/// store.insert("key-2", KeyRecord::new(Principal::new("bob")));
/// assert!(store.revoke("key-1"));
/// store.retain(|_, record| record.principal().id() != "bob");
/// assert_eq!(store.len(), 1);
/// ```
#[derive(Clone, Default)]
pub struct MemoryKeyStore {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    keys: ArcSwap<Keys>,
    /// Writers take turns, so a change is never lost to a concurrent one and the closure of
    /// [`MemoryKeyStore::retain`] runs once (`rcu` could run it again).
    writer: Mutex<()>,
}

impl MemoryKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts `key` as `record` says, replacing what was known of it. Only its digest is kept.
    pub fn insert(&self, key: impl Into<Secret>, record: KeyRecord) {
        self.insert_digest(KeyDigest::of(key.into().expose()), record);
    }

    /// Accepts the key whose digest is `digest`.
    pub fn insert_digest(&self, digest: KeyDigest, record: KeyRecord) {
        self.change(|keys| {
            keys.insert(digest, record);
        });
    }

    /// Marks `key` revoked: it is refused from now on, with its principal logged. Returns
    /// whether the store knew it.
    pub fn revoke(&self, key: impl Into<Secret>) -> bool {
        self.revoke_digest(&KeyDigest::of(key.into().expose()))
    }

    /// Marks the key whose digest is `digest` revoked; see [`revoke`](Self::revoke).
    pub fn revoke_digest(&self, digest: &KeyDigest) -> bool {
        self.change(|keys| match keys.get_mut(digest) {
            Some(record) => {
                *record = record.clone().revoked();
                true
            }
            None => false,
        })
    }

    /// Forgets `key`, returning what was known of it.
    pub fn remove(&self, key: impl Into<Secret>) -> Option<KeyRecord> {
        let digest = KeyDigest::of(key.into().expose());
        self.change(|keys| keys.remove(&digest))
    }

    /// Keeps only the keys for which `keep` answers `true`, in one change.
    pub fn retain(&self, keep: impl FnMut(&KeyDigest, &mut KeyRecord) -> bool) {
        self.change(|keys| keys.retain(keep));
    }

    /// Replaces the whole set, in one change.
    pub fn replace(&self, keys: impl IntoIterator<Item = (KeyDigest, KeyRecord)>) {
        let keys: Keys = keys.into_iter().collect();
        let _turn = self.writer();
        crate::metrics::key_store_size("memory", keys.len());
        self.shared.keys.store(Arc::new(keys));
    }

    /// How many keys the store holds, revoked ones included.
    pub fn len(&self) -> usize {
        self.shared.keys.load().len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the set, applies `f` to the copy and swaps it in.
    fn change<T>(&self, f: impl FnOnce(&mut Keys) -> T) -> T {
        let _turn = self.writer();
        let mut keys = Keys::clone(&self.shared.keys.load());
        let out = f(&mut keys);
        crate::metrics::key_store_size("memory", keys.len());
        self.shared.keys.store(Arc::new(keys));
        out
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded data is `()`: a panic in another writer left nothing half-done.
        self.shared
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl KeyStore for MemoryKeyStore {
    type Lookup = Ready<Result<Option<KeyRecord>, BoxError>>;

    fn lookup(&self, digest: &KeyDigest) -> Self::Lookup {
        ready(Ok(self.shared.keys.load().get(digest).cloned()))
    }
}

impl fmt::Debug for MemoryKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryKeyStore")
            .field("keys", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Principal;

    fn lookup(store: &MemoryKeyStore, key: &str) -> Option<KeyRecord> {
        match store.lookup(&KeyDigest::of(key)).into_inner() {
            Ok(found) => found,
            Err(err) => panic!("{err}"),
        }
    }

    #[test]
    fn digests_differing_in_any_byte_are_unequal() {
        let digest = KeyDigest::of("key");
        assert_eq!(digest, KeyDigest::from_bytes(*digest.as_bytes()));
        for at in 0..32 {
            let mut bytes = *digest.as_bytes();
            bytes[at] ^= 1;
            assert_ne!(digest, KeyDigest::from_bytes(bytes), "byte {at}");
        }
    }

    #[test]
    fn keys_are_found_by_digest_and_changes_show_at_once() {
        let store = MemoryKeyStore::new();
        let alice = KeyRecord::new(Principal::new("alice"));
        store.insert("key-a", alice.clone());
        assert_eq!(lookup(&store, "key-a"), Some(alice.clone()));
        assert_eq!(lookup(&store, "key-b"), None);

        assert!(store.revoke("key-a"));
        assert!(lookup(&store, "key-a").unwrap().is_revoked());
        assert!(!store.revoke("key-b"));

        assert_eq!(store.remove("key-a"), Some(alice.revoked()));
        assert!(store.is_empty());

        let bob = KeyRecord::new(Principal::new("bob"));
        store.replace([(KeyDigest::of("key-b"), bob.clone())]);
        assert_eq!(lookup(&store, "key-b"), Some(bob));
    }

    #[test]
    fn digests_hide_the_key() {
        let digest = KeyDigest::of("very-secret-key");
        let shown = format!("{digest:?}");
        assert!(!shown.contains("very-secret-key"));
        assert_eq!(shown.len(), "KeyDigest(01234567…)".len());
        assert_eq!(
            format!("{:?}", MemoryKeyStore::new()),
            "MemoryKeyStore { keys: 0 }"
        );
    }
}
