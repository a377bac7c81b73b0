//! [`Sim::start`]: builds the shared state, binds the listener, serves the axum router (REST,
//! market streams, WS API, `/_sim` control) and runs the market timers; [`SimHandle`] controls a
//! running simulator.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kestrel_model::{Notional, Price};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::SimClock;
use crate::config::{SimConfig, WsConfig};
use crate::error::SimError;
use crate::exchange::{Exchange, StreamMsg, UserMsg};
use crate::faults::{ConnectionInfo, Counters, Fault, FaultError, RestFaults, SimStats};
use crate::publish::Interest;
use crate::rate_limit::RateLimiter;

/// Locks a std mutex, recovering the data if a panicking thread poisoned it (the state is
/// still consistent: every mutation completes before it can panic-unwind out of a handler).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A command to one connection task.
#[derive(Debug, Clone)]
pub(crate) enum ConnCtrl {
    /// Drop the socket without a close frame.
    Drop,
    /// Stop sending (data and pings) and reading.
    Silence,
    /// Delay each outgoing message.
    Delay(Duration),
    /// Send garbage frames.
    Malformed,
    /// Send `serverShutdown`, then close.
    Shutdown,
    /// Undo `Silence` and `Delay`.
    Clear,
}

/// Registry entry of one connection.
#[derive(Debug)]
pub(crate) struct ConnEntry {
    pub info: ConnectionInfo,
    pub ctrl: mpsc::Sender<ConnCtrl>,
}

/// State shared by every handler and connection task.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Books, accounts, orders. Never locked across an `.await`.
    pub ex: Mutex<Exchange>,
    pub clock: SimClock,
    pub limits: Mutex<RateLimiter>,
    pub faults: Mutex<RestFaults>,
    pub counters: Counters,
    pub conns: Mutex<BTreeMap<u64, ConnEntry>>,
    pub next_conn: AtomicU64,
    pub market_tx: broadcast::Sender<StreamMsg>,
    pub user_tx: broadcast::Sender<UserMsg>,
    pub cancel: CancellationToken,
    pub ws: WsConfig,
    /// Subscriber counts per stream, shared with the exchange (unsubscribed streams are not
    /// serialised).
    pub interest: Arc<Interest>,
}

impl Shared {
    /// Registers a connection and returns its id and control receiver.
    pub fn register(&self, kind: &str, peer: SocketAddr) -> (u64, mpsc::Receiver<ConnCtrl>) {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(16);
        lock(&self.conns).insert(
            id,
            ConnEntry {
                info: ConnectionInfo { id, kind: kind.into(), peer: peer.to_string() },
                ctrl: tx,
            },
        );
        (id, rx)
    }

    /// Forgets a connection.
    pub fn unregister(&self, id: u64) {
        lock(&self.conns).remove(&id);
    }

    fn send_ctrl(&self, conn: Option<u64>, c: ConnCtrl) -> Result<(), FaultError> {
        let conns = lock(&self.conns);
        match conn {
            Some(id) => {
                let e = conns.get(&id).ok_or(FaultError::UnknownConnection(id))?;
                let _ = e.ctrl.try_send(c);
            }
            None => {
                for e in conns.values() {
                    let _ = e.ctrl.try_send(c.clone());
                }
            }
        }
        Ok(())
    }

    /// Applies a fault.
    pub fn inject(&self, fault: Fault) -> Result<(), FaultError> {
        tracing::warn!(fault = ?fault, "sim: injecting fault");
        match &fault {
            Fault::DropConnections { conn_id } => self.send_ctrl(*conn_id, ConnCtrl::Drop)?,
            Fault::HeartbeatLoss { conn_id } => self.send_ctrl(*conn_id, ConnCtrl::Silence)?,
            Fault::DelayMessages { conn_id, delay_ms } => {
                self.send_ctrl(*conn_id, ConnCtrl::Delay(Duration::from_millis(*delay_ms)))?;
            }
            Fault::MalformedFrame { conn_id } => self.send_ctrl(*conn_id, ConnCtrl::Malformed)?,
            Fault::ServerShutdown { conn_id } => self.send_ctrl(*conn_id, ConnCtrl::Shutdown)?,
            Fault::SequenceGap { symbol, skip } => {
                if *skip == 0 {
                    return Err(FaultError::Invalid("skip must be >= 1"));
                }
                let now = self.clock.now_ms();
                let mut ex = lock(&self.ex);
                let sym =
                    ex.symbol(symbol).map_err(|_| FaultError::UnknownSymbol(symbol.clone()))?;
                ex.inject_gap(sym, *skip, now);
            }
            Fault::HttpError { status, requests, retry_after_s } => {
                if *requests == 0 || !(400..=599).contains(status) {
                    return Err(FaultError::Invalid("status must be 4xx/5xx and requests >= 1"));
                }
                lock(&self.faults).http_error =
                    Some((*status, *requests, retry_after_s.unwrap_or(1)));
            }
            Fault::StallRest { delay_ms, requests } => {
                if *requests == 0 {
                    return Err(FaultError::Invalid("requests must be >= 1"));
                }
                lock(&self.faults).stall = Some((Duration::from_millis(*delay_ms), *requests));
            }
            Fault::ClockSkew { offset_ms } => self.clock.set_skew_ms(*offset_ms),
            Fault::SwallowOrderResponse { orders } => lock(&self.faults).swallow_orders += orders,
            Fault::RefuseConnections { kind, duration_ms } => {
                if kind.as_deref().is_some_and(|k| k != "stream" && k != "ws_api") {
                    return Err(FaultError::Invalid("kind must be \"stream\" or \"ws_api\""));
                }
                let until = std::time::Instant::now() + Duration::from_millis(*duration_ms);
                lock(&self.faults).refuse_connections = Some((kind.clone(), until));
            }
            Fault::Clear => {
                *lock(&self.faults) = RestFaults::default();
                self.clock.set_skew_ms(0);
                self.send_ctrl(None, ConnCtrl::Clear)?;
            }
        }
        self.counters.fault(fault.name());
        Ok(())
    }

