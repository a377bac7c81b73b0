//! `kestrel bench run`: the end-to-end benchmark. Starts the simulator and the full bot as two
//! child processes of this executable (`kestrel sim --config …` and `kestrel run --config …`,
//! the same code path an operator runs), waits until every book is synced (admin `/status`),
//! discards a warm-up, then measures a window: `/metrics` scraped at its start and end for the
//! counters, the HDR latency percentiles (within 1 %) of the window from the admin API
//! (`POST /latency/reset` at its start, `GET /latency` at its end; a bot without that endpoint
//! falls back to bucket bounds, see [`super::openmetrics`], and the report's `latency_source`
//! says which), and the bot's `/proc/<pid>` for CPU, RSS and FDs. A progress line goes to stderr
//! every second.
//!
//! The bot's and the simulator's stderr go to `<work dir>/{bot,sim}.log`; the work dir is kept
//! when the run fails (its path is in the error) and removed otherwise.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kestrel_sim::{MarketRates, SimConfig};

use super::openmetrics::{BucketHist, Scrape};
use super::proc_stats::{self, Sampler};
use super::report::{BenchReport, Figures, MachineInfo, ResourceSample, SCHEMA_VERSION};
use super::scenario::Scenario;

/// The simulator's demo HMAC credentials, given to the bot child through its environment.
const API_KEY: &str = kestrel_sim::config::DEMO_HMAC_API_KEY;
/// See [`API_KEY`].
const API_SECRET: &str = kestrel_sim::config::DEMO_HMAC_SECRET;

