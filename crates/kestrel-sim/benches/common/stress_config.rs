//! The simulator config `kestrel bench run` builds for `bench/stress.toml`, shared by the
//! benches (same symbol parameters as `crates/kestrel/src/bench/run.rs::sim_config`).

use kestrel_sim::SimConfig;

/// `symbols` pairs `S000USDT`… around 100 USDT: 0.001 ticks and steps, a ±3-tick walk per depth
/// step, 10 background levels a side of ~50, background trades of 0.5, no random tape trades.
pub fn stress_config(symbols: u32) -> SimConfig {
    let mut cfg = SimConfig::default_market();
    let template = cfg.symbols[0].clone();
    cfg.symbols = (0..symbols)
        .map(|i| {
            let mut c = template.clone();
            c.symbol = format!("S{i:03}USDT");
            c.base = format!("S{i:03}");
            c.tick_size = "0.001".into();
            c.min_price = "0.001".into();
            c.step_size = "0.001".into();
            c.min_qty = "0.001".into();
            c.initial_mid = "100.00".into();
            c.max_move_ticks = 3;
            c.half_spread_ticks = 1;
            c.levels = 10;
            c.level_qty = "50".into();
            c.trade_probability_pct = 0;
            c.trade_qty = "0.5".into();
            c
        })
        .collect();
    cfg
}
