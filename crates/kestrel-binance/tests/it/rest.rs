//! REST client against `kestrel-sim`: order round trips, typed filter rejects, market data,
//! account, clock skew (S13) and unknown-outcome placement (S01). Also hosts the helpers the
//! other brest modules use to start the simulator and build clients.

use std::time::Duration;

use kestrel_binance::endpoints::Endpoints;
use kestrel_binance::error::BinanceError;
use kestrel_binance::rest::{NewOrder, OrderQty, OrderRef, RespType, RestClient, RestConfig};
use kestrel_binance::sign::{Credentials, Secret};
use kestrel_model::{
    ClientOrderId, Notional, OrderStatus, OrderType, Price, Qty, Side, Symbol, TimeInForce,
};
use kestrel_sim::{Fault, Sim, SimConfig, SimHandle};
use url::Url;

/// Starts a simulator with the default market, moving only when stepped.
pub(crate) async fn sim() -> SimHandle {
    let mut cfg = SimConfig::default_market();
    cfg.manual_market = true;
    let sim = Sim::start(cfg, "127.0.0.1:0").await.unwrap();
    sim.step_market(3);
    sim
}

pub(crate) fn endpoints(sim: &SimHandle) -> Endpoints {
    Endpoints::from_base(
        Url::parse(&sim.rest_url()).unwrap(),
        Url::parse(&sim.ws_stream_url()).unwrap(),
        Url::parse(&sim.ws_api_url()).unwrap(),
    )
}

pub(crate) fn hmac_credentials() -> Credentials {
    Credentials::new(
        kestrel_sim::config::DEMO_HMAC_API_KEY,
        Secret::hmac(kestrel_sim::config::DEMO_HMAC_SECRET),
    )
}

pub(crate) fn ed25519_credentials() -> Credentials {
    Credentials::new(
        kestrel_sim::config::DEMO_ED25519_API_KEY,
        Secret::ed25519_from_bytes(&kestrel_sim::config::DEMO_ED25519_SEED),
    )
}

pub(crate) fn rest_config(sim: &SimHandle) -> RestConfig {
    let mut cfg = RestConfig::new(endpoints(sim)).with_credentials(hmac_credentials());
    cfg.request_timeout = Duration::from_secs(5);
    cfg
}

pub(crate) fn rest(sim: &SimHandle) -> RestClient {
    RestClient::new(rest_config(sim)).unwrap()
}

pub(crate) fn btc() -> Symbol {
    Symbol::new("BTCUSDT").unwrap()
}

pub(crate) fn px(s: &str) -> Price {
    s.parse().unwrap()
}

pub(crate) fn qty(s: &str) -> Qty {
    s.parse().unwrap()
}

pub(crate) fn cid(s: &str) -> ClientOrderId {
    ClientOrderId::new(s).unwrap()
}

/// A resting LIMIT GTC buy well below the market (mid 65000).
pub(crate) fn resting_buy(id: &str) -> NewOrder {
    NewOrder {
        symbol: btc(),
        client_id: cid(id),
        side: Side::Buy,
        kind: OrderType::Limit,
        time_in_force: Some(TimeInForce::Gtc),
        price: Some(px("60000")),
        qty: OrderQty::Base(qty("0.001")),
        resp_type: RespType::Result,
    }
}

