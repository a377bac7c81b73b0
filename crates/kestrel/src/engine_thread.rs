//! The engine on its own OS thread (STYLE.md 2.5): one bounded `Event` channel in, `Action`s
//! out over a bounded channel (backpressure), `EngineSnapshot`s
//! published on a `watch`, per-event `task_latency_seconds{task="engine"}` (market data and
//! timers) and `{task="engine_orders"}` (order results, execution reports) and
//! `ASYNC_TASK_OVERRUN` when one event takes longer than its budget.
//!
//! The thread drives a current-thread Tokio runtime of its own. The engine loop is its main
//! future and the market-data connection tasks are spawned on it ([`EngineThread::runtime`]):
//! socket read → decode → book → engine then happens on one core without a cross-thread
//! wake-up, which was most of the tick-to-decision latency (a futex hand-off between two
//! threads costs 30 µs at the median and hundreds of µs at p99 on a 2-vCPU VM). The engine
//! state is still owned by this one loop; the market-data tasks only send `Event`s into the
//! same bounded inbox as everyone else.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kestrel_engine::{Engine, EngineSnapshot, RejectReason};
use kestrel_model::{Action, BookState, Clock, Event, Symbol, UnixNanos};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::faults::{FaultBoard, FaultClass};
use crate::metrics::{FloatGauge, Metrics, PnlKind};

/// How long after the last overrun `ASYNC_TASK_OVERRUN` is cleared again.
pub const OVERRUN_CLEAR_AFTER: Duration = Duration::from_secs(5);

/// Settings of the engine thread.
#[derive(Debug, Clone, Copy)]
pub struct EngineThreadConfig {
    /// One event → actions may take this long; longer raises `ASYNC_TASK_OVERRUN`.
    pub budget: Duration,
    /// Snapshots are published at least this often while events flow, so the admin API and
    /// status line stay fresh without copying the state on every book tick.
    pub publish_interval: Duration,
    /// After an order event, command or balance the snapshot is published at the first event
    /// at least this long after the previous publication (at once when the engine was quiet).
    /// A snapshot copies every symbol's state (200 symbols: ~200 allocations); publishing it
    /// on each of hundreds of order events per second was the engine thread's largest cost
    /// in the `wide` benchmark.
    pub min_publish_gap: Duration,
}

/// Tracks budget overruns of one task and raises/clears `ASYNC_TASK_OVERRUN` for it.
#[derive(Debug)]
pub struct OverrunTracker {
    /// Task label, for the fault detail.
    task: &'static str,
    /// The budget.
    budget: Duration,
    /// Where the fault goes.
    faults: FaultBoard,
    /// Last time the budget was exceeded (clears the fault `OVERRUN_CLEAR_AFTER` later).
    last_overrun: Option<Instant>,
}

impl OverrunTracker {
    /// A tracker for `task` with `budget`.
    pub fn new(task: &'static str, budget: Duration, faults: FaultBoard) -> Self {
        Self { task, budget, faults, last_overrun: None }
    }

    /// Records one unit of work that took `took`.
    pub fn record(&mut self, took: Duration) {
        let now = Instant::now();
        if took > self.budget {
            self.last_overrun = Some(now);
            self.faults.raise(
                FaultClass::ASYNC_TASK_OVERRUN,
                format_args!("task {} took {:?} (budget {:?})", self.task, took, self.budget),
            );
        } else if let Some(t) = self.last_overrun {
            if now.duration_since(t) >= OVERRUN_CLEAR_AFTER {
                self.last_overrun = None;
                self.faults.clear(FaultClass::ASYNC_TASK_OVERRUN);
            }
        }
    }
}

/// Pre-resolved metric handles the engine thread updates when it publishes a snapshot.
#[derive(Debug)]
struct SymbolGauges {
    /// `kestrel_signals_total{symbol,strategy}`.
    signals: Counter,
    /// Signals already counted.
    signals_seen: u64,
    /// `kestrel_position{symbol}`.
    position: FloatGauge,
    /// `kestrel_pnl_quote{symbol,kind="realised"}`.
    realised: FloatGauge,
    /// `kestrel_pnl_quote{symbol,kind="unrealised"}`.
    unrealised: FloatGauge,
    /// `kestrel_book_state{symbol}`.
    book_state: Gauge,
    /// Risk rejections already counted, per reason.
    rejections_seen: [u64; RejectReason::ALL.len()],
}

