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
//!   channel whenever it has room, while requests keep completing and new actions are still
//!   accepted (bounded by [`MAX_PENDING_FEEDBACK`]), so a full engine inbox and a full action
//!   queue cannot wait on each other.
//! - **Pipelined**: up to `execution.max_in_flight` actions ([`ExecOptions::max_in_flight`])
//!   run at once, each as its own task (journal write, exchange round trip, journal write), so
//!   the gateway's capacity is `max_in_flight / (RTT + fsyncs)` instead of `1 / (RTT +
//!   fsyncs)`. When that many are in flight (or that many accepted actions wait behind an
//!   earlier one, see below) the gateway stops taking actions (the engine's `send` waits:
//!   backpressure) but keeps flushing feedback and finishing requests.
//! - **Ordering**: actions on the same client order id run one after the other, in the order
//!   the engine sent them (a cancel or query for an order whose placement is still in flight
//!   starts only after the placement's result has been queued for the engine, so the engine
//!   always sees the ack before the cancel's outcome). `CancelAll { symbol }` is a barrier for
//!   its symbol: it starts once every earlier action of the symbol has finished, and later
//!   actions of the symbol start after it. Actions of different orders and symbols overlap
//!   freely. A held action also holds every later action it conflicts with (same order, or
//!   same symbol when either is a `CancelAll`), never the others.
//! - **Nothing lost at shutdown**: when the action channel closes, [`run`] returns only after
//!   every accepted action has run and its feedback has been handed to the engine (or the
//!   engine is gone). A crash with requests in flight is covered by the write-ahead intent
//!   (start-up reconciliation queries every journaled order that has no final state).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kestrel_binance::error::{BinanceError, CODE_NO_SUCH_ORDER};
use kestrel_binance::gateway::OrderGateway;
use kestrel_binance::rest::{NewOrder, OrderRef};
use kestrel_model::{Action, ClientOrderId, Clock, Event, OrderRequest, OrderStatus, Symbol};
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::mpsc;
use tokio::task::{Id as TaskId, JoinError, JoinSet};

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

/// Default of `execution.max_in_flight`: actions executed at once.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 16;

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

/// How the gateway pipelines (see the module doc).
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Actions executed at once (`execution.max_in_flight`); at the limit the gateway stops
    /// taking actions. 0 is treated as 1.
    pub max_in_flight: usize,
    /// Live count of the actions in flight and its peak, for tests and diagnostics.
    pub in_flight: InFlight,
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self { max_in_flight: DEFAULT_MAX_IN_FLIGHT, in_flight: InFlight::default() }
    }
}

impl ExecOptions {
    /// Options with `max_in_flight` actions at once and a fresh [`InFlight`] counter.
    pub fn with_max_in_flight(max_in_flight: usize) -> Self {
        Self { max_in_flight, ..Self::default() }
    }
}

/// How many actions the gateway is executing now, and the most it ever executed at once.
/// Cloning shares the counters.
#[derive(Debug, Clone, Default)]
pub struct InFlight(Arc<InFlightCounters>);

/// The shared counters behind [`InFlight`].
#[derive(Debug, Default)]
struct InFlightCounters {
    /// Actions executing now.
    now: AtomicUsize,
    /// Highest `now` seen (shows that requests overlapped, and that the limit held).
    peak: AtomicUsize,
    /// Woken on every change of `now` (for [`InFlight::wait_for`]).
    changed: tokio::sync::Notify,
}

impl InFlight {
    /// Actions executing now.
    pub fn current(&self) -> usize {
        self.0.now.load(Ordering::SeqCst)
    }

    /// The most actions that were ever executing at once.
    pub fn peak(&self) -> usize {
        self.0.peak.load(Ordering::SeqCst)
    }

    /// Waits until `ready(current)` holds (checked now and after every change).
    pub async fn wait_for(&self, ready: impl Fn(usize) -> bool) {
        loop {
            let changed = self.0.changed.notified();
            tokio::pin!(changed);
            // Registered before the check, so a change between the check and the await wakes us.
            changed.as_mut().enable();
            if ready(self.current()) {
                return;
            }
            changed.await;
        }
    }

