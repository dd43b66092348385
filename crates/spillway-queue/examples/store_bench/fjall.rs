//! The queue's [`Store`] over fjall (an LSM tree), for the storage comparison only (never
//! served).
//!
//! The redb store's layout with byte keys: big-endian integers concatenated, so the keys sort
//! as redb's tuples do. One writer batch is one single-writer transaction committed with
//! `PersistMode::SyncAll` (the journal is fsync'd before commit returns). Reads take a
//! snapshot.

use std::path::Path;

use fjall::{
    KeyspaceCreateOptions, PersistMode, Readable, SingleWriterTxDatabase, SingleWriterTxKeyspace,
    SingleWriterWriteTx as WriteTransaction,
};
use spillway_queue::store::{
    Counts, DedupEntry, DeliveryState, Mutation, QueueId, Store, StoreError, StoredMessage,
    StoredQueue,
};

pub struct FjallStore {
    db: SingleWriterTxDatabase,
    queues: SingleWriterTxKeyspace,
    messages: SingleWriterTxKeyspace,
    states: SingleWriterTxKeyspace,
    /// `queue ‖ visible_at ‖ seq` → 1 when received before, 0 when never (as redb's).
    visibility: SingleWriterTxKeyspace,
    counts: SingleWriterTxKeyspace,
    dedup: SingleWriterTxKeyspace,
    meta: SingleWriterTxKeyspace,
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

fn key2(a: u64, b: u64) -> [u8; 16] {
    let mut k = [0; 16];
    k[..8].copy_from_slice(&a.to_be_bytes());
    k[8..].copy_from_slice(&b.to_be_bytes());
    k
}

fn key3(a: u64, b: u64, c: u64) -> [u8; 24] {
    let mut k = [0; 24];
    k[..8].copy_from_slice(&a.to_be_bytes());
    k[8..16].copy_from_slice(&b.to_be_bytes());
    k[16..].copy_from_slice(&c.to_be_bytes());
    k
}

fn word(bytes: &[u8], at: usize) -> Result<u64, StoreError> {
    bytes
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::new("a short key"))
}

fn dedup_key(queue: QueueId, key: &str) -> Vec<u8> {
    let mut k = queue.to_be_bytes().to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}

fn kind(state: &DeliveryState) -> u8 {
    u8::from(state.receive_count > 0)
}

