//! Document paths (`a.b[3].#c`): parsing one from tokens, reading through it, and the
//! `[a, b, [3]]` form DynamoDB quotes paths in.

use std::fmt;

use super::check::{Problems, Slot};
use super::lexer::{Cursor, Tok};
use super::reserved::is_reserved;
use super::subs::Substitutions;
use super::{ExprError, MAX_PATH_DEPTH};
use crate::value::{AttributeValue, Item};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathElem {
    /// A map member (or, first in a path, a top-level attribute).
    Attr(String),
    /// A list element.
    Index(usize),
}

/// A document path. The first element is always an attribute name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path(pub Vec<PathElem>);

impl Path {
    /// A path naming one top-level attribute.
    pub fn attr(name: impl Into<String>) -> Path {
        Path(vec![PathElem::Attr(name.into())])
    }

    /// The top-level attribute the path starts at.
    pub fn top(&self) -> &str {
        match self.0.first() {
            Some(PathElem::Attr(a)) => a,
            _ => "",
        }
    }

    pub fn is_nested(&self) -> bool {
        self.0.len() > 1
    }

    /// The value at this path, if every step exists and has the right type.
    pub fn get<'a>(&self, item: &'a Item) -> Option<&'a AttributeValue> {
        let (first, rest) = self.0.split_first()?;
        let PathElem::Attr(top) = first else {
            return None;
        };
        let mut at = item.get(top)?;
        for elem in rest {
            at = step(at, elem)?;
        }
        Some(at)
    }
}

pub(crate) fn step<'a>(value: &'a AttributeValue, elem: &PathElem) -> Option<&'a AttributeValue> {
    match (value, elem) {
        (AttributeValue::M(m), PathElem::Attr(k)) => m.get(k),
        (AttributeValue::L(l), PathElem::Index(i)) => l.get(*i),
        _ => None,
    }
}

pub(crate) fn step_mut<'a>(
    value: &'a mut AttributeValue,
    elem: &PathElem,
) -> Option<&'a mut AttributeValue> {
    match (value, elem) {
        (AttributeValue::M(m), PathElem::Attr(k)) => m.get_mut(k),
        (AttributeValue::L(l), PathElem::Index(i)) => l.get_mut(*i),
        _ => None,
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, elem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match elem {
                PathElem::Attr(a) => f.write_str(a)?,
                PathElem::Index(n) => write!(f, "[{n}]")?,
            }
        }
        f.write_str("]")
    }
}

/// Whether the next tokens start a path (a name that is not one of `keywords`).
pub(crate) fn at_path(cur: &Cursor<'_>, keywords: &[&str]) -> bool {
    let t = cur.peek();
    match t.tok {
        Tok::NamePlaceholder => true,
        Tok::Ident => !keywords
            .iter()
            .any(|k| cur.slice(t).eq_ignore_ascii_case(k)),
        _ => false,
    }
}

/// Reads one path element name: an identifier (refused if reserved) or `#placeholder`.
fn name(
    cur: &mut Cursor<'_>,
    subs: &mut Substitutions,
    problems: &mut Problems,
    keywords: &[&str],
) -> Result<String, ExprError> {
    if !at_path(cur, keywords) {
        return Err(cur.syntax_error());
    }
    let t = cur.next();
    let text = cur.slice(t);
    if t.tok == Tok::NamePlaceholder {
        match subs.name(text) {
            Some(n) => Ok(n.to_owned()),
            None => {
                problems.record(Slot::AttrName, || {
                    format!("An expression attribute name used in the document path is not defined; attribute name: {text}")
                });
                Ok(String::new())
            }
        }
    } else {
        if is_reserved(text) {
            problems.record(Slot::Reserved, || {
                format!("Attribute name is a reserved keyword; reserved keyword: {text}")
            });
        }
        Ok(text.to_owned())
    }
}

/// Parses a path starting at the cursor. `keywords` are the words that end a path in this
/// expression kind (AND, OR, ... or SET, REMOVE, ...).
pub(crate) fn parse_path(
    cur: &mut Cursor<'_>,
    subs: &mut Substitutions,
    problems: &mut Problems,
    keywords: &[&str],
) -> Result<Path, ExprError> {
    let mut elems = vec![PathElem::Attr(name(cur, subs, problems, keywords)?)];
    loop {
        match cur.peek().tok {
            Tok::Dot => {
                cur.next();
                elems.push(PathElem::Attr(name(cur, subs, problems, keywords)?));
            }
            Tok::LBracket => {
                cur.next();
                let t = cur.peek();
                if t.tok != Tok::Digits {
                    return Err(cur.syntax_error());
                }
                let Ok(index) = cur.slice(t).parse::<usize>() else {
                    return Err(cur.syntax_error());
                };
                cur.next();
                cur.expect(Tok::RBracket)?;
                elems.push(PathElem::Index(index));
            }
            _ => break,
        }
    }
    if elems.len() > MAX_PATH_DEPTH {
        let depth = elems.len();
        problems.record(Slot::Limit, || {
            format!("The document path has too many nesting levels; nesting levels: {depth}")
        });
    }
    Ok(Path(elems))
}

/// Records DynamoDB's overlap/conflict problem for a new path against those already taken.
pub(crate) fn check_overlap(taken: &mut Vec<Path>, path: &Path, problems: &mut Problems) {
    for earlier in taken.iter() {
        let mut diverged = false;
        for (a, b) in earlier.0.iter().zip(&path.0) {
            let same_kind = matches!(
                (a, b),
                (PathElem::Attr(_), PathElem::Attr(_)) | (PathElem::Index(_), PathElem::Index(_))
            );
            if !same_kind {
                problems.record(Slot::PathConflict, || {
                    format!("Two document paths conflict with each other; must remove or rewrite one of these paths; path one: {earlier}, path two: {path}")
                });
                diverged = true;
                break;
            }
            if a != b {
                diverged = true;
                break;
            }
        }
        if !diverged {
            problems.record(Slot::PathOverlap, || {
                format!("Two document paths overlap with each other; must remove or rewrite one of these paths; path one: {earlier}, path two: {path}")
            });
        }
    }
    taken.push(path.clone());
}
