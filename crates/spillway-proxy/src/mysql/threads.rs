//! The connection ids clients see, and `KILL`. A client's id is the proxy's, not a server
//! thread's: server connections pass between clients, so `KILL QUERY n` with a server thread
//! id would stop whichever client happens to hold that connection. The proxy keeps, per
//! client id, its user and the server thread it is using now, and turns a client's `KILL` into
//! one of that thread — only for the same user, as MySQL allows without privileges.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// What `KILL` needs of one client session.
#[derive(Debug)]
pub struct ThreadEntry {
    pub user: String,
    /// The server thread the session's statement runs on now (0: none), and which server of
    /// the target it is on.
    pub server_thread: AtomicU32,
    pub server_index: AtomicU32,
    /// Set by `KILL CONNECTION`; the session closes at its next chance.
    pub killed: AtomicBool,
    pub wake: Notify,
}

#[derive(Default)]
pub struct Threads {
    entries: Mutex<HashMap<u32, Arc<ThreadEntry>>>,
}

/// A session's registration; removed when dropped.
pub struct ThreadSlot {
    pub id: u32,
    pub entry: Arc<ThreadEntry>,
    threads: Arc<Threads>,
}

impl Threads {
    pub fn register(self: &Arc<Self>, id: u32, user: &str) -> ThreadSlot {
        let entry = Arc::new(ThreadEntry {
            user: user.to_owned(),
            server_thread: AtomicU32::new(0),
            server_index: AtomicU32::new(0),
            killed: AtomicBool::new(false),
            wake: Notify::new(),
        });
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Arc::clone(&entry));
        ThreadSlot {
            id,
            entry,
            threads: Arc::clone(self),
        }
    }

    pub fn get(&self, id: u32) -> Option<Arc<ThreadEntry>> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }
}

impl ThreadSlot {
    pub fn using(&self, thread: u32, server_index: usize) {
        self.entry.server_thread.store(thread, Ordering::Relaxed);
        self.entry
            .server_index
            .store(server_index as u32, Ordering::Relaxed);
    }
}

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        let mut entries = self
            .threads
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // A session that re-registered (COM_CHANGE_USER) keeps its id under the new entry.
        if entries
            .get(&self.id)
            .is_some_and(|e| Arc::ptr_eq(e, &self.entry))
        {
            entries.remove(&self.id);
        }
    }
}

/// `KILL [QUERY | CONNECTION] <id>` (the whole statement), parsed; `None` for anything else.
pub fn parse_kill(sql: &[u8]) -> Option<(bool, u32)> {
    let text = std::str::from_utf8(sql)
        .ok()?
        .trim()
        .trim_end_matches(';')
        .trim();
    let mut words = text.split_ascii_whitespace();
    if !words.next()?.eq_ignore_ascii_case("kill") {
        return None;
    }
    let mut next = words.next()?;
    // MariaDB's KILL [HARD | SOFT] comes first.
    if next.eq_ignore_ascii_case("hard") || next.eq_ignore_ascii_case("soft") {
        next = words.next()?;
    }
    let (query_only, id) = if next.eq_ignore_ascii_case("query") {
        (true, words.next()?)
    } else if next.eq_ignore_ascii_case("connection") {
        (false, words.next()?)
    } else {
        (false, next)
    };
    if words.next().is_some() {
        return None;
    }
    id.parse().ok().map(|id| (query_only, id))
}

/// Whether any statement of `sql` begins with KILL (after whitespace and comments).
pub fn mentions_kill(sql: &[u8]) -> bool {
    let mut i = 0;
    let mut at_start = true;
    while i < sql.len() {
        match sql[i] {
            b' ' | b'\t' | b'\r' | b'\n' | b'(' => i += 1,
            b';' => {
                at_start = true;
                i += 1;
            }
            b'#' => {
                while i < sql.len() && sql[i] != b'\n' {
                    i += 1;
                }
            }
            b'-' if sql.get(i + 1) == Some(&b'-') => {
                while i < sql.len() && sql[i] != b'\n' {
                    i += 1;
                }
            }
            // An executable comment's contents are SQL; a plain one is skipped.
            b'/' if sql.get(i + 1) == Some(&b'*') => {
                if sql.get(i + 2) == Some(&b'!') {
                    i += 3;
                    while i < sql.len() && sql[i].is_ascii_digit() {
                        i += 1;
                    }
                } else if sql.get(i + 2) == Some(&b'M') && sql.get(i + 3) == Some(&b'!') {
                    i += 4;
                    while i < sql.len() && sql[i].is_ascii_digit() {
                        i += 1;
                    }
                } else {
                    match sql[i + 2..].windows(2).position(|w| w == b"*/") {
                        Some(end) => i += end + 4,
                        None => return false,
                    }
                }
            }
            _ => {
                if at_start
                    && sql.len() >= i + 4
                    && sql[i..i + 4].eq_ignore_ascii_case(b"kill")
                    && !sql
                        .get(i + 4)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    return true;
                }
                at_start = false;
                // Skip to the next statement, past quoted text and comments.
                while i < sql.len() && sql[i] != b';' {
                    match sql[i] {
                        b'/' if sql.get(i + 1) == Some(&b'*')
                            && sql.get(i + 2) != Some(&b'!')
                            && sql.get(i + 2) != Some(&b'M') =>
                        {
                            match sql[i + 2..].windows(2).position(|w| w == b"*/") {
                                Some(end) => i += end + 4,
                                None => return false,
                            }
                        }
                        b'#' => {
                            while i < sql.len() && sql[i] != b'\n' {
                                i += 1;
                            }
                        }
                        b'-' if sql.get(i + 1) == Some(&b'-') => {
                            while i < sql.len() && sql[i] != b'\n' {
                                i += 1;
                            }
                        }
                        q @ (b'\'' | b'"' | b'`') => {
                            i += 1;
                            while i < sql.len() && sql[i] != q {
                                if sql[i] == b'\\' {
                                    i += 1;
                                }
                                i += 1;
                            }
                            i += 1;
                        }
                        _ => i += 1,
                    }
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_statements() {
        assert_eq!(parse_kill(b"KILL QUERY 12"), Some((true, 12)));
        assert_eq!(parse_kill(b"kill 7;"), Some((false, 7)));
        assert_eq!(parse_kill(b"KILL CONNECTION 9"), Some((false, 9)));
        assert_eq!(parse_kill(b"KILL HARD QUERY 3"), Some((true, 3)));
        assert_eq!(parse_kill(b"KILL QUERY ID 3"), None);
        assert_eq!(parse_kill(b"KILL USER bob"), None);
        assert_eq!(parse_kill(b"SELECT 1"), None);
        for k in [
            &b"KILL (9)"[..],
            b"SELECT 1; KILL 9",
            b"/* x */ kill user app",
            b"/*!KILL 3*/",
            b"  Kill Query Id 4",
        ] {
            assert!(mentions_kill(k), "{}", String::from_utf8_lossy(k));
        }
        for k in [
            &b"SELECT 'kill 9'"[..],
            b"SELECT killed FROM t",
            b"-- KILL 3\nSELECT 1",
            b"SELECT 1 /* ; KILL 2 */",
        ] {
            assert!(!mentions_kill(k), "{}", String::from_utf8_lossy(k));
        }
    }
}
