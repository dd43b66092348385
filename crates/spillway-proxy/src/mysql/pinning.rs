//! Which statements change MySQL/MariaDB session state and so pin a client to its server
//! connection. After RDS Proxy's list for MySQL: statements longer than [`SIZE_LIMIT`], `LOCK
//! TABLES`, `FLUSH TABLES ... WITH READ LOCK`, `GET_LOCK()`, user variables, `SET` of variables
//! the proxy does not track, temporary tables, prepared statements. Added here: the functions
//! that read the previous statement's results (`FOUND_ROWS()`, `ROW_COUNT()`), `HANDLER`, `XA
//! START`, `SET TRANSACTION` (next transaction only) and the backup locks.
//!
//! Some state is not pinned but *tracked*: the server reports system-variable and schema changes
//! through session tracking, and the proxy replays them (`SET SESSION x = value`, `USE db`) on
//! whichever connection the client borrows next. [`is_tracked_variable`] is that set;
//! [`Classified::tracked`] says a statement may have changed it.
//!
//! The classifier is a tokenizer, not a parser: it skips comments (but reads the contents of
//! executable comments, `/*! ... */`, `/*!50700 ... */`, MariaDB's `/*M! ... */`, as SQL: that is
//! where mysqldump puts its `SET` statements), string literals and backtick identifiers, splits
//! on `;`, and looks at each statement's leading keywords, at function names, and at user
//! variables. It errs towards pinning: a false pin costs multiplexing, a missed pin corrupts
//! another client's session.
//!
//! What it cannot see: state changed out of sight by stored procedures (`CALL`), triggers and
//! events, and by dynamic SQL they run. The proxy should also watch the server's
//! `SESSION_TRACK_STATE_CHANGE` reports for those.

use std::fmt;

/// Statements longer than this pin (their text is not classified).
pub const SIZE_LIMIT: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinReason {
    StatementSize,
    LockTables,
    /// `FLUSH TABLES ... WITH READ LOCK`, `FLUSH TABLES ... FOR EXPORT`, and the backup locks
    /// (`LOCK INSTANCE FOR BACKUP`, MariaDB's `BACKUP STAGE` / `BACKUP LOCK`).
    GlobalReadLock,
    /// `GET_LOCK()`: the lock belongs to the server session until released.
    NamedLock,
    /// `SET @x = ...`, `SELECT @x := ...`, `SELECT ... INTO @x`.
    UserVariable,
    /// `SET` of a variable the proxy does not track (and `LAST_INSERT_ID(expr)`, which sets the
    /// session's value as a side effect).
    SessionSet,
    /// `SET TRANSACTION ...` without `SESSION`/`GLOBAL` (or `SET @@transaction_isolation`):
    /// applies to the next transaction only, which may start on another connection.
    TransactionCharacteristics,
    TemporaryTable,
    /// `PREPARE`, `EXECUTE` (MariaDB's `EXECUTE IMMEDIATE` too), `DEALLOCATE` / `DROP PREPARE`.
    TextPrepare,
    /// `SQL_CALC_FOUND_ROWS`, `FOUND_ROWS()`, `ROW_COUNT()`: results of the previous statement
    /// on the same server connection.
    FoundRows,
    /// Any `HANDLER` statement (`OPEN` creates the state; `READ` and `CLOSE` need it).
    Handler,
    /// `XA START` / `XA BEGIN`: an XA transaction spans statements in ways the status flags do
    /// not show.
    XaTransaction,
}

impl fmt::Display for PinReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PinReason::StatementSize => "a statement above the size limit",
            PinReason::LockTables => "LOCK TABLES",
            PinReason::GlobalReadLock => "FLUSH TABLES WITH READ LOCK or a backup lock",
            PinReason::NamedLock => "GET_LOCK()",
            PinReason::UserVariable => "a user variable assignment",
            PinReason::SessionSet => "SET of a session variable the proxy does not track",
            PinReason::TransactionCharacteristics => "SET TRANSACTION for the next transaction",
            PinReason::TemporaryTable => "a temporary table",
            PinReason::TextPrepare => "PREPARE, EXECUTE or DEALLOCATE PREPARE",
            PinReason::FoundRows => "SQL_CALC_FOUND_ROWS, FOUND_ROWS() or ROW_COUNT()",
            PinReason::Handler => "HANDLER",
            PinReason::XaTransaction => "an XA transaction",
        })
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Filters {
    /// RDS Proxy's EXCLUDE_VARIABLE_SETS: `SessionSet` and `UserVariable` do not pin.
    pub exclude_variable_sets: bool,
}

/// What one `COM_QUERY`'s text does to the session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Classified {
    /// The first reason found to pin the session.
    pub pin: Option<PinReason>,
    /// Whether the text may change state the proxy tracks and restores: `USE db`, `SET` of a
    /// tracked variable, `SET NAMES`, `SET CHARACTER SET`, `SET SESSION TRANSACTION`, `DROP
    /// DATABASE` (which may unset the current schema).
    pub tracked: bool,
    /// Whether the text reads `LAST_INSERT_ID()` (or `@@last_insert_id`, `@@identity`), a value
    /// the proxy restores. `LAST_INSERT_ID(expr)` *sets* it, and pins with
    /// [`PinReason::SessionSet`] instead.
    pub last_insert_id: bool,
    /// `LOAD DATA LOCAL INFILE` / `LOAD XML LOCAL INFILE`: the proxy refuses it unless allowed
    /// (and should refuse the server's LOCAL INFILE request on the wire as well, since statements
    /// above [`SIZE_LIMIT`] are not classified).
    pub local_infile: bool,
}

impl Classified {
    fn merge(&mut self, other: Classified) {
        self.pin = self.pin.or(other.pin);
        self.tracked |= other.tracked;
        self.last_insert_id |= other.last_insert_id;
        self.local_infile |= other.local_infile;
    }
}

