//! SendMessage and SendMessageBatch: validation, FIFO deduplication, and one durable commit
//! for all the messages of a call.

use super::{Embedded, QueueHandle, QueueStats, lock};
use crate::clock::now_ms;
use crate::error::QueueError;
use crate::fifo;
use crate::md5;
use crate::model::{
    BatchResultErrorEntry, SendMessageBatchRequest, SendMessageBatchRequestEntry,
    SendMessageBatchResponse, SendMessageBatchResultEntry, SendMessageRequest, SendMessageResponse,
};
use crate::outgoing::{Outgoing, prepare};
use crate::store::{DedupEntry, DeliveryState, MessageRecord, Mutation};
use crate::validate;

/// The answer for one sent message (before the entry id is attached).
struct Sent {
    message_id: String,
    md5_of_message_body: String,
    md5_of_message_attributes: Option<String>,
    md5_of_message_system_attributes: Option<String>,
    sequence_number: Option<String>,
}

impl Embedded {
    pub async fn send_message(
        &self,
        request: SendMessageRequest,
    ) -> Result<SendMessageResponse, QueueError> {
        let queue = self.queue(&request.queue_name)?;
        let entry = SendMessageBatchRequestEntry {
            id: String::new(),
            message_body: request.message_body,
            delay_seconds: request.delay_seconds,
            message_attributes: request.message_attributes,
            message_system_attributes: request.message_system_attributes,
            message_deduplication_id: request.message_deduplication_id,
            message_group_id: request.message_group_id,
        };
        let outgoing = prepare(&queue.config(), entry)?;
        let mut sent = self
            .send_all(&queue, vec![Ok(outgoing)], &request.sender_id)
            .await?;
        let sent = sent
            .pop()
            .ok_or_else(|| QueueError::Internal("send answered nothing".into()))??;
        QueueStats::add(&queue.stats.sent, 1);
        Ok(SendMessageResponse {
            message_id: sent.message_id,
            md5_of_message_body: sent.md5_of_message_body,
            md5_of_message_attributes: sent.md5_of_message_attributes,
            md5_of_message_system_attributes: sent.md5_of_message_system_attributes,
            sequence_number: sent.sequence_number,
        })
    }

    /// SendMessageBatch: request-level errors (ids, count, total size) fail the call; each
    /// entry's own problem fails only that entry. All accepted entries share one commit.
    pub async fn send_message_batch(
        &self,
        request: SendMessageBatchRequest,
    ) -> Result<SendMessageBatchResponse, QueueError> {
        let queue = self.queue(&request.queue_name)?;
        validate::batch_ids(request.entries.iter().map(|e| e.id.as_str()))?;
        let total: usize = request
            .entries
            .iter()
            .map(|e| validate::message_size(&e.message_body, &e.message_attributes))
            .sum();
        if total > validate::MAX_BATCH_BYTES {
            return Err(QueueError::BatchRequestTooLong(
                validate::MAX_BATCH_BYTES,
                total,
            ));
        }
        let config = queue.config();
        let ids: Vec<String> = request.entries.iter().map(|e| e.id.clone()).collect();
        let prepared = request
            .entries
            .into_iter()
            .map(|e| prepare(&config, e))
            .collect();
        let results = self.send_all(&queue, prepared, &request.sender_id).await?;
        let mut response = SendMessageBatchResponse::default();
        for (id, result) in ids.into_iter().zip(results) {
            match result {
                Ok(sent) => response.successful.push(SendMessageBatchResultEntry {
                    id,
                    message_id: sent.message_id,
                    md5_of_message_body: sent.md5_of_message_body,
                    md5_of_message_attributes: sent.md5_of_message_attributes,
                    md5_of_message_system_attributes: sent.md5_of_message_system_attributes,
                    sequence_number: sent.sequence_number,
                }),
                Err(error) => response
                    .failed
                    .push(BatchResultErrorEntry::from_error(&id, &error)),
            }
        }
        QueueStats::add(&queue.stats.sent, response.successful.len());
        Ok(response)
    }

