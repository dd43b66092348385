//! Requests and responses, with AWS's field names in snake case so that a protocol layer maps
//! JSON 1.0 members and query parameters to them one to one. Queues are named, not addressed by
//! URL: the protocol layer turns `http://HOST:PORT/ACCOUNT/NAME` into `NAME`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One message attribute (`MessageAttributeValue`). `data_type` is `String`, `Number` or
/// `Binary`, optionally with a custom label (`Number.java.lang.Long`). `binary_value` holds the
/// decoded bytes; the protocol layer does the base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageAttributeValue {
    pub data_type: String,
    pub string_value: Option<String>,
    pub binary_value: Option<Vec<u8>>,
}

impl MessageAttributeValue {
    pub fn string(value: impl Into<String>) -> Self {
        MessageAttributeValue {
            data_type: "String".into(),
            string_value: Some(value.into()),
            binary_value: None,
        }
    }

    pub fn number(value: impl Into<String>) -> Self {
        MessageAttributeValue {
            data_type: "Number".into(),
            string_value: Some(value.into()),
            binary_value: None,
        }
    }

    pub fn binary(value: impl Into<Vec<u8>>) -> Self {
        MessageAttributeValue {
            data_type: "Binary".into(),
            string_value: None,
            binary_value: Some(value.into()),
        }
    }
}

/// Attributes by name; a BTreeMap because the MD5 is computed over names in ascending order.
pub type MessageAttributes = BTreeMap<String, MessageAttributeValue>;

#[derive(Debug, Clone, Default)]
pub struct CreateQueueRequest {
    pub queue_name: String,
    pub attributes: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

/// What CreateQueue and GetQueueUrl answer: the protocol layer builds the URL from the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRef {
    pub queue_name: String,
    pub queue_arn: String,
}

#[derive(Debug, Clone, Default)]
pub struct ListQueuesRequest {
    pub queue_name_prefix: Option<String>,
    /// 1-1000; without it AWS answers up to 1,000 names and no token.
    pub max_results: Option<u32>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQueuesResponse {
    pub queue_names: Vec<String>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SendMessageRequest {
    pub queue_name: String,
    pub message_body: String,
    pub delay_seconds: Option<u32>,
    pub message_attributes: MessageAttributes,
    /// Only `AWSTraceHeader` (String) exists.
    pub message_system_attributes: MessageAttributes,
    pub message_deduplication_id: Option<String>,
    pub message_group_id: Option<String>,
    /// The caller's principal id, returned as the `SenderId` attribute.
    pub sender_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendMessageResponse {
    pub message_id: String,
    pub md5_of_message_body: String,
    /// Omitted (None) when the message has no attributes.
    pub md5_of_message_attributes: Option<String>,
    pub md5_of_message_system_attributes: Option<String>,
    /// FIFO queues only.
    pub sequence_number: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SendMessageBatchRequestEntry {
    pub id: String,
    pub message_body: String,
    pub delay_seconds: Option<u32>,
    pub message_attributes: MessageAttributes,
    pub message_system_attributes: MessageAttributes,
    pub message_deduplication_id: Option<String>,
    pub message_group_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SendMessageBatchRequest {
    pub queue_name: String,
    pub entries: Vec<SendMessageBatchRequestEntry>,
    pub sender_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendMessageBatchResultEntry {
    pub id: String,
    pub message_id: String,
    pub md5_of_message_body: String,
    pub md5_of_message_attributes: Option<String>,
    pub md5_of_message_system_attributes: Option<String>,
    pub sequence_number: Option<String>,
}

/// A failed entry of a batch (`BatchResultErrorEntry`); the batch itself answers 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchResultErrorEntry {
    pub id: String,
    pub sender_fault: bool,
    pub code: String,
    pub message: String,
}

impl BatchResultErrorEntry {
    pub(crate) fn from_error(id: &str, error: &crate::QueueError) -> Self {
        BatchResultErrorEntry {
            id: id.to_string(),
            sender_fault: error.fault() == crate::Fault::Sender,
            code: error.code().to_string(),
            message: error.client_message(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendMessageBatchResponse {
    pub successful: Vec<SendMessageBatchResultEntry>,
    pub failed: Vec<BatchResultErrorEntry>,
}

#[derive(Debug, Clone, Default)]
pub struct ReceiveMessageRequest {
    pub queue_name: String,
    /// 1-10, default 1.
    pub max_number_of_messages: Option<u32>,
    /// 0-43200; default the queue's VisibilityTimeout.
    pub visibility_timeout: Option<u32>,
    /// 0-20; default the queue's ReceiveMessageWaitTimeSeconds.
    pub wait_time_seconds: Option<u32>,
    /// The deprecated `AttributeNames`; merged with `message_system_attribute_names`.
    pub attribute_names: Vec<String>,
    pub message_system_attribute_names: Vec<String>,
    /// Exact names, `All` / `.*`, or prefixes `foo.*`.
    pub message_attribute_names: Vec<String>,
    /// FIFO only.
    pub receive_request_attempt_id: Option<String>,
}

/// A received message (`Message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub message_id: String,
    pub receipt_handle: String,
    pub md5_of_body: String,
    pub body: String,
    /// The system attributes asked for (`SentTimestamp`, `ApproximateReceiveCount`, ...).
    pub attributes: BTreeMap<String, String>,
    /// MD5 of the message attributes returned (None when none are returned).
    pub md5_of_message_attributes: Option<String>,
    pub message_attributes: MessageAttributes,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiveMessageResponse {
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteMessageBatchRequestEntry {
    pub id: String,
    pub receipt_handle: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchResultEntry {
    pub id: String,
}

/// DeleteMessageBatch and ChangeMessageVisibilityBatch answer the same shape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchResponse {
    pub successful: Vec<BatchResultEntry>,
    pub failed: Vec<BatchResultErrorEntry>,
}

#[derive(Debug, Clone, Default)]
pub struct ChangeMessageVisibilityBatchRequestEntry {
    pub id: String,
    pub receipt_handle: String,
    pub visibility_timeout: u32,
}
