//! The performance gate: compares a new [`Figures`] against absolute limits and a baseline,
//! and renders the comparison as a markdown table for a PR comment. Pure: no I/O.
//!
//! Checks, per metric:
//! - absolute: task latency p95 below [`Thresholds::max_task_p95_s`] and bot CPU below
//!   [`Thresholds::max_cpu_percent`] (a missing figure fails: the gate cannot vouch for it);
//! - relative: every throughput figure and the bot CPU may not regress by more than
//!   [`Thresholds::tolerance`] versus the baseline, every p95/p99 latency by more than
//!   [`Thresholds::latency_tolerance`] (see `bench/README.md` for the measured noise). Latency regressions smaller than
//!   [`Thresholds::latency_floor_s`] in absolute terms are ignored (microsecond tails on a shared
//!   CI runner jitter by more than any ratio). A metric the baseline lacks is reported as
//!   "no baseline" and passes; a gated metric the new report lacks fails;
//! - everything else (p50, max, RSS, FDs, drops) is shown for information only.

use std::fmt::Write as _;

use super::report::Figures;

/// Limits of the gate. [`Default`] is the documented CI gate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Absolute ceiling on `task_latency` p95, seconds (default 0.25 s, the earlier gate).
    pub max_task_p95_s: f64,
    /// Absolute ceiling on bot CPU, percent of one core (default 30 %).
    pub max_cpu_percent: f64,
    /// Allowed relative regression of throughput and CPU vs the baseline, as a fraction
    /// (default 0.5 = 50 %).
    pub tolerance: f64,
    /// Allowed relative regression of p95/p99 latencies vs the baseline, as a fraction
    /// (default 9.0: a latency must exceed 10× the baseline to fail).
    pub latency_tolerance: f64,
    /// Latency regressions below this many seconds are noise, not regressions (default 100 µs).
    pub latency_floor_s: f64,
}

impl Thresholds {
    /// Default absolute task-latency p95 ceiling, seconds.
    pub const DEFAULT_MAX_TASK_P95_S: f64 = 0.25;
    /// Default absolute CPU ceiling, percent.
    pub const DEFAULT_MAX_CPU_PERCENT: f64 = 30.0;
    /// Default relative tolerance of throughput and CPU (fraction). Measured over 10 seed runs
    /// at load average 6–9.5 (bench/README.md): signals/s and orders/s down to −27 % of the
    /// best run, CPU max/min 1.23; 0.5 leaves about twice that margin.
    pub const DEFAULT_TOLERANCE: f64 = 0.5;
    /// Default relative tolerance of p95/p99 latencies (fraction). Measured (bench/README.md):
    /// exact p95/p99 spread ×1.9 over 5 quiet runs, ×3.6 right after a build, up to 10× on a
    /// loaded 2-core machine; so only a regression beyond 10× fails the CI gate, and a dedicated
    /// quiet runner should pass `--latency-tolerance 2`.
    pub const DEFAULT_LATENCY_TOLERANCE: f64 = 9.0;
    /// Default latency noise floor, seconds.
    pub const DEFAULT_LATENCY_FLOOR_S: f64 = 0.000_1;
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_task_p95_s: Self::DEFAULT_MAX_TASK_P95_S,
            max_cpu_percent: Self::DEFAULT_MAX_CPU_PERCENT,
            tolerance: Self::DEFAULT_TOLERANCE,
            latency_tolerance: Self::DEFAULT_LATENCY_TOLERANCE,
            latency_floor_s: Self::DEFAULT_LATENCY_FLOOR_S,
        }
    }
}

/// How a metric's value is displayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Seconds (shown as µs / ms / s).
    Seconds,
    /// Events per second.
    PerSecond,
    /// Percent of one core.
    Percent,
    /// Bytes (shown as MiB).
    Bytes,
    /// A plain count.
    Count,
}

/// Which way is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Better {
    /// Latencies, CPU, memory.
    Lower,
    /// Throughput.
    Higher,
}

/// One metric the gate knows about.
#[derive(Debug, Clone, Copy)]
struct MetricDef {
    /// Row label.
    name: &'static str,
    /// Display unit.
    unit: Unit,
    /// Direction of improvement.
    better: Better,
    /// Whether a regression vs the baseline beyond the tolerance fails the gate.
    relative: bool,
    /// The absolute ceiling, if the metric has one.
    absolute: Option<fn(&Thresholds) -> f64>,
    /// Reads the metric out of the figures.
    get: fn(&Figures) -> Option<f64>,
}

