//! Simulator configuration: a TOML-loadable [`SimConfig`] and its validation into typed form.

use std::collections::BTreeMap;
use std::path::Path;

use ed25519_dalek::pkcs8::DecodePublicKey;
use kestrel_model::instrument::{LotSize, NotionalFilter, PercentPriceBySide, PriceFilter};
use kestrel_model::{Asset, InstrumentSpec, Notional, Price, Qty, Symbol};
use serde::{Deserialize, Serialize};

use crate::error::SimError;

/// Seed of the demo account's Ed25519 key (printed by `kestrel sim`; a simulator-only key).
///
/// `ed25519_dalek::SigningKey::from_bytes(&DEMO_ED25519_SEED)` gives the private key whose public
/// half is registered for [`DEMO_ED25519_API_KEY`].
pub const DEMO_ED25519_SEED: [u8; 32] = *b"kestrel-sim-demo-ed25519-seed-01";
/// API key of the demo account's HMAC key.
pub const DEMO_HMAC_API_KEY: &str =
    "kestrelSimDemoHmacKey0000000000000000000000000000000000000000001";
/// Secret of the demo account's HMAC key.
pub const DEMO_HMAC_SECRET: &str =
    "kestrelSimDemoHmacSecret000000000000000000000000000000000000001";
/// API key of the demo account's Ed25519 key (usable for `session.logon`).
pub const DEMO_ED25519_API_KEY: &str =
    "kestrelSimDemoEd25519Key00000000000000000000000000000000000001";

/// Whole simulator configuration. Every interval is configurable so tests can shrink it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Seed of the synthetic market's random walk: the same seed and steps give the same market.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `true`: no background timer; the market moves only through `SimHandle::step_market`
    /// (deterministic tests). `false`: each symbol steps every `update_interval_ms`.
    #[serde(default)]
    pub manual_market: bool,
    /// If set, the server clock starts at this Unix time in ms and only moves when told
    /// (`SimHandle::set_time_ms`/`advance_time_ms`); lets tests replay the docs' signed examples.
    #[serde(default)]
    pub start_time_ms: Option<u64>,
    /// Tradeable symbols with their filters and synthetic-market parameters.
    pub symbols: Vec<SymbolConfig>,
    /// User accounts with their API keys and starting balances.
    pub accounts: Vec<AccountConfig>,
    /// REST/WS-API rate limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// WebSocket connection policy (pings, message rate, lifetime).
    #[serde(default)]
    pub ws: WsConfig,
    /// Rate-driven market for benchmarks: when set (and `manual_market` is false), one driver
    /// task paces depth diffs, trades and bookTickers for every symbol at these per-symbol
    /// rates instead of the per-symbol `update_interval_ms` timers.
    #[serde(default)]
    pub market_rates: Option<MarketRates>,
}

/// Per-symbol market-data message rates of the rate-driven market ([`SimConfig::market_rates`]).
///
/// Each rate applies to every symbol. A depth step is a full market step without its random
/// tape trade (random walk, background requote, one `@depth@100ms` diff, a `bookTicker` if the
/// top changed); a trade is one background market order (`@trade` and `@aggTrade` for each
/// level it takes); a bookTicker is the current top published unconditionally. The driver
/// catches up at most one second of backlog, so a saturated simulator sends less than asked
/// rather than bursting: the client's received count is the figure to trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketRates {
    /// Depth steps per second per symbol (each publishes one `@depth@100ms` diff).
    #[serde(default)]
    pub depth_per_s: u32,
    /// Background trades per second per symbol.
    #[serde(default)]
    pub trades_per_s: u32,
    /// Unconditional `bookTicker` events per second per symbol.
    #[serde(default)]
    pub book_ticker_per_s: u32,
    /// Driver period in ms (default 1): work owed since the last tick is done in one batch.
    #[serde(default = "default_driver_tick_ms")]
    pub tick_ms: u64,
}

fn default_driver_tick_ms() -> u64 {
    1
}

