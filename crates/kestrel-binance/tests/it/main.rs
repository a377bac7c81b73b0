//! kestrel-binance integration tests: one test binary (STYLE.md 2.6), modules per area.
//! Tests run against the in-process `kestrel-sim` on 127.0.0.1:0 or against the doc vectors in
//! `testdata/binance/`; none touches the internet.
//!
//! Module owners: brest (REST, signing, golden, WS API, user stream, rate limit);
//! bmd (market data: depth_sync, fallback, market_data, md_support) — bmd, add further
//! market-data modules in the second block.
#![allow(clippy::unwrap_used)]

// brest
mod golden;
mod rate_limit;
mod rest;
mod signing;
mod user_stream;
mod ws_api;

// bmd
mod depth_sync;
mod fallback;
mod market_data;
mod md_sim;
mod md_support;
