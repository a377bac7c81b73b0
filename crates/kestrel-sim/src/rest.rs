//! REST API (`/api/v3/...`): routing by method and path, request weights, signed-request
//! authentication, parameter parsing and the handlers. The order helpers here are shared with
//! the WebSocket API so both speak the same field sets.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use kestrel_model::{
    ClientOrderId, Notional, OrderType, ParseNumError, Price, Qty, Side, TimeInForce,
};
use percent_encoding::percent_decode_str;
use serde_json::json;

use crate::auth;
use crate::error::ApiError;
use crate::exchange::{Exchange, FillRec, NewOrder, Order, OrderRef};
use crate::faults::Counters;
use crate::rate_limit::Limited;
use crate::server::{lock, Shared};
use crate::wire::{self, fn8, fp, fq, StpMode};

/// Request parameters by name (values decoded).
pub(crate) type Params = HashMap<String, String>;

/// Non-empty parameter value.
pub(crate) fn get<'a>(p: &'a Params, k: &str) -> Option<&'a str> {
    p.get(k).map(String::as_str).filter(|v| !v.is_empty())
}

fn req<'a>(p: &'a Params, k: &str) -> Result<&'a str, ApiError> {
    get(p, k).ok_or_else(|| ApiError::missing(k))
}

/// Decodes an `application/x-www-form-urlencoded` string.
fn parse_form(raw: &str, into: &mut Params, overwrite: bool) -> Result<(), ApiError> {
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let dec = |s: &str| -> Result<String, ApiError> {
            let s = s.replace('+', " ");
            percent_decode_str(&s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| ApiError::bad(-1100, "Illegal characters found in a parameter."))
        };
        let (k, v) = (dec(k)?, dec(v)?);
        if overwrite || !into.contains_key(&k) {
            into.insert(k, v);
        }
    }
    Ok(())
}

fn num_err(param: &str, e: ParseNumError) -> ApiError {
    match e {
        ParseNumError::TooManyDecimals { .. } => {
            ApiError::bad(-1111, "Precision is over the maximum defined for this asset.")
        }
        _ => ApiError::illegal(param),
    }
}

fn price_param(p: &Params, k: &str) -> Result<Option<Price>, ApiError> {
    match get(p, k) {
        None => Ok(None),
        Some(v) => {
            let x: Price = v.parse().map_err(|e| num_err(k, e))?;
            if x.is_negative() {
                return Err(ApiError::illegal(k));
            }
            Ok(Some(x))
        }
    }
}

fn qty_param(p: &Params, k: &str) -> Result<Option<Qty>, ApiError> {
    match get(p, k) {
        None => Ok(None),
        Some(v) => {
            let x: Qty = v.parse().map_err(|e| num_err(k, e))?;
            if x.is_negative() {
                return Err(ApiError::illegal(k));
            }
            Ok(Some(x))
        }
    }
}

/// `newOrderRespType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RespType {
    Ack,
    Result,
    Full,
}

