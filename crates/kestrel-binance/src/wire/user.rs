//! User data events (user-data-stream.md), as delivered inside the WebSocket API's
//! `{"subscriptionId":n,"event":{..}}` wrapper. Single-letter fields keep the docs' names via
//! `rename`; each doc comment quotes the docs' meaning.

use kestrel_model::{Notional, Price, Qty};
use serde::Deserialize;

use crate::parse::Text;

/// A user data event, by its `e` field. Unknown event types (e.g. `listStatus`,
/// `externalLockUpdate`) decode as [`UserEvent::Other`] and are skipped.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "e")]
pub enum UserEvent<'a> {
    /// `executionReport`: an order changed.
    #[serde(rename = "executionReport", borrow)]
    ExecutionReport(Box<ExecutionReport<'a>>),
    /// `outboundAccountPosition`: balances that may have changed.
    #[serde(rename = "outboundAccountPosition", borrow)]
    AccountPosition(AccountPosition<'a>),
    /// `balanceUpdate`: a deposit, withdrawal or transfer.
    #[serde(rename = "balanceUpdate", borrow)]
    BalanceUpdate(BalanceUpdate<'a>),
    /// `eventStreamTerminated`: the subscription ended (logout, unsubscribe); no more events.
    #[serde(rename = "eventStreamTerminated")]
    EventStreamTerminated {
        /// "E": event time (ms).
        #[serde(rename = "E")]
        event_time: i64,
    },
    /// `serverShutdown`: the server will close this connection soon; reconnect now.
    #[serde(rename = "serverShutdown")]
    ServerShutdown {
        /// "E": event time (ms).
        #[serde(rename = "E")]
        event_time: i64,
    },
    /// Anything else.
    #[serde(other)]
    Other,
}

/// `executionReport`.
#[derive(Debug, Clone, Deserialize)]
pub struct ExecutionReport<'a> {
    /// "E": event time.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// "s": symbol.
    #[serde(rename = "s", borrow)]
    pub symbol: Text<'a>,
    /// "c": client order id (for a cancel, the cancel request's id).
    #[serde(rename = "c", borrow)]
    pub client_order_id: Text<'a>,
    /// "S": side.
    #[serde(rename = "S", borrow)]
    pub side: Text<'a>,
    /// "o": order type.
    #[serde(rename = "o", borrow)]
    pub order_type: Text<'a>,
    /// "f": time in force.
    #[serde(rename = "f", borrow)]
    pub time_in_force: Text<'a>,
    /// "q": order quantity.
    #[serde(rename = "q", deserialize_with = "crate::parse::de::qty")]
    pub quantity: Qty,
    /// "p": order price.
    #[serde(rename = "p", deserialize_with = "crate::parse::de::price")]
    pub price: Price,
    /// "C": original client order id; this is the id of the order being canceled (empty
    /// otherwise).
    #[serde(rename = "C", default, borrow)]
    pub orig_client_order_id: Option<Text<'a>>,
    /// "x": current execution type (NEW, CANCELED, REPLACED, REJECTED, TRADE, EXPIRED,
    /// TRADE_PREVENTION).
    #[serde(rename = "x", borrow)]
    pub execution_type: Text<'a>,
    /// "X": current order status.
    #[serde(rename = "X", borrow)]
    pub order_status: Text<'a>,
    /// "r": order reject reason; `NONE` if the order is not rejected.
    #[serde(rename = "r", borrow)]
    pub reject_reason: Text<'a>,
    /// "i": order id.
    #[serde(rename = "i")]
    pub order_id: i64,
    /// "l": last executed quantity.
    #[serde(rename = "l", deserialize_with = "crate::parse::de::qty")]
    pub last_qty: Qty,
    /// "z": cumulative filled quantity.
    #[serde(rename = "z", deserialize_with = "crate::parse::de::qty")]
    pub cum_qty: Qty,
    /// "L": last executed price.
    #[serde(rename = "L", deserialize_with = "crate::parse::de::price")]
    pub last_price: Price,
    /// "n": commission amount.
    #[serde(rename = "n", deserialize_with = "crate::parse::de::notional")]
    pub commission: Notional,
    /// "N": commission asset (`null` when there is none).
    #[serde(rename = "N", default, borrow)]
    pub commission_asset: Option<Text<'a>>,
    /// "T": transaction time.
    #[serde(rename = "T")]
    pub transaction_time: i64,
    /// "t": trade id (-1 when not a trade).
    #[serde(rename = "t")]
    pub trade_id: i64,
    /// "w": is the order on the book?
    #[serde(rename = "w")]
    pub on_book: bool,
    /// "m": is this trade the maker side?
    #[serde(rename = "m")]
    pub is_maker: bool,
    /// "O": order creation time.
    #[serde(rename = "O")]
    pub created: i64,
    /// "Z": cumulative quote asset transacted quantity.
    #[serde(rename = "Z", deserialize_with = "crate::parse::de::notional")]
    pub cum_quote: Notional,
    /// "Y": last quote asset transacted quantity (i.e. `lastPrice * lastQty`).
    #[serde(rename = "Y", deserialize_with = "crate::parse::de::notional")]
    pub last_quote: Notional,
    /// "Q": quote order quantity.
    #[serde(rename = "Q", deserialize_with = "crate::parse::de::notional")]
    pub quote_order_qty: Notional,
}

/// One balance of `outboundAccountPosition`.
#[derive(Debug, Clone, Deserialize)]
pub struct PositionBalance<'a> {
    /// "a": asset.
    #[serde(rename = "a", borrow)]
    pub asset: Text<'a>,
    /// "f": free.
    #[serde(rename = "f", deserialize_with = "crate::parse::de::notional")]
    pub free: Notional,
    /// "l": locked.
    #[serde(rename = "l", deserialize_with = "crate::parse::de::notional")]
    pub locked: Notional,
}

/// `outboundAccountPosition`: sent when an account balance changed; holds the assets that
/// possibly changed.
#[derive(Debug, Clone, Deserialize)]
pub struct AccountPosition<'a> {
    /// "E": event time.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// "u": time of last account update.
    #[serde(rename = "u")]
    pub last_update: i64,
    /// "B": balances array.
    #[serde(rename = "B", borrow)]
    pub balances: Vec<PositionBalance<'a>>,
}

/// `balanceUpdate`: deposits or withdrawals from the account, transfers.
#[derive(Debug, Clone, Deserialize)]
pub struct BalanceUpdate<'a> {
    /// "E": event time.
    #[serde(rename = "E")]
    pub event_time: i64,
    /// "a": asset.
    #[serde(rename = "a", borrow)]
    pub asset: Text<'a>,
    /// "d": balance delta (signed).
    #[serde(rename = "d", deserialize_with = "crate::parse::de::notional")]
    pub delta: Notional,
    /// "T": clear time.
    #[serde(rename = "T")]
    pub clear_time: i64,
}
