//! Binary prepared statements across pooled connections. RDS Proxy pins a client that
//! prepares; spillway gives each client statement ids of its own and prepares the text on
//! whichever connection the client borrows (once per connection: each remembers its statements
//! by schema and text), rewriting the id in every COM_STMT_EXECUTE. The server's answer to the
//! first COM_STMT_PREPARE of a text is kept per pool and replayed to later clients without a
//! round trip, which is what a driver that prepares on every new connection (mysql2's
//! `execute()`, one connection per Lambda request) costs a pooler otherwise.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;

use super::backend::{MyBackendError, MyConn, ServerStmt};
use super::constants::{ERR, OK, cap, com, error, status};
use super::messages::{ErrPacket, eof};
use super::packet;
use super::pinning::{self, Classified, PinReason};
use super::proxy::PreparedMeta;
use super::relay::{Expect, Outcome};
use super::session::{ClientStmt, End, Session};

/// Statements one server connection keeps prepared; past this the oldest is closed (servers
/// cap them: max_prepared_stmt_count is 16,382 for the whole server by default).
const PER_CONNECTION: usize = 256;

/// What decides how a server parses a statement's text, besides the text: the schema its
/// table names resolve in, and the session's `sql_mode` (ANSI_QUOTES, PIPES_AS_CONCAT) and
/// character set. A statement is prepared at most once per connection and per pool for each
/// of these; hits are checked against the text itself (the hash is 64 bits).
pub fn statement_key(schema: Option<&str>, vars: &[(String, String)], sql: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    schema.hash(&mut h);
    for name in PARSE_VARIABLES {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .hash(&mut h);
    }
    sql.hash(&mut h);
    h.finish()
}

/// The session variables that change how a text parses.
const PARSE_VARIABLES: [&str; 4] = [
    "sql_mode",
    "character_set_client",
    "character_set_connection",
    "collation_connection",
];

/// Why preparing on a server failed: the server refused the text (the connection is fine),
/// or the connection broke or desynchronised (it must not be reused).
enum PrepareError {
    Refused(ErrPacket),
    Broken(ErrPacket),
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(x) => u16::from_le_bytes([x[0], x[1]]),
        None => 0,
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]))
}

/// Prepares `sql` on `conn` (its answer is read and kept, not relayed).
async fn prepare_on(
    conn: &mut MyConn,
    sql: &Bytes,
    hash: u64,
) -> Result<(ServerStmt, PreparedMeta), PrepareError> {
    let broken = |e: MyBackendError| PrepareError::Broken(e.to_client());
    if conn.prepared.len() >= PER_CONNECTION
        && let Some(old) = conn.prepared.keys().next().copied()
        && let Some(stmt) = conn.prepared.remove(&old)
    {
        let mut close = vec![com::STMT_CLOSE];
        close.extend_from_slice(&stmt.id.to_le_bytes());
        conn.send(&close).await.map_err(broken)?;
    }
    let mut payload = Vec::with_capacity(sql.len() + 1);
    payload.push(com::STMT_PREPARE);
    payload.extend_from_slice(sql);
    conn.send(&payload).await.map_err(broken)?;
    let first = conn.read().await.map_err(broken)?;
    match first.payload.first() {
        Some(&OK) if first.payload.len() >= 12 => {}
        Some(&ERR) => {
            return Err(PrepareError::Refused(
                ErrPacket::parse(&first.payload).unwrap_or_else(|_| {
                    ErrPacket::new(error::UNKNOWN_ERROR, "the server refused the statement")
                }),
            ));
        }
        _ => {
            return Err(PrepareError::Broken(ErrPacket::new(
                error::UNKNOWN_ERROR,
                "malformed COM_STMT_PREPARE answer",
            )));
        }
    }
    let id = u32_at(&first.payload, 1).unwrap_or_default();
    let columns = u16_at(&first.payload, 5);
    let params = u16_at(&first.payload, 7);
    let mut packets = vec![first.payload.freeze()];
    for _ in 0..(usize::from(params) + usize::from(columns)) {
        let p = conn.read().await.map_err(broken)?;
        packets.push(p.payload.freeze());
    }
    let stmt = ServerStmt {
        id,
        params,
        types: None,
        sql: sql.clone(),
    };
    conn.prepared.insert(hash, stmt.clone());
    Ok((
        stmt,
        PreparedMeta {
            sql: sql.clone(),
            params,
            columns,
            packets,
        },
    ))
}

