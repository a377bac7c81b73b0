//! Depth diffs continue exactly from the REST snapshot (SPEC.md §3) over a long stepped run,
//! for both `@depth@100ms` and `@depth`; a gap fault shows as a break in `U`/`u`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::*;

type Book = (BTreeMap<String, String>, BTreeMap<String, String>);

fn book_of(snap: &Value) -> Book {
    let side = |k: &str| {
        snap[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l[0].as_str().unwrap().to_string(), l[1].as_str().unwrap().to_string()))
            .collect()
    };
    (side("bids"), side("asks"))
}

fn apply(book: &mut Book, ev: &Value) {
    for (k, side) in [("b", &mut book.0), ("a", &mut book.1)] {
        for l in ev[k].as_array().unwrap() {
            let (p, q) = (l[0].as_str().unwrap().to_string(), l[1].as_str().unwrap().to_string());
            if q.parse::<f64>().unwrap() == 0.0 {
                side.remove(&p);
            } else {
                side.insert(p, q);
            }
        }
    }
}

#[tokio::test]
async fn depth_diffs_continue_from_snapshot_over_long_run() {
    let sim = start(test_config()).await;
    let c = Rest::demo(&sim);
    let mut ws = ws_connect(&format!(
        "{}/stream?streams=btcusdt@depth@100ms/btcusdt@depth",
        sim.ws_stream_url()
    ))
    .await;
    wait_until(Duration::from_secs(5), || sim.connections().len() == 1).await;
    let ts = sim.server_time_ms();
    sim.step_market(50);
    let snap = c.get("/api/v3/depth", "symbol=BTCUSDT&limit=5000").await.body;
    let last_id = snap["lastUpdateId"].as_u64().unwrap();
    let mut book = book_of(&snap);
    // Keep user orders coming and going between steps too.
    for i in 0..300u32 {
        if i % 10 == 0 {
            let px = format!(
                "{}",
                sim.best_bid_ask("BTCUSDT").unwrap().0.unwrap().mantissa() / 100_000_000 - 1
            );
            let o = c
                .signed(
                    "POST",
                    "/api/v3/order",
                    &[
                        ("symbol", "BTCUSDT"),
                        ("side", "BUY"),
                        ("type", "LIMIT"),
                        ("timeInForce", "GTC"),
                        ("quantity", "0.001"),
                        ("price", &px),
                    ],
                    ts,
                )
                .await;
            assert_eq!(o.status, 200, "{:?}", o.body);
            if i % 20 == 0 {
                c.signed(
                    "DELETE",
                    "/api/v3/order",
                    &[("symbol", "BTCUSDT"), ("orderId", &o.body["orderId"].to_string())],
                    ts,
                )
                .await;
            }
        }
        sim.step_market(1);
    }
    let fin = c.get("/api/v3/depth", "symbol=BTCUSDT&limit=5000").await.body;
    let fin_id = fin["lastUpdateId"].as_u64().unwrap();
    let mut prev: BTreeMap<String, u64> = BTreeMap::new();
    let mut applied_first = false;
    let mut events = 0;
    loop {
        let env = ws.next_json(Duration::from_secs(5)).await.expect("stream ended early");
        let stream = env["stream"].as_str().unwrap().to_string();
        let ev = &env["data"];
        let (u0, u1) = (ev["U"].as_u64().unwrap(), ev["u"].as_u64().unwrap());
        assert!(u0 <= u1);
        // Continuity within each stream: U == previous u + 1.
        if let Some(p) = prev.get(&stream) {
            assert_eq!(u0, p + 1, "{stream}: gap or overlap");
        }
        prev.insert(stream.clone(), u1);
        events += 1;
        if stream == "btcusdt@depth@100ms" {
            if u1 <= last_id {
                continue;
            }
            if !applied_first {
                assert!(
                    u0 <= last_id + 1 && last_id < u1,
                    "first event [{u0};{u1}] must straddle {last_id}"
                );
                applied_first = true;
            }
            apply(&mut book, ev);
            if u1 == fin_id {
                break;
            }
            assert!(u1 < fin_id);
        }
    }
    assert!(events > 300);
    assert_eq!(book, book_of(&fin), "diffs applied to the snapshot rebuild the final book");
    sim.shutdown().await;
}

#[tokio::test]
async fn gap_fault_breaks_u_continuity() {
    let sim = start(test_config()).await;
    let mut ws = ws_connect(&format!("{}/ws/ethusdt@depth@100ms", sim.ws_stream_url())).await;
    wait_until(Duration::from_secs(5), || sim.connections().len() == 1).await;
    sim.step_market(3);
    let mut last = 0;
    for _ in 0..3 {
        let ev = ws.next_json(Duration::from_secs(5)).await.unwrap();
        if last != 0 {
            assert_eq!(ev["U"].as_u64().unwrap(), last + 1);
        }
        last = ev["u"].as_u64().unwrap();
    }
    // Through the HTTP control endpoint.
    let r = reqwest::Client::new()
        .post(format!("{}/_sim/faults", sim.rest_url()))
        .body(r#"{"type":"sequence_gap","symbol":"ETHUSDT","skip":7}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sim.step_market(2);
    let ev = ws.next_json(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        ev["U"].as_u64().unwrap(),
        last + 1 + 7,
        "the gap is visible at the first event after it"
    );
    let next = ws.next_json(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        next["U"].as_u64().unwrap(),
        ev["u"].as_u64().unwrap() + 1,
        "continuous again after the gap"
    );
    // A fresh snapshot is consistent with the stream after the gap.
    let snap = Rest::demo(&sim).get("/api/v3/depth", "symbol=ETHUSDT").await.body;
    assert_eq!(snap["lastUpdateId"].as_u64().unwrap(), next["u"].as_u64().unwrap());
    assert_eq!(sim.stats().faults["sequence_gap"], 1);
    sim.shutdown().await;
}
