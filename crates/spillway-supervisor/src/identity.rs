//! The stack's principals for the identity layer: `[users.NAME]` with their access keys (written
//! in the stack, or generated once and kept in `secrets.json`) and their policies, references
//! resolved; and the proxies' RDS IAM token check built on them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rand::Rng;
use spillway_identity::policy::{Condition, Effect, Matcher, Policy, Statement};
use spillway_identity::principals::{AccessKey, KeyRing, Keys, Principal};
use spillway_identity::rds_token::{ProxyIdentity, TokenVerifier};
use spillway_proxy::pg::proxy::IamVerifier;
use spillway_stack::model::{self, PolicyEntry, StringOrList};
use spillway_stack::{Kind, LoadedStack, attrs};

use crate::error::SupervisorError;
use crate::stack::Values;
use crate::state::GeneratedSecrets;

/// AWS's shape: `AKIA` and 16 characters of base32.
fn new_access_key_id() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::thread_rng();
    let tail: String = (0..16)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect();
    format!("AKIA{tail}")
}

/// 40 characters, as AWS's secret access keys.
fn new_secret_key() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::thread_rng();
    (0..40)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// Puts every user's access key id and secret into `values` (generating what the stack leaves
/// out), so `${users.NAME.access_key_id}` resolves and the keys can be built.
pub fn fill_user_values(
    stack: &spillway_stack::Stack,
    generated: &mut GeneratedSecrets,
    values: &mut Values,
) -> Result<(), SupervisorError> {
    for (name, u) in &stack.users {
        let id = match &u.access_key_id {
            Some(id) => id.clone(),
            None => {
                generated.get_or_make(&format!("users/{name}/access_key_id"), new_access_key_id)?
            }
        };
        let secret = match &u.secret_access_key {
            Some(t) => t
                .resolve(&mut |r| crate::stack::lookup_value(values, stack, r))
                .map_err(|e| SupervisorError::Command {
                    what: format!("users.{name}.secret_access_key"),
                    detail: e.to_string(),
                })?,
            None => {
                generated.get_or_make(&format!("users/{name}/secret_access_key"), new_secret_key)?
            }
        };
        values.insert((Kind::User, name.clone(), "access_key_id".into()), id);
        values.insert(
            (Kind::User, name.clone(), "secret_access_key".into()),
            secret,
        );
    }
    Ok(())
}

fn resolve_all(
    list: Option<&StringOrList>,
    field: &str,
    resolve: &mut dyn FnMut(
        &spillway_stack::template::Template,
        &str,
    ) -> Result<String, SupervisorError>,
) -> Result<Option<Vec<String>>, SupervisorError> {
    list.map(|l| l.iter().map(|t| resolve(t, field)).collect())
        .transpose()
}

fn conditions(
    block: Option<
        &std::collections::BTreeMap<String, std::collections::BTreeMap<String, StringOrList>>,
    >,
    field: &str,
    resolve: &mut dyn FnMut(
        &spillway_stack::template::Template,
        &str,
    ) -> Result<String, SupervisorError>,
) -> Result<Vec<Condition>, SupervisorError> {
    let mut out = Vec::new();
    for (operator, keys) in block.into_iter().flatten() {
        for (key, values) in keys {
            out.push(Condition {
                operator: operator.clone(),
                key: key.clone(),
                values: values
                    .iter()
                    .map(|t| resolve(t, field))
                    .collect::<Result<_, _>>()?,
            });
        }
    }
    Ok(out)
}

