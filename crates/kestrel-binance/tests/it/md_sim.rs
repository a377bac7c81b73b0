//! Market data against `kestrel-sim` over real sockets: the simulator's own depth streams,
//! REST snapshots (through the real `RestClient` and its rate limiter), fault injection and the
//! REST fallback (M2).
//! The simulator runs in manual-market mode: the market moves only when a test steps it, so a
//! book can be compared with the simulator's REST depth at the same update id.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use kestrel_binance::endpoints::Endpoints;
use kestrel_binance::market_data::{self, MarketDataConfig, MarketDataDeps, MarketDataHandle};
use kestrel_binance::observer::{MarketDataMode, ReconnectReason, StaleReason};
use kestrel_binance::rest::{RestClient, RestConfig};
use kestrel_model::{BookSource, BookState, Event, SystemClock};
use kestrel_sim::{Fault, Sim, SimConfig, SimHandle};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::md_support::{sym, wait_note, Note, NoteObserver, WAIT};

struct SimRig {
    sim: SimHandle,
    rest: RestClient,
    handle: MarketDataHandle,
    events: mpsc::Receiver<Event>,
    notes: mpsc::UnboundedReceiver<Note>,
}

async fn sim_rig(symbols: &[&str], tweak: impl FnOnce(&mut MarketDataConfig)) -> SimRig {
    let mut sc = SimConfig::default_market();
    sc.manual_market = true;
    let sim = Sim::start(sc, "127.0.0.1:0").await.unwrap();
    let endpoints = Endpoints::from_base(
        sim.rest_url().parse().unwrap(),
        sim.ws_stream_url().parse().unwrap(),
        sim.ws_api_url().parse().unwrap(),
    );
    let rest = RestClient::new(RestConfig::new(endpoints.clone())).unwrap();
    let mut cfg = MarketDataConfig::new(
        endpoints.ws_stream.clone(),
        symbols.iter().map(|s| sym(s)).collect(),
    );
    cfg.backoff_base = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(100);
    cfg.handover_timeout = Duration::from_secs(2);
    cfg.snapshot_retry = Duration::from_millis(50);
    cfg.snapshot_limit = 100;
    cfg.tick = Duration::from_millis(20);
    tweak(&mut cfg);
    let (note_tx, notes) = mpsc::unbounded_channel();
    let deps = MarketDataDeps {
        snapshots: Arc::new(rest.clone()),
        time_offset: rest.time_offset(),
        clock: Arc::new(SystemClock),
        observer: Arc::new(NoteObserver(note_tx)),
    };
    let (tx, events) = mpsc::channel(4096);
    let handle = market_data::spawn(cfg, deps, tx, CancellationToken::new()).unwrap();
    SimRig { sim, rest, handle, events, notes }
}

/// Steps the simulated market until our synced WebSocket view of `symbol` is at the simulator's
/// current update id, then checks its top levels against the simulator's REST depth.
async fn until_equal_to_sim(r: &mut SimRig, symbol: &str) {
    until_equal_to_sim_from(r, symbol, BookSource::WebSocket).await;
}

