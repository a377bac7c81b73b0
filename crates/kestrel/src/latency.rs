//! Exact latency distributions (HDR histograms) beside the Prometheus buckets.
//!
//! Prometheus histograms only say which bucket a percentile lies in (a 2–2.5× step). The
//! benchmark (`kestrel bench run`) and operators who want exact figures read these instead:
//! `GET /latency` on the admin API returns count, p50/p95/p99/p99.9 and max per series since the
//! last `POST /latency/reset`.
//!
//! Recording never waits: a recorder takes its series' lock with `try_lock` and, in the rare case
//! that a reader is copying the histogram at that instant, counts the sample as skipped instead
//! of blocking the hot path (the skipped count is reported, so the figures stay honest). A series
//! has one writer (the engine thread, the execution task) or one per market-data connection, so
//! the lock is almost never contended.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency a series tracks: 60 s (larger values are clamped to it).
const HIGHEST_NANOS: u64 = 60_000_000_000;
/// Significant decimal digits kept: 2 (relative error ≤ 1 %). Each series is then a 30 KiB
/// array; with 3 digits it was 216 KiB, whose pages the bot touched one by one as latencies
/// spread over more buckets: ~0.1 MiB of a `seed` bot's RSS growth per series over its first
/// quarter hour (#7), for a precision (0.1 %) no latency figure needs.
const SIGFIGS: u8 = 2;

/// The latency series recorded exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LatencySeries {
    /// `task_latency_seconds{task="engine"}`: market-data or timer event received (socket
    /// read) → engine decided.
    TaskEngine,
    /// `binance_ws_latency_seconds`: exchange event time `E` → local receive (offset-corrected).
    WsLatency,
    /// `order_roundtrip_seconds`: order sent → acknowledged.
    OrderRoundtrip,
    /// Tick-to-order: the triggering event's local receive time → the order handed to the
    /// gateway for writing (journal fsync of the intent included: it precedes every send).
    TickToOrder,
}

impl LatencySeries {
    /// Every series, in report order.
    pub const ALL: &'static [LatencySeries] =
        &[Self::TaskEngine, Self::WsLatency, Self::OrderRoundtrip, Self::TickToOrder];

    /// Stable name used as the JSON key.
    pub fn name(self) -> &'static str {
        match self {
            Self::TaskEngine => "task_latency_engine",
            Self::WsLatency => "binance_ws_latency",
            Self::OrderRoundtrip => "order_roundtrip",
            Self::TickToOrder => "tick_to_order",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::TaskEngine => 0,
            Self::WsLatency => 1,
            Self::OrderRoundtrip => 2,
            Self::TickToOrder => 3,
        }
    }
}

/// One series: the histogram and the samples skipped because a reader held it.
#[derive(Debug)]
struct Series {
    /// Nanosecond values, 1 ns … 60 s, 2 significant digits.
    hist: Mutex<Histogram<u64>>,
    /// Samples not recorded because `try_lock` found a reader copying the histogram.
    skipped: AtomicU64,
}

impl Series {
    fn new() -> Self {
        let hist = Histogram::new_with_bounds(1, HIGHEST_NANOS, SIGFIGS)
            .expect("invariant: 1 <= 60e9 and 2 significant digits are valid HDR bounds");
        Self { hist: Mutex::new(hist), skipped: AtomicU64::new(0) }
    }
}

/// The exact-latency store shared by the recorders and the admin API (clones share storage).
#[derive(Debug, Clone)]
pub struct LatencyBook {
    series: Arc<[Series; 4]>,
}

impl Default for LatencyBook {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyBook {
    /// Empty histograms for every series.
    pub fn new() -> Self {
        Self { series: Arc::new([Series::new(), Series::new(), Series::new(), Series::new()]) }
    }

    /// A recorder for one series; cheap to clone, hand one to each recording task.
    pub fn recorder(&self, series: LatencySeries) -> LatencyRecorder {
        LatencyRecorder { book: self.clone(), index: series.index() }
    }

