//! The outgoing side: layers that put credentials on the requests a client sends.
//!
//! - [`AuthLayer`] attaches a [`Credential`](crate::Credential) (a static key, rotatable at
//!   run time) to every request bound for the credential's origins.

pub mod auth;

pub use self::auth::{Auth, AuthLayer};