    /// Snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        let c = &self.counters;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let ex = lock(&self.ex).counters;
        SimStats {
            rest_requests: r(&c.rest_requests),
            ws_stream_connections: r(&c.ws_stream_connections),
            ws_api_connections: r(&c.ws_api_connections),
            ws_messages_sent: r(&c.ws_messages_sent),
            orders_accepted: ex.orders_accepted,
            trades: ex.trades,
            market_steps: ex.market_steps,
            http_429: r(&c.http_429),
            http_418: r(&c.http_418),
            lagged_disconnects: r(&c.lagged_disconnects),
            pong_timeouts: r(&c.pong_timeouts),
            rate_limit_disconnects: r(&c.rate_limit_disconnects),
            lifetime_disconnects: r(&c.lifetime_disconnects),
            swallowed_responses: r(&c.swallowed_responses),
            faults: lock(&c.faults).clone(),
            connections: lock(&self.conns).values().map(|e| e.info.clone()).collect(),
        }
    }

    /// Steps every symbol `n` times.
    pub fn step_all(&self, n: u32) {
        for _ in 0..n {
            let now = self.clock.now_ms();
            let mut ex = lock(&self.ex);
            for s in 0..ex.symbols.len() {
                ex.step(s, now);
            }
        }
    }
}

/// Entry point of the simulator.
#[derive(Debug)]
pub struct Sim;

impl Sim {
    /// Validates `config`, binds `addr` (e.g. `"127.0.0.1:0"`) and starts serving.
    pub async fn start(config: SimConfig, addr: &str) -> Result<SimHandle, SimError> {
        let valid = config.validate()?;
        let (market_tx, _) = broadcast::channel(config.ws.channel_capacity);
        let (user_tx, _) = broadcast::channel(config.ws.channel_capacity);
        let interest = Arc::new(Interest::new(valid.symbols.len()));
        let ex = Exchange::new(&valid, market_tx.clone(), user_tx.clone(), interest.clone());
        let shared = Arc::new(Shared {
            ex: Mutex::new(ex),
            clock: SimClock::new(config.start_time_ms),
            limits: Mutex::new(RateLimiter::new(config.limits.clone())),
            faults: Mutex::new(RestFaults::default()),
            counters: Counters::default(),
            conns: Mutex::new(BTreeMap::new()),
            next_conn: AtomicU64::new(1),
            market_tx,
            user_tx,
            cancel: CancellationToken::new(),
            ws: config.ws.clone(),
            interest,
        });
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| SimError::Bind { addr: addr.to_string(), source })?;
        let local = listener
            .local_addr()
            .map_err(|source| SimError::Bind { addr: addr.to_string(), source })?;
        let app = router(shared.clone());
        let cancel = shared.cancel.clone();
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(async move {
            let serve =
                axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                    .with_graceful_shutdown(async move { cancel.cancelled().await });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "sim: server stopped with an error");
            }
        }));
        if let (false, Some(rates)) = (config.manual_market, config.market_rates) {
            let sh = shared.clone();
            tasks.push(tokio::spawn(drive_rates(sh, rates)));
        } else if !config.manual_market {
            for (i, s) in valid.symbols.iter().enumerate() {
                let sh = shared.clone();
                let every = Duration::from_millis(s.update_interval_ms);
                tasks.push(tokio::spawn(async move {
                    let mut tick = tokio::time::interval(every);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tokio::select! {
                            biased;
                            () = sh.cancel.cancelled() => break,
                            _ = tick.tick() => {
                                let now = sh.clock.now_ms();
                                lock(&sh.ex).step(i, now);
                            }
                        }
                    }
                }));
            }
        }
        tracing::info!(%local, "sim: listening");
        Ok(SimHandle { shared, addr: local, tasks })
    }
}

