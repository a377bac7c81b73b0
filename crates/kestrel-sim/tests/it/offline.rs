//! The rate-driven market's generator in process ([`kestrel_sim::OfflineMarket`]): depth diffs
//! stay contiguous and rebuild the REST book, every depth step publishes a diff, trades print,
//! and streams nobody subscribed to are not produced.

use std::collections::BTreeMap;

use kestrel_sim::OfflineMarket;
use serde_json::Value;

use super::*;

/// Decimal string with 8 places -> 1e-8 mantissa.
fn mantissa(s: &str) -> i64 {
    let (i, f) = s.split_once('.').unwrap();
    assert_eq!(f.len(), 8, "{s}");
    i.parse::<i64>().unwrap() * 100_000_000 + f.parse::<i64>().unwrap()
}

type Side = BTreeMap<i64, i64>;

fn apply(side: &mut Side, levels: &Value) {
    for l in levels.as_array().unwrap() {
        let (p, q) = (mantissa(l[0].as_str().unwrap()), mantissa(l[1].as_str().unwrap()));
        if q == 0 {
            side.remove(&p);
        } else {
            side.insert(p, q);
        }
    }
}

#[test]
fn offline_stress_mix_diffs_rebuild_the_book() {
    let mut cfg = test_config();
    cfg.symbols.truncate(2);
    let mut m = OfflineMarket::new(&cfg, 1 << 16).unwrap();
    for s in 0..2 {
        let p = m.stream_prefix(s).to_string();
        for k in ["depth@100ms", "depth", "trade"] {
            assert!(m.subscribe(&format!("{p}@{k}")));
        }
    }
    assert!(!m.subscribe("btcusdt@kline_1m"), "unknown kind refused");
    assert!(!m.subscribe("nosuchusdt@trade"), "unknown symbol refused");
    let (id0, b0, a0) = m.depth_snapshot(0);
    let mut bids: Side = b0.into_iter().collect();
    let mut asks: Side = a0.into_iter().collect();
    let (mut last_fast, mut last_slow) = (id0, None::<u64>);
    let (mut fast, mut trades, mut other) = (0, 0, 0);
    for round in 0..2000u64 {
        m.trade(0, T0 + round);
        m.depth_step(0, T0 + round);
        m.trade(1, T0 + round);
        m.depth_step(1, T0 + round);
        m.drain(|text| {
            let v: Value = serde_json::from_str(text).unwrap();
            let (stream, ev) = (v["stream"].as_str().unwrap(), &v["data"]);
            match stream {
                "btcusdt@depth@100ms" => {
                    let (u0, u1) = (ev["U"].as_u64().unwrap(), ev["u"].as_u64().unwrap());
                    // TC0: contiguous from the snapshot on (SPEC.md §3), never empty.
                    assert_eq!(u0, last_fast + 1, "{text}");
                    assert!(u1 >= u0);
                    last_fast = u1;
                    apply(&mut bids, &ev["b"]);
                    apply(&mut asks, &ev["a"]);
                    assert_eq!(ev["s"], "BTCUSDT");
                    fast += 1;
                }
                "btcusdt@depth" => {
                    let u0 = ev["U"].as_u64().unwrap();
                    if let Some(l) = last_slow {
                        assert_eq!(u0, l + 1, "{text}");
                    }
                    last_slow = ev["u"].as_u64();
                }
                "btcusdt@trade" => {
                    assert_eq!(ev["e"], "trade");
                    assert!(mantissa(ev["q"].as_str().unwrap()) > 0);
                    trades += 1;
                }
                _ => other += 1,
            }
        });
    }
    // TC1: one diff per depth step; at least one trade frame per background trade.
    assert_eq!(fast, 2000);
    assert!(trades >= 2000, "{trades}");
    assert!(other >= 2000, "the other symbol's streams were delivered too");
    // TC2: the diffs applied to the first snapshot give the final snapshot, exactly.
    let (id1, b1, a1) = m.depth_snapshot(0);
    assert_eq!(id1, last_fast);
    assert_eq!(bids, b1.into_iter().collect::<Side>());
    assert_eq!(asks, a1.into_iter().collect::<Side>());
    // TC3: the book is never crossed and keeps background levels on both sides.
    assert!(bids.keys().next_back().unwrap() < asks.keys().next().unwrap());
    assert!(bids.len() >= 10 && asks.len() >= 10, "{} / {}", bids.len(), asks.len());
}

#[test]
fn offline_unsubscribed_streams_are_not_produced() {
    let mut m = OfflineMarket::new(&test_config(), 1 << 12).unwrap();
    for r in 0..50 {
        m.trade(0, T0 + r);
        m.depth_step(0, T0 + r);
    }
    assert_eq!(m.drain(|_| {}), 0, "nothing subscribed: nothing serialised or delivered");
    assert!(m.subscribe("btcusdt@aggTrade"));
    m.trade(0, T0 + 60);
    let mut agg = Vec::new();
    assert!(m.drain(|t| agg.push(t.to_string())) >= 1);
    let v: Value = serde_json::from_str(&agg[0]).unwrap();
    assert_eq!(v["stream"], "btcusdt@aggTrade");
    assert_eq!(v["data"]["e"], "aggTrade");
}
