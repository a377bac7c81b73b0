//! Exact local order-book sync for one symbol: a pure state machine (no I/O, no clock).
//!
//! Implements Binance's "How to manage a local order book correctly" ([WS], SPEC.md §3):
//!
//! 1. Subscribe to `<symbol>@depth` (the connection task does this).
//! 2. Buffer the events; note the first event's `U`.
//! 3. Get a depth snapshot (the connection task does this when told
//!    [`DeltaOutcome::Resync`]/[`SnapshotOutcome::TooOld`] with `request_snapshot`).
//! 4. If the snapshot's `lastUpdateId` is strictly below the first buffered `U`, repeat step 3.
//! 5. Drop buffered events with `u <= lastUpdateId`.
//! 6. The book is the snapshot; its update id is `lastUpdateId`.
//! 7. Apply the rules below to the remaining buffer, then to every live event:
//!    - (a) `u` < book id: ignore the event;
//!    - (b) `U` > book id + 1: events were missed: the book is [`BookState::Stale`], restart
//!      from step 1 (here: clear the buffer and request a new snapshot);
//!    - (c) normally `U` = previous `u` + 1;
//!    - (d) set each level's absolute quantity (insert if new, `0` deletes);
//!    - (e) set the book id to `u`.
//!
//! Changes folded in: 2024-12-16 (step 4 added, snapshot limit 5000) and 2025-11-12 (rule (b)
//! is `U > id + 1`, it used to be `U > id`). Note: a first event with `U == lastUpdateId + 1`
//! passes (b) even though step 5's wording ("the first event should have `lastUpdateId` in
//! `[U;u]`") would reject it, so this machine gates on (a)/(b) only.
//!
//! A snapshot that arrives while nothing is buffered is accepted as is: a too-old snapshot is
//! then caught by (b) on the first live event, a too-new one by (a).
//!
//! Besides gaps, the caller restarts the machine ([`DepthSync::restart`]) on reconnect and on
//! output-channel overflow; the machine restarts itself when its buffer overflows (bounded by
//! `max_buffered`) or a level is invalid (negative quantity, non-positive price). Every restart
//! marks the book stale; it keeps its content for display but is never reported synced until a
//! new snapshot has been applied.
//!
//! REST fallback (M2): [`DepthSync::enter_fallback`] stops applying deltas and
//! [`DepthSync::apply_rest_poll`] replaces the book with each polled snapshot, marked
//! [`BookSource::RestFallback`]; leaving fallback is a [`DepthSync::restart`].

use kestrel_model::{BookError, BookSide, BookSource, Level, OrderBook, Symbol};

/// One diff-depth event as the sync machine needs it; levels borrowed from the decoder.
#[derive(Debug, Clone, Copy)]
pub struct DepthDelta<'a> {
    /// `U`: first update id in the event.
    pub first_update_id: u64,
    /// `u`: final update id in the event.
    pub final_update_id: u64,
    /// `b`: bid levels (absolute quantities).
    pub bids: &'a [Level],
    /// `a`: ask levels (absolute quantities).
    pub asks: &'a [Level],
}

/// Why a book became stale and must be resynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StaleReason {
    /// Rule (b): an event's `U` was beyond book id + 1.
    Gap {
        /// The book id when the gapped event arrived.
        book_id: u64,
        /// The gapped event's `U`.
        first_update_id: u64,
    },
    /// The WebSocket connection was (re)established.
    Reconnect,
    /// The output channel was full and a delta had to be dropped.
    ChannelOverflow,
    /// More events were buffered while waiting for a snapshot than the bound allows.
    BufferOverflow,
    /// A level could not be applied (negative quantity or non-positive price).
    InvalidLevel,
    /// Leaving REST fallback: back to WebSocket deltas on a fresh snapshot.
    FallbackExit,
    /// Operator or owner asked for it (e.g. `restart-ws`).
    Manual,
}

impl StaleReason {
    /// A stable lower-case label for metrics and logs.
    pub const fn as_str(&self) -> &'static str {
        match self {
            StaleReason::Gap { .. } => "gap",
            StaleReason::Reconnect => "reconnect",
            StaleReason::ChannelOverflow => "channel_overflow",
            StaleReason::BufferOverflow => "buffer_overflow",
            StaleReason::InvalidLevel => "invalid_level",
            StaleReason::FallbackExit => "fallback_exit",
            StaleReason::Manual => "manual",
        }
    }
}

