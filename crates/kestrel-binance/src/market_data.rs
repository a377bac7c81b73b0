//! Market data over WebSocket (M1) with REST fallback (M2): connections, depth sync, output.
//!
//! # Shape
//!
//! [`spawn`] splits the configured symbols into groups of at most
//! [`MarketDataConfig::max_streams_per_connection`] streams (Binance allows 1024 per
//! connection) and runs one task per group. A group task owns one combined-stream connection
//! (`/stream?streams=a/b/c`, so no control message is ever sent and the 5 incoming msgs/s
//! limit is only spent on pongs), one [`DepthSync`] (and so one [`kestrel_model::OrderBook`])
//! per symbol, and the snapshot requests for its books. Per frame it: records the local receive
//! time, decodes ([`MarketDecoder`], no per-level allocation), feeds the depth-sync machine,
//! and sends [`Event::Book`] / [`Event::Trade`] to the engine.
//!
//! # Connection lifecycle
//!
//! - **Pings** are answered by tungstenite while reading; the task flushes after every ping so
//!   the pong leaves at once.
//! - **Heartbeat**: no frame for [`MarketDataConfig::heartbeat_timeout`] raises
//!   `WS_HEARTBEAT_MISSED` ([`MarketDataObserver::on_heartbeat_missed`] and
//!   [`GroupStatus::heartbeat_missed`]), closes the socket and reconnects.
//! - **Hard reconnect** (socket closed/errored, heartbeat missed, operator `restart-ws`): every
//!   book of the group is marked `Stale` (and that is published), the socket is reopened with
//!   jittered exponential backoff ([`MarketDataConfig::backoff_base`] ..
//!   [`MarketDataConfig::backoff_max`]), and every book is resnapshotted once the new
//!   connection is up (buffering its deltas per SPEC.md §3).
//! - **Overlapping reconnect** (`serverShutdown`, or [`MarketDataConfig::max_connection_age`]
//!   reached, ahead of Binance's 24 h cut): a second connection is opened while the first keeps
//!   feeding the books. Deltas from the new connection are applied only where they continue the
//!   book (`U <= id + 1`; duplicates are ignored by rule (a)); once every synced book has been
//!   continued by the new connection (or [`MarketDataConfig::handover_timeout`] passed) the old
//!   socket is dropped. No update gap, no resnapshot. Trades are de-duplicated by trade id.
//!   If the old socket closes before the new one is up (a server may close right after
//!   `serverShutdown`), the books are kept as they are (exact as of their update id) and the
//!   new socket continues them where its stream is contiguous; a book it cannot continue within
//!   the handover timeout is resynced, and a replacement that fails becomes a hard reconnect.
//! - **Snapshots** go through the [`SnapshotSource`] (the rate-limited REST client), at most
//!   [`MarketDataConfig::max_concurrent_snapshots`] at a time per group, so a start-up with many
//!   symbols is spread over time (S08). Failed snapshots are retried after
//!   [`MarketDataConfig::snapshot_retry`].
//!
//! # Output and the full-channel policy
//!
//! Events go to a bounded `mpsc::Sender<Event>` with `try_send`; the task never waits on the
//! engine. When the channel is full:
//! - a **book** update is dropped, that symbol's book is marked `Stale`, the overflow is
//!   counted ([`MarketDataObserver::on_overflow`]) and the book is resnapshotted. The symbol
//!   then owes the engine a view: as soon as the channel has room the *current* view is sent
//!   (`Stale` while the resnapshot is pending, or the freshly synced book if it has already
//!   landed), and no other view of that symbol is sent before it;
//! - a **trade** is dropped and counted (trades don't build state).
//!
//! `bookTicker` frames produce a one-level [`BookTop`] only for configurations without the
//! depth stream (with depth, the full book is better and always consistent).
//!
//! Malformed frames are counted ([`MarketDataObserver::on_malformed`]) and skipped; they never
//! end the task (S14). Latency (`binance_ws_latency_seconds`) = local receive time moved onto the
//! exchange clock with [`TimeOffset`] − event time `E`.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use kestrel_model::{
    BookState, BookTop, Clock, Event, Level, PublicTrade, Side, Symbol, TradeId, UnixNanos,
};
use rand::Rng;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::decode::{Decoded, MarketDecoder, StreamKind};
use crate::depth_sync::{DeltaOutcome, DepthDelta, DepthSync, Phase, SnapshotOutcome, StaleReason};
use crate::fallback::{FallbackConfig, FallbackDecision, FallbackState};
use crate::observer::{
    ConnectionId, MarketDataMode, MarketDataObserver, MessageInfo, ReconnectReason,
};
use crate::time_sync::TimeOffset;
use crate::wire::market::PartialDepth;

/// Binance's limit of streams on one connection (SPEC.md §2).
pub const MAX_STREAMS_PER_CONNECTION: usize = 1024;

/// Update speed of the diff-depth stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepthSpeed {
    /// `<symbol>@depth@100ms`.
    Ms100,
    /// `<symbol>@depth` (every 1000 ms).
    Ms1000,
}

/// Which streams to subscribe per symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSelection {
    /// Diff depth, at this speed (`None`: no order book, only trades/bookTicker).
    pub depth: Option<DepthSpeed>,
    /// `<symbol>@trade`.
    pub trade: bool,
    /// `<symbol>@bookTicker`.
    pub book_ticker: bool,
}

impl StreamSelection {
    /// Stream names for one symbol.
    pub fn stream_names(&self, symbol: Symbol) -> Vec<String> {
        let s = symbol.to_stream_name();
        let mut v = Vec::with_capacity(3);
        match self.depth {
            Some(DepthSpeed::Ms100) => v.push(format!("{s}@depth@100ms")),
            Some(DepthSpeed::Ms1000) => v.push(format!("{s}@depth")),
            None => {}
        }
        if self.trade {
            v.push(format!("{s}@trade"));
        }
        if self.book_ticker {
            v.push(format!("{s}@bookTicker"));
        }
        v
    }

    fn per_symbol(&self) -> usize {
        usize::from(self.depth.is_some()) + usize::from(self.trade) + usize::from(self.book_ticker)
    }
}

