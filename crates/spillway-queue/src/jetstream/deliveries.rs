//! Delivery notes: what JetStream does not keep about a message and SQS reports.
//!
//! - `ApproximateFirstReceiveTimestamp`: the server counts deliveries but keeps no time of
//!   the first; the first receive writes it here.
//! - deliveries spent on a delay: JetStream 2.9 has no per-message delay, so a delayed
//!   message is delivered, seen to be early, and NAK'd with the time left. That delivery
//!   counts in the server's `num_delivered` but no client received it, so it is counted here
//!   and taken off: `ApproximateReceiveCount = num_delivered - early`.
//!
//! A note is written only at a message's first receive and at early deliveries, and removed
//! when the message is deleted or moved; the bucket's MaxAge (SQS's longest retention) drops
//! the notes of messages that expired instead.

use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};

use super::{JetStreamQueues, call};
use crate::error::QueueError;

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct Note {
    pub first_receive_at: Option<u64>,
    pub early: u32,
}

fn key(queue: u64, seq: u64) -> String {
    format!("{queue:016x}.{seq}")
}

impl JetStreamQueues {
    pub(crate) async fn note(&self, queue: u64, seq: u64) -> Result<Note, QueueError> {
        let value = self
            .deliveries
            .get(key(queue, seq))
            .await
            .map_err(call("reading a delivery note"))?;
        Ok(value
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default())
    }

    pub(crate) async fn put_note(
        &self,
        queue: u64,
        seq: u64,
        note: Note,
    ) -> Result<(), QueueError> {
        let value = serde_json::to_vec(&note).map_err(|e| QueueError::Internal(e.to_string()))?;
        self.deliveries
            .put(key(queue, seq), value.into())
            .await
            .map_err(call("writing a delivery note"))?;
        Ok(())
    }

    /// Removes a note in the background: the delete it follows is already acknowledged, and a
    /// note left behind only waits for the bucket's MaxAge.
    pub(crate) fn forget_note(&self, queue: u64, seq: u64) {
        let store: kv::Store = self.deliveries.clone();
        tokio::spawn(async move {
            if let Err(error) = store.purge(key(queue, seq)).await {
                tracing::debug!(%error, "a delivery note was not removed");
            }
        });
    }
}
