//! The embedded default: one redb file, `queues.redb`, in the queue directory.
//!
//! Why redb: it is pure Rust (no C build), its commits are durable by default
//! (`Durability::Immediate`: a checksummed commit with one fsync), it has ordered tuple keys
//! for the visibility index, and a failed write (a full disk) is an error, never a panic.
//! Measured against SQLite (WAL, synchronous=FULL) and fjall over this same trait
//! (bench/queue-store.sh, docs/BENCHMARKS.md "Queue storage"): SQLite ties within noise,
//! fjall receives 7-14x slower (tombstones at the head of the visibility index), so redb
//! stays. Its page cache defaults to 1 GiB, which is what bounds this store's memory.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction};

use super::{
    Counts, DedupEntry, DeliveryState, Mutation, QueueId, Store, StoreError, StoredMessage,
    StoredQueue, decode, encode,
};

const QUEUES: TableDefinition<&str, &[u8]> = TableDefinition::new("queues");
const MESSAGES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("messages");
const STATES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("states");
/// `(queue, visible_at, seq)` → 1 when the message was received before (so, when in the
/// future, in flight) and 0 when it never was (so, when in the future, delayed).
const VISIBILITY: TableDefinition<(u64, u64, u64), u8> = TableDefinition::new("visibility");
const COUNTS: TableDefinition<u64, u64> = TableDefinition::new("counts");
const DEDUP: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("dedup");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

pub struct RedbStore {
    path: std::path::PathBuf,
    /// `None` once closed (redb holds a lock on its file while a `Database` lives, and a stack
    /// restarted in the same process must be able to open it again), or after a failed write
    /// until the next call reopens it.
    db: std::sync::RwLock<Option<Database>>,
    /// Set by [`Store::close`]: a closed store is never reopened.
    closed: std::sync::atomic::AtomicBool,
}

/// A read lock on the open database.
struct Open<'a>(std::sync::RwLockReadGuard<'a, Option<Database>>);

impl std::ops::Deref for Open<'_> {
    type Target = Database;
    fn deref(&self) -> &Database {
        match self.0.as_ref() {
            Some(db) => db,
            None => unreachable!("an Open is only made over an open database"),
        }
    }
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::new(e)
}

impl RedbStore {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(err)?;
        let path = dir.join("queues.redb");
        let db = open_database(&path)?;
        Ok(RedbStore {
            path,
            db: std::sync::RwLock::new(Some(db)),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The open database, locked against `close` for as long as the guard lives. Callers keep
    /// it in a binding that outlives their transaction: a transaction holds redb's file lock
    /// past the `Database`'s drop, so `close` must wait for it, or a reopen right after a
    /// close (a stack restarted in the same process) finds the file still locked.
    fn db(&self) -> Result<Open<'_>, StoreError> {
        for _ in 0..2 {
            let guard = self.db.read().unwrap_or_else(|p| p.into_inner());
            if guard.is_some() {
                return Ok(Open(guard));
            }
            drop(guard);
            if self.closed.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
            self.reopen()?;
        }
        Err(StoreError::new("the queue store is closed"))
    }

    /// Opens the database again after a failed write. redb refuses every call after an I/O
    /// error (a full disk) until the `Database` is dropped and opened again, which also
    /// recovers its file to the last durable commit; while the disk stays full the open
    /// fails too, and the next call tries again.
    fn reopen(&self) -> Result<(), StoreError> {
        let mut guard = self.db.write().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() && !self.closed.load(std::sync::atomic::Ordering::Acquire) {
            *guard = Some(open_database(&self.path)?);
            tracing::info!(path = %self.path.display(), "the queue store is open again after a failed write");
        }
        Ok(())
    }

    fn try_apply(&self, mutations: &[Mutation]) -> Result<(), StoreError> {
        let db = self.db()?;
        let txn = db.begin_write().map_err(err)?;
        {
            let mut tables = Tables::open(&txn)?;
            for mutation in mutations {
                apply_one(&mut tables, mutation)?;
            }
        }
        // Durability::Immediate (redb's default): durable when commit returns.
        txn.commit().map_err(err)
    }
}

/// Opens (creating or recovering) the file and creates every table once, so readers never
/// meet a missing one.
fn open_database(path: &Path) -> Result<Database, StoreError> {
    let db = Database::create(path).map_err(err)?;
    let txn = db.begin_write().map_err(err)?;
    {
        txn.open_table(QUEUES).map_err(err)?;
        txn.open_table(MESSAGES).map_err(err)?;
        txn.open_table(STATES).map_err(err)?;
        txn.open_table(VISIBILITY).map_err(err)?;
        txn.open_table(COUNTS).map_err(err)?;
        txn.open_table(DEDUP).map_err(err)?;
        txn.open_table(META).map_err(err)?;
    }
    txn.commit().map_err(err)?;
    Ok(db)
}

fn kind(state: &DeliveryState) -> u8 {
    u8::from(state.receive_count > 0)
}

/// Every table of a write transaction, opened once per commit.
struct Tables<'txn> {
    queues: Table<'txn, &'static str, &'static [u8]>,
    messages: Table<'txn, (u64, u64), &'static [u8]>,
    states: Table<'txn, (u64, u64), &'static [u8]>,
    visibility: Table<'txn, (u64, u64, u64), u8>,
    counts: Table<'txn, u64, u64>,
    dedup: Table<'txn, (u64, &'static str), &'static [u8]>,
    meta: Table<'txn, &'static str, &'static [u8]>,
}

