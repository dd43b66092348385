//! Reading and writing the protocol's basic types: fixed-width little-endian integers,
//! length-encoded integers and strings, NUL-terminated strings. A [`Reader`] never panics: a
//! short or malformed field is an error.

use bytes::{BufMut, BytesMut};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed packet: {0} is cut short or invalid")]
pub struct Malformed(pub &'static str);

pub struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Self { b }
    }

    pub fn remaining(&self) -> &'a [u8] {
        self.b
    }

    pub fn is_empty(&self) -> bool {
        self.b.is_empty()
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        if self.b.len() < n {
            return Err(Malformed(what));
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Ok(head)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u16(&mut self, what: &'static str) -> Result<u16, Malformed> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, Malformed> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A length-encoded integer; `None` for the NULL marker (0xfb) where a value may be NULL.
    pub fn lenenc(&mut self, what: &'static str) -> Result<u64, Malformed> {
        let first = self.u8(what)?;
        let width = match first {
            0..=0xfa => return Ok(u64::from(first)),
            0xfc => 2,
            0xfd => 3,
            0xfe => 8,
            _ => return Err(Malformed(what)),
        };
        let b = self.take(width, what)?;
        let mut v = [0u8; 8];
        v[..width].copy_from_slice(b);
        Ok(u64::from_le_bytes(v))
    }

    pub fn lenenc_bytes(&mut self, what: &'static str) -> Result<&'a [u8], Malformed> {
        let n = self.lenenc(what)?;
        let n = usize::try_from(n).map_err(|_| Malformed(what))?;
        self.take(n, what)
    }

    /// Bytes up to a NUL (consumed, not returned); without a NUL, an error.
    pub fn cstr(&mut self, what: &'static str) -> Result<&'a [u8], Malformed> {
        let end = memchr::memchr(0, self.b).ok_or(Malformed(what))?;
        let s = &self.b[..end];
        self.b = &self.b[end + 1..];
        Ok(s)
    }

    /// Bytes up to a NUL or the end (a last string some clients send without its NUL).
    pub fn cstr_or_rest(&mut self) -> &'a [u8] {
        match memchr::memchr(0, self.b) {
            Some(end) => {
                let s = &self.b[..end];
                self.b = &self.b[end + 1..];
                s
            }
            None => std::mem::take(&mut self.b),
        }
    }
}

pub fn put_lenenc(out: &mut BytesMut, v: u64) {
    match v {
        0..=0xfa => out.put_u8(v as u8),
        0xfb..=0xffff => {
            out.put_u8(0xfc);
            out.put_u16_le(v as u16);
        }
        0x1_0000..=0xff_ffff => {
            out.put_u8(0xfd);
            out.put_slice(&(v as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.put_u8(0xfe);
            out.put_u64_le(v);
        }
    }
}

pub fn put_lenenc_bytes(out: &mut BytesMut, b: &[u8]) {
    put_lenenc(out, b.len() as u64);
    out.put_slice(b);
}

pub fn put_cstr(out: &mut BytesMut, b: &[u8]) {
    out.put_slice(b);
    out.put_u8(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_round_trips() {
        for v in [
            0u64,
            250,
            251,
            0xffff,
            0x1_0000,
            0xff_ffff,
            0x100_0000,
            u64::MAX,
        ] {
            let mut out = BytesMut::new();
            put_lenenc(&mut out, v);
            assert_eq!(Reader::new(&out).lenenc("v"), Ok(v));
        }
        assert!(Reader::new(&[0xfc, 1]).lenenc("v").is_err());
        assert!(Reader::new(&[0xff]).lenenc("v").is_err());
        assert!(Reader::new(b"abc").cstr("s").is_err());
    }
}
