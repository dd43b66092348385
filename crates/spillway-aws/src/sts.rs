//! STS over the query protocol: `GetCallerIdentity` and `AssumeRole` (temporary credentials
//! with a session token and an expiry, narrowed by an optional session policy). Issued keys go
//! into the shared key ring, so they sign AWS calls and RDS IAM tokens alike.

use std::sync::{Arc, RwLock};

use base64::Engine as _;
use sha2::Digest;
use spillway_identity::policy::{self, Policy};
use spillway_identity::principals::{AccessKey, KeyRing, Principal};

use crate::auth::Caller;
use crate::error::AwsError;
use crate::protocol::Operation;
use crate::xml;

const NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// AWS's limit on a packed session policy.
const MAX_SESSION_POLICY: usize = 2048;

/// A role callers may assume.
pub struct RoleDef {
    pub name: String,
    pub arn: String,
    pub policies: Vec<Policy>,
    /// IAM ARNs of the users and roles that may assume it (a trusted role's sessions may).
    pub trusted: Vec<String>,
    /// MaxSessionDuration, seconds.
    pub max_session: i64,
}

pub struct Sts {
    pub account: String,
    /// Replaced whole on reload; readers take a snapshot.
    roles: RwLock<Arc<Vec<RoleDef>>>,
    pub keys: Arc<KeyRing>,
}

const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// AWS's unique ids are a four-letter kind and base32; spillway's are stable per ARN.
fn unique_id(prefix: &str, arn: &str) -> String {
    let digest = sha2::Sha256::digest(arn.as_bytes());
    let tail: String = digest
        .iter()
        .take(17)
        .map(|b| BASE32[usize::from(b % 32)] as char)
        .collect();
    format!("{prefix}{tail}")
}

/// The caller's unique id, as GetCallerIdentity's `UserId` (and SQS's `SenderId`) give it:
/// the account for root, `AIDA...` for a user, `AROA...:SESSION` for an assumed role.
pub fn user_id(arn: &str) -> String {
    if arn.ends_with(":root") {
        account_of(arn).to_owned()
    } else if let Some(rest) = arn.split(":assumed-role/").nth(1) {
        let (role, session) = rest.split_once('/').unwrap_or((rest, ""));
        format!("{}:{session}", unique_id("AROA", role))
    } else {
        unique_id("AIDA", arn)
    }
}

fn random(chars: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| chars[usize::from(rand::random::<u8>()) % chars.len()] as char)
        .collect()
}

fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

/// The IAM ARN a trust policy names the caller by: a user's own ARN, and for an assumed-role
/// session (`arn:aws:sts::A:assumed-role/ROLE/SESSION`) its role's (`arn:aws:iam::A:role/ROLE`).
fn trust_arn(arn: &str) -> Option<String> {
    let resource = arn.split(':').nth(5)?;
    let mut parts = resource.split('/');
    let account = account_of(arn);
    match parts.next()? {
        "user" if arn.starts_with("arn:aws:iam::") => Some(arn.to_owned()),
        "assumed-role" => Some(format!("arn:aws:iam::{account}:role/{}", parts.next()?)),
        _ => None,
    }
}

/// The role an assumed-role session belongs to.
fn session_role(arn: &str) -> Option<&str> {
    arn.strip_prefix("arn:aws:sts::")?
        .split_once(":assumed-role/")?
        .1
        .split('/')
        .next()
}

fn validation(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ValidationError", message)
}

fn param<'a>(op: &'a Operation, k: &str) -> Option<&'a str> {
    op.params
        .iter()
        .find(|(pk, _)| pk == k)
        .map(|(_, v)| v.as_str())
}

impl Sts {
    pub fn new(account: &str, roles: Vec<RoleDef>, keys: Arc<KeyRing>) -> Self {
        Self {
            account: account.to_owned(),
            roles: RwLock::new(Arc::new(roles)),
            keys,
        }
    }

