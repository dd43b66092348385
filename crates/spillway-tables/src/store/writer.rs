//! The one writer thread. Every write (items, catalog changes, index backfills, TTL deletions)
//! is a [`Job`]; the thread takes every job that queued up while the previous commit was being
//! fsync'd, runs them in order inside one write transaction and commits once (group commit),
//! then answers each caller. A condition is evaluated by the job's `decide` against the item
//! as the transaction sees it, so a conditional write is atomic without locks, and jobs later
//! in a round see the writes of earlier ones.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock, mpsc};

use redb::{Durability, ReadableTable, WriteTransaction};
use tokio::sync::oneshot;

use super::tx::{self, Tx};
use super::wal::{self, Frame, Tree};
use super::{
    CATALOG, Db, SEQUENCE, STATS, StoreError, TOKENS, decode_item, def, encode_item, index_table,
    items_table, ttl_table,
};
use crate::key::{encode_key, prefix_end};
use crate::schema::{IndexMeta, TableMeta};
use crate::value::{AttributeValue, Item, item_size};

/// Jobs run in one commit at most (bounds a commit's memory and latency).
const MAX_JOBS_PER_COMMIT: usize = 512;
/// Rounds of fewer item writes are committed durably by redb rather than logged (see `run`).
const LOG_MIN_WRITES: usize = 4;
/// How long a transaction's idempotency token is remembered (DynamoDB: 10 minutes).
pub const TOKEN_SECONDS: f64 = 600.0;
/// TTL values further in the past than this are ignored, as DynamoDB does (5 years).
const TTL_HORIZON_SECONDS: f64 = 5.0 * 365.0 * 24.0 * 3600.0;

/// What a write does to the item it is about, decided against the item as stored.
pub enum Decision {
    Put(Item),
    Delete,
    /// Nothing to write (a ConditionCheck in a transaction).
    Keep,
}

/// Why a write did not happen.
#[derive(Debug, Clone)]
pub enum Refused {
    /// The condition was false; the item as it was (for ReturnValuesOnConditionCheckFailure).
    Condition { old: Option<Item> },
    /// The write is invalid for the stored item (an update expression's operand of the wrong
    /// type, an item grown past 400 KB): ValidationException with this text.
    Invalid(String),
}

pub type Decide = Box<dyn FnOnce(Option<&Item>) -> Result<Decision, Refused> + Send>;

pub struct WriteOp {
    pub table: String,
    /// The storage id the request was validated against: a table deleted and re-created
    /// meanwhile is another table.
    pub table_id: u64,
    pub key: Vec<u8>,
    pub decide: Decide,
}

/// The item before and after a write.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub old: Option<Item>,
    pub new: Option<Item>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error("Requested resource not found")]
    NoTable,
    #[error("refused")]
    Refused(Refused),
    #[error(transparent)]
    Store(Arc<StoreError>),
    #[error("idempotent parameter mismatch")]
    TokenMismatch,
    /// A transaction was cancelled: the reason per operation, in order (`None`: no reason).
    #[error("transaction cancelled")]
    Cancelled(Vec<Option<Refused>>),
}

/// A transaction's idempotency token and the fingerprint of its request.
pub struct Token {
    pub token: String,
    pub fingerprint: [u8; 32],
}

/// A change to the catalog, run in the writer so that it orders with item writes.
pub enum CatalogChange {
    /// Creates the table (fails with `Exists` when the name is taken).
    Create(TableMeta),
    /// Replaces a table's description (TTL, tags, throughput, index status). Indexes that the
    /// new description lacks have their entries dropped; new ones start empty.
    Update(TableMeta),
    Delete(String),
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("exists")]
    Exists,
    #[error("not found")]
    NotFound,
    /// The change was made from a description that is no longer current.
    #[error("conflict")]
    Conflict,
    #[error(transparent)]
    Store(Arc<StoreError>),
}

