//! Properties of the fixed-point numbers, with `rust_decimal` as the oracle (STYLE.md 2.3, 2.6).

use std::str::FromStr;

use kestrel_model::{Notional, ParseNumError, Price, Qty};
use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::proptest_config;

/// 10^8 as a `Decimal`: one `Price`/`Qty` unit in mantissa units.
fn scale8() -> Decimal {
    Decimal::from(100_000_000u64)
}

/// The exact value of a `Price`/`Qty` mantissa as a `Decimal`.
fn dec8(mantissa: i64) -> Decimal {
    Decimal::from_i128_with_scale(i128::from(mantissa), 8)
}

/// Binance's wire form: always exactly 8 fractional digits (`"43012.34000000"`).
fn wire_form(mantissa: i64) -> String {
    let abs = mantissa.unsigned_abs();
    let sign = if mantissa < 0 { "-" } else { "" };
    format!("{sign}{}.{:08}", abs / 100_000_000, abs % 100_000_000)
}

/// Decimal strings shaped like what an exchange (or a careless config file) might send: optional
/// sign, 1–15 integer digits (leading zeros included), an optional fraction of 1–10 digits with
/// up to 3 more trailing zeros. Covers in-range values, too many decimals and overflow (from 12
/// integer digits on), and stays within `rust_decimal`'s 28 significant digits so the oracle is
/// exact.
fn decimal_string() -> impl Strategy<Value = String> {
    (
        prop::bool::ANY,
        prop_oneof!["[0-9]{1,15}", "[1-9][0-9]{10}", "9223372036[0-9]"],
        prop::option::of("[0-9]{1,10}"),
        prop::option::of("0{1,3}"),
    )
        .prop_map(|(neg, int, frac, pad)| {
            let mut s = String::new();
            if neg {
                s.push('-');
            }
            s.push_str(&int);
            if let Some(f) = frac {
                s.push('.');
                s.push_str(&f);
                s.push_str(pad.as_deref().unwrap_or(""));
            }
            s
        })
}

/// What parsing `s` as a `Price`/`Qty` must give, according to `rust_decimal`.
fn oracle_i64(d: Decimal) -> Result<i64, ParseNumError> {
    if d.normalize().scale() > 8 {
        return Err(ParseNumError::TooManyDecimals { max: 8 });
    }
    let m = d.checked_mul(scale8()).ok_or(ParseNumError::Overflow)?;
    i64::try_from(m.mantissa() / 10i128.pow(m.scale())).map_err(|_| ParseNumError::Overflow)
}

/// Any `i64`, with the range ends and small values drawn far more often than uniform sampling
/// would (`MIN`, `-1`, `MAX` are where overflow bugs live).
fn edgy_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => any::<i64>(),
        1 => prop::sample::select(vec![i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX]),
        1 => i64::MIN..=i64::MIN + 10_000,
        1 => i64::MAX - 10_000..=i64::MAX,
        1 => -10_000i64..=10_000,
    ]
}

/// Any `i128`, edge-biased like [`edgy_i64`].
fn edgy_i128() -> impl Strategy<Value = i128> {
    prop_oneof![
        4 => any::<i128>(),
        1 => prop::sample::select(vec![i128::MIN, i128::MIN + 1, -1, 0, 1, i128::MAX - 1, i128::MAX]),
        1 => i128::MIN..=i128::MIN + 10_000,
        1 => i128::MAX - 10_000..=i128::MAX,
        1 => -10_000i128..=10_000,
        1 => edgy_i64().prop_map(i128::from),
    ]
}

/// Ticks and steps as Binance uses them (1e-8 … 1000 in powers of ten and 1/2/5 multiples),
/// plus arbitrary positive increments.
fn increment() -> impl Strategy<Value = i64> {
    prop_oneof![
        (0u32..=11, prop::sample::select(vec![1i64, 2, 5])).prop_map(|(e, k)| k * 10i64.pow(e)),
        1i64..=1_000_000_000_000,
        1i64..=i64::MAX,
    ]
}