impl FjallStore {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = SingleWriterTxDatabase::builder(dir.join("fjall"))
            .open()
            .map_err(err)?;
        let ks = |name: &str| {
            db.keyspace(name, KeyspaceCreateOptions::default)
                .map_err(err)
        };
        Ok(FjallStore {
            queues: ks("queues")?,
            messages: ks("messages")?,
            states: ks("states")?,
            visibility: ks("visibility")?,
            counts: ks("counts")?,
            dedup: ks("dedup")?,
            meta: ks("meta")?,
            db,
        })
    }

    fn bump(
        &self,
        t: &mut WriteTransaction<'_>,
        queue: QueueId,
        delta: i64,
    ) -> Result<(), StoreError> {
        let current = match t.get(&self.counts, queue.to_be_bytes()).map_err(err)? {
            Some(v) => word(&v, 0)?,
            None => 0,
        };
        t.insert(
            &self.counts,
            queue.to_be_bytes(),
            current.saturating_add_signed(delta).to_be_bytes(),
        );
        Ok(())
    }

    fn old_state(
        &self,
        t: &WriteTransaction<'_>,
        queue: QueueId,
        seq: u64,
    ) -> Result<Option<DeliveryState>, StoreError> {
        match t.get(&self.states, key2(queue, seq)).map_err(err)? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    fn remove_range(
        &self,
        t: &mut WriteTransaction<'_>,
        keyspace: &SingleWriterTxKeyspace,
        prefix: &[u8],
    ) -> Result<(), StoreError> {
        let keys: Vec<_> = t
            .prefix(keyspace, prefix)
            .map(|g| g.key().map_err(err))
            .collect::<Result<_, _>>()?;
        for key in keys {
            t.remove(keyspace, key);
        }
        Ok(())
    }

    fn apply_one(
        &self,
        t: &mut WriteTransaction<'_>,
        mutation: &Mutation,
    ) -> Result<(), StoreError> {
        match mutation {
            Mutation::PutQueue(queue) => {
                t.insert(&self.queues, queue.name.as_bytes(), encode(queue)?);
            }
            Mutation::DeleteQueue { id, name } => {
                let same = match t.get(&self.queues, name.as_bytes()).map_err(err)? {
                    Some(v) => decode::<StoredQueue>(&v)?.id == *id,
                    None => false,
                };
                if same {
                    t.remove(&self.queues, name.as_bytes());
                }
                let prefix = id.to_be_bytes();
                for keyspace in [&self.messages, &self.states, &self.visibility, &self.dedup] {
                    self.remove_range(t, keyspace, &prefix)?;
                }
                t.remove(&self.counts, prefix);
            }
            Mutation::PutMessage {
                queue,
                seq,
                record,
                state,
            } => {
                match self.old_state(t, *queue, *seq)? {
                    Some(old) => t.remove(&self.visibility, key3(*queue, old.visible_at, *seq)),
                    None => self.bump(t, *queue, 1)?,
                }
                t.insert(&self.states, key2(*queue, *seq), encode(state)?);
                t.insert(&self.messages, key2(*queue, *seq), encode(record)?);
                t.insert(
                    &self.visibility,
                    key3(*queue, state.visible_at, *seq),
                    [kind(state)],
                );
            }
            Mutation::SetState {
                queue,
                seq,
                state,
                if_nonce,
            } => {
                let Some(old) = self.old_state(t, *queue, *seq)? else {
                    return Ok(());
                };
                if if_nonce.is_some_and(|n| n != old.receipt_nonce) {
                    return Ok(());
                }
                t.remove(&self.visibility, key3(*queue, old.visible_at, *seq));
                t.insert(&self.states, key2(*queue, *seq), encode(state)?);
                t.insert(
                    &self.visibility,
                    key3(*queue, state.visible_at, *seq),
                    [kind(state)],
                );
            }
            Mutation::DeleteMessage {
                queue,
                seq,
                if_nonce,
            } => {
                let Some(old) = self.old_state(t, *queue, *seq)? else {
                    return Ok(());
                };
                if if_nonce.is_some_and(|n| n != old.receipt_nonce) {
                    return Ok(());
                }
                t.remove(&self.visibility, key3(*queue, old.visible_at, *seq));
                t.remove(&self.states, key2(*queue, *seq));
                t.remove(&self.messages, key2(*queue, *seq));
                self.bump(t, *queue, -1)?;
            }
            Mutation::Purge { queue, below_seq } => {
                let mut doomed = Vec::new();
                for guard in t.range(&self.states, key2(*queue, 0)..key2(*queue, *below_seq)) {
                    let (key, value) = guard.into_inner().map_err(err)?;
                    let state: DeliveryState = decode(&value)?;
                    doomed.push((word(&key, 8)?, state.visible_at));
                }
                for (seq, visible_at) in &doomed {
                    t.remove(&self.states, key2(*queue, *seq));
                    t.remove(&self.messages, key2(*queue, *seq));
                    t.remove(&self.visibility, key3(*queue, *visible_at, *seq));
                }
                self.bump(t, *queue, -i64::try_from(doomed.len()).unwrap_or(i64::MAX))?;
            }
            Mutation::PutDedup { queue, key, entry } => {
                t.insert(&self.dedup, dedup_key(*queue, key), encode(entry)?);
            }
            Mutation::DeleteDedup { queue, key } => {
                t.remove(&self.dedup, dedup_key(*queue, key));
            }
            Mutation::PutMeta { key, value } => {
                t.insert(&self.meta, key.as_bytes(), value.as_slice());
            }
            Mutation::DeleteMeta { key } => {
                t.remove(&self.meta, key.as_bytes());
            }
        }
        Ok(())
    }
}

impl Store for FjallStore {
    fn apply(&self, mutations: &[Mutation]) -> Result<(), StoreError> {
        let mut t = self.db.write_tx().durability(Some(PersistMode::SyncAll));
        for mutation in mutations {
            self.apply_one(&mut t, mutation)?;
        }
        t.commit().map_err(err)
    }

