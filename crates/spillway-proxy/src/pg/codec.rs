//! Framing of the PostgreSQL v3 protocol: `tag (1) | length (4, counts itself) | body`.
//!
//! The proxy frames messages without decoding most of them: it needs each message's tag and
//! boundaries to follow transaction state and rewrite a few client messages, and forwards the
//! bytes of everything else untouched. Builders for the messages the proxy writes itself live
//! here too.

use bytes::{BufMut, BytesMut};

/// PostgreSQL's own ceiling for one message (PQ_LARGE_MESSAGE_LIMIT is 1 GB).
pub const MAX_MESSAGE: usize = 1 << 30;
/// Before authentication a client gets far less room (PostgreSQL allows 10,000 bytes for the
/// startup packet; a SASL message is a few hundred bytes).
pub const MAX_PREAUTH_MESSAGE: usize = 10_000;

/// PostgreSQL's PQ_SMALL_MESSAGE_LIMIT: what the server reads for Sync, Flush, Execute,
/// Describe, Close and Terminate.
pub const MAX_SMALL_MESSAGE: usize = 10_000;
/// The largest Query, Parse, Bind, FunctionCall, CopyDone or CopyFail the proxy takes from a
/// logged-in client. PostgreSQL allows 1 GB, but the proxy must hold such a message whole (to
/// read its text, rename its statement, keep it for re-preparing); at 1 GB a few clients could
/// make the proxy's one thread hold gigabytes. 64 MiB is far above any statement or parameter
/// set an application sends (Lambda's own payloads stop at 6 MB). COPY data is not limited
/// beyond PostgreSQL's 1 GB: it streams through without being held.
pub const MAX_CLIENT_MESSAGE: usize = 64 << 20;

/// The most a logged-in client may send in one message with `tag` (tag and length included).
pub fn client_message_limit(tag: u8) -> usize {
    match tag {
        b'S' | b'H' | b'E' | b'D' | b'C' | b'X' => MAX_SMALL_MESSAGE,
        b'd' => MAX_MESSAGE,
        _ => MAX_CLIENT_MESSAGE,
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("invalid message length {0}")]
    BadLength(u32),
    #[error("message of {0} bytes exceeds the limit of {1}")]
    TooLarge(usize, usize),
}

/// The tag and total size (tag and length included) of the message at the start of `buf`, or
/// `None` if the 5-byte header has not arrived yet.
#[inline]
pub fn peek(buf: &[u8], limit: usize) -> Result<Option<(u8, usize)>, FrameError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if len < 4 {
        return Err(FrameError::BadLength(len));
    }
    let total = len as usize + 1;
    if total > limit {
        return Err(FrameError::TooLarge(total, limit));
    }
    Ok(Some((buf[0], total)))
}

/// A cursor over a message body with bounds-checked reads (network input is never trusted).
pub struct Body<'a> {
    buf: &'a [u8],
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed {0} message")]
pub struct Malformed(pub &'static str);

impl<'a> Body<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    pub fn cstr(&mut self, what: &'static str) -> Result<&'a [u8], Malformed> {
        let end = self
            .buf
            .iter()
            .position(|b| *b == 0)
            .ok_or(Malformed(what))?;
        let (s, rest) = self.buf.split_at(end);
        self.buf = &rest[1..];
        Ok(s)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        let (&b, rest) = self.buf.split_first().ok_or(Malformed(what))?;
        self.buf = rest;
        Ok(b)
    }

    pub fn i16(&mut self, what: &'static str) -> Result<i16, Malformed> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub fn i32(&mut self, what: &'static str) -> Result<i32, Malformed> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        if self.buf.len() < n {
            return Err(Malformed(what));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
}

