//! Maps a field path back to a byte range of the original text, using toml_edit's spans, so that
//! every error (syntax, type, or semantic) can name a line and column.

use std::ops::Range;

use toml_edit::{ImDocument, Item, Table, Value};

use crate::diagnostic::{FieldPath, Position, Segment};

pub struct SourceMap<'a> {
    text: &'a str,
    doc: ImDocument<&'a str>,
}

enum Node<'d> {
    Table(&'d Table),
    Item(&'d Item),
    Value(&'d Value),
}

impl<'a> SourceMap<'a> {
    pub fn parse(text: &'a str) -> Result<Self, toml_edit::TomlError> {
        Ok(Self {
            text,
            doc: ImDocument::parse(text)?,
        })
    }

    /// The position of the value at `path`, or of the nearest enclosing thing that has one.
    pub fn position(&self, path: &FieldPath) -> Option<Position> {
        self.span(path, false)
            .map(|r| Position::of_offset(self.text, r.start))
    }

    /// The position of the key that names the value at `path` (for "unknown field" errors).
    pub fn key_position(&self, path: &FieldPath) -> Option<Position> {
        self.span(path, true)
            .map(|r| Position::of_offset(self.text, r.start))
    }

    fn span(&self, path: &FieldPath, prefer_key: bool) -> Option<Range<usize>> {
        let mut node = Node::Table(self.doc.as_table());
        let mut best: Option<Range<usize>> = None;
        let last = path.0.len().saturating_sub(1);
        for (i, seg) in path.0.iter().enumerate() {
            let next = match (seg, &node) {
                (Segment::Key(k), Node::Table(t)) => t
                    .get_key_value(k)
                    .map(|(key, item)| (key.span(), item.span(), Node::Item(item))),
                (Segment::Key(k), Node::Item(Item::Table(t))) => t
                    .get_key_value(k)
                    .map(|(key, item)| (key.span(), item.span(), Node::Item(item))),
                (Segment::Key(k), Node::Item(Item::Value(Value::InlineTable(t))))
                | (Segment::Key(k), Node::Value(Value::InlineTable(t))) => t
                    .get_key_value(k)
                    .map(|(key, item)| (key.span(), item.span(), Node::Item(item))),
                (Segment::Index(n), Node::Item(Item::ArrayOfTables(a))) => {
                    a.get(*n).map(|t| (None, t.span(), Node::Table(t)))
                }
                (Segment::Index(n), Node::Item(Item::Value(Value::Array(a))))
                | (Segment::Index(n), Node::Value(Value::Array(a))) => {
                    a.get(*n).map(|v| (None, v.span(), Node::Value(v)))
                }
                _ => None,
            };
            let Some((key_span, value_span, child)) = next else {
                break;
            };
            let chosen = if prefer_key && i == last {
                key_span.or(value_span)
            } else {
                value_span.or(key_span)
            };
            if chosen.is_some() {
                best = chosen;
            }
            node = child;
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_values_in_tables_arrays_and_inline_tables() {
        let text = "[functions.ingest]\nruntime = \"provided\"\ntimeout = 30\nevents = [{ queue = \"q\" }]\n\n[[apis.a.routes]]\nroute = \"GET /\"\n";
        let map = SourceMap::parse(text).unwrap_or_else(|e| panic!("{e}"));
        let at = |p: FieldPath| map.position(&p).map(|p| (p.line, p.column));
        assert_eq!(
            at(FieldPath::of(&["functions", "ingest", "timeout"])),
            Some((3, 11))
        );
        assert_eq!(
            at(FieldPath::of(&["functions", "ingest", "events"])
                .index(0)
                .key("queue")),
            Some((4, 21))
        );
        assert_eq!(
            at(FieldPath::of(&["apis", "a", "routes"])
                .index(0)
                .key("route")),
            Some((7, 9))
        );
        let key = map.key_position(&FieldPath::of(&["functions", "ingest", "timeout"]));
        assert_eq!(key.map(|p| (p.line, p.column)), Some((3, 1)));
    }
}
