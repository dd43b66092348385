//! Queue attributes: which exist, which may be set, their ranges and defaults, and the typed
//! view ([`QueueConfig`]) the service works with. A queue stores only the attributes that were
//! set, normalized; GetQueueAttributes fills in the defaults.

use std::collections::BTreeMap;

use crate::error::QueueError;
use crate::redrive::{RedriveAllowPolicy, RedrivePolicy};

pub const DEFAULT_VISIBILITY_TIMEOUT: u32 = 30;
pub const MAX_VISIBILITY_TIMEOUT: u32 = 43_200;
pub const DEFAULT_MAXIMUM_MESSAGE_SIZE: u32 = 262_144;
pub const DEFAULT_RETENTION: u32 = 345_600;
pub const MAX_DELAY_SECONDS: u32 = 900;
pub const MAX_WAIT_TIME_SECONDS: u32 = 20;

/// Every attribute GetQueueAttributes knows (besides `All`).
pub const READABLE: &[&str] = &[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
    "ContentBasedDeduplication",
    "CreatedTimestamp",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "LastModifiedTimestamp",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "Policy",
    "QueueArn",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
];

const FIFO_ONLY: &[&str] = &[
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

/// Checks one attribute given to CreateQueue (`creating`) or SetQueueAttributes and returns its
/// normalized value (booleans lowercase, numbers without leading zeros, policies as given).
pub fn normalize(
    name: &str,
    value: &str,
    fifo: bool,
    creating: bool,
) -> Result<String, QueueError> {
    let unknown = || QueueError::InvalidAttributeName(format!("Unknown Attribute {name}."));
    let bad =
        || QueueError::InvalidAttributeValue(format!("Invalid value for the parameter {name}."));
    let range = |low: u32, high: u32| -> Result<String, QueueError> {
        value
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (low..=high).contains(n))
            .map(|n| n.to_string())
            .ok_or_else(bad)
    };
    let boolean = || match value.to_ascii_lowercase().as_str() {
        v @ ("true" | "false") => Ok(v.to_string()),
        _ => Err(bad()),
    };
    if FIFO_ONLY.contains(&name) && !fifo {
        return Err(unknown());
    }
    match name {
        "DelaySeconds" => range(0, MAX_DELAY_SECONDS),
        "MaximumMessageSize" => range(1024, DEFAULT_MAXIMUM_MESSAGE_SIZE),
        "MessageRetentionPeriod" => range(60, 1_209_600),
        "ReceiveMessageWaitTimeSeconds" => range(0, MAX_WAIT_TIME_SECONDS),
        "VisibilityTimeout" => range(0, MAX_VISIBILITY_TIMEOUT),
        "KmsDataKeyReusePeriodSeconds" => range(60, 86_400),
        "KmsMasterKeyId" => Ok(value.to_string()),
        "SqsManagedSseEnabled" | "ContentBasedDeduplication" => boolean(),
        "FifoQueue" if creating => match boolean()?.as_str() {
            "true" if fifo => Ok("true".into()),
            // SQS refuses FifoQueue=false explicitly as well as a mismatch with the name.
            _ => Err(bad()),
        },
        "FifoQueue" => Err(QueueError::InvalidAttributeName(
            "Attribute FifoQueue cannot be changed.".into(),
        )),
        "DeduplicationScope" => match value {
            "messageGroup" | "queue" => Ok(value.to_string()),
            _ => Err(bad()),
        },
        "FifoThroughputLimit" => match value {
            "perQueue" | "perMessageGroupId" => Ok(value.to_string()),
            _ => Err(bad()),
        },
        "Policy" => {
            // Stored as given once it parses as a resource policy: it is enforced.
            if value.is_empty()
                || spillway_identity::resource_policy::ResourcePolicy::parse(value).is_ok()
            {
                Ok(value.to_string())
            } else {
                Err(QueueError::InvalidAttributeValue(
                    "Invalid value for the parameter Policy.".into(),
                ))
            }
        }
        "RedrivePolicy" => {
            if value.is_empty() {
                Ok(String::new())
            } else {
                RedrivePolicy::parse(value).map(|p| p.to_json())
            }
        }
        "RedriveAllowPolicy" => {
            if value.is_empty() {
                Ok(String::new())
            } else {
                RedriveAllowPolicy::parse(value).map(|_| value.to_string())
            }
        }
        _ => Err(unknown()),
    }
}

/// The typed view of a queue's attributes, defaults applied.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    pub fifo: bool,
    pub delay_seconds: u32,
    pub maximum_message_size: u32,
    pub message_retention_period: u32,
    pub receive_message_wait_time_seconds: u32,
    pub visibility_timeout: u32,
    pub content_based_deduplication: bool,
    /// DeduplicationScope = messageGroup.
    pub dedup_per_group: bool,
    pub redrive_policy: Option<RedrivePolicy>,
    pub redrive_allow_policy: Option<RedriveAllowPolicy>,
}

