//! Process metrics (RSS, open FDs, CPU seconds, threads) read from `/proc/self` at scrape time.
//!
//! Uses the standard names every Prometheus client exports, so stock dashboards work:
//! `process_resident_memory_bytes`, `process_open_fds`, `process_cpu_seconds_total`,
//! `process_threads`. Nothing is sampled between scrapes; on a non-Linux host (no `/proc`)
//! the collector emits nothing rather than zeros that would look like real readings.

use std::path::{Path, PathBuf};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second in `/proc/<pid>/stat` times (`USER_HZ`). The kernel fixes it at 100
/// for user space on every architecture Linux exposes `/proc` on (it is `sysconf(_SC_CLK_TCK)`,
/// which we cannot call without `unsafe`/libc).
const USER_HZ: f64 = 100.0;

/// One reading of the process's resources.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessSample {
    /// Resident set size in bytes (`VmRSS`).
    pub resident_memory_bytes: u64,
    /// User + system CPU time in seconds.
    pub cpu_seconds: f64,
    /// OS threads.
    pub threads: u64,
    /// Open file descriptors (entries in `/proc/self/fd`).
    pub open_fds: u64,
}

/// Why `/proc` could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// A `/proc` file or directory could not be read.
    #[error("reading {path}")]
    Io {
        /// The path read.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A `/proc` file did not have the expected shape.
    #[error("unexpected format in {file}: {what}")]
    Format {
        /// Which file (`stat` / `status`).
        file: &'static str,
        /// What was missing.
        what: &'static str,
    },
}

/// Reads a [`ProcessSample`] from a `/proc/<pid>` directory (`/proc/self` in production).
pub fn read_sample(proc_dir: &Path) -> Result<ProcessSample, ProcError> {
    let read = |name: &str| {
        let path = proc_dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| ProcError::Io { path, source })
    };
    let stat = parse_stat(&read("stat")?)?;
    let status = parse_status(&read("status")?)?;
    let fd_dir = proc_dir.join("fd");
    let open_fds = std::fs::read_dir(&fd_dir)
        .map_err(|source| ProcError::Io { path: fd_dir.clone(), source })?
        .count() as u64;
    Ok(ProcessSample {
        resident_memory_bytes: status.rss_bytes,
        cpu_seconds: stat.cpu_ticks as f64 / USER_HZ,
        threads: status.threads,
        open_fds,
    })
}

/// Fields taken from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    /// `utime + stime` in clock ticks.
    cpu_ticks: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may contain
/// spaces or `)`, so fields are counted from the *last* `)`: `utime` and `stime` are fields 14
/// and 15 of proc(5), i.e. the 12th and 13th after the name.
fn parse_stat(text: &str) -> Result<Stat, ProcError> {
    const FMT: fn(&'static str) -> ProcError = |what| ProcError::Format { file: "stat", what };
    let after_name =
        text.rfind(')').map(|i| &text[i + 1..]).ok_or(FMT("no ')' after the command name"))?;
    let mut fields = after_name.split_ascii_whitespace().skip(11);
    let mut next_u64 = |what| fields.next().and_then(|f| f.parse::<u64>().ok()).ok_or(FMT(what));
    let utime = next_u64("utime")?;
    let stime = next_u64("stime")?;
    Ok(Stat { cpu_ticks: utime.saturating_add(stime) })
}

/// Fields taken from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Status {
    /// `VmRSS` in bytes.
    rss_bytes: u64,
    /// `Threads`.
    threads: u64,
}

/// Parses `VmRSS:  1234 kB` and `Threads:  5` out of `/proc/<pid>/status`.
fn parse_status(text: &str) -> Result<Status, ProcError> {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_ascii_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let rss_kib = field("VmRSS:").ok_or(ProcError::Format { file: "status", what: "VmRSS" })?;
    let threads = field("Threads:").ok_or(ProcError::Format { file: "status", what: "Threads" })?;
    Ok(Status { rss_bytes: rss_kib.saturating_mul(1024), threads })
}

