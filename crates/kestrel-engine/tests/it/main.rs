//! kestrel-engine integration tests: events in, actions out, through the public API only.
#![allow(clippy::unwrap_used)]

mod common;
mod oms;
mod pending;
mod pnl;
mod prop;
mod replay;
mod risk;
mod strategies;
mod textlog;
