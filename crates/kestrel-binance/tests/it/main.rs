//! kestrel-binance integration tests: one test binary (STYLE.md 2.6), modules per area.
//! Tests run against the in-process `kestrel-sim` on 127.0.0.1:0 or against the doc vectors in
//! `testdata/binance/`; none touches the internet.
//!
//! Module owners: brest (REST, signing, golden, WS API, user stream, rate limit);
//! bmd adds the market-data modules below (e.g. `mod market_data;`).
#![allow(clippy::unwrap_used)]

mod golden;
mod signing;
