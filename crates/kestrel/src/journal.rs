//! The durable journal: orders, their audit trail, fills and positions in SQLite (capability M6).
//!
//! Rules it keeps:
//! - **One transaction per event.** Every `record_*` call is one `BEGIN IMMEDIATE … COMMIT`: an
//!   order row and its audit event are written together or not at all, so a crash (even
//!   `kill -9` mid-write, scenario S18) leaves the journal consistent. WAL mode with
//!   `synchronous=FULL`: a call that returned `Ok` survives a crash of the process and of the
//!   machine.
//! - **Intent before sending.** [`Journal::record_intent`] is called before an order request
//!   leaves the process, so after a crash every order that might exist on the exchange is known
//!   and reconciled, never duplicated.
//! - **A fill is recorded exactly once** (scenario S02): `fills` has `UNIQUE(symbol, trade_id)`
//!   and [`Journal::record_fill`] says whether the fill was new.
//! - **Client ids are unique and stable across restarts**: a durable sequence in `meta` feeds
//!   [`ClientIdPrefix::make`]. Numbers are reserved in blocks of [`CLIENT_SEQ_BLOCK`] (one
//!   fsync per block, not per order); a crash skips the rest of a block, never reuses it.
//! - **Numbers are exact**: prices, quantities and amounts are stored as decimal TEXT written by
//!   the fixed-point types' `Display` and read back with their `FromStr`, so they round-trip
//!   exactly; ids and times are INTEGERs.
//! - **One writer.** The database is opened with `locking_mode=EXCLUSIVE`: a second bot pointed
//!   at the same file fails at start-up with [`JournalError::Locked`] instead of interleaving
//!   client ids and reconciliations.
//!
//! The journal is synchronous (rusqlite); async callers run it on a blocking thread. It never
//! reads the clock: every timestamp comes from the caller.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use kestrel_model::{
    Asset, ClientOrderId, Fill, Notional, OrderId, OrderRequest, OrderStatus, OrderType,
    OrderUpdate, Price, Qty, Side, Symbol, TimeInForce, TradeId, UnixNanos,
};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};

// ---------------------------------------------------------------------------------------------
// Client ids
// ---------------------------------------------------------------------------------------------

/// The prefix of every client order id this bot creates: `<prefix>-<seq>` (e.g. `kst-42`).
///
/// 1 to 12 ASCII letters and digits, so an id is at most 12 + 1 + 20 = 33 bytes (Binance allows
/// 36) and the `-` separator is unambiguous. Reconciliation touches only orders whose id has
/// exactly this shape (scenario S09: several bots sharing one account use different prefixes).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIdPrefix(ClientOrderId);

/// Why a client-id prefix was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to {max} ASCII letters and digits", max = ClientIdPrefix::MAX_LEN)]
pub struct InvalidPrefix;

impl ClientIdPrefix {
    /// Longest accepted prefix, in bytes.
    pub const MAX_LEN: usize = 12;

    /// Validates a prefix.
    pub fn new(s: &str) -> Result<Self, InvalidPrefix> {
        if s.is_empty() || s.len() > Self::MAX_LEN || !s.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(InvalidPrefix);
        }
        ClientOrderId::new(s).map(Self).map_err(|_| InvalidPrefix)
    }

    /// The prefix text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The client id for sequence number `seq`: `<prefix>-<seq>`.
    pub fn make(&self, seq: u64) -> ClientOrderId {
        let text = format!("{}-{seq}", self.as_str());
        ClientOrderId::new(&text).expect("invariant: <=12 alnum + '-' + <=20 digits is a valid id")
    }

    /// The sequence number of `id` if it is one of ours (`<prefix>-<digits>`), else `None`.
    pub fn seq_of(&self, id: &ClientOrderId) -> Option<u64> {
        let rest = id.as_str().strip_prefix(self.as_str())?.strip_prefix('-')?;
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest.parse().ok()
    }

    /// True if `id` was made by this prefix.
    pub fn owns(&self, id: &ClientOrderId) -> bool {
        self.seq_of(id).is_some()
    }
}

impl fmt::Display for ClientIdPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ClientIdPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientIdPrefix({:?})", self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a journal operation failed. Any of these at start-up exits with the journal exit code.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The database file could not be opened or prepared.
    #[error("cannot open journal {}", path.display())]
    Open {
        /// The journal file.
        path: PathBuf,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// Another process holds the journal (another bot with the same `journal.path`).
    #[error("journal {} is locked by another process; each bot needs its own journal.path", path.display())]
    Locked {
        /// The journal file.
        path: PathBuf,
    },
    /// The file was written by a newer kestrel with a schema this build does not know.
    #[error("journal schema version {found} is newer than this build supports ({supported}); upgrade kestrel")]
    SchemaTooNew {
        /// Version in the file.
        found: i64,
        /// Highest version this build knows.
        supported: i64,
    },
    /// An SQL statement failed.
    #[error("journal {op} failed")]
    Sqlite {
        /// What was being done.
        op: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// An order with this client id is already journaled (ids must never be reused).
    #[error("order {0} is already in the journal")]
    DuplicateClientId(ClientOrderId),
    /// No order with this client id is journaled.
    #[error("order {0} is not in the journal")]
    UnknownOrder(ClientOrderId),
    /// A stored value could not be read back (hand-edited or corrupted file).
    #[error("journal {table}.{column} holds {value:?}, which is not {expected}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// Column.
        column: &'static str,
        /// The stored text.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// An id or timestamp does not fit SQLite's signed 64-bit integer.
    #[error("{what} {value} does not fit the journal's 64-bit integer")]
    OutOfRange {
        /// Which value.
        what: &'static str,
        /// The value.
        value: u64,
    },
}

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> JournalError {
    move |source| JournalError::Sqlite { op, source }
}

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

/// An order as the journal knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalOrder {
    /// Our client id (primary key).
    pub client_id: ClientOrderId,
    /// Symbol.
    pub symbol: Symbol,
    /// Side.
    pub side: Side,
    /// Order type.
    pub kind: OrderType,
    /// Time in force (limit orders).
    pub time_in_force: Option<TimeInForce>,
    /// Limit price (`None` for market orders).
    pub price: Option<Price>,
    /// Original quantity.
    pub qty: Qty,
    /// Latest known status.
    pub status: OrderStatus,
    /// Exchange order id once acknowledged.
    pub order_id: Option<OrderId>,
    /// Cumulative filled quantity.
    pub cum_qty: Qty,
    /// Cumulative filled quote amount.
    pub cum_quote: Notional,
    /// Binance error code if rejected.
    pub reject_code: Option<i32>,
    /// When the order was decided (intent) or adopted.
    pub created: UnixNanos,
    /// Time of the latest event.
    pub updated: UnixNanos,
}

