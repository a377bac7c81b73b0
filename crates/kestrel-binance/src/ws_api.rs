//! WebSocket API session (web-socket-api.md): one connection to `endpoints.ws_api`, requests
//! matched to responses by id, per-request timeouts, reconnect with backoff, and order entry
//! (`order.place`, `order.cancel`, `order.status`, `openOrders.cancelAll`) with the same
//! unknown-outcome rules as REST.
//!
//! Shape: [`WsApiClient`] is a cheap handle; a background task owns the socket. A request
//! registers a oneshot under a fresh integer id, hands the frame to the task and waits with a
//! timeout. If the connection drops, every in-flight request fails with
//! [`BinanceError::Disconnected`] (it may have executed: unknown outcome); a request made
//! while no connection is up fails at once with [`BinanceError::NotConnected`] (it was never
//! sent). Pushed events (user data, `serverShutdown`) and connection changes go to the
//! optional [`SessionEvent`] channel, which the user-data stream consumes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kestrel_model::{Clock, OrderUpdate, Symbol, SystemClock, UnixNanos};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::error::BinanceError;
use crate::parse;
use crate::rate_limit::{Cost, RateLimiter};
use crate::rest::{NewOrder, OrderRef, Placed};
use crate::sign::{ws_api_payload, Credentials, SignError};
use crate::time_sync::TimeOffset;
use crate::wire;

/// How a WebSocket API session is set up.
#[derive(Clone)]
pub struct WsApiConfig {
    /// The WebSocket API URL (`Endpoints::ws_api`).
    pub url: Url,
    /// Key for signed requests.
    pub credentials: Option<Arc<Credentials>>,
    /// `recvWindow` in ms for signed requests.
    pub recv_window_ms: u64,
    /// How long a request waits for its response before it is reported as timed out (unknown
    /// outcome for a placement).
    pub request_timeout: Duration,
    /// First reconnect delay; doubles per failed attempt up to `reconnect_max`.
    pub reconnect_min: Duration,
    /// Largest reconnect delay.
    pub reconnect_max: Duration,
    /// Local clock for `timestamp`s.
    pub clock: Arc<dyn Clock>,
    /// Shared exchange-clock offset (the REST client's).
    pub time_offset: TimeOffset,
    /// Shared rate limiter (the REST client's: weight is per IP, orders per account).
    pub limiter: Option<RateLimiter>,
    /// Capacity of the outgoing frame queue.
    pub queue_capacity: usize,
    /// How often we ping the server, so an idle but healthy connection keeps producing frames.
    pub ping_interval: Duration,
    /// No frame at all (pong, response, event) for this long ⇒ the connection is dead even if
    /// the socket looks open (`WS_HEARTBEAT_MISSED`): reconnect.
    pub idle_timeout: Duration,
}

impl std::fmt::Debug for WsApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsApiConfig")
            .field("url", &self.url.as_str())
            .field("credentials", &self.credentials)
            .field("recv_window_ms", &self.recv_window_ms)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl WsApiConfig {
    /// A config for `url` with defaults: no credentials, `recvWindow` 5000 ms, 10 s request
    /// timeout, reconnect 100 ms doubling to 10 s, ping every 20 s and reconnect after 60 s
    /// without any frame (Binance's own stream heartbeat figures), the system clock, no shared
    /// limiter.
    pub fn new(url: Url) -> Self {
        Self {
            url,
            credentials: None,
            recv_window_ms: 5_000,
            request_timeout: Duration::from_secs(10),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(10),
            clock: Arc::new(SystemClock),
            time_offset: TimeOffset::new(),
            limiter: None,
            queue_capacity: 256,
            ping_interval: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
        }
    }

    /// Takes credentials, clock offset and rate limiter from a REST client so both transports
    /// share one clock measurement and one budget.
    pub fn sharing(url: Url, rest: &crate::rest::RestClient) -> Self {
        let rc = rest.config();
        Self {
            credentials: rc.credentials.clone(),
            recv_window_ms: rc.recv_window_ms,
            request_timeout: rc.request_timeout,
            clock: rc.clock.clone(),
            time_offset: rest.time_offset(),
            limiter: Some(rest.rate_limiter().clone()),
            ..Self::new(url)
        }
    }
}