/// Parses the parameters of a new order (REST and WS API).
pub(crate) fn parse_new_order(p: &Params) -> Result<(String, NewOrder, RespType), ApiError> {
    let symbol = req(p, "symbol")?.to_string();
    let side = match req(p, "side")? {
        "BUY" => Side::Buy,
        "SELL" => Side::Sell,
        _ => {
            return Err(ApiError::bad(
                -1100,
                "Illegal characters found in parameter 'side'; legal range is 'BUY, SELL'.",
            ))
        }
    };
    let kind = match req(p, "type")? {
        "LIMIT" => OrderType::Limit,
        "MARKET" => OrderType::Market,
        "LIMIT_MAKER" => OrderType::LimitMaker,
        "STOP_LOSS" | "STOP_LOSS_LIMIT" | "TAKE_PROFIT" | "TAKE_PROFIT_LIMIT" => {
            return Err(ApiError::bad(-1116, "Invalid orderType."))
        }
        _ => return Err(ApiError::bad(-1116, "Invalid orderType.")),
    };
    let tif = match get(p, "timeInForce") {
        None => None,
        Some("GTC") => Some(TimeInForce::Gtc),
        Some("IOC") => Some(TimeInForce::Ioc),
        Some("FOK") => Some(TimeInForce::Fok),
        Some(_) => return Err(ApiError::bad(-1115, "Invalid timeInForce.")),
    };
    let price = price_param(p, "price")?;
    let qty = qty_param(p, "quantity")?;
    let quote_qty = qty_param(p, "quoteOrderQty")?.map(Qty::to_notional);
    let tif = match kind {
        OrderType::Limit => {
            let t = tif.ok_or_else(|| ApiError::missing("timeInForce"))?;
            req(p, "quantity")?;
            req(p, "price")?;
            t
        }
        OrderType::LimitMaker => {
            req(p, "quantity")?;
            req(p, "price")?;
            TimeInForce::Gtc
        }
        OrderType::Market => {
            if tif.is_some() {
                return Err(ApiError::bad(
                    -1106,
                    "Parameter 'timeInForce' sent when not required.",
                ));
            }
            if price.is_some() {
                return Err(ApiError::bad(-1106, "Parameter 'price' sent when not required."));
            }
            match (qty, quote_qty) {
                (None, None) => return Err(ApiError::bad(
                    -1102,
                    "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
                )),
                (Some(_), Some(_)) => {
                    return Err(ApiError::bad(
                        -1106,
                        "Parameter 'quoteOrderQty' sent when not required.",
                    ))
                }
                _ => {}
            }
            TimeInForce::Gtc
        }
    };
    let client_id = match get(p, "newClientOrderId") {
        None => None,
        Some(c) => {
            ClientOrderId::new(c).map_err(|_| {
                ApiError::bad(
                    -1100,
                    "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
                )
            })?;
            Some(c.to_string())
        }
    };
    let stp = match get(p, "selfTradePreventionMode") {
        None => None,
        Some(s) => Some(StpMode::parse(s).ok_or_else(|| {
            ApiError::bad(-1100, "Illegal characters found in parameter 'selfTradePreventionMode'.")
        })?),
    };
    let resp = match get(p, "newOrderRespType") {
        None if kind == OrderType::LimitMaker => RespType::Ack,
        None => RespType::Full,
        Some("ACK") => RespType::Ack,
        Some("RESULT") => RespType::Result,
        Some("FULL") => RespType::Full,
        Some(_) => {
            return Err(ApiError::bad(
                -1100,
                "Illegal characters found in parameter 'newOrderRespType'; legal range is 'ACK, RESULT, FULL'.",
            ))
        }
    };
    Ok((symbol, NewOrder { side, kind, tif, price, qty, quote_qty, client_id, stp }, resp))
}

/// `orderId` / `origClientOrderId`.
pub(crate) fn parse_order_ref(p: &Params) -> Result<OrderRef, ApiError> {
    if let Some(id) = get(p, "orderId") {
        return id.parse().map(OrderRef::Id).map_err(|_| ApiError::illegal("orderId"));
    }
    if let Some(c) = get(p, "origClientOrderId") {
        return Ok(OrderRef::Client(c.to_string()));
    }
    Err(ApiError::bad(
        -1102,
        "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
    ))
}

fn result_of(ex: &Exchange, o: &Order, with_working: bool) -> wire::OrderResultWire {
    let _ = ex;
    wire::OrderResultWire {
        price: fp(o.price),
        orig_qty: fq(o.orig_qty),
        executed_qty: fq(o.executed),
        orig_quote_order_qty: fn8(o.quote_qty),
        cummulative_quote_qty: fn8(o.cum_quote),
        status: o.status.as_str(),
        time_in_force: o.tif.as_str(),
        kind: o.kind.as_str(),
        side: o.side.as_str(),
        working_time: with_working.then_some(o.working_ms),
        self_trade_prevention_mode: o.stp.as_str(),
    }
}

/// Builds an ACK/RESULT/FULL response.
pub(crate) fn order_response(
    ex: &Exchange,
    id: u64,
    fills: &[FillRec],
    resp: RespType,
) -> serde_json::Value {
    let Some(o) = ex.orders.get(&id) else {
        return json!({});
    };
    let w = wire::OrderResponseWire {
        symbol: ex.symbols[o.sym].cfg.spec.symbol.as_str().to_string(),
        order_id: o.id,
        order_list_id: -1,
        client_order_id: o.client_id.clone(),
        transact_time: o.created_ms,
        result: (resp != RespType::Ack).then(|| result_of(ex, o, true)),
        fills: (resp == RespType::Full).then(|| {
            fills
                .iter()
                .map(|f| wire::FillWire {
                    price: fp(f.price),
                    qty: fq(f.qty),
                    commission: fn8(f.commission),
                    commission_asset: f.commission_asset.as_str().to_string(),
                    trade_id: f.trade_id,
                })
                .collect()
        }),
    };
    serde_json::to_value(w).unwrap_or_default()
}

/// Builds a cancel response.
pub(crate) fn cancel_response(ex: &Exchange, id: u64, cancel_cid: &str) -> serde_json::Value {
    let Some(o) = ex.orders.get(&id) else {
        return json!({});
    };
    let w = wire::CancelResponseWire {
        symbol: ex.symbols[o.sym].cfg.spec.symbol.as_str().to_string(),
        orig_client_order_id: o.client_id.clone(),
        order_id: o.id,
        order_list_id: -1,
        client_order_id: cancel_cid.to_string(),
        transact_time: o.updated_ms,
        result: result_of(ex, o, false),
    };
    serde_json::to_value(w).unwrap_or_default()
}

