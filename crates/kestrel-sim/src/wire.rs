//! The simulator's own wire types (serde), field names exactly as in the Binance docs, and the
//! decimal formatting Binance uses (8 fractional digits, `"0.00100000"`).

use kestrel_model::{Notional, Price, Qty};
use serde::Serialize;

/// Formats a 1e-8 mantissa with exactly 8 decimals, as Binance prints prices and quantities.
pub fn f8(mantissa: i64) -> String {
    let abs = mantissa.unsigned_abs();
    let sign = if mantissa < 0 { "-" } else { "" };
    format!("{sign}{}.{:08}", abs / 100_000_000, abs % 100_000_000)
}

/// A price with 8 decimals.
pub fn fp(p: Price) -> String {
    f8(p.mantissa())
}

/// A quantity with 8 decimals.
pub fn fq(q: Qty) -> String {
    f8(q.mantissa())
}

/// A notional truncated (towards −∞) to 8 decimals.
pub fn fn8(n: Notional) -> String {
    let m = n.mantissa().div_euclid(100_000_000);
    match i64::try_from(m) {
        Ok(v) => f8(v),
        // Beyond i64 at 1e-8 (≈ 9.2e10 units): print exactly through i128.
        Err(_) => {
            let abs = m.unsigned_abs();
            let sign = if m < 0 { "-" } else { "" };
            format!("{sign}{}.{:08}", abs / 100_000_000, abs % 100_000_000)
        }
    }
}

/// `selfTradePreventionMode` values the simulator implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StpMode {
    /// No prevention: the account may trade with itself.
    None,
    /// Expire the taker's remainder.
    ExpireTaker,
    /// Expire the resting maker order.
    ExpireMaker,
    /// Expire both.
    ExpireBoth,
}

impl StpMode {
    /// Parses the Binance spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "NONE" => Self::None,
            "EXPIRE_TAKER" => Self::ExpireTaker,
            "EXPIRE_MAKER" => Self::ExpireMaker,
            "EXPIRE_BOTH" => Self::ExpireBoth,
            _ => return None,
        })
    }

    /// The Binance spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::ExpireTaker => "EXPIRE_TAKER",
            Self::ExpireMaker => "EXPIRE_MAKER",
            Self::ExpireBoth => "EXPIRE_BOTH",
        }
    }
}

/// `{"code":..,"msg":..}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// Error code.
    pub code: i64,
    /// Message.
    pub msg: &'a str,
}

/// One fill of a FULL order response.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FillWire {
    /// Fill price.
    pub price: String,
    /// Fill quantity.
    pub qty: String,
    /// Commission charged.
    pub commission: String,
    /// Asset of the commission.
    pub commission_asset: String,
    /// Trade id.
    pub trade_id: u64,
}

/// The RESULT part of an order response.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderResultWire {
    /// Limit price (`0.00000000` for market orders).
    pub price: String,
    /// Ordered quantity.
    pub orig_qty: String,
    /// Filled quantity.
    pub executed_qty: String,
    /// `quoteOrderQty` of a market order (6 decimals, as Binance prints it).
    pub orig_quote_order_qty: String,
    /// Cumulative quote amount (Binance's spelling).
    pub cummulative_quote_qty: String,
    /// Order status.
    pub status: &'static str,
    /// Time in force.
    pub time_in_force: &'static str,
    /// Order type.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Side.
    pub side: &'static str,
    /// When the order started working on the book.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_time: Option<u64>,
    /// STP mode.
    pub self_trade_prevention_mode: &'static str,
}

/// `POST /api/v3/order` response (ACK, RESULT or FULL).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderResponseWire {
    /// Symbol.
    pub symbol: String,
    /// Exchange order id.
    pub order_id: u64,
    /// Always -1 (no order lists).
    pub order_list_id: i64,
    /// Client order id.
    pub client_order_id: String,
    /// Transaction time (ms).
    pub transact_time: u64,
    /// RESULT fields.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub result: Option<OrderResultWire>,
    /// FULL fills.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fills: Option<Vec<FillWire>>,
}

/// `DELETE /api/v3/order` response (and each entry of `DELETE /api/v3/openOrders`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelResponseWire {
    /// Symbol.
    pub symbol: String,
    /// The cancelled order's client id.
    pub orig_client_order_id: String,
    /// Exchange order id.
    pub order_id: u64,
    /// Always -1.
    pub order_list_id: i64,
    /// Client id of the cancel request.
    pub client_order_id: String,
    /// Cancel time.
    pub transact_time: u64,
    /// RESULT fields (no `workingTime` in cancel responses).
    #[serde(flatten)]
    pub result: OrderResultWire,
}