/// What a delta did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaOutcome {
    /// Waiting for a snapshot: the event was buffered (step 2).
    Buffered,
    /// Rule (a), a duplicate while buffering, or fallback mode: nothing changed.
    Ignored,
    /// Rules (d)/(e): the book changed and is synced; publish it.
    Applied,
    /// The book became stale. If `request_snapshot`, the caller must fetch a snapshot (no
    /// request is in flight yet).
    Resync {
        /// Why.
        reason: StaleReason,
        /// Whether the caller must start a snapshot request now.
        request_snapshot: bool,
    },
}

/// What a snapshot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotOutcome {
    /// Steps 5–7 done: the book is synced; publish it.
    Synced {
        /// Buffered events applied on top of the snapshot.
        applied: usize,
        /// Buffered events dropped by step 5 or rule (a).
        dropped: usize,
    },
    /// Step 4: `lastUpdateId` < first buffered `U`; request another snapshot.
    TooOld,
    /// Applying the buffer hit a gap or bad level: stale again; request another snapshot.
    Resync(StaleReason),
    /// The machine was not waiting for a snapshot (synced or in fallback): ignored.
    Unexpected,
}

/// Where the machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Steps 1–3: buffering deltas until a snapshot arrives.
    AwaitingSnapshot,
    /// Step 7: applying live deltas.
    Live,
    /// REST fallback: deltas ignored, polled snapshots replace the book.
    Fallback,
}

/// Header of one buffered event; its levels are ranges in the shared level buffers.
#[derive(Debug, Clone, Copy)]
struct Buffered {
    first: u64,
    last: u64,
    bids_end: usize,
    asks_end: usize,
}

/// The depth-sync state machine for one symbol; owns that symbol's [`OrderBook`].
#[derive(Debug, Clone)]
pub struct DepthSync {
    book: OrderBook,
    phase: Phase,
    /// A snapshot request is in flight; prevents a burst of duplicate requests when several
    /// restarts happen before it lands.
    snapshot_pending: bool,
    /// Buffered event headers (steps 2–5), in arrival order.
    buffered: Vec<Buffered>,
    /// All buffered bid levels back to back; headers index into it. Reused, never shrunk.
    buf_bids: Vec<Level>,
    /// All buffered ask levels back to back.
    buf_asks: Vec<Level>,
    /// Bound on `buffered.len()`: a snapshot that never comes must not grow memory forever.
    max_buffered: usize,
}

impl DepthSync {
    /// A stale, empty book awaiting its first snapshot. The first call that reports
    /// `request_snapshot` is [`DepthSync::restart`] (or [`DepthSync::request_initial`]).
    pub fn new(symbol: Symbol, max_buffered: usize) -> Self {
        Self {
            book: OrderBook::new(symbol),
            phase: Phase::AwaitingSnapshot,
            snapshot_pending: false,
            buffered: Vec::new(),
            buf_bids: Vec::new(),
            buf_asks: Vec::new(),
            max_buffered: max_buffered.max(1),
        }
    }

    /// The book (stale or synced; check [`OrderBook::state`]).
    #[inline]
    pub fn book(&self) -> &OrderBook {
        &self.book
    }

    /// The symbol.
    #[inline]
    pub fn symbol(&self) -> Symbol {
        self.book.symbol()
    }

    /// Current phase.
    #[inline]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether a snapshot request is outstanding.
    #[inline]
    pub fn snapshot_pending(&self) -> bool {
        self.snapshot_pending
    }

    /// Number of buffered events.
    #[inline]
    pub fn buffered_len(&self) -> usize {
        self.buffered.len()
    }

    /// For a fresh machine: returns true (once) if the caller must request the first snapshot.
    pub fn request_initial(&mut self) -> bool {
        if self.phase == Phase::AwaitingSnapshot && !self.snapshot_pending {
            self.snapshot_pending = true;
            true
        } else {
            false
        }
    }

