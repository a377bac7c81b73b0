//! Crash safety with the real binary (capability M6, scenario S02 and the kill test): the bot
//! trades against a simulator started by the test, is SIGKILLed at random points of its order
//! flow N times and restarted each time (orders are left resting across restarts, so each start
//! adopts some). After every kill, no order open at the exchange may be unknown to the journal;
//! after a final clean run (SIGTERM, cancel-all on exit), every order at the exchange belongs to
//! exactly one journaled client id (no duplicates), and fills, orders and positions (journal
//! fills against the exchange's balance changes) match the exchange exactly.
//!
//! N defaults to [`DEFAULT_KILLS`]; `KESTREL_CRASH_ITERATIONS=N` raises it for a long run
//! (e.g. `KESTREL_CRASH_ITERATIONS=200 cargo nextest run -p kestrel scenario_s02`). The test
//! prints the number of kills it ran.
//!
//! Kill points are chosen at random per cycle: on the k-th "sending order" log line (between
//! journaling the intent and the exchange's answer), a few milliseconds after it (ack, fill,
//! cancel in flight), or at a random moment of a quiet period. Nothing here sleeps to wait for
//! a condition: start-up, orders and exit are awaited on the bot's log lines with timeouts.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::mpsc;

use crate::e2e_support::*;

/// Kills per run unless `KESTREL_CRASH_ITERATIONS` says otherwise.
pub const DEFAULT_KILLS: usize = 20;

/// A restarted bot must be trading-ready within this (start-up is ~0.1 s; reconciliation may
/// wait one `recvWindow` for a just-journaled intent).
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Log lines kept per bot, shown when it misbehaves.
const LOG_TAIL: usize = 200;

fn kills() -> usize {
    std::env::var("KESTREL_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_KILLS)
}

/// What the bot's log says, as it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BotEvent {
    /// Start-up and reconciliation are done (`kestrel running`).
    Running,
    /// An order intent was journaled and the order is being sent.
    Sending,
    /// The log ended: the process exited.
    Exited,
}

/// One `kestrel run` process; killed when dropped (a failing assertion leaves no orphan).
struct Bot {
    child: Child,
    events: mpsc::UnboundedReceiver<BotEvent>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Bot {
    /// Starts `kestrel run`; with `KESTREL_CRASH_LOGS=DIR` its whole log is also kept in
    /// `DIR/run-<run>.log` (for investigating a long run).
    fn spawn(config: &Path, run: usize) -> Bot {
        let mut keep = std::env::var_os("KESTREL_CRASH_LOGS").map(|d| {
            let d = std::path::PathBuf::from(d);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::File::create(d.join(format!("run-{run:04}.log"))).unwrap()
        });
        let mut child = Command::new(env!("CARGO_BIN_EXE_kestrel"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", "info,kestrel::exec=debug")
            .env("NO_COLOR", "1")
            .env_remove("KESTREL_BINANCE_API_KEY")
            .env_remove("KESTREL_BINANCE_API_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, events) = mpsc::unbounded_channel();
        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_TAIL)));
        let lines = tail.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(f) = keep.as_mut() {
                    use std::io::Write as _;
                    let _ = writeln!(f, "{line}");
                }
                let ev = if line.contains("kestrel running") {
                    Some(BotEvent::Running)
                } else if line.contains("sending order") {
                    Some(BotEvent::Sending)
                } else {
                    None
                };
                {
                    let mut t = lines.lock().unwrap();
                    if t.len() == LOG_TAIL {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
                if let Some(ev) = ev {
                    let _ = tx.send(ev);
                }
            }
            let _ = tx.send(BotEvent::Exited);
        });
        Bot { child, events, tail }
    }

    fn log_tail(&self) -> String {
        self.tail.lock().unwrap().iter().map(|l| format!("  bot| {l}\n")).collect()
    }

