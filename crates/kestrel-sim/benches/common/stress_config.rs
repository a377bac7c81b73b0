//! The simulator config `kestrel bench run` builds for `bench/stress.toml`, shared by the
//! benches (the same `SimConfig::synthetic_pairs` market as `crates/kestrel/src/bench/run.rs::sim_config`).

use kestrel_sim::SimConfig;

/// `symbols` pairs `S000USDT`… around 100 USDT: 0.001 ticks and steps, a ±3-tick walk per depth
/// step, 10 background levels a side of ~50, background trades of 0.5, no random tape trades.
pub fn stress_config(symbols: u32) -> SimConfig {
    SimConfig::synthetic_pairs(symbols)
}
