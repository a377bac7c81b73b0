//! `kestrel bench …`: the end-to-end benchmark and the performance gate's command line.
//!
//! `kestrel bench run --scenario bench/seed.toml --duration 30 --warmup 5 --out FILE
//! [--markdown FILE]` runs the simulator and the bot as child processes and writes the JSON
//! report (see [`crate::bench::run`]); `--ramp R1,R2,…` steps the per-symbol rate up across
//! runs and reports the highest sustained one (the stress scenario).
//! `kestrel bench assert --report new.json --baseline bench/baseline.json [--markdown FILE]`
//! prints the comparison table to stdout and exits 1 when a limit is exceeded (2 on unreadable
//! input), so CI can gate on it.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use std::time::Duration;

use crate::bench::gate::{self, Thresholds};
use crate::bench::report::BenchReport;
use crate::bench::run::{self as bench_run, RunOptions};
use crate::bench::scenario::Scenario;
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
    /// Run the simulator and the bot as child processes, measure, write a JSON report.
    Run(RunArgs),
    /// Compare a benchmark report with the baseline; exit 1 if a limit is exceeded.
    Assert(AssertArgs),
}

/// Arguments of `kestrel bench run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (`bench/seed.toml`, …); without it: 3 symbols, 30 msg/s each (10 depth +
    /// 20 trades), 2 market makers + 1 imbalance taker.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Override the scenario's symbol count (the strategy mix is scaled to it).
    #[arg(long, value_name = "N")]
    pub symbols: Option<u32>,
    /// Override the per-symbol market-data rate (messages/s; the depth/trade/bookTicker split
    /// keeps the scenario's proportions).
    #[arg(long, value_name = "MSGS")]
    pub md_rate: Option<u32>,
    /// Measured seconds (default: the scenario's `duration_s`).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    /// Warm-up seconds after the books are synced (default: the scenario's `warmup_s`).
    #[arg(long, value_name = "SECS")]
    pub warmup: Option<u64>,
    /// Where to write the JSON report.
    #[arg(long, value_name = "FILE", default_value = "target/bench/report.json")]
    pub out: PathBuf,
    /// Also write the markdown table to FILE.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Longest wait for the bot's books to be synced, seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub sync_timeout: u64,
    /// RSS / FD sampling period inside the window, seconds (report `samples`).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub sample_every: u64,
    /// Period of the progress line, seconds. Each one scrapes the bot's `/metrics`, which is
    /// work for the bot's I/O threads while the engine thread is being measured.
    #[arg(long, value_name = "SECS", default_value_t = 1)]
    pub progress_every: u64,
    /// Stress ramp: run once per per-symbol rate in this list (ascending), stop at the first
    /// that is not sustained, and report the highest sustained one.
    #[arg(long, value_name = "R1,R2,…", value_delimiter = ',')]
    pub ramp: Vec<u32>,
    /// A ramp step is sustained while task_latency{task=engine} p99 stays at or below this
    /// many seconds (and nothing is dropped, and ≥ 90 % of the offered rate is processed).
    #[arg(long, value_name = "SECONDS", default_value_t = 0.001, value_parser = non_negative)]
    pub ramp_max_p99: f64,
    /// Keep the work directory (configs, journal, child logs) after a successful run.
    #[arg(long)]
    pub keep_work_dir: bool,
    /// Log filter of the two child processes.
    #[arg(long, value_name = "FILTER", default_value = "warn")]
    pub child_log_level: String,
}

/// The scenario used when `--scenario` is absent.
const DEFAULT_SCENARIO: &str = r#"
name = "custom"
symbols = 3
md_rate_per_symbol = 30
depth_per_s = 10
trades_per_s = 20
duration_s = 30
warmup_s = 5
[strategy_mix]
market_maker = 2
imbalance_taker = 1
"#;

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
    /// Allowed relative regression of throughput (signals/s, orders/s, messages/s) and bot CPU
    /// vs the baseline, as a fraction (0.5 = 50 %).
    #[arg(long, value_name = "FRACTION", default_value_t = Thresholds::DEFAULT_TOLERANCE, value_parser = non_negative)]
    pub tolerance: f64,
    /// Allowed relative regression of p95/p99 latencies vs the baseline, as a fraction
    /// (9.0 = a latency may grow to 10× before it fails; see bench/README.md for the noise).
    #[arg(long, value_name = "FRACTION", default_value_t = Thresholds::DEFAULT_LATENCY_TOLERANCE, value_parser = non_negative)]
    pub latency_tolerance: f64,
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
        BenchCommand::Run(a) => run_bench(a),
        BenchCommand::Assert(a) => assert(a),
    }
}

