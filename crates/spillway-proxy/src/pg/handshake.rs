//! Client-facing start of a session: the startup packet (answering TLS and GSS encryption
//! requests, forwarding cancel requests), then authentication against the proxy's users, then
//! the parameters and key data a client expects before its first query.
//!
//! Failed logins all look the same to the client (SQLSTATE 28P01, no hint which part was wrong);
//! the log says why.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use spillway_stack::model::IamAuth;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::socket::Socket;

use super::backend::ServerTarget;
use super::codec::{self, Body, MAX_PREAUTH_MESSAGE, Severity, peek};
use super::params;
use super::proxy::{ClientAuth, PgProxy, Settings, User};
use super::scram::{self, Exchange, Verifier};
use super::startup::{self, StartupPacket};
use crate::metrics::EndpointMetrics;
use crate::pool::{Guard, PoolId, PoolKey};

/// How long a client may take from connecting to finishing authentication (PostgreSQL's
/// authentication_timeout defaults to 60s; a pooler facing serverless storms wants less).
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(30);

pub struct LoggedIn {
    pub stream: Socket,
    /// Bytes the client sent after its startup packet (pipelined queries).
    pub buf: BytesMut,
    pub user: Arc<User>,
    pub key: Arc<PoolKey>,
    pub pool: PoolId,
    /// The client's startup parameters, as the server spells and normalizes them.
    pub wanted: Vec<(String, String)>,
    pub settings: Arc<Settings>,
}

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("client i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("client closed the connection during startup")]
    Closed,
    #[error("client took longer than {0:?} to log in")]
    Timeout(Duration),
    #[error("{0}")]
    Refused(String),
}

async fn fill(stream: &mut Socket, buf: &mut BytesMut, n: usize) -> Result<(), HandshakeError> {
    while buf.len() < n {
        if stream.read_buf(buf).await? == 0 {
            return Err(HandshakeError::Closed);
        }
    }
    Ok(())
}

async fn read_startup(
    stream: &mut Socket,
    buf: &mut BytesMut,
) -> Result<StartupPacket, HandshakeError> {
    fill(stream, buf, 4).await?;
    let len = match startup::packet_len(buf) {
        Ok(Some(l)) => l,
        Ok(None) => return Err(HandshakeError::Closed),
        // PostgreSQL logs a bad length and hangs up without a word (it cannot know the client
        // speaks its protocol at all: an HTTP request lands here too); so does the proxy.
        Err(e) => return Err(HandshakeError::Refused(format!("{e} (08P01)"))),
    };
    fill(stream, buf, len).await?;
    let packet = buf.split_to(len);
    match startup::decode(&packet) {
        Ok(p) => Ok(p),
        Err(e) => refuse(stream, "08P01", &e.to_string()).await,
    }
}

/// Sends a FATAL error and ends the handshake.
async fn refuse<T>(stream: &mut Socket, code: &str, message: &str) -> Result<T, HandshakeError> {
    let mut out = BytesMut::new();
    codec::error_response(&mut out, Severity::Fatal, code, message);
    let _ = stream.write_all(&out).await;
    Err(HandshakeError::Refused(format!("{message} ({code})")))
}

/// Reads one password-type (`p`) message body during authentication.
async fn read_password_message(
    stream: &mut Socket,
    buf: &mut BytesMut,
) -> Result<BytesMut, HandshakeError> {
    loop {
        match peek(buf, MAX_PREAUTH_MESSAGE) {
            Ok(Some((b'p', len))) if buf.len() >= len => {
                let mut m = buf.split_to(len);
                m.advance(5);
                return Ok(m);
            }
            Ok(Some((b'p', _))) | Ok(None) => {}
            Ok(Some((tag, _))) => {
                return refuse(
                    stream,
                    "08P01",
                    &format!(
                        "expected a password message, got message type {:?}",
                        tag as char
                    ),
                )
                .await;
            }
            Err(e) => return refuse(stream, "08P01", &e.to_string()).await,
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(HandshakeError::Closed);
        }
    }
}

/// Runs the handshake. `Ok(None)` means the connection was a cancel request (handled) or was
/// turned away politely.
pub async fn handshake(
    stream: TcpStream,
    proxy: &Arc<PgProxy>,
    metrics: &EndpointMetrics,
) -> Result<Option<LoggedIn>, HandshakeError> {
    let mut stream = Socket::Tcp(stream);
    match tokio::time::timeout(AUTH_TIMEOUT, run(&mut stream, proxy, metrics)).await {
        Ok(Ok(Some(a))) => Ok(Some(LoggedIn {
            stream,
            buf: a.buf,
            user: a.user,
            key: a.key,
            pool: a.pool,
            wanted: a.wanted,
            settings: a.settings,
        })),
        Ok(Ok(None)) => Ok(None),
        Ok(Err(e)) => Err(e),
        Err(_) => {
            let mut out = BytesMut::new();
            codec::error_response(
                &mut out,
                Severity::Fatal,
                "08006",
                "authentication timed out",
            );
            let _ = stream.write_all(&out).await;
            Err(HandshakeError::Timeout(AUTH_TIMEOUT))
        }
    }
}

