//! Helpers of the operations tests (`ops_faults`, `ops_cli`): a bot started in-process against
//! an in-process simulator with shrunk intervals, its admin API read the way an operator reads
//! it (`/metrics` text and `/status` JSON), the real `kestrel` binary as the admin client, and
//! condition waits with deadlines.

use std::future::Future;
use std::process::{Command, Output};
use std::time::Duration;

use kestrel::config::Config;
use kestrel::faults::FaultClass;
use kestrel::runtime::{self, Running};
use kestrel_sim::{Fault, SimConfig, SimHandle};
use serde_json::Value;

/// How often a waited-on condition is re-checked (HTTP calls to the bot's admin API).
pub const POLL: Duration = Duration::from_millis(50);

/// Edits to the demo bot config (`kestrel::demo::demo_config_toml`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Tweaks {
    /// Lines appended to `[execution]` (keys the demo config does not set).
    pub execution: &'static str,
    /// Lines for `[market_data]` (the demo has none).
    pub market_data: &'static str,
    /// Lines for `[task_budgets]` (keys the demo config does not set).
    pub task_budgets: &'static str,
    /// Text replacements `(from, to)`, each of which must match.
    pub replace: &'static [(&'static str, &'static str)],
}

/// A simulator and a bot trading on it, with the admin API on a loopback port.
pub struct OpsBot {
    /// The exchange.
    pub sim: SimHandle,
    /// The bot (`None` after [`OpsBot::stop`]).
    pub running: Option<Running>,
    /// `http://127.0.0.1:PORT` of the admin API.
    pub base: String,
    /// Keeps the journal directory alive.
    pub _dir: tempfile::TempDir,
    /// Admin API client.
    pub http: reqwest::Client,
}

/// The demo simulator market, with a weight budget that leaves room for resyncs and clock
/// checks every second.
pub fn sim_config() -> SimConfig {
    let mut cfg = kestrel::demo::demo_sim_config();
    cfg.limits.request_weight_per_minute = 600_000;
    cfg
}

impl OpsBot {
    /// Starts a simulator with `sim_cfg` and the demo bot (with `tweaks`) against it.
    pub async fn start(sim_cfg: SimConfig, tweaks: Tweaks) -> Self {
        let sim = kestrel_sim::Sim::start(sim_cfg, "127.0.0.1:0").await.unwrap();
        Self::start_on(sim, tweaks).await
    }

