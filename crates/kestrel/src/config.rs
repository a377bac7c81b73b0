//! Configuration: one TOML file → [`RawConfig`] (serde, unknown fields rejected) → validated
//! [`Config`] (ripgrep's `LowArgs` → `HiArgs`; STYLE.md 2.7).
//!
//! The raw layer only knows TOML shapes: every price, quantity and amount is a decimal *string*
//! (TOML floats are never accepted on a money path) and every duration a number with its unit in
//! the field name. Validation turns those into `Price`/`Qty`/`Notional`, typed `Duration`s,
//! parsed URLs and socket addresses, and reports the first problem as one line naming the field
//! path and the reason:
//!
//! ```text
//! config error: risk.funds: "50O" is not a decimal number
//! ```
//!
//! Defaults exist only where an operator need not choose (timeouts, backoff, the admin address).
//! What an operator must decide has no default: the environment, the symbols and their
//! strategies, the funds cap, the drawdown limit, each symbol's maximum position and the journal
//! path. Secrets never come from this file (see [`crate::secrets`]); a file that tries is
//! rejected with a message naming the environment variable to use instead.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kestrel_binance::endpoints::Endpoints;
use kestrel_model::{Asset, Notional, ParseNumError, Qty, Symbol, TOP_LEVELS};
use serde::Deserialize;
use url::Url;

use crate::journal::ClientIdPrefix;
use crate::secrets::{
    self, ApiCredentials, EnvSource, LoadedSecret, SecretError, ADMIN_TOKEN_ENV, API_KEY_ENV,
    API_SECRET_ENV,
};

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a config file was refused. Every variant displays as one self-contained line starting
/// with `config error:` that names the field (or file position) and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config error: cannot read {}: {source}", path.display())]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config error: {}:{line}:{column}: {message}", path.display())]
    Syntax {
        /// The config file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// The parser's message.
        message: String,
        /// The parser's error (its `Display` is a multi-line snippet, so it is not repeated).
        #[source]
        source: Box<toml::de::Error>,
    },
    /// Valid TOML, but a field is missing, unknown or of the wrong type.
    #[error("config error: {field}: {message}{}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Schema {
        /// Dotted path of the field (`risk.funds`, `symbols[0].strategy`).
        field: String,
        /// 1-based line, when the parser knows it.
        line: Option<usize>,
        /// What is wrong.
        message: String,
        /// The parser's error.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A field has the right type but an unacceptable value.
    #[error("config error: {field}: {reason}")]
    Invalid {
        /// Dotted path of the field.
        field: String,
        /// What is wrong and, where useful, what is accepted.
        reason: String,
    },
    /// The file contains a secret (API key, secret, token), which is never accepted in TOML.
    #[error(
        "config error: {field}: secrets are not accepted in the config file; set the environment \
         variable {env} (or {env}_FILE with a path to a file holding it) instead"
    )]
    SecretInFile {
        /// Dotted path of the offending key.
        field: String,
        /// The environment variable to use instead.
        env: &'static str,
    },
    /// A secret named by the environment or a `*_file` field could not be loaded.
    #[error("config error: {field}: {source}")]
    Secret {
        /// What the secret is for (`exchange.api_key_file`, `admin.token_file`).
        field: &'static str,
        /// The underlying problem.
        #[source]
        source: SecretError,
    },
}

impl ConfigError {
    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid { field: field.into(), reason: reason.into() }
    }

    /// The dotted field path the error is about, when it is about one field.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Schema { field, .. }
            | ConfigError::Invalid { field, .. }
            | ConfigError::SecretInFile { field, .. } => Some(field),
            ConfigError::Secret { field, .. } => Some(field),
            ConfigError::Read { .. } | ConfigError::Syntax { .. } => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw layer: TOML shapes only
// ---------------------------------------------------------------------------------------------

/// The config file as written: TOML shapes, decimal strings, optional fields where a default
/// exists. Only [`Config::from_toml`] builds one; validate it into a [`Config`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    env: ExchangeEnv,
    #[serde(default)]
    endpoints: RawEndpoints,
    #[serde(default)]
    exchange: RawExchange,
    symbols: Vec<RawSymbol>,
    risk: RawRisk,
    #[serde(default)]
    market_data: RawMarketData,
    #[serde(default)]
    execution: RawExecution,
    #[serde(default)]
    reconcile: RawReconcile,
    journal: RawJournal,
    #[serde(default)]
    admin: RawAdmin,
    #[serde(default)]
    shutdown: RawShutdown,
    #[serde(default)]
    task_budgets: RawTaskBudgets,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoints {
    rest_url: Option<String>,
    ws_stream_url: Option<String>,
    ws_api_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExchange {
    api_key_file: Option<PathBuf>,
    api_secret_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSymbol {
    symbol: String,
    max_position: String,
    max_open_orders: Option<u32>,
    /// Kept as a table and deserialized by its `kind` during validation: serde's internally
    /// tagged enums buffer their content and lose the field path of type errors.
    strategy: toml::Table,
}

/// The strategy kinds (`[symbols.strategy] kind = ...`).
const STRATEGY_KINDS: &str = "market_maker, imbalance_taker or passive";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPassive {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMarketMaker {
    half_spread_bps: u32,
    size: String,
    requote_bps: u32,
    #[serde(default)]
    skew_bps_at_max: u32,
    min_requote_interval_ms: Option<u64>,
    stale_after_ms: Option<u64>,
    post_only: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImbalanceTaker {
    levels: u32,
    threshold: String,
    #[serde(default)]
    micro_edge_bps: u32,
    cooldown_ms: u64,
    size: String,
    order_style: Option<TakerOrderStyleName>,
    slippage_bps: Option<u32>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TakerOrderStyleName {
    Ioc,
    Market,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRisk {
    funds: String,
    quote_asset: Option<String>,
    max_drawdown: String,
    max_open_orders: Option<u32>,
    orders_per_sec: Option<u32>,
    order_burst: Option<u32>,
    price_band_bps: Option<u32>,
    trade_on_fallback: Option<bool>,
    max_pending_orders: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMarketData {
    depth_speed: Option<DepthSpeed>,
    heartbeat_window_ms: Option<u64>,
    fallback_after_secs: Option<u64>,
    fallback_recover_secs: Option<u64>,
    reconnect_backoff_base_ms: Option<u64>,
    reconnect_backoff_max_ms: Option<u64>,
    max_connection_age_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExecution {
    order_transport: Option<OrderTransport>,
    recv_window_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
    rate_limit_share_pct: Option<u32>,
    client_id_prefix: Option<String>,
    clock_check_secs: Option<u64>,
    max_in_flight: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReconcile {
    unknown_orders: Option<UnknownOrderPolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJournal {
    path: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: Option<String>,
    token_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShutdown {
    cancel_all_on_exit: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTaskBudgets {
    md_us: Option<u64>,
    engine_us: Option<u64>,
    exec_us: Option<u64>,
    user_stream_us: Option<u64>,
    journal_us: Option<u64>,
}

// ---------------------------------------------------------------------------------------------
// Validated layer
// ---------------------------------------------------------------------------------------------

/// Which Binance the bot talks to; picks the endpoint presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeEnv {
    /// Real money: `api.binance.com`.
    Mainnet,
    /// Binance Spot testnet: virtual funds, reset about monthly.
    Testnet,
    /// The embedded simulator (`kestrel sim`) on loopback.
    Sim,
}

impl ExchangeEnv {
    /// The config spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ExchangeEnv::Mainnet => "mainnet",
            ExchangeEnv::Testnet => "testnet",
            ExchangeEnv::Sim => "sim",
        }
    }

    /// Preset endpoints: mainnet and testnet are `kestrel-binance`'s presets (SPEC.md §1); the
    /// sim preset is `kestrel sim`'s default listen address ([`SIM_PRESET`]). Override
    /// `endpoints.*` per field when the exchange or the simulator lives elsewhere.
    pub fn preset(self) -> Endpoints {
        match self {
            ExchangeEnv::Mainnet => Endpoints::mainnet(),
            ExchangeEnv::Testnet => Endpoints::testnet(),
            ExchangeEnv::Sim => {
                let parse =
                    |s: &str| Url::parse(s).expect("invariant: SIM_PRESET URLs are valid literals");
                Endpoints::from_base(parse(SIM_PRESET.0), parse(SIM_PRESET.1), parse(SIM_PRESET.2))
            }
        }
    }
}

/// REST, stream and WebSocket API URLs of the simulator when `kestrel sim` runs with its
/// default listen address.
pub const SIM_PRESET: (&str, &str, &str) =
    ("http://127.0.0.1:8765", "ws://127.0.0.1:8765", "ws://127.0.0.1:8765/ws-api/v3");

/// Depth diff stream speed (`<sym>@depth` vs `<sym>@depth@100ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum DepthSpeed {
    /// `@depth@100ms`: lower latency, more messages.
    #[serde(rename = "100ms")]
    Ms100,
    /// `@depth` (1000 ms): fewer messages.
    #[serde(rename = "1000ms")]
    Ms1000,
}

impl DepthSpeed {
    /// The config spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            DepthSpeed::Ms100 => "100ms",
            DepthSpeed::Ms1000 => "1000ms",
        }
    }
}

/// How orders are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum OrderTransport {
    /// Signed REST requests (`POST /api/v3/order`).
    #[serde(rename = "rest")]
    Rest,
    /// The WebSocket API session (`order.place`): one persistent connection, lower latency.
    #[serde(rename = "ws-api")]
    WsApi,
}

impl OrderTransport {
    /// The config spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderTransport::Rest => "rest",
            OrderTransport::WsApi => "ws-api",
        }
    }
}

/// What startup reconciliation does with an open order that carries our client-id prefix but
/// that the journal does not know (e.g. the journal was lost). Orders without our prefix are
/// never touched (scenario S09).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownOrderPolicy {
    /// Cancel it: the safe default, since its origin cannot be accounted for.
    Cancel,
    /// Journal it and manage it like our own.
    Adopt,
}

impl UnknownOrderPolicy {
    /// The config spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            UnknownOrderPolicy::Cancel => "cancel",
            UnknownOrderPolicy::Adopt => "adopt",
        }
    }
}