/// `u64` figure as `f64` for comparison (exact below 2^53, far beyond any count here).
fn count(v: Option<u64>) -> Option<f64> {
    v.map(|v| v as f64)
}

/// Every metric, in table order.
const METRICS: &[MetricDef] = &[
    lat("binance_ws_latency p50", false, |f| f.binance_ws_latency.map(|p| p.p50)),
    lat("binance_ws_latency p95", true, |f| f.binance_ws_latency.map(|p| p.p95)),
    lat("binance_ws_latency p99", true, |f| f.binance_ws_latency.map(|p| p.p99)),
    lat("binance_ws_latency max", false, |f| f.binance_ws_latency.map(|p| p.max)),
    lat("task_latency p50", false, |f| f.task_latency.map(|p| p.p50)),
    MetricDef {
        absolute: Some(|t| t.max_task_p95_s),
        ..lat("task_latency p95", true, |f| f.task_latency.map(|p| p.p95))
    },
    lat("task_latency p99", true, |f| f.task_latency.map(|p| p.p99)),
    lat("task_latency max", false, |f| f.task_latency.map(|p| p.max)),
    lat("tick_to_order p99", true, |f| f.tick_to_order_p99_s),
    lat("order_roundtrip p95", true, |f| f.order_roundtrip_p95_s),
    rate("signals/s", |f| f.signals_per_s),
    rate("orders/s", |f| f.orders_per_s),
    rate("messages/s", |f| f.messages_per_s),
    info("dropped events", Unit::Count, |f| count(f.dropped_events)),
    info("stale events", Unit::Count, |f| count(f.stale_events)),
    MetricDef {
        absolute: Some(|t| t.max_cpu_percent),
        relative: true,
        ..info("bot CPU", Unit::Percent, |f| f.bot_cpu_percent)
    },
    info("peak RSS", Unit::Bytes, |f| count(f.peak_rss_bytes)),
    info("final RSS", Unit::Bytes, |f| count(f.final_rss_bytes)),
    info("open FDs (start)", Unit::Count, |f| count(f.open_fds_start)),
    info("open FDs (end)", Unit::Count, |f| count(f.open_fds_end)),
];

/// A latency metric (lower is better).
const fn lat(name: &'static str, relative: bool, get: fn(&Figures) -> Option<f64>) -> MetricDef {
    MetricDef { name, unit: Unit::Seconds, better: Better::Lower, relative, absolute: None, get }
}

/// A throughput metric (higher is better, relative-gated).
const fn rate(name: &'static str, get: fn(&Figures) -> Option<f64>) -> MetricDef {
    MetricDef {
        name,
        unit: Unit::PerSecond,
        better: Better::Higher,
        relative: true,
        absolute: None,
        get,
    }
}

/// An informational metric (lower is better, not gated unless `absolute` is set).
const fn info(name: &'static str, unit: Unit, get: fn(&Figures) -> Option<f64>) -> MetricDef {
    MetricDef { name, unit, better: Better::Lower, relative: false, absolute: None, get }
}

/// The outcome of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Within every limit that applies.
    Pass,
    /// Over a limit; the reasons are human-readable.
    Fail(Vec<String>),
    /// Shown for information; not gated.
    Info,
    /// Gated relatively but the baseline lacks it (absolute limits, if any, passed).
    NoBaseline,
    /// Neither gated nor measured in the new report.
    NotMeasured,
}

impl Verdict {
    /// Whether this row fails the gate.
    pub fn is_fail(&self) -> bool {
        matches!(self, Verdict::Fail(_))
    }
}

/// One row of the comparison table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Metric label, e.g. `task_latency p95`.
    pub metric: &'static str,
    /// Display unit.
    pub unit: Unit,
    /// The baseline's value, if it has one.
    pub baseline: Option<f64>,
    /// The new value, if measured.
    pub new: Option<f64>,
    /// `new / baseline` when both exist and the baseline is non-zero.
    pub ratio: Option<f64>,
    /// The outcome.
    pub verdict: Verdict,
}

/// The full comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The limits used (printed under the table).
    pub thresholds: Thresholds,
    /// One row per known metric, in a fixed order.
    pub rows: Vec<Row>,
}