enum Job {
    Writes {
        ops: Vec<WriteOp>,
        atomic: bool,
        token: Option<Token>,
        now: f64,
        reply: oneshot::Sender<Result<Vec<Result<Applied, WriteError>>, WriteError>>,
    },
    Catalog {
        change: Box<CatalogChange>,
        reply: oneshot::Sender<Result<Arc<TableMeta>, CatalogError>>,
    },
    Backfill {
        table: String,
        index_id: u64,
        after: Option<Vec<u8>>,
        limit: usize,
        reply: oneshot::Sender<Result<Option<Vec<u8>>, WriteError>>,
    },
    Expire {
        now: f64,
        limit: usize,
        reply: oneshot::Sender<Result<usize, WriteError>>,
    },
}

/// The shared, published catalog: what committed.
pub type Catalog = Arc<RwLock<BTreeMap<String, Arc<TableMeta>>>>;

pub struct Writer {
    to_thread: mpsc::Sender<Job>,
}

impl Writer {
    /// Loads the catalog and starts the writer thread.
    pub fn start(db: Arc<Db>) -> Result<(Writer, Catalog), StoreError> {
        let loaded = load_catalog(&db)?;
        let catalog: Catalog = Arc::new(RwLock::new(loaded.clone()));
        let (to_thread, jobs) = mpsc::channel();
        let published = catalog.clone();
        std::thread::Builder::new()
            .name("spillway-tables-writer".into())
            .spawn(move || run(db, jobs, loaded, published))
            .map_err(StoreError::io)?;
        Ok((Writer { to_thread }, catalog))
    }

    /// Runs item writes in one commit. `atomic`: all or none (TransactWriteItems); otherwise
    /// each op succeeds or fails alone (BatchWriteItem, single writes).
    pub async fn write(
        &self,
        ops: Vec<WriteOp>,
        atomic: bool,
        token: Option<Token>,
        now: f64,
    ) -> Result<Vec<Result<Applied, WriteError>>, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Writes {
            ops,
            atomic,
            token,
            now,
            reply,
        })?;
        answer.await.map_err(|_| closed())?
    }

    pub async fn catalog(&self, change: CatalogChange) -> Result<Arc<TableMeta>, CatalogError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Catalog {
            change: Box::new(change),
            reply,
        })
        .map_err(|_| CatalogError::Store(Arc::new(StoreError::Closed)))?;
        answer
            .await
            .map_err(|_| CatalogError::Store(Arc::new(StoreError::Closed)))?
    }

    /// Adds index entries for up to `limit` items after `after`; the last key visited, or
    /// `None` when the table has no more.
    pub async fn backfill(
        &self,
        table: &str,
        index_id: u64,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Option<Vec<u8>>, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Backfill {
            table: table.to_owned(),
            index_id,
            after,
            limit,
            reply,
        })?;
        answer.await.map_err(|_| closed())?
    }

    /// Deletes up to `limit` items per table whose TTL attribute is before `now`.
    pub async fn expire(&self, now: f64, limit: usize) -> Result<usize, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Expire { now, limit, reply })?;
        answer.await.map_err(|_| closed())?
    }

    fn send(&self, job: Job) -> Result<(), WriteError> {
        self.to_thread.send(job).map_err(|_| closed())
    }
}

fn closed() -> WriteError {
    WriteError::Store(Arc::new(StoreError::Closed))
}

fn load_catalog(db: &Db) -> Result<BTreeMap<String, Arc<TableMeta>>, StoreError> {
    use redb::ReadableDatabase;
    db.with(|db| {
        let txn = db.begin_read().map_err(StoreError::io)?;
        let t = txn.open_table(CATALOG).map_err(StoreError::io)?;
        let mut out = BTreeMap::new();
        for entry in t.iter().map_err(StoreError::io)? {
            let (k, v) = entry.map_err(StoreError::io)?;
            let meta: TableMeta = serde_json::from_slice(v.value())
                .map_err(|e| StoreError::Corrupt(format!("table {}: {e}", k.value())))?;
            out.insert(k.value().to_owned(), Arc::new(meta));
        }
        Ok(out)
    })
}

