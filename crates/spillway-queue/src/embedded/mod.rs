//! The embedded engine: SQS operations over a [`Store`] in the stack's own directory, for one
//! spillway process (the default backend of [`crate::QueueService`]).
//!
//! Every queue has an in-memory handle ([`QueueHandle`]) with what must be shared between
//! concurrent calls and is small: its record, a `Notify` that wakes long polls, the set of
//! messages a receive is claiming, and FIFO's dedup and attempt tables. Messages themselves
//! live only in the store.

mod handles;
mod move_tasks;
pub(crate) mod permissions;
pub(crate) mod queues;
mod receive;
mod send;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use crate::arn;
use crate::clock::now_ms;
use crate::error::QueueError;
use crate::fifo::{Attempts, Dedup};
use crate::move_task::{self, MoveTask};
use crate::queue_attributes::QueueConfig;
use crate::receipt::ReceiptKey;
use crate::store::redb::RedbStore;
use crate::store::writer::Writer;
use crate::store::{Mutation, Store, StoreError, StoredQueue};

const RECEIPT_KEY_META: &str = "receipt-key";
/// How often expired messages and dedup entries are removed.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Messages examined per queue per sweep.
const SWEEP_BATCH: usize = 1000;

/// The embedded engine of one stack. Cheap to clone; all clones share one store.
#[derive(Clone)]
pub struct Embedded {
    inner: Arc<Inner>,
}

struct Inner {
    region: String,
    account: String,
    store: Arc<dyn Store>,
    writer: Writer,
    receipts: ReceiptKey,
    queues: RwLock<BTreeMap<String, Arc<QueueHandle>>>,
    /// Serializes changes to the set of queues and their attributes (rare, and they check
    /// other queues: a RedrivePolicy's target must exist).
    admin: tokio::sync::Mutex<()>,
    /// When each queue name was last deleted (epoch ms): CreateQueue refuses the name for
    /// 60 s after, as SQS does. Kept in memory only: see `queues::DELETED_RECENTLY_MS`.
    deleted: Mutex<HashMap<String, u64>>,
}

pub(crate) struct QueueHandle {
    id: u64,
    name: String,
    arn: String,
    fifo: bool,
    record: Mutex<StoredQueue>,
    /// Woken on anything that may make a message receivable.
    arrivals: Notify,
    /// Sequences a receive has picked but not yet committed, so concurrent receives skip them.
    claims: Mutex<HashSet<u64>>,
    dedup: Mutex<Dedup>,
    attempts: Mutex<Attempts>,
    /// This queue's message move tasks as the source queue, newest first (as stored).
    moves: Mutex<Vec<MoveTask>>,
    /// Wakes this queue's running move task early (it was cancelled).
    move_wake: Notify,
    /// CloudWatch's per-queue counters, since the process started.
    pub(crate) stats: QueueStats,
}

/// Counters named as CloudWatch names SQS's metrics.
#[derive(Default)]
pub(crate) struct QueueStats {
    pub sent: std::sync::atomic::AtomicU64,
    pub received: std::sync::atomic::AtomicU64,
    pub deleted: std::sync::atomic::AtomicU64,
    pub empty_receives: std::sync::atomic::AtomicU64,
}

