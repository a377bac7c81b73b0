//! The end-to-end performance benchmark and its CI gate (capability M12): the versioned JSON
//! report, the comparison against a baseline with its markdown table, scenario files and
//! `/proc` sampling of the bot process.

/// The gate: absolute limits, regression vs baseline, markdown table (pure).
pub mod gate;
/// Reading `/metrics` (OpenMetrics text): counters, histogram buckets, percentiles.
pub mod openmetrics;
/// Process CPU / RSS / FD sampling from `/proc/<pid>`.
pub mod proc_stats;
/// The JSON report schema (`schema_version` 1).
pub mod report;
/// `kestrel bench run`: simulator and bot as child processes, measured window, report.
pub mod run;
/// Scenario files (`bench/*.toml`).
pub mod scenario;