/// What a successful login established (the session then takes the socket too).
struct Admitted {
    buf: BytesMut,
    user: Arc<User>,
    key: Arc<PoolKey>,
    pool: PoolId,
    wanted: Vec<(String, String)>,
    settings: Arc<Settings>,
}

async fn run(
    stream: &mut Socket,
    proxy: &Arc<PgProxy>,
    metrics: &EndpointMetrics,
) -> Result<Option<Admitted>, HandshakeError> {
    let mut buf = BytesMut::with_capacity(1024);
    let settings = proxy.settings();
    let mut asked_ssl = false;
    let mut asked_gss = false;
    let params = loop {
        match read_startup(stream, &mut buf).await? {
            StartupPacket::Ssl if !asked_ssl => {
                asked_ssl = true;
                match (&settings.tls, &*stream) {
                    (Some(tls), Socket::Tcp(_)) => {
                        // Bytes sent after the SSLRequest, before the handshake, would be
                        // plaintext smuggled into the encrypted session (CVE-2021-23214).
                        if !buf.is_empty() {
                            return refuse(
                                stream,
                                "08P01",
                                "received unencrypted data after SSL request",
                            )
                            .await;
                        }
                        stream.write_all(b"S").await?;
                        let (relay, session_end) = tokio::net::UnixStream::pair()?;
                        if let Socket::Tcp(tcp) =
                            std::mem::replace(stream, Socket::Unix(session_end))
                        {
                            tls.serve(tcp, relay);
                        }
                    }
                    // No certificate on this listener: the client may go on in plaintext.
                    _ => stream.write_all(b"N").await?,
                }
            }
            StartupPacket::GssEnc if !asked_gss => {
                asked_gss = true;
                stream.write_all(b"N").await?;
            }
            StartupPacket::Ssl | StartupPacket::GssEnc => {
                return refuse(stream, "08P01", "duplicate encryption request").await;
            }
            StartupPacket::Cancel { pid, secret } => {
                proxy.cancel.cancel(pid, secret).await;
                return Ok(None);
            }
            StartupPacket::Unsupported(v) => {
                return refuse(
                    stream,
                    "0A000",
                    &format!(
                        "unsupported frontend protocol {}.{}: the proxy speaks 3.0",
                        v >> 16,
                        v & 0xffff
                    ),
                )
                .await;
            }
            StartupPacket::Startup { params } => break params,
        }
    };
    if !stream.is_tls() {
        if settings.require_tls {
            return refuse(
                stream,
                "28000",
                "this proxy requires TLS; connect with sslmode=require",
            )
            .await;
        }
        metrics.client_connections_no_tls.inc();
    }
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let Some(user_name) = get("user") else {
        return refuse(
            stream,
            "28000",
            "no PostgreSQL user name specified in startup packet",
        )
        .await;
    };
    if get("replication").is_some_and(|r| r != "false" && r != "0" && r != "off") {
        return refuse(
            stream,
            "0A000",
            "replication connections are not supported through the proxy",
        )
        .await;
    }
    let database = get("database")
        .filter(|d| !d.is_empty())
        .or_else(|| settings.default_database.clone())
        .unwrap_or_else(|| user_name.clone());

    let user = match authenticate(stream, &mut buf, proxy, &settings, &user_name).await? {
        Some(u) => u,
        None => {
            metrics.client_connections_setup_failed_auth.inc();
            return refuse(
                stream,
                "28P01",
                &format!("password authentication failed for user \"{user_name}\""),
            )
            .await;
        }
    };

    let key = PoolKey {
        database: database.clone(),
        user: user.name.clone(),
        options: 0,
    };
    let server = ServerTarget {
        addr: settings.server.clone(),
        tls: settings.server_tls.clone(),
        database,
        user: user.name.clone(),
        password: user.password.clone(),
        init_query: settings.init_query.clone(),
        connect_timeout: settings.connect_timeout,
        options: 0,
    };
    let requested = match params::requested(&params) {
        Ok(r) => r,
        Err(e) => return refuse(stream, e.sqlstate(), &e.to_string()).await,
    };
    // The server's parameters, learnt from one connection per pool (which also proves the
    // database exists and the secret's credentials work before the client sends a query).
    let pool = proxy.target.pool(&key, &server);
    // The pool's own copy, which the session keeps.
    let key = proxy.target.key(pool);
    let cached = proxy.pool_params(&key);
    let mut borrowed = None;
    let server_params = match cached {
        Some(p) => p,
        None => {
            let mut g = match borrow_for_login(stream, proxy, pool, &user.name, &key).await {
                Ok(g) => g,
                Err(e) => return Err(e),
            };
            let p = g.conn().params.clone();
            proxy.remember_server_params(&key, p.clone());
            borrowed = Some(g);
            p
        }
    };
    let wanted = match settle_parameters(
        stream,
        proxy,
        pool,
        &user.name,
        &key,
        &server_params,
        requested,
        borrowed,
    )
    .await
    {
        Ok(w) => w,
        Err(e) => return Err(e),
    };

    let mut out = BytesMut::with_capacity(512);
    codec::auth_request(&mut out, 0, &[]);
    for (k, v) in &server_params {
        // What the client's session will show: its own value, normalized by the server.
        let value = wanted
            .iter()
            .find(|(wk, _)| wk.as_bytes() == k.as_slice())
            .map_or(v.as_slice(), |(_, v)| v.as_bytes());
        codec::parameter_status(&mut out, k, value);
    }
    stream.write_all(&out).await?;
    metrics.client_connections_setup_succeeded.inc();
    Ok(Some(Admitted {
        buf,
        user,
        key,
        pool,
        wanted,
        settings,
    }))
}

