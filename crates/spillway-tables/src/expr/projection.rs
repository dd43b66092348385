//! Projection expressions (`a, b.c, d[1]`) and trimming an item down to them.

use std::collections::BTreeMap;

use super::check::{PROJECTION_ORDER, Problems};
use super::lexer::{Cursor, Tok};
use super::path::{Path, PathElem, check_overlap, parse_path, step};
use super::subs::Substitutions;
use super::{ExprError, ExprKind, check_text};
use crate::value::{AttributeValue, Item};

/// Parses a ProjectionExpression into its paths.
pub fn parse_projection(text: &str, subs: &mut Substitutions) -> Result<Vec<Path>, ExprError> {
    let kind = ExprKind::Projection;
    check_text(kind, text)?;
    let mut cur = Cursor::new(text, kind);
    let mut problems = Problems::default();
    let mut paths = Vec::new();
    let mut taken = Vec::new();
    loop {
        let path = parse_path(&mut cur, subs, &mut problems, &[])?;
        check_overlap(&mut taken, &path, &mut problems);
        paths.push(path);
        if !cur.eat(Tok::Comma) {
            break;
        }
    }
    if cur.peek().tok != Tok::Eof {
        return Err(cur.syntax_error());
    }
    problems.into_result(kind, PROJECTION_ORDER)?;
    Ok(paths)
}

/// The part of a projected value picked so far.
enum Picked {
    Whole(AttributeValue),
    Map(BTreeMap<String, Picked>),
    /// List elements by their index in the source; emitted compacted in index order.
    List(BTreeMap<usize, Picked>),
}

impl Picked {
    fn into_value(self) -> AttributeValue {
        match self {
            Picked::Whole(v) => v,
            Picked::Map(m) => {
                AttributeValue::M(m.into_iter().map(|(k, v)| (k, v.into_value())).collect())
            }
            Picked::List(l) => AttributeValue::L(l.into_values().map(Picked::into_value).collect()),
        }
    }
}

fn pick(source: &AttributeValue, rest: &[PathElem], into: &mut Option<Picked>) {
    let Some((elem, deeper)) = rest.split_first() else {
        *into = Some(Picked::Whole(source.clone()));
        return;
    };
    let Some(child) = step(source, elem) else {
        return;
    };
    if matches!(into, Some(Picked::Whole(_))) {
        return;
    }
    match elem {
        PathElem::Attr(k) => {
            let slot = into.get_or_insert_with(|| Picked::Map(BTreeMap::new()));
            if let Picked::Map(m) = slot {
                let mut entry = m.remove(k);
                pick(child, deeper, &mut entry);
                if let Some(e) = entry {
                    m.insert(k.clone(), e);
                }
            }
        }
        PathElem::Index(i) => {
            let slot = into.get_or_insert_with(|| Picked::List(BTreeMap::new()));
            if let Picked::List(l) = slot {
                let mut entry = l.remove(i);
                pick(child, deeper, &mut entry);
                if let Some(e) = entry {
                    l.insert(*i, e);
                }
            }
        }
    }
}

/// The item trimmed to `paths`: nested maps keep only the projected members, and list
/// elements picked by index come back as a list of just those elements in index order.
pub fn project(item: &Item, paths: &[Path]) -> Item {
    let mut out: BTreeMap<String, Option<Picked>> = BTreeMap::new();
    for path in paths {
        let Some((PathElem::Attr(top), rest)) = path.0.split_first() else {
            continue;
        };
        let Some(value) = item.get(top) else { continue };
        let entry = out.entry(top.clone()).or_insert(None);
        pick(value, rest, entry);
    }
    out.into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v.into_value())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_picks_compact_in_index_order_and_nest() {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let inner = AttributeValue::M([("x".to_owned(), s("1")), ("y".to_owned(), s("2"))].into());
        let item: Item = [(
            "l".to_owned(),
            AttributeValue::L(vec![s("a"), inner, s("c")]),
        )]
        .into();
        let paths = parse_projection("l[2], l[1].y", &mut Substitutions::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let got = project(&item, &paths);
        let want: Item = [(
            "l".to_owned(),
            AttributeValue::L(vec![
                AttributeValue::M([("y".to_owned(), s("2"))].into()),
                s("c"),
            ]),
        )]
        .into();
        assert_eq!(got, want);
    }
}
