//! Trading engine: strategies, risk, order management (see ARCHITECTURE.md).
