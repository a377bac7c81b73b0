//! Throughput of the simulator over loopback: WebSocket messages/s to one client, the stress
//! mix delivered over one combined connection (rate-driven market, 300 symbols) with the
//! process's CPU, and REST orders/s. Run: `cargo bench -p kestrel-sim --bench throughput`
//! (`THROUGHPUT_STRESS_RATE=<msgs/s per symbol>` sets the stress rate, default 500 = 150 000/s).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use kestrel_sim::{MarketRates, Sim, SimConfig};
use sha2::Sha256;

#[path = "common/stress_config.rs"]
mod stress_config;

const RUN: Duration = Duration::from_secs(3);

fn config() -> SimConfig {
    let mut c = SimConfig::default_market();
    c.manual_market = true;
    c.limits.request_weight_per_minute = u32::MAX;
    c.limits.orders_per_10s = u32::MAX;
    c.limits.orders_per_day = u32::MAX;
    c.ws.channel_capacity = 1 << 16;
    // Cheaper steps (fewer background levels, a trade every step) so the producer is not the
    // bottleneck of the WS measurement: it measures delivery to the client.
    for s in &mut c.symbols {
        s.levels = 5;
        s.trade_probability_pct = 100;
    }
    c
}

async fn ws_msgs_per_sec() -> f64 {
    let sim = Arc::new(Sim::start(config(), "127.0.0.1:0").await.unwrap());
    let streams: Vec<String> = ["btcusdt", "ethusdt", "bnbusdt"]
        .iter()
        .flat_map(|s| {
            ["depth@100ms", "trade", "aggTrade", "bookTicker", "depth"].map(|k| format!("{s}@{k}"))
        })
        .collect();
    let url = format!("{}/stream?streams={}", sim.ws_stream_url(), streams.join("/"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    while sim.connections().is_empty() {
        tokio::task::yield_now().await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (sim, stop) = (sim.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            while !stop.load(Ordering::Relaxed) {
                sim.step_market(1);
            }
        })
    };
    let (n, secs) = count_text_frames(&mut ws).await;
    stop.store(true, Ordering::Relaxed);
    producer.await.unwrap();
    let lagged = sim.stats().lagged_disconnects;
    println!("ws: {n} messages in {secs:.2} s to one client (lagged disconnects: {lagged})");
    n as f64 / secs
}

/// Counts the text frames `ws` delivers for [`RUN`] (stops early when the stream ends or is
/// silent for a second); returns the count and the seconds it took.
async fn count_text_frames<S>(ws: &mut S) -> (u64, f64)
where
    S: futures_util::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < RUN {
        match tokio::time::timeout(Duration::from_secs(1), ws.next()).await {
            Ok(Some(Ok(m))) if m.is_text() => n += 1,
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    (n, start.elapsed().as_secs_f64())
}

/// This process's CPU time (user + system) from `/proc/self/stat`, if readable (Linux).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
}

/// The stress scenario's market (300 symbols, `rate` msgs/s each, half depth diffs, half
/// trades) delivered to one combined connection subscribed to every `@depth@100ms` and
/// `@trade` stream (what the bot subscribes to). Returns (frames received per second, CPU of
/// this whole process — simulator and client — in % of one core).
async fn stress_ws(rate: u32) -> (f64, f64) {
    let mut cfg = stress_config::stress_config(300);
    cfg.ws.channel_capacity = 1 << 17;
    let depth = rate.div_ceil(2);
    cfg.market_rates = Some(MarketRates {
        depth_per_s: depth,
        trades_per_s: rate - depth,
        book_ticker_per_s: 0,
        tick_ms: 1,
    });
    let sim = Sim::start(cfg, "127.0.0.1:0").await.unwrap();
    let streams: Vec<String> = (0..300)
        .flat_map(|i| [format!("s{i:03}usdt@depth@100ms"), format!("s{i:03}usdt@trade")])
        .collect();
    let url = format!("{}/stream?streams={}", sim.ws_stream_url(), streams.join("/"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    // Let the connection settle, then measure.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(1) {
        let _ = tokio::time::timeout(Duration::from_secs(1), ws.next()).await;
    }
    let cpu0 = cpu_seconds().unwrap_or(0.0);
    let st0 = sim.stats();
    let (n, secs) = count_text_frames(&mut ws).await;
    let cpu = cpu_seconds().unwrap_or(0.0) - cpu0;
    let st = sim.stats();
    let lagged = st.lagged_disconnects;
    println!(
        "stress ws: generated {:.0} depth steps/s and {:.0} trades/s, sent {:.0} frames/s",
        (st.market_steps - st0.market_steps) as f64 / secs,
        (st.trades - st0.trades) as f64 / secs,
        (st.ws_messages_sent - st0.ws_messages_sent) as f64 / secs,
    );
    println!(
        "stress ws: {n} frames in {secs:.2} s at {rate}/s x 300 symbols offered, process CPU \
         {:.0} % of one core (simulator + client; lagged disconnects: {lagged})",
        100.0 * cpu / secs
    );
    sim.shutdown().await;
    (n as f64 / secs, 100.0 * cpu / secs)
}

async fn orders_per_sec() -> f64 {
    let sim = Sim::start(config(), "127.0.0.1:0").await.unwrap();
    let base = sim.rest_url();
    let ts = sim.server_time_ms();
    let mut tasks = Vec::new();
    let deadline = Instant::now() + RUN;
    for w in 0..4 {
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut n: u64 = 0;
            while Instant::now() < deadline {
                // IOC far below the market: validated, locked, matched (nothing), expired.
                let q = format!(
                    "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=IOC&quantity=0.001&price=60000&newClientOrderId=b{w}-{n}&timestamp={}",
                    ts
                );
                let mut mac = Hmac::<Sha256>::new_from_slice(kestrel_sim::config::DEMO_HMAC_SECRET.as_bytes()).unwrap();
                mac.update(q.as_bytes());
                let sig = hex::encode(mac.finalize().into_bytes());
                let r = http
                    .post(format!("{base}/api/v3/order?{q}&signature={sig}"))
                    .header("X-MBX-APIKEY", kestrel_sim::config::DEMO_HMAC_API_KEY)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
                n += 1;
            }
            n
        }));
    }
    let start = Instant::now();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!("rest: {total} orders in {secs:.2} s over 4 connections");
    sim.shutdown().await;
    total as f64 / secs
}

fn main() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let ws = ws_msgs_per_sec().await;
        let rate = std::env::var("THROUGHPUT_STRESS_RATE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(500);
        let (stress, cpu) = stress_ws(rate).await;
        let orders = orders_per_sec().await;
        println!(
            "RESULT ws_msgs_per_sec={ws:.0} (target >= 20000) stress_ws_msgs_per_sec={stress:.0} \
             (offered {}, process cpu {cpu:.0} %) orders_per_sec={orders:.0} (target >= 2000)",
            300 * u64::from(rate)
        );
    });
}
