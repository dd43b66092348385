//! Protocol-level named prepared statements under transaction pooling, without pinning.
//!
//! A client's statement `s1` may have been prepared on a server connection the client no longer
//! holds. The proxy therefore names statements on servers by content: `spillway_<hash>` of the
//! query text and parameter types, so identical statements from many clients share one server
//! statement. It remembers, per client, which content each client name stands for, and per server
//! connection, which contents it holds. Before a Bind or Describe that needs a statement the
//! borrowed server lacks, the proxy sends `Close` + `Parse` of it first and drops their replies.
//! Close-then-Parse is always safe: closing a statement that does not exist is not an error.
//!
//! A client's Close of `s1` only forgets the mapping; it is passed on with the client's own name,
//! which never exists on the server, so the server answers CloseComplete in order.

use std::collections::HashMap;

use bytes::BytesMut;

use super::messages::Parse;

/// Server-side statement names start with this; clients' names never reach the server otherwise.
pub const PREFIX: &str = "spillway_";

#[derive(Clone, Debug)]
pub struct Statement {
    pub hash: u64,
    /// The Parse message to send to a server that lacks the statement (already renamed).
    pub parse: BytesMut,
}

/// A client's named statements.
#[derive(Default, Debug)]
pub struct ClientStatements {
    by_name: HashMap<Vec<u8>, Statement>,
}

/// FNV-1a over the query and the parameter types: stable, fast, and the same for every client.
pub fn content_hash(p: &Parse<'_>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in p
        .query
        .iter()
        .chain([0u8].iter())
        .chain(p.param_types.iter())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

pub fn server_name(hash: u64) -> Vec<u8> {
    format!("{PREFIX}{hash:016x}").into_bytes()
}

impl ClientStatements {
    /// Records a client's Parse of a named statement; returns the renamed Parse to send.
    pub fn parse(&mut self, p: &Parse<'_>) -> Statement {
        let hash = content_hash(p);
        let mut parse = BytesMut::new();
        p.encode(&mut parse, &server_name(hash));
        let s = Statement { hash, parse };
        self.by_name.insert(p.name.to_vec(), s.clone());
        s
    }

    pub fn get(&self, name: &[u8]) -> Option<&Statement> {
        self.by_name.get(name)
    }

    /// Forgets every name (the client deallocated all its statements).
    pub fn clear(&mut self) {
        self.by_name.clear();
    }

    pub fn close(&mut self, name: &[u8]) {
        self.by_name.remove(name);
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_statements_share_a_server_name_and_types_matter() {
        let a = Parse {
            name: b"a",
            query: b"select $1",
            param_types: b"\x00\x01\x00\x00\x00\x17",
        };
        let b = Parse {
            name: b"b",
            query: b"select $1",
            param_types: b"\x00\x01\x00\x00\x00\x17",
        };
        let c = Parse {
            name: b"a",
            query: b"select $1",
            param_types: b"\x00\x01\x00\x00\x00\x19",
        };
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_ne!(content_hash(&a), content_hash(&c));
        let mut s = ClientStatements::default();
        let st = s.parse(&a);
        assert!(st.parse.windows(9).any(|w| w == PREFIX.as_bytes()));
        assert_eq!(s.get(b"a").map(|x| x.hash), Some(content_hash(&a)));
        s.close(b"a");
        assert!(s.get(b"a").is_none());
    }
}
