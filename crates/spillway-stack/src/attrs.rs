//! Attributes derived from names alone (ARNs, URLs, ids), so every service and every reference
//! agrees on them. Attributes that are only known once the stack runs (a managed database's port,
//! a generated password) are added by the supervisor.

use crate::listeners;
use crate::model::Stack;
use crate::resource::Kind;

/// A stable 64-bit FNV-1a hash: ids derived from names must not change between runs or builds.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn alnum(seed: &str, len: usize) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut h = fnv(seed);
    (0..len)
        .map(|i| {
            if i % 12 == 11 {
                h = fnv(&format!("{seed}{i}"));
            }
            let c = CHARS[(h % CHARS.len() as u64) as usize] as char;
            h /= CHARS.len() as u64;
            c
        })
        .collect()
}

/// RDS Proxy's resource id (`prx-` and 17 hex digits).
pub fn proxy_resource_id(stack: &Stack, name: &str) -> String {
    let seed = format!("{}/{}", stack.stack.account, name);
    format!(
        "prx-{:016x}{:x}",
        fnv(&seed),
        fnv(&format!("{seed}#")) & 0xf
    )
}

/// API Gateway's 10-character API id.
pub fn api_id(stack: &Stack, name: &str) -> String {
    alnum(&format!("{}/api/{}", stack.stack.account, name), 10)
}

/// The ARN of a secret: Secrets Manager appends six random characters; here they are derived
/// from the name so that the ARN is stable across restarts.
pub fn secret_arn(stack: &Stack, name: &str) -> String {
    let s = &stack.stack;
    format!(
        "arn:aws:secretsmanager:{}:{}:secret:{name}-{}",
        s.region,
        s.account,
        alnum(name, 6)
    )
}

/// The role a function runs as: its `role`, or one spillway makes for it.
pub fn function_role(stack: &Stack, name: &str) -> String {
    stack
        .functions
        .get(name)
        .and_then(|f| f.role.clone())
        .unwrap_or_else(|| format!("spillway-fn-{name}"))
}

/// The value of a derived attribute, or `None` if it is only known at run time.
pub fn derived(stack: &Stack, kind: &str, name: &str, attr: &str) -> Option<String> {
    let s = &stack.stack;
    let (region, account) = (&s.region, &s.account);
    if kind == "stack" {
        return match attr {
            "name" => s.name.clone(),
            "region" => Some(region.clone()),
            "account" => Some(account.clone()),
            "endpoint" => Some(format!("http://{}", s.endpoint)),
            _ => None,
        };
    }
    let kind = Kind::from_key(kind)?;
    let v = match (kind, attr) {
        (_, "name") if kind != Kind::Database => name.to_owned(),
        (Kind::Secret, "arn") => secret_arn(stack, name),
        (Kind::Queue, "arn") => format!("arn:aws:sqs:{region}:{account}:{name}"),
        (Kind::Queue, "url") => format!("http://{}/{account}/{name}", s.endpoint),
        (Kind::Function, "arn") => format!("arn:aws:lambda:{region}:{account}:function:{name}"),
        (Kind::Function, "role_arn") => {
            format!("arn:aws:iam::{account}:role/{}", function_role(stack, name))
        }
        (Kind::Table, "arn") => format!("arn:aws:dynamodb:{region}:{account}:table/{name}"),
        (Kind::User, "arn") => format!("arn:aws:iam::{account}:user/{name}"),
        (Kind::Role, "arn") => format!("arn:aws:iam::{account}:role/{name}"),
        (Kind::Proxy, "resource_id") => proxy_resource_id(stack, name),
        (Kind::Proxy, "arn") => format!(
            "arn:aws:rds:{region}:{account}:db-proxy:{}",
            proxy_resource_id(stack, name)
        ),
        (Kind::Proxy, "dbuser_arn") => format!(
            "arn:aws:rds-db:{region}:{account}:dbuser:{}",
            proxy_resource_id(stack, name)
        ),
        (Kind::Proxy, "host") => listeners::proxy_listen(stack, name)?.ip().to_string(),
        (Kind::Proxy, "port") => listeners::proxy_listen(stack, name)?.port().to_string(),
        (Kind::Proxy, "endpoint") => listeners::proxy_listen(stack, name)?.to_string(),
        (Kind::Api, "id") => api_id(stack, name),
        // What `execute-api:Invoke` policies name: append `/{stage}/{METHOD}/{path}`.
        (Kind::Api, "execution_arn") => format!(
            "arn:aws:execute-api:{region}:{account}:{}",
            api_id(stack, name)
        ),
        (Kind::Api, "endpoint") => listeners::api_listen(stack, name)?.to_string(),
        (Kind::Api, "url") => format!("http://{}", listeners::api_listen(stack, name)?),
        _ => return None,
    };
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_stable_and_shaped_like_aws() {
        let stack = Stack::default();
        let id = proxy_resource_id(&stack, "main");
        assert_eq!(id.len(), 21);
        assert_eq!(id, proxy_resource_id(&stack, "main"));
        assert_ne!(id, proxy_resource_id(&stack, "other"));
        assert_eq!(api_id(&stack, "a").len(), 10);
        let arn = secret_arn(&stack, "db-app");
        assert!(arn.starts_with("arn:aws:secretsmanager:us-east-1:000000000000:secret:db-app-"));
        assert_eq!(
            arn.len(),
            "arn:aws:secretsmanager:us-east-1:000000000000:secret:db-app-".len() + 6
        );
        assert_eq!(
            derived(&stack, "queues", "q", "url").as_deref(),
            Some("http://127.0.0.1:4566/000000000000/q")
        );
    }
}
