//! `kestrel run --config FILE` and the admin-client subcommands' plumbing: the tokio runtime,
//! the shutdown signal (Ctrl-C / SIGTERM), and the exit path.

use std::path::Path;

use anyhow::Context;

use crate::config::Config;
use crate::runtime;

/// Builds the I/O runtime (the engine runs on its own OS thread beside it).
pub fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kestrel-io")
        .build()
        .context("starting the tokio runtime")
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `kestrel run --config FILE`: starts everything and runs until Ctrl-C/SIGTERM.
pub fn run(config_path: &Path) -> anyhow::Result<()> {
    let config = Config::load(config_path)?;
    let rt = tokio_runtime()?;
    rt.block_on(async move {
        // Register the signal handlers before start-up, so a SIGTERM that arrives while the
        // bot is starting still shuts it down cleanly instead of killing it.
        let signal = shutdown_signal();
        tokio::pin!(signal);
        let running = tokio::select! {
            biased;
            () = &mut signal => return Ok(()),
            r = runtime::start(config) => r?,
        };
        signal.await;
        running.shutdown().await
    })
}

/// Arguments of `kestrel run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The TOML config file.
    #[arg(long, short, value_name = "FILE")]
    pub config: std::path::PathBuf,
}

/// Arguments of `kestrel demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Stop by itself after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    /// Admin API and /metrics listen address.
    #[arg(long, value_name = "ADDR", default_value = crate::config::DEFAULT_ADMIN_LISTEN)]
    pub admin: std::net::SocketAddr,
}

/// `kestrel demo`.
pub fn demo(args: &DemoArgs) -> anyhow::Result<()> {
    let rt = tokio_runtime()?;
    let opts = crate::demo::DemoOptions {
        duration: args.duration.map(std::time::Duration::from_secs),
        admin: args.admin,
        status_every: std::time::Duration::from_secs(1),
    };
    rt.block_on(async move { crate::demo::run(opts, shutdown_signal()).await.map(|_| ()) })
}

/// Options shared by the admin-client subcommands.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// Admin API base URL.
    #[arg(long, value_name = "URL", default_value = crate::admin::DEFAULT_ADMIN_URL)]
    pub admin: String,
    /// Print the raw JSON answer instead of a human-readable one.
    #[arg(long)]
    pub json: bool,
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnOff {
    /// Force REST polling.
    On,
    /// Back to automatic (WebSocket when healthy).
    Off,
}

/// The admin-client subcommands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminCommand {
    /// `GET /status`.
    Status,
    /// `POST /halt`.
    Halt,
    /// `POST /resume`.
    Resume,
    /// `POST /cancel-all`.
    CancelAll,
    /// `POST /restart-ws`.
    RestartWs,
    /// `POST /fallback-rest`.
    FallbackRest(OnOff),
}

/// Runs one admin-client subcommand and prints its answer.
pub fn admin_command(cmd: AdminCommand, args: &AdminArgs) -> anyhow::Result<()> {
    use std::io::Write as _;
    let token = std::env::var(crate::secrets::ADMIN_TOKEN_ENV).ok().filter(|t| !t.is_empty());
    let (path, body) = match cmd {
        AdminCommand::Status => ("/status", None),
        AdminCommand::Halt => ("/halt", Some(serde_json::json!({}))),
        AdminCommand::Resume => ("/resume", Some(serde_json::json!({}))),
        AdminCommand::CancelAll => ("/cancel-all", Some(serde_json::json!({}))),
        AdminCommand::RestartWs => ("/restart-ws", Some(serde_json::json!({}))),
        AdminCommand::FallbackRest(v) => {
            ("/fallback-rest", Some(serde_json::json!({ "on": v == OnOff::On })))
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    let v = rt.block_on(crate::admin::call(&args.admin, path, token.as_deref(), body))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{v}").context("writing to stdout")?;
    } else if cmd == AdminCommand::Status {
        write!(out, "{}", crate::admin::render_status(&v)).context("writing to stdout")?;
    } else {
        let name = v.get("command").and_then(|c| c.as_str()).unwrap_or("command");
        let extra = match v.get("on").and_then(serde_json::Value::as_bool) {
            Some(true) => " (on)",
            Some(false) => " (off)",
            None => "",
        };
        writeln!(out, "{name}{extra}: ok").context("writing to stdout")?;
    }
    Ok(())
}
