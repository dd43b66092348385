//! Update expressions (`SET`, `REMOVE`, `ADD`, `DELETE` clauses) and applying them to an item.
//! Right-hand sides read the item as it was before the update.

use std::cmp::Ordering;

use super::check::{Problems, Slot, UPDATE_ORDER};
use super::lexer::{Cursor, Tok};
use super::path::{Path, PathElem, at_path, check_overlap, parse_path, step_mut};
use super::subs::Substitutions;
use super::{ExprError, ExprKind, MAX_UPDATE_OPERATORS, check_text};
use crate::value::{AttributeValue, Item};

const KEYWORDS: &[&str] = &["SET", "REMOVE", "ADD", "DELETE"];

#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOperand {
    Path(Path),
    Value(AttributeValue),
    IfNotExists(Path, Box<UpdateOperand>),
    ListAppend(Box<UpdateOperand>, Box<UpdateOperand>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum SetValue {
    Operand(UpdateOperand),
    Plus(UpdateOperand, UpdateOperand),
    Minus(UpdateOperand, UpdateOperand),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Set(Path, SetValue),
    Remove(Path),
    /// Add a number, or union a set; the value is a number or a set (checked at parse).
    Add(Path, AttributeValue),
    /// Set difference; the value is a set (checked at parse).
    Delete(Path, AttributeValue),
}

impl Action {
    pub fn path(&self) -> &Path {
        match self {
            Action::Set(p, _) | Action::Remove(p) | Action::Add(p, _) | Action::Delete(p, _) => p,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub actions: Vec<Action>,
    /// Built from `AttributeUpdates`: ADD may append to lists, and type mismatches are
    /// reported with the legacy message.
    pub legacy: bool,
}

const NO_ATTRIBUTE: &str =
    "The provided expression refers to an attribute that does not exist in the item";
const BAD_PATH: &str = "The document path provided in the update expression is invalid for update";
const BAD_TYPE: &str = "An operand in the update expression has an incorrect data type";

fn runtime(message: &str) -> ExprError {
    ExprError::Runtime(message.to_owned())
}

/// Parses an UpdateExpression.
pub fn parse_update(text: &str, subs: &mut Substitutions) -> Result<Update, ExprError> {
    let kind = ExprKind::Update;
    check_text(kind, text)?;
    let mut p = Parser {
        cur: Cursor::new(text, kind),
        subs,
        problems: Problems::default(),
        operators: 0,
    };
    let mut actions = Vec::new();
    let mut seen = [false; 4];
    let mut taken = Vec::new();
    loop {
        let t = p.cur.peek();
        if t.tok == Tok::Eof && !actions.is_empty() {
            break;
        }
        let Some(clause) = KEYWORDS.iter().position(|k| p.cur.at_keyword(k)) else {
            return Err(p.cur.syntax_error());
        };
        p.cur.next();
        if seen[clause] {
            p.problems.record(Slot::Section, || {
                format!(
                    "The \"{}\" section can only be used once in an update expression;",
                    KEYWORDS[clause]
                )
            });
        }
        seen[clause] = true;
        loop {
            let path = parse_path(&mut p.cur, p.subs, &mut p.problems, KEYWORDS)?;
            check_overlap(&mut taken, &path, &mut p.problems);
            let action = match clause {
                0 => {
                    p.cur.expect(Tok::Eq)?;
                    Action::Set(path, p.set_value()?)
                }
                1 => Action::Remove(path),
                _ => {
                    let operator = if clause == 2 { "ADD" } else { "DELETE" };
                    let value = p.value()?;
                    let allowed = match value.value_type().descriptor() {
                        "SS" | "NS" | "BS" => true,
                        "N" => clause == 2,
                        _ => false,
                    };
                    if !allowed {
                        let ty = match &value {
                            AttributeValue::S(_) => "STRING",
                            AttributeValue::N(_) => "NUMBER",
                            AttributeValue::B(_) => "BINARY",
                            AttributeValue::Null => "NULL",
                            AttributeValue::Bool(_) => "BOOLEAN",
                            AttributeValue::L(_) => "LIST",
                            _ => "MAP",
                        };
                        p.problems.record(Slot::Operand, || {
                            format!("Incorrect operand type for operator or function; operator: {operator}, operand type: {ty}")
                        });
                    }
                    if clause == 2 {
                        Action::Add(path, value)
                    } else {
                        Action::Delete(path, value)
                    }
                }
            };
            actions.push(action);
            if !p.cur.eat(Tok::Comma) {
                break;
            }
        }
    }
    if p.operators > MAX_UPDATE_OPERATORS {
        p.problems.record(Slot::Limit, || {
            "Expression size has exceeded the maximum allowed size;".into()
        });
    }
    p.problems.into_result(kind, UPDATE_ORDER)?;
    Ok(Update {
        actions,
        legacy: false,
    })
}

struct Parser<'t, 's> {
    cur: Cursor<'t>,
    subs: &'s mut Substitutions,
    problems: Problems,
    operators: usize,
}

fn literal_type(op: &UpdateOperand) -> Option<&'static str> {
    match op {
        UpdateOperand::Value(v) => Some(v.value_type().descriptor()),
        _ => None,
    }
}

impl Parser<'_, '_> {
    fn value(&mut self) -> Result<AttributeValue, ExprError> {
        let t = self.cur.expect(Tok::ValuePlaceholder)?;
        let text = self.cur.slice(t);
        match self.subs.value(text) {
            Some(v) => Ok(v.clone()),
            None => {
                self.problems.record(Slot::AttrValue, || {
                    format!("An expression attribute value used in expression is not defined; attribute value: {text}")
                });
                Ok(AttributeValue::Null)
            }
        }
    }

    fn set_value(&mut self) -> Result<SetValue, ExprError> {
        // `( a + b )` may be parenthesized as a whole.
        if self.cur.peek().tok == Tok::LParen && !self.paren_wraps_operand() {
            self.cur.next();
            let v = self.set_value()?;
            self.cur.expect(Tok::RParen)?;
            return Ok(v);
        }
        let a = self.operand_parens()?;
        let op = match self.cur.peek().tok {
            Tok::Plus => "+",
            Tok::Minus => "-",
            _ => return Ok(SetValue::Operand(a)),
        };
        self.cur.next();
        self.operators += 1;
        let b = self.operand_parens()?;
        for ty in [literal_type(&a), literal_type(&b)].into_iter().flatten() {
            if ty != "N" {
                self.problems.record(Slot::Function, || {
                    format!("Incorrect operand type for operator or function; operator or function: {op}, operand type: {ty}")
                });
            }
        }
        Ok(if op == "+" {
            SetValue::Plus(a, b)
        } else {
            SetValue::Minus(a, b)
        })
    }

    /// Whether `(` here encloses a single operand (`(a) + b`) rather than a whole `a + b`.
    fn paren_wraps_operand(&self) -> bool {
        let mut depth = 0usize;
        let mut i = 0;
        loop {
            let t = self.cur.peek_at(i);
            match t.tok {
                Tok::LParen => depth += 1,
                Tok::RParen => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return true;
                    }
                }
                Tok::Plus | Tok::Minus if depth == 1 => return false,
                Tok::Eof => return true,
                _ => {}
            }
            i += 1;
        }
    }

    fn operand_parens(&mut self) -> Result<UpdateOperand, ExprError> {
        if self.cur.eat(Tok::LParen) {
            let op = self.operand()?;
            self.cur.expect(Tok::RParen)?;
            return Ok(op);
        }
        self.operand()
    }

    fn operand(&mut self) -> Result<UpdateOperand, ExprError> {
        let t = self.cur.peek();
        if t.tok == Tok::ValuePlaceholder {
            return Ok(UpdateOperand::Value(self.value()?));
        }
        if t.tok == Tok::Ident
            && self.cur.peek_at(1).tok == Tok::LParen
            && at_path(&self.cur, KEYWORDS)
        {
            return self.function();
        }
        Ok(UpdateOperand::Path(parse_path(
            &mut self.cur,
            self.subs,
            &mut self.problems,
            KEYWORDS,
        )?))
    }

    fn function(&mut self) -> Result<UpdateOperand, ExprError> {
        let name_tok = self.cur.next();
        let name = self.cur.slice(name_tok);
        self.cur.expect(Tok::LParen)?;
        let mut args = vec![self.operand_parens()?];
        while self.cur.eat(Tok::Comma) {
            args.push(self.operand_parens()?);
        }
        self.cur.expect(Tok::RParen)?;
        self.operators += 1;
        let dummy = UpdateOperand::Value(AttributeValue::Null);
        if name != "if_not_exists" && name != "list_append" {
            self.problems.record(Slot::UnknownFunction, || {
                format!("Invalid function name; function: {name}")
            });
            return Ok(dummy);
        }
        if args.len() != 2 {
            let n = args.len();
            self.problems.record(Slot::Function, || {
                format!("Incorrect number of operands for operator or function; operator or function: {name}, number of operands: {n}")
            });
            return Ok(dummy);
        }
        let mut args = args.into_iter();
        let (Some(a), Some(b)) = (args.next(), args.next()) else {
            return Ok(dummy);
        };
        if name == "if_not_exists" {
            let UpdateOperand::Path(path) = a else {
                self.problems.record(Slot::Function, || {
                    "Operator or function requires a document path; operator or function: if_not_exists".into()
                });
                return Ok(dummy);
            };
            return Ok(UpdateOperand::IfNotExists(path, Box::new(b)));
        }
        for ty in [literal_type(&a), literal_type(&b)].into_iter().flatten() {
            if ty != "L" {
                self.problems.record(Slot::Function, || {
                    format!("Incorrect operand type for operator or function; operator or function: list_append, operand type: {ty}")
                });
            }
        }
        Ok(UpdateOperand::ListAppend(Box::new(a), Box::new(b)))
    }
}

