//! The pipelined execution gateway (`kestrel::exec`) against kestrel-sim through the real REST
//! transport and a real journal: requests overlap up to `max_in_flight`, actions on one order
//! keep their order, `CancelAll` is a per-symbol barrier, and closing the action channel loses
//! no result. Slow exchange answers come from the simulator's `stall_rest` fault; waits are on
//! events (feedback, the gateway's in-flight counter) with timeouts, never on sleeps.

use std::sync::Arc;
use std::time::Duration;

use kestrel::exec::{self, ExecDeps, ExecOptions, InFlight};
use kestrel::faults::FaultBoard;
use kestrel::journal::{ClientIdPrefix, Journal};
use kestrel::metrics::Metrics;
use kestrel::runtime::SharedJournal;
use kestrel_binance::gateway::OrderGateway;
use kestrel_binance::rest::{OrderRef, RestClient};
use kestrel_model::{
    Action, ClientOrderId, Clock, Event, OrderRequest, OrderStatus, OrderType, Price, Side, Symbol,
    SystemClock, TimeInForce,
};
use kestrel_sim::faults::Fault;
use kestrel_sim::SimHandle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::e2e_support::{rest_client, start_sim, sym, unsynced_rest_client};

/// Upper bound of every wait (generous: the CI machine is shared).
const T: Duration = Duration::from_secs(30);

/// A gateway running against a simulator, fed and observed by the test like the engine would.
struct Rig {
    sim: SimHandle,
    /// A separate client for checking the exchange's view.
    rest: RestClient,
    actions: Option<mpsc::Sender<Action>>,
    events: mpsc::Receiver<Event>,
    in_flight: InFlight,
    gateway: JoinHandle<()>,
    journal: SharedJournal,
    clock: Arc<dyn Clock>,
    prefix: ClientIdPrefix,
    faults: FaultBoard,
    _dir: tempfile::TempDir,
}

impl Rig {
    /// Starts a simulator and a gateway with `max_in_flight`; `action_cap` / `event_cap` are the
    /// channel capacities (the engine's side).
    async fn start(max_in_flight: usize, action_cap: usize, event_cap: usize) -> Rig {
        Self::start_with_timeout(max_in_flight, action_cap, event_cap, Duration::from_secs(5)).await
    }

    /// Like [`Rig::start`], the gateway's requests timing out after `request_timeout`.
    async fn start_with_timeout(
        max_in_flight: usize,
        action_cap: usize,
        event_cap: usize,
        request_timeout: Duration,
    ) -> Rig {
        Self::start_on(start_sim().await, max_in_flight, action_cap, event_cap, request_timeout)
            .await
    }

