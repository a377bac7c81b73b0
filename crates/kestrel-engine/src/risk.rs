//! Pre-trade risk (M5): every order a strategy proposes passes these checks, in this order, and
//! the first failure rejects it with a [`RejectReason`] (a value, counted per reason):
//!
//! 1. **Kill switch** tripped ⇒ `kill_switch`; 2. operator **halt** ⇒ `halted`.
//! 3. **Stale book** (not `Synced`, a side missing, or crossed) ⇒ `book_stale`.
//! 4. **REST fallback** source while `allow_rest_fallback` is off ⇒ `rest_fallback`.
//! 5. **Exchange filters**: the price is rounded to the tick (buy down, sell up) and the
//!    quantity down to the step, then [`InstrumentSpec::check`] runs with mid as the average
//!    price ⇒ `filter_<name>` (e.g. `filter_notional` for below-minimum notional).
//! 6. **Price band**: a limit price more than `price_band_bps` from mid ⇒ `price_band`.
//! 7. **Max open orders** per symbol (every non-terminal order counts, `Unknown` included)
//!    ⇒ `max_open_orders`.
//! 8. **Max pending orders**, across all symbols: at most `max_pending_orders` orders may be
//!    decided (a `Place` action emitted) and not yet answered by the exchange (`PendingNew`);
//!    one more ⇒ `max_pending_orders`. When the journal or the exchange is slow, new orders
//!    are refused here rather than queued behind the execution gateway's in-flight requests,
//!    where they would reach the exchange on stale prices. The count is derived from the order
//!    states on every check ([`pending_new`]), so no path can leak a slot: an ack, a fill, a
//!    reject, an expiry, an unknown outcome (gateway timeout, `OrderUnknown`, ack timeout) or a
//!    cancel-all each move the order out of `PendingNew`, and orders adopted at reconciliation
//!    are never `PendingNew`.
//! 9. **Max position**, worst case: position plus every open buy (or minus every open sell)
//!    plus this order must stay within `±max_position` ⇒ `max_position`.
//! 10. **Funds cap**: total worst-case exposure after this order must stay `<= funds`
//!     ⇒ `funds_cap` (see [`symbol_exposure`]).
//! 11. **Order rate**: a token bucket on event time, refilled at `orders_per_sec` up to
//!     `order_burst` ⇒ `rate_limit`. Last, so only approved orders spend a token.
//!
//! Cheap, state-free checks come first; checks that depend on open orders next; the rate
//! limit, the only check with a side effect, last. Cancels never pass through these checks:
//! no limit here (halt and kill switch included) can keep an order from being cancelled.
//!
//! The **drawdown kill switch** is not a per-order check: the engine evaluates it whenever PnL
//! changes (fills, marks) and, when realised + unrealised PnL since start (or since the last
//! operator `Resume`) falls below `-max_drawdown`, halts and emits `CancelAll` for every symbol.

use kestrel_model::{
    BookSource, BookTop, FilterViolation, InstrumentSpec, Notional, OrderCheck, OrderStatus,
    OrderType, Price, Qty, Side, UnixNanos,
};

use crate::config::RiskLimits;
use crate::oms::Order;

/// The outcome of the pre-trade checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskDecision {
    /// The order may go out (with the rounded price and quantity).
    Approve,
    /// The order is refused.
    Reject(RejectReason),
}

/// Why risk refused an order. [`RejectReason::as_str`] is the stable metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The drawdown kill switch is tripped.
    KillSwitch,
    /// An operator halted trading.
    Halted,
    /// The book is stale, one-sided or crossed.
    BookStale,
    /// The book comes from the REST fallback and trading on it is disabled.
    RestFallback,
    /// An exchange filter would reject the order.
    Filter(FilterViolation),
    /// The limit price is too far from mid.
    PriceBand,
    /// Too many open orders on the symbol.
    MaxOpenOrders,
    /// Too many orders (all symbols) decided but not yet answered by the exchange.
    MaxPendingOrders,
    /// The worst-case position would exceed the limit.
    MaxPosition,
    /// The worst-case exposure would exceed the funds cap.
    FundsCap,
    /// The order-rate token bucket is empty.
    RateLimit,
    /// The client id sequence is exhausted (never in practice; refused rather than reused).
    IdsExhausted,
}

