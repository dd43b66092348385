//! The stack's queues: the queue service opened on `.spillway/queues/` (or on the NATS
//! JetStream server of `[stack] queue_backend`, shared with other stacks), the `[queues.*]` of
//! the stack declared in it (dead-letter queues first, since a redrive policy must name an
//! existing queue), and the glue that lets an HTTP API's `SQS-SendMessage` routes send into it.

use std::collections::BTreeMap;
use std::sync::Arc;

use spillway_gateway::integrations::queue::{
    QueueSendError, QueueSink, SendFuture, SendMessage, SentMessage,
};
use spillway_queue::{CreateQueueRequest, QueueError, QueueService, SendMessageRequest};
use spillway_stack::LoadedStack;
use spillway_stack::model::Queue;

use crate::error::SupervisorError;

/// The SQS attributes a `[queues.NAME]` section stands for.
fn attributes(service: &QueueService, spec: &Queue) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let secs = |d: spillway_stack::Duration| d.0.as_secs().to_string();
    a.insert("VisibilityTimeout".into(), secs(spec.visibility_timeout));
    a.insert(
        "MessageRetentionPeriod".into(),
        secs(spec.message_retention),
    );
    a.insert("DelaySeconds".into(), secs(spec.delay));
    a.insert(
        "ReceiveMessageWaitTimeSeconds".into(),
        secs(spec.receive_wait_time),
    );
    a.insert(
        "MaximumMessageSize".into(),
        spec.maximum_message_size.to_string(),
    );
    if spec.fifo {
        a.insert("FifoQueue".into(), "true".into());
        a.insert(
            "ContentBasedDeduplication".into(),
            spec.content_based_deduplication.to_string(),
        );
    }
    if let Some(dl) = &spec.dead_letter {
        a.insert(
            "RedrivePolicy".into(),
            serde_json::json!({
                "deadLetterTargetArn": service.queue_arn(&dl.queue),
                "maxReceiveCount": dl.max_receive_count,
            })
            .to_string(),
        );
    }
    a
}

/// Opens the queue service and makes the stack's queues exist with the stack's attributes
/// (a queue kept from an earlier run whose section changed is updated, its messages kept).
pub async fn start(loaded: &LoadedStack) -> Result<Arc<QueueService>, SupervisorError> {
    let stack = &loaded.stack;
    let settings = &stack.stack;
    let service = match settings.queue_nats_url() {
        Some(url) => {
            let options = spillway_queue::jetstream::JetStreamOptions {
                url: url.to_owned(),
                namespace: settings.queue_namespace().to_owned(),
            };
            QueueService::open_jetstream(options, &settings.region, &settings.account)
                .await
                .map_err(|e| SupervisorError::Queues {
                    what: format!(
                        "the queues on {url} (namespace {})",
                        settings.queue_namespace()
                    ),
                    detail: e.to_string(),
                })?
        }
        None => {
            let dir = loaded.state_dir().join("queues");
            std::fs::create_dir_all(&dir).map_err(SupervisorError::io("queues"))?;
            QueueService::open(&dir, &settings.region, &settings.account)
                .await
                .map_err(|e| SupervisorError::Queues {
                    what: format!("the queues in {}", dir.display()),
                    detail: e.to_string(),
                })?
        }
    };
    tracing::info!(backend = service.backend(), "queue service open");
    let mut order: Vec<(&String, &Queue)> = stack.queues.iter().collect();
    // Dead-letter queues (named by others, or without one of their own) first.
    order.sort_by_key(|(_, q)| q.dead_letter.is_some());
    for (name, spec) in order {
        let attrs = attributes(&service, spec);
        let created = service
            .create_queue(CreateQueueRequest {
                queue_name: name.clone(),
                attributes: attrs.clone(),
                tags: BTreeMap::new(),
            })
            .await;
        let result = match created {
            Err(QueueError::QueueAlreadyExists(_)) => {
                tracing::info!(queue = %name, "the stack changed this queue's attributes: updating it");
                let mut changeable = attrs;
                // Set once at creation by SQS's rules.
                changeable.remove("FifoQueue");
                service.set_queue_attributes(name, changeable).await
            }
            other => other.map(|_| ()),
        };
        // A dead_letter removed from the section: CreateQueue compares only the attributes it
        // is given, so an existing redrive policy would stay. An empty one removes it.
        let result = match result {
            Ok(()) if spec.dead_letter.is_none() => {
                let current = service
                    .get_queue_attributes(name, &["RedrivePolicy".to_owned()])
                    .await;
                match current {
                    Ok(a) if a.contains_key("RedrivePolicy") => {
                        let clear = BTreeMap::from([("RedrivePolicy".to_owned(), String::new())]);
                        service.set_queue_attributes(name, clear).await
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        result.map_err(|e| SupervisorError::Queues {
            what: format!("queues.{name}"),
            detail: e.client_message(),
        })?;
    }
    Ok(Arc::new(service))
}

/// The gateway's `SQS-SendMessage` integration, sending into the stack's queue service.
pub struct GatewaySink {
    pub service: Arc<QueueService>,
}

impl QueueSink for GatewaySink {
    fn send(&self, m: SendMessage) -> SendFuture<'_> {
        Box::pin(async move {
            let refuse = |e: QueueError| QueueSendError {
                status: e.http_status(),
                code: e.code().to_owned(),
                message: e.client_message(),
            };
            // The route's queue only: a mapped QueueUrl (which may come from the request) must
            // name it. In AWS the integration's role bounds where it can send; the stack models
            // no such role, so the route's `queue` is that bound.
            if let Some(url) = &m.queue_url {
                let named = spillway_queue::api::url::queue_name(url, self.service.account_id())
                    .map_err(refuse)?;
                if named != m.queue {
                    return Err(QueueSendError {
                        status: 403,
                        code: "AccessDenied".into(),
                        message: format!(
                            "this route may send to queue {} only, not {named}",
                            m.queue
                        ),
                    });
                }
            }
            let queue_name = m.queue.clone();
            let message_attributes = match &m.attributes {
                Some(text) => {
                    let v: serde_json::Value = serde_json::from_str(text).map_err(|_| {
                        refuse(QueueError::InvalidParameterValue(
                            "MessageAttributes is not a JSON map".into(),
                        ))
                    })?;
                    spillway_queue::api::message_attributes(&v).map_err(refuse)?
                }
                None => Default::default(),
            };
            let sent = self
                .service
                .send_message(SendMessageRequest {
                    queue_name,
                    message_body: m.body,
                    delay_seconds: m.delay_seconds,
                    message_attributes,
                    message_system_attributes: Default::default(),
                    message_deduplication_id: m.deduplication_id,
                    message_group_id: m.group_id,
                    // API Gateway sends as the account (its integration role's id is not
                    // modelled in the stack).
                    sender_id: self.service.account_id().to_owned(),
                })
                .await
                .map_err(refuse)?;
            Ok(SentMessage {
                message_id: sent.message_id,
                md5_of_body: sent.md5_of_message_body,
                sequence_number: sent.sequence_number,
            })
        })
    }
}

/// A function's on-failure queue: the destination record is sent as the message body, as
/// Lambda's SQS destination sends it, by the function's service (the account is the sender).
pub struct FailureQueue {
    pub service: Arc<QueueService>,
}

impl spillway_functions::FailureDestination for FailureQueue {
    fn deliver<'a>(
        &'a self,
        queue: &'a str,
        record: String,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            self.service
                .send_message(SendMessageRequest {
                    queue_name: queue.to_owned(),
                    message_body: record,
                    delay_seconds: None,
                    message_attributes: Default::default(),
                    message_system_attributes: Default::default(),
                    message_deduplication_id: None,
                    message_group_id: None,
                    sender_id: self.service.account_id().to_owned(),
                })
                .await
                .map(|_| ())
                .map_err(|e| format!("{}: {}", e.code(), e.client_message()))
        })
    }
}

