//! Request-weight and order-count budget (SPEC.md §7), so kestrel never earns a 429, let alone
//! a 418 ban (scenarios S06, S07, S08, S09).
//!
//! - Binance counts request *weight* per IP (`REQUEST_WEIGHT`, e.g. 6000 per minute) and
//!   *orders* per account (`ORDERS`, e.g. 50 per 10 s and 160000 per day). The limits come from
//!   `exchangeInfo.rateLimits` ([`RateLimiter::set_limits`]) or the defaults below.
//! - This process may use only `share_pct` percent of each limit (several bots on one IP or
//!   account, S09). Its own spending is counted locally per window; the exchange's
//!   `X-MBX-USED-WEIGHT-<n><unit>` / `X-MBX-ORDER-COUNT-<n><unit>` headers report what the whole
//!   IP/account used, and no request is sent that would push that past the full limit.
//! - A request that does not fit waits (asynchronously, in FIFO order) for the window to roll,
//!   so a burst of start-up snapshots is spread instead of sent at once (S08).
//! - HTTP 429: every request pauses until `Retry-After` has passed (S06). HTTP 418: the IP is
//!   banned; every request fails at once with [`BinanceError::RateLimited`] `{ banned: true }`
//!   until the ban ends, and nothing is sent (S07).
//!
//! Windows are fixed and start at first use, not at Binance's clock-aligned boundaries; the
//! header correction after each response re-aligns what matters (the counts).
//!
//! [`Budget`] is the pure core (time passed in, no I/O), unit-tested with synthetic instants;
//! [`RateLimiter`] wraps it for async callers with `tokio::time`, so paused-time tests drive it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::BinanceError;

/// One documented limit: at most `limit` units per `interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Window length (`intervalNum` × `interval`).
    pub interval: Duration,
    /// Units allowed per window for the whole IP (weight) or account (orders).
    pub limit: u32,
}

/// The exchange's limits that the budget enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeLimits {
    /// `REQUEST_WEIGHT` windows.
    pub request_weight: Vec<Limit>,
    /// `ORDERS` windows.
    pub orders: Vec<Limit>,
}

impl ExchangeLimits {
    /// Binance Spot's documented limits (rest-api.md example): 6000 weight per minute, 50
    /// orders per 10 s and 160000 per day. Replaced by `exchangeInfo.rateLimits` at start-up.
    pub fn binance_spot_default() -> Self {
        Self {
            request_weight: vec![Limit { interval: Duration::from_secs(60), limit: 6000 }],
            orders: vec![
                Limit { interval: Duration::from_secs(10), limit: 50 },
                Limit { interval: Duration::from_secs(86_400), limit: 160_000 },
            ],
        }
    }
}

/// What one request costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cost {
    /// Request weight (rest-api.md lists it per endpoint).
    pub weight: u32,
    /// Orders counted against `ORDERS` (1 for a placement, 0 otherwise).
    pub orders: u32,
}

impl Cost {
    /// A request of `weight` that places no order.
    pub const fn weight(weight: u32) -> Self {
        Self { weight, orders: 0 }
    }

    /// An order placement: counts one order and `weight`.
    pub const fn order(weight: u32) -> Self {
        Self { weight, orders: 1 }
    }
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Send now; the cost has been counted.
    Go,
    /// Not before this instant (window full, or paused after a 429).
    WaitUntil(Instant),
    /// IP banned (418) until this instant: do not send, fail the request.
    BannedUntil(Instant),
}

#[derive(Debug, Clone)]
struct Window {
    /// Window length.
    interval: Duration,
    /// The exchange's limit for the whole IP/account.
    full_limit: u32,
    /// Our share of it.
    share_limit: u32,
    /// Start of the current window.
    start: Instant,
    /// What this process spent in the current window.
    local_used: u32,
    /// What the exchange last reported for the whole IP/account in this window.
    reported: u32,
}

impl Window {
    fn new(l: Limit, share_pct: u8, now: Instant) -> Self {
        let share = u64::from(l.limit) * u64::from(share_pct.clamp(1, 100)) / 100;
        Self {
            interval: l.interval,
            full_limit: l.limit,
            share_limit: u32::try_from(share).unwrap_or(u32::MAX).max(1),
            start: now,
            local_used: 0,
            reported: 0,
        }
    }

