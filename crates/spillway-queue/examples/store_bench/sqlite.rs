//! The queue's [`Store`] over SQLite, for the storage comparison only (never served).
//!
//! The same layout as the redb store so the engines are compared, not the schemas: records and
//! delivery states in two tables keyed by `(queue, seq)`, the visibility index as an index on
//! the states' `(queue, visible_at, seq)`, a per-queue counter. WAL with `synchronous=FULL`
//! makes a commit durable when it returns (the WAL is fsync'd on every commit); one writer
//! batch is one transaction, as with redb. Readers take a connection of their own from a small
//! pool (WAL lets them read while the writer commits).
//!
//! SQLite's integers are signed: queue ids (random u64) are stored bit-cast, which only changes
//! their order, and the store never orders by queue.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use spillway_queue::store::{
    Counts, DedupEntry, DeliveryState, Mutation, QueueId, Store, StoreError, StoredMessage,
    StoredQueue,
};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS queues (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    queue INTEGER NOT NULL, seq INTEGER NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (queue, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS states (
    queue INTEGER NOT NULL, seq INTEGER NOT NULL, visible_at INTEGER NOT NULL,
    received INTEGER NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (queue, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS visibility ON states (queue, visible_at, seq);
CREATE TABLE IF NOT EXISTS counts (queue INTEGER PRIMARY KEY, total INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dedup (
    queue INTEGER NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (queue, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
";

pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::new(e)
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(value).map_err(err)
}

fn decode<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(err)
}

fn q(id: QueueId) -> i64 {
    id as i64
}

/// Epoch milliseconds and sequences fit in an i64; the clamp only matters for `u64::MAX` bounds.
fn n(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    Ok(conn)
}

impl SqliteStore {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(err)?;
        let path = dir.join("queues.sqlite");
        let writer = connect(&path)?;
        writer.execute_batch(SCHEMA).map_err(err)?;
        Ok(SqliteStore {
            path,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` on a pooled read connection, returning it to the pool afterwards.
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => connect(&self.path)?,
        };
        let result = f(&conn);
        self.readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        result
    }
}

fn bump(t: &Transaction<'_>, queue: QueueId, delta: i64) -> Result<(), StoreError> {
    t.prepare_cached(
        "INSERT INTO counts (queue, total) VALUES (?1, max(?2, 0))
         ON CONFLICT (queue) DO UPDATE SET total = max(total + ?2, 0)",
    )
    .map_err(err)?
    .execute(params![q(queue), delta])
    .map_err(err)?;
    Ok(())
}

fn put_state(
    t: &Transaction<'_>,
    queue: QueueId,
    seq: u64,
    state: &DeliveryState,
) -> Result<(), StoreError> {
    t.prepare_cached(
        "INSERT OR REPLACE INTO states (queue, seq, visible_at, received, value)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .map_err(err)?
    .execute(params![
        q(queue),
        n(seq),
        n(state.visible_at),
        i64::from(state.receive_count > 0),
        encode(state)?
    ])
    .map_err(err)?;
    Ok(())
}

fn state_exists(t: &Transaction<'_>, queue: QueueId, seq: u64) -> Result<bool, StoreError> {
    Ok(
        t.prepare_cached("SELECT 1 FROM states WHERE queue = ?1 AND seq = ?2")
            .map_err(err)?
            .query_row(params![q(queue), n(seq)], |_| Ok(()))
            .optional()
            .map_err(err)?
            .is_some(),
    )
}

/// Whether a conditional change applies: no condition, or the stored state's receipt nonce is
/// the expected one (a missing state is left to the change itself, which then does nothing).
fn nonce_matches(
    t: &Transaction<'_>,
    queue: QueueId,
    seq: u64,
    if_nonce: Option<u64>,
) -> Result<bool, StoreError> {
    let Some(expected) = if_nonce else {
        return Ok(true);
    };
    let value: Option<Vec<u8>> = t
        .prepare_cached("SELECT value FROM states WHERE queue = ?1 AND seq = ?2")
        .map_err(err)?
        .query_row(params![q(queue), n(seq)], |row| row.get(0))
        .optional()
        .map_err(err)?;
    match value {
        Some(bytes) => Ok(decode::<DeliveryState>(&bytes)?.receipt_nonce == expected),
        None => Ok(true),
    }
}

fn apply_one(t: &Transaction<'_>, mutation: &Mutation) -> Result<(), StoreError> {
    match mutation {
        Mutation::PutQueue(queue) => {
            t.prepare_cached("INSERT OR REPLACE INTO queues (name, value) VALUES (?1, ?2)")
                .map_err(err)?
                .execute(params![queue.name, encode(queue)?])
                .map_err(err)?;
        }
        Mutation::DeleteQueue { id, name } => {
            let current: Option<Vec<u8>> = t
                .query_row("SELECT value FROM queues WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(err)?;
            if let Some(bytes) = current
                && decode::<StoredQueue>(&bytes)?.id == *id
            {
                t.execute("DELETE FROM queues WHERE name = ?1", [name])
                    .map_err(err)?;
            }
            for table in ["records", "states", "counts", "dedup"] {
                t.execute(&format!("DELETE FROM {table} WHERE queue = ?1"), [q(*id)])
                    .map_err(err)?;
            }
        }
        Mutation::PutMessage {
            queue,
            seq,
            record,
            state,
        } => {
            if !state_exists(t, *queue, *seq)? {
                bump(t, *queue, 1)?;
            }
            put_state(t, *queue, *seq, state)?;
            t.prepare_cached(
                "INSERT OR REPLACE INTO records (queue, seq, value) VALUES (?1, ?2, ?3)",
            )
            .map_err(err)?
            .execute(params![q(*queue), n(*seq), encode(record)?])
            .map_err(err)?;
        }
        Mutation::SetState {
            queue,
            seq,
            state,
            if_nonce,
        } => {
            if !nonce_matches(t, *queue, *seq, *if_nonce)? {
                return Ok(());
            }
            t.prepare_cached(
                "UPDATE states SET visible_at = ?3, received = ?4, value = ?5
                 WHERE queue = ?1 AND seq = ?2",
            )
            .map_err(err)?
            .execute(params![
                q(*queue),
                n(*seq),
                n(state.visible_at),
                i64::from(state.receive_count > 0),
                encode(state)?
            ])
            .map_err(err)?;
        }
        Mutation::DeleteMessage {
            queue,
            seq,
            if_nonce,
        } => {
            if !nonce_matches(t, *queue, *seq, *if_nonce)? {
                return Ok(());
            }
            let gone = t
                .prepare_cached("DELETE FROM states WHERE queue = ?1 AND seq = ?2")
                .map_err(err)?
                .execute(params![q(*queue), n(*seq)])
                .map_err(err)?;
            if gone > 0 {
                t.prepare_cached("DELETE FROM records WHERE queue = ?1 AND seq = ?2")
                    .map_err(err)?
                    .execute(params![q(*queue), n(*seq)])
                    .map_err(err)?;
                bump(t, *queue, -1)?;
            }
        }
        Mutation::Purge { queue, below_seq } => {
            let gone = t
                .execute(
                    "DELETE FROM states WHERE queue = ?1 AND seq < ?2",
                    params![q(*queue), n(*below_seq)],
                )
                .map_err(err)?;
            t.execute(
                "DELETE FROM records WHERE queue = ?1 AND seq < ?2",
                params![q(*queue), n(*below_seq)],
            )
            .map_err(err)?;
            bump(t, *queue, -i64::try_from(gone).unwrap_or(i64::MAX))?;
        }
        Mutation::PutDedup { queue, key, entry } => {
            t.prepare_cached(
                "INSERT OR REPLACE INTO dedup (queue, key, value) VALUES (?1, ?2, ?3)",
            )
            .map_err(err)?
            .execute(params![q(*queue), key, encode(entry)?])
            .map_err(err)?;
        }
        Mutation::DeleteDedup { queue, key } => {
            t.prepare_cached("DELETE FROM dedup WHERE queue = ?1 AND key = ?2")
                .map_err(err)?
                .execute(params![q(*queue), key])
                .map_err(err)?;
        }
        Mutation::PutMeta { key, value } => {
            t.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")
                .map_err(err)?
                .execute(params![key, value])
                .map_err(err)?;
        }
        Mutation::DeleteMeta { key } => {
            t.prepare_cached("DELETE FROM meta WHERE key = ?1")
                .map_err(err)?
                .execute(params![key])
                .map_err(err)?;
        }
    }
    Ok(())
}

impl Store for SqliteStore {
    fn apply(&self, mutations: &[Mutation]) -> Result<(), StoreError> {
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let t = conn.transaction().map_err(err)?;
        for mutation in mutations {
            apply_one(&t, mutation)?;
        }
        // WAL + synchronous=FULL: the WAL is fsync'd before commit returns.
        t.commit().map_err(err)
    }

    fn queues(&self) -> Result<Vec<StoredQueue>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT value FROM queues").map_err(err)?;
            let rows = stmt
                .query_map([], |r| r.get::<_, Vec<u8>>(0))
                .map_err(err)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(decode(&row.map_err(err)?)?);
            }
            Ok(out)
        })
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|c| {
            c.prepare_cached("SELECT value FROM meta WHERE key = ?1")
                .map_err(err)?
                .query_row([key], |r| r.get(0))
                .optional()
                .map_err(err)
        })
    }

    fn max_seq(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            let max: Option<i64> = c
                .query_row("SELECT max(seq) FROM states", [], |r| r.get(0))
                .map_err(err)?;
            Ok(max.map_or(0, |m| m.max(0) as u64))
        })
    }

    fn counts(&self, queue: QueueId, now: u64) -> Result<Counts, StoreError> {
        self.read(|c| {
            let total: Option<i64> = c
                .prepare_cached("SELECT total FROM counts WHERE queue = ?1")
                .map_err(err)?
                .query_row([q(queue)], |r| r.get(0))
                .optional()
                .map_err(err)?;
            let (in_flight, delayed): (i64, i64) = c
                .prepare_cached(
                    "SELECT coalesce(sum(received), 0), coalesce(sum(1 - received), 0)
                     FROM states WHERE queue = ?1 AND visible_at > ?2",
                )
                .map_err(err)?
                .query_row(params![q(queue), n(now)], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(err)?;
            Ok(Counts {
                total: total.unwrap_or(0).max(0) as u64,
                in_flight: in_flight.max(0) as u64,
                delayed: delayed.max(0) as u64,
            })
        })
    }

    fn visible(&self, queue: QueueId, now: u64, limit: usize) -> Result<Vec<u64>, StoreError> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT seq FROM states INDEXED BY visibility
                     WHERE queue = ?1 AND visible_at <= ?2
                     ORDER BY visible_at, seq LIMIT ?3",
                )
                .map_err(err)?;
            let rows = stmt
                .query_map(
                    params![q(queue), n(now), i64::try_from(limit).unwrap_or(i64::MAX)],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(err)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row.map_err(err)?.max(0) as u64);
            }
            Ok(out)
        })
    }

    fn next_visible_after(&self, queue: QueueId, now: u64) -> Result<Option<u64>, StoreError> {
        self.read(|c| {
            let next: Option<i64> = c
                .prepare_cached(
                    "SELECT min(visible_at) FROM states WHERE queue = ?1 AND visible_at > ?2",
                )
                .map_err(err)?
                .query_row(params![q(queue), n(now)], |r| r.get(0))
                .map_err(err)?;
            Ok(next.map(|v| v.max(0) as u64))
        })
    }

    fn states_from(
        &self,
        queue: QueueId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, DeliveryState)>, StoreError> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT seq, value FROM states WHERE queue = ?1 AND seq >= ?2
                     ORDER BY seq LIMIT ?3",
                )
                .map_err(err)?;
            let rows = stmt
                .query_map(
                    params![
                        q(queue),
                        n(from_seq),
                        i64::try_from(limit).unwrap_or(i64::MAX)
                    ],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
                )
                .map_err(err)?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, bytes) = row.map_err(err)?;
                out.push((seq.max(0) as u64, decode(&bytes)?));
            }
            Ok(out)
        })
    }

    fn message(&self, queue: QueueId, seq: u64) -> Result<Option<StoredMessage>, StoreError> {
        self.read(|c| {
            let row: Option<(Vec<u8>, Vec<u8>)> = c
                .prepare_cached(
                    "SELECT s.value, r.value FROM states s JOIN records r
                     ON r.queue = s.queue AND r.seq = s.seq
                     WHERE s.queue = ?1 AND s.seq = ?2",
                )
                .map_err(err)?
                .query_row(params![q(queue), n(seq)], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(err)?;
            match row {
                Some((state, record)) => Ok(Some(StoredMessage {
                    seq,
                    record: decode(&record)?,
                    state: decode(&state)?,
                })),
                None => Ok(None),
            }
        })
    }

    fn state(&self, queue: QueueId, seq: u64) -> Result<Option<DeliveryState>, StoreError> {
        self.read(|c| {
            let bytes: Option<Vec<u8>> = c
                .prepare_cached("SELECT value FROM states WHERE queue = ?1 AND seq = ?2")
                .map_err(err)?
                .query_row(params![q(queue), n(seq)], |r| r.get(0))
                .optional()
                .map_err(err)?;
            bytes.map(|b| decode(&b)).transpose()
        })
    }

    fn dedup_entries(&self, queue: QueueId) -> Result<Vec<(String, DedupEntry)>, StoreError> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached("SELECT key, value FROM dedup WHERE queue = ?1")
                .map_err(err)?;
            let rows = stmt
                .query_map([q(queue)], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .map_err(err)?;
            let mut out = Vec::new();
            for row in rows {
                let (key, bytes) = row.map_err(err)?;
                out.push((key, decode(&bytes)?));
            }
            Ok(out)
        })
    }
}
