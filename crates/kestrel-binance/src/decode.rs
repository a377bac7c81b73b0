//! Hot-path decoder for combined market-stream frames (`{"stream":..,"data":..}`).
//!
//! Two paths, same results. The hot one (`fast`, private) is a hand-written single-pass scanner
//! for the exact shape Binance sends for diff depth (compact JSON, fields in the documented
//! order): it checks the bytes and parses every price/quantity into [`Price`]/[`Qty`] in the same
//! pass. Anything it is not sure of falls back to the general path: `serde_json`'s borrowing
//! deserializer, where the stream name is a `&str` into the frame and level lists are parsed in
//! place. Depth levels are appended to two `Vec<Level>` owned by the [`MarketDecoder`] and reused
//! for every frame, so after warm-up a `depthUpdate` decodes with no heap allocation at all.
//!
//! The dispatch key is the stream name's suffix (`@depth`, `@depth@100ms`, `@trade`, ...),
//! because `bookTicker` and partial-depth payloads have no `e` field. Binance sends `stream`
//! before `data`; if a server sends them the other way round (e.g. a JSON library that sorts
//! keys), `data` is kept as a borrowed raw slice and decoded once the name is known.

use std::fmt;

use kestrel_model::{Level, Symbol};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::wire::market::{de_symbol, parse_levels_raw, AggTrade, BookTicker, Trade};

mod fast;

/// Which kind of stream a frame belongs to (from the stream name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// `<symbol>@depth` / `<symbol>@depth@100ms`: diff depth.
    Depth,
    /// `<symbol>@depth<N>[@100ms]`: partial book depth.
    PartialDepth,
    /// `<symbol>@trade`.
    Trade,
    /// `<symbol>@aggTrade`.
    AggTrade,
    /// `<symbol>@bookTicker`.
    BookTicker,
    /// `!serverShutdown` or any event with `e = serverShutdown`.
    ServerShutdown,
    /// A control response or error (`{"result"|"code":..,"id":..}`).
    Control,
    /// A stream kestrel does not decode (kline, ticker, ...): skipped.
    Other,
}

impl StreamKind {
    /// Every kind, for observers that pre-allocate one slot per kind.
    pub const ALL: [StreamKind; 8] = [
        StreamKind::Depth,
        StreamKind::PartialDepth,
        StreamKind::Trade,
        StreamKind::AggTrade,
        StreamKind::BookTicker,
        StreamKind::ServerShutdown,
        StreamKind::Control,
        StreamKind::Other,
    ];

    /// A stable lower-case label (for metric labels): `depth`, `trade`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            StreamKind::Depth => "depth",
            StreamKind::PartialDepth => "partial_depth",
            StreamKind::Trade => "trade",
            StreamKind::AggTrade => "agg_trade",
            StreamKind::BookTicker => "book_ticker",
            StreamKind::ServerShutdown => "server_shutdown",
            StreamKind::Control => "control",
            StreamKind::Other => "other",
        }
    }

    /// Dense index `0..ALL.len()`.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Classifies a stream name such as `btcusdt@depth@100ms` or `!serverShutdown`.
    pub fn of_stream(stream: &str) -> StreamKind {
        if stream == "!serverShutdown" {
            return StreamKind::ServerShutdown;
        }
        let Some((_, suffix)) = stream.split_once('@') else {
            return StreamKind::Other;
        };
        // Strip an update-speed suffix (`@100ms`, `@1000ms`).
        let base = match suffix.split_once('@') {
            Some((b, speed)) if speed.ends_with("ms") => b,
            Some(_) => return StreamKind::Other,
            None => suffix,
        };
        match base {
            "depth" => StreamKind::Depth,
            "depth5" | "depth10" | "depth20" => StreamKind::PartialDepth,
            "trade" => StreamKind::Trade,
            "aggTrade" => StreamKind::AggTrade,
            "bookTicker" => StreamKind::BookTicker,
            _ => StreamKind::Other,
        }
    }
}

/// The header of a decoded `depthUpdate`; its levels are in [`MarketDecoder::bids`] /
/// [`MarketDecoder::asks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthHeader {
    /// `s`.
    pub symbol: Symbol,
    /// `E`, ms since the epoch.
    pub event_time: u64,
    /// `U`: first update id.
    pub first_update_id: u64,
    /// `u`: final update id.
    pub final_update_id: u64,
}

