//! Prometheus metrics: the operator-contract names plus `kestrel_*`, with pre-resolved handles.
//!
//! # Contract (PRODUCT.md section 3 — never rename)
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `binance_ws_latency_seconds` | histogram | `symbol`, `stream` | local receive time − event time `E` |
//! | `task_latency_seconds` | histogram | `task` | event received → signal/order decided |
//! | `order_roundtrip_seconds` | histogram | `symbol` | order sent → exchange acknowledgement |
//! | `msg_lag_seconds` | gauge | `stream` | age of the newest message on a stream |
//! | `ws_reconnects_total` | counter | `connection` | WebSocket reconnects |
//!
//! Every other metric is `kestrel_<area>_<what>_<unit>`; see [`Metrics`] for the full list.
//!
//! # Hot path
//!
//! Label lookups hash and lock inside [`Family`], so components resolve the handles they need
//! once at startup (`metrics.ws_latency(sym, StreamKind::Depth)`) and keep the returned
//! [`Histogram`] / [`Counter`] / [`Gauge`] (an `Arc` inside). Recording is then one `observe` /
//! `inc` / `set`: no hashing, no allocation. `benches/metrics.rs` measures it.
//!
//! Measured (`cargo bench -p kestrel --bench metrics`, criterion medians, shared 2-core VM,
//! bench profile with `CARGO_PROFILE_BENCH_LTO=off CARGO_PROFILE_BENCH_CODEGEN_UNITS=16`):
//! `Histogram::observe` on a handle 13.6 ns, `Counter::inc` 4.9 ns, float `Gauge::set` 4.4 ns,
//! re-raising an active fault 5.5 ns, label lookup + observe 133 ns, observe with a second
//! thread hammering the same histogram 21 ns, full scrape (`encode`) 0.33 ms. A second run at
//! load average ~12 read 48 / 16 / 16 / 27 / 428 ns. The prometheus-client histogram takes an
//! uncontended `parking_lot` write lock per observe, well under the ~50 ns budget; a lock-free
//! prototype (per-bucket `AtomicU64` + integer-nanosecond sum) measured the same within noise,
//! since the lock costs about what the extra atomic adds cost. So we keep the library type;
//! revisit only if several threads ever share one hot histogram (each handle here is written
//! by one task).
//!
//! Symbols are labelled through [`SymbolLabel`], a `Copy` wrapper around the inline
//! [`Symbol`], so even an ad-hoc lookup by symbol does not allocate once the series exists.

use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;

use kestrel_model::Symbol;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::faults::FaultClass;
use crate::process_metrics::ProcessCollector;

/// HTTP `Content-Type` of [`Metrics::encode`]'s output (OpenMetrics text 1.0.0).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A gauge holding an `f64` (seconds, positions, PnL). Display only: never read back into a
/// money path.
pub type FloatGauge = Gauge<f64, AtomicU64>;

/// Upper bounds (seconds) for network-facing latencies: WebSocket event latency and order
/// round trip. Resolves 100 µs … 5 s on a 1-2.5-5 ladder; 0.2 s is an explicit bound because
/// the `KestrelWsLatencyHigh` alert compares the p95 against 200 ms, and a bound at the
/// threshold makes `histogram_quantile` exact there.
pub const NETWORK_LATENCY_BUCKETS: [f64; 16] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0,
    2.5, 5.0,
];

/// Upper bounds (seconds) for bot-internal task latency. The target is tens of microseconds
/// (PRODUCT.md section 4), so the ladder starts at 5 µs; 50 ms is a bound because the
/// `KestrelTaskLatencyHigh` alert threshold is 50 ms.
pub const TASK_LATENCY_BUCKETS: [f64; 17] = [
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

fn network_latency_histogram() -> Histogram {
    Histogram::new(NETWORK_LATENCY_BUCKETS)
}

fn task_latency_histogram() -> Histogram {
    Histogram::new(TASK_LATENCY_BUCKETS)
}

/// A [`Symbol`] as a label value (`symbol="BTCUSDT"`). `Copy`, no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SymbolLabel(pub Symbol);

impl EncodeLabelValue for SymbolLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.0.as_str())
    }
}

