//! Startup reconciliation: what the journal believes against what the exchange says, as pure
//! logic (no I/O) producing a [`Plan`] of decisions (capability M6, scenarios S02, S09, S15, S18).
//!
//! The exchange is the truth for order states and fills; the journal is the truth for which
//! orders are ours. The procedure, run once at start-up before any strategy trades:
//!
//! 1. The caller loads the journal's open orders (`PendingNew`, `New`, `PartiallyFilled`,
//!    `PendingCancel`, `Unknown`) and fetches the exchange's open orders (`GET openOrders`).
//! 2. [`orders_to_query`] lists the journal-open orders the exchange does not show as open; the
//!    caller queries each by client id (`GET /api/v3/order?origClientOrderId=`), plus fetches
//!    `myTrades` per symbol and balances.
//! 3. [`reconcile`] decides, per order:
//!    - journal open, exchange open → [`Decision::Adopt`] (keep managing it; never re-place);
//!    - journal open, exchange closed (query answer) → [`Decision::Close`] with the final state;
//!    - journal open, exchange "no such order" → [`Decision::NotOnExchange`], unless the intent
//!      is younger than `recvWindow` (the request could still arrive) → [`Decision::Requery`];
//!    - journal open, no answer → [`Decision::Requery`] (stays `Unknown`; never assumed failed);
//!    - exchange open with OUR prefix but not journaled → [`Decision::JournalUnknown`] then
//!      [`Decision::Adopt`] or [`Decision::Cancel`] per `reconcile.unknown_orders`;
//!    - any order without our prefix → untouched, only counted (S09: shared accounts);
//!    - a trade of one of our orders missing from the journal → [`Decision::RecordFill`].
//! 4. Positions are rebuilt from journal fills plus the recorded missing fills.
//! 5. [`apply_to_journal`] writes the journal side of the plan (one transaction per decision);
//!    the caller sends the cancels and hands the adopted orders to the engine.
//!
//! Applying a plan and reconciling again yields no new journal work: reconciliation is
//! idempotent, so a crash during it is harmless.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use kestrel_model::{
    Asset, Balance, ClientOrderId, Fill, Notional, OrderId, OrderStatus, OrderType, OrderUpdate,
    Price, Qty, Side, Symbol, TimeInForce, UnixNanos,
};

use crate::config::UnknownOrderPolicy;
use crate::journal::{
    positions_from_fills, ClientIdPrefix, FillRecord, Journal, JournalError, JournalOrder, Position,
};

/// An order as the exchange reports it (`openOrders` entry or order query answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeOrder {
    /// Symbol.
    pub symbol: Symbol,
    /// Client id (`clientOrderId`).
    pub client_id: ClientOrderId,
    /// Exchange order id.
    pub order_id: OrderId,
    /// Side.
    pub side: Side,
    /// Type.
    pub kind: OrderType,
    /// Time in force, for limit orders.
    pub time_in_force: Option<TimeInForce>,
    /// Limit price (`None` for market orders).
    pub price: Option<Price>,
    /// Original quantity.
    pub orig_qty: Qty,
    /// Executed quantity.
    pub cum_qty: Qty,
    /// Cumulative quote quantity.
    pub cum_quote: Notional,
    /// Status.
    pub status: OrderStatus,
    /// Order time (`time`) or last update time.
    pub ts_exchange: UnixNanos,
}

/// The exchange's answer to a query by client id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryAnswer {
    /// The order exists (any status).
    Found(ExchangeOrder),
    /// `-2013 Order does not exist.`
    NotFound {
        /// Symbol queried.
        symbol: Symbol,
        /// Client id queried.
        client_id: ClientOrderId,
    },
}

impl QueryAnswer {
    fn client_id(&self) -> ClientOrderId {
        match self {
            QueryAnswer::Found(o) => o.client_id,
            QueryAnswer::NotFound { client_id, .. } => *client_id,
        }
    }
}

/// One of the account's trades (`GET /api/v3/myTrades`), which names the order by exchange id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeTrade {
    /// Symbol.
    pub symbol: Symbol,
    /// The order it filled.
    pub order_id: OrderId,
    /// `isBuyer` → Buy.
    pub side: Side,
    /// The fill.
    pub fill: Fill,
}

/// Everything reconciliation looks at.
#[derive(Debug, Clone, Copy)]
pub struct ReconcileInput<'a> {
    /// Our client-id prefix: only ids of this shape are ever touched.
    pub prefix: ClientIdPrefix,
    /// What to do with our-prefix orders the journal does not know.
    pub unknown_orders: UnknownOrderPolicy,
    /// `recvWindow`: a placement older than this can no longer reach the matching engine.
    pub recv_window: Duration,
    /// Now (local clock).
    pub now: UnixNanos,
    /// The journal's open orders, plus any journaled order whose client id appears in
    /// `exchange_open` or whose exchange order id appears in `trades` ([`journal_orders_for`]
    /// gathers exactly these).
    pub journal_orders: &'a [JournalOrder],
    /// Every fill in the journal ([`Journal::all_fills`]).
    pub journal_fills: &'a [FillRecord],
    /// The exchange's open orders on our symbols (other bots' included; they are filtered here).
    pub exchange_open: &'a [ExchangeOrder],
    /// Answers to the queries [`orders_to_query`] asked for. Missing answers mean "ask again".
    pub queried: &'a [QueryAnswer],
    /// Recent account trades on our symbols (any bot's; filtered here).
    pub trades: &'a [ExchangeTrade],
    /// Account balances.
    pub balances: &'a [Balance],
    /// The configured funds cap and its asset, to warn if the balance cannot cover it.
    pub funds: Option<(Asset, Notional)>,
}