/// A job's answer, held until its commit is durable.
enum Answer {
    Writes(
        oneshot::Sender<Result<Vec<Result<Applied, WriteError>>, WriteError>>,
        Result<Vec<Result<Applied, WriteError>>, WriteError>,
    ),
    Catalog(
        oneshot::Sender<Result<Arc<TableMeta>, CatalogError>>,
        Result<Arc<TableMeta>, CatalogError>,
    ),
    Backfill(
        oneshot::Sender<Result<Option<Vec<u8>>, WriteError>>,
        Result<Option<Vec<u8>>, WriteError>,
    ),
    Expire(
        oneshot::Sender<Result<usize, WriteError>>,
        Result<usize, WriteError>,
    ),
}

impl Answer {
    fn send(self) {
        match self {
            Answer::Writes(tx, r) => drop(tx.send(r)),
            Answer::Catalog(tx, r) => drop(tx.send(r)),
            Answer::Backfill(tx, r) => drop(tx.send(r)),
            Answer::Expire(tx, r) => drop(tx.send(r)),
        }
    }

    fn fail(self, e: Arc<StoreError>) {
        match self {
            Answer::Writes(tx, _) => drop(tx.send(Err(WriteError::Store(e)))),
            Answer::Catalog(tx, _) => drop(tx.send(Err(CatalogError::Store(e)))),
            Answer::Backfill(tx, _) => drop(tx.send(Err(WriteError::Store(e)))),
            Answer::Expire(tx, _) => drop(tx.send(Err(WriteError::Store(e)))),
        }
    }
}

fn run(
    db: Arc<Db>,
    jobs: mpsc::Receiver<Job>,
    mut catalog: BTreeMap<String, Arc<TableMeta>>,
    published: Catalog,
) {
    while let Ok(first) = jobs.recv() {
        let mut round = vec![first];
        while round.len() < MAX_JOBS_PER_COMMIT {
            match jobs.try_recv() {
                Ok(job) => round.push(job),
                Err(_) => break,
            }
        }
        let mut working = catalog.clone();
        let mut answers = Vec::with_capacity(round.len());
        let mut catalog_changed = false;
        // Item writes are made durable by the log when the round is large enough to share
        // it; anything else (catalog changes, backfills, the TTL sweep), a small round and a
        // log grown long or old make the round a checkpoint instead. Why small rounds commit
        // durably: a checkpoint stalls every writer while it writes back what the logged
        // rounds dirtied, and under a light load (where the CPU the log saves is not needed)
        // those stalls were the p99 of PutItem at 500/s (docs/BENCHMARKS.md).
        let mut writes = 0;
        let mut only_items = true;
        for job in &round {
            match job {
                Job::Writes { ops, .. } => writes += ops.len(),
                _ => only_items = false,
            }
        }
        let logged = only_items && writes >= LOG_MIN_WRITES;
        let outcome = db.with_wal(|database, wal| {
            let mut checkpoint = !logged || wal.checkpoint_due();
            let mut txn = database.begin_write().map_err(StoreError::io)?;
            if !checkpoint {
                txn.set_durability(Durability::None)
                    .map_err(StoreError::io)?;
            }
            let mut tx = Tx::new(&txn, (!checkpoint).then(|| Frame::new(wal.epoch)));
            let mut stats: HashMap<u64, (i64, i64)> = HashMap::new();
            for job in round.drain(..) {
                answers.push(run_job(
                    &mut tx,
                    &mut working,
                    &mut stats,
                    &mut catalog_changed,
                    job,
                )?);
            }
            write_stats(&mut tx, &stats)?;
            let mut frame = tx.finish();
            if frame.as_ref().is_some_and(|f| f.len() > wal::MAX_FRAME) {
                // Too large a frame (hundreds of megabytes of batches in one round): this
                // round is a checkpoint instead.
                frame = None;
                checkpoint = true;
                txn.set_durability(Durability::Immediate)
                    .map_err(StoreError::io)?;
            }
            if checkpoint {
                tx::set_epoch(&txn, wal.epoch + 1)?;
            }
            // The log first: readers see a commit at once, so it must already be durable.
            let appended = match frame.filter(|f| !f.is_empty()) {
                Some(mut frame) => {
                    wal.append(&mut frame)?;
                    true
                }
                None => false,
            };
            if let Err(e) = txn.commit() {
                if appended {
                    wal.retract();
                }
                return Err(StoreError::io(e));
            }
            if checkpoint {
                wal.restart(wal.epoch + 1);
            }
            Ok(())
        });
        match outcome {
            Ok(()) => {
                if catalog_changed {
                    catalog = working;
                    *published.write().unwrap_or_else(|p| p.into_inner()) = catalog.clone();
                }
                for a in answers {
                    a.send();
                }
            }
            Err(e) => {
                tracing::error!("tables: a commit failed: {e}");
                let e = Arc::new(e);
                for a in answers {
                    a.fail(e.clone());
                }
                // redb refuses every call after an I/O error until it is opened again. Jobs
                // not reached in this round were dropped: their callers see a store error.
                db.reopen();
            }
        }
    }
}