/// Market-data configuration. Built with [`MarketDataConfig::new`] (the two things an operator
/// must choose), then adjusted field by field; every interval is configurable so tests can
/// shrink it.
#[derive(Debug, Clone)]
pub struct MarketDataConfig {
    /// Base URL of the market streams (e.g. `wss://stream.binance.com:9443`); `/stream` is
    /// appended (a trailing `/ws` or `/stream` is replaced).
    pub ws_stream_url: Url,
    /// Symbols to follow.
    pub symbols: Vec<Symbol>,
    /// Streams per symbol (default: depth@100ms + trade).
    pub streams: StreamSelection,
    /// Streams per connection, at most 1024 (default 1024). More symbols → more connections.
    pub max_streams_per_connection: usize,
    /// No frame within this window → `WS_HEARTBEAT_MISSED`, close, reconnect (default 30 s;
    /// Binance pings every 20 s, so a healthy connection is never silent that long).
    pub heartbeat_timeout: Duration,
    /// First reconnect delay (default 250 ms); doubles per failed attempt, with jitter.
    pub backoff_base: Duration,
    /// Largest reconnect delay (default 30 s).
    pub backoff_max: Duration,
    /// Give up a connection attempt after this long (default 10 s).
    pub connect_timeout: Duration,
    /// Replace a connection (overlapping) when it gets this old (default 23 h; Binance cuts at
    /// 24 h).
    pub max_connection_age: Duration,
    /// Longest overlap of old and new connection during a handover (default 10 s).
    pub handover_timeout: Duration,
    /// `limit` of depth snapshots (default 1000, weight 50; SPEC.md allows up to 5000, weight
    /// 250, which would cost 5× as much per resync).
    pub snapshot_limit: u16,
    /// Snapshot requests in flight per connection group (default 2): spreads start-up (S08).
    pub max_concurrent_snapshots: usize,
    /// Delay before retrying a failed snapshot (default 1 s).
    pub snapshot_retry: Duration,
    /// Deltas buffered per symbol while waiting for a snapshot (default 1000, i.e. 100 s at
    /// 100 ms); overflowing restarts the sync.
    pub max_buffered_events: usize,
    /// Housekeeping period: heartbeat, age, fallback and retry checks (default 250 ms).
    pub tick: Duration,
    /// REST fallback tuning.
    pub fallback: FallbackConfig,
}

impl MarketDataConfig {
    /// A configuration with documented defaults for everything but the URL and the symbols.
    pub fn new(ws_stream_url: Url, symbols: Vec<Symbol>) -> Self {
        Self {
            ws_stream_url,
            symbols,
            streams: StreamSelection {
                depth: Some(DepthSpeed::Ms100),
                trade: true,
                book_ticker: false,
            },
            max_streams_per_connection: MAX_STREAMS_PER_CONNECTION,
            heartbeat_timeout: Duration::from_secs(30),
            backoff_base: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_connection_age: Duration::from_secs(23 * 3600),
            handover_timeout: Duration::from_secs(10),
            snapshot_limit: 1000,
            max_concurrent_snapshots: 2,
            snapshot_retry: Duration::from_secs(1),
            max_buffered_events: 1000,
            tick: Duration::from_millis(250),
            fallback: FallbackConfig::default(),
        }
    }

    /// Checks the limits and splits the symbols into connection groups.
    pub fn groups(&self) -> Result<Vec<Vec<Symbol>>, MarketDataError> {
        if self.symbols.is_empty() {
            return Err(MarketDataError::NoSymbols);
        }
        let per = self.streams.per_symbol();
        if per == 0 {
            return Err(MarketDataError::NoStreams);
        }
        if self.max_streams_per_connection == 0
            || self.max_streams_per_connection > MAX_STREAMS_PER_CONNECTION
            || self.max_streams_per_connection < per
        {
            return Err(MarketDataError::StreamsPerConnection(self.max_streams_per_connection));
        }
        let symbols_per_conn = self.max_streams_per_connection / per;
        Ok(self.symbols.chunks(symbols_per_conn).map(<[Symbol]>::to_vec).collect())
    }

    /// The combined-stream URL for a group.
    pub fn stream_url(&self, symbols: &[Symbol]) -> Url {
        let mut url = self.ws_stream_url.clone();
        let base = url.path().trim_end_matches('/');
        let base =
            base.strip_suffix("/stream").or_else(|| base.strip_suffix("/ws")).unwrap_or(base);
        let path = format!("{base}/stream");
        url.set_path(&path);
        let names: Vec<String> =
            symbols.iter().flat_map(|s| self.streams.stream_names(*s)).collect();
        url.set_query(Some(&format!("streams={}", names.join("/"))));
        url
    }
}

/// Why market data could not start.
#[derive(Debug, thiserror::Error)]
pub enum MarketDataError {
    /// The configuration names no symbol.
    #[error("no symbols configured")]
    NoSymbols,
    /// The stream selection is empty.
    #[error("no streams selected (depth, trade, bookTicker all off)")]
    NoStreams,
    /// `max_streams_per_connection` is 0, above 1024, or below the streams of one symbol.
    #[error("max_streams_per_connection {0} must be within 1..=1024 and fit one symbol's streams")]
    StreamsPerConnection(usize),
}

/// A depth snapshot request failed; the source's error is kept.
#[derive(Debug, thiserror::Error)]
#[error("depth snapshot for {symbol} failed")]
pub struct SnapshotError {
    /// The symbol.
    pub symbol: Symbol,
    /// The underlying error (REST, rate limit, decode).
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Read buffer of a WebSocket connection (market data and WS API). tungstenite zero-fills the
/// free part of its read buffer, up to this size, before every socket read — at its default of
/// 128 KiB that was a 128 KiB `memset` per read (two reads per frame at low rates: one with the
/// frame, one finding the socket empty), evicting the hot path's cache lines and costing
/// 5-6 % of the engine thread. 16 KiB still holds dozens of stream frames per read at high
/// rates; larger messages take several reads.
pub const WS_READ_BUFFER: usize = 16 * 1024;

/// The WebSocket settings of every connection this crate opens (see [`WS_READ_BUFFER`]).
pub fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER)
}

/// A boxed snapshot future (one per resync; not on the per-message path).
pub type SnapshotFuture = Pin<Box<dyn Future<Output = Result<PartialDepth, SnapshotError>> + Send>>;

/// Where depth snapshots come from: the rate-limited REST client in production, anything in
/// tests. `GET /api/v3/depth?symbol=..&limit=..`.
pub trait SnapshotSource: Send + Sync + 'static {
    /// Fetches a snapshot. The future must not borrow `self` (clone an `Arc` inside).
    fn depth_snapshot(&self, symbol: Symbol, limit: u16) -> SnapshotFuture;
}

/// The production source: `GET /api/v3/depth` through the shared, rate-limited REST client, so
/// resnapshots of many symbols queue behind the weight budget instead of causing a 429.
impl SnapshotSource for crate::rest::RestClient {
    fn depth_snapshot(&self, symbol: Symbol, limit: u16) -> SnapshotFuture {
        let client = self.clone();
        Box::pin(async move {
            match client.depth(symbol, limit).await {
                Ok(d) => Ok(PartialDepth {
                    last_update_id: d.last_update_id,
                    bids: d.bids,
                    asks: d.asks,
                }),
                Err(e) => Err(SnapshotError { symbol, source: Box::new(e) }),
            }
        })
    }
}