fn statement(
    s: &model::Statement,
    field: &str,
    resolve: &mut dyn FnMut(
        &spillway_stack::template::Template,
        &str,
    ) -> Result<String, SupervisorError>,
) -> Result<Statement, SupervisorError> {
    let action = match (
        resolve_all(s.action.as_ref(), field, resolve)?,
        resolve_all(s.not_action.as_ref(), field, resolve)?,
    ) {
        (Some(a), _) => Matcher::Any(a),
        (None, Some(n)) => Matcher::AllBut(n),
        (None, None) => Matcher::Any(Vec::new()),
    };
    let resource = match (
        resolve_all(s.resource.as_ref(), field, resolve)?,
        resolve_all(s.not_resource.as_ref(), field, resolve)?,
    ) {
        (Some(r), _) => Matcher::Any(r),
        (None, Some(n)) => Matcher::AllBut(n),
        // Identity policies name resources; validation requires one. Matching nothing is the
        // safe reading of a statement that does not.
        (None, None) => Matcher::Any(Vec::new()),
    };
    Ok(Statement {
        sid: s.sid.clone(),
        effect: match s.effect {
            model::Effect::Allow => Effect::Allow,
            model::Effect::Deny => Effect::Deny,
        },
        action,
        resource,
        conditions: conditions(s.condition.as_ref(), field, resolve)?,
    })
}

/// The policies of a user or role, as the evaluator takes them.
pub fn policies(
    loaded: &LoadedStack,
    owner: &str,
    entries: &[PolicyEntry],
    values: &Values,
) -> Result<Vec<Policy>, SupervisorError> {
    let stack = &loaded.stack;
    let mut resolve = |t: &spillway_stack::template::Template, field: &str| {
        t.resolve(&mut |r| crate::stack::lookup_value(values, stack, r))
            .map_err(|e| SupervisorError::Command {
                what: field.to_owned(),
                detail: e.to_string(),
            })
    };
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let field = format!("{owner}.policies[{i}]");
        let mut statements = Vec::new();
        let resources: Vec<String> = if e.resources.is_empty() {
            vec!["*".into()]
        } else {
            e.resources
                .iter()
                .map(|t| resolve(t, &field))
                .collect::<Result<_, _>>()?
        };
        for (effect, actions) in [(Effect::Allow, &e.allow), (Effect::Deny, &e.deny)] {
            if actions.is_empty() {
                continue;
            }
            statements.push(Statement {
                sid: None,
                effect,
                action: Matcher::Any(actions.clone()),
                resource: Matcher::Any(resources.clone()),
                conditions: conditions(e.condition.as_ref(), &field, &mut resolve)?,
            });
        }
        for s in &e.statement {
            statements.push(statement(s, &field, &mut resolve)?);
        }
        if let Some(file) = &e.file {
            let path = loaded.path(file);
            let doc: model::PolicyDocument = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
                .map_err(|detail| SupervisorError::Command {
                    what: format!("{field}.file ({})", path.display()),
                    detail,
                })?;
            for s in doc.statement.as_slice() {
                statements.push(statement(s, &field, &mut resolve)?);
            }
        }
        out.push(Policy { statements });
    }
    Ok(out)
}

/// The ARN and resolved policies of `users/NAME` or `roles/NAME` (for `spillway iam simulate`;
/// nothing is started and no state is written, so references must be resolvable from the
/// stack file alone).
pub fn principal_policies(
    loaded: &LoadedStack,
    who: &str,
) -> Result<(String, Vec<Policy>), SupervisorError> {
    let stack = &loaded.stack;
    let values = Values::new();
    let unknown = || SupervisorError::Command {
        what: format!("principal {who:?}"),
        detail: "expected users/NAME or roles/NAME of the stack".into(),
    };
    let (kind, name) = who.split_once('/').ok_or_else(unknown)?;
    let (entries, key) = match kind {
        "users" => (
            &stack.users.get(name).ok_or_else(unknown)?.policies,
            "users",
        ),
        "roles" => (
            &stack.roles.get(name).ok_or_else(unknown)?.policies,
            "roles",
        ),
        _ => return Err(unknown()),
    };
    let arn = attrs::derived(stack, key, name, "arn").unwrap_or_default();
    Ok((
        arn,
        policies(loaded, &format!("{key}.{name}"), entries, &values)?,
    ))
}

