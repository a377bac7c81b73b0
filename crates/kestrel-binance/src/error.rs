//! [`BinanceError`]: every way a Binance request can fail, with the classification callers act on.
//!
//! The classification follows SPEC.md §4, §7 and §8:
//! - *rate limited* (HTTP 429, or 418 = IP ban): wait `Retry-After`; during a ban send nothing.
//! - *unknown outcome*: a timeout, a 5xx, `-1007` ("Timeout waiting for response from backend
//!   server. Send status unknown; execution status unknown."), or a connection lost after the
//!   request left. For an order placement this means the order may or may not exist: it is
//!   `Unknown` and must be resolved by querying its client order id, never re-sent blindly
//!   (scenario S01).
//! - *retryable*: the same request may be sent again after a pause. For a state-changing request
//!   check [`BinanceError::is_unknown_outcome`] first: retrying an unknown placement duplicates it.

use std::time::Duration;

/// Binance's "timeout waiting for response from backend server": outcome unknown.
pub const CODE_TIMEOUT: i32 = -1007;
/// Too many requests / IP banned.
pub const CODE_TOO_MANY_REQUESTS: i32 = -1003;
/// `timestamp` outside `recvWindow` or more than 1 s ahead of the server.
pub const CODE_TIMESTAMP_OUTSIDE_RECV_WINDOW: i32 = -1021;
/// The request was rejected before the matching engine, e.g. `Filter failure: LOT_SIZE`.
pub const CODE_FILTER_FAILURE: i32 = -1013;
/// `NEW_ORDER_REJECTED` (insufficient balance, duplicate order, ...).
pub const CODE_NEW_ORDER_REJECTED: i32 = -2010;
/// `CANCEL_REJECTED` (e.g. "Unknown order sent.").
pub const CODE_CANCEL_REJECTED: i32 = -2011;
/// "Order does not exist." (query of an unknown order).
pub const CODE_NO_SUCH_ORDER: i32 = -2013;

