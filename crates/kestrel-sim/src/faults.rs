//! Fault injection ([`Fault`], applied through `SimHandle::inject` or `POST /_sim/faults`) and
//! the counters behind `GET /_sim/stats` ([`SimStats`]). Every injected fault is logged with
//! `tracing` and counted by name.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A fault to inject. JSON form: `{"type":"sequence_gap","symbol":"BTCUSDT","skip":5}`.
///
/// `conn_id: None` targets every WebSocket connection (streams and WS API); `Some(id)` one
/// connection (ids from `SimHandle::connections` / `GET /_sim/stats`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Abruptly drop the TCP connection(s), without a close frame.
    DropConnections {
        /// Target connection, or all.
        #[serde(default)]
        conn_id: Option<u64>,
    },
    /// Stop pings and data (and stop reading) while keeping the socket open: heartbeat loss.
    HeartbeatLoss {
        /// Target connection, or all.
        #[serde(default)]
        conn_id: Option<u64>,
    },
    /// Delay every outgoing message by `delay_ms` from now on.
    DelayMessages {
        /// Target connection, or all.
        #[serde(default)]
        conn_id: Option<u64>,
        /// Added latency per message.
        delay_ms: u64,
    },
    /// Send one malformed text frame (not JSON) and one unexpected binary frame.
    MalformedFrame {
        /// Target connection, or all.
        #[serde(default)]
        conn_id: Option<u64>,
    },
    /// Send `serverShutdown` and close (a planned maintenance close).
    ServerShutdown {
        /// Target connection, or all.
        #[serde(default)]
        conn_id: Option<u64>,
    },
    /// Skip `skip` depth update ids on `symbol`: the next diff's `U` is `skip` past `u + 1`.
    SequenceGap {
        /// Exchange symbol.
        symbol: String,
        /// Ids to skip (≥ 1).
        skip: u64,
    },
    /// Answer the next `requests` REST requests with `status` (429, 418, 500, 502, 503, …).
    HttpError {
        /// HTTP status.
        status: u16,
        /// Number of requests affected.
        requests: u32,
        /// `Retry-After` seconds for 429/418 (default 1).
        #[serde(default)]
        retry_after_s: Option<u64>,
    },
    /// Delay the next `requests` REST responses by `delay_ms` each.
    StallRest {
        /// Delay.
        delay_ms: u64,
        /// Number of requests affected.
        requests: u32,
    },
    /// Shift the server clock by `offset_ms` (negative: server behind, clients look ahead → -1021).
    ClockSkew {
        /// Offset in ms; 0 removes the skew.
        offset_ms: i64,
    },
    /// Execute the next `orders` order placements (REST or WS API) but never answer them: the
    /// outcome is unknown to the client until it queries.
    SwallowOrderResponse {
        /// Number of placements affected.
        orders: u32,
    },
    /// Refuse new WebSocket connections of `kind` (`"stream"`, `"ws_api"`, or every kind when
    /// absent) with HTTP 503 for `duration_ms` from now: an endpoint outage. Open connections
    /// are not touched (drop them with `drop_connections`).
    RefuseConnections {
        /// `"stream"` or `"ws_api"`; `None`: both.
        #[serde(default)]
        kind: Option<String>,
        /// How long upgrades are refused.
        duration_ms: u64,
    },
    /// Remove every pending REST fault and connection delay/silence, and the clock skew.
    Clear,
}

impl Fault {
    /// Stable name used in stats and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::DropConnections { .. } => "drop_connections",
            Self::HeartbeatLoss { .. } => "heartbeat_loss",
            Self::DelayMessages { .. } => "delay_messages",
            Self::MalformedFrame { .. } => "malformed_frame",
            Self::ServerShutdown { .. } => "server_shutdown",
            Self::SequenceGap { .. } => "sequence_gap",
            Self::HttpError { .. } => "http_error",
            Self::StallRest { .. } => "stall_rest",
            Self::ClockSkew { .. } => "clock_skew",
            Self::SwallowOrderResponse { .. } => "swallow_order_response",
            Self::RefuseConnections { .. } => "refuse_connections",
            Self::Clear => "clear",
        }
    }
}

/// Why a fault could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// The symbol does not exist.
    #[error("unknown symbol {0}")]
    UnknownSymbol(String),
    /// No connection with that id is open.
    #[error("no open connection {0}")]
    UnknownConnection(u64),
    /// The fault's parameters are out of range.
    #[error("invalid fault: {0}")]
    Invalid(&'static str),
}

/// Pending REST-side faults.
#[derive(Debug, Default)]
pub(crate) struct RestFaults {
    /// `(status, requests left, retry_after_s)`.
    pub http_error: Option<(u16, u32, u64)>,
    /// `(delay, requests left)`.
    pub stall: Option<(Duration, u32)>,
    /// Order placements still to swallow.
    pub swallow_orders: u32,
    /// `(kind or every kind, until)`: WebSocket upgrades refused until then.
    pub refuse_connections: Option<(Option<String>, std::time::Instant)>,
}

