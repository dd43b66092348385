//! A logged-in MySQL client: the loop that reads its commands, borrows a server connection
//! for the first command of a transaction, brings that connection's session to the client's
//! (`state.rs`), relays the answer (`relay.rs`), and gives the connection back when the status
//! flags say no transaction is open — unless the client pinned it or the proxy runs in session
//! mode. MySQL clients wait for each answer before the next command (the protocol has no
//! pipelining), so one command at a time is the whole model.
//!
//! What a client changes is learnt from the server's session tracker (system variables, the
//! schema) and restored on whichever connection the client borrows next; what cannot be
//! restored pins the client (the statement classifier in `pinning.rs`, backed by the tracker's
//! "state changed" mark), and a pinned connection is reset before anyone else uses it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use spillway_stack::model::PoolMode;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use super::backend::MyConn;
use super::constants::{EOF, OK, cap, com, error, status};
use super::handshake::{Admitted, MyLogin, borrow_error};
use super::messages::{ErrPacket, OkPacket, eof};
use super::packet::{self, PacketError};
use super::pinning::{self, Classified, PinReason};
use super::proxy::{MyProxy, MySettings, MyUser};
use super::relay::{self, Expect, Outcome, RelayError};
use super::threads::{ThreadSlot, parse_kill};
use crate::metrics::EndpointMetrics;
use crate::pool::{Guard, PoolId, PoolKey};
use crate::socket::Socket;

/// A client's prepared statement: its text, and what its answer to the client said.
pub(super) struct ClientStmt {
    pub sql: Bytes,
    pub hash: u64,
    /// What its text pins (checked at every execute) and whether it reads LAST_INSERT_ID().
    pub pin: Option<PinReason>,
    pub last_insert_id: bool,
    /// The parameter types of its last execute that sent them (to send on a connection that
    /// has not seen them).
    pub types: Option<Vec<u8>>,
}

/// Why a session ends.
#[derive(Debug)]
pub(super) enum End {
    Quit,
    ClientGone,
    Error(String),
}

pub struct Session {
    pub(super) stream: Socket,
    pub(super) buf: BytesMut,
    pub(super) out: BytesMut,
    pub(super) peer: std::net::SocketAddr,
    pub(super) caps: u32,
    pub(super) user: Arc<MyUser>,
    pub(super) key: PoolKey,
    pub(super) pool: PoolId,
    pub(super) settings: Arc<MySettings>,
    pub(super) proxy: Arc<MyProxy>,
    pub(super) metrics: Arc<EndpointMetrics>,
    pub(super) guard: Option<Guard<MyConn>>,
    /// The client's session, relative to a fresh connection's: variables it set and its schema.
    pub(super) vars: Vec<(String, String)>,
    pub(super) schema: Option<String>,
    pub(super) login_schema: Option<String>,
    pub(super) pinned: Option<String>,
    /// Statements (by key) whose long data waits on the connection for their execute: the
    /// client keeps the connection until then, and it is reset if the client leaves first.
    pub(super) long_data: std::collections::HashSet<u64>,
    /// The connection's options no longer match its pool (COM_SET_OPTION while held): close it
    /// when it is given back.
    pub(super) poisoned: bool,
    pub(super) stmts: HashMap<u32, ClientStmt>,
    pub(super) next_stmt: u32,
    pub(super) last_insert_id: u64,
    pub(super) thread: ThreadSlot,
    /// The statement being answered is one whose changes the tracker reports in full (a
    /// plain SET of tracked variables, USE): a "state changed" mark then needs no pin.
    pub(super) tracked_statement: bool,
}