proptest! {
    #![proptest_config(proptest_config(2048))]

    /// Every mantissa's `Display` parses back to the same value, and so does Binance's
    /// 8-decimal wire form.
    #[test]
    fn price_qty_display_parse_round_trip(m in edgy_i64()) {
        let p = Price::from_mantissa(m);
        prop_assert_eq!(p.to_string().parse::<Price>(), Ok(p));
        prop_assert_eq!(wire_form(m).parse::<Price>(), Ok(p));
        let q = Qty::from_mantissa(m);
        prop_assert_eq!(q.to_string().parse::<Qty>(), Ok(q));
        prop_assert_eq!(wire_form(m).parse::<Qty>(), Ok(q));
    }

    /// `Display` is the shortest exact form: the same text as `rust_decimal`'s normalized value.
    #[test]
    fn display_matches_decimal_normalized(m in edgy_i64()) {
        prop_assert_eq!(Price::from_mantissa(m).to_string(), dec8(m).normalize().to_string());
    }

    /// Every `Notional` mantissa round-trips through `Display` too.
    #[test]
    fn notional_display_parse_round_trip(m in edgy_i128()) {
        let n = Notional::from_mantissa(m);
        prop_assert_eq!(n.to_string().parse::<Notional>(), Ok(n));
    }

    /// Parsing agrees with `rust_decimal` on value, on "too many decimals" and on overflow.
    #[test]
    fn parse_agrees_with_decimal_oracle(s in decimal_string()) {
        let d = Decimal::from_str_exact(&s).unwrap();
        let got = s.parse::<Price>().map(Price::mantissa);
        match oracle_i64(d) {
            Ok(m) => prop_assert_eq!(got, Ok(m), "{}", s),
            // Too many decimals on a huge number may trip the overflow check first; both refuse.
            Err(ParseNumError::TooManyDecimals { .. }) if d.abs() >= Decimal::from(10_000_000_000i64) => {
                prop_assert!(got.is_err(), "{} parsed as {:?}", s, got);
            }
            Err(want) => prop_assert_eq!(got, Err(want), "{}", s),
        }
        // Qty shares the representation; Notional takes 16 decimals and a wider range.
        prop_assert_eq!(s.parse::<Qty>().map(Qty::mantissa), s.parse::<Price>().map(Price::mantissa));
        // Every generated string fits Notional (at most 13 decimals, 15 integer digits).
        let dn = d.normalize();
        let want = dn.mantissa() * 10i128.pow(16 - dn.scale());
        prop_assert_eq!(s.parse::<Notional>().map(Notional::mantissa), Ok(want), "{}", s);
    }

    /// No string at all can make any of the parsers panic; whatever they accept is a plain
    /// decimal that `rust_decimal` reads as the same value.
    #[test]
    fn arbitrary_strings_never_panic(s in prop_oneof![".*", "[-+0-9.eE ]{0,48}", "[0-9]{30,90}"]) {
        let p = s.parse::<Price>();
        let q = s.parse::<Qty>();
        let n = s.parse::<Notional>();
        prop_assert_eq!(p.map(Price::mantissa), q.map(Qty::mantissa));
        if let Ok(p) = p {
            prop_assert!(!s.contains(['e', 'E', '+', ' ']), "{:?} accepted", s);
            if let Ok(d) = Decimal::from_str(&s) {
                prop_assert_eq!(dec8(p.mantissa()), d);
            }
        }
        if let Ok(n) = n {
            prop_assert_eq!(n.to_string().parse::<Notional>(), Ok(n));
        }
    }

    /// `(a + b) - b == a` whenever the checked sum exists, and the sum exists exactly when the
    /// true (i128) sum fits; likewise for subtraction. Saturating ops agree with checked ones in
    /// range and clamp outside it.
    #[test]
    fn checked_arithmetic_identities(a in edgy_i64(), b in edgy_i64()) {
        let (pa, pb) = (Price::from_mantissa(a), Price::from_mantissa(b));
        let sum = i128::from(a) + i128::from(b);
        match pa.checked_add(pb) {
            Some(s) => {
                prop_assert_eq!(i128::from(s.mantissa()), sum);
                prop_assert_eq!(s.checked_sub(pb), Some(pa));
                prop_assert_eq!(pb.checked_add(pa), Some(s));
                prop_assert_eq!(pa.saturating_add(pb), s);
            }
            None => {
                prop_assert!(i64::try_from(sum).is_err());
                prop_assert_eq!(pa.saturating_add(pb), if sum > 0 { Price::MAX } else { Price::from_mantissa(i64::MIN) });
            }
        }
        let diff = i128::from(a) - i128::from(b);
        match pa.checked_sub(pb) {
            Some(d) => {
                prop_assert_eq!(i128::from(d.mantissa()), diff);
                prop_assert_eq!(d.checked_add(pb), Some(pa));
            }
            None => prop_assert!(i64::try_from(diff).is_err()),
        }
        let (qa, qb) = (Qty::from_mantissa(a), Qty::from_mantissa(b));
        if let Some(s) = qa.checked_add(qb) {
            prop_assert_eq!(s.checked_sub(qb), Some(qa));
        }
        let (na, nb) = (Notional::from_mantissa(i128::from(a) << 40), Notional::from_mantissa(i128::from(b)));
        if let Some(s) = na.checked_add(nb) {
            prop_assert_eq!(s.checked_sub(nb), Some(na));
        }
    }

    /// `Notional::of` is the exact product, equal to `rust_decimal`'s (prices and quantities up
    /// to 10^6 so the product fits `Decimal`'s 96-bit mantissa without rescaling).
    #[test]
    fn notional_of_is_exact_decimal_product(
        p in -100_000_000_000_000i64..=100_000_000_000_000,
        q in -100_000_000_000_000i64..=100_000_000_000_000,
    ) {
        let n = Notional::of(Price::from_mantissa(p), Qty::from_mantissa(q));
        let want = dec8(p).checked_mul(dec8(q)).unwrap();
        prop_assert_eq!(Decimal::from_i128_with_scale(n.mantissa(), 16), want);
        prop_assert_eq!(n.to_string(), want.normalize().to_string());
        // Back to a quantity: floor division, as i128 floor division says.
        if p != 0 {
            let back = n.div_price_floor(Price::from_mantissa(p)).unwrap();
            prop_assert_eq!(back, Qty::from_mantissa(q));
        }
        prop_assert_eq!(
            n.floor_to_qty().map(Qty::mantissa),
            i64::try_from(n.mantissa().div_euclid(100_000_000)).ok()
        );
    }

    /// Tick rounding is directional: `down <= x <= up`, both multiples of the tick, each less
    /// than one tick from `x`, and `None` exactly when the true multiple is out of range.
    #[test]
    fn tick_rounding_direction(x in edgy_i64(), tick in increment()) {
        let (px, t) = (Price::from_mantissa(x), Price::from_mantissa(tick));
        let (xi, ti) = (i128::from(x), i128::from(tick));
        let true_down = xi.div_euclid(ti) * ti;
        let true_up = if true_down == xi { xi } else { true_down + ti };

        match px.checked_round_down_to(t) {
            Some(d) => {
                let di = i128::from(d.mantissa());
                prop_assert_eq!(di, true_down);
                prop_assert!(d <= px && xi - di < ti && d.is_multiple_of(t));
                prop_assert_eq!(px.round_down_to_tick(t), d);
            }
            None => prop_assert!(true_down < i128::from(i64::MIN)),
        }
        match px.round_up_to_tick(t) {
            Some(u) => {
                let ui = i128::from(u.mantissa());
                prop_assert_eq!(ui, true_up);
                prop_assert!(u >= px && ui - xi < ti && u.is_multiple_of(t));
            }
            None => prop_assert!(true_up > i128::from(i64::MAX)),
        }
        // The total round-down always returns a multiple and never panics.
        prop_assert!(px.round_down_to_tick(t).is_multiple_of(t));
        prop_assert_eq!(px.is_multiple_of(t), xi % ti == 0);

        let q = Qty::from_mantissa(x);
        let step = Qty::from_mantissa(tick);
        prop_assert_eq!(q.round_down_to_step(step).mantissa(), px.round_down_to_tick(t).mantissa());
        prop_assert_eq!(q.round_up_to_step(step).map(Qty::mantissa), px.round_up_to_tick(t).map(Price::mantissa));
    }

    /// Realistic prices (positive, up to 10^7) always round both ways, and a value already on
    /// the tick is left alone.
    #[test]
    fn tick_rounding_of_realistic_prices(x in 1i64..=1_000_000_000_000_000, tick in increment()) {
        let (px, t) = (Price::from_mantissa(x), Price::from_mantissa(tick));
        let down = px.round_down_to_tick(t);
        let up = px.round_up_to_tick(t).unwrap();
        prop_assert!(down <= px && px <= up);
        prop_assert_eq!(down == up, px.is_multiple_of(t));
        prop_assert_eq!(down.round_down_to_tick(t), down);
        prop_assert_eq!(up.round_up_to_tick(t), Some(up));
    }
}

