//! WebSocket API envelopes (web-socket-api.md "Request format", "Response format", "Event
//! format"). Every text frame on the connection is either a response to one of our requests
//! (`id`, `status`, `result` or `error`, `rateLimits`) or a pushed event (`subscriptionId`,
//! `event`), so one [`Frame`] struct reads both in a single pass; the `result`/`event` payload
//! stays raw JSON for the caller's typed decode.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::parse::Text;
use crate::wire::rest::RateLimit;

/// A request: `{"id":..,"method":..,"params":{..}}`.
#[derive(Debug, Serialize)]
pub struct Request<'a> {
    /// "id": echoed in the response; kestrel uses increasing integers.
    pub id: u64,
    /// "method": e.g. `order.place`, `userDataStream.subscribe.signature`.
    pub method: &'a str,
    /// "params": request parameters (omitted when empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

/// `error.data` of some errors (e.g. the 418 ban).
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorData {
    /// "serverTime": server time of the error (ms).
    #[serde(rename = "serverTime", default)]
    pub server_time: Option<i64>,
    /// "retryAfter": epoch ms before which nothing may be sent (429/418).
    #[serde(rename = "retryAfter", default)]
    pub retry_after: Option<i64>,
}

/// `error` of a failed request.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiError<'a> {
    /// "code": Binance error code.
    pub code: i32,
    /// "msg": message.
    #[serde(borrow)]
    pub msg: Text<'a>,
    /// "data": extra details, when present.
    #[serde(default)]
    pub data: Option<ErrorData>,
}

/// The id of a response: kestrel sends integers, but Binance echoes whatever was sent and uses
/// `null` for errors not tied to a request.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Id<'a> {
    /// An integer id.
    Num(u64),
    /// A string id (the docs' examples use UUIDs).
    Str(#[serde(borrow)] Text<'a>),
}

/// Any frame from the WebSocket API.
#[derive(Debug, Deserialize)]
pub struct Frame<'a> {
    /// "id": the request this answers; `null`/absent for events and unsolicited errors.
    #[serde(default, borrow)]
    pub id: Option<Id<'a>>,
    /// "status": HTTP-like status of the response (200, 400, 429, 418, ...).
    #[serde(default)]
    pub status: Option<u16>,
    /// "result": the payload of a successful response.
    #[serde(default, borrow)]
    pub result: Option<&'a RawValue>,
    /// "error": the error of a failed response.
    #[serde(default, borrow)]
    pub error: Option<ApiError<'a>>,
    /// "rateLimits": usage after this request (when `returnRateLimits` is on, the default).
    #[serde(rename = "rateLimits", default, borrow)]
    pub rate_limits: Option<Vec<RateLimit<'a>>>,
    /// "subscriptionId": which user-data subscription an event belongs to.
    #[serde(rename = "subscriptionId", default)]
    pub subscription_id: Option<u64>,
    /// "event": a pushed event (user data, `serverShutdown`).
    #[serde(default, borrow)]
    pub event: Option<&'a RawValue>,
}

/// `result` of `userDataStream.subscribe` / `.subscribe.signature`.
#[derive(Debug, Clone, Deserialize)]
pub struct SubscribeResult {
    /// "subscriptionId": tags the events of this subscription.
    #[serde(rename = "subscriptionId")]
    pub subscription_id: u64,
}

/// `result` of `session.logon`.
#[derive(Debug, Clone, Deserialize)]
pub struct LogonResult<'a> {
    /// "apiKey": the key the session is now authenticated with.
    #[serde(rename = "apiKey", borrow)]
    pub api_key: Text<'a>,
    /// "authorizedSince": when the logon took effect (ms).
    #[serde(rename = "authorizedSince")]
    pub authorized_since: Option<i64>,
    /// "connectedSince": when the connection was opened (ms).
    #[serde(rename = "connectedSince")]
    pub connected_since: i64,
    /// "serverTime": server time (ms).
    #[serde(rename = "serverTime")]
    pub server_time: i64,
}
