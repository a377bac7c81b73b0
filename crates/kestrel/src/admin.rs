//! The admin HTTP API (axum) and its CLI client (capability M7, M9).
//!
//! Routes: `GET /metrics` (OpenMetrics, process metrics included), `GET /status`, `GET /latency`
//! (exact HDR percentiles, see [`crate::latency`]), `POST /latency/reset`,
//! `POST /halt`, `/resume`, `/cancel-all`, `/restart-ws`, `/fallback-rest` (`{"on":true}`).
//! Loopback by default; on any other address a bearer token is required and compared in
//! constant time. Errors are JSON `{"error": "..."}` with a 4xx/5xx status. Commands reach the
//! engine as `Event::Command` on its inbox, sent with a timeout: a full inbox answers 503.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kestrel_engine::EngineSnapshot;
use kestrel_model::{Command, Event};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::runtime::Control;
use crate::secrets::Secret;

/// How long a command waits for room in the engine's inbox before answering 503.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// The default admin URL the CLI talks to.
pub const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:9184";

#[derive(Clone)]
struct AppState {
    control: Control,
    token: Option<Arc<Secret>>,
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({ "error": msg.into() }))).into_response()
}

/// Binds `listen` and returns the bound address and the server future (runs until `cancel`).
pub async fn serve(
    listen: SocketAddr,
    token: Option<Arc<Secret>>,
    control: Control,
    cancel: CancellationToken,
) -> anyhow::Result<(SocketAddr, impl Future<Output = ()> + Send + 'static)> {
    if !listen.ip().is_loopback() && token.is_none() {
        anyhow::bail!("admin.listen {listen} is not loopback: an admin token is required");
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding the admin API on {listen}"))?;
    let addr = listener.local_addr().context("admin API address")?;
    let app = router(control, token);
    let fut = async move {
        let r = axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned()).await;
        if let Err(e) = r {
            tracing::error!(error = %e, "admin API stopped");
        }
    };
    Ok((addr, fut))
}

fn router(control: Control, token: Option<Arc<Secret>>) -> Router {
    let state = AppState { control, token };
    Router::new()
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/latency", get(latency))
        .route("/latency/reset", post(latency_reset))
        .route("/halt", post(halt))
        .route("/resume", post(resume))
        .route("/cancel-all", post(cancel_all))
        .route("/restart-ws", post(restart_ws))
        .route("/fallback-rest", post(fallback_rest))
        .fallback(|| async {
            error(StatusCode::NOT_FOUND, "no such endpoint; see `kestrel --help`")
        })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "wrong method: GET /status, /metrics and /latency; POST /halt, /resume, \
                 /cancel-all, /restart-ws, /fallback-rest, /latency/reset",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state)
}

async fn auth(
    State(st): State<AppState>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    if let Some(token) = &st.token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match presented {
            Some(p) if token.matches(p) => {}
            _ => return error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token"),
        }
    }
    next.run(req).await
}

async fn metrics(State(st): State<AppState>) -> Response {
    let body = st.control.metrics.encode();
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response()
}

/// `GET /latency`: exact (HDR) percentiles per latency series since the last reset.
async fn latency(State(st): State<AppState>) -> Response {
    Json(st.control.metrics.latency().summary()).into_response()
}

/// `POST /latency/reset`: empties the exact-latency histograms (start of a measurement window).
async fn latency_reset(State(st): State<AppState>) -> Response {
    st.control.metrics.latency().reset();
    Json(json!({ "ok": true, "reset": "latency" })).into_response()
}

async fn status(State(st): State<AppState>) -> Response {
    let snap = st.control.snapshots.borrow().clone();
    Json(status_json(&snap, &st.control)).into_response()
}

/// The `/status` document.
pub fn status_json(snap: &EngineSnapshot, control: &Control) -> Value {
    let md = control.market_data.status();
    let md_mode = if md.any_fallback() { "rest_fallback" } else { "ws" };
    let symbols: Vec<Value> = snap
        .symbols
        .iter()
        .map(|s| {
            let orders: Vec<Value> = s
                .open_orders
                .iter()
                .map(|o| {
                    json!({
                        "client_id": o.client_id.as_str(),
                        "order_id": o.order_id.map(|i| i.0),
                        "side": o.side.as_str(),
                        "type": o.kind.as_str(),
                        "price": o.price.map(|p| p.to_string()),
                        "qty": o.orig_qty.to_string(),
                        "filled": o.cum_qty.to_string(),
                        "status": format!("{:?}", o.status),
                    })
                })
                .collect();
            json!({
                "symbol": s.symbol.as_str(),
                "strategy": s.strategy,
                "book_state": format!("{:?}", s.book_state),
                "book_source": format!("{:?}", s.book_source),
                "md_mode": md_mode,
                "mid": s.mid.map(|p| p.to_string()),
                "spread": s.spread.map(|p| p.to_string()),
                "position": s.position.to_string(),
                "avg_price": s.avg_price.map(|p| p.to_string()),
                "realised_pnl": s.realised_pnl.to_string(),
                "unrealised_pnl": s.unrealised_pnl.to_string(),
                "signals": s.signals,
                "orders_placed": s.orders_placed,
                "exchange_rejections": s.exchange_rejections,
                "open_orders": orders,
            })
        })
        .collect();
    let faults: Vec<Value> = control
        .faults
        .active()
        .iter()
        .map(|f| {
            json!({
                "class": f.class.as_str(),
                "severity": f.class.severity().as_str(),
                "detail": f.detail,
                "since_ns": f.since.0,
            })
        })
        .collect();
    let groups: Vec<Value> = md
        .groups
        .iter()
        .map(|g| {
            json!({
                "group": g.group,
                "connected": g.connected,
                "mode": g.mode.as_str(),
                "reconnects": g.reconnects,
                "heartbeat_missed": g.heartbeat_missed,
                "resyncs": g.resyncs,
            })
        })
        .collect();
    json!({
        "ts_ns": snap.ts.0,
        "halted": snap.halted,
        "kill_switch": snap.kill_switch,
        "pnl": snap.pnl.to_string(),
        "exposure": snap.exposure.to_string(),
        "funds": snap.funds.to_string(),
        "symbols": symbols,
        "faults": faults,
        "market_data": { "mode": md_mode, "groups": groups },
    })
}

