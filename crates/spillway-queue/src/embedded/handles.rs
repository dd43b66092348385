//! DeleteMessage and ChangeMessageVisibility (and their batches), by receipt handle.
//!
//! How a handle is judged, following AWS's DeleteMessage reference: "If you receive a message
//! more than once, the ReceiptHandle is different each time ... you must provide the most
//! recently received ReceiptHandle for the message (otherwise, the request succeeds, but the
//! message will not be deleted)". So:
//! - a handle spillway never issued (not sealed by this store's key, or for another queue) is
//!   `ReceiptHandleIsInvalid`;
//! - a handle whose message no longer exists (deleted, expired, purged, moved) succeeds;
//! - standard queues: the latest handle deletes, even after its visibility timeout ended; an
//!   older handle succeeds and deletes nothing;
//! - FIFO queues: only the latest handle while the message is still in flight deletes; any
//!   other is `InvalidParameterValue` "The receipt handle has expired." (AWS's answer there).

use super::{Embedded, QueueHandle, QueueStats};
use crate::clock::now_ms;
use crate::error::QueueError;
use crate::model::{
    BatchResponse, BatchResultEntry, BatchResultErrorEntry,
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
};
use crate::queue_attributes::MAX_VISIBILITY_TIMEOUT;
use crate::receipt::Receipt;
use crate::store::{DeliveryState, Mutation};
use crate::validate;

fn expired(handle: &str) -> QueueError {
    QueueError::invalid_parameter("ReceiptHandle", handle, "The receipt handle has expired.")
}

fn not_available(handle: &str) -> QueueError {
    QueueError::invalid_parameter(
        "ReceiptHandle",
        handle,
        "Message does not exist or is not available for visibility timeout change.",
    )
}

/// What a delete with a valid handle should do.
enum DeleteAction {
    /// Delete, if the handle is still the latest when the commit applies (a receive in
    /// between makes it an older handle, which deletes nothing).
    Delete {
        seq: u64,
        nonce: u64,
    },
    Nothing,
}

impl Embedded {
    fn open_receipt(&self, queue: &QueueHandle, handle: &str) -> Result<Receipt, QueueError> {
        match self.inner.receipts.open(handle) {
            Some(receipt) if receipt.queue == queue.id => Ok(receipt),
            _ => Err(QueueError::ReceiptHandleIsInvalid(handle.to_string())),
        }
    }

    async fn state_of(&self, receipt: Receipt) -> Result<Option<DeliveryState>, QueueError> {
        self.read(move |s| s.state(receipt.queue, receipt.seq))
            .await
    }

    async fn plan_delete(
        &self,
        queue: &QueueHandle,
        handle: &str,
    ) -> Result<DeleteAction, QueueError> {
        let receipt = self.open_receipt(queue, handle)?;
        let Some(state) = self.state_of(receipt).await? else {
            return Ok(DeleteAction::Nothing);
        };
        let latest = state.receipt_nonce == receipt.nonce;
        if queue.fifo && !(latest && state.in_flight(now_ms())) {
            return Err(expired(handle));
        }
        Ok(if latest {
            DeleteAction::Delete {
                seq: receipt.seq,
                nonce: receipt.nonce,
            }
        } else {
            DeleteAction::Nothing
        })
    }

    pub async fn delete_message(
        &self,
        queue_name: &str,
        receipt_handle: &str,
    ) -> Result<(), QueueError> {
        let queue = self.queue(queue_name)?;
        if let DeleteAction::Delete { seq, nonce } =
            self.plan_delete(&queue, receipt_handle).await?
        {
            self.inner
                .writer
                .commit(vec![Mutation::DeleteMessage {
                    queue: queue.id,
                    seq,
                    if_nonce: Some(nonce),
                }])
                .await?;
            QueueStats::add(&queue.stats.deleted, 1);
            if queue.fifo {
                // The group is free again.
                queue.arrivals.notify_waiters();
            }
        }
        Ok(())
    }

