//! The integration tests, one binary: a module per capability of the crate, laid out as `src/`
//! is, so a behaviour is found by its capability's path (`cargo test --all-features --test it
//! tokens::replay`, `... --test it server::sql::replicas`). What every module shares is in
//! [`support`]; the loopback provider stand-ins are the crate's own `tower_api_auth_mock`.
//!
//! One binary links the dependency tree once instead of once a file. Nothing here installs
//! process-wide state a sibling test could see: `tracing` subscribers and `metrics` recorders
//! are scoped to the test's thread (`support::CapturedLogs::install`,
//! `metrics::set_default_local_recorder`). Tests that run this binary again as another process
//! name the one test the child runs by its full path (`support::test_path`).

mod support;

mod classify;
mod composition;
mod fuzz_regressions;
#[cfg(feature = "metrics")]
mod metrics;
mod no_secret_leaks;
mod origin_scoping;
mod properties;
#[cfg(feature = "reqwest")]
mod reqwest;
mod server;
mod static_credentials;
mod stress;
mod tokens;
mod tonic;
