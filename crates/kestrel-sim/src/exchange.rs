//! The exchange core: per-symbol books with price-time priority, accounts with free/locked
//! balances, the matching engine, and publication of market-stream and user-data events.
//!
//! Everything here is synchronous and runs under one `std::sync::Mutex` (never held across an
//! `.await`). Events are sent into bounded `broadcast` channels *while the lock is held*, so
//! every subscriber sees them in exactly the order the state changed (update ids stay monotone).
//!
//! Accounts 0–2 are internal: the background market maker (all resting liquidity that is not a
//! user's, held as a per-symbol [`Ladder`] outside the order book), the background taker (tape
//! trades and trades that fill user orders the synthetic market crosses) and the fee collector.
//! Balances are exact (`Notional`, 1e-16), so the sum of every asset over all accounts never
//! changes: trading is zero-sum and fees move, never vanish.
//!
//! # Generation cost
//!
//! The synthetic market is what limits a benchmark with many symbols, so its per-message path
//! is kept short: a depth step shifts the symbol's ladder (two arrays of ≤ `levels` entries)
//! and publishes only the levels that changed (≈ 4 × |mid move| + 2), logged once for both
//! depth streams; a background trade is an internal market order matched against the ladder
//! (no client id, no locks on the maker side); events are written as JSON by hand into the one
//! buffer each frame needs (`publish`: no serde, no `format!`, fixed-point decimals through
//! `itoa`), and a stream nobody subscribes to is not serialised at all. Hash maps use FxHash;
//! level queues are inline.
//!
//! Measured with `cargo bench -p kestrel-sim --bench generate` (the stress mix: 300 symbols,
//! one depth step + one trade per symbol per round, one thread, the `@depth@100ms` and
//! `@trade` frames drained as a client would get them): 0.8–0.9 ms per 600-frame round, about
//! 700 000 frames/s and 820 000–920 000 frames per CPU second (≈ 1.1–1.4 µs a message),
//! against 28 ms a round (21 000 frames/s) when every step cancelled and re-placed the whole
//! background ladder through the matching book and serialised through serde. Delivered over a
//! socket (`--bench throughput`, rate-driven market at 150 000 msgs/s, one combined
//! connection): all 150 000 frames/s arrive, with the simulator *and* the in-process client
//! using ≈ 45 % of one core. End to end (`kestrel bench run --scenario bench/stress.toml`,
//! simulator in its own process, quiet machine) the simulator used ≈ 20 % of one core at
//! 30 000 msgs/s, ≈ 30 % at 60 000, ≈ 40 % at 105 000 and ≈ 50 % at 150 000, and the bot
//! processed all of it (the rate driver's per-tick loop over every symbol is part of the
//! fixed cost).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use kestrel_model::{Asset, Notional, OrderCheck, OrderType, Price, Qty, Side, TimeInForce};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rustc_hash::FxHashMap as HashMap;
use smallvec::SmallVec;
use tokio::sync::broadcast;

use crate::config::{KeyMaterial, ValidConfig, ValidSymbol};
use crate::error::ApiError;
use crate::publish::{self, push_bool, push_f8, push_u64, Frame, Heads, Interest, Kind};
use crate::wire::{self, fn8, fp, fq, StpMode};

/// Index of the background market maker account.
pub(crate) const MAKER: usize = 0;
/// Index of the background taker account.
pub(crate) const TAKER: usize = 1;
/// Index of the fee collector account.
pub(crate) const FEES: usize = 2;

/// A market-stream message, serialized once and shared by every connection.
#[derive(Debug, Clone)]
pub(crate) struct StreamMsg {
    /// Which stream (symbol × kind): connections filter on it without string compares.
    pub key: publish::StreamKey,
    /// Payload for raw `/ws` connections (a slice of `combined`'s buffer).
    pub raw: Utf8Bytes,
    /// Payload wrapped as `{"stream":..,"data":..}` for combined connections.
    pub combined: Utf8Bytes,
}

/// A user-data event for one account (the bare event; the WS API wraps it per subscription).
#[derive(Debug, Clone)]
pub(crate) struct UserMsg {
    /// Account index.
    pub account: usize,
    /// Event JSON.
    pub event: Arc<str>,
}

/// Order status, Binance spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    New,
    PartiallyFilled,
    Filled,
    Canceled,
    Expired,
    ExpiredInMatch,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "NEW",
            Self::PartiallyFilled => "PARTIALLY_FILLED",
            Self::Filled => "FILLED",
            Self::Canceled => "CANCELED",
            Self::Expired => "EXPIRED",
            Self::ExpiredInMatch => "EXPIRED_IN_MATCH",
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, Self::New | Self::PartiallyFilled)
    }
}

/// One order (resting or historical).
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub id: u64,
    pub sym: usize,
    pub acct: usize,
    pub client_id: String,
    pub side: Side,
    pub kind: OrderType,
    pub tif: TimeInForce,
    /// Limit price; zero for market orders.
    pub price: Price,
    pub orig_qty: Qty,
    /// `quoteOrderQty` of a market order (zero otherwise).
    pub quote_qty: Notional,
    pub executed: Qty,
    pub cum_quote: Notional,
    pub status: Status,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub working_ms: u64,
    pub stp: StpMode,
    /// Funds still locked for this order (quote for buys, base for sells).
    pub locked: Notional,
}

impl Order {
    fn remaining(&self) -> Qty {
        self.orig_qty.saturating_sub(self.executed)
    }

    fn is_quote_market(&self) -> bool {
        self.kind == OrderType::Market && !self.quote_qty.is_zero()
    }
}

/// One fill of one order, as reported in FULL responses and myTrades.
#[derive(Debug, Clone)]
pub(crate) struct FillRec {
    pub trade_id: u64,
    pub order_id: u64,
    pub price: Price,
    pub qty: Qty,
    pub commission: Notional,
    pub commission_asset: Asset,
    pub time_ms: u64,
    pub is_buyer: bool,
    pub is_maker: bool,
}

/// A public trade (for `GET /api/v3/trades`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PublicTrade {
    pub id: u64,
    pub price: Price,
    pub qty: Qty,
    pub time_ms: u64,
    pub buyer_maker: bool,
}

/// One price level: total quantity and the order ids in time priority.
#[derive(Debug, Default)]
struct Level {
    /// Sum of the remaining quantities (what depth publishes).
    total: Qty,
    /// Order ids, oldest first; inline up to 4 (the usual case: no allocation per level).
    orders: SmallVec<[u64; 4]>,
}

/// Level changes not yet published, shared by both depth streams: one append per change;
/// each stream publishes the entries since its own last publication (deduplicated, the last
/// quantity of a level wins) and the log is cleared once both have caught up.
#[derive(Debug, Default)]
struct DepthLog {
    /// `(is_bid, price, new total)` in update-id order.
    changes: Vec<(bool, Price, Qty)>,
    /// Start of the `@depth@100ms` window in `changes`, and its first update id.
    fast_from: usize,
    fast_first: Option<u64>,
    /// Start of the `@depth` window in `changes`, and its first update id.
    slow_from: usize,
    slow_first: Option<u64>,
    /// Update id of the newest change.
    last: u64,
}

impl DepthLog {
    /// Forgets everything pending (start-up: the first snapshot already holds it).
    fn reset(&mut self) {
        *self = Self { changes: std::mem::take(&mut self.changes), ..Self::default() };
        self.changes.clear();
    }
}

/// Best bid and best ask, `(price, total qty)` each.
pub(crate) type Top = (Option<(Price, Qty)>, Option<(Price, Qty)>);

/// A depth snapshot: `(lastUpdateId, bids, asks)`, best first.
pub(crate) type DepthSnapshot = (u64, Vec<(Price, Qty)>, Vec<(Price, Qty)>);

/// Per-symbol state.
#[derive(Debug)]
pub(crate) struct SymbolState {
    pub cfg: ValidSymbol,
    /// Lower-case stream prefix.
    pub lower: String,
    bids: BTreeMap<Price, Level>,
    asks: BTreeMap<Price, Level>,
    /// Last book update id (the snapshot's `lastUpdateId`).
    pub update_id: u64,
    /// Level changes awaiting the next depth diffs.
    depth: DepthLog,
    /// Precomputed JSON fragments of this symbol's streams.
    heads: Heads,
    steps: u64,
    pub mid_ticks: i64,
    next_trade_id: u64,
    next_agg_id: u64,
    pub recent_trades: VecDeque<PublicTrade>,
    pub last_price: Option<Price>,
    last_top: Top,
    /// The background maker's liquidity, outside the order book (see [`Ladder`]).
    ladder: Ladder,
}

