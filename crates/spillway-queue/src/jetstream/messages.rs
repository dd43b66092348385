//! Message operations on JetStream.
//!
//! - Send publishes the message record (postcard, as the embedded store keeps it) to the
//!   queue's subject and answers after the server's publish ack; a delay travels in the
//!   `Spillway-Visible-At` header (epoch ms).
//! - Receive fetches from the shared consumer (a long poll is a fetch with an expiry, which
//!   the server answers as soon as one message is there). A delivery that is early for its
//!   delay is NAK'd with the time left; one past `maxReceiveCount` is published to the
//!   dead-letter queue and then acknowledged; the others are answered, and NAK'd with the
//!   receive's VisibilityTimeout when it differs from the consumer's ack wait.
//! - Delete acknowledges through the ack subject in the receipt handle and waits for the
//!   server's confirmation (a double ack), so any node can delete what any node received.
//! - ChangeMessageVisibility NAKs with the new timeout as delay (0: at once).

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::AckKind;
use futures_util::StreamExt;
use futures_util::future::join_all;

use super::deliveries::Note;
use super::{JetStreamQueues, JsQueue, call};
use crate::clock::now_ms;
use crate::embedded::QueueStats;
use crate::error::QueueError;
use crate::md5;
use crate::model::{
    BatchResponse, BatchResultEntry, BatchResultErrorEntry,
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    ReceiveMessageRequest, ReceiveMessageResponse, SendMessageBatchRequest,
    SendMessageBatchRequestEntry, SendMessageBatchResponse, SendMessageBatchResultEntry,
    SendMessageRequest, SendMessageResponse,
};
use crate::outgoing::{Outgoing, prepare};
use crate::queue_attributes::MAX_VISIBILITY_TIMEOUT;
use crate::receipt::AckReceipt;
use crate::receive_filters::{Filters, receive_limits, render};
use crate::store::{MessageRecord, decode, encode};
use crate::validate;

const VISIBLE_AT: &str = "Spillway-Visible-At";

/// The stream sequence in an ack subject: `$JS.ACK.<stream>.<consumer>.<delivered>.<seq>...`
/// (9 tokens), or with domain and account hash first (ADR-15's 12 tokens).
fn ack_sequence(subject: &str) -> Option<(&str, u64)> {
    let tokens: Vec<&str> = subject.split('.').collect();
    let (stream, seq) = match tokens.len() {
        9 => (tokens[2], tokens[5]),
        n if n >= 11 => (tokens[4], tokens[7]),
        _ => return None,
    };
    Some((stream, seq.parse().ok()?))
}

impl JetStreamQueues {
    pub async fn send_message(
        &self,
        request: SendMessageRequest,
    ) -> Result<SendMessageResponse, QueueError> {
        let queue = self.queue(&request.queue_name).await?;
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
        let sent = self
            .publish_all(&queue, vec![outgoing], &request.sender_id)
            .await?
            .pop()
            .ok_or_else(|| QueueError::Internal("send answered nothing".into()))??;
        QueueStats::add(&queue.stats.sent, 1);
        Ok(sent)
    }

    pub async fn send_message_batch(
        &self,
        request: SendMessageBatchRequest,
    ) -> Result<SendMessageBatchResponse, QueueError> {
        let queue = self.queue(&request.queue_name).await?;
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
        let mut response = SendMessageBatchResponse::default();
        let mut ids = Vec::new();
        let mut accepted = Vec::new();
        for entry in request.entries {
            let id = entry.id.clone();
            match prepare(&config, entry) {
                Ok(o) => {
                    ids.push(id);
                    accepted.push(o);
                }
                Err(e) => response
                    .failed
                    .push(BatchResultErrorEntry::from_error(&id, &e)),
            }
        }
        let results = self
            .publish_all(&queue, accepted, &request.sender_id)
            .await?;
        for (id, result) in ids.into_iter().zip(results) {
            match result {
                Ok(sent) => response.successful.push(SendMessageBatchResultEntry {
                    id,
                    message_id: sent.message_id,
                    md5_of_message_body: sent.md5_of_message_body,
                    md5_of_message_attributes: sent.md5_of_message_attributes,
                    md5_of_message_system_attributes: sent.md5_of_message_system_attributes,
                    sequence_number: None,
                }),
                Err(e) => response
                    .failed
                    .push(BatchResultErrorEntry::from_error(&id, &e)),
            }
        }
        QueueStats::add(&queue.stats.sent, response.successful.len());
        Ok(response)
    }

