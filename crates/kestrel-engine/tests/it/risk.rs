//! Every pre-trade risk rule, one table row each, through a scripted strategy.

use kestrel_engine::{Engine, EngineConfig, Intent, RejectReason};
use kestrel_model::instrument::Rule;
use kestrel_model::{BookState, Command, Event, FilterViolation};

use crate::common::*;

type Setup = fn(&mut Engine);
type Tweak = fn(&mut EngineConfig);

struct Case {
    name: &'static str,
    tweak: Tweak,
    setup: Setup,
    /// The book the intents are decided on.
    book: fn() -> Event,
    intents: Vec<Intent>,
    /// Approved orders as (price, qty) after rounding, in order.
    placed: Vec<(&'static str, &'static str)>,
    /// Rejections expected, by reason.
    rejected: Vec<RejectReason>,
}

fn btc_book() -> Event {
    book("BTCUSDT", "49990", "50010", ms(1_000))
}

fn no_tweak(_: &mut EngineConfig) {}
fn no_setup(_: &mut Engine) {}

#[test]
fn risk_rules_table() {
    let cases = vec![
        // TC0: a plain order inside every limit
        Case {
            name: "approve",
            tweak: no_tweak,
            setup: no_setup,
            book: btc_book,
            intents: vec![limit_buy("49990", "0.001")],
            placed: vec![("49990", "0.001")],
            rejected: vec![],
        },
        // TC1: rounding to exchange filters: buy price down to the tick, qty down to the step
        Case {
            name: "rounding",
            tweak: no_tweak,
            setup: no_setup,
            book: btc_book,
            intents: vec![limit_buy("49990.019", "0.0012345"), limit_sell("50010.001", "0.001")],
            placed: vec![("49990.01", "0.00123"), ("50010.01", "0.001")],
            rejected: vec![],
        },
        // TC2: operator halt
        Case {
            name: "halted",
            tweak: no_tweak,
            setup: |e| {
                run(e, Event::Command(Command::Halt));
            },
            book: btc_book,
            intents: vec![limit_buy("49990", "0.001")],
            placed: vec![],
            rejected: vec![RejectReason::Halted],
        },
        // TC3: stale book
        Case {
            name: "stale book",
            tweak: no_tweak,
            setup: no_setup,
            book: || {
                book_levels(
                    "BTCUSDT",
                    BookState::Stale,
                    &[("49990", "1")],
                    &[("50010", "1")],
                    ms(1),
                )
            },
            intents: vec![limit_buy("49990", "0.001")],
            placed: vec![],
            rejected: vec![RejectReason::BookStale],
        },
        // TC4: crossed book counts as stale
        Case {
            name: "crossed book",
            tweak: no_tweak,
            setup: no_setup,
            book: || book("BTCUSDT", "50010", "49990", ms(1)),
            intents: vec![limit_buy("49990", "0.001")],
            placed: vec![],
            rejected: vec![RejectReason::BookStale],
        },
        // TC5: REST fallback book while trading on it is off
        Case {
            name: "rest fallback off",
            tweak: no_tweak,
            setup: no_setup,
            book: || rest_book("BTCUSDT", "49990", "50010", ms(1)),
            intents: vec![limit_buy("49990", "0.001")],
            placed: vec![],
            rejected: vec![RejectReason::RestFallback],
        },
        // TC6: ... and allowed when configured
        Case {
            name: "rest fallback on",
            tweak: |c| c.risk.allow_rest_fallback = true,
            setup: no_setup,
            book: || rest_book("BTCUSDT", "49990", "50010", ms(1)),
            intents: vec![limit_buy("49990", "0.001")],
            placed: vec![("49990", "0.001")],
            rejected: vec![],
        },
        // TC7: below the NOTIONAL minimum (0.4999 < 5)
        Case {
            name: "min notional",
            tweak: no_tweak,
            setup: no_setup,
            book: btc_book,
            intents: vec![limit_buy("49990", "0.00001")],
            placed: vec![],
            rejected: vec![RejectReason::Filter(FilterViolation::Notional(Rule::BelowMin))],
        },
        // TC8: a quantity that rounds to zero
        Case {
            name: "lot size",
            tweak: no_tweak,
            setup: no_setup,
            book: btc_book,
            intents: vec![limit_buy("49990", "0.000001")],
            placed: vec![],
            rejected: vec![RejectReason::Filter(FilterViolation::LotSize(Rule::BelowMin))],
        },
        // TC9: 2 % from mid with a 1 % band, both sides
        Case {
            name: "price band",
            tweak: no_tweak,
            setup: no_setup,
            book: btc_book,
            intents: vec![limit_buy("49000", "0.001"), limit_sell("51000", "0.001")],
            placed: vec![],
            rejected: vec![RejectReason::PriceBand, RejectReason::PriceBand],
        },
        // TC10: the fifth open order with max_open_orders = 4
        Case {
            name: "max open orders",
            tweak: no_tweak,
            setup: no_setup,
            book: btc_book,
            intents: vec![limit_buy("49990", "0.0002"); 5],
            placed: vec![("49990", "0.0002"); 4],
            rejected: vec![RejectReason::MaxOpenOrders],
        },
        // TC11: worst-case position: 0.003 open + 0.003 > 0.005; a sell is fine
        Case {
            name: "max position",
            tweak: no_tweak,
            setup: no_setup,
            book: btc_book,
            intents: vec![
                limit_buy("49990", "0.003"),
                limit_buy("49990", "0.003"),
                limit_sell("50010", "0.005"),
                limit_sell("50010", "0.001"),
            ],
            placed: vec![("49990", "0.003"), ("50010", "0.005")],
            rejected: vec![RejectReason::MaxPosition, RejectReason::MaxPosition],
        },
        // TC12: funds cap across symbols: ETH long 0.1 @ 3000 = 300; +249.95 > 500, +199.96 ok
        Case {
            name: "funds cap",
            tweak: |c| c.symbols[0].max_position = q("1"),
            setup: |e| e.set_position(sym("ETHUSDT"), q("0.1"), p("3000")).unwrap(),
            book: btc_book,
            intents: vec![limit_buy("49990", "0.005"), limit_buy("49990", "0.004")],
            placed: vec![("49990", "0.004")],
            rejected: vec![RejectReason::FundsCap],
        },
        // TC13: order-rate token bucket: burst 10, the 11th in the same instant is refused
        Case {
            name: "rate limit",
            tweak: |c| {
                c.symbols[0].max_open_orders = 50;
                c.symbols[0].max_position = q("1");
            },
            setup: no_setup,
            book: btc_book,
            intents: vec![limit_buy("49990", "0.0002"); 11],
            placed: vec![("49990", "0.0002"); 10],
            rejected: vec![RejectReason::RateLimit],
        },
        // TC14: orders awaiting the exchange's answer, all symbols: cap 3, the 4th is refused
        Case {
            name: "max pending orders",
            tweak: |c| {
                c.risk.max_pending_orders = 3;
                c.symbols[0].max_open_orders = 50;
                c.symbols[0].max_position = q("1");
            },
            setup: no_setup,
            book: btc_book,
            intents: vec![limit_buy("49990", "0.0002"); 5],
            placed: vec![("49990", "0.0002"); 3],
            rejected: vec![RejectReason::MaxPendingOrders, RejectReason::MaxPendingOrders],
        },
    ];
    for (i, c) in cases.into_iter().enumerate() {
        let mut cfg = two_symbol_config();
        (c.tweak)(&mut cfg);
        let (mut e, script) = scripted_engine(cfg);
        (c.setup)(&mut e);
        for intent in &c.intents {
            script.push(*intent);
        }
        let out = run(&mut e, (c.book)());
        let placed: Vec<_> = places(&out).iter().map(|r| (r.price.unwrap(), r.qty)).collect();
        let want: Vec<_> = c.placed.iter().map(|(a, b)| (p(a), q(b))).collect();
        assert_eq!(placed, want, "TC{i} {}", c.name);
        let snap = e.snapshot();
        let mut want_counts = [0u64; RejectReason::ALL.len()];
        for r in &c.rejected {
            want_counts[r.index()] += 1;
        }
        assert_eq!(snap.symbols[0].risk_rejections, want_counts, "TC{i} {}", c.name);
        assert_eq!(snap.symbols[0].signals, 1, "TC{i} {}", c.name);
    }
}