/// Order id standing for the background maker's [`Ladder`] in matching (real order ids start
/// at 1).
const LADDER_ID: u64 = 0;

/// The background maker's resting liquidity on one symbol, kept out of the order book: a few
/// `(price, qty)` levels a side in two short arrays, best first, so a depth step moves it with
/// a handful of array operations instead of cancelling and placing orders (the simulator's
/// market-data cost is dominated by this step). It behaves as resting liquidity of the
/// internal maker account: published depth is user orders + ladder per price; takers match it
/// at its prices, *after* user orders at the same price (as if the maker re-posted every step);
/// its fills move the maker's balances like any fill (zero-sum), without locks.
#[derive(Debug, Default)]
struct Ladder {
    /// Bid levels, highest price first; every qty > 0.
    bids: Vec<(Price, Qty)>,
    /// Ask levels, lowest price first; every qty > 0.
    asks: Vec<(Price, Qty)>,
}

impl Ladder {
    fn side(&self, side: Side) -> &Vec<(Price, Qty)> {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut Vec<(Price, Qty)> {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// The ladder's quantity at `price` on `side` (zero if none).
    fn qty_at(&self, side: Side, price: Price) -> Qty {
        self.side(side).iter().find(|(p, _)| *p == price).map_or(Qty::ZERO, |(_, q)| *q)
    }

    /// The best level of `side`.
    fn best(&self, side: Side) -> Option<(Price, Qty)> {
        self.side(side).first().copied()
    }
}

impl SymbolState {
    /// Best bid and ask `(price, total qty)` (user orders and the background ladder).
    pub fn top(&self) -> Top {
        (self.best(Side::Buy), self.best(Side::Sell))
    }

    /// Published quantity at `price` on `side`: user orders + the background ladder.
    fn total_at(&self, side: Side, price: Price) -> Qty {
        let user = match side {
            Side::Buy => self.bids.get(&price),
            Side::Sell => self.asks.get(&price),
        };
        user.map_or(Qty::ZERO, |l| l.total).saturating_add(self.ladder.qty_at(side, price))
    }

    /// Best price of `side` (bids: highest) over user orders and the ladder, with its total.
    fn best(&self, side: Side) -> Option<(Price, Qty)> {
        let user = match side {
            Side::Buy => self.bids.keys().next_back(),
            Side::Sell => self.asks.keys().next(),
        }
        .copied();
        let ladder = self.ladder.best(side).map(|(p, _)| p);
        let p = match (user, ladder) {
            (Some(u), Some(l)) => Exchange::first_for_taker(side.opposite(), u, l),
            (u, l) => u.or(l)?,
        };
        Some((p, self.total_at(side, p)))
    }

    /// The levels a taker on `side` walks, best first (no allocation).
    fn levels_for_taker(&self, side: Side) -> impl Iterator<Item = (&Price, &Level)> {
        let (asks, bids) = match side {
            Side::Buy => (Some(self.asks.iter()), None),
            Side::Sell => (None, Some(self.bids.iter().rev())),
        };
        asks.into_iter().flatten().chain(bids.into_iter().flatten())
    }

    fn tick(&self) -> Price {
        self.cfg.spec.tick_size()
    }

    fn step(&self) -> Qty {
        self.cfg.spec.step_size()
    }

    /// Reference price for filters: last trade, else mid.
    pub fn avg_price(&self) -> Price {
        self.last_price
            .unwrap_or_else(|| Price::from_mantissa(self.mid_ticks * self.tick().mantissa()))
    }
}

/// Balance of one asset.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Bal {
    pub free: Notional,
    pub locked: Notional,
}

/// One account.
#[derive(Debug)]
pub(crate) struct Account {
    pub name: String,
    pub internal: bool,
    /// Balance per asset (hashed: the internal accounts hold every asset of every symbol and
    /// each trade touches several; [`Account::sorted_balances`] for ordered output).
    pub balances: HashMap<Asset, Bal>,
    pub maker_bps: u32,
    pub taker_bps: u32,
    pub update_ms: u64,
    /// This account's fills, newest last (myTrades).
    pub trades: Vec<(usize, FillRec)>,
}

impl Account {
    /// Balances in asset order (the order responses list them in).
    pub fn sorted_balances(&self) -> Vec<(&Asset, &Bal)> {
        let mut v: Vec<_> = self.balances.iter().collect();
        v.sort_by_key(|(a, _)| **a);
        v
    }
}

/// A parsed new-order request.
#[derive(Debug, Clone)]
pub(crate) struct NewOrder {
    pub side: Side,
    pub kind: OrderType,
    pub tif: TimeInForce,
    pub price: Option<Price>,
    pub qty: Option<Qty>,
    pub quote_qty: Option<Notional>,
    pub client_id: Option<String>,
    pub stp: Option<StpMode>,
}

/// How an order is looked up.
#[derive(Debug, Clone)]
pub(crate) enum OrderRef {
    Id(u64),
    Client(String),
}

/// Counters exposed through stats.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ExCounters {
    pub orders_accepted: u64,
    pub trades: u64,
    pub market_steps: u64,
}

/// The whole exchange state.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub symbols: Vec<SymbolState>,
    pub sym_index: HashMap<String, usize>,
    /// Symbol index by lower-case stream prefix (`btcusdt`).
    stream_index: HashMap<String, usize>,
    pub accounts: Vec<Account>,
    pub keys: HashMap<String, (usize, KeyMaterial)>,
    pub orders: HashMap<u64, Order>,
    client_ids: HashMap<(usize, usize, String), u64>,
    /// Orders resting on a book, by `(account, symbol)`: open orders without scanning history.
    resting: HashMap<(usize, usize), BTreeSet<u64>>,
    next_order_id: u64,
    next_exec_id: u64,
    pub(crate) rng: StdRng,
    market_tx: broadcast::Sender<StreamMsg>,
    user_tx: broadcast::Sender<UserMsg>,
    /// Which streams have subscribers (the others are never serialised).
    interest: Arc<Interest>,
    pub counters: ExCounters,
    /// `(account, symbol)` pairs touched by the current operation (for
    /// outboundAccountPosition); a short Vec, deduplicated when published.
    touched: Vec<(usize, usize)>,
    /// Scratch for deduplicating a depth window (kept to reuse its allocation).
    depth_scratch: Vec<(bool, i64, usize)>,
    /// Scratch for the requote: the new ladder side being built.
    ladder_scratch: Vec<(Price, Qty)>,
    /// Scratch for the requote: the prices whose ladder quantity changed.
    ladder_changed: Vec<Price>,
}

fn one_e8_floor(n: Notional) -> Notional {
    Notional::from_mantissa(n.mantissa() - n.mantissa().rem_euclid(100_000_000))
}

fn bps_of(n: Notional, bps: u32) -> Notional {
    one_e8_floor(n.mul_ratio_floor(i128::from(bps), 10_000).unwrap_or(Notional::ZERO))
}

