//! Receipt handles: opaque to clients, one per receive. A handle carries the queue, the
//! message's sequence and the receive's nonce, sealed with an HMAC under a key kept in the
//! store, so a handle spillway never issued is told apart from one whose message is gone.
//!
//! The JetStream engine's handles ([`AckReceipt`]) carry instead the queue, the time of the
//! receive and the delivery's ack subject (which names the stream sequence and the delivery
//! count), sealed under a key every node shares, so that any node can settle a delivery made
//! by another and no handle can be turned into an ack of a message it was not issued for.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const VERSION: u8 = 1;
const ACK_VERSION: u8 = 2;
/// Ack subjects are short (`$JS.ACK.<stream>.<consumer>.<7 numbers>`); anything longer is
/// not one.
const MAX_ACK_SUBJECT: usize = 512;
const BODY: usize = 1 + 8 + 8 + 8;
const TAG: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub queue: u64,
    pub seq: u64,
    pub nonce: u64,
}

/// A JetStream delivery: the queue, when it was received (epoch ms, for the 12-hour limit of
/// ChangeMessageVisibility) and the ack subject the server gave the delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckReceipt {
    pub queue: u64,
    pub received_at: u64,
    pub ack_subject: String,
}

/// Constant-time compare: a handle is a capability to delete.
fn same(expected: &[u8], tag: &[u8]) -> bool {
    expected.len() == tag.len()
        && expected
            .iter()
            .zip(tag)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
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

    pub fn seal_ack(&self, receipt: &AckReceipt) -> String {
        let mut raw = Vec::with_capacity(1 + 16 + receipt.ack_subject.len() + TAG);
        raw.push(ACK_VERSION);
        raw.extend_from_slice(&receipt.queue.to_be_bytes());
        raw.extend_from_slice(&receipt.received_at.to_be_bytes());
        raw.extend_from_slice(receipt.ack_subject.as_bytes());
        let tag = self.tag(&raw);
        raw.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// None for anything this key did not seal as an [`AckReceipt`].
    pub fn open_ack(&self, handle: &str) -> Option<AckReceipt> {
        if handle.len() > (1 + 16 + MAX_ACK_SUBJECT + TAG) * 4 / 3 + 4 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(handle).ok()?;
        if raw.len() < 1 + 16 + TAG || raw[0] != ACK_VERSION {
            return None;
        }
        let (body, tag) = raw.split_at(raw.len() - TAG);
        if !same(&self.tag(body), tag) {
            return None;
        }
        let word = |i: usize| -> Option<u64> {
            Some(u64::from_be_bytes(body.get(i..i + 8)?.try_into().ok()?))
        };
        Some(AckReceipt {
            queue: word(1)?,
            received_at: word(9)?,
            ack_subject: String::from_utf8(body.get(17..)?.to_vec()).ok()?,
        })
    }

    /// None for anything this key did not seal.
    pub fn open(&self, handle: &str) -> Option<Receipt> {
        let raw = URL_SAFE_NO_PAD.decode(handle).ok()?;
        if raw.len() != BODY + TAG || raw[0] != VERSION {
            return None;
        }
        let (body, tag) = raw.split_at(BODY);
        if !same(&self.tag(body), tag) {
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

    #[test]
    fn ack_receipts_seal_open_and_forgery() {
        let key = ReceiptKey::new([7; 32]);
        let receipt = AckReceipt {
            queue: 9,
            received_at: 1_700_000_000_000,
            ack_subject: "$JS.ACK.s.c.1.5.5.1796166894744500074.0".into(),
        };
        let handle = key.seal_ack(&receipt);
        assert_eq!(key.open_ack(&handle), Some(receipt.clone()));
        // Neither kind opens as the other, and another key opens neither.
        assert_eq!(key.open(&handle), None);
        assert_eq!(ReceiptKey::new([8; 32]).open_ack(&handle), None);
        let plain = key.seal(Receipt {
            queue: 1,
            seq: 2,
            nonce: 3,
        });
        assert_eq!(key.open_ack(&plain), None);
        // Changing the subject (to ack another sequence) breaks the seal.
        let Ok(mut raw) = URL_SAFE_NO_PAD.decode(&handle) else {
            panic!("a sealed handle is base64url");
        };
        raw[1 + 16 + 12] = b'6';
        assert_eq!(key.open_ack(&URL_SAFE_NO_PAD.encode(raw)), None);
        assert_eq!(key.open_ack(&"A".repeat(5000)), None);
    }
}
