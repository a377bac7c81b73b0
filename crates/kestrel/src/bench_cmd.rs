//! `kestrel bench …`: the performance gate's command line.
//!
//! `kestrel bench assert --report new.json --baseline bench/baseline.json [--markdown FILE]`
//! prints the comparison table to stdout and exits 1 when a limit is exceeded (2 on unreadable
//! input), so CI can gate on it. `bench run` is not here yet: it needs the bot ↔ simulator loop
//! (see bench/README.md).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::bench::gate::{self, Thresholds};
use crate::bench::report::BenchReport;
use crate::exit::ExitClass;

/// Arguments of `kestrel bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The bench subcommand.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// `kestrel bench` subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Compare a benchmark report with the baseline; exit 1 if a limit is exceeded.
    Assert(AssertArgs),
}

/// Arguments of `kestrel bench assert`.
#[derive(Debug, Args)]
pub struct AssertArgs {
    /// The new report (JSON written by `kestrel bench run`).
    #[arg(long, value_name = "FILE")]
    pub report: PathBuf,
    /// The committed baseline report.
    #[arg(long, value_name = "FILE", default_value = "bench/baseline.json")]
    pub baseline: PathBuf,
    /// Also write the markdown table to FILE (for a PR comment).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Allowed relative regression of p95/p99 latencies and throughput vs the baseline, as a
    /// fraction (0.25 = 25 %).
    #[arg(long, value_name = "FRACTION", default_value_t = Thresholds::DEFAULT_TOLERANCE, value_parser = non_negative)]
    pub tolerance: f64,
    /// Absolute ceiling on task_latency p95, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = Thresholds::DEFAULT_MAX_TASK_P95_S, value_parser = non_negative)]
    pub max_task_p95: f64,
    /// Absolute ceiling on bot CPU, percent of one core.
    #[arg(long, value_name = "PERCENT", default_value_t = Thresholds::DEFAULT_MAX_CPU_PERCENT, value_parser = non_negative)]
    pub max_cpu: f64,
    /// Latency regressions smaller than this many seconds are treated as noise.
    #[arg(long, value_name = "SECONDS", default_value_t = Thresholds::DEFAULT_LATENCY_FLOOR_S, value_parser = non_negative)]
    pub latency_floor: f64,
}

/// A finite, non-negative number.
fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a finite number ≥ 0")),
    }
}

/// The gate failed: some metric exceeded a limit (exit code 1).
#[derive(Debug, thiserror::Error)]
#[error("perf gate failed: {}", .failed.join(", "))]
pub struct GateFailed {
    /// The failing metrics.
    pub failed: Vec<String>,
}

/// Runs one `kestrel bench` subcommand.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    match &args.command {
        BenchCommand::Assert(a) => assert(a),
    }
}

/// `kestrel bench assert`.
pub fn assert(args: &AssertArgs) -> anyhow::Result<()> {
    let new = BenchReport::load(&args.report).context(ExitClass::Usage)?;
    let baseline = BenchReport::load(&args.baseline).context(ExitClass::Usage)?;
    let thresholds = Thresholds {
        max_task_p95_s: args.max_task_p95,
        max_cpu_percent: args.max_cpu,
        tolerance: args.tolerance,
        latency_floor_s: args.latency_floor,
    };
    let comparison = gate::compare(&new.figures, &baseline.figures, &thresholds);
    let mut md = comparison.to_markdown();
    if new.scenario.name != baseline.scenario.name {
        md.push_str(&format!(
            "\nNote: scenario `{}` compared with a `{}` baseline.\n",
            new.scenario.name, baseline.scenario.name
        ));
    }
    md.push_str(&format!(
        "\nNew: `{}` on {} ({} cores). Baseline: `{}` on {} ({} cores).\n",
        new.git_revision,
        new.machine.cpu_model,
        new.machine.cores,
        baseline.git_revision,
        baseline.machine.cpu_model,
        baseline.machine.cores
    ));
    std::io::stdout().lock().write_all(md.as_bytes()).context("writing to stdout")?;
    if let Some(path) = &args.markdown {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, &md).with_context(|| format!("writing {}", path.display()))?;
    }
    if comparison.passed() {
        Ok(())
    } else {
        let failed = comparison.failures().map(|r| r.metric.to_owned()).collect();
        Err(GateFailed { failed }.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::sample;

    fn args(dir: &std::path::Path, new: &BenchReport, base: &BenchReport) -> AssertArgs {
        new.save(&dir.join("new.json")).unwrap();
        base.save(&dir.join("base.json")).unwrap();
        AssertArgs {
            report: dir.join("new.json"),
            baseline: dir.join("base.json"),
            markdown: Some(dir.join("out/table.md")),
            tolerance: Thresholds::DEFAULT_TOLERANCE,
            max_task_p95: Thresholds::DEFAULT_MAX_TASK_P95_S,
            max_cpu: Thresholds::DEFAULT_MAX_CPU_PERCENT,
            latency_floor: Thresholds::DEFAULT_LATENCY_FLOOR_S,
        }
    }

    #[test]
    fn passing_gate_writes_markdown() {
        let dir = tempfile::tempdir().unwrap();
        let a = args(dir.path(), &sample(), &sample());
        assert(&a).unwrap();
        let md = std::fs::read_to_string(dir.path().join("out/table.md")).unwrap();
        assert!(md.contains("perf gate: PASS"), "{md}");
        assert!(md.contains("`abc123` on Test CPU (2 cores)"), "{md}");
    }

    #[test]
    fn failing_gate_exits_1_and_names_metric() {
        let dir = tempfile::tempdir().unwrap();
        let mut new = sample();
        new.figures.bot_cpu_percent = Some(99.0);
        let a = args(dir.path(), &new, &sample());
        let err = assert(&a).unwrap_err();
        assert_eq!(ExitClass::of(&err), ExitClass::Other);
        assert!(err.to_string().contains("bot CPU"), "{err}");
        let md = std::fs::read_to_string(dir.path().join("out/table.md")).unwrap();
        assert!(md.contains("perf gate: FAIL"), "{md}");
    }

    #[test]
    fn unreadable_report_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(dir.path(), &sample(), &sample());
        a.report = dir.path().join("nope.json");
        let err = assert(&a).unwrap_err();
        assert_eq!(ExitClass::of(&err), ExitClass::Usage);
    }

    #[test]
    fn tolerance_parser() {
        assert_eq!(non_negative("0.1"), Ok(0.1));
        assert!(non_negative("-1").is_err());
        assert!(non_negative("NaN").is_err());
        assert!(non_negative("x").is_err());
    }

    #[test]
    fn committed_baseline_loads() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/baseline.json");
        BenchReport::load(&path).unwrap();
    }
}
