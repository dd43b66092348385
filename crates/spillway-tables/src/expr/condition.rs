//! Condition expressions (also used for FilterExpression and, before it is reshaped,
//! KeyConditionExpression): parsing with DynamoDB's precedence (comparisons, BETWEEN, IN and
//! functions bind tightest, then NOT, then AND, then OR) and evaluation against an item.

use std::borrow::Cow;
use std::cmp::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::check::{CONDITION_ORDER, Problems, Slot};
use super::lexer::{Cursor, Tok};
use super::path::{Path, at_path, parse_path};
use super::subs::Substitutions;
use super::{ExprError, ExprKind, MAX_IN_OPERANDS, check_text};
use crate::number::Number;
use crate::value::{AttributeValue, Item, ValueType};

const KEYWORDS: &[&str] = &["AND", "OR", "NOT", "BETWEEN", "IN"];

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Path(Path),
    Value(AttributeValue),
    /// `size(path)`: the attribute's length as a number.
    Size(Box<Operand>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Comparator {
    pub fn symbol(self) -> &'static str {
        match self {
            Comparator::Eq => "=",
            Comparator::Ne => "<>",
            Comparator::Lt => "<",
            Comparator::Le => "<=",
            Comparator::Gt => ">",
            Comparator::Ge => ">=",
        }
    }

    /// The comparator that holds with the operands swapped (`:v < a` is `a > :v`).
    pub fn flipped(self) -> Comparator {
        match self {
            Comparator::Lt => Comparator::Gt,
            Comparator::Le => Comparator::Ge,
            Comparator::Gt => Comparator::Lt,
            Comparator::Ge => Comparator::Le,
            same => same,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Compare(Comparator, Operand, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
    AttributeExists(Path),
    AttributeNotExists(Path),
    AttributeType(Path, ValueType),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
}

/// Parses a condition-shaped expression of `kind` (Condition, Filter or KeyCondition).
pub fn parse_condition(
    text: &str,
    kind: ExprKind,
    subs: &mut Substitutions,
) -> Result<Condition, ExprError> {
    check_text(kind, text)?;
    let mut p = Parser {
        cur: Cursor::new(text, kind),
        subs,
        problems: Problems::default(),
        last_group: None,
    };
    let node = p.or(false)?;
    if p.cur.peek().tok != Tok::Eof {
        return Err(p.cur.syntax_error());
    }
    let cond = p.condition(node)?;
    p.problems.into_result(kind, CONDITION_ORDER)?;
    Ok(cond)
}

/// What a sub-expression parsed to before its context says whether it must be a condition.
enum Node {
    Cond(Condition),
    Operand(Operand),
}

struct Parser<'t, 's> {
    cur: Cursor<'t>,
    subs: &'s mut Substitutions,
    problems: Problems,
    /// The last condition group closed: the position of its `(` and the one just after its `)`.
    last_group: Option<(usize, usize)>,
}

fn dummy() -> Condition {
    Condition::AttributeExists(Path::attr(""))
}

fn type_name(op: &Operand) -> Option<&'static str> {
    match op {
        Operand::Value(v) => Some(v.value_type().descriptor()),
        Operand::Size(_) => Some("N"),
        Operand::Path(_) => None,
    }
}

/// DynamoDB's `{N:5}` rendering of a literal in messages.
pub(crate) fn describe_value(v: &AttributeValue) -> String {
    let body = match v {
        AttributeValue::S(s) => s.clone(),
        AttributeValue::N(n) => n.to_string(),
        AttributeValue::B(b) => BASE64.encode(b),
        other => other.to_json().to_string(),
    };
    format!("AttributeValue: {{{}:{body}}}", v.value_type().descriptor())
}

impl Parser<'_, '_> {
    fn condition(&mut self, node: Node) -> Result<Condition, ExprError> {
        match node {
            Node::Cond(c) => Ok(c),
            Node::Operand(Operand::Size(_)) => {
                self.problems.record(Slot::MisusedFunction, || {
                    "The function is not allowed to be used this way in an expression; function: size".into()
                });
                Ok(dummy())
            }
            Node::Operand(_) => Err(self.cur.syntax_error()),
        }
    }

    fn or(&mut self, allow_operand: bool) -> Result<Node, ExprError> {
        let mut left = self.and(allow_operand)?;
        while self.cur.at_keyword("OR") {
            let l = self.condition(left)?;
            self.cur.next();
            let r = self.and(false)?;
            let r = self.condition(r)?;
            left = Node::Cond(Condition::Or(Box::new(l), Box::new(r)));
        }
        Ok(left)
    }

    fn and(&mut self, allow_operand: bool) -> Result<Node, ExprError> {
        let mut left = self.not(allow_operand)?;
        while self.cur.at_keyword("AND") {
            let l = self.condition(left)?;
            self.cur.next();
            let r = self.not(false)?;
            let r = self.condition(r)?;
            left = Node::Cond(Condition::And(Box::new(l), Box::new(r)));
        }
        Ok(left)
    }

    fn not(&mut self, allow_operand: bool) -> Result<Node, ExprError> {
        if self.cur.at_keyword("NOT") {
            self.cur.next();
            let inner = self.not(false)?;
            let inner = self.condition(inner)?;
            return Ok(Node::Cond(Condition::Not(Box::new(inner))));
        }
        self.primary(allow_operand)
    }

    fn primary(&mut self, allow_operand: bool) -> Result<Node, ExprError> {
        let left = if self.cur.peek().tok == Tok::LParen {
            let open = self.cur.pos();
            self.cur.next();
            let doubled = self.cur.peek().tok == Tok::LParen;
            let inner = self.or(true)?;
            // `((x))`: the group that opened right after this one closes right where this one
            // closes. (Only that group: in `((a) OR NOT (b))` the last group to close is
            // `(b)`, and the outer parentheses are needed.)
            if doubled && self.last_group == Some((open + 1, self.cur.pos())) {
                self.problems.record(Slot::Parens, || {
                    "The expression has redundant parentheses;".into()
                });
            }
            self.cur.expect(Tok::RParen)?;
            self.last_group = Some((open, self.cur.pos()));
            match inner {
                Node::Operand(op) => op,
                other => return Ok(other),
            }
        } else {
            match self.operand_or_function()? {
                Node::Operand(op) => op,
                // `attribute_exists(a) = :v`: a condition function used as an operand.
                Node::Cond(c) if self.at_comparison() => {
                    let name = function_name(&c);
                    self.problems.record(Slot::MisusedFunction, || {
                        format!("The function is not allowed to be used this way in an expression; function: {name}")
                    });
                    Operand::Value(AttributeValue::Null)
                }
                other => return Ok(other),
            }
        };
        self.comparison_tail(left, allow_operand)
    }

    fn at_comparison(&self) -> bool {
        matches!(
            self.cur.peek().tok,
            Tok::Eq | Tok::Ne | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge
        ) || self.cur.at_keyword("BETWEEN")
            || self.cur.at_keyword("IN")
    }

    fn comparison_tail(&mut self, left: Operand, allow_operand: bool) -> Result<Node, ExprError> {
        let t = self.cur.peek();
        let comparator = match t.tok {
            Tok::Eq => Some(Comparator::Eq),
            Tok::Ne => Some(Comparator::Ne),
            Tok::Lt => Some(Comparator::Lt),
            Tok::Le => Some(Comparator::Le),
            Tok::Gt => Some(Comparator::Gt),
            Tok::Ge => Some(Comparator::Ge),
            _ => None,
        };
        if let Some(c) = comparator {
            self.cur.next();
            let right = self.operand_parens()?;
            if let (Operand::Path(a), Operand::Path(b)) = (&left, &right)
                && a == b
            {
                self.problems.record(Slot::Distinct, || {
                        format!("The first operand must be distinct from the remaining operands for this operator or function; operator: {}, first operand: {a}", c.symbol())
                    });
            }
            return Ok(Node::Cond(Condition::Compare(c, left, right)));
        }
        if self.cur.at_keyword("BETWEEN") {
            self.cur.next();
            let low = self.operand_parens()?;
            if !self.cur.at_keyword("AND") {
                return Err(self.cur.syntax_error());
            }
            self.cur.next();
            let high = self.operand_parens()?;
            if let (Operand::Value(lo), Operand::Value(hi)) = (&low, &high) {
                if lo.value_type() != hi.value_type() {
                    self.problems.record(Slot::Function, || {
                        format!("The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: {}, upper bound operand: {}", describe_value(lo), describe_value(hi))
                    });
                } else if lo.compare(hi) == Some(Ordering::Greater) {
                    self.problems.record(Slot::Function, || {
                        format!("The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: {}, upper bound operand: {}", describe_value(lo), describe_value(hi))
                    });
                }
            }
            return Ok(Node::Cond(Condition::Between(left, low, high)));
        }
        if self.cur.at_keyword("IN") {
            self.cur.next();
            self.cur.expect(Tok::LParen)?;
            let mut list = vec![self.operand_parens()?];
            while self.cur.eat(Tok::Comma) {
                list.push(self.operand_parens()?);
            }
            self.cur.expect(Tok::RParen)?;
            if list.len() > MAX_IN_OPERANDS {
                let n = list.len();
                self.problems.record(Slot::Limit, || {
                    format!("The IN operator is provided with too many operands; number of operands: {n}")
                });
            }
            return Ok(Node::Cond(Condition::In(left, list)));
        }
        if allow_operand {
            Ok(Node::Operand(left))
        } else if let Operand::Size(_) = left {
            Ok(Node::Operand(left))
        } else {
            Err(self.cur.syntax_error())
        }
    }

    /// An operand, possibly in parentheses, where only an operand may stand.
    fn operand_parens(&mut self) -> Result<Operand, ExprError> {
        if self.cur.peek().tok == Tok::LParen {
            self.cur.next();
            if self.cur.peek().tok == Tok::LParen {
                let op = self.operand_parens()?;
                self.cur.expect(Tok::RParen)?;
                self.problems.record(Slot::Parens, || {
                    "The expression has redundant parentheses;".into()
                });
                return Ok(op);
            }
            let op = self.operand()?;
            self.cur.expect(Tok::RParen)?;
            return Ok(op);
        }
        self.operand()
    }

    fn operand(&mut self) -> Result<Operand, ExprError> {
        match self.operand_or_function()? {
            Node::Operand(op) => Ok(op),
            Node::Cond(c) => {
                let name = function_name(&c);
                self.problems.record(Slot::MisusedFunction, || {
                    format!("The function is not allowed to be used this way in an expression; function: {name}")
                });
                Ok(Operand::Value(AttributeValue::Null))
            }
        }
    }

    fn operand_or_function(&mut self) -> Result<Node, ExprError> {
        let t = self.cur.peek();
        match t.tok {
            Tok::ValuePlaceholder => {
                self.cur.next();
                let text = self.cur.slice(t);
                match self.subs.value(text) {
                    Some(v) => Ok(Node::Operand(Operand::Value(v.clone()))),
                    None => {
                        self.problems.record(Slot::AttrValue, || {
                            format!("An expression attribute value used in expression is not defined; attribute value: {text}")
                        });
                        Ok(Node::Operand(Operand::Value(AttributeValue::Null)))
                    }
                }
            }
            Tok::Ident
                if self.cur.peek_at(1).tok == Tok::LParen && at_path(&self.cur, KEYWORDS) =>
            {
                self.function()
            }
            _ if at_path(&self.cur, KEYWORDS) => Ok(Node::Operand(Operand::Path(parse_path(
                &mut self.cur,
                self.subs,
                &mut self.problems,
                KEYWORDS,
            )?))),
            _ => Err(self.cur.syntax_error()),
        }
    }

    fn function(&mut self) -> Result<Node, ExprError> {
        let name_tok = self.cur.next();
        let name = self.cur.slice(name_tok);
        self.cur.expect(Tok::LParen)?;
        let mut args = vec![self.function_arg()?];
        while self.cur.eat(Tok::Comma) {
            args.push(self.function_arg()?);
        }
        self.cur.expect(Tok::RParen)?;
        let arity = match name {
            "attribute_exists" | "attribute_not_exists" | "size" => 1,
            "attribute_type" | "begins_with" | "contains" => 2,
            _ => {
                self.problems.record(Slot::UnknownFunction, || {
                    format!("Invalid function name; function: {name}")
                });
                return Ok(Node::Cond(dummy()));
            }
        };
        if args.len() != arity {
            let n = args.len();
            self.problems.record(Slot::Operand, || {
                format!("Incorrect number of operands for operator or function; operator or function: {name}, number of operands: {n}")
            });
            return Ok(if name == "size" {
                Node::Operand(Operand::Size(Box::new(Operand::Value(
                    AttributeValue::Null,
                ))))
            } else {
                Node::Cond(dummy())
            });
        }
        if let [Operand::Path(a), Operand::Path(b)] = args.as_slice()
            && a == b
        {
            self.problems.record(Slot::Distinct, || {
                    format!("The first operand must be distinct from the remaining operands for this operator or function; operator: {name}, first operand: {a}")
                });
        }
        let mut args = args.into_iter();
        let (Some(first), second) = (args.next(), args.next()) else {
            return Ok(Node::Cond(dummy()));
        };
        let wrong_type = |problems: &mut Problems, ty: &str| {
            problems.record(Slot::Function, || {
                format!("Incorrect operand type for operator or function; operator or function: {name}, operand type: {ty}")
            });
        };
        let needs_path = |problems: &mut Problems| {
            problems.record(Slot::Function, || {
                format!(
                    "Operator or function requires a document path; operator or function: {name}"
                )
            });
        };
        Ok(match (name, first, second) {
            ("attribute_exists", Operand::Path(p), _) => Node::Cond(Condition::AttributeExists(p)),
            ("attribute_not_exists", Operand::Path(p), _) => {
                Node::Cond(Condition::AttributeNotExists(p))
            }
            ("attribute_exists" | "attribute_not_exists", _, _) => {
                needs_path(&mut self.problems);
                Node::Cond(dummy())
            }
            ("size", op, _) => {
                if let Some(ty @ ("N" | "BOOL" | "NULL")) = type_name(&op) {
                    wrong_type(&mut self.problems, ty);
                }
                Node::Operand(Operand::Size(Box::new(op)))
            }
            ("attribute_type", p, Some(t)) => {
                let ty = match &t {
                    Operand::Value(AttributeValue::S(s)) => match ValueType::from_descriptor(s) {
                        Some(ty) => Some(ty),
                        None => {
                            self.problems.record(Slot::Function, || {
                                format!("Invalid attribute type name found; type: {s}, valid types: {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}")
                            });
                            None
                        }
                    },
                    other => {
                        wrong_type(
                            &mut self.problems,
                            type_name(other).unwrap_or("{NS,SS,L,BS,N,M,B,BOOL,NULL,S}"),
                        );
                        None
                    }
                };
                match (p, ty) {
                    (Operand::Path(p), Some(ty)) => Node::Cond(Condition::AttributeType(p, ty)),
                    (Operand::Path(_), None) => Node::Cond(dummy()),
                    _ => {
                        needs_path(&mut self.problems);
                        Node::Cond(dummy())
                    }
                }
            }
            ("begins_with", a, Some(b)) => {
                for op in [&a, &b] {
                    if let Some(ty) = type_name(op).filter(|t| *t != "S" && *t != "B") {
                        wrong_type(&mut self.problems, ty);
                    }
                }
                Node::Cond(Condition::BeginsWith(a, b))
            }
            ("contains", a, Some(b)) => Node::Cond(Condition::Contains(a, b)),
            _ => Node::Cond(dummy()),
        })
    }

    fn function_arg(&mut self) -> Result<Operand, ExprError> {
        self.operand_parens()
    }
}

fn function_name(c: &Condition) -> &'static str {
    match c {
        Condition::AttributeExists(_) => "attribute_exists",
        Condition::AttributeNotExists(_) => "attribute_not_exists",
        Condition::AttributeType(..) => "attribute_type",
        Condition::BeginsWith(..) => "begins_with",
        Condition::Contains(..) => "contains",
        _ => "unknown",
    }
}

/// The value an operand has for an item; `None` when a path does not resolve.
fn resolve<'a>(op: &'a Operand, item: &'a Item) -> Option<Cow<'a, AttributeValue>> {
    match op {
        Operand::Path(p) => p.get(item).map(Cow::Borrowed),
        Operand::Value(v) => Some(Cow::Borrowed(v)),
        Operand::Size(inner) => {
            let v = resolve(inner, item)?;
            let n = size_of(&v)?;
            Number::parse(&n.to_string())
                .ok()
                .map(|n| Cow::Owned(AttributeValue::N(n)))
        }
    }
}

/// `size()`: string length (UTF-8 bytes, as DynamoDB measures strings), binary length,
/// element counts for sets, lists and maps; nothing for other types.
pub(crate) fn size_of(v: &AttributeValue) -> Option<usize> {
    Some(match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::B(b) => b.len(),
        AttributeValue::Ss(s) => s.len(),
        AttributeValue::Ns(n) => n.len(),
        AttributeValue::Bs(b) => b.len(),
        AttributeValue::L(l) => l.len(),
        AttributeValue::M(m) => m.len(),
        _ => return None,
    })
}

