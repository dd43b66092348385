//! The legacy (pre-expression) parameters, mapped onto the expression AST: `Expected`,
//! `QueryFilter`/`ScanFilter`, `KeyConditions`, `AttributesToGet` and `AttributeUpdates`.

use serde_json::{Map, Value};

use super::ExprError;
use super::condition::{Comparator, Condition, Operand};
use super::key::{KeyCondition, KeyPart, RangeCondition, assemble};
use super::path::Path;
use super::update::{Action, SetValue, Update, UpdateOperand};
use crate::value::AttributeValue;

fn invalid(why: impl std::fmt::Display) -> ExprError {
    ExprError::Request(format!("One or more parameter values were invalid: {why}"))
}

fn value(v: &Value) -> Result<AttributeValue, ExprError> {
    AttributeValue::from_json(v).map_err(|e| ExprError::Request(e.to_string()))
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ExprError> {
    v.as_object()
        .ok_or_else(|| ExprError::Request(format!("{what} must be a map")))
}

/// DynamoDB's refusal of a request that mixes the two styles, e.g. `{Expected}` with
/// `{ConditionExpression}`. The caller decides when that is the case.
pub fn mixed_parameters_error(non_expression: &[&str], expression: &[&str]) -> ExprError {
    ExprError::Request(format!(
        "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
        non_expression.join(", "),
        expression.join(", ")
    ))
}

fn combine(
    conds: Vec<Condition>,
    conditional_operator: Option<&str>,
) -> Result<Option<Condition>, ExprError> {
    let or = match conditional_operator {
        None | Some("AND") => false,
        Some("OR") => true,
        Some(other) => {
            return Err(ExprError::Request(format!(
                "1 validation error detected: Value '{other}' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy enum value set: [OR, AND]"
            )));
        }
    };
    // A balanced tree, not a chain: thousands of legacy conditions nest log2(n) deep, so
    // evaluating or dropping them never runs a thread out of stack.
    fn balanced(mut conds: Vec<Condition>, or: bool) -> Option<Condition> {
        if conds.len() <= 1 {
            return conds.pop();
        }
        let right = conds.split_off(conds.len() / 2);
        let (l, r) = (balanced(conds, or)?, balanced(right, or)?);
        Some(if or {
            Condition::Or(Box::new(l), Box::new(r))
        } else {
            Condition::And(Box::new(l), Box::new(r))
        })
    }
    Ok(balanced(conds, or))
}

/// One `ComparisonOperator` + values on attribute `name` as a condition, with the count
/// checks DynamoDB applies.
fn comparison(name: &str, op: &str, values: Vec<AttributeValue>) -> Result<Condition, ExprError> {
    let expected = match op {
        "NULL" | "NOT_NULL" => values.is_empty(),
        "EQ" | "NE" | "LE" | "LT" | "GE" | "GT" | "CONTAINS" | "NOT_CONTAINS" | "BEGINS_WITH" => {
            values.len() == 1
        }
        "IN" => !values.is_empty(),
        "BETWEEN" => values.len() == 2,
        other => {
            return Err(ExprError::Request(format!(
                "1 validation error detected: Value '{other}' at 'comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]"
            )));
        }
    };
    if !expected {
        return Err(invalid(format!(
            "Invalid number of argument(s) for the {op} ComparisonOperator"
        )));
    }
    if let Some(first) = values.first()
        && values.iter().any(|v| v.value_type() != first.value_type())
    {
        return Err(invalid(
            "AttributeValues inside AttributeValueList must be of same type",
        ));
    }
    let allowed: &[&str] = match op {
        "EQ" | "NE" => &["S", "N", "B", "SS", "NS", "BS", "L", "M", "BOOL", "NULL"],
        "BEGINS_WITH" => &["S", "B"],
        "NULL" | "NOT_NULL" => &[],
        _ => &["S", "N", "B"],
    };
    if let Some(bad) = values
        .iter()
        .find(|v| !allowed.contains(&v.value_type().descriptor()))
    {
        return Err(invalid(format!(
            "ComparisonOperator {op} is not valid for {} AttributeValue type",
            bad.value_type().descriptor()
        )));
    }
    if op == "BETWEEN" && values[0].compare(&values[1]) == Some(std::cmp::Ordering::Greater) {
        return Err(ExprError::Request(
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound".into(),
        ));
    }
    let path = Path::attr(name);
    let attr = || Operand::Path(path.clone());
    let mut values = values.into_iter().map(Operand::Value);
    let mut next = || {
        values
            .next()
            .unwrap_or(Operand::Value(AttributeValue::Null))
    };
    let cmp = |c: Comparator, v: Operand| Condition::Compare(c, attr(), v);
    Ok(match op {
        "NULL" => Condition::AttributeNotExists(path.clone()),
        "NOT_NULL" => Condition::AttributeExists(path.clone()),
        "EQ" => cmp(Comparator::Eq, next()),
        "NE" => cmp(Comparator::Ne, next()),
        "LE" => cmp(Comparator::Le, next()),
        "LT" => cmp(Comparator::Lt, next()),
        "GE" => cmp(Comparator::Ge, next()),
        "GT" => cmp(Comparator::Gt, next()),
        "CONTAINS" => Condition::Contains(attr(), next()),
        "NOT_CONTAINS" => Condition::Not(Box::new(Condition::Contains(attr(), next()))),
        "BEGINS_WITH" => Condition::BeginsWith(attr(), next()),
        "BETWEEN" => {
            let lo = next();
            Condition::Between(attr(), lo, next())
        }
        _ => Condition::In(attr(), values.collect()),
    })
}

fn value_list(cond: &Map<String, Value>) -> Result<Vec<AttributeValue>, ExprError> {
    match cond.get("AttributeValueList") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => list.iter().map(value).collect(),
        Some(_) => Err(ExprError::Request(
            "AttributeValueList must be a list".into(),
        )),
    }
}

