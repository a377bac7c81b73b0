//! kestrel: the binary's library half: config, secrets, the journal, startup reconciliation,
//! exit codes, runtime wiring, admin API, metrics (see ARCHITECTURE.md).
//!
//! Owns: everything global (tokio runtime, tracing subscriber, metrics registry, process exit
//! code) and the translation between `kestrel-binance` and `kestrel-engine`.
//! Must not know: wire formats beyond what `kestrel-binance` exposes; trading logic (engine).

/// One TOML file → `RawConfig` → validated `Config`.
pub mod config;
/// Exit codes per error class and the one-line error report.
pub mod exit;
/// Named fault classes and the board components raise/clear them on.
pub mod faults;
/// Durable SQLite journal of orders, events, fills and positions.
pub mod journal;
/// Prometheus metrics: contract names, `kestrel_*`, pre-resolved hot-path handles.
pub mod metrics;
/// Process RSS/FD/CPU/thread metrics read from `/proc/self`.
pub mod process_metrics;
/// Startup reconciliation of the journal against the exchange (pure decisions).
pub mod reconcile;
/// API credentials and the admin token from env vars or files, redacted and zeroized.
pub mod secrets;
