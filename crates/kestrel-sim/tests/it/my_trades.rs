//! `GET /api/v3/myTrades` parameters over real HTTP with real signing: `fromId` paging (the
//! bot's fill catch-up), `limit`, `orderId`, the `startTime`/`endTime` window and the rejected
//! parameter combinations.

use serde_json::Value;

use super::*;

/// Extra myTrades parameters of one rejection case.
type Params<'a> = &'a [(&'a str, &'a str)];

/// One fill as the test saw it in a FULL order response.
#[derive(Debug, Clone, Copy)]
struct Seen {
    order_id: u64,
    trade_id: u64,
    time_ms: u64,
}

/// Places `n` market orders for the demo account (alternating BUY/SELL), one second of sim time
/// apart, and returns every fill from their FULL responses.
async fn fills(sim: &SimHandle, c: &Rest, n: usize) -> Vec<Seen> {
    let mut seen = Vec::new();
    for i in 0..n {
        let side = if i % 2 == 0 { "BUY" } else { "SELL" };
        let r = c
            .signed(
                "POST",
                "/api/v3/order",
                &[("symbol", "BTCUSDT"), ("side", side), ("type", "MARKET"), ("quantity", "0.001")],
                sim.server_time_ms(),
            )
            .await;
        assert_eq!(r.body["status"], "FILLED", "{:?}", r.body);
        let order_id = r.body["orderId"].as_u64().unwrap();
        let time_ms = r.body["transactTime"].as_u64().unwrap();
        for f in r.body["fills"].as_array().unwrap() {
            seen.push(Seen { order_id, trade_id: f["tradeId"].as_u64().unwrap(), time_ms });
        }
        sim.advance_time_ms(1_000);
    }
    seen
}

/// Signed myTrades for BTCUSDT with extra parameters.
async fn my_trades(sim: &SimHandle, c: &Rest, extra: &[(&str, &str)]) -> Answer {
    let mut params = vec![("symbol", "BTCUSDT")];
    params.extend_from_slice(extra);
    c.signed("GET", "/api/v3/myTrades", &params, sim.server_time_ms()).await
}