#[tokio::test]
async fn rest_place_query_cancel_round_trip() {
    let sim = sim().await;
    let c = rest(&sim);
    let placed = c.place_order(&resting_buy("rt-1")).await.unwrap();
    assert_eq!(placed.update.status, OrderStatus::New);
    assert_eq!(placed.update.client_id, cid("rt-1"));
    assert_eq!(placed.update.orig_qty, qty("0.001"));
    let order_id = placed.update.order_id.unwrap();

    let q = c.query_order(btc(), OrderRef::Client(cid("rt-1"))).await.unwrap();
    assert_eq!((q.status, q.order_id), (OrderStatus::New, Some(order_id)));
    let open = c.open_orders(Some(btc())).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(c.open_orders(None).await.unwrap().len(), 1);

    let canceled = c.cancel_order(btc(), OrderRef::Client(cid("rt-1"))).await.unwrap();
    assert_eq!((canceled.status, canceled.client_id), (OrderStatus::Canceled, cid("rt-1")));
    let q = c.query_order(btc(), OrderRef::Exchange(order_id)).await.unwrap();
    assert_eq!(q.status, OrderStatus::Canceled);
    assert!(c.open_orders(Some(btc())).await.unwrap().is_empty());

    // LIMIT_MAKER rests; cancelled by exchange id.
    let mut maker = resting_buy("rt-2");
    maker.kind = OrderType::LimitMaker;
    maker.time_in_force = None;
    let p = c.place_order(&maker).await.unwrap();
    let id = p.update.order_id.unwrap();
    assert_eq!(
        c.cancel_order(btc(), OrderRef::Exchange(id)).await.unwrap().status,
        OrderStatus::Canceled
    );

    // Cancelling it again is a typed -2011.
    let e = c.cancel_order(btc(), OrderRef::Exchange(id)).await.unwrap_err();
    assert_eq!(e.code(), Some(-2011), "{e:?}");
    // Querying an id that never existed is -2013.
    let e = c.query_order(btc(), OrderRef::Client(cid("never"))).await.unwrap_err();
    assert_eq!(e.code(), Some(-2013), "{e:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn rest_market_orders_fill_and_show_in_my_trades_and_account() {
    let sim = sim().await;
    let c = rest(&sim);
    let by_quote = NewOrder {
        symbol: btc(),
        client_id: cid("mkt-q"),
        side: Side::Buy,
        kind: OrderType::Market,
        time_in_force: None,
        price: None,
        qty: OrderQty::Quote("100".parse::<Notional>().unwrap()),
        resp_type: RespType::Full,
    };
    let p = c.place_order(&by_quote).await.unwrap();
    assert_eq!(p.update.status, OrderStatus::Filled);
    assert!(!p.fills.is_empty());
    let filled: i64 = p.fills.iter().map(|f| f.qty.mantissa()).sum();
    assert_eq!(Qty::from_mantissa(filled), p.update.cum_qty);

    let by_qty = NewOrder {
        client_id: cid("mkt-b"),
        side: Side::Sell,
        qty: OrderQty::Base(qty("0.001")),
        ..by_quote
    };
    let p2 = c.place_order(&by_qty).await.unwrap();
    assert_eq!((p2.update.status, p2.update.cum_qty), (OrderStatus::Filled, qty("0.001")));

    let trades = c.my_trades(btc(), None, 100).await.unwrap();
    assert_eq!(trades.len(), p.fills.len() + p2.fills.len());
    assert!(trades.iter().any(|t| t.side == Side::Sell));
    let balances = c.account().await.unwrap();
    assert!(balances.iter().any(|b| b.asset.as_str() == "USDT"));
    sim.shutdown().await;
}

#[tokio::test]
async fn rest_filter_rejects_surface_as_typed_minus_1013() {
    let sim = sim().await;
    let c = rest(&sim);
    // TC0: quantity off the step size (LOT_SIZE); TC1: price off the tick (PRICE_FILTER).
    let mut off_step = resting_buy("f-1");
    off_step.qty = OrderQty::Base(qty("0.000015"));
    let mut off_tick = resting_buy("f-2");
    off_tick.price = Some(px("60000.005"));
    for (i, (o, filter)) in [(off_step, "LOT_SIZE"), (off_tick, "PRICE_FILTER")].iter().enumerate()
    {
        let e = c.place_order(o).await.unwrap_err();
        assert_eq!(e.code(), Some(-1013), "TC{i}: {e:?}");
        assert!(e.to_string().contains(filter), "TC{i}: {e}");
        assert!(!e.is_unknown_outcome() && !e.is_retryable(), "TC{i}");
    }
    // A LIMIT without a price never leaves the process.
    let mut no_px = resting_buy("f-3");
    no_px.price = None;
    assert!(matches!(c.place_order(&no_px).await.unwrap_err(), BinanceError::InvalidRequest(_)));
    sim.shutdown().await;
}

#[tokio::test]
async fn rest_market_data_and_exchange_info() {
    let sim = sim().await;
    let c = RestClient::new(RestConfig::new(endpoints(&sim))).unwrap();
    let d = c.depth(btc(), 100).await.unwrap();
    assert!(!d.bids.is_empty() && !d.asks.is_empty());
    assert!(d.bids[0].price < d.asks[0].price);
    assert_eq!(Some(d.last_update_id), sim.last_update_id("BTCUSDT"));
    let t = c.book_ticker(btc()).await.unwrap();
    assert_eq!((t.bid, t.ask), (d.bids[0], d.asks[0]));
    let info = c.exchange_info(&[]).await.unwrap();
    assert_eq!(info.instruments.len(), 3);
    let spec = info.instruments.iter().find(|s| s.symbol == btc()).unwrap();
    assert_eq!(spec.tick_size(), px("0.01"));
    assert!(c.rate_limiter().used_weight() >= 5 + 2 + 20);
    // A signed call without credentials is refused locally.
    assert!(matches!(c.account().await.unwrap_err(), BinanceError::Sign(_)));
    sim.shutdown().await;
}

#[tokio::test]
async fn rest_cancel_all_cancels_every_open_order() {
    let sim = sim().await;
    let c = rest(&sim);
    for id in ["ca-1", "ca-2", "ca-3"] {
        c.place_order(&resting_buy(id)).await.unwrap();
    }
    let canceled = c.cancel_all(btc()).await.unwrap();
    assert_eq!(canceled.len(), 3);
    assert!(canceled.iter().all(|u| u.status == OrderStatus::Canceled));
    assert!(c.open_orders(None).await.unwrap().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn scenario_s13_clock_skew_resyncs_and_retries_once() {
    let sim = sim().await;
    let c = rest(&sim);
    assert_eq!(c.time_offset().get(), 0);
    // The server clock falls 5 s behind: our timestamps look 5 s ahead → -1021.
    sim.inject(Fault::ClockSkew { offset_ms: -5_000 }).unwrap();
    let placed = c.place_order(&resting_buy("skew-1")).await.unwrap();
    assert_eq!(placed.update.status, OrderStatus::New);
    let offset_ms = c.time_offset().get() / 1_000_000;
    assert!((-5_500..=-4_500).contains(&offset_ms), "measured offset {offset_ms} ms");
    // Exactly one order exists: the rejected attempt never reached the book.
    assert_eq!(c.open_orders(Some(btc())).await.unwrap().len(), 1);
    // Later signed calls use the corrected clock without another -1021.
    assert_eq!(c.account().await.map(|_| ()).map_err(|e| e.code()), Ok(()));
    sim.shutdown().await;
}

#[tokio::test]
async fn scenario_s01_unknown_outcome_resolved_by_query_never_duplicated() {
    let sim = sim().await;
    // Placements go through a client with a short timeout; queries through a normal one.
    let mut cfg = rest_config(&sim);
    cfg.request_timeout = Duration::from_millis(500);
    let placer = RestClient::new(cfg).unwrap();
    let c = rest(&sim);
    // TC0: the exchange executes the placement but never answers.
    sim.inject(Fault::SwallowOrderResponse { orders: 1 }).unwrap();
    let e = placer.place_order(&resting_buy("unk-1")).await.unwrap_err();
    assert!(e.is_unknown_outcome(), "{e:?}");
    assert!(matches!(e, BinanceError::Timeout));
    let q = c.query_order(btc(), OrderRef::Client(cid("unk-1"))).await.unwrap();
    assert_eq!(q.status, OrderStatus::New);
    // TC1: a 503 on placement is unknown too; the query says it never happened.
    sim.inject(Fault::HttpError { status: 503, requests: 1, retry_after_s: None }).unwrap();
    let e = placer.place_order(&resting_buy("unk-2")).await.unwrap_err();
    assert!(e.is_unknown_outcome(), "{e:?}");
    let e = c.query_order(btc(), OrderRef::Client(cid("unk-2"))).await.unwrap_err();
    assert_eq!(e.code(), Some(-2013));
    // Nothing was sent twice: exactly the one swallowed order rests.
    let open = c.open_orders(None).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].client_id, cid("unk-1"));
    assert_eq!(sim.stats().orders_accepted, 1);
    sim.shutdown().await;
}
