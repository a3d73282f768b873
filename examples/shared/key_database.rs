//! Where the `keys` and `axum_server` examples keep their keys: `DATABASE_URL` if set, else the
//! SQLite file `keys.db`; keys prefixed with `KEY_PREFIX`, else `acme_live`.

use tower_api_auth::server::{KeyFormat, KeyFormatError};

/// The database: `DATABASE_URL`, else `sqlite://keys.db`.
pub fn url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://keys.db".to_owned())
}

/// The key format: `KEY_PREFIX`, else `acme_live`.
pub fn format() -> Result<KeyFormat, KeyFormatError> {
    KeyFormat::new(std::env::var("KEY_PREFIX").unwrap_or_else(|_| "acme_live".to_owned()))
}
