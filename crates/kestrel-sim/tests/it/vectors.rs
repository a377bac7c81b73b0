//! The simulator's output has the field names and JSON types of the Binance doc vectors.

use std::time::Duration;

use serde_json::json;

use super::*;

#[tokio::test]
async fn rest_bodies_match_doc_vectors() {
    let sim = start(test_config()).await;
    let c = Rest::demo(&sim);
    let ts = sim.server_time_ms();
    // TC0: public endpoints
    assert_shape(
        &vector("rest_server_time.json"),
        &c.get("/api/v3/time", "").await.body,
        &[],
        "time",
    );
    assert_shape(
        &vector("rest_depth_snapshot.json"),
        &c.get("/api/v3/depth", "symbol=BTCUSDT&limit=5").await.body,
        &[],
        "depth",
    );
    let info = c.get("/api/v3/exchangeInfo", "").await.body;
    assert_shape(&vector("rest_exchangeInfo.json"), &info, &["sors"], "exchangeInfo");
    assert_eq!(info["rateLimits"].as_array().unwrap().len(), 4);
    let err = c.get("/api/v3/depth", "symbol=NOPE").await;
    assert_eq!(err.status, 400);
    assert_shape(&vector("rest_error.json"), &err.body, &[], "error");
    assert_eq!(err.body, vector("rest_error.json"), "same code and message as the doc example");
    // TC1: order responses ACK / RESULT / FULL
    let limit = |resp: &'static str, price: &'static str| {
        vec![
            ("symbol", "BTCUSDT"),
            ("side", "BUY"),
            ("type", "LIMIT"),
            ("timeInForce", "GTC"),
            ("quantity", "0.001"),
            ("price", price),
            ("newOrderRespType", resp),
        ]
    };
    let ack = c.signed("POST", "/api/v3/order", &limit("ACK", "60000"), ts).await;
    assert_eq!(ack.status, 200, "{:?}", ack.body);
    assert_shape(&vector("rest_order_response_ack.json"), &ack.body, &[], "ack");
    let result = c.signed("POST", "/api/v3/order", &limit("RESULT", "60001"), ts).await;
    assert_shape(&vector("rest_order_response_result.json"), &result.body, &[], "result");
    let full = c
        .signed(
            "POST",
            "/api/v3/order",
            &[("symbol", "BTCUSDT"), ("side", "BUY"), ("type", "MARKET"), ("quantity", "0.001")],
            ts,
        )
        .await;
    assert_eq!(full.body["status"], "FILLED", "{:?}", full.body);
    assert_shape(&vector("rest_order_response_full.json"), &full.body, &[], "full");
    // TC2: query, open orders, cancel, cancel-all
    let id = ack.body["orderId"].as_u64().unwrap().to_string();
    let q = c.signed("GET", "/api/v3/order", &[("symbol", "BTCUSDT"), ("orderId", &id)], ts).await;
    assert_shape(&vector("rest_query_order_response.json"), &q.body, &[], "query");
    let open = c.signed("GET", "/api/v3/openOrders", &[("symbol", "BTCUSDT")], ts).await;
    assert_eq!(open.body.as_array().unwrap().len(), 2);
    assert_shape(&vector("rest_open_orders_response.json"), &open.body, &[], "openOrders");
    let cancel =
        c.signed("DELETE", "/api/v3/order", &[("symbol", "BTCUSDT"), ("orderId", &id)], ts).await;
    assert_shape(&vector("rest_cancel_order_response.json"), &cancel.body, &[], "cancel");
    assert_eq!(cancel.body["status"], "CANCELED");
    let all = c.signed("DELETE", "/api/v3/openOrders", &[("symbol", "BTCUSDT")], ts).await;
    assert_shape(&vector("rest_cancel_open_orders_response.json"), &all.body, &[], "cancelAll");
    // TC3: account, order/test, myTrades
    assert_shape(
        &vector("rest_account.json"),
        &c.signed("GET", "/api/v3/account", &[], ts).await.body,
        &[],
        "account",
    );
    let t = c.signed("POST", "/api/v3/order/test", &limit("ACK", "60000"), ts).await;
    assert_eq!(t.body, vector("rest_order_test_response.json"));
    let trades = c.signed("GET", "/api/v3/myTrades", &[("symbol", "BTCUSDT")], ts).await;
    assert!(!trades.body.as_array().unwrap().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn stream_events_match_doc_vectors() {
    let sim = start(test_config()).await;
    let streams =
        ["btcusdt@depth@100ms", "btcusdt@trade", "btcusdt@aggTrade", "btcusdt@bookTicker"];
    let mut raw = ws_connect(&format!("{}/ws/{}", sim.ws_stream_url(), streams.join("/"))).await;
    let mut comb =
        ws_connect(&format!("{}/stream?streams={}", sim.ws_stream_url(), streams.join("/"))).await;
    wait_until(Duration::from_secs(5), || sim.connections().len() == 2).await;
    sim.step_market(20);
    let w = Duration::from_secs(5);
    let depth = raw.next_where(w, |v| v["e"] == "depthUpdate").await;
    assert_shape(&vector("ws_depthUpdate.json"), &depth, &[], "depthUpdate");
    assert_shape(
        &vector("ws_trade.json"),
        &raw.next_where(w, |v| v["e"] == "trade").await,
        &[],
        "trade",
    );
    assert_shape(
        &vector("ws_aggTrade.json"),
        &raw.next_where(w, |v| v["e"] == "aggTrade").await,
        &[],
        "aggTrade",
    );
    assert_shape(
        &vector("ws_bookTicker.json"),
        &raw.next_where(w, |v| v.get("u").is_some() && v.get("e").is_none()).await,
        &[],
        "bookTicker",
    );
    // Combined envelope: {"stream": name, "data": event}.
    let env = comb.next_where(w, |v| v["stream"] == "btcusdt@depth@100ms").await;
    assert_eq!(env.as_object().unwrap().len(), 2);
    assert_shape(&vector("ws_depthUpdate.json"), &env["data"], &[], "combined.data");
    // Control messages.
    raw.send(&vector("ws_control_subscribe_request.json")).await;
    assert_eq!(
        raw.next_where(w, |v| v.get("id").is_some()).await,
        vector("ws_control_subscribe_response.json")
    );
    raw.send(&vector("ws_control_unsubscribe_request.json")).await;
    assert_eq!(
        raw.next_where(w, |v| v.get("id").is_some()).await,
        vector("ws_control_unsubscribe_response.json")
    );
    raw.send(&json!({"method": "LIST_SUBSCRIPTIONS", "id": 3})).await;
    let list = raw.next_where(w, |v| v.get("id").is_some()).await;
    assert_eq!(list["id"], 3);
    assert!(list["result"].as_array().unwrap().contains(&json!("btcusdt@aggTrade")));
    raw.send(&vector("ws_control_set_property_request.json")).await;
    assert_eq!(
        raw.next_where(w, |v| v.get("id").is_some()).await,
        vector("ws_control_set_property_response.json")
    );
    raw.send(&vector("ws_control_get_property_request.json")).await;
    assert_eq!(
        raw.next_where(w, |v| v.get("id").is_some()).await,
        vector("ws_control_get_property_response.json")
    );
    // serverShutdown before a planned close, in both framings.
    sim.shutdown().await;
    let ev =
        raw.next_where(w, |v| v["e"] == "serverShutdown" || v["stream"] == "!serverShutdown").await;
    // `raw` was switched to combined framing by SET_PROPERTY above.
    assert_shape(&vector("ws_serverShutdown_combined.json"), &ev, &[], "shutdown.combined");
    let ev = comb.next_where(w, |v| v["stream"] == "!serverShutdown").await;
    assert_shape(&vector("ws_serverShutdown_combined.json"), &ev, &[], "shutdown.combined");
}

#[tokio::test]
async fn raw_server_shutdown_matches_doc_vector() {
    let sim = start(test_config()).await;
    let mut raw = ws_connect(&format!("{}/ws/btcusdt@trade", sim.ws_stream_url())).await;
    wait_until(Duration::from_secs(5), || sim.connections().len() == 1).await;
    sim.shutdown().await;
    let ev = raw.next_where(Duration::from_secs(5), |v| v["e"] == "serverShutdown").await;
    assert_shape(&vector("ws_serverShutdown_raw.json"), &ev, &[], "shutdown.raw");
}