/// One decoded frame. Borrowed parts point into the frame bytes; level lists live in the
/// decoder's reusable buffers until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// `depthUpdate`; levels in the decoder's buffers.
    Depth(DepthHeader),
    /// Partial depth; levels in the decoder's buffers; the symbol is the stream name's prefix.
    PartialDepth {
        /// The stream name, e.g. `btcusdt@depth5@100ms`.
        stream: &'a str,
        /// `lastUpdateId`.
        last_update_id: u64,
    },
    /// `trade`.
    Trade(Trade),
    /// `aggTrade`.
    AggTrade(AggTrade),
    /// `bookTicker`.
    BookTicker(BookTicker),
    /// `serverShutdown`: reconnect at once.
    ServerShutdown {
        /// `E`, ms since the epoch (0 if absent).
        event_time: u64,
    },
    /// A control response `{"result":..,"id":..}`; `id` only when numeric.
    ControlResult {
        /// The request id, when numeric.
        id: Option<i64>,
    },
    /// A control error `{"code":..,"msg":..}`.
    ControlError {
        /// Binance control error code (0..3).
        code: i64,
        /// The message, borrowed from the frame when it has no escapes.
        msg: &'a str,
    },
    /// A stream kestrel does not decode; skipped.
    Other {
        /// Its name.
        stream: &'a str,
    },
}

impl Decoded<'_> {
    /// The frame's stream kind.
    pub fn kind(&self) -> StreamKind {
        match self {
            Decoded::Depth(_) => StreamKind::Depth,
            Decoded::PartialDepth { .. } => StreamKind::PartialDepth,
            Decoded::Trade(_) => StreamKind::Trade,
            Decoded::AggTrade(_) => StreamKind::AggTrade,
            Decoded::BookTicker(_) => StreamKind::BookTicker,
            Decoded::ServerShutdown { .. } => StreamKind::ServerShutdown,
            Decoded::ControlResult { .. } | Decoded::ControlError { .. } => StreamKind::Control,
            Decoded::Other { .. } => StreamKind::Other,
        }
    }
}

/// Why a frame could not be decoded. The frame is counted as malformed and skipped (S14).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not valid JSON, or a field has the wrong type or an unparsable number.
    #[error("malformed market frame: {0}")]
    Json(#[from] serde_json::Error),
    /// Valid JSON, but not a shape kestrel knows (no `stream`/`data`, `result` or `code`).
    #[error("unrecognised market frame shape")]
    UnknownShape,
}

/// Decodes combined-stream frames into reusable buffers. One per connection task.
#[derive(Debug, Default)]
pub struct MarketDecoder {
    /// Bid levels of the last depth frame; cleared at the start of every decode, capacity kept.
    bids: Vec<Level>,
    /// Ask levels of the last depth frame.
    asks: Vec<Level>,
}

impl MarketDecoder {
    /// A decoder with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bid levels of the last `Depth`/`PartialDepth` frame.
    #[inline]
    pub fn bids(&self) -> &[Level] {
        &self.bids
    }

    /// Ask levels of the last `Depth`/`PartialDepth` frame.
    #[inline]
    pub fn asks(&self) -> &[Level] {
        &self.asks
    }

    /// Decodes one text frame.
    ///
    /// A compact `depthUpdate` in Binance's field order (nearly every frame) takes a single-pass
    /// scanner that parses the levels while checking the bytes; every other frame, and any
    /// depth frame the scanner is unsure of, goes through the general `serde_json` path. Both
    /// give identical results for every input the scanner accepts.
    #[inline]
    pub fn decode<'a>(&mut self, frame: &'a [u8]) -> Result<Decoded<'a>, DecodeError> {
        self.bids.clear();
        self.asks.clear();
        if let Some(h) = fast::depth_frame(frame, &mut self.bids, &mut self.asks) {
            return Ok(Decoded::Depth(h));
        }
        self.decode_general(frame)
    }

    /// [`MarketDecoder::decode`] without the depth fast path: `serde_json` for every frame. The
    /// reference the fast path is tested against.
    pub(crate) fn decode_general<'a>(
        &mut self,
        frame: &'a [u8],
    ) -> Result<Decoded<'a>, DecodeError> {
        self.bids.clear();
        self.asks.clear();
        let mut de = serde_json::Deserializer::from_slice(frame);
        let top = de.deserialize_map(TopVisitor { dec: self })?;
        de.end()?;
        match top {
            Top::Done(d) => Ok(d),
            Top::Deferred { stream, data } => {
                let kind = StreamKind::of_stream(stream);
                let mut de = serde_json::Deserializer::from_str(data.get());
                let d = DataSeed { dec: self, kind, stream }.deserialize(&mut de)?;
                Ok(d)
            }
        }
    }
}

