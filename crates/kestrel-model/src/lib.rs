//! Pure trading domain for kestrel.
//!
//! Owns: fixed-point numbers ([`Price`], [`Qty`], [`Notional`]), identifiers, time and the
//! [`Clock`] seam, instrument specs with Binance's exchange filters, the aggregated
//! [`OrderBook`], order vocabulary, and the engine's closed [`Event`]/[`Action`] enums.
//!
//! Must not know: JSON, HTTP, WebSocket, tokio, the wall clock (except [`SystemClock`], which only
//! the binary uses), metrics. Everything here is deterministic and can't do I/O.
#![warn(missing_docs)]

pub mod book;
pub mod event;
pub mod ids;
pub mod instrument;
pub mod num;
pub mod order;
pub mod time;

pub use book::{BookError, BookSide, BookSource, BookState, BookTop, Level, OrderBook, TOP_LEVELS};
pub use event::{Action, Balance, Command, Event, PublicTrade};
pub use ids::{Asset, ClientOrderId, IdError, OrderId, Symbol, TradeId};
pub use instrument::{FilterViolation, InstrumentSpec, OrderCheck};
pub use num::{Notional, ParseNumError, Price, Qty};
pub use order::{Fill, OrderRequest, OrderStatus, OrderType, OrderUpdate, Side, TimeInForce};
pub use time::{Clock, ManualClock, SystemClock, UnixNanos};