/// Every user's long-term access key, for verifying signatures.
pub fn keys(loaded: &LoadedStack, values: &Values) -> Result<Keys, SupervisorError> {
    let stack = &loaded.stack;
    let mut keys = Keys::default();
    for (name, u) in &stack.users {
        let get = |attr: &str| {
            values
                .get(&(Kind::User, name.clone(), attr.to_owned()))
                .cloned()
                .unwrap_or_default()
        };
        let principal = Arc::new(Principal {
            arn: attrs::derived(stack, "users", name, "arn").unwrap_or_default(),
            policies: policies(loaded, &format!("users.{name}"), &u.policies, values)?,
            session_policy: None,
        });
        keys.insert(AccessKey {
            id: get("access_key_id"),
            secret: get("secret_access_key"),
            session_token: None,
            expires: None,
            principal,
        });
    }
    Ok(keys)
}

/// Secrets Manager over the state directory, with every secret the stack declares present as
/// its current value: RDS's JSON shape (`username`, `password`, and with `database` the
/// `engine`, `host`, `port`, `dbname` of that database) plus `extra` keys.
pub fn secrets_manager(
    loaded: &LoadedStack,
    values: &Values,
) -> Result<spillway_aws::secrets::SecretsManager, SupervisorError> {
    let stack = &loaded.stack;
    let failed = |detail: String| SupervisorError::Command {
        what: "Secrets Manager's store".into(),
        detail,
    };
    let sm = spillway_aws::secrets::SecretsManager::open(
        &loaded.state_dir(),
        &stack.stack.region,
        &stack.stack.account,
    )
    .map_err(|e| failed(e.to_string()))?;
    let mut declared = Vec::with_capacity(stack.secrets.len());
    for (name, s) in &stack.secrets {
        let get = |kind: Kind, res: &str, attr: &str| {
            values
                .get(&(kind, res.to_owned(), attr.to_owned()))
                .cloned()
        };
        let mut v = serde_json::Map::new();
        for attr in ["username", "password"] {
            if let Some(x) = get(Kind::Secret, name, attr) {
                v.insert(attr.into(), x.into());
            }
        }
        if let Some(db) = &s.database {
            for (key, attr) in [("engine", "engine"), ("host", "host"), ("dbname", "name")] {
                if let Some(x) = get(Kind::Database, db, attr) {
                    v.insert(key.into(), x.into());
                }
            }
            if let Some(port) = get(Kind::Database, db, "port").and_then(|p| p.parse::<u16>().ok())
            {
                v.insert("port".into(), port.into());
            }
        }
        for (key, t) in &s.extra {
            let x = t
                .resolve(&mut |r| crate::stack::lookup_value(values, stack, r))
                .map_err(|e| SupervisorError::Command {
                    what: format!("secrets.{name}.extra.{key}"),
                    detail: e.to_string(),
                })?;
            v.insert(key.clone(), x.into());
        }
        declared.push((
            name.as_str(),
            attrs::secret_arn(stack, name),
            s.description.as_deref(),
            serde_json::Value::Object(v).to_string(),
        ));
    }
    sm.ensure_all(
        declared
            .iter()
            .map(|(n, arn, d, v)| (*n, arn.as_str(), *d, v.as_str())),
    )
    .map_err(|e| failed(e.to_string()))?;
    Ok(sm)
}

/// The proxy's side of RDS IAM authentication: tokens for one of the proxy's listeners,
/// verified against the shared key ring (stack users and STS sessions) and their policies.
pub struct ProxyTokens {
    verifier: TokenVerifier,
    listeners: Arc<Mutex<Vec<SocketAddr>>>,
}

fn host_allowed(listeners: &Mutex<Vec<SocketAddr>>, host: &str, port: u16) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    listeners
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|l| {
            l.port() == port
                && (l.ip().is_unspecified()
                    || host == l.ip().to_string()
                    || (l.ip().is_loopback() && host.eq_ignore_ascii_case("localhost")))
        })
}