/// Metrics fed from snapshots.
#[derive(Debug)]
struct SnapshotMetrics {
    /// Per symbol.
    symbols: HashMap<Symbol, SymbolGauges>,
    /// `kestrel_risk_rejections_total{reason}` per reason.
    rejections: Vec<Counter>,
}

impl SnapshotMetrics {
    fn new(metrics: &Metrics, snap: &EngineSnapshot) -> Self {
        let symbols = snap
            .symbols
            .iter()
            .map(|s| {
                (
                    s.symbol,
                    SymbolGauges {
                        signals: metrics.signals(s.symbol, s.strategy),
                        signals_seen: 0,
                        position: metrics.position(s.symbol),
                        realised: metrics.pnl(s.symbol, PnlKind::Realised),
                        unrealised: metrics.pnl(s.symbol, PnlKind::Unrealised),
                        book_state: metrics.book_state(s.symbol),
                        rejections_seen: [0; RejectReason::ALL.len()],
                    },
                )
            })
            .collect();
        let rejections = RejectReason::ALL.iter().map(|r| metrics.risk_rejections(r)).collect();
        Self { symbols, rejections }
    }

    fn update(&mut self, snap: &EngineSnapshot) {
        for s in &snap.symbols {
            let Some(g) = self.symbols.get_mut(&s.symbol) else { continue };
            if s.signals > g.signals_seen {
                g.signals.inc_by(s.signals - g.signals_seen);
                g.signals_seen = s.signals;
            }
            g.position.set(s.position.to_f64());
            g.realised.set(s.realised_pnl.to_f64());
            g.unrealised.set(s.unrealised_pnl.to_f64());
            g.book_state.set(i64::from(s.book_state == BookState::Synced));
            for (i, &n) in s.risk_rejections.iter().enumerate() {
                let seen = &mut g.rejections_seen[i];
                if n > *seen {
                    if let Some(c) = self.rejections.get(i) {
                        c.inc_by(n - *seen);
                    }
                    *seen = n;
                }
            }
        }
    }
}

/// Everything the engine thread needs besides the engine.
#[derive(Debug)]
pub struct EngineThreadIo {
    /// The one input channel (market data, user data, gateway feedback, timer, admin).
    pub events: mpsc::Receiver<Event>,
    /// Orders out to the execution gateway (bounded: backpressure).
    pub actions: mpsc::Sender<Action>,
    /// Published snapshots.
    pub snapshots: watch::Sender<EngineSnapshot>,
    /// Stops the loop once every event queued before it fired has been handled (so commands
    /// sent just before it, like shutdown's halt and cancel-all, always take effect); wake an
    /// idle loop with any event.
    pub stop: CancellationToken,
}

/// The running engine thread.
#[derive(Debug)]
pub struct EngineThread {
    /// Joins the thread; it returns the engine when it stops.
    pub join: std::thread::JoinHandle<Engine>,
    /// The engine thread's own (current-thread) Tokio runtime. Market-data connection tasks are
    /// spawned here (`Handle::enter` around `market_data::spawn`), so a decoded book update
    /// reaches the engine as a same-thread task wake-up instead of a cross-thread futex
    /// hand-off; nothing else should run on it.
    pub runtime: tokio::runtime::Handle,
}

/// How long the engine thread's runtime waits for its blocking tasks (the market-data
/// connections' DNS look-ups) when it stops.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(1);

