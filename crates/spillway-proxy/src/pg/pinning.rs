//! Which statements change session state and so pin a client to its server connection, as RDS
//! Proxy documents for PostgreSQL: session-level `SET`/`RESET`, `LISTEN`, temporary tables,
//! sequences and views, `DECLARE ... WITH HOLD`, session advisory locks, `PREPARE`, `LOAD`,
//! `DISCARD`, `set_config(...)`, and statements longer than [`SIZE_LIMIT`].
//!
//! The classifier is a tokenizer, not a parser: it skips comments, string literals (standard,
//! `E''`, dollar-quoted) and quoted identifiers, splits on `;`, and looks at the leading keywords
//! of each statement and at function names. It errs towards pinning: a false pin costs
//! multiplexing, a missed pin corrupts another client's session.

use std::fmt;

/// Statements longer than this pin (their text is not classified).
pub const SIZE_LIMIT: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinReason {
    Set,
    Listen,
    TemporaryObject,
    CursorWithHold,
    AdvisoryLock,
    Prepare,
    Load,
    Discard,
    SetConfig,
    StatementSize,
    DoBlock,
}

impl fmt::Display for PinReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PinReason::Set => "SET of a session variable",
            PinReason::Listen => "LISTEN",
            PinReason::TemporaryObject => "a temporary table, sequence or view",
            PinReason::CursorWithHold => "DECLARE ... WITH HOLD",
            PinReason::AdvisoryLock => "a session advisory lock",
            PinReason::Prepare => "PREPARE",
            PinReason::Load => "LOAD",
            PinReason::Discard => "DISCARD",
            PinReason::SetConfig => "set_config()",
            PinReason::StatementSize => "a statement above the size limit",
            PinReason::DoBlock => "a DO block that may change session state",
        })
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Filters {
    /// RDS Proxy's EXCLUDE_VARIABLE_SETS.
    pub exclude_variable_sets: bool,
}

#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    /// An identifier immediately followed by `(`.
    Call(&'a str),
    /// A quoted identifier (without its quotes; doubled quotes left as they are).
    Quoted(&'a str),
    /// A dollar-quoted string's contents (a DO block's or a function's body).
    Dollar(&'a str),
    Semicolon,
    Other,
}

fn tokens(sql: &str) -> Vec<Token<'_>> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 1;
                i += 2;
                while i < b.len() && depth > 0 {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
            }
            b'\'' => {
                let escapes = i > 0 && matches!(b[i - 1], b'E' | b'e');
                i += 1;
                while i < b.len() {
                    if escapes && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
                out.push(Token::Other);
            }
            b'"' => {
                i += 1;
                let start = i;
                while i < b.len() {
                    if b[i] == b'"' {
                        if b.get(i + 1) == Some(&b'"') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                out.push(Token::Quoted(sql.get(start..i.min(b.len())).unwrap_or("")));
                i += 1;
            }
            b'$' => {
                // $tag$ ... $tag$ (a positional parameter like $1 is not a quote).
                let start = i;
                let positional = b.get(i + 1).is_some_and(u8::is_ascii_digit);
                let mut j = i + 1;
                while !positional && j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                if !positional && j < b.len() && b[j] == b'$' {
                    let tag = &sql[start..=j];
                    let body_start = j + 1;
                    let body_end = match sql[body_start..].find(tag) {
                        Some(end) => {
                            i = body_start + end + tag.len();
                            body_start + end
                        }
                        None => {
                            i = b.len();
                            b.len()
                        }
                    };
                    out.push(Token::Dollar(&sql[body_start..body_end]));
                } else {
                    i = j.max(i + 1);
                    out.push(Token::Other);
                }
            }
            b';' => {
                out.push(Token::Semicolon);
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$')
                {
                    i += 1;
                }
                let word = &sql[start..i];
                let mut k = i;
                while k < b.len() && b[k].is_ascii_whitespace() {
                    k += 1;
                }
                if b.get(k) == Some(&b'(') {
                    out.push(Token::Call(word));
                } else {
                    out.push(Token::Word(word));
                }
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                out.push(Token::Other);
                i += 1;
            }
        }
    }
    out
}

fn word<'a>(t: Option<&Token<'a>>) -> Option<&'a str> {
    match t {
        Some(Token::Word(w)) | Some(Token::Call(w)) => Some(w),
        _ => None,
    }
}

fn is(t: Option<&Token<'_>>, kw: &str) -> bool {
    word(t).is_some_and(|w| w.eq_ignore_ascii_case(kw))
}

