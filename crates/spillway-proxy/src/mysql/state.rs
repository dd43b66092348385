//! Bringing a borrowed connection's session to its client's: the system variables the client
//! set (restored with one `SET SESSION`, the ones it did not set returned to the connection's
//! baseline or DEFAULT) and its schema (COM_INIT_DB). RDS Proxy instead reuses a connection
//! only for clients whose values are the same; restoring lets tenants with different settings
//! share one pool.

use super::backend::MyConn;
use super::constants::{ERR, OK, com};
use super::messages::{ErrPacket, OkPacket};
use super::session::Session;

/// A variable's value as SQL: numbers as they are, everything else quoted.
pub fn value_sql(name: &str, v: &str) -> String {
    // The tracker prints NULL as an empty value; for the character-set variables (where
    // Connector/J sets `character_set_results = NULL`) an empty string is no charset at all.
    if v.is_empty() && name.starts_with("character_set_") {
        return "NULL".into();
    }
    let numeric = !v.is_empty()
        && v.bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-') || b == b'.')
        && v != "-"
        && v.bytes().filter(|b| *b == b'.').count() <= 1;
    if numeric {
        v.to_owned()
    } else {
        format!("'{}'", v.replace('\\', "\\\\").replace('\'', "''"))
    }
}

/// Variables that are the client session's, not the connection's: the proxy applies them to
/// the client (its idle limit) and keeps them off pooled connections, where a short
/// `wait_timeout` would have the server close a connection other clients will borrow.
pub fn client_side(name: &str) -> bool {
    matches!(name, "wait_timeout" | "interactive_timeout")
}

/// The `SET SESSION` that brings `conn`'s variables to `wanted`, if they differ.
pub fn variables_sql(conn: &MyConn, wanted: &[(String, String)]) -> Option<String> {
    let mut parts = Vec::new();
    for (k, v) in wanted.iter().filter(|(k, _)| !client_side(k)) {
        if !conn.variables.iter().any(|(ck, cv)| ck == k && cv == v) {
            parts.push(format!("{k} = {}", value_sql(k, v)));
        }
    }
    for (k, _) in &conn.variables {
        if client_side(k) || !wanted.iter().any(|(wk, _)| wk == k) {
            match conn.baseline.iter().find(|(bk, _)| bk == k) {
                Some((_, v)) => parts.push(format!("{k} = {}", value_sql(k, v))),
                None => parts.push(format!("{k} = DEFAULT")),
            }
        }
    }
    (!parts.is_empty()).then(|| format!("SET SESSION {}", parts.join(", ")))
}

/// Syncs the session's held connection; `Ok(false)` if its schema cannot be made the
/// client's (the caller tries another connection).
pub async fn sync(s: &mut Session) -> Result<bool, ErrPacket> {
    let Some(g) = s.guard.as_mut() else {
        return Ok(false);
    };
    let conn = g.conn();
    if let Some(sql) = variables_sql(conn, &s.vars) {
        if let Err(e) = conn.query(&sql).await {
            g.broken = true;
            s.guard = None;
            return Err(e.to_client());
        }
        conn.variables = s
            .vars
            .iter()
            .filter(|(k, _)| !client_side(k))
            .cloned()
            .collect();
    }
    if conn.schema == s.schema {
        return Ok(true);
    }
    let Some(schema) = s.schema.clone() else {
        return Ok(false);
    };
    let mut payload = vec![com::INIT_DB];
    payload.extend_from_slice(schema.as_bytes());
    let reply = match conn.send(&payload).await {
        Ok(()) => conn.read().await,
        Err(e) => Err(e),
    };
    match reply {
        Ok(p) if p.payload.first() == Some(&OK) => {
            if let Ok(ok) = OkPacket::parse(&p.payload, conn.capabilities) {
                conn.note_ok(&ok);
            }
            conn.schema = Some(schema);
            Ok(true)
        }
        Ok(p) if p.payload.first() == Some(&ERR) => {
            // The database went away (or the grant did) since the client selected it.
            let e = ErrPacket::parse(&p.payload).unwrap_or_else(|_| {
                ErrPacket::new(
                    super::constants::error::UNKNOWN_ERROR,
                    "cannot select the database",
                )
            });
            Err(e)
        }
        Ok(_) => {
            g.broken = true;
            s.guard = None;
            Err(ErrPacket::new(
                super::constants::error::UNKNOWN_ERROR,
                "unexpected reply to COM_INIT_DB",
            ))
        }
        Err(e) => {
            g.broken = true;
            s.guard = None;
            Err(e.to_client())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_unless_numbers() {
        assert_eq!(value_sql("time_zone", "28800"), "28800");
        assert_eq!(value_sql("time_zone", "-1"), "-1");
        assert_eq!(value_sql("time_zone", "0.5"), "0.5");
        assert_eq!(value_sql("time_zone", "+02:00"), "'+02:00'");
        assert_eq!(value_sql("time_zone", "ON"), "'ON'");
        assert_eq!(value_sql("time_zone", "it's"), "'it''s'");
        assert_eq!(value_sql("time_zone", ""), "''");
        assert_eq!(value_sql("time_zone", "1.2.3"), "'1.2.3'");
        assert_eq!(value_sql("character_set_results", ""), "NULL");
    }
}