impl RestFaults {
    /// Consumes one request of the HTTP-error fault.
    pub fn take_http_error(&mut self) -> Option<(u16, u64)> {
        let (status, left, retry) = self.http_error.as_mut()?;
        let out = (*status, *retry);
        *left -= 1;
        if *left == 0 {
            self.http_error = None;
        }
        Some(out)
    }

    /// Consumes one request of the stall fault.
    pub fn take_stall(&mut self) -> Option<Duration> {
        let (d, left) = self.stall.as_mut()?;
        let out = *d;
        *left -= 1;
        if *left == 0 {
            self.stall = None;
        }
        Some(out)
    }

    /// Whether a new WebSocket connection of `kind` is refused now (the fault expires by
    /// itself).
    pub fn refuses(&mut self, kind: &str) -> bool {
        let Some((k, until)) = &self.refuse_connections else { return false };
        if std::time::Instant::now() >= *until {
            self.refuse_connections = None;
            return false;
        }
        k.as_deref().is_none_or(|k| k == kind)
    }

    /// Consumes one swallowed order.
    pub fn take_swallow(&mut self) -> bool {
        if self.swallow_orders > 0 {
            self.swallow_orders -= 1;
            true
        } else {
            false
        }
    }
}

/// Live counters (lock-free).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub rest_requests: AtomicU64,
    pub ws_stream_connections: AtomicU64,
    pub ws_api_connections: AtomicU64,
    pub ws_messages_sent: AtomicU64,
    pub http_429: AtomicU64,
    pub http_418: AtomicU64,
    pub lagged_disconnects: AtomicU64,
    pub pong_timeouts: AtomicU64,
    pub rate_limit_disconnects: AtomicU64,
    pub lifetime_disconnects: AtomicU64,
    pub swallowed_responses: AtomicU64,
    pub faults: std::sync::Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn fault(&self, name: &str) {
        let mut m = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(name.to_string()).or_default() += 1;
    }
}

/// A snapshot of the simulator's counters (`GET /_sim/stats`, `SimHandle::stats`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SimStats {
    /// REST requests received (all paths).
    pub rest_requests: u64,
    /// Market-stream connections accepted.
    pub ws_stream_connections: u64,
    /// WS API connections accepted.
    pub ws_api_connections: u64,
    /// WebSocket data messages sent.
    pub ws_messages_sent: u64,
    /// Orders accepted from users.
    pub orders_accepted: u64,
    /// Trades executed (including background ones).
    pub trades: u64,
    /// Market steps performed (over all symbols).
    pub market_steps: u64,
    /// 429 answers from the rate limiter.
    pub http_429: u64,
    /// 418 answers from the rate limiter.
    pub http_418: u64,
    /// Clients disconnected for lagging behind the publish channel.
    pub lagged_disconnects: u64,
    /// Clients disconnected for not answering a ping in time.
    pub pong_timeouts: u64,
    /// Clients disconnected for sending too many messages.
    pub rate_limit_disconnects: u64,
    /// Clients disconnected at the end of their lifetime.
    pub lifetime_disconnects: u64,
    /// Order responses swallowed by the `swallow_order_response` fault.
    pub swallowed_responses: u64,
    /// Injected faults by name.
    pub faults: BTreeMap<String, u64>,
    /// Open WebSocket connections.
    pub connections: Vec<ConnectionInfo>,
}

/// An open WebSocket connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    /// Id for targeted faults.
    pub id: u64,
    /// `"stream"` or `"ws_api"`.
    pub kind: String,
    /// Remote address.
    pub peer: String,
}

/// The answer to a refused WebSocket upgrade (`refuse_connections`).
pub(crate) fn refused_upgrade() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({
            "code": -1001,
            "msg": "Service unavailable (connection refused by kestrel-sim fault injection)."
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuse_connections_matches_kind_and_expires() {
        let far = std::time::Instant::now() + Duration::from_secs(60);
        // TC0: one kind refused, the other not.
        let mut f = RestFaults {
            refuse_connections: Some((Some("ws_api".into()), far)),
            ..RestFaults::default()
        };
        assert!(f.refuses("ws_api"));
        assert!(!f.refuses("stream"));
        // TC1: no kind: every kind.
        f.refuse_connections = Some((None, far));
        assert!(f.refuses("stream") && f.refuses("ws_api"));
        // TC2: expired: removed.
        f.refuse_connections = Some((None, std::time::Instant::now()));
        assert!(!f.refuses("stream"));
        assert!(f.refuse_connections.is_none());
        // TC3: the JSON form.
        let v: Fault = serde_json::from_str(
            r#"{"type":"refuse_connections","kind":"ws_api","duration_ms":500}"#,
        )
        .unwrap();
        assert_eq!(v, Fault::RefuseConnections { kind: Some("ws_api".into()), duration_ms: 500 });
        assert_eq!(v.name(), "refuse_connections");
    }
}
