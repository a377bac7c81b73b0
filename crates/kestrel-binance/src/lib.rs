//! Binance Spot protocol client (see ARCHITECTURE.md).