/// What to run and how long.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The scenario (rates, symbols, strategies); its `duration_s`/`warmup_s` are ignored in
    /// favour of `duration`/`warmup`.
    pub scenario: Scenario,
    /// Measured window.
    pub duration: Duration,
    /// Discarded after sync, before the window.
    pub warmup: Duration,
    /// Longest wait for every book to be synced after the bot started.
    pub sync_timeout: Duration,
    /// RSS/FD sampling period inside the window (report `samples`).
    pub sample_every: Duration,
    /// Period of the progress line, which scrapes the bot's `/metrics` (work for the bot too).
    pub progress_every: Duration,
    /// The `kestrel` executable to start the children from (normally the current one).
    pub exe: PathBuf,
    /// Scratch directory for configs, journal and logs (created; removed after success unless
    /// `keep_work_dir`).
    pub work_dir: PathBuf,
    /// Keep the work dir after a successful run.
    pub keep_work_dir: bool,
    /// Log filter of both children (`--log-level`).
    pub child_log_level: String,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A file or process operation failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A child process exited before the run was over.
    #[error(
        "the {which} process exited early ({status}); last log line: {tail:?}; full log: {log}"
    )]
    ChildDied {
        /// `bot` or `simulator`.
        which: &'static str,
        /// Its exit status.
        status: String,
        /// Its stderr log.
        log: PathBuf,
        /// The last line of the log.
        tail: String,
    },
    /// The bot did not report every book synced in time.
    #[error("the bot's books were not all synced after {secs} s ({detail}); bot log: {log}")]
    NotSynced {
        /// The timeout.
        secs: u64,
        /// The last `/status` reading.
        detail: String,
        /// The bot's stderr log.
        log: PathBuf,
    },
    /// The simulator did not print its listen address.
    #[error("the simulator did not start (no banner on stdout); its log: {log}")]
    SimBanner {
        /// The simulator's stderr log.
        log: PathBuf,
    },
    /// An admin HTTP call failed.
    #[error("admin API {url}")]
    Http {
        /// The URL.
        url: String,
        /// The client error.
        #[source]
        source: reqwest::Error,
    },
    /// `/metrics` could not be parsed.
    #[error("parsing the bot's /metrics")]
    Metrics(#[from] super::openmetrics::ParseError),
    /// `/proc/<pid>` could not be read.
    #[error("reading the bot's /proc entry")]
    Proc(#[from] crate::process_metrics::ProcError),
    /// A generated config could not be serialized.
    #[error("writing the simulator config")]
    SimConfig(#[from] toml::ser::Error),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// A child process that is stopped (signal, then kill) when dropped.
#[derive(Debug)]
struct ChildGuard {
    /// `bot` or `simulator`.
    which: &'static str,
    /// The process.
    child: Child,
    /// Its stderr log.
    log: PathBuf,
    /// Signal for a graceful stop (`TERM` for the bot, `INT` for the simulator).
    signal: &'static str,
}

impl ChildGuard {
    /// Err if the process has exited.
    fn check_alive(&mut self) -> Result<(), RunError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(RunError::ChildDied {
                which: self.which,
                status: status.to_string(),
                log: self.log.clone(),
                tail: log_tail(&self.log, 1),
            }),
            Err(e) => Err(io(format!("waiting for the {}", self.which))(e)),
        }
    }

    /// Graceful stop: the signal, up to `grace` to exit, then SIGKILL.
    fn stop(&mut self, grace: Duration) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .arg(format!("-{}", self.signal))
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// The last `n` lines of a log file (empty if unreadable).
fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Symbol name of the `i`-th simulated pair (`S000USDT`, …).
fn symbol_name(i: u32) -> String {
    format!("S{i:03}USDT")
}

/// The simulator config for a scenario: `symbols` pairs around 100 USDT with BTC-like
/// volatility, 10 background levels a side, the rate-driven market at the scenario's rates, limits high enough that the bot's own
/// budget is the only throttle, and the demo account funded for every pair.
pub fn sim_config(s: &Scenario) -> SimConfig {
    let mut cfg = SimConfig::synthetic_pairs(s.symbols);
    if let Some(acct) = cfg.accounts.first_mut() {
        acct.balances = std::iter::once(("USDT".to_owned(), "1000000000".to_owned()))
            .chain((0..s.symbols).map(|i| (format!("S{i:03}"), "1000000".to_owned())))
            .collect();
    }
    cfg.limits.request_weight_per_minute = 10_000_000;
    cfg.limits.orders_per_10s = 10_000_000;
    cfg.limits.orders_per_day = 1_000_000_000;
    cfg.ws.channel_capacity = 1 << 17;
    let (depth_per_s, trades_per_s, book_ticker_per_s) = s.rates();
    cfg.market_rates =
        Some(MarketRates { depth_per_s, trades_per_s, book_ticker_per_s, tick_ms: 1 });
    cfg
}

/// The bot config (`kestrel run --config`) for a scenario against the simulator at `sim`, with
/// its admin API on `admin` and its journal in `work_dir`.
pub fn bot_config(s: &Scenario, sim: SocketAddr, admin: SocketAddr, work_dir: &Path) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "# Generated by `kestrel bench run` for scenario {:?}.", s.name);
    let _ = writeln!(t, "env = \"sim\"\n");
    let _ = writeln!(t, "[endpoints]");
    let _ = writeln!(t, "rest_url = \"http://{sim}\"");
    let _ = writeln!(t, "ws_stream_url = \"ws://{sim}\"");
    let _ = writeln!(t, "ws_api_url = \"ws://{sim}/ws-api/v3\"\n");
    let mix = s.strategy_mix;
    let kinds = std::iter::repeat_n("market_maker", mix.market_maker as usize)
        .chain(std::iter::repeat_n("imbalance_taker", mix.imbalance_taker as usize))
        .chain(std::iter::repeat_n("passive", mix.passive as usize));
    for (i, kind) in (0u32..).zip(kinds) {
        let _ = writeln!(t, "[[symbols]]\nsymbol = \"{}\"\nmax_position = \"5\"", symbol_name(i));
        let _ = writeln!(t, "[symbols.strategy]\nkind = \"{kind}\"");
        match kind {
            "market_maker" => {
                let _ = writeln!(
                    t,
                    "half_spread_bps = 2\nsize = \"0.1\"\nrequote_bps = 1\nskew_bps_at_max = 4"
                );
            }
            "imbalance_taker" => {
                let _ = writeln!(
                    t,
                    "levels = 5\nthreshold = \"0.2\"\ncooldown_ms = 1000\nsize = \"0.1\""
                );
            }
            _ => {}
        }
        t.push('\n');
    }
    let _ = writeln!(t, "[risk]\nfunds = \"1000000\"\nmax_drawdown = \"100000\"");
    let _ = writeln!(t, "orders_per_sec = 50\n");
    let journal = work_dir.join("journal.sqlite");
    let _ = writeln!(t, "[journal]\npath = {:?}\n", journal.display().to_string());
    let _ = writeln!(t, "[admin]\nlisten = \"{admin}\"");
    t
}

