//! Fetched credentials: access tokens obtained from a [`TokenSource`](crate::TokenSource), cached in
//! [`TokenCredential`](crate::TokenCredential).
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::time::Duration;
//! use tower_api_auth::{Token, TokenCredential};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let fetches = Arc::new(AtomicUsize::new(0));
//! let counter = Arc::clone(&fetches);
//! let tokens = TokenCredential::builder(move || {
//!     let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
//!     async move { Ok::<_, std::io::Error>(Token::new(format!("token-{n}")).expires_in(Duration::from_secs(3600))) }
//! })
//! .origin("https://api.example.com")
//! .build()?;
//!
//! assert_eq!(tokens.generation(), None); // lazy: nothing fetched yet
//! let (a, b) = tokio::join!(tokens.fetch(), tokens.fetch());
//! assert_eq!((a?, b?), (1, 1)); // one fetch served both
//! assert_eq!(fetches.load(Ordering::SeqCst), 1);
//!
//! tokens.invalidate();
//! assert_eq!(tokens.fetch().await?, 2);
//! # Ok(())
//! # }
//! ```

mod builder;
pub(crate) mod credential;
mod current;
mod endpoint;
pub(crate) mod error;
mod flight;
mod refresh;
pub(crate) mod source;
mod status;
#[cfg(feature = "token-store")]
pub mod store;
#[cfg(test)]
mod tests;

pub(crate) use self::builder::Rejection;
pub use self::builder::TokenCredentialBuilder;
pub(crate) use self::credential::{Acquire, CurrentCell, Flight};
pub(crate) use self::current::Current;
pub use self::endpoint::{EndpointError, HttpClient, JsonTokenEndpoint};
pub use self::error::TokenErrorKind;
pub use self::source::Unrecoverable;
pub use self::status::{TokenStatus, Window};
