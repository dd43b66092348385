//! AddPermission and RemovePermission, which edit the queue's `Policy` as AWS does, and the
//! parsed policy the API layer evaluates beside the caller's on every action.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use spillway_identity::resource_policy::ResourcePolicy;

use super::Embedded;
use crate::error::QueueError;

/// The actions AddPermission may grant (`ActionName`), as AWS lists them; batch calls are
/// covered by their single forms.
const GRANTABLE: &[&str] = &[
    "*",
    "ChangeMessageVisibility",
    "DeleteMessage",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListDeadLetterSourceQueues",
    "PurgeQueue",
    "ReceiveMessage",
    "SendMessage",
];
/// Statements a queue policy may hold through AddPermission: SQS's quota of permissions per
/// queue is not published; spillway stops at 20 statements with `OverLimit`.
const MAX_STATEMENTS: usize = 20;

/// One string, or a list when there are several: the shape AWS writes.
fn one_or_many(values: Vec<String>) -> Value {
    if values.len() == 1 {
        Value::String(values.into_iter().next().unwrap_or_default())
    } else {
        json!(values)
    }
}

fn invalid_label(label: &str, reason: &str) -> QueueError {
    QueueError::invalid_parameter("Label", label, reason)
}

/// A queue's `Policy` attribute as a resource policy (both engines store it as text).
pub(crate) fn parse_queue_policy(queue: &str, text: &str) -> Option<ResourcePolicy> {
    match ResourcePolicy::parse(text) {
        Ok(policy) => Some(policy),
        Err(error) => {
            // Policies are checked when set; one that no longer parses (written by an older
            // spillway) grants nothing and denies nothing.
            tracing::warn!(%queue, %error, "queue policy ignored");
            None
        }
    }
}

impl Embedded {
    /// The `Policy` of the queue whose ARN is `queue_arn`, parsed (None when it has none).
    /// Parsed per call: only queues with a policy pay for it, and a policy is a few hundred
    /// bytes of JSON.
    pub fn resource_policy(&self, queue_arn: &str) -> Option<ResourcePolicy> {
        let queue = self.queue_by_exact_arn(queue_arn)?;
        let text = queue.record().attributes.get("Policy").cloned()?;
        parse_queue_policy(&queue.name, &text)
    }

    /// AddPermission: a statement `Label` allowing `SQS:ACTION` on the queue to each account.
    pub async fn add_permission(
        &self,
        queue_name: &str,
        label: &str,
        account_ids: &[String],
        actions: &[String],
    ) -> Result<(), QueueError> {
        let label_ok = !label.is_empty()
            && label.len() <= 80
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !label_ok {
            return Err(invalid_label(
                label,
                "Label can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length.",
            ));
        }
        if account_ids.is_empty() {
            return Err(QueueError::MissingParameter("AWSAccountIds"));
        }
        if actions.is_empty() {
            return Err(QueueError::MissingParameter("Actions"));
        }
        for id in account_ids {
            if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(QueueError::invalid_parameter(
                    "AWSAccountIds",
                    id,
                    "An AWS account id is 12 digits.",
                ));
            }
        }
        for action in actions {
            if !GRANTABLE.contains(&action.as_str()) {
                return Err(QueueError::invalid_parameter(
                    "ActionName",
                    format!("SQS:{action}"),
                    "Only the queue owner is allowed to invoke this action.",
                ));
            }
        }
        let _admin = self.inner.admin.lock().await;
        let queue = self.queue(queue_name)?;
        let mut policy = match queue.record().attributes.get("Policy") {
            Some(text) => serde_json::from_str::<Value>(text)
                .map_err(|e| QueueError::Internal(format!("stored policy: {e}")))?,
            None => json!({
                "Version": "2012-10-17",
                "Id": format!("{}/SQSDefaultPolicy", queue.arn),
                "Statement": [],
            }),
        };
        let statements = match policy.get_mut("Statement") {
            Some(Value::Array(a)) => a,
            Some(other) => {
                // A single-statement policy as written by SetQueueAttributes.
                *other = Value::Array(vec![other.take()]);
                other
                    .as_array_mut()
                    .ok_or_else(|| QueueError::Internal("policy statement list".into()))?
            }
            None => {
                return Err(QueueError::Internal("policy without statements".into()));
            }
        };
        if statements
            .iter()
            .any(|s| s.get("Sid").and_then(Value::as_str) == Some(label))
        {
            return Err(invalid_label(label, "Already exists."));
        }
        if statements.len() >= MAX_STATEMENTS {
            return Err(QueueError::OverLimit(format!(
                "{MAX_STATEMENTS} statements were found, maximum allowed is {MAX_STATEMENTS}."
            )));
        }
        statements.push(json!({
            "Sid": label,
            "Effect": "Allow",
            "Principal": {"AWS": one_or_many(account_ids.iter().map(|id| format!("arn:aws:iam::{id}:root")).collect())},
            "Action": one_or_many(actions.iter().map(|a| format!("SQS:{a}")).collect()),
            "Resource": queue.arn,
        }));
        let attributes = BTreeMap::from([("Policy".to_string(), policy.to_string())]);
        self.set_attributes_locked(queue_name, attributes).await
    }

    /// RemovePermission: drops the statement `Label`; the last one leaves no policy.
    pub async fn remove_permission(&self, queue_name: &str, label: &str) -> Result<(), QueueError> {
        let _admin = self.inner.admin.lock().await;
        let queue = self.queue(queue_name)?;
        let not_found = || invalid_label(label, "can't find label on existing policy.");
        let text = queue
            .record()
            .attributes
            .get("Policy")
            .cloned()
            .ok_or_else(not_found)?;
        let mut policy: Value = serde_json::from_str(&text)
            .map_err(|e| QueueError::Internal(format!("stored policy: {e}")))?;
        let has_label = |s: &Value| s.get("Sid").and_then(Value::as_str) == Some(label);
        let remaining = match policy.get_mut("Statement") {
            Some(Value::Array(a)) => {
                let before = a.len();
                a.retain(|s| !has_label(s));
                if a.len() == before {
                    return Err(not_found());
                }
                a.len()
            }
            Some(s) if has_label(s) => 0,
            _ => return Err(not_found()),
        };
        let value = if remaining == 0 {
            String::new()
        } else {
            policy.to_string()
        };
        let attributes = BTreeMap::from([("Policy".to_string(), value)]);
        self.set_attributes_locked(queue_name, attributes).await
    }
}