impl Session {
    /// Marks the held connection unusable after a prepare that broke it.
    fn drop_broken(&mut self) {
        if let Some(mut g) = self.guard.take() {
            g.broken = true;
        }
    }

    /// COM_STMT_PREPARE: answered from the pool's memory when the text was prepared before,
    /// else by a server (on the connection the client borrows, which then holds it).
    pub(super) async fn prepare(&mut self, payload: BytesMut) -> Result<(), End> {
        self.metrics.query_requests.inc();
        let sql = Bytes::copy_from_slice(&payload[1..]);
        let hash = statement_key(self.schema.as_deref(), &self.vars, &sql);
        let classified = if sql.len() > pinning::SIZE_LIMIT {
            Classified {
                pin: Some(PinReason::StatementSize),
                ..Default::default()
            }
        } else {
            pinning::classify(&sql, self.settings.filters)
        };
        let cached = self
            .proxy
            .prepared(&self.key, hash)
            .filter(|m| m.sql == sql);
        let meta = match cached {
            Some(m) => m,
            None => {
                if let Err(e) = self.ensure_conn().await {
                    self.send_err(1, e).await;
                    return Ok(());
                }
                let Some(g) = self.guard.as_mut() else {
                    return Err(End::Error("no server connection".into()));
                };
                let conn = g.conn();
                let result = prepare_on(conn, &sql, hash).await;
                let st = conn.status;
                let was_in_trans = st & status::IN_TRANS != 0;
                match result {
                    Ok((_, meta)) => {
                        let meta = Arc::new(meta);
                        self.proxy
                            .remember_prepared(&self.key, hash, Arc::clone(&meta));
                        let outcome = Outcome {
                            status: st,
                            ..Default::default()
                        };
                        self.after(outcome, was_in_trans).await;
                        meta
                    }
                    Err(PrepareError::Refused(e)) => {
                        self.send_err(1, e).await;
                        let outcome = Outcome {
                            status: st,
                            error: true,
                            ..Default::default()
                        };
                        self.after(outcome, was_in_trans).await;
                        return Ok(());
                    }
                    Err(PrepareError::Broken(e)) => {
                        self.drop_broken();
                        self.send_err(1, e).await;
                        return Ok(());
                    }
                }
            }
        };
        let id = self.next_stmt;
        self.next_stmt = self.next_stmt.wrapping_add(1).max(1);
        self.stmts.insert(
            id,
            ClientStmt {
                sql,
                hash,
                pin: classified.pin,
                last_insert_id: classified.last_insert_id,
                types: None,
            },
        );
        let mut out = BytesMut::new();
        let mut seq = 1;
        let deprecate = self.caps & cap::DEPRECATE_EOF != 0;
        let st = self
            .guard
            .as_ref()
            .and_then(|g| g.conn_ref())
            .map_or(status::AUTOCOMMIT, |c| {
                c.status & !status::SESSION_STATE_CHANGED
            });
        let params = usize::from(meta.params);
        let columns = usize::from(meta.columns);
        for (i, p) in meta.packets.iter().enumerate() {
            if i == 0 {
                let mut ok = p.to_vec();
                ok[1..5].copy_from_slice(&id.to_le_bytes());
                seq = packet::put(&mut out, seq, &ok);
            } else {
                seq = packet::put(&mut out, seq, p);
            }
            if !deprecate && ((params > 0 && i == params) || (columns > 0 && i == params + columns))
            {
                seq = packet::put(&mut out, seq, &eof(0, st));
            }
        }
        self.stream
            .write_all(&out)
            .await
            .map_err(|_| End::ClientGone)
    }

