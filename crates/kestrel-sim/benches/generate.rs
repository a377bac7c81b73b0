//! In-process cost of generating the stress benchmark's market data (`bench/stress.toml`:
//! 300 symbols, half depth diffs, half trades), one thread, no sockets: every symbol does one
//! depth step and one background trade per round, and the frames of the streams the bot
//! subscribes to (`@depth@100ms`, `@trade`) are drained as a combined-stream client would
//! receive them. Throughput is in delivered frames. Run:
//! `cargo bench -p kestrel-sim --bench generate`.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use kestrel_sim::OfflineMarket;

#[path = "common/stress_config.rs"]
mod stress_config;
use stress_config::stress_config;

fn market() -> OfflineMarket {
    let mut m = OfflineMarket::new(&stress_config(300), 1 << 14).unwrap();
    for i in 0..m.symbols() {
        let p = m.stream_prefix(i).to_string();
        assert!(m.subscribe(&format!("{p}@depth@100ms")) && m.subscribe(&format!("{p}@trade")));
    }
    m
}

/// One round: every symbol one depth step and one trade; returns (frames, bytes) delivered.
fn round(m: &mut OfflineMarket, now: u64) -> (usize, usize) {
    let mut bytes = 0;
    let mut frames = 0;
    for s in 0..m.symbols() {
        m.trade(s, now);
        m.depth_step(s, now);
        if s % 32 == 31 {
            frames += m.drain(|f| bytes += black_box(f).len());
        }
    }
    frames += m.drain(|f| bytes += black_box(f).len());
    (frames, bytes)
}

/// This process's CPU time (user + system) from `/proc/self/stat`, if readable (Linux).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn bench(c: &mut Criterion) {
    let mut m = market();
    // Warm up the books, and learn how many frames a round delivers.
    let mut now = 1_750_000_000_000u64;
    for _ in 0..50 {
        round(&mut m, now);
        now += 1;
    }
    let (frames, bytes) = round(&mut m, now);
    println!("one round: {frames} frames, {bytes} bytes (300 symbols)");
    // Frames per CPU second: unlike wall time, not inflated when other processes share the
    // cores (the figure to compare on a busy machine).
    if let Some(cpu0) = cpu_seconds() {
        let (mut n, start) = (0usize, std::time::Instant::now());
        while start.elapsed() < Duration::from_secs(4) {
            now += 1;
            n += round(&mut m, now).0;
        }
        let cpu = cpu_seconds().unwrap_or(cpu0) - cpu0;
        let wall = start.elapsed().as_secs_f64();
        println!(
            "cpu-time: {n} frames in {cpu:.2} s CPU ({wall:.2} s wall): {:.0} frames per CPU second",
            n as f64 / cpu.max(0.01)
        );
    }
    let mut g = c.benchmark_group("stress_mix");
    g.sample_size(20).measurement_time(Duration::from_secs(6));
    g.throughput(Throughput::Elements(frames as u64));
    g.bench_function("300_symbols_depth_and_trade", |b| {
        b.iter(|| {
            now += 1;
            round(&mut m, now)
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
