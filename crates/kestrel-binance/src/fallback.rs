//! REST fallback for market data (M2): when to switch, and how fast to poll.
//!
//! If a symbol group's WebSocket stays unhealthy (no connection, or no frame within the
//! heartbeat window) for [`FallbackConfig::fallback_after`], the group's books are served from
//! periodic REST depth snapshots, marked [`kestrel_model::BookSource::RestFallback`]. The poll
//! interval is derived from the request-weight budget so fallback can never cause a 429:
//!
//! ```text
//! interval = max(min_poll_interval, 60 s × symbols × weight(depth_limit) / (budget_per_minute × share))
//! ```
//!
//! When the WebSocket has been healthy again for [`FallbackConfig::recover_grace`], the group
//! switches back: every book is resynced from a fresh snapshot (stale until then). The operator
//! can force fallback on (`fallback-rest on`) and release it (`off`, back to automatic).
//!
//! This module holds the pure decision logic ([`FallbackState`]); the connection task in
//! [`crate::market_data`] drives it with its own clock and performs the polls.

use std::time::Duration;

use tokio::time::Instant;

use crate::observer::MarketDataMode;

/// Fallback tuning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackConfig {
    /// How long the WebSocket must stay unhealthy before polling REST (default 5 min,
    /// PRODUCT.md M2).
    pub fallback_after: Duration,
    /// How long the WebSocket must be healthy again before switching back (default 30 s), so a
    /// flapping connection doesn't bounce the books between sources.
    pub recover_grace: Duration,
    /// The account's `REQUEST_WEIGHT` limit per minute (Binance: 6000, from `exchangeInfo`).
    pub weight_budget_per_minute: u32,
    /// Percentage of that budget fallback polling may use (default 20 %), leaving the rest for
    /// orders, reconciliation and other bots sharing the IP (S09).
    pub budget_share_pct: u8,
    /// `limit` of each polled `GET /api/v3/depth` (default 100: weight 5).
    pub depth_limit: u16,
    /// Never poll faster than this, whatever the budget allows (default 1 s).
    pub min_poll_interval: Duration,
}

impl Default for FallbackConfig {
    fn default() -> Self {
        Self {
            fallback_after: Duration::from_secs(300),
            recover_grace: Duration::from_secs(30),
            weight_budget_per_minute: 6000,
            budget_share_pct: 20,
            depth_limit: 100,
            min_poll_interval: Duration::from_secs(1),
        }
    }
}

/// Request weight of `GET /api/v3/depth` for a `limit` (SPEC.md §2: 5 / 25 / 50 / 250 for
/// limit ≤100 / ≤500 / ≤1000 / ≤5000).
pub const fn depth_weight(limit: u16) -> u32 {
    match limit {
        0..=100 => 5,
        101..=500 => 25,
        501..=1000 => 50,
        _ => 250,
    }
}

impl FallbackConfig {
    /// The poll period for `symbols` books so that polling stays within the budget share.
    pub fn poll_interval(&self, symbols: usize) -> Duration {
        let per_round = u128::from(depth_weight(self.depth_limit)) * symbols.max(1) as u128;
        let budget =
            u128::from(self.weight_budget_per_minute) * u128::from(self.budget_share_pct.min(100));
        // budget is in weight/min × 100 (percent); interval_ms = 60_000 × per_round × 100 / budget.
        let ms = if budget == 0 {
            u128::from(u64::MAX)
        } else {
            (60_000u128 * per_round * 100).div_ceil(budget)
        };
        let d = Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX));
        d.max(self.min_poll_interval)
    }
}

/// What the caller must do after [`FallbackState::evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackDecision {
    /// Keep the current mode.
    Stay,
    /// Switch to REST polling now.
    Enter,
    /// Switch back to the WebSocket now (resnapshot every book).
    Exit,
}

/// The per-group fallback decision logic. Pure: time is passed in.
#[derive(Debug, Clone)]
pub struct FallbackState {
    mode: MarketDataMode,
    /// Operator override (`fallback-rest on`): stay on REST whatever the WebSocket does.
    forced: bool,
    /// Since when the WebSocket has been unhealthy (None while healthy).
    unhealthy_since: Option<Instant>,
    /// Since when the WebSocket has been healthy (None while unhealthy).
    healthy_since: Option<Instant>,
}

impl FallbackState {
    /// Starts in WebSocket mode, unhealthy since `now` (nothing is connected yet), so a
    /// WebSocket that never comes up also ends in fallback.
    pub fn new(now: Instant) -> Self {
        Self {
            mode: MarketDataMode::WebSocket,
            forced: false,
            unhealthy_since: Some(now),
            healthy_since: None,
        }
    }

    /// Current mode.
    pub fn mode(&self) -> MarketDataMode {
        self.mode
    }

    /// Whether the operator forced fallback.
    pub fn forced(&self) -> bool {
        self.forced
    }

