//! Semantic problems found while parsing. DynamoDB reports at most one, and which one wins
//! depends on its category rather than its position, so the parser records the first problem
//! of each category and picks by a per-expression order once the text has parsed.

use super::{ExprError, ExprKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Limit,
    Parens,
    UnknownFunction,
    MisusedFunction,
    Reserved,
    Section,
    AttrName,
    AttrValue,
    PathOverlap,
    PathConflict,
    Operand,
    Distinct,
    Function,
}

const SLOTS: usize = 13;

/// Order for condition, filter and key-condition expressions.
pub(crate) const CONDITION_ORDER: &[Slot] = &[
    Slot::Limit,
    Slot::Parens,
    Slot::UnknownFunction,
    Slot::MisusedFunction,
    Slot::Reserved,
    Slot::AttrName,
    Slot::AttrValue,
    Slot::Operand,
    Slot::Distinct,
    Slot::Function,
];

pub(crate) const UPDATE_ORDER: &[Slot] = &[
    Slot::Limit,
    Slot::Reserved,
    Slot::UnknownFunction,
    Slot::Section,
    Slot::AttrName,
    Slot::AttrValue,
    Slot::PathOverlap,
    Slot::PathConflict,
    Slot::Operand,
    Slot::Function,
];

pub(crate) const PROJECTION_ORDER: &[Slot] = &[
    Slot::Limit,
    Slot::Reserved,
    Slot::AttrName,
    Slot::PathOverlap,
    Slot::PathConflict,
];

#[derive(Debug, Default)]
pub(crate) struct Problems {
    found: [Option<String>; SLOTS],
}

impl Problems {
    pub fn record(&mut self, slot: Slot, message: impl FnOnce() -> String) {
        let entry = &mut self.found[slot as usize];
        if entry.is_none() {
            *entry = Some(message());
        }
    }

    /// The problem DynamoDB would report, if any.
    pub fn into_result(mut self, kind: ExprKind, order: &[Slot]) -> Result<(), ExprError> {
        for slot in order {
            if let Some(reason) = self.found[*slot as usize].take() {
                return Err(ExprError::invalid(kind, reason));
            }
        }
        Ok(())
    }
}