fn run_job(
    txn: &mut Tx<'_>,
    catalog: &mut BTreeMap<String, Arc<TableMeta>>,
    stats: &mut HashMap<u64, (i64, i64)>,
    catalog_changed: &mut bool,
    job: Job,
) -> Result<Answer, StoreError> {
    Ok(match job {
        Job::Writes {
            ops,
            atomic,
            token,
            now,
            reply,
        } => {
            let r = writes(txn, catalog, stats, ops, atomic, token, now);
            match r {
                Err(WriteError::Store(e)) => return Err(StoreError::Io(e.to_string())),
                r => Answer::Writes(reply, r),
            }
        }
        Job::Catalog { change, reply } => {
            let r = catalog_change(txn.for_catalog(), catalog, *change);
            if r.is_ok() {
                *catalog_changed = true;
            }
            match r {
                Err(CatalogError::Store(e)) => return Err(StoreError::Io(e.to_string())),
                r => Answer::Catalog(reply, r),
            }
        }
        Job::Backfill {
            table,
            index_id,
            after,
            limit,
            reply,
        } => Answer::Backfill(
            reply,
            backfill(txn, catalog, stats, &table, index_id, after, limit)?,
        ),
        Job::Expire { now, limit, reply } => {
            Answer::Expire(reply, Ok(expire(txn, catalog, stats, now, limit)?))
        }
    })
}