/// Writes `tag | len | body` where `body` is produced by `f`.
pub fn message(out: &mut BytesMut, tag: u8, f: impl FnOnce(&mut BytesMut)) {
    out.put_u8(tag);
    let at = out.len();
    out.put_i32(0);
    f(out);
    let len = (out.len() - at) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

pub fn put_cstr(out: &mut BytesMut, s: &[u8]) {
    out.put_slice(s);
    out.put_u8(0);
}

/// Severity and SQLSTATE of an error the proxy itself reports.
#[derive(Clone, Copy, Debug)]
pub enum Severity {
    Error,
    Fatal,
}

/// An ErrorResponse (`E`) with severity, SQLSTATE and message.
pub fn error_response(out: &mut BytesMut, severity: Severity, code: &str, text: &str) {
    let sev: &[u8] = match severity {
        Severity::Error => b"ERROR",
        Severity::Fatal => b"FATAL",
    };
    message(out, b'E', |o| {
        o.put_u8(b'S');
        put_cstr(o, sev);
        o.put_u8(b'V');
        put_cstr(o, sev);
        o.put_u8(b'C');
        put_cstr(o, code.as_bytes());
        o.put_u8(b'M');
        put_cstr(o, text.as_bytes());
        o.put_u8(0);
    });
}

pub fn auth_request(out: &mut BytesMut, code: i32, extra: &[u8]) {
    message(out, b'R', |o| {
        o.put_i32(code);
        o.put_slice(extra);
    });
}

pub fn parameter_status(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    message(out, b'S', |o| {
        put_cstr(o, name);
        put_cstr(o, value);
    });
}

pub fn backend_key_data(out: &mut BytesMut, pid: i32, secret: i32) {
    message(out, b'K', |o| {
        o.put_i32(pid);
        o.put_i32(secret);
    });
}

pub fn ready_for_query(out: &mut BytesMut, status: u8) {
    message(out, b'Z', |o| o.put_u8(status));
}

/// A whole message with every occurrence of `from` in its body replaced by `to`, its length
/// fixed (for error texts that name a server-side statement the client knows by another name).
pub fn replace_in_message(msg: &[u8], from: &[u8], to: &[u8], out: &mut BytesMut) {
    let (tag, mut body) = (msg[0], &msg[5.min(msg.len())..]);
    message(out, tag, |o| {
        while let Some(at) = body.windows(from.len()).position(|w| w == from) {
            o.put_slice(&body[..at]);
            o.put_slice(to);
            body = &body[at + from.len()..];
        }
        o.put_slice(body);
    });
}

/// Whether `bytes` (whole backend messages, the last perhaps cut short) hold an ErrorResponse of
/// severity FATAL or PANIC.
pub fn holds_fatal(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let end = (len + 1).min(rest.len());
        if rest[0] == b'E' && severity_is_fatal(&rest[5..end]) {
            return true;
        }
        if len < 4 {
            return false;
        }
        rest = &rest[end..];
    }
    false
}

/// An ErrorResponse body's fields: `S`/`V` severity among them.
fn severity_is_fatal(mut body: &[u8]) -> bool {
    while let Some((&field, after)) = body.split_first() {
        if field == 0 {
            return false;
        }
        let Some(nul) = after.iter().position(|b| *b == 0) else {
            return false;
        };
        let value = &after[..nul];
        if matches!(field, b'S' | b'V') && (value == b"FATAL" || value == b"PANIC") {
            return true;
        }
        body = &after[nul + 1..];
    }
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_fatal_is_found_among_whole_messages() {
        let mut fatal = BytesMut::new();
        error_response(
            &mut fatal,
            Severity::Fatal,
            "57P01",
            "terminating connection",
        );
        let mut error = BytesMut::new();
        error_response(&mut error, Severity::Error, "42601", "syntax error");
        let mut both = error.to_vec();
        both.extend_from_slice(&fatal);
        assert!(holds_fatal(&fatal));
        assert!(!holds_fatal(&error));
        assert!(holds_fatal(&both));
        assert!(!holds_fatal(&fatal[..3]));
    }

    use super::*;

    #[test]
    fn peek_reads_headers_and_rejects_bad_lengths() {
        assert_eq!(peek(b"Q\0\0", MAX_MESSAGE), Ok(None));
        assert_eq!(
            peek(b"Q\0\0\0\x09select", MAX_MESSAGE),
            Ok(Some((b'Q', 10)))
        );
        assert_eq!(
            peek(b"Q\0\0\0\x03", MAX_MESSAGE),
            Err(FrameError::BadLength(3))
        );
        assert_eq!(
            peek(b"Q\x7f\xff\xff\xff", MAX_MESSAGE),
            Err(FrameError::TooLarge(0x8000_0000, MAX_MESSAGE))
        );
    }

    #[test]
    fn built_messages_frame_back() {
        let mut out = BytesMut::new();
        error_response(
            &mut out,
            Severity::Fatal,
            "28P01",
            "password authentication failed",
        );
        ready_for_query(&mut out, b'I');
        let (tag, len) = peek(&out, MAX_MESSAGE).ok().flatten().unwrap_or_default();
        assert_eq!(tag, b'E');
        let mut b = Body::new(&out[5..len]);
        assert_eq!(b.u8("e"), Ok(b'S'));
        assert_eq!(b.cstr("e"), Ok(&b"FATAL"[..]));
        assert_eq!(&out[len..], b"Z\0\0\0\x05I");
    }

    #[test]
    fn body_reads_are_bounds_checked() {
        let mut b = Body::new(b"abc");
        assert!(b.cstr("x").is_err());
        let mut b = Body::new(b"\x00\x01");
        assert!(b.i32("x").is_err());
    }
}
