//! A client's startup parameters under transaction pooling.
//!
//! PostgreSQL applies the parameters of a startup packet (and the `-c name=value` switches of its
//! `options` parameter) to the new session. Through a pool, the session is shared: the proxy
//! keeps each client's parameters in step on whatever server connection it borrows, by sending
//! what differs before the client's first message, and takes back what it set when the next
//! borrower did not ask for it (`RESET`). Nothing a client asked for is dropped: a parameter the
//! server refuses fails the login with the server's own error, as PostgreSQL's would.
//!
//! Two kinds of parameter:
//! - those the server reports (ParameterStatus: `TimeZone`, `application_name`, ...): the
//!   connection's current value is known from the server's reports, whoever changed it;
//! - the others (`statement_timeout`, `search_path`, ...): the proxy knows what it set itself
//!   (`ServerConn::applied`); a client can change them only by statements that pin.
//!
//! [`ALWAYS`] are kept for every client, with the server's default for a client that did not ask,
//! because drivers read them back from ParameterStatus and a connection another client changed
//! must not show through.

/// Kept for every client: its value, or the server's default.
pub const ALWAYS: &[&str] = &[
    "client_encoding",
    "DateStyle",
    "TimeZone",
    "IntervalStyle",
    "application_name",
];

/// Startup packet keys that are not run-time parameters.
const NOT_PARAMETERS: &[&str] = &["user", "database", "replication", "options"];

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// Not a name a SET can carry (PostgreSQL would answer 42704 for it too).
    #[error("unrecognized configuration parameter \"{0}\"")]
    BadName(String),
    /// A switch in `options` other than `-c name=value` / `--name=value`.
    #[error(
        "unsupported startup option \"{0}\": only -c name=value and --name=value are applied through the proxy"
    )]
    Switch(String),
}

impl ParamError {
    pub fn sqlstate(&self) -> &'static str {
        match self {
            ParamError::BadName(_) => "42704",
            ParamError::Switch(_) => "08P01",
        }
    }
}

/// What a client asked for: (name, value), names as given (matched without regard to case).
pub fn requested(startup: &[(String, String)]) -> Result<Vec<(String, String)>, ParamError> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |name: String, value: String| -> Result<(), ParamError> {
        if !valid_name(&name) {
            return Err(ParamError::BadName(name));
        }
        // The last of several wins, as in PostgreSQL (options are applied after the packet's
        // own parameters, so `options` below overrides).
        out.retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
        out.push((name, value));
        Ok(())
    };
    for (k, v) in startup {
        if NOT_PARAMETERS.iter().any(|n| n.eq_ignore_ascii_case(k)) || k.starts_with("_pq_.") {
            continue;
        }
        put(k.clone(), v.clone())?;
    }
    if let Some((_, options)) = startup.iter().find(|(k, _)| k == "options") {
        for (k, v) in split_options(options)? {
            put(k, v)?;
        }
    }
    Ok(out)
}

/// `options` as PostgreSQL reads it (`pg_split_opts`): words split on white space, a backslash
/// takes the next character literally; `-c name=value`, `-cname=value` and `--name=value`, with
/// dashes in names read as underscores.
fn split_options(options: &str) -> Result<Vec<(String, String)>, ParamError> {
    let mut words = Vec::new();
    let mut chars = options.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        word.push(n);
                    }
                }
                c if c.is_whitespace() => break,
                c => word.push(c),
            }
        }
        words.push(word);
    }
    let mut out = Vec::new();
    let mut words = words.into_iter();
    while let Some(w) = words.next() {
        let setting = if w == "-c" {
            words.next().ok_or_else(|| ParamError::Switch(w.clone()))?
        } else if let Some(rest) = w.strip_prefix("--") {
            rest.to_owned()
        } else if let Some(rest) = w.strip_prefix("-c") {
            rest.to_owned()
        } else {
            return Err(ParamError::Switch(w));
        };
        let Some((name, value)) = setting.split_once('=') else {
            return Err(ParamError::Switch(setting));
        };
        out.push((name.replace('-', "_"), value.to_owned()));
    }
    Ok(out)
}

/// Letters, digits, `_` and `.` (custom `prefix.name` parameters): every built-in and custom
/// name, and nothing that needs quoting in `RESET name`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        && !name.starts_with('.')
}

