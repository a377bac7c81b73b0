//! Scenario S18: the process is SIGKILLed at random points while it writes the journal, many
//! times over; every time the journal reopens, passes SQLite's integrity check and is
//! consistent (one transaction per event), and nothing the writer saw committed is lost.
//!
//! The writer is this same test binary re-executed with [`CHILD_ENV`] set: the
//! `journal_crash_writer` test does the writing only in that child, and is a no-op otherwise.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use kestrel::journal::{ClientIdPrefix, EventKind, FillRecord, Journal};
use kestrel_model::{
    Asset, Fill, Notional, OrderId, OrderRequest, OrderStatus, OrderType, OrderUpdate, Price, Qty,
    Side, Symbol, TimeInForce, TradeId, UnixNanos,
};
use rand::Rng;

/// Set (to the journal path) only in the re-executed writer process.
const CHILD_ENV: &str = "KESTREL_TEST_JOURNAL_CRASH_WRITER";
/// Kill/restart cycles. Each is a process spawn plus a few dozen fsynced transactions.
const CYCLES: usize = 30;

fn prefix() -> ClientIdPrefix {
    ClientIdPrefix::new("crash").unwrap()
}

/// The writer: an endless order lifecycle loop; after every commit it prints
/// `COMMIT <client_id> <step>` so the parent knows what must survive.
#[test]
fn journal_crash_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return; // Not the child: nothing to do.
    };
    let mut j = Journal::open(Path::new(&path)).unwrap();
    let p = prefix();
    let sym = Symbol::new("BTCUSDT").unwrap();
    let price: Price = "100.5".parse().unwrap();
    let mut out = std::io::stdout().lock();
    let mut trade = j.all_fills().unwrap().iter().map(|f| f.fill.trade_id.0).max().unwrap_or(0);
    for round in 0u64.. {
        let seq = j.next_client_seq().unwrap();
        let id = p.make(seq);
        let qty: Qty = "0.3".parse().unwrap();
        let req = OrderRequest {
            symbol: sym,
            client_id: id,
            side: if round % 2 == 0 { Side::Buy } else { Side::Sell },
            kind: OrderType::Limit,
            time_in_force: Some(TimeInForce::Gtc),
            price: Some(price),
            qty,
            ts_decided: UnixNanos(1_000 + seq),
        };
        j.record_intent(&req).unwrap();
        writeln!(out, "COMMIT {id} 0").unwrap();
        out.flush().unwrap();
        if round % 7 == 3 {
            j.mark_unknown(&id, UnixNanos(2_000 + seq)).unwrap();
            writeln!(out, "COMMIT {id} 1").unwrap();
            out.flush().unwrap();
            continue;
        }
        let mut update = OrderUpdate {
            symbol: sym,
            client_id: id,
            order_id: Some(OrderId(seq)),
            side: req.side,
            status: OrderStatus::New,
            orig_qty: qty,
            cum_qty: Qty::ZERO,
            cum_quote: Notional::ZERO,
            fill: None,
            ts_exchange: UnixNanos(2_000 + seq),
            ts_local: UnixNanos(2_000 + seq),
        };
        j.record_ack(&update).unwrap();
        writeln!(out, "COMMIT {id} 1").unwrap();
        out.flush().unwrap();
        // Three fills of 0.1 each, the last one completing the order.
        for step in 0..3u64 {
            trade += 1;
            let fill_qty: Qty = "0.1".parse().unwrap();
            update.cum_qty = update.cum_qty.checked_add(fill_qty).unwrap();
            update.cum_quote = Notional::of(price, update.cum_qty);
            update.status =
                if step == 2 { OrderStatus::Filled } else { OrderStatus::PartiallyFilled };
            update.fill = Some(Fill {
                trade_id: TradeId(trade),
                price,
                qty: fill_qty,
                commission: "0.0001".parse().unwrap(),
                commission_asset: Some(Asset::new("BNB").unwrap()),
                is_maker: step % 2 == 0,
                ts_exchange: UnixNanos(3_000 + trade),
            });
            assert!(j.record_update(&update).unwrap().fill_new);
            writeln!(out, "COMMIT {id} {}", step + 2).unwrap();
            out.flush().unwrap();
        }
        // A replayed fill must be ignored, and committed nothing new.
        let replay =
            FillRecord { symbol: sym, client_id: id, side: req.side, fill: update.fill.unwrap() };
        assert!(!j.record_fill(&replay).unwrap());
    }
}

