//! Golden tests: every Binance doc payload in `testdata/binance/` that this half of the crate
//! covers parses to the documented values (REST bodies, exchangeInfo filters → InstrumentSpec,
//! errors, WS API envelopes, user-data events → model types).

use kestrel_binance::error::BinanceError;
use kestrel_binance::rest::{parse_canceled_list, parse_exchange_info};
use kestrel_binance::user_stream::{handle_event, Handled, UserEvent};
use kestrel_binance::wire;
use kestrel_binance::{parse, rate_limit::Limit};
use kestrel_model::{
    Asset, ClientOrderId, Level, ManualClock, Notional, OrderId, OrderStatus, Price, Qty, Side,
    Symbol, TradeId, UnixNanos,
};
use std::time::Duration;

/// A vector file's text; leaked so borrowed wire types can outlive the statement (tests only).
fn load(name: &str) -> &'static str {
    let s = std::fs::read_to_string(format!(
        "{}/../../testdata/binance/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    Box::leak(s.into_boxed_str())
}
fn px(s: &str) -> Price {
    s.parse().unwrap()
}
fn qty(s: &str) -> Qty {
    s.parse().unwrap()
}
fn ntl(s: &str) -> Notional {
    s.parse().unwrap()
}
const T0: UnixNanos = UnixNanos(1);

#[test]
fn rest_depth_snapshot_and_server_time() {
    let d: wire::rest::Depth = serde_json::from_str(load("rest_depth_snapshot.json")).unwrap();
    assert_eq!(d.last_update_id, 1_027_024);
    assert_eq!(d.bids, vec![Level::new(px("4"), qty("431"))]);
    assert_eq!(d.asks, vec![Level::new(px("4.000002"), qty("12"))]);
    let t: wire::rest::ServerTime = serde_json::from_str(load("rest_server_time.json")).unwrap();
    assert_eq!(t.server_time, 1_499_827_319_559);
}

#[test]
fn rest_exchange_info_to_instrument_spec_and_limits() {
    let info = parse_exchange_info(load("rest_exchangeInfo.json").as_bytes()).unwrap();
    assert!(info.refused.is_empty());
    assert_eq!(info.server_time, UnixNanos::from_millis(1_655_969_291_181));
    assert_eq!(
        info.limits.request_weight,
        vec![Limit { interval: Duration::from_secs(60), limit: 6000 }]
    );
    assert_eq!(
        info.limits.orders,
        vec![
            Limit { interval: Duration::from_secs(10), limit: 50 },
            Limit { interval: Duration::from_secs(86_400), limit: 160_000 }
        ]
    );
    let s = &info.instruments[0];
    assert_eq!(s.symbol, Symbol::new("BNBBTC").unwrap());
    assert_eq!((s.base, s.quote), (Asset::new("BNB").unwrap(), Asset::new("BTC").unwrap()));
    assert!(s.trading);
    let pf = s.price_filter.unwrap();
    assert_eq!(
        (pf.min_price, pf.max_price, pf.tick_size),
        (px("0.000001"), px("100000"), px("0.000001"))
    );
    let ls = s.lot_size.unwrap();
    assert_eq!((ls.min_qty, ls.max_qty, ls.step_size), (qty("0.001"), qty("100000"), qty("0.001")));
    // The REST page's example has no filters and an empty rateLimits: defaults apply.
    let rp = parse_exchange_info(load("rest_exchangeInfo_restpage.json").as_bytes()).unwrap();
    assert_eq!(rp.limits.request_weight[0].limit, 6000);
    // The WebSocket API's exchangeInfo `result` has the same shape.
    let ws: serde_json::Value =
        serde_json::from_str(load("wsapi_exchangeInfo_response.json")).unwrap();
    let r = parse_exchange_info(ws["result"].to_string().as_bytes()).unwrap();
    assert_eq!(r.instruments.len(), 1);
}

/// A symbol whose filters hold every documented filter file.
fn symbol_with_filters(filters: &[String]) -> String {
    format!(
        r#"{{"timezone":"UTC","serverTime":1,"rateLimits":[],"exchangeFilters":[],"symbols":[{{"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT","filters":[{}]}}]}}"#,
        filters.join(",")
    )
}

#[test]
fn every_filter_vector_parses_into_the_spec() {
    let dir = format!("{}/../../testdata/binance/filters", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 19);
    let filters: Vec<String> = files.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect();
    for (p, f) in files.iter().zip(&filters) {
        serde_json::from_str::<wire::rest::Filter<'_>>(f)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    let info = parse_exchange_info(symbol_with_filters(&filters).as_bytes()).unwrap();
    let s = &info.instruments[0];
    let mls = s.market_lot_size.unwrap();
    assert_eq!(
        (mls.min_qty, mls.max_qty, mls.step_size),
        (qty("0.001"), qty("100000"), qty("0.001"))
    );
    let mn = s.min_notional.unwrap();
    assert_eq!((mn.min_notional, mn.apply_to_market, mn.avg_price_mins), (ntl("0.001"), true, 5));
    let n = s.notional.unwrap();
    assert_eq!(
        (n.min_notional, n.max_notional, n.apply_min_to_market, n.apply_max_to_market),
        (ntl("10"), ntl("10000"), false, false)
    );
    let pp = s.percent_price.unwrap();
    assert_eq!(
        (pp.multiplier_up, pp.multiplier_down, pp.avg_price_mins),
        (px("1.3"), px("0.7"), 5)
    );
    let ps = s.percent_price_by_side.unwrap();
    assert_eq!(
        (
            ps.bid_multiplier_up,
            ps.bid_multiplier_down,
            ps.ask_multiplier_up,
            ps.ask_multiplier_down,
            ps.avg_price_mins
        ),
        (px("1.2"), px("0.2"), px("5"), px("0.8"), 1)
    );
    assert_eq!(s.max_num_orders, Some(25));
}

#[test]
fn symbols_whose_filters_do_not_fit_fixed_point_are_refused() {
    let cases = [
        // TC0: maxPrice beyond Price's ±92,233,720,368 range
        r#"{"filterType":"PRICE_FILTER","minPrice":"0.01","maxPrice":"100000000000.00000000","tickSize":"0.01"}"#,
        // TC1: a tick size with 9 significant decimals
        r#"{"filterType":"PRICE_FILTER","minPrice":"0","maxPrice":"0","tickSize":"0.000000001"}"#,
        // TC2: a step size that is not a number
        r#"{"filterType":"LOT_SIZE","minQty":"0","maxQty":"1","stepSize":"1e-8"}"#,
    ];
    for (i, f) in cases.iter().enumerate() {
        let info = parse_exchange_info(symbol_with_filters(&[f.to_string()]).as_bytes()).unwrap();
        assert!(info.instruments.is_empty(), "TC{i}");
        assert_eq!(info.refused.len(), 1, "TC{i}");
        assert!(matches!(info.refused[0].1, BinanceError::Invalid { .. }), "TC{i}");
    }
}

#[test]
fn order_responses_ack_result_full() {
    let ack: wire::rest::Order<'_> =
        serde_json::from_str(load("rest_order_response_ack.json")).unwrap();
    let ctx = parse::AckContext { side: Side::Buy, orig_qty: qty("1") };
    let u = parse::order_update(&ack, T0, Some(ctx)).unwrap();
    assert_eq!(u.symbol, Symbol::new("BTCUSDT").unwrap());
    assert_eq!(u.order_id, Some(OrderId(28)));
    assert_eq!(u.client_id, ClientOrderId::new("6gCrw2kRUAF9CvJDGP16IP").unwrap());
    assert_eq!(
        (u.status, u.side, u.orig_qty, u.cum_qty),
        (OrderStatus::New, Side::Buy, qty("1"), Qty::ZERO)
    );
    assert_eq!(u.ts_exchange, UnixNanos::from_millis(1_507_725_176_595));

    let res: wire::rest::Order<'_> =
        serde_json::from_str(load("rest_order_response_result.json")).unwrap();
    let u = parse::order_update(&res, T0, None).unwrap();
    assert_eq!((u.status, u.side), (OrderStatus::Filled, Side::Sell));
    assert_eq!((u.orig_qty, u.cum_qty, u.cum_quote), (qty("10"), qty("10"), ntl("10")));

    let full: wire::rest::Order<'_> =
        serde_json::from_str(load("rest_order_response_full.json")).unwrap();
    let fills = parse::order_fills(&full).unwrap();
    assert_eq!(fills.len(), 5);
    assert_eq!(fills[0].trade_id, TradeId(56));
    assert_eq!(
        (fills[0].price, fills[0].qty, fills[0].commission),
        (px("4000"), qty("1"), ntl("4"))
    );
    assert_eq!(fills[1].commission, ntl("19.995"));
    assert_eq!(fills[4].trade_id, TradeId(60));
    assert_eq!(fills[0].commission_asset, Some(Asset::new("USDT").unwrap()));
    let total: i64 = fills.iter().map(|f| f.qty.mantissa()).sum();
    assert_eq!(Qty::from_mantissa(total), qty("10"));
}

#[test]
fn query_cancel_and_open_orders() {
    let q: wire::rest::Order<'_> =
        serde_json::from_str(load("rest_query_order_response.json")).unwrap();
    let u = parse::order_update(&q, T0, None).unwrap();
    assert_eq!(
        (u.symbol.as_str(), u.client_id.as_str(), u.order_id),
        ("LTCBTC", "myOrder1", Some(OrderId(1)))
    );
    assert_eq!((u.status, u.side, u.orig_qty), (OrderStatus::New, Side::Buy, qty("1")));
    assert_eq!(q.price, Some(px("0.1")));
    assert_eq!(u.ts_exchange, UnixNanos::from_millis(1_499_827_319_559));

    // Cancel: the order's own id is origClientOrderId, not the cancel's clientOrderId.
    let c: wire::rest::Order<'_> =
        serde_json::from_str(load("rest_cancel_order_response.json")).unwrap();
    let u = parse::order_update(&c, T0, None).unwrap();
    assert_eq!(
        (u.client_id.as_str(), u.status, u.order_id),
        ("myOrder1", OrderStatus::Canceled, Some(OrderId(4)))
    );

    let open: Vec<wire::rest::Order<'_>> =
        serde_json::from_str(load("rest_open_orders_response.json")).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(parse::order_update(&open[0], T0, None).unwrap().status, OrderStatus::New);

    // DELETE openOrders mixes orders and order lists; list members are flattened.
    let all =
        parse_canceled_list(load("rest_cancel_open_orders_response.json").as_bytes(), T0).unwrap();
    assert!(all.iter().all(|u| u.status == OrderStatus::Canceled));
    assert_eq!(all[0].client_id.as_str(), "E6APeyTJvkMvLMYMqu1KQ4");
    let ids: Vec<u64> = all.iter().map(|u| u.order_id.unwrap().0).collect();
    assert!(ids.contains(&20) && ids.contains(&21), "{ids:?}");
}

#[test]
fn account_balances() {
    let a: wire::rest::Account<'_> = serde_json::from_str(load("rest_account.json")).unwrap();
    let b = parse::balances(&a).unwrap();
    assert!(a.can_trade);
    assert_eq!(b.len(), 2);
    assert_eq!(
        (b[0].asset.as_str(), b[0].free, b[0].locked),
        ("BTC", ntl("4723846.89208129"), Notional::ZERO)
    );
    assert_eq!(b[1].free, ntl("4763368.68006011"));
}

#[test]
fn error_bodies() {
    // TC0..2: (file, code, message)
    let cases = [
        ("rest_error.json", -1121, "Invalid symbol."),
        ("rest_error_invalid_cancel_restrictions.json", -1145, ""),
        ("rest_error_cancel_restrictions_not_met.json", -2011, ""),
    ];
    for (i, (f, code, msg)) in cases.iter().enumerate() {
        let e: wire::rest::ErrorBody<'_> = serde_json::from_str(load(f)).unwrap();
        assert_eq!(e.code, *code, "TC{i}");
        if !msg.is_empty() {
            assert_eq!(e.msg, *msg, "TC{i}");
        }
    }
}

#[test]
fn ws_api_envelopes() {
    let ok: wire::ws_api::Frame<'_> =
        serde_json::from_str(load("wsapi_response_success.json")).unwrap();
    assert_eq!(ok.status, Some(200));
    assert!(
        matches!(&ok.id, Some(wire::ws_api::Id::Str(s)) if s == "e2a85d9f-07a5-4f94-8d5f-789dc3deb097")
    );
    let o: wire::rest::Order<'_> = serde_json::from_str(ok.result.unwrap().get()).unwrap();
    assert_eq!(o.order_id, 12_510_053_279);
    let rl = ok.rate_limits.unwrap();
    assert_eq!((rl[2].rate_limit_type.as_ref(), rl[2].count), ("REQUEST_WEIGHT", Some(321)));

    let err: wire::ws_api::Frame<'_> =
        serde_json::from_str(load("wsapi_response_error.json")).unwrap();
    let e = err.error.unwrap();
    assert_eq!((err.status, e.code), (Some(400), -2010));
    assert_eq!(e.msg, "Account has insufficient balance for requested action.");

    let ban: wire::ws_api::Frame<'_> =
        serde_json::from_str(load("wsapi_error_ip_banned_418.json")).unwrap();
    let d = ban.error.unwrap().data.unwrap();
    assert_eq!(
        (ban.status, d.retry_after, d.server_time),
        (Some(418), Some(1_659_146_400_000), Some(1_659_142_907_531))
    );

    let revoked: wire::ws_api::Frame<'_> =
        serde_json::from_str(load("wsapi_session_revoked_error.json")).unwrap();
    assert!(revoked.id.is_none());
    assert_eq!(revoked.error.unwrap().code, -2015);

    for f in [
        "wsapi_userDataStream_subscribe_response.json",
        "wsapi_userDataStream_subscribe_signature_response.json",
    ] {
        let fr: wire::ws_api::Frame<'_> = serde_json::from_str(load(f)).unwrap();
        let s: wire::ws_api::SubscribeResult =
            serde_json::from_str(fr.result.unwrap().get()).unwrap();
        assert_eq!(s.subscription_id, 0, "{f}");
    }
    let logon: wire::ws_api::Frame<'_> =
        serde_json::from_str(load("wsapi_session_logon_response.json")).unwrap();
    let l: wire::ws_api::LogonResult<'_> =
        serde_json::from_str(logon.result.unwrap().get()).unwrap();
    assert_eq!((l.authorized_since, l.server_time), (Some(1_649_729_878_532), 1_649_729_878_630));

    let shutdown: wire::ws_api::Frame<'_> =
        serde_json::from_str(load("wsapi_serverShutdown.json")).unwrap();
    assert!(shutdown.subscription_id.is_none() && shutdown.event.is_some());
}

/// Runs one wrapped user-data file through the session's frame parser and the stream handler.
fn user_event(name: &str) -> Handled {
    let f: wire::ws_api::Frame<'_> = serde_json::from_str(load(name)).unwrap();
    handle_event(f.event.unwrap().get(), f.subscription_id, Some(0), &ManualClock::new(T0)).unwrap()
}

#[test]
fn user_data_events_to_model() {
    let Handled::Emit(ev) = user_event("ws_executionReport.json") else { panic!() };
    let UserEvent::Order(u) = *ev else { panic!() };
    assert_eq!(
        (u.symbol.as_str(), u.client_id.as_str(), u.order_id),
        ("ETHBTC", "mUvoqJxFIILMdfAW5iGSOW", Some(OrderId(4_293_153)))
    );
    assert_eq!(
        (u.side, u.status, u.orig_qty, u.cum_qty),
        (Side::Buy, OrderStatus::New, qty("1"), Qty::ZERO)
    );
    assert_eq!(u.fill, None, "x = NEW carries no fill");
    assert_eq!((u.ts_exchange, u.ts_local), (UnixNanos::from_millis(1_499_405_658_658), T0));

    for f in ["ws_outboundAccountPosition.json", "wsapi_event_outboundAccountPosition.json"] {
        let Handled::Emit(ev) = user_event(f) else { panic!("{f}") };
        let UserEvent::Balances(b) = *ev else { panic!("{f}") };
        assert!(!b.is_empty());
        if f.starts_with("wsapi") {
            assert_eq!(
                (b[1].asset.as_str(), b[1].free, b[1].locked),
                ("USDT", ntl("10580"), ntl("70"))
            );
        } else {
            assert_eq!((b[0].asset.as_str(), b[0].free), ("ETH", ntl("10000")));
        }
    }

    let Handled::Emit(ev) = user_event("ws_balanceUpdate.json") else { panic!() };
    assert_eq!(
        *ev,
        UserEvent::BalanceDelta {
            asset: Asset::new("BTC").unwrap(),
            delta: ntl("100"),
            ts_exchange: UnixNanos::from_millis(1_573_200_697_068)
        }
    );
    assert_eq!(user_event("ws_eventStreamTerminated.json"), Handled::Terminated);
    assert_eq!(user_event("wsapi_serverShutdown.json"), Handled::Shutdown);
    // listStatus and externalLockUpdate are not used by kestrel: skipped, not errors.
    assert_eq!(user_event("ws_listStatus.json"), Handled::Ignore);
    assert_eq!(user_event("ws_externalLockUpdate.json"), Handled::Ignore);
}

#[test]
fn execution_report_trade_carries_the_fill_and_cancel_uses_orig_id() {
    let mut v: serde_json::Value = serde_json::from_str(load("ws_executionReport.json")).unwrap();
    let ev = &mut v["event"];
    ev["x"] = "TRADE".into();
    ev["X"] = "PARTIALLY_FILLED".into();
    ev["l"] = "0.40000000".into();
    ev["z"] = "0.40000000".into();
    ev["L"] = "0.10264410".into();
    ev["n"] = "0.00000041".into();
    ev["N"] = "BNB".into();
    ev["t"] = 77.into();
    ev["m"] = true.into();
    let h = handle_event(&ev.to_string(), Some(0), Some(0), &ManualClock::new(T0)).unwrap();
    let Handled::Emit(e) = h else { panic!() };
    let UserEvent::Order(u) = *e else { panic!() };
    let f = u.fill.unwrap();
    assert_eq!(
        (f.trade_id, f.price, f.qty, f.commission, f.is_maker),
        (TradeId(77), px("0.1026441"), qty("0.4"), ntl("0.00000041"), true)
    );
    assert_eq!(f.commission_asset, Some(Asset::new("BNB").unwrap()));
    assert_eq!(u.status, OrderStatus::PartiallyFilled);

    ev["x"] = "CANCELED".into();
    ev["X"] = "CANCELED".into();
    ev["c"] = "cancelRequestId".into();
    ev["C"] = "mUvoqJxFIILMdfAW5iGSOW".into();
    let Handled::Emit(e) =
        handle_event(&ev.to_string(), Some(0), Some(0), &ManualClock::new(T0)).unwrap()
    else {
        panic!()
    };
    let UserEvent::Order(u) = *e else { panic!() };
    assert_eq!(
        (u.client_id.as_str(), u.status, u.fill),
        ("mUvoqJxFIILMdfAW5iGSOW", OrderStatus::Canceled, None)
    );
    // Another subscription's event is not ours.
    assert_eq!(
        handle_event(&ev.to_string(), Some(5), Some(0), &ManualClock::new(T0)).unwrap(),
        Handled::Ignore
    );
}
