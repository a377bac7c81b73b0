//! Market streams (`/ws/<stream>`, `/ws`, `/stream?streams=a/b`): one task per connection,
//! control messages (SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET/GET_PROPERTY), server
//! pings with a pong deadline, an incoming message-rate limit, a stream cap, a maximum lifetime,
//! and the per-connection faults (drop, heartbeat loss, delay, malformed frames, shutdown).
//!
//! Delivery cost: frames are filtered by their integer stream key (a bitmap lookup), and every
//! frame already queued for the connection is fed to the socket before one flush, so a busy
//! stream costs one write syscall per batch rather than per message. The connection's
//! subscriptions are mirrored into the exchange's interest registry, so streams nobody
//! subscribes to are never serialised.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;

use crate::faults::Counters;
use crate::publish::{InterestGuard, StreamKey};
use crate::server::{lock, ConnCtrl, Shared};

/// Most frames fed to the socket before a flush (and before the connection task looks at its
/// other duties: pings, control messages, faults).
const MAX_BATCH: usize = 256;

fn bad_request(msg: &str) -> Response {
    (axum::http::StatusCode::BAD_REQUEST, axum::Json(json!({"code": 2, "msg": msg})))
        .into_response()
}

fn start(
    sh: Arc<Shared>,
    ws: WebSocketUpgrade,
    peer: SocketAddr,
    streams: Vec<String>,
    combined: bool,
) -> Response {
    if lock(&sh.faults).refuses("stream") {
        return crate::faults::refused_upgrade();
    }
    let mut keyed = BTreeMap::new();
    {
        let ex = lock(&sh.ex);
        for s in streams {
            let Some(k) = ex.stream_key(&s) else {
                return bad_request(&format!("Invalid request: unknown stream {s}"));
            };
            keyed.insert(s, k);
        }
    }
    if keyed.len() > sh.ws.max_streams_per_connection {
        return bad_request("Invalid request: too many streams");
    }
    ws.on_upgrade(move |socket| run(sh, socket, peer, keyed, combined))
}

/// `GET /ws` (no initial stream; subscribe later).
pub(crate) async fn raw_root(
    ws: WebSocketUpgrade,
    State(sh): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    start(sh, ws, peer, Vec::new(), false)
}

/// `GET /ws/<stream>[/<stream>...]`.
pub(crate) async fn raw(
    ws: WebSocketUpgrade,
    State(sh): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(streams): Path<String>,
) -> Response {
    let list = streams.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
    start(sh, ws, peer, list, false)
}

/// `GET /stream?streams=a/b/c`.
pub(crate) async fn combined(
    ws: WebSocketUpgrade,
    State(sh): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = q.unwrap_or_default();
    let list = q
        .split('&')
        .find_map(|kv| kv.strip_prefix("streams="))
        .map(|v| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .split('/')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    start(sh, ws, peer, list, true)
}

/// `serverShutdown` in raw or combined form.
fn shutdown_event(now: u64, combined: bool) -> String {
    let ev = json!({"e": "serverShutdown", "E": now});
    if combined {
        json!({"stream": "!serverShutdown", "data": ev}).to_string()
    } else {
        ev.to_string()
    }
}

/// Per-connection state shared by the stream and WS API tasks.
pub(crate) struct Heartbeat {
    /// Outstanding ping payload and its pong deadline.
    pub awaiting: Option<(Vec<u8>, Instant)>,
    /// Start of the current incoming-rate window.
    pub window_start: Instant,
    /// Frames received in the window.
    pub window_count: u32,
}

impl Heartbeat {
    pub fn new() -> Self {
        Self { awaiting: None, window_start: Instant::now(), window_count: 0 }
    }

    /// Counts an incoming frame; false if the per-second limit is exceeded.
    pub fn count_incoming(&mut self, max_per_sec: u32) -> bool {
        let now = Instant::now();
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.window_count = 0;
        }
        self.window_count += 1;
        self.window_count <= max_per_sec
    }

    /// A pong arrived: clears the deadline if it echoes the outstanding ping.
    pub fn pong(&mut self, payload: &[u8]) {
        if self.awaiting.as_ref().is_some_and(|(p, _)| p == payload) {
            self.awaiting = None;
        }
    }

    /// The pong deadline, or far in the future.
    pub fn deadline(&self) -> Instant {
        self.awaiting
            .as_ref()
            .map_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365), |(_, d)| *d)
    }
}

/// What a delivery batch ended with.
enum Batch {
    /// Everything queued was sent.
    Sent,
    /// The socket failed.
    Broken,
    /// The connection fell more than the channel capacity behind (`n` frames lost).
    Lagged(u64),
    /// The channel closed (server stopping).
    Closed,
}