/// Inventory-skewed market maker: quotes both sides around mid and leans away from inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketMakerParams {
    /// Distance of each quote from mid, in basis points of mid.
    pub half_spread_bps: u32,
    /// Quantity of each quote (base units).
    pub size: Qty,
    /// Requote when mid moves more than this many bps from the mid the quotes were computed at
    /// (saves order-rate budget).
    pub requote_bps: u32,
    /// Shift of both quotes away from the inventory at a full `max_position`, in bps of mid;
    /// linear in between (0 = no skew).
    pub skew_bps_at_max: u32,
    /// Minimum time between two placements of the same side.
    pub min_requote_interval: Duration,
    /// A book not updated for this long counts as stale: quotes are pulled.
    pub stale_after: Duration,
    /// Quote post-only (`LIMIT_MAKER`) instead of `LIMIT GTC`.
    pub post_only: bool,
}

/// How the imbalance taker sends its orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakerOrderStyle {
    /// `LIMIT IOC` at the opposite best moved `slippage_bps` against us: the price bounds the fill.
    Ioc {
        /// How far beyond the opposite best the limit may go, in bps of that price.
        slippage_bps: u32,
    },
    /// `MARKET` by base quantity: certain fill, no price bound.
    Market,
}

/// Order-book-imbalance taker: crosses the spread when one side of the top levels dominates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImbalanceTakerParams {
    /// How many top levels per side enter the imbalance (1..=10).
    pub levels: usize,
    /// Imbalance `(bid-ask)/(bid+ask)` at or beyond which it trades, in basis points of 1
    /// (TOML `threshold = "0.3"` → 3000).
    pub threshold_bps: u32,
    /// The microprice must also sit this far from mid in the signal's direction (bps of mid).
    pub micro_edge_bps: u32,
    /// Minimum time between two orders on the symbol.
    pub cooldown: Duration,
    /// Quantity of each order (base units).
    pub size: Qty,
    /// IOC limit (default) or market.
    pub style: TakerOrderStyle,
}

/// The strategy a symbol runs, with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyConfig {
    /// See [`MarketMakerParams`].
    MarketMaker(MarketMakerParams),
    /// See [`ImbalanceTakerParams`].
    ImbalanceTaker(ImbalanceTakerParams),
    /// Track book, orders and position but never trade (e.g. winding down adopted orders).
    Passive,
}

impl StrategyConfig {
    /// The config spelling of the strategy kind.
    pub const fn kind(&self) -> &'static str {
        match self {
            StrategyConfig::MarketMaker(_) => "market_maker",
            StrategyConfig::ImbalanceTaker(_) => "imbalance_taker",
            StrategyConfig::Passive => "passive",
        }
    }
}

/// One traded symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolConfig {
    /// Exchange symbol (`BTCUSDT`).
    pub symbol: Symbol,
    /// Largest absolute position in base units that risk allows on this symbol.
    pub max_position: Qty,
    /// Open orders allowed on this symbol, in-flight and `Unknown` ones included
    /// (`risk.max_open_orders` unless overridden per symbol).
    pub max_open_orders: u32,
    /// What trades it.
    pub strategy: StrategyConfig,
}

/// Risk limits (capability M5). A breach is a rejection value, never an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskConfig {
    /// Most quote currency the bot may commit in total (open buy orders plus inventory at cost).
    pub funds: Notional,
    /// The asset `funds` and `max_drawdown` are counted in.
    pub quote_asset: Asset,
    /// Loss from the equity peak, in quote units, that trips the kill switch.
    pub max_drawdown: Notional,
    /// New orders per second across all symbols (token refill rate).
    pub orders_per_sec: u32,
    /// How many orders may go out back to back (token bucket size).
    pub order_burst: u32,
    /// A limit price further than this from mid is refused.
    pub price_band_bps: u32,
    /// Whether strategies may trade while market data comes from REST fallback polling (slower,
    /// coarser books); off by default.
    pub trade_on_fallback: bool,
    /// Most new orders, across all symbols, decided but not yet answered by the exchange; the
    /// next one is refused (`kestrel_risk_rejections_total{reason="max_pending_orders"}`)
    /// instead of queueing behind a slow journal or exchange and going out on stale prices.
    /// Cancels are never limited. Default 32 (twice the default `execution.max_in_flight`).
    pub max_pending_orders: u32,
}

/// Market-data connections (capabilities M1, M2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketDataConfig {
    /// Depth diff stream speed.
    pub depth_speed: DepthSpeed,
    /// No message or pong for this long raises `WS_HEARTBEAT_MISSED` and reconnects.
    pub heartbeat_window: Duration,
    /// The WebSocket unhealthy for this long switches market data to REST polling.
    pub fallback_after: Duration,
    /// How long the WebSocket must be healthy again before an automatic fallback switches back
    /// (so a flapping connection does not bounce the books between sources).
    pub fallback_recover: Duration,
    /// First reconnect delay (jittered, doubled per failure).
    pub reconnect_backoff_base: Duration,
    /// Cap of the reconnect delay.
    pub reconnect_backoff_max: Duration,
    /// Reconnect proactively after this long, before Binance's 24 h limit.
    pub max_connection_age: Duration,
}

/// Order execution (capability M4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutionConfig {
    /// REST or WebSocket API for orders.
    pub order_transport: OrderTransport,
    /// `recvWindow` sent with signed requests.
    pub recv_window: Duration,
    /// A request without an answer after this long is `Unknown` (and reconciled by query).
    pub request_timeout: Duration,
    /// Share of Binance's request-weight and order limits this bot may use, in percent, so
    /// several bots can share one IP or account (scenario S09).
    pub rate_limit_share_pct: u8,
    /// Prefix of every client order id; reconciliation touches only orders carrying it.
    pub client_id_prefix: ClientIdPrefix,
    /// How often the exchange clock offset is re-measured (raises/clears `CLOCK_SKEW`).
    pub clock_check_interval: Duration,
    /// Order requests the execution gateway keeps outstanding at once (≥ 1); beyond it the
    /// engine's action sends wait. Higher values absorb bursts of requotes at the cost of
    /// more orders in flight when the connection fails.
    pub max_in_flight: usize,
}

