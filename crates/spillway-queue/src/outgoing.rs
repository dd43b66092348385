//! A message to send, checked as SQS checks it (body characters, attributes, size, delay,
//! FIFO group and deduplication ids) before either engine stores it.

use crate::error::QueueError;
use crate::fifo;
use crate::model::{MessageAttributes, SendMessageBatchRequestEntry};
use crate::queue_attributes::{MAX_DELAY_SECONDS, QueueConfig};
use crate::validate;

/// A checked message, ready to be given a sequence.
pub(crate) struct Outgoing {
    pub(crate) body: String,
    pub(crate) attributes: MessageAttributes,
    pub(crate) system_attributes: MessageAttributes,
    pub(crate) delay_seconds: u32,
    pub(crate) group_id: Option<String>,
    pub(crate) dedup_id: Option<String>,
    pub(crate) dedup_key: Option<String>,
}

/// MessageGroupId and MessageDeduplicationId: up to 128 alphanumeric or punctuation chars.
fn check_fifo_id(name: &'static str, value: &str) -> Result<(), QueueError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b.is_ascii_punctuation());
    if ok {
        Ok(())
    } else {
        Err(QueueError::invalid_parameter(
            name,
            value,
            &format!(
                "{name} can only include alphanumeric and punctuation characters. 1 to 128 in length."
            ),
        ))
    }
}

pub(crate) fn prepare(
    config: &QueueConfig,
    entry: SendMessageBatchRequestEntry,
) -> Result<Outgoing, QueueError> {
    validate::message_body(&entry.message_body)?;
    validate::message_attributes(&entry.message_attributes, false)?;
    validate::message_attributes(&entry.message_system_attributes, true)?;
    let size = validate::message_size(&entry.message_body, &entry.message_attributes);
    if size > config.maximum_message_size as usize {
        return Err(QueueError::InvalidParameterValue(format!(
            "One or more parameters are invalid. Reason: Message must be shorter than {} bytes.",
            config.maximum_message_size
        )));
    }
    if let Some(delay) = entry.delay_seconds {
        if delay > MAX_DELAY_SECONDS {
            return Err(QueueError::invalid_parameter(
                "DelaySeconds",
                delay,
                "DelaySeconds must be >= 0 and <= 900.",
            ));
        }
        if config.fifo {
            return Err(QueueError::invalid_parameter(
                "DelaySeconds",
                delay,
                "The request include parameter that is not valid for this queue type.",
            ));
        }
    }
    if let Some(group) = &entry.message_group_id {
        check_fifo_id("MessageGroupId", group)?;
    }
    let (dedup_id, dedup_key) = if config.fifo {
        let group = entry
            .message_group_id
            .as_deref()
            .ok_or(QueueError::MissingParameter("MessageGroupId"))?;
        let id = match entry.message_deduplication_id {
            Some(id) => {
                check_fifo_id("MessageDeduplicationId", &id)?;
                id
            }
            None if config.content_based_deduplication => {
                fifo::content_deduplication_id(&entry.message_body)
            }
            None => {
                return Err(QueueError::InvalidParameterValue(
                    "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly".into(),
                ));
            }
        };
        let key = fifo::dedup_key(config.dedup_per_group, Some(group), &id);
        (Some(id), Some(key))
    } else {
        if let Some(id) = &entry.message_deduplication_id {
            return Err(QueueError::invalid_parameter(
                "MessageDeduplicationId",
                id,
                "The request include parameter that is not valid for this queue type.",
            ));
        }
        (None, None)
    };
    Ok(Outgoing {
        delay_seconds: entry.delay_seconds.unwrap_or(config.delay_seconds),
        body: entry.message_body,
        attributes: entry.message_attributes,
        system_attributes: entry.message_system_attributes,
        group_id: entry.message_group_id,
        dedup_id,
        dedup_key,
    })
}
