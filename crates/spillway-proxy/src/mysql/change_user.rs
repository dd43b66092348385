//! COM_CHANGE_USER: a client logs in again as another user (or the same one) on its open
//! connection. The proxy re-authenticates it against its own users — always through an auth
//! switch with a fresh challenge, since the proof in the command was made from the greeting's —
//! and moves the client to the new user's pool with a clean session.

use bytes::BytesMut;

use super::constants::{OK, cap, error, status};
use super::handshake::{access_denied, authenticate, borrow_error};
use super::messages::{ErrPacket, HandshakeResponse, OkPacket};
use super::packet;
use super::scramble;
use super::session::{End, Session};
use super::wire::Reader;
use crate::pool::PoolKey;

/// The command's fields the proxy uses.
struct ChangeUser {
    user: Vec<u8>,
    database: Option<Vec<u8>>,
    collation: Option<u8>,
}

fn parse(payload: &[u8], caps: u32) -> Option<ChangeUser> {
    let mut r = Reader::new(payload.get(1..)?);
    let user = r.cstr("user").ok()?.to_vec();
    if caps & cap::SECURE_CONNECTION != 0 {
        let n = usize::from(r.u8("auth length").ok()?);
        r.take(n, "auth").ok()?;
    } else {
        r.cstr("auth").ok()?;
    }
    let database = r.cstr_or_rest().to_vec();
    let collation = r.u16("collation").ok().map(|c| c as u8);
    Some(ChangeUser {
        user,
        database: (!database.is_empty()).then_some(database),
        collation,
    })
}

impl Session {
    pub(super) async fn change_user(&mut self, payload: &[u8]) -> Result<(), End> {
        let Some(ChangeUser {
            user,
            database,
            collation,
        }) = parse(payload, self.caps)
        else {
            self.send_err(
                1,
                ErrPacket::new(error::HANDSHAKE, "malformed COM_CHANGE_USER"),
            )
            .await;
            return Err(End::Error("malformed COM_CHANGE_USER".into()));
        };
        // The old session ends here: its connection goes back clean.
        if let Some(g) = self.guard.as_mut() {
            g.conn().dirty = true;
        }
        self.release().await;
        self.vars.clear();
        self.stmts.clear();
        self.last_insert_id = 0;

        let settings = self.proxy.settings();
        let response = HandshakeResponse {
            capabilities: self.caps,
            user: user.clone(),
            // No plugin the proxy checks: the exchange always goes through an auth switch.
            plugin: Some(b"-".to_vec()),
            ..Default::default()
        };
        let challenge = scramble::challenge();
        let mut seq = 1;
        let mut buf = BytesMut::new();
        let tls = self.stream.is_tls();
        let exchange = authenticate(
            &mut self.stream,
            &mut seq,
            &mut buf,
            &self.proxy,
            &settings,
            &response,
            &challenge,
            tls,
            self.peer,
        );
        // As bounded as a first login.
        let authenticated =
            match tokio::time::timeout(super::handshake::AUTH_TIMEOUT, exchange).await {
                Ok(r) => r.map_err(|e| End::Error(e.to_string()))?,
                Err(_) => return Err(End::Error("COM_CHANGE_USER timed out".into())),
            };
        let Some(new_user) = authenticated else {
            self.metrics.client_connections_setup_failed_auth.inc();
            self.send_err(seq, access_denied(&user, true)).await;
            return Err(End::Error("COM_CHANGE_USER refused".into()));
        };
        let schema = database.map(|d| String::from_utf8_lossy(&d).into_owned());
        if schema.as_ref().is_some_and(|d| d.chars().count() > 64) {
            self.send_err(
                seq,
                ErrPacket::new((1102, "42000"), "Incorrect database name"),
            )
            .await;
            return Err(End::Error(
                "COM_CHANGE_USER with an overlong database name".into(),
            ));
        }
        let mut options = self.key.options;
        if let Some(c) = collation.filter(|c| *c != 0) {
            options = (options & 0x00ff_ffff) | u32::from(c) << 24;
        }
        let key = PoolKey {
            database: schema.clone().unwrap_or_default(),
            user: new_user.name.clone(),
            options,
        };
        if let Err(e) = super::handshake::room_for_pool(&self.proxy, &key) {
            self.send_err(seq, e).await;
            return Err(End::Error(
                "COM_CHANGE_USER: no room for another pool".into(),
            ));
        }
        self.user = new_user;
        self.settings = settings;
        self.switch_pool(key);
        self.schema = schema.clone();
        self.login_schema = schema;
        self.thread = self.proxy.threads.register(self.thread.id, &self.user.name);
        if !self.proxy.is_verified(&self.key) {
            match self.proxy.target.borrow(self.pool).await {
                Ok(g) => {
                    self.proxy.set_verified(&self.key);
                    drop(g);
                }
                Err(e) => {
                    self.send_err(seq, borrow_error(&e)).await;
                    return Err(End::Error(format!(
                        "COM_CHANGE_USER cannot open a server connection: {e}"
                    )));
                }
            }
        }
        let ok = OkPacket {
            status: status::AUTOCOMMIT,
            ..Default::default()
        };
        packet::write(&mut self.stream, seq, &ok.encode(self.caps, OK))
            .await
            .map(|_| ())
            .map_err(|_| End::ClientGone)
    }
}
