//! [`Engine`]: the single owner of trading state; `handle(event) → actions`, synchronously.
//!
//! Per event:
//! - `Book`: store the view, revalue the symbol at the new mid (kill switch check), ask the
//!   strategy, run each new order through risk (cancels skip it), emit actions.
//! - `Trade`: ask the strategy (`on_trade`).
//! - `Order` / `OrderRejected` / `OrderUnknown`: advance the order state machine
//!   ([`crate::oms`]), book fills into the position, revalue (kill switch check), emit
//!   `Query` for orders whose outcome became unknown.
//! - `Balance`: remember it.
//! - `Timer`: ack timeouts (`PendingNew`/`PendingCancel` → `Unknown` + `Query`, re-query
//!   `Unknown`), then the strategies' `on_timer` (stale-book cancels).
//! - `Command`: `Halt`, `Resume` (also clears a tripped kill switch, measuring drawdown afresh
//!   from the current PnL), `CancelAll`.
//!
//! Time is the largest event time seen (`ts_local` of book/trade/order events, the timer's
//! time): no wall clock, so replaying an event log reproduces the action log exactly.
//! Per-symbol state lives in a `Vec` indexed by a symbol index from a map built at start-up;
//! the intent buffer is reused, so a book event allocates nothing.

use std::time::Duration;

use rustc_hash::FxHashMap;

use kestrel_model::{
    Action, Balance, BookTop, Command, Event, InstrumentSpec, Notional, OrderRequest, Price, Qty,
    Symbol, UnixNanos,
};

use crate::client_id::ClientIdGen;
use crate::config::{ConfigError, EngineConfig, RiskLimits, StrategyConfig};
use crate::oms::{AdoptedOrder, Followup, Oms, Order, UpdateResult};
use crate::position::Position;
use crate::risk::{self, Proposed, RejectReason, RiskDecision, RiskInput, TokenBucket};
use crate::snapshot::{EngineSnapshot, OrderView, SymbolSnapshot};
use crate::strategy::{
    ImbalanceTaker, Intent, MarketMaker, MarketView, OrderIntent, Passive, Strategy,
};

/// How many terminal orders are remembered for late reports (bounded memory).
const CLOSED_ORDERS_KEPT: usize = 1_024;

/// Why a start-up call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The symbol is not configured.
    #[error("symbol {0} is not configured")]
    UnknownSymbol(Symbol),
    /// The order to adopt is not open.
    #[error("order {0} is not open (status {1:?})")]
    NotOpen(kestrel_model::ClientOrderId, kestrel_model::OrderStatus),
    /// The order is already tracked.
    #[error("order {0} is already tracked")]
    DuplicateOrder(kestrel_model::ClientOrderId),
}

/// Which strategy hook to run.
#[derive(Clone, Copy)]
enum Hook<'a> {
    Book,
    Timer,
    Trade(&'a kestrel_model::PublicTrade),
}

/// Everything the engine knows about one symbol.
#[derive(Debug)]
struct SymbolState {
    symbol: Symbol,
    /// Exchange filters for rounding and checks.
    spec: InstrumentSpec,
    /// Configured limit.
    max_position: Qty,
    /// Configured limit.
    max_open_orders: u32,
    /// The symbol's strategy (one per symbol).
    strategy: Box<dyn Strategy>,
    /// Latest book view.
    book: BookTop,
    /// Event time of `book`.
    book_updated: UnixNanos,
    /// Last tradeable mid: marks the position.
    mark: Option<Price>,
    /// Position and PnL.
    position: Position,
    /// Cached realised + unrealised PnL, so the account total updates in O(1).
    pnl: Notional,
    /// Strategy calls that produced at least one intent.
    signals: u64,
    /// Orders approved and emitted.
    orders_placed: u64,
    /// Risk rejections per reason index.
    rejections: [u64; RejectReason::ALL.len()],
    /// `OrderRejected` events.
    exchange_rejections: u64,
}

impl SymbolState {
    /// The price positions are valued at: last tradeable mid, else the entry price.
    fn mark_price(&self) -> Price {
        self.mark.or_else(|| self.position.avg_price()).unwrap_or(Price::ZERO)
    }
}

