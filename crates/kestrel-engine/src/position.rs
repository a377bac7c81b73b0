//! Positions and PnL from fills, fees included, by average cost in exact fixed point.
//!
//! A fill is booked as a change of base (`d_base`) against a flow of quote (`d_quote`), each
//! including the commission when it is charged in that asset:
//!
//! | side | base change            | quote change                  |
//! |------|------------------------|-------------------------------|
//! | buy  | `+qty − fee_if_base`   | `−qty·price − fee_if_quote`   |
//! | sell | `−qty − fee_if_base`   | `+qty·price − fee_if_quote`   |
//!
//! `cost` is the quote paid for the current position (negative for a short, i.e. quote
//! received). A change in the position's direction adds to `cost`; a change against it
//! releases cost pro rata and books `quote received − cost released` as realised PnL (the
//! rest of a flip opens a new position). Unrealised PnL is `position × mark − cost`. So
//! `realised + unrealised` equals the exact net quote flow plus the position at mark, fees
//! included. Commission in a third asset (e.g. BNB) can't be valued without a price, so it is
//! tracked per asset in [`Position::other_fees`] and not in PnL.

use kestrel_model::{Asset, Notional, Price, Qty, Side};

/// Position and PnL of one symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Net base quantity (negative = short), fees in base already deducted.
    qty: Qty,
    /// Quote paid for `qty` (negative when short: quote received), fees in quote included.
    cost: Notional,
    /// PnL locked in by reducing trades, net of fees.
    realised: Notional,
    /// Commission paid in assets other than base and quote, per asset; few entries.
    other_fees: Vec<(Asset, Notional)>,
}

impl Position {
    /// Flat, no PnL.
    pub fn flat() -> Self {
        Self { qty: Qty::ZERO, cost: Notional::ZERO, realised: Notional::ZERO, other_fees: vec![] }
    }

    /// A position loaded at start-up (reconciliation): `qty` bought at `avg_price`.
    pub fn opened_at(qty: Qty, avg_price: Price) -> Self {
        Self { qty, cost: Notional::of(avg_price, qty), ..Self::flat() }
    }

    /// Net base quantity.
    pub fn qty(&self) -> Qty {
        self.qty
    }

    /// Quote paid for the current position (signed).
    pub fn cost(&self) -> Notional {
        self.cost
    }

    /// Realised PnL, fees included.
    pub fn realised(&self) -> Notional {
        self.realised
    }

    /// Unrealised PnL at `mark`.
    pub fn unrealised(&self, mark: Price) -> Notional {
        Notional::of(mark, self.qty).saturating_sub(self.cost)
    }

    /// Average entry price, floored at 1e-8 (display only); `None` when flat.
    pub fn avg_price(&self) -> Option<Price> {
        if self.qty.is_zero() {
            return None;
        }
        let m = self.cost.mantissa().checked_div(i128::from(self.qty.mantissa()))?;
        i64::try_from(m).ok().map(Price::from_mantissa)
    }

    /// Commission paid in third assets.
    pub fn other_fees(&self) -> &[(Asset, Notional)] {
        &self.other_fees
    }

    /// Books one fill of `qty` for the exact quote amount `notional` (price × qty, or a
    /// cumulative-quote difference) with `fee` charged in `fee_asset`. A zero `qty` books only
    /// the fee (a fill whose quantity was already booked from a later cumulative quantity).
    pub fn apply_fill(
        &mut self,
        side: Side,
        qty: Qty,
        notional: Notional,
        fee: Notional,
        fee_asset: FeeAsset,
    ) {
        let (mut d_base, mut d_quote) = match side {
            Side::Buy => (qty.to_notional(), notional.neg()),
            Side::Sell => (qty.to_notional().neg(), notional),
        };
        match fee_asset {
            FeeAsset::Base => d_base = d_base.saturating_sub(fee),
            FeeAsset::Quote => d_quote = d_quote.saturating_sub(fee),
            FeeAsset::Other(a) => match self.other_fees.iter_mut().find(|(x, _)| *x == a) {
                Some((_, total)) => *total = total.saturating_add(fee),
                None => self.other_fees.push((a, fee)),
            },
            FeeAsset::None => {}
        }
        // Base deltas are whole 1e-8 units unless a base fee had more precision than Binance
        // sends; floor keeps the position at 1e-8.
        let d_base = d_base.floor_to_qty().unwrap_or(Qty::ZERO);
        self.apply(d_base, d_quote);
    }