/// Session variables the proxy restores with `SET SESSION x = value` instead of pinning. Each is
/// safe because its session value is a plain value that the server reports through session
/// tracking, that the same user may set again on another connection without more privileges,
/// and that has no effect beyond this session's statements. The server reports only what
/// `session_track_system_variables` names: it must name these (or be `*`; MySQL's default names
/// five).
const TRACKED_VARIABLES: &[&str] = &[
    // `SET NAMES` / `SET CHARACTER SET` and the variables they set: how the server decodes the
    // client's text and encodes its results.
    "names",
    "character_set_client",
    "character_set_connection",
    "character_set_results",
    "collation_connection",
    // How statements are interpreted: pure per-session semantics, no stored effect.
    "autocommit",
    "sql_mode",
    "time_zone",
    "sql_auto_is_null",
    "sql_safe_updates",
    "sql_select_limit",
    "sql_big_selects",
    "max_join_size",
    "big_tables",
    "div_precision_increment",
    "default_week_format",
    "lc_time_names",
    "group_concat_max_len",
    "sql_quote_show_create",
    "sql_notes",
    "sql_warnings",
    "unique_checks",
    "foreign_key_checks",
    "auto_increment_increment",
    "auto_increment_offset",
    "default_storage_engine",
    "default_tmp_storage_engine",
    // Session defaults for transactions the client starts itself (`SET SESSION TRANSACTION`,
    // `SET transaction_isolation`). `SET @@transaction_isolation` without a scope is different:
    // it applies to the next transaction only, and pins.
    "transaction_isolation",
    "tx_isolation",
    "transaction_read_only",
    "tx_read_only",
    // Timeouts and limits of this session's statements. `wait_timeout` and `interactive_timeout`
    // also bound how long the server keeps the idle connection: restored on borrow, they apply
    // while the client holds it.
    "wait_timeout",
    "interactive_timeout",
    "net_read_timeout",
    "net_write_timeout",
    "lock_wait_timeout",
    "innodb_lock_wait_timeout",
    "max_execution_time",
    "max_statement_time",
    "cte_max_recursion_depth",
    // Optimizer and per-session memory knobs: they change plans and speed, not results or
    // anything stored.
    "optimizer_switch",
    "optimizer_search_depth",
    "sort_buffer_size",
    "join_buffer_size",
    "read_buffer_size",
    "read_rnd_buffer_size",
    "tmp_table_size",
    "max_heap_table_size",
    "max_sort_length",
    // Only decides what goes to the slow query log.
    "long_query_time",
    // Not here on purpose (they pin): `sql_log_bin` (needs privileges and changes replication),
    // `profiling` (keeps a per-session history `SHOW PROFILES` reads), `timestamp`, `insert_id`,
    // `last_insert_id`, `identity`, `rand_seed1/2` (one-shot values for the next statement),
    // `gtid_next`, `pseudo_thread_id`, and `session_track_*` (the proxy's own tracking setup).
];

/// Whether the proxy tracks and restores the session variable `name` (case-insensitive).
pub fn is_tracked_variable(name: &str) -> bool {
    tracked_name(name.as_bytes())
}

fn tracked_name(name: &[u8]) -> bool {
    TRACKED_VARIABLES
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(name))
}

/// The scope written in a `@@scope.name` system variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// `@@name`: the session value (for the transaction characteristics, the next transaction).
    None,
    Session,
    /// Server-wide (`GLOBAL`, `PERSIST`, `PERSIST_ONLY`): the server's grants decide.
    Global,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    /// An unquoted identifier or keyword.
    Word(&'a [u8]),
    /// A backtick identifier's contents (doubled backticks left as they are).
    Quoted(&'a [u8]),
    /// A string literal, `'...'` or `"..."`.
    Str,
    Number,
    /// `@x`, `@'x'`, `@"x"`, `` @`x` ``.
    UserVar,
    /// `@@x`, `@@session.x`, `@@global.x`...
    SysVar(Scope, &'a [u8]),
    LParen,
    RParen,
    Comma,
    Colon,
    /// `:=`, the assignment operator outside `SET`.
    Assign,
    Semicolon,
    Other,
}

/// Bytes of unquoted identifiers: MySQL takes every byte above ASCII too (UTF-8 letters).
fn ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// Whitespace for the lexer: any control byte or space, like MySQL's (which takes `\v`, that
/// `u8::is_ascii_whitespace` does not).
fn space(c: u8) -> bool {
    c <= b' '
}

struct Lexer<'a> {
    b: &'a [u8],
    i: usize,
    /// Whether a backslash escapes the next byte in a string (unset with `NO_BACKSLASH_ESCAPES`,
    /// and in effect for a multi-byte character set whose trail byte may be 0x5C).
    backslash_escapes: bool,
    /// Inside `/*! ... */`: its `*/` ends it, and its contents are SQL.
    executable: bool,
}

impl<'a> Lexer<'a> {
    fn new(b: &'a [u8], backslash_escapes: bool) -> Self {
        Lexer {
            b,
            i: 0,
            backslash_escapes,
            executable: false,
        }
    }

    fn at(&self, k: usize) -> Option<u8> {
        self.b.get(self.i + k).copied()
    }

    fn skip_line(&mut self) {
        self.i = match memchr::memchr(b'\n', self.b.get(self.i..).unwrap_or_default()) {
            Some(n) => self.i + n + 1,
            None => self.b.len(),
        };
    }

    /// Skips a `'`/`"`/`` ` `` quoted run starting at the quote; returns its contents.
    fn quoted(&mut self, escapes: bool) -> &'a [u8] {
        let q = self.at(0);
        self.i += 1;
        let start = self.i;
        while let Some(c) = self.at(0) {
            if escapes && c == b'\\' {
                self.i += 2;
                continue;
            }
            if Some(c) == q {
                if self.at(1) == q {
                    self.i += 2;
                    continue;
                }
                let s = self.b.get(start..self.i).unwrap_or_default();
                self.i += 1;
                return s;
            }
            self.i += 1;
        }
        // Unterminated: the rest is the literal.
        self.i = self.b.len();
        self.b.get(start..).unwrap_or_default()
    }

    fn ident(&mut self) -> &'a [u8] {
        let start = self.i;
        while self.at(0).is_some_and(ident_byte) {
            self.i += 1;
        }
        self.b.get(start..self.i).unwrap_or_default()
    }

    /// A system variable after its `@@`: `name`, `scope.name`, either part in backticks.
    fn sys_var(&mut self) -> Token<'a> {
        let first = if self.at(0) == Some(b'`') {
            self.quoted(false)
        } else {
            self.ident()
        };
        if self.at(0) == Some(b'.') {
            let scope =
                if first.eq_ignore_ascii_case(b"session") || first.eq_ignore_ascii_case(b"local") {
                    Some(Scope::Session)
                } else if first.eq_ignore_ascii_case(b"global")
                    || first.eq_ignore_ascii_case(b"persist")
                    || first.eq_ignore_ascii_case(b"persist_only")
                {
                    Some(Scope::Global)
                } else {
                    None
                };
            if let Some(scope) = scope {
                self.i += 1;
                let name = if self.at(0) == Some(b'`') {
                    self.quoted(false)
                } else {
                    self.ident()
                };
                return Token::SysVar(scope, name);
            }
        }
        // `@@keycache.key_buffer_size` and the like: `first` names it well enough.
        Token::SysVar(Scope::None, first)
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        loop {
            let c = self.at(0)?;
            match c {
                c if space(c) => self.i += 1,
                b'#' => self.skip_line(),
                // `--` starts a comment only before whitespace or a control byte: `1--1` is
                // arithmetic.
                b'-' if self.at(1) == Some(b'-') && self.at(2).is_none_or(space) => {
                    self.skip_line()
                }
                b'/' if self.at(1) == Some(b'*') => {
                    let bang = match (self.at(2), self.at(3)) {
                        (Some(b'!'), _) => Some(3),
                        (Some(b'M'), Some(b'!')) => Some(4),
                        _ => None,
                    };
                    if let Some(n) = bang {
                        // Executable: whatever the version number says, its contents may run,
                        // so they are read as SQL.
                        self.i += n;
                        while self.at(0).is_some_and(|d| d.is_ascii_digit()) {
                            self.i += 1;
                        }
                        self.executable = true;
                    } else {
                        let rest = self.b.get(self.i + 2..).unwrap_or_default();
                        self.i = match memchr::memmem::find(rest, b"*/") {
                            Some(n) => self.i + 2 + n + 2,
                            None => self.b.len(),
                        };
                    }
                }
                b'*' if self.executable && self.at(1) == Some(b'/') => {
                    self.executable = false;
                    self.i += 2;
                }
                b'\'' | b'"' => {
                    self.quoted(self.backslash_escapes);
                    return Some(Token::Str);
                }
                b'`' => return Some(Token::Quoted(self.quoted(false))),
                b'@' if self.at(1) == Some(b'@') => {
                    self.i += 2;
                    return Some(self.sys_var());
                }
                b'@' => {
                    self.i += 1;
                    match self.at(0) {
                        Some(b'\'' | b'"') => {
                            self.quoted(self.backslash_escapes);
                        }
                        Some(b'`') => {
                            self.quoted(false);
                        }
                        _ => {
                            while self.at(0).is_some_and(|d| ident_byte(d) || d == b'.') {
                                self.i += 1;
                            }
                        }
                    }
                    return Some(Token::UserVar);
                }
                b':' if self.at(1) == Some(b'=') => {
                    self.i += 2;
                    return Some(Token::Assign);
                }
                _ => {
                    if c.is_ascii_digit() {
                        // A number, or an identifier that starts with a digit: never a keyword.
                        self.ident();
                        return Some(Token::Number);
                    }
                    if ident_byte(c) {
                        return Some(Token::Word(self.ident()));
                    }
                    self.i += 1;
                    return Some(match c {
                        b';' => Token::Semicolon,
                        b'(' => Token::LParen,
                        b')' => Token::RParen,
                        b',' => Token::Comma,
                        b':' => Token::Colon,
                        _ => Token::Other,
                    });
                }
            }
        }
    }
}