/// Implements `as_str` and [`EncodeLabelValue`] for a closed label enum.
macro_rules! label_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The label value.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                encoder.write_str(self.as_str())
            }
        }
    };
}

label_enum!(
    /// Which market-data stream a message came from (`stream` label).
    StreamKind {
        /// `<symbol>@depth@100ms` diff stream (or its REST-fallback poll).
        Depth => "depth",
        /// `<symbol>@trade`.
        Trade => "trade",
        /// `<symbol>@bookTicker`.
        BookTicker => "bookTicker",
        /// The user data stream (execution reports, balance updates).
        User => "user",
    }
);

label_enum!(
    /// Why a local order book was re-snapshotted (`reason` label).
    ResyncReason {
        /// First sync after startup or after adding a symbol.
        Initial => "initial",
        /// A depth-update sequence gap (`U` ≠ previous `u` + 1).
        Gap => "gap",
        /// The WebSocket connection was re-established.
        Reconnect => "reconnect",
        /// The market-data → engine channel overflowed and deltas were dropped.
        Overflow => "overflow",
        /// Operator request (`make restart-ws`, fallback switch).
        Manual => "manual",
    }
);

label_enum!(
    /// What happened to an order request (`outcome` label).
    OrderOutcome {
        /// Acknowledged by the exchange.
        Accepted => "accepted",
        /// Rejected by the exchange (filter, balance, …).
        Rejected => "rejected",
        /// Outcome unknown (timeout): reconciled by query, never assumed failed.
        Unknown => "unknown",
        /// Cancel acknowledged.
        Canceled => "canceled",
        /// Transport or protocol error before the exchange could decide.
        Error => "error",
    }
);

label_enum!(
    /// Realised or unrealised PnL (`kind` label).
    PnlKind {
        /// Closed out: fees and matched buys/sells.
        Realised => "realised",
        /// Open position marked to mid.
        Unrealised => "unrealised",
    }
);

/// Labels `{symbol, stream}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SymbolStreamLabels {
    /// The instrument.
    pub symbol: SymbolLabel,
    /// The stream kind.
    pub stream: StreamKind,
}

/// Labels `{symbol}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SymbolLabels {
    /// The instrument.
    pub symbol: SymbolLabel,
}

/// Labels `{stream}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StreamLabels {
    /// The stream kind.
    pub stream: StreamKind,
}

/// Labels `{task}`. Task names are chosen by the wiring code at startup (e.g. `"signal"`,
/// `"order"`), so a `String` is fine: it is allocated once when the handle is resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TaskLabels {
    /// The task name.
    pub task: String,
}

/// Labels `{connection}` (e.g. `"md-0"`, `"user"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ConnectionLabels {
    /// The connection name.
    pub connection: String,
}

/// Labels `{symbol, reason}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResyncLabels {
    /// The instrument.
    pub symbol: SymbolLabel,
    /// Why it was re-snapshotted.
    pub reason: ResyncReason,
}

/// Labels `{symbol, strategy}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SignalLabels {
    /// The instrument.
    pub symbol: SymbolLabel,
    /// The strategy's configured name.
    pub strategy: String,
}

/// Labels `{symbol, outcome}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OrderLabels {
    /// The instrument.
    pub symbol: SymbolLabel,
    /// What happened to the request.
    pub outcome: OrderOutcome,
}

/// Labels `{reason}` for risk rejections. The reason is the engine's `&'static str` rejection
/// code, so counting a rejection never allocates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RiskLabels {
    /// The risk check that rejected (e.g. `"max_position"`).
    pub reason: &'static str,
}

/// Labels `{symbol, kind}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PnlLabels {
    /// The instrument.
    pub symbol: SymbolLabel,
    /// Realised or unrealised.
    pub kind: PnlKind,
}

/// Labels `{class}` for fault metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct FaultLabels {
    /// The fault class (`WS_HEARTBEAT_MISSED`, …).
    pub class: FaultClass,
}