/// Keywords that start a pinning statement, and fragments of the other things that pin. A
/// statement containing none of them cannot pin, which most queries show without tokenizing.
const FIRST_WORDS: &[&[u8]] = &[
    b"set",
    b"reset",
    b"listen",
    b"prepare",
    b"load",
    b"discard",
    b"create",
    b"declare",
    // An anonymous code block: its body is looked at as code, not as a string.
    b"do",
    // Does not pin, but drops prepared statements: the session looks at it (`deallocate.rs`).
    b"deallocate",
];

/// Fragments of the things that pin (or read session state) without a leading keyword, each
/// with the offset of the byte it is searched by: a byte rarer in SQL than a first letter.
const FRAGMENTS: [(&[u8], usize); 5] = [
    (b"advisory_lock", 8),
    (b"set_config", 3),
    (b"temp", 2),
    (b"currval", 4),
    (b"lastval", 4),
];

/// Whether `fragment`, whose byte `at` is at `sql[i]`, occurs there (either case).
fn fragment_at(sql: &[u8], i: usize, (fragment, at): (&[u8], usize)) -> bool {
    i >= at
        && sql
            .get(i - at..i - at + fragment.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(fragment))
}

/// Whether `sql` mentions `advisory_lock`, `set_config`, `temp` (`pg_temp` too), `currval` or
/// `lastval`. Runs over every query's text: vectorized searches for `_`, `m` and `v` (the
/// fragments' search bytes), whole fragments compared only where one is found. (A table of
/// first letters, one load and compare per byte, cost 1,230 instructions per pgbench query in
/// callgrind, a ninth of the proxy's work per transaction: a, c, l, s and t are everywhere.)
fn mentions_fragment(sql: &[u8]) -> bool {
    let [advisory, set_config, temp, ..] = FRAGMENTS;
    memchr::memchr_iter(b'_', sql)
        .any(|i| fragment_at(sql, i, advisory) || fragment_at(sql, i, set_config))
        || memchr::memchr2_iter(b'm', b'M', sql).any(|i| fragment_at(sql, i, temp))
        || reads_sequence_state(sql)
}

/// Whether `sql` may read the session's sequence values (`currval`, `lastval`), which
/// PostgreSQL keeps per session: another client's `nextval` must not show through.
pub fn reads_sequence_state(sql: &[u8]) -> bool {
    // Runs on the first query of many borrows: a vectorized search for the 'v' both words
    // share, whole words compared only there.
    let [.., currval, lastval] = FRAGMENTS;
    memchr::memchr2_iter(b'v', b'V', sql)
        .any(|i| fragment_at(sql, i, currval) || fragment_at(sql, i, lastval))
}

/// A cheap test that `sql` cannot pin; `false` means "tokenize and look". It runs on every
/// query, so it works on bytes (no UTF-8 check) and in two passes at most.
///
/// Splitting on every `;`, even one inside a literal or a comment, finds every real statement
/// start and some that are not: a spurious one can only send the query to the tokenizer, never
/// let a pinning statement through. A statement that starts with a comment is tokenized.
pub fn surely_plain(sql: &[u8]) -> bool {
    let statement_may_pin = |stmt: &[u8]| {
        let start = stmt
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .unwrap_or(stmt.len());
        let stmt = &stmt[start..];
        if stmt.starts_with(b"--") || stmt.starts_with(b"/*") {
            return true;
        }
        let end = stmt
            .iter()
            .position(|c| !c.is_ascii_alphabetic())
            .unwrap_or(stmt.len());
        let first = &stmt[..end];
        FIRST_WORDS.iter().any(|w| w.eq_ignore_ascii_case(first))
    };
    !sql.split(|c| *c == b';').any(statement_may_pin) && !mentions_fragment(sql)
}

/// Why the statement text `sql` (as it arrived, not necessarily valid UTF-8) pins the session.
pub fn classify_bytes(sql: &[u8], filters: Filters) -> Option<PinReason> {
    if sql.len() > SIZE_LIMIT {
        return Some(PinReason::StatementSize);
    }
    if surely_plain(sql) {
        return None;
    }
    classify(&String::from_utf8_lossy(sql), filters)
}

