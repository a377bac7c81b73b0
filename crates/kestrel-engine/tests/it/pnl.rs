//! Positions, PnL with fees, the drawdown kill switch and operator commands.

use kestrel_engine::RejectReason;
use kestrel_model::{Action, Asset, Command, Event, OrderStatus, Side};

use crate::common::*;

#[test]
fn pnl_with_fees_in_quote_base_and_other_assets() {
    let (mut e, script) = scripted_engine(two_symbol_config());
    script.push(limit_buy("50000", "0.002"));
    let buy = places(&run(&mut e, book("BTCUSDT", "49990", "50010", ms(1))))[0];
    // Bought 0.002 @ 50000, 0.000002 BTC fee (base): hold 0.001998 for 100 USDT.
    let f = fill(1, "50000", "0.002", "0.000002", Some("BTC"));
    run(&mut e, update(&buy, OrderStatus::Filled, "0.002", "100", Some(f), ms(2)));
    script.push(limit_sell("50010", "0.001"));
    let sell = places(&run(&mut e, book("BTCUSDT", "50000", "50020", ms(3))))[0];
    assert_eq!(sell.side, Side::Sell);
    // Sold 0.001 @ 50010 with a 0.05 USDT fee, then a BNB fee on a second fill.
    let f = fill(2, "50010", "0.0005", "0.025", Some("USDT"));
    run(&mut e, update(&sell, OrderStatus::PartiallyFilled, "0.0005", "25.005", Some(f), ms(4)));
    let f = fill(3, "50010", "0.0005", "0.0001", Some("BNB"));
    run(&mut e, update(&sell, OrderStatus::Filled, "0.001", "50.01", Some(f), ms(5)));
    let s = &e.snapshot().symbols[0];
    assert_eq!(s.position, q("0.000998"));
    // Released cost 100 × 0.001/0.001998; realised = 50.01 − 0.025 − that.
    let released =
        n("100").mantissa() * q("0.001").mantissa() as i128 / q("0.001998").mantissa() as i128;
    let want = n("49.985").mantissa() - released;
    assert_eq!(s.realised_pnl.mantissa(), want);
    assert_eq!(s.other_fees, vec![(Asset::new("BNB").unwrap(), n("0.0001"))]);
    // Unrealised at mid 50010: 0.000998 × 50010 − remaining cost; total = exact net flow + value.
    let total = s.realised_pnl.mantissa() + s.unrealised_pnl.mantissa();
    let exact = n("-100").mantissa() + n("49.985").mantissa() + n("49.90998").mantissa();
    assert_eq!(total, exact);
    assert_eq!(e.snapshot().pnl.mantissa(), exact);
}

#[test]
fn kill_switch_cancels_everything_halts_and_waits_for_resume() {
    let (mut e, script) = scripted_engine(two_symbol_config());
    e.set_position(sym("BTCUSDT"), q("0.005"), p("50000")).unwrap();
    // TC0: a loss of exactly max_drawdown (50) does not trip
    assert!(run(&mut e, book("BTCUSDT", "39990", "40010", ms(1))).is_empty());
    assert!(!e.snapshot().kill_switch);
    // TC1: one cent more does: CancelAll on every symbol, halted
    let out = run(&mut e, book("BTCUSDT", "39980", "40000", ms(2)));
    assert_eq!(
        out,
        vec![
            Action::CancelAll { symbol: sym("BTCUSDT") },
            Action::CancelAll { symbol: sym("ETHUSDT") }
        ]
    );
    let snap = e.snapshot();
    assert!(snap.kill_switch && snap.halted);
    assert_eq!(snap.pnl, n("-50.05"));
    // TC2: no new orders, and the trip is not repeated on the next book
    script.push(limit_buy("39980", "0.0002"));
    assert!(run(&mut e, book("BTCUSDT", "39970", "39990", ms(3))).is_empty());
    assert_eq!(e.snapshot().symbols[0].rejection_count(RejectReason::KillSwitch), 1);
    // TC3: Halt + Resume by the operator clears it; drawdown counts afresh from here
    run(&mut e, Event::Command(Command::Halt));
    run(&mut e, Event::Command(Command::Resume));
    let snap = e.snapshot();
    assert!(!snap.kill_switch && !snap.halted);
    assert_eq!(snap.pnl_baseline, n("-50.1"));
    script.push(limit_buy("39970", "0.0002"));
    assert_eq!(places(&run(&mut e, book("BTCUSDT", "39970", "39990", ms(4)))).len(), 0);
    // (max_position 0.005 is already reached by the loaded position; a sell goes through)
    script.push(limit_sell("39990", "0.0002"));
    assert_eq!(places(&run(&mut e, book("BTCUSDT", "39970", "39990", ms(5)))).len(), 1);
    // TC4: another 50 of loss from the new baseline trips again
    let out = run(&mut e, book("BTCUSDT", "29900", "30000", ms(6)));
    assert!(out.contains(&Action::CancelAll { symbol: sym("ETHUSDT") }));
    assert!(e.snapshot().kill_switch);
}

#[test]
fn commands_halt_resume_and_cancel_all() {
    let (mut e, script) = scripted_engine(two_symbol_config());
    script.push(limit_buy("49990", "0.001"));
    let r = places(&run(&mut e, book("BTCUSDT", "49990", "50010", ms(1))))[0];
    run(&mut e, ack(&r, ms(2)));
    // TC0: cancel-all for one symbol
    let out = run(&mut e, Event::Command(Command::CancelAll { symbol: Some(sym("ETHUSDT")) }));
    assert_eq!(out, vec![Action::CancelAll { symbol: sym("ETHUSDT") }]);
    // TC1: cancel-all for every symbol marks our orders as cancelling
    let out = run(&mut e, Event::Command(Command::CancelAll { symbol: None }));
    assert_eq!(out.len(), 2);
    assert_eq!(e.snapshot().symbols[0].open_orders[0].status, OrderStatus::PendingCancel);
    // TC2: halt blocks orders, resume lets them through again
    run(&mut e, Event::Command(Command::Halt));
    script.push(limit_buy("49990", "0.001"));
    assert!(places(&run(&mut e, book("BTCUSDT", "49990", "50010", ms(3)))).is_empty());
    run(&mut e, Event::Command(Command::Resume));
    script.push(limit_buy("49990", "0.001"));
    assert_eq!(places(&run(&mut e, book("BTCUSDT", "49990", "50010", ms(4)))).len(), 1);
    assert_eq!(e.snapshot().symbols[0].rejection_count(RejectReason::Halted), 1);
    // TC3: events for unknown symbols are counted, not fatal
    run(&mut e, book("XRPUSDT", "1", "2", ms(5)));
    assert_eq!(e.snapshot().unknown_symbol_events, 1);
}
