//! The benchmark report: the versioned JSON document `kestrel bench run` writes and
//! `kestrel bench assert` reads (one for the new run, one committed as the baseline).
//!
//! Every figure is optional: a run that could not measure something (e.g. no orders in a
//! market-data-only scenario) leaves it out rather than writing a zero that would look like a
//! reading, and the gate reports it as missing. Latencies are in seconds, rates per second of
//! measured (post-warm-up) wall time. Floats are fine here: nothing in a report is money.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The report schema this build writes and reads. Bump it when a field changes meaning or is
/// removed; adding an optional figure does not need a bump (old reports simply lack it).
pub const SCHEMA_VERSION: u32 = 1;

/// One benchmark run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchReport {
    /// [`SCHEMA_VERSION`] of the writer; [`BenchReport::load`] refuses any other value so a
    /// renamed figure can never be compared against the wrong baseline silently.
    pub schema_version: u32,
    /// Where it ran: figures are only comparable between similar machines.
    pub machine: MachineInfo,
    /// `git rev-parse HEAD` of the build (or `unknown`), to tell which commit a baseline is.
    pub git_revision: String,
    /// What was run.
    pub scenario: ScenarioInfo,
    /// The measurements.
    pub figures: Figures,
    /// Bot RSS and open FDs sampled through the measured window (`--sample-every`), to show
    /// whether they stay flat.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<ResourceSample>,
    /// Where the latency percentiles come from: `hdr` (the bot's `GET /latency`, HDR histograms within 1 %) or
    /// `buckets` (upper bounds of the Prometheus histogram buckets). Absent in older reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_source: Option<String>,
}

/// One periodic reading of the bot process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSample {
    /// Seconds since the measured window started.
    pub t_s: f64,
    /// Resident set, bytes.
    pub rss_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// Anonymous resident memory (`RssAnon`), bytes: `rss_bytes` without the mapped files
    /// (the executable's code pages); absent in reports written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anon_rss_bytes: Option<u64>,
}

/// The machine a report was produced on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineInfo {
    /// `model name` from `/proc/cpuinfo` (or `unknown`).
    pub cpu_model: String,
    /// Logical CPUs available to the process.
    pub cores: u32,
    /// Kernel release from `/proc/sys/kernel/osrelease` (or `unknown`).
    pub kernel: String,
    /// 1/5/15-minute load averages (`/proc/loadavg`) when the run ended: on a shared machine
    /// they say how much the figures were disturbed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_average: Option<[f64; 3]>,
}

impl MachineInfo {
    /// Reads this machine's description; fields that cannot be read become `unknown` / 0 —
    /// a report is still useful without them.
    pub fn detect() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| cpu_model_from_cpuinfo(&t))
            .unwrap_or_else(|| "unknown".to_owned());
        let cores = std::thread::available_parallelism()
            .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
            .unwrap_or(0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        MachineInfo { cpu_model, cores, kernel, load_average: read_load_average() }
    }
}

/// The three load averages of `/proc/loadavg`.
pub fn read_load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = text.split_ascii_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

/// The first `model name : …` value of a `/proc/cpuinfo` text.
fn cpu_model_from_cpuinfo(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

/// The scenario a report measured (copied from the scenario file so a report stands alone).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioInfo {
    /// Scenario name (`seed`, `burst`, `wide`, `stress`).
    pub name: String,
    /// Number of symbols streamed.
    pub symbols: u32,
    /// Market-data messages per second per symbol offered by the simulator.
    pub md_rate_per_symbol: u32,
    /// Measured seconds (after warm-up).
    pub duration_s: f64,
    /// Seconds discarded at the start.
    pub warmup_s: f64,
    /// The per-symbol split of `md_rate_per_symbol` the simulator was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rates: Option<StreamRates>,
}

/// Per-symbol message rates by stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamRates {
    /// Depth diffs per second.
    pub depth_per_s: u32,
    /// Trades per second.
    pub trades_per_s: u32,
    /// bookTicker events per second.
    pub book_ticker_per_s: u32,
}

