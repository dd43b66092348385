//! FIFO pieces: sequence numbers, the deduplication window, and ReceiveRequestAttemptId.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::store::DedupEntry;

/// Deduplication and receive attempts last five minutes.
pub const WINDOW_MS: u64 = 5 * 60 * 1000;

/// SequenceNumber as SQS shows it: a 20-digit decimal that grows with every send.
pub fn sequence_number(seq: u64) -> String {
    format!("{}", 10_000_000_000_000_000_000u128 + u128::from(seq))
}

/// The deduplication id of a content-based queue: SHA-256 of the body, hex.
pub fn content_deduplication_id(body: &str) -> String {
    hex::encode(Sha256::digest(body.as_bytes()))
}

/// The dedup key under the queue's DeduplicationScope.
pub fn dedup_key(per_group: bool, group: Option<&str>, id: &str) -> String {
    match (per_group, group) {
        (true, Some(group)) => format!("{group}\u{0}{id}"),
        _ => id.to_string(),
    }
}

/// A FIFO queue's deduplication entries within the window, in memory (they are also stored,
/// so a restart keeps them). Bounded by the sends of five minutes.
#[derive(Default)]
pub struct Dedup {
    entries: HashMap<String, DedupEntry>,
}

impl Dedup {
    pub fn load(entries: Vec<(String, DedupEntry)>, now: u64) -> Self {
        Dedup {
            entries: entries
                .into_iter()
                .filter(|(_, e)| e.sent_at + WINDOW_MS > now)
                .collect(),
        }
    }

    pub fn get(&self, key: &str, now: u64) -> Option<&DedupEntry> {
        self.entries
            .get(key)
            .filter(|e| e.sent_at + WINDOW_MS > now)
    }

    pub fn insert(&mut self, key: String, entry: DedupEntry) {
        self.entries.insert(key, entry);
    }

    pub fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Drops expired entries and returns their keys (to delete from the store).
    pub fn expire(&mut self, now: u64) -> Vec<String> {
        let expired: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.sent_at + WINDOW_MS <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &expired {
            self.entries.remove(key);
        }
        expired
    }
}

/// What a ReceiveRequestAttemptId returned: the same messages (and handles) are returned to a
/// retry within five minutes while they are still held by that receive. Memory only: after a
/// restart a retry simply receives again.
#[derive(Default)]
pub struct Attempts {
    entries: HashMap<String, (u64, Vec<(u64, u64)>)>,
}

impl Attempts {
    pub fn get(&mut self, id: &str, now: u64) -> Option<Vec<(u64, u64)>> {
        self.entries.retain(|_, (at, _)| *at + WINDOW_MS > now);
        self.entries.get(id).map(|(_, seqs)| seqs.clone())
    }

    pub fn insert(&mut self, id: String, now: u64, received: Vec<(u64, u64)>) {
        self.entries.insert(id, (now, received));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_grow_and_have_twenty_digits() {
        let a = sequence_number(1);
        let b = sequence_number(2);
        assert_eq!(a.len(), 20);
        assert!(a < b);
    }

    #[test]
    fn dedup_window() {
        let mut dedup = Dedup::default();
        let entry = DedupEntry {
            sent_at: 1000,
            message_id: "m".into(),
            sequence_number: "1".into(),
        };
        dedup.insert("k".into(), entry);
        assert!(dedup.get("k", 1000 + WINDOW_MS - 1).is_some());
        assert!(dedup.get("k", 1000 + WINDOW_MS).is_none());
        assert_eq!(dedup.expire(1000 + WINDOW_MS), vec!["k".to_string()]);
    }

    #[test]
    fn content_id_is_sha256() {
        assert_eq!(
            content_deduplication_id("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
