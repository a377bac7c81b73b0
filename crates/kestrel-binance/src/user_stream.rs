//! User data over the WebSocket API (user-data-stream.md; listenKey was removed on
//! 2026-02-20, SPEC.md §9).
//!
//! A dedicated [`WsApiClient`] session subscribes with `userDataStream.subscribe.signature`
//! (any key type) or `session.logon` + `userDataStream.subscribe` (Ed25519 only). Events are
//! parsed into model types and sent on a bounded channel (backpressure: a slow consumer slows
//! the socket reader; nothing is dropped).
//!
//! Interruption (scenario S10): on disconnect, `serverShutdown` or `eventStreamTerminated` the
//! stream reconnects and resubscribes, and only *after* the new subscription is confirmed emits
//! [`UserEvent::ResyncNeeded`]. The caller then re-fetches open orders and balances by REST:
//! anything that happened while unsubscribed is in that snapshot, and anything after it arrives
//! as events, so no fill is missed. The first subscription also emits `ResyncNeeded`
//! (reason [`ResyncReason::Initial`]).

use std::time::Duration;

use kestrel_model::{Asset, Balance, Clock, Fill, Notional, OrderUpdate, TradeId, UnixNanos};
use serde_json::Map;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::BinanceError;
use crate::parse;
use crate::rate_limit::Cost;
use crate::wire;
use crate::ws_api::{SessionEvent, WsApiClient, WsApiConfig};

/// How to authenticate the subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStreamAuth {
    /// `userDataStream.subscribe.signature` (HMAC or Ed25519).
    SubscribeSignature,
    /// `session.logon` then `userDataStream.subscribe` (Ed25519 keys only).
    Logon,
}

/// Why the caller must re-fetch orders and balances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncReason {
    /// First subscription of this process.
    Initial,
    /// The connection dropped and was re-established.
    Reconnected,
    /// The exchange announced `serverShutdown`.
    ServerShutdown,
    /// The exchange ended the subscription (`eventStreamTerminated`).
    StreamTerminated,
}

/// What the user stream delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserEvent {
    /// An `executionReport`: the order's new state, with its fill for `x = TRADE`.
    Order(OrderUpdate),
    /// `outboundAccountPosition`: balances that may have changed.
    Balances(Vec<Balance>),
    /// `balanceUpdate`: a deposit, withdrawal or transfer of `delta`.
    BalanceDelta {
        /// Asset.
        asset: Asset,
        /// Signed change.
        delta: Notional,
        /// Clear time.
        ts_exchange: UnixNanos,
    },
    /// The subscription is (again) live; orders and balances must be re-fetched by REST.
    ResyncNeeded(ResyncReason),
}

/// User stream settings.
#[derive(Debug, Clone)]
pub struct UserStreamConfig {
    /// The WebSocket API session settings (URL, credentials, clock offset, limiter).
    pub ws: WsApiConfig,
    /// How to subscribe.
    pub auth: UserStreamAuth,
    /// Delay before retrying a failed subscription.
    pub resubscribe_delay: Duration,
}

/// A running user stream.
#[derive(Debug)]
pub struct UserStream {
    /// The session it runs on (exposed for status and tests).
    pub session: WsApiClient,
    /// The task; ends when cancelled or the receiver is dropped.
    pub task: JoinHandle<()>,
}

/// Starts the user stream; events go to `out`.
pub fn start(
    cfg: UserStreamConfig,
    out: mpsc::Sender<UserEvent>,
    cancel: CancellationToken,
) -> UserStream {
    let (ev_tx, ev_rx) = mpsc::channel(1024);
    let session = WsApiClient::start(cfg.ws.clone(), Some(ev_tx), cancel.clone());
    let task = tokio::spawn(run(session.clone(), cfg, ev_rx, out, cancel));
    UserStream { session, task }
}

async fn run(
    session: WsApiClient,
    cfg: UserStreamConfig,
    mut events: mpsc::Receiver<SessionEvent>,
    out: mpsc::Sender<UserEvent>,
    cancel: CancellationToken,
) {
    let clock = cfg.ws.clock.clone();
    let mut next_reason = ResyncReason::Initial;
    let mut subscription: Option<u64> = None;
    loop {
        let ev = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            ev = events.recv() => match ev { Some(e) => e, None => break },
        };
        match ev {
            SessionEvent::Connected => {
                subscription = subscribe_until_done(&session, &cfg, &cancel).await;
                if subscription.is_none() {
                    break;
                }
                if out.send(UserEvent::ResyncNeeded(next_reason)).await.is_err() {
                    break;
                }
                next_reason = ResyncReason::Reconnected;
            }
            SessionEvent::Disconnected => {
                subscription = None;
                next_reason = ResyncReason::Reconnected;
            }
            SessionEvent::Event { subscription_id, json } => {
                match handle_event(&json, subscription_id, subscription, clock.as_ref()) {
                    Ok(Handled::Emit(e)) => {
                        if out.send(*e).await.is_err() {
                            break;
                        }
                    }
                    Ok(Handled::Shutdown) => {
                        tracing::warn!("user stream: serverShutdown; reconnecting");
                        next_reason = ResyncReason::ServerShutdown;
                        session.reconnect().await;
                    }
                    Ok(Handled::Terminated) => {
                        tracing::warn!("user stream: eventStreamTerminated; resubscribing");
                        subscription = subscribe_until_done(&session, &cfg, &cancel).await;
                        if subscription.is_none() {
                            break;
                        }
                        if out
                            .send(UserEvent::ResyncNeeded(ResyncReason::StreamTerminated))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                    Ok(Handled::Ignore) => {}
                    Err(e) => tracing::warn!(error = %e, "user stream: event skipped"),
                }
            }
        }
    }
    session.shutdown();
}