/// A connection group's externally visible state (for `kestrel status` and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupStatus {
    /// Group index.
    pub group: usize,
    /// Symbols in the group.
    pub symbols: usize,
    /// A connection is open.
    pub connected: bool,
    /// `WS_HEARTBEAT_MISSED` is active: set when the window passes silently, cleared by the next
    /// frame on a new connection.
    pub heartbeat_missed: bool,
    /// WebSocket or REST fallback.
    pub mode: MarketDataMode,
    /// Connections opened after the first (`ws_reconnects_total`).
    pub reconnects: u64,
    /// Heartbeat windows missed.
    pub heartbeat_misses: u64,
    /// Malformed frames skipped.
    pub malformed: u64,
    /// Events dropped on a full output channel.
    pub overflows: u64,
    /// Book resyncs (any reason).
    pub resyncs: u64,
    /// Local receive time of the newest frame (`msg_lag_seconds` = now − this).
    pub last_frame: UnixNanos,
}

/// The whole service's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketDataStatus {
    /// One entry per connection group.
    pub groups: Vec<GroupStatus>,
}

impl MarketDataStatus {
    /// True when any group is in REST fallback.
    pub fn any_fallback(&self) -> bool {
        self.groups.iter().any(|g| g.mode == MarketDataMode::RestFallback)
    }
}

/// Lock-free status cells, written by a group task, read by [`MarketDataHandle::status`].
#[derive(Debug, Default)]
struct StatusCell {
    symbols: AtomicU64,
    connected: AtomicBool,
    heartbeat_missed: AtomicBool,
    mode: AtomicU8,
    reconnects: AtomicU64,
    heartbeat_misses: AtomicU64,
    malformed: AtomicU64,
    overflows: AtomicU64,
    resyncs: AtomicU64,
    last_frame: AtomicU64,
}

impl StatusCell {
    fn read(&self, group: usize) -> GroupStatus {
        GroupStatus {
            group,
            symbols: usize::try_from(self.symbols.load(Ordering::Relaxed)).unwrap_or(usize::MAX),
            connected: self.connected.load(Ordering::Relaxed),
            heartbeat_missed: self.heartbeat_missed.load(Ordering::Relaxed),
            mode: if self.mode.load(Ordering::Relaxed) == 1 {
                MarketDataMode::RestFallback
            } else {
                MarketDataMode::WebSocket
            },
            reconnects: self.reconnects.load(Ordering::Relaxed),
            heartbeat_misses: self.heartbeat_misses.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            overflows: self.overflows.load(Ordering::Relaxed),
            resyncs: self.resyncs.load(Ordering::Relaxed),
            last_frame: UnixNanos(self.last_frame.load(Ordering::Relaxed)),
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Control and status of the running market-data service.
#[derive(Debug)]
pub struct MarketDataHandle {
    /// Bumped by `restart_ws`; each group reacts to a change.
    restart_tx: watch::Sender<u64>,
    /// Operator fallback override.
    fallback_tx: watch::Sender<bool>,
    status: Arc<Vec<StatusCell>>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl MarketDataHandle {
    /// `restart-ws`: every group drops its connection, marks its books stale, reconnects at once
    /// and resnapshots.
    pub fn restart_ws(&self) {
        self.restart_tx.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// `fallback-rest on` (`true`): serve every book from REST polling until turned off;
    /// `off` (`false`): back to automatic (WebSocket when healthy).
    pub fn set_forced_fallback(&self, on: bool) {
        self.fallback_tx.send_replace(on);
    }

    /// A snapshot of every group's state and counters.
    pub fn status(&self) -> MarketDataStatus {
        MarketDataStatus {
            groups: self.status.iter().enumerate().map(|(i, c)| c.read(i)).collect(),
        }
    }

    /// Number of connection groups.
    pub fn groups(&self) -> usize {
        self.status.len()
    }

    /// Stops every group task and waits for them.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for t in self.tasks {
            // A task that panicked has already reported through the panic hook; nothing to add.
            let _ = t.await;
        }
    }
}

/// Everything a group task needs from its owner.
#[derive(Clone)]
pub struct MarketDataDeps {
    /// Snapshot source (the REST client).
    pub snapshots: Arc<dyn SnapshotSource>,
    /// Measured exchange − local clock offset, for latency.
    pub time_offset: TimeOffset,
    /// Wall clock for `ts_local` (`SystemClock` in the binary).
    pub clock: Arc<dyn Clock>,
    /// Metrics/log sink.
    pub observer: Arc<dyn MarketDataObserver>,
}

impl std::fmt::Debug for MarketDataDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarketDataDeps")
            .field("time_offset", &self.time_offset)
            .finish_non_exhaustive()
    }
}

/// Starts market data: one task per connection group. Events go to `out`; the tasks stop when
/// `cancel` fires (or [`MarketDataHandle::shutdown`]) or `out` is closed.
pub fn spawn(
    config: MarketDataConfig,
    deps: MarketDataDeps,
    out: mpsc::Sender<Event>,
    cancel: CancellationToken,
) -> Result<MarketDataHandle, MarketDataError> {
    let groups = config.groups()?;
    let total_symbols = config.symbols.len();
    let cfg = Arc::new(config);
    let status: Arc<Vec<StatusCell>> =
        Arc::new(groups.iter().map(|_| StatusCell::default()).collect());
    let (restart_tx, restart_rx) = watch::channel(0u64);
    let (fallback_tx, fallback_rx) = watch::channel(false);
    let mut tasks = Vec::with_capacity(groups.len());
    for (i, symbols) in groups.into_iter().enumerate() {
        let task = GroupTask::new(
            i,
            symbols,
            total_symbols,
            cfg.clone(),
            deps.clone(),
            out.clone(),
            status.clone(),
        );
        let cancel = cancel.clone();
        let restart_rx = restart_rx.clone();
        let fallback_rx = fallback_rx.clone();
        tasks.push(tokio::spawn(task.run(cancel, restart_rx, fallback_rx)));
    }
    Ok(MarketDataHandle { restart_tx, fallback_tx, status, cancel, tasks })
}

// ---------------------------------------------------------------------------------------------
// Group task

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type ConnectFuture = Pin<Box<dyn Future<Output = Result<Ws, ConnectError>> + Send>>;
type PollFuture =
    Pin<Box<dyn Future<Output = (Symbol, Result<PartialDepth, SnapshotError>)> + Send>>;

/// Why a connection attempt failed (logged, then retried with backoff).
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("websocket connect failed")]
    Ws(#[source] tokio_tungstenite::tungstenite::Error),
    #[error("websocket connect timed out")]
    Timeout,
}

