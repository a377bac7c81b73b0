//! WebSocket API order entry against `kestrel-sim`: the same round trips, typed rejects and
//! unknown-outcome rules as REST, through [`OrderGateway`].

use std::time::Duration;

use kestrel_binance::error::BinanceError;
use kestrel_binance::gateway::OrderGateway;
use kestrel_binance::rest::OrderRef;
use kestrel_binance::ws_api::{SessionEvent, WsApiClient, WsApiConfig};
use kestrel_model::OrderStatus;
use kestrel_sim::{Fault, SimHandle};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::rest::{btc, cid, qty, rest, resting_buy, sim};

/// A connected WS API gateway sharing the REST client's clock offset and limiter.
async fn gateway(sim: &SimHandle, timeout: Duration) -> (OrderGateway, WsApiClient) {
    let r = rest(sim);
    let mut cfg = WsApiConfig::sharing(Url::parse(&sim.ws_api_url()).unwrap(), &r);
    cfg.request_timeout = timeout;
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let ws = WsApiClient::start(cfg, Some(tx), CancellationToken::new());
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap();
    assert_eq!(first, Some(SessionEvent::Connected));
    // Keep draining session events in the background.
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    (OrderGateway::WsApi { ws: ws.clone(), rest: r }, ws)
}

#[tokio::test]
async fn ws_api_place_query_cancel_round_trip() {
    let sim = sim().await;
    let (gw, _ws) = gateway(&sim, Duration::from_secs(2)).await;
    assert_eq!(gw.transport_name(), "ws-api");
    let p = gw.place(&resting_buy("ws-1")).await.unwrap();
    assert_eq!((p.update.status, p.update.orig_qty), (OrderStatus::New, qty("0.001")));
    let q = gw.query(btc(), OrderRef::Client(cid("ws-1"))).await.unwrap();
    assert_eq!(q.order_id, p.update.order_id);
    assert_eq!(gw.open_orders(Some(btc())).await.unwrap().len(), 1);
    let c = gw.cancel(btc(), OrderRef::Client(cid("ws-1"))).await.unwrap();
    assert_eq!(c.status, OrderStatus::Canceled);
    gw.place(&resting_buy("ws-2")).await.unwrap();
    gw.place(&resting_buy("ws-3")).await.unwrap();
    assert_eq!(gw.cancel_all(btc()).await.unwrap().len(), 2);
    assert!(gw.open_orders(None).await.unwrap().is_empty());
    // Typed filter reject.
    let mut bad = resting_buy("ws-4");
    bad.price = Some(crate::rest::px("60000.005"));
    assert_eq!(gw.place(&bad).await.unwrap_err().code(), Some(-1013));
    sim.shutdown().await;
}

#[tokio::test]
async fn ws_api_swallowed_placement_is_unknown_then_resolved_by_query() {
    let sim = sim().await;
    let (gw, _ws) = gateway(&sim, Duration::from_millis(500)).await;
    sim.inject(Fault::SwallowOrderResponse { orders: 1 }).unwrap();
    let e = gw.place(&resting_buy("wsu-1")).await.unwrap_err();
    assert!(matches!(e, BinanceError::Timeout), "{e:?}");
    assert!(e.is_unknown_outcome());
    let q = rest(&sim).query_order(btc(), OrderRef::Client(cid("wsu-1"))).await.unwrap();
    assert_eq!(q.status, OrderStatus::New);
    assert_eq!(sim.stats().orders_accepted, 1);
    sim.shutdown().await;
}

async fn next(rx: &mut tokio::sync::mpsc::Receiver<SessionEvent>) -> SessionEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap()
}

#[tokio::test]
async fn ws_api_connection_loss_fails_in_flight_and_reconnects() {
    let sim = sim().await;
    let r = rest(&sim);
    let cfg = WsApiConfig::sharing(Url::parse(&sim.ws_api_url()).unwrap(), &r);
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let ws = WsApiClient::start(cfg, Some(tx), CancellationToken::new());
    assert_eq!(next(&mut rx).await, SessionEvent::Connected);
    // A swallowed order is in flight when the connection drops: Disconnected = unknown.
    sim.inject(Fault::SwallowOrderResponse { orders: 1 }).unwrap();
    let ws2 = ws.clone();
    let inflight = tokio::spawn(async move { ws2.place_order(&resting_buy("drop-1")).await });
    // Wait until the sim has taken the order, then cut the connection.
    tokio::time::timeout(Duration::from_secs(5), async {
        while sim.stats().swallowed_responses == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    sim.inject(Fault::DropConnections { conn_id: None }).unwrap();
    let e = inflight.await.unwrap().unwrap_err();
    assert!(matches!(e, BinanceError::Disconnected), "{e:?}");
    assert!(e.is_unknown_outcome());
    assert_eq!(next(&mut rx).await, SessionEvent::Disconnected);
    assert_eq!(next(&mut rx).await, SessionEvent::Connected);
    let q = ws.query_order(btc(), OrderRef::Client(cid("drop-1"))).await.unwrap();
    assert_eq!(q.status, OrderStatus::New);
    sim.shutdown().await;
}

#[tokio::test]
async fn scenario_s13_ws_api_clock_skew_resyncs_and_retries_once() {
    let sim = sim().await;
    let (gw, _ws) = gateway(&sim, Duration::from_secs(5)).await;
    sim.inject(Fault::ClockSkew { offset_ms: -5_000 }).unwrap();
    let p = gw.place(&resting_buy("wskew-1")).await.unwrap();
    assert_eq!(p.update.status, OrderStatus::New);
    let OrderGateway::WsApi { rest, .. } = &gw else { unreachable!() };
    let offset_ms = rest.time_offset().get() / 1_000_000;
    assert!((-5_500..=-4_500).contains(&offset_ms), "measured offset {offset_ms} ms");
    assert_eq!(gw.open_orders(Some(btc())).await.unwrap().len(), 1);
    sim.shutdown().await;
}
