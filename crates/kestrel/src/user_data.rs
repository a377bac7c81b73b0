//! The user-data task: execution reports and balances from the WebSocket API subscription,
//! journaled first (fills exactly once, by trade id), then handed to the engine with
//! backpressure (never dropped). On every (re)subscription the open orders are re-fetched (and
//! journal-open orders the exchange no longer lists are queried), the account's trades after
//! the last journaled trade id of each symbol are fetched and the missing fills journaled and
//! fed to the engine ([`catch_up_fills`]), and balances are re-fetched: nothing that happened
//! while unsubscribed is missed (scenario S10).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kestrel_binance::error::BinanceError;
use kestrel_binance::gateway::OrderGateway;
use kestrel_binance::rest::{MyTrade, OrderRef, RestClient};
use kestrel_binance::user_stream::{self, ResyncReason, UserEvent, UserStreamConfig};
use kestrel_model::{ClientOrderId, Clock, Event, OrderUpdate, Symbol, TradeId, UnixNanos};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::engine_thread::OverrunTracker;
use crate::exec::JournalCallError;
use crate::faults::{FaultBoard, FaultClass};
use crate::journal::{FillRecord, Journal, JournalError};
use crate::metrics::Metrics;
use crate::runtime::SharedJournal;

/// How often the session's connection state is checked for `USER_STREAM_DOWN`.
pub const CONNECTION_CHECK: Duration = Duration::from_millis(500);

/// Trades per `myTrades` page while catching up on fills (Binance's maximum).
pub const MY_TRADES_PAGE: u16 = 1000;

/// What the user-data task needs.
#[derive(Clone)]
pub struct UserDataDeps {
    /// Subscription settings.
    pub stream: UserStreamConfig,
    /// REST client (account snapshot on resync).
    pub rest: RestClient,
    /// Order queries and open orders on resync.
    pub gateway: OrderGateway,
    /// The journal.
    pub journal: SharedJournal,
    /// The engine's inbox.
    pub events: mpsc::Sender<Event>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Faults.
    pub faults: FaultBoard,
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
    /// Budget for the task's own work per report (journal writes and waits for the engine's
    /// inbox excluded).
    pub budget: Duration,
    /// The traded symbols, whose trades are fetched on resync.
    pub symbols: Vec<Symbol>,
}

impl std::fmt::Debug for UserDataDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserDataDeps").field("stream", &self.stream).finish_non_exhaustive()
    }
}

/// Runs until `cancel` fires or the engine's inbox closes.
pub async fn run(deps: UserDataDeps, cancel: CancellationToken) {
    let (tx, mut rx) = mpsc::channel::<UserEvent>(1024);
    let stream = user_stream::start(deps.stream.clone(), tx, cancel.clone());
    let latency = deps.metrics.task_latency("user_stream");
    let mut overrun = OverrunTracker::new("user_stream", deps.budget, deps.faults.clone());
    let mut check = tokio::time::interval(CONNECTION_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut subscribed = false;
    // Before the first subscription, the stream is not "down" but starting: the fault waits
    // until the first attempt (connect + subscribe, each answer awaited at most
    // `request_timeout`) has had time to fail.
    let first_attempt_over = Instant::now() + deps.stream.ws.request_timeout;
    loop {
        let ev = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            ev = rx.recv() => match ev { Some(e) => e, None => break },
            _ = check.tick() => {
                let up = stream.session.is_connected() && subscribed;
                if subscribed || Instant::now() >= first_attempt_over {
                    deps.faults.set(FaultClass::USER_STREAM_DOWN, !up, "user data stream not subscribed");
                }
                continue;
            }
        };
        let started = Instant::now();
        // Time spent waiting (journal writes, room in the engine's inbox): not own work.
        let mut waited = Duration::ZERO;
        let mut measured = true;
        let ok = match ev {
            UserEvent::Order(u) => {
                let ok = on_order(&deps, u, &mut waited).await;
                let decided = deps.clock.now();
                latency.observe(decided.0.saturating_sub(u.ts_local.0) as f64 * 1e-9);
                ok
            }
            UserEvent::Balances(list) => {
                let mut ok = true;
                for b in list {
                    ok &= send(&deps, Event::Balance(b), &mut waited).await;
                }
                ok
            }
            UserEvent::BalanceDelta { asset, delta, .. } => {
                tracing::info!(asset = %asset, delta = %delta, "balance changed outside trading");
                true
            }
            UserEvent::ResyncNeeded(reason) => {
                subscribed = true;
                deps.faults.clear(FaultClass::USER_STREAM_DOWN);
                // REST round trips, not a unit of work: not held against the budget.
                measured = false;
                resync(&deps, reason).await
            }
        };
        if measured {
            overrun.record(started.elapsed().saturating_sub(waited));
        }
        if !ok {
            break;
        }
    }
    stream.session.shutdown();
    let _ = stream.task.await;
}

