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
//! signed); a leading `+` is not (Binance never sends one).

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

/// Parses a decimal string into a mantissa with `decimals` fractional digits, as i128.
///
/// Shared by all three types; the caller narrows the result. Hand-written because this is the
/// hottest function of the depth path: one pass over the bytes, no allocation.
#[inline]
fn parse_mantissa(s: &str, decimals: u32, max_abs: i128) -> Result<i128, ParseNumError> {
    let bytes = s.as_bytes();
    let (neg, digits) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(_) => (false, bytes),
        None => return Err(ParseNumError::Empty),
    };
    if digits.is_empty() {
        return Err(ParseNumError::Empty);
    }
    let mut value: i128 = 0;
    let mut frac_digits: u32 = 0;
    let mut seen_dot = false;
    let mut seen_digit = false;
    for &b in digits {
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
                value = value * 10 + i128::from(b - b'0');
                if value > max_abs * 10 {
                    // Early exit keeps the i128 from overflowing on absurdly long input.
                    return Err(ParseNumError::Overflow);
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            b'e' | b'E' => return Err(ParseNumError::Exponent),
            _ => return Err(ParseNumError::InvalidChar(char::from(b))),
        }
    }
    if !seen_digit {
        return Err(ParseNumError::Empty);
    }
    let value = value * 10i128.pow(decimals - frac_digits);
    if value > max_abs {
        return Err(ParseNumError::Overflow);
    }
    Ok(if neg { -value } else { value })
}

/// Writes `mantissa / 10^decimals` in shortest exact form: `"0.01"`, `"-3"`, `"42000.5"`.
fn fmt_mantissa(f: &mut fmt::Formatter<'_>, mantissa: i128, decimals: u32) -> fmt::Result {
    let scale = 10u128.pow(decimals);
    let abs = mantissa.unsigned_abs();
    let int = abs / scale;
    let mut frac = abs % scale;
    let mut width = decimals as usize;
    if mantissa < 0 {
        f.write_str("-")?;
    }
    if frac == 0 {
        return write!(f, "{int}");
    }
    while frac.is_multiple_of(10) {
        frac /= 10;
        width -= 1;
    }
    write!(f, "{int}.{frac:0width$}")
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
            /// rule, as a zero `tickSize`/`stepSize` does on Binance.
            #[inline]
            pub const fn is_multiple_of(self, increment: Self) -> bool {
                increment.0 == 0 || self.0 % increment.0 == 0
            }

            /// The largest multiple of `increment` that is `<= self` (towards −∞).
            /// A zero or negative increment returns `self` unchanged.
            #[inline]
            pub const fn round_down_to(self, increment: Self) -> Self {
                if increment.0 <= 0 {
                    return self;
                }
                Self(self.0.div_euclid(increment.0) * increment.0)
            }

            /// The smallest multiple of `increment` that is `>= self` (towards +∞), or `None` if
            /// that multiple overflows. A zero or negative increment returns `self` unchanged.
            #[inline]
            pub const fn round_up_to(self, increment: Self) -> Option<Self> {
                if increment.0 <= 0 {
                    return Some(self);
                }
                let down = self.0.div_euclid(increment.0) * increment.0;
                if down == self.0 {
                    return Some(self);
                }
                match down.checked_add(increment.0) {
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
                // `i64::MIN` itself is excluded so `abs`/`neg` stay total.
                let m = parse_mantissa(s, DECIMALS, i64::MAX as i128)?;
                #[allow(clippy::cast_possible_truncation)] // bounded by max_abs above
                Ok(Self(m as i64))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt_mantissa(f, i128::from(self.0), DECIMALS)
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
        if price.0 == 0 {
            return None;
        }
        i64::try_from(self.0.div_euclid(price.0 as i128)).ok().map(Qty::from_mantissa)
    }

    /// Multiplies by an integer ratio `num / den`, rounding towards −∞ (used for
    /// percentage bands such as `PERCENT_PRICE_BY_SIDE`). `None` if `den` is zero or on overflow.
    #[inline]
    pub fn mul_ratio_floor(self, num: i128, den: i128) -> Option<Notional> {
        if den == 0 {
            return None;
        }
        Some(Notional(self.0.checked_mul(num)?.div_euclid(den)))
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
        parse_mantissa(s, NOTIONAL_DECIMALS, i128::MAX / 10).map(Notional)
    }
}

impl fmt::Display for Notional {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_mantissa(f, self.0, NOTIONAL_DECIMALS)
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
