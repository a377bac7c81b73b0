//! A scriptable market-stream exchange for the market-data tests: a real WebSocket server on
//! `127.0.0.1:0` publishing combined-stream frames from a reference book, with fault injection
//! (drop, silence, gap, serverShutdown, malformed frames, refused connections) and an in-memory
//! snapshot source reading the same book.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use kestrel_binance::market_data::{SnapshotError, SnapshotFuture, SnapshotSource};
use kestrel_binance::observer::{
    ConnectionId, MarketDataMode, MarketDataObserver, MessageInfo, ReconnectReason, StaleReason,
    StreamKind,
};
use kestrel_binance::wire::market::PartialDepth;
use kestrel_model::{BookTop, Event, Level, Price, Qty, Symbol};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

enum Out {
    Text(String),
    Close,
}

struct ConnEntry {
    streams: Vec<String>,
    tx: mpsc::UnboundedSender<Out>,
}

#[derive(Default)]
struct Book {
    id: u64,
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    trade_id: u64,
}

/// The fake exchange.
pub struct FakeExchange {
    addr: std::net::SocketAddr,
    conns: Mutex<Vec<ConnEntry>>,
    books: Mutex<BTreeMap<String, Book>>,
    rng: Mutex<u64>,
    /// Stop publishing anything (data and pings): the socket stays open but goes silent.
    pub silent: AtomicBool,
    /// Accept TCP but close at once: the WebSocket is "down".
    pub refuse: AtomicBool,
    /// Snapshot requests fail.
    pub snapshots_fail: AtomicBool,
    /// WebSocket connections accepted so far.
    pub connections_total: AtomicUsize,
    /// Snapshot requests served.
    pub snapshot_calls: AtomicUsize,
    /// Highest number of snapshot requests in flight at once.
    pub snapshot_max_in_flight: AtomicUsize,
    in_flight: AtomicUsize,
    /// Delay of each snapshot answer.
    pub snapshot_delay_ms: AtomicU64,
    /// Open WebSocket connections, for tests that wait for a count (no polling).
    open: watch::Sender<usize>,
    /// Snapshot requests served (as `snapshot_calls`), for tests that wait for a count.
    served: watch::Sender<usize>,
}

/// Counts a served connection as open until dropped (any way `serve` returns).
struct OpenGuard<'a>(&'a watch::Sender<usize>);

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

pub fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

fn px(ticks: i64) -> Price {
    Price::from_mantissa(ticks * 1_000_000) // 0.01 per tick
}

