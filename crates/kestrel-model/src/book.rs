//! Aggregated price-level order book ([`OrderBook`]) and its fixed-size, `Copy` top-of-book view
//! ([`BookTop`]) that travels to the engine without allocating.
//!
//! The book knows nothing about sequencing: the depth-sync state machine in `kestrel-binance`
//! decides when a delta may be applied and when the book is [`BookState::Stale`]. The book only
//! guarantees its own shape: both sides sorted, no zero-quantity level, no negative quantity.
//!
//! Representation (STYLE.md 2.3): one sorted `Vec<Level>` per side, best level LAST (bids
//! ascending, asks descending), binary search for lookup. Binance deltas mostly touch the top
//! levels, so an insert/remove there shifts few elements, and best-level reads and top-10 copies
//! are contiguous. It replaced a `BTreeMap` per side after `depth_decode` attributed ~40% of
//! decode+apply to `set_level`. `cargo bench -p kestrel-model --bench model -- book` on a loaded
//! 2-core box, BTreeMap → Vec medians: `apply_delta_20` 757 → 721 ns (100 levels) and
//! 1.095 → 1.020 µs (1,000 levels), i.e. within noise; `best_bid_ask` 17.2 → 5.1 ns and
//! 22.2 → 5.5 ns; `top_into` 154 → 32 ns and 173 → 25 ns.
//!
//! Deltas go in through [`OrderBook::apply_levels`], one call per side: a sorted batch located by
//! a short scan or a galloping search, quantity changes written in place, inserts and removals
//! done in one pass that moves each untouched run once (instead of one `Vec::insert`/`remove`
//! shift per level).
//! With it and the single-pass decoder, `depth_decode`'s decode+apply went from 4.0× to 1.2–1.6×
//! the time of a bare `serde_json` scan (see `kestrel-binance`'s bench).

use std::cmp::Ordering;

use crate::{Price, Qty, Symbol, UnixNanos};

/// One price level: the total resting quantity at a price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Level {
    /// Level price.
    pub price: Price,
    /// Total quantity at that price; never zero inside a book.
    pub qty: Qty,
}

impl Level {
    /// A level.
    pub const fn new(price: Price, qty: Qty) -> Self {
        Self { price, qty }
    }
}

/// Which side of a book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BookSide {
    /// Buy interest, best = highest price.
    Bid,
    /// Sell interest, best = lowest price.
    Ask,
}

/// Whether a book may be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BookState {
    /// Not (or no longer) in sync with the exchange: never trade on it.
    #[default]
    Stale,
    /// Built from a snapshot plus every delta since, without a gap.
    Synced,
}

/// Where the current book content comes from (M2: REST fallback).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BookSource {
    /// WebSocket diff depth on top of a REST snapshot (the normal mode).
    #[default]
    WebSocket,
    /// Periodic REST snapshots because the WebSocket is unhealthy.
    RestFallback,
}

/// Why a level update was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// A negative quantity can't be a resting amount.
    #[error("negative quantity {qty} at price {price}")]
    NegativeQty {
        /// Price of the offending level.
        price: Price,
        /// The negative quantity.
        qty: Qty,
    },
    /// A price of zero or below.
    #[error("non-positive price {0}")]
    NonPositivePrice(Price),
}

/// An aggregated L2 book for one symbol.
///
/// Representation is private: one sorted `Vec<Level>` per side with the BEST level at the END
/// (see the module doc for why).
#[derive(Debug, Clone)]
pub struct OrderBook {
    symbol: Symbol,
    /// Bids by ascending price, so the best (highest) bid is last and top-of-book changes shift
    /// few elements.
    bids: Vec<Level>,
    /// Asks by descending price, so the best (lowest) ask is last, for the same reason.
    asks: Vec<Level>,
    /// Reused buffer of [`OrderBook::apply_levels`] for updates that arrive unsorted.
    sorted: Vec<Level>,
    /// Reused buffer of [`OrderBook::apply_levels`]: the inserts and removals of one side.
    ops: Vec<SideOp>,
    /// Last applied update id (`lastUpdateId` of the snapshot, then `u` of each delta).
    update_id: u64,
    state: BookState,
    source: BookSource,
}

