//! Binance Spot-compatible exchange simulator (see ARCHITECTURE.md).
//!
//! `kestrel-sim` serves, on one port, the REST API (`/api/v3/...`), the market streams
//! (`/ws/<stream>`, `/stream?streams=a/b`) and the WebSocket API (`/ws-api/v3`) over a matching
//! engine and a seeded synthetic market, with fault injection for testing clients. It is an
//! *independent* implementation of the protocol: it never imports `kestrel-binance`, and both are
//! checked against the same doc vectors in `testdata/binance/`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kestrel_sim::SimError> {
//! let mut cfg = kestrel_sim::SimConfig::default_market();
//! cfg.manual_market = true; // deterministic: the market moves only when stepped
//! let sim = kestrel_sim::Sim::start(cfg, "127.0.0.1:0").await?;
//! let rest = sim.rest_url(); // http://127.0.0.1:PORT
//! sim.step_market(10);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Faithful to Binance (SPEC.md)
//! - Field names and shapes of every REST body, stream event, WS API envelope and user-data
//!   event (checked against the doc vectors); decimals as 8-digit strings.
//! - Depth diffs: update ids are contiguous across `<sym>@depth@100ms` / `<sym>@depth`, and
//!   `U`/`u` continue exactly from the REST snapshot's `lastUpdateId` (SPEC.md §3).
//! - Signing: REST HMAC-SHA256 over query + body exactly as sent (non-ASCII unencoded payloads
//!   → -1022), Ed25519 (base64); WS API sorted-params rule; `timestamp`/`recvWindow` → -1021.
//! - Error codes and HTTP statuses: -1003 (429/418 with `Retry-After`), -1013
//!   `Filter failure: <TYPE>`, -1015, -1021, -1022, -1100, -1102, -1106, -1111, -1121,
//!   -1127/-1128 (myTrades window and parameter combinations), -2010,
//!   -2011, -2013, -2014, -2015. Body always `{"code","msg"}`.
//! - Matching: price-time priority; LIMIT GTC/IOC/FOK, LIMIT_MAKER (rejected if it would take),
//!   MARKET by `quantity` or `quoteOrderQty`; partial fills; commission in the received asset;
//!   locked balances; self-trade prevention NONE/EXPIRE_TAKER/EXPIRE_MAKER/EXPIRE_BOTH (symbol
//!   default `EXPIRE_MAKER`); executionReport (NEW, TRADE, CANCELED, EXPIRED,
//!   TRADE_PREVENTION) and outboundAccountPosition for every change.
//! - Rate limits: request weight per IP per minute, orders per account per 10 s / day,
//!   `X-MBX-USED-WEIGHT-1M`, `X-MBX-ORDER-COUNT-10S`/`-1D`; WS API `rateLimits`.
//! - Streams: server pings, pong deadline, 5 msgs/s incoming limit, 1024 streams, 24 h lifetime
//!   (all configurable), `serverShutdown` before a planned close.
//!
//! # Simplified
//! - One market per process clock; weights are charged on arrival (successful order calls cost
//!   1, not 0 as on mainnet since 2026-04-02). Fixed windows, all from one IP counter.
//! - No stop, iceberg, OCO/OTO, amend, cancelReplace, SBE, RSA keys, klines or tickers beyond
//!   `ticker/bookTicker`/`ticker/price`/`avgPrice`; `order.place` and `order/test` reject
//!   other types with -1116. The reference price for filters is the last trade (else the mid).
//! - The background liquidity is a per-symbol ladder of `levels` prices a side around the mid,
//!   outside the order book: depth shows users + ladder per price, and at one price user
//!   orders are matched first. A step keeps the ladder's quantities where the mid's move did
//!   not shift it, re-draws one level a side, and refills levels emptied by trades.
//! - Depth diffs are published once per market step (and every `depth_slow_every_steps` for
//!   `@depth`), so in manual mode an order's book change appears on the next `step_market`.
//! - The listenKey REST endpoints (`/api/v3/userDataStream`) and `userDataStream.start/ping/stop`
//!   answer HTTP 410 with `{"code":-1000,...}`: they were removed from mainnet on 2026-02-20.
//! - `session.logon` accepts Ed25519 keys only (-1002 otherwise).
//!
//! # Layout
//! `config` (TOML) → `server` (axum router, [`Sim`], [`SimHandle`]) → `rest`, `ws_streams`,
//! `ws_api` (protocol edges) → `auth`, `rate_limit`, `faults` → `exchange` (books, matching,
//! accounts, synthetic market; synchronous, one mutex) → `publish` (stream keys, subscription
//! interest, hand-written stream JSON) and `wire` (serde types). [`OfflineMarket`] runs the
//! exchange and its market without a server (benchmarks, tests).

mod auth;
mod clock;
pub mod config;
mod error;
mod exchange;
pub mod faults;
mod offline;
mod publish;
mod rate_limit;
mod rest;
mod server;
pub mod wire;
mod ws_api;
mod ws_streams;

pub use config::{
    AccountConfig, ApiKeyConfig, LimitsConfig, MarketRates, SimConfig, SymbolConfig, WsConfig,
};
pub use error::{ApiError, SimError};
pub use faults::{ConnectionInfo, Fault, FaultError, SimStats};
pub use offline::OfflineMarket;
pub use server::{Sim, SimHandle};
