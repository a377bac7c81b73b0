//! Fault injection through `SimHandle::inject` and `POST /_sim/faults`, each counted in stats.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kestrel_sim::Fault;
use tokio_tungstenite::tungstenite::Message;

use super::*;

#[tokio::test]
async fn heartbeat_loss_then_clear() {
    let sim = start(test_config()).await;
    let mut ws = ws_connect(&format!("{}/ws/btcusdt@depth@100ms", sim.ws_stream_url())).await;
    wait_until(Duration::from_secs(5), || sim.connections().len() == 1).await;
    sim.inject(Fault::HeartbeatLoss { conn_id: None }).unwrap();
    sim.step_market(5);
    // Socket open, nothing arrives.
    assert!(tokio::time::timeout(Duration::from_millis(200), ws.s.next()).await.is_err());
    assert_eq!(sim.connections().len(), 1);
    sim.inject(Fault::Clear).unwrap();
    let ev = ws.next_json(Duration::from_secs(5)).await.unwrap();
    assert_eq!(ev["e"], "depthUpdate");
    assert_eq!(sim.stats().faults["heartbeat_loss"], 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn drop_one_connection_and_malformed_frames() {
    let sim = start(test_config()).await;
    let mut a = ws_connect(&format!("{}/ws/btcusdt@trade", sim.ws_stream_url())).await;
    let mut b = ws_connect(&format!("{}/ws/btcusdt@trade", sim.ws_stream_url())).await;
    wait_until(Duration::from_secs(5), || sim.connections().len() == 2).await;
    let first = sim.connections()[0].id;
    sim.inject(Fault::DropConnections { conn_id: Some(first) }).unwrap();
    wait_until(Duration::from_secs(5), || sim.connections().len() == 1).await;
    // Exactly one of the two sockets ended.
    sim.inject(Fault::MalformedFrame { conn_id: None }).unwrap();
    let mut saw_malformed = false;
    for ws in [&mut a, &mut b] {
        if let Ok(Some(Ok(Message::Text(t)))) =
            tokio::time::timeout(Duration::from_secs(2), ws.s.next()).await
        {
            assert!(
                serde_json::from_str::<serde_json::Value>(t.as_str()).is_err(),
                "malformed text frame"
            );
            saw_malformed = true;
        }
    }
    assert!(saw_malformed);
    assert_eq!(
        sim.inject(Fault::DropConnections { conn_id: Some(9999) }),
        Err(kestrel_sim::FaultError::UnknownConnection(9999))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn rest_faults_http_error_stall_skew() {
    let sim = start(test_config()).await;
    let c = Rest::demo(&sim);
    // TC0: 503 for two requests, JSON body, then normal.
    sim.inject(Fault::HttpError { status: 503, requests: 2, retry_after_s: None }).unwrap();
    for _ in 0..2 {
        let a = c.get("/api/v3/ping", "").await;
        assert_eq!((a.status, a.code()), (503, -1000));
    }
    assert_eq!(c.get("/api/v3/ping", "").await.status, 200);
    // TC1: injected 429 carries Retry-After.
    let r = reqwest::Client::new()
        .post(format!("{}/_sim/faults", sim.rest_url()))
        .body(r#"{"type":"http_error","status":429,"requests":1,"retry_after_s":7}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let a = c.get("/api/v3/time", "").await;
    assert_eq!((a.status, a.headers["retry-after"].to_str().unwrap()), (429, "7"));
    // TC2: stall.
    sim.inject(Fault::StallRest { delay_ms: 200, requests: 1 }).unwrap();
    let t = Instant::now();
    assert_eq!(c.get("/api/v3/ping", "").await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(200));
    // TC3: server clock 5 s behind → a correct client timestamp is "ahead" → -1021.
    let ts = sim.server_time_ms();
    sim.inject(Fault::ClockSkew { offset_ms: -5000 }).unwrap();
    assert_eq!(c.signed("GET", "/api/v3/account", &[], ts).await.code(), -1021);
    sim.inject(Fault::ClockSkew { offset_ms: 0 }).unwrap();
    assert_eq!(c.signed("GET", "/api/v3/account", &[], ts).await.status, 200);
    // Stats over HTTP.
    let stats: serde_json::Value =
        reqwest::get(format!("{}/_sim/stats", sim.rest_url())).await.unwrap().json().await.unwrap();
    assert_eq!(stats["faults"]["http_error"], 2);
    assert_eq!(stats["faults"]["clock_skew"], 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn swallowed_order_is_executed_but_unanswered() {
    let sim = start(test_config()).await;
    let c = Rest::demo(&sim);
    let ts = sim.server_time_ms();
    sim.inject(Fault::SwallowOrderResponse { orders: 1 }).unwrap();
    let q = format!(
        "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC&quantity=0.001&price=60000&newClientOrderId=lost-1&timestamp={ts}"
    );
    let sig = hmac_hex(kestrel_sim::config::DEMO_HMAC_SECRET, &q);
    let r = c
        .http
        .post(format!("{}/api/v3/order?{q}&signature={sig}", sim.rest_url()))
        .header("X-MBX-APIKEY", kestrel_sim::config::DEMO_HMAC_API_KEY)
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(r.is_err_and(|e| e.is_timeout()), "no answer");
    // The order exists: the outcome was unknown, not failed.
    let a = c
        .signed(
            "GET",
            "/api/v3/order",
            &[("symbol", "BTCUSDT"), ("origClientOrderId", "lost-1")],
            ts,
        )
        .await;
    assert_eq!(a.body["status"], "NEW");
    assert_eq!(sim.stats().swallowed_responses, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn delay_messages_adds_latency() {
    let sim = start(test_config()).await;
    let mut ws = ws_connect(&format!("{}/ws/btcusdt@depth@100ms", sim.ws_stream_url())).await;
    wait_until(Duration::from_secs(5), || sim.connections().len() == 1).await;
    sim.inject(Fault::DelayMessages { conn_id: None, delay_ms: 150 }).unwrap();
    // The connection task polls its control channel before data (biased select), so the delay
    // applies to the next message published.
    let t = Instant::now();
    sim.step_market(1);
    let ev = ws.next_json(Duration::from_secs(5)).await.unwrap();
    assert_eq!(ev["e"], "depthUpdate");
    assert!(t.elapsed() >= Duration::from_millis(150), "{:?}", t.elapsed());
    sim.shutdown().await;
}
