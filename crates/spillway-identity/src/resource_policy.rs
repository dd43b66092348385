//! Resource-based policies (an SQS queue's `Policy`; later other services' resource policies),
//! evaluated with the caller's identity policies as AWS documents for a request within one
//! account: an explicit Deny in either wins; otherwise an Allow in either grants (an Allow in
//! the resource policy needs no identity-policy Allow); otherwise the request is denied. A
//! session policy still bounds an assumed-role session, whichever policy allowed.
//!
//! A resource policy's statements are identity statements plus `Principal` or `NotPrincipal`.
//! Principals match as AWS matches them: `"*"` (or `{"AWS": "*"}`) everyone; a user or role
//! ARN that principal (a role's ARN also its sessions); an account (`"123456789012"` or
//! `arn:aws:iam::123456789012:root`) only the account itself: AWS delegates such a grant to the
//! account, whose identity policies must then allow its users. Service and federated
//! principals never match a signed caller.

use crate::policy::{self, Decision, Effect, Request, Statement};
use crate::principals::Principal;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principals {
    /// Listed AWS principals (ARNs or account ids); `*` among them matches everyone.
    Listed(Vec<String>),
    /// `NotPrincipal`: everyone but those listed.
    AllBut(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceStatement {
    pub principals: Principals,
    pub statement: Statement,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourcePolicy {
    pub statements: Vec<ResourceStatement>,
}

/// The AWS principals of a `Principal` value: `"*"`, or `{"AWS": "..." | [...]}` (other keys,
/// `Service` and `Federated`, name principals that never sign requests here).
fn principals(value: &serde_json::Value) -> Result<Vec<String>, String> {
    use serde_json::Value;
    let strings = |v: &Value| -> Result<Vec<String>, String> {
        match v {
            Value::String(s) => Ok(vec![s.clone()]),
            Value::Array(a) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_owned)
                        .ok_or("a principal must be a string".to_owned())
                })
                .collect(),
            _ => Err("a principal must be a string or a list of strings".into()),
        }
    };
    match value {
        Value::String(s) if s == "*" => Ok(vec!["*".into()]),
        Value::Object(map) => {
            if let Some(k) = map.keys().find(|k| {
                !matches!(
                    k.as_str(),
                    "AWS" | "Service" | "Federated" | "CanonicalUser"
                )
            }) {
                return Err(format!("unknown principal type {k}"));
            }
            for v in map.values() {
                strings(v)?;
            }
            map.get("AWS").map_or(Ok(Vec::new()), strings)
        }
        _ => Err("Principal must be \"*\" or an object".into()),
    }
}

impl ResourcePolicy {
    /// Parses a resource policy document. Each statement needs exactly one of `Principal` and
    /// `NotPrincipal`; the rest is checked as an identity statement is.
    pub fn parse(text: &str) -> Result<ResourcePolicy, String> {
        use serde_json::Value;
        let mut doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let obj = doc
            .as_object_mut()
            .ok_or("the policy is not a JSON object")?;
        let list = match obj.get_mut("Statement") {
            Some(Value::Array(a)) => std::mem::take(a),
            Some(s @ Value::Object(_)) => vec![s.take()],
            _ => return Err("Statement must be an object or a list".into()),
        };
        let mut statements = Vec::new();
        for mut s in list {
            let s_obj = s.as_object_mut().ok_or("a statement is not an object")?;
            let principals = match (s_obj.remove("Principal"), s_obj.remove("NotPrincipal")) {
                (Some(p), None) => Principals::Listed(principals(&p)?),
                (None, Some(p)) => Principals::AllBut(principals(&p)?),
                _ => {
                    return Err(
                        "a statement needs exactly one of Principal and NotPrincipal".into(),
                    );
                }
            };
            // The rest is an identity statement: parse it as a one-statement document.
            let one = serde_json::json!({"Version": "2012-10-17", "Statement": [s]}).to_string();
            let mut parsed = policy::parse_document(&one)?;
            let statement = parsed.statements.pop().ok_or("an empty statement")?;
            statements.push(ResourceStatement {
                principals,
                statement,
            });
        }
        Ok(ResourcePolicy { statements })
    }
}

/// Whether `entry` (an ARN, an account id or `*`) names `principal_arn`.
fn names(entry: &str, principal_arn: &str) -> bool {
    if entry == "*" || entry == principal_arn {
        return true;
    }
    let account = |arn: &str| arn.split(':').nth(4).map(str::to_owned);
    if entry.len() == 12 && entry.bytes().all(|b| b.is_ascii_digit()) {
        return principal_arn == format!("arn:aws:iam::{entry}:root");
    }
    // A role's ARN names its sessions too.
    if let Some(role) = entry
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.split_once(":role/"))
        && let Some((acct, session_role)) = principal_arn
            .strip_prefix("arn:aws:sts::")
            .and_then(|rest| rest.split_once(":assumed-role/"))
    {
        let role_name = role.1.rsplit('/').next().unwrap_or(role.1);
        return role.0 == acct
            && session_role.split('/').next() == Some(role_name)
            && account(entry) == account(principal_arn);
    }
    false
}