impl MarketRates {
    /// Total messages per second per symbol the rates ask for (depth + trades + bookTicker).
    pub fn per_symbol_total(&self) -> u64 {
        u64::from(self.depth_per_s)
            + u64::from(self.trades_per_s)
            + u64::from(self.book_ticker_per_s)
    }
}

fn default_seed() -> u64 {
    42
}

/// One symbol: exchange filters plus how the synthetic market moves.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SymbolConfig {
    /// Exchange symbol (`BTCUSDT`); UTF-8 allowed as on Binance.
    pub symbol: String,
    /// Base asset.
    pub base: String,
    /// Quote asset.
    pub quote: String,
    /// `PRICE_FILTER.tickSize` (decimal string).
    pub tick_size: String,
    /// `PRICE_FILTER.minPrice`.
    #[serde(default = "default_min_price")]
    pub min_price: String,
    /// `PRICE_FILTER.maxPrice`.
    #[serde(default = "default_max_price")]
    pub max_price: String,
    /// `LOT_SIZE.stepSize`.
    pub step_size: String,
    /// `LOT_SIZE.minQty`.
    pub min_qty: String,
    /// `LOT_SIZE.maxQty`.
    #[serde(default = "default_max_qty")]
    pub max_qty: String,
    /// `MARKET_LOT_SIZE.maxQty` (its minQty and stepSize are 0, as on mainnet).
    #[serde(default = "default_market_max_qty")]
    pub market_max_qty: String,
    /// `NOTIONAL.minNotional` (applies to market orders too).
    #[serde(default = "default_min_notional")]
    pub min_notional: String,
    /// `NOTIONAL.maxNotional` (not applied to market orders).
    #[serde(default = "default_max_notional")]
    pub max_notional: String,
    /// `PERCENT_PRICE_BY_SIDE` multipliers up (bid and ask); `"0"` disables the filter.
    #[serde(default = "default_mult_up")]
    pub percent_price_up: String,
    /// `PERCENT_PRICE_BY_SIDE` multipliers down (bid and ask).
    #[serde(default = "default_mult_down")]
    pub percent_price_down: String,
    /// `MAX_NUM_ORDERS`.
    #[serde(default = "default_max_num_orders")]
    pub max_num_orders: u32,
    /// Default `selfTradePreventionMode` (`NONE`, `EXPIRE_TAKER`, `EXPIRE_MAKER`, `EXPIRE_BOTH`).
    #[serde(default = "default_stp")]
    pub default_stp_mode: String,
    /// Starting mid price of the random walk (rounded to the tick).
    pub initial_mid: String,
    /// Largest mid move per step, in ticks (uniform in `[-n, n]`): the volatility knob.
    #[serde(default = "default_max_move")]
    pub max_move_ticks: u32,
    /// Distance from mid to each best quote of the background liquidity, in ticks (≥ 1).
    #[serde(default = "default_half_spread")]
    pub half_spread_ticks: u32,
    /// Background price levels per side.
    #[serde(default = "default_levels")]
    pub levels: u32,
    /// Gap between background levels, in ticks.
    #[serde(default = "default_level_gap")]
    pub level_gap_ticks: u32,
    /// Mean background quantity per level (each level gets 50 %–150 % of it).
    pub level_qty: String,
    /// Probability (percent) that a step prints a background market trade.
    #[serde(default = "default_trade_pct")]
    pub trade_probability_pct: u32,
    /// Quantity of a background market trade.
    pub trade_qty: String,
    /// Timed mode: one market step every this many ms (the `@depth@100ms` cadence).
    #[serde(default = "default_update_interval")]
    pub update_interval_ms: u64,
    /// `<sym>@depth` (1000 ms stream) publishes once every this many steps.
    #[serde(default = "default_slow_every")]
    pub depth_slow_every_steps: u32,
}

