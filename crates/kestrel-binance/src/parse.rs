//! Wire → model conversion, and the serde helpers that read Binance's decimal strings straight
//! into fixed point (no float ever on the path, STYLE.md 2.3).
//!
//! The `de` helpers are used as `#[serde(deserialize_with = "crate::parse::de::price")]` on wire
//! fields; they take the string as serde hands it (borrowed when possible) and call the model's
//! exact parsers, so `"0.10264410"` becomes `Price` mantissa `10264410` without allocating.

use std::borrow::Cow;

use kestrel_model::{Asset, ClientOrderId, Notional, OrderId, Symbol, UnixNanos};

use crate::error::BinanceError;

/// Serde `deserialize_with` helpers for decimal strings and levels.
pub mod de {
    use std::fmt;
    use std::marker::PhantomData;
    use std::str::FromStr;

    use kestrel_model::{Level, Notional, ParseNumError, Price, Qty};
    use serde::de::{self, Deserializer, SeqAccess, Visitor};
    use serde::Deserialize;

    struct DecVisitor<T>(PhantomData<T>);

    impl<T: FromStr<Err = ParseNumError>> Visitor<'_> for DecVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a decimal number as a string")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            s.parse().map_err(|e: ParseNumError| E::custom(format_args!("{e}: {s:?}")))
        }
    }

    fn decimal<'de, D: Deserializer<'de>, T: FromStr<Err = ParseNumError>>(
        d: D,
    ) -> Result<T, D::Error> {
        d.deserialize_str(DecVisitor(PhantomData))
    }

    /// A [`Price`] from a decimal string (`"0.10264410"`).
    pub fn price<'de, D: Deserializer<'de>>(d: D) -> Result<Price, D::Error> {
        decimal(d)
    }

    /// A [`Qty`] from a decimal string.
    pub fn qty<'de, D: Deserializer<'de>>(d: D) -> Result<Qty, D::Error> {
        decimal(d)
    }

    /// A [`Notional`] from a decimal string (quote amounts, balances, commissions).
    pub fn notional<'de, D: Deserializer<'de>>(d: D) -> Result<Notional, D::Error> {
        decimal(d)
    }

    /// An optional [`Price`]: absent or `null` is `None`.
    pub fn opt_price<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Price>, D::Error> {
        Option::<PriceDe>::deserialize(d).map(|o| o.map(|p| p.0))
    }

    /// An optional [`Qty`]: absent or `null` is `None`.
    pub fn opt_qty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Qty>, D::Error> {
        Option::<QtyDe>::deserialize(d).map(|o| o.map(|p| p.0))
    }

    /// An optional [`Notional`]: absent or `null` is `None`.
    pub fn opt_notional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Notional>, D::Error> {
        Option::<NotionalDe>::deserialize(d).map(|o| o.map(|p| p.0))
    }

    /// `[["price","qty"], ...]` into [`Level`]s (depth snapshots, depth updates).
    pub fn levels<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Level>, D::Error> {
        struct LevelsVisitor;
        impl<'de> Visitor<'de> for LevelsVisitor {
            type Value = Vec<Level>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of [price, qty] pairs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Level>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(5000));
                while let Some(LevelDe(l)) = seq.next_element()? {
                    out.push(l);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(LevelsVisitor)
    }

    /// A `Price` wrapper that implements `Deserialize` (for use inside other helpers).
    #[derive(Debug, Clone, Copy)]
    pub struct PriceDe(pub Price);
    /// A `Qty` wrapper that implements `Deserialize`.
    #[derive(Debug, Clone, Copy)]
    pub struct QtyDe(pub Qty);
    /// A `Notional` wrapper that implements `Deserialize`.
    #[derive(Debug, Clone, Copy)]
    pub struct NotionalDe(pub Notional);
    /// One `[price, qty]` level.
    #[derive(Debug, Clone, Copy)]
    pub struct LevelDe(pub Level);

    impl<'de> Deserialize<'de> for PriceDe {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            price(d).map(PriceDe)
        }
    }
    impl<'de> Deserialize<'de> for QtyDe {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            qty(d).map(QtyDe)
        }
    }
    impl<'de> Deserialize<'de> for NotionalDe {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            notional(d).map(NotionalDe)
        }
    }
    impl<'de> Deserialize<'de> for LevelDe {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let (PriceDe(p), QtyDe(q)) = <(PriceDe, QtyDe)>::deserialize(d)?;
            Ok(LevelDe(Level::new(p, q)))
        }
    }
}