/// `QueryFilter` / `ScanFilter` as a condition (`None` when the map is empty).
pub fn filter_to_condition(
    filter: &Value,
    conditional_operator: Option<&str>,
) -> Result<Option<Condition>, ExprError> {
    let mut conds = Vec::new();
    for (name, cond) in object(filter, "Filter")? {
        let cond = object(cond, "Condition")?;
        let op = cond
            .get("ComparisonOperator")
            .and_then(Value::as_str)
            .unwrap_or("");
        conds.push(comparison(name, op, value_list(cond)?)?);
    }
    combine(conds, conditional_operator)
}

/// `Expected` as a condition (`None` when the map is empty).
pub fn expected_to_condition(
    expected: &Value,
    conditional_operator: Option<&str>,
) -> Result<Option<Condition>, ExprError> {
    let mut conds = Vec::new();
    for (name, cond) in object(expected, "Expected")? {
        let cond = object(cond, "ExpectedAttributeValue")?;
        let present = |k: &str| cond.get(k).is_some_and(|v| !v.is_null());
        if present("AttributeValueList") && present("Value") {
            return Err(invalid(format!(
                "Value and AttributeValueList cannot be used together for Attribute: {name}"
            )));
        }
        if let Some(op) = cond.get("ComparisonOperator").and_then(Value::as_str) {
            if present("Exists") {
                return Err(invalid(format!(
                    "Exists and ComparisonOperator cannot be used together for Attribute: {name}"
                )));
            }
            if op != "NULL"
                && op != "NOT_NULL"
                && !present("AttributeValueList")
                && !present("Value")
            {
                return Err(invalid(format!(
                    "Value or AttributeValueList must be used with ComparisonOperator: {op} for Attribute: {name}"
                )));
            }
            let values = match cond.get("Value") {
                Some(v) if !v.is_null() => vec![value(v)?],
                _ => value_list(cond)?,
            };
            conds.push(comparison(name, op, values)?);
            continue;
        }
        if present("AttributeValueList") {
            return Err(invalid(format!(
                "AttributeValueList can only be used with a ComparisonOperator for Attribute: {name}"
            )));
        }
        let exists = cond.get("Exists").and_then(Value::as_bool);
        match (
            exists.unwrap_or(true),
            cond.get("Value").filter(|v| !v.is_null()),
        ) {
            (true, Some(v)) => conds.push(Condition::Compare(
                Comparator::Eq,
                Operand::Path(Path::attr(name.as_str())),
                Operand::Value(value(v)?),
            )),
            (true, None) => {
                let shown = exists.map_or("null".to_owned(), |e| e.to_string());
                return Err(invalid(format!(
                    "Value must be provided when Exists is {shown} for Attribute: {name}"
                )));
            }
            (false, Some(_)) => {
                return Err(invalid(format!(
                    "Value cannot be used when Exists is false for Attribute: {name}"
                )));
            }
            (false, None) => conds.push(Condition::AttributeNotExists(Path::attr(name.as_str()))),
        }
    }
    combine(conds, conditional_operator)
}

/// `KeyConditions` against a key schema.
pub fn key_conditions(
    conditions: &Value,
    hash_name: &str,
    range_name: Option<&str>,
) -> Result<KeyCondition, ExprError> {
    let mut parts = Vec::new();
    for (name, cond) in object(conditions, "KeyConditions")? {
        let cond = object(cond, "Condition")?;
        let op = cond
            .get("ComparisonOperator")
            .and_then(Value::as_str)
            .unwrap_or("");
        let values = value_list(cond)?;
        // Same count and type checks as filters.
        comparison(name, op, values.clone())?;
        let mut values = values.into_iter();
        let mut next = || values.next().unwrap_or(AttributeValue::Null);
        let range = match op {
            "EQ" => RangeCondition::Eq(next()),
            "LT" => RangeCondition::Lt(next()),
            "LE" => RangeCondition::Le(next()),
            "GT" => RangeCondition::Gt(next()),
            "GE" => RangeCondition::Ge(next()),
            "BEGINS_WITH" => RangeCondition::BeginsWith(next()),
            "BETWEEN" => {
                let lo = next();
                RangeCondition::Between(lo, next())
            }
            _ => {
                return Err(ExprError::Request(
                    "Attempted conditional constraint is not an indexable operation".into(),
                ));
            }
        };
        parts.push(KeyPart {
            name: name.clone(),
            range,
        });
    }
    assemble(parts, hash_name, range_name)
}