impl OrderBook {
    /// An empty, stale book.
    pub fn new(symbol: Symbol) -> Self {
        Self {
            symbol,
            bids: Vec::new(),
            asks: Vec::new(),
            sorted: Vec::new(),
            ops: Vec::new(),
            update_id: 0,
            state: BookState::Stale,
            source: BookSource::WebSocket,
        }
    }

    /// The book's symbol.
    pub fn symbol(&self) -> Symbol {
        self.symbol
    }

    /// Replaces the whole content with a snapshot and marks the book [`BookState::Synced`].
    ///
    /// Levels are applied in order with [`OrderBook::set_level`]'s rules, so a zero-quantity
    /// level is never stored (and, should a price repeat, a later zero removes it). A negative
    /// quantity or non-positive price rejects the whole snapshot and leaves the book empty and
    /// stale.
    pub fn apply_snapshot<B, A>(
        &mut self,
        update_id: u64,
        bids: B,
        asks: A,
    ) -> Result<(), BookError>
    where
        B: IntoIterator<Item = Level>,
        A: IntoIterator<Item = Level>,
    {
        self.clear();
        // Collect, validate, then sort once: inserting a best-first snapshot level by level would
        // shift the whole Vec on every insert (quadratic).
        for l in bids {
            if let Err(e) = validate(l.price, l.qty) {
                self.clear();
                return Err(e);
            }
            self.bids.push(l);
        }
        for l in asks {
            if let Err(e) = validate(l.price, l.qty) {
                self.clear();
                return Err(e);
            }
            self.asks.push(l);
        }
        normalize(&mut self.bids, BookSide::Bid);
        normalize(&mut self.asks, BookSide::Ask);
        self.update_id = update_id;
        self.state = BookState::Synced;
        Ok(())
    }

    /// Sets the absolute quantity at a price (`qty == 0` removes the level), as a Binance
    /// depth delta does. Does not change the book state or update id.
    #[inline]
    pub fn set_level(&mut self, side: BookSide, price: Price, qty: Qty) -> Result<(), BookError> {
        validate(price, qty)?;
        let levels = match side {
            BookSide::Bid => &mut self.bids,
            BookSide::Ask => &mut self.asks,
        };
        match (levels.binary_search_by(|l| storage_cmp(side, l.price, price)), qty.is_zero()) {
            (Ok(i), false) => levels[i].qty = qty,
            (Ok(i), true) => {
                levels.remove(i);
            }
            (Err(i), false) => levels.insert(i, Level::new(price, qty)),
            // removing a level that isn't there is a no-op, as on Binance
            (Err(_), true) => {}
        }
        Ok(())
    }

    /// Applies one side of a depth delta: for every level, sets the absolute quantity at its
    /// price (`qty == 0` removes it), with the same result as calling [`OrderBook::set_level`]
    /// for each level in order (a price that repeats: its last occurrence wins). Does not change
    /// the book state or update id.
    ///
    /// Every level is validated first; on an invalid one the error is returned and the book is
    /// left unchanged (where a `set_level` loop would have applied the levels before it).
    ///
    /// Faster than a `set_level` loop: the updates are walked in storage order (Binance sends
    /// them sorted, ascending or descending; anything else is first sorted in a reused buffer),
    /// each position found by a short branch-free scan, or a galloping search, from the
    /// previous one. A quantity change at an
    /// existing price — most of a delta — is written in place. Inserts and removals are collected
    /// and done afterwards in one pass that moves each run of untouched levels once, so no level
    /// is shifted more than once and a delta without inserts or removals moves nothing. No
    /// allocation after warm-up.
    pub fn apply_levels(&mut self, side: BookSide, updates: &[Level]) -> Result<(), BookError> {
        for l in updates {
            validate(l.price, l.qty)?;
        }
        match side {
            BookSide::Bid => {
                apply_batch::<false>(&mut self.bids, updates, &mut self.sorted, &mut self.ops);
            }
            BookSide::Ask => {
                apply_batch::<true>(&mut self.asks, updates, &mut self.sorted, &mut self.ops);
            }
        }
        Ok(())
    }

    /// Records the id of the last applied delta (`u`).
    #[inline]
    pub fn set_update_id(&mut self, update_id: u64) {
        self.update_id = update_id;
    }

    /// Last applied update id.
    #[inline]
    pub fn update_id(&self) -> u64 {
        self.update_id
    }