/// How many events of one kind are owed after `elapsed` at `rate` per second, given `done`
/// so far; a backlog beyond one second's worth is forgiven (returned as the new `done` floor)
/// so a stalled driver does not burst. Returns `(to_do_now, new_done)`.
pub(crate) fn owed(rate: u32, elapsed: Duration, done: u64) -> (u64, u64) {
    // u64 arithmetic while it cannot overflow (rate × ns < 1.8e19: hours at any rate); the
    // driver calls this for every symbol every tick, and u128 division is a library call.
    let ns = elapsed.as_nanos();
    let due = match u64::try_from(ns).ok().and_then(|n| n.checked_mul(u64::from(rate))) {
        Some(p) => p / 1_000_000_000,
        None => (u128::from(rate) * ns / 1_000_000_000) as u64,
    };
    let floor = due.saturating_sub(u64::from(rate));
    let done = done.max(floor);
    (due.saturating_sub(done), due.max(done))
}

/// The rate-driven market ([`crate::config::MarketRates`]): every `tick_ms`, does the depth
/// steps, trades and bookTickers each symbol owes. Symbol `i`'s schedule is shifted by
/// `i / n` of a period, so with many symbols the work (and the exchange lock) is spread evenly
/// over time instead of every symbol stepping in the same tick, as on a real exchange whose
/// pairs are not phase-locked.
async fn drive_rates(sh: Arc<Shared>, rates: crate::config::MarketRates) {
    let mut tick = tokio::time::interval(Duration::from_millis(rates.tick_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = tokio::time::Instant::now();
    let n = lock(&sh.ex).symbols.len();
    // Per symbol: (depth, trades, bookTicker) done so far.
    let mut done = vec![(0u64, 0u64, 0u64); n];
    let kinds = [rates.depth_per_s, rates.trades_per_s, rates.book_ticker_per_s];
    // Phase of symbol i for a rate r: i/n of that rate's period (computed once).
    let phase = |i: usize, rate: u32| -> Duration {
        if rate == 0 || n == 0 {
            return Duration::ZERO;
        }
        let period_ns = 1_000_000_000u64 / u64::from(rate);
        Duration::from_nanos(period_ns * i as u64 / n as u64)
    };
    let phases: Vec<[Duration; 3]> = (0..n).map(|i| kinds.map(|r| phase(i, r))).collect();
    loop {
        tokio::select! {
            biased;
            () = sh.cancel.cancelled() => break,
            _ = tick.tick() => {
                let elapsed = start.elapsed();
                let mut ex = lock(&sh.ex);
                let now = sh.clock.now_ms();
                for (sym, (d, ph)) in done.iter_mut().zip(&phases).enumerate() {
                    let [rd, rt, rb] = kinds;
                    let (depth, nd) = owed(rd, elapsed + ph[0], d.0);
                    let (trades, nt) = owed(rt, elapsed + ph[1], d.1);
                    let (bts, nb) = owed(rb, elapsed + ph[2], d.2);
                    *d = (nd, nt, nb);
                    for round in 0..depth.max(trades).max(bts) {
                        if round < trades {
                            ex.market_trade(sym, now);
                        }
                        if round < depth {
                            ex.step_with(sym, now, false);
                        }
                        if round < bts {
                            ex.book_ticker_now(sym);
                        }
                    }
                }
            }
        }
    }
}

/// Control handle of a running simulator. Dropping it stops the simulator.
#[derive(Debug)]
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl SimHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// REST base URL, e.g. `http://127.0.0.1:8765` (paths are `/api/v3/...`).
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Market-stream base URL, e.g. `ws://127.0.0.1:8765` (`/ws/<stream>`, `/stream?streams=`).
    pub fn ws_stream_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// WebSocket API URL, e.g. `ws://127.0.0.1:8765/ws-api/v3`.
    pub fn ws_api_url(&self) -> String {
        format!("ws://{}/ws-api/v3", self.addr)
    }

    /// Steps every symbol's synthetic market `n` times (manual or timed mode).
    pub fn step_market(&self, n: u32) {
        self.shared.step_all(n);
    }

    /// Server time in ms (skew included).
    pub fn server_time_ms(&self) -> u64 {
        self.shared.clock.now_ms()
    }

    /// Freezes the server clock at `ms` (manual time from now on).
    pub fn set_time_ms(&self, ms: u64) {
        self.shared.clock.set_ms(ms);
    }

    /// Advances the (manual) server clock.
    pub fn advance_time_ms(&self, ms: u64) {
        self.shared.clock.advance_ms(ms);
    }

    /// Injects a fault (see [`Fault`]).
    pub fn inject(&self, fault: Fault) -> Result<(), FaultError> {
        self.shared.inject(fault)
    }

    /// Counters and open connections.
    pub fn stats(&self) -> SimStats {
        self.shared.stats()
    }

    /// Open WebSocket connections.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        lock(&self.shared.conns).values().map(|e| e.info.clone()).collect()
    }

    /// Balances of a named account (`"demo"`, or internal `"sim-maker"`, `"sim-taker"`,
    /// `"sim-fees"`): asset → `(free, locked)`, exact.
    pub fn balances(&self, account: &str) -> Option<BTreeMap<String, (Notional, Notional)>> {
        let ex = lock(&self.shared.ex);
        let a = ex.accounts.iter().find(|a| a.name == account)?;
        Some(a.balances.iter().map(|(k, b)| (k.as_str().to_string(), (b.free, b.locked))).collect())
    }

    /// Sum of each asset over every account, internal ones included (constant: zero-sum).
    pub fn total_balances(&self) -> BTreeMap<String, Notional> {
        lock(&self.shared.ex).totals()
    }

    /// The book's current `lastUpdateId`.
    pub fn last_update_id(&self, symbol: &str) -> Option<u64> {
        let ex = lock(&self.shared.ex);
        let s = ex.symbol(symbol).ok()?;
        Some(ex.symbols[s].update_id)
    }

    /// Best bid and ask prices.
    pub fn best_bid_ask(&self, symbol: &str) -> Option<(Option<Price>, Option<Price>)> {
        let ex = lock(&self.shared.ex);
        let s = ex.symbol(symbol).ok()?;
        let (b, a) = ex.symbols[s].top();
        Some((b.map(|x| x.0), a.map(|x| x.0)))
    }

    /// Sends `serverShutdown` to every WebSocket client, closes them, stops the server and the
    /// market timers, and waits (at most 5 s) for the tasks to end.
    pub async fn shutdown(mut self) {
        self.shared.cancel.cancel();
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/ws", get(crate::ws_streams::raw_root))
        .route("/ws/{*streams}", get(crate::ws_streams::raw))
        .route("/stream", get(crate::ws_streams::combined))
        .route("/ws-api/v3", get(crate::ws_api::upgrade))
        .route("/_sim/faults", post(post_fault))
        .route("/_sim/stats", get(get_stats))
        .route("/_sim/step", post(post_step))
        .fallback(crate::rest::entry)
        .with_state(shared)
}

async fn post_fault(
    State(sh): State<Arc<Shared>>,
    _peer: ConnectInfo<SocketAddr>,
    body: axum::body::Bytes,
) -> Response {
    let fault: Fault = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": e.to_string()})),
            )
                .into_response()
        }
    };
    match sh.inject(fault) {
        Ok(()) => Json(serde_json::json!({"ok": true})).into_response(),
        Err(e) => {
            (axum::http::StatusCode::BAD_REQUEST, Json(serde_json::json!({"error": e.to_string()})))
                .into_response()
        }
    }
}