/// Event source mappings invoke functions through the function host.
pub struct HostInvoker {
    pub host: Arc<spillway_functions::FunctionHost>,
}

impl spillway_queue::event_source::Invoker for HostInvoker {
    fn invoke<'a>(
        &'a self,
        function: &'a str,
        payload: Vec<u8>,
    ) -> spillway_queue::event_source::InvokeFuture<'a> {
        use spillway_functions::InvokeError;
        use spillway_queue::event_source::Invocation;
        Box::pin(async move {
            let req = spillway_functions::InvokeRequest::new(payload);
            match self.host.invoke(function, req).await {
                Ok(out) if out.is_error() => {
                    Invocation::Failed(out.error_type.unwrap_or_else(|| "function error".into()))
                }
                Ok(out) => Invocation::Returned(out.payload.to_vec()),
                Err(InvokeError::Throttled { .. }) => Invocation::Throttled,
                Err(e) => Invocation::Failed(e.to_string()),
            }
        })
    }
}

/// Starts the stack's event source mappings. Concurrency: a mapping's `maximum_concurrency`,
/// else 5 (Lambda's pollers start with five concurrent batches), never above the function's
/// reserved concurrency.
pub fn start_mappings(
    stack: &spillway_stack::model::Stack,
    service: &Arc<QueueService>,
    host: &Arc<spillway_functions::FunctionHost>,
    shutdown: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut pollers = Vec::new();
    let invoker: Arc<dyn spillway_queue::event_source::Invoker> = Arc::new(HostInvoker {
        host: Arc::clone(host),
    });
    for (function, f) in &stack.functions {
        for e in f.events.iter().filter(|e| e.enabled) {
            let mut max = e.maximum_concurrency.unwrap_or(5);
            if let Some(reserved) = f.reserved_concurrency {
                max = max.min(reserved);
            }
            if max == 0 {
                tracing::warn!(function = %function, queue = %e.queue, "the function reserves no concurrency: its event source mapping does not poll");
                continue;
            }
            pollers.push(spillway_queue::event_source::spawn(
                Arc::clone(service),
                Arc::clone(&invoker),
                spillway_queue::event_source::Mapping {
                    function: function.clone(),
                    queue: e.queue.clone(),
                    batch_size: e.batch_size,
                    maximum_batching_window: e.maximum_batching_window.0,
                    report_batch_item_failures: e.report_batch_item_failures,
                    max_concurrency: max,
                },
                shutdown.clone(),
            ));
        }
    }
    pollers
}
