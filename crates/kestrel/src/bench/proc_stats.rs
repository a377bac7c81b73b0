//! Sampling a process's resources from `/proc/<pid>` for the benchmark: CPU (utime + stime
//! over wall time), RSS (`VmRSS`) and peak RSS (`VmHWM`), and the open-FD count.
//!
//! The `stat`/`status`/`fd` parsing is shared with the `/metrics` collector
//! ([`crate::process_metrics::read_sample`]); this module adds `VmHWM` and the bookkeeping over
//! a measured window.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::process_metrics::{read_sample, ProcError};

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcStats {
    /// User + system CPU seconds since the process started.
    pub cpu_seconds: f64,
    /// Resident set now (`VmRSS`), bytes.
    pub rss_bytes: u64,
    /// Peak resident set since start (`VmHWM`), bytes.
    pub hwm_bytes: u64,
    /// Entries in `/proc/<pid>/fd`.
    pub open_fds: u64,
    /// Anonymous resident memory (`RssAnon`: heap, stacks), bytes; `None` on kernels without
    /// the field. `VmRSS` also counts the executable's mapped code pages (about 10.6 MiB of the
    /// bot's 13–15 MiB in the seed scenario), so growth of the heap shows here undiluted.
    pub anon_rss_bytes: Option<u64>,
}

/// `/proc/<pid>` for a child process.
pub fn proc_dir_of(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}"))
}

/// Reads a process's [`ProcStats`] from its `/proc/<pid>` directory.
pub fn read(proc_dir: &Path) -> Result<ProcStats, ProcError> {
    let sample = read_sample(proc_dir)?;
    let path = proc_dir.join("status");
    let status = std::fs::read_to_string(&path).map_err(|source| ProcError::Io { path, source })?;
    let hwm_bytes =
        parse_vm_hwm(&status).ok_or(ProcError::Format { file: "status", what: "VmHWM" })?;
    Ok(ProcStats {
        cpu_seconds: sample.cpu_seconds,
        rss_bytes: sample.resident_memory_bytes,
        hwm_bytes,
        open_fds: sample.open_fds,
        anon_rss_bytes: parse_kib_field(&status, "RssAnon:"),
    })
}

/// A `Name:   1234 kB` field of a `/proc/<pid>/status` text, in bytes.
pub fn parse_kib_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_ascii_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|kib| kib.saturating_mul(1024))
}

/// `VmHWM:   1234 kB` from a `/proc/<pid>/status` text, in bytes.
pub fn parse_vm_hwm(status: &str) -> Option<u64> {
    parse_kib_field(status, "VmHWM:")
}

/// CPU use between two readings over `wall`, as percent of one core (100 = one core busy).
/// `None` when the window is empty or the counter went backwards (a different process).
pub fn cpu_percent(start: &ProcStats, end: &ProcStats, wall: Duration) -> Option<f64> {
    let wall = wall.as_secs_f64();
    let used = end.cpu_seconds - start.cpu_seconds;
    (wall > 0.0 && used >= 0.0).then(|| used / wall * 100.0)
}

/// What a [`Sampler`] measured over its window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowSummary {
    /// CPU percent of one core over the window.
    pub cpu_percent: Option<f64>,
    /// Peak resident set (`VmHWM` at the end; it only grows), bytes.
    pub peak_rss_bytes: u64,
    /// Resident set at the end, bytes.
    pub final_rss_bytes: u64,
    /// Open FDs at the start of the window.
    pub open_fds_start: u64,
    /// Open FDs at the end.
    pub open_fds_end: u64,
}

/// Measures one process over a window: [`Sampler::start`] after warm-up, [`Sampler::finish`]
/// at the end.
#[derive(Debug)]
pub struct Sampler {
    /// `/proc/<pid>` of the measured process.
    proc_dir: PathBuf,
    /// The reading at the start of the window.
    start: ProcStats,
    /// When the window started (CPU is divided by the wall time since).
    started: Instant,
}

impl Sampler {
    /// Takes the start reading.
    pub fn start(proc_dir: PathBuf) -> Result<Self, ProcError> {
        let start = read(&proc_dir)?;
        Ok(Sampler { proc_dir, start, started: Instant::now() })
    }

