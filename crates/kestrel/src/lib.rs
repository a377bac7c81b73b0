//! kestrel: wiring, config, CLI (see ARCHITECTURE.md).

/// Named fault classes and the board components raise/clear them on.
pub mod faults;
/// Prometheus metrics: contract names, `kestrel_*`, pre-resolved hot-path handles.
pub mod metrics;
/// Process RSS/FD/CPU/thread metrics read from `/proc/self`.
pub mod process_metrics;