/// What the session reports besides responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// A connection is up (first connect or reconnect). Subscriptions must be (re)made.
    Connected,
    /// The connection was lost; in-flight requests failed with `Disconnected`.
    Disconnected,
    /// A pushed event: the `subscriptionId` and the raw `event` JSON.
    Event {
        /// `subscriptionId`, absent for connection-level events such as `serverShutdown`.
        subscription_id: Option<u64>,
        /// The `event` object as text.
        json: String,
    },
}

/// A successful response: the raw `result` JSON.
#[derive(Debug, Clone)]
pub struct WsResponse {
    /// HTTP-like status (200).
    pub status: u16,
    /// `result` as JSON text (`null` if absent).
    pub result: String,
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<WsResponse, BinanceError>>>>>;

/// Handle to a WebSocket API session. Cloning shares the session.
#[derive(Debug, Clone)]
pub struct WsApiClient {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: WsApiConfig,
    next_id: AtomicU64,
    pending: Pending,
    connected: Arc<AtomicBool>,
    out_tx: mpsc::Sender<Outgoing>,
    cancel: CancellationToken,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsApiSession").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[derive(Debug)]
enum Outgoing {
    /// A request frame and its id.
    Frame(u64, String),
    /// Close the current connection and reconnect (e.g. after `serverShutdown`).
    Reconnect,
}

impl WsApiClient {
    /// Starts the session task (it connects in the background and keeps reconnecting until
    /// the last handle is dropped or `cancel` fires). `events` receives connection changes and
    /// pushed events; a full channel applies backpressure to the socket reader.
    pub fn start(
        cfg: WsApiConfig,
        events: Option<mpsc::Sender<SessionEvent>>,
        cancel: CancellationToken,
    ) -> Self {
        let (out_tx, out_rx) = mpsc::channel(cfg.queue_capacity.max(1));
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let connected = Arc::new(AtomicBool::new(false));
        let cancel = cancel.child_token();
        let task = SessionTask {
            url: cfg.url.clone(),
            reconnect_min: cfg.reconnect_min,
            reconnect_max: cfg.reconnect_max,
            ping_interval: cfg.ping_interval,
            idle_timeout: cfg.idle_timeout,
            limiter: cfg.limiter.clone(),
            pending: pending.clone(),
            connected: connected.clone(),
            events,
            cancel: cancel.clone(),
        };
        tokio::spawn(task.run(out_rx));
        Self {
            inner: Arc::new(Inner {
                cfg,
                next_id: AtomicU64::new(1),
                pending,
                connected,
                out_tx,
                cancel,
            }),
        }
    }

    /// Whether a connection is currently up.
    pub fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    /// Drops the current connection and reconnects (after `serverShutdown`, or by operator).
    pub async fn reconnect(&self) {
        let _ = self.inner.out_tx.send(Outgoing::Reconnect).await;
    }

    /// Stops the session.
    pub fn shutdown(&self) {
        self.inner.cancel.cancel();
    }

    /// The session's config.
    pub fn config(&self) -> &WsApiConfig {
        &self.inner.cfg
    }

    /// Sends an unsigned request and waits for its response.
    pub async fn request(
        &self,
        method: &str,
        params: Map<String, Value>,
        cost: Cost,
    ) -> Result<WsResponse, BinanceError> {
        self.send(method, params, cost).await
    }

    /// Sends a signed request (`apiKey`, `timestamp`, `recvWindow`, `signature` added per the
    /// WebSocket API rule). On `-1021` the caller re-measures the clock offset (REST `time`)
    /// and retries once; [`crate::gateway::OrderGateway`] does that.
    pub async fn signed_request(
        &self,
        method: &str,
        params: Map<String, Value>,
        cost: Cost,
    ) -> Result<WsResponse, BinanceError> {
        let signed = self.sign(params, true)?;
        self.send(method, signed, cost).await
    }