/// Startup reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileConfig {
    /// What to do with our-prefix orders the journal does not know.
    pub unknown_orders: UnknownOrderPolicy,
}

/// The durable journal (capability M6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// SQLite file (created if missing; `-wal`/`-shm` files sit beside it). Relative paths are
    /// relative to the working directory.
    pub path: PathBuf,
}

/// Admin HTTP API and `/metrics` (capability M9).
#[derive(Debug)]
pub struct AdminConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Bearer token; required when `listen` is not a loopback address.
    pub token: Option<LoadedSecret>,
}

/// What happens on a clean shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownConfig {
    /// Cancel every open order of ours before exiting.
    pub cancel_all_on_exit: bool,
}

/// Per-task time budgets for one unit of work; exceeding one raises `ASYNC_TASK_OVERRUN`.
///
/// A budget covers the task's own work per event. Waiting is not work: the network, a full
/// channel downstream (backpressure) and the journal's durable write are excluded from the
/// task budgets. The journal write (an fsync, milliseconds on most disks) is measured on its
/// own, as `task_latency_seconds{task="journal"}` with the `journal` budget, so a slow disk is
/// named as such instead of making every order look like an overrun of the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskBudgets {
    /// Market-data task: one frame, read → decode → depth sync → send.
    pub md: Duration,
    /// Engine: one event → actions.
    pub engine: Duration,
    /// Execution gateway: own work per action (request building, bookkeeping), excluding
    /// the journal write and the network wait.
    pub exec: Duration,
    /// User-stream task: own work per execution report, excluding the journal write and the
    /// wait for room in the engine's inbox. A resubscription's resync (REST round trips) is
    /// not a unit of work and is not measured against it.
    pub user_stream: Duration,
    /// One journal transaction, durable write (fsync) included.
    pub journal: Duration,
}

/// The validated configuration. Built only by [`Config::load`] / [`Config::from_toml`].
#[derive(Debug)]
pub struct Config {
    /// The file it was read from.
    pub source: PathBuf,
    /// Which exchange.
    pub env: ExchangeEnv,
    /// Base URLs (preset for `env`, overridden per field).
    pub endpoints: Endpoints,
    /// API credentials from the environment or files; `None` when not set (allowed for `sim`
    /// and for `check-config`; `run` against mainnet/testnet refuses to start without them).
    pub credentials: Option<ApiCredentials>,
    /// Traded symbols, in file order, no duplicates, at least one.
    pub symbols: Vec<SymbolConfig>,
    /// Risk limits.
    pub risk: RiskConfig,
    /// Market-data connections.
    pub market_data: MarketDataConfig,
    /// Order execution.
    pub execution: ExecutionConfig,
    /// Startup reconciliation.
    pub reconcile: ReconcileConfig,
    /// The journal.
    pub journal: JournalConfig,
    /// Admin API.
    pub admin: AdminConfig,
    /// Shutdown behaviour.
    pub shutdown: ShutdownConfig,
    /// Time budgets per task.
    pub task_budgets: TaskBudgets,
}

// Defaults, each with its reason.

/// Admin API default: loopback only, so no token is needed.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9184";
/// Binance pings every 20 s and depth@100ms data arrives many times a second on a live symbol;
/// 10 s of silence means the connection is not delivering.
const DEFAULT_HEARTBEAT_WINDOW_MS: u64 = 10_000;
/// PRODUCT.md M2: REST fallback after 5 minutes of unhealthy WebSocket.
const DEFAULT_FALLBACK_AFTER_SECS: u64 = 300;
const DEFAULT_BACKOFF_BASE_MS: u64 = 250;
const DEFAULT_BACKOFF_MAX_MS: u64 = 30_000;
/// 23 h: one hour of margin before Binance's 24 h connection limit (SPEC.md §2).
const DEFAULT_MAX_CONNECTION_AGE_SECS: u64 = 23 * 3600;
const MAX_CONNECTION_AGE_LIMIT_SECS: u64 = 24 * 3600;
/// Binance's default `recvWindow` (SPEC.md §4); the maximum it accepts is 60 000.
const DEFAULT_RECV_WINDOW_MS: u64 = 5_000;
const MAX_RECV_WINDOW_MS: u64 = 60_000;
/// Binance answers -1007 after 10 s of internal timeout; waiting as long keeps `Unknown` rare.
const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 10_000;
/// Binance's ORDERS limit is 50 per 10 s per account (SPEC.md §7).
const DEFAULT_ORDERS_PER_SEC: u32 = 5;
/// Per symbol: a market maker needs 2 (bid + ask) plus room for in-flight replacements.
const DEFAULT_MAX_OPEN_ORDERS: u32 = 4;
/// Throttle re-placing a side that just filled or was refused.
const DEFAULT_MIN_REQUOTE_INTERVAL_MS: u64 = 200;
/// A book silent for 5 s is not a book to quote on.
const DEFAULT_STALE_AFTER_MS: u64 = 5_000;
/// IOC limit 5 bps through the opposite best: bounds the fill price on thin books.
const DEFAULT_TAKER_SLIPPAGE_BPS: u32 = 5;
const DEFAULT_PRICE_BAND_BPS: u32 = 50;
/// Twice the gateway's default `execution.max_in_flight` (16): a full set of requests in flight
/// plus as many decided behind them; more than that waiting means the exchange or the journal
/// is slow, and orders queued further would reach the exchange on stale prices.
const DEFAULT_MAX_PENDING_ORDERS: u32 = 32;
const DEFAULT_QUOTE_ASSET: &str = "USDT";
const DEFAULT_CLIENT_ID_PREFIX: &str = "kst";
/// Upper bound of `execution.max_in_flight` (a typo guard: Binance's order-rate limits are far
/// below what so many concurrent requests would send).
const MAX_IN_FLIGHT_LIMIT: usize = 1024;
/// One journal transaction with its fsync (`synchronous=FULL`). Measured on the 2-core CI VM
/// (`kestrel demo`, 334 transactions): p50 1 ms, p95 10 ms, max 50 ms; one 112 ms spike while
/// the host ran at load 8. 250 ms is far above a healthy disk's tail, and an order delayed that
/// long by its own journal write is worth an alert.
const DEFAULT_JOURNAL_BUDGET_US: u64 = 250_000;
/// An admin token shorter than this is guessable.
const MIN_ADMIN_TOKEN_LEN: usize = 16;

impl Config {
    /// Reads and validates `path`, taking secrets from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::from_toml(&text, path, &secrets::ProcessEnv)
    }

    /// Parses and validates TOML `text` (from `path`, used in messages), taking secrets from
    /// `env`.
    pub fn from_toml(text: &str, path: &Path, env: &dyn EnvSource) -> Result<Config, ConfigError> {
        let raw = RawConfig::parse(text, path)?;
        raw.validate(path, env)
    }
}