/// What the parent learned from the writer's COMMIT lines: client id → highest step committed.
type Committed = HashMap<String, u32>;

fn check_consistency(path: &Path, committed: &Committed, cycle: usize) -> u64 {
    let j = Journal::open(path).unwrap_or_else(|e| panic!("cycle {cycle}: reopen failed: {e}"));
    let problems = j.integrity_problems().unwrap();
    assert!(problems.is_empty(), "cycle {cycle}: integrity: {problems:?}");

    let p = prefix();
    let client_seq = j.client_seq().unwrap();
    let fills = j.all_fills().unwrap();
    let mut fill_qty: HashMap<String, Qty> = HashMap::new();
    for f in &fills {
        let e = fill_qty.entry(f.client_id.to_string()).or_insert(Qty::ZERO);
        *e = e.checked_add(f.fill.qty).unwrap();
    }
    let mut orders = 0;
    for seq in 1..=client_seq {
        let id = p.make(seq);
        let Some(order) = j.order(&id).unwrap() else {
            // A sequence number taken just before the kill, intent never written: allowed, and
            // the number is never reused.
            assert!(!committed.contains_key(id.as_str()), "cycle {cycle}: lost committed {id}");
            continue;
        };
        orders += 1;
        let events = j.order_events(&id).unwrap();
        assert!(!events.is_empty(), "cycle {cycle}: {id} has no events");
        assert_eq!(events[0].kind, EventKind::Intent, "cycle {cycle}: {id} first event");
        let last = events.last().unwrap();
        assert_eq!(last.status, order.status, "cycle {cycle}: {id} row vs last event status");
        assert_eq!(last.cum_qty, order.cum_qty, "cycle {cycle}: {id} row vs last event cum_qty");
        let filled = fill_qty.get(id.as_str()).copied().unwrap_or(Qty::ZERO);
        assert_eq!(filled, order.cum_qty, "cycle {cycle}: {id} fills vs cum_qty");
        if order.status == OrderStatus::Filled {
            assert_eq!(order.cum_qty, order.qty, "cycle {cycle}: {id}");
        }
        if let Some(&step) = committed.get(id.as_str()) {
            // Durability: everything the writer saw committed is there.
            let want = usize::try_from(step).unwrap() + 1;
            let have = events.iter().filter(|e| e.kind != EventKind::Fill).count();
            assert!(
                have >= want,
                "cycle {cycle}: {id} committed step {step}, journal has {have} events"
            );
        }
    }
    // Fills belong to journaled orders (the foreign key check above), exactly once each.
    let mut keys: Vec<u64> = fills.iter().map(|f| f.fill.trade_id.0).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), fills.len(), "cycle {cycle}: duplicate fills");
    orders
}

#[test]
fn scenario_s18_journal_crash_consistency() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.sqlite");
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::thread_rng();
    let mut committed: Committed = HashMap::new();
    let mut last_orders = 0;
    for cycle in 0..CYCLES {
        let mut child = Command::new(&exe)
            .args([
                "journal_crash::journal_crash_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill after a random number of commits (0 = during start-up or migration). The child
        // keeps writing while we read, so the kill lands at an arbitrary point of a transaction.
        let wait_for = rng.gen_range(0..40);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        while seen < wait_for {
            let Some(line) = lines.next() else { break };
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("COMMIT ") {
                let (id, step) = rest.split_once(' ').unwrap();
                let step: u32 = step.parse().unwrap();
                let e = committed.entry(id.to_owned()).or_insert(0);
                *e = (*e).max(step);
                seen += 1;
            }
        }
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        // Killed by us, not exited (a panicking writer would exit with 101 before the kill).
        assert_eq!(status.signal(), Some(9), "cycle {cycle}: writer ended on its own: {status}");
        let orders = check_consistency(&path, &committed, cycle);
        assert!(orders >= last_orders, "cycle {cycle}: orders went from {last_orders} to {orders}");
        last_orders = orders;
    }
    assert!(last_orders > 0, "the writer never committed an order");
}