/// What an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The order was decided and is about to be sent.
    Intent,
    /// The exchange acknowledged the placement.
    Ack,
    /// An execution report, query answer or reconciliation changed the order.
    Update,
    /// A fill was recorded outside an update (e.g. from `myTrades` at reconciliation).
    Fill,
    /// The exchange refused the order.
    Reject,
    /// The request's outcome is unknown (timeout, 5xx).
    Unknown,
    /// A cancel was requested.
    CancelRequested,
    /// Reconciliation found the order on the exchange and adopted it.
    Adopted,
}

impl EventKind {
    /// Stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::Intent => "intent",
            EventKind::Ack => "ack",
            EventKind::Update => "update",
            EventKind::Fill => "fill",
            EventKind::Reject => "reject",
            EventKind::Unknown => "unknown",
            EventKind::CancelRequested => "cancel_requested",
            EventKind::Adopted => "adopted",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "intent" => EventKind::Intent,
            "ack" => EventKind::Ack,
            "update" => EventKind::Update,
            "fill" => EventKind::Fill,
            "reject" => EventKind::Reject,
            "unknown" => EventKind::Unknown,
            "cancel_requested" => EventKind::CancelRequested,
            "adopted" => EventKind::Adopted,
            _ => return None,
        })
    }
}

/// One row of the append-only audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEvent {
    /// Global, increasing sequence number.
    pub seq: i64,
    /// The order.
    pub client_id: ClientOrderId,
    /// What happened.
    pub kind: EventKind,
    /// The order's status after the event (equals the order row's status for the latest event).
    pub status: OrderStatus,
    /// Cumulative filled quantity after the event.
    pub cum_qty: Qty,
    /// Free text: reject message, reconciliation note.
    pub detail: Option<String>,
    /// Local time of the event.
    pub ts_local: UnixNanos,
}

/// One fill of one of our orders, with what the model's [`Fill`] does not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillRecord {
    /// Symbol (with `fill.trade_id`, the dedup key).
    pub symbol: Symbol,
    /// The order it belongs to (must be journaled).
    pub client_id: ClientOrderId,
    /// The order's side: the sign of the position change.
    pub side: Side,
    /// The fill.
    pub fill: Fill,
}

/// Net position of one symbol, from this journal's fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Symbol.
    pub symbol: Symbol,
    /// Signed base quantity: bought minus sold.
    pub base: Qty,
    /// Signed quote flow: received for sales minus paid for purchases (commission excluded).
    pub quote: Notional,
    /// Number of fills summed.
    pub fills: u64,
}

/// What [`Journal::record_update`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// The order's status after the update (terminal states never revert).
    pub status: OrderStatus,
    /// True if the update carried a fill that was not yet journaled.
    pub fill_new: bool,
}

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

/// Migrations in order; `schema_migrations` records which ran. Append only, never edit.
const MIGRATIONS: &[&str] = &[
    // v1: the initial schema.
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT INTO meta (key, value) VALUES ('client_seq', 0);

CREATE TABLE orders (
    client_id   TEXT PRIMARY KEY,
    symbol      TEXT NOT NULL,
    side        TEXT NOT NULL,
    type        TEXT NOT NULL,
    tif         TEXT,
    price       TEXT,
    qty         TEXT NOT NULL,
    status      TEXT NOT NULL,
    order_id    INTEGER,
    cum_qty     TEXT NOT NULL,
    cum_quote   TEXT NOT NULL,
    reject_code INTEGER,
    created_ns  INTEGER NOT NULL,
    updated_ns  INTEGER NOT NULL
) STRICT;
CREATE INDEX orders_open ON orders (status)
    WHERE status NOT IN ('FILLED', 'CANCELED', 'REJECTED', 'EXPIRED');

CREATE TABLE order_events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id      TEXT NOT NULL REFERENCES orders (client_id),
    kind           TEXT NOT NULL,
    status         TEXT NOT NULL,
    order_id       INTEGER,
    cum_qty        TEXT NOT NULL,
    cum_quote      TEXT NOT NULL,
    detail         TEXT,
    ts_exchange_ns INTEGER,
    ts_local_ns    INTEGER NOT NULL
) STRICT;
CREATE INDEX order_events_by_order ON order_events (client_id, seq);

CREATE TABLE fills (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    symbol           TEXT NOT NULL,
    trade_id         INTEGER NOT NULL,
    client_id        TEXT NOT NULL REFERENCES orders (client_id),
    side             TEXT NOT NULL,
    price            TEXT NOT NULL,
    qty              TEXT NOT NULL,
    commission       TEXT NOT NULL,
    commission_asset TEXT,
    is_maker         INTEGER NOT NULL,
    ts_exchange_ns   INTEGER NOT NULL,
    UNIQUE (symbol, trade_id)
) STRICT;

CREATE TABLE position_snapshots (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    symbol     TEXT NOT NULL,
    base       TEXT NOT NULL,
    quote      TEXT NOT NULL,
    fills      INTEGER NOT NULL,
    source     TEXT NOT NULL,
    ts_ns      INTEGER NOT NULL
) STRICT;
"#,
    // v2: look orders up by exchange order id (`myTrades` names orders only by that).
    r#"
CREATE INDEX orders_by_exchange_id ON orders (symbol, order_id) WHERE order_id IS NOT NULL;
"#,
];

const OPEN_STATUSES_SQL: &str = "status NOT IN ('FILLED', 'CANCELED', 'REJECTED', 'EXPIRED')";

const ORDER_COLUMNS: &str = "client_id, symbol, side, type, tif, price, qty, status, order_id, \
                             cum_qty, cum_quote, reject_code, created_ns, updated_ns";

// ---------------------------------------------------------------------------------------------
// The journal
// ---------------------------------------------------------------------------------------------

/// Client-id sequence numbers reserved per durable write. Each reservation is an fsync
/// (milliseconds on a VM disk), so reserving one per order would double the journal's cost on
/// the order path; gaps after a crash are harmless.
pub const CLIENT_SEQ_BLOCK: u64 = 100;

/// The open journal. One per process; methods take `&mut self` because each is a transaction.
#[derive(Debug)]
pub struct Journal {
    conn: Connection,
    /// For error messages.
    path: PathBuf,
    /// The next client-id sequence number to hand out.
    next_seq: u64,
    /// Highest sequence number durably reserved in `meta`; `next_seq` may reach it, and the
    /// next call past it reserves another block first.
    reserved_to: u64,
}

/// SQLite's page cache for the journal, KiB. The journal appends: a write touches the root,
/// interior and rightmost leaf pages of a few tables and indexes (well under 100 KiB), and
/// look-ups by client id go through the same interior pages. SQLite's default (2,000 KiB) let
/// the cache fill with pages never read again: the bot's heap grew ~0.1 MiB a minute at the
/// `seed` order rate for its first 20 minutes (measured with heaptrack and smaps, #7).
pub const JOURNAL_CACHE_KIB: i64 = 256;