impl RawConfig {
    /// Parses TOML text: syntax, then the secret-key check, then the schema.
    pub fn parse(text: &str, path: &Path) -> Result<RawConfig, ConfigError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
            ConfigError::Syntax {
                path: path.to_path_buf(),
                line,
                column,
                message: one_line_message(e.message()),
                source: Box::new(e),
            }
        })?;
        reject_secrets(&table, "")?;
        serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
            let field_path = e.path().to_string();
            let inner = e.into_inner();
            let line = inner.span().map(|s| line_col(text, s.start).0);
            let (field, message) = schema_message(&field_path, &one_line_message(inner.message()));
            ConfigError::Schema { field, line, message, source: Box::new(inner) }
        })
    }

    /// Validates into a [`Config`]; the first problem found is returned.
    pub fn validate(self, path: &Path, env: &dyn EnvSource) -> Result<Config, ConfigError> {
        let endpoints = validate_endpoints(self.env, self.endpoints)?;
        let credentials = secrets::load_credentials(
            env,
            self.exchange.api_key_file.as_deref(),
            self.exchange.api_secret_file.as_deref(),
        )
        .map_err(|source| ConfigError::Secret { field: "exchange credentials", source })?;

        let (risk, default_max_open_orders) = validate_risk(self.risk)?;
        if self.symbols.is_empty() {
            return Err(ConfigError::invalid(
                "symbols",
                "at least one [[symbols]] entry is needed",
            ));
        }
        let mut symbols: Vec<SymbolConfig> = Vec::with_capacity(self.symbols.len());
        for (i, raw) in self.symbols.into_iter().enumerate() {
            let sc = validate_symbol(i, raw, default_max_open_orders)?;
            if symbols.iter().any(|s| s.symbol == sc.symbol) {
                return Err(ConfigError::invalid(
                    format!("symbols[{i}].symbol"),
                    format!("{} is listed twice", sc.symbol),
                ));
            }
            symbols.push(sc);
        }

        let market_data = validate_market_data(self.market_data)?;
        let execution = validate_execution(self.execution)?;
        let admin = validate_admin(self.admin, env)?;

        let tb = self.task_budgets;
        let task_budgets = TaskBudgets {
            md: positive_us("task_budgets.md_us", tb.md_us.unwrap_or(2_000))?,
            engine: positive_us("task_budgets.engine_us", tb.engine_us.unwrap_or(1_000))?,
            exec: positive_us("task_budgets.exec_us", tb.exec_us.unwrap_or(5_000))?,
            user_stream: positive_us(
                "task_budgets.user_stream_us",
                tb.user_stream_us.unwrap_or(2_000),
            )?,
            journal: positive_us(
                "task_budgets.journal_us",
                tb.journal_us.unwrap_or(DEFAULT_JOURNAL_BUDGET_US),
            )?,
        };

        if self.journal.path.as_os_str().is_empty() {
            return Err(ConfigError::invalid("journal.path", "must not be empty"));
        }

        Ok(Config {
            source: path.to_path_buf(),
            env: self.env,
            endpoints,
            credentials,
            symbols,
            risk,
            market_data,
            execution,
            reconcile: ReconcileConfig {
                unknown_orders: self.reconcile.unknown_orders.unwrap_or(UnknownOrderPolicy::Cancel),
            },
            journal: JournalConfig { path: self.journal.path },
            admin,
            shutdown: ShutdownConfig {
                cancel_all_on_exit: self.shutdown.cancel_all_on_exit.unwrap_or(true),
            },
            task_budgets,
        })
    }
}

/// A parser message on one line: its lines joined with "; ".
fn one_line_message(message: &str) -> String {
    message.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ")
}

/// 1-based (line, column) of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Turns serde's message and path into (field path, message), moving the field name of
/// "missing field `x`" into the path, and adding a hint when a TOML number was given where a
/// decimal string is expected.
fn schema_message(path: &str, message: &str) -> (String, String) {
    let base = if path == "." || path.is_empty() { String::new() } else { path.to_owned() };
    if let Some(rest) = message.strip_prefix("missing field `") {
        if let Some(name) = rest.split('`').next() {
            let field = if base.is_empty() { name.to_owned() } else { format!("{base}.{name}") };
            return (field, "is required but missing".to_owned());
        }
    }
    let field = if base.is_empty() { "(top level)".to_owned() } else { base };
    let mut message = message.to_owned();
    if message.contains("expected a string")
        && (message.contains("integer") || message.contains("floating point"))
    {
        message
            .push_str(" (write prices, quantities and amounts as decimal strings, e.g. \"500\")");
    }
    (field, message)
}

