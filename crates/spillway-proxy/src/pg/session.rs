//! A logged-in client: the loop that moves its messages to a borrowed server connection and the
//! answers back, borrowing at the first message of a transaction and giving the server back at
//! the ReadyForQuery that ends it (transaction pooling), unless the client pinned it or the proxy
//! runs in session mode.
//!
//! Messages are framed, not decoded: only Query/Parse text (for pinning), statement names (for
//! prepared statements) and ReadyForQuery status are read. Bytes move in batches, and large
//! messages (COPY data, big rows) stream through without being buffered whole. Reads and writes
//! on both sockets are multiplexed in one task with readiness events, so neither side can
//! deadlock the other by filling its buffers.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::{Buf, BufMut, BytesMut};
use spillway_stack::model::PoolMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::socket::Socket;
use tokio::sync::watch;

use super::backend::{BackendError, Sequences, set_param};
use super::codec::{self, MAX_MESSAGE, Severity, peek};
use super::deallocate::{self, Dropping};
use super::handshake::LoggedIn;
use super::messages::{Bind, Parse, Target as NameTarget, query_text};
use super::params;
use super::pinning::{self, Filters, PinReason};
use super::prepared::{ClientStatements, Statement, server_name};
use super::proxy::{PgProxy, Settings};
use super::spare;
use crate::cancel::CancelSlot;
use crate::metrics::EndpointMetrics;
use crate::pool::{BorrowError, Guard, PoolId, PoolKey};

/// Stop reading one side while this much waits to be written to the other (backpressure).
const HIGH_WATER: usize = 256 * 1024;
/// Free space kept in read buffers before each read.
const READ_CHUNK: usize = 16 * 1024;
/// Free space in a client's read buffer, except while it streams COPY data.
const CLIENT_IDLE_CHUNK: usize = 1024;
/// Empty buffers with more capacity than this are freed at the end of a transaction.
const SHRINK_ABOVE: usize = 64 * 1024;
/// Server messages larger than this stream through instead of being framed whole.
const STREAM_THRESHOLD: usize = 64 * 1024;

enum Step {
    /// Nothing more to do with what is buffered.
    Idle,
    /// Messages wait in the client's buffer while the server's is above its high-water mark.
    Full,
    /// The next message needs a server connection.
    NeedServer,
    /// The client sent Terminate.
    Terminate,
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("protocol violation: {0}")]
    Protocol(String),
    #[error("client i/o: {0}")]
    Client(io::Error),
    #[error("{0}")]
    Server(String),
}

pub struct Session {
    client: Socket,
    cbuf: BytesMut,
    to_client: BytesMut,
    to_server: BytesMut,
    server: Option<Guard>,
    settings: Arc<Settings>,
    key: Arc<PoolKey>,
    pool: PoolId,
    /// The client's startup parameters, kept in step on each borrowed connection (`params.rs`).
    wanted: super::param_sets::ParamSet,
    wanted_fingerprint: u64,
    /// This session's number, unique in the process (to tell whose state a connection holds).
    id: u64,
    /// The client reads sequence state (currval/lastval): a connection other clients used has
    /// its sequence values discarded before this client gets it.
    reads_sequences: bool,
    proxy: Arc<PgProxy>,
    metrics: Arc<EndpointMetrics>,
    cancel: CancelSlot,
    /// Last ReadyForQuery status from the server ('I', 'T' or 'E').
    status: u8,
    /// Queries and Syncs sent whose ReadyForQuery has not come back.
    outstanding: u32,
    /// Extended-protocol messages were forwarded and their Sync has not come yet: the server is
    /// inside the client's batch, so the connection cannot go to anyone else.
    unsynced: bool,
    batches_sent: u64,
    batches_done: u64,
    pinned: Option<PinReason>,
    /// Session state changed (for the reset decision in session mode).
    dirty: bool,
    statements: ClientStatements,
    /// The client was sent a FATAL (the server's, passed on, or the proxy's own).
    told_fatal: bool,
    /// The client's unnamed statement: the number of its Parse('') (unique in the process, so
    /// a server connection can say whose unnamed statement it holds) and the message itself,
    /// to send again when the client binds it on a connection that holds another one. PostgreSQL
    /// keeps an unnamed statement across Syncs, until the next Parse('') or simple Query.
    unnamed: Option<(u64, BytesMut)>,
    /// Replies to messages the proxy injected, to drop: (batch, tag).
    swallow: VecDeque<(u64, u8)>,
    /// Statements whose Parse is in flight, with their batch (see `swallow`): forgotten if
    /// the batch fails (they may not exist), known to parse when it ends well.
    parses_in_flight: Vec<(u64, u64)>,
    /// Server-side statement names an error of the current batch may mention, and the client's
    /// names for them (a second Parse of a client's name fails with the server's name in it).
    renamed: Vec<(Vec<u8>, Vec<u8>)>,
    /// The client's own Parses whose ParseComplete has not come back, in order, with their
    /// batch and, for a new named statement, its name: a Parse the server refused made no
    /// statement, so the name is forgotten (else a corrected Parse of it would be refused
    /// with 42P05, and a Bind would re-send the bad one).
    client_parses: VecDeque<(u64, Option<Vec<u8>>)>,
    client_streaming: usize,
    server_streaming: usize,
    query_started: Option<Instant>,
    in_transaction: bool,
    /// When the client last sent something (or a borrow it waited for ended): the idle
    /// timeout's reference, and the time a query read then started. One clock read per read.
    last_read: Instant,
}

enum Event {
    ClientRead(io::Result<usize>),
    ServerRead(io::Result<usize>),
    Wrote(io::Result<usize>),
    IdleTimeout,
    Shutdown,
}