/// The trading engine. See the module docs.
#[derive(Debug)]
pub struct Engine {
    /// Per-symbol state, in configuration order.
    symbols: Vec<SymbolState>,
    /// Symbol → index into `symbols`, built once.
    index: FxHashMap<Symbol, usize>,
    /// Orders of every symbol.
    oms: Oms,
    /// Client order ids.
    ids: ClientIdGen,
    /// Account-wide limits.
    limits: RiskLimits,
    /// Order-rate limiter.
    bucket: TokenBucket,
    /// Ack timeout in nanoseconds.
    ack_timeout_ns: u64,
    /// Largest event time seen.
    now: UnixNanos,
    /// Operator halt (or kill switch).
    halted: bool,
    /// Drawdown kill switch tripped.
    kill_switch: bool,
    /// Σ symbol PnL.
    pnl_total: Notional,
    /// Drawdown is measured from here.
    pnl_baseline: Notional,
    /// Latest balance per asset.
    balances: Vec<Balance>,
    /// Reused buffer for strategy intents.
    intents: Vec<Intent>,
    /// Updates for client ids we don't track.
    foreign_updates: u64,
    /// Events for symbols not configured.
    unknown_symbol_events: u64,
}

impl Engine {
    /// Builds an engine from its validated config, the instrument specs of (at least) every
    /// configured symbol, and the client id generator continued from the journal.
    pub fn new(
        config: EngineConfig,
        instruments: &[InstrumentSpec],
        ids: ClientIdGen,
    ) -> Result<Engine, ConfigError> {
        config.validate(instruments)?;
        let mut symbols = Vec::with_capacity(config.symbols.len());
        let mut index = FxHashMap::default();
        index.reserve(config.symbols.len());
        for (i, sc) in config.symbols.iter().enumerate() {
            let spec = instruments
                .iter()
                .find(|s| s.symbol == sc.symbol)
                .ok_or(ConfigError::MissingInstrument(sc.symbol))?
                .clone();
            let strategy: Box<dyn Strategy> = match &sc.strategy {
                StrategyConfig::ImbalanceTaker(p) => Box::new(ImbalanceTaker::new(*p)),
                StrategyConfig::MarketMaker(p) => Box::new(MarketMaker::new(*p)),
                StrategyConfig::Passive => Box::new(Passive),
            };
            index.insert(sc.symbol, i);
            symbols.push(SymbolState {
                symbol: sc.symbol,
                spec,
                max_position: sc.max_position,
                max_open_orders: sc.max_open_orders,
                strategy,
                book: BookTop::empty(sc.symbol),
                book_updated: UnixNanos::ZERO,
                mark: None,
                position: Position::flat(),
                pnl: Notional::ZERO,
                signals: 0,
                orders_placed: 0,
                rejections: [0; RejectReason::ALL.len()],
                exchange_rejections: 0,
            });
        }
        let n = symbols.len();
        Ok(Engine {
            symbols,
            index,
            oms: Oms::new(n, CLOSED_ORDERS_KEPT),
            ids,
            bucket: TokenBucket::new(config.risk.orders_per_sec, config.risk.order_burst),
            limits: config.risk,
            ack_timeout_ns: duration_ns(config.order_ack_timeout),
            now: UnixNanos::ZERO,
            halted: false,
            kill_switch: false,
            pnl_total: Notional::ZERO,
            pnl_baseline: Notional::ZERO,
            balances: Vec::new(),
            intents: Vec::with_capacity(8),
            foreign_updates: 0,
            unknown_symbol_events: 0,
        })
    }

    /// Replaces a symbol's strategy (for strategies other than the built-in ones).
    pub fn set_strategy(
        &mut self,
        symbol: Symbol,
        strategy: Box<dyn Strategy>,
    ) -> Result<(), EngineError> {
        let i = self.idx(symbol).ok_or(EngineError::UnknownSymbol(symbol))?;
        self.symbols[i].strategy = strategy;
        Ok(())
    }

