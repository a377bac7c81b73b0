//! Determinism: a recorded event log replays to the checked-in golden action log.
//!
//! `testdata/engine/session.events` was recorded once from a simulated session (a market
//! maker on BTCUSDT, the imbalance taker on ETHUSDT, a toy exchange answering every action
//! with acks, fills — some duplicated —, rejects, timeouts, stale books, a REST-fallback spell
//! and operator commands); `REGENERATE_ENGINE_LOG=1` records it again. The golden
//! `session.actions` holds every action per event line plus a final state summary;
//! `UPDATE_GOLDEN=1` re-blesses it after an intended behaviour change.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use kestrel_engine::{
    ClientIdGen, Engine, EngineConfig, MakerParams, RiskLimits, StrategyConfig, SymbolConfig,
    TakerOrderStyle, TakerParams,
};
use kestrel_model::{
    Action, Asset, Balance, BookSource, BookState, BookTop, Command, Event, Fill, Level, Notional,
    OrderId, OrderStatus, OrderType, OrderUpdate, Price, Qty, Side, TradeId, UnixNanos,
};

use crate::common::{instruments, n, q, sym};
use crate::textlog::{action_line, event_line, parse_log};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/engine")
}

/// The configuration the session was recorded with.
fn session_config() -> EngineConfig {
    EngineConfig {
        symbols: vec![
            SymbolConfig {
                symbol: sym("BTCUSDT"),
                strategy: StrategyConfig::MarketMaker(MakerParams {
                    half_spread_bps: 2,
                    quote_qty: q("0.001"),
                    skew_bps_at_max: 4,
                    requote_threshold_bps: 3,
                    min_requote_interval: Duration::from_millis(300),
                    stale_after: Duration::from_secs(2),
                    post_only: false,
                }),
                max_position: q("0.004"),
                max_open_orders: 4,
            },
            SymbolConfig {
                symbol: sym("ETHUSDT"),
                strategy: StrategyConfig::ImbalanceTaker(TakerParams {
                    depth_levels: 3,
                    imbalance_threshold_bps: 3_500,
                    micro_edge_bps: 0,
                    cooldown: Duration::from_millis(700),
                    order_qty: q("0.01"),
                    style: TakerOrderStyle::IocLimit { slippage_bps: 3 },
                }),
                max_position: q("0.05"),
                max_open_orders: 2,
            },
        ],
        risk: RiskLimits {
            funds: n("500"),
            max_drawdown: n("20"),
            price_band_bps: 50,
            orders_per_sec: 4,
            order_burst: 6,
            allow_rest_fallback: false,
            max_pending_orders: 32,
        },
        order_ack_timeout: Duration::from_secs(1),
    }
}

fn session_engine() -> Engine {
    Engine::new(session_config(), &instruments(), ClientIdGen::new("gold", 1).unwrap()).unwrap()
}

/// Replays `events`, returning the golden text.
fn replay(events: &[(usize, Event)]) -> String {
    let mut e = session_engine();
    let mut out = Vec::new();
    let mut text = String::from("# golden action log for session.events: <event line>: <action>\n");
    for (line, ev) in events {
        out.clear();
        e.handle(ev, &mut out);
        for a in &out {
            text.push_str(&format!("{line}: {}\n", action_line(a)));
        }
    }
    let s = e.snapshot();
    text.push_str(&format!(
        "# final: pnl={} exposure={} halted={} kill_switch={} next_seq={} foreign={}\n",
        s.pnl, s.exposure, s.halted, s.kill_switch, s.next_client_seq, s.foreign_order_updates
    ));
    for y in &s.symbols {
        let rej: Vec<String> = y.rejections().map(|(r, c)| format!("{r}={c}")).collect();
        text.push_str(&format!(
            "# {}: position={} realised={} unrealised={} open={} signals={} placed={} exchange_rejections={} rejections=[{}]\n",
            y.symbol,
            y.position,
            y.realised_pnl,
            y.unrealised_pnl,
            y.open_orders.len(),
            y.signals,
            y.orders_placed,
            y.exchange_rejections,
            rej.join(",")
        ));
    }
    text
}

