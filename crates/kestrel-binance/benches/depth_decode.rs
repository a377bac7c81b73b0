//! depthUpdate hot path: decode + depth-sync apply + top-of-book view, against `serde_json`
//! merely scanning the same bytes into `IgnoredAny` (the floor for any JSON-based decoder).
//!
//! Fixtures are 2,048 distinct, deterministic BTCUSDT-like combined-stream frames in sequence:
//! prices around 97,000 with a 0.01 tick, 5–40 level changes per side within 300 ticks of the
//! top (one in six a removal, prices missing from the book become inserts), unique prices in
//! ascending order as in Binance's examples, ~1.6 KB each, applied on a book of ~830 levels per
//! side (1,000 price slots, one in six empty). `decode_apply_shuffled` runs the same frames with
//! levels in random order and repeated prices (the book's sort-first fallback).
//!
//! The `trade` group decodes 2,048 distinct `@trade` frames in the exact shape Binance and
//! kestrel-sim send (~200 bytes, prices around 97,000 with 8 fraction digits) through the
//! general `serde_json` path (`decode_general`) and through `decode` (single-pass scanner);
//! `trade_interleaved` on stderr alternates the two round by round.
//!
//! Run: `cargo bench -p kestrel-binance --bench depth_decode -- --warm-up-time 1
//! --measurement-time 3` (append `trade` for the trade cases only). The first stderr line pair gives the interleaved ratio (scan and
//! decode+apply alternating round by round, so machine load hits both alike).
//!
//! Measured on the shared 2-core box (interleaved medians, same fixtures): before the
//! single-pass scanner and the batch apply, ratio 4.03 (scan 5,456 ns, decode+apply 24,116 ns,
//! 41k msgs/s); after, ratio 1.18–1.59 over eight runs at varying load (quietest: scan 1,680 ns,
//! decode+apply 2,633 ns, 380k msgs/s).
//!
//! Trade frames (2026-11-25, load average ~4 on the 2 cores, two runs): serde path 702 / 778 ns
//! (criterion), 1,004 / 558 ns (interleaved median); single-pass scanner 149 / 209 ns
//! (criterion), 256 / 130 ns (interleaved); per-round speed-up median 3.92 / 4.20.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use kestrel_binance::decode::{Decoded, MarketDecoder};
use kestrel_binance::depth_sync::{DepthDelta, DepthSync};
use kestrel_model::{BookTop, Level, Price, Qty, Symbol};

/// Small deterministic generator (no dependency, same fixtures on every machine).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

const MID_TICKS: u64 = 9_700_000; // 97,000.00 in 0.01 ticks
const BOOK_LEVELS: u64 = 1_000;
const FRAMES: usize = 2_048;
const FIRST_ID: u64 = 1_000_001;

fn price_str(ticks: u64) -> String {
    format!("{}.{:02}000000", ticks / 100, ticks % 100)
}

fn qty_str(r: &mut Lcg) -> String {
    // 0 (delete) one time in six, else 0.00001000 .. 2.99999000
    if r.range(0, 5) == 0 {
        "0.00000000".to_string()
    } else {
        let units = r.range(1_000, 299_999_000);
        format!("{}.{:08}", units / 100_000_000, units % 100_000_000)
    }
}

/// Level order inside a side of a fixture frame.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LevelOrder {
    /// Unique prices, ascending on both sides, as in Binance's documented examples.
    Binance,
    /// Generated order, repeated prices possible: the worst case of the book's batch apply
    /// (sorted in a buffer first).
    Shuffled,
}