    /// Adds `apiKey`, `timestamp` (and `recvWindow` if `recv_window`) and the signature.
    pub fn sign(
        &self,
        mut params: Map<String, Value>,
        recv_window: bool,
    ) -> Result<Map<String, Value>, BinanceError> {
        let cfg = &self.inner.cfg;
        let creds = cfg.credentials.as_ref().ok_or(SignError::MissingCredentials)?;
        let ts = cfg.time_offset.to_exchange(cfg.clock.now()).as_millis();
        params.insert("apiKey".into(), Value::String(creds.api_key.clone()));
        params.insert("timestamp".into(), Value::from(ts));
        if recv_window {
            params.insert("recvWindow".into(), Value::from(cfg.recv_window_ms));
        }
        let flat: Vec<(String, String)> =
            params.iter().map(|(k, v)| (k.clone(), value_text(v))).collect();
        let sig = creds.sign(ws_api_payload(&flat).as_bytes());
        params.insert("signature".into(), Value::String(sig));
        Ok(params)
    }

    async fn send(
        &self,
        method: &str,
        params: Map<String, Value>,
        cost: Cost,
    ) -> Result<WsResponse, BinanceError> {
        if let Some(l) = &self.inner.cfg.limiter {
            l.acquire(cost).await?;
        }
        if !self.is_connected() {
            return Err(BinanceError::NotConnected);
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let params_ref = if params.is_empty() { None } else { Some(&params) };
        let frame =
            serde_json::to_string(&wire::ws_api::Request { id, method, params: params_ref })
                .map_err(BinanceError::decode("ws api request"))?;
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.pending).insert(id, tx);
        if self.inner.out_tx.send(Outgoing::Frame(id, frame)).await.is_err() {
            lock(&self.inner.pending).remove(&id);
            return Err(BinanceError::NotConnected);
        }
        match tokio::time::timeout(self.inner.cfg.request_timeout, rx).await {
            Ok(Ok(r)) => r,
            // The task dropped the sender: the connection went away with the request in flight.
            Ok(Err(_)) => Err(BinanceError::Disconnected),
            Err(_) => {
                lock(&self.inner.pending).remove(&id);
                Err(BinanceError::Timeout)
            }
        }
    }

    fn now(&self) -> UnixNanos {
        self.inner.cfg.clock.now()
    }

    /// `order.place`. Unknown outcome (timeout, disconnect, 5xx, `-1007`) is reported, never
    /// retried.
    pub async fn place_order(&self, order: &NewOrder) -> Result<Placed, BinanceError> {
        let params = to_map(order.params()?);
        let r = self.signed_request("order.place", params, Cost::order(1)).await?;
        let ts = self.now();
        let o: wire::rest::Order<'_> =
            serde_json::from_str(&r.result).map_err(BinanceError::decode("order.place result"))?;
        let update = parse::order_update(
            &o,
            ts,
            Some(parse::AckContext {
                side: order.side,
                orig_qty: match order.qty {
                    crate::rest::OrderQty::Base(q) => q,
                    crate::rest::OrderQty::Quote(_) => kestrel_model::Qty::ZERO,
                },
            }),
        )?;
        Ok(Placed { update, fills: parse::order_fills(&o)? })
    }

    /// `order.cancel`.
    pub async fn cancel_order(
        &self,
        symbol: Symbol,
        which: OrderRef,
    ) -> Result<OrderUpdate, BinanceError> {
        let (k, v) = which.param();
        let params = to_map(vec![("symbol", symbol.to_string()), (k, v)]);
        let r = self.signed_request("order.cancel", params, Cost::weight(1)).await?;
        let o: wire::rest::Order<'_> =
            serde_json::from_str(&r.result).map_err(BinanceError::decode("order.cancel result"))?;
        parse::order_update(&o, self.now(), None)
    }

    /// `order.status` (weight 4).
    pub async fn query_order(
        &self,
        symbol: Symbol,
        which: OrderRef,
    ) -> Result<OrderUpdate, BinanceError> {
        let (k, v) = which.param();
        let params = to_map(vec![("symbol", symbol.to_string()), (k, v)]);
        let r = self.signed_request("order.status", params, Cost::weight(4)).await?;
        let o: wire::rest::Order<'_> =
            serde_json::from_str(&r.result).map_err(BinanceError::decode("order.status result"))?;
        parse::order_update(&o, self.now(), None)
    }

    /// `openOrders.cancelAll`.
    pub async fn cancel_all(&self, symbol: Symbol) -> Result<Vec<OrderUpdate>, BinanceError> {
        let params = to_map(vec![("symbol", symbol.to_string())]);
        let r = self.signed_request("openOrders.cancelAll", params, Cost::weight(1)).await?;
        crate::rest::parse_canceled_list(r.result.as_bytes(), self.now())
    }

