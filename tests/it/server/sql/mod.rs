//! `SqlKeyStore`: the key store contract on SQLite and PostgreSQL, start-up with a million keys,
//! and replicas on one PostgreSQL.

mod load;
mod replicas;
mod store;