/// A free loopback port (bound then released; the bot binds it a moment later).
fn free_port() -> Result<SocketAddr, RunError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    l.local_addr().map_err(io("finding a free port"))
}

/// `git describe --always --dirty --abbrev=40` (the commit, `-dirty` when the working tree
/// had uncommitted changes, so a baseline from an unclean tree says so), or `unknown`.
fn git_revision() -> String {
    Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=40"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// HTTP GET returning the body text.
async fn get_text(client: &reqwest::Client, url: &str) -> Result<String, RunError> {
    let http = |source| RunError::Http { url: url.to_owned(), source };
    client
        .get(url)
        .send()
        .await
        .map_err(http)?
        .error_for_status()
        .map_err(http)?
        .text()
        .await
        .map_err(http)
}

/// Synced books / total from a `/status` document.
fn synced_books(status: &serde_json::Value) -> (usize, usize) {
    let symbols = status.get("symbols").and_then(|v| v.as_array());
    let total = symbols.map_or(0, Vec::len);
    let synced = symbols.map_or(0, |v| {
        v.iter().filter(|s| s.get("book_state").and_then(|b| b.as_str()) == Some("Synced")).count()
    });
    (synced, total)
}

/// Counter-style figures read from one scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    /// Market-data messages (depth + trade + bookTicker streams).
    messages: f64,
    /// Strategy signals.
    signals: f64,
    /// Order requests (every outcome but cancel acks).
    orders: f64,
    /// Deltas dropped on a full engine channel.
    dropped: f64,
    /// Book resyncs (a book goes stale before each).
    resyncs: f64,
}

impl Counts {
    fn of(s: &Scrape) -> Self {
        Counts {
            messages: s.sum_except("kestrel_md_messages_total", "stream", "user"),
            signals: s.sum("kestrel_signals_total", &[]),
            orders: s.sum_except("kestrel_orders_total", "outcome", "canceled"),
            dropped: s.sum("kestrel_md_dropped_total", &[]),
            resyncs: s.sum("kestrel_book_resyncs_total", &[]),
        }
    }
}

/// The figures of a window from the scrapes at its ends, the `/proc` summary and its length.
fn figures(
    start: &Scrape,
    end: &Scrape,
    window: &proc_stats::WindowSummary,
    wall: Duration,
    offered: f64,
) -> Figures {
    let hist = |base: &str, filter: &[(&str, &str)]| -> BucketHist {
        end.histogram(base, filter).since(&start.histogram(base, filter))
    };
    let (a, b) = (Counts::of(start), Counts::of(end));
    let secs = wall.as_secs_f64().max(1e-9);
    let per_s = |x: f64, y: f64| Some((y - x).max(0.0) / secs);
    let count = |x: f64, y: f64| Some((y - x).max(0.0) as u64);
    Figures {
        binance_ws_latency: hist("binance_ws_latency_seconds", &[]).percentiles(),
        task_latency: hist("task_latency_seconds", &[("task", "engine")]).percentiles(),
        tick_to_order_p99_s: None,
        signals_per_s: per_s(a.signals, b.signals),
        orders_per_s: per_s(a.orders, b.orders),
        order_roundtrip_p95_s: hist("order_roundtrip_seconds", &[]).quantile_upper(0.95),
        messages_per_s: per_s(a.messages, b.messages),
        offered_messages_per_s: Some(offered),
        dropped_events: count(a.dropped, b.dropped),
        stale_events: count(a.resyncs, b.resyncs),
        bot_cpu_percent: window.cpu_percent,
        peak_rss_bytes: Some(window.peak_rss_bytes),
        final_rss_bytes: Some(window.final_rss_bytes),
        open_fds_start: Some(window.open_fds_start),
        open_fds_end: Some(window.open_fds_end),
    }
}

/// Exact latency figures of the window from the bot's `GET /latency` document
/// (`{"series": {"task_latency_engine": {"count", "p50_ns", "p95_ns", "p99_ns", "max_ns", …},
/// "binance_ws_latency": …, "order_roundtrip": …, "tick_to_order": …}}`). A series with no
/// samples is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExactLatency {
    /// `task_latency_engine`.
    pub task: Option<super::report::Percentiles>,
    /// `binance_ws_latency`.
    pub ws: Option<super::report::Percentiles>,
    /// `order_roundtrip`.
    pub roundtrip: Option<super::report::Percentiles>,
    /// `tick_to_order`.
    pub tick_to_order: Option<super::report::Percentiles>,
}

