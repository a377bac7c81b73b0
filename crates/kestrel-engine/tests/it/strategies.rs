//! The two built-in strategies, driven by book events through the whole engine.

use std::time::Duration;

use kestrel_engine::{StrategyConfig, TakerOrderStyle};
use kestrel_model::{Action, BookState, Event, OrderStatus, OrderType, Side, TimeInForce};

use crate::common::*;

const HEAVY_BIDS: &[(&str, &str)] = &[("50000", "3"), ("49999.99", "2"), ("49999.98", "1")];
const THIN_ASKS: &[(&str, &str)] = &[("50000.01", "1"), ("50000.02", "1"), ("50000.03", "1")];

#[test]
fn taker_signal_table() {
    struct Case {
        name: &'static str,
        state: BookState,
        bids: &'static [(&'static str, &'static str)],
        asks: &'static [(&'static str, &'static str)],
        micro_edge_bps: u32,
        want: Option<(Side, &'static str)>,
    }
    let cases = [
        // TC0: balanced book: no signal
        Case {
            name: "balanced",
            state: BookState::Synced,
            bids: &[("50000", "1"), ("49999.99", "1")],
            asks: &[("50000.01", "1"), ("50000.02", "1")],
            micro_edge_bps: 0,
            want: None,
        },
        // TC1: bids 6 vs asks 3 (I = 0.33 >= 0.3), microprice above mid: IOC buy at
        // ask + 5 bps = 50025.010005, rounded down to the tick
        Case {
            name: "bid heavy",
            state: BookState::Synced,
            bids: HEAVY_BIDS,
            asks: THIN_ASKS,
            micro_edge_bps: 0,
            want: Some((Side::Buy, "50025.01")),
        },
        // TC2: mirror: IOC sell at bid − 5 bps = 49975 (already on the tick)
        Case {
            name: "ask heavy",
            state: BookState::Synced,
            bids: &[("50000", "1"), ("49999.99", "1"), ("49999.98", "1")],
            asks: &[("50000.01", "3"), ("50000.02", "2"), ("50000.03", "1")],
            micro_edge_bps: 0,
            want: Some((Side::Sell, "49975")),
        },
        // TC3: imbalance says buy but the top level leans the other way (microprice below mid)
        Case {
            name: "microprice disagrees",
            state: BookState::Synced,
            bids: &[("50000", "0.5"), ("49999.99", "5")],
            asks: &[("50000.01", "2"), ("50000.02", "0.5")],
            micro_edge_bps: 0,
            want: None,
        },
        // TC4: microprice edge required (1 bps = 5 USDT) but only 0.0025 above mid
        Case {
            name: "edge too small",
            state: BookState::Synced,
            bids: HEAVY_BIDS,
            asks: THIN_ASKS,
            micro_edge_bps: 1,
            want: None,
        },
        // TC5: stale book: never a signal
        Case {
            name: "stale",
            state: BookState::Stale,
            bids: HEAVY_BIDS,
            asks: THIN_ASKS,
            micro_edge_bps: 0,
            want: None,
        },
    ];
    for (i, c) in cases.iter().enumerate() {
        let mut params = taker_params();
        params.micro_edge_bps = c.micro_edge_bps;
        let mut e = engine_with(config(vec![symbol_config(
            "BTCUSDT",
            StrategyConfig::ImbalanceTaker(params),
        )]));
        let out = run(&mut e, book_levels("BTCUSDT", c.state, c.bids, c.asks, ms(1_000)));
        let placed = places(&out);
        match c.want {
            None => assert!(out.is_empty(), "TC{i} {}: {out:?}", c.name),
            Some((side, price)) => {
                assert_eq!(placed.len(), 1, "TC{i} {}", c.name);
                let r = placed[0];
                assert_eq!((r.side, r.price), (side, Some(p(price))), "TC{i} {}", c.name);
                assert_eq!(r.kind, OrderType::Limit);
                assert_eq!(r.time_in_force, Some(TimeInForce::Ioc));
                assert_eq!(r.qty, q("0.001"));
                assert_eq!(r.client_id.as_str(), "kst-1");
                assert_eq!(r.ts_decided, ms(1_000));
            }
        }
        let snap = e.snapshot();
        assert_eq!(snap.symbols[0].signals, u64::from(c.want.is_some()), "TC{i} signals");
        assert_eq!(snap.symbols[0].strategy, "imbalance_taker");
    }
}

#[test]
fn taker_respects_cooldown_and_in_flight_orders() {
    let mut e = taker_engine();
    let heavy = |t| book_levels("BTCUSDT", BookState::Synced, HEAVY_BIDS, THIN_ASKS, ms(t));
    let first = places(&run(&mut e, heavy(1_000)));
    assert_eq!(first.len(), 1);
    // TC0: within the 500 ms cooldown: nothing
    assert!(run(&mut e, heavy(1_200)).is_empty());
    // TC1: after the cooldown but the IOC is still unacknowledged: nothing
    assert!(run(&mut e, heavy(1_600)).is_empty());
    // TC2: the IOC expired unfilled: the next book signals again
    run(&mut e, update(&first[0], OrderStatus::Expired, "0", "0", None, ms(1_650)));
    let second = places(&run(&mut e, heavy(1_700)));
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].client_id.as_str(), "kst-2");
    assert_eq!(e.snapshot().symbols[0].signals, 2);
}