    fn roles(&self) -> Arc<Vec<RoleDef>> {
        Arc::clone(&self.roles.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// A reloaded stack's roles: trust applies to the next AssumeRole, and sessions already
    /// issued take their role's new policies at once (their session policies stay); sessions of
    /// a role that is gone are revoked.
    pub fn replace_roles(&self, roles: Vec<RoleDef>) {
        let roles = Arc::new(roles);
        *self.roles.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&roles);
        self.keys.update_temporary(|p| {
            let Some(name) = session_role(&p.arn) else {
                return Some(Arc::clone(p));
            };
            let role = roles.iter().find(|r| r.name == name)?;
            Some(Arc::new(Principal {
                arn: p.arn.clone(),
                policies: role.policies.clone(),
                session_policy: p.session_policy.clone(),
            }))
        });
    }

    /// The XML body of a successful call.
    pub fn handle(
        &self,
        op: &Operation,
        caller: &Caller,
        request_id: &str,
    ) -> Result<String, AwsError> {
        let body = match op.name.as_str() {
            // Never denied by policies, as in AWS.
            "GetCallerIdentity" => {
                let arn = &caller.principal.arn;
                let account = account_of(arn);
                let user_id = user_id(arn);
                format!(
                    "<GetCallerIdentityResult>{}{}{}</GetCallerIdentityResult>",
                    xml::element("Arn", arn),
                    xml::element("UserId", &user_id),
                    xml::element("Account", account),
                )
            }
            "AssumeRole" => self.assume_role(op, caller)?,
            other => {
                return Err(AwsError::new(
                    400,
                    "InvalidAction",
                    format!("{other} is not supported by spillway yet"),
                ));
            }
        };
        let name = &op.name;
        Ok(format!(
            "<{name}Response xmlns=\"{NS}\">{body}<ResponseMetadata>{}</ResponseMetadata></{name}Response>",
            xml::element("RequestId", request_id)
        ))
    }

    fn assume_role(&self, op: &Operation, caller: &Caller) -> Result<String, AwsError> {
        let role_arn = param(op, "RoleArn").ok_or_else(|| validation("RoleArn is required"))?;
        let session = param(op, "RoleSessionName")
            .ok_or_else(|| validation("RoleSessionName is required"))?;
        let session_ok = (2..=64).contains(&session.len())
            && session
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
        if !session_ok {
            return Err(validation(
                "RoleSessionName must be 2-64 characters of letters, digits and _+=,.@-",
            ));
        }
        let denied = || {
            AwsError::new(
                403,
                "AccessDenied",
                format!(
                    "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                    caller.principal.arn
                ),
            )
        };
        // An unknown role looks like a refused one, as in AWS.
        let roles = self.roles();
        let role = roles
            .iter()
            .find(|r| r.arn == role_arn)
            .ok_or_else(denied)?;
        let trusted = caller.principal.arn.ends_with(":root")
            || trust_arn(&caller.principal.arn).is_some_and(|a| role.trusted.contains(&a));
        let request = caller.policy_request("sts:AssumeRole", role_arn);
        let explicitly_denied = matches!(
            caller.principal.authorize(&request),
            policy::Decision::ExplicitDeny { .. }
        );
        if !trusted || explicitly_denied {
            return Err(denied());
        }
        let duration = match param(op, "DurationSeconds") {
            None => 3600.min(role.max_session),
            Some(d) => d
                .parse::<i64>()
                .ok()
                .filter(|d| (900..=43_200).contains(d))
                .ok_or_else(|| validation("DurationSeconds must be between 900 and 43200"))?,
        };
        if duration > role.max_session {
            return Err(validation(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            ));
        }
        let session_policy = match param(op, "Policy") {
            None => None,
            Some(p) if p.len() > MAX_SESSION_POLICY => {
                return Err(validation("Policy must be at most 2048 characters long"));
            }
            Some(p) => Some(policy::parse_document(p).map_err(|e| {
                AwsError::new(
                    400,
                    "MalformedPolicyDocument",
                    format!("the session policy is malformed: {e}"),
                )
            })?),
        };
        let packed = param(op, "Policy").map(str::len);
        let c = self.issue(role, session, duration, session_policy);
        let result = format!(
            "<AssumeRoleResult><AssumedRoleUser>{}{}</AssumedRoleUser><Credentials>{}{}{}{}</Credentials>{}</AssumeRoleResult>",
            xml::element(
                "AssumedRoleId",
                &format!("{}:{session}", unique_id("AROA", &role.name))
            ),
            xml::element("Arn", &c.arn),
            xml::element("AccessKeyId", &c.access_key_id),
            xml::element("SecretAccessKey", &c.secret_access_key),
            xml::element("SessionToken", &c.session_token),
            xml::element(
                "Expiration",
                &spillway_identity::time::format_iso8601(c.expires)
            ),
            packed.map_or_else(String::new, |n| xml::element(
                "PackedPolicySize",
                &(n * 100 / MAX_SESSION_POLICY).to_string()
            )),
        );
        tracing::info!(
            caller = %caller.principal.arn,
            session = %c.arn,
            "issued temporary credentials until {}",
            spillway_identity::time::format_iso8601(c.expires)
        );
        Ok(result)
    }

    /// Temporary credentials for a function running as `role` (what Lambda puts in a function's
    /// environment): an assumed-role session named after the function, for the role's
    /// MaxSessionDuration. `None` if the stack has no such role.
    pub fn credentials_for_function(&self, role: &str, function: &str) -> Option<Credentials> {
        let roles = self.roles();
        let role = roles.iter().find(|r| r.name == role)?;
        let session: String = function
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .take(64)
            .collect();
        Some(self.issue(role, &session, role.max_session, None))
    }

    /// Mints an assumed-role session's key and puts it into the key ring.
    fn issue(
        &self,
        role: &RoleDef,
        session: &str,
        duration: i64,
        session_policy: Option<Policy>,
    ) -> Credentials {
        let now = spillway_identity::time::now();
        let c = Credentials {
            access_key_id: format!("ASIA{}", random(BASE32, 16)),
            secret_access_key: random(
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                40,
            ),
            session_token: base64::engine::general_purpose::STANDARD
                .encode((0..192).map(|_| rand::random::<u8>()).collect::<Vec<u8>>()),
            expires: now + duration,
            arn: format!(
                "arn:aws:sts::{}:assumed-role/{}/{session}",
                self.account, role.name
            ),
        };
        self.keys.add(
            AccessKey {
                id: c.access_key_id.clone(),
                secret: c.secret_access_key.clone(),
                session_token: Some(c.session_token.clone()),
                expires: Some(c.expires),
                principal: Arc::new(Principal {
                    arn: c.arn.clone(),
                    policies: role.policies.clone(),
                    session_policy,
                }),
            },
            now,
        );
        c
    }
}

/// Temporary credentials, as STS hands them out.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// Unix seconds.
    pub expires: i64,
    /// The assumed-role session's ARN.
    pub arn: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({} for {})", self.access_key_id, self.arn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_get_session_credentials_for_their_role() {
        let keys = KeyRing::new(Default::default());
        let sts = Sts::new(
            "123456789012",
            vec![RoleDef {
                name: "fn-role".into(),
                arn: "arn:aws:iam::123456789012:role/fn-role".into(),
                policies: vec![],
                trusted: vec![],
                max_session: 3600,
            }],
            Arc::clone(&keys),
        );
        assert!(sts.credentials_for_function("nope", "f").is_none());
        let c = sts
            .credentials_for_function("fn-role", "users api")
            .unwrap_or_else(|| panic!("no credentials"));
        assert_eq!(
            c.arn,
            "arn:aws:sts::123456789012:assumed-role/fn-role/users-api"
        );
        assert!(c.access_key_id.starts_with("ASIA"));
        let now = spillway_identity::time::now();
        let key = keys
            .snapshot()
            .lookup(&c.access_key_id, now)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(key.check_session_token(Some(&c.session_token)), Ok(()));
        assert!(key.check_session_token(None).is_err());
        assert!(matches!(
            keys.snapshot().lookup(&c.access_key_id, c.expires + 1),
            Err(spillway_identity::sigv4::SigError::ExpiredToken)
        ));
    }
}
