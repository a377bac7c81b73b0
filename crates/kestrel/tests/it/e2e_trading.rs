//! End to end, in-process: the whole runtime (`kestrel::runtime::start`) against the embedded
//! simulator over real sockets. The bot trades until it has filled a few orders; then the
//! admin API is exercised (status, halt, resume, cancel-all, /metrics) and, after a graceful
//! shutdown, the journal is compared with the exchange.

use std::time::Duration;

use kestrel::config::Config;
use kestrel::runtime;
use serde_json::Value;

use crate::e2e_support::*;

const TRADE_TIMEOUT: Duration = Duration::from_secs(40);

async fn wait_until<F: FnMut() -> bool>(what: &str, timeout: Duration, mut f: F) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get(base: &str, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("{base}{path}")).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn post(base: &str, path: &str, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_bot_trades_against_sim_and_journal_matches_exchange() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.sqlite");
    let toml = kestrel::demo::demo_config_toml(
        &sim.rest_url(),
        &sim.ws_stream_url(),
        &sim.ws_api_url(),
        &journal,
        "127.0.0.1:0".parse().unwrap(),
    );
    let config = Config::from_toml(
        &toml,
        std::path::Path::new("e2e.toml"),
        &std::collections::HashMap::new(),
    )
    .unwrap();
    let running = runtime::start(config).await.unwrap();
    let base = format!("http://{}", running.admin_addr);
    let control = running.control.clone();

    // Trades: fills reach the engine (positions move, order flow on at least two symbols).
    let fills =
        |c: &runtime::Control| SYMBOLS.iter().map(|s| c.metrics.fills(sym(s)).get()).sum::<u64>();
    wait_until("5 fills", TRADE_TIMEOUT, || fills(&control) >= 5).await;

    // Status: every symbol, synced books, open orders listed.
    let (code, body) = get(&base, "/status").await;
    assert_eq!(code, 200, "{body}");
    let status: Value = serde_json::from_str(&body).unwrap();
    let syms = status["symbols"].as_array().unwrap();
    assert_eq!(syms.len(), 3, "{status}");
    for s in syms {
        assert_eq!(s["book_state"], "Synced", "{s}");
        assert!(s["mid"].is_string(), "{s}");
    }

    // /metrics carries the contract names with samples.
    let (code, text) = get(&base, "/metrics").await;
    assert_eq!(code, 200);
    for name in [
        "binance_ws_latency_seconds",
        "task_latency_seconds",
        "msg_lag_seconds",
        "ws_reconnects_total",
        "order_roundtrip_seconds",
        "kestrel_fills_total",
        "kestrel_fault_active",
    ] {
        assert!(text.contains(name), "/metrics lacks {name}");
    }
    assert!(
        text.contains("task_latency_seconds_count{task=\"engine\"}"),
        "no engine latency samples"
    );
    assert!(
        text.contains("process_resident_memory_bytes") || text.contains("resident"),
        "no process metrics"
    );

    // Halt → snapshot halted; resume → not halted.
    let (code, v) = post(&base, "/halt", "{}").await;
    assert_eq!(code, 200, "{v}");
    let mut rx = control.snapshots.clone();
    wait_until("halted", Duration::from_secs(5), || rx.borrow_and_update().halted).await;
    // Cancel-all while halted → no open orders left (nothing re-quotes).
    let (code, _) = post(&base, "/cancel-all", "{}").await;
    assert_eq!(code, 200);
    wait_until("no open orders", Duration::from_secs(10), || {
        rx.borrow_and_update().symbols.iter().all(|s| s.open_orders.is_empty())
    })
    .await;
    let (code, _) = post(&base, "/resume", "{}").await;
    assert_eq!(code, 200);
    wait_until("resumed", Duration::from_secs(5), || !rx.borrow_and_update().halted).await;

    // Bad requests: 4xx with a JSON message.
    let (code, v) = post(&base, "/fallback-rest", "not json").await;
    assert_eq!(code, 400);
    assert!(v["error"].as_str().unwrap().contains("on"), "{v}");
    let (code, _) = get(&base, "/nope").await;
    assert_eq!(code, 404);
    let (code, v) = post(&base, "/restart-ws", "{}").await;
    assert_eq!(code, 200, "{v}");

    running.shutdown().await.unwrap();
    let rest = rest_client(&sim).await;
    let n = assert_journal_matches_exchange(&sim, &rest, &journal).await;
    assert!(n >= 5, "only {n} fills journaled");
    sim.shutdown().await;
}
