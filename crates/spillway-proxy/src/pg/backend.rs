//! Server-facing side: one connection from the proxy to PostgreSQL, logged in with the user's
//! credentials (SCRAM-SHA-256, MD5, cleartext or trust), with its BackendKeyData (for cancels),
//! its ParameterStatus values (replayed to clients) and the prepared statements it holds.

use std::collections::HashSet;

use bytes::{Buf, BufMut, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::codec::{Body, MAX_MESSAGE, message, peek, put_cstr};
use super::messages::error_code;
use super::startup::PROTOCOL_3_0;
use crate::socket::Socket;

pub use crate::server::{ServerAddr, ServerTarget};

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("connecting to {0} timed out")]
    Timeout(String),
    #[error("the server closed the connection")]
    Closed,
    #[error("i/o error talking to the server: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server sent a malformed message")]
    Protocol,
    #[error("the server asked for an authentication method the proxy does not support ({0})")]
    UnsupportedAuth(i32),
    #[error("the server refused the login: {message} ({code})")]
    Refused { code: String, message: String },
    #[error("SCRAM with the server failed")]
    Scram,
    #[error("TLS with the server failed: {0}")]
    Tls(String),
}

impl BackendError {
    /// Whether the server may be back (or another one be the writer) soon: it could not be
    /// reached, or it is starting up or shutting down.
    pub fn is_transient(&self) -> bool {
        match self {
            BackendError::Refused { code, .. } => {
                matches!(
                    code.as_str(),
                    "57P01" | "57P02" | "57P03" | "08006" | "08001"
                )
            }
            BackendError::Connect(..)
            | BackendError::Timeout(_)
            | BackendError::Closed
            | BackendError::Io(_) => true,
            _ => false,
        }
    }

    /// The SQLSTATE a client should see: the server's own when it sent one.
    pub fn sqlstate(&self) -> &str {
        match self {
            BackendError::Refused { code, .. } => code,
            _ => "08006",
        }
    }
}

pub struct ServerConn {
    pub stream: Socket,
    pub buf: BytesMut,
    pub pid: i32,
    pub secret: i32,
    pub addr: ServerAddr,
    /// What a cancel for this connection needs, shared with the cancel registry while borrowed.
    pub cancel_key: std::sync::Arc<crate::cancel::ServerKey>,
    /// The values of the parameters the server reports (ParameterStatus), kept current from
    /// every reply that passes through the proxy, its own statements' included.
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
    /// Clients' startup parameters the proxy set on this connection (see `pg::params`).
    pub applied: Vec<(String, String)>,
    /// The fingerprint of the startup parameters this connection was last found in step
    /// with; cleared by any change of its parameters. Clients asking for the same parameters
    /// (most of them) then borrow it without comparing them one by one.
    pub in_step_with: Option<u64>,
    /// Whose sequence values (currval/lastval) the session may hold.
    pub sequences: Sequences,
    /// Server-side names of the prepared statements this connection holds.
    pub prepared: HashSet<u64>,
    /// Whose unnamed statement this connection holds: the number of the client Parse('') that
    /// made it (see `Session::unnamed`), or none (a simple query destroys it).
    pub unnamed: Option<u64>,
    /// Its times and server, as the pool keeps them.
    pub pooled: crate::pool::Pooled,
}

/// Which clients' `nextval` calls a server session may remember (PostgreSQL keeps the last value
/// per sequence per session for `currval` and `lastval`, until `DISCARD SEQUENCES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sequences {
    /// No client has used the connection since it opened or was last discarded.
    Clean,
    /// Only this client (a session's number) has.
    Only(u64),
    /// Several have.
    Mixed,
}

impl std::fmt::Debug for ServerConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerConn(pid {} at {})", self.pid, self.addr)
    }
}

/// Records a reported parameter's value.
pub fn set_param(params: &mut Vec<(Vec<u8>, Vec<u8>)>, k: &[u8], v: &[u8]) {
    match params.iter_mut().find(|(pk, _)| pk.as_slice() == k) {
        Some(p) => {
            p.1.clear();
            p.1.extend_from_slice(v);
        }
        None => params.push((k.to_vec(), v.to_vec())),
    }
}

/// Reads one whole message into `buf` and splits it off; returns (tag, body).
async fn read_message(
    stream: &mut Socket,
    buf: &mut BytesMut,
) -> Result<(u8, BytesMut), BackendError> {
    loop {
        if let Some((tag, len)) = peek(buf, MAX_MESSAGE).map_err(|_| BackendError::Protocol)?
            && buf.len() >= len
        {
            let mut m = buf.split_to(len);
            m.advance(5);
            return Ok((tag, m));
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(BackendError::Closed);
        }
    }
}

