//! The table store: one redb file (`tables.redb`) holding every table's items in key order, its
//! index entries and TTL entries, the catalog and the counters.
//!
//! Why redb: the queue chose it after measuring SQLite and fjall (docs/BENCHMARKS.md, "Queue
//! storage"); it is pure Rust, its commits are checksummed and fsync'd (`Durability::Immediate`),
//! its keys are ordered byte strings (a Query is a range read), it gives readers MVCC snapshots
//! while one writer commits, and its page cache bounds memory. Sharing it keeps one engine to
//! know in the codebase.
//!
//! Layout, per DynamoDB table with storage id `T` (a new id per CreateTable):
//! - `items/T`: [`crate::key::encode_key`] → the item (postcard);
//! - `index/I` per index with storage id `I`: index key ‖ the table key → the projected item;
//! - `ttl/T`: expiry (u64 seconds, big-endian) ‖ the table key → nothing, for the sweeper.
//!
//! and, shared: `catalog` (name → [`TableMeta`] as JSON), `stats` (id → item count and bytes),
//! `tokens` (transaction idempotency tokens), `sequence` (the next storage id).
//!
//! All writes go through one thread ([`writer`]) that evaluates conditions inside the write
//! transaction, so a condition and its write are atomic, and commits what queued up meanwhile
//! in one fsync (group commit) of the redo log beside the file ([`wal`], `tables.wal`); a
//! checkpoint now and then is a durable redb commit. Reads open their own snapshot from any
//! thread.

pub mod reader;
mod tx;
mod wal;
pub mod writer;

use std::path::{Path, PathBuf};

use redb::{Database, TableDefinition};

use crate::value::Item;
use wal::Wal;

pub(crate) const CATALOG: TableDefinition<&str, &[u8]> = TableDefinition::new("catalog");
pub(crate) const STATS: TableDefinition<u64, (u64, u64)> = TableDefinition::new("stats");
pub(crate) const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("tokens");
pub(crate) const SEQUENCE: TableDefinition<&str, u64> = TableDefinition::new("sequence");

/// Page cache: what bounds the store's memory whatever the tables' sizes.
const CACHE_BYTES: usize = 128 * 1024 * 1024;

pub(crate) fn items_table(id: u64) -> String {
    format!("items/{id}")
}

pub(crate) fn index_table(id: u64) -> String {
    format!("index/{id}")
}

pub(crate) fn ttl_table(id: u64) -> String {
    format!("ttl/{id}")
}

pub(crate) fn def(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("table store: {0}")]
    Io(String),
    #[error("table store: a stored item is unreadable: {0}")]
    Corrupt(String),
    #[error("the table store is closed")]
    Closed,
}

impl StoreError {
    pub(crate) fn io(e: impl std::fmt::Display) -> StoreError {
        StoreError::Io(e.to_string())
    }
}

pub(crate) fn encode_item(item: &Item) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn decode_item(bytes: &[u8]) -> Result<Item, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The open database and its log.
struct Open {
    db: Database,
    /// Used by the writer thread only; a lock so that `Db` stays `Sync`.
    wal: std::sync::Mutex<Wal>,
}

/// The open database, shared by the writer thread and readers.
pub struct Db {
    path: PathBuf,
    db: std::sync::RwLock<Option<Open>>,
    /// Set by [`Db::close`]: a closed store is never reopened.
    closed: std::sync::atomic::AtomicBool,
}

impl Db {
    pub fn open(dir: &Path) -> Result<Db, StoreError> {
        std::fs::create_dir_all(dir).map_err(StoreError::io)?;
        let path = dir.join("tables.redb");
        let db = open_database(&path)?;
        Ok(Db {
            path,
            db: std::sync::RwLock::new(Some(db)),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Runs `f` with the open database. After a failed write redb refuses every call until
    /// the database is opened again (which also recovers the file to its last durable
    /// commit), so a closed handle is reopened here, except after [`Db::close`].
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        {
            let guard = self.db.read().unwrap_or_else(|p| p.into_inner());
            if let Some(open) = guard.as_ref() {
                return f(&open.db);
            }
        }
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        // A reopen after a failed write failed too (the disk still full, say): try again now,
        // so the store comes back by itself once the cause is gone.
        let mut guard = self.db.write().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(open_database(&self.path)?);
            tracing::info!(path = %self.path.display(), "tables: the store is open again");
        }
        match guard.as_ref() {
            Some(open) => f(&open.db),
            None => Err(StoreError::Closed),
        }
    }

    /// Runs `f` with the open database and its log (the writer's rounds).
    pub(crate) fn with_wal<T>(
        &self,
        f: impl FnOnce(&Database, &mut Wal) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // Opens the store again if a failed write closed it (see `with`).
        self.with(|_| Ok(()))?;
        let guard = self.db.read().unwrap_or_else(|p| p.into_inner());
        let open = guard.as_ref().ok_or(StoreError::Closed)?;
        let mut wal = open.wal.lock().unwrap_or_else(|p| p.into_inner());
        f(&open.db, &mut wal)
    }

    /// Drops and reopens the database after a failed commit.
    pub(crate) fn reopen(&self) {
        let mut guard = self.db.write().unwrap_or_else(|p| p.into_inner());
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        *guard = None;
        match open_database(&self.path) {
            Ok(db) => *guard = Some(db),
            Err(e) => tracing::error!("tables: reopening the store after a failed write: {e}"),
        }
    }

    /// Releases the file (a stack stopping; a restart in the same process opens it again).
    pub fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        let mut guard = self.db.write().unwrap_or_else(|p| p.into_inner());
        *guard = None;
    }
}

/// The log beside the store's file.
fn wal_path(path: &Path) -> PathBuf {
    path.with_extension("wal")
}

/// Opens the file, replays the log's rounds since the last checkpoint into one durable
/// commit (which is a checkpoint: the log starts over) and opens the log.
fn open_database(path: &Path) -> Result<Open, StoreError> {
    let db = redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(StoreError::io)?;
    let log = wal::read(&wal_path(path))?;
    let txn = db.begin_write().map_err(StoreError::io)?;
    let (frames, epoch) = {
        txn.open_table(CATALOG).map_err(StoreError::io)?;
        txn.open_table(STATS).map_err(StoreError::io)?;
        txn.open_table(TOKENS).map_err(StoreError::io)?;
        txn.open_table(SEQUENCE).map_err(StoreError::io)?;
        let epoch = tx::epoch(&txn)?;
        let mut tx = tx::Tx::new(&txn, None);
        let frames = wal::replay(&log, epoch, |change| tx.replay(change))?;
        drop(tx);
        tx::set_epoch(&txn, epoch + 1)?;
        (frames, epoch + 1)
    };
    txn.commit().map_err(StoreError::io)?;
    if frames > 0 {
        tracing::info!(
            frames,
            path = %path.display(),
            "tables: writes acknowledged before the last stop replayed from the log"
        );
    }
    let wal = Wal::open(&wal_path(path), epoch)?;
    Ok(Open {
        db,
        wal: std::sync::Mutex::new(wal),
    })
}

#[cfg(test)]
mod log_tests;
