//! Order state machine through the engine: acks, partial fills, duplicates, out-of-order
//! reports, cancels, unknown outcomes and queries, adoption at start-up.

use kestrel_engine::{AdoptedOrder, Engine, EngineError, Intent};
use kestrel_model::{
    Action, Event, OrderId, OrderRequest, OrderStatus, OrderType, Side, TimeInForce,
};

use crate::common::*;

/// An engine with one acknowledged-or-pending limit buy of 0.002 @ 49990 on BTCUSDT.
fn with_order() -> (Engine, Scripted, OrderRequest) {
    let (mut e, script) = scripted_engine(two_symbol_config());
    script.push(limit_buy("49990", "0.002"));
    let placed = places(&run(&mut e, book("BTCUSDT", "49990", "50010", ms(1_000))));
    assert_eq!(placed.len(), 1);
    (e, script, placed[0])
}

fn status_of(e: &Engine, r: &OrderRequest) -> Option<OrderStatus> {
    e.snapshot().symbols[0]
        .open_orders
        .iter()
        .find(|o| o.client_id == r.client_id)
        .map(|o| o.status)
}

fn position(e: &Engine) -> kestrel_model::Qty {
    e.snapshot().symbols[0].position
}

#[test]
fn fills_are_idempotent_and_order_independent() {
    // Each step: event builder, then (status while open or None once closed, position).
    type Step = (fn(&OrderRequest) -> Event, Option<OrderStatus>, &'static str);
    let f1 = |r: &OrderRequest| {
        update(
            r,
            OrderStatus::PartiallyFilled,
            "0.001",
            "49.99",
            Some(fill(1, "49990", "0.001", "0.05", Some("USDT"))),
            ms(1_100),
        )
    };
    let f2 = |r: &OrderRequest| {
        update(
            r,
            OrderStatus::Filled,
            "0.002",
            "99.98",
            Some(fill(2, "49990", "0.001", "0.05", Some("USDT"))),
            ms(1_200),
        )
    };
    let cases: Vec<(&str, Vec<Step>)> = vec![
        // TC0: ack, partial, duplicate partial, final fill
        (
            "in order with duplicate",
            vec![
                (|r| ack(r, ms(1_050)), Some(OrderStatus::New), "0"),
                (f1, Some(OrderStatus::PartiallyFilled), "0.001"),
                (f1, Some(OrderStatus::PartiallyFilled), "0.001"),
                (f2, None, "0.002"),
                (f2, None, "0.002"),
            ],
        ),
        // TC1: the second fill's report overtakes the first (and the ack)
        (
            "out of order",
            vec![(f2, None, "0.002"), (f1, None, "0.002"), (|r| ack(r, ms(1_050)), None, "0.002")],
        ),
        // TC2: a stale `New` after a partial fill doesn't move the status back
        (
            "no regression",
            vec![
                (f1, Some(OrderStatus::PartiallyFilled), "0.001"),
                (|r| ack(r, ms(1_050)), Some(OrderStatus::PartiallyFilled), "0.001"),
            ],
        ),
    ];
    for (i, (name, steps)) in cases.into_iter().enumerate() {
        let (mut e, _, r) = with_order();
        for (j, (ev, status, pos)) in steps.iter().enumerate() {
            run(&mut e, ev(&r));
            assert_eq!(status_of(&e, &r), *status, "TC{i} {name} step {j}: status");
            assert_eq!(position(&e), q(pos), "TC{i} {name} step {j}: position");
        }
        // Every case books both fills' fees exactly once: at mark 50000 the total PnL is
        // 0.002 × 50000 − 99.98 − 2 × 0.05 = −0.08, whatever order the reports came in.
        if position(&e) == q("0.002") {
            let s = &e.snapshot().symbols[0];
            let total = s.realised_pnl.mantissa() + s.unrealised_pnl.mantissa();
            assert_eq!(total, n("-0.08").mantissa(), "TC{i} {name}: total PnL");
        }
    }
}

#[test]
fn cancel_lifecycle_and_late_fill_after_cancel() {
    let (mut e, script, r) = with_order();
    run(&mut e, ack(&r, ms(1_050)));
    script.push(Intent::Cancel(r.client_id));
    let out = run(&mut e, book("BTCUSDT", "49990", "50010", ms(1_100)));
    assert_eq!(out, vec![Action::Cancel { symbol: r.symbol, client_id: r.client_id }]);
    assert_eq!(status_of(&e, &r), Some(OrderStatus::PendingCancel));
    // A second cancel intent for an order already cancelling emits nothing.
    script.push(Intent::Cancel(r.client_id));
    assert!(run(&mut e, book("BTCUSDT", "49990", "50010", ms(1_150))).is_empty());
    // The REST cancel answer already says 0.001 filled (cumulative quote 49.99)...
    run(&mut e, update(&r, OrderStatus::Canceled, "0.001", "49.99", None, ms(1_200)));
    assert_eq!(status_of(&e, &r), None);
    assert_eq!(position(&e), q("0.001"));
    // ...then the WebSocket report of that fill arrives: quantity not booked twice, fee once.
    let late = fill(9, "49990", "0.001", "0.05", Some("USDT"));
    run(&mut e, update(&r, OrderStatus::PartiallyFilled, "0.001", "49.99", Some(late), ms(1_250)));
    run(&mut e, update(&r, OrderStatus::PartiallyFilled, "0.001", "49.99", Some(late), ms(1_260)));
    assert_eq!(position(&e), q("0.001"));
    assert_eq!(e.snapshot().symbols[0].realised_pnl, n("-0.05"));
    assert_eq!(status_of(&e, &r), None, "a terminal order stays terminal");
}

#[test]
fn refused_cancel_makes_the_order_unknown_and_queries_it() {
    let (mut e, script, r) = with_order();
    run(&mut e, ack(&r, ms(1_050)));
    script.push(Intent::Cancel(r.client_id));
    run(&mut e, book("BTCUSDT", "49990", "50010", ms(1_100)));
    let out = run(
        &mut e,
        Event::OrderRejected {
            symbol: r.symbol,
            client_id: r.client_id,
            code: -2011,
            ts_local: ms(1_150),
        },
    );
    assert_eq!(out, vec![Action::Query { symbol: r.symbol, client_id: r.client_id }]);
    assert_eq!(status_of(&e, &r), Some(OrderStatus::Unknown));
    // The query answers: it had filled.
    run(&mut e, update(&r, OrderStatus::Filled, "0.002", "99.98", None, ms(1_200)));
    assert_eq!(status_of(&e, &r), None);
    assert_eq!(position(&e), q("0.002"));
    assert_eq!(e.snapshot().symbols[0].exchange_rejections, 1);
}

#[test]
fn unknown_outcome_is_queried_until_resolved() {
    // TC0: the gateway reports a timeout: Unknown + Query; the query result resolves it.
    let (mut e, _, r) = with_order();
    let out = run(
        &mut e,
        Event::OrderUnknown { symbol: r.symbol, client_id: r.client_id, ts_local: ms(1_100) },
    );
    assert_eq!(out, vec![Action::Query { symbol: r.symbol, client_id: r.client_id }]);
    assert_eq!(status_of(&e, &r), Some(OrderStatus::Unknown));
    run(&mut e, ack(&r, ms(1_200)));
    assert_eq!(status_of(&e, &r), Some(OrderStatus::New));

    // TC1: no answer at all: the ack timeout (5 s) makes it Unknown, re-queried every 5 s,
    // and "order does not exist" (-2013) finally rejects it.
    let (mut e, _, r) = with_order();
    assert!(run(&mut e, Event::Timer(ms(5_999))).is_empty());
    let out = run(&mut e, Event::Timer(ms(6_000)));
    assert_eq!(out, vec![Action::Query { symbol: r.symbol, client_id: r.client_id }]);
    assert_eq!(status_of(&e, &r), Some(OrderStatus::Unknown));
    assert!(run(&mut e, Event::Timer(ms(10_999))).is_empty());
    assert_eq!(run(&mut e, Event::Timer(ms(11_000))).len(), 1);
    // A rejection with another code keeps it unknown (the timer queries again)...
    run(
        &mut e,
        Event::OrderRejected {
            symbol: r.symbol,
            client_id: r.client_id,
            code: -1007,
            ts_local: ms(11_100),
        },
    );
    assert_eq!(status_of(&e, &r), Some(OrderStatus::Unknown));
    // ...-2013 means it never reached the exchange.
    run(
        &mut e,
        Event::OrderRejected {
            symbol: r.symbol,
            client_id: r.client_id,
            code: -2013,
            ts_local: ms(11_200),
        },
    );
    assert_eq!(status_of(&e, &r), None);
    // TC2: an Unknown order still counts as open for the limits meanwhile (checked above by
    // status_of while Unknown); a rejected new order is terminal at once.
    let (mut e, _, r) = with_order();
    run(
        &mut e,
        Event::OrderRejected {
            symbol: r.symbol,
            client_id: r.client_id,
            code: -2010,
            ts_local: ms(1_100),
        },
    );
    assert_eq!(status_of(&e, &r), None);
    assert_eq!(position(&e), q("0"));
}

#[test]
fn adopted_orders_are_tracked_and_ids_continue_after_them() {
    let (mut e, script) = scripted_engine(two_symbol_config());
    let adopted = AdoptedOrder {
        symbol: sym("BTCUSDT"),
        client_id: cid("kst-41"),
        order_id: OrderId(99),
        side: Side::Sell,
        kind: OrderType::Limit,
        time_in_force: Some(TimeInForce::Gtc),
        price: Some(p("50100")),
        orig_qty: q("0.002"),
        cum_qty: q("0.001"),
        cum_quote: n("50.1"),
        status: OrderStatus::PartiallyFilled,
    };
    e.adopt_order(&adopted).unwrap();
    // TC0: adopting twice, an unknown symbol, or a closed order is refused
    assert_eq!(e.adopt_order(&adopted), Err(EngineError::DuplicateOrder(cid("kst-41"))));
    let mut other = adopted;
    other.symbol = sym("XRPUSDT");
    assert_eq!(e.adopt_order(&other), Err(EngineError::UnknownSymbol(sym("XRPUSDT"))));
    let mut closed = adopted;
    closed.client_id = cid("kst-40");
    closed.status = OrderStatus::Filled;
    assert!(matches!(e.adopt_order(&closed), Err(EngineError::NotOpen(..))));
    // TC1: new ids continue after the adopted one (journal was behind)
    assert_eq!(e.client_ids().next_seq(), 42);
    script.push(limit_buy("49990", "0.001"));
    let placed = places(&run(&mut e, book("BTCUSDT", "49990", "50010", ms(1_000))));
    assert_eq!(placed[0].client_id.as_str(), "kst-42");
    // TC2: the pre-adoption fill is not booked again; the rest fills into the position
    let snap = e.snapshot();
    assert_eq!(snap.symbols[0].open_orders.len(), 2);
    assert_eq!(snap.symbols[0].position, q("0"));
    let req = OrderRequest {
        symbol: adopted.symbol,
        client_id: adopted.client_id,
        side: Side::Sell,
        kind: OrderType::Limit,
        time_in_force: None,
        price: adopted.price,
        qty: adopted.orig_qty,
        ts_decided: ms(0),
    };
    run(
        &mut e,
        update(
            &req,
            OrderStatus::Filled,
            "0.002",
            "100.2",
            Some(fill(5, "50100", "0.001", "0", None)),
            ms(1_100),
        ),
    );
    assert_eq!(position(&e), q("-0.001"));
    // TC3: updates for orders that aren't ours are counted and ignored
    let mut foreign = req;
    foreign.client_id = cid("manual-1");
    run(&mut e, ack(&foreign, ms(1_200)));
    assert_eq!(e.snapshot().foreign_order_updates, 1);
    assert_eq!(position(&e), q("-0.001"));
}

/// S01, engine side: while a quote's outcome is unknown the market maker places nothing new
/// (no duplicate order), the engine queries it, and quoting resumes once the query answers.
#[test]
fn unknown_quote_blocks_requotes_until_the_query_answers() {
    let mut e = maker_engine();
    let first = places(&run(&mut e, book("BTCUSDT", "49990", "50010", ms(1_000))));
    assert_eq!(first.len(), 2);
    run(&mut e, ack(&first[0], ms(1_010)));
    let out = run(
        &mut e,
        Event::OrderUnknown {
            symbol: first[1].symbol,
            client_id: first[1].client_id,
            ts_local: ms(1_020),
        },
    );
    assert_eq!(out, vec![Action::Query { symbol: first[1].symbol, client_id: first[1].client_id }]);
    // Mid moves 20 bps: normally a requote, but one quote is Unknown.
    assert!(run(&mut e, book("BTCUSDT", "50090", "50110", ms(1_100))).is_empty());
    // The query answers: it is resting. The next book requotes both sides.
    run(&mut e, ack(&first[1], ms(1_200)));
    let out = run(&mut e, book("BTCUSDT", "50090", "50110", ms(1_300)));
    assert_eq!(places(&out).len(), 2);
    assert_eq!(out.iter().filter(|a| matches!(a, Action::Cancel { .. })).count(), 2);
}