fn writes(
    txn: &mut Tx<'_>,
    catalog: &BTreeMap<String, Arc<TableMeta>>,
    stats: &mut HashMap<u64, (i64, i64)>,
    ops: Vec<WriteOp>,
    atomic: bool,
    token: Option<Token>,
    now: f64,
) -> Result<Vec<Result<Applied, WriteError>>, WriteError> {
    let store = |e: StoreError| WriteError::Store(Arc::new(e));
    if let Some(t) = &token {
        let tokens = txn
            .shared()
            .open_table(TOKENS)
            .map_err(|e| store(StoreError::io(e)))?;
        if let Some(seen) = tokens
            .get(t.token.as_str())
            .map_err(|e| store(StoreError::io(e)))?
        {
            let seen = seen.value();
            let at = token_time(seen);
            if now - at < TOKEN_SECONDS {
                return if seen.get(..32) == Some(&t.fingerprint[..]) {
                    // Already applied: answer as the first time did, change nothing.
                    Ok(Vec::new())
                } else {
                    Err(WriteError::TokenMismatch)
                };
            }
        }
    }
    let mut results = Vec::with_capacity(ops.len());
    if atomic {
        let mut decided = Vec::with_capacity(ops.len());
        let mut reasons: Vec<Option<Refused>> = Vec::with_capacity(ops.len());
        let mut failed = false;
        for op in ops {
            let Some(meta) = catalog
                .get(&op.table)
                .filter(|m| m.id == op.table_id)
                .cloned()
            else {
                return Err(WriteError::NoTable);
            };
            let old = txn.item(Tree::Items(meta.id), &op.key).map_err(store)?;
            match (op.decide)(old.as_ref()) {
                Ok(d) => {
                    reasons.push(None);
                    decided.push((meta, op.key, old, d));
                }
                Err(r) => {
                    failed = true;
                    reasons.push(Some(r));
                }
            }
        }
        if failed {
            return Err(WriteError::Cancelled(reasons));
        }
        for (meta, key, old, d) in decided {
            results.push(Ok(
                apply(txn, &meta, stats, &key, old, d, now).map_err(store)?
            ));
        }
    } else {
        for op in ops {
            let Some(meta) = catalog
                .get(&op.table)
                .filter(|m| m.id == op.table_id)
                .cloned()
            else {
                results.push(Err(WriteError::NoTable));
                continue;
            };
            let old = txn.item(Tree::Items(meta.id), &op.key).map_err(store)?;
            match (op.decide)(old.as_ref()) {
                Ok(d) => results.push(Ok(
                    apply(txn, &meta, stats, &op.key, old, d, now).map_err(store)?
                )),
                Err(r) => results.push(Err(WriteError::Refused(r))),
            }
        }
    }
    if let Some(t) = token {
        let mut v = t.fingerprint.to_vec();
        v.extend_from_slice(&now.to_be_bytes());
        txn.put_token(&t.token, &v).map_err(store)?;
    }
    Ok(results)
}

/// The TTL entry key of an item, if its TTL attribute is a number within DynamoDB's horizon.
fn ttl_key(meta: &TableMeta, item: &Item, key: &[u8], now: f64) -> Option<Vec<u8>> {
    if !meta.ttl.enabled {
        return None;
    }
    let AttributeValue::N(n) = item.get(meta.ttl.attribute.as_deref()?)? else {
        return None;
    };
    let at = n.as_f64_lossy();
    if !at.is_finite() || at < 0.0 || at < now - TTL_HORIZON_SECONDS {
        return None;
    }
    let mut k = (at as u64).to_be_bytes().to_vec();
    k.extend_from_slice(key);
    Some(k)
}

/// An index entry's key for an item: the index key ‖ the table key.
fn index_key(index: &IndexMeta, item: &Item, table_key: &[u8]) -> Option<Vec<u8>> {
    let values = index.key.of_indexed(item)?;
    let mut k = encode_key(&values);
    k.extend_from_slice(table_key);
    Some(k)
}

/// Writes a decision with everything that follows from it: index entries, TTL entries and the
/// table's counters.
fn apply(
    txn: &mut Tx<'_>,
    meta: &TableMeta,
    stats: &mut HashMap<u64, (i64, i64)>,
    key: &[u8],
    old: Option<Item>,
    decision: Decision,
    now: f64,
) -> Result<Applied, StoreError> {
    let new = match decision {
        Decision::Keep => {
            return Ok(Applied {
                new: old.clone(),
                old,
            });
        }
        Decision::Put(item) => Some(item),
        Decision::Delete => None,
    };
    let items = Tree::Items(meta.id);
    match &new {
        Some(item) => {
            txn.put(items, key, &encode_item(item)?)?;
        }
        None => txn.remove(items, key)?,
    }
    for index in &meta.indexes {
        let old_k = old.as_ref().and_then(|o| index_key(index, o, key));
        let new_k = new.as_ref().and_then(|n| index_key(index, n, key));
        if old_k.is_none() && new_k.is_none() {
            continue;
        }
        let tree = Tree::Index(index.id);
        let counts = stats.entry(index.id).or_default();
        if let (Some(k), Some(o)) = (&old_k, &old) {
            counts.0 -= 1;
            counts.1 -= item_size(&meta.project_for_index(index, o)) as i64;
            if Some(k) != new_k.as_ref() {
                txn.remove(tree, k)?;
            }
        }
        if let (Some(k), Some(n)) = (&new_k, &new) {
            let projected = meta.project_for_index(index, n);
            counts.0 += 1;
            counts.1 += item_size(&projected) as i64;
            txn.put(tree, k, &encode_item(&projected)?)?;
        }
    }
    if meta.ttl.enabled {
        let old_t = old.as_ref().and_then(|o| ttl_key(meta, o, key, now));
        let new_t = new.as_ref().and_then(|n| ttl_key(meta, n, key, now));
        if old_t != new_t {
            let tree = Tree::Ttl(meta.id);
            if let Some(k) = old_t {
                txn.remove(tree, &k)?;
            }
            if let Some(k) = new_t {
                txn.put(tree, &k, &[])?;
            }
        }
    }
    let entry = stats.entry(meta.id).or_default();
    if let Some(o) = &old {
        entry.0 -= 1;
        entry.1 -= item_size(o) as i64;
    }
    if let Some(n) = &new {
        entry.0 += 1;
        entry.1 += item_size(n) as i64;
    }
    Ok(Applied { old, new })
}

