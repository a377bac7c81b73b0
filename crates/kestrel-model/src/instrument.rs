//! Instrument specification and Binance's exchange filters (SPEC.md §6, filters.md).
//!
//! [`InstrumentSpec::check`] applies exactly the documented rules and names the filter an order
//! would violate, so a violation is caught before sending (scenario S17) with the same name the
//! exchange would put in its `-1013 Filter failure: <TYPE>` message.
//!
//! Rules (each is off when its bound is zero, as on Binance):
//! - `PRICE_FILTER`: `price >= minPrice`, `price <= maxPrice`, `price % tickSize == 0`.
//! - `LOT_SIZE` (`MARKET_LOT_SIZE` for market orders): `minQty <= qty <= maxQty`,
//!   `qty % stepSize == 0` (step measured from zero, as for Binance's own symbols whose
//!   `minQty` is a multiple of `stepSize`).
//! - `MIN_NOTIONAL`: `price * qty >= minNotional`; market orders use the average price and are
//!   checked only if `applyToMarket`.
//! - `NOTIONAL`: `minNotional <= price * qty <= maxNotional`; for market orders each side only if
//!   `applyMinToMarket`/`applyMaxToMarket`.
//! - `PERCENT_PRICE`: `avg * multiplierDown <= price <= avg * multiplierUp`.
//! - `PERCENT_PRICE_BY_SIDE`: the same with `bid*` multipliers for BUY and `ask*` for SELL.
//! - `MAX_NUM_ORDERS`: open orders on the symbol (this one included) `<= maxNumOrders`.
//!
//! When a filter needs a reference the caller did not give (no `avg_price` for a percent-price
//! band, no way to compute a market order's notional), the check fails closed with
//! [`FilterViolation::MissingPrice`] instead of skipping the filter.

use std::fmt;

use crate::{Asset, Notional, OrderType, Price, Qty, Side, Symbol};

/// `PRICE_FILTER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriceFilter {
    /// Lowest allowed price; zero disables.
    pub min_price: Price,
    /// Highest allowed price; zero disables.
    pub max_price: Price,
    /// Price increment; zero disables.
    pub tick_size: Price,
}

/// `LOT_SIZE` and `MARKET_LOT_SIZE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LotSize {
    /// Smallest quantity.
    pub min_qty: Qty,
    /// Largest quantity; zero disables.
    pub max_qty: Qty,
    /// Quantity increment; zero disables.
    pub step_size: Qty,
}

/// `MIN_NOTIONAL` (older symbols).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinNotional {
    /// Minimum `price * qty`.
    pub min_notional: Notional,
    /// Whether market orders are checked (against the average price).
    pub apply_to_market: bool,
    /// Minutes of the average price (0 = last price).
    pub avg_price_mins: u32,
}

/// `NOTIONAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotionalFilter {
    /// Minimum `price * qty`.
    pub min_notional: Notional,
    /// Whether market orders are checked against the minimum.
    pub apply_min_to_market: bool,
    /// Maximum `price * qty`; zero disables.
    pub max_notional: Notional,
    /// Whether market orders are checked against the maximum.
    pub apply_max_to_market: bool,
    /// Minutes of the average price (0 = last price).
    pub avg_price_mins: u32,
}

/// `PERCENT_PRICE`. Multipliers are fixed point at 1e-8 (stored as [`Price`] mantissas).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PercentPrice {
    /// Upper multiplier of the average price.
    pub multiplier_up: Price,
    /// Lower multiplier of the average price.
    pub multiplier_down: Price,
    /// Minutes of the average price.
    pub avg_price_mins: u32,
}

/// `PERCENT_PRICE_BY_SIDE`. Multipliers are fixed point at 1e-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PercentPriceBySide {
    /// BUY upper multiplier.
    pub bid_multiplier_up: Price,
    /// BUY lower multiplier.
    pub bid_multiplier_down: Price,
    /// SELL upper multiplier.
    pub ask_multiplier_up: Price,
    /// SELL lower multiplier.
    pub ask_multiplier_down: Price,
    /// Minutes of the average price.
    pub avg_price_mins: u32,
}

