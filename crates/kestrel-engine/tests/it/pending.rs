//! Risk's global cap on orders awaiting the exchange's answer (`max_pending_orders`): with the
//! answers slow or absent, the order past the cap is refused, not queued; every way an order
//! leaves `PendingNew` frees its slot; cancels are never held back.

use kestrel_engine::{AdoptedOrder, Engine, EngineConfig, RejectReason};
use kestrel_model::{
    Action, Command, Event, OrderId, OrderRequest, OrderStatus, OrderType, Side, TimeInForce,
};

use crate::common::*;

/// Two symbols, both driven by scripted strategies, with per-symbol limits far above the
/// global cap so only `max_pending_orders` can refuse.
fn capped_engine(cap: u32) -> (Engine, Scripted, Scripted) {
    let mut cfg: EngineConfig = two_symbol_config();
    cfg.risk.max_pending_orders = cap;
    for s in &mut cfg.symbols {
        s.max_open_orders = 50;
        s.max_position = q("1");
    }
    let (mut e, btc) = scripted_engine(cfg);
    let eth = Scripted::default();
    e.set_strategy(sym("ETHUSDT"), Box::new(eth.clone())).unwrap();
    (e, btc, eth)
}

/// Proposes `n` BTCUSDT buys on a book at `t`; returns the actions.
fn btc_buys(e: &mut Engine, script: &Scripted, n: usize, t: u64) -> Vec<Action> {
    for _ in 0..n {
        script.push(limit_buy("49990", "0.0002"));
    }
    run(e, book("BTCUSDT", "49990", "50010", ms(t)))
}

/// Proposes `n` ETHUSDT buys on a book at `t`; returns the actions.
fn eth_buys(e: &mut Engine, script: &Scripted, n: usize, t: u64) -> Vec<Action> {
    for _ in 0..n {
        script.push(limit_buy("2999", "0.002"));
    }
    run(e, book("ETHUSDT", "2999", "3001", ms(t)))
}

fn refused(e: &Engine) -> u64 {
    e.snapshot().symbols.iter().map(|s| s.rejection_count(RejectReason::MaxPendingOrders)).sum()
}

#[test]
fn pending_cap_refuses_new_orders_but_never_cancels() {
    // TC0: cap 3, answers absent: the 4th new order is refused with the new reason, while a
    // cancel of an acknowledged order and a cancel-all still go out.
    let (mut e, btc, eth) = capped_engine(3);
    // An order the exchange acknowledged: open, not pending, so it does not count.
    let acked = places(&btc_buys(&mut e, &btc, 1, 1_000));
    run(&mut e, ack(&acked[0], ms(1_001)));
    assert_eq!(e.snapshot().pending_orders(), 0);

    // Three unanswered orders on two symbols fill the (global) cap ...
    assert_eq!(places(&btc_buys(&mut e, &btc, 2, 1_010)).len(), 2);
    assert_eq!(places(&eth_buys(&mut e, &eth, 1, 1_020)).len(), 1);
    assert_eq!(e.snapshot().pending_orders(), 3);
    // ... so the next one, on either symbol, is refused and counted under its own label.
    assert!(places(&eth_buys(&mut e, &eth, 1, 1_030)).is_empty());
    assert!(places(&btc_buys(&mut e, &btc, 2, 1_040)).is_empty());
    assert_eq!(refused(&e), 3);
    let snap = e.snapshot();
    assert_eq!(snap.symbols[0].rejections().collect::<Vec<_>>(), [("max_pending_orders", 2)]);
    assert_eq!(snap.symbols[1].rejections().collect::<Vec<_>>(), [("max_pending_orders", 1)]);
    assert_eq!(snap.pending_orders(), 3);

    // Cancels are not new orders: never refused by the cap.
    btc.push(kestrel_engine::Intent::Cancel(acked[0].client_id));
    let out = run(&mut e, book("BTCUSDT", "49990", "50010", ms(1_050)));
    assert_eq!(out, [Action::Cancel { symbol: sym("BTCUSDT"), client_id: acked[0].client_id }]);
    let out = run(&mut e, Event::Command(Command::CancelAll { symbol: Some(sym("ETHUSDT")) }));
    assert_eq!(out, [Action::CancelAll { symbol: sym("ETHUSDT") }]);
}