impl Exchange {
    pub fn new(
        cfg: &ValidConfig,
        market_tx: broadcast::Sender<StreamMsg>,
        user_tx: broadcast::Sender<UserMsg>,
        interest: Arc<Interest>,
    ) -> Self {
        let mut sym_index = HashMap::default();
        let mut stream_index = HashMap::default();
        let mut symbols = Vec::new();
        let mut all_assets = BTreeSet::new();
        for (i, s) in cfg.symbols.iter().enumerate() {
            sym_index.insert(s.spec.symbol.as_str().to_string(), i);
            all_assets.insert(s.spec.base);
            all_assets.insert(s.spec.quote);
            let lower = s.spec.symbol.to_stream_name();
            stream_index.insert(lower.clone(), i);
            symbols.push(SymbolState {
                cfg: s.clone(),
                heads: Heads::new(s.spec.symbol.as_str(), &lower),
                lower,
                bids: BTreeMap::new(),
                asks: BTreeMap::new(),
                update_id: 1000,
                depth: DepthLog::default(),
                steps: 0,
                mid_ticks: s.mid_ticks,
                next_trade_id: 1,
                next_agg_id: 1,
                recent_trades: VecDeque::new(),
                last_price: None,
                last_top: (None, None),
                ladder: Ladder::default(),
            });
        }
        // Internal accounts hold "infinite" funds: 1e12 of every traded asset.
        let big: Notional = Notional::from_mantissa(1_000_000_000_000i128 * 10_000_000_000_000_000);
        let internal = |name: &str, funded: bool| Account {
            name: name.into(),
            internal: true,
            balances: all_assets
                .iter()
                .map(|a| {
                    (
                        *a,
                        Bal {
                            free: if funded { big } else { Notional::ZERO },
                            locked: Notional::ZERO,
                        },
                    )
                })
                .collect(),
            maker_bps: 0,
            taker_bps: 0,
            update_ms: 0,
            trades: Vec::new(),
        };
        let mut accounts = vec![
            internal("sim-maker", true),
            internal("sim-taker", true),
            internal("sim-fees", false),
        ];
        let mut keys = HashMap::default();
        for a in &cfg.accounts {
            let idx = accounts.len();
            for (k, m) in &a.keys {
                keys.insert(k.clone(), (idx, m.clone()));
            }
            let mut balances: HashMap<Asset, Bal> =
                all_assets.iter().map(|a| (*a, Bal::default())).collect();
            for (asset, amount) in &a.balances {
                balances.entry(*asset).or_default().free = *amount;
            }
            accounts.push(Account {
                name: a.name.clone(),
                internal: false,
                balances,
                maker_bps: a.maker_fee_bps,
                taker_bps: a.taker_fee_bps,
                update_ms: 0,
                trades: Vec::new(),
            });
        }
        let mut ex = Self {
            symbols,
            sym_index,
            stream_index,
            accounts,
            keys,
            orders: HashMap::default(),
            client_ids: HashMap::default(),
            resting: HashMap::default(),
            next_order_id: 1,
            next_exec_id: 1,
            rng: StdRng::seed_from_u64(cfg.seed),
            market_tx,
            user_tx,
            interest,
            counters: ExCounters::default(),
            touched: Vec::new(),
            depth_scratch: Vec::new(),
            ladder_scratch: Vec::new(),
            ladder_changed: Vec::new(),
        };
        for s in 0..ex.symbols.len() {
            ex.requote(s, 0);
            ex.symbols[s].depth.reset();
        }
        ex
    }

    /// Looks a symbol up by its exchange spelling.
    pub fn symbol(&self, name: &str) -> Result<usize, ApiError> {
        self.sym_index.get(name).copied().ok_or_else(ApiError::invalid_symbol)
    }

    /// The key of a stream name (`btcusdt@depth@100ms`), if the simulator publishes it.
    pub fn stream_key(&self, name: &str) -> Option<publish::StreamKey> {
        let (sym, kind) = name.split_once('@')?;
        let sym = *self.stream_index.get(sym)?;
        let kind = publish::KINDS.iter().position(|k| *k == kind)?;
        Some(publish::key(sym, publish::Kind::ALL[kind]))
    }

    // ----- publication -------------------------------------------------------------------

    /// Starts a frame of `kind` on `sym` if anybody subscribes to it (else `None`: nothing
    /// is serialised).
    fn frame(&self, sym: usize, kind: Kind, hint: usize) -> Option<Frame> {
        if self.market_tx.receiver_count() == 0 || !self.interest.wanted(publish::key(sym, kind)) {
            return None;
        }
        Some(Frame::start(&self.symbols[sym].heads.stream[kind as usize], hint))
    }

    /// Sends a finished frame to every connection.
    fn publish(&self, sym: usize, kind: Kind, frame: Frame) {
        let (raw, combined) = frame.finish();
        let _ = self.market_tx.send(StreamMsg { key: publish::key(sym, kind), raw, combined });
    }

    fn publish_user(&self, account: usize, json: String) {
        if self.user_tx.receiver_count() == 0 {
            return;
        }
        let _ = self.user_tx.send(UserMsg { account, event: json.into() });
    }

    fn level_changed(&mut self, sym: usize, side: Side, price: Price) {
        let s = &mut self.symbols[sym];
        let total = s.total_at(side, price);
        s.update_id += 1;
        let id = s.update_id;
        let log = &mut s.depth;
        log.fast_first.get_or_insert(id);
        log.slow_first.get_or_insert(id);
        log.last = id;
        log.changes.push((side == Side::Buy, price, total));
    }

    /// Publishes the pending `@depth` (`slow`) or `@depth@100ms` diff of `sym`, if any change
    /// happened since that stream's last diff.
    fn flush_depth(&mut self, sym: usize, slow: bool, now: u64) {
        let kind = if slow { Kind::DepthSlow } else { Kind::DepthFast };
        let s = &mut self.symbols[sym];
        let log = &mut s.depth;
        let (from, first) = if slow {
            (std::mem::take(&mut log.slow_from), log.slow_first.take())
        } else {
            (std::mem::take(&mut log.fast_from), log.fast_first.take())
        };
        let end = log.changes.len();
        // This stream has caught up; the log empties once both have.
        if slow {
            log.slow_from = end;
        } else {
            log.fast_from = end;
        }
        let Some(first) = first else { return };
        let last = log.last;
        let wanted =
            self.market_tx.receiver_count() > 0 && self.interest.wanted(publish::key(sym, kind));
        if wanted {
            // Deduplicate: sort by (side, best first), keeping each level's last change.
            let scratch = &mut self.depth_scratch;
            scratch.clear();
            scratch.extend(log.changes[from..end].iter().enumerate().map(|(i, (bid, p, _))| {
                (!*bid, if *bid { -p.mantissa() } else { p.mantissa() }, from + i)
            }));
            scratch.sort_unstable();
            let n = scratch.len();
            let mut f = Frame::start(&s.heads.stream[kind as usize], 96 + n * 34);
            let out = &mut f.buf;
            out.push_str("{\"e\":\"depthUpdate\",\"E\":");
            push_u64(out, now);
            out.push_str(",\"s\":");
            out.push_str(&s.heads.symbol);
            out.push_str(",\"U\":");
            push_u64(out, first);
            out.push_str(",\"u\":");
            push_u64(out, last);
            out.push_str(",\"b\":[");
            let mut side_open_bid = true;
            let mut first_in_side = true;
            for (j, &(ask, _, idx)) in scratch.iter().enumerate() {
                // Several changes of one level: only the last (highest index) counts.
                if scratch.get(j + 1).is_some_and(|nx| nx.0 == ask && nx.1 == scratch[j].1) {
                    continue;
                }
                if ask && side_open_bid {
                    out.push_str("],\"a\":[");
                    side_open_bid = false;
                    first_in_side = true;
                }
                if !first_in_side {
                    out.push(',');
                }
                first_in_side = false;
                let (_, p, q) = log.changes[idx];
                out.push('[');
                push_f8(out, p.mantissa());
                out.push(',');
                push_f8(out, q.mantissa());
                out.push(']');
            }
            if side_open_bid {
                out.push_str("],\"a\":[");
            }
            out.push_str("]}");
            self.publish(sym, kind, f);
        }
        let log = &mut self.symbols[sym].depth;
        if log.fast_from == log.changes.len() && log.slow_from == log.changes.len() {
            log.changes.clear();
            log.fast_from = 0;
            log.slow_from = 0;
        }
    }

    /// Publishes both pending depth diffs now (used before a gap and by `flush`).
    pub fn flush_all_depth(&mut self, sym: usize, now: u64) {
        self.flush_depth(sym, false, now);
        self.flush_depth(sym, true, now);
    }

    fn publish_book_ticker(&mut self, sym: usize) {
        let top = self.symbols[sym].top();
        if top == self.symbols[sym].last_top {
            return;
        }
        self.symbols[sym].last_top = top;
        let Some(mut f) = self.frame(sym, Kind::BookTicker, 128) else { return };
        let s = &self.symbols[sym];
        let (b, bq) = top.0.map_or((Price::ZERO, Qty::ZERO), |x| x);
        let (a, aq) = top.1.map_or((Price::ZERO, Qty::ZERO), |x| x);
        let out = &mut f.buf;
        out.push_str("{\"u\":");
        push_u64(out, s.update_id);
        out.push_str(",\"s\":");
        out.push_str(&s.heads.symbol);
        for (k, v) in
            [("b", b.mantissa()), ("B", bq.mantissa()), ("a", a.mantissa()), ("A", aq.mantissa())]
        {
            out.push_str(",\"");
            out.push_str(k);
            out.push_str("\":");
            push_f8(out, v);
        }
        out.push('}');
        self.publish(sym, Kind::BookTicker, f);
    }