impl Journal {
    /// Opens (creating if missing) the journal at `path`, takes the exclusive lock and runs
    /// pending migrations.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let open_err = |source| JournalError::Open { path: path.to_path_buf(), source };
        let conn = Connection::open(path).map_err(open_err)?;
        // Exclusive locking first, so the WAL needs no shared-memory file and the lock is held
        // from the first write on for the life of the connection.
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE").map_err(open_err)?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| match lock_error(&e) {
                true => JournalError::Locked { path: path.to_path_buf() },
                false => open_err(e),
            })?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(JournalError::Corrupt {
                table: "pragma",
                column: "journal_mode",
                value: mode,
                expected: "wal (is the file on a filesystem without locking?)",
            });
        }
        conn.pragma_update(None, "synchronous", "FULL").map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(open_err)?;
        conn.pragma_update(None, "cache_size", -JOURNAL_CACHE_KIB).map_err(open_err)?;
        let mut journal = Journal { conn, path: path.to_path_buf(), next_seq: 1, reserved_to: 0 };
        journal.migrate()?;
        // Everything up to the persisted value may have been handed out before: start above it.
        journal.reserved_to = journal.client_seq()?;
        journal.next_seq = journal.reserved_to.saturating_add(1);
        Ok(journal)
    }

    /// The file this journal lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&mut self) -> Result<(), JournalError> {
        let path = self.path.clone();
        let locked = |e: rusqlite::Error| match lock_error(&e) {
            true => JournalError::Locked { path: path.clone() },
            false => JournalError::Sqlite { op: "migration", source: e },
        };
        let tx =
            self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(locked)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    INTEGER PRIMARY KEY,
                 applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
             ) STRICT;",
        )
        .map_err(sql("migration"))?;
        let current: i64 = tx
            .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))
            .map_err(sql("migration"))?;
        let supported = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        if current > supported {
            return Err(JournalError::SchemaTooNew { found: current, supported });
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(usize::try_from(current).unwrap_or(0)) {
            tx.execute_batch(step).map_err(sql("migration"))?;
            let version = i64::try_from(i + 1).unwrap_or(i64::MAX);
            tx.execute("INSERT INTO schema_migrations (version) VALUES (?1)", [version])
                .map_err(sql("migration"))?;
        }
        tx.commit().map_err(sql("migration"))
    }

    /// Schema version of the open file.
    pub fn schema_version(&self) -> Result<i64, JournalError> {
        self.conn
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| r.get(0))
            .map_err(sql("schema version"))
    }

    /// Takes the next client-id sequence number. It is durably reserved before it is returned,
    /// so it is never handed out again, even after a crash. Build the id with
    /// [`ClientIdPrefix::make`].
    pub fn next_client_seq(&mut self) -> Result<u64, JournalError> {
        if self.next_seq > self.reserved_to {
            let target = self.next_seq.saturating_add(CLIENT_SEQ_BLOCK - 1);
            self.persist_seq_floor(target)?;
        }
        let seq = self.next_seq;
        self.next_seq = seq.saturating_add(1);
        Ok(seq)
    }

    /// Durably records that sequence numbers up to `seen` are taken, so neither this journal
    /// nor a restarted bot hands them out again. Used when ids come from elsewhere: the
    /// engine's own id generator (call before [`Journal::record_intent`]) or ids of ours that
    /// reconciliation found on the exchange. Reserves a block past `seen` when it writes, so a
    /// caller numbering sequentially pays one fsync per [`CLIENT_SEQ_BLOCK`] ids. Never lowers.
    pub fn ensure_client_seq_above(&mut self, seen: u64) -> Result<(), JournalError> {
        if seen >= self.next_seq {
            self.next_seq = seen.saturating_add(1);
        }
        if seen > self.reserved_to {
            self.persist_seq_floor(seen.saturating_add(CLIENT_SEQ_BLOCK - 1))?;
        }
        Ok(())
    }

    /// Durably sets the reserved ceiling to at least `value`.
    fn persist_seq_floor(&mut self, value: u64) -> Result<(), JournalError> {
        let v = to_i64("client seq", value)?;
        let tx = self.begin()?;
        let stored: i64 = tx
            .query_row(
                "UPDATE meta SET value = MAX(value, ?1) WHERE key = 'client_seq' RETURNING value",
                [v],
                |r| r.get(0),
            )
            .map_err(sql("reserve client seq"))?;
        tx.commit().map_err(sql("reserve client seq"))?;
        self.reserved_to = u64::try_from(stored).unwrap_or(0);
        Ok(())
    }

    /// The highest client-id sequence number durably reserved (0 if none): every number ever
    /// handed out is at most this, and after a restart numbering continues above it.
    pub fn client_seq(&self) -> Result<u64, JournalError> {
        let v: i64 = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'client_seq'", [], |r| r.get(0))
            .map_err(sql("read client seq"))?;
        Ok(u64::try_from(v).unwrap_or(0))
    }

    /// Journals a new order as `PendingNew`, BEFORE it is sent. Fails with
    /// [`JournalError::DuplicateClientId`] if the id was used before.
    pub fn record_intent(&mut self, req: &OrderRequest) -> Result<(), JournalError> {
        let order = JournalOrder {
            client_id: req.client_id,
            symbol: req.symbol,
            side: req.side,
            kind: req.kind,
            time_in_force: req.time_in_force,
            price: req.price,
            qty: req.qty,
            status: OrderStatus::PendingNew,
            order_id: None,
            cum_qty: Qty::ZERO,
            cum_quote: Notional::ZERO,
            reject_code: None,
            created: req.ts_decided,
            updated: req.ts_decided,
        };
        self.insert_order(&order, EventKind::Intent, None)
    }

    /// Journals an order found open on the exchange that the journal did not know (startup
    /// reconciliation with `unknown_orders = "adopt"`).
    pub fn record_adopted(&mut self, order: &JournalOrder) -> Result<(), JournalError> {
        self.insert_order(order, EventKind::Adopted, Some("adopted at reconciliation"))
    }

    fn insert_order(
        &mut self,
        o: &JournalOrder,
        kind: EventKind,
        detail: Option<&str>,
    ) -> Result<(), JournalError> {
        let order_id = o.order_id.map(|id| to_i64("order id", id.0)).transpose()?;
        let created = to_i64("timestamp", o.created.0)?;
        let updated = to_i64("timestamp", o.updated.0)?;
        let tx = self.begin()?;
        let inserted = tx.execute(
            &format!(
                "INSERT INTO orders ({ORDER_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
            ),
            params![
                o.client_id.as_str(),
                o.symbol.as_str(),
                o.side.as_str(),
                o.kind.as_str(),
                o.time_in_force.map(TimeInForce::as_str),
                o.price.map(|p| p.to_string()),
                o.qty.to_string(),
                status_str(o.status),
                order_id,
                o.cum_qty.to_string(),
                o.cum_quote.to_string(),
                o.reject_code,
                created,
                updated,
            ],
        );
        match inserted {
            Ok(_) => {}
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                return Err(JournalError::DuplicateClientId(o.client_id));
            }
            Err(e) => return Err(sql("insert order")(e)),
        }
        insert_event(&tx, o, kind, detail, None, o.updated)?;
        tx.commit().map_err(sql("insert order"))
    }

    /// Journals the exchange's acknowledgement of a placement (REST response or WS API answer).
    pub fn record_ack(&mut self, update: &OrderUpdate) -> Result<Recorded, JournalError> {
        self.apply_update(update, EventKind::Ack)
    }

    /// Journals an execution report or query answer, and its fill if it carries one (same
    /// transaction). Terminal states never revert; cumulative quantities never go down.
    pub fn record_update(&mut self, update: &OrderUpdate) -> Result<Recorded, JournalError> {
        self.apply_update(update, EventKind::Update)
    }

    fn apply_update(&mut self, u: &OrderUpdate, kind: EventKind) -> Result<Recorded, JournalError> {
        let tx = self.begin()?;
        let mut order =
            load_order(&tx, &u.client_id)?.ok_or(JournalError::UnknownOrder(u.client_id))?;
        let stale = !u.status.is_terminal() && u.cum_qty < order.cum_qty;
        if !order.status.is_terminal() && !stale {
            order.status = u.status;
        }
        if u.cum_qty > order.cum_qty {
            order.cum_qty = u.cum_qty;
        }
        if u.cum_quote > order.cum_quote {
            order.cum_quote = u.cum_quote;
        }
        if u.order_id.is_some() {
            order.order_id = u.order_id;
        }
        order.updated = order.updated.max(u.ts_local);
        save_order(&tx, &order)?;
        let ts_exchange = (u.ts_exchange != UnixNanos::ZERO).then_some(u.ts_exchange);
        insert_event(&tx, &order, kind, None, ts_exchange, u.ts_local)?;
        let fill_new = match &u.fill {
            Some(fill) => insert_fill(
                &tx,
                &FillRecord { symbol: u.symbol, client_id: u.client_id, side: u.side, fill: *fill },
            )?,
            None => false,
        };
        tx.commit().map_err(sql("record update"))?;
        Ok(Recorded { status: order.status, fill_new })
    }

    /// Journals a fill, exactly once: returns `true` if it was new, `false` if this
    /// `(symbol, trade_id)` was already recorded. The order must be journaled.
    pub fn record_fill(&mut self, rec: &FillRecord) -> Result<bool, JournalError> {
        let tx = self.begin()?;
        let order =
            load_order(&tx, &rec.client_id)?.ok_or(JournalError::UnknownOrder(rec.client_id))?;
        let new = insert_fill(&tx, rec)?;
        if new {
            let detail = format!("trade {} {}@{}", rec.fill.trade_id, rec.fill.qty, rec.fill.price);
            insert_event(
                &tx,
                &order,
                EventKind::Fill,
                Some(&detail),
                Some(rec.fill.ts_exchange),
                rec.fill.ts_exchange,
            )?;
        }
        tx.commit().map_err(sql("record fill"))?;
        Ok(new)
    }

    /// Journals the exchange's refusal of an order (terminal `Rejected` with the error code).
    pub fn record_reject(
        &mut self,
        client_id: &ClientOrderId,
        code: i32,
        message: &str,
        ts_local: UnixNanos,
    ) -> Result<(), JournalError> {
        self.set_status(
            client_id,
            OrderStatus::Rejected,
            EventKind::Reject,
            Some((code, message)),
            ts_local,
        )
    }

    /// Marks an order `Unknown` (request timed out or got a 5xx): it will be resolved by query,
    /// never assumed failed. No effect on a terminal order.
    pub fn mark_unknown(
        &mut self,
        client_id: &ClientOrderId,
        ts_local: UnixNanos,
    ) -> Result<(), JournalError> {
        self.set_status(client_id, OrderStatus::Unknown, EventKind::Unknown, None, ts_local)
    }

    /// Marks an order `PendingCancel` (a cancel request is about to be sent). No effect on a
    /// terminal order.
    pub fn record_cancel_requested(
        &mut self,
        client_id: &ClientOrderId,
        ts_local: UnixNanos,
    ) -> Result<(), JournalError> {
        self.set_status(
            client_id,
            OrderStatus::PendingCancel,
            EventKind::CancelRequested,
            None,
            ts_local,
        )
    }

    fn set_status(
        &mut self,
        client_id: &ClientOrderId,
        status: OrderStatus,
        kind: EventKind,
        reject: Option<(i32, &str)>,
        ts_local: UnixNanos,
    ) -> Result<(), JournalError> {
        let tx = self.begin()?;
        let mut order =
            load_order(&tx, client_id)?.ok_or(JournalError::UnknownOrder(*client_id))?;
        if !order.status.is_terminal() {
            order.status = status;
            if let Some((code, _)) = reject {
                order.reject_code = Some(code);
            }
        }
        order.updated = order.updated.max(ts_local);
        save_order(&tx, &order)?;
        let detail = reject.map(|(code, msg)| format!("{code}: {msg}"));
        insert_event(&tx, &order, kind, detail.as_deref(), None, ts_local)?;
        tx.commit().map_err(sql("set status"))
    }

    /// Every order that is not terminal (including `PendingNew`, `PendingCancel` and
    /// `Unknown`), oldest first.
    pub fn open_orders(&self) -> Result<Vec<JournalOrder>, JournalError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE {OPEN_STATUSES_SQL} \
                 ORDER BY created_ns, client_id"
            ))
            .map_err(sql("open orders"))?;
        let rows = stmt.query_map([], raw_order).map_err(sql("open orders"))?;
        rows.map(|r| r.map_err(sql("open orders")).and_then(RawOrder::decode)).collect()
    }

    /// Every order ever journaled, oldest first (audits: each one against the exchange).
    pub fn all_orders(&self) -> Result<Vec<JournalOrder>, JournalError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ORDER_COLUMNS} FROM orders ORDER BY created_ns, client_id"
            ))
            .map_err(sql("all orders"))?;
        let rows = stmt.query_map([], raw_order).map_err(sql("all orders"))?;
        rows.map(|r| r.map_err(sql("all orders")).and_then(RawOrder::decode)).collect()
    }

    /// One order by client id.
    pub fn order(&self, client_id: &ClientOrderId) -> Result<Option<JournalOrder>, JournalError> {
        load_order(&self.conn, client_id)
    }

    /// One order by its exchange order id (`myTrades` names orders only by that).
    pub fn order_by_exchange_id(
        &self,
        symbol: &Symbol,
        order_id: OrderId,
    ) -> Result<Option<JournalOrder>, JournalError> {
        let id = to_i64("order id", order_id.0)?;
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE symbol = ?1 AND order_id = ?2"
            ))
            .map_err(sql("load order by exchange id"))?;
        stmt.query_row(params![symbol.as_str(), id], raw_order)
            .optional()
            .map_err(sql("load order by exchange id"))?
            .map(RawOrder::decode)
            .transpose()
    }

    /// Number of orders ever journaled.
    pub fn order_count(&self) -> Result<u64, JournalError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM orders", [], |r| r.get(0))
            .map_err(sql("count orders"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The audit trail of one order, oldest first.
    pub fn order_events(&self, client_id: &ClientOrderId) -> Result<Vec<OrderEvent>, JournalError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, client_id, kind, status, cum_qty, detail, ts_local_ns \
                 FROM order_events WHERE client_id = ?1 ORDER BY seq",
            )
            .map_err(sql("order events"))?;
        let rows = stmt
            .query_map([client_id.as_str()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, i64>(6)?,
                ))
            })
            .map_err(sql("order events"))?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, cid, kind, status, cum_qty, detail, ts) = row.map_err(sql("order events"))?;
            out.push(OrderEvent {
                seq,
                client_id: decode("order_events", "client_id", &cid, "a client order id")?,
                kind: EventKind::parse(&kind).ok_or_else(|| JournalError::Corrupt {
                    table: "order_events",
                    column: "kind",
                    value: kind.clone(),
                    expected: "an event kind",
                })?,
                status: parse_status("order_events", &status)?,
                cum_qty: decode("order_events", "cum_qty", &cum_qty, "a decimal quantity")?,
                detail,
                ts_local: UnixNanos(u64::try_from(ts).unwrap_or(0)),
            });
        }
        Ok(out)
    }

    /// Every fill ever journaled, in the order they were recorded.
    pub fn all_fills(&self) -> Result<Vec<FillRecord>, JournalError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT symbol, trade_id, client_id, side, price, qty, commission, \
                 commission_asset, is_maker, ts_exchange_ns FROM fills ORDER BY seq",
            )
            .map_err(sql("all fills"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(RawFill {
                    symbol: r.get(0)?,
                    trade_id: r.get(1)?,
                    client_id: r.get(2)?,
                    side: r.get(3)?,
                    price: r.get(4)?,
                    qty: r.get(5)?,
                    commission: r.get(6)?,
                    commission_asset: r.get(7)?,
                    is_maker: r.get(8)?,
                    ts_exchange_ns: r.get(9)?,
                })
            })
            .map_err(sql("all fills"))?;
        rows.map(|r| r.map_err(sql("all fills")).and_then(RawFill::decode)).collect()
    }

    /// The highest trade id journaled on `symbol` (`None` without fills): catching up after an
    /// interruption asks the exchange for the account's trades after it.
    pub fn last_trade_id(&self, symbol: &Symbol) -> Result<Option<TradeId>, JournalError> {
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT MAX(trade_id) FROM fills WHERE symbol = ?1",
                [symbol.as_str()],
                |r| r.get(0),
            )
            .map_err(sql("last trade id"))?;
        id.map(|v| {
            u64::try_from(v).map(TradeId).map_err(|_| JournalError::Corrupt {
                table: "fills",
                column: "trade_id",
                value: v.to_string(),
                expected: "a non-negative trade id",
            })
        })
        .transpose()
    }

    /// Net position per symbol from this journal's fills (symbols without fills are absent),
    /// sorted by symbol.
    pub fn positions(&self) -> Result<Vec<Position>, JournalError> {
        Ok(positions_from_fills(&self.all_fills()?))
    }

    /// Writes the current positions into `position_snapshots` (audit: what reconciliation or a
    /// shutdown saw), one transaction.
    pub fn snapshot_positions(&mut self, source: &str, ts: UnixNanos) -> Result<(), JournalError> {
        let positions = self.positions()?;
        let ts = to_i64("timestamp", ts.0)?;
        let tx = self.begin()?;
        for p in positions {
            tx.execute(
                "INSERT INTO position_snapshots (symbol, base, quote, fills, source, ts_ns) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    p.symbol.as_str(),
                    p.base.to_string(),
                    p.quote.to_string(),
                    i64::try_from(p.fills).unwrap_or(i64::MAX),
                    source,
                    ts
                ],
            )
            .map_err(sql("snapshot positions"))?;
        }
        tx.commit().map_err(sql("snapshot positions"))
    }

    /// Runs SQLite's `PRAGMA integrity_check` and foreign-key check; `Ok(vec![])` when clean.
    pub fn integrity_problems(&self) -> Result<Vec<String>, JournalError> {
        let mut problems = Vec::new();
        let mut stmt =
            self.conn.prepare("PRAGMA integrity_check").map_err(sql("integrity check"))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(sql("integrity check"))?;
        for row in rows {
            let line = row.map_err(sql("integrity check"))?;
            if line != "ok" {
                problems.push(line);
            }
        }
        let mut stmt =
            self.conn.prepare("PRAGMA foreign_key_check").map_err(sql("foreign key check"))?;
        let rows = stmt
            .query_map([], |r| Ok(format!("foreign key violation in {}", r.get::<_, String>(0)?)))
            .map_err(sql("foreign key check"))?;
        for row in rows {
            problems.push(row.map_err(sql("foreign key check"))?);
        }
        Ok(problems)
    }

    fn begin(&mut self) -> Result<rusqlite::Transaction<'_>, JournalError> {
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql("begin transaction"))
    }
}

