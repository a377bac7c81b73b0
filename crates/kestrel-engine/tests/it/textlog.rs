//! A small line-based text format for engine events and actions (test-only).
//!
//! One event per line; `#` starts a comment; times are milliseconds of event time.
//!
//! ```text
//! book <t> <SYMBOL> <synced|stale> <ws|rest> <bids> <asks>   levels `price@qty,…` or `-`
//! trade <t> <SYMBOL> <trade_id> <price> <qty> <buy|sell>       (aggressor side)
//! order <t> <SYMBOL> <client_id> <STATUS> <BUY|SELL> <orig> <cum> <cum_quote> [oid=<n>]
//!       [fill=<trade_id>/<price>/<qty>/<fee>/<ASSET|->/<maker|taker>]
//! rejected <t> <SYMBOL> <client_id> <code>
//! unknown <t> <SYMBOL> <client_id>
//! balance <t> <ASSET> <free> <locked>
//! timer <t>
//! cmd halt | cmd resume | cmd cancel-all [SYMBOL]
//! ```
//!
//! Actions, one per line:
//!
//! ```text
//! place <SYMBOL> <client_id> <BUY|SELL> <TYPE> <TIF|-> <price|-> <qty> t=<decided>
//! cancel <SYMBOL> <client_id>
//! cancel-all <SYMBOL>
//! query <SYMBOL> <client_id>
//! ```

use std::fmt::Write as _;

use kestrel_model::{
    Action, Asset, Balance, BookSource, BookState, BookTop, ClientOrderId, Command, Event, Fill,
    Level, OrderId, OrderStatus, OrderUpdate, PublicTrade, Side, Symbol, TradeId, UnixNanos,
};

fn status_str(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::PendingNew => "PENDING_NEW_LOCAL",
        OrderStatus::New => "NEW",
        OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
        OrderStatus::Filled => "FILLED",
        OrderStatus::PendingCancel => "PENDING_CANCEL",
        OrderStatus::Canceled => "CANCELED",
        OrderStatus::Rejected => "REJECTED",
        OrderStatus::Expired => "EXPIRED",
        OrderStatus::Unknown => "UNKNOWN",
    }
}

fn levels_str(levels: &[Level]) -> String {
    if levels.is_empty() {
        return "-".to_owned();
    }
    levels.iter().map(|l| format!("{}@{}", l.price, l.qty)).collect::<Vec<_>>().join(",")
}

/// Renders an event as one line.
pub fn event_line(ev: &Event) -> String {
    match ev {
        Event::Book(b) => format!(
            "book {} {} {} {} {} {}",
            b.ts_local.as_millis(),
            b.symbol,
            if b.state == BookState::Synced { "synced" } else { "stale" },
            if b.source == BookSource::WebSocket { "ws" } else { "rest" },
            levels_str(b.bids()),
            levels_str(b.asks())
        ),
        Event::Trade(t) => format!(
            "trade {} {} {} {} {} {}",
            t.ts_local.as_millis(),
            t.symbol,
            t.trade_id,
            t.price,
            t.qty,
            if t.aggressor == Side::Buy { "buy" } else { "sell" }
        ),
        Event::Order(u) => {
            let mut s = format!(
                "order {} {} {} {} {} {} {} {}",
                u.ts_local.as_millis(),
                u.symbol,
                u.client_id,
                status_str(u.status),
                u.side.as_str(),
                u.orig_qty,
                u.cum_qty,
                u.cum_quote
            );
            if let Some(id) = u.order_id {
                let _ = write!(s, " oid={id}");
            }
            if let Some(f) = u.fill {
                let _ = write!(
                    s,
                    " fill={}/{}/{}/{}/{}/{}",
                    f.trade_id,
                    f.price,
                    f.qty,
                    f.commission,
                    f.commission_asset.map_or("-".to_owned(), |a| a.to_string()),
                    if f.is_maker { "maker" } else { "taker" }
                );
            }
            s
        }
        Event::OrderRejected { symbol, client_id, code, ts_local } => {
            format!("rejected {} {symbol} {client_id} {code}", ts_local.as_millis())
        }
        Event::OrderUnknown { symbol, client_id, ts_local } => {
            format!("unknown {} {symbol} {client_id}", ts_local.as_millis())
        }
        Event::Balance(b) => {
            format!("balance {} {} {} {}", b.ts_exchange.as_millis(), b.asset, b.free, b.locked)
        }
        Event::Timer(t) => format!("timer {}", t.as_millis()),
        Event::Command(Command::Halt) => "cmd halt".to_owned(),
        Event::Command(Command::Resume) => "cmd resume".to_owned(),
        Event::Command(Command::CancelAll { symbol: None }) => "cmd cancel-all".to_owned(),
        Event::Command(Command::CancelAll { symbol: Some(s) }) => format!("cmd cancel-all {s}"),
    }
}