/// Builds a query-order entry.
pub(crate) fn query_order(ex: &Exchange, o: &Order) -> serde_json::Value {
    let w = wire::QueryOrderWire {
        symbol: ex.symbols[o.sym].cfg.spec.symbol.as_str().to_string(),
        order_id: o.id,
        order_list_id: -1,
        client_order_id: o.client_id.clone(),
        price: fp(o.price),
        orig_qty: fq(o.orig_qty),
        executed_qty: fq(o.executed),
        cummulative_quote_qty: fn8(o.cum_quote),
        status: o.status.as_str(),
        time_in_force: o.tif.as_str(),
        kind: o.kind.as_str(),
        side: o.side.as_str(),
        stop_price: fp(Price::ZERO),
        iceberg_qty: fq(Qty::ZERO),
        time: o.created_ms,
        update_time: o.updated_ms,
        is_working: o.status.is_open() && o.working_ms != 0,
        working_time: o.working_ms,
        orig_quote_order_qty: fn8(o.quote_qty),
        self_trade_prevention_mode: o.stp.as_str(),
    };
    serde_json::to_value(w).unwrap_or_default()
}

/// `GET /api/v3/account` body.
pub(crate) fn account_json(ex: &Exchange, acct: usize) -> serde_json::Value {
    let a = &ex.accounts[acct];
    let rate = |bps: u32| fq(Qty::from_mantissa(i64::from(bps) * 10_000));
    json!({
        "makerCommission": a.maker_bps,
        "takerCommission": a.taker_bps,
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": rate(a.maker_bps),
            "taker": rate(a.taker_bps),
            "buyer": rate(0),
            "seller": rate(0),
        },
        "canTrade": true,
        "canWithdraw": true,
        "canDeposit": true,
        "brokered": false,
        "requireSelfTradePrevention": false,
        "preventSor": false,
        "updateTime": a.update_ms,
        "accountType": "SPOT",
        "balances": a.sorted_balances().into_iter().map(|(asset, b)| json!({
            "asset": asset.as_str(),
            "free": fn8(b.free),
            "locked": fn8(b.locked),
        })).collect::<Vec<_>>(),
        "permissions": ["SPOT"],
        "uid": 1_000_000 + acct,
    })
}