#[test]
fn replay_matches_golden_action_log() {
    let events_text = std::fs::read_to_string(dir().join("session.events")).unwrap();
    let events = parse_log(&events_text).unwrap_or_else(|e| panic!("session.events {e}"));
    assert!(events.len() > 1_000, "the recorded session is substantial");
    let got = replay(&events);
    // Determinism within one process too: a second replay is byte-identical.
    assert_eq!(got, replay(&events));
    let golden_path = dir().join("session.actions");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden_path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&golden_path).unwrap();
    if got != want {
        let diff = got
            .lines()
            .zip(want.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| {
                format!("first difference at golden line {}:\n got: {a}\nwant: {b}", i + 1)
            })
            .unwrap_or_else(|| "lengths differ".to_owned());
        panic!("action log differs from testdata/engine/session.actions (UPDATE_GOLDEN=1 re-blesses)\n{diff}");
    }
    // Sanity: the session exercises every action kind.
    for kind in ["place ", "cancel ", "cancel-all ", "query "] {
        assert!(
            want.lines().any(|l| l.split_once(": ").is_some_and(|(_, a)| a.starts_with(kind))),
            "{kind}"
        );
    }
}

// ---- recording the session (only with REGENERATE_ENGINE_LOG=1) ----

/// Deterministic pseudo-random numbers (PCG-ish LCG), so the recording is reproducible.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
}

/// An order resting on the toy exchange.
struct Resting {
    symbol: kestrel_model::Symbol,
    client_id: kestrel_model::ClientOrderId,
    order_id: u64,
    side: Side,
    price: Price,
    qty: Qty,
    cum: Qty,
    cum_quote: Notional,
}

struct ToyExchange {
    rng: Lcg,
    resting: Vec<Resting>,
    next_order_id: u64,
    next_trade_id: u64,
    placed: u64,
    /// Events to deliver, with the step they are due at.
    due: VecDeque<(u64, Event)>,
    /// Last book per symbol.
    books: Vec<BookTop>,
}

fn upd(r: &Resting, status: OrderStatus, fill: Option<Fill>, t: UnixNanos) -> Event {
    Event::Order(OrderUpdate {
        symbol: r.symbol,
        client_id: r.client_id,
        order_id: Some(OrderId(r.order_id)),
        side: r.side,
        status,
        orig_qty: r.qty,
        cum_qty: r.cum,
        cum_quote: r.cum_quote,
        fill,
        ts_exchange: t,
        ts_local: t,
    })
}

impl ToyExchange {
    fn book_of(&self, s: kestrel_model::Symbol) -> Option<&BookTop> {
        self.books.iter().find(|b| b.symbol == s)
    }

    /// Fills `r` completely at `price`; returns the report.
    fn fill(&mut self, r: &mut Resting, price: Price, maker: bool, t: UnixNanos) -> Event {
        let qty = r.qty.saturating_sub(r.cum);
        self.next_trade_id += 1;
        let quote = Notional::of(price, qty);
        // Fees: buys pay 0.1 % in base, sells 0.1 % in quote, takers in BNB.
        let (commission, asset) = if !maker {
            (n("0.00002"), "BNB")
        } else if r.side == Side::Buy {
            (
                Notional::from_mantissa(qty.to_notional().mantissa() / 1_000)
                    .floor_to_qty()
                    .unwrap()
                    .to_notional(),
                if r.symbol == sym("BTCUSDT") { "BTC" } else { "ETH" },
            )
        } else {
            (Notional::from_mantissa(quote.mantissa() / 1_000), "USDT")
        };
        r.cum = r.qty;
        r.cum_quote = r.cum_quote.saturating_add(quote);
        let f = Fill {
            trade_id: TradeId(self.next_trade_id),
            price,
            qty,
            commission,
            commission_asset: Some(Asset::new(asset).unwrap()),
            is_maker: maker,
            ts_exchange: t,
        };
        upd(r, OrderStatus::Filled, Some(f), t)
    }

