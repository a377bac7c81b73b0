//! Cost of recording a metric on the hot path: pre-resolved handles vs a label lookup.
//!
//! Run: `cargo bench -p kestrel --bench metrics`. Numbers only compare on the same machine.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use kestrel::faults::{FaultBoard, FaultClass};
use kestrel::metrics::{Metrics, StreamKind};
use kestrel_model::{Symbol, SystemClock};

fn bench_metrics(c: &mut Criterion) {
    let metrics = Metrics::new();
    let btc = Symbol::new("BTCUSDT").unwrap();

    // Pre-resolved handles, as the md/engine tasks hold them.
    let ws_latency = metrics.ws_latency(btc, StreamKind::Depth);
    let task_latency = metrics.task_latency("signal");
    let messages = metrics.md_messages(StreamKind::Depth);
    let lag = metrics.msg_lag(StreamKind::Depth);

    // Values spread over the buckets so the bucket search is not always the first slot.
    let samples: Vec<f64> = (0..1024).map(|i| 0.000_05 * f64::from(i % 200 + 1)).collect();

    let mut g = c.benchmark_group("metrics");
    let mut i = 0usize;
    g.bench_function("histogram_observe_ws_latency", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            ws_latency.observe(black_box(samples[i]));
        })
    });
    g.bench_function("histogram_observe_task_latency", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            task_latency.observe(black_box(samples[i] / 100.0));
        })
    });
    g.bench_function("counter_inc", |b| b.iter(|| black_box(messages.inc())));
    g.bench_function("float_gauge_set", |b| b.iter(|| black_box(lag.set(black_box(0.25)))));
    // What the handles avoid: a Family lookup (hash + read lock) per message.
    g.bench_function("lookup_then_observe", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            metrics.ws_latency(black_box(btc), StreamKind::Depth).observe(samples[i]);
        })
    });

    // A component re-raising an already-raised fault on every message.
    let board = FaultBoard::new(&metrics, Arc::new(SystemClock));
    board.raise(FaultClass::BOOK_STALE, "bench");
    g.bench_function("fault_raise_already_active", |b| {
        b.iter(|| black_box(board.raise(FaultClass::BOOK_STALE, "ignored")))
    });
    g.finish();

    // Two threads hammering the same histogram (worst case: shared handle).
    let mut g = c.benchmark_group("metrics_contended");
    g.bench_function("histogram_observe_2_threads", |b| {
        b.iter_custom(|iters| {
            let h = ws_latency.clone();
            let other = std::thread::spawn(move || {
                for k in 0..iters {
                    h.observe(0.001 * (k % 7) as f64);
                }
            });
            let start = std::time::Instant::now();
            for k in 0..iters {
                ws_latency.observe(0.001 * (k % 7) as f64);
            }
            let elapsed = start.elapsed();
            other.join().unwrap();
            elapsed
        })
    });
    g.finish();

    // Scrape cost (off the hot path), with a realistic number of series.
    for sym in ["ETHUSDT", "SOLUSDT", "BNBUSDT"] {
        let s = Symbol::new(sym).unwrap();
        for stream in StreamKind::ALL {
            metrics.ws_latency(s, *stream).observe(0.002);
        }
    }
    c.bench_function("metrics_encode", |b| b.iter(|| black_box(metrics.encode())));
}

criterion_group!(benches, bench_metrics);
criterion_main!(benches);