fn error_fields(body: &[u8]) -> BackendError {
    let code = error_code(body)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_else(|| "XX000".into());
    let mut b = Body::new(body);
    let mut message = String::new();
    while let Ok(f) = b.u8("E") {
        if f == 0 {
            break;
        }
        let Ok(v) = b.cstr("E") else { break };
        if f == b'M' {
            message = String::from_utf8_lossy(v).into_owned();
        }
    }
    BackendError::Refused { code, message }
}

/// SSLRequest, then the TLS handshake if the server agrees; a server that declines is an error
/// (the stack asked for TLS).
async fn start_tls(
    tls: &crate::tls::ClientTls,
    host: &str,
    mut tcp: TcpStream,
) -> Result<Socket, BackendError> {
    let mut req = BytesMut::with_capacity(8);
    req.put_i32(8);
    req.put_i32(super::startup::SSL_REQUEST);
    tcp.write_all(&req).await?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await?;
    match answer[0] {
        b'S' => Ok(Socket::Unix(
            tls.connect(host, tcp)
                .await
                .map_err(|e| BackendError::Tls(e.to_string()))?,
        )),
        _ => Err(BackendError::Tls("the server does not accept TLS".into())),
    }
}

impl ServerConn {
    pub async fn connect(t: &ServerTarget) -> Result<Self, BackendError> {
        let addr = t.addr.to_string();
        let stream = match tokio::time::timeout(t.connect_timeout, t.addr.connect()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(BackendError::Connect(addr, e)),
            Err(_) => return Err(BackendError::Timeout(addr)),
        };
        let stream = match (&t.tls, stream, &t.addr) {
            (Some(tls), Socket::Tcp(tcp), ServerAddr::Tcp { host, .. }) => {
                tokio::time::timeout(t.connect_timeout, start_tls(tls, host, tcp))
                    .await
                    .map_err(|_| BackendError::Timeout(addr.clone()))??
            }
            (_, s, _) => s,
        };
        let mut conn = ServerConn {
            stream,
            buf: BytesMut::with_capacity(16 * 1024),
            pid: 0,
            secret: 0,
            addr: t.addr.clone(),
            cancel_key: std::sync::Arc::new(crate::cancel::ServerKey {
                addr: t.addr.clone(),
                pid: 0,
                secret: 0,
            }),
            params: Vec::new(),
            applied: Vec::new(),
            in_step_with: None,
            sequences: Sequences::Clean,
            prepared: HashSet::new(),
            unnamed: None,
            pooled: crate::pool::Pooled::new(),
        };
        tokio::time::timeout(t.connect_timeout, conn.startup(t))
            .await
            .map_err(|_| BackendError::Timeout(addr))??;
        conn.cancel_key = std::sync::Arc::new(crate::cancel::ServerKey {
            addr: t.addr.clone(),
            pid: conn.pid,
            secret: conn.secret,
        });
        if let Some(q) = &t.init_query {
            conn.simple_query(q).await?;
        }
        Ok(conn)
    }

