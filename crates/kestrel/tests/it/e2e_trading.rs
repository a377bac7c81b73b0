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
    let config = demo_config(&sim, &journal, "e2e.toml");
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

/// Waits until `cond` holds, re-checking it whenever the engine publishes a snapshot (at least
/// every 100 ms while market data flows), or panics after `timeout`.
async fn wait_snapshots<F, Fut>(
    what: &str,
    timeout: Duration,
    rx: &mut tokio::sync::watch::Receiver<kestrel_engine::EngineSnapshot>,
    mut cond: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond().await {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => panic!("engine stopped while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

/// Every trade of the demo account at the exchange, as `(symbol, trade id)`.
async fn exchange_trade_ids(
    rest: &kestrel_binance::rest::RestClient,
) -> std::collections::HashSet<(kestrel_model::Symbol, u64)> {
    let mut out = std::collections::HashSet::new();
    for s in SYMBOLS {
        for t in all_trades(rest, sym(s)).await {
            out.insert((t.symbol, t.fill.trade_id.0));
        }
    }
    out
}

/// S10: the user-data subscription is interrupted (WS API connection dropped, reconnects
/// refused) while the bot keeps trading over REST, so fills happen whose execution reports are
/// lost. After the stream is back, the resync has journaled every one of them (from `myTrades`,
/// while the bot runs, not only at a later restart) and the engine's positions equal the
/// exchange's balance changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_s10_user_stream_drop_no_fill_missed() {
    use kestrel::faults::FaultClass;
    use kestrel_sim::faults::Fault;

    let sim = start_sim().await;
    let rest = rest_client(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.sqlite");
    let config = demo_config(&sim, &journal, "s10.toml");
    let running = runtime::start(config).await.unwrap();
    let control = running.control.clone();
    let mut rx = control.snapshots.clone();
    let fills =
        |c: &runtime::Control| SYMBOLS.iter().map(|s| c.metrics.fills(sym(s)).get()).sum::<u64>();

    // Subscribed and trading: a fill reached the engine through the stream.
    wait_snapshots("a first fill", TRADE_TIMEOUT, &mut rx, || async { fills(&control) >= 1 }).await;

    // Outage: new WS API connections are refused and the open one is dropped.
    sim.inject(Fault::RefuseConnections { kind: Some("ws_api".into()), duration_ms: 120_000 })
        .unwrap();
    for c in sim.connections().into_iter().filter(|c| c.kind == "ws_api") {
        sim.inject(Fault::DropConnections { conn_id: Some(c.id) }).unwrap();
    }
    wait_snapshots("USER_STREAM_DOWN", Duration::from_secs(10), &mut rx, || async {
        control.faults.is_active(FaultClass::USER_STREAM_DOWN)
    })
    .await;

    // Orders keep going over REST; wait until one of ours fills while the stream is down.
    // (A fill moves free + locked; placing or cancelling only moves funds between the two.)
    let totals = || {
        sim.balances("demo")
            .unwrap()
            .into_iter()
            .map(|(a, (free, locked))| (a, free.checked_add(locked).unwrap()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let before = totals();
    wait_snapshots("a fill during the outage", TRADE_TIMEOUT, &mut rx, || async {
        totals() != before
    })
    .await;
    let during = exchange_trade_ids(&rest).await;
    let journaled = || async {
        let fills = running.journal().call(|j| j.all_fills()).await.unwrap();
        fills
            .iter()
            .map(|f| (f.symbol, f.fill.trade_id.0))
            .collect::<std::collections::HashSet<_>>()
    };
    let missed: Vec<_> = during.difference(&journaled().await).copied().collect();
    assert!(!missed.is_empty(), "no fill was missed while the stream was down: nothing tested");

    // Back: the bot resubscribes, resyncs, and journals the missed fills.
    sim.inject(Fault::RefuseConnections { kind: Some("ws_api".into()), duration_ms: 0 }).unwrap();
    wait_snapshots("the stream back up", Duration::from_secs(30), &mut rx, || async {
        !control.faults.is_active(FaultClass::USER_STREAM_DOWN)
    })
    .await;
    wait_snapshots("the missed fills journaled", Duration::from_secs(10), &mut rx, || async {
        let j = journaled().await;
        missed.iter().all(|t| j.contains(t))
    })
    .await;

    // Positions: with nothing resting and nothing in flight, the engine's position on every
    // symbol equals the exchange's balance change of its base asset (fees included).
    let (code, _) = post(&format!("http://{}", running.admin_addr), "/halt", "{}").await;
    assert_eq!(code, 200);
    let (code, _) = post(&format!("http://{}", running.admin_addr), "/cancel-all", "{}").await;
    assert_eq!(code, 200);
    let position_gap = |snap: &kestrel_engine::EngineSnapshot| -> Vec<String> {
        let balances = sim.balances("demo").unwrap();
        INITIAL
            .iter()
            .filter_map(|(asset, initial)| {
                let s = snap.symbols.iter().find(|s| s.symbol == sym(&format!("{asset}USDT")))?;
                let (free, locked) = balances[*asset];
                let delta = free
                    .checked_add(locked)
                    .unwrap()
                    .checked_sub(initial.parse().unwrap())
                    .unwrap();
                let pos = kestrel_model::Notional::from_mantissa(
                    i128::from(s.position.mantissa()) * 100_000_000,
                );
                (pos != delta).then(|| format!("{asset}: engine {pos} exchange {delta}"))
            })
            .collect()
    };
    wait_snapshots(
        "engine positions == exchange balances",
        Duration::from_secs(10),
        &mut rx,
        || {
            let snap = rx_snapshot(&control);
            let quiet = snap.symbols.iter().all(|s| s.open_orders.is_empty());
            let gap = position_gap(&snap);
            async move { quiet && gap.is_empty() }
        },
    )
    .await;

    running.shutdown().await.unwrap();
    let n = assert_journal_matches_exchange(&sim, &rest, &journal).await;
    eprintln!(
        "scenario_s10: {} fills missed while down were recovered; {n} fills in all",
        missed.len()
    );
    sim.shutdown().await;
}

fn rx_snapshot(c: &runtime::Control) -> kestrel_engine::EngineSnapshot {
    c.snapshots.borrow().clone()
}

/// S15, the order the journal never saw: orders with our prefix rest at the exchange but are
/// not journaled (a journal restored from an older backup, a second instance on the same
/// prefix). With `unknown_orders = "adopt"`, start-up journals and adopts them with the
/// exchange's own type, time in force and price, not a default limit order without a price.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_s15_unknown_own_orders_adopted_with_exchange_terms() {
    use kestrel_binance::rest::NewOrder;
    use kestrel_model::{
        OrderRequest, OrderStatus, OrderType, Price, Side, TimeInForce, UnixNanos,
    };

    let sim = start_sim().await;
    let rest = rest_client(&sim).await;
    // TC0: a post-only buy below the bid; TC1: a GTC limit sell above the ask.
    let (btc_bid, _) = sim.best_bid_ask("BTCUSDT").unwrap();
    let (_, eth_ask) = sim.best_bid_ask("ETHUSDT").unwrap();
    let dollar = 100_000_000;
    let cases = [
        (
            "BTCUSDT",
            "kst-900001",
            Side::Buy,
            OrderType::LimitMaker,
            None,
            Price::from_mantissa(btc_bid.unwrap().mantissa() - 50 * dollar),
            "0.001",
        ),
        (
            "ETHUSDT",
            "kst-900002",
            Side::Sell,
            OrderType::Limit,
            Some(TimeInForce::Gtc),
            Price::from_mantissa(eth_ask.unwrap().mantissa() + 5 * dollar),
            "0.02",
        ),
    ];
    for (symbol, id, side, kind, tif, price, qty) in cases {
        let req = OrderRequest {
            symbol: sym(symbol),
            client_id: id.parse().unwrap(),
            side,
            kind,
            time_in_force: tif,
            price: Some(price),
            qty: qty.parse().unwrap(),
            ts_decided: UnixNanos(1),
        };
        rest.place_order(&NewOrder::from_request(&req)).await.unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.sqlite");
    let toml = kestrel::demo::demo_config_toml(
        &sim.rest_url(),
        &sim.ws_stream_url(),
        &sim.ws_api_url(),
        &journal,
        "127.0.0.1:0".parse().unwrap(),
    ) + "\n[reconcile]\nunknown_orders = \"adopt\"\n";
    let config = Config::from_toml(
        &toml,
        std::path::Path::new("s15.toml"),
        &std::collections::HashMap::new(),
    )
    .unwrap();
    let running = runtime::start(config).await.unwrap();
    // The first snapshot is the engine as seeded by reconciliation.
    let snap = running.control.snapshots.borrow().clone();
    for (i, (symbol, id, side, kind, tif, price, qty)) in cases.into_iter().enumerate() {
        let cid: kestrel_model::ClientOrderId = id.parse().unwrap();
        let s = snap.symbols.iter().find(|s| s.symbol == sym(symbol)).unwrap();
        let o = s.open_orders.iter().find(|o| o.client_id == cid);
        let o = o.unwrap_or_else(|| panic!("TC{i}: {id} not adopted: {:?}", s.open_orders));
        assert_eq!(
            (o.side, o.kind, o.price, o.orig_qty, o.status),
            (side, kind, Some(price), qty.parse().unwrap(), OrderStatus::New),
            "TC{i}: engine's view of {id}"
        );
        let j = running.journal().call(move |j| j.order(&cid)).await.unwrap();
        let j = j.unwrap_or_else(|| panic!("TC{i}: {id} not journaled"));
        assert_eq!(
            (j.side, j.kind, j.time_in_force, j.price, j.qty),
            (side, kind, tif, Some(price), qty.parse().unwrap()),
            "TC{i}: journal's record of {id}"
        );
        assert!(j.order_id.is_some(), "TC{i}: {j:?}");
    }
    running.shutdown().await.unwrap();
    sim.shutdown().await;
}

/// The demo's bot configuration against `sim`, journaling to `journal`, admin API on a free
/// loopback port.
fn demo_config(sim: &kestrel_sim::SimHandle, journal: &std::path::Path, name: &str) -> Config {
    let toml = kestrel::demo::demo_config_toml(
        &sim.rest_url(),
        &sim.ws_stream_url(),
        &sim.ws_api_url(),
        journal,
        "127.0.0.1:0".parse().unwrap(),
    );
    Config::from_toml(&toml, std::path::Path::new(name), &std::collections::HashMap::new()).unwrap()
}
