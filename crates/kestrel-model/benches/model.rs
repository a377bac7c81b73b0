//! Criterion benches of the model's hot paths (STYLE.md 2.6): `Price` parse and format (every
//! depth level and every order goes through them), order-book delta application at 100 and 1,000
//! levels per side (level by level with `set_level`, and per side with `apply_levels`), best
//! bid/ask, and the `top_into` copy the engine receives per update.
//!
//! Run: `cargo bench -p kestrel-model` (CI: `cargo bench --no-run`). Compare numbers only on the
//! same machine.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use kestrel_model::{BookSide, BookTop, Level, OrderBook, Price, Qty, Symbol};

/// Binance wire strings: 8 fractional digits always, as in depth updates.
const PRICES: [&str; 4] = ["43012.34000000", "0.01000000", "1.00000000", "0.00001234"];

fn bench_price(c: &mut Criterion) {
    let mut g = c.benchmark_group("price");
    g.bench_function("parse_43012.34000000", |b| {
        b.iter(|| black_box("43012.34000000").parse::<Price>())
    });
    g.bench_function("parse_mixed_4", |b| {
        b.iter(|| {
            for s in PRICES {
                let _ = black_box(black_box(s).parse::<Price>());
            }
        })
    });
    g.bench_function("parse_qty_0.00150000", |b| b.iter(|| black_box("0.00150000").parse::<Qty>()));
    let p: Price = "43012.34".parse().expect("valid price");
    let mut buf = String::with_capacity(32);
    g.bench_function("format_43012.34", |b| {
        b.iter(|| {
            buf.clear();
            write!(buf, "{}", black_box(p)).expect("String write cannot fail");
            black_box(buf.len())
        })
    });
    g.finish();
}

const TICK: i64 = 1_000_000; // 0.01
const MID: i64 = 43_000 * 100_000_000; // 43000.00

fn bid(k: i64) -> Price {
    Price::from_mantissa(MID - k * TICK)
}
fn ask(k: i64) -> Price {
    Price::from_mantissa(MID + k * TICK)
}

/// A book of `n` levels per side around 43000.00 with a 0.01 tick.
fn book(n: i64) -> OrderBook {
    let mut b = OrderBook::new(Symbol::new("BTCUSDT").expect("valid symbol"));
    let q = |k: i64| Qty::from_mantissa(10_000_000 + k * 1_000);
    b.apply_snapshot(
        1,
        (1..=n).map(|k| Level::new(bid(k), q(k))),
        (1..=n).map(|k| Level::new(ask(k), q(k))),
    )
    .expect("valid snapshot");
    b
}

/// Two deltas shaped like a busy `depthUpdate` (10 entries per side: 6 quantity changes near
/// the top, one deep change, 2 removals or re-inserts, one level at the far end). Applying A
/// then B returns the book to the same shape, so the bench runs in a steady state.
fn deltas(n: i64) -> [Vec<(BookSide, Price, Qty)>; 2] {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for (side, px) in [(BookSide::Bid, bid as fn(i64) -> Price), (BookSide::Ask, ask)] {
        for k in 1..=6 {
            a.push((side, px(k), Qty::from_mantissa(20_000_000 + k)));
            b.push((side, px(k), Qty::from_mantissa(30_000_000 + k)));
        }
        a.push((side, px(n / 2), Qty::from_mantissa(5_000_000)));
        b.push((side, px(n / 2), Qty::from_mantissa(6_000_000)));
        for k in [7, 8] {
            a.push((side, px(k), Qty::ZERO));
            b.push((side, px(k), Qty::from_mantissa(40_000_000)));
        }
        a.push((side, px(n), Qty::from_mantissa(1_000)));
        b.push((side, px(n), Qty::from_mantissa(2_000)));
    }
    [a, b]
}

fn bench_book(c: &mut Criterion) {
    let mut g = c.benchmark_group("book");
    for n in [100i64, 1_000] {
        let mut book = book(n);
        let ds = deltas(n);
        let mut i = 0usize;
        g.bench_with_input(BenchmarkId::new("apply_delta_20", n), &n, |b, _| {
            b.iter(|| {
                let d = &ds[i & 1];
                i += 1;
                for &(side, price, qty) in d {
                    book.set_level(side, black_box(price), black_box(qty)).expect("valid level");
                }
                book.set_update_id(i as u64);
            })
        });

        // The same deltas through the batch API, one call per side (as depth sync does).
        let mut book = self::book(n);
        let per_side = |d: &[(BookSide, Price, Qty)], side: BookSide| -> Vec<Level> {
            d.iter().filter(|l| l.0 == side).map(|&(_, p, q)| Level::new(p, q)).collect()
        };
        let batches: Vec<[Vec<Level>; 2]> =
            ds.iter().map(|d| [per_side(d, BookSide::Bid), per_side(d, BookSide::Ask)]).collect();
        let mut i = 0usize;
        g.bench_with_input(BenchmarkId::new("apply_levels_20", n), &n, |b, _| {
            b.iter(|| {
                let [bids, asks] = &batches[i & 1];
                i += 1;
                book.apply_levels(BookSide::Bid, black_box(bids)).expect("valid levels");
                book.apply_levels(BookSide::Ask, black_box(asks)).expect("valid levels");
                book.set_update_id(i as u64);
            })
        });

        let book = self::book(n);
        g.bench_with_input(BenchmarkId::new("best_bid_ask", n), &book, |b, book| {
            b.iter(|| (black_box(book).best_bid(), black_box(book).best_ask()))
        });

        let mut top = BookTop::empty(book.symbol());
        g.bench_with_input(BenchmarkId::new("top_into", n), &book, |b, book| {
            b.iter(|| {
                black_box(book).top_into(&mut top);
                black_box(&top);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_price, bench_book);
criterion_main!(benches);
