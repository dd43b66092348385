//! SQL that drops prepared statements: `DEALLOCATE [PREPARE] name | ALL` and `DISCARD ALL`.
//!
//! Server connections hold statements shared by every client (see `prepared.rs`), named by
//! content. A client's SQL `DEALLOCATE ALL` sent as it is would drop them for everybody while the
//! proxy still believed the connection held them, and `DEALLOCATE name` of a statement the
//! client prepared through the protocol would fail: the server never saw the client's name. The
//! session uses this classification to keep its records true to what was sent, and to map a
//! client's name to the server's.

/// What a simple query's text drops.
#[derive(Debug, PartialEq, Eq)]
pub enum Dropping {
    /// Every prepared statement of the session (`DEALLOCATE ALL`, `DISCARD ALL`).
    All,
    /// One statement, by the name as the server compares it (unquoted names folded to lower
    /// case, quoted ones as written).
    Name(Vec<u8>),
    /// Some statement among several drops something: the connection's statements are to be
    /// taken as gone.
    Unknown,
}

/// What `sql` (a simple query's text) drops, if anything. Called only for queries the pinning
/// scan did not find surely plain, so plain queries pay nothing for it.
pub fn classify(sql: &[u8]) -> Option<Dropping> {
    let statements: Vec<&[u8]> = sql
        .split(|c| *c == b';')
        .map(trim)
        .filter(|s| !s.is_empty())
        .collect();
    let drops = |s: &&[u8]| {
        let w = first_word(s);
        w.eq_ignore_ascii_case(b"deallocate") || w.eq_ignore_ascii_case(b"discard")
    };
    match statements.as_slice() {
        [one] => single(one),
        many if many.iter().any(drops) => Some(Dropping::Unknown),
        _ => None,
    }
}

fn single(s: &[u8]) -> Option<Dropping> {
    let (first, rest) = split_word(s);
    if first.eq_ignore_ascii_case(b"discard") {
        return rest.eq_ignore_ascii_case(b"all").then_some(Dropping::All);
    }
    if !first.eq_ignore_ascii_case(b"deallocate") {
        return None;
    }
    // `DEALLOCATE PREPARE x`, but `DEALLOCATE prepare` names a statement called "prepare".
    let (word, tail) = split_word(rest);
    let target = if word.eq_ignore_ascii_case(b"prepare") && !tail.is_empty() {
        tail
    } else {
        rest
    };
    if target.eq_ignore_ascii_case(b"all") {
        return Some(Dropping::All);
    }
    if target.starts_with(b"\"") {
        return Some(quoted(target).map_or(Dropping::Unknown, Dropping::Name));
    }
    if !target.is_empty() && target.iter().all(|c| is_ident(*c)) {
        return Some(Dropping::Name(target.to_ascii_lowercase()));
    }
    // Something this does not understand (a comment, an odd form): assume the worst.
    Some(Dropping::Unknown)
}

/// The name inside `"..."` (with `""` standing for a quote), if that is all `s` is.
fn quoted(s: &[u8]) -> Option<Vec<u8>> {
    let inner = s.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    let mut name = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == b'"' {
            if inner.get(i + 1) != Some(&b'"') {
                return None;
            }
            i += 1;
        }
        name.push(inner[i]);
        i += 1;
    }
    Some(name)
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

fn first_word(s: &[u8]) -> &[u8] {
    split_word(s).0
}

/// The first whitespace-separated word and the (trimmed) rest.
fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    let s = trim(s);
    let end = s
        .iter()
        .position(|c| c.is_ascii_whitespace())
        .unwrap_or(s.len());
    (&s[..end], trim(&s[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(sql: &str) -> Option<Dropping> {
        classify(sql.as_bytes())
    }

    #[test]
    fn the_forms_drivers_send() {
        assert_eq!(c("DEALLOCATE ALL"), Some(Dropping::All));
        assert_eq!(c("  deallocate prepare all ; "), Some(Dropping::All));
        assert_eq!(c("DISCARD ALL"), Some(Dropping::All));
        assert_eq!(c("DEALLOCATE s1"), Some(Dropping::Name(b"s1".to_vec())));
        assert_eq!(c("DEALLOCATE S1"), Some(Dropping::Name(b"s1".to_vec())));
        assert_eq!(
            c("DEALLOCATE PREPARE \"_pg3_0\""),
            Some(Dropping::Name(b"_pg3_0".to_vec()))
        );
        assert_eq!(
            c("DEALLOCATE \"Mixed \"\"Case\"\"\""),
            Some(Dropping::Name(b"Mixed \"Case\"".to_vec()))
        );
        assert_eq!(
            c("DEALLOCATE prepare"),
            Some(Dropping::Name(b"prepare".to_vec()))
        );
    }

    #[test]
    fn other_statements_drop_nothing_or_are_taken_as_unknown() {
        assert_eq!(c("SELECT 1"), None);
        assert_eq!(c("DISCARD PLANS"), None);
        assert_eq!(c("DISCARD TEMP"), None);
        assert_eq!(c("SELECT 1; DEALLOCATE ALL"), Some(Dropping::Unknown));
        assert_eq!(c("DEALLOCATE /* x */ s1"), Some(Dropping::Unknown));
        assert_eq!(c("SELECT 1; SELECT 2"), None);
    }
}