fn eval_operand(op: &UpdateOperand, item: &Item) -> Result<AttributeValue, ExprError> {
    match op {
        UpdateOperand::Value(v) => Ok(v.clone()),
        UpdateOperand::Path(p) => p.get(item).cloned().ok_or_else(|| runtime(NO_ATTRIBUTE)),
        UpdateOperand::IfNotExists(p, fallback) => match p.get(item) {
            Some(v) => Ok(v.clone()),
            None => eval_operand(fallback, item),
        },
        UpdateOperand::ListAppend(a, b) => match (eval_operand(a, item)?, eval_operand(b, item)?) {
            (AttributeValue::L(mut a), AttributeValue::L(b)) => {
                a.extend(b);
                Ok(AttributeValue::L(a))
            }
            _ => Err(runtime(BAD_TYPE)),
        },
    }
}

fn eval_set(value: &SetValue, item: &Item) -> Result<AttributeValue, ExprError> {
    let (a, b, plus) = match value {
        SetValue::Operand(op) => return eval_operand(op, item),
        SetValue::Plus(a, b) => (a, b, true),
        SetValue::Minus(a, b) => (a, b, false),
    };
    match (eval_operand(a, item)?, eval_operand(b, item)?) {
        (AttributeValue::N(a), AttributeValue::N(b)) => {
            let sum = if plus { a.add(&b) } else { a.sub(&b) };
            sum.map(AttributeValue::N)
                .map_err(|e| ExprError::Runtime(e.to_string()))
        }
        _ => Err(runtime(BAD_TYPE)),
    }
}