    fn exec_report(
        &mut self,
        o: &Order,
        x: &'static str,
        fill: Option<(&FillRec, bool)>,
        cancel_cid: Option<&str>,
        now: u64,
    ) {
        if self.accounts[o.acct].internal {
            return;
        }
        let exec_id = self.next_exec_id;
        self.next_exec_id += 1;
        let s = &self.symbols[o.sym];
        let (c, cc) = match cancel_cid {
            Some(cid) => (cid.to_string(), o.client_id.clone()),
            None => (o.client_id.clone(), String::new()),
        };
        let ev = wire::ExecutionReportWire {
            e: "executionReport",
            event_time: now,
            s: s.cfg.spec.symbol.as_str().to_string(),
            c,
            side: o.side.as_str(),
            o: o.kind.as_str(),
            f: o.tif.as_str(),
            q: fq(o.orig_qty),
            p: fp(o.price),
            stop_price: fp(Price::ZERO),
            iceberg: fq(Qty::ZERO),
            g: -1,
            orig_client_id: cc,
            x,
            status: o.status.as_str(),
            r: "NONE",
            i: o.id,
            l: fq(fill.map_or(Qty::ZERO, |f| f.0.qty)),
            z: fq(o.executed),
            last_price: fp(fill.map_or(Price::ZERO, |f| f.0.price)),
            n: fill.map_or_else(|| "0".to_string(), |f| fn8(f.0.commission)),
            commission_asset: fill.map(|f| f.0.commission_asset.as_str().to_string()),
            transaction_time: now,
            t: fill.map_or(-1, |f| i64::try_from(f.0.trade_id).unwrap_or(-1)),
            v: None,
            exec_id,
            w: o.status.is_open() && o.working_ms != 0,
            m: fill.is_some_and(|f| f.1),
            ignore: false,
            created: o.created_ms,
            cum_quote: fn8(o.cum_quote),
            last_quote: fn8(fill.map_or(Notional::ZERO, |f| Notional::of(f.0.price, f.0.qty))),
            quote_order_qty: fn8(o.quote_qty),
            working_time: o.working_ms,
            stp: o.stp.as_str(),
        };
        let json = serde_json::to_string(&ev).unwrap_or_default();
        self.publish_user(o.acct, json);
    }

    fn publish_positions(&mut self, now: u64) {
        if self.touched.is_empty() {
            return;
        }
        let mut touched = std::mem::take(&mut self.touched);
        touched.retain(|(acct, _)| !self.accounts[*acct].internal);
        let mut by_acct: BTreeMap<usize, BTreeSet<Asset>> = BTreeMap::new();
        for &(acct, sym) in &touched {
            let spec = &self.symbols[sym].cfg.spec;
            let e = by_acct.entry(acct).or_default();
            e.insert(spec.base);
            e.insert(spec.quote);
        }
        for (acct, assets) in by_acct {
            if self.accounts[acct].internal {
                continue;
            }
            self.accounts[acct].update_ms = now;
            let a = &self.accounts[acct];
            let ev = wire::AccountPositionWire {
                e: "outboundAccountPosition",
                event_time: now,
                u: now,
                balances: assets
                    .iter()
                    .map(|asset| {
                        let b = a.balances.get(asset).copied().unwrap_or_default();
                        wire::PositionBalanceWire {
                            a: asset.as_str().to_string(),
                            f: fn8(b.free),
                            l: fn8(b.locked),
                        }
                    })
                    .collect(),
            };
            let json = serde_json::to_string(&ev).unwrap_or_default();
            self.publish_user(acct, json);
        }
        // Keep the allocation for the next operation.
        touched.clear();
        self.touched = touched;
    }

    /// Finishes a public operation on `sym`: bookTicker and account positions.
    fn finish(&mut self, sym: usize, now: u64) {
        self.publish_book_ticker(sym);
        self.publish_positions(now);
    }

    // ----- balances ----------------------------------------------------------------------

    fn bal(&mut self, acct: usize, asset: Asset) -> &mut Bal {
        self.accounts[acct].balances.entry(asset).or_default()
    }

    fn lock(&mut self, acct: usize, asset: Asset, amount: Notional) -> Result<(), ApiError> {
        let b = self.bal(acct, asset);
        if b.free < amount {
            return Err(ApiError::insufficient_balance());
        }
        b.free = b.free.saturating_sub(amount);
        b.locked = b.locked.saturating_add(amount);
        Ok(())
    }

    fn unlock_rest(&mut self, id: u64) {
        let Some(o) = self.orders.get_mut(&id) else { return };
        let amount = std::mem::take(&mut o.locked);
        let (acct, sym, side) = (o.acct, o.sym, o.side);
        let spec = &self.symbols[sym].cfg.spec;
        let asset = if side == Side::Buy { spec.quote } else { spec.base };
        let b = self.bal(acct, asset);
        b.locked = b.locked.saturating_sub(amount);
        b.free = b.free.saturating_add(amount);
        self.touched.push((acct, sym));
    }

    // ----- book --------------------------------------------------------------------------

    fn book_side(&mut self, sym: usize, side: Side) -> &mut BTreeMap<Price, Level> {
        let s = &mut self.symbols[sym];
        match side {
            Side::Buy => &mut s.bids,
            Side::Sell => &mut s.asks,
        }
    }

    fn add_to_book(&mut self, id: u64) {
        let Some(o) = self.orders.get(&id) else { return };
        let (sym, side, price, rem, acct) = (o.sym, o.side, o.price, o.remaining(), o.acct);
        if acct != MAKER {
            self.resting.entry((acct, sym)).or_default().insert(id);
        }
        let lvl = self.book_side(sym, side).entry(price).or_default();
        lvl.total = lvl.total.saturating_add(rem);
        lvl.orders.push(id);
        self.level_changed(sym, side, price);
    }

    fn remove_from_book(&mut self, id: u64) {
        let Some(o) = self.orders.get(&id) else { return };
        let (sym, side, price, rem, acct) = (o.sym, o.side, o.price, o.remaining(), o.acct);
        if acct != MAKER {
            if let Some(set) = self.resting.get_mut(&(acct, sym)) {
                set.remove(&id);
            }
        }
        let book = self.book_side(sym, side);
        if let Some(lvl) = book.get_mut(&price) {
            if let Some(pos) = lvl.orders.iter().position(|x| *x == id) {
                lvl.orders.remove(pos);
                lvl.total = lvl.total.saturating_sub(rem);
                if lvl.orders.is_empty() {
                    book.remove(&price);
                }
                self.level_changed(sym, side, price);
            }
        }
    }

    /// The best opposite level for a taker on `side`: `(price, first order id)`.
    ///
    /// The background ladder is [`LADDER_ID`]; at one price user orders come first.
    fn best_opposite(&self, sym: usize, side: Side) -> Option<(Price, u64)> {
        let s = &self.symbols[sym];
        let lvl = match side {
            Side::Buy => s.asks.iter().next(),
            Side::Sell => s.bids.iter().next_back(),
        };
        let user = lvl.and_then(|(p, l)| l.orders.first().map(|id| (*p, *id)));
        let ladder = s.ladder.best(side.opposite()).map(|(p, _)| (p, LADDER_ID));
        match (user, ladder) {
            (Some(u), Some(l)) => {
                Some(if Self::first_for_taker(side, u.0, l.0) == u.0 { u } else { l })
            }
            (u, l) => u.or(l),
        }
    }

    /// Of two prices on the side a taker on `side` walks, the one it reaches first (a buyer:
    /// the lower ask).
    fn first_for_taker(side: Side, a: Price, b: Price) -> Price {
        match side {
            Side::Buy => a.min(b),
            Side::Sell => a.max(b),
        }
    }

    fn crosses(side: Side, limit: Price, level: Price) -> bool {
        match side {
            Side::Buy => level <= limit,
            Side::Sell => level >= limit,
        }
    }