impl From<(u32, u32, u32)> for StreamRates {
    fn from((depth_per_s, trades_per_s, book_ticker_per_s): (u32, u32, u32)) -> Self {
        StreamRates { depth_per_s, trades_per_s, book_ticker_per_s }
    }
}

/// Latency percentiles of one histogram, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile (the absolute gate uses task latency's).
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

impl Percentiles {
    /// Percentiles of an HDR histogram recorded in nanoseconds, in seconds; `None` when empty.
    pub fn from_hdr_nanos(h: &hdrhistogram::Histogram<u64>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        let secs = |ns: u64| ns as f64 / 1e9;
        Some(Percentiles {
            p50: secs(h.value_at_quantile(0.50)),
            p95: secs(h.value_at_quantile(0.95)),
            p99: secs(h.value_at_quantile(0.99)),
            max: secs(h.max()),
        })
    }
}

/// The measurements of one run. `None` = not measured in this run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figures {
    /// `binance_ws_latency_seconds`: local receive time − exchange event time `E`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binance_ws_latency: Option<Percentiles>,
    /// `task_latency_seconds`: event received → signal/order decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_latency: Option<Percentiles>,
    /// Market-data tick received → order handed to the gateway, 99th percentile, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick_to_order_p99_s: Option<f64>,
    /// Strategy signals decided per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signals_per_s: Option<f64>,
    /// Orders sent per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orders_per_s: Option<f64>,
    /// `order_roundtrip_seconds` (sent → acknowledged), 95th percentile, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_roundtrip_p95_s: Option<f64>,
    /// Market-data messages processed per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_s: Option<f64>,
    /// Market-data messages per second the simulator was asked to publish to the bot's streams
    /// (symbols × depth and trade rates), for comparison with `messages_per_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_messages_per_s: Option<f64>,
    /// Events dropped (queues full) during the measured window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_events: Option<u64>,
    /// Events discarded as stale during the measured window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_events: Option<u64>,
    /// Bot CPU: (user + system CPU seconds) / wall seconds × 100, over the measured window.
    /// 100 = one core fully busy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_cpu_percent: Option<f64>,
    /// Peak resident set (`VmHWM`), bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
    /// Resident set at the end (`VmRSS`), bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_rss_bytes: Option<u64>,
    /// Open file descriptors after warm-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_fds_start: Option<u64>,
    /// Open file descriptors at the end (compare with the start: a leak shows as growth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_fds_end: Option<u64>,
}

/// Why a report could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be read or written.
    #[error("{op} {path}")]
    Io {
        /// `reading` / `writing`.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a report (bad JSON or wrong shape).
    #[error("{path} is not a benchmark report")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON error, with the offending field's path.
        #[source]
        source: serde_path_to_error::Error<serde_json::Error>,
    },
    /// The report was written by a different schema version.
    #[error(
        "{path} has schema_version {found}, this kestrel reads {expected} \
         (regenerate the report or refresh the baseline, see bench/README.md)"
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// [`SCHEMA_VERSION`].
        expected: u32,
    },
}