async fn run(
    sh: Arc<Shared>,
    socket: WebSocket,
    peer: SocketAddr,
    streams: BTreeMap<String, StreamKey>,
    mut combined: bool,
) {
    let (id, mut ctrl) = sh.register("stream", peer);
    Counters::inc(&sh.counters.ws_stream_connections);
    tracing::debug!(id, %peer, ?streams, "sim: stream connection");
    let mut rx = sh.market_tx.subscribe();
    let mut subs = Subs { names: streams, keys: InterestGuard::new(sh.interest.clone()) };
    for k in subs.names.values() {
        subs.keys.add(*k);
    }
    let (mut tx, mut rd) = socket.split();
    let ws = sh.ws.clone();
    let ping_every = Duration::from_millis(ws.ping_interval_ms.max(1));
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    let lifetime = tokio::time::sleep(Duration::from_millis(ws.max_connection_lifetime_ms));
    tokio::pin!(lifetime);
    let mut hb = Heartbeat::new();
    let mut silenced = false;
    let mut delay: Option<Duration> = None;
    let mut ping_seq: u64 = 0;
    let close = |code: u16, reason: &'static str| {
        Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) }))
    };
    loop {
        tokio::select! {
            biased;
            () = sh.cancel.cancelled() => {
                let _ = tx.send(Message::Text(shutdown_event(sh.clock.now_ms(), combined).into())).await;
                let _ = tx.send(close(1001, "server shutdown")).await;
                break;
            }
            c = ctrl.recv() => match c {
                None | Some(ConnCtrl::Drop) => break,
                Some(ConnCtrl::Silence) => silenced = true,
                Some(ConnCtrl::Delay(d)) => delay = Some(d),
                Some(ConnCtrl::Clear) => { silenced = false; delay = None; }
                Some(ConnCtrl::Malformed) => {
                    let _ = tx.send(Message::Text(Utf8Bytes::from_static("{\"e\":\"depthUpdate\",\"E\":"))).await;
                    let _ = tx.send(Message::Binary(vec![0xde, 0xad, 0xbe, 0xef].into())).await;
                }
                Some(ConnCtrl::Shutdown) => {
                    let _ = tx.send(Message::Text(shutdown_event(sh.clock.now_ms(), combined).into())).await;
                    let _ = tx.send(close(1001, "server shutdown")).await;
                    break;
                }
            },
            () = &mut lifetime => {
                Counters::inc(&sh.counters.lifetime_disconnects);
                let _ = tx.send(close(1000, "connection lifetime reached")).await;
                break;
            }
            () = tokio::time::sleep_until(hb.deadline()), if hb.awaiting.is_some() && !silenced => {
                Counters::inc(&sh.counters.pong_timeouts);
                tracing::info!(id, "sim: pong timeout, closing");
                let _ = tx.send(close(1008, "pong timeout")).await;
                break;
            }
            _ = ping.tick(), if !silenced => {
                ping_seq += 1;
                let payload = ping_seq.to_string().into_bytes();
                if hb.awaiting.is_none() {
                    hb.awaiting = Some((payload.clone(), Instant::now() + Duration::from_millis(ws.pong_timeout_ms)));
                }
                if tx.send(Message::Ping(payload.into())).await.is_err() { break; }
            }
            m = rd.next(), if !silenced => {
                let Some(Ok(m)) = m else { break };
                if !hb.count_incoming(ws.max_incoming_per_sec) {
                    Counters::inc(&sh.counters.rate_limit_disconnects);
                    let _ = tx.send(close(1008, "too many messages")).await;
                    break;
                }
                match m {
                    Message::Text(t) => {
                        let reply = control(&sh, &mut subs, &mut combined, t.as_str());
                        if tx.send(Message::Text(reply.into())).await.is_err() { break; }
                    }
                    Message::Pong(p) => hb.pong(&p),
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Binary(_) => {}
                }
            }
            m = rx.recv(), if !silenced => {
                let first = match m {
                    Ok(msg) => Ok(msg),
                    Err(RecvError::Lagged(n)) => Err(Batch::Lagged(n)),
                    Err(RecvError::Closed) => Err(Batch::Closed),
                };
                // Feed this frame and every one already queued (up to a batch), flush once.
                let mut sent = 0u64;
                let mut next = first;
                let end = loop {
                    let msg = match next {
                        Ok(msg) => msg,
                        Err(b) => break b,
                    };
                    if subs.keys.has(msg.key) {
                        let payload = if combined { msg.combined } else { msg.raw };
                        if let Some(d) = delay {
                            // Delay fault: every frame leaves late, on its own.
                            tokio::time::sleep(d).await;
                            if tx.send(Message::Text(payload)).await.is_err() { break Batch::Broken; }
                        } else if tx.feed(Message::Text(payload)).await.is_err() {
                            break Batch::Broken;
                        }
                        sent += 1;
                    }
                    if sent as usize >= MAX_BATCH {
                        break Batch::Sent;
                    }
                    next = match rx.try_recv() {
                        Ok(msg) => Ok(msg),
                        Err(TryRecvError::Empty) => break Batch::Sent,
                        Err(TryRecvError::Lagged(n)) => Err(Batch::Lagged(n)),
                        Err(TryRecvError::Closed) => Err(Batch::Closed),
                    };
                };
                sh.counters.ws_messages_sent.fetch_add(sent, Ordering::Relaxed);
                let flushed = tx.flush().await.is_ok();
                match end {
                    Batch::Sent if flushed => {}
                    Batch::Sent | Batch::Broken | Batch::Closed => break,
                    Batch::Lagged(n) => {
                        Counters::inc(&sh.counters.lagged_disconnects);
                        tracing::info!(id, lagged = n, "sim: slow client, closing");
                        let _ = tx.send(close(1008, "client too slow")).await;
                        break;
                    }
                }
            }
        }
    }
    sh.unregister(id);
}

