//! Named fault classes and the [`FaultBoard`] where components raise and clear them.
//!
//! A fault is a *state*, not an event: a component raises its class when it detects the
//! condition and clears it when the condition is gone. The board turns each transition into
//! exactly one log line, a `kestrel_faults_total{class}` increment and the
//! `kestrel_fault_active{class}` gauge (which the alerts in `deploy/prometheus/rules.yml`
//! watch with a 3-minute `for:`), and keeps the active set for `kestrel status`.
//! `docs/runbook.md` has one section per class, anchored at [`FaultClass::runbook_anchor`].

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kestrel_binance::rest::RestClient;
use kestrel_engine::EngineSnapshot;
use kestrel_model::{Clock, OrderStatus, UnixNanos};
use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Escalation level of a fault (runbook "Escalation matrix"; the `severity` alert label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Page the on-call now: money or exchange access at risk.
    P0,
    /// Chat/ticket: degraded, the bot protects itself; act within the hour.
    P1,
    /// Daily digest: worth a look, no immediate risk.
    P2,
}

impl Severity {
    /// The label value (`"P0"`, `"P1"`, `"P2"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::P0 => "P0",
            Severity::P1 => "P1",
            Severity::P2 => "P2",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! fault_classes {
    ($($(#[$doc:meta])* $variant:ident => $name:literal, $sev:ident;)+) => {
        /// A named fault class. The names are an operator contract (PRODUCT.md section 3):
        /// they appear in logs, in the `class` label, in alerts and in `docs/runbook.md`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(non_camel_case_types)] // the contract spells them SCREAMING_SNAKE
        pub enum FaultClass {
            $($(#[$doc])* $variant),+
        }

        impl FaultClass {
            /// Every class, in declaration order.
            pub const ALL: &'static [FaultClass] = &[$(FaultClass::$variant),+];

            /// The contract name, e.g. `"WS_HEARTBEAT_MISSED"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(FaultClass::$variant => $name),+
                }
            }

            /// The escalation level (the `severity` label of the class's alert).
            pub const fn severity(self) -> Severity {
                match self {
                    $(FaultClass::$variant => Severity::$sev),+
                }
            }
        }
    };
}

fault_classes! {
    /// No message or pong on a WebSocket within the heartbeat window.
    WS_HEARTBEAT_MISSED => "WS_HEARTBEAT_MISSED", P1;
    /// A task exceeded its time budget (the engine loop, a handler, a REST call).
    ASYNC_TASK_OVERRUN => "ASYNC_TASK_OVERRUN", P1;
    /// A local order book is stale (gap, reconnect, overflow) and not yet re-synced.
    BOOK_STALE => "BOOK_STALE", P1;
    /// The exchange answered 429: request weight or order rate exceeded; backing off.
    RATE_LIMITED => "RATE_LIMITED", P1;
    /// The exchange answered 418: the IP is banned after ignoring 429s.
    IP_BANNED => "IP_BANNED", P0;
    /// An order's outcome is unknown (timeout, 5xx) and reconciliation has not settled it.
    ORDER_UNKNOWN => "ORDER_UNKNOWN", P0;
    /// Local clock and exchange clock differ beyond the `recvWindow` margin (or -1021 seen).
    CLOCK_SKEW => "CLOCK_SKEW", P1;
    /// The drawdown kill switch stopped trading (latched until an operator `resume`).
    KILL_SWITCH => "KILL_SWITCH", P0;
    /// The user data stream (execution reports) is disconnected or its listenKey expired.
    USER_STREAM_DOWN => "USER_STREAM_DOWN", P1;
    /// Market data is coming from REST polling instead of the WebSocket.
    MD_FALLBACK => "MD_FALLBACK", P2;
    /// The journal (SQLite) failed a write: orders cannot be recorded durably.
    JOURNAL_ERROR => "JOURNAL_ERROR", P0;
}

impl FaultClass {
    /// The runbook section anchor: the name in lower case (`docs/runbook.md#ws_heartbeat_missed`).
    pub fn runbook_anchor(self) -> String {
        self.as_str().to_ascii_lowercase()
    }
}

impl fmt::Display for FaultClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl EncodeLabelValue for FaultClass {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

/// One raised fault, as reported by [`FaultBoard::active`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveFault {
    /// Which class.
    pub class: FaultClass,
    /// What the raising component said at the transition (e.g. `"md-0: no frame for 31s"`).
    pub detail: String,
    /// When it was raised.
    pub since: UnixNanos,
}

/// Per-class state.
#[derive(Debug)]
struct Slot {
    /// Lock-free fast path: a component re-raising an already-raised fault on every message
    /// pays one atomic load, no lock and no formatting.
    active: AtomicBool,
    /// Detail and start time while raised; `None` when clear. Only touched on transitions.
    state: Mutex<Option<(String, UnixNanos)>>,
    /// `kestrel_faults_total{class}`, pre-resolved.
    total: Counter,
    /// `kestrel_fault_active{class}`, pre-resolved.
    gauge: Gauge,
}

struct Inner {
    /// Indexed by `FaultClass as usize`.
    slots: Vec<Slot>,
    /// Stamps `since`; a `ManualClock` in tests.
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner").field("slots", &self.slots).finish_non_exhaustive()
    }
}

/// Shared fault state. Cheap to clone (`Arc`); safe to use from any thread or task.
#[derive(Debug, Clone)]
pub struct FaultBoard {
    inner: Arc<Inner>,
}

impl FaultBoard {
    /// A board recording into `metrics`, stamping times from `clock`.
    pub fn new(metrics: &Metrics, clock: Arc<dyn Clock>) -> Self {
        let slots = FaultClass::ALL
            .iter()
            .map(|&class| Slot {
                active: AtomicBool::new(false),
                state: Mutex::new(None),
                total: metrics.faults_total(class),
                gauge: metrics.fault_active(class),
            })
            .collect();
        Self { inner: Arc::new(Inner { slots, clock }) }
    }

    fn slot(&self, class: FaultClass) -> &Slot {
        // `slots` is built from `FaultClass::ALL`, which lists every variant in order.
        &self.inner.slots[class as usize]
    }

    /// Raises `class`. On the clear → raised transition only: one `WARN` log line naming the
    /// class, `kestrel_faults_total{class}` += 1, `kestrel_fault_active{class}` = 1, and
    /// `detail` is recorded (it is not even formatted otherwise, so pass `format_args!`).
    /// Returns whether this call made the transition.
    pub fn raise(&self, class: FaultClass, detail: impl fmt::Display) -> bool {
        let slot = self.slot(class);
        if slot.active.load(Ordering::Acquire) {
            return false;
        }
        let mut state = lock(&slot.state);
        if state.is_some() {
            return false; // another thread won the race
        }
        let detail = detail.to_string();
        tracing::warn!(
            class = class.as_str(),
            severity = class.severity().as_str(),
            detail = %detail,
            "fault raised: {class}: {detail}"
        );
        *state = Some((detail, self.inner.clock.now()));
        slot.total.inc();
        slot.gauge.set(1);
        slot.active.store(true, Ordering::Release);
        true
    }

    /// Clears `class`. On the raised → clear transition only: one `INFO` log line and
    /// `kestrel_fault_active{class}` = 0. Returns whether this call made the transition.
    pub fn clear(&self, class: FaultClass) -> bool {
        let slot = self.slot(class);
        if !slot.active.load(Ordering::Acquire) {
            return false;
        }
        let mut state = lock(&slot.state);
        let Some((_, since)) = state.take() else {
            return false;
        };
        let now = self.inner.clock.now();
        let secs = now.0.saturating_sub(since.0) as f64 / 1e9;
        tracing::info!(
            class = class.as_str(),
            active_secs = secs,
            "fault cleared: {class} after {secs:.1}s"
        );
        slot.gauge.set(0);
        slot.active.store(false, Ordering::Release);
        true
    }

    /// Raises or clears `class` from a level-triggered check (`active` = condition holds now).
    pub fn set(&self, class: FaultClass, active: bool, detail: impl fmt::Display) -> bool {
        if active {
            self.raise(class, detail)
        } else {
            self.clear(class)
        }
    }

    /// Whether `class` is raised. One atomic load.
    pub fn is_active(&self, class: FaultClass) -> bool {
        self.slot(class).active.load(Ordering::Acquire)
    }

    /// The raised faults, in [`FaultClass::ALL`] order, for the admin status.
    pub fn active(&self) -> Vec<ActiveFault> {
        FaultClass::ALL
            .iter()
            .filter_map(|&class| {
                let state = lock(&self.slot(class).state);
                state.as_ref().map(|(detail, since)| ActiveFault {
                    class,
                    detail: detail.clone(),
                    since: *since,
                })
            })
            .collect()
    }
}

/// What [`watch`] follows: the engine (for `KILL_SWITCH`) and the exchange clock (for
/// `CLOCK_SKEW`), the two level-triggered classes no single component owns.
#[derive(Debug, Clone)]
pub struct WatchDeps {
    /// The engine's published state; `kill_switch` drives `KILL_SWITCH`.
    pub snapshots: watch::Receiver<EngineSnapshot>,
    /// Re-measures the exchange clock offset (one weight-1 `GET /api/v3/time` per check; the
    /// measured offset is also what signed requests use from then on).
    pub rest: RestClient,
    /// Where the classes go.
    pub faults: FaultBoard,
    /// `CLOCK_SKEW` is raised while |offset| exceeds this (half the `recvWindow`: beyond it a
    /// signed request's timestamp can fall outside the window on a slow path).
    pub clock_margin: Duration,
    /// How often the offset is re-measured (`execution.clock_check_secs`).
    pub clock_check_every: Duration,
}

/// Raises `KILL_SWITCH` while the engine's drawdown kill switch is tripped (it is latched in
/// the engine until an operator `resume`) and clears it when it is re-armed; raises or clears
/// `CLOCK_SKEW` after each clock measurement. Runs until `cancel` or until the engine's
/// snapshot channel closes. An operator `halt` alone is not a fault: it is the operator's own
/// action, shown as `halted` in `kestrel status`.
pub async fn watch(mut deps: WatchDeps, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(deps.clock_check_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick completes at once; start-up has just measured the offset itself.
    tick.tick().await;
    let mut unknown = UnknownOrders::default();
    follow_engine(
        &deps.snapshots.borrow_and_update(),
        &deps.faults,
        &mut unknown,
        std::time::Instant::now(),
    );
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            changed = deps.snapshots.changed() => {
                if changed.is_err() {
                    break;
                }
                follow_engine(
                    &deps.snapshots.borrow_and_update(),
                    &deps.faults,
                    &mut unknown,
                    std::time::Instant::now(),
                );
            }
            _ = tick.tick() => check_clock(&deps.rest, &deps.faults, deps.clock_margin).await,
        }
    }
}

/// How long `ORDER_UNKNOWN` may stay raised while the engine holds no `Unknown` order before
/// the watcher clears it: the gateway raises the class a moment before the engine has seen
/// the unknown outcome, so a snapshot published in between must not clear it.
pub const ORDER_UNKNOWN_SETTLE: Duration = Duration::from_secs(1);

/// The watcher's view of `ORDER_UNKNOWN`.
#[derive(Debug, Default)]
struct UnknownOrders {
    /// Since when the class has been raised while the engine held no `Unknown` order.
    settled_since: Option<std::time::Instant>,
}

/// `KILL_SWITCH` follows `snap.kill_switch`. `ORDER_UNKNOWN` follows the engine's orders:
/// the execution gateway raises it the moment a request's outcome becomes unknown and clears
/// it when its own query settles the order; but the outcome is just as often settled by the
/// order's execution report on the user stream (the engine then never queries, e.g. an IOC
/// that already expired), which the gateway never sees. So: the engine holds `Unknown`
/// orders → raised; raised while the engine has held none for [`ORDER_UNKNOWN_SETTLE`] →
/// cleared.
fn follow_engine(
    snap: &EngineSnapshot,
    faults: &FaultBoard,
    unknown: &mut UnknownOrders,
    now: std::time::Instant,
) {
    follow_kill_switch(snap, faults);
    let mut unknown_now = snap
        .symbols
        .iter()
        .flat_map(|s| s.open_orders.iter())
        .filter(|o| o.status == OrderStatus::Unknown)
        .map(|o| o.client_id)
        .peekable();
    if unknown_now.peek().is_some() {
        unknown.settled_since = None;
        if !faults.is_active(FaultClass::ORDER_UNKNOWN) {
            let ids: Vec<String> = unknown_now.map(|id| id.to_string()).collect();
            faults.raise(
                FaultClass::ORDER_UNKNOWN,
                format_args!("outcome unknown: {}", ids.join(", ")),
            );
        }
    } else if faults.is_active(FaultClass::ORDER_UNKNOWN) {
        let since = *unknown.settled_since.get_or_insert(now);
        if now.duration_since(since) >= ORDER_UNKNOWN_SETTLE {
            faults.clear(FaultClass::ORDER_UNKNOWN);
            unknown.settled_since = None;
        }
    } else {
        unknown.settled_since = None;
    }
}

/// `KILL_SWITCH` follows `snap.kill_switch`.
fn follow_kill_switch(snap: &EngineSnapshot, faults: &FaultBoard) {
    faults.set(
        FaultClass::KILL_SWITCH,
        snap.kill_switch,
        format_args!(
            "drawdown kill switch tripped: PnL {} against baseline {} (resume re-arms it)",
            snap.pnl, snap.pnl_baseline
        ),
    );
}

/// Re-measures the exchange clock offset and sets `CLOCK_SKEW` from it. A failed measurement
/// changes nothing (the REST error has its own classes).
pub async fn check_clock(rest: &RestClient, faults: &FaultBoard, margin: Duration) {
    match rest.sync_time().await {
        Ok(offset_ns) => {
            let skewed = u128::from(offset_ns.unsigned_abs()) > margin.as_nanos();
            faults.set(
                FaultClass::CLOCK_SKEW,
                skewed,
                format_args!(
                    "exchange clock offset {} ms exceeds the {} ms margin",
                    offset_ns / 1_000_000,
                    margin.as_millis()
                ),
            );
        }
        Err(e) => tracing::debug!(error = %e, "clock offset check failed"),
    }
}

/// Locks a slot, recovering from poisoning: the guarded data is a plain `Option` that a
/// panicking holder cannot leave half-written, so the fault state stays usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    use kestrel_model::ManualClock;

