//! Risk's `max_pending_orders` against the simulator: the demo bot (two market makers and a
//! taker) with a cap of 2 orders awaiting the exchange's answer. While the simulator stalls
//! every REST answer (orders go over REST), the engine never has more than 2 orders pending:
//! further orders are refused with reason `max_pending_orders` instead of queueing in front of
//! the exchange; once the stall ends, orders flow again. Waits are on the engine's snapshot
//! channel with deadlines, never sleeps.

use std::time::Duration;

use kestrel::config::Config;
use kestrel::runtime;
use kestrel_engine::{EngineSnapshot, RejectReason};
use kestrel_sim::faults::Fault;
use tokio::sync::watch;

use crate::e2e_support::start_sim;

const CAP: usize = 2;

/// Feeds every snapshot published from now on to `each` until it returns true; panics after
/// `timeout` or if the engine stops.
async fn watch_until(
    rx: &mut watch::Receiver<EngineSnapshot>,
    what: &str,
    timeout: Duration,
    mut each: impl FnMut(&EngineSnapshot) -> bool,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if each(&rx.borrow_and_update()) {
            return;
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => panic!("engine stopped while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

fn refused(s: &EngineSnapshot) -> u64 {
    s.symbols.iter().map(|x| x.rejection_count(RejectReason::MaxPendingOrders)).sum()
}

fn placed(s: &EngineSnapshot) -> u64 {
    s.symbols.iter().map(|x| x.orders_placed).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn risk_pending_cap_holds_under_a_slow_exchange() {
    let sim = start_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let toml = kestrel::demo::demo_config_toml(
        &sim.rest_url(),
        &sim.ws_stream_url(),
        &sim.ws_api_url(),
        &dir.path().join("journal.sqlite"),
        "127.0.0.1:0".parse().unwrap(),
    );
    assert!(toml.contains("\n[risk]\n"), "demo config changed shape");
    let toml = toml.replace("\n[risk]\n", &format!("\n[risk]\nmax_pending_orders = {CAP}\n"));
    let env = std::collections::HashMap::<String, String>::new();
    let config = Config::from_toml(&toml, std::path::Path::new("cap.toml"), &env).unwrap();
    assert_eq!(config.risk.max_pending_orders as usize, CAP);
    let running = runtime::start(config).await.unwrap();
    let control = running.control.clone();
    let mut rx = control.snapshots.clone();

    // Every snapshot from here to the end is checked against the cap.
    let mut max_pending = 0usize;
    let mut check = |s: &EngineSnapshot| {
        let n = s.pending_orders();
        assert!(n <= CAP, "{n} orders pending with a cap of {CAP}: {:?}", s.symbols);
        max_pending = max_pending.max(n);
    };

    // The bot trades normally first.
    watch_until(&mut rx, "first orders", Duration::from_secs(30), |s| {
        check(s);
        placed(s) >= 2
    })
    .await;

    // A slow exchange: every REST answer (placements, cancels) 1.5 s late. Orders pile up to
    // the cap, and the next ones are refused rather than queued.
    sim.inject(Fault::StallRest { delay_ms: 1_500, requests: 10_000 }).unwrap();
    let refused_before = refused(&rx.borrow());
    let mut saw_full = false;
    watch_until(&mut rx, "the cap reached and orders refused", Duration::from_secs(30), |s| {
        check(s);
        saw_full |= s.pending_orders() == CAP;
        saw_full && refused(s) >= refused_before + 5
    })
    .await;

    // The exchange recovers: answers free the slots and new orders go out again.
    sim.inject(Fault::Clear).unwrap();
    let placed_at_clear = placed(&rx.borrow());
    let metric = control.metrics.risk_rejections(RejectReason::MaxPendingOrders.as_str());
    watch_until(&mut rx, "orders flowing again", Duration::from_secs(30), |s| {
        check(s);
        placed(s) >= placed_at_clear + 3 && metric.get() > 0
    })
    .await;
    assert_eq!(max_pending, CAP);

    running.shutdown().await.unwrap();
    sim.shutdown().await;
}
