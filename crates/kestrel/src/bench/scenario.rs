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
    /// Market-data messages per second per symbol (depth + trades + bookTicker).
    pub md_rate_per_symbol: u32,
    /// Depth diffs per second per symbol; with `trades_per_s` and `book_ticker_per_s` it must
    /// add up to `md_rate_per_symbol`. Absent: half the rate (rounded up) is depth, the rest
    /// trades.
    #[serde(default)]
    pub depth_per_s: Option<u32>,
    /// Trades per second per symbol (see `depth_per_s`).
    #[serde(default)]
    pub trades_per_s: Option<u32>,
    /// `bookTicker` events per second per symbol (see `depth_per_s`; the bot subscribes to
    /// bookTicker only without a depth stream, so with depth these never reach it).
    #[serde(default)]
    pub book_ticker_per_s: Option<u32>,
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
        if s.depth_per_s.is_some() || s.trades_per_s.is_some() || s.book_ticker_per_s.is_some() {
            let (d, t, b) = s.rates();
            let sum = u64::from(d) + u64::from(t) + u64::from(b);
            if sum != u64::from(s.md_rate_per_symbol) {
                return Err(invalid(format!(
                    "depth_per_s + trades_per_s + book_ticker_per_s = {sum} but \
                     md_rate_per_symbol = {}",
                    s.md_rate_per_symbol
                )));
            }
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

    /// Per-symbol `(depth, trades, bookTicker)` messages per second.
    pub fn rates(&self) -> (u32, u32, u32) {
        if self.depth_per_s.is_none()
            && self.trades_per_s.is_none()
            && self.book_ticker_per_s.is_none()
        {
            let depth = self.md_rate_per_symbol.div_ceil(2);
            return (depth, self.md_rate_per_symbol - depth, 0);
        }
        (
            self.depth_per_s.unwrap_or(0),
            self.trades_per_s.unwrap_or(0),
            self.book_ticker_per_s.unwrap_or(0),
        )
    }

    /// The same scenario with another per-symbol rate, split in the same proportions
    /// (`--md-rate`, and the stress ramp).
    pub fn with_rate(&self, rate: u32) -> Scenario {
        let (d, t, b) = self.rates();
        let total = u64::from(d) + u64::from(t) + u64::from(b);
        let scale = |x: u32| -> u32 {
            (u64::from(x) * u64::from(rate))
                .checked_div(total)
                .map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX))
        };
        let (nd, nb) = (scale(d), scale(b));
        let nt = rate.saturating_sub(nd).saturating_sub(nb);
        Scenario {
            md_rate_per_symbol: rate,
            depth_per_s: Some(nd),
            trades_per_s: Some(nt),
            book_ticker_per_s: Some(nb),
            ..self.clone()
        }
    }

    /// The same scenario with `n` symbols, the strategy mix scaled proportionally (rounding
    /// leftovers go to `passive`, or to `market_maker` when the scenario has no passive ones).
    pub fn with_symbols(&self, n: u32) -> Scenario {
        let m = self.strategy_mix;
        let old = u64::from(self.symbols.max(1));
        let scale = |x: u32| u32::try_from(u64::from(x) * u64::from(n) / old).unwrap_or(n);
        let mut mix = StrategyMix {
            market_maker: scale(m.market_maker),
            imbalance_taker: scale(m.imbalance_taker),
            passive: scale(m.passive),
        };
        let left = n - (mix.market_maker + mix.imbalance_taker + mix.passive).min(n);
        if m.passive > 0 {
            mix.passive += left;
        } else {
            mix.market_maker += left;
        }
        Scenario { symbols: n, strategy_mix: mix, ..self.clone() }
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
            rates: Some(self.rates().into()),
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
    fn rates_split_and_rescale() {
        let s = Scenario::from_toml(SEED, Path::new("seed.toml")).unwrap();
        // TC0: no split given: half depth, half trades.
        assert_eq!(s.rates(), (50, 50, 0));
        // TC1: explicit split must add up.
        let text = SEED.replace("duration_s", "depth_per_s = 60\ntrades_per_s = 40\nduration_s");
        assert_eq!(Scenario::from_toml(&text, Path::new("x")).unwrap().rates(), (60, 40, 0));
        let bad = SEED.replace("duration_s", "depth_per_s = 60\ntrades_per_s = 10\nduration_s");
        let err = Scenario::from_toml(&bad, Path::new("x")).unwrap_err().to_string();
        assert!(err.contains("= 70 but md_rate_per_symbol = 100"), "{err}");
        // TC2: rescaling keeps the proportions and the total.
        let r = Scenario::from_toml(&text, Path::new("x")).unwrap().with_rate(1000);
        assert_eq!((r.md_rate_per_symbol, r.rates()), (1000, (600, 400, 0)));
    }

    #[test]
    fn with_symbols_scales_the_mix() {
        let s = Scenario::from_toml(SEED, Path::new("seed.toml")).unwrap();
        // TC0: 3 → 10 symbols: 2/3 market makers (6), 1/3 takers (3), leftover to market makers.
        let w = s.with_symbols(10);
        assert_eq!(w.strategy_mix, StrategyMix { market_maker: 7, imbalance_taker: 3, passive: 0 });
        // TC1: down to 1.
        let one = s.with_symbols(1);
        assert_eq!(one.strategy_mix.market_maker + one.strategy_mix.imbalance_taker, 1);
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