/// Everything kestrel needs to know about a tradeable symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentSpec {
    /// Exchange symbol.
    pub symbol: Symbol,
    /// Base asset (what the quantity counts).
    pub base: Asset,
    /// Quote asset (what the price is in).
    pub quote: Asset,
    /// `status == "TRADING"`.
    pub trading: bool,
    /// `PRICE_FILTER`, if the symbol has one.
    pub price_filter: Option<PriceFilter>,
    /// `LOT_SIZE`.
    pub lot_size: Option<LotSize>,
    /// `MARKET_LOT_SIZE`.
    pub market_lot_size: Option<LotSize>,
    /// `MIN_NOTIONAL`.
    pub min_notional: Option<MinNotional>,
    /// `NOTIONAL`.
    pub notional: Option<NotionalFilter>,
    /// `PERCENT_PRICE`.
    pub percent_price: Option<PercentPrice>,
    /// `PERCENT_PRICE_BY_SIDE`.
    pub percent_price_by_side: Option<PercentPriceBySide>,
    /// `MAX_NUM_ORDERS`.
    pub max_num_orders: Option<u32>,
}

/// The filter an order would violate: the exchange's filter name, and which rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterViolation {
    /// `PRICE_FILTER`.
    PriceFilter(Rule),
    /// `PERCENT_PRICE`.
    PercentPrice(Rule),
    /// `PERCENT_PRICE_BY_SIDE`.
    PercentPriceBySide(Rule),
    /// `LOT_SIZE`.
    LotSize(Rule),
    /// `MARKET_LOT_SIZE`.
    MarketLotSize(Rule),
    /// `MIN_NOTIONAL`.
    MinNotional,
    /// `NOTIONAL`.
    Notional(Rule),
    /// `MAX_NUM_ORDERS`.
    MaxNumOrders,
    /// The order needs a price (limit) and has none, or a filter needs a reference the check
    /// was not given: the average price for `PERCENT_PRICE(_BY_SIDE)`, or the notional for
    /// `MIN_NOTIONAL`/`NOTIONAL` (a market order without `avg_price` or `quote_qty`, a limit
    /// order without `qty`). The check fails closed rather than skip the filter.
    MissingPrice,
}

/// Which side of a filter's rule was broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Below the minimum.
    BelowMin,
    /// Above the maximum.
    AboveMax,
    /// Not a multiple of the increment.
    Increment,
}

impl FilterViolation {
    /// The exchange's filter type name (`"PRICE_FILTER"`, …), as in `Filter failure: <TYPE>`.
    pub const fn filter_name(self) -> &'static str {
        match self {
            Self::PriceFilter(_) => "PRICE_FILTER",
            Self::PercentPrice(_) => "PERCENT_PRICE",
            Self::PercentPriceBySide(_) => "PERCENT_PRICE_BY_SIDE",
            Self::LotSize(_) => "LOT_SIZE",
            Self::MarketLotSize(_) => "MARKET_LOT_SIZE",
            Self::MinNotional => "MIN_NOTIONAL",
            Self::Notional(_) => "NOTIONAL",
            Self::MaxNumOrders => "MAX_NUM_ORDERS",
            Self::MissingPrice => "PRICE",
        }
    }
}

impl fmt::Display for FilterViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Filter failure: {}", self.filter_name())
    }
}

impl std::error::Error for FilterViolation {}

/// The facts about one order that the filters look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderCheck {
    /// Side.
    pub side: Side,
    /// Type.
    pub kind: OrderType,
    /// Limit price (required for limit types).
    pub price: Option<Price>,
    /// Base quantity; for a market order by quote amount use `quote_qty` instead.
    pub qty: Option<Qty>,
    /// Market order by quote amount (`quoteOrderQty`).
    pub quote_qty: Option<Notional>,
    /// Average (or reference) price for market-order notional and percent-price checks.
    pub avg_price: Option<Price>,
    /// Open orders on the symbol before this one.
    pub open_orders: u32,
}

impl InstrumentSpec {
    /// The tick size, or zero if the symbol has no `PRICE_FILTER`.
    pub fn tick_size(&self) -> Price {
        self.price_filter.map_or(Price::ZERO, |f| f.tick_size)
    }