/// Why `sql` pins the session, or `None` if it does not.
pub fn classify(sql: &str, filters: Filters) -> Option<PinReason> {
    if sql.len() > SIZE_LIMIT {
        return Some(PinReason::StatementSize);
    }
    if surely_plain(sql.as_bytes()) {
        return None;
    }
    let toks = tokens(sql);
    for stmt in toks.split(|t| *t == Token::Semicolon) {
        if let Some(r) = classify_statement(stmt, filters) {
            return Some(r);
        }
    }
    None
}

/// Whether a token names a temporary schema (`pg_temp`, `pg_temp_3`): objects created there are
/// temporary whatever the statement's other words.
fn temp_schema(t: &Token<'_>) -> bool {
    match t {
        Token::Word(w) | Token::Call(w) => w.len() >= 7 && w[..7].eq_ignore_ascii_case("pg_temp"),
        Token::Quoted(w) => w.starts_with("pg_temp"),
        _ => false,
    }
}

/// Words in a DO block's body that can change session state, directly (`SET`, `set_config`,
/// `LISTEN`, a temporary table, a session lock...) or out of sight (`EXECUTE` of dynamic SQL).
const DO_BODY_WORDS: &[&str] = &[
    "set",
    "reset",
    "set_config",
    "listen",
    "prepare",
    "load",
    "discard",
    "execute",
    "temp",
    "temporary",
    "hold",
];