    /// Books a base change against a quote flow (see the module docs).
    fn apply(&mut self, d_base: Qty, d_quote: Notional) {
        let pos = i128::from(self.qty.mantissa());
        let db = i128::from(d_base.mantissa());
        if db == 0 {
            // A pure quote flow (a quote fee after the fill was booked): realised cost.
            self.realised = self.realised.saturating_add(d_quote);
            return;
        }
        if pos == 0 || pos.signum() == db.signum() {
            self.cost = self.cost.saturating_sub(d_quote);
            self.qty = self.qty.saturating_add(d_base);
            return;
        }
        // Reducing (and possibly flipping).
        let closing = db.abs().min(pos.abs());
        let released = mul_div(self.cost.mantissa(), closing, pos.abs());
        let flow_closing = mul_div(d_quote.mantissa(), closing, db.abs());
        self.realised =
            self.realised.saturating_add(Notional::from_mantissa(flow_closing - released));
        self.cost = Notional::from_mantissa(self.cost.mantissa() - released);
        self.qty = self.qty.saturating_add(d_base);
        let opening = db.abs() - closing;
        if opening > 0 {
            // The rest of the fill opens a position the other way; its cost is the rest of
            // the flow.
            let flow_opening = d_quote.mantissa() - flow_closing;
            self.cost = Notional::from_mantissa(-flow_opening);
        } else if self.qty.is_zero() {
            // Fully closed: any rounding residue of the pro-rata release goes to realised.
            self.realised = self.realised.saturating_sub(self.cost);
            self.cost = Notional::ZERO;
        }
    }
}

/// Which asset a commission was charged in, relative to the symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeAsset {
    /// No commission.
    None,
    /// The symbol's base asset: the position changes by less (buy) or more (sell).
    Base,
    /// The symbol's quote asset: paid on top of (buy) or taken from (sell) the notional.
    Quote,
    /// Any other asset (BNB): tracked, not in PnL.
    Other(Asset),
}

