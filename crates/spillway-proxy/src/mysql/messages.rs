//! The protocol's messages as types: the server's greeting (HandshakeV10), the client's
//! answer (HandshakeResponse41, or the SSLRequest that precedes it), auth switches, and the
//! OK, ERR and EOF packets, with what a server's session tracker reports inside an OK.

use bytes::{BufMut, BytesMut};

use super::constants::{EOF, ERR, OK, cap, status, track};
use super::wire::{Malformed, Reader, put_cstr, put_lenenc, put_lenenc_bytes};

/// The server's first packet.
#[derive(Clone, Debug)]
pub struct Greeting {
    pub version: String,
    pub connection_id: u32,
    /// The 20 bytes of challenge that password plugins mix into their answer.
    pub scramble: Vec<u8>,
    pub capabilities: u32,
    pub collation: u8,
    pub status: u16,
    pub plugin: String,
}

impl Greeting {
    pub fn encode(&self) -> BytesMut {
        let mut out = BytesMut::with_capacity(128);
        out.put_u8(10);
        put_cstr(&mut out, self.version.as_bytes());
        out.put_u32_le(self.connection_id);
        out.put_slice(&self.scramble[..8]);
        out.put_u8(0);
        out.put_u16_le(self.capabilities as u16);
        out.put_u8(self.collation);
        out.put_u16_le(self.status);
        out.put_u16_le((self.capabilities >> 16) as u16);
        out.put_u8(self.scramble.len() as u8 + 1);
        out.put_slice(&[0; 10]);
        put_cstr(&mut out, &self.scramble[8..]);
        put_cstr(&mut out, self.plugin.as_bytes());
        out
    }

    pub fn parse(b: &[u8]) -> Result<Self, Malformed> {
        let mut r = Reader::new(b);
        if r.u8("protocol version")? != 10 {
            return Err(Malformed("protocol version"));
        }
        let version = String::from_utf8_lossy(r.cstr("server version")?).into_owned();
        let connection_id = r.u32("connection id")?;
        let mut scramble = r.take(8, "scramble")?.to_vec();
        r.u8("filler")?;
        let mut capabilities = u32::from(r.u16("capabilities")?);
        let collation = r.u8("collation")?;
        let status = r.u16("status")?;
        capabilities |= u32::from(r.u16("capabilities")?) << 16;
        let data_len = usize::from(r.u8("auth data length")?);
        r.take(10, "reserved")?;
        if capabilities & cap::SECURE_CONNECTION != 0 {
            let n = data_len.saturating_sub(8).max(13);
            let part = r.take(n.min(r.remaining().len()), "scramble")?;
            // The second part is NUL-terminated within its length.
            let part = part.strip_suffix(&[0]).unwrap_or(part);
            scramble.extend_from_slice(part);
        }
        let plugin = if capabilities & cap::PLUGIN_AUTH != 0 {
            String::from_utf8_lossy(r.cstr_or_rest()).into_owned()
        } else {
            String::new()
        };
        Ok(Self {
            version,
            connection_id,
            scramble,
            capabilities,
            collation,
            status,
            plugin,
        })
    }
}

/// The client's answer to the greeting.
#[derive(Clone, Debug, Default)]
pub struct HandshakeResponse {
    pub capabilities: u32,
    pub max_packet: u32,
    pub collation: u8,
    pub user: Vec<u8>,
    pub auth: Vec<u8>,
    pub database: Option<Vec<u8>>,
    pub plugin: Option<Vec<u8>>,
    /// Raw connection attributes (kept to pass on to nobody: the proxy's own go to servers).
    pub attributes: Vec<u8>,
}

/// An SSLRequest is the first 32 bytes of a HandshakeResponse41 with CLIENT_SSL set.
pub fn is_ssl_request(b: &[u8]) -> bool {
    b.len() == 32 && u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & cap::SSL != 0
}

