//! WebSocket API (`/ws-api/v3`): request/response envelopes (`{"id","status","result",
//! "rateLimits"}`, errors as `"error":{code,msg}`), the WS-API signing rule (sorted params, raw
//! UTF-8), `session.logon` (Ed25519 only), user-data subscriptions with events wrapped as
//! `{"subscriptionId":n,"event":{..}}`, `eventStreamTerminated` on unsubscribe and
//! `serverShutdown` before a planned close.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::auth;
use crate::config::KeyMaterial;
use crate::error::ApiError;
use crate::faults::Counters;
use crate::rate_limit::Limited;
use crate::rest::{self, get, Params};
use crate::server::{lock, ConnCtrl, Shared};
use crate::ws_streams::Heartbeat;

/// Weight of opening a WS API connection.
const CONNECT_WEIGHT: u32 = 2;

/// `GET /ws-api/v3`: charges the connection weight, then upgrades.
pub(crate) async fn upgrade(
    ws: WebSocketUpgrade,
    State(sh): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if lock(&sh.faults).refuses("ws_api") {
        return crate::faults::refused_upgrade();
    }
    let now = sh.clock.now_ms();
    let charged = lock(&sh.limits).charge(peer.ip(), CONNECT_WEIGHT, now);
    if let Err((e, _)) = charged {
        let mut r = (
            axum::http::StatusCode::from_u16(e.http)
                .unwrap_or(axum::http::StatusCode::TOO_MANY_REQUESTS),
            axum::Json(json!({"code": e.code, "msg": e.msg})),
        )
            .into_response();
        if let Some(s) = e.retry_after_s {
            if let Ok(v) = axum::http::HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert("Retry-After", v);
            }
        }
        return r;
    }
    ws.on_upgrade(move |socket| run(sh, socket, peer))
}

/// Authentication and subscriptions of one connection.
struct Session {
    /// `(account, api key)` after `session.logon`.
    logon: Option<(usize, String)>,
    authorized_ms: u64,
    connected_ms: u64,
    /// `(subscriptionId, account)`.
    subs: Vec<(u64, usize)>,
    next_sub: u64,
}

/// What a request produced.
struct Outcome {
    /// The response text (`None`: swallowed by a fault).
    response: Option<String>,
    /// Events to send after the response (eventStreamTerminated).
    after: Vec<String>,
}

