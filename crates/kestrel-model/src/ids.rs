//! Identifier newtypes. Never pass a bare `String`/`u64` across a crate boundary (STYLE.md 2.2).
//!
//! [`Symbol`] and [`ClientOrderId`] are stored inline (no heap), so they are `Copy` and can sit in
//! hot-path events without allocation.

use std::fmt;
use std::str::FromStr;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The string was empty.
    #[error("identifier is empty")]
    Empty,
    /// The string is longer than the identifier allows (in bytes).
    #[error("identifier longer than {max} bytes")]
    TooLong {
        /// Maximum length in bytes.
        max: usize,
    },
    /// A character outside the identifier's alphabet.
    #[error("invalid character {0:?} in identifier")]
    InvalidChar(char),
}

macro_rules! inline_str {
    ($(#[$meta:meta])* $name:ident, $cap:expr, $valid:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name {
            // Length first so the derived `Ord` is not lexicographic; ids only need a total order.
            len: u8,
            bytes: [u8; $cap],
        }

        impl $name {
            /// Maximum length in bytes.
            pub const MAX_LEN: usize = $cap;

            /// Validates and stores `s`.
            pub fn new(s: &str) -> Result<Self, IdError> {
                if s.is_empty() {
                    return Err(IdError::Empty);
                }
                if s.len() > $cap {
                    return Err(IdError::TooLong { max: $cap });
                }
                let valid: fn(char) -> bool = $valid;
                if let Some(c) = s.chars().find(|c| !valid(*c)) {
                    return Err(IdError::InvalidChar(c));
                }
                let mut bytes = [0u8; $cap];
                bytes[..s.len()].copy_from_slice(s.as_bytes());
                #[allow(clippy::cast_possible_truncation)] // len <= cap < 256
                Ok(Self { len: s.len() as u8, bytes })
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                // Only ever built from a `&str` cut at its own length, so always valid UTF-8.
                std::str::from_utf8(&self.bytes[..usize::from(self.len)])
                    .expect("invariant: built from a valid &str")
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `pad`, not `write_str`, so width and alignment work in tables.
                f.pad(self.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.as_str())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
    };
}

inline_str!(
    /// An exchange symbol such as `BTCUSDT`, kept in the exchange's own spelling (upper case).
    ///
    /// Binance has allowed UTF-8 symbols since 2025-12 (testnet's `这是测试币456`), so any
    /// printable non-space character is accepted, up to 32 bytes. Stream names use the lower-case
    /// form ([`Symbol::to_stream_name`]).
    Symbol,
    32,
    |c| !c.is_whitespace() && !c.is_control() && c != '/' && c != '@'
);

impl Symbol {
    /// The lower-case form used in stream names (`btcusdt@depth`).
    pub fn to_stream_name(&self) -> String {
        self.as_str().to_lowercase()
    }
}

inline_str!(
    /// A client order id, `newClientOrderId` on Binance: `^[.A-Z:/a-z0-9_-]{1,36}$`.
    ///
    /// kestrel derives these from its journal so they are unique and stable across restarts.
    ClientOrderId,
    36,
    |c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '/' | '_' | '-')
);

inline_str!(
    /// An asset code such as `USDT` or `BTC` (balances, commission asset).
    Asset,
    16,
    |c| !c.is_whitespace() && !c.is_control()
);

/// An exchange-assigned order id (`orderId`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct OrderId(pub u64);

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Forward the formatter so width and alignment apply.
        fmt::Display::fmt(&self.0, f)
    }
}

/// An exchange-assigned trade id (`t`/`tradeId`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TradeId(pub u64);

impl fmt::Display for TradeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Forward the formatter so width and alignment apply.
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_accepts_utf8_and_rejects_bad() {
        assert_eq!(Symbol::new("BTCUSDT").unwrap().as_str(), "BTCUSDT");
        assert_eq!(Symbol::new("这是测试币456").unwrap().as_str(), "这是测试币456");
        assert_eq!(Symbol::new(""), Err(IdError::Empty));
        assert_eq!(Symbol::new("BTC USDT"), Err(IdError::InvalidChar(' ')));
        assert_eq!(Symbol::new(&"A".repeat(33)), Err(IdError::TooLong { max: 32 }));
        assert_eq!(Symbol::new("BTCUSDT").unwrap().to_stream_name(), "btcusdt");
    }

    #[test]
    fn display_honours_width() {
        // Used to ignore the formatter's width (operator tables would not line up).
        let s = Symbol::new("BTCUSDT").unwrap();
        assert_eq!(format!("{s:<10}|"), "BTCUSDT   |");
        assert_eq!(format!("{:>6}", Asset::new("BTC").unwrap()), "   BTC");
        assert_eq!(format!("{:>5}", OrderId(42)), "   42");
        assert_eq!(format!("{:<4}|", TradeId(7)), "7   |");
        assert_eq!(s.to_string(), "BTCUSDT");
        assert_eq!(format!("{s:?}"), "Symbol(\"BTCUSDT\")");
    }

    #[test]
    fn client_order_id_follows_binance_pattern() {
        assert!(ClientOrderId::new("kst-1-42:a/b_c.d").is_ok());
        assert_eq!(ClientOrderId::new(&"x".repeat(37)), Err(IdError::TooLong { max: 36 }));
        assert_eq!(ClientOrderId::new("a b"), Err(IdError::InvalidChar(' ')));
        assert_eq!(ClientOrderId::new("é"), Err(IdError::InvalidChar('é')));
    }
}
