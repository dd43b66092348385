//! Input checks with SQS's rules and SQS's errors: queue names, bodies, message attributes,
//! batch entry ids, and message size as SQS counts it.

use std::collections::HashSet;

use crate::error::QueueError;
use crate::model::{MessageAttributeValue, MessageAttributes};

pub const MAX_QUEUE_NAME: usize = 80;
pub const MAX_BATCH_ENTRIES: usize = 10;
/// Total payload of a SendMessageBatch, whatever the queue's MaximumMessageSize.
pub const MAX_BATCH_BYTES: usize = 262_144;
const MAX_ATTRIBUTES: usize = 10;
const MAX_ATTRIBUTE_NAME: usize = 256;
const MAX_DATA_TYPE: usize = 256;
const MAX_BATCH_ENTRY_ID: usize = 80;

/// 1-80 characters of `[A-Za-z0-9_-]`, with `.fifo` at the end exactly when `fifo`.
pub fn queue_name(name: &str, fifo: bool) -> Result<(), QueueError> {
    let stem = if fifo {
        name.strip_suffix(".fifo").ok_or_else(|| {
            QueueError::InvalidParameterValue(
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.".into(),
            )
        })?
    } else {
        name
    };
    let valid = !stem.is_empty()
        && name.len() <= MAX_QUEUE_NAME
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(QueueError::InvalidParameterValue(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
                .into(),
        ))
    }
}

/// The characters SQS accepts in bodies and string attribute values:
/// `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`.
pub fn allowed_char(c: char) -> bool {
    matches!(c as u32, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

pub fn message_body(body: &str) -> Result<(), QueueError> {
    if body.is_empty() {
        return Err(QueueError::MissingParameter("MessageBody"));
    }
    if body.chars().all(allowed_char) {
        Ok(())
    } else {
        Err(QueueError::InvalidMessageContents(
            "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF".into(),
        ))
    }
}

/// Checks user message attributes (`system` = false) or message system attributes.
pub fn message_attributes(attributes: &MessageAttributes, system: bool) -> Result<(), QueueError> {
    let kind = if system { "system" } else { "user" };
    if system {
        if let Some(name) = attributes.keys().find(|n| n.as_str() != "AWSTraceHeader") {
            return Err(QueueError::InvalidParameterValue(format!(
                "Message system attribute name '{name}' is invalid."
            )));
        }
    } else if attributes.len() > MAX_ATTRIBUTES {
        return Err(QueueError::InvalidParameterValue(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [{MAX_ATTRIBUTES}].",
            attributes.len()
        )));
    }
    for (name, value) in attributes {
        if !system {
            attribute_name(name)?;
        }
        attribute_value(name, value, kind)?;
        // AWS does not count system attributes against the message size; uncapped, one would
        // carry megabytes past every limit. spillway's own cap, far above any X-Ray header.
        let len = value.string_value.as_ref().map_or(0, String::len)
            + value.binary_value.as_ref().map_or(0, Vec::len);
        if system && len > MAX_TRACE_HEADER {
            return Err(QueueError::InvalidParameterValue(format!(
                "Message system attribute '{name}' is longer than {MAX_TRACE_HEADER} bytes."
            )));
        }
    }
    Ok(())
}

/// The longest `AWSTraceHeader` accepted (spillway's limit; X-Ray headers are under 300 bytes).
pub const MAX_TRACE_HEADER: usize = 16 * 1024;

fn attribute_name(name: &str) -> Result<(), QueueError> {
    let lower = name.to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= MAX_ATTRIBUTE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.");
    if valid {
        Ok(())
    } else {
        Err(QueueError::InvalidParameterValue(format!(
            "Message (user) attribute name '{name}' is invalid."
        )))
    }
}

fn attribute_value(
    name: &str,
    value: &MessageAttributeValue,
    kind: &str,
) -> Result<(), QueueError> {
    let data_type = value.data_type.as_str();
    let (base, label) = match data_type.split_once('.') {
        Some((base, label)) => (base, Some(label)),
        None => (data_type, None),
    };
    let label_ok = label.is_none_or(|l| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    });
    if data_type.is_empty() {
        return Err(QueueError::InvalidParameterValue(format!(
            "The message ({kind}) attribute '{name}' must contain a non-empty attribute type."
        )));
    }
    if !matches!(base, "String" | "Number" | "Binary")
        || !label_ok
        || data_type.len() > MAX_DATA_TYPE
    {
        return Err(QueueError::InvalidParameterValue(format!(
            "The type of message ({kind}) attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
        )));
    }
    if kind == "system" && base != "String" {
        return Err(QueueError::InvalidParameterValue(format!(
            "The type of message (system) attribute '{name}' is invalid. Only String is supported."
        )));
    }
    let empty = |type_name: &str| {
        QueueError::InvalidParameterValue(format!(
            "The message ({kind}) attribute '{name}' must contain a non-empty value of type '{type_name}'."
        ))
    };
    if base == "Binary" {
        match &value.binary_value {
            Some(bytes) if !bytes.is_empty() => Ok(()),
            _ => Err(empty("Binary")),
        }
    } else {
        let text = match value.string_value.as_deref() {
            Some(text) if !text.is_empty() => text,
            _ => return Err(empty(base)),
        };
        if !text.chars().all(allowed_char) {
            return Err(QueueError::InvalidParameterValue(format!(
                "Message ({kind}) attribute '{name}' contains invalid characters."
            )));
        }
        if base == "Number" && !is_sqs_number(text) {
            return Err(QueueError::InvalidParameterValue(format!(
                "Can't cast the value of message ({kind}) attribute '{name}' to a number."
            )));
        }
        Ok(())
    }
}