fn write_stats(txn: &mut Tx<'_>, deltas: &HashMap<u64, (i64, i64)>) -> Result<(), StoreError> {
    for (id, (dc, db)) in deltas {
        let (c, b) = txn
            .shared()
            .open_table(STATS)
            .map_err(StoreError::io)?
            .get(*id)
            .map_err(StoreError::io)?
            .map(|v| v.value())
            .unwrap_or((0, 0));
        let c = (c as i64 + dc).max(0) as u64;
        let b = (b as i64 + db).max(0) as u64;
        txn.set_stats(*id, c, b)?;
    }
    Ok(())
}

fn next_id(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let mut t = txn.open_table(SEQUENCE).map_err(StoreError::io)?;
    let next = t
        .get("id")
        .map_err(StoreError::io)?
        .map(|v| v.value())
        .unwrap_or(1);
    t.insert("id", next + 1).map_err(StoreError::io)?;
    Ok(next)
}

fn save_meta(txn: &WriteTransaction, meta: &TableMeta) -> Result<(), StoreError> {
    let mut t = txn.open_table(CATALOG).map_err(StoreError::io)?;
    let bytes = serde_json::to_vec(meta).map_err(StoreError::io)?;
    t.insert(meta.name.as_str(), bytes.as_slice())
        .map_err(StoreError::io)?;
    Ok(())
}

fn drop_table(txn: &WriteTransaction, name: &str) -> Result<(), StoreError> {
    txn.delete_table(def(name)).map_err(StoreError::io)?;
    Ok(())
}