impl RejectReason {
    /// Every label [`RejectReason::as_str`] can return, in [`RejectReason::index`] order (for
    /// pre-registering metric series and for the snapshot's counters).
    pub const ALL: [&'static str; 20] = [
        "kill_switch",
        "halted",
        "book_stale",
        "rest_fallback",
        "filter_price_filter",
        "filter_percent_price",
        "filter_percent_price_by_side",
        "filter_lot_size",
        "filter_market_lot_size",
        "filter_min_notional",
        "filter_notional",
        "filter_max_num_orders",
        "filter_missing_price",
        "price_band",
        "max_open_orders",
        "max_position",
        "funds_cap",
        "rate_limit",
        "ids_exhausted",
        "max_pending_orders",
    ];

    /// Stable snake_case label for metrics (`kestrel_risk_rejections_total{reason}`).
    pub const fn as_str(self) -> &'static str {
        Self::ALL[self.index()]
    }

    /// Position of this reason in [`RejectReason::ALL`].
    pub const fn index(self) -> usize {
        match self {
            Self::KillSwitch => 0,
            Self::Halted => 1,
            Self::BookStale => 2,
            Self::RestFallback => 3,
            Self::Filter(v) => match v {
                FilterViolation::PriceFilter(_) => 4,
                FilterViolation::PercentPrice(_) => 5,
                FilterViolation::PercentPriceBySide(_) => 6,
                FilterViolation::LotSize(_) => 7,
                FilterViolation::MarketLotSize(_) => 8,
                FilterViolation::MinNotional => 9,
                FilterViolation::Notional(_) => 10,
                FilterViolation::MaxNumOrders => 11,
                FilterViolation::MissingPrice => 12,
            },
            Self::PriceBand => 13,
            Self::MaxOpenOrders => 14,
            Self::MaxPosition => 15,
            Self::FundsCap => 16,
            Self::RateLimit => 17,
            Self::IdsExhausted => 18,
            // Appended, not inserted: the indices of the older labels stay put.
            Self::MaxPendingOrders => 19,
        }
    }
}

/// A token bucket driven by event time, so replays decide exactly as the live run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    /// Tokens × 1e9 (nano-tokens), so refill is exact integer math.
    level: u64,
    /// Maximum of `level`.
    capacity: u64,
    /// Nano-tokens added per nanosecond of event time (= tokens per second).
    rate_per_sec: u64,
    /// Event time of the last refill.
    last: UnixNanos,
}

const NANO: u64 = 1_000_000_000;

impl TokenBucket {
    /// A full bucket of `burst` tokens refilled at `per_sec` tokens per second.
    pub fn new(per_sec: u32, burst: u32) -> Self {
        let capacity = u64::from(burst).saturating_mul(NANO);
        Self { level: capacity, capacity, rate_per_sec: u64::from(per_sec), last: UnixNanos::ZERO }
    }

    fn refill(&mut self, now: UnixNanos) {
        if self.last == UnixNanos::ZERO {
            self.last = now;
        }
        let elapsed = now.0.saturating_sub(self.last.0);
        self.level = self.level.saturating_add(elapsed.saturating_mul(self.rate_per_sec));
        self.level = self.level.min(self.capacity);
        if now > self.last {
            self.last = now;
        }
    }

    /// Whether a token is available at `now` (refills first, spends nothing).
    pub fn has_token(&mut self, now: UnixNanos) -> bool {
        self.refill(now);
        self.level >= NANO
    }

    /// Spends one token if available.
    pub fn try_take(&mut self, now: UnixNanos) -> bool {
        if self.has_token(now) {
            self.level -= NANO;
            true
        } else {
            false
        }
    }
}

/// An order a strategy proposes, before rounding and checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposed {
    /// Side.
    pub side: Side,
    /// Type.
    pub kind: OrderType,
    /// Time in force for limit orders.
    pub time_in_force: Option<kestrel_model::TimeInForce>,
    /// Limit price (rounded in place by [`check`]); `None` for market.
    pub price: Option<Price>,
    /// Quantity (rounded in place by [`check`]).
    pub qty: Qty,
    /// Set by [`check`]: the price the funds cap values this order at.
    pub exposure_price: Price,
}

/// Everything [`check`] reads about the order's symbol and the account.
#[derive(Debug)]
pub struct RiskInput<'a> {
    /// Current book view of the symbol.
    pub book: &'a BookTop,
    /// Exchange filters.
    pub spec: &'a InstrumentSpec,
    /// Live orders on the symbol.
    pub open_orders: &'a [Order],
    /// Position of the symbol.
    pub position: Qty,
    /// Symbol limit.
    pub max_position: Qty,
    /// Symbol limit.
    pub max_open_orders: u32,
    /// Orders of every symbol still `PendingNew` (decided, not yet answered by the exchange);
    /// see [`pending_new`].
    pub pending_orders: usize,
    /// Exposure of every other symbol (already summed).
    pub exposure_elsewhere: Notional,
    /// Operator halt.
    pub halted: bool,
    /// Kill switch tripped.
    pub kill_switch: bool,
    /// Event time, for the token bucket.
    pub now: UnixNanos,
}

