//! Crash safety with the real binary (capability M6, scenario S02 and the kill test): the bot
//! trades against a simulator started by the test, is SIGKILLed at random points of its order
//! flow N times (`KESTREL_CRASH_ITERATIONS=N`) and restarted each time. After every
//! kill, no order open at the exchange may be unknown to the journal; after a final clean run,
//! fills, orders and positions must match the exchange exactly.
//!
//! Gated: it runs only when `KESTREL_CRASH_ITERATIONS` is set (e.g.
//! `KESTREL_CRASH_ITERATIONS=20 cargo nextest run -p kestrel scenario_s02`). Known issue: now and
//! then a restarted bot does not finish start-up within 30 s, so the test is not yet reliable
//! enough for the CI gate; it stays out of `scripts/test` until that hang is fixed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::e2e_support::*;

fn iterations() -> Option<usize> {
    std::env::var("KESTREL_CRASH_ITERATIONS").ok().and_then(|v| v.parse().ok())
}

/// Starts `kestrel run` and returns the child plus a channel that yields once the bot logs
/// that it is running (start-up and reconciliation done).
fn spawn_bot(config: &Path) -> (Child, mpsc::Receiver<()>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kestrel"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .env_remove("KESTREL_BINANCE_API_KEY")
        .env_remove("KESTREL_BINANCE_API_SECRET")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !sent && line.contains("kestrel running") {
                let _ = tx.send(());
                sent = true;
            }
            if line.contains("ERROR") || line.contains("WARN") || line.contains("panicked") {
                eprintln!("bot: {line}");
            }
        }
    });
    (child, rx)
}

fn wait_running(child: &mut Child, rx: &mpsc::Receiver<()>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if rx.recv_timeout(Duration::from_millis(100)).is_ok() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("bot exited during start-up: {status}");
        }
        assert!(Instant::now() < deadline, "bot did not start within 30 s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_s02_kill_after_fill_restart() {
    let Some(iterations) = iterations() else {
        eprintln!("scenario_s02_kill_after_fill_restart: set KESTREL_CRASH_ITERATIONS=N to run");
        return;
    };
    let sim = start_sim_for_restarts().await;
    let rest = rest_client(&sim);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.sqlite");
    let toml = kestrel::demo::demo_config_toml(
        &sim.rest_url(),
        &sim.ws_stream_url(),
        &sim.ws_api_url(),
        &journal,
        "127.0.0.1:0".parse().unwrap(),
    )
    // Keep orders resting across a clean stop too: reconciliation must adopt them.
    .replace("cancel_all_on_exit = true", "cancel_all_on_exit = false");
    let config = dir.path().join("bot.toml");
    std::fs::write(&config, toml).unwrap();

    let n = iterations;
    let mut rng = rand::thread_rng();
    let mut kills_after_orders = 0;
    for i in 0..n {
        let (mut child, rx) = spawn_bot(&config);
        wait_running(&mut child, &rx);
        // Kill at a random point of the order flow: after 1..=6 more orders reached the
        // exchange, or at a random moment if the flow is slow.
        let before = sim.stats().orders_accepted;
        let want = rng.gen_range(1..=6);
        let deadline = Instant::now() + Duration::from_millis(rng.gen_range(200..3000));
        while sim.stats().orders_accepted < before + want && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if sim.stats().orders_accepted > before {
            kills_after_orders += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Every order resting at the exchange is known to the journal (intent before send).
        assert_open_orders_known(&rest, &journal).await;
        eprintln!("kill {}/{n}: {} orders accepted so far", i + 1, sim.stats().orders_accepted);
    }
    assert!(
        kills_after_orders * 2 >= n,
        "too few kills hit the order flow ({kills_after_orders}/{n})"
    );

    // A final clean run reconciles everything, then stops on SIGTERM.
    let (mut child, rx) = spawn_bot(&config);
    wait_running(&mut child, &rx);
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "bot did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "clean stop exited with {exit}");
    let fills = assert_journal_matches_exchange(&sim, &rest, &journal).await;
    eprintln!("{n} kills, {fills} fills, {} orders accepted", sim.stats().orders_accepted);
    sim.shutdown().await;
}