    fn on_action(&mut self, a: &Action, step: u64, t: UnixNanos) {
        let later = |k: u64| step + k;
        let tt = |k: u64| UnixNanos(t.0 + k * 5_000_000);
        match a {
            Action::Place(r) => {
                self.placed += 1;
                self.next_order_id += 1;
                let mut o = Resting {
                    symbol: r.symbol,
                    client_id: r.client_id,
                    order_id: self.next_order_id,
                    side: r.side,
                    price: r.price.unwrap_or(Price::ZERO),
                    qty: r.qty,
                    cum: Qty::ZERO,
                    cum_quote: Notional::ZERO,
                };
                if self.placed.is_multiple_of(13) {
                    self.due.push_back((
                        later(1),
                        Event::OrderRejected {
                            symbol: r.symbol,
                            client_id: r.client_id,
                            code: -2010,
                            ts_local: tt(1),
                        },
                    ));
                    return;
                }
                if self.placed.is_multiple_of(11) {
                    // The request times out; the order did reach the exchange.
                    self.due.push_back((
                        later(1),
                        Event::OrderUnknown {
                            symbol: r.symbol,
                            client_id: r.client_id,
                            ts_local: tt(1),
                        },
                    ));
                } else {
                    self.due.push_back((later(1), upd(&o, OrderStatus::New, None, tt(1))));
                }
                if r.kind == OrderType::Market
                    || r.time_in_force == Some(kestrel_model::TimeInForce::Ioc)
                {
                    let book = *self.book_of(r.symbol).unwrap();
                    let best = match r.side {
                        Side::Buy => book.best_ask().unwrap().price,
                        Side::Sell => book.best_bid().unwrap().price,
                    };
                    let crosses = match (r.side, r.price) {
                        (_, None) => true,
                        (Side::Buy, Some(p)) => best <= p,
                        (Side::Sell, Some(p)) => best >= p,
                    };
                    if crosses {
                        let ev = self.fill(&mut o, best, false, tt(2));
                        self.due.push_back((later(1), ev));
                        if self.placed.is_multiple_of(3) {
                            // A duplicated execution report.
                            self.due.push_back((later(2), ev));
                        }
                    } else {
                        self.due.push_back((later(1), upd(&o, OrderStatus::Expired, None, tt(2))));
                    }
                } else {
                    self.resting.push(o);
                }
            }
            Action::Cancel { symbol, client_id } => {
                if let Some(i) = self.resting.iter().position(|o| o.client_id == *client_id) {
                    let o = self.resting.remove(i);
                    self.due.push_back((later(1), upd(&o, OrderStatus::Canceled, None, tt(1))));
                } else {
                    self.due.push_back((
                        later(1),
                        Event::OrderRejected {
                            symbol: *symbol,
                            client_id: *client_id,
                            code: -2011,
                            ts_local: tt(1),
                        },
                    ));
                }
            }
            Action::CancelAll { symbol } => {
                let (gone, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.resting)
                    .into_iter()
                    .partition(|o| o.symbol == *symbol);
                self.resting = keep;
                for o in gone {
                    self.due.push_back((later(1), upd(&o, OrderStatus::Canceled, None, tt(1))));
                }
            }
            Action::Query { client_id, .. } => {
                if let Some(o) = self.resting.iter().find(|o| o.client_id == *client_id) {
                    let st = if o.cum.is_positive() {
                        OrderStatus::PartiallyFilled
                    } else {
                        OrderStatus::New
                    };
                    self.due.push_back((later(1), upd(o, st, None, tt(1))));
                }
                // Orders no longer resting were answered by their terminal report already.
            }
        }
    }

    /// Fills resting orders the new book crosses.
    fn match_book(&mut self, book: &BookTop, step: u64, t: UnixNanos) {
        let mut i = 0;
        while i < self.resting.len() {
            let o = &self.resting[i];
            let cross = o.symbol == book.symbol
                && book.is_tradeable()
                && match o.side {
                    Side::Buy => book.best_ask().is_some_and(|a| a.price <= o.price),
                    Side::Sell => book.best_bid().is_some_and(|b| b.price >= o.price),
                };
            if cross {
                let mut o = self.resting.remove(i);
                let px = o.price;
                if self.rng.range(0, 3) == 0 && o.cum.is_zero() {
                    // A partial fill first, then the rest on a later step.
                    let half = Qty::from_mantissa(o.qty.mantissa() / 2);
                    self.next_trade_id += 1;
                    o.cum = half;
                    o.cum_quote = Notional::of(px, half);
                    let f = Fill {
                        trade_id: TradeId(self.next_trade_id),
                        price: px,
                        qty: half,
                        commission: Notional::ZERO,
                        commission_asset: None,
                        is_maker: true,
                        ts_exchange: t,
                    };
                    self.due
                        .push_back((step + 1, upd(&o, OrderStatus::PartiallyFilled, Some(f), t)));
                    self.resting.insert(i, o);
                    i += 1;
                    continue;
                }
                let ev = self.fill(&mut o, px, true, t);
                self.due.push_back((step + 1, ev));
            } else {
                i += 1;
            }
        }
    }
}

