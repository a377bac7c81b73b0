//! The REST client (rest-api.md): market data used for snapshots, exchange info, signed order
//! entry, queries and account data, all through the rate limiter.
//!
//! - Every request first takes its weight (and order count) from the [`RateLimiter`]; response
//!   headers correct the count; 429/418 pause or stop everything (SPEC.md §7).
//! - Signed requests put every parameter in the query string, built once and signed byte for
//!   byte ([`crate::sign::rest_query`]); `timestamp` is the local clock corrected by the measured
//!   server offset ([`TimeOffset`]), `recvWindow` is configurable.
//! - `-1021` (timestamp outside recvWindow) re-measures the offset and retries the request
//!   once: the exchange rejected it before doing anything, so the retry cannot duplicate.
//! - A placement that times out or gets a 5xx / `-1007` returns an error with
//!   [`BinanceError::is_unknown_outcome`]; it is never retried here (scenario S01). The caller
//!   resolves it with [`RestClient::query_order`] by client order id.

use std::sync::Arc;
use std::time::Duration;

use kestrel_model::{
    Balance, ClientOrderId, Clock, Fill, InstrumentSpec, Level, Notional, OrderId, OrderRequest,
    OrderType, OrderUpdate, Price, Qty, Side, Symbol, SystemClock, TimeInForce, TradeId, UnixNanos,
};
use reqwest::{Method, StatusCode};

use crate::endpoints::Endpoints;
use crate::error::BinanceError;
use crate::parse;
use crate::rate_limit::{Cost, ExchangeLimits, RateLimiter};
use crate::sign::{encode_component, rest_query, Credentials, SignError};
use crate::time_sync::TimeOffset;
use crate::wire;

/// How the REST client is set up. Built by the binary from its validated config.
#[derive(Clone)]
pub struct RestConfig {
    /// Where the exchange is.
    pub endpoints: Endpoints,
    /// Key and secret for signed endpoints; `None` allows only public market data.
    pub credentials: Option<Arc<Credentials>>,
    /// `recvWindow` in ms sent with signed requests (Binance default 5000, max 60000): how late
    /// a request may arrive before the exchange refuses it with `-1021`.
    pub recv_window_ms: u64,
    /// Per-request timeout. A placement that times out is reported as unknown outcome.
    pub request_timeout: Duration,
    /// Percentage (1–100) of the exchange's limits this process may use (several bots on one
    /// IP or account, scenario S09).
    pub rate_limit_share_pct: u8,
    /// The exchange's limits until `exchangeInfo` replaces them.
    pub limits: ExchangeLimits,
    /// Source of local time for `timestamp`s and `ts_local`; the wall clock in production.
    pub clock: Arc<dyn Clock>,
    /// Shared exchange-clock offset; pass the same value to market data and the WS API so all
    /// of them use one measurement.
    pub time_offset: TimeOffset,
    /// Default `Retry-After` when a 429/418 carries none.
    pub default_retry_after: Duration,
}

impl std::fmt::Debug for RestConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestConfig")
            .field("endpoints", &self.endpoints)
            .field("credentials", &self.credentials)
            .field("recv_window_ms", &self.recv_window_ms)
            .field("request_timeout", &self.request_timeout)
            .field("rate_limit_share_pct", &self.rate_limit_share_pct)
            .field("limits", &self.limits)
            .field("time_offset", &self.time_offset)
            .finish_non_exhaustive()
    }
}

impl RestConfig {
    /// A config for `endpoints` with Binance's defaults: no credentials, `recvWindow` 5000 ms,
    /// 10 s timeout (Binance's own backend timeout, after which it answers `-1007`), 100 % of
    /// the documented limits, the system clock.
    pub fn new(endpoints: Endpoints) -> Self {
        Self {
            endpoints,
            credentials: None,
            recv_window_ms: 5_000,
            request_timeout: Duration::from_secs(10),
            rate_limit_share_pct: 100,
            limits: ExchangeLimits::binance_spot_default(),
            clock: Arc::new(SystemClock),
            time_offset: TimeOffset::new(),
            default_retry_after: Duration::from_secs(30),
        }
    }

