//! The JetStream engine: SQS over NATS JetStream, so that several spillway processes given the
//! same server and namespace serve the same queues.
//!
//! What lives where (every name starts with the namespace `NS`, so stacks and tests sharing a
//! server stay apart):
//! - queue records (attributes, tags, ids, the last purge) in the KV bucket `NS_sqs_queues`,
//!   key `q.NAME`, and the receipt key every node seals handles with under `meta.receipt-key`;
//!   CreateQueue writes with KV `create`, so two nodes creating one queue agree on one record;
//! - a queue's messages in the stream `NS_sqs_ID` (subject `NS.sqs.ID`, file storage,
//!   MaxAge = MessageRetentionPeriod), read through one durable pull consumer `receivers`
//!   shared by every node: explicit ack, AckWait = VisibilityTimeout, MaxDeliver unlimited
//!   (spillway moves a message to its dead-letter queue itself, with its attributes);
//! - per-delivery notes (first receive time, deliveries spent on a delay) in the KV bucket
//!   `NS_sqs_deliveries`, key `ID.SEQ` (see `deliveries`).
//!
//! Each node caches queue records and refreshes them from a KV watch; a name the cache does
//! not know is looked up in the bucket, so a queue created on another node is usable at once.

mod deliveries;
mod messages;
mod queues;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, PullConsumer, pull};
use async_nats::jetstream::kv;
use async_nats::jetstream::stream::{self, StorageType};
use async_nats::jetstream::{self as js};
use futures_util::StreamExt;

use crate::arn;
use crate::clock::now_ms;
use crate::embedded::QueueStats;
use crate::error::QueueError;
use crate::queue_attributes::{DEFAULT_RETENTION, QueueConfig};
use crate::receipt::ReceiptKey;
use crate::store::StoredQueue;

const QUEUE_KEY_PREFIX: &str = "q.";
const RECEIPT_KEY: &str = "meta.receipt-key";
const CONSUMER: &str = "receivers";
/// SQS's longest retention; delivery notes outlive no message.
const MAX_RETENTION: Duration = Duration::from_secs(1_209_600);

/// How to reach JetStream and which names to use there.
#[derive(Debug, Clone)]
pub struct JetStreamOptions {
    /// `nats://host:port`.
    pub url: String,
    /// Prefix of every stream, bucket and subject: `[A-Za-z0-9_-]`, 1-32 characters.
    pub namespace: String,
}

