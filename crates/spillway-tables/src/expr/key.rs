//! Key conditions for Query: `hash = :v [AND range-condition]`, reshaped from a parsed
//! condition with DynamoDB's messages for everything else.

use super::condition::{Comparator, Condition, Operand, parse_condition};
use super::subs::Substitutions;
use super::{ExprError, ExprKind};
use crate::value::AttributeValue;

#[derive(Debug, Clone, PartialEq)]
pub enum RangeCondition {
    Eq(AttributeValue),
    Lt(AttributeValue),
    Le(AttributeValue),
    Gt(AttributeValue),
    Ge(AttributeValue),
    Between(AttributeValue, AttributeValue),
    BeginsWith(AttributeValue),
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyCondition {
    pub hash: AttributeValue,
    pub range: Option<RangeCondition>,
}

fn request(message: impl Into<String>) -> ExprError {
    ExprError::Request(message.into())
}

/// One condition on one key attribute, as collected from the expression.
pub(crate) struct KeyPart {
    pub name: String,
    pub range: RangeCondition,
}

fn operand_name(op: &Operand) -> Result<Option<&str>, ExprError> {
    match op {
        Operand::Path(p) if p.is_nested() => Err(request(
            "KeyConditionExpressions cannot have conditions on nested attributes",
        )),
        Operand::Path(p) => Ok(Some(p.top())),
        Operand::Size(_) => Err(request(
            "KeyConditionExpressions cannot contain nested operations",
        )),
        Operand::Value(_) => Ok(None),
    }
}

fn value(op: &Operand) -> AttributeValue {
    match op {
        Operand::Value(v) => v.clone(),
        _ => AttributeValue::Null,
    }
}

fn collect(cond: &Condition, parts: &mut Vec<KeyPart>) -> Result<(), ExprError> {
    let invalid_operator = |op: &str| {
        request(format!(
            "Invalid operator used in KeyConditionExpression: {op}"
        ))
    };
    let one_name = |ops: &[&Operand]| -> Result<(usize, String), ExprError> {
        let mut found = None;
        for (i, op) in ops.iter().enumerate() {
            if let Some(n) = operand_name(op)? {
                if found.is_some() {
                    return Err(request(
                        "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition",
                    ));
                }
                found = Some((i, n.to_owned()));
            }
        }
        found.ok_or_else(|| {
            request("Invalid condition in KeyConditionExpression: No key attribute specified")
        })
    };
    let part = match cond {
        Condition::And(a, b) => {
            collect(a, parts)?;
            return collect(b, parts);
        }
        Condition::Or(..) => return Err(invalid_operator("OR")),
        Condition::Not(_) => return Err(invalid_operator("NOT")),
        Condition::In(..) => return Err(invalid_operator("IN")),
        Condition::Compare(Comparator::Ne, ..) => return Err(invalid_operator("<>")),
        Condition::AttributeExists(_) => return Err(invalid_operator("attribute_exists")),
        Condition::AttributeNotExists(_) => return Err(invalid_operator("attribute_not_exists")),
        Condition::AttributeType(..) => return Err(invalid_operator("attribute_type")),
        Condition::Contains(..) => return Err(invalid_operator("contains")),
        Condition::Compare(c, a, b) => {
            let (at, name) = one_name(&[a, b])?;
            let (c, v) = if at == 0 {
                (*c, value(b))
            } else {
                (c.flipped(), value(a))
            };
            let range = match c {
                Comparator::Eq => RangeCondition::Eq(v),
                Comparator::Lt => RangeCondition::Lt(v),
                Comparator::Le => RangeCondition::Le(v),
                Comparator::Gt => RangeCondition::Gt(v),
                _ => RangeCondition::Ge(v),
            };
            KeyPart { name, range }
        }
        Condition::Between(x, lo, hi) => {
            if !matches!(x, Operand::Path(_)) {
                for op in [lo, hi] {
                    operand_name(op)?;
                }
                return Err(request(
                    "Invalid condition in KeyConditionExpression: BETWEEN operator must have the key attribute as its first operand",
                ));
            }
            let (_, name) = one_name(&[x, lo, hi])?;
            KeyPart {
                name,
                range: RangeCondition::Between(value(lo), value(hi)),
            }
        }
        Condition::BeginsWith(x, prefix) => {
            if !matches!(x, Operand::Path(_)) {
                return Err(request(
                    "Invalid condition in KeyConditionExpression: begins_with operator must have the key attribute as its first operand",
                ));
            }
            let (_, name) = one_name(&[x, prefix])?;
            KeyPart {
                name,
                range: RangeCondition::BeginsWith(value(prefix)),
            }
        }
    };
    if parts.iter().any(|p| p.name == part.name) {
        return Err(request(
            "KeyConditionExpressions must only contain one condition per key",
        ));
    }
    parts.push(part);
    Ok(())
}

/// Matches collected key parts against the key schema.
pub(crate) fn assemble(
    mut parts: Vec<KeyPart>,
    hash_name: &str,
    range_name: Option<&str>,
) -> Result<KeyCondition, ExprError> {
    if parts.is_empty() || parts.len() > 2 {
        return Err(request("Conditions can be of length 1 or 2 only"));
    }
    let missed = |name: &str| request(format!("Query condition missed key schema element: {name}"));
    let not_supported = || request("Query key condition not supported");
    if parts.len() == 2 && range_name.is_none() {
        return Err(not_supported());
    }
    let Some(hash_at) = parts.iter().position(|p| p.name == hash_name) else {
        return Err(missed(hash_name));
    };
    let hash = parts.remove(hash_at);
    let RangeCondition::Eq(hash) = hash.range else {
        return Err(not_supported());
    };
    let range = match parts.pop() {
        None => None,
        Some(part) => match range_name {
            Some(r) if part.name == r => Some(part.range),
            Some(r) => return Err(missed(r)),
            None => return Err(not_supported()),
        },
    };
    Ok(KeyCondition { hash, range })
}

/// Parses a KeyConditionExpression for a key schema (`range_name` is `None` for hash-only
/// keys or indexes). The caller checks the values' types against the schema.
pub fn parse_key_condition(
    text: &str,
    subs: &mut Substitutions,
    hash_name: &str,
    range_name: Option<&str>,
) -> Result<KeyCondition, ExprError> {
    let cond = parse_condition(text, ExprKind::KeyCondition, subs)?;
    let mut parts = Vec::new();
    collect(&cond, &mut parts)?;
    assemble(parts, hash_name, range_name)
}

impl KeyCondition {
    /// Whether a sort-key value satisfies the range condition (true when there is none).
    pub fn range_matches(&self, value: &AttributeValue) -> bool {
        use std::cmp::Ordering::*;
        let Some(range) = &self.range else {
            return true;
        };
        let ord = |v: &AttributeValue| value.compare(v);
        match range {
            RangeCondition::Eq(v) => ord(v) == Some(Equal),
            RangeCondition::Lt(v) => ord(v) == Some(Less),
            RangeCondition::Le(v) => matches!(ord(v), Some(Less | Equal)),
            RangeCondition::Gt(v) => ord(v) == Some(Greater),
            RangeCondition::Ge(v) => matches!(ord(v), Some(Greater | Equal)),
            RangeCondition::Between(lo, hi) => {
                matches!(ord(lo), Some(Greater | Equal)) && matches!(ord(hi), Some(Less | Equal))
            }
            RangeCondition::BeginsWith(p) => super::condition::begins_with(value, p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshapes_and_refuses() {
        let mut subs = Substitutions::new(
            Default::default(),
            [
                (":a".to_owned(), AttributeValue::S("a".into())),
                (":b".to_owned(), AttributeValue::S("b".into())),
            ]
            .into(),
        );
        let mut parse =
            |t: &str| parse_key_condition(t, &mut subs, "h", Some("r")).map_err(|e| e.to_string());
        let k = parse(":a > r and h = :b").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            k.range,
            Some(RangeCondition::Lt(AttributeValue::S("a".into())))
        );
        assert!(k.range_matches(&AttributeValue::S("0".into())));
        assert!(!k.range_matches(&AttributeValue::S("b".into())));
        assert_eq!(
            parse("h <> :a").err().as_deref(),
            Some("Invalid operator used in KeyConditionExpression: <>")
        );
        assert_eq!(
            parse("size(h) > :a").err().as_deref(),
            Some("KeyConditionExpressions cannot contain nested operations")
        );
        assert_eq!(
            parse("begins_with(:a, h)").err().as_deref(),
            Some(
                "Invalid condition in KeyConditionExpression: begins_with operator must have the key attribute as its first operand"
            )
        );
        assert_eq!(
            parse(":a > :b AND h = :a").err().as_deref(),
            Some("Invalid condition in KeyConditionExpression: No key attribute specified")
        );
        assert_eq!(
            parse("h = r").err().as_deref(),
            Some(
                "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition"
            )
        );
    }
}