/// Rejects any key that would hold a secret, anywhere in the file.
fn reject_secrets(table: &toml::Table, prefix: &str) -> Result<(), ConfigError> {
    for (key, value) in table {
        let field = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        let env = match key.to_ascii_lowercase().replace('-', "_").as_str() {
            "api_key" | "apikey" | "key" => Some(API_KEY_ENV),
            "api_secret" | "apisecret" | "secret" | "secret_key" | "private_key" => {
                Some(API_SECRET_ENV)
            }
            "token" | "admin_token" | "password" => Some(ADMIN_TOKEN_ENV),
            _ => None,
        };
        if let Some(env) = env {
            return Err(ConfigError::SecretInFile { field, env });
        }
        match value {
            toml::Value::Table(t) => reject_secrets(t, &field)?,
            toml::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let toml::Value::Table(t) = item {
                        reject_secrets(t, &format!("{field}[{i}]"))?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn num_reason(text: &str, e: ParseNumError) -> String {
    match e {
        ParseNumError::TooManyDecimals { max } => {
            format!("{text:?} has more than {max} decimal places")
        }
        ParseNumError::Overflow => format!("{text:?} is out of range"),
        ParseNumError::Exponent => {
            format!("{text:?} is not a decimal number (exponents are not accepted)")
        }
        ParseNumError::Empty | ParseNumError::InvalidChar(_) => {
            format!("{text:?} is not a decimal number")
        }
    }
}

fn parse_qty(field: &str, text: &str) -> Result<Qty, ConfigError> {
    text.trim().parse::<Qty>().map_err(|e| ConfigError::invalid(field, num_reason(text, e)))
}

fn positive_qty(field: &str, text: &str) -> Result<Qty, ConfigError> {
    let q = parse_qty(field, text)?;
    if !q.is_positive() {
        return Err(ConfigError::invalid(
            field,
            format!("must be greater than zero, got {text:?}"),
        ));
    }
    Ok(q)
}

fn positive_notional(field: &str, text: &str) -> Result<Notional, ConfigError> {
    // Amounts are configured at Binance precision (8 decimals), then widened exactly.
    let q = parse_qty(field, text)?;
    if !q.is_positive() {
        return Err(ConfigError::invalid(
            field,
            format!("must be greater than zero, got {text:?}"),
        ));
    }
    Ok(q.to_notional())
}

fn positive_ms(field: &str, ms: u64) -> Result<Duration, ConfigError> {
    if ms == 0 {
        return Err(ConfigError::invalid(field, "must be greater than zero"));
    }
    Ok(Duration::from_millis(ms))
}

fn positive_us(field: &str, us: u64) -> Result<Duration, ConfigError> {
    if us == 0 {
        return Err(ConfigError::invalid(field, "must be greater than zero"));
    }
    Ok(Duration::from_micros(us))
}

fn validate_url(field: &str, text: &str, schemes: &[&str]) -> Result<Url, ConfigError> {
    let url =
        Url::parse(text).map_err(|e| ConfigError::invalid(field, format!("{text:?}: {e}")))?;
    if !schemes.contains(&url.scheme()) {
        return Err(ConfigError::invalid(
            field,
            format!(
                "{text:?} has scheme {:?}; expected one of {}",
                url.scheme(),
                schemes.join(", ")
            ),
        ));
    }
    if url.host_str().is_none() {
        return Err(ConfigError::invalid(field, format!("{text:?} has no host")));
    }
    Ok(url)
}

fn validate_endpoints(env: ExchangeEnv, raw: RawEndpoints) -> Result<Endpoints, ConfigError> {
    let mut e = env.preset();
    if let Some(text) = &raw.rest_url {
        e.rest = validate_url("endpoints.rest_url", text, &["https", "http"])?;
    }
    if let Some(text) = &raw.ws_stream_url {
        e.ws_stream = validate_url("endpoints.ws_stream_url", text, &["wss", "ws"])?;
    }
    if let Some(text) = &raw.ws_api_url {
        e.ws_api = validate_url("endpoints.ws_api_url", text, &["wss", "ws"])?;
    }
    Ok(e)
}

fn validate_symbol(
    i: usize,
    raw: RawSymbol,
    default_max_open_orders: u32,
) -> Result<SymbolConfig, ConfigError> {
    let at = |f: &str| format!("symbols[{i}].{f}");
    let symbol = Symbol::new(raw.symbol.trim())
        .map_err(|e| ConfigError::invalid(at("symbol"), format!("{:?}: {e}", raw.symbol)))?;
    if symbol.as_str().chars().any(|c| c.is_ascii_lowercase()) {
        return Err(ConfigError::invalid(
            at("symbol"),
            format!("{symbol} must be in the exchange's upper-case spelling"),
        ));
    }
    let max_position = positive_qty(&at("max_position"), &raw.max_position)?;
    let max_open_orders = raw.max_open_orders.unwrap_or(default_max_open_orders);
    if max_open_orders == 0 {
        return Err(ConfigError::invalid(at("max_open_orders"), "must be greater than zero"));
    }
    let size_within = |size: Qty| {
        if size > max_position {
            return Err(ConfigError::invalid(
                at("strategy.size"),
                format!("{size} is larger than max_position {max_position}"),
            ));
        }
        Ok(size)
    };
    let mut table = raw.strategy;
    let kind = match table.remove("kind") {
        Some(toml::Value::String(kind)) => kind,
        Some(other) => {
            return Err(ConfigError::invalid(
                at("strategy.kind"),
                format!("must be a string ({STRATEGY_KINDS}), got {}", other.type_str()),
            ))
        }
        None => {
            return Err(ConfigError::invalid(
                at("strategy.kind"),
                format!("is required but missing ({STRATEGY_KINDS})"),
            ))
        }
    };
    let strategy = match kind.as_str() {
        "market_maker" => {
            let mm: RawMarketMaker = strategy_params(&at("strategy"), table)?;
            bps_in_range(&at("strategy.half_spread_bps"), mm.half_spread_bps, 1)?;
            bps_in_range(&at("strategy.skew_bps_at_max"), mm.skew_bps_at_max, 0)?;
            let size = size_within(positive_qty(&at("strategy.size"), &mm.size)?)?;
            StrategyConfig::MarketMaker(MarketMakerParams {
                half_spread_bps: mm.half_spread_bps,
                size,
                requote_bps: mm.requote_bps,
                skew_bps_at_max: mm.skew_bps_at_max,
                min_requote_interval: Duration::from_millis(
                    mm.min_requote_interval_ms.unwrap_or(DEFAULT_MIN_REQUOTE_INTERVAL_MS),
                ),
                stale_after: positive_ms(
                    &at("strategy.stale_after_ms"),
                    mm.stale_after_ms.unwrap_or(DEFAULT_STALE_AFTER_MS),
                )?,
                post_only: mm.post_only.unwrap_or(true),
            })
        }
        "imbalance_taker" => {
            let it: RawImbalanceTaker = strategy_params(&at("strategy"), table)?;
            let levels = usize::try_from(it.levels).unwrap_or(usize::MAX);
            if levels == 0 || levels > TOP_LEVELS {
                return Err(ConfigError::invalid(
                    at("strategy.levels"),
                    format!("must be between 1 and {TOP_LEVELS}, got {}", it.levels),
                ));
            }
            let threshold_bps = ratio_to_bps(&at("strategy.threshold"), &it.threshold)?;
            bps_in_range(&at("strategy.micro_edge_bps"), it.micro_edge_bps, 0)?;
            let size = size_within(positive_qty(&at("strategy.size"), &it.size)?)?;
            let style =
                match (it.order_style.unwrap_or(TakerOrderStyleName::Ioc), it.slippage_bps) {
                    (TakerOrderStyleName::Ioc, slippage) => {
                        let slippage_bps = slippage.unwrap_or(DEFAULT_TAKER_SLIPPAGE_BPS);
                        bps_in_range(&at("strategy.slippage_bps"), slippage_bps, 0)?;
                        TakerOrderStyle::Ioc { slippage_bps }
                    }
                    (TakerOrderStyleName::Market, None) => TakerOrderStyle::Market,
                    (TakerOrderStyleName::Market, Some(_)) => return Err(ConfigError::invalid(
                        at("strategy.slippage_bps"),
                        "applies only to order_style = \"ioc\" (market orders have no price bound)",
                    )),
                };
            StrategyConfig::ImbalanceTaker(ImbalanceTakerParams {
                levels,
                threshold_bps,
                micro_edge_bps: it.micro_edge_bps,
                cooldown: Duration::from_millis(it.cooldown_ms),
                size,
                style,
            })
        }
        "passive" => {
            let _: RawPassive = strategy_params(&at("strategy"), table)?;
            StrategyConfig::Passive
        }
        other => {
            return Err(ConfigError::invalid(
                at("strategy.kind"),
                format!("unknown strategy {other:?}; expected {STRATEGY_KINDS}"),
            ))
        }
    };
    Ok(SymbolConfig { symbol, max_position, max_open_orders, strategy })
}

/// Deserializes a strategy's parameter table, reporting errors under `prefix`.
fn strategy_params<T: serde::de::DeserializeOwned>(
    prefix: &str,
    table: toml::Table,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let full = if path == "." || path.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}.{path}")
        };
        let (field, message) = schema_message(&full, &one_line_message(inner.message()));
        ConfigError::Schema { field, line: None, message, source: Box::new(inner) }
    })
}

/// A basis-point value must be below 10 000 (100 %) and at least `min`.
fn bps_in_range(field: &str, bps: u32, min: u32) -> Result<(), ConfigError> {
    if bps < min || bps >= 10_000 {
        return Err(ConfigError::invalid(
            field,
            format!("must be between {min} and 9999 basis points, got {bps}"),
        ));
    }
    Ok(())
}

/// A decimal ratio strictly between 0 and 1 with at most 4 decimals ("0.3"), as basis points.
fn ratio_to_bps(field: &str, text: &str) -> Result<u32, ConfigError> {
    let r = parse_qty(field, text)?;
    // One basis point of 1 is 1e-4, i.e. 10 000 mantissa units at 1e-8.
    const BPS_UNIT: i64 = 10_000;
    if r.mantissa() % BPS_UNIT != 0 {
        return Err(ConfigError::invalid(
            field,
            format!("{text:?} has more than 4 decimal places"),
        ));
    }
    let bps = r.mantissa() / BPS_UNIT;
    match u32::try_from(bps) {
        Ok(b) if (1..10_000).contains(&b) => Ok(b),
        _ => Err(ConfigError::invalid(
            field,
            format!("must be strictly between 0 and 1, got {text:?}"),
        )),
    }
}

fn validate_risk(raw: RawRisk) -> Result<(RiskConfig, u32), ConfigError> {
    let funds = positive_notional("risk.funds", &raw.funds)?;
    let max_drawdown = positive_notional("risk.max_drawdown", &raw.max_drawdown)?;
    if max_drawdown > funds {
        return Err(ConfigError::invalid(
            "risk.max_drawdown",
            format!("{max_drawdown} is larger than risk.funds {funds}"),
        ));
    }
    let quote_text = raw.quote_asset.as_deref().unwrap_or(DEFAULT_QUOTE_ASSET);
    let quote_asset = Asset::new(quote_text.trim())
        .map_err(|e| ConfigError::invalid("risk.quote_asset", format!("{quote_text:?}: {e}")))?;
    let max_open_orders = raw.max_open_orders.unwrap_or(DEFAULT_MAX_OPEN_ORDERS);
    if max_open_orders == 0 {
        return Err(ConfigError::invalid("risk.max_open_orders", "must be greater than zero"));
    }
    let orders_per_sec = raw.orders_per_sec.unwrap_or(DEFAULT_ORDERS_PER_SEC);
    if orders_per_sec == 0 {
        return Err(ConfigError::invalid("risk.orders_per_sec", "must be greater than zero"));
    }
    let order_burst = raw.order_burst.unwrap_or(orders_per_sec);
    if order_burst == 0 {
        return Err(ConfigError::invalid("risk.order_burst", "must be greater than zero"));
    }
    let price_band_bps = raw.price_band_bps.unwrap_or(DEFAULT_PRICE_BAND_BPS);
    bps_in_range("risk.price_band_bps", price_band_bps, 1)?;
    let max_pending_orders = raw.max_pending_orders.unwrap_or(DEFAULT_MAX_PENDING_ORDERS);
    if max_pending_orders == 0 {
        return Err(ConfigError::invalid(
            "risk.max_pending_orders",
            "must be greater than zero (0 would refuse every new order)",
        ));
    }
    let risk = RiskConfig {
        funds,
        quote_asset,
        max_drawdown,
        orders_per_sec,
        order_burst,
        price_band_bps,
        trade_on_fallback: raw.trade_on_fallback.unwrap_or(false),
        max_pending_orders,
    };
    Ok((risk, max_open_orders))
}