fn word<'a>(t: Option<&Token<'a>>) -> Option<&'a [u8]> {
    match t {
        Some(Token::Word(w)) => Some(w),
        _ => None,
    }
}

fn is(t: Option<&Token<'_>>, kw: &str) -> bool {
    word(t).is_some_and(|w| w.eq_ignore_ascii_case(kw.as_bytes()))
}

/// A function call: the name, then `(` (MySQL's IGNORE_SPACE allows spaces and comments
/// between, and taking them always errs towards pinning).
fn is_call(t: &[Token<'_>], at: usize, name: &str) -> bool {
    is(t.get(at), name) && t.get(at + 1) == Some(&Token::LParen)
}

/// Keywords that start a statement the classifier looks at. A statement starting otherwise, and
/// mentioning neither `@` nor a [`FRAGMENTS`] word, cannot pin or change tracked state.
const FIRST_WORDS: &[&[u8]] = &[
    b"set",
    b"use",
    b"lock",
    b"flush",
    b"create",
    b"drop",
    b"prepare",
    b"execute",
    b"deallocate",
    b"handler",
    b"xa",
    b"load",
    b"backup",
    // MariaDB runs compound statements outside stored programs; their bodies run now.
    b"if",
    b"case",
    b"while",
    b"loop",
    b"repeat",
    b"for",
];

/// Functions that pin or read restored state, looked for anywhere (`sql_calc_found_rows`
/// contains `found_rows`).
const FRAGMENTS: [&[u8]; 4] = [b"get_lock", b"found_rows", b"row_count", b"last_insert_id"];

/// For each byte, 1 + the index of the fragment it starts (either case), or 0.
static FRAGMENT_BY_FIRST_BYTE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < FRAGMENTS.len() {
        let c = FRAGMENTS[i][0];
        table[c as usize] = i as u8 + 1;
        table[c.to_ascii_uppercase() as usize] = i as u8 + 1;
        i += 1;
    }
    table
};

fn starts_with_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.get(..needle.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(needle))
}

fn mentions_fragment(sql: &[u8]) -> bool {
    // Runs over every query's text: one table load per byte, then the second byte, and whole
    // fragments compared only where both match.
    sql.iter().enumerate().any(|(i, &b)| {
        let f = FRAGMENT_BY_FIRST_BYTE[usize::from(b)];
        if f == 0 {
            return false;
        }
        let fragment = FRAGMENTS[usize::from(f - 1)];
        sql.get(i + 1)
            .is_some_and(|n| fragment.get(1).is_some_and(|m| n.eq_ignore_ascii_case(m)))
            && sql
                .get(i..)
                .is_some_and(|rest| starts_with_ci(rest, fragment))
    })
}

/// Whether one `;`-separated piece of text may start a statement worth tokenizing.
fn piece_may_classify(piece: &[u8]) -> bool {
    let start = piece.iter().position(|&c| !space(c)).unwrap_or(piece.len());
    let p = piece.get(start..).unwrap_or_default();
    let Some(&c) = p.first() else {
        return false;
    };
    if c == b'(' {
        // `(SELECT ...) UNION ...`: no pinning statement starts with a parenthesis.
        return false;
    }
    if !c.is_ascii_alphabetic() {
        // A comment (perhaps executable), a quoted label, the end of an executable comment...
        return true;
    }
    let end = p
        .iter()
        .position(|c| !c.is_ascii_alphabetic())
        .unwrap_or(p.len());
    let first = p.get(..end).unwrap_or_default();
    if FIRST_WORDS.iter().any(|w| w.eq_ignore_ascii_case(first)) {
        return true;
    }
    let after_first = p.get(end..).unwrap_or_default();
    if first.eq_ignore_ascii_case(b"begin") {
        // `BEGIN` and `BEGIN WORK` start a transaction; anything else may be MariaDB's
        // `BEGIN NOT ATOMIC` block.
        let rest = after_first.trim_ascii();
        return !(rest.is_empty() || rest.eq_ignore_ascii_case(b"work"));
    }
    // A label (`l: LOOP`, `l: BEGIN NOT ATOMIC`), or a comment where a label's colon may follow.
    let ident_end = p.iter().position(|&c| !ident_byte(c)).unwrap_or(p.len());
    let after = p.get(ident_end..).unwrap_or_default();
    let next = after.iter().position(|&c| !space(c)).unwrap_or(after.len());
    let after = after.get(next..).unwrap_or_default();
    after.starts_with(b":")
        || after.starts_with(b"/*")
        || after.starts_with(b"#")
        || after.starts_with(b"--")
}

