//! Market-stream payloads ([WS] `web-socket-streams.md`), 1:1 with the docs.
//!
//! Field letters are renamed to words; each field's doc quotes the letter and its meaning. Prices
//! and quantities arrive as decimal strings and are parsed straight into [`Price`]/[`Qty`] (never
//! through a float). These owned types are for golden tests, tooling and rare paths; the hot
//! `depthUpdate` path goes through [`crate::decode::MarketDecoder`], which decodes the same bytes
//! into reusable buffers without allocating per level.

use std::fmt;

use kestrel_model::{Level, Price, Qty, Symbol};
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// `depthUpdate`: a diff of the book (`<symbol>@depth` every 1 s, `<symbol>@depth@100ms`).
///
/// A level's quantity is absolute; `"0"` removes the level.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DepthUpdate {
    /// `E`: event time, ms since the epoch.
    #[serde(rename = "E")]
    pub event_time: u64,
    /// `s`: symbol, exchange spelling (upper case).
    #[serde(rename = "s", deserialize_with = "de_symbol")]
    pub symbol: Symbol,
    /// `U`: first update id in this event.
    #[serde(rename = "U")]
    pub first_update_id: u64,
    /// `u`: final update id in this event.
    #[serde(rename = "u")]
    pub final_update_id: u64,
    /// `b`: bids to update, `[price, qty]`.
    #[serde(rename = "b", deserialize_with = "de_levels")]
    pub bids: Vec<Level>,
    /// `a`: asks to update, `[price, qty]`.
    #[serde(rename = "a", deserialize_with = "de_levels")]
    pub asks: Vec<Level>,
}

/// Partial book depth (`<symbol>@depth<5|10|20>[@100ms]`) and, with the same shape, the REST
/// snapshot `GET /api/v3/depth`. There is no symbol: it comes from the stream name (or the
/// request).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PartialDepth {
    /// `lastUpdateId`: the book's update id at the time of the snapshot.
    #[serde(rename = "lastUpdateId")]
    pub last_update_id: u64,
    /// `bids`: best first, `[price, qty]`.
    #[serde(deserialize_with = "de_levels")]
    pub bids: Vec<Level>,
    /// `asks`: best first, `[price, qty]`.
    #[serde(deserialize_with = "de_levels")]
    pub asks: Vec<Level>,
}

/// `trade`: one trade print (`<symbol>@trade`). All fields inline, so it is `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Trade {
    /// `E`: event time, ms since the epoch.
    #[serde(rename = "E")]
    pub event_time: u64,
    /// `s`: symbol.
    #[serde(rename = "s", deserialize_with = "de_symbol")]
    pub symbol: Symbol,
    /// `t`: trade id.
    #[serde(rename = "t")]
    pub trade_id: u64,
    /// `p`: price.
    #[serde(rename = "p", deserialize_with = "de_price")]
    pub price: Price,
    /// `q`: quantity.
    #[serde(rename = "q", deserialize_with = "de_qty")]
    pub qty: Qty,
    /// `T`: trade time, ms since the epoch.
    #[serde(rename = "T")]
    pub trade_time: u64,
    /// `m`: is the buyer the market maker? (then the aggressor sold)
    #[serde(rename = "m")]
    pub buyer_is_maker: bool,
    /// `M`: documented as "Ignore"; kept only so the type is 1:1 with the docs.
    #[serde(rename = "M", default)]
    pub ignore: Option<bool>,
}

/// `aggTrade`: trades aggregated per taker order and price (`<symbol>@aggTrade`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct AggTrade {
    /// `E`: event time, ms since the epoch.
    #[serde(rename = "E")]
    pub event_time: u64,
    /// `s`: symbol.
    #[serde(rename = "s", deserialize_with = "de_symbol")]
    pub symbol: Symbol,
    /// `a`: aggregate trade id.
    #[serde(rename = "a")]
    pub agg_trade_id: u64,
    /// `p`: price.
    #[serde(rename = "p", deserialize_with = "de_price")]
    pub price: Price,
    /// `q`: quantity.
    #[serde(rename = "q", deserialize_with = "de_qty")]
    pub qty: Qty,
    /// `f`: first trade id.
    #[serde(rename = "f")]
    pub first_trade_id: u64,
    /// `l`: last trade id.
    #[serde(rename = "l")]
    pub last_trade_id: u64,
    /// `T`: trade time, ms since the epoch.
    #[serde(rename = "T")]
    pub trade_time: u64,
    /// `m`: is the buyer the market maker?
    #[serde(rename = "m")]
    pub buyer_is_maker: bool,
    /// `M`: documented as "Ignore".
    #[serde(rename = "M", default)]
    pub ignore: Option<bool>,
}