/// Starts the engine thread; it returns the engine when it stops (input closed, output
/// closed, or `io.stop` fired). Tasks spawned on [`EngineThread::runtime`] are dropped then.
pub fn spawn(
    mut engine: Engine,
    io: EngineThreadIo,
    cfg: EngineThreadConfig,
    metrics: &Metrics,
    faults: FaultBoard,
    clock: Arc<dyn Clock>,
) -> std::io::Result<EngineThread> {
    // Market data and timers: the decision path (tick → decided).
    let latency: Histogram = metrics.task_latency("engine");
    let latency_exact = metrics.latency().recorder(crate::latency::LatencySeries::TaskEngine);
    // Exchange responses and execution reports: they reach the engine only after their
    // write-ahead journal commit (fsync), so their latency is mostly the disk's; kept apart so
    // the engine's figure is not a mix of two very different paths.
    let latency_orders: Histogram = metrics.task_latency("engine_orders");
    let first = engine.snapshot();
    let mut snap_metrics = SnapshotMetrics::new(metrics, &first);
    snap_metrics.update(&first);
    io.snapshots.send_replace(first);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("kestrel-engine-blocking")
        .build()?;
    let runtime = rt.handle().clone();
    let join = std::thread::Builder::new().name("kestrel-engine".into()).spawn(move || {
        let EngineThreadIo { mut events, actions, snapshots, stop } = io;
        let engine = rt.block_on(async move {
            let mut out: Vec<Action> = Vec::with_capacity(16);
            let mut overrun = OverrunTracker::new("engine", cfg.budget, faults);
            let mut last_publish = Instant::now();
            // An order event, command or balance changed what the snapshot shows and it has
            // not been published yet (the next event after `min_publish_gap` publishes it;
            // the timer's events arrive every 100 ms).
            let mut dirty = false;
            // Events still to handle once `stop` fired: those already queued at that moment.
            let mut drain_left: Option<usize> = None;
            while let Some(ev) = events.recv().await {
                let started = Instant::now();
                out.clear();
                engine.handle(&ev, &mut out);
                let decided = clock.now();
                overrun.record(started.elapsed());
                let received = event_ts_local(&ev);
                if received != UnixNanos::ZERO {
                    let nanos = decided.0.saturating_sub(received.0);
                    if is_market_event(&ev) {
                        latency.observe(nanos as f64 * 1e-9);
                        latency_exact.record_nanos(nanos);
                    } else {
                        latency_orders.observe(nanos as f64 * 1e-9);
                    }
                }
                for a in out.drain(..) {
                    // Backpressure: a full gateway queue parks the engine here (market data
                    // keeps running on this thread and counts what the full inbox drops).
                    if actions.send(a).await.is_err() {
                        tracing::warn!("execution gateway gone; engine thread stops");
                        return engine;
                    }
                }
                let important = matches!(
                    ev,
                    Event::Order(_)
                        | Event::OrderRejected { .. }
                        | Event::OrderUnknown { .. }
                        | Event::Command(_)
                        | Event::Balance(_)
                );
                dirty |= important;
                let since = last_publish.elapsed();
                if (dirty && since >= cfg.min_publish_gap) || since >= cfg.publish_interval {
                    let snap = engine.snapshot();
                    snap_metrics.update(&snap);
                    snapshots.send_replace(snap);
                    last_publish = Instant::now();
                    dirty = false;
                }
                if stop.is_cancelled() {
                    let left = drain_left.get_or_insert_with(|| events.len());
                    if *left == 0 {
                        break;
                    }
                    *left -= 1;
                }
            }
            let snap = engine.snapshot();
            snap_metrics.update(&snap);
            snapshots.send_replace(snap);
            engine
        });
        rt.shutdown_timeout(RUNTIME_SHUTDOWN);
        engine
    })?;
    Ok(EngineThread { join, runtime })
}

/// Market data and timer events: measured as `task_latency_seconds{task="engine"}`; order
/// results and execution reports (journaled before they reach the engine) as
/// `task="engine_orders"`.
pub fn is_market_event(ev: &Event) -> bool {
    matches!(ev, Event::Book(_) | Event::Trade(_) | Event::Timer(_))
}

/// The local receive time an event carries (`ZERO` for commands).
pub fn event_ts_local(ev: &Event) -> UnixNanos {
    match ev {
        Event::Book(top) => top.ts_local,
        Event::Trade(t) => t.ts_local,
        Event::Order(u) => u.ts_local,
        Event::OrderRejected { ts_local, .. } | Event::OrderUnknown { ts_local, .. } => *ts_local,
        Event::Timer(t) => *t,
        Event::Balance(_) | Event::Command(_) => UnixNanos::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kestrel_model::ManualClock;

    #[test]
    fn overrun_raises_then_clears_after_quiet_period() {
        let metrics = Metrics::new();
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(UnixNanos(1)));
        let faults = FaultBoard::new(&metrics, clock);
        let mut t = OverrunTracker::new("engine", Duration::from_millis(1), faults.clone());
        // TC0: within budget: nothing raised.
        t.record(Duration::from_micros(10));
        assert!(!faults.is_active(FaultClass::ASYNC_TASK_OVERRUN));
        // TC1: over budget: raised.
        t.record(Duration::from_millis(5));
        assert!(faults.is_active(FaultClass::ASYNC_TASK_OVERRUN));
        // TC2: quiet again, but not long enough: still raised.
        t.record(Duration::from_micros(10));
        assert!(faults.is_active(FaultClass::ASYNC_TASK_OVERRUN));
        // TC3: the quiet period has passed: cleared.
        t.last_overrun = Some(Instant::now() - OVERRUN_CLEAR_AFTER);
        t.record(Duration::from_micros(10));
        assert!(!faults.is_active(FaultClass::ASYNC_TASK_OVERRUN));
    }
}
