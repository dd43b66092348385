//! A request's expressions: the expression parameters or the legacy ones they replaced (never
//! both), parsed once with one set of substitutions whose unused entries are refused.

use serde_json::Value;

use super::input::Input;
use crate::error::TablesError;
use crate::expr::{
    self, Condition, ExprError, ExprKind, KeyCondition, Path, Substitutions, Update, legacy,
};

const EXPRESSION_PARAMETERS: &[&str] = &[
    "ConditionExpression",
    "FilterExpression",
    "KeyConditionExpression",
    "ProjectionExpression",
    "UpdateExpression",
];
const LEGACY_PARAMETERS: &[&str] = &[
    "AttributesToGet",
    "AttributeUpdates",
    "ConditionalOperator",
    "Expected",
    "KeyConditions",
    "QueryFilter",
    "ScanFilter",
];

pub fn error(e: ExprError) -> TablesError {
    TablesError::Validation(e.to_string())
}

fn present<'a>(input: &'a Input, key: &str) -> Option<&'a Value> {
    input.get(key).filter(|v| !v.is_null())
}

fn text<'a>(input: &'a Input, key: &str) -> Result<Option<&'a str>, TablesError> {
    super::input::opt_str(input, key)
}

/// The substitutions of a request, after refusing a mix of expression and legacy parameters
/// and substitutions given without any expression.
pub fn substitutions(input: &Input) -> Result<Substitutions, TablesError> {
    let expressions: Vec<&str> = EXPRESSION_PARAMETERS
        .iter()
        .copied()
        .filter(|k| present(input, k).is_some())
        .collect();
    let legacy: Vec<&str> = LEGACY_PARAMETERS
        .iter()
        .copied()
        .filter(|k| present(input, k).is_some())
        .collect();
    if !expressions.is_empty() && !legacy.is_empty() {
        return Err(error(expr::mixed_parameters_error(&legacy, &expressions)));
    }
    let names = present(input, "ExpressionAttributeNames");
    let values = present(input, "ExpressionAttributeValues");
    if expressions.is_empty() {
        if names.is_some() {
            return Err(TablesError::Validation(
                "ExpressionAttributeNames can only be specified when using expressions".into(),
            ));
        }
        if values.is_some() {
            return Err(TablesError::Validation(
                "ExpressionAttributeValues can only be specified when using expressions".into(),
            ));
        }
    }
    Substitutions::from_json(names, values).map_err(error)
}

pub fn finish(subs: &Substitutions) -> Result<(), TablesError> {
    subs.finish().map_err(error)
}

fn conditional_operator(input: &Input) -> Result<Option<&str>, TablesError> {
    super::input::opt_enum(input, "ConditionalOperator", &["AND", "OR"])
}

/// `ConditionExpression`, or the legacy `Expected`.
pub fn condition(
    input: &Input,
    subs: &mut Substitutions,
) -> Result<Option<Condition>, TablesError> {
    if let Some(t) = text(input, "ConditionExpression")? {
        return expr::parse_condition(t, ExprKind::Condition, subs)
            .map(Some)
            .map_err(error);
    }
    match present(input, "Expected") {
        Some(e) => legacy::expected_to_condition(e, conditional_operator(input)?).map_err(error),
        None => Ok(None),
    }
}

/// `FilterExpression`, or the legacy `QueryFilter` / `ScanFilter` (`legacy_key`).
pub fn filter(
    input: &Input,
    subs: &mut Substitutions,
    legacy_key: &str,
) -> Result<Option<Condition>, TablesError> {
    if let Some(t) = text(input, "FilterExpression")? {
        return expr::parse_condition(t, ExprKind::Filter, subs)
            .map(Some)
            .map_err(error);
    }
    match present(input, legacy_key) {
        Some(f) => legacy::filter_to_condition(f, conditional_operator(input)?).map_err(error),
        None => Ok(None),
    }
}

/// `ProjectionExpression`, or the legacy `AttributesToGet`.
pub fn projection(
    input: &Input,
    subs: &mut Substitutions,
) -> Result<Option<Vec<Path>>, TablesError> {
    if let Some(t) = text(input, "ProjectionExpression")? {
        return expr::parse_projection(t, subs).map(Some).map_err(error);
    }
    match present(input, "AttributesToGet") {
        Some(a) => legacy::attributes_to_get(a).map(Some).map_err(error),
        None => Ok(None),
    }
}

/// `UpdateExpression`, or the legacy `AttributeUpdates`.
pub fn update(input: &Input, subs: &mut Substitutions) -> Result<Option<Update>, TablesError> {
    if let Some(t) = text(input, "UpdateExpression")? {
        return expr::parse_update(t, subs).map(Some).map_err(error);
    }
    match present(input, "AttributeUpdates") {
        Some(u) => legacy::attribute_updates(u).map(Some).map_err(error),
        None => Ok(None),
    }
}

/// `KeyConditionExpression`, or the legacy `KeyConditions`; one of them is required.
pub fn key_condition(
    input: &Input,
    subs: &mut Substitutions,
    hash: &str,
    range: Option<&str>,
) -> Result<KeyCondition, TablesError> {
    if let Some(t) = text(input, "KeyConditionExpression")? {
        return expr::parse_key_condition(t, subs, hash, range).map_err(error);
    }
    match present(input, "KeyConditions") {
        Some(k) => legacy::key_conditions(k, hash, range).map_err(error),
        None => Err(TablesError::Validation(
            "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.".into(),
        )),
    }
}
