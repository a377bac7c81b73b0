//! Benchmark scenario files (`bench/{seed,burst,wide,stress}.toml`): how many symbols, how fast
//! the simulator streams market data for each, which strategies trade them, and for how long.
//!
//! ```toml
//! name = "seed"
//! symbols = 3
//! md_rate_per_symbol = 100   # depth + trade messages per second per symbol
//! duration_s = 60            # measured seconds (`--duration` overrides)
//! warmup_s = 5               # discarded before measuring
//! [strategy_mix]             # symbols per strategy kind; must add up to `symbols`
//! market_maker = 2
//! imbalance_taker = 1
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::report::ScenarioInfo;

/// A parsed, validated scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, copied into the report.
    pub name: String,
    /// Number of simulated symbols.
    pub symbols: u32,
    /// Market-data messages per second per symbol.
    pub md_rate_per_symbol: u32,
    /// Measured seconds.
    pub duration_s: u32,
    /// Warm-up seconds, not measured (connections, snapshots, allocator warm-up).
    pub warmup_s: u32,
    /// How many symbols run each strategy kind.
    pub strategy_mix: StrategyMix,
}

/// Symbols per strategy kind (the engine's `kind` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyMix {
    /// Symbols quoted by `market_maker`.
    #[serde(default)]
    pub market_maker: u32,
    /// Symbols traded by `imbalance_taker`.
    #[serde(default)]
    pub imbalance_taker: u32,
    /// Symbols with the `passive` strategy (market data only, no orders).
    #[serde(default)]
    pub passive: u32,
}

/// Largest symbol count a scenario may ask for (the simulator's symbol table is finite and a
/// typo like `symbols = 30000` should not exhaust the machine).
pub const MAX_SYMBOLS: u32 = 1_000;

/// Why a scenario file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("reading scenario {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML or wrong shape.
    #[error("scenario {path} is invalid")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error (names the field).
        #[source]
        source: toml::de::Error,
    },
    /// Parsed but inconsistent.
    #[error("scenario {path}: {what}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

impl Scenario {
    /// Parses and validates a scenario text; `path` only labels errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ScenarioError> {
        let s: Scenario = toml::from_str(text)
            .map_err(|source| ScenarioError::Parse { path: path.to_owned(), source })?;
        let invalid = |what: String| ScenarioError::Invalid { path: path.to_owned(), what };
        if s.name.trim().is_empty() {
            return Err(invalid("name is empty".into()));
        }
        if s.symbols == 0 || s.symbols > MAX_SYMBOLS {
            return Err(invalid(format!("symbols = {} (must be 1..={MAX_SYMBOLS})", s.symbols)));
        }
        if s.md_rate_per_symbol == 0 {
            return Err(invalid("md_rate_per_symbol must be > 0".into()));
        }
        if s.duration_s == 0 {
            return Err(invalid("duration_s must be > 0".into()));
        }
        let m = s.strategy_mix;
        let total = u64::from(m.market_maker) + u64::from(m.imbalance_taker) + u64::from(m.passive);
        if total != u64::from(s.symbols) {
            return Err(invalid(format!(
                "strategy_mix covers {total} symbols but symbols = {}",
                s.symbols
            )));
        }
        Ok(s)
    }

    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScenarioError::Io { path: path.to_owned(), source })?;
        Self::from_toml(&text, path)
    }

    /// Total market-data messages per second the simulator offers.
    pub fn total_md_rate(&self) -> u64 {
        u64::from(self.symbols) * u64::from(self.md_rate_per_symbol)
    }

    /// The report's copy of this scenario.
    pub fn info(&self) -> ScenarioInfo {
        ScenarioInfo {
            name: self.name.clone(),
            symbols: self.symbols,
            md_rate_per_symbol: self.md_rate_per_symbol,
            duration_s: f64::from(self.duration_s),
            warmup_s: f64::from(self.warmup_s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"
        name = "seed"
        symbols = 3
        md_rate_per_symbol = 100
        duration_s = 60
        warmup_s = 5
        [strategy_mix]
        market_maker = 2
        imbalance_taker = 1
    "#;

    #[test]
    fn parses_seed() {
        let s = Scenario::from_toml(SEED, Path::new("seed.toml")).unwrap();
        assert_eq!(s.symbols, 3);
        assert_eq!(s.strategy_mix, StrategyMix { market_maker: 2, imbalance_taker: 1, passive: 0 });
        assert_eq!(s.total_md_rate(), 300);
        assert_eq!(s.info().duration_s, 60.0);
    }

    #[test]
    fn invalid_scenarios_table() {
        let cases: &[(&str, &str, &str)] = &[
            // TC0: zero symbols.
            ("symbols = 3", "symbols = 0", "symbols = 0"),
            // TC1: too many symbols.
            ("symbols = 3", "symbols = 5000", "must be 1..=1000"),
            // TC2: mix does not cover the symbols.
            ("imbalance_taker = 1", "imbalance_taker = 2", "covers 4 symbols"),
            // TC3: zero duration.
            ("duration_s = 60", "duration_s = 0", "duration_s must be > 0"),
            // TC4: zero rate.
            ("md_rate_per_symbol = 100", "md_rate_per_symbol = 0", "md_rate_per_symbol"),
            // TC5: unknown strategy kind is a parse error naming it.
            ("imbalance_taker = 1", "momentum = 1", "momentum"),
            // TC6: wrong type.
            ("warmup_s = 5", "warmup_s = \"5\"", "warmup_s"),
        ];
        for (from, to, want) in cases {
            let text = SEED.replace(from, to);
            let err = Scenario::from_toml(&text, Path::new("x.toml")).unwrap_err();
            let full = format!(
                "{err}: {}",
                std::error::Error::source(&err).map(|s| s.to_string()).unwrap_or_default()
            );
            assert!(full.contains(want), "case {to}: {full}");
        }
    }

    #[test]
    fn committed_scenarios_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench");
        for name in ["seed", "burst", "wide", "stress"] {
            let s = Scenario::load(&dir.join(format!("{name}.toml"))).unwrap();
            assert_eq!(s.name, name);
        }
    }
}
