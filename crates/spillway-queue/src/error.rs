//! One error type for every queue operation, with what a client may see decided per variant.
//!
//! The protocol layer renders an error with [`QueueError::code`] (the JSON protocol's `__type`
//! shape name), [`QueueError::query_code`] (the query protocol's `Code` and the JSON protocol's
//! `x-amzn-query-error` header), [`QueueError::http_status`], [`QueueError::fault`] and
//! [`QueueError::client_message`]. Codes and statuses follow the shared `sqs-errors.md` table
//! (botocore's query model before the JSON move, and the current JSON model's shape names).

/// Who caused an error, as SQS reports it (`SenderFault`, the `;Sender` of `x-amzn-query-error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Sender,
    Receiver,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Sender => "Sender",
            Fault::Receiver => "Receiver",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("The specified queue does not exist.")]
    QueueDoesNotExist,
    /// The attribute named differs from the existing queue's.
    #[error("A queue already exists with the same name and a different value for attribute {0}")]
    QueueAlreadyExists(String),
    #[error(
        "You must wait 60 seconds after deleting a queue before you can create another with the same name."
    )]
    QueueDeletedRecently,
    #[error("Only one PurgeQueue operation on {0} is allowed every 60 seconds.")]
    PurgeQueueInProgress(String),
    #[error("{0}")]
    InvalidAttributeName(String),
    #[error("{0}")]
    InvalidAttributeValue(String),
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("The request must contain the parameter {0}.")]
    MissingParameter(&'static str),
    #[error("{0}")]
    InvalidMessageContents(String),
    #[error("The input receipt handle \"{0}\" is not a valid receipt handle.")]
    ReceiptHandleIsInvalid(String),
    #[error("Message does not exist or is not available for visibility timeout change.")]
    MessageNotInflight,
    #[error("Id {0} repeated.")]
    BatchEntryIdsNotDistinct(String),
    #[error("There should be at least one entry in the request.")]
    EmptyBatchRequest,
    #[error("Maximum number of entries per request are 10. You have sent {0}.")]
    TooManyEntriesInBatchRequest(usize),
    #[error(
        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long."
    )]
    InvalidBatchEntryId,
    #[error("Batch requests cannot be longer than {0} bytes. You have sent {1} bytes.")]
    BatchRequestTooLong(usize, usize),
    #[error("{0}")]
    UnsupportedOperation(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    OverLimit(String),
    /// A failure of spillway itself (storage, a full disk). The text is for logs only; clients
    /// get [`INTERNAL_MESSAGE`].
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a client sees for [`QueueError::Internal`]: no paths, no engine text.
pub const INTERNAL_MESSAGE: &str = "We encountered an internal error. Please try again.";

impl QueueError {
    /// The JSON protocol's error shape name (`com.amazonaws.sqs#<code>`).
    pub fn code(&self) -> &'static str {
        match self {
            QueueError::QueueDoesNotExist => "QueueDoesNotExist",
            QueueError::QueueAlreadyExists(_) => "QueueNameExists",
            QueueError::QueueDeletedRecently => "QueueDeletedRecently",
            QueueError::PurgeQueueInProgress(_) => "PurgeQueueInProgress",
            QueueError::InvalidAttributeName(_) => "InvalidAttributeName",
            QueueError::InvalidAttributeValue(_) => "InvalidAttributeValue",
            QueueError::InvalidParameterValue(_) => "InvalidParameterValue",
            QueueError::MissingParameter(_) => "MissingParameter",
            QueueError::InvalidMessageContents(_) => "InvalidMessageContents",
            QueueError::ReceiptHandleIsInvalid(_) => "ReceiptHandleIsInvalid",
            QueueError::MessageNotInflight => "MessageNotInflight",
            QueueError::BatchEntryIdsNotDistinct(_) => "BatchEntryIdsNotDistinct",
            QueueError::EmptyBatchRequest => "EmptyBatchRequest",
            QueueError::TooManyEntriesInBatchRequest(_) => "TooManyEntriesInBatchRequest",
            QueueError::InvalidBatchEntryId => "InvalidBatchEntryId",
            QueueError::BatchRequestTooLong(..) => "BatchRequestTooLong",
            QueueError::UnsupportedOperation(_) => "UnsupportedOperation",
            QueueError::ResourceNotFound(_) => "ResourceNotFoundException",
            QueueError::OverLimit(_) => "OverLimit",
            QueueError::Internal(_) => "InternalFailure",
        }
    }

    /// The query protocol's code, also the first half of JSON's `x-amzn-query-error` header.
    /// Shapes without an `error` trait in the query model use their shape name.
    pub fn query_code(&self) -> &'static str {
        match self {
            QueueError::QueueDoesNotExist => "AWS.SimpleQueueService.NonExistentQueue",
            QueueError::QueueAlreadyExists(_) => "QueueAlreadyExists",
            QueueError::QueueDeletedRecently => "AWS.SimpleQueueService.QueueDeletedRecently",
            QueueError::PurgeQueueInProgress(_) => "AWS.SimpleQueueService.PurgeQueueInProgress",
            QueueError::MessageNotInflight => "AWS.SimpleQueueService.MessageNotInflight",
            QueueError::BatchEntryIdsNotDistinct(_) => {
                "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
            }
            QueueError::EmptyBatchRequest => "AWS.SimpleQueueService.EmptyBatchRequest",
            QueueError::TooManyEntriesInBatchRequest(_) => {
                "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"
            }
            QueueError::InvalidBatchEntryId => "AWS.SimpleQueueService.InvalidBatchEntryId",
            QueueError::BatchRequestTooLong(..) => "AWS.SimpleQueueService.BatchRequestTooLong",
            QueueError::UnsupportedOperation(_) => "AWS.SimpleQueueService.UnsupportedOperation",
            other => other.code(),
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            QueueError::PurgeQueueInProgress(_) | QueueError::OverLimit(_) => 403,
            QueueError::ResourceNotFound(_) => 404,
            QueueError::Internal(_) => 500,
            _ => 400,
        }
    }

    pub fn fault(&self) -> Fault {
        match self {
            QueueError::Internal(_) => Fault::Receiver,
            _ => Fault::Sender,
        }
    }

    /// The message a client may see.
    pub fn client_message(&self) -> String {
        match self {
            QueueError::Internal(_) => INTERNAL_MESSAGE.to_string(),
            other => other.to_string(),
        }
    }

    pub(crate) fn invalid_parameter(
        name: &str,
        value: impl std::fmt::Display,
        reason: &str,
    ) -> Self {
        QueueError::InvalidParameterValue(format!(
            "Value {value} for parameter {name} is invalid. Reason: {reason}"
        ))
    }
}

