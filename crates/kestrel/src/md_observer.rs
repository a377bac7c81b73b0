//! [`MetricsObserver`]: the binary's implementation of `kestrel_binance`'s
//! [`MarketDataObserver`], feeding Prometheus (`binance_ws_latency_seconds`, `msg_lag_seconds`,
//! `ws_reconnects_total`, `kestrel_md_*`, `kestrel_book_*`) and the fault board
//! (`WS_HEARTBEAT_MISSED`, `BOOK_STALE`, `MD_FALLBACK`).
//!
//! Hot path (`on_message`): handles are resolved once at construction into immutable maps, so a
//! message costs one hash lookup, one histogram observe and two atomic stores; no lock, no
//! allocation.

use std::collections::HashSet;

use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::latency::{LatencyRecorder, LatencySeries};
use kestrel_binance::observer::{
    ConnectionId, MarketDataMode, MarketDataObserver, MessageInfo, ReconnectReason, StaleReason,
    StreamKind as WireStream,
};
use kestrel_model::{Clock, Symbol, UnixNanos};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use crate::faults::{FaultBoard, FaultClass};
use crate::metrics::{FloatGauge, Metrics, ResyncReason, StreamKind};

/// Maps the protocol's stream kinds onto the metric label (`None`: not a market stream).
pub fn stream_label(kind: WireStream) -> Option<StreamKind> {
    match kind {
        WireStream::Depth | WireStream::PartialDepth => Some(StreamKind::Depth),
        WireStream::Trade | WireStream::AggTrade => Some(StreamKind::Trade),
        WireStream::BookTicker => Some(StreamKind::BookTicker),
        _ => None,
    }
}

fn resync_label(reason: StaleReason) -> ResyncReason {
    match reason {
        StaleReason::Gap { .. } => ResyncReason::Gap,
        StaleReason::Reconnect => ResyncReason::Reconnect,
        StaleReason::ChannelOverflow | StaleReason::BufferOverflow => ResyncReason::Overflow,
        _ => ResyncReason::Manual,
    }
}

/// Per-stream-kind handles.
#[derive(Debug)]
struct StreamSlot {
    /// `kestrel_md_messages_total{stream}`.
    messages: Counter,
    /// `msg_lag_seconds{stream}` (refreshed by [`MetricsObserver::refresh_lag`]).
    lag: FloatGauge,
    /// Local receive time of the newest message (ns), 0 = none yet.
    newest: AtomicU64,
    /// `kestrel_malformed_frames_total{stream}`.
    malformed: Counter,
}

/// The market-data observer of the binary.
pub struct MetricsObserver {
    /// Metrics registry (for rarely used, lazily labelled series).
    metrics: Arc<Metrics>,
    /// Fault board.
    faults: FaultBoard,
    /// Wall clock (msg lag, md task latency).
    clock: Arc<dyn Clock>,
    /// `binance_ws_latency_seconds{symbol,stream}` for every configured pair.
    ws_latency: FxHashMap<(Symbol, StreamKind), Histogram>,
    /// The same latencies into the exact (HDR) series behind `GET /latency`.
    ws_latency_exact: LatencyRecorder,
    /// Depth, trade, bookTicker slots (indexed by `StreamKind as usize`).
    streams: Vec<StreamSlot>,
    /// `task_latency_seconds{task="md"}`: receive → decoded and handed over.
    md_latency: Histogram,
    /// Symbols whose book is stale right now (drives `BOOK_STALE`).
    stale: Mutex<HashSet<Symbol>>,
    /// Groups currently on REST fallback (drives `MD_FALLBACK` and `kestrel_md_fallback`).
    fallback_groups: Mutex<HashSet<usize>>,
    /// Connections whose heartbeat was missed and that have not reconnected yet.
    heartbeat_missed: Mutex<HashSet<usize>>,
}

impl std::fmt::Debug for MetricsObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsObserver")
            .field("series", &self.ws_latency.len())
            .finish_non_exhaustive()
    }
}

impl MetricsObserver {
    /// Resolves every handle for `symbols`.
    pub fn new(
        metrics: Arc<Metrics>,
        faults: FaultBoard,
        clock: Arc<dyn Clock>,
        symbols: &[Symbol],
    ) -> Self {
        let kinds = [StreamKind::Depth, StreamKind::Trade, StreamKind::BookTicker];
        let mut ws_latency = FxHashMap::default();
        for &s in symbols {
            for k in kinds {
                ws_latency.insert((s, k), metrics.ws_latency(s, k));
            }
        }
        let streams = kinds
            .iter()
            .map(|&k| StreamSlot {
                messages: metrics.md_messages(k),
                lag: metrics.msg_lag(k),
                newest: AtomicU64::new(0),
                malformed: metrics.malformed_frames(k),
            })
            .collect();
        Self {
            md_latency: metrics.task_latency("md"),
            ws_latency_exact: metrics.latency().recorder(LatencySeries::WsLatency),
            metrics,
            faults,
            clock,
            ws_latency,
            streams,
            stale: Mutex::new(HashSet::new()),
            fallback_groups: Mutex::new(HashSet::new()),
            heartbeat_missed: Mutex::new(HashSet::new()),
        }
    }

    fn slot(&self, kind: StreamKind) -> Option<&StreamSlot> {
        let i = match kind {
            StreamKind::Depth => 0,
            StreamKind::Trade => 1,
            StreamKind::BookTicker => 2,
            StreamKind::User => return None,
        };
        self.streams.get(i)
    }