/// A connection's subscriptions: by name (LIST_SUBSCRIPTIONS, caps) and by key (the
/// per-frame filter, mirrored into the exchange's interest registry).
struct Subs {
    /// Subscribed stream names and their keys.
    names: BTreeMap<String, StreamKey>,
    /// The same keys as a bitmap, registered as interest while the connection lives.
    keys: InterestGuard,
}

/// Valid control-message id: integer, alphanumeric string of ≤ 36 chars, or null.
fn valid_id(id: &Value) -> bool {
    match id {
        Value::Null => true,
        Value::Number(n) => n.is_i64() || n.is_u64(),
        Value::String(s) => {
            s.len() <= 36 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        }
        _ => false,
    }
}

/// Handles one control message; returns the reply text.
fn control(sh: &Shared, subs: &mut Subs, combined: &mut bool, text: &str) -> String {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return json!({"code": 3, "msg": format!("Invalid JSON: {e}"), "id": null}).to_string()
        }
    };
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    let err = |code: i64, msg: &str| json!({"code": code, "msg": msg, "id": id}).to_string();
    if !valid_id(&id) {
        return json!({"code": 2, "msg": "Invalid request: request ID must be an unsigned integer or an alphanumeric string of at most 36 characters", "id": null}).to_string();
    }
    let params = v.get("params").and_then(Value::as_array).cloned().unwrap_or_default();
    let names = || -> Option<Vec<String>> {
        params.iter().map(|p| p.as_str().map(str::to_string)).collect()
    };
    match v.get("method").and_then(Value::as_str) {
        Some("SUBSCRIBE") => {
            let Some(list) = names() else {
                return err(2, "Invalid request: params must be stream names");
            };
            let mut new = BTreeMap::new();
            {
                let ex = lock(&sh.ex);
                for s in list {
                    let Some(k) = ex.stream_key(&s) else {
                        return err(2, "Invalid request: unknown stream name");
                    };
                    if !subs.names.contains_key(&s) {
                        new.insert(s, k);
                    }
                }
            }
            if subs.names.len() + new.len() > sh.ws.max_streams_per_connection {
                return err(2, "Invalid request: too many streams for this connection");
            }
            for (name, k) in new {
                subs.keys.add(k);
                subs.names.insert(name, k);
            }
            json!({"result": null, "id": id}).to_string()
        }
        Some("UNSUBSCRIBE") => {
            let Some(list) = names() else {
                return err(2, "Invalid request: params must be stream names");
            };
            for s in list {
                if let Some(k) = subs.names.remove(&s) {
                    subs.keys.remove(k);
                }
            }
            json!({"result": null, "id": id}).to_string()
        }
        Some("LIST_SUBSCRIPTIONS") => {
            json!({"result": subs.names.keys().collect::<Vec<_>>(), "id": id}).to_string()
        }
        Some("SET_PROPERTY") => match (params.first().and_then(Value::as_str), params.get(1)) {
            (Some("combined"), Some(Value::Bool(b))) => {
                *combined = *b;
                json!({"result": null, "id": id}).to_string()
            }
            (Some("combined"), _) => err(1, "Invalid value type: expected Boolean"),
            _ => err(0, "Unknown property"),
        },
        Some("GET_PROPERTY") => match params.first().and_then(Value::as_str) {
            Some("combined") => json!({"result": *combined, "id": id}).to_string(),
            _ => err(0, "Unknown property"),
        },
        _ => err(2, "Invalid request: unknown method"),
    }
}