impl FakeExchange {
    pub async fn start(symbols: &[&str]) -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut books = BTreeMap::new();
        for s in symbols {
            let mut b = Book { id: 1000, ..Book::default() };
            for i in 0..20 {
                b.bids.insert(10_000 - i, 100 + i);
                b.asks.insert(10_001 + i, 200 + i);
            }
            books.insert(s.to_string(), b);
        }
        let ex = Arc::new(Self {
            addr: listener.local_addr().unwrap(),
            conns: Mutex::new(Vec::new()),
            books: Mutex::new(books),
            rng: Mutex::new(12345),
            silent: AtomicBool::new(false),
            refuse: AtomicBool::new(false),
            snapshots_fail: AtomicBool::new(false),
            connections_total: AtomicUsize::new(0),
            snapshot_calls: AtomicUsize::new(0),
            snapshot_max_in_flight: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            snapshot_delay_ms: AtomicU64::new(0),
            open: watch::channel(0).0,
            served: watch::channel(0).0,
        });
        let ex2 = ex.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                if ex2.refuse.load(Ordering::SeqCst) {
                    drop(tcp);
                    continue;
                }
                let ex3 = ex2.clone();
                tokio::spawn(async move { ex3.serve(tcp).await });
            }
        });
        ex
    }

    pub fn ws_url(&self) -> url::Url {
        format!("ws://{}", self.addr).parse().unwrap()
    }

    async fn serve(self: Arc<Self>, tcp: tokio::net::TcpStream) {
        let uri = Arc::new(Mutex::new(String::new()));
        let uri2 = uri.clone();
        // The handshake callback's signature is tungstenite's; its error type is large.
        #[allow(clippy::result_large_err)]
        let cb = move |req: &Request, resp: Response| {
            *uri2.lock().unwrap() = req.uri().to_string();
            Ok(resp)
        };
        let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, cb).await else { return };
        let uri = uri.lock().unwrap().clone();
        let streams: Vec<String> = uri
            .split_once("streams=")
            .map(|(_, s)| s.split('/').map(str::to_string).collect())
            .unwrap_or_default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.conns.lock().unwrap().push(ConnEntry { streams, tx });
        self.connections_total.fetch_add(1, Ordering::SeqCst);
        self.open.send_modify(|n| *n += 1);
        let _open = OpenGuard(&self.open);
        let (mut sink, mut stream) = ws.split();
        loop {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(Out::Text(t)) => {
                        if sink.send(Message::Text(t.into())).await.is_err() { return; }
                    }
                    Some(Out::Close) | None => {
                        let _ = sink.close().await;
                        return;
                    }
                },
                m = stream.next() => match m {
                    Some(Ok(_)) => {}
                    _ => return,
                },
            }
        }
    }

    fn rand(&self, lo: i64, hi: i64) -> i64 {
        let mut r = self.rng.lock().unwrap();
        *r = r.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        lo + ((*r >> 33) as i64).rem_euclid(hi - lo + 1)
    }

    fn broadcast(&self, stream: &str, text: &str) {
        if self.silent.load(Ordering::SeqCst) {
            return;
        }
        let mut conns = self.conns.lock().unwrap();
        conns.retain(|c| !c.tx.is_closed());
        for c in conns.iter() {
            if c.streams.iter().any(|s| s == stream) {
                let _ = c.tx.send(Out::Text(text.to_string()));
            }
        }
    }

    /// Sends a raw text frame to every connection.
    pub fn send_raw(&self, text: &str) {
        let mut conns = self.conns.lock().unwrap();
        conns.retain(|c| !c.tx.is_closed());
        for c in conns.iter() {
            let _ = c.tx.send(Out::Text(text.to_string()));
        }
    }

    /// Closes every connection.
    pub fn drop_all(&self) {
        let mut conns = self.conns.lock().unwrap();
        for c in conns.drain(..) {
            let _ = c.tx.send(Out::Close);
        }
    }

    /// Waits (without polling) until exactly `n` connections are open.
    pub async fn until_open_connections(&self, n: usize) {
        self.open.subscribe().wait_for(|open| *open == n).await.unwrap();
    }

    /// Waits (without polling) until at least `n` snapshot requests have been served.
    pub async fn until_snapshot_calls(&self, n: usize) {
        self.served.subscribe().wait_for(|served| *served >= n).await.unwrap();
    }

    pub fn open_connections(&self) -> usize {
        let mut conns = self.conns.lock().unwrap();
        conns.retain(|c| !c.tx.is_closed());
        conns.len()
    }

    /// One market update for `symbol`: 1–4 level changes under a new update id; published
    /// unless `publish` is false (a gap).
    pub fn step_with(&self, symbol: &str, publish: bool) -> u64 {
        let n = self.rand(1, 4);
        let mut bids = Vec::new();
        let mut asks = Vec::new();
        let (id, text) = {
            let mut books = self.books.lock().unwrap();
            let b = books.get_mut(symbol).unwrap();
            b.id += 1;
            for _ in 0..n {
                let bid = self.rand(0, 1) == 0;
                let q = if self.rand(0, 4) == 0 { 0 } else { self.rand(1, 500) };
                if bid {
                    let p = self.rand(9_980, 10_000);
                    if q == 0 {
                        b.bids.remove(&p);
                    } else {
                        b.bids.insert(p, q);
                    }
                    bids.push((p, q));
                } else {
                    let p = self.rand(10_001, 10_021);
                    if q == 0 {
                        b.asks.remove(&p);
                    } else {
                        b.asks.insert(p, q);
                    }
                    asks.push((p, q));
                }
            }
            let fmt = |v: &[(i64, i64)]| {
                v.iter()
                    .map(|(p, q)| {
                        format!(r#"["{}","{}"]"#, px(*p), Qty::from_mantissa(*q * 1_000_000))
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis();
            let stream = format!("{}@depth@100ms", symbol.to_lowercase());
            (
                b.id,
                (
                    stream.clone(),
                    format!(
                        r#"{{"stream":"{stream}","data":{{"e":"depthUpdate","E":{now_ms},"s":"{symbol}","U":{id},"u":{id},"b":[{}],"a":[{}]}}}}"#,
                        fmt(&bids),
                        fmt(&asks),
                        id = b.id
                    ),
                ),
            )
        };
        if publish {
            self.broadcast(&text.0, &text.1);
        }
        id
    }

    pub fn step(&self, symbol: &str) -> u64 {
        self.step_with(symbol, true)
    }

    /// Publishes a trade.
    pub fn trade(&self, symbol: &str) -> u64 {
        let id = {
            let mut books = self.books.lock().unwrap();
            let b = books.get_mut(symbol).unwrap();
            b.trade_id += 1;
            b.trade_id
        };
        let stream = format!("{}@trade", symbol.to_lowercase());
        let text = format!(
            r#"{{"stream":"{stream}","data":{{"e":"trade","E":1,"s":"{symbol}","t":{id},"p":"100.5","q":"0.1","T":1,"m":true,"M":true}}}}"#
        );
        self.broadcast(&stream, &text);
        id
    }

    pub fn book_id(&self, symbol: &str) -> u64 {
        self.books.lock().unwrap()[symbol].id
    }

    /// The exchange's top `n` levels per side.
    pub fn top(&self, symbol: &str, n: usize) -> (Vec<Level>, Vec<Level>) {
        let books = self.books.lock().unwrap();
        let b = &books[symbol];
        let lv = |(p, q): (&i64, &i64)| Level::new(px(*p), Qty::from_mantissa(*q * 1_000_000));
        (b.bids.iter().rev().take(n).map(lv).collect(), b.asks.iter().take(n).map(lv).collect())
    }

    /// True if `top` shows exactly the exchange's book at `top.update_id` (only checkable when
    /// that is the current id).
    pub fn matches(&self, top: &BookTop) -> bool {
        let s = top.symbol.as_str();
        if top.update_id != self.book_id(s) {
            return false;
        }
        let (b, a) = self.top(s, 10);
        top.bids() == b.as_slice() && top.asks() == a.as_slice()
    }

    fn snapshot_now(&self, symbol: Symbol) -> Option<PartialDepth> {
        let books = self.books.lock().unwrap();
        let b = books.get(symbol.as_str())?;
        let lv = |(p, q): (&i64, &i64)| Level::new(px(*p), Qty::from_mantissa(*q * 1_000_000));
        Some(PartialDepth {
            last_update_id: b.id,
            bids: b.bids.iter().rev().map(lv).collect(),
            asks: b.asks.iter().map(lv).collect(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("fake snapshot failure")]
struct FakeError;

/// Snapshot source backed by the fake exchange.
pub struct FakeSnapshots(pub Arc<FakeExchange>);

impl SnapshotSource for FakeSnapshots {
    fn depth_snapshot(&self, symbol: Symbol, _limit: u16) -> SnapshotFuture {
        let ex = self.0.clone();
        Box::pin(async move {
            let n = ex.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            ex.snapshot_max_in_flight.fetch_max(n, Ordering::SeqCst);
            let delay = ex.snapshot_delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            ex.in_flight.fetch_sub(1, Ordering::SeqCst);
            ex.snapshot_calls.fetch_add(1, Ordering::SeqCst);
            ex.served.send_modify(|n| *n += 1);
            if ex.snapshots_fail.load(Ordering::SeqCst) {
                return Err(SnapshotError { symbol, source: Box::new(FakeError) });
            }
            ex.snapshot_now(symbol).ok_or(SnapshotError { symbol, source: Box::new(FakeError) })
        })
    }
}

/// What the observer saw, as a stream of notes the test can wait on.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    Connected(ConnectionId),
    Reconnect(ReconnectReason),
    HeartbeatMissed,
    Resync(Symbol, StaleReason),
    Synced(Symbol),
    Malformed,
    Overflow(Symbol),
    Mode(MarketDataMode),
    Message(StreamKind, bool),
}

/// Observer forwarding every callback to a channel.
pub struct NoteObserver(pub mpsc::UnboundedSender<Note>);

impl MarketDataObserver for NoteObserver {
    fn on_message(&self, m: &MessageInfo) {
        let _ = self.0.send(Note::Message(m.kind, m.latency.is_some()));
    }
    fn on_connected(&self, id: ConnectionId) {
        let _ = self.0.send(Note::Connected(id));
    }
    fn on_reconnect(&self, _id: ConnectionId, reason: ReconnectReason) {
        let _ = self.0.send(Note::Reconnect(reason));
    }
    fn on_heartbeat_missed(&self, _id: ConnectionId, _silent: Duration) {
        let _ = self.0.send(Note::HeartbeatMissed);
    }
    fn on_resync(&self, s: Symbol, r: StaleReason) {
        let _ = self.0.send(Note::Resync(s, r));
    }
    fn on_synced(&self, s: Symbol) {
        let _ = self.0.send(Note::Synced(s));
    }
    fn on_malformed(&self, _id: ConnectionId) {
        let _ = self.0.send(Note::Malformed);
    }
    fn on_overflow(&self, s: Symbol, _k: StreamKind) {
        let _ = self.0.send(Note::Overflow(s));
    }
    fn on_mode_change(&self, _g: usize, m: MarketDataMode) {
        let _ = self.0.send(Note::Mode(m));
    }
}

pub const WAIT: Duration = Duration::from_secs(10);

/// Waits for an observer note matching `pred`.
pub async fn wait_note(
    rx: &mut mpsc::UnboundedReceiver<Note>,
    what: &str,
    pred: impl Fn(&Note) -> bool,
) -> Note {
    tokio::time::timeout(WAIT, async {
        loop {
            let n = rx.recv().await.expect("observer channel closed");
            if pred(&n) {
                return n;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Waits for an output event matching `pred`; returns it and every event seen before it.
pub async fn wait_event(
    rx: &mut mpsc::Receiver<Event>,
    what: &str,
    pred: impl Fn(&Event) -> bool,
) -> (Event, Vec<Event>) {
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        loop {
            let e = rx.recv().await.expect("event channel closed");
            if pred(&e) {
                return (e, std::mem::take(&mut seen));
            }
            seen.push(e);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}