impl QueueConfig {
    /// Reads normalized attributes (as [`normalize`] made them); unreadable values fall back
    /// to defaults rather than failing, since they were checked when set.
    pub fn from_attributes(fifo: bool, attributes: &BTreeMap<String, String>) -> Self {
        let number = |name: &str, default: u32| {
            attributes
                .get(name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let text = |name: &str| attributes.get(name).filter(|v| !v.is_empty());
        QueueConfig {
            fifo,
            delay_seconds: number("DelaySeconds", 0),
            maximum_message_size: number("MaximumMessageSize", DEFAULT_MAXIMUM_MESSAGE_SIZE),
            message_retention_period: number("MessageRetentionPeriod", DEFAULT_RETENTION),
            receive_message_wait_time_seconds: number("ReceiveMessageWaitTimeSeconds", 0),
            visibility_timeout: number("VisibilityTimeout", DEFAULT_VISIBILITY_TIMEOUT),
            content_based_deduplication: text("ContentBasedDeduplication")
                .is_some_and(|v| v == "true"),
            dedup_per_group: text("DeduplicationScope").is_some_and(|v| v == "messageGroup"),
            redrive_policy: text("RedrivePolicy").and_then(|v| RedrivePolicy::parse(v).ok()),
            redrive_allow_policy: text("RedriveAllowPolicy")
                .and_then(|v| RedriveAllowPolicy::parse(v).ok()),
        }
    }
}

/// The value GetQueueAttributes answers for a stored (non-counter) attribute, with AWS's
/// defaults; None for attributes a queue of this kind does not have or that are unset.
pub fn effective(name: &str, fifo: bool, attributes: &BTreeMap<String, String>) -> Option<String> {
    if let Some(value) = attributes.get(name).filter(|v| !v.is_empty()) {
        return Some(value.clone());
    }
    let kms = attributes
        .get("KmsMasterKeyId")
        .is_some_and(|v| !v.is_empty());
    let default = match name {
        "DelaySeconds" => "0",
        "MaximumMessageSize" => "262144",
        "MessageRetentionPeriod" => "345600",
        "ReceiveMessageWaitTimeSeconds" => "0",
        "VisibilityTimeout" => "30",
        // New queues get SSE-SQS unless they use a KMS key.
        "SqsManagedSseEnabled" => {
            if kms {
                "false"
            } else {
                "true"
            }
        }
        "KmsDataKeyReusePeriodSeconds" if kms => "300",
        "FifoQueue" if fifo => "true",
        "ContentBasedDeduplication" if fifo => "false",
        "DeduplicationScope" if fifo => "queue",
        "FifoThroughputLimit" if fifo => "perQueue",
        _ => return None,
    };
    Some(default.to_string())
}

/// Cross-attribute rules of a whole set of attributes.
pub fn check_combination(
    fifo: bool,
    attributes: &BTreeMap<String, String>,
) -> Result<(), QueueError> {
    if fifo
        && effective("FifoThroughputLimit", fifo, attributes).as_deref()
            == Some("perMessageGroupId")
        && effective("DeduplicationScope", fifo, attributes).as_deref() != Some("messageGroup")
    {
        return Err(QueueError::InvalidAttributeValue(
            "Invalid value for the parameter FifoThroughputLimit. Reason: perMessageGroupId is allowed only when the value for DeduplicationScope is messageGroup.".into(),
        ));
    }
    Ok(())
}

/// The attributes a GetQueueAttributes asks for, in AWS's names, each once however often it
/// is named (a list of a million "All" must not make a million copies); `All` means every one.
pub fn wanted(attribute_names: &[String]) -> Result<Vec<&'static str>, QueueError> {
    let mut wanted: Vec<&'static str> = Vec::new();
    for name in attribute_names {
        let names: &[&'static str] = if name == "All" {
            READABLE
        } else if let Some(known) = READABLE.iter().find(|r| **r == name.as_str()) {
            std::slice::from_ref(known)
        } else {
            return Err(QueueError::InvalidAttributeName(format!(
                "Unknown Attribute {name}."
            )));
        };
        for n in names {
            if !wanted.contains(n) {
                wanted.push(n);
            }
        }
    }
    Ok(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            normalize("DelaySeconds", "900", false, true)
                .ok()
                .as_deref(),
            Some("900")
        );
        assert!(matches!(
            normalize("DelaySeconds", "901", false, true),
            Err(QueueError::InvalidAttributeValue(_))
        ));
        assert!(normalize("VisibilityTimeout", "43201", false, false).is_err());
        assert!(normalize("MaximumMessageSize", "1023", false, false).is_err());
        assert!(normalize("MessageRetentionPeriod", "59", false, false).is_err());
        assert!(normalize("ReceiveMessageWaitTimeSeconds", "21", false, false).is_err());
        assert!(normalize("VisibilityTimeout", "abc", false, false).is_err());
    }

    #[test]
    fn names() {
        assert!(matches!(
            normalize("Nope", "1", false, true),
            Err(QueueError::InvalidAttributeName(_))
        ));
        assert!(matches!(
            normalize("ContentBasedDeduplication", "true", false, true),
            Err(QueueError::InvalidAttributeName(_))
        ));
        assert!(
            normalize("ContentBasedDeduplication", "TRUE", true, true).is_ok_and(|v| v == "true")
        );
        assert!(normalize("FifoQueue", "true", true, true).is_ok());
        assert!(normalize("FifoQueue", "true", false, true).is_err());
        assert!(normalize("FifoQueue", "true", true, false).is_err());
    }

    #[test]
    fn defaults() {
        let none = BTreeMap::new();
        assert_eq!(
            effective("VisibilityTimeout", false, &none).as_deref(),
            Some("30")
        );
        assert_eq!(effective("FifoQueue", false, &none), None);
        assert_eq!(
            effective("SqsManagedSseEnabled", false, &none).as_deref(),
            Some("true")
        );
        let config = QueueConfig::from_attributes(false, &none);
        assert_eq!(config.maximum_message_size, 262_144);
        assert_eq!(config.message_retention_period, 345_600);
    }

    #[test]
    fn throughput_limit_needs_group_scope() {
        let attrs: BTreeMap<String, String> = [(
            "FifoThroughputLimit".to_string(),
            "perMessageGroupId".to_string(),
        )]
        .into();
        assert!(check_combination(true, &attrs).is_err());
        let mut ok = attrs.clone();
        ok.insert("DeduplicationScope".into(), "messageGroup".into());
        assert!(check_combination(true, &ok).is_ok());
    }
}