    /// Marks the book stale and goes back to step 1 (buffer, await a snapshot). Returns whether
    /// the caller must start a snapshot request (false if one is already in flight).
    pub fn restart(&mut self, _reason: StaleReason) -> bool {
        self.book.mark_stale();
        self.phase = Phase::AwaitingSnapshot;
        self.clear_buffer();
        let request = !self.snapshot_pending;
        self.snapshot_pending = true;
        request
    }

    /// The snapshot request failed (network, rate limit): nothing is in flight any more.
    /// Returns whether a new request is needed (true while awaiting a snapshot).
    pub fn snapshot_failed(&mut self) -> bool {
        self.snapshot_pending = false;
        if self.phase == Phase::AwaitingSnapshot {
            self.snapshot_pending = true;
            true
        } else {
            false
        }
    }

    /// Feeds one diff-depth event (steps 2 and 7).
    pub fn on_delta(&mut self, d: &DepthDelta<'_>) -> DeltaOutcome {
        match self.phase {
            Phase::Fallback => DeltaOutcome::Ignored,
            Phase::AwaitingSnapshot => self.buffer(d),
            Phase::Live => match self.apply_live(d) {
                Ok(true) => DeltaOutcome::Applied,
                Ok(false) => DeltaOutcome::Ignored,
                Err(reason) => {
                    let request_snapshot = self.restart(reason);
                    DeltaOutcome::Resync { reason, request_snapshot }
                }
            },
        }
    }

    /// Feeds the REST snapshot (steps 4–7).
    pub fn on_snapshot(
        &mut self,
        last_update_id: u64,
        bids: &[Level],
        asks: &[Level],
    ) -> SnapshotOutcome {
        if self.phase != Phase::AwaitingSnapshot {
            self.snapshot_pending = false;
            return SnapshotOutcome::Unexpected;
        }
        // Step 4.
        if let Some(first) = self.buffered.first() {
            if last_update_id < first.first {
                // Still pending: the caller requests again.
                self.snapshot_pending = true;
                return SnapshotOutcome::TooOld;
            }
        }
        self.snapshot_pending = false;
        // Step 6.
        if self
            .book
            .apply_snapshot(last_update_id, bids.iter().copied(), asks.iter().copied())
            .is_err()
        {
            self.restart(StaleReason::InvalidLevel);
            return SnapshotOutcome::Resync(StaleReason::InvalidLevel);
        }
        self.book.set_source(BookSource::WebSocket);
        self.phase = Phase::Live;
        // Steps 5 and 7 on the buffer. Take the buffers out so `apply_live` can borrow self.
        let buffered = std::mem::take(&mut self.buffered);
        let buf_bids = std::mem::take(&mut self.buf_bids);
        let buf_asks = std::mem::take(&mut self.buf_asks);
        let (mut applied, mut dropped) = (0, 0);
        let (mut b0, mut a0) = (0, 0);
        let mut result = Ok(());
        for h in &buffered {
            let d = DepthDelta {
                first_update_id: h.first,
                final_update_id: h.last,
                bids: &buf_bids[b0..h.bids_end],
                asks: &buf_asks[a0..h.asks_end],
            };
            b0 = h.bids_end;
            a0 = h.asks_end;
            if h.last <= last_update_id {
                dropped += 1; // step 5
                continue;
            }
            match self.apply_live(&d) {
                Ok(true) => applied += 1,
                Ok(false) => dropped += 1,
                Err(reason) => {
                    result = Err(reason);
                    break;
                }
            }
        }
        // Give the (cleared) buffers back so their capacity is reused.
        self.buffered = buffered;
        self.buf_bids = buf_bids;
        self.buf_asks = buf_asks;
        self.clear_buffer();
        match result {
            Ok(()) => SnapshotOutcome::Synced { applied, dropped },
            Err(reason) => {
                self.restart(reason);
                SnapshotOutcome::Resync(reason)
            }
        }
    }

    /// Enters REST fallback: deltas are ignored until [`DepthSync::restart`]; the book keeps its
    /// content but is stale until the first [`DepthSync::apply_rest_poll`].
    pub fn enter_fallback(&mut self) {
        self.phase = Phase::Fallback;
        self.book.mark_stale();
        self.book.set_source(BookSource::RestFallback);
        self.clear_buffer();
        self.snapshot_pending = false;
    }