impl QueueStats {
    pub fn add(counter: &std::sync::atomic::AtomicU64, n: usize) {
        counter.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Locks a std mutex; a poisoned one is taken as is (its data is plain and still consistent
/// because every critical section here is a few assignments).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl QueueHandle {
    fn new(record: StoredQueue, arn: String, dedup: Dedup, moves: Vec<MoveTask>) -> Self {
        QueueHandle {
            id: record.id,
            name: record.name.clone(),
            arn,
            fifo: record.fifo,
            record: Mutex::new(record),
            arrivals: Notify::new(),
            claims: Mutex::new(HashSet::new()),
            dedup: Mutex::new(dedup),
            attempts: Mutex::new(Attempts::default()),
            moves: Mutex::new(moves),
            move_wake: Notify::new(),
            stats: QueueStats::default(),
        }
    }

    fn config(&self) -> QueueConfig {
        QueueConfig::from_attributes(self.fifo, &lock(&self.record).attributes)
    }

    fn record(&self) -> StoredQueue {
        lock(&self.record).clone()
    }
}

impl Embedded {
    /// Opens (creating if needed) the queue store in `dir` (the stack's `.spillway/queues/`)
    /// with the embedded engine. Must be called inside a tokio runtime.
    pub async fn open(dir: &Path, region: &str, account: &str) -> Result<Self, QueueError> {
        let dir = dir.to_path_buf();
        let store = tokio::task::spawn_blocking(move || RedbStore::open(&dir))
            .await
            .map_err(|e| QueueError::Internal(e.to_string()))??;
        Self::open_with_store(Arc::new(store), region, account).await
    }

    /// Opens the service over any [`Store`].
    pub async fn open_with_store(
        store: Arc<dyn Store>,
        region: &str,
        account: &str,
    ) -> Result<Self, QueueError> {
        let loaded = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
                let queues = store.queues()?;
                let mut dedups = Vec::new();
                for queue in &queues {
                    let dedup = if queue.fifo {
                        store.dedup_entries(queue.id)?
                    } else {
                        Vec::new()
                    };
                    let moves: Vec<MoveTask> = match store.meta(&move_task::meta_key(queue.id))? {
                        Some(bytes) => crate::store::decode(&bytes)?,
                        None => Vec::new(),
                    };
                    dedups.push((dedup, moves));
                }
                Ok((
                    queues,
                    dedups,
                    store.max_seq()?,
                    store.meta(RECEIPT_KEY_META)?,
                ))
            })
            .await
            .map_err(|e| QueueError::Internal(e.to_string()))??
        };
        let (stored_queues, dedups, max_seq, key) = loaded;
        let writer = Writer::start(store.clone(), max_seq)?;
        let receipts = match key.as_deref().and_then(ReceiptKey::from_slice) {
            Some(key) => key,
            None => {
                let key = ReceiptKey::new(rand::random());
                writer
                    .commit(vec![Mutation::PutMeta {
                        key: RECEIPT_KEY_META.into(),
                        value: key.bytes().to_vec(),
                    }])
                    .await?;
                key
            }
        };
        let now = now_ms();
        let queues = stored_queues
            .into_iter()
            .zip(dedups)
            .map(|(record, (dedup, moves))| {
                let arn = arn::queue_arn(region, account, &record.name);
                (
                    record.name.clone(),
                    Arc::new(QueueHandle::new(
                        record,
                        arn,
                        Dedup::load(dedup, now),
                        moves,
                    )),
                )
            })
            .collect();
        let service = Embedded {
            inner: Arc::new(Inner {
                region: region.to_string(),
                account: account.to_string(),
                store,
                writer,
                receipts,
                queues: RwLock::new(queues),
                admin: tokio::sync::Mutex::new(()),
                deleted: Mutex::new(HashMap::new()),
            }),
        };
        service.resume_move_tasks().await?;
        tokio::spawn(sweep_forever(Arc::downgrade(&service.inner)));
        Ok(service)
    }

    /// The queues' metrics (see [`crate::metrics`]).
    pub async fn render_metrics(&self) -> String {
        let mut rows = Vec::new();
        let now = now_ms();
        for queue in self.all_queues() {
            let id = queue.id;
            let read = self
                .read(move |s| {
                    let counts = s.counts(id, now)?;
                    let oldest = s
                        .states_from(id, 0, 1)?
                        .first()
                        .map(|(_, st)| st.enqueued_at);
                    Ok((counts, oldest))
                })
                .await;
            let Ok((c, oldest)) = read else { continue };
            let row = crate::metrics::Row {
                queue: queue.name.clone(),
                visible: c.total.saturating_sub(c.in_flight + c.delayed),
                not_visible: c.in_flight,
                delayed: c.delayed,
                oldest_age_secs: oldest.map_or(0, |t| now.saturating_sub(t) / 1000),
                sent: 0,
                received: 0,
                deleted: 0,
                empty_receives: 0,
            };
            rows.push(row.counters(&queue.stats));
        }
        crate::metrics::render(&rows)
    }

    /// Closes the store (the stack stops): its files are released at once, whoever still
    /// holds the service; later calls fail with an internal error.
    pub fn close(&self) {
        self.inner.store.close();
    }

    pub fn region(&self) -> &str {
        &self.inner.region
    }

    pub fn account_id(&self) -> &str {
        &self.inner.account
    }

    pub fn queue_arn(&self, name: &str) -> String {
        arn::queue_arn(&self.inner.region, &self.inner.account, name)
    }

    fn queue(&self, name: &str) -> Result<Arc<QueueHandle>, QueueError> {
        self.inner
            .queues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .ok_or(QueueError::QueueDoesNotExist)
    }

    fn queue_by_arn(&self, queue_arn: &str) -> Option<Arc<QueueHandle>> {
        self.queue(arn::queue_name(queue_arn)?).ok()
    }

    fn all_queues(&self) -> Vec<Arc<QueueHandle>> {
        self.inner
            .queues
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Runs a read off the async threads.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, QueueError> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || read(&*store))
            .await
            .map_err(|e| QueueError::Internal(e.to_string()))?
            .map_err(QueueError::from)
    }

    /// Removes expired messages (MessageRetentionPeriod) and dedup entries. Runs every
    /// [`SWEEP_EVERY`] by itself; public so tests and tools can run it at once.
    pub async fn sweep(&self) -> Result<(), QueueError> {
        let now = now_ms();
        for queue in self.all_queues() {
            let retention_ms = u64::from(queue.config().message_retention_period) * 1000;
            let id = queue.id;
            let states = self
                .read(move |s| s.states_from(id, 0, SWEEP_BATCH))
                .await?;
            let mut mutations: Vec<Mutation> = states
                .into_iter()
                .filter(|(_, state)| state.enqueued_at + retention_ms <= now)
                .map(|(seq, _)| Mutation::DeleteMessage {
                    queue: id,
                    seq,
                    if_nonce: None,
                })
                .collect();
            if queue.fifo {
                let expired = lock(&queue.dedup).expire(now);
                mutations.extend(
                    expired
                        .into_iter()
                        .map(|key| Mutation::DeleteDedup { queue: id, key }),
                );
            }
            if !mutations.is_empty() {
                self.inner.writer.commit(mutations).await?;
            }
        }
        Ok(())
    }
}

async fn sweep_forever(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        let Some(inner) = inner.upgrade() else { return };
        let service = Embedded { inner };
        if let Err(error) = service.sweep().await {
            tracing::warn!(%error, "queue retention sweep failed");
        }
    }
}
