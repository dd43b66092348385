//! DynamoDB's expression language: condition, filter, key-condition, projection and update
//! expressions, parsed once per request into a typed AST and evaluated against items, plus the
//! legacy parameters (`Expected`, `QueryFilter`, `ScanFilter`, `KeyConditions`,
//! `AttributesToGet`, `AttributeUpdates`) mapped onto the same AST.
//!
//! Rooms: [`lexer`] (tokens with their source spans), [`path`] (document paths and how they
//! reach into items), [`subs`] (`ExpressionAttributeNames`/`Values` and which were used),
//! [`condition`], [`projection`], [`update`], [`key`] and [`legacy`].

mod check;
pub mod condition;
pub mod key;
pub mod legacy;
mod lexer;
pub mod path;
pub mod projection;
mod reserved;
pub mod subs;
pub mod update;

pub use condition::{Comparator, Condition, Operand, parse_condition};
pub use key::{KeyCondition, RangeCondition, parse_key_condition};
pub use legacy::mixed_parameters_error;
pub use path::{Path, PathElem};
pub use projection::{parse_projection, project};
pub use subs::Substitutions;
pub use update::{Update, parse_update};

/// Longest expression string DynamoDB accepts, in bytes ("Expression parameters" quotas).
pub const MAX_EXPRESSION_BYTES: usize = 4096;
/// Deepest document path DynamoDB accepts (32 levels, same quotas page).
pub const MAX_PATH_DEPTH: usize = 32;
/// Most operands after the left side of an `IN`.
pub const MAX_IN_OPERANDS: usize = 100;
/// Deepest nesting of parentheses (or NOTs) accepted; spillway's own guard (DynamoDB
/// documents none), far beyond what real expressions use.
pub const MAX_NESTING: usize = 100;
/// Most operators and functions in one update expression.
pub const MAX_UPDATE_OPERATORS: usize = 300;

/// Which request parameter an expression came from; DynamoDB prefixes every message about it
/// with "Invalid <parameter>: ".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExprKind {
    Condition,
    KeyCondition,
    Filter,
    Projection,
    Update,
}

impl ExprKind {
    pub fn parameter(self) -> &'static str {
        match self {
            ExprKind::Condition => "ConditionExpression",
            ExprKind::KeyCondition => "KeyConditionExpression",
            ExprKind::Filter => "FilterExpression",
            ExprKind::Projection => "ProjectionExpression",
            ExprKind::Update => "UpdateExpression",
        }
    }
}

/// Why an expression (or a legacy parameter standing for one) is refused or cannot be applied.
///
/// Every variant is answered as `ValidationException`; none maps to another exception type.
/// Each renders exactly the message DynamoDB gives the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// A parse-time problem inside one expression: "Invalid <parameter>: <reason>".
    #[error("Invalid {}: {reason}", kind.parameter())]
    Invalid { kind: ExprKind, reason: String },
    /// A request-level problem not tied to one expression's text (substitution maps, unused
    /// substitutions, key-condition shape, legacy parameters); the message stands alone.
    #[error("{0}")]
    Request(String),
    /// Applying an update or evaluating it against the stored item failed.
    #[error("{0}")]
    Runtime(String),
}

impl ExprError {
    pub(crate) fn invalid(kind: ExprKind, reason: impl Into<String>) -> ExprError {
        ExprError::Invalid {
            kind,
            reason: reason.into(),
        }
    }
}

/// Checks the request-wide limits before lexing, as DynamoDB does.
pub(crate) fn check_text(kind: ExprKind, text: &str) -> Result<(), ExprError> {
    if text.is_empty() {
        return Err(ExprError::invalid(kind, "The expression can not be empty;"));
    }
    if text.len() > MAX_EXPRESSION_BYTES {
        return Err(ExprError::invalid(
            kind,
            format!(
                "Expression size has exceeded the maximum allowed size; expression size: {}",
                text.len()
            ),
        ));
    }
    // The parsers recurse per parenthesis and per NOT; DynamoDB's 4 KB would allow ~1,000
    // levels, enough to exhaust a worker thread's stack. Real expressions nest a few levels.
    let mut depth = 0usize;
    let mut deepest = 0usize;
    for b in text.bytes() {
        match b {
            b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let nots = text
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '#' && c != ':')
        .filter(|w| w.eq_ignore_ascii_case("NOT"))
        .count();
    if deepest > MAX_NESTING || nots > MAX_NESTING {
        return Err(ExprError::invalid(
            kind,
            format!(
                "The expression is nested too deeply; nesting levels: {}, limit: {MAX_NESTING}",
                deepest.max(nots)
            ),
        ));
    }
    Ok(())
}