fn make_book(
    rng: &mut Lcg,
    symbol: &str,
    mid_cents: i64,
    tick_spread: i64,
    t: UnixNanos,
) -> BookTop {
    let mut bids = Vec::new();
    let mut asks = Vec::new();
    let unit = if symbol == "BTCUSDT" { 1_000 } else { 10_000 }; // 0.00001 / 0.0001 steps
    for k in 0..5 {
        let bq = Qty::from_mantissa(rng.range(1, 400) * unit * 10);
        let aq = Qty::from_mantissa(rng.range(1, 400) * unit * 10);
        bids.push(Level::new(Price::from_mantissa((mid_cents - tick_spread - k) * 1_000_000), bq));
        asks.push(Level::new(Price::from_mantissa((mid_cents + tick_spread + k) * 1_000_000), aq));
    }
    let mut b = BookTop::from_levels(sym(symbol), BookState::Synced, &bids, &asks);
    b.ts_local = t;
    b.ts_exchange = t;
    b
}

#[test]
fn regenerate_recorded_session() {
    if std::env::var_os("REGENERATE_ENGINE_LOG").is_none() {
        return;
    }
    let mut engine = session_engine();
    let mut ex = ToyExchange {
        rng: Lcg(42),
        resting: vec![],
        next_order_id: 1_000,
        next_trade_id: 50_000,
        placed: 0,
        due: VecDeque::new(),
        books: vec![],
    };
    let mut log = String::from("# Simulated session recorded by tests/it/replay.rs (REGENERATE_ENGINE_LOG=1).\n# See tests/it/textlog.rs for the format.\n");
    let feed = |engine: &mut Engine,
                ex: &mut ToyExchange,
                ev: Event,
                step: u64,
                t: UnixNanos,
                log: &mut String| {
        log.push_str(&event_line(&ev));
        log.push('\n');
        let mut out = Vec::new();
        engine.handle(&ev, &mut out);
        for a in &out {
            ex.on_action(a, step, t);
        }
    };
    let mut btc: i64 = 5_000_000; // cents
    let mut eth: i64 = 300_000;
    let start = 1_700_000_000_000u64;
    for step in 0..600u64 {
        let t = UnixNanos::from_millis(start + step * 100);
        // Deliver responses due now.
        while ex.due.front().is_some_and(|(s, _)| *s <= step) {
            let (_, ev) = ex.due.pop_front().unwrap();
            feed(&mut engine, &mut ex, ev, step, t, &mut log);
        }
        btc += ex.rng.range(-900, 900);
        eth += ex.rng.range(-60, 60);
        let mut b = make_book(&mut ex.rng, "BTCUSDT", btc, 50, t);
        if (200..215).contains(&step) {
            b.state = BookState::Stale; // a depth gap: resnapshot pending
        }
        let skip_btc = (400..430).contains(&step); // the BTC stream goes quiet
        let mut e = make_book(&mut ex.rng, "ETHUSDT", eth, 2, UnixNanos(t.0 + 1_000_000));
        if (300..320).contains(&step) {
            e.source = BookSource::RestFallback;
        }
        ex.books = vec![b, e];
        if !skip_btc {
            ex.match_book(&b, step, t);
            feed(&mut engine, &mut ex, Event::Book(b), step, t, &mut log);
        }
        ex.match_book(&e, step, t);
        feed(&mut engine, &mut ex, Event::Book(e), step, UnixNanos(t.0 + 1_000_000), &mut log);
        if step % 5 == 4 {
            feed(
                &mut engine,
                &mut ex,
                Event::Timer(UnixNanos(t.0 + 50_000_000)),
                step,
                t,
                &mut log,
            );
        }
        match step {
            100 => feed(
                &mut engine,
                &mut ex,
                Event::Balance(Balance {
                    asset: Asset::new("USDT").unwrap(),
                    free: n("480"),
                    locked: n("20"),
                    ts_exchange: t,
                }),
                step,
                t,
                &mut log,
            ),
            150 => feed(&mut engine, &mut ex, Event::Command(Command::Halt), step, t, &mut log),
            170 => feed(&mut engine, &mut ex, Event::Command(Command::Resume), step, t, &mut log),
            250 => feed(
                &mut engine,
                &mut ex,
                Event::Command(Command::CancelAll { symbol: None }),
                step,
                t,
                &mut log,
            ),
            _ => {}
        }
    }
    std::fs::create_dir_all(dir()).unwrap();
    std::fs::write(dir().join("session.events"), log).unwrap();
}