/// One open socket.
struct Conn {
    ws: Ws,
    id: ConnectionId,
    opened: Instant,
    last_frame: Instant,
    /// At least one frame arrived (resets the backoff).
    got_frame: bool,
}

/// Why a connection is being opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// Nothing is open: the new socket becomes the active one.
    Primary,
    /// Overlapping replacement of the active socket.
    Handover,
}

/// Per-symbol state of a group.
struct SymbolState {
    sync: DepthSync,
    /// Reused output view (no allocation per publish).
    top: BookTop,
    /// `E` of the last applied delta (ms), for `BookTop::ts_exchange`.
    last_event_ms: u64,
    /// Highest trade id forwarded (de-duplicates the handover overlap).
    last_trade_id: u64,
    /// Highest `bookTicker` `u` forwarded.
    last_ticker_id: u64,
    /// A stale view could not be delivered (full channel) and must be, before any other view.
    notify_pending: bool,
    /// During a handover: the new connection has continued this book.
    handed_over: bool,
    /// A fallback poll is in flight.
    polling: bool,
    /// Queued for a snapshot (avoids duplicate queue entries).
    queued: bool,
}

struct GroupTask {
    group: usize,
    cfg: Arc<MarketDataConfig>,
    deps: MarketDataDeps,
    out: mpsc::Sender<Event>,
    status: Arc<Vec<StatusCell>>,
    url: Url,
    order: Vec<Symbol>,
    /// Per-symbol state, looked up on every frame (Fx hash: the keys are our own symbols).
    books: FxHashMap<Symbol, SymbolState>,
    decoder: MarketDecoder,
    active: Option<Conn>,
    next: Option<Conn>,
    connecting: Option<(Purpose, ConnectFuture)>,
    handover_started: Option<Instant>,
    generation: u64,
    failed_attempts: u32,
    reconnect_at: Option<Instant>,
    snapshot_queue: VecDeque<Symbol>,
    snapshot_retry_at: Option<Instant>,
    snapshots: FuturesUnordered<PollFuture>,
    polls: FuturesUnordered<PollFuture>,
    next_poll: Option<Instant>,
    poll_interval: Duration,
    fallback: FallbackState,
    notify_pending: usize,
    closed: bool,
    /// The frame being handled handed an event to the engine (see the run loop's yield).
    handed_over: bool,
}

/// Yields once without going through the I/O driver: the task wakes itself and goes to the back
/// of the run queue, so tasks already woken (the engine, by the event just sent) run first.
/// (`tokio::task::yield_now` defers the wake-up until the driver has been polled: one
/// `epoll_wait` per frame.)
#[derive(Default)]
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

enum Ev {
    Cancel,
    Restart,
    Fallback(bool),
    Frame(bool, Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    /// Boxed: a `WebSocketStream` is large and the other variants are small.
    Connected(Purpose, Box<Result<Ws, ConnectError>>),
    Snapshot(Symbol, Result<PartialDepth, SnapshotError>),
    Poll(Symbol, Result<PartialDepth, SnapshotError>),
    Tick,
}

async fn read(
    conn: &mut Option<Conn>,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    match conn {
        Some(c) => c.ws.next().await,
        None => std::future::pending().await,
    }
}

async fn connecting(
    c: &mut Option<(Purpose, ConnectFuture)>,
) -> (Purpose, Result<Ws, ConnectError>) {
    match c {
        Some((p, f)) => (*p, f.await),
        None => std::future::pending().await,
    }
}

impl GroupTask {
    fn new(
        group: usize,
        symbols: Vec<Symbol>,
        total_symbols: usize,
        cfg: Arc<MarketDataConfig>,
        deps: MarketDataDeps,
        out: mpsc::Sender<Event>,
        status: Arc<Vec<StatusCell>>,
    ) -> Self {
        let url = cfg.stream_url(&symbols);
        let books = symbols
            .iter()
            .map(|s| {
                let st = SymbolState {
                    sync: DepthSync::new(*s, cfg.max_buffered_events),
                    top: BookTop::empty(*s),
                    last_event_ms: 0,
                    last_trade_id: 0,
                    last_ticker_id: 0,
                    notify_pending: false,
                    handed_over: false,
                    polling: false,
                    queued: false,
                };
                (*s, st)
            })
            .collect();
        status[group].symbols.store(symbols.len() as u64, Ordering::Relaxed);
        let poll_interval = cfg.fallback.poll_interval(total_symbols);
        Self {
            group,
            url,
            order: symbols,
            books,
            decoder: MarketDecoder::new(),
            active: None,
            next: None,
            connecting: None,
            handover_started: None,
            generation: 0,
            failed_attempts: 0,
            reconnect_at: Some(Instant::now()),
            snapshot_queue: VecDeque::new(),
            snapshot_retry_at: None,
            snapshots: FuturesUnordered::new(),
            polls: FuturesUnordered::new(),
            next_poll: None,
            poll_interval,
            fallback: FallbackState::new(Instant::now()),
            notify_pending: 0,
            closed: false,
            handed_over: false,
            cfg,
            deps,
            out,
            status,
        }
    }

    fn cell(&self) -> &StatusCell {
        &self.status[self.group]
    }

