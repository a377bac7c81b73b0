//! Engine tick benchmarks: one `BookTop` event through strategy, risk and OMS to actions.
//!
//! - `mm/quiet`: market maker, quotes live, mid jitters below the requote threshold (the common
//!   case: evaluate and do nothing).
//! - `mm/requote`: mid jumps past the threshold: cancel 2 + place 2, then the four exchange
//!   answers (2 × Canceled, 2 × New) so the next iteration can requote again (5 events).
//! - `taker/no_signal`: balanced book, no signal.
//! - `taker/signal`: heavy book: IOC decided, then its `Expired` answer (2 events).
//!
//! Run: `cargo bench -p kestrel-engine --bench engine`. Compare numbers only on one machine.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use kestrel_engine::{
    ClientIdGen, Engine, EngineConfig, MakerParams, RiskLimits, StrategyConfig, SymbolConfig,
    TakerOrderStyle, TakerParams,
};
use kestrel_model::instrument::{LotSize, NotionalFilter, PriceFilter};
use kestrel_model::{
    Action, Asset, BookState, BookTop, Event, InstrumentSpec, Level, Notional, OrderId,
    OrderStatus, OrderUpdate, Price, Qty, Symbol, UnixNanos,
};

fn p(s: &str) -> Price {
    s.parse().unwrap()
}
fn q(s: &str) -> Qty {
    s.parse().unwrap()
}

fn spec() -> InstrumentSpec {
    InstrumentSpec {
        symbol: Symbol::new("BTCUSDT").unwrap(),
        base: Asset::new("BTC").unwrap(),
        quote: Asset::new("USDT").unwrap(),
        trading: true,
        price_filter: Some(PriceFilter {
            min_price: p("0.01"),
            max_price: p("1000000"),
            tick_size: p("0.01"),
        }),
        lot_size: Some(LotSize {
            min_qty: q("0.00001"),
            max_qty: q("9000"),
            step_size: q("0.00001"),
        }),
        market_lot_size: None,
        min_notional: None,
        notional: Some(NotionalFilter {
            min_notional: "5".parse().unwrap(),
            apply_min_to_market: true,
            max_notional: "9000000".parse().unwrap(),
            apply_max_to_market: false,
            avg_price_mins: 5,
        }),
        percent_price: None,
        percent_price_by_side: None,
        max_num_orders: Some(200),
    }
}

fn engine(strategy: StrategyConfig) -> Engine {
    let cfg = EngineConfig {
        symbols: vec![SymbolConfig {
            symbol: Symbol::new("BTCUSDT").unwrap(),
            strategy,
            max_position: q("1"),
            max_open_orders: 10,
        }],
        risk: RiskLimits {
            funds: "1000000".parse().unwrap(),
            max_drawdown: "1000000".parse().unwrap(),
            price_band_bps: 100,
            // Unthrottled: the bench measures decision cost, not the limiter refusing.
            orders_per_sec: 1_000_000,
            order_burst: 1_000_000,
            allow_rest_fallback: false,
            // Not what the bench measures (max_open_orders, 10, binds first anyway).
            max_pending_orders: u32::MAX,
        },
        order_ack_timeout: Duration::from_secs(3_600),
    };
    Engine::new(cfg, &[spec()], ClientIdGen::new("bench", 1).unwrap()).unwrap()
}

fn top(mid_cents: i64, bid_qty: &str, ask_qty: &str, t: u64) -> Event {
    let sym = Symbol::new("BTCUSDT").unwrap();
    let mut bids = [Level::default(); 10];
    let mut asks = [Level::default(); 10];
    for k in 0..10 {
        bids[k] =
            Level::new(Price::from_mantissa((mid_cents - 1 - k as i64) * 1_000_000), q(bid_qty));
        asks[k] =
            Level::new(Price::from_mantissa((mid_cents + 1 + k as i64) * 1_000_000), q(ask_qty));
    }
    let mut b = BookTop::from_levels(sym, BookState::Synced, &bids, &asks);
    b.ts_local = UnixNanos(t);
    Event::Book(b)
}

fn answer(a: &Action, t: u64) -> Option<Event> {
    let (r_sym, id, side, qty, status) = match a {
        Action::Place(r) => (r.symbol, r.client_id, r.side, r.qty, OrderStatus::New),
        _ => return None,
    };
    Some(Event::Order(OrderUpdate {
        symbol: r_sym,
        client_id: id,
        order_id: Some(OrderId(1)),
        side,
        status,
        orig_qty: qty,
        cum_qty: Qty::ZERO,
        cum_quote: Notional::ZERO,
        fill: None,
        ts_exchange: UnixNanos(t),
        ts_local: UnixNanos(t),
    }))
}

fn maker() -> StrategyConfig {
    StrategyConfig::MarketMaker(MakerParams {
        half_spread_bps: 5,
        quote_qty: q("0.001"),
        skew_bps_at_max: 5,
        requote_threshold_bps: 3,
        min_requote_interval: Duration::ZERO,
        stale_after: Duration::from_secs(3_600),
        post_only: false,
    })
}