    /// Marks the book stale (gap, reconnect, overflow). Content is kept for display but must not
    /// be traded on until a new snapshot arrives.
    #[inline]
    pub fn mark_stale(&mut self) {
        self.state = BookState::Stale;
    }

    /// Current state.
    #[inline]
    pub fn state(&self) -> BookState {
        self.state
    }

    /// True when synced.
    #[inline]
    pub fn is_synced(&self) -> bool {
        self.state == BookState::Synced
    }

    /// Where the content comes from.
    #[inline]
    pub fn source(&self) -> BookSource {
        self.source
    }

    /// Records where the content comes from.
    #[inline]
    pub fn set_source(&mut self, source: BookSource) {
        self.source = source;
    }

    /// Removes every level and marks the book stale.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
        self.update_id = 0;
        self.state = BookState::Stale;
    }

    /// Highest bid.
    #[inline]
    pub fn best_bid(&self) -> Option<Level> {
        self.bids.last().copied()
    }

    /// Lowest ask.
    #[inline]
    pub fn best_ask(&self) -> Option<Level> {
        self.asks.last().copied()
    }

    /// Midpoint of best bid and ask; `None` if either side is empty.
    #[inline]
    pub fn mid(&self) -> Option<Price> {
        Some(self.best_bid()?.price.midpoint(self.best_ask()?.price))
    }

    /// Best ask minus best bid; `None` if either side is empty.
    #[inline]
    pub fn spread(&self) -> Option<Price> {
        self.best_ask()?.price.checked_sub(self.best_bid()?.price)
    }

    /// True if best bid >= best ask: impossible on a correct exchange book, so a sign of
    /// corruption (the caller should resnapshot).
    #[inline]
    pub fn is_crossed(&self) -> bool {
        match (self.best_bid(), self.best_ask()) {
            (Some(b), Some(a)) => b.price >= a.price,
            _ => false,
        }
    }

    /// Bids from best (highest) to worst.
    pub fn bids(&self) -> impl Iterator<Item = Level> + '_ {
        self.bids.iter().rev().copied()
    }

    /// Asks from best (lowest) to worst.
    pub fn asks(&self) -> impl Iterator<Item = Level> + '_ {
        self.asks.iter().rev().copied()
    }

    /// Number of bid and ask levels.
    pub fn depth(&self) -> (usize, usize) {
        (self.bids.len(), self.asks.len())
    }

    /// Fills `out` with the top [`TOP_LEVELS`] of each side and the book's state, without
    /// allocating. Timestamps are left for the caller to set.
    pub fn top_into(&self, out: &mut BookTop) {
        out.symbol = self.symbol;
        out.update_id = self.update_id;
        out.state = self.state;
        out.source = self.source;
        out.n_bids = fill(&mut out.bids, self.bids());
        out.n_asks = fill(&mut out.asks, self.asks());
    }

    /// A fresh top-of-book view (see [`OrderBook::top_into`]).
    pub fn top(&self) -> BookTop {
        let mut t = BookTop::empty(self.symbol);
        self.top_into(&mut t);
        t
    }
}

/// Rejects a level no book may hold: negative quantity or non-positive price.
#[inline]
fn validate(price: Price, qty: Qty) -> Result<(), BookError> {
    if qty.is_negative() {
        return Err(BookError::NegativeQty { price, qty });
    }
    if !price.is_positive() {
        return Err(BookError::NonPositivePrice(price));
    }
    Ok(())
}

/// Order of two prices in a side's storage: ascending for bids, descending for asks, so the best
/// level of either side is the last element.
#[inline]
fn storage_cmp(side: BookSide, a: Price, b: Price) -> Ordering {
    match side {
        BookSide::Bid => a.cmp(&b),
        BookSide::Ask => b.cmp(&a),
    }
}

/// A level's position key in a side's storage: keys ascend from the worst to the best level (the
/// price for bids, its negation for asks; prices in a book are positive, so no overflow). The
/// side is a constant so the batch apply's inner loops have no branch on it.
#[inline(always)]
fn key<const ASK: bool>(l: &Level) -> i64 {
    if ASK {
        -l.price.mantissa()
    } else {
        l.price.mantissa()
    }
}

