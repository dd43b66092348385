//! Server-facing side: one connection from the proxy to MySQL or MariaDB, logged in with a
//! secret's credentials, with session tracking turned on so that every OK packet tells the proxy
//! what a statement changed. It knows its session's state relative to the state it had after
//! login (`variables`, `schema`), the prepared statements it holds, and whether anything the
//! proxy cannot restore happened on it (`dirty`: it is reset before anyone else uses it).

use std::collections::HashMap;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::constants::{AUTH_MORE_DATA, AUTH_SWITCH, DEFAULT_COLLATION, ERR, OK, cap, com};
use super::messages::{Changes, ErrPacket, Greeting, HandshakeResponse, OkPacket};
use super::packet::{self, PacketError};
use super::scramble;
use super::wire::{Malformed, Reader};
use crate::server::{ServerAddr, ServerTarget};
use crate::socket::Socket;

/// Server responses the proxy reads for itself are small; a client's results are relayed, not
/// read whole, so this does not bound them.
const OWN_RESPONSE_LIMIT: usize = 64 * 1024 * 1024;

/// What every server connection runs after login: the session tracker reports every system
/// variable, the schema and other state changes in OK packets.
pub const TRACKING: &str = "SET SESSION session_track_system_variables = '*', \
     session_track_schema = ON, session_track_state_change = ON";

/// The session variables a login's collation sets, read back after login as the baseline.
const CHARSET_VARIABLES: [&str; 4] = [
    "character_set_client",
    "character_set_connection",
    "character_set_results",
    "collation_connection",
];
const CHARSETS: &str = "SELECT @@session.character_set_client, @@session.character_set_connection, \
     @@session.character_set_results, @@session.collation_connection";

#[derive(Debug, thiserror::Error)]
pub enum MyBackendError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("connecting to {0} timed out")]
    Timeout(String),
    #[error("the server closed the connection")]
    Closed,
    #[error("i/o error talking to the server: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server sent a malformed packet ({0})")]
    Protocol(String),
    #[error("the server asked for an authentication method the proxy cannot use here ({0})")]
    UnsupportedAuth(String),
    #[error("the server refused: {} ({})", .0.message, .0.code)]
    Refused(ErrPacket),
    #[error("TLS with the server failed: {0}")]
    Tls(String),
    #[error("the server lacks {0}, which the proxy needs (MySQL 5.7 or MariaDB 10.2 and later)")]
    TooOld(&'static str),
}

impl From<PacketError> for MyBackendError {
    fn from(e: PacketError) -> Self {
        match e {
            PacketError::Closed => MyBackendError::Closed,
            PacketError::Io(e) => MyBackendError::Io(e),
            PacketError::TooLarge { .. } | PacketError::OutOfOrder => {
                MyBackendError::Protocol(e.to_string())
            }
        }
    }
}

impl From<Malformed> for MyBackendError {
    fn from(e: Malformed) -> Self {
        MyBackendError::Protocol(e.to_string())
    }
}

impl MyBackendError {
    /// Whether the server may be back (or another one be the writer) soon.
    pub fn is_transient(&self) -> bool {
        match self {
            // Too many connections, server shutting down, or starting.
            MyBackendError::Refused(e) => matches!(e.code, 1040 | 1053 | 1077 | 2013),
            MyBackendError::Connect(..)
            | MyBackendError::Timeout(_)
            | MyBackendError::Closed
            | MyBackendError::Io(_) => true,
            _ => false,
        }
    }

    /// The error a client sees: the server's own refusal as it was, else 1105 naming the
    /// kind of failure.
    pub fn to_client(&self) -> ErrPacket {
        let what = match self {
            MyBackendError::Refused(e) => return e.clone(),
            MyBackendError::Connect(..) | MyBackendError::Timeout(_) => {
                "the proxy cannot reach the database server"
            }
            MyBackendError::Closed | MyBackendError::Io(_) => {
                "the proxy lost its connection to the database server"
            }
            _ => "the proxy cannot log in to the database server",
        };
        // The details (addresses, socket paths, what the server sent) are the operator's: the
        // log has them, the client gets the kind of failure.
        tracing::warn!("{what}: {self}");
        ErrPacket::new(super::constants::error::UNKNOWN_ERROR, what)
    }
}

/// A statement prepared on this connection.
#[derive(Clone, Debug)]
pub struct ServerStmt {
    pub id: u32,
    pub params: u16,
    /// The parameter types last sent with an execute on this connection: the server keeps
    /// them, and decodes an execute that omits types with them.
    pub types: Option<Vec<u8>>,
    /// Its text (a hit by hash is checked against it).
    pub sql: bytes::Bytes,
}

