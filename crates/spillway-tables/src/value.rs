//! Attribute values and items, read from and written to DynamoDB's JSON (`{"S": "x"}`,
//! `{"N": "1"}`, `{"B": "<base64>"}`, ...) with DynamoDB's validation messages, and stored in a
//! compact binary form (postcard) that keeps binary values as raw bytes.
//!
//! Sets are kept sorted and without duplicates (DynamoDB gives no order for set members, so a
//! canonical order makes equal sets equal); string sets by UTF-8 bytes, number sets
//! numerically, binary sets bytewise, as DynamoDB orders those types.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::number::Number;

/// An item: attribute names to values.
pub type Item = BTreeMap<String, AttributeValue>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AttributeValue {
    S(String),
    N(Number),
    B(#[serde(with = "raw_bytes")] Vec<u8>),
    Bool(bool),
    Null,
    M(Item),
    L(Vec<AttributeValue>),
    Ss(Vec<String>),
    Ns(Vec<Number>),
    Bs(#[serde(with = "raw_byte_lists")] Vec<Vec<u8>>),
}

/// Why a value a client sent is refused, with the exception DynamoDB answers it with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// `ValidationException`.
    #[error("{0}")]
    Validation(String),
    /// `SerializationException`: the JSON does not have the shape the protocol defines.
    #[error("{0}")]
    Serialization(String),
}

impl ValueError {
    fn invalid(why: impl Into<String>) -> ValueError {
        ValueError::Validation(format!(
            "One or more parameter values were invalid: {}",
            why.into()
        ))
    }
}

/// The type descriptors DynamoDB uses in JSON and in `attribute_type()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    S,
    N,
    B,
    Bool,
    Null,
    M,
    L,
    Ss,
    Ns,
    Bs,
}

impl ValueType {
    pub fn descriptor(self) -> &'static str {
        match self {
            ValueType::S => "S",
            ValueType::N => "N",
            ValueType::B => "B",
            ValueType::Bool => "BOOL",
            ValueType::Null => "NULL",
            ValueType::M => "M",
            ValueType::L => "L",
            ValueType::Ss => "SS",
            ValueType::Ns => "NS",
            ValueType::Bs => "BS",
        }
    }

    pub fn from_descriptor(s: &str) -> Option<ValueType> {
        Some(match s {
            "S" => ValueType::S,
            "N" => ValueType::N,
            "B" => ValueType::B,
            "BOOL" => ValueType::Bool,
            "NULL" => ValueType::Null,
            "M" => ValueType::M,
            "L" => ValueType::L,
            "SS" => ValueType::Ss,
            "NS" => ValueType::Ns,
            "BS" => ValueType::Bs,
            _ => return None,
        })
    }
}

impl AttributeValue {
    pub fn value_type(&self) -> ValueType {
        match self {
            AttributeValue::S(_) => ValueType::S,
            AttributeValue::N(_) => ValueType::N,
            AttributeValue::B(_) => ValueType::B,
            AttributeValue::Bool(_) => ValueType::Bool,
            AttributeValue::Null => ValueType::Null,
            AttributeValue::M(_) => ValueType::M,
            AttributeValue::L(_) => ValueType::L,
            AttributeValue::Ss(_) => ValueType::Ss,
            AttributeValue::Ns(_) => ValueType::Ns,
            AttributeValue::Bs(_) => ValueType::Bs,
        }
    }