/// Subscribes, retrying after `resubscribe_delay` until it works, the connection drops (the
/// next `Connected` retries) or the stream is cancelled (`None`).
async fn subscribe_until_done(
    session: &WsApiClient,
    cfg: &UserStreamConfig,
    cancel: &CancellationToken,
) -> Option<u64> {
    loop {
        match subscribe(session, cfg.auth).await {
            Ok(id) => {
                tracing::info!(subscription_id = id, "user data subscribed");
                return Some(id);
            }
            Err(e) => {
                tracing::warn!(error = %e, "user data subscription failed; retrying");
                if matches!(e, BinanceError::Sign(_)) {
                    return None;
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return None,
            () = tokio::time::sleep(cfg.resubscribe_delay) => {}
        }
    }
}

/// Performs the subscription handshake; returns the `subscriptionId`.
pub async fn subscribe(session: &WsApiClient, auth: UserStreamAuth) -> Result<u64, BinanceError> {
    let r = match auth {
        UserStreamAuth::SubscribeSignature => {
            let params = session.sign(Map::new(), false)?;
            session.request("userDataStream.subscribe.signature", params, Cost::weight(2)).await?
        }
        UserStreamAuth::Logon => {
            let params = session.sign(Map::new(), false)?;
            session.request("session.logon", params, Cost::weight(2)).await?;
            session.request("userDataStream.subscribe", Map::new(), Cost::weight(2)).await?
        }
    };
    let s: wire::ws_api::SubscribeResult = serde_json::from_str(&r.result)
        .map_err(BinanceError::decode("userDataStream.subscribe result"))?;
    Ok(s.subscription_id)
}

/// What one event means for the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Handled {
    /// Deliver this.
    Emit(Box<UserEvent>),
    /// `serverShutdown`: reconnect.
    Shutdown,
    /// `eventStreamTerminated` of our subscription: resubscribe.
    Terminated,
    /// Not ours or not relevant.
    Ignore,
}

/// Parses one pushed event. Events of another subscription id than ours are ignored.
pub fn handle_event(
    json: &str,
    subscription_id: Option<u64>,
    ours: Option<u64>,
    clock: &dyn Clock,
) -> Result<Handled, BinanceError> {
    let ev: wire::user::UserEvent<'_> =
        serde_json::from_str(json).map_err(BinanceError::decode("user data event"))?;
    let mine = match (subscription_id, ours) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    Ok(match ev {
        wire::user::UserEvent::ServerShutdown { .. } => Handled::Shutdown,
        _ if !mine => Handled::Ignore,
        wire::user::UserEvent::ExecutionReport(r) => {
            Handled::Emit(Box::new(UserEvent::Order(execution_report(&r, clock.now())?)))
        }
        wire::user::UserEvent::AccountPosition(p) => {
            Handled::Emit(Box::new(UserEvent::Balances(account_position(&p)?)))
        }
        wire::user::UserEvent::BalanceUpdate(b) => {
            Handled::Emit(Box::new(UserEvent::BalanceDelta {
                asset: parse::asset("balanceUpdate", &b.asset)?,
                delta: b.delta,
                ts_exchange: parse::millis(b.clear_time),
            }))
        }
        wire::user::UserEvent::EventStreamTerminated { .. } => Handled::Terminated,
        wire::user::UserEvent::Other => Handled::Ignore,
    })
}

/// `executionReport` → [`OrderUpdate`]. The order's own client id is `C` for cancels (then
/// `c` is the cancel request's id), `c` otherwise. `x = TRADE` carries the fill.
pub fn execution_report(
    r: &wire::user::ExecutionReport<'_>,
    ts_local: UnixNanos,
) -> Result<OrderUpdate, BinanceError> {
    const CTX: &str = "executionReport";
    let cid =
        r.orig_client_order_id.as_deref().filter(|s| !s.is_empty()).unwrap_or(&r.client_order_id);
    let fill = if r.execution_type == "TRADE" {
        Some(Fill {
            trade_id: TradeId(
                u64::try_from(r.trade_id)
                    .map_err(|_| parse::invalid(CTX, format!("trade id {}", r.trade_id)))?,
            ),
            price: r.last_price,
            qty: r.last_qty,
            commission: r.commission,
            commission_asset: match r.commission_asset.as_deref() {
                Some(a) => parse::opt_asset(CTX, a)?,
                None => None,
            },
            is_maker: r.is_maker,
            ts_exchange: parse::millis(r.transaction_time),
        })
    } else {
        None
    };
    Ok(OrderUpdate {
        symbol: parse::symbol(CTX, &r.symbol)?,
        client_id: parse::client_id(CTX, cid)?,
        order_id: Some(parse::order_id(CTX, r.order_id)?),
        side: parse::side(CTX, &r.side)?,
        status: parse::status(CTX, &r.order_status)?,
        orig_qty: r.quantity,
        cum_qty: r.cum_qty,
        cum_quote: r.cum_quote,
        fill,
        ts_exchange: parse::millis(r.event_time),
        ts_local,
    })
}

/// `outboundAccountPosition` → balances.
pub fn account_position(p: &wire::user::AccountPosition<'_>) -> Result<Vec<Balance>, BinanceError> {
    let ts = parse::millis(p.event_time);
    p.balances
        .iter()
        .map(|b| {
            Ok(Balance {
                asset: parse::asset("outboundAccountPosition", &b.asset)?,
                free: b.free,
                locked: b.locked,
                ts_exchange: ts,
            })
        })
        .collect()
}
