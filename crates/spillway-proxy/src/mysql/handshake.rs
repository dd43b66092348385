//! Client-facing login: the greeting, TLS (an SSLRequest, then the shared TLS relay), the
//! client's answer, and authentication against the proxy's users — a password plugin's proof,
//! or an RDS IAM token after an auth switch to `mysql_clear_password` (drivers such as mysql2
//! cannot choose that plugin first, so the proxy asks for it). Then the pool: the first login
//! into a (database, user, options) pool opens a server connection, so that an unknown
//! database or a refused grant is the client's login error, with the server's own code.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use spillway_stack::model::IamAuth;
use tokio::net::TcpStream;

use super::backend::MyConn;
use super::constants::{DEFAULT_COLLATION, OK, cap, error, status};
use super::messages::{
    ErrPacket, Greeting, HandshakeResponse, OkPacket, auth_switch, is_ssl_request,
};
use super::packet::{self, PacketError};
use super::proxy::{MyProxy, MySettings, MyUser};
use super::scramble;
use crate::metrics::EndpointMetrics;
use crate::pool::{BorrowError, Guard, PoolId, PoolKey};
use crate::server::ServerTarget;
use crate::socket::Socket;

/// A login must finish within this (as the PostgreSQL side's).
pub(super) const AUTH_TIMEOUT: Duration = Duration::from_secs(15);
/// Login packets are small; a client announcing more is refused before it is buffered.
const LOGIN_PACKET_LIMIT: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum MyHandshakeError {
    #[error(transparent)]
    Packet(#[from] PacketError),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("login timed out after {0:?}")]
    Timeout(Duration),
    #[error("refused: {0}")]
    Refused(String),
}

/// A logged-in client: its socket and what the login established.
pub struct MyLogin {
    pub stream: Socket,
    pub admitted: Admitted,
}

/// What a successful login established; the session takes it from here.
pub struct Admitted {
    pub buf: BytesMut,
    pub peer: SocketAddr,
    /// The capabilities the client and the proxy agreed on.
    pub capabilities: u32,
    pub user: Arc<MyUser>,
    pub key: PoolKey,
    pub pool: PoolId,
    pub schema: Option<String>,
    pub connection_id: u32,
    pub settings: Arc<MySettings>,
    /// The connection opened to check the login, kept for the first statement.
    pub guard: Option<Guard<MyConn>>,
}

pub async fn handshake(
    stream: TcpStream,
    peer: SocketAddr,
    proxy: &Arc<MyProxy>,
    metrics: &EndpointMetrics,
) -> Result<Option<MyLogin>, MyHandshakeError> {
    let mut stream = Socket::Tcp(stream);
    let mut seq = 0;
    let result = tokio::time::timeout(
        AUTH_TIMEOUT,
        run(&mut stream, &mut seq, peer, proxy, metrics),
    )
    .await;
    match result {
        Ok(Ok(admitted)) => Ok(Some(MyLogin { stream, admitted })),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            let err = ErrPacket::new(error::HANDSHAKE, "Bad handshake: the login timed out");
            let _ = packet::write(&mut stream, seq, &err.encode()).await;
            Err(MyHandshakeError::Timeout(AUTH_TIMEOUT))
        }
    }
}

/// Sends `err` and ends the login.
async fn refuse<T>(stream: &mut Socket, seq: u8, err: ErrPacket) -> Result<T, MyHandshakeError> {
    let _ = packet::write(stream, seq, &err.encode()).await;
    Err(MyHandshakeError::Refused(format!(
        "{} ({})",
        err.message, err.code
    )))
}

/// One login packet; one above the limit gets MySQL's error for it before the login ends.
async fn read_login(
    stream: &mut Socket,
    buf: &mut BytesMut,
    seq: u8,
) -> Result<packet::Packet, MyHandshakeError> {
    match packet::read(stream, buf, LOGIN_PACKET_LIMIT).await {
        Err(PacketError::TooLarge { .. }) => {
            refuse(
                stream,
                seq.wrapping_add(1),
                ErrPacket::new(
                    error::NET_PACKET_TOO_LARGE,
                    "Got a packet bigger than 'max_allowed_packet' bytes",
                ),
            )
            .await
        }
        r => Ok(r?),
    }
}

pub(super) fn access_denied(user: &[u8], with_password: bool) -> ErrPacket {
    ErrPacket::new(
        error::ACCESS_DENIED,
        format!(
            "Access denied for user '{}'@'%' (using password: {})",
            String::from_utf8_lossy(user),
            if with_password { "YES" } else { "NO" }
        ),
    )
}