    fn roll(&mut self, now: Instant) {
        if now.saturating_duration_since(self.start) >= self.interval {
            let periods = now.saturating_duration_since(self.start).as_nanos()
                / self.interval.as_nanos().max(1);
            let advance = self.interval.saturating_mul(u32::try_from(periods).unwrap_or(u32::MAX));
            self.start += advance;
            self.local_used = 0;
            self.reported = 0;
        }
    }

    /// Whether `cost` fits. A cost larger than our whole share is admitted into an empty
    /// window, otherwise it could never be sent.
    fn fits(&self, cost: u32) -> bool {
        if cost == 0 {
            return true;
        }
        let local_ok =
            self.local_used.saturating_add(cost) <= self.share_limit || self.local_used == 0;
        let global_ok = self.reported.saturating_add(cost) <= self.full_limit;
        local_ok && global_ok
    }

    fn end(&self) -> Instant {
        self.start + self.interval
    }
}

/// The pure budget: all windows plus the 429 pause and the 418 ban.
#[derive(Debug, Clone)]
pub struct Budget {
    share_pct: u8,
    weight: Vec<Window>,
    orders: Vec<Window>,
    /// No request before this instant (429 `Retry-After` or 418 ban end).
    pause_until: Option<Instant>,
    /// Whether the pause is a ban (fail requests) rather than a back-off (delay them).
    banned: bool,
}

impl Budget {
    /// A budget of `share_pct` percent (1–100) of `limits`.
    pub fn new(limits: &ExchangeLimits, share_pct: u8, now: Instant) -> Self {
        let mk = |ls: &[Limit]| ls.iter().map(|l| Window::new(*l, share_pct, now)).collect();
        Self {
            share_pct,
            weight: mk(&limits.request_weight),
            orders: mk(&limits.orders),
            pause_until: None,
            banned: false,
        }
    }

    /// Replaces the limits (from `exchangeInfo`), keeping current counts where the interval is
    /// unchanged.
    pub fn set_limits(&mut self, limits: &ExchangeLimits, now: Instant) {
        let remake = |old: &[Window], ls: &[Limit], pct: u8| -> Vec<Window> {
            ls.iter()
                .map(|l| {
                    let mut w = Window::new(*l, pct, now);
                    if let Some(o) = old.iter().find(|o| o.interval == l.interval) {
                        w.start = o.start;
                        w.local_used = o.local_used;
                        w.reported = o.reported;
                    }
                    w
                })
                .collect()
        };
        self.weight = remake(&self.weight, &limits.request_weight, self.share_pct);
        self.orders = remake(&self.orders, &limits.orders, self.share_pct);
    }

    /// Admits `cost` now (and counts it) or says until when to wait.
    pub fn try_acquire(&mut self, now: Instant, cost: Cost) -> Admit {
        if let Some(until) = self.pause_until {
            if now < until {
                return if self.banned {
                    Admit::BannedUntil(until)
                } else {
                    Admit::WaitUntil(until)
                };
            }
            self.pause_until = None;
            self.banned = false;
        }
        let mut wait: Option<Instant> = None;
        for w in self.weight.iter_mut().chain(self.orders.iter_mut()) {
            w.roll(now);
        }
        for w in &self.weight {
            if !w.fits(cost.weight) {
                wait = Some(wait.map_or(w.end(), |t| t.max(w.end())));
            }
        }
        for w in &self.orders {
            if !w.fits(cost.orders) {
                wait = Some(wait.map_or(w.end(), |t| t.max(w.end())));
            }
        }
        if let Some(t) = wait {
            return Admit::WaitUntil(t);
        }
        for w in &mut self.weight {
            w.local_used = w.local_used.saturating_add(cost.weight);
            w.reported = w.reported.saturating_add(cost.weight);
        }
        for w in &mut self.orders {
            w.local_used = w.local_used.saturating_add(cost.orders);
            w.reported = w.reported.saturating_add(cost.orders);
        }
        Admit::Go
    }

