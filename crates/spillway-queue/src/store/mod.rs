//! The embedded engine's durable storage, behind one trait (redb today; SQLite is the
//! comparison still to measure). NATS JetStream does not sit behind this trait: it keeps
//! delivery state of its own, so it is an engine beside the embedded one (`crate::jetstream`).
//!
//! The trait is message-level, not a key-value API: a store keeps queues, messages (an
//! immutable record plus a small delivery state), a visibility index by
//! `(queue, visible_at, seq)` so that a receive is a range scan, per-queue counts, FIFO
//! deduplication entries and a little metadata. Every change goes through [`Store::apply`],
//! which commits a batch of [`Mutation`]s in one durable (fsync'd) transaction; the
//! [`writer::Writer`] feeds it so that concurrent callers share commits (group commit).
//! Reads are synchronous and short; the service calls them off the async threads.

pub mod redb;
pub mod writer;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::MessageAttributes;

/// A queue's identity for storage: random per creation, so a queue deleted and created again
/// under the same name shares nothing with the old one (old receipt handles find nothing).
pub type QueueId = u64;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

impl StoreError {
    pub fn new(error: impl std::fmt::Display) -> Self {
        StoreError(error.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredQueue {
    pub id: QueueId,
    pub name: String,
    pub fifo: bool,
    /// The attributes that were set, normalized.
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// Epoch seconds.
    pub created: u64,
    pub last_modified: u64,
    /// Epoch milliseconds of the last PurgeQueue.
    pub last_purge: Option<u64>,
}

/// What a message is: written once at send (or when it moves to a dead-letter queue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub message_id: String,
    pub body: String,
    pub attributes: MessageAttributes,
    pub system_attributes: MessageAttributes,
    /// Epoch milliseconds (`SentTimestamp`), kept when the message moves to a DLQ.
    pub sent_at: u64,
    pub sender_id: String,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
    pub sequence_number: Option<String>,
    pub dead_letter_source_arn: Option<String>,
}

/// Where a message is in its life: rewritten on every receive and visibility change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryState {
    /// Epoch milliseconds from which the message may be received.
    pub visible_at: u64,
    pub receive_count: u32,
    pub first_receive_at: Option<u64>,
    /// When the latest receive happened (the 12-hour visibility limit counts from it).
    pub last_receive_at: Option<u64>,
    /// Random per receive; a receipt handle is valid for the receive whose nonce it carries.
    pub receipt_nonce: u64,
    /// Epoch milliseconds retention counts from.
    pub enqueued_at: u64,
    /// Copied from the record so a FIFO scan needs no bodies.
    pub group_id: Option<String>,
}

impl DeliveryState {
    pub fn in_flight(&self, now: u64) -> bool {
        self.receive_count > 0 && self.visible_at > now
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub seq: u64,
    pub record: MessageRecord,
    pub state: DeliveryState,
}

/// A FIFO deduplication entry: the first send's answer, repeated for 5 minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupEntry {
    pub sent_at: u64,
    pub message_id: String,
    pub sequence_number: String,
}

// Mutations live only between a call and its commit, so the size of the message variant
// costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Mutation {
    PutQueue(StoredQueue),
    /// Removes the queue and everything in it.
    DeleteQueue {
        id: QueueId,
        name: String,
    },
    PutMessage {
        queue: QueueId,
        seq: u64,
        record: MessageRecord,
        state: DeliveryState,
    },
    /// Ignored when the message is gone (deleted by a concurrent call), or when `if_nonce` is
    /// given and the stored state's `receipt_nonce` is another: the change was planned from a
    /// state that a newer receive has since replaced (a stale handle must not undo it).
    SetState {
        queue: QueueId,
        seq: u64,
        state: DeliveryState,
        if_nonce: Option<u64>,
    },
    /// Ignored when the message is gone, or `if_nonce` is given and is not the stored one.
    DeleteMessage {
        queue: QueueId,
        seq: u64,
        if_nonce: Option<u64>,
    },
    /// Removes every message with a sequence below `below_seq`.
    Purge {
        queue: QueueId,
        below_seq: u64,
    },
    PutDedup {
        queue: QueueId,
        key: String,
        entry: DedupEntry,
    },
    DeleteDedup {
        queue: QueueId,
        key: String,
    },
    PutMeta {
        key: String,
        value: Vec<u8>,
    },
    /// Ignored when the key is absent.
    DeleteMeta {
        key: String,
    },
}

/// Counts of one queue (the Approximate* attributes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

pub trait Store: Send + Sync + 'static {
    /// Commits all mutations in one transaction, durably: when this returns Ok the batch
    /// survives a crash or power loss; when it returns Err none of it is acknowledged.
    fn apply(&self, mutations: &[Mutation]) -> Result<(), StoreError>;
    /// Releases the store's files (a stopped stack); every later call fails.
    fn close(&self) {}
    fn queues(&self) -> Result<Vec<StoredQueue>, StoreError>;
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The highest message sequence in the store (0 when empty).
    fn max_seq(&self) -> Result<u64, StoreError>;
    /// Total from a stored counter; in-flight and delayed by scanning the index past `now`,
    /// which holds only messages that are not visible.
    fn counts(&self, queue: QueueId, now: u64) -> Result<Counts, StoreError>;
    /// Sequences of up to `limit` messages visible at `now`, earliest visible first.
    fn visible(&self, queue: QueueId, now: u64, limit: usize) -> Result<Vec<u64>, StoreError>;
    /// The earliest `visible_at` after `now` (when a long poll must look again).
    fn next_visible_after(&self, queue: QueueId, now: u64) -> Result<Option<u64>, StoreError>;
    /// Up to `limit` delivery states in sequence (send) order from `from_seq` on.
    fn states_from(
        &self,
        queue: QueueId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, DeliveryState)>, StoreError>;
    fn message(&self, queue: QueueId, seq: u64) -> Result<Option<StoredMessage>, StoreError>;
    fn state(&self, queue: QueueId, seq: u64) -> Result<Option<DeliveryState>, StoreError>;
    fn dedup_entries(&self, queue: QueueId) -> Result<Vec<(String, DedupEntry)>, StoreError>;
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(value).map_err(StoreError::new)
}

pub(crate) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(StoreError::new)
}
