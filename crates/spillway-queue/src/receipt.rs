//! Receipt handles: opaque to clients, one per receive. A handle carries the queue, the
//! message's sequence and the receive's nonce, sealed with an HMAC under a key kept in the
//! store, so a handle spillway never issued is told apart from one whose message is gone.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const VERSION: u8 = 1;
const BODY: usize = 1 + 8 + 8 + 8;
const TAG: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub queue: u64,
    pub seq: u64,
    pub nonce: u64,
}

#[derive(Clone)]
pub struct ReceiptKey([u8; 32]);

impl ReceiptKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        ReceiptKey(bytes)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(ReceiptKey)
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn tag(&self, body: &[u8]) -> [u8; TAG] {
        // HMAC accepts keys of any length, so new_from_slice cannot fail for 32 bytes.
        let mut out = [0u8; TAG];
        if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) {
            mac.update(body);
            out.copy_from_slice(&mac.finalize().into_bytes()[..TAG]);
        }
        out
    }

    pub fn seal(&self, receipt: Receipt) -> String {
        let mut raw = Vec::with_capacity(BODY + TAG);
        raw.push(VERSION);
        raw.extend_from_slice(&receipt.queue.to_be_bytes());
        raw.extend_from_slice(&receipt.seq.to_be_bytes());
        raw.extend_from_slice(&receipt.nonce.to_be_bytes());
        let tag = self.tag(&raw);
        raw.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// None for anything this key did not seal.
    pub fn open(&self, handle: &str) -> Option<Receipt> {
        let raw = URL_SAFE_NO_PAD.decode(handle).ok()?;
        if raw.len() != BODY + TAG || raw[0] != VERSION {
            return None;
        }
        let (body, tag) = raw.split_at(BODY);
        let expected = self.tag(body);
        // Constant-time compare: a handle is a capability to delete.
        let diff = expected
            .iter()
            .zip(tag)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return None;
        }
        let word = |i: usize| -> Option<u64> {
            Some(u64::from_be_bytes(body.get(i..i + 8)?.try_into().ok()?))
        };
        Some(Receipt {
            queue: word(1)?,
            seq: word(9)?,
            nonce: word(17)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_forgery() {
        let key = ReceiptKey::new([7; 32]);
        let receipt = Receipt {
            queue: 1,
            seq: 2,
            nonce: 3,
        };
        let handle = key.seal(receipt);
        assert_eq!(key.open(&handle), Some(receipt));
        assert_eq!(ReceiptKey::new([8; 32]).open(&handle), None);
        let mut forged = handle.clone().into_bytes();
        let last = forged.len() - 5;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(key.open(&String::from_utf8_lossy(&forged)), None);
        assert_eq!(key.open("not a handle"), None);
        assert_eq!(key.open(""), None);
    }
}