    /// The same config with credentials.
    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(Arc::new(credentials));
        self
    }
}

/// A REST depth snapshot (`GET /api/v3/depth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepthSnapshot {
    /// The book's update id at the snapshot.
    pub last_update_id: u64,
    /// Bids, best first.
    pub bids: Vec<Level>,
    /// Asks, best first.
    pub asks: Vec<Level>,
}

/// Best bid and ask (`GET /api/v3/ticker/bookTicker`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookTicker {
    /// Symbol.
    pub symbol: Symbol,
    /// Best bid (price, qty).
    pub bid: Level,
    /// Best ask (price, qty).
    pub ask: Level,
}

/// What `exchangeInfo` yields: specs for the symbols that fit, refusals for the rest.
#[derive(Debug)]
pub struct ExchangeInfo {
    /// Server time of the response.
    pub server_time: UnixNanos,
    /// The limits (already applied to this client's rate limiter).
    pub limits: ExchangeLimits,
    /// Symbols kestrel can trade (every filter value fits fixed point).
    pub instruments: Vec<InstrumentSpec>,
    /// Symbols refused, with why (e.g. a `maxPrice` beyond the `Price` range).
    pub refused: Vec<(String, BinanceError)>,
}

/// `newOrderRespType`: how much the placement response says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespType {
    /// Identity only (fastest).
    Ack,
    /// Identity and state.
    Result,
    /// State and the fills of the taking part.
    Full,
}

impl RespType {
    /// Binance spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Ack => "ACK",
            Self::Result => "RESULT",
            Self::Full => "FULL",
        }
    }
}

/// How much a new order is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderQty {
    /// `quantity`: base asset.
    Base(Qty),
    /// `quoteOrderQty`: quote amount to spend or receive (MARKET only).
    Quote(Notional),
}

/// A new order as sent (`POST /api/v3/order`, `order.place`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewOrder {
    /// Symbol.
    pub symbol: Symbol,
    /// `newClientOrderId`: always set, so an unknown outcome can be queried and a retry is
    /// recognised as a duplicate.
    pub client_id: ClientOrderId,
    /// Side.
    pub side: Side,
    /// LIMIT, LIMIT_MAKER or MARKET.
    pub kind: OrderType,
    /// Required for LIMIT; ignored for the others.
    pub time_in_force: Option<TimeInForce>,
    /// Required for LIMIT and LIMIT_MAKER.
    pub price: Option<Price>,
    /// Base quantity, or quote amount for MARKET.
    pub qty: OrderQty,
    /// Response detail.
    pub resp_type: RespType,
}

impl NewOrder {
    /// From the engine's request (base quantity, RESULT response).
    pub fn from_request(r: &OrderRequest) -> Self {
        Self {
            symbol: r.symbol,
            client_id: r.client_id,
            side: r.side,
            kind: r.kind,
            time_in_force: r.time_in_force,
            price: r.price,
            qty: OrderQty::Base(r.qty),
            resp_type: RespType::Result,
        }
    }

    /// Checks the documented required parameters per type (SPEC.md §5) and lists the request
    /// parameters in sending order (signing parameters excluded).
    pub fn params(&self) -> Result<Vec<(&'static str, String)>, BinanceError> {
        let mut p: Vec<(&'static str, String)> = vec![
            ("symbol", self.symbol.to_string()),
            ("side", self.side.as_str().to_string()),
            ("type", self.kind.as_str().to_string()),
        ];
        match self.kind {
            OrderType::Limit => {
                let tif = self
                    .time_in_force
                    .ok_or(BinanceError::InvalidRequest("LIMIT order needs timeInForce"))?;
                p.push(("timeInForce", tif.as_str().to_string()));
            }
            OrderType::LimitMaker | OrderType::Market => {}
        }
        match (self.kind, self.qty) {
            (_, OrderQty::Base(q)) => p.push(("quantity", q.to_string())),
            (OrderType::Market, OrderQty::Quote(n)) => {
                let s = parse::notional_to_wire(n).ok_or(BinanceError::InvalidRequest(
                    "quoteOrderQty has more than 8 decimals",
                ))?;
                p.push(("quoteOrderQty", s));
            }
            (_, OrderQty::Quote(_)) => {
                return Err(BinanceError::InvalidRequest("quoteOrderQty is only for MARKET orders"))
            }
        }
        match self.kind {
            OrderType::Limit | OrderType::LimitMaker => {
                let px =
                    self.price.ok_or(BinanceError::InvalidRequest("limit order needs a price"))?;
                p.push(("price", px.to_string()));
            }
            OrderType::Market => {}
        }
        p.push(("newClientOrderId", self.client_id.to_string()));
        p.push(("newOrderRespType", self.resp_type.as_str().to_string()));
        Ok(p)
    }

