//! Fixed-point money types: [`Price`], [`Qty`] (i64 mantissas at 1e-8) and [`Notional`] (i128 at 1e-16).
//!
//! Binance sends every price and quantity as a decimal string with at most 8 fractional digits
//! (`"0.01000000"`). We parse those strings straight into integer mantissas, so no float ever sits
//! on a money path (STYLE.md 2.3).
//!
//! | type       | storage | scale  | range                         | used for                         |
//! |------------|---------|--------|-------------------------------|----------------------------------|
//! | `Price`    | `i64`   | 1e-8   | ±92,233,720,368.54775807      | prices, tick sizes               |
//! | `Qty`      | `i64`   | 1e-8   | ±92,233,720,368.54775807      | quantities, step sizes, positions|
//! | `Notional` | `i128`  | 1e-16  | ±1.7e22                       | price × qty (exact), balances    |
//!
//! `Notional` carries 16 fractional digits so that `price × qty` of two 8-digit numbers is exact:
//! a `MIN_NOTIONAL` check never rounds.
//!
//! Parsing rejects (never rounds): empty input, exponents (`1e-8`), more than the allowed fractional
//! digits, and values that overflow the mantissa. A leading `-` is accepted (positions and PnL are
//! signed); a leading `+` is not (Binance never sends one). Redundant trailing zeros past the
//! scale (`"0.100000000"`) are accepted because they are exact. Every representable value,
//! `MIN` included, formats with `Display` to a string that parses back to the same value, and no
//! input string can make the parser panic (checked arithmetic throughout).

use std::fmt;
use std::str::FromStr;

/// Number of fractional digits of [`Price`] and [`Qty`].
pub const DECIMALS: u32 = 8;
/// Mantissa units per whole unit of [`Price`] and [`Qty`]: 10^8.
pub const SCALE: i64 = 100_000_000;
/// Number of fractional digits of [`Notional`] (twice [`DECIMALS`], so price × qty is exact).
pub const NOTIONAL_DECIMALS: u32 = 16;
/// Mantissa units per whole unit of [`Notional`]: 10^16.
pub const NOTIONAL_SCALE: i128 = 10_000_000_000_000_000;

/// Why a decimal string could not be turned into a fixed-point number.
///
/// Small and `Copy` so the hot parse path never allocates for an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseNumError {
    /// The input was empty (or only a sign).
    #[error("empty number")]
    Empty,
    /// A byte that is not a digit, `.` or a leading `-`.
    #[error("invalid character {0:?} in number")]
    InvalidChar(char),
    /// Scientific notation such as `1e-8`; Binance never sends it, so it is a protocol error.
    #[error("exponent notation is not accepted")]
    Exponent,
    /// More fractional digits than the type holds (8 for prices and quantities).
    #[error("more than {max} decimal places")]
    TooManyDecimals {
        /// The maximum number of fractional digits for this type.
        max: u32,
    },
    /// The value does not fit the mantissa.
    #[error("number out of range")]
    Overflow,
}

/// An unsigned accumulator for [`parse_magnitude`]/[`fmt_fixed`]: `u64` for the `i64` types (fast
/// on the depth path), `u128` for [`Notional`].
trait Digits: Copy + PartialOrd {
    const ZERO: Self;
    /// `self * 10 + digit`, or `None` on overflow.
    fn push_digit(self, digit: u8) -> Option<Self>;
    /// `self * 10^exp`, or `None` on overflow.
    fn scale_pow10(self, exp: u32) -> Option<Self>;
    /// `(self / 10^exp, self % 10^exp)`.
    fn split_pow10(self, exp: u32) -> (Self, Self);
    /// `(self / 10, last decimal digit)`.
    fn pop_digit(self) -> (Self, u8);
    /// True for zero.
    fn is_zero(self) -> bool;
}