fn validate_market_data(raw: RawMarketData) -> Result<MarketDataConfig, ConfigError> {
    let heartbeat_window = positive_ms(
        "market_data.heartbeat_window_ms",
        raw.heartbeat_window_ms.unwrap_or(DEFAULT_HEARTBEAT_WINDOW_MS),
    )?;
    let fallback_secs = raw.fallback_after_secs.unwrap_or(DEFAULT_FALLBACK_AFTER_SECS);
    if fallback_secs == 0 {
        return Err(ConfigError::invalid(
            "market_data.fallback_after_secs",
            "must be greater than zero",
        ));
    }
    let base = positive_ms(
        "market_data.reconnect_backoff_base_ms",
        raw.reconnect_backoff_base_ms.unwrap_or(DEFAULT_BACKOFF_BASE_MS),
    )?;
    let max = positive_ms(
        "market_data.reconnect_backoff_max_ms",
        raw.reconnect_backoff_max_ms.unwrap_or(DEFAULT_BACKOFF_MAX_MS),
    )?;
    if max < base {
        return Err(ConfigError::invalid(
            "market_data.reconnect_backoff_max_ms",
            format!("{} is below reconnect_backoff_base_ms {}", max.as_millis(), base.as_millis()),
        ));
    }
    let age = raw.max_connection_age_secs.unwrap_or(DEFAULT_MAX_CONNECTION_AGE_SECS);
    if age == 0 || age >= MAX_CONNECTION_AGE_LIMIT_SECS {
        return Err(ConfigError::invalid(
            "market_data.max_connection_age_secs",
            format!(
                "must be between 1 and {} (Binance closes connections at 24 h), got {age}",
                MAX_CONNECTION_AGE_LIMIT_SECS - 1
            ),
        ));
    }
    let fallback_recover = Duration::from_secs(raw.fallback_recover_secs.unwrap_or(30));
    Ok(MarketDataConfig {
        fallback_recover,
        depth_speed: raw.depth_speed.unwrap_or(DepthSpeed::Ms100),
        heartbeat_window,
        fallback_after: Duration::from_secs(fallback_secs),
        reconnect_backoff_base: base,
        reconnect_backoff_max: max,
        max_connection_age: Duration::from_secs(age),
    })
}

fn validate_execution(raw: RawExecution) -> Result<ExecutionConfig, ConfigError> {
    let recv = raw.recv_window_ms.unwrap_or(DEFAULT_RECV_WINDOW_MS);
    if recv == 0 || recv > MAX_RECV_WINDOW_MS {
        return Err(ConfigError::invalid(
            "execution.recv_window_ms",
            format!("must be between 1 and {MAX_RECV_WINDOW_MS} (Binance's maximum), got {recv}"),
        ));
    }
    let request_timeout = positive_ms(
        "execution.request_timeout_ms",
        raw.request_timeout_ms.unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS),
    )?;
    let share = raw.rate_limit_share_pct.unwrap_or(100);
    let rate_limit_share_pct = match u8::try_from(share) {
        Ok(p) if (1..=100).contains(&p) => p,
        _ => {
            return Err(ConfigError::invalid(
                "execution.rate_limit_share_pct",
                format!("must be between 1 and 100, got {share}"),
            ))
        }
    };
    let prefix_text = raw.client_id_prefix.as_deref().unwrap_or(DEFAULT_CLIENT_ID_PREFIX);
    let client_id_prefix = ClientIdPrefix::new(prefix_text).map_err(|reason| {
        ConfigError::invalid("execution.client_id_prefix", format!("{prefix_text:?}: {reason}"))
    })?;
    let clock_check_interval = Duration::from_secs(raw.clock_check_secs.unwrap_or(60));
    if clock_check_interval.is_zero() {
        return Err(ConfigError::invalid(
            "execution.clock_check_secs",
            "must be greater than zero",
        ));
    }
    let max_in_flight = raw.max_in_flight.unwrap_or(crate::exec::DEFAULT_MAX_IN_FLIGHT);
    if max_in_flight == 0 || max_in_flight > MAX_IN_FLIGHT_LIMIT {
        return Err(ConfigError::invalid(
            "execution.max_in_flight",
            format!("must be between 1 and {MAX_IN_FLIGHT_LIMIT}, got {max_in_flight}"),
        ));
    }
    Ok(ExecutionConfig {
        clock_check_interval,
        max_in_flight,
        order_transport: raw.order_transport.unwrap_or(OrderTransport::Rest),
        recv_window: Duration::from_millis(recv),
        request_timeout,
        rate_limit_share_pct,
        client_id_prefix,
    })
}

fn validate_admin(raw: RawAdmin, env: &dyn EnvSource) -> Result<AdminConfig, ConfigError> {
    let text = raw.listen.as_deref().unwrap_or(DEFAULT_ADMIN_LISTEN);
    let listen: SocketAddr = text.trim().parse().map_err(|_| {
        ConfigError::invalid(
            "admin.listen",
            format!("{text:?} is not an IP:port address (e.g. \"127.0.0.1:9184\")"),
        )
    })?;
    let token =
        secrets::load_secret(env, "admin token", ADMIN_TOKEN_ENV, raw.token_file.as_deref())
            .map_err(|source| ConfigError::Secret { field: "admin.token_file", source })?;
    if let Some(t) = &token {
        if t.secret.len() < MIN_ADMIN_TOKEN_LEN {
            return Err(ConfigError::invalid(
                "admin token",
                format!(
                    "the token from {} is shorter than {MIN_ADMIN_TOKEN_LEN} characters",
                    t.origin
                ),
            ));
        }
    }
    if !listen.ip().is_loopback() && token.is_none() {
        return Err(ConfigError::invalid(
            "admin.listen",
            format!(
                "{listen} is not a loopback address, so the admin API needs a token: set \
                 {ADMIN_TOKEN_ENV} (or {ADMIN_TOKEN_ENV}_FILE, or admin.token_file)"
            ),
        ));
    }
    Ok(AdminConfig { listen, token })
}

// ---------------------------------------------------------------------------------------------
// Human-readable rendering for `kestrel check-config`
// ---------------------------------------------------------------------------------------------

fn secret_state(s: Option<&LoadedSecret>) -> String {
    match s {
        Some(l) => format!("set (from {})", l.origin),
        None => "not set".to_owned(),
    }
}