    /// In fallback, replaces the book with a polled REST snapshot (synced,
    /// [`BookSource::RestFallback`]). Returns false (book unchanged) outside fallback or when the
    /// snapshot is older than the book (a slow poll overtaken by a faster one).
    pub fn apply_rest_poll(&mut self, last_update_id: u64, bids: &[Level], asks: &[Level]) -> bool {
        if self.phase != Phase::Fallback
            || (self.book.is_synced() && last_update_id < self.book.update_id())
        {
            return false;
        }
        let ok = self
            .book
            .apply_snapshot(last_update_id, bids.iter().copied(), asks.iter().copied())
            .is_ok();
        self.book.set_source(BookSource::RestFallback);
        ok
    }

    fn clear_buffer(&mut self) {
        self.buffered.clear();
        self.buf_bids.clear();
        self.buf_asks.clear();
    }

    /// Step 2, with two cheap refinements that never change the outcome: an event already
    /// covered by the buffer (`u` <= last buffered `u`) is skipped, and an event that leaves a
    /// gap after the buffer discards the older events (they could never be applied).
    fn buffer(&mut self, d: &DepthDelta<'_>) -> DeltaOutcome {
        if let Some(last) = self.buffered.last() {
            if d.final_update_id <= last.last {
                return DeltaOutcome::Ignored;
            }
            if d.first_update_id > last.last + 1 {
                self.clear_buffer();
            }
        }
        if self.buffered.len() >= self.max_buffered {
            self.clear_buffer();
            let request_snapshot = self.restart(StaleReason::BufferOverflow);
            self.push(d);
            return DeltaOutcome::Resync { reason: StaleReason::BufferOverflow, request_snapshot };
        }
        self.push(d);
        DeltaOutcome::Buffered
    }

    fn push(&mut self, d: &DepthDelta<'_>) {
        self.buf_bids.extend_from_slice(d.bids);
        self.buf_asks.extend_from_slice(d.asks);
        self.buffered.push(Buffered {
            first: d.first_update_id,
            last: d.final_update_id,
            bids_end: self.buf_bids.len(),
            asks_end: self.buf_asks.len(),
        });
    }