impl<'txn> Tables<'txn> {
    fn open(txn: &'txn WriteTransaction) -> Result<Self, StoreError> {
        Ok(Tables {
            queues: txn.open_table(QUEUES).map_err(err)?,
            messages: txn.open_table(MESSAGES).map_err(err)?,
            states: txn.open_table(STATES).map_err(err)?,
            visibility: txn.open_table(VISIBILITY).map_err(err)?,
            counts: txn.open_table(COUNTS).map_err(err)?,
            dedup: txn.open_table(DEDUP).map_err(err)?,
            meta: txn.open_table(META).map_err(err)?,
        })
    }

    fn bump(&mut self, queue: QueueId, delta: i64) -> Result<(), StoreError> {
        let current = self
            .counts
            .get(queue)
            .map_err(err)?
            .map_or(0, |v| v.value());
        self.counts
            .insert(queue, current.saturating_add_signed(delta))
            .map_err(err)?;
        Ok(())
    }
}

fn apply_one(t: &mut Tables<'_>, mutation: &Mutation) -> Result<(), StoreError> {
    match mutation {
        Mutation::PutQueue(queue) => {
            t.queues
                .insert(queue.name.as_str(), encode(queue)?.as_slice())
                .map_err(err)?;
        }
        Mutation::DeleteQueue { id, name } => {
            // Only remove the record if it is still this incarnation of the name.
            let same = match t.queues.get(name.as_str()).map_err(err)? {
                Some(v) => decode::<StoredQueue>(v.value())?.id == *id,
                None => false,
            };
            if same {
                t.queues.remove(name.as_str()).map_err(err)?;
            }
            t.messages
                .retain_in((*id, 0)..=(*id, u64::MAX), |_, _| false)
                .map_err(err)?;
            t.states
                .retain_in((*id, 0)..=(*id, u64::MAX), |_, _| false)
                .map_err(err)?;
            t.visibility
                .retain_in((*id, 0, 0)..=(*id, u64::MAX, u64::MAX), |_, _| false)
                .map_err(err)?;
            t.counts.remove(*id).map_err(err)?;
            t.dedup.retain(|(q, _), _| q != *id).map_err(err)?;
        }
        Mutation::PutMessage {
            queue,
            seq,
            record,
            state,
        } => {
            let old: Option<DeliveryState> = match t
                .states
                .insert((*queue, *seq), encode(state)?.as_slice())
                .map_err(err)?
            {
                Some(old) => Some(decode(old.value())?),
                None => None,
            };
            match old {
                Some(old) => {
                    t.visibility
                        .remove((*queue, old.visible_at, *seq))
                        .map_err(err)?;
                }
                None => t.bump(*queue, 1)?,
            }
            t.messages
                .insert((*queue, *seq), encode(record)?.as_slice())
                .map_err(err)?;
            t.visibility
                .insert((*queue, state.visible_at, *seq), kind(state))
                .map_err(err)?;
        }
        Mutation::SetState {
            queue,
            seq,
            state,
            if_nonce,
        } => {
            let old = match t.states.get((*queue, *seq)).map_err(err)? {
                Some(old) => decode::<DeliveryState>(old.value())?,
                None => return Ok(()),
            };
            if if_nonce.is_some_and(|n| n != old.receipt_nonce) {
                return Ok(());
            }
            t.visibility
                .remove((*queue, old.visible_at, *seq))
                .map_err(err)?;
            t.states
                .insert((*queue, *seq), encode(state)?.as_slice())
                .map_err(err)?;
            t.visibility
                .insert((*queue, state.visible_at, *seq), kind(state))
                .map_err(err)?;
        }
        Mutation::DeleteMessage {
            queue,
            seq,
            if_nonce,
        } => {
            let old = match t.states.get((*queue, *seq)).map_err(err)? {
                Some(old) => decode::<DeliveryState>(old.value())?,
                None => return Ok(()),
            };
            if if_nonce.is_some_and(|n| n != old.receipt_nonce) {
                return Ok(());
            }
            t.states.remove((*queue, *seq)).map_err(err)?;
            t.visibility
                .remove((*queue, old.visible_at, *seq))
                .map_err(err)?;
            t.messages.remove((*queue, *seq)).map_err(err)?;
            t.bump(*queue, -1)?;
        }
        Mutation::Purge { queue, below_seq } => {
            let mut doomed = Vec::new();
            for entry in t
                .states
                .range((*queue, 0)..(*queue, *below_seq))
                .map_err(err)?
            {
                let (key, value) = entry.map_err(err)?;
                let state: DeliveryState = decode(value.value())?;
                doomed.push((key.value().1, state.visible_at));
            }
            for (seq, visible_at) in &doomed {
                t.states.remove((*queue, *seq)).map_err(err)?;
                t.messages.remove((*queue, *seq)).map_err(err)?;
                t.visibility
                    .remove((*queue, *visible_at, *seq))
                    .map_err(err)?;
            }
            t.bump(*queue, -i64::try_from(doomed.len()).unwrap_or(i64::MAX))?;
        }
        Mutation::PutDedup { queue, key, entry } => {
            t.dedup
                .insert((*queue, key.as_str()), encode(entry)?.as_slice())
                .map_err(err)?;
        }
        Mutation::DeleteDedup { queue, key } => {
            t.dedup.remove((*queue, key.as_str())).map_err(err)?;
        }
        Mutation::PutMeta { key, value } => {
            t.meta.insert(key.as_str(), value.as_slice()).map_err(err)?;
        }
        Mutation::DeleteMeta { key } => {
            t.meta.remove(key.as_str()).map_err(err)?;
        }
    }
    Ok(())
}

