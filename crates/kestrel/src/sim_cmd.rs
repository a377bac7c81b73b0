//! `kestrel sim`: serves the Binance-compatible simulator (`kestrel-sim`) for humans and for
//! `kestrel run --config examples/bot-sim.toml`, printing the base URLs and the demo credentials.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use kestrel_sim::{Sim, SimConfig};

/// Arguments of `kestrel sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Simulator TOML file (symbols, accounts, limits); the built-in default market
    /// (BTCUSDT/ETHUSDT/BNBUSDT, funded demo account) when absent.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on. A fixed default port so humans and `examples/bot-sim.toml` (env = "sim") agree.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8765")]
    pub listen: String,
}

/// Runs the simulator until Ctrl-C.
pub fn run(args: &SimArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => SimConfig::from_toml_file(path)
            .with_context(|| format!("loading simulator config {}", path.display()))?,
        None => SimConfig::default_market(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async {
        let sim = Sim::start(config.clone(), &args.listen)
            .await
            .with_context(|| format!("starting the simulator on {}", args.listen))?;
        print_banner(&sim, &config).context("writing to stdout")?;
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
        tracing::info!("sim: Ctrl-C, shutting down (serverShutdown sent to clients)");
        sim.shutdown().await;
        Ok(())
    })
}

fn print_banner(sim: &kestrel_sim::SimHandle, config: &SimConfig) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "kestrel sim listening on {}", sim.local_addr())?;
    writeln!(out, "  REST       {}/api/v3/...", sim.rest_url())?;
    writeln!(
        out,
        "  streams    {}/ws/<stream>  {}/stream?streams=a/b",
        sim.ws_stream_url(),
        sim.ws_stream_url()
    )?;
    writeln!(out, "  WS API     {}", sim.ws_api_url())?;
    writeln!(
        out,
        "  control    POST {}/_sim/faults  GET {}/_sim/stats",
        sim.rest_url(),
        sim.rest_url()
    )?;
    let symbols: Vec<&str> = config.symbols.iter().map(|s| s.symbol.as_str()).collect();
    writeln!(out, "  symbols    {}", symbols.join(", "))?;
    for account in &config.accounts {
        writeln!(out, "  account {:?}", account.name)?;
        for key in &account.api_keys {
            match (&key.hmac_secret, &key.ed25519_public_key_pem) {
                (Some(secret), _) => {
                    writeln!(out, "    HMAC    api key {}", key.api_key)?;
                    writeln!(out, "            secret  {secret}")?;
                }
                (None, Some(_)) if key.api_key == kestrel_sim::config::DEMO_ED25519_API_KEY => {
                    writeln!(out, "    Ed25519 api key {}", key.api_key)?;
                    writeln!(
                        out,
                        "            private seed (hex) {}",
                        hex_seed(&kestrel_sim::config::DEMO_ED25519_SEED)
                    )?;
                }
                _ => writeln!(out, "    Ed25519 api key {}", key.api_key)?,
            }
        }
    }
    writeln!(out, "Ctrl-C to stop.")?;
    out.flush()
}

fn hex_seed(seed: &[u8]) -> String {
    seed.iter().map(|b| format!("{b:02x}")).collect()
}