fn catalog_change(
    txn: &WriteTransaction,
    catalog: &mut BTreeMap<String, Arc<TableMeta>>,
    change: CatalogChange,
) -> Result<Arc<TableMeta>, CatalogError> {
    let store = |e: StoreError| CatalogError::Store(Arc::new(e));
    match change {
        CatalogChange::Create(mut meta) => {
            if catalog.contains_key(&meta.name) {
                return Err(CatalogError::Exists);
            }
            meta.id = next_id(txn).map_err(store)?;
            for index in &mut meta.indexes {
                index.id = next_id(txn).map_err(store)?;
                txn.open_table(def(&index_table(index.id)))
                    .map_err(|e| store(StoreError::io(e)))?;
            }
            txn.open_table(def(&items_table(meta.id)))
                .map_err(|e| store(StoreError::io(e)))?;
            txn.open_table(def(&ttl_table(meta.id)))
                .map_err(|e| store(StoreError::io(e)))?;
            save_meta(txn, &meta).map_err(store)?;
            let meta = Arc::new(meta);
            catalog.insert(meta.name.clone(), meta.clone());
            Ok(meta)
        }
        CatalogChange::Update(mut meta) => {
            let Some(current) = catalog.get(&meta.name).cloned() else {
                return Err(CatalogError::NotFound);
            };
            if current.id != meta.id || current.version != meta.version {
                return Err(CatalogError::Conflict);
            }
            meta.version += 1;
            for gone in current
                .indexes
                .iter()
                .filter(|i| !meta.indexes.iter().any(|n| n.name == i.name))
            {
                drop_table(txn, &index_table(gone.id)).map_err(store)?;
            }
            for index in &mut meta.indexes {
                match current.indexes.iter().find(|i| i.name == index.name) {
                    Some(existing) => index.id = existing.id,
                    None => {
                        index.id = next_id(txn).map_err(store)?;
                        txn.open_table(def(&index_table(index.id)))
                            .map_err(|e| store(StoreError::io(e)))?;
                    }
                }
            }
            if meta.ttl != current.ttl {
                // Rebuilt by the sweeper's next pass over a re-enabled table; entries of a
                // disabled one are dropped now.
                drop_table(txn, &ttl_table(meta.id)).map_err(store)?;
                txn.open_table(def(&ttl_table(meta.id)))
                    .map_err(|e| store(StoreError::io(e)))?;
                if meta.ttl.enabled {
                    rebuild_ttl(txn, &meta).map_err(store)?;
                }
            }
            save_meta(txn, &meta).map_err(store)?;
            let meta = Arc::new(meta);
            catalog.insert(meta.name.clone(), meta.clone());
            Ok(meta)
        }
        CatalogChange::Delete(name) => {
            let Some(meta) = catalog.remove(&name) else {
                return Err(CatalogError::NotFound);
            };
            drop_table(txn, &items_table(meta.id)).map_err(store)?;
            drop_table(txn, &ttl_table(meta.id)).map_err(store)?;
            for index in &meta.indexes {
                drop_table(txn, &index_table(index.id)).map_err(store)?;
            }
            txn.open_table(CATALOG)
                .and_then(|mut t| t.remove(name.as_str()).map(|_| ()).map_err(Into::into))
                .map_err(|e| store(StoreError::io(e)))?;
            txn.open_table(STATS)
                .and_then(|mut t| t.remove(meta.id).map(|_| ()).map_err(Into::into))
                .map_err(|e| store(StoreError::io(e)))?;
            Ok(meta)
        }
    }
}

/// TTL entries for every item of a table whose TTL was just enabled. One pass in the
/// catalog change: enabling TTL is rare and the pass reads keys and one attribute per item.
fn rebuild_ttl(txn: &WriteTransaction, meta: &TableMeta) -> Result<(), StoreError> {
    let now = crate::clock::now();
    let mut entries = Vec::new();
    {
        let items = txn
            .open_table(def(&items_table(meta.id)))
            .map_err(StoreError::io)?;
        for entry in items.iter().map_err(StoreError::io)? {
            let (k, v) = entry.map_err(StoreError::io)?;
            let item = decode_item(v.value())?;
            if let Some(t) = ttl_key(meta, &item, k.value(), now) {
                entries.push(t);
            }
        }
    }
    let mut t = txn
        .open_table(def(&ttl_table(meta.id)))
        .map_err(StoreError::io)?;
    for e in entries {
        t.insert(e.as_slice(), &[][..]).map_err(StoreError::io)?;
    }
    Ok(())
}

