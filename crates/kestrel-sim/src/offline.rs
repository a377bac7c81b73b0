//! [`OfflineMarket`]: the synthetic market generator without a server, for benchmarks and
//! tests: the same [`Exchange`] the server runs, stepped directly, with the stream frames it
//! publishes collected in process (no sockets, no runtime).

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::config::SimConfig;
use crate::error::SimError;
use crate::exchange::{Exchange, StreamMsg};
use crate::publish::{Interest, InterestGuard};

/// Depth levels `(price, qty)` as 1e-8 mantissas, best first.
pub type Levels = Vec<(i64, i64)>;

/// The exchange and its synthetic market, driven by hand; frames of the subscribed streams
/// are collected by [`OfflineMarket::drain`].
#[derive(Debug)]
pub struct OfflineMarket {
    /// The exchange (books, accounts, synthetic market) exactly as the server runs it.
    ex: Exchange,
    /// Receives every published market-stream frame (as one connection would).
    rx: broadcast::Receiver<StreamMsg>,
    /// The streams this "connection" subscribes to (only those are serialised).
    subs: InterestGuard,
}

impl OfflineMarket {
    /// Validates `cfg` and builds the exchange. `capacity` bounds the frames buffered between
    /// two [`OfflineMarket::drain`] calls (older frames are lost beyond it).
    pub fn new(cfg: &SimConfig, capacity: usize) -> Result<Self, SimError> {
        let valid = cfg.validate()?;
        let (market_tx, rx) = broadcast::channel(capacity.max(1));
        let (user_tx, _) = broadcast::channel(16);
        let interest = Arc::new(Interest::new(valid.symbols.len()));
        let ex = Exchange::new(&valid, market_tx, user_tx, interest.clone());
        Ok(Self { ex, rx, subs: InterestGuard::new(interest) })
    }

    /// Number of symbols (valid indices are `0..symbols()`).
    pub fn symbols(&self) -> usize {
        self.ex.symbols.len()
    }

    /// Subscribes to a `<symbol lower case>@<kind>` stream (`depth@100ms`, `depth`, `trade`,
    /// `aggTrade`, `bookTicker`), like a combined-stream client; false if the simulator has
    /// no such stream.
    pub fn subscribe(&mut self, stream: &str) -> bool {
        match self.ex.stream_key(stream) {
            Some(k) => {
                self.subs.add(k);
                true
            }
            None => false,
        }
    }

    /// Lower-case stream prefix of symbol `sym` (`s000usdt`).
    pub fn stream_prefix(&self, sym: usize) -> &str {
        &self.ex.symbols[sym].lower
    }

    /// One depth step of `sym` (random walk, background requote, the diff), as the
    /// rate-driven market does it.
    pub fn depth_step(&mut self, sym: usize, now_ms: u64) {
        self.ex.step_with(sym, now_ms, false);
    }

    /// One background market trade on `sym`, as the rate-driven market does it.
    pub fn trade(&mut self, sym: usize, now_ms: u64) {
        self.ex.market_trade(sym, now_ms);
    }

    /// The REST depth snapshot of `sym`: `(lastUpdateId, bids best first, asks best first)`,
    /// every level, as `(price, qty)` 1e-8 mantissas.
    pub fn depth_snapshot(&self, sym: usize) -> (u64, Levels, Levels) {
        let (id, b, a) = self.ex.depth(sym, usize::MAX);
        let m = |v: Vec<(kestrel_model::Price, kestrel_model::Qty)>| {
            v.into_iter().map(|(p, q)| (p.mantissa(), q.mantissa())).collect()
        };
        (id, m(b), m(a))
    }

    /// Hands every buffered frame of a subscribed stream to `f` as the combined-stream text
    /// (`{"stream":..,"data":..}`) and returns how many there were (frames lost to the buffer
    /// bound are not counted).
    pub fn drain(&mut self, mut f: impl FnMut(&str)) -> usize {
        let mut n = 0;
        loop {
            match self.rx.try_recv() {
                Ok(m) => {
                    if self.subs.has(m.key) {
                        f(m.combined.as_str());
                        n += 1;
                    }
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        n
    }
}