impl From<crate::store::StoreError> for QueueError {
    fn from(error: crate::store::StoreError) -> Self {
        tracing::error!(%error, "queue storage failed");
        QueueError::Internal(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_existent_queue_matches_the_documented_wire_example() {
        let e = QueueError::QueueDoesNotExist;
        assert_eq!(e.code(), "QueueDoesNotExist");
        assert_eq!(e.query_code(), "AWS.SimpleQueueService.NonExistentQueue");
        assert_eq!(e.http_status(), 400);
        assert_eq!(e.fault(), Fault::Sender);
        assert_eq!(e.client_message(), "The specified queue does not exist.");
    }

    #[test]
    fn internal_errors_hide_their_text() {
        let e = QueueError::Internal("/home/me/.spillway/queues/queues.redb: No space left".into());
        assert_eq!(e.client_message(), INTERNAL_MESSAGE);
        assert_eq!(e.http_status(), 500);
        assert_eq!(e.fault(), Fault::Receiver);
    }

    #[test]
    fn queue_name_exists_uses_the_legacy_query_code() {
        let e = QueueError::QueueAlreadyExists("DelaySeconds".into());
        assert_eq!(e.code(), "QueueNameExists");
        assert_eq!(e.query_code(), "QueueAlreadyExists");
    }
}
