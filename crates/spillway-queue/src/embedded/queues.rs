//! Queue-level operations: create, look up, list, delete, purge, attributes, tags, and the
//! dead-letter relations between queues.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{Embedded, QueueHandle, lock};
use crate::clock::now_ms;
use crate::error::QueueError;
use crate::fifo::Dedup;
use crate::model::{CreateQueueRequest, ListQueuesRequest, ListQueuesResponse, QueueRef};
use crate::queue_attributes;
use crate::redrive::RedrivePolicy;
use crate::store::{Mutation, StoredQueue};
use crate::validate;

const PURGE_INTERVAL_MS: u64 = 60_000;
/// How long a deleted queue's name stays refused (QueueDeletedRecently). In AWS the wait lets
/// a deletion reach every host of a distributed fleet; spillway keeps the rule so that code
/// which recreates a queue at once fails here as it would in AWS. The times are kept in
/// memory only: after a restart nothing of the old queue is left that the rule protects, and
/// a tombstone table would outlive every queue it names.
const DELETED_RECENTLY_MS: u64 = 60_000;
const MAX_TAGS: usize = 50;
const DEFAULT_LIST_LIMIT: usize = 1000;

impl Embedded {
    /// CreateQueue: idempotent when every attribute given equals the existing queue's.
    pub async fn create_queue(&self, request: CreateQueueRequest) -> Result<QueueRef, QueueError> {
        let fifo = request
            .attributes
            .get("FifoQueue")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        validate::queue_name(&request.queue_name, fifo)?;
        let mut attributes = BTreeMap::new();
        for (name, value) in &request.attributes {
            let value = queue_attributes::normalize(name, value, fifo, true)?;
            attributes.insert(name.clone(), value);
        }
        queue_attributes::check_combination(fifo, &attributes)?;
        check_tags(&request.tags)?;
        let _admin = self.inner.admin.lock().await;
        if let Ok(existing) = self.queue(&request.queue_name) {
            let record = existing.record();
            for (name, value) in &attributes {
                let current = queue_attributes::effective(name, record.fifo, &record.attributes);
                if current.as_deref().unwrap_or("") != value {
                    return Err(QueueError::QueueAlreadyExists(name.clone()));
                }
            }
            return Ok(self.queue_ref(&existing.name));
        }
        let now_ms = now_ms();
        if lock(&self.inner.deleted)
            .get(&request.queue_name)
            .is_some_and(|&at| now_ms < at + DELETED_RECENTLY_MS)
        {
            return Err(QueueError::QueueDeletedRecently);
        }
        let arn = self.queue_arn(&request.queue_name);
        self.check_redrive(&arn, fifo, &attributes)?;
        let now = now_ms / 1000;
        let record = StoredQueue {
            id: rand::random(),
            name: request.queue_name.clone(),
            fifo,
            attributes,
            tags: request.tags,
            created: now,
            last_modified: now,
            last_purge: None,
        };
        self.inner
            .writer
            .commit(vec![Mutation::PutQueue(record.clone())])
            .await?;
        let handle = Arc::new(QueueHandle::new(record, arn, Dedup::default(), Vec::new()));
        self.inner
            .queues
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(request.queue_name.clone(), handle);
        tracing::info!(queue = %request.queue_name, fifo, "queue created");
        Ok(self.queue_ref(&request.queue_name))
    }

    fn queue_ref(&self, name: &str) -> QueueRef {
        QueueRef {
            queue_name: name.to_string(),
            queue_arn: self.queue_arn(name),
        }
    }

    /// GetQueueUrl: the queue's name and ARN if it exists (the protocol layer makes the URL).
    pub async fn get_queue_url(&self, queue_name: &str) -> Result<QueueRef, QueueError> {
        self.queue(queue_name).map(|q| self.queue_ref(&q.name))
    }

    /// ListQueues, in name order; `next_token` is opaque to clients.
    pub async fn list_queues(
        &self,
        request: ListQueuesRequest,
    ) -> Result<ListQueuesResponse, QueueError> {
        let prefix = request.queue_name_prefix.unwrap_or_default();
        let names = self
            .all_queues()
            .into_iter()
            .map(|q| q.name.clone())
            .filter(|n| n.starts_with(&prefix));
        page(names.collect(), request.max_results, request.next_token)
    }