    async fn run(
        mut self,
        cancel: CancellationToken,
        mut restart_rx: watch::Receiver<u64>,
        mut fallback_rx: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(self.cfg.tick);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Every book needs its first snapshot; requests wait until a connection is up.
        for s in self.order.clone() {
            if let Some(st) = self.books.get_mut(&s) {
                if st.sync.request_initial() && self.cfg.streams.depth.is_some() {
                    self.queue_snapshot(s);
                }
            }
        }
        while !self.closed {
            let ev = tokio::select! {
                biased;
                _ = cancel.cancelled() => Ev::Cancel,
                r = restart_rx.changed() => match r { Ok(()) => Ev::Restart, Err(_) => Ev::Cancel },
                r = fallback_rx.changed() => match r {
                    Ok(()) => Ev::Fallback(*fallback_rx.borrow_and_update()),
                    Err(_) => Ev::Cancel,
                },
                m = read(&mut self.active) => Ev::Frame(false, m),
                m = read(&mut self.next) => Ev::Frame(true, m),
                (p, r) = connecting(&mut self.connecting) => Ev::Connected(p, Box::new(r)),
                Some((s, r)) = self.snapshots.next(), if !self.snapshots.is_empty() => Ev::Snapshot(s, r),
                Some((s, r)) = self.polls.next(), if !self.polls.is_empty() => Ev::Poll(s, r),
                _ = tick.tick() => Ev::Tick,
            };
            match ev {
                Ev::Cancel => break,
                Ev::Restart => {
                    self.hard_reconnect(ReconnectReason::Manual, true);
                }
                Ev::Fallback(on) => {
                    self.fallback.set_forced(on);
                    self.evaluate_fallback();
                }
                Ev::Frame(is_next, m) => {
                    self.on_frame(is_next, m).await;
                    if std::mem::take(&mut self.handed_over) {
                        // Run to completion: the engine shares this thread, so let it decide
                        // on this event before the next frame is taken from the socket buffer.
                        // Otherwise one socket read holding many frames (depth updates of
                        // several symbols arrive together) makes the first event wait for the
                        // decoding of all the others.
                        YieldOnce::default().await;
                    } else {
                        // One socket read can hold hundreds of frames, and reads alone spend
                        // the task's cooperative budget only once per read: charge every
                        // frame, so the task yields after at most a budget's worth (128).
                        tokio::task::coop::consume_budget().await;
                    }
                }
                Ev::Connected(p, r) => {
                    self.connecting = None;
                    self.on_connected(p, *r);
                }
                Ev::Snapshot(s, r) => self.on_snapshot(s, r),
                Ev::Poll(s, r) => self.on_poll(s, r),
                Ev::Tick => self.on_tick(),
            }
            if self.notify_pending > 0 {
                self.flush_pending();
            }
            self.pump_snapshots();
        }
        self.cell().connected.store(false, Ordering::Relaxed);
    }

    // ----- connections ------------------------------------------------------------------------

    fn start_connect(&mut self, purpose: Purpose) {
        if self.connecting.is_some() {
            return;
        }
        let url = self.url.clone();
        let timeout = self.cfg.connect_timeout;
        let fut: ConnectFuture = Box::pin(async move {
            let connect =
                tokio_tungstenite::connect_async_with_config(url.as_str(), Some(ws_config()), true);
            match tokio::time::timeout(timeout, connect).await {
                Ok(Ok((ws, _resp))) => Ok(ws),
                Ok(Err(e)) => Err(ConnectError::Ws(e)),
                Err(_) => Err(ConnectError::Timeout),
            }
        });
        self.connecting = Some((purpose, fut));
    }

    fn on_connected(&mut self, purpose: Purpose, r: Result<Ws, ConnectError>) {
        let ws = match r {
            Ok(ws) => ws,
            Err(e) => {
                tracing::warn!(group = self.group, error = %e, "market-data connect failed");
                self.failed_attempts = self.failed_attempts.saturating_add(1);
                match purpose {
                    Purpose::Primary => self.schedule_reconnect(),
                    // The old socket still works: try the handover again after a backoff.
                    Purpose::Handover => {
                        self.handover_started = None;
                        if self.active.is_none() {
                            // The old socket is gone too: the books can't be continued.
                            self.hard_reconnect(ReconnectReason::Disconnected, false);
                        } else {
                            // Retry the handover after a backoff, not on the next tick.
                            self.schedule_reconnect();
                        }
                    }
                }
                return;
            }
        };
        self.generation += 1;
        let now = Instant::now();
        let conn = Conn {
            ws,
            id: ConnectionId { group: self.group, generation: self.generation },
            opened: now,
            last_frame: now,
            got_frame: false,
        };
        if self.generation > 1 {
            bump(&self.cell().reconnects);
        }
        self.deps.observer.on_connected(conn.id);
        tracing::info!(
            group = self.group,
            generation = self.generation,
            ?purpose,
            "market-data connected"
        );
        self.cell().connected.store(true, Ordering::Relaxed);
        match purpose {
            Purpose::Handover => {
                // Also when the old socket has already closed (serverShutdown is followed by a
                // close): the books are kept and continued if the new stream is contiguous.
                self.next = Some(conn);
                self.handover_started = Some(now);
                for st in self.books.values_mut() {
                    st.handed_over = st.sync.phase() != Phase::Live;
                }
                self.try_complete_handover(false);
            }
            Purpose::Primary => {
                // Books were restarted when the old socket went away; snapshots can go now.
                self.active = Some(conn);
                self.handover_started = None;
                // Healthy until the heartbeat window passes silently.
                self.fallback.set_healthy(true, now);
            }
        }
    }

    fn schedule_reconnect(&mut self) {
        let exp = self.failed_attempts.min(16);
        let max = self.cfg.backoff_max.max(self.cfg.backoff_base);
        let raw = self.cfg.backoff_base.saturating_mul(1u32 << exp).min(max);
        // Full jitter in [raw/2, raw]: spreads reconnects of many bots/groups after an outage.
        let jitter = rand::thread_rng().gen_range(0.5..=1.0);
        let delay = raw.mul_f64(jitter);
        self.reconnect_at = Some(Instant::now() + delay);
    }

    /// Drops every socket, marks every book stale, reconnects (at once if `immediate`).
    fn hard_reconnect(&mut self, reason: ReconnectReason, immediate: bool) {
        if let Some(c) = self.active.take() {
            self.deps.observer.on_reconnect(c.id, reason);
        }
        self.next = None;
        self.connecting = None;
        self.handover_started = None;
        self.cell().connected.store(false, Ordering::Relaxed);
        self.fallback.set_healthy(false, Instant::now());
        let stale = match reason {
            ReconnectReason::Manual => StaleReason::Manual,
            _ => StaleReason::Reconnect,
        };
        self.restart_all(stale);
        if immediate {
            self.failed_attempts = 0;
            self.reconnect_at = Some(Instant::now());
        } else {
            self.schedule_reconnect();
        }
    }

    /// Opens a second socket to replace the active one without a gap.
    fn start_handover(&mut self, reason: ReconnectReason) {
        if self.next.is_some() || self.connecting.is_some() {
            return;
        }
        if let Some(c) = &self.active {
            self.deps.observer.on_reconnect(c.id, reason);
        }
        tracing::info!(
            group = self.group,
            reason = reason.as_str(),
            "market-data overlapping reconnect"
        );
        self.handover_started = Some(Instant::now());
        self.start_connect(Purpose::Handover);
    }

    /// Promotes the new socket once every synced book has been continued by it, or at timeout.
    fn try_complete_handover(&mut self, timed_out: bool) {
        if self.next.is_none() {
            return;
        }
        let all = self.books.values().all(|st| st.handed_over);
        if !all && !timed_out {
            return;
        }
        self.active = self.next.take();
        self.handover_started = None;
        self.fallback.set_healthy(true, Instant::now());
        let lagging: Vec<Symbol> = self
            .order
            .iter()
            .copied()
            .filter(|s| self.books.get(s).is_some_and(|st| !st.handed_over))
            .collect();
        for s in lagging {
            self.restart_symbol(s, StaleReason::Reconnect);
        }
    }

