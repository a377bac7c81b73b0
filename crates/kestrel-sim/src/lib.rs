//! Binance Spot-compatible exchange simulator (see ARCHITECTURE.md).