/// [`until_equal_to_sim`] for a view from `source`.
async fn until_equal_to_sim_from(r: &mut SimRig, symbol: &str, source: BookSource) {
    let top = tokio::time::timeout(WAIT, async {
        loop {
            r.sim.step_market(1);
            let deadline = tokio::time::Instant::now() + Duration::from_millis(100);
            while let Ok(Some(e)) = tokio::time::timeout_at(deadline, r.events.recv()).await {
                if let Event::Book(t) = e {
                    if t.state == BookState::Synced {
                        assert!(
                            t.best_bid().is_some() && t.best_ask().is_some(),
                            "empty synced view"
                        );
                    }
                    if t.symbol.as_str() == symbol
                        && t.state == BookState::Synced
                        && t.source == source
                        && Some(t.update_id) == r.sim.last_update_id(symbol)
                    {
                        return t;
                    }
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{symbol} never reached the simulator's update id"));
    let snap = r.rest.depth(sym(symbol), 100).await.unwrap();
    assert_eq!(snap.last_update_id, top.update_id, "market moved under the comparison");
    let n = top.bids().len();
    assert_eq!(top.bids(), &snap.bids[..n], "{symbol} bids differ from the simulator's book");
    let n = top.asks().len();
    assert_eq!(top.asks(), &snap.asks[..n], "{symbol} asks differ from the simulator's book");
}

/// M2 against the simulator: the stream endpoint refuses connections past `fallback_after`, the
/// book continues from REST polls and equals the simulator's; once the endpoint is back and
/// healthy for the grace period, the WebSocket takes over again with a fresh snapshot.
#[tokio::test]
async fn fallback_sim_ws_outage_serves_rest_book_then_switches_back() {
    let mut r = sim_rig(&["BTCUSDT"], |c| {
        c.fallback.fallback_after = Duration::from_millis(300);
        c.fallback.recover_grace = Duration::from_millis(200);
        c.fallback.min_poll_interval = Duration::from_millis(50);
    })
    .await;
    until_equal_to_sim(&mut r, "BTCUSDT").await;
    r.sim
        .inject(Fault::RefuseConnections { kind: Some("stream".into()), duration_ms: 600_000 })
        .unwrap();
    r.sim.inject(Fault::DropConnections { conn_id: None }).unwrap();
    wait_note(&mut r.notes, "fallback mode", |n| *n == Note::Mode(MarketDataMode::RestFallback))
        .await;
    until_equal_to_sim_from(&mut r, "BTCUSDT", BookSource::RestFallback).await;
    assert_eq!(r.handle.status().groups[0].mode, MarketDataMode::RestFallback);
    // The endpoint comes back (Clear lifts the refusal).
    r.sim.inject(Fault::Clear).unwrap();
    wait_note(&mut r.notes, "back on the WebSocket", |n| {
        *n == Note::Mode(MarketDataMode::WebSocket)
    })
    .await;
    until_equal_to_sim(&mut r, "BTCUSDT").await;
    let st = r.sim.stats();
    assert_eq!((st.http_429, st.http_418), (0, 0));
    r.handle.shutdown().await;
    r.sim.shutdown().await;
}

#[tokio::test]
async fn scenario_s03_sim_ws_drop_reconnect_resnapshot() {
    let mut r = sim_rig(&["BTCUSDT", "ETHUSDT"], |_| {}).await;
    until_equal_to_sim(&mut r, "BTCUSDT").await;
    until_equal_to_sim(&mut r, "ETHUSDT").await;
    r.sim.inject(Fault::DropConnections { conn_id: None }).unwrap();
    wait_note(&mut r.notes, "reconnect", |n| *n == Note::Reconnect(ReconnectReason::Disconnected))
        .await;
    r.sim.step_market(5); // the market moves while we are away
    wait_note(
        &mut r.notes,
        "second connection",
        |n| matches!(n, Note::Connected(id) if id.generation == 2),
    )
    .await;
    until_equal_to_sim(&mut r, "BTCUSDT").await;
    until_equal_to_sim(&mut r, "ETHUSDT").await;
    r.handle.shutdown().await;
    r.sim.shutdown().await;
}

#[tokio::test]
async fn scenario_s05_sim_sequence_gap_resync() {
    let mut r = sim_rig(&["BTCUSDT"], |_| {}).await;
    until_equal_to_sim(&mut r, "BTCUSDT").await;
    r.sim.inject(Fault::SequenceGap { symbol: "BTCUSDT".into(), skip: 3 }).unwrap();
    r.sim.step_market(1);
    wait_note(&mut r.notes, "gap", |n| matches!(n, Note::Resync(_, StaleReason::Gap { .. }))).await;
    until_equal_to_sim(&mut r, "BTCUSDT").await;
    r.handle.shutdown().await;
    r.sim.shutdown().await;
}

#[tokio::test]
async fn scenario_s04_sim_heartbeat_loss() {
    let mut r = sim_rig(&["BTCUSDT"], |c| c.heartbeat_timeout = Duration::from_millis(500)).await;
    until_equal_to_sim(&mut r, "BTCUSDT").await;
    r.sim.inject(Fault::HeartbeatLoss { conn_id: None }).unwrap();
    // Keep the market moving: the silenced socket must not deliver it.
    let n = tokio::time::timeout(WAIT, async {
        loop {
            r.sim.step_market(1);
            if let Ok(Some(n)) =
                tokio::time::timeout(Duration::from_millis(50), r.notes.recv()).await
            {
                if n == Note::HeartbeatMissed {
                    return n;
                }
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(n, Note::HeartbeatMissed);
    assert!(r.handle.status().groups[0].heartbeat_misses >= 1);
    wait_note(
        &mut r.notes,
        "new connection",
        |n| matches!(n, Note::Connected(id) if id.generation >= 2),
    )
    .await;
    until_equal_to_sim(&mut r, "BTCUSDT").await;
    r.handle.shutdown().await;
    r.sim.shutdown().await;
}

#[tokio::test]
async fn scenario_s12_sim_server_shutdown_reconnects_without_resync() {
    let mut r = sim_rig(&["BTCUSDT"], |_| {}).await;
    until_equal_to_sim(&mut r, "BTCUSDT").await;
    r.sim.inject(Fault::ServerShutdown { conn_id: None }).unwrap();
    wait_note(&mut r.notes, "shutdown reconnect", |n| {
        *n == Note::Reconnect(ReconnectReason::ServerShutdown)
    })
    .await;
    wait_note(
        &mut r.notes,
        "second connection",
        |n| matches!(n, Note::Connected(id) if id.generation == 2),
    )
    .await;
    until_equal_to_sim(&mut r, "BTCUSDT").await;
    // The market did not move while the sockets changed: the book was continued, not rebuilt.
    while let Ok(n) = r.notes.try_recv() {
        assert!(!matches!(n, Note::Resync(..)), "resync across serverShutdown: {n:?}");
    }
    r.handle.shutdown().await;
    r.sim.shutdown().await;
}

#[tokio::test]
async fn scenario_s14_sim_malformed_frames_counted_and_skipped() {
    let mut r = sim_rig(&["BTCUSDT"], |_| {}).await;
    until_equal_to_sim(&mut r, "BTCUSDT").await;
    r.sim.inject(Fault::MalformedFrame { conn_id: None }).unwrap();
    // One truncated JSON text frame and one binary frame.
    wait_note(&mut r.notes, "malformed 1", |n| *n == Note::Malformed).await;
    wait_note(&mut r.notes, "malformed 2", |n| *n == Note::Malformed).await;
    assert_eq!(r.handle.status().groups[0].malformed, 2);
    until_equal_to_sim(&mut r, "BTCUSDT").await;
    assert_eq!(r.handle.status().groups[0].reconnects, 0, "same connection");
    r.handle.shutdown().await;
    r.sim.shutdown().await;
}

#[tokio::test]
async fn scenario_s08_sim_symbols_split_across_connections_without_429() {
    let mut r = sim_rig(&["BTCUSDT", "ETHUSDT", "BNBUSDT"], |c| {
        c.max_streams_per_connection = 2; // depth + trade: one symbol per connection
        c.max_concurrent_snapshots = 1;
    })
    .await;
    assert_eq!(r.handle.groups(), 3);
    for s in ["BTCUSDT", "ETHUSDT", "BNBUSDT"] {
        until_equal_to_sim(&mut r, s).await;
    }
    let st = r.sim.stats();
    assert_eq!(st.ws_stream_connections, 3);
    assert_eq!((st.http_429, st.http_418), (0, 0));
    r.handle.shutdown().await;
    r.sim.shutdown().await;
}
