//! Dead-letter queue policies: `RedrivePolicy` on a source queue and `RedriveAllowPolicy` on a
//! dead-letter queue, parsed from the JSON strings SQS stores them as.

use serde_json::Value;

use crate::error::QueueError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedrivePolicy {
    pub dead_letter_target_arn: String,
    /// 1-1000: a message received more times than this moves to the dead-letter queue.
    pub max_receive_count: u32,
}

fn invalid(attribute: &str, text: &str, reason: &str) -> QueueError {
    QueueError::InvalidParameterValue(format!(
        "Value {text} for parameter {attribute} is invalid. Reason: {reason}"
    ))
}

impl RedrivePolicy {
    pub fn parse(text: &str) -> Result<Self, QueueError> {
        let value: Value = serde_json::from_str(text).map_err(|_| {
            invalid(
                "RedrivePolicy",
                text,
                "Redrive policy is not a valid JSON map.",
            )
        })?;
        let arn = value
            .get("deadLetterTargetArn")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                invalid(
                    "RedrivePolicy",
                    text,
                    "Redrive policy does not contain mandatory attribute: deadLetterTargetArn.",
                )
            })?;
        // SDKs and the console send maxReceiveCount as a number or as a string.
        let count = match value.get("maxReceiveCount") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse::<u64>().ok(),
            _ => {
                return Err(invalid(
                    "RedrivePolicy",
                    text,
                    "Redrive policy does not contain mandatory attribute: maxReceiveCount.",
                ));
            }
        };
        let max_receive_count = count
            .filter(|c| (1..=1000).contains(c))
            .and_then(|c| u32::try_from(c).ok())
            .ok_or_else(|| {
                invalid(
                    "RedrivePolicy",
                    text,
                    "Invalid value for maxReceiveCount: must be between 1 and 1000.",
                )
            })?;
        if crate::arn::queue_name(arn).is_none() {
            return Err(invalid(
                "RedrivePolicy",
                text,
                "Invalid value for deadLetterTargetArn.",
            ));
        }
        Ok(RedrivePolicy {
            dead_letter_target_arn: arn.to_string(),
            max_receive_count,
        })
    }

    /// The JSON SQS answers in GetQueueAttributes (maxReceiveCount as a number).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "deadLetterTargetArn": self.dead_letter_target_arn,
            "maxReceiveCount": self.max_receive_count,
        })
        .to_string()
    }
}

/// Which source queues may use a queue as their dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedriveAllowPolicy {
    AllowAll,
    DenyAll,
    ByQueue(Vec<String>),
}

impl RedriveAllowPolicy {
    pub fn parse(text: &str) -> Result<Self, QueueError> {
        let bad = |reason: &str| invalid("RedriveAllowPolicy", text, reason);
        let value: Value = serde_json::from_str(text)
            .map_err(|_| bad("Redrive allow policy is not a valid JSON map."))?;
        let permission = value
            .get("redrivePermission")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                bad("Redrive allow policy does not contain mandatory attribute: redrivePermission.")
            })?;
        let sources: Option<Vec<String>> = match value.get("sourceQueueArns") {
            None => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad("sourceQueueArns must be a list of queue ARNs."))?,
            ),
            Some(_) => return Err(bad("sourceQueueArns must be a list of queue ARNs.")),
        };
        match (permission, sources) {
            ("allowAll", None) => Ok(RedriveAllowPolicy::AllowAll),
            ("denyAll", None) => Ok(RedriveAllowPolicy::DenyAll),
            ("byQueue", Some(arns)) if (1..=10).contains(&arns.len()) => {
                Ok(RedriveAllowPolicy::ByQueue(arns))
            }
            ("byQueue", _) => Err(bad(
                "sourceQueueArns must list 1 to 10 queue ARNs when redrivePermission is byQueue.",
            )),
            ("allowAll" | "denyAll", Some(_)) => Err(bad(
                "sourceQueueArns can be specified only when redrivePermission is byQueue.",
            )),
            _ => Err(bad(
                "redrivePermission must be one of allowAll, denyAll, byQueue.",
            )),
        }
    }

    pub fn allows(&self, source_arn: &str) -> bool {
        match self {
            RedriveAllowPolicy::AllowAll => true,
            RedriveAllowPolicy::DenyAll => false,
            RedriveAllowPolicy::ByQueue(arns) => arns.iter().any(|a| a == source_arn),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DLQ: &str = "arn:aws:sqs:us-east-1:000000000000:dlq";

    #[test]
    fn redrive_policy_accepts_numbers_and_strings() {
        for text in [
            format!(r#"{{"deadLetterTargetArn":"{DLQ}","maxReceiveCount":3}}"#),
            format!(r#"{{"deadLetterTargetArn":"{DLQ}","maxReceiveCount":"3"}}"#),
        ] {
            let policy = RedrivePolicy::parse(&text).ok();
            assert_eq!(policy.map(|p| p.max_receive_count), Some(3));
        }
    }

    #[test]
    fn redrive_policy_rejects_bad_counts_and_missing_fields() {
        for text in [
            format!(r#"{{"deadLetterTargetArn":"{DLQ}","maxReceiveCount":0}}"#),
            format!(r#"{{"deadLetterTargetArn":"{DLQ}","maxReceiveCount":1001}}"#),
            format!(r#"{{"deadLetterTargetArn":"{DLQ}"}}"#),
            r#"{"maxReceiveCount":3}"#.to_string(),
            r#"{"deadLetterTargetArn":"not-an-arn","maxReceiveCount":3}"#.to_string(),
            "nope".to_string(),
        ] {
            assert!(
                matches!(
                    RedrivePolicy::parse(&text),
                    Err(QueueError::InvalidParameterValue(_))
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn allow_policy() {
        let by = RedriveAllowPolicy::parse(&format!(
            r#"{{"redrivePermission":"byQueue","sourceQueueArns":["{DLQ}"]}}"#
        ));
        assert!(
            by.as_ref()
                .is_ok_and(|p| p.allows(DLQ) && !p.allows("arn:aws:sqs:us-east-1:000000000000:x"))
        );
        assert!(
            RedriveAllowPolicy::parse(r#"{"redrivePermission":"denyAll"}"#)
                .is_ok_and(|p| !p.allows(DLQ))
        );
        assert!(
            RedriveAllowPolicy::parse(r#"{"redrivePermission":"allowAll"}"#)
                .is_ok_and(|p| p.allows(DLQ))
        );
        assert!(RedriveAllowPolicy::parse(r#"{"redrivePermission":"byQueue"}"#).is_err());
        assert!(RedriveAllowPolicy::parse(r#"{"redrivePermission":"some"}"#).is_err());
    }
}