macro_rules! digits_impl {
    ($t:ty) => {
        impl Digits for $t {
            const ZERO: Self = 0;
            #[inline]
            fn push_digit(self, digit: u8) -> Option<Self> {
                self.checked_mul(10)?.checked_add(<$t>::from(digit))
            }
            #[inline]
            fn scale_pow10(self, exp: u32) -> Option<Self> {
                self.checked_mul(<$t>::checked_pow(10, exp)?)
            }
            #[inline]
            fn split_pow10(self, exp: u32) -> (Self, Self) {
                let p = <$t>::pow(10, exp);
                (self / p, self % p)
            }
            #[inline]
            fn pop_digit(self) -> (Self, u8) {
                #[allow(clippy::cast_possible_truncation)] // a remainder of 10 fits a u8
                (self / 10, (self % 10) as u8)
            }
            #[inline]
            fn is_zero(self) -> bool {
                self == 0
            }
        }
    };
}
digits_impl!(u64);
digits_impl!(u128);

/// Parses a decimal string into its sign and the magnitude of a mantissa with `decimals`
/// fractional digits. `max_pos`/`max_neg` are the largest magnitudes allowed for a positive and a
/// negative result (they differ by one for two's complement, so `MIN` round-trips too).
///
/// Shared by all three types. Hand-written because this is the hottest function of the depth
/// path: one pass over the bytes, no allocation, checked arithmetic so no input can panic.
#[inline]
fn parse_magnitude<T: Digits>(
    s: &str,
    decimals: u32,
    max_pos: T,
    max_neg: T,
) -> Result<(bool, T), ParseNumError> {
    let bytes = s.as_bytes();
    let (neg, start) = match bytes.first() {
        Some(b'-') => (true, 1),
        Some(_) => (false, 0),
        None => return Err(ParseNumError::Empty),
    };
    let mut value = T::ZERO;
    let mut frac_digits: u32 = 0;
    let mut seen_dot = false;
    let mut seen_digit = false;
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        match b {
            b'0'..=b'9' => {
                seen_digit = true;
                if seen_dot {
                    if frac_digits == decimals {
                        // Trailing zeros beyond the scale carry no value ("0.100000000" is
                        // still exact); anything else would need rounding, which we refuse.
                        if b == b'0' {
                            continue;
                        }
                        return Err(ParseNumError::TooManyDecimals { max: decimals });
                    }
                    frac_digits += 1;
                }
                value = value.push_digit(b - b'0').ok_or(ParseNumError::Overflow)?;
            }
            b'.' if !seen_dot => seen_dot = true,
            b'e' | b'E' => return Err(ParseNumError::Exponent),
            _ => return Err(ParseNumError::InvalidChar(char_at(s, i, b))),
        }
    }
    if !seen_digit {
        return Err(ParseNumError::Empty);
    }
    let value = value.scale_pow10(decimals - frac_digits).ok_or(ParseNumError::Overflow)?;
    if value > if neg { max_neg } else { max_pos } {
        return Err(ParseNumError::Overflow);
    }
    Ok((neg, value))
}

/// The character starting at byte `i` of `s` (for error messages): every byte before `i` was
/// ASCII, so `i` is a char boundary; falls back to the raw byte if it is not.
#[cold]
fn char_at(s: &str, i: usize, b: u8) -> char {
    s.get(i..).and_then(|rest| rest.chars().next()).unwrap_or(char::from(b))
}

