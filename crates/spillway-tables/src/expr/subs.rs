//! `ExpressionAttributeNames` and `ExpressionAttributeValues`: the request's substitution maps,
//! shared by all of its expressions, remembering which entries some expression used so the
//! unused ones can be refused once every expression has parsed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ExprError;
use crate::value::AttributeValue;

#[derive(Debug, Clone, Default)]
pub struct Substitutions {
    names: BTreeMap<String, (String, bool)>,
    values: BTreeMap<String, (AttributeValue, bool)>,
}

fn valid_key(key: &str, sigil: char) -> bool {
    let mut chars = key.chars();
    chars.next() == Some(sigil)
        && key.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Substitutions {
    /// Wraps already-validated maps (see [`Substitutions::from_request`] for the checks).
    pub fn new(
        names: BTreeMap<String, String>,
        values: BTreeMap<String, AttributeValue>,
    ) -> Substitutions {
        Substitutions {
            names: names.into_iter().map(|(k, v)| (k, (v, false))).collect(),
            values: values.into_iter().map(|(k, v)| (k, (v, false))).collect(),
        }
    }

    /// Builds the maps from the request's parameters (`None` when absent), with DynamoDB's
    /// request-level checks: present maps must not be empty and keys must be `#name`/`:name`.
    pub fn from_request(
        names: Option<BTreeMap<String, String>>,
        values: Option<BTreeMap<String, AttributeValue>>,
    ) -> Result<Substitutions, ExprError> {
        if let Some(names) = &names {
            if names.is_empty() {
                return Err(ExprError::Request(
                    "ExpressionAttributeNames must not be empty".into(),
                ));
            }
            if let Some(bad) = names.keys().find(|k| !valid_key(k, '#')) {
                return Err(ExprError::Request(format!(
                    "ExpressionAttributeNames contains invalid key: Syntax error; key: \"{bad}\""
                )));
            }
        }
        if let Some(values) = &values {
            if values.is_empty() {
                return Err(ExprError::Request(
                    "ExpressionAttributeValues must not be empty".into(),
                ));
            }
            if let Some(bad) = values.keys().find(|k| !valid_key(k, ':')) {
                return Err(ExprError::Request(format!(
                    "ExpressionAttributeValues contains invalid key: Syntax error; key: \"{bad}\""
                )));
            }
        }
        Ok(Substitutions::new(
            names.unwrap_or_default(),
            values.unwrap_or_default(),
        ))
    }

    /// [`Substitutions::from_request`] from the raw JSON members, reading values with
    /// DynamoDB's messages ("ExpressionAttributeValues contains invalid value: ... for key :v").
    pub fn from_json(
        names: Option<&Value>,
        values: Option<&Value>,
    ) -> Result<Substitutions, ExprError> {
        let names = match names {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(
                m.iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => Ok((k.clone(), s.clone())),
                        _ => Err(ExprError::Request(
                            "ExpressionAttributeNames values must be strings".into(),
                        )),
                    })
                    .collect::<Result<BTreeMap<_, _>, _>>()?,
            ),
            Some(_) => {
                return Err(ExprError::Request(
                    "ExpressionAttributeNames must be a map".into(),
                ));
            }
        };
        let values = match values {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => {
                if let Some(bad) = m.keys().find(|k| !valid_key(k, ':')) {
                    return Err(ExprError::Request(format!(
                        "ExpressionAttributeValues contains invalid key: Syntax error; key: \"{bad}\""
                    )));
                }
                Some(
                    m.iter()
                        .map(|(k, v)| {
                            AttributeValue::from_json(v).map(|v| (k.clone(), v)).map_err(|e| {
                                ExprError::Request(format!(
                                    "ExpressionAttributeValues contains invalid value: {e} for key {k}"
                                ))
                            })
                        })
                        .collect::<Result<BTreeMap<_, _>, _>>()?,
                )
            }
            Some(_) => {
                return Err(ExprError::Request(
                    "ExpressionAttributeValues must be a map".into(),
                ));
            }
        };
        Substitutions::from_request(names, values)
    }

    /// The name `#placeholder` stands for, marking it used.
    pub(crate) fn name(&mut self, placeholder: &str) -> Option<&str> {
        let (name, used) = self.names.get_mut(placeholder)?;
        *used = true;
        Some(name.as_str())
    }

    /// The value `:placeholder` stands for, marking it used.
    pub(crate) fn value(&mut self, placeholder: &str) -> Option<&AttributeValue> {
        let (value, used) = self.values.get_mut(placeholder)?;
        *used = true;
        Some(value)
    }

    /// Refuses entries no expression of the request used; call after parsing all of them.
    pub fn finish(&self) -> Result<(), ExprError> {
        let unused_names: Vec<&str> = self
            .names
            .iter()
            .filter(|(_, (_, used))| !used)
            .map(|(k, _)| k.as_str())
            .collect();
        if !unused_names.is_empty() {
            return Err(ExprError::Request(format!(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                unused_names.join(", ")
            )));
        }
        let unused_values: Vec<&str> = self
            .values
            .iter()
            .filter(|(_, (_, used))| !used)
            .map(|(k, _)| k.as_str())
            .collect();
        if !unused_values.is_empty() {
            return Err(ExprError::Request(format!(
                "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                unused_values.join(", ")
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_checks_and_unused_entries() {
        let e = Substitutions::from_request(Some(BTreeMap::new()), None)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("ExpressionAttributeNames must not be empty")
        );
        let e = Substitutions::from_request(Some([("a".to_owned(), "a".to_owned())].into()), None)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("ExpressionAttributeNames contains invalid key: Syntax error; key: \"a\"")
        );
        let mut s = Substitutions::new(
            [
                ("#a".to_owned(), "a".to_owned()),
                ("#b".to_owned(), "b".to_owned()),
            ]
            .into(),
            [(":v".to_owned(), AttributeValue::Null)].into(),
        );
        assert_eq!(
            s.finish().err().map(|e| e.to_string()).as_deref(),
            Some(
                "Value provided in ExpressionAttributeNames unused in expressions: keys: {#a, #b}"
            )
        );
        s.name("#a");
        s.name("#b");
        assert_eq!(
            s.finish().err().map(|e| e.to_string()).as_deref(),
            Some("Value provided in ExpressionAttributeValues unused in expressions: keys: {:v}")
        );
        s.value(":v");
        assert!(s.finish().is_ok());
    }
}