impl HandshakeResponse {
    pub fn parse(b: &[u8]) -> Result<Self, Malformed> {
        let mut r = Reader::new(b);
        let capabilities = r.u32("capabilities")?;
        if capabilities & cap::PROTOCOL_41 == 0 {
            return Err(Malformed(
                "protocol 4.1 capability (older clients are not supported)",
            ));
        }
        let max_packet = r.u32("max packet size")?;
        let collation = r.u8("collation")?;
        r.take(23, "filler")?;
        let user = r.cstr("user name")?.to_vec();
        let auth = if capabilities & cap::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
            r.lenenc_bytes("auth response")?.to_vec()
        } else if capabilities & cap::SECURE_CONNECTION != 0 {
            let n = usize::from(r.u8("auth response length")?);
            r.take(n, "auth response")?.to_vec()
        } else {
            r.cstr("auth response")?.to_vec()
        };
        let database = if capabilities & cap::CONNECT_WITH_DB != 0 && !r.is_empty() {
            Some(r.cstr_or_rest().to_vec())
        } else {
            None
        };
        let plugin = if capabilities & cap::PLUGIN_AUTH != 0 && !r.is_empty() {
            Some(r.cstr_or_rest().to_vec())
        } else {
            None
        };
        let attributes = if capabilities & cap::CONNECT_ATTRS != 0 && !r.is_empty() {
            r.lenenc_bytes("connection attributes")?.to_vec()
        } else {
            Vec::new()
        };
        Ok(Self {
            capabilities,
            max_packet,
            collation,
            user,
            auth,
            database,
            plugin,
            attributes,
        })
    }

    pub fn encode(&self) -> BytesMut {
        let mut out = BytesMut::with_capacity(128);
        out.put_u32_le(self.capabilities);
        out.put_u32_le(self.max_packet);
        out.put_u8(self.collation);
        out.put_slice(&[0; 23]);
        put_cstr(&mut out, &self.user);
        put_lenenc_bytes(&mut out, &self.auth);
        if let Some(db) = &self.database {
            put_cstr(&mut out, db);
        }
        if let Some(p) = &self.plugin {
            put_cstr(&mut out, p);
        }
        if self.capabilities & cap::CONNECT_ATTRS != 0 {
            put_lenenc_bytes(&mut out, &self.attributes);
        }
        out
    }

    /// The first 32 bytes only: the SSLRequest.
    pub fn encode_ssl_request(&self) -> BytesMut {
        let mut out = BytesMut::with_capacity(32);
        out.put_u32_le(self.capabilities | cap::SSL);
        out.put_u32_le(self.max_packet);
        out.put_u8(self.collation);
        out.put_slice(&[0; 23]);
        out
    }
}

/// `0xfe plugin\0 data`: the server asks the client to answer with another plugin.
pub fn auth_switch(plugin: &str, data: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(plugin.len() + data.len() + 2);
    out.put_u8(0xfe);
    put_cstr(&mut out, plugin.as_bytes());
    out.put_slice(data);
    out
}

/// What a server's session tracker reported in one OK packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// System variables set, with their new values as the server prints them.
    pub variables: Vec<(String, String)>,
    pub schema: Option<String>,
    /// The tracker's "state changed" mark: something changed, maybe beyond the above.
    pub state_changed: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.variables.is_empty() && self.schema.is_none() && !self.state_changed
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OkPacket {
    pub affected_rows: u64,
    pub last_insert_id: u64,
    pub status: u16,
    pub warnings: u16,
    pub info: Vec<u8>,
    /// The raw session state block (only with SESSION_TRACK and SESSION_STATE_CHANGED).
    pub session_state: Vec<u8>,
}

impl OkPacket {
    /// Parses an OK (0x00, or 0xfe ending a result set under DEPRECATE_EOF) sent to a peer
    /// with capabilities `caps`.
    pub fn parse(b: &[u8], caps: u32) -> Result<Self, Malformed> {
        let mut r = Reader::new(b);
        let header = r.u8("OK header")?;
        if header != OK && header != EOF {
            return Err(Malformed("OK header"));
        }
        let affected_rows = r.lenenc("affected rows")?;
        let last_insert_id = r.lenenc("last insert id")?;
        let status = r.u16("status")?;
        let warnings = r.u16("warnings")?;
        let mut ok = Self {
            affected_rows,
            last_insert_id,
            status,
            warnings,
            ..Default::default()
        };
        if caps & cap::SESSION_TRACK != 0 {
            if !r.is_empty() {
                ok.info = r.lenenc_bytes("info")?.to_vec();
            }
            if status & status::SESSION_STATE_CHANGED != 0 && !r.is_empty() {
                ok.session_state = r.lenenc_bytes("session state")?.to_vec();
            }
        } else {
            ok.info = r.remaining().to_vec();
        }
        Ok(ok)
    }

    /// Encodes for a peer with capabilities `caps`, with `header` 0x00 (OK) or 0xfe (a result
    /// set's end under DEPRECATE_EOF).
    pub fn encode(&self, caps: u32, header: u8) -> BytesMut {
        let mut out = BytesMut::with_capacity(16 + self.info.len() + self.session_state.len());
        out.put_u8(header);
        put_lenenc(&mut out, self.affected_rows);
        put_lenenc(&mut out, self.last_insert_id);
        if caps & cap::SESSION_TRACK != 0 {
            out.put_u16_le(self.status);
            out.put_u16_le(self.warnings);
            if !self.info.is_empty() || self.status & status::SESSION_STATE_CHANGED != 0 {
                put_lenenc_bytes(&mut out, &self.info);
            }
            if self.status & status::SESSION_STATE_CHANGED != 0 {
                put_lenenc_bytes(&mut out, &self.session_state);
            }
        } else {
            out.put_u16_le(self.status & !status::SESSION_STATE_CHANGED);
            out.put_u16_le(self.warnings);
            out.put_slice(&self.info);
        }
        out
    }

