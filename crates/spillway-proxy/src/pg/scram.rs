//! SCRAM-SHA-256 (RFC 5802 / 7677) as a PostgreSQL server verifies it, for client logins.
//!
//! The proxy keeps a [`Verifier`] (salt, StoredKey, ServerKey) per user, derived once when the
//! user's password becomes known. A login then costs two HMACs and a hash instead of 4,096
//! PBKDF2 rounds: in a connection storm, that is most of a pooler's CPU (see BASELINES.md).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const MECHANISM: &str = "SCRAM-SHA-256";
pub const ITERATIONS: u32 = 4096;

/// What the server keeps instead of the password.
#[derive(Clone)]
pub struct Verifier {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier { .. }")
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    let mut m = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    m.update(data);
    m.finalize().into_bytes().into()
}

impl Verifier {
    pub fn new(password: &str) -> Self {
        let mut salt = vec![0u8; 16];
        rand::thread_rng().fill_bytes(&mut salt);
        Self::with_salt(password, salt, ITERATIONS)
    }

    pub fn with_salt(password: &str, salt: Vec<u8>, iterations: u32) -> Self {
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, iterations, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let server_key = hmac(&salted, b"Server Key");
        Self {
            salt,
            iterations,
            stored_key,
            server_key,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    #[error("malformed SCRAM message")]
    Malformed,
    #[error("channel binding is not supported")]
    ChannelBinding,
    #[error("nonce mismatch")]
    Nonce,
    #[error("wrong password")]
    Proof,
}

/// A SCRAM exchange in progress, after the server-first message.
pub struct Exchange {
    client_first_bare: String,
    server_first: String,
    gs2_header: String,
    nonce: String,
}

impl Exchange {
    /// Handles the client-first message; returns the exchange and the server-first message.
    pub fn start(client_first: &[u8], v: &Verifier) -> Result<(Self, String), ScramError> {
        let text = std::str::from_utf8(client_first).map_err(|_| ScramError::Malformed)?;
        // gs2-header: "n,," (no binding), "y,," (client could, server did not offer) or
        // "p=...,," (binding required: only with TLS, which we do not offer SCRAM-PLUS for).
        let (cb, rest) = text.split_once(',').ok_or(ScramError::Malformed)?;
        match cb {
            "n" | "y" => {}
            c if c.starts_with("p=") => return Err(ScramError::ChannelBinding),
            _ => return Err(ScramError::Malformed),
        }
        let (_authzid, bare) = rest.split_once(',').ok_or(ScramError::Malformed)?;
        let client_nonce = bare
            .split(',')
            .find_map(|a| a.strip_prefix("r="))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b','))
            .ok_or(ScramError::Malformed)?;
        let mut raw = [0u8; 18];
        rand::thread_rng().fill_bytes(&mut raw);
        let nonce = format!("{client_nonce}{}", B64.encode(raw));
        let server_first = format!("r={nonce},s={},i={}", B64.encode(&v.salt), v.iterations);
        let gs2_header = format!("{cb},{_authzid},");
        Ok((
            Self {
                client_first_bare: bare.to_owned(),
                server_first: server_first.clone(),
                gs2_header,
                nonce,
            },
            server_first,
        ))
    }

    /// Checks the client-final message; returns the server-final message on success.
    pub fn finish(self, client_final: &[u8], v: &Verifier) -> Result<String, ScramError> {
        let text = std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed)?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or(ScramError::Malformed)?;
        let mut channel = None;
        let mut nonce = None;
        for attr in without_proof.split(',') {
            if let Some(c) = attr.strip_prefix("c=") {
                channel = Some(c);
            } else if let Some(r) = attr.strip_prefix("r=") {
                nonce = Some(r);
            }
        }
        if channel != Some(B64.encode(self.gs2_header.as_bytes()).as_str()) {
            return Err(ScramError::ChannelBinding);
        }
        if nonce != Some(self.nonce.as_str()) {
            return Err(ScramError::Nonce);
        }
        let proof = B64.decode(proof).map_err(|_| ScramError::Malformed)?;
        if proof.len() != 32 {
            return Err(ScramError::Malformed);
        }
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let signature = hmac(&v.stored_key, auth_message.as_bytes());
        let mut client_key = [0u8; 32];
        for (i, k) in client_key.iter_mut().enumerate() {
            *k = proof[i] ^ signature[i];
        }
        let computed: [u8; 32] = Sha256::digest(client_key).into();
        // Constant time: fold every byte difference.
        let diff = computed
            .iter()
            .zip(v.stored_key.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(ScramError::Proof);
        }
        Ok(format!(
            "v={}",
            B64.encode(hmac(&v.server_key, auth_message.as_bytes()))
        ))
    }
}

/// PostgreSQL's MD5 response for `user`/`password` and a 4-byte salt: "md5" + hex(md5(hex(md5(password + user)) + salt)).
pub fn md5_response(user: &str, password: &str, salt: [u8; 4]) -> String {
    postgres_protocol::authentication::md5_hash(user.as_bytes(), password.as_bytes(), salt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

    /// Runs the exchange against rust-postgres's client implementation (not ours).
    fn login(server_password: &str, client_password: &str) -> Result<(), ScramError> {
        let v = Verifier::new(server_password);
        let mut client =
            ScramSha256::new(client_password.as_bytes(), ChannelBinding::unsupported());
        let (ex, server_first) = Exchange::start(client.message(), &v)?;
        client
            .update(server_first.as_bytes())
            .map_err(|_| ScramError::Malformed)?;
        let server_final = ex.finish(client.message(), &v)?;
        client
            .finish(server_final.as_bytes())
            .map_err(|_| ScramError::Proof)
    }

    #[test]
    fn a_real_client_logs_in_with_the_right_password_only() {
        assert_eq!(login("s3cret", "s3cret"), Ok(()));
        assert_eq!(login("s3cret", "wrong"), Err(ScramError::Proof));
    }

    #[test]
    fn malformed_and_tampered_messages_are_refused() {
        let v = Verifier::new("pw");
        assert!(Exchange::start(b"garbage", &v).is_err());
        assert_eq!(
            Exchange::start(b"p=tls-server-end-point,,n=,r=abc", &v).err(),
            Some(ScramError::ChannelBinding)
        );
        let (ex, _) = Exchange::start(b"n,,n=,r=abc", &v).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ex.finish(b"c=biws,r=otherNonce,p=AAAA", &v).err(),
            Some(ScramError::Nonce)
        );
    }

    #[test]
    fn md5_matches_the_documented_construction() {
        // md5("pwuser") = 3b4d..., then md5(hex + salt).
        let r = md5_response("user", "pw", [1, 2, 3, 4]);
        assert!(r.starts_with("md5") && r.len() == 35);
    }
}
