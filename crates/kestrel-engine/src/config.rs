//! Engine configuration: plain structs the binary fills from its validated TOML (no serde here).
//!
//! Nothing an operator must choose has a `Default`: funds, limits, sizes and thresholds are
//! always written down. Validation ([`EngineConfig::validate`]) runs in [`crate::Engine::new`]
//! and turns nonsense (a zero order size, a symbol without an instrument spec) into a
//! [`ConfigError`] before the engine ever sees an event.

use std::time::Duration;

use kestrel_model::{InstrumentSpec, Notional, Qty, Symbol};

/// Everything the engine needs to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// One entry per traded symbol; the order fixes the symbol index and the snapshot order.
    pub symbols: Vec<SymbolConfig>,
    /// Account-wide risk limits.
    pub risk: RiskLimits,
    /// How long an order may stay `PendingNew`/`PendingCancel` without an answer before the
    /// engine declares it `Unknown` and queries it; also the re-query interval for `Unknown`
    /// orders. Should exceed the gateway's own request timeout so the gateway reports first.
    pub order_ack_timeout: Duration,
}

/// Per-symbol configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolConfig {
    /// Exchange symbol; must have an [`InstrumentSpec`] passed to [`crate::Engine::new`].
    pub symbol: Symbol,
    /// Which strategy trades it, with its parameters.
    pub strategy: StrategyConfig,
    /// Largest absolute position (base units) the symbol may reach even if every open order on
    /// one side filled.
    pub max_position: Qty,
    /// Most orders that may be open (any non-terminal state, `Unknown` included) at once.
    pub max_open_orders: u32,
}

/// Strategy selection for one symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrategyConfig {
    /// Order-book-imbalance taker ([`crate::strategy::ImbalanceTaker`]).
    ImbalanceTaker(TakerParams),
    /// Inventory-skewed market maker ([`crate::strategy::MarketMaker`]).
    MarketMaker(MakerParams),
    /// Track the book, orders and position but never decide anything (e.g. a symbol held only
    /// for its inventory, or adopted orders being wound down by hand).
    Passive,
}

/// How the taker sends its orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakerOrderStyle {
    /// `LIMIT` + `IOC` at the opposite best price moved `slippage_bps` against us: the price
    /// bounds the fill, the unfilled rest expires.
    IocLimit {
        /// How far beyond the opposite best the limit may go, in basis points of that price.
        slippage_bps: u32,
    },
    /// `MARKET` by base quantity: certain fill, no price bound (the risk price band values it
    /// at the band edge for the funds cap).
    Market,
}

/// Parameters of the order-book-imbalance taker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakerParams {
    /// Levels per side summed for the imbalance (1..=10, the `BookTop` depth).
    pub depth_levels: usize,
    /// Buy when `(bids - asks) / (bids + asks)` over `depth_levels` is at least this, in basis
    /// points of 1 (e.g. 3000 = 0.3); sell when at most its negative.
    pub imbalance_threshold_bps: u32,
    /// The microprice must also sit at least this far from mid in the signal's direction, in
    /// basis points of mid (0 = only require the right side of mid).
    pub micro_edge_bps: u32,
    /// Minimum event time between two signals on the symbol.
    pub cooldown: Duration,
    /// Base quantity per order (rounded down to the step by risk).
    pub order_qty: Qty,
    /// IOC limit or market.
    pub style: TakerOrderStyle,
}

/// Parameters of the inventory-skewed market maker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MakerParams {
    /// Distance of each quote from mid, in basis points of mid.
    pub half_spread_bps: u32,
    /// Base quantity of each quote.
    pub quote_qty: Qty,
    /// Shift of both quotes away from the inventory at full `max_position`, in basis points of
    /// mid; linear in the position in between (long ⇒ quotes move down to sell more).
    pub skew_bps_at_max: u32,
    /// Cancel and requote both sides when mid moved more than this from the mid the quotes
    /// were computed at, in basis points.
    pub requote_threshold_bps: u32,
    /// Minimum event time between two placements of the same side (throttles re-placing a
    /// side that was filled or refused by risk).
    pub min_requote_interval: Duration,
    /// A book not updated for this long counts as stale: quotes are cancelled.
    pub stale_after: Duration,
    /// Quote with `LIMIT_MAKER` (post-only) instead of `LIMIT GTC`.
    pub post_only: bool,
}

