//! The [`Strategy`] trait and the two built-in strategies.
//!
//! A strategy sees a read-only [`MarketView`] of one symbol and pushes [`Intent`]s; it never
//! touches orders, risk or the outside world. The engine turns each `Place` intent into an order
//! only if risk approves it, and counts every call that produced at least one intent as one
//! *signal* for that symbol and strategy.

mod imbalance;
mod market_maker;

pub use imbalance::ImbalanceTaker;
pub use market_maker::MarketMaker;

use std::fmt;

use kestrel_model::{
    BookTop, ClientOrderId, InstrumentSpec, OrderType, Price, PublicTrade, Qty, Side, Symbol,
    TimeInForce, UnixNanos,
};

use crate::oms::Order;

/// What a strategy sees when it is asked to decide. Everything is borrowed from the engine.
#[derive(Debug, Clone, Copy)]
pub struct MarketView<'a> {
    /// The symbol.
    pub symbol: Symbol,
    /// Current event time.
    pub now: UnixNanos,
    /// Latest book view (may be stale: check [`BookTop::is_tradeable`]).
    pub book: &'a BookTop,
    /// Event time of the latest book view (for age-based staleness).
    pub book_updated: UnixNanos,
    /// Current position in base units.
    pub position: Qty,
    /// The symbol's configured position limit (for inventory skew).
    pub max_position: Qty,
    /// Our live orders on the symbol, oldest first.
    pub open_orders: &'a [Order],
    /// Exchange filters (tick and step for rounding).
    pub spec: &'a InstrumentSpec,
}

/// An order a strategy would like to place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderIntent {
    /// Side.
    pub side: Side,
    /// Type.
    pub kind: OrderType,
    /// Time in force (limit orders).
    pub time_in_force: Option<TimeInForce>,
    /// Limit price; `None` for market. Risk rounds it to the tick.
    pub price: Option<Price>,
    /// Base quantity; risk rounds it down to the step.
    pub qty: Qty,
}

/// One decision of a strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Place an order (subject to risk).
    Place(OrderIntent),
    /// Cancel one of our orders (never blocked by risk).
    Cancel(ClientOrderId),
    /// Cancel every order on the symbol.
    CancelAll,
}

/// A trading strategy for one symbol. Implementations must be deterministic functions of the
/// views they are given (no clock, no randomness, no I/O), so replays reproduce decisions.
pub trait Strategy: fmt::Debug + Send {
    /// Stable name, used as a metric label and in the snapshot.
    fn name(&self) -> &'static str;

    /// A new book view arrived.
    fn on_book(&mut self, view: &MarketView<'_>, out: &mut Vec<Intent>);

    /// Time passed (periodic timer); for cooldowns and staleness.
    fn on_timer(&mut self, view: &MarketView<'_>, out: &mut Vec<Intent>) {
        let _ = (view, out);
    }

    /// A public trade printed on the symbol.
    fn on_trade(&mut self, trade: &PublicTrade, view: &MarketView<'_>, out: &mut Vec<Intent>) {
        let _ = (trade, view, out);
    }
}

/// A strategy that never decides anything ([`crate::config::StrategyConfig::Passive`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Passive;

impl Strategy for Passive {
    fn name(&self) -> &'static str {
        "passive"
    }

    fn on_book(&mut self, _view: &MarketView<'_>, _out: &mut Vec<Intent>) {}
}

/// `price × bps / 10 000` as a price offset, truncated towards zero (exact integer math; i64
/// fast path, i128 only for prices beyond ~900 billion units × bps).
#[inline]
pub(crate) fn bps_of(price: Price, bps: i64) -> Price {
    match price.mantissa().checked_mul(bps) {
        Some(m) => Price::from_mantissa(m / 10_000),
        None => {
            let m = i128::from(price.mantissa()) * i128::from(bps) / 10_000;
            Price::from_mantissa(i64::try_from(m).unwrap_or(if m < 0 {
                i64::MIN + 1
            } else {
                i64::MAX
            }))
        }
    }
}