/// `bookTicker`: best bid/ask, pushed on every change (`<symbol>@bookTicker`). No `e`/`E`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct BookTicker {
    /// `u`: order book update id.
    #[serde(rename = "u")]
    pub update_id: u64,
    /// `s`: symbol.
    #[serde(rename = "s", deserialize_with = "de_symbol")]
    pub symbol: Symbol,
    /// `b`: best bid price.
    #[serde(rename = "b", deserialize_with = "de_price")]
    pub bid_price: Price,
    /// `B`: best bid quantity.
    #[serde(rename = "B", deserialize_with = "de_qty")]
    pub bid_qty: Qty,
    /// `a`: best ask price.
    #[serde(rename = "a", deserialize_with = "de_price")]
    pub ask_price: Price,
    /// `A`: best ask quantity.
    #[serde(rename = "A", deserialize_with = "de_qty")]
    pub ask_qty: Qty,
}

/// `serverShutdown`: the server will close this connection soon; reconnect at once
/// (SPEC.md §2, since 2026-05-08). Arrives raw on `/ws` and as stream `!serverShutdown` on
/// `/stream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct ServerShutdown {
    /// `E`: event time, ms since the epoch.
    #[serde(rename = "E")]
    pub event_time: u64,
}

/// The combined-stream wrapper `{"stream": name, "data": event}` (`/stream?streams=a/b`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Combined<T> {
    /// `stream`: the stream name, e.g. `btcusdt@depth@100ms`.
    pub stream: String,
    /// `data`: the event itself.
    pub data: T,
}

/// A control-message id: an `i64`, an alphanumeric string of up to 36 characters, or `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ControlId {
    /// Numeric id (what kestrel sends).
    Num(i64),
    /// String id.
    Str(String),
}

/// A control request `{"method":..,"params":[..],"id":X}` (SUBSCRIBE, UNSUBSCRIBE,
/// LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlRequest {
    /// `method`: e.g. `SUBSCRIBE`.
    pub method: String,
    /// `params`: stream names, or a property name and value. Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<serde_json::Value>,
    /// `id`: echoed in the response.
    pub id: Option<ControlId>,
}

/// What a control request returned in `result`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ControlResult {
    /// `GET_PROPERTY combined` answers a boolean.
    Bool(bool),
    /// `LIST_SUBSCRIPTIONS` answers the stream names.
    Streams(Vec<String>),
}

/// A control response `{"result":..,"id":X}`; `result` is `null` for SUBSCRIBE, UNSUBSCRIBE
/// and SET_PROPERTY.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ControlResponse {
    /// `result`: `None` for `null`.
    pub result: Option<ControlResult>,
    /// `id`: the request's id.
    pub id: Option<ControlId>,
}

/// A control error `{"code":0..3,"msg":..,"id":X}`: 0 unknown property, 1 wrong value type,
/// 2 invalid request, 3 invalid JSON.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ControlError {
    /// `code`: 0..3.
    pub code: i64,
    /// `msg`: human-readable reason.
    pub msg: String,
    /// `id`: the request's id, when the server could read one.
    #[serde(default)]
    pub id: Option<ControlId>,
}

// ---------------------------------------------------------------------------------------------
// Number/identifier helpers shared with the hot-path decoder.

/// Visits one JSON string and parses it with `parse`, never allocating (borrowed or scratch).
struct StrParse<T>(fn(&str) -> Option<T>, &'static str);

impl<'de, T> Visitor<'de> for StrParse<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.1)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self.1))
    }
}