    /// The server statement for client statement `id` on the held connection (prepared there
    /// now if it is not yet).
    async fn server_stmt(&mut self, id: u32) -> Result<(ServerStmt, u64), ErrPacket> {
        let Some(stmt) = self.stmts.get(&id) else {
            return Err(ErrPacket::new(
                error::UNKNOWN_STMT_HANDLER,
                format!("Unknown prepared statement handler ({id}) given to mysqld_stmt_execute"),
            ));
        };
        let (sql, hash) = (stmt.sql.clone(), stmt.hash);
        self.ensure_conn().await?;
        let Some(g) = self.guard.as_mut() else {
            return Err(ErrPacket::new(error::UNKNOWN_ERROR, "no server connection"));
        };
        let conn = g.conn();
        if let Some(s) = conn.prepared.get(&hash).filter(|s| s.sql == sql) {
            return Ok((s.clone(), hash));
        }
        match prepare_on(conn, &sql, hash).await {
            Ok((s, _)) => Ok((s, hash)),
            Err(PrepareError::Refused(e)) => Err(e),
            Err(PrepareError::Broken(e)) => {
                self.drop_broken();
                Err(e)
            }
        }
    }

    /// COM_STMT_EXECUTE with the statement id rewritten, and the client's parameter types sent
    /// when it relies on types it bound earlier that this connection does not have.
    pub(super) async fn execute(&mut self, mut payload: BytesMut) -> Result<(), End> {
        self.metrics.query_requests.inc();
        let Some(id) = u32_at(&payload, 1) else {
            self.send_err(
                1,
                ErrPacket::new(error::UNKNOWN_COM, "malformed COM_STMT_EXECUTE"),
            )
            .await;
            return Ok(());
        };
        // What the statement's text pins, pins at its execute, as a text query's would.
        let (pin, reads_insert_id) = self
            .stmts
            .get(&id)
            .map_or((None, false), |s| (s.pin, s.last_insert_id));
        if let Some(reason) = pin
            && self.ensure_conn().await.is_ok()
        {
            self.pin(&reason.to_string());
        }
        if let Some(&flags) = payload.get(5)
            && flags & 0x07 != 0
            && self.ensure_conn().await.is_ok()
        {
            self.pin("a cursor (COM_STMT_EXECUTE with a cursor type)");
        }
        let (server, hash) = match self.server_stmt(id).await {
            Ok(s) => s,
            Err(e) => {
                self.send_err(1, e).await;
                return Ok(());
            }
        };
        if reads_insert_id && let Err(e) = self.restore_last_insert_id().await {
            self.send_err(1, e).await;
            return Ok(());
        }
        payload[1..5].copy_from_slice(&server.id.to_le_bytes());
        let params = usize::from(server.params);
        if params > 0 {
            let flag_at = 10 + params.div_ceil(8);
            match payload.get(flag_at).copied() {
                Some(1) => {
                    let types = payload
                        .get(flag_at + 1..flag_at + 1 + 2 * params)
                        .map(<[u8]>::to_vec);
                    if let Some(stmt) = self.stmts.get_mut(&id) {
                        stmt.types.clone_from(&types);
                    }
                    self.set_server_types(hash, types);
                }
                // The client relies on the types it bound before; the connection may hold
                // another client's, or none: send the client's own.
                Some(0) => {
                    let mine = self.stmts.get(&id).and_then(|s| s.types.clone());
                    if let Some(types) = mine.filter(|t| server.types.as_ref() != Some(t)) {
                        let mut with = BytesMut::with_capacity(payload.len() + types.len());
                        with.extend_from_slice(&payload[..flag_at]);
                        with.extend_from_slice(&[1]);
                        with.extend_from_slice(&types);
                        with.extend_from_slice(&payload[flag_at + 1..]);
                        payload = with;
                        self.set_server_types(hash, Some(types));
                    }
                }
                _ => {}
            }
        }
        // The server uses (and clears) this statement's long data at its execute.
        self.long_data.remove(&hash);
        self.forward_held(&payload, Expect::Results).await
    }