impl BenchReport {
    /// Parses a report from JSON text; `path` only labels errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self, ReportError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let report: BenchReport = serde_path_to_error::deserialize(de)
            .map_err(|source| ReportError::Parse { path: path.to_owned(), source })?;
        if report.schema_version != SCHEMA_VERSION {
            return Err(ReportError::Version {
                path: path.to_owned(),
                found: report.schema_version,
                expected: SCHEMA_VERSION,
            });
        }
        Ok(report)
    }

    /// Reads and validates a report file.
    pub fn load(path: &Path) -> Result<Self, ReportError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
            op: "reading",
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&text, path)
    }

    /// Pretty JSON with a trailing newline (diff-friendly for the committed baseline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self)
            .expect("invariant: a report is plain data and always serializes");
        s.push('\n');
        s
    }

    /// Writes the report, creating parent directories.
    pub fn save(&self, path: &Path) -> Result<(), ReportError> {
        let io = |source| ReportError::Io { op: "writing", path: path.to_owned(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(path, self.to_json()).map_err(io)
    }
}

#[cfg(test)]
pub(crate) use tests::sample;

#[cfg(test)]
mod tests {
    use super::*;

    /// A complete report used by these tests and the gate's.
    pub(crate) fn sample() -> BenchReport {
        BenchReport {
            schema_version: SCHEMA_VERSION,
            machine: MachineInfo {
                cpu_model: "Test CPU".into(),
                cores: 2,
                kernel: "6.1".into(),
                load_average: None,
            },
            git_revision: "abc123".into(),
            scenario: ScenarioInfo {
                name: "seed".into(),
                symbols: 3,
                md_rate_per_symbol: 100,
                duration_s: 60.0,
                warmup_s: 5.0,
                rates: None,
            },
            figures: Figures {
                binance_ws_latency: Some(Percentiles {
                    p50: 0.000_2,
                    p95: 0.000_5,
                    p99: 0.001,
                    max: 0.004,
                }),
                task_latency: Some(Percentiles {
                    p50: 0.000_01,
                    p95: 0.000_02,
                    p99: 0.000_05,
                    max: 0.000_5,
                }),
                tick_to_order_p99_s: Some(0.000_08),
                signals_per_s: Some(300.0),
                orders_per_s: Some(20.0),
                order_roundtrip_p95_s: Some(0.000_9),
                messages_per_s: Some(300.0),
                offered_messages_per_s: None,
                dropped_events: Some(0),
                stale_events: Some(0),
                bot_cpu_percent: Some(4.0),
                peak_rss_bytes: Some(12 << 20),
                final_rss_bytes: Some(11 << 20),
                open_fds_start: Some(20),
                open_fds_end: Some(20),
            },
            samples: Vec::new(),
            latency_source: None,
        }
    }

    #[test]
    fn json_round_trip() {
        let r = sample();
        let back = BenchReport::from_json(&r.to_json(), Path::new("x.json")).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn missing_figures_are_omitted_and_read_back_as_none() {
        let mut r = sample();
        r.figures = Figures::default();
        let json = r.to_json();
        assert!(!json.contains("task_latency"), "{json}");
        let back = BenchReport::from_json(&json, Path::new("x.json")).unwrap();
        assert_eq!(back.figures, Figures::default());
    }

    #[test]
    fn other_schema_version_is_refused() {
        let mut r = sample();
        r.schema_version = SCHEMA_VERSION + 1;
        let err = BenchReport::from_json(&r.to_json(), Path::new("b.json")).unwrap_err();
        assert!(matches!(err, ReportError::Version { found, .. } if found == SCHEMA_VERSION + 1));
        assert!(err.to_string().contains("bench/README.md"), "{err}");
    }

    #[test]
    fn unknown_field_is_a_parse_error_naming_it() {
        let text = sample().to_json().replace("\"signals_per_s\"", "\"signals_per_sec\"");
        let err = BenchReport::from_json(&text, Path::new("b.json")).unwrap_err();
        let ReportError::Parse { source, .. } = &err else { panic!("{err:?}") };
        assert!(source.path().to_string().contains("figures"), "{source}");
    }

    #[test]
    fn percentiles_from_hdr() {
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 2).unwrap();
        assert_eq!(Percentiles::from_hdr_nanos(&h), None);
        for us in 1..=1000u64 {
            h.record(us * 1000).unwrap();
        }
        let p = Percentiles::from_hdr_nanos(&h).unwrap();
        // 2 significant digits (the bot's latency book): within 1 % of the exact order statistic.
        for (got, want) in [(p.p50, 500e-6), (p.p95, 950e-6), (p.p99, 990e-6), (p.max, 1000e-6)] {
            assert!((got - want).abs() <= want * 1e-2, "{got} vs {want}");
        }
    }

    #[test]
    fn cpu_model_is_read_from_cpuinfo() {
        let text = "processor\t: 0\nvendor_id\t: X\nmodel name\t: Fancy CPU @ 3GHz\n";
        assert_eq!(cpu_model_from_cpuinfo(text).as_deref(), Some("Fancy CPU @ 3GHz"));
        assert_eq!(cpu_model_from_cpuinfo("processor : 0\n"), None);
    }

    #[test]
    fn save_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/new.json");
        sample().save(&path).unwrap();
        assert_eq!(BenchReport::load(&path).unwrap(), sample());
    }
}