    /// The step size, or zero if the symbol has no `LOT_SIZE`.
    pub fn step_size(&self) -> Qty {
        self.lot_size.map_or(Qty::ZERO, |f| f.step_size)
    }

    /// Rounds a limit price to the tick in the direction that never worsens it for us:
    /// a buy rounds down, a sell rounds up. `None` on overflow.
    pub fn round_price(&self, side: Side, price: Price) -> Option<Price> {
        let tick = self.tick_size();
        match side {
            Side::Buy => Some(price.round_down_to_tick(tick)),
            Side::Sell => price.round_up_to_tick(tick),
        }
    }

    /// Rounds a quantity down to the step (never send more than decided).
    pub fn round_qty(&self, qty: Qty) -> Qty {
        qty.round_down_to_step(self.step_size())
    }

    /// Applies every filter to `order`; the first violation wins, in the order
    /// PRICE_FILTER, PERCENT_PRICE, PERCENT_PRICE_BY_SIDE, LOT_SIZE, MARKET_LOT_SIZE,
    /// MIN_NOTIONAL, NOTIONAL, MAX_NUM_ORDERS.
    pub fn check(&self, order: &OrderCheck) -> Result<(), FilterViolation> {
        let is_market = order.kind == OrderType::Market;
        let limit_price = match (is_market, order.price) {
            (false, None) => return Err(FilterViolation::MissingPrice),
            (false, Some(p)) => Some(p),
            (true, _) => None,
        };

        if let (Some(f), Some(p)) = (self.price_filter, limit_price) {
            check_range(p, f.min_price, f.max_price, f.tick_size)
                .map_err(FilterViolation::PriceFilter)?;
        }
        if let (Some(f), Some(p)) = (self.percent_price, limit_price) {
            let avg = order.avg_price.ok_or(FilterViolation::MissingPrice)?;
            check_band(p, avg, f.multiplier_down, f.multiplier_up)
                .map_err(FilterViolation::PercentPrice)?;
        }
        if let (Some(f), Some(p)) = (self.percent_price_by_side, limit_price) {
            let avg = order.avg_price.ok_or(FilterViolation::MissingPrice)?;
            let (down, up) = match order.side {
                Side::Buy => (f.bid_multiplier_down, f.bid_multiplier_up),
                Side::Sell => (f.ask_multiplier_down, f.ask_multiplier_up),
            };
            check_band(p, avg, down, up).map_err(FilterViolation::PercentPriceBySide)?;
        }
        if let Some(q) = order.qty {
            if let Some(f) = self.lot_size {
                check_range(q, f.min_qty, f.max_qty, f.step_size)
                    .map_err(FilterViolation::LotSize)?;
            }
            if is_market {
                if let Some(f) = self.market_lot_size {
                    check_range(q, f.min_qty, f.max_qty, f.step_size)
                        .map_err(FilterViolation::MarketLotSize)?;
                }
            }
        }

        // Notional of the order: limit price × qty, or for market orders the quote amount or
        // avg price × qty. `None` when it can't be known (market order without a reference).
        let notional = match (limit_price, order.qty, order.quote_qty) {
            (Some(p), Some(q), _) => Some(Notional::of(p, q)),
            (None, _, Some(quote)) => Some(quote),
            (None, Some(q), None) => order.avg_price.map(|avg| Notional::of(avg, q)),
            _ => None,
        };
        if let Some(f) = self.min_notional {
            if !is_market || f.apply_to_market {
                let n = notional.ok_or(FilterViolation::MissingPrice)?;
                if n < f.min_notional {
                    return Err(FilterViolation::MinNotional);
                }
            }
        }
        if let Some(f) = self.notional {
            let check_min = !is_market || f.apply_min_to_market;
            let check_max = (!is_market || f.apply_max_to_market) && !f.max_notional.is_zero();
            if check_min || check_max {
                let n = notional.ok_or(FilterViolation::MissingPrice)?;
                if check_min && n < f.min_notional {
                    return Err(FilterViolation::Notional(Rule::BelowMin));
                }
                if check_max && n > f.max_notional {
                    return Err(FilterViolation::Notional(Rule::AboveMax));
                }
            }
        }
        if let Some(max) = self.max_num_orders {
            if order.open_orders >= max {
                return Err(FilterViolation::MaxNumOrders);
            }
        }
        Ok(())
    }
}