    async fn startup(&mut self, t: &ServerTarget) -> Result<(), BackendError> {
        let mut out = BytesMut::new();
        out.put_i32(0);
        out.put_i32(PROTOCOL_3_0);
        // No application_name of the proxy's own: the server's default is what a client
        // without one must see (node-postgres' tests expect ''), and each client's own is set
        // per borrow (`pg::params`).
        for (k, v) in [("user", t.user.as_str()), ("database", t.database.as_str())] {
            put_cstr(&mut out, k.as_bytes());
            put_cstr(&mut out, v.as_bytes());
        }
        out.put_u8(0);
        let len = out.len() as i32;
        out[0..4].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(&out).await?;

        let mut scram: Option<ScramSha256> = None;
        loop {
            let (tag, body) = read_message(&mut self.stream, &mut self.buf).await?;
            match tag {
                b'R' => {
                    let mut b = Body::new(&body);
                    let code = b.i32("auth").map_err(|_| BackendError::Protocol)?;
                    let mut reply = BytesMut::new();
                    match code {
                        0 => continue,
                        3 => message(&mut reply, b'p', |o| put_cstr(o, t.password.as_bytes())),
                        5 => {
                            let salt = b.take(4, "md5").map_err(|_| BackendError::Protocol)?;
                            let hash = postgres_protocol::authentication::md5_hash(
                                t.user.as_bytes(),
                                t.password.as_bytes(),
                                [salt[0], salt[1], salt[2], salt[3]],
                            );
                            message(&mut reply, b'p', |o| put_cstr(o, hash.as_bytes()));
                        }
                        10 => {
                            let mechanisms = b.remaining();
                            if !mechanisms.split(|c| *c == 0).any(|m| m == b"SCRAM-SHA-256") {
                                return Err(BackendError::UnsupportedAuth(code));
                            }
                            let s = ScramSha256::new(
                                t.password.as_bytes(),
                                ChannelBinding::unsupported(),
                            );
                            message(&mut reply, b'p', |o| {
                                put_cstr(o, b"SCRAM-SHA-256");
                                o.put_i32(s.message().len() as i32);
                                o.put_slice(s.message());
                            });
                            scram = Some(s);
                        }
                        11 => {
                            let s = scram.as_mut().ok_or(BackendError::Protocol)?;
                            s.update(b.remaining()).map_err(|_| BackendError::Scram)?;
                            message(&mut reply, b'p', |o| o.put_slice(s.message()));
                        }
                        12 => {
                            let mut s = scram.take().ok_or(BackendError::Protocol)?;
                            s.finish(b.remaining()).map_err(|_| BackendError::Scram)?;
                            continue;
                        }
                        other => return Err(BackendError::UnsupportedAuth(other)),
                    }
                    self.stream.write_all(&reply).await?;
                }
                b'S' => {
                    let mut b = Body::new(&body);
                    let k = b.cstr("S").map_err(|_| BackendError::Protocol)?.to_vec();
                    let v = b.cstr("S").map_err(|_| BackendError::Protocol)?.to_vec();
                    self.params.push((k, v));
                }
                b'K' => {
                    let mut b = Body::new(&body);
                    self.pid = b.i32("K").map_err(|_| BackendError::Protocol)?;
                    self.secret = b.i32("K").map_err(|_| BackendError::Protocol)?;
                }
                b'E' => return Err(error_fields(&body)),
                b'N' => {}
                b'Z' => return Ok(()),
                _ => return Err(BackendError::Protocol),
            }
        }
    }

    /// Runs a simple query on an idle connection; returns the text values of the rows.
    pub async fn simple_query(
        &mut self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, BackendError> {
        // A simple query destroys the unnamed statement (protocol: "Query ... destroys the
        // unnamed statement"), whoever made it.
        self.unnamed = None;
        let mut out = BytesMut::new();
        message(&mut out, b'Q', |o| put_cstr(o, sql.as_bytes()));
        self.stream.write_all(&out).await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let (tag, body) = read_message(&mut self.stream, &mut self.buf).await?;
            match tag {
                b'D' => {
                    let mut b = Body::new(&body);
                    let n = b.i16("D").map_err(|_| BackendError::Protocol)?;
                    let mut row = Vec::new();
                    for _ in 0..n {
                        let len = b.i32("D").map_err(|_| BackendError::Protocol)?;
                        if len < 0 {
                            row.push(None);
                        } else {
                            let v = b
                                .take(len as usize, "D")
                                .map_err(|_| BackendError::Protocol)?;
                            row.push(Some(String::from_utf8_lossy(v).into_owned()));
                        }
                    }
                    rows.push(row);
                }
                b'E' => error = Some(error_fields(&body)),
                // What the proxy's own statements change (a ROLLBACK of SET LOCAL, DISCARD ALL,
                // a client's parameters) is reported like a client's: the record follows.
                b'S' => {
                    let mut b = Body::new(&body);
                    if let (Ok(k), Ok(v)) = (b.cstr("S"), b.cstr("S")) {
                        set_param(&mut self.params, k, v);
                        self.in_step_with = None;
                    }
                }
                b'Z' => {
                    return match error {
                        Some(e) => Err(e),
                        None => Ok(rows),
                    };
                }
                _ => {}
            }
        }
    }

    /// Whether the connection looks usable without a round trip: nothing unread is waiting on
    /// the socket (an idle server that sent something, such as a FATAL before shutting down or
    /// EOF, is not).
    pub fn looks_alive(&self) -> bool {
        let mut probe = [0u8; 1];
        match self.stream.try_read(&mut probe) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.buf.is_empty(),
            _ => false,
        }
    }
}

impl crate::pool::Backend for ServerConn {
    type Error = BackendError;

    fn connect(server: &ServerTarget) -> impl Future<Output = Result<Self, BackendError>> + Send {
        ServerConn::connect(server)
    }
    fn is_transient(e: &BackendError) -> bool {
        e.is_transient()
    }
    fn looks_alive(&self) -> bool {
        ServerConn::looks_alive(self)
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