/// Writes `±abs / 10^decimals` in shortest exact form (`"0.01"`, `"-3"`, `"42000.5"`), honouring
/// the formatter's width, fill, alignment, `+` and `0` flags like an integer does.
fn fmt_fixed<T: Digits>(
    f: &mut fmt::Formatter<'_>,
    negative: bool,
    abs: T,
    decimals: u32,
) -> fmt::Result {
    // Longest output: 39 integer digits (u128::MAX) + '.' + 16 fractional digits.
    let mut buf = [0u8; 64];
    let mut pos = buf.len();
    let (mut int, mut frac) = abs.split_pow10(decimals);
    if !frac.is_zero() {
        let mut width = decimals;
        loop {
            let (rest, digit) = frac.pop_digit();
            if digit != 0 {
                break;
            }
            frac = rest;
            width -= 1;
        }
        for _ in 0..width {
            let (rest, digit) = frac.pop_digit();
            pos -= 1;
            buf[pos] = b'0' + digit;
            frac = rest;
        }
        pos -= 1;
        buf[pos] = b'.';
    }
    loop {
        let (rest, digit) = int.pop_digit();
        pos -= 1;
        buf[pos] = b'0' + digit;
        int = rest;
        if int.is_zero() {
            break;
        }
    }
    let text = std::str::from_utf8(&buf[pos..]).expect("invariant: only ASCII digits and '.'");
    f.pad_integral(!negative, "", text)
}