    /// `openOrders.status` for one symbol (weight 6).
    pub async fn open_orders(&self, symbol: Symbol) -> Result<Vec<OrderUpdate>, BinanceError> {
        let params = to_map(vec![("symbol", symbol.to_string())]);
        let r = self.signed_request("openOrders.status", params, Cost::weight(6)).await?;
        let list: Vec<wire::rest::Order<'_>> = serde_json::from_str(&r.result)
            .map_err(BinanceError::decode("openOrders.status result"))?;
        let ts = self.now();
        list.iter().map(|o| parse::order_update(o, ts, None)).collect()
    }
}

fn to_map(params: Vec<(&'static str, String)>) -> Map<String, Value> {
    params.into_iter().map(|(k, v)| (k.to_string(), Value::String(v))).collect()
}

/// The text a parameter value is signed as: strings raw, numbers and booleans as JSON prints
/// them.
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Turns one response frame into the requester's result.
fn response_result(
    frame: &wire::ws_api::Frame<'_>,
    limiter: Option<&RateLimiter>,
) -> Result<WsResponse, BinanceError> {
    let status = frame.status.unwrap_or(200);
    if let (Some(l), Some(rls)) = (limiter, &frame.rate_limits) {
        for rl in rls {
            if let (Some(iv), Some(count)) =
                (parse::rate_limit_interval(&rl.interval, rl.interval_num), rl.count)
            {
                match rl.rate_limit_type.as_ref() {
                    "REQUEST_WEIGHT" => l.observe_report(true, iv, count),
                    "ORDERS" => l.observe_report(false, iv, count),
                    _ => {}
                }
            }
        }
    }
    if let Some(err) = &frame.error {
        if status == 429 || status == 418 {
            let banned = status == 418;
            let retry_after = err
                .data
                .as_ref()
                .and_then(|d| Some((d.retry_after?, d.server_time?)))
                .map(|(until, now)| Duration::from_millis(u64::try_from(until - now).unwrap_or(0)))
                .unwrap_or(Duration::from_secs(30));
            if let Some(l) = limiter {
                l.on_rate_limited(retry_after, banned);
            }
            return Err(BinanceError::RateLimited { retry_after, banned });
        }
        return Err(BinanceError::Api {
            http_status: status,
            code: err.code,
            msg: err.msg.to_string(),
        });
    }
    Ok(WsResponse {
        status,
        result: frame.result.map_or_else(|| "null".to_string(), |r| r.get().to_string()),
    })
}

struct SessionTask {
    url: Url,
    reconnect_min: Duration,
    reconnect_max: Duration,
    ping_interval: Duration,
    idle_timeout: Duration,
    limiter: Option<RateLimiter>,
    pending: Pending,
    connected: Arc<AtomicBool>,
    events: Option<mpsc::Sender<SessionEvent>>,
    cancel: CancellationToken,
}

impl SessionTask {
    async fn emit(&self, ev: SessionEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.send(ev).await;
        }
    }

    /// Fails every in-flight request (dropping its sender reports `Disconnected`).
    fn fail_pending(&self) {
        lock(&self.pending).clear();
    }

    async fn run(self, mut out_rx: mpsc::Receiver<Outgoing>) {
        let mut delay = self.reconnect_min;
        loop {
            if self.cancel.is_cancelled() {
                break;
            }
            let conn = tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                c = tokio_tungstenite::connect_async_with_config(
                    self.url.as_str(),
                    Some(crate::market_data::ws_config()),
                    true,
                ) => c,
            };
            let (ws, _) = match conn {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, delay_ms = delay.as_millis() as u64, "ws api connect failed");
                    // Requests queued while down were never sent.
                    drain_not_sent(&mut out_rx, &self.pending);
                    tokio::select! {
                        () = self.cancel.cancelled() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(self.reconnect_max);
                    continue;
                }
            };
            delay = self.reconnect_min;
            drain_not_sent(&mut out_rx, &self.pending);
            self.connected.store(true, Ordering::Release);
            tracing::info!(url = %self.url, "ws api connected");
            self.emit(SessionEvent::Connected).await;
            let (mut sink, mut stream) = ws.split();
            let mut ping = tokio::time::interval(self.ping_interval);
            ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let idle = tokio::time::sleep(self.idle_timeout);
            tokio::pin!(idle);
            let stop = loop {
                tokio::select! {
                    biased;
                    () = self.cancel.cancelled() => break true,
                    () = &mut idle => {
                        tracing::warn!(idle_ms = self.idle_timeout.as_millis() as u64, "ws api: no frame within the heartbeat window (WS_HEARTBEAT_MISSED)");
                        break false;
                    }
                    _ = ping.tick() => {
                        if sink.send(Message::Ping(Vec::new().into())).await.is_err() { break false; }
                    }
                    out = out_rx.recv() => match out {
                        None => break true,
                        Some(Outgoing::Reconnect) => break false,
                        Some(Outgoing::Frame(id, text)) => {
                            if let Err(e) = sink.send(Message::text(text)).await {
                                tracing::warn!(error = %e, id, "ws api send failed");
                                break false;
                            }
                        }
                    },
                    msg = stream.next() => {
                        if matches!(msg, Some(Ok(_))) {
                            idle.as_mut().reset(tokio::time::Instant::now() + self.idle_timeout);
                        }
                        match msg {
                        Some(Ok(Message::Text(t))) => self.on_text(t.as_str()).await,
                        Some(Ok(Message::Ping(p))) => {
                            if sink.send(Message::Pong(p)).await.is_err() { break false; }
                        }
                        Some(Ok(Message::Close(_))) | None => break false,
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "ws api read failed");
                            break false;
                        }
                        }
                    },
                }
            };
            self.connected.store(false, Ordering::Release);
            let _ = sink.close().await;
            self.fail_pending();
            if stop {
                break;
            }
            tracing::warn!("ws api disconnected; reconnecting");
            self.emit(SessionEvent::Disconnected).await;
        }
        self.connected.store(false, Ordering::Release);
        self.fail_pending();
    }

    async fn on_text(&self, text: &str) {
        let frame: wire::ws_api::Frame<'_> = match serde_json::from_str(text) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "ws api: malformed frame skipped");
                return;
            }
        };
        if let Some(ev) = frame.event {
            self.emit(SessionEvent::Event {
                subscription_id: frame.subscription_id,
                json: ev.get().to_string(),
            })
            .await;
            return;
        }
        let id = match &frame.id {
            Some(wire::ws_api::Id::Num(n)) => Some(*n),
            _ => None,
        };
        let result = response_result(&frame, self.limiter.as_ref());
        match id.and_then(|id| lock(&self.pending).remove(&id)) {
            Some(tx) => {
                let _ = tx.send(result);
            }
            None => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "ws api: error not tied to a pending request");
                }
            }
        }
    }
}

