//! kestrel's trading engine: strategies, risk, order management and positions, as one
//! synchronous, deterministic state machine (STYLE.md 2.5).
//!
//! Owns: book views, orders, positions and PnL, risk state (halt, kill switch, rate limiter).
//! Consumes one closed [`kestrel_model::Event`] enum and emits [`kestrel_model::Action`]s through
//! [`Engine::handle`]; never calls back into other components, never does I/O, never reads the
//! wall clock (time comes from events), never allocates per book event on the hot path.
//! The binary runs it on its own OS thread and publishes [`EngineSnapshot`]s.
//!
//! Must not know: Binance wire formats, HTTP/WebSocket, tokio, serde, metrics registries.
//!
//! Layout:
//! - [`engine`]: event dispatch, intent → risk → action, kill switch, snapshot.
//! - [`strategy`]: the [`Strategy`] trait, [`ImbalanceTaker`], [`MarketMaker`].
//! - [`risk`]: pre-trade checks in a fixed order, [`RiskDecision`] / [`RejectReason`].
//! - [`oms`]: the order state machine (incl. `Unknown` → `Query`), idempotent fill booking.
//! - [`position`]: average-cost positions, realised/unrealised PnL with fees.
//! - [`client_id`]: journal-continued `<prefix>-<seq>` client order ids.
//! - [`config`]: plain config structs (the binary maps TOML onto them).
//! - [`snapshot`]: the published [`EngineSnapshot`].

#![warn(missing_docs)]

pub mod client_id;
pub mod config;
pub mod engine;
pub mod oms;
pub mod position;
pub mod risk;
pub mod snapshot;
pub mod strategy;

pub use client_id::{ClientIdError, ClientIdGen};
pub use config::{
    ConfigError, EngineConfig, MakerParams, RiskLimits, StrategyConfig, SymbolConfig,
    TakerOrderStyle, TakerParams,
};
pub use engine::{Engine, EngineError};
pub use oms::{AdoptedOrder, Order};
pub use position::{FeeAsset, Position};
pub use risk::{RejectReason, RiskDecision};
pub use snapshot::{EngineSnapshot, OrderView, SymbolSnapshot};
pub use strategy::{ImbalanceTaker, Intent, MarketMaker, MarketView, OrderIntent, Strategy};
