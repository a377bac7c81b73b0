//! Request weight → 429 with Retry-After → 418 ban; order-count headers and -1015.

use super::*;

#[tokio::test]
async fn weight_limit_escalates_429_then_418_and_ban_expires() {
    let mut cfg = test_config();
    cfg.limits.request_weight_per_minute = 10;
    cfg.limits.ban_after_429s = 2;
    cfg.limits.ban_duration_ms = 120_000;
    let sim = start(cfg).await;
    sim.set_time_ms(T0 - T0 % 60_000); // start of a minute window
    let c = Rest::demo(&sim);
    // TC0: weight 5 each (depth limit 100): 5, 10.
    for used in ["5", "10"] {
        let a = c.get("/api/v3/depth", "symbol=BTCUSDT").await;
        assert_eq!(a.status, 200);
        assert_eq!(a.headers["x-mbx-used-weight-1m"], used);
    }
    // TC1: over the limit → 429, -1003, Retry-After until the window ends (60 s).
    for _ in 0..2 {
        let a = c.get("/api/v3/depth", "symbol=BTCUSDT").await;
        assert_eq!((a.status, a.code()), (429, -1003));
        assert_eq!(a.headers["retry-after"], "60");
        assert_eq!(a.headers["x-mbx-used-weight-1m"], "10");
    }
    // TC2: keeps hammering → 418 ban with Retry-After = ban length.
    let a = c.get("/api/v3/ping", "").await;
    assert_eq!((a.status, a.code()), (418, -1003));
    assert_eq!(a.headers["retry-after"], "120");
    // TC3: still banned in the next window; free after the ban.
    sim.advance_time_ms(61_000);
    assert_eq!(c.get("/api/v3/ping", "").await.status, 418);
    sim.advance_time_ms(60_000);
    assert_eq!(c.get("/api/v3/ping", "").await.status, 200);
    let st = sim.stats();
    assert_eq!((st.http_429, st.http_418), (2, 2));
    sim.shutdown().await;
}

#[tokio::test]
async fn order_count_headers_and_limit() {
    let mut cfg = test_config();
    cfg.limits.orders_per_10s = 2;
    let sim = start(cfg).await;
    sim.set_time_ms(T0 - T0 % 10_000);
    let c = Rest::demo(&sim);
    let ts = sim.server_time_ms();
    let p = [
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "0.001"),
        ("price", "60000"),
    ];
    for n in ["1", "2"] {
        let a = c.signed("POST", "/api/v3/order", &p, ts).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.headers["x-mbx-order-count-10s"], n);
        assert_eq!(a.headers["x-mbx-order-count-1d"], n);
    }
    let a = c.signed("POST", "/api/v3/order", &p, ts).await;
    assert_eq!((a.status, a.code()), (429, -1015));
    assert!(a.headers.contains_key("retry-after"));
    sim.advance_time_ms(10_000);
    let a = c.signed("POST", "/api/v3/order", &p, sim.server_time_ms()).await;
    assert_eq!(a.headers["x-mbx-order-count-10s"], "1");
    assert_eq!(a.headers["x-mbx-order-count-1d"], "3");
    sim.shutdown().await;
}