/// Where a path's last step lands: the container and the step into it.
enum Slot2<'a> {
    Top(&'a mut Item, &'a str),
    Member(&'a mut Item, &'a str),
    Element(&'a mut Vec<AttributeValue>, usize),
}

fn locate<'a>(item: &'a mut Item, path: &'a Path) -> Result<Slot2<'a>, ExprError> {
    let elems = &path.0;
    let Some((last, parents)) = elems.split_last() else {
        return Err(runtime(BAD_PATH));
    };
    let Some((PathElem::Attr(top), middle)) = parents.split_first() else {
        return match last {
            PathElem::Attr(name) => Ok(Slot2::Top(item, name)),
            PathElem::Index(_) => Err(runtime(BAD_PATH)),
        };
    };
    let mut at = item
        .get_mut(top.as_str())
        .ok_or_else(|| runtime(BAD_PATH))?;
    for elem in middle {
        at = step_mut(at, elem).ok_or_else(|| runtime(BAD_PATH))?;
    }
    match (at, last) {
        (AttributeValue::M(m), PathElem::Attr(k)) => Ok(Slot2::Member(m, k)),
        (AttributeValue::L(l), PathElem::Index(i)) => Ok(Slot2::Element(l, *i)),
        _ => Err(runtime(BAD_PATH)),
    }
}

