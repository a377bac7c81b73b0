//! The engine's closed input [`Event`] and output [`Action`] enums (STYLE.md 2.5).
//!
//! Every input to the engine is an `Event`; every effect it wants is an `Action` it pushes into
//! the caller's buffer. All variants are `Copy` and fixed size, so the engine's hot path neither
//! allocates nor calls back into other components.

use crate::{
    Asset, BookTop, ClientOrderId, Notional, OrderRequest, OrderUpdate, Price, Qty, Side, Symbol,
    TradeId, UnixNanos,
};

/// A public trade print (`<sym>@trade`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicTrade {
    /// Symbol.
    pub symbol: Symbol,
    /// Exchange trade id.
    pub trade_id: TradeId,
    /// Trade price.
    pub price: Price,
    /// Trade quantity.
    pub qty: Qty,
    /// Aggressor side (Binance's `m` = buyer is maker ⇒ aggressor sold).
    pub aggressor: Side,
    /// Exchange event time.
    pub ts_exchange: UnixNanos,
    /// Local receive time.
    pub ts_local: UnixNanos,
}

/// A balance as the exchange reports it (`outboundAccountPosition`, `GET /account`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    /// Asset.
    pub asset: Asset,
    /// Available.
    pub free: Notional,
    /// Locked in open orders.
    pub locked: Notional,
    /// Exchange time.
    pub ts_exchange: UnixNanos,
}

/// An operator command, from the admin API or CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Stop placing orders (strategies keep computing signals).
    Halt,
    /// Resume after a halt (not after a kill switch trip without operator action).
    Resume,
    /// Cancel every open order, on one symbol or all.
    CancelAll {
        /// `None` = all symbols.
        symbol: Option<Symbol>,
    },
}

/// Everything the engine reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A new top-of-book view (after a delta, a snapshot, or a state change such as `Stale`).
    Book(BookTop),
    /// A public trade.
    Trade(PublicTrade),
    /// One of our orders changed (execution report, REST response, query result).
    Order(OrderUpdate),
    /// The exchange refused one of our requests outright (e.g. `-2010`, `-1013`).
    OrderRejected {
        /// Symbol.
        symbol: Symbol,
        /// Our client id.
        client_id: ClientOrderId,
        /// Binance error code.
        code: i32,
        /// Local time of the response.
        ts_local: UnixNanos,
    },
    /// A request's outcome is unknown (timeout, 5xx): the order is `Unknown` until queried.
    OrderUnknown {
        /// Symbol.
        symbol: Symbol,
        /// Our client id.
        client_id: ClientOrderId,
        /// Local time the timeout was observed.
        ts_local: UnixNanos,
    },
    /// A balance changed.
    Balance(Balance),
    /// A periodic tick carrying the current time (drives cooldowns, requotes, timeouts).
    Timer(UnixNanos),
    /// An operator command.
    Command(Command),
}

/// Everything the engine can ask the outside world to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Place a new order (already risk-checked and journaled as an intent by the caller).
    Place(OrderRequest),
    /// Cancel one order by client id.
    Cancel {
        /// Symbol.
        symbol: Symbol,
        /// Client id of the order to cancel.
        client_id: ClientOrderId,
    },
    /// Cancel every open order on a symbol.
    CancelAll {
        /// Symbol.
        symbol: Symbol,
    },
    /// Query an order whose outcome is unknown.
    Query {
        /// Symbol.
        symbol: Symbol,
        /// Client id to query.
        client_id: ClientOrderId,
    },
}