/// Writes `text` to `path`, creating parent directories.
fn write_file(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The scenario `--scenario`/`--symbols`/`--md-rate` describe.
fn scenario_of(args: &RunArgs) -> anyhow::Result<Scenario> {
    let mut s = match &args.scenario {
        Some(path) => Scenario::load(path).context(ExitClass::Usage)?,
        None => Scenario::from_toml(DEFAULT_SCENARIO, std::path::Path::new("(default)"))
            .context("invariant: the default scenario is valid")?,
    };
    if let Some(n) = args.symbols {
        if n == 0 || n > crate::bench::scenario::MAX_SYMBOLS {
            return Err(anyhow::anyhow!("--symbols {n} must be within 1..=1000"))
                .context(ExitClass::Usage);
        }
        s = s.with_symbols(n);
    }
    if let Some(r) = args.md_rate {
        if r == 0 {
            return Err(anyhow::anyhow!("--md-rate must be > 0")).context(ExitClass::Usage);
        }
        s = s.with_rate(r);
    }
    Ok(s)
}

/// `kestrel bench run`.
pub fn run_bench(args: &RunArgs) -> anyhow::Result<()> {
    let scenario = scenario_of(args)?;
    let exe = std::env::current_exe().context("finding the kestrel executable")?;
    let opts = |s: Scenario| RunOptions {
        duration: Duration::from_secs(args.duration.unwrap_or(u64::from(s.duration_s)).max(1)),
        warmup: Duration::from_secs(args.warmup.unwrap_or(u64::from(s.warmup_s))),
        work_dir: std::env::temp_dir().join(format!(
            "kestrel-bench-{}-{}-{}",
            s.name,
            std::process::id(),
            s.md_rate_per_symbol
        )),
        scenario: s,
        sync_timeout: Duration::from_secs(args.sync_timeout),
        sample_every: Duration::from_secs(args.sample_every.max(1)),
        progress_every: Duration::from_secs(args.progress_every.max(1)),
        exe: exe.clone(),
        keep_work_dir: args.keep_work_dir,
        child_log_level: args.child_log_level.clone(),
    };
    let (report, md) = if args.ramp.is_empty() {
        let report = bench_run::run(&opts(scenario))?;
        let md = bench_run::markdown(&report);
        (report, md)
    } else {
        ramp(args, &scenario, &opts)?
    };
    report.save(&args.out)?;
    std::io::stdout().lock().write_all(md.as_bytes()).context("writing to stdout")?;
    if let Some(path) = &args.markdown {
        write_file(path, &md)?;
    }
    Ok(())
}

/// Whether a ramp step kept up: engine p99 within the limit, nothing dropped or resynced, and
/// at least 90 % of the offered messages processed.
fn sustained(f: &crate::bench::report::Figures, max_p99: f64) -> bool {
    let p99_ok = f.task_latency.is_some_and(|t| t.p99 <= max_p99);
    let kept_up = match (f.messages_per_s, f.offered_messages_per_s) {
        (Some(got), Some(offered)) => got >= 0.9 * offered,
        _ => false,
    };
    p99_ok && kept_up && f.dropped_events == Some(0) && f.stale_events == Some(0)
}

/// The stress ramp: one run per rate, up to the first that is not sustained.
fn ramp(
    args: &RunArgs,
    scenario: &Scenario,
    opts: &dyn Fn(Scenario) -> RunOptions,
) -> anyhow::Result<(BenchReport, String)> {
    let mut table = String::from(
        "| msg/s per symbol | offered msg/s | processed msg/s | engine task p99 (≤) | dropped | stale | bot CPU | sustained |\n|---|---|---|---|---|---|---|---|\n",
    );
    let mut best: Option<BenchReport> = None;
    let mut last: Option<BenchReport> = None;
    for &rate in &args.ramp {
        let r = bench_run::run(&opts(scenario.with_rate(rate)))?;
        let f = &r.figures;
        let ok = sustained(f, args.ramp_max_p99);
        let num = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{v:.0}"));
        table.push_str(&format!(
            "| {rate} | {} | {} | {} | {} | {} | {} | {} |\n",
            num(f.offered_messages_per_s),
            num(f.messages_per_s),
            f.task_latency.map_or("—".to_owned(), |t| format!("{:.0} µs", t.p99 * 1e6)),
            f.dropped_events.map_or("—".to_owned(), |v| v.to_string()),
            f.stale_events.map_or("—".to_owned(), |v| v.to_string()),
            f.bot_cpu_percent.map_or("—".to_owned(), |v| format!("{v:.0} %")),
            if ok { "yes" } else { "no" },
        ));
        if ok {
            best = Some(r);
        } else {
            last = Some(r);
            break;
        }
    }
    let mut md = String::new();
    match &best {
        Some(b) => {
            md.push_str(&bench_run::markdown(b));
            md.push_str(&format!(
                "\nMax sustained market-data rate: **{:.0} msg/s** ({} symbols × {} msg/s offered; \
                 engine task p99 ≤ {:.0} µs limit).\n\n",
                b.figures.messages_per_s.unwrap_or(0.0),
                b.scenario.symbols,
                b.scenario.md_rate_per_symbol,
                args.ramp_max_p99 * 1e6
            ));
        }
        None => md.push_str("\nNo ramp step was sustained.\n\n"),
    }
    md.push_str(&table);
    let report = best.or(last).context("the ramp ran no step")?;
    Ok((report, md))
}

/// `kestrel bench assert`.
pub fn assert(args: &AssertArgs) -> anyhow::Result<()> {
    let new = BenchReport::load(&args.report).context(ExitClass::Usage)?;
    let baseline = BenchReport::load(&args.baseline).context(ExitClass::Usage)?;
    let thresholds = Thresholds {
        max_task_p95_s: args.max_task_p95,
        max_cpu_percent: args.max_cpu,
        tolerance: args.tolerance,
        latency_tolerance: args.latency_tolerance,
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
            latency_tolerance: Thresholds::DEFAULT_LATENCY_TOLERANCE,
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