async fn run(
    stream: &mut Socket,
    seq: &mut u8,
    peer: SocketAddr,
    proxy: &Arc<MyProxy>,
    metrics: &EndpointMetrics,
) -> Result<Admitted, MyHandshakeError> {
    let settings = proxy.settings();
    let connection_id = proxy.next_connection_id();
    let challenge = scramble::challenge();
    let mut offered = cap::OFFERED;
    if settings.tls.is_some() {
        offered |= cap::SSL;
    }
    if settings.local_infile {
        offered |= cap::LOCAL_FILES;
    }
    let greeting = Greeting {
        version: settings.server_version.clone(),
        connection_id,
        scramble: challenge.clone(),
        capabilities: offered,
        collation: DEFAULT_COLLATION,
        status: status::AUTOCOMMIT,
        plugin: settings.password_plugin.name().into(),
    };
    *seq = packet::write(stream, 0, &greeting.encode()).await?;
    let mut buf = BytesMut::with_capacity(1024);
    let mut p = read_login(stream, &mut buf, *seq).await?;
    *seq = p.seq.wrapping_add(1);
    if is_ssl_request(&p.payload) {
        let (Some(tls), Socket::Tcp(_)) = (&settings.tls, &*stream) else {
            return refuse(
                stream,
                *seq,
                ErrPacket::new(error::HANDSHAKE, "Bad handshake: TLS was not offered"),
            )
            .await;
        };
        // A MySQL client starts its TLS handshake right after the SSLRequest, without waiting:
        // what followed it in the same read is the ClientHello, for the TLS side.
        let (relay, session_end) = tokio::net::UnixStream::pair()?;
        let early = std::mem::take(&mut buf).to_vec();
        if let Socket::Tcp(tcp) = std::mem::replace(stream, Socket::Unix(session_end)) {
            tls.serve_after(tcp, early, relay);
        }
        p = read_login(stream, &mut buf, *seq).await?;
        *seq = p.seq.wrapping_add(1);
    }
    let response = match HandshakeResponse::parse(&p.payload) {
        Ok(r) => r,
        Err(e) => {
            return refuse(
                stream,
                *seq,
                ErrPacket::new(error::HANDSHAKE, format!("Bad handshake: {e}")),
            )
            .await;
        }
    };
    let tls = stream.is_tls();
    if !tls {
        if settings.require_tls {
            return refuse(
                stream,
                *seq,
                ErrPacket::new(
                    error::SECURE_TRANSPORT_REQUIRED,
                    "This RDS Proxy requires TLS connections.",
                ),
            )
            .await;
        }
        metrics.client_connections_no_tls.inc();
    }
    let capabilities = response.capabilities & offered;
    let name = String::from_utf8_lossy(&response.user).into_owned();
    let user = match authenticate(
        stream, seq, &mut buf, proxy, &settings, &response, &challenge, tls, peer,
    )
    .await?
    {
        Some(u) => u,
        None => {
            metrics.client_connections_setup_failed_auth.inc();
            tracing::info!(peer = %peer, user = %name, proxy = %settings.proxy, "MySQL login refused");
            let with_password = !response.auth.is_empty();
            return refuse(stream, *seq, access_denied(&response.user, with_password)).await;
        }
    };

    let database = response
        .database
        .as_ref()
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .filter(|d| !d.is_empty());
    // MySQL's own limit: a longer name cannot exist, and each name a client sends would
    // otherwise become a pool kept for the proxy's life.
    if database.as_ref().is_some_and(|d| d.chars().count() > 64) {
        return refuse(
            stream,
            *seq,
            ErrPacket::new((1102, "42000"), "Incorrect database name"),
        )
        .await;
    }
    let collation = if response.collation == 0 {
        DEFAULT_COLLATION
    } else {
        response.collation
    };
    let key = PoolKey {
        database: database.clone().unwrap_or_default(),
        user: user.name.clone(),
        options: (capabilities & cap::POOLED_OPTIONS) | u32::from(collation) << 24,
    };
    let server = ServerTarget {
        addr: settings.server.clone(),
        tls: settings.server_tls.clone(),
        database: key.database.clone(),
        user: user.name.clone(),
        password: user.password.clone(),
        init_query: settings.init_query.clone(),
        connect_timeout: settings.connect_timeout,
        options: key.options,
    };
    if let Err(e) = room_for_pool(proxy, &key) {
        return refuse(stream, *seq, e).await;
    }
    let pool = proxy.target.pool(&key, &server);
    let mut guard = None;
    if !proxy.is_verified(&key) {
        match proxy.target.borrow_at(pool, Instant::now()).await {
            Ok(g) => {
                proxy.set_verified(&key);
                guard = Some(g);
            }
            Err(e) => {
                let err = borrow_error(&e);
                tracing::info!(peer = %peer, user = %name, database = %key.database, "MySQL login cannot open a server connection: {e}");
                return refuse(stream, *seq, err).await;
            }
        }
    }
    let ok = OkPacket {
        status: status::AUTOCOMMIT,
        ..Default::default()
    };
    *seq = packet::write(stream, *seq, &ok.encode(capabilities, OK)).await?;
    metrics.client_connections_setup_succeeded.inc();
    Ok(Admitted {
        buf,
        peer,
        capabilities,
        user,
        key,
        pool,
        schema: database,
        connection_id,
        settings,
        guard,
    })
}

