//! Key schemas, key validation with DynamoDB's messages, and the order-preserving byte encoding
//! that makes a Query a range read.
//!
//! An item's storage key is `hash16 ‖ enc(partition value) ‖ enc(sort value)`. `hash16` (two
//! bytes of a fixed hash of the partition value) spreads partitions over the key space as
//! DynamoDB's partitioning does, so a parallel Scan's segments are key ranges and Scan order is
//! not the partition keys' order (DynamoDB promises none). Within a partition, items sort by
//! the sort key: strings and binaries bytewise, numbers numerically ([`Number::encode_ordered`]).
//! Every component is self-delimiting, so index keys can append the table's key for uniqueness.
//!
//! The encoding is a storage format: changing it means migrating every table.

use crate::number::Number;
use crate::value::{AttributeValue, Item};

/// Largest partition key value, in bytes.
pub const MAX_HASH_KEY_BYTES: usize = 2048;
/// Largest sort key value, in bytes.
pub const MAX_RANGE_KEY_BYTES: usize = 1024;

/// The scalar types a key attribute may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ScalarType {
    S,
    N,
    B,
}

impl ScalarType {
    pub fn descriptor(self) -> &'static str {
        match self {
            ScalarType::S => "S",
            ScalarType::N => "N",
            ScalarType::B => "B",
        }
    }

    pub fn from_descriptor(s: &str) -> Option<ScalarType> {
        match s {
            "S" => Some(ScalarType::S),
            "N" => Some(ScalarType::N),
            "B" => Some(ScalarType::B),
            _ => None,
        }
    }

    fn matches(self, v: &AttributeValue) -> bool {
        matches!(
            (self, v),
            (ScalarType::S, AttributeValue::S(_))
                | (ScalarType::N, AttributeValue::N(_))
                | (ScalarType::B, AttributeValue::B(_))
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyAttr {
    pub name: String,
    pub ty: ScalarType,
}

/// A table's or an index's key: a partition (hash) attribute and an optional sort (range) one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeySchema {
    pub hash: KeyAttr,
    pub range: Option<KeyAttr>,
}

/// Why a key (in an item or a `Key` parameter) is refused; the text is DynamoDB's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("One or more parameter values were invalid: Missing the key {0} in the item")]
    MissingInItem(String),
    #[error(
        "One or more parameter values were invalid: Type mismatch for key {name} expected: {expected} actual: {actual}"
    )]
    TypeMismatch {
        name: String,
        expected: &'static str,
        actual: &'static str,
    },
    /// A `Key` parameter without every key attribute, with others, or of the wrong type.
    #[error("The provided key element does not match the schema")]
    DoesNotMatchSchema,
    #[error(
        "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {kind} value. Key: {name}"
    )]
    Empty { kind: &'static str, name: String },
    #[error(
        "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes"
    )]
    HashTooLarge,
    #[error(
        "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
    )]
    RangeTooLarge,
}

/// One item's key values, checked against a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValues<'a> {
    pub hash: &'a AttributeValue,
    pub range: Option<&'a AttributeValue>,
}

impl KeySchema {
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.hash.name.as_str()).chain(self.range.as_ref().map(|r| r.name.as_str()))
    }

    pub fn is_key_attribute(&self, name: &str) -> bool {
        self.names().any(|n| n == name)
    }

    /// The key of an item being written (PutItem, a BatchWriteItem put): every key attribute
    /// present, of its type, not empty, within the size limits.
    pub fn of_item<'a>(&self, item: &'a Item) -> Result<KeyValues<'a>, KeyError> {
        let hash = key_value(item, &self.hash, true)?;
        let range = match &self.range {
            Some(r) => Some(key_value(item, r, true)?),
            None => None,
        };
        check_sizes(hash, range)?;
        Ok(KeyValues { hash, range })
    }

    /// A `Key` parameter (GetItem, DeleteItem, UpdateItem, ...): exactly the key attributes.
    pub fn of_key<'a>(&self, key: &'a Item) -> Result<KeyValues<'a>, KeyError> {
        if key.len() != 1 + usize::from(self.range.is_some()) {
            return Err(KeyError::DoesNotMatchSchema);
        }
        let hash = key_value(key, &self.hash, false)?;
        let range = match &self.range {
            Some(r) => Some(key_value(key, r, false)?),
            None => None,
        };
        check_sizes(hash, range)?;
        Ok(KeyValues { hash, range })
    }

    /// The key of an item for an index: `None` when the item lacks an index key attribute or
    /// has it with another type (the item is not in the index: indexes are sparse).
    pub fn of_indexed<'a>(&self, item: &'a Item) -> Option<KeyValues<'a>> {
        let get = |a: &KeyAttr| {
            item.get(&a.name)
                .filter(|v| a.ty.matches(v) && !is_empty(v))
        };
        let hash = get(&self.hash)?;
        let range = match &self.range {
            Some(r) => Some(get(r)?),
            None => None,
        };
        Some(KeyValues { hash, range })
    }

    /// The item holding only this schema's key attributes.
    pub fn key_item(&self, item: &Item) -> Item {
        self.names()
            .filter_map(|n| item.get(n).map(|v| (n.to_owned(), v.clone())))
            .collect()
    }
}

