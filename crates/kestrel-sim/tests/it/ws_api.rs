//! WebSocket API: envelopes, session.logon (Ed25519), user-data subscription and events.

use std::time::Duration;

use base64::Engine as _;
use ed25519_dalek::Signer;
use serde_json::{json, Map, Value};

use super::*;

/// Signs WS API params with the demo Ed25519 key (sorted, raw values).
fn ed_sign(params: &mut Map<String, Value>) {
    let sk = ed25519_dalek::SigningKey::from_bytes(&kestrel_sim::config::DEMO_ED25519_SEED);
    let mut keys: Vec<_> = params.keys().cloned().collect();
    keys.sort();
    let payload = keys
        .iter()
        .map(|k| match &params[k] {
            Value::String(s) => format!("{k}={s}"),
            v => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join("&");
    let sig =
        base64::engine::general_purpose::STANDARD.encode(sk.sign(payload.as_bytes()).to_bytes());
    params.insert("signature".into(), Value::String(sig));
}

/// HMAC-signs WS API params.
pub fn hmac_sign(params: &mut Map<String, Value>, secret: &str) {
    let mut keys: Vec<_> = params.keys().cloned().collect();
    keys.sort();
    let payload = keys
        .iter()
        .map(|k| match &params[k] {
            Value::String(s) => format!("{k}={s}"),
            v => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join("&");
    params.insert("signature".into(), Value::String(hmac_hex(secret, &payload)));
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[tokio::test]
async fn logon_subscribe_and_user_events_match_doc_vectors() {
    let sim = start(test_config()).await;
    let mut ws = ws_connect(&sim.ws_api_url()).await;
    let ts = sim.server_time_ms();
    // TC0: session.logon with Ed25519
    let mut p = obj(json!({"apiKey": kestrel_sim::config::DEMO_ED25519_API_KEY, "timestamp": ts}));
    ed_sign(&mut p);
    let r = ws.call("logon", "session.logon", Value::Object(p)).await;
    assert_eq!(r["status"], 200, "{r}");
    let mut doc = vector("wsapi_session_logon_response.json");
    doc["rateLimits"] = json!([{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000, "count": 1}]);
    assert_shape(&doc, &r, &[], "logon");
    // TC1: subscribe
    let r = ws.call("sub", "userDataStream.subscribe", json!({})).await;
    assert_eq!(r["result"]["subscriptionId"], 0);
    assert_shape(
        &vector("wsapi_userDataStream_subscribe_response.json"),
        &r,
        &["rateLimits"],
        "subscribe",
    );
    // TC2: order.place in the logged-on session (no signature) → NEW, then events.
    let r = ws
        .call(
            "place",
            "order.place",
            json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001",
                   "price": "60000", "newOrderRespType": "RESULT", "timestamp": ts}),
        )
        .await;
    assert_shape(&vector("wsapi_response_success.json"), &r, &[], "order.place");
    assert_eq!(r["rateLimits"][0]["count"], 1, "ORDERS 10s count");
    let w = Duration::from_secs(5);
    let er = ws.next_where(w, |v| v["event"]["e"] == "executionReport").await;
    assert_shape(&vector("ws_executionReport.json"), &er, &["v"], "executionReport");
    assert_eq!(er["event"]["x"], "NEW");
    let pos = ws.next_where(w, |v| v["event"]["e"] == "outboundAccountPosition").await;
    assert_shape(&vector("ws_outboundAccountPosition.json"), &pos, &[], "outboundAccountPosition");
    let usdt =
        pos["event"]["B"].as_array().unwrap().iter().find(|b| b["a"] == "USDT").unwrap().clone();
    assert_eq!(usdt["l"], "60.00000000", "the order's quote is locked");
    // TC3: error envelope (insufficient balance)
    let r = ws
        .call(
            "big",
            "order.place",
            json!({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "100",
                   "price": "60000", "timestamp": ts}),
        )
        .await;
    assert_eq!(r, {
        let mut d = vector("wsapi_response_error.json");
        d["id"] = json!("big");
        d["rateLimits"] = r["rateLimits"].clone();
        d
    });
    // TC4: unsubscribe → {} then eventStreamTerminated
    let r = ws.call("unsub", "userDataStream.unsubscribe", json!({})).await;
    assert_shape(
        &vector("wsapi_userDataStream_unsubscribe_response.json"),
        &r,
        &["rateLimits"],
        "unsubscribe",
    );
    let ev = ws.next_where(w, |v| v["event"]["e"] == "eventStreamTerminated").await;
    assert_shape(&vector("ws_eventStreamTerminated.json"), &ev, &[], "eventStreamTerminated");
    // TC5: serverShutdown before a planned close
    sim.shutdown().await;
    let ev = ws.next_where(w, |v| v["event"]["e"] == "serverShutdown").await;
    assert_shape(&vector("wsapi_serverShutdown.json"), &ev, &[], "serverShutdown");
}

#[tokio::test]
async fn subscribe_signature_with_hmac_key_and_fill_events() {
    let sim = start(test_config()).await;
    let mut ws = ws_connect(&sim.ws_api_url()).await;
    let ts = sim.server_time_ms();
    let mut p = obj(json!({"apiKey": BOB_KEY, "timestamp": ts}));
    hmac_sign(&mut p, BOB_SECRET);
    let r = ws.call("s", "userDataStream.subscribe.signature", Value::Object(p)).await;
    assert_eq!(r["result"]["subscriptionId"], 0, "{r}");
    // session.logon refuses HMAC keys.
    let mut p = obj(json!({"apiKey": BOB_KEY, "timestamp": ts}));
    hmac_sign(&mut p, BOB_SECRET);
    let r = ws.call("l", "session.logon", Value::Object(p)).await;
    assert_eq!(r["error"]["code"], -1002);
    // A signed MARKET order fills: NEW then TRADE reports with commission.
    let mut p = obj(
        json!({"apiKey": BOB_KEY, "symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.01", "timestamp": ts}),
    );
    hmac_sign(&mut p, BOB_SECRET);
    let r = ws.call("m", "order.place", Value::Object(p)).await;
    assert_eq!(r["result"]["status"], "FILLED", "{r}");
    let w = Duration::from_secs(5);
    let trade = ws.next_where(w, |v| v["event"]["x"] == "TRADE").await;
    assert_eq!(trade["event"]["N"], "USDT");
    assert_eq!(trade["event"]["m"], false);
    // order.status / openOrders.cancelAll / order.cancel over the WS API.
    let mut p = obj(
        json!({"apiKey": BOB_KEY, "symbol": "BTCUSDT", "orderId": r["result"]["orderId"], "timestamp": ts}),
    );
    hmac_sign(&mut p, BOB_SECRET);
    let st = ws.call("q", "order.status", Value::Object(p)).await;
    assert_eq!(st["result"]["status"], "FILLED");
    let mut p = obj(json!({"apiKey": BOB_KEY, "symbol": "BTCUSDT", "timestamp": ts}));
    hmac_sign(&mut p, BOB_SECRET);
    let ca = ws.call("ca", "openOrders.cancelAll", Value::Object(p)).await;
    assert_eq!(ca["error"]["code"], -2011, "nothing open: {ca}");
    let mut p =
        obj(json!({"apiKey": BOB_KEY, "symbol": "BTCUSDT", "orderId": 999_999, "timestamp": ts}));
    hmac_sign(&mut p, BOB_SECRET);
    let c = ws.call("c", "order.cancel", Value::Object(p)).await;
    assert_eq!(c["error"]["code"], -2011);
    assert_eq!(ws.call("p", "ping", json!({})).await["result"], json!({}));
    assert_eq!(ws.call("t", "time", json!({})).await["result"]["serverTime"], ts);
    sim.shutdown().await;
}
