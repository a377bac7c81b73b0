//! Order-book-imbalance taker: trades in the direction the visible book leans.
//!
//! Signal (exact integer math on the `BookTop`):
//! - imbalance `I = (B − A) / (B + A)` where `B`, `A` are the bid and ask quantities summed over
//!   the top `depth_levels` levels;
//! - microprice `μ = (bid·ask_qty + ask·bid_qty) / (bid_qty + ask_qty)` of the best level.
//!
//! Buy when `I ≥ threshold` **and** `μ − mid ≥ micro_edge_bps · mid`; sell on the mirror
//! condition. After a signal nothing happens for `cooldown` of event time, and never while one
//! of its orders is still unacknowledged (`PendingNew`/`Unknown`), so orders don't stack.
//! Orders are IOC limits at the opposite best moved by `slippage_bps`, or market orders.

use kestrel_model::{OrderStatus, OrderType, Side, TimeInForce, UnixNanos};

use super::{bps_of, Intent, MarketView, OrderIntent, Strategy};
use crate::config::{TakerOrderStyle, TakerParams};

/// The imbalance taker for one symbol.
#[derive(Debug, Clone)]
pub struct ImbalanceTaker {
    /// Parameters from the config.
    params: TakerParams,
    /// Event time before which no new signal is taken.
    cooldown_until: UnixNanos,
}

impl ImbalanceTaker {
    /// A taker with the given parameters.
    pub fn new(params: TakerParams) -> Self {
        Self { params, cooldown_until: UnixNanos::ZERO }
    }

    /// The direction the book says to trade, if any.
    pub fn signal(&self, view: &MarketView<'_>) -> Option<Side> {
        let book = view.book;
        if !book.is_tradeable() {
            return None;
        }
        let n = self.params.depth_levels;
        let sum = |levels: &[kestrel_model::Level]| -> i128 {
            levels.iter().take(n).map(|l| i128::from(l.qty.mantissa())).sum()
        };
        let b = sum(book.bids());
        let a = sum(book.asks());
        if b + a == 0 {
            return None;
        }
        let thr = i128::from(self.params.imbalance_threshold_bps);
        let side = if (b - a) * 10_000 >= thr * (b + a) {
            Side::Buy
        } else if (a - b) * 10_000 >= thr * (b + a) {
            Side::Sell
        } else {
            return None;
        };
        let (bid, ask) = (book.best_bid()?, book.best_ask()?);
        let (pb, qb) = (i128::from(bid.price.mantissa()), i128::from(bid.qty.mantissa()));
        let (pa, qa) = (i128::from(ask.price.mantissa()), i128::from(ask.qty.mantissa()));
        let mid = i128::from(book.mid()?.mantissa());
        let q = qa + qb;
        if q == 0 {
            return None;
        }
        // (μ − mid)·q·10⁴ compared with edge·mid·q, all exact.
        let lean = (pb * qa + pa * qb - mid * q) * 10_000;
        let edge = i128::from(self.params.micro_edge_bps) * mid * q;
        let ok = match side {
            Side::Buy => lean >= edge,
            Side::Sell => -lean >= edge,
        };
        ok.then_some(side)
    }
}

impl Strategy for ImbalanceTaker {
    fn name(&self) -> &'static str {
        "imbalance_taker"
    }

    fn on_book(&mut self, view: &MarketView<'_>, out: &mut Vec<Intent>) {
        if view.now < self.cooldown_until {
            return;
        }
        let in_flight = view
            .open_orders
            .iter()
            .any(|o| matches!(o.status, OrderStatus::PendingNew | OrderStatus::Unknown));
        if in_flight {
            return;
        }
        let Some(side) = self.signal(view) else { return };
        let intent = match self.params.style {
            TakerOrderStyle::Market => OrderIntent {
                side,
                kind: OrderType::Market,
                time_in_force: None,
                price: None,
                qty: self.params.order_qty,
            },
            TakerOrderStyle::IocLimit { slippage_bps } => {
                let (bid, ask) = match (view.book.best_bid(), view.book.best_ask()) {
                    (Some(b), Some(a)) => (b.price, a.price),
                    _ => return,
                };
                let slip = i64::from(slippage_bps);
                let price = match side {
                    Side::Buy => ask.saturating_add(bps_of(ask, slip)),
                    Side::Sell => bid.saturating_sub(bps_of(bid, slip)),
                };
                OrderIntent {
                    side,
                    kind: OrderType::Limit,
                    time_in_force: Some(TimeInForce::Ioc),
                    price: Some(price),
                    qty: self.params.order_qty,
                }
            }
        };
        out.push(Intent::Place(intent));
        self.cooldown_until = view.now.saturating_add(self.params.cooldown);
    }
}