/// Net positions from a list of fills (also used by reconciliation on journal + new fills).
pub fn positions_from_fills(fills: &[FillRecord]) -> Vec<Position> {
    let mut out: Vec<Position> = Vec::new();
    for f in fills {
        let idx = match out.iter().position(|p| p.symbol == f.symbol) {
            Some(i) => i,
            None => {
                out.push(Position {
                    symbol: f.symbol,
                    base: Qty::ZERO,
                    quote: Notional::ZERO,
                    fills: 0,
                });
                out.len() - 1
            }
        };
        let p = &mut out[idx];
        let notional = Notional::of(f.fill.price, f.fill.qty);
        match f.side {
            Side::Buy => {
                p.base = p.base.saturating_add(f.fill.qty);
                p.quote = p.quote.saturating_sub(notional);
            }
            Side::Sell => {
                p.base = p.base.saturating_sub(f.fill.qty);
                p.quote = p.quote.saturating_add(notional);
            }
        }
        p.fills += 1;
    }
    out.sort_by(|a, b| a.symbol.as_str().cmp(b.symbol.as_str()));
    out
}

fn lock_error(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

fn to_i64(what: &'static str, value: u64) -> Result<i64, JournalError> {
    i64::try_from(value).map_err(|_| JournalError::OutOfRange { what, value })
}

fn status_str(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::PendingNew => "PENDING_NEW",
        OrderStatus::New => "NEW",
        OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
        OrderStatus::Filled => "FILLED",
        OrderStatus::PendingCancel => "PENDING_CANCEL",
        OrderStatus::Canceled => "CANCELED",
        OrderStatus::Rejected => "REJECTED",
        OrderStatus::Expired => "EXPIRED",
        OrderStatus::Unknown => "UNKNOWN",
    }
}

