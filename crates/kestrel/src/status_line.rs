//! The compact once-a-second status line of `kestrel demo`: per symbol mid, spread, book state,
//! position, PnL, open orders, signals/s, plus the engine's p95 task latency and active faults.

use std::collections::HashMap;
use std::fmt::Write as _;

use kestrel_engine::EngineSnapshot;
use kestrel_model::{BookState, Symbol};

/// Remembers the previous snapshot's counters to turn them into rates.
#[derive(Debug, Default)]
pub struct StatusLine {
    /// Signals per symbol at the previous line.
    prev_signals: HashMap<Symbol, u64>,
}

impl StatusLine {
    /// A fresh status line.
    pub fn new() -> Self {
        Self::default()
    }

    /// Renders one line from `snap`, `elapsed_secs` after the previous one; `p95` is the engine
    /// task latency p95 in seconds (if known), `faults` the active fault names, `fills` the
    /// total fills journaled so far.
    pub fn render(
        &mut self,
        snap: &EngineSnapshot,
        elapsed_secs: f64,
        p95: Option<f64>,
        faults: &[&str],
        fills: u64,
    ) -> String {
        let mut out = String::new();
        for s in &snap.symbols {
            let prev = self.prev_signals.insert(s.symbol, s.signals).unwrap_or(s.signals);
            let rate = if elapsed_secs > 0.0 {
                (s.signals - prev.min(s.signals)) as f64 / elapsed_secs
            } else {
                0.0
            };
            let state = match s.book_state {
                BookState::Synced => "ok",
                _ => "STALE",
            };
            let pnl = s.realised_pnl.to_f64() + s.unrealised_pnl.to_f64();
            let _ = write!(
                out,
                "{} mid={} spr={} {} pos={} pnl={:+.2} open={} sig/s={:.0} | ",
                s.symbol,
                s.mid.map_or("-".to_owned(), |p| trim(&p.to_string())),
                s.spread.map_or("-".to_owned(), |p| trim(&p.to_string())),
                state,
                trim(&s.position.to_string()),
                pnl,
                s.open_orders.len(),
                rate
            );
        }
        let _ = write!(out, "fills={fills} pnl={:+.2}", snap.pnl.to_f64());
        match p95 {
            Some(v) => {
                let _ = write!(out, " p95={:.1}us", v * 1e6);
            }
            None => out.push_str(" p95=-"),
        }
        if snap.halted {
            out.push_str(" HALTED");
        }
        if !faults.is_empty() {
            let _ = write!(out, " faults={}", faults.join(","));
        }
        out
    }
}

/// Drops trailing zeros of a decimal (`65000.12000000` → `65000.12`).
fn trim(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s.to_owned()
    }
}

/// The p95 of a histogram in OpenMetrics text (`name_bucket{...label...,le="x"} n` lines that
/// contain `label`), as the upper bound of the bucket holding the 95th percentile.
pub fn p95_from_openmetrics(text: &str, name: &str, label: &str) -> Option<f64> {
    let prefix = format!("{name}_bucket{{");
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in text.lines() {
        if !line.starts_with(&prefix) || !line.contains(label) {
            continue;
        }
        let le = line.split("le=\"").nth(1)?.split('"').next()?;
        let le: f64 = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
        let count: f64 = line.rsplit(' ').next()?.parse().ok()?;
        buckets.push((le, count));
    }
    let total = buckets.iter().map(|b| b.1).fold(0.0, f64::max);
    if total <= 0.0 {
        return None;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets.iter().find(|(_, c)| *c >= 0.95 * total).map(|(le, _)| *le)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_picks_the_bucket_holding_the_95th_percentile() {
        let text = "task_latency_seconds_bucket{le=\"0.00001\",task=\"engine\"} 50\n\
                    task_latency_seconds_bucket{le=\"0.0001\",task=\"engine\"} 96\n\
                    task_latency_seconds_bucket{le=\"+Inf\",task=\"engine\"} 100\n\
                    task_latency_seconds_bucket{le=\"0.00001\",task=\"exec\"} 1\n";
        // TC0: 96 of 100 are ≤ 100 µs.
        assert_eq!(
            p95_from_openmetrics(text, "task_latency_seconds", "task=\"engine\""),
            Some(0.0001)
        );
        // TC1: no samples → none.
        assert_eq!(p95_from_openmetrics("", "task_latency_seconds", "task=\"engine\""), None);
        assert_eq!(trim("65000.12000000"), "65000.12");
        assert_eq!(trim("0.00000000"), "0");
    }
}