pub(crate) fn contains(haystack: &AttributeValue, needle: &AttributeValue) -> bool {
    match (haystack, needle) {
        (AttributeValue::S(h), AttributeValue::S(n)) => h.contains(n.as_str()),
        (AttributeValue::B(h), AttributeValue::B(n)) => {
            n.is_empty() || h.windows(n.len()).any(|w| w == n.as_slice())
        }
        (AttributeValue::Ss(h), AttributeValue::S(n)) => h
            .binary_search_by(|m| m.as_bytes().cmp(n.as_bytes()))
            .is_ok(),
        (AttributeValue::Ns(h), AttributeValue::N(n)) => h.binary_search(n).is_ok(),
        (AttributeValue::Bs(h), AttributeValue::B(n)) => h.binary_search(n).is_ok(),
        (AttributeValue::L(h), n) => h.iter().any(|m| m == n),
        _ => false,
    }
}

pub(crate) fn begins_with(value: &AttributeValue, prefix: &AttributeValue) -> bool {
    match (value, prefix) {
        (AttributeValue::S(v), AttributeValue::S(p)) => v.starts_with(p.as_str()),
        (AttributeValue::B(v), AttributeValue::B(p)) => v.starts_with(p),
        _ => false,
    }
}

pub(crate) fn compare_holds(
    c: Comparator,
    a: Option<&AttributeValue>,
    b: Option<&AttributeValue>,
) -> bool {
    match c {
        Comparator::Eq => matches!((a, b), (Some(a), Some(b)) if a == b),
        Comparator::Ne => !matches!((a, b), (Some(a), Some(b)) if a == b),
        _ => {
            let (Some(a), Some(b)) = (a, b) else {
                return false;
            };
            let Some(ord) = a.compare(b) else {
                return false;
            };
            match c {
                Comparator::Lt => ord == Ordering::Less,
                Comparator::Le => ord != Ordering::Greater,
                Comparator::Gt => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            }
        }
    }
}

