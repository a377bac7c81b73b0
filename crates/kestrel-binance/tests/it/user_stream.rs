//! User data over the WebSocket API against `kestrel-sim`: subscription by signature (HMAC)
//! and by `session.logon` (Ed25519), execution reports and balances as model types, and the
//! resubscribe + resync signal after an interruption (S10, S12).

use std::time::Duration;

use kestrel_binance::rest::OrderRef;
use kestrel_binance::user_stream::{
    self, ResyncReason, UserEvent, UserStreamAuth, UserStreamConfig,
};
use kestrel_binance::ws_api::WsApiConfig;
use kestrel_model::OrderStatus;
use kestrel_sim::{Fault, SimHandle};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::rest::{btc, cid, ed25519_credentials, rest, resting_buy, sim};

fn config(sim: &SimHandle, auth: UserStreamAuth) -> UserStreamConfig {
    let r = rest(sim);
    let mut ws = WsApiConfig::sharing(Url::parse(&sim.ws_api_url()).unwrap(), &r);
    ws.reconnect_min = Duration::from_millis(20);
    if auth == UserStreamAuth::Logon {
        ws.credentials = Some(std::sync::Arc::new(ed25519_credentials()));
    }
    UserStreamConfig { ws, auth, resubscribe_delay: Duration::from_millis(50) }
}

async fn next(rx: &mut mpsc::Receiver<UserEvent>) -> UserEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("user event in time")
        .expect("stream open")
}

/// Skips balance events until an order update for `id` with `status`.
async fn order(rx: &mut mpsc::Receiver<UserEvent>, id: &str, status: OrderStatus) {
    loop {
        match next(rx).await {
            UserEvent::Order(u) if u.client_id == cid(id) && u.status == status => return,
            UserEvent::ResyncNeeded(r) => panic!("unexpected resync {r:?}"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn user_stream_by_signature_delivers_orders_and_balances() {
    let sim = sim().await;
    let (tx, mut rx) = mpsc::channel(64);
    let cancel = CancellationToken::new();
    let us =
        user_stream::start(config(&sim, UserStreamAuth::SubscribeSignature), tx, cancel.clone());
    assert_eq!(next(&mut rx).await, UserEvent::ResyncNeeded(ResyncReason::Initial));
    let r = rest(&sim);
    r.place_order(&resting_buy("us-1")).await.unwrap();
    order(&mut rx, "us-1", OrderStatus::New).await;
    // The order locked USDT: a balance event follows.
    let mut saw_balance = false;
    r.cancel_order(btc(), OrderRef::Client(cid("us-1"))).await.unwrap();
    loop {
        match next(&mut rx).await {
            UserEvent::Balances(b) => saw_balance |= b.iter().any(|b| b.asset.as_str() == "USDT"),
            UserEvent::Order(u) if u.status == OrderStatus::Canceled => {
                assert_eq!(u.client_id, cid("us-1"));
                break;
            }
            _ => {}
        }
    }
    let _ = tokio::time::timeout(Duration::from_millis(200), async {
        while !saw_balance {
            if let Some(UserEvent::Balances(b)) = rx.recv().await {
                saw_balance = b.iter().any(|b| b.asset.as_str() == "USDT");
            }
        }
    })
    .await;
    assert!(saw_balance);
    cancel.cancel();
    us.task.await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn user_stream_with_ed25519_by_logon_and_by_signature() {
    // TC0: session.logon + userDataStream.subscribe; TC1: subscribe.signature with Ed25519.
    for (i, auth) in
        [UserStreamAuth::Logon, UserStreamAuth::SubscribeSignature].into_iter().enumerate()
    {
        let sim = sim().await;
        let mut cfg = config(&sim, auth);
        cfg.ws.credentials = Some(std::sync::Arc::new(ed25519_credentials()));
        let (tx, mut rx) = mpsc::channel(64);
        let _us = user_stream::start(cfg, tx, CancellationToken::new());
        assert_eq!(next(&mut rx).await, UserEvent::ResyncNeeded(ResyncReason::Initial), "TC{i}");
        rest(&sim).place_order(&resting_buy("ed-1")).await.unwrap();
        order(&mut rx, "ed-1", OrderStatus::New).await;
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn scenario_s10_user_data_resubscribes_after_interruption_and_signals_resync() {
    let sim = sim().await;
    let (tx, mut rx) = mpsc::channel(64);
    let _us = user_stream::start(
        config(&sim, UserStreamAuth::SubscribeSignature),
        tx,
        CancellationToken::new(),
    );
    assert_eq!(next(&mut rx).await, UserEvent::ResyncNeeded(ResyncReason::Initial));
    let r = rest(&sim);

    // TC0: the connection drops abruptly. An order placed while we are away is not seen as an
    // event, but the resync signal comes after resubscription, and the REST snapshot taken
    // then has it: nothing is missed.
    sim.inject(Fault::DropConnections { conn_id: None }).unwrap();
    let placed_while_down = r.place_order(&resting_buy("s10-1")).await.unwrap();
    loop {
        match next(&mut rx).await {
            UserEvent::ResyncNeeded(reason) => {
                assert_eq!(reason, ResyncReason::Reconnected);
                break;
            }
            // The event may still have arrived before the drop took effect.
            UserEvent::Order(_) | UserEvent::Balances(_) | UserEvent::BalanceDelta { .. } => {}
        }
    }
    let open = r.open_orders(Some(btc())).await.unwrap();
    assert!(open.iter().any(|u| u.order_id == placed_while_down.update.order_id));
    // Events flow again on the new subscription.
    r.cancel_order(btc(), OrderRef::Client(cid("s10-1"))).await.unwrap();
    order(&mut rx, "s10-1", OrderStatus::Canceled).await;

    // TC1: serverShutdown (S12): reconnect at once, resubscribe, resync.
    sim.inject(Fault::ServerShutdown { conn_id: None }).unwrap();
    loop {
        if let UserEvent::ResyncNeeded(reason) = next(&mut rx).await {
            assert!(
                matches!(reason, ResyncReason::ServerShutdown | ResyncReason::Reconnected),
                "{reason:?}"
            );
            break;
        }
    }
    r.place_order(&resting_buy("s10-2")).await.unwrap();
    order(&mut rx, "s10-2", OrderStatus::New).await;
    sim.shutdown().await;
}

#[tokio::test]
async fn scenario_s04_silent_ws_api_connection_is_detected_and_resubscribed() {
    let sim = sim().await;
    let mut cfg = config(&sim, UserStreamAuth::SubscribeSignature);
    cfg.ws.ping_interval = Duration::from_millis(50);
    cfg.ws.idle_timeout = Duration::from_millis(300);
    let (tx, mut rx) = mpsc::channel(64);
    let _us = user_stream::start(cfg, tx, CancellationToken::new());
    assert_eq!(next(&mut rx).await, UserEvent::ResyncNeeded(ResyncReason::Initial));
    // The socket stays open but nothing comes back, not even pongs.
    sim.inject(Fault::HeartbeatLoss { conn_id: None }).unwrap();
    loop {
        if let UserEvent::ResyncNeeded(reason) = next(&mut rx).await {
            assert_eq!(reason, ResyncReason::Reconnected);
            break;
        }
    }
    rest(&sim).place_order(&resting_buy("hb-1")).await.unwrap();
    order(&mut rx, "hb-1", OrderStatus::New).await;
    sim.shutdown().await;
}