/// Trade ids of a successful myTrades answer, in the order returned.
fn ids(a: &Answer) -> Vec<u64> {
    assert_eq!(a.status, 200, "{:?}", a.body);
    a.body.as_array().unwrap().iter().map(|t| t["id"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn my_trades_from_id_limit_order_id_and_time_window() {
    let sim = start(test_config()).await;
    let c = Rest::demo(&sim);
    let seen = fills(&sim, &c, 5).await;
    assert!(seen.len() >= 5, "every market order fills at least once: {seen:?}");
    let mut all: Vec<u64> = seen.iter().map(|s| s.trade_id).collect();
    all.sort_unstable();
    assert_eq!(ids(&my_trades(&sim, &c, &[]).await), all, "no filter: every fill, ascending");

    // TC0: fromId returns ids >= fromId, ascending (the catch-up after the last journaled id).
    for (k, from) in all.iter().enumerate() {
        let got = ids(&my_trades(&sim, &c, &[("fromId", &from.to_string())]).await);
        assert_eq!(got, all[k..].to_vec(), "fromId={from}");
    }
    let past_end = (all[all.len() - 1] + 1).to_string();
    assert!(ids(&my_trades(&sim, &c, &[("fromId", &past_end)]).await).is_empty());

    // TC1: limit caps the count: the oldest `limit` from fromId, the newest `limit` without it.
    let first = all[0].to_string();
    let got = ids(&my_trades(&sim, &c, &[("fromId", &first), ("limit", "2")]).await);
    assert_eq!(got, all[..2].to_vec(), "fromId + limit pages forward");
    let got = ids(&my_trades(&sim, &c, &[("limit", "2")]).await);
    assert_eq!(got, all[all.len() - 2..].to_vec(), "limit alone keeps the most recent");
    let got = ids(&my_trades(&sim, &c, &[("limit", "1000")]).await);
    assert_eq!(got, all, "limit 1000 is accepted");

    // TC2: orderId keeps that order's fills only; orderId + fromId is a supported combination.
    for order in [seen[0].order_id, seen[seen.len() - 1].order_id] {
        let mut want: Vec<u64> =
            seen.iter().filter(|s| s.order_id == order).map(|s| s.trade_id).collect();
        want.sort_unstable();
        let a = my_trades(&sim, &c, &[("orderId", &order.to_string())]).await;
        assert_eq!(ids(&a), want, "orderId={order}");
        assert!(a.body.as_array().unwrap().iter().all(|t| t["orderId"].as_u64() == Some(order)));
    }
    let last = seen[seen.len() - 1];
    let a = my_trades(
        &sim,
        &c,
        &[("orderId", &last.order_id.to_string()), ("fromId", &(last.trade_id + 1).to_string())],
    )
    .await;
    assert!(ids(&a).is_empty(), "orderId + fromId past its last fill");
    let a = my_trades(&sim, &c, &[("orderId", "999999999")]).await;
    assert!(ids(&a).is_empty(), "an order with no fills");

    // TC3: startTime/endTime keep the fills inside the (inclusive) window.
    let (t1, t3) = (seen[1].time_ms, seen[3].time_ms);
    let want = |lo: u64, hi: u64| -> Vec<u64> {
        let mut v: Vec<u64> = seen
            .iter()
            .filter(|s| s.time_ms >= lo && s.time_ms <= hi)
            .map(|s| s.trade_id)
            .collect();
        v.sort_unstable();
        v
    };
    let (s1, s3) = (t1.to_string(), t3.to_string());
    let got = ids(&my_trades(&sim, &c, &[("startTime", &s1), ("endTime", &s3)]).await);
    assert_eq!(got, want(t1, t3), "startTime + endTime");
    let got = ids(&my_trades(&sim, &c, &[("startTime", &s3)]).await);
    assert_eq!(got, want(t3, u64::MAX), "startTime alone");
    let got = ids(&my_trades(&sim, &c, &[("endTime", &s1)]).await);
    assert_eq!(got, want(0, t1), "endTime alone");
    sim.shutdown().await;
}

#[tokio::test]
async fn my_trades_rejects_unsupported_combinations_and_bad_limits() {
    let sim = start(test_config()).await;
    let c = Rest::demo(&sim);
    fills(&sim, &c, 2).await;
    let now = sim.server_time_ms().to_string();
    let day_ago = (sim.server_time_ms() - 24 * 60 * 60 * 1000).to_string();
    let too_long = (sim.server_time_ms() - 24 * 60 * 60 * 1000 - 1).to_string();
    // TC0..: (params, code, message)
    let cases: &[(Params, i64, &str)] = &[
        // TC0: fromId with a time bound
        (
            &[("fromId", "1"), ("startTime", &now)],
            -1128,
            "Combination of optional parameters invalid.",
        ),
        (
            &[("fromId", "1"), ("endTime", &now)],
            -1128,
            "Combination of optional parameters invalid.",
        ),
        // TC1: orderId with a time bound
        (
            &[("orderId", "1"), ("startTime", &now)],
            -1128,
            "Combination of optional parameters invalid.",
        ),
        (
            &[("orderId", "1"), ("startTime", &day_ago), ("endTime", &now)],
            -1128,
            "Combination of optional parameters invalid.",
        ),
        // TC2: limit out of 1..=1000 or not a number
        (
            &[("limit", "0")],
            -1100,
            "Illegal characters found in parameter 'limit'; legal range is '1-1000'.",
        ),
        (
            &[("limit", "1001")],
            -1100,
            "Illegal characters found in parameter 'limit'; legal range is '1-1000'.",
        ),
        (
            &[("fromId", "1"), ("limit", "5000")],
            -1100,
            "Illegal characters found in parameter 'limit'; legal range is '1-1000'.",
        ),
        (&[("limit", "ten")], -1100, ""),
        // TC3: malformed ids, window over 24 h
        (&[("fromId", "-3")], -1100, ""),
        (&[("orderId", "x")], -1100, ""),
        (
            &[("startTime", &too_long), ("endTime", &now)],
            -1127,
            "More than 24 hours between startTime and endTime.",
        ),
    ];
    for (params, code, msg) in cases {
        let a = my_trades(&sim, &c, params).await;
        assert_eq!((a.status, a.code()), (400, *code), "{params:?}: {:?}", a.body);
        if !msg.is_empty() {
            assert_eq!(a.body["msg"], Value::from(*msg), "{params:?}");
        }
    }
    // Exactly 24 h is accepted.
    let a = my_trades(&sim, &c, &[("startTime", &day_ago), ("endTime", &now)]).await;
    assert_eq!(ids(&a).len(), 2, "{:?}", a.body);
    // A missing symbol is -1102 before anything else.
    let a = c.signed("GET", "/api/v3/myTrades", &[("fromId", "1")], sim.server_time_ms()).await;
    assert_eq!((a.status, a.code()), (400, -1102), "{:?}", a.body);
    sim.shutdown().await;
}
