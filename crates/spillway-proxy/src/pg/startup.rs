//! The first packet a client sends: a startup message, or a request for TLS, GSS encryption or
//! a cancel. It has no tag byte: `length (4) | code (4) | ...`.

use super::codec::{Body, MAX_PREAUTH_MESSAGE, Malformed};

pub const PROTOCOL_3_0: i32 = 196_608;
pub const SSL_REQUEST: i32 = 80_877_103;
pub const GSSENC_REQUEST: i32 = 80_877_104;
pub const CANCEL_REQUEST: i32 = 80_877_102;

#[derive(Debug, PartialEq, Eq)]
pub enum StartupPacket {
    Ssl,
    GssEnc,
    Cancel {
        pid: i32,
        secret: i32,
    },
    Startup {
        params: Vec<(String, String)>,
    },
    /// A protocol version this proxy does not speak (major version other than 3).
    Unsupported(i32),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StartupError {
    #[error("invalid startup packet length {0}")]
    Length(u32),
    #[error(transparent)]
    Malformed(#[from] Malformed),
    #[error("startup parameters are not valid UTF-8")]
    Utf8,
}

/// The total length of the startup packet at the start of `buf`, once its 4-byte length is in.
pub fn packet_len(buf: &[u8]) -> Result<Option<usize>, StartupError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if !(8..=MAX_PREAUTH_MESSAGE as u32).contains(&len) {
        return Err(StartupError::Length(len));
    }
    Ok(Some(len as usize))
}

/// Decodes a whole startup packet (length included).
pub fn decode(packet: &[u8]) -> Result<StartupPacket, StartupError> {
    let mut b = Body::new(packet.get(4..).ok_or(Malformed("startup"))?);
    let code = b.i32("startup")?;
    match code {
        SSL_REQUEST => Ok(StartupPacket::Ssl),
        GSSENC_REQUEST => Ok(StartupPacket::GssEnc),
        CANCEL_REQUEST => Ok(StartupPacket::Cancel {
            pid: b.i32("cancel")?,
            secret: b.i32("cancel")?,
        }),
        v if v >> 16 == 3 => {
            let mut params = Vec::new();
            loop {
                let key = b.cstr("startup")?;
                if key.is_empty() {
                    break;
                }
                let value = b.cstr("startup")?;
                let key = std::str::from_utf8(key).map_err(|_| StartupError::Utf8)?;
                let value = std::str::from_utf8(value).map_err(|_| StartupError::Utf8)?;
                params.push((key.to_owned(), value.to_owned()));
            }
            Ok(StartupPacket::Startup { params })
        }
        v => Ok(StartupPacket::Unsupported(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(code: i32, rest: &[u8]) -> Vec<u8> {
        let mut v = ((8 + rest.len()) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(&code.to_be_bytes());
        v.extend_from_slice(rest);
        v
    }

    #[test]
    fn decodes_each_kind() {
        assert_eq!(decode(&packet(SSL_REQUEST, b"")), Ok(StartupPacket::Ssl));
        assert_eq!(
            decode(&packet(GSSENC_REQUEST, b"")),
            Ok(StartupPacket::GssEnc)
        );
        assert_eq!(
            decode(&packet(CANCEL_REQUEST, &[0, 0, 0, 7, 0, 0, 0, 9])),
            Ok(StartupPacket::Cancel { pid: 7, secret: 9 })
        );
        let p = decode(&packet(PROTOCOL_3_0, b"user\0app\0database\0main\0\0"));
        assert_eq!(
            p,
            Ok(StartupPacket::Startup {
                params: vec![
                    ("user".into(), "app".into()),
                    ("database".into(), "main".into())
                ]
            })
        );
        assert_eq!(
            decode(&packet(2 << 16, b"")),
            Ok(StartupPacket::Unsupported(2 << 16))
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(packet_len(&[0, 0, 0, 3]).is_err());
        assert!(packet_len(&[0x7f, 0, 0, 0]).is_err());
        assert!(decode(&packet(PROTOCOL_3_0, b"user\0app")).is_err());
        assert!(decode(&packet(PROTOCOL_3_0, b"user\0\xff\xfe\0\0")).is_err());
    }
}
