//! What can go wrong with the keys' database: [`SqlStoreError`].

/// Why the key database or one of its operations failed.
///
/// It carries the database driver's message, which never holds a key: only digests reach the
/// database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlStoreError {
    /// The URL is neither `sqlite:` nor `postgres:`, or names a database whose cargo feature
    /// (`sqlite`, `postgres`) is off.
    #[error("the key database URL must start with sqlite: or postgres: (with that feature on)")]
    UnsupportedUrl,
    /// [`KeyDatabase::connect`](super::KeyDatabase::connect) could not open the database at
    /// `url` (shown without user, password or query).
    #[error("could not connect to the key database {url}: {source}")]
    Connect {
        /// The database URL, without user, password or query.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The database did not answer a query of the store's within 3 s (connection included).
    #[error("the key database did not answer within 3 s")]
    TimedOut,
    /// The database could not be reached, or a query failed.
    #[error("key database: {0}")]
    Database(#[source] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("key database migration: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// No key has this id.
    #[error("no key has the id {0:?}")]
    NotFound(String),
    /// The key was revoked: it cannot be rolled.
    #[error("the key {0:?} is revoked")]
    Revoked(String),
    /// The key has expired: it cannot be rolled.
    #[error("the key {0:?} has expired")]
    Expired(String),
    /// The key was rolled already: its successor is the key to roll (a lost successor is
    /// revoked, and a new key created).
    #[error("the key {key:?} was rolled into {successor:?} already: roll that key instead")]
    Rolled {
        /// The key asked to be rolled.
        key: String,
        /// The key its roll issued.
        successor: String,
    },
    /// A new key's principal is empty or holds whitespace or control characters.
    #[error("a principal is 1 or more visible characters without whitespace")]
    Principal,
    /// A new key's expiry has passed already.
    #[error("the new key's expiry has passed already")]
    PastExpiry,
    /// The snapshot is too old to serve (the database has been unreachable longer than the
    /// outage policy allows), or the policy is to fail closed; or a lookup-through store's
    /// caches do not hold the key and the database is unreachable.
    #[error("the key database is unreachable and the outage policy refuses to serve the snapshot")]
    Unavailable,
    /// A scope is empty or holds whitespace.
    #[error("a scope is 1 or more visible characters without whitespace")]
    Scope,
}

impl SqlStoreError {
    pub(super) fn database(error: sqlx::Error) -> Self {
        Self::Database(error)
    }

    pub(super) fn connect(url: &str) -> impl FnOnce(sqlx::Error) -> Self {
        let url = shown(url);
        move |source| Self::Connect { url, source }
    }

    pub(super) fn migrate(error: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(error)
    }
}

/// `url` as errors show it: without userinfo (`user:password@`) or query (`?password=`), either
/// of which may hold a credential.
fn shown(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn a_database_url_is_shown_without_credentials() {
        let cases = [
            ("sqlite:///var/lib/keys.db", "sqlite:///var/lib/keys.db"),
            ("sqlite://keys.db?mode=rwc", "sqlite://keys.db"),
            ("sqlite::memory:", "sqlite::memory:"),
            (
                "postgres://app:hunter2@db:5432/keys",
                "postgres://db:5432/keys",
            ),
            ("postgres://db/keys?password=hunter2", "postgres://db/keys"),
            ("postgres://a:b@c@db/keys", "postgres://db/keys"),
        ];
        for (url, expected) in cases {
            assert_eq!(shown(url), expected, "{url}");
        }
    }
}