fn default_min_price() -> String {
    "0.01".into()
}
fn default_max_price() -> String {
    "1000000".into()
}
fn default_max_qty() -> String {
    "9000".into()
}
fn default_market_max_qty() -> String {
    "100".into()
}
fn default_min_notional() -> String {
    "5".into()
}
fn default_max_notional() -> String {
    "9000000".into()
}
fn default_mult_up() -> String {
    "5".into()
}
fn default_mult_down() -> String {
    "0.2".into()
}
fn default_max_num_orders() -> u32 {
    200
}
fn default_stp() -> String {
    "EXPIRE_MAKER".into()
}
fn default_max_move() -> u32 {
    2
}
fn default_half_spread() -> u32 {
    1
}
fn default_levels() -> u32 {
    20
}
fn default_level_gap() -> u32 {
    1
}
fn default_trade_pct() -> u32 {
    50
}
fn default_update_interval() -> u64 {
    100
}
fn default_slow_every() -> u32 {
    10
}

/// A user account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// Name used by `SimHandle::balances` and in logs.
    pub name: String,
    /// API keys that act for this account (HMAC and/or Ed25519).
    pub api_keys: Vec<ApiKeyConfig>,
    /// Starting free balances, asset → decimal amount.
    #[serde(default)]
    pub balances: BTreeMap<String, String>,
    /// Maker fee in basis points of the received asset (10 = 0.1 %, Binance's base tier).
    #[serde(default = "default_fee_bps")]
    pub maker_fee_bps: u32,
    /// Taker fee in basis points.
    #[serde(default = "default_fee_bps")]
    pub taker_fee_bps: u32,
}

fn default_fee_bps() -> u32 {
    10
}

/// One API key. Exactly one of `hmac_secret` / `ed25519_public_key_pem` must be set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The `X-MBX-APIKEY` / `apiKey` value.
    pub api_key: String,
    /// HMAC-SHA256 secret.
    #[serde(default)]
    pub hmac_secret: Option<String>,
    /// Ed25519 public key, PEM (`-----BEGIN PUBLIC KEY-----`), as registered on Binance.
    #[serde(default)]
    pub ed25519_public_key_pem: Option<String>,
}

/// Rate limits (SPEC.md §7). Windows are fixed and aligned to the server clock.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// `REQUEST_WEIGHT` per minute per IP.
    pub request_weight_per_minute: u32,
    /// `ORDERS` per 10 s per account.
    pub orders_per_10s: u32,
    /// `ORDERS` per day per account.
    pub orders_per_day: u32,
    /// Number of 429 answers within one minute window after which the IP is banned (418).
    pub ban_after_429s: u32,
    /// Length of a 418 ban in ms (Binance: 2 min, growing to 3 days).
    pub ban_duration_ms: u64,
    /// Largest accepted `recvWindow` in ms.
    pub max_recv_window_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            request_weight_per_minute: 6000,
            orders_per_10s: 50,
            orders_per_day: 160_000,
            ban_after_429s: 3,
            ban_duration_ms: 120_000,
            max_recv_window_ms: 60_000,
        }
    }
}

/// WebSocket policy for market streams and the WS API (SPEC.md §2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WsConfig {
    /// Server ping period (Binance: 20 s).
    pub ping_interval_ms: u64,
    /// A connection whose pong has not arrived this long after a ping is closed (Binance: 60 s).
    pub pong_timeout_ms: u64,
    /// Incoming frames per second per stream connection before it is closed (Binance: 5).
    pub max_incoming_per_sec: u32,
    /// Streams per connection (Binance: 1024).
    pub max_streams_per_connection: usize,
    /// Connection lifetime before the server closes it (Binance: 24 h).
    pub max_connection_lifetime_ms: u64,
    /// Capacity of the publish channels; a client lagging more than this is disconnected.
    pub channel_capacity: usize,
}

impl Default for WsConfig {
    fn default() -> Self {
        Self {
            ping_interval_ms: 20_000,
            pong_timeout_ms: 60_000,
            max_incoming_per_sec: 5,
            max_streams_per_connection: 1024,
            max_connection_lifetime_ms: 86_400_000,
            channel_capacity: 16_384,
        }
    }
}

