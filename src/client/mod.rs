//! The outgoing side: layers that put credentials on the requests a client sends.
//!
//! - [`AuthLayer`] attaches a [`Credential`](crate::Credential) (a static key, rotatable at
//!   run time) to every request bound for the credential's origins.
//! - [`TokenAuthLayer`] attaches a fetched access token from a
//!   [`TokenCredential`](crate::TokenCredential), fetching it once for all concurrent callers.

pub mod auth;
pub mod token_auth;

pub use self::auth::{Auth, AuthLayer};
pub use self::token_auth::{TokenAuth, TokenAuthLayer};
