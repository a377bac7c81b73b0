//! Matching scenarios between two user accounts and the background market; balances and fees
//! add up to zero over every account (internal ones included).

use std::time::Duration;

use kestrel_model::Notional;

use super::*;

fn n(s: &str) -> Notional {
    s.parse().unwrap()
}

#[tokio::test]
async fn partial_fills_fees_and_zero_sum() {
    let sim = start(test_config()).await;
    let totals = sim.total_balances();
    let (demo, bob) = (Rest::demo(&sim), Rest::bob(&sim));
    let ts = sim.server_time_ms();
    let (bid, _) = sim.best_bid_ask("BTCUSDT").unwrap();
    let below = bid.unwrap().mantissa() / 100_000_000 - 100; // a price below the book, on tick
    let px = format!("{below}");
    // TC0: bob rests a SELL 0.01 @ px... below the bid it would take, so use demo BUY to rest.
    let buy = demo
        .signed(
            "POST",
            "/api/v3/order",
            &[
                ("symbol", "BTCUSDT"),
                ("side", "BUY"),
                ("type", "LIMIT"),
                ("timeInForce", "GTC"),
                ("quantity", "0.01"),
                ("price", &px),
            ],
            ts,
        )
        .await;
    assert_eq!(buy.body["status"], "NEW", "{:?}", buy.body);
    // TC1: bob sells 0.004 at px: fills against the better background bids first (price priority).
    let sell = bob
        .signed(
            "POST",
            "/api/v3/order",
            &[
                ("symbol", "BTCUSDT"),
                ("side", "SELL"),
                ("type", "LIMIT"),
                ("timeInForce", "IOC"),
                ("quantity", "0.004"),
                ("price", &px),
            ],
            ts,
        )
        .await;
    assert_eq!(sell.body["status"], "FILLED");
    assert!(sell.body["fills"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["price"].as_str().unwrap() != format!("{px}.00000000")));
    // TC2: Remove the background bids above px by stepping? Instead bob sells with a limit equal
    // to px after the book is cleared: use cancel of the maker by a gap-free path: FOK larger than
    // the book at >= px kills.
    let fok = bob
        .signed(
            "POST",
            "/api/v3/order",
            &[
                ("symbol", "BTCUSDT"),
                ("side", "SELL"),
                ("type", "LIMIT"),
                ("timeInForce", "FOK"),
                ("quantity", "1000"),
                ("price", &px),
            ],
            ts,
        )
        .await;
    assert_eq!(fok.status, 400, "{:?}", fok.body); // more than bob's BTC: insufficient balance
    let fok = bob
        .signed(
            "POST",
            "/api/v3/order",
            &[
                ("symbol", "BTCUSDT"),
                ("side", "SELL"),
                ("type", "LIMIT"),
                ("timeInForce", "FOK"),
                ("quantity", "1.5"),
                ("price", &px),
            ],
            ts,
        )
        .await;
    // Background bids within 100 USDT of the mid hold ~10 BTC at 20 levels × 0.5: FOK fills or
    // kills atomically; either way executedQty is all or nothing.
    let exec = fok.body["executedQty"].as_str().unwrap();
    assert!(exec == "0.00000000" || exec == "1.50000000", "{exec}");
    // TC3: demo's resting order is reached once the background bids above it are gone: a big
    // market sell by bob sweeps them and partially fills demo.
    let sweep = bob
        .signed(
            "POST",
            "/api/v3/order",
            &[
                ("symbol", "BTCUSDT"),
                ("side", "SELL"),
                ("type", "LIMIT"),
                ("timeInForce", "IOC"),
                ("quantity", "0.4"),
                ("price", &px),
            ],
            ts,
        )
        .await;
    assert_eq!(sweep.status, 200, "{:?}", sweep.body);
    let q = demo
        .signed(
            "GET",
            "/api/v3/order",
            &[("symbol", "BTCUSDT"), ("orderId", &buy.body["orderId"].to_string())],
            ts,
        )
        .await;
    let status = q.body["status"].as_str().unwrap().to_string();
    assert!(["NEW", "PARTIALLY_FILLED", "FILLED"].contains(&status.as_str()), "{status}");
    // TC4: zero-sum across every account, fees included.
    assert_eq!(sim.total_balances(), totals);
    let fees = sim.balances("sim-fees").unwrap();
    assert!(fees["USDT"].0 > Notional::ZERO, "sellers paid fees in USDT");
    sim.shutdown().await;
}

