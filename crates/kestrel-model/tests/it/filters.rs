//! The filter validator against Binance's documented filter payloads (SPEC.md §6).
//!
//! Every filter object comes from `testdata/binance/` (doc examples, see `SOURCES.md`): the
//! per-filter examples of `filters.md` in `filters/*.json`, and the `exchangeInfo` examples. The
//! JSON is read here, in the test, into `InstrumentSpec`'s filter structs; the model crate itself
//! knows no JSON. Each test puts orders at each boundary and one unit (1e-8, or 1e-16 for a
//! notional) beyond it, and checks the verdict and the filter name the exchange would report.

use std::path::PathBuf;

use kestrel_model::instrument::{
    LotSize, MinNotional, NotionalFilter, PercentPrice, PercentPriceBySide, PriceFilter, Rule,
};
use kestrel_model::{
    Asset, FilterViolation, InstrumentSpec, Notional, OrderCheck, OrderType, Price, Qty, Side,
    Symbol,
};
use serde_json::Value;

fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/binance").join(rel)
}

fn load(rel: &str) -> Value {
    let path = testdata(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or_else(|| panic!("missing {key} in {v}"))
}

fn price_of(v: &Value, key: &str) -> Price {
    field(v, key).as_str().unwrap().parse().unwrap()
}

fn qty_of(v: &Value, key: &str) -> Qty {
    field(v, key).as_str().unwrap().parse().unwrap()
}

fn notional_of(v: &Value, key: &str) -> Notional {
    field(v, key).as_str().unwrap().parse().unwrap()
}

fn bool_of(v: &Value, key: &str) -> bool {
    field(v, key).as_bool().unwrap()
}

fn u32_of(v: &Value, key: &str) -> u32 {
    u32::try_from(field(v, key).as_u64().unwrap()).unwrap()
}

/// Applies one `exchangeInfo` filter object to `spec`. Returns false for filter types the
/// validator does not model (ICEBERG_PARTS, MAX_POSITION, TRAILING_DELTA, …).
fn apply_filter(spec: &mut InstrumentSpec, f: &Value) -> bool {
    match field(f, "filterType").as_str().unwrap() {
        "PRICE_FILTER" => {
            spec.price_filter = Some(PriceFilter {
                min_price: price_of(f, "minPrice"),
                max_price: price_of(f, "maxPrice"),
                tick_size: price_of(f, "tickSize"),
            });
        }
        "LOT_SIZE" => spec.lot_size = Some(lot_size(f)),
        "MARKET_LOT_SIZE" => spec.market_lot_size = Some(lot_size(f)),
        "MIN_NOTIONAL" => {
            spec.min_notional = Some(MinNotional {
                min_notional: notional_of(f, "minNotional"),
                apply_to_market: bool_of(f, "applyToMarket"),
                avg_price_mins: u32_of(f, "avgPriceMins"),
            });
        }
        "NOTIONAL" => {
            spec.notional = Some(NotionalFilter {
                min_notional: notional_of(f, "minNotional"),
                apply_min_to_market: bool_of(f, "applyMinToMarket"),
                max_notional: notional_of(f, "maxNotional"),
                apply_max_to_market: bool_of(f, "applyMaxToMarket"),
                avg_price_mins: u32_of(f, "avgPriceMins"),
            });
        }
        "PERCENT_PRICE" => {
            spec.percent_price = Some(PercentPrice {
                multiplier_up: price_of(f, "multiplierUp"),
                multiplier_down: price_of(f, "multiplierDown"),
                avg_price_mins: u32_of(f, "avgPriceMins"),
            });
        }
        "PERCENT_PRICE_BY_SIDE" => {
            spec.percent_price_by_side = Some(PercentPriceBySide {
                bid_multiplier_up: price_of(f, "bidMultiplierUp"),
                bid_multiplier_down: price_of(f, "bidMultiplierDown"),
                ask_multiplier_up: price_of(f, "askMultiplierUp"),
                ask_multiplier_down: price_of(f, "askMultiplierDown"),
                avg_price_mins: u32_of(f, "avgPriceMins"),
            });
        }
        "MAX_NUM_ORDERS" => spec.max_num_orders = Some(u32_of(f, "maxNumOrders")),
        _ => return false,
    }
    true
}

fn lot_size(f: &Value) -> LotSize {
    LotSize {
        min_qty: qty_of(f, "minQty"),
        max_qty: qty_of(f, "maxQty"),
        step_size: qty_of(f, "stepSize"),
    }
}

/// A spec with no filters at all.
fn bare_spec(symbol: &str, base: &str, quote: &str) -> InstrumentSpec {
    InstrumentSpec {
        symbol: Symbol::new(symbol).unwrap(),
        base: Asset::new(base).unwrap(),
        quote: Asset::new(quote).unwrap(),
        trading: true,
        price_filter: None,
        lot_size: None,
        market_lot_size: None,
        min_notional: None,
        notional: None,
        percent_price: None,
        percent_price_by_side: None,
        max_num_orders: None,
    }
}

/// A spec holding only the filter in `filters/<name>.json`; also checks that the violation
/// name the validator reports is that file's `filterType`.
fn spec_with(name: &str) -> InstrumentSpec {
    let f = load(&format!("filters/{name}.json"));
    assert_eq!(field(&f, "filterType").as_str(), Some(name));
    let mut spec = bare_spec("BNBBTC", "BNB", "BTC");
    assert!(apply_filter(&mut spec, &f), "{name} not modelled");
    spec
}

/// An `InstrumentSpec` from one `exchangeInfo` symbol object, plus how many filters were skipped.
fn spec_from_symbol(s: &Value) -> (InstrumentSpec, usize) {
    let mut spec = bare_spec(
        field(s, "symbol").as_str().unwrap(),
        field(s, "baseAsset").as_str().unwrap(),
        field(s, "quoteAsset").as_str().unwrap(),
    );
    spec.trading = field(s, "status").as_str() == Some("TRADING");
    let mut skipped = 0;
    for f in field(s, "filters").as_array().unwrap() {
        if !apply_filter(&mut spec, f) {
            skipped += 1;
        }
    }
    (spec, skipped)
}

fn px(s: &str) -> Price {
    s.parse().unwrap()
}
fn qty(s: &str) -> Qty {
    s.parse().unwrap()
}
fn notional(s: &str) -> Notional {
    s.parse().unwrap()
}

fn limit(side: Side, price: &str, q: &str) -> OrderCheck {
    OrderCheck {
        side,
        kind: OrderType::Limit,
        price: Some(px(price)),
        qty: Some(qty(q)),
        quote_qty: None,
        avg_price: None,
        open_orders: 0,
    }
}

fn market(side: Side, q: &str, avg: &str) -> OrderCheck {
    OrderCheck {
        side,
        kind: OrderType::Market,
        price: None,
        qty: Some(qty(q)),
        quote_qty: None,
        avg_price: Some(px(avg)),
        open_orders: 0,
    }
}

fn with_avg(mut o: OrderCheck, avg: &str) -> OrderCheck {
    o.avg_price = Some(px(avg));
    o
}

/// Runs a table of `(order, verdict)` cases and checks the reported filter name of each
/// rejection against `name` (`MissingPrice` is the validator's own "can't check", named `PRICE`).
fn run(spec: &InstrumentSpec, name: &str, cases: &[(OrderCheck, Result<(), FilterViolation>)]) {
    for (i, (order, want)) in cases.iter().enumerate() {
        let got = spec.check(order);
        assert_eq!(got, *want, "{name} TC{i}: {order:?}");
        if let Err(v) = got {
            let name = if v == FilterViolation::MissingPrice { "PRICE" } else { name };
            assert_eq!(v.filter_name(), name, "{name} TC{i}");
            assert_eq!(v.to_string(), format!("Filter failure: {name}"), "{name} TC{i}");
        }
    }
}

#[test]
fn filter_vectors_all_parse_into_model_types() {
    // Every price/quantity string in the doc filters parses exactly; the eight validated types
    // map onto spec fields, the rest are known but not modelled.
    let modelled = [
        "PRICE_FILTER",
        "LOT_SIZE",
        "MARKET_LOT_SIZE",
        "MIN_NOTIONAL",
        "NOTIONAL",
        "PERCENT_PRICE",
        "PERCENT_PRICE_BY_SIDE",
        "MAX_NUM_ORDERS",
    ];
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(testdata("filters")).unwrap() {
        let path = entry.unwrap().path();
        let f = load(path.strip_prefix(testdata("")).unwrap().to_str().unwrap());
        let name = field(&f, "filterType").as_str().unwrap().to_owned();
        let mut spec = bare_spec("BNBBTC", "BNB", "BTC");
        assert_eq!(apply_filter(&mut spec, &f), modelled.contains(&name.as_str()), "{name}");
        seen.push(name);
    }
    seen.sort();
    for m in modelled {
        assert!(seen.iter().any(|s| s == m), "no vector for {m}");
    }
    // The exact values of two of them, as a spot check of the parsing above.
    assert_eq!(
        spec_with("PRICE_FILTER").price_filter,
        Some(PriceFilter {
            min_price: px("0.000001"),
            max_price: px("100000"),
            tick_size: px("0.000001")
        })
    );
    assert_eq!(
        spec_with("PERCENT_PRICE").percent_price,
        Some(PercentPrice {
            multiplier_up: px("1.3"),
            multiplier_down: px("0.7"),
            avg_price_mins: 5
        })
    );
}

#[test]
fn price_filter_boundaries() {
    // {minPrice 0.00000100, maxPrice 100000, tickSize 0.00000100}
    let spec = spec_with("PRICE_FILTER");
    let e = |r| Err(FilterViolation::PriceFilter(r));
    run(
        &spec,
        "PRICE_FILTER",
        &[
            // TC0: exactly minPrice
            (limit(Side::Buy, "0.000001", "1"), Ok(())),
            // TC1: one unit below minPrice
            (limit(Side::Buy, "0.00000099", "1"), e(Rule::BelowMin)),
            // TC2: one tick below minPrice (zero is not a price)
            (limit(Side::Sell, "0", "1"), e(Rule::BelowMin)),
            // TC3: exactly maxPrice
            (limit(Side::Sell, "100000", "1"), Ok(())),
            // TC4: one unit above maxPrice
            (limit(Side::Sell, "100000.00000001", "1"), e(Rule::AboveMax)),
            // TC5: one tick above maxPrice
            (limit(Side::Buy, "100000.000001", "1"), e(Rule::AboveMax)),
            // TC6: on the tick
            (limit(Side::Buy, "0.123456", "1"), Ok(())),
            // TC7: one unit off the tick, either way
            (limit(Side::Buy, "0.12345601", "1"), e(Rule::Increment)),
            (limit(Side::Buy, "0.12345599", "1"), e(Rule::Increment)),
            // TC8: market orders carry no price, so the filter does not apply
            (market(Side::Buy, "1", "0.00000001"), Ok(())),
        ],
    );

    // Each rule is off when its value is 0 (SPEC.md §6).
    let mut off = spec.clone();
    let f = off.price_filter.as_mut().unwrap();
    f.min_price = Price::ZERO;
    f.max_price = Price::ZERO;
    run(
        &off,
        "PRICE_FILTER",
        &[
            // TC9: no min: the smallest tick is fine
            (limit(Side::Buy, "0.000001", "1"), Ok(())),
            // TC10: no max
            (limit(Side::Buy, "90000000000", "1"), Ok(())),
            // TC11: tick still enforced
            (
                limit(Side::Buy, "0.00000001", "1"),
                Err(FilterViolation::PriceFilter(Rule::Increment)),
            ),
        ],
    );
    off.price_filter.as_mut().unwrap().tick_size = Price::ZERO;
    run(&off, "PRICE_FILTER", &[(limit(Side::Buy, "0.00000001", "1"), Ok(()))]);
}

#[test]
fn lot_size_boundaries() {
    // {minQty 0.001, maxQty 100000, stepSize 0.001}; applies to limit and market orders.
    let spec = spec_with("LOT_SIZE");
    let e = |r| Err(FilterViolation::LotSize(r));
    run(
        &spec,
        "LOT_SIZE",
        &[
            // TC0: exactly minQty
            (limit(Side::Buy, "1", "0.001"), Ok(())),
            // TC1: one unit below minQty
            (limit(Side::Buy, "1", "0.00099999"), e(Rule::BelowMin)),
            // TC2: exactly maxQty
            (limit(Side::Sell, "1", "100000"), Ok(())),
            // TC3: one unit and one step above maxQty
            (limit(Side::Sell, "1", "100000.00000001"), e(Rule::AboveMax)),
            (limit(Side::Sell, "1", "100000.001"), e(Rule::AboveMax)),
            // TC4: on and off the step
            (limit(Side::Buy, "1", "1.234"), Ok(())),
            (limit(Side::Buy, "1", "1.2345"), e(Rule::Increment)),
            (limit(Side::Buy, "1", "0.00100001"), e(Rule::Increment)),
            // TC5: market orders are checked by LOT_SIZE too
            (market(Side::Buy, "0.0005", "1"), e(Rule::BelowMin)),
            (market(Side::Buy, "0.002", "1"), Ok(())),
        ],
    );
}

#[test]
fn market_lot_size_boundaries() {
    // Same numbers as LOT_SIZE, but only market orders are checked.
    let spec = spec_with("MARKET_LOT_SIZE");
    let e = |r| Err(FilterViolation::MarketLotSize(r));
    run(
        &spec,
        "MARKET_LOT_SIZE",
        &[
            // TC0: exactly minQty / maxQty
            (market(Side::Buy, "0.001", "1"), Ok(())),
            (market(Side::Sell, "100000", "1"), Ok(())),
            // TC1: one unit beyond each
            (market(Side::Buy, "0.00099999", "1"), e(Rule::BelowMin)),
            (market(Side::Sell, "100000.00000001", "1"), e(Rule::AboveMax)),
            // TC2: off the step
            (market(Side::Buy, "0.0015", "1"), e(Rule::Increment)),
            // TC3: limit orders are not subject to MARKET_LOT_SIZE
            (limit(Side::Buy, "1", "0.0000001"), Ok(())),
            (limit(Side::Buy, "1", "200000"), Ok(())),
        ],
    );
}

#[test]
fn min_notional_boundaries() {
    // {minNotional 0.001, applyToMarket true, avgPriceMins 5}: price * qty >= 0.001, exactly.
    let spec = spec_with("MIN_NOTIONAL");
    let e = Err(FilterViolation::MinNotional);
    run(
        &spec,
        "MIN_NOTIONAL",
        &[
            // TC0: exactly the minimum
            (limit(Side::Buy, "0.001", "1"), Ok(())),
            (limit(Side::Buy, "0.00001", "100"), Ok(())),
            // TC1: one 1e-16 unit below: 0.00000001 × 99999.99999999 = 0.0009999999999999999
            (limit(Side::Buy, "0.00000001", "99999.99999999"), e),
            // TC2: one 1e-8 unit of price below
            (limit(Side::Sell, "0.00099999", "1"), e),
            // TC3: market orders use the average price (applyToMarket = true)
            (market(Side::Buy, "1", "0.001"), Ok(())),
            (market(Side::Buy, "1", "0.00099999"), e),
            // TC4: market order by quote amount: the amount itself
            (
                OrderCheck {
                    quote_qty: Some(notional("0.001")),
                    qty: None,
                    ..market(Side::Buy, "0", "1")
                },
                Ok(()),
            ),
            (
                OrderCheck {
                    quote_qty: Some(notional("0.0009999999999999")),
                    qty: None,
                    ..market(Side::Buy, "0", "1")
                },
                e,
            ),
            // TC5: market order with no reference price can't be checked: fail closed
            (
                OrderCheck { avg_price: None, ..market(Side::Buy, "1", "1") },
                Err(FilterViolation::MissingPrice),
            ),
        ],
    );
    // applyToMarket = false: market orders are not checked at all.
    let mut lax = spec.clone();
    lax.min_notional.as_mut().unwrap().apply_to_market = false;
    run(
        &lax,
        "MIN_NOTIONAL",
        &[
            (market(Side::Buy, "1", "0.00000001"), Ok(())),
            (OrderCheck { avg_price: None, ..market(Side::Buy, "1", "1") }, Ok(())),
            (limit(Side::Buy, "0.00099999", "1"), Err(FilterViolation::MinNotional)),
        ],
    );
}

#[test]
fn notional_boundaries() {
    // {minNotional 10, applyMinToMarket false, maxNotional 10000, applyMaxToMarket false}
    let spec = spec_with("NOTIONAL");
    let e = |r| Err(FilterViolation::Notional(r));
    run(
        &spec,
        "NOTIONAL",
        &[
            // TC0: exactly min and max
            (limit(Side::Buy, "10", "1"), Ok(())),
            (limit(Side::Sell, "10000", "1"), Ok(())),
            (limit(Side::Sell, "2500", "4"), Ok(())),
            // TC1: just below min: 9.99999999 × 1 (1e-8 below) and 0.1 × 99.99999999 (1e-9
            // below)
            (limit(Side::Buy, "9.99999999", "1"), e(Rule::BelowMin)),
            (limit(Side::Buy, "0.1", "99.99999999"), e(Rule::BelowMin)),
            // TC2: just above max
            (limit(Side::Sell, "10000.00000001", "1"), e(Rule::AboveMax)),
            (limit(Side::Sell, "1", "10000.00000001"), e(Rule::AboveMax)),
            // TC3: market orders not checked on either side (both apply flags false)
            (market(Side::Buy, "1", "1"), Ok(())),
            (market(Side::Buy, "1000", "1000"), Ok(())),
            (OrderCheck { avg_price: None, ..market(Side::Buy, "1", "1") }, Ok(())),
        ],
    );
    // With the apply flags on, market orders are checked at the average price.
    let mut strict = spec.clone();
    let f = strict.notional.as_mut().unwrap();
    f.apply_min_to_market = true;
    f.apply_max_to_market = true;
    run(
        &strict,
        "NOTIONAL",
        &[
            (market(Side::Buy, "1", "10"), Ok(())),
            (market(Side::Buy, "1", "9.99999999"), e(Rule::BelowMin)),
            (market(Side::Sell, "1", "10000"), Ok(())),
            (market(Side::Sell, "1", "10000.00000001"), e(Rule::AboveMax)),
            (
                OrderCheck {
                    quote_qty: Some(notional("10000.0000000000000001")),
                    qty: None,
                    ..market(Side::Buy, "0", "1")
                },
                e(Rule::AboveMax),
            ),
            (
                OrderCheck { avg_price: None, ..market(Side::Buy, "1", "1") },
                Err(FilterViolation::MissingPrice),
            ),
        ],
    );
    // maxNotional 0 disables the upper bound.
    let mut no_max = spec;
    no_max.notional.as_mut().unwrap().max_notional = Notional::ZERO;
    run(&no_max, "NOTIONAL", &[(limit(Side::Sell, "90000000", "1000"), Ok(()))]);
}

#[test]
fn percent_price_boundaries() {
    // {multiplierUp 1.3, multiplierDown 0.7}: avg × 0.7 <= price <= avg × 1.3, both sides.
    let spec = spec_with("PERCENT_PRICE");
    let e = |r| Err(FilterViolation::PercentPrice(r));
    let at = |side, p| with_avg(limit(side, p, "1"), "100");
    run(
        &spec,
        "PERCENT_PRICE",
        &[
            // TC0: exactly at each edge, both sides
            (at(Side::Buy, "70"), Ok(())),
            (at(Side::Sell, "70"), Ok(())),
            (at(Side::Buy, "130"), Ok(())),
            (at(Side::Sell, "130"), Ok(())),
            // TC1: one unit outside each edge
            (at(Side::Buy, "69.99999999"), e(Rule::BelowMin)),
            (at(Side::Sell, "130.00000001"), e(Rule::AboveMax)),
            // TC2: an avg whose band edges fall between 1e-8 units: 0.00000003 × 0.7 =
            // 0.000000021, so 0.00000002 is below and 0.00000003 inside
            (with_avg(limit(Side::Buy, "0.00000002", "1"), "0.00000003"), e(Rule::BelowMin)),
            (with_avg(limit(Side::Buy, "0.00000003", "1"), "0.00000003"), Ok(())),
            // TC3: market orders carry no price: not checked
            (market(Side::Buy, "1", "100"), Ok(())),
            // TC4: no average price known: fail closed
            (limit(Side::Buy, "100", "1"), Err(FilterViolation::MissingPrice)),
        ],
    );
}

#[test]
fn percent_price_by_side_boundaries() {
    // {bidMultiplierUp 1.2, bidMultiplierDown 0.2, askMultiplierUp 5, askMultiplierDown 0.8}
    let spec = spec_with("PERCENT_PRICE_BY_SIDE");
    let e = |r| Err(FilterViolation::PercentPriceBySide(r));
    let at = |side, p| with_avg(limit(side, p, "1"), "100");
    run(
        &spec,
        "PERCENT_PRICE_BY_SIDE",
        &[
            // TC0: BUY band [20, 120]
            (at(Side::Buy, "20"), Ok(())),
            (at(Side::Buy, "19.99999999"), e(Rule::BelowMin)),
            (at(Side::Buy, "120"), Ok(())),
            (at(Side::Buy, "120.00000001"), e(Rule::AboveMax)),
            // TC1: SELL band [80, 500]
            (at(Side::Sell, "80"), Ok(())),
            (at(Side::Sell, "79.99999999"), e(Rule::BelowMin)),
            (at(Side::Sell, "500"), Ok(())),
            (at(Side::Sell, "500.00000001"), e(Rule::AboveMax)),
            // TC2: the side decides: 50 is a fine bid but too low an ask, 130 the reverse
            (at(Side::Buy, "50"), Ok(())),
            (at(Side::Sell, "50"), e(Rule::BelowMin)),
            (at(Side::Sell, "130"), Ok(())),
            (at(Side::Buy, "130"), e(Rule::AboveMax)),
            // TC3: market orders are not checked
            (market(Side::Sell, "1", "100"), Ok(())),
        ],
    );
}

#[test]
fn max_num_orders_boundaries() {
    // {maxNumOrders 25}: open orders on the symbol, this one included, <= 25.
    let spec = spec_with("MAX_NUM_ORDERS");
    let with_open = |n| OrderCheck { open_orders: n, ..limit(Side::Buy, "1", "1") };
    run(
        &spec,
        "MAX_NUM_ORDERS",
        &[
            (with_open(0), Ok(())),
            (with_open(24), Ok(())),
            (with_open(25), Err(FilterViolation::MaxNumOrders)),
            (with_open(u32::MAX), Err(FilterViolation::MaxNumOrders)),
            (
                OrderCheck { open_orders: 25, ..market(Side::Sell, "1", "1") },
                Err(FilterViolation::MaxNumOrders),
            ),
        ],
    );
}

#[test]
fn exchange_info_symbol_filters() {
    // The WebSocket API exchangeInfo example (same shape as REST): BNBBTC with PRICE_FILTER and
    // LOT_SIZE.
    let info = load("rest_exchangeInfo.json");
    assert_eq!(field(&info, "exchangeFilters").as_array().map(Vec::len), Some(0));
    let symbols = field(&info, "symbols").as_array().unwrap();
    assert_eq!(symbols.len(), 1);
    let (spec, skipped) = spec_from_symbol(&symbols[0]);
    assert_eq!(skipped, 0);
    assert_eq!(spec.symbol.as_str(), "BNBBTC");
    assert_eq!((spec.base.as_str(), spec.quote.as_str()), ("BNB", "BTC"));
    assert!(spec.trading);
    assert_eq!(spec.tick_size(), px("0.000001"));
    assert_eq!(spec.step_size(), qty("0.001"));
    assert!(
        spec.min_notional.is_none() && spec.notional.is_none() && spec.max_num_orders.is_none()
    );

    let cases: &[(OrderCheck, Result<(), FilterViolation>)] = &[
        // TC0: on tick and step, inside both ranges
        (limit(Side::Buy, "0.001234", "1.5"), Ok(())),
        // TC1: price one unit off the tick
        (limit(Side::Buy, "0.00123401", "1.5"), Err(FilterViolation::PriceFilter(Rule::Increment))),
        // TC2: qty one unit below minQty
        (
            limit(Side::Sell, "0.001234", "0.00099999"),
            Err(FilterViolation::LotSize(Rule::BelowMin)),
        ),
        // TC3: both wrong: PRICE_FILTER is reported first
        (
            limit(Side::Sell, "100000.000001", "100000.001"),
            Err(FilterViolation::PriceFilter(Rule::AboveMax)),
        ),
        // TC4: qty above maxQty
        (limit(Side::Sell, "100000", "100000.001"), Err(FilterViolation::LotSize(Rule::AboveMax))),
        // TC5: market orders: LOT_SIZE still applies, no notional filter to need a price
        (
            OrderCheck { avg_price: None, ..market(Side::Buy, "0.0015", "1") },
            Err(FilterViolation::LotSize(Rule::Increment)),
        ),
        (OrderCheck { avg_price: None, ..market(Side::Buy, "0.002", "1") }, Ok(())),
        // TC6: a limit order without a price
        (
            OrderCheck { price: None, ..limit(Side::Buy, "1", "1") },
            Err(FilterViolation::MissingPrice),
        ),
    ];
    for (i, (order, want)) in cases.iter().enumerate() {
        assert_eq!(spec.check(order), *want, "TC{i}");
    }
    // Directional rounding with the symbol's real tick and step.
    assert_eq!(spec.round_price(Side::Buy, px("0.00123456")), Some(px("0.001234")));
    assert_eq!(spec.round_price(Side::Sell, px("0.00123456")), Some(px("0.001235")));
    assert_eq!(spec.round_qty(qty("1.23456")), qty("1.234"));
    assert!(spec.check(&limit(Side::Buy, "0.001234", "1.234")).is_ok());
}

#[test]
fn exchange_info_restpage_symbol_has_no_filters() {
    // The REST page's example: ETHBTC with an empty filter list. Nothing is enforced but the
    // presence of a limit price.
    let info = load("rest_exchangeInfo_restpage.json");
    let symbols = field(&info, "symbols").as_array().unwrap();
    assert_eq!(symbols.len(), 1);
    let (spec, skipped) = spec_from_symbol(&symbols[0]);
    assert_eq!(skipped, 0);
    assert_eq!(spec, bare_spec("ETHBTC", "ETH", "BTC"));
    assert_eq!(spec.tick_size(), Price::ZERO);
    assert_eq!(spec.round_price(Side::Sell, px("0.12345678")), Some(px("0.12345678")));
    for order in [
        limit(Side::Buy, "0.00000001", "0.00000001"),
        limit(Side::Sell, "90000000000", "90000000000"),
        OrderCheck { avg_price: None, ..market(Side::Buy, "1", "1") },
        OrderCheck { open_orders: u32::MAX, ..limit(Side::Buy, "1", "1") },
    ] {
        assert_eq!(spec.check(&order), Ok(()), "{order:?}");
    }
    assert_eq!(
        spec.check(&OrderCheck { price: None, ..limit(Side::Buy, "1", "1") }),
        Err(FilterViolation::MissingPrice)
    );
}

#[test]
fn all_doc_filters_together_report_in_documented_order() {
    // A symbol carrying every modelled doc filter at once: the first violation in the order
    // PRICE_FILTER, PERCENT_PRICE, PERCENT_PRICE_BY_SIDE, LOT_SIZE, MARKET_LOT_SIZE,
    // MIN_NOTIONAL, NOTIONAL, MAX_NUM_ORDERS is the one reported.
    let mut spec = bare_spec("BNBBTC", "BNB", "BTC");
    for name in [
        "PRICE_FILTER",
        "PERCENT_PRICE",
        "PERCENT_PRICE_BY_SIDE",
        "LOT_SIZE",
        "MARKET_LOT_SIZE",
        "MIN_NOTIONAL",
        "NOTIONAL",
        "MAX_NUM_ORDERS",
    ] {
        assert!(apply_filter(&mut spec, &load(&format!("filters/{name}.json"))));
    }
    let ok = OrderCheck { avg_price: Some(px("100")), ..limit(Side::Buy, "100", "1") };
    let cases: &[(OrderCheck, &str)] = &[
        // TC0: valid everywhere: notional 100 in [10, 10000], price inside both bands
        (ok, ""),
        // TC1: off-tick and outside every band and range: PRICE_FILTER first
        (
            OrderCheck {
                price: Some(px("200.0000001")),
                qty: Some(qty("0.0001")),
                open_orders: 99,
                ..ok
            },
            "PRICE_FILTER",
        ),
        // TC2: on tick but above PERCENT_PRICE (130) and the bid band (120): PERCENT_PRICE first
        (OrderCheck { price: Some(px("131")), ..ok }, "PERCENT_PRICE"),
        // TC3: inside PERCENT_PRICE, above the bid band
        (OrderCheck { price: Some(px("125")), ..ok }, "PERCENT_PRICE_BY_SIDE"),
        // TC4: price fine, qty off-step, notional too small, too many orders: LOT_SIZE
        (OrderCheck { qty: Some(qty("0.0015")), open_orders: 99, ..ok }, "LOT_SIZE"),
        // TC5: market qty off-step: LOT_SIZE is checked before MARKET_LOT_SIZE
        (
            OrderCheck { price: None, kind: OrderType::Market, qty: Some(qty("0.0015")), ..ok },
            "LOT_SIZE",
        ),
        // TC6: notional 100 × 0.05 = 5: below NOTIONAL's 10 but above MIN_NOTIONAL's 0.001
        (OrderCheck { qty: Some(qty("0.05")), ..ok }, "NOTIONAL"),
        // TC7: notional below both: MIN_NOTIONAL first
        (
            OrderCheck {
                price: Some(px("0.000001")),
                avg_price: Some(px("0.000001")),
                qty: Some(qty("1")),
                ..ok
            },
            "MIN_NOTIONAL",
        ),
        // TC8: only the order count is wrong
        (OrderCheck { open_orders: 25, ..ok }, "MAX_NUM_ORDERS"),
    ];
    for (i, (order, want)) in cases.iter().enumerate() {
        let got = spec.check(order).err().map_or("", FilterViolation::filter_name);
        assert_eq!(got, *want, "TC{i}: {order:?}");
    }
}
