//! kestrel: the binary's library half: config, secrets, the journal, startup reconciliation,
//! exit codes, runtime wiring, admin API, metrics (see ARCHITECTURE.md).
//!
//! Owns: everything global (tokio runtime, tracing subscriber, metrics registry, process exit
//! code) and the translation between `kestrel-binance` and `kestrel-engine`.
//! Must not know: wire formats beyond what `kestrel-binance` exposes; trading logic (engine).

/// Admin HTTP API (axum: status, commands, `/metrics`) and its CLI client.
pub mod admin;
/// The end-to-end benchmark: report schema, CI gate, scenarios, `/proc` sampling.
pub mod bench;
/// `kestrel bench …` command line (the perf gate).
pub mod bench_cmd;
/// One TOML file → `RawConfig` → validated `Config`.
pub mod config;
/// `kestrel demo`: embedded simulator + bot + status line.
pub mod demo;
/// The engine on its own OS thread: events in, actions out, snapshots published.
pub mod engine_thread;
/// The execution gateway task: journal, send, feed results back.
pub mod exec;
/// Exit codes per error class and the one-line error report.
pub mod exit;
/// Named fault classes and the board components raise/clear them on.
pub mod faults;
/// Durable SQLite journal of orders, events, fills and positions.
pub mod journal;
/// Exact (HDR) latency distributions behind the admin API's `GET /latency`.
pub mod latency;
/// The market-data observer: metrics and faults from the market-data tasks.
pub mod md_observer;
/// Prometheus metrics: contract names, `kestrel_*`, pre-resolved hot-path handles.
pub mod metrics;
/// Process RSS/FD/CPU/thread metrics read from `/proc/self`.
pub mod process_metrics;
/// Startup reconciliation of the journal against the exchange (pure decisions).
pub mod reconcile;
/// `kestrel run`, `demo` and admin-client subcommand plumbing.
pub mod run_cmd;
/// Start-up, task wiring and graceful shutdown.
pub mod runtime;
/// API credentials and the admin token from env vars or files, redacted and zeroized.
pub mod secrets;
/// `kestrel sim`: the Binance-compatible simulator for humans.
pub mod sim_cmd;
/// The demo's once-a-second status line.
pub mod status_line;
/// The user-data task: execution reports → journal → engine.
pub mod user_data;
