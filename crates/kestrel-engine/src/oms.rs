//! Order management: the life of each of our orders, from decision to a terminal state.
//!
//! ```text
//!             Place                 ack (New)            fill            fill (cum = orig)
//!  (decided) ──────▶ PendingNew ─────────────▶ New ─────────▶ PartiallyFilled ─────▶ Filled
//!                      │  │                     │  cancel sent       │
//!                      │  │ reject              └──────┬─────────────┘
//!                      │  └────────▶ Rejected          ▼
//!                      │                         PendingCancel ──ack──▶ Canceled
//!                      │ timeout / 5xx                 │ reject / timeout
//!                      └──────────▶ Unknown ◀──────────┘
//!                                    │  engine emits Action::Query (again every ack timeout)
//!                                    └──▶ whatever the query's OrderUpdate says
//! ```
//! `Expired` (IOC/FOK remainder, self-trade prevention) is terminal like `Canceled`.
//!
//! Rules that make duplicate and out-of-order reports harmless:
//! - A terminal order never changes status again.
//! - Status never goes backwards: `PendingNew`/`Unknown` < `New`/`PendingCancel` <
//!   `PartiallyFilled` < terminal. A `PendingCancel` order stays so until the cancel is answered.
//! - The **cumulative quantity is authoritative** for how much filled: the position moves by
//!   `cum_qty − booked_qty` at the quote amount `cum_quote − booked_quote` (exact), whatever
//!   order the reports arrive in, and never by more than the original quantity.
//! - Each trade id's commission is booked **once** (per order), so a duplicated execution report
//!   or a REST response repeating a WebSocket fill books nothing twice.
//! - Terminal orders move to a bounded ring of recently closed orders, so a late report (a fill
//!   after the cancel acknowledgement) still finds its order; memory stays bounded (M13).
//!
//! Exchange error codes interpreted here: `-2013` (order does not exist) in answer to the query
//! of an `Unknown` order means it never reached the exchange ⇒ `Rejected`. Any refusal of a
//! cancel (`-2011`) makes the order `Unknown` and queries it: it most likely filled or was
//! cancelled meanwhile, and only the exchange knows which.

use std::collections::VecDeque;

use kestrel_model::{
    ClientOrderId, InstrumentSpec, Notional, OrderId, OrderStatus, OrderType, OrderUpdate, Price,
    Qty, Side, TimeInForce, TradeId, UnixNanos,
};

use crate::position::{FeeAsset, Position};

/// Binance `-2013`: order does not exist (query answer).
pub const CODE_NO_SUCH_ORDER: i32 = -2013;

/// One of our orders as the engine tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Our id (`newClientOrderId`), the key of every update.
    pub client_id: ClientOrderId,
    /// Exchange id, once an update told us.
    pub order_id: Option<OrderId>,
    /// Side.
    pub side: Side,
    /// Type.
    pub kind: OrderType,
    /// Time in force of limit orders.
    pub time_in_force: Option<TimeInForce>,
    /// Limit price; `None` for market orders.
    pub price: Option<Price>,
    /// Price the funds cap values the unfilled rest at: the limit price, or for a market order
    /// the edge of the risk price band at decision time.
    pub exposure_price: Price,
    /// Original quantity.
    pub orig_qty: Qty,
    /// Highest cumulative filled quantity reported (clamped to `orig_qty`).
    pub cum_qty: Qty,
    /// Current state.
    pub status: OrderStatus,
    /// Event time the engine decided (or adopted) the order.
    pub ts_created: UnixNanos,
    /// Event time of the last local state change; drives the ack timeout.
    pub ts_status: UnixNanos,
    /// Quantity already booked into the position.
    booked_qty: Qty,
    /// Quote amount already booked for `booked_qty`.
    booked_quote: Notional,
    /// Trade ids whose commission was booked (dedup key; few per order).
    trade_ids: Vec<TradeId>,
    /// Event time of the last query sent while `Unknown`.
    ts_query: UnixNanos,
}

impl Order {
    /// A freshly decided order, `PendingNew`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn pending(
        client_id: ClientOrderId,
        side: Side,
        kind: OrderType,
        time_in_force: Option<TimeInForce>,
        price: Option<Price>,
        exposure_price: Price,
        qty: Qty,
        now: UnixNanos,
    ) -> Self {
        Self {
            client_id,
            order_id: None,
            side,
            kind,
            time_in_force,
            price,
            exposure_price,
            orig_qty: qty,
            cum_qty: Qty::ZERO,
            status: OrderStatus::PendingNew,
            ts_created: now,
            ts_status: now,
            booked_qty: Qty::ZERO,
            booked_quote: Notional::ZERO,
            trade_ids: Vec::new(),
            ts_query: UnixNanos::ZERO,
        }
    }

    /// Unfilled quantity.
    pub fn remaining(&self) -> Qty {
        self.orig_qty.saturating_sub(self.cum_qty).max(Qty::ZERO)
    }

    /// True when the order may be resting and a strategy may still count on it: open and no
    /// cancel in flight.
    pub fn is_live_quote(&self) -> bool {
        self.status.is_open() && self.status != OrderStatus::PendingCancel
    }
}

