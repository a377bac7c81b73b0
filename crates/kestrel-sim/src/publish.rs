//! The market-stream publication path, kept cheap because it runs once per generated message:
//! stream keys (`symbol × kind` as one integer, so connections filter without comparing
//! strings), the subscription interest registry (a stream nobody subscribed to is never
//! serialised), and hand-written JSON for the stream events (straight into the frame's buffer,
//! integers through `itoa`, fixed-point decimals without floats or `format!`). The output is
//! byte-for-byte what serde gives for the [`crate::wire`] types (unit-tested below).

use std::sync::atomic::{AtomicU32, Ordering};

use axum::body::Bytes;
use axum::extract::ws::Utf8Bytes;

/// Stream suffixes the simulator publishes, indexed by [`Kind`].
pub(crate) const KINDS: [&str; 5] = ["depth", "depth@100ms", "trade", "aggTrade", "bookTicker"];

/// A market-stream kind (index into [`KINDS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `<sym>@depth` (the 1 s diff).
    DepthSlow = 0,
    /// `<sym>@depth@100ms`.
    DepthFast = 1,
    /// `<sym>@trade`.
    Trade = 2,
    /// `<sym>@aggTrade`.
    AggTrade = 3,
    /// `<sym>@bookTicker`.
    BookTicker = 4,
}

impl Kind {
    /// Every kind, in [`KINDS`] order.
    pub const ALL: [Kind; 5] =
        [Kind::DepthSlow, Kind::DepthFast, Kind::Trade, Kind::AggTrade, Kind::BookTicker];
}

/// One stream as an integer: `symbol index × 5 + kind`.
pub(crate) type StreamKey = u32;

/// The key of `kind` on symbol `sym`.
pub(crate) fn key(sym: usize, kind: Kind) -> StreamKey {
    // Symbols are a config list; far fewer than u32::MAX / 5.
    (sym as u32) * KINDS.len() as u32 + kind as u32
}

/// How many connections subscribe to each stream. The exchange skips serialising a stream
/// with no subscriber; connections add their keys on subscribe and remove them on unsubscribe
/// and when they end ([`InterestGuard`]).
#[derive(Debug)]
pub(crate) struct Interest {
    /// Subscriber count per [`StreamKey`].
    counts: Vec<AtomicU32>,
}

impl Interest {
    /// A registry for `symbols` symbols, nobody subscribed.
    pub fn new(symbols: usize) -> Self {
        Self { counts: (0..symbols * KINDS.len()).map(|_| AtomicU32::new(0)).collect() }
    }

    /// True if at least one connection subscribes to `k`.
    pub fn wanted(&self, k: StreamKey) -> bool {
        self.counts.get(k as usize).is_some_and(|c| c.load(Ordering::Relaxed) > 0)
    }

