//! `kestrel demo`: the embedded simulator and the bot against it, in one process, with a
//! status line every second (PRODUCT.md §1, first contact). No keys, no internet.
//!
//! The simulator runs its default market (BTCUSDT/ETHUSDT/BNBUSDT, 100 ms steps) with a
//! livelier random walk so the demo's quotes get filled within seconds; the bot market-makes
//! BTCUSDT and ETHUSDT and runs the imbalance taker on BNBUSDT, journals to a temporary file,
//! and serves `/metrics` and the admin API on loopback.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::runtime;
use crate::status_line::{p95_from_openmetrics, StatusLine};
use anyhow::Context;

/// Options of `kestrel demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Stop by itself after this long (`None`: until Ctrl-C).
    pub duration: Option<Duration>,
    /// Admin API and `/metrics` address.
    pub admin: SocketAddr,
    /// Print the status line every this often.
    pub status_every: Duration,
}

/// What a demo run did.
#[derive(Debug, Clone, Copy)]
pub struct DemoSummary {
    /// Fills journaled.
    pub fills: u64,
    /// Orders the engine placed.
    pub orders: u64,
}

/// The demo's bot config against a simulator at `rest`/`ws`/`ws_api`.
pub fn demo_config_toml(
    rest: &str,
    ws: &str,
    ws_api: &str,
    journal: &std::path::Path,
    admin: SocketAddr,
) -> String {
    format!(
        r#"env = "sim"

[endpoints]
rest_url = "{rest}"
ws_stream_url = "{ws}"
ws_api_url = "{ws_api}"

[[symbols]]
symbol = "BTCUSDT"
max_position = "0.01"
[symbols.strategy]
kind = "market_maker"
half_spread_bps = 1
size = "0.001"
requote_bps = 3
skew_bps_at_max = 2
min_requote_interval_ms = 300

[[symbols]]
symbol = "ETHUSDT"
max_position = "0.2"
[symbols.strategy]
kind = "market_maker"
half_spread_bps = 1
size = "0.02"
requote_bps = 3
skew_bps_at_max = 2
min_requote_interval_ms = 300

[[symbols]]
symbol = "BNBUSDT"
max_position = "2"
[symbols.strategy]
kind = "imbalance_taker"
levels = 1
threshold = "0.01"
cooldown_ms = 1500
size = "0.2"
order_style = "ioc"
slippage_bps = 5

[risk]
funds = "5000"
max_drawdown = "500"
orders_per_sec = 20
order_burst = 40

[execution]
request_timeout_ms = 3000
recv_window_ms = 1000

[journal]
path = "{journal}"

[admin]
listen = "{admin}"

[shutdown]
cancel_all_on_exit = true
"#,
        journal = journal.display()
    )
}

/// The simulator market of the demo: the default market with a wider random walk so resting
/// quotes a basis point from mid are crossed within seconds.
pub fn demo_sim_config() -> kestrel_sim::SimConfig {
    let mut cfg = kestrel_sim::SimConfig::default_market();
    for s in &mut cfg.symbols {
        s.max_move_ticks = match s.symbol.as_str() {
            "BTCUSDT" => 400,
            "ETHUSDT" => 25,
            _ => 3,
        };
    }
    cfg
}

fn temp_journal() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!("kestrel-demo-{}-{nanos}.sqlite", std::process::id()))
}

/// Runs the demo until `opts.duration` passes or `stop` resolves.
pub async fn run(opts: DemoOptions, stop: impl Future<Output = ()>) -> anyhow::Result<DemoSummary> {
    let sim = kestrel_sim::Sim::start(demo_sim_config(), "127.0.0.1:0")
        .await
        .context("starting the simulator")?;
    let journal = temp_journal();
    let toml = demo_config_toml(
        &sim.rest_url(),
        &sim.ws_stream_url(),
        &sim.ws_api_url(),
        &journal,
        opts.admin,
    );
    let config =
        Config::from_toml(&toml, std::path::Path::new("<demo>"), &crate::secrets::ProcessEnv)
            .context("demo config")?;
    let symbols: Vec<_> = config.symbols.iter().map(|s| s.symbol).collect();
    let running = runtime::start(config).await?;
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "kestrel demo: simulator on {}, metrics on http://{}/metrics, admin on http://{} (journal {})",
        sim.local_addr(),
        running.admin_addr,
        running.admin_addr,
        journal.display()
    );
    let mut line = StatusLine::new();
    let started = Instant::now();
    let mut tick = tokio::time::interval(opts.status_every);
    tick.tick().await;
    let mut last = Instant::now();
    tokio::pin!(stop);
    let fills =
        |c: &runtime::Control| symbols.iter().map(|s| c.metrics.fills(*s).get()).sum::<u64>();
    loop {
        let until_end = opts.duration.map(|d| d.saturating_sub(started.elapsed()));
        tokio::select! {
            biased;
            () = &mut stop => break,
            () = sleep_opt(until_end) => break,
            _ = tick.tick() => {
                let snap = running.control.snapshots.borrow().clone();
                let text = running.control.metrics.encode();
                let p95 = p95_from_openmetrics(&text, "task_latency_seconds", "task=\"engine\"");
                let active = running.control.faults.active();
                let names: Vec<&str> = active.iter().map(|f| f.class.as_str()).collect();
                let elapsed = last.elapsed().as_secs_f64();
                last = Instant::now();
                let _ = writeln!(out, "{}", line.render(&snap, elapsed, p95, &names, fills(&running.control)));
            }
        }
    }
    let snap = running.control.snapshots.borrow().clone();
    let summary = DemoSummary {
        fills: fills(&running.control),
        orders: snap.symbols.iter().map(|s| s.orders_placed).sum(),
    };
    running.shutdown().await?;
    sim.shutdown().await;
    for suffix in ["", "-wal", "-shm"] {
        let mut p = journal.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    let _ = writeln!(
        out,
        "kestrel demo: stopped after {:.0}s: {} orders, {} fills",
        started.elapsed().as_secs_f64(),
        summary.orders,
        summary.fills
    );
    Ok(summary)
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