/// A server connection for the login's own use (learning the server's parameters, checking the
/// client's); its failure is the client's login error.
async fn borrow_for_login(
    stream: &mut Socket,
    proxy: &Arc<PgProxy>,
    pool: PoolId,
    user: &str,
    key: &PoolKey,
) -> Result<Guard, HandshakeError> {
    match proxy.target.borrow(pool).await {
        Ok(g) => Ok(g),
        Err(crate::pool::BorrowError::Connect(e)) => {
            tracing::warn!(user, database = %key.database, "cannot open a server connection: {e}");
            let text = match &e {
                super::backend::BackendError::Refused { message, .. } => message.clone(),
                _ => "the database is not reachable".to_owned(),
            };
            refuse(stream, e.sqlstate(), &text).await
        }
        Err(e) => refuse(stream, "53300", &e.to_string()).await,
    }
}

/// The client's startup parameters as its session will have them: the names as the server
/// spells them, every [`params::ALWAYS`] one present (the server's default if the client gave
/// none), and values as the server normalizes them (`utf8` is `UTF8`). A value the proxy has
/// not seen the server accept is tried on a connection first: one the server refuses fails the
/// login with the server's error (22023 for a bad TimeZone, 42704 for an unknown name), as a
/// direct login would.
#[allow(clippy::too_many_arguments)]
async fn settle_parameters(
    stream: &mut Socket,
    proxy: &Arc<PgProxy>,
    pool: PoolId,
    user: &str,
    key: &PoolKey,
    server_params: &[(Vec<u8>, Vec<u8>)],
    requested: Vec<(String, String)>,
    borrowed: Option<Guard>,
) -> Result<Vec<(String, String)>, HandshakeError> {
    let spelled = |k: &str| {
        server_params
            .iter()
            .find(|(pk, _)| pk.eq_ignore_ascii_case(k.as_bytes()))
            .map(|(pk, v)| (String::from_utf8_lossy(pk).into_owned(), v))
    };
    let mut wanted: Vec<(String, String)> = requested
        .into_iter()
        .map(|(k, v)| match spelled(&k) {
            Some((name, _)) => (name, v),
            None => (k.to_ascii_lowercase(), v),
        })
        .collect();
    for k in params::ALWAYS {
        if !wanted.iter().any(|(w, _)| w.eq_ignore_ascii_case(k))
            && let Some((name, v)) = spelled(k)
        {
            wanted.push((name, String::from_utf8_lossy(v).into_owned()));
        }
    }
    let known = |w: &mut (String, String)| {
        if server_params
            .iter()
            .any(|(k, v)| k.as_slice() == w.0.as_bytes() && v.as_slice() == w.1.as_bytes())
        {
            return true;
        }
        match proxy.accepted_value(key, &w.0, &w.1) {
            Some(normal) => {
                w.1 = normal;
                true
            }
            None => false,
        }
    };
    let mut unknown = false;
    for w in &mut wanted {
        unknown |= !known(w);
    }
    if !unknown {
        return Ok(wanted);
    }
    let mut g = match borrowed {
        Some(g) => g,
        None => borrow_for_login(stream, proxy, pool, user, key).await?,
    };
    let conn = g.conn();
    if let Some(sql) = params::catch_up(&wanted, &conn.params, &conn.applied) {
        match conn.simple_query(&sql).await {
            Ok(_) => {
                conn.applied = params::applied_after(&wanted);
                // What it was in step with no longer holds (unreported parameters changed
                // without a ParameterStatus to say so).
                conn.in_step_with = None;
            }
            Err(super::backend::BackendError::Refused { code, message }) => {
                tracing::info!(user, "login refused: a startup parameter: {message}");
                return refuse(stream, &code, &message).await;
            }
            Err(e) => {
                g.broken = true;
                tracing::warn!(user, "cannot check a client's startup parameters: {e}");
                return refuse(stream, "08006", "cannot check the startup parameters").await;
            }
        }
    }
    for w in &mut wanted {
        let normal = conn
            .params
            .iter()
            .find(|(k, _)| k.as_slice() == w.0.as_bytes())
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
        let normal = normal.unwrap_or_else(|| w.1.clone());
        proxy.accept_value(key, &w.0, &w.1, &normal);
        w.1 = normal;
    }
    Ok(wanted)
}

