//! Presets for the APIs this crate speaks natively: one module per provider.
//!
//! Each preset returns a [`CredentialBuilder`](crate::CredentialBuilder) that places the
//! secret the way the provider documents and is scoped to the provider's HTTPS origin;
//! `.origin(..)` replaces that origin (a loopback stand-in, a proxy).
//!
//! | provider | header | extra |
//! |---|---|---|
//! | [`akkio`] | `X-API-Key: <key>` | |
//! | [`polyteia`] | `Authorization: Bearer <personal access key>` | `Content-Type: application/json` when absent |
//! | [`erathos`] | `Authorization: Api-Key <key>` | |
//! | [`akool`] | `x-api-key: <key>` | any `Authorization` header removed |
//!
//! ```
//! use tower_api_auth::providers::{akkio, akool, erathos, polyteia};
//!
//! let akkio = akkio::api_key("akkio-key").build()?;
//! let polyteia = polyteia::access_key("pak").build()?;
//! let erathos = erathos::api_key("erathos-key").build()?;
//! let akool = akool::api_key("akool-key").origin("http://127.0.0.1:8080").build()?;
//! # Ok::<(), tower_api_auth::CredentialError>(())
//! ```

pub mod akkio;
pub mod akool;
pub mod erathos;
pub mod polyteia;
