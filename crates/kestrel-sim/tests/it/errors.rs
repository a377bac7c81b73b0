//! Each documented error code, with its HTTP status and `{"code","msg"}` body.

use super::*;

#[tokio::test]
async fn error_codes_table() {
    let sim = start(test_config()).await;
    let c = Rest::demo(&sim);
    let ts = sim.server_time_ms();
    let lim = |price: &'static str, qty: &'static str| {
        vec![
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", qty),
            ("price", price),
        ]
    };
    let post = |params: Vec<(&'static str, &'static str)>, ts: u64| {
        let c = &c;
        async move { c.signed("POST", "/api/v3/order", &params, ts).await }
    };
    // (case, answer, status, code, message fragment)
    let mut cases: Vec<(&str, Answer, u16, i64, &str)> = Vec::new();
    cases.push((
        "TC0 timestamp 1 s ahead",
        post(lim("60000", "0.001"), ts + 1000).await,
        400,
        -1021,
        "ahead",
    ));
    cases.push((
        "TC1 outside recvWindow",
        post(lim("60000", "0.001"), ts - 5001).await,
        400,
        -1021,
        "recvWindow",
    ));
    cases.push((
        "TC2 unknown key",
        Rest::with_key(&sim, "nope", "x").signed("GET", "/api/v3/account", &[], ts).await,
        401,
        -2015,
        "Invalid API-key",
    ));
    cases.push((
        "TC3 bad signature",
        Rest::with_key(&sim, kestrel_sim::config::DEMO_HMAC_API_KEY, "wrong")
            .signed("GET", "/api/v3/account", &[], ts)
            .await,
        400,
        -1022,
        "Signature",
    ));
    cases.push((
        "TC4 missing key",
        Rest::with_key(&sim, "", "")
            .raw("GET", "/api/v3/account", "timestamp=1&signature=00", None)
            .await,
        401,
        -2014,
        "API-key format invalid",
    ));
    cases.push((
        "TC5 missing price",
        post(
            vec![
                ("symbol", "BTCUSDT"),
                ("side", "BUY"),
                ("type", "LIMIT"),
                ("timeInForce", "GTC"),
                ("quantity", "1"),
            ],
            ts,
        )
        .await,
        400,
        -1102,
        "'price'",
    ));
    cases.push(("TC6 illegal number", post(lim("6e4", "0.001"), ts).await, 400, -1100, "'price'"));
    cases.push((
        "TC7 too many decimals",
        post(lim("60000.000000001", "0.001"), ts).await,
        400,
        -1111,
        "Precision",
    ));
    cases.push((
        "TC8 off-tick price",
        post(lim("60000.001", "0.001"), ts).await,
        400,
        -1013,
        "Filter failure: PRICE_FILTER",
    ));
    cases.push((
        "TC9 off-step qty",
        post(lim("60000", "0.000011"), ts).await,
        400,
        -1013,
        "Filter failure: LOT_SIZE",
    ));
    cases.push((
        "TC10 notional too small",
        post(lim("60000", "0.00001"), ts).await,
        400,
        -1013,
        "Filter failure: NOTIONAL",
    ));
    cases.push((
        "TC11 price far from avg",
        post(lim("1000000", "0.001"), ts).await,
        400,
        -1013,
        "Filter failure: PERCENT_PRICE_BY_SIDE",
    ));
    cases.push((
        "TC12 insufficient balance",
        post(lim("60000", "10"), ts).await,
        400,
        -2010,
        "insufficient balance",
    ));
    cases.push((
        "TC13 LIMIT_MAKER would take",
        post(
            vec![
                ("symbol", "BTCUSDT"),
                ("side", "BUY"),
                ("type", "LIMIT_MAKER"),
                ("quantity", "0.001"),
                ("price", "70000"),
            ],
            ts,
        )
        .await,
        400,
        -2010,
        "immediately match and take",
    ));
    cases.push((
        "TC14 cancel unknown",
        c.signed("DELETE", "/api/v3/order", &[("symbol", "BTCUSDT"), ("orderId", "424242")], ts)
            .await,
        400,
        -2011,
        "Unknown order sent.",
    ));
    cases.push((
        "TC15 query unknown",
        c.signed("GET", "/api/v3/order", &[("symbol", "BTCUSDT"), ("orderId", "424242")], ts).await,
        400,
        -2013,
        "Order does not exist.",
    ));
    cases.push((
        "TC16 cancel without id",
        c.signed("DELETE", "/api/v3/order", &[("symbol", "BTCUSDT")], ts).await,
        400,
        -1102,
        "orderId",
    ));
    cases.push((
        "TC17 invalid symbol",
        post(
            vec![("symbol", "XXXUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "1")],
            ts,
        )
        .await,
        400,
        -1121,
        "Invalid symbol.",
    ));
    cases.push((
        "TC18 unsupported type",
        post(
            vec![("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "STOP_LOSS"), ("quantity", "1")],
            ts,
        )
        .await,
        400,
        -1116,
        "orderType",
    ));
    cases.push((
        "TC19 bad side",
        post(
            vec![("symbol", "BTCUSDT"), ("side", "HOLD"), ("type", "MARKET"), ("quantity", "1")],
            ts,
        )
        .await,
        400,
        -1100,
        "'side'",
    ));
    cases.push((
        "TC20 market without qty",
        post(vec![("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET")], ts).await,
        400,
        -1102,
        "quoteOrderQty",
    ));
    cases.push((
        "TC21 cancel-all with none open",
        c.signed("DELETE", "/api/v3/openOrders", &[("symbol", "BTCUSDT")], ts).await,
        400,
        -2011,
        "Unknown order",
    ));
    cases.push((
        "TC22 listenKey removed",
        c.raw("POST", "/api/v3/userDataStream", "", None).await,
        410,
        -1000,
        "removed",
    ));
    cases.push((
        "TC23 unknown path",
        c.raw("GET", "/api/v3/nope", "", None).await,
        404,
        -1000,
        "Unknown endpoint",
    ));
    cases.push((
        "TC24 recvWindow too large",
        c.signed("GET", "/api/v3/account", &[("recvWindow", "70000")], ts).await,
        400,
        -1131,
        "recvWindow",
    ));
    for (name, a, status, code, frag) in &cases {
        assert_eq!((a.status, a.code()), (*status, *code), "{name}: {:?}", a.body);
        let msg = a.body["msg"].as_str().unwrap();
        assert!(msg.contains(frag), "{name}: {msg:?} lacks {frag:?}");
        assert_eq!(a.body.as_object().unwrap().len(), 2, "{name}: body is exactly code+msg");
    }
    // Duplicate client order id while the first is open.
    let mut p = lim("60000", "0.001");
    p.push(("newClientOrderId", "dup-1"));
    assert_eq!(post(p.clone(), ts).await.status, 200);
    let a = post(p, ts).await;
    assert_eq!((a.code(), a.body["msg"].as_str().unwrap()), (-2010, "Duplicate order sent."));
    sim.shutdown().await;
}
