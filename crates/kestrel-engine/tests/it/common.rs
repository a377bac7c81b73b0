//! Fixtures shared by the engine tests: instruments, configs, event builders, a scripted
//! strategy.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kestrel_engine::{
    ClientIdGen, Engine, EngineConfig, Intent, MakerParams, MarketView, RiskLimits, Strategy,
    StrategyConfig, SymbolConfig, TakerOrderStyle, TakerParams,
};
use kestrel_model::instrument::{LotSize, NotionalFilter, PriceFilter};
use kestrel_model::{
    Action, Asset, BookSource, BookState, BookTop, ClientOrderId, Event, Fill, InstrumentSpec,
    Level, Notional, OrderId, OrderRequest, OrderStatus, OrderUpdate, Price, Qty, Side, Symbol,
    TradeId, UnixNanos,
};

pub fn p(s: &str) -> Price {
    s.parse().unwrap()
}
pub fn q(s: &str) -> Qty {
    s.parse().unwrap()
}
pub fn n(s: &str) -> Notional {
    s.parse().unwrap()
}
pub fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}
pub fn cid(s: &str) -> ClientOrderId {
    ClientOrderId::new(s).unwrap()
}
pub fn ms(t: u64) -> UnixNanos {
    UnixNanos::from_millis(t)
}

/// BTCUSDT-like: tick 0.01, step 0.00001, notional >= 5. ETHUSDT-like: tick 0.01, step 0.0001.
pub fn spec(name: &str) -> InstrumentSpec {
    let (base, step) = match name {
        "ETHUSDT" => ("ETH", "0.0001"),
        _ => ("BTC", "0.00001"),
    };
    InstrumentSpec {
        symbol: sym(name),
        base: Asset::new(base).unwrap(),
        quote: Asset::new("USDT").unwrap(),
        trading: true,
        price_filter: Some(PriceFilter {
            min_price: p("0.01"),
            max_price: p("1000000"),
            tick_size: p("0.01"),
        }),
        lot_size: Some(LotSize { min_qty: q(step), max_qty: q("9000"), step_size: q(step) }),
        market_lot_size: None,
        min_notional: None,
        notional: Some(NotionalFilter {
            min_notional: n("5"),
            apply_min_to_market: true,
            max_notional: n("9000000"),
            apply_max_to_market: false,
            avg_price_mins: 5,
        }),
        percent_price: None,
        percent_price_by_side: None,
        max_num_orders: Some(200),
    }
}

pub fn instruments() -> Vec<InstrumentSpec> {
    vec![spec("BTCUSDT"), spec("ETHUSDT")]
}

pub fn limits() -> RiskLimits {
    RiskLimits {
        funds: n("500"),
        max_drawdown: n("50"),
        price_band_bps: 100,
        orders_per_sec: 5,
        order_burst: 10,
        allow_rest_fallback: false,
        max_pending_orders: 32,
    }
}

pub fn taker_params() -> TakerParams {
    TakerParams {
        depth_levels: 3,
        imbalance_threshold_bps: 3_000,
        micro_edge_bps: 0,
        cooldown: Duration::from_millis(500),
        order_qty: q("0.001"),
        style: TakerOrderStyle::IocLimit { slippage_bps: 5 },
    }
}

pub fn maker_params() -> MakerParams {
    MakerParams {
        half_spread_bps: 10,
        quote_qty: q("0.001"),
        skew_bps_at_max: 10,
        requote_threshold_bps: 5,
        min_requote_interval: Duration::from_millis(200),
        stale_after: Duration::from_secs(2),
        post_only: false,
    }
}

pub fn symbol_config(name: &str, strategy: StrategyConfig) -> SymbolConfig {
    SymbolConfig { symbol: sym(name), strategy, max_position: q("0.005"), max_open_orders: 4 }
}

pub fn config(symbols: Vec<SymbolConfig>) -> EngineConfig {
    EngineConfig { symbols, risk: limits(), order_ack_timeout: Duration::from_secs(5) }
}

pub fn engine_with(cfg: EngineConfig) -> Engine {
    Engine::new(cfg, &instruments(), ClientIdGen::new("kst", 1).unwrap()).unwrap()
}

pub fn taker_engine() -> Engine {
    engine_with(config(vec![symbol_config(
        "BTCUSDT",
        StrategyConfig::ImbalanceTaker(taker_params()),
    )]))
}

pub fn maker_engine() -> Engine {
    engine_with(config(vec![symbol_config("BTCUSDT", StrategyConfig::MarketMaker(maker_params()))]))
}

