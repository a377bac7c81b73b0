//! Inventory-skewed market maker: one bid and one ask around mid, shifted against inventory.
//!
//! Quotes: `bid = mid − (h + s)`, `ask = mid + (h − s)` where `h = half_spread_bps · mid` and
//! `s = skew_bps_at_max · mid · position / max_position` (long ⇒ both quotes lower, so the ask
//! fills more easily and the bid less). Prices are rounded away from mid to the tick and kept
//! inside the book (bid below best ask, ask above best bid) so post-only quotes are accepted.
//!
//! Lifecycle:
//! - **Stale book** (state not `Synced`, one-sided or crossed, or no update for `stale_after`):
//!   cancel every live quote and forget the quoted mid.
//! - **Mid moved** more than `requote_threshold_bps` from the mid the quotes were computed at
//!   (or no quotes yet): cancel the live quotes and place both sides at the new prices.
//! - Otherwise re-place a **missing side** (filled, or refused by risk) at most once per
//!   `min_requote_interval`.
//! - Nothing while any quote is unacknowledged (`PendingNew`/`Unknown`): quotes never stack.
//! - A side is not quoted if its fill would take the position beyond `±max_position`.
//!
//! The position is relative to what the binary loaded at start-up. On spot a position below
//! the base inventory actually held can't be sold into: the exchange refuses the ask
//! (`-2010`, counted as an exchange rejection), so seed the position from the base balance.

use kestrel_model::{OrderStatus, OrderType, Price, Side, TimeInForce, UnixNanos};

use super::{bps_of, Intent, MarketView, OrderIntent, Strategy};
use crate::config::MakerParams;

/// The market maker for one symbol.
#[derive(Debug, Clone)]
pub struct MarketMaker {
    /// Parameters from the config.
    params: MakerParams,
    /// Mid the current quotes were computed at; `None` = not quoting.
    quoted_mid: Option<Price>,
    /// Event time of the last placement per side (`[buy, sell]`), for the re-place throttle.
    last_place: [UnixNanos; 2],
}

fn side_idx(side: Side) -> usize {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

impl MarketMaker {
    /// A market maker with the given parameters.
    pub fn new(params: MakerParams) -> Self {
        Self { params, quoted_mid: None, last_place: [UnixNanos::ZERO; 2] }
    }

    /// The bid and ask it would quote now, rounded to the tick; `None` on an untradeable book.
    pub fn quotes(&self, view: &MarketView<'_>) -> Option<(Price, Price)> {
        let book = view.book;
        if !book.is_tradeable() {
            return None;
        }
        let mid = book.mid()?;
        let (best_bid, best_ask) = (book.best_bid()?.price, book.best_ask()?.price);
        let max = view.max_position.mantissa().max(1);
        let at_max = i64::from(self.params.skew_bps_at_max);
        // position × at_max fits i64 unless the position exceeds ~9e10 units; saturate then.
        let skew = view
            .position
            .mantissa()
            .checked_mul(at_max)
            .map_or(at_max * view.position.mantissa().signum(), |m| m / max)
            .clamp(-at_max, at_max);
        let half = i64::from(self.params.half_spread_bps);
        let tick = match view.spec.tick_size() {
            t if t.is_positive() => t,
            _ => Price::EPSILON,
        };
        let bid = mid.saturating_sub(bps_of(mid, half + skew)).min(best_ask.saturating_sub(tick));
        let ask = mid.saturating_add(bps_of(mid, half - skew)).max(best_bid.saturating_add(tick));
        let bid = view.spec.round_price(Side::Buy, bid)?;
        let ask = view.spec.round_price(Side::Sell, ask)?;
        (bid.is_positive() && ask > bid).then_some((bid, ask))
    }

    fn cancel_live(view: &MarketView<'_>, out: &mut Vec<Intent>) {
        for o in view.open_orders {
            if matches!(o.status, OrderStatus::New | OrderStatus::PartiallyFilled) {
                out.push(Intent::Cancel(o.client_id));
            }
        }
    }

    fn may_quote(&self, view: &MarketView<'_>, side: Side) -> bool {
        let q = self.params.quote_qty;
        let after = match side {
            Side::Buy => view.position.saturating_add(q),
            Side::Sell => view.position.saturating_sub(q),
        };
        after.abs() <= view.max_position
    }

    fn place(&mut self, view: &MarketView<'_>, side: Side, price: Price, out: &mut Vec<Intent>) {
        if !self.may_quote(view, side) {
            return;
        }
        let (kind, tif) = if self.params.post_only {
            (OrderType::LimitMaker, None)
        } else {
            (OrderType::Limit, Some(TimeInForce::Gtc))
        };
        out.push(Intent::Place(OrderIntent {
            side,
            kind,
            time_in_force: tif,
            price: Some(price),
            qty: self.params.quote_qty,
        }));
        self.last_place[side_idx(side)] = view.now;
    }

    fn stale(&self, view: &MarketView<'_>) -> bool {
        !view.book.is_tradeable()
            || view.now.saturating_since(view.book_updated) > self.params.stale_after
    }
}

impl Strategy for MarketMaker {
    fn name(&self) -> &'static str {
        "market_maker"
    }

    fn on_book(&mut self, view: &MarketView<'_>, out: &mut Vec<Intent>) {
        if self.stale(view) {
            Self::cancel_live(view, out);
            self.quoted_mid = None;
            return;
        }
        let in_flight = view
            .open_orders
            .iter()
            .any(|o| matches!(o.status, OrderStatus::PendingNew | OrderStatus::Unknown));
        if in_flight {
            return;
        }
        let (Some(mid), Some((bid, ask))) = (view.book.mid(), self.quotes(view)) else { return };
        let moved = match self.quoted_mid {
            None => true,
            Some(q) => {
                let diff = i128::from((mid.mantissa() - q.mantissa()).abs());
                diff * 10_000
                    > i128::from(self.params.requote_threshold_bps) * i128::from(q.mantissa())
            }
        };
        if moved {
            Self::cancel_live(view, out);
            self.place(view, Side::Buy, bid, out);
            self.place(view, Side::Sell, ask, out);
            self.quoted_mid = Some(mid);
            return;
        }
        for (side, price) in [(Side::Buy, bid), (Side::Sell, ask)] {
            let has = view.open_orders.iter().any(|o| o.side == side && o.is_live_quote());
            let waited = view.now.saturating_since(self.last_place[side_idx(side)])
                >= self.params.min_requote_interval;
            if !has && waited {
                self.place(view, side, price, out);
            }
        }
    }

    fn on_timer(&mut self, view: &MarketView<'_>, out: &mut Vec<Intent>) {
        if self.stale(view) {
            Self::cancel_live(view, out);
            self.quoted_mid = None;
        }
    }
}
