//! REST response bodies (rest-api.md), field for field. Decimal strings are read straight into
//! fixed point through [`crate::parse::de`]; text stays borrowed from the body where possible.
//!
//! Fields kestrel does not use are still listed when the docs mark them as always present and
//! cheap (ids, times), and skipped otherwise (serde ignores unknown fields, so new exchange
//! fields never break decoding).

use kestrel_model::{Level, Notional, Price, Qty};
use serde::Deserialize;

use crate::parse::Text;

/// `GET /api/v3/time`.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerTime {
    /// Server time, ms since the epoch.
    #[serde(rename = "serverTime")]
    pub server_time: i64,
}

/// `GET /api/v3/depth` (also the shape of a partial-depth stream event).
#[derive(Debug, Clone, Deserialize)]
pub struct Depth {
    /// "lastUpdateId": the book's update id at the snapshot; deltas with `u <= lastUpdateId`
    /// are already included.
    #[serde(rename = "lastUpdateId")]
    pub last_update_id: u64,
    /// "bids": `[price, qty]`, best (highest) first.
    #[serde(deserialize_with = "crate::parse::de::levels")]
    pub bids: Vec<Level>,
    /// "asks": `[price, qty]`, best (lowest) first.
    #[serde(deserialize_with = "crate::parse::de::levels")]
    pub asks: Vec<Level>,
}

/// `GET /api/v3/ticker/bookTicker?symbol=`: best bid and ask.
#[derive(Debug, Clone, Deserialize)]
pub struct BookTicker<'a> {
    /// "symbol".
    #[serde(borrow)]
    pub symbol: Text<'a>,
    /// "bidPrice": best bid price.
    #[serde(rename = "bidPrice", deserialize_with = "crate::parse::de::price")]
    pub bid_price: Price,
    /// "bidQty": quantity at the best bid.
    #[serde(rename = "bidQty", deserialize_with = "crate::parse::de::qty")]
    pub bid_qty: Qty,
    /// "askPrice": best ask price.
    #[serde(rename = "askPrice", deserialize_with = "crate::parse::de::price")]
    pub ask_price: Price,
    /// "askQty": quantity at the best ask.
    #[serde(rename = "askQty", deserialize_with = "crate::parse::de::qty")]
    pub ask_qty: Qty,
}

/// An error body: `{"code": -1121, "msg": "Invalid symbol."}` (errors.md).
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody<'a> {
    /// "code": Binance error code (negative).
    pub code: i32,
    /// "msg": human-readable message, e.g. `Filter failure: LOT_SIZE`.
    #[serde(borrow)]
    pub msg: Text<'a>,
}

/// One entry of `rateLimits` (exchangeInfo; WebSocket API responses add `count`).
#[derive(Debug, Clone, Deserialize)]
pub struct RateLimit<'a> {
    /// "rateLimitType": `REQUEST_WEIGHT`, `ORDERS`, `RAW_REQUESTS`, `CONNECTIONS`.
    #[serde(rename = "rateLimitType", borrow)]
    pub rate_limit_type: Text<'a>,
    /// "interval": `SECOND`, `MINUTE`, `HOUR`, `DAY`.
    #[serde(borrow)]
    pub interval: Text<'a>,
    /// "intervalNum": how many `interval`s make the window.
    #[serde(rename = "intervalNum")]
    pub interval_num: u32,
    /// "limit": units allowed per window.
    pub limit: u32,
    /// "count": units used in the current window (WebSocket API responses only).
    #[serde(default)]
    pub count: Option<u32>,
}

/// `GET /api/v3/exchangeInfo`.
#[derive(Debug, Clone, Deserialize)]
pub struct ExchangeInfo<'a> {
    /// "timezone": always `UTC`.
    #[serde(borrow)]
    pub timezone: Text<'a>,
    /// "serverTime": ms since the epoch.
    #[serde(rename = "serverTime")]
    pub server_time: i64,
    /// "rateLimits": the limits the rate limiter enforces.
    #[serde(rename = "rateLimits", borrow)]
    pub rate_limits: Vec<RateLimit<'a>>,
    /// "symbols": one entry per symbol.
    #[serde(borrow)]
    pub symbols: Vec<SymbolInfo<'a>>,
}

