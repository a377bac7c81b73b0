//! The `kestrel` binary: parses the command line, sets up logging, runs one subcommand and maps
//! its error to an exit code with a one-line message (see `kestrel::exit`).
//!
//! Adding a subcommand is one variant of [`Command`] (its doc comment is the `--help` text) and
//! one arm in [`run`]; the work itself lives in the library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use kestrel::config::Config;
use kestrel::exit::{self, ExitClass};
use kestrel::run_cmd::AdminCommand;

/// kestrel: a Binance Spot trading system.
#[derive(Debug, Parser)]
#[command(name = "kestrel", version, propagate_version = true)]
struct Cli {
    /// Log filter, e.g. `info`, `debug` or `kestrel=debug,warn` (overrides RUST_LOG; default
    /// `info`). Logs go to stderr.
    #[arg(long, global = true, value_name = "FILTER")]
    log_level: Option<String>,

    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a config file and print the result (secrets show only whether they are set).
    CheckConfig(CheckConfigArgs),
    /// End-to-end benchmark (`bench run`: simulator + bot as child processes) and the CI perf
    /// gate (`bench assert`: compare a report with the baseline).
    Bench(kestrel::bench_cmd::BenchArgs),
    /// Run the bot with a config file until Ctrl-C or SIGTERM (graceful shutdown).
    Run(kestrel::run_cmd::RunArgs),
    /// Run the embedded simulator and the bot against it, with a status line every second.
    Demo(kestrel::run_cmd::DemoArgs),
    /// Serve the Binance-compatible simulator (REST, streams, WS API) until Ctrl-C.
    Sim(kestrel::sim_cmd::SimArgs),
    /// Show the running bot's status (admin API).
    Status(kestrel::run_cmd::AdminArgs),
    /// Stop placing orders (strategies keep computing).
    Halt(kestrel::run_cmd::AdminArgs),
    /// Resume trading after a halt.
    Resume(kestrel::run_cmd::AdminArgs),
    /// Cancel every open order of the bot.
    CancelAll(kestrel::run_cmd::AdminArgs),
    /// Reconnect every market-data WebSocket and resnapshot the books.
    RestartWs(kestrel::run_cmd::AdminArgs),
    /// Force market data onto REST polling (`on`) or back to automatic (`off`).
    FallbackRest {
        /// `on` or `off`.
        #[arg(value_enum)]
        state: kestrel::run_cmd::OnOff,
        #[command(flatten)]
        admin: kestrel::run_cmd::AdminArgs,
    },
}

/// Arguments of `kestrel check-config`.
#[derive(Debug, Args)]
struct CheckConfigArgs {
    /// The TOML config file.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(&e),
    };
    if let Err(e) = init_tracing(cli.log_level.as_deref()) {
        return report(&e);
    }
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

/// Runs one subcommand.
fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::CheckConfig(args) => check_config(&args),
        Command::Bench(args) => kestrel::bench_cmd::run(&args),
        Command::Run(args) => kestrel::run_cmd::run(&args.config),
        Command::Demo(args) => kestrel::run_cmd::demo(&args),
        Command::Sim(args) => kestrel::sim_cmd::run(&args),
        Command::Status(a) => kestrel::run_cmd::admin_command(AdminCommand::Status, &a),
        Command::Halt(a) => kestrel::run_cmd::admin_command(AdminCommand::Halt, &a),
        Command::Resume(a) => kestrel::run_cmd::admin_command(AdminCommand::Resume, &a),
        Command::CancelAll(a) => kestrel::run_cmd::admin_command(AdminCommand::CancelAll, &a),
        Command::RestartWs(a) => kestrel::run_cmd::admin_command(AdminCommand::RestartWs, &a),
        Command::FallbackRest { state, admin } => {
            kestrel::run_cmd::admin_command(AdminCommand::FallbackRest(state), &admin)
        }
    }
}

/// `kestrel check-config --config FILE`.
fn check_config(args: &CheckConfigArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    let mut out = std::io::stdout().lock();
    write!(out, "{config}").context("writing to stdout")?;
    writeln!(out, "config ok").context("writing to stdout")?;
    if config.credentials.is_none() && config.env != kestrel::config::ExchangeEnv::Sim {
        eprintln!(
            "kestrel: note: no API credentials set; `kestrel run` needs {} and {} (or their \
             _FILE variants)",
            kestrel::secrets::API_KEY_ENV,
            kestrel::secrets::API_SECRET_ENV
        );
    }
    Ok(())
}

/// Installs the stderr log subscriber: `--log-level` wins over `RUST_LOG`, default `info`.
fn init_tracing(flag: Option<&str>) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match flag {
        Some(f) => EnvFilter::try_new(f)
            .with_context(|| format!("--log-level {f:?} is not a valid log filter"))
            .context(ExitClass::Usage)?,
        None => match std::env::var(EnvFilter::DEFAULT_ENV) {
            Ok(v) if !v.is_empty() => EnvFilter::try_new(&v)
                .with_context(|| format!("RUST_LOG={v:?} is not a valid log filter"))
                .context(ExitClass::Usage)?,
            _ => EnvFilter::new("info"),
        },
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| anyhow::anyhow!(e))
        .context("installing the log subscriber")
}

/// Prints the error on one line and returns its class's exit code.
fn report(err: &anyhow::Error) -> ExitCode {
    tracing::debug!(error = ?err, "exiting with error");
    eprintln!("kestrel: {}", exit::one_line(err));
    ExitClass::of(err).exit_code()
}

/// `--help`/`--version` print normally and exit 0; a usage error becomes one line and exit 2.
fn clap_exit(e: &clap::Error) -> ExitCode {
    if !e.use_stderr() {
        // Help or version text: print as clap formats it.
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let rendered = e.render().to_string();
    let mut parts: Vec<&str> = Vec::new();
    for line in rendered.lines() {
        let line = line.trim();
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if !line.is_empty() {
            parts.push(line.strip_prefix("error: ").unwrap_or(line));
        }
    }
    let message =
        if parts.is_empty() { "invalid command line".to_owned() } else { parts.join(" ") };
    eprintln!("kestrel: usage error: {message} (see `kestrel --help`)");
    ExitClass::Usage.exit_code()
}