impl Condition {
    /// Whether `item` satisfies the condition. Missing attributes and mismatched types make
    /// comparisons false (except `<>`, which is then true), never errors.
    pub fn eval(&self, item: &Item) -> bool {
        match self {
            Condition::Compare(c, a, b) => {
                let a = resolve(a, item);
                let b = resolve(b, item);
                compare_holds(*c, a.as_deref(), b.as_deref())
            }
            Condition::Between(x, lo, hi) => {
                let (Some(x), Some(lo), Some(hi)) =
                    (resolve(x, item), resolve(lo, item), resolve(hi, item))
                else {
                    return false;
                };
                matches!(x.compare(&lo), Some(Ordering::Greater | Ordering::Equal))
                    && matches!(x.compare(&hi), Some(Ordering::Less | Ordering::Equal))
            }
            Condition::In(x, list) => {
                let Some(x) = resolve(x, item) else {
                    return false;
                };
                list.iter()
                    .any(|op| resolve(op, item).is_some_and(|v| *v == *x))
            }
            Condition::And(a, b) => a.eval(item) && b.eval(item),
            Condition::Or(a, b) => a.eval(item) || b.eval(item),
            Condition::Not(a) => !a.eval(item),
            Condition::AttributeExists(p) => p.get(item).is_some(),
            Condition::AttributeNotExists(p) => p.get(item).is_none(),
            Condition::AttributeType(p, ty) => p.get(item).is_some_and(|v| v.value_type() == *ty),
            Condition::BeginsWith(a, b) => match (resolve(a, item), resolve(b, item)) {
                (Some(a), Some(b)) => begins_with(&a, &b),
                _ => false,
            },
            Condition::Contains(a, b) => match (resolve(a, item), resolve(b, item)) {
                (Some(a), Some(b)) => contains(&a, &b),
                _ => false,
            },
        }
    }