    async fn on_frame(
        &mut self,
        is_next: bool,
        m: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) {
        let msg = match m {
            Some(Ok(msg)) => msg,
            Some(Err(e)) => {
                tracing::warn!(group = self.group, error = %e, is_next, "market-data socket error");
                self.on_socket_gone(is_next);
                return;
            }
            None => {
                self.on_socket_gone(is_next);
                return;
            }
        };
        let ts_local = self.deps.clock.now();
        let now = Instant::now();
        let Some(conn) = (if is_next { self.next.as_mut() } else { self.active.as_mut() }) else {
            return;
        };
        conn.last_frame = now;
        if !conn.got_frame {
            conn.got_frame = true;
            self.failed_attempts = 0;
        }
        let conn_id = conn.id;
        let cell = &self.status[self.group];
        cell.last_frame.store(ts_local.0, Ordering::Relaxed);
        cell.heartbeat_missed.store(false, Ordering::Relaxed);
        self.fallback.set_healthy(true, now);
        match msg {
            Message::Text(t) => self.on_text(is_next, conn_id, t.as_bytes(), ts_local),
            Message::Binary(b) => self.on_text(is_next, conn_id, &b, ts_local),
            Message::Ping(_) => {
                // tungstenite queued the pong while reading; push it out now.
                let conn = if is_next { self.next.as_mut() } else { self.active.as_mut() };
                if let Some(c) = conn {
                    if let Err(e) = c.ws.flush().await {
                        tracing::warn!(group = self.group, error = %e, "pong flush failed");
                    }
                }
            }
            Message::Close(_) => self.on_socket_gone(is_next),
            Message::Pong(_) | Message::Frame(_) => {}
        }
    }

    fn on_socket_gone(&mut self, is_next: bool) {
        if is_next {
            self.next = None;
            self.handover_started = None;
            if self.active.is_none() {
                self.hard_reconnect(ReconnectReason::Disconnected, false);
            }
            // Else keep the old one; the age/shutdown check retries later.
            return;
        }
        if self.next.is_some() {
            // The old socket went away mid-handover: promote the new one now.
            self.try_complete_handover(true);
            return;
        }
        if matches!(self.connecting, Some((Purpose::Handover, _))) {
            // serverShutdown, then close: the replacement is on its way. Keep the books (they are
            // exact as of their update id) and let the new socket continue them or resync them.
            self.active = None;
            self.cell().connected.store(false, Ordering::Relaxed);
            return;
        }
        self.hard_reconnect(ReconnectReason::Disconnected, false);
    }

    fn latency(&self, ts_local: UnixNanos, event_ms: u64) -> Option<Duration> {
        let exch_now = self.deps.time_offset.to_exchange(ts_local);
        let e = UnixNanos::from_millis(event_ms);
        let d = exch_now.signed_diff(e);
        (d >= 0).then(|| Duration::from_nanos(d.unsigned_abs()))
    }

    fn on_text(&mut self, is_next: bool, conn: ConnectionId, bytes: &[u8], ts_local: UnixNanos) {
        let decoded = match self.decoder.decode(bytes) {
            Ok(d) => d,
            Err(e) => {
                bump(&self.status[self.group].malformed);
                self.deps.observer.on_malformed(conn);
                tracing::debug!(group = self.group, error = %e, "malformed market frame skipped");
                return;
            }
        };
        let kind = decoded.kind();
        let (symbol, latency) = match &decoded {
            Decoded::Depth(h) => (Some(h.symbol), self.latency(ts_local, h.event_time)),
            Decoded::Trade(t) => (Some(t.symbol), self.latency(ts_local, t.event_time)),
            Decoded::AggTrade(t) => (Some(t.symbol), self.latency(ts_local, t.event_time)),
            Decoded::BookTicker(t) => (Some(t.symbol), None),
            _ => (None, None),
        };
        self.deps.observer.on_message(&MessageInfo {
            connection: conn,
            kind,
            symbol,
            ts_local,
            latency,
        });
        match decoded {
            Decoded::Depth(h) => {
                let Some(st) = self.books.get_mut(&h.symbol) else { return };
                let d = DepthDelta {
                    first_update_id: h.first_update_id,
                    final_update_id: h.final_update_id,
                    bids: self.decoder.bids(),
                    asks: self.decoder.asks(),
                };
                if is_next {
                    // Handover: only continue a live book; never treat the newcomer's lead as a
                    // gap (the old socket will catch up).
                    if st.sync.phase() != Phase::Live {
                        return;
                    }
                    if d.first_update_id > st.sync.book().update_id().saturating_add(1) {
                        return;
                    }
                    st.handed_over = true;
                }
                let outcome = st.sync.on_delta(&d);
                match outcome {
                    DeltaOutcome::Applied => {
                        st.last_event_ms = h.event_time;
                        self.publish_book(h.symbol, ts_local);
                    }
                    DeltaOutcome::Resync { reason, request_snapshot } => {
                        self.after_restart(h.symbol, reason, request_snapshot, ts_local);
                    }
                    DeltaOutcome::Buffered | DeltaOutcome::Ignored => {}
                }
                if is_next {
                    self.try_complete_handover(false);
                }
            }
            Decoded::Trade(t) => {
                let Some(st) = self.books.get_mut(&t.symbol) else { return };
                if t.trade_id <= st.last_trade_id {
                    return; // handover overlap duplicate
                }
                st.last_trade_id = t.trade_id;
                let ev = Event::Trade(PublicTrade {
                    symbol: t.symbol,
                    trade_id: TradeId(t.trade_id),
                    price: t.price,
                    qty: t.qty,
                    aggressor: if t.buyer_is_maker { Side::Sell } else { Side::Buy },
                    ts_exchange: UnixNanos::from_millis(t.event_time),
                    ts_local,
                });
                match self.out.try_send(ev) {
                    Ok(()) => self.handed_over = true,
                    Err(e) => self.on_send_error(t.symbol, StreamKind::Trade, e),
                }
            }
            Decoded::BookTicker(t) => {
                if self.cfg.streams.depth.is_some() {
                    return;
                }
                let Some(st) = self.books.get_mut(&t.symbol) else { return };
                if t.update_id <= st.last_ticker_id {
                    return;
                }
                st.last_ticker_id = t.update_id;
                let mut top = BookTop::from_levels(
                    t.symbol,
                    BookState::Synced,
                    &[Level::new(t.bid_price, t.bid_qty)],
                    &[Level::new(t.ask_price, t.ask_qty)],
                );
                top.update_id = t.update_id;
                top.ts_local = ts_local;
                match self.out.try_send(Event::Book(top)) {
                    Ok(()) => self.handed_over = true,
                    Err(e) => self.on_send_error(t.symbol, StreamKind::BookTicker, e),
                }
            }
            Decoded::ServerShutdown { .. } => {
                if !is_next {
                    self.start_handover(ReconnectReason::ServerShutdown);
                }
            }
            Decoded::ControlError { code, msg } => {
                tracing::warn!(group = self.group, code, msg, "market-stream control error");
            }
            Decoded::AggTrade(_)
            | Decoded::PartialDepth { .. }
            | Decoded::ControlResult { .. }
            | Decoded::Other { .. } => {}
        }
    }