async fn get_stats(State(sh): State<Arc<Shared>>) -> Response {
    Json(sh.stats()).into_response()
}

#[derive(serde::Deserialize)]
struct StepBody {
    steps: u32,
}

async fn post_step(State(sh): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    match serde_json::from_slice::<StepBody>(&body) {
        Ok(b) => {
            sh.step_all(b.steps.min(100_000));
            Json(serde_json::json!({"ok": true})).into_response()
        }
        Err(e) => {
            (axum::http::StatusCode::BAD_REQUEST, Json(serde_json::json!({"error": e.to_string()})))
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owed_table() {
        let ms = Duration::from_millis;
        // TC0: nothing due yet.
        assert_eq!(owed(100, ms(5), 0), (0, 0));
        // TC1: 100/s for 250 ms = 25 due.
        assert_eq!(owed(100, ms(250), 0), (25, 25));
        // TC2: already done 20: 5 more.
        assert_eq!(owed(100, ms(250), 20), (5, 25));
        // TC3: 10 s behind at 100/s: only one second (100) is caught up.
        assert_eq!(owed(100, ms(10_000), 0), (100, 1000));
        // TC4: rate 0 never owes.
        assert_eq!(owed(0, ms(10_000), 0), (0, 0));
        // TC5: beyond u64 (rate × ns): the u128 path gives the exact count.
        let long = Duration::from_secs(400 * 86_400);
        assert_eq!(owed(1_000, long, 34_560_000_000 - 1), (1, 34_560_000_000));
    }
}