pub struct MyConn {
    pub stream: Socket,
    pub buf: BytesMut,
    pub thread_id: u32,
    pub addr: ServerAddr,
    pub version: String,
    /// The capabilities this connection has with its server.
    pub capabilities: u32,
    /// The status flags of the last response.
    pub status: u16,
    /// System variables changed since login (and init_query), as the server reported them.
    pub variables: Vec<(String, String)>,
    /// What init_query set: the values the proxy restores instead of DEFAULT.
    pub baseline: Vec<(String, String)>,
    /// The current schema, and the one it had after login.
    pub schema: Option<String>,
    pub home_schema: Option<String>,
    /// Something happened that the proxy cannot undo statement by statement (a pinned session,
    /// a change the tracker marked without naming): reset before the next client.
    pub dirty: bool,
    /// Prepared statements by the hash of their text.
    pub prepared: HashMap<u64, ServerStmt>,
    /// The value LAST_INSERT_ID() has on this connection, as far as OK packets tell.
    pub last_insert_id: u64,
    /// The login, kept for COM_CHANGE_USER when the server cannot COM_RESET_CONNECTION.
    login: ServerTarget,
    /// Its times and server, as the pool keeps them.
    pub pooled: crate::pool::Pooled,
}

impl std::fmt::Debug for MyConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MyConn(thread {} at {})", self.thread_id, self.addr)
    }
}

/// The collation a pool's options carry (its top byte), or the proxy's default.
pub fn collation_of(options: u32) -> u8 {
    match (options >> 24) as u8 {
        0 => DEFAULT_COLLATION,
        c => c,
    }
}

impl MyConn {
    pub async fn connect(t: &ServerTarget) -> Result<Self, MyBackendError> {
        let addr = t.addr.to_string();
        let stream = match tokio::time::timeout(t.connect_timeout, t.addr.connect()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(MyBackendError::Connect(addr, e)),
            Err(_) => return Err(MyBackendError::Timeout(addr)),
        };
        let mut conn = MyConn {
            stream,
            buf: BytesMut::with_capacity(16 * 1024),
            thread_id: 0,
            addr: t.addr.clone(),
            version: String::new(),
            capabilities: 0,
            status: 0,
            variables: Vec::new(),
            baseline: Vec::new(),
            schema: None,
            home_schema: None,
            dirty: false,
            prepared: HashMap::new(),
            last_insert_id: 0,
            login: t.clone(),
            pooled: crate::pool::Pooled::new(),
        };
        tokio::time::timeout(t.connect_timeout, conn.login(t))
            .await
            .map_err(|_| MyBackendError::Timeout(addr))??;
        Ok(conn)
    }