    fn add(&self, k: StreamKey) {
        if let Some(c) = self.counts.get(k as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn remove(&self, k: StreamKey) {
        if let Some(c) = self.counts.get(k as usize) {
            let _ = c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
        }
    }

    /// Number of stream keys (symbols × kinds).
    pub fn len(&self) -> usize {
        self.counts.len()
    }
}

/// One connection's subscribed keys, mirrored into the shared [`Interest`]; releases them
/// when dropped, whichever way the connection ends.
#[derive(Debug)]
pub(crate) struct InterestGuard {
    /// The shared registry.
    interest: std::sync::Arc<Interest>,
    /// Subscribed or not, per key (a bitmap: the per-message filter is one index).
    mine: Vec<bool>,
}

impl InterestGuard {
    /// No subscription yet.
    pub fn new(interest: std::sync::Arc<Interest>) -> Self {
        let mine = vec![false; interest.len()];
        Self { interest, mine }
    }

    /// Subscribes to `k` (no-op if already).
    pub fn add(&mut self, k: StreamKey) {
        if let Some(m) = self.mine.get_mut(k as usize) {
            if !*m {
                *m = true;
                self.interest.add(k);
            }
        }
    }

    /// Unsubscribes from `k` (no-op if not subscribed).
    pub fn remove(&mut self, k: StreamKey) {
        if let Some(m) = self.mine.get_mut(k as usize) {
            if *m {
                *m = false;
                self.interest.remove(k);
            }
        }
    }

    /// True if this connection subscribes to `k`.
    pub fn has(&self, k: StreamKey) -> bool {
        self.mine.get(k as usize).copied().unwrap_or(false)
    }
}

impl Drop for InterestGuard {
    fn drop(&mut self) {
        for (k, m) in self.mine.iter().enumerate() {
            if *m {
                self.interest.remove(k as StreamKey);
            }
        }
    }
}

/// Appends `s` as a JSON string literal (quotes and escapes included).
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(char::from(HEX[(c as usize) >> 4]));
                out.push(char::from(HEX[(c as usize) & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends an unsigned integer.
pub(crate) fn push_u64(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// Appends a 1e-8 fixed-point mantissa as a JSON string with exactly 8 decimals
/// (`"65000.01000000"`), as [`crate::wire::f8`] formats it.
pub(crate) fn push_f8(out: &mut String, mantissa: i64) {
    out.push('"');
    if mantissa < 0 {
        out.push('-');
    }
    let abs = mantissa.unsigned_abs();
    push_u64(out, abs / 100_000_000);
    out.push('.');
    // 1xxxxxxxx: the leading 1 keeps the 8 fraction digits' zeros.
    let mut b = itoa::Buffer::new();
    let frac = b.format(abs % 100_000_000 + 100_000_000);
    out.push_str(frac.get(1..).unwrap_or("00000000"));
    out.push('"');
}

/// Appends a JSON boolean.
pub(crate) fn push_bool(out: &mut String, v: bool) {
    out.push_str(if v { "true" } else { "false" });
}

/// Per-symbol precomputed JSON fragments, so an event costs no string escaping.
#[derive(Debug, Clone)]
pub(crate) struct Heads {
    /// `{"stream":"<sym>@<kind>","data":` per [`Kind`].
    pub stream: [String; 5],
    /// The exchange symbol as a JSON string literal (`"BTCUSDT"`).
    pub symbol: String,
}

impl Heads {
    /// Fragments for the symbol `symbol` with stream prefix `lower`.
    pub fn new(symbol: &str, lower: &str) -> Self {
        let stream = KINDS.map(|k| {
            let mut s = String::from("{\"stream\":");
            push_json_str(&mut s, &format!("{lower}@{k}"));
            s.push_str(",\"data\":");
            s
        });
        let mut sym = String::new();
        push_json_str(&mut sym, symbol);
        Self { stream, symbol: sym }
    }
}

/// A frame being written: `{"stream":..,"data":` + event + `}` in one buffer; the raw payload
/// is a zero-copy slice of it.
#[derive(Debug)]
pub(crate) struct Frame {
    /// The combined-stream text so far.
    pub buf: String,
    /// Where the event (the raw payload) starts in `buf`.
    data_start: usize,
}

impl Frame {
    /// Starts a frame of the stream whose combined head is `head`; `hint` is the expected
    /// event size.
    pub fn start(head: &str, hint: usize) -> Self {
        let mut buf = String::with_capacity(head.len() + hint + 1);
        buf.push_str(head);
        Self { data_start: buf.len(), buf }
    }

    /// Closes the envelope: `(raw, combined)` payloads sharing one allocation.
    pub fn finish(mut self) -> (Utf8Bytes, Utf8Bytes) {
        let end = self.buf.len();
        self.buf.push('}');
        let all = Bytes::from(self.buf);
        let raw = all.slice(self.data_start..end);
        // Both are whole UTF-8 strings: the cut points are ASCII bytes we wrote.
        let raw = Utf8Bytes::try_from(raw).unwrap_or_default();
        let combined = Utf8Bytes::try_from(all).unwrap_or_default();
        (raw, combined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_strings() {
        // TC0..: fixed point like wire::f8, inside quotes.
        for m in [
            0i64,
            1,
            -1,
            99_999_999,
            100_000_000,
            -150_000_000,
            6_500_001_000_000,
            i64::MAX,
            i64::MIN,
        ] {
            let mut s = String::new();
            push_f8(&mut s, m);
            assert_eq!(s, format!("\"{}\"", crate::wire::f8(m)), "{m}");
        }
        let mut s = String::new();
        push_json_str(&mut s, "a\"b\\c\u{1}é");
        assert_eq!(s, serde_json::to_string("a\"b\\c\u{1}é").unwrap());
    }

    #[test]
    fn frame_shares_raw_and_combined() {
        let h = Heads::new("BTCUSDT", "btcusdt");
        let mut f = Frame::start(&h.stream[Kind::Trade as usize], 16);
        f.buf.push_str("{\"x\":1}");
        let (raw, combined) = f.finish();
        assert_eq!(raw.as_str(), "{\"x\":1}");
        assert_eq!(combined.as_str(), "{\"stream\":\"btcusdt@trade\",\"data\":{\"x\":1}}");
    }

    #[test]
    fn interest_counts_and_guard_releases() {
        let i = std::sync::Arc::new(Interest::new(2));
        let k = key(1, Kind::Trade);
        let mut a = InterestGuard::new(i.clone());
        let mut b = InterestGuard::new(i.clone());
        a.add(k);
        a.add(k);
        b.add(k);
        assert!(i.wanted(k) && a.has(k) && !a.has(key(0, Kind::Trade)));
        a.remove(k);
        assert!(i.wanted(k));
        drop(b);
        assert!(!i.wanted(k));
    }
}