/// Renders an action as one line.
pub fn action_line(a: &Action) -> String {
    match a {
        Action::Place(r) => format!(
            "place {} {} {} {} {} {} {} t={}",
            r.symbol,
            r.client_id,
            r.side.as_str(),
            r.kind.as_str(),
            r.time_in_force.map_or("-", |t| t.as_str()),
            r.price.map_or("-".to_owned(), |p| p.to_string()),
            r.qty,
            r.ts_decided.as_millis()
        ),
        Action::Cancel { symbol, client_id } => format!("cancel {symbol} {client_id}"),
        Action::CancelAll { symbol } => format!("cancel-all {symbol}"),
        Action::Query { symbol, client_id } => format!("query {symbol} {client_id}"),
    }
}

/// A parse failure with its line number.
#[derive(Debug)]
pub struct ParseError {
    pub line: usize,
    pub msg: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

fn err<T>(line: usize, msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError { line, msg: msg.into() })
}

struct Tokens<'a> {
    it: std::str::SplitWhitespace<'a>,
    line: usize,
}

impl<'a> Tokens<'a> {
    fn next(&mut self, what: &str) -> Result<&'a str, ParseError> {
        match self.it.next() {
            Some(t) => Ok(t),
            None => err(self.line, format!("missing {what}")),
        }
    }
    fn parse<T: std::str::FromStr>(&mut self, what: &str) -> Result<T, ParseError>
    where
        T::Err: std::fmt::Debug,
    {
        let t = self.next(what)?;
        t.parse()
            .map_err(|e| ParseError { line: self.line, msg: format!("bad {what} {t:?}: {e:?}") })
    }
    fn ms(&mut self) -> Result<UnixNanos, ParseError> {
        Ok(UnixNanos::from_millis(self.parse::<u64>("time")?))
    }
}

fn parse_levels(s: &str, line: usize) -> Result<Vec<Level>, ParseError> {
    if s == "-" {
        return Ok(vec![]);
    }
    s.split(',')
        .map(|l| {
            let (p, q) =
                l.split_once('@').ok_or(ParseError { line, msg: format!("level {l:?}") })?;
            match (p.parse(), q.parse()) {
                (Ok(p), Ok(q)) => Ok(Level::new(p, q)),
                _ => err(line, format!("level {l:?}")),
            }
        })
        .collect()
}

fn parse_status(s: &str, line: usize) -> Result<OrderStatus, ParseError> {
    [
        OrderStatus::PendingNew,
        OrderStatus::New,
        OrderStatus::PartiallyFilled,
        OrderStatus::Filled,
        OrderStatus::PendingCancel,
        OrderStatus::Canceled,
        OrderStatus::Rejected,
        OrderStatus::Expired,
        OrderStatus::Unknown,
    ]
    .into_iter()
    .find(|st| status_str(*st) == s)
    .map_or_else(|| err(line, format!("status {s:?}")), Ok)
}

fn parse_side(s: &str, line: usize) -> Result<Side, ParseError> {
    match s {
        "BUY" | "buy" => Ok(Side::Buy),
        "SELL" | "sell" => Ok(Side::Sell),
        _ => err(line, format!("side {s:?}")),
    }
}