impl SimConfig {
    /// Reads and parses a TOML file.
    pub fn from_toml_file(path: &Path) -> Result<Self, SimError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SimError::ReadConfig { path: path.to_path_buf(), source })?;
        Self::from_toml_str(&text)
    }

    /// Parses TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self, SimError> {
        toml::from_str(text).map_err(SimError::ParseConfig)
    }

    /// The benchmark market (`kestrel bench`, this crate's benches): [`Self::default_market`]
    /// with its symbols replaced by `symbols` identical pairs `S000USDT`, `S001USDT`, … (base
    /// `S000`…, quote USDT) around 100 USDT: 0.001 ticks and steps, a ±3-tick walk per depth
    /// step (at 10 steps/s the mid moves ~0.6 bp/s, about BTCUSDT's volatility), 10 background
    /// levels of 50 a side, background trades of 0.5 and no random tape trades. Accounts, limits
    /// and rates are left as in the default market.
    pub fn synthetic_pairs(symbols: u32) -> Self {
        let mut cfg = Self::default_market();
        let template = cfg.symbols[0].clone();
        cfg.symbols = (0..symbols)
            .map(|i| {
                let mut c = template.clone();
                c.symbol = format!("S{i:03}USDT");
                c.base = format!("S{i:03}");
                c.quote = "USDT".into();
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

    /// BTCUSDT/ETHUSDT/BNBUSDT with mainnet-like filters, a timed market (100 ms steps) and a
    /// funded demo account with an HMAC key ([`DEMO_HMAC_API_KEY`]/[`DEMO_HMAC_SECRET`]) and an
    /// Ed25519 key ([`DEMO_ED25519_API_KEY`], private seed [`DEMO_ED25519_SEED`]).
    pub fn default_market() -> Self {
        let sym =
            |symbol: &str, base: &str, tick: &str, step: &str, mid: &str, lq: &str, tq: &str| {
                SymbolConfig {
                    symbol: symbol.into(),
                    base: base.into(),
                    quote: "USDT".into(),
                    tick_size: tick.into(),
                    min_price: tick.into(),
                    max_price: default_max_price(),
                    step_size: step.into(),
                    min_qty: step.into(),
                    max_qty: default_max_qty(),
                    market_max_qty: default_market_max_qty(),
                    min_notional: default_min_notional(),
                    max_notional: default_max_notional(),
                    percent_price_up: default_mult_up(),
                    percent_price_down: default_mult_down(),
                    max_num_orders: default_max_num_orders(),
                    default_stp_mode: default_stp(),
                    initial_mid: mid.into(),
                    max_move_ticks: 3,
                    half_spread_ticks: 1,
                    levels: 20,
                    level_gap_ticks: 1,
                    level_qty: lq.into(),
                    trade_probability_pct: 60,
                    trade_qty: tq.into(),
                    update_interval_ms: 100,
                    depth_slow_every_steps: 10,
                }
            };
        let ed_pem = demo_ed25519_public_key_pem();
        Self {
            seed: default_seed(),
            manual_market: false,
            start_time_ms: None,
            symbols: vec![
                sym("BTCUSDT", "BTC", "0.01", "0.00001", "65000.00", "0.5", "0.002"),
                sym("ETHUSDT", "ETH", "0.01", "0.0001", "3500.00", "5", "0.05"),
                sym("BNBUSDT", "BNB", "0.01", "0.001", "600.00", "20", "0.5"),
            ],
            accounts: vec![AccountConfig {
                name: "demo".into(),
                api_keys: vec![
                    ApiKeyConfig {
                        api_key: DEMO_HMAC_API_KEY.into(),
                        hmac_secret: Some(DEMO_HMAC_SECRET.into()),
                        ed25519_public_key_pem: None,
                    },
                    ApiKeyConfig {
                        api_key: DEMO_ED25519_API_KEY.into(),
                        hmac_secret: None,
                        ed25519_public_key_pem: ed_pem,
                    },
                ],
                balances: [("USDT", "100000"), ("BTC", "1"), ("ETH", "10"), ("BNB", "100")]
                    .into_iter()
                    .map(|(a, v)| (a.to_string(), v.to_string()))
                    .collect(),
                maker_fee_bps: 10,
                taker_fee_bps: 10,
            }],
            limits: LimitsConfig::default(),
            ws: WsConfig::default(),
            market_rates: None,
        }
    }

    /// Validates every decimal and key into the typed form the exchange runs on.
    pub(crate) fn validate(&self) -> Result<ValidConfig, SimError> {
        if self.symbols.is_empty() {
            return Err(SimError::InvalidConfig("at least one symbol is required".into()));
        }
        let mut symbols = Vec::with_capacity(self.symbols.len());
        for s in &self.symbols {
            symbols.push(validate_symbol(s)?);
        }
        let mut accounts = Vec::with_capacity(self.accounts.len());
        for a in &self.accounts {
            let mut keys = Vec::new();
            for k in &a.api_keys {
                let kind = match (&k.hmac_secret, &k.ed25519_public_key_pem) {
                    (Some(secret), None) => KeyMaterial::Hmac(secret.as_bytes().to_vec()),
                    (None, Some(pem)) => {
                        let vk =
                            ed25519_dalek::VerifyingKey::from_public_key_pem(pem).map_err(|e| {
                                SimError::InvalidConfig(format!(
                                    "api key {}: bad Ed25519 PEM: {e}",
                                    k.api_key
                                ))
                            })?;
                        KeyMaterial::Ed25519(vk)
                    }
                    _ => {
                        return Err(SimError::InvalidConfig(format!(
                            "api key {}: set exactly one of hmac_secret, ed25519_public_key_pem",
                            k.api_key
                        )))
                    }
                };
                keys.push((k.api_key.clone(), kind));
            }
            let mut balances = Vec::new();
            for (asset, amount) in &a.balances {
                let asset = Asset::new(asset).map_err(|e| {
                    SimError::InvalidConfig(format!("account {}: asset {asset}: {e}", a.name))
                })?;
                let amount: Notional = amount.parse().map_err(|e| {
                    SimError::InvalidConfig(format!("account {}: balance {asset}: {e}", a.name))
                })?;
                balances.push((asset, amount));
            }
            if a.maker_fee_bps > 10_000 || a.taker_fee_bps > 10_000 {
                return Err(SimError::InvalidConfig(format!(
                    "account {}: fee above 100 %",
                    a.name
                )));
            }
            accounts.push(ValidAccount {
                name: a.name.clone(),
                keys,
                balances,
                maker_fee_bps: a.maker_fee_bps,
                taker_fee_bps: a.taker_fee_bps,
            });
        }
        if self.ws.channel_capacity == 0 {
            return Err(SimError::InvalidConfig("ws.channel_capacity must be > 0".into()));
        }
        if let Some(r) = &self.market_rates {
            if r.tick_ms == 0 || r.tick_ms > 1000 {
                return Err(SimError::InvalidConfig(
                    "market_rates.tick_ms must be within 1..=1000".into(),
                ));
            }
            if r.per_symbol_total() == 0 {
                return Err(SimError::InvalidConfig(
                    "market_rates: at least one of depth_per_s, trades_per_s, \
                     book_ticker_per_s must be > 0"
                        .into(),
                ));
            }
        }
        Ok(ValidConfig { seed: self.seed, symbols, accounts })
    }
}

/// The PEM public key of [`DEMO_ED25519_SEED`].
fn demo_ed25519_public_key_pem() -> Option<String> {
    use ed25519_dalek::pkcs8::EncodePublicKey;
    let sk = ed25519_dalek::SigningKey::from_bytes(&DEMO_ED25519_SEED);
    sk.verifying_key().to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF).ok()
}

fn dec<T: std::str::FromStr<Err = kestrel_model::ParseNumError>>(
    sym: &str,
    field: &str,
    v: &str,
) -> Result<T, SimError> {
    v.parse().map_err(|e| SimError::InvalidConfig(format!("symbol {sym}: {field} {v:?}: {e}")))
}

fn validate_symbol(s: &SymbolConfig) -> Result<ValidSymbol, SimError> {
    let n = s.symbol.as_str();
    let symbol =
        Symbol::new(n).map_err(|e| SimError::InvalidConfig(format!("symbol {n:?}: {e}")))?;
    let asset = |a: &str| {
        Asset::new(a).map_err(|e| SimError::InvalidConfig(format!("symbol {n}: asset {a:?}: {e}")))
    };
    let tick: Price = dec(n, "tick_size", &s.tick_size)?;
    let step: Qty = dec(n, "step_size", &s.step_size)?;
    if !tick.is_positive() || !step.is_positive() {
        return Err(SimError::InvalidConfig(format!("symbol {n}: tick and step must be > 0")));
    }
    let up: Price = dec(n, "percent_price_up", &s.percent_price_up)?;
    let down: Price = dec(n, "percent_price_down", &s.percent_price_down)?;
    let spec = InstrumentSpec {
        symbol,
        base: asset(&s.base)?,
        quote: asset(&s.quote)?,
        trading: true,
        price_filter: Some(PriceFilter {
            min_price: dec(n, "min_price", &s.min_price)?,
            max_price: dec(n, "max_price", &s.max_price)?,
            tick_size: tick,
        }),
        lot_size: Some(LotSize {
            min_qty: dec(n, "min_qty", &s.min_qty)?,
            max_qty: dec(n, "max_qty", &s.max_qty)?,
            step_size: step,
        }),
        market_lot_size: Some(LotSize {
            min_qty: Qty::ZERO,
            max_qty: dec(n, "market_max_qty", &s.market_max_qty)?,
            step_size: Qty::ZERO,
        }),
        min_notional: None,
        notional: Some(NotionalFilter {
            min_notional: dec(n, "min_notional", &s.min_notional)?,
            apply_min_to_market: true,
            max_notional: dec(n, "max_notional", &s.max_notional)?,
            apply_max_to_market: false,
            avg_price_mins: 5,
        }),
        percent_price: None,
        percent_price_by_side: if up.is_zero() {
            None
        } else {
            Some(PercentPriceBySide {
                bid_multiplier_up: up,
                bid_multiplier_down: down,
                ask_multiplier_up: up,
                ask_multiplier_down: down,
                avg_price_mins: 5,
            })
        },
        max_num_orders: Some(s.max_num_orders),
    };
    let stp = crate::wire::StpMode::parse(&s.default_stp_mode).ok_or_else(|| {
        SimError::InvalidConfig(format!(
            "symbol {n}: unknown default_stp_mode {:?}",
            s.default_stp_mode
        ))
    })?;
    let mid: Price = dec(n, "initial_mid", &s.initial_mid)?;
    let level_qty: Qty = dec(n, "level_qty", &s.level_qty)?;
    let trade_qty: Qty = dec(n, "trade_qty", &s.trade_qty)?;
    if s.half_spread_ticks == 0 || s.level_gap_ticks == 0 {
        return Err(SimError::InvalidConfig(format!(
            "symbol {n}: half_spread_ticks and level_gap_ticks must be >= 1"
        )));
    }
    if s.update_interval_ms == 0 || s.depth_slow_every_steps == 0 {
        return Err(SimError::InvalidConfig(format!(
            "symbol {n}: update_interval_ms and depth_slow_every_steps must be >= 1"
        )));
    }
    Ok(ValidSymbol {
        spec,
        stp,
        mid_ticks: mid.mantissa() / tick.mantissa(),
        max_move_ticks: i64::from(s.max_move_ticks),
        half_spread_ticks: i64::from(s.half_spread_ticks),
        levels: s.levels,
        level_gap_ticks: i64::from(s.level_gap_ticks),
        level_qty,
        trade_pct: s.trade_probability_pct.min(100),
        trade_qty,
        update_interval_ms: s.update_interval_ms,
        slow_every: s.depth_slow_every_steps,
    })
}

/// Typed symbol parameters.
#[derive(Debug, Clone)]
pub(crate) struct ValidSymbol {
    pub spec: InstrumentSpec,
    pub stp: crate::wire::StpMode,
    pub mid_ticks: i64,
    pub max_move_ticks: i64,
    pub half_spread_ticks: i64,
    pub levels: u32,
    pub level_gap_ticks: i64,
    pub level_qty: Qty,
    pub trade_pct: u32,
    pub trade_qty: Qty,
    pub update_interval_ms: u64,
    pub slow_every: u32,
}

/// Verification material of one API key.
#[derive(Clone)]
pub(crate) enum KeyMaterial {
    /// HMAC-SHA256 secret bytes.
    Hmac(Vec<u8>),
    /// Ed25519 public key.
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret.
        match self {
            Self::Hmac(_) => f.write_str("Hmac(<redacted>)"),
            Self::Ed25519(_) => f.write_str("Ed25519(<public key>)"),
        }
    }
}

