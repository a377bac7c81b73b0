//! Single-pass scanner for the two frame shapes that make up nearly all market-data traffic:
//! compact combined-stream `depthUpdate` and `trade` frames, fields in Binance's order,
//!
//! ```text
//! {"stream":"<name>","data":{"e":"depthUpdate","E":<n>,"s":"<sym>","U":<n>,"u":<n>,"b":[["<p>","<q>"],..],"a":[..]}}
//! {"stream":"<name>","data":{"e":"trade","E":<n>,"s":"<sym>","t":<n>,"p":"<p>","q":"<q>","T":<n>,"m":<bool>,"M":<bool>}}
//! ```
//!
//! It checks the bytes and parses every price and quantity in the same pass (the general path
//! lets `serde_json` skim a level list and then walks it a second time, and drives a trade
//! through serde's derived visitor field by field). Anything else — other key order,
//! whitespace, extra or missing fields, `null`, escapes, non-ASCII, signs, exponents, more than
//! 11 integer or 8 fractional digits, leading zeros in an integer, another stream kind — makes
//! it give up, and the caller decodes the frame with the general `serde_json` path, which
//! accepts or rejects it. So the scanner only ever *accepts* frames the general path decodes to
//! exactly the same value; `tests::fast_vs_serde::fast_path_agrees_with_serde_path` checks that
//! property.

use kestrel_model::{Level, Price, Qty, Symbol};

use super::{Decoded, DepthHeader, StreamKind};
use crate::wire::market::Trade;

/// Powers of ten to scale a fraction of `n` digits to 8: `POW10[8 - n]`.
const POW10: [u64; 9] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000];

/// True if all 8 bytes of `w` are ASCII digits.
#[inline(always)]
fn eight_digits(w: u64) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    // Every byte is 0x30..=0x39: high nibble 3, and adding 6 does not carry into it.
    (w & HIGH) == 0x3030_3030_3030_3030
        && (w.wrapping_add(0x0606_0606_0606_0606) & HIGH) == 0x3030_3030_3030_3030
}

/// The value of 8 ASCII digits read as a little-endian word (first digit in the low byte):
/// neighbours combine into 4 two-digit numbers in bytes 0, 2, 4, 6, and two multiplications
/// weight and add those in the high half (Lemire, "Fast number parsing", 2018).
#[inline(always)]
fn eight_digits_value(w: u64) -> u64 {
    const MASK: u64 = 0x0000_00FF_0000_00FF;
    const MUL1: u64 = 100 + (1_000_000 << 32);
    const MUL2: u64 = 1 + (10_000 << 32);
    let v = w - 0x3030_3030_3030_3030;
    let v = v.wrapping_mul(10) + (v >> 8);
    ((v & MASK).wrapping_mul(MUL1).wrapping_add(((v >> 16) & MASK).wrapping_mul(MUL2))) >> 32
}

/// A cursor over the frame. Every method returns `None` when the bytes are not exactly the
/// expected form; nothing is consumed that the caller would need afterwards.
struct Cur<'a> {
    /// The whole frame.
    b: &'a [u8],
    /// Next unread byte.
    i: usize,
}

impl<'a> Cur<'a> {
    /// Consumes `lit` exactly.
    #[inline(always)]
    fn lit(&mut self, lit: &[u8]) -> Option<()> {
        let end = self.i + lit.len();
        if self.b.get(self.i..end)? == lit {
            self.i = end;
            Some(())
        } else {
            None
        }
    }

    /// Consumes one byte and returns it.
    #[inline(always)]
    fn byte(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    /// A JSON `true` or `false`. What follows is left for the caller's next literal to check.
    #[inline(always)]
    fn boolean(&mut self) -> Option<bool> {
        if self.lit(b"true").is_some() {
            Some(true)
        } else {
            self.lit(b"false").map(|()| false)
        }
    }

    /// The body of a string whose opening quote is consumed, up to and including the closing
    /// quote: printable ASCII without escapes only (so it is valid UTF-8 and JSON decodes it to
    /// the same bytes).
    #[inline]
    fn plain_str(&mut self) -> Option<&'a str> {
        let rest = self.b.get(self.i..)?;
        let len =
            rest.iter().position(|&c| c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c))?;
        if rest[len] != b'"' {
            return None;
        }
        self.i += len + 1;
        // All bytes are ASCII, so this cannot fail; `ok()` keeps the no-panic rule anyway.
        std::str::from_utf8(&rest[..len]).ok()
    }

    /// A JSON unsigned integer that fits `u64` with room to spare (at most 19 digits, no leading
    /// zero unless it is `0`). A following `.`/`e` or digit after a leading zero is left for the
    /// caller's next literal to reject.
    #[inline(always)]
    fn uint(&mut self) -> Option<u64> {
        let start = self.i;
        let d = self.b.get(start)?.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        let mut v = u64::from(d);
        self.i += 1;
        if d == 0 {
            return Some(0);
        }
        while let Some(&c) = self.b.get(self.i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            if self.i - start == 19 {
                return None;
            }
            v = v * 10 + u64::from(d);
            self.i += 1;
        }
        Some(v)
    }

    /// A plain decimal (`97123.45000000`) up to and including the closing quote of its string,
    /// as a 1e-8 mantissa: 1–11 integer digits, optionally `.` and 1–8 fraction digits. The same
    /// inputs the wire layer's `fast_mantissa` accepts, with the same value.
    ///
    /// Binance always sends exactly 8 fraction digits; those are checked and converted as one
    /// 8-byte word (SWAR) instead of digit by digit.
    #[inline(always)]
    fn decimal(&mut self) -> Option<i64> {
        let b = self.b;
        let start = self.i;
        let mut i = start;
        let mut int: u64 = 0;
        while let Some(&c) = b.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            if i - start == 11 {
                return None;
            }
            int = int * 10 + u64::from(d);
            i += 1;
        }
        if i == start {
            return None; // empty integer part
        }
        match b.get(i) {
            Some(b'"') => {
                self.i = i + 1;
                return i64::try_from(int * 100_000_000).ok();
            }
            Some(b'.') => i += 1,
            _ => return None,
        }
        if let Some(w) = b.get(i..i + 9) {
            let word = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            if w[8] == b'"' && eight_digits(word) {
                self.i = i + 9;
                return i64::try_from(int * 100_000_000 + eight_digits_value(word)).ok();
            }
        }
        let frac_start = i;
        let mut frac: u64 = 0;
        loop {
            let c = *b.get(i)?;
            let d = c.wrapping_sub(b'0');
            let n = i - frac_start;
            if d <= 9 {
                if n == 8 {
                    return None;
                }
                frac = frac * 10 + u64::from(d);
                i += 1;
                continue;
            }
            if c != b'"' || n == 0 {
                return None;
            }
            self.i = i + 1;
            return i64::try_from(int * 100_000_000 + frac * POW10[8 - n]).ok();
        }
    }

    /// A level list `[["p","q"],...]` appended to `out`.
    #[inline(always)]
    fn levels(&mut self, out: &mut Vec<Level>) -> Option<()> {
        self.lit(b"[")?;
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Some(());
        }
        loop {
            self.lit(b"[\"")?;
            let p = self.decimal()?;
            self.lit(b",\"")?;
            let q = self.decimal()?;
            self.lit(b"]")?;
            out.push(Level::new(Price::from_mantissa(p), Qty::from_mantissa(q)));
            match self.byte()? {
                b',' => {}
                b']' => return Some(()),
                _ => return None,
            }
        }
    }
}