/// Labels `{version}` of `kestrel_build_info`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// All of kestrel's metrics and the registry that exposes them. Built once by the binary and
/// shared (`Arc<Metrics>`); libraries never see it (STYLE.md 2.1).
#[derive(Debug)]
pub struct Metrics {
    /// Owns every family below (clones share storage) plus the process collector.
    registry: Registry,
    /// `binance_ws_latency_seconds{symbol,stream}` (contract).
    ws_latency: HistogramFamily<SymbolStreamLabels>,
    /// `task_latency_seconds{task}` (contract).
    task_latency: HistogramFamily<TaskLabels>,
    /// `order_roundtrip_seconds{symbol}` (contract).
    order_roundtrip: HistogramFamily<SymbolLabels>,
    /// `msg_lag_seconds{stream}` (contract).
    msg_lag: Family<StreamLabels, FloatGauge>,
    /// `ws_reconnects_total{connection}` (contract).
    ws_reconnects: Family<ConnectionLabels, Counter>,
    /// `kestrel_md_messages_total{stream}`.
    md_messages: Family<StreamLabels, Counter>,
    /// `kestrel_book_resyncs_total{symbol,reason}`.
    book_resyncs: Family<ResyncLabels, Counter>,
    /// `kestrel_book_state{symbol}`: 1 synced, 0 stale.
    book_state: Family<SymbolLabels, Gauge>,
    /// `kestrel_md_fallback`: 1 while market data comes from REST polling.
    md_fallback: Gauge,
    /// `kestrel_signals_total{symbol,strategy}`.
    signals: Family<SignalLabels, Counter>,
    /// `kestrel_orders_total{symbol,outcome}`.
    orders: Family<OrderLabels, Counter>,
    /// `kestrel_risk_rejections_total{reason}`.
    risk_rejections: Family<RiskLabels, Counter>,
    /// `kestrel_fills_total{symbol}`.
    fills: Family<SymbolLabels, Counter>,
    /// `kestrel_position{symbol}` in base units.
    position: Family<SymbolLabels, FloatGauge>,
    /// `kestrel_pnl_quote{symbol,kind}` in quote units.
    pnl: Family<PnlLabels, FloatGauge>,
    /// `kestrel_ratelimit_weight_used`: last `X-MBX-USED-WEIGHT-1M` seen.
    ratelimit_weight_used: Gauge,
    /// `kestrel_faults_total{class}`: raise transitions.
    faults_total: Family<FaultLabels, Counter>,
    /// `kestrel_fault_active{class}`: 1 while raised.
    fault_active: Family<FaultLabels, Gauge>,
    /// `kestrel_malformed_frames_total{stream}`.
    malformed_frames: Family<StreamLabels, Counter>,
    /// `kestrel_md_dropped_total{symbol}`: deltas dropped on channel overflow.
    md_dropped: Family<SymbolLabels, Counter>,
    /// Exact (HDR) latency distributions beside the bucketed histograms (`GET /latency`).
    latency: crate::latency::LatencyBook,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric (and the `/proc` process collector) in a fresh registry.
    /// Every fault class starts at `kestrel_fault_active{class}=0` and `kestrel_faults_total=0`,
    /// so alert expressions see a series from the first scrape.
    pub fn new() -> Self {
        let mut this = Self {
            ws_latency: Family::new_with_constructor(network_latency_histogram),
            task_latency: Family::new_with_constructor(task_latency_histogram),
            order_roundtrip: Family::new_with_constructor(network_latency_histogram),
            msg_lag: Family::default(),
            ws_reconnects: Family::default(),
            latency: crate::latency::LatencyBook::new(),
            md_messages: Family::default(),
            book_resyncs: Family::default(),
            book_state: Family::default(),
            md_fallback: Gauge::default(),
            signals: Family::default(),
            orders: Family::default(),
            risk_rejections: Family::default(),
            fills: Family::default(),
            position: Family::default(),
            pnl: Family::default(),
            ratelimit_weight_used: Gauge::default(),
            faults_total: Family::default(),
            fault_active: Family::default(),
            malformed_frames: Family::default(),
            md_dropped: Family::default(),
            registry: Registry::default(),
        };
        // prometheus-client appends `_total` to counter names itself, so counters are
        // registered without it.
        let r = &mut this.registry;
        r.register(
            "binance_ws_latency_seconds",
            "WebSocket event latency: local receive time minus the event's exchange time E",
            this.ws_latency.clone(),
        );
        r.register(
            "task_latency_seconds",
            "Event received to signal/order decided, per task",
            this.task_latency.clone(),
        );
        r.register(
            "order_roundtrip_seconds",
            "Order sent to exchange acknowledgement",
            this.order_roundtrip.clone(),
        );
        r.register("msg_lag_seconds", "Age of the newest message per stream", this.msg_lag.clone());
        r.register(
            "ws_reconnects",
            "WebSocket reconnects per connection",
            this.ws_reconnects.clone(),
        );
        r.register(
            "kestrel_md_messages",
            "Market-data messages received per stream",
            this.md_messages.clone(),
        );
        r.register(
            "kestrel_book_resyncs",
            "Order-book re-snapshots per symbol and reason",
            this.book_resyncs.clone(),
        );
        r.register(
            "kestrel_book_state",
            "Local order book state: 1 synced, 0 stale",
            this.book_state.clone(),
        );
        r.register(
            "kestrel_md_fallback",
            "1 while market data comes from REST polling instead of the WebSocket",
            this.md_fallback.clone(),
        );
        r.register(
            "kestrel_signals",
            "Signals emitted per symbol and strategy",
            this.signals.clone(),
        );
        r.register("kestrel_orders", "Order requests per symbol and outcome", this.orders.clone());
        r.register(
            "kestrel_risk_rejections",
            "Orders rejected by risk checks, per reason",
            this.risk_rejections.clone(),
        );
        r.register("kestrel_fills", "Fills per symbol", this.fills.clone());
        r.register(
            "kestrel_position",
            "Signed position in base-asset units",
            this.position.clone(),
        );
        r.register(
            "kestrel_pnl_quote",
            "PnL in quote-asset units, realised and unrealised",
            this.pnl.clone(),
        );
        r.register(
            "kestrel_ratelimit_weight_used",
            "Request weight used in the current minute (X-MBX-USED-WEIGHT-1M)",
            this.ratelimit_weight_used.clone(),
        );
        r.register(
            "kestrel_faults",
            "Fault raise transitions per fault class",
            this.faults_total.clone(),
        );
        r.register(
            "kestrel_fault_active",
            "1 while a fault class is raised",
            this.fault_active.clone(),
        );
        r.register(
            "kestrel_malformed_frames",
            "WebSocket frames that failed to parse, per stream",
            this.malformed_frames.clone(),
        );
        r.register(
            "kestrel_md_dropped",
            "Market-data deltas dropped on channel overflow, per symbol",
            this.md_dropped.clone(),
        );
        r.register(
            "kestrel_build",
            "Build information",
            Info::new(BuildLabels { version: env!("CARGO_PKG_VERSION") }),
        );
        r.register_collector(Box::new(ProcessCollector::new()));
        for &class in FaultClass::ALL {
            let labels = FaultLabels { class };
            drop(this.faults_total.get_or_create(&labels));
            drop(this.fault_active.get_or_create(&labels));
        }
        this.md_fallback.set(0);
        this
    }