    /// What the session tracker reported (nothing without a session state block).
    pub fn changes(&self) -> Result<Changes, Malformed> {
        let mut changes = Changes::default();
        let mut r = Reader::new(&self.session_state);
        while !r.is_empty() {
            let kind = r.u8("tracker type")?;
            let data = r.lenenc_bytes("tracker data")?;
            let mut d = Reader::new(data);
            match kind {
                track::SYSTEM_VARIABLES => {
                    let name = d.lenenc_bytes("variable name")?;
                    let value = d.lenenc_bytes("variable value")?;
                    changes.variables.push((
                        String::from_utf8_lossy(name).to_ascii_lowercase(),
                        String::from_utf8_lossy(value).into_owned(),
                    ));
                }
                track::SCHEMA => {
                    let name = d.lenenc_bytes("schema")?;
                    changes.schema = Some(String::from_utf8_lossy(name).into_owned());
                }
                track::STATE_CHANGE => changes.state_changed = true,
                // GTIDs and transaction characteristics: nothing the proxy restores.
                _ => {}
            }
        }
        Ok(changes)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrPacket {
    pub code: u16,
    pub state: [u8; 5],
    pub message: String,
}

impl ErrPacket {
    pub fn new((code, state): (u16, &str), message: impl Into<String>) -> Self {
        let mut s = *b"HY000";
        if state.len() == 5 {
            s.copy_from_slice(state.as_bytes());
        }
        Self {
            code,
            state: s,
            message: message.into(),
        }
    }

    pub fn encode(&self) -> BytesMut {
        let mut out = BytesMut::with_capacity(9 + self.message.len());
        out.put_u8(ERR);
        out.put_u16_le(self.code);
        out.put_u8(b'#');
        out.put_slice(&self.state);
        out.put_slice(self.message.as_bytes());
        out
    }

    pub fn parse(b: &[u8]) -> Result<Self, Malformed> {
        let mut r = Reader::new(b);
        if r.u8("ERR header")? != ERR {
            return Err(Malformed("ERR header"));
        }
        let code = r.u16("error code")?;
        let mut state = *b"HY000";
        if r.remaining().first() == Some(&b'#') {
            r.u8("#")?;
            state.copy_from_slice(r.take(5, "SQLSTATE")?);
        }
        Ok(Self {
            code,
            state,
            message: String::from_utf8_lossy(r.remaining()).into_owned(),
        })
    }
}

/// An EOF packet (for clients without DEPRECATE_EOF).
pub fn eof(warnings: u16, status: u16) -> [u8; 5] {
    let w = warnings.to_le_bytes();
    let s = status.to_le_bytes();
    [EOF, w[0], w[1], s[0], s[1]]
}

/// Whether a packet that starts with 0xfe and has `len` bytes is a result set's terminator
/// rather than a row whose first value is 16 MiB or longer.
pub fn is_terminator(first: u8, len: usize, deprecate_eof: bool) -> bool {
    first == EOF
        && if deprecate_eof {
            len < super::constants::MAX_PART
        } else {
            len < 9
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_round_trips() {
        let g = Greeting {
            version: "10.11.6-MariaDB".into(),
            connection_id: 7,
            scramble: (1..=20).collect(),
            capabilities: cap::OFFERED,
            collation: 45,
            status: status::AUTOCOMMIT,
            plugin: "mysql_native_password".into(),
        };
        let p = Greeting::parse(&g.encode()).map_err(|e| e.to_string());
        let p = p.as_ref().ok();
        assert_eq!(p.map(|p| &p.scramble), Some(&g.scramble));
        assert_eq!(p.map(|p| p.plugin.as_str()), Some("mysql_native_password"));
        assert_eq!(p.map(|p| p.capabilities), Some(cap::OFFERED));
    }

    #[test]
    fn ok_with_session_state() {
        let mut state = BytesMut::new();
        let mut var = BytesMut::new();
        put_lenenc_bytes(&mut var, b"time_zone");
        put_lenenc_bytes(&mut var, b"+02:00");
        state.put_u8(track::SYSTEM_VARIABLES);
        put_lenenc_bytes(&mut state, &var);
        let mut schema = BytesMut::new();
        put_lenenc_bytes(&mut schema, b"db2");
        state.put_u8(track::SCHEMA);
        put_lenenc_bytes(&mut state, &schema);
        let ok = OkPacket {
            status: status::AUTOCOMMIT | status::SESSION_STATE_CHANGED,
            session_state: state.to_vec(),
            ..Default::default()
        };
        let wire = ok.encode(cap::SESSION_TRACK, OK);
        let back = OkPacket::parse(&wire, cap::SESSION_TRACK).ok();
        let changes = back.as_ref().and_then(|b| b.changes().ok());
        assert_eq!(
            changes,
            Some(Changes {
                variables: vec![("time_zone".into(), "+02:00".into())],
                schema: Some("db2".into()),
                state_changed: false,
            })
        );
        // For a client without session tracking, the block and its flag are gone.
        let plain = ok.encode(0, OK);
        let back = OkPacket::parse(&plain, 0).ok();
        assert_eq!(back.map(|b| b.status), Some(status::AUTOCOMMIT));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for b in [&[][..], &[0xff], &[0x00, 0xfe], &[10, b'x'], &[0xff, 1]] {
            let _ = Greeting::parse(b);
            let _ = HandshakeResponse::parse(b);
            let _ = OkPacket::parse(b, cap::SESSION_TRACK);
            let _ = ErrPacket::parse(b);
        }
    }
}