#[tokio::test]
async fn user_orders_match_each_other_with_price_time_priority() {
    let mut cfg = test_config();
    // A book with no background liquidity near the users' prices: only users trade.
    cfg.symbols[0].levels = 1;
    cfg.symbols[0].half_spread_ticks = 100_000; // background quotes ±1000 USDT from mid
    cfg.symbols[0].trade_probability_pct = 0;
    let sim = start(cfg).await;
    let totals = sim.total_balances();
    let (demo, bob) = (Rest::demo(&sim), Rest::bob(&sim));
    let ts = sim.server_time_ms();
    let order = |side: &'static str,
                 tif: &'static str,
                 qty: &'static str,
                 price: &'static str,
                 cid: &'static str| {
        vec![
            ("symbol", "BTCUSDT"),
            ("side", side),
            ("type", "LIMIT"),
            ("timeInForce", tif),
            ("quantity", qty),
            ("price", price),
            ("newClientOrderId", cid),
        ]
    };
    // Two resting bids at the same price: demo first, then bob.
    assert_eq!(
        demo.signed("POST", "/api/v3/order", &order("BUY", "GTC", "0.01", "64900", "d1"), ts)
            .await
            .body["status"],
        "NEW"
    );
    assert_eq!(
        bob.signed("POST", "/api/v3/order", &order("BUY", "GTC", "0.01", "64900", "b1"), ts)
            .await
            .body["status"],
        "NEW"
    );
    // A better bid from bob.
    assert_eq!(
        bob.signed("POST", "/api/v3/order", &order("BUY", "GTC", "0.01", "64901", "b2"), ts)
            .await
            .body["status"],
        "NEW"
    );
    // TC0: LIMIT_MAKER sell at the bid would take → rejected; above it rests.
    let lm = demo
        .signed(
            "POST",
            "/api/v3/order",
            &[
                ("symbol", "BTCUSDT"),
                ("side", "SELL"),
                ("type", "LIMIT_MAKER"),
                ("quantity", "0.01"),
                ("price", "64901"),
            ],
            ts,
        )
        .await;
    assert_eq!(lm.code(), -2010);
    let lm = demo
        .signed(
            "POST",
            "/api/v3/order",
            &[
                ("symbol", "BTCUSDT"),
                ("side", "SELL"),
                ("type", "LIMIT_MAKER"),
                ("quantity", "0.01"),
                ("price", "64950"),
            ],
            ts,
        )
        .await;
    assert!(lm.body["orderId"].is_u64(), "ACK by default: {:?}", lm.body);
    // TC1: demo sells 0.015 at 64900 IOC: b2 (better price) fills fully, then d1 is demo's own
    // order → EXPIRE_MAKER (default STP) expires d1, then b1 fills 0.005.
    let s = demo
        .signed("POST", "/api/v3/order", &order("SELL", "IOC", "0.015", "64900", "d2"), ts)
        .await;
    assert_eq!(s.body["status"], "FILLED", "{:?}", s.body);
    let fills = s.body["fills"].as_array().unwrap();
    assert_eq!(
        (fills[0]["price"].as_str().unwrap(), fills[0]["qty"].as_str().unwrap()),
        ("64901.00000000", "0.01000000")
    );
    assert_eq!(
        (fills[1]["price"].as_str().unwrap(), fills[1]["qty"].as_str().unwrap()),
        ("64900.00000000", "0.00500000")
    );
    // Commission: 0.1 % of the USDT received, in USDT.
    assert_eq!(fills[0]["commission"], "0.64901000");
    let d1 = demo
        .signed("GET", "/api/v3/order", &[("symbol", "BTCUSDT"), ("origClientOrderId", "d1")], ts)
        .await;
    assert_eq!(d1.body["status"], "EXPIRED_IN_MATCH");
    let b1 = bob
        .signed("GET", "/api/v3/order", &[("symbol", "BTCUSDT"), ("origClientOrderId", "b1")], ts)
        .await;
    assert_eq!(
        (b1.body["status"].as_str().unwrap(), b1.body["executedQty"].as_str().unwrap()),
        ("PARTIALLY_FILLED", "0.00500000")
    );
    // TC2: FOK bigger than the crossing quantity is killed with nothing executed.
    let f = demo
        .signed("POST", "/api/v3/order", &order("SELL", "FOK", "0.02", "64900", "d3"), ts)
        .await;
    assert_eq!(
        (f.body["status"].as_str().unwrap(), f.body["executedQty"].as_str().unwrap()),
        ("EXPIRED", "0.00000000")
    );
    // TC3: MARKET by quoteOrderQty buys what 100 USDT buys at the best ask (demo's 64950 ask is
    // its own: EXPIRE_MAKER expires it, then background asks fill).
    let m = bob
        .signed(
            "POST",
            "/api/v3/order",
            &[("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quoteOrderQty", "100")],
            ts,
        )
        .await;
    assert_eq!(m.body["status"], "FILLED", "{:?}", m.body);
    let cq: f64 = m.body["cummulativeQuoteQty"].as_str().unwrap().parse().unwrap();
    assert!(cq <= 100.0 && cq > 99.0, "{cq}");
    // TC4: cancel-all leaves nothing open and unlocks everything.
    let all = bob.signed("DELETE", "/api/v3/openOrders", &[("symbol", "BTCUSDT")], ts).await;
    assert_eq!(all.body.as_array().unwrap().len(), 1, "{:?}", all.body);
    assert!(bob
        .signed("GET", "/api/v3/openOrders", &[], ts)
        .await
        .body
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(sim.balances("bob").unwrap()["USDT"].1, Notional::ZERO, "nothing locked");
    // TC5: zero-sum.
    assert_eq!(sim.total_balances(), totals);
    let _ = n("0");
    sim.shutdown().await;
}