#[test]
fn taker_market_style_sends_market_orders() {
    let mut params = taker_params();
    params.style = TakerOrderStyle::Market;
    let mut e =
        engine_with(config(vec![symbol_config("BTCUSDT", StrategyConfig::ImbalanceTaker(params))]));
    let out = places(&run(
        &mut e,
        book_levels("BTCUSDT", BookState::Synced, HEAVY_BIDS, THIN_ASKS, ms(1)),
    ));
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].kind, out[0].price, out[0].time_in_force), (OrderType::Market, None, None));
    // The funds cap values it at the band edge: mid 50000.005 + 1 % = 50500.00505.
    let snap = e.snapshot();
    assert_eq!(snap.symbols[0].open_orders[0].exposure_price, p("50500.00505"));
}

fn quotes(out: &[Action]) -> Vec<(Side, kestrel_model::Price)> {
    places(out).iter().map(|r| (r.side, r.price.unwrap())).collect()
}

#[test]
fn maker_quotes_around_mid_with_inventory_skew() {
    // TC0: flat: 10 bps either side of mid 50000
    let mut e = maker_engine();
    let out = run(&mut e, book("BTCUSDT", "49990", "50010", ms(1)));
    assert_eq!(quotes(&out), vec![(Side::Buy, p("49950")), (Side::Sell, p("50050"))]);
    assert!(places(&out).iter().all(|r| r.time_in_force == Some(TimeInForce::Gtc)));

    // TC1: long half the max position: skew 5 bps down (25 USDT)
    let mut e = maker_engine();
    e.set_position(sym("BTCUSDT"), q("0.0025"), p("50000")).unwrap();
    let out = run(&mut e, book("BTCUSDT", "49990", "50010", ms(1)));
    assert_eq!(quotes(&out), vec![(Side::Buy, p("49925")), (Side::Sell, p("50025"))]);

    // TC2: short the max: only the bid (an ask would exceed -max_position), skewed up 10 bps
    let mut e = maker_engine();
    e.set_position(sym("BTCUSDT"), q("-0.005"), p("50000")).unwrap();
    let out = run(&mut e, book("BTCUSDT", "49990", "50010", ms(1)));
    assert_eq!(quotes(&out), vec![(Side::Buy, p("50000"))]);

    // TC3: post-only quotes use LIMIT_MAKER and stay inside the book (tight 0.02 spread)
    let mut params = maker_params();
    params.post_only = true;
    let mut e =
        engine_with(config(vec![symbol_config("BTCUSDT", StrategyConfig::MarketMaker(params))]));
    let out = places(&run(&mut e, book("BTCUSDT", "50000", "50000.02", ms(1))));
    assert!(out.iter().all(|r| r.kind == OrderType::LimitMaker && r.time_in_force.is_none()));
    assert!(out.iter().all(|r| {
        let px = r.price.unwrap();
        match r.side {
            Side::Buy => px < p("50000.02"),
            Side::Sell => px > p("50000"),
        }
    }));
}