fn parse_status(table: &'static str, s: &str) -> Result<OrderStatus, JournalError> {
    Ok(match s {
        "PENDING_NEW" => OrderStatus::PendingNew,
        "NEW" => OrderStatus::New,
        "PARTIALLY_FILLED" => OrderStatus::PartiallyFilled,
        "FILLED" => OrderStatus::Filled,
        "PENDING_CANCEL" => OrderStatus::PendingCancel,
        "CANCELED" => OrderStatus::Canceled,
        "REJECTED" => OrderStatus::Rejected,
        "EXPIRED" => OrderStatus::Expired,
        "UNKNOWN" => OrderStatus::Unknown,
        other => {
            return Err(JournalError::Corrupt {
                table,
                column: "status",
                value: other.to_owned(),
                expected: "an order status",
            })
        }
    })
}

fn parse_side(table: &'static str, s: &str) -> Result<Side, JournalError> {
    match s {
        "BUY" => Ok(Side::Buy),
        "SELL" => Ok(Side::Sell),
        other => Err(JournalError::Corrupt {
            table,
            column: "side",
            value: other.to_owned(),
            expected: "BUY or SELL",
        }),
    }
}

fn decode<T: FromStr>(
    table: &'static str,
    column: &'static str,
    text: &str,
    expected: &'static str,
) -> Result<T, JournalError> {
    text.parse().map_err(|_| JournalError::Corrupt {
        table,
        column,
        value: text.to_owned(),
        expected,
    })
}

