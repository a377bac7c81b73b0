//! M2: REST fallback when the WebSocket stays down, operator override, and the switch back.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use kestrel_binance::market_data::{self, MarketDataConfig, MarketDataDeps};
use kestrel_binance::observer::MarketDataMode;
use kestrel_binance::time_sync::TimeOffset;
use kestrel_model::{BookSource, BookState, Event, SystemClock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::md_support::*;

async fn start(
    ex: &Arc<FakeExchange>,
    fallback_after: Duration,
) -> (market_data::MarketDataHandle, mpsc::Receiver<Event>, mpsc::UnboundedReceiver<Note>) {
    let mut cfg = MarketDataConfig::new(ex.ws_url(), vec![sym("BTCUSDT")]);
    cfg.backoff_base = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(50);
    cfg.tick = Duration::from_millis(20);
    cfg.snapshot_retry = Duration::from_millis(50);
    cfg.fallback.fallback_after = fallback_after;
    cfg.fallback.recover_grace = Duration::from_millis(300);
    cfg.fallback.min_poll_interval = Duration::from_millis(50);
    let (note_tx, notes) = mpsc::unbounded_channel();
    let deps = MarketDataDeps {
        snapshots: Arc::new(FakeSnapshots(ex.clone())),
        time_offset: TimeOffset::new(),
        clock: Arc::new(SystemClock),
        observer: Arc::new(NoteObserver(note_tx)),
    };
    let (tx, rx) = mpsc::channel(4096);
    (market_data::spawn(cfg, deps, tx, CancellationToken::new()).unwrap(), rx, notes)
}

/// Steps the market until a synced view from `source` equals the exchange's book.
async fn until_match(ex: &FakeExchange, rx: &mut mpsc::Receiver<Event>, source: BookSource) {
    tokio::time::timeout(WAIT, async {
        loop {
            ex.step("BTCUSDT");
            let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
            while let Ok(Some(e)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                if let Event::Book(t) = e {
                    if t.state == BookState::Synced && t.source == source && ex.matches(&t) {
                        return;
                    }
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no synced {source:?} view matching the exchange"));
}

#[tokio::test]
async fn fallback_serves_rest_books_while_ws_down_then_switches_back() {
    let ex = FakeExchange::start(&["BTCUSDT"]).await;
    let (handle, mut rx, mut notes) = start(&ex, Duration::from_millis(400)).await;
    until_match(&ex, &mut rx, BookSource::WebSocket).await;
    // The WebSocket goes down and stays down.
    ex.refuse.store(true, Ordering::SeqCst);
    ex.drop_all();
    wait_note(&mut notes, "fallback", |n| *n == Note::Mode(MarketDataMode::RestFallback)).await;
    assert!(handle.status().any_fallback());
    until_match(&ex, &mut rx, BookSource::RestFallback).await;
    // The WebSocket comes back: after the grace period, back to WebSocket with a resnapshot.
    ex.refuse.store(false, Ordering::SeqCst);
    wait_note(&mut notes, "back to ws", |n| *n == Note::Mode(MarketDataMode::WebSocket)).await;
    until_match(&ex, &mut rx, BookSource::WebSocket).await;
    assert!(!handle.status().any_fallback());
    handle.shutdown().await;
}

#[tokio::test]
async fn operator_forces_fallback_on_and_off() {
    let ex = FakeExchange::start(&["BTCUSDT"]).await;
    let (handle, mut rx, mut notes) = start(&ex, Duration::from_secs(3600)).await;
    until_match(&ex, &mut rx, BookSource::WebSocket).await;
    handle.set_forced_fallback(true);
    wait_note(&mut notes, "forced fallback", |n| *n == Note::Mode(MarketDataMode::RestFallback))
        .await;
    until_match(&ex, &mut rx, BookSource::RestFallback).await;
    handle.set_forced_fallback(false);
    wait_note(&mut notes, "released", |n| *n == Note::Mode(MarketDataMode::WebSocket)).await;
    until_match(&ex, &mut rx, BookSource::WebSocket).await;
    handle.shutdown().await;
}