/// A failed Binance request.
#[derive(Debug, thiserror::Error)]
pub enum BinanceError {
    /// The exchange answered with an error body `{"code":..,"msg":..}` (REST) or
    /// `"error":{..}` (WebSocket API).
    #[error("binance api error {code} (http {http_status}): {msg}")]
    Api {
        /// HTTP status (REST) or the WebSocket API's `status` field.
        http_status: u16,
        /// Binance error code (negative, `errors.md`).
        code: i32,
        /// The exchange's message, e.g. `Filter failure: LOT_SIZE`.
        msg: String,
    },
    /// 429 (too many requests) or 418 (IP banned): nothing may be sent before `retry_after`.
    #[error("rate limited for {retry_after:?} (banned: {banned})")]
    RateLimited {
        /// How long to wait, from `Retry-After` or the WebSocket API's `retryAfter`.
        retry_after: Duration,
        /// True for a 418 IP ban: every request stops until it ends.
        banned: bool,
    },
    /// An HTTP-level failure (connect, TLS, reading the body).
    #[error("http transport error")]
    Transport(#[source] reqwest::Error),
    /// No response within the configured request timeout.
    #[error("request timed out")]
    Timeout,
    /// A response body that does not match the documented shape.
    #[error("cannot decode {context}")]
    Decode {
        /// What was being decoded (`"depth snapshot"`, `"order response"`...).
        context: &'static str,
        /// The serde error (with line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A well-formed body whose values do not fit the model (number out of range, bad id...).
    #[error("invalid value in {context}: {detail}")]
    Invalid {
        /// What was being converted.
        context: &'static str,
        /// What was wrong, e.g. `price: number out of range`.
        detail: String,
    },
    /// A non-2xx HTTP response without a Binance error body (e.g. an HTML 502 from a proxy).
    #[error("http status {status}")]
    Http {
        /// HTTP status code.
        status: u16,
        /// Start of the body, for the log.
        body: String,
    },
    /// A WebSocket failure (connect, protocol, I/O).
    #[error("websocket error")]
    WebSocket(#[source] Box<tokio_tungstenite::tungstenite::Error>),
    /// The WebSocket API connection closed while a request was in flight: it may have been
    /// executed.
    #[error("websocket api connection lost with the request in flight")]
    Disconnected,
    /// The WebSocket API session had no connection: the request was never sent (safe to retry).
    #[error("websocket api not connected; request not sent")]
    NotConnected,
    /// A signed request without credentials, or a key that cannot sign.
    #[error("signing failed")]
    Sign(#[from] crate::sign::SignError),
    /// A request kestrel refuses to send (e.g. a LIMIT order without a price).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// The HTTP client could not be built (TLS backend, bad config).
    #[error("cannot build http client")]
    Client(#[source] reqwest::Error),
}

impl BinanceError {
    /// The Binance error code, if the exchange sent one.
    pub fn code(&self) -> Option<i32> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// HTTP 429 or 418 (or their `-1003` body): the caller must wait before sending again.
    pub fn is_rate_limited(&self) -> bool {
        match self {
            Self::RateLimited { .. } => true,
            Self::Api { http_status, code, .. } => {
                matches!(http_status, 429 | 418) || *code == CODE_TOO_MANY_REQUESTS
            }
            _ => false,
        }
    }

    /// The request may have been executed: timeout, 5xx, `-1007`, or a connection lost after
    /// sending. For an order placement the order is `Unknown` and must be queried by client
    /// order id (scenario S01); it must never be re-sent.
    pub fn is_unknown_outcome(&self) -> bool {
        match self {
            Self::Timeout | Self::Disconnected => true,
            Self::Api { http_status, code, .. } => *http_status >= 500 || *code == CODE_TIMEOUT,
            Self::Http { status, .. } => *status >= 500,
            // A connect error means nothing left this machine; anything later (reset while
            // reading the response, body error) may have reached the exchange.
            Self::Transport(e) => !(e.is_connect() || e.is_builder()),
            Self::WebSocket(_) => true,
            _ => false,
        }
    }

    /// Sending the same request again later may succeed: rate limits (after the wait),
    /// transport trouble, timeouts, 5xx, `-1007`, `-1021` (after re-measuring the clock).
    /// Client errors (bad parameters, filters, balance) are not retryable.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { banned, .. } => !banned,
            Self::Transport(_)
            | Self::Timeout
            | Self::WebSocket(_)
            | Self::Disconnected
            | Self::NotConnected => true,
            Self::Api { http_status, code, .. } => {
                *http_status >= 500
                    || *code == CODE_TIMEOUT
                    || *code == CODE_TIMESTAMP_OUTSIDE_RECV_WINDOW
                    || (*http_status == 429)
            }
            Self::Http { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// `-1021`: our `timestamp` was outside the server's window; re-measure the clock offset.
    pub fn is_clock_skew(&self) -> bool {
        self.code() == Some(CODE_TIMESTAMP_OUTSIDE_RECV_WINDOW)
    }

    pub(crate) fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout
        } else {
            Self::Transport(e)
        }
    }

    pub(crate) fn decode(context: &'static str) -> impl FnOnce(serde_json::Error) -> Self {
        move |source| Self::Decode { context, source }
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for BinanceError {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        Self::WebSocket(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(http_status: u16, code: i32) -> BinanceError {
        BinanceError::Api { http_status, code, msg: String::new() }
    }

    #[test]
    fn classification_table() {
        // (error, retryable, rate_limited, unknown_outcome)
        let cases = [
            // TC0: filter failure is final and known
            (api(400, CODE_FILTER_FAILURE), false, false, false),
            // TC1: -1007 backend timeout: unknown
            (api(408, CODE_TIMEOUT), true, false, true),
            // TC2: 5xx: unknown
            (api(503, -1000), true, false, true),
            // TC3: 429 with a body
            (api(429, CODE_TOO_MANY_REQUESTS), true, true, false),
            // TC4: local timeout
            (BinanceError::Timeout, true, false, true),
            // TC5: ban
            (
                BinanceError::RateLimited { retry_after: Duration::from_secs(120), banned: true },
                false,
                true,
                false,
            ),
            // TC6: -1021 retry after resync
            (api(400, CODE_TIMESTAMP_OUTSIDE_RECV_WINDOW), true, false, false),
            // TC7: html 502 from a proxy
            (BinanceError::Http { status: 502, body: String::new() }, true, false, true),
            // TC8: insufficient balance
            (api(400, CODE_NEW_ORDER_REJECTED), false, false, false),
        ];
        for (i, (e, retry, rl, unknown)) in cases.iter().enumerate() {
            assert_eq!(e.is_retryable(), *retry, "TC{i} retryable");
            assert_eq!(e.is_rate_limited(), *rl, "TC{i} rate limited");
            assert_eq!(e.is_unknown_outcome(), *unknown, "TC{i} unknown");
        }
        assert_eq!(api(400, -1013).code(), Some(-1013));
        assert_eq!(BinanceError::Timeout.code(), None);
    }
}