macro_rules! fixed_i64 {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(i64);

        impl $name {
            /// Zero.
            pub const ZERO: Self = Self(0);
            /// The largest representable value.
            pub const MAX: Self = Self(i64::MAX);
            /// The smallest positive value, 1e-8.
            pub const EPSILON: Self = Self(1);

            /// Builds a value from its mantissa (units of 1e-8).
            #[inline]
            pub const fn from_mantissa(mantissa: i64) -> Self {
                Self(mantissa)
            }

            /// Builds a whole-number value, or `None` if it does not fit.
            #[inline]
            pub const fn from_int(units: i64) -> Option<Self> {
                match units.checked_mul(SCALE) {
                    Some(m) => Some(Self(m)),
                    None => None,
                }
            }

            /// The mantissa in units of 1e-8.
            #[inline]
            pub const fn mantissa(self) -> i64 {
                self.0
            }

            /// True for exactly zero.
            #[inline]
            pub const fn is_zero(self) -> bool {
                self.0 == 0
            }

            /// True for values above zero.
            #[inline]
            pub const fn is_positive(self) -> bool {
                self.0 > 0
            }

            /// True for values below zero.
            #[inline]
            pub const fn is_negative(self) -> bool {
                self.0 < 0
            }

            /// `self + rhs`, or `None` on overflow.
            #[inline]
            pub const fn checked_add(self, rhs: Self) -> Option<Self> {
                match self.0.checked_add(rhs.0) {
                    Some(m) => Some(Self(m)),
                    None => None,
                }
            }

            /// `self - rhs`, or `None` on overflow.
            #[inline]
            pub const fn checked_sub(self, rhs: Self) -> Option<Self> {
                match self.0.checked_sub(rhs.0) {
                    Some(m) => Some(Self(m)),
                    None => None,
                }
            }

            /// `-self`, or `None` for the one value whose negation overflows.
            #[inline]
            pub const fn checked_neg(self) -> Option<Self> {
                match self.0.checked_neg() {
                    Some(m) => Some(Self(m)),
                    None => None,
                }
            }

            /// `self + rhs`, clamped at the representable range.
            #[inline]
            pub const fn saturating_add(self, rhs: Self) -> Self {
                Self(self.0.saturating_add(rhs.0))
            }

            /// `self - rhs`, clamped at the representable range.
            #[inline]
            pub const fn saturating_sub(self, rhs: Self) -> Self {
                Self(self.0.saturating_sub(rhs.0))
            }

            /// Absolute value (saturating for the minimum value).
            #[inline]
            pub const fn abs(self) -> Self {
                Self(self.0.saturating_abs())
            }

            /// `self * n` for an integer count, or `None` on overflow.
            #[inline]
            pub const fn checked_mul_int(self, n: i64) -> Option<Self> {
                match self.0.checked_mul(n) {
                    Some(m) => Some(Self(m)),
                    None => None,
                }
            }

            /// True if `self` is a whole multiple of `increment`. A zero increment disables the
            /// rule, as a zero `tickSize`/`stepSize` does on Binance. The increment's sign does
            /// not matter, and no input panics (not even `MIN` and `-1` units).
            #[inline]
            pub const fn is_multiple_of(self, increment: Self) -> bool {
                increment.0 == 0 || self.0.unsigned_abs() % increment.0.unsigned_abs() == 0
            }

            /// The largest multiple of `increment` that is `<= self` (towards −∞), or `None` if
            /// that multiple is below the representable range (only possible for values within
            /// one increment of `MIN`). A zero or negative increment returns `self` unchanged.
            #[inline]
            pub const fn checked_round_down_to(self, increment: Self) -> Option<Self> {
                if increment.0 <= 0 {
                    return Some(self);
                }
                // `rem_euclid` with a positive divisor is in `0..increment` and never overflows.
                match self.0.checked_sub(self.0.rem_euclid(increment.0)) {
                    Some(m) => Some(Self(m)),
                    None => None,
                }
            }

            /// The largest multiple of `increment` that is `<= self` (towards −∞).
            /// A zero or negative increment returns `self` unchanged.
            ///
            /// Total: in the one case where that multiple is not representable (a negative
            /// value within one increment of `MIN`, never a valid price or quantity) it returns
            /// the smallest representable multiple instead, which is above `self`. Use
            /// [`Self::checked_round_down_to`] to detect that case.
            #[inline]
            pub const fn round_down_to(self, increment: Self) -> Self {
                match self.checked_round_down_to(increment) {
                    Some(v) => v,
                    // Not representable: the next multiple up is (and is > MIN).
                    None => Self(self.0 + (increment.0 - self.0.rem_euclid(increment.0))),
                }
            }

            /// The smallest multiple of `increment` that is `>= self` (towards +∞), or `None` if
            /// that multiple overflows. A zero or negative increment returns `self` unchanged.
            #[inline]
            pub const fn round_up_to(self, increment: Self) -> Option<Self> {
                if increment.0 <= 0 {
                    return Some(self);
                }
                let rem = self.0.rem_euclid(increment.0);
                if rem == 0 {
                    return Some(self);
                }
                match self.0.checked_add(increment.0 - rem) {
                    Some(m) => Some(Self(m)),
                    None => None,
                }
            }

            /// Lossy conversion for signals and metrics only. Never feed the result back into
            /// a money path.
            #[inline]
            pub fn to_f64(self) -> f64 {
                self.0 as f64 / SCALE as f64
            }

            /// Widens to a [`Notional`] (exact).
            #[inline]
            pub const fn to_notional(self) -> Notional {
                Notional(self.0 as i128 * (NOTIONAL_SCALE / SCALE as i128))
            }
        }

        impl FromStr for $name {
            type Err = ParseNumError;

            #[inline]
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                // The full i64 range, `MIN` included, so that every value's `Display`
                // parses back (saturating arithmetic can produce `MIN`).
                let (neg, m) =
                    parse_magnitude::<u64>(s, DECIMALS, i64::MAX.unsigned_abs(), i64::MIN.unsigned_abs())?;
                let m = if neg { 0i64.checked_sub_unsigned(m) } else { i64::try_from(m).ok() };
                m.map(Self).ok_or(ParseNumError::Overflow)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt_fixed(f, self.0 < 0, self.0.unsigned_abs(), DECIMALS)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }
    };
}

fixed_i64!(
    /// A price: an `i64` mantissa in units of 1e-8.
    ///
    /// Built only from decimal strings or mantissas; there is deliberately no `From<f64>`.
    ///
    /// ```
    /// use kestrel_model::Price;
    /// let p: Price = "0.01000000".parse().unwrap();
    /// assert_eq!(p.to_string(), "0.01");
    /// assert_eq!(p.mantissa(), 1_000_000);
    /// assert!("1e-8".parse::<Price>().is_err());
    /// ```
    Price
);