impl Store for RedbStore {
    fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        *self.db.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn apply(&self, mutations: &[Mutation]) -> Result<(), StoreError> {
        let applied = self.try_apply(mutations);
        if applied.is_err() {
            // Nothing of this batch is acknowledged. Drop the database (the transaction is
            // gone by now) so the next call reopens it: after an I/O error redb answers
            // nothing else, even once the disk has room again.
            *self.db.write().unwrap_or_else(|p| p.into_inner()) = None;
        }
        applied
    }

    fn queues(&self) -> Result<Vec<StoredQueue>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read().map_err(err)?;
        let table = txn.open_table(QUEUES).map_err(err)?;
        let mut queues = Vec::new();
        for entry in table.iter().map_err(err)? {
            let (_, value) = entry.map_err(err)?;
            queues.push(decode(value.value())?);
        }
        Ok(queues)
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read().map_err(err)?;
        let table = txn.open_table(META).map_err(err)?;
        Ok(table.get(key).map_err(err)?.map(|v| v.value().to_vec()))
    }

    fn max_seq(&self) -> Result<u64, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read().map_err(err)?;
        let table = txn.open_table(STATES).map_err(err)?;
        let mut max = 0;
        // Keys are (queue, seq): the last key of each queue holds that queue's highest seq, so
        // walk queue by queue instead of over every message.
        let mut next_queue = Some(0u64);
        while let Some(queue) = next_queue {
            let last = table
                .range((queue, 0)..=(queue, u64::MAX))
                .map_err(err)?
                .next_back();
            if let Some(entry) = last {
                max = max.max(entry.map_err(err)?.0.value().1);
            }
            next_queue = match queue.checked_add(1) {
                Some(from) => match table.range((from, 0)..).map_err(err)?.next() {
                    Some(entry) => Some(entry.map_err(err)?.0.value().0),
                    None => None,
                },
                None => None,
            };
        }
        Ok(max)
    }

    fn counts(&self, queue: QueueId, now: u64) -> Result<Counts, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read().map_err(err)?;
        let counts = txn.open_table(COUNTS).map_err(err)?;
        let visibility = txn.open_table(VISIBILITY).map_err(err)?;
        let mut result = Counts {
            total: counts.get(queue).map_err(err)?.map_or(0, |v| v.value()),
            ..Counts::default()
        };
        let after = now.saturating_add(1);
        for entry in visibility
            .range((queue, after, 0)..=(queue, u64::MAX, u64::MAX))
            .map_err(err)?
        {
            let (_, kind) = entry.map_err(err)?;
            if kind.value() == 1 {
                result.in_flight += 1;
            } else {
                result.delayed += 1;
            }
        }
        Ok(result)
    }

    fn visible(&self, queue: QueueId, now: u64, limit: usize) -> Result<Vec<u64>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read().map_err(err)?;
        let visibility = txn.open_table(VISIBILITY).map_err(err)?;
        let mut seqs = Vec::with_capacity(limit.min(1024));
        for entry in visibility
            .range((queue, 0, 0)..=(queue, now, u64::MAX))
            .map_err(err)?
            .take(limit)
        {
            seqs.push(entry.map_err(err)?.0.value().2);
        }
        Ok(seqs)
    }

    fn next_visible_after(&self, queue: QueueId, now: u64) -> Result<Option<u64>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read().map_err(err)?;
        let visibility = txn.open_table(VISIBILITY).map_err(err)?;
        let after = now.saturating_add(1);
        match visibility
            .range((queue, after, 0)..=(queue, u64::MAX, u64::MAX))
            .map_err(err)?
            .next()
        {
            Some(entry) => Ok(Some(entry.map_err(err)?.0.value().1)),
            None => Ok(None),
        }
    }

    fn states_from(
        &self,
        queue: QueueId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, DeliveryState)>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read().map_err(err)?;
        let states = txn.open_table(STATES).map_err(err)?;
        let mut out = Vec::new();
        for entry in states
            .range((queue, from_seq)..=(queue, u64::MAX))
            .map_err(err)?
            .take(limit)
        {
            let (key, value) = entry.map_err(err)?;
            out.push((key.value().1, decode(value.value())?));
        }
        Ok(out)
    }

    fn message(&self, queue: QueueId, seq: u64) -> Result<Option<StoredMessage>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read().map_err(err)?;
        let states = txn.open_table(STATES).map_err(err)?;
        let messages = txn.open_table(MESSAGES).map_err(err)?;
        let Some(state) = states.get((queue, seq)).map_err(err)? else {
            return Ok(None);
        };
        let Some(record) = messages.get((queue, seq)).map_err(err)? else {
            return Ok(None);
        };
        Ok(Some(StoredMessage {
            seq,
            record: decode(record.value())?,
            state: decode(state.value())?,
        }))
    }

    fn state(&self, queue: QueueId, seq: u64) -> Result<Option<DeliveryState>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read().map_err(err)?;
        let states = txn.open_table(STATES).map_err(err)?;
        match states.get((queue, seq)).map_err(err)? {
            Some(v) => Ok(Some(decode(v.value())?)),
            None => Ok(None),
        }
    }

    fn dedup_entries(&self, queue: QueueId) -> Result<Vec<(String, DedupEntry)>, StoreError> {
        let db = self.db()?;
        let txn = db.begin_read().map_err(err)?;
        let dedup = txn.open_table(DEDUP).map_err(err)?;
        let mut out = Vec::new();
        for entry in dedup.range((queue, "")..).map_err(err)? {
            let (key, value) = entry.map_err(err)?;
            let (q, name) = key.value();
            if q != queue {
                break;
            }
            out.push((name.to_string(), decode(value.value())?));
        }
        Ok(out)
    }
}