/// A [`Collector`] that reads `/proc/self` on each scrape.
#[derive(Debug)]
pub struct ProcessCollector {
    /// `/proc/self` in production; a fixture directory in tests.
    proc_dir: PathBuf,
}

impl Default for ProcessCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessCollector {
    /// Collects for the current process.
    pub fn new() -> Self {
        Self::with_proc_dir(PathBuf::from("/proc/self"))
    }

    /// Collects from another `/proc/<pid>`-shaped directory.
    pub fn with_proc_dir(proc_dir: PathBuf) -> Self {
        Self { proc_dir }
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sample = match read_sample(&self.proc_dir) {
            Ok(s) => s,
            Err(e) => {
                // Missing /proc (non-Linux) is expected; log at debug so scrapes stay quiet.
                tracing::debug!(error = %e, "process metrics unavailable");
                return Ok(());
            }
        };
        // u64 → i64 gauges: these counts are far below i64::MAX; saturate rather than wrap.
        let gauge = |v: u64| ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
        let rss = gauge(sample.resident_memory_bytes);
        rss.encode(encoder.encode_descriptor(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            None,
            rss.metric_type(),
        )?)?;
        let fds = gauge(sample.open_fds);
        fds.encode(encoder.encode_descriptor(
            "process_open_fds",
            "Number of open file descriptors",
            None,
            fds.metric_type(),
        )?)?;
        let cpu = ConstCounter::new(sample.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let threads = gauge(sample.threads);
        threads.encode(encoder.encode_descriptor(
            "process_threads",
            "Number of OS threads in the process",
            None,
            threads.metric_type(),
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_stat_counts_fields_after_last_paren() {
        // TC0: plain name; TC1: name with spaces and ')' inside.
        let tail = "S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 7 0 100 1000 300";
        for name in ["kestrel", "we ird) name"] {
            let text = format!("4242 ({name}) {tail}");
            assert_eq!(parse_stat(&text).unwrap(), Stat { cpu_ticks: 300 }, "{name}");
        }
        // TC2: truncated → error, not panic.
        assert!(matches!(parse_stat("1 (x) S 1 2"), Err(ProcError::Format { what: "utime", .. })));
        assert!(parse_stat("garbage").is_err());
    }

    #[test]
    fn parse_status_reads_rss_and_threads() {
        let text = "Name:\tkestrel\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t7\n";
        assert_eq!(parse_status(text).unwrap(), Status { rss_bytes: 5120 * 1024, threads: 7 });
        assert!(matches!(
            parse_status("Threads: 3\n"),
            Err(ProcError::Format { what: "VmRSS", .. })
        ));
    }

    #[test]
    fn read_sample_from_fixture_dir() {
        let dir = std::env::temp_dir().join(format!("kestrel-proc-{}", std::process::id()));
        let fd = dir.join("fd");
        std::fs::create_dir_all(&fd).unwrap();
        std::fs::write(
            dir.join("stat"),
            "1 (k) S 1 2 3 4 5 6 7 8 9 10 123 77 0 0 20 0 3 0 100 1000 300\n",
        )
        .unwrap();
        std::fs::write(dir.join("status"), "VmRSS:\t 2048 kB\nThreads:\t3\n").unwrap();
        for i in 0..4 {
            std::fs::write(fd.join(i.to_string()), "").unwrap();
        }
        let s = read_sample(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            s,
            ProcessSample {
                resident_memory_bytes: 2048 * 1024,
                cpu_seconds: 2.0,
                threads: 3,
                open_fds: 4,
            }
        );
    }

    #[test]
    fn read_sample_missing_dir_is_error() {
        let err = read_sample(Path::new("/nonexistent/kestrel/proc")).unwrap_err();
        assert!(matches!(err, ProcError::Io { .. }), "{err}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn read_sample_self_is_plausible() {
        let s = read_sample(Path::new("/proc/self")).unwrap();
        assert!(s.resident_memory_bytes > 1024 * 1024);
        assert!(s.threads >= 1);
        assert!(s.open_fds >= 3); // stdin, stdout, stderr at least
    }
}
