//! Event source mappings (`functions.X.events`): pollers that receive batches from a queue and
//! invoke a function with Lambda's SQS event, as Lambda's pollers do.
//!
//! - A batch is gathered up to `batch_size` messages or until `maximum_batching_window` ends
//!   (with no window, whatever one long poll returns), and below Lambda's 6 MB payload.
//! - Success deletes the batch. With `report_batch_item_failures`, a response's
//!   `batchItemFailures` leaves those messages in flight (they return after the visibility
//!   timeout) and deletes the rest; an empty or missing list is full success; a malformed list
//!   or an `itemIdentifier` that is not one of the batch's message ids fails the whole batch,
//!   as Lambda documents.
//! - A function error leaves the whole batch in flight: visibility timeout, then another
//!   receive, and after `maxReceiveCount` the dead-letter queue.
//! - Up to `max_concurrency` batches are in invocations at once; the caller caps it by the
//!   function's reserved concurrency. A throttled invocation is retried with backoff holding
//!   the same batch, instead of receiving again (which would burn receive counts).
//!
//! The function host is reached through [`Invoker`], so that this crate does not depend on it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use tokio::sync::{Semaphore, watch};

use crate::{DeleteMessageBatchRequestEntry, Message, QueueService, ReceiveMessageRequest};

/// Lambda's limit on a synchronous invocation's payload.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;
/// The system attributes a Lambda SQS record carries.
const RECORD_ATTRIBUTES: &[&str] = &[
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
];

/// How an invocation ended.
pub enum Invocation {
    /// The function returned this payload.
    Returned(Vec<u8>),
    /// The function failed (an exception, a crash, a timeout).
    Failed(String),
    /// No instance was free (the function's concurrency is in use).
    Throttled,
}

pub type InvokeFuture<'a> = Pin<Box<dyn Future<Output = Invocation> + Send + 'a>>;

/// Invokes functions synchronously (the supervisor implements it over the function host).
pub trait Invoker: Send + Sync {
    fn invoke<'a>(&'a self, function: &'a str, payload: Vec<u8>) -> InvokeFuture<'a>;
}

/// One mapping, with the stack's settings.
#[derive(Clone, Debug)]
pub struct Mapping {
    pub function: String,
    pub queue: String,
    pub batch_size: u32,
    pub maximum_batching_window: Duration,
    pub report_batch_item_failures: bool,
    /// Most batches in invocations at once (already capped by reserved concurrency).
    pub max_concurrency: u32,
}

/// Runs `mapping` until `shutdown` turns true.
pub fn spawn(
    service: Arc<QueueService>,
    invoker: Arc<dyn Invoker>,
    mapping: Mapping,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mapping = Arc::new(mapping);
        let slots = Arc::new(Semaphore::new(mapping.max_concurrency.max(1) as usize));
        tracing::info!(function = %mapping.function, queue = %mapping.queue, "event source mapping polling");
        loop {
            // A free invocation slot first: with every slot busy, receiving more would only
            // hide messages from nobody.
            let permit = tokio::select! {
                p = Arc::clone(&slots).acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                _ = shutdown.changed() => return,
            };
            let batch = tokio::select! {
                b = gather(&service, &mapping) => b,
                _ = shutdown.changed() => return,
            };
            match batch {
                Ok(messages) if messages.is_empty() => {}
                Ok(messages) => {
                    let (service, invoker, mapping) = (
                        Arc::clone(&service),
                        Arc::clone(&invoker),
                        Arc::clone(&mapping),
                    );
                    tokio::spawn(async move {
                        deliver(&service, invoker.as_ref(), &mapping, messages).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    // A deleted queue, a full disk: say so and try again later, not in a loop.
                    tracing::warn!(function = %mapping.function, queue = %mapping.queue, "event source mapping cannot receive: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = shutdown.changed() => return,
                    }
                }
            }
        }
    })
}

/// One batch: long polls until `batch_size` messages, the batching window's end, or (without
/// a window) the first receive that returns any.
async fn gather(service: &QueueService, m: &Mapping) -> Result<Vec<Message>, crate::QueueError> {
    let deadline = tokio::time::Instant::now() + m.maximum_batching_window;
    let mut batch: Vec<Message> = Vec::new();
    let mut size = 0usize;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let wait = if batch.is_empty() && m.maximum_batching_window.is_zero() {
            20
        } else {
            left.as_secs().min(20) as u32
        };
        let want = (m.batch_size as usize - batch.len()).min(10) as u32;
        let got = service
            .receive_message(ReceiveMessageRequest {
                queue_name: m.queue.clone(),
                max_number_of_messages: Some(want),
                wait_time_seconds: Some(wait),
                attribute_names: vec!["All".into()],
                message_attribute_names: vec!["All".into()],
                ..Default::default()
            })
            .await?;
        for msg in got.messages {
            size += msg.body.len() + 1024;
            batch.push(msg);
        }
        let full = batch.len() >= m.batch_size as usize || size > MAX_PAYLOAD * 3 / 4;
        let window_over = tokio::time::Instant::now() >= deadline;
        if full || window_over || (m.maximum_batching_window.is_zero() && !batch.is_empty()) {
            return Ok(batch);
        }
    }
}