/// Numbers clients' Parse('') messages, so that a server connection knows whose unnamed
/// statement it holds.
static UNNAMED_PARSES: AtomicU64 = AtomicU64::new(1);
/// Numbers sessions.
static SESSIONS: AtomicU64 = AtomicU64::new(1);

/// Runs a client session to its end.
///
/// Not an `async fn`: the session is built here, outside the future, so the future holds it
/// once rather than beside the arguments it was built from (an async fn keeps its arguments
/// for its whole life, and a copy of any it moves: measured, 384 bytes more per idle client).
pub fn run(
    login: LoggedIn,
    proxy: Arc<PgProxy>,
    metrics: Arc<EndpointMetrics>,
    shutdown: watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send {
    let cancel = proxy.cancel.register();
    let wanted_fingerprint = params::fingerprint(&login.wanted);
    let wanted = proxy.param_sets.intern(login.wanted, wanted_fingerprint);
    let mut s = Session {
        client: login.stream,
        cbuf: login.buf,
        // Buffers start empty and grow with use: an idle client should cost a few KB, not the
        // pages of three 16 KB buffers.
        to_client: BytesMut::new(),
        to_server: BytesMut::new(),
        server: None,
        settings: login.settings,
        key: login.key,
        pool: login.pool,
        wanted_fingerprint,
        wanted,
        id: SESSIONS.fetch_add(1, Ordering::Relaxed),
        reads_sequences: false,
        proxy,
        metrics,
        cancel,
        status: b'I',
        outstanding: 0,
        unsynced: false,
        batches_sent: 0,
        batches_done: 0,
        pinned: None,
        dirty: false,
        statements: ClientStatements::default(),
        unnamed: None,
        told_fatal: false,
        swallow: VecDeque::new(),
        parses_in_flight: Vec::new(),
        renamed: Vec::new(),
        client_parses: VecDeque::new(),
        client_streaming: 0,
        server_streaming: 0,
        query_started: None,
        in_transaction: false,
        last_read: Instant::now(),
    };
    // Captured and used in place: an async fn taking the session by value would keep it twice
    // (its argument and the local the argument is moved into).
    async move { s.live(shutdown).await }
}

impl Session {
    async fn live(&mut self, shutdown: watch::Receiver<bool>) {
        codec::backend_key_data(&mut self.to_client, self.cancel.pid, self.cancel.secret);
        codec::ready_for_query(&mut self.to_client, b'I');
        self.metrics.client_connections.add(1);
        match self.main_loop(shutdown).await {
            Ok(()) => {}
            Err(SessionError::Protocol(why)) => {
                // The client broke the protocol: tell it so (08P01, as PostgreSQL does) and hang up.
                tracing::info!(user = %self.key.user, "closing a client: {why}");
                self.fatal("08P01", &why);
            }
            Err(SessionError::Server(why)) => {
                tracing::warn!(user = %self.key.user, "closing a client: {why}");
                self.fatal("08006", "lost synchronization with the database server");
            }
            Err(e) => tracing::debug!(user = %self.key.user, "session ended: {e}"),
        }
        self.finish().await;
        self.metrics.client_connections.add(-1);
    }
}

/// The statement text of the first message in `buf` (a Query or a Parse), or nothing.
fn first_text(buf: &[u8]) -> &[u8] {
    let Ok(Some((tag, len))) = peek(buf, MAX_MESSAGE) else {
        return &[];
    };
    let Some(body) = buf.get(5..len) else {
        return &[];
    };
    match tag {
        b'Q' => query_text(body).unwrap_or_default(),
        b'P' => Parse::decode(body).map(|p| p.query).unwrap_or_default(),
        _ => &[],
    }
}

/// Sockets that can be written without waiting (the client's and the server's).
trait TryWrite {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
}

impl TryWrite for Socket {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        Socket::try_write(self, buf)
    }
}