proptest! {
    #![proptest_config(proptest_config(2048))]

    /// Every arithmetic helper is total: arbitrary operands give a value or `None`, never a
    /// panic (debug builds trap on overflow, so this also proves no silent wrap-around), and the
    /// results match the exact i128 arithmetic.
    #[test]
    fn all_operations_are_total(a in edgy_i64(), b in edgy_i64(), n in edgy_i128(), k in edgy_i128()) {
        let (pa, pb) = (Price::from_mantissa(a), Price::from_mantissa(b));
        let (ai, bi) = (i128::from(a), i128::from(b));
        prop_assert_eq!(i128::from(pa.midpoint(pb).mantissa()), (ai + bi).div_euclid(2));
        prop_assert_eq!(pa.abs().mantissa(), a.saturating_abs());
        prop_assert_eq!(pa.checked_neg().map(Price::mantissa), a.checked_neg());
        prop_assert_eq!(pa.checked_mul_int(b).map(Price::mantissa), a.checked_mul(b));
        prop_assert_eq!(pa.saturating_sub(pb).mantissa(), a.saturating_sub(b));
        prop_assert_eq!(pa.to_notional().mantissa(), ai * 100_000_000);
        prop_assert_eq!(pa.is_multiple_of(pb), b == 0 || ai % bi == 0);
        // Rounding to a positive increment always lands on a multiple; a zero or negative one
        // leaves the value unchanged.
        let down = pa.round_down_to_tick(pb);
        let rounded_right = if b > 0 { down.is_multiple_of(pb) } else { down == pa };
        prop_assert!(rounded_right);
        prop_assert_eq!(Notional::of(pa, Qty::from_mantissa(b)).mantissa(), ai * bi);

        let nn = Notional::from_mantissa(n);
        prop_assert_eq!(nn.div_price_floor(pb).map(Qty::mantissa), n.checked_div_euclid(bi).and_then(|q| i64::try_from(q).ok()));
        prop_assert_eq!(nn.mul_ratio_floor(k, bi).map(Notional::mantissa), n.checked_mul(k).and_then(|m| m.checked_div_euclid(bi)));
        prop_assert_eq!(nn.floor_to_qty().map(Qty::mantissa), i64::try_from(n.div_euclid(100_000_000)).ok());
        prop_assert_eq!(nn.abs().mantissa(), n.saturating_abs());
        prop_assert_eq!(nn.neg().mantissa(), n.saturating_neg());
        prop_assert_eq!(nn.saturating_add(Notional::from_mantissa(k)).mantissa(), n.saturating_add(k));
        prop_assert_eq!(nn.checked_sub(Notional::from_mantissa(k)).map(Notional::mantissa), n.checked_sub(k));
        // Metrics conversion: finite and within f64 rounding of the exact value.
        let f = pa.to_f64();
        prop_assert!(f.is_finite() && (f - ai as f64 / 1e8).abs() <= f.abs() * 1e-15 + 1e-8);
    }
}