/// Whether a DO block (the tokens after `DO`) may change session state. Its body is code: a
/// body that is not dollar-quoted (an ordinary string literal) is not read, and pins.
fn do_block_pins(t: &[Token<'_>]) -> bool {
    let Some(body) = t.iter().find_map(|tok| match tok {
        Token::Dollar(b) => Some(*b),
        _ => None,
    }) else {
        return true;
    };
    tokens(body).iter().any(|tok| {
        temp_schema(tok)
            || match tok {
                Token::Word(w) | Token::Call(w) => {
                    DO_BODY_WORDS.iter().any(|k| w.eq_ignore_ascii_case(k))
                        || (w.to_ascii_lowercase().contains("advisory_lock")
                            && !w.to_ascii_lowercase().contains("xact"))
                }
                Token::Dollar(inner) => !inner.is_empty(),
                _ => false,
            }
    })
}

fn classify_statement(t: &[Token<'_>], filters: Filters) -> Option<PinReason> {
    if t.iter().any(temp_schema) {
        return Some(PinReason::TemporaryObject);
    }
    if is(t.first(), "do") {
        return do_block_pins(&t[1..]).then_some(PinReason::DoBlock);
    }
    for tok in t {
        if let Token::Call(name) = tok {
            let n = name.to_ascii_lowercase();
            if (n.starts_with("pg_advisory_lock") || n.starts_with("pg_try_advisory_lock"))
                && !n.contains("xact")
            {
                return Some(PinReason::AdvisoryLock);
            }
            if n == "set_config" && !filters.exclude_variable_sets {
                return Some(PinReason::SetConfig);
            }
        }
    }
    let first = t.first();
    if is(first, "set") || is(first, "reset") {
        let second = t.get(1);
        // SET LOCAL and SET TRANSACTION / SET CONSTRAINTS last only for the transaction.
        if is(second, "local") || is(second, "transaction") || is(second, "constraints") {
            return None;
        }
        if is(second, "session") && is(t.get(2), "characteristics") {
            return Some(PinReason::Set);
        }
        return (!filters.exclude_variable_sets).then_some(PinReason::Set);
    }
    if is(first, "listen") {
        return Some(PinReason::Listen);
    }
    if is(first, "prepare") {
        return Some(PinReason::Prepare);
    }
    if is(first, "load") {
        return Some(PinReason::Load);
    }
    if is(first, "discard") {
        return Some(PinReason::Discard);
    }
    if is(first, "create") {
        let mut i = 1;
        if is(t.get(i), "or") && is(t.get(i + 1), "replace") {
            i += 2;
        }
        if is(t.get(i), "global") || is(t.get(i), "local") {
            i += 1;
        }
        if is(t.get(i), "temp") || is(t.get(i), "temporary") {
            return Some(PinReason::TemporaryObject);
        }
        return None;
    }
    if is(first, "declare") {
        let hold = t
            .windows(2)
            .any(|w| is(w.first(), "with") && is(w.get(1), "hold"));
        return hold.then_some(PinReason::CursorWithHold);
    }
    if is(first, "select") {
        // SELECT ... INTO TEMP t
        let into_temp = t
            .windows(2)
            .any(|w| is(w.first(), "into") && (is(w.get(1), "temp") || is(w.get(1), "temporary")));
        return into_temp.then_some(PinReason::TemporaryObject);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain definition `mentions_fragment` must agree with: any fragment anywhere.
    fn mentions_fragment_slowly(sql: &[u8]) -> bool {
        FRAGMENTS
            .iter()
            .any(|(f, _)| sql.windows(f.len()).any(|w| w.eq_ignore_ascii_case(f)))
    }

    #[test]
    fn the_fragment_search_finds_what_a_plain_scan_finds() {
        let mut corpus: Vec<Vec<u8>> = vec![
            b"SELECT abalance FROM pgbench_accounts WHERE aid = 12345;".to_vec(),
            b"".to_vec(),
            b"_".to_vec(),
            b"temp".to_vec(),
            b"te".to_vec(),
            b"mp".to_vec(),
            b"v".to_vec(),
            "SELECT 'é_temp'".as_bytes().to_vec(),
        ];
        for (f, _) in FRAGMENTS {
            for case in [f.to_vec(), f.to_ascii_uppercase()] {
                for (pre, post) in [
                    ("", ""),
                    ("x", ""),
                    ("", "y"),
                    ("select ", "(1)"),
                    ("_", "_"),
                ] {
                    let mut q = pre.as_bytes().to_vec();
                    q.extend_from_slice(&case);
                    q.extend_from_slice(post.as_bytes());
                    corpus.push(q.clone());
                    // One byte short, at either end: no longer the fragment.
                    corpus.push(q[..q.len() - post.len() - 1].to_vec());
                    corpus.push(q[pre.len() + 1..].to_vec());
                }
            }
        }
        // Strings over an alphabet of the fragments' own letters, where near misses abound
        // (a fixed linear congruential sequence: the same cases every run).
        let alphabet = b"_admpsvtecuolriAMVT y";
        let mut x: u64 = 42;
        for len in 0..40 {
            for _ in 0..200 {
                let q: Vec<u8> = (0..len)
                    .map(|_| {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        alphabet[(x >> 33) as usize % alphabet.len()]
                    })
                    .collect();
                corpus.push(q);
            }
        }
        let mut found = 0;
        for q in &corpus {
            assert_eq!(
                mentions_fragment(q),
                mentions_fragment_slowly(q),
                "{:?}",
                String::from_utf8_lossy(q)
            );
            found += usize::from(mentions_fragment(q));
        }
        // The corpus exercises both answers.
        assert!(
            found > 20 && found < corpus.len() - 20,
            "{found} of {}",
            corpus.len()
        );
    }

    #[test]
    fn the_fast_path_takes_ordinary_queries_and_never_a_pinning_one() {
        for sql in [
            "SELECT abalance FROM pgbench_accounts WHERE aid = 42;",
            "select 1;  ",
            "UPDATE t SET x = 1",
            "BEGIN; UPDATE t SET x = 1; COMMIT;",
            "insert into audit values ($1, 'settings')",
        ] {
            assert!(surely_plain(sql.as_bytes()), "{sql}");
        }
        for sql in [
            "select 1; set x = 1",
            "select 1;\n  LISTEN x",
            "/* c */ set x = 1",
            "select 1; -- c\nset x = 1",
            "select pg_advisory_lock(1)",
            "select SET_CONFIG('a', 'b', false)",
            "create TEMP table t(x int)",
            "Discard all",
        ] {
            assert!(!surely_plain(sql.as_bytes()), "{sql}");
            assert_eq!(
                classify_bytes(sql.as_bytes(), Filters::default()),
                pin(sql),
                "{sql}"
            );
        }
        // Not UTF-8: classified all the same.
        assert_eq!(
            classify_bytes(b"SET application_name = '\xff'", Filters::default()),
            Some(PinReason::Set)
        );
        assert_eq!(classify_bytes(b"select '\xff';", Filters::default()), None);
    }

    fn pin(sql: &str) -> Option<PinReason> {
        classify(sql, Filters::default())
    }

    #[test]
    fn session_state_pins() {
        assert_eq!(pin("SET search_path = app"), Some(PinReason::Set));
        assert_eq!(
            pin("set session statement_timeout to 5"),
            Some(PinReason::Set)
        );
        assert_eq!(pin("RESET ALL"), Some(PinReason::Set));
        assert_eq!(pin("LISTEN jobs"), Some(PinReason::Listen));
        assert_eq!(
            pin("create temp table t (x int)"),
            Some(PinReason::TemporaryObject)
        );
        assert_eq!(
            pin("CREATE GLOBAL TEMPORARY TABLE t (x int)"),
            Some(PinReason::TemporaryObject)
        );
        assert_eq!(
            pin("CREATE OR REPLACE TEMP VIEW v AS SELECT 1"),
            Some(PinReason::TemporaryObject)
        );
        assert_eq!(
            pin("select * into temp t from x"),
            Some(PinReason::TemporaryObject)
        );
        assert_eq!(
            pin("DECLARE c CURSOR WITH HOLD FOR SELECT 1"),
            Some(PinReason::CursorWithHold)
        );
        assert_eq!(
            pin("SELECT pg_advisory_lock(42)"),
            Some(PinReason::AdvisoryLock)
        );
        assert_eq!(
            pin("select pg_try_advisory_lock_shared (1)"),
            Some(PinReason::AdvisoryLock)
        );
        assert_eq!(pin("PREPARE p AS SELECT 1"), Some(PinReason::Prepare));
        assert_eq!(pin("LOAD 'auto_explain'"), Some(PinReason::Load));
        assert_eq!(pin("DISCARD ALL"), Some(PinReason::Discard));
        assert_eq!(
            pin("SELECT set_config('a.b', 'c', false)"),
            Some(PinReason::SetConfig)
        );
        assert_eq!(pin("select 1; set x = 1"), Some(PinReason::Set));
        for sql in [
            "CREATE TABLE pg_temp.t (x int)",
            "create function PG_TEMP.f() returns int language sql as 'select 1'",
            "CREATE VIEW \"pg_temp\".v AS SELECT 1",
            "create table pg_temp_3.t (x int)",
        ] {
            assert_eq!(pin(sql), Some(PinReason::TemporaryObject), "{sql}");
        }
        for sql in [
            "DO $$ BEGIN PERFORM set_config('search_path', 'x', false); END $$",
            "do $body$ begin set search_path = x; end $body$",
            "DO LANGUAGE plpgsql $$ BEGIN EXECUTE 'SE' || 'T x = 1'; END $$",
            "DO $$ BEGIN CREATE TEMP TABLE t (x int); END $$",
            "DO $$ BEGIN PERFORM pg_advisory_lock(1); END $$",
            "DO 'BEGIN NULL; END'",
        ] {
            assert_eq!(pin(sql), Some(PinReason::DoBlock), "{sql}");
        }
        assert_eq!(pin("DO $$ BEGIN INSERT INTO t VALUES (1); END $$"), None);
        assert_eq!(
            pin("DO $$ BEGIN PERFORM pg_advisory_xact_lock(1); END $$"),
            None
        );
        assert!(reads_sequence_state(b"SELECT CurrVal('s')"));
        assert!(reads_sequence_state(b"select lastval()"));
        assert!(!reads_sequence_state(b"select nextval('s')"));
        assert!(!surely_plain(b"select currval('s')"));
        assert_eq!(
            pin(&format!("select '{}'", "x".repeat(SIZE_LIMIT))),
            Some(PinReason::StatementSize)
        );
    }

    #[test]
    fn transaction_scoped_and_ordinary_statements_do_not_pin() {
        for sql in [
            "SET LOCAL search_path = app",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SET CONSTRAINTS ALL DEFERRED",
            "SELECT pg_advisory_xact_lock(1)",
            "DECLARE c CURSOR FOR SELECT 1",
            "CREATE TABLE t (x int)",
            "select * from users where name = 'SET x'",
            "select $$ LISTEN x $$, $tag$ ; set y = 1 $tag$",
            "select E'it\\'s; set x = 1'",
            "select \"set\" from t -- ; set x = 1",
            "/* LISTEN /* nested */ x */ select 1",
            "SELECT $1::int",
            "BEGIN; UPDATE t SET x = 1; COMMIT",
        ] {
            assert_eq!(pin(sql), None, "{sql}");
        }
    }

    #[test]
    fn the_variable_set_filter_excludes_sets_only() {
        let f = Filters {
            exclude_variable_sets: true,
        };
        assert_eq!(classify("SET search_path = app", f), None);
        assert_eq!(classify("SELECT set_config('a.b', 'c', false)", f), None);
        assert_eq!(classify("LISTEN x", f), Some(PinReason::Listen));
    }

    #[test]
    fn garbage_never_panics() {
        for sql in [
            "'", "\"", "$", "$a", "$a$", "/*", "E'\\", "--", "\u{0}", "ß(", "$1$",
        ] {
            let _ = pin(sql);
        }
    }
}