/// Hands `ev` to the engine, waiting for room (backpressure, counted into `waited`); false
/// when the engine is gone.
async fn send(deps: &UserDataDeps, ev: Event, waited: &mut Duration) -> bool {
    let t = Instant::now();
    let ok = deps.events.send(ev).await.is_ok();
    *waited += t.elapsed();
    ok
}

/// Journals one execution report and forwards it; false when the engine is gone. Time spent
/// in the journal and waiting for the engine is added to `waited`.
async fn on_order(deps: &UserDataDeps, u: OrderUpdate, waited: &mut Duration) -> bool {
    let t = Instant::now();
    let recorded = deps.journal.call(move |j| j.record_update(&u)).await;
    *waited += t.elapsed();
    let forward = match recorded {
        Ok(r) => {
            if r.fill_new {
                deps.metrics.fills(u.symbol).inc();
            }
            // Forward unless it is a replayed report whose fill is already booked (nothing new).
            u.fill.is_none() || r.fill_new
        }
        // Not ours (another bot on the account): the engine counts it and ignores it.
        Err(JournalCallError::Journal(JournalError::UnknownOrder(_))) => true,
        Err(e) => {
            tracing::error!(error = %e, "journal record update failed");
            deps.faults.raise(FaultClass::JOURNAL_ERROR, format_args!("record update: {e}"));
            true
        }
    };
    if forward {
        send(deps, Event::Order(u), waited).await
    } else {
        true
    }
}