/// A structural change found by [`OrderBook::apply_levels`]' first pass, at an index of the
/// side as it was before the batch.
#[derive(Debug, Clone, Copy)]
enum SideOp {
    /// Insert this level before the old index.
    Insert(usize, Level),
    /// Remove the level at the old index.
    Remove(usize),
}

/// [`OrderBook::apply_levels`] for one side: orders the (validated) updates by storage key, then
/// [`apply_ordered`].
fn apply_batch<const ASK: bool>(
    levels: &mut Vec<Level>,
    updates: &[Level],
    sorted: &mut Vec<Level>,
    ops: &mut Vec<SideOp>,
) {
    if updates.windows(2).all(|w| key::<ASK>(&w[0]) < key::<ASK>(&w[1])) {
        apply_ordered::<ASK>(levels, updates.iter(), ops);
    } else if updates.windows(2).all(|w| key::<ASK>(&w[0]) > key::<ASK>(&w[1])) {
        apply_ordered::<ASK>(levels, updates.iter().rev(), ops);
    } else {
        sorted.clear();
        sorted.extend_from_slice(updates);
        // Stable: among equal prices arrival order is kept, so the last one is the latest.
        sorted.sort_by_key(key::<ASK>);
        dedup_keep_last(sorted);
        apply_ordered::<ASK>(levels, sorted.iter(), ops);
    }
}

/// Keeps only the last level of each run of equal prices in a sorted list.
fn dedup_keep_last(levels: &mut Vec<Level>) {
    let mut kept = 0;
    for i in 0..levels.len() {
        if levels.get(i + 1).is_some_and(|next| next.price == levels[i].price) {
            continue;
        }
        levels[kept] = levels[i];
        kept += 1;
    }
    levels.truncate(kept);
}

/// Index of the first level in `levels[from..]` whose key is `>= k`. The next update of a
/// delta is usually a few levels on, so the first 32 levels are scanned 8 at a time by counting
/// the keys below `k` (independent loads, no data-dependent branch inside a chunk; sorted keys
/// make the count the index); farther away, galloping then binary search.
#[inline(always)]
fn find<const ASK: bool>(levels: &[Level], from: usize, k: i64) -> usize {
    const CHUNK: usize = 8;
    let mut at = from;
    for _ in 0..4 {
        let Some(chunk) = levels.get(at..at + CHUNK) else { break };
        let below: usize = chunk.iter().map(|l| usize::from(key::<ASK>(l) < k)).sum();
        if below < CHUNK {
            return at + below;
        }
        at += CHUNK;
    }
    gallop::<ASK>(levels, at, k)
}

/// Index of the first level in `levels[from..]` whose key is `>= k`: galloping from `from`,
/// then binary search in the bracket.
#[inline(always)]
fn gallop<const ASK: bool>(levels: &[Level], from: usize, k: i64) -> usize {
    let rest = &levels[from..];
    let mut hi = 1;
    while hi < rest.len() && key::<ASK>(&rest[hi - 1]) < k {
        hi *= 2;
    }
    let lo = hi / 2;
    let hi = hi.min(rest.len());
    from + lo + rest[lo..hi].partition_point(|l| key::<ASK>(l) < k)
}

