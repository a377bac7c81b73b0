//! [`SimError`] (start-up failures) and [`ApiError`], a Binance `{"code","msg"}` error with its
//! HTTP status (errors.md, SPEC.md §8).

use std::borrow::Cow;
use std::path::PathBuf;

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The config file could not be read.
    #[error("reading sim config {path}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML for [`crate::SimConfig`].
    #[error("parsing sim config")]
    ParseConfig(#[source] toml::de::Error),
    /// A value in the config is out of range or malformed.
    #[error("invalid sim config: {0}")]
    InvalidConfig(String),
    /// The listen address could not be bound.
    #[error("binding {addr}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A Binance API error: HTTP status, error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status (400 for request errors, 401 for key errors, 429/418 for limits, 5xx).
    pub http: u16,
    /// Binance error code (negative).
    pub code: i64,
    /// Message, worded as Binance words it.
    pub msg: Cow<'static, str>,
    /// Seconds for a `Retry-After` header (429/418).
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    /// A 400 error.
    pub fn bad(code: i64, msg: impl Into<Cow<'static, str>>) -> Self {
        Self { http: 400, code, msg: msg.into(), retry_after_s: None }
    }

    /// -1000 UNKNOWN.
    pub fn unknown(msg: impl Into<Cow<'static, str>>) -> Self {
        Self { http: 500, code: -1000, msg: msg.into(), retry_after_s: None }
    }

    /// -1013 `Filter failure: <TYPE>`.
    pub fn filter(name: &str) -> Self {
        Self::bad(-1013, format!("Filter failure: {name}"))
    }

    /// -1021 timestamp ahead of the server.
    pub fn ts_ahead() -> Self {
        Self::bad(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    }

    /// -1021 timestamp outside recvWindow.
    pub fn ts_outside() -> Self {
        Self::bad(-1021, "Timestamp for this request is outside of the recvWindow.")
    }

    /// -1022 bad signature.
    pub fn bad_signature() -> Self {
        Self::bad(-1022, "Signature for this request is not valid.")
    }

    /// -1100 illegal characters.
    pub fn illegal(param: &str) -> Self {
        Self::bad(
            -1100,
            format!(
                "Illegal characters found in parameter '{param}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."
            ),
        )
    }

    /// -1102 mandatory parameter missing.
    pub fn missing(param: &str) -> Self {
        Self::bad(
            -1102,
            format!("Mandatory parameter '{param}' was not sent, was empty/null, or malformed."),
        )
    }

    /// -1121 invalid symbol.
    pub fn invalid_symbol() -> Self {
        Self::bad(-1121, "Invalid symbol.")
    }

    /// -2010 insufficient balance.
    pub fn insufficient_balance() -> Self {
        Self::bad(-2010, "Account has insufficient balance for requested action.")
    }

    /// -2011 unknown order on cancel.
    pub fn cancel_unknown() -> Self {
        Self::bad(-2011, "Unknown order sent.")
    }

    /// -2013 order does not exist.
    pub fn no_such_order() -> Self {
        Self::bad(-2013, "Order does not exist.")
    }

    /// -2014 API-key format invalid (missing key).
    pub fn key_format() -> Self {
        Self { http: 401, code: -2014, msg: "API-key format invalid.".into(), retry_after_s: None }
    }

    /// -2015 unknown key.
    pub fn invalid_key() -> Self {
        Self {
            http: 401,
            code: -2015,
            msg: "Invalid API-key, IP, or permissions for action.".into(),
            retry_after_s: None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {} code {}: {}", self.http, self.code, self.msg)
    }
}

impl std::error::Error for ApiError {}