    async fn login(&mut self, t: &ServerTarget) -> Result<(), MyBackendError> {
        let greeting = packet::read(&mut self.stream, &mut self.buf, OWN_RESPONSE_LIMIT).await?;
        if greeting.payload.first() == Some(&ERR) {
            return Err(MyBackendError::Refused(ErrPacket::parse(
                &greeting.payload,
            )?));
        }
        let g = Greeting::parse(&greeting.payload)?;
        for (flag, what) in [
            (cap::PROTOCOL_41, "the 4.1 protocol"),
            (cap::SESSION_TRACK, "session tracking"),
            (cap::DEPRECATE_EOF, "CLIENT_DEPRECATE_EOF"),
            (cap::PLUGIN_AUTH, "pluggable authentication"),
        ] {
            if g.capabilities & flag == 0 {
                return Err(MyBackendError::TooOld(what));
            }
        }
        self.thread_id = g.connection_id;
        self.version = g.version.clone();
        let mut seq = greeting.seq.wrapping_add(1);
        let database = (!t.database.is_empty()).then(|| t.database.clone());
        let mut wanted = cap::TO_SERVER | (t.options & cap::POOLED_OPTIONS);
        if database.is_some() {
            wanted |= cap::CONNECT_WITH_DB;
        }
        let mut response = HandshakeResponse {
            capabilities: wanted & g.capabilities,
            max_packet: 1 << 30,
            collation: collation_of(t.options),
            user: t.user.as_bytes().to_vec(),
            auth: Vec::new(),
            database: database.map(String::into_bytes),
            plugin: None,
            attributes: attributes(),
        };
        let secure = match (&t.tls, &self.addr) {
            (Some(tls), ServerAddr::Tcp { host, .. }) => {
                if g.capabilities & cap::SSL == 0 {
                    return Err(MyBackendError::Tls("the server does not offer TLS".into()));
                }
                response.capabilities |= cap::SSL;
                seq = packet::write(&mut self.stream, seq, &response.encode_ssl_request()).await?;
                let Socket::Tcp(tcp) = std::mem::replace(
                    &mut self.stream,
                    Socket::Unix(tokio::net::UnixStream::pair()?.0),
                ) else {
                    return Err(MyBackendError::Tls("not a TCP connection".into()));
                };
                self.stream = Socket::Unix(
                    tls.connect(host, tcp)
                        .await
                        .map_err(|e| MyBackendError::Tls(e.to_string()))?,
                );
                true
            }
            (_, ServerAddr::Unix(_)) => true,
            _ => false,
        };
        self.capabilities = response.capabilities;
        let mut plugin = g.plugin.clone();
        let mut scramble = g.scramble.clone();
        if scramble::proof(&plugin, b"", &scramble).is_none() || plugin == scramble::CLEAR {
            // Start with the native plugin; a server that wants another switches.
            plugin = scramble::NATIVE.into();
        }
        response.plugin = Some(plugin.clone().into_bytes());
        response.auth =
            scramble::proof(&plugin, t.password.as_bytes(), &scramble).unwrap_or_default();
        packet::write(&mut self.stream, seq, &response.encode()).await?;
        loop {
            let p = packet::read(&mut self.stream, &mut self.buf, OWN_RESPONSE_LIMIT).await?;
            let seq = p.seq.wrapping_add(1);
            match p.payload.first().copied() {
                Some(OK) => break,
                Some(ERR) => return Err(MyBackendError::Refused(ErrPacket::parse(&p.payload)?)),
                Some(AUTH_SWITCH) => {
                    let mut r = Reader::new(&p.payload[1..]);
                    plugin = String::from_utf8_lossy(r.cstr_or_rest()).into_owned();
                    let data = r.remaining();
                    scramble = data.strip_suffix(&[0]).unwrap_or(data).to_vec();
                    if plugin == scramble::CLEAR && !secure {
                        return Err(MyBackendError::UnsupportedAuth(
                            "mysql_clear_password without TLS".into(),
                        ));
                    }
                    let proof = scramble::proof(&plugin, t.password.as_bytes(), &scramble)
                        .ok_or_else(|| MyBackendError::UnsupportedAuth(plugin.clone()))?;
                    packet::write(&mut self.stream, seq, &proof).await?;
                }
                Some(AUTH_MORE_DATA) if plugin == scramble::CACHING_SHA2 => {
                    match p.payload.get(1) {
                        // Fast authentication succeeded; the OK follows.
                        Some(3) => {}
                        // Full authentication: the password itself, acceptable only over TLS or
                        // a socket (the RSA exchange is not implemented).
                        Some(4) if secure => {
                            let mut pw = t.password.as_bytes().to_vec();
                            pw.push(0);
                            packet::write(&mut self.stream, seq, &pw).await?;
                        }
                        _ => {
                            return Err(MyBackendError::UnsupportedAuth(
                                "caching_sha2_password full authentication without TLS".into(),
                            ));
                        }
                    }
                }
                _ => return Err(MyBackendError::Protocol("unexpected login reply".into())),
            }
        }
        self.home_schema = (!t.database.is_empty()).then(|| t.database.clone());
        self.schema = self.home_schema.clone();
        // init_query may change the schema: the tracker reports it into `schema`.
        self.settle(t).await
    }

    /// Turns session tracking on and runs init_query; what that leaves is the baseline.
    async fn settle(&mut self, t: &ServerTarget) -> Result<(), MyBackendError> {
        self.query(TRACKING).await?;
        self.variables.clear();
        // The character set the login chose is what a fresh session of this pool has; `SET
        // ... = DEFAULT` would give the server's global one instead.
        let rows = self.query(CHARSETS).await?;
        self.baseline = CHARSET_VARIABLES
            .iter()
            .zip(rows.first().map(Vec::as_slice).unwrap_or_default())
            .map(|(k, v)| ((*k).to_owned(), v.clone().unwrap_or_default()))
            .collect();
        if let Some(q) = &t.init_query {
            self.query(q).await?;
            for (k, v) in std::mem::take(&mut self.variables) {
                set_var(&mut self.baseline, &k, &v);
            }
        }
        Ok(())
    }