impl ProxyTokens {
    pub fn new(loaded: &LoadedStack, proxy: &str, keys: &Arc<KeyRing>) -> Arc<Self> {
        let stack = &loaded.stack;
        let listeners = Arc::new(Mutex::new(Vec::new()));
        let l = Arc::clone(&listeners);
        let verifier = TokenVerifier::new(
            ProxyIdentity {
                region: stack.stack.region.clone(),
                account: stack.stack.account.clone(),
                resource_id: attrs::proxy_resource_id(stack, proxy),
                host_allowed: Box::new(move |h, p| host_allowed(&l, h, p)),
            },
            Arc::clone(keys),
        );
        Arc::new(Self {
            verifier,
            listeners,
        })
    }

    /// A listener of the proxy (tokens name the address the client connected to).
    pub fn add_listener(&self, addr: SocketAddr) {
        self.listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(addr);
    }
}

/// The roles callers may assume with STS.
pub fn roles(
    loaded: &LoadedStack,
    values: &Values,
) -> Result<Vec<spillway_aws::sts::RoleDef>, SupervisorError> {
    let stack = &loaded.stack;
    let mut roles: Vec<spillway_aws::sts::RoleDef> = stack
        .roles
        .iter()
        .map(|(name, r)| {
            Ok(spillway_aws::sts::RoleDef {
                name: name.clone(),
                arn: attrs::derived(stack, "roles", name, "arn").unwrap_or_default(),
                policies: policies(loaded, &format!("roles.{name}"), &r.policies, values)?,
                // Validation refused anything else; ARNs compare exactly, so a user and a
                // role of one name stay apart.
                trusted: r
                    .trusted
                    .iter()
                    .filter_map(
                        |t| match spillway_stack::trusted_principal(stack, t).ok()? {
                            spillway_stack::TrustedPrincipal::User(u) => {
                                attrs::derived(stack, "users", &u, "arn")
                            }
                            spillway_stack::TrustedPrincipal::Role(r) => {
                                attrs::derived(stack, "roles", &r, "arn")
                            }
                        },
                    )
                    .collect(),
                max_session: r.max_session_duration.get().as_secs() as i64,
            })
        })
        .collect::<Result<_, SupervisorError>>()?;
    // A function without a `role` runs as one made from its `policies`, which only the
    // function host assumes (nobody is trusted to assume it through STS).
    for (name, f) in &stack.functions {
        if f.role.is_some() {
            continue;
        }
        let role = attrs::function_role(stack, name);
        roles.push(spillway_aws::sts::RoleDef {
            arn: format!("arn:aws:iam::{}:role/{role}", stack.stack.account),
            name: role,
            policies: policies(loaded, &format!("functions.{name}"), &f.policies, values)?,
            trusted: Vec::new(),
            // Lambda's execution-role sessions last up to 12 hours; instances retire before.
            max_session: 12 * 3600,
        });
    }
    Ok(roles)
}

impl IamVerifier for ProxyTokens {
    fn verify(&self, user: &str, token: &str) -> bool {
        match self
            .verifier
            .verify(user, token, spillway_identity::time::now())
        {
            Ok(()) => true,
            Err(e) => {
                // The reason stays in the log; the client only learns that the login failed.
                tracing::info!(user, "IAM token refused: {e}");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_a_token_may_name() {
        let l = Mutex::new(vec![SocketAddr::from(([127, 0, 0, 1], 6432))]);
        assert!(host_allowed(&l, "127.0.0.1", 6432));
        assert!(host_allowed(&l, "localhost", 6432));
        assert!(!host_allowed(&l, "127.0.0.1", 6433));
        assert!(!host_allowed(&l, "db.example.com", 6432));
        let any = Mutex::new(vec![SocketAddr::from(([0, 0, 0, 0], 6432))]);
        assert!(host_allowed(&any, "db.example.com", 6432));
        let key = new_access_key_id();
        assert!(key.starts_with("AKIA") && key.len() == 20);
        assert_eq!(new_secret_key().len(), 40);
    }
}
