//! Order vocabulary shared by the engine, the client and the simulator: sides, types, time in
//! force, statuses, and the order request the engine decides.

use crate::{Asset, ClientOrderId, Notional, OrderId, Price, Qty, Symbol, TradeId, UnixNanos};

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Buy the base asset.
    Buy,
    /// Sell the base asset.
    Sell,
}

impl Side {
    /// The other side.
    pub const fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }

    /// +1 for buy, −1 for sell: the sign of the position change.
    pub const fn sign(self) -> i64 {
        match self {
            Side::Buy => 1,
            Side::Sell => -1,
        }
    }

    /// Binance spelling (`BUY`/`SELL`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }
}

/// Order types kestrel sends (SPEC.md §5). Stop orders are not used by the built-in strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderType {
    /// Limit order with a time in force.
    Limit,
    /// Post-only limit: rejected if it would take.
    LimitMaker,
    /// Market order by base quantity or quote amount.
    Market,
}

impl OrderType {
    /// Binance spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            OrderType::Limit => "LIMIT",
            OrderType::LimitMaker => "LIMIT_MAKER",
            OrderType::Market => "MARKET",
        }
    }
}

/// How long a limit order stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeInForce {
    /// Good till cancelled.
    Gtc,
    /// Immediate or cancel: fill what you can, expire the rest.
    Ioc,
    /// Fill or kill: fill completely at once or expire.
    Fok,
}

impl TimeInForce {
    /// Binance spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            TimeInForce::Gtc => "GTC",
            TimeInForce::Ioc => "IOC",
            TimeInForce::Fok => "FOK",
        }
    }
}

/// Order status as kestrel tracks it: Binance's statuses plus the in-flight and unknown states
/// (STYLE.md 2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// Decided and journaled; request in flight, no acknowledgement yet.
    PendingNew,
    /// Acknowledged and resting.
    New,
    /// Some quantity filled, the rest resting.
    PartiallyFilled,
    /// Completely filled (terminal).
    Filled,
    /// Cancel request in flight.
    PendingCancel,
    /// Cancelled (terminal).
    Canceled,
    /// Refused by the exchange (terminal).
    Rejected,
    /// Expired by time in force or self-trade prevention (terminal).
    Expired,
    /// The request timed out or got a 5xx: outcome unknown until queried. Never assume failed.
    Unknown,
}

impl OrderStatus {
    /// True for states after which nothing more can happen to the order.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Filled | Self::Canceled | Self::Rejected | Self::Expired)
    }

    /// True for states where the order may be resting on the exchange (counts as open).
    pub const fn is_open(self) -> bool {
        !self.is_terminal()
    }

    /// Parses Binance's `X`/`status` value. `PENDING_CANCEL` (unused by Binance) maps to
    /// `PendingCancel`; `EXPIRED_IN_MATCH` (self-trade prevention) to `Expired`.
    pub fn from_binance(s: &str) -> Option<Self> {
        Some(match s {
            "NEW" | "PENDING_NEW" => Self::New,
            "PARTIALLY_FILLED" => Self::PartiallyFilled,
            "FILLED" => Self::Filled,
            "CANCELED" => Self::Canceled,
            "PENDING_CANCEL" => Self::PendingCancel,
            "REJECTED" => Self::Rejected,
            "EXPIRED" | "EXPIRED_IN_MATCH" => Self::Expired,
            _ => return None,
        })
    }
}

/// A new order the engine has decided, after risk. The gateway turns it into a signed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderRequest {
    /// Symbol to trade.
    pub symbol: Symbol,
    /// Unique, journal-derived client id (`newClientOrderId`).
    pub client_id: ClientOrderId,
    /// Buy or sell.
    pub side: Side,
    /// Limit, limit maker or market.
    pub kind: OrderType,
    /// Required for limit orders.
    pub time_in_force: Option<TimeInForce>,
    /// Limit price; `None` for market orders.
    pub price: Option<Price>,
    /// Base quantity.
    pub qty: Qty,
    /// When the engine decided it (from the triggering event's local time).
    pub ts_decided: UnixNanos,
}

/// One fill of one of our orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    /// Exchange trade id; with the symbol, unique per fill (journal dedup key).
    pub trade_id: TradeId,
    /// Fill price.
    pub price: Price,
    /// Fill quantity (base).
    pub qty: Qty,
    /// Commission charged for this fill, in `commission_asset` units.
    pub commission: Notional,
    /// Asset the commission was charged in (`N`/`commissionAsset`); `None` when Binance sends
    /// `null` (no commission). The engine needs it to book the fee against base, quote or a
    /// third asset (e.g. BNB) correctly.
    pub commission_asset: Option<Asset>,
    /// Whether we were the maker.
    pub is_maker: bool,
    /// Exchange time of the trade.
    pub ts_exchange: UnixNanos,
}

/// What the exchange says about one of our orders (execution report, REST response or query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderUpdate {
    /// Symbol.
    pub symbol: Symbol,
    /// Our client id.
    pub client_id: ClientOrderId,
    /// Exchange order id, when known.
    pub order_id: Option<OrderId>,
    /// Side.
    pub side: Side,
    /// New status.
    pub status: OrderStatus,
    /// Original quantity.
    pub orig_qty: Qty,
    /// Cumulative filled quantity.
    pub cum_qty: Qty,
    /// Cumulative quote amount filled.
    pub cum_quote: Notional,
    /// The fill this update reports, if it is a trade.
    pub fill: Option<Fill>,
    /// Exchange event time.
    pub ts_exchange: UnixNanos,
    /// Local receive time.
    pub ts_local: UnixNanos,
}