    fn queues(&self) -> Result<Vec<StoredQueue>, StoreError> {
        let snapshot = self.db.read_tx();
        let mut out = Vec::new();
        for guard in snapshot.iter(&self.queues) {
            out.push(decode(&guard.value().map_err(err)?)?);
        }
        Ok(out)
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let snapshot = self.db.read_tx();
        Ok(snapshot
            .get(&self.meta, key.as_bytes())
            .map_err(err)?
            .map(|v| v.to_vec()))
    }

    fn max_seq(&self) -> Result<u64, StoreError> {
        // Only read when the service opens: a full scan is fine for the benchmark.
        let snapshot = self.db.read_tx();
        let mut max = 0;
        for guard in snapshot.iter(&self.states) {
            max = max.max(word(&guard.key().map_err(err)?, 8)?);
        }
        Ok(max)
    }

    fn counts(&self, queue: QueueId, now: u64) -> Result<Counts, StoreError> {
        let snapshot = self.db.read_tx();
        let mut result = Counts {
            total: match snapshot
                .get(&self.counts, queue.to_be_bytes())
                .map_err(err)?
            {
                Some(v) => word(&v, 0)?,
                None => 0,
            },
            ..Counts::default()
        };
        let from = key3(queue, now.saturating_add(1), 0);
        let to = key3(queue, u64::MAX, u64::MAX);
        for guard in snapshot.range(&self.visibility, from..=to) {
            if guard.value().map_err(err)?.first() == Some(&1) {
                result.in_flight += 1;
            } else {
                result.delayed += 1;
            }
        }
        Ok(result)
    }

    fn visible(&self, queue: QueueId, now: u64, limit: usize) -> Result<Vec<u64>, StoreError> {
        let snapshot = self.db.read_tx();
        let mut out = Vec::new();
        for guard in snapshot
            .range(
                &self.visibility,
                key3(queue, 0, 0)..=key3(queue, now, u64::MAX),
            )
            .take(limit)
        {
            out.push(word(&guard.key().map_err(err)?, 16)?);
        }
        Ok(out)
    }

    fn next_visible_after(&self, queue: QueueId, now: u64) -> Result<Option<u64>, StoreError> {
        let snapshot = self.db.read_tx();
        let from = key3(queue, now.saturating_add(1), 0);
        let to = key3(queue, u64::MAX, u64::MAX);
        match snapshot.range(&self.visibility, from..=to).next() {
            Some(guard) => Ok(Some(word(&guard.key().map_err(err)?, 8)?)),
            None => Ok(None),
        }
    }

    fn states_from(
        &self,
        queue: QueueId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, DeliveryState)>, StoreError> {
        let snapshot = self.db.read_tx();
        let mut out = Vec::new();
        for guard in snapshot
            .range(&self.states, key2(queue, from_seq)..=key2(queue, u64::MAX))
            .take(limit)
        {
            let (key, value) = guard.into_inner().map_err(err)?;
            out.push((word(&key, 8)?, decode(&value)?));
        }
        Ok(out)
    }

    fn message(&self, queue: QueueId, seq: u64) -> Result<Option<StoredMessage>, StoreError> {
        let snapshot = self.db.read_tx();
        let Some(state) = snapshot.get(&self.states, key2(queue, seq)).map_err(err)? else {
            return Ok(None);
        };
        let Some(record) = snapshot
            .get(&self.messages, key2(queue, seq))
            .map_err(err)?
        else {
            return Ok(None);
        };
        Ok(Some(StoredMessage {
            seq,
            record: decode(&record)?,
            state: decode(&state)?,
        }))
    }

    fn state(&self, queue: QueueId, seq: u64) -> Result<Option<DeliveryState>, StoreError> {
        let snapshot = self.db.read_tx();
        match snapshot.get(&self.states, key2(queue, seq)).map_err(err)? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    fn dedup_entries(&self, queue: QueueId) -> Result<Vec<(String, DedupEntry)>, StoreError> {
        let snapshot = self.db.read_tx();
        let mut out = Vec::new();
        for guard in snapshot.prefix(&self.dedup, queue.to_be_bytes()) {
            let (key, value) = guard.into_inner().map_err(err)?;
            let name = String::from_utf8_lossy(key.get(8..).unwrap_or_default()).into_owned();
            out.push((name, decode(&value)?));
        }
        Ok(out)
    }
}
