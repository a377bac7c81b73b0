//! Every fault class the bot raises, caused from outside against a real running bot (the
//! whole runtime in-process, the simulator over real sockets) and observed the way an operator
//! sees it: `kestrel_fault_active{class}` = 1 in `/metrics` and the class (with its severity)
//! in `/status`; then the cause is removed and the class must clear in both.
//!
//! | class | cause | recovery |
//! |---|---|---|
//! | WS_HEARTBEAT_MISSED | sim `heartbeat_loss` on the market streams | bot reconnects |
//! | BOOK_STALE | sim `sequence_gap` while `stall_rest` holds the resnapshot | sim `clear` |
//! | USER_STREAM_DOWN | sim `refuse_connections` (WS API) + `drop_connections` | refusal ends |
//! | RATE_LIMITED | sim `http_error` 429 | next accepted order |
//! | IP_BANNED | sim `http_error` 418 | next accepted order |
//! | ORDER_UNKNOWN | sim `swallow_order_response` | the bot's order query settles it |
//! | CLOCK_SKEW | sim `clock_skew` −5 s | sim `clear`, next clock check |
//! | JOURNAL_ERROR | component level (see below): a journal write refused | next write succeeds |
//! | KILL_SWITCH | drawdown limit of 1e-8 USDT, market stepped until a fill | `kestrel resume` |
//! | ASYNC_TASK_OVERRUN | engine budget of 1 µs | unit level (see below) |
//! | MD_FALLBACK | sim `refuse_connections` (streams) for longer than `fallback_after` | refusal ends |
//! | MD_FALLBACK (forced) | `kestrel fallback-rest on` (in `ops_cli`) | `kestrel fallback-rest off` |
//!
//! JOURNAL_ERROR cannot be caused from outside a running bot: the journal holds SQLite's lock
//! exclusively (`locking_mode=EXCLUSIVE`) for the life of the process, so no other connection
//! can block or corrupt it, and its open file descriptors keep working whatever happens to the
//! file's permissions or name; only a full disk or an I/O error would do it. So the real
//! execution gateway (`exec::run`) is driven directly, against the simulator, with a journal
//! that refuses one intent (a client id already journaled: a constraint violation), and the
//! class must be raised in the metrics and the fault board (what `/status` lists), then
//! cleared by the next intent that is journaled.
//!
//! ASYNC_TASK_OVERRUN is raised here from outside but its clearing is tested at the unit
//! level (`engine_thread::tests`, `OverrunTracker`): it clears only after
//! `OVERRUN_CLEAR_AFTER` (5 s, a constant) without any overrun, and nothing outside the
//! process can make a 1 µs budget hold again.

use std::time::Duration;

use kestrel::faults::FaultClass;
use kestrel_sim::Fault;

use crate::ops_support::*;

/// Generous bound for one raise or clear on a loaded 2-core CI machine; typical: < 3 s.
const T: Duration = Duration::from_secs(20);