fn frames(order: LevelOrder) -> Vec<String> {
    let mut r = Lcg(42);
    let mut out = Vec::with_capacity(FRAMES);
    let mut id = FIRST_ID;
    for _ in 0..FRAMES {
        let n_changes = r.range(1, 6);
        let (first, last) = (id, id + n_changes - 1);
        id = last + 1;
        let mut s = String::with_capacity(1_800);
        write!(
            s,
            r#"{{"stream":"btcusdt@depth@100ms","data":{{"e":"depthUpdate","E":1732530000{:03},"s":"BTCUSDT","U":{first},"u":{last},"b":["#,
            r.range(0, 999)
        )
        .unwrap();
        for side in 0..2 {
            let n = r.range(5, 40);
            let mut levels: Vec<(u64, String)> = (0..n)
                .map(|_| {
                    let off = r.range(0, 300);
                    let ticks = if side == 0 { MID_TICKS - 1 - off } else { MID_TICKS + off };
                    (ticks, qty_str(&mut r))
                })
                .collect();
            if order == LevelOrder::Binance {
                // last occurrence of a price wins, as it would on the exchange
                let unique: BTreeMap<u64, String> = levels.into_iter().collect();
                levels = unique.into_iter().collect();
            }
            for (i, (ticks, qty)) in levels.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                write!(s, r#"["{}","{qty}"]"#, price_str(*ticks)).unwrap();
            }
            s.push_str(if side == 0 { r#"],"a":["# } else { "]}}" });
        }
        out.push(s);
    }
    out
}

fn synced_book() -> DepthSync {
    let mut r = Lcg(7);
    let bids: Vec<Level> = (0..BOOK_LEVELS)
        .map(|i| {
            Level::new(
                price_str(MID_TICKS - 1 - i).parse::<Price>().unwrap(),
                qty_str(&mut r).parse::<Qty>().unwrap(),
            )
        })
        .filter(|l| !l.qty.is_zero())
        .collect();
    let asks: Vec<Level> = (0..BOOK_LEVELS)
        .map(|i| {
            Level::new(
                price_str(MID_TICKS + i).parse::<Price>().unwrap(),
                qty_str(&mut r).parse::<Qty>().unwrap(),
            )
        })
        .filter(|l| !l.qty.is_zero())
        .collect();
    let mut s = DepthSync::new(Symbol::new("BTCUSDT").unwrap(), 1_000);
    s.request_initial();
    s.on_snapshot(FIRST_ID - 1, &bids, &asks);
    assert!(s.book().is_synced());
    s
}

/// decode → depth sync → top-of-book view; returns the view's update id.
#[inline]
fn decode_apply(
    dec: &mut MarketDecoder,
    sync: &mut DepthSync,
    top: &mut BookTop,
    frame: &[u8],
) -> u64 {
    let Ok(Decoded::Depth(h)) = dec.decode(frame) else { panic!("fixture must decode") };
    let d = DepthDelta {
        first_update_id: h.first_update_id,
        final_update_id: h.final_update_id,
        bids: dec.bids(),
        asks: dec.asks(),
    };
    sync.on_delta(&d);
    sync.book().top_into(top);
    top.update_id
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Scan and decode+apply measured alternately, round by round, so a busy shared machine slows
/// both alike; prints the medians and the median of the per-round ratios.
fn interleaved_ratio(frames: &[String], template: &DepthSync) {
    let mut dec = MarketDecoder::new();
    let mut top = BookTop::empty(template.symbol());
    let (mut scan, mut apply, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..40 {
        let start = Instant::now();
        for f in frames {
            black_box(
                serde_json::from_slice::<serde::de::IgnoredAny>(black_box(f.as_bytes())).unwrap(),
            );
        }
        let s = start.elapsed().as_nanos() as f64 / frames.len() as f64;
        let mut sync = template.clone();
        let start = Instant::now();
        for f in frames {
            black_box(decode_apply(&mut dec, &mut sync, &mut top, black_box(f.as_bytes())));
        }
        let a = start.elapsed().as_nanos() as f64 / frames.len() as f64;
        scan.push(s);
        apply.push(a);
        ratio.push(a / s);
    }
    eprintln!(
        "interleaved (40 rounds x {} msgs): scan median {:.0} ns/msg, decode+apply median {:.0} ns/msg ({:.0} msgs/s), ratio median {:.2}",
        frames.len(),
        median(&mut scan),
        median(&mut apply),
        1e9 / median(&mut apply.clone()),
        median(&mut ratio)
    );
}

/// Trade frames as Binance and kestrel-sim send them: compact, fields in the documented order.
fn trade_frames() -> Vec<String> {
    let mut r = Lcg(11);
    (0..FRAMES)
        .map(|i| {
            let ticks = MID_TICKS - 150 + r.range(0, 300);
            let t = 1_732_530_000_000 + i as u64;
            format!(
                r#"{{"stream":"btcusdt@trade","data":{{"e":"trade","E":{t},"s":"BTCUSDT","t":{},"p":"{}","q":"{}","T":{},"m":{},"M":true}}}}"#,
                4_000_000_000 + i as u64,
                price_str(ticks),
                qty_str(&mut r),
                t - r.range(0, 3),
                r.range(0, 1) == 1
            )
        })
        .collect()
}

/// Serde path and fast path on the trade fixtures, alternating round by round (see
/// [`interleaved_ratio`]); prints both medians and the median per-round speed-up.
fn interleaved_trade(frames: &[String]) {
    let mut dec = MarketDecoder::new();
    let (mut general, mut fast, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..40 {
        let start = Instant::now();
        for f in frames {
            black_box(dec.decode_general(black_box(f.as_bytes())).is_ok());
        }
        let s = start.elapsed().as_nanos() as f64 / frames.len() as f64;
        let start = Instant::now();
        for f in frames {
            black_box(dec.decode(black_box(f.as_bytes())).is_ok());
        }
        let a = start.elapsed().as_nanos() as f64 / frames.len() as f64;
        general.push(s);
        fast.push(a);
        ratio.push(s / a);
    }
    eprintln!(
        "trade_interleaved (40 rounds x {} msgs): serde path median {:.0} ns/msg, fast path median {:.0} ns/msg, speed-up median {:.2}",
        frames.len(),
        median(&mut general),
        median(&mut fast),
        median(&mut ratio)
    );
}

fn bench(c: &mut Criterion) {
    let frames = frames(LevelOrder::Binance);
    let avg = frames.iter().map(String::len).sum::<usize>() / frames.len();
    eprintln!("fixtures: {} frames, average {avg} bytes", frames.len());
    let template = synced_book();
    interleaved_ratio(&frames, &template);

    let mut g = c.benchmark_group("depth_update");
    g.throughput(Throughput::Elements(1));

    g.bench_function("scan_ignored_any", |b| {
        let mut i = 0;
        b.iter(|| {
            let f = frames[i % FRAMES].as_bytes();
            i += 1;
            black_box(serde_json::from_slice::<serde::de::IgnoredAny>(black_box(f)).unwrap())
        });
    });

    g.bench_function("decode_only", |b| {
        let mut dec = MarketDecoder::new();
        let mut i = 0;
        b.iter(|| {
            let f = frames[i % FRAMES].as_bytes();
            i += 1;
            black_box(dec.decode(black_box(f)).is_ok())
        });
    });

    g.bench_function("decode_apply", |b| decode_apply_bench(b, &frames, &template));
    let shuffled = self::frames(LevelOrder::Shuffled);
    g.bench_function("decode_apply_shuffled", |b| decode_apply_bench(b, &shuffled, &template));
    g.finish();

    let trades = trade_frames();
    let avg = trades.iter().map(String::len).sum::<usize>() / trades.len();
    eprintln!("trade fixtures: {} frames, average {avg} bytes", trades.len());
    // Both paths must give the same trades before either is timed.
    let (mut a, mut b) = (MarketDecoder::new(), MarketDecoder::new());
    for f in &trades {
        let fast = a.decode(f.as_bytes()).unwrap();
        assert!(matches!(fast, Decoded::Trade(_)), "fixture must be a trade");
        assert_eq!(fast, b.decode_general(f.as_bytes()).unwrap());
    }
    interleaved_trade(&trades);

    let mut g = c.benchmark_group("trade");
    g.throughput(Throughput::Elements(1));
    g.bench_function("serde_path", |b| {
        let mut dec = MarketDecoder::new();
        let mut i = 0;
        b.iter(|| {
            let f = trades[i % FRAMES].as_bytes();
            i += 1;
            black_box(dec.decode_general(black_box(f)).is_ok())
        });
    });
    g.bench_function("fast_path", |b| {
        let mut dec = MarketDecoder::new();
        let mut i = 0;
        b.iter(|| {
            let f = trades[i % FRAMES].as_bytes();
            i += 1;
            black_box(dec.decode(black_box(f)).is_ok())
        });
    });
    g.finish();
}

/// Times decode → sync → top view over `frames` in sequence. `iter_custom`: the book is reset
/// (outside the timing) each time the fixtures run out, so every timed message is a real,
/// in-sequence apply that changes the book.
fn decode_apply_bench(b: &mut criterion::Bencher<'_>, frames: &[String], template: &DepthSync) {
    let mut dec = MarketDecoder::new();
    let mut top = BookTop::empty(template.symbol());
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let mut sync = template.clone();
            let n = left.min(frames.len() as u64) as usize;
            let start = Instant::now();
            for f in &frames[..n] {
                black_box(decode_apply(&mut dec, &mut sync, &mut top, black_box(f.as_bytes())));
            }
            total += start.elapsed();
            assert!(sync.book().is_synced());
            left -= n as u64;
        }
        total
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