fixed_i64!(
    /// A quantity (or a signed position): an `i64` mantissa in units of 1e-8.
    ///
    /// ```
    /// use kestrel_model::Qty;
    /// let q: Qty = "1.5".parse().unwrap();
    /// let step: Qty = "0.1".parse().unwrap();
    /// assert_eq!("1.57".parse::<Qty>().unwrap().round_down_to_step(step), q);
    /// ```
    Qty
);

impl Price {
    /// Rounds towards −∞ to a multiple of `tick` (a buy limit that must not pay more).
    #[inline]
    pub const fn round_down_to_tick(self, tick: Price) -> Price {
        self.round_down_to(tick)
    }

    /// Rounds towards +∞ to a multiple of `tick` (a sell limit that must not receive less);
    /// `None` on overflow.
    #[inline]
    pub const fn round_up_to_tick(self, tick: Price) -> Option<Price> {
        self.round_up_to(tick)
    }

    /// Midpoint of two prices, rounded towards −∞ at 1e-8.
    #[inline]
    pub const fn midpoint(self, other: Price) -> Price {
        // i128 so the sum cannot overflow.
        let sum = self.0 as i128 + other.0 as i128;
        #[allow(clippy::cast_possible_truncation)] // the mean of two i64 fits an i64
        Price(sum.div_euclid(2) as i64)
    }
}

impl Qty {
    /// Rounds towards −∞ to a multiple of `step` (never send more than intended).
    #[inline]
    pub const fn round_down_to_step(self, step: Qty) -> Qty {
        self.round_down_to(step)
    }

    /// Rounds towards +∞ to a multiple of `step`; `None` on overflow.
    #[inline]
    pub const fn round_up_to_step(self, step: Qty) -> Option<Qty> {
        self.round_up_to(step)
    }
}

/// An exact amount of quote currency (price × quantity) or a balance: `i128` mantissa at 1e-16.
///
/// ```
/// use kestrel_model::{Notional, Price, Qty};
/// let p: Price = "42000.5".parse().unwrap();
/// let q: Qty = "0.00012345".parse().unwrap();
/// assert_eq!(Notional::of(p, q).to_string(), "5.184961725");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Notional(i128);

impl Notional {
    /// Zero.
    pub const ZERO: Self = Self(0);

    /// `price × qty`, exact (16 fractional digits hold the full product).
    #[inline]
    pub const fn of(price: Price, qty: Qty) -> Notional {
        Notional(price.0 as i128 * qty.0 as i128)
    }

    /// Builds a value from its mantissa (units of 1e-16).
    #[inline]
    pub const fn from_mantissa(mantissa: i128) -> Self {
        Self(mantissa)
    }

    /// The mantissa in units of 1e-16.
    #[inline]
    pub const fn mantissa(self) -> i128 {
        self.0
    }

    /// True for exactly zero.
    #[inline]
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// True for values below zero.
    #[inline]
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// `self + rhs`, or `None` on overflow.
    #[inline]
    pub const fn checked_add(self, rhs: Self) -> Option<Self> {
        match self.0.checked_add(rhs.0) {
            Some(m) => Some(Self(m)),
            None => None,
        }
    }

    /// `self - rhs`, or `None` on overflow.
    #[inline]
    pub const fn checked_sub(self, rhs: Self) -> Option<Self> {
        match self.0.checked_sub(rhs.0) {
            Some(m) => Some(Self(m)),
            None => None,
        }
    }

    /// `self + rhs`, clamped at the representable range.
    #[inline]
    pub const fn saturating_add(self, rhs: Self) -> Self {
        Self(self.0.saturating_add(rhs.0))
    }

    /// `self - rhs`, clamped at the representable range.
    #[inline]
    pub const fn saturating_sub(self, rhs: Self) -> Self {
        Self(self.0.saturating_sub(rhs.0))
    }

    /// Absolute value (saturating).
    #[inline]
    pub const fn abs(self) -> Self {
        Self(self.0.saturating_abs())
    }