    fn enter(&self) {
        let now = self.0.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.peak.fetch_max(now, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }

    fn leave(&self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

/// Runs the gateway with the default options ([`DEFAULT_MAX_IN_FLIGHT`]) until `actions` is
/// closed (the engine stopped) and every result has been handed to the engine (or the engine
/// is gone).
pub async fn run(deps: ExecDeps, actions: mpsc::Receiver<Action>) {
    run_with(deps, ExecOptions::default(), actions).await;
}

/// Runs the gateway with `options` until `actions` is closed (the engine stopped), every
/// accepted action has finished and every result has been handed to the engine (or the
/// engine is gone).
pub async fn run_with(deps: ExecDeps, options: ExecOptions, mut actions: mpsc::Receiver<Action>) {
    let latency = deps.metrics.task_latency("exec");
    let overrun = OverrunTracker::new("exec", deps.budget, deps.faults.clone());
    let roundtrip_exact = deps.metrics.latency().recorder(LatencySeries::OrderRoundtrip);
    let tick_to_order = deps.metrics.latency().recorder(LatencySeries::TickToOrder);
    let events = deps.events.clone();
    let mut gw = Gateway {
        ctx: Arc::new(Ctx { deps }),
        max_in_flight: options.max_in_flight.max(1),
        in_flight: options.in_flight,
        tasks: JoinSet::new(),
        scopes: HashMap::new(),
        sched: Scheduler::default(),
        pending: VecDeque::new(),
        unknown: HashSet::new(),
        roundtrip: HashMap::new(),
        latency,
        roundtrip_exact,
        tick_to_order,
        overrun,
    };
    let mut actions_open = true;
    loop {
        gw.start_ready();
        // Nothing runs, so nothing waits either (`start_ready` starts the first waiting action
        // whenever nothing runs).
        if !actions_open && gw.tasks.is_empty() && gw.pending.is_empty() {
            break;
        }
        let accepting = actions_open && gw.accepting();
        tokio::select! {
            biased;
            permit = events.reserve(), if !gw.pending.is_empty() => match permit {
                Ok(p) => {
                    if let Some(ev) = gw.pending.pop_front() {
                        p.send(ev);
                    }
                }
                // The engine is gone: nobody to tell; keep executing what is accepted.
                Err(_) => gw.pending.clear(),
            },
            joined = gw.tasks.join_next_with_id(), if !gw.tasks.is_empty() => {
                if let Some(joined) = joined {
                    gw.finish(joined);
                }
            }
            action = actions.recv(), if accepting => match action {
                Some(a) => gw.sched.push(a),
                None => actions_open = false,
            },
            // Unreachable: with nothing pending and nothing running the gateway is accepting
            // (or the loop ended above). Kept so a broken invariant stops the task loudly
            // instead of panicking in `select!`.
            else => {
                tracing::error!("execution gateway has nothing to wait for; stopping");
                break;
            }
        }
    }
    tracing::debug!("execution gateway stopped");
}

/// The gateway's state while it runs (owned by the [`run_with`] loop; the action tasks only
/// see the shared [`Ctx`] and report back through [`Done`]).
struct Gateway {
    /// What every action task needs.
    ctx: Arc<Ctx>,
    /// Actions executed at once (≥ 1).
    max_in_flight: usize,
    /// Shared in-flight counters.
    in_flight: InFlight,
    /// The actions executing now.
    tasks: JoinSet<Done>,
    /// Which order or symbol each running task holds (released when it finishes, even if it
    /// panicked).
    scopes: HashMap<TaskId, Scope>,
    /// Accepted actions and the per-order / per-symbol ordering rules.
    sched: Scheduler,
    /// Results waiting for room in the engine's inbox.
    pending: VecDeque<Event>,
    /// Orders whose outcome is unknown (drives `ORDER_UNKNOWN`).
    unknown: HashSet<ClientOrderId>,
    /// `order_roundtrip_seconds{symbol}` handles, resolved once per symbol.
    roundtrip: HashMap<Symbol, Histogram>,
    /// `task_latency_seconds{task="exec"}`.
    latency: Histogram,
    /// Exact (HDR) order roundtrip, behind `GET /latency` (recorded by this loop only, so the
    /// recorder's `try_lock` never meets another writer).
    roundtrip_exact: LatencyRecorder,
    /// Exact (HDR) tick-to-order: triggering event received → order handed to the gateway.
    tick_to_order: LatencyRecorder,
    /// `ASYNC_TASK_OVERRUN` for the own work (journal writes have their own tracker).
    overrun: OverrunTracker,
}

impl Gateway {
    /// Whether a new action may be taken from the channel.
    fn accepting(&self) -> bool {
        self.tasks.len() < self.max_in_flight
            && self.sched.waiting.len() < self.max_in_flight
            && self.pending.len() < MAX_PENDING_FEEDBACK
    }

    /// Starts every accepted action the ordering rules and the in-flight limit allow.
    fn start_ready(&mut self) {
        let room = self.max_in_flight.saturating_sub(self.tasks.len());
        if room == 0 || self.sched.waiting.is_empty() {
            return;
        }
        for action in self.sched.take_ready(room) {
            let scope = Scope::of(&action);
            self.in_flight.enter();
            let handle = self.tasks.spawn(execute(self.ctx.clone(), action));
            self.scopes.insert(handle.id(), scope);
        }
    }

    /// Releases a finished task's order/symbol and applies its result.
    fn finish(&mut self, joined: Result<(TaskId, Done), JoinError>) {
        let (id, done) = match joined {
            Ok((id, done)) => (id, Some(done)),
            Err(e) => {
                // A bug (panic) in the task: the engine hears nothing and resolves the order
                // by its ack timeout and a query.
                tracing::error!(error = %e, "execution task failed");
                (e.id(), None)
            }
        };
        if let Some(scope) = self.scopes.remove(&id) {
            self.sched.finished(scope);
        }
        self.in_flight.leave();
        if let Some(done) = done {
            self.apply(done);
        }
    }

    fn apply(&mut self, done: Done) {
        if let Some(took) = done.own_work {
            self.latency.observe(took.as_secs_f64());
            self.overrun.record(took);
        }
        if let Some(nanos) = done.tick_to_order_nanos {
            self.tick_to_order.record_nanos(nanos);
        }
        if let Some((symbol, rt)) = done.roundtrip {
            let metrics = &self.ctx.deps.metrics;
            self.roundtrip
                .entry(symbol)
                .or_insert_with(|| metrics.order_roundtrip(symbol))
                .observe(rt.as_secs_f64());
            self.roundtrip_exact.record(rt);
        }
        // Raised here, not in the task, so it cannot interleave with a concurrent
        // resolution clearing the class while this order is still unknown.
        if let Some((client_id, detail)) = done.unknown {
            self.unknown.insert(client_id);
            self.ctx.deps.faults.raise(FaultClass::ORDER_UNKNOWN, detail);
        }
        if let Some(client_id) = done.resolved {
            if self.unknown.remove(&client_id) && self.unknown.is_empty() {
                self.ctx.deps.faults.clear(FaultClass::ORDER_UNKNOWN);
            }
        }
        self.pending.extend(done.events);
    }
}

// ---------------------------------------------------------------------------------------------
// Ordering
// ---------------------------------------------------------------------------------------------

/// What an action holds while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// One order (place, cancel, query).
    Order { symbol: Symbol, client_id: ClientOrderId },
    /// A whole symbol (`CancelAll`).
    Symbol(Symbol),
}

impl Scope {
    fn of(action: &Action) -> Self {
        match action {
            Action::Place(req) => Self::Order { symbol: req.symbol, client_id: req.client_id },
            Action::Cancel { symbol, client_id } | Action::Query { symbol, client_id } => {
                Self::Order { symbol: *symbol, client_id: *client_id }
            }
            Action::CancelAll { symbol } => Self::Symbol(*symbol),
        }
    }

    fn symbol(self) -> Symbol {
        match self {
            Self::Order { symbol, .. } | Self::Symbol(symbol) => symbol,
        }
    }

    /// Whether the two must not run at the same time nor be reordered.
    fn conflicts(self, other: Scope) -> bool {
        match (self, other) {
            (Self::Order { client_id: a, .. }, Self::Order { client_id: b, .. }) => a == b,
            _ => self.symbol() == other.symbol(),
        }
    }
}

/// Accepted actions waiting to start, and what the running ones hold.
#[derive(Debug, Default)]
struct Scheduler {
    /// Accepted actions not started yet, in the order the engine sent them.
    waiting: VecDeque<Action>,
    /// Orders with an action running.
    busy_orders: HashSet<ClientOrderId>,
    /// Running actions per symbol (a `CancelAll` waits for zero).
    busy_symbols: HashMap<Symbol, usize>,
    /// Symbols whose `CancelAll` is running.
    barriers: HashSet<Symbol>,
}

impl Scheduler {
    fn push(&mut self, action: Action) {
        self.waiting.push_back(action);
    }

    /// Nothing waiting and nothing running.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.busy_symbols.is_empty()
    }

    /// Whether `scope` may start given what is running.
    fn free(&self, scope: Scope) -> bool {
        match scope {
            Scope::Order { symbol, client_id } => {
                !self.busy_orders.contains(&client_id) && !self.barriers.contains(&symbol)
            }
            Scope::Symbol(symbol) => !self.busy_symbols.contains_key(&symbol),
        }
    }

    /// Removes (in arrival order) up to `room` actions that may start now and marks them
    /// running. An action stays if what it needs is running, or if an earlier waiting action
    /// conflicts with it (so conflicting actions keep their order).
    fn take_ready(&mut self, room: usize) -> Vec<Action> {
        let mut out = Vec::new();
        let mut held: Vec<Scope> = Vec::new();
        let mut i = 0;
        while i < self.waiting.len() && out.len() < room {
            let scope = Scope::of(&self.waiting[i]);
            if self.free(scope) && !held.iter().any(|h| h.conflicts(scope)) {
                self.started(scope);
                if let Some(a) = self.waiting.remove(i) {
                    out.push(a);
                }
            } else {
                held.push(scope);
                i += 1;
            }
        }
        out
    }

    fn started(&mut self, scope: Scope) {
        match scope {
            Scope::Order { client_id, .. } => {
                self.busy_orders.insert(client_id);
            }
            Scope::Symbol(symbol) => {
                self.barriers.insert(symbol);
            }
        }
        *self.busy_symbols.entry(scope.symbol()).or_default() += 1;
    }

    fn finished(&mut self, scope: Scope) {
        match scope {
            Scope::Order { client_id, .. } => {
                self.busy_orders.remove(&client_id);
            }
            Scope::Symbol(symbol) => {
                self.barriers.remove(&symbol);
            }
        }
        let symbol = scope.symbol();
        if let Some(n) = self.busy_symbols.get_mut(&symbol) {
            *n -= 1;
            if *n == 0 {
                self.busy_symbols.remove(&symbol);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One action
// ---------------------------------------------------------------------------------------------

/// What every action task shares.
struct Ctx {
    /// Transport, journal, metrics, faults, clock.
    deps: ExecDeps,
}

/// What one action produced, applied by the gateway loop (which owns the metric handles,
/// the unknown-order set and the feedback queue).
#[derive(Debug, Default)]
struct Done {
    /// Feedback for the engine, in order.
    events: Vec<Event>,
    /// The gateway's own work on the action (`task_latency_seconds{task="exec"}`).
    own_work: Option<Duration>,
    /// Tick-to-order of a placement that was handed to the transport.
    tick_to_order_nanos: Option<u64>,
    /// Order roundtrip of an accepted placement.
    roundtrip: Option<(Symbol, Duration)>,
    /// An order whose outcome became unknown, with the fault detail.
    unknown: Option<(ClientOrderId, String)>,
    /// An order whose outcome is known again.
    resolved: Option<ClientOrderId>,
}

/// Runs one action to completion.
async fn execute(ctx: Arc<Ctx>, action: Action) -> Done {
    let mut done = Done::default();
    match action {
        Action::Place(req) => ctx.place(req, &mut done).await,
        Action::Cancel { symbol, client_id } => ctx.cancel(symbol, client_id, &mut done).await,
        Action::CancelAll { symbol } => ctx.cancel_all(symbol, &mut done).await,
        Action::Query { symbol, client_id } => ctx.query(symbol, client_id, &mut done).await,
    }
    done
}

impl Ctx {
    fn now(&self) -> kestrel_model::UnixNanos {
        self.deps.clock.now()
    }

    fn count(&self, symbol: Symbol, outcome: OrderOutcome) {
        self.deps.metrics.orders(symbol, outcome).inc();
    }

    fn journal_failed(&self, what: &str, e: &JournalCallError) {
        tracing::error!(error = %e, "journal {what} failed");
        self.deps.faults.raise(FaultClass::JOURNAL_ERROR, format_args!("{what}: {e}"));
    }

    async fn place(&self, req: OrderRequest, done: &mut Done) {
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
            done.events.push(Event::OrderRejected {
                symbol: req.symbol,
                client_id: req.client_id,
                code: CODE_NOT_SENT,
                ts_local: self.now(),
            });
            done.own_work = Some(started.elapsed().saturating_sub(waited));
            return;
        }
        self.deps.faults.clear(FaultClass::JOURNAL_ERROR);
        tracing::debug!(client_id = %req.client_id, symbol = %req.symbol, "intent journaled; sending order");
        let order = NewOrder::from_request(&req);
        done.own_work = Some(started.elapsed().saturating_sub(waited));
        // The engine stamps `ts_decided` with the triggering event's local receive time.
        if req.ts_decided != kestrel_model::UnixNanos::ZERO {
            done.tick_to_order_nanos = Some(self.now().0.saturating_sub(req.ts_decided.0));
        }
        let sent = Instant::now();
        let result = self.deps.gateway.place(&order).await;
        match result {
            Ok(placed) => {
                done.roundtrip = Some((req.symbol, sent.elapsed()));
                self.count(req.symbol, OrderOutcome::Accepted);
                self.deps.faults.clear(FaultClass::RATE_LIMITED);
                self.deps.faults.clear(FaultClass::IP_BANNED);
                let update = placed.update;
                if let Err(e) = self.deps.journal.call(move |j| j.record_ack(&update)).await {
                    self.journal_failed("record ack", &e);
                }
                done.events.push(Event::Order(update));
            }
            Err(e) => self.place_failed(&req, e, done).await,
        }
    }

    async fn place_failed(&self, req: &OrderRequest, e: BinanceError, done: &mut Done) {
        let now = self.now();
        let client_id = req.client_id;
        if e.is_unknown_outcome() {
            tracing::warn!(client_id = %client_id, error = %e, "order outcome unknown; will query");
            self.count(req.symbol, OrderOutcome::Unknown);
            if let Err(je) = self.deps.journal.call(move |j| j.mark_unknown(&client_id, now)).await
            {
                self.journal_failed("mark unknown", &je);
            }
            done.unknown = Some((client_id, format!("{client_id} outcome unknown: {e}")));
            done.events.push(Event::OrderUnknown { symbol: req.symbol, client_id, ts_local: now });
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
        done.events.push(Event::OrderRejected {
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

    async fn cancel(&self, symbol: Symbol, client_id: ClientOrderId, done: &mut Done) {
        let started = Instant::now();
        let now = self.now();
        let journal_started = Instant::now();
        match self.deps.journal.call(move |j| j.record_cancel_requested(&client_id, now)).await {
            Ok(()) | Err(JournalCallError::Journal(JournalError::UnknownOrder(_))) => {}
            Err(e) => self.journal_failed("record cancel", &e),
        }
        let waited = journal_started.elapsed();
        done.own_work = Some(started.elapsed().saturating_sub(waited));
        match self.deps.gateway.cancel(symbol, OrderRef::Client(client_id)).await {
            Ok(update) => {
                self.count(symbol, OrderOutcome::Canceled);
                self.record_update(update).await;
                done.events.push(Event::Order(update));
            }
            Err(e) => {
                self.note_rate_limit(&e);
                tracing::info!(client_id = %client_id, error = %e, "cancel refused");
                if e.is_unknown_outcome() {
                    done.events.push(Event::OrderUnknown {
                        symbol,
                        client_id,
                        ts_local: self.now(),
                    });
                } else {
                    let code = e.code().unwrap_or(CODE_NOT_SENT);
                    done.events.push(Event::OrderRejected {
                        symbol,
                        client_id,
                        code,
                        ts_local: self.now(),
                    });
                }
            }
        }
    }

    async fn cancel_all(&self, symbol: Symbol, done: &mut Done) {
        match self.deps.gateway.cancel_all(symbol).await {
            Ok(updates) => {
                for u in updates {
                    self.count(symbol, OrderOutcome::Canceled);
                    self.record_update(u).await;
                    done.events.push(Event::Order(u));
                }
            }
            Err(e) => {
                self.note_rate_limit(&e);
                // -2011 "Unknown order sent." = nothing open: fine.
                tracing::info!(symbol = %symbol, error = %e, "cancel-all refused");
            }
        }
    }

    async fn query(&self, symbol: Symbol, client_id: ClientOrderId, done: &mut Done) {
        match self.deps.gateway.query(symbol, OrderRef::Client(client_id)).await {
            Ok(update) => {
                self.record_update(update).await;
                done.resolved = Some(client_id);
                done.events.push(Event::Order(update));
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
                done.resolved = Some(client_id);
                done.events.push(Event::OrderRejected {
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
    /// The journal's thread stopped (a call panicked), so the call's outcome is unknown.
    #[error("journal worker failed: {0}")]
    Worker(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        s.parse().expect("symbol")
    }

    fn cid(s: &str) -> ClientOrderId {
        s.parse().expect("client id")
    }

    fn place(symbol: &str, id: &str) -> Action {
        Action::Place(OrderRequest {
            symbol: sym(symbol),
            client_id: cid(id),
            side: kestrel_model::Side::Buy,
            kind: kestrel_model::OrderType::Limit,
            time_in_force: Some(kestrel_model::TimeInForce::Gtc),
            price: Some("1".parse().expect("price")),
            qty: "1".parse().expect("qty"),
            ts_decided: kestrel_model::UnixNanos::ZERO,
        })
    }

    fn cancel(symbol: &str, id: &str) -> Action {
        Action::Cancel { symbol: sym(symbol), client_id: cid(id) }
    }

    fn query(symbol: &str, id: &str) -> Action {
        Action::Query { symbol: sym(symbol), client_id: cid(id) }
    }

    fn cancel_all(symbol: &str) -> Action {
        Action::CancelAll { symbol: sym(symbol) }
    }

    /// A short label per action: `P:a`, `C:a`, `Q:a`, `X:BTCUSDT`.
    fn label(a: &Action) -> String {
        match a {
            Action::Place(r) => format!("P:{}", r.client_id),
            Action::Cancel { client_id, .. } => format!("C:{client_id}"),
            Action::Query { client_id, .. } => format!("Q:{client_id}"),
            Action::CancelAll { symbol } => format!("X:{symbol}"),
        }
    }

    /// One step: finish the running actions labelled `finish`, then take up to `room`.
    struct Step {
        finish: &'static [&'static str],
        room: usize,
        started: &'static [&'static str],
    }

    fn run_steps(actions: Vec<Action>, steps: &[Step]) {
        let mut s = Scheduler::default();
        let mut running: Vec<(String, Scope)> = Vec::new();
        for a in actions {
            s.push(a);
        }
        for (i, step) in steps.iter().enumerate() {
            for f in step.finish {
                let at = running.iter().position(|(l, _)| l == f).expect("finishing a running one");
                let (_, scope) = running.remove(at);
                s.finished(scope);
            }
            let got: Vec<String> = s
                .take_ready(step.room)
                .iter()
                .map(|a| {
                    running.push((label(a), Scope::of(a)));
                    label(a)
                })
                .collect();
            assert_eq!(got, step.started, "step {i}");
        }
        for (_, scope) in running.drain(..) {
            s.finished(scope);
        }
        assert!(s.is_empty(), "every action started and finished");
    }

    #[test]
    fn scheduler_orders_actions_per_order_and_symbol() {
        // TC0: a cancel and a query wait for their order's placement, in the order sent;
        // another order overlaps.
        run_steps(
            vec![
                place("BTCUSDT", "a"),
                cancel("BTCUSDT", "a"),
                query("BTCUSDT", "a"),
                place("BTCUSDT", "b"),
            ],
            &[
                Step { finish: &[], room: 16, started: &["P:a", "P:b"] },
                Step { finish: &["P:b"], room: 16, started: &[] },
                Step { finish: &["P:a"], room: 16, started: &["C:a"] },
                Step { finish: &["C:a"], room: 16, started: &["Q:a"] },
            ],
        );
        // TC1: cancel-all waits for its symbol's running actions and holds the later ones;
        // the other symbol runs freely.
        run_steps(
            vec![
                place("BTCUSDT", "a"),
                place("BTCUSDT", "b"),
                cancel_all("BTCUSDT"),
                place("BTCUSDT", "c"),
                place("ETHUSDT", "d"),
            ],
            &[
                Step { finish: &[], room: 16, started: &["P:a", "P:b", "P:d"] },
                Step { finish: &["P:a", "P:d"], room: 16, started: &[] },
                Step { finish: &["P:b"], room: 16, started: &["X:BTCUSDT"] },
                Step { finish: &["X:BTCUSDT"], room: 16, started: &["P:c"] },
            ],
        );
        // TC2: the room limits how many start; the earliest go first.
        run_steps(
            vec![place("BTCUSDT", "a"), place("BTCUSDT", "b"), place("ETHUSDT", "c")],
            &[
                Step { finish: &[], room: 2, started: &["P:a", "P:b"] },
                Step { finish: &["P:b"], room: 1, started: &["P:c"] },
            ],
        );
        // TC3: a cancel-all behind a cancel-all of the same symbol waits for it; a held
        // cancel-all holds a later action on an otherwise free order of its symbol.
        run_steps(
            vec![cancel_all("BTCUSDT"), cancel_all("BTCUSDT"), cancel("BTCUSDT", "z")],
            &[
                Step { finish: &[], room: 16, started: &["X:BTCUSDT"] },
                Step { finish: &["X:BTCUSDT"], room: 16, started: &["X:BTCUSDT"] },
                Step { finish: &["X:BTCUSDT"], room: 16, started: &["C:z"] },
            ],
        );
        // TC4: the same order on a held action holds a later one even when nothing of it runs
        // (order kept among waiting actions).
        run_steps(
            vec![
                place("BTCUSDT", "a"),
                cancel_all("BTCUSDT"),
                cancel("BTCUSDT", "b"),
                place("ETHUSDT", "b"),
            ],
            &[
                Step { finish: &[], room: 16, started: &["P:a"] },
                Step { finish: &["P:a"], room: 16, started: &["X:BTCUSDT"] },
                Step { finish: &["X:BTCUSDT"], room: 16, started: &["C:b"] },
                Step { finish: &["C:b"], room: 16, started: &["P:b"] },
            ],
        );
    }

    #[test]
    fn in_flight_counts_and_keeps_the_peak() {
        let f = InFlight::default();
        f.enter();
        f.enter();
        f.leave();
        f.enter();
        f.enter();
        assert_eq!((f.current(), f.peak()), (3, 3));
        f.leave();
        f.leave();
        f.leave();
        assert_eq!((f.current(), f.peak()), (0, 3));
    }

    #[tokio::test]
    async fn in_flight_wait_for_wakes_on_change() {
        let f = InFlight::default();
        let g = f.clone();
        let waiter = tokio::spawn(async move { g.wait_for(|n| n == 2).await });
        tokio::task::yield_now().await;
        f.enter();
        f.enter();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("no panic");
    }
}