/// Account-wide risk limits (M5). See [`crate::risk`] for the order of checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskLimits {
    /// Funds cap in quote units (e.g. 500 USDT): worst-case exposure of positions at mark plus
    /// open orders may not exceed it.
    pub funds: Notional,
    /// Kill switch: trips when realised + unrealised PnL (since start or the last operator
    /// `Resume`) falls below `-max_drawdown` (quote units, positive number).
    pub max_drawdown: Notional,
    /// Limit prices must lie within this many basis points of mid.
    pub price_band_bps: u32,
    /// Sustained new-order rate allowed (token refill per second), below the exchange's
    /// `ORDERS` limit (50 per 10 s on Binance ⇒ e.g. 4).
    pub orders_per_sec: u32,
    /// Token bucket size: how many orders may go out back to back.
    pub order_burst: u32,
    /// Whether orders may be placed while a book comes from the REST fallback (M2).
    pub allow_rest_fallback: bool,
    /// Most orders, across all symbols, that the engine has decided but the exchange has not
    /// yet answered (`PendingNew`); the next new order is refused (`max_pending_orders`)
    /// instead of queueing behind them. When the journal's fsyncs or the exchange are slow,
    /// orders otherwise wait in the execution gateway and its action channel and reach the
    /// exchange on prices that are seconds old. Cancels are never limited by it.
    pub max_pending_orders: u32,
}

/// A configuration the engine refuses to run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No symbol configured.
    #[error("no symbols configured")]
    NoSymbols,
    /// The same symbol configured twice.
    #[error("symbol {0} configured twice")]
    DuplicateSymbol(Symbol),
    /// A configured symbol has no instrument spec (exchangeInfo).
    #[error("no instrument spec for symbol {0}")]
    MissingInstrument(Symbol),
    /// A configured symbol is not in `TRADING` status.
    #[error("symbol {0} is not trading")]
    NotTrading(Symbol),
    /// A parameter is out of its allowed range.
    #[error("{symbol}: invalid {field}: {why}")]
    Invalid {
        /// Symbol (or `*` for account-wide limits).
        symbol: String,
        /// Field name as in the config file.
        field: &'static str,
        /// What is wrong.
        why: &'static str,
    },
}

fn invalid(symbol: &str, field: &'static str, why: &'static str) -> ConfigError {
    ConfigError::Invalid { symbol: symbol.to_owned(), field, why }
}

