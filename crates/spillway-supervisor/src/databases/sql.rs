//! Quoting for the few statements spillway writes itself (user names and passwords come from
//! secrets and may contain anything).

/// A PostgreSQL identifier: `"name"` with `"` doubled.
pub fn pg_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A PostgreSQL string literal (standard_conforming_strings is on by default since 9.1).
pub fn pg_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A MariaDB identifier: `` `name` `` with `` ` `` doubled.
pub fn my_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// A MariaDB string literal (backslash escapes are on unless NO_BACKSLASH_ESCAPES).
pub fn my_literal(s: &str) -> String {
    format!(
        "'{}'",
        s.replace('\\', "\\\\")
            .replace('\'', "\\'")
            .replace('\0', "\\0")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_hostile_input() {
        assert_eq!(pg_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(pg_literal("it's"), "'it''s'");
        assert_eq!(my_ident("a`b"), "`a``b`");
        assert_eq!(my_literal("a\\'b"), "'a\\\\\\'b'");
    }
}
