//! Reading the bot's `/metrics` (OpenMetrics text) for the benchmark: counter sums and
//! histogram buckets over the label sets that match a filter, and percentiles of the
//! difference between two scrapes.
//!
//! # How honest the percentiles are
//!
//! The bot records its latencies in Prometheus histograms with fixed buckets
//! ([`crate::metrics::TASK_LATENCY_BUCKETS`]: 5, 10, 25, 50, 100, 250 µs …;
//! [`crate::metrics::NETWORK_LATENCY_BUCKETS`]: 100, 250, 500 µs, 1 ms …). A percentile read
//! from buckets is only known to lie in one bucket, so [`BucketHist::quantile_upper`] reports
//! the bucket's **upper bound**: the true value is at most the reported one and above the
//! previous bound. It never understates a latency inside the bucket range; it can overstate
//! it by up to one bucket step (2–2.5×). A percentile in the `+Inf` bucket is reported as the
//! largest finite bound (1 s for task latency, 5 s for network latencies): there, and only
//! there, it is a lower bound.

use std::collections::BTreeMap;

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name as exposed (`task_latency_seconds_bucket`, `kestrel_signals_total`).
    pub name: String,
    /// Label pairs in exposition order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// A parsed scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// Every sample line, comments and `# EOF` skipped.
    pub samples: Vec<Sample>,
}

/// A line that is not `name{labels} value`.
#[derive(Debug, thiserror::Error)]
#[error("metrics line {line}: {what}: {text:?}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub what: &'static str,
    /// The line.
    pub text: String,
}

/// Parses `key="value",key2="value2"` (no escaped quotes in kestrel's label values, but `\"`
/// and `\\` are unescaped anyway).
fn parse_labels(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end?;
        out.push((key.trim_start_matches(',').trim().to_owned(), value));
        rest = after[end + 1..].trim_start_matches(',');
    }
    Some(out)
}

impl Scrape {
    /// Parses an OpenMetrics / Prometheus text exposition.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut samples = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |what| ParseError { line: i + 1, what, text: line.to_owned() };
            let (name, labels, rest) = match line.find('{') {
                Some(open) => {
                    let close = line.rfind('}').ok_or_else(|| err("unclosed label set"))?;
                    let labels =
                        parse_labels(&line[open + 1..close]).ok_or_else(|| err("bad labels"))?;
                    (&line[..open], labels, &line[close + 1..])
                }
                None => {
                    let (name, rest) = line.split_once(' ').ok_or_else(|| err("no value"))?;
                    (name, Vec::new(), rest)
                }
            };
            let value = rest
                .split_ascii_whitespace()
                .next()
                .ok_or_else(|| err("no value"))?
                .parse::<f64>()
                .map_err(|_| err("value is not a number"))?;
            samples.push(Sample { name: name.to_owned(), labels, value });
        }
        Ok(Scrape { samples })
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        filter: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && filter.iter().all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
    }

    /// Sum of every sample named `name` whose labels include all of `filter` (0 if none).
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.matching(name, filter).map(|s| s.value).sum()
    }

    /// Sum over label sets of `name`, excluding samples whose `label` equals `except`.
    pub fn sum_except(&self, name: &str, label: &str, except: &str) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name && !s.labels.iter().any(|(k, v)| k == label && v == except))
            .map(|s| s.value)
            .sum()
    }

    /// The cumulative buckets of histogram `base` (`<base>_bucket{le=…}`), summed over every
    /// label set matching `filter`.
    pub fn histogram(&self, base: &str, filter: &[(&str, &str)]) -> BucketHist {
        let name = format!("{base}_bucket");
        let mut by_le: BTreeMap<LeKey, f64> = BTreeMap::new();
        for s in self.matching(&name, filter) {
            let Some(le) = s.labels.iter().find(|(k, _)| k == "le").map(|(_, v)| v) else {
                continue;
            };
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::NAN) };
            if le.is_nan() {
                continue;
            }
            *by_le.entry(LeKey(le)).or_default() += s.value;
        }
        BucketHist {
            buckets: by_le
                .into_iter()
                .map(|(k, v)| (k.0, if v.is_finite() && v > 0.0 { v as u64 } else { 0 }))
                .collect(),
        }
    }
}

/// `f64` bucket bound with a total order (NaN is filtered before insertion).
#[derive(Debug, Clone, Copy, PartialEq)]
struct LeKey(f64);

impl Eq for LeKey {}

impl PartialOrd for LeKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for LeKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Cumulative histogram buckets `(upper bound, count ≤ bound)`, ascending; the last bound is
/// `+Inf` when the exposition has it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketHist {
    /// `(le, cumulative count)`.
    pub buckets: Vec<(f64, u64)>,
}

impl BucketHist {
    /// Observations in the histogram.
    pub fn total(&self) -> u64 {
        self.buckets.last().map_or(0, |b| b.1)
    }