/// Failures talking to NATS; all reach clients as SQS's InternalFailure.
#[derive(Debug, thiserror::Error)]
pub enum JetStreamError {
    #[error("cannot connect to NATS at {url}: {detail}")]
    Connect { url: String, detail: String },
    #[error("the namespace {0:?} must be 1-32 characters of A-Z, a-z, 0-9, '_' and '-'")]
    Namespace(String),
    #[error("JetStream {what}: {detail}")]
    Call { what: &'static str, detail: String },
    #[error("the queue service is closed")]
    Closed,
}

impl From<JetStreamError> for QueueError {
    fn from(e: JetStreamError) -> Self {
        QueueError::Internal(e.to_string())
    }
}

/// Wraps any NATS error with what was being done.
pub(crate) fn call<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> QueueError {
    move |e| {
        JetStreamError::Call {
            what,
            detail: e.to_string(),
        }
        .into()
    }
}

pub fn valid_namespace(namespace: &str) -> bool {
    (1..=32).contains(&namespace.len())
        && namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A queue as this node knows it: its record (refreshed by the watch) and its consumer.
pub(crate) struct JsQueue {
    pub id: u64,
    pub name: String,
    pub arn: String,
    pub stream: String,
    pub subject: String,
    pub record: StoredQueue,
    /// The record's KV revision, for compare-and-set updates.
    pub revision: u64,
    pub consumer: PullConsumer,
    pub stats: Arc<QueueStats>,
}

impl JsQueue {
    pub fn config(&self) -> QueueConfig {
        QueueConfig::from_attributes(false, &self.record.attributes)
    }
}

pub struct JetStreamQueues {
    region: String,
    account: String,
    namespace: String,
    client: async_nats::Client,
    context: js::Context,
    queues_kv: kv::Store,
    deliveries: kv::Store,
    receipts: ReceiptKey,
    cache: RwLock<HashMap<String, Arc<JsQueue>>>,
    /// This node's CloudWatch counters by queue name (they survive record refreshes).
    stats: RwLock<HashMap<String, Arc<QueueStats>>>,
    closed: AtomicBool,
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

impl JetStreamQueues {
    pub async fn open(
        options: JetStreamOptions,
        region: &str,
        account: &str,
    ) -> Result<Self, QueueError> {
        if !valid_namespace(&options.namespace) {
            return Err(JetStreamError::Namespace(options.namespace).into());
        }
        let client = async_nats::ConnectOptions::new()
            .name("spillway")
            .connect(&options.url)
            .await
            .map_err(|e| JetStreamError::Connect {
                url: options.url.clone(),
                detail: e.to_string(),
            })?;
        let context = js::new(client.clone());
        let ns = &options.namespace;
        let queues_kv = bucket(
            &context,
            format!("{ns}_sqs_queues"),
            "spillway: SQS queue records",
            Duration::ZERO,
        )
        .await?;
        let deliveries = bucket(
            &context,
            format!("{ns}_sqs_deliveries"),
            "spillway: first receive times and delay deliveries",
            MAX_RETENTION,
        )
        .await?;
        let receipts = shared_receipt_key(&queues_kv).await?;
        let service = JetStreamQueues {
            region: region.to_string(),
            account: account.to_string(),
            namespace: options.namespace,
            client,
            context,
            queues_kv,
            deliveries,
            receipts,
            cache: RwLock::new(HashMap::new()),
            stats: RwLock::new(HashMap::new()),
            closed: AtomicBool::new(false),
        };
        Ok(service)
    }

    /// Keeps the cache in step with the bucket. Called once the service is in its `Arc`.
    pub(crate) fn watch(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let kv = self.queues_kv.clone();
        tokio::spawn(async move {
            // A watch ends when the connection does (a NATS restart): subscribe again, with
            // backoff, for as long as the service lives. Whatever changed in between was
            // missed, so each (re)start empties the cache and queues are read afresh from
            // the bucket; without this, a policy or redrive change made on another node would
            // never be seen here again.
            let mut backoff = Duration::from_millis(100);
            loop {
                match weak.upgrade() {
                    Some(service) if !service.closed.load(Ordering::SeqCst) => {}
                    _ => return,
                }
                match kv.watch(format!("{QUEUE_KEY_PREFIX}>")).await {
                    Ok(watch) => {
                        if let Some(service) = weak.upgrade() {
                            write(&service.cache).clear();
                        }
                        backoff = Duration::from_millis(100);
                        follow(weak.clone(), watch).await;
                        tracing::info!("queue record watch ended; subscribing again");
                    }
                    Err(error) => tracing::warn!(%error, "queue record watch failed to start"),
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        });
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let client = self.client.clone();
        tokio::spawn(async move {
            let _ = client.drain().await;
        });
    }

    pub(crate) fn check_open(&self) -> Result<(), QueueError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(JetStreamError::Closed.into());
        }
        Ok(())
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn account_id(&self) -> &str {
        &self.account
    }

    pub fn queue_arn(&self, name: &str) -> String {
        arn::queue_arn(&self.region, &self.account, name)
    }

    /// Retention is the stream's MaxAge: the server expires messages by itself.
    pub async fn sweep(&self) -> Result<(), QueueError> {
        self.check_open()
    }

    fn stream_name(&self, id: u64) -> String {
        format!("{}_sqs_{id:016x}", self.namespace)
    }

    fn subject(&self, id: u64) -> String {
        format!("{}.sqs.{id:016x}", self.namespace)
    }

    fn stats_for(&self, name: &str) -> Arc<QueueStats> {
        if let Some(s) = read(&self.stats).get(name) {
            return s.clone();
        }
        write(&self.stats)
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// The stream of a queue record.
    fn stream_config(&self, record: &StoredQueue) -> stream::Config {
        let retention = record
            .attributes
            .get("MessageRetentionPeriod")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_RETENTION);
        stream::Config {
            name: self.stream_name(record.id),
            description: Some(format!("spillway: SQS queue {}", record.name)),
            subjects: vec![self.subject(record.id)],
            storage: StorageType::File,
            max_age: Duration::from_secs(u64::from(retention)),
            // Work-queue retention: an acked (deleted) message leaves the stream at once. The
            // default (limits) keeps deleted bodies on the server until MaxAge, growing disk
            // with throughput and dating ApproximateAgeOfOldestMessage from deleted messages.
            retention: stream::RetentionPolicy::WorkQueue,
            ..Default::default()
        }
    }

    /// The shared consumer of a queue record: the ack wait is the queue's visibility timeout.
    fn consumer_config(record: &StoredQueue) -> pull::Config {
        let config = QueueConfig::from_attributes(false, &record.attributes);
        pull::Config {
            durable_name: Some(CONSUMER.into()),
            description: Some("spillway: every node's receives".into()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(u64::from(config.visibility_timeout.max(1))),
            max_deliver: -1,
            // SQS's in-flight limit for standard queues.
            max_ack_pending: 120_000,
            ..Default::default()
        }
    }

    /// A queue by name: from the cache, else from the bucket.
    pub(crate) async fn queue(&self, name: &str) -> Result<Arc<JsQueue>, QueueError> {
        self.check_open()?;
        // A name no queue can have (from a client's QueueUrl) is not a KV key either: NATS
        // would refuse `*`, `>` or `a..b` as a key, an InternalFailure; SQS says no such queue.
        let fifo = name.ends_with(".fifo");
        if crate::validate::queue_name(name, fifo).is_err() {
            return Err(QueueError::QueueDoesNotExist);
        }
        if let Some(q) = read(&self.cache).get(name) {
            return Ok(q.clone());
        }
        let entry = self
            .queues_kv
            .entry(format!("{QUEUE_KEY_PREFIX}{name}"))
            .await
            .map_err(call("reading a queue record"))?;
        let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
            return Err(QueueError::QueueDoesNotExist);
        };
        let record: StoredQueue = decode_record(&entry.value)?;
        self.remember(record, entry.revision).await
    }

    /// Caches a record read from the bucket (its stream and consumer must exist).
    async fn remember(
        &self,
        record: StoredQueue,
        revision: u64,
    ) -> Result<Arc<JsQueue>, QueueError> {
        let stream = self
            .context
            .get_stream_no_info(self.stream_name(record.id))
            .await
            .map_err(call("opening a queue's stream"))?;
        let consumer: PullConsumer = stream
            .get_consumer(CONSUMER)
            .await
            .map_err(call("opening a queue's consumer"))?;
        let queue = Arc::new(self.handle(record, revision, consumer));
        write(&self.cache).insert(queue.name.clone(), queue.clone());
        Ok(queue)
    }

    fn handle(&self, record: StoredQueue, revision: u64, consumer: PullConsumer) -> JsQueue {
        JsQueue {
            id: record.id,
            arn: self.queue_arn(&record.name),
            stream: self.stream_name(record.id),
            subject: self.subject(record.id),
            stats: self.stats_for(&record.name),
            name: record.name.clone(),
            record,
            revision,
            consumer,
        }
    }

    pub(crate) async fn queue_by_arn(&self, queue_arn: &str) -> Option<Arc<JsQueue>> {
        let queue = self.queue(arn::queue_name(queue_arn)?).await.ok()?;
        (queue.arn == queue_arn).then_some(queue)
    }

    /// Every queue record in the bucket, by name.
    pub(crate) async fn all_records(&self) -> Result<BTreeMap<String, StoredQueue>, QueueError> {
        self.check_open()?;
        let mut keys = self
            .queues_kv
            .keys()
            .await
            .map_err(call("listing queues"))?;
        let mut names = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(call("listing queues"))?;
            if let Some(name) = key.strip_prefix(QUEUE_KEY_PREFIX) {
                names.push(name.to_string());
            }
        }
        let mut out = BTreeMap::new();
        for name in names {
            if let Ok(queue) = self.queue(&name).await {
                out.insert(name, queue.record.clone());
            }
        }
        Ok(out)
    }

    /// The queues' metrics, as the embedded engine renders them; counts from the consumers.
    pub async fn render_metrics(&self) -> String {
        let Ok(records) = self.all_records().await else {
            return String::new();
        };
        let now = now_ms();
        let mut rows = Vec::new();
        for name in records.keys() {
            let Ok(queue) = self.queue(name).await else {
                continue;
            };
            let Ok(counts) = self.counts(&queue).await else {
                continue;
            };
            let oldest = self.oldest(&queue).await.unwrap_or(None);
            rows.push(
                crate::metrics::Row {
                    queue: name.clone(),
                    visible: counts.visible,
                    not_visible: counts.not_visible,
                    delayed: 0,
                    oldest_age_secs: oldest.map_or(0, |t| now.saturating_sub(t) / 1000),
                    sent: 0,
                    received: 0,
                    deleted: 0,
                    empty_receives: 0,
                }
                .counters(&queue.stats),
            );
        }
        crate::metrics::render(&rows)
    }
}

/// A KV bucket, created if missing. Its stream is made here as KV buckets are laid out
/// (`KV_NAME` over `$KV.NAME.>`, one value per key, rollups allowed), not with async-nats'
/// `create_key_value`: that asks for the account's info first, in a shape nats-server 2.9
/// does not answer.
async fn bucket(
    context: &js::Context,
    name: String,
    description: &str,
    max_age: Duration,
) -> Result<kv::Store, QueueError> {
    let config = stream::Config {
        name: format!("KV_{name}"),
        description: Some(description.into()),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage: StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        num_replicas: 1,
        ..Default::default()
    };
    // Created by another node or an earlier run: the same config is accepted again.
    if let Err(error) = context.create_stream(config).await {
        tracing::debug!(%error, bucket = %name, "the bucket's stream was not created");
    }
    context
        .get_key_value(name)
        .await
        .map_err(call("opening a KV bucket"))
}

/// The receipt key: the first node writes one, every other reads it.
async fn shared_receipt_key(kv: &kv::Store) -> Result<ReceiptKey, QueueError> {
    let fresh: [u8; 32] = rand::random();
    match kv.create(RECEIPT_KEY, fresh.to_vec().into()).await {
        Ok(_) => return Ok(ReceiptKey::new(fresh)),
        Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
        Err(e) => return Err(call("writing the receipt key")(&e)),
    }
    let stored = kv
        .get(RECEIPT_KEY)
        .await
        .map_err(call("reading the receipt key"))?;
    stored
        .as_deref()
        .and_then(ReceiptKey::from_slice)
        .ok_or_else(|| QueueError::Internal("the shared receipt key is malformed".into()))
}

pub(crate) fn decode_record(bytes: &[u8]) -> Result<StoredQueue, QueueError> {
    serde_json::from_slice(bytes)
        .map_err(|e| QueueError::Internal(format!("a queue record in JetStream: {e}")))
}

pub(crate) fn encode_record(record: &StoredQueue) -> Result<bytes::Bytes, QueueError> {
    serde_json::to_vec(record)
        .map(Into::into)
        .map_err(|e| QueueError::Internal(e.to_string()))
}

/// Applies the bucket's changes to the cache: a new record of the same queue replaces the
/// cached one (keeping its consumer), a deleted or recreated queue is dropped (looked up
/// again on next use).
async fn follow(weak: Weak<JetStreamQueues>, mut watch: kv::Watch) {
    while let Some(entry) = watch.next().await {
        let Some(service) = weak.upgrade() else {
            return;
        };
        let Ok(entry) = entry else { continue };
        let Some(name) = entry.key.strip_prefix(QUEUE_KEY_PREFIX) else {
            continue;
        };
        let cached = read(&service.cache).get(name).cloned();
        let Some(cached) = cached else { continue };
        let updated = match entry.operation {
            kv::Operation::Put => decode_record(&entry.value)
                .ok()
                .filter(|r| r.id == cached.id && entry.revision > cached.revision),
            _ => None,
        };
        let mut cache = write(&service.cache);
        match updated {
            Some(record) => {
                let queue = service.handle(record, entry.revision, cached.consumer.clone());
                cache.insert(name.to_string(), Arc::new(queue));
            }
            None if entry.revision > cached.revision => {
                cache.remove(name);
            }
            None => {}
        }
    }
}

/// Deletes every stream and KV bucket of a namespace (its queues, messages and records).
/// For tests and for `spillway` tooling that retires a namespace; returns how many went.
pub async fn remove_namespace(url: &str, namespace: &str) -> Result<usize, QueueError> {
    if !valid_namespace(namespace) {
        return Err(JetStreamError::Namespace(namespace.to_string()).into());
    }
    let client = async_nats::connect(url)
        .await
        .map_err(|e| JetStreamError::Connect {
            url: url.to_string(),
            detail: e.to_string(),
        })?;
    let context = js::new(client);
    let ours = [format!("{namespace}_sqs_"), format!("KV_{namespace}_sqs_")];
    let mut names = context.stream_names();
    let mut doomed = Vec::new();
    while let Some(name) = names.next().await {
        let name = name.map_err(call("listing streams"))?;
        if ours.iter().any(|p| name.starts_with(p.as_str())) {
            doomed.push(name);
        }
    }
    for name in &doomed {
        context
            .delete_stream(name)
            .await
            .map_err(call("deleting a stream"))?;
    }
    Ok(doomed.len())
}
