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