/// Fails queued frames that were never written: the caller gets `NotConnected` (safe to
/// retry: nothing reached the exchange).
fn drain_not_sent(out_rx: &mut mpsc::Receiver<Outgoing>, pending: &Pending) {
    while let Ok(o) = out_rx.try_recv() {
        if let Outgoing::Frame(id, _) = o {
            if let Some(tx) = lock(pending).remove(&id) {
                let _ = tx.send(Err(BinanceError::NotConnected));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_errors_are_classified() {
        let ban = include_str!("../../../testdata/binance/wsapi_error_ip_banned_418.json");
        let f: wire::ws_api::Frame<'_> = serde_json::from_str(ban).unwrap();
        let e = response_result(&f, None).unwrap_err();
        // retryAfter 1659146400000 - serverTime 1659142907531 = 3492469 ms
        assert!(
            matches!(e, BinanceError::RateLimited { banned: true, retry_after } if retry_after == Duration::from_millis(3_492_469))
        );
        let err = include_str!("../../../testdata/binance/wsapi_response_error.json");
        let f: wire::ws_api::Frame<'_> = serde_json::from_str(err).unwrap();
        let e = response_result(&f, None).unwrap_err();
        assert_eq!(e.code(), Some(-2010));
        let ok = include_str!("../../../testdata/binance/wsapi_response_success.json");
        let f: wire::ws_api::Frame<'_> = serde_json::from_str(ok).unwrap();
        let r = response_result(&f, None).unwrap();
        let o: wire::rest::Order<'_> = serde_json::from_str(&r.result).unwrap();
        assert_eq!(o.order_id, 12_510_053_279);
    }
}