    /// Publishes every message, then waits for all the acks: an entry is answered only once
    /// the server has stored it.
    async fn publish_all(
        &self,
        queue: &JsQueue,
        messages: Vec<Outgoing>,
        sender_id: &str,
    ) -> Result<Vec<Result<SendMessageResponse, QueueError>>, QueueError> {
        let now = now_ms();
        let mut pending = Vec::with_capacity(messages.len());
        for outgoing in messages {
            let answer = SendMessageResponse {
                message_id: uuid::Uuid::new_v4().to_string(),
                md5_of_message_body: md5::md5_of_body(&outgoing.body),
                md5_of_message_attributes: md5::md5_of_attributes(&outgoing.attributes),
                md5_of_message_system_attributes: md5::md5_of_attributes(
                    &outgoing.system_attributes,
                ),
                sequence_number: None,
            };
            let record = MessageRecord {
                message_id: answer.message_id.clone(),
                body: outgoing.body,
                attributes: outgoing.attributes,
                system_attributes: outgoing.system_attributes,
                sent_at: now,
                sender_id: sender_id.to_string(),
                group_id: outgoing.group_id,
                deduplication_id: None,
                sequence_number: None,
                dead_letter_source_arn: None,
            };
            let mut headers = HeaderMap::new();
            if outgoing.delay_seconds > 0 {
                let at = now + u64::from(outgoing.delay_seconds) * 1000;
                headers.insert(VISIBLE_AT, at.to_string().as_str());
            }
            let payload = encode(&record)?;
            let ack = self
                .context
                .publish_with_headers(queue.subject.clone(), headers, payload.into())
                .await
                .map_err(call("publishing a message"))?;
            pending.push((answer, ack));
        }
        let mut out = Vec::with_capacity(pending.len());
        for (answer, ack) in pending {
            out.push(ack.await.map(|_| answer).map_err(call("storing a message")));
        }
        Ok(out)
    }