/// One thing to do. In a [`Plan`], decisions are ordered so that applying them in sequence is
/// valid: journal inserts first, then state changes, then fills, then exchange-side cancels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Insert an our-prefix order the journal did not know (before its fills and any cancel).
    JournalUnknown(JournalOrder),
    /// The order is open on the exchange: keep managing it, never place it again. The update
    /// refreshes the journal with the exchange's state.
    Adopt(OrderUpdate),
    /// Finished on the exchange while the journal thought it open: record the final state.
    Close(OrderUpdate),
    /// The exchange has no such order (`-2013`): it never arrived (crash between journaling the
    /// intent and sending), or it was purged (testnet reset). Nothing rests: record it closed
    /// as rejected with code -2013.
    NotOnExchange {
        /// Symbol.
        symbol: Symbol,
        /// Client id.
        client_id: ClientOrderId,
    },
    /// The outcome is still unknown (no answer, or too recent to rule out a late arrival): keep
    /// it `Unknown` and query again.
    Requery {
        /// Symbol.
        symbol: Symbol,
        /// Client id.
        client_id: ClientOrderId,
    },
    /// Record a fill of ours the journal lacks.
    RecordFill(FillRecord),
    /// Cancel this open order on the exchange (ours, unknown to the journal, policy `cancel`).
    Cancel {
        /// Symbol.
        symbol: Symbol,
        /// Client id.
        client_id: ClientOrderId,
    },
}

/// Something an operator should know about; reconciliation still proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning {
    /// The journal recorded the order as finished but the exchange shows it open; the exchange
    /// wins and the order is adopted.
    TerminalInJournalButOpen {
        /// Client id.
        client_id: ClientOrderId,
        /// What the journal said.
        journal_status: OrderStatus,
    },
    /// The exchange's executed quantity exceeds the fills known (journal + trades fetched):
    /// some trades fell outside the fetched `myTrades` window.
    FillsMissing {
        /// Client id.
        client_id: ClientOrderId,
        /// Exchange's executed quantity.
        exchange_cum_qty: Qty,
        /// Sum of known fills.
        known_qty: Qty,
    },
    /// The configured funds exceed the free + locked balance of the funds asset.
    FundsExceedBalance {
        /// Asset.
        asset: Asset,
        /// Configured funds.
        funds: Notional,
        /// Balance on the exchange.
        balance: Notional,
    },
}

/// The result of reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Decisions, in application order.
    pub decisions: Vec<Decision>,
    /// Positions after the missing fills are recorded (this bot's fills only), by symbol.
    pub positions: Vec<Position>,
    /// Highest client-id sequence of ours seen on the exchange; pass it to
    /// [`Journal::ensure_client_seq_above`] so new ids never collide with existing orders.
    pub max_seen_seq: u64,
    /// Operator-visible anomalies.
    pub warnings: Vec<Warning>,
    /// Open orders left alone because they are not ours (other bots, manual orders).
    pub foreign_orders: usize,
    /// Trades left alone because they belong to orders that are not ours.
    pub foreign_trades: usize,
}

impl Plan {
    /// The orders the engine should manage after start-up (adopted ones).
    pub fn adopted(&self) -> impl Iterator<Item = &OrderUpdate> {
        self.decisions.iter().filter_map(|d| match d {
            Decision::Adopt(u) => Some(u),
            _ => None,
        })
    }

    /// The cancels to send.
    pub fn cancels(&self) -> impl Iterator<Item = (Symbol, ClientOrderId)> + '_ {
        self.decisions.iter().filter_map(|d| match d {
            Decision::Cancel { symbol, client_id } => Some((*symbol, *client_id)),
            _ => None,
        })
    }
}

/// Journal-open orders the exchange does not list as open: the caller must query each by
/// client id before calling [`reconcile`].
pub fn orders_to_query(
    journal_open: &[JournalOrder],
    exchange_open: &[ExchangeOrder],
) -> Vec<(Symbol, ClientOrderId)> {
    let open: HashSet<ClientOrderId> = exchange_open.iter().map(|o| o.client_id).collect();
    journal_open
        .iter()
        .filter(|o| o.status.is_open() && !open.contains(&o.client_id))
        .map(|o| (o.symbol, o.client_id))
        .collect()
}

fn update_from(o: &ExchangeOrder, now: UnixNanos) -> OrderUpdate {
    OrderUpdate {
        symbol: o.symbol,
        client_id: o.client_id,
        order_id: Some(o.order_id),
        side: o.side,
        status: o.status,
        orig_qty: o.orig_qty,
        cum_qty: o.cum_qty,
        cum_quote: o.cum_quote,
        fill: None,
        ts_exchange: o.ts_exchange,
        ts_local: now,
    }
}