/// Returns the user on success, `None` on any authentication failure.
async fn authenticate(
    stream: &mut Socket,
    buf: &mut BytesMut,
    proxy: &Arc<PgProxy>,
    settings: &Settings,
    name: &str,
) -> Result<Option<Arc<User>>, HandshakeError> {
    let user = settings.users.get(name).cloned();
    let iam = user.as_ref().map_or(IamAuth::Disabled, |u| u.iam);
    if iam != IamAuth::Disabled {
        // IAM tokens arrive as cleartext passwords.
        let mut out = BytesMut::new();
        codec::auth_request(&mut out, 3, &[]);
        stream.write_all(&out).await?;
        let body = read_password_message(stream, buf).await?;
        let given = Body::new(&body).cstr("password").unwrap_or_default();
        let given = String::from_utf8_lossy(given);
        let Some(user) = user else { return Ok(None) };
        let by_token = proxy.iam.as_ref().is_some_and(|v| v.verify(name, &given));
        let by_password =
            iam == IamAuth::Optional && constant_eq(given.as_bytes(), user.password.as_bytes());
        if !(by_token || by_password) {
            tracing::info!(
                user = name,
                iam_verifier = proxy.iam.is_some(),
                "IAM login refused"
            );
        }
        return Ok((by_token || by_password).then_some(user));
    }
    match settings.client_auth {
        ClientAuth::Md5 => {
            let salt: [u8; 4] = rand::random();
            let mut out = BytesMut::new();
            codec::auth_request(&mut out, 5, &salt);
            stream.write_all(&out).await?;
            let body = read_password_message(stream, buf).await?;
            let given = Body::new(&body).cstr("password").unwrap_or_default();
            let Some(user) = user else { return Ok(None) };
            let expected = scram::md5_response(&user.name, &user.password, salt);
            Ok(constant_eq(given, expected.as_bytes()).then_some(user))
        }
        ClientAuth::ScramSha256 => {
            let mut out = BytesMut::new();
            let mut mechanisms = BytesMut::new();
            codec::put_cstr(&mut mechanisms, scram::MECHANISM.as_bytes());
            mechanisms.put_u8(0);
            codec::auth_request(&mut out, 10, &mechanisms);
            stream.write_all(&out).await?;
            // An unknown user goes through the same exchange with a verifier nobody can match.
            let dummy;
            let verifier = match &user {
                Some(u) => &u.verifier,
                None => {
                    dummy = Verifier::with_salt(
                        &format!("{:x}", rand::random::<u128>()),
                        vec![0; 16],
                        1,
                    );
                    &dummy
                }
            };
            let body = read_password_message(stream, buf).await?;
            let mut b = Body::new(&body);
            let mechanism = b.cstr("SASLInitialResponse").unwrap_or_default();
            let len = b.i32("SASLInitialResponse").unwrap_or(-1);
            let data = b.remaining();
            if mechanism != scram::MECHANISM.as_bytes() || len < 0 || len as usize != data.len() {
                return refuse(stream, "08P01", "malformed SASL initial response").await;
            }
            let Ok((exchange, server_first)) = Exchange::start(data, verifier) else {
                return refuse(stream, "08P01", "malformed SCRAM message").await;
            };
            let mut out = BytesMut::new();
            codec::auth_request(&mut out, 11, server_first.as_bytes());
            stream.write_all(&out).await?;
            let body = read_password_message(stream, buf).await?;
            match (exchange.finish(&body, verifier), user) {
                (Ok(server_final), Some(user)) => {
                    let mut out = BytesMut::new();
                    codec::auth_request(&mut out, 12, server_final.as_bytes());
                    stream.write_all(&out).await?;
                    Ok(Some(user))
                }
                (Err(e), _) => {
                    tracing::debug!(user = name, "SCRAM failed: {e}");
                    Ok(None)
                }
                (Ok(_), None) => Ok(None),
            }
        }
    }
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