/// `GET /api/v3/order` and `openOrders` entries.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryOrderWire {
    /// Symbol.
    pub symbol: String,
    /// Exchange order id.
    pub order_id: u64,
    /// Always -1.
    pub order_list_id: i64,
    /// Client id.
    pub client_order_id: String,
    /// Limit price.
    pub price: String,
    /// Ordered quantity.
    pub orig_qty: String,
    /// Filled quantity.
    pub executed_qty: String,
    /// Cumulative quote.
    pub cummulative_quote_qty: String,
    /// Status.
    pub status: &'static str,
    /// Time in force.
    pub time_in_force: &'static str,
    /// Type.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Side.
    pub side: &'static str,
    /// Always zero (no stop orders).
    pub stop_price: String,
    /// Always zero (no icebergs).
    pub iceberg_qty: String,
    /// Creation time.
    pub time: u64,
    /// Last update time.
    pub update_time: u64,
    /// On the book.
    pub is_working: bool,
    /// Working time.
    pub working_time: u64,
    /// Quote quantity of a market order.
    pub orig_quote_order_qty: String,
    /// STP mode.
    pub self_trade_prevention_mode: &'static str,
}

/// `GET /api/v3/myTrades` entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MyTradeWire {
    /// Symbol.
    pub symbol: String,
    /// Trade id.
    pub id: u64,
    /// Order id.
    pub order_id: u64,
    /// Always -1.
    pub order_list_id: i64,
    /// Price.
    pub price: String,
    /// Quantity.
    pub qty: String,
    /// Price × qty.
    pub quote_qty: String,
    /// Commission.
    pub commission: String,
    /// Commission asset.
    pub commission_asset: String,
    /// Trade time.
    pub time: u64,
    /// This account bought.
    pub is_buyer: bool,
    /// This account's order was the maker.
    pub is_maker: bool,
    /// Always true.
    pub is_best_match: bool,
}

/// `GET /api/v3/trades` entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicTradeWire {
    /// Trade id.
    pub id: u64,
    /// Price.
    pub price: String,
    /// Quantity.
    pub qty: String,
    /// Price × qty.
    pub quote_qty: String,
    /// Trade time.
    pub time: u64,
    /// The buyer was the maker.
    pub is_buyer_maker: bool,
    /// Always true.
    pub is_best_match: bool,
}

/// `depthUpdate` stream event.
#[derive(Debug, Serialize)]
pub struct DepthUpdateWire<'a> {
    /// Event type.
    pub e: &'static str,
    /// Event time.
    #[serde(rename = "E")]
    pub event_time: u64,
    /// Symbol.
    pub s: &'a str,
    /// First update id in the event.
    #[serde(rename = "U")]
    pub first_id: u64,
    /// Final update id in the event.
    pub u: u64,
    /// Bid levels `[price, qty]` (absolute qty; `0` removes).
    pub b: Vec<[String; 2]>,
    /// Ask levels.
    pub a: Vec<[String; 2]>,
}

/// `trade` stream event.
#[derive(Debug, Serialize)]
pub struct TradeWire<'a> {
    /// Event type.
    pub e: &'static str,
    /// Event time.
    #[serde(rename = "E")]
    pub event_time: u64,
    /// Symbol.
    pub s: &'a str,
    /// Trade id.
    pub t: u64,
    /// Price.
    pub p: String,
    /// Quantity.
    pub q: String,
    /// Trade time.
    #[serde(rename = "T")]
    pub trade_time: u64,
    /// Buyer is the maker.
    pub m: bool,
    /// Ignore.
    #[serde(rename = "M")]
    pub ignore: bool,
}

/// `aggTrade` stream event.
#[derive(Debug, Serialize)]
pub struct AggTradeWire<'a> {
    /// Event type.
    pub e: &'static str,
    /// Event time.
    #[serde(rename = "E")]
    pub event_time: u64,
    /// Symbol.
    pub s: &'a str,
    /// Aggregate trade id.
    pub a: u64,
    /// Price.
    pub p: String,
    /// Quantity.
    pub q: String,
    /// First trade id.
    pub f: u64,
    /// Last trade id.
    pub l: u64,
    /// Trade time.
    #[serde(rename = "T")]
    pub trade_time: u64,
    /// Buyer is the maker.
    pub m: bool,
    /// Ignore.
    #[serde(rename = "M")]
    pub ignore: bool,
}