/// `exchangeInfo` body.
pub(crate) fn exchange_info(
    sh: &Shared,
    filter: Option<&[String]>,
) -> Result<serde_json::Value, ApiError> {
    let ex = lock(&sh.ex);
    let limits = lock(&sh.limits).config().clone();
    let mut symbols = Vec::new();
    let wanted: Vec<usize> = match filter {
        None => (0..ex.symbols.len()).collect(),
        Some(names) => names.iter().map(|n| ex.symbol(n)).collect::<Result<_, _>>()?,
    };
    for i in wanted {
        let s = &ex.symbols[i];
        let spec = &s.cfg.spec;
        let mut filters = Vec::new();
        if let Some(f) = spec.price_filter {
            filters.push(json!({"filterType":"PRICE_FILTER","minPrice":fp(f.min_price),"maxPrice":fp(f.max_price),"tickSize":fp(f.tick_size)}));
        }
        if let Some(f) = spec.lot_size {
            filters.push(json!({"filterType":"LOT_SIZE","minQty":fq(f.min_qty),"maxQty":fq(f.max_qty),"stepSize":fq(f.step_size)}));
        }
        filters.push(json!({"filterType":"ICEBERG_PARTS","limit":10}));
        if let Some(f) = spec.market_lot_size {
            filters.push(json!({"filterType":"MARKET_LOT_SIZE","minQty":fq(f.min_qty),"maxQty":fq(f.max_qty),"stepSize":fq(f.step_size)}));
        }
        filters.push(json!({"filterType":"TRAILING_DELTA","minTrailingAboveDelta":10,"maxTrailingAboveDelta":2000,"minTrailingBelowDelta":10,"maxTrailingBelowDelta":2000}));
        if let Some(f) = spec.percent_price_by_side {
            filters.push(json!({"filterType":"PERCENT_PRICE_BY_SIDE","bidMultiplierUp":fp(f.bid_multiplier_up),"bidMultiplierDown":fp(f.bid_multiplier_down),"askMultiplierUp":fp(f.ask_multiplier_up),"askMultiplierDown":fp(f.ask_multiplier_down),"avgPriceMins":f.avg_price_mins}));
        }
        if let Some(f) = spec.notional {
            filters.push(json!({"filterType":"NOTIONAL","minNotional":fn8(f.min_notional),"applyMinToMarket":f.apply_min_to_market,"maxNotional":fn8(f.max_notional),"applyMaxToMarket":f.apply_max_to_market,"avgPriceMins":f.avg_price_mins}));
        }
        if let Some(n) = spec.max_num_orders {
            filters.push(json!({"filterType":"MAX_NUM_ORDERS","maxNumOrders":n}));
        }
        filters.push(json!({"filterType":"MAX_NUM_ALGO_ORDERS","maxNumAlgoOrders":5}));
        symbols.push(json!({
            "symbol": spec.symbol.as_str(),
            "status": "TRADING",
            "baseAsset": spec.base.as_str(),
            "baseAssetPrecision": 8,
            "quoteAsset": spec.quote.as_str(),
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "icebergAllowed": false,
            "ocoAllowed": false,
            "otoAllowed": false,
            "opoAllowed": false,
            "quoteOrderQtyMarketAllowed": true,
            "allowTrailingStop": false,
            "cancelReplaceAllowed": false,
            "amendAllowed": false,
            "pegInstructionsAllowed": false,
            "isSpotTradingAllowed": true,
            "isMarginTradingAllowed": false,
            "filters": filters,
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": s.cfg.stp.as_str(),
            "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }));
    }
    Ok(json!({
        "timezone": "UTC",
        "serverTime": sh.clock.now_ms(),
        "rateLimits": rate_limits(&limits),
        "exchangeFilters": [],
        "symbols": symbols,
    }))
}

/// The `rateLimits` of exchangeInfo.
pub(crate) fn rate_limits(l: &crate::config::LimitsConfig) -> Vec<wire::RateLimitWire> {
    vec![
        wire::RateLimitWire {
            rate_limit_type: "REQUEST_WEIGHT",
            interval: "MINUTE",
            interval_num: 1,
            limit: l.request_weight_per_minute,
            count: None,
        },
        wire::RateLimitWire {
            rate_limit_type: "ORDERS",
            interval: "SECOND",
            interval_num: 10,
            limit: l.orders_per_10s,
            count: None,
        },
        wire::RateLimitWire {
            rate_limit_type: "ORDERS",
            interval: "DAY",
            interval_num: 1,
            limit: l.orders_per_day,
            count: None,
        },
        wire::RateLimitWire {
            rate_limit_type: "RAW_REQUESTS",
            interval: "MINUTE",
            interval_num: 5,
            limit: 300_000,
            count: None,
        },
    ]
}

/// Depth weight by limit (SPEC.md §2).
pub(crate) fn depth_weight(limit: usize) -> u32 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        _ => 250,
    }
}

/// The REST endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ep {
    Ping,
    Time,
    ExchangeInfo,
    Depth,
    BookTicker,
    TickerPrice,
    AvgPrice,
    Trades,
    OrderNew,
    OrderTest,
    OrderGet,
    OrderCancel,
    OpenOrders,
    OpenOrdersCancel,
    Account,
    MyTrades,
    ListenKey,
}

fn route(method: &Method, path: &str) -> Option<Ep> {
    Some(match (method.as_str(), path) {
        ("GET", "/api/v3/ping") => Ep::Ping,
        ("GET", "/api/v3/time") => Ep::Time,
        ("GET", "/api/v3/exchangeInfo") => Ep::ExchangeInfo,
        ("GET", "/api/v3/depth") => Ep::Depth,
        ("GET", "/api/v3/ticker/bookTicker") => Ep::BookTicker,
        ("GET", "/api/v3/ticker/price") => Ep::TickerPrice,
        ("GET", "/api/v3/avgPrice") => Ep::AvgPrice,
        ("GET", "/api/v3/trades") => Ep::Trades,
        ("POST", "/api/v3/order") => Ep::OrderNew,
        ("POST", "/api/v3/order/test") => Ep::OrderTest,
        ("GET", "/api/v3/order") => Ep::OrderGet,
        ("DELETE", "/api/v3/order") => Ep::OrderCancel,
        ("GET", "/api/v3/openOrders") => Ep::OpenOrders,
        ("DELETE", "/api/v3/openOrders") => Ep::OpenOrdersCancel,
        ("GET", "/api/v3/account") => Ep::Account,
        ("GET", "/api/v3/myTrades") => Ep::MyTrades,
        ("POST" | "PUT" | "DELETE", "/api/v3/userDataStream") => Ep::ListenKey,
        _ => return None,
    })
}