impl Slot2<'_> {
    fn get(&mut self) -> Option<&mut AttributeValue> {
        match self {
            Slot2::Top(m, k) | Slot2::Member(m, k) => m.get_mut(*k),
            Slot2::Element(l, i) => l.get_mut(*i),
        }
    }

    /// Stores `value`; a list index past the end appends, as DynamoDB does.
    fn put(self, value: AttributeValue) {
        match self {
            Slot2::Top(m, k) | Slot2::Member(m, k) => {
                m.insert(k.to_owned(), value);
            }
            Slot2::Element(l, i) => match l.get_mut(i) {
                Some(slot) => *slot = value,
                None => l.push(value),
            },
        }
    }

    fn remove(self) {
        match self {
            Slot2::Top(m, k) | Slot2::Member(m, k) => {
                m.remove(k);
            }
            Slot2::Element(l, i) => {
                if i < l.len() {
                    l.remove(i);
                }
            }
        }
    }
}

fn union_sets(existing: &mut AttributeValue, add: &AttributeValue) -> Result<(), ExprError> {
    // Both sets are sorted (value.rs keeps them so): one linear merge, not a search and an
    // insert per member, since this runs on the writer thread.
    fn merge<T: Clone>(into: &mut Vec<T>, from: &[T], cmp: impl Fn(&T, &T) -> Ordering) {
        let mut out = Vec::with_capacity(into.len() + from.len());
        let (mut i, mut j) = (0, 0);
        while i < into.len() && j < from.len() {
            match cmp(&into[i], &from[j]) {
                Ordering::Less => {
                    out.push(into[i].clone());
                    i += 1;
                }
                Ordering::Greater => {
                    out.push(from[j].clone());
                    j += 1;
                }
                Ordering::Equal => {
                    out.push(into[i].clone());
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&into[i..]);
        out.extend_from_slice(&from[j..]);
        *into = out;
    }
    match (existing, add) {
        (AttributeValue::Ss(a), AttributeValue::Ss(b)) => {
            merge(a, b, |x, y| x.as_bytes().cmp(y.as_bytes()))
        }
        (AttributeValue::Ns(a), AttributeValue::Ns(b)) => merge(a, b, Ord::cmp),
        (AttributeValue::Bs(a), AttributeValue::Bs(b)) => merge(a, b, Ord::cmp),
        (AttributeValue::N(a), AttributeValue::N(b)) => {
            *a = a.add(b).map_err(|e| ExprError::Runtime(e.to_string()))?;
        }
        _ => return Err(runtime(BAD_TYPE)),
    }
    Ok(())
}

/// Removes `take`'s members from the set; `Ok(true)` when the set is left empty.
fn subtract_sets(existing: &mut AttributeValue, take: &AttributeValue) -> Result<bool, ExprError> {
    Ok(match (existing, take) {
        (AttributeValue::Ss(a), AttributeValue::Ss(b)) => {
            // `b` is sorted: a binary search per member (this runs on the writer thread).
            a.retain(|m| {
                b.binary_search_by(|x| x.as_bytes().cmp(m.as_bytes()))
                    .is_err()
            });
            a.is_empty()
        }
        (AttributeValue::Ns(a), AttributeValue::Ns(b)) => {
            a.retain(|m| b.binary_search(m).is_err());
            a.is_empty()
        }
        (AttributeValue::Bs(a), AttributeValue::Bs(b)) => {
            a.retain(|m| b.binary_search(m).is_err());
            a.is_empty()
        }
        _ => return Err(runtime(BAD_TYPE)),
    })
}

impl Update {
    /// Every path the update writes, so the caller can refuse key attributes.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.actions.iter().map(Action::path)
    }

    /// Applies the update. On error the item is left as it was.
    pub fn apply(&self, item: &mut Item) -> Result<(), ExprError> {
        self.apply_inner(item).map_err(|e| match e {
            ExprError::Runtime(m) if self.legacy && m == BAD_TYPE => {
                ExprError::Runtime("Type mismatch for attribute to update".into())
            }
            other => other,
        })
    }

    fn apply_inner(&self, item: &mut Item) -> Result<(), ExprError> {
        // Every SET reads the item as it was before the update.
        let mut set_values = Vec::new();
        for action in &self.actions {
            if let Action::Set(_, value) = action {
                set_values.push(eval_set(value, item)?);
            }
        }
        let mut work = item.clone();
        let mut set_values = set_values.into_iter();
        let mut removes: Vec<&Path> = Vec::new();
        for action in &self.actions {
            match action {
                Action::Set(path, _) => {
                    let value = set_values.next().ok_or_else(|| runtime(BAD_PATH))?;
                    locate(&mut work, path)?.put(value);
                }
                Action::Remove(path) => {
                    // Checked now, applied last and highest index first, so removing
                    // several elements of one list removes the ones the client named.
                    locate(&mut work, path)?;
                    removes.push(path);
                }
                Action::Add(path, value) => {
                    let mut slot = locate(&mut work, path)?;
                    match slot.get() {
                        Some(AttributeValue::L(list)) if self.legacy => match value {
                            AttributeValue::L(more) => list.extend(more.iter().cloned()),
                            _ => return Err(runtime(BAD_TYPE)),
                        },
                        Some(existing) => union_sets(existing, value)?,
                        None => slot.put(value.clone()),
                    }
                }
                Action::Delete(path, value) => {
                    let mut slot = locate(&mut work, path)?;
                    if let Some(existing) = slot.get()
                        && subtract_sets(existing, value)?
                    {
                        slot.remove();
                    }
                }
            }
        }
        removes.sort_by(|a, b| b.0.cmp(&a.0));
        for path in removes {
            if let Ok(slot) = locate(&mut work, path) {
                slot.remove();
            }
        }
        *item = work;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::number::Number;

    fn n(s: &str) -> AttributeValue {
        AttributeValue::N(Number::parse(s).unwrap_or_else(|_| Number::zero()))
    }

    fn run(text: &str, item: &mut Item) -> Result<(), String> {
        let mut subs = Substitutions::new(
            Default::default(),
            [
                (":one".to_owned(), n("1")),
                (":l".to_owned(), AttributeValue::L(vec![n("9")])),
            ]
            .into(),
        );
        parse_update(text, &mut subs)
            .and_then(|u| u.apply(item))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn failed_updates_leave_the_item_alone() {
        let mut item: Item = [("a".to_owned(), n("1"))].into();
        let before = item.clone();
        assert!(run("SET a = a + :one, b.c = :one", &mut item).is_err());
        assert_eq!(item, before);
    }

    #[test]
    fn nested_sets_and_list_appends() {
        let mut item: Item = [
            ("m".to_owned(), AttributeValue::M(Item::new())),
            ("l".to_owned(), AttributeValue::L(vec![n("1"), n("2")])),
        ]
        .into();
        run(
            "SET m.x = :one, l[5] = :one, l[0] = l[1] ADD m.y :one",
            &mut item,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            item.get("l"),
            Some(&AttributeValue::L(vec![n("2"), n("2"), n("1")]))
        );
        assert_eq!(
            item.get("m"),
            Some(&AttributeValue::M(
                [("x".to_owned(), n("1")), ("y".to_owned(), n("1"))].into()
            ))
        );
    }

    #[test]
    fn paths_lists_every_target() {
        let mut subs = Substitutions::new(Default::default(), [(":one".to_owned(), n("1"))].into());
        let u = parse_update("SET a = :one REMOVE b.c ADD d :one", &mut subs)
            .unwrap_or_else(|e| panic!("{e}"));
        let tops: Vec<&str> = u.paths().map(Path::top).collect();
        assert_eq!(tops, vec!["a", "b", "d"]);
    }

    #[test]
    fn parenthesized_right_hand_sides() {
        let mut item: Item = [("a".to_owned(), n("1"))].into();
        run("SET b = (a + :one), c = (a) - (:one)", &mut item).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(item.get("b"), Some(&n("2")));
        assert_eq!(item.get("c"), Some(&n("0")));
    }
}