    /// The next event within `timeout` (`None` on timeout).
    async fn next(&mut self, timeout: Duration) -> Option<BotEvent> {
        match tokio::time::timeout(timeout, self.events.recv()).await {
            Ok(Some(ev)) => Some(ev),
            Ok(None) => Some(BotEvent::Exited),
            Err(_) => None,
        }
    }

    /// Waits for `kestrel running`; panics (with the bot's log) on exit or timeout.
    async fn wait_running(&mut self) -> Duration {
        let t0 = Instant::now();
        loop {
            let left = START_TIMEOUT.saturating_sub(t0.elapsed());
            match self.next(left).await {
                Some(BotEvent::Running) => return t0.elapsed(),
                Some(BotEvent::Sending) => {}
                Some(BotEvent::Exited) => {
                    let status = self.child.wait().unwrap();
                    panic!("bot exited during start-up ({status}):\n{}", self.log_tail());
                }
                None => panic!(
                    "bot did not start within {START_TIMEOUT:?}; its log:\n{}",
                    self.log_tail()
                ),
            }
        }
    }

    /// Waits for `n` more `Sending` events within `timeout`; returns how many came.
    async fn wait_sending(&mut self, n: usize, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = 0;
        while seen < n {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(BotEvent::Sending) => seen += 1,
                Some(BotEvent::Running) => {}
                Some(BotEvent::Exited) => {
                    panic!("bot exited while trading:\n{}", self.log_tail())
                }
                None => break,
            }
        }
        seen
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits (on the log's end) for a clean exit.
    async fn terminate(mut self, timeout: Duration) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(BotEvent::Exited) => break,
                Some(_) => {}
                None => panic!("bot did not stop on SIGTERM:\n{}", self.log_tail()),
            }
        }
        let status = self.child.wait().unwrap();
        assert!(status.success(), "clean stop exited with {status}:\n{}", self.log_tail());
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The demo's bot config with livelier order flow (requotes and taker cooldown shrunk) and
/// orders left resting on exit, so every restart has orders to adopt.
fn crash_config(sim: &kestrel_sim::SimHandle, journal: &Path) -> String {
    kestrel::demo::demo_config_toml(
        &sim.rest_url(),
        &sim.ws_stream_url(),
        &sim.ws_api_url(),
        journal,
        "127.0.0.1:0".parse().unwrap(),
    )
    .replace("cancel_all_on_exit = true", "cancel_all_on_exit = false")
    .replace("min_requote_interval_ms = 300", "min_requote_interval_ms = 100")
    .replace("cooldown_ms = 1500", "cooldown_ms = 300")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_s02_kill_after_fill_restart() {
    let started = Instant::now();
    let n = kills();
    let sim = start_sim_for_restarts().await;
    let rest = rest_client(&sim).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.sqlite");
    let config = dir.path().join("bot.toml");
    std::fs::write(&config, crash_config(&sim, &journal)).unwrap();

    let mut rng = rand::thread_rng();
    let mut kills_in_flow = 0;
    let mut slowest_start = Duration::ZERO;
    for i in 0..n {
        let cycle = Instant::now();
        let mut bot = Bot::spawn(&config, i);
        let start_took = bot.wait_running().await;
        slowest_start = slowest_start.max(start_took);
        // Where to kill: on the k-th order being sent, a little after it, or (1 in 5) at a
        // random moment regardless of the flow.
        let want = rng.gen_range(1..=4);
        let point = rng.gen_range(0..5);
        let hit = if point == 4 {
            tokio::time::sleep(Duration::from_millis(rng.gen_range(0..800))).await;
            false
        } else {
            let seen = bot.wait_sending(want, Duration::from_secs(5)).await;
            if point >= 2 && seen > 0 {
                // Let the ack / fill / cancel of that order be in flight.
                tokio::time::sleep(Duration::from_millis(rng.gen_range(1..60))).await;
            }
            seen > 0
        };
        kills_in_flow += usize::from(hit);
        bot.kill();
        // Every order resting at the exchange is known to the journal (intent before send).
        assert_open_orders_known(&rest, &journal).await;
        eprintln!(
            "kill {}/{n} (point {point}, in flow: {hit}): start-up {start_took:.0?}, cycle \
             {:.0?}, {} orders accepted at the exchange so far",
            i + 1,
            cycle.elapsed(),
            sim.stats().orders_accepted
        );
    }
    assert!(kills_in_flow * 2 >= n, "too few kills hit the order flow ({kills_in_flow}/{n})");

    // A final clean run reconciles everything, trades a little, then stops on SIGTERM and
    // cancels what rests: an order left resting could fill after the bot's last look at the
    // exchange, and that fill would reach the journal only at the next start-up.
    let final_config = dir.path().join("bot-final.toml");
    let toml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &final_config,
        toml.replace("cancel_all_on_exit = false", "cancel_all_on_exit = true"),
    )
    .unwrap();
    let mut bot = Bot::spawn(&final_config, n);
    slowest_start = slowest_start.max(bot.wait_running().await);
    bot.wait_sending(2, Duration::from_secs(5)).await;
    bot.terminate(Duration::from_secs(30)).await;
    let resting = open_orders(&rest).await;
    assert!(resting.is_empty(), "orders still open after cancel-all on exit: {resting:?}");

    assert_no_duplicate_orders(&sim, &rest, &journal).await;
    let fills = assert_journal_matches_exchange(&sim, &rest, &journal).await;
    assert_restart_positions_match_exchange(&sim, &journal).await;
    eprintln!(
        "scenario_s02_kill_after_fill_restart: {n} SIGKILLs ({kills_in_flow} during order flow), \
         {} orders accepted, {fills} fills, slowest start-up {slowest_start:?}, {:.1}s",
        sim.stats().orders_accepted,
        started.elapsed().as_secs_f64()
    );
    sim.shutdown().await;
}