    fn set_server_types(&mut self, hash: u64, types: Option<Vec<u8>>) {
        if let Some(g) = self.guard.as_mut()
            && let Some(s) = g.conn().prepared.get_mut(&hash)
        {
            s.types = types;
        }
    }

    /// COM_STMT_SEND_LONG_DATA: the data waits on the server connection until the execute, so
    /// the client keeps it until then (and the connection is reset if it leaves without one).
    /// No answer.
    pub(super) async fn send_long_data(&mut self, mut payload: BytesMut) -> Result<(), End> {
        let Some(id) = u32_at(&payload, 1) else {
            return Ok(());
        };
        let Ok((server, hash)) = self.server_stmt(id).await else {
            // No answer is defined: the execute that follows reports the error.
            return Ok(());
        };
        payload[1..5].copy_from_slice(&server.id.to_le_bytes());
        self.long_data.insert(hash);
        if let Some(g) = self.guard.as_mut()
            && let Err(e) = g.conn().send(&payload).await
        {
            g.broken = true;
            self.guard = None;
            self.long_data.clear();
            return Err(End::Error(format!("lost the server connection: {e}")));
        }
        Ok(())
    }

    /// COM_STMT_CLOSE: the client's id goes; the server statement stays for other clients
    /// (long data sent for it, if any, goes with the reset `release` does).
    pub(super) fn close_statement(&mut self, payload: &[u8]) {
        if let Some(id) = u32_at(payload, 1) {
            self.stmts.remove(&id);
        }
    }

    /// COM_STMT_RESET: clears long data on the connection that has it, else there is nothing
    /// to reset and the proxy answers.
    pub(super) async fn reset_statement(&mut self, mut payload: BytesMut) -> Result<(), End> {
        let Some(id) = u32_at(&payload, 1) else {
            self.send_err(
                1,
                ErrPacket::new(error::UNKNOWN_COM, "malformed COM_STMT_RESET"),
            )
            .await;
            return Ok(());
        };
        let Some(hash) = self.stmts.get(&id).map(|s| s.hash) else {
            self.send_err(
                1,
                ErrPacket::new(
                    error::UNKNOWN_STMT_HANDLER,
                    format!("Unknown prepared statement handler ({id}) given to mysqld_stmt_reset"),
                ),
            )
            .await;
            return Ok(());
        };
        let server = self
            .guard
            .as_mut()
            .and_then(|g| g.conn().prepared.get(&hash).cloned());
        match server {
            Some(s) => {
                payload[1..5].copy_from_slice(&s.id.to_le_bytes());
                self.long_data.remove(&hash);
                self.forward_held(&payload, Expect::Results).await
            }
            None => self.send_ok(1).await,
        }
    }

    /// COM_STMT_FETCH: rows of an open cursor (the client is pinned since it opened it).
    pub(super) async fn fetch(&mut self, mut payload: BytesMut) -> Result<(), End> {
        let id = u32_at(&payload, 1).unwrap_or_default();
        let hash = self.stmts.get(&id).map(|s| s.hash);
        let server = match (hash, self.guard.as_mut()) {
            (Some(h), Some(g)) => g.conn().prepared.get(&h).cloned(),
            _ => None,
        };
        let Some(s) = server else {
            self.send_err(
                1,
                ErrPacket::new(
                    error::UNKNOWN_STMT_HANDLER,
                    format!("Unknown prepared statement handler ({id}) given to mysqld_stmt_fetch"),
                ),
            )
            .await;
            return Ok(());
        };
        payload[1..5].copy_from_slice(&s.id.to_le_bytes());
        self.forward_held(&payload, Expect::Rows).await
    }
}
