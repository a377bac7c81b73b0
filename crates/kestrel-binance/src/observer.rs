//! The market-data observer seam: how the binary learns what the market-data tasks see.
//!
//! Libraries never touch a global metrics registry (STYLE.md 2.1). Instead the market-data
//! tasks call a [`MarketDataObserver`] the binary implements (feeding Prometheus:
//! `binance_ws_latency_seconds`, `msg_lag_seconds`, `ws_reconnects_total`, ...). Every method
//! has a no-op default; all arguments are `Copy`, so the hot path (`on_message`) never allocates.
//! Implementations must be cheap and must not block (they run inside the connection task).

use std::time::Duration;

use kestrel_model::{Symbol, UnixNanos};

pub use crate::decode::StreamKind;
pub use crate::depth_sync::StaleReason;

/// Identifies one market-data WebSocket connection: the index of its symbol group (stable for
/// the lifetime of the market-data service) and a generation that grows on every (re)connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId {
    /// Which group of streams (0-based); symbols are split into groups of at most
    /// `max_streams_per_connection` streams.
    pub group: usize,
    /// Connection attempt counter within the group, starting at 1.
    pub generation: u64,
}

/// Whether a symbol group gets its data from the WebSocket or from REST polling (M2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MarketDataMode {
    /// Normal: WebSocket streams plus depth sync.
    #[default]
    WebSocket,
    /// REST fallback: periodic snapshots within the weight budget.
    RestFallback,
}

impl MarketDataMode {
    /// A stable label: `ws` or `rest_fallback`.
    pub const fn as_str(self) -> &'static str {
        match self {
            MarketDataMode::WebSocket => "ws",
            MarketDataMode::RestFallback => "rest_fallback",
        }
    }
}

/// One received market message, as the observer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageInfo {
    /// The connection it came on.
    pub connection: ConnectionId,
    /// The stream kind.
    pub kind: StreamKind,
    /// The symbol, when the payload names one.
    pub symbol: Option<Symbol>,
    /// Local receive time of the frame (the binary computes `msg_lag_seconds` = now − this of the
    /// newest message per stream).
    pub ts_local: UnixNanos,
    /// Exchange→local latency: receive time (on the exchange clock, corrected by the measured
    /// `TimeOffset`) − event time `E`; the figure for `binance_ws_latency_seconds`. `None` when
    /// the payload has no `E` (`bookTicker`, partial depth) or the clocks disagree (negative).
    pub latency: Option<Duration>,
}

/// Why a connection is being replaced or reopened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReconnectReason {
    /// The socket closed or errored.
    Disconnected,
    /// No frame within the heartbeat window (`WS_HEARTBEAT_MISSED`).
    HeartbeatMissed,
    /// The server announced `serverShutdown` (overlapping reconnect).
    ServerShutdown,
    /// The connection reached `max_connection_age` (overlapping reconnect, before the 24 h cut).
    MaxAge,
    /// The operator asked (`restart-ws`).
    Manual,
}

impl ReconnectReason {
    /// A stable lower-case label.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReconnectReason::Disconnected => "disconnected",
            ReconnectReason::HeartbeatMissed => "heartbeat_missed",
            ReconnectReason::ServerShutdown => "server_shutdown",
            ReconnectReason::MaxAge => "max_age",
            ReconnectReason::Manual => "manual",
        }
    }
}

/// Callbacks from the market-data tasks. Implemented by the binary (metrics, logs, status).
pub trait MarketDataObserver: Send + Sync + 'static {
    /// A market message was received and decoded (every stream kind).
    fn on_message(&self, _msg: &MessageInfo) {}

    /// A connection was established (first connect and every reconnect; count
    /// `ws_reconnects_total` when `id.generation > 1`).
    fn on_connected(&self, _id: ConnectionId) {}

    /// A connection is being replaced or reopened (`ws_reconnects_total`).
    fn on_reconnect(&self, _id: ConnectionId, _reason: ReconnectReason) {}

    /// No frame arrived within the heartbeat window: fault class `WS_HEARTBEAT_MISSED`.
    fn on_heartbeat_missed(&self, _id: ConnectionId, _silent_for: Duration) {}

    /// A symbol's book went stale and is being resynced from a snapshot.
    fn on_resync(&self, _symbol: Symbol, _reason: StaleReason) {}

    /// A symbol's book is synced again (after a snapshot).
    fn on_synced(&self, _symbol: Symbol) {}

    /// A frame could not be decoded; it was counted and skipped (S14).
    fn on_malformed(&self, _id: ConnectionId) {}

    /// The output channel was full: an event for `symbol` was dropped.
    fn on_overflow(&self, _symbol: Symbol, _kind: StreamKind) {}

    /// A symbol group switched between WebSocket and REST fallback.
    fn on_mode_change(&self, _group: usize, _mode: MarketDataMode) {}

    /// A depth snapshot request failed (it will be retried).
    fn on_snapshot_error(&self, _symbol: Symbol) {}
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopObserver;

impl MarketDataObserver for NoopObserver {}
