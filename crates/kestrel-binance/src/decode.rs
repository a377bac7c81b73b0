//! Hot-path decoder for combined market-stream frames (`{"stream":..,"data":..}`).
//!
//! Two paths, same results. The hot one (`fast`, private) is a hand-written single-pass scanner
//! for the exact shapes Binance (and kestrel-sim) send for diff depth and trades (compact JSON,
//! fields in the documented order): it checks the bytes and parses every price/quantity into
//! [`Price`]/[`Qty`] in the same pass. Anything it is not sure of falls back to the general path: `serde_json`'s borrowing
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
    /// A compact `depthUpdate` or `trade` in Binance's field order (nearly every frame) takes a
    /// single-pass scanner that parses the numbers while checking the bytes; every other frame,
    /// and any depth or trade frame the scanner is unsure of, goes through the general
    /// `serde_json` path. Both give identical results for every input the scanner accepts.
    #[inline]
    pub fn decode<'a>(&mut self, frame: &'a [u8]) -> Result<Decoded<'a>, DecodeError> {
        self.bids.clear();
        self.asks.clear();
        if let Some(d) = fast::frame(frame, &mut self.bids, &mut self.asks) {
            return Ok(d);
        }
        self.decode_general(frame)
    }

    /// [`MarketDecoder::decode`] without the single-pass scanner: `serde_json` for every frame.
    /// The reference the scanner is tested against, and the baseline of the `depth_decode`
    /// bench; production code calls [`MarketDecoder::decode`].
    pub fn decode_general<'a>(&mut self, frame: &'a [u8]) -> Result<Decoded<'a>, DecodeError> {
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
        let Some(Decoded::Depth(h)) = fast::frame(canonical.as_bytes(), &mut bids, &mut asks)
        else {
            panic!("TC0: the Binance shape takes the fast path")
        };
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
            assert!(fast::frame(f.as_bytes(), &mut bids, &mut asks).is_none(), "TC{}", i + 1);
            let mut dec = MarketDecoder::new();
            assert!(matches!(dec.decode(f.as_bytes()), Ok(Decoded::Depth(_))), "TC{}: {f}", i + 1);
        }
        // TC5: an escaped stream name is deferred too, and refused by both paths alike (the
        // name is borrowed from the frame).
        let f = canonical.replace("btcusdt@depth", "btcusdt\\u0040depth");
        assert!(fast::frame(f.as_bytes(), &mut bids, &mut asks).is_none());
        assert!(MarketDecoder::new().decode(f.as_bytes()).is_err());
    }

    /// `json` without the whitespace outside strings (the doc vectors are pretty-printed; Binance
    /// sends compact JSON), keys kept in their order.
    fn compact_json(json: &str) -> String {
        let (mut out, mut in_str, mut escaped) = (String::new(), false, false);
        for c in json.chars() {
            if in_str {
                in_str = escaped || c != '"';
                escaped = !escaped && c == '\\';
            } else if c.is_ascii_whitespace() {
                continue;
            } else {
                in_str = c == '"';
            }
            out.push(c);
        }
        out
    }

    /// A Binance-shaped trade frame as kestrel-sim writes it (`publish.rs`/`exchange.rs`: 8
    /// fraction digits, `M` always true).
    const TRADE: &str = r#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1732530000123,"s":"BTCUSDT","t":4242,"p":"97000.01000000","q":"0.00100000","T":1732530000120,"m":false,"M":true}}"#;

    fn trade_of(d: Option<Decoded<'_>>) -> Option<Trade> {
        match d {
            Some(Decoded::Trade(t)) => Some(t),
            _ => None,
        }
    }

    #[test]
    fn golden_trade_doc_vector_on_both_paths() {
        let want = Trade {
            event_time: 1_672_515_782_136,
            symbol: Symbol::new("BNBBTC").unwrap(),
            trade_id: 12345,
            price: "0.001".parse().unwrap(),
            qty: "100".parse().unwrap(),
            trade_time: 1_672_515_782_136,
            buyer_is_maker: true,
            ignore: Some(true),
        };
        // TC0: the vector as Binance sends it (compact) takes the fast path.
        let compact = compact_json(&wrap("bnbbtc@trade", "ws_trade.json"));
        assert_eq!(
            compact,
            r#"{"stream":"bnbbtc@trade","data":{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}}"#
        );
        let fast = fast::frame(compact.as_bytes(), &mut Vec::new(), &mut Vec::new());
        assert_eq!(trade_of(fast), Some(want), "TC0: fast path");
        let mut dec = MarketDecoder::new();
        assert_eq!(dec.decode(compact.as_bytes()).unwrap(), Decoded::Trade(want), "TC0");
        assert_eq!(dec.decode_general(compact.as_bytes()).unwrap(), Decoded::Trade(want), "TC0");
        // TC1: the pretty-printed doc text is left to serde, with the same value.
        let pretty = wrap("bnbbtc@trade", "ws_trade.json");
        assert!(fast::frame(pretty.as_bytes(), &mut Vec::new(), &mut Vec::new()).is_none());
        assert_eq!(dec.decode(pretty.as_bytes()).unwrap(), Decoded::Trade(want), "TC1");
    }

    #[test]
    fn fast_path_takes_the_trade_shape_of_binance_and_the_sim() {
        let want = Trade {
            event_time: 1_732_530_000_123,
            symbol: Symbol::new("BTCUSDT").unwrap(),
            trade_id: 4242,
            price: "97000.01".parse().unwrap(),
            qty: "0.001".parse().unwrap(),
            trade_time: 1_732_530_000_120,
            buyer_is_maker: false,
            ignore: Some(true),
        };
        let mut dec = MarketDecoder::new();
        for (i, (f, want)) in [
            // TC0: as kestrel-sim writes it (8 fraction digits)
            (TRADE.to_string(), want),
            // TC1: buyer is maker, `M` false, short decimals, zero ids
            (
                TRADE
                    .replace(r#""m":false,"M":true"#, r#""m":true,"M":false"#)
                    .replace("97000.01000000", "97000.01")
                    .replace("0.00100000", "5")
                    .replace(r#""t":4242"#, r#""t":0"#),
                Trade {
                    buyer_is_maker: true,
                    ignore: Some(false),
                    qty: "5".parse().unwrap(),
                    trade_id: 0,
                    ..want
                },
            ),
            // TC2: a speed suffix on the stream name is still a trade stream
            (TRADE.replace("btcusdt@trade", "btcusdt@trade@100ms"), want),
        ]
        .into_iter()
        .enumerate()
        {
            let fast = fast::frame(f.as_bytes(), &mut Vec::new(), &mut Vec::new());
            assert_eq!(trade_of(fast), Some(want), "TC{i}: {f}");
            assert_eq!(dec.decode_general(f.as_bytes()).unwrap(), Decoded::Trade(want), "TC{i}");
        }
    }

    #[test]
    fn non_canonical_trade_frames_fall_back_to_serde() {
        // (frame, does serde decode it?) — the scanner must defer every one; both paths then
        // give the same result.
        let cases: Vec<(String, bool)> = vec![
            // TC0: whitespace
            (TRADE.replace(r#""t":"#, r#""t": "#), true),
            // TC1: the doc vector, pretty-printed
            (wrap("bnbbtc@trade", "ws_trade.json"), true),
            // TC2: keys in another order
            (
                TRADE.replace(
                    r#""p":"97000.01000000","q":"0.00100000""#,
                    r#""q":"0.00100000","p":"97000.01000000""#,
                ),
                true,
            ),
            // TC3: extra fields (the buyer/seller order ids of older docs)
            (TRADE.replace(r#","T":"#, r#","b":88,"a":50,"T":"#), true),
            // TC4: `M` absent
            (TRADE.replace(r#","M":true"#, ""), true),
            // TC5: `M` null
            (TRADE.replace(r#""M":true"#, r#""M":null"#), true),
            // TC6: an escaped symbol
            (TRADE.replace(r#""BTCUSDT""#, r#""BTC\u0055SDT""#), true),
            // TC7: 9 decimals, the last a zero
            (TRADE.replace("97000.01000000", "97000.010000000"), true),
            // TC8: trailing newline
            (format!("{TRADE}\n"), true),
            // TC9: data before stream
            (
                format!(
                    r#"{{"data":{},"stream":"btcusdt@trade"}}"#,
                    compact_json(&testdata("ws_trade.json"))
                ),
                true,
            ),
            // TC10: another `e` on a trade stream (serde dispatches on the stream name only)
            (TRADE.replace(r#""e":"trade""#, r#""e":"trades""#), true),
            // TC11: a non-ASCII symbol (UTF-8 symbols, SPEC.md §10)
            (TRADE.replace(r#""BTCUSDT""#, r#""币安USDT""#), true),
            // TC12..: refused by both
            // TC12: `t` missing
            (TRADE.replace(r#""t":4242,"#, ""), false),
            // TC13: `m` as a string
            (TRADE.replace(r#""m":false"#, r#""m":"false""#), false),
            // TC14: negative event time
            (TRADE.replace(r#""E":1732530000123"#, r#""E":-1"#), false),
            // TC15: exponent price
            (TRADE.replace("97000.01000000", "9.700001e4"), false),
            // TC16: a price as a JSON number
            (TRADE.replace(r#""97000.01000000""#, "97000.01"), false),
            // TC17: truncated
            (TRADE[..TRADE.len() - 1].to_string(), false),
            // TC18: a duplicate field
            (TRADE.replace(r#","M":true"#, r#","M":true,"t":1"#), false),
        ];
        for (i, (f, ok)) in cases.iter().enumerate() {
            assert!(
                fast::frame(f.as_bytes(), &mut Vec::new(), &mut Vec::new()).is_none(),
                "TC{i}: {f}"
            );
            let (mut a, mut b) = (MarketDecoder::new(), MarketDecoder::new());
            let (fast_first, general) = (a.decode(f.as_bytes()), b.decode_general(f.as_bytes()));
            assert_eq!(fast_first.is_ok(), *ok, "TC{i}: {f}: {fast_first:?}");
            assert_eq!(fast_first.ok(), general.ok(), "TC{i}");
            if *ok {
                assert!(matches!(a.decode(f.as_bytes()), Ok(Decoded::Trade(_))), "TC{i}");
            }
        }
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

        /// Damage to apply to a generated frame: none, one byte replaced, or the frame cut.
        type Damage = Option<(prop::sample::Index, Option<u8>)>;

        fn damage() -> impl Strategy<Value = Damage> {
            prop_oneof![
                6 => Just(None),
                2 => (any::<prop::sample::Index>(), prop::sample::select(&b"[]{},:\" 0123456789.-eE\\axtfnul"[..]))
                    .prop_map(|(i, c)| Some((i, Some(c)))),
                1 => any::<prop::sample::Index>().prop_map(|i| Some((i, None))),
            ]
        }

        fn apply(mut f: String, damage: Damage) -> String {
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
        }

        /// Either kind the scanner handles, half and half.
        fn frame() -> impl Strategy<Value = String> {
            prop_oneof![depth_frame(), trade_frame()]
        }

        /// A depth frame that is mostly Binance's exact shape, sometimes with a deviation, and
        /// sometimes damaged afterwards (one byte replaced or the frame cut).
        fn depth_frame() -> impl Strategy<Value = String> {
            let parts = (
                stream(),
                prop_oneof![8 => Just("depthUpdate".to_string()), 1 => pick(&["depthUpdat", "trade"])],
                (id(), id(), id()),
                symbol(),
                (side(), side()),
            );
            let shape = prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8), 1 => Just(4u8)];
            (parts, shape, damage()).prop_map(|((stream, e, (big_e, first, last), sym, (b, a)), shape, damage)| {
                let list = |v: &[(String, String)]| {
                    let items: Vec<String> = v.iter().map(|(p, q)| format!(r#"["{p}","{q}"]"#)).collect();
                    format!("[{}]", items.join(","))
                };
                let (b, a) = (list(&b), list(&a));
                let f = match shape {
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
                apply(f, damage)
            })
        }

        fn trade_stream() -> impl Strategy<Value = String> {
            prop_oneof![
                6 => pick(&["btcusdt@trade", "bnbbtc@trade"]),
                1 => pick(&[
                    "btcusdt@trade@100ms", "btcusdt@aggTrade", "btcusdt@depth", "btcusdt\\u0040trade",
                    "bté@trade", "btcusdt@trade@fast", "",
                ]),
            ]
        }

        /// Ids and times: mostly realistic (so enough frames reach the end of the scanner:
        /// a quarter of `any::<u64>()` has 20 digits, which the scanner defers), else [`int`]'s
        /// edge cases.
        fn id() -> impl Strategy<Value = String> {
            prop_oneof![
                3 => (0u64..2_000_000_000_000).prop_map(|v| v.to_string()),
                2 => int(),
            ]
        }

        /// A JSON boolean, mostly, or something serde refuses (or, for `M`, maps to `None`).
        fn boolean() -> impl Strategy<Value = String> {
            prop_oneof![
                12 => pick(&["true", "false"]),
                1 => pick(&["null", "\"true\"", "1", "tru", "falsey", "True"]),
            ]
        }

        /// A trade frame: mostly Binance's (and kestrel-sim's) exact shape, sometimes with a
        /// deviation, sometimes damaged afterwards.
        fn trade_frame() -> impl Strategy<Value = String> {
            let parts = (
                trade_stream(),
                prop_oneof![8 => Just("trade".to_string()), 1 => pick(&["trad", "aggTrade", "depthUpdate"])],
                (id(), id(), id()),
                symbol(),
                (dec(), dec()),
                (boolean(), boolean()),
            );
            let shape = prop_oneof![6 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8), 1 => Just(4u8), 1 => Just(5u8), 1 => Just(6u8)];
            (parts, shape, damage()).prop_map(|((stream, e, (big_e, t, big_t), sym, (p, q), (m, big_m)), shape, damage)| {
                let f = match shape {
                    // Binance's shape
                    0 => format!(r#"{{"stream":"{stream}","data":{{"e":"{e}","E":{big_e},"s":"{sym}","t":{t},"p":"{p}","q":"{q}","T":{big_t},"m":{m},"M":{big_m}}}}}"#),
                    // keys in another order
                    1 => format!(r#"{{"stream":"{stream}","data":{{"T":{big_t},"t":{t},"e":"{e}","s":"{sym}","q":"{q}","p":"{p}","M":{big_m},"m":{m},"E":{big_e}}}}}"#),
                    // whitespace everywhere
                    2 => format!("{{ \"stream\" : \"{stream}\" , \"data\" : {{ \"e\" : \"{e}\" , \"E\" : {big_e} , \"s\" : \"{sym}\" , \"t\" : {t} , \"p\" : \"{p}\" , \"q\" : \"{q}\" , \"T\" : {big_t} , \"m\" : {m} , \"M\" : {big_m} }} }}\n"),
                    // data before stream
                    3 => format!(r#"{{"data":{{"e":"{e}","E":{big_e},"s":"{sym}","t":{t},"p":"{p}","q":"{q}","T":{big_t},"m":{m},"M":{big_m}}},"stream":"{stream}"}}"#),
                    // a missing field (`t`)
                    4 => format!(r#"{{"stream":"{stream}","data":{{"e":"{e}","E":{big_e},"s":"{sym}","p":"{p}","q":"{q}","T":{big_t},"m":{m},"M":{big_m}}}}}"#),
                    // `M` absent
                    5 => format!(r#"{{"stream":"{stream}","data":{{"e":"{e}","E":{big_e},"s":"{sym}","t":{t},"p":"{p}","q":"{q}","T":{big_t},"m":{m}}}}}"#),
                    // extra fields (older docs' buyer/seller order ids)
                    _ => format!(r#"{{"stream":"{stream}","data":{{"e":"{e}","E":{big_e},"s":"{sym}","t":{t},"p":"{p}","q":"{q}","b":{t},"a":{big_e},"T":{big_t},"m":{m},"M":{big_m}}}}}"#),
                };
                apply(f, damage)
            })
        }

        /// The generators are worth running only if many of their frames get through the
        /// scanner: at least 5 % of trade frames and 2.5 % of depth frames (which can go wrong
        /// in more places) must take the fast path. The runner is deterministic (at the time of
        /// writing: 162 and 86 of 2,000).
        #[test]
        fn generated_frames_often_take_the_fast_path() {
            use proptest::strategy::ValueTree;
            use proptest::test_runner::TestRunner;
            let mut runner = TestRunner::deterministic();
            let (mut trades, mut depths) = (0, 0);
            for _ in 0..2_000 {
                let t = trade_frame().new_tree(&mut runner).unwrap().current();
                if matches!(
                    fast::frame(t.as_bytes(), &mut Vec::new(), &mut Vec::new()),
                    Some(Decoded::Trade(_))
                ) {
                    trades += 1;
                }
                let d = depth_frame().new_tree(&mut runner).unwrap().current();
                if matches!(
                    fast::frame(d.as_bytes(), &mut Vec::new(), &mut Vec::new()),
                    Some(Decoded::Depth(_))
                ) {
                    depths += 1;
                }
            }
            assert!(trades >= 100 && depths >= 50, "trades {trades}, depths {depths} of 2000 each");
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4096))]

            /// `decode` (fast path first) and `decode_general` (serde only) agree on every
            /// frame: the same result and levels, or both an error.
            #[test]
            fn fast_path_agrees_with_serde_path(f in frame()) {
                let (mut fast, mut general) = (MarketDecoder::new(), MarketDecoder::new());
                let took_fast = fast::frame(f.as_bytes(), &mut Vec::new(), &mut Vec::new()).is_some();
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