    /// Orders two values the way DynamoDB's comparators do: only scalars of the same type
    /// (S and B bytewise, N numerically) compare; anything else is `None` (the comparison is
    /// false, not an error).
    pub fn compare(&self, other: &AttributeValue) -> Option<Ordering> {
        match (self, other) {
            (AttributeValue::S(a), AttributeValue::S(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (AttributeValue::N(a), AttributeValue::N(b)) => Some(a.cmp(b)),
            (AttributeValue::B(a), AttributeValue::B(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// The bytes DynamoDB counts for this value (without the attribute name): strings and
    /// binaries by length, numbers by significant digits, 1 for BOOL and NULL, 3 plus one per
    /// element for lists and maps (plus the names of a map's members).
    pub fn size(&self) -> usize {
        match self {
            AttributeValue::S(s) => s.len(),
            AttributeValue::N(n) => n.stored_size(),
            AttributeValue::B(b) => b.len(),
            AttributeValue::Bool(_) | AttributeValue::Null => 1,
            AttributeValue::M(m) => {
                3 + m.iter().map(|(k, v)| k.len() + v.size() + 1).sum::<usize>()
            }
            AttributeValue::L(l) => 3 + l.iter().map(|v| v.size() + 1).sum::<usize>(),
            AttributeValue::Ss(s) => s.iter().map(String::len).sum(),
            AttributeValue::Ns(n) => n.iter().map(Number::stored_size).sum(),
            AttributeValue::Bs(b) => b.iter().map(Vec::len).sum(),
        }
    }

    /// Reads one value from DynamoDB JSON.
    pub fn from_json(v: &Value) -> Result<AttributeValue, ValueError> {
        let Value::Object(m) = v else {
            return Err(ValueError::Serialization(format!(
                "Unexpected value type in payload: expected an AttributeValue object, found {}",
                json_kind(v)
            )));
        };
        let mut found: Option<(&str, &Value)> = None;
        for (k, val) in m {
            if ValueType::from_descriptor(k).is_none() || val.is_null() {
                continue;
            }
            if found.is_some() {
                return Err(ValueError::Validation(
                    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes".into(),
                ));
            }
            found = Some((k.as_str(), val));
        }
        let Some((descriptor, val)) = found else {
            return Err(ValueError::Validation(
                "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes".into(),
            ));
        };
        Ok(match descriptor {
            "S" => AttributeValue::S(string(val, "String")?),
            "N" => AttributeValue::N(number(&string(val, "Number")?)?),
            "B" => AttributeValue::B(binary(val)?),
            "BOOL" => AttributeValue::Bool(boolean(val)?),
            "NULL" => {
                if !boolean(val)? {
                    return Err(ValueError::invalid(
                        "Null attribute value types must have the value of true",
                    ));
                }
                AttributeValue::Null
            }
            "M" => AttributeValue::M(item_from_json(val)?),
            "L" => {
                let Value::Array(items) = val else {
                    return Err(shape(val, "List"));
                };
                AttributeValue::L(
                    items
                        .iter()
                        .map(AttributeValue::from_json)
                        .collect::<Result<_, _>>()?,
                )
            }
            "SS" => {
                let members = array(val)?
                    .iter()
                    .map(|m| string(m, "String"))
                    .collect::<Result<Vec<_>, _>>()?;
                if members.is_empty() {
                    return Err(ValueError::invalid("An string set  may not be empty"));
                }
                AttributeValue::Ss(dedup_sorted(
                    members,
                    |a, b| a.as_bytes().cmp(b.as_bytes()),
                    |m| format!("[{}]", m.join(", ")),
                )?)
            }
            "NS" => {
                let members = array(val)?
                    .iter()
                    .map(|m| number(&string(m, "Number")?))
                    .collect::<Result<Vec<_>, _>>()?;
                if members.is_empty() {
                    return Err(ValueError::invalid("An number set  may not be empty"));
                }
                AttributeValue::Ns(dedup_sorted(members, Ord::cmp, |_| String::new())?)
            }
            "BS" => {
                let members = array(val)?
                    .iter()
                    .map(binary)
                    .collect::<Result<Vec<_>, _>>()?;
                if members.is_empty() {
                    return Err(ValueError::invalid("Binary sets should not be empty"));
                }
                AttributeValue::Bs(dedup_sorted(members, Ord::cmp, |_| String::new())?)
            }
            _ => unreachable!("descriptor checked above"),
        })
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::with_capacity(1);
        let (k, v) = match self {
            AttributeValue::S(s) => ("S", Value::String(s.clone())),
            AttributeValue::N(n) => ("N", Value::String(n.to_string())),
            AttributeValue::B(b) => ("B", Value::String(BASE64.encode(b))),
            AttributeValue::Bool(b) => ("BOOL", Value::Bool(*b)),
            AttributeValue::Null => ("NULL", Value::Bool(true)),
            AttributeValue::M(item) => ("M", item_to_json(item)),
            AttributeValue::L(l) => (
                "L",
                Value::Array(l.iter().map(AttributeValue::to_json).collect()),
            ),
            AttributeValue::Ss(s) => (
                "SS",
                Value::Array(s.iter().cloned().map(Value::String).collect()),
            ),
            AttributeValue::Ns(n) => (
                "NS",
                Value::Array(n.iter().map(|x| Value::String(x.to_string())).collect()),
            ),
            AttributeValue::Bs(b) => (
                "BS",
                Value::Array(b.iter().map(|x| Value::String(BASE64.encode(x))).collect()),
            ),
        };
        m.insert(k.to_owned(), v);
        Value::Object(m)
    }
}

/// Reads an item (a map of attribute values) from DynamoDB JSON.
pub fn item_from_json(v: &Value) -> Result<Item, ValueError> {
    let Value::Object(m) = v else {
        return Err(shape(v, "Map"));
    };
    m.iter()
        .map(|(k, v)| Ok((k.clone(), AttributeValue::from_json(v)?)))
        .collect()
}

pub fn item_to_json(item: &Item) -> Value {
    Value::Object(item.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

/// Appends an item as DynamoDB JSON text, the same as `item_to_json(item).to_string()`
/// without building the JSON tree first: Query and Scan pages of hundreds of items spent most
/// of their time allocating that tree (docs/BENCHMARKS.md, "Tables").
pub fn write_item_json(item: &Item, out: &mut String) {
    out.push('{');
    for (i, (k, v)) in item.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(k, out);
        out.push(':');
        write_value_json(v, out);
    }
    out.push('}');
}

fn write_value_json(v: &AttributeValue, out: &mut String) {
    use std::fmt::Write as _;
    let list = |out: &mut String, n: usize, each: &mut dyn FnMut(usize, &mut String)| {
        out.push('[');
        for i in 0..n {
            if i > 0 {
                out.push(',');
            }
            each(i, out);
        }
        out.push(']');
    };
    match v {
        AttributeValue::S(s) => {
            out.push_str("{\"S\":");
            write_json_str(s, out);
        }
        AttributeValue::N(n) => {
            let _ = write!(out, "{{\"N\":\"{n}\"");
        }
        AttributeValue::B(b) => {
            out.push_str("{\"B\":\"");
            BASE64.encode_string(b, out);
            out.push('"');
        }
        AttributeValue::Bool(b) => {
            out.push_str(if *b {
                "{\"BOOL\":true"
            } else {
                "{\"BOOL\":false"
            });
        }
        AttributeValue::Null => out.push_str("{\"NULL\":true"),
        AttributeValue::M(m) => {
            out.push_str("{\"M\":");
            write_item_json(m, out);
        }
        AttributeValue::L(l) => {
            out.push_str("{\"L\":");
            list(out, l.len(), &mut |i, out| write_value_json(&l[i], out));
        }
        AttributeValue::Ss(s) => {
            out.push_str("{\"SS\":");
            list(out, s.len(), &mut |i, out| write_json_str(&s[i], out));
        }
        AttributeValue::Ns(n) => {
            out.push_str("{\"NS\":");
            list(out, n.len(), &mut |i, out| {
                let _ = write!(out, "\"{}\"", n[i]);
            });
        }
        AttributeValue::Bs(b) => {
            out.push_str("{\"BS\":");
            list(out, b.len(), &mut |i, out| {
                out.push('"');
                BASE64.encode_string(&b[i], out);
                out.push('"');
            });
        }
    }
    out.push('}');
}

/// A JSON string literal: quotes, backslashes and control characters escaped, the rest copied.
pub fn write_json_str(s: &str, out: &mut String) {
    use std::fmt::Write as _;
    out.push('"');
    // Most names and values need no escape: one scan, one copy.
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(s);
        out.push('"');
        return;
    }
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// The bytes DynamoDB counts for an item: each attribute's name plus its value.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size()).sum()
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The SerializationException DynamoDB's JSON layer answers for a member of the wrong type.
pub(crate) fn shape(v: &Value, expected: &str) -> ValueError {
    let found = match v {
        Value::Null => "NULL_VALUE",
        Value::Bool(_) => "BOOLEAN_VALUE",
        Value::Number(_) => "NUMBER_VALUE",
        Value::String(_) => "STRING_VALUE",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    };
    ValueError::Serialization(format!("{found} cannot be converted to {expected}"))
}

fn string(v: &Value, expected: &str) -> Result<String, ValueError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        // The JSON layer accepts numbers and booleans where strings are expected and reads
        // their text, as DynamoDB's does.
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(shape(other, expected)),
    }
}

fn number(text: &str) -> Result<Number, ValueError> {
    Number::parse(text).map_err(|e| ValueError::Validation(e.to_string()))
}

fn boolean(v: &Value) -> Result<bool, ValueError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        other => Err(shape(other, "Boolean")),
    }
}

fn binary(v: &Value) -> Result<Vec<u8>, ValueError> {
    let Value::String(s) = v else {
        return Err(shape(v, "Blob"));
    };
    BASE64.decode(s.as_bytes()).map_err(|_| {
        ValueError::Serialization(
            "Base64 encoded length is expected a multiple of 4 bytes but found: ".to_owned()
                + &s.len().to_string(),
        )
    })
}

fn array(v: &Value) -> Result<&Vec<Value>, ValueError> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(shape(other, "List")),
    }
}

/// Sorts set members and refuses duplicates with DynamoDB's message.
fn dedup_sorted<T: Clone>(
    mut members: Vec<T>,
    cmp: impl Fn(&T, &T) -> Ordering,
    show: impl Fn(&[T]) -> String,
) -> Result<Vec<T>, ValueError> {
    let original = members.clone();
    members.sort_by(&cmp);
    if members
        .windows(2)
        .any(|w| cmp(&w[0], &w[1]) == Ordering::Equal)
    {
        let listed = show(&original);
        return Err(ValueError::invalid(if listed.is_empty() {
            "Input collection contains duplicates.".to_owned()
        } else {
            format!("Input collection {listed} contains duplicates.")
        }));
    }
    Ok(members)
}

/// Binary values as postcard byte strings (one length, then the bytes), not sequences of
/// varints.
mod raw_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(super::ByteBuf::deserialize(d)?.0)
    }
}