fn is_empty(v: &AttributeValue) -> bool {
    match v {
        AttributeValue::S(s) => s.is_empty(),
        AttributeValue::B(b) => b.is_empty(),
        _ => false,
    }
}

fn key_value<'a>(
    item: &'a Item,
    attr: &KeyAttr,
    in_item: bool,
) -> Result<&'a AttributeValue, KeyError> {
    let Some(v) = item.get(&attr.name) else {
        return Err(if in_item {
            KeyError::MissingInItem(attr.name.clone())
        } else {
            KeyError::DoesNotMatchSchema
        });
    };
    if !attr.ty.matches(v) {
        return Err(if in_item {
            KeyError::TypeMismatch {
                name: attr.name.clone(),
                expected: attr.ty.descriptor(),
                actual: v.value_type().descriptor(),
            }
        } else {
            KeyError::DoesNotMatchSchema
        });
    }
    if is_empty(v) {
        return Err(KeyError::Empty {
            kind: if attr.ty == ScalarType::S {
                "string"
            } else {
                "binary"
            },
            name: attr.name.clone(),
        });
    }
    Ok(v)
}

fn check_sizes(hash: &AttributeValue, range: Option<&AttributeValue>) -> Result<(), KeyError> {
    if hash.size() > MAX_HASH_KEY_BYTES {
        return Err(KeyError::HashTooLarge);
    }
    if range.is_some_and(|r| r.size() > MAX_RANGE_KEY_BYTES) {
        return Err(KeyError::RangeTooLarge);
    }
    Ok(())
}

/// Appends the self-delimiting, order-preserving encoding of a key value. Strings and binaries
/// escape 0x00 as 0x00 0xFF and end with 0x00 0x00, so a shorter value sorts first and no
/// encoding is a prefix of another's.
pub fn encode_component(v: &AttributeValue, out: &mut Vec<u8>) {
    match v {
        AttributeValue::S(s) => encode_bytes(s.as_bytes(), out, true),
        AttributeValue::B(b) => encode_bytes(b, out, true),
        AttributeValue::N(n) => n.encode_ordered(out),
        // Only scalar key values reach here (checked by the schema); anything else would be a
        // bug, and encoding it as nothing keeps the store consistent rather than panicking.
        _ => {}
    }
}

/// The escaped bytes of a string or binary without the terminator: the common start of the
/// encodings of every value beginning with `bytes` (`begins_with` key conditions).
pub fn encode_prefix(v: &AttributeValue, out: &mut Vec<u8>) {
    match v {
        AttributeValue::S(s) => encode_bytes(s.as_bytes(), out, false),
        AttributeValue::B(b) => encode_bytes(b, out, false),
        other => encode_component(other, out),
    }
}

fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>, terminate: bool) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    if terminate {
        out.extend_from_slice(&[0, 0]);
    }
}

/// Two bytes of FNV-1a over the partition value's encoding. Fixed forever: it is part of every
/// stored key.
pub fn hash16(partition: &[u8]) -> [u8; 2] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in partition {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let folded = (h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48)) as u16;
    folded.to_be_bytes()
}