/// Compares `new` against the absolute limits and `baseline`.
pub fn compare(new: &Figures, baseline: &Figures, t: &Thresholds) -> Comparison {
    let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
    let rows = METRICS
        .iter()
        .map(|m| {
            let new_v = finite((m.get)(new));
            let base_v = finite((m.get)(baseline));
            let ratio = match (new_v, base_v) {
                (Some(n), Some(b)) if b != 0.0 => Some(n / b),
                _ => None,
            };
            let verdict = judge(m, new_v, base_v, t);
            Row { metric: m.name, unit: m.unit, baseline: base_v, new: new_v, ratio, verdict }
        })
        .collect();
    Comparison { thresholds: *t, rows }
}

/// Decides one row.
fn judge(m: &MetricDef, new: Option<f64>, base: Option<f64>, t: &Thresholds) -> Verdict {
    let gated = m.absolute.is_some() || (m.relative && base.is_some());
    let Some(n) = new else {
        return if gated {
            Verdict::Fail(vec!["missing from the new report".to_owned()])
        } else {
            Verdict::NotMeasured
        };
    };
    let mut reasons = Vec::new();
    if let Some(limit) = m.absolute.map(|f| f(t)) {
        if n >= limit {
            reasons.push(format!("≥ limit {}", fmt_value(m.unit, limit)));
        }
    }
    if m.relative {
        if let Some(b) = base {
            let tol = if m.unit == Unit::Seconds { t.latency_tolerance } else { t.tolerance };
            let regressed = match m.better {
                Better::Lower => n > b * (1.0 + tol) && n - b > latency_floor(m, t),
                Better::Higher => n < b * (1.0 - tol),
            };
            if regressed {
                let pct = if b == 0.0 { f64::INFINITY } else { (n / b - 1.0) * 100.0 };
                reasons.push(format!("{pct:+.0} % vs baseline (tolerance {:.0} %)", tol * 100.0));
            }
        }
    }
    match (reasons.is_empty(), m.relative || m.absolute.is_some(), base.is_some()) {
        (false, _, _) => Verdict::Fail(reasons),
        (true, false, _) => Verdict::Info,
        (true, true, false) if m.relative => Verdict::NoBaseline,
        (true, true, _) => Verdict::Pass,
    }
}

/// The noise floor applies to latencies only.
fn latency_floor(m: &MetricDef, t: &Thresholds) -> f64 {
    if m.unit == Unit::Seconds {
        t.latency_floor_s
    } else {
        0.0
    }
}

impl Comparison {
    /// Whether every row passed.
    pub fn passed(&self) -> bool {
        !self.rows.iter().any(|r| r.verdict.is_fail())
    }

    /// The rows that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.verdict.is_fail())
    }

    /// The markdown comparison (heading, table, limits), for stdout and the PR comment.
    pub fn to_markdown(&self) -> String {
        let t = &self.thresholds;
        let mut s = String::new();
        let status = if self.passed() { "PASS" } else { "FAIL" };
        let fails = self.failures().count();
        // Writing to a String cannot fail.
        let _ = writeln!(s, "### kestrel perf gate: {status}");
        if fails > 0 {
            let _ = writeln!(s, "\n{fails} metric(s) over a limit.");
        }
        s.push_str("\n| metric | baseline | new | ratio | verdict |\n|---|---:|---:|---:|---|\n");
        for r in &self.rows {
            let opt = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |v| fmt_value(r.unit, v));
            let ratio = r.ratio.map_or_else(|| "—".to_owned(), |x| format!("×{x:.2}"));
            let verdict = match &r.verdict {
                Verdict::Pass => "pass".to_owned(),
                Verdict::Fail(why) => format!("**FAIL**: {}", why.join("; ")),
                Verdict::Info => "info".to_owned(),
                Verdict::NoBaseline => "no baseline".to_owned(),
                Verdict::NotMeasured => "not measured".to_owned(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {ratio} | {verdict} |",
                r.metric,
                opt(r.baseline),
                opt(r.new)
            );
        }
        let _ = writeln!(
            s,
            "\nLimits: task_latency p95 < {}, bot CPU < {}; throughput and CPU may regress at \
             most {:.0} % vs the baseline, p95/p99 latencies at most {:.0} % (latency changes \
             under {} ignored).",
            fmt_value(Unit::Seconds, t.max_task_p95_s),
            fmt_value(Unit::Percent, t.max_cpu_percent),
            t.tolerance * 100.0,
            t.latency_tolerance * 100.0,
            fmt_value(Unit::Seconds, t.latency_floor_s),
        );
        s
    }
}

