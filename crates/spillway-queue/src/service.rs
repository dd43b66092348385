//! The queue service: SQS operations of one stack, dispatched to the engine that holds its
//! messages. The seam is at the level of SQS operations, not storage: the embedded engine
//! ([`crate::embedded`]) keeps a visibility index of its own in redb, while JetStream
//! ([`crate::jetstream`]) has delivery state of its own (a consumer's ack wait and delivery
//! count) that a storage-level trait could not use. Both take the same typed requests and
//! answer the same shapes, so the protocol layer ([`crate::api`]) does not know which one runs.
//! Dispatch is a `match`: the embedded path pays nothing for the seam.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::embedded::Embedded;
use crate::error::QueueError;
use crate::jetstream::{JetStreamOptions, JetStreamQueues};
use crate::model::*;
use crate::store::Store;

/// The SQS service of one stack. Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct QueueService {
    engine: Engine,
}

#[derive(Clone)]
enum Engine {
    Embedded(Embedded),
    JetStream(Arc<JetStreamQueues>),
}

/// Runs the same call on whichever engine this service has.
macro_rules! dispatch {
    ($self:ident, $engine:ident => $call:expr) => {
        match &$self.engine {
            Engine::Embedded($engine) => $call,
            Engine::JetStream($engine) => $call,
        }
    };
}

impl QueueService {
    /// Opens (creating if needed) the queue store in `dir` (the stack's `.spillway/queues/`)
    /// with the embedded engine. Must be called inside a tokio runtime.
    pub async fn open(dir: &Path, region: &str, account: &str) -> Result<Self, QueueError> {
        Ok(QueueService {
            engine: Engine::Embedded(Embedded::open(dir, region, account).await?),
        })
    }

    /// Opens the embedded engine over any [`Store`].
    pub async fn open_with_store(
        store: Arc<dyn Store>,
        region: &str,
        account: &str,
    ) -> Result<Self, QueueError> {
        Ok(QueueService {
            engine: Engine::Embedded(Embedded::open_with_store(store, region, account).await?),
        })
    }

    /// Connects to NATS JetStream: queues, their messages and their delivery state live
    /// there, shared by every spillway process given the same server and namespace.
    pub async fn open_jetstream(
        options: JetStreamOptions,
        region: &str,
        account: &str,
    ) -> Result<Self, QueueError> {
        let engine = Arc::new(JetStreamQueues::open(options, region, account).await?);
        engine.watch();
        Ok(QueueService {
            engine: Engine::JetStream(engine),
        })
    }