/// Powers of ten for scaling a fraction of `n` digits to 8: `POW10[8 - n]`.
const POW10: [u64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/// Fast exact parse of the plain unsigned decimals Binance sends (`"97123.45000000"`) into a
/// 1e-8 mantissa. Returns `None` for anything else (sign, exponent, more than 8 decimals, more
/// than 11 integer digits, an empty integer part, a stray byte, overflow): the caller then runs
/// the model's full parser, which either accepts the same value or gives the exact error. The
/// depth hot path parses ~100 of these per message; this is about twice as fast as the general
/// parser because no digit needs an overflow check (11 + 8 digits always fit a `u64`).
#[inline]
pub(crate) fn fast_mantissa(s: &[u8]) -> Option<i64> {
    // One pass: integer digits (at most 11), an optional dot, fraction digits (at most 8).
    let mut i = 0;
    let mut v: u64 = 0;
    while let Some(&b) = s.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if i == 11 {
            return None;
        }
        v = v * 10 + u64::from(d);
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let mut f: u64 = 0;
    let mut n = 0;
    if let Some(&b) = s.get(i) {
        if b != b'.' {
            return None;
        }
        for &b in &s[i + 1..] {
            let d = b.wrapping_sub(b'0');
            if d > 9 || n == 8 {
                return None;
            }
            f = f * 10 + u64::from(d);
            n += 1;
        }
    }
    let m = v * 100_000_000 + f * POW10[8 - n];
    i64::try_from(m).ok()
}

fn parse_price(s: &str) -> Option<Price> {
    match fast_mantissa(s.as_bytes()) {
        Some(m) => Some(Price::from_mantissa(m)),
        None => s.parse().ok(),
    }
}

fn parse_qty(s: &str) -> Option<Qty> {
    match fast_mantissa(s.as_bytes()) {
        Some(m) => Some(Qty::from_mantissa(m)),
        None => s.parse().ok(),
    }
}

/// [`parse_price`] on raw bytes (the fast path never needs UTF-8 validation: it accepts only
/// ASCII digits and a dot).
#[inline]
fn parse_price_bytes(b: &[u8]) -> Option<Price> {
    match fast_mantissa(b) {
        Some(m) => Some(Price::from_mantissa(m)),
        None => std::str::from_utf8(b).ok()?.parse().ok(),
    }
}

#[inline]
fn parse_qty_bytes(b: &[u8]) -> Option<Qty> {
    match fast_mantissa(b) {
        Some(m) => Some(Qty::from_mantissa(m)),
        None => std::str::from_utf8(b).ok()?.parse().ok(),
    }
}

/// Why a raw level list was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadLevels(&'static str);

impl fmt::Display for BadLevels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid [price, qty] list: {}", self.0)
    }
}

/// Parses a raw JSON `[["price","qty"], ...]` slice (as borrowed from the frame by
/// `serde_json`'s `RawValue`, which has already checked it is valid JSON) straight into `out`.
///
/// Used by the decoder's general path (frames the single-pass depth scanner in `decode::fast`
/// leaves to `serde_json`): one tight pass over the bytes instead of serde's per-element visitor
/// and per-string UTF-8 checks. Accepts exactly what [`LevelsInto`] accepts for Binance's payloads
/// (two strings per level, plain decimals); an escaped string is refused (Binance never escapes
/// numbers).
pub(crate) fn parse_levels_raw(raw: &[u8], out: &mut Vec<Level>) -> Result<(), BadLevels> {
    struct Cur<'a> {
        b: &'a [u8],
        i: usize,
    }
    impl<'a> Cur<'a> {
        #[inline]
        fn ws(&mut self) {
            while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\n' | b'\r' | b'\t') {
                self.i += 1;
            }
        }
        #[inline]
        fn eat(&mut self, c: u8) -> Result<(), BadLevels> {
            self.ws();
            if self.b.get(self.i) == Some(&c) {
                self.i += 1;
                Ok(())
            } else {
                Err(BadLevels("unexpected byte"))
            }
        }
        #[inline]
        fn peek(&mut self) -> Option<u8> {
            self.ws();
            self.b.get(self.i).copied()
        }
        #[inline]
        fn string(&mut self) -> Result<&'a [u8], BadLevels> {
            self.eat(b'"')?;
            let start = self.i;
            let len = self.b[start..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\')
                .ok_or(BadLevels("unterminated string"))?;
            if self.b[start + len] != b'"' {
                return Err(BadLevels("escaped number"));
            }
            self.i = start + len + 1;
            Ok(&self.b[start..start + len])
        }
    }
    let mut c = Cur { b: raw, i: 0 };
    c.eat(b'[')?;
    if c.peek() == Some(b']') {
        c.i += 1;
    } else {
        loop {
            c.eat(b'[')?;
            let p = c.string()?;
            c.eat(b',')?;
            let q = c.string()?;
            c.eat(b']')?;
            let price = parse_price_bytes(p).ok_or(BadLevels("bad price"))?;
            let qty = parse_qty_bytes(q).ok_or(BadLevels("bad quantity"))?;
            out.push(Level::new(price, qty));
            match c.peek() {
                Some(b',') => c.i += 1,
                Some(b']') => {
                    c.i += 1;
                    break;
                }
                _ => return Err(BadLevels("expected , or ]")),
            }
        }
    }
    if c.peek().is_some() {
        return Err(BadLevels("trailing bytes"));
    }
    Ok(())
}