    /// Rules (a)–(e). `Ok(true)` applied, `Ok(false)` ignored, `Err` must resync.
    fn apply_live(&mut self, d: &DepthDelta<'_>) -> Result<bool, StaleReason> {
        let id = self.book.update_id();
        if d.final_update_id < id {
            return Ok(false); // (a)
        }
        if d.first_update_id > id.saturating_add(1) {
            return Err(StaleReason::Gap { book_id: id, first_update_id: d.first_update_id });
            // (b)
        }
        // (d), each side as one sorted merge; an invalid level leaves that side untouched, and
        // the book goes stale either way.
        let invalid = |_: BookError| StaleReason::InvalidLevel;
        self.book.apply_levels(BookSide::Bid, d.bids).map_err(invalid)?;
        self.book.apply_levels(BookSide::Ask, d.asks).map_err(invalid)?;
        self.book.set_update_id(d.final_update_id); // (e)
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kestrel_model::{BookState, Price, Qty};
    use proptest::prelude::*;

    use super::*;

    fn sym() -> Symbol {
        Symbol::new("BTCUSDT").unwrap()
    }

    fn l(p: i64, q: i64) -> Level {
        Level::new(Price::from_mantissa(p), Qty::from_mantissa(q))
    }

    fn d<'a>(first: u64, last: u64, bids: &'a [Level], asks: &'a [Level]) -> DepthDelta<'a> {
        DepthDelta { first_update_id: first, final_update_id: last, bids, asks }
    }

    #[test]
    fn depth_sync_follows_the_documented_procedure() {
        let mut s = DepthSync::new(sym(), 100);
        assert!(s.request_initial());
        assert!(!s.request_initial(), "one request at a time");
        // Step 2: buffer.
        assert_eq!(s.on_delta(&d(100, 105, &[l(10, 1)], &[])), DeltaOutcome::Buffered);
        assert_eq!(s.on_delta(&d(106, 110, &[l(11, 2)], &[l(20, 1)])), DeltaOutcome::Buffered);
        assert_eq!(s.on_delta(&d(111, 111, &[], &[l(21, 3)])), DeltaOutcome::Buffered);
        // Step 4: snapshot older than the first U -> again.
        assert_eq!(s.on_snapshot(99, &[l(9, 1)], &[]), SnapshotOutcome::TooOld);
        assert!(s.snapshot_pending());
        assert_eq!(s.book().state(), BookState::Stale);
        // Steps 5-7: 105 drops the first event; the next has U == id + 1 and passes (b).
        let out = s.on_snapshot(105, &[l(10, 5)], &[l(22, 1)]);
        assert_eq!(out, SnapshotOutcome::Synced { applied: 2, dropped: 1 });
        assert!(s.book().is_synced());
        assert_eq!(s.book().update_id(), 111);
        assert_eq!(s.book().bids().collect::<Vec<_>>(), vec![l(11, 2), l(10, 5)]);
        assert_eq!(s.book().asks().collect::<Vec<_>>(), vec![l(20, 1), l(21, 3), l(22, 1)]);
        // (a): old event ignored; overlapping event applied.
        assert_eq!(s.on_delta(&d(108, 110, &[l(10, 0)], &[])), DeltaOutcome::Ignored);
        assert_eq!(s.on_delta(&d(110, 112, &[l(10, 0)], &[])), DeltaOutcome::Applied);
        assert_eq!(s.book().update_id(), 112);
        assert_eq!(s.book().depth(), (1, 3));
        // (b): gap -> stale, resnapshot.
        let out = s.on_delta(&d(114, 115, &[], &[]));
        assert_eq!(
            out,
            DeltaOutcome::Resync {
                reason: StaleReason::Gap { book_id: 112, first_update_id: 114 },
                request_snapshot: true
            }
        );
        assert_eq!(s.book().state(), BookState::Stale);
        assert_eq!(s.phase(), Phase::AwaitingSnapshot);
    }

    #[test]
    fn first_event_with_u_equal_snapshot_plus_one_passes() {
        // The 2025-11-12 rule: U > id + 1 is a gap; U == id + 1 is fine.
        let mut s = DepthSync::new(sym(), 10);
        s.request_initial();
        assert_eq!(s.on_delta(&d(101, 103, &[l(5, 1)], &[])), DeltaOutcome::Buffered);
        // Snapshot at 100: first U (101) is not > 100 + 1. But step 4: 100 < 101 -> TooOld.
        assert_eq!(s.on_snapshot(100, &[], &[]), SnapshotOutcome::TooOld);
        // With nothing buffered, a snapshot is taken as is; the live event then passes (b).
        let mut s = DepthSync::new(sym(), 10);
        s.request_initial();
        assert!(matches!(s.on_snapshot(100, &[], &[]), SnapshotOutcome::Synced { .. }));
        assert_eq!(s.on_delta(&d(101, 103, &[l(5, 1)], &[])), DeltaOutcome::Applied);
        assert_eq!(s.book().update_id(), 103);
    }

    #[test]
    fn gap_in_buffer_discards_older_events_and_duplicates_are_skipped() {
        let mut s = DepthSync::new(sym(), 10);
        s.request_initial();
        s.on_delta(&d(1, 2, &[l(1, 1)], &[]));
        assert_eq!(s.on_delta(&d(1, 2, &[l(1, 1)], &[])), DeltaOutcome::Ignored);
        s.on_delta(&d(10, 11, &[l(2, 1)], &[]));
        assert_eq!(s.buffered_len(), 1);
        // snapshot at 5 < first U 10 -> again
        assert_eq!(s.on_snapshot(5, &[], &[]), SnapshotOutcome::TooOld);
        assert!(matches!(s.on_snapshot(10, &[], &[]), SnapshotOutcome::Synced { applied: 1, .. }));
        assert_eq!(s.book().bids().collect::<Vec<_>>(), vec![l(2, 1)]);
    }

    #[test]
    fn buffer_overflow_restarts_without_duplicate_request() {
        let mut s = DepthSync::new(sym(), 2);
        assert!(s.request_initial());
        s.on_delta(&d(1, 1, &[], &[]));
        s.on_delta(&d(2, 2, &[], &[]));
        let out = s.on_delta(&d(3, 3, &[], &[]));
        assert_eq!(
            out,
            DeltaOutcome::Resync { reason: StaleReason::BufferOverflow, request_snapshot: false }
        );
        assert_eq!(s.buffered_len(), 1);
        // the in-flight snapshot (taken before event 3) is too old for the new buffer
        assert_eq!(s.on_snapshot(2, &[], &[]), SnapshotOutcome::TooOld);
        assert!(matches!(s.on_snapshot(3, &[], &[]), SnapshotOutcome::Synced { .. }));
    }

    #[test]
    fn invalid_level_forces_resync() {
        let mut s = DepthSync::new(sym(), 10);
        s.request_initial();
        s.on_snapshot(1, &[l(5, 1)], &[]);
        let out = s.on_delta(&d(2, 2, &[l(5, -1)], &[]));
        assert_eq!(
            out,
            DeltaOutcome::Resync { reason: StaleReason::InvalidLevel, request_snapshot: true }
        );
        assert!(!s.book().is_synced());
        // a snapshot with a bad level is refused too
        assert_eq!(
            s.on_snapshot(3, &[l(0, 1)], &[]),
            SnapshotOutcome::Resync(StaleReason::InvalidLevel)
        );
    }

    #[test]
    fn restart_and_failed_snapshot_bookkeeping() {
        let mut s = DepthSync::new(sym(), 10);
        s.request_initial();
        s.on_snapshot(1, &[l(5, 1)], &[]);
        assert!(s.restart(StaleReason::Reconnect));
        assert!(!s.restart(StaleReason::ChannelOverflow), "already in flight");
        assert_eq!(s.book().state(), BookState::Stale);
        assert_eq!(s.book().depth(), (1, 0), "content kept for display");
        assert!(s.snapshot_failed(), "still awaiting: request again");
        assert!(s.snapshot_pending());
        // a snapshot while live is ignored
        s.on_snapshot(2, &[], &[]);
        assert_eq!(s.on_snapshot(3, &[], &[]), SnapshotOutcome::Unexpected);
    }

    #[test]
    fn fallback_ignores_deltas_and_applies_polls_in_order() {
        let mut s = DepthSync::new(sym(), 10);
        s.request_initial();
        s.on_snapshot(10, &[l(5, 1)], &[]);
        s.enter_fallback();
        assert!(!s.book().is_synced());
        assert_eq!(s.on_delta(&d(11, 11, &[l(6, 1)], &[])), DeltaOutcome::Ignored);
        assert!(s.apply_rest_poll(20, &[l(7, 1)], &[l(9, 1)]));
        assert!(s.book().is_synced());
        assert_eq!(s.book().source(), BookSource::RestFallback);
        assert!(!s.apply_rest_poll(19, &[l(8, 1)], &[]), "older poll ignored");
        assert_eq!(s.book().update_id(), 20);
        // leaving fallback
        assert!(s.restart(StaleReason::FallbackExit));
        assert!(matches!(s.on_snapshot(30, &[l(1, 1)], &[]), SnapshotOutcome::Synced { .. }));
        assert_eq!(s.book().source(), BookSource::WebSocket);
    }

    // ----- property test --------------------------------------------------------------------

    /// A reference exchange: update id `k` (1-based) sets the levels in `changes[k-1]`.
    struct Exchange {
        /// `history[k]` = the book after update id `k` (`history[0]` is the start, empty).
        history: Vec<(BTreeMap<i64, i64>, BTreeMap<i64, i64>)>,
        changes: Vec<Vec<(bool, i64, i64)>>,
    }

    impl Exchange {
        fn new(changes: Vec<Vec<(bool, i64, i64)>>) -> Self {
            let mut history = vec![(BTreeMap::new(), BTreeMap::new())];
            for ch in &changes {
                let (mut b, mut a) = history.last().cloned().unwrap();
                for &(bid, p, q) in ch {
                    let m = if bid { &mut b } else { &mut a };
                    if q == 0 {
                        m.remove(&p);
                    } else {
                        m.insert(p, q);
                    }
                }
                history.push((b, a));
            }
            Self { history, changes }
        }

        fn last_id(&self) -> u64 {
            self.changes.len() as u64
        }

        /// The event Binance would send for `[first, last]`: each level changed in the range,
        /// with its value at `last`.
        fn event(&self, first: u64, last: u64) -> (Vec<Level>, Vec<Level>) {
            let (fb, fa) = &self.history[last as usize];
            let mut bids = BTreeMap::new();
            let mut asks = BTreeMap::new();
            for k in first..=last {
                for &(bid, p, _) in &self.changes[k as usize - 1] {
                    if bid {
                        bids.insert(p, fb.get(&p).copied().unwrap_or(0));
                    } else {
                        asks.insert(p, fa.get(&p).copied().unwrap_or(0));
                    }
                }
            }
            (
                bids.into_iter().map(|(p, q)| l(p, q)).collect(),
                asks.into_iter().map(|(p, q)| l(p, q)).collect(),
            )
        }

        fn snapshot(&self, id: u64) -> (Vec<Level>, Vec<Level>) {
            let (b, a) = &self.history[id as usize];
            (
                b.iter().rev().map(|(p, q)| l(*p, *q)).collect(),
                a.iter().map(|(p, q)| l(*p, *q)).collect(),
            )
        }

        fn matches(&self, book: &OrderBook) -> bool {
            let (b, a) = self.snapshot(book.update_id());
            book.bids().collect::<Vec<_>>() == b && book.asks().collect::<Vec<_>>() == a
        }
    }

    /// How the delivered stream deviates from the clean one at each step.
    #[derive(Debug, Clone, Copy)]
    enum Mutation {
        Clean,
        Drop,
        Duplicate,
        SwapWithNext,
        OverlapBack(u64),
        Merge,
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            6 => Just(Mutation::Clean),
            1 => Just(Mutation::Drop),
            1 => Just(Mutation::Duplicate),
            1 => Just(Mutation::SwapWithNext),
            1 => (1u64..4).prop_map(Mutation::OverlapBack),
            1 => Just(Mutation::Merge),
        ]
    }