    /// Writes the accepted messages in one commit and answers after it is durable. A commit
    /// failure fails the whole call (nothing of it was acknowledged).
    async fn send_all(
        &self,
        queue: &QueueHandle,
        prepared: Vec<Result<Outgoing, QueueError>>,
        sender_id: &str,
    ) -> Result<Vec<Result<Sent, QueueError>>, QueueError> {
        let now = now_ms();
        let queue_id = queue.id;
        let (results, committed) = self.inner.writer.submit(|seqs| {
            let mut mutations = Vec::new();
            let mut results = Vec::with_capacity(prepared.len());
            // Keys this call added to the dedup table, undone if the commit fails.
            let mut added = Vec::new();
            let mut dedup = lock(&queue.dedup);
            for outgoing in prepared {
                let outgoing = match outgoing {
                    Ok(o) => o,
                    Err(e) => {
                        results.push(Err(e));
                        continue;
                    }
                };
                let md5_of_message_body = md5::md5_of_body(&outgoing.body);
                let md5_of_message_attributes = md5::md5_of_attributes(&outgoing.attributes);
                let md5_of_message_system_attributes =
                    md5::md5_of_attributes(&outgoing.system_attributes);
                if let Some(previous) = outgoing
                    .dedup_key
                    .as_deref()
                    .and_then(|k| dedup.get(k, now))
                {
                    // A duplicate within five minutes: accepted, not enqueued, same answer.
                    results.push(Ok(Sent {
                        message_id: previous.message_id.clone(),
                        md5_of_message_body,
                        md5_of_message_attributes,
                        md5_of_message_system_attributes,
                        sequence_number: Some(previous.sequence_number.clone()),
                    }));
                    continue;
                }
                let seq = seqs.allocate();
                let message_id = uuid::Uuid::new_v4().to_string();
                let sequence_number = queue.fifo.then(|| fifo::sequence_number(seq));
                if let (Some(key), Some(number)) = (&outgoing.dedup_key, &sequence_number) {
                    let entry = DedupEntry {
                        sent_at: now,
                        message_id: message_id.clone(),
                        sequence_number: number.clone(),
                    };
                    dedup.insert(key.clone(), entry.clone());
                    added.push(key.clone());
                    mutations.push(Mutation::PutDedup {
                        queue: queue_id,
                        key: key.clone(),
                        entry,
                    });
                }
                let state = DeliveryState {
                    visible_at: now + u64::from(outgoing.delay_seconds) * 1000,
                    receive_count: 0,
                    first_receive_at: None,
                    last_receive_at: None,
                    receipt_nonce: 0,
                    enqueued_at: now,
                    group_id: outgoing.group_id.clone(),
                };
                let record = MessageRecord {
                    message_id: message_id.clone(),
                    body: outgoing.body,
                    attributes: outgoing.attributes,
                    system_attributes: outgoing.system_attributes,
                    sent_at: now,
                    sender_id: sender_id.to_string(),
                    group_id: outgoing.group_id,
                    deduplication_id: outgoing.dedup_id,
                    sequence_number: sequence_number.clone(),
                    dead_letter_source_arn: None,
                };
                mutations.push(Mutation::PutMessage {
                    queue: queue_id,
                    seq,
                    record,
                    state,
                });
                results.push(Ok(Sent {
                    message_id,
                    md5_of_message_body,
                    md5_of_message_attributes,
                    md5_of_message_system_attributes,
                    sequence_number,
                }));
            }
            (mutations, (results, added))
        });
        let (results, added) = results;
        if let Err(error) = committed.wait().await {
            let mut dedup = lock(&queue.dedup);
            for key in &added {
                dedup.remove(key);
            }
            return Err(error.into());
        }
        queue.arrivals.notify_waiters();
        Ok(results)
    }
}
