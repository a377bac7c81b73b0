//! Serde wire types, 1:1 with Binance's documented payloads. The only `Serialize`/`Deserialize`
//! types on the protocol path (STYLE.md 2.1).

pub mod market;
pub mod rest;
pub mod user;
pub mod ws_api;