/// Result of the top-level pass.
enum Top<'a> {
    Done(Decoded<'a>),
    /// `data` came before `stream`: decode the raw slice once the name is known.
    Deferred {
        stream: &'a str,
        data: &'a RawValue,
    },
}

/// Keys we look at on the top level.
enum TopKey {
    Stream,
    Data,
    Result,
    Id,
    Code,
    Msg,
    Other,
}

struct TopKeySeed;

impl<'de> DeserializeSeed<'de> for TopKeySeed {
    type Value = TopKey;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<TopKey, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for TopKeySeed {
    type Value = TopKey;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<TopKey, E> {
        Ok(match v {
            "stream" => TopKey::Stream,
            "data" => TopKey::Data,
            "result" => TopKey::Result,
            "id" => TopKey::Id,
            "code" => TopKey::Code,
            "msg" => TopKey::Msg,
            _ => TopKey::Other,
        })
    }
}

struct TopVisitor<'d> {
    dec: &'d mut MarketDecoder,
}

impl<'de> Visitor<'de> for TopVisitor<'_> {
    type Value = Top<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a combined-stream frame or control response")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top<'de>, A::Error> {
        let mut stream: Option<&'de str> = None;
        let mut decoded: Option<Decoded<'de>> = None;
        let mut raw_data: Option<&'de RawValue> = None;
        let mut has_result = false;
        let mut id: Option<i64> = None;
        let mut code: Option<i64> = None;
        let mut msg: &'de str = "";
        while let Some(key) = map.next_key_seed(TopKeySeed)? {
            match key {
                TopKey::Stream => stream = Some(map.next_value()?),
                TopKey::Data => match stream {
                    Some(s) => {
                        let kind = StreamKind::of_stream(s);
                        decoded = Some(map.next_value_seed(DataSeed {
                            dec: &mut *self.dec,
                            kind,
                            stream: s,
                        })?);
                    }
                    None => raw_data = Some(map.next_value()?),
                },
                TopKey::Result => {
                    has_result = true;
                    map.next_value::<IgnoredAny>()?;
                }
                TopKey::Id => id = map.next_value::<IdValue>()?.0,
                TopKey::Code => code = Some(map.next_value()?),
                TopKey::Msg => msg = map.next_value::<MsgStr<'de>>()?.0,
                TopKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Some(d) = decoded {
            return Ok(Top::Done(d));
        }
        if let (Some(stream), Some(data)) = (stream, raw_data) {
            return Ok(Top::Deferred { stream, data });
        }
        if let Some(code) = code {
            return Ok(Top::Done(Decoded::ControlError { code, msg }));
        }
        if has_result {
            return Ok(Top::Done(Decoded::ControlResult { id }));
        }
        Err(de::Error::custom("no stream/data, result or code"))
    }
}

/// A control id: numeric ids are kept, string/null ids become `None`.
struct IdValue(Option<i64>);