impl Principals {
    pub fn matches(&self, principal_arn: &str) -> bool {
        match self {
            Principals::Listed(list) => list.iter().any(|e| names(e, principal_arn)),
            Principals::AllBut(list) => !list.iter().any(|e| names(e, principal_arn)),
        }
    }
}

/// Decides `request` for `principal` with the resource's policy, if it has one.
pub fn evaluate(
    principal: &Principal,
    resource: Option<&ResourcePolicy>,
    request: &Request<'_>,
) -> Decision {
    let identity = principal.authorize(request);
    let Some(resource) = resource else {
        return identity;
    };
    if matches!(identity, Decision::ExplicitDeny { .. }) {
        return identity;
    }
    let applying = |effect: Effect| {
        resource.statements.iter().enumerate().find(|(_, s)| {
            s.statement.effect == effect
                && s.principals.matches(&principal.arn)
                && policy::applies(&s.statement, request)
        })
    };
    let name = |i: usize, s: &ResourceStatement| {
        s.statement
            .sid
            .clone()
            .unwrap_or_else(|| format!("resource policy statement {}", i + 1))
    };
    if let Some((i, s)) = applying(Effect::Deny) {
        return Decision::ExplicitDeny {
            statement: name(i, s),
        };
    }
    if identity.allowed() {
        return identity;
    }
    let Some((i, s)) = applying(Effect::Allow) else {
        return Decision::ImplicitDeny;
    };
    if let Some(session) = &principal.session_policy
        && !policy::evaluate(std::slice::from_ref(session), None, request).allowed()
    {
        return Decision::ImplicitDeny;
    }
    Decision::Allow {
        statement: name(i, s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    const USER: &str = "arn:aws:iam::123456789012:user/reader";
    const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:q";

    fn principal(policies: Vec<Policy>) -> Principal {
        Principal {
            arn: USER.into(),
            policies,
            session_policy: None,
        }
    }

    fn decide(p: &Principal, resource: &str, action: &str) -> Decision {
        let policy = ResourcePolicy::parse(resource).unwrap_or_else(|e| panic!("{e}"));
        evaluate(p, Some(&policy), &Request::new(action, QUEUE, &p.arn, 0))
    }

    #[test]
    fn a_resource_allow_grants_without_an_identity_allow() {
        let p = principal(Vec::new());
        let doc = format!(
            r#"{{"Statement":[{{"Sid":"s","Effect":"Allow","Principal":{{"AWS":"{USER}"}},"Action":"SQS:SendMessage","Resource":"{QUEUE}"}}]}}"#
        );
        assert!(decide(&p, &doc, "sqs:SendMessage").allowed());
        assert!(!decide(&p, &doc, "sqs:ReceiveMessage").allowed());
    }

    #[test]
    fn a_resource_deny_beats_an_identity_allow() {
        let p = principal(vec![Policy {
            statements: vec![Statement::simple(Effect::Allow, "sqs:*", "*")],
        }]);
        let doc = format!(
            r#"{{"Statement":{{"Effect":"Deny","Principal":"*","Action":"sqs:SendMessage","Resource":"{QUEUE}","Condition":{{"Bool":{{"aws:SecureTransport":"true"}}}}}}}}"#
        );
        let denied = |secure: &str| {
            let policy = ResourcePolicy::parse(&doc).unwrap_or_else(|e| panic!("{e}"));
            let request =
                Request::new("sqs:SendMessage", QUEUE, USER, 0).with("aws:SecureTransport", secure);
            evaluate(&p, Some(&policy), &request)
        };
        assert!(matches!(denied("true"), Decision::ExplicitDeny { .. }));
        assert!(denied("false").allowed());
    }

    #[test]
    fn principals_match_as_aws_matches_them() {
        assert!(names("*", USER));
        assert!(names(USER, USER));
        assert!(!names("123456789012", USER));
        assert!(names("123456789012", "arn:aws:iam::123456789012:root"));
        assert!(names(
            "arn:aws:iam::123456789012:role/app",
            "arn:aws:sts::123456789012:assumed-role/app/s1"
        ));
        assert!(!names(
            "arn:aws:iam::123456789012:role/app",
            "arn:aws:sts::123456789012:assumed-role/other/s1"
        ));
        assert!(Principals::AllBut(vec![USER.into()]).matches("arn:aws:iam::123456789012:user/x"));
        assert!(
            ResourcePolicy::parse(
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
            )
            .is_err()
        );
        assert!(ResourcePolicy::parse(r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"*","Resource":"*"}]}"#).is_ok());
    }
}