fn weight(ep: Ep, p: &Params) -> u32 {
    let has_symbol = get(p, "symbol").is_some() || get(p, "symbols").is_some();
    match ep {
        Ep::Ping
        | Ep::Time
        | Ep::OrderNew
        | Ep::OrderTest
        | Ep::OrderCancel
        | Ep::OpenOrdersCancel => 1,
        Ep::ExchangeInfo | Ep::Account | Ep::MyTrades => 20,
        Ep::Depth => depth_weight(get(p, "limit").and_then(|l| l.parse().ok()).unwrap_or(100)),
        Ep::BookTicker | Ep::TickerPrice => {
            if has_symbol {
                2
            } else {
                4
            }
        }
        Ep::AvgPrice | Ep::ListenKey => 2,
        Ep::Trades => 25,
        Ep::OrderGet => 4,
        Ep::OpenOrders => {
            if has_symbol {
                6
            } else {
                80
            }
        }
    }
}

fn is_signed(ep: Ep) -> bool {
    matches!(
        ep,
        Ep::OrderNew
            | Ep::OrderTest
            | Ep::OrderGet
            | Ep::OrderCancel
            | Ep::OpenOrders
            | Ep::OpenOrdersCancel
            | Ep::Account
            | Ep::MyTrades
    )
}

/// A finished REST answer.
struct Answer {
    status: u16,
    body: String,
    headers: Vec<(&'static str, String)>,
}

fn error_answer(e: &ApiError) -> Answer {
    let body =
        serde_json::to_string(&wire::ErrorBody { code: e.code, msg: &e.msg }).unwrap_or_default();
    let mut headers = Vec::new();
    if let Some(s) = e.retry_after_s {
        headers.push(("Retry-After", s.to_string()));
    }
    Answer { status: e.http, body, headers }
}

fn into_response(a: Answer) -> Response {
    let mut r = Response::new(Body::from(a.body));
    *r.status_mut() = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json;charset=UTF-8"));
    for (k, v) in a.headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    r
}

/// Authenticates a signed REST request; returns the account index.
fn authenticate(
    sh: &Shared,
    headers: &HeaderMap,
    query: &str,
    body: &str,
    p: &Params,
) -> Result<usize, ApiError> {
    let key = headers
        .get("X-MBX-APIKEY")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty())
        .ok_or_else(ApiError::key_format)?;
    let (acct, material) = {
        let ex = lock(&sh.ex);
        ex.keys.get(key).cloned().ok_or_else(ApiError::invalid_key)?
    };
    let (q_rest, q_sig) = auth::strip_signature(query);
    let (b_rest, b_sig) = auth::strip_signature(body);
    let sig_raw = q_sig.or(b_sig).ok_or_else(|| ApiError::missing("signature"))?;
    let sig = percent_decode_str(&sig_raw).decode_utf8_lossy().into_owned();
    let payload = format!("{q_rest}{b_rest}");
    if !payload.is_ascii() || !auth::verify(&material, payload.as_bytes(), &sig) {
        return Err(ApiError::bad_signature());
    }
    let max_rw = lock(&sh.limits).config().max_recv_window_ms;
    auth::check_timestamp(get(p, "timestamp"), get(p, "recvWindow"), sh.clock.now_ms(), max_rw)?;
    Ok(acct)
}

/// The fallback handler: every REST path.
pub(crate) async fn entry(
    State(sh): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    Counters::inc(&sh.counters.rest_requests);
    let (stall, http_err) = {
        let mut f = lock(&sh.faults);
        (f.take_stall(), f.take_http_error())
    };
    if let Some(d) = stall {
        tokio::time::sleep(d).await;
    }
    if let Some((status, retry)) = http_err {
        let (code, msg) = match status {
            429 => (-1003, "Too much request weight used; fault injected by kestrel-sim."),
            418 => (
                -1003,
                "Way too much request weight used; IP banned (fault injected by kestrel-sim).",
            ),
            s if s >= 500 => (-1000, "An unknown error occurred while processing the request."),
            _ => (-1000, "Request rejected (fault injected by kestrel-sim)."),
        };
        let retry_after_s = matches!(status, 429 | 418).then_some(retry);
        return into_response(error_answer(&ApiError {
            http: status,
            code,
            msg: msg.into(),
            retry_after_s,
        }));
    }
    let query = uri.query().unwrap_or("").to_string();
    let body_str = match std::str::from_utf8(&body) {
        Ok(s) => s.to_string(),
        Err(_) => {
            return into_response(error_answer(&ApiError::bad(
                -1100,
                "Illegal characters found in the request body.",
            )))
        }
    };
    let Some(ep) = route(&method, uri.path()) else {
        return into_response(Answer {
            status: 404,
            body: json!({"code": -1000, "msg": format!("Unknown endpoint {} {}.", method, uri.path())}).to_string(),
            headers: Vec::new(),
        });
    };
    let mut p = Params::new();
    if let Err(e) =
        parse_form(&query, &mut p, true).and_then(|()| parse_form(&body_str, &mut p, false))
    {
        return into_response(error_answer(&e));
    }
    let ip: IpAddr = peer.ip();
    let now = sh.clock.now_ms();
    let usage = {
        let w = weight(ep, &p);
        let r = lock(&sh.limits).charge(ip, w, now);
        match r {
            Ok(u) => u,
            Err((e, kind)) => {
                Counters::inc(if kind == Limited::TooMany {
                    &sh.counters.http_429
                } else {
                    &sh.counters.http_418
                });
                let mut a = error_answer(&e);
                a.headers
                    .push(("X-MBX-USED-WEIGHT-1M", lock(&sh.limits).used(ip, now).to_string()));
                return into_response(a);
            }
        }
    };
    let mut answer = match handle(&sh, ep, &headers, &query, &body_str, &p).await {
        Ok(a) => a,
        Err(e) => error_answer(&e),
    };
    answer.headers.push(("X-MBX-USED-WEIGHT-1M", usage.weight_1m.to_string()));
    into_response(answer)
}

