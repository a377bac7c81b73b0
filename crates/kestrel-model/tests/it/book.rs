//! `OrderBook` against a naive reference over random snapshot + update sequences (STYLE.md 2.6).
//!
//! The reference is deliberately dumb: one `HashMap<price, qty>` per side, sorted on demand. After
//! every step the real book must have the same levels, sorted sides, no zero level, the same best
//! bid/ask and depth, and a `top_into` equal to the reference's first ten levels.

use std::collections::HashMap;

use kestrel_model::{
    BookError, BookSide, BookState, BookTop, Level, OrderBook, Price, Qty, Symbol, TOP_LEVELS,
};
use proptest::prelude::*;

use crate::proptest_config;

/// One step of a random session.
#[derive(Debug, Clone)]
enum Op {
    /// A full snapshot: `(price_ticks, qty)` per side; zero quantities included on purpose.
    Snapshot { id: u64, bids: Vec<(i64, i64)>, asks: Vec<(i64, i64)> },
    /// A depth delta entry: absolute quantity at a price (zero removes).
    Set { side: BookSide, price: i64, qty: i64 },
    /// An invalid entry (negative quantity or non-positive price): must be refused, book unchanged.
    Bad { side: BookSide, price: i64, qty: i64 },
    /// One side of a depth delta applied with `apply_levels`: in generated order (repeats
    /// included), or made strictly ascending / descending by price as Binance sends them.
    Batch { side: BookSide, levels: Vec<(i64, i64)>, order: Order },
    /// A batch with one invalid entry: refused as a whole, book unchanged.
    BadBatch { side: BookSide, levels: Vec<(i64, i64)>, at: prop::sample::Index, qty: i64 },
    /// A gap or reconnect.
    MarkStale,
}

/// The order of a batch's levels.
#[derive(Debug, Clone, Copy)]
enum Order {
    AsGenerated,
    Ascending,
    Descending,
}

/// `levels` in `order`; for the sorted orders a repeated price keeps its last occurrence (the
/// only one a real delta would carry).
fn ordered(levels: &[(i64, i64)], order: Order) -> Vec<(i64, i64)> {
    if let Order::AsGenerated = order {
        return levels.to_vec();
    }
    let mut last: HashMap<i64, i64> = HashMap::new();
    for &(p, q) in levels {
        last.insert(p, q);
    }
    let mut v: Vec<(i64, i64)> = last.into_iter().collect();
    v.sort_unstable();
    if let Order::Descending = order {
        v.reverse();
    }
    v
}

/// Price levels come from a narrow band of ticks so updates hit existing levels often.
const TICKS: i64 = 60;
/// Tick size in mantissa units (0.01).
const TICK: i64 = 1_000_000;

fn price(ticks: i64) -> Price {
    Price::from_mantissa(ticks * TICK)
}

fn side() -> impl Strategy<Value = BookSide> {
    prop_oneof![Just(BookSide::Bid), Just(BookSide::Ask)]
}

/// Quantities: a quarter zeros (removals), the rest small or large positive amounts.
fn qty() -> impl Strategy<Value = i64> {
    prop_oneof![1 => Just(0i64), 2 => 1i64..=1_000, 1 => 1i64..=i64::MAX]
}

fn levels(max: usize) -> impl Strategy<Value = Vec<(i64, i64)>> {
    prop::collection::vec((1..=TICKS, qty()), 0..=max)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (any::<u64>(), levels(40), levels(40))
            .prop_map(|(id, bids, asks)| Op::Snapshot { id, bids, asks }),
        16 => (side(), 1..=TICKS, qty()).prop_map(|(side, price, qty)| Op::Set { side, price, qty }),
        1 => (side(), -5..=TICKS, i64::MIN..=0)
            .prop_map(|(side, price, qty)| Op::Bad { side, price, qty: qty.min(-1) }),
        1 => (side(), -5i64..=0, qty()).prop_map(|(side, price, qty)| Op::Bad { side, price, qty }),
        4 => (side(), levels(45), prop_oneof![
                Just(Order::AsGenerated), Just(Order::Ascending), Just(Order::Descending)
            ])
            .prop_map(|(side, levels, order)| Op::Batch { side, levels, order }),
        1 => (side(), levels(10), any::<prop::sample::Index>(), i64::MIN..0)
            .prop_map(|(side, levels, at, qty)| Op::BadBatch { side, levels, at, qty }),
        1 => Just(Op::MarkStale),
    ]
}

