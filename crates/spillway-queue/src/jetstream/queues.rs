//! Queue-level operations on JetStream: records in the KV bucket (compare-and-set, so nodes
//! changing one queue at once do not lose each other's change), a stream and a consumer per
//! queue, counts from the consumer.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_nats::jetstream::kv;

use super::{JetStreamQueues, JsQueue, QUEUE_KEY_PREFIX, call, encode_record, write};
use crate::clock::now_ms;
use crate::embedded::queues::{check_tags, page};
use crate::error::QueueError;
use crate::model::{CreateQueueRequest, ListQueuesRequest, ListQueuesResponse, QueueRef};
use crate::queue_attributes;
use crate::redrive::RedrivePolicy;
use crate::store::StoredQueue;
use crate::validate;

const PURGE_INTERVAL_MS: u64 = 60_000;

/// The Approximate* counts of a queue, from its consumer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counts {
    /// Not delivered yet (`num_pending`).
    pub visible: u64,
    /// Delivered and not acknowledged (`num_ack_pending`).
    pub not_visible: u64,
}

impl JetStreamQueues {
    pub async fn create_queue(&self, request: CreateQueueRequest) -> Result<QueueRef, QueueError> {
        let fifo = request
            .attributes
            .get("FifoQueue")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        validate::queue_name(&request.queue_name, fifo)?;
        if fifo {
            return Err(QueueError::UnsupportedOperation(
                "FIFO queues are not available on the JetStream queue backend.".into(),
            ));
        }
        let mut attributes = BTreeMap::new();
        for (name, value) in &request.attributes {
            let value = queue_attributes::normalize(name, value, fifo, true)?;
            attributes.insert(name.clone(), value);
        }
        queue_attributes::check_combination(fifo, &attributes)?;
        check_tags(&request.tags)?;
        if let Ok(existing) = self.queue(&request.queue_name).await {
            return self.same_or_refuse(&existing, &attributes);
        }
        let arn = self.queue_arn(&request.queue_name);
        self.check_redrive(&arn, &attributes).await?;
        let now = now_ms() / 1000;
        let record = StoredQueue {
            id: rand::random(),
            name: request.queue_name.clone(),
            fifo,
            attributes: attributes.clone(),
            tags: request.tags,
            created: now,
            last_modified: now,
            last_purge: None,
        };
        // The stream and consumer first: a record in the bucket is a queue others may use.
        let stream = self
            .context
            .create_stream(self.stream_config(&record))
            .await
            .map_err(call("creating a queue's stream"))?;
        stream
            .create_consumer(Self::consumer_config(&record))
            .await
            .map_err(call("creating a queue's consumer"))?;
        let key = format!("{QUEUE_KEY_PREFIX}{}", record.name);
        match self.queues_kv.create(&key, encode_record(&record)?).await {
            Ok(_) => {}
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                // Another node created it first: ours goes, theirs decides.
                let _ = self
                    .context
                    .delete_stream(self.stream_name(record.id))
                    .await;
                let existing = self.queue(&record.name).await?;
                return self.same_or_refuse(&existing, &attributes);
            }
            Err(e) => {
                let _ = self
                    .context
                    .delete_stream(self.stream_name(record.id))
                    .await;
                return Err(call("writing a queue record")(&e));
            }
        }
        tracing::info!(queue = %request.queue_name, "queue created in JetStream");
        Ok(self.queue_ref(&request.queue_name))
    }

    /// CreateQueue of an existing queue: its URL when every attribute given is equal.
    fn same_or_refuse(
        &self,
        existing: &JsQueue,
        attributes: &BTreeMap<String, String>,
    ) -> Result<QueueRef, QueueError> {
        for (name, value) in attributes {
            let current = queue_attributes::effective(name, false, &existing.record.attributes);
            if current.as_deref().unwrap_or("") != value {
                return Err(QueueError::QueueAlreadyExists(name.clone()));
            }
        }
        Ok(self.queue_ref(&existing.name))
    }

    fn queue_ref(&self, name: &str) -> QueueRef {
        QueueRef {
            queue_name: name.to_string(),
            queue_arn: self.queue_arn(name),
        }
    }

    /// A RedrivePolicy's dead-letter queue must exist and allow this source.
    async fn check_redrive(
        &self,
        source_arn: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), QueueError> {
        let Some(text) = attributes.get("RedrivePolicy").filter(|t| !t.is_empty()) else {
            return Ok(());
        };
        let policy = RedrivePolicy::parse(text)?;
        let reason = |why: &str| QueueError::invalid_parameter("RedrivePolicy", text, why);
        if policy.dead_letter_target_arn == source_arn {
            return Err(reason("A queue cannot be its own dead-letter queue."));
        }
        let target = self
            .queue_by_arn(&policy.dead_letter_target_arn)
            .await
            .ok_or_else(|| reason("Dead letter target does not exist."))?;
        if let Some(allow) = target.config().redrive_allow_policy
            && !allow.allows(source_arn)
        {
            return Err(reason(
                "The dead-letter queue's RedriveAllowPolicy does not allow this source queue.",
            ));
        }
        Ok(())
    }

    pub async fn get_queue_url(&self, queue_name: &str) -> Result<QueueRef, QueueError> {
        self.queue(queue_name)
            .await
            .map(|q| self.queue_ref(&q.name))
    }

    pub async fn list_queues(
        &self,
        request: ListQueuesRequest,
    ) -> Result<ListQueuesResponse, QueueError> {
        let prefix = request.queue_name_prefix.unwrap_or_default();
        let names = self
            .all_records()
            .await?
            .into_keys()
            .filter(|n| n.starts_with(&prefix))
            .collect();
        page(names, request.max_results, request.next_token)
    }

    pub async fn list_dead_letter_source_queues(
        &self,
        queue_name: &str,
        max_results: Option<u32>,
        next_token: Option<String>,
    ) -> Result<ListQueuesResponse, QueueError> {
        let target = self.queue(queue_name).await?;
        let sources = self
            .all_records()
            .await?
            .into_values()
            .filter(|r| {
                queue_attributes::QueueConfig::from_attributes(false, &r.attributes)
                    .redrive_policy
                    .is_some_and(|p| p.dead_letter_target_arn == target.arn)
            })
            .map(|r| r.name)
            .collect();
        page(sources, max_results, next_token)
    }

    pub async fn delete_queue(&self, queue_name: &str) -> Result<(), QueueError> {
        let queue = self.queue(queue_name).await?;
        self.queues_kv
            .delete(format!("{QUEUE_KEY_PREFIX}{queue_name}"))
            .await
            .map_err(call("deleting a queue record"))?;
        write(&self.cache).remove(queue_name);
        if let Err(error) = self.context.delete_stream(&queue.stream).await {
            tracing::warn!(%error, queue = %queue_name, "the deleted queue's stream stays");
        }
        tracing::info!(queue = %queue_name, "queue deleted from JetStream");
        Ok(())
    }

    /// Rewrites a queue's record with compare-and-set on its revision; `change` runs again on
    /// the newer record when another node wrote in between.
    async fn update_record(
        &self,
        queue_name: &str,
        change: impl Fn(&mut StoredQueue) -> Result<(), QueueError>,
    ) -> Result<(Arc<JsQueue>, StoredQueue), QueueError> {
        let key = format!("{QUEUE_KEY_PREFIX}{queue_name}");
        for _ in 0..5 {
            let queue = self.queue(queue_name).await?;
            let mut record = queue.record.clone();
            change(&mut record)?;
            match self
                .queues_kv
                .update(&key, encode_record(&record)?, queue.revision)
                .await
            {
                Ok(revision) => {
                    let updated =
                        Arc::new(self.handle(record.clone(), revision, queue.consumer.clone()));
                    write(&self.cache).insert(queue_name.to_string(), updated.clone());
                    return Ok((updated, record));
                }
                Err(_) => {
                    // Stale: read the record again from the bucket.
                    write(&self.cache).remove(queue_name);
                }
            }
        }
        Err(QueueError::Internal(format!(
            "the record of {queue_name} kept changing under this update"
        )))
    }

    /// PurgeQueue: purges the stream; once per 60 seconds across all nodes.
    pub async fn purge_queue(&self, queue_name: &str) -> Result<(), QueueError> {
        let now = now_ms();
        let arn = self.queue_arn(queue_name);
        let (queue, _) = self
            .update_record(queue_name, |record| {
                if record
                    .last_purge
                    .is_some_and(|at| now < at + PURGE_INTERVAL_MS)
                {
                    return Err(QueueError::PurgeQueueInProgress(arn.clone()));
                }
                record.last_purge = Some(now);
                Ok(())
            })
            .await?;
        let stream = self
            .context
            .get_stream_no_info(&queue.stream)
            .await
            .map_err(call("opening a queue's stream"))?;
        stream
            .purge()
            .await
            .map_err(call("purging a queue's stream"))?;
        Ok(())
    }

    pub(crate) async fn counts(&self, queue: &JsQueue) -> Result<Counts, QueueError> {
        let info = queue
            .consumer
            .get_info()
            .await
            .map_err(call("reading a consumer's counts"))?;
        Ok(Counts {
            visible: info.num_pending,
            not_visible: info.num_ack_pending as u64,
        })
    }

    /// When the oldest message still in the stream was sent (epoch ms).
    pub(crate) async fn oldest(&self, queue: &JsQueue) -> Result<Option<u64>, QueueError> {
        let stream = self
            .context
            .get_stream_no_info(&queue.stream)
            .await
            .map_err(call("opening a queue's stream"))?;
        let info = stream
            .get_info()
            .await
            .map_err(call("reading a stream's state"))?;
        if info.state.messages == 0 {
            return Ok(None);
        }
        let ms = info.state.first_timestamp.unix_timestamp_nanos() / 1_000_000;
        Ok(u64::try_from(ms).ok())
    }

    pub async fn get_queue_attributes(
        &self,
        queue_name: &str,
        attribute_names: &[String],
    ) -> Result<BTreeMap<String, String>, QueueError> {
        let queue = self.queue(queue_name).await?;
        let wanted = queue_attributes::wanted(attribute_names)?;
        let counts = if wanted.iter().any(|n| n.starts_with("Approximate")) {
            Some(self.counts(&queue).await?)
        } else {
            None
        };
        let record = &queue.record;
        let mut out = BTreeMap::new();
        for name in wanted {
            let value = match (name, counts) {
                ("ApproximateNumberOfMessages", Some(c)) => Some(c.visible.to_string()),
                ("ApproximateNumberOfMessagesNotVisible", Some(c)) => {
                    Some(c.not_visible.to_string())
                }
                ("ApproximateNumberOfMessagesDelayed", Some(_)) => Some("0".into()),
                ("CreatedTimestamp", _) => Some(record.created.to_string()),
                ("LastModifiedTimestamp", _) => Some(record.last_modified.to_string()),
                ("QueueArn", _) => Some(queue.arn.clone()),
                _ => queue_attributes::effective(name, false, &record.attributes),
            };
            if let Some(value) = value {
                out.insert(name.to_string(), value);
            }
        }
        Ok(out)
    }

    /// SetQueueAttributes; VisibilityTimeout becomes the consumer's ack wait and
    /// MessageRetentionPeriod the stream's MaxAge.
    pub async fn set_queue_attributes(
        &self,
        queue_name: &str,
        attributes: BTreeMap<String, String>,
    ) -> Result<(), QueueError> {
        let current = self.queue(queue_name).await?;
        let mut normalized = BTreeMap::new();
        for (name, value) in &attributes {
            normalized.insert(
                name.clone(),
                queue_attributes::normalize(name, value, false, false)?,
            );
        }
        if normalized
            .get("RedrivePolicy")
            .is_some_and(|p| !p.is_empty())
        {
            self.check_redrive(&current.arn, &normalized).await?;
        }
        let now = now_ms() / 1000;
        let (queue, record) = self
            .update_record(queue_name, |record| {
                for (name, value) in &normalized {
                    if value.is_empty() {
                        record.attributes.remove(name);
                    } else {
                        record.attributes.insert(name.clone(), value.clone());
                    }
                }
                queue_attributes::check_combination(false, &record.attributes)?;
                record.last_modified = now;
                Ok(())
            })
            .await?;
        if normalized.contains_key("MessageRetentionPeriod") {
            self.context
                .update_stream(self.stream_config(&record))
                .await
                .map_err(call("updating a queue's retention"))?;
        }
        if normalized.contains_key("VisibilityTimeout") {
            let stream = self
                .context
                .get_stream_no_info(&queue.stream)
                .await
                .map_err(call("opening a queue's stream"))?;
            stream
                .update_consumer(Self::consumer_config(&record))
                .await
                .map_err(call("updating a queue's visibility timeout"))?;
        }
        Ok(())
    }

    pub async fn tag_queue(
        &self,
        queue_name: &str,
        tags: BTreeMap<String, String>,
    ) -> Result<(), QueueError> {
        self.update_record(queue_name, |record| {
            record.tags.extend(tags.clone());
            check_tags(&record.tags)
        })
        .await
        .map(|_| ())
    }

    pub async fn untag_queue(
        &self,
        queue_name: &str,
        tag_keys: &[String],
    ) -> Result<(), QueueError> {
        self.update_record(queue_name, |record| {
            for key in tag_keys {
                record.tags.remove(key);
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    pub async fn list_queue_tags(
        &self,
        queue_name: &str,
    ) -> Result<BTreeMap<String, String>, QueueError> {
        Ok(self.queue(queue_name).await?.record.tags.clone())
    }
}

impl JetStreamQueues {
    /// The `Policy` of the queue whose ARN is `queue_arn`, parsed per call as the embedded
    /// engine does. Read through `queue()`, which falls back to the bucket: a queue this node
    /// has not met yet (made by another node, or before a restart) must not be judged without
    /// its policy — an explicit Deny there has to hold on the first call too.
    pub async fn resource_policy(
        &self,
        queue_arn: &str,
    ) -> Option<spillway_identity::resource_policy::ResourcePolicy> {
        let name = queue_arn.rsplit(':').next()?;
        let queue = self.queue(name).await.ok().filter(|q| q.arn == queue_arn)?;
        let text = queue.record.attributes.get("Policy")?;
        crate::embedded::permissions::parse_queue_policy(&queue.name, text)
    }
}
