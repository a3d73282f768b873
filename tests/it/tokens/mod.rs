//! Fetched tokens (`TokenCredential`, `TokenAuthLayer`): single-flight fetches, replay once on
//! rejection, faults of the token endpoint, refresh through an outage, and stores that keep
//! tokens across restarts and processes.

mod faults;
mod fetch;
mod replay;
mod static_stability;
#[cfg(feature = "token-store")]
mod store;