    fn ack_context(&self) -> parse::AckContext {
        parse::AckContext {
            side: self.side,
            orig_qty: match self.qty {
                OrderQty::Base(q) => q,
                OrderQty::Quote(_) => Qty::ZERO,
            },
        }
    }
}

/// The result of a placement: the order's state and, for FULL responses, its fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The order as the exchange reports it.
    pub update: OrderUpdate,
    /// Fills of the taking part (FULL responses only).
    pub fills: Vec<Fill>,
}

/// An open order as `GET /api/v3/openOrders` lists it, with what [`OrderUpdate`] leaves out:
/// its type, time in force and limit price (needed to adopt an order the journal never saw).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOrder {
    /// The order's state.
    pub update: OrderUpdate,
    /// `type`; `None` for a type kestrel does not place (stop orders, ...).
    pub kind: Option<OrderType>,
    /// `timeInForce`; `None` when absent or not one kestrel uses.
    pub time_in_force: Option<TimeInForce>,
    /// `price`; `None` for market orders (`"0"`).
    pub price: Option<Price>,
}

/// Which order a cancel or query addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderRef {
    /// By our client id (`origClientOrderId`).
    Client(ClientOrderId),
    /// By exchange id (`orderId`).
    Exchange(OrderId),
}

impl OrderRef {
    pub(crate) fn param(&self) -> (&'static str, String) {
        match self {
            Self::Client(c) => ("origClientOrderId", c.to_string()),
            Self::Exchange(id) => ("orderId", id.to_string()),
        }
    }
}

/// One of our trades (`GET /api/v3/myTrades`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MyTrade {
    /// Symbol.
    pub symbol: Symbol,
    /// The order that traded.
    pub order_id: OrderId,
    /// Our side.
    pub side: Side,
    /// The fill.
    pub fill: Fill,
}

/// Binance Spot REST client. Cheap to clone (one `Arc`); share one per process so all
/// requests draw on the same rate limiter.
#[derive(Debug, Clone)]
pub struct RestClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    cfg: RestConfig,
    limiter: RateLimiter,
}

/// Signed (`timestamp` + `signature`) or public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    Public,
    Signed,
}

/// Request weights (rest-api.md). Successful order/cancel calls cost 0 since 2026-04-02 but
/// are counted as 1 until the response header corrects it.
mod weight {
    pub const TIME: u32 = 1;
    pub const EXCHANGE_INFO: u32 = 20;
    pub const BOOK_TICKER: u32 = 2;
    pub const ORDER: u32 = 1;
    pub const QUERY_ORDER: u32 = 4;
    pub const OPEN_ORDERS_SYMBOL: u32 = 6;
    pub const OPEN_ORDERS_ALL: u32 = 80;
    pub const CANCEL_ALL: u32 = 1;
    pub const ACCOUNT: u32 = 20;
    pub const MY_TRADES: u32 = 20;

    /// `GET /api/v3/depth`: 5 / 25 / 50 / 250 for limit ≤100 / ≤500 / ≤1000 / ≤5000.
    pub const fn depth(limit: u16) -> u32 {
        match limit {
            0..=100 => 5,
            101..=500 => 25,
            501..=1000 => 50,
            _ => 250,
        }
    }
}