    /// DeleteMessageBatch: per-entry results, one commit for all deletes.
    pub async fn delete_message_batch(
        &self,
        queue_name: &str,
        entries: Vec<DeleteMessageBatchRequestEntry>,
    ) -> Result<BatchResponse, QueueError> {
        let queue = self.queue(queue_name)?;
        validate::batch_ids(entries.iter().map(|e| e.id.as_str()))?;
        let mut response = BatchResponse::default();
        let mut mutations = Vec::new();
        for entry in entries {
            match self.plan_delete(&queue, &entry.receipt_handle).await {
                Ok(action) => {
                    if let DeleteAction::Delete { seq, nonce } = action {
                        mutations.push(Mutation::DeleteMessage {
                            queue: queue.id,
                            seq,
                            if_nonce: Some(nonce),
                        });
                    }
                    response.successful.push(BatchResultEntry { id: entry.id });
                }
                Err(error) => response
                    .failed
                    .push(BatchResultErrorEntry::from_error(&entry.id, &error)),
            }
        }
        if !mutations.is_empty() {
            let n = mutations.len();
            self.inner.writer.commit(mutations).await?;
            QueueStats::add(&queue.stats.deleted, n);
            if queue.fifo {
                queue.arrivals.notify_waiters();
            }
        }
        Ok(response)
    }

    async fn plan_visibility(
        &self,
        queue: &QueueHandle,
        handle: &str,
        visibility_timeout: u32,
    ) -> Result<Mutation, QueueError> {
        let receipt = self.open_receipt(queue, handle)?;
        if visibility_timeout > MAX_VISIBILITY_TIMEOUT {
            return Err(QueueError::invalid_parameter(
                "VisibilityTimeout",
                visibility_timeout,
                "VisibilityTimeout must be an integer between 0 and 43200",
            ));
        }
        let Some(mut state) = self.state_of(receipt).await? else {
            return Err(not_available(handle));
        };
        if state.receipt_nonce != receipt.nonce {
            return Err(not_available(handle));
        }
        let now = now_ms();
        if !state.in_flight(now) {
            return Err(QueueError::MessageNotInflight);
        }
        // The timeout counts from now, but a message stays invisible at most 12 hours after
        // the receive that issued this handle.
        let received = state.last_receive_at.unwrap_or(now);
        let until = now + u64::from(visibility_timeout) * 1000;
        if until.saturating_sub(received) > u64::from(MAX_VISIBILITY_TIMEOUT) * 1000 {
            return Err(QueueError::invalid_parameter(
                "VisibilityTimeout",
                visibility_timeout,
                "Total VisibilityTimeout for the message is beyond the limit [43200 seconds]",
            ));
        }
        state.visible_at = until;
        Ok(Mutation::SetState {
            queue: queue.id,
            seq: receipt.seq,
            state,
            // A receive between this read and the commit replaced the handle: then this change
            // applies as if it had come first, and the newer receive's visibility stands.
            if_nonce: Some(receipt.nonce),
        })
    }

    pub async fn change_message_visibility(
        &self,
        queue_name: &str,
        receipt_handle: &str,
        visibility_timeout: u32,
    ) -> Result<(), QueueError> {
        let queue = self.queue(queue_name)?;
        let mutation = self
            .plan_visibility(&queue, receipt_handle, visibility_timeout)
            .await?;
        self.inner.writer.commit(vec![mutation]).await?;
        // A shorter timeout may make the message visible sooner than a long poll planned.
        queue.arrivals.notify_waiters();
        Ok(())
    }

    pub async fn change_message_visibility_batch(
        &self,
        queue_name: &str,
        entries: Vec<ChangeMessageVisibilityBatchRequestEntry>,
    ) -> Result<BatchResponse, QueueError> {
        let queue = self.queue(queue_name)?;
        validate::batch_ids(entries.iter().map(|e| e.id.as_str()))?;
        let mut response = BatchResponse::default();
        let mut mutations = Vec::new();
        for entry in entries {
            match self
                .plan_visibility(&queue, &entry.receipt_handle, entry.visibility_timeout)
                .await
            {
                Ok(m) => {
                    mutations.push(m);
                    response.successful.push(BatchResultEntry { id: entry.id });
                }
                Err(error) => response
                    .failed
                    .push(BatchResultErrorEntry::from_error(&entry.id, &error)),
            }
        }
        if !mutations.is_empty() {
            self.inner.writer.commit(mutations).await?;
            queue.arrivals.notify_waiters();
        }
        Ok(response)
    }
}