/// Typed account.
#[derive(Debug, Clone)]
pub(crate) struct ValidAccount {
    pub name: String,
    pub keys: Vec<(String, KeyMaterial)>,
    pub balances: Vec<(Asset, Notional)>,
    pub maker_fee_bps: u32,
    pub taker_fee_bps: u32,
}

/// Typed configuration.
#[derive(Debug, Clone)]
pub(crate) struct ValidConfig {
    pub seed: u64,
    pub symbols: Vec<ValidSymbol>,
    pub accounts: Vec<ValidAccount>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_market_validates() {
        let c = SimConfig::default_market().validate().unwrap();
        assert_eq!(c.symbols.len(), 3);
        assert_eq!(c.accounts[0].keys.len(), 2);
    }

    #[test]
    fn toml_round_trip() {
        let c = SimConfig::default_market();
        let text = toml::to_string(&c).unwrap();
        let back = SimConfig::from_toml_str(&text).unwrap();
        assert_eq!(back.symbols.len(), 3);
        back.validate().unwrap();
    }

    #[test]
    fn example_file_loads_and_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sim.toml");
        let c = SimConfig::from_toml_file(&path).unwrap();
        let v = c.validate().unwrap();
        assert_eq!(v.symbols.len(), 3);
        assert_eq!(c.accounts[0].api_keys[0].api_key, DEMO_HMAC_API_KEY);
    }

    #[test]
    fn market_rates_parse_and_validate() {
        let base = toml::to_string(&SimConfig::default_market()).unwrap();
        // TC0: rates given: parsed, tick defaults to 1 ms.
        let text = format!("{base}\n[market_rates]\ndepth_per_s = 50\ntrades_per_s = 20\n");
        let c = SimConfig::from_toml_str(&text).unwrap();
        let r = c.market_rates.unwrap();
        assert_eq!((r.depth_per_s, r.trades_per_s, r.book_ticker_per_s, r.tick_ms), (50, 20, 0, 1));
        assert_eq!(r.per_symbol_total(), 70);
        c.validate().unwrap();
        // TC1: all rates zero: refused.
        let text = format!("{base}\n[market_rates]\ndepth_per_s = 0\n");
        let e = SimConfig::from_toml_str(&text).unwrap().validate().unwrap_err().to_string();
        assert!(e.contains("market_rates"), "{e}");
        // TC2: zero tick: refused.
        let text = format!("{base}\n[market_rates]\ndepth_per_s = 1\ntick_ms = 0\n");
        let e = SimConfig::from_toml_str(&text).unwrap().validate().unwrap_err().to_string();
        assert!(e.contains("tick_ms"), "{e}");
        // TC3: unknown field named.
        let text = format!("{base}\n[market_rates]\ndepth_hz = 1\n");
        let e = SimConfig::from_toml_str(&text).unwrap_err();
        let full = format!(
            "{e}: {}",
            std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default()
        );
        assert!(full.contains("depth_hz"), "{full}");
    }

    #[test]
    fn bad_decimal_is_reported() {
        let mut c = SimConfig::default_market();
        c.symbols[0].tick_size = "0.0x".into();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("tick_size"), "{e}");
    }
}