fn backfill(
    txn: &mut Tx<'_>,
    catalog: &BTreeMap<String, Arc<TableMeta>>,
    stats: &mut HashMap<u64, (i64, i64)>,
    table: &str,
    index_id: u64,
    after: Option<Vec<u8>>,
    limit: usize,
) -> Result<Result<Option<Vec<u8>>, WriteError>, StoreError> {
    let Some(meta) = catalog.get(table) else {
        return Ok(Err(WriteError::NoTable));
    };
    let Some(index) = meta.indexes.iter().find(|i| i.id == index_id) else {
        return Ok(Err(WriteError::NoTable));
    };
    let mut batch = Vec::new();
    {
        let items = txn.tree(Tree::Items(meta.id))?;
        let lower = match &after {
            Some(a) => std::ops::Bound::Excluded(a.as_slice()),
            None => std::ops::Bound::Unbounded,
        };
        for entry in items
            .range::<&[u8]>((lower, std::ops::Bound::Unbounded))
            .map_err(StoreError::io)?
            .take(limit)
        {
            let (k, v) = entry.map_err(StoreError::io)?;
            batch.push((k.value().to_vec(), decode_item(v.value())?));
        }
    }
    let last = batch.last().map(|(k, _)| k.clone());
    let tree = Tree::Index(index.id);
    let counts = stats.entry(index.id).or_default();
    for (k, item) in &batch {
        if let Some(ik) = index_key(index, item, k) {
            let projected = meta.project_for_index(index, item);
            let encoded = encode_item(&projected)?;
            // An entry a write made during the backfill is already counted.
            let replaced = txn.put(tree, &ik, &encoded)?;
            if !replaced {
                counts.0 += 1;
                counts.1 += item_size(&projected) as i64;
            }
        }
    }
    Ok(Ok(if batch.len() < limit { None } else { last }))
}

fn expire(
    txn: &mut Tx<'_>,
    catalog: &BTreeMap<String, Arc<TableMeta>>,
    stats: &mut HashMap<u64, (i64, i64)>,
    now: f64,
    limit: usize,
) -> Result<usize, StoreError> {
    prune_tokens(txn.shared(), now, limit)?;
    let mut deleted = 0;
    for meta in catalog.values().filter(|m| m.ttl.enabled) {
        let due: Vec<Vec<u8>> = {
            let t = txn.tree(Tree::Ttl(meta.id))?;
            let upper = (now.max(0.0) as u64).to_be_bytes();
            let end = prefix_end(&upper).unwrap_or_else(|| vec![0xFF; 9]);
            let mut keys = Vec::new();
            for entry in t
                .range::<&[u8]>((
                    std::ops::Bound::Unbounded,
                    std::ops::Bound::Excluded(end.as_slice()),
                ))
                .map_err(StoreError::io)?
                .take(limit)
            {
                let (k, _) = entry.map_err(StoreError::io)?;
                keys.push(k.value().to_vec());
            }
            keys
        };
        for entry in due {
            let Some(item_key) = entry.get(8..) else {
                continue;
            };
            let old = txn.item(Tree::Items(meta.id), item_key)?;
            match old {
                Some(item)
                    if ttl_key(meta, &item, item_key, now).as_deref() == Some(entry.as_slice()) =>
                {
                    apply(
                        txn,
                        meta,
                        stats,
                        item_key,
                        Some(item),
                        Decision::Delete,
                        now,
                    )?;
                    deleted += 1;
                }
                _ => {
                    // A stale entry (the item changed without its TTL entry, which apply
                    // never does; kept defensive so the sweeper cannot loop on it).
                    txn.remove(Tree::Ttl(meta.id), &entry)?;
                }
            }
        }
    }
    Ok(deleted)
}

/// Forgets idempotency tokens older than their 10 minutes (at most `limit` per round).
fn prune_tokens(txn: &WriteTransaction, now: f64, limit: usize) -> Result<(), StoreError> {
    let mut tokens = txn.open_table(TOKENS).map_err(StoreError::io)?;
    let mut stale = Vec::new();
    for entry in tokens.iter().map_err(StoreError::io)? {
        let (k, v) = entry.map_err(StoreError::io)?;
        let at = token_time(v.value());
        if now - at >= TOKEN_SECONDS {
            stale.push(k.value().to_owned());
            if stale.len() >= limit {
                break;
            }
        }
    }
    for k in stale {
        tokens.remove(k.as_str()).map_err(StoreError::io)?;
    }
    Ok(())
}

/// When a stored token was recorded: its value is the request's fingerprint (32 bytes) and
/// the time (f64, big-endian).
fn token_time(stored: &[u8]) -> f64 {
    stored
        .get(32..40)
        .and_then(|b| b.try_into().ok())
        .map(f64::from_be_bytes)
        .unwrap_or(0.0)
}