    /// `self − earlier`, bucket by bucket (the observations made between two scrapes).
    /// Buckets missing from `earlier` count as 0 there.
    pub fn since(&self, earlier: &BucketHist) -> BucketHist {
        BucketHist {
            buckets: self
                .buckets
                .iter()
                .map(|&(le, n)| {
                    let before = earlier
                        .buckets
                        .iter()
                        .find(|(l, _)| l.total_cmp(&le).is_eq())
                        .map_or(0, |b| b.1);
                    (le, n.saturating_sub(before))
                })
                .collect(),
        }
    }

    /// Upper bound of the bucket holding the `q` quantile (`0 < q ≤ 1`), seconds; the largest
    /// finite bound if it is in `+Inf`; `None` when empty. See the module docs.
    pub fn quantile_upper(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let largest_finite = self.buckets.iter().rev().map(|b| b.0).find(|l| l.is_finite());
        let (le, _) = self.buckets.iter().find(|(_, n)| *n >= rank)?;
        if le.is_finite() {
            Some(*le)
        } else {
            largest_finite
        }
    }

    /// p50/p95/p99/max as bucket upper bounds; `None` when empty.
    pub fn percentiles(&self) -> Option<super::report::Percentiles> {
        Some(super::report::Percentiles {
            p50: self.quantile_upper(0.50)?,
            p95: self.quantile_upper(0.95)?,
            p99: self.quantile_upper(0.99)?,
            max: self.quantile_upper(1.0)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP task_latency_seconds Event received to signal/order decided, per task.
# TYPE task_latency_seconds histogram
task_latency_seconds_sum{task="engine"} 0.01
task_latency_seconds_count{task="engine"} 100
task_latency_seconds_bucket{le="5e-6",task="engine"} 10
task_latency_seconds_bucket{le="1e-5",task="engine"} 60
task_latency_seconds_bucket{le="2.5e-5",task="engine"} 98
task_latency_seconds_bucket{le="5e-5",task="engine"} 100
task_latency_seconds_bucket{le="+Inf",task="engine"} 100
task_latency_seconds_bucket{le="5e-6",task="md"} 7
task_latency_seconds_bucket{le="+Inf",task="md"} 7
kestrel_md_messages_total{stream="depth"} 300
kestrel_md_messages_total{stream="trade"} 200
kestrel_orders_total{symbol="BTCUSDT",outcome="accepted"} 5
kestrel_orders_total{symbol="BTCUSDT",outcome="canceled"} 4
kestrel_build_info{version="0.0.0"} 1
process_open_fds 12
# EOF
"#;

    #[test]
    fn parses_and_sums() {
        let s = Scrape::parse(TEXT).unwrap();
        assert_eq!(s.sum("kestrel_md_messages_total", &[]), 500.0);
        assert_eq!(s.sum("kestrel_md_messages_total", &[("stream", "trade")]), 200.0);
        assert_eq!(s.sum("process_open_fds", &[]), 12.0);
        assert_eq!(s.sum_except("kestrel_orders_total", "outcome", "canceled"), 5.0);
        assert_eq!(s.sum("nope", &[]), 0.0);
    }

    #[test]
    fn histogram_filter_and_quantiles() {
        let s = Scrape::parse(TEXT).unwrap();
        let h = s.histogram("task_latency_seconds", &[("task", "engine")]);
        assert_eq!(h.total(), 100);
        // TC0: p50 (rank 50) lies in (5 µs, 10 µs]: upper bound 10 µs.
        assert_eq!(h.quantile_upper(0.5), Some(1e-5));
        // TC1: p95 (rank 95) in (10, 25]: 25 µs.
        assert_eq!(h.quantile_upper(0.95), Some(2.5e-5));
        // TC2: p99 (rank 99) in (25, 50]: 50 µs.
        assert_eq!(h.quantile_upper(0.99), Some(5e-5));
        // TC3: max: the last bucket that gained an observation.
        assert_eq!(h.quantile_upper(1.0), Some(5e-5));
        // TC4: all tasks summed.
        assert_eq!(s.histogram("task_latency_seconds", &[]).total(), 107);
    }

    #[test]
    fn delta_between_scrapes() {
        let a = BucketHist { buckets: vec![(1e-5, 10), (1e-4, 10), (f64::INFINITY, 10)] };
        let b = BucketHist { buckets: vec![(1e-5, 10), (1e-4, 15), (f64::INFINITY, 20)] };
        let d = b.since(&a);
        assert_eq!(d.buckets, vec![(1e-5, 0), (1e-4, 5), (f64::INFINITY, 10)]);
        // Half of the new observations are in +Inf: p99 is reported as the largest finite bound.
        assert_eq!(d.quantile_upper(0.99), Some(1e-4));
        assert_eq!(d.quantile_upper(0.5), Some(1e-4));
        assert_eq!(BucketHist::default().quantile_upper(0.5), None);
        assert!(BucketHist::default().percentiles().is_none());
    }

    #[test]
    fn bad_lines_are_errors() {
        for bad in ["foo{a=\"b\" 1", "foo", "foo{a=\"b\"} x"] {
            assert!(Scrape::parse(bad).is_err(), "{bad}");
        }
    }
}