/// An order found open at reconciliation, to be tracked as if the engine had placed it (S15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdoptedOrder {
    /// Symbol.
    pub symbol: kestrel_model::Symbol,
    /// Client id as the exchange reports it.
    pub client_id: ClientOrderId,
    /// Exchange id.
    pub order_id: OrderId,
    /// Side.
    pub side: Side,
    /// Type.
    pub kind: OrderType,
    /// Time in force.
    pub time_in_force: Option<TimeInForce>,
    /// Limit price (`None` for market).
    pub price: Option<Price>,
    /// Original quantity.
    pub orig_qty: Qty,
    /// Already filled: assumed to be in the position set at start-up, so not booked again.
    pub cum_qty: Qty,
    /// Quote amount of `cum_qty` (`cummulativeQuoteQty`).
    pub cum_quote: Notional,
    /// `New` or `PartiallyFilled` (anything else is not open and is ignored).
    pub status: OrderStatus,
}

/// What the engine must do after the OMS processed an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Followup {
    /// Nothing.
    None,
    /// Send `Action::Query` for the order.
    Query,
}

/// Result of applying an [`OrderUpdate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpdateResult {
    /// Applied to a live or recently closed order; `position_changed` if a fill or fee was
    /// booked.
    Applied {
        /// Whether PnL must be recomputed.
        position_changed: bool,
    },
    /// No order of ours with that client id (another bot's, or older than the closed ring).
    UnknownOrder,
}

/// Status rank: status never moves to a lower rank.
fn rank(s: OrderStatus) -> u8 {
    match s {
        OrderStatus::PendingNew | OrderStatus::Unknown => 0,
        OrderStatus::New | OrderStatus::PendingCancel => 1,
        OrderStatus::PartiallyFilled => 2,
        OrderStatus::Filled
        | OrderStatus::Canceled
        | OrderStatus::Rejected
        | OrderStatus::Expired => 3,
    }
}

/// All orders of the engine: live ones per symbol, recently closed ones in a bounded ring.
#[derive(Debug)]
pub(crate) struct Oms {
    /// Live (non-terminal) orders per symbol index, in placement order. Small: bounded by
    /// `max_open_orders`.
    live: Vec<Vec<Order>>,
    /// Recently closed orders with their symbol index, oldest first.
    closed: VecDeque<(usize, Order)>,
    /// Capacity of `closed`.
    closed_cap: usize,
}

impl Oms {
    /// Empty books of orders for `n_symbols` symbols, remembering `closed_cap` closed orders.
    pub(crate) fn new(n_symbols: usize, closed_cap: usize) -> Self {
        Self {
            live: (0..n_symbols).map(|_| Vec::with_capacity(8)).collect(),
            closed: VecDeque::with_capacity(closed_cap),
            closed_cap,
        }
    }

    /// Live orders of a symbol.
    pub(crate) fn live(&self, sym: usize) -> &[Order] {
        &self.live[sym]
    }

    /// Starts tracking a new (pending or adopted) order.
    pub(crate) fn insert(&mut self, sym: usize, order: Order) {
        self.live[sym].push(order);
    }

    /// Builds a tracked order from a reconciliation result.
    pub(crate) fn adopt(a: &AdoptedOrder, now: UnixNanos) -> Order {
        let mut o = Order::pending(
            a.client_id,
            a.side,
            a.kind,
            a.time_in_force,
            a.price,
            // An adopted market order (rare: it would have filled) has no price to value its
            // rest at; it is counted at zero until its terminal report arrives.
            a.price.unwrap_or(Price::ZERO),
            a.orig_qty,
            now,
        );
        o.order_id = Some(a.order_id);
        o.cum_qty = a.cum_qty.min(a.orig_qty);
        o.booked_qty = o.cum_qty;
        o.booked_quote = a.cum_quote;
        o.status =
            if o.cum_qty.is_positive() { OrderStatus::PartiallyFilled } else { OrderStatus::New };
        o
    }

    fn find_live(&mut self, sym: usize, id: &ClientOrderId) -> Option<usize> {
        self.live[sym].iter().position(|o| o.client_id == *id)
    }

    fn find_closed(&mut self, sym: usize, id: &ClientOrderId) -> Option<&mut Order> {
        self.closed.iter_mut().rev().find(|(s, o)| *s == sym && o.client_id == *id).map(|(_, o)| o)
    }

