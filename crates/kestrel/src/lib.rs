//! kestrel: wiring, config, CLI (see ARCHITECTURE.md).
