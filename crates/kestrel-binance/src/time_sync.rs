//! The measured offset between the exchange's clock and ours.
//!
//! Shared by the REST client (request `timestamp`s) and market data (`binance_ws_latency_seconds`
//! = local receive time − event time `E`, corrected by this offset so the figure is network +
//! exchange delay, not clock skew).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use kestrel_model::UnixNanos;

/// `exchange_time - local_time` in nanoseconds, shared and lock-free. Cloning shares the value.
#[derive(Debug, Clone, Default)]
pub struct TimeOffset(Arc<AtomicI64>);

impl TimeOffset {
    /// A zero offset.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current offset in nanoseconds (positive: the exchange clock is ahead of ours).
    #[inline]
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Records a newly measured offset.
    #[inline]
    pub fn set(&self, offset_ns: i64) {
        self.0.store(offset_ns, Ordering::Relaxed);
    }

    /// Our local time expressed on the exchange's clock.
    #[inline]
    pub fn to_exchange(&self, local: UnixNanos) -> UnixNanos {
        local.offset_by(self.get())
    }
}

/// The offset measured by one `GET /api/v3/time` round trip: the server's reading minus the
/// midpoint of our send and receive times (the server read its clock about half-way through).
/// The error is at most half the round trip.
pub fn offset_from_round_trip(sent: UnixNanos, server: UnixNanos, received: UnixNanos) -> i64 {
    let mid = UnixNanos(sent.0 / 2 + received.0 / 2 + (sent.0 % 2 + received.0 % 2) / 2);
    server.signed_diff(mid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_is_server_minus_round_trip_midpoint() {
        let ms = UnixNanos::from_millis;
        // TC0: server 5 s behind, 20 ms round trip; TC1: server ahead; TC2: same clock.
        let cases = [
            (ms(10_000), ms(5_010), ms(10_020), -5_000_000_000),
            (ms(10_000), ms(12_010), ms(10_020), 2_000_000_000),
            (ms(10_000), ms(10_010), ms(10_020), 0),
        ];
        for (i, (sent, server, recv, want)) in cases.into_iter().enumerate() {
            assert_eq!(offset_from_round_trip(sent, server, recv), want, "TC{i}");
        }
        let o = TimeOffset::new();
        o.set(-5_000_000_000);
        assert_eq!(o.to_exchange(ms(10_020)), ms(5_020));
        assert_eq!(o.clone().get(), o.get());
    }
}