/// The statements that bring a connection in step with what a client wants, or `None` when it
/// is already: `set_config` for what differs, `RESET` for what the proxy set for someone else.
///
/// `params` are the connection's reported values, `applied` what the proxy set on it that the
/// server does not report. Runs on every borrow: no allocation unless something differs.
pub fn catch_up(
    wanted: &[(String, String)],
    params: &[(Vec<u8>, Vec<u8>)],
    applied: &[(String, String)],
) -> Option<String> {
    // Names were spelled as the server spells them at login, so exact comparisons do.
    let reported = |k: &str| params.iter().find(|(pk, _)| pk.as_slice() == k.as_bytes());
    let mut sets: Vec<&(String, String)> = Vec::new();
    for w in wanted {
        let in_step = match reported(&w.0) {
            Some((_, v)) => v.as_slice() == w.1.as_bytes(),
            None => applied.iter().any(|(k, v)| *k == w.0 && *v == w.1),
        };
        if !in_step {
            sets.push(w);
        }
    }
    let resets: Vec<&str> = applied
        .iter()
        .filter(|(k, _)| !wanted.iter().any(|(w, _)| w == k))
        .map(|(k, _)| k.as_str())
        .collect();
    if sets.is_empty() && resets.is_empty() {
        return None;
    }
    // One round trip, one implicit transaction: if any part fails, none of it stays (settings
    // made with set_config roll back), so the records of the connection stay true.
    let mut sql = String::new();
    if !sets.is_empty() {
        sql.push_str("SELECT ");
        for (i, (k, v)) in sets.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "pg_catalog.set_config({}, {}, false)",
                literal(k),
                literal(v)
            ));
        }
        sql.push(';');
    }
    for k in resets {
        sql.push_str(&format!("RESET {k};"));
    }
    Some(sql)
}

/// What the proxy has set on a connection after `catch_up` succeeded: the wanted parameters
/// other than [`ALWAYS`] (those have a value for every client, so are never taken back). A
/// reported one is listed too, so that it is taken back for a client that did not ask for it.
pub fn applied_after(wanted: &[(String, String)]) -> Vec<(String, String)> {
    wanted
        .iter()
        .filter(|(k, _)| !ALWAYS.iter().any(|a| a.eq_ignore_ascii_case(k)))
        .cloned()
        .collect()
}

/// A fingerprint of a client's wanted parameters: equal sets (in the same order, as every
/// login builds them) give equal fingerprints. SipHash with the process's random keys: a
/// collision, which would skip a needed catch-up, is a 2^-64 chance no client can steer.
pub fn fingerprint(wanted: &[(String, String)]) -> u64 {
    use std::hash::BuildHasher;
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    KEYS.get_or_init(Default::default).hash_one(wanted)
}

/// A standard-conforming SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn options_are_read_as_postgresql_reads_them() {
        let got = requested(&kv(&[
            ("user", "app"),
            ("database", "db"),
            ("application_name", "api"),
            (
                "options",
                "-c statement_timeout=5s -csearch_path=a,b --lock-timeout=1s -c x.y=two\\ words",
            ),
        ]));
        assert_eq!(
            got,
            Ok(kv(&[
                ("application_name", "api"),
                ("statement_timeout", "5s"),
                ("search_path", "a,b"),
                ("lock_timeout", "1s"),
                ("x.y", "two words"),
            ]))
        );
        // options win over the packet's own parameter of the same name.
        assert_eq!(
            requested(&kv(&[
                ("statement_timeout", "1"),
                ("options", "-c Statement_Timeout=2")
            ])),
            Ok(kv(&[("Statement_Timeout", "2")]))
        );
        assert_eq!(
            requested(&kv(&[("options", "-B 100")])),
            Err(ParamError::Switch("-B".into()))
        );
        assert_eq!(
            requested(&kv(&[("options", "-c")])),
            Err(ParamError::Switch("-c".into()))
        );
        assert_eq!(
            requested(&kv(&[("bad name", "1")])),
            Err(ParamError::BadName("bad name".into()))
        );
        assert_eq!(
            requested(&kv(&[("_pq_.x", "1"), ("replication", "false")])),
            Ok(vec![])
        );
    }

    #[test]
    fn catch_up_sets_what_differs_and_resets_what_was_for_someone_else() {
        let params = vec![(b"TimeZone".to_vec(), b"UTC".to_vec())];
        assert_eq!(catch_up(&kv(&[("TimeZone", "UTC")]), &params, &[]), None);
        assert_eq!(
            catch_up(&kv(&[("TimeZone", "Asia/Tokyo")]), &params, &[]).as_deref(),
            Some("SELECT pg_catalog.set_config('TimeZone', 'Asia/Tokyo', false);")
        );
        let applied = kv(&[("statement_timeout", "5s"), ("search_path", "a")]);
        assert_eq!(
            catch_up(&kv(&[("statement_timeout", "5s")]), &params, &applied).as_deref(),
            Some("RESET search_path;")
        );
        assert_eq!(
            catch_up(&kv(&[("search_path", "it's")]), &params, &[]).as_deref(),
            Some("SELECT pg_catalog.set_config('search_path', 'it''s', false);")
        );
        assert_eq!(
            applied_after(&kv(&[("TimeZone", "UTC"), ("statement_timeout", "1")])),
            kv(&[("statement_timeout", "1")])
        );
    }
}