    /// A `MakeWriter` capturing log output for assertions.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Capture {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    fn board() -> (Metrics, FaultBoard, Arc<ManualClock>) {
        let metrics = Metrics::new();
        let clock = Arc::new(ManualClock::new(UnixNanos(1_000_000_000)));
        let board = FaultBoard::new(&metrics, clock.clone());
        (metrics, board, clock)
    }

    fn sample(metrics: &Metrics, name: &str, class: FaultClass) -> String {
        let text = metrics.encode();
        let prefix = format!("{name}{{class=\"{}\"}} ", class.as_str());
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .to_owned()
    }

    #[test]
    fn fault_class_names_are_the_contract() {
        // TC0..: the contract names must never change (PRODUCT.md section 3).
        let cases = [
            (FaultClass::WS_HEARTBEAT_MISSED, "WS_HEARTBEAT_MISSED"),
            (FaultClass::ASYNC_TASK_OVERRUN, "ASYNC_TASK_OVERRUN"),
            (FaultClass::BOOK_STALE, "BOOK_STALE"),
            (FaultClass::RATE_LIMITED, "RATE_LIMITED"),
            (FaultClass::ORDER_UNKNOWN, "ORDER_UNKNOWN"),
            (FaultClass::CLOCK_SKEW, "CLOCK_SKEW"),
            (FaultClass::KILL_SWITCH, "KILL_SWITCH"),
        ];
        for (i, (class, name)) in cases.iter().enumerate() {
            assert_eq!(class.as_str(), *name, "TC{i}");
            assert_eq!(class.to_string(), *name, "TC{i}");
        }
        assert_eq!(FaultClass::WS_HEARTBEAT_MISSED.runbook_anchor(), "ws_heartbeat_missed");
        // ALL is complete and ordered by discriminant (the slot index relies on it).
        for (i, class) in FaultClass::ALL.iter().enumerate() {
            assert_eq!(*class as usize, i);
        }
    }

    #[test]
    fn fault_raise_and_clear_drive_metrics_once_per_transition() {
        let (metrics, board, clock) = board();
        let c = FaultClass::WS_HEARTBEAT_MISSED;
        assert!(!board.is_active(c));
        assert_eq!(sample(&metrics, "kestrel_fault_active", c), "0");

        assert!(board.raise(c, "md-0: no frame for 31s"));
        clock.advance(Duration::from_secs(5));
        // Re-raising per message is a no-op: no second count, detail and since unchanged.
        for _ in 0..100 {
            assert!(!board.raise(c, "ignored"));
        }
        assert!(board.is_active(c));
        assert_eq!(sample(&metrics, "kestrel_fault_active", c), "1");
        assert_eq!(sample(&metrics, "kestrel_faults_total", c), "1");
        assert_eq!(
            board.active(),
            vec![ActiveFault {
                class: c,
                detail: "md-0: no frame for 31s".into(),
                since: UnixNanos(1_000_000_000),
            }]
        );

        assert!(board.clear(c));
        assert!(!board.clear(c));
        assert_eq!(sample(&metrics, "kestrel_fault_active", c), "0");
        assert_eq!(sample(&metrics, "kestrel_faults_total", c), "1");
        assert!(board.active().is_empty());

        // A second episode counts again.
        assert!(board.set(c, true, "again"));
        assert_eq!(sample(&metrics, "kestrel_faults_total", c), "2");
        assert!(board.set(c, false, ""));
        assert!(!board.is_active(c));
    }

    #[test]
    fn fault_classes_are_independent_and_listed_in_order() {
        let (_metrics, board, _clock) = board();
        board.raise(FaultClass::KILL_SWITCH, "drawdown 5.2% > 5%");
        board.raise(FaultClass::BOOK_STALE, format_args!("{} gap", "BTCUSDT"));
        let active: Vec<_> = board.active().into_iter().map(|f| f.class).collect();
        assert_eq!(active, vec![FaultClass::BOOK_STALE, FaultClass::KILL_SWITCH]);
        board.clear(FaultClass::BOOK_STALE);
        assert!(board.is_active(FaultClass::KILL_SWITCH));
        assert!(!board.is_active(FaultClass::BOOK_STALE));
        assert_eq!(board.active()[0].detail, "drawdown 5.2% > 5%");
    }

    #[test]
    fn fault_logs_one_warn_per_raise_and_one_info_per_clear() {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(capture.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let (_metrics, board, _clock) = board();
            for _ in 0..10 {
                board.raise(FaultClass::ASYNC_TASK_OVERRUN, "engine: 12ms > 5ms budget");
            }
            for _ in 0..10 {
                board.clear(FaultClass::ASYNC_TASK_OVERRUN);
            }
        });
        let lines = capture.lines();
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines[0].contains("WARN"), "{}", lines[0]);
        assert!(lines[0].contains("ASYNC_TASK_OVERRUN"), "{}", lines[0]);
        assert!(lines[0].contains("engine: 12ms > 5ms budget"), "{}", lines[0]);
        assert!(lines[1].contains("INFO"), "{}", lines[1]);
        assert!(lines[1].contains("fault cleared: ASYNC_TASK_OVERRUN"), "{}", lines[1]);
    }

    #[test]
    fn fault_board_concurrent_raise_counts_one_transition() {
        let (metrics, board, _clock) = board();
        let c = FaultClass::RATE_LIMITED;
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let board = board.clone();
                    s.spawn(move || usize::from(board.raise(c, format_args!("thread {i}"))))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, 1);
        assert_eq!(sample(&metrics, "kestrel_faults_total", c), "1");
    }

    fn snapshot(
        kill_switch: bool,
        order_status: Option<kestrel_model::OrderStatus>,
    ) -> EngineSnapshot {
        use kestrel_engine::{OrderView, SymbolSnapshot};
        use kestrel_model::{BookSource, BookState, Notional, OrderType, Price, Qty, Side};
        let open_orders = order_status
            .map(|status| OrderView {
                client_id: kestrel_model::ClientOrderId::new("kst-7").unwrap(),
                order_id: None,
                side: Side::Buy,
                kind: OrderType::Limit,
                price: Some(Price::from_mantissa(100)),
                exposure_price: Price::from_mantissa(100),
                orig_qty: Qty::from_mantissa(1),
                cum_qty: Qty::ZERO,
                status,
            })
            .into_iter()
            .collect();
        EngineSnapshot {
            ts: UnixNanos(1),
            halted: kill_switch,
            kill_switch,
            pnl: Notional::from_mantissa(-5),
            pnl_baseline: Notional::ZERO,
            exposure: Notional::ZERO,
            funds: Notional::ZERO,
            next_client_seq: 8,
            symbols: vec![SymbolSnapshot {
                symbol: "BTCUSDT".parse().unwrap(),
                book_state: BookState::Synced,
                book_source: BookSource::WebSocket,
                mid: None,
                spread: None,
                position: Qty::ZERO,
                avg_price: None,
                realised_pnl: Notional::ZERO,
                unrealised_pnl: Notional::ZERO,
                other_fees: Vec::new(),
                exposure: Notional::ZERO,
                open_orders,
                strategy: "passive",
                signals: 0,
                orders_placed: 0,
                risk_rejections: [0; kestrel_engine::RejectReason::ALL.len()],
                exchange_rejections: 0,
            }],
            balances: Vec::new(),
            foreign_order_updates: 0,
            unknown_symbol_events: 0,
        }
    }

    #[test]
    fn fault_watch_follows_kill_switch_and_settles_order_unknown() {
        use kestrel_model::OrderStatus;
        let (metrics, board, _clock) = board();
        let mut unknown = UnknownOrders::default();
        let t0 = std::time::Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let ku = FaultClass::ORDER_UNKNOWN;
        // TC0: kill switch tripped -> KILL_SWITCH raised with the PnL; re-armed -> cleared.
        follow_engine(&snapshot(true, None), &board, &mut unknown, at(0));
        assert!(board.is_active(FaultClass::KILL_SWITCH));
        assert!(board.active()[0].detail.contains("drawdown"), "{:?}", board.active());
        follow_engine(&snapshot(false, None), &board, &mut unknown, at(0));
        assert!(!board.is_active(FaultClass::KILL_SWITCH));
        // TC1: an Unknown order in the engine raises ORDER_UNKNOWN naming it.
        follow_engine(&snapshot(false, Some(OrderStatus::Unknown)), &board, &mut unknown, at(0));
        assert!(board.is_active(ku));
        assert!(board.active()[0].detail.contains("kst-7"));
        // TC2: settled (by an execution report: the gateway never clears it) -> cleared only
        // after ORDER_UNKNOWN_SETTLE without Unknown orders.
        follow_engine(&snapshot(false, Some(OrderStatus::New)), &board, &mut unknown, at(100));
        follow_engine(&snapshot(false, None), &board, &mut unknown, at(900));
        assert!(board.is_active(ku));
        follow_engine(&snapshot(false, None), &board, &mut unknown, at(1100));
        assert!(!board.is_active(ku));
        // TC3: raised by the gateway before the engine has seen the unknown outcome: a snapshot
        // without Unknown orders in between does not clear it, nor count it twice.
        board.raise(ku, "gateway: request timed out");
        follow_engine(&snapshot(false, None), &board, &mut unknown, at(2000));
        follow_engine(&snapshot(false, Some(OrderStatus::Unknown)), &board, &mut unknown, at(2050));
        follow_engine(&snapshot(false, None), &board, &mut unknown, at(2500));
        follow_engine(&snapshot(false, None), &board, &mut unknown, at(3400));
        assert!(board.is_active(ku));
        assert_eq!(sample(&metrics, "kestrel_faults_total", ku), "2");
        follow_engine(&snapshot(false, None), &board, &mut unknown, at(3600));
        assert!(!board.is_active(ku));
    }

    /// Tidy check: every class has a runbook section and an alert with the same severity.
    #[test]
    fn fault_every_class_has_runbook_section_and_alert() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let runbook = std::fs::read_to_string(root.join("docs/runbook.md")).unwrap();
        let rules = std::fs::read_to_string(root.join("deploy/prometheus/rules.yml")).unwrap();
        for &class in FaultClass::ALL {
            let heading = format!("## {}", class.as_str());
            assert!(runbook.lines().any(|l| l.trim_end() == heading), "runbook lacks `{heading}`");
            let anchor = format!("runbook.md#{}", class.runbook_anchor());
            assert!(rules.contains(&anchor), "rules.yml has no alert linking {anchor}");
            // The alert linking the class carries the class's severity.
            let alert = rules.split("- alert: ").find(|a| a.contains(&anchor)).unwrap();
            let sev = format!("severity: {}", class.severity().as_str());
            assert!(alert.contains(&sev), "alert for {class} lacks `{sev}`:\n{alert}");
        }
    }
}
