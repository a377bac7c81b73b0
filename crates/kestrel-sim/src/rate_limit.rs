//! Request-weight and order-count limits with fixed windows on the server clock, 429 with
//! `Retry-After`, and a 418 ban after repeated 429s (SPEC.md §7).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::config::LimitsConfig;
use crate::error::ApiError;

const MINUTE_MS: u64 = 60_000;
const TEN_S_MS: u64 = 10_000;
const DAY_MS: u64 = 86_400_000;

/// Per-IP weight state.
#[derive(Debug, Default)]
struct IpState {
    /// Minute window index the counters belong to.
    window: u64,
    /// Weight used in the window.
    used: u32,
    /// 429 answers in the window (→ ban).
    violations: u32,
    /// Ban end (server ms).
    banned_until_ms: u64,
}

/// Per-account order counters.
#[derive(Debug, Default)]
struct OrderState {
    window_10s: u64,
    count_10s: u32,
    window_day: u64,
    count_day: u32,
}

/// What a caller learns when a request is accepted.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    /// Weight used in the current minute (for `X-MBX-USED-WEIGHT-1M`).
    pub weight_1m: u32,
}

/// The limiter (lives behind its own mutex).
#[derive(Debug)]
pub(crate) struct RateLimiter {
    cfg: LimitsConfig,
    ips: HashMap<IpAddr, IpState>,
    accounts: HashMap<usize, OrderState>,
}

/// Counter names for statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limited {
    /// Answered 429.
    TooMany,
    /// Answered 418.
    Banned,
}

impl RateLimiter {
    /// A limiter with `cfg`.
    pub fn new(cfg: LimitsConfig) -> Self {
        Self { cfg, ips: HashMap::new(), accounts: HashMap::new() }
    }

    /// The configured limits.
    pub fn config(&self) -> &LimitsConfig {
        &self.cfg
    }

    /// Charges `weight` to `ip`; refuses with 429 (-1003) over the limit and 418 while banned.
    pub fn charge(
        &mut self,
        ip: IpAddr,
        weight: u32,
        now_ms: u64,
    ) -> Result<Usage, (ApiError, Limited)> {
        let window = now_ms / MINUTE_MS;
        let st = self.ips.entry(ip).or_default();
        if st.window != window {
            st.window = window;
            st.used = 0;
            st.violations = 0;
        }
        if st.banned_until_ms > now_ms {
            let secs = (st.banned_until_ms - now_ms).div_ceil(1000);
            return Err((
                ApiError {
                    http: 418,
                    code: -1003,
                    msg: format!(
                        "Way too much request weight used; IP banned until {}. Please use WebSocket Streams for live updates to avoid bans.",
                        st.banned_until_ms
                    )
                    .into(),
                    retry_after_s: Some(secs),
                },
                Limited::Banned,
            ));
        }
        if st.used.saturating_add(weight) > self.cfg.request_weight_per_minute {
            st.violations += 1;
            if st.violations > self.cfg.ban_after_429s {
                st.banned_until_ms = now_ms + self.cfg.ban_duration_ms;
                return Err((
                    ApiError {
                        http: 418,
                        code: -1003,
                        msg: format!(
                            "Way too much request weight used; IP banned until {}. Please use WebSocket Streams for live updates to avoid bans.",
                            st.banned_until_ms
                        )
                        .into(),
                        retry_after_s: Some(self.cfg.ban_duration_ms.div_ceil(1000)),
                    },
                    Limited::Banned,
                ));
            }
            let secs = ((window + 1) * MINUTE_MS - now_ms).div_ceil(1000);
            return Err((
                ApiError {
                    http: 429,
                    code: -1003,
                    msg: format!(
                        "Too much request weight used; current limit is {} request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
                        self.cfg.request_weight_per_minute
                    )
                    .into(),
                    retry_after_s: Some(secs.max(1)),
                },
                Limited::TooMany,
            ));
        }
        st.used += weight;
        Ok(Usage { weight_1m: st.used })
    }