    /// The whole exposition in OpenMetrics text (serve with [`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            // Writing into a String cannot fail and our label encoders never fail, so this is
            // a library bug; serve what was written rather than nothing.
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }

    /// The exact-latency store (HDR) behind `GET /latency`; recorders come from here.
    pub fn latency(&self) -> &crate::latency::LatencyBook {
        &self.latency
    }

    /// Handle for `binance_ws_latency_seconds{symbol,stream}`; observe seconds.
    pub fn ws_latency(&self, symbol: Symbol, stream: StreamKind) -> Histogram {
        let labels = SymbolStreamLabels { symbol: SymbolLabel(symbol), stream };
        self.ws_latency.get_or_create(&labels).clone()
    }

    /// Handle for `task_latency_seconds{task}`; observe seconds.
    pub fn task_latency(&self, task: &str) -> Histogram {
        let labels = TaskLabels { task: task.to_owned() };
        self.task_latency.get_or_create(&labels).clone()
    }

    /// Handle for `order_roundtrip_seconds{symbol}`; observe seconds.
    pub fn order_roundtrip(&self, symbol: Symbol) -> Histogram {
        self.order_roundtrip.get_or_create(&symbol_labels(symbol)).clone()
    }

    /// Handle for `msg_lag_seconds{stream}`; set the age in seconds of the newest message.
    pub fn msg_lag(&self, stream: StreamKind) -> FloatGauge {
        self.msg_lag.get_or_create(&StreamLabels { stream }).clone()
    }

    /// Handle for `ws_reconnects_total{connection}`.
    pub fn ws_reconnects(&self, connection: &str) -> Counter {
        let labels = ConnectionLabels { connection: connection.to_owned() };
        self.ws_reconnects.get_or_create(&labels).clone()
    }

    /// Handle for `kestrel_md_messages_total{stream}`.
    pub fn md_messages(&self, stream: StreamKind) -> Counter {
        self.md_messages.get_or_create(&StreamLabels { stream }).clone()
    }

    /// Handle for `kestrel_book_resyncs_total{symbol,reason}`.
    pub fn book_resyncs(&self, symbol: Symbol, reason: ResyncReason) -> Counter {
        let labels = ResyncLabels { symbol: SymbolLabel(symbol), reason };
        self.book_resyncs.get_or_create(&labels).clone()
    }

    /// Handle for `kestrel_book_state{symbol}`: set 1 when synced, 0 when stale.
    pub fn book_state(&self, symbol: Symbol) -> Gauge {
        self.book_state.get_or_create(&symbol_labels(symbol)).clone()
    }

    /// Handle for `kestrel_md_fallback`: set 1 while in REST fallback, 0 on the WebSocket.
    pub fn md_fallback(&self) -> Gauge {
        self.md_fallback.clone()
    }

    /// Handle for `kestrel_signals_total{symbol,strategy}`.
    pub fn signals(&self, symbol: Symbol, strategy: &str) -> Counter {
        let labels = SignalLabels { symbol: SymbolLabel(symbol), strategy: strategy.to_owned() };
        self.signals.get_or_create(&labels).clone()
    }

    /// Handle for `kestrel_orders_total{symbol,outcome}`.
    pub fn orders(&self, symbol: Symbol, outcome: OrderOutcome) -> Counter {
        let labels = OrderLabels { symbol: SymbolLabel(symbol), outcome };
        self.orders.get_or_create(&labels).clone()
    }

    /// Handle for `kestrel_risk_rejections_total{reason}`. Cheap enough to call per
    /// rejection (no allocation once the series exists), or resolve once per reason.
    pub fn risk_rejections(&self, reason: &'static str) -> Counter {
        self.risk_rejections.get_or_create(&RiskLabels { reason }).clone()
    }

    /// Handle for `kestrel_fills_total{symbol}`.
    pub fn fills(&self, symbol: Symbol) -> Counter {
        self.fills.get_or_create(&symbol_labels(symbol)).clone()
    }

    /// Handle for `kestrel_position{symbol}` (base units; set from `Qty::to_f64`).
    pub fn position(&self, symbol: Symbol) -> FloatGauge {
        self.position.get_or_create(&symbol_labels(symbol)).clone()
    }

    /// Handle for `kestrel_pnl_quote{symbol,kind}` (quote units; set from `Notional::to_f64`).
    pub fn pnl(&self, symbol: Symbol, kind: PnlKind) -> FloatGauge {
        let labels = PnlLabels { symbol: SymbolLabel(symbol), kind };
        self.pnl.get_or_create(&labels).clone()
    }

    /// Handle for `kestrel_ratelimit_weight_used`.
    pub fn ratelimit_weight_used(&self) -> Gauge {
        self.ratelimit_weight_used.clone()
    }

    /// Handle for `kestrel_faults_total{class}` (used by [`crate::faults::FaultBoard`]).
    pub fn faults_total(&self, class: FaultClass) -> Counter {
        self.faults_total.get_or_create(&FaultLabels { class }).clone()
    }

    /// Handle for `kestrel_fault_active{class}` (used by [`crate::faults::FaultBoard`]).
    pub fn fault_active(&self, class: FaultClass) -> Gauge {
        self.fault_active.get_or_create(&FaultLabels { class }).clone()
    }

    /// Handle for `kestrel_malformed_frames_total{stream}`.
    pub fn malformed_frames(&self, stream: StreamKind) -> Counter {
        self.malformed_frames.get_or_create(&StreamLabels { stream }).clone()
    }

    /// Handle for `kestrel_md_dropped_total{symbol}`.
    pub fn md_dropped(&self, symbol: Symbol) -> Counter {
        self.md_dropped.get_or_create(&symbol_labels(symbol)).clone()
    }
}

