//! Time as [`UnixNanos`] and the [`Clock`] seam.
//!
//! The engine never reads the wall clock: time arrives in events or through a [`Clock`] the binary
//! passes in, so a recorded event log replays to the same actions (STYLE.md 2.1).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Nanoseconds since the Unix epoch. Exchange times (ms or µs on the wire) are widened to this.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixNanos(pub u64);

impl UnixNanos {
    /// The epoch itself; also used as "unknown".
    pub const ZERO: Self = Self(0);

    /// From milliseconds since the epoch (Binance's default `E`/`T`/`transactTime` unit).
    #[inline]
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms.saturating_mul(1_000_000))
    }

    /// From microseconds since the epoch (`timeUnit=MICROSECOND`).
    #[inline]
    pub const fn from_micros(us: u64) -> Self {
        Self(us.saturating_mul(1_000))
    }

    /// Whole milliseconds since the epoch (for `timestamp` request parameters).
    #[inline]
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000_000
    }

    /// Whole microseconds since the epoch.
    #[inline]
    pub const fn as_micros(self) -> u64 {
        self.0 / 1_000
    }

    /// `self - earlier`, or zero if `earlier` is later (clocks may disagree).
    #[inline]
    pub const fn saturating_since(self, earlier: UnixNanos) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// Signed difference `self - other` in nanoseconds, saturating at the `i64` range (±292
    /// years) instead of wrapping to a value of the wrong sign.
    #[inline]
    pub const fn signed_diff(self, other: UnixNanos) -> i64 {
        let d = self.0 as i128 - other.0 as i128;
        if d > i64::MAX as i128 {
            i64::MAX
        } else if d < i64::MIN as i128 {
            i64::MIN
        } else {
            #[allow(clippy::cast_possible_truncation)] // range checked just above
            {
                d as i64
            }
        }
    }

    /// `self + d`, saturating.
    #[inline]
    pub fn saturating_add(self, d: Duration) -> UnixNanos {
        UnixNanos(self.0.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)))
    }

    /// Shifts by a signed offset in nanoseconds (e.g. the measured exchange clock offset).
    #[inline]
    pub const fn offset_by(self, nanos: i64) -> UnixNanos {
        UnixNanos(self.0.saturating_add_signed(nanos))
    }
}

impl fmt::Debug for UnixNanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnixNanos({})", self.0)
    }
}

impl fmt::Display for UnixNanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:09}", self.0 / 1_000_000_000, self.0 % 1_000_000_000)
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> UnixNanos;
}

/// Lets structs that hold an `Arc<dyn Clock>` derive `Debug` (the binary's tasks do). Shows the
/// clock's current reading; a foreign crate can't write this impl itself (orphan rule).
impl fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("dyn Clock").field("now", &self.now()).finish()
    }
}

/// The wall clock. Only the binary's I/O edge uses it; the engine gets time from events.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixNanos {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        UnixNanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
}

/// A clock that only moves when told to; for tests and replay.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: UnixNanos) -> Self {
        Self { now: AtomicU64::new(start.0) }
    }

    /// Moves the clock forward by `d`, saturating at the end of time (it never wraps back to
    /// the epoch).
    pub fn advance(&self, d: Duration) {
        let n = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // `fetch_add` would wrap; the closure always returns `Some`, so this cannot fail.
        let _ = self
            .now
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| Some(t.saturating_add(n)));
    }

    /// Sets the clock to `t` (may go backwards, to test skew handling).
    pub fn set(&self, t: UnixNanos) {
        self.now.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixNanos {
        UnixNanos(self.now.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(UnixNanos::from_millis(1_000));
        assert_eq!(c.now().as_millis(), 1_000);
        c.advance(Duration::from_millis(5));
        assert_eq!(c.now().as_millis(), 1_005);
        c.set(UnixNanos::from_millis(10));
        assert_eq!(c.now(), UnixNanos(10_000_000));
    }

    #[test]
    fn manual_clock_saturates_instead_of_wrapping() {
        // `fetch_add` used to wrap a far advance back to near the epoch.
        let c = ManualClock::new(UnixNanos(u64::MAX - 5));
        c.advance(Duration::from_nanos(10));
        assert_eq!(c.now(), UnixNanos(u64::MAX));
        c.advance(Duration::MAX);
        assert_eq!(c.now(), UnixNanos(u64::MAX));
    }

    #[test]
    fn dyn_clock_is_debug() {
        #[derive(Debug)]
        #[allow(dead_code)] // only Debug reads the field
        struct Holder {
            clock: std::sync::Arc<dyn Clock>,
        }
        let h = Holder { clock: std::sync::Arc::new(ManualClock::new(UnixNanos(1_500_000_000))) };
        assert_eq!(format!("{h:?}"), "Holder { clock: dyn Clock { now: UnixNanos(1500000000) } }");
    }

    #[test]
    fn signed_diff_saturates() {
        // Used to truncate the i128 difference, giving a value of the wrong sign.
        assert_eq!(UnixNanos(u64::MAX).signed_diff(UnixNanos(0)), i64::MAX);
        assert_eq!(UnixNanos(0).signed_diff(UnixNanos(u64::MAX)), i64::MIN);
        assert_eq!(UnixNanos(10).signed_diff(UnixNanos(3)), 7);
    }

    #[test]
    fn unit_conversions() {
        assert_eq!(UnixNanos::from_micros(1_500).as_millis(), 1);
        assert_eq!(UnixNanos(5).signed_diff(UnixNanos(8)), -3);
        assert_eq!(UnixNanos(5).saturating_since(UnixNanos(8)), Duration::ZERO);
        assert_eq!(UnixNanos(5).offset_by(-10), UnixNanos(0));
    }
}