#[test]
fn pending_cap_frees_a_slot_on_every_way_out_of_pending_new() {
    type Release = fn(&mut Engine, &OrderRequest);
    // (name, what happens to the oldest of two pending orders, how many stay pending)
    let cases: Vec<(&str, Release, usize)> = vec![
        // TC0: nothing: the cap still holds (the control that makes the other rows mean something)
        ("no answer", |_, _| {}, 2),
        // TC1: the exchange acknowledges it
        ("ack", |e, r| _ = run(e, ack(r, ms(2_000))), 1),
        // TC2: the exchange refuses it
        (
            "exchange reject",
            |e, r| {
                _ = run(
                    e,
                    Event::OrderRejected {
                        symbol: r.symbol,
                        client_id: r.client_id,
                        code: -2010,
                        ts_local: ms(2_000),
                    },
                )
            },
            1,
        ),
        // TC3: the gateway reports its outcome unknown (timeout, 5xx); a query follows
        (
            "order unknown",
            |e, r| {
                let out = run(
                    e,
                    Event::OrderUnknown {
                        symbol: r.symbol,
                        client_id: r.client_id,
                        ts_local: ms(2_000),
                    },
                );
                assert_eq!(out, [Action::Query { symbol: r.symbol, client_id: r.client_id }]);
            },
            1,
        ),
        // TC4: no answer within the engine's ack timeout (5 s): Unknown + query
        // (both orders were placed at the same instant, so both time out)
        ("ack timeout", |e, _| _ = run(e, Event::Timer(ms(1_000 + 5_000))), 0),
        // TC5: ... but not a moment before it
        ("before ack timeout", |e, _| _ = run(e, Event::Timer(ms(1_000 + 4_999))), 2),
        // TC6: IOC remainder expired without an ack first
        (
            "expired",
            |e, r| _ = run(e, update(r, OrderStatus::Expired, "0", "0", None, ms(2_000))),
            1,
        ),
        // TC7: filled straight away (the first report is the fill)
        (
            "filled",
            |e, r| {
                let f = fill(1, "49990", "0.0002", "0", None);
                _ = run(e, update(r, OrderStatus::Filled, "0.0002", "9.998", Some(f), ms(2_000)))
            },
            1,
        ),
        // TC8: partially filled: acknowledged implicitly
        (
            "partial fill",
            |e, r| {
                let f = fill(1, "49990", "0.0001", "0", None);
                let upd =
                    update(r, OrderStatus::PartiallyFilled, "0.0001", "4.999", Some(f), ms(2_000));
                _ = run(e, upd)
            },
            1,
        ),
        // TC9: a cancel-all covers the pending order (it is PendingCancel from then on)
        (
            "cancel-all",
            |e, r| _ = run(e, Event::Command(Command::CancelAll { symbol: Some(r.symbol) })),
            0,
        ),
        // TC10: a reject for an order that is not ours frees nothing
        (
            "foreign reject",
            |e, r| {
                _ = run(
                    e,
                    Event::OrderRejected {
                        symbol: r.symbol,
                        client_id: cid("other-1"),
                        code: -2010,
                        ts_local: ms(2_000),
                    },
                )
            },
            2,
        ),
        // TC11: unknown, then the query finds it resting: released once, not counted again
        (
            "unknown then found",
            |e, r| {
                _ = run(
                    e,
                    Event::OrderUnknown {
                        symbol: r.symbol,
                        client_id: r.client_id,
                        ts_local: ms(2_000),
                    },
                );
                _ = run(e, ack(r, ms(2_100)));
            },
            1,
        ),
    ];
    for (i, (name, release, want_left)) in cases.into_iter().enumerate() {
        let (mut e, btc, _eth) = capped_engine(2);
        let placed = places(&btc_buys(&mut e, &btc, 3, 1_000));
        assert_eq!(placed.len(), 2, "TC{i} {name}");
        assert_eq!(refused(&e), 1, "TC{i} {name}");
        release(&mut e, &placed[0]);
        assert_eq!(e.snapshot().pending_orders(), want_left, "TC{i} {name}: pending after");
        let frees = want_left < 2;
        let again = places(&btc_buys(&mut e, &btc, 1, 10_000));
        assert_eq!(again.len(), usize::from(frees), "TC{i} {name}: new order placed");
        assert_eq!(refused(&e), if frees { 1 } else { 2 }, "TC{i} {name}: refusals");
    }
}

#[test]
fn pending_cap_frees_as_acks_arrive() {
    // TC1 of the brief, as a sequence: cap 2, acks arriving one at a time let exactly one more
    // order through each; a duplicate ack frees nothing twice.
    let (mut e, btc, _eth) = capped_engine(2);
    let first = places(&btc_buys(&mut e, &btc, 3, 1_000));
    assert_eq!((first.len(), refused(&e)), (2, 1));
    run(&mut e, ack(&first[0], ms(1_100)));
    let second = places(&btc_buys(&mut e, &btc, 2, 1_200));
    assert_eq!((second.len(), refused(&e)), (1, 2));
    run(&mut e, ack(&first[0], ms(1_300))); // duplicate
    assert!(places(&btc_buys(&mut e, &btc, 1, 1_400)).is_empty());
    assert_eq!(refused(&e), 3);
    run(&mut e, ack(&first[1], ms(1_500)));
    run(&mut e, ack(&second[0], ms(1_500)));
    assert_eq!(e.snapshot().pending_orders(), 0);
    assert_eq!(places(&btc_buys(&mut e, &btc, 3, 1_600)).len(), 2);
    assert_eq!(refused(&e), 4);
}

#[test]
fn pending_cap_ignores_orders_adopted_at_reconciliation() {
    // After a restart, orders found open at the exchange are acknowledged ones: they count as
    // open orders, never as pending, so they cannot hold the cap shut.
    let (mut e, btc, _eth) = capped_engine(1);
    for k in 0..3u64 {
        e.adopt_order(&AdoptedOrder {
            symbol: sym("BTCUSDT"),
            client_id: cid(&format!("kst-{}", 100 + k)),
            order_id: OrderId(500 + k),
            side: Side::Buy,
            kind: OrderType::Limit,
            time_in_force: Some(TimeInForce::Gtc),
            price: Some(p("49000")),
            orig_qty: q("0.0002"),
            cum_qty: q("0"),
            cum_quote: n("0"),
            status: OrderStatus::New,
        })
        .unwrap();
    }
    assert_eq!(e.snapshot().pending_orders(), 0);
    assert_eq!(places(&btc_buys(&mut e, &btc, 2, 1_000)).len(), 1);
    assert_eq!(refused(&e), 1);
}