    /// Every path the condition reads (for callers that check key attributes).
    pub fn paths(&self) -> Vec<&Path> {
        fn op<'a>(o: &'a Operand, out: &mut Vec<&'a Path>) {
            match o {
                Operand::Path(p) => out.push(p),
                Operand::Size(inner) => op(inner, out),
                Operand::Value(_) => {}
            }
        }
        fn walk<'a>(c: &'a Condition, out: &mut Vec<&'a Path>) {
            match c {
                Condition::Compare(_, a, b)
                | Condition::BeginsWith(a, b)
                | Condition::Contains(a, b) => {
                    op(a, out);
                    op(b, out);
                }
                Condition::Between(a, b, d) => {
                    op(a, out);
                    op(b, out);
                    op(d, out);
                }
                Condition::In(a, list) => {
                    op(a, out);
                    list.iter().for_each(|o| op(o, out));
                }
                Condition::And(a, b) | Condition::Or(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                Condition::Not(a) => walk(a, out),
                Condition::AttributeExists(p)
                | Condition::AttributeNotExists(p)
                | Condition::AttributeType(p, _) => out.push(p),
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs() -> Substitutions {
        Substitutions::new(
            [("#a".to_owned(), "a".to_owned())].into(),
            [(":v".to_owned(), AttributeValue::S("x".into()))].into(),
        )
    }

    fn parse(text: &str) -> Result<Condition, String> {
        parse_condition(text, ExprKind::Condition, &mut subs()).map_err(|e| e.to_string())
    }

    #[test]
    fn parenthesized_operands_and_conditions() {
        assert!(parse("(a) = :v").is_ok());
        assert!(parse("(a = :v) AND (#a = :v OR NOT b = :v)").is_ok());
        assert_eq!(
            parse("NOT (a)").err().as_deref(),
            Some("Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \")\"")
        );
        assert_eq!(
            parse("a = :v AND").err().as_deref(),
            Some("Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"AND\"")
        );
        assert_eq!(
            parse("a = ((:v))").err().as_deref(),
            Some("Invalid ConditionExpression: The expression has redundant parentheses;")
        );
    }

    #[test]
    fn precedence_is_not_and_or() {
        let Ok(Condition::Or(_, right)) = parse("a = :v OR NOT b = :v AND c = :v") else {
            panic!("OR must be outermost");
        };
        assert!(matches!(*right, Condition::And(ref l, _) if matches!(**l, Condition::Not(_))));
    }

    #[test]
    fn keywords_ignore_case_but_functions_do_not() {
        assert!(parse("a between :v and :v oR a In (:v)").is_ok());
        assert_eq!(
            parse("Begins_With(a, :v)").err().as_deref(),
            Some("Invalid ConditionExpression: Invalid function name; function: Begins_With")
        );
    }

    #[test]
    fn deep_paths_are_refused() {
        let deep = format!("attribute_exists(a{})", ".b".repeat(32));
        assert_eq!(
            parse(&deep).err().as_deref(),
            Some(
                "Invalid ConditionExpression: The document path has too many nesting levels; nesting levels: 33"
            )
        );
    }

    #[test]
    fn evaluation_follows_dynamodb() {
        let item: Item = [
            ("s".to_owned(), AttributeValue::S("héllo".into())),
            ("b".to_owned(), AttributeValue::B(vec![1, 2, 3])),
            (
                "l".to_owned(),
                AttributeValue::L(vec![AttributeValue::S("x".into())]),
            ),
        ]
        .into();
        let mut s = Substitutions::new(
            Default::default(),
            [
                (":x".to_owned(), AttributeValue::S("x".into())),
                (":ll".to_owned(), AttributeValue::S("ll".into())),
                (
                    ":six".to_owned(),
                    AttributeValue::N(Number::parse("6").unwrap_or_else(|_| Number::zero())),
                ),
                (":b".to_owned(), AttributeValue::B(vec![2, 3])),
            ]
            .into(),
        );
        let mut check = |text: &str| {
            parse_condition(text, ExprKind::Filter, &mut s)
                .unwrap_or_else(|e| panic!("{text}: {e}"))
                .eval(&item)
        };
        assert!(check("contains(s, :ll)"));
        assert!(check("contains(l, :x)"));
        assert!(check("contains(b, :b)"));
        assert!(!check("begins_with(b, :b)"));
        assert!(check("size(s) = :six"), "string size counts UTF-8 bytes");
        assert!(!check("s < :six"));
        assert!(check("NOT s = :six"));
    }
}