    /// Starts the demo bot (with `tweaks`) against an already running simulator.
    pub async fn start_on(sim: SimHandle, tweaks: Tweaks) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("journal.sqlite");
        let mut toml = kestrel::demo::demo_config_toml(
            &sim.rest_url(),
            &sim.ws_stream_url(),
            &sim.ws_api_url(),
            &journal,
            "127.0.0.1:0".parse().unwrap(),
        );
        let mut edit = |from: &str, to: String| {
            assert!(toml.contains(from), "demo config lacks {from:?}");
            toml = toml.replacen(from, &to, 1);
        };
        edit("[execution]\n", format!("[execution]\n{}\n", tweaks.execution));
        for (from, to) in tweaks.replace {
            edit(from, (*to).to_owned());
        }
        toml.push_str(&format!("\n[market_data]\n{}\n", tweaks.market_data));
        if toml.contains("\n[task_budgets]\n") {
            toml = toml.replacen(
                "\n[task_budgets]\n",
                &format!("\n[task_budgets]\n{}\n", tweaks.task_budgets),
                1,
            );
        } else {
            toml.push_str(&format!("\n[task_budgets]\n{}\n", tweaks.task_budgets));
        }
        let config = Config::from_toml(
            &toml,
            std::path::Path::new("ops-test.toml"),
            &std::collections::HashMap::new(),
        )
        .unwrap_or_else(|e| panic!("test config invalid: {e}\n{toml}"));
        let running = runtime::start(config).await.unwrap();
        let base = format!("http://{}", running.admin_addr);
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        Self { sim, running: Some(running), base, _dir: dir, http }
    }

    /// `GET /metrics` text.
    pub async fn metrics(&self) -> String {
        let r = self.http.get(format!("{}/metrics", self.base)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.text().await.unwrap()
    }

    /// `GET /status` JSON.
    pub async fn status(&self) -> Value {
        let r = self.http.get(format!("{}/status", self.base)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.json().await.unwrap()
    }

    /// Whether `class` is raised according to `/metrics` (`kestrel_fault_active`) and to
    /// `/status` (`faults[].class`), and the count in `kestrel_faults_total`.
    pub async fn fault_seen(&self, class: FaultClass) -> (bool, bool, u64) {
        let text = self.metrics().await;
        let gauge = sample(&text, "kestrel_fault_active", class);
        let total = sample(&text, "kestrel_faults_total", class);
        let status = self.status().await;
        let listed =
            status["faults"].as_array().unwrap().iter().any(|f| {
                f["class"] == class.as_str() && f["severity"] == class.severity().as_str()
            });
        (gauge == 1, listed, total)
    }

    /// Waits until `class` is raised in both `/metrics` and `/status`; returns the detail
    /// `/status` gives.
    pub async fn wait_raised(&self, class: FaultClass, timeout: Duration) -> String {
        let seen = try_wait_for(timeout, || async {
            let (gauge, listed, total) = self.fault_seen(class).await;
            (gauge && listed && total >= 1).then_some(())
        })
        .await;
        let status = self.status().await;
        assert!(
            seen.is_some(),
            "{class} not raised in /metrics and /status within {timeout:?}; status: {status}"
        );
        status["faults"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["class"] == class.as_str())
            .map(|f| f["detail"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    }

    /// Waits until `class` is clear in both `/metrics` and `/status`.
    pub async fn wait_cleared(&self, class: FaultClass, timeout: Duration) {
        let seen = try_wait_for(timeout, || async {
            let (gauge, listed, _) = self.fault_seen(class).await;
            (!gauge && !listed).then_some(())
        })
        .await;
        if seen.is_none() {
            let status = self.status().await;
            panic!(
                "{class} not cleared in /metrics and /status within {timeout:?}; status: {status}"
            );
        }
    }

    /// Injects `fault` into the simulator.
    pub fn inject(&self, fault: Fault) {
        self.sim.inject(fault).unwrap();
    }

    /// Ids of the simulator's open connections of `kind` (`"stream"` or `"ws_api"`).
    pub fn connections(&self, kind: &str) -> Vec<u64> {
        self.sim.connections().into_iter().filter(|c| c.kind == kind).map(|c| c.id).collect()
    }

    /// Graceful shutdown of the bot, then of the simulator.
    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.unwrap();
        }
        self.sim.shutdown().await;
    }
}

/// The value of `name{class="…"}` in OpenMetrics `text` (0 when absent).
pub fn sample(text: &str, name: &str, class: FaultClass) -> u64 {
    let prefix = format!("{name}{{class=\"{}\"}} ", class.as_str());
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().parse::<f64>().unwrap() as u64)
        .unwrap_or(0)
}

/// The first sample of a series whose line starts with `prefix` (name and labels), summed over
/// every matching line.
pub fn sum_samples(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next())
        .filter_map(|v| v.parse::<f64>().ok())
        .sum()
}

/// Polls `check` every [`POLL`] until it yields a value; `None` after `timeout`.
pub async fn try_wait_for<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `check` every [`POLL`] until it yields a value; panics after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The real `kestrel` binary as an admin client of `base` (environment cleared of tokens).
pub async fn kestrel_cli(base: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kestrel"));
    cmd.args(args).args(["--admin", base]).env_remove("KESTREL_ADMIN_TOKEN").env("NO_COLOR", "1");
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

/// stdout of a successful CLI run (panics with stderr otherwise).
pub fn ok_stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "kestrel failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A REST client on the simulator's demo account (HMAC demo key).
pub fn demo_rest_client(sim: &SimHandle) -> kestrel_binance::rest::RestClient {
    crate::e2e_support::unsynced_rest_client(sim)
}