impl EngineConfig {
    /// Checks the config against itself and the instrument specs.
    pub fn validate(&self, instruments: &[InstrumentSpec]) -> Result<(), ConfigError> {
        if self.symbols.is_empty() {
            return Err(ConfigError::NoSymbols);
        }
        let r = &self.risk;
        if r.funds.is_negative() || r.funds.is_zero() {
            return Err(invalid("*", "funds", "must be positive"));
        }
        if r.max_drawdown.is_negative() || r.max_drawdown.is_zero() {
            return Err(invalid("*", "max_drawdown", "must be positive"));
        }
        if r.price_band_bps == 0 || r.price_band_bps >= 10_000 {
            return Err(invalid("*", "price_band_bps", "must be in 1..10000"));
        }
        if r.orders_per_sec == 0 || r.order_burst == 0 {
            return Err(invalid("*", "orders_per_sec/order_burst", "must be positive"));
        }
        if r.max_pending_orders == 0 {
            return Err(invalid(
                "*",
                "max_pending_orders",
                "must be positive (0 would refuse every new order)",
            ));
        }
        if self.order_ack_timeout.is_zero() {
            return Err(invalid("*", "order_ack_timeout", "must be positive"));
        }
        for (i, s) in self.symbols.iter().enumerate() {
            if self.symbols[..i].iter().any(|o| o.symbol == s.symbol) {
                return Err(ConfigError::DuplicateSymbol(s.symbol));
            }
            let spec = instruments
                .iter()
                .find(|x| x.symbol == s.symbol)
                .ok_or(ConfigError::MissingInstrument(s.symbol))?;
            if !spec.trading {
                return Err(ConfigError::NotTrading(s.symbol));
            }
            let name = s.symbol.as_str();
            if !s.max_position.is_positive() {
                return Err(invalid(name, "max_position", "must be positive"));
            }
            if s.max_open_orders == 0 {
                return Err(invalid(name, "max_open_orders", "must be positive"));
            }
            match &s.strategy {
                StrategyConfig::ImbalanceTaker(p) => {
                    if !(1..=kestrel_model::TOP_LEVELS).contains(&p.depth_levels) {
                        return Err(invalid(name, "depth_levels", "must be in 1..=10"));
                    }
                    if p.imbalance_threshold_bps == 0 || p.imbalance_threshold_bps > 10_000 {
                        return Err(invalid(name, "imbalance_threshold_bps", "must be 1..=10000"));
                    }
                    if !p.order_qty.is_positive() {
                        return Err(invalid(name, "order_qty", "must be positive"));
                    }
                    if let TakerOrderStyle::IocLimit { slippage_bps } = p.style {
                        if slippage_bps >= 10_000 {
                            return Err(invalid(name, "slippage_bps", "must be below 10000"));
                        }
                    }
                }
                StrategyConfig::MarketMaker(p) => {
                    if p.half_spread_bps == 0 || p.half_spread_bps >= 10_000 {
                        return Err(invalid(name, "half_spread_bps", "must be in 1..10000"));
                    }
                    if p.skew_bps_at_max >= 10_000 {
                        return Err(invalid(name, "skew_bps_at_max", "must be below 10000"));
                    }
                    if !p.quote_qty.is_positive() {
                        return Err(invalid(name, "quote_qty", "must be positive"));
                    }
                    if p.stale_after.is_zero() {
                        return Err(invalid(name, "stale_after", "must be positive"));
                    }
                }
                StrategyConfig::Passive => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kestrel_model::Asset;

    fn spec(sym: &str, trading: bool) -> InstrumentSpec {
        InstrumentSpec {
            symbol: Symbol::new(sym).unwrap(),
            base: Asset::new("BTC").unwrap(),
            quote: Asset::new("USDT").unwrap(),
            trading,
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

    fn maker() -> MakerParams {
        MakerParams {
            half_spread_bps: 10,
            quote_qty: "0.001".parse().unwrap(),
            skew_bps_at_max: 10,
            requote_threshold_bps: 5,
            min_requote_interval: Duration::from_millis(100),
            stale_after: Duration::from_secs(2),
            post_only: false,
        }
    }

    fn good() -> EngineConfig {
        EngineConfig {
            symbols: vec![SymbolConfig {
                symbol: Symbol::new("BTCUSDT").unwrap(),
                strategy: StrategyConfig::MarketMaker(maker()),
                max_position: "0.01".parse().unwrap(),
                max_open_orders: 4,
            }],
            risk: RiskLimits {
                funds: "500".parse().unwrap(),
                max_drawdown: "50".parse().unwrap(),
                price_band_bps: 100,
                orders_per_sec: 4,
                order_burst: 8,
                allow_rest_fallback: false,
                max_pending_orders: 32,
            },
            order_ack_timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn validation_names_the_bad_field() {
        let specs = [spec("BTCUSDT", true), spec("HALTED", false)];
        assert_eq!(good().validate(&specs), Ok(()));
        type Mutate = fn(&mut EngineConfig);
        let cases: &[(Mutate, &str)] = &[
            // TC0..: each mutation and the error text it must produce
            (|c| c.symbols.clear(), "no symbols configured"),
            (|c| c.symbols.push(c.symbols[0].clone()), "symbol BTCUSDT configured twice"),
            (
                |c| c.symbols[0].symbol = Symbol::new("ETHUSDT").unwrap(),
                "no instrument spec for symbol ETHUSDT",
            ),
            (
                |c| c.symbols[0].symbol = Symbol::new("HALTED").unwrap(),
                "symbol HALTED is not trading",
            ),
            (|c| c.risk.funds = Notional::ZERO, "*: invalid funds: must be positive"),
            (
                |c| c.risk.max_drawdown = "-1".parse().unwrap(),
                "*: invalid max_drawdown: must be positive",
            ),
            (|c| c.risk.price_band_bps = 0, "*: invalid price_band_bps: must be in 1..10000"),
            (|c| c.risk.order_burst = 0, "*: invalid orders_per_sec/order_burst: must be positive"),
            (
                |c| c.risk.max_pending_orders = 0,
                "*: invalid max_pending_orders: must be positive (0 would refuse every new order)",
            ),
            (
                |c| c.order_ack_timeout = Duration::ZERO,
                "*: invalid order_ack_timeout: must be positive",
            ),
            (
                |c| c.symbols[0].max_position = Qty::ZERO,
                "BTCUSDT: invalid max_position: must be positive",
            ),
            (
                |c| c.symbols[0].max_open_orders = 0,
                "BTCUSDT: invalid max_open_orders: must be positive",
            ),
            (
                |c| {
                    let mut m = maker();
                    m.quote_qty = Qty::ZERO;
                    c.symbols[0].strategy = StrategyConfig::MarketMaker(m);
                },
                "BTCUSDT: invalid quote_qty: must be positive",
            ),
            (
                |c| {
                    c.symbols[0].strategy = StrategyConfig::ImbalanceTaker(TakerParams {
                        depth_levels: 11,
                        imbalance_threshold_bps: 3000,
                        micro_edge_bps: 0,
                        cooldown: Duration::ZERO,
                        order_qty: "0.001".parse().unwrap(),
                        style: TakerOrderStyle::Market,
                    })
                },
                "BTCUSDT: invalid depth_levels: must be in 1..=10",
            ),
        ];
        for (i, (mutate, want)) in cases.iter().enumerate() {
            let mut c = good();
            mutate(&mut c);
            let err = c.validate(&specs).unwrap_err();
            assert_eq!(err.to_string(), *want, "TC{i}");
        }
    }
}