async fn handle(
    sh: &Arc<Shared>,
    ep: Ep,
    headers: &HeaderMap,
    query: &str,
    body: &str,
    p: &Params,
) -> Result<Answer, ApiError> {
    let ok =
        |v: serde_json::Value| Answer { status: 200, body: v.to_string(), headers: Vec::new() };
    let acct = if is_signed(ep) { Some(authenticate(sh, headers, query, body, p)?) } else { None };
    let acct = acct.unwrap_or(usize::MAX);
    let now = sh.clock.now_ms();
    match ep {
        Ep::Ping => Ok(ok(json!({}))),
        Ep::Time => Ok(ok(json!({"serverTime": now}))),
        Ep::ExchangeInfo => {
            let list: Option<Vec<String>> = if let Some(s) = get(p, "symbol") {
                Some(vec![s.to_string()])
            } else if let Some(s) = get(p, "symbols") {
                Some(serde_json::from_str(s).map_err(|_| ApiError::illegal("symbols"))?)
            } else {
                None
            };
            Ok(ok(exchange_info(sh, list.as_deref())?))
        }
        Ep::Depth => {
            let limit: usize = match get(p, "limit") {
                None => 100,
                Some(l) => l.parse().map_err(|_| ApiError::illegal("limit"))?,
            };
            if limit == 0 || limit > 5000 {
                return Err(ApiError::bad(-1100, "Illegal characters found in parameter 'limit'; legal range is '1-5000'."));
            }
            let ex = lock(&sh.ex);
            let sym = ex.symbol(req(p, "symbol")?)?;
            let (id, bids, asks) = ex.depth(sym, limit);
            let lv = |v: Vec<(Price, Qty)>| v.into_iter().map(|(p, q)| [fp(p), fq(q)]).collect::<Vec<_>>();
            Ok(ok(json!({"lastUpdateId": id, "bids": lv(bids), "asks": lv(asks)})))
        }
        Ep::BookTicker | Ep::TickerPrice => {
            let ex = lock(&sh.ex);
            let one = |i: usize| {
                let s = &ex.symbols[i];
                let (b, a) = s.top();
                if ep == Ep::TickerPrice {
                    json!({"symbol": s.cfg.spec.symbol.as_str(), "price": fp(s.avg_price())})
                } else {
                    json!({
                        "symbol": s.cfg.spec.symbol.as_str(),
                        "bidPrice": fp(b.map_or(Price::ZERO, |x| x.0)),
                        "bidQty": fq(b.map_or(Qty::ZERO, |x| x.1)),
                        "askPrice": fp(a.map_or(Price::ZERO, |x| x.0)),
                        "askQty": fq(a.map_or(Qty::ZERO, |x| x.1)),
                    })
                }
            };
            match get(p, "symbol") {
                Some(s) => Ok(ok(one(ex.symbol(s)?))),
                None => Ok(ok(serde_json::Value::Array((0..ex.symbols.len()).map(one).collect()))),
            }
        }
        Ep::AvgPrice => {
            let ex = lock(&sh.ex);
            let sym = ex.symbol(req(p, "symbol")?)?;
            Ok(ok(json!({"mins": 5, "price": fp(ex.symbols[sym].avg_price()), "closeTime": now})))
        }
        Ep::Trades => {
            let limit: usize = match get(p, "limit") {
                None => 500,
                Some(l) => l.parse().map_err(|_| ApiError::illegal("limit"))?,
            };
            let ex = lock(&sh.ex);
            let sym = ex.symbol(req(p, "symbol")?)?;
            let t = &ex.symbols[sym].recent_trades;
            let v: Vec<wire::PublicTradeWire> = t
                .iter()
                .skip(t.len().saturating_sub(limit.min(1000)))
                .map(|t| wire::PublicTradeWire {
                    id: t.id,
                    price: fp(t.price),
                    qty: fq(t.qty),
                    quote_qty: fn8(Notional::of(t.price, t.qty)),
                    time: t.time_ms,
                    is_buyer_maker: t.buyer_maker,
                    is_best_match: true,
                })
                .collect();
            Ok(ok(serde_json::to_value(v).unwrap_or_default()))
        }
        Ep::ListenKey => Err(ApiError {
            http: 410,
            code: -1000,
            msg: "This endpoint has been removed (listenKey streams ended 2026-02-20). Use userDataStream.subscribe on the WebSocket API.".into(),
            retry_after_s: None,
        }),
        Ep::OrderTest => {
            let (symbol, o, _) = parse_new_order(p)?;
            let ex = lock(&sh.ex);
            let sym = ex.symbol(&symbol)?;
            ex.test_order(acct, sym, &o)?;
            Ok(ok(json!({})))
        }
        Ep::OrderNew => {
            let (symbol, o, resp) = parse_new_order(p)?;
            let (c10, c1d) = lock(&sh.limits).charge_order(acct, now)?;
            let counts = vec![("X-MBX-ORDER-COUNT-10S", c10.to_string()), ("X-MBX-ORDER-COUNT-1D", c1d.to_string())];
            let result = {
                let mut ex = lock(&sh.ex);
                let sym = ex.symbol(&symbol);
                sym.and_then(|sym| ex.place(acct, sym, o, now)).map(|(id, fills)| order_response(&ex, id, &fills, resp))
            };
            if result.is_ok() && lock(&sh.faults).take_swallow() {
                Counters::inc(&sh.counters.swallowed_responses);
                tracing::warn!("sim: order accepted, response swallowed (fault)");
                sh.cancel.cancelled().await;
            }
            match result {
                Ok(v) => Ok(Answer { status: 200, body: v.to_string(), headers: counts }),
                Err(e) => {
                    let mut a = error_answer(&e);
                    a.headers.extend(counts);
                    Ok(a)
                }
            }
        }
        Ep::OrderGet => {
            let ex = lock(&sh.ex);
            let sym = ex.symbol(req(p, "symbol")?)?;
            let r = parse_order_ref(p)?;
            let o = ex.find(acct, sym, &r).ok_or_else(ApiError::no_such_order)?;
            Ok(ok(query_order(&ex, o)))
        }
        Ep::OrderCancel => {
            let mut ex = lock(&sh.ex);
            let sym = ex.symbol(req(p, "symbol")?)?;
            let r = parse_order_ref(p)?;
            let (id, cid) = ex.cancel(acct, sym, &r, get(p, "newClientOrderId").map(str::to_string), now)?;
            Ok(ok(cancel_response(&ex, id, &cid)))
        }
        Ep::OpenOrders => {
            let ex = lock(&sh.ex);
            let sym = match get(p, "symbol") {
                Some(s) => Some(ex.symbol(s)?),
                None => None,
            };
            let v: Vec<serde_json::Value> = ex.open_orders(acct, sym).into_iter().map(|o| query_order(&ex, o)).collect();
            Ok(ok(serde_json::Value::Array(v)))
        }
        Ep::OpenOrdersCancel => {
            let mut ex = lock(&sh.ex);
            let sym = ex.symbol(req(p, "symbol")?)?;
            let done = ex.cancel_all(acct, sym, now)?;
            let v: Vec<serde_json::Value> = done.iter().map(|(id, cid)| cancel_response(&ex, *id, cid)).collect();
            Ok(ok(serde_json::Value::Array(v)))
        }
        Ep::Account => {
            let ex = lock(&sh.ex);
            Ok(ok(account_json(&ex, acct)))
        }
        Ep::MyTrades => {
            let ex = lock(&sh.ex);
            let sym = ex.symbol(req(p, "symbol")?)?;
            let q = parse_my_trades(p)?;
            let spec = &ex.symbols[sym].cfg.spec;
            let mut picked: Vec<&FillRec> = ex.accounts[acct]
                .trades
                .iter()
                .filter(|(s, f)| *s == sym && q.matches(f))
                .map(|(_, f)| f)
                .collect();
            picked.sort_by_key(|f| f.trade_id);
            let page = q.page(&picked);
            let v: Vec<wire::MyTradeWire> = page
                .iter()
                .map(|f| wire::MyTradeWire {
                    symbol: spec.symbol.as_str().to_string(),
                    id: f.trade_id,
                    order_id: f.order_id,
                    order_list_id: -1,
                    price: fp(f.price),
                    qty: fq(f.qty),
                    quote_qty: fn8(Notional::of(f.price, f.qty)),
                    commission: fn8(f.commission),
                    commission_asset: f.commission_asset.as_str().to_string(),
                    time: f.time_ms,
                    is_buyer: f.is_buyer,
                    is_maker: f.is_maker,
                    is_best_match: true,
                })
                .collect();
            Ok(ok(serde_json::to_value(&v).unwrap_or_default()))
        }
    }
}

