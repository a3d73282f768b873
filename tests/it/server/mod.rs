//! The server side (`ValidateCredentialLayer`, key stores): validation on loopback, recognisable
//! keys, and keys in SQLite and PostgreSQL.

mod key_format;
mod sql;
mod validate;
