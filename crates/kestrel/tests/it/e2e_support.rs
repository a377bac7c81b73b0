//! Helpers shared by the end-to-end tests: a simulator, a REST client on its demo account, and
//! the comparison of the journal with the exchange.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use kestrel::journal::Journal;
use kestrel_binance::endpoints::Endpoints;
use kestrel_binance::error::CODE_NO_SUCH_ORDER;
use kestrel_binance::rest::{MyTrade, OrderRef, RestClient, RestConfig};
use kestrel_binance::sign;
use kestrel_model::{Notional, OrderUpdate, Side, Symbol, TradeId};
use kestrel_sim::SimHandle;

pub const SYMBOLS: [&str; 3] = ["BTCUSDT", "ETHUSDT", "BNBUSDT"];

/// Initial demo-account balances of the default market (asset, amount).
pub const INITIAL: [(&str, &str); 3] = [("BTC", "1"), ("ETH", "10"), ("BNB", "100")];

pub fn sym(s: &str) -> Symbol {
    s.parse().unwrap()
}

pub async fn start_sim() -> SimHandle {
    kestrel_sim::Sim::start(kestrel::demo::demo_sim_config(), "127.0.0.1:0").await.unwrap()
}

/// A simulator whose request-weight budget allows dozens of restarts a minute (each start-up
/// spends a few hundred weight on exchangeInfo, openOrders, myTrades, account and snapshots;
/// at Binance's 6000/min the bot would rightly wait for the next window).
pub async fn start_sim_for_restarts() -> SimHandle {
    let mut cfg = kestrel::demo::demo_sim_config();
    cfg.limits.request_weight_per_minute = 600_000;
    kestrel_sim::Sim::start(cfg, "127.0.0.1:0").await.unwrap()
}

/// A REST client on the demo account that has loaded the simulator's rate limits (from
/// `exchangeInfo`, like the bot at start-up): otherwise the IP-wide weight the simulator reports
/// (every bot process of the test counts) is judged against Binance's default 6000/min and the
/// client waits for a whole window.
pub async fn rest_client(sim: &SimHandle) -> RestClient {
    let rest = unsynced_rest_client(sim);
    rest.exchange_info(&[]).await.unwrap();
    rest
}

/// A REST client on the simulator's demo account (HMAC demo key), exchange limits not loaded.
pub fn unsynced_rest_client(sim: &SimHandle) -> RestClient {
    let endpoints = Endpoints::from_base(
        sim.rest_url().parse().unwrap(),
        sim.ws_stream_url().parse().unwrap(),
        sim.ws_api_url().parse().unwrap(),
    );
    let creds = sign::Credentials::new(
        kestrel_sim::config::DEMO_HMAC_API_KEY,
        sign::Secret::hmac(kestrel_sim::config::DEMO_HMAC_SECRET),
    );
    let mut cfg = RestConfig::new(endpoints).with_credentials(creds);
    cfg.request_timeout = Duration::from_secs(5);
    RestClient::new(cfg).unwrap()
}

/// Every trade of the demo account on `symbol`, paging with `fromId`.
pub async fn all_trades(rest: &RestClient, symbol: Symbol) -> Vec<MyTrade> {
    let mut out: Vec<MyTrade> = Vec::new();
    let mut from: Option<TradeId> = Some(TradeId(0));
    loop {
        let page = rest.my_trades(symbol, from, 1000).await.unwrap();
        let n = page.len();
        let last = page.last().map(|t| t.fill.trade_id);
        for t in page {
            if !out.iter().any(|o| o.fill.trade_id == t.fill.trade_id) {
                out.push(t);
            }
        }
        match last {
            Some(id) if n == 1000 => from = Some(TradeId(id.0 + 1)),
            _ => break,
        }
    }
    out
}

pub async fn open_orders(rest: &RestClient) -> Vec<OrderUpdate> {
    rest.open_orders(None).await.unwrap()
}

/// Asserts that every open order at the exchange is known to the journal (the journal is
/// opened, read and closed: the bot must not be running).
pub async fn assert_open_orders_known(rest: &RestClient, journal: &Path) {
    let open = open_orders(rest).await;
    let j = Journal::open(journal).unwrap();
    for o in &open {
        let known = j.order(&o.client_id).unwrap();
        assert!(
            known.is_some(),
            "open order {} at the exchange is not in the journal",
            o.client_id
        );
    }
}