fn parse_symbol(s: &str) -> Option<Symbol> {
    Symbol::new(s).ok()
}

/// Deserializes a decimal string into a [`Price`].
pub(crate) fn de_price<'de, D: Deserializer<'de>>(d: D) -> Result<Price, D::Error> {
    d.deserialize_str(StrParse(parse_price, "a decimal price string"))
}

/// Deserializes a decimal string into a [`Qty`].
pub(crate) fn de_qty<'de, D: Deserializer<'de>>(d: D) -> Result<Qty, D::Error> {
    d.deserialize_str(StrParse(parse_qty, "a decimal quantity string"))
}

/// Deserializes a symbol string into a [`Symbol`].
pub(crate) fn de_symbol<'de, D: Deserializer<'de>>(d: D) -> Result<Symbol, D::Error> {
    d.deserialize_str(StrParse(parse_symbol, "a symbol"))
}

fn de_levels<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Level>, D::Error> {
    let mut out = Vec::new();
    LevelsInto(&mut out).deserialize(d)?;
    Ok(out)
}

/// Appends a JSON `[[price, qty], ...]` list to a caller-owned `Vec<Level>` through serde's
/// visitor API (used by the owned wire types; the hot path uses [`parse_levels_raw`]). Each
/// string is parsed in place, never copied.
pub(crate) struct LevelsInto<'v>(pub(crate) &'v mut Vec<Level>);

impl<'de> DeserializeSeed<'de> for LevelsInto<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for LevelsInto<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of [price, qty] pairs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(level) = seq.next_element_seed(OneLevel)? {
            self.0.push(level);
        }
        Ok(())
    }
}

/// One `["price", "qty"]` pair.
struct OneLevel;

impl<'de> DeserializeSeed<'de> for OneLevel {
    type Value = Level;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Level, D::Error> {
        d.deserialize_seq(self)
    }
}

/// Wraps [`de_price`]/[`de_qty`] as seeds so a sequence can be walked without a temporary type.
struct PriceSeed;
struct QtySeed;

impl<'de> DeserializeSeed<'de> for PriceSeed {
    type Value = Price;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Price, D::Error> {
        de_price(d)
    }
}

impl<'de> DeserializeSeed<'de> for QtySeed {
    type Value = Qty;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Qty, D::Error> {
        de_qty(d)
    }
}

