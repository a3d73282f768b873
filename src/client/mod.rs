//! The outgoing side: layers that put credentials on the requests a client sends.
//!
//! - [`AuthLayer`] attaches a [`Credential`](crate::Credential) (a static key, rotatable at
//!   run time) to every request bound for the credential's origins.
//! - [`TokenAuthLayer`] attaches a fetched access token from a
//!   [`TokenCredential`](crate::TokenCredential), fetching it once for all concurrent callers.
//! - [`KeepCredentialHome`] (feature `follow-redirect`): a tower-http redirect policy that never
//!   lets a redirect carry the credential to another origin.

pub mod auth;
#[cfg(feature = "follow-redirect")]
#[cfg_attr(docsrs, doc(cfg(feature = "follow-redirect")))]
pub mod redirect;
pub mod token_auth;

pub use self::auth::{Auth, AuthLayer};
#[cfg(feature = "follow-redirect")]
pub use self::redirect::KeepCredentialHome;
pub use self::token_auth::{AttachToken, AttachTokenLayer, TokenAuth, TokenAuthLayer};
