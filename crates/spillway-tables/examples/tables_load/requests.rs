//! The request bodies and the key layout shared by every mode. Item `i` of a loaded table is
//! in partition `i / per_partition` (pk `p00000042`) with sort key `s000`..: GetItem and Query
//! pick partitions and positions inside what `load` wrote. PutItem writes partitions of its
//! own (`w<worker>-<n>`), so the loaded partitions keep exactly `per_partition` items.

use bytes::Bytes;
use serde_json::{Value, json};

/// The payload attribute's length: a small item of about 250 bytes in all.
pub const PAYLOAD_BYTES: usize = 200;

pub fn partition_key(partition: u64) -> String {
    format!("p{partition:08}")
}

pub fn sort_key(position: u64) -> String {
    format!("s{position:03}")
}

pub fn item(pk: &str, sk: &str, n: u64) -> Value {
    json!({
        "pk": {"S": pk},
        "sk": {"S": sk},
        "n": {"N": n.to_string()},
        "payload": {"S": "x".repeat(PAYLOAD_BYTES)},
    })
}

fn bytes(v: &Value) -> Bytes {
    Bytes::from(v.to_string())
}

pub fn put(table: &str, pk: &str, sk: &str, n: u64) -> Bytes {
    bytes(&json!({"TableName": table, "Item": item(pk, sk, n)}))
}

pub fn get(table: &str, pk: &str, sk: &str) -> Bytes {
    bytes(&json!({"TableName": table, "Key": {"pk": {"S": pk}, "sk": {"S": sk}}}))
}

pub fn query(table: &str, pk: &str, limit: u64) -> Bytes {
    bytes(&json!({
        "TableName": table,
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": {"S": pk}},
        "Limit": limit,
    }))
}

/// A BatchWriteItem of put requests for `items` (at most 25, as DynamoDB allows).
pub fn batch_write(table: &str, items: &[Value]) -> Bytes {
    let puts: Vec<Value> = items
        .iter()
        .map(|i| json!({"PutRequest": {"Item": i}}))
        .collect();
    bytes(&json!({"RequestItems": {table: puts}}))
}

pub fn create_table(table: &str) -> Bytes {
    bytes(&json!({
        "TableName": table,
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }))
}

pub fn describe_table(table: &str) -> Bytes {
    bytes(&json!({"TableName": table}))
}

/// The `"Count":N` of a Query answer, found without parsing the whole answer (an answer of
/// 100 items is ~30 KB; parsing it would cost the generator more than sending it). The count
/// sits before or after the items, so both ends are looked at before the whole body.
pub fn count_in(body: &[u8]) -> Option<u64> {
    const END: usize = 256;
    let head = &body[..body.len().min(END)];
    let tail = &body[body.len().saturating_sub(END)..];
    count_in_part(head)
        .or_else(|| count_in_part(tail))
        .or_else(|| count_in_part(body))
}

fn count_in_part(part: &[u8]) -> Option<u64> {
    let needle = b"\"Count\":";
    let at = part.windows(needle.len()).position(|w| w == needle)? + needle.len();
    let digits: Vec<u8> = part[at..]
        .iter()
        .skip_while(|b| **b == b' ')
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    // Digits running to the end of a window may be cut off by it (JSON never ends in one).
    if at + digits.len() >= part.len() {
        return None;
    }
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// Whether a GetItem answer holds an item (`{}` when the key is absent).
pub fn has_item(body: &[u8]) -> bool {
    body.windows(7).any(|w| w == b"\"Item\":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_count_with_or_without_spaces() {
        assert_eq!(count_in(br#"{"Count":100,"Items":[]}"#), Some(100));
        assert_eq!(count_in(br#"{"Items": [], "Count": 7}"#), Some(7));
        assert_eq!(count_in(br#"{"Items":[]}"#), None);
        // A count cut by the head's window is read from the whole body.
        let mut long = vec![b' '; 246];
        long.extend_from_slice(br#""Count":100,"Items":[]}"#);
        assert_eq!(count_in(&long), Some(100));
    }
}