/// A book view from `(price, qty)` pairs, best first.
pub fn book_levels(
    name: &str,
    state: BookState,
    bids: &[(&str, &str)],
    asks: &[(&str, &str)],
    t: UnixNanos,
) -> Event {
    let bl: Vec<Level> = bids.iter().map(|(a, b)| Level::new(p(a), q(b))).collect();
    let al: Vec<Level> = asks.iter().map(|(a, b)| Level::new(p(a), q(b))).collect();
    let mut top = BookTop::from_levels(sym(name), state, &bl, &al);
    top.ts_local = t;
    top.ts_exchange = t;
    Event::Book(top)
}

/// A synced one-level book.
pub fn book(name: &str, bid: &str, ask: &str, t: UnixNanos) -> Event {
    book_levels(name, BookState::Synced, &[(bid, "1")], &[(ask, "1")], t)
}

/// Same as [`book`] but from the REST fallback.
pub fn rest_book(name: &str, bid: &str, ask: &str, t: UnixNanos) -> Event {
    let Event::Book(mut top) = book(name, bid, ask, t) else { unreachable!() };
    top.source = BookSource::RestFallback;
    Event::Book(top)
}

pub fn places(actions: &[Action]) -> Vec<OrderRequest> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Place(r) => Some(*r),
            _ => None,
        })
        .collect()
}

/// An exchange update for a placed order.
pub fn update(
    req: &OrderRequest,
    status: OrderStatus,
    cum: &str,
    cum_quote: &str,
    fill: Option<Fill>,
    t: UnixNanos,
) -> Event {
    Event::Order(OrderUpdate {
        symbol: req.symbol,
        client_id: req.client_id,
        order_id: Some(OrderId(7)),
        side: req.side,
        status,
        orig_qty: req.qty,
        cum_qty: q(cum),
        cum_quote: n(cum_quote),
        fill,
        ts_exchange: t,
        ts_local: t,
    })
}

pub fn ack(req: &OrderRequest, t: UnixNanos) -> Event {
    update(req, OrderStatus::New, "0", "0", None, t)
}

pub fn fill(trade: u64, price: &str, qty: &str, fee: &str, fee_asset: Option<&str>) -> Fill {
    Fill {
        trade_id: TradeId(trade),
        price: p(price),
        qty: q(qty),
        commission: n(fee),
        commission_asset: fee_asset.map(|a| Asset::new(a).unwrap()),
        is_maker: false,
        ts_exchange: UnixNanos::ZERO,
    }
}

/// Runs one event and returns the actions.
pub fn run(engine: &mut Engine, ev: Event) -> Vec<Action> {
    let mut out = Vec::new();
    engine.handle(&ev, &mut out);
    out
}

/// A strategy that emits whatever the test queued, on the next book event.
#[derive(Debug, Clone, Default)]
pub struct Scripted(pub Arc<Mutex<VecDeque<Intent>>>);

impl Scripted {
    pub fn push(&self, i: Intent) {
        self.0.lock().unwrap().push_back(i);
    }
}

impl Strategy for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }
    fn on_book(&mut self, _view: &MarketView<'_>, out: &mut Vec<Intent>) {
        out.extend(self.0.lock().unwrap().drain(..));
    }
}

/// An engine on BTCUSDT and ETHUSDT driven by a [`Scripted`] strategy on BTCUSDT.
pub fn scripted_engine(cfg: EngineConfig) -> (Engine, Scripted) {
    let mut e = engine_with(cfg);
    let s = Scripted::default();
    e.set_strategy(sym("BTCUSDT"), Box::new(s.clone())).unwrap();
    (e, s)
}

pub fn two_symbol_config() -> EngineConfig {
    config(vec![
        symbol_config("BTCUSDT", StrategyConfig::Passive),
        symbol_config("ETHUSDT", StrategyConfig::Passive),
    ])
}

pub fn limit_buy(price: &str, qty: &str) -> Intent {
    Intent::Place(kestrel_engine::OrderIntent {
        side: Side::Buy,
        kind: kestrel_model::OrderType::Limit,
        time_in_force: Some(kestrel_model::TimeInForce::Gtc),
        price: Some(p(price)),
        qty: q(qty),
    })
}

pub fn limit_sell(price: &str, qty: &str) -> Intent {
    Intent::Place(kestrel_engine::OrderIntent {
        side: Side::Sell,
        kind: kestrel_model::OrderType::Limit,
        time_in_force: Some(kestrel_model::TimeInForce::Gtc),
        price: Some(p(price)),
        qty: q(qty),
    })
}