/// `min <= v <= max` and `v % step == 0`, each rule off when its bound is zero.
fn check_range<T>(v: T, min: T, max: T, step: T) -> Result<(), Rule>
where
    T: Copy + Ord + IsZero + MultipleOf,
{
    if !min.zero() && v < min {
        return Err(Rule::BelowMin);
    }
    if !max.zero() && v > max {
        return Err(Rule::AboveMax);
    }
    if !v.multiple_of(step) {
        return Err(Rule::Increment);
    }
    Ok(())
}

/// `avg * down <= price <= avg * up`, computed exactly in [`Notional`] (1e-16).
fn check_band(price: Price, avg: Price, down: Price, up: Price) -> Result<(), Rule> {
    let one = Qty::from_mantissa(crate::num::SCALE);
    let p = Notional::of(price, one);
    let lo = Notional::of(avg, Qty::from_mantissa(down.mantissa()));
    let hi = Notional::of(avg, Qty::from_mantissa(up.mantissa()));
    if p < lo {
        return Err(Rule::BelowMin);
    }
    if !up.is_zero() && p > hi {
        return Err(Rule::AboveMax);
    }
    Ok(())
}

trait IsZero {
    fn zero(&self) -> bool;
}
trait MultipleOf {
    fn multiple_of(&self, step: Self) -> bool;
}
impl IsZero for Price {
    fn zero(&self) -> bool {
        self.is_zero()
    }
}
impl IsZero for Qty {
    fn zero(&self) -> bool {
        self.is_zero()
    }
}
impl MultipleOf for Price {
    fn multiple_of(&self, step: Self) -> bool {
        self.is_multiple_of(step)
    }
}
impl MultipleOf for Qty {
    fn multiple_of(&self, step: Self) -> bool {
        self.is_multiple_of(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(s: &str) -> Price {
        s.parse().unwrap()
    }
    fn qty(s: &str) -> Qty {
        s.parse().unwrap()
    }

    fn btcusdt() -> InstrumentSpec {
        InstrumentSpec {
            symbol: Symbol::new("BTCUSDT").unwrap(),
            base: Asset::new("BTC").unwrap(),
            quote: Asset::new("USDT").unwrap(),
            trading: true,
            price_filter: Some(PriceFilter {
                min_price: px("0.01"),
                max_price: px("1000000"),
                tick_size: px("0.01"),
            }),
            lot_size: Some(LotSize {
                min_qty: qty("0.00001"),
                max_qty: qty("9000"),
                step_size: qty("0.00001"),
            }),
            market_lot_size: Some(LotSize {
                min_qty: Qty::ZERO,
                max_qty: qty("100"),
                step_size: Qty::ZERO,
            }),
            min_notional: None,
            notional: Some(NotionalFilter {
                min_notional: "5".parse().unwrap(),
                apply_min_to_market: true,
                max_notional: "9000000".parse().unwrap(),
                apply_max_to_market: false,
                avg_price_mins: 5,
            }),
            percent_price: None,
            percent_price_by_side: Some(PercentPriceBySide {
                bid_multiplier_up: px("5"),
                bid_multiplier_down: px("0.2"),
                ask_multiplier_up: px("5"),
                ask_multiplier_down: px("0.2"),
                avg_price_mins: 5,
            }),
            max_num_orders: Some(200),
        }
    }

    fn limit(side: Side, p: &str, q: &str) -> OrderCheck {
        OrderCheck {
            side,
            kind: OrderType::Limit,
            price: Some(px(p)),
            qty: Some(qty(q)),
            quote_qty: None,
            avg_price: Some(px("50000")),
            open_orders: 0,
        }
    }

    #[test]
    fn check_names_the_violated_filter() {
        let s = btcusdt();
        let cases: &[(OrderCheck, Result<(), FilterViolation>)] = &[
            // TC0: a valid order
            (limit(Side::Buy, "50000.01", "0.001"), Ok(())),
            // TC1: off-tick price
            (
                limit(Side::Buy, "50000.001", "0.001"),
                Err(FilterViolation::PriceFilter(Rule::Increment)),
            ),
            // TC2: price above max
            (
                limit(Side::Buy, "2000000", "0.001"),
                Err(FilterViolation::PriceFilter(Rule::AboveMax)),
            ),
            // TC3: buy far above avg*5
            (
                limit(Side::Buy, "250000.01", "0.001"),
                Err(FilterViolation::PercentPriceBySide(Rule::AboveMax)),
            ),
            // TC4: exactly avg*0.2 is allowed
            (limit(Side::Sell, "10000", "0.001"), Ok(())),
            // TC5: off-step quantity
            (limit(Side::Buy, "50000", "0.000015"), Err(FilterViolation::LotSize(Rule::Increment))),
            // TC6: below min qty
            (limit(Side::Buy, "50000", "0"), Err(FilterViolation::LotSize(Rule::BelowMin))),
            // TC7: notional 4.99999 < 5
            (limit(Side::Buy, "49999.9", "0.0001"), Err(FilterViolation::Notional(Rule::BelowMin))),
            // TC8: notional exactly 5 passes
            (limit(Side::Buy, "50000", "0.0001"), Ok(())),
        ];
        for (i, (order, want)) in cases.iter().enumerate() {
            assert_eq!(s.check(order), *want, "TC{i}");
        }
    }

    #[test]
    fn market_orders_use_market_lot_size_and_avg_price() {
        let s = btcusdt();
        let mut m = limit(Side::Buy, "1", "101");
        m.kind = OrderType::Market;
        m.price = None;
        assert_eq!(s.check(&m), Err(FilterViolation::MarketLotSize(Rule::AboveMax)));
        m.qty = Some(qty("0.00001")); // 0.5 USDT at avg 50000 < NOTIONAL min 5
        assert_eq!(s.check(&m), Err(FilterViolation::Notional(Rule::BelowMin)));
        m.qty = None;
        m.quote_qty = Some("10".parse().unwrap());
        assert_eq!(s.check(&m), Ok(()));
    }

    #[test]
    fn max_num_orders_counts_open_orders() {
        let s = btcusdt();
        let mut o = limit(Side::Buy, "50000", "0.001");
        o.open_orders = 199;
        assert_eq!(s.check(&o), Ok(()));
        o.open_orders = 200;
        assert_eq!(s.check(&o), Err(FilterViolation::MaxNumOrders));
        assert_eq!(FilterViolation::MaxNumOrders.to_string(), "Filter failure: MAX_NUM_ORDERS");
    }

    #[test]
    fn missing_reference_fails_closed() {
        // A market order without avg price or quote amount under NOTIONAL(applyMinToMarket) used
        // to pass silently, contrary to `MissingPrice`'s contract.
        let s = btcusdt();
        let mut m = limit(Side::Buy, "1", "0.001");
        m.kind = OrderType::Market;
        m.price = None;
        m.avg_price = None;
        assert_eq!(s.check(&m), Err(FilterViolation::MissingPrice));
        // With the filter's market flags off the notional is not needed.
        let mut lax = btcusdt();
        if let Some(n) = lax.notional.as_mut() {
            n.apply_min_to_market = false;
        }
        assert_eq!(lax.check(&m), Ok(()));
        // A limit order under PERCENT_PRICE_BY_SIDE without an avg price can't be checked.
        let mut l = limit(Side::Buy, "50000", "0.001");
        l.avg_price = None;
        assert_eq!(s.check(&l), Err(FilterViolation::MissingPrice));
    }

    #[test]
    fn limit_without_price_is_refused() {
        let mut o = limit(Side::Buy, "1", "1");
        o.price = None;
        assert_eq!(btcusdt().check(&o), Err(FilterViolation::MissingPrice));
    }

    #[test]
    fn rounding_is_directional_by_side() {
        let s = btcusdt();
        assert_eq!(s.round_price(Side::Buy, px("100.019")), Some(px("100.01")));
        assert_eq!(s.round_price(Side::Sell, px("100.011")), Some(px("100.02")));
        assert_eq!(s.round_qty(qty("0.123456")), qty("0.12345"));
    }
}
