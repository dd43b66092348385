//! The few client messages the proxy must understand (to classify SQL and to rename prepared
//! statements), decoded from a framed message's body. Everything else is forwarded as bytes.

use bytes::{BufMut, BytesMut};

use super::codec::{Body, Malformed, message, put_cstr};

/// `P`: Parse.
#[derive(Debug, PartialEq, Eq)]
pub struct Parse<'a> {
    pub name: &'a [u8],
    pub query: &'a [u8],
    /// The parameter-type section (count and OIDs), kept as bytes.
    pub param_types: &'a [u8],
}

impl<'a> Parse<'a> {
    pub fn decode(body: &'a [u8]) -> Result<Self, Malformed> {
        let mut b = Body::new(body);
        let name = b.cstr("Parse")?;
        let query = b.cstr("Parse")?;
        let param_types = b.remaining();
        let mut check = Body::new(param_types);
        let n = check.i16("Parse")?;
        check.take(
            usize::try_from(n).map_err(|_| Malformed("Parse"))? * 4,
            "Parse",
        )?;
        Ok(Self {
            name,
            query,
            param_types,
        })
    }

    pub fn encode(&self, out: &mut BytesMut, name: &[u8]) {
        message(out, b'P', |o| {
            put_cstr(o, name);
            put_cstr(o, self.query);
            o.put_slice(self.param_types);
        });
    }
}

/// `B`: Bind; only the names are decoded, the rest is kept as bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Bind<'a> {
    pub portal: &'a [u8],
    pub statement: &'a [u8],
    pub rest: &'a [u8],
}

impl<'a> Bind<'a> {
    pub fn decode(body: &'a [u8]) -> Result<Self, Malformed> {
        let mut b = Body::new(body);
        Ok(Self {
            portal: b.cstr("Bind")?,
            statement: b.cstr("Bind")?,
            rest: b.remaining(),
        })
    }

    pub fn encode(&self, out: &mut BytesMut, statement: &[u8]) {
        message(out, b'B', |o| {
            put_cstr(o, self.portal);
            put_cstr(o, statement);
            o.put_slice(self.rest);
        });
    }
}

/// `D` (Describe) and `C` (Close) share a shape: a kind (`S`tatement or `P`ortal) and a name.
#[derive(Debug, PartialEq, Eq)]
pub struct Target<'a> {
    pub kind: u8,
    pub name: &'a [u8],
}

impl<'a> Target<'a> {
    pub fn decode(body: &'a [u8], what: &'static str) -> Result<Self, Malformed> {
        let mut b = Body::new(body);
        let kind = b.u8(what)?;
        if kind != b'S' && kind != b'P' {
            return Err(Malformed(what));
        }
        Ok(Self {
            kind,
            name: b.cstr(what)?,
        })
    }

    pub fn encode(&self, out: &mut BytesMut, tag: u8, name: &[u8]) {
        message(out, tag, |o| {
            o.put_u8(self.kind);
            put_cstr(o, name);
        });
    }
}

/// `Q`: a simple query's text.
pub fn query_text(body: &[u8]) -> Result<&[u8], Malformed> {
    Body::new(body).cstr("Query")
}

/// The SQLSTATE (`C` field) of an ErrorResponse body.
pub fn error_code(body: &[u8]) -> Option<&[u8]> {
    let mut b = Body::new(body);
    loop {
        let field = b.u8("ErrorResponse").ok()?;
        if field == 0 {
            return None;
        }
        let value = b.cstr("ErrorResponse").ok()?;
        if field == b'C' {
            return Some(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_bind_round_trip_with_new_names() {
        let body = b"s1\0select $1\0\x00\x01\x00\x00\x00\x17";
        let p = Parse::decode(body).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((p.name, p.query), (&b"s1"[..], &b"select $1"[..]));
        let mut out = BytesMut::new();
        p.encode(&mut out, b"sw_1");
        assert_eq!(&out[5..], b"sw_1\0select $1\0\x00\x01\x00\x00\x00\x17");

        let body = b"\0s1\0\x00\x00\x00\x00\x00\x00";
        let b = Bind::decode(body).unwrap_or_else(|e| panic!("{e}"));
        let mut out = BytesMut::new();
        b.encode(&mut out, b"sw_1");
        assert_eq!(&out[5..], b"\0sw_1\0\x00\x00\x00\x00\x00\x00");
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        assert!(Parse::decode(b"s1\0select").is_err());
        assert!(Parse::decode(b"s1\0q\0\x00\x02\x00\x00").is_err());
        assert!(Parse::decode(b"s1\0q\0\xff\xff").is_err());
        assert!(Bind::decode(b"portal").is_err());
        assert!(Target::decode(b"X\0", "Close").is_err());
        assert_eq!(error_code(b"SERROR\0C42P01\0Mno\0\0"), Some(&b"42P01"[..]));
        assert_eq!(error_code(b"SERR"), None);
    }
}