/// A symbol from the wire.
pub fn symbol(context: &'static str, s: &str) -> Result<Symbol, BinanceError> {
    Symbol::new(s).map_err(|e| invalid(context, format!("symbol {s:?}: {e}")))
}

/// An asset code from the wire.
pub fn asset(context: &'static str, s: &str) -> Result<Asset, BinanceError> {
    Asset::new(s).map_err(|e| invalid(context, format!("asset {s:?}: {e}")))
}

/// A client order id from the wire.
pub fn client_id(context: &'static str, s: &str) -> Result<ClientOrderId, BinanceError> {
    ClientOrderId::new(s).map_err(|e| invalid(context, format!("client order id {s:?}: {e}")))
}

/// An exchange order id (never negative on the wire for a real order).
pub fn order_id(context: &'static str, id: i64) -> Result<OrderId, BinanceError> {
    u64::try_from(id).map(OrderId).map_err(|_| invalid(context, format!("order id {id}")))
}

/// Milliseconds since the epoch → [`UnixNanos`] (negative clamps to zero).
pub fn millis(ms: i64) -> UnixNanos {
    UnixNanos::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A text field that may arrive borrowed or (if it held JSON escapes) owned.
pub type Text<'a> = Cow<'a, str>;

/// The `Invalid` error for a value that does not fit the model.
pub fn invalid(context: &'static str, detail: String) -> BinanceError {
    BinanceError::Invalid { context, detail }
}

/// Ensures a notional converts to the 1e-8 grid, e.g. to send it as `quoteOrderQty`.
pub fn notional_to_wire(n: Notional) -> Option<String> {
    n.floor_to_qty().filter(|q| q.to_notional() == n).map(|q| q.to_string())
}

/// `SECOND`/`MINUTE`/`HOUR`/`DAY` × `intervalNum` as a window length.
pub fn rate_limit_interval(interval: &str, num: u32) -> Option<std::time::Duration> {
    let unit = match interval {
        "SECOND" => 1,
        "MINUTE" => 60,
        "HOUR" => 3_600,
        "DAY" => 86_400,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(u64::from(num) * unit))
}

/// `exchangeInfo.rateLimits` → the limits the rate limiter enforces (`REQUEST_WEIGHT` and
/// `ORDERS`; `RAW_REQUESTS` and `CONNECTIONS` are not tracked). Falls back to the documented
/// defaults for a kind the exchange does not list.
pub fn exchange_limits(
    wire: &[crate::wire::rest::RateLimit<'_>],
) -> crate::rate_limit::ExchangeLimits {
    use crate::rate_limit::{ExchangeLimits, Limit};
    let mut out = ExchangeLimits { request_weight: Vec::new(), orders: Vec::new() };
    for rl in wire {
        let Some(interval) = rate_limit_interval(&rl.interval, rl.interval_num) else { continue };
        let limit = Limit { interval, limit: rl.limit };
        match rl.rate_limit_type.as_ref() {
            "REQUEST_WEIGHT" => out.request_weight.push(limit),
            "ORDERS" => out.orders.push(limit),
            _ => {}
        }
    }
    let dflt = ExchangeLimits::binance_spot_default();
    if out.request_weight.is_empty() {
        out.request_weight = dflt.request_weight;
    }
    if out.orders.is_empty() {
        out.orders = dflt.orders;
    }
    out.request_weight.sort_by_key(|l| l.interval);
    out.orders.sort_by_key(|l| l.interval);
    out
}

fn num<T: std::str::FromStr<Err = kestrel_model::ParseNumError>>(
    filter: &'static str,
    field: &'static str,
    s: &str,
) -> Result<T, BinanceError> {
    s.parse().map_err(|e| invalid("exchangeInfo filter", format!("{filter}.{field} = {s:?}: {e}")))
}

/// One `exchangeInfo` symbol → [`kestrel_model::InstrumentSpec`]. Fails (refusing the symbol,
/// STYLE.md 2.3) if any filter value does not fit kestrel's fixed point (more than 8
/// decimals, or beyond ±92,233,720,368).
pub fn instrument_spec(
    s: &crate::wire::rest::SymbolInfo<'_>,
) -> Result<kestrel_model::InstrumentSpec, BinanceError> {
    use crate::wire::rest::Filter;
    use kestrel_model::instrument::{
        LotSize, MinNotional, NotionalFilter, PercentPrice, PercentPriceBySide, PriceFilter,
    };
    const CTX: &str = "exchangeInfo symbol";
    let mut spec = kestrel_model::InstrumentSpec {
        symbol: symbol(CTX, &s.symbol)?,
        base: asset(CTX, &s.base_asset)?,
        quote: asset(CTX, &s.quote_asset)?,
        trading: s.status == "TRADING",
        price_filter: None,
        lot_size: None,
        market_lot_size: None,
        min_notional: None,
        notional: None,
        percent_price: None,
        percent_price_by_side: None,
        max_num_orders: None,
    };
    for f in &s.filters {
        match f {
            Filter::PriceFilter { min_price, max_price, tick_size } => {
                const F: &str = "PRICE_FILTER";
                spec.price_filter = Some(PriceFilter {
                    min_price: num(F, "minPrice", min_price)?,
                    max_price: num(F, "maxPrice", max_price)?,
                    tick_size: num(F, "tickSize", tick_size)?,
                });
            }
            Filter::LotSize { min_qty, max_qty, step_size } => {
                const F: &str = "LOT_SIZE";
                spec.lot_size = Some(LotSize {
                    min_qty: num(F, "minQty", min_qty)?,
                    max_qty: num(F, "maxQty", max_qty)?,
                    step_size: num(F, "stepSize", step_size)?,
                });
            }
            Filter::MarketLotSize { min_qty, max_qty, step_size } => {
                const F: &str = "MARKET_LOT_SIZE";
                spec.market_lot_size = Some(LotSize {
                    min_qty: num(F, "minQty", min_qty)?,
                    max_qty: num(F, "maxQty", max_qty)?,
                    step_size: num(F, "stepSize", step_size)?,
                });
            }
            Filter::MinNotional { min_notional, apply_to_market, avg_price_mins } => {
                spec.min_notional = Some(MinNotional {
                    min_notional: num("MIN_NOTIONAL", "minNotional", min_notional)?,
                    apply_to_market: *apply_to_market,
                    avg_price_mins: *avg_price_mins,
                });
            }
            Filter::Notional {
                min_notional,
                apply_min_to_market,
                max_notional,
                apply_max_to_market,
                avg_price_mins,
            } => {
                const F: &str = "NOTIONAL";
                spec.notional = Some(NotionalFilter {
                    min_notional: num(F, "minNotional", min_notional)?,
                    apply_min_to_market: *apply_min_to_market,
                    max_notional: num(F, "maxNotional", max_notional)?,
                    apply_max_to_market: *apply_max_to_market,
                    avg_price_mins: *avg_price_mins,
                });
            }
            Filter::PercentPrice { multiplier_up, multiplier_down, avg_price_mins } => {
                const F: &str = "PERCENT_PRICE";
                spec.percent_price = Some(PercentPrice {
                    multiplier_up: num(F, "multiplierUp", multiplier_up)?,
                    multiplier_down: num(F, "multiplierDown", multiplier_down)?,
                    avg_price_mins: *avg_price_mins,
                });
            }
            Filter::PercentPriceBySide {
                bid_multiplier_up,
                bid_multiplier_down,
                ask_multiplier_up,
                ask_multiplier_down,
                avg_price_mins,
            } => {
                const F: &str = "PERCENT_PRICE_BY_SIDE";
                spec.percent_price_by_side = Some(PercentPriceBySide {
                    bid_multiplier_up: num(F, "bidMultiplierUp", bid_multiplier_up)?,
                    bid_multiplier_down: num(F, "bidMultiplierDown", bid_multiplier_down)?,
                    ask_multiplier_up: num(F, "askMultiplierUp", ask_multiplier_up)?,
                    ask_multiplier_down: num(F, "askMultiplierDown", ask_multiplier_down)?,
                    avg_price_mins: *avg_price_mins,
                });
            }
            Filter::MaxNumOrders { max_num_orders } => spec.max_num_orders = Some(*max_num_orders),
            Filter::Other => {}
        }
    }
    Ok(spec)
}

/// `BUY`/`SELL`.
pub fn side(context: &'static str, s: &str) -> Result<kestrel_model::Side, BinanceError> {
    match s {
        "BUY" => Ok(kestrel_model::Side::Buy),
        "SELL" => Ok(kestrel_model::Side::Sell),
        other => Err(invalid(context, format!("side {other:?}"))),
    }
}

/// An order status string (`X` / `status`).
pub fn status(context: &'static str, s: &str) -> Result<kestrel_model::OrderStatus, BinanceError> {
    kestrel_model::OrderStatus::from_binance(s)
        .ok_or_else(|| invalid(context, format!("status {s:?}")))
}

/// What kestrel knew about the request, for ACK responses that carry no state.
#[derive(Debug, Clone, Copy)]
pub struct AckContext {
    /// Side of the placed order.
    pub side: kestrel_model::Side,
    /// Base quantity ordered (zero for a MARKET order by quote amount).
    pub orig_qty: kestrel_model::Qty,
}

/// A REST/WS-API order body → [`kestrel_model::OrderUpdate`] (without a fill; FULL fills come
/// from [`order_fills`]). For cancel responses the order's id is `origClientOrderId`. `ack`
/// fills in side and quantity for ACK responses, which carry neither.
pub fn order_update(
    o: &crate::wire::rest::Order<'_>,
    ts_local: UnixNanos,
    ack: Option<AckContext>,
) -> Result<kestrel_model::OrderUpdate, BinanceError> {
    use kestrel_model::{OrderStatus, Qty};
    const CTX: &str = "order response";
    let cid =
        o.orig_client_order_id.as_deref().filter(|s| !s.is_empty()).unwrap_or(&o.client_order_id);
    let side = match (&o.side, ack) {
        (Some(s), _) => side(CTX, s)?,
        (None, Some(a)) => a.side,
        (None, None) => return Err(invalid(CTX, "missing side".into())),
    };
    let status = match &o.status {
        Some(s) => status(CTX, s)?,
        None => OrderStatus::New,
    };
    let ts = o.transact_time.or(o.update_time).or(o.time).or(o.working_time).unwrap_or(0);
    Ok(kestrel_model::OrderUpdate {
        symbol: symbol(CTX, &o.symbol)?,
        client_id: client_id(CTX, cid)?,
        order_id: Some(order_id(CTX, o.order_id)?),
        side,
        status,
        orig_qty: o.orig_qty.or(ack.map(|a| a.orig_qty)).unwrap_or(Qty::ZERO),
        cum_qty: o.executed_qty.unwrap_or(Qty::ZERO),
        cum_quote: o.cummulative_quote_qty.unwrap_or(Notional::ZERO),
        fill: None,
        ts_exchange: millis(ts),
        ts_local,
    })
}

/// The fills of a FULL order response, stamped with its `transactTime`. Fills of a response
/// are always taker fills (a resting order's later fills arrive as execution reports).
pub fn order_fills(
    o: &crate::wire::rest::Order<'_>,
) -> Result<Vec<kestrel_model::Fill>, BinanceError> {
    let ts = millis(o.transact_time.unwrap_or(0));
    o.fills
        .iter()
        .map(|f| {
            Ok(kestrel_model::Fill {
                trade_id: kestrel_model::TradeId(f.trade_id),
                price: f.price,
                qty: f.qty,
                commission: f.commission,
                commission_asset: opt_asset("order fill", &f.commission_asset)?,
                is_maker: false,
                ts_exchange: ts,
            })
        })
        .collect()
}

/// A commission asset: empty means none.
pub fn opt_asset(context: &'static str, s: &str) -> Result<Option<Asset>, BinanceError> {
    if s.is_empty() {
        Ok(None)
    } else {
        asset(context, s).map(Some)
    }
}

/// `GET /api/v3/account` balances → model balances.
pub fn balances(
    a: &crate::wire::rest::Account<'_>,
) -> Result<Vec<kestrel_model::Balance>, BinanceError> {
    let ts = millis(a.update_time);
    a.balances
        .iter()
        .map(|b| {
            Ok(kestrel_model::Balance {
                asset: asset("account", &b.asset)?,
                free: b.free,
                locked: b.locked,
                ts_exchange: ts,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use kestrel_model::{Level, Price, Qty};
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct T {
        #[serde(deserialize_with = "super::de::price")]
        p: Price,
        #[serde(default, deserialize_with = "super::de::opt_qty")]
        q: Option<Qty>,
        #[serde(deserialize_with = "super::de::levels")]
        l: Vec<Level>,
    }

    #[test]
    fn decimals_parse_exactly_and_reject_bad_input() {
        let t: T = serde_json::from_str(
            r#"{"p":"0.10264410","q":null,"l":[["4.00000000","431.00000000"]]}"#,
        )
        .unwrap();
        assert_eq!(t.p.mantissa(), 10_264_410);
        assert_eq!(t.q, None);
        assert_eq!(t.l, vec![Level::new("4".parse().unwrap(), "431".parse().unwrap())]);
        // TC0: a float instead of a string; TC1: too many decimals; TC2: exponent
        for bad in
            [r#"{"p":0.1,"l":[]}"#, r#"{"p":"0.000000001","l":[]}"#, r#"{"p":"1e-8","l":[]}"#]
        {
            assert!(serde_json::from_str::<T>(bad).is_err(), "{bad}");
        }
    }
}