/// Parses one line; `None` for blank and comment lines.
pub fn parse_event(line_no: usize, line: &str) -> Result<Option<Event>, ParseError> {
    let line = line.split('#').next().unwrap_or("").trim();
    if line.is_empty() {
        return Ok(None);
    }
    let mut t = Tokens { it: line.split_whitespace(), line: line_no };
    let ev = match t.next("kind")? {
        "book" => {
            let ts = t.ms()?;
            let symbol: Symbol = t.parse("symbol")?;
            let state = match t.next("state")? {
                "synced" => BookState::Synced,
                "stale" => BookState::Stale,
                s => return err(line_no, format!("state {s:?}")),
            };
            let source = match t.next("source")? {
                "ws" => BookSource::WebSocket,
                "rest" => BookSource::RestFallback,
                s => return err(line_no, format!("source {s:?}")),
            };
            let bids = parse_levels(t.next("bids")?, line_no)?;
            let asks = parse_levels(t.next("asks")?, line_no)?;
            let mut top = BookTop::from_levels(symbol, state, &bids, &asks);
            top.source = source;
            top.ts_local = ts;
            top.ts_exchange = ts;
            Event::Book(top)
        }
        "trade" => {
            let ts = t.ms()?;
            Event::Trade(PublicTrade {
                symbol: t.parse("symbol")?,
                trade_id: TradeId(t.parse("trade id")?),
                price: t.parse("price")?,
                qty: t.parse("qty")?,
                aggressor: parse_side(t.next("side")?, line_no)?,
                ts_exchange: ts,
                ts_local: ts,
            })
        }
        "order" => {
            let ts = t.ms()?;
            let symbol: Symbol = t.parse("symbol")?;
            let client_id: ClientOrderId = t.parse("client id")?;
            let status = parse_status(t.next("status")?, line_no)?;
            let side = parse_side(t.next("side")?, line_no)?;
            let mut u = OrderUpdate {
                symbol,
                client_id,
                order_id: None,
                side,
                status,
                orig_qty: t.parse("orig")?,
                cum_qty: t.parse("cum")?,
                cum_quote: t.parse("cum quote")?,
                fill: None,
                ts_exchange: ts,
                ts_local: ts,
            };
            for opt in t.it.by_ref() {
                if let Some(v) = opt.strip_prefix("oid=") {
                    u.order_id = Some(OrderId(
                        v.parse().map_err(|_| ParseError { line: line_no, msg: opt.into() })?,
                    ));
                } else if let Some(v) = opt.strip_prefix("fill=") {
                    let f: Vec<&str> = v.split('/').collect();
                    if f.len() != 6 {
                        return err(line_no, format!("fill {v:?}"));
                    }
                    let bad = |_| ParseError { line: line_no, msg: format!("fill {v:?}") };
                    u.fill = Some(Fill {
                        trade_id: TradeId(f[0].parse().map_err(|_| bad(()))?),
                        price: f[1].parse().map_err(|_| bad(()))?,
                        qty: f[2].parse().map_err(|_| bad(()))?,
                        commission: f[3].parse().map_err(|_| bad(()))?,
                        commission_asset: match f[4] {
                            "-" => None,
                            a => Some(Asset::new(a).map_err(|_| bad(()))?),
                        },
                        is_maker: f[5] == "maker",
                        ts_exchange: ts,
                    });
                } else {
                    return err(line_no, format!("unknown option {opt:?}"));
                }
            }
            Event::Order(u)
        }
        "rejected" => {
            let ts_local = t.ms()?;
            Event::OrderRejected {
                symbol: t.parse("symbol")?,
                client_id: t.parse("client id")?,
                code: t.parse("code")?,
                ts_local,
            }
        }
        "unknown" => {
            let ts_local = t.ms()?;
            Event::OrderUnknown {
                symbol: t.parse("symbol")?,
                client_id: t.parse("client id")?,
                ts_local,
            }
        }
        "balance" => {
            let ts = t.ms()?;
            Event::Balance(Balance {
                asset: t.parse("asset")?,
                free: t.parse("free")?,
                locked: t.parse("locked")?,
                ts_exchange: ts,
            })
        }
        "timer" => Event::Timer(t.ms()?),
        "cmd" => match t.next("command")? {
            "halt" => Event::Command(Command::Halt),
            "resume" => Event::Command(Command::Resume),
            "cancel-all" => Event::Command(Command::CancelAll {
                symbol: match t.it.next() {
                    Some(s) => {
                        Some(s.parse().map_err(|_| ParseError { line: line_no, msg: s.into() })?)
                    }
                    None => None,
                },
            }),
            c => return err(line_no, format!("command {c:?}")),
        },
        k => return err(line_no, format!("unknown event kind {k:?}")),
    };
    Ok(Some(ev))
}

/// Parses a whole log into `(line number, event)` pairs.
pub fn parse_log(text: &str) -> Result<Vec<(usize, Event)>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(ev) = parse_event(i + 1, line)? {
            out.push((i + 1, ev));
        }
    }
    Ok(out)
}

#[test]
fn every_event_kind_round_trips_through_text() {
    let lines = [
        "book 1000 BTCUSDT synced ws 49990@1.5,49989@2 50010@0.3",
        "book 1001 BTCUSDT stale rest - -",
        "trade 1002 BTCUSDT 77 50000 0.01 sell",
        "order 1003 BTCUSDT kst-1 PARTIALLY_FILLED BUY 0.002 0.001 49.99 oid=9 fill=5/49990/0.001/0.05/USDT/maker",
        "order 1004 BTCUSDT kst-1 NEW BUY 0.002 0 0",
        "rejected 1005 BTCUSDT kst-2 -2010",
        "unknown 1006 BTCUSDT kst-3",
        "balance 1007 USDT 500 0.5",
        "timer 1008",
        "cmd halt",
        "cmd resume",
        "cmd cancel-all",
        "cmd cancel-all ETHUSDT",
    ];
    for (i, l) in lines.iter().enumerate() {
        let ev = parse_event(i, l).unwrap().unwrap();
        assert_eq!(event_line(&ev), *l, "line {i}");
    }
    assert!(parse_event(0, "  # comment only").unwrap().is_none());
    assert!(parse_event(3, "book x").is_err());
    assert_eq!(parse_event(4, "bogus 1").unwrap_err().line, 4);
}