impl fmt::Display for Config {
    /// One `key  value` line per setting; secrets show only whether and where they are set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn line(f: &mut fmt::Formatter<'_>, key: &str, value: impl fmt::Display) -> fmt::Result {
            writeln!(f, "{key:<42} {value}")
        }
        line(f, "source", self.source.display())?;
        line(f, "env", self.env.as_str())?;
        line(f, "endpoints.rest_url", &self.endpoints.rest)?;
        line(f, "endpoints.ws_stream_url", &self.endpoints.ws_stream)?;
        line(f, "endpoints.ws_api_url", &self.endpoints.ws_api)?;
        let creds = self.credentials.as_ref();
        line(f, "credentials.api_key", secret_state(creds.map(|c| &c.api_key)))?;
        line(f, "credentials.api_secret", secret_state(creds.map(|c| &c.api_secret)))?;
        if let Some(c) = creds {
            line(f, "credentials.signing", c.signing())?;
        }
        for (i, s) in self.symbols.iter().enumerate() {
            let p = format!("symbols[{i}]");
            line(f, &format!("{p}.symbol"), s.symbol)?;
            line(f, &format!("{p}.max_position"), s.max_position)?;
            line(f, &format!("{p}.max_open_orders"), s.max_open_orders)?;
            line(f, &format!("{p}.strategy.kind"), s.strategy.kind())?;
            match s.strategy {
                StrategyConfig::MarketMaker(m) => {
                    line(f, &format!("{p}.strategy.half_spread_bps"), m.half_spread_bps)?;
                    line(f, &format!("{p}.strategy.size"), m.size)?;
                    line(f, &format!("{p}.strategy.requote_bps"), m.requote_bps)?;
                    line(f, &format!("{p}.strategy.skew_bps_at_max"), m.skew_bps_at_max)?;
                    line(
                        f,
                        &format!("{p}.strategy.min_requote_interval"),
                        format_args!("{:?}", m.min_requote_interval),
                    )?;
                    line(
                        f,
                        &format!("{p}.strategy.stale_after"),
                        format_args!("{:?}", m.stale_after),
                    )?;
                    line(f, &format!("{p}.strategy.post_only"), m.post_only)?;
                }
                StrategyConfig::ImbalanceTaker(t) => {
                    line(f, &format!("{p}.strategy.levels"), t.levels)?;
                    line(f, &format!("{p}.strategy.threshold_bps"), t.threshold_bps)?;
                    line(f, &format!("{p}.strategy.micro_edge_bps"), t.micro_edge_bps)?;
                    line(f, &format!("{p}.strategy.cooldown"), format_args!("{:?}", t.cooldown))?;
                    line(f, &format!("{p}.strategy.size"), t.size)?;
                    match t.style {
                        TakerOrderStyle::Ioc { slippage_bps } => line(
                            f,
                            &format!("{p}.strategy.order_style"),
                            format_args!("ioc (slippage {slippage_bps} bps)"),
                        )?,
                        TakerOrderStyle::Market => {
                            line(f, &format!("{p}.strategy.order_style"), "market")?
                        }
                    }
                }
                StrategyConfig::Passive => {}
            }
        }
        let r = &self.risk;
        line(f, "risk.funds", format_args!("{} {}", r.funds, r.quote_asset))?;
        line(f, "risk.max_drawdown", format_args!("{} {}", r.max_drawdown, r.quote_asset))?;
        line(f, "risk.orders_per_sec", r.orders_per_sec)?;
        line(f, "risk.order_burst", r.order_burst)?;
        line(f, "risk.price_band_bps", r.price_band_bps)?;
        line(f, "risk.trade_on_fallback", r.trade_on_fallback)?;
        line(f, "risk.max_pending_orders", r.max_pending_orders)?;
        let m = &self.market_data;
        line(f, "market_data.depth_speed", m.depth_speed.as_str())?;
        line(f, "market_data.heartbeat_window", format_args!("{:?}", m.heartbeat_window))?;
        line(f, "market_data.fallback_after", format_args!("{:?}", m.fallback_after))?;
        line(
            f,
            "market_data.reconnect_backoff",
            format_args!("{:?} .. {:?}", m.reconnect_backoff_base, m.reconnect_backoff_max),
        )?;
        line(f, "market_data.max_connection_age", format_args!("{:?}", m.max_connection_age))?;
        let e = &self.execution;
        line(f, "execution.order_transport", e.order_transport.as_str())?;
        line(f, "execution.recv_window", format_args!("{:?}", e.recv_window))?;
        line(f, "execution.request_timeout", format_args!("{:?}", e.request_timeout))?;
        line(f, "execution.rate_limit_share_pct", e.rate_limit_share_pct)?;
        line(f, "execution.client_id_prefix", e.client_id_prefix)?;
        line(f, "execution.max_in_flight", e.max_in_flight)?;
        line(f, "reconcile.unknown_orders", self.reconcile.unknown_orders.as_str())?;
        line(f, "journal.path", self.journal.path.display())?;
        line(f, "admin.listen", self.admin.listen)?;
        line(f, "admin.token", secret_state(self.admin.token.as_ref()))?;
        line(f, "shutdown.cancel_all_on_exit", self.shutdown.cancel_all_on_exit)?;
        let b = &self.task_budgets;
        line(
            f,
            "task_budgets",
            format_args!(
                "md {:?}, engine {:?}, exec {:?}, user_stream {:?}, journal {:?}",
                b.md, b.engine, b.exec, b.user_stream, b.journal
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const MINIMAL: &str = r#"
env = "testnet"

[[symbols]]
symbol = "BTCUSDT"
max_position = "0.01"
[symbols.strategy]
kind = "market_maker"
half_spread_bps = 10
size = "0.001"
requote_bps = 2

[risk]
funds = "500"
max_drawdown = "25"

[journal]
path = "kestrel.sqlite"
"#;

    fn no_env() -> HashMap<String, String> {
        HashMap::new()
    }

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("test.toml"), &no_env())
    }

    /// Replaces the first occurrence of `from` in MINIMAL (which must exist).
    fn edit(from: &str, to: &str) -> String {
        assert!(MINIMAL.contains(from), "test bug: {from:?} not in MINIMAL");
        MINIMAL.replacen(from, to, 1)
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = load(MINIMAL).unwrap();
        assert_eq!(c.env, ExchangeEnv::Testnet);
        assert_eq!(c.endpoints.rest.as_str(), "https://testnet.binance.vision/");
        assert_eq!(c.risk.funds, "500".parse::<Notional>().unwrap());
        assert_eq!(c.risk.quote_asset.as_str(), "USDT");
        assert_eq!(c.market_data.fallback_after, Duration::from_secs(300));
        assert_eq!(c.admin.listen, "127.0.0.1:9184".parse::<SocketAddr>().unwrap());
        assert!(c.admin.token.is_none());
        assert!(c.credentials.is_none());
        assert_eq!(c.execution.order_transport, OrderTransport::Rest);
        assert_eq!(c.execution.client_id_prefix.as_str(), "kst");
        assert_eq!(c.execution.max_in_flight, crate::exec::DEFAULT_MAX_IN_FLIGHT);
        assert_eq!(c.risk.max_pending_orders, 2 * crate::exec::DEFAULT_MAX_IN_FLIGHT as u32);
        assert_eq!(c.reconcile.unknown_orders, UnknownOrderPolicy::Cancel);
        assert!(c.shutdown.cancel_all_on_exit);
        assert_eq!(
            c.symbols[0].strategy,
            StrategyConfig::MarketMaker(MarketMakerParams {
                half_spread_bps: 10,
                size: "0.001".parse().unwrap(),
                requote_bps: 2,
                skew_bps_at_max: 0,
                min_requote_interval: Duration::from_millis(200),
                stale_after: Duration::from_secs(5),
                post_only: true,
            })
        );
    }

    #[test]
    fn endpoint_presets_and_overrides() {
        let c = load(&edit("env = \"testnet\"", "env = \"mainnet\"")).unwrap();
        // The url crate drops the scheme's default port (443).
        assert_eq!(c.endpoints.ws_api.as_str(), "wss://ws-api.binance.com/ws-api/v3");
        let c = load(&edit(
            "env = \"testnet\"",
            "env = \"sim\"\n[endpoints]\nrest_url = \"http://127.0.0.1:4000\"",
        ))
        .unwrap();
        assert_eq!(c.endpoints.rest.as_str(), "http://127.0.0.1:4000/");
        assert_eq!(c.endpoints.ws_stream.as_str(), "ws://127.0.0.1:8765/");
        assert_eq!(c.endpoints.ws_api.as_str(), "ws://127.0.0.1:8765/ws-api/v3");
    }

    #[test]
    fn max_pending_orders_parses() {
        let text = edit("max_drawdown = \"25\"", "max_drawdown = \"25\"\nmax_pending_orders = 8");
        let c = load(&text).unwrap();
        assert_eq!(c.risk.max_pending_orders, 8);
        assert!(c.to_string().contains("risk.max_pending_orders"), "{c}");
    }

    #[test]
    fn imbalance_taker_parses() {
        let text = edit(
            "kind = \"market_maker\"\nhalf_spread_bps = 10\nsize = \"0.001\"\nrequote_bps = 2",
            "kind = \"imbalance_taker\"\nlevels = 5\nthreshold = \"0.6\"\ncooldown_ms = 250\nsize = \"0.001\"",
        );
        let c = load(&text).unwrap();
        match c.symbols[0].strategy {
            StrategyConfig::ImbalanceTaker(t) => {
                assert_eq!(t.levels, 5);
                assert_eq!(t.threshold_bps, 6000);
                assert_eq!(t.style, TakerOrderStyle::Ioc { slippage_bps: 5 });
                assert_eq!(t.cooldown, Duration::from_millis(250));
            }
            other => panic!("wrong strategy {other:?}"),
        }
    }

    /// Each bad config gives one line naming the field and the reason.
    #[test]
    fn bad_configs_name_the_field() {
        let cases: Vec<(String, &str, &str)> = vec![
            // TC0: the brief's example.
            (edit("funds = \"500\"", "funds = \"50O\""), "risk.funds", "\"50O\" is not a decimal number"),
            // TC1: a TOML number where a decimal string is expected.
            (edit("funds = \"500\"", "funds = 500"), "risk.funds", "decimal strings"),
            // TC2: a typo'd field is unknown.
            (edit("max_drawdown = \"25\"", "max_drawdown = \"25\"\nmax_drawdwn = \"1\""), "risk.max_drawdwn", "unknown field `max_drawdwn`"),
            // TC3: a required field is missing.
            (edit("max_drawdown = \"25\"\n", ""), "risk.max_drawdown", "required"),
            // TC4: unknown env.
            (edit("env = \"testnet\"", "env = \"prod\""), "env", "unknown variant `prod`"),
            // TC5: too many decimals.
            (edit("size = \"0.001\"", "size = \"0.000000001\""), "symbols[0].strategy.size", "more than 8 decimal places"),
            // TC6: zero position.
            (edit("max_position = \"0.01\"", "max_position = \"0\""), "symbols[0].max_position", "greater than zero"),
            // TC7: non-loopback admin without token.
            (format!("{MINIMAL}\n[admin]\nlisten = \"0.0.0.0:9184\"\n"), "admin.listen", "needs a token"),
            // TC8: bad URL scheme.
            (edit("env = \"testnet\"", "env = \"testnet\"\n[endpoints]\nrest_url = \"ftp://x\""), "endpoints.rest_url", "scheme"),
            // TC9: recv window above Binance's maximum.
            (format!("{MINIMAL}\n[execution]\nrecv_window_ms = 70000\n"), "execution.recv_window_ms", "60000"),
            // TC10: an API key in the file is refused with the env var to use.
            (format!("{MINIMAL}\n[exchange]\napi_key = \"abc\"\n"), "exchange.api_key", "KESTREL_BINANCE_API_KEY"),
            // TC11: a secret at top level.
            (format!("secret = \"x\"\n{MINIMAL}"), "secret", "KESTREL_BINANCE_API_SECRET"),
            // TC12: duplicate symbols.
            (format!("{MINIMAL}\n[[symbols]]\nsymbol = \"BTCUSDT\"\nmax_position = \"1\"\n[symbols.strategy]\nkind = \"market_maker\"\nhalf_spread_bps = 1\nsize = \"1\"\nrequote_bps = 1\n"), "symbols[1].symbol", "listed twice"),
            // TC13: threshold out of (0, 1).
            (edit("kind = \"market_maker\"\nhalf_spread_bps = 10\nsize = \"0.001\"\nrequote_bps = 2", "kind = \"imbalance_taker\"\nlevels = 5\nthreshold = \"1.5\"\ncooldown_ms = 250\nsize = \"0.001\""), "symbols[0].strategy.threshold", "between 0 and 1"),
            // TC14: unknown strategy kind.
            (edit("kind = \"market_maker\"", "kind = \"martingale\""), "symbols[0].strategy.kind", "unknown strategy \"martingale\""),
            // TC15: drawdown larger than funds.
            (edit("max_drawdown = \"25\"", "max_drawdown = \"501\""), "risk.max_drawdown", "larger than risk.funds"),
            // TC16: a bad client id prefix.
            (format!("{MINIMAL}\n[execution]\nclient_id_prefix = \"my-bot\"\n"), "execution.client_id_prefix", "letters and digits"),
            // TC16b: no request may ever be in flight.
            (format!("{MINIMAL}\n[execution]\nmax_in_flight = 0\n"), "execution.max_in_flight", "between 1 and 1024"),
            // TC16c: a cap of zero orders awaiting the exchange would refuse every new order.
            (edit("max_drawdown = \"25\"", "max_drawdown = \"25\"\nmax_pending_orders = 0"), "risk.max_pending_orders", "greater than zero (0 would refuse every new order)"),
            // TC17: negative integer for a u32.
            (edit("half_spread_bps = 10", "half_spread_bps = -1"), "symbols[0].strategy.half_spread_bps", "invalid value"),
            // TC18b: threshold with more than 4 decimals.
            (edit("kind = \"market_maker\"\nhalf_spread_bps = 10\nsize = \"0.001\"\nrequote_bps = 2", "kind = \"imbalance_taker\"\nlevels = 5\nthreshold = \"0.12345\"\ncooldown_ms = 250\nsize = \"0.001\""), "symbols[0].strategy.threshold", "more than 4 decimal places"),
            // TC18c: slippage with market orders makes no sense.
            (edit("kind = \"market_maker\"\nhalf_spread_bps = 10\nsize = \"0.001\"\nrequote_bps = 2", "kind = \"imbalance_taker\"\nlevels = 5\nthreshold = \"0.3\"\ncooldown_ms = 250\nsize = \"0.001\"\norder_style = \"market\"\nslippage_bps = 3"), "symbols[0].strategy.slippage_bps", "applies only"),
            // TC18d: a per-symbol override of zero open orders.
            (edit("max_position = \"0.01\"", "max_position = \"0.01\"\nmax_open_orders = 0"), "symbols[0].max_open_orders", "greater than zero"),
            // TC18: lower-case symbol.
            (edit("symbol = \"BTCUSDT\"", "symbol = \"btcusdt\""), "symbols[0].symbol", "upper-case"),
        ];
        for (i, (text, field, reason)) in cases.iter().enumerate() {
            let err = load(text).expect_err(&format!("TC{i} should fail"));
            let msg = err.to_string();
            assert!(!msg.contains('\n'), "TC{i}: not one line: {msg}");
            assert!(msg.starts_with("config error: "), "TC{i}: {msg}");
            assert_eq!(err.field(), Some(*field), "TC{i}: {msg}");
            assert!(msg.contains(reason), "TC{i}: {msg:?} lacks {reason:?}");
        }
    }

    #[test]
    fn syntax_error_names_line() {
        let err = load("env = \"testnet\"\n[risk\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("config error: test.toml:2:"), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[test]
    fn credentials_and_token_from_env() {
        let env: HashMap<String, String> =
            [(API_KEY_ENV, "k"), (API_SECRET_ENV, "s"), (ADMIN_TOKEN_ENV, "0123456789abcdef0123")]
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect();
        let text = format!("{MINIMAL}\n[admin]\nlisten = \"0.0.0.0:9184\"\n");
        let c = Config::from_toml(&text, Path::new("t.toml"), &env).unwrap();
        assert!(c.credentials.is_some());
        assert!(c.admin.token.is_some());
        let shown = c.to_string();
        assert!(shown.contains("credentials.api_key"), "{shown}");
        assert!(shown.contains("set (from env KESTREL_BINANCE_API_KEY)"), "{shown}");
        assert!(!shown.contains("0123456789abcdef0123"), "token leaked: {shown}");

        // A short token is refused.
        let env: HashMap<String, String> =
            [(ADMIN_TOKEN_ENV.to_owned(), "short".to_owned())].into_iter().collect();
        let err = Config::from_toml(MINIMAL, Path::new("t.toml"), &env).unwrap_err();
        assert!(err.to_string().contains("shorter than 16"), "{err}");

        // Half the credentials is an error naming both.
        let env: HashMap<String, String> =
            [(API_KEY_ENV.to_owned(), "k".to_owned())].into_iter().collect();
        let err = Config::from_toml(MINIMAL, Path::new("t.toml"), &env).unwrap_err();
        assert!(err.to_string().contains("API secret"), "{err}");
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
    }
}