    /// Start-up: tracks an order found open at reconciliation as if the engine had placed it.
    /// If its id carries our prefix, later ids continue after it.
    pub fn adopt_order(&mut self, order: &AdoptedOrder) -> Result<(), EngineError> {
        let i = self.idx(order.symbol).ok_or(EngineError::UnknownSymbol(order.symbol))?;
        if !matches!(
            order.status,
            kestrel_model::OrderStatus::New | kestrel_model::OrderStatus::PartiallyFilled
        ) {
            return Err(EngineError::NotOpen(order.client_id, order.status));
        }
        if self.oms.live(i).iter().any(|o| o.client_id == order.client_id) {
            return Err(EngineError::DuplicateOrder(order.client_id));
        }
        if let Some(seq) = self.ids.parse_seq(&order.client_id) {
            self.ids.ensure_after(seq);
        }
        self.oms.insert(i, Oms::adopt(order, self.now));
        Ok(())
    }

    /// Start-up: sets a symbol's position (from reconciliation) as `qty` at `avg_price`.
    pub fn set_position(
        &mut self,
        symbol: Symbol,
        qty: Qty,
        avg_price: Price,
    ) -> Result<(), EngineError> {
        let i = self.idx(symbol).ok_or(EngineError::UnknownSymbol(symbol))?;
        self.symbols[i].position = Position::opened_at(qty, avg_price);
        // PnL only; the kill switch is checked on the next event, where its CancelAll
        // actions have somewhere to go.
        self.update_pnl(i);
        Ok(())
    }

    /// Start-up (or any time): records a balance.
    pub fn set_balance(&mut self, balance: Balance) {
        match self.balances.iter_mut().find(|b| b.asset == balance.asset) {
            Some(b) => *b = balance,
            None => self.balances.push(balance),
        }
    }

    /// The client id generator (its `next_seq` is what the journal persists).
    pub fn client_ids(&self) -> &ClientIdGen {
        &self.ids
    }

    /// Handles one event, appending the resulting actions to `out` (the caller clears and
    /// reuses it).
    pub fn handle(&mut self, ev: &Event, out: &mut Vec<Action>) {
        match ev {
            Event::Book(top) => self.on_book(top, out),
            Event::Trade(t) => {
                self.advance(t.ts_local);
                match self.idx(t.symbol) {
                    Some(i) => self.run_strategy(i, Hook::Trade(t), out),
                    None => self.unknown_symbol_events += 1,
                }
            }
            Event::Order(upd) => {
                self.advance(upd.ts_local);
                let Some(i) = self.idx(upd.symbol) else {
                    self.unknown_symbol_events += 1;
                    return;
                };
                let s = &mut self.symbols[i];
                match self.oms.on_update(i, upd, &s.spec, &mut s.position, self.now) {
                    UpdateResult::Applied { position_changed: true } => self.revalue(i, out),
                    UpdateResult::Applied { position_changed: false } => {}
                    UpdateResult::UnknownOrder => self.foreign_updates += 1,
                }
            }
            Event::OrderRejected { symbol, client_id, code, ts_local } => {
                self.advance(*ts_local);
                let Some(i) = self.idx(*symbol) else {
                    self.unknown_symbol_events += 1;
                    return;
                };
                self.symbols[i].exchange_rejections += 1;
                match self.oms.on_rejected(i, client_id, *code, self.now) {
                    Some(Followup::Query) => {
                        out.push(Action::Query { symbol: *symbol, client_id: *client_id })
                    }
                    Some(Followup::None) => {}
                    None => self.foreign_updates += 1,
                }
            }
            Event::OrderUnknown { symbol, client_id, ts_local } => {
                self.advance(*ts_local);
                let Some(i) = self.idx(*symbol) else {
                    self.unknown_symbol_events += 1;
                    return;
                };
                match self.oms.on_unknown(i, client_id, self.now) {
                    Some(Followup::Query) => {
                        out.push(Action::Query { symbol: *symbol, client_id: *client_id })
                    }
                    Some(Followup::None) => {}
                    None => self.foreign_updates += 1,
                }
            }
            Event::Balance(b) => self.set_balance(*b),
            Event::Timer(t) => {
                self.advance(*t);
                for i in 0..self.symbols.len() {
                    let symbol = self.symbols[i].symbol;
                    self.oms.on_timer(i, self.now, self.ack_timeout_ns, |client_id| {
                        out.push(Action::Query { symbol, client_id })
                    });
                    self.run_strategy(i, Hook::Timer, out);
                }
            }
            Event::Command(c) => self.on_command(*c, out),
        }
    }

