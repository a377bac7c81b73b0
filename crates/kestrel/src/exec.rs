//! The execution gateway task: turns the engine's `Action`s into exchange requests (REST or
//! WebSocket API), journaling before and after every call, and feeds the outcome back to the
//! engine as `Event`s (capability M4, M6; scenario S01).
//!
//! Rules:
//! - **Intent before sending**: a placement is journaled (`record_intent`, and the client-id
//!   floor raised) before a byte leaves the process; if the journal fails, nothing is sent.
//! - **Unknown is not failed**: a timeout, 5xx or lost connection marks the order `Unknown`
//!   (journal + `Event::OrderUnknown` + `ORDER_UNKNOWN`); the engine's `Action::Query` resolves
//!   it by client id. Nothing is ever re-sent blindly.
//! - **Feedback never deadlocks**: results are queued locally and flushed to the engine's
//!   channel whenever it has room, while new actions are still accepted (bounded by
//!   [`MAX_PENDING_FEEDBACK`]), so a full engine inbox and a full action queue cannot wait on
//!   each other.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kestrel_binance::error::{BinanceError, CODE_NO_SUCH_ORDER};
use kestrel_binance::gateway::OrderGateway;
use kestrel_binance::rest::{NewOrder, OrderRef};
use kestrel_model::{Action, ClientOrderId, Clock, Event, OrderRequest, OrderStatus, Symbol};
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::mpsc;

use crate::engine_thread::OverrunTracker;
use crate::faults::{FaultBoard, FaultClass};
use crate::journal::{ClientIdPrefix, JournalError};
use crate::latency::{LatencyRecorder, LatencySeries};
use crate::metrics::{Metrics, OrderOutcome};
use crate::runtime::SharedJournal;

/// Feedback events queued for the engine before the gateway stops taking new actions.
pub const MAX_PENDING_FEEDBACK: usize = 4096;

/// Code fed to the engine for an order that was refused locally and never sent (journal
/// failure, no connection, invalid request). Binance never uses 0.
pub const CODE_NOT_SENT: i32 = 0;

/// What the gateway needs.
#[derive(Clone)]
pub struct ExecDeps {
    /// REST or WS API order transport.
    pub gateway: OrderGateway,
    /// The journal (intent before sending, acks and rejects after).
    pub journal: SharedJournal,
    /// The engine's inbox, for acks, rejects and unknowns.
    pub events: mpsc::Sender<Event>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Fault board.
    pub faults: FaultBoard,
    /// Wall clock for `ts_local`.
    pub clock: Arc<dyn Clock>,
    /// Client-id prefix (to raise the journal's sequence floor before each intent).
    pub prefix: ClientIdPrefix,
    /// Budget for the gateway's own work per action (the journal write and the network wait
    /// excluded).
    pub budget: Duration,
}

impl std::fmt::Debug for ExecDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecDeps")
            .field("transport", &self.gateway.transport_name())
            .field("prefix", &self.prefix)
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

/// The gateway's state while it runs.
struct Gateway {
    deps: ExecDeps,
    /// Results waiting for room in the engine's inbox.
    pending: VecDeque<Event>,
    /// Orders whose outcome is unknown (drives `ORDER_UNKNOWN`).
    unknown: HashSet<ClientOrderId>,
    /// `order_roundtrip_seconds{symbol}` handles, resolved once per symbol.
    roundtrip: HashMap<Symbol, Histogram>,
    /// `task_latency_seconds{task="exec"}`.
    latency: Histogram,
    /// Exact (HDR) order roundtrip, behind `GET /latency`.
    roundtrip_exact: LatencyRecorder,
    /// Exact (HDR) tick-to-order: triggering event received → order handed to the gateway.
    tick_to_order: LatencyRecorder,
    /// `ASYNC_TASK_OVERRUN` for the own work (journal writes have their own tracker).
    overrun: OverrunTracker,
}

/// Runs the gateway until `actions` is closed (the engine stopped) and every result has been
/// handed to the engine (or the engine is gone).
pub async fn run(deps: ExecDeps, mut actions: mpsc::Receiver<Action>) {
    let latency = deps.metrics.task_latency("exec");
    let overrun = OverrunTracker::new("exec", deps.budget, deps.faults.clone());
    let roundtrip_exact = deps.metrics.latency().recorder(LatencySeries::OrderRoundtrip);
    let tick_to_order = deps.metrics.latency().recorder(LatencySeries::TickToOrder);
    let mut gw = Gateway {
        deps,
        pending: VecDeque::new(),
        unknown: HashSet::new(),
        roundtrip: HashMap::new(),
        latency,
        roundtrip_exact,
        tick_to_order,
        overrun,
    };
    let events = gw.deps.events.clone();
    let mut actions_open = true;
    loop {
        if !actions_open && gw.pending.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            permit = events.reserve(), if !gw.pending.is_empty() => match permit {
                Ok(p) => {
                    if let Some(ev) = gw.pending.pop_front() {
                        p.send(ev);
                    }
                }
                // The engine is gone: nobody to tell; keep executing what is queued.
                Err(_) => gw.pending.clear(),
            },
            action = actions.recv(), if actions_open && gw.pending.len() < MAX_PENDING_FEEDBACK => {
                match action {
                    Some(a) => gw.handle(a).await,
                    None => actions_open = false,
                }
            }
        }
    }
    tracing::debug!("execution gateway stopped");
}