/// A cheap test that `sql` needs no classification; `false` means "tokenize and look". It runs
/// on every query, so it works on bytes (no UTF-8 check) and in a few passes at most.
///
/// Splitting on every `;`, even one inside a literal or a comment, finds every real statement
/// start and some that are not: a spurious one can only send the query to the tokenizer, never
/// let a pinning statement through. Every `@` (user and system variables) is looked at.
pub fn surely_plain(sql: &[u8]) -> bool {
    memchr::memchr(b'@', sql).is_none()
        && !sql.split(|c| *c == b';').any(piece_may_classify)
        && !mentions_fragment(sql)
}

/// What `sql` (one `COM_QUERY`'s text, as it arrived, not necessarily valid UTF-8) does to the
/// session.
pub fn classify(sql: &[u8], filters: Filters) -> Classified {
    if sql.len() > SIZE_LIMIT {
        return Classified {
            pin: Some(PinReason::StatementSize),
            ..Classified::default()
        };
    }
    if surely_plain(sql) {
        return Classified::default();
    }
    classify_tokens(sql, filters)
}

/// The tokenizing classifier, without the fast path.
fn classify_tokens(sql: &[u8], filters: Filters) -> Classified {
    let mut out = classify_with(sql, filters, true);
    if memchr::memchr(b'\\', sql).is_some() {
        // Whether a backslash escapes the next quote depends on the session's sql_mode
        // (NO_BACKSLASH_ESCAPES) and character set (0x5C as a trail byte in GBK, SJIS, Big5):
        // `'a\'; SET @x = 1; -- '` is one literal or two statements. Both readings are
        // classified, and the union kept.
        out.merge(classify_with(sql, filters, false));
    }
    out
}

/// Collects what the statements of one text do.
struct Found {
    out: Classified,
    filters: Filters,
}

impl Found {
    fn pin(&mut self, reason: PinReason) {
        if self.filters.exclude_variable_sets
            && matches!(reason, PinReason::SessionSet | PinReason::UserVariable)
        {
            // Waived by the filter: the proxy treats the change as tracked (the session
            // restores what the server reports; what it does not report is the user's risk).
            self.out.tracked = true;
            return;
        }
        self.out.pin.get_or_insert(reason);
    }
}

fn classify_with(sql: &[u8], filters: Filters, backslash_escapes: bool) -> Classified {
    let mut found = Found {
        out: Classified::default(),
        filters,
    };
    let mut statement = Vec::new();
    for tok in Lexer::new(sql, backslash_escapes) {
        if tok == Token::Semicolon {
            classify_statement(&statement, &mut found);
            statement.clear();
        } else {
            statement.push(tok);
        }
    }
    classify_statement(&statement, &mut found);
    found.out
}

