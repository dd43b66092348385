//! Password proofs of the `mysql_native_password` and `caching_sha2_password` plugins. The
//! proxy holds each user's password (from its secret), so it computes the proof a client should
//! send and compares: no password hash is stored anywhere, and caching_sha2's fast path always
//! applies (the "cache" is the secret itself).
//!
//! Hand-written over the RustCrypto hashes rather than taken from `mysql_common`: the two
//! formulas are a few lines each, and that crate would bring a whole MySQL value model along.

use sha1::{Digest, Sha1};
use sha2::Sha256;

pub const NATIVE: &str = "mysql_native_password";
pub const CACHING_SHA2: &str = "caching_sha2_password";
pub const CLEAR: &str = "mysql_clear_password";

/// SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))); empty for an empty password.
pub fn native(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password);
    let stage2 = Sha1::digest(stage1);
    let mut h = Sha1::new();
    h.update(scramble);
    h.update(stage2);
    let mix = h.finalize();
    stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
}

/// SHA256(password) XOR SHA256(SHA256(SHA256(password)) + scramble).
pub fn caching_sha2(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha256::digest(password);
    let stage2 = Sha256::digest(stage1);
    let mut h = Sha256::new();
    h.update(stage2);
    h.update(scramble);
    let mix = h.finalize();
    stage1.iter().zip(mix.iter()).map(|(a, b)| a ^ b).collect()
}

/// The proof a client of `plugin` sends for `password`; `None` for plugins the proxy does not
/// speak.
pub fn proof(plugin: &str, password: &[u8], scramble: &[u8]) -> Option<Vec<u8>> {
    match plugin {
        NATIVE => Some(native(password, scramble)),
        CACHING_SHA2 => Some(caching_sha2(password, scramble)),
        CLEAR => {
            let mut p = password.to_vec();
            p.push(0);
            Some(p)
        }
        _ => None,
    }
}

/// A fresh 20-byte challenge, printable and without NUL (it travels as a C string).
pub fn challenge() -> Vec<u8> {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..20).map(|_| rng.gen_range(0x21u8..0x7f)).collect()
}

pub fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_have_their_plugins_shapes() {
        // The formulas themselves are proven against MariaDB by the integration tests (the
        // proxy logs in to it with `native`, and real clients log in to the proxy).
        let scramble = b"abcdefghijklmnopqrst";
        let p = native(b"secret", scramble);
        assert_eq!(p.len(), 20);
        assert_ne!(p, native(b"secreT", scramble));
        assert!(native(b"", scramble).is_empty());
        assert_eq!(caching_sha2(b"secret", scramble).len(), 32);
    }
}