/// One symbol of `exchangeInfo`.
#[derive(Debug, Clone, Deserialize)]
pub struct SymbolInfo<'a> {
    /// "symbol".
    #[serde(borrow)]
    pub symbol: Text<'a>,
    /// "status": `TRADING`, `HALT`, `BREAK`, `CANCEL_ONLY`, ...
    #[serde(borrow)]
    pub status: Text<'a>,
    /// "baseAsset": what quantities count.
    #[serde(rename = "baseAsset", borrow)]
    pub base_asset: Text<'a>,
    /// "quoteAsset": what prices are in.
    #[serde(rename = "quoteAsset", borrow)]
    pub quote_asset: Text<'a>,
    /// "orderTypes": allowed order types.
    #[serde(rename = "orderTypes", default, borrow)]
    pub order_types: Vec<Text<'a>>,
    /// "quoteOrderQtyMarketAllowed": MARKET by `quoteOrderQty` allowed.
    #[serde(rename = "quoteOrderQtyMarketAllowed", default)]
    pub quote_order_qty_market_allowed: bool,
    /// "filters": trading rules (filters.md).
    #[serde(borrow)]
    pub filters: Vec<Filter<'a>>,
}

/// A symbol filter (filters.md). Values stay text here so that one symbol whose values do not
/// fit kestrel's fixed point is refused on its own (`parse::instrument_spec`) instead of
/// failing the whole `exchangeInfo`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "filterType")]
pub enum Filter<'a> {
    /// `PRICE_FILTER`.
    #[serde(rename = "PRICE_FILTER")]
    PriceFilter {
        /// "minPrice": lowest price/stopPrice allowed; 0 disables.
        #[serde(rename = "minPrice", borrow)]
        min_price: Text<'a>,
        /// "maxPrice": highest price/stopPrice allowed; 0 disables.
        #[serde(rename = "maxPrice", borrow)]
        max_price: Text<'a>,
        /// "tickSize": price increment; 0 disables.
        #[serde(rename = "tickSize", borrow)]
        tick_size: Text<'a>,
    },
    /// `LOT_SIZE`.
    #[serde(rename = "LOT_SIZE")]
    LotSize {
        /// "minQty": smallest quantity.
        #[serde(rename = "minQty", borrow)]
        min_qty: Text<'a>,
        /// "maxQty": largest quantity.
        #[serde(rename = "maxQty", borrow)]
        max_qty: Text<'a>,
        /// "stepSize": quantity increment.
        #[serde(rename = "stepSize", borrow)]
        step_size: Text<'a>,
    },
    /// `MARKET_LOT_SIZE`: `LOT_SIZE` for MARKET orders.
    #[serde(rename = "MARKET_LOT_SIZE")]
    MarketLotSize {
        /// "minQty".
        #[serde(rename = "minQty", borrow)]
        min_qty: Text<'a>,
        /// "maxQty".
        #[serde(rename = "maxQty", borrow)]
        max_qty: Text<'a>,
        /// "stepSize".
        #[serde(rename = "stepSize", borrow)]
        step_size: Text<'a>,
    },
    /// `MIN_NOTIONAL`.
    #[serde(rename = "MIN_NOTIONAL")]
    MinNotional {
        /// "minNotional": minimum `price * qty`.
        #[serde(rename = "minNotional", borrow)]
        min_notional: Text<'a>,
        /// "applyToMarket": whether MARKET orders are checked.
        #[serde(rename = "applyToMarket")]
        apply_to_market: bool,
        /// "avgPriceMins": minutes of the average price for MARKET orders (0 = last price).
        #[serde(rename = "avgPriceMins")]
        avg_price_mins: u32,
    },
    /// `NOTIONAL`.
    #[serde(rename = "NOTIONAL")]
    Notional {
        /// "minNotional".
        #[serde(rename = "minNotional", borrow)]
        min_notional: Text<'a>,
        /// "applyMinToMarket".
        #[serde(rename = "applyMinToMarket")]
        apply_min_to_market: bool,
        /// "maxNotional".
        #[serde(rename = "maxNotional", borrow)]
        max_notional: Text<'a>,
        /// "applyMaxToMarket".
        #[serde(rename = "applyMaxToMarket")]
        apply_max_to_market: bool,
        /// "avgPriceMins".
        #[serde(rename = "avgPriceMins")]
        avg_price_mins: u32,
    },
    /// `PERCENT_PRICE`.
    #[serde(rename = "PERCENT_PRICE")]
    PercentPrice {
        /// "multiplierUp": price <= avg * multiplierUp.
        #[serde(rename = "multiplierUp", borrow)]
        multiplier_up: Text<'a>,
        /// "multiplierDown": price >= avg * multiplierDown.
        #[serde(rename = "multiplierDown", borrow)]
        multiplier_down: Text<'a>,
        /// "avgPriceMins".
        #[serde(rename = "avgPriceMins")]
        avg_price_mins: u32,
    },
    /// `PERCENT_PRICE_BY_SIDE`.
    #[serde(rename = "PERCENT_PRICE_BY_SIDE")]
    PercentPriceBySide {
        /// "bidMultiplierUp": BUY price <= avg * bidMultiplierUp.
        #[serde(rename = "bidMultiplierUp", borrow)]
        bid_multiplier_up: Text<'a>,
        /// "bidMultiplierDown": BUY price >= avg * bidMultiplierDown.
        #[serde(rename = "bidMultiplierDown", borrow)]
        bid_multiplier_down: Text<'a>,
        /// "askMultiplierUp": SELL price <= avg * askMultiplierUp.
        #[serde(rename = "askMultiplierUp", borrow)]
        ask_multiplier_up: Text<'a>,
        /// "askMultiplierDown": SELL price >= avg * askMultiplierDown.
        #[serde(rename = "askMultiplierDown", borrow)]
        ask_multiplier_down: Text<'a>,
        /// "avgPriceMins".
        #[serde(rename = "avgPriceMins")]
        avg_price_mins: u32,
    },
    /// `MAX_NUM_ORDERS`.
    #[serde(rename = "MAX_NUM_ORDERS")]
    MaxNumOrders {
        /// "maxNumOrders": open orders per account and symbol.
        #[serde(rename = "maxNumOrders")]
        max_num_orders: u32,
    },
    /// Any filter kestrel does not check (ICEBERG_PARTS, TRAILING_DELTA, ...).
    #[serde(other)]
    Other,
}