    /// Negation (saturating).
    #[inline]
    pub const fn neg(self) -> Self {
        Self(self.0.saturating_neg())
    }

    /// Truncates towards −∞ to 8 decimals, e.g. for a `quoteOrderQty` or a balance shown at
    /// Binance precision. `None` if the result does not fit a [`Qty`].
    #[inline]
    pub fn floor_to_qty(self) -> Option<Qty> {
        let per = NOTIONAL_SCALE / SCALE as i128;
        i64::try_from(self.0.div_euclid(per)).ok().map(Qty::from_mantissa)
    }

    /// Divides by a price, rounding towards −∞ to 1e-8: how much base a quote amount buys.
    /// `None` for a zero price or an out-of-range result.
    #[inline]
    pub fn div_price_floor(self, price: Price) -> Option<Qty> {
        // `checked_div_euclid` is `None` for a zero divisor and for `MIN / -1`.
        let q = self.0.checked_div_euclid(price.0 as i128)?;
        i64::try_from(q).ok().map(Qty::from_mantissa)
    }

    /// Multiplies by an integer ratio `num / den`, rounding towards −∞ (used for
    /// percentage bands such as `PERCENT_PRICE_BY_SIDE`). `None` if `den` is zero or on overflow.
    #[inline]
    pub fn mul_ratio_floor(self, num: i128, den: i128) -> Option<Notional> {
        // `checked_div_euclid` is `None` for a zero `den` and for `MIN / -1`.
        Some(Notional(self.0.checked_mul(num)?.checked_div_euclid(den)?))
    }

    /// Lossy conversion for metrics and display only.
    #[inline]
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / NOTIONAL_SCALE as f64
    }
}

impl FromStr for Notional {
    type Err = ParseNumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (neg, m) = parse_magnitude::<u128>(
            s,
            NOTIONAL_DECIMALS,
            i128::MAX.unsigned_abs(),
            i128::MIN.unsigned_abs(),
        )?;
        let m = if neg { 0i128.checked_sub_unsigned(m) } else { i128::try_from(m).ok() };
        m.map(Notional).ok_or(ParseNumError::Overflow)
    }
}

impl fmt::Display for Notional {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_fixed(f, self.0 < 0, self.0.unsigned_abs(), NOTIONAL_DECIMALS)
    }
}