    /// Percentiles of every series since the last reset.
    pub fn summary(&self) -> LatencySummary {
        let series = LatencySeries::ALL
            .iter()
            .map(|&s| {
                let slot = &self.series[s.index()];
                let skipped = slot.skipped.load(Ordering::Relaxed);
                let stats = match slot.hist.lock() {
                    Ok(h) => SeriesStats::from_hist(&h, skipped),
                    Err(poisoned) => SeriesStats::from_hist(&poisoned.into_inner(), skipped),
                };
                (s.name().to_owned(), stats)
            })
            .collect();
        LatencySummary { series }
    }

    /// Empties every series (start of a measurement window).
    pub fn reset(&self) {
        for slot in self.series.iter() {
            match slot.hist.lock() {
                Ok(mut h) => h.reset(),
                Err(poisoned) => poisoned.into_inner().reset(),
            }
            slot.skipped.store(0, Ordering::Relaxed);
        }
    }
}

/// Records into one series of a [`LatencyBook`]; never blocks.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    book: LatencyBook,
    index: usize,
}

impl LatencyRecorder {
    /// Records one latency in nanoseconds (0 is recorded as 1 ns, above 60 s as 60 s).
    #[inline]
    pub fn record_nanos(&self, nanos: u64) {
        let slot = &self.book.series[self.index];
        match slot.hist.try_lock() {
            Ok(mut h) => h.saturating_record(nanos.clamp(1, HIGHEST_NANOS)),
            Err(_) => {
                slot.skipped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Records one latency given as a [`std::time::Duration`].
    #[inline]
    pub fn record(&self, d: std::time::Duration) {
        self.record_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }
}

/// Percentiles of one series (nanoseconds); all zero when `count` is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SeriesStats {
    /// Samples recorded.
    pub count: u64,
    /// Samples skipped because a reader held the histogram (not in the percentiles).
    pub skipped: u64,
    /// Median.
    pub p50_ns: u64,
    /// 95th percentile.
    pub p95_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Largest sample.
    pub max_ns: u64,
}

impl SeriesStats {
    fn from_hist(h: &Histogram<u64>, skipped: u64) -> Self {
        if h.is_empty() {
            return Self {
                count: 0,
                skipped,
                p50_ns: 0,
                p95_ns: 0,
                p99_ns: 0,
                p999_ns: 0,
                max_ns: 0,
            };
        }
        Self {
            count: h.len(),
            skipped,
            p50_ns: h.value_at_quantile(0.50),
            p95_ns: h.value_at_quantile(0.95),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
        }
    }
}

/// `GET /latency` body: every series by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LatencySummary {
    /// Series name ([`LatencySeries::name`]) → its figures.
    pub series: std::collections::BTreeMap<String, SeriesStats>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_within_one_percent_and_reset_empties() {
        let book = LatencyBook::new();
        let rec = book.recorder(LatencySeries::TaskEngine);
        // 1..=1000 µs: p50 = 500 µs, p99 = 990 µs, max = 1 ms; 2 significant digits.
        for us in 1..=1000u64 {
            rec.record_nanos(us * 1_000);
        }
        let s = book.summary().series["task_latency_engine"];
        assert_eq!(s.count, 1000);
        assert!((495_000..=505_000).contains(&s.p50_ns), "{s:?}");
        assert!((980_100..=999_900).contains(&s.p99_ns), "{s:?}");
        assert!((990_000..=1_010_000).contains(&s.max_ns), "{s:?}");
        // Other series untouched.
        assert_eq!(book.summary().series["tick_to_order"].count, 0);
        book.reset();
        assert_eq!(book.summary().series["task_latency_engine"].count, 0);
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let book = LatencyBook::new();
        let rec = book.recorder(LatencySeries::OrderRoundtrip);
        rec.record_nanos(0);
        rec.record_nanos(u64::MAX);
        let s = book.summary().series["order_roundtrip"];
        assert_eq!(s.count, 2);
        assert!(s.max_ns >= HIGHEST_NANOS - HIGHEST_NANOS / 1000, "{s:?}");
    }

    #[test]
    fn a_held_lock_skips_and_counts_instead_of_blocking() {
        let book = LatencyBook::new();
        let rec = book.recorder(LatencySeries::WsLatency);
        let guard = book.series[1].hist.lock().unwrap();
        rec.record_nanos(5);
        drop(guard);
        let s = book.summary().series["binance_ws_latency"];
        assert_eq!((s.count, s.skipped), (0, 1));
    }
}