fn taker() -> StrategyConfig {
    StrategyConfig::ImbalanceTaker(TakerParams {
        depth_levels: 5,
        imbalance_threshold_bps: 3_000,
        micro_edge_bps: 0,
        cooldown: Duration::ZERO,
        order_qty: q("0.001"),
        style: TakerOrderStyle::IocLimit { slippage_bps: 5 },
    })
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine_tick");
    g.measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));

    // Market maker, quiet: quotes placed and acknowledged once, then mid jitters by 1 cent.
    {
        let mut e = engine(maker());
        let mut out = Vec::with_capacity(16);
        let mut t = 1_000_000_000u64;
        e.handle(&top(5_000_000, "1", "1", t), &mut out);
        for a in out.clone() {
            e.handle(&answer(&a, t).unwrap(), &mut out);
        }
        let books = [top(5_000_000, "1", "1", 0), top(5_000_001, "1", "1", 0)];
        let mut i = 0usize;
        g.bench_function("mm/quiet", |b| {
            b.iter(|| {
                t += 1_000;
                i += 1;
                let mut ev = books[i & 1];
                if let Event::Book(ref mut top) = ev {
                    top.ts_local = UnixNanos(t);
                }
                out.clear();
                e.handle(black_box(&ev), &mut out);
                assert!(out.is_empty());
            })
        });
    }

    // Market maker, requote each iteration: mid alternates by 20 USDT (4 bps > 3).
    {
        let mut e = engine(maker());
        let mut out = Vec::with_capacity(16);
        let mut answers: Vec<Event> = Vec::with_capacity(8);
        let mut t = 1_000_000_000u64;
        e.handle(&top(5_000_000, "1", "1", t), &mut out);
        for a in out.clone() {
            e.handle(&answer(&a, t).unwrap(), &mut out);
        }
        let mut i = 0usize;
        g.bench_function("mm/requote", |b| {
            b.iter(|| {
                t += 1_000;
                i += 1;
                let mid = if i & 1 == 0 { 5_000_000 } else { 5_002_000 };
                out.clear();
                e.handle(black_box(&top(mid, "1", "1", t)), &mut out);
                answers.clear();
                for a in &out {
                    match a {
                        Action::Cancel { symbol, client_id } => {
                            answers.push(Event::Order(OrderUpdate {
                                symbol: *symbol,
                                client_id: *client_id,
                                order_id: Some(OrderId(1)),
                                side: kestrel_model::Side::Buy,
                                status: OrderStatus::Canceled,
                                orig_qty: q("0.001"),
                                cum_qty: Qty::ZERO,
                                cum_quote: Notional::ZERO,
                                fill: None,
                                ts_exchange: UnixNanos(t),
                                ts_local: UnixNanos(t),
                            }))
                        }
                        a => answers.extend(answer(a, t)),
                    }
                }
                debug_assert_eq!(answers.len(), 4);
                for ev in &answers {
                    e.handle(ev, &mut out);
                }
            })
        });
    }

    // Taker without a signal.
    {
        let mut e = engine(taker());
        let mut out = Vec::with_capacity(16);
        let mut t = 1_000_000_000u64;
        let mut ev = top(5_000_000, "1", "1", 0);
        g.bench_function("taker/no_signal", |b| {
            b.iter(|| {
                t += 1_000;
                if let Event::Book(ref mut top) = ev {
                    top.ts_local = UnixNanos(t);
                }
                out.clear();
                e.handle(black_box(&ev), &mut out);
                assert!(out.is_empty());
            })
        });
    }

    // Taker with a signal each tick, the IOC expiring right after.
    {
        let mut e = engine(taker());
        let mut out = Vec::with_capacity(16);
        let mut t = 1_000_000_000u64;
        let mut ev = top(5_000_000, "3", "1", 0);
        g.bench_function("taker/signal", |b| {
            b.iter(|| {
                t += 1_000;
                if let Event::Book(ref mut top) = ev {
                    top.ts_local = UnixNanos(t);
                }
                out.clear();
                e.handle(black_box(&ev), &mut out);
                let Some(Action::Place(r)) = out.first().copied() else { panic!("no signal") };
                let expired = Event::Order(OrderUpdate {
                    symbol: r.symbol,
                    client_id: r.client_id,
                    order_id: Some(OrderId(1)),
                    side: r.side,
                    status: OrderStatus::Expired,
                    orig_qty: r.qty,
                    cum_qty: Qty::ZERO,
                    cum_quote: Notional::ZERO,
                    fill: None,
                    ts_exchange: UnixNanos(t),
                    ts_local: UnixNanos(t),
                });
                e.handle(&expired, &mut out);
            })
        });
    }
    g.finish();
}

criterion_group!(engine_benches, benches);
criterion_main!(engine_benches);