    /// A plain copy of the state for publication.
    pub fn snapshot(&self) -> EngineSnapshot {
        let symbols: Vec<SymbolSnapshot> = self
            .symbols
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mark = s.mark_price();
                SymbolSnapshot {
                    symbol: s.symbol,
                    book_state: s.book.state,
                    book_source: s.book.source,
                    mid: s.book.mid(),
                    spread: s.book.spread(),
                    position: s.position.qty(),
                    avg_price: s.position.avg_price(),
                    realised_pnl: s.position.realised(),
                    unrealised_pnl: s.position.unrealised(mark),
                    other_fees: s.position.other_fees().to_vec(),
                    exposure: risk::symbol_exposure(s.position.qty(), mark, self.oms.live(i), None),
                    open_orders: self.oms.live(i).iter().map(order_view).collect(),
                    strategy: s.strategy.name(),
                    signals: s.signals,
                    orders_placed: s.orders_placed,
                    risk_rejections: s.rejections,
                    exchange_rejections: s.exchange_rejections,
                }
            })
            .collect();
        EngineSnapshot {
            ts: self.now,
            halted: self.halted || self.kill_switch,
            kill_switch: self.kill_switch,
            pnl: self.pnl_total,
            pnl_baseline: self.pnl_baseline,
            exposure: symbols.iter().fold(Notional::ZERO, |a, s| a.saturating_add(s.exposure)),
            funds: self.limits.funds,
            next_client_seq: self.ids.next_seq(),
            symbols,
            balances: self.balances.clone(),
            foreign_order_updates: self.foreign_updates,
            unknown_symbol_events: self.unknown_symbol_events,
        }
    }

    fn idx(&self, symbol: Symbol) -> Option<usize> {
        // A linear scan beats hashing a 33-byte key for the usual handful of symbols.
        if self.symbols.len() <= 8 {
            return self.symbols.iter().position(|s| s.symbol == symbol);
        }
        self.index.get(&symbol).copied()
    }

    fn advance(&mut self, t: UnixNanos) {
        if t > self.now {
            self.now = t;
        }
    }

    fn on_book(&mut self, top: &BookTop, out: &mut Vec<Action>) {
        self.advance(top.ts_local);
        let Some(i) = self.idx(top.symbol) else {
            self.unknown_symbol_events += 1;
            return;
        };
        let s = &mut self.symbols[i];
        s.book = *top;
        s.book_updated = self.now;
        if top.is_tradeable() {
            s.mark = top.mid();
        }
        self.revalue(i, out);
        self.run_strategy(i, Hook::Book, out);
    }

    fn on_command(&mut self, c: Command, out: &mut Vec<Action>) {
        match c {
            Command::Halt => self.halted = true,
            Command::Resume => {
                self.halted = false;
                if self.kill_switch {
                    // The operator accepted the loss: measure the next drawdown from here.
                    self.kill_switch = false;
                    self.pnl_baseline = self.pnl_total;
                }
            }
            Command::CancelAll { symbol } => {
                for i in 0..self.symbols.len() {
                    if symbol.is_none_or(|s| s == self.symbols[i].symbol) {
                        self.cancel_all(i, out);
                    }
                }
                if let Some(s) = symbol {
                    if self.idx(s).is_none() {
                        self.unknown_symbol_events += 1;
                    }
                }
            }
        }
    }

    fn cancel_all(&mut self, i: usize, out: &mut Vec<Action>) {
        out.push(Action::CancelAll { symbol: self.symbols[i].symbol });
        self.oms.mark_cancel_all(i, self.now);
    }

    /// Recomputes symbol `i`'s PnL and the account total.
    fn update_pnl(&mut self, i: usize) {
        let s = &mut self.symbols[i];
        let pnl = s.position.realised().saturating_add(s.position.unrealised(s.mark_price()));
        self.pnl_total = self.pnl_total.saturating_sub(s.pnl).saturating_add(pnl);
        s.pnl = pnl;
    }

    /// Recomputes symbol `i`'s PnL, and trips the kill switch if the drawdown is too deep.
    fn revalue(&mut self, i: usize, out: &mut Vec<Action>) {
        self.update_pnl(i);
        let drawdown = self.pnl_total.saturating_sub(self.pnl_baseline);
        if !self.kill_switch && drawdown < self.limits.max_drawdown.neg() {
            self.kill_switch = true;
            for j in 0..self.symbols.len() {
                self.cancel_all(j, out);
            }
        }
    }

    fn run_strategy(&mut self, i: usize, hook: Hook<'_>, out: &mut Vec<Action>) {
        let mut intents = std::mem::take(&mut self.intents);
        intents.clear();
        {
            let s = &mut self.symbols[i];
            let view = MarketView {
                symbol: s.symbol,
                now: self.now,
                book: &s.book,
                book_updated: s.book_updated,
                position: s.position.qty(),
                max_position: s.max_position,
                open_orders: self.oms.live(i),
                spec: &s.spec,
            };
            match hook {
                Hook::Book => s.strategy.on_book(&view, &mut intents),
                Hook::Timer => s.strategy.on_timer(&view, &mut intents),
                Hook::Trade(t) => s.strategy.on_trade(t, &view, &mut intents),
            }
            if !intents.is_empty() {
                s.signals += 1;
            }
        }
        for intent in intents.iter() {
            match *intent {
                Intent::Place(p) => self.place(i, p, out),
                Intent::Cancel(id) => {
                    if self.oms.mark_cancel(i, &id, self.now) {
                        out.push(Action::Cancel { symbol: self.symbols[i].symbol, client_id: id });
                    }
                }
                Intent::CancelAll => self.cancel_all(i, out),
            }
        }
        self.intents = intents;
    }

    fn place(&mut self, i: usize, intent: OrderIntent, out: &mut Vec<Action>) {
        // One pass over every symbol: the exposure of the others and the global count of
        // orders awaiting the exchange's answer (derived from the order states, never kept as a
        // counter, so it cannot drift from them).
        let mut elsewhere = Notional::ZERO;
        let mut pending = 0usize;
        for (j, o) in self.symbols.iter().enumerate() {
            let live = self.oms.live(j);
            pending += risk::pending_new(live);
            if j != i {
                let e = risk::symbol_exposure(o.position.qty(), o.mark_price(), live, None);
                elsewhere = elsewhere.saturating_add(e);
            }
        }
        let s = &mut self.symbols[i];
        let input = RiskInput {
            book: &s.book,
            spec: &s.spec,
            open_orders: self.oms.live(i),
            position: s.position.qty(),
            max_position: s.max_position,
            max_open_orders: s.max_open_orders,
            pending_orders: pending,
            exposure_elsewhere: elsewhere,
            halted: self.halted,
            kill_switch: self.kill_switch,
            now: self.now,
        };
        let mut p = Proposed {
            side: intent.side,
            kind: intent.kind,
            time_in_force: intent.time_in_force,
            price: intent.price,
            qty: intent.qty,
            exposure_price: Price::ZERO,
        };
        if let RiskDecision::Reject(r) = risk::check(&self.limits, &mut self.bucket, &input, &mut p)
        {
            s.rejections[r.index()] += 1;
            return;
        }
        let Ok(client_id) = self.ids.next_id() else {
            s.rejections[RejectReason::IdsExhausted.index()] += 1;
            return;
        };
        s.orders_placed += 1;
        let order = Order::pending(
            client_id,
            p.side,
            p.kind,
            p.time_in_force,
            p.price,
            p.exposure_price,
            p.qty,
            self.now,
        );
        self.oms.insert(i, order);
        out.push(Action::Place(OrderRequest {
            symbol: s.symbol,
            client_id,
            side: p.side,
            kind: p.kind,
            time_in_force: p.time_in_force,
            price: p.price,
            qty: p.qty,
            ts_decided: self.now,
        }));
    }
}

fn order_view(o: &Order) -> OrderView {
    OrderView {
        client_id: o.client_id,
        order_id: o.order_id,
        side: o.side,
        kind: o.kind,
        price: o.price,
        exposure_price: o.exposure_price,
        orig_qty: o.orig_qty,
        cum_qty: o.cum_qty,
        status: o.status,
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
