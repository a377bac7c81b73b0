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
//! - Windows are fixed and aligned to the exchange's clock, as Binance (and `kestrel-sim`)
//!   count them: the minute window starts at each whole UTC minute, the 10 s window at each
//!   multiple of 10 s since the epoch, the daily one at 00:00 UTC (window index =
//!   `exchange_time / interval`). A window anchored at process start instead would reset up to
//!   an interval away from the exchange's: room that the exchange does not have yet (429), or
//!   a needless wait. The exchange time is the local wall clock corrected by the measured
//!   [`TimeOffset`]; it is read once to anchor a monotonic `Instant` ([`Budget::set_anchor`]),
//!   and again whenever the offset is re-measured, so a wall-clock step between two
//!   re-measurements does not move the windows.
//!
//! [`Budget`] is the pure core (time passed in, no I/O), unit-tested with synthetic instants
//! and a synthetic exchange time; [`RateLimiter`] wraps it for async callers with
//! `tokio::time`, so paused-time tests drive it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kestrel_model::{Clock, SystemClock, UnixNanos};
use tokio::time::Instant;

use crate::error::BinanceError;
use crate::time_sync::TimeOffset;

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
    /// End of the current window: the next multiple of `interval` on the exchange's clock, so
    /// our window resets exactly when the exchange's does.
    end: Instant,
    /// What this process spent in the current window.
    local_used: u32,
    /// What the exchange last reported for the whole IP/account in this window.
    reported: u32,
}

impl Window {
    fn new(l: Limit, share_pct: u8, anchor: Anchor, now: Instant) -> Self {
        let share = u64::from(l.limit) * u64::from(share_pct.clamp(1, 100)) / 100;
        Self {
            interval: l.interval,
            full_limit: l.limit,
            share_limit: u32::try_from(share).unwrap_or(u32::MAX).max(1),
            end: anchor.window_end(now, l.interval),
            local_used: 0,
            reported: 0,
        }
    }

    /// Starts a new window (counts zero) once `now` has reached the current one's end.
    fn roll(&mut self, now: Instant, anchor: Anchor) {
        if now >= self.end {
            self.end = anchor.window_end(now, self.interval);
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
        self.end
    }
}

/// One monotonic instant paired with the exchange's wall-clock time at that instant; every
/// other instant's exchange time is derived from it, so window boundaries stay deterministic
/// (no clock read inside [`Budget`]).
#[derive(Debug, Clone, Copy)]
struct Anchor {
    /// The reference instant.
    at: Instant,
    /// The exchange's time (Unix ns) at `at`.
    exchange: UnixNanos,
}

impl Anchor {
    /// The exchange's time at `now`.
    fn exchange_at(&self, now: Instant) -> u64 {
        if now >= self.at {
            let d = u64::try_from(now.duration_since(self.at).as_nanos()).unwrap_or(u64::MAX);
            self.exchange.0.saturating_add(d)
        } else {
            let d = u64::try_from(self.at.duration_since(now).as_nanos()).unwrap_or(u64::MAX);
            self.exchange.0.saturating_sub(d)
        }
    }

    /// The end of the exchange's `interval` window that contains `now`: the next multiple of
    /// `interval` since the Unix epoch (UTC) on the exchange's clock.
    fn window_end(&self, now: Instant, interval: Duration) -> Instant {
        let iv = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX).max(1);
        let into = self.exchange_at(now) % iv;
        now + Duration::from_nanos(iv - into)
    }
}

/// The pure budget: all windows plus the 429 pause and the 418 ban.
#[derive(Debug, Clone)]
pub struct Budget {
    share_pct: u8,
    /// Maps instants to the exchange's clock, on which the windows are aligned.
    anchor: Anchor,
    weight: Vec<Window>,
    orders: Vec<Window>,
    /// No request before this instant (429 `Retry-After` or 418 ban end).
    pause_until: Option<Instant>,
    /// Whether the pause is a ban (fail requests) rather than a back-off (delay them).
    banned: bool,
}

impl Budget {
    /// A budget of `share_pct` percent (1–100) of `limits`. `exchange_now` is the exchange's
    /// time at `now` (local UTC plus the measured offset): the windows are aligned to it.
    pub fn new(
        limits: &ExchangeLimits,
        share_pct: u8,
        now: Instant,
        exchange_now: UnixNanos,
    ) -> Self {
        let anchor = Anchor { at: now, exchange: exchange_now };
        let mk =
            |ls: &[Limit]| ls.iter().map(|l| Window::new(*l, share_pct, anchor, now)).collect();
        Self {
            share_pct,
            anchor,
            weight: mk(&limits.request_weight),
            orders: mk(&limits.orders),
            pause_until: None,
            banned: false,
        }
    }