impl fmt::Debug for Notional {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Notional({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Price {
        s.parse().unwrap()
    }

    #[test]
    fn parse_accepts_binance_strings() {
        // TC0: the doc form with 8 decimals
        assert_eq!(p("0.01000000").mantissa(), 1_000_000);
        // TC1: integer
        assert_eq!(p("42000").mantissa(), 42_000 * SCALE);
        // TC2: leading dot and trailing dot
        assert_eq!(p(".5").mantissa(), 50_000_000);
        assert_eq!(p("5.").mantissa(), 5 * SCALE);
        // TC3: negative
        assert_eq!(p("-1.25").mantissa(), -125_000_000);
        // TC4: redundant trailing zeros past 8 decimals are exact, not rounding
        assert_eq!(p("0.100000000000").mantissa(), 10_000_000);
        // TC5: smallest unit
        assert_eq!(p("0.00000001"), Price::EPSILON);
    }

    #[test]
    fn parse_rejects_with_reason() {
        let cases: &[(&str, ParseNumError)] = &[
            ("", ParseNumError::Empty),
            ("-", ParseNumError::Empty),
            (".", ParseNumError::Empty),
            ("1e-8", ParseNumError::Exponent),
            ("1E5", ParseNumError::Exponent),
            ("0.000000001", ParseNumError::TooManyDecimals { max: 8 }),
            ("1.2.3", ParseNumError::InvalidChar('.')),
            ("+1", ParseNumError::InvalidChar('+')),
            (" 1", ParseNumError::InvalidChar(' ')),
            ("1,5", ParseNumError::InvalidChar(',')),
            ("92233720368.54775808", ParseNumError::Overflow),
            ("99999999999999999999999999999999999999999999", ParseNumError::Overflow),
        ];
        for (i, (input, want)) in cases.iter().enumerate() {
            assert_eq!(input.parse::<Price>(), Err(*want), "TC{i}: {input:?}");
        }
    }

    #[test]
    fn parse_max_fits() {
        assert_eq!(p("92233720368.54775807"), Price::MAX);
    }

    #[test]
    fn parse_min_fits_so_every_value_round_trips() {
        // Saturating arithmetic can reach i64::MIN; its Display must parse back.
        let min = Price::ZERO.saturating_sub(Price::MAX).saturating_sub(Price::EPSILON);
        assert_eq!(min.mantissa(), i64::MIN);
        assert_eq!(min.to_string(), "-92233720368.54775808");
        assert_eq!(p("-92233720368.54775808"), min);
        assert_eq!("-92233720368.54775809".parse::<Price>(), Err(ParseNumError::Overflow));
        assert_eq!("92233720368.54775808".parse::<Qty>(), Err(ParseNumError::Overflow));
    }

    #[test]
    fn notional_parse_overflows_without_panicking() {
        // Both used to overflow the i128 accumulator (a panic in debug, a wrong value in release):
        // TC0: 1e23 fits the digits but not once scaled by 1e16.
        assert_eq!("100000000000000000000000".parse::<Notional>(), Err(ParseNumError::Overflow));
        // TC1: 40 digits overflow the accumulator itself.
        let long = format!("1{}", "0".repeat(39));
        assert_eq!(long.parse::<Notional>(), Err(ParseNumError::Overflow));
        // TC2: a fraction too long for u128 before the decimals check trips.
        let frac = format!("9{}.1", "9".repeat(30));
        assert_eq!(frac.parse::<Notional>(), Err(ParseNumError::Overflow));
    }

    #[test]
    fn notional_full_range_round_trips() {
        // The documented ±1.7e22 range is the whole i128 (it used to stop at i128::MAX / 10).
        for m in [i128::MAX, i128::MIN, i128::MAX / 10 + 1, -1, 1] {
            let n = Notional::from_mantissa(m);
            assert_eq!(n.to_string().parse::<Notional>(), Ok(n), "{m}");
        }
        assert_eq!(
            "17014118346046923173168.7303715884105727".parse::<Notional>(),
            Ok(Notional::from_mantissa(i128::MAX))
        );
    }

    #[test]
    fn invalid_char_names_the_real_character() {
        assert_eq!("1€".parse::<Price>(), Err(ParseNumError::InvalidChar('€')));
        assert_eq!("0.5µ".parse::<Qty>(), Err(ParseNumError::InvalidChar('µ')));
        assert_eq!("--1".parse::<Qty>(), Err(ParseNumError::InvalidChar('-')));
    }

    #[test]
    fn display_honours_width_and_flags() {
        // Used to ignore the formatter (tables in `kestrel status` would not line up).
        assert_eq!(format!("{:>8}", p("1.5")), "     1.5");
        assert_eq!(format!("{:<6}|", p("1.5")), "1.5   |");
        assert_eq!(format!("{:08}", p("-1.5")), "-00001.5");
        assert_eq!(format!("{:+}", p("1.5")), "+1.5");
        assert_eq!(format!("{:>6}", Notional::of(p("2"), "0.25".parse().unwrap())), "   0.5");
        // Debug keeps its wrapper.
        assert_eq!(format!("{:?}", p("0.01")), "Price(0.01)");
    }

    #[test]
    fn display_is_shortest_exact() {
        for (input, want) in [
            ("0.01000000", "0.01"),
            ("42000.00000000", "42000"),
            ("-0.5", "-0.5"),
            ("0.00000001", "0.00000001"),
            ("0", "0"),
            ("-0", "0"),
        ] {
            assert_eq!(p(input).to_string(), want, "{input}");
        }
    }

    #[test]
    fn tick_rounding_is_directional() {
        let tick = p("0.01");
        assert_eq!(p("1.239").round_down_to_tick(tick), p("1.23"));
        assert_eq!(p("1.231").round_up_to_tick(tick), Some(p("1.24")));
        assert_eq!(p("1.23").round_up_to_tick(tick), Some(p("1.23")));
        assert_eq!(p("-1.231").round_down_to_tick(tick), p("-1.24"));
        assert_eq!(Price::MAX.round_up_to_tick(tick), None);
        // A zero tick disables the rule, as on Binance.
        assert_eq!(p("1.239").round_down_to_tick(Price::ZERO), p("1.239"));
    }

    #[test]
    fn rounding_near_the_range_ends_never_panics() {
        // These used to overflow `div_euclid(..) * tick` (a panic in debug builds).
        let tick = Price::from_mantissa(10);
        let near_min = Price::from_mantissa(i64::MIN + 1);
        // TC0: the exact round-down is below MIN: checked says so, the total form goes up.
        assert_eq!(near_min.checked_round_down_to(tick), None);
        assert_eq!(near_min.round_down_to_tick(tick).mantissa(), -9_223_372_036_854_775_800);
        // TC1: the round-up is representable.
        assert_eq!(
            near_min.round_up_to_tick(tick).map(Price::mantissa),
            Some(-9_223_372_036_854_775_800)
        );
        // TC2: representable round-down near MIN.
        let m = Price::from_mantissa(-9_223_372_036_854_775_799);
        assert_eq!(
            m.checked_round_down_to(tick).map(Price::mantissa),
            Some(-9_223_372_036_854_775_800)
        );
        // TC3: MAX rounds down fine and has no round-up.
        assert_eq!(Price::MAX.round_down_to_tick(tick).mantissa(), 9_223_372_036_854_775_800);
        assert_eq!(Price::MAX.round_up_to_tick(tick), None);
    }

    #[test]
    fn is_multiple_of_is_total() {
        let min = Qty::from_mantissa(i64::MIN);
        // `i64::MIN % -1` used to panic.
        assert!(min.is_multiple_of(Qty::from_mantissa(-1)));
        assert!(min.is_multiple_of(Qty::from_mantissa(2)));
        assert!(!min.is_multiple_of(Qty::from_mantissa(3)));
        assert!(p("1.23").is_multiple_of(p("-0.01")));
        assert!(p("1.23").is_multiple_of(Price::ZERO));
    }

    #[test]
    fn notional_division_is_total() {
        let min = Notional::from_mantissa(i128::MIN);
        // `i128::MIN / -1` used to panic in both.
        assert_eq!(min.div_price_floor(Price::from_mantissa(-1)), None);
        assert_eq!(min.mul_ratio_floor(1, -1), None);
        assert_eq!(min.div_price_floor(Price::ZERO), None);
        assert_eq!(
            Notional::from_mantissa(7).mul_ratio_floor(1, 2),
            Some(Notional::from_mantissa(3))
        );
        assert_eq!(
            Notional::from_mantissa(-7).mul_ratio_floor(1, 2),
            Some(Notional::from_mantissa(-4))
        );
    }

    #[test]
    fn notional_is_exact_product() {
        let n = Notional::of(p("0.00000001"), "0.00000001".parse().unwrap());
        assert_eq!(n.mantissa(), 1);
        assert_eq!(n.to_string(), "0.0000000000000001");
        assert_eq!("0.0000000000000001".parse::<Notional>().unwrap(), n);
        let q: Qty = "3".parse().unwrap();
        assert_eq!(Notional::of(p("2.5"), q).floor_to_qty(), Some("7.5".parse().unwrap()));
        assert_eq!(Notional::of(p("2.5"), q).div_price_floor(p("3")), Some("2.5".parse().unwrap()));
    }
}
