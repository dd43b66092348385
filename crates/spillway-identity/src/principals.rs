//! Who can sign: principals (users, assumed-role sessions) with their policies, and the access
//! keys that sign for them. A temporary key (from STS) carries a session token and an expiry.

use std::collections::HashMap;
use std::sync::Arc;

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

#[derive(Default)]
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
