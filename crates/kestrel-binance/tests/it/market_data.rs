//! Market data end to end over real sockets against the scriptable fake exchange
//! (`md_support`): reconnect + resnapshot, gaps, heartbeat, overlapping reconnect, malformed
//! frames, overflow, splitting, REST fallback. Every interval is shrunk through the config; the
//! tests wait on observer notes and output events with timeouts, never on sleeps.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use kestrel_binance::market_data::{
    self, MarketDataConfig, MarketDataDeps, MarketDataHandle, StreamSelection,
};
use kestrel_binance::observer::{MarketDataMode, ReconnectReason, StaleReason};
use kestrel_binance::time_sync::TimeOffset;
use kestrel_model::{BookSource, BookState, Event, Side, SystemClock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::md_support::*;

struct Rig {
    ex: Arc<FakeExchange>,
    handle: MarketDataHandle,
    events: mpsc::Receiver<Event>,
    notes: mpsc::UnboundedReceiver<Note>,
}

fn fast_config(ex: &FakeExchange, symbols: &[&str]) -> MarketDataConfig {
    let mut cfg = MarketDataConfig::new(ex.ws_url(), symbols.iter().map(|s| sym(s)).collect());
    cfg.heartbeat_timeout = Duration::from_secs(5);
    cfg.backoff_base = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(100);
    cfg.connect_timeout = Duration::from_secs(2);
    cfg.handover_timeout = Duration::from_secs(2);
    cfg.snapshot_retry = Duration::from_millis(50);
    cfg.tick = Duration::from_millis(20);
    cfg.fallback.fallback_after = Duration::from_secs(3600);
    cfg.fallback.recover_grace = Duration::from_millis(200);
    cfg.fallback.min_poll_interval = Duration::from_millis(50);
    cfg
}

async fn rig_with(
    symbols: &[&str],
    capacity: usize,
    tweak: impl FnOnce(&mut MarketDataConfig),
) -> Rig {
    let ex = FakeExchange::start(symbols).await;
    let mut cfg = fast_config(&ex, symbols);
    tweak(&mut cfg);
    let (note_tx, notes) = mpsc::unbounded_channel();
    let deps = MarketDataDeps {
        snapshots: Arc::new(FakeSnapshots(ex.clone())),
        time_offset: TimeOffset::new(),
        clock: Arc::new(SystemClock),
        observer: Arc::new(NoteObserver(note_tx)),
    };
    let (tx, events) = mpsc::channel(capacity);
    let handle = market_data::spawn(cfg, deps, tx, CancellationToken::new()).unwrap();
    Rig { ex, handle, events, notes }
}

async fn rig(symbols: &[&str]) -> Rig {
    rig_with(symbols, 4096, |_| {}).await
}

/// Steps the market until a synced WebSocket view of `symbol` equals the exchange's book.
/// Asserts along the way that no synced view ever exposes an empty side (S03).
async fn until_synced_match(r: &mut Rig, symbol: &str, source: BookSource) {
    tokio::time::timeout(WAIT, async {
        loop {
            r.ex.step(symbol);
            // Drain what has arrived; stop once a matching synced view is seen.
            let deadline = tokio::time::Instant::now() + Duration::from_millis(50);
            while let Ok(Some(e)) = tokio::time::timeout_at(deadline, r.events.recv()).await {
                if let Event::Book(t) = e {
                    if t.state == BookState::Synced {
                        assert!(
                            t.best_bid().is_some() && t.best_ask().is_some(),
                            "empty synced view {t:?}"
                        );
                    }
                    if t.symbol.as_str() == symbol
                        && t.state == BookState::Synced
                        && t.source == source
                        && r.ex.matches(&t)
                    {
                        return;
                    }
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{symbol} never synced to the exchange's book"));
}

#[tokio::test]
async fn market_data_syncs_books_and_forwards_trades() {
    let mut r = rig(&["BTCUSDT", "ETHUSDT"]).await;
    until_synced_match(&mut r, "BTCUSDT", BookSource::WebSocket).await;
    until_synced_match(&mut r, "ETHUSDT", BookSource::WebSocket).await;
    let id = r.ex.trade("ETHUSDT");
    let (e, _) = wait_event(&mut r.events, "trade", |e| matches!(e, Event::Trade(_))).await;
    let Event::Trade(t) = e else { unreachable!() };
    assert_eq!((t.symbol, t.trade_id.0, t.aggressor), (sym("ETHUSDT"), id, Side::Sell));
    // Depth messages carry a latency figure (they have `E`).
    wait_note(&mut r.notes, "depth latency", |n| {
        matches!(n, Note::Message(kestrel_binance::observer::StreamKind::Depth, true))
    })
    .await;
    let st = r.handle.status();
    assert_eq!(st.groups.len(), 1);
    assert!(st.groups[0].connected);
    assert!(st.groups[0].last_frame.0 > 0);
    r.handle.shutdown().await;
}

#[tokio::test]
async fn scenario_s03_ws_drop_reconnect_resnapshot() {
    let mut r = rig(&["BTCUSDT", "ETHUSDT"]).await;
    until_synced_match(&mut r, "BTCUSDT", BookSource::WebSocket).await;
    until_synced_match(&mut r, "ETHUSDT", BookSource::WebSocket).await;
    r.ex.drop_all();
    // Both books are published stale before anything else is decided on them.
    for s in ["BTCUSDT", "ETHUSDT"] {
        wait_event(&mut r.events, "stale view", |e| {
            matches!(e, Event::Book(t) if t.symbol.as_str() == s && t.state == BookState::Stale)
        })
        .await;
    }
    wait_note(&mut r.notes, "reconnect", |n| *n == Note::Reconnect(ReconnectReason::Disconnected))
        .await;
    // The market moves while we are away.
    for _ in 0..5 {
        r.ex.step("BTCUSDT");
        r.ex.step("ETHUSDT");
    }
    wait_note(
        &mut r.notes,
        "second connection",
        |n| matches!(n, Note::Connected(id) if id.generation == 2),
    )
    .await;
    until_synced_match(&mut r, "BTCUSDT", BookSource::WebSocket).await;
    until_synced_match(&mut r, "ETHUSDT", BookSource::WebSocket).await;
    assert_eq!(r.handle.status().groups[0].reconnects, 1);
    r.handle.shutdown().await;
}

#[tokio::test]
async fn scenario_s05_gap_forces_resync() {
    let mut r = rig(&["BTCUSDT"]).await;
    until_synced_match(&mut r, "BTCUSDT", BookSource::WebSocket).await;
    let missed = r.ex.step_with("BTCUSDT", false); // never published: a gap
    r.ex.step("BTCUSDT");
    let n = wait_note(&mut r.notes, "gap resync", |n| {
        matches!(n, Note::Resync(_, StaleReason::Gap { .. }))
    })
    .await;
    let Note::Resync(_, StaleReason::Gap { book_id, first_update_id }) = n else { unreachable!() };
    assert_eq!((book_id, first_update_id), (missed - 1, missed + 1));
    // Stale is published at the first gapped event, before any later synced view.
    let (_, before) = wait_event(
        &mut r.events,
        "stale",
        |e| matches!(e, Event::Book(t) if t.state == BookState::Stale),
    )
    .await;
    assert!(before.iter().all(|e| !matches!(e, Event::Book(t) if t.update_id > missed)));
    until_synced_match(&mut r, "BTCUSDT", BookSource::WebSocket).await;
    r.handle.shutdown().await;
}

#[tokio::test]
async fn scenario_s04_heartbeat_missed_reconnects() {
    let mut r =
        rig_with(&["BTCUSDT"], 4096, |c| c.heartbeat_timeout = Duration::from_millis(300)).await;
    until_synced_match(&mut r, "BTCUSDT", BookSource::WebSocket).await;
    r.ex.silent.store(true, Ordering::SeqCst); // socket open, no data, no pings
    wait_note(&mut r.notes, "WS_HEARTBEAT_MISSED", |n| *n == Note::HeartbeatMissed).await;
    let st = r.handle.status().groups[0];
    assert!(st.heartbeat_missed);
    assert_eq!(st.heartbeat_misses, 1);
    wait_event(
        &mut r.events,
        "stale view",
        |e| matches!(e, Event::Book(t) if t.state == BookState::Stale),
    )
    .await;
    wait_note(&mut r.notes, "reconnect", |n| {
        *n == Note::Reconnect(ReconnectReason::HeartbeatMissed)
    })
    .await;
    r.ex.silent.store(false, Ordering::SeqCst);
    wait_note(
        &mut r.notes,
        "new connection",
        |n| matches!(n, Note::Connected(id) if id.generation >= 2),
    )
    .await;
    until_synced_match(&mut r, "BTCUSDT", BookSource::WebSocket).await;
    assert!(!r.handle.status().groups[0].heartbeat_missed, "cleared by the next frame");
    r.handle.shutdown().await;
}

/// Runs the market continuously, triggers an overlapping reconnect with `trigger`, and checks
/// that the book never went stale and the old connection was released.
async fn overlapping_reconnect_without_gap(
    mut r: Rig,
    reason: ReconnectReason,
    trigger: impl FnOnce(&FakeExchange),
) {
    until_synced_match(&mut r, "BTCUSDT", BookSource::WebSocket).await;
    let ex = r.ex.clone();
    let stop = CancellationToken::new();
    let stop2 = stop.clone();
    let ticker = tokio::spawn(async move {
        let mut iv = tokio::time::interval(Duration::from_millis(5));
        while !stop2.is_cancelled() {
            iv.tick().await;
            ex.step("BTCUSDT");
        }
    });
    trigger(&r.ex);
    wait_note(&mut r.notes, "overlapping reconnect", |n| *n == Note::Reconnect(reason)).await;
    wait_note(
        &mut r.notes,
        "second connection",
        |n| matches!(n, Note::Connected(id) if id.generation == 2),
    )
    .await;
    // The old socket is released once the new one continues the book.
    tokio::time::timeout(WAIT, r.ex.until_open_connections(1))
        .await
        .expect("old connection never released");
    stop.cancel();
    ticker.await.unwrap();
    // No resync note, no stale view, update ids never go backwards.
    let mut last = 0;
    while let Ok(e) = r.events.try_recv() {
        if let Event::Book(t) = e {
            assert_eq!(t.state, BookState::Synced, "book went stale during the handover");
            assert!(t.update_id >= last, "update id went backwards");
            last = t.update_id;
        }
    }
    while let Ok(n) = r.notes.try_recv() {
        assert!(!matches!(n, Note::Resync(..)), "resync during handover: {n:?}");
    }
    until_synced_match(&mut r, "BTCUSDT", BookSource::WebSocket).await;
    assert!(r.ex.connections_total.load(Ordering::SeqCst) >= 2);
    r.handle.shutdown().await;
}

#[tokio::test]
async fn scenario_s12_server_shutdown_overlapping_reconnect() {
    let r = rig(&["BTCUSDT"]).await;
    overlapping_reconnect_without_gap(r, ReconnectReason::ServerShutdown, |ex| {
        ex.send_raw(
            r#"{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}"#,
        );
    })
    .await;
}

#[tokio::test]
async fn scenario_s12_max_connection_age_overlapping_reconnect() {
    // Age limit shrunk from 23 h to 1.5 s.
    let r =
        rig_with(&["BTCUSDT"], 4096, |c| c.max_connection_age = Duration::from_millis(1500)).await;
    overlapping_reconnect_without_gap(r, ReconnectReason::MaxAge, |_| {}).await;
}

#[tokio::test]
async fn scenario_s14_malformed_frames_counted_and_skipped() {
    let mut r = rig(&["BTCUSDT"]).await;
    until_synced_match(&mut r, "BTCUSDT", BookSource::WebSocket).await;
    let bad = [
        "not json",
        "{",
        r#"{"stream":"btcusdt@depth@100ms","data":{"U":"x"}}"#,
        r#"{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1e5","1"]],"a":[]}}"#,
        r#"{"unexpected":true}"#,
    ];
    for b in bad {
        r.ex.send_raw(b);
    }
    for _ in bad {
        wait_note(&mut r.notes, "malformed", |n| *n == Note::Malformed).await;
    }
    assert_eq!(r.handle.status().groups[0].malformed, bad.len() as u64);
    // Same connection, book still live.
    until_synced_match(&mut r, "BTCUSDT", BookSource::WebSocket).await;
    assert_eq!(r.ex.connections_total.load(Ordering::SeqCst), 1);
    r.handle.shutdown().await;
}

#[tokio::test]
async fn scenario_s08_many_symbols_split_across_connections_and_snapshots_spread() {
    let symbols = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT", "FFFUSDT", "GGGUSDT"];
    let mut r = rig_with(&symbols, 4096, |c| {
        c.max_streams_per_connection = 4; // 2 streams per symbol -> 2 symbols per connection
        c.max_concurrent_snapshots = 1;
    })
    .await;
    r.ex.snapshot_delay_ms.store(30, Ordering::SeqCst);
    assert_eq!(r.handle.groups(), 4);
    for s in symbols {
        until_synced_match(&mut r, s, BookSource::WebSocket).await;
    }
    assert_eq!(r.ex.connections_total.load(Ordering::SeqCst), 4);
    assert!(
        r.ex.snapshot_max_in_flight.load(Ordering::SeqCst) <= 4,
        "at most one snapshot per connection at a time"
    );
    r.handle.shutdown().await;
}

#[tokio::test]
async fn restart_ws_reconnects_and_resnapshots() {
    let mut r = rig(&["BTCUSDT"]).await;
    until_synced_match(&mut r, "BTCUSDT", BookSource::WebSocket).await;
    r.handle.restart_ws();
    wait_note(&mut r.notes, "manual reconnect", |n| *n == Note::Reconnect(ReconnectReason::Manual))
        .await;
    wait_note(&mut r.notes, "manual resync", |n| matches!(n, Note::Resync(_, StaleReason::Manual)))
        .await;
    wait_note(
        &mut r.notes,
        "new connection",
        |n| matches!(n, Note::Connected(id) if id.generation == 2),
    )
    .await;
    until_synced_match(&mut r, "BTCUSDT", BookSource::WebSocket).await;
    r.handle.shutdown().await;
}

#[tokio::test]
async fn full_channel_drops_marks_stale_and_resyncs() {
    let mut r = rig_with(&["BTCUSDT"], 2, |_| {}).await;
    until_synced_match(&mut r, "BTCUSDT", BookSource::WebSocket).await;
    // Don't read: the channel (capacity 2) fills up.
    for _ in 0..10 {
        r.ex.step("BTCUSDT");
    }
    wait_note(&mut r.notes, "overflow", |n| matches!(n, Note::Overflow(_))).await;
    wait_note(&mut r.notes, "overflow resync", |n| {
        matches!(n, Note::Resync(_, StaleReason::ChannelOverflow))
    })
    .await;
    // Once the engine drains the channel, the book recovers from a fresh snapshot.
    until_synced_match(&mut r, "BTCUSDT", BookSource::WebSocket).await;
    assert!(r.handle.status().groups[0].overflows >= 1);
    r.handle.shutdown().await;
}

#[tokio::test]
async fn only_trades_without_depth_still_work() {
    let mut r = rig_with(&["BTCUSDT"], 64, |c| {
        c.streams = StreamSelection { depth: None, trade: true, book_ticker: false };
    })
    .await;
    wait_note(&mut r.notes, "connected", |n| matches!(n, Note::Connected(_))).await;
    tokio::time::timeout(WAIT, async {
        loop {
            r.ex.trade("BTCUSDT");
            if let Ok(Some(Event::Trade(_))) =
                tokio::time::timeout(Duration::from_millis(50), r.events.recv()).await
            {
                return;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(r.ex.snapshot_calls.load(Ordering::SeqCst), 0, "no book, no snapshot");
    r.handle.shutdown().await;
}

#[tokio::test]
async fn snapshot_failures_are_retried() {
    let mut r = rig(&["BTCUSDT"]).await;
    r.ex.snapshots_fail.store(true, Ordering::SeqCst);
    // A few failed attempts, then the source recovers.
    wait_note(&mut r.notes, "connected", |n| matches!(n, Note::Connected(_))).await;
    // The market keeps moving while the task retries (every `snapshot_retry`), until the third
    // attempt has been served.
    tokio::time::timeout(WAIT, async {
        loop {
            r.ex.step("BTCUSDT");
            let third = r.ex.until_snapshot_calls(3);
            if tokio::time::timeout(Duration::from_millis(20), third).await.is_ok() {
                return;
            }
        }
    })
    .await
    .unwrap();
    r.ex.snapshots_fail.store(false, Ordering::SeqCst);
    until_synced_match(&mut r, "BTCUSDT", BookSource::WebSocket).await;
    r.handle.shutdown().await;
}

#[tokio::test]
async fn mode_is_visible_in_status() {
    let r = rig(&["BTCUSDT"]).await;
    assert_eq!(r.handle.status().groups[0].mode, MarketDataMode::WebSocket);
    r.handle.shutdown().await;
}