    /// Walks the opposite side without changing anything: `(base fillable, quote cost)` up to
    /// `max_qty` base or `max_quote` quote, at prices crossing `limit`, skipping `skip_acct`.
    fn dry_walk(
        &self,
        sym: usize,
        side: Side,
        limit: Option<Price>,
        max_qty: Option<Qty>,
        max_quote: Option<Notional>,
        skip_acct: Option<usize>,
    ) -> (Qty, Notional) {
        let s = &self.symbols[sym];
        let step = s.step();
        // User levels and ladder levels merged, best first for this taker.
        let mut users = s.levels_for_taker(side).peekable();
        let mut ladder = s.ladder.side(side.opposite()).iter().peekable();
        let mut qty = Qty::ZERO;
        let mut quote = Notional::ZERO;
        loop {
            let (up, lp) = (users.peek().map(|(p, _)| **p), ladder.peek().map(|(p, _)| *p));
            let p = match (up, lp) {
                (None, None) => break,
                (Some(u), Some(l)) => Self::first_for_taker(side, u, l),
                (u, l) => u.or(l).unwrap_or(Price::ZERO),
            };
            let lvl = if up == Some(p) { users.next().map(|(_, l)| l) } else { None };
            let background = if lp == Some(p) { ladder.next().map(|(_, q)| *q) } else { None };
            let p = &p;
            if let Some(l) = limit {
                if !Self::crosses(side, l, *p) {
                    break;
                }
            }
            let user_avail = match (lvl, skip_acct) {
                (None, _) => Qty::ZERO,
                (Some(lvl), None) => lvl.total,
                (Some(lvl), Some(a)) => lvl
                    .orders
                    .iter()
                    .filter_map(|id| self.orders.get(id))
                    .filter(|o| o.acct != a)
                    .fold(Qty::ZERO, |acc, o| acc.saturating_add(o.remaining())),
            };
            let background =
                if skip_acct == Some(MAKER) { Qty::ZERO } else { background.unwrap_or(Qty::ZERO) };
            let avail = user_avail.saturating_add(background);
            let mut take = avail;
            if let Some(m) = max_qty {
                take = take.min(m.saturating_sub(qty));
            }
            if let Some(mq) = max_quote {
                let left = mq.saturating_sub(quote);
                let can = left.div_price_floor(*p).unwrap_or(Qty::ZERO).round_down_to_step(step);
                take = take.min(can);
            }
            if !take.is_positive() {
                if max_qty.is_some_and(|m| qty >= m) || max_quote.is_some() {
                    break;
                }
                continue;
            }
            qty = qty.saturating_add(take);
            quote = quote.saturating_add(Notional::of(*p, take));
        }
        (qty, quote)
    }

    // ----- orders ------------------------------------------------------------------------