/// Runs the checks (see the module docs) on `order`, rounding its price and quantity.
pub fn check(
    limits: &RiskLimits,
    bucket: &mut TokenBucket,
    input: &RiskInput<'_>,
    order: &mut Proposed,
) -> RiskDecision {
    use RejectReason as R;
    let reject = RiskDecision::Reject;
    if input.kill_switch {
        return reject(R::KillSwitch);
    }
    if input.halted {
        return reject(R::Halted);
    }
    let book = input.book;
    let Some(mid) = book.mid().filter(|_| book.is_tradeable()) else {
        return reject(R::BookStale);
    };
    if book.source == BookSource::RestFallback && !limits.allow_rest_fallback {
        return reject(R::RestFallback);
    }

    // 5. Round, then the exchange's own filters.
    let spec = input.spec;
    if let Some(p) = order.price {
        match spec.round_price(order.side, p) {
            Some(r) => order.price = Some(r),
            None => {
                return reject(R::Filter(FilterViolation::PriceFilter(
                    kestrel_model::instrument::Rule::AboveMax,
                )))
            }
        }
    }
    order.qty = match order.kind {
        OrderType::Market => match spec.market_lot_size {
            Some(m) if m.step_size.is_positive() => order.qty.round_down_to_step(m.step_size),
            _ => spec.round_qty(order.qty),
        },
        _ => spec.round_qty(order.qty),
    };
    let open = u32::try_from(input.open_orders.len()).unwrap_or(u32::MAX);
    let filter = spec.check(&OrderCheck {
        side: order.side,
        kind: order.kind,
        price: order.price,
        qty: Some(order.qty),
        quote_qty: None,
        avg_price: Some(mid),
        open_orders: open,
    });
    if let Err(v) = filter {
        return reject(R::Filter(v));
    }
    if !order.qty.is_positive() {
        return reject(R::Filter(FilterViolation::LotSize(
            kestrel_model::instrument::Rule::BelowMin,
        )));
    }

    // 6. Price band around mid.
    let band = band_offset(mid, limits.price_band_bps);
    let (lo, hi) = (mid.saturating_sub(band), mid.saturating_add(band));
    order.exposure_price = match order.price {
        Some(p) => {
            if p < lo || p > hi {
                return reject(R::PriceBand);
            }
            p
        }
        // A market order can fill anywhere; value it at the band edge against us.
        None => match order.side {
            Side::Buy => hi,
            Side::Sell => lo,
        },
    };

    // 7. Open orders.
    if open.saturating_add(1) > input.max_open_orders {
        return reject(R::MaxOpenOrders);
    }

    // 8. Orders not yet answered by the exchange, all symbols.
    let max_pending = usize::try_from(limits.max_pending_orders).unwrap_or(usize::MAX);
    if input.pending_orders >= max_pending {
        return reject(R::MaxPendingOrders);
    }

    // 9. Worst-case position.
    let (open_buys, open_sells) = open_qty(input.open_orders);
    let worst = match order.side {
        Side::Buy => input.position.saturating_add(open_buys).saturating_add(order.qty),
        Side::Sell => input.position.saturating_sub(open_sells).saturating_sub(order.qty),
    };
    if worst.abs() > input.max_position {
        return reject(R::MaxPosition);
    }

    // 10. Funds cap: recompute this symbol's exposure with the new order included.
    let extra = Some((order.side, order.qty, order.exposure_price));
    let mine = symbol_exposure(input.position, mid, input.open_orders, extra);
    if input.exposure_elsewhere.saturating_add(mine) > limits.funds {
        return reject(R::FundsCap);
    }

    // 11. Rate limit (spends a token only here, when everything else passed).
    if !bucket.try_take(input.now) {
        return reject(R::RateLimit);
    }
    RiskDecision::Approve
}

/// `mid × bps / 10 000`, truncated, as a price offset.
fn band_offset(mid: Price, bps: u32) -> Price {
    crate::strategy::bps_of(mid, i64::from(bps))
}