/// Starts the bot once more, in-process and with passive strategies (nothing trades), and
/// checks the engine as reconciliation seeded it: every symbol's position equals the exchange's
/// balance change of its base asset (commissions included) and nothing is open.
async fn assert_restart_positions_match_exchange(sim: &kestrel_sim::SimHandle, journal: &Path) {
    let mut toml = format!(
        "env = \"sim\"\n[endpoints]\nrest_url = \"{}\"\nws_stream_url = \"{}\"\nws_api_url = \"{}\"\n",
        sim.rest_url(),
        sim.ws_stream_url(),
        sim.ws_api_url()
    );
    for s in SYMBOLS {
        toml += &format!(
            "[[symbols]]\nsymbol = \"{s}\"\nmax_position = \"10\"\n[symbols.strategy]\nkind = \"passive\"\n"
        );
    }
    toml += &format!(
        "[risk]\nfunds = \"5000\"\nmax_drawdown = \"500\"\n[journal]\npath = \"{}\"\n[admin]\nlisten = \"127.0.0.1:0\"\n",
        journal.display()
    );
    let config = kestrel::config::Config::from_toml(
        &toml,
        Path::new("restart.toml"),
        &std::collections::HashMap::new(),
    )
    .unwrap();
    let running = kestrel::runtime::start(config).await.unwrap();
    let snap = running.control.snapshots.borrow().clone();
    running.shutdown().await.unwrap();
    let balances = sim.balances("demo").unwrap();
    for (asset, initial) in INITIAL {
        let s = snap.symbols.iter().find(|s| s.symbol == sym(&format!("{asset}USDT"))).unwrap();
        assert!(s.open_orders.is_empty(), "{asset}: {:?}", s.open_orders);
        let (free, locked) = balances[asset];
        let delta =
            free.checked_add(locked).unwrap().checked_sub(initial.parse().unwrap()).unwrap();
        assert_eq!(
            s.position.to_notional(),
            delta,
            "{asset}: restarted engine's position != exchange balance change"
        );
    }
}