fn journal_order_from(o: &ExchangeOrder, now: UnixNanos) -> JournalOrder {
    JournalOrder {
        client_id: o.client_id,
        symbol: o.symbol,
        side: o.side,
        kind: o.kind,
        time_in_force: o.time_in_force,
        price: o.price,
        qty: o.orig_qty,
        status: o.status,
        order_id: Some(o.order_id),
        cum_qty: o.cum_qty,
        cum_quote: o.cum_quote,
        reject_code: None,
        created: if o.ts_exchange == UnixNanos::ZERO { now } else { o.ts_exchange },
        updated: now,
    }
}

/// Decides what to do; pure, deterministic (output order follows input order).
pub fn reconcile(input: &ReconcileInput<'_>) -> Plan {
    let prefix = input.prefix;
    let now = input.now;
    let journal: HashMap<ClientOrderId, &JournalOrder> =
        input.journal_orders.iter().map(|o| (o.client_id, o)).collect();
    let exchange_open: HashMap<ClientOrderId, &ExchangeOrder> =
        input.exchange_open.iter().map(|o| (o.client_id, o)).collect();
    let answers: HashMap<ClientOrderId, &QueryAnswer> =
        input.queried.iter().map(|a| (a.client_id(), a)).collect();

    let mut inserts = Vec::new();
    let mut states = Vec::new();
    let mut cancels = Vec::new();
    let mut warnings = Vec::new();
    let mut foreign_orders = 0;
    let mut max_seen_seq = 0;
    // (symbol, exchange order id) → (client id, side, exchange's executed qty) for our orders.
    let mut ours: HashMap<(Symbol, OrderId), (ClientOrderId, Side, Qty)> = HashMap::new();

    for o in input.journal_orders {
        if let Some(id) = o.order_id {
            ours.insert((o.symbol, id), (o.client_id, o.side, o.cum_qty));
        }
    }

    // Exchange-open orders: adopt ours, journal/adopt/cancel our unknown ones, skip foreign.
    for o in input.exchange_open {
        let Some(seq) = prefix.seq_of(&o.client_id) else {
            foreign_orders += 1;
            continue;
        };
        max_seen_seq = max_seen_seq.max(seq);
        ours.insert((o.symbol, o.order_id), (o.client_id, o.side, o.cum_qty));
        match journal.get(&o.client_id) {
            Some(j) => {
                if j.status.is_terminal() {
                    warnings.push(Warning::TerminalInJournalButOpen {
                        client_id: o.client_id,
                        journal_status: j.status,
                    });
                }
                states.push(Decision::Adopt(update_from(o, now)));
            }
            None => {
                inserts.push(Decision::JournalUnknown(journal_order_from(o, now)));
                match input.unknown_orders {
                    UnknownOrderPolicy::Adopt => states.push(Decision::Adopt(update_from(o, now))),
                    UnknownOrderPolicy::Cancel => {
                        cancels.push(Decision::Cancel { symbol: o.symbol, client_id: o.client_id })
                    }
                }
            }
        }
    }

    // Journal-open orders the exchange does not show open: the query answer decides.
    for j in input.journal_orders {
        if !j.status.is_open() || exchange_open.contains_key(&j.client_id) {
            continue;
        }
        if let Some(seq) = prefix.seq_of(&j.client_id) {
            max_seen_seq = max_seen_seq.max(seq);
        }
        let (symbol, client_id) = (j.symbol, j.client_id);
        match answers.get(&j.client_id) {
            Some(QueryAnswer::Found(o)) => {
                ours.insert((o.symbol, o.order_id), (o.client_id, o.side, o.cum_qty));
                if o.status.is_terminal() {
                    states.push(Decision::Close(update_from(o, now)));
                } else {
                    // Open after all (it raced the openOrders snapshot): manage it.
                    states.push(Decision::Adopt(update_from(o, now)));
                }
            }
            Some(QueryAnswer::NotFound { .. }) => {
                let age = now.saturating_since(j.created);
                if j.status == OrderStatus::PendingCancel || j.order_id.is_some() {
                    // It was acknowledged once, so it existed and the exchange has since forgotten
                    // it (testnet reset, archival). Nothing rests: record it closed.
                    states.push(Decision::NotOnExchange { symbol, client_id });
                } else if age < input.recv_window {
                    states.push(Decision::Requery { symbol, client_id });
                } else {
                    states.push(Decision::NotOnExchange { symbol, client_id });
                }
            }
            None => states.push(Decision::Requery { symbol, client_id }),
        }
    }

    // Trades: keep ours that the journal lacks.
    let known: HashSet<(Symbol, u64)> =
        input.journal_fills.iter().map(|f| (f.symbol, f.fill.trade_id.0)).collect();
    let mut new_fills: Vec<FillRecord> = Vec::new();
    let mut seen_new: HashSet<(Symbol, u64)> = HashSet::new();
    let mut foreign_trades = 0;
    for t in input.trades {
        let key = (t.symbol, t.fill.trade_id.0);
        if known.contains(&key) {
            continue;
        }
        let Some(&(client_id, side, _)) = ours.get(&(t.symbol, t.order_id)) else {
            foreign_trades += 1;
            continue;
        };
        if !seen_new.insert(key) {
            continue;
        }
        // The journal's side wins; a trade's `isBuyer` must agree with it for our own order.
        new_fills.push(FillRecord { symbol: t.symbol, client_id, side, fill: t.fill });
    }

    // Fills missing even after the trades fetched: warn (position may be short of the truth).
    let mut fill_qty: HashMap<ClientOrderId, Qty> = HashMap::new();
    for f in input.journal_fills.iter().chain(&new_fills) {
        let e = fill_qty.entry(f.client_id).or_insert(Qty::ZERO);
        *e = e.saturating_add(f.fill.qty);
    }
    let mut checked: Vec<_> = ours.values().copied().collect();
    checked.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    checked.dedup_by_key(|c| c.0);
    for (client_id, _, exchange_cum) in checked {
        let known_qty = fill_qty.get(&client_id).copied().unwrap_or(Qty::ZERO);
        if exchange_cum > known_qty {
            warnings.push(Warning::FillsMissing {
                client_id,
                exchange_cum_qty: exchange_cum,
                known_qty,
            });
        }
    }

    if let Some((asset, funds)) = input.funds {
        let balance = input
            .balances
            .iter()
            .filter(|b| b.asset == asset)
            .fold(Notional::ZERO, |acc, b| acc.saturating_add(b.free).saturating_add(b.locked));
        if balance < funds {
            warnings.push(Warning::FundsExceedBalance { asset, funds, balance });
        }
    }

    let mut all_fills: Vec<FillRecord> = input.journal_fills.to_vec();
    all_fills.extend_from_slice(&new_fills);
    let positions = positions_from_fills(&all_fills);

    let mut decisions = inserts;
    decisions.extend(states);
    decisions.extend(new_fills.into_iter().map(Decision::RecordFill));
    decisions.extend(cancels);
    Plan { decisions, positions, max_seen_seq, warnings, foreign_orders, foreign_trades }
}