    fn gen_client_id(&mut self) -> String {
        use rand::Rng;
        const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..22).map(|_| char::from(ALPHA[self.rng.gen_range(0..ALPHA.len())])).collect()
    }

    /// Open orders of `acct` on `sym`.
    pub fn open_orders(&self, acct: usize, sym: Option<usize>) -> Vec<&Order> {
        let mut v: Vec<&Order> = self
            .resting
            .iter()
            .filter(|((a, s), _)| *a == acct && sym.is_none_or(|x| x == *s))
            .flat_map(|(_, ids)| ids.iter().filter_map(|id| self.orders.get(id)))
            .collect();
        v.sort_by_key(|o| o.id);
        v
    }

    /// Validates a new order without placing it (`order/test`): filters and balance.
    pub fn test_order(&self, acct: usize, sym: usize, o: &NewOrder) -> Result<(), ApiError> {
        self.pre_checks(acct, sym, o, false).map(|_| ())
    }

    /// Filter, maker and balance checks; returns the amount to lock.
    fn pre_checks(
        &self,
        acct: usize,
        sym: usize,
        o: &NewOrder,
        internal: bool,
    ) -> Result<Notional, ApiError> {
        let s = &self.symbols[sym];
        let spec = &s.cfg.spec;
        if !internal {
            let open = u32::try_from(self.open_orders(acct, Some(sym)).len()).unwrap_or(u32::MAX);
            spec.check(&OrderCheck {
                side: o.side,
                kind: o.kind,
                price: o.price,
                qty: o.qty,
                quote_qty: o.quote_qty,
                avg_price: Some(s.avg_price()),
                open_orders: open,
            })
            .map_err(|v| ApiError::filter(v.filter_name()))?;
        }
        if o.kind == OrderType::LimitMaker {
            if let (Some(p), Some((best, _))) = (o.price, self.best_opposite(sym, o.side)) {
                if Self::crosses(o.side, p, best) {
                    return Err(ApiError::bad(-2010, "Order would immediately match and take."));
                }
            }
        }
        let lock = match (o.side, o.kind) {
            (Side::Buy, OrderType::Market) => match o.quote_qty {
                Some(q) => q,
                None => self.dry_walk(sym, Side::Buy, None, o.qty, None, None).1,
            },
            (Side::Buy, _) => {
                Notional::of(o.price.unwrap_or(Price::ZERO), o.qty.unwrap_or(Qty::ZERO))
            }
            (Side::Sell, OrderType::Market) => match o.quote_qty {
                Some(q) => {
                    self.dry_walk(sym, Side::Sell, None, None, Some(q), None).0.to_notional()
                }
                None => o.qty.unwrap_or(Qty::ZERO).to_notional(),
            },
            (Side::Sell, _) => o.qty.unwrap_or(Qty::ZERO).to_notional(),
        };
        let asset = if o.side == Side::Buy { spec.quote } else { spec.base };
        let free = self.accounts[acct].balances.get(&asset).map_or(Notional::ZERO, |b| b.free);
        if free < lock {
            return Err(ApiError::insufficient_balance());
        }
        Ok(lock)
    }

    /// Places an order: checks, locks funds, matches, rests or expires. Returns the order id and
    /// the taker fills.
    pub fn place(
        &mut self,
        acct: usize,
        sym: usize,
        o: NewOrder,
        now: u64,
    ) -> Result<(u64, Vec<FillRec>), ApiError> {
        let internal = self.accounts[acct].internal;
        // Internal orders are never looked up by client id nor reported: no id to make.
        let cid = match &o.client_id {
            Some(c) => c.clone(),
            None if internal => String::new(),
            None => self.gen_client_id(),
        };
        if !internal {
            if let Some(old) = self.client_ids.get(&(acct, sym, cid.clone())) {
                if self.orders.get(old).is_some_and(|x| x.status.is_open()) {
                    return Err(ApiError::bad(-2010, "Duplicate order sent."));
                }
            }
        }
        let lock = self.pre_checks(acct, sym, &o, internal)?;
        let spec = self.symbols[sym].cfg.spec.clone();
        let lock_asset = if o.side == Side::Buy { spec.quote } else { spec.base };
        self.lock(acct, lock_asset, lock)?;
        let id = self.next_order_id;
        self.next_order_id += 1;
        let order = Order {
            id,
            sym,
            acct,
            client_id: cid.clone(),
            side: o.side,
            kind: o.kind,
            tif: o.tif,
            price: if o.kind == OrderType::Market {
                Price::ZERO
            } else {
                o.price.unwrap_or(Price::ZERO)
            },
            orig_qty: o.qty.unwrap_or(Qty::ZERO),
            quote_qty: o.quote_qty.unwrap_or(Notional::ZERO),
            executed: Qty::ZERO,
            cum_quote: Notional::ZERO,
            status: Status::New,
            created_ms: now,
            updated_ms: now,
            working_ms: 0,
            stp: o.stp.unwrap_or(self.symbols[sym].cfg.stp),
            locked: lock,
        };
        if !internal {
            self.client_ids.insert((acct, sym, cid), id);
            self.counters.orders_accepted += 1;
        }
        self.orders.insert(id, order.clone());
        self.touched.push((acct, sym));
        self.exec_report(&order, "NEW", None, None, now);

        let limit = if o.kind == OrderType::Market { None } else { o.price };
        // FOK: everything or nothing.
        let mut kill = false;
        if o.tif == TimeInForce::Fok && o.kind == OrderType::Limit {
            let skip = (order.stp != StpMode::None).then_some(acct);
            let (fillable, _) = self.dry_walk(sym, o.side, limit, Some(order.orig_qty), None, skip);
            kill = fillable < order.orig_qty;
        }
        let mut fills = Vec::new();
        let mut stp_expired = false;
        if !kill {
            stp_expired = self.match_order(id, limit, now, &mut fills);
        }
        // Market orders by quote amount report what they bought as origQty.
        if let Some(ord) = self.orders.get_mut(&id) {
            if ord.is_quote_market() {
                ord.orig_qty = ord.executed;
            }
        }
        let Some((remaining, kind, tif, status)) =
            self.orders.get(&id).map(|x| (x.remaining(), x.kind, x.tif, x.status))
        else {
            return Err(ApiError::unknown("order vanished during matching"));
        };
        let rests = !stp_expired
            && !kill
            && kind != OrderType::Market
            && tif == TimeInForce::Gtc
            && remaining.is_positive();
        if rests {
            if let Some(ord) = self.orders.get_mut(&id) {
                ord.working_ms = now;
            }
            self.add_to_book(id);
        } else {
            if status.is_open() {
                if let Some(ord) = self.orders.get_mut(&id) {
                    ord.status = if stp_expired { Status::ExpiredInMatch } else { Status::Expired };
                    ord.updated_ms = now;
                    if ord.working_ms == 0 {
                        ord.working_ms = now;
                    }
                }
                if let Some(ord) = self.orders.get(&id).cloned() {
                    self.exec_report(&ord, "EXPIRED", None, None, now);
                }
            } else if let Some(ord) = self.orders.get_mut(&id) {
                if ord.working_ms == 0 {
                    ord.working_ms = now;
                }
            }
            self.unlock_rest(id);
            if internal {
                self.orders.remove(&id);
            }
        }
        self.finish(sym, now);
        Ok((id, fills))
    }

    /// The matching loop. Returns true if self-trade prevention expired the taker.
    fn match_order(
        &mut self,
        id: u64,
        limit: Option<Price>,
        now: u64,
        fills: &mut Vec<FillRec>,
    ) -> bool {
        let Some(t) = self.orders.get(&id) else { return false };
        let (sym, side, acct, stp, quote_mode) =
            (t.sym, t.side, t.acct, t.stp, t.is_quote_market());
        let step = self.symbols[sym].step();
        let mut agg: Option<(Price, Qty, u64, u64)> = None;
        let mut stp_taker = false;
        while let Some(t) = self.orders.get(&id) {
            let (rem, rem_quote) = (t.remaining(), t.quote_qty.saturating_sub(t.cum_quote));
            if !quote_mode && !rem.is_positive() {
                break;
            }
            let Some((price, maker_id)) = self.best_opposite(sym, side) else { break };
            if let Some(l) = limit {
                if !Self::crosses(side, l, price) {
                    break;
                }
            }
            let (maker_acct, maker_rem) = if maker_id == LADDER_ID {
                (MAKER, self.symbols[sym].ladder.qty_at(side.opposite(), price))
            } else {
                let Some(maker) = self.orders.get(&maker_id) else { break };
                (maker.acct, maker.remaining())
            };
            if maker_acct == acct && stp != StpMode::None {
                match stp {
                    StpMode::ExpireTaker => {
                        stp_taker = true;
                        break;
                    }
                    StpMode::ExpireMaker => self.expire_in_match(maker_id, now),
                    StpMode::ExpireBoth | StpMode::None => {
                        self.expire_in_match(maker_id, now);
                        stp_taker = true;
                        break;
                    }
                }
                continue;
            }
            let q = if quote_mode {
                maker_rem.min(
                    rem_quote.div_price_floor(price).unwrap_or(Qty::ZERO).round_down_to_step(step),
                )
            } else {
                maker_rem.min(rem)
            };
            if !q.is_positive() {
                break;
            }
            let fill = self.trade(sym, id, maker_id, price, q, now);
            match &mut agg {
                Some((p, aq, _, last)) if *p == price => {
                    *aq = aq.saturating_add(q);
                    *last = fill.trade_id;
                }
                _ => {
                    if let Some(a) = agg.take() {
                        self.publish_agg(sym, side, a, now);
                    }
                    agg = Some((price, q, fill.trade_id, fill.trade_id));
                }
            }
            fills.push(fill);
        }
        if let Some(a) = agg {
            self.publish_agg(sym, side, a, now);
        }
        stp_taker
    }

    fn publish_agg(
        &mut self,
        sym: usize,
        taker_side: Side,
        (price, qty, first, last): (Price, Qty, u64, u64),
        now: u64,
    ) {
        let s = &mut self.symbols[sym];
        let a = s.next_agg_id;
        s.next_agg_id += 1;
        let Some(mut f) = self.frame(sym, Kind::AggTrade, 192) else { return };
        let s = &self.symbols[sym];
        let out = &mut f.buf;
        out.push_str("{\"e\":\"aggTrade\",\"E\":");
        push_u64(out, now);
        out.push_str(",\"s\":");
        out.push_str(&s.heads.symbol);
        out.push_str(",\"a\":");
        push_u64(out, a);
        out.push_str(",\"p\":");
        push_f8(out, price.mantissa());
        out.push_str(",\"q\":");
        push_f8(out, qty.mantissa());
        out.push_str(",\"f\":");
        push_u64(out, first);
        out.push_str(",\"l\":");
        push_u64(out, last);
        out.push_str(",\"T\":");
        push_u64(out, now);
        out.push_str(",\"m\":");
        push_bool(out, taker_side == Side::Sell);
        out.push_str(",\"M\":true}");
        self.publish(sym, Kind::AggTrade, f);
    }

    fn expire_in_match(&mut self, maker_id: u64, now: u64) {
        self.remove_from_book(maker_id);
        if let Some(m) = self.orders.get_mut(&maker_id) {
            m.status = Status::ExpiredInMatch;
            m.updated_ms = now;
        }
        self.unlock_rest(maker_id);
        if let Some(m) = self.orders.get(&maker_id).cloned() {
            self.exec_report(&m, "TRADE_PREVENTION", None, None, now);
        }
    }

    /// Executes one trade between the taker `tid` and the resting maker `mid`.
    fn trade(&mut self, sym: usize, tid: u64, mid: u64, price: Price, q: Qty, now: u64) -> FillRec {
        let spec = self.symbols[sym].cfg.spec.clone();
        let step = spec.step_size();
        let quote = Notional::of(price, q);
        let (t_side, t_acct) = self.orders.get(&tid).map_or((Side::Buy, 0), |o| (o.side, o.acct));
        let m_acct = self.orders.get(&mid).map_or(0, |o| o.acct);
        let trade_id = {
            let s = &mut self.symbols[sym];
            let t = s.next_trade_id;
            s.next_trade_id += 1;
            s.last_price = Some(price);
            s.recent_trades.push_back(PublicTrade {
                id: t,
                price,
                qty: q,
                time_ms: now,
                buyer_maker: t_side == Side::Sell,
            });
            if s.recent_trades.len() > 1000 {
                s.recent_trades.pop_front();
            }
            t
        };
        self.counters.trades += 1;
        let fill_of = |ex: &mut Self, oid: u64, is_maker: bool| -> FillRec {
            if oid == LADDER_ID {
                // The background maker: internal, fee-free, nothing locked; the trade moves
                // its free balances.
                let is_buyer = t_side == Side::Sell;
                let (pay, pay_amt, get, get_amt) = if is_buyer {
                    (spec.quote, quote, spec.base, q.to_notional())
                } else {
                    (spec.base, q.to_notional(), spec.quote, quote)
                };
                let b = ex.bal(MAKER, pay);
                b.free = b.free.saturating_sub(pay_amt);
                let b = ex.bal(MAKER, get);
                b.free = b.free.saturating_add(get_amt);
                return FillRec {
                    trade_id,
                    order_id: oid,
                    price,
                    qty: q,
                    commission: Notional::ZERO,
                    commission_asset: if is_buyer { spec.base } else { spec.quote },
                    time_ms: now,
                    is_buyer,
                    is_maker,
                };
            }
            let Some(o) = ex.orders.get(&oid).cloned() else {
                return FillRec {
                    trade_id,
                    order_id: oid,
                    price,
                    qty: q,
                    commission: Notional::ZERO,
                    commission_asset: spec.quote,
                    time_ms: now,
                    is_buyer: false,
                    is_maker,
                };
            };
            let acct = &ex.accounts[o.acct];
            let bps = if is_maker { acct.maker_bps } else { acct.taker_bps };
            let is_buyer = o.side == Side::Buy;
            let (fee, fee_asset) = if is_buyer {
                (bps_of(q.to_notional(), bps), spec.base)
            } else {
                (bps_of(quote, bps), spec.quote)
            };
            if is_buyer {
                let consume =
                    if o.kind == OrderType::Market { quote } else { Notional::of(o.price, q) };
                let consume = consume.min(o.locked);
                let b = ex.bal(o.acct, spec.quote);
                b.locked = b.locked.saturating_sub(consume);
                b.free = b.free.saturating_add(consume).saturating_sub(quote);
                let b = ex.bal(o.acct, spec.base);
                b.free = b.free.saturating_add(q.to_notional()).saturating_sub(fee);
                if let Some(m) = ex.orders.get_mut(&oid) {
                    m.locked = m.locked.saturating_sub(consume);
                }
            } else {
                let consume = q.to_notional().min(o.locked);
                let b = ex.bal(o.acct, spec.base);
                b.locked = b.locked.saturating_sub(consume);
                b.free = b.free.saturating_sub(q.to_notional().saturating_sub(consume));
                let b = ex.bal(o.acct, spec.quote);
                b.free = b.free.saturating_add(quote).saturating_sub(fee);
                if let Some(m) = ex.orders.get_mut(&oid) {
                    m.locked = m.locked.saturating_sub(consume);
                }
            }
            let fb = ex.bal(FEES, fee_asset);
            fb.free = fb.free.saturating_add(fee);
            ex.touched.push((o.acct, sym));
            if let Some(m) = ex.orders.get_mut(&oid) {
                m.executed = m.executed.saturating_add(q);
                m.cum_quote = m.cum_quote.saturating_add(quote);
                m.updated_ms = now;
                let more = if m.is_quote_market() {
                    m.quote_qty
                        .saturating_sub(m.cum_quote)
                        .div_price_floor(price)
                        .unwrap_or(Qty::ZERO)
                        .round_down_to_step(step)
                        .is_positive()
                } else {
                    m.remaining().is_positive()
                };
                m.status = if more { Status::PartiallyFilled } else { Status::Filled };
            }
            let rec = FillRec {
                trade_id,
                order_id: oid,
                price,
                qty: q,
                commission: fee,
                commission_asset: fee_asset,
                time_ms: now,
                is_buyer,
                is_maker,
            };
            if !ex.accounts[o.acct].internal {
                ex.accounts[o.acct].trades.push((sym, rec.clone()));
            }
            rec
        };
        // Maker first: its level shrinks (a depth change), then the taker.
        let maker_fill = fill_of(self, mid, true);
        {
            let done = self.orders.get(&mid).is_some_and(|m| !m.remaining().is_positive());
            if done {
                if let Some(set) = self.resting.get_mut(&(m_acct, sym)) {
                    set.remove(&mid);
                }
            }
            if mid == LADDER_ID {
                let side = self.symbols[sym].ladder.side_mut(t_side.opposite());
                if let Some(pos) = side.iter().position(|(p, _)| *p == price) {
                    side[pos].1 = side[pos].1.saturating_sub(q);
                    if !side[pos].1.is_positive() {
                        side.remove(pos);
                    }
                }
            } else {
                let book = self.book_side(sym, t_side.opposite());
                if let Some(lvl) = book.get_mut(&price) {
                    lvl.total = lvl.total.saturating_sub(q);
                    if done {
                        lvl.orders.retain(|x| *x != mid);
                    }
                    if lvl.orders.is_empty() {
                        book.remove(&price);
                    }
                }
            }
            self.level_changed(sym, t_side.opposite(), price);
        }
        let taker_fill = fill_of(self, tid, false);
        // Trade stream.
        if let Some(mut f) = self.frame(sym, Kind::Trade, 160) {
            let out = &mut f.buf;
            out.push_str("{\"e\":\"trade\",\"E\":");
            push_u64(out, now);
            out.push_str(",\"s\":");
            out.push_str(&self.symbols[sym].heads.symbol);
            out.push_str(",\"t\":");
            push_u64(out, trade_id);
            out.push_str(",\"p\":");
            push_f8(out, price.mantissa());
            out.push_str(",\"q\":");
            push_f8(out, q.mantissa());
            out.push_str(",\"T\":");
            push_u64(out, now);
            out.push_str(",\"m\":");
            push_bool(out, t_side == Side::Sell);
            out.push_str(",\"M\":true}");
            self.publish(sym, Kind::Trade, f);
        }
        // Reports.
        if let Some(m) = self.orders.get(&mid).cloned() {
            self.exec_report(&m, "TRADE", Some((&maker_fill, true)), None, now);
            if !m.status.is_open() {
                self.unlock_rest(mid);
                if self.accounts[m_acct].internal {
                    self.orders.remove(&mid);
                }
            }
        }
        if let Some(t) = self.orders.get(&tid).cloned() {
            self.exec_report(&t, "TRADE", Some((&taker_fill, false)), None, now);
        }
        let _ = t_acct;
        taker_fill
    }

    /// Finds an order of `acct` on `sym`.
    pub fn find(&self, acct: usize, sym: usize, r: &OrderRef) -> Option<&Order> {
        let id = match r {
            OrderRef::Id(id) => *id,
            OrderRef::Client(c) => *self.client_ids.get(&(acct, sym, c.clone()))?,
        };
        self.orders.get(&id).filter(|o| o.acct == acct && o.sym == sym)
    }

    /// Cancels an open order; returns its id and the cancel's client id.
    pub fn cancel(
        &mut self,
        acct: usize,
        sym: usize,
        r: &OrderRef,
        cancel_cid: Option<String>,
        now: u64,
    ) -> Result<(u64, String), ApiError> {
        let id = match self.find(acct, sym, r) {
            Some(o) if o.status.is_open() => o.id,
            _ => return Err(ApiError::cancel_unknown()),
        };
        let cid = cancel_cid.unwrap_or_else(|| self.gen_client_id());
        self.cancel_id(id, &cid, now);
        self.finish(sym, now);
        Ok((id, cid))
    }

    fn cancel_id(&mut self, id: u64, cid: &str, now: u64) {
        self.remove_from_book(id);
        if let Some(o) = self.orders.get_mut(&id) {
            o.status = Status::Canceled;
            o.updated_ms = now;
        }
        self.unlock_rest(id);
        if let Some(o) = self.orders.get(&id).cloned() {
            self.exec_report(&o, "CANCELED", None, Some(cid), now);
            if self.accounts[o.acct].internal {
                self.orders.remove(&id);
            }
        }
    }

    /// Cancels every open order of `acct` on `sym`; -2011 if there is none (as Binance).
    pub fn cancel_all(
        &mut self,
        acct: usize,
        sym: usize,
        now: u64,
    ) -> Result<Vec<(u64, String)>, ApiError> {
        let ids: Vec<u64> = self.open_orders(acct, Some(sym)).iter().map(|o| o.id).collect();
        if ids.is_empty() {
            return Err(ApiError::cancel_unknown());
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let cid = self.gen_client_id();
            self.cancel_id(id, &cid, now);
            out.push((id, cid));
        }
        self.finish(sym, now);
        Ok(out)
    }

    /// Depth snapshot: `(lastUpdateId, bids, asks)`, best first, `limit` levels per side.
    pub fn depth(&self, sym: usize, limit: usize) -> DepthSnapshot {
        let s = &self.symbols[sym];
        // User levels and the ladder, merged per price.
        let merged = |side: Side| -> BTreeMap<Price, Qty> {
            let user = match side {
                Side::Buy => &s.bids,
                Side::Sell => &s.asks,
            };
            let mut m: BTreeMap<Price, Qty> = user.iter().map(|(p, l)| (*p, l.total)).collect();
            for (p, q) in s.ladder.side(side) {
                let e = m.entry(*p).or_insert(Qty::ZERO);
                *e = e.saturating_add(*q);
            }
            m
        };
        (
            s.update_id,
            merged(Side::Buy).into_iter().rev().take(limit).collect(),
            merged(Side::Sell).into_iter().take(limit).collect(),
        )
    }

    // ----- synthetic market ----------------------------------------------------------------

    /// Moves the background maker's [`Ladder`] (`levels` prices a side, `level_gap_ticks`
    /// apart, the best `half_spread_ticks` from the mid) to the current mid. A price still on
    /// the ladder keeps its quantity, except one random level per side whose quantity is
    /// re-drawn (so every step changes the book); new prices and prices emptied by trades get 50 %–150 % of
    /// `level_qty`; a price that would cross the users' opposite best is left out. Only the
    /// levels that changed are published, so a step changes a few levels (about
    /// 4 × |move| + 2), as on a real book.
    fn requote(&mut self, sym: usize, _now: u64) {
        use rand::Rng;
        let s = &self.symbols[sym];
        let tick = s.tick().mantissa();
        let (mid, half, gap, levels, base_qty, step) = (
            s.mid_ticks,
            s.cfg.half_spread_ticks,
            s.cfg.level_gap_ticks,
            s.cfg.levels,
            s.cfg.level_qty,
            s.step(),
        );
        let n = levels as usize;
        let mut fresh = std::mem::take(&mut self.ladder_scratch);
        let mut changed = std::mem::take(&mut self.ladder_changed);
        for side in [Side::Buy, Side::Sell] {
            // Both ladders are sorted best first: `ahead(a, b)` = a comes before b.
            let ahead = |a: Price, b: Price| match side {
                Side::Buy => a > b,
                Side::Sell => a < b,
            };
            let refresh = if n > 0 { self.rng.gen_range(0..n) } else { usize::MAX };
            // The users' best on the other side: the ladder never crosses it.
            let s = &self.symbols[sym];
            let user_opposite = match side {
                Side::Buy => s.asks.keys().next().copied(),
                Side::Sell => s.bids.keys().next_back().copied(),
            };
            fresh.clear();
            let mut i = 0; // walks the old ladder alongside the new prices
            for k in 0..n {
                let ticks = match side {
                    Side::Buy => mid - half - k as i64 * gap,
                    Side::Sell => mid + half + k as i64 * gap,
                };
                if ticks <= 0 {
                    continue;
                }
                let price = Price::from_mantissa(ticks * tick);
                if user_opposite.is_some_and(|best| Self::crosses(side, price, best)) {
                    continue;
                }
                let old_side = self.symbols[sym].ladder.side(side);
                while old_side.get(i).is_some_and(|(p, _)| ahead(*p, price)) {
                    i += 1;
                }
                let old = match old_side.get(i) {
                    Some((p, q)) if *p == price => *q,
                    _ => Qty::ZERO,
                };
                let qty = if old.is_positive() && k != refresh {
                    old
                } else {
                    let pct: i64 = self.rng.gen_range(50..=150);
                    let q = Qty::from_mantissa(base_qty.mantissa() / 100 * pct)
                        .round_down_to_step(step);
                    if q.is_positive() {
                        q
                    } else {
                        step
                    }
                };
                fresh.push((price, qty));
            }
            // Swap the new side in, then publish what changed (merge of the two sorted
            // ladders): dropped prices, new prices, and resized ones.
            let old = std::mem::replace(self.symbols[sym].ladder.side_mut(side), fresh);
            changed.clear();
            {
                let new = self.symbols[sym].ladder.side(side);
                let (mut a, mut b) = (old.iter().peekable(), new.iter().peekable());
                loop {
                    match (a.peek(), b.peek()) {
                        (None, None) => break,
                        (Some((op, oq)), Some((np, nq))) if op == np => {
                            if oq != nq {
                                changed.push(*op);
                            }
                            a.next();
                            b.next();
                        }
                        (Some((op, _)), Some((np, _))) if ahead(*op, *np) => {
                            changed.push(*op);
                            a.next();
                        }
                        (Some((op, _)), None) => {
                            changed.push(*op);
                            a.next();
                        }
                        (_, Some((np, _))) => {
                            changed.push(*np);
                            b.next();
                        }
                    }
                }
            }
            for p in &changed {
                self.level_changed(sym, side, *p);
            }
            fresh = old;
        }
        self.ladder_scratch = fresh;
        self.ladder_changed = changed;
    }

    /// One step of the synthetic market on `sym`: random-walk the mid, let the background taker
    /// fill user orders the new mid crosses, requote the background levels, maybe print a tape
    /// trade, then publish the 100 ms diff (and every `slow_every` steps the 1 s diff).
    pub fn step(&mut self, sym: usize, now: u64) {
        self.step_with(sym, now, true);
    }

    /// [`Exchange::step`], with the random tape trade only if `tape_trade` (the rate-driven
    /// market paces trades separately with [`Exchange::market_trade`]).
    pub fn step_with(&mut self, sym: usize, now: u64, tape_trade: bool) {
        use rand::Rng;
        self.counters.market_steps += 1;
        let (max_move, half, gap, levels) = {
            let c = &self.symbols[sym].cfg;
            (c.max_move_ticks, c.half_spread_ticks, c.level_gap_ticks, i64::from(c.levels))
        };
        let d = if max_move > 0 { self.rng.gen_range(-max_move..=max_move) } else { 0 };
        let floor = half + levels * gap + 1;
        let s = &mut self.symbols[sym];
        s.mid_ticks = (s.mid_ticks + d).max(floor);
        let tick = s.tick().mantissa();
        let best_bid = Price::from_mantissa((s.mid_ticks - half) * tick);
        let best_ask = Price::from_mantissa((s.mid_ticks + half) * tick);
        // Background taker fills user orders that the new quotes would cross.
        for (side, limit) in [(Side::Sell, best_ask), (Side::Buy, best_bid)] {
            let crossing: Qty = {
                let s = &self.symbols[sym];
                let levels = s.levels_for_taker(side);
                let mut sum = Qty::ZERO;
                for (p, lvl) in levels {
                    if !Self::crosses(side, limit, *p) {
                        break;
                    }
                    for id in &lvl.orders {
                        if let Some(o) = self.orders.get(id) {
                            if o.acct != MAKER {
                                sum = sum.saturating_add(o.remaining());
                            }
                        }
                    }
                }
                sum
            };
            if crossing.is_positive() {
                // Withdraw the background ladder first (the requote rebuilds it at the new mid).
                self.requote_clear(sym);
                let _ = self.place(
                    TAKER,
                    sym,
                    NewOrder {
                        side,
                        kind: OrderType::Limit,
                        tif: TimeInForce::Ioc,
                        price: Some(limit),
                        qty: Some(crossing),
                        quote_qty: None,
                        client_id: None,
                        stp: Some(StpMode::None),
                    },
                    now,
                );
            }
        }
        self.requote(sym, now);
        let (pct, tq) = (self.symbols[sym].cfg.trade_pct, self.symbols[sym].cfg.trade_qty);
        if tape_trade && pct > 0 && self.rng.gen_range(0..100) < pct {
            let side = if self.rng.gen_bool(0.5) { Side::Buy } else { Side::Sell };
            let _ = self.place(
                TAKER,
                sym,
                NewOrder {
                    side,
                    kind: OrderType::Market,
                    tif: TimeInForce::Gtc,
                    price: None,
                    qty: Some(tq),
                    quote_qty: None,
                    client_id: None,
                    stp: Some(StpMode::None),
                },
                now,
            );
        }
        let s = &mut self.symbols[sym];
        s.steps += 1;
        let slow = s.steps.is_multiple_of(u64::from(s.cfg.slow_every));
        self.flush_depth(sym, false, now);
        if slow {
            self.flush_depth(sym, true, now);
        }
        self.finish(sym, now);
    }

    /// One background market trade of `trade_qty` on a random side (publishes `@trade` /
    /// `@aggTrade` per level taken, the book diff with the next step, bookTicker if the top
    /// moved). Used by the rate-driven market.
    pub fn market_trade(&mut self, sym: usize, now: u64) {
        use rand::Rng;
        let tq = self.symbols[sym].cfg.trade_qty;
        let side = if self.rng.gen_bool(0.5) { Side::Buy } else { Side::Sell };
        let _ = self.place(
            TAKER,
            sym,
            NewOrder {
                side,
                kind: OrderType::Market,
                tif: TimeInForce::Gtc,
                price: None,
                qty: Some(tq),
                quote_qty: None,
                client_id: None,
                stp: Some(StpMode::None),
            },
            now,
        );
    }

    /// Publishes `sym`'s current top as a `bookTicker` even if it did not change (the
    /// rate-driven market's bookTicker cadence).
    pub fn book_ticker_now(&mut self, sym: usize) {
        self.symbols[sym].last_top = (None, None);
        self.publish_book_ticker(sym);
    }

    /// Withdraws the whole background ladder of `sym` (each level published as removed).
    fn requote_clear(&mut self, sym: usize) {
        for side in [Side::Buy, Side::Sell] {
            let old = std::mem::take(self.symbols[sym].ladder.side_mut(side));
            for (p, _) in &old {
                self.level_changed(sym, side, *p);
            }
            // Keep the allocation.
            let mut old = old;
            old.clear();
            *self.symbols[sym].ladder.side_mut(side) = old;
        }
    }

    /// Publishes pending diffs, then skips `n` update ids: the next diff's `U` jumps (gap fault).
    pub fn inject_gap(&mut self, sym: usize, n: u64, now: u64) {
        self.flush_all_depth(sym, now);
        self.symbols[sym].update_id += n;
    }

    /// Sum of every asset over every account (free + locked): constant if trading is zero-sum.
    pub fn totals(&self) -> BTreeMap<String, Notional> {
        let mut out: BTreeMap<String, Notional> = BTreeMap::new();
        for a in &self.accounts {
            for (asset, b) in &a.balances {
                let e = out.entry(asset.as_str().to_string()).or_default();
                *e = e.saturating_add(b.free).saturating_add(b.locked);
            }
        }
        out
    }
}