    /// Moves the order at `idx` to the closed ring if it became terminal.
    fn retire_if_terminal(&mut self, sym: usize, idx: usize) {
        if self.live[sym][idx].status.is_terminal() {
            let o = self.live[sym].remove(idx);
            if self.closed.len() == self.closed_cap {
                self.closed.pop_front();
            }
            if self.closed_cap > 0 {
                self.closed.push_back((sym, o));
            }
        }
    }

    /// Applies an execution report / REST answer / query result.
    pub(crate) fn on_update(
        &mut self,
        sym: usize,
        upd: &OrderUpdate,
        spec: &InstrumentSpec,
        pos: &mut Position,
        now: UnixNanos,
    ) -> UpdateResult {
        if let Some(idx) = self.find_live(sym, &upd.client_id) {
            let order = &mut self.live[sym][idx];
            let changed = book_fills(order, upd, spec, pos);
            advance_status(order, upd, now);
            self.retire_if_terminal(sym, idx);
            return UpdateResult::Applied { position_changed: changed };
        }
        if let Some(order) = self.find_closed(sym, &upd.client_id) {
            // Terminal already: only a late fill can still matter.
            let changed = book_fills(order, upd, spec, pos);
            return UpdateResult::Applied { position_changed: changed };
        }
        UpdateResult::UnknownOrder
    }

    /// The exchange refused a request about `id` (see the module docs for the codes).
    pub(crate) fn on_rejected(
        &mut self,
        sym: usize,
        id: &ClientOrderId,
        code: i32,
        now: UnixNanos,
    ) -> Option<Followup> {
        let Some(idx) = self.find_live(sym, id) else {
            // A refused cancel of an order that has since filled or been cancelled: known,
            // terminal, nothing to do.
            return self.find_closed(sym, id).map(|_| Followup::None);
        };
        let order = &mut self.live[sym][idx];
        let follow = match order.status {
            OrderStatus::PendingNew => {
                order.status = OrderStatus::Rejected;
                Followup::None
            }
            OrderStatus::Unknown if code == CODE_NO_SUCH_ORDER => {
                order.status = OrderStatus::Rejected;
                Followup::None
            }
            // Still unknown; the timer re-queries.
            OrderStatus::Unknown => Followup::None,
            _ => {
                order.status = OrderStatus::Unknown;
                order.ts_query = now;
                Followup::Query
            }
        };
        order.ts_status = now;
        self.retire_if_terminal(sym, idx);
        Some(follow)
    }

    /// A request's outcome is unknown: the order becomes `Unknown` and is queried.
    pub(crate) fn on_unknown(
        &mut self,
        sym: usize,
        id: &ClientOrderId,
        now: UnixNanos,
    ) -> Option<Followup> {
        let Some(idx) = self.find_live(sym, id) else {
            // Already terminal (a late timeout report): its final state is known.
            return self.find_closed(sym, id).map(|_| Followup::None);
        };
        let order = &mut self.live[sym][idx];
        order.status = OrderStatus::Unknown;
        order.ts_status = now;
        order.ts_query = now;
        Some(Followup::Query)
    }

    /// Marks a cancel as sent; `false` if the order can't be cancelled now (not acknowledged
    /// yet, already cancelling, or unknown).
    pub(crate) fn mark_cancel(&mut self, sym: usize, id: &ClientOrderId, now: UnixNanos) -> bool {
        let Some(idx) = self.find_live(sym, id) else { return false };
        let order = &mut self.live[sym][idx];
        if matches!(order.status, OrderStatus::New | OrderStatus::PartiallyFilled) {
            order.status = OrderStatus::PendingCancel;
            order.ts_status = now;
            true
        } else {
            false
        }
    }

    /// Marks every acknowledged order of a symbol as cancelling (a cancel-all was sent).
    /// `PendingNew` ones are included: the cancel-all may reach them; if not, the ack timeout
    /// turns them `Unknown` and the query tells the truth.
    pub(crate) fn mark_cancel_all(&mut self, sym: usize, now: UnixNanos) {
        for o in &mut self.live[sym] {
            if matches!(
                o.status,
                OrderStatus::New | OrderStatus::PartiallyFilled | OrderStatus::PendingNew
            ) {
                o.status = OrderStatus::PendingCancel;
                o.ts_status = now;
            }
        }
    }

    /// Ack timeouts: pending orders without an answer become `Unknown`; `Unknown` orders are
    /// re-queried. Calls `query` for each order to query.
    pub(crate) fn on_timer(
        &mut self,
        sym: usize,
        now: UnixNanos,
        timeout_ns: u64,
        mut query: impl FnMut(ClientOrderId),
    ) {
        for o in &mut self.live[sym] {
            match o.status {
                OrderStatus::PendingNew | OrderStatus::PendingCancel
                    if now.0.saturating_sub(o.ts_status.0) >= timeout_ns =>
                {
                    o.status = OrderStatus::Unknown;
                    o.ts_status = now;
                    o.ts_query = now;
                    query(o.client_id);
                }
                OrderStatus::Unknown if now.0.saturating_sub(o.ts_query.0) >= timeout_ns => {
                    o.ts_query = now;
                    query(o.client_id);
                }
                _ => {}
            }
        }
    }