/// Lambda's SQS event for a batch.
pub fn event(service: &QueueService, queue: &str, messages: &[Message]) -> Value {
    let arn = service.queue_arn(queue);
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: Map<String, Value> = m
                .attributes
                .iter()
                .filter(|(k, _)| RECORD_ATTRIBUTES.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            let message_attributes: Map<String, Value> = m
                .message_attributes
                .iter()
                .map(|(k, v)| {
                    let binary = v
                        .binary_value
                        .as_ref()
                        .map(|b| base64::engine::general_purpose::STANDARD.encode(b));
                    (
                        k.clone(),
                        json!({
                            "stringValue": v.string_value,
                            "binaryValue": binary,
                            "stringListValues": [],
                            "binaryListValues": [],
                            "dataType": v.data_type,
                        }),
                    )
                })
                .collect();
            let mut r = json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body,
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": service.region(),
            });
            if let (Some(md5), Some(o)) = (&m.md5_of_message_attributes, r.as_object_mut()) {
                o.insert("md5OfMessageAttributes".into(), json!(md5));
            }
            r
        })
        .collect();
    json!({ "Records": records })
}

/// Which messages of a batch the function's answer says failed: `None` for a malformed
/// answer (the whole batch fails), else the failed message ids (empty: all succeeded).
pub fn failed_items(response: &[u8], messages: &[Message]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(response).ok()?.trim();
    if text.is_empty() || text == "null" {
        return Some(Vec::new());
    }
    let v: Value = serde_json::from_str(text).ok()?;
    let list = match v.get("batchItemFailures") {
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return None,
    };
    let mut failed = Vec::new();
    for item in list {
        let id = item.get("itemIdentifier")?.as_str()?;
        if id.is_empty() || !messages.iter().any(|m| m.message_id == id) {
            return None;
        }
        failed.push(id.to_owned());
    }
    Some(failed)
}

async fn deliver(
    service: &QueueService,
    invoker: &dyn Invoker,
    m: &Mapping,
    messages: Vec<Message>,
) {
    let payload = event(service, &m.queue, &messages).to_string().into_bytes();
    let mut backoff = Duration::from_millis(100);
    // Retrying a throttled invocation holds the batch; after about a default visibility
    // timeout (30 s) the messages may be back in the queue anyway, so stop there.
    let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
    let outcome = loop {
        match invoker.invoke(&m.function, payload.clone()).await {
            Invocation::Throttled if tokio::time::Instant::now() + backoff < give_up => {
                tracing::debug!(function = %m.function, "throttled; retrying the batch in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            other => break other,
        }
    };
    let done: Vec<&Message> = match outcome {
        Invocation::Returned(response) if m.report_batch_item_failures => {
            match failed_items(&response, &messages) {
                Some(failed) => messages
                    .iter()
                    .filter(|msg| !failed.contains(&msg.message_id))
                    .collect(),
                None => {
                    tracing::info!(function = %m.function, "the function's batchItemFailures is malformed or names an unknown message: the whole batch failed");
                    Vec::new()
                }
            }
        }
        Invocation::Returned(_) => messages.iter().collect(),
        Invocation::Failed(why) => {
            tracing::info!(function = %m.function, queue = %m.queue, "the batch failed: {why}; its messages return after their visibility timeout");
            Vec::new()
        }
        Invocation::Throttled => {
            tracing::info!(function = %m.function, "still throttled; the batch returns to the queue after its visibility timeout");
            Vec::new()
        }
    };
    for chunk in done.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, msg)| DeleteMessageBatchRequestEntry {
                id: i.to_string(),
                receipt_handle: msg.receipt_handle.clone(),
            })
            .collect();
        if let Err(e) = service.delete_message_batch(&m.queue, entries).await {
            tracing::warn!(queue = %m.queue, "cannot delete a processed batch (it will be delivered again): {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str) -> Message {
        Message {
            message_id: id.into(),
            receipt_handle: String::new(),
            md5_of_body: String::new(),
            body: String::new(),
            attributes: Default::default(),
            md5_of_message_attributes: None,
            message_attributes: Default::default(),
        }
    }

    #[test]
    fn batch_item_failures_as_lambda_reads_them() {
        let batch = [msg("a"), msg("b")];
        assert_eq!(failed_items(b"", &batch), Some(vec![]));
        assert_eq!(failed_items(b"null", &batch), Some(vec![]));
        assert_eq!(failed_items(b"{}", &batch), Some(vec![]));
        assert_eq!(
            failed_items(br#"{"batchItemFailures": []}"#, &batch),
            Some(vec![])
        );
        assert_eq!(
            failed_items(br#"{"batchItemFailures": null}"#, &batch),
            Some(vec![])
        );
        assert_eq!(
            failed_items(
                br#"{"batchItemFailures": [{"itemIdentifier": "b"}]}"#,
                &batch
            ),
            Some(vec!["b".to_owned()])
        );
        for bad in [
            &br#"{"batchItemFailures": [{"itemIdentifier": "zzz"}]}"#[..],
            br#"{"batchItemFailures": [{"itemIdentifier": ""}]}"#,
            br#"{"batchItemFailures": [{"itemIdentifier": null}]}"#,
            br#"{"batchItemFailures": [{"id": "a"}]}"#,
            br#"{"batchItemFailures": "a"}"#,
            b"not json",
        ] {
            assert_eq!(
                failed_items(bad, &batch),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
