//! Who can sign: principals (users, assumed-role sessions) with their policies, and the access
//! keys that sign for them. A temporary key (from STS) carries a session token and an expiry.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::policy::{self, Decision, Policy, Request};
use crate::sigv4::{SigError, constant_eq};

#[derive(Debug)]
pub struct Principal {
    /// `arn:aws:iam::ACCOUNT:user/NAME` or `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub arn: String,
    /// The user's or role's identity policies.
    pub policies: Vec<Policy>,
    /// An STS session policy, which can only narrow what `policies` allow.
    pub session_policy: Option<Policy>,
}

impl Principal {
    pub fn authorize(&self, request: &Request<'_>) -> Decision {
        policy::evaluate(&self.policies, self.session_policy.as_ref(), request)
    }
}

pub struct AccessKey {
    pub id: String,
    pub secret: String,
    /// Temporary credentials only: the token that must accompany each signature.
    pub session_token: Option<String>,
    /// Temporary credentials only: Unix seconds after which the key is refused.
    pub expires: Option<i64>,
    pub principal: Arc<Principal>,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret or the token.
        write!(f, "AccessKey({} for {})", self.id, self.principal.arn)
    }
}

impl AccessKey {
    /// A temporary key needs its own session token; a long-term key takes none.
    pub fn check_session_token(&self, given: Option<&str>) -> Result<(), SigError> {
        match (&self.session_token, given) {
            (None, None) => Ok(()),
            (Some(t), Some(g)) if constant_eq(t.as_bytes(), g.as_bytes()) => Ok(()),
            _ => Err(SigError::BadSecurityToken),
        }
    }
}

#[derive(Clone, Default)]
pub struct Keys {
    by_id: HashMap<String, Arc<AccessKey>>,
}

impl Keys {
    pub fn insert(&mut self, key: AccessKey) {
        self.by_id.insert(key.id.clone(), Arc::new(key));
    }

    pub fn lookup(&self, id: &str, now: i64) -> Result<Arc<AccessKey>, SigError> {
        let key = self
            .by_id
            .get(id)
            .ok_or_else(|| SigError::UnknownKey(id.to_owned()))?;
        if key.expires.is_some_and(|e| now > e) {
            return Err(SigError::ExpiredToken);
        }
        Ok(Arc::clone(key))
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// The keys every part of spillway checks signatures against (the AWS endpoint and the proxies'
/// token checks), shared so that temporary credentials from STS work everywhere at once.
/// Readers take a snapshot (an `Arc`), writers copy and swap: keys change rarely.
#[derive(Default)]
pub struct KeyRing {
    keys: RwLock<Arc<Keys>>,
}

impl KeyRing {
    pub fn new(keys: Keys) -> Arc<Self> {
        Arc::new(Self {
            keys: RwLock::new(Arc::new(keys)),
        })
    }

    pub fn snapshot(&self) -> Arc<Keys> {
        Arc::clone(&self.keys.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Adds a (temporary) key, dropping expired ones on the way.
    pub fn add(&self, key: AccessKey, now: i64) {
        let mut guard = self.keys.write().unwrap_or_else(|p| p.into_inner());
        let mut keys = (**guard).clone();
        keys.by_id.retain(|_, k| k.expires.is_none_or(|e| e >= now));
        keys.insert(key);
        *guard = Arc::new(keys);
    }

    /// Gives every temporary key the principal `f` makes of its current one, or revokes the
    /// key when `f` returns `None`: how a role's changed policies reach its sessions already
    /// issued (IAM evaluates a session against the role's current policies).
    pub fn update_temporary(&self, f: impl Fn(&Arc<Principal>) -> Option<Arc<Principal>>) {
        let mut guard = self.keys.write().unwrap_or_else(|p| p.into_inner());
        let mut keys = Keys::default();
        for (id, k) in &guard.by_id {
            if k.session_token.is_none() {
                keys.by_id.insert(id.clone(), Arc::clone(k));
                continue;
            }
            if let Some(principal) = f(&k.principal) {
                keys.by_id.insert(
                    id.clone(),
                    Arc::new(AccessKey {
                        id: k.id.clone(),
                        secret: k.secret.clone(),
                        session_token: k.session_token.clone(),
                        expires: k.expires,
                        principal,
                    }),
                );
            }
        }
        *guard = Arc::new(keys);
    }

    /// Replaces the long-term keys (a reloaded stack), keeping unexpired temporary ones.
    pub fn replace_long_term(&self, long_term: Keys, now: i64) {
        let mut guard = self.keys.write().unwrap_or_else(|p| p.into_inner());
        let mut keys = long_term;
        for (id, k) in &guard.by_id {
            if k.expires.is_some_and(|e| e >= now) {
                keys.by_id.insert(id.clone(), Arc::clone(k));
            }
        }
        *guard = Arc::new(keys);
    }
}