/// `bookTicker` stream event (no `e`/`E`, as on Binance).
#[derive(Debug, Serialize)]
pub struct BookTickerWire<'a> {
    /// Book update id.
    pub u: u64,
    /// Symbol.
    pub s: &'a str,
    /// Best bid price.
    pub b: String,
    /// Best bid qty.
    #[serde(rename = "B")]
    pub bid_qty: String,
    /// Best ask price.
    pub a: String,
    /// Best ask qty.
    #[serde(rename = "A")]
    pub ask_qty: String,
}

/// `executionReport` user-data event (user-data-stream.md).
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionReportWire {
    /// Event type.
    pub e: &'static str,
    /// Event time.
    #[serde(rename = "E")]
    pub event_time: u64,
    /// Symbol.
    pub s: String,
    /// Client order id (of the cancel request for CANCELED).
    pub c: String,
    /// Side.
    #[serde(rename = "S")]
    pub side: &'static str,
    /// Order type.
    pub o: &'static str,
    /// Time in force.
    pub f: &'static str,
    /// Quantity.
    pub q: String,
    /// Price.
    pub p: String,
    /// Stop price.
    #[serde(rename = "P")]
    pub stop_price: String,
    /// Iceberg quantity.
    #[serde(rename = "F")]
    pub iceberg: String,
    /// Order list id.
    pub g: i64,
    /// Original client order id (for CANCELED), else empty.
    #[serde(rename = "C")]
    pub orig_client_id: String,
    /// Execution type.
    pub x: &'static str,
    /// Order status.
    #[serde(rename = "X")]
    pub status: &'static str,
    /// Reject reason.
    pub r: &'static str,
    /// Order id.
    pub i: u64,
    /// Last executed quantity.
    pub l: String,
    /// Cumulative filled quantity.
    pub z: String,
    /// Last executed price.
    #[serde(rename = "L")]
    pub last_price: String,
    /// Commission of this execution.
    pub n: String,
    /// Commission asset (null if none).
    #[serde(rename = "N")]
    pub commission_asset: Option<String>,
    /// Transaction time.
    #[serde(rename = "T")]
    pub transaction_time: u64,
    /// Trade id (-1 if none).
    pub t: i64,
    /// Prevented match id (STP expiries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v: Option<u64>,
    /// Execution id.
    #[serde(rename = "I")]
    pub exec_id: u64,
    /// Order is on the book.
    pub w: bool,
    /// This trade was the maker side.
    pub m: bool,
    /// Ignore.
    #[serde(rename = "M")]
    pub ignore: bool,
    /// Order creation time.
    #[serde(rename = "O")]
    pub created: u64,
    /// Cumulative quote quantity.
    #[serde(rename = "Z")]
    pub cum_quote: String,
    /// Last quote quantity.
    #[serde(rename = "Y")]
    pub last_quote: String,
    /// Quote order quantity.
    #[serde(rename = "Q")]
    pub quote_order_qty: String,
    /// Working time.
    #[serde(rename = "W")]
    pub working_time: u64,
    /// STP mode.
    #[serde(rename = "V")]
    pub stp: &'static str,
}

/// One balance of `outboundAccountPosition`.
#[derive(Debug, Clone, Serialize)]
pub struct PositionBalanceWire {
    /// Asset.
    pub a: String,
    /// Free.
    pub f: String,
    /// Locked.
    pub l: String,
}

/// `outboundAccountPosition` user-data event.
#[derive(Debug, Clone, Serialize)]
pub struct AccountPositionWire {
    /// Event type.
    pub e: &'static str,
    /// Event time.
    #[serde(rename = "E")]
    pub event_time: u64,
    /// Time of last account update.
    pub u: u64,
    /// Balances that may have changed.
    #[serde(rename = "B")]
    pub balances: Vec<PositionBalanceWire>,
}

/// A rate-limit entry of exchangeInfo (no `count`) or of a WS API response (with `count`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitWire {
    /// `REQUEST_WEIGHT`, `ORDERS`, `RAW_REQUESTS`, `CONNECTIONS`.
    pub rate_limit_type: &'static str,
    /// `SECOND`, `MINUTE`, `DAY`.
    pub interval: &'static str,
    /// Number of intervals.
    pub interval_num: u32,
    /// The limit.
    pub limit: u32,
    /// Current usage (WS API responses only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_decimals() {
        assert_eq!(f8(0), "0.00000000");
        assert_eq!(f8(1), "0.00000001");
        assert_eq!(f8(-150_000_000), "-1.50000000");
        assert_eq!(fn8(Notional::from_mantissa(123_456_789_012_345_678)), "12.34567890");
    }
}