    /// Weight used by `ip` in the current minute.
    pub fn used(&mut self, ip: IpAddr, now_ms: u64) -> u32 {
        let window = now_ms / MINUTE_MS;
        match self.ips.get(&ip) {
            Some(st) if st.window == window => st.used,
            _ => 0,
        }
    }

    /// Counts a new order for `account`; refuses with 429 (-1015) over either limit. Returns the
    /// (10 s, 1 day) counts after this order.
    pub fn charge_order(&mut self, account: usize, now_ms: u64) -> Result<(u32, u32), ApiError> {
        let (per_10s, per_day) = (self.cfg.orders_per_10s, self.cfg.orders_per_day);
        let st = self.roll(account, now_ms);
        if st.count_10s >= per_10s {
            return Err(ApiError {
                http: 429,
                code: -1015,
                msg: format!(
                    "Too many new orders; current limit is {} orders per 10 SECOND.",
                    per_10s
                )
                .into(),
                retry_after_s: Some(
                    ((st.window_10s + 1) * TEN_S_MS - now_ms).div_ceil(1000).max(1),
                ),
            });
        }
        if st.count_day >= per_day {
            return Err(ApiError {
                http: 429,
                code: -1015,
                msg: format!("Too many new orders; current limit is {} orders per 1 DAY.", per_day)
                    .into(),
                retry_after_s: Some(((st.window_day + 1) * DAY_MS - now_ms).div_ceil(1000).max(1)),
            });
        }
        st.count_10s += 1;
        st.count_day += 1;
        Ok((st.count_10s, st.count_day))
    }

    /// Current (10 s, 1 day) order counts.
    pub fn order_counts(&mut self, account: usize, now_ms: u64) -> (u32, u32) {
        let st = self.roll(account, now_ms);
        (st.count_10s, st.count_day)
    }

    fn roll(&mut self, account: usize, now_ms: u64) -> &mut OrderState {
        let st = self.accounts.entry(account).or_default();
        if st.window_10s != now_ms / TEN_S_MS {
            st.window_10s = now_ms / TEN_S_MS;
            st.count_10s = 0;
        }
        if st.window_day != now_ms / DAY_MS {
            st.window_day = now_ms / DAY_MS;
            st.count_day = 0;
        }
        st
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_then_429_then_418() {
        let cfg = LimitsConfig {
            request_weight_per_minute: 10,
            ban_after_429s: 2,
            ..LimitsConfig::default()
        };
        let mut rl = RateLimiter::new(cfg);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let t = 120_000;
        assert_eq!(rl.charge(ip, 10, t).unwrap().weight_1m, 10);
        // TC0: two 429s
        for _ in 0..2 {
            let (e, l) = rl.charge(ip, 1, t).unwrap_err();
            assert_eq!((e.http, e.code, l), (429, -1003, Limited::TooMany));
            assert_eq!(e.retry_after_s, Some(60));
        }
        // TC1: third violation bans
        let (e, l) = rl.charge(ip, 1, t).unwrap_err();
        assert_eq!((e.http, l), (418, Limited::Banned));
        // TC2: still banned in the next minute, lifted after ban_duration
        assert_eq!(rl.charge(ip, 1, t + 60_000).unwrap_err().0.http, 418);
        assert!(rl.charge(ip, 1, t + 120_000).is_ok());
    }

    #[test]
    fn order_count_limit() {
        let cfg = LimitsConfig { orders_per_10s: 2, ..LimitsConfig::default() };
        let mut rl = RateLimiter::new(cfg);
        assert_eq!(rl.charge_order(0, 0).unwrap(), (1, 1));
        assert_eq!(rl.charge_order(0, 0).unwrap(), (2, 2));
        assert_eq!(rl.charge_order(0, 0).unwrap_err().code, -1015);
        assert_eq!(rl.charge_order(0, 10_000).unwrap(), (1, 3));
    }
}