fn nanos(v: i64) -> UnixNanos {
    UnixNanos(u64::try_from(v).unwrap_or(0))
}

/// An `orders` row as stored, before decoding.
struct RawOrder {
    client_id: String,
    symbol: String,
    side: String,
    kind: String,
    tif: Option<String>,
    price: Option<String>,
    qty: String,
    status: String,
    order_id: Option<i64>,
    cum_qty: String,
    cum_quote: String,
    reject_code: Option<i32>,
    created_ns: i64,
    updated_ns: i64,
}

fn raw_order(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawOrder> {
    Ok(RawOrder {
        client_id: r.get(0)?,
        symbol: r.get(1)?,
        side: r.get(2)?,
        kind: r.get(3)?,
        tif: r.get(4)?,
        price: r.get(5)?,
        qty: r.get(6)?,
        status: r.get(7)?,
        order_id: r.get(8)?,
        cum_qty: r.get(9)?,
        cum_quote: r.get(10)?,
        reject_code: r.get(11)?,
        created_ns: r.get(12)?,
        updated_ns: r.get(13)?,
    })
}

impl RawOrder {
    fn decode(self) -> Result<JournalOrder, JournalError> {
        const T: &str = "orders";
        let kind = match self.kind.as_str() {
            "LIMIT" => OrderType::Limit,
            "LIMIT_MAKER" => OrderType::LimitMaker,
            "MARKET" => OrderType::Market,
            other => {
                return Err(JournalError::Corrupt {
                    table: T,
                    column: "type",
                    value: other.to_owned(),
                    expected: "LIMIT, LIMIT_MAKER or MARKET",
                })
            }
        };
        let time_in_force = match self.tif.as_deref() {
            None => None,
            Some("GTC") => Some(TimeInForce::Gtc),
            Some("IOC") => Some(TimeInForce::Ioc),
            Some("FOK") => Some(TimeInForce::Fok),
            Some(other) => {
                return Err(JournalError::Corrupt {
                    table: T,
                    column: "tif",
                    value: other.to_owned(),
                    expected: "GTC, IOC or FOK",
                })
            }
        };
        Ok(JournalOrder {
            client_id: decode(T, "client_id", &self.client_id, "a client order id")?,
            symbol: decode(T, "symbol", &self.symbol, "a symbol")?,
            side: parse_side(T, &self.side)?,
            kind,
            time_in_force,
            price: self
                .price
                .as_deref()
                .map(|p| decode(T, "price", p, "a decimal price"))
                .transpose()?,
            qty: decode(T, "qty", &self.qty, "a decimal quantity")?,
            status: parse_status(T, &self.status)?,
            order_id: self.order_id.map(|id| OrderId(u64::try_from(id).unwrap_or(0))),
            cum_qty: decode(T, "cum_qty", &self.cum_qty, "a decimal quantity")?,
            cum_quote: decode(T, "cum_quote", &self.cum_quote, "a decimal amount")?,
            reject_code: self.reject_code,
            created: nanos(self.created_ns),
            updated: nanos(self.updated_ns),
        })
    }
}

/// A `fills` row as stored, before decoding.
struct RawFill {
    symbol: String,
    trade_id: i64,
    client_id: String,
    side: String,
    price: String,
    qty: String,
    commission: String,
    commission_asset: Option<String>,
    is_maker: bool,
    ts_exchange_ns: i64,
}

impl RawFill {
    fn decode(self) -> Result<FillRecord, JournalError> {
        const T: &str = "fills";
        Ok(FillRecord {
            symbol: decode(T, "symbol", &self.symbol, "a symbol")?,
            client_id: decode(T, "client_id", &self.client_id, "a client order id")?,
            side: parse_side(T, &self.side)?,
            fill: Fill {
                trade_id: TradeId(u64::try_from(self.trade_id).unwrap_or(0)),
                price: decode(T, "price", &self.price, "a decimal price")?,
                qty: decode(T, "qty", &self.qty, "a decimal quantity")?,
                commission: decode(T, "commission", &self.commission, "a decimal amount")?,
                commission_asset: self
                    .commission_asset
                    .as_deref()
                    .map(|a| decode::<Asset>(T, "commission_asset", a, "an asset code"))
                    .transpose()?,
                is_maker: self.is_maker,
                ts_exchange: nanos(self.ts_exchange_ns),
            },
        })
    }
}

fn load_order(
    conn: &Connection,
    client_id: &ClientOrderId,
) -> Result<Option<JournalOrder>, JournalError> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE client_id = ?1"))
        .map_err(sql("load order"))?;
    stmt.query_row([client_id.as_str()], raw_order)
        .optional()
        .map_err(sql("load order"))?
        .map(RawOrder::decode)
        .transpose()
}

fn save_order(conn: &Connection, o: &JournalOrder) -> Result<(), JournalError> {
    let order_id = o.order_id.map(|id| to_i64("order id", id.0)).transpose()?;
    let mut stmt = conn
        .prepare_cached(
            "UPDATE orders SET status = ?2, order_id = ?3, cum_qty = ?4, cum_quote = ?5, \
             reject_code = ?6, updated_ns = ?7 WHERE client_id = ?1",
        )
        .map_err(sql("save order"))?;
    stmt.execute(params![
        o.client_id.as_str(),
        status_str(o.status),
        order_id,
        o.cum_qty.to_string(),
        o.cum_quote.to_string(),
        o.reject_code,
        to_i64("timestamp", o.updated.0)?,
    ])
    .map_err(sql("save order"))?;
    Ok(())
}

