//! Binance Spot protocol client.
//!
//! Owns: wire types (serde, 1:1 with the docs), parsing wire → `kestrel-model`, request signing
//! (HMAC-SHA256, Ed25519), the REST client with its rate limiter, the WebSocket API session
//! (order entry and user data), market-data WebSocket connections with the exact depth-sync
//! procedure, heartbeat, reconnect and REST fallback.
//!
//! Must not know: strategies, risk, the journal, metrics registries, any hard-coded URL (every
//! endpoint comes from [`endpoints::Endpoints`]).
#![warn(missing_docs)]

pub mod decode;
pub mod depth_sync;
pub mod endpoints;
pub mod error;
pub mod fallback;
pub mod gateway;
pub mod market_data;
pub mod observer;
pub mod parse;
pub mod rate_limit;
pub mod rest;
pub mod sign;
pub mod time_sync;
pub mod user_stream;
pub mod wire;
pub mod ws_api;