impl ExactLatency {
    /// Parses the `/latency` document; `None` if it has no `series` object.
    pub fn parse(v: &serde_json::Value) -> Option<Self> {
        let series = v.get("series")?.as_object()?;
        let get = |name: &str| -> Option<super::report::Percentiles> {
            let s = series.get(name)?;
            let ns = |k: &str| s.get(k).and_then(serde_json::Value::as_u64);
            if ns("count")? == 0 {
                return None;
            }
            let secs = |k: &str| ns(k).map(|v| v as f64 / 1e9);
            Some(super::report::Percentiles {
                p50: secs("p50_ns")?,
                p95: secs("p95_ns")?,
                p99: secs("p99_ns")?,
                max: secs("max_ns")?,
            })
        };
        Some(ExactLatency {
            task: get("task_latency_engine"),
            ws: get("binance_ws_latency"),
            roundtrip: get("order_roundtrip"),
            tick_to_order: get("tick_to_order"),
        })
    }

    /// Replaces the bucket-bound latencies of `f` with these exact ones.
    fn apply(&self, f: &mut Figures) {
        f.task_latency = self.task;
        f.binance_ws_latency = self.ws;
        f.order_roundtrip_p95_s = self.roundtrip.map(|p| p.p95);
        f.tick_to_order_p99_s = self.tick_to_order.map(|p| p.p99);
    }
}

/// Writes one progress line to stderr.
fn progress(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// Runs the benchmark once and returns its report.
pub fn run(opts: &RunOptions) -> Result<BenchReport, RunError> {
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(io(format!("creating {}", opts.work_dir.display())))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("starting tokio"))?;
    let report = rt.block_on(run_async(opts))?;
    if opts.keep_work_dir {
        progress(&format!(
            "[bench {}] work directory kept: {}",
            opts.scenario.name,
            opts.work_dir.display()
        ));
    } else {
        let _ = std::fs::remove_dir_all(&opts.work_dir);
    }
    Ok(report)
}