/// Applies updates with strictly ascending storage keys to a side (strictly ascending keys).
///
/// Pass 1 locates every update (the first by binary search, the rest by [`find`] forward),
/// writes quantity changes in place and records inserts and removals in `ops`, in old-index
/// order. Pass 2 gives each run of old levels between two ops its shift `s` (inserts minus
/// removals before it) and moves the runs with `s > 0` right to left, then those with `s < 0`
/// left to right: since old and new positions are both ordered, a run's destination never
/// overlaps a level that has not moved yet. Pass 3 writes the inserted levels into the gaps.
fn apply_ordered<'u, const ASK: bool>(
    levels: &mut Vec<Level>,
    mut updates: impl Iterator<Item = &'u Level>,
    ops: &mut Vec<SideOp>,
) {
    ops.clear();
    let Some(first) = updates.next() else { return };
    let first_key = key::<ASK>(first);
    let mut cur = levels.partition_point(|l| key::<ASK>(l) < first_key);
    let mut net: isize = 0;
    for u in std::iter::once(first).chain(updates) {
        let k = key::<ASK>(u);
        let j = find::<ASK>(levels, cur, k);
        match levels.get_mut(j) {
            Some(l) if key::<ASK>(l) == k => {
                if u.qty.is_zero() {
                    ops.push(SideOp::Remove(j));
                    net -= 1;
                } else {
                    l.qty = u.qty;
                }
                cur = j + 1;
            }
            // a removal of a missing level is a no-op, as on Binance
            _ if u.qty.is_zero() => cur = j,
            _ => {
                ops.push(SideOp::Insert(j, *u));
                net += 1;
                cur = j;
            }
        }
    }
    if ops.is_empty() {
        return;
    }
    let old_len = levels.len();
    let new_len = old_len.checked_add_signed(net).expect("invariant: no more removals than levels");
    if new_len > old_len {
        levels.resize(new_len, Level::default());
    }
    // The run after op `t` starts at `run_start(t)` (its old index, past a removed level) and
    // ends where the next op starts (or at the old end); its shift is the net count so far.
    let run_start = |op: &SideOp| match *op {
        SideOp::Insert(i, _) => i,
        SideOp::Remove(i) => i + 1,
    };
    let op_at = |op: &SideOp| match *op {
        SideOp::Insert(i, _) | SideOp::Remove(i) => i,
    };
    let delta = |op: &SideOp| match op {
        SideOp::Insert(..) => 1isize,
        SideOp::Remove(_) => -1,
    };
    // Right to left: runs shifting right. `shift` = net count of ops up to and including `t`.
    let mut shift = net;
    for t in (0..ops.len()).rev() {
        let end = ops.get(t + 1).map_or(old_len, op_at);
        let start = run_start(&ops[t]);
        if shift > 0 && start < end {
            levels.copy_within(start..end, start.wrapping_add_signed(shift));
        }
        shift -= delta(&ops[t]);
    }
    // Left to right: runs shifting left; then the inserted levels into their gaps.
    let mut shift = 0isize;
    for t in 0..ops.len() {
        shift += delta(&ops[t]);
        let end = ops.get(t + 1).map_or(old_len, op_at);
        let start = run_start(&ops[t]);
        if shift < 0 && start < end {
            levels.copy_within(start..end, start.wrapping_add_signed(shift));
        }
    }
    let mut shift = 0isize;
    for op in ops.iter() {
        if let SideOp::Insert(i, l) = *op {
            levels[i.wrapping_add_signed(shift)] = l;
        }
        shift += delta(op);
    }
    levels.truncate(new_len);
}

/// Turns levels in arrival order into a side's storage with the semantics of applying them one
/// by one with [`OrderBook::set_level`]: sorted by [`storage_cmp`], the last occurrence of a
/// repeated price wins, and zero-quantity levels are dropped.
fn normalize(levels: &mut Vec<Level>, side: BookSide) {
    // Stable sort keeps arrival order among equal prices, so the last of a run is the latest.
    levels.sort_by(|a, b| storage_cmp(side, a.price, b.price));
    let mut kept = 0;
    for i in 0..levels.len() {
        let l = levels[i];
        let superseded = levels.get(i + 1).is_some_and(|next| next.price == l.price);
        if !superseded && !l.qty.is_zero() {
            levels[kept] = l;
            kept += 1;
        }
    }
    levels.truncate(kept);
}

/// Copies up to [`TOP_LEVELS`] levels into `dst` and resets the slots after them, so a reused
/// [`BookTop`] carries no leftovers from a deeper book (its derived `PartialEq` and `Debug` see
/// the whole array). Returns the number of levels copied.
fn fill(dst: &mut [Level; TOP_LEVELS], src: impl Iterator<Item = Level>) -> u8 {
    let mut n = 0u8;
    for (slot, l) in dst.iter_mut().zip(src) {
        *slot = l;
        n += 1;
    }
    for slot in &mut dst[usize::from(n)..] {
        *slot = Level::default();
    }
    n
}

/// Number of levels per side carried in a [`BookTop`].
pub const TOP_LEVELS: usize = 10;

