//! RDS IAM authentication tokens: a SigV4-presigned `GET` of
//! `HOST:PORT/?Action=connect&DBUser=USER&X-Amz-...` for service `rds-db`, without a scheme,
//! valid for 15 minutes. A client sends one as its cleartext password; the proxy checks the
//! signature, the user, the host, the region and the expiry, then asks the signer's policies
//! whether `rds-db:connect` is allowed on the proxy's `dbuser` ARN.
//!
//! Report 004 saw databases fall over above ~200 new IAM connections per second: verifying here
//! costs a few HMACs, and a verified token is remembered until it expires, so a function that
//! reconnects with the same token costs a hash lookup.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::policy::{Decision, Request};
use crate::principals::KeyRing;
use crate::sigv4::{self, EMPTY_SHA256, RequestParts, SigError};

pub const SERVICE: &str = "rds-db";
/// RDS tokens are valid for 15 minutes; a token claiming longer is not one RDS would accept.
pub const MAX_EXPIRES: i64 = 900;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not an RDS auth token: {0}")]
    Malformed(&'static str),
    #[error("the token is for user {0:?}")]
    OtherUser(String),
    #[error("the token is for {0}, not this proxy")]
    OtherHost(String),
    #[error("the token claims a validity above 900 seconds")]
    TooLong,
    #[error(transparent)]
    Signature(#[from] SigError),
    #[error("{principal} may not rds-db:connect to {resource}")]
    Denied { principal: String, resource: String },
}

/// Decides whether a token's `host` and `port` name this proxy.
pub type HostCheck = Box<dyn Fn(&str, u16) -> bool + Send + Sync>;

/// Where the proxy is reached and what it is called in ARNs.
pub struct ProxyIdentity {
    pub region: String,
    pub account: String,
    /// RDS Proxy's resource id (`prx-...`), the middle of the `dbuser` ARN.
    pub resource_id: String,
    /// Accepts the token's `host:port` (the address the client connected to).
    pub host_allowed: HostCheck,
}

impl ProxyIdentity {
    pub fn dbuser_arn(&self, user: &str) -> String {
        format!(
            "arn:aws:rds-db:{}:{}:dbuser:{}/{}",
            self.region, self.account, self.resource_id, user
        )
    }
}

/// Verifies tokens and remembers the good ones until they expire.
pub struct TokenVerifier {
    pub proxy: ProxyIdentity,
    pub keys: std::sync::Arc<KeyRing>,
    /// SHA-256 of a verified token → (user, expiry, signing key id). A hit skips the parsing
    /// and the HMACs, not the key lookup or the policy: a removed key or a narrowed policy takes
    /// effect on cached tokens at once.
    verified: Mutex<HashMap<[u8; 32], (String, i64, String)>>,
}

/// Bound on remembered tokens; past it the expired ones are dropped, then all.
const CACHE_LIMIT: usize = 100_000;

impl TokenVerifier {
    pub fn new(proxy: ProxyIdentity, keys: std::sync::Arc<KeyRing>) -> Self {
        Self {
            proxy,
            keys,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `token` lets its signer log in as `user` now.
    pub fn verify(&self, user: &str, token: &str, now: i64) -> Result<(), TokenError> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        {
            let cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((u, until, key_id)) = cache.get(&digest)
                && u == user
                && now <= *until
            {
                let key_id = key_id.clone();
                drop(cache);
                return self.authorize(user, &key_id, now).map(|_| ());
            }
        }
        let (until, key_id) = self.verify_uncached(user, token, now)?;
        let mut cache = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_LIMIT {
            cache.retain(|_, (_, t, _)| *t >= now);
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
        }
        cache.insert(digest, (user.to_owned(), until, key_id));
        Ok(())
    }

    /// The signing key still exists (and is unexpired) and its principal may connect as
    /// `user`; returns the key's own expiry, if temporary.
    fn authorize(&self, user: &str, key_id: &str, now: i64) -> Result<Option<i64>, TokenError> {
        let key = self.keys.snapshot().lookup(key_id, now)?;
        let resource = self.proxy.dbuser_arn(user);
        let request = Request::new("rds-db:connect", &resource, &key.principal.arn, now);
        match key.principal.authorize(&request) {
            Decision::Allow { .. } => Ok(key.expires),
            _ => Err(TokenError::Denied {
                principal: key.principal.arn.clone(),
                resource,
            }),
        }
    }

    /// Returns the token's expiry and its signing key's id on success.
    fn verify_uncached(
        &self,
        user: &str,
        token: &str,
        now: i64,
    ) -> Result<(i64, String), TokenError> {
        if token.contains("://") {
            return Err(TokenError::Malformed("it has a scheme"));
        }
        let (authority, query) = token
            .split_once("/?")
            .ok_or(TokenError::Malformed("no /? after host:port"))?;
        let (host, port) = authority
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            .ok_or(TokenError::Malformed("no host:port"))?;
        let params = sigv4::parse_query(query)?;
        let get = |k: &str| {
            params
                .iter()
                .find(|(pk, _)| pk == k)
                .map(|(_, v)| v.as_str())
        };
        if get("Action") != Some("connect") {
            return Err(TokenError::Malformed("Action is not connect"));
        }
        let db_user = get("DBUser").ok_or(TokenError::Malformed("no DBUser"))?;
        if db_user != user {
            return Err(TokenError::OtherUser(db_user.to_owned()));
        }
        if !(self.proxy.host_allowed)(host, port) {
            return Err(TokenError::OtherHost(authority.to_owned()));
        }
        let signed = sigv4::parse_presigned(&params)?;
        if signed.expires.is_some_and(|e| e > MAX_EXPIRES) {
            return Err(TokenError::TooLong);
        }
        signed.check_scope(SERVICE, &self.proxy.region, now, sigv4::MAX_CLOCK_SKEW)?;
        let key = self.keys.snapshot().lookup(&signed.access_key_id, now)?;
        key.check_session_token(signed.security_token.as_deref())?;
        let header = |name: &str| (name == "host").then(|| authority.to_owned());
        signed.verify(
            &RequestParts {
                method: "GET",
                path: "/",
                header: &header,
                payload_hash: EMPTY_SHA256,
            },
            &key.secret,
        )?;
        let key_expires = self.authorize(user, &key.id, now)?;
        let until = signed.signed_at + signed.expires.unwrap_or(MAX_EXPIRES);
        Ok((key_expires.map_or(until, |k| k.min(until)), key.id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::policy::{Effect, Policy, Statement};
    use crate::principals::{AccessKey, KeyRing, Keys, Principal};

    // botocore's known answer (tests/unit/test_signers.py, test_generate_db_auth_token).
    const TOKEN: &str = "prod-instance.us-east-1.rds.amazonaws.com:3306/?Action=connect&DBUser=someusername&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20161107T173933Z&X-Amz-SignedHeaders=host&X-Amz-Expires=900&X-Amz-Credential=akid%2F20161107%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Signature=d1138cdbc0ca63eec012ec0fc6c2267e03642168f5884a7795320d4c18374c61";
    const SIGNED_AT: i64 = 1_478_540_373;

    fn verifier(allow: &str) -> TokenVerifier {
        let principal = Arc::new(Principal {
            arn: "arn:aws:iam::123456789012:user/app".into(),
            policies: vec![Policy {
                statements: vec![Statement::simple(Effect::Allow, "rds-db:connect", allow)],
            }],
            session_policy: None,
        });
        let mut keys = Keys::default();
        keys.insert(AccessKey {
            id: "akid".into(),
            secret: "skid".into(),
            session_token: None,
            expires: None,
            principal,
        });
        TokenVerifier::new(
            ProxyIdentity {
                region: "us-east-1".into(),
                account: "123456789012".into(),
                resource_id: "prx-1".into(),
                host_allowed: Box::new(|h, p| {
                    h == "prod-instance.us-east-1.rds.amazonaws.com" && p == 3306
                }),
            },
            KeyRing::new(keys),
        )
    }

    #[test]
    fn botocore_known_answer_is_accepted_while_fresh() {
        let v = verifier("arn:aws:rds-db:us-east-1:123456789012:dbuser:prx-1/*");
        assert_eq!(v.verify("someusername", TOKEN, SIGNED_AT + 60), Ok(()));
        // Cached, and still bound to its user and expiry.
        assert_eq!(v.verify("someusername", TOKEN, SIGNED_AT + 61), Ok(()));
        // A cached token stops working as soon as its key is gone.
        v.keys.replace_long_term(Keys::default(), SIGNED_AT);
        assert!(matches!(
            v.verify("someusername", TOKEN, SIGNED_AT + 62),
            Err(TokenError::Signature(SigError::UnknownKey(_)))
        ));
        assert!(matches!(
            v.verify("other", TOKEN, SIGNED_AT + 60),
            Err(TokenError::OtherUser(_))
        ));
        assert_eq!(
            v.verify("someusername", TOKEN, SIGNED_AT + 901),
            Err(TokenError::Signature(SigError::Expired))
        );
    }

    #[test]
    fn tampering_other_hosts_and_policies_are_refused() {
        let v = verifier("arn:aws:rds-db:us-east-1:123456789012:dbuser:prx-1/*");
        let tampered = TOKEN.replace("d1138cdb", "d1138cdc");
        assert_eq!(
            v.verify("someusername", &tampered, SIGNED_AT),
            Err(TokenError::Signature(SigError::Mismatch))
        );
        let moved = TOKEN.replace(":3306/", ":3307/");
        assert!(matches!(
            v.verify("someusername", &moved, SIGNED_AT),
            Err(TokenError::OtherHost(_))
        ));
        let longer = TOKEN.replace("X-Amz-Expires=900", "X-Amz-Expires=3600");
        assert_eq!(
            v.verify("someusername", &longer, SIGNED_AT),
            Err(TokenError::TooLong)
        );
        let schemed = format!("https://{TOKEN}");
        assert_eq!(
            v.verify("someusername", &schemed, SIGNED_AT),
            Err(TokenError::Malformed("it has a scheme"))
        );
        // A date with a multi-byte character is refused, not a panic.
        let odd = TOKEN.replace(
            "X-Amz-Date=20161107T173933Z",
            "X-Amz-Date=201%C3%A9107T173933Z",
        );
        assert!(v.verify("someusername", &odd, SIGNED_AT).is_err());
        let denied = verifier("arn:aws:rds-db:us-east-1:123456789012:dbuser:prx-1/admin");
        assert!(matches!(
            denied.verify("someusername", TOKEN, SIGNED_AT),
            Err(TokenError::Denied { .. })
        ));
    }
}