/// The naive model of a book.
#[derive(Default, Debug)]
struct Reference {
    bids: HashMap<i64, i64>,
    asks: HashMap<i64, i64>,
    state: Option<u64>,
}

impl Reference {
    fn set(&mut self, side: BookSide, price: i64, qty: i64) {
        let map = match side {
            BookSide::Bid => &mut self.bids,
            BookSide::Ask => &mut self.asks,
        };
        if qty == 0 {
            map.remove(&price);
        } else {
            map.insert(price, qty);
        }
    }

    /// Bids best (highest) first.
    fn bids(&self) -> Vec<Level> {
        let mut v: Vec<_> = self.bids.iter().map(|(p, q)| (*p, *q)).collect();
        v.sort_by_key(|l| std::cmp::Reverse(l.0));
        v.into_iter().map(|(p, q)| Level::new(price(p), Qty::from_mantissa(q))).collect()
    }

    /// Asks best (lowest) first.
    fn asks(&self) -> Vec<Level> {
        let mut v: Vec<_> = self.asks.iter().map(|(p, q)| (*p, *q)).collect();
        v.sort_by_key(|l| l.0);
        v.into_iter().map(|(p, q)| Level::new(price(p), Qty::from_mantissa(q))).collect()
    }
}

fn to_levels(v: &[(i64, i64)]) -> Vec<Level> {
    v.iter().map(|(p, q)| Level::new(price(*p), Qty::from_mantissa(*q))).collect()
}

/// Asserts every invariant of `book` against `reference`, including `top_into` into a reused
/// buffer that may hold a deeper, older view.
fn check(
    book: &OrderBook,
    reference: &Reference,
    reused: &mut BookTop,
) -> Result<(), TestCaseError> {
    let bids: Vec<Level> = book.bids().collect();
    let asks: Vec<Level> = book.asks().collect();
    prop_assert!(bids.windows(2).all(|w| w[0].price > w[1].price), "bids not strictly descending");
    prop_assert!(asks.windows(2).all(|w| w[0].price < w[1].price), "asks not strictly ascending");
    prop_assert!(bids.iter().chain(&asks).all(|l| l.qty.is_positive() && l.price.is_positive()));

    let (rb, ra) = (reference.bids(), reference.asks());
    prop_assert_eq!(&bids, &rb);
    prop_assert_eq!(&asks, &ra);
    prop_assert_eq!(book.best_bid(), rb.first().copied());
    prop_assert_eq!(book.best_ask(), ra.first().copied());
    prop_assert_eq!(book.depth(), (rb.len(), ra.len()));
    prop_assert_eq!(
        book.is_crossed(),
        matches!((rb.first(), ra.first()), (Some(b), Some(a)) if b.price >= a.price)
    );

    book.top_into(reused);
    let top_n = |v: &[Level]| v[..v.len().min(TOP_LEVELS)].to_vec();
    prop_assert_eq!(reused.bids(), &top_n(&rb)[..]);
    prop_assert_eq!(reused.asks(), &top_n(&ra)[..]);
    prop_assert_eq!(reused.best_bid(), book.best_bid());
    prop_assert_eq!(reused.best_ask(), book.best_ask());
    prop_assert_eq!(reused.mid(), book.mid());
    prop_assert_eq!(reused.spread(), book.spread());
    prop_assert_eq!(reused.update_id, book.update_id());
    prop_assert_eq!(reused.state, book.state());
    prop_assert_eq!(*reused, book.top());
    prop_assert_eq!(
        reused.is_tradeable(),
        book.is_synced() && !book.is_crossed() && !rb.is_empty() && !ra.is_empty()
    );

    match reference.state {
        Some(id) => {
            prop_assert_eq!(book.state(), BookState::Synced);
            prop_assert_eq!(book.update_id(), id);
        }
        None => prop_assert_eq!(book.state(), BookState::Stale),
    }
    Ok(())
}