/// The encoded start of a partition: `hash16 ‖ enc(partition value)`.
pub fn partition_prefix(hash: &AttributeValue) -> Vec<u8> {
    let mut enc = Vec::with_capacity(32);
    encode_component(hash, &mut enc);
    let mut out = Vec::with_capacity(enc.len() + 2);
    out.extend_from_slice(&hash16(&enc));
    out.extend_from_slice(&enc);
    out
}

/// The storage key of an item (or an index entry's leading part).
pub fn encode_key(k: &KeyValues<'_>) -> Vec<u8> {
    let mut out = partition_prefix(k.hash);
    if let Some(r) = k.range {
        encode_component(r, &mut out);
    }
    out
}

/// The smallest byte string greater than every string starting with `prefix` (`None` when
/// every byte is 0xFF: the range is open-ended).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A number-typed key value from text (tests and the TTL index).
pub fn number(text: &str) -> Option<AttributeValue> {
    Number::parse(text).ok().map(AttributeValue::N)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> KeySchema {
        KeySchema {
            hash: KeyAttr {
                name: "date".into(),
                ty: ScalarType::S,
            },
            range: Some(KeyAttr {
                name: "n".into(),
                ty: ScalarType::N,
            }),
        }
    }

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn validation_messages() {
        let s = schema();
        let no_range = item(&[("date", AttributeValue::S("d".into()))]);
        assert_eq!(
            s.of_item(&no_range).err().map(|e| e.to_string()).as_deref(),
            Some("One or more parameter values were invalid: Missing the key n in the item")
        );
        let wrong = item(&[
            ("date", AttributeValue::N(Number::zero())),
            ("n", AttributeValue::N(Number::zero())),
        ]);
        assert_eq!(
            s.of_item(&wrong).err().map(|e| e.to_string()).as_deref(),
            Some(
                "One or more parameter values were invalid: Type mismatch for key date expected: S actual: N"
            )
        );
        assert_eq!(s.of_key(&wrong), Err(KeyError::DoesNotMatchSchema));
        let empty = item(&[
            ("date", AttributeValue::S(String::new())),
            ("n", AttributeValue::N(Number::zero())),
        ]);
        assert_eq!(
            s.of_item(&empty).err().map(|e| e.to_string()).as_deref(),
            Some(
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: date"
            )
        );
        let extra = item(&[
            ("date", AttributeValue::S("d".into())),
            ("n", AttributeValue::N(Number::zero())),
            ("x", AttributeValue::Null),
        ]);
        assert_eq!(s.of_key(&extra), Err(KeyError::DoesNotMatchSchema));
        assert!(s.of_item(&extra).is_ok());
        let big = item(&[
            ("date", AttributeValue::S("x".repeat(2049))),
            ("n", AttributeValue::N(Number::zero())),
        ]);
        assert_eq!(s.of_item(&big), Err(KeyError::HashTooLarge));
    }

    #[test]
    fn sort_order_within_a_partition() {
        let s = schema();
        let keys: Vec<Vec<u8>> = ["-5", "0", "0.5", "2", "10", "100"]
            .iter()
            .map(|n| {
                let it = item(&[
                    ("date", AttributeValue::S("2024-01-01".into())),
                    ("n", number(n).unwrap_or(AttributeValue::Null)),
                ]);
                encode_key(&s.of_item(&it).unwrap_or_else(|e| panic!("{e}")))
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        let prefix = partition_prefix(&AttributeValue::S("2024-01-01".into()));
        assert!(keys.iter().all(|k| k.starts_with(&prefix)));
    }

    #[test]
    fn strings_with_zero_bytes_keep_order_and_prefixes() {
        let enc = |s: &str| {
            let mut o = Vec::new();
            encode_component(&AttributeValue::S(s.into()), &mut o);
            o
        };
        let mut words = vec!["a", "a\0", "a\0b", "ab", "b", ""];
        let mut by_bytes = words.clone();
        by_bytes.sort_by_key(|w| enc(w));
        words.sort();
        assert_eq!(by_bytes, words);
        let mut p = Vec::new();
        encode_prefix(&AttributeValue::S("a".into()), &mut p);
        assert!(
            enc("a\0b").starts_with(&p) && enc("ab").starts_with(&p) && !enc("b").starts_with(&p)
        );
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF]), None);
    }
}