/// `a × num / den` in i128, floored, saturating on overflow (den > 0).
fn mul_div(a: i128, num: i128, den: i128) -> i128 {
    if den == 0 {
        return 0;
    }
    match a.checked_mul(num) {
        Some(p) => p.div_euclid(den),
        // Only reachable for absurd balances (> 1e21 quote); keep the order of magnitude.
        None => (a / den).saturating_mul(num),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Price {
        s.parse().unwrap()
    }
    fn q(s: &str) -> Qty {
        s.parse().unwrap()
    }
    fn n(s: &str) -> Notional {
        s.parse().unwrap()
    }
    fn bnb() -> Asset {
        Asset::new("BNB").unwrap()
    }

    struct Case {
        name: &'static str,
        fills: &'static [(Side, &'static str, &'static str, &'static str, char)],
        mark: &'static str,
        qty: &'static str,
        realised: &'static str,
        unrealised: &'static str,
    }

    #[test]
    fn pnl_with_fees_is_exact() {
        use Side::*;
        // fee asset: 'n' none, 'b' base, 'q' quote, 'o' other (BNB)
        let cases = [
            // TC0: round trip, no fees
            Case {
                name: "round trip",
                fills: &[(Buy, "1", "100", "0", 'n'), (Sell, "1", "110", "0", 'n')],
                mark: "110",
                qty: "0",
                realised: "10",
                unrealised: "0",
            },
            // TC1: quote fees on both legs: 10 − 0.1 − 0.11
            Case {
                name: "quote fees",
                fills: &[(Buy, "1", "100", "0.1", 'q'), (Sell, "1", "110", "0.11", 'q')],
                mark: "110",
                qty: "0",
                realised: "9.79",
                unrealised: "0",
            },
            // TC2: base fee on the buy: hold 0.999 at cost 100; mark 110 ⇒ 109.89 − 100
            Case {
                name: "base fee on buy",
                fills: &[(Buy, "1", "100", "0.001", 'b')],
                mark: "110",
                qty: "0.999",
                realised: "0",
                unrealised: "9.89",
            },
            // TC3: partial close: buy 2 @100, sell 0.5 @120 ⇒ realised 10, 1.5 left @100
            Case {
                name: "partial close",
                fills: &[(Buy, "2", "100", "0", 'n'), (Sell, "0.5", "120", "0", 'n')],
                mark: "90",
                qty: "1.5",
                realised: "10",
                unrealised: "-15",
            },
            // TC4: flip long → short: buy 1 @100, sell 3 @ 90 ⇒ realised −10, short 2 @90
            Case {
                name: "flip",
                fills: &[(Buy, "1", "100", "0", 'n'), (Sell, "3", "90", "0", 'n')],
                mark: "80",
                qty: "-2",
                realised: "-10",
                unrealised: "20",
            },
            // TC5: averaging up: buy 1 @100 and 1 @200 ⇒ avg 150
            Case {
                name: "average",
                fills: &[(Buy, "1", "100", "0", 'n'), (Buy, "1", "200", "0", 'n')],
                mark: "150",
                qty: "2",
                realised: "0",
                unrealised: "0",
            },
            // TC6: BNB fee is tracked, not in PnL
            Case {
                name: "bnb fee",
                fills: &[(Buy, "1", "100", "0.01", 'o'), (Sell, "1", "101", "0.01", 'o')],
                mark: "101",
                qty: "0",
                realised: "1",
                unrealised: "0",
            },
            // TC7: base fee on a sell: give 1.001 base for 110 quote
            Case {
                name: "base fee on sell",
                fills: &[(Buy, "2", "100", "0", 'n'), (Sell, "1", "110", "0.001", 'b')],
                mark: "100",
                qty: "0.999",
                realised: "9.9",
                unrealised: "0",
            },
        ];
        for (i, c) in cases.iter().enumerate() {
            let mut pos = Position::flat();
            for &(side, qty, px, fee, asset) in c.fills {
                let fa = match asset {
                    'b' => FeeAsset::Base,
                    'q' => FeeAsset::Quote,
                    'o' => FeeAsset::Other(bnb()),
                    _ => FeeAsset::None,
                };
                pos.apply_fill(side, q(qty), Notional::of(p(px), q(qty)), n(fee), fa);
            }
            assert_eq!(pos.qty(), q(c.qty), "TC{i} {}: qty", c.name);
            assert_eq!(pos.realised(), n(c.realised), "TC{i} {}: realised", c.name);
            assert_eq!(pos.unrealised(p(c.mark)), n(c.unrealised), "TC{i} {}: unrealised", c.name);
        }
    }

    #[test]
    fn avg_price_and_other_fees() {
        let mut pos = Position::flat();
        assert_eq!(pos.avg_price(), None);
        pos.apply_fill(Side::Buy, q("1"), n("100"), n("0.01"), FeeAsset::Other(bnb()));
        pos.apply_fill(Side::Buy, q("1"), n("200"), n("0.02"), FeeAsset::Other(bnb()));
        // A fee-only booking (quantity already booked) changes realised PnL only.
        pos.apply_fill(Side::Buy, Qty::ZERO, Notional::ZERO, n("0.5"), FeeAsset::Quote);
        assert_eq!(pos.realised(), n("-0.5"));
        assert_eq!(pos.avg_price(), Some(p("150")));
        assert_eq!(pos.other_fees(), &[(bnb(), n("0.03"))]);
        let loaded = Position::opened_at(q("0.5"), p("42000"));
        assert_eq!(loaded.unrealised(p("42100")), n("50"));
    }
}