    /// The name of the engine, for logs and `/_spillway` pages.
    pub fn backend(&self) -> &'static str {
        match &self.engine {
            Engine::Embedded(_) => "embedded",
            Engine::JetStream(_) => "jetstream",
        }
    }

    pub async fn render_metrics(&self) -> String {
        dispatch!(self, e => e.render_metrics().await)
    }

    /// Releases the engine's files or connection (the stack stops); later calls fail.
    pub fn close(&self) {
        dispatch!(self, e => e.close())
    }

    pub fn region(&self) -> &str {
        dispatch!(self, e => e.region())
    }

    pub fn account_id(&self) -> &str {
        dispatch!(self, e => e.account_id())
    }

    pub fn queue_arn(&self, name: &str) -> String {
        dispatch!(self, e => e.queue_arn(name))
    }

    /// Removes expired messages and dedup entries now (the embedded engine also does it every
    /// few seconds by itself; JetStream expires messages by the stream's MaxAge).
    pub async fn sweep(&self) -> Result<(), QueueError> {
        dispatch!(self, e => e.sweep().await)
    }

    pub async fn create_queue(&self, request: CreateQueueRequest) -> Result<QueueRef, QueueError> {
        dispatch!(self, e => e.create_queue(request).await)
    }

    pub async fn get_queue_url(&self, queue_name: &str) -> Result<QueueRef, QueueError> {
        dispatch!(self, e => e.get_queue_url(queue_name).await)
    }

    pub async fn list_queues(
        &self,
        request: ListQueuesRequest,
    ) -> Result<ListQueuesResponse, QueueError> {
        dispatch!(self, e => e.list_queues(request).await)
    }

    pub async fn list_dead_letter_source_queues(
        &self,
        queue_name: &str,
        max_results: Option<u32>,
        next_token: Option<String>,
    ) -> Result<ListQueuesResponse, QueueError> {
        dispatch!(self, e => e.list_dead_letter_source_queues(queue_name, max_results, next_token).await)
    }

    pub async fn delete_queue(&self, queue_name: &str) -> Result<(), QueueError> {
        dispatch!(self, e => e.delete_queue(queue_name).await)
    }

    pub async fn purge_queue(&self, queue_name: &str) -> Result<(), QueueError> {
        dispatch!(self, e => e.purge_queue(queue_name).await)
    }

    pub async fn get_queue_attributes(
        &self,
        queue_name: &str,
        attribute_names: &[String],
    ) -> Result<BTreeMap<String, String>, QueueError> {
        dispatch!(self, e => e.get_queue_attributes(queue_name, attribute_names).await)
    }

    pub async fn set_queue_attributes(
        &self,
        queue_name: &str,
        attributes: BTreeMap<String, String>,
    ) -> Result<(), QueueError> {
        dispatch!(self, e => e.set_queue_attributes(queue_name, attributes).await)
    }

    pub async fn tag_queue(
        &self,
        queue_name: &str,
        tags: BTreeMap<String, String>,
    ) -> Result<(), QueueError> {
        dispatch!(self, e => e.tag_queue(queue_name, tags).await)
    }

    pub async fn untag_queue(
        &self,
        queue_name: &str,
        tag_keys: &[String],
    ) -> Result<(), QueueError> {
        dispatch!(self, e => e.untag_queue(queue_name, tag_keys).await)
    }

    pub async fn list_queue_tags(
        &self,
        queue_name: &str,
    ) -> Result<BTreeMap<String, String>, QueueError> {
        dispatch!(self, e => e.list_queue_tags(queue_name).await)
    }

    pub async fn send_message(
        &self,
        request: SendMessageRequest,
    ) -> Result<SendMessageResponse, QueueError> {
        dispatch!(self, e => e.send_message(request).await)
    }

    pub async fn send_message_batch(
        &self,
        request: SendMessageBatchRequest,
    ) -> Result<SendMessageBatchResponse, QueueError> {
        dispatch!(self, e => e.send_message_batch(request).await)
    }

    pub async fn receive_message(
        &self,
        request: ReceiveMessageRequest,
    ) -> Result<ReceiveMessageResponse, QueueError> {
        dispatch!(self, e => e.receive_message(request).await)
    }

    pub async fn delete_message(
        &self,
        queue_name: &str,
        receipt_handle: &str,
    ) -> Result<(), QueueError> {
        dispatch!(self, e => e.delete_message(queue_name, receipt_handle).await)
    }

    pub async fn delete_message_batch(
        &self,
        queue_name: &str,
        entries: Vec<DeleteMessageBatchRequestEntry>,
    ) -> Result<BatchResponse, QueueError> {
        dispatch!(self, e => e.delete_message_batch(queue_name, entries).await)
    }

    pub async fn change_message_visibility(
        &self,
        queue_name: &str,
        receipt_handle: &str,
        visibility_timeout: u32,
    ) -> Result<(), QueueError> {
        dispatch!(self, e => e.change_message_visibility(queue_name, receipt_handle, visibility_timeout).await)
    }

    pub async fn change_message_visibility_batch(
        &self,
        queue_name: &str,
        entries: Vec<ChangeMessageVisibilityBatchRequestEntry>,
    ) -> Result<BatchResponse, QueueError> {
        dispatch!(self, e => e.change_message_visibility_batch(queue_name, entries).await)
    }

    /// The queue's resource policy (its `Policy` attribute), for the API layer's authorization.
    pub async fn resource_policy(
        &self,
        queue_arn: &str,
    ) -> Option<spillway_identity::resource_policy::ResourcePolicy> {
        match &self.engine {
            Engine::Embedded(e) => e.resource_policy(queue_arn),
            Engine::JetStream(e) => e.resource_policy(queue_arn).await,
        }
    }

    pub async fn add_permission(
        &self,
        queue_name: &str,
        label: &str,
        account_ids: &[String],
        actions: &[String],
    ) -> Result<(), QueueError> {
        match &self.engine {
            Engine::Embedded(e) => {
                e.add_permission(queue_name, label, account_ids, actions)
                    .await
            }
            Engine::JetStream(_) => Err(not_on_jetstream("AddPermission")),
        }
    }

    pub async fn remove_permission(&self, queue_name: &str, label: &str) -> Result<(), QueueError> {
        match &self.engine {
            Engine::Embedded(e) => e.remove_permission(queue_name, label).await,
            Engine::JetStream(_) => Err(not_on_jetstream("RemovePermission")),
        }
    }

    /// ARNs of the queues whose RedrivePolicy names `dead_letter_arn` (a move task's default
    /// destinations).
    pub fn dead_letter_source_arns(&self, dead_letter_arn: &str) -> Vec<String> {
        match &self.engine {
            Engine::Embedded(e) => e.dead_letter_source_arns(dead_letter_arn),
            Engine::JetStream(_) => Vec::new(),
        }
    }

    pub async fn start_message_move_task(
        &self,
        source_arn: &str,
        destination_arn: Option<&str>,
        max_per_second: Option<u32>,
    ) -> Result<String, QueueError> {
        match &self.engine {
            Engine::Embedded(e) => {
                e.start_message_move_task(source_arn, destination_arn, max_per_second)
                    .await
            }
            Engine::JetStream(_) => Err(not_on_jetstream("StartMessageMoveTask")),
        }
    }

    pub async fn list_message_move_tasks(
        &self,
        source_arn: &str,
        max_results: Option<u32>,
    ) -> Result<Vec<crate::move_task::MoveTask>, QueueError> {
        match &self.engine {
            Engine::Embedded(e) => e.list_message_move_tasks(source_arn, max_results).await,
            Engine::JetStream(_) => Err(not_on_jetstream("ListMessageMoveTasks")),
        }
    }

    pub async fn cancel_message_move_task(&self, handle: &str) -> Result<u64, QueueError> {
        match &self.engine {
            Engine::Embedded(e) => e.cancel_message_move_task(handle).await,
            Engine::JetStream(_) => Err(not_on_jetstream("CancelMessageMoveTask")),
        }
    }
}

/// Actions the JetStream engine does not carry yet (docs/queue.md, "NATS JetStream").
fn not_on_jetstream(action: &str) -> QueueError {
    QueueError::UnsupportedOperation(format!(
        "{action} is not available with the NATS JetStream queue backend"
    ))
}