    /// The exchange reported `used` weight for the window of length `interval`
    /// (`X-MBX-USED-WEIGHT-1M: 321`): the IP-wide count replaces our estimate.
    pub fn observe_weight(&mut self, now: Instant, interval: Duration, used: u32) {
        observe(&mut self.weight, now, interval, used);
    }

    /// The exchange reported `count` orders for the window of length `interval`
    /// (`X-MBX-ORDER-COUNT-10S: 3`).
    pub fn observe_orders(&mut self, now: Instant, interval: Duration, count: u32) {
        observe(&mut self.orders, now, interval, count);
    }

    /// A 429 (`banned == false`) or 418 (`banned == true`) with `Retry-After`: nothing is sent
    /// before `now + retry_after`.
    pub fn on_rate_limited(&mut self, now: Instant, retry_after: Duration, banned: bool) {
        let until = now + retry_after;
        self.pause_until = Some(self.pause_until.map_or(until, |u| u.max(until)));
        self.banned |= banned;
    }

    /// Weight used in the first (shortest) weight window: the larger of our count and the
    /// exchange's, for metrics.
    pub fn used_weight(&self, now: Instant) -> u32 {
        self.weight.first().map_or(0, |w| {
            if now.saturating_duration_since(w.start) >= w.interval {
                0
            } else {
                w.reported.max(w.local_used)
            }
        })
    }

    /// The end of the current 429 pause or 418 ban, and whether it is a ban.
    pub fn paused_until(&self, now: Instant) -> Option<(Instant, bool)> {
        self.pause_until.filter(|u| *u > now).map(|u| (u, self.banned))
    }
}

fn observe(windows: &mut [Window], now: Instant, interval: Duration, used: u32) {
    for w in windows.iter_mut().filter(|w| w.interval == interval) {
        w.roll(now);
        w.reported = used;
    }
}

/// Parses the `<n><unit>` suffix of `X-MBX-USED-WEIGHT-1M` / `X-MBX-ORDER-COUNT-10S`
/// (units `S`, `M`, `H`, `D`, case-insensitive) into a window length.
pub fn parse_interval_suffix(s: &str) -> Option<Duration> {
    let unit = s.chars().last()?;
    let n: u64 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    let secs = match unit.to_ascii_uppercase() {
        'S' => 1,
        'M' => 60,
        'H' => 3_600,
        'D' => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(secs)?))
}

/// The shared, async rate limiter. Cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct RateLimiter {
    inner: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    budget: Mutex<Budget>,
    /// Held while waiting for budget, so waiters are admitted in FIFO order and a large
    /// request is not starved by a stream of small ones.
    turn: tokio::sync::Mutex<()>,
}

impl RateLimiter {
    /// A limiter using `share_pct` percent (1–100) of `limits`.
    pub fn new(limits: &ExchangeLimits, share_pct: u8) -> Self {
        Self {
            inner: Arc::new(Shared {
                budget: Mutex::new(Budget::new(limits, share_pct, Instant::now())),
                turn: tokio::sync::Mutex::new(()),
            }),
        }
    }

    fn budget(&self) -> std::sync::MutexGuard<'_, Budget> {
        // A poisoned lock only means another thread panicked mid-update of plain counters; the
        // counts are still usable.
        self.inner.budget.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the limits with the exchange's (from `exchangeInfo.rateLimits`).
    pub fn set_limits(&self, limits: &ExchangeLimits) {
        self.budget().set_limits(limits, Instant::now());
    }

    /// Waits until `cost` fits the budget and counts it. Fails at once during a 418 ban.
    pub async fn acquire(&self, cost: Cost) -> Result<(), BinanceError> {
        let _turn = self.inner.turn.lock().await;
        loop {
            let now = Instant::now();
            let admit = self.budget().try_acquire(now, cost);
            match admit {
                Admit::Go => return Ok(()),
                Admit::WaitUntil(t) => {
                    tracing::debug!(
                        wait_ms = t.saturating_duration_since(now).as_millis() as u64,
                        "rate limit: waiting for budget"
                    );
                    tokio::time::sleep_until(t).await;
                }
                Admit::BannedUntil(t) => {
                    return Err(BinanceError::RateLimited {
                        retry_after: t.saturating_duration_since(now),
                        banned: true,
                    })
                }
            }
        }
    }

