//! Rate limiting against `kestrel-sim`: 429 back-off and recovery (S06), 418 full stop until
//! the ban ends (S07), two bots sharing one IP's budget (S09), header-corrected weight.

use std::sync::Arc;
use std::time::Duration;

use kestrel_model::{ManualClock, UnixNanos};
use tokio::time::Instant;

use kestrel_binance::error::BinanceError;
use kestrel_binance::rate_limit::{ExchangeLimits, Limit};
use kestrel_binance::rest::RestClient;
use kestrel_sim::Fault;

use crate::rest::{btc, rest, sim};

#[tokio::test]
async fn scenario_s06_429_backs_off_per_retry_after_and_recovers() {
    let sim = sim().await;
    let c = rest(&sim);
    c.server_time().await.unwrap();
    let before = sim.stats().rest_requests;
    sim.inject(Fault::HttpError { status: 429, requests: 1, retry_after_s: Some(1) }).unwrap();
    let e = c.server_time().await.unwrap_err();
    assert!(
        matches!(e, BinanceError::RateLimited { banned: false, retry_after } if retry_after == Duration::from_secs(1)),
        "{e:?}"
    );
    assert!(e.is_rate_limited() && e.is_retryable());
    // Every request now waits out Retry-After instead of hammering the exchange. The limiter
    // reads tokio's clock, so the test freezes it and moves it to the pause's end instead of
    // waiting a real second; nothing is in flight while it moves.
    tokio::time::pause();
    let (left, banned) = c.rate_limiter().paused_for().unwrap();
    assert!(!banned && left <= Duration::from_secs(1));
    let end = Instant::now() + left;
    let request = |c: kestrel_binance::rest::RestClient, depth: bool| async move {
        let ok =
            if depth { c.depth(btc(), 5).await.is_ok() } else { c.server_time().await.is_ok() };
        (ok, Instant::now())
    };
    let a = tokio::spawn(request(c.clone(), false));
    let b = tokio::spawn(request(c.clone(), true));
    tokio::time::advance(left - Duration::from_millis(1)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(sim.stats().rest_requests, before + 1, "a request went out during the pause");
    tokio::time::advance(Duration::from_millis(1)).await;
    tokio::time::resume();
    for (i, r) in [a.await.unwrap(), b.await.unwrap()].into_iter().enumerate() {
        assert!(r.0, "TC{i}: request failed after the pause");
        assert!(r.1 >= end, "TC{i}: request finished before the pause ended");
    }
    let s = sim.stats();
    assert_eq!(s.rest_requests, before + 3, "one 429 then exactly the two paused requests");
    assert_eq!(s.http_418, 0, "never escalated to a ban");
    sim.shutdown().await;
}

#[tokio::test]
async fn scenario_s07_418_stops_every_request_until_the_ban_ends() {
    let sim = sim().await;
    let c = rest(&sim);
    sim.inject(Fault::HttpError { status: 418, requests: 1, retry_after_s: Some(2) }).unwrap();
    let e = c.depth(btc(), 5).await.unwrap_err();
    assert!(matches!(e, BinanceError::RateLimited { banned: true, .. }), "{e:?}");
    assert!(!e.is_retryable());
    let sent = sim.stats().rest_requests;
    // During the ban nothing is sent: requests fail locally, signed or not, orders included.
    for _ in 0..3 {
        assert!(matches!(
            c.server_time().await.unwrap_err(),
            BinanceError::RateLimited { banned: true, .. }
        ));
    }
    assert!(matches!(
        c.place_order(&crate::rest::resting_buy("ban-1")).await.unwrap_err(),
        BinanceError::RateLimited { banned: true, .. }
    ));
    assert_eq!(sim.stats().rest_requests, sent);
    // The ban's end is the event under test. The limiter reads tokio's clock: freeze it and
    // move it to the end instead of waiting two real seconds (nothing is in flight meanwhile).
    tokio::time::pause();
    let (left, banned) = c.rate_limiter().paused_for().unwrap();
    assert!(banned && left <= Duration::from_secs(2));
    // 1 ms before the end: still a full stop.
    tokio::time::advance(left - Duration::from_millis(1)).await;
    assert!(matches!(
        c.server_time().await.unwrap_err(),
        BinanceError::RateLimited { banned: true, .. }
    ));
    assert_eq!(sim.stats().rest_requests, sent);
    tokio::time::advance(Duration::from_millis(1)).await;
    tokio::time::resume();
    c.server_time().await.unwrap();
    assert_eq!(sim.stats().rest_requests, sent + 1);
    sim.shutdown().await;
}

/// S09: two bots on one IP, each configured for half of the exchange's weight limit. Each
/// spends exactly its half; the next request of either waits for its own window instead of
/// going out (where it would meet the exchange's 429), and goes out once the window rolls —
/// at the exchange's next whole minute (15 s later here), not a minute after the bot started.
#[tokio::test]
async fn scenario_s09_bots_sharing_an_ip_stay_within_their_share() {
    let mut cfg = kestrel_sim::SimConfig::default_market();
    cfg.manual_market = true;
    cfg.limits.request_weight_per_minute = 100;
    let sim = kestrel_sim::Sim::start(cfg, "127.0.0.1:0").await.unwrap();
    // 45 s into an exchange minute (the sim's windows are aligned to its clock); the bots'
    // clock reads the same, so their windows align to the same minute.
    let start_ms = 1_700_000_040_000 + 45_000;
    sim.set_time_ms(start_ms);
    let bot = || {
        let mut c = crate::rest::rest_config(&sim);
        c.clock = Arc::new(ManualClock::new(UnixNanos::from_millis(start_ms)));
        c.rate_limit_share_pct = 50;
        c.limits = ExchangeLimits {
            request_weight: vec![Limit { interval: Duration::from_secs(60), limit: 100 }],
            orders: ExchangeLimits::binance_spot_default().orders,
        };
        RestClient::new(c).unwrap()
    };
    let (a, b) = (bot(), bot());
    // TC0: each bot's 50 (weight 1 each) go out and succeed: 100 in all, the exchange's limit.
    for (i, c) in [&a, &b].into_iter().enumerate() {
        for _ in 0..50 {
            c.server_time().await.unwrap_or_else(|e| panic!("TC0 bot {i}: {e:?}"));
        }
    }
    let sent = sim.stats().rest_requests;
    assert_eq!(sent, 100);
    // TC1: one more request per bot waits (nothing sent). The client windows read tokio's
    // clock: freeze it so the test can move it to the windows' end instead of waiting.
    tokio::time::pause();
    let more = |c: &RestClient| {
        let c = c.clone();
        tokio::spawn(async move { c.server_time().await })
    };
    let (ma, mb) = (more(&a), more(&b));
    tokio::time::advance(Duration::from_secs(14)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(sim.stats().rest_requests, sent, "TC1: a bot went past its share");
    // TC2: at the exchange's next minute (both clocks) both go out and succeed at once; the
    // exchange never said 429. (Windows anchored at the bots' start would hold them 45 s more.)
    sim.advance_time_ms(15_000);
    tokio::time::advance(Duration::from_secs(1)).await;
    tokio::time::resume();
    for (i, m) in [ma, mb].into_iter().enumerate() {
        let r = tokio::time::timeout(Duration::from_secs(5), m).await;
        r.unwrap_or_else(|_| panic!("TC2 bot {i}: still waiting after the exchange's minute"))
            .unwrap()
            .unwrap_or_else(|e| panic!("TC2 bot {i}: {e:?}"));
    }
    let s = sim.stats();
    assert_eq!(s.rest_requests, sent + 2);
    assert_eq!((s.http_429, s.http_418), (0, 0), "TC2: the shared IP hit the exchange's limit");
    sim.shutdown().await;
}

#[tokio::test]
async fn used_weight_follows_the_exchange_header() {
    let sim = sim().await;
    let c = rest(&sim);
    c.depth(btc(), 1000).await.unwrap();
    // The sim charges weight on arrival and reports X-MBX-USED-WEIGHT-1M; our count agrees.
    assert_eq!(c.rate_limiter().used_weight(), 50);
    c.server_time().await.unwrap();
    assert_eq!(c.rate_limiter().used_weight(), 51);
    sim.shutdown().await;
}