/// The top of one book at one instant: what strategies and risk see. `Copy`, fixed size, no heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookTop {
    /// Symbol of the book.
    pub symbol: Symbol,
    /// Update id of the book when the view was taken.
    pub update_id: u64,
    /// Whether the book may be traded on.
    pub state: BookState,
    /// WebSocket or REST fallback.
    pub source: BookSource,
    /// Exchange event time of the last applied update (`E`), zero if unknown.
    pub ts_exchange: UnixNanos,
    /// Local receive time of the frame that produced this view; the start of task latency.
    pub ts_local: UnixNanos,
    bids: [Level; TOP_LEVELS],
    asks: [Level; TOP_LEVELS],
    n_bids: u8,
    n_asks: u8,
}

impl BookTop {
    /// An empty, stale view.
    pub fn empty(symbol: Symbol) -> Self {
        Self {
            symbol,
            update_id: 0,
            state: BookState::Stale,
            source: BookSource::WebSocket,
            ts_exchange: UnixNanos::ZERO,
            ts_local: UnixNanos::ZERO,
            bids: [Level::default(); TOP_LEVELS],
            asks: [Level::default(); TOP_LEVELS],
            n_bids: 0,
            n_asks: 0,
        }
    }

    /// Builds a view from explicit levels (best first); extra levels beyond [`TOP_LEVELS`] are
    /// ignored. For tests and for sources without a full book (e.g. `bookTicker`).
    pub fn from_levels(symbol: Symbol, state: BookState, bids: &[Level], asks: &[Level]) -> Self {
        let mut t = Self::empty(symbol);
        t.state = state;
        t.n_bids = fill(&mut t.bids, bids.iter().copied());
        t.n_asks = fill(&mut t.asks, asks.iter().copied());
        t
    }

    /// Bid levels, best first.
    #[inline]
    pub fn bids(&self) -> &[Level] {
        &self.bids[..usize::from(self.n_bids)]
    }

    /// Ask levels, best first.
    #[inline]
    pub fn asks(&self) -> &[Level] {
        &self.asks[..usize::from(self.n_asks)]
    }

    /// Highest bid.
    #[inline]
    pub fn best_bid(&self) -> Option<Level> {
        self.bids().first().copied()
    }

    /// Lowest ask.
    #[inline]
    pub fn best_ask(&self) -> Option<Level> {
        self.asks().first().copied()
    }

    /// Midpoint of best bid and ask.
    #[inline]
    pub fn mid(&self) -> Option<Price> {
        Some(self.best_bid()?.price.midpoint(self.best_ask()?.price))
    }

    /// Best ask minus best bid.
    #[inline]
    pub fn spread(&self) -> Option<Price> {
        self.best_ask()?.price.checked_sub(self.best_bid()?.price)
    }

