//! Framing: every message is one or more packets of a 3-byte length, a sequence number and up
//! to 16 MiB - 1 of payload; a payload of exactly that size means another part follows.
//! [`try_take`] joins the parts of one message (without copying in the common one-part case)
//! and refuses, before buffering it, a message longer than the caller's limit.

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::constants::MAX_PART;
use crate::socket::Socket;

pub const HEADER: usize = 4;

/// One whole message: the sequence numbers of its first and last parts, and its payload.
#[derive(Debug)]
pub struct Packet {
    pub first_seq: u8,
    pub seq: u8,
    pub payload: BytesMut,
}

/// Buffer space reserved ahead for a part that has not arrived, at most: a header alone does
/// not get its peer 16 MiB of the proxy's memory.
const RESERVE_AHEAD: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PacketError {
    #[error("the peer closed the connection")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("a packet of {len} bytes or more is above the limit of {limit}")]
    TooLarge { len: usize, limit: usize },
    #[error("the parts of a packet are out of order")]
    OutOfOrder,
}

/// The payload length and sequence number of the packet at the front of `buf`, if its header
/// has arrived.
pub fn header(buf: &[u8]) -> Option<(usize, u8)> {
    if buf.len() < HEADER {
        return None;
    }
    let len = usize::from(buf[0]) | usize::from(buf[1]) << 8 | usize::from(buf[2]) << 16;
    Some((len, buf[3]))
}

/// Splits one whole message off the front of `buf` if it has arrived.
pub fn try_take(buf: &mut BytesMut, limit: usize) -> Result<Option<Packet>, PacketError> {
    // Walk the parts' headers: the common case is one part, taken without a copy.
    let mut at = 0;
    let mut total = 0;
    let mut parts = 0;
    let mut first_seq = 0;
    let last_seq = loop {
        let Some((len, seq)) = header(&buf[at..]) else {
            return Ok(None);
        };
        if parts == 0 {
            first_seq = seq;
        } else if seq != first_seq.wrapping_add(parts as u8) {
            // Parts of one message are numbered one after another.
            return Err(PacketError::OutOfOrder);
        }
        total += len;
        parts += 1;
        if total > limit {
            return Err(PacketError::TooLarge { len: total, limit });
        }
        if buf.len() < at + HEADER + len {
            // Reserve what the rest of this part needs, so it arrives in few reads.
            buf.reserve((at + HEADER + len - buf.len()).min(RESERVE_AHEAD));
            return Ok(None);
        }
        at += HEADER + len;
        if len < MAX_PART {
            break seq;
        }
    };
    if parts == 1 {
        let mut payload = buf.split_to(at);
        payload.advance(HEADER);
        return Ok(Some(Packet {
            first_seq,
            seq: last_seq,
            payload,
        }));
    }
    let mut whole = buf.split_to(at);
    let mut payload = BytesMut::with_capacity(total);
    while let Some((len, _)) = header(&whole) {
        whole.advance(HEADER);
        payload.put_slice(&whole[..len]);
        whole.advance(len);
    }
    Ok(Some(Packet {
        first_seq,
        seq: last_seq,
        payload,
    }))
}

/// Reads one whole message of at most `limit` bytes.
pub async fn read(
    stream: &mut Socket,
    buf: &mut BytesMut,
    limit: usize,
) -> Result<Packet, PacketError> {
    loop {
        if let Some(p) = try_take(buf, limit)? {
            return Ok(p);
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(PacketError::Closed);
        }
    }
}

/// Appends `payload` as a message starting at sequence number `seq` (split into parts when
/// long); returns the sequence number after it.
pub fn put(out: &mut BytesMut, mut seq: u8, payload: &[u8]) -> u8 {
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_PART);
        out.reserve(HEADER + n);
        out.put_slice(&(n as u32).to_le_bytes()[..3]);
        out.put_u8(seq);
        out.put_slice(&rest[..n]);
        seq = seq.wrapping_add(1);
        rest = &rest[n..];
        // A payload that is a multiple of the part size ends with an empty part.
        if n < MAX_PART {
            return seq;
        }
    }
}

/// Writes `payload` as one message; returns the next sequence number.
pub async fn write(stream: &mut Socket, seq: u8, payload: &[u8]) -> std::io::Result<u8> {
    let mut out = BytesMut::with_capacity(payload.len() + HEADER);
    let next = put(&mut out, seq, payload);
    stream.write_all(&out).await?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_part_and_many_parts() {
        let mut buf = BytesMut::new();
        put(&mut buf, 3, b"hello");
        let p = try_take(&mut buf, 100).ok().flatten();
        assert!(matches!(p, Some(Packet { seq: 3, ref payload, .. }) if &payload[..] == b"hello"));
        assert!(buf.is_empty());

        let big = vec![7u8; MAX_PART * 2 + 5];
        let mut buf = BytesMut::new();
        assert_eq!(put(&mut buf, 0, &big), 3);
        let p = try_take(&mut buf, big.len()).ok().flatten();
        assert!(
            matches!(p, Some(Packet { first_seq: 0, seq: 2, ref payload }) if payload.len() == big.len())
        );

        let exact = vec![1u8; MAX_PART];
        let mut buf = BytesMut::new();
        assert_eq!(
            put(&mut buf, 0, &exact),
            2,
            "an exact multiple ends with an empty part"
        );
        let p = try_take(&mut buf, exact.len()).ok().flatten();
        assert!(matches!(p, Some(Packet { ref payload, .. }) if payload.len() == exact.len()));
    }

    #[test]
    fn too_large_is_refused_before_it_arrives() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0][..]);
        assert!(matches!(
            try_take(&mut buf, 1024),
            Err(PacketError::TooLarge { .. })
        ));
        let mut short = BytesMut::from(&[5, 0, 0, 0, b'a'][..]);
        assert!(matches!(try_take(&mut short, 1024), Ok(None)));
    }
}