/// No duplicate orders at the exchange (the journal must not be in use): every journaled order
/// with an exchange order id is the exchange's one order for that client id, no two journal rows
/// share an exchange order, journaled orders without an id are unknown to the exchange, and the
/// exchange accepted exactly as many orders as the journal holds ids for (so no order reached
/// it that the journal does not know, and no client id was sent twice).
pub async fn assert_no_duplicate_orders(sim: &SimHandle, rest: &RestClient, journal: &Path) {
    let orders = Journal::open(journal).unwrap().all_orders().unwrap();
    let mut exchange_ids = HashSet::new();
    for o in &orders {
        let answer = rest.query_order(o.symbol, OrderRef::Client(o.client_id)).await;
        match (o.order_id, answer) {
            (Some(id), Ok(x)) => {
                assert!(
                    exchange_ids.insert((o.symbol, id)),
                    "exchange order {id:?} journaled under two client ids"
                );
                assert_eq!(
                    x.order_id,
                    Some(id),
                    "client id {} names another exchange order than the journal's: sent twice",
                    o.client_id
                );
            }
            (None, Err(e)) if e.code() == Some(CODE_NO_SUCH_ORDER) => {}
            (None, Ok(x)) => panic!(
                "{} reached the exchange (order {:?}, {:?}) but the journal has no id for it ({:?})",
                o.client_id, x.order_id, x.status, o.status
            ),
            (_, Err(e)) => panic!("querying {}: {e}", o.client_id),
        }
    }
    assert_eq!(
        exchange_ids.len() as u64,
        sim.stats().orders_accepted,
        "orders accepted at the exchange != journaled orders with an exchange id"
    );
}

/// The full consistency check after a clean stop: fills in the journal == trades at the
/// exchange (by trade id), one exchange order per client id, open orders known, and positions
/// (journal fills) == balance changes at the exchange (commission in the base asset counted).
pub async fn assert_journal_matches_exchange(
    sim: &SimHandle,
    rest: &RestClient,
    journal: &Path,
) -> usize {
    let j = Journal::open(journal).unwrap();
    let fills = j.all_fills().unwrap();
    let journal_trades: HashSet<(Symbol, u64)> =
        fills.iter().map(|f| (f.symbol, f.fill.trade_id.0)).collect();
    assert_eq!(journal_trades.len(), fills.len(), "a fill is journaled twice");
    let mut exchange_trades = HashSet::new();
    let mut order_ids = HashSet::new();
    for s in SYMBOLS {
        for t in all_trades(rest, sym(s)).await {
            exchange_trades.insert((t.symbol, t.fill.trade_id.0));
            order_ids.insert(t.order_id);
        }
    }
    let missing: Vec<_> = exchange_trades.difference(&journal_trades).collect();
    if !missing.is_empty() {
        // Say which orders they belong to and what the journal knows about them.
        let mut why = String::new();
        for (symbol, trade) in &missing {
            let t =
                all_trades(rest, *symbol).await.into_iter().find(|t| t.fill.trade_id.0 == *trade);
            let Some(t) = t else { continue };
            let x = rest.query_order(*symbol, OrderRef::Exchange(t.order_id)).await;
            let cid = x.as_ref().map(|u| u.client_id).ok();
            let jo = cid.and_then(|c| j.order(&c).unwrap());
            let events = cid.map(|c| j.order_events(&c).unwrap()).unwrap_or_default();
            why.push_str(&format!(
                "\n  {symbol} trade {trade} of order {:?}: exchange {x:?}\n    journal {jo:?}\n    events {events:?}",
                t.order_id
            ));
        }
        panic!("exchange trades missing from the journal: {missing:?}{why}");
    }
    let extra: Vec<_> = journal_trades.difference(&exchange_trades).collect();
    assert!(extra.is_empty(), "journal fills the exchange does not know: {extra:?}");
    // Every traded exchange order belongs to exactly one journaled client id.
    for oid in &order_ids {
        let owners: Vec<_> = fills
            .iter()
            .filter(|f| j.order(&f.client_id).unwrap().and_then(|o| o.order_id) == Some(*oid))
            .map(|f| f.client_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        assert!(owners.len() <= 1, "exchange order {oid:?} maps to several client ids: {owners:?}");
    }
    for o in open_orders(rest).await {
        assert!(
            j.order(&o.client_id).unwrap().is_some(),
            "open order {} unknown to the journal",
            o.client_id
        );
    }
    // Positions: journal fills vs balance deltas.
    let balances = sim.balances("demo").unwrap();
    for (asset, initial) in INITIAL {
        let symbol = sym(&format!("{asset}USDT"));
        let mut expected = Notional::ZERO;
        for f in fills.iter().filter(|f| f.symbol == symbol) {
            let q = Notional::from_mantissa(i128::from(f.fill.qty.mantissa()) * 100_000_000);
            expected = match f.side {
                Side::Buy => expected.checked_add(q).unwrap(),
                Side::Sell => expected.checked_sub(q).unwrap(),
            };
            if f.fill.commission_asset.map(|a| a.as_str() == asset).unwrap_or(false) {
                expected = expected.checked_sub(f.fill.commission).unwrap();
            }
        }
        let (free, locked) =
            balances.get(asset).copied().unwrap_or((Notional::ZERO, Notional::ZERO));
        let now = free.checked_add(locked).unwrap();
        let initial: Notional = initial.parse().unwrap();
        assert_eq!(
            now.checked_sub(initial).unwrap(),
            expected,
            "{asset}: exchange balance change != journal position"
        );
    }
    fills.len()
}