impl Gateway {
    fn now(&self) -> kestrel_model::UnixNanos {
        self.deps.clock.now()
    }

    fn count(&self, symbol: Symbol, outcome: OrderOutcome) {
        self.deps.metrics.orders(symbol, outcome).inc();
    }

    /// Records the gateway's own work on one action: the time since `started` minus `waited`
    /// (the journal write, measured on its own as `task="journal"`).
    fn local_work_done(&mut self, started: Instant, waited: Duration) {
        let took = started.elapsed().saturating_sub(waited);
        self.latency.observe(took.as_secs_f64());
        self.overrun.record(took);
    }

    fn journal_failed(&self, what: &str, e: &JournalCallError) {
        tracing::error!(error = %e, "journal {what} failed");
        self.deps.faults.raise(FaultClass::JOURNAL_ERROR, format_args!("{what}: {e}"));
    }

    async fn handle(&mut self, action: Action) {
        match action {
            Action::Place(req) => self.place(req).await,
            Action::Cancel { symbol, client_id } => self.cancel(symbol, client_id).await,
            Action::CancelAll { symbol } => self.cancel_all(symbol).await,
            Action::Query { symbol, client_id } => self.query(symbol, client_id).await,
        }
    }

    async fn place(&mut self, req: OrderRequest) {
        let started = Instant::now();
        let seq = self.deps.prefix.seq_of(&req.client_id);
        let journal_started = Instant::now();
        let journaled = self
            .deps
            .journal
            .call(move |j| {
                if let Some(s) = seq {
                    j.ensure_client_seq_above(s)?;
                }
                j.record_intent(&req)
            })
            .await;
        let waited = journal_started.elapsed();
        if let Err(e) = journaled {
            self.journal_failed("record intent", &e);
            self.count(req.symbol, OrderOutcome::Error);
            self.pending.push_back(Event::OrderRejected {
                symbol: req.symbol,
                client_id: req.client_id,
                code: CODE_NOT_SENT,
                ts_local: self.now(),
            });
            self.local_work_done(started, waited);
            return;
        }
        self.deps.faults.clear(FaultClass::JOURNAL_ERROR);
        tracing::debug!(client_id = %req.client_id, symbol = %req.symbol, "intent journaled; sending order");
        let order = NewOrder::from_request(&req);
        self.local_work_done(started, waited);
        // The engine stamps `ts_decided` with the triggering event's local receive time.
        if req.ts_decided != kestrel_model::UnixNanos::ZERO {
            self.tick_to_order.record_nanos(self.now().0.saturating_sub(req.ts_decided.0));
        }
        let sent = Instant::now();
        let result = self.deps.gateway.place(&order).await;
        match result {
            Ok(placed) => {
                let rt = sent.elapsed();
                self.roundtrip
                    .entry(req.symbol)
                    .or_insert_with(|| self.deps.metrics.order_roundtrip(req.symbol))
                    .observe(rt.as_secs_f64());
                self.roundtrip_exact.record(rt);
                self.count(req.symbol, OrderOutcome::Accepted);
                self.deps.faults.clear(FaultClass::RATE_LIMITED);
                self.deps.faults.clear(FaultClass::IP_BANNED);
                let update = placed.update;
                if let Err(e) = self.deps.journal.call(move |j| j.record_ack(&update)).await {
                    self.journal_failed("record ack", &e);
                }
                self.pending.push_back(Event::Order(update));
            }
            Err(e) => self.place_failed(&req, e).await,
        }
    }

    async fn place_failed(&mut self, req: &OrderRequest, e: BinanceError) {
        let now = self.now();
        let client_id = req.client_id;
        if e.is_unknown_outcome() {
            tracing::warn!(client_id = %client_id, error = %e, "order outcome unknown; will query");
            self.count(req.symbol, OrderOutcome::Unknown);
            if let Err(je) = self.deps.journal.call(move |j| j.mark_unknown(&client_id, now)).await
            {
                self.journal_failed("mark unknown", &je);
            }
            self.unknown.insert(client_id);
            self.deps.faults.raise(
                FaultClass::ORDER_UNKNOWN,
                format_args!("{} outcome unknown: {e}", client_id),
            );
            self.pending.push_back(Event::OrderUnknown {
                symbol: req.symbol,
                client_id,
                ts_local: now,
            });
            return;
        }
        self.note_rate_limit(&e);
        if e.is_clock_skew() {
            self.deps.faults.raise(FaultClass::CLOCK_SKEW, format_args!("{e}"));
        }
        let code = e.code().unwrap_or(CODE_NOT_SENT);
        let outcome = if e.code().is_some() { OrderOutcome::Rejected } else { OrderOutcome::Error };
        tracing::info!(client_id = %client_id, error = %e, "order refused");
        self.count(req.symbol, outcome);
        let msg = e.to_string();
        if let Err(je) =
            self.deps.journal.call(move |j| j.record_reject(&client_id, code, &msg, now)).await
        {
            self.journal_failed("record reject", &je);
        }
        self.pending.push_back(Event::OrderRejected {
            symbol: req.symbol,
            client_id,
            code,
            ts_local: now,
        });
    }