fn insert_event(
    conn: &Connection,
    o: &JournalOrder,
    kind: EventKind,
    detail: Option<&str>,
    ts_exchange: Option<UnixNanos>,
    ts_local: UnixNanos,
) -> Result<(), JournalError> {
    let order_id = o.order_id.map(|id| to_i64("order id", id.0)).transpose()?;
    let ts_exchange = ts_exchange.map(|t| to_i64("timestamp", t.0)).transpose()?;
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO order_events (client_id, kind, status, order_id, cum_qty, cum_quote, \
             detail, ts_exchange_ns, ts_local_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(sql("insert event"))?;
    stmt.execute(params![
        o.client_id.as_str(),
        kind.as_str(),
        status_str(o.status),
        order_id,
        o.cum_qty.to_string(),
        o.cum_quote.to_string(),
        detail,
        ts_exchange,
        to_i64("timestamp", ts_local.0)?,
    ])
    .map_err(sql("insert event"))?;
    Ok(())
}

/// Inserts a fill unless `(symbol, trade_id)` is already there; true if inserted.
fn insert_fill(conn: &Connection, rec: &FillRecord) -> Result<bool, JournalError> {
    let f = &rec.fill;
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO fills (symbol, trade_id, client_id, side, price, qty, commission, \
             commission_asset, is_maker, ts_exchange_ns) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
             ON CONFLICT (symbol, trade_id) DO NOTHING",
        )
        .map_err(sql("insert fill"))?;
    let n = stmt
        .execute(params![
            rec.symbol.as_str(),
            to_i64("trade id", f.trade_id.0)?,
            rec.client_id.as_str(),
            rec.side.as_str(),
            f.price.to_string(),
            f.qty.to_string(),
            f.commission.to_string(),
            f.commission_asset.as_ref().map(Asset::as_str),
            f.is_maker,
            to_i64("timestamp", f.ts_exchange.0)?,
        ])
        .map_err(sql("insert fill"))?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::new(s).unwrap()
    }

    fn request(prefix: &ClientIdPrefix, seq: u64) -> OrderRequest {
        OrderRequest {
            symbol: sym("BTCUSDT"),
            client_id: prefix.make(seq),
            side: Side::Buy,
            kind: OrderType::Limit,
            time_in_force: Some(TimeInForce::Gtc),
            price: Some("42000.12345678".parse().unwrap()),
            qty: "0.00012345".parse().unwrap(),
            ts_decided: UnixNanos(1_700_000_000_000_000_000),
        }
    }

    fn fill(trade: u64, qty: &str) -> Fill {
        Fill {
            trade_id: TradeId(trade),
            price: "42000.12345678".parse().unwrap(),
            qty: qty.parse().unwrap(),
            commission: "0.0000000123456789".parse().unwrap(),
            commission_asset: Some(Asset::new("BNB").unwrap()),
            is_maker: true,
            ts_exchange: UnixNanos(1_700_000_000_500_000_000),
        }
    }

    fn update(req: &OrderRequest, status: OrderStatus, cum: &str, f: Option<Fill>) -> OrderUpdate {
        let cum_qty: Qty = cum.parse().unwrap();
        OrderUpdate {
            symbol: req.symbol,
            client_id: req.client_id,
            order_id: Some(OrderId(987_654_321)),
            side: req.side,
            status,
            orig_qty: req.qty,
            cum_qty,
            cum_quote: Notional::of(req.price.unwrap(), cum_qty),
            fill: f,
            ts_exchange: UnixNanos(1_700_000_000_400_000_000),
            ts_local: UnixNanos(1_700_000_000_600_000_000),
        }
    }

    #[test]
    fn prefix_makes_and_recognises_ids() {
        let p = ClientIdPrefix::new("kst1").unwrap();
        let id = p.make(42);
        assert_eq!(id.as_str(), "kst1-42");
        assert_eq!(p.seq_of(&id), Some(42));
        assert_eq!(p.make(u64::MAX).as_str().len(), 25);
        // TC0..: ids that are not ours.
        for other in ["kst-42", "kst1-", "kst1-4a", "kst12-42", "x_kst1-42", "kst1-42-1", "web_abc"]
        {
            assert!(!p.owns(&ClientOrderId::new(other).unwrap()), "{other}");
        }
        for bad in ["", "with-dash", "abcdefghijklm", "k_1", "ümlaut"] {
            assert!(ClientIdPrefix::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn page_cache_is_capped() {
        // SQLite's default cache (2,000 KiB) grew the bot's heap for its first half hour.
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let kib: i64 = j.conn.pragma_query_value(None, "cache_size", |r| r.get(0)).unwrap();
        assert_eq!(kib, -JOURNAL_CACHE_KIB);
    }

    #[test]
    fn order_round_trips_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let p = ClientIdPrefix::new("kst").unwrap();
        let seq = j.next_client_seq().unwrap();
        assert_eq!(seq, 1);
        let req = request(&p, seq);
        j.record_intent(&req).unwrap();
        let o = j.order(&req.client_id).unwrap().unwrap();
        assert_eq!(o.status, OrderStatus::PendingNew);
        assert_eq!(o.price, req.price);
        assert_eq!(o.qty, req.qty);
        assert_eq!(o.time_in_force, Some(TimeInForce::Gtc));
        assert_eq!(o.created, req.ts_decided);

        let r = j.record_ack(&update(&req, OrderStatus::New, "0", None)).unwrap();
        assert_eq!(r, Recorded { status: OrderStatus::New, fill_new: false });
        let r = j
            .record_update(&update(
                &req,
                OrderStatus::PartiallyFilled,
                "0.0001",
                Some(fill(7, "0.0001")),
            ))
            .unwrap();
        assert_eq!(r, Recorded { status: OrderStatus::PartiallyFilled, fill_new: true });

        let o = j.order(&req.client_id).unwrap().unwrap();
        assert_eq!(o.order_id, Some(OrderId(987_654_321)));
        assert_eq!(o.cum_qty, "0.0001".parse().unwrap());
        assert_eq!(o.cum_quote, Notional::of(req.price.unwrap(), "0.0001".parse().unwrap()));
        let fills = j.all_fills().unwrap();
        assert_eq!(fills.len(), 1);
        assert_eq!(fills[0].fill, fill(7, "0.0001"));
        assert_eq!(j.open_orders().unwrap(), vec![o]);

        let kinds: Vec<EventKind> =
            j.order_events(&req.client_id).unwrap().iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Intent, EventKind::Ack, EventKind::Update]);
    }

    #[test]
    fn duplicate_fill_is_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let p = ClientIdPrefix::new("kst").unwrap();
        let req = request(&p, j.next_client_seq().unwrap());
        j.record_intent(&req).unwrap();
        let u = update(&req, OrderStatus::PartiallyFilled, "0.0001", Some(fill(7, "0.0001")));
        assert!(j.record_update(&u).unwrap().fill_new);
        // The same execution report again (e.g. replayed after a reconnect).
        assert!(!j.record_update(&u).unwrap().fill_new);
        // The same trade from myTrades at reconciliation.
        let rec = FillRecord {
            symbol: req.symbol,
            client_id: req.client_id,
            side: req.side,
            fill: fill(7, "0.0001"),
        };
        assert!(!j.record_fill(&rec).unwrap());
        assert!(j.record_fill(&FillRecord { fill: fill(8, "0.00002345"), ..rec }).unwrap());
        assert_eq!(j.all_fills().unwrap().len(), 2);
        let pos = j.positions().unwrap();
        assert_eq!(pos.len(), 1);
        assert_eq!(pos[0].base, "0.00012345".parse().unwrap());
        assert_eq!(pos[0].fills, 2);
    }

    #[test]
    fn terminal_status_never_reverts_and_cum_never_drops() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let p = ClientIdPrefix::new("kst").unwrap();
        let req = request(&p, j.next_client_seq().unwrap());
        j.record_intent(&req).unwrap();
        j.record_update(&update(&req, OrderStatus::Filled, "0.00012345", None)).unwrap();
        // A late ack arrives after the fill report.
        let r = j.record_ack(&update(&req, OrderStatus::New, "0", None)).unwrap();
        assert_eq!(r.status, OrderStatus::Filled);
        j.mark_unknown(&req.client_id, UnixNanos(5)).unwrap();
        let o = j.order(&req.client_id).unwrap().unwrap();
        assert_eq!(o.status, OrderStatus::Filled);
        assert_eq!(o.cum_qty, req.qty);
        assert!(j.open_orders().unwrap().is_empty());
    }

    #[test]
    fn reject_unknown_and_cancel_states() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let p = ClientIdPrefix::new("kst").unwrap();
        let a = request(&p, j.next_client_seq().unwrap());
        let b = request(&p, j.next_client_seq().unwrap());
        j.record_intent(&a).unwrap();
        j.record_intent(&b).unwrap();
        j.record_reject(&a.client_id, -2010, "Account has insufficient balance", UnixNanos(9))
            .unwrap();
        j.mark_unknown(&b.client_id, UnixNanos(10)).unwrap();
        let ao = j.order(&a.client_id).unwrap().unwrap();
        assert_eq!((ao.status, ao.reject_code), (OrderStatus::Rejected, Some(-2010)));
        let ev = j.order_events(&a.client_id).unwrap();
        assert_eq!(
            ev.last().unwrap().detail.as_deref(),
            Some("-2010: Account has insufficient balance")
        );
        let open = j.open_orders().unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].status, OrderStatus::Unknown);
        j.record_cancel_requested(&b.client_id, UnixNanos(11)).unwrap();
        assert_eq!(j.order(&b.client_id).unwrap().unwrap().status, OrderStatus::PendingCancel);
        // Unknown ids and duplicates are errors, not silent no-ops.
        assert!(matches!(
            j.mark_unknown(&p.make(99), UnixNanos(1)),
            Err(JournalError::UnknownOrder(_))
        ));
        assert!(matches!(j.record_intent(&a), Err(JournalError::DuplicateClientId(_))));
        let orphan = FillRecord {
            symbol: a.symbol,
            client_id: p.make(99),
            side: Side::Buy,
            fill: fill(1, "1"),
        };
        assert!(matches!(j.record_fill(&orphan), Err(JournalError::UnknownOrder(_))));
    }

    #[test]
    fn reopen_keeps_everything_and_seq_continues() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let p = ClientIdPrefix::new("kst").unwrap();
        let req;
        {
            let mut j = Journal::open(&path).unwrap();
            req = request(&p, j.next_client_seq().unwrap());
            j.next_client_seq().unwrap();
            j.record_intent(&req).unwrap();
            j.record_update(&update(
                &req,
                OrderStatus::PartiallyFilled,
                "0.0001",
                Some(fill(7, "0.0001")),
            ))
            .unwrap();
            j.snapshot_positions("test", UnixNanos(1)).unwrap();
        }
        let mut j = Journal::open(&path).unwrap();
        assert_eq!(j.schema_version().unwrap(), 2);
        let by_exchange = j.order_by_exchange_id(&req.symbol, OrderId(987_654_321)).unwrap();
        assert_eq!(by_exchange.map(|o| o.client_id), Some(req.client_id));
        assert!(j.order_by_exchange_id(&req.symbol, OrderId(1)).unwrap().is_none());
        // Two numbers were handed out from a reserved block; after the restart numbering
        // continues above the whole block (never reusing any of it).
        assert_eq!(j.client_seq().unwrap(), CLIENT_SEQ_BLOCK);
        let first = j.next_client_seq().unwrap();
        assert_eq!(first, CLIENT_SEQ_BLOCK + 1);
        assert_eq!(j.client_seq().unwrap(), 2 * CLIENT_SEQ_BLOCK);
        // Ids numbered elsewhere (the engine's generator): one durable write per block.
        j.ensure_client_seq_above(5 * CLIENT_SEQ_BLOCK).unwrap();
        let ceiling = 6 * CLIENT_SEQ_BLOCK - 1;
        assert_eq!(j.client_seq().unwrap(), ceiling);
        for seen in 5 * CLIENT_SEQ_BLOCK + 1..=ceiling {
            j.ensure_client_seq_above(seen).unwrap();
        }
        assert_eq!(j.client_seq().unwrap(), ceiling);
        j.ensure_client_seq_above(5).unwrap();
        assert_eq!(j.next_client_seq().unwrap(), ceiling + 1);
        drop(j);
        let mut j = Journal::open(&path).unwrap();
        assert!(j.next_client_seq().unwrap() > ceiling + 1);
        assert_eq!(j.open_orders().unwrap().len(), 1);
        assert_eq!(j.all_fills().unwrap().len(), 1);
        assert_eq!(j.order_events(&req.client_id).unwrap().len(), 2);
        assert!(j.integrity_problems().unwrap().is_empty());
    }

    #[test]
    fn second_opener_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let _first = Journal::open(&path).unwrap();
        let err = Journal::open(&path).unwrap_err();
        assert!(matches!(err, JournalError::Locked { .. }), "{err:?}");
        assert!(err.to_string().contains("locked by another process"), "{err}");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        drop(Journal::open(&path).unwrap());
        {
            let c = Connection::open(&path).unwrap();
            c.execute("INSERT INTO schema_migrations (version) VALUES (99)", []).unwrap();
        }
        let err = Journal::open(&path).unwrap_err();
        assert!(matches!(err, JournalError::SchemaTooNew { found: 99, .. }), "{err:?}");
    }

    #[test]
    fn corrupt_value_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let p = ClientIdPrefix::new("kst").unwrap();
        {
            let mut j = Journal::open(&path).unwrap();
            j.record_intent(&request(&p, 1)).unwrap();
        }
        {
            let c = Connection::open(&path).unwrap();
            c.execute("UPDATE orders SET qty = '1e-3'", []).unwrap();
        }
        let j = Journal::open(&path).unwrap();
        let err = j.open_orders().unwrap_err();
        assert!(err.to_string().contains("orders.qty holds \"1e-3\""), "{err}");
    }
}