#[test]
fn maker_requotes_only_when_mid_moves_past_threshold() {
    let mut e = maker_engine();
    let out = run(&mut e, book("BTCUSDT", "49990", "50010", ms(1)));
    let first = places(&out);
    // TC0: mid moves while quotes are unacknowledged: nothing (no stacking)
    assert!(run(&mut e, book("BTCUSDT", "50020", "50040", ms(2))).is_empty());
    for r in &first {
        run(&mut e, ack(r, ms(3)));
    }
    // TC1: mid 50000 → 50020 (4 bps < 5): keep the quotes
    assert!(run(&mut e, book("BTCUSDT", "50010", "50030", ms(4))).is_empty());
    // TC2: mid 50000 → 50030 (6 bps): cancel both, quote both at the new mid
    let out = run(&mut e, book("BTCUSDT", "50020", "50040", ms(5)));
    let cancels: Vec<_> = out
        .iter()
        .filter_map(|a| match a {
            Action::Cancel { client_id, .. } => Some(*client_id),
            _ => None,
        })
        .collect();
    assert_eq!(cancels, vec![first[0].client_id, first[1].client_id]);
    assert_eq!(quotes(&out), vec![(Side::Buy, p("49979.97")), (Side::Sell, p("50080.03"))]);
    let snap = e.snapshot();
    let statuses: Vec<_> = snap.symbols[0].open_orders.iter().map(|o| o.status).collect();
    assert_eq!(
        statuses,
        vec![
            OrderStatus::PendingCancel,
            OrderStatus::PendingCancel,
            OrderStatus::PendingNew,
            OrderStatus::PendingNew
        ]
    );
    assert_eq!(snap.symbols[0].signals, 2);
}

#[test]
fn maker_replaces_a_filled_side_after_the_throttle() {
    let mut e = maker_engine();
    let first = places(&run(&mut e, book("BTCUSDT", "49990", "50010", ms(1_000))));
    for r in &first {
        run(&mut e, ack(r, ms(1_001)));
    }
    // The bid fills completely.
    let bid = first[0];
    let f = fill(1, "49950", "0.001", "0", None);
    run(&mut e, update(&bid, OrderStatus::Filled, "0.001", "49.95", Some(f), ms(1_100)));
    // TC0: 200 ms after the last placement has not passed: nothing yet
    assert!(run(&mut e, book("BTCUSDT", "49990", "50010", ms(1_150))).is_empty());
    // TC1: after it: only the bid is re-placed, skewed by the new long 0.001 (2 bps = 10)
    let out = run(&mut e, book("BTCUSDT", "49990", "50010", ms(1_250)));
    assert_eq!(quotes(&out), vec![(Side::Buy, p("49940"))]);
}

#[test]
fn maker_cancels_quotes_on_a_stale_book() {
    for (i, stale_event) in [
        // TC0: the book turns Stale (gap, reconnect)
        book_levels("BTCUSDT", BookState::Stale, &[("49990", "1")], &[("50010", "1")], ms(1_100)),
        // TC1: the book goes quiet for longer than stale_after (2 s): the timer notices
        Event::Timer(ms(3_500)),
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = maker_engine();
        let first = places(&run(&mut e, book("BTCUSDT", "49990", "50010", ms(1_000))));
        for r in &first {
            run(&mut e, ack(r, ms(1_001)));
        }
        let out = run(&mut e, stale_event);
        let cancelled: Vec<_> = out.iter().filter(|a| matches!(a, Action::Cancel { .. })).collect();
        assert_eq!(cancelled.len(), 2, "TC{i}: {out:?}");
        assert!(places(&out).is_empty(), "TC{i}");
        // Once cancelling, a second stale signal emits nothing new.
        assert!(run(&mut e, Event::Timer(ms(4_000))).is_empty(), "TC{i}");
    }
}

#[test]
fn maker_quotes_again_when_the_book_recovers() {
    let mut e = maker_engine();
    run(
        &mut e,
        book_levels("BTCUSDT", BookState::Stale, &[("49990", "1")], &[("50010", "1")], ms(1)),
    );
    assert!(e.snapshot().symbols[0].open_orders.is_empty());
    let out = run(&mut e, book("BTCUSDT", "49990", "50010", ms(2)));
    assert_eq!(places(&out).len(), 2);
    let _ = Duration::ZERO;
}