/// Re-fetches open orders (and queries journal-open orders the exchange no longer lists) and
/// balances; false when the engine is gone.
async fn resync(deps: &UserDataDeps, reason: ResyncReason) -> bool {
    tracing::info!(?reason, "user data subscribed; resyncing orders and balances");
    // The resync is not measured against the budget (see `run`).
    let mut waited = Duration::ZERO;
    let open = match deps.gateway.open_orders(None).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "open orders fetch failed during resync");
            Vec::new()
        }
    };
    let listed: HashSet<ClientOrderId> = open.iter().map(|u| u.client_id).collect();
    for u in open {
        if !on_order(deps, u, &mut waited).await {
            return false;
        }
    }
    if reason != ResyncReason::Initial {
        let journal_open = deps.journal.call(|j| j.open_orders()).await.unwrap_or_default();
        for o in
            journal_open.iter().filter(|o| o.status.is_open() && !listed.contains(&o.client_id))
        {
            match deps.gateway.query(o.symbol, OrderRef::Client(o.client_id)).await {
                Ok(u) => {
                    if !on_order(deps, u, &mut waited).await {
                        return false;
                    }
                }
                Err(e) => {
                    tracing::warn!(client_id = %o.client_id, error = %e, "resync query failed")
                }
            }
        }
    }
    // Fills that happened while unsubscribed: their execution reports are gone for good, but
    // myTrades has them. Order states were refreshed above, so each update carries the
    // journal's current cumulative quantity and the engine only books what is new.
    let symbols = deps.symbols.clone();
    match catch_up_fills(&deps.rest, &deps.journal, &symbols, deps.clock.now()).await {
        Ok(caught) => {
            if !caught.updates.is_empty() {
                tracing::info!(
                    fills = caught.updates.len(),
                    "recovered fills missed while unsubscribed"
                );
            }
            for u in caught.updates {
                deps.metrics.fills(u.symbol).inc();
                if deps.events.send(Event::Order(u)).await.is_err() {
                    return false;
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "fill catch-up failed during resync");
            if let CatchUpError::Journal(je) = &e {
                deps.faults.raise(FaultClass::JOURNAL_ERROR, format_args!("fill catch-up: {je}"));
            }
        }
    }
    match deps.rest.account().await {
        Ok(balances) => {
            for b in balances {
                if deps.events.send(Event::Balance(b)).await.is_err() {
                    return false;
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "account fetch failed during resync"),
    }
    true
}

/// What [`catch_up_fills`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CaughtUp {
    /// One update per fill that was missing from the journal (now journaled), in trade order:
    /// the order as the journal knows it, carrying the fill, ready for the engine.
    pub updates: Vec<OrderUpdate>,
    /// Trades of orders the journal does not know by exchange id: other bots' on a shared
    /// account, or ours whose acknowledgement is still in flight (its report brings the fill).
    pub unmatched: usize,
}

/// Why a fill catch-up stopped.
#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    /// `myTrades` failed.
    #[error("fetching myTrades: {0}")]
    Exchange(#[from] BinanceError),
    /// The journal failed.
    #[error("journal: {0}")]
    Journal(#[from] JournalCallError),
}

/// Fetches, per symbol, the account's trades after the last journaled trade id (`myTrades`
/// with `fromId`, paged) and journals those of our orders the journal lacks. Idempotent: a fill
/// is journaled once per `(symbol, trade id)`, so a fill that also arrives by execution report
/// (or a second catch-up) is not counted twice.
pub async fn catch_up_fills(
    rest: &RestClient,
    journal: &SharedJournal,
    symbols: &[Symbol],
    now: UnixNanos,
) -> Result<CaughtUp, CatchUpError> {
    let mut out = CaughtUp::default();
    for &symbol in symbols {
        let last = journal.call(move |j| j.last_trade_id(&symbol)).await?;
        let mut from = last.map(|t| TradeId(t.0.saturating_add(1)));
        loop {
            let page = rest.my_trades(symbol, from, MY_TRADES_PAGE).await?;
            let full = page.len() >= usize::from(MY_TRADES_PAGE);
            let next = page.last().map(|t| TradeId(t.fill.trade_id.0.saturating_add(1)));
            let (updates, unmatched) = journal.call(move |j| record_trades(j, &page, now)).await?;
            out.updates.extend(updates);
            out.unmatched += unmatched;
            match next {
                Some(n) if full => from = Some(n),
                _ => break,
            }
        }
    }
    Ok(out)
}

/// Journals the trades of journaled orders; returns the updates of new fills and the number of
/// trades whose order the journal does not know by exchange id.
fn record_trades(
    j: &mut Journal,
    trades: &[MyTrade],
    now: UnixNanos,
) -> Result<(Vec<OrderUpdate>, usize), JournalError> {
    let mut updates = Vec::new();
    let mut unmatched = 0;
    for t in trades {
        let Some(o) = j.order_by_exchange_id(&t.symbol, t.order_id)? else {
            unmatched += 1;
            continue;
        };
        let rec =
            FillRecord { symbol: t.symbol, client_id: o.client_id, side: o.side, fill: t.fill };
        if j.record_fill(&rec)? {
            updates.push(OrderUpdate {
                symbol: t.symbol,
                client_id: o.client_id,
                order_id: Some(t.order_id),
                side: o.side,
                status: o.status,
                orig_qty: o.qty,
                cum_qty: o.cum_qty,
                cum_quote: o.cum_quote,
                fill: Some(t.fill),
                ts_exchange: t.fill.ts_exchange,
                ts_local: now,
            });
        }
    }
    Ok((updates, unmatched))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kestrel_model::{Fill, OrderId, OrderRequest, OrderStatus, OrderType, Qty, Side};

    fn q(s: &str) -> Qty {
        s.parse().unwrap()
    }

    fn trade(order_id: u64, trade_id: u64, qty: &str) -> MyTrade {
        MyTrade {
            symbol: "BTCUSDT".parse().unwrap(),
            order_id: OrderId(order_id),
            side: Side::Buy,
            fill: Fill {
                trade_id: TradeId(trade_id),
                price: "100".parse().unwrap(),
                qty: q(qty),
                commission: "0.0001".parse().unwrap(),
                commission_asset: Some("BTC".parse().unwrap()),
                is_maker: true,
                ts_exchange: UnixNanos(5),
            },
        }
    }

    /// A journal holding one acknowledged order `kst-1` (exchange id 7, 1 BTC).
    fn journal_with_order(dir: &std::path::Path) -> Journal {
        let mut j = Journal::open(&dir.join("j.sqlite")).unwrap();
        let req = OrderRequest {
            symbol: "BTCUSDT".parse().unwrap(),
            client_id: "kst-1".parse().unwrap(),
            side: Side::Buy,
            kind: OrderType::LimitMaker,
            time_in_force: None,
            price: Some("100".parse().unwrap()),
            qty: q("1"),
            ts_decided: UnixNanos(1),
        };
        j.record_intent(&req).unwrap();
        j.record_ack(&OrderUpdate {
            symbol: req.symbol,
            client_id: req.client_id,
            order_id: Some(OrderId(7)),
            side: Side::Buy,
            status: OrderStatus::New,
            orig_qty: q("1"),
            cum_qty: Qty::ZERO,
            cum_quote: kestrel_model::Notional::ZERO,
            fill: None,
            ts_exchange: UnixNanos(2),
            ts_local: UnixNanos(2),
        })
        .unwrap();
        j
    }

    /// Catching up journals our missing fills once, skips other orders' trades, and hands the
    /// engine one update per new fill carrying the journal's view of the order.
    #[test]
    fn record_trades_journals_missing_fills_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = journal_with_order(dir.path());
        let symbol: Symbol = "BTCUSDT".parse().unwrap();
        assert_eq!(j.last_trade_id(&symbol).unwrap(), None);
        // TC0: two fills of ours and one of an order the journal does not know.
        let page = [trade(7, 10, "0.4"), trade(99, 11, "1"), trade(7, 12, "0.6")];
        let (updates, unmatched) = record_trades(&mut j, &page, UnixNanos(9)).unwrap();
        assert_eq!(unmatched, 1);
        let got: Vec<_> = updates
            .iter()
            .map(|u| (u.client_id.as_str().to_owned(), u.fill.map(|f| f.trade_id.0), u.order_id))
            .collect();
        assert_eq!(
            got,
            vec![
                ("kst-1".into(), Some(10), Some(OrderId(7))),
                ("kst-1".into(), Some(12), Some(OrderId(7)))
            ]
        );
        assert_eq!(j.all_fills().unwrap().len(), 2);
        assert_eq!(j.last_trade_id(&symbol).unwrap(), Some(TradeId(12)));
        // TC1: the same page again (a second resync, or reports that arrived meanwhile):
        // nothing new.
        let (updates, unmatched) = record_trades(&mut j, &page, UnixNanos(10)).unwrap();
        assert!(updates.is_empty(), "{updates:?}");
        assert_eq!(unmatched, 1);
        assert_eq!(j.all_fills().unwrap().len(), 2);
        // The journal's position counts each fill once.
        assert_eq!(j.positions().unwrap()[0].base, q("1"));
    }
}