fn classify_statement(t: &[Token<'_>], found: &mut Found) {
    if t.is_empty() {
        return;
    }
    if is_compound(t) {
        // A MariaDB compound statement's body runs now, and its inner statements start after
        // `THEN`, `DO`, `ELSE`, a handler's condition... Every word is taken as a possible start:
        // it over-pins (`UPDATE t SET` reads as `SET`) in a rare construct, and never misses.
        for (at, tok) in t.iter().enumerate() {
            if matches!(tok, Token::Word(_)) {
                leading(t.get(at..).unwrap_or_default(), found);
            }
        }
    } else {
        leading(t, found);
    }
    anywhere(t, found);
}

fn is_compound(t: &[Token<'_>]) -> bool {
    let first = t.first();
    let label =
        matches!(first, Some(Token::Word(_) | Token::Quoted(_))) && t.get(1) == Some(&Token::Colon);
    let begin_block =
        is(first, "begin") && !(t.len() == 1 || (t.len() == 2 && is(t.get(1), "work")));
    label
        || begin_block
        || ["if", "case", "while", "loop", "repeat", "for"]
            .iter()
            .any(|k| is(first, k))
}

/// Function calls and variables, wherever they are in a statement.
fn anywhere(t: &[Token<'_>], found: &mut Found) {
    for (at, tok) in t.iter().enumerate() {
        match tok {
            Token::Word(w) => {
                if w.eq_ignore_ascii_case(b"sql_calc_found_rows")
                    || is_call(t, at, "found_rows")
                    || is_call(t, at, "row_count")
                {
                    found.pin(PinReason::FoundRows);
                } else if is_call(t, at, "get_lock") {
                    found.pin(PinReason::NamedLock);
                } else if is_call(t, at, "last_insert_id") {
                    if t.get(at + 2) == Some(&Token::RParen) {
                        found.out.last_insert_id = true;
                    } else {
                        // LAST_INSERT_ID(expr) sets the value the next LAST_INSERT_ID() returns.
                        found.pin(PinReason::SessionSet);
                    }
                } else if w.eq_ignore_ascii_case(b"into") && t.get(at + 1) == Some(&Token::UserVar)
                {
                    found.pin(PinReason::UserVariable);
                }
            }
            Token::UserVar if t.get(at + 1) == Some(&Token::Assign) => {
                found.pin(PinReason::UserVariable);
            }
            Token::SysVar(_, name)
                if name.eq_ignore_ascii_case(b"last_insert_id")
                    || name.eq_ignore_ascii_case(b"identity") =>
            {
                found.out.last_insert_id = true;
            }
            _ => {}
        }
    }
}

/// What a statement's leading keywords say.
fn leading(mut t: &[Token<'_>], found: &mut Found) {
    loop {
        let first = t.first();
        let second = t.get(1);
        if is(first, "set") {
            // MariaDB's `SET STATEMENT var = value [, ...] FOR statement`: the assignments last
            // for the statement, which is classified like any other.
            if is(second, "statement") {
                match t.iter().position(|tok| is(Some(tok), "for")) {
                    Some(at) => {
                        t = t.get(at + 1..).unwrap_or_default();
                        continue;
                    }
                    None => return,
                }
            }
            set_statement(t.get(1..).unwrap_or_default(), found);
        } else if is(first, "use") {
            found.out.tracked = true;
        } else if is(first, "lock") {
            // `LOCK TABLE(S)`, `LOCK INSTANCE FOR BACKUP`; anything else unknown pins too.
            if is(second, "instance") {
                found.pin(PinReason::GlobalReadLock);
            } else {
                found.pin(PinReason::LockTables);
            }
        } else if is(first, "flush") {
            let read_lock = t
                .windows(3)
                .any(|w| is(w.first(), "with") && is(w.get(1), "read") && is(w.get(2), "lock"));
            let export = t
                .windows(2)
                .any(|w| is(w.first(), "for") && is(w.get(1), "export"));
            if read_lock || export {
                found.pin(PinReason::GlobalReadLock);
            }
        } else if is(first, "backup") {
            found.pin(PinReason::GlobalReadLock);
        } else if is(first, "create") {
            let mut i = 1;
            if is(t.get(i), "or") && is(t.get(i + 1), "replace") {
                i += 2;
            }
            if is(t.get(i), "temporary") {
                found.pin(PinReason::TemporaryTable);
            }
        } else if is(first, "drop") {
            if is(second, "prepare") {
                found.pin(PinReason::TextPrepare);
            } else if is(second, "database") || is(second, "schema") {
                found.out.tracked = true;
            }
        } else if is(first, "prepare") || is(first, "execute") || is(first, "deallocate") {
            found.pin(PinReason::TextPrepare);
        } else if is(first, "handler") {
            found.pin(PinReason::Handler);
        } else if is(first, "xa") {
            if is(second, "start") || is(second, "begin") {
                found.pin(PinReason::XaTransaction);
            }
        } else if is(first, "load") {
            let local = t
                .windows(2)
                .any(|w| is(w.first(), "local") && is(w.get(1), "infile"));
            found.out.local_infile |= local;
        }
        return;
    }
}

/// A `SET` statement's words after `SET`.
fn set_statement(t: &[Token<'_>], found: &mut Found) {
    let (first, second) = (t.first(), t.get(1));
    if is(first, "transaction") {
        found.pin(PinReason::TransactionCharacteristics);
        return;
    }
    if is(second, "transaction") {
        if is(first, "session") || is(first, "local") {
            found.out.tracked = true;
        } else if !is(first, "global") {
            found.pin(PinReason::SessionSet);
        }
        return;
    }
    // Account and role statements that share the keyword.
    if is(first, "password") || (is(first, "default") && is(second, "role")) {
        return;
    }
    if is(first, "role") || (is(first, "resource") && is(second, "group")) {
        found.pin(PinReason::SessionSet);
        return;
    }
    let mut depth = 0usize;
    let mut start = 0;
    for (at, tok) in t.iter().enumerate() {
        match tok {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            Token::Comma if depth == 0 => {
                assignment(t.get(start..at).unwrap_or_default(), found);
                start = at + 1;
            }
            _ => {}
        }
    }
    assignment(t.get(start..).unwrap_or_default(), found);
}

fn name<'a>(t: Option<&Token<'a>>) -> Option<&'a [u8]> {
    match t {
        Some(Token::Word(w) | Token::Quoted(w)) => Some(w),
        _ => None,
    }
}

/// One `target = value` of a `SET` list.
///
/// MySQL carries a `GLOBAL` modifier over to the following assignments that have none; here an
/// assignment without one is taken as a session one, which can only pin more.
fn assignment(a: &[Token<'_>], found: &mut Found) {
    let session_var = |n: Option<&[u8]>, found: &mut Found| match n {
        Some(n) if tracked_name(n) => found.out.tracked = true,
        _ => found.pin(PinReason::SessionSet),
    };
    let first = a.first();
    match first {
        None => {}
        Some(Token::UserVar) => found.pin(PinReason::UserVariable),
        Some(Token::SysVar(Scope::Global, _)) => {}
        Some(Token::SysVar(Scope::None, n))
            if [
                &b"transaction_isolation"[..],
                b"tx_isolation",
                b"transaction_read_only",
                b"tx_read_only",
            ]
            .iter()
            .any(|v| v.eq_ignore_ascii_case(n)) =>
        {
            // `SET @@transaction_isolation = ...` without a scope is `SET TRANSACTION`.
            found.pin(PinReason::TransactionCharacteristics);
        }
        Some(Token::SysVar(_, n)) => session_var(Some(n), found),
        Some(Token::Word(_))
            if ["global", "persist", "persist_only"]
                .iter()
                .any(|k| is(first, k)) => {}
        Some(Token::Word(_)) if is(first, "session") || is(first, "local") => {
            session_var(name(a.get(1)), found)
        }
        Some(Token::Word(_))
            if is(first, "names")
                || is(first, "charset")
                || (is(first, "character") && is(a.get(1), "set")) =>
        {
            found.out.tracked = true
        }
        Some(Token::Word(_) | Token::Quoted(_)) => session_var(name(first), found),
        Some(_) => found.pin(PinReason::SessionSet),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(sql: &str) -> Option<PinReason> {
        classify(sql.as_bytes(), Filters::default()).pin
    }

    fn of(sql: &str) -> Classified {
        classify(sql.as_bytes(), Filters::default())
    }

    fn tracked(sql: &str) -> bool {
        let c = of(sql);
        assert_eq!(c.pin, None, "{sql}");
        c.tracked
    }

    #[test]
    fn session_state_pins() {
        use PinReason::*;
        for (sql, reason) in [
            ("SET @x = 1", UserVariable),
            ("set @x := 1", UserVariable),
            ("SET @'quoted var' = 1", UserVariable),
            ("SET @`tick var` = 1", UserVariable),
            ("SET @\"dq\" = 1", UserVariable),
            ("SELECT @x := 1", UserVariable),
            ("select a, b into @a, @b from t where id = 1", UserVariable),
            ("SELECT a FROM t LIMIT 1 INTO @a", UserVariable),
            ("UPDATE t SET c = (@n := @n + 1)", UserVariable),
            ("SET sort_buffer_size = 1, @b = 2", UserVariable),
            ("SET sql_log_bin = 0", SessionSet),
            ("SET SESSION profiling = 1", SessionSet),
            ("SET @@session.sql_log_bin = 0", SessionSet),
            ("SET @@local.timestamp = 1", SessionSet),
            ("SET @@insert_id = 5", SessionSet),
            ("set session_track_system_variables = ''", SessionSet),
            ("SET ROLE ALL", SessionSet),
            ("SET RESOURCE GROUP rg", SessionSet),
            ("SELECT LAST_INSERT_ID(42)", SessionSet),
            (
                "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                TransactionCharacteristics,
            ),
            ("SET TRANSACTION READ ONLY", TransactionCharacteristics),
            (
                "SET @@transaction_isolation = 'READ-COMMITTED'",
                TransactionCharacteristics,
            ),
            ("SET @@tx_read_only = 1", TransactionCharacteristics),
            ("LOCK TABLES t READ, u WRITE", LockTables),
            ("lock table t write", LockTables),
            ("FLUSH TABLES WITH READ LOCK", GlobalReadLock),
            ("FLUSH TABLES t1, t2 WITH READ LOCK", GlobalReadLock),
            ("flush local tables t for export", GlobalReadLock),
            ("LOCK INSTANCE FOR BACKUP", GlobalReadLock),
            ("BACKUP STAGE START", GlobalReadLock),
            ("SELECT GET_LOCK('job', 10)", NamedLock),
            ("do get_lock ('job', 10)", NamedLock),
            ("SELECT GET_LOCK/* c */('job', 10)", NamedLock),
            ("CREATE TEMPORARY TABLE t (x int)", TemporaryTable),
            (
                "create temporary table if not exists t select 1",
                TemporaryTable,
            ),
            (
                "CREATE OR REPLACE TEMPORARY TABLE t (x int)",
                TemporaryTable,
            ),
            ("PREPARE s FROM 'SELECT ?'", TextPrepare),
            ("EXECUTE s USING @a", TextPrepare),
            ("EXECUTE IMMEDIATE 'SELECT 1'", TextPrepare),
            ("DEALLOCATE PREPARE s", TextPrepare),
            ("drop prepare s", TextPrepare),
            ("SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 10", FoundRows),
            ("SELECT FOUND_ROWS()", FoundRows),
            ("select row_count()", FoundRows),
            ("HANDLER t OPEN", Handler),
            ("handler t read first", Handler),
            ("XA START 'x'", XaTransaction),
            ("xa begin 'x'", XaTransaction),
            ("select 1; set @x = 1", UserVariable),
            ("SELECT 1;\n\tLOCK TABLES t READ", LockTables),
            (
                "SET STATEMENT max_statement_time = 1 FOR CREATE TEMPORARY TABLE t (x int)",
                TemporaryTable,
            ),
        ] {
            assert_eq!(pin(sql), Some(reason), "{sql}");
            assert!(!surely_plain(sql.as_bytes()), "{sql}");
        }
        assert_eq!(
            pin(&format!("select '{}'", "x".repeat(SIZE_LIMIT))),
            Some(StatementSize)
        );
    }

    #[test]
    fn executable_comments_are_sql() {
        for sql in [
            "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;",
            "/*!50700 SET @x = 1 */",
            "/*!SET @x = 1*/",
            "/*M!100100 SET @x = 1 */",
            "/*M! SET @x = 1 */",
            "select 1 /*!, @x := 2 */",
            "/*!40000 ALTER TABLE t DISABLE KEYS */; /*!50700SET @y = 1*/",
        ] {
            assert_eq!(pin(sql), Some(PinReason::UserVariable), "{sql}");
        }
        assert_eq!(
            pin("/*!40101 SET NAMES utf8mb4 */; /*!40014 LOCK TABLES t WRITE */"),
            Some(PinReason::LockTables)
        );
        assert!(tracked("/*!40101 SET NAMES utf8mb4 */"));
        // Its end brings back ordinary SQL; an ordinary comment hides everything.
        assert_eq!(
            pin("/*!40101 SELECT 1 */ ; SET @x = 1"),
            Some(PinReason::UserVariable)
        );
        assert_eq!(pin("/* SET @x = 1 */ SELECT 1"), None);
        assert_eq!(pin("/*+ SET_VAR(sort_buffer_size = 16M) */ SELECT 1"), None);
    }

    #[test]
    fn tracked_state_does_not_pin() {
        for sql in [
            "USE app",
            "use `my db`",
            "SET NAMES utf8mb4",
            "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
            "SET NAMES 'latin1'",
            "SET CHARACTER SET utf8mb4",
            "set charset utf8mb4",
            "SET autocommit = 0",
            "SET autocommit=1",
            "SET sql_mode := 'STRICT_TRANS_TABLES'",
            "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_ZERO_DATE')",
            "SET LOCAL time_zone = '+00:00'",
            "SET @@session.time_zone = 'UTC'",
            "SET @@SESSION.`wait_timeout` = 10",
            "SET @@time_zone = 'UTC'",
            "SET `max_execution_time` = 1000",
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
            "SET transaction_isolation = 'READ-COMMITTED'",
            "SET @@session.transaction_read_only = 1",
            "SET max_statement_time = 5",
            "DROP DATABASE app",
            "drop schema if exists app",
            "SET sql_mode = @OLD_SQL_MODE",
            "SET foreign_key_checks = 0, unique_checks = 0",
        ] {
            assert!(tracked(sql), "{sql}");
            assert!(!surely_plain(sql.as_bytes()), "{sql}");
        }
        // GLOBAL and PERSIST assignments are server-wide: no pin, nothing to restore.
        for sql in [
            "SET GLOBAL max_connections = 100",
            "SET PERSIST max_connections = 100",
            "SET PERSIST_ONLY max_connections = 100",
            "SET @@global.max_connections = 100",
            "SET @@persist.max_connections = 100",
            "SET GLOBAL TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        ] {
            assert_eq!(of(sql), Classified::default(), "{sql}");
        }
        assert!(is_tracked_variable("SQL_MODE"));
        assert!(is_tracked_variable("names"));
        assert!(!is_tracked_variable("sql_log_bin"));
        assert!(!is_tracked_variable("profiling"));
    }

    #[test]
    fn several_assignments_are_classified_one_by_one() {
        let sql = "SET sql_mode = '', @b = 2, SESSION wait_timeout = 3, @@time_zone = 'UTC'";
        let c = of(sql);
        assert_eq!(c.pin, Some(PinReason::UserVariable));
        assert!(c.tracked);
        assert_eq!(
            of("SET GLOBAL max_connections = 10, SESSION sql_mode = IF(1, 'a', 'b'), NAMES utf8"),
            Classified {
                tracked: true,
                ..Classified::default()
            }
        );
        assert_eq!(
            pin("SET sql_mode = '', GLOBAL x = 1, SESSION sql_log_bin = 0"),
            Some(PinReason::SessionSet)
        );
        assert_eq!(
            pin("SET a=1, @b=2, SESSION c=3, @@d=4"),
            Some(PinReason::SessionSet)
        );
        let f = Filters {
            exclude_variable_sets: true,
        };
        let c = classify(b"SET a=1, @b=2, SESSION sql_mode='', @@d=4", f);
        assert_eq!(c.pin, None);
        assert!(c.tracked);
    }

    #[test]
    fn the_variable_set_filter_excludes_sets_only() {
        let f = Filters {
            exclude_variable_sets: true,
        };
        let p = |sql: &str| classify(sql.as_bytes(), f).pin;
        assert_eq!(p("SET @x = 1"), None);
        assert_eq!(p("SET sql_log_bin = 0"), None);
        assert_eq!(p("SELECT @x := 1"), None);
        assert_eq!(p("SELECT LAST_INSERT_ID(5)"), None);
        // ...and looks further for what else pins.
        assert_eq!(
            p("SET @x = 1; LOCK TABLES t READ"),
            Some(PinReason::LockTables)
        );
        assert_eq!(
            p("SET TRANSACTION READ ONLY"),
            Some(PinReason::TransactionCharacteristics)
        );
        assert_eq!(p("SELECT GET_LOCK('a', 1)"), Some(PinReason::NamedLock));
    }

    #[test]
    fn last_insert_id_and_local_infile_are_reported() {
        let c = of("SELECT LAST_INSERT_ID()");
        assert!(c.last_insert_id && c.pin.is_none());
        assert!(of("select last_insert_id ( )").last_insert_id);
        assert!(of("SELECT @@identity").last_insert_id);
        assert!(of("SELECT @@last_insert_id").last_insert_id);
        assert!(!of("select 'LAST_INSERT_ID()'").last_insert_id);
        for sql in [
            "LOAD DATA LOCAL INFILE '/tmp/x.csv' INTO TABLE t",
            "load data low_priority local infile 'x' into table t",
            "LOAD XML LOCAL INFILE 'x.xml' INTO TABLE t",
            "/*!50000 LOAD DATA LOCAL INFILE 'x' INTO TABLE t */",
        ] {
            let c = of(sql);
            assert!(c.local_infile && c.pin.is_none(), "{sql}");
        }
        assert!(!of("LOAD DATA INFILE '/var/lib/mysql-files/x' INTO TABLE t").local_infile);
    }

    #[test]
    fn mariadb_compound_statements_are_looked_into() {
        for (sql, reason) in [
            (
                "BEGIN NOT ATOMIC LOCK TABLES t READ; END",
                PinReason::LockTables,
            ),
            (
                "IF 1 THEN CREATE TEMPORARY TABLE t (x int); END IF",
                PinReason::TemporaryTable,
            ),
            (
                "lbl: LOOP HANDLER t OPEN; LEAVE lbl; END LOOP",
                PinReason::Handler,
            ),
            (
                "WHILE 0 DO FLUSH TABLES WITH READ LOCK; END WHILE",
                PinReason::GlobalReadLock,
            ),
        ] {
            assert_eq!(pin(sql), Some(reason), "{sql}");
            assert!(!surely_plain(sql.as_bytes()), "{sql}");
        }
        assert!(surely_plain(b"BEGIN"));
        assert!(surely_plain(b"begin work;"));
        assert_eq!(of("BEGIN; COMMIT"), Classified::default());
    }

    #[test]
    fn ordinary_text_does_not_pin() {
        for sql in [
            "select * from users where name = 'SET @x = 1'",
            "select \"SET @x := 1; LOCK TABLES t READ\"",
            "select 1 -- SET @x = 1",
            "select 1 # SET @x = 1\n",
            "select 1 --\tSET @x = 1",
            "select set_id, `offset`, reset from t",
            "UPDATE t SET set_id = 1, offset = 2 WHERE reset = 0",
            "select GET_LOCKS from t",
            "select get_lock from t",
            "select my_get_lock(1)",
            "select 'sql_calc_found_rows', 'FOUND_ROWS()'",
            "select `@x` from t",
            "SELECT @x",
            "SELECT @x = 1",
            "SELECT * FROM t WHERE a = @x",
            "SELECT @@version, @@session.sql_mode",
            "SELECT * FROM t FOR UPDATE",
            "SELECT * FROM t LOCK IN SHARE MODE",
            "UNLOCK TABLES",
            "UNLOCK INSTANCE",
            "DROP TEMPORARY TABLE t",
            "DROP TABLE t",
            "CREATE TABLE t (x int)",
            "XA END 'x'",
            "XA COMMIT 'x'",
            "FLUSH TABLES",
            "FLUSH PRIVILEGES",
            "SET PASSWORD = 'secret'",
            "SET DEFAULT ROLE ALL TO 'u'@'h'",
            "CREATE USER 'u'@'localhost' IDENTIFIED BY 'x'",
            "select 'it''s; SET @x = 1'",
            "select 1--1",
            "START TRANSACTION READ ONLY",
            "select `a``b; set @x = 1`",
        ] {
            assert_eq!(of(sql), Classified::default(), "{sql}");
        }
        // `1--1` is arithmetic, so what follows is read.
        assert_eq!(
            pin("select 1--1; SET @x = 1"),
            Some(PinReason::UserVariable)
        );
    }

    #[test]
    fn both_backslash_readings_are_classified() {
        // With NO_BACKSLASH_ESCAPES (or a GBK trail byte) the literal ends at `\'`.
        assert_eq!(
            pin("SELECT 'a\\'; SET @x = 1; -- '"),
            Some(PinReason::UserVariable)
        );
        assert_eq!(
            pin("SELECT 'a\\' ; LOCK TABLES t READ; SELECT '"),
            Some(PinReason::LockTables)
        );
        assert_eq!(pin(r"SELECT 'C:\\temp'"), None);
        // The price: a literal that reads as a pinning statement the other way pins.
        assert_eq!(
            pin("select 'it\\'s; SET @x = 1'"),
            Some(PinReason::UserVariable)
        );
        assert_eq!(pin("INSERT INTO t VALUES ('it\\'s', 'x')"), None);
    }

    /// Statements the fast path and the tokenizer must agree on: wherever the fast path says
    /// "plain", the tokenizer finds nothing.
    const SAMPLES: &[&str] = &[
        "SELECT 1",
        "select * from t where id = 1",
        "SELECT abalance FROM accounts WHERE aid = 42;",
        "INSERT INTO t (a, b) VALUES (1, 'x')",
        "insert into t values (1, 'settings; lock tables')",
        "UPDATE t SET a = 1 WHERE id = 2",
        "update t set offset = 1",
        "DELETE FROM t WHERE id = 3",
        "REPLACE INTO t VALUES (1)",
        "BEGIN",
        "BEGIN WORK",
        "START TRANSACTION",
        "START TRANSACTION WITH CONSISTENT SNAPSHOT",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT s",
        "RELEASE SAVEPOINT s",
        "SHOW TABLES",
        "SHOW VARIABLES LIKE 'sql_mode'",
        "EXPLAIN SELECT * FROM t",
        "DESCRIBE t",
        "(SELECT 1) UNION (SELECT 2)",
        "WITH c AS (SELECT 1) SELECT * FROM c",
        "SELECT * FROM t FOR UPDATE",
        "SELECT * FROM t LOCK IN SHARE MODE",
        "select set_id, reset from t",
        "select GET_LOCKS from t",
        "select 1--1",
        "ALTER TABLE t ADD COLUMN c int",
        "TRUNCATE TABLE t",
        "CALL p(1)",
        "UNLOCK TABLES",
        "SELECT @x",
        "SELECT @@version",
        "select @@session.autocommit",
        "SELECT LAST_INSERT_ID()",
        "select last_insert_id(7)",
        "SELECT FOUND_ROWS()",
        "SELECT SQL_CALC_FOUND_ROWS * FROM t",
        "select row_count()",
        "SELECT GET_LOCK('a', 1)",
        "SELECT RELEASE_LOCK('a')",
        "SELECT IS_USED_LOCK('a')",
        "SET @x = 1",
        "SET x = 1",
        "set names utf8mb4",
        "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
        "SET CHARACTER SET latin1",
        "SET SESSION sql_mode = ''",
        "SET GLOBAL max_connections = 1",
        "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
        "SET SESSION TRANSACTION READ ONLY",
        "SET @@transaction_isolation = 'SERIALIZABLE'",
        "USE db",
        "LOCK TABLES t READ",
        "LOCK INSTANCE FOR BACKUP",
        "FLUSH TABLES WITH READ LOCK",
        "FLUSH TABLES t FOR EXPORT",
        "FLUSH STATUS",
        "CREATE TEMPORARY TABLE t (x int)",
        "CREATE OR REPLACE TEMPORARY TABLE t (x int)",
        "CREATE TABLE t (x int)",
        "DROP TEMPORARY TABLE t",
        "DROP DATABASE d",
        "DROP PREPARE s",
        "PREPARE s FROM 'select 1'",
        "EXECUTE s",
        "DEALLOCATE PREPARE s",
        "HANDLER t OPEN",
        "XA START 'x'",
        "XA RECOVER",
        "LOAD DATA LOCAL INFILE 'x' INTO TABLE t",
        "LOAD DATA INFILE 'x' INTO TABLE t",
        "BACKUP STAGE START",
        "/*!40101 SET NAMES utf8 */",
        "/*!50700 SET @x = 1 */",
        "/*M!100100 LOCK TABLES t READ */",
        "/* comment */ SELECT 1",
        "-- c\nSET @x = 1",
        "# c\nLOCK TABLES t READ",
        "select 1; set @x = 1",
        "select 1;\x0bSET autocommit = 0",
        "select 1;\x0cLOCK TABLES t READ",
        "SELECT 1 /*!; LOCK TABLES t READ */",
        "SELECT 1 /*!50000 */; LOCK TABLES t WRITE",
        "select 'a\\'; LOCK TABLES t READ; -- '",
        "BEGIN NOT ATOMIC LOCK TABLES t READ; END",
        "IF 1 THEN LOCK TABLES t READ; END IF",
        "lbl: LOOP LOCK TABLES t READ; END LOOP",
        "lbl /* c */ : LOOP LOCK TABLES t READ; END LOOP",
        "`lbl`: LOOP LOCK TABLES t READ; END LOOP",
        "WHILE 1 DO HANDLER t OPEN; END WHILE",
        "SET STATEMENT max_statement_time = 1 FOR LOCK TABLES t READ",
        "SELECT 'u'@'h'",
        "select * from t where name = 'SET @x = 1'",
        "select 'found_rows()'",
        "SELECT a INTO @a FROM t",
        "SELECT a FROM t INTO OUTFILE '/tmp/x'",
        "\u{feff}SELECT 1",
        "SELECT 'é'; SET @é = 1",
        "",
        ";;;",
        "SET",
        "LOCK",
    ];

    #[test]
    fn the_fast_path_never_lets_anything_through() {
        let mut plain = 0;
        for sql in SAMPLES {
            for filters in [
                Filters::default(),
                Filters {
                    exclude_variable_sets: true,
                },
            ] {
                if surely_plain(sql.as_bytes()) {
                    plain += 1;
                    assert_eq!(
                        classify_tokens(sql.as_bytes(), filters),
                        Classified::default(),
                        "{sql}"
                    );
                }
            }
        }
        // The fast path does take the ordinary ones.
        assert!(plain >= 40, "{plain}");
        for sql in [
            "SELECT 1",
            "UPDATE t SET a = 1 WHERE id = 2",
            "BEGIN",
            "COMMIT",
            "insert into t values (1, 'settings')",
            "(SELECT 1) UNION (SELECT 2)",
            "SELECT * FROM t FOR UPDATE",
        ] {
            assert!(surely_plain(sql.as_bytes()), "{sql}");
        }
    }

    /// The same property over texts stitched together from pieces that matter to either side.
    #[test]
    fn the_fast_path_agrees_with_the_tokenizer_on_stitched_texts() {
        const PIECES: &[&str] = &[
            "SET ",
            "set_id",
            "@x",
            "@@x",
            " = 1",
            ":=",
            ";",
            " ",
            "\n",
            "\x0b",
            "/*",
            "/*!",
            "/*M!",
            "*/",
            "'",
            "\"",
            "`",
            "\\",
            "-- ",
            "--",
            "#",
            "LOCK ",
            "TABLES ",
            "lbl",
            ":",
            "BEGIN",
            " NOT ATOMIC ",
            "WORK",
            "IF ",
            " THEN ",
            "get_lock",
            "(",
            ")",
            "found_rows",
            "sql_calc_found_rows",
            "last_insert_id",
            "row_count",
            "INTO ",
            "CREATE ",
            "TEMPORARY ",
            "LOAD DATA ",
            "LOCAL ",
            "INFILE ",
            "USE ",
            "DROP ",
            "DATABASE ",
            "XA ",
            "START ",
            "HANDLER ",
            "SELECT ",
            "1",
            ",",
            "FLUSH ",
            "WITH READ LOCK",
            "\u{e9}",
        ];
        // xorshift: deterministic, no dependency.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut sql = String::new();
        for _ in 0..50_000 {
            sql.clear();
            for _ in 0..(next() % 8 + 1) {
                sql.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            if surely_plain(sql.as_bytes()) {
                assert_eq!(
                    classify_tokens(sql.as_bytes(), Filters::default()),
                    Classified::default(),
                    "{sql:?}"
                );
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        for sql in [
            &b"'"[..],
            b"\"",
            b"`",
            b"@",
            b"@@",
            b"@@session.",
            b"@'",
            b"@`",
            b"/*",
            b"/*!",
            b"/*M!",
            b"/*!123",
            b"*/",
            b"--",
            b"#",
            b"\\",
            b"'\\",
            b"\0",
            b"\xff\xfe(",
            b"SET",
            b"SET SESSION",
            b"SET STATEMENT",
            b"SET @",
            b"SET ,,,",
            b"SET a = (((",
            b"SET a = )))",
            b"select last_insert_id(",
            b"lbl:",
            b"BEGIN NOT",
            b"x:=",
        ] {
            let _ = classify(sql, Filters::default());
            let _ = classify_tokens(sql, Filters::default());
        }
    }

    #[test]
    fn reasons_read_as_phrases() {
        assert_eq!(PinReason::NamedLock.to_string(), "GET_LOCK()");
        assert_eq!(
            format!("the session is pinned: {}", PinReason::UserVariable),
            "the session is pinned: a user variable assignment"
        );
    }
}