impl RestClient {
    /// Builds the client (HTTP connection pool, rate limiter). No request is sent.
    pub fn new(cfg: RestConfig) -> Result<Self, BinanceError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .build()
            .map_err(BinanceError::Client)?;
        let limiter = RateLimiter::with_clock(
            &cfg.limits,
            cfg.rate_limit_share_pct,
            cfg.clock.clone(),
            cfg.time_offset.clone(),
        );
        Ok(Self { inner: Arc::new(Inner { http, cfg, limiter }) })
    }

    /// The shared exchange-clock offset this client measures and uses.
    pub fn time_offset(&self) -> TimeOffset {
        self.inner.cfg.time_offset.clone()
    }

    /// The rate limiter (to read used weight for metrics, or share with the WS API session).
    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// The endpoints this client talks to.
    pub fn endpoints(&self) -> &Endpoints {
        &self.inner.cfg.endpoints
    }

    /// The configured credentials, if any.
    pub fn credentials(&self) -> Option<&Arc<Credentials>> {
        self.inner.cfg.credentials.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &RestConfig {
        &self.inner.cfg
    }

    fn now(&self) -> UnixNanos {
        self.inner.cfg.clock.now()
    }

    /// `GET /api/v3/time`: the exchange's clock.
    pub async fn server_time(&self) -> Result<UnixNanos, BinanceError> {
        let body = self
            .send(
                Method::GET,
                "/api/v3/time",
                Vec::new(),
                Security::Public,
                Cost::weight(weight::TIME),
            )
            .await?;
        let t: wire::rest::ServerTime =
            serde_json::from_slice(&body).map_err(BinanceError::decode("server time"))?;
        Ok(parse::millis(t.server_time))
    }

    /// Measures the exchange-clock offset (server time minus the midpoint of our send and
    /// receive times), stores it in [`RestClient::time_offset`] and returns it in ns.
    pub async fn sync_time(&self) -> Result<i64, BinanceError> {
        let t0 = self.now();
        let server = self.server_time().await?;
        let t1 = self.now();
        let offset = crate::time_sync::offset_from_round_trip(t0, server, t1);
        self.inner.cfg.time_offset.set(offset);
        tracing::info!(offset_ms = offset / 1_000_000, "measured exchange clock offset");
        Ok(offset)
    }

    /// `GET /api/v3/depth?symbol&limit`, weight 5/25/50/250 by limit.
    pub async fn depth(&self, symbol: Symbol, limit: u16) -> Result<DepthSnapshot, BinanceError> {
        let params = vec![("symbol", symbol.to_string()), ("limit", limit.to_string())];
        let body = self
            .send(
                Method::GET,
                "/api/v3/depth",
                params,
                Security::Public,
                Cost::weight(weight::depth(limit)),
            )
            .await?;
        let d: wire::rest::Depth =
            serde_json::from_slice(&body).map_err(BinanceError::decode("depth snapshot"))?;
        Ok(DepthSnapshot { last_update_id: d.last_update_id, bids: d.bids, asks: d.asks })
    }

    /// `GET /api/v3/ticker/bookTicker?symbol`.
    pub async fn book_ticker(&self, symbol: Symbol) -> Result<BookTicker, BinanceError> {
        let params = vec![("symbol", symbol.to_string())];
        let body = self
            .send(
                Method::GET,
                "/api/v3/ticker/bookTicker",
                params,
                Security::Public,
                Cost::weight(weight::BOOK_TICKER),
            )
            .await?;
        let t: wire::rest::BookTicker<'_> =
            serde_json::from_slice(&body).map_err(BinanceError::decode("book ticker"))?;
        Ok(BookTicker {
            symbol: parse::symbol("book ticker", &t.symbol)?,
            bid: Level::new(t.bid_price, t.bid_qty),
            ask: Level::new(t.ask_price, t.ask_qty),
        })
    }

    /// `GET /api/v3/exchangeInfo` (for `symbols`, or all when empty). Applies the exchange's
    /// rate limits to this client's limiter.
    pub async fn exchange_info(&self, symbols: &[Symbol]) -> Result<ExchangeInfo, BinanceError> {
        let params = match symbols {
            [] => Vec::new(),
            [one] => vec![("symbol", one.to_string())],
            many => {
                let list: Vec<String> = many.iter().map(|s| format!("\"{s}\"")).collect();
                vec![("symbols", format!("[{}]", list.join(",")))]
            }
        };
        let body = self
            .send(
                Method::GET,
                "/api/v3/exchangeInfo",
                params,
                Security::Public,
                Cost::weight(weight::EXCHANGE_INFO),
            )
            .await?;
        let info = parse_exchange_info(&body)?;
        self.inner.limiter.set_limits(&info.limits);
        Ok(info)
    }

    /// `POST /api/v3/order`. On an unknown outcome (timeout, 5xx, `-1007`) the error says so
    /// and the order must be queried by `client_id`; it is never re-sent here.
    pub async fn place_order(&self, order: &NewOrder) -> Result<Placed, BinanceError> {
        let params = order.params()?;
        let body = self
            .send_signed(Method::POST, "/api/v3/order", params, Cost::order(weight::ORDER))
            .await?;
        let ts_local = self.now();
        let o: wire::rest::Order<'_> =
            serde_json::from_slice(&body).map_err(BinanceError::decode("order response"))?;
        let update = parse::order_update(&o, ts_local, Some(order.ack_context()))?;
        Ok(Placed { update, fills: parse::order_fills(&o)? })
    }

    /// `DELETE /api/v3/order` by client id or order id.
    pub async fn cancel_order(
        &self,
        symbol: Symbol,
        which: OrderRef,
    ) -> Result<OrderUpdate, BinanceError> {
        let params = vec![("symbol", symbol.to_string()), which.param()];
        let body = self
            .send_signed(Method::DELETE, "/api/v3/order", params, Cost::weight(weight::ORDER))
            .await?;
        let o: wire::rest::Order<'_> =
            serde_json::from_slice(&body).map_err(BinanceError::decode("cancel response"))?;
        parse::order_update(&o, self.now(), None)
    }

    /// `GET /api/v3/order` (weight 4). `-2013` means the order does not exist.
    pub async fn query_order(
        &self,
        symbol: Symbol,
        which: OrderRef,
    ) -> Result<OrderUpdate, BinanceError> {
        let params = vec![("symbol", symbol.to_string()), which.param()];
        let body = self
            .send_signed(Method::GET, "/api/v3/order", params, Cost::weight(weight::QUERY_ORDER))
            .await?;
        let o: wire::rest::Order<'_> =
            serde_json::from_slice(&body).map_err(BinanceError::decode("query order response"))?;
        parse::order_update(&o, self.now(), None)
    }

    /// `GET /api/v3/openOrders` for one symbol (weight 6) or all (weight 80).
    pub async fn open_orders(
        &self,
        symbol: Option<Symbol>,
    ) -> Result<Vec<OrderUpdate>, BinanceError> {
        let detailed = self.open_orders_detailed(symbol).await?;
        Ok(detailed.into_iter().map(|o| o.update).collect())
    }

    /// `GET /api/v3/openOrders` (one symbol or all) with each order's type, time in force
    /// and limit price ([`OpenOrder`]).
    pub async fn open_orders_detailed(
        &self,
        symbol: Option<Symbol>,
    ) -> Result<Vec<OpenOrder>, BinanceError> {
        let (params, w) = match symbol {
            Some(s) => (vec![("symbol", s.to_string())], weight::OPEN_ORDERS_SYMBOL),
            None => (Vec::new(), weight::OPEN_ORDERS_ALL),
        };
        let body =
            self.send_signed(Method::GET, "/api/v3/openOrders", params, Cost::weight(w)).await?;
        let list: Vec<wire::rest::Order<'_>> =
            serde_json::from_slice(&body).map_err(BinanceError::decode("open orders"))?;
        let ts = self.now();
        list.iter()
            .map(|o| {
                Ok(OpenOrder {
                    update: parse::order_update(o, ts, None)?,
                    kind: o.order_type.as_deref().and_then(|t| match t {
                        "LIMIT" => Some(OrderType::Limit),
                        "LIMIT_MAKER" => Some(OrderType::LimitMaker),
                        "MARKET" => Some(OrderType::Market),
                        _ => None,
                    }),
                    time_in_force: o.time_in_force.as_deref().and_then(|t| match t {
                        "GTC" => Some(TimeInForce::Gtc),
                        "IOC" => Some(TimeInForce::Ioc),
                        "FOK" => Some(TimeInForce::Fok),
                        _ => None,
                    }),
                    price: o.price.filter(|p| p.mantissa() > 0),
                })
            })
            .collect()
    }

    /// `DELETE /api/v3/openOrders`: cancels every open order on `symbol` (order lists
    /// included) and returns the cancelled orders.
    pub async fn cancel_all(&self, symbol: Symbol) -> Result<Vec<OrderUpdate>, BinanceError> {
        let params = vec![("symbol", symbol.to_string())];
        let body = self
            .send_signed(
                Method::DELETE,
                "/api/v3/openOrders",
                params,
                Cost::weight(weight::CANCEL_ALL),
            )
            .await?;
        parse_canceled_list(&body, self.now())
    }

    /// `GET /api/v3/account` (weight 20): balances.
    pub async fn account(&self) -> Result<Vec<Balance>, BinanceError> {
        let params = vec![("omitZeroBalances", "true".to_string())];
        let body = self
            .send_signed(Method::GET, "/api/v3/account", params, Cost::weight(weight::ACCOUNT))
            .await?;
        let a: wire::rest::Account<'_> =
            serde_json::from_slice(&body).map_err(BinanceError::decode("account"))?;
        parse::balances(&a)
    }

    /// `GET /api/v3/myTrades` for a symbol, optionally from a trade id on (`fromId`).
    pub async fn my_trades(
        &self,
        symbol: Symbol,
        from_id: Option<TradeId>,
        limit: u16,
    ) -> Result<Vec<MyTrade>, BinanceError> {
        let mut params = vec![("symbol", symbol.to_string()), ("limit", limit.to_string())];
        if let Some(id) = from_id {
            params.push(("fromId", id.to_string()));
        }
        let body = self
            .send_signed(Method::GET, "/api/v3/myTrades", params, Cost::weight(weight::MY_TRADES))
            .await?;
        parse_my_trades(&body)
    }

    /// A signed request, retried once after re-measuring the clock offset on `-1021`.
    async fn send_signed(
        &self,
        method: Method,
        path: &'static str,
        params: Vec<(&'static str, String)>,
        cost: Cost,
    ) -> Result<Vec<u8>, BinanceError> {
        match self.send(method.clone(), path, params.clone(), Security::Signed, cost).await {
            Err(e) if e.is_clock_skew() => {
                tracing::warn!(path, "-1021 timestamp outside recvWindow: re-measuring clock offset and retrying once");
                self.sync_time().await?;
                self.send(method, path, params, Security::Signed, cost).await
            }
            other => other,
        }
    }

    /// Takes budget, builds (and signs) the query, sends, and classifies the response.
    async fn send(
        &self,
        method: Method,
        path: &'static str,
        mut params: Vec<(&'static str, String)>,
        security: Security,
        cost: Cost,
    ) -> Result<Vec<u8>, BinanceError> {
        let inner = &*self.inner;
        let creds = match security {
            Security::Signed => {
                Some(inner.cfg.credentials.as_ref().ok_or(SignError::MissingCredentials)?)
            }
            Security::Public => None,
        };
        inner.limiter.acquire(cost).await?;

        let mut url = inner.cfg.endpoints.rest_url(path);
        if let Some(c) = creds {
            let ts = inner.cfg.time_offset.to_exchange(self.now());
            params.push(("recvWindow", inner.cfg.recv_window_ms.to_string()));
            params.push(("timestamp", ts.as_millis().to_string()));
            let mut query = rest_query(&params);
            let sig = c.sign(query.as_bytes());
            query.push_str("&signature=");
            query.push_str(&encode_component(&sig));
            url.set_query(Some(&query));
        } else if !params.is_empty() {
            url.set_query(Some(&rest_query(&params)));
        }

        let mut req = inner.http.request(method, url);
        if let Some(c) = inner.cfg.credentials.as_ref() {
            req = req.header("X-MBX-APIKEY", c.api_key.as_str());
        }
        let resp = req.send().await.map_err(BinanceError::from_reqwest)?;
        let status = resp.status();
        inner.limiter.observe_headers(resp.headers());
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp.bytes().await.map_err(BinanceError::from_reqwest)?;

        if status.is_success() {
            return Ok(body.to_vec());
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.as_u16() == 418 {
            let banned = status.as_u16() == 418;
            let retry_after = retry_after.unwrap_or(inner.cfg.default_retry_after);
            inner.limiter.on_rate_limited(retry_after, banned);
            return Err(BinanceError::RateLimited { retry_after, banned });
        }
        Err(error_from_body(status.as_u16(), &body))
    }
}

/// A non-2xx body → `Api` if it is a Binance error body, else `Http`.
pub(crate) fn error_from_body(status: u16, body: &[u8]) -> BinanceError {
    match serde_json::from_slice::<wire::rest::ErrorBody<'_>>(body) {
        Ok(e) => BinanceError::Api { http_status: status, code: e.code, msg: e.msg.into_owned() },
        Err(_) => BinanceError::Http {
            status,
            body: String::from_utf8_lossy(&body[..body.len().min(256)]).into_owned(),
        },
    }
}

/// Decodes an `exchangeInfo` body (REST body or WS API `result`).
pub fn parse_exchange_info(body: &[u8]) -> Result<ExchangeInfo, BinanceError> {
    let w: wire::rest::ExchangeInfo<'_> =
        serde_json::from_slice(body).map_err(BinanceError::decode("exchange info"))?;
    let mut instruments = Vec::with_capacity(w.symbols.len());
    let mut refused = Vec::new();
    for s in &w.symbols {
        match parse::instrument_spec(s) {
            Ok(spec) => instruments.push(spec),
            Err(e) => {
                tracing::warn!(symbol = %s.symbol, error = %e, "symbol refused: filter values do not fit fixed point");
                refused.push((s.symbol.to_string(), e));
            }
        }
    }
    Ok(ExchangeInfo {
        server_time: parse::millis(w.server_time),
        limits: parse::exchange_limits(&w.rate_limits),
        instruments,
        refused,
    })
}

/// Decodes a `DELETE /api/v3/openOrders` body (orders and order lists).
pub fn parse_canceled_list(
    body: &[u8],
    ts_local: UnixNanos,
) -> Result<Vec<OrderUpdate>, BinanceError> {
    let list: Vec<wire::rest::CanceledEntry<'_>> =
        serde_json::from_slice(body).map_err(BinanceError::decode("cancel all response"))?;
    let mut out = Vec::with_capacity(list.len());
    for e in &list {
        match e {
            wire::rest::CanceledEntry::Order(o) => {
                out.push(parse::order_update(o, ts_local, None)?)
            }
            wire::rest::CanceledEntry::List { order_reports, .. } => {
                for o in order_reports {
                    out.push(parse::order_update(o, ts_local, None)?);
                }
            }
        }
    }
    Ok(out)
}

/// Decodes a `GET /api/v3/myTrades` body.
pub fn parse_my_trades(body: &[u8]) -> Result<Vec<MyTrade>, BinanceError> {
    let list: Vec<wire::rest::MyTrade<'_>> =
        serde_json::from_slice(body).map_err(BinanceError::decode("my trades"))?;
    list.iter()
        .map(|t| {
            Ok(MyTrade {
                symbol: parse::symbol("my trades", &t.symbol)?,
                order_id: parse::order_id("my trades", t.order_id)?,
                side: if t.is_buyer { Side::Buy } else { Side::Sell },
                fill: Fill {
                    trade_id: TradeId(t.id),
                    price: t.price,
                    qty: t.qty,
                    commission: t.commission,
                    commission_asset: parse::opt_asset("my trades", &t.commission_asset)?,
                    is_maker: t.is_maker,
                    ts_exchange: parse::millis(t.time),
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(
        kind: OrderType,
        tif: Option<TimeInForce>,
        price: Option<&str>,
        qty: OrderQty,
    ) -> NewOrder {
        NewOrder {
            symbol: Symbol::new("BTCUSDT").unwrap(),
            client_id: ClientOrderId::new("k-1").unwrap(),
            side: Side::Buy,
            kind,
            time_in_force: tif,
            price: price.map(|p| p.parse().unwrap()),
            qty,
            resp_type: RespType::Result,
        }
    }

    fn query(o: &NewOrder) -> Result<String, BinanceError> {
        o.params().map(|p| rest_query(&p))
    }

    #[test]
    fn order_params_per_type() {
        let base = OrderQty::Base("0.001".parse().unwrap());
        let quote = OrderQty::Quote("100.5".parse().unwrap());
        let cases = [
            // TC0: LIMIT needs timeInForce, quantity, price
            (
                order(OrderType::Limit, Some(TimeInForce::Ioc), Some("65000.1"), base),
                Ok("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=IOC&quantity=0.001&price=65000.1&newClientOrderId=k-1&newOrderRespType=RESULT"),
            ),
            // TC1: LIMIT_MAKER has no timeInForce
            (
                order(OrderType::LimitMaker, None, Some("1"), base),
                Ok("symbol=BTCUSDT&side=BUY&type=LIMIT_MAKER&quantity=0.001&price=1&newClientOrderId=k-1&newOrderRespType=RESULT"),
            ),
            // TC2: MARKET by quote amount
            (
                order(OrderType::Market, None, None, quote),
                Ok("symbol=BTCUSDT&side=BUY&type=MARKET&quoteOrderQty=100.5&newClientOrderId=k-1&newOrderRespType=RESULT"),
            ),
            // TC3: LIMIT without timeInForce
            (order(OrderType::Limit, None, Some("1"), base), Err("LIMIT order needs timeInForce")),
            // TC4: LIMIT without price
            (order(OrderType::Limit, Some(TimeInForce::Gtc), None, base), Err("limit order needs a price")),
            // TC5: quote amount on a LIMIT
            (order(OrderType::Limit, Some(TimeInForce::Fok), Some("1"), quote), Err("quoteOrderQty is only for MARKET orders")),
        ];
        for (i, (o, want)) in cases.iter().enumerate() {
            match (query(o), want) {
                (Ok(q), Ok(w)) => assert_eq!(q, *w, "TC{i}"),
                (Err(BinanceError::InvalidRequest(m)), Err(w)) => assert_eq!(m, *w, "TC{i}"),
                (got, _) => panic!("TC{i}: {got:?}"),
            }
        }
        // A quote amount finer than 1e-8 cannot be sent.
        let fine =
            order(OrderType::Market, None, None, OrderQty::Quote("0.000000001".parse().unwrap()));
        assert!(matches!(fine.params(), Err(BinanceError::InvalidRequest(_))));
    }

    #[test]
    fn depth_weight_follows_the_limit() {
        let cases = [(5, 5), (100, 5), (101, 25), (500, 25), (1000, 50), (5000, 250)];
        for (i, (limit, w)) in cases.into_iter().enumerate() {
            assert_eq!(weight::depth(limit), w, "TC{i}");
        }
    }

    #[test]
    fn non_json_error_bodies_keep_the_status() {
        let e = error_from_body(502, b"<html>bad gateway</html>");
        assert!(matches!(&e, BinanceError::Http { status: 502, .. }) && e.is_unknown_outcome());
        let e = error_from_body(400, br#"{"code":-1013,"msg":"Filter failure: LOT_SIZE"}"#);
        assert_eq!(e.code(), Some(-1013));
    }
}