    /// Sets `msg_lag_seconds{stream}` = now − newest message, for every stream that has
    /// delivered at least one message. Called periodically by the runtime.
    pub fn refresh_lag(&self) {
        let now = self.clock.now().0;
        for s in &self.streams {
            let newest = s.newest.load(Ordering::Relaxed);
            if newest != 0 {
                s.lag.set(now.saturating_sub(newest) as f64 * 1e-9);
            }
        }
    }

    /// Symbols whose book is currently stale.
    pub fn stale_symbols(&self) -> Vec<Symbol> {
        self.stale.lock().map(|s| s.iter().copied().collect()).unwrap_or_default()
    }
}

impl MarketDataObserver for MetricsObserver {
    fn on_message(&self, msg: &MessageInfo) {
        let Some(kind) = stream_label(msg.kind) else { return };
        if let Some(slot) = self.slot(kind) {
            slot.messages.inc();
            slot.newest.fetch_max(msg.ts_local.0, Ordering::Relaxed);
        }
        if let (Some(sym), Some(lat)) = (msg.symbol, msg.latency) {
            if let Some(h) = self.ws_latency.get(&(sym, kind)) {
                h.observe(lat.as_secs_f64());
            }
            self.ws_latency_exact.record(lat);
        }
        if msg.ts_local != UnixNanos::ZERO {
            let now = self.clock.now().0;
            self.md_latency.observe(now.saturating_sub(msg.ts_local.0) as f64 * 1e-9);
        }
    }

    fn on_connected(&self, id: ConnectionId) {
        // Materialise `ws_reconnects_total{connection}` at 0, so alerts and dashboards see the
        // series before the first reconnect.
        let _ = self.metrics.ws_reconnects(&format!("md-{}", id.group));
        if let Ok(mut m) = self.heartbeat_missed.lock() {
            m.remove(&id.group);
            if m.is_empty() {
                self.faults.clear(FaultClass::WS_HEARTBEAT_MISSED);
            }
        }
    }

    fn on_reconnect(&self, id: ConnectionId, reason: ReconnectReason) {
        tracing::info!(group = id.group, reason = reason.as_str(), "market data reconnect");
        self.metrics.ws_reconnects(&format!("md-{}", id.group)).inc();
    }

    fn on_heartbeat_missed(&self, id: ConnectionId, silent_for: Duration) {
        if let Ok(mut m) = self.heartbeat_missed.lock() {
            m.insert(id.group);
        }
        self.faults.raise(
            FaultClass::WS_HEARTBEAT_MISSED,
            format_args!("market data group {} silent for {:?}", id.group, silent_for),
        );
    }

    fn on_resync(&self, symbol: Symbol, reason: StaleReason) {
        self.metrics.book_resyncs(symbol, resync_label(reason)).inc();
        if let Ok(mut s) = self.stale.lock() {
            s.insert(symbol);
        }
        self.faults.raise(FaultClass::BOOK_STALE, format_args!("{symbol} book stale ({reason:?})"));
    }

    fn on_synced(&self, symbol: Symbol) {
        if let Ok(mut s) = self.stale.lock() {
            s.remove(&symbol);
            if s.is_empty() {
                self.faults.clear(FaultClass::BOOK_STALE);
            }
        }
    }

    fn on_malformed(&self, _id: ConnectionId) {
        if let Some(slot) = self.slot(StreamKind::Depth) {
            slot.malformed.inc();
        }
    }

    fn on_overflow(&self, symbol: Symbol, _kind: WireStream) {
        self.metrics.md_dropped(symbol).inc();
    }

    fn on_mode_change(&self, group: usize, mode: MarketDataMode) {
        tracing::warn!(group, mode = mode.as_str(), "market data mode changed");
        if let Ok(mut g) = self.fallback_groups.lock() {
            match mode {
                MarketDataMode::RestFallback => g.insert(group),
                MarketDataMode::WebSocket => g.remove(&group),
            };
            self.metrics.md_fallback().set(i64::from(!g.is_empty()));
            self.faults.set(
                FaultClass::MD_FALLBACK,
                !g.is_empty(),
                format_args!("{} market data group(s) on REST fallback", g.len()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kestrel_model::ManualClock;

    fn sym(s: &str) -> Symbol {
        s.parse().unwrap()
    }

    #[test]
    fn resync_and_sync_drive_book_stale() {
        let metrics = Arc::new(Metrics::new());
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(UnixNanos(1_000)));
        let faults = FaultBoard::new(&metrics, clock.clone());
        let obs = MetricsObserver::new(
            metrics.clone(),
            faults.clone(),
            clock,
            &[sym("BTCUSDT"), sym("ETHUSDT")],
        );
        // TC0: two books stale, one synced: still raised.
        obs.on_resync(sym("BTCUSDT"), StaleReason::Reconnect);
        obs.on_resync(sym("ETHUSDT"), StaleReason::Reconnect);
        obs.on_synced(sym("BTCUSDT"));
        assert!(faults.is_active(FaultClass::BOOK_STALE));
        // TC1: both synced: cleared.
        obs.on_synced(sym("ETHUSDT"));
        assert!(!faults.is_active(FaultClass::BOOK_STALE));
        // TC2: fallback on and off drives MD_FALLBACK.
        obs.on_mode_change(0, MarketDataMode::RestFallback);
        assert!(faults.is_active(FaultClass::MD_FALLBACK));
        obs.on_mode_change(0, MarketDataMode::WebSocket);
        assert!(!faults.is_active(FaultClass::MD_FALLBACK));
        let text = metrics.encode();
        assert!(text.contains("kestrel_book_resyncs_total"), "{text}");
    }
}
