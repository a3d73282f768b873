//! Key management on a [`KeyDatabase`]: create, list, revoke, roll.

use std::fmt;
use std::time::{Duration, SystemTime};

use rand::Rng;
use rand::distr::Alphanumeric;

use super::database::{Row, millis, time};
use super::{KeyDatabase, SqlStoreError};
use crate::Secret;
use crate::server::KeyDigest;

/// How many base62 characters a key id has.
const ID_LEN: usize = 16;

/// The metadata field a rolled key's successor names it in.
const ROLLED_FROM: &str = "rolled_from";

/// Whether `row`'s key was issued by rolling the key `id`.
fn rolled_from(row: &Row, id: &str) -> bool {
    let metadata: Result<serde_json::Value, _> = serde_json::from_str(&row.metadata);
    metadata
        .is_ok_and(|metadata| metadata.get(ROLLED_FROM).and_then(|from| from.as_str()) == Some(id))
}

/// Whether `text` is 1 or more visible characters without whitespace or control characters.
fn visible(text: &str) -> bool {
    !text.is_empty() && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A key to create: its principal, organization, scopes, expiry and metadata.
///
/// ```
/// use tower_api_auth::server::sql::NewKey;
///
/// let key = NewKey::new("alice").scopes(["jobs:read"]).organization("acme");
/// # let _ = key;
/// ```
#[derive(Debug, Clone)]
pub struct NewKey {
    principal: String,
    organization: Option<String>,
    scopes: Vec<String>,
    expires_at: Option<SystemTime>,
    metadata: serde_json::Map<String, serde_json::Value>,
}

impl NewKey {
    /// A key of `principal`, with no organization, scopes, expiry or metadata.
    pub fn new(principal: impl Into<String>) -> Self {
        Self {
            principal: principal.into(),
            organization: None,
            scopes: Vec::new(),
            expires_at: None,
            metadata: serde_json::Map::new(),
        }
    }

    /// The principal's organization.
    pub fn organization(mut self, organization: impl Into<String>) -> Self {
        self.organization = Some(organization.into());
        self
    }

    /// Adds scopes.
    pub fn scopes<I>(mut self, scopes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// The key is refused from `at` on.
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Sets a metadata field (kept in the database, not on the request path).
    pub fn metadata(
        mut self,
        name: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.metadata.insert(name.into(), value.into());
        self
    }
}

/// What the database holds about a key: never the key itself.
#[derive(Clone)]
pub struct KeyInfo(Row);

impl KeyInfo {
    /// The key's public id, to revoke or roll it.
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// The key's first characters (`acme_live_Ab3d`), to recognise it in a listing.
    pub fn start(&self) -> &str {
        &self.0.start
    }

    /// Whose key it is.
    pub fn principal(&self) -> &str {
        &self.0.principal
    }

    /// The principal's organization, if any.
    pub fn organization(&self) -> Option<&str> {
        self.0.organization.as_deref()
    }

    /// The scopes, as stored (a JSON array of strings).
    pub fn scopes(&self) -> Vec<String> {
        serde_json::from_str(&self.0.scopes).unwrap_or_default()
    }

    /// The metadata (a JSON object).
    pub fn metadata(&self) -> serde_json::Value {
        serde_json::from_str(&self.0.metadata).unwrap_or_default()
    }

    /// When the key was created.
    pub fn created_at(&self) -> SystemTime {
        time(self.0.created_at)
    }

    /// When the key stops being valid, if ever.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.0.expires_at.map(time)
    }

    /// When the key was revoked, if it was.
    pub fn revoked_at(&self) -> Option<SystemTime> {
        self.0.revoked_at.map(time)
    }

    /// When a request last presented the key while it was not revoked: admitted, refused for
    /// a scope it lacks, or refused past its expiry (a client still sending a rolled key shows
    /// here). Written in batches: up to the store's usage interval late.
    pub fn last_used_at(&self) -> Option<SystemTime> {
        self.0.last_used_at.map(time)
    }

    /// The revision of the key's last change.
    pub fn revision(&self) -> i64 {
        self.0.revision
    }
}

impl fmt::Debug for KeyInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyInfo")
            .field("id", &self.id())
            .field("start", &self.start())
            .field("principal", &self.principal())
            .field("organization", &self.organization())
            .field("scopes", &self.scopes())
            .field("expires_at", &self.expires_at())
            .field("revoked_at", &self.revoked_at())
            .field("revision", &self.revision())
            .finish_non_exhaustive()
    }
}

/// A key just created: the key itself, shown once and never stored, and what the database
/// keeps of it.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    key: Secret,
    info: KeyInfo,
}

impl IssuedKey {
    /// The key, to hand to its owner. The database holds its digest only.
    pub fn key(&self) -> &Secret {
        &self.key
    }

    /// What the database keeps.
    pub fn info(&self) -> &KeyInfo {
        &self.info
    }
}