    /// Number of closed orders remembered (for tests).
    #[cfg(test)]
    pub(crate) fn closed_len(&self) -> usize {
        self.closed.len()
    }
}

/// Books what the update adds to the position; returns whether anything was booked.
fn book_fills(
    order: &mut Order,
    upd: &OrderUpdate,
    spec: &InstrumentSpec,
    pos: &mut Position,
) -> bool {
    let mut changed = false;
    // The fee of a trade id not seen before; its quantity is booked below from cum_qty.
    let new_fill = upd.fill.filter(|f| !order.trade_ids.contains(&f.trade_id));
    if let Some(f) = new_fill {
        order.trade_ids.push(f.trade_id);
    }
    let cum = upd.cum_qty.min(order.orig_qty);
    let delta = cum.saturating_sub(order.booked_qty);
    let (fee, fee_asset) = match new_fill {
        Some(f) if !f.commission.is_zero() => (f.commission, fee_asset(spec, f.commission_asset)),
        _ => (Notional::ZERO, FeeAsset::None),
    };
    if delta.is_positive() {
        let by_cum = upd.cum_quote.saturating_sub(order.booked_quote);
        let quote = match new_fill {
            // The usual case: one report, one fill, exactly the new quantity.
            Some(f) if f.qty == delta => Notional::of(f.price, delta),
            // Several fills folded into one cumulative step: the quote difference is exact.
            _ if by_cum.mantissa() > 0 => by_cum,
            // No usable cumulative quote: value at the best price we know.
            _ => {
                let px = new_fill.map(|f| f.price).or(order.price).unwrap_or(order.exposure_price);
                Notional::of(px, delta)
            }
        };
        pos.apply_fill(order.side, delta, quote, fee, fee_asset);
        order.booked_qty = cum;
        order.booked_quote = order.booked_quote.saturating_add(quote);
        changed = true;
    } else if fee_asset != FeeAsset::None {
        // Quantity already booked from a later report: only the fee is new.
        pos.apply_fill(order.side, Qty::ZERO, Notional::ZERO, fee, fee_asset);
        changed = true;
    }
    if cum > order.cum_qty {
        order.cum_qty = cum;
    }
    changed
}

/// Moves the status forward per the rank rules.
fn advance_status(order: &mut Order, upd: &OrderUpdate, now: UnixNanos) {
    if let Some(id) = upd.order_id {
        order.order_id = Some(id);
    }
    let before = order.status;
    let next = if upd.status.is_terminal() {
        upd.status
    } else if order.cum_qty >= order.orig_qty && order.orig_qty.is_positive() {
        OrderStatus::Filled
    } else if before == OrderStatus::PendingCancel {
        // The cancel is still in flight; only its answer (or a timeout) moves us on.
        before
    } else if order.cum_qty.is_positive() {
        OrderStatus::PartiallyFilled
    } else if upd.status == OrderStatus::PendingCancel {
        OrderStatus::PendingCancel
    } else {
        OrderStatus::New
    };
    if rank(next) >= rank(before) || before == OrderStatus::Unknown {
        if next != before {
            order.ts_status = now;
        }
        order.status = next;
    }
}

/// Classifies a commission asset relative to the symbol.
fn fee_asset(spec: &InstrumentSpec, asset: Option<kestrel_model::Asset>) -> FeeAsset {
    match asset {
        None => FeeAsset::None,
        Some(a) if a == spec.base => FeeAsset::Base,
        Some(a) if a == spec.quote => FeeAsset::Quote,
        Some(a) => FeeAsset::Other(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> ClientOrderId {
        ClientOrderId::new(&format!("t-{n}")).unwrap()
    }

    #[test]
    fn closed_ring_is_bounded_and_rejected_orders_retire() {
        let mut oms = Oms::new(1, 2);
        for n in 0..5 {
            let o = Order::pending(
                id(n),
                Side::Buy,
                OrderType::Limit,
                Some(TimeInForce::Gtc),
                Some(Price::from_mantissa(1)),
                Price::from_mantissa(1),
                Qty::from_mantissa(1),
                UnixNanos(1),
            );
            oms.insert(0, o);
            assert_eq!(oms.on_rejected(0, &id(n), -2010, UnixNanos(2)), Some(Followup::None));
        }
        assert!(oms.live(0).is_empty());
        assert_eq!(oms.closed_len(), 2);
        // A reject for an order we never had is reported as unknown.
        assert_eq!(oms.on_rejected(0, &id(99), -2010, UnixNanos(3)), None);
    }
}