async fn run(sh: Arc<Shared>, socket: WebSocket, peer: SocketAddr) {
    let (id, mut ctrl) = sh.register("ws_api", peer);
    Counters::inc(&sh.counters.ws_api_connections);
    let mut user_rx = sh.user_tx.subscribe();
    let (mut tx, mut rd) = socket.split();
    let ws = sh.ws.clone();
    let ping_every = Duration::from_millis(ws.ping_interval_ms.max(1));
    let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    let lifetime = tokio::time::sleep(Duration::from_millis(ws.max_connection_lifetime_ms));
    tokio::pin!(lifetime);
    let mut hb = Heartbeat::new();
    let mut session = Session {
        logon: None,
        authorized_ms: 0,
        connected_ms: sh.clock.now_ms(),
        subs: Vec::new(),
        next_sub: 0,
    };
    let mut silenced = false;
    let mut delay: Option<Duration> = None;
    let mut ping_seq: u64 = 0;
    let close = |code: u16, reason: &'static str| {
        Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) }))
    };
    let shutdown_ev = |now: u64| json!({"event": {"e": "serverShutdown", "E": now}}).to_string();
    loop {
        tokio::select! {
            biased;
            () = sh.cancel.cancelled() => {
                let _ = tx.send(Message::Text(shutdown_ev(sh.clock.now_ms()).into())).await;
                let _ = tx.send(close(1001, "server shutdown")).await;
                break;
            }
            c = ctrl.recv() => match c {
                None | Some(ConnCtrl::Drop) => break,
                Some(ConnCtrl::Silence) => silenced = true,
                Some(ConnCtrl::Delay(d)) => delay = Some(d),
                Some(ConnCtrl::Clear) => { silenced = false; delay = None; }
                Some(ConnCtrl::Malformed) => {
                    let _ = tx.send(Message::Text(Utf8Bytes::from_static("{\"id\":"))).await;
                    let _ = tx.send(Message::Binary(vec![0xde, 0xad].into())).await;
                }
                Some(ConnCtrl::Shutdown) => {
                    let _ = tx.send(Message::Text(shutdown_ev(sh.clock.now_ms()).into())).await;
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
                match m {
                    Message::Text(t) => {
                        let out = handle(&sh, &mut session, peer.ip(), t.as_str());
                        if let Some(d) = delay { tokio::time::sleep(d).await; }
                        if let Some(r) = out.response {
                            if tx.send(Message::Text(r.into())).await.is_err() { break; }
                        }
                        for ev in out.after {
                            if tx.send(Message::Text(ev.into())).await.is_err() { break; }
                        }
                    }
                    Message::Pong(p) => hb.pong(&p),
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Binary(_) => {}
                }
            }
            m = user_rx.recv(), if !silenced => match m {
                Ok(msg) => {
                    for (sub, acct) in &session.subs {
                        if *acct != msg.account { continue; }
                        if let Some(d) = delay { tokio::time::sleep(d).await; }
                        let text = format!("{{\"subscriptionId\":{sub},\"event\":{}}}", msg.event);
                        if tx.send(Message::Text(text.into())).await.is_err() { break; }
                        Counters::inc(&sh.counters.ws_messages_sent);
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    Counters::inc(&sh.counters.lagged_disconnects);
                    let _ = tx.send(close(1008, "client too slow")).await;
                    break;
                }
                Err(RecvError::Closed) => break,
            },
        }
    }
    sh.unregister(id);
}

fn method_weight(method: &str, p: &Params) -> u32 {
    match method {
        "exchangeInfo" | "account.status" => 20,
        "order.status" => 4,
        "openOrders.status" => {
            if get(p, "symbol").is_some() {
                6
            } else {
                80
            }
        }
        "depth" => rest::depth_weight(get(p, "limit").and_then(|l| l.parse().ok()).unwrap_or(100)),
        "session.logon"
        | "session.status"
        | "session.logout"
        | "userDataStream.subscribe"
        | "userDataStream.subscribe.signature"
        | "userDataStream.unsubscribe"
        | "session.subscriptions" => 2,
        _ => 1,
    }
}

fn is_order_method(m: &str) -> bool {
    m == "order.place"
}

fn rate_limits(sh: &Shared, ip: IpAddr, acct: Option<usize>, with_orders: bool) -> Value {
    let now = sh.clock.now_ms();
    let mut l = lock(&sh.limits);
    let cfg = l.config().clone();
    let mut v = Vec::new();
    if let (true, Some(a)) = (with_orders, acct) {
        let (c10, c1d) = l.order_counts(a, now);
        v.push(json!({"rateLimitType":"ORDERS","interval":"SECOND","intervalNum":10,"limit":cfg.orders_per_10s,"count":c10}));
        v.push(json!({"rateLimitType":"ORDERS","interval":"DAY","intervalNum":1,"limit":cfg.orders_per_day,"count":c1d}));
    }
    v.push(json!({"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":cfg.request_weight_per_minute,"count":l.used(ip, now)}));
    Value::Array(v)
}

fn to_params(obj: &Map<String, Value>) -> Params {
    obj.iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect()
}

/// Verifies a signed request's `apiKey`/`signature`/`timestamp`; returns the account and key.
fn verify_signed(
    sh: &Shared,
    obj: &Map<String, Value>,
    p: &Params,
) -> Result<(usize, String, KeyMaterial), ApiError> {
    let key = get(p, "apiKey").ok_or_else(|| ApiError::missing("apiKey"))?.to_string();
    let (acct, material) =
        lock(&sh.ex).keys.get(&key).cloned().ok_or_else(ApiError::invalid_key)?;
    let sig = get(p, "signature").ok_or_else(|| ApiError::missing("signature"))?;
    if !auth::verify(&material, auth::ws_payload(obj).as_bytes(), sig) {
        return Err(ApiError::bad_signature());
    }
    check_ts(sh, p)?;
    Ok((acct, key, material))
}

fn check_ts(sh: &Shared, p: &Params) -> Result<(), ApiError> {
    let max_rw = lock(&sh.limits).config().max_recv_window_ms;
    auth::check_timestamp(get(p, "timestamp"), get(p, "recvWindow"), sh.clock.now_ms(), max_rw)
}

/// Account of a USER_DATA/TRADE request: its own signature, or the logged-on session.
fn account_of(
    sh: &Shared,
    session: &Session,
    obj: &Map<String, Value>,
    p: &Params,
) -> Result<usize, ApiError> {
    if get(p, "signature").is_some() {
        return verify_signed(sh, obj, p).map(|(a, _, _)| a);
    }
    match &session.logon {
        Some((acct, _)) => {
            check_ts(sh, p)?;
            Ok(*acct)
        }
        None => Err(ApiError::missing("apiKey")),
    }
}

fn session_result(sh: &Shared, s: &Session) -> Value {
    json!({
        "apiKey": s.logon.as_ref().map(|(_, k)| k.clone()),
        "authorizedSince": s.logon.as_ref().map(|_| s.authorized_ms),
        "connectedSince": s.connected_ms,
        "returnRateLimits": true,
        "serverTime": sh.clock.now_ms(),
        "userDataStream": !s.subs.is_empty(),
    })
}

fn subscribe(session: &mut Session, acct: usize) -> Result<Value, ApiError> {
    if session.subs.iter().any(|(_, a)| *a == acct) {
        return Err(ApiError::bad(
            -1000,
            "User Data Stream subscription already active for this account.",
        ));
    }
    let id = session.next_sub;
    session.next_sub += 1;
    session.subs.push((id, acct));
    Ok(json!({"subscriptionId": id}))
}

/// Handles one request frame.
fn handle(sh: &Shared, session: &mut Session, ip: IpAddr, text: &str) -> Outcome {
    let req: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => {
            let e = ApiError::bad(-1000, "Malformed request: not valid JSON.");
            return Outcome {
                response: Some(
                    json!({"id": null, "status": 400, "error": {"code": e.code, "msg": e.msg}})
                        .to_string(),
                ),
                after: Vec::new(),
            };
        }
    };
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let method = req.get("method").and_then(Value::as_str).unwrap_or("").to_string();
    let empty = Map::new();
    let obj = req.get("params").and_then(Value::as_object).unwrap_or(&empty);
    let p = to_params(obj);
    let now = sh.clock.now_ms();
    let charged = lock(&sh.limits).charge(ip, method_weight(&method, &p), now);
    if let Err((e, kind)) = charged {
        Counters::inc(if kind == Limited::TooMany {
            &sh.counters.http_429
        } else {
            &sh.counters.http_418
        });
        let retry = now + e.retry_after_s.unwrap_or(1) * 1000;
        let body = json!({
            "id": id, "status": e.http,
            "error": {"code": e.code, "msg": e.msg, "data": {"serverTime": now, "retryAfter": retry}},
            "rateLimits": rate_limits(sh, ip, None, false),
        });
        return Outcome { response: Some(body.to_string()), after: Vec::new() };
    }
    let mut after = Vec::new();
    let mut swallow = false;
    let mut acct_for_limits = None;
    let result: Result<Value, ApiError> = (|| {
        match method.as_str() {
        "ping" => Ok(json!({})),
        "time" => Ok(json!({"serverTime": now})),
        "exchangeInfo" => {
            let list: Option<Vec<String>> = match (obj.get("symbol"), obj.get("symbols")) {
                (Some(Value::String(s)), _) => Some(vec![s.clone()]),
                (_, Some(Value::Array(a))) => Some(a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()),
                _ => None,
            };
            rest::exchange_info(sh, list.as_deref())
        }
        "depth" => {
            let limit: usize = get(&p, "limit").and_then(|l| l.parse().ok()).unwrap_or(100).clamp(1, 5000);
            let ex = lock(&sh.ex);
            let sym = ex.symbol(get(&p, "symbol").ok_or_else(|| ApiError::missing("symbol"))?)?;
            let (uid, bids, asks) = ex.depth(sym, limit);
            let lv = |v: Vec<(kestrel_model::Price, kestrel_model::Qty)>| {
                v.into_iter().map(|(p, q)| [crate::wire::fp(p), crate::wire::fq(q)]).collect::<Vec<_>>()
            };
            Ok(json!({"lastUpdateId": uid, "bids": lv(bids), "asks": lv(asks)}))
        }
        "session.logon" => {
            let (acct, key, material) = verify_signed(sh, obj, &p)?;
            if !matches!(material, KeyMaterial::Ed25519(_)) {
                return Err(ApiError::bad(-1002, "You are not authorized to execute this request. session.logon requires an Ed25519 API key."));
            }
            session.logon = Some((acct, key));
            session.authorized_ms = now;
            Ok(session_result(sh, session))
        }
        "session.status" => Ok(session_result(sh, session)),
        "session.logout" => {
            session.logon = None;
            Ok(session_result(sh, session))
        }
        "session.subscriptions" => Ok(Value::Array(session.subs.iter().map(|(s, _)| json!({"subscriptionId": s})).collect())),
        "userDataStream.subscribe" => {
            let acct = session.logon.as_ref().map(|(a, _)| *a).ok_or_else(|| {
                ApiError { http: 401, code: -1002, msg: "You are not authorized to execute this request. Log in with session.logon first.".into(), retry_after_s: None }
            })?;
            subscribe(session, acct)
        }
        "userDataStream.subscribe.signature" => {
            let (acct, _, _) = verify_signed(sh, obj, &p)?;
            subscribe(session, acct)
        }
        "userDataStream.unsubscribe" => {
            let which: Option<u64> = get(&p, "subscriptionId").and_then(|s| s.parse().ok());
            let (gone, keep): (Vec<_>, Vec<_>) = session.subs.drain(..).partition(|(s, _)| which.is_none_or(|w| w == *s));
            session.subs = keep;
            if which.is_some() && gone.is_empty() {
                return Err(ApiError::bad(-1000, "Invalid subscriptionId."));
            }
            for (s, _) in gone {
                after.push(json!({"subscriptionId": s, "event": {"e": "eventStreamTerminated", "E": now}}).to_string());
            }
            Ok(json!({}))
        }
        "order.place" => {
            let acct = account_of(sh, session, obj, &p)?;
            acct_for_limits = Some(acct);
            let (symbol, o, resp) = rest::parse_new_order(&p)?;
            lock(&sh.limits).charge_order(acct, now)?;
            let mut ex = lock(&sh.ex);
            let sym = ex.symbol(&symbol)?;
            let (oid, fills) = ex.place(acct, sym, o, now)?;
            if lock(&sh.faults).take_swallow() {
                swallow = true;
            }
            Ok(rest::order_response(&ex, oid, &fills, resp))
        }
        "order.test" => {
            let acct = account_of(sh, session, obj, &p)?;
            let (symbol, o, _) = rest::parse_new_order(&p)?;
            let ex = lock(&sh.ex);
            let sym = ex.symbol(&symbol)?;
            ex.test_order(acct, sym, &o)?;
            Ok(json!({}))
        }
        "order.status" => {
            let acct = account_of(sh, session, obj, &p)?;
            let ex = lock(&sh.ex);
            let sym = ex.symbol(get(&p, "symbol").ok_or_else(|| ApiError::missing("symbol"))?)?;
            let r = rest::parse_order_ref(&p)?;
            let o = ex.find(acct, sym, &r).ok_or_else(ApiError::no_such_order)?;
            Ok(rest::query_order(&ex, o))
        }
        "order.cancel" => {
            let acct = account_of(sh, session, obj, &p)?;
            let mut ex = lock(&sh.ex);
            let sym = ex.symbol(get(&p, "symbol").ok_or_else(|| ApiError::missing("symbol"))?)?;
            let r = rest::parse_order_ref(&p)?;
            let (oid, cid) = ex.cancel(acct, sym, &r, get(&p, "newClientOrderId").map(str::to_string), now)?;
            Ok(rest::cancel_response(&ex, oid, &cid))
        }
        "openOrders.status" => {
            let acct = account_of(sh, session, obj, &p)?;
            let ex = lock(&sh.ex);
            let sym = match get(&p, "symbol") {
                Some(s) => Some(ex.symbol(s)?),
                None => None,
            };
            Ok(Value::Array(ex.open_orders(acct, sym).into_iter().map(|o| rest::query_order(&ex, o)).collect()))
        }
        "openOrders.cancelAll" => {
            let acct = account_of(sh, session, obj, &p)?;
            let mut ex = lock(&sh.ex);
            let sym = ex.symbol(get(&p, "symbol").ok_or_else(|| ApiError::missing("symbol"))?)?;
            let done = ex.cancel_all(acct, sym, now)?;
            Ok(Value::Array(done.iter().map(|(oid, cid)| rest::cancel_response(&ex, *oid, cid)).collect()))
        }
        "account.status" => {
            let acct = account_of(sh, session, obj, &p)?;
            Ok(rest::account_json(&lock(&sh.ex), acct))
        }
        "userDataStream.start" | "userDataStream.ping" | "userDataStream.stop" => Err(ApiError {
            http: 410,
            code: -1000,
            msg: "This method has been removed (listenKey streams ended 2026-02-20). Use userDataStream.subscribe.".into(),
            retry_after_s: None,
        }),
        "" => Err(ApiError::missing("method")),
        _ => Err(ApiError::bad(-1000, format!("Unknown method '{method}'."))),
    }
    })();
    if swallow {
        Counters::inc(&sh.counters.swallowed_responses);
        tracing::warn!("sim: order accepted over WS API, response swallowed (fault)");
        return Outcome { response: None, after };
    }
    let limits = rate_limits(sh, ip, acct_for_limits, is_order_method(&method));
    let body = match result {
        Ok(r) => json!({"id": id, "status": 200, "result": r, "rateLimits": limits}),
        Err(e) => {
            json!({"id": id, "status": e.http, "error": {"code": e.code, "msg": e.msg}, "rateLimits": limits})
        }
    };
    Outcome { response: Some(body.to_string()), after }
}