mod raw_byte_lists {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(list: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(list.len()))?;
        for b in list {
            seq.serialize_element(&super::ByteRef(b))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Ok(Vec::<super::ByteBuf>::deserialize(d)?
            .into_iter()
            .map(|b| b.0)
            .collect())
    }
}

struct ByteRef<'a>(&'a [u8]);

impl Serialize for ByteRef<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

struct ByteBuf(Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<ByteBuf, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = a.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(ByteBuf(out))
            }
        }
        d.deserialize_bytes(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trip() {
        let v = json!({"M": {"a": {"S": "x"}, "b": {"N": "1.50"}, "c": {"B": "AAE="},
            "d": {"BOOL": true}, "e": {"NULL": true}, "f": {"L": [{"S": "y"}]},
            "g": {"SS": ["b", "a"]}, "h": {"NS": ["10", "9"]}, "i": {"BS": ["AQ==", "AA=="]}}});
        let parsed = AttributeValue::from_json(&v).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            parsed.to_json(),
            json!({"M": {"a": {"S": "x"}, "b": {"N": "1.5"}, "c": {"B": "AAE="},
                "d": {"BOOL": true}, "e": {"NULL": true}, "f": {"L": [{"S": "y"}]},
                "g": {"SS": ["a", "b"]}, "h": {"NS": ["9", "10"]}, "i": {"BS": ["AA==", "AQ=="]}}})
        );
        let stored = postcard::to_allocvec(&parsed).unwrap_or_default();
        let back: AttributeValue = postcard::from_bytes(&stored).unwrap_or(AttributeValue::Null);
        assert_eq!(back, parsed);
    }

    #[test]
    fn written_json_is_the_json_trees_text() {
        let v = json!({"a": {"S": "q\"uote\\ \n\u{1} é"}, "b": {"N": "-1.5"}, "c": {"B": "AAE="},
            "d": {"BOOL": false}, "e": {"NULL": true}, "f": {"L": [{"S": "y"}, {"M": {}}]},
            "g": {"SS": ["a", "b"]}, "h": {"NS": ["9", "10"]}, "i": {"BS": ["AA==", "AQ=="]}, "j": {"L": []}});
        let item = item_from_json(&v).unwrap_or_else(|e| panic!("{e}"));
        let mut text = String::new();
        write_item_json(&item, &mut text);
        assert_eq!(text, item_to_json(&item).to_string());
        let back: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(item_from_json(&back).ok(), Some(item));
    }

    #[test]
    fn refusals_use_dynamodbs_words() {
        let err = |v: Value| AttributeValue::from_json(&v).err().map(|e| e.to_string());
        assert_eq!(
            err(json!({})).as_deref(),
            Some(
                "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
            )
        );
        assert_eq!(
            err(json!({"S": "a", "N": "1"})).as_deref(),
            Some(
                "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
            )
        );
        assert_eq!(
            err(json!({"SS": []})).as_deref(),
            Some("One or more parameter values were invalid: An string set  may not be empty")
        );
        assert_eq!(
            err(json!({"SS": ["a", "a"]})).as_deref(),
            Some(
                "One or more parameter values were invalid: Input collection [a, a] contains duplicates."
            )
        );
        assert_eq!(
            err(json!({"NS": ["1", "1.0"]})).as_deref(),
            Some(
                "One or more parameter values were invalid: Input collection contains duplicates."
            )
        );
        assert_eq!(
            err(json!({"N": "x"})).as_deref(),
            Some("The parameter cannot be converted to a numeric value: x")
        );
        assert!(matches!(
            AttributeValue::from_json(&json!({"L": 5})),
            Err(ValueError::Serialization(_))
        ));
    }

    #[test]
    fn sizes_follow_dynamodbs_rules() {
        let item: Item = [
            ("name".to_owned(), AttributeValue::S("abc".into())),
            (
                "n".to_owned(),
                AttributeValue::N(Number::parse("123").unwrap_or_else(|_| Number::zero())),
            ),
            (
                "l".to_owned(),
                AttributeValue::L(vec![AttributeValue::Bool(true)]),
            ),
        ]
        .into_iter()
        .collect();
        // name(4)+3, n(1)+3, l(1)+3+(1+1)
        assert_eq!(item_size(&item), 7 + 4 + 6);
    }
}