/// Longest `startTime`..`endTime` span `myTrades` accepts (Binance rest-api.md: "can't be longer
/// than 24 hours").
const MY_TRADES_MAX_SPAN_MS: u64 = 24 * 60 * 60 * 1000;

/// A parsed `GET /api/v3/myTrades` query (symbol aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MyTradesQuery {
    /// Only this order's fills.
    order_id: Option<u64>,
    /// Only trade ids at or above this one; the page is then the oldest `limit` of them.
    from_id: Option<u64>,
    /// Only trades at or after this time (ms); the page is then the oldest `limit`.
    start_ms: Option<u64>,
    /// Only trades at or before this time (ms).
    end_ms: Option<u64>,
    /// Page size, 1..=1000 (default 500).
    limit: usize,
}

impl MyTradesQuery {
    /// Whether one fill passes every filter of the query.
    fn matches(&self, f: &FillRec) -> bool {
        self.order_id.is_none_or(|o| o == f.order_id)
            && self.from_id.is_none_or(|id| f.trade_id >= id)
            && self.start_ms.is_none_or(|t| f.time_ms >= t)
            && self.end_ms.is_none_or(|t| f.time_ms <= t)
    }

    /// The page out of the matching fills (ascending by trade id): the first `limit` when the
    /// query has a lower bound (`fromId` or `startTime`), otherwise the most recent `limit`
    /// ("Otherwise most recent trades are returned"), still in ascending order.
    fn page<'a>(&self, sorted: &'a [&'a FillRec]) -> &'a [&'a FillRec] {
        if self.from_id.is_some() || self.start_ms.is_some() {
            &sorted[..sorted.len().min(self.limit)]
        } else {
            &sorted[sorted.len().saturating_sub(self.limit)..]
        }
    }
}

/// Parses and validates the optional `myTrades` parameters as Binance's rest-api.md documents
/// them: `limit` default 500, maximum 1000; at most 24 h between `startTime` and `endTime`
/// (-1127); and only these combinations besides `symbol` (else -1128): none, `orderId`,
/// `startTime`, `endTime`, `fromId`, `startTime`+`endTime`, `orderId`+`fromId`.
pub(crate) fn parse_my_trades(p: &Params) -> Result<MyTradesQuery, ApiError> {
    let id = |k: &str| -> Result<Option<u64>, ApiError> {
        get(p, k).map(|v| v.parse::<u64>().map_err(|_| ApiError::illegal(k))).transpose()
    };
    let (order_id, from_id) = (id("orderId")?, id("fromId")?);
    let (start_ms, end_ms) = (id("startTime")?, id("endTime")?);
    let limit = match get(p, "limit") {
        None => 500,
        Some(l) => {
            let n: usize = l.parse().map_err(|_| ApiError::illegal("limit"))?;
            if !(1..=1000).contains(&n) {
                return Err(ApiError::bad(
                    -1100,
                    "Illegal characters found in parameter 'limit'; legal range is '1-1000'.",
                ));
            }
            n
        }
    };
    let combo = (order_id.is_some(), start_ms.is_some(), end_ms.is_some(), from_id.is_some());
    let supported = matches!(
        combo,
        (false, false, false, false)
            | (true, false, false, false)
            | (false, true, false, false)
            | (false, false, true, false)
            | (false, false, false, true)
            | (false, true, true, false)
            | (true, false, false, true)
    );
    if !supported {
        return Err(ApiError::bad(-1128, "Combination of optional parameters invalid."));
    }
    if let (Some(s), Some(e)) = (start_ms, end_ms) {
        if e.saturating_sub(s) > MY_TRADES_MAX_SPAN_MS {
            return Err(ApiError::bad(-1127, "More than 24 hours between startTime and endTime."));
        }
    }
    Ok(MyTradesQuery { order_id, from_id, start_ms, end_ms, limit })
}