    /// Replaces the limits (from `exchangeInfo`), keeping current counts where the interval is
    /// unchanged.
    pub fn set_limits(&mut self, limits: &ExchangeLimits, now: Instant) {
        let anchor = self.anchor;
        let remake = |old: &[Window], ls: &[Limit], pct: u8| -> Vec<Window> {
            ls.iter()
                .map(|l| {
                    let mut w = Window::new(*l, pct, anchor, now);
                    if let Some(o) = old.iter().find(|o| o.interval == l.interval) {
                        w.end = o.end;
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

    /// Re-anchors the windows: `exchange_now` is the exchange's time at `now` (call it after
    /// the clock offset was re-measured). Counts of windows still open are kept; their end
    /// moves to the new boundary.
    pub fn set_anchor(&mut self, now: Instant, exchange_now: UnixNanos) {
        let old = self.anchor;
        let new = Anchor { at: now, exchange: exchange_now };
        for w in self.weight.iter_mut().chain(self.orders.iter_mut()) {
            w.roll(now, old);
            w.end = new.window_end(now, w.interval);
        }
        self.anchor = new;
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
        let anchor = self.anchor;
        for w in self.weight.iter_mut().chain(self.orders.iter_mut()) {
            w.roll(now, anchor);
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
        observe(&mut self.weight, self.anchor, now, interval, used);
    }

    /// The exchange reported `count` orders for the window of length `interval`
    /// (`X-MBX-ORDER-COUNT-10S: 3`).
    pub fn observe_orders(&mut self, now: Instant, interval: Duration, count: u32) {
        observe(&mut self.orders, self.anchor, now, interval, count);
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
        self.weight.first().map_or(
            0,
            |w| {
                if now >= w.end {
                    0
                } else {
                    w.reported.max(w.local_used)
                }
            },
        )
    }

    /// The end of the current 429 pause or 418 ban, and whether it is a ban.
    pub fn paused_until(&self, now: Instant) -> Option<(Instant, bool)> {
        self.pause_until.filter(|u| *u > now).map(|u| (u, self.banned))
    }
}

fn observe(windows: &mut [Window], anchor: Anchor, now: Instant, interval: Duration, used: u32) {
    for w in windows.iter_mut().filter(|w| w.interval == interval) {
        w.roll(now, anchor);
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

struct Shared {
    budget: Mutex<Anchored>,
    /// Held while waiting for budget, so waiters are admitted in FIFO order and a large
    /// request is not starved by a stream of small ones.
    turn: tokio::sync::Mutex<()>,
    /// Local wall clock, read only to anchor the windows to the exchange's clock.
    clock: Arc<dyn Clock>,
    /// The measured exchange-clock offset (shared with the REST client that measures it).
    offset: TimeOffset,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("budget", &self.budget)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

/// The budget and the clock offset its windows were last anchored with.
#[derive(Debug)]
struct Anchored {
    budget: Budget,
    /// Offset (ns) used for the current anchor; a different measured value re-anchors.
    offset_ns: i64,
}

impl RateLimiter {
    /// A limiter using `share_pct` percent (1–100) of `limits`, with windows aligned to the
    /// system clock's UTC boundaries (no offset correction). Prefer [`RateLimiter::with_clock`]
    /// with the client's clock and measured [`TimeOffset`].
    pub fn new(limits: &ExchangeLimits, share_pct: u8) -> Self {
        Self::with_clock(limits, share_pct, Arc::new(SystemClock), TimeOffset::new())
    }

    /// A limiter using `share_pct` percent (1–100) of `limits`, with windows aligned to the
    /// exchange's clock: `clock` corrected by `offset`. When `offset` is re-measured the
    /// windows are re-anchored on the next use.
    pub fn with_clock(
        limits: &ExchangeLimits,
        share_pct: u8,
        clock: Arc<dyn Clock>,
        offset: TimeOffset,
    ) -> Self {
        let offset_ns = offset.get();
        let budget =
            Budget::new(limits, share_pct, Instant::now(), clock.now().offset_by(offset_ns));
        Self {
            inner: Arc::new(Shared {
                budget: Mutex::new(Anchored { budget, offset_ns }),
                turn: tokio::sync::Mutex::new(()),
                clock,
                offset,
            }),
        }
    }

    /// The budget, re-anchored first if the clock offset was re-measured since.
    fn budget(&self) -> std::sync::MutexGuard<'_, Anchored> {
        // A poisoned lock only means another thread panicked mid-update of plain counters; the
        // counts are still usable.
        let mut g = self.inner.budget.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let offset_ns = self.inner.offset.get();
        if offset_ns != g.offset_ns {
            let exchange_now = self.inner.clock.now().offset_by(offset_ns);
            g.budget.set_anchor(Instant::now(), exchange_now);
            g.offset_ns = offset_ns;
        }
        g
    }

    /// Replaces the limits with the exchange's (from `exchangeInfo.rateLimits`).
    pub fn set_limits(&self, limits: &ExchangeLimits) {
        self.budget().budget.set_limits(limits, Instant::now());
    }

    /// Waits until `cost` fits the budget and counts it. Fails at once during a 418 ban.
    pub async fn acquire(&self, cost: Cost) -> Result<(), BinanceError> {
        let _turn = self.inner.turn.lock().await;
        loop {
            let now = Instant::now();
            let admit = self.budget().budget.try_acquire(now, cost);
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
                    b.budget.observe_weight(now, iv, v);
                }
            } else if let Some(sfx) = strip_prefix_ci(name, "x-mbx-order-count-") {
                if let Some(iv) = parse_interval_suffix(sfx) {
                    b.budget.observe_orders(now, iv, v);
                }
            }
        }
    }

    /// Records a usage report from the WebSocket API's `rateLimits` array.
    pub fn observe_report(&self, weight: bool, interval: Duration, count: u32) {
        let now = Instant::now();
        let mut b = self.budget();
        if weight {
            b.budget.observe_weight(now, interval, count);
        } else {
            b.budget.observe_orders(now, interval, count);
        }
    }

    /// Records a 429 (`banned = false`) or 418 (`banned = true`).
    pub fn on_rate_limited(&self, retry_after: Duration, banned: bool) {
        tracing::warn!(
            retry_after_ms = retry_after.as_millis() as u64,
            banned,
            "binance rate limit hit"
        );
        self.budget().budget.on_rate_limited(Instant::now(), retry_after, banned);
    }

    /// Weight used in the current one-minute window (for the metrics gauge).
    pub fn used_weight(&self) -> u32 {
        self.budget().budget.used_weight(Instant::now())
    }

    /// Remaining 429 pause or 418 ban, and whether it is a ban (for status and metrics).
    pub fn paused_for(&self) -> Option<(Duration, bool)> {
        let now = Instant::now();
        self.budget().budget.paused_until(now).map(|(u, b)| (u.saturating_duration_since(now), b))
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

    /// A whole UTC minute (2023-11-14 22:14:00), so windows anchored here start at `t0`.
    const MINUTE: UnixNanos = UnixNanos::from_millis(1_700_000_040_000);

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
        let mut b = Budget::new(&limits(100, 50), 50, t0, MINUTE);
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
        let mut b = Budget::new(&limits(100, 50), 50, t0, MINUTE);
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
        let mut b = Budget::new(&limits(1000, 50), 10, t0, MINUTE);
        // Our share is 100 but a 5000-level snapshot costs 250.
        assert_eq!(b.try_acquire(t0, Cost::weight(250)), Admit::Go);
        assert!(matches!(b.try_acquire(t0, Cost::weight(250)), Admit::WaitUntil(_)));
    }

    #[test]
    fn orders_window_is_separate() {
        let t0 = Instant::now();
        let mut b = Budget::new(&limits(6000, 2), 100, t0, MINUTE);
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
        let mut b = Budget::new(&limits(6000, 50), 100, t0, MINUTE);
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

    /// TC0: created 45 s into a UTC minute with the weight exhausted, the budget admits again at
    /// the next whole minute (15 s later), not 60 s after creation; the same holds with a
    /// measured offset (our clock 20 s ahead of the exchange). TC1: the 10 s order window ends
    /// at the next multiple of 10 s. TC2: a daily order window ends at 00:00 UTC.
    #[test]
    fn windows_end_at_the_exchanges_interval_boundaries() {
        let s = Duration::from_secs;
        let day = ExchangeLimits {
            request_weight: vec![Limit { interval: s(60), limit: 6000 }],
            orders: vec![Limit { interval: s(86_400), limit: 1 }],
        };
        // (limits, exchange time at creation, cost that fills the window, wait for the next)
        let cases = [
            (limits(100, 50), MINUTE.saturating_add(s(45)), Cost::weight(100), s(15)),
            (limits(100, 50), MINUTE.saturating_add(s(1)), Cost::weight(100), s(59)),
            (limits(6000, 2), MINUTE.saturating_add(s(33)), Cost::order(1), s(7)),
            (
                limits(6000, 2),
                MINUTE.saturating_add(Duration::from_millis(59_999)),
                Cost::order(1),
                Duration::from_millis(1),
            ),
            // 2023-11-14 22:14:00 UTC is 1h46m before midnight.
            (day, MINUTE, Cost::order(1), s(6_360)),
        ];
        for (i, (l, exch, fill, wait)) in cases.into_iter().enumerate() {
            let t0 = Instant::now();
            let mut b = Budget::new(&l, 100, t0, exch);
            while b.try_acquire(t0, fill) == Admit::Go {}
            assert_eq!(b.try_acquire(t0, fill), Admit::WaitUntil(t0 + wait), "TC{i}");
            let edge = t0 + wait - Duration::from_nanos(1);
            assert!(matches!(b.try_acquire(edge, fill), Admit::WaitUntil(_)), "TC{i}: early");
            assert_eq!(b.try_acquire(t0 + wait, fill), Admit::Go, "TC{i}: at the boundary");
        }
    }

    /// The anchor is the exchange's time, not ours: with the exchange 20 s behind our clock,
    /// the window ends on the exchange's minute, and re-anchoring (offset re-measured) moves
    /// the end while keeping the counts of the open window.
    #[test]
    fn re_anchoring_moves_the_boundary_and_keeps_counts() {
        let s = Duration::from_secs;
        let t0 = Instant::now();
        // Exchange at :45 → window ends 15 s later.
        let mut b = Budget::new(&limits(100, 50), 100, t0, MINUTE.saturating_add(s(45)));
        assert_eq!(b.try_acquire(t0, Cost::weight(100)), Admit::Go);
        assert_eq!(b.try_acquire(t0, Cost::weight(1)), Admit::WaitUntil(t0 + s(15)));
        // Re-measured 5 s later: the exchange is really at :40 at t0 + 5 s → 20 s to go.
        let t1 = t0 + s(5);
        b.set_anchor(t1, MINUTE.saturating_add(s(40)));
        assert_eq!(b.used_weight(t1), 100);
        assert_eq!(b.try_acquire(t1, Cost::weight(1)), Admit::WaitUntil(t1 + s(20)));
        assert_eq!(b.try_acquire(t1 + s(20), Cost::weight(1)), Admit::Go);
    }

    /// Exchange-reported usage observed just before a boundary belongs to the closing window:
    /// it does not block the next one. TC0: weight (1 minute), TC1: orders (10 s).
    #[test]
    fn reported_usage_does_not_carry_past_the_boundary() {
        let s = Duration::from_secs;
        for (i, weight) in [true, false].into_iter().enumerate() {
            let t0 = Instant::now();
            // 45 s into the minute, 5 s into a 10 s window.
            let mut b = Budget::new(&limits(100, 10), 100, t0, MINUTE.saturating_add(s(45)));
            let (interval, full, cost, to_boundary) = if weight {
                (s(60), 100, Cost::weight(1), s(15))
            } else {
                (s(10), 10, Cost::order(1), s(5))
            };
            let before = t0 + to_boundary - Duration::from_millis(1);
            if weight {
                b.observe_weight(before, interval, full);
            } else {
                b.observe_orders(before, interval, full);
            }
            assert_eq!(b.try_acquire(before, cost), Admit::WaitUntil(t0 + to_boundary), "TC{i}");
            assert_eq!(b.try_acquire(t0 + to_boundary, cost), Admit::Go, "TC{i}");
        }
    }

    /// The async limiter takes the exchange's time from its clock plus the shared offset, and
    /// re-anchors when the offset is re-measured.
    #[tokio::test(start_paused = true)]
    async fn limiter_aligns_to_clock_plus_offset() {
        let s = Duration::from_secs;
        let clock = Arc::new(kestrel_model::ManualClock::new(MINUTE.saturating_add(s(45))));
        let offset = TimeOffset::new();
        let rl = RateLimiter::with_clock(&limits(100, 50), 100, clock, offset.clone());
        let start = Instant::now();
        // TC0: no offset: the window ends at our :00, 15 s away.
        rl.acquire(Cost::weight(100)).await.unwrap();
        rl.acquire(Cost::weight(100)).await.unwrap();
        assert_eq!(start.elapsed(), s(15), "TC0");
        // TC1: the exchange is measured 10 s ahead (our clock still reads :45, not advanced):
        // re-anchored, it is at :55 → the full window ends 5 s later.
        offset.set(10_000_000_000);
        let t1 = Instant::now();
        rl.acquire(Cost::weight(1)).await.unwrap();
        assert_eq!(t1.elapsed(), s(5), "TC1");
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_spreads_requests_over_windows() {
        let clock = Arc::new(kestrel_model::ManualClock::new(MINUTE));
        let rl = RateLimiter::with_clock(&limits(100, 50), 100, clock, TimeOffset::new());
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