/// The journal orders [`ReconcileInput::journal_orders`] needs: every open one, every one
/// whose client id the exchange lists as open, and every one a trade refers to by exchange id.
pub fn journal_orders_for(
    journal: &Journal,
    exchange_open: &[ExchangeOrder],
    trades: &[ExchangeTrade],
) -> Result<Vec<JournalOrder>, JournalError> {
    let mut out = journal.open_orders()?;
    let mut seen: HashSet<ClientOrderId> = out.iter().map(|o| o.client_id).collect();
    for o in exchange_open {
        if !seen.contains(&o.client_id) {
            if let Some(j) = journal.order(&o.client_id)? {
                seen.insert(j.client_id);
                out.push(j);
            }
        }
    }
    let mut asked: HashSet<(Symbol, OrderId)> = HashSet::new();
    for t in trades {
        if asked.insert((t.symbol, t.order_id)) {
            if let Some(j) = journal.order_by_exchange_id(&t.symbol, t.order_id)? {
                if seen.insert(j.client_id) {
                    out.push(j);
                }
            }
        }
    }
    Ok(out)
}

/// What [`apply_to_journal`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Orders inserted (unknown to the journal before).
    pub inserted: usize,
    /// Order states refreshed or closed.
    pub updated: usize,
    /// Fills recorded (new ones only).
    pub fills: usize,
}