async fn run_async(opts: &RunOptions) -> Result<BenchReport, RunError> {
    let s = &opts.scenario;
    let name = &s.name;
    let dir = &opts.work_dir;

    // Simulator child.
    let sim_path = dir.join("sim.toml");
    std::fs::write(&sim_path, toml::to_string(&sim_config(s))?)
        .map_err(io(format!("writing {}", sim_path.display())))?;
    let sim_log = dir.join("sim.log");
    let mut sim_child = Command::new(&opts.exe)
        .args(["--log-level", &opts.child_log_level, "sim", "--listen", "127.0.0.1:0", "--config"])
        .arg(&sim_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&sim_log).map_err(io("creating sim.log"))?)
        .spawn()
        .map_err(io(format!("starting {} sim", opts.exe.display())))?;
    let stdout = sim_child.stdout.take();
    let mut sim = ChildGuard { which: "simulator", child: sim_child, log: sim_log, signal: "INT" };
    let mut lines = BufReader::new(stdout.ok_or(RunError::SimBanner { log: sim.log.clone() })?);
    let mut banner = String::new();
    lines.read_line(&mut banner).map_err(io("reading the simulator's banner"))?;
    let sim_addr: SocketAddr = banner
        .trim()
        .strip_prefix("kestrel sim listening on ")
        .and_then(|a| a.parse().ok())
        .ok_or(RunError::SimBanner { log: sim.log.clone() })?;
    // Keep draining the simulator's stdout so it never blocks or gets EPIPE.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while matches!(lines.read_line(&mut sink), Ok(n) if n > 0) {
            sink.clear();
        }
    });

    // Bot child.
    let admin = free_port()?;
    let bot_path = dir.join("bot.toml");
    std::fs::write(&bot_path, bot_config(s, sim_addr, admin, dir))
        .map_err(io(format!("writing {}", bot_path.display())))?;
    let bot_log = dir.join("bot.log");
    let bot_child = Command::new(&opts.exe)
        .args(["--log-level", &opts.child_log_level, "run", "--config"])
        .arg(&bot_path)
        .env(crate::secrets::API_KEY_ENV, API_KEY)
        .env(crate::secrets::API_SECRET_ENV, API_SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&bot_log).map_err(io("creating bot.log"))?)
        .current_dir(dir)
        .spawn()
        .map_err(io(format!("starting {} run", opts.exe.display())))?;
    let mut bot = ChildGuard { which: "bot", child: bot_child, log: bot_log, signal: "TERM" };
    let bot_pid = bot.child.id();

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|source| RunError::Http { url: "client".into(), source })?;
    let status_url = format!("http://{admin}/status");
    let metrics_url = format!("http://{admin}/metrics");

    // Wait until every book is synced.
    let started = Instant::now();
    let mut last = String::from("admin API not up yet");
    loop {
        bot.check_alive()?;
        sim.check_alive()?;
        if let Ok(text) = get_text(&client, &status_url).await {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                let (synced, total) = synced_books(&v);
                last = format!("{synced}/{total} books synced");
                if total == s.symbols as usize && synced == total {
                    break;
                }
            }
        }
        if started.elapsed() > opts.sync_timeout {
            return Err(RunError::NotSynced {
                secs: opts.sync_timeout.as_secs(),
                detail: last,
                log: bot.log.clone(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    progress(&format!(
        "[bench {name}] bot pid {bot_pid} synced {} books in {:.1} s; warm-up {} s",
        s.symbols,
        started.elapsed().as_secs_f64(),
        opts.warmup.as_secs()
    ));
    let warm_end = Instant::now() + opts.warmup;
    while Instant::now() < warm_end {
        bot.check_alive()?;
        sim.check_alive()?;
        tokio::time::sleep(Duration::from_millis(250).min(warm_end - Instant::now())).await;
    }

    // The measured window.
    let proc_dir = proc_stats::proc_dir_of(bot_pid);
    let latency_url = format!("http://{admin}/latency");
    // Start the exact-latency window; an older bot without the endpoint answers 404.
    let exact_available = client
        .post(format!("{latency_url}/reset"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    let first = Scrape::parse(&get_text(&client, &metrics_url).await?)?;
    let sampler = Sampler::start(proc_dir.clone())?;
    let t0 = Instant::now();
    let mut prev = (Counts::of(&first), t0);
    let cpu0 = proc_stats::read(&proc_dir)?.cpu_seconds;
    // The simulator's CPU, for the progress line only: a saturated simulator (not the bot)
    // is what caps a stress step.
    let sim_proc = proc_stats::proc_dir_of(sim.child.id());
    let sim_cpu0 = proc_stats::read(&sim_proc).map(|p| p.cpu_seconds).unwrap_or(0.0);
    let mut samples = Vec::new();
    let mut next_sample = t0;
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + opts.progress_every,
        opts.progress_every,
    );
    let end_at = t0 + opts.duration;
    loop {
        let now = Instant::now();
        if now >= end_at {
            break;
        }
        tokio::select! {
            _ = tick.tick() => {}
            () = tokio::time::sleep(end_at - now) => {}
        }
        bot.check_alive()?;
        sim.check_alive()?;
        let stats = proc_stats::read(&proc_dir)?;
        let now = Instant::now();
        if now >= next_sample {
            samples.push(ResourceSample {
                t_s: (now - t0).as_secs_f64(),
                rss_bytes: stats.rss_bytes,
                open_fds: stats.open_fds,
                anon_rss_bytes: stats.anon_rss_bytes,
            });
            next_sample += opts.sample_every;
        }
        if now >= end_at {
            break;
        }
        let scrape = Scrape::parse(&get_text(&client, &metrics_url).await?)?;
        let c = Counts::of(&scrape);
        let dt = (now - prev.1).as_secs_f64().max(1e-9);
        let el = (now - t0).as_secs_f64().max(1e-9);
        progress(&format!(
            "[bench {name}] {:>4.0}/{} s  md {:>8.0} msg/s  signals {:>6.0}/s  orders {:>5.1}/s  \
             cpu {:>5.1} %  rss {:>6.1} MiB  fds {}  dropped {}  (sim cpu {:.0} %)",
            el,
            opts.duration.as_secs(),
            (c.messages - prev.0.messages) / dt,
            (c.signals - prev.0.signals) / dt,
            (c.orders - prev.0.orders) / dt,
            (stats.cpu_seconds - cpu0) / el * 100.0,
            stats.rss_bytes as f64 / 1048576.0,
            stats.open_fds,
            (c.dropped - Counts::of(&first).dropped) as u64,
            proc_stats::read(&sim_proc).map_or(0.0, |p| (p.cpu_seconds - sim_cpu0) / el * 100.0),
        ));
        prev = (c, now);
    }
    let exact = if exact_available {
        get_text(&client, &latency_url)
            .await
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| ExactLatency::parse(&v))
    } else {
        None
    };
    let last_scrape = Scrape::parse(&get_text(&client, &metrics_url).await?)?;
    let window = sampler.finish()?;
    let wall = t0.elapsed();
    let (depth, trades, _) = s.rates();
    let offered = f64::from(s.symbols) * (f64::from(depth) + f64::from(trades));
    let mut figures = figures(&first, &last_scrape, &window, wall, offered);
    let latency_source = match &exact {
        Some(e) => {
            e.apply(&mut figures);
            "hdr"
        }
        None => "buckets",
    };

    bot.stop(Duration::from_secs(15));
    sim.stop(Duration::from_secs(5));

    let mut info = s.info();
    info.duration_s = wall.as_secs_f64();
    info.warmup_s = opts.warmup.as_secs_f64();
    Ok(BenchReport {
        schema_version: SCHEMA_VERSION,
        machine: MachineInfo::detect(),
        git_revision: git_revision(),
        scenario: info,
        figures,
        samples,
        latency_source: Some(latency_source.to_owned()),
    })
}

/// The markdown table of one report (what `--markdown` writes and stdout shows).
pub fn markdown(r: &BenchReport) -> String {
    let f = &r.figures;
    let us = |v: f64| {
        if v < 1e-3 {
            format!("{:.0} µs", v * 1e6)
        } else {
            format!("{:.2} ms", v * 1e3)
        }
    };
    let pct = |p: Option<super::report::Percentiles>| {
        p.map_or("—".to_owned(), |p| {
            format!("{} / {} / {} / {}", us(p.p50), us(p.p95), us(p.p99), us(p.max))
        })
    };
    let opt = |v: Option<f64>, fmt: &dyn Fn(f64) -> String| v.map_or("—".to_owned(), fmt);
    let mib =
        |v: Option<u64>| v.map_or("—".to_owned(), |b| format!("{:.1} MiB", b as f64 / 1048576.0));
    let cnt = |v: Option<u64>| v.map_or("—".to_owned(), |c| c.to_string());
    let sc = &r.scenario;
    let how =
        if r.latency_source.as_deref() == Some("hdr") { "HDR, ±1 %" } else { "≤ bucket bound" };
    let l_ws = format!("binance_ws_latency p50 / p95 / p99 / max ({how})");
    let l_task = format!("task_latency{{task=engine}} p50 / p95 / p99 / max ({how})");
    let l_t2o = format!("tick-to-order p99 ({how})");
    let l_rt = format!("order_roundtrip p95 ({how})");
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### kestrel bench: `{}` ({} symbols × {} msg/s, {:.0} s measured after {:.0} s warm-up)\n",
        sc.name, sc.symbols, sc.md_rate_per_symbol, sc.duration_s, sc.warmup_s
    );
    let _ = writeln!(s, "| figure | value |\n|---|---|");
    let rows: Vec<(&str, String)> = vec![
        (&l_ws, pct(f.binance_ws_latency)),
        (&l_task, pct(f.task_latency)),
        (&l_t2o, opt(f.tick_to_order_p99_s, &us)),
        (&l_rt, opt(f.order_roundtrip_p95_s, &us)),
        ("messages/s processed", opt(f.messages_per_s, &|v| format!("{v:.0}"))),
        (
            "messages/s offered (depth + trade)",
            opt(f.offered_messages_per_s, &|v| format!("{v:.0}")),
        ),
        ("signals/s", opt(f.signals_per_s, &|v| format!("{v:.1}"))),
        ("orders/s", opt(f.orders_per_s, &|v| format!("{v:.1}"))),
        ("dropped / stale events", format!("{} / {}", cnt(f.dropped_events), cnt(f.stale_events))),
        (
            "bot CPU (user+sys / wall, % of one core)",
            opt(f.bot_cpu_percent, &|v| format!("{v:.2} %")),
        ),
        ("peak / final RSS", format!("{} / {}", mib(f.peak_rss_bytes), mib(f.final_rss_bytes))),
        ("open FDs start / end", format!("{} / {}", cnt(f.open_fds_start), cnt(f.open_fds_end))),
    ];
    for (k, v) in rows {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    let m = &r.machine;
    let load = m
        .load_average
        .map_or("unknown".to_owned(), |l| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]));
    let _ = writeln!(
        s,
        "\n`{}` on {} ({} cores, kernel {}), load average at the end {load}.",
        r.git_revision, m.cpu_model, m.cores, m.kernel
    );
    if let (Some(first), Some(last)) = (r.samples.first(), r.samples.last()) {
        let max_rss = r.samples.iter().map(|x| x.rss_bytes).max().unwrap_or(0);
        let max_fds = r.samples.iter().map(|x| x.open_fds).max().unwrap_or(0);
        let _ = writeln!(
            s,
            "RSS first / last / max over {} samples: {:.1} / {:.1} / {:.1} MiB; FDs {} / {} / {}.",
            r.samples.len(),
            first.rss_bytes as f64 / 1048576.0,
            last.rss_bytes as f64 / 1048576.0,
            max_rss as f64 / 1048576.0,
            first.open_fds,
            last.open_fds,
            max_fds
        );
        let anon: Vec<u64> = r.samples.iter().filter_map(|x| x.anon_rss_bytes).collect();
        if let (Some(a0), Some(a1), Some(amax)) = (anon.first(), anon.last(), anon.iter().max()) {
            let _ = writeln!(
                s,
                "Anonymous RSS (heap, stacks; the rest is mapped code) first / last / max: {:.1} / {:.1} / {:.1} MiB.",
                *a0 as f64 / 1048576.0,
                *a1 as f64 / 1048576.0,
                *amax as f64 / 1048576.0,
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(symbols: u32, mm: u32, taker: u32, passive: u32) -> Scenario {
        let text = format!(
            "name = \"t\"\nsymbols = {symbols}\nmd_rate_per_symbol = 30\ndepth_per_s = 10\n\
             trades_per_s = 20\nduration_s = 5\nwarmup_s = 1\n[strategy_mix]\n\
             market_maker = {mm}\nimbalance_taker = {taker}\npassive = {passive}\n"
        );
        Scenario::from_toml(&text, Path::new("t.toml")).unwrap()
    }

    #[test]
    fn generated_sim_config_validates_with_rates() {
        let cfg = sim_config(&scenario(200, 100, 50, 50));
        assert_eq!(cfg.symbols.len(), 200);
        assert_eq!(cfg.symbols[199].symbol, "S199USDT");
        let r = cfg.market_rates.unwrap();
        assert_eq!((r.depth_per_s, r.trades_per_s, r.book_ticker_per_s), (10, 20, 0));
        // Round trip through the file the child reads.
        let text = toml::to_string(&cfg).unwrap();
        let back = SimConfig::from_toml_str(&text).unwrap();
        assert_eq!(back.symbols.len(), 200);
        assert_eq!(back.accounts[0].balances.get("S042").map(String::as_str), Some("1000000"));
    }

    #[test]
    fn generated_bot_config_is_a_valid_kestrel_config() {
        let dir = tempfile::tempdir().unwrap();
        let s = scenario(4, 2, 1, 1);
        let text = bot_config(
            &s,
            "127.0.0.1:1234".parse().unwrap(),
            "127.0.0.1:9999".parse().unwrap(),
            dir.path(),
        );
        let path = dir.path().join("bot.toml");
        std::fs::write(&path, &text).unwrap();
        let cfg = crate::config::Config::load(&path).unwrap();
        assert_eq!(cfg.symbols.len(), 4);
        assert_eq!(cfg.admin.listen, "127.0.0.1:9999".parse::<SocketAddr>().unwrap());
        assert!(text.contains("kind = \"passive\""), "{text}");
        assert!(text.contains("rest_url = \"http://127.0.0.1:1234\""), "{text}");
    }

    #[test]
    fn exact_latency_document() {
        let v = serde_json::json!({"series": {
            "task_latency_engine": {"count": 10, "skipped": 0, "p50_ns": 8000, "p95_ns": 20000,
                "p99_ns": 31000, "p999_ns": 40000, "max_ns": 45000},
            "tick_to_order": {"count": 3, "skipped": 0, "p50_ns": 1, "p95_ns": 2,
                "p99_ns": 900000, "p999_ns": 900000, "max_ns": 900000},
            "order_roundtrip": {"count": 0, "skipped": 0, "p50_ns": 0, "p95_ns": 0,
                "p99_ns": 0, "p999_ns": 0, "max_ns": 0}
        }});
        let e = ExactLatency::parse(&v).unwrap();
        let t = e.task.unwrap();
        assert_eq!((t.p50, t.p99, t.max), (8e-6, 31e-6, 45e-6));
        // An empty series and a missing one are not measured.
        assert_eq!((e.roundtrip, e.ws), (None, None));
        let mut f = Figures { order_roundtrip_p95_s: Some(1.0), ..Figures::default() };
        e.apply(&mut f);
        assert_eq!(f.tick_to_order_p99_s, Some(9e-4));
        assert_eq!(f.order_roundtrip_p95_s, None);
        assert_eq!(ExactLatency::parse(&serde_json::json!({"x": 1})), None);
    }

    #[test]
    fn synced_books_from_status() {
        let v = serde_json::json!({"symbols": [
            {"book_state": "Synced"}, {"book_state": "Stale"}, {"book_state": "Synced"}
        ]});
        assert_eq!(synced_books(&v), (2, 3));
        assert_eq!(synced_books(&serde_json::json!({})), (0, 0));
    }

    #[test]
    fn figures_from_two_scrapes() {
        let start = Scrape::parse(
            "kestrel_md_messages_total{stream=\"depth\"} 100\n\
             kestrel_signals_total{symbol=\"A\",strategy=\"m\"} 10\n\
             task_latency_seconds_bucket{task=\"engine\",le=\"1e-5\"} 5\n\
             task_latency_seconds_bucket{task=\"engine\",le=\"+Inf\"} 5\n",
        )
        .unwrap();
        let end = Scrape::parse(
            "kestrel_md_messages_total{stream=\"depth\"} 1100\n\
             kestrel_md_messages_total{stream=\"user\"} 50\n\
             kestrel_signals_total{symbol=\"A\",strategy=\"m\"} 110\n\
             kestrel_md_dropped_total{symbol=\"A\"} 3\n\
             task_latency_seconds_bucket{task=\"engine\",le=\"1e-5\"} 100\n\
             task_latency_seconds_bucket{task=\"engine\",le=\"+Inf\"} 105\n",
        )
        .unwrap();
        let w = proc_stats::WindowSummary {
            cpu_percent: Some(1.5),
            peak_rss_bytes: 10,
            final_rss_bytes: 9,
            open_fds_start: 20,
            open_fds_end: 20,
        };
        let f = figures(&start, &end, &w, Duration::from_secs(10), 90.0);
        assert_eq!(f.messages_per_s, Some(100.0));
        assert_eq!(f.signals_per_s, Some(10.0));
        assert_eq!(f.dropped_events, Some(3));
        let t = f.task_latency.unwrap();
        // 95 of 100 new observations ≤ 10 µs: p50 and p95 ≤ 10 µs, p99 in +Inf → 10 µs bound.
        assert_eq!((t.p50, t.p95), (1e-5, 1e-5));
        assert_eq!(f.binance_ws_latency, None);
        assert_eq!(f.bot_cpu_percent, Some(1.5));
        let md = markdown(&BenchReport {
            schema_version: SCHEMA_VERSION,
            machine: MachineInfo {
                cpu_model: "X".into(),
                cores: 2,
                kernel: "k".into(),
                load_average: Some([1.0, 2.0, 3.0]),
            },
            git_revision: "abc".into(),
            scenario: scenario(3, 2, 1, 0).info(),
            figures: f,
            samples: vec![],
            latency_source: None,
        });
        assert!(md.contains("| messages/s processed | 100 |"), "{md}");
        assert!(md.contains("load average at the end 1.00 2.00 3.00"), "{md}");
    }
}