/// Decodes `frame` if it is a compact diff-depth or trade frame in Binance's field order (the
/// stream name, read once, picks which). Depth levels are appended to `bids`/`asks`. `None`
/// means "not this shape, use the general path"; the buffers may then hold a partial list and
/// must be cleared by the caller.
#[inline]
pub(super) fn frame<'a>(
    frame: &'a [u8],
    bids: &mut Vec<Level>,
    asks: &mut Vec<Level>,
) -> Option<Decoded<'a>> {
    let mut c = Cur { b: frame, i: 0 };
    c.lit(br#"{"stream":""#)?;
    let stream = c.plain_str()?;
    let decoded = match StreamKind::of_stream(stream) {
        StreamKind::Depth => Decoded::Depth(depth_data(&mut c, bids, asks)?),
        StreamKind::Trade => Decoded::Trade(trade_data(&mut c)?),
        _ => return None,
    };
    // The closing brace of `data`, then of the frame, and nothing after (not even whitespace).
    c.lit(b"}}")?;
    if c.i != frame.len() {
        return None;
    }
    Some(decoded)
}

/// The `data` object of a diff-depth frame, from `,"data":{` up to (not including) its closing
/// brace.
#[inline(always)]
fn depth_data(
    c: &mut Cur<'_>,
    bids: &mut Vec<Level>,
    asks: &mut Vec<Level>,
) -> Option<DepthHeader> {
    c.lit(br#","data":{"e":"depthUpdate","E":"#)?;
    let event_time = c.uint()?;
    c.lit(br#","s":""#)?;
    let symbol = Symbol::new(c.plain_str()?).ok()?;
    c.lit(br#","U":"#)?;
    let first_update_id = c.uint()?;
    c.lit(br#","u":"#)?;
    let final_update_id = c.uint()?;
    c.lit(br#","b":"#)?;
    c.levels(bids)?;
    c.lit(br#","a":"#)?;
    c.levels(asks)?;
    Some(DepthHeader { symbol, event_time, first_update_id, final_update_id })
}

/// The `data` object of a trade frame, from `,"data":{` up to (not including) its closing
/// brace: the nine fields of SPEC.md §2 in Binance's order, `M` included (the general path
/// gives `ignore: None` when it is absent or `null`; the scanner leaves those frames to it).
#[inline(always)]
fn trade_data(c: &mut Cur<'_>) -> Option<Trade> {
    c.lit(br#","data":{"e":"trade","E":"#)?;
    let event_time = c.uint()?;
    c.lit(br#","s":""#)?;
    let symbol = Symbol::new(c.plain_str()?).ok()?;
    c.lit(br#","t":"#)?;
    let trade_id = c.uint()?;
    c.lit(br#","p":""#)?;
    let price = Price::from_mantissa(c.decimal()?);
    c.lit(br#","q":""#)?;
    let qty = Qty::from_mantissa(c.decimal()?);
    c.lit(br#","T":"#)?;
    let trade_time = c.uint()?;
    c.lit(br#","m":"#)?;
    let buyer_is_maker = c.boolean()?;
    c.lit(br#","M":"#)?;
    let ignore = Some(c.boolean()?);
    Some(Trade { event_time, symbol, trade_id, price, qty, trade_time, buyer_is_maker, ignore })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_digit_words() {
        for (i, s) in ["00000000", "12345678", "99999999", "01000000", "50000000", "00000001"]
            .into_iter()
            .enumerate()
        {
            let b = s.as_bytes();
            let w = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            assert!(eight_digits(w), "TC{i}");
            assert_eq!(eight_digits_value(w), s.parse::<u64>().unwrap(), "TC{i}");
        }
        for (i, s) in
            ["1234567/", "1234567:", "a2345678", "1234 678", "\\u003012"].into_iter().enumerate()
        {
            let b = s.as_bytes();
            let w = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
            assert!(!eight_digits(w), "TC{i}: {s}");
        }
    }
}