    fn change() -> impl Strategy<Value = Vec<(bool, i64, i64)>> {
        prop::collection::vec((any::<bool>(), 1i64..16, 0i64..4), 0..4)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the stream does (gaps, duplicates, reordering, overlaps, merges) and
        /// whenever snapshots are taken, a book reported synced always equals the exchange's
        /// book at the book's update id, and applied events never go backwards.
        #[test]
        fn depth_sync_never_reports_a_wrong_synced_book(
            changes in prop::collection::vec(change(), 10..80),
            muts in prop::collection::vec(mutation(), 80),
            snapshot_delays in prop::collection::vec(0usize..6, 40),
            snapshot_skews in prop::collection::vec(-3i64..4, 40),
            max_buffered in 1usize..12,
        ) {
            let ex = Exchange::new(changes);
            let n = ex.last_id();
            // Clean event ranges of 1..3 ids, then mutated into the delivered stream.
            let mut clean = Vec::new();
            let mut k = 1;
            let mut i = 0;
            while k <= n {
                let len = 1 + (i as u64 % 3);
                let last = (k + len - 1).min(n);
                clean.push((k, last));
                k = last + 1;
                i += 1;
            }
            let mut stream: Vec<(u64, u64)> = Vec::new();
            let mut j = 0;
            while j < clean.len() {
                let (f, l_) = clean[j];
                match muts[j % muts.len()] {
                    Mutation::Clean => stream.push((f, l_)),
                    Mutation::Drop => {}
                    Mutation::Duplicate => { stream.push((f, l_)); stream.push((f, l_)); }
                    Mutation::SwapWithNext if j + 1 < clean.len() => {
                        stream.push(clean[j + 1]);
                        stream.push((f, l_));
                        j += 1;
                    }
                    Mutation::SwapWithNext => stream.push((f, l_)),
                    Mutation::OverlapBack(b) => stream.push((f.saturating_sub(b).max(1), l_)),
                    Mutation::Merge if j + 1 < clean.len() => {
                        stream.push((f, clean[j + 1].1));
                        j += 1;
                    }
                    Mutation::Merge => stream.push((f, l_)),
                }
                j += 1;
            }

            let mut s = DepthSync::new(sym(), max_buffered);
            let mut pending: Option<usize> = None; // events until the snapshot lands
            let mut n_snap = 0usize;
            if s.request_initial() {
                pending = Some(snapshot_delays[0]);
            }
            let mut max_seen = 0u64;
            let mut prev_id: Option<u64> = None;
            for (step, &(f, l_)) in stream.iter().enumerate() {
                // Deliver a due snapshot first, taken around the exchange's "now".
                if let Some(0) = pending {
                    let skew = snapshot_skews[n_snap % snapshot_skews.len()];
                    let id = (max_seen as i64 + skew).clamp(0, n as i64) as u64;
                    let (b, a) = ex.snapshot(id);
                    n_snap += 1;
                    pending = None;
                    match s.on_snapshot(id, &b, &a) {
                        SnapshotOutcome::Synced { .. } => prev_id = Some(s.book().update_id()),
                        SnapshotOutcome::TooOld | SnapshotOutcome::Resync(_) => {
                            pending = Some(snapshot_delays[n_snap % snapshot_delays.len()]);
                            prev_id = None;
                        }
                        SnapshotOutcome::Unexpected => {}
                    }
                }
                if s.book().is_synced() {
                    prop_assert!(ex.matches(s.book()), "synced book wrong after snapshot, step {step}");
                }
                max_seen = max_seen.max(l_);
                let (b, a) = ex.event(f, l_);
                let before = s.book().update_id();
                match s.on_delta(&d(f, l_, &b, &a)) {
                    DeltaOutcome::Applied => {
                        // Never out of order: contiguous or overlapping, never behind.
                        prop_assert!(f <= before + 1 && l_ >= before, "applied [{f},{l_}] on {before}");
                        if let Some(p) = prev_id { prop_assert!(l_ >= p); }
                        prev_id = Some(l_);
                    }
                    DeltaOutcome::Resync { request_snapshot, .. } => {
                        prev_id = None;
                        if request_snapshot {
                            prop_assert!(pending.is_none());
                            pending = Some(snapshot_delays[n_snap % snapshot_delays.len()]);
                        }
                        prop_assert!(pending.is_some(), "stale without a snapshot in flight");
                    }
                    DeltaOutcome::Buffered | DeltaOutcome::Ignored => {}
                }
                if s.book().is_synced() {
                    prop_assert!(ex.matches(s.book()), "synced book wrong at id {}, step {step}", s.book().update_id());
                } else {
                    prop_assert!(pending.is_some(), "stale book with no snapshot coming");
                }
                if let Some(p) = pending.as_mut() { *p = p.saturating_sub(1); }
            }
        }

        /// Liveness: on a clean stream the book syncs after one snapshot and stays synced.
        #[test]
        fn depth_sync_syncs_on_a_clean_stream(
            changes in prop::collection::vec(change(), 5..40),
            snap_after in 0usize..5,
        ) {
            let ex = Exchange::new(changes);
            let n = ex.last_id();
            let mut s = DepthSync::new(sym(), 1000);
            s.request_initial();
            for k in 1..=n {
                if k as usize == snap_after + 1 {
                    // snapshot taken after event k-1 was published: id = k - 1 >= first U - 1
                    let (b, a) = ex.snapshot(k - 1);
                    let out = s.on_snapshot(k - 1, &b, &a);
                    if k == 1 {
                        prop_assert!(matches!(out, SnapshotOutcome::Synced { .. }), "{:?}", out);
                    } else {
                        // buffered first U is 1 <= k-1
                        prop_assert!(matches!(out, SnapshotOutcome::Synced { .. }), "{out:?}");
                    }
                }
                let (b, a) = ex.event(k, k);
                s.on_delta(&d(k, k, &b, &a));
            }
            if snap_after < n as usize {
                prop_assert!(s.book().is_synced());
                prop_assert_eq!(s.book().update_id(), n);
                prop_assert!(ex.matches(s.book()));
            }
        }
    }
}