/// One fill of a FULL order response.
#[derive(Debug, Clone, Deserialize)]
pub struct OrderFill<'a> {
    /// "price": fill price.
    #[serde(deserialize_with = "crate::parse::de::price")]
    pub price: Price,
    /// "qty": fill quantity.
    #[serde(deserialize_with = "crate::parse::de::qty")]
    pub qty: Qty,
    /// "commission": commission charged for this fill.
    #[serde(deserialize_with = "crate::parse::de::notional")]
    pub commission: Notional,
    /// "commissionAsset": the asset the commission is charged in.
    #[serde(rename = "commissionAsset", borrow)]
    pub commission_asset: Text<'a>,
    /// "tradeId": exchange trade id.
    #[serde(rename = "tradeId")]
    pub trade_id: u64,
}

/// An order as `POST/DELETE/GET /api/v3/order`, `GET/DELETE /api/v3/openOrders` and the
/// WebSocket API return it. ACK responses carry only the identity fields; RESULT adds the
/// state; FULL adds `fills`; query responses add `time`/`updateTime`/`isWorking`; cancel
/// responses add `origClientOrderId`.
#[derive(Debug, Clone, Deserialize)]
pub struct Order<'a> {
    /// "symbol".
    #[serde(borrow)]
    pub symbol: Text<'a>,
    /// "orderId": exchange order id.
    #[serde(rename = "orderId")]
    pub order_id: i64,
    /// "orderListId": -1 unless part of an order list.
    #[serde(rename = "orderListId", default)]
    pub order_list_id: i64,
    /// "clientOrderId": the order's client id (for a cancel response, the id of the cancel
    /// request; the order's own id is then `origClientOrderId`).
    #[serde(rename = "clientOrderId", borrow)]
    pub client_order_id: Text<'a>,
    /// "origClientOrderId": cancel responses only; the cancelled order's client id.
    #[serde(rename = "origClientOrderId", default, borrow)]
    pub orig_client_order_id: Option<Text<'a>>,
    /// "transactTime": when the request was processed (ms); absent in query responses.
    #[serde(rename = "transactTime", default)]
    pub transact_time: Option<i64>,
    /// "price": limit price ("0" for MARKET). RESULT/FULL and queries.
    #[serde(default, deserialize_with = "crate::parse::de::opt_price")]
    pub price: Option<Price>,
    /// "origQty": ordered quantity.
    #[serde(rename = "origQty", default, deserialize_with = "crate::parse::de::opt_qty")]
    pub orig_qty: Option<Qty>,
    /// "executedQty": filled quantity so far.
    #[serde(rename = "executedQty", default, deserialize_with = "crate::parse::de::opt_qty")]
    pub executed_qty: Option<Qty>,
    /// "origQuoteOrderQty": the `quoteOrderQty` of a MARKET-by-quote order ("0" otherwise).
    #[serde(
        rename = "origQuoteOrderQty",
        default,
        deserialize_with = "crate::parse::de::opt_notional"
    )]
    pub orig_quote_order_qty: Option<Notional>,
    /// "cummulativeQuoteQty" (sic): quote amount filled so far.
    #[serde(
        rename = "cummulativeQuoteQty",
        default,
        deserialize_with = "crate::parse::de::opt_notional"
    )]
    pub cummulative_quote_qty: Option<Notional>,
    /// "status": NEW, PARTIALLY_FILLED, FILLED, CANCELED, REJECTED, EXPIRED, ...
    #[serde(default, borrow)]
    pub status: Option<Text<'a>>,
    /// "timeInForce": GTC, IOC, FOK.
    #[serde(rename = "timeInForce", default, borrow)]
    pub time_in_force: Option<Text<'a>>,
    /// "type": LIMIT, MARKET, LIMIT_MAKER, ...
    #[serde(rename = "type", default, borrow)]
    pub order_type: Option<Text<'a>>,
    /// "side": BUY or SELL.
    #[serde(default, borrow)]
    pub side: Option<Text<'a>>,
    /// "time": order creation time (ms), queries only.
    #[serde(default)]
    pub time: Option<i64>,
    /// "updateTime": last update (ms), queries only.
    #[serde(rename = "updateTime", default)]
    pub update_time: Option<i64>,
    /// "workingTime": when the order started working on the book (ms).
    #[serde(rename = "workingTime", default)]
    pub working_time: Option<i64>,
    /// "fills": FULL responses only.
    #[serde(default, borrow)]
    pub fills: Vec<OrderFill<'a>>,
}

