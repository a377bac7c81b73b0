//! The operator commands through the real `kestrel` binary against a running bot (in-process
//! runtime, simulator over real sockets), checked against what `docs/runbook.md` says they do:
//!
//! - `kestrel restart-ws`: every market-data connection reconnects (`ws_reconnects_total`
//!   rises) and every book is re-snapshotted (`kestrel_book_resyncs_total` rises) and synced;
//! - `kestrel fallback-rest on`: market data switches to REST polling (`MD_FALLBACK`, mode
//!   `rest_fallback`, `kestrel_md_fallback` 1) and the books keep updating from REST;
//!   `kestrel fallback-rest off`: back to the WebSocket;
//! - `kestrel status [--json]`, `halt`, `resume`, `cancel-all`;
//! - bad admin requests get a 4xx with a JSON `error` message, and the CLI turns an error into
//!   one line and a non-zero exit code.

use std::time::Duration;

use kestrel::faults::FaultClass;
use serde_json::Value;

use crate::ops_support::*;

/// Bound for one state change (typically well under 3 s).
const T: Duration = Duration::from_secs(20);

/// `kestrel status --json` through the CLI.
async fn status_json(base: &str) -> Value {
    let out = kestrel_cli(base, &["status", "--json"]).await;
    serde_json::from_str(&ok_stdout(&out)).unwrap()
}