#[tokio::test]
async fn background_market_fills_resting_user_orders() {
    let mut cfg = test_config();
    cfg.symbols[0].max_move_ticks = 500; // ±5 USDT per step
    let sim = start(cfg).await;
    let totals = sim.total_balances();
    let demo = Rest::demo(&sim);
    let ts = sim.server_time_ms();
    let mut ws = ws_connect(&sim.ws_api_url()).await;
    let mut p =
        serde_json::json!({"apiKey": kestrel_sim::config::DEMO_HMAC_API_KEY, "timestamp": ts})
            .as_object()
            .unwrap()
            .clone();
    super::ws_api::hmac_sign(&mut p, kestrel_sim::config::DEMO_HMAC_SECRET);
    assert_eq!(
        ws.call("s", "userDataStream.subscribe.signature", serde_json::Value::Object(p)).await
            ["status"],
        200
    );
    // A resting bid 3 USDT under the bid and an ask 3 USDT over the ask: the walk crosses one.
    let (bid, ask) = sim.best_bid_ask("BTCUSDT").unwrap();
    let bid_px = format!("{}", bid.unwrap().mantissa() / 100_000_000 - 3);
    let ask_px = format!("{}", ask.unwrap().mantissa() / 100_000_000 + 4);
    let mut ids = Vec::new();
    for (side, px) in [("BUY", &bid_px), ("SELL", &ask_px)] {
        let o = demo
            .signed(
                "POST",
                "/api/v3/order",
                &[
                    ("symbol", "BTCUSDT"),
                    ("side", side),
                    ("type", "LIMIT"),
                    ("timeInForce", "GTC"),
                    ("quantity", "0.001"),
                    ("price", px),
                ],
                ts,
            )
            .await;
        assert_eq!(o.body["status"], "NEW", "{:?}", o.body);
        ids.push(o.body["orderId"].to_string());
    }
    let mut filled = false;
    'outer: for _ in 0..2000 {
        sim.step_market(1);
        for id in &ids {
            let q = demo
                .signed("GET", "/api/v3/order", &[("symbol", "BTCUSDT"), ("orderId", id)], ts)
                .await;
            if q.body["status"] == "FILLED" {
                filled = true;
                break 'outer;
            }
        }
    }
    assert!(filled, "the random walk never crossed either order");
    let ev = ws.next_where(Duration::from_secs(5), |v| v["event"]["X"] == "FILLED").await;
    assert_eq!(ev["event"]["m"], true, "the user was the maker");
    assert_eq!(sim.total_balances(), totals);
    sim.shutdown().await;
}

#[tokio::test]
async fn locks_release_on_cancel_and_max_num_orders() {
    let mut cfg = test_config();
    cfg.symbols[0].max_num_orders = 2;
    let sim = start(cfg).await;
    let c = Rest::demo(&sim);
    let ts = sim.server_time_ms();
    let before = sim.balances("demo").unwrap()["USDT"];
    let p = [
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "0.001"),
        ("price", "60000"),
    ];
    let a = c.signed("POST", "/api/v3/order", &p, ts).await;
    assert_eq!(sim.balances("demo").unwrap()["USDT"].1, "60".parse().unwrap(), "60 USDT locked");
    c.signed("POST", "/api/v3/order", &p, ts).await;
    let third = c.signed("POST", "/api/v3/order", &p, ts).await;
    assert_eq!(third.body["msg"], "Filter failure: MAX_NUM_ORDERS");
    c.signed(
        "DELETE",
        "/api/v3/order",
        &[("symbol", "BTCUSDT"), ("orderId", &a.body["orderId"].to_string())],
        ts,
    )
    .await;
    assert_eq!(
        c.signed("POST", "/api/v3/order", &p, ts).await.status,
        200,
        "room again after a cancel"
    );
    c.signed("DELETE", "/api/v3/openOrders", &[("symbol", "BTCUSDT")], ts).await;
    assert_eq!(sim.balances("demo").unwrap()["USDT"], before, "every lock released");
    sim.shutdown().await;
}