/// One element of `DELETE /api/v3/openOrders`: a cancelled order, or an order list (whose
/// member orders are in `orderReports`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CanceledEntry<'a> {
    /// An order list (OCO, OTO...) cancelled as a whole.
    List {
        /// "orderListId".
        #[serde(rename = "orderListId")]
        order_list_id: i64,
        /// "orderReports": the cancelled member orders.
        #[serde(rename = "orderReports", borrow)]
        order_reports: Vec<Order<'a>>,
    },
    /// A single cancelled order.
    Order(#[serde(borrow)] Box<Order<'a>>),
}

/// One balance of `GET /api/v3/account`.
#[derive(Debug, Clone, Deserialize)]
pub struct AccountBalance<'a> {
    /// "asset".
    #[serde(borrow)]
    pub asset: Text<'a>,
    /// "free": available.
    #[serde(deserialize_with = "crate::parse::de::notional")]
    pub free: Notional,
    /// "locked": held by open orders.
    #[serde(deserialize_with = "crate::parse::de::notional")]
    pub locked: Notional,
}

/// `GET /api/v3/account`.
#[derive(Debug, Clone, Deserialize)]
pub struct Account<'a> {
    /// "canTrade": trading allowed for this key/account.
    #[serde(rename = "canTrade")]
    pub can_trade: bool,
    /// "updateTime": last account update (ms).
    #[serde(rename = "updateTime")]
    pub update_time: i64,
    /// "accountType": `SPOT`.
    #[serde(rename = "accountType", borrow)]
    pub account_type: Text<'a>,
    /// "balances".
    #[serde(borrow)]
    pub balances: Vec<AccountBalance<'a>>,
}

/// One entry of `GET /api/v3/myTrades`.
#[derive(Debug, Clone, Deserialize)]
pub struct MyTrade<'a> {
    /// "symbol".
    #[serde(borrow)]
    pub symbol: Text<'a>,
    /// "id": trade id.
    pub id: u64,
    /// "orderId": the order that traded.
    #[serde(rename = "orderId")]
    pub order_id: i64,
    /// "price".
    #[serde(deserialize_with = "crate::parse::de::price")]
    pub price: Price,
    /// "qty".
    #[serde(deserialize_with = "crate::parse::de::qty")]
    pub qty: Qty,
    /// "quoteQty": price × qty as the exchange computed it.
    #[serde(rename = "quoteQty", deserialize_with = "crate::parse::de::notional")]
    pub quote_qty: Notional,
    /// "commission".
    #[serde(deserialize_with = "crate::parse::de::notional")]
    pub commission: Notional,
    /// "commissionAsset".
    #[serde(rename = "commissionAsset", borrow)]
    pub commission_asset: Text<'a>,
    /// "time": trade time (ms).
    pub time: i64,
    /// "isBuyer": we bought.
    #[serde(rename = "isBuyer")]
    pub is_buyer: bool,
    /// "isMaker": we were the maker.
    #[serde(rename = "isMaker")]
    pub is_maker: bool,
}
