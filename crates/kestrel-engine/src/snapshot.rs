//! [`EngineSnapshot`]: a plain, `Clone` picture of the engine's state that the binary publishes
//! on a watch channel for the admin API, the status line and metrics.

use kestrel_model::{
    Asset, Balance, BookSource, BookState, ClientOrderId, Notional, OrderId, OrderStatus,
    OrderType, Price, Qty, Side, Symbol, UnixNanos,
};

use crate::risk::RejectReason;

/// The whole engine at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSnapshot {
    /// Event time of the latest event handled.
    pub ts: UnixNanos,
    /// Orders are blocked (operator halt or kill switch).
    pub halted: bool,
    /// The drawdown kill switch is tripped (cleared only by an operator `Resume`).
    pub kill_switch: bool,
    /// Realised + unrealised PnL of all symbols, fees in base/quote included (quote units).
    pub pnl: Notional,
    /// PnL level the drawdown is measured from (0, or the PnL at the last `Resume` after a
    /// trip).
    pub pnl_baseline: Notional,
    /// Total worst-case exposure (what the funds cap compares).
    pub exposure: Notional,
    /// The funds cap.
    pub funds: Notional,
    /// Sequence number of the next client order id (for the journal).
    pub next_client_seq: u64,
    /// Per symbol, in configuration order.
    pub symbols: Vec<SymbolSnapshot>,
    /// Latest balance per asset, as last reported.
    pub balances: Vec<Balance>,
    /// Order updates for client ids the engine doesn't know (another bot, manual orders).
    pub foreign_order_updates: u64,
    /// Events for symbols that are not configured.
    pub unknown_symbol_events: u64,
}

impl EngineSnapshot {
    /// Orders of every symbol still `PendingNew`: decided, not yet answered by the exchange
    /// (what risk's `max_pending_orders` limits).
    pub fn pending_orders(&self) -> usize {
        self.symbols
            .iter()
            .flat_map(|s| s.open_orders.iter())
            .filter(|o| o.status == OrderStatus::PendingNew)
            .count()
    }
}

/// One symbol's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolSnapshot {
    /// Symbol.
    pub symbol: Symbol,
    /// `Synced` or `Stale`.
    pub book_state: BookState,
    /// WebSocket or REST fallback.
    pub book_source: BookSource,
    /// Mid of the latest book view.
    pub mid: Option<Price>,
    /// Spread of the latest book view.
    pub spread: Option<Price>,
    /// Net position (base units).
    pub position: Qty,
    /// Average entry price of the position.
    pub avg_price: Option<Price>,
    /// Realised PnL, fees included.
    pub realised_pnl: Notional,
    /// Unrealised PnL at the last tradeable mid.
    pub unrealised_pnl: Notional,
    /// Commission paid in third assets (not in PnL).
    pub other_fees: Vec<(Asset, Notional)>,
    /// Worst-case exposure of this symbol.
    pub exposure: Notional,
    /// Live orders, oldest first.
    pub open_orders: Vec<OrderView>,
    /// Strategy name.
    pub strategy: &'static str,
    /// Signals (strategy decisions) so far.
    pub signals: u64,
    /// Orders placed so far.
    pub orders_placed: u64,
    /// Risk rejections, indexed like [`RejectReason::ALL`].
    pub risk_rejections: [u64; RejectReason::ALL.len()],
    /// Requests the exchange refused (`OrderRejected` events).
    pub exchange_rejections: u64,
}

impl SymbolSnapshot {
    /// `(reason label, count)` for every reason with a non-zero count.
    pub fn rejections(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        RejectReason::ALL
            .iter()
            .zip(self.risk_rejections.iter())
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| (*s, *n))
    }

    /// Count for one reason.
    pub fn rejection_count(&self, reason: RejectReason) -> u64 {
        self.risk_rejections[reason.index()]
    }
}

/// One live order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderView {
    /// Our id.
    pub client_id: ClientOrderId,
    /// Exchange id, once known.
    pub order_id: Option<OrderId>,
    /// Side.
    pub side: Side,
    /// Type.
    pub kind: OrderType,
    /// Limit price.
    pub price: Option<Price>,
    /// Price the funds cap values the unfilled rest at.
    pub exposure_price: Price,
    /// Original quantity.
    pub orig_qty: Qty,
    /// Filled so far.
    pub cum_qty: Qty,
    /// State.
    pub status: OrderStatus,
}