/// Writes the journal side of `plan`: inserts, state changes, fills and the client-id floor.
/// Cancels are left to the caller (they need the exchange). One transaction per decision, so a
/// crash part-way leaves a consistent journal and reconciling again finishes the job.
pub fn apply_to_journal(
    plan: &Plan,
    journal: &mut Journal,
    now: UnixNanos,
) -> Result<Applied, JournalError> {
    let mut applied = Applied::default();
    journal.ensure_client_seq_above(plan.max_seen_seq)?;
    for d in &plan.decisions {
        match d {
            Decision::JournalUnknown(o) => {
                if journal.order(&o.client_id)?.is_none() {
                    journal.record_adopted(o)?;
                    applied.inserted += 1;
                }
            }
            Decision::Adopt(u) | Decision::Close(u) => {
                let before = journal.order(&u.client_id)?;
                let changed = before.is_none_or(|b| {
                    b.status != u.status || b.cum_qty != u.cum_qty || b.order_id != u.order_id
                });
                if changed {
                    journal.record_update(u)?;
                    applied.updated += 1;
                }
            }
            Decision::NotOnExchange { client_id, .. } => {
                journal.record_reject(
                    client_id,
                    -2013,
                    "order does not exist on the exchange (found at reconciliation)",
                    now,
                )?;
                applied.updated += 1;
            }
            Decision::Requery { client_id, .. } => {
                let is_unknown =
                    journal.order(client_id)?.is_some_and(|o| o.status == OrderStatus::Unknown);
                if !is_unknown {
                    journal.mark_unknown(client_id, now)?;
                    applied.updated += 1;
                }
            }
            Decision::RecordFill(f) => {
                if journal.record_fill(f)? {
                    applied.fills += 1;
                }
            }
            Decision::Cancel { .. } => {}
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kestrel_model::TradeId;

    const NOW: UnixNanos = UnixNanos(1_700_000_100_000_000_000);
    const LONG_AGO: UnixNanos = UnixNanos(1_700_000_000_000_000_000);

    fn sym() -> Symbol {
        Symbol::new("BTCUSDT").unwrap()
    }
    fn prefix() -> ClientIdPrefix {
        ClientIdPrefix::new("kst").unwrap()
    }
    fn cid(s: &str) -> ClientOrderId {
        ClientOrderId::new(s).unwrap()
    }
    fn q(s: &str) -> Qty {
        s.parse().unwrap()
    }

    fn jorder(
        id: &str,
        status: OrderStatus,
        order_id: Option<u64>,
        created: UnixNanos,
    ) -> JournalOrder {
        JournalOrder {
            client_id: cid(id),
            symbol: sym(),
            side: Side::Buy,
            kind: OrderType::Limit,
            time_in_force: Some(TimeInForce::Gtc),
            price: Some("100".parse().unwrap()),
            qty: q("1"),
            status,
            order_id: order_id.map(OrderId),
            cum_qty: Qty::ZERO,
            cum_quote: Notional::ZERO,
            reject_code: None,
            created,
            updated: created,
        }
    }

    fn xorder(id: &str, order_id: u64, status: OrderStatus, cum: &str) -> ExchangeOrder {
        ExchangeOrder {
            symbol: sym(),
            client_id: cid(id),
            order_id: OrderId(order_id),
            side: Side::Buy,
            kind: OrderType::Limit,
            time_in_force: Some(TimeInForce::Gtc),
            price: Some("100".parse().unwrap()),
            orig_qty: q("1"),
            cum_qty: q(cum),
            cum_quote: Notional::of("100".parse().unwrap(), q(cum)),
            status,
            ts_exchange: LONG_AGO,
        }
    }

    fn trade(order_id: u64, trade_id: u64, qty: &str) -> ExchangeTrade {
        ExchangeTrade {
            symbol: sym(),
            order_id: OrderId(order_id),
            side: Side::Buy,
            fill: Fill {
                trade_id: TradeId(trade_id),
                price: "100".parse().unwrap(),
                qty: q(qty),
                commission: Notional::ZERO,
                commission_asset: None,
                is_maker: true,
                ts_exchange: LONG_AGO,
            },
        }
    }

    struct Case {
        name: &'static str,
        policy: UnknownOrderPolicy,
        journal: Vec<JournalOrder>,
        journal_fills: Vec<FillRecord>,
        exchange_open: Vec<ExchangeOrder>,
        queried: Vec<QueryAnswer>,
        trades: Vec<ExchangeTrade>,
        /// Expected decisions as short strings, in order.
        expect: Vec<&'static str>,
        expect_foreign: (usize, usize),
    }

    fn short(d: &Decision) -> String {
        match d {
            Decision::JournalUnknown(o) => format!("journal {}", o.client_id),
            Decision::Adopt(u) => format!("adopt {} {:?}", u.client_id, u.status),
            Decision::Close(u) => format!("close {} {:?}", u.client_id, u.status),
            Decision::NotOnExchange { client_id, .. } => format!("not-on-exchange {client_id}"),
            Decision::Requery { client_id, .. } => format!("requery {client_id}"),
            Decision::RecordFill(f) => {
                format!("fill {} t{} {}", f.client_id, f.fill.trade_id, f.fill.qty)
            }
            Decision::Cancel { client_id, .. } => format!("cancel {client_id}"),
        }
    }

    fn base_case(name: &'static str) -> Case {
        Case {
            name,
            policy: UnknownOrderPolicy::Cancel,
            journal: vec![],
            journal_fills: vec![],
            exchange_open: vec![],
            queried: vec![],
            trades: vec![],
            expect: vec![],
            expect_foreign: (0, 0),
        }
    }

    fn run(c: &Case) -> Plan {
        reconcile(&ReconcileInput {
            prefix: prefix(),
            unknown_orders: c.policy,
            recv_window: Duration::from_secs(5),
            now: NOW,
            journal_orders: &c.journal,
            journal_fills: &c.journal_fills,
            exchange_open: &c.exchange_open,
            queried: &c.queried,
            trades: &c.trades,
            balances: &[],
            funds: None,
        })
    }

    #[test]
    fn reconcile_table() {
        let cases = vec![
            // TC0: nothing anywhere.
            base_case("empty"),
            // TC1 (S15): open before restart, open after → adopted, never re-placed or cancelled.
            Case {
                journal: vec![jorder("kst-1", OrderStatus::New, Some(11), LONG_AGO)],
                exchange_open: vec![xorder("kst-1", 11, OrderStatus::New, "0")],
                expect: vec!["adopt kst-1 New"],
                ..base_case("open stays open")
            },
            // TC2: journal open, exchange filled while we were down → close + missing fills.
            Case {
                journal: vec![jorder("kst-2", OrderStatus::New, Some(12), LONG_AGO)],
                queried: vec![QueryAnswer::Found(xorder("kst-2", 12, OrderStatus::Filled, "1"))],
                trades: vec![trade(12, 501, "0.4"), trade(12, 502, "0.6")],
                expect: vec!["close kst-2 Filled", "fill kst-2 t501 0.4", "fill kst-2 t502 0.6"],
                ..base_case("filled while down")
            },
            // TC3 (S02): one fill already journaled → only the other is recorded.
            Case {
                journal: vec![jorder("kst-3", OrderStatus::PartiallyFilled, Some(13), LONG_AGO)],
                journal_fills: vec![FillRecord {
                    symbol: sym(),
                    client_id: cid("kst-3"),
                    side: Side::Buy,
                    fill: trade(13, 601, "0.4").fill,
                }],
                queried: vec![QueryAnswer::Found(xorder("kst-3", 13, OrderStatus::Filled, "1"))],
                trades: vec![trade(13, 601, "0.4"), trade(13, 602, "0.6"), trade(13, 602, "0.6")],
                expect: vec!["close kst-3 Filled", "fill kst-3 t602 0.6"],
                ..base_case("fill exactly once")
            },
            // TC4: journal open, exchange cancelled it.
            Case {
                journal: vec![jorder("kst-4", OrderStatus::PendingCancel, Some(14), LONG_AGO)],
                queried: vec![QueryAnswer::Found(xorder("kst-4", 14, OrderStatus::Canceled, "0"))],
                expect: vec!["close kst-4 Canceled"],
                ..base_case("cancelled while down")
            },
            // TC5 (S18/S01): intent journaled, crash before sending: not found, old → never placed.
            Case {
                journal: vec![jorder("kst-5", OrderStatus::PendingNew, None, LONG_AGO)],
                queried: vec![QueryAnswer::NotFound { symbol: sym(), client_id: cid("kst-5") }],
                expect: vec!["not-on-exchange kst-5"],
                ..base_case("intent never sent")
            },
            // TC6: not found but younger than recvWindow → could still arrive → requery.
            Case {
                journal: vec![jorder(
                    "kst-6",
                    OrderStatus::Unknown,
                    None,
                    UnixNanos(NOW.0 - 1_000_000_000),
                )],
                queried: vec![QueryAnswer::NotFound { symbol: sym(), client_id: cid("kst-6") }],
                expect: vec!["requery kst-6"],
                ..base_case("too recent to rule out")
            },
            // TC7 (S01): Unknown resolved by query: it was placed and is open → adopt.
            Case {
                journal: vec![jorder("kst-7", OrderStatus::Unknown, None, LONG_AGO)],
                queried: vec![QueryAnswer::Found(xorder("kst-7", 17, OrderStatus::New, "0"))],
                expect: vec!["adopt kst-7 New"],
                ..base_case("unknown resolved open")
            },
            // TC8: no answer for a query → requery, never assumed failed.
            Case {
                journal: vec![jorder("kst-8", OrderStatus::Unknown, None, LONG_AGO)],
                expect: vec!["requery kst-8"],
                ..base_case("no answer")
            },
            // TC9: our prefix, unknown to journal, policy cancel → journal it, cancel it.
            Case {
                exchange_open: vec![xorder("kst-9", 19, OrderStatus::PartiallyFilled, "0.5")],
                trades: vec![trade(19, 901, "0.5")],
                expect: vec!["journal kst-9", "fill kst-9 t901 0.5", "cancel kst-9"],
                ..base_case("unknown ours, cancel")
            },
            // TC10: same with policy adopt.
            Case {
                policy: UnknownOrderPolicy::Adopt,
                exchange_open: vec![xorder("kst-10", 20, OrderStatus::New, "0")],
                expect: vec!["journal kst-10", "adopt kst-10 New"],
                ..base_case("unknown ours, adopt")
            },
            // TC11 (S09): other bots' and manual orders and their trades are never touched.
            Case {
                exchange_open: vec![
                    xorder("other-1", 31, OrderStatus::New, "0"),
                    xorder("kst1-1", 32, OrderStatus::New, "0"),
                    xorder("web_AbCdEf123", 33, OrderStatus::New, "0"),
                    xorder("kst-11", 34, OrderStatus::New, "0"),
                ],
                journal: vec![jorder("kst-11", OrderStatus::New, Some(34), LONG_AGO)],
                trades: vec![trade(31, 701, "1"), trade(32, 702, "1"), trade(34, 703, "0.1")],
                expect: vec!["adopt kst-11 New", "fill kst-11 t703 0.1"],
                expect_foreign: (3, 2),
                ..base_case("shared account")
            },
            // TC12: journal said filled, exchange says open → exchange wins (adopt + warning).
            Case {
                journal: vec![jorder("kst-12", OrderStatus::Canceled, Some(40), LONG_AGO)],
                exchange_open: vec![xorder("kst-12", 40, OrderStatus::New, "0")],
                expect: vec!["adopt kst-12 New"],
                ..base_case("terminal in journal but open")
            },
            // TC13: a terminal order whose last execution report was missed: the fill the
            // journal lacks is recovered from myTrades (the order is found by exchange id).
            Case {
                journal: vec![jorder("kst-13", OrderStatus::Filled, Some(50), LONG_AGO)],
                journal_fills: vec![FillRecord {
                    symbol: sym(),
                    client_id: cid("kst-13"),
                    side: Side::Buy,
                    fill: trade(50, 801, "0.4").fill,
                }],
                trades: vec![trade(50, 801, "0.4"), trade(50, 802, "0.6")],
                expect: vec!["fill kst-13 t802 0.6"],
                ..base_case("missed report on a terminal order")
            },
        ];
        for (i, c) in cases.iter().enumerate() {
            let plan = run(c);
            let got: Vec<String> = plan.decisions.iter().map(short).collect();
            assert_eq!(got, c.expect, "TC{i} {}", c.name);
            assert_eq!(
                (plan.foreign_orders, plan.foreign_trades),
                c.expect_foreign,
                "TC{i} {}",
                c.name
            );
        }
    }

    #[test]
    fn orders_to_query_lists_missing_open_ones() {
        let journal = vec![
            jorder("kst-1", OrderStatus::New, Some(1), LONG_AGO),
            jorder("kst-2", OrderStatus::Unknown, None, LONG_AGO),
            jorder("kst-3", OrderStatus::Filled, Some(3), LONG_AGO),
        ];
        let open = vec![xorder("kst-1", 1, OrderStatus::New, "0")];
        assert_eq!(orders_to_query(&journal, &open), vec![(sym(), cid("kst-2"))]);
    }

    #[test]
    fn positions_include_missing_fills_and_max_seq() {
        let c = Case {
            journal: vec![jorder("kst-2", OrderStatus::New, Some(12), LONG_AGO)],
            exchange_open: vec![
                xorder("kst-2", 12, OrderStatus::PartiallyFilled, "0.4"),
                xorder("kst-77", 13, OrderStatus::New, "0"),
            ],
            trades: vec![trade(12, 501, "0.4")],
            ..base_case("positions")
        };
        let plan = run(&c);
        assert_eq!(plan.positions.len(), 1);
        assert_eq!(plan.positions[0].base, q("0.4"));
        assert_eq!(plan.max_seen_seq, 77);
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    }

    #[test]
    fn warns_on_missing_fills_and_short_balance() {
        let journal = vec![jorder("kst-2", OrderStatus::New, Some(12), LONG_AGO)];
        let open = vec![xorder("kst-2", 12, OrderStatus::PartiallyFilled, "0.4")];
        let usdt = Asset::new("USDT").unwrap();
        let balances = [Balance {
            asset: usdt,
            free: "100".parse().unwrap(),
            locked: "50".parse().unwrap(),
            ts_exchange: NOW,
        }];
        let plan = reconcile(&ReconcileInput {
            prefix: prefix(),
            unknown_orders: UnknownOrderPolicy::Cancel,
            recv_window: Duration::from_secs(5),
            now: NOW,
            journal_orders: &journal,
            journal_fills: &[],
            exchange_open: &open,
            queried: &[],
            trades: &[],
            balances: &balances,
            funds: Some((usdt, "500".parse().unwrap())),
        });
        assert_eq!(
            plan.warnings,
            vec![
                Warning::FillsMissing {
                    client_id: cid("kst-2"),
                    exchange_cum_qty: q("0.4"),
                    known_qty: Qty::ZERO
                },
                Warning::FundsExceedBalance {
                    asset: usdt,
                    funds: "500".parse().unwrap(),
                    balance: "150".parse().unwrap()
                },
            ]
        );
    }

    fn input<'a>(
        policy: UnknownOrderPolicy,
        journal_orders: &'a [JournalOrder],
        journal_fills: &'a [FillRecord],
        exchange_open: &'a [ExchangeOrder],
        queried: &'a [QueryAnswer],
        trades: &'a [ExchangeTrade],
    ) -> ReconcileInput<'a> {
        ReconcileInput {
            prefix: prefix(),
            unknown_orders: policy,
            recv_window: Duration::from_secs(5),
            now: NOW,
            journal_orders,
            journal_fills,
            exchange_open,
            queried,
            trades,
            balances: &[],
            funds: None,
        }
    }

    /// Reconciles `journal` against the exchange state, applies the plan, returns it.
    fn reconcile_journal(
        journal: &mut Journal,
        exchange_open: &[ExchangeOrder],
        queried: &[QueryAnswer],
        trades: &[ExchangeTrade],
    ) -> Plan {
        let orders = journal_orders_for(journal, exchange_open, trades).unwrap();
        let fills = journal.all_fills().unwrap();
        let plan = reconcile(&input(
            UnknownOrderPolicy::Cancel,
            &orders,
            &fills,
            exchange_open,
            queried,
            trades,
        ));
        apply_to_journal(&plan, journal, NOW).unwrap();
        plan
    }

    /// S15: an order open before a restart and still open after is adopted, neither dropped
    /// nor duplicated; reconciling again (a second restart) changes nothing.
    #[test]
    fn scenario_s15_open_order_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let resting = {
            let mut j = Journal::open(&path).unwrap();
            let seq = j.next_client_seq().unwrap();
            let mut o =
                jorder(prefix().make(seq).as_str(), OrderStatus::PendingNew, None, LONG_AGO);
            o.status = OrderStatus::PendingNew;
            j.record_intent(&kestrel_model::OrderRequest {
                symbol: o.symbol,
                client_id: o.client_id,
                side: o.side,
                kind: o.kind,
                time_in_force: o.time_in_force,
                price: o.price,
                qty: o.qty,
                ts_decided: o.created,
            })
            .unwrap();
            let x = xorder(o.client_id.as_str(), 4242, OrderStatus::New, "0");
            j.record_ack(&update_from(&x, LONG_AGO)).unwrap();
            x
            // Journal dropped: the process "crashes" here.
        };
        for restart in 0..2 {
            let mut j = Journal::open(&path).unwrap();
            let plan = reconcile_journal(&mut j, &[resting], &[], &[]);
            let got: Vec<String> = plan.decisions.iter().map(short).collect();
            assert_eq!(got, vec![format!("adopt {} New", resting.client_id)], "restart {restart}");
            assert_eq!(plan.cancels().count(), 0);
            assert_eq!(plan.adopted().count(), 1);
            // The journal still holds exactly that one open order; the next id is a new one.
            let open = j.open_orders().unwrap();
            assert_eq!(open.len(), 1);
            assert_eq!(open[0].client_id, resting.client_id);
            assert_eq!(open[0].order_id, Some(OrderId(4242)));
            let next = prefix().make(j.next_client_seq().unwrap());
            assert_ne!(next, resting.client_id);
        }
    }

    /// S09: several bots share one account; reconciliation touches only our prefix, whatever
    /// the policy, and never counts another bot's trades in our position.
    #[test]
    fn scenario_s09_reconciles_only_own_orders() {
        let foreign =
            ["other-1", "kst1-2", "kstx-3", "KST-4", "kst-", "kst-5a", "web_Zx81Qp", "x-kst-6"];
        let exchange_open: Vec<ExchangeOrder> = foreign
            .iter()
            .enumerate()
            .map(|(i, id)| xorder(id, 100 + i as u64, OrderStatus::New, "0"))
            .collect();
        let trades: Vec<ExchangeTrade> =
            (0..foreign.len() as u64).map(|i| trade(100 + i, 900 + i, "1")).collect();
        for policy in [UnknownOrderPolicy::Cancel, UnknownOrderPolicy::Adopt] {
            let plan = reconcile(&input(policy, &[], &[], &exchange_open, &[], &trades));
            assert!(plan.decisions.is_empty(), "{policy:?}: {:?}", plan.decisions);
            assert_eq!(plan.foreign_orders, foreign.len());
            assert_eq!(plan.foreign_trades, foreign.len());
            assert!(plan.positions.is_empty());
            assert_eq!(plan.max_seen_seq, 0);
        }
    }

    /// S02: killed right after a fill; on restart the fill already journaled is not recorded
    /// again, the one missed is, and the position equals the exchange's executed quantity.
    #[test]
    fn scenario_s02_fill_recorded_once_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let id = prefix().make(1);
        {
            let mut j = Journal::open(&path).unwrap();
            assert_eq!(j.next_client_seq().unwrap(), 1);
            let o = jorder(id.as_str(), OrderStatus::PendingNew, None, LONG_AGO);
            j.record_intent(&kestrel_model::OrderRequest {
                symbol: o.symbol,
                client_id: o.client_id,
                side: o.side,
                kind: o.kind,
                time_in_force: o.time_in_force,
                price: o.price,
                qty: o.qty,
                ts_decided: o.created,
            })
            .unwrap();
            let mut u = update_from(
                &xorder(id.as_str(), 77, OrderStatus::PartiallyFilled, "0.4"),
                LONG_AGO,
            );
            u.fill = Some(trade(77, 1, "0.4").fill);
            assert!(j.record_update(&u).unwrap().fill_new);
            // Killed here: the second fill (0.6) happens while the bot is down.
        }
        let mut j = Journal::open(&path).unwrap();
        let done = xorder(id.as_str(), 77, OrderStatus::Filled, "1");
        let trades = [trade(77, 1, "0.4"), trade(77, 2, "0.6")];
        let plan = reconcile_journal(&mut j, &[], &[QueryAnswer::Found(done)], &trades);
        let got: Vec<String> = plan.decisions.iter().map(short).collect();
        assert_eq!(got, vec![format!("close {id} Filled"), format!("fill {id} t2 0.6")]);
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
        assert_eq!(j.all_fills().unwrap().len(), 2);
        let pos = j.positions().unwrap();
        assert_eq!(pos[0].base, q("1"));
        assert_eq!(plan.positions, pos);
        let o = j.order(&id).unwrap().unwrap();
        assert_eq!((o.status, o.cum_qty), (OrderStatus::Filled, q("1")));
        // Reconciling again (another restart) records nothing new and counts nothing foreign.
        let again = reconcile_journal(&mut j, &[], &[], &trades);
        assert!(again.decisions.is_empty(), "{:?}", again.decisions);
        assert_eq!(again.foreign_trades, 0);
        assert_eq!(j.all_fills().unwrap().len(), 2);
    }
}
