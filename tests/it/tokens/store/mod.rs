//! Token stores (`TokenStore`): their failures in one process, and a fleet of processes sharing
//! one fetch.

#[cfg(feature = "redis")]
mod fleet;
mod one_process;
