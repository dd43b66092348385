//! What a ReceiveMessage asked to see (AttributeNames, MessageSystemAttributeNames,
//! MessageAttributeNames with `All` and `prefix.*`), and a received message rendered under
//! those filters. Shared by both engines, so they answer the same attributes the same way.

use std::collections::{BTreeMap, HashSet};

use crate::error::QueueError;
use crate::md5;
use crate::model::{Message, MessageAttributes, ReceiveMessageRequest};
use crate::queue_attributes::{MAX_VISIBILITY_TIMEOUT, MAX_WAIT_TIME_SECONDS, QueueConfig};
use crate::store::MessageRecord;

const SYSTEM_ATTRIBUTES: &[&str] = &[
    "ApproximateFirstReceiveTimestamp",
    "ApproximateReceiveCount",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
    "MessageDeduplicationId",
    "MessageGroupId",
    "SenderId",
    "SentTimestamp",
    "SequenceNumber",
];

/// Which attributes the caller asked for.
/// A ReceiveMessage's MaxNumberOfMessages, VisibilityTimeout and WaitTimeSeconds, each
/// defaulted from the queue and checked against SQS's ranges with SQS's messages.
pub(crate) fn receive_limits(
    request: &ReceiveMessageRequest,
    config: &QueueConfig,
) -> Result<(u32, u32, u32), QueueError> {
    let max = request.max_number_of_messages.unwrap_or(1);
    if !(1..=10).contains(&max) {
        return Err(QueueError::invalid_parameter(
            "MaxNumberOfMessages",
            max,
            "Must be between 1 and 10, if provided.",
        ));
    }
    let visibility = request
        .visibility_timeout
        .unwrap_or(config.visibility_timeout);
    if visibility > MAX_VISIBILITY_TIMEOUT {
        return Err(QueueError::invalid_parameter(
            "VisibilityTimeout",
            visibility,
            "Must be between 0 and 43200, if provided.",
        ));
    }
    let wait = request
        .wait_time_seconds
        .unwrap_or(config.receive_message_wait_time_seconds);
    if wait > MAX_WAIT_TIME_SECONDS {
        return Err(QueueError::invalid_parameter(
            "WaitTimeSeconds",
            wait,
            "Must be >= 0 and <= 20, if provided.",
        ));
    }
    Ok((max, visibility, wait))
}

pub(crate) struct Filters {
    all_system: bool,
    system: HashSet<String>,
    all_user: bool,
    user_exact: HashSet<String>,
    /// From `foo.*`: names starting with `foo.`.
    user_prefixes: Vec<String>,
}

impl Filters {
    pub(crate) fn new(request: &ReceiveMessageRequest) -> Result<Self, QueueError> {
        let mut filters = Filters {
            all_system: false,
            system: HashSet::new(),
            all_user: false,
            user_exact: HashSet::new(),
            user_prefixes: Vec::new(),
        };
        for name in request
            .attribute_names
            .iter()
            .chain(&request.message_system_attribute_names)
        {
            if name == "All" {
                filters.all_system = true;
            } else if SYSTEM_ATTRIBUTES.contains(&name.as_str()) {
                filters.system.insert(name.clone());
            } else {
                return Err(QueueError::InvalidAttributeName(format!(
                    "Unknown Attribute {name}."
                )));
            }
        }
        for name in &request.message_attribute_names {
            if name == "All" || name == ".*" {
                filters.all_user = true;
            } else if let Some(prefix) = name.strip_suffix(".*") {
                filters.user_prefixes.push(format!("{prefix}."));
            } else {
                filters.user_exact.insert(name.clone());
            }
        }
        Ok(filters)
    }

    pub(crate) fn wants_system(&self, name: &str) -> bool {
        self.all_system || self.system.contains(name)
    }

    pub(crate) fn user(&self, attributes: &MessageAttributes) -> MessageAttributes {
        attributes
            .iter()
            .filter(|(name, _)| {
                self.all_user
                    || self.user_exact.contains(*name)
                    || self
                        .user_prefixes
                        .iter()
                        .any(|p| name.starts_with(p.as_str()))
            })
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }
}

/// A message as ReceiveMessage answers it: `receive_count` and `first_receive_at` are this
/// delivery's, `receipt_handle` the handle the engine sealed for it.
pub(crate) fn render(
    record: &MessageRecord,
    receive_count: u32,
    first_receive_at: Option<u64>,
    receipt_handle: String,
    filters: &Filters,
) -> Message {
    let mut attributes = BTreeMap::new();
    let mut put = |name: &str, value: Option<String>| {
        if let Some(value) = value.filter(|_| filters.wants_system(name)) {
            attributes.insert(name.to_string(), value);
        }
    };
    put("SenderId", Some(record.sender_id.clone()));
    put("SentTimestamp", Some(record.sent_at.to_string()));
    put("ApproximateReceiveCount", Some(receive_count.to_string()));
    put(
        "ApproximateFirstReceiveTimestamp",
        first_receive_at.map(|t| t.to_string()),
    );
    put("SequenceNumber", record.sequence_number.clone());
    put("MessageDeduplicationId", record.deduplication_id.clone());
    put("MessageGroupId", record.group_id.clone());
    put(
        "DeadLetterQueueSourceArn",
        record.dead_letter_source_arn.clone(),
    );
    put(
        "AWSTraceHeader",
        record
            .system_attributes
            .get("AWSTraceHeader")
            .and_then(|v| v.string_value.clone()),
    );
    let message_attributes = filters.user(&record.attributes);
    Message {
        message_id: record.message_id.clone(),
        receipt_handle,
        md5_of_body: md5::md5_of_body(&record.body),
        body: record.body.clone(),
        attributes,
        md5_of_message_attributes: md5::md5_of_attributes(&message_attributes),
        message_attributes,
    }
}