pub fn run(
    login: MyLogin,
    proxy: Arc<MyProxy>,
    metrics: Arc<EndpointMetrics>,
    shutdown: watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send {
    let MyLogin { stream, admitted } = login;
    let Admitted {
        buf,
        peer,
        capabilities,
        user,
        key,
        pool,
        schema,
        connection_id,
        settings,
        guard,
    } = admitted;
    let thread = proxy.threads.register(connection_id, &user.name);
    let mut s = Session {
        stream,
        buf,
        out: BytesMut::new(),
        peer,
        caps: capabilities,
        user,
        key,
        pool,
        settings,
        proxy,
        metrics,
        guard,
        vars: Vec::new(),
        schema: schema.clone(),
        login_schema: schema,
        pinned: None,
        long_data: std::collections::HashSet::new(),
        poisoned: false,
        stmts: HashMap::new(),
        next_stmt: 1,
        last_insert_id: 0,
        thread,
        tracked_statement: false,
    };
    // Captured and used in place (see `pg::session::run`: an async fn would hold the login
    // and the session both, for the session's whole life).
    async move { s.live(shutdown).await }
}

impl Session {
    async fn live(&mut self, mut shutdown: watch::Receiver<bool>) {
        if let Some(g) = &self.guard
            && let Some(c) = g.conn_ref()
        {
            self.thread.using(c.thread_id, c.pooled.server_index);
        }
        if self.settings.mode == PoolMode::Transaction && self.guard.is_some() {
            // The login's connection is not kept: the first command borrows like any other.
            self.release().await;
        }
        self.metrics.client_connections.add(1);
        let end = self.serve(&mut shutdown).await;
        match &end {
            End::Quit | End::ClientGone => {}
            End::Error(e) => {
                tracing::info!(peer = %self.peer, user = %self.user.name, proxy = %self.settings.proxy, "MySQL session ended: {e}")
            }
        }
        self.finish().await;
        self.metrics.client_connections.add(-1);
    }
}

/// What a client's next read produced.
enum Incoming {
    Command(packet::Packet),
    End(End),
}

impl Session {
    async fn read_command(&mut self) -> Incoming {
        loop {
            match packet::try_take(&mut self.buf, self.settings.max_packet) {
                Ok(Some(p)) => return Incoming::Command(p),
                Ok(None) => {}
                Err(PacketError::TooLarge { len, limit }) => {
                    self.send_err(
                        0,
                        ErrPacket::new(
                            error::NET_PACKET_TOO_LARGE,
                            "Got a packet bigger than 'max_allowed_packet' bytes",
                        ),
                    )
                    .await;
                    return Incoming::End(End::Error(format!(
                        "a command of {len} bytes or more is above the proxy's limit of {limit}"
                    )));
                }
                Err(PacketError::OutOfOrder) => {
                    self.send_err(
                        0,
                        ErrPacket::new(error::NET_READ, "Got packets out of order"),
                    )
                    .await;
                    return Incoming::End(End::Error("a command's parts out of order".into()));
                }
                Err(e) => return Incoming::End(End::Error(e.to_string())),
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => return Incoming::End(End::ClientGone),
                Ok(_) => {}
                Err(_) => return Incoming::End(End::ClientGone),
            }
        }
    }

    async fn serve(&mut self, shutdown: &mut watch::Receiver<bool>) -> End {
        loop {
            let timeout = self.idle_limit();
            let entry = Arc::clone(&self.thread.entry);
            let incoming = tokio::select! {
                i = self.read_command() => i,
                _ = shutdown.changed() => return End::Quit,
                _ = tokio::time::sleep(timeout) => {
                    tracing::info!(peer = %self.peer, user = %self.user.name, "closing a MySQL client idle for {timeout:?}");
                    return End::Quit;
                }
                _ = entry.wake.notified() => return End::Quit,
            };
            let p = match incoming {
                Incoming::Command(p) => p,
                Incoming::End(e) => return e,
            };
            if self
                .thread
                .entry
                .killed
                .load(std::sync::atomic::Ordering::Relaxed)
            {
                return End::Quit;
            }
            if p.first_seq != 0 {
                self.send_err(
                    p.seq.wrapping_add(1),
                    ErrPacket::new(error::NET_READ, "Got packets out of order"),
                )
                .await;
                return End::Error(format!("a command with sequence number {}", p.seq));
            }
            if let Err(end) = self.command(p.payload).await {
                return end;
            }
        }
    }

    /// Handles one command; `Err` ends the session.
    async fn command(&mut self, payload: BytesMut) -> Result<(), End> {
        let Some(&cmd) = payload.first() else {
            self.send_err(1, ErrPacket::new(error::UNKNOWN_COM, "Unknown command"))
                .await;
            return Ok(());
        };
        match cmd {
            com::QUIT => Err(End::Quit),
            com::PING => self.send_ok(1).await,
            com::QUERY => self.query(payload).await,
            com::INIT_DB => {
                self.tracked_statement = true;
                let r = self.forward(payload, Expect::Results).await;
                self.tracked_statement = false;
                r
            }
            com::FIELD_LIST => self.forward(payload, Expect::Fields).await,
            com::STATISTICS => self.forward(payload, Expect::One).await,
            com::PROCESS_KILL => {
                let id = payload
                    .get(1..5)
                    .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                self.kill(false, id).await
            }
            com::RESET_CONNECTION => {
                self.reset_session().await;
                self.send_ok(1).await
            }
            com::SET_OPTION => self.set_option(&payload).await,
            com::CHANGE_USER => self.change_user(&payload).await,
            com::STMT_PREPARE => self.prepare(payload).await,
            com::STMT_EXECUTE => self.execute(payload).await,
            com::STMT_SEND_LONG_DATA => self.send_long_data(payload).await,
            com::STMT_CLOSE => {
                self.close_statement(&payload);
                Ok(())
            }
            com::STMT_RESET => self.reset_statement(payload).await,
            com::STMT_FETCH => self.fetch(payload).await,
            _ => {
                self.send_err(
                    1,
                    ErrPacket::new(
                        error::UNKNOWN_COM,
                        "Unknown command (not supported through the proxy)",
                    ),
                )
                .await;
                Ok(())
            }
        }
    }

    async fn query(&mut self, payload: BytesMut) -> Result<(), End> {
        self.metrics.query_requests.inc();
        let sql = &payload[1..];
        if self.settings.debug_logging {
            tracing::info!(user = %self.user.name, proxy = %self.settings.proxy, sql = %String::from_utf8_lossy(sql), "statement");
        }
        // One cheap pass decides whether the KILL parsers need to look at all (this runs for
        // every query).
        let kill_word = sql.windows(4).any(|w| w.eq_ignore_ascii_case(b"kill"));
        if kill_word && let Some((query_only, id)) = parse_kill(sql) {
            return self.kill(query_only, id).await;
        }
        if kill_word && super::threads::mentions_kill(sql) {
            // Any other KILL names server threads (or users) that pooled connections share
            // between clients: refused, not passed on.
            self.send_err(
                1,
                ErrPacket::new(
                    (1235, "42000"),
                    "This proxy supports KILL only as a statement of its own: KILL [QUERY | CONNECTION] <id>",
                ),
            )
            .await;
            return Ok(());
        }
        let classified = if sql.len() > pinning::SIZE_LIMIT {
            Classified {
                pin: Some(PinReason::StatementSize),
                ..Default::default()
            }
        } else if pinning::surely_plain(sql) {
            Classified::default()
        } else {
            pinning::classify(sql, self.settings.filters)
        };
        if classified.local_infile && self.caps & cap::LOCAL_FILES == 0 {
            self.send_err(
                1,
                ErrPacket::new(
                    error::NOT_ALLOWED_COMMAND,
                    "The used command is not allowed through this proxy (LOAD DATA LOCAL INFILE: the proxy's local_infile setting allows it)",
                ),
            )
            .await;
            return Ok(());
        }
        if let Some(reason) = classified.pin {
            // Pinned before the statement runs: what it leaves must stay with this client.
            if self.ensure_conn().await.is_ok() {
                self.pin(&reason.to_string());
            }
        }
        if classified.last_insert_id
            && let Err(e) = self.restore_last_insert_id().await
        {
            self.send_err(1, e).await;
            return Ok(());
        }
        self.tracked_statement = classified.tracked && classified.pin.is_none();
        let r = self.forward(payload, Expect::Results).await;
        self.tracked_statement = false;
        r
    }

    /// Sends a command to the client's server connection (borrowing one if it has none) and
    /// relays the answer.
    pub(super) async fn forward(&mut self, payload: BytesMut, expect: Expect) -> Result<(), End> {
        if let Err(e) = self.ensure_conn().await {
            self.send_err(1, e).await;
            return Ok(());
        }
        self.forward_held(&payload, expect).await
    }

    /// [`forward`](Self::forward) on the connection already held.
    pub(super) async fn forward_held(&mut self, payload: &[u8], expect: Expect) -> Result<(), End> {
        let Some(guard) = self.guard.as_mut() else {
            return Err(End::Error("no server connection".into()));
        };
        let started = Instant::now();
        let conn = guard.conn();
        let was_in_trans = conn.status & status::IN_TRANS != 0;
        if let Err(e) = conn.send(payload).await {
            return self.server_lost(e.to_string(), was_in_trans, false).await;
        }
        let result =
            relay::relay(conn, &mut self.stream, &mut self.out, self.caps, expect, 1).await;
        self.metrics
            .query_database_response_latency
            .observe(started.elapsed());
        match result {
            Ok(outcome) => {
                self.after(outcome, was_in_trans).await;
                Ok(())
            }
            Err(RelayError::Client(e)) => {
                if let Some(g) = self.guard.as_mut() {
                    g.broken = true;
                }
                Err(End::Error(format!(
                    "the client went away during a response: {e}"
                )))
            }
            Err(RelayError::Server(e, partial)) => {
                self.out.clear();
                self.server_lost(e.to_string(), was_in_trans, partial).await
            }
        }
    }

    /// The server connection failed during a command: it is closed. A client with nothing of
    /// the answer yet and no transaction to lose gets an error and goes on; otherwise its
    /// connection closes too (its library reports the lost connection, 2013).
    async fn server_lost(&mut self, why: String, in_trans: bool, partial: bool) -> Result<(), End> {
        if let Some(mut g) = self.guard.take() {
            g.broken = true;
        }
        // A pinned client's session (locks, temporary tables, variables) died with the
        // connection: it must learn so, not carry on without them.
        let pinned = self.pinned.is_some() || !self.long_data.is_empty();
        self.unpin();
        self.long_data.clear();
        tracing::warn!(peer = %self.peer, user = %self.user.name, proxy = %self.settings.proxy, "lost the server connection: {why}");
        if partial || in_trans || pinned {
            return Err(End::Error(format!("lost the server connection: {why}")));
        }
        self.send_err(
            1,
            ErrPacket::new(
                error::UNKNOWN_ERROR,
                "Lost connection to the database server during the query",
            ),
        )
        .await;
        Ok(())
    }

    /// After a relayed answer: take in what the server said changed, then keep or give back
    /// the connection.
    pub(super) async fn after(&mut self, outcome: Outcome, was_in_trans: bool) {
        let Outcome {
            status: st,
            changes,
            last_insert_id,
            error,
        } = outcome;
        if last_insert_id != 0 {
            self.last_insert_id = last_insert_id;
            if let Some(g) = self.guard.as_mut() {
                g.conn().last_insert_id = last_insert_id;
            }
        }
        for (k, v) in &changes.variables {
            if pinning::is_tracked_variable(k) || self.settings.filters.exclude_variable_sets {
                super::backend::set_var(&mut self.vars, k, v);
            } else {
                self.pin(&format!("SET of the untracked variable {k}"));
            }
        }
        if let Some(s) = &changes.schema {
            self.schema = (!s.is_empty()).then(|| s.clone());
        }
        // The tracker's "state changed" mark without a statement known to change only what
        // the proxy restores (a CALL, a SELECT that assigns, a statement the classifier missed):
        // pinned, errs on the safe side.
        if changes.state_changed && !self.tracked_statement {
            self.pin("a change of session state the server reported (user variable, temporary table, prepared statement or lock)");
        }
        let autocommit_off = self.autocommit_off();
        let in_trans = st & status::IN_TRANS != 0 || (error && (was_in_trans || autocommit_off));
        if let Some(g) = self.guard.as_mut() {
            let conn = g.conn();
            if in_trans {
                conn.status |= status::IN_TRANS;
            }
        }
        if let Some(g) = self.guard.as_mut()
            && !changes.variables.is_empty()
        {
            // The connection's session now matches the client's (sync made it so before the
            // command; only what the command itself set needs taking in). Client-side
            // variables a statement set stay listed while they are on the connection, so that
            // `release` takes them off.
            let conn = g.conn();
            let on_conn: Vec<(String, String)> = conn
                .variables
                .iter()
                .filter(|(k, _)| super::state::client_side(k))
                .cloned()
                .collect();
            conn.variables = self
                .vars
                .iter()
                .filter(|(k, _)| !super::state::client_side(k))
                .cloned()
                .chain(on_conn)
                .collect();
        }
        let keep = in_trans
            || self.pinned.is_some()
            || !self.long_data.is_empty()
            || st & status::CURSOR_EXISTS != 0
            || self.settings.mode == PoolMode::Session;
        if !keep {
            self.release().await;
        }
    }

    /// Pins the client to its connection (logged once, counted).
    pub(super) fn pin(&mut self, reason: &str) {
        if self.pinned.is_some() || self.guard.is_none() {
            return;
        }
        tracing::info!(
            peer = %self.peer,
            user = %self.user.name,
            proxy = %self.settings.proxy,
            "The client session was pinned to the database connection for the remainder of the session; the proxy cannot reuse this connection until the session ends. Reason: {reason}"
        );
        self.pinned = Some(reason.to_owned());
        self.metrics.pinned_sessions.inc();
        self.proxy.target.metrics.pinned.add(1);
        if let Some(g) = self.guard.as_mut() {
            g.conn().dirty = true;
        }
    }

    fn unpin(&mut self) {
        if self.pinned.take().is_some() {
            self.proxy.target.metrics.pinned.add(-1);
        }
    }

    /// A server connection for the client's next command, its session brought to the client's.
    pub(super) async fn ensure_conn(&mut self) -> Result<(), ErrPacket> {
        // A connection whose schema cannot be brought to the client's (it has one, the client
        // none: MySQL cannot unselect a database) is closed and another tried.
        for _ in 0..3 {
            if self.guard.is_none() {
                let g = self
                    .proxy
                    .target
                    .borrow_at(self.pool, Instant::now())
                    .await
                    .map_err(|e| borrow_error(&e))?;
                if let Some(c) = g.conn_ref() {
                    self.thread.using(c.thread_id, c.pooled.server_index);
                }
                self.guard = Some(g);
            }
            match super::state::sync(self).await {
                Ok(true) => return Ok(()),
                Ok(false) => {
                    if let Some(mut g) = self.guard.take() {
                        g.broken = true;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(ErrPacket::new(
            error::UNKNOWN_ERROR,
            "cannot find a server connection without a selected database",
        ))
    }

    /// Gives the connection back, reset first if its session holds what the proxy cannot
    /// restore (or a transaction a departed client left open).
    pub(super) async fn release(&mut self) {
        let Some(mut g) = self.guard.take() else {
            return;
        };
        self.thread.using(0, 0);
        let pinned = self.pinned.is_some();
        self.unpin();
        // Long data that no execute used waits on the connection: it must not reach the
        // next client's execute of the same statement.
        let held = !std::mem::take(&mut self.long_data).is_empty();
        if self.poisoned {
            self.poisoned = false;
            g.broken = true;
            return;
        }
        let conn = g.conn();
        if conn
            .variables
            .iter()
            .any(|(k, _)| super::state::client_side(k))
            && !pinned
        {
            // A client's wait_timeout stays with the client.
            let sql = conn
                .variables
                .iter()
                .filter(|(k, _)| super::state::client_side(k))
                .map(|(k, _)| format!("{k} = DEFAULT"))
                .collect::<Vec<_>>()
                .join(", ");
            let r = conn.query(&format!("SET SESSION {sql}")).await;
            conn.variables
                .retain(|(k, _)| !super::state::client_side(k));
            if let Err(e) = r {
                tracing::info!(proxy = %self.settings.proxy, "cannot reset a client's timeouts on a server connection; closing it: {e}");
                g.broken = true;
                return;
            }
        }
        if (pinned || held || conn.dirty || conn.status & status::IN_TRANS != 0)
            && let Err(e) = conn.reset().await
        {
            tracing::info!(proxy = %self.settings.proxy, "cannot reset a server connection; closing it: {e}");
            g.broken = true;
        }
    }

    /// The session ends: its connection goes back clean, or is closed.
    async fn finish(&mut self) {
        self.release().await;
    }

    /// COM_RESET_CONNECTION: the client's session returns to its state after login.
    async fn reset_session(&mut self) {
        if let Some(g) = self.guard.as_mut() {
            g.conn().dirty = true;
        }
        self.release().await;
        self.vars.clear();
        self.schema = self.login_schema.clone();
        self.stmts.clear();
        self.last_insert_id = 0;
    }

    pub(super) async fn restore_last_insert_id(&mut self) -> Result<(), ErrPacket> {
        self.ensure_conn().await?;
        let id = self.last_insert_id;
        let Some(g) = self.guard.as_mut() else {
            return Ok(());
        };
        let conn = g.conn();
        if conn.last_insert_id == id {
            return Ok(());
        }
        let r = conn.query(&format!("SET LAST_INSERT_ID = {id}")).await;
        conn.variables
            .retain(|(k, _)| k != "last_insert_id" && k != "insert_id");
        match r {
            Ok(_) => {
                conn.last_insert_id = id;
                Ok(())
            }
            Err(e) => {
                g.broken = true;
                self.guard = None;
                Err(e.to_client())
            }
        }
    }

    /// `KILL [QUERY] n`: n is a proxy connection id; the statement it runs now (if any) is
    /// killed on its server thread, and with KILL CONNECTION the session closes.
    async fn kill(&mut self, query_only: bool, id: u32) -> Result<(), End> {
        let Some(entry) = self.proxy.threads.get(id) else {
            self.send_err(
                1,
                ErrPacket::new(error::UNKNOWN_THREAD, format!("Unknown thread id: {id}")),
            )
            .await;
            return Ok(());
        };
        if entry.user != self.user.name {
            self.send_err(
                1,
                ErrPacket::new((1095, "HY000"), format!("You are not owner of thread {id}")),
            )
            .await;
            return Ok(());
        }
        let busy = entry
            .server_thread
            .load(std::sync::atomic::Ordering::Relaxed)
            != 0;
        if busy && id != self.thread.id {
            if let Err(e) = self.ensure_conn().await {
                self.send_err(1, e).await;
                return Ok(());
            }
            // Read again now that this session holds a connection (the borrow may have waited):
            // the victim may have given its thread back since, to another client.
            let thread = entry
                .server_thread
                .load(std::sync::atomic::Ordering::Relaxed);
            let server = entry
                .server_index
                .load(std::sync::atomic::Ordering::Relaxed) as usize;
            if let Some(g) = self.guard.as_mut() {
                let conn = g.conn();
                if thread != 0 && conn.pooled.server_index == server {
                    match conn.query(&format!("KILL QUERY {thread}")).await {
                        Ok(_) => {}
                        // The thread ended meanwhile (1094): nothing to kill.
                        Err(super::backend::MyBackendError::Refused(e)) => {
                            tracing::debug!("KILL QUERY {thread}: {}", e.message);
                        }
                        Err(e) => {
                            tracing::info!("KILL QUERY {thread} lost the connection: {e}");
                            g.broken = true;
                            self.guard = None;
                        }
                    }
                }
            }
            let st = self.guard.as_mut().map_or(0, |g| g.conn().status);
            self.after(
                Outcome {
                    status: st,
                    ..Default::default()
                },
                st & status::IN_TRANS != 0,
            )
            .await;
        }
        if !query_only {
            entry
                .killed
                .store(true, std::sync::atomic::Ordering::Relaxed);
            entry.wake.notify_one();
        }
        if id == self.thread.id && !query_only {
            return Err(End::Quit);
        }
        self.send_ok(1).await
    }

    /// COM_SET_OPTION: multi-statements on (0) or off (1). The option belongs to the pool's
    /// key, so the client moves to the pool with the other value.
    async fn set_option(&mut self, payload: &[u8]) -> Result<(), End> {
        let on = match payload.get(1..3) {
            Some([0, 0]) => true,
            Some([1, 0]) => false,
            _ => {
                self.send_err(
                    1,
                    ErrPacket::new(error::UNKNOWN_COM, "Unknown COM_SET_OPTION value"),
                )
                .await;
                return Ok(());
            }
        };
        let mut key = self.key.clone();
        if on {
            key.options |= cap::MULTI_STATEMENTS;
            self.caps |= cap::MULTI_STATEMENTS;
        } else {
            key.options &= !cap::MULTI_STATEMENTS;
            self.caps &= !cap::MULTI_STATEMENTS;
        }
        if key != self.key {
            if self.guard.is_some() {
                // Held (a transaction, a pin): the option changes on this connection, which
                // then no longer fits its pool and is closed when given back.
                self.poisoned = true;
                self.switch_pool(key);
                return self.forward_held(payload, Expect::One).await;
            }
            self.switch_pool(key);
        }
        let mut out = BytesMut::new();
        let st = self.session_status();
        if self.caps & cap::DEPRECATE_EOF != 0 {
            let ok = OkPacket {
                status: st,
                ..Default::default()
            };
            packet::put(&mut out, 1, &ok.encode(self.caps, EOF));
        } else {
            packet::put(&mut out, 1, &eof(0, st));
        }
        relay::flush(&mut self.stream, &mut self.out).await.ok();
        use tokio::io::AsyncWriteExt;
        self.stream
            .write_all(&out)
            .await
            .map_err(|_| End::ClientGone)
    }

    pub(super) fn switch_pool(&mut self, key: PoolKey) {
        let server = crate::server::ServerTarget {
            addr: self.settings.server.clone(),
            tls: self.settings.server_tls.clone(),
            database: key.database.clone(),
            user: self.user.name.clone(),
            password: self.user.password.clone(),
            init_query: self.settings.init_query.clone(),
            connect_timeout: self.settings.connect_timeout,
            options: key.options,
        };
        self.pool = self.proxy.target.pool(&key, &server);
        self.key = key;
    }

    /// The status flags of the client's session: its connection's when it holds one, else
    /// no transaction and its own autocommit setting (drivers read that flag to decide whether
    /// to send `SET autocommit`).
    pub(super) fn session_status(&self) -> u16 {
        match self.guard.as_ref().and_then(|g| g.conn_ref()) {
            Some(c) => c.status & !status::SESSION_STATE_CHANGED,
            None if self.autocommit_off() => 0,
            None => status::AUTOCOMMIT,
        }
    }

    pub(super) fn autocommit_off(&self) -> bool {
        self.vars
            .iter()
            .any(|(k, v)| k == "autocommit" && (v.eq_ignore_ascii_case("OFF") || v == "0"))
    }

    /// The client's own idle limit: `idle_client_timeout`, or a shorter `wait_timeout` the
    /// client set for its session (MySQL closes such a client; so does the proxy, instead of
    /// letting the value reach a pooled connection).
    fn idle_limit(&self) -> std::time::Duration {
        let own = self
            .vars
            .iter()
            .find(|(k, _)| k == "wait_timeout")
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .map(std::time::Duration::from_secs);
        match own {
            Some(d) if d < self.settings.idle_client_timeout => d,
            _ => self.settings.idle_client_timeout,
        }
    }

    pub(super) async fn send_ok(&mut self, seq: u8) -> Result<(), End> {
        let st = self.session_status();
        let ok = OkPacket {
            status: st,
            ..Default::default()
        };
        use tokio::io::AsyncWriteExt;
        let mut out = BytesMut::new();
        packet::put(&mut out, seq, &ok.encode(self.caps, OK));
        self.stream
            .write_all(&out)
            .await
            .map_err(|_| End::ClientGone)
    }

    pub(super) async fn send_err(&mut self, seq: u8, err: ErrPacket) {
        let _ = packet::write(&mut self.stream, seq, &err.encode()).await;
    }
}