    /// Feeds one response's headers: `X-MBX-USED-WEIGHT-*` and `X-MBX-ORDER-COUNT-*`.
    pub fn observe_headers(&self, headers: &reqwest::header::HeaderMap) {
        let now = Instant::now();
        let mut b = self.budget();
        for (name, value) in headers {
            let name = name.as_str();
            let Some(v) = value.to_str().ok().and_then(|v| v.trim().parse::<u32>().ok()) else {
                continue;
            };
            if let Some(sfx) = strip_prefix_ci(name, "x-mbx-used-weight-") {
                if let Some(iv) = parse_interval_suffix(sfx) {
                    b.observe_weight(now, iv, v);
                }
            } else if let Some(sfx) = strip_prefix_ci(name, "x-mbx-order-count-") {
                if let Some(iv) = parse_interval_suffix(sfx) {
                    b.observe_orders(now, iv, v);
                }
            }
        }
    }

    /// Records a usage report from the WebSocket API's `rateLimits` array.
    pub fn observe_report(&self, weight: bool, interval: Duration, count: u32) {
        let now = Instant::now();
        let mut b = self.budget();
        if weight {
            b.observe_weight(now, interval, count);
        } else {
            b.observe_orders(now, interval, count);
        }
    }

    /// Records a 429 (`banned = false`) or 418 (`banned = true`).
    pub fn on_rate_limited(&self, retry_after: Duration, banned: bool) {
        tracing::warn!(
            retry_after_ms = retry_after.as_millis() as u64,
            banned,
            "binance rate limit hit"
        );
        self.budget().on_rate_limited(Instant::now(), retry_after, banned);
    }

    /// Weight used in the current one-minute window (for the metrics gauge).
    pub fn used_weight(&self) -> u32 {
        self.budget().used_weight(Instant::now())
    }