    /// Like [`Rig::start_with_timeout`], on a given simulator.
    async fn start_on(
        sim: SimHandle,
        max_in_flight: usize,
        action_cap: usize,
        event_cap: usize,
        request_timeout: Duration,
    ) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let journal =
            SharedJournal::new(Journal::open(&dir.path().join("j.sqlite")).unwrap()).unwrap();
        let metrics = Arc::new(Metrics::new());
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let faults = FaultBoard::new(&metrics, clock.clone());
        let (events_tx, events) = mpsc::channel::<Event>(event_cap);
        let (actions_tx, actions_rx) = mpsc::channel::<Action>(action_cap);
        let mut rest_cfg = unsynced_rest_client(&sim).config().clone();
        rest_cfg.request_timeout = request_timeout;
        let order_client = RestClient::new(rest_cfg).unwrap();
        order_client.exchange_info(&[]).await.unwrap();
        order_client.sync_time().await.unwrap();
        let options = ExecOptions::with_max_in_flight(max_in_flight);
        let in_flight = options.in_flight.clone();
        let prefix = ClientIdPrefix::new("kst").unwrap();
        let gateway = tokio::spawn(exec::run_with(
            ExecDeps {
                gateway: OrderGateway::Rest(order_client),
                journal: journal.clone(),
                events: events_tx,
                metrics,
                faults: faults.clone(),
                clock: clock.clone(),
                prefix,
                budget: Duration::from_secs(1),
            },
            options,
            actions_rx,
        ));
        let rest = rest_client(&sim).await;
        Rig {
            sim,
            rest,
            actions: Some(actions_tx),
            events,
            in_flight,
            gateway,
            journal,
            clock,
            prefix,
            faults,
            _dir: dir,
        }
    }

    /// A resting limit buy at 90 % of the best ask (never fills in the test's time).
    fn order(&self, symbol: &str, seq: u64) -> OrderRequest {
        let (_, ask) = self.sim.best_bid_ask(symbol).unwrap();
        let low = ask.unwrap().mantissa() / 10 * 9 / 1_000_000 * 1_000_000;
        let qty = if symbol == "BTCUSDT" { "0.001" } else { "0.01" };
        OrderRequest {
            symbol: sym(symbol),
            client_id: self.prefix.make(seq),
            side: Side::Buy,
            kind: OrderType::Limit,
            time_in_force: Some(TimeInForce::Gtc),
            price: Some(Price::from_mantissa(low)),
            qty: qty.parse().unwrap(),
            ts_decided: self.clock.now(),
        }
    }

    fn id(&self, seq: u64) -> ClientOrderId {
        self.prefix.make(seq)
    }

    async fn send(&self, action: Action) {
        let tx = self.actions.as_ref().unwrap();
        tokio::time::timeout(T, tx.send(action)).await.unwrap().unwrap();
    }

    /// The next feedback event.
    async fn next(&mut self) -> Event {
        tokio::time::timeout(T, self.events.recv()).await.unwrap().expect("gateway stopped")
    }

    /// The next `n` feedback events.
    async fn take(&mut self, n: usize) -> Vec<Event> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next().await);
        }
        out
    }

    /// Delays the simulator's next `requests` REST answers by `delay_ms` each.
    fn stall(&self, delay_ms: u64, requests: u32) {
        self.sim.inject(Fault::StallRest { delay_ms, requests }).unwrap();
    }

    /// Waits until the gateway has exactly `n` actions in flight.
    async fn wait_in_flight(&self, n: usize) {
        tokio::time::timeout(T, self.in_flight.wait_for(|c| c == n))
            .await
            .unwrap_or_else(|_| panic!("never {n} in flight (now {})", self.in_flight.current()));
    }

    /// Closes the action channel and waits for the gateway to return.
    async fn stop(mut self) -> (Vec<Event>, SharedJournal) {
        drop(self.actions.take());
        tokio::time::timeout(T, &mut self.gateway).await.unwrap().unwrap();
        let mut rest = Vec::new();
        while let Ok(ev) = self.events.try_recv() {
            rest.push(ev);
        }
        self.sim.shutdown().await;
        (rest, self.journal)
    }
}

/// `(client id, status)` of an order update, or panics with the event.
fn update(ev: &Event) -> (ClientOrderId, OrderStatus) {
    match ev {
        Event::Order(u) => (u.client_id, u.status),
        other => panic!("expected an order update, got {other:?}"),
    }
}