proptest! {
    #![proptest_config(proptest_config(512))]

    /// Random sessions of snapshots, deltas (level by level and as sorted or unsorted batches),
    /// invalid entries and gaps keep the book equal to the reference after every step.
    #[test]
    fn book_matches_reference(
        first in (any::<u64>(), levels(40), levels(40)),
        ops in prop::collection::vec(op(), 0..200),
    ) {
        let mut book = OrderBook::new(Symbol::new("BTCUSDT").unwrap());
        let mut reference = Reference::default();
        let mut reused = BookTop::empty(book.symbol());
        check(&book, &reference, &mut reused)?;

        let (id, bids, asks) = first;
        let ops = std::iter::once(Op::Snapshot { id, bids, asks }).chain(ops);
        for op in ops {
            match op {
                Op::Snapshot { id, bids, asks } => {
                    book.apply_snapshot(id, to_levels(&bids), to_levels(&asks)).unwrap();
                    reference = Reference::default();
                    for (p, q) in bids {
                        reference.set(BookSide::Bid, p, q);
                    }
                    for (p, q) in asks {
                        reference.set(BookSide::Ask, p, q);
                    }
                    reference.state = Some(id);
                }
                Op::Set { side, price: p, qty: q } => {
                    book.set_level(side, price(p), Qty::from_mantissa(q)).unwrap();
                    reference.set(side, p, q);
                }
                Op::Bad { side, price: p, qty: q } => {
                    let err = book.set_level(side, price(p), Qty::from_mantissa(q)).unwrap_err();
                    if q < 0 {
                        prop_assert_eq!(err, BookError::NegativeQty { price: price(p), qty: Qty::from_mantissa(q) });
                    } else {
                        prop_assert_eq!(err, BookError::NonPositivePrice(price(p)));
                    }
                }
                Op::Batch { side, levels, order } => {
                    let levels = ordered(&levels, order);
                    book.apply_levels(side, &to_levels(&levels)).unwrap();
                    for (p, q) in levels {
                        reference.set(side, p, q);
                    }
                }
                Op::BadBatch { side, mut levels, at, qty } => {
                    levels.push((1, 1));
                    let i = at.index(levels.len());
                    levels[i].1 = qty;
                    let err = book.apply_levels(side, &to_levels(&levels)).unwrap_err();
                    prop_assert!(matches!(err, BookError::NegativeQty { .. }), "{err:?}");
                }
                Op::MarkStale => {
                    book.mark_stale();
                    reference.state = None;
                }
            }
            check(&book, &reference, &mut reused)?;
        }
    }

    /// A snapshot holding an invalid level is refused as a whole and leaves the book empty and
    /// stale, whatever it held before.
    #[test]
    fn bad_snapshot_leaves_book_empty_and_stale(
        good in levels(20),
        mut bad in levels(20),
        at in any::<prop::sample::Index>(),
        neg in i64::MIN..0,
    ) {
        let mut book = OrderBook::new(Symbol::new("ETHUSDT").unwrap());
        book.apply_snapshot(7, to_levels(&good), to_levels(&good)).unwrap();
        bad.push((1, 1));
        let i = at.index(bad.len());
        bad[i].1 = neg;
        prop_assert!(book.apply_snapshot(8, to_levels(&good), to_levels(&bad)).is_err());
        prop_assert_eq!(book.depth(), (0, 0));
        prop_assert_eq!(book.state(), BookState::Stale);
        prop_assert_eq!(book.update_id(), 0);
    }
}

/// `top_into` on a book deeper than [`TOP_LEVELS`] carries exactly the best ten per side.
#[test]
fn top_into_truncates_to_ten_best() {
    let mut book = OrderBook::new(Symbol::new("BTCUSDT").unwrap());
    let bids: Vec<Level> = (1..=30).map(|t| Level::new(price(t), Qty::from_mantissa(t))).collect();
    let asks: Vec<Level> = (31..=60).map(|t| Level::new(price(t), Qty::from_mantissa(t))).collect();
    book.apply_snapshot(1, bids, asks).unwrap();
    let top = book.top();
    let want_bids: Vec<Level> =
        (21..=30).rev().map(|t| Level::new(price(t), Qty::from_mantissa(t))).collect();
    let want_asks: Vec<Level> =
        (31..=40).map(|t| Level::new(price(t), Qty::from_mantissa(t))).collect();
    assert_eq!(top.bids(), &want_bids[..]);
    assert_eq!(top.asks(), &want_asks[..]);
    assert!(top.is_tradeable());
}
