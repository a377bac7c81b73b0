//! The server clock: wall time or a manual clock, plus an injectable skew (fault `ClockSkew`).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// Server time source. Lock-free so every handler can read it.
#[derive(Debug)]
pub(crate) struct SimClock {
    /// `true`: time is `manual_ms`; `false`: the wall clock.
    manual: AtomicBool,
    /// Current time in manual mode (ms).
    manual_ms: AtomicU64,
    /// Added to the base time (skew fault), in ms.
    skew_ms: AtomicI64,
}

impl SimClock {
    /// A wall clock, or a manual one starting at `start_ms`.
    pub fn new(start_ms: Option<u64>) -> Self {
        Self {
            manual: AtomicBool::new(start_ms.is_some()),
            manual_ms: AtomicU64::new(start_ms.unwrap_or(0)),
            skew_ms: AtomicI64::new(0),
        }
    }

    /// Server time in ms (skew included).
    pub fn now_ms(&self) -> u64 {
        let base = if self.manual.load(Ordering::SeqCst) {
            self.manual_ms.load(Ordering::SeqCst)
        } else {
            let d = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
        };
        base.saturating_add_signed(self.skew_ms.load(Ordering::SeqCst))
    }

    /// Switches to manual time at `ms`.
    pub fn set_ms(&self, ms: u64) {
        self.manual_ms.store(ms, Ordering::SeqCst);
        self.manual.store(true, Ordering::SeqCst);
    }

    /// Advances manual time (switching to manual at the current time first if needed).
    pub fn advance_ms(&self, ms: u64) {
        if !self.manual.load(Ordering::SeqCst) {
            let now = self.now_ms().saturating_add_signed(-self.skew_ms.load(Ordering::SeqCst));
            self.set_ms(now);
        }
        self.manual_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the skew.
    pub fn set_skew_ms(&self, skew: i64) {
        self.skew_ms.store(skew, Ordering::SeqCst);
    }
}