    /// Takes the end reading and summarises the window.
    pub fn finish(&self) -> Result<WindowSummary, ProcError> {
        let end = read(&self.proc_dir)?;
        let wall = self.started.elapsed();
        Ok(summarize(&self.start, &end, wall))
    }
}

/// The window summary from two readings (pure, for tests).
pub fn summarize(start: &ProcStats, end: &ProcStats, wall: Duration) -> WindowSummary {
    WindowSummary {
        cpu_percent: cpu_percent(start, end, wall),
        peak_rss_bytes: end.hwm_bytes.max(end.rss_bytes),
        final_rss_bytes: end.rss_bytes,
        open_fds_start: start.open_fds,
        open_fds_end: end.open_fds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(cpu: f64, rss: u64, hwm: u64, fds: u64) -> ProcStats {
        ProcStats {
            cpu_seconds: cpu,
            rss_bytes: rss,
            hwm_bytes: hwm,
            open_fds: fds,
            anon_rss_bytes: None,
        }
    }

    #[test]
    fn vm_hwm_parsed_in_bytes() {
        let status = "Name:\tk\nVmPeak:\t  9000 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1024 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(2048 * 1024));
        assert_eq!(parse_vm_hwm("Name:\tk\n"), None);
        assert_eq!(parse_vm_hwm("VmHWM:\t x kB\n"), None);
    }

    #[test]
    fn cpu_percent_table() {
        let s = stats(1.0, 0, 0, 0);
        // TC0: 0.5 s CPU over 2 s wall = 25 %.
        assert_eq!(cpu_percent(&s, &stats(1.5, 0, 0, 0), Duration::from_secs(2)), Some(25.0));
        // TC1: two busy cores = 200 %.
        assert_eq!(cpu_percent(&s, &stats(5.0, 0, 0, 0), Duration::from_secs(2)), Some(200.0));
        // TC2: empty window.
        assert_eq!(cpu_percent(&s, &stats(1.5, 0, 0, 0), Duration::ZERO), None);
        // TC3: counter went backwards.
        assert_eq!(cpu_percent(&s, &stats(0.5, 0, 0, 0), Duration::from_secs(1)), None);
    }

    #[test]
    fn summary_from_two_readings() {
        let sum = summarize(&stats(0.0, 10, 10, 7), &stats(0.3, 20, 30, 9), Duration::from_secs(1));
        assert_eq!(sum.cpu_percent.map(|c| (c * 10.0).round() / 10.0), Some(30.0));
        assert_eq!((sum.peak_rss_bytes, sum.final_rss_bytes), (30, 20));
        assert_eq!((sum.open_fds_start, sum.open_fds_end), (7, 9));
    }

    #[test]
    fn read_from_fixture_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("stat"),
            "1 (k b) S 1 2 3 4 5 6 7 8 9 10 150 50 0 0 20 0 3 0 100 1000 300\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("status"),
            "Name:\tk\nVmHWM:\t 300 kB\nVmRSS:\t 200 kB\nRssAnon:\t 120 kB\nThreads:\t3\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("fd")).unwrap();
        for i in 0..4 {
            std::fs::write(dir.path().join("fd").join(i.to_string()), "").unwrap();
        }
        let s = read(dir.path()).unwrap();
        let want =
            ProcStats { anon_rss_bytes: Some(120 * 1024), ..stats(2.0, 200 * 1024, 300 * 1024, 4) };
        assert_eq!(s, want);
    }

    #[test]
    fn missing_hwm_is_a_format_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stat"), "1 (k) S 1 2 3 4 5 6 7 8 9 10 1 1 0\n").unwrap();
        std::fs::write(dir.path().join("status"), "VmRSS:\t 200 kB\nThreads:\t3\n").unwrap();
        std::fs::create_dir(dir.path().join("fd")).unwrap();
        let err = read(dir.path()).unwrap_err();
        assert!(matches!(err, ProcError::Format { what: "VmHWM", .. }), "{err:?}");
    }

    #[test]
    fn sampler_on_self_is_plausible() {
        let sampler = Sampler::start(PathBuf::from("/proc/self")).unwrap();
        let mut x = 0u64;
        for i in 0..200_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let sum = sampler.finish().unwrap();
        assert!(sum.final_rss_bytes > 0 && sum.peak_rss_bytes >= sum.final_rss_bytes);
        assert!(sum.open_fds_start > 0);
    }
}