#[test]
fn rate_limit_refills_with_event_time() {
    let mut cfg = two_symbol_config();
    cfg.symbols[0].max_open_orders = 50;
    cfg.symbols[0].max_position = q("1");
    let (mut e, script) = scripted_engine(cfg);
    for _ in 0..11 {
        script.push(limit_buy("49990", "0.0002"));
    }
    assert_eq!(places(&run(&mut e, book("BTCUSDT", "49990", "50010", ms(1_000)))).len(), 10);
    // 5 orders/s: 199 ms later no token yet, 200 ms later exactly one.
    script.push(limit_buy("49990", "0.0002"));
    assert_eq!(places(&run(&mut e, book("BTCUSDT", "49990", "50010", ms(1_199)))).len(), 0);
    script.push(limit_buy("49990", "0.0002"));
    script.push(limit_buy("49990", "0.0002"));
    assert_eq!(places(&run(&mut e, book("BTCUSDT", "49990", "50010", ms(1_200)))).len(), 1);
    assert_eq!(e.snapshot().symbols[0].rejection_count(RejectReason::RateLimit), 3);
    let labels: Vec<_> = e.snapshot().symbols[0].rejections().collect();
    assert_eq!(labels, vec![("rate_limit", 3)]);
}

#[test]
fn cancels_pass_even_when_halted() {
    let (mut e, script) = scripted_engine(two_symbol_config());
    script.push(limit_buy("49990", "0.001"));
    let placed = places(&run(&mut e, book("BTCUSDT", "49990", "50010", ms(1))));
    run(&mut e, ack(&placed[0], ms(2)));
    run(&mut e, Event::Command(Command::Halt));
    script.push(Intent::Cancel(placed[0].client_id));
    let out = run(&mut e, book("BTCUSDT", "49990", "50010", ms(3)));
    assert_eq!(
        out,
        vec![kestrel_model::Action::Cancel {
            symbol: sym("BTCUSDT"),
            client_id: placed[0].client_id
        }]
    );
    assert!(e.snapshot().halted);
}
