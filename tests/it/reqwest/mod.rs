//! reqwest: the layers around a `reqwest::Client` (`ReqwestService`), and the
//! `reqwest_middleware` middleware.

#[cfg(feature = "reqwest-middleware")]
mod middleware;
mod service;