/// Waits until every configured book is synced (start-up done, trading possible).
async fn wait_synced(bot: &OpsBot) {
    wait_for("every book synced", T, || async {
        let s = bot.status().await;
        let syms = s["symbols"].as_array().unwrap();
        (!syms.is_empty() && syms.iter().all(|x| x["book_state"] == "Synced")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_fault_market_data_classes_raise_and_clear() {
    let bot = OpsBot::start(
        sim_config(),
        Tweaks {
            market_data: "heartbeat_window_ms = 800\nreconnect_backoff_base_ms = 1000\n\
                          reconnect_backoff_max_ms = 2000\nfallback_after_secs = 1\nfallback_recover_secs = 1",
            ..Tweaks::default()
        },
    )
    .await;
    wait_synced(&bot).await;

    // TC0: WS_HEARTBEAT_MISSED — the market-data sockets go silent (still open).
    for id in bot.connections("stream") {
        bot.inject(Fault::HeartbeatLoss { conn_id: Some(id) });
    }
    let detail = bot.wait_raised(FaultClass::WS_HEARTBEAT_MISSED, T).await;
    assert!(detail.contains("silent"), "{detail}");
    bot.wait_cleared(FaultClass::WS_HEARTBEAT_MISSED, T).await;
    // The reconnect is counted and the books re-synced (BOOK_STALE raised on the reconnect and
    // cleared again).
    let text = bot.metrics().await;
    assert!(sum_samples(&text, "ws_reconnects_total{") >= 1.0, "no reconnect counted");
    assert!(sample(&text, "kestrel_faults_total", FaultClass::BOOK_STALE) >= 1);
    bot.wait_cleared(FaultClass::BOOK_STALE, T).await;
    wait_synced(&bot).await;

    // TC1: BOOK_STALE — a sequence gap on BTCUSDT while REST answers are stalled, so the
    // resnapshot takes 2 s (orders stay under their 3 s timeout).
    bot.inject(Fault::StallRest { delay_ms: 2000, requests: 50 });
    bot.inject(Fault::SequenceGap { symbol: "BTCUSDT".into(), skip: 5 });
    let detail = bot.wait_raised(FaultClass::BOOK_STALE, T).await;
    assert!(detail.contains("BTCUSDT"), "{detail}");
    bot.inject(Fault::Clear);
    bot.wait_cleared(FaultClass::BOOK_STALE, T).await;
    let text = bot.metrics().await;
    assert!(
        sum_samples(&text, "kestrel_book_resyncs_total{symbol=\"BTCUSDT\",reason=\"gap\"}") >= 1.0,
        "no gap resync counted:\n{text}"
    );
    wait_synced(&bot).await;

    // TC2: USER_STREAM_DOWN — the WS API endpoint refuses connections for 3 s and the open
    // one (the user data subscription) is dropped: an outage of the user stream.
    bot.inject(Fault::RefuseConnections { kind: Some("ws_api".into()), duration_ms: 3000 });
    for id in bot.connections("ws_api") {
        bot.inject(Fault::DropConnections { conn_id: Some(id) });
    }
    let detail = bot.wait_raised(FaultClass::USER_STREAM_DOWN, T).await;
    assert!(detail.contains("user data"), "{detail}");
    // The refusal expires; the session reconnects and re-subscribes.
    bot.wait_cleared(FaultClass::USER_STREAM_DOWN, T).await;

    // TC3: MD_FALLBACK (automatic) — the market-stream endpoint refuses connections for 4 s
    // and the open ones are dropped; after `fallback_after_secs` (1 s) market data switches to
    // REST polling, and back to the WebSocket once it can connect again.
    bot.inject(Fault::RefuseConnections { kind: Some("stream".into()), duration_ms: 4000 });
    for id in bot.connections("stream") {
        bot.inject(Fault::DropConnections { conn_id: Some(id) });
    }
    let detail = bot.wait_raised(FaultClass::MD_FALLBACK, T).await;
    assert!(detail.contains("fallback"), "{detail}");
    let status = bot.status().await;
    assert_eq!(status["market_data"]["mode"], "rest_fallback", "{status}");
    bot.wait_cleared(FaultClass::MD_FALLBACK, T).await;
    assert_eq!(bot.status().await["market_data"]["mode"], "ws");
    assert!(bot.metrics().await.contains("kestrel_md_fallback 0"));

    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_fault_exchange_classes_raise_and_clear() {
    let bot = OpsBot::start(
        sim_config(),
        Tweaks {
            execution: "clock_check_secs = 1",
            replace: &[("request_timeout_ms = 3000", "request_timeout_ms = 1000")],
            ..Tweaks::default()
        },
    )
    .await;
    wait_synced(&bot).await;

    // How each case ends: by itself (the bot's own recovery) or after a sim `clear`.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Recovery {
        ByItself,
        SimClear,
    }
    let cases = [
        // TC0: an order is executed but its answer never comes: the request times out (1 s),
        // the order is Unknown until a query (or its execution report) settles it.
        (FaultClass::ORDER_UNKNOWN, Fault::SwallowOrderResponse { orders: 1 }, Recovery::SimClear),
        // TC1: the exchange clock is 5 s behind: the next clock check (1 s) sees it beyond half
        // the 1 s recvWindow; after `clear` the next check clears it.
        (FaultClass::CLOCK_SKEW, Fault::ClockSkew { offset_ms: -5000 }, Recovery::SimClear),
        // TC2: 429s on REST (orders go over REST): backs off, cleared by the next accepted order.
        (
            FaultClass::RATE_LIMITED,
            Fault::HttpError { status: 429, requests: 10, retry_after_s: Some(1) },
            Recovery::ByItself,
        ),
        // TC3: 418 (IP ban) for 1 s: cleared by the next accepted order after the ban.
        (
            FaultClass::IP_BANNED,
            Fault::HttpError { status: 418, requests: 10, retry_after_s: Some(1) },
            Recovery::ByItself,
        ),
    ];
    for (i, (class, fault, recovery)) in cases.into_iter().enumerate() {
        // An earlier case may have caused this class too (a ban can time an order out):
        // start from clear.
        bot.wait_cleared(class, T).await;
        let before = sample(&bot.metrics().await, "kestrel_faults_total", class);
        let swallowed = bot.sim.stats().swallowed_responses;
        bot.inject(fault.clone());
        if class == FaultClass::ORDER_UNKNOWN {
            // The next order placement is the one swallowed.
            wait_for("an order response swallowed", T, || async {
                (bot.sim.stats().swallowed_responses > swallowed).then_some(())
            })
            .await;
            // Left alone the bot settles it within milliseconds of the timeout (it queries at
            // once), too fast to observe: REST answers 503 until `clear`, so the queries fail
            // and the order stays unknown (re-queried every ack timeout, 3 s).
            bot.inject(Fault::HttpError { status: 503, requests: 100_000, retry_after_s: None });
        }
        let detail = bot.wait_raised(class, T).await;
        assert!(!detail.is_empty(), "TC{i}: {class} without detail");
        let after = sample(&bot.metrics().await, "kestrel_faults_total", class);
        assert!(after > before, "TC{i}: kestrel_faults_total{{{class}}} did not count");
        if recovery == Recovery::SimClear {
            bot.inject(Fault::Clear);
        }
        bot.wait_cleared(class, T).await;
        eprintln!("TC{i}: {class} raised ({detail}) and cleared");
    }

    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_fault_kill_switch_latches_until_resume() {
    // A market that moves only when the test steps it; the taker replaced by a passive
    // strategy, so nothing trades while the market stands still.
    let mut sim_cfg = sim_config();
    sim_cfg.manual_market = true;
    let bot = OpsBot::start(
        sim_cfg,
        Tweaks {
            replace: &[
                ("max_drawdown = \"500\"", "max_drawdown = \"0.00000001\""),
                (
                    "kind = \"imbalance_taker\"\nlevels = 1\nthreshold = \"0.01\"\ncooldown_ms = \
                     1500\nsize = \"0.2\"\norder_style = \"ioc\"\nslippage_bps = 5",
                    "kind = \"passive\"",
                ),
            ],
            task_budgets: "engine_us = 1",
            ..Tweaks::default()
        },
    )
    .await;
    wait_synced(&bot).await;

    // TC0: KILL_SWITCH — step the market until a fill (or the mark) takes the PnL below the
    // 1e-8 USDT drawdown limit.
    wait_for("the kill switch to trip", T, || async {
        bot.sim.step_market(1);
        let (gauge, listed, _) = bot.fault_seen(FaultClass::KILL_SWITCH).await;
        (gauge && listed).then_some(())
    })
    .await;
    let status = bot.status().await;
    assert_eq!(status["kill_switch"], true, "{status}");
    assert_eq!(status["halted"], true, "{status}");
    let detail = bot.wait_raised(FaultClass::KILL_SWITCH, T).await;
    assert!(detail.contains("drawdown"), "{detail}");

    // TC1: ASYNC_TASK_OVERRUN — the engine's work on an event exceeds a 1 µs budget.
    let detail = bot.wait_raised(FaultClass::ASYNC_TASK_OVERRUN, T).await;
    assert!(detail.contains("engine") && detail.contains("budget"), "{detail}");

    // TC2: the kill switch is latched: it stays raised (the market stands still) until an
    // operator resumes through the CLI, which re-arms it and clears the class.
    let (gauge, listed, _) = bot.fault_seen(FaultClass::KILL_SWITCH).await;
    assert!(gauge && listed, "KILL_SWITCH not latched");
    let out = kestrel_cli(&bot.base, &["resume"]).await;
    assert!(ok_stdout(&out).contains("resume: ok"));
    bot.wait_cleared(FaultClass::KILL_SWITCH, T).await;
    let status = bot.status().await;
    assert_eq!(status["kill_switch"], false, "{status}");
    assert_eq!(status["halted"], false, "{status}");

    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_fault_journal_error_raised_and_cleared_by_the_gateway() {
    use std::sync::Arc;

    use kestrel::exec::{self, ExecDeps};
    use kestrel::faults::FaultBoard;
    use kestrel::journal::{ClientIdPrefix, Journal};
    use kestrel::metrics::Metrics;
    use kestrel::runtime::SharedJournal;
    use kestrel_binance::gateway::OrderGateway;
    use kestrel_model::{
        Action, Clock, Event, OrderRequest, OrderType, Side, SystemClock, TimeInForce,
    };

    let sim = kestrel_sim::Sim::start(sim_config(), "127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = SharedJournal::new(Journal::open(&dir.path().join("j.sqlite")).unwrap()).unwrap();
    let metrics = Arc::new(Metrics::new());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let faults = FaultBoard::new(&metrics, clock.clone());
    let (events_tx, mut events_rx) = tokio::sync::mpsc::channel::<Event>(64);
    let (actions_tx, actions_rx) = tokio::sync::mpsc::channel::<Action>(8);
    let rest = demo_rest_client(&sim);
    rest.sync_time().await.unwrap();
    let gateway = tokio::spawn(exec::run(
        ExecDeps {
            gateway: OrderGateway::Rest(rest),
            journal,
            events: events_tx,
            metrics: metrics.clone(),
            faults: faults.clone(),
            clock: clock.clone(),
            prefix: ClientIdPrefix::new("kst").unwrap(),
            budget: Duration::from_secs(1),
        },
        actions_rx,
    ));
    // A resting buy far below the market (never fills).
    let (_, ask) = sim.best_bid_ask("BTCUSDT").unwrap();
    let low = ask.unwrap().mantissa() / 10 * 9 / 1_000_000 * 1_000_000;
    let order = |seq: u64| OrderRequest {
        symbol: "BTCUSDT".parse().unwrap(),
        client_id: ClientIdPrefix::new("kst").unwrap().make(seq),
        side: Side::Buy,
        kind: OrderType::Limit,
        time_in_force: Some(TimeInForce::Gtc),
        price: Some(kestrel_model::Price::from_mantissa(low)),
        qty: "0.001".parse().unwrap(),
        ts_decided: clock.now(),
    };
    let active =
        |m: &Metrics| sample(&m.encode(), "kestrel_fault_active", FaultClass::JOURNAL_ERROR);

    // TC0: the first intent is journaled and the order placed (acknowledged).
    actions_tx.send(Action::Place(order(1))).await.unwrap();
    let ev = tokio::time::timeout(T, events_rx.recv()).await.unwrap().unwrap();
    assert!(matches!(ev, Event::Order(_)), "{ev:?}");
    assert_eq!(active(&metrics), 0);

    // TC1: the journal refuses the second intent (same client id): not sent, rejected with
    // CODE_NOT_SENT, JOURNAL_ERROR raised with the journal's error as detail.
    actions_tx.send(Action::Place(order(1))).await.unwrap();
    let ev = tokio::time::timeout(T, events_rx.recv()).await.unwrap().unwrap();
    assert!(matches!(ev, Event::OrderRejected { code: exec::CODE_NOT_SENT, .. }), "{ev:?}");
    assert_eq!(active(&metrics), 1);
    assert_eq!(sample(&metrics.encode(), "kestrel_faults_total", FaultClass::JOURNAL_ERROR), 1);
    let listed = faults.active();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].class, FaultClass::JOURNAL_ERROR);
    assert!(listed[0].detail.contains("record intent"), "{}", listed[0].detail);

    // TC2: the next intent is journaled: cleared.
    actions_tx.send(Action::Place(order(2))).await.unwrap();
    let ev = tokio::time::timeout(T, events_rx.recv()).await.unwrap().unwrap();
    assert!(matches!(ev, Event::Order(_)), "{ev:?}");
    assert_eq!(active(&metrics), 0);
    assert!(faults.active().is_empty());

    drop(actions_tx);
    tokio::time::timeout(T, gateway).await.unwrap().unwrap();
    sim.shutdown().await;
}