    /// ListDeadLetterSourceQueues: the queues whose RedrivePolicy targets this one.
    pub async fn list_dead_letter_source_queues(
        &self,
        queue_name: &str,
        max_results: Option<u32>,
        next_token: Option<String>,
    ) -> Result<ListQueuesResponse, QueueError> {
        let target = self.queue(queue_name)?;
        let sources = self
            .all_queues()
            .into_iter()
            .filter(|q| {
                q.config()
                    .redrive_policy
                    .is_some_and(|p| p.dead_letter_target_arn == target.arn)
            })
            .map(|q| q.name.clone())
            .collect();
        page(sources, max_results, next_token)
    }

    pub async fn delete_queue(&self, queue_name: &str) -> Result<(), QueueError> {
        let _admin = self.inner.admin.lock().await;
        let queue = self.queue(queue_name)?;
        self.inner
            .writer
            .commit(vec![
                Mutation::DeleteQueue {
                    id: queue.id,
                    name: queue.name.clone(),
                },
                Mutation::DeleteMeta {
                    key: crate::move_task::meta_key(queue.id),
                },
            ])
            .await?;
        {
            let now = now_ms();
            let mut deleted = lock(&self.inner.deleted);
            // Forget names whose wait is over, so the map stays as small as the last minute's
            // deletions.
            deleted.retain(|_, at| now < *at + DELETED_RECENTLY_MS);
            deleted.insert(queue_name.to_owned(), now);
        }
        self.inner
            .queues
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(queue_name);
        // Wake long polls so they notice the queue is gone.
        queue.arrivals.notify_waiters();
        tracing::info!(queue = %queue_name, "queue deleted");
        Ok(())
    }

    /// PurgeQueue: deletes the messages sent before the call; once per 60 seconds.
    pub async fn purge_queue(&self, queue_name: &str) -> Result<(), QueueError> {
        let queue = self.queue(queue_name)?;
        let now = now_ms();
        let mut record = {
            let record = lock(&queue.record);
            if record
                .last_purge
                .is_some_and(|at| now < at + PURGE_INTERVAL_MS)
            {
                return Err(QueueError::PurgeQueueInProgress(queue.arn.clone()));
            }
            record.clone()
        };
        record.last_purge = Some(now);
        let id = queue.id;
        let stored = record.clone();
        let ((), committed) = self.inner.writer.submit(move |seqs| {
            let below_seq = seqs.allocate();
            (
                vec![
                    Mutation::PutQueue(stored),
                    Mutation::Purge {
                        queue: id,
                        below_seq,
                    },
                ],
                (),
            )
        });
        committed.wait().await?;
        lock(&queue.record).last_purge = Some(now);
        Ok(())
    }

    /// GetQueueAttributes with AWS's names; `All` means every one. Names not asked for are
    /// absent; attributes a queue does not have (FIFO ones on a standard queue, an unset
    /// Policy) are absent too.
    pub async fn get_queue_attributes(
        &self,
        queue_name: &str,
        attribute_names: &[String],
    ) -> Result<BTreeMap<String, String>, QueueError> {
        let queue = self.queue(queue_name)?;
        let wanted = queue_attributes::wanted(attribute_names)?;
        let record = queue.record();
        let needs_counts = wanted.iter().any(|n| n.starts_with("Approximate"));
        let counts = if needs_counts {
            let id = queue.id;
            let now = now_ms();
            Some(self.read(move |s| s.counts(id, now)).await?)
        } else {
            None
        };
        let mut out = BTreeMap::new();
        for name in wanted {
            let value = match (name, counts) {
                ("ApproximateNumberOfMessages", Some(c)) => {
                    Some(c.total.saturating_sub(c.in_flight + c.delayed).to_string())
                }
                ("ApproximateNumberOfMessagesNotVisible", Some(c)) => Some(c.in_flight.to_string()),
                ("ApproximateNumberOfMessagesDelayed", Some(c)) => Some(c.delayed.to_string()),
                ("CreatedTimestamp", _) => Some(record.created.to_string()),
                ("LastModifiedTimestamp", _) => Some(record.last_modified.to_string()),
                ("QueueArn", _) => Some(queue.arn.clone()),
                _ => queue_attributes::effective(name, record.fifo, &record.attributes),
            };
            if let Some(value) = value {
                out.insert(name.to_string(), value);
            }
        }
        Ok(out)
    }

    /// SetQueueAttributes. An empty RedrivePolicy, RedriveAllowPolicy or Policy removes it.
    pub async fn set_queue_attributes(
        &self,
        queue_name: &str,
        attributes: BTreeMap<String, String>,
    ) -> Result<(), QueueError> {
        let _admin = self.inner.admin.lock().await;
        self.set_attributes_locked(queue_name, attributes).await
    }