    /// Remaining 429 pause or 418 ban, and whether it is a ban (for status and metrics).
    pub fn paused_for(&self) -> Option<(Duration, bool)> {
        let now = Instant::now();
        self.budget().paused_until(now).map(|(u, b)| (u.saturating_duration_since(now), b))
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix) {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(weight: u32, orders_10s: u32) -> ExchangeLimits {
        ExchangeLimits {
            request_weight: vec![Limit { interval: Duration::from_secs(60), limit: weight }],
            orders: vec![Limit { interval: Duration::from_secs(10), limit: orders_10s }],
        }
    }

    #[test]
    fn interval_suffixes() {
        let cases = [
            ("1M", Some(60)),
            ("10S", Some(10)),
            ("1d", Some(86_400)),
            ("1H", Some(3600)),
            ("X", None),
            ("1Q", None),
        ];
        for (i, (s, want)) in cases.iter().enumerate() {
            assert_eq!(parse_interval_suffix(s), want.map(Duration::from_secs), "TC{i}");
        }
    }

    #[test]
    fn share_limits_local_spending_and_window_rolls() {
        let t0 = Instant::now();
        let mut b = Budget::new(&limits(100, 50), 50, t0);
        // 50 % of 100 = 50 weight for us.
        for _ in 0..5 {
            assert_eq!(b.try_acquire(t0, Cost::weight(10)), Admit::Go);
        }
        assert_eq!(
            b.try_acquire(t0, Cost::weight(1)),
            Admit::WaitUntil(t0 + Duration::from_secs(60))
        );
        assert_eq!(b.used_weight(t0), 50);
        let t1 = t0 + Duration::from_secs(60);
        assert_eq!(b.try_acquire(t1, Cost::weight(10)), Admit::Go);
        assert_eq!(b.used_weight(t1), 10);
    }

    #[test]
    fn headers_report_other_users_of_the_ip() {
        let t0 = Instant::now();
        let mut b = Budget::new(&limits(100, 50), 50, t0);
        assert_eq!(b.try_acquire(t0, Cost::weight(10)), Admit::Go);
        // Another bot on the IP used 85; we may spend our 40 remaining only up to 100 total.
        b.observe_weight(t0, Duration::from_secs(60), 95);
        assert_eq!(b.try_acquire(t0, Cost::weight(5)), Admit::Go);
        assert!(matches!(b.try_acquire(t0, Cost::weight(1)), Admit::WaitUntil(_)));
        assert_eq!(b.used_weight(t0), 100);
    }

    #[test]
    fn oversized_request_fits_an_empty_window() {
        let t0 = Instant::now();
        let mut b = Budget::new(&limits(1000, 50), 10, t0);
        // Our share is 100 but a 5000-level snapshot costs 250.
        assert_eq!(b.try_acquire(t0, Cost::weight(250)), Admit::Go);
        assert!(matches!(b.try_acquire(t0, Cost::weight(250)), Admit::WaitUntil(_)));
    }

    #[test]
    fn orders_window_is_separate() {
        let t0 = Instant::now();
        let mut b = Budget::new(&limits(6000, 2), 100, t0);
        assert_eq!(b.try_acquire(t0, Cost::order(1)), Admit::Go);
        assert_eq!(b.try_acquire(t0, Cost::order(1)), Admit::Go);
        assert_eq!(
            b.try_acquire(t0, Cost::order(1)),
            Admit::WaitUntil(t0 + Duration::from_secs(10))
        );
        // Reads still go.
        assert_eq!(b.try_acquire(t0, Cost::weight(4)), Admit::Go);
    }

    #[test]
    fn backoff_and_ban() {
        let t0 = Instant::now();
        let mut b = Budget::new(&limits(6000, 50), 100, t0);
        b.on_rate_limited(t0, Duration::from_secs(3), false);
        assert_eq!(
            b.try_acquire(t0, Cost::weight(1)),
            Admit::WaitUntil(t0 + Duration::from_secs(3))
        );
        assert_eq!(b.try_acquire(t0 + Duration::from_secs(3), Cost::weight(1)), Admit::Go);
        b.on_rate_limited(t0, Duration::from_secs(120), true);
        assert_eq!(
            b.try_acquire(t0 + Duration::from_secs(60), Cost::weight(1)),
            Admit::BannedUntil(t0 + Duration::from_secs(120))
        );
        assert_eq!(b.try_acquire(t0 + Duration::from_secs(120), Cost::weight(1)), Admit::Go);
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_spreads_requests_over_windows() {
        let rl = RateLimiter::new(&limits(100, 50), 100);
        let start = Instant::now();
        // 5 snapshots of weight 50: two per minute window.
        let mut admitted = Vec::new();
        for _ in 0..5 {
            rl.acquire(Cost::weight(50)).await.unwrap();
            admitted.push(start.elapsed().as_secs());
        }
        assert_eq!(admitted, vec![0, 0, 60, 60, 120]);
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_pauses_on_429_and_fails_during_ban() {
        let rl = RateLimiter::new(&limits(6000, 50), 100);
        let start = Instant::now();
        rl.on_rate_limited(Duration::from_secs(2), false);
        rl.acquire(Cost::weight(1)).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        rl.on_rate_limited(Duration::from_secs(30), true);
        let e = rl.acquire(Cost::weight(1)).await.unwrap_err();
        assert!(
            matches!(e, BinanceError::RateLimited { banned: true, retry_after } if retry_after == Duration::from_secs(30))
        );
        assert_eq!(rl.paused_for(), Some((Duration::from_secs(30), true)));
        tokio::time::advance(Duration::from_secs(30)).await;
        rl.acquire(Cost::weight(1)).await.unwrap();
    }

    #[test]
    fn headers_are_parsed() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let rl = RateLimiter::new(&limits(6000, 50), 100);
            let mut h = reqwest::header::HeaderMap::new();
            h.insert("x-mbx-used-weight-1m", "321".parse().unwrap());
            h.insert("X-MBX-ORDER-COUNT-10S", "3".parse().unwrap());
            rl.observe_headers(&h);
            assert_eq!(rl.used_weight(), 321);
        });
    }
}
