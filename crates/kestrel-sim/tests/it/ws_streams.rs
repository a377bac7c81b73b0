//! Stream connection policy: server pings and pong deadline, incoming message rate, stream cap,
//! lifetime, control-message errors.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::*;

fn tight() -> SimConfig {
    let mut c = test_config();
    c.ws.ping_interval_ms = 30;
    c.ws.pong_timeout_ms = 100;
    c.ws.max_streams_per_connection = 2;
    c
}

#[tokio::test]
async fn client_that_does_not_pong_is_disconnected() {
    let sim = start(tight()).await;
    // A: reads continuously, so tungstenite answers every ping.
    let mut a = ws_connect(&format!("{}/ws/btcusdt@trade", sim.ws_stream_url())).await;
    let reader = tokio::spawn(async move {
        let mut pings = 0;
        while let Some(Ok(m)) = a.s.next().await {
            if matches!(m, Message::Ping(_)) {
                pings += 1;
            }
        }
        pings
    });
    // B: never reads, so never pongs.
    let _b = ws_connect(&format!("{}/ws/btcusdt@trade", sim.ws_stream_url())).await;
    wait_until(Duration::from_secs(5), || sim.stats().pong_timeouts == 1).await;
    assert_eq!(sim.connections().len(), 1, "the ponging client stays");
    sim.shutdown().await;
    let pings = tokio::time::timeout(Duration::from_secs(5), reader).await.unwrap().unwrap();
    assert!(pings >= 1);
}

#[tokio::test]
async fn control_errors_rate_limit_and_stream_cap() {
    let sim = start(tight()).await;
    let mut ws = ws_connect(&format!("{}/ws", sim.ws_stream_url())).await;
    let w = Duration::from_secs(5);
    // TC0: invalid JSON → code 3; unknown property → 0; bad value → 1; too many streams → 2.
    ws.s.send(Message::text("{nope")).await.unwrap();
    assert_eq!(ws.next_json(w).await.unwrap()["code"], 3);
    ws.send(&json!({"method": "GET_PROPERTY", "params": ["colour"], "id": 1})).await;
    assert_eq!(ws.next_json(w).await.unwrap()["code"], 0);
    ws.send(&json!({"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 2})).await;
    assert_eq!(ws.next_json(w).await.unwrap()["code"], 1);
    ws.send(&json!({"method": "SUBSCRIBE", "params": ["btcusdt@trade", "ethusdt@trade", "bnbusdt@trade"], "id": 3})).await;
    let r = ws.next_json(w).await.unwrap();
    assert_eq!((r["code"].as_i64(), r["id"].as_i64()), (Some(2), Some(3)));
    // TC1: sixth message within a second closes the connection.
    ws.send(&json!({"method": "LIST_SUBSCRIPTIONS", "id": 4})).await;
    ws.send(&json!({"method": "LIST_SUBSCRIPTIONS", "id": 5})).await;
    loop {
        if ws.next_json(w).await.is_none() {
            break;
        }
    }
    assert_eq!(sim.stats().rate_limit_disconnects, 1);
    // TC2: too many streams in the URL is refused before upgrading.
    let r = tokio_tungstenite::connect_async(format!(
        "{}/stream?streams=btcusdt@trade/ethusdt@trade/bnbusdt@trade",
        sim.ws_stream_url()
    ))
    .await;
    assert!(r.is_err());
    sim.shutdown().await;
}

#[tokio::test]
async fn connection_lifetime_is_enforced() {
    let mut cfg = test_config();
    cfg.ws.max_connection_lifetime_ms = 100;
    let sim = start(cfg).await;
    let mut ws = ws_connect(&format!("{}/ws/btcusdt@trade", sim.ws_stream_url())).await;
    assert!(ws.next_json(Duration::from_secs(5)).await.is_none());
    assert_eq!(sim.stats().lifetime_disconnects, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn timed_market_streams_without_stepping() {
    let mut cfg = SimConfig::default_market();
    cfg.symbols.iter_mut().for_each(|s| s.update_interval_ms = 5);
    let sim = start(cfg).await;
    let mut ws = ws_connect(&format!("{}/ws/bnbusdt@depth@100ms", sim.ws_stream_url())).await;
    let ev = ws.next_json(Duration::from_secs(5)).await.unwrap();
    assert_eq!(ev["e"], "depthUpdate");
    sim.shutdown().await;
}