/// How many of `orders` are `PendingNew`: decided and sent towards the exchange, not yet
/// acknowledged, refused or declared unknown. The engine sums it over every symbol's live
/// orders for [`RiskInput::pending_orders`].
pub fn pending_new(orders: &[Order]) -> usize {
    orders.iter().filter(|o| o.status == OrderStatus::PendingNew).count()
}

/// Unfilled quantity of open buys and open sells.
fn open_qty(orders: &[Order]) -> (Qty, Qty) {
    let mut buys = Qty::ZERO;
    let mut sells = Qty::ZERO;
    for o in orders {
        match o.side {
            Side::Buy => buys = buys.saturating_add(o.remaining()),
            Side::Sell => sells = sells.saturating_add(o.remaining()),
        }
    }
    (buys, sells)
}

/// Worst-case quote exposure of one symbol: the larger of
/// - long: `position × mark + Σ open buys (remaining × price)` — everything bought, and
/// - short: `−position × mark + Σ open sells (remaining × price)` — everything sold,
///
/// floored at zero. An order that reduces the position does not add to the side that matters,
/// so a market maker at the cap can still quote the reducing side. `extra` is a proposed order.
pub fn symbol_exposure(
    position: Qty,
    mark: Price,
    orders: &[Order],
    extra: Option<(Side, Qty, Price)>,
) -> Notional {
    let pos_value = Notional::of(mark, position);
    let mut long = pos_value;
    let mut short = pos_value.neg();
    let legs = orders.iter().map(|o| (o.side, o.remaining(), o.exposure_price)).chain(extra);
    for (side, qty, px) in legs {
        let n = Notional::of(px, qty);
        match side {
            Side::Buy => long = long.saturating_add(n),
            Side::Sell => short = short.saturating_add(n),
        }
    }
    long.max(short).max(Notional::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_refills_on_event_time() {
        let mut b = TokenBucket::new(2, 3);
        let t0 = UnixNanos::from_millis(1_000);
        // TC0: a full bucket allows the burst, then refuses
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0));
        // TC1: 2 tokens/s ⇒ one token after 500 ms, not before
        assert!(!b.try_take(UnixNanos::from_millis(1_499)));
        assert!(b.try_take(UnixNanos::from_millis(1_500)));
        // TC2: refill never exceeds the burst
        assert!(b.has_token(UnixNanos::from_millis(100_000)));
        for _ in 0..3 {
            assert!(b.try_take(UnixNanos::from_millis(100_000)));
        }
        assert!(!b.try_take(UnixNanos::from_millis(100_000)));
        // TC3: time going backwards refills nothing and does not panic
        assert!(!b.try_take(UnixNanos::from_millis(50_000)));
    }

    #[test]
    fn reject_labels_are_stable_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for s in RejectReason::ALL {
            assert!(seen.insert(s), "duplicate label {s}");
            assert!(s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        assert_eq!(RejectReason::FundsCap.as_str(), "funds_cap");
        assert_eq!(
            RejectReason::Filter(FilterViolation::MinNotional).as_str(),
            "filter_min_notional"
        );
        assert_eq!(RejectReason::IdsExhausted.index(), 18);
        assert_eq!(RejectReason::MaxPendingOrders.as_str(), "max_pending_orders");
        assert_eq!(RejectReason::MaxPendingOrders.index(), RejectReason::ALL.len() - 1);
    }

    #[test]
    fn exposure_is_worst_case_per_side() {
        let p = |s: &str| s.parse::<Price>().unwrap();
        let q = |s: &str| s.parse::<Qty>().unwrap();
        let n = |s: &str| s.parse::<Notional>().unwrap();
        // TC0: long 1 @ mark 100 plus an extra buy 1 @ 99 ⇒ 199
        assert_eq!(
            symbol_exposure(q("1"), p("100"), &[], Some((Side::Buy, q("1"), p("99")))),
            n("199")
        );
        // TC1: a reducing sell does not add: long 1, sell 1 @ 101 ⇒ max(100, 1) = 100
        assert_eq!(
            symbol_exposure(q("1"), p("100"), &[], Some((Side::Sell, q("1"), p("101")))),
            n("100")
        );
        // TC2: short 2 @ 50 ⇒ 100
        assert_eq!(symbol_exposure(q("-2"), p("50"), &[], None), n("100"));
        // TC3: flat, nothing open ⇒ 0
        assert_eq!(symbol_exposure(Qty::ZERO, p("50"), &[], None), Notional::ZERO);
    }
}