fn symbol_labels(symbol: Symbol) -> SymbolLabels {
    SymbolLabels { symbol: SymbolLabel(symbol) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::new(s).unwrap()
    }

    /// The sample lines of `name` (exact metric name before `{` or ` `).
    fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
            .collect()
    }

    #[test]
    fn metrics_encode_contract_names_and_types() {
        let m = Metrics::new();
        let btc = sym("BTCUSDT");
        m.ws_latency(btc, StreamKind::Depth).observe(0.003);
        m.task_latency("signal").observe(0.000_02);
        m.order_roundtrip(btc).observe(0.05);
        m.msg_lag(StreamKind::Depth).set(0.25);
        m.ws_reconnects("md-0").inc();
        let text = m.encode();

        // TC0..TC4: the five contract metrics, with their OpenMetrics TYPE lines.
        for (name, ty) in [
            ("binance_ws_latency_seconds", "histogram"),
            ("task_latency_seconds", "histogram"),
            ("order_roundtrip_seconds", "histogram"),
            ("msg_lag_seconds", "gauge"),
            ("ws_reconnects", "counter"),
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} {ty}\n")),
                "missing TYPE for {name}:\n{text}"
            );
        }
        assert_eq!(
            samples(&text, "binance_ws_latency_seconds_count"),
            vec![r#"binance_ws_latency_seconds_count{symbol="BTCUSDT",stream="depth"} 1"#]
        );
        assert!(text.contains(
            r#"binance_ws_latency_seconds_bucket{le="0.005",symbol="BTCUSDT",stream="depth"} 1"#
        ));
        assert!(text.contains(
            r#"binance_ws_latency_seconds_bucket{le="0.0025",symbol="BTCUSDT",stream="depth"} 0"#
        ));
        assert_eq!(
            samples(&text, "task_latency_seconds_count"),
            vec![r#"task_latency_seconds_count{task="signal"} 1"#]
        );
        assert_eq!(
            samples(&text, "order_roundtrip_seconds_count"),
            vec![r#"order_roundtrip_seconds_count{symbol="BTCUSDT"} 1"#]
        );
        assert_eq!(
            samples(&text, "msg_lag_seconds"),
            vec![r#"msg_lag_seconds{stream="depth"} 0.25"#]
        );
        assert_eq!(
            samples(&text, "ws_reconnects_total"),
            vec![r#"ws_reconnects_total{connection="md-0"} 1"#]
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn metrics_encode_kestrel_series_with_labels() {
        let m = Metrics::new();
        let eth = sym("ETHUSDT");
        m.md_messages(StreamKind::BookTicker).inc_by(3);
        m.book_resyncs(eth, ResyncReason::Gap).inc();
        m.book_state(eth).set(1);
        m.md_fallback().set(1);
        m.signals(eth, "obi").inc();
        m.orders(eth, OrderOutcome::Unknown).inc();
        m.risk_rejections("max_position").inc();
        m.fills(eth).inc();
        m.position(eth).set(-0.5);
        m.pnl(eth, PnlKind::Realised).set(12.5);
        m.ratelimit_weight_used().set(42);
        m.malformed_frames(StreamKind::Trade).inc();
        m.md_dropped(eth).inc_by(7);
        let text = m.encode();

        // TC0..: (metric name, exact sample line)
        let cases = [
            ("kestrel_md_messages_total", r#"kestrel_md_messages_total{stream="bookTicker"} 3"#),
            (
                "kestrel_book_resyncs_total",
                r#"kestrel_book_resyncs_total{symbol="ETHUSDT",reason="gap"} 1"#,
            ),
            ("kestrel_book_state", r#"kestrel_book_state{symbol="ETHUSDT"} 1"#),
            ("kestrel_md_fallback", "kestrel_md_fallback 1"),
            (
                "kestrel_signals_total",
                r#"kestrel_signals_total{symbol="ETHUSDT",strategy="obi"} 1"#,
            ),
            (
                "kestrel_orders_total",
                r#"kestrel_orders_total{symbol="ETHUSDT",outcome="unknown"} 1"#,
            ),
            (
                "kestrel_risk_rejections_total",
                r#"kestrel_risk_rejections_total{reason="max_position"} 1"#,
            ),
            ("kestrel_fills_total", r#"kestrel_fills_total{symbol="ETHUSDT"} 1"#),
            ("kestrel_position", r#"kestrel_position{symbol="ETHUSDT"} -0.5"#),
            ("kestrel_pnl_quote", r#"kestrel_pnl_quote{symbol="ETHUSDT",kind="realised"} 12.5"#),
            ("kestrel_ratelimit_weight_used", "kestrel_ratelimit_weight_used 42"),
            (
                "kestrel_malformed_frames_total",
                r#"kestrel_malformed_frames_total{stream="trade"} 1"#,
            ),
            ("kestrel_md_dropped_total", r#"kestrel_md_dropped_total{symbol="ETHUSDT"} 7"#),
        ];
        for (i, (name, line)) in cases.iter().enumerate() {
            assert_eq!(samples(&text, name), vec![*line], "TC{i}: {name}\n{text}");
        }
        assert!(text.contains("kestrel_build_info{version=\""));
    }

    #[test]
    fn metrics_fault_series_exist_for_every_class_from_start() {
        let text = Metrics::new().encode();
        for &class in FaultClass::ALL {
            let active = format!(r#"kestrel_fault_active{{class="{}"}} 0"#, class.as_str());
            let total = format!(r#"kestrel_faults_total{{class="{}"}} 0"#, class.as_str());
            assert!(text.contains(&active), "missing {active}");
            assert!(text.contains(&total), "missing {total}");
        }
        assert_eq!(samples(&text, "kestrel_md_fallback"), vec!["kestrel_md_fallback 0"]);
    }

    #[test]
    fn metrics_handles_share_storage_with_registry() {
        let m = Metrics::new();
        let btc = sym("BTCUSDT");
        let a = m.ws_latency(btc, StreamKind::Trade);
        let b = m.ws_latency(btc, StreamKind::Trade);
        a.observe(0.001);
        b.observe(0.001);
        let text = m.encode();
        assert_eq!(
            samples(&text, "binance_ws_latency_seconds_count"),
            vec![r#"binance_ws_latency_seconds_count{symbol="BTCUSDT",stream="trade"} 2"#]
        );
    }

    #[test]
    fn metrics_buckets_cover_100us_to_5s_and_alert_thresholds() {
        assert_eq!(NETWORK_LATENCY_BUCKETS.first(), Some(&0.000_1));
        assert_eq!(NETWORK_LATENCY_BUCKETS.last(), Some(&5.0));
        assert!(NETWORK_LATENCY_BUCKETS.contains(&0.2)); // KestrelWsLatencyHigh
        assert!(NETWORK_LATENCY_BUCKETS.contains(&0.5)); // KestrelOrderRoundtripHigh
        assert!(TASK_LATENCY_BUCKETS.contains(&0.05)); // KestrelTaskLatencyHigh
        for b in [&NETWORK_LATENCY_BUCKETS[..], &TASK_LATENCY_BUCKETS[..]] {
            assert!(b.windows(2).all(|w| w[0] < w[1]), "buckets must increase");
        }
    }

    #[test]
    fn metrics_process_series_present_on_linux() {
        let text = Metrics::new().encode();
        if cfg!(target_os = "linux") {
            for name in [
                "process_resident_memory_bytes",
                "process_open_fds",
                "process_cpu_seconds_total",
                "process_threads",
            ] {
                assert_eq!(samples(&text, name).len(), 1, "{name}:\n{text}");
            }
        }
    }
}