    /// Records the WebSocket's health at `now` (call on every frame and state change; cheap).
    pub fn set_healthy(&mut self, healthy: bool, now: Instant) {
        if healthy {
            self.unhealthy_since = None;
            self.healthy_since.get_or_insert(now);
        } else {
            self.healthy_since = None;
            self.unhealthy_since.get_or_insert(now);
        }
    }

    /// Operator override on (`true`) or off (`false`, back to automatic).
    pub fn set_forced(&mut self, forced: bool) {
        self.forced = forced;
    }

    /// Decides whether to switch; applies the switch to `mode()` when it says so.
    pub fn evaluate(&mut self, cfg: &FallbackConfig, now: Instant) -> FallbackDecision {
        match self.mode {
            MarketDataMode::WebSocket => {
                let unhealthy_long = self
                    .unhealthy_since
                    .is_some_and(|t| now.saturating_duration_since(t) >= cfg.fallback_after);
                if self.forced || unhealthy_long {
                    self.mode = MarketDataMode::RestFallback;
                    FallbackDecision::Enter
                } else {
                    FallbackDecision::Stay
                }
            }
            MarketDataMode::RestFallback => {
                let healthy_long = self
                    .healthy_since
                    .is_some_and(|t| now.saturating_duration_since(t) >= cfg.recover_grace);
                if !self.forced && healthy_long {
                    self.mode = MarketDataMode::WebSocket;
                    // The WebSocket is healthy: don't count the time in fallback as unhealthy.
                    self.unhealthy_since = None;
                    FallbackDecision::Exit
                } else {
                    FallbackDecision::Stay
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_interval_respects_the_weight_budget() {
        let cfg = FallbackConfig::default(); // 6000/min, 20 % = 1200/min, weight 5
                                             // TC0: 3 symbols -> 15 weight per round -> 80 rounds/min -> 750 ms, floored to 1 s.
        assert_eq!(cfg.poll_interval(3), Duration::from_secs(1));
        // TC1: 100 symbols -> 500 per round -> 2.4 rounds/min -> 25 s.
        assert_eq!(cfg.poll_interval(100), Duration::from_secs(25));
        // TC2: limit 1000 (weight 50), 10 symbols -> 500 per round -> 25 s.
        let big = FallbackConfig { depth_limit: 1000, ..cfg.clone() };
        assert_eq!(big.poll_interval(10), Duration::from_secs(25));
        // TC3: zero budget never divides by zero.
        let none = FallbackConfig { budget_share_pct: 0, ..cfg };
        assert!(none.poll_interval(1) > Duration::from_secs(3600));
    }

    #[test]
    fn depth_weights_match_the_docs() {
        for (limit, w) in [(1, 5), (100, 5), (101, 25), (500, 25), (1000, 50), (5000, 250)] {
            assert_eq!(depth_weight(limit), w, "limit {limit}");
        }
    }

    #[test]
    fn switches_after_fallback_after_and_back_after_grace() {
        let cfg = FallbackConfig {
            fallback_after: Duration::from_secs(10),
            recover_grace: Duration::from_secs(3),
            ..FallbackConfig::default()
        };
        let t0 = Instant::now();
        let mut s = FallbackState::new(t0);
        s.set_healthy(true, t0);
        s.set_healthy(false, t0 + Duration::from_secs(1));
        assert_eq!(s.evaluate(&cfg, t0 + Duration::from_secs(10)), FallbackDecision::Stay);
        assert_eq!(s.evaluate(&cfg, t0 + Duration::from_secs(11)), FallbackDecision::Enter);
        assert_eq!(s.mode(), MarketDataMode::RestFallback);
        s.set_healthy(true, t0 + Duration::from_secs(20));
        assert_eq!(s.evaluate(&cfg, t0 + Duration::from_secs(22)), FallbackDecision::Stay);
        // a flap restarts the grace period
        s.set_healthy(false, t0 + Duration::from_secs(22));
        s.set_healthy(true, t0 + Duration::from_secs(23));
        assert_eq!(s.evaluate(&cfg, t0 + Duration::from_secs(25)), FallbackDecision::Stay);
        assert_eq!(s.evaluate(&cfg, t0 + Duration::from_secs(26)), FallbackDecision::Exit);
        assert_eq!(s.mode(), MarketDataMode::WebSocket);
    }

    #[test]
    fn operator_override_forces_and_releases() {
        let cfg = FallbackConfig::default();
        let t0 = Instant::now();
        let mut s = FallbackState::new(t0);
        s.set_healthy(true, t0);
        s.set_forced(true);
        assert_eq!(s.evaluate(&cfg, t0), FallbackDecision::Enter);
        let later = t0 + cfg.recover_grace * 2;
        assert_eq!(s.evaluate(&cfg, later), FallbackDecision::Stay, "forced: stays on REST");
        s.set_forced(false);
        assert_eq!(s.evaluate(&cfg, later), FallbackDecision::Exit);
    }
}