    pub async fn receive_message(
        &self,
        request: ReceiveMessageRequest,
    ) -> Result<ReceiveMessageResponse, QueueError> {
        let queue = self.queue(&request.queue_name).await?;
        let config = queue.config();
        let (max, visibility, wait) = receive_limits(&request, &config)?;
        let filters = Filters::new(&request)?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(wait));
        // Each pass either answers, or spent its deliveries on delays and redrives, or waited
        // until the deadline; the count bounds a queue that only ever hands out early ones.
        for _ in 0..1000 {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let fetch = queue.consumer.fetch().max_messages(max as usize);
            // A fetch with an expiry is answered as soon as one message is there.
            let fetch = if left >= Duration::from_millis(10) {
                fetch.expires(left)
            } else {
                fetch
            };
            let mut batch = fetch.messages().await.map_err(call("fetching messages"))?;
            let mut deliveries = Vec::new();
            // Bounded even when the server's answer is lost (a reconnect): async-nats arms no
            // timer of its own for a fetch without an expiry.
            let drained = tokio::time::timeout(left + Duration::from_secs(5), async {
                while let Some(message) = batch.next().await {
                    match message {
                        Ok(m) => deliveries.push(m),
                        Err(error) => {
                            tracing::debug!(%error, "a fetch ended early");
                            break;
                        }
                    }
                }
            })
            .await;
            if drained.is_err() {
                tracing::warn!(queue = %queue.name, "a fetch got no answer in time; answering with what arrived");
            }
            let handled = join_all(
                deliveries
                    .into_iter()
                    .map(|m| self.deliver(&queue, m, visibility, &filters)),
            )
            .await;
            // One delivery that failed (a note not written, a DLQ move refused) must not cost
            // the others: they are in flight already, and dropped here they would stay hidden
            // for the visibility timeout and spend a receive each. The failed one comes back
            // after its timeout.
            let mut messages = Vec::new();
            let mut failure = None;
            for result in handled {
                match result {
                    Ok(Some(message)) => messages.push(message),
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(queue = %queue.name, %error, "a delivery failed; it returns after its visibility timeout");
                        failure = Some(error);
                    }
                }
            }
            if let (true, Some(error)) = (messages.is_empty(), failure) {
                return Err(error);
            }
            if !messages.is_empty() {
                QueueStats::add(&queue.stats.received, messages.len());
                return Ok(ReceiveMessageResponse { messages });
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
        }
        QueueStats::add(&queue.stats.empty_receives, 1);
        Ok(ReceiveMessageResponse::default())
    }

    /// One delivery: answered (Some), or put back for its delay, or moved to the dead-letter
    /// queue (None).
    async fn deliver(
        &self,
        queue: &JsQueue,
        message: async_nats::jetstream::Message,
        visibility: u32,
        filters: &Filters,
    ) -> Result<Option<Message>, QueueError> {
        let now = now_ms();
        let (seq, delivered, reply) = match (message.info(), message.reply.as_ref()) {
            (Ok(info), Some(reply)) => (
                info.stream_sequence,
                u32::try_from(info.delivered).unwrap_or(u32::MAX),
                reply.to_string(),
            ),
            _ => return Ok(None),
        };
        let Ok(mut record) = decode::<MessageRecord>(&message.payload) else {
            // Not a message spillway wrote (someone published to the subject by hand).
            tracing::warn!(queue = %queue.name, seq, "a message that is not spillway's is dropped");
            let _ = message.ack_with(AckKind::Term).await;
            return Ok(None);
        };
        let visible_at = message
            .headers
            .as_ref()
            .and_then(|h| h.get(VISIBLE_AT))
            .and_then(|v| v.as_str().parse::<u64>().ok());
        let delayed = visible_at.is_some();
        let mut note = if delayed
            || (delivered > 1 && filters.wants_system("ApproximateFirstReceiveTimestamp"))
        {
            self.note(queue.id, seq).await?
        } else {
            Note::default()
        };
        if let Some(at) = visible_at.filter(|at| *at > now) {
            note.early += 1;
            self.put_note(queue.id, seq, note).await?;
            message
                .ack_with(AckKind::Nak(Some(Duration::from_millis(at - now))))
                .await
                .map_err(call("putting back a delayed message"))?;
            return Ok(None);
        }
        let receive_count = delivered.saturating_sub(note.early).max(1);
        let config = queue.config();
        if let Some(policy) = &config.redrive_policy
            && receive_count > policy.max_receive_count
            && let Some(target) = self
                .queue_by_arn(&policy.dead_letter_target_arn)
                .await
                .filter(|t| t.id != queue.id)
        {
            record.dead_letter_source_arn = Some(queue.arn.clone());
            let payload = encode(&record)?;
            self.context
                .publish(target.subject.clone(), payload.into())
                .await
                .map_err(call("moving a message to its dead-letter queue"))?
                .await
                .map_err(call("moving a message to its dead-letter queue"))?;
            message
                .double_ack()
                .await
                .map_err(call("acknowledging a moved message"))?;
            self.forget_note(queue.id, seq);
            tracing::debug!(queue = %queue.name, dead_letter = %target.name, "message moved to the dead-letter queue");
            return Ok(None);
        }
        if receive_count == 1 || (delayed && note.first_receive_at.is_none()) {
            note.first_receive_at = Some(now);
            self.put_note(queue.id, seq, note).await?;
        }
        if visibility != config.visibility_timeout.max(1) {
            let kind = match visibility {
                0 => AckKind::Nak(None),
                v => AckKind::Nak(Some(Duration::from_secs(u64::from(v)))),
            };
            message
                .ack_with(kind)
                .await
                .map_err(call("setting a receive's visibility timeout"))?;
        }
        let handle = self.receipts.seal_ack(&AckReceipt {
            queue: queue.id,
            received_at: now,
            ack_subject: reply,
        });
        Ok(Some(render(
            &record,
            receive_count,
            note.first_receive_at.or(Some(now)),
            handle,
            filters,
        )))
    }

    /// The delivery a handle names, if this node's key sealed it for this queue.
    fn open_receipt(&self, queue: &JsQueue, handle: &str) -> Result<(AckReceipt, u64), QueueError> {
        self.receipts
            .open_ack(handle)
            .filter(|r| r.queue == queue.id)
            .and_then(|r| {
                let (stream, seq) = ack_sequence(&r.ack_subject)?;
                (stream == queue.stream).then_some((r.clone(), seq))
            })
            .ok_or_else(|| QueueError::ReceiptHandleIsInvalid(handle.to_string()))
    }

    /// Sends an ack-kind to a delivery's ack subject and waits for the server to confirm it.
    async fn settle(&self, receipt: &AckReceipt, kind: AckKind) -> Result<(), QueueError> {
        match self
            .client
            .request(receipt.ack_subject.clone(), kind.into())
            .await
        {
            Ok(_) => Ok(()),
            // The consumer is gone (the queue was deleted under the handle): nothing to settle.
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
            Err(e) => Err(call("settling a delivery")(&e)),
        }
    }

    pub async fn delete_message(
        &self,
        queue_name: &str,
        receipt_handle: &str,
    ) -> Result<(), QueueError> {
        let queue = self.queue(queue_name).await?;
        let (receipt, seq) = self.open_receipt(&queue, receipt_handle)?;
        self.settle(&receipt, AckKind::Ack).await?;
        self.forget_note(queue.id, seq);
        QueueStats::add(&queue.stats.deleted, 1);
        Ok(())
    }

    pub async fn delete_message_batch(
        &self,
        queue_name: &str,
        entries: Vec<DeleteMessageBatchRequestEntry>,
    ) -> Result<BatchResponse, QueueError> {
        let queue = self.queue(queue_name).await?;
        validate::batch_ids(entries.iter().map(|e| e.id.as_str()))?;
        let results = join_all(entries.iter().map(|entry| async {
            let (receipt, seq) = self.open_receipt(&queue, &entry.receipt_handle)?;
            self.settle(&receipt, AckKind::Ack).await?;
            self.forget_note(queue.id, seq);
            Ok::<(), QueueError>(())
        }))
        .await;
        Ok(self.batch_response(&queue, entries.iter().map(|e| e.id.as_str()), results, true))
    }

    fn batch_response<'a>(
        &self,
        queue: &JsQueue,
        ids: impl Iterator<Item = &'a str>,
        results: Vec<Result<(), QueueError>>,
        deletes: bool,
    ) -> BatchResponse {
        let mut response = BatchResponse::default();
        for (id, result) in ids.zip(results) {
            match result {
                Ok(()) => response
                    .successful
                    .push(BatchResultEntry { id: id.to_string() }),
                Err(e) => response
                    .failed
                    .push(BatchResultErrorEntry::from_error(id, &e)),
            }
        }
        if deletes {
            QueueStats::add(&queue.stats.deleted, response.successful.len());
        }
        response
    }

    async fn change_one(
        &self,
        queue: &JsQueue,
        handle: &str,
        visibility_timeout: u32,
    ) -> Result<(), QueueError> {
        let (receipt, _) = self.open_receipt(queue, handle)?;
        if visibility_timeout > MAX_VISIBILITY_TIMEOUT {
            return Err(QueueError::invalid_parameter(
                "VisibilityTimeout",
                visibility_timeout,
                "VisibilityTimeout must be an integer between 0 and 43200",
            ));
        }
        let now = now_ms();
        let until = now + u64::from(visibility_timeout) * 1000;
        if until.saturating_sub(receipt.received_at) > u64::from(MAX_VISIBILITY_TIMEOUT) * 1000 {
            return Err(QueueError::invalid_parameter(
                "VisibilityTimeout",
                visibility_timeout,
                "Total VisibilityTimeout for the message is beyond the limit [43200 seconds]",
            ));
        }
        let kind = match visibility_timeout {
            0 => AckKind::Nak(None),
            v => AckKind::Nak(Some(Duration::from_secs(u64::from(v)))),
        };
        self.settle(&receipt, kind).await
    }

    pub async fn change_message_visibility(
        &self,
        queue_name: &str,
        receipt_handle: &str,
        visibility_timeout: u32,
    ) -> Result<(), QueueError> {
        let queue = self.queue(queue_name).await?;
        self.change_one(&queue, receipt_handle, visibility_timeout)
            .await
    }

    pub async fn change_message_visibility_batch(
        &self,
        queue_name: &str,
        entries: Vec<ChangeMessageVisibilityBatchRequestEntry>,
    ) -> Result<BatchResponse, QueueError> {
        let queue = self.queue(queue_name).await?;
        validate::batch_ids(entries.iter().map(|e| e.id.as_str()))?;
        let results = join_all(
            entries
                .iter()
                .map(|e| self.change_one(&queue, &e.receipt_handle, e.visibility_timeout)),
        )
        .await;
        Ok(self.batch_response(
            &queue,
            entries.iter().map(|e| e.id.as_str()),
            results,
            false,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::ack_sequence;

    #[test]
    fn ack_subjects_name_their_stream_and_sequence() {
        assert_eq!(
            ack_sequence("$JS.ACK.s.c.3.100.7.1796166894744500074.42"),
            Some(("s", 100))
        );
        assert_eq!(
            ack_sequence("$JS.ACK.dom.hash.s.c.3.100.7.1796166894744500074.42.tok"),
            Some(("s", 100))
        );
        assert_eq!(ack_sequence("$JS.ACK.s.c.3"), None);
        assert_eq!(ack_sequence("$JS.ACK.s.c.3.x.7.1.42"), None);
    }
}