fn flush(stream: &impl TryWrite, buf: &mut BytesMut) -> io::Result<()> {
    while !buf.is_empty() {
        match stream.try_write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf.advance(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads from a socket that reported readiness, without waiting: `None` if the readiness was
/// spurious. The read goes through `AsyncRead` because tokio clears a socket's readiness there
/// when a read comes back short; `try_read_buf` does not, and the session's next read of the
/// client would be a wasted `recvfrom` returning EAGAIN (one per transaction, seen in strace).
async fn read_ready(sock: &mut Socket, buf: &mut BytesMut) -> Option<io::Result<usize>> {
    let mut read = std::pin::pin!(sock.read_buf(buf));
    std::future::poll_fn(|cx| match read.as_mut().poll(cx) {
        std::task::Poll::Ready(r) => std::task::Poll::Ready(Some(r)),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await
}

impl Session {
    fn mode(&self) -> PoolMode {
        self.settings.mode
    }

    /// Ends the client's session with a FATAL, unless it has had one already (the server's own,
    /// passed on): a client gets one FATAL, as from PostgreSQL (node-postgres treats a second
    /// as another error event, and crashed on it).
    fn fatal(&mut self, code: &str, text: &str) {
        if !self.told_fatal {
            codec::error_response(&mut self.to_client, Severity::Fatal, code, text);
            self.told_fatal = true;
        }
        let _ = flush(&self.client, &mut self.to_client);
    }

    async fn main_loop(&mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), SessionError> {
        // A shutdown that already happened counts (changed() only sees later ones).
        if *shutdown.borrow_and_update() {
            return Ok(());
        }
        // One timer for the idle timeout, armed once and re-armed only when it fires early:
        // registering a timer on every loop turn would cost more than the rest of a query's path.
        let idle_timeout = self.settings.idle_client_timeout;
        let idle = tokio::time::sleep(idle_timeout);
        tokio::pin!(idle);
        // Likewise one shutdown future for the whole session.
        let stop = shutdown.changed();
        tokio::pin!(stop);
        loop {
            let full = match self.process_client()? {
                Step::Terminate => return Ok(()),
                Step::NeedServer => {
                    if !self.borrow(stop.as_mut()).await {
                        return Ok(());
                    }
                    continue;
                }
                Step::Idle => false,
                Step::Full => true,
            };
            if let Some(g) = self.server.as_ref().and_then(Guard::conn_ref)
                && let Err(e) = flush(&g.stream, &mut self.to_server)
            {
                self.server_lost(&e.to_string());
                return Ok(());
            }
            if full && self.to_server.len() < HIGH_WATER {
                // The flush made room for the client's messages still buffered: handle them
                // now. Waiting instead would wait for nothing when the flush wrote everything
                // (no write left to finish, the client waiting for answers, the server for the
                // rest of the batch): seen after a 1 MiB Parse followed by Describe + Sync.
                continue;
            }
            // The server goes back before the answer goes out: a client waiting for it can be
            // scheduled while this one's write is in the kernel.
            self.maybe_release();
            flush(&self.client, &mut self.to_client).map_err(SessionError::Client)?;

            let between_transactions = self.server.is_none()
                && self.cbuf.is_empty()
                && self.to_client.is_empty()
                && self.to_server.is_empty();
            if between_transactions {
                // Nothing pending either way: wait for the client holding no buffers at all, so
                // an idle client costs its task and little else (thousands of idle Lambda
                // connections are the normal case). The last short read cleared the socket's
                // readiness, so this wait costs no extra system call.
                for b in [&mut self.cbuf, &mut self.to_client, &mut self.to_server] {
                    if b.capacity() > 0 {
                        spare::give(std::mem::take(b));
                    }
                }
                let ev = tokio::select! {
                    biased;
                    r = self.client.readable() => match r {
                        Ok(()) => None,
                        Err(e) => Some(Event::ClientRead(Err(e))),
                    },
                    _ = &mut idle => Some(Event::IdleTimeout),
                    _ = &mut stop => Some(Event::Shutdown),
                };
                let ev = match ev {
                    Some(ev) => ev,
                    None => {
                        // The transaction's buffers come from this thread's spares, not malloc.
                        for b in [&mut self.cbuf, &mut self.to_client, &mut self.to_server] {
                            if b.capacity() == 0 {
                                *b = spare::take();
                            }
                        }
                        self.cbuf.reserve(CLIENT_IDLE_CHUNK);
                        match read_ready(&mut self.client, &mut self.cbuf).await {
                            // Spurious readiness (now cleared): wait again.
                            None => continue,
                            Some(r) => Event::ClientRead(r),
                        }
                    }
                };
                if self.on_event(ev, idle_timeout, idle.as_mut())? {
                    return Ok(());
                }
                continue;
            }
            let want_client = self.to_server.len() < HIGH_WATER;
            let want_server = self.to_client.len() < HIGH_WATER;
            if let Some(g) = self.server.as_mut() {
                g.conn().buf.reserve(READ_CHUNK);
                // Most client messages are small: reserve a large read only while a message is
                // arriving in parts (COPY FROM STDIN, huge statements). A 16 KiB buffer on every
                // transaction would be an allocation of that size per transaction, since idle
                // clients free their buffers.
                self.cbuf
                    .reserve(if self.client_streaming > 0 || !self.cbuf.is_empty() {
                        READ_CHUNK
                    } else {
                        CLIENT_IDLE_CHUNK
                    });
            } else {
                // Waiting for the next query: a small read buffer (it grows if the query does).
                self.cbuf.reserve(CLIENT_IDLE_CHUNK);
            }
            // read_buf/write_buf on split halves rather than readiness + try_read: tokio clears a
            // socket's readiness when a read comes back short, which saves the recvfrom that
            // would otherwise return EAGAIN after every message. All four are cancel-safe.
            let ev = {
                let Session {
                    client,
                    cbuf,
                    to_client,
                    to_server,
                    server,
                    ..
                } = &mut *self;
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw, sbuf) = match server.as_mut() {
                    Some(g) => {
                        let c = g.conn();
                        let (r, w) = c.stream.split();
                        (Some(r), Some(w), Some(&mut c.buf))
                    }
                    None => (None, None, None),
                };
                let has_server = sr.is_some();
                let server_read = async {
                    match (sr.as_mut(), sbuf) {
                        (Some(r), Some(b)) if want_server => r.read_buf(b).await,
                        _ => std::future::pending().await,
                    }
                };
                let write_server = !to_server.is_empty();
                let server_write = async {
                    match sw.as_mut() {
                        Some(w) if write_server => w.write_buf(to_server).await,
                        _ => std::future::pending().await,
                    }
                };
                let write_client = !to_client.is_empty();
                tokio::select! {
                    // Fixed order (no random start): answers first, then new requests.
                    biased;
                    r = server_read, if has_server => Event::ServerRead(r),
                    r = cr.read_buf(cbuf), if want_client => Event::ClientRead(r),
                    r = cw.write_buf(to_client), if write_client => Event::Wrote(r),
                    r = server_write, if has_server && write_server => Event::Wrote(r),
                    _ = &mut idle => Event::IdleTimeout,
                    _ = &mut stop => Event::Shutdown,
                }
            };
            if self.on_event(ev, idle_timeout, idle.as_mut())? {
                return Ok(());
            }
        }
    }

    /// Handles what the main loop waited for; true when the session is over.
    fn on_event(
        &mut self,
        ev: Event,
        idle_timeout: std::time::Duration,
        idle: std::pin::Pin<&mut tokio::time::Sleep>,
    ) -> Result<bool, SessionError> {
        match ev {
            Event::ClientRead(r) => {
                self.last_read = Instant::now();
                if r.map_err(SessionError::Client)? == 0 {
                    return Ok(true); // client went away
                }
            }
            Event::ServerRead(r) => match r {
                Ok(0) => {
                    self.server_lost("the server closed the connection");
                    return Ok(true);
                }
                Ok(_) => self.process_server()?,
                Err(e) => {
                    self.server_lost(&e.to_string());
                    return Ok(true);
                }
            },
            Event::Wrote(r) => {
                r.map_err(SessionError::Client)?;
            }
            Event::IdleTimeout => {
                let deadline = self.last_read + idle_timeout;
                let busy = self.server.is_some() && self.outstanding > 0;
                if busy || deadline > Instant::now() {
                    let next = if busy {
                        Instant::now() + idle_timeout
                    } else {
                        deadline
                    };
                    idle.reset(next.into());
                    return Ok(false);
                }
                tracing::info!(user = %self.key.user, "closing a client idle for {idle_timeout:?}");
                self.fatal(
                    "57P05",
                    "terminating connection due to idle-session timeout",
                );
                return Ok(true);
            }
            Event::Shutdown => {
                self.fatal(
                    "57P01",
                    "terminating connection due to administrator command",
                );
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The server went away under a client that was using it.
    fn server_lost(&mut self, why: &str) {
        tracing::warn!(user = %self.key.user, "server connection lost: {why}");
        if let Some(g) = self.server.as_mut() {
            g.broken = true;
        }
        // A server connection dying usually means the server restarted: its idle siblings are
        // dead too, so the next clients should get fresh connections rather than find out.
        self.proxy.target.close_idle();
        self.forward_remaining_server_bytes();
        self.fatal(
            "08006",
            "server connection lost; the database may have restarted",
        );
    }

    fn forward_remaining_server_bytes(&mut self) {
        // Whatever the server said before closing (often a FATAL with the reason) is the client's.
        if let Some(g) = self.server.as_mut() {
            let rest = g.conn().buf.split();
            self.told_fatal |= codec::holds_fatal(&rest);
            self.to_client.extend_from_slice(&rest);
        }
    }

    async fn borrow(&mut self, stop: std::pin::Pin<&mut impl std::future::Future>) -> bool {
        let _ = flush(&self.client, &mut self.to_client);
        let target = Arc::clone(&self.proxy.target);
        let result = match target.take_idle(self.pool, self.last_read) {
            Some(guard) => Ok(guard),
            // Boxed: the wait's state (a timer, the queue's channel, opening a connection)
            // inline would be part of every idle client's task. Measured: 376 bytes.
            None => tokio::select! {
                r = Box::pin(target.borrow_at(self.pool, self.last_read)) => r,
                _ = stop => {
                    self.fatal("57P01", "terminating connection due to administrator command");
                    return false;
                }
            },
        };
        let mut guard = match result {
            Ok(g) => {
                if g.waited {
                    // The query starts now, not when it was read: the wait is borrow latency.
                    self.last_read = Instant::now();
                }
                g
            }
            Err(BorrowError::Timeout(t)) => {
                tracing::warn!(user = %self.key.user, "no database connection within {t:?}");
                self.fatal("53300", &format!("timed out after {}s waiting for a database connection (connection_borrow_timeout)", t.as_secs()));
                return false;
            }
            Err(BorrowError::Connect(e)) => {
                tracing::warn!(user = %self.key.user, "cannot open a server connection: {e}");
                self.fatal(e.sqlstate(), "cannot open a database connection");
                return false;
            }
        };
        // Keep the client's startup parameters in step on this connection, and let it see no
        // other client's sequence values.
        let conn = guard.conn();
        let foreign_sequences = match conn.sequences {
            Sequences::Clean => false,
            Sequences::Only(id) => id != self.id,
            Sequences::Mixed => true,
        };
        // The first query is looked at here, before it is sent (the per-message scan comes
        // too late for it), and only when the connection holds other clients' values.
        if foreign_sequences
            && !self.reads_sequences
            && pinning::reads_sequence_state(first_text(&self.cbuf))
        {
            self.reads_sequences = true;
        }
        let discard = foreign_sequences && self.reads_sequences;
        conn.sequences = if foreign_sequences && !discard {
            Sequences::Mixed
        } else {
            Sequences::Only(self.id)
        };
        // Runs on every borrow: one comparison when the connection was last in step with the
        // same parameters, a comparison per parameter otherwise.
        let catch_up = if conn.in_step_with == Some(self.wanted_fingerprint) {
            None
        } else {
            let sql = params::catch_up(&self.wanted, &conn.params, &conn.applied);
            if sql.is_none() {
                conn.in_step_with = Some(self.wanted_fingerprint);
            }
            sql
        };
        if catch_up.is_some() || discard {
            let mut sql = catch_up.unwrap_or_default();
            if discard {
                sql.push_str("DISCARD SEQUENCES;");
            }
            // Boxed, like every rarely-taken await here: kept inline, its state would be part
            // of every idle client's task.
            match Box::pin(guard.conn().simple_query(&sql)).await {
                Ok(_) => {
                    let conn = guard.conn();
                    conn.applied = params::applied_after(&self.wanted);
                    // The replies' ParameterStatus cleared it; the connection is in step now.
                    conn.in_step_with = Some(self.wanted_fingerprint);
                }
                Err(e) => {
                    // Parameters the server accepted at login no longer apply (a changed role
                    // or database setting): the client is told rather than run without them.
                    tracing::warn!(user = %self.key.user, "cannot apply a client's startup parameters: {e}");
                    guard.broken = true;
                    let (code, text) = match &e {
                        BackendError::Refused { code, message } => (code.clone(), message.clone()),
                        _ => (
                            "08006".to_owned(),
                            "cannot prepare a database connection".to_owned(),
                        ),
                    };
                    self.fatal(&code, &text);
                    return false;
                }
            }
        }
        self.cancel.set(Some(Arc::clone(&guard.conn().cancel_key)));
        self.server = Some(guard);
        true
    }

    fn maybe_release(&mut self) {
        let releasable = self.server.is_some()
            && self.mode() == PoolMode::Transaction
            && self.pinned.is_none()
            && self.outstanding == 0
            && !self.unsynced
            && self.status == b'I'
            && self.to_server.is_empty()
            && self.client_streaming == 0
            && self.server_streaming == 0
            && self.swallow.is_empty();
        if releasable {
            self.cancel.set(None);
            self.server = None;
            // After a large result or COPY, give the memory back rather than keep it per client.
            for b in [&mut self.cbuf, &mut self.to_client, &mut self.to_server] {
                if b.is_empty() && b.capacity() > SHRINK_ABOVE {
                    *b = BytesMut::new();
                }
            }
        }
    }

    fn pin(&mut self, reason: PinReason) {
        self.dirty = true;
        if self.mode() == PoolMode::Transaction && self.pinned.is_none() {
            self.pinned = Some(reason);
            self.metrics.pinned_sessions.inc();
            self.proxy.target.metrics.pinned.add(1);
            tracing::info!(user = %self.key.user, database = %self.key.database, "session pinned to its database connection: {reason}");
        }
    }

    /// Pins the session if `sql` says so. Returns whether the text needed a closer look than
    /// the per-query fast scan (only then can it be a DEALLOCATE).
    fn check_pin(&mut self, sql: &[u8]) -> bool {
        if sql.len() <= pinning::SIZE_LIMIT && pinning::surely_plain(sql) {
            return false;
        }
        if !self.reads_sequences && pinning::reads_sequence_state(sql) {
            self.reads_sequences = true;
        }
        let filters = if self.mode() == PoolMode::Session {
            Filters::default()
        } else {
            self.settings.filters
        };
        if let Some(reason) = pinning::classify_bytes(sql, filters) {
            self.pin(reason);
        } else if self.settings.filters.exclude_variable_sets
            && pinning::classify_bytes(sql, Filters::default()).is_some()
        {
            // Filtered out of pinning, but the session still changed: reset before reuse.
            self.dirty = true;
        }
        true
    }

    /// Makes sure the borrowed server holds `st`, injecting Close + Parse whose replies are dropped.
    fn ensure_prepared(&mut self, st: &Statement) {
        let batch = self.batches_sent;
        let Some(g) = self.server.as_mut() else {
            return;
        };
        if g.conn().prepared.insert(st.hash) {
            let name = server_name(st.hash);
            codec::message(&mut self.to_server, b'C', |o| {
                o.put_u8(b'S');
                codec::put_cstr(o, &name);
            });
            self.to_server.extend_from_slice(&st.parse);
            self.swallow.push_back((batch, b'3'));
            self.swallow.push_back((batch, b'1'));
            self.parses_in_flight.push((batch, st.hash));
        }
    }

    /// Before a Bind or Describe of the unnamed statement: makes the borrowed server hold the
    /// client's own. If it holds another's (left by an earlier borrower, or destroyed by a
    /// simple query), the client's Parse('') is sent again; a client that has none gets the
    /// server's own error (a Close('') first, so nobody else's statement can answer).
    fn ensure_unnamed(&mut self) {
        let batch = self.batches_sent;
        let Some(g) = self.server.as_mut() else {
            return;
        };
        let conn = g.conn();
        match &self.unnamed {
            Some((seq, _)) if conn.unnamed == Some(*seq) => {}
            Some((seq, parse)) => {
                self.to_server.extend_from_slice(parse);
                self.swallow.push_back((batch, b'1'));
                conn.unnamed = Some(*seq);
            }
            None if conn.unnamed.is_none() => {}
            None => {
                codec::message(&mut self.to_server, b'C', |o| {
                    o.put_u8(b'S');
                    codec::put_cstr(o, b"");
                });
                self.swallow.push_back((batch, b'3'));
                conn.unnamed = None;
            }
        }
    }

    /// A client's SQL that drops prepared statements. Its own names are what it may drop: the
    /// shared server statements another client relies on are re-made where they are missing,
    /// and the records of what the connection holds follow what was sent.
    fn deallocate(&mut self, dropping: Dropping, msg: &[u8]) {
        let target = match &dropping {
            Dropping::Name(name) => self.statements.get(name).cloned(),
            Dropping::All | Dropping::Unknown => None,
        };
        if let (Dropping::Name(name), Some(st)) = (&dropping, target) {
            // A statement the client prepared through the protocol, known to the server by its
            // shared name: make sure this connection has it, then drop it by that name (the
            // answer, CommandComplete "DEALLOCATE", is the client's).
            self.ensure_prepared(&st);
            self.start_batch();
            let mut sql = b"DEALLOCATE ".to_vec();
            sql.extend_from_slice(&server_name(st.hash));
            codec::message(&mut self.to_server, b'Q', |o| codec::put_cstr(o, &sql));
            self.statements.close(name);
            if let Some(g) = self.server.as_mut() {
                g.conn().prepared.remove(&st.hash);
            }
            return;
        }
        self.start_batch();
        self.to_server.extend_from_slice(msg);
        if dropping == Dropping::All {
            self.statements.clear();
        }
        if matches!(dropping, Dropping::All | Dropping::Unknown)
            && let Some(g) = self.server.as_mut()
        {
            g.conn().prepared.clear();
        }
    }

    fn process_client(&mut self) -> Result<Step, SessionError> {
        // Messages are read in place and the buffer advanced past them: splitting each off as
        // its own BytesMut would turn the buffer into a shared one (an allocation) every time.
        let mut cbuf = std::mem::take(&mut self.cbuf);
        let step = self.process_client_buf(&mut cbuf);
        self.cbuf = cbuf;
        step
    }

    fn process_client_buf(&mut self, cbuf: &mut BytesMut) -> Result<Step, SessionError> {
        loop {
            if self.client_streaming > 0 {
                let n = self.client_streaming.min(cbuf.len());
                if n == 0 {
                    return Ok(Step::Idle);
                }
                self.to_server.extend_from_slice(&cbuf[..n]);
                cbuf.advance(n);
                self.client_streaming -= n;
                continue;
            }
            if self.to_server.len() >= HIGH_WATER {
                return Ok(Step::Full);
            }
            let (tag, len) = match peek(cbuf, MAX_MESSAGE) {
                Ok(Some(h)) => h,
                Ok(None) => return Ok(Step::Idle),
                Err(e) => {
                    return Err(SessionError::Protocol(format!(
                        "invalid message from client: {e}"
                    )));
                }
            };
            // Refused on its header, before any of it is buffered or a server borrowed, with
            // the words PostgreSQL logs for the same offence (it hangs up without a word; the
            // proxy also sends them as a FATAL 08P01 so the client learns why).
            if len > codec::client_message_limit(tag) {
                tracing::info!(
                    user = %self.key.user,
                    tag = %char::from(tag),
                    len,
                    limit = codec::client_message_limit(tag),
                    "a client message is above the proxy's limit"
                );
                return Err(SessionError::Protocol("invalid message length".into()));
            }
            if tag == b'X' {
                return Ok(Step::Terminate);
            }
            if !matches!(
                tag,
                b'Q' | b'P' | b'B' | b'D' | b'C' | b'E' | b'S' | b'H' | b'd' | b'c' | b'f' | b'F'
            ) {
                return Err(SessionError::Protocol(format!(
                    "invalid frontend message type {tag}"
                )));
            }
            if self.server.is_none() {
                if tag == b'P' && self.parse_without_server(cbuf, len) {
                    continue;
                }
                return Ok(Step::NeedServer);
            }
            if cbuf.len() < len {
                if tag == b'd' {
                    // COPY data streams through.
                    let have = cbuf.len();
                    self.to_server.extend_from_slice(cbuf);
                    cbuf.clear();
                    self.client_streaming = len - have;
                }
                return Ok(Step::Idle);
            }
            self.handle_client_message(tag, &cbuf[..len])?;
            cbuf.advance(len);
        }
    }

    /// Answers a client's Parse of a named statement followed by Sync, outside a transaction,
    /// without a server connection, when the pool's server has parsed the same statement
    /// before: ParseComplete and ReadyForQuery, the statement recorded for the client's later
    /// Binds (which make it present where they run, as always).
    ///
    /// This is what lets `pgbench -M prepared` run with more clients than server connections.
    /// pgbench prepares synchronously (PQprepare), blocking its thread, whose other clients
    /// may be inside transactions holding every server connection: waiting for a connection
    /// there would wait forever. The first Parse of each statement still needs a connection;
    /// the price is that a statement made invalid since (a dropped table) fails at its Bind
    /// rather than at its Parse.
    fn parse_without_server(&mut self, cbuf: &mut BytesMut, len: usize) -> bool {
        let sync_at = len;
        let whole = cbuf.len() >= sync_at + 5
            && cbuf[sync_at] == b'S'
            && cbuf[sync_at + 1..sync_at + 5] == 4u32.to_be_bytes();
        if !whole || self.mode() != PoolMode::Transaction || self.status != b'I' {
            return false;
        }
        let Ok(p) = Parse::decode(&cbuf[5..len]) else {
            return false;
        };
        // Unnamed statements die with their connection; a name already in use is the server's
        // 42P05 to give; a statement that may pin needs its connection.
        if p.name.is_empty()
            || self.statements.get(p.name).is_some()
            || p.query.len() > pinning::SIZE_LIMIT
            || !pinning::surely_plain(p.query)
            || !self
                .proxy
                .was_parsed(&self.key, super::prepared::content_hash(&p))
        {
            return false;
        }
        self.debug_log(p.query);
        self.statements.parse(&p);
        codec::message(&mut self.to_client, b'1', |_| {});
        codec::ready_for_query(&mut self.to_client, b'I');
        cbuf.advance(sync_at + 5);
        true
    }

    /// RDS Proxy's DebugLogging: every statement's text, at info level. Off by default because
    /// statements carry data; parameters of extended-protocol queries are never logged.
    fn debug_log(&self, sql: &[u8]) {
        if self.settings.debug_logging {
            tracing::info!(
                proxy = %self.settings.proxy,
                user = %self.key.user,
                database = %self.key.database,
                "statement: {}",
                String::from_utf8_lossy(sql)
            );
        }
    }

    fn handle_client_message(&mut self, tag: u8, msg: &[u8]) -> Result<(), SessionError> {
        match tag {
            b'P' | b'B' | b'D' | b'E' | b'C' | b'H' => self.unsynced = true,
            b'S' => self.unsynced = false,
            _ => {}
        }
        let body = &msg[5..];
        let malformed = |e: super::codec::Malformed| SessionError::Protocol(e.to_string());
        match tag {
            b'Q' => {
                self.metrics.query_requests.inc();
                let sql = query_text(body).map_err(malformed)?;
                self.debug_log(sql);
                let dropping = if self.check_pin(sql) {
                    deallocate::classify(sql)
                } else {
                    None
                };
                match dropping {
                    None => {
                        self.start_batch();
                        self.to_server.extend_from_slice(msg);
                    }
                    Some(d) => self.deallocate(d, msg),
                }
                // A simple query destroys the unnamed statement, the client's included.
                self.unnamed = None;
                if let Some(g) = self.server.as_mut() {
                    g.conn().unnamed = None;
                }
            }
            b'P' => {
                let p = Parse::decode(body).map_err(malformed)?;
                self.debug_log(p.query);
                let _ = self.check_pin(p.query);
                if p.name.is_empty() {
                    self.to_server.extend_from_slice(msg);
                    self.client_parses.push_back((self.batches_sent, None));
                    let seq = UNNAMED_PARSES.fetch_add(1, Ordering::Relaxed);
                    // Drivers send Parse('') for every parameterized query: keep the buffer.
                    match &mut self.unnamed {
                        Some((n, parse)) => {
                            *n = seq;
                            parse.clear();
                            parse.extend_from_slice(msg);
                        }
                        None => self.unnamed = Some((seq, BytesMut::from(msg))),
                    }
                    if let Some(g) = self.server.as_mut() {
                        g.conn().unnamed = Some(seq);
                    }
                } else if let Some(existing) = self.statements.get(p.name).cloned() {
                    // PostgreSQL refuses a Parse of a name that exists (42P05) and keeps the
                    // statement. The server says so itself, in its place in the batch: the
                    // existing statement is made present, then parsed again under its name.
                    self.ensure_prepared(&existing);
                    let name = server_name(existing.hash);
                    p.encode(&mut self.to_server, &name);
                    self.client_parses.push_back((self.batches_sent, None));
                    self.renamed.push((name, p.name.to_vec()));
                } else {
                    let st = self.statements.parse(&p);
                    let batch = self.batches_sent;
                    self.client_parses.push_back((batch, Some(p.name.to_vec())));
                    codec::message(&mut self.to_server, b'C', |o| {
                        o.put_u8(b'S');
                        codec::put_cstr(o, &server_name(st.hash));
                    });
                    self.swallow.push_back((batch, b'3'));
                    self.to_server.extend_from_slice(&st.parse);
                    self.parses_in_flight.push((batch, st.hash));
                    if let Some(g) = self.server.as_mut() {
                        g.conn().prepared.insert(st.hash);
                    }
                }
            }
            b'B' => {
                let b = Bind::decode(body).map_err(malformed)?;
                match self.statements.get(b.statement).cloned() {
                    Some(st) if !b.statement.is_empty() => {
                        self.ensure_prepared(&st);
                        b.encode(&mut self.to_server, &server_name(st.hash));
                    }
                    _ if b.statement.is_empty() => {
                        self.ensure_unnamed();
                        self.to_server.extend_from_slice(msg);
                    }
                    _ => self.to_server.extend_from_slice(msg),
                }
            }
            b'D' => {
                let d = NameTarget::decode(body, "Describe").map_err(malformed)?;
                match (d.kind, self.statements.get(d.name).cloned()) {
                    (b'S', Some(st)) if !d.name.is_empty() => {
                        self.ensure_prepared(&st);
                        d.encode(&mut self.to_server, b'D', &server_name(st.hash));
                    }
                    (b'S', _) if d.name.is_empty() => {
                        self.ensure_unnamed();
                        self.to_server.extend_from_slice(msg);
                    }
                    _ => self.to_server.extend_from_slice(msg),
                }
            }
            b'C' => {
                let c = NameTarget::decode(body, "Close").map_err(malformed)?;
                if c.kind == b'S' && !c.name.is_empty() {
                    // The client's own name never exists on the server: it answers CloseComplete.
                    self.statements.close(c.name);
                } else if c.kind == b'S' {
                    self.unnamed = None;
                    if let Some(g) = self.server.as_mut() {
                        g.conn().unnamed = None;
                    }
                }
                self.to_server.extend_from_slice(msg);
            }
            b'E' => {
                self.metrics.query_requests.inc();
                self.to_server.extend_from_slice(msg);
            }
            b'S' | b'F' => {
                self.start_batch();
                self.to_server.extend_from_slice(msg);
            }
            _ => self.to_server.extend_from_slice(msg),
        }
        Ok(())
    }

    fn start_batch(&mut self) {
        self.outstanding += 1;
        self.batches_sent += 1;
        if self.query_started.is_none() {
            self.query_started = Some(self.last_read);
        }
    }

    fn process_server(&mut self) -> Result<(), SessionError> {
        if let Some(t) = self.query_started.take() {
            self.metrics
                .query_database_response_latency
                .observe(t.elapsed());
        }
        let Some(g) = self.server.as_mut() else {
            return Ok(());
        };
        let conn = g.conn();
        loop {
            if self.server_streaming > 0 {
                let n = self.server_streaming.min(conn.buf.len());
                if n == 0 {
                    return Ok(());
                }
                self.to_client.extend_from_slice(&conn.buf[..n]);
                conn.buf.advance(n);
                self.server_streaming -= n;
                continue;
            }
            let (tag, len) = match peek(&conn.buf, MAX_MESSAGE) {
                Ok(Some(h)) => h,
                Ok(None) => return Ok(()),
                Err(e) => {
                    g.broken = true;
                    return Err(SessionError::Server(format!(
                        "server sent an invalid message: {e}"
                    )));
                }
            };
            if conn.buf.len() < len {
                if len > STREAM_THRESHOLD && !matches!(tag, b'Z' | b'E' | b'1' | b'3' | b'S') {
                    let have = conn.buf.len();
                    self.to_client.extend_from_slice(&conn.buf);
                    conn.buf.clear();
                    self.server_streaming = len - have;
                }
                return Ok(());
            }
            let msg = &conn.buf[..len];
            if let Some(&(batch, t)) = self.swallow.front()
                && batch == self.batches_done
                && t == tag
            {
                self.swallow.pop_front();
                conn.buf.advance(len);
                continue;
            }
            match tag {
                b'1' => {
                    self.client_parses.pop_front();
                }
                b'Z' => {
                    let ended = self.batches_done;
                    while self.client_parses.front().is_some_and(|(b, _)| *b <= ended) {
                        self.client_parses.pop_front();
                    }
                    self.status = msg.get(5).copied().unwrap_or(b'I');
                    self.outstanding = self.outstanding.saturating_sub(1);
                    // The batch's Parses still in flight at its end were parsed without error.
                    if self.parses_in_flight.iter().any(|(b, _)| *b <= ended) {
                        let parsed: Vec<u64> = self
                            .parses_in_flight
                            .iter()
                            .filter(|(b, _)| *b <= ended)
                            .map(|(_, h)| *h)
                            .collect();
                        self.parses_in_flight.retain(|(b, _)| *b > ended);
                        self.proxy.remember_parsed(&self.key, &parsed);
                    }
                    self.batches_done += 1;
                    let done = self.batches_done;
                    self.swallow.retain(|(b, _)| *b >= done);
                    self.renamed.clear();
                    let in_tx = self.status != b'I';
                    if in_tx != self.in_transaction {
                        self.in_transaction = in_tx;
                        self.proxy
                            .target
                            .metrics
                            .in_transaction
                            .add(if in_tx { 1 } else { -1 });
                    }
                }
                b'E' => {
                    self.told_fatal |= codec::holds_fatal(msg);
                    // The server skips to the next Sync: replies to injected messages of this
                    // batch will not come, and Parses in flight may not have happened.
                    let done = self.batches_done;
                    self.swallow.retain(|(b, _)| *b != done);
                    for (_, h) in self.parses_in_flight.iter().filter(|(b, _)| *b <= done) {
                        conn.prepared.remove(h);
                    }
                    self.parses_in_flight.retain(|(b, _)| *b > done);
                    // The batch's Parses not yet answered never happened.
                    while let Some((b, name)) = self.client_parses.front()
                        && *b <= done
                    {
                        if let Some(name) = name {
                            self.statements.close(name);
                        }
                        self.client_parses.pop_front();
                    }
                    if let Some((server, client)) = self
                        .renamed
                        .iter()
                        .find(|(server, _)| msg.windows(server.len()).any(|w| w == server))
                    {
                        codec::replace_in_message(msg, server, client, &mut self.to_client);
                        conn.buf.advance(len);
                        continue;
                    }
                }
                b'S' => {
                    let mut b = super::codec::Body::new(&msg[5..]);
                    if let (Ok(k), Ok(v)) = (b.cstr("S"), b.cstr("S")) {
                        set_param(&mut conn.params, k, v);
                        conn.in_step_with = None;
                    }
                }
                _ => {}
            }
            self.to_client.extend_from_slice(msg);
            conn.buf.advance(len);
        }
    }

    /// Gives the server back in a state fit for the next client, or marks it broken.
    async fn finish(&mut self) {
        let _ = flush(&self.client, &mut self.to_client);
        self.cancel.set(None);
        if self.pinned.is_some() {
            self.proxy.target.metrics.pinned.add(-1);
        }
        if self.in_transaction {
            self.proxy.target.metrics.in_transaction.add(-1);
        }
        let Some(mut g) = self.server.take() else {
            return;
        };
        if g.broken {
            return;
        }
        let clean = self.outstanding == 0
            && !self.unsynced
            && self.to_server.is_empty()
            && self.client_streaming == 0
            && self.server_streaming == 0
            && g.conn().buf.is_empty();
        if !clean {
            // Mid-query: closing the connection makes PostgreSQL abort what it was doing.
            g.broken = true;
            return;
        }
        let needs_rollback = self.status != b'I';
        let needs_reset = self.pinned.is_some() || (self.mode() == PoolMode::Session && self.dirty);
        let reset = async {
            if needs_rollback {
                g.conn().simple_query("ROLLBACK").await?;
            }
            if needs_reset {
                // Its ParameterStatus replies bring the record of reported parameters up to date.
                g.conn().simple_query("DISCARD ALL").await?;
                let conn = g.conn();
                conn.prepared.clear();
                conn.applied.clear();
                conn.in_step_with = None;
                conn.sequences = Sequences::Clean;
            }
            Ok::<(), super::backend::BackendError>(())
        };
        if let Err(e) = tokio::time::timeout(std::time::Duration::from_secs(10), Box::pin(reset))
            .await
            .unwrap_or(Err(super::backend::BackendError::Closed))
        {
            tracing::warn!("discarding a server connection that could not be reset: {e}");
            g.broken = true;
        }
    }
}