/// Human units: seconds as µs/ms/s, bytes as MiB.
fn fmt_value(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Seconds if v.abs() < 1e-3 => format!("{:.1} µs", v * 1e6),
        Unit::Seconds if v.abs() < 1.0 => format!("{:.2} ms", v * 1e3),
        Unit::Seconds => format!("{v:.3} s"),
        Unit::PerSecond => format!("{v:.0}/s"),
        Unit::Percent => format!("{v:.1} %"),
        Unit::Bytes => format!("{:.1} MiB", v / (1024.0 * 1024.0)),
        Unit::Count => format!("{v:.0}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::{sample, Percentiles};

    fn row<'a>(c: &'a Comparison, metric: &str) -> &'a Row {
        c.rows.iter().find(|r| r.metric == metric).unwrap()
    }

    fn failing(c: &Comparison) -> Vec<&'static str> {
        c.failures().map(|r| r.metric).collect()
    }

    #[test]
    fn table_of_cases() {
        let base = sample().figures;
        let t = Thresholds::default();
        type Edit = fn(&mut Figures);
        let cases: &[(&str, Edit, Edit, &[&str])] = &[
            // TC0: identical run passes.
            ("identical", |_| {}, |_| {}, &[]),
            // TC1: task p95 over the absolute 0.25 s limit fails even with the same baseline.
            (
                "task p95 absolute",
                |_| {},
                |f| {
                    f.task_latency = Some(Percentiles { p50: 0.1, p95: 0.3, p99: 0.3, max: 0.4 });
                },
                &["task_latency p95", "task_latency p99"],
            ),
            // TC2: CPU over 30 % fails (absolute limit; also far above the baseline).
            ("cpu absolute", |_| {}, |f| f.bot_cpu_percent = Some(35.0), &["bot CPU"]),
            // TC3: CPU 29 % vs baseline 4 % is under the absolute limit but 7× the baseline.
            ("cpu relative", |_| {}, |f| f.bot_cpu_percent = Some(29.0), &["bot CPU"]),
            // TC3b: CPU +40 % is within the 50 % tolerance.
            ("cpu within tolerance", |_| {}, |f| f.bot_cpu_percent = Some(5.6), &[]),
            // TC4: ws p99 grows 12× (1 ms → 12 ms, > floor) → relative regression.
            (
                "ws p99 regression",
                |_| {},
                |f| f.binance_ws_latency.as_mut().unwrap().p99 = 0.012,
                &["binance_ws_latency p99"],
            ),
            // TC4b: ws p99 grows 2.5× (one bucket step) → within the latency tolerance.
            (
                "ws p99 one bucket",
                |_| {},
                |f| f.binance_ws_latency.as_mut().unwrap().p99 = 0.002_5,
                &[],
            ),
            // TC5: +20 % is within the 25 % tolerance.
            ("within tolerance", |_| {}, |f| f.order_roundtrip_p95_s = Some(0.000_9 * 1.2), &[]),
            // TC6: task p99 doubles but only by 50 µs (< 100 µs floor) → noise, passes.
            ("under noise floor", |_| {}, |f| f.task_latency.as_mut().unwrap().p99 = 0.000_1, &[]),
            // TC7: throughput drops 60 % → fails; 30 % passes.
            ("throughput drop", |_| {}, |f| f.signals_per_s = Some(120.0), &["signals/s"]),
            ("throughput dip", |_| {}, |f| f.signals_per_s = Some(210.0), &[]),
            // TC8: improvements pass (lower latency, higher throughput).
            (
                "improvement",
                |_| {},
                |f| {
                    f.binance_ws_latency.as_mut().unwrap().p99 = 0.000_1;
                    f.messages_per_s = Some(10_000.0);
                },
                &[],
            ),
            // TC9: baseline lacks a metric → no baseline, passes.
            (
                "baseline missing metric",
                |b| b.orders_per_s = None,
                |f| f.orders_per_s = Some(1.0),
                &[],
            ),
            // TC10: new report lacks a relative-gated metric the baseline has → fails.
            ("new missing gated metric", |_| {}, |f| f.orders_per_s = None, &["orders/s"]),
            // TC11: new report lacks an absolute-gated metric even with no baseline → fails.
            (
                "new missing absolute metric",
                |b| b.bot_cpu_percent = None,
                |f| f.bot_cpu_percent = None,
                &["bot CPU"],
            ),
            // TC12: info-only metrics may grow freely.
            ("info grows", |_| {}, |f| f.peak_rss_bytes = Some(1 << 40), &[]),
            // TC13: NaN in the new report is treated as missing.
            ("nan", |_| {}, |f| f.signals_per_s = Some(f64::NAN), &["signals/s"]),
        ];
        for (name, edit_base, edit_new, want) in cases {
            let mut b = base.clone();
            edit_base(&mut b);
            let mut n = base.clone();
            edit_new(&mut n);
            let c = compare(&n, &b, &t);
            assert_eq!(failing(&c), *want, "case {name}");
            assert_eq!(c.passed(), want.is_empty(), "case {name}");
        }
    }

    #[test]
    fn empty_baseline_marks_relative_rows_no_baseline() {
        let c = compare(&sample().figures, &Figures::default(), &Thresholds::default());
        assert!(c.passed());
        assert_eq!(row(&c, "signals/s").verdict, Verdict::NoBaseline);
        assert_eq!(row(&c, "task_latency p95").verdict, Verdict::NoBaseline);
        // CPU is relative-gated too: no baseline, but its absolute limit was checked.
        assert_eq!(row(&c, "bot CPU").verdict, Verdict::NoBaseline);
        assert_eq!(row(&c, "peak RSS").verdict, Verdict::Info);
        assert_eq!(row(&c, "signals/s").ratio, None);
    }

    #[test]
    fn tolerance_is_configurable() {
        let base = sample().figures;
        let mut n = base.clone();
        n.signals_per_s = Some(240.0); // −20 %
        n.task_latency.as_mut().unwrap().p99 = 0.000_6; // 12×, +550 µs
        let strict = Thresholds { tolerance: 0.1, ..Thresholds::default() };
        assert_eq!(failing(&compare(&n, &base, &strict)), ["task_latency p99", "signals/s"]);
        let lax = Thresholds { latency_tolerance: 19.0, ..Thresholds::default() };
        assert!(compare(&n, &base, &lax).passed());
    }

    #[test]
    fn zero_baseline_has_no_ratio_and_regresses_past_floor() {
        let mut base = sample().figures;
        base.order_roundtrip_p95_s = Some(0.0);
        let mut n = base.clone();
        n.order_roundtrip_p95_s = Some(0.01);
        let c = compare(&n, &base, &Thresholds::default());
        let r = row(&c, "order_roundtrip p95");
        assert_eq!(r.ratio, None);
        assert!(r.verdict.is_fail());
    }

    #[test]
    fn markdown_table_shape() {
        let base = sample().figures;
        let mut n = base.clone();
        n.bot_cpu_percent = Some(50.0);
        let md = compare(&n, &base, &Thresholds::default()).to_markdown();
        assert!(md.starts_with("### kestrel perf gate: FAIL\n"), "{md}");
        assert!(md.contains("| metric | baseline | new | ratio | verdict |"), "{md}");
        assert!(
            md.contains(
                "| bot CPU | 4.0 % | 50.0 % | ×12.50 | **FAIL**: ≥ limit 30.0 %; +1150 % vs \
                 baseline (tolerance 50 %) |"
            ),
            "{md}"
        );
        assert!(md.contains("| task_latency p95 | 20.0 µs | 20.0 µs | ×1.00 | pass |"), "{md}");
        assert!(md.contains("| peak RSS | 12.0 MiB | 12.0 MiB | ×1.00 | info |"), "{md}");
        assert!(md.contains("at most 50 % vs the baseline, p95/p99 latencies at most 900 %"));
        // One header, one separator, one line per metric.
        assert_eq!(md.lines().filter(|l| l.starts_with('|')).count(), METRICS.len() + 2);
    }

    #[test]
    fn value_formatting() {
        assert_eq!(fmt_value(Unit::Seconds, 0.000_012_3), "12.3 µs");
        assert_eq!(fmt_value(Unit::Seconds, 0.25), "250.00 ms");
        assert_eq!(fmt_value(Unit::Seconds, 1.5), "1.500 s");
        assert_eq!(fmt_value(Unit::PerSecond, 497.4), "497/s");
        assert_eq!(fmt_value(Unit::Bytes, 3.0 * 1024.0 * 1024.0), "3.0 MiB");
    }
}