impl<'de> Deserialize<'de> for IdValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IdValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an id")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IdValue, E> {
                Ok(IdValue(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IdValue, E> {
                Ok(IdValue(i64::try_from(v).ok()))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<IdValue, E> {
                Ok(IdValue(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<IdValue, E> {
                Ok(IdValue(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A message string, borrowed when it has no escapes (else replaced by a fixed text, so the
/// error path never allocates either).
struct MsgStr<'a>(&'a str);

impl<'de> Deserialize<'de> for MsgStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MsgStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<MsgStr<'de>, E> {
                Ok(MsgStr(v))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<MsgStr<'de>, E> {
                Ok(MsgStr("(escaped message)"))
            }
        }
        d.deserialize_str(V)
    }
}

/// Decodes the `data` object according to the stream kind.
struct DataSeed<'d, 'a> {
    dec: &'d mut MarketDecoder,
    kind: StreamKind,
    stream: &'a str,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_, 'de> {
    type Value = Decoded<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Decoded<'de>, D::Error> {
        match self.kind {
            StreamKind::Depth => {
                d.deserialize_map(DepthVisitor { dec: self.dec }).map(Decoded::Depth)
            }
            StreamKind::PartialDepth => {
                let last_update_id = d.deserialize_map(PartialVisitor { dec: self.dec })?;
                Ok(Decoded::PartialDepth { stream: self.stream, last_update_id })
            }
            StreamKind::Trade => Trade::deserialize(d).map(Decoded::Trade),
            StreamKind::AggTrade => AggTrade::deserialize(d).map(Decoded::AggTrade),
            StreamKind::BookTicker => BookTicker::deserialize(d).map(Decoded::BookTicker),
            StreamKind::ServerShutdown => {
                let s = ShutdownData::deserialize(d)?;
                Ok(Decoded::ServerShutdown { event_time: s.event_time })
            }
            StreamKind::Control | StreamKind::Other => {
                // An unknown stream may still carry a serverShutdown event.
                let s = MaybeShutdown::deserialize(d)?;
                if s.e == Some(SHUTDOWN) {
                    Ok(Decoded::ServerShutdown { event_time: s.event_time.unwrap_or(0) })
                } else {
                    Ok(Decoded::Other { stream: self.stream })
                }
            }
        }
    }
}

const SHUTDOWN: &str = "serverShutdown";

#[derive(Deserialize)]
struct ShutdownData {
    #[serde(rename = "E", default)]
    event_time: u64,
}

#[derive(Deserialize)]
struct MaybeShutdown<'a> {
    #[serde(borrow, default)]
    e: Option<&'a str>,
    #[serde(rename = "E", default)]
    event_time: Option<u64>,
}

/// Reads a level list as a borrowed raw slice (serde_json only skims it, like `IgnoredAny`)
/// and parses it with the tight hand-written loop.
#[inline]
fn levels<'de, A: MapAccess<'de>>(map: &mut A, out: &mut Vec<Level>) -> Result<(), A::Error> {
    let raw: &'de RawValue = map.next_value()?;
    parse_levels_raw(raw.get().as_bytes(), out).map_err(de::Error::custom)
}

/// Keys of a `depthUpdate`.
enum DepthKey {
    EventTime,
    Symbol,
    First,
    Final,
    Bids,
    Asks,
    Other,
}

struct DepthKeySeed;

impl<'de> DeserializeSeed<'de> for DepthKeySeed {
    type Value = DepthKey;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<DepthKey, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for DepthKeySeed {
    type Value = DepthKey;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a depthUpdate field")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<DepthKey, E> {
        Ok(match v {
            "E" => DepthKey::EventTime,
            "s" => DepthKey::Symbol,
            "U" => DepthKey::First,
            "u" => DepthKey::Final,
            "b" => DepthKey::Bids,
            "a" => DepthKey::Asks,
            _ => DepthKey::Other,
        })
    }
}

struct SymbolSeed;

impl<'de> DeserializeSeed<'de> for SymbolSeed {
    type Value = Symbol;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Symbol, D::Error> {
        de_symbol(d)
    }
}

struct DepthVisitor<'d> {
    dec: &'d mut MarketDecoder,
}

impl<'de> Visitor<'de> for DepthVisitor<'_> {
    type Value = DepthHeader;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a depthUpdate object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DepthHeader, A::Error> {
        let (mut symbol, mut event_time, mut first, mut last) = (None, None, None, None);
        while let Some(key) = map.next_key_seed(DepthKeySeed)? {
            match key {
                DepthKey::EventTime => event_time = Some(map.next_value::<u64>()?),
                DepthKey::Symbol => symbol = Some(map.next_value_seed(SymbolSeed)?),
                DepthKey::First => first = Some(map.next_value::<u64>()?),
                DepthKey::Final => last = Some(map.next_value::<u64>()?),
                DepthKey::Bids => levels(&mut map, &mut self.dec.bids)?,
                DepthKey::Asks => levels(&mut map, &mut self.dec.asks)?,
                DepthKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(DepthHeader {
            symbol: symbol.ok_or_else(|| de::Error::missing_field("s"))?,
            event_time: event_time.ok_or_else(|| de::Error::missing_field("E"))?,
            first_update_id: first.ok_or_else(|| de::Error::missing_field("U"))?,
            final_update_id: last.ok_or_else(|| de::Error::missing_field("u"))?,
        })
    }
}

/// Keys of a partial-depth payload.
enum PartialKey {
    LastUpdateId,
    Bids,
    Asks,
    Other,
}

struct PartialKeySeed;

impl<'de> DeserializeSeed<'de> for PartialKeySeed {
    type Value = PartialKey;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PartialKey, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for PartialKeySeed {
    type Value = PartialKey;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a partial depth field")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<PartialKey, E> {
        Ok(match v {
            "lastUpdateId" => PartialKey::LastUpdateId,
            "bids" => PartialKey::Bids,
            "asks" => PartialKey::Asks,
            _ => PartialKey::Other,
        })
    }
}

struct PartialVisitor<'d> {
    dec: &'d mut MarketDecoder,
}

impl<'de> Visitor<'de> for PartialVisitor<'_> {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a partial depth object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut id = None;
        while let Some(key) = map.next_key_seed(PartialKeySeed)? {
            match key {
                PartialKey::LastUpdateId => id = Some(map.next_value::<u64>()?),
                PartialKey::Bids => levels(&mut map, &mut self.dec.bids)?,
                PartialKey::Asks => levels(&mut map, &mut self.dec.asks)?,
                PartialKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        id.ok_or_else(|| de::Error::missing_field("lastUpdateId"))
    }
}

#[cfg(test)]
mod tests {
    use kestrel_model::{Price, Qty};

    use super::*;

    fn testdata(name: &str) -> String {
        let path = format!("{}/../../testdata/binance/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn wrap(stream: &str, file: &str) -> String {
        format!(r#"{{"stream":"{stream}","data":{}}}"#, testdata(file))
    }

    fn l(p: &str, q: &str) -> Level {
        Level::new(p.parse::<Price>().unwrap(), q.parse::<Qty>().unwrap())
    }

    #[test]
    fn stream_kind_from_name() {
        let cases = [
            ("btcusdt@depth", StreamKind::Depth),
            ("btcusdt@depth@100ms", StreamKind::Depth),
            ("btcusdt@depth@1000ms", StreamKind::Depth),
            ("btcusdt@depth5", StreamKind::PartialDepth),
            ("btcusdt@depth20@100ms", StreamKind::PartialDepth),
            ("btcusdt@trade", StreamKind::Trade),
            ("btcusdt@aggTrade", StreamKind::AggTrade),
            ("btcusdt@bookTicker", StreamKind::BookTicker),
            ("!serverShutdown", StreamKind::ServerShutdown),
            ("btcusdt@kline_1m", StreamKind::Other),
            ("btcusdt", StreamKind::Other),
            ("btcusdt@depth@fast", StreamKind::Other),
        ];
        for (i, (name, kind)) in cases.into_iter().enumerate() {
            assert_eq!(StreamKind::of_stream(name), kind, "TC{i}: {name}");
        }
    }

    #[test]
    fn golden_depth_update_combined() {
        let mut dec = MarketDecoder::new();
        let frame = wrap("bnbbtc@depth@100ms", "ws_depthUpdate.json");
        let d = dec.decode(frame.as_bytes()).unwrap();
        assert_eq!(
            d,
            Decoded::Depth(DepthHeader {
                symbol: Symbol::new("BNBBTC").unwrap(),
                event_time: 1_672_515_782_136,
                first_update_id: 157,
                final_update_id: 160,
            })
        );
        assert_eq!(dec.bids(), &[l("0.0024", "10")]);
        assert_eq!(dec.asks(), &[l("0.0026", "100")]);
    }

    #[test]
    fn data_before_stream_is_decoded_too() {
        let mut dec = MarketDecoder::new();
        let frame =
            format!(r#"{{"data":{},"stream":"bnbbtc@depth"}}"#, testdata("ws_depthUpdate.json"));
        let d = dec.decode(frame.as_bytes()).unwrap();
        assert!(matches!(d, Decoded::Depth(h) if h.final_update_id == 160));
        assert_eq!(dec.bids(), &[l("0.0024", "10")]);
    }

    #[test]
    fn golden_other_payloads_combined() {
        let mut dec = MarketDecoder::new();
        // TC0: trade
        let f = wrap("bnbbtc@trade", "ws_trade.json");
        let Decoded::Trade(t) = dec.decode(f.as_bytes()).unwrap() else { panic!("trade") };
        assert_eq!(
            (t.trade_id, t.price, t.buyer_is_maker),
            (12345, "0.001".parse().unwrap(), true)
        );
        // TC1: aggTrade
        let f = wrap("bnbbtc@aggTrade", "ws_aggTrade.json");
        let Decoded::AggTrade(t) = dec.decode(f.as_bytes()).unwrap() else { panic!("agg") };
        assert_eq!((t.agg_trade_id, t.first_trade_id, t.last_trade_id), (12345, 100, 105));
        // TC2: bookTicker
        let f = wrap("bnbusdt@bookTicker", "ws_bookTicker.json");
        let Decoded::BookTicker(t) = dec.decode(f.as_bytes()).unwrap() else { panic!("bt") };
        assert_eq!((t.update_id, t.ask_qty), (400_900_217, "40.66".parse().unwrap()));
        // TC3: partial depth
        let f = wrap("bnbbtc@depth5@100ms", "ws_partialDepth.json");
        let d = dec.decode(f.as_bytes()).unwrap();
        assert_eq!(d, Decoded::PartialDepth { stream: "bnbbtc@depth5@100ms", last_update_id: 160 });
        assert_eq!(dec.asks(), &[l("0.0026", "100")]);
        // TC4: serverShutdown, combined vector
        let f = testdata("ws_serverShutdown_combined.json");
        assert_eq!(
            dec.decode(f.as_bytes()).unwrap(),
            Decoded::ServerShutdown { event_time: 1_770_123_456_789 }
        );
        // TC5: serverShutdown under an unexpected stream name is still recognised
        let f = wrap("whatever", "ws_serverShutdown_raw.json");
        assert!(matches!(dec.decode(f.as_bytes()).unwrap(), Decoded::ServerShutdown { .. }));
        // TC6: a stream we don't decode
        let f = wrap("bnbbtc@kline_1m", "ws_kline.json");
        assert_eq!(dec.decode(f.as_bytes()).unwrap(), Decoded::Other { stream: "bnbbtc@kline_1m" });
    }

    #[test]
    fn golden_control_frames() {
        let mut dec = MarketDecoder::new();
        for (i, (file, id)) in [
            ("ws_control_subscribe_response.json", 1),
            ("ws_control_unsubscribe_response.json", 312),
            ("ws_control_list_subscriptions_response.json", 3),
            ("ws_control_set_property_response.json", 5),
            ("ws_control_get_property_response.json", 2),
        ]
        .into_iter()
        .enumerate()
        {
            let f = testdata(file);
            assert_eq!(
                dec.decode(f.as_bytes()).unwrap(),
                Decoded::ControlResult { id: Some(id) },
                "TC{i}"
            );
        }
        let e = br#"{"code":2,"msg":"Invalid request","id":null}"#;
        assert_eq!(
            dec.decode(e).unwrap(),
            Decoded::ControlError { code: 2, msg: "Invalid request" }
        );
    }

    /// A compact depth frame in Binance's field order.
    fn compact(
        stream: &str,
        e: &str,
        nums: [&str; 3],
        sym: &str,
        sides: [&[[&str; 2]]; 2],
    ) -> String {
        let list = |v: &[[&str; 2]]| {
            let items: Vec<String> = v.iter().map(|[p, q]| format!(r#"["{p}","{q}"]"#)).collect();
            format!("[{}]", items.join(","))
        };
        format!(
            r#"{{"stream":"{stream}","data":{{"e":"{e}","E":{},"s":"{sym}","U":{},"u":{},"b":{},"a":{}}}}}"#,
            nums[0],
            nums[1],
            nums[2],
            list(sides[0]),
            list(sides[1])
        )
    }

    #[test]
    fn fast_path_takes_binance_shape_and_defers_the_rest() {
        let canonical = compact(
            "btcusdt@depth@100ms",
            "depthUpdate",
            ["1732530000123", "157", "160"],
            "BTCUSDT",
            [&[["97000.01000000", "0.50000000"], ["96999.99", "0"]], &[["97000.02000000", "12"]]],
        );
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        let h = fast::depth_frame(canonical.as_bytes(), &mut bids, &mut asks)
            .expect("TC0: the Binance shape takes the fast path");
        assert_eq!(
            (h.event_time, h.first_update_id, h.final_update_id),
            (1_732_530_000_123, 157, 160)
        );
        assert_eq!(bids, [l("97000.01", "0.5"), l("96999.99", "0")]);
        assert_eq!(asks, [l("97000.02", "12")]);
        // Shapes the scanner leaves to serde (which decodes them all the same).
        let ok_elsewhere = [
            // TC1: whitespace
            canonical.replace(r#""E":"#, r#""E": "#),
            // TC2: the doc vector, pretty-printed
            wrap("bnbbtc@depth@100ms", "ws_depthUpdate.json"),
            // TC3: an extra field (futures-style "pu")
            canonical.replace(r#","b":"#, r#","pu":149,"b":"#),
            // TC4: a price with 9 decimals of which the last is a zero
            canonical.replace("97000.01000000", "97000.010000000"),
        ];
        for (i, f) in ok_elsewhere.iter().enumerate() {
            bids.clear();
            asks.clear();
            assert!(fast::depth_frame(f.as_bytes(), &mut bids, &mut asks).is_none(), "TC{}", i + 1);
            let mut dec = MarketDecoder::new();
            assert!(matches!(dec.decode(f.as_bytes()), Ok(Decoded::Depth(_))), "TC{}: {f}", i + 1);
        }
        // TC5: an escaped stream name is deferred too, and refused by both paths alike (the
        // name is borrowed from the frame).
        let f = canonical.replace("btcusdt@depth", "btcusdt\\u0040depth");
        assert!(fast::depth_frame(f.as_bytes(), &mut bids, &mut asks).is_none());
        assert!(MarketDecoder::new().decode(f.as_bytes()).is_err());
    }

    mod fast_vs_serde {
        use proptest::prelude::*;

        use super::*;

        fn pick(v: &'static [&'static str]) -> impl Strategy<Value = String> {
            prop::sample::select(v).prop_map(str::to_string)
        }

        /// Integers: plain ones, and the edge cases of JSON and `u64`.
        fn int() -> impl Strategy<Value = String> {
            prop_oneof![
                4 => any::<u64>().prop_map(|v| v.to_string()),
                2 => (0u64..1_000).prop_map(|v| v.to_string()),
                1 => pick(&[
                    "0", "01", "00", "1.0", "-1", "1e3", "18446744073709551615",
                    "18446744073709551616", "9999999999999999999", "10000000000000000000", "\"1\"",
                ]),
            ]
        }

        /// Decimal strings: Binance-like ones, and every edge the scanner must defer or refuse.
        fn dec() -> impl Strategy<Value = String> {
            prop_oneof![
                4 => (0u64..100_000_000_000, 0u64..100_000_000)
                    .prop_map(|(i, f)| format!("{i}.{f:08}")),
                2 => (0u64..100_000, 0usize..=9).prop_map(|(v, n)| {
                    let s = v.to_string();
                    if n == 0 || n >= s.len() { s } else { format!("{}.{}", &s[..s.len() - n], &s[s.len() - n..]) }
                }),
                1 => pick(&[
                    "0", "0.00000000", "1.", ".5", "-1", "+1", "1e5", "1E5", "", "123456789012.5",
                    "99999999999.99999999", "92233720368.54775807", "92233720368.54775808",
                    "1.123456789", "1.100000000", "00012.5", "1\\u0030", " 1", "1 ", "1.2.3",
                    "\\u0031", "١",
                ]),
            ]
        }

        fn stream() -> impl Strategy<Value = String> {
            prop_oneof![
                6 => pick(&["btcusdt@depth@100ms", "btcusdt@depth"]),
                1 => pick(&[
                    "btcusdt@depth5", "btcusdt@trade", "btcusdt\\u0040depth", "bté@depth",
                    "btcusdt@depth@fast", "",
                ]),
            ]
        }

        fn symbol() -> impl Strategy<Value = String> {
            prop_oneof![
                6 => pick(&["BTCUSDT", "BNBBTC"]),
                1 => pick(&["", "btcusdt", "BTC\\u0055SDT", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "BTC USDT", "BTÇ"]),
            ]
        }

        fn side() -> impl Strategy<Value = Vec<(String, String)>> {
            prop::collection::vec((dec(), dec()), 0..6)
        }

        /// A depth frame that is mostly Binance's exact shape, sometimes with a deviation, and
        /// sometimes damaged afterwards (one byte replaced or the frame cut).
        fn frame() -> impl Strategy<Value = String> {
            let parts = (
                stream(),
                prop_oneof![8 => Just("depthUpdate".to_string()), 1 => pick(&["depthUpdat", "trade"])],
                (int(), int(), int()),
                symbol(),
                (side(), side()),
            );
            let shape = prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8), 1 => Just(4u8)];
            let damage = prop_oneof![
                6 => Just(None),
                2 => (any::<prop::sample::Index>(), prop::sample::select(&b"[]{},:\" 0123456789.-eE\\ax"[..]))
                    .prop_map(|(i, c)| Some((i, Some(c)))),
                1 => any::<prop::sample::Index>().prop_map(|i| Some((i, None))),
            ];
            (parts, shape, damage).prop_map(|((stream, e, (big_e, first, last), sym, (b, a)), shape, damage)| {
                let list = |v: &[(String, String)]| {
                    let items: Vec<String> = v.iter().map(|(p, q)| format!(r#"["{p}","{q}"]"#)).collect();
                    format!("[{}]", items.join(","))
                };
                let (b, a) = (list(&b), list(&a));
                let mut f = match shape {
                    // Binance's shape
                    0 => format!(r#"{{"stream":"{stream}","data":{{"e":"{e}","E":{big_e},"s":"{sym}","U":{first},"u":{last},"b":{b},"a":{a}}}}}"#),
                    // keys in another order
                    1 => format!(r#"{{"stream":"{stream}","data":{{"u":{last},"U":{first},"e":"{e}","s":"{sym}","a":{a},"b":{b},"E":{big_e}}}}}"#),
                    // whitespace everywhere
                    2 => format!("{{ \"stream\" : \"{stream}\" , \"data\" : {{ \"e\" : \"{e}\" , \"E\" : {big_e} , \"s\" : \"{sym}\" , \"U\" : {first} , \"u\" : {last} , \"b\" : {b} , \"a\" : {a} }} }}\n"),
                    // data before stream
                    3 => format!(r#"{{"data":{{"e":"{e}","E":{big_e},"s":"{sym}","U":{first},"u":{last},"b":{b},"a":{a}}},"stream":"{stream}"}}"#),
                    // a missing field
                    _ => format!(r#"{{"stream":"{stream}","data":{{"e":"{e}","E":{big_e},"s":"{sym}","U":{first},"b":{b},"a":{a}}}}}"#),
                };
                match damage {
                    Some((i, Some(c))) => {
                        let mut bytes = f.into_bytes();
                        let i = i.index(bytes.len());
                        bytes[i] = c;
                        f = String::from_utf8_lossy(&bytes).into_owned();
                    }
                    Some((i, None)) => {
                        let mut cut = i.index(f.len());
                        while !f.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        f.truncate(cut);
                    }
                    None => {}
                }
                f
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4096))]

            /// `decode` (fast path first) and `decode_general` (serde only) agree on every
            /// frame: the same result and levels, or both an error.
            #[test]
            fn fast_path_agrees_with_serde_path(f in frame()) {
                let (mut fast, mut general) = (MarketDecoder::new(), MarketDecoder::new());
                let took_fast = fast::depth_frame(f.as_bytes(), &mut Vec::new(), &mut Vec::new()).is_some();
                match (fast.decode(f.as_bytes()), general.decode_general(f.as_bytes())) {
                    (Ok(a), Ok(b)) => {
                        prop_assert_eq!(a, b);
                        prop_assert_eq!(fast.bids(), general.bids());
                        prop_assert_eq!(fast.asks(), general.asks());
                    }
                    (Err(_), Err(_)) => prop_assert!(!took_fast, "fast path accepted a frame serde rejects"),
                    (a, b) => prop_assert!(false, "fast {a:?} vs serde {b:?}"),
                }
            }
        }
    }

    #[test]
    fn malformed_frames_are_errors() {
        let mut dec = MarketDecoder::new();
        let cases: [&[u8]; 9] = [
            b"",
            b"not json",
            b"{",
            b"[]",
            b"{}",
            br#"{"stream":"btcusdt@depth","data":{"E":1,"s":"BTCUSDT","U":1,"b":[],"a":[]}}"#,
            br#"{"stream":"btcusdt@depth","data":{"E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["x","1"]],"a":[]}}"#,
            br#"{"stream":"btcusdt@trade","data":{"E":1}}"#,
            br#"{"stream":"btcusdt@depth","data":{"E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}} trailing"#,
        ];
        for (i, c) in cases.into_iter().enumerate() {
            assert!(dec.decode(c).is_err(), "TC{i}: {}", String::from_utf8_lossy(c));
        }
        // still usable afterwards
        let f = wrap("bnbbtc@depth", "ws_depthUpdate.json");
        assert!(dec.decode(f.as_bytes()).is_ok());
    }
}