/// `AttributesToGet` as projection paths.
pub fn attributes_to_get(names: &Value) -> Result<Vec<Path>, ExprError> {
    let Value::Array(list) = names else {
        return Err(ExprError::Request("AttributesToGet must be a list".into()));
    };
    let mut paths: Vec<Path> = Vec::with_capacity(list.len());
    for n in list {
        let Some(n) = n.as_str() else {
            return Err(ExprError::Request(
                "AttributesToGet members must be strings".into(),
            ));
        };
        if paths.iter().any(|p| p.top() == n) {
            return Err(invalid(format!("Duplicate value in attribute name: {n}")));
        }
        paths.push(Path::attr(n));
    }
    Ok(paths)
}

/// `AttributeUpdates` as an update (applied with the legacy "Type mismatch" messages).
pub fn attribute_updates(updates: &Value) -> Result<Update, ExprError> {
    let mut actions = Vec::new();
    for (name, upd) in object(updates, "AttributeUpdates")? {
        let upd = object(upd, "AttributeValueUpdate")?;
        let action = upd.get("Action").and_then(Value::as_str).unwrap_or("PUT");
        let val = match upd.get("Value") {
            Some(v) if !v.is_null() => Some(value(v)?),
            _ => None,
        };
        let path = Path::attr(name.as_str());
        let ty = val.as_ref().map(|v| v.value_type().descriptor());
        actions.push(match (action, val) {
            ("DELETE", None) => Action::Remove(path),
            (_, None) => return Err(invalid("Only DELETE action is allowed when no attribute value is specified")),
            ("PUT", Some(v)) => Action::Set(path, SetValue::Operand(UpdateOperand::Value(v))),
            ("DELETE", Some(v)) => {
                if !matches!(ty, Some("SS" | "NS" | "BS")) {
                    return Err(invalid(format!("DELETE action with value is not supported for the type {}", ty.unwrap_or(""))));
                }
                Action::Delete(path, v)
            }
            ("ADD", Some(v)) => {
                if !matches!(ty, Some("L" | "SS" | "NS" | "BS" | "N")) {
                    return Err(invalid(format!("ADD action is not supported for the type {}", ty.unwrap_or(""))));
                }
                Action::Add(path, v)
            }
            (other, Some(_)) => {
                return Err(ExprError::Request(format!(
                    "1 validation error detected: Value '{other}' at 'attributeUpdates.{name}.member.action' failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]"
                )));
            }
        });
    }
    Ok(Update {
        actions,
        legacy: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(r: Result<Option<Condition>, ExprError>) -> Option<String> {
        r.err().map(|e| e.to_string())
    }

    #[test]
    fn filter_checks() {
        assert_eq!(
            err(filter_to_condition(
                &json!({"a": {"ComparisonOperator": "NULL", "AttributeValueList": [{"S": "a"}]}}),
                None
            ))
            .as_deref(),
            Some(
                "One or more parameter values were invalid: Invalid number of argument(s) for the NULL ComparisonOperator"
            )
        );
        assert_eq!(
            err(filter_to_condition(
                &json!({"a": {"ComparisonOperator": "LT", "AttributeValueList": [{"BOOL": true}]}}),
                None
            ))
            .as_deref(),
            Some(
                "One or more parameter values were invalid: ComparisonOperator LT is not valid for BOOL AttributeValue type"
            )
        );
        assert_eq!(
            err(filter_to_condition(&json!({"a": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "2"}, {"N": "1"}]}}), None)).as_deref(),
            Some("The BETWEEN condition was provided a range where the lower bound is greater than the upper bound")
        );
        assert_eq!(
            err(filter_to_condition(&json!({"a": {"ComparisonOperator": "IN", "AttributeValueList": [{"N": "2"}, {"S": "1"}]}}), None)).as_deref(),
            Some("One or more parameter values were invalid: AttributeValues inside AttributeValueList must be of same type")
        );
    }

    #[test]
    fn expected_checks() {
        assert_eq!(
            err(expected_to_condition(
                &json!({"a": {"Exists": false, "Value": {"S": "x"}}}),
                None
            ))
            .as_deref(),
            Some(
                "One or more parameter values were invalid: Value cannot be used when Exists is false for Attribute: a"
            )
        );
        assert_eq!(
            err(expected_to_condition(
                &json!({"a": {"ComparisonOperator": "EQ"}}),
                None
            ))
            .as_deref(),
            Some(
                "One or more parameter values were invalid: Value or AttributeValueList must be used with ComparisonOperator: EQ for Attribute: a"
            )
        );
        assert_eq!(
            attribute_updates(&json!({"a": {"Action": "PUT"}}))
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some(
                "One or more parameter values were invalid: Only DELETE action is allowed when no attribute value is specified"
            )
        );
        assert_eq!(
            attributes_to_get(&json!(["a", "a"]))
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("One or more parameter values were invalid: Duplicate value in attribute name: a")
        );
    }
}