async fn command(st: &AppState, cmd: Command, name: &str) -> Response {
    match st.control.events.send_timeout(Event::Command(cmd), COMMAND_TIMEOUT).await {
        Ok(()) => Json(json!({ "ok": true, "command": name })).into_response(),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "engine busy or stopped; try again"),
    }
}

async fn halt(State(st): State<AppState>) -> Response {
    command(&st, Command::Halt, "halt").await
}

async fn resume(State(st): State<AppState>) -> Response {
    command(&st, Command::Resume, "resume").await
}

async fn cancel_all(State(st): State<AppState>) -> Response {
    command(&st, Command::CancelAll { symbol: None }, "cancel-all").await
}

async fn restart_ws(State(st): State<AppState>) -> Response {
    st.control.market_data.restart_ws();
    Json(json!({ "ok": true, "command": "restart-ws" })).into_response()
}

async fn fallback_rest(State(st): State<AppState>, body: Bytes) -> Response {
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("body must be JSON {{\"on\": true|false}}: {e}"),
            )
        }
    };
    let Some(on) = v.get("on").and_then(Value::as_bool) else {
        return error(StatusCode::BAD_REQUEST, "body must be JSON {\"on\": true|false}");
    };
    st.control.market_data.set_forced_fallback(on);
    Json(json!({ "ok": true, "command": "fallback-rest", "on": on })).into_response()
}

// ---------------------------------------------------------------------------------------------
// Client (CLI)
// ---------------------------------------------------------------------------------------------

/// A failed admin call.
#[derive(Debug, thiserror::Error)]
pub enum AdminClientError {
    /// The URL is malformed.
    #[error("invalid admin URL {0:?}")]
    Url(String),
    /// The request did not get an answer.
    #[error("cannot reach the admin API at {url}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The API answered with an error.
    #[error("admin API answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Its `error` message.
        message: String,
    },
}

/// Calls the admin API: `GET` when `body` is `None`, else `POST` with the JSON body. The token
/// (if any) goes in `Authorization: Bearer`.
pub async fn call(
    base: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<Value, AdminClientError> {
    let url = format!("{}{}", base.trim_end_matches('/'), path);
    if url::Url::parse(&url).is_err() {
        return Err(AdminClientError::Url(base.to_owned()));
    }
    let client = reqwest::Client::new();
    let mut req = match &body {
        None => client.get(&url),
        Some(b) => client.post(&url).json(b),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|source| AdminClientError::Unreachable { url: url.clone(), source })?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|source| AdminClientError::Unreachable { url: url.clone(), source })?;
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if !status.is_success() {
        let message = v
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| v.to_string());
        return Err(AdminClientError::Status { status: status.as_u16(), message });
    }
    Ok(v)
}

/// Human-readable rendering of a `/status` document.
pub fn render_status(v: &Value) -> String {
    use std::fmt::Write as _;
    let s = |v: &Value, k: &str| match v.get(k) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => "-".to_owned(),
        Some(x) => x.to_string(),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "halted: {}  kill switch: {}  pnl: {}  exposure: {}  market data: {}",
        s(v, "halted"),
        s(v, "kill_switch"),
        s(v, "pnl"),
        s(v, "exposure"),
        v.get("market_data").map(|m| s(m, "mode")).unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "{:<10} {:<7} {:>12} {:>8} {:>12} {:>12} {:>5}  strategy",
        "symbol", "book", "mid", "spread", "position", "pnl(real)", "open"
    );
    for sym in v.get("symbols").and_then(Value::as_array).into_iter().flatten() {
        let open = sym.get("open_orders").and_then(Value::as_array).map_or(0, Vec::len);
        let _ = writeln!(
            out,
            "{:<10} {:<7} {:>12} {:>8} {:>12} {:>12} {:>5}  {}",
            s(sym, "symbol"),
            s(sym, "book_state"),
            s(sym, "mid"),
            s(sym, "spread"),
            s(sym, "position"),
            s(sym, "realised_pnl"),
            open,
            s(sym, "strategy")
        );
    }
    let faults = v.get("faults").and_then(Value::as_array).cloned().unwrap_or_default();
    if faults.is_empty() {
        out.push_str("faults: none\n");
    } else {
        for f in faults {
            let _ = writeln!(
                out,
                "FAULT {} [{}] {}",
                s(&f, "class"),
                s(&f, "severity"),
                s(&f, "detail")
            );
        }
    }
    out
}