    fn note_rate_limit(&self, e: &BinanceError) {
        if !e.is_rate_limited() {
            return;
        }
        let banned = matches!(e, BinanceError::RateLimited { banned: true, .. })
            || matches!(e, BinanceError::Api { http_status: 418, .. });
        let class = if banned { FaultClass::IP_BANNED } else { FaultClass::RATE_LIMITED };
        self.deps.faults.raise(class, format_args!("{e}"));
    }

    async fn cancel(&mut self, symbol: Symbol, client_id: ClientOrderId) {
        let started = Instant::now();
        let now = self.now();
        let journal_started = Instant::now();
        match self.deps.journal.call(move |j| j.record_cancel_requested(&client_id, now)).await {
            Ok(()) | Err(JournalCallError::Journal(JournalError::UnknownOrder(_))) => {}
            Err(e) => self.journal_failed("record cancel", &e),
        }
        let waited = journal_started.elapsed();
        self.local_work_done(started, waited);
        match self.deps.gateway.cancel(symbol, OrderRef::Client(client_id)).await {
            Ok(update) => {
                self.count(symbol, OrderOutcome::Canceled);
                self.record_update(update).await;
                self.pending.push_back(Event::Order(update));
            }
            Err(e) => {
                self.note_rate_limit(&e);
                tracing::info!(client_id = %client_id, error = %e, "cancel refused");
                if e.is_unknown_outcome() {
                    self.pending.push_back(Event::OrderUnknown {
                        symbol,
                        client_id,
                        ts_local: self.now(),
                    });
                } else {
                    let code = e.code().unwrap_or(CODE_NOT_SENT);
                    self.pending.push_back(Event::OrderRejected {
                        symbol,
                        client_id,
                        code,
                        ts_local: self.now(),
                    });
                }
            }
        }
    }

    async fn cancel_all(&mut self, symbol: Symbol) {
        match self.deps.gateway.cancel_all(symbol).await {
            Ok(updates) => {
                for u in updates {
                    self.count(symbol, OrderOutcome::Canceled);
                    self.record_update(u).await;
                    self.pending.push_back(Event::Order(u));
                }
            }
            Err(e) => {
                self.note_rate_limit(&e);
                // -2011 "Unknown order sent." = nothing open: fine.
                tracing::info!(symbol = %symbol, error = %e, "cancel-all refused");
            }
        }
    }

    async fn query(&mut self, symbol: Symbol, client_id: ClientOrderId) {
        match self.deps.gateway.query(symbol, OrderRef::Client(client_id)).await {
            Ok(update) => {
                self.record_update(update).await;
                self.resolved(client_id);
                self.pending.push_back(Event::Order(update));
            }
            Err(e) if e.code() == Some(CODE_NO_SUCH_ORDER) => {
                // The placement never reached the exchange (or was purged): nothing rests.
                let now = self.now();
                let known_open = self
                    .deps
                    .journal
                    .call(move |j| Ok(j.order(&client_id)?.map(|o| o.status)))
                    .await;
                if let Ok(Some(status)) = known_open {
                    if matches!(status, OrderStatus::Unknown | OrderStatus::PendingNew) {
                        let r = self
                            .deps
                            .journal
                            .call(move |j| {
                                j.record_reject(
                                    &client_id,
                                    CODE_NO_SUCH_ORDER,
                                    "not on the exchange (query)",
                                    now,
                                )
                            })
                            .await;
                        if let Err(je) = r {
                            self.journal_failed("record reject", &je);
                        }
                    }
                }
                self.resolved(client_id);
                self.pending.push_back(Event::OrderRejected {
                    symbol,
                    client_id,
                    code: CODE_NO_SUCH_ORDER,
                    ts_local: now,
                });
            }
            Err(e) => {
                self.note_rate_limit(&e);
                tracing::warn!(client_id = %client_id, error = %e, "order query failed; the engine will ask again");
            }
        }
    }

    fn resolved(&mut self, client_id: ClientOrderId) {
        if self.unknown.remove(&client_id) && self.unknown.is_empty() {
            self.deps.faults.clear(FaultClass::ORDER_UNKNOWN);
        }
    }

    async fn record_update(&self, update: kestrel_model::OrderUpdate) {
        match self.deps.journal.call(move |j| j.record_update(&update)).await {
            Ok(_) | Err(JournalCallError::Journal(JournalError::UnknownOrder(_))) => {}
            Err(e) => self.journal_failed("record update", &e),
        }
    }
}

/// A journal call from async code failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalCallError {
    /// The journal refused or SQLite failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The blocking task running the call panicked or was cancelled, or a previous call
    /// panicked while holding the journal.
    #[error("journal worker failed: {0}")]
    Worker(&'static str),
}