fn symbol_of(ev: &Event) -> Symbol {
    match ev {
        Event::Order(u) => u.symbol,
        other => panic!("expected an order update, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_pipeline_slow_placements_overlap() {
    const N: u64 = 8;
    let mut rig = Rig::start(16, 64, 64).await;
    let base = rig.sim.stats().rest_requests;
    // Every placement waits 2 s in the simulator (far longer than journaling 8 intents, even
    // on a loaded CI disk): one at a time would take 16 s, and the simulator would have seen 1
    // request when the first answer arrives.
    rig.stall(2_000, N as u32);
    for seq in 1..=N {
        rig.send(Action::Place(rig.order("BTCUSDT", seq))).await;
    }
    let first = rig.next().await;
    let seen = rig.sim.stats().rest_requests - base;
    assert_eq!(seen, N, "requests at the simulator when the first answer arrived");
    let mut events = vec![first];
    events.extend(rig.take(N as usize - 1).await);
    let mut acked: Vec<_> = events.iter().map(update).collect();
    acked.sort_by_key(|(id, _)| id.to_string());
    let mut want: Vec<_> = (1..=N).map(|s| (rig.id(s), OrderStatus::New)).collect();
    want.sort_by_key(|(id, _)| id.to_string());
    assert_eq!(acked, want);
    assert_eq!(rig.in_flight.peak(), N as usize, "peak concurrency");
    let (rest, journal) = rig.stop().await;
    assert!(rest.is_empty(), "{rest:?}");
    // Every intent and ack was journaled.
    let open = journal.call(|j| j.open_orders()).await.unwrap();
    assert_eq!(open.len(), N as usize);
    assert!(open.iter().all(|o| o.status == OrderStatus::New), "{open:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_pipeline_same_order_actions_wait_for_the_placement() {
    let mut rig = Rig::start(16, 64, 64).await;
    // The placement is slow; a cancel (or query) sent at once must wait for its answer: sent
    // alongside it, the cancel would reach the exchange first and be refused (-2011).
    rig.stall(800, 1);
    let place = rig.order("BTCUSDT", 1);
    rig.send(Action::Place(place)).await;
    rig.send(Action::Cancel { symbol: sym("BTCUSDT"), client_id: rig.id(1) }).await;
    let events = rig.take(2).await;
    // TC0: ack, then canceled.
    assert_eq!(
        events.iter().map(update).collect::<Vec<_>>(),
        vec![(rig.id(1), OrderStatus::New), (rig.id(1), OrderStatus::Canceled)]
    );
    let on_exchange =
        rig.rest.query_order(sym("BTCUSDT"), OrderRef::Client(rig.id(1))).await.unwrap();
    assert_eq!(on_exchange.status, OrderStatus::Canceled);
    assert_eq!(rig.in_flight.peak(), 1, "the cancel overlapped its placement");

    // TC1: a query waits likewise and sees the placed order.
    rig.stall(800, 1);
    rig.send(Action::Place(rig.order("BTCUSDT", 2))).await;
    rig.send(Action::Query { symbol: sym("BTCUSDT"), client_id: rig.id(2) }).await;
    let events = rig.take(2).await;
    assert_eq!(
        events.iter().map(update).collect::<Vec<_>>(),
        vec![(rig.id(2), OrderStatus::New), (rig.id(2), OrderStatus::New)]
    );
    assert_eq!(rig.in_flight.peak(), 1);
    let (first, second) = (rig.id(1), rig.id(2));
    let (rest, journal) = rig.stop().await;
    assert!(rest.is_empty(), "{rest:?}");
    // The journal followed: the first order canceled, the second open.
    let statuses = journal
        .call(move |j| {
            Ok((j.order(&first)?.map(|o| o.status), j.order(&second)?.map(|o| o.status)))
        })
        .await
        .unwrap();
    assert_eq!(statuses, (Some(OrderStatus::Canceled), Some(OrderStatus::New)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_pipeline_cancel_all_is_a_barrier_for_its_symbol() {
    let mut rig = Rig::start(16, 64, 64).await;
    // A and B (BTCUSDT) and D (ETHUSDT) are slow; C (BTCUSDT) comes after the cancel-all.
    rig.stall(1_000, 3);
    // Sent: A, B, D, cancel-all BTCUSDT, C.
    rig.send(Action::Place(rig.order("BTCUSDT", 1))).await;
    rig.send(Action::Place(rig.order("BTCUSDT", 2))).await;
    rig.send(Action::Place(rig.order("ETHUSDT", 4))).await;
    rig.send(Action::CancelAll { symbol: sym("BTCUSDT") }).await;
    rig.send(Action::Place(rig.order("BTCUSDT", 3))).await;
    // A, B and D acks, A and B canceled, C acked: 6 events.
    let events = rig.take(6).await;
    let pos = |id: ClientOrderId, status: OrderStatus| {
        events
            .iter()
            .position(|e| update(e) == (id, status))
            .unwrap_or_else(|| panic!("no {id} {status:?} in {events:?}"))
    };
    let (a, b, c, d) = (rig.id(1), rig.id(2), rig.id(3), rig.id(4));
    // TC0: the cancel-all waited for A and B: both were acked, then both canceled.
    assert!(pos(a, OrderStatus::New) < pos(a, OrderStatus::Canceled), "{events:?}");
    assert!(pos(b, OrderStatus::New) < pos(b, OrderStatus::Canceled), "{events:?}");
    // TC1: C waited for the cancel-all: placed after it, so it stays open.
    assert!(pos(a, OrderStatus::Canceled) < pos(c, OrderStatus::New), "{events:?}");
    assert!(pos(b, OrderStatus::Canceled) < pos(c, OrderStatus::New), "{events:?}");
    assert!(!events.iter().any(|e| update(e) == (c, OrderStatus::Canceled)), "{events:?}");
    // TC2: D (other symbol) was acked and is untouched by the barrier.
    pos(d, OrderStatus::New);
    assert!(events.iter().filter(|e| symbol_of(e) == sym("ETHUSDT")).count() == 1, "{events:?}");
    // TC3: A, B and D ran at the same time (the barrier held only its symbol's later actions).
    assert!(rig.in_flight.peak() >= 3, "peak {}", rig.in_flight.peak());
    let on_exchange = rig.rest.open_orders(Some(sym("BTCUSDT"))).await.unwrap();
    assert_eq!(on_exchange.iter().map(|o| o.client_id).collect::<Vec<_>>(), vec![c]);
    let (rest, _) = rig.stop().await;
    assert!(rest.is_empty(), "{rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_pipeline_closing_the_channel_delivers_every_result() {
    const N: usize = 6;
    let rig = Rig::start(16, 64, 64).await;
    rig.stall(2_000, N as u32);
    for seq in 1..=N as u64 {
        rig.send(Action::Place(rig.order("BTCUSDT", seq))).await;
    }
    // Every placement is in flight (stalled at the simulator) when the engine stops.
    rig.wait_in_flight(N).await;
    let ids: Vec<_> = (1..=N as u64).map(|s| rig.id(s)).collect();
    let (events, journal) = rig.stop().await;
    let mut acked: Vec<_> = events.iter().map(update).collect();
    acked.sort_by_key(|(id, _)| id.to_string());
    let mut want: Vec<_> = ids.iter().map(|id| (*id, OrderStatus::New)).collect();
    want.sort_by_key(|(id, _)| id.to_string());
    assert_eq!(acked, want, "every result delivered before run returned");
    let open = journal.call(|j| j.open_orders()).await.unwrap();
    assert_eq!(open.len(), N);
    assert!(open.iter().all(|o| o.status == OrderStatus::New), "{open:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_pipeline_respects_max_in_flight_and_keeps_flushing() {
    const MAX: usize = 3;
    const N: u64 = 9;
    // One slot in the action channel, one in the engine's inbox (which the test does not read
    // until the end): the gateway must keep finishing requests and queue their results.
    let mut rig = Rig::start(MAX, 1, 1).await;
    rig.stall(1_500, N as u32);
    for seq in 1..=MAX as u64 {
        rig.send(Action::Place(rig.order("BTCUSDT", seq))).await;
    }
    rig.wait_in_flight(MAX).await;
    // TC0: at the limit the gateway takes no more actions: the channel's one slot fills and
    // the next send would wait (backpressure to the engine).
    let tx = rig.actions.clone().unwrap();
    tx.try_send(Action::Place(rig.order("BTCUSDT", MAX as u64 + 1))).unwrap();
    let refused = tx.try_send(Action::Place(rig.order("BTCUSDT", MAX as u64 + 2)));
    assert!(matches!(refused, Err(mpsc::error::TrySendError::Full(_))), "{refused:?}");
    // TC1: the rest goes through as slots free up, while nobody reads the feedback.
    let rest: Vec<_> = (MAX as u64 + 2..=N).map(|s| rig.order("BTCUSDT", s)).collect();
    let feeder = tokio::spawn(async move {
        for o in rest {
            tx.send(Action::Place(o)).await.unwrap();
        }
    });
    tokio::time::timeout(T, feeder).await.unwrap().unwrap();
    let events = rig.take(N as usize).await;
    assert_eq!(events.len(), N as usize);
    assert!(events.iter().all(|e| update(e).1 == OrderStatus::New), "{events:?}");
    // TC2: never more than MAX at once.
    assert_eq!(rig.in_flight.peak(), MAX);
    let (rest, _) = rig.stop().await;
    assert!(rest.is_empty(), "{rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_pipeline_unknown_outcome_among_concurrent_orders() {
    use kestrel::faults::FaultClass;

    // Requests time out after 500 ms; the simulator executes the first placement it receives
    // but never answers it.
    let mut rig = Rig::start_with_timeout(16, 64, 64, Duration::from_millis(500)).await;
    rig.sim.inject(Fault::SwallowOrderResponse { orders: 1 }).unwrap();
    for seq in 1..=3 {
        rig.send(Action::Place(rig.order("BTCUSDT", seq))).await;
    }
    let events = rig.take(3).await;
    // TC0: two acks and one unknown (not a reject: it was executed); ORDER_UNKNOWN raised.
    let unknown: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::OrderUnknown { client_id, .. } => Some(*client_id),
            _ => None,
        })
        .collect();
    assert_eq!(unknown.len(), 1, "{events:?}");
    let lost = unknown[0];
    let acked = events.iter().filter(|e| matches!(e, Event::Order(_))).count();
    assert_eq!(acked, 2, "{events:?}");
    let active = rig.faults.active();
    assert!(active.iter().any(|f| f.class == FaultClass::ORDER_UNKNOWN), "{active:?}");
    let journaled = rig.journal.call(move |j| j.order(&lost)).await.unwrap().unwrap();
    assert_eq!(journaled.status, OrderStatus::Unknown);
    // TC1: the engine's query resolves it (it rests on the exchange) and clears the class.
    rig.send(Action::Query { symbol: sym("BTCUSDT"), client_id: lost }).await;
    let ev = rig.next().await;
    assert_eq!(update(&ev), (lost, OrderStatus::New));
    let active = rig.faults.active();
    assert!(!active.iter().any(|f| f.class == FaultClass::ORDER_UNKNOWN), "{active:?}");
    let (rest, journal) = rig.stop().await;
    assert!(rest.is_empty(), "{rest:?}");
    let journaled = journal.call(move |j| j.order(&lost)).await.unwrap().unwrap();
    assert_eq!(journaled.status, OrderStatus::New);
}

/// A measurement, not a check (run with `--run-ignored only`): placements per second through
/// the gateway with the simulator answering each placement after `delay` ms, one at a time vs
/// pipelined. Prints one line per case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; prints throughput"]
async fn exec_pipeline_throughput_report() {
    const N: usize = 64;
    for delay_ms in [0u64, 20] {
        for max in [1usize, 4, 16] {
            let mut cfg = kestrel::demo::demo_sim_config();
            cfg.limits.orders_per_10s = 100_000;
            cfg.limits.request_weight_per_minute = 600_000;
            let sim = kestrel_sim::Sim::start(cfg, "127.0.0.1:0").await.unwrap();
            let mut rig = Rig::start_on(sim, max, 256, 256, Duration::from_secs(5)).await;
            if delay_ms > 0 {
                rig.stall(delay_ms, N as u32);
            }
            let orders: Vec<_> = (1..=N as u64).map(|s| rig.order("BTCUSDT", s)).collect();
            let started = std::time::Instant::now();
            for o in orders {
                rig.send(Action::Place(o)).await;
            }
            let events = rig.take(N).await;
            let took = started.elapsed();
            assert!(events.iter().all(|e| matches!(e, Event::Order(_))), "{events:?}");
            println!(
                "delay {delay_ms:>2} ms, max_in_flight {max:>2}: {N} placements in {:>6.1} ms = {:>6.0} orders/s (peak in flight {})",
                took.as_secs_f64() * 1e3,
                N as f64 / took.as_secs_f64(),
                rig.in_flight.peak()
            );
            rig.stop().await;
        }
    }
}