    // ----- books and output ---------------------------------------------------------------------

    fn on_send_error(
        &mut self,
        symbol: Symbol,
        kind: StreamKind,
        e: mpsc::error::TrySendError<Event>,
    ) {
        match e {
            mpsc::error::TrySendError::Closed(_) => self.closed = true,
            mpsc::error::TrySendError::Full(_) => {
                bump(&self.status[self.group].overflows);
                self.deps.observer.on_overflow(symbol, kind);
            }
        }
    }

    /// Sends the symbol's current view; on a full channel applies the overflow policy.
    fn publish_book(&mut self, symbol: Symbol, ts_local: UnixNanos) {
        let Some(st) = self.books.get_mut(&symbol) else { return };
        st.sync.book().top_into(&mut st.top);
        st.top.ts_exchange = UnixNanos::from_millis(st.last_event_ms);
        st.top.ts_local = ts_local;
        if st.notify_pending && st.top.state == BookState::Synced {
            // A stale notice is still owed; it goes first (flush_pending), this view waits.
            return;
        }
        match self.out.try_send(Event::Book(st.top)) {
            Ok(()) => {
                self.handed_over = true;
                if st.notify_pending {
                    st.notify_pending = false;
                    self.notify_pending = self.notify_pending.saturating_sub(1);
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.closed = true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                bump(&self.status[self.group].overflows);
                self.deps.observer.on_overflow(symbol, StreamKind::Depth);
                let was_synced = st.top.state == BookState::Synced;
                if !st.notify_pending {
                    st.notify_pending = true;
                    self.notify_pending += 1;
                }
                if was_synced {
                    // Policy: drop the delta, mark stale, resnapshot.
                    let request = st.sync.restart(StaleReason::ChannelOverflow);
                    bump(&self.status[self.group].resyncs);
                    self.deps.observer.on_resync(symbol, StaleReason::ChannelOverflow);
                    if request {
                        self.queue_snapshot(symbol);
                    }
                }
            }
        }
    }

    /// Retries owed stale notices.
    fn flush_pending(&mut self) {
        let now = self.deps.clock.now();
        for s in self.order.clone() {
            let owed = self.books.get(&s).is_some_and(|st| st.notify_pending);
            if !owed {
                continue;
            }
            let Some(st) = self.books.get_mut(&s) else { continue };
            st.sync.book().top_into(&mut st.top);
            st.top.ts_local = now;
            match self.out.try_send(Event::Book(st.top)) {
                Ok(()) => {
                    st.notify_pending = false;
                    self.notify_pending = self.notify_pending.saturating_sub(1);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.closed = true;
                    return;
                }
                Err(mpsc::error::TrySendError::Full(_)) => return,
            }
        }
    }

    fn after_restart(
        &mut self,
        symbol: Symbol,
        reason: StaleReason,
        request: bool,
        ts_local: UnixNanos,
    ) {
        bump(&self.status[self.group].resyncs);
        self.deps.observer.on_resync(symbol, reason);
        tracing::info!(group = self.group, %symbol, reason = reason.as_str(), "book stale, resyncing");
        if request {
            self.queue_snapshot(symbol);
        }
        self.publish_book(symbol, ts_local);
    }

    fn restart_symbol(&mut self, symbol: Symbol, reason: StaleReason) {
        let Some(st) = self.books.get_mut(&symbol) else { return };
        if self.cfg.streams.depth.is_none() {
            return;
        }
        let was_synced = st.sync.book().is_synced();
        let request = st.sync.restart(reason);
        if was_synced || request {
            let now = self.deps.clock.now();
            self.after_restart(symbol, reason, request, now);
        }
    }

    fn restart_all(&mut self, reason: StaleReason) {
        if self.fallback.mode() == MarketDataMode::RestFallback {
            return; // books come from REST; the socket doesn't matter to them
        }
        for s in self.order.clone() {
            self.restart_symbol(s, reason);
        }
    }

    fn queue_snapshot(&mut self, symbol: Symbol) {
        if let Some(st) = self.books.get_mut(&symbol) {
            if !st.queued {
                st.queued = true;
                self.snapshot_queue.push_back(symbol);
            }
        }
    }

    /// Starts queued snapshot requests while a connection is up (deltas are being buffered) and
    /// under the concurrency cap.
    fn pump_snapshots(&mut self) {
        if self.active.is_none()
            || self.fallback.mode() == MarketDataMode::RestFallback
            || self.snapshot_retry_at.is_some_and(|t| Instant::now() < t)
        {
            return;
        }
        self.snapshot_retry_at = None;
        while self.snapshots.len() < self.cfg.max_concurrent_snapshots.max(1) {
            let Some(symbol) = self.snapshot_queue.pop_front() else { break };
            if let Some(st) = self.books.get_mut(&symbol) {
                st.queued = false;
            }
            let fut = self.deps.snapshots.depth_snapshot(symbol, self.cfg.snapshot_limit);
            self.snapshots.push(Box::pin(async move { (symbol, fut.await) }));
        }
    }

    fn on_snapshot(&mut self, symbol: Symbol, r: Result<PartialDepth, SnapshotError>) {
        let now = self.deps.clock.now();
        let Some(st) = self.books.get_mut(&symbol) else { return };
        let snap = match r {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(group = self.group, %symbol, error = %e, "depth snapshot failed");
                self.deps.observer.on_snapshot_error(symbol);
                if st.sync.snapshot_failed() {
                    self.queue_snapshot(symbol);
                    self.snapshot_retry_at = Some(Instant::now() + self.cfg.snapshot_retry);
                }
                return;
            }
        };
        if self.active.is_none() {
            // Taken while no socket feeds the book: it would be published synced yet could
            // never be continued. Ask again once a connection buffers deltas.
            if st.sync.snapshot_failed() {
                self.queue_snapshot(symbol);
            }
            return;
        }
        match st.sync.on_snapshot(snap.last_update_id, &snap.bids, &snap.asks) {
            SnapshotOutcome::Synced { .. } => {
                self.deps.observer.on_synced(symbol);
                self.publish_book(symbol, now);
            }
            SnapshotOutcome::TooOld => self.queue_snapshot(symbol),
            SnapshotOutcome::Resync(reason) => self.after_restart(symbol, reason, true, now),
            SnapshotOutcome::Unexpected => {}
        }
    }