/// SQS numbers: an optional sign, digits with at most one decimal point, an optional exponent;
/// up to 38 significant digits (SQS's precision).
fn is_sqs_number(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let digits = e.strip_prefix(['-', '+']).unwrap_or(e);
        !digits.is_empty() && digits.len() <= 3 && digits.bytes().all(|b| b.is_ascii_digit())
    });
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = int.len() + frac.len();
    exponent_ok
        && digits > 0
        && int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
        && int
            .bytes()
            .chain(frac.bytes())
            .skip_while(|b| *b == b'0')
            .count()
            <= 38
}

/// The size SQS holds against MaximumMessageSize: body bytes plus, for every attribute, its
/// name, data type and value bytes.
pub fn message_size(body: &str, attributes: &MessageAttributes) -> usize {
    body.len()
        + attributes
            .iter()
            .map(|(name, value)| {
                name.len()
                    + value.data_type.len()
                    + value.string_value.as_ref().map_or(0, String::len)
                    + value.binary_value.as_ref().map_or(0, Vec::len)
            })
            .sum::<usize>()
}

/// Checks the ids of a batch: present, at most ten, each up to 80 of `[A-Za-z0-9_-]`, distinct.
pub fn batch_ids<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> Result<(), QueueError> {
    if ids.len() == 0 {
        return Err(QueueError::EmptyBatchRequest);
    }
    if ids.len() > MAX_BATCH_ENTRIES {
        return Err(QueueError::TooManyEntriesInBatchRequest(ids.len()));
    }
    let mut seen = HashSet::new();
    for id in ids {
        let valid = !id.is_empty()
            && id.len() <= MAX_BATCH_ENTRY_ID
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(QueueError::InvalidBatchEntryId);
        }
        if !seen.insert(id) {
            return Err(QueueError::BatchEntryIdsNotDistinct(id.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names() {
        assert!(queue_name("orders", false).is_ok());
        assert!(queue_name("a-b_C9", false).is_ok());
        assert!(queue_name(&"x".repeat(80), false).is_ok());
        assert!(queue_name(&"x".repeat(81), false).is_err());
        assert!(queue_name("", false).is_err());
        assert!(queue_name("has space", false).is_err());
        assert!(queue_name("orders.fifo", false).is_err());
        assert!(queue_name("orders.fifo", true).is_ok());
        assert!(queue_name(".fifo", true).is_err());
        assert!(queue_name("orders", true).is_err());
        assert!(queue_name(&format!("{}.fifo", "x".repeat(75)), true).is_ok());
        assert!(queue_name(&format!("{}.fifo", "x".repeat(76)), true).is_err());
    }

    #[test]
    fn body_characters() {
        assert!(message_body("tab\tnewline\ncr\r emoji 😀 \u{E000}").is_ok());
        for bad in [
            "\u{0}", "a\u{1}b", "\u{8}", "\u{B}", "\u{1F}", "\u{FFFE}", "\u{FFFF}",
        ] {
            let err = message_body(bad).err();
            assert!(
                matches!(err, Some(QueueError::InvalidMessageContents(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            message_body(""),
            Err(QueueError::MissingParameter("MessageBody"))
        ));
    }

    #[test]
    fn attribute_rules() {
        let one = |name: &str, value: MessageAttributeValue| {
            message_attributes(&[(name.to_string(), value)].into_iter().collect(), false)
        };
        assert!(one("ok.name-1_x", MessageAttributeValue::string("v")).is_ok());
        assert!(one("AWS.thing", MessageAttributeValue::string("v")).is_err());
        assert!(one("amazon.thing", MessageAttributeValue::string("v")).is_err());
        assert!(one(".lead", MessageAttributeValue::string("v")).is_err());
        assert!(one("trail.", MessageAttributeValue::string("v")).is_err());
        assert!(one("two..dots", MessageAttributeValue::string("v")).is_err());
        assert!(one("sp ace", MessageAttributeValue::string("v")).is_err());
        assert!(one("n", MessageAttributeValue::string("")).is_err());
        assert!(one("n", MessageAttributeValue::number("12.5")).is_ok());
        assert!(one("n", MessageAttributeValue::number("-1e10")).is_ok());
        assert!(one("n", MessageAttributeValue::number("abc")).is_err());
        assert!(one("n", MessageAttributeValue::number("9".repeat(39))).is_err());
        assert!(one("b", MessageAttributeValue::binary(vec![0, 1])).is_ok());
        assert!(one("b", MessageAttributeValue::binary(Vec::new())).is_err());
        let custom = MessageAttributeValue {
            data_type: "Number.java.lang.Long".into(),
            string_value: Some("5".into()),
            binary_value: None,
        };
        assert!(one("n", custom).is_ok());
        let wrong = MessageAttributeValue {
            data_type: "Integer".into(),
            string_value: Some("5".into()),
            binary_value: None,
        };
        assert!(one("n", wrong).is_err());
        let eleven: MessageAttributes = (0..11)
            .map(|i| (format!("a{i}"), MessageAttributeValue::string("v")))
            .collect();
        assert!(message_attributes(&eleven, false).is_err());
        let trace: MessageAttributes = [(
            "AWSTraceHeader".to_string(),
            MessageAttributeValue::string("Root=1"),
        )]
        .into();
        assert!(message_attributes(&trace, true).is_ok());
        let other: MessageAttributes =
            [("Other".to_string(), MessageAttributeValue::string("x"))].into();
        assert!(message_attributes(&other, true).is_err());
    }

    #[test]
    fn size_counts_names_types_and_values() {
        let attributes: MessageAttributes = [
            ("ab".to_string(), MessageAttributeValue::string("xyz")),
            (
                "b".to_string(),
                MessageAttributeValue::binary(vec![1, 2, 3, 4]),
            ),
        ]
        .into();
        assert_eq!(
            message_size("héllo", &attributes),
            6 + (2 + 6 + 3) + (1 + 6 + 4)
        );
    }

    #[test]
    fn batch_id_rules() {
        assert!(batch_ids(["a", "b-1", "C_2"].into_iter()).is_ok());
        assert!(matches!(
            batch_ids(std::iter::empty()),
            Err(QueueError::EmptyBatchRequest)
        ));
        let many: Vec<String> = (0..11).map(|i| i.to_string()).collect();
        assert!(matches!(
            batch_ids(many.iter().map(String::as_str)),
            Err(QueueError::TooManyEntriesInBatchRequest(11))
        ));
        assert!(matches!(
            batch_ids(["a", "a"].into_iter()),
            Err(QueueError::BatchEntryIdsNotDistinct(_))
        ));
        assert!(matches!(
            batch_ids(["a b"].into_iter()),
            Err(QueueError::InvalidBatchEntryId)
        ));
    }
}
