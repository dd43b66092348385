//! Reading request members with DynamoDB's JSON-layer checks: types (SerializationException)
//! and constraints ("1 validation error detected: ...").

use serde_json::{Map, Value};

use crate::error::TablesError;
use crate::value::{AttributeValue, Item, ValueError, item_from_json};

pub type Input = Map<String, Value>;

/// DynamoDB names members in constraint messages with a lower-case first letter.
pub fn member_name(key: &str) -> String {
    let mut c = key.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

fn wrong_type(v: &Value, expected: &str) -> TablesError {
    value_error(crate::value::shape(v, expected))
}

pub fn value_error(e: ValueError) -> TablesError {
    match e {
        ValueError::Validation(m) => TablesError::Validation(m),
        ValueError::Serialization(m) => TablesError::Serialization(m),
    }
}

pub fn opt_str<'a>(input: &'a Input, key: &str) -> Result<Option<&'a str>, TablesError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(other, "String")),
    }
}

pub fn req_str<'a>(input: &'a Input, key: &str) -> Result<&'a str, TablesError> {
    opt_str(input, key)?.ok_or_else(|| {
        TablesError::constraint("null", &member_name(key), "Member must not be null")
    })
}

pub fn opt_bool(input: &Input, key: &str) -> Result<Option<bool>, TablesError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong_type(other, "Boolean")),
    }
}

pub fn opt_u64(input: &Input, key: &str) -> Result<Option<u64>, TablesError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) => Ok(Some(v)),
            None if n.as_i64().is_some() => Err(TablesError::constraint(
                &n.to_string(),
                &member_name(key),
                "Member must have value greater than or equal to 1",
            )),
            None => Err(wrong_type(&Value::Number(n.clone()), "Long")),
        },
        Some(other) => Err(wrong_type(other, "Long")),
    }
}

pub fn opt_obj<'a>(input: &'a Input, key: &str) -> Result<Option<&'a Input>, TablesError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(wrong_type(other, "Map")),
    }
}

pub fn opt_array<'a>(input: &'a Input, key: &str) -> Result<Option<&'a Vec<Value>>, TablesError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(other) => Err(wrong_type(other, "List")),
    }
}

pub fn as_obj(v: &Value) -> Result<&Input, TablesError> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(wrong_type(other, "Structure")),
    }
}

pub fn opt_item(input: &Input, key: &str) -> Result<Option<Item>, TablesError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => item_from_json(v).map(Some).map_err(value_error),
    }
}

pub fn req_item(input: &Input, key: &str) -> Result<Item, TablesError> {
    opt_item(input, key)?.ok_or_else(|| {
        TablesError::constraint("null", &member_name(key), "Member must not be null")
    })
}

pub fn string_map(
    input: &Input,
    key: &str,
) -> Result<Option<std::collections::BTreeMap<String, String>>, TablesError> {
    let Some(m) = opt_obj(input, key)? else {
        return Ok(None);
    };
    m.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            other => Err(wrong_type(other, "String")),
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

pub fn value_map(
    input: &Input,
    key: &str,
) -> Result<Option<std::collections::BTreeMap<String, AttributeValue>>, TablesError> {
    let Some(m) = opt_obj(input, key)? else {
        return Ok(None);
    };
    m.iter()
        .map(|(k, v)| {
            Ok((
                k.clone(),
                AttributeValue::from_json(v).map_err(value_error)?,
            ))
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// Checks a table name as DynamoDB does (3-255 characters of `[a-zA-Z0-9_.-]`).
pub fn table_name<'a>(input: &'a Input, key: &str) -> Result<&'a str, TablesError> {
    let name = req_str(input, key)?;
    check_table_name(name, &member_name(key))?;
    Ok(name)
}

pub fn check_table_name(name: &str, member: &str) -> Result<(), TablesError> {
    if name.len() < 3 {
        return Err(TablesError::constraint(
            &format!("'{name}'"),
            member,
            "Member must have length greater than or equal to 3",
        ));
    }
    if name.len() > 255 {
        return Err(TablesError::constraint(
            &format!("'{name}'"),
            member,
            "Member must have length less than or equal to 255",
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        return Err(TablesError::constraint(
            &format!("'{name}'"),
            member,
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ));
    }
    Ok(())
}

/// An enum-valued member: one of `allowed`, or DynamoDB's constraint message.
pub fn opt_enum<'a>(
    input: &'a Input,
    key: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, TablesError> {
    let Some(v) = opt_str(input, key)? else {
        return Ok(None);
    };
    if allowed.contains(&v) {
        Ok(Some(v))
    } else {
        Err(TablesError::constraint(
            &format!("'{v}'"),
            &member_name(key),
            &format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
        ))
    }
}