/// Every book synced according to `kestrel status --json`.
async fn wait_synced(base: &str) {
    wait_for("every book synced", T, || async {
        let s = status_json(base).await;
        let syms = s["symbols"].as_array().unwrap().clone();
        (!syms.is_empty() && syms.iter().all(|x| x["book_state"] == "Synced")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_cli_restart_ws_and_fallback_rest_do_what_the_runbook_says() {
    let bot = OpsBot::start(
        sim_config(),
        Tweaks { market_data: "fallback_recover_secs = 1", ..Tweaks::default() },
    )
    .await;
    let base = bot.base.clone();
    wait_synced(&base).await;

    // TC0: `status` (human) lists every symbol, the market-data mode and "faults: none".
    let human = ok_stdout(&kestrel_cli(&base, &["status"]).await);
    for s in ["BTCUSDT", "ETHUSDT", "BNBUSDT", "market data: ws", "Synced"] {
        assert!(human.contains(s), "`kestrel status` lacks {s:?}:\n{human}");
    }

    // TC1: restart-ws → reconnects counted, books re-snapshotted and synced again.
    let text = bot.metrics().await;
    let reconnects = sum_samples(&text, "ws_reconnects_total{");
    let resyncs = sum_samples(&text, "kestrel_book_resyncs_total{");
    let out = ok_stdout(&kestrel_cli(&base, &["restart-ws"]).await);
    assert_eq!(out.trim(), "restart-ws: ok");
    wait_for("ws_reconnects_total and kestrel_book_resyncs_total to rise", T, || async {
        let text = bot.metrics().await;
        (sum_samples(&text, "ws_reconnects_total{") > reconnects
            && sum_samples(&text, "kestrel_book_resyncs_total{") >= resyncs + 3.0)
            .then_some(())
    })
    .await;
    wait_synced(&base).await;
    bot.wait_cleared(FaultClass::BOOK_STALE, T).await;

    // TC2: fallback-rest on → REST polling: MD_FALLBACK, mode, gauge, book source.
    let out = ok_stdout(&kestrel_cli(&base, &["fallback-rest", "on"]).await);
    assert_eq!(out.trim(), "fallback-rest (on): ok");
    bot.wait_raised(FaultClass::MD_FALLBACK, T).await;
    let s = status_json(&base).await;
    assert_eq!(s["market_data"]["mode"], "rest_fallback", "{s}");
    assert!(bot.metrics().await.contains("kestrel_md_fallback 1"));
    wait_for("every book served from REST", T, || async {
        let s = status_json(&base).await;
        let syms = s["symbols"].as_array().unwrap().clone();
        syms.iter().all(|x| x["book_source"] == "RestFallback").then_some(())
    })
    .await;
    // The books keep updating from REST: the simulator's market moves every 100 ms, so the
    // polled mids change.
    let first = status_json(&base).await;
    let mids = |s: &Value| -> Vec<Value> {
        s["symbols"].as_array().unwrap().iter().map(|x| x["mid"].clone()).collect()
    };
    let first_mids = mids(&first);
    let rest_before = bot.sim.stats().rest_requests;
    wait_for("a polled book to change", T, || async {
        let s = status_json(&base).await;
        let synced = s["symbols"].as_array().unwrap().iter().all(|x| x["book_state"] == "Synced");
        (synced && mids(&s) != first_mids).then_some(())
    })
    .await;
    assert!(bot.sim.stats().rest_requests > rest_before, "no REST polling seen");

    // TC3: fallback-rest off → back to the WebSocket.
    let out = ok_stdout(&kestrel_cli(&base, &["fallback-rest", "off", "--json"]).await);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v, serde_json::json!({"ok": true, "command": "fallback-rest", "on": false}));
    bot.wait_cleared(FaultClass::MD_FALLBACK, T).await;
    wait_for("books back on the WebSocket", T, || async {
        let s = status_json(&base).await;
        let syms = s["symbols"].as_array().unwrap().clone();
        (s["market_data"]["mode"] == "ws"
            && syms.iter().all(|x| x["book_source"] == "WebSocket" && x["book_state"] == "Synced"))
        .then_some(())
    })
    .await;
    assert!(bot.metrics().await.contains("kestrel_md_fallback 0"));

    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_cli_halt_cancel_all_resume_and_bad_requests() {
    let bot = OpsBot::start(sim_config(), Tweaks::default()).await;
    let base = bot.base.clone();
    wait_synced(&base).await;
    // Quotes rest on the book (the market makers keep two orders each).
    wait_for("open orders", T, || async {
        let s = status_json(&base).await;
        let n = total_open_orders(&s);
        (n > 0).then_some(())
    })
    .await;

    // TC0: halt → halted; the human status line says so.
    assert_eq!(ok_stdout(&kestrel_cli(&base, &["halt"]).await).trim(), "halt: ok");
    wait_for("halted", T, || async { (status_json(&base).await["halted"] == true).then_some(()) })
        .await;
    let human = ok_stdout(&kestrel_cli(&base, &["status"]).await);
    assert!(human.starts_with("halted: true"), "{human}");

    // TC1: cancel-all while halted → no open order left, and none placed again.
    let out = ok_stdout(&kestrel_cli(&base, &["cancel-all", "--json"]).await);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["command"], "cancel-all");
    wait_for("no open orders", T, || async {
        let s = status_json(&base).await;
        s["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["open_orders"].as_array().is_some_and(Vec::is_empty))
            .then_some(())
    })
    .await;
    let open = demo_rest_client(&bot.sim).open_orders(None).await.unwrap();
    assert!(open.is_empty(), "orders still open at the exchange: {open:?}");

    // TC2: resume → trading again (not halted, quotes back).
    assert_eq!(ok_stdout(&kestrel_cli(&base, &["resume"]).await).trim(), "resume: ok");
    wait_for("resumed and quoting", T, || async {
        let s = status_json(&base).await;
        let n = total_open_orders(&s);
        (s["halted"] == false && n > 0).then_some(())
    })
    .await;

    // TC3..: bad requests → 4xx with a JSON message naming what is wrong.
    let http = reqwest::Client::new();
    let cases: [(&str, &str, Option<&str>, u16, &str); 5] = [
        ("POST", "/fallback-rest", Some("not json"), 400, "{\"on\": true|false}"),
        ("POST", "/fallback-rest", Some("{\"on\":\"yes\"}"), 400, "{\"on\": true|false}"),
        ("POST", "/fallback-rest", Some("{}"), 400, "{\"on\": true|false}"),
        ("GET", "/halt", None, 405, "POST /halt"),
        ("GET", "/nope", None, 404, "no such endpoint"),
    ];
    for (i, (method, path, body, code, needle)) in cases.into_iter().enumerate() {
        let url = format!("{base}{path}");
        let req = match method {
            "GET" => http.get(&url),
            _ => http.post(&url).header("content-type", "application/json"),
        };
        let req = match body {
            Some(b) => req.body(b.to_owned()),
            None => req,
        };
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), code, "TC{}: {method} {path}", i + 3);
        let v: Value = r.json().await.unwrap();
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "TC{}: {method} {path}: {v}", i + 3);
    }

    // TC8: the CLI against an address where nothing listens: one line, non-zero exit.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let out = kestrel_cli(&dead, &["status"]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot reach the admin API"), "{err}");

    bot.stop().await;
}

/// Open orders over every symbol of a `/status` document.
fn total_open_orders(status: &Value) -> usize {
    status["symbols"].as_array().map_or(0, |syms| {
        syms.iter().map(|x| x["open_orders"].as_array().map_or(0, Vec::len)).sum()
    })
}
