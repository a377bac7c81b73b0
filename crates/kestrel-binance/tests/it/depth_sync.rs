//! Depth sync on the documented payloads: the REST snapshot and depthUpdate doc vectors, decoded
//! by the hot-path decoder, drive the sync machine exactly as SPEC.md §3 says.
#![allow(clippy::unwrap_used)]

use kestrel_binance::decode::{Decoded, MarketDecoder};
use kestrel_binance::depth_sync::{
    DeltaOutcome, DepthDelta, DepthSync, SnapshotOutcome, StaleReason,
};
use kestrel_binance::wire::market::PartialDepth;
use kestrel_model::{Level, Symbol};

fn testdata(name: &str) -> String {
    let path = format!("{}/../../testdata/binance/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap()
}

fn depth_frame(first: u64, last: u64, bid: (&str, &str)) -> String {
    format!(
        r#"{{"stream":"bnbbtc@depth@100ms","data":{{"e":"depthUpdate","E":1672515782136,"s":"BNBBTC","U":{first},"u":{last},"b":[["{}","{}"]],"a":[]}}}}"#,
        bid.0, bid.1
    )
}

fn feed(dec: &mut MarketDecoder, sync: &mut DepthSync, frame: &str) -> DeltaOutcome {
    let Decoded::Depth(h) = dec.decode(frame.as_bytes()).unwrap() else { panic!("not depth") };
    sync.on_delta(&DepthDelta {
        first_update_id: h.first_update_id,
        final_update_id: h.final_update_id,
        bids: dec.bids(),
        asks: dec.asks(),
    })
}

#[test]
fn doc_vectors_sync_a_book() {
    let mut dec = MarketDecoder::new();
    let mut sync = DepthSync::new(Symbol::new("BNBBTC").unwrap(), 100);
    assert!(sync.request_initial());
    // The doc's depthUpdate (U=157, u=160) is buffered.
    let doc = format!(r#"{{"stream":"bnbbtc@depth","data":{}}}"#, testdata("ws_depthUpdate.json"));
    assert_eq!(feed(&mut dec, &mut sync, &doc), DeltaOutcome::Buffered);
    // The doc's partial-depth payload (lastUpdateId 160) as snapshot: the event is dropped (u <= 160).
    let snap: PartialDepth = serde_json::from_str(&testdata("ws_partialDepth.json")).unwrap();
    assert_eq!(
        sync.on_snapshot(snap.last_update_id, &snap.bids, &snap.asks),
        SnapshotOutcome::Synced { applied: 0, dropped: 1 }
    );
    // U == id + 1 passes rule (b).
    assert_eq!(
        feed(&mut dec, &mut sync, &depth_frame(161, 163, ("0.0025", "3"))),
        DeltaOutcome::Applied
    );
    let best = sync.book().best_bid().unwrap();
    assert_eq!(best, Level::new("0.0025".parse().unwrap(), "3".parse().unwrap()));
    // A gap at 165 (book is at 163) forces a resync.
    assert_eq!(
        feed(&mut dec, &mut sync, &depth_frame(165, 166, ("0.0025", "0"))),
        DeltaOutcome::Resync {
            reason: StaleReason::Gap { book_id: 163, first_update_id: 165 },
            request_snapshot: true
        }
    );
    assert!(!sync.book().is_synced());
}

#[test]
fn rest_snapshot_vector_with_older_buffer_is_too_old_then_syncs() {
    let mut dec = MarketDecoder::new();
    let mut sync = DepthSync::new(Symbol::new("BNBBTC").unwrap(), 100);
    sync.request_initial();
    feed(&mut dec, &mut sync, &depth_frame(1_027_030, 1_027_031, ("4", "1")));
    let snap: PartialDepth = serde_json::from_str(&testdata("rest_depth_snapshot.json")).unwrap();
    // lastUpdateId 1027024 < first buffered U 1027030: step 4, fetch again.
    assert_eq!(
        sync.on_snapshot(snap.last_update_id, &snap.bids, &snap.asks),
        SnapshotOutcome::TooOld
    );
    assert_eq!(
        sync.on_snapshot(1_027_030, &snap.bids, &snap.asks),
        SnapshotOutcome::Synced { applied: 1, dropped: 0 }
    );
    assert_eq!(sync.book().update_id(), 1_027_031);
}