    /// SetQueueAttributes' work, for callers that hold the admin lock.
    pub(super) async fn set_attributes_locked(
        &self,
        queue_name: &str,
        attributes: BTreeMap<String, String>,
    ) -> Result<(), QueueError> {
        let queue = self.queue(queue_name)?;
        let mut record = queue.record();
        for (name, value) in &attributes {
            let value = queue_attributes::normalize(name, value, record.fifo, false)?;
            if value.is_empty() {
                record.attributes.remove(name);
            } else {
                record.attributes.insert(name.clone(), value);
            }
        }
        queue_attributes::check_combination(record.fifo, &record.attributes)?;
        if attributes.contains_key("RedrivePolicy") {
            self.check_redrive(&queue.arn, record.fifo, &record.attributes)?;
        }
        record.last_modified = now_ms() / 1000;
        self.inner
            .writer
            .commit(vec![Mutation::PutQueue(record.clone())])
            .await?;
        *lock(&queue.record) = record;
        Ok(())
    }

    /// A RedrivePolicy's dead-letter queue must exist, be of the same type, and allow this
    /// source in its RedriveAllowPolicy.
    fn check_redrive(
        &self,
        source_arn: &str,
        fifo: bool,
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
            .filter(|q| q.arn == policy.dead_letter_target_arn)
            .ok_or_else(|| reason("Dead letter target does not exist."))?;
        if target.fifo != fifo {
            return Err(reason(
                "Dead-letter queue must be same type of queue as the source.",
            ));
        }
        if let Some(allow) = target.config().redrive_allow_policy
            && !allow.allows(source_arn)
        {
            return Err(reason(
                "The dead-letter queue's RedriveAllowPolicy does not allow this source queue.",
            ));
        }
        Ok(())
    }

    pub async fn tag_queue(
        &self,
        queue_name: &str,
        tags: BTreeMap<String, String>,
    ) -> Result<(), QueueError> {
        let _admin = self.inner.admin.lock().await;
        let queue = self.queue(queue_name)?;
        let mut record = queue.record();
        record.tags.extend(tags);
        check_tags(&record.tags)?;
        self.inner
            .writer
            .commit(vec![Mutation::PutQueue(record.clone())])
            .await?;
        *lock(&queue.record) = record;
        Ok(())
    }

    pub async fn untag_queue(
        &self,
        queue_name: &str,
        tag_keys: &[String],
    ) -> Result<(), QueueError> {
        let _admin = self.inner.admin.lock().await;
        let queue = self.queue(queue_name)?;
        let mut record = queue.record();
        for key in tag_keys {
            record.tags.remove(key);
        }
        self.inner
            .writer
            .commit(vec![Mutation::PutQueue(record.clone())])
            .await?;
        *lock(&queue.record) = record;
        Ok(())
    }

    pub async fn list_queue_tags(
        &self,
        queue_name: &str,
    ) -> Result<BTreeMap<String, String>, QueueError> {
        Ok(self.queue(queue_name)?.record().tags)
    }
}

pub(crate) fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), QueueError> {
    if tags.len() > MAX_TAGS {
        return Err(QueueError::InvalidParameterValue(format!(
            "Too many tags added for queue. Maximum number of tags is {MAX_TAGS}."
        )));
    }
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
            return Err(QueueError::InvalidParameterValue(format!(
                "Tag {key} is invalid."
            )));
        }
    }
    Ok(())
}

/// Pages sorted names: the token is the last name returned, base64url-encoded.
pub(crate) fn page(
    names: Vec<String>,
    max_results: Option<u32>,
    next_token: Option<String>,
) -> Result<ListQueuesResponse, QueueError> {
    let limit = match max_results {
        None => DEFAULT_LIST_LIMIT,
        Some(n @ 1..=1000) => n as usize,
        Some(n) => {
            return Err(QueueError::invalid_parameter(
                "MaxResults",
                n,
                "MaxResults must be an integer between 1 and 1000.",
            ));
        }
    };
    let after = match next_token.filter(|t| !t.is_empty()) {
        None => None,
        Some(token) => Some(
            URL_SAFE_NO_PAD
                .decode(&token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    QueueError::InvalidParameterValue("Invalid NextToken value.".into())
                })?,
        ),
    };
    let rest: Vec<String> = names
        .into_iter()
        .filter(|n| after.as_ref().is_none_or(|a| n > a))
        .collect();
    let more = rest.len() > limit;
    let queue_names: Vec<String> = rest.into_iter().take(limit).collect();
    // Without MaxResults AWS never pages.
    let next_token = (more && max_results.is_some())
        .then(|| queue_names.last().map(|n| URL_SAFE_NO_PAD.encode(n)))
        .flatten();
    Ok(ListQueuesResponse {
        queue_names,
        next_token,
    })
}