    /// Sends one command packet (sequence 0).
    pub async fn send(&mut self, payload: &[u8]) -> Result<(), MyBackendError> {
        packet::write(&mut self.stream, 0, payload).await?;
        Ok(())
    }

    /// Reads one whole packet of a response the proxy consumes itself.
    pub async fn read(&mut self) -> Result<packet::Packet, MyBackendError> {
        Ok(packet::read(&mut self.stream, &mut self.buf, OWN_RESPONSE_LIMIT).await?)
    }

    /// Notes an OK packet's status and tracked changes; returns the changes.
    pub fn note_ok(&mut self, ok: &OkPacket) -> Changes {
        self.status = ok.status;
        let changes = ok.changes().unwrap_or_else(|_| Changes {
            state_changed: true,
            ..Default::default()
        });
        self.note_changes(&changes);
        changes
    }

    pub fn note_changes(&mut self, changes: &Changes) {
        for (k, v) in &changes.variables {
            set_var(&mut self.variables, k, v);
        }
        if let Some(s) = &changes.schema {
            self.schema = (!s.is_empty()).then(|| s.clone());
        }
    }

    /// Runs a statement of the proxy's own; returns its rows as text (empty for an OK). Every
    /// result of a multi-result answer is read; the first error is returned after them.
    pub async fn query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, MyBackendError> {
        let mut payload = Vec::with_capacity(sql.len() + 1);
        payload.push(com::QUERY);
        payload.extend_from_slice(sql.as_bytes());
        self.send(&payload).await?;
        let mut rows = Vec::new();
        loop {
            let p = self.read().await?;
            let more = match p.payload.first().copied() {
                Some(OK) => {
                    let ok = OkPacket::parse(&p.payload, self.capabilities)?;
                    self.note_ok(&ok);
                    ok.status & super::constants::status::MORE_RESULTS_EXISTS != 0
                }
                Some(ERR) => {
                    return Err(MyBackendError::Refused(ErrPacket::parse(&p.payload)?));
                }
                _ => {
                    let columns = Reader::new(&p.payload).lenenc("column count")?;
                    for _ in 0..columns {
                        self.read().await?;
                    }
                    loop {
                        let row = self.read().await?;
                        match row.payload.first().copied() {
                            Some(ERR) => {
                                return Err(MyBackendError::Refused(ErrPacket::parse(
                                    &row.payload,
                                )?));
                            }
                            Some(first)
                                if super::messages::is_terminator(
                                    first,
                                    row.payload.len(),
                                    true,
                                ) =>
                            {
                                let ok = OkPacket::parse(&row.payload, self.capabilities)?;
                                self.note_ok(&ok);
                                break ok.status & super::constants::status::MORE_RESULTS_EXISTS
                                    != 0;
                            }
                            _ => {
                                let mut r = Reader::new(&row.payload);
                                let mut values = Vec::with_capacity(columns as usize);
                                for _ in 0..columns {
                                    if r.remaining().first() == Some(&0xfb) {
                                        r.u8("NULL")?;
                                        values.push(None);
                                    } else {
                                        let v = r.lenenc_bytes("value")?;
                                        values.push(Some(String::from_utf8_lossy(v).into_owned()));
                                    }
                                }
                                rows.push(values);
                            }
                        }
                    }
                }
            };
            if !more {
                return Ok(rows);
            }
        }
    }

    /// Returns the session to its state after login: COM_RESET_CONNECTION (which rolls back,
    /// drops temporary tables, user variables, prepared statements, locks of both kinds), or
    /// COM_CHANGE_USER where the server lacks it; then tracking and init_query again.
    pub async fn reset(&mut self) -> Result<(), MyBackendError> {
        self.send(&[com::RESET_CONNECTION]).await?;
        let p = self.read().await?;
        match p.payload.first().copied() {
            Some(OK) => {}
            Some(ERR) => {
                let e = ErrPacket::parse(&p.payload)?;
                if e.code != 1047 {
                    return Err(MyBackendError::Refused(e));
                }
                self.change_user().await?;
                // COM_CHANGE_USER selects the login's database again; COM_RESET_CONNECTION
                // keeps the current one (the next client's sync selects its own).
                self.schema = self.home_schema.clone();
            }
            _ => return Err(MyBackendError::Protocol("unexpected reset reply".into())),
        }
        self.prepared.clear();
        self.dirty = false;
        self.last_insert_id = 0;
        let login = self.login.clone();
        self.settle(&login).await
    }