/// Pools a MySQL target keeps at most: (database, user, options) combinations that logins
/// asked for. Far above what tenants need (1,000 tenants with a few drivers each), it bounds
/// what logged-in clients naming endless databases can make the proxy keep.
const MAX_POOLS: usize = 20_000;

/// Whether a login may make the pool for `key` (it exists, or there is room).
pub(super) fn room_for_pool(proxy: &MyProxy, key: &PoolKey) -> Result<(), ErrPacket> {
    if proxy.target.has_pool(key) || proxy.target.pool_count() < MAX_POOLS {
        return Ok(());
    }
    tracing::warn!(proxy = %proxy.settings().proxy, user = %key.user, "refused a login: the proxy keeps {MAX_POOLS} pools at most");
    Err(ErrPacket::new(
        error::TOO_MANY_CONNECTIONS,
        "Too many connections",
    ))
}

/// The error a client gets when no server connection could be had.
pub fn borrow_error(e: &BorrowError<super::backend::MyBackendError>) -> ErrPacket {
    match e {
        BorrowError::Timeout(_) => ErrPacket::new(
            error::BORROW_TIMEOUT,
            "Timed-out waiting to acquire database connection",
        ),
        BorrowError::Connect(e) => e.to_client(),
    }
}

/// The user on success, `None` on any failure. Unknown users go through the same exchange as
/// known ones (an IAM switch when the proxy has IAM users, else a password check nobody can
/// pass), so the error cannot tell them from a wrong password.
#[allow(clippy::too_many_arguments)]
pub(super) async fn authenticate(
    stream: &mut Socket,
    seq: &mut u8,
    buf: &mut BytesMut,
    proxy: &Arc<MyProxy>,
    settings: &MySettings,
    response: &HandshakeResponse,
    challenge: &[u8],
    tls: bool,
    peer: SocketAddr,
) -> Result<Option<Arc<MyUser>>, MyHandshakeError> {
    let name = String::from_utf8_lossy(&response.user).into_owned();
    let user = settings.users.get(&name).cloned();
    let client_plugin = response
        .plugin
        .as_deref()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_else(|| scramble::NATIVE.into());
    let clear_ok = tls || (settings.cleartext_on_loopback && peer.ip().is_loopback());
    let iam = match &user {
        Some(u) => u.iam,
        // An unknown user looks like an IAM user where IAM logins could happen, and like a
        // password user where they could not (without TLS), so neither answer singles it out.
        None if clear_ok && settings.users.values().any(|u| u.iam != IamAuth::Disabled) => {
            IamAuth::Required
        }
        None => IamAuth::Disabled,
    };
    if iam != IamAuth::Disabled {
        if !clear_ok {
            return refuse(
                stream,
                *seq,
                ErrPacket::new(
                    error::SECURE_TRANSPORT_REQUIRED,
                    "This RDS Proxy requires TLS connections.",
                ),
            )
            .await;
        }
        let token = if client_plugin == scramble::CLEAR && !response.auth.is_empty() {
            response.auth.clone()
        } else {
            *seq = packet::write(stream, *seq, &auth_switch(scramble::CLEAR, &[])).await?;
            let p = read_login(stream, buf, *seq).await?;
            *seq = p.seq.wrapping_add(1);
            p.payload.to_vec()
        };
        let token = token.strip_suffix(&[0]).unwrap_or(&token);
        let token = String::from_utf8_lossy(token);
        let Some(user) = user else { return Ok(None) };
        let by_token = proxy.iam.as_ref().is_some_and(|v| v.verify(&name, &token));
        let by_password = iam == IamAuth::Optional
            && scramble::constant_eq(token.as_bytes(), user.password.as_bytes());
        return Ok((by_token || by_password).then_some(user));
    }
    let (plugin, proof) = if scramble::proof(&client_plugin, b"x", challenge).is_some()
        && client_plugin != scramble::CLEAR
    {
        (client_plugin, response.auth.clone())
    } else {
        // A plugin the proxy does not check (sha256_password, ed25519, ...): ask for its own.
        let ours = settings.password_plugin.name();
        let mut data = challenge.to_vec();
        data.push(0);
        *seq = packet::write(stream, *seq, &auth_switch(ours, &data)).await?;
        let p = read_login(stream, buf, *seq).await?;
        *seq = p.seq.wrapping_add(1);
        (ours.to_owned(), p.payload.to_vec())
    };
    // An unknown user is checked against a password nobody has.
    let password = match &user {
        Some(u) => u.password.clone(),
        None => format!("{:x}", rand::random::<u128>()),
    };
    let expected = scramble::proof(&plugin, password.as_bytes(), challenge).unwrap_or_default();
    let matched = scramble::constant_eq(&proof, &expected);
    if matched && plugin == scramble::CACHING_SHA2 {
        // caching_sha2_password's "fast authentication succeeded"; the OK follows.
        *seq = packet::write(stream, *seq, &[super::constants::AUTH_MORE_DATA, 3]).await?;
    }
    Ok(user.filter(|_| matched))
}