impl<'de> Visitor<'de> for OneLevel {
    type Value = Level;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a [price, qty] pair")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Level, A::Error> {
        let price =
            seq.next_element_seed(PriceSeed)?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let qty =
            seq.next_element_seed(QtySeed)?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
        // Binance sends exactly two elements; anything more is a protocol change we refuse.
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(3, &self));
        }
        Ok(Level::new(price, qty))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(name: &str) -> String {
        let path = format!("{}/../../testdata/binance/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn p(s: &str) -> Price {
        s.parse().unwrap()
    }

    fn q(s: &str) -> Qty {
        s.parse().unwrap()
    }

    fn sym(s: &str) -> Symbol {
        Symbol::new(s).unwrap()
    }

    #[test]
    fn golden_depth_update() {
        let d: DepthUpdate = serde_json::from_str(&testdata("ws_depthUpdate.json")).unwrap();
        assert_eq!(
            d,
            DepthUpdate {
                event_time: 1_672_515_782_136,
                symbol: sym("BNBBTC"),
                first_update_id: 157,
                final_update_id: 160,
                bids: vec![Level::new(p("0.0024"), q("10"))],
                asks: vec![Level::new(p("0.0026"), q("100"))],
            }
        );
    }

    #[test]
    fn golden_trade() {
        let t: Trade = serde_json::from_str(&testdata("ws_trade.json")).unwrap();
        assert_eq!(
            t,
            Trade {
                event_time: 1_672_515_782_136,
                symbol: sym("BNBBTC"),
                trade_id: 12345,
                price: p("0.001"),
                qty: q("100"),
                trade_time: 1_672_515_782_136,
                buyer_is_maker: true,
                ignore: Some(true),
            }
        );
    }

    #[test]
    fn golden_agg_trade() {
        let t: AggTrade = serde_json::from_str(&testdata("ws_aggTrade.json")).unwrap();
        assert_eq!(
            t,
            AggTrade {
                event_time: 1_672_515_782_136,
                symbol: sym("BNBBTC"),
                agg_trade_id: 12345,
                price: p("0.001"),
                qty: q("100"),
                first_trade_id: 100,
                last_trade_id: 105,
                trade_time: 1_672_515_782_136,
                buyer_is_maker: true,
                ignore: Some(true),
            }
        );
    }

    #[test]
    fn golden_book_ticker() {
        let t: BookTicker = serde_json::from_str(&testdata("ws_bookTicker.json")).unwrap();
        assert_eq!(
            t,
            BookTicker {
                update_id: 400_900_217,
                symbol: sym("BNBUSDT"),
                bid_price: p("25.3519"),
                bid_qty: q("31.21"),
                ask_price: p("25.3652"),
                ask_qty: q("40.66"),
            }
        );
    }

    #[test]
    fn golden_partial_depth_and_rest_snapshot() {
        // TC0: the stream payload; TC1: the REST snapshot, same shape.
        let d: PartialDepth = serde_json::from_str(&testdata("ws_partialDepth.json")).unwrap();
        assert_eq!(d.last_update_id, 160);
        assert_eq!(d.bids, vec![Level::new(p("0.0024"), q("10"))]);
        assert_eq!(d.asks, vec![Level::new(p("0.0026"), q("100"))]);
        let s: PartialDepth = serde_json::from_str(&testdata("rest_depth_snapshot.json")).unwrap();
        assert_eq!(s.last_update_id, 1_027_024);
        assert_eq!(s.bids, vec![Level::new(p("4.00000000"), q("431.00000000"))]);
        assert_eq!(s.asks, vec![Level::new(p("4.00000200"), q("12.00000000"))]);
    }

    #[test]
    fn golden_server_shutdown_raw_and_combined() {
        let raw: ServerShutdown =
            serde_json::from_str(&testdata("ws_serverShutdown_raw.json")).unwrap();
        assert_eq!(raw.event_time, 1_770_123_456_789);
        let c: Combined<ServerShutdown> =
            serde_json::from_str(&testdata("ws_serverShutdown_combined.json")).unwrap();
        assert_eq!(c.stream, "!serverShutdown");
        assert_eq!(c.data, raw);
    }

    #[test]
    fn golden_control_messages() {
        // TC0..TC4: requests round-trip through our Serialize as the doc text.
        for name in [
            "ws_control_subscribe_request.json",
            "ws_control_unsubscribe_request.json",
            "ws_control_list_subscriptions_request.json",
            "ws_control_set_property_request.json",
            "ws_control_get_property_request.json",
        ] {
            let text = testdata(name);
            let req: ControlRequest = serde_json::from_str(&text).unwrap();
            let back: serde_json::Value = serde_json::to_value(&req).unwrap();
            let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(back, doc, "{name}");
        }
        let sub: ControlRequest =
            serde_json::from_str(&testdata("ws_control_subscribe_request.json")).unwrap();
        assert_eq!(sub.method, "SUBSCRIBE");
        assert_eq!(sub.id, Some(ControlId::Num(1)));
        // TC5..TC9: responses.
        let cases: [(&str, Option<ControlResult>, i64); 5] = [
            ("ws_control_subscribe_response.json", None, 1),
            ("ws_control_unsubscribe_response.json", None, 312),
            (
                "ws_control_list_subscriptions_response.json",
                Some(ControlResult::Streams(vec!["btcusdt@aggTrade".into()])),
                3,
            ),
            ("ws_control_set_property_response.json", None, 5),
            ("ws_control_get_property_response.json", Some(ControlResult::Bool(true)), 2),
        ];
        for (name, result, id) in cases {
            let r: ControlResponse = serde_json::from_str(&testdata(name)).unwrap();
            assert_eq!(r, ControlResponse { result, id: Some(ControlId::Num(id)) }, "{name}");
        }
    }

    #[test]
    fn control_error_shape() {
        // The docs print this shape inline (no vector file): {"code": 2, "msg": .., "id": ..}.
        let e: ControlError = serde_json::from_str(
            r#"{"code": 2, "msg": "Invalid request: unknown variant", "id": 7}"#,
        )
        .unwrap();
        assert_eq!(e.code, 2);
        assert_eq!(e.id, Some(ControlId::Num(7)));
        let e: ControlError = serde_json::from_str(r#"{"code":3,"msg":"Invalid JSON"}"#).unwrap();
        assert_eq!(e.id, None);
    }

    proptest::proptest! {
        /// The fast path agrees with the model's parser on every input it accepts, and never
        /// accepts what the model rejects.
        #[test]
        fn fast_mantissa_agrees_with_the_model(s in "[0-9.]{0,22}|-?[0-9]{0,12}\\.?[0-9]{0,10}") {
            let model = s.parse::<Price>().ok().map(Price::mantissa);
            if let Some(m) = fast_mantissa(s.as_bytes()) {
                proptest::prop_assert_eq!(Some(m), model);
            }
            proptest::prop_assert_eq!(parse_price(&s).map(Price::mantissa), model);
            proptest::prop_assert_eq!(parse_qty(&s).map(Qty::mantissa), s.parse::<Qty>().ok().map(Qty::mantissa));
        }
    }

    #[test]
    fn raw_levels_match_the_serde_path() {
        // TC0..TC3 accepted (whitespace, empty, one, many); TC4.. refused like LevelsInto.
        let ok = [
            r#"[]"#,
            r#" [ ] "#,
            r#"[["0.0024","10"]]"#,
            "[ [ \"97123.45000000\" , \"0.01234000\" ] ,\n [\"1\",\"0\"] ]",
        ];
        for (i, t) in ok.into_iter().enumerate() {
            let mut raw = Vec::new();
            parse_levels_raw(t.as_bytes(), &mut raw).unwrap_or_else(|e| panic!("TC{i}: {e}"));
            let via_serde = de_levels(&mut serde_json::Deserializer::from_str(t)).unwrap();
            assert_eq!(raw, via_serde, "TC{i}");
        }
        let bad = [
            r#"[["1e-8","1"]]"#,
            r#"[["1","1","1"]]"#,
            r#"[[1.5,"1"]]"#,
            r#"[["1.000000001","1"]]"#,
            r#"[["1"]]"#,
            r#"[["1","1"],]"#,
            r#"[["1","1"]"#,
            r#"[["\u0031","1"]]"#,
            r#"{}"#,
        ];
        for (i, t) in bad.into_iter().enumerate() {
            assert!(parse_levels_raw(t.as_bytes(), &mut Vec::new()).is_err(), "TC{}: {t}", i + 4);
        }
    }

    #[test]
    fn fast_mantissa_cases() {
        for (i, (s, m)) in [
            ("97123.45000000", Some(9_712_345_000_000)),
            ("0.00000001", Some(1)),
            ("1", Some(100_000_000)),
            ("1.", Some(100_000_000)),
            ("92233720368.54775807", Some(i64::MAX)),
            ("92233720368.54775808", None),
            (".5", None),
            ("-1", None),
            ("1e5", None),
            ("1.000000001", None),
            ("", None),
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(fast_mantissa(s.as_bytes()), m, "TC{i}: {s}");
        }
    }

    #[test]
    fn bad_levels_are_errors_not_panics() {
        // TC0: float-looking exponent; TC1: three elements; TC2: number instead of string;
        // TC3: too many decimals; TC4: one element.
        for bad in [
            r#"{"lastUpdateId":1,"bids":[["1e-8","1"]],"asks":[]}"#,
            r#"{"lastUpdateId":1,"bids":[["1","1","1"]],"asks":[]}"#,
            r#"{"lastUpdateId":1,"bids":[[1.5,"1"]],"asks":[]}"#,
            r#"{"lastUpdateId":1,"bids":[["1.000000001","1"]],"asks":[]}"#,
            r#"{"lastUpdateId":1,"bids":[["1"]],"asks":[]}"#,
        ] {
            assert!(serde_json::from_str::<PartialDepth>(bad).is_err(), "{bad}");
        }
    }
}