    /// True when the view may be traded on: synced and both sides present and not crossed.
    #[inline]
    pub fn is_tradeable(&self) -> bool {
        match (self.best_bid(), self.best_ask()) {
            (Some(b), Some(a)) => self.state == BookState::Synced && b.price < a.price,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(p: &str, q: &str) -> Level {
        Level::new(p.parse().unwrap(), q.parse().unwrap())
    }

    fn book() -> OrderBook {
        let mut b = OrderBook::new(Symbol::new("BTCUSDT").unwrap());
        b.apply_snapshot(
            100,
            [l("99", "1"), l("100", "2"), l("98", "0")],
            [l("101", "3"), l("102", "4")],
        )
        .unwrap();
        b
    }

    #[test]
    fn snapshot_sorts_and_drops_zero_levels() {
        let b = book();
        assert!(b.is_synced());
        assert_eq!(b.update_id(), 100);
        assert_eq!(b.best_bid(), Some(l("100", "2")));
        assert_eq!(b.best_ask(), Some(l("101", "3")));
        assert_eq!(b.depth(), (2, 2));
        assert_eq!(b.mid(), Some("100.5".parse().unwrap()));
        assert_eq!(b.spread(), Some("1".parse().unwrap()));
    }

    #[test]
    fn level_update_sets_and_removes() {
        let mut b = book();
        b.set_level(BookSide::Bid, "100".parse().unwrap(), Qty::ZERO).unwrap();
        assert_eq!(b.best_bid(), Some(l("99", "1")));
        b.set_level(BookSide::Ask, "100.5".parse().unwrap(), "7".parse().unwrap()).unwrap();
        assert_eq!(b.best_ask(), Some(l("100.5", "7")));
        // removing a level that isn't there is a no-op, as on Binance
        b.set_level(BookSide::Ask, "500".parse().unwrap(), Qty::ZERO).unwrap();
        assert_eq!(b.depth(), (1, 3));
    }

    #[test]
    fn rejects_negative_qty_and_bad_price() {
        let mut b = book();
        assert!(matches!(
            b.set_level(BookSide::Bid, "1".parse().unwrap(), "-1".parse().unwrap()),
            Err(BookError::NegativeQty { .. })
        ));
        assert!(matches!(
            b.set_level(BookSide::Bid, Price::ZERO, "1".parse().unwrap()),
            Err(BookError::NonPositivePrice(_))
        ));
        let err = b.apply_snapshot(5, [l("1", "-1")], []);
        assert!(err.is_err());
        assert!(!b.is_synced());
        assert_eq!(b.depth(), (0, 0));
    }

    #[test]
    fn reused_top_equals_fresh_top_after_levels_vanish() {
        // `top_into` into a reused buffer used to leave the old levels past `n_bids`/`n_asks`,
        // so it compared unequal to a fresh `top()` of the same book.
        let mut b = OrderBook::new(Symbol::new("BTCUSDT").unwrap());
        let bids: Vec<Level> = (1..=12).map(|i| l(&i.to_string(), "1")).collect();
        let asks: Vec<Level> = (13..=24).map(|i| l(&i.to_string(), "1")).collect();
        b.apply_snapshot(1, bids, asks).unwrap();
        let mut reused = b.top();
        assert_eq!(reused.bids().len(), TOP_LEVELS);
        b.apply_snapshot(2, [l("5", "1")], [l("6", "2")]).unwrap();
        b.top_into(&mut reused);
        assert_eq!(reused.bids(), &[l("5", "1")]);
        assert_eq!(reused, b.top());
    }

    #[test]
    fn snapshot_repeated_price_keeps_last_occurrence() {
        // TC0: a later value overrides, TC1: a later zero removes, TC2: a zero then a value keeps
        // the value — exactly as if each level were applied with `set_level` in order.
        let mut b = OrderBook::new(Symbol::new("BTCUSDT").unwrap());
        b.apply_snapshot(
            1,
            [l("99", "1"), l("100", "2"), l("99", "3"), l("98", "1"), l("98", "0")],
            [l("102", "0"), l("101", "1"), l("102", "5"), l("103", "1")],
        )
        .unwrap();
        assert_eq!(b.bids().collect::<Vec<_>>(), [l("100", "2"), l("99", "3")]);
        assert_eq!(b.asks().collect::<Vec<_>>(), [l("101", "1"), l("102", "5"), l("103", "1")]);
    }

    #[test]
    fn updates_keep_both_sides_sorted_best_first() {
        let mut b = book();
        for (side, p, q) in [
            (BookSide::Bid, "99.5", "1"),
            (BookSide::Bid, "50", "1"),
            (BookSide::Ask, "101.5", "1"),
            (BookSide::Ask, "200", "1"),
            (BookSide::Ask, "101", "0"),
        ] {
            b.set_level(side, p.parse().unwrap(), q.parse().unwrap()).unwrap();
        }
        assert_eq!(
            b.bids().collect::<Vec<_>>(),
            [l("100", "2"), l("99.5", "1"), l("99", "1"), l("50", "1")]
        );
        assert_eq!(b.asks().collect::<Vec<_>>(), [l("101.5", "1"), l("102", "4"), l("200", "1")]);
    }

    #[test]
    fn crossed_book_detected() {
        let mut b = book();
        assert!(!b.is_crossed());
        b.set_level(BookSide::Bid, "101".parse().unwrap(), "1".parse().unwrap()).unwrap();
        assert!(b.is_crossed());
        assert!(!b.top().is_tradeable());
    }

    #[test]
    fn top_view_matches_book_and_stale_is_not_tradeable() {
        let mut b = book();
        let t = b.top();
        assert_eq!(t.bids(), &[l("100", "2"), l("99", "1")]);
        assert_eq!(t.asks(), &[l("101", "3"), l("102", "4")]);
        assert!(t.is_tradeable());
        b.mark_stale();
        assert!(!b.top().is_tradeable());
        let empty = OrderBook::new(b.symbol()).top();
        assert_eq!(empty.mid(), None);
        assert!(!empty.is_tradeable());
    }
}