    // ----- housekeeping and fallback --------------------------------------------------------------

    fn on_tick(&mut self) {
        let now = Instant::now();
        // Heartbeat of the active socket.
        if let Some(c) = &self.active {
            let silent = now.saturating_duration_since(c.last_frame);
            if silent >= self.cfg.heartbeat_timeout {
                let id = c.id;
                tracing::warn!(group = self.group, ?silent, "WS_HEARTBEAT_MISSED");
                let cell = &self.status[self.group];
                cell.heartbeat_missed.store(true, Ordering::Relaxed);
                bump(&cell.heartbeat_misses);
                self.deps.observer.on_heartbeat_missed(id, silent);
                self.hard_reconnect(ReconnectReason::HeartbeatMissed, false);
            } else if now.saturating_duration_since(c.opened) >= self.cfg.max_connection_age
                && self.reconnect_at.is_none_or(|t| now >= t)
            {
                self.reconnect_at = None;
                self.start_handover(ReconnectReason::MaxAge);
            }
        }
        // A silent replacement socket doesn't block forever.
        if let Some(t) = self.handover_started {
            if now.saturating_duration_since(t) >= self.cfg.handover_timeout {
                if self.next.is_some() {
                    self.try_complete_handover(true);
                } else if self.active.is_none() {
                    // Old socket closed, replacement still not up: give the books up.
                    self.hard_reconnect(ReconnectReason::Disconnected, false);
                } else {
                    self.handover_started = None;
                }
            }
        }
        // Reconnect when the backoff has elapsed.
        if self.active.is_none() && self.next.is_none() && self.connecting.is_none() {
            if let Some(t) = self.reconnect_at {
                if now >= t {
                    self.reconnect_at = None;
                    self.start_connect(Purpose::Primary);
                }
            }
        }
        self.evaluate_fallback();
        // Fallback polls.
        if self.fallback.mode() == MarketDataMode::RestFallback
            && self.next_poll.is_none_or(|t| now >= t)
        {
            self.next_poll = Some(now + self.poll_interval);
            self.start_polls();
        }
    }

    fn evaluate_fallback(&mut self) {
        let now = Instant::now();
        match self.fallback.evaluate(&self.cfg.fallback, now) {
            FallbackDecision::Stay => {}
            FallbackDecision::Enter => {
                tracing::warn!(group = self.group, "market data: switching to REST fallback");
                self.cell().mode.store(1, Ordering::Relaxed);
                self.deps.observer.on_mode_change(self.group, MarketDataMode::RestFallback);
                self.snapshot_queue.clear();
                let ts = self.deps.clock.now();
                for s in self.order.clone() {
                    if let Some(st) = self.books.get_mut(&s) {
                        st.queued = false;
                        st.sync.enter_fallback();
                    }
                    self.publish_book(s, ts);
                }
                self.next_poll = Some(now);
                self.start_polls();
                self.next_poll = Some(now + self.poll_interval);
            }
            FallbackDecision::Exit => {
                tracing::info!(group = self.group, "market data: back to WebSocket");
                self.cell().mode.store(0, Ordering::Relaxed);
                self.deps.observer.on_mode_change(self.group, MarketDataMode::WebSocket);
                self.next_poll = None;
                for s in self.order.clone() {
                    if let Some(st) = self.books.get_mut(&s) {
                        st.polling = false;
                    }
                    self.restart_symbol(s, StaleReason::FallbackExit);
                }
            }
        }
    }

    fn start_polls(&mut self) {
        let limit = self.cfg.fallback.depth_limit;
        for s in self.order.clone() {
            let Some(st) = self.books.get_mut(&s) else { continue };
            if st.polling {
                continue;
            }
            st.polling = true;
            let fut = self.deps.snapshots.depth_snapshot(s, limit);
            self.polls.push(Box::pin(async move { (s, fut.await) }));
        }
    }

    fn on_poll(&mut self, symbol: Symbol, r: Result<PartialDepth, SnapshotError>) {
        let now = self.deps.clock.now();
        let Some(st) = self.books.get_mut(&symbol) else { return };
        st.polling = false;
        match r {
            Ok(snap) => {
                if st.sync.apply_rest_poll(snap.last_update_id, &snap.bids, &snap.asks) {
                    self.publish_book(symbol, now);
                }
            }
            Err(e) => {
                tracing::warn!(group = self.group, %symbol, error = %e, "fallback poll failed");
                self.deps.observer.on_snapshot_error(symbol);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::new(s).unwrap()
    }

    #[test]
    fn groups_split_by_stream_budget() {
        let mut cfg = MarketDataConfig::new(
            "ws://127.0.0.1:9/".parse().unwrap(),
            ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT"].map(sym).to_vec(),
        );
        // TC0: 2 streams per symbol, 1024 per connection: one group.
        assert_eq!(cfg.groups().unwrap().len(), 1);
        // TC1: 4 streams per connection -> 2 symbols per connection -> 3 groups.
        cfg.max_streams_per_connection = 4;
        let g = cfg.groups().unwrap();
        assert_eq!(g.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1]);
        // TC2: too small / too big.
        cfg.max_streams_per_connection = 1;
        assert!(matches!(cfg.groups(), Err(MarketDataError::StreamsPerConnection(1))));
        cfg.max_streams_per_connection = 1025;
        assert!(cfg.groups().is_err());
        // TC3: nothing selected.
        cfg.max_streams_per_connection = 10;
        cfg.streams = StreamSelection { depth: None, trade: false, book_ticker: false };
        assert!(matches!(cfg.groups(), Err(MarketDataError::NoStreams)));
    }

    #[test]
    fn combined_stream_url() {
        // TC0..TC2: bare host, `/ws` (testnet style) and `/stream` bases all end in `/stream`.
        for base in
            ["ws://127.0.0.1:9", "wss://stream.testnet.binance.vision/ws", "ws://h:1/stream"]
        {
            let cfg = MarketDataConfig::new(base.parse().unwrap(), vec![sym("BTCUSDT")]);
            let url = cfg.stream_url(&[sym("BTCUSDT"), sym("ETHUSDT")]);
            assert_eq!(url.path(), "/stream", "{base}");
            assert_eq!(
                url.query(),
                Some("streams=btcusdt@depth@100ms/btcusdt@trade/ethusdt@depth@100ms/ethusdt@trade")
            );
        }
    }
}