    async fn change_user(&mut self) -> Result<(), MyBackendError> {
        let t = self.login.clone();
        let mut payload = vec![com::CHANGE_USER];
        payload.extend_from_slice(t.user.as_bytes());
        payload.push(0);
        // An empty proof: the server answers with an auth switch carrying a fresh challenge.
        payload.push(0);
        payload.extend_from_slice(t.database.as_bytes());
        payload.push(0);
        payload.extend_from_slice(&u16::from(collation_of(t.options)).to_le_bytes());
        payload.extend_from_slice(scramble::NATIVE.as_bytes());
        payload.push(0);
        self.send(&payload).await?;
        loop {
            let p = self.read().await?;
            let seq = p.seq.wrapping_add(1);
            match p.payload.first().copied() {
                Some(OK) => return Ok(()),
                Some(ERR) => return Err(MyBackendError::Refused(ErrPacket::parse(&p.payload)?)),
                Some(AUTH_SWITCH) => {
                    let mut r = Reader::new(&p.payload[1..]);
                    let plugin = String::from_utf8_lossy(r.cstr_or_rest()).into_owned();
                    let data = r.remaining();
                    let challenge = data.strip_suffix(&[0]).unwrap_or(data);
                    let proof = scramble::proof(&plugin, t.password.as_bytes(), challenge)
                        .filter(|_| plugin != scramble::CLEAR)
                        .ok_or_else(|| MyBackendError::UnsupportedAuth(plugin.clone()))?;
                    packet::write(&mut self.stream, seq, &proof).await?;
                }
                Some(AUTH_MORE_DATA) if p.payload.get(1) == Some(&3) => {}
                _ => {
                    return Err(MyBackendError::Protocol(
                        "unexpected change-user reply".into(),
                    ));
                }
            }
        }
    }

    /// Whether the connection looks usable without a round trip.
    pub fn looks_alive(&self) -> bool {
        let mut probe = [0u8; 1];
        match self.stream.try_read(&mut probe) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.buf.is_empty(),
            _ => false,
        }
    }

    /// Closes the connection politely (COM_QUIT), ignoring failures.
    pub async fn quit(mut self) {
        let _ = packet::write(&mut self.stream, 0, &[com::QUIT]).await;
        let _ = self.stream.shutdown().await;
    }
}

pub fn set_var(vars: &mut Vec<(String, String)>, k: &str, v: &str) {
    match vars.iter_mut().find(|(n, _)| n == k) {
        Some(e) => {
            e.1.clear();
            e.1.push_str(v);
        }
        None => vars.push((k.to_owned(), v.to_owned())),
    }
}

fn attributes() -> Vec<u8> {
    let mut out = BytesMut::new();
    for (k, v) in [
        ("_client_name", "spillway"),
        ("program_name", "spillway-proxy"),
    ] {
        super::wire::put_lenenc_bytes(&mut out, k.as_bytes());
        super::wire::put_lenenc_bytes(&mut out, v.as_bytes());
    }
    out.to_vec()
}

impl crate::pool::Backend for MyConn {
    type Error = MyBackendError;

    fn connect(server: &ServerTarget) -> impl Future<Output = Result<Self, MyBackendError>> + Send {
        MyConn::connect(server)
    }
    fn is_transient(e: &MyBackendError) -> bool {
        e.is_transient()
    }
    fn looks_alive(&self) -> bool {
        MyConn::looks_alive(self)
    }
    fn pooled(&self) -> &crate::pool::Pooled {
        &self.pooled
    }
    fn pooled_mut(&mut self) -> &mut crate::pool::Pooled {
        &mut self.pooled
    }
    fn rehome(&mut self) -> std::io::Result<()> {
        self.stream.rehome()
    }
}

/// A MySQL server is the writer while `read_only` is off: replicas run with it on (Aurora and
/// RDS readers do, and spillway's managed replicas do), which is what ProxySQL watches too.
impl crate::pg::topology::Probe for MyConn {
    async fn role(&mut self) -> Result<crate::pg::topology::Health, MyBackendError> {
        let rows = self.query("SELECT @@global.read_only").await?;
        Ok(
            match rows
                .first()
                .and_then(|r| r.first())
                .and_then(|v| v.as_deref())
            {
                Some("0") => crate::pg::topology::Health::Writer,
                _ => crate::pg::topology::Health::Reader,
            },
        )
    }
}
