//! Integration tests of the `kestrel` crate: one test binary (STYLE.md 2.6).
#![allow(clippy::unwrap_used)]

mod cli;
mod e2e_crash;
mod e2e_support;
mod e2e_trading;
mod exec_pipeline;
mod journal_crash;
mod ops_cli;
mod ops_docs;
mod ops_faults;
mod ops_prometheus;
mod ops_support;
mod risk_pending_cap;
