//! One error type for every table action, rendered as DynamoDB renders its errors:
//! `{"__type": "<namespace>#<Name>", "message": "..."}` with the status DynamoDB uses.
//! What a client may see is decided here: validation and condition failures carry DynamoDB's
//! own text; store failures are logged and answered with a generic InternalServerError.

use serde_json::{Value, json};

use crate::store::StoreError;
use crate::value::{Item, item_to_json};

#[derive(Debug, thiserror::Error)]
pub enum TablesError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Serialization(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("The conditional request failed")]
    ConditionalCheckFailed { item: Option<Item> },
    #[error("Transaction cancelled, please refer cancellation reasons for specific reasons [{}]", .reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>().join(", "))]
    TransactionCanceled { reasons: Vec<CancellationReason> },
    #[error("{0}")]
    IdempotentParameterMismatch(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    UnknownOperation(String),
    #[error("Internal server error")]
    Internal(String),
}

/// One operation's reason in a TransactionCanceledException.
#[derive(Debug, Clone)]
pub struct CancellationReason {
    /// `None`, `ConditionalCheckFailed`, `ValidationError`, ...
    pub code: String,
    pub message: Option<String>,
    pub item: Option<Item>,
}

impl From<StoreError> for TablesError {
    fn from(e: StoreError) -> Self {
        TablesError::Internal(e.to_string())
    }
}

impl TablesError {
    /// The common "1 validation error detected" form of the JSON layer's constraint checks.
    pub fn constraint(value: &str, member: &str, constraint: &str) -> TablesError {
        TablesError::Validation(format!(
            "1 validation error detected: Value {value} at '{member}' failed to satisfy constraint: {constraint}"
        ))
    }

    pub fn invalid(why: impl std::fmt::Display) -> TablesError {
        TablesError::Validation(format!("One or more parameter values were invalid: {why}"))
    }

    pub fn no_table() -> TablesError {
        TablesError::ResourceNotFound("Requested resource not found".into())
    }

    pub fn name(&self) -> &'static str {
        match self {
            TablesError::Validation(_) => "ValidationException",
            TablesError::Serialization(_) => "SerializationException",
            TablesError::ResourceNotFound(_) => "ResourceNotFoundException",
            TablesError::ResourceInUse(_) => "ResourceInUseException",
            TablesError::ConditionalCheckFailed { .. } => "ConditionalCheckFailedException",
            TablesError::TransactionCanceled { .. } => "TransactionCanceledException",
            TablesError::IdempotentParameterMismatch(_) => "IdempotentParameterMismatchException",
            TablesError::LimitExceeded(_) => "LimitExceededException",
            TablesError::AccessDenied(_) => "AccessDeniedException",
            TablesError::UnknownOperation(_) => "UnknownOperationException",
            TablesError::Internal(_) => "InternalServerError",
        }
    }

    /// The `__type` namespace DynamoDB puts before the name: the service's own for its
    /// modeled errors, Coral's (the framework's) for validation, serialization and routing.
    fn namespace(&self) -> &'static str {
        match self {
            TablesError::Validation(_) => "com.amazon.coral.validate",
            TablesError::Serialization(_) | TablesError::UnknownOperation(_) => {
                "com.amazon.coral.service"
            }
            _ => "com.amazonaws.dynamodb.v20120810",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            TablesError::Internal(_) => 500,
            _ => 400,
        }
    }

    pub fn body(&self) -> Value {
        let mut body = json!({
            "__type": format!("{}#{}", self.namespace(), self.name()),
            "message": self.to_string(),
        });
        match self {
            TablesError::ConditionalCheckFailed { item: Some(item) } => {
                body["Item"] = item_to_json(item);
            }
            TablesError::TransactionCanceled { reasons } => {
                body["CancellationReasons"] = Value::Array(
                    reasons
                        .iter()
                        .map(|r| {
                            let mut v = json!({ "Code": r.code });
                            if let Some(m) = &r.message {
                                v["Message"] = json!(m);
                            }
                            if let Some(i) = &r.item {
                                v["Item"] = item_to_json(i);
                            }
                            v
                        })
                        .collect(),
                );
            }
            _ => {}
        }
        body
    }
}