impl KeyDatabase {
    /// Issues a key in the database's [`KeyFormat`](crate::server::KeyFormat) and stores its
    /// digest. A principal may hold any number of keys.
    ///
    /// Refused: an empty principal or scope, or one with whitespace or control characters
    /// ([`SqlStoreError::Principal`], [`SqlStoreError::Scope`]), and an expiry that has passed
    /// ([`SqlStoreError::PastExpiry`]).
    pub async fn create(&self, key: NewKey) -> Result<IssuedKey, SqlStoreError> {
        if !visible(&key.principal) {
            return Err(SqlStoreError::Principal);
        }
        if !key.scopes.iter().all(|scope| visible(scope)) {
            return Err(SqlStoreError::Scope);
        }
        if key.expires_at.is_some_and(|at| at <= SystemTime::now()) {
            return Err(SqlStoreError::PastExpiry);
        }
        let secret = self.format.issue();
        let start = self
            .format
            .display_start(secret.expose())
            .unwrap_or_else(|| self.format.prefix().to_owned());
        let row = Row {
            id: rand::rng()
                .sample_iter(Alphanumeric)
                .take(ID_LEN)
                .map(char::from)
                .collect(),
            start,
            digest: KeyDigest::of(secret.expose()),
            principal: key.principal,
            organization: key.organization,
            scopes: serde_json::Value::from(key.scopes).to_string(),
            metadata: serde_json::Value::Object(key.metadata).to_string(),
            created_at: millis(SystemTime::now()),
            expires_at: key.expires_at.map(millis),
            revoked_at: None,
            last_used_at: None,
            revision: 0,
        };
        self.insert_row(&row).await?;
        let info = self
            .key(&row.id)
            .await?
            .ok_or(SqlStoreError::NotFound(row.id))?;
        Ok(IssuedKey { key: secret, info })
    }

    /// Every key, oldest first, revoked ones included.
    pub async fn list(&self) -> Result<Vec<KeyInfo>, SqlStoreError> {
        Ok(self.rows().await?.into_iter().map(KeyInfo).collect())
    }

    /// The key with this id, if any.
    pub async fn key(&self, id: &str) -> Result<Option<KeyInfo>, SqlStoreError> {
        Ok(self.row(id).await?.map(KeyInfo))
    }

    /// Revokes the key with this id: every server refuses it once the change reaches it (PostgreSQL:
    /// at once, by `NOTIFY`; SQLite: within the poll interval). Returns `false` if it was
    /// revoked already.
    pub async fn revoke(&self, id: &str) -> Result<bool, SqlStoreError> {
        if self.mark_revoked(id, millis(SystemTime::now())).await? {
            return Ok(true);
        }
        match self.row(id).await? {
            Some(_) => Ok(false),
            None => Err(SqlStoreError::NotFound(id.to_owned())),
        }
    }

    /// Rolls the key with this id: issues a new key with the same principal, organization,
    /// scopes, expiry and metadata, and makes the old one expire `overlap` from now (sooner if it
    /// expired sooner already), so clients can switch without a gap. The new key is stored
    /// first: a failure in between leaves both valid, never neither.
    ///
    /// Rolling changes the secret, not the key's life: the new key expires when the old one
    /// was to. A revoked key ([`SqlStoreError::Revoked`]) or an expired one
    /// ([`SqlStoreError::Expired`]) cannot be rolled; create a new key instead. Nor can a key
    /// rolled already ([`SqlStoreError::Rolled`], naming its successor): its expiry is now
    /// the overlap's end, which a second successor would inherit; roll the successor.
    pub async fn roll(&self, id: &str, overlap: Duration) -> Result<IssuedKey, SqlStoreError> {
        let old = self
            .row(id)
            .await?
            .ok_or_else(|| SqlStoreError::NotFound(id.to_owned()))?;
        if old.revoked_at.is_some() {
            return Err(SqlStoreError::Revoked(id.to_owned()));
        }
        if old
            .expires_at
            .is_some_and(|at| time(at) <= SystemTime::now())
        {
            return Err(SqlStoreError::Expired(id.to_owned()));
        }
        let successor = self
            .rows_of(&old.principal)
            .await?
            .into_iter()
            .find(|row| rolled_from(row, id));
        if let Some(successor) = successor {
            return Err(SqlStoreError::Rolled {
                key: id.to_owned(),
                successor: successor.id,
            });
        }
        let mut new = NewKey {
            principal: old.principal,
            organization: old.organization,
            scopes: serde_json::from_str(&old.scopes).unwrap_or_default(),
            expires_at: old.expires_at.map(time),
            metadata: serde_json::from_str(&old.metadata).unwrap_or_default(),
        };
        new = new.metadata(ROLLED_FROM, id);
        let issued = self.create(new).await?;
        let until = SystemTime::now()
            .checked_add(overlap)
            .unwrap_or_else(|| time(i64::MAX));
        self.expire_by(id, millis(until)).await?;
        Ok(issued)
    }
}
