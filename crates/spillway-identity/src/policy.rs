//! IAM policy evaluation, as AWS documents it for identity policies within one account: an
//! explicit Deny in any policy wins; otherwise an Allow is needed, from the identity policies
//! and, when the principal is an STS session with a session policy, from that policy too (the
//! effective permissions are the intersection); otherwise the request is implicitly denied.
//!
//! Statements match on `Action`/`NotAction` (case-insensitive, `*` and `?` wildcards),
//! `Resource`/`NotResource` (case-sensitive, wildcards) and `Condition` with the common
//! operators. A condition operator spillway does not know makes an Allow statement not apply and
//! a Deny statement apply: unknown conditions fail closed.

use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// Values a statement lists, or all values but those (`NotAction`, `NotResource`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    Any(Vec<String>),
    AllBut(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// As written, e.g. `StringEqualsIfExists`.
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub action: Matcher,
    pub resource: Matcher,
    pub conditions: Vec<Condition>,
}

impl Statement {
    /// One action on one resource pattern, no conditions.
    pub fn simple(effect: Effect, action: &str, resource: &str) -> Self {
        Self {
            sid: None,
            effect,
            action: Matcher::Any(vec![action.to_owned()]),
            resource: Matcher::Any(vec![resource.to_owned()]),
            conditions: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

/// Parses an IAM policy document given at run time (an STS session policy). Unknown keys and
/// wrong shapes are errors, as IAM's `MalformedPolicyDocument`.
pub fn parse_document(text: &str) -> Result<Policy, String> {
    use serde_json::Value;
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let obj = doc.as_object().ok_or("the policy is not a JSON object")?;
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "Version" | "Id" | "Statement"))
    {
        return Err(format!("unknown key {k}"));
    }
    let list = |v: &Value, what: &str| -> Result<Vec<String>, String> {
        match v {
            Value::String(s) => Ok(vec![s.clone()]),
            Value::Array(a) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_owned)
                        .ok_or(format!("{what} must hold strings"))
                })
                .collect(),
            _ => Err(format!("{what} must be a string or a list of strings")),
        }
    };
    let statements = match obj.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(s @ Value::Object(_)) => vec![s.clone()],
        _ => return Err("Statement must be an object or a list".into()),
    };
    let mut out = Vec::new();
    for s in &statements {
        let s = s.as_object().ok_or("a statement is not an object")?;
        if let Some(k) = s.keys().find(|k| {
            !matches!(
                k.as_str(),
                "Sid"
                    | "Effect"
                    | "Action"
                    | "NotAction"
                    | "Resource"
                    | "NotResource"
                    | "Condition"
            )
        }) {
            return Err(format!("unknown statement key {k}"));
        }
        let effect = match s.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            _ => return Err("Effect must be Allow or Deny".into()),
        };
        let pick = |yes: &str, no: &str| -> Result<Matcher, String> {
            match (s.get(yes), s.get(no)) {
                (Some(v), None) => Ok(Matcher::Any(list(v, yes)?)),
                (None, Some(v)) => Ok(Matcher::AllBut(list(v, no)?)),
                _ => Err(format!("a statement needs exactly one of {yes} and {no}")),
            }
        };
        let mut conditions = Vec::new();
        if let Some(c) = s.get("Condition") {
            let c = c.as_object().ok_or("Condition must be an object")?;
            for (operator, keys) in c {
                if !known_operator(operator) {
                    return Err(format!("unknown condition operator {operator}"));
                }
                let keys = keys
                    .as_object()
                    .ok_or("a condition must map keys to values")?;
                for (key, values) in keys {
                    conditions.push(Condition {
                        operator: operator.clone(),
                        key: key.clone(),
                        values: list(values, "a condition value")?,
                    });
                }
            }
        }
        out.push(Statement {
            sid: s.get("Sid").and_then(Value::as_str).map(str::to_owned),
            effect,
            action: pick("Action", "NotAction")?,
            resource: pick("Resource", "NotResource")?,
            conditions,
        });
    }
    Ok(Policy { statements: out })
}

/// What is asked: an action on a resource, with the request's context keys.
pub struct Request<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    principal_arn: &'a str,
    now: i64,
    /// Keys added with [`Request::with`], as given.
    extra: Vec<(&'a str, &'a str)>,
    /// Condition keys (lower-cased names) → values, built when a condition first asks: most
    /// statements have none, and building the map for every request was a dozen allocations
    /// and hash insertions on each authorization (visible in a DynamoDB PutItem profile).
    context: std::cell::OnceCell<HashMap<String, Vec<String>>>,
}

impl<'a> Request<'a> {
    /// A request with the global keys every request has.
    pub fn new(action: &'a str, resource: &'a str, principal_arn: &'a str, now: i64) -> Self {
        Self {
            action,
            resource,
            principal_arn,
            now,
            extra: Vec::new(),
            context: std::cell::OnceCell::new(),
        }
    }

    pub fn with(mut self, key: &'a str, value: &'a str) -> Self {
        self.extra.push((key, value));
        self.context = std::cell::OnceCell::new();
        self
    }

    /// The condition keys and their values.
    pub fn context(&self) -> &HashMap<String, Vec<String>> {
        self.context.get_or_init(|| {
            let mut context = HashMap::new();
            context.insert(
                "aws:principalarn".into(),
                vec![self.principal_arn.to_owned()],
            );
            context.insert("aws:currenttime".into(), vec![self.now.to_string()]);
            context.insert("aws:epochtime".into(), vec![self.now.to_string()]);
            for (k, v) in &self.extra {
                context
                    .entry(k.to_ascii_lowercase())
                    .or_insert_with(Vec::new)
                    .push((*v).to_owned());
            }
            context
        })
    }
}

/// The outcome, naming the deciding statement (by Sid, else by position) for `iam simulate`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow { statement: String },
    ExplicitDeny { statement: String },
    ImplicitDeny,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }
}

/// `*` matches any run of characters, `?` any one character.
pub fn wildcard_match(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let norm = |s: &str| -> Vec<char> {
        if ignore_case {
            s.to_lowercase().chars().collect()
        } else {
            s.chars().collect()
        }
    };
    let (p, v) = (norm(pattern), norm(value));
    // Iterative matcher with single-star backtracking: linear in practice, no recursion depth.
    let (mut pi, mut vi) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn matches(m: &Matcher, value: &str, ignore_case: bool) -> bool {
    match m {
        Matcher::Any(ps) => ps.iter().any(|p| wildcard_match(p, value, ignore_case)),
        Matcher::AllBut(ps) => !ps.iter().any(|p| wildcard_match(p, value, ignore_case)),
    }
}

/// Whether one condition holds; `None` when the operator is unknown.
fn condition_holds(c: &Condition, context: &HashMap<String, Vec<String>>) -> Option<bool> {
    let (op, if_exists) = match c.operator.strip_suffix("IfExists") {
        Some(op) => (op, true),
        None => (c.operator.as_str(), false),
    };
    if !OPERATORS.contains(&op) {
        return None;
    }
    let present = context.get(&c.key.to_ascii_lowercase());
    if op == "Null" {
        // Null: "true" means the key must be absent.
        let want_absent = c.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
        return Some(want_absent == present.is_none());
    }
    let negated = op.contains("Not");
    let Some(actual) = present else {
        // A missing key: negated operators hold, positive ones do not, IfExists always holds.
        return Some(if_exists || negated);
    };
    let num = |s: &str| s.parse::<f64>().ok();
    let date = |s: &str| crate::time::parse_iso8601(s);
    let any = |f: &dyn Fn(&str, &str) -> bool| {
        actual
            .iter()
            .any(|a| c.values.iter().any(|v| f(a.as_str(), v.as_str())))
    };
    let cmp_num = |f: fn(f64, f64) -> bool| {
        any(&|a, v| matches!((num(a), num(v)), (Some(a), Some(v)) if f(a, v)))
    };
    let cmp_date = |f: fn(i64, i64) -> bool| {
        any(&|a, v| matches!((date(a), date(v)), (Some(a), Some(v)) if f(a, v)))
    };
    Some(match op {
        "StringEquals" | "ArnEquals" => any(&|a, v| a == v),
        "StringNotEquals" | "ArnNotEquals" => !any(&|a, v| a == v),
        "StringEqualsIgnoreCase" => any(&|a, v| a.eq_ignore_ascii_case(v)),
        "StringNotEqualsIgnoreCase" => !any(&|a, v| a.eq_ignore_ascii_case(v)),
        "StringLike" | "ArnLike" => any(&|a, v| wildcard_match(v, a, false)),
        "StringNotLike" | "ArnNotLike" => !any(&|a, v| wildcard_match(v, a, false)),
        "Bool" => any(&|a, v| a.eq_ignore_ascii_case(v)),
        "NumericEquals" => cmp_num(|a, v| a == v),
        "NumericNotEquals" => !cmp_num(|a, v| a == v),
        "NumericLessThan" => cmp_num(|a, v| a < v),
        "NumericLessThanEquals" => cmp_num(|a, v| a <= v),
        "NumericGreaterThan" => cmp_num(|a, v| a > v),
        "NumericGreaterThanEquals" => cmp_num(|a, v| a >= v),
        "DateEquals" => cmp_date(|a, v| a == v),
        "DateNotEquals" => !cmp_date(|a, v| a == v),
        "DateLessThan" => cmp_date(|a, v| a < v),
        "DateLessThanEquals" => cmp_date(|a, v| a <= v),
        "DateGreaterThan" => cmp_date(|a, v| a > v),
        "DateGreaterThanEquals" => cmp_date(|a, v| a >= v),
        _ => return None,
    })
}

const OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "ArnEquals",
    "ArnNotEquals",
    "ArnLike",
    "ArnNotLike",
    "Bool",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Null",
];

/// The operators [`evaluate`] understands (for validating policies when they are loaded).
pub fn known_operator(op: &str) -> bool {
    OPERATORS.contains(&op.strip_suffix("IfExists").unwrap_or(op))
}

pub(crate) fn applies(s: &Statement, request: &Request<'_>) -> bool {
    if !matches(&s.action, request.action, true) || !matches(&s.resource, request.resource, false) {
        return false;
    }
    s.conditions
        .iter()
        .all(|c| condition_holds(c, request.context()).unwrap_or(s.effect == Effect::Deny))
}

fn name(policy: usize, i: usize, s: &Statement) -> String {
    s.sid
        .clone()
        .unwrap_or_else(|| format!("policy {} statement {}", policy + 1, i + 1))
}

/// Decides `request` for a principal with `identity` policies and an optional session policy.
pub fn evaluate(identity: &[Policy], session: Option<&Policy>, request: &Request<'_>) -> Decision {
    let all = identity.iter().chain(session);
    for (p, policy) in all.enumerate() {
        for (i, s) in policy.statements.iter().enumerate() {
            if s.effect == Effect::Deny && applies(s, request) {
                return Decision::ExplicitDeny {
                    statement: name(p, i, s),
                };
            }
        }
    }
    let allowed_by = |p: usize, policy: &Policy| {
        policy
            .statements
            .iter()
            .enumerate()
            .find(|(_, s)| s.effect == Effect::Allow && applies(s, request))
            .map(|(i, s)| name(p, i, s))
    };
    let Some(statement) = identity
        .iter()
        .enumerate()
        .find_map(|(p, policy)| allowed_by(p, policy))
    else {
        return Decision::ImplicitDeny;
    };
    match session {
        None => Decision::Allow { statement },
        Some(sp) => match allowed_by(identity.len(), sp) {
            Some(_) => Decision::Allow { statement },
            None => Decision::ImplicitDeny,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(effect: Effect, action: Matcher, resource: Matcher) -> Statement {
        Statement {
            sid: None,
            effect,
            action,
            resource,
            conditions: vec![],
        }
    }

    fn any(v: &[&str]) -> Matcher {
        Matcher::Any(v.iter().map(|s| (*s).to_owned()).collect())
    }

    fn all_but(v: &[&str]) -> Matcher {
        Matcher::AllBut(v.iter().map(|s| (*s).to_owned()).collect())
    }

    const NOW: i64 = 1_800_000_000;

    fn decide(policies: &[Policy], session: Option<&Policy>, action: &str, res: &str) -> bool {
        evaluate(
            policies,
            session,
            &Request::new(action, res, "arn:aws:iam::1:user/u", NOW),
        )
        .allowed()
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("s3:Get*", "s3:GetObject", false));
        assert!(wildcard_match("*", "", false));
        assert!(wildcard_match("a?c", "abc", false));
        assert!(!wildcard_match("a?c", "ac", false));
        assert!(wildcard_match("arn:*:db/*/x", "arn:aws:db/a/b/x", false));
        assert!(!wildcard_match("arn:*:db/*/x", "arn:aws:db/a/b/y", false));
        assert!(wildcard_match("SQS:send*", "sqs:SendMessage", true));
        assert!(!wildcard_match("SQS:send*", "sqs:SendMessage", false));
    }

    #[test]
    fn the_policy_matrix() {
        let allow_db = Policy {
            statements: vec![stmt(
                Effect::Allow,
                any(&["rds-db:connect"]),
                any(&["arn:db/*"]),
            )],
        };
        let deny_admin = Policy {
            statements: vec![stmt(Effect::Deny, any(&["*"]), any(&["arn:db/admin"]))],
        };
        // Allow, default deny, explicit deny beats allow.
        assert!(decide(
            std::slice::from_ref(&allow_db),
            None,
            "rds-db:connect",
            "arn:db/app"
        ));
        assert!(!decide(
            std::slice::from_ref(&allow_db),
            None,
            "rds-db:connect",
            "other"
        ));
        assert!(!decide(
            std::slice::from_ref(&allow_db),
            None,
            "sqs:SendMessage",
            "arn:db/app"
        ));
        assert!(!decide(&[], None, "rds-db:connect", "arn:db/app"));
        let both = [allow_db.clone(), deny_admin];
        assert!(!decide(&both, None, "rds-db:connect", "arn:db/admin"));
        assert!(decide(&both, None, "rds-db:connect", "arn:db/app"));
        // Action names are case-insensitive, resources are not.
        assert!(decide(
            std::slice::from_ref(&allow_db),
            None,
            "RDS-DB:Connect",
            "arn:db/app"
        ));
        assert!(!decide(
            std::slice::from_ref(&allow_db),
            None,
            "rds-db:connect",
            "ARN:db/app"
        ));
        // NotAction / NotResource.
        let not_action = Policy {
            statements: vec![stmt(
                Effect::Allow,
                all_but(&["iam:*"]),
                all_but(&["arn:secret"]),
            )],
        };
        assert!(decide(
            std::slice::from_ref(&not_action),
            None,
            "sqs:SendMessage",
            "q"
        ));
        assert!(!decide(
            std::slice::from_ref(&not_action),
            None,
            "iam:CreateUser",
            "q"
        ));
        assert!(!decide(
            &[not_action],
            None,
            "sqs:SendMessage",
            "arn:secret"
        ));
        // Session policies intersect: they narrow, never widen.
        let session = Policy {
            statements: vec![stmt(Effect::Allow, any(&["*"]), any(&["arn:db/tenant-a"]))],
        };
        assert!(decide(
            std::slice::from_ref(&allow_db),
            Some(&session),
            "rds-db:connect",
            "arn:db/tenant-a"
        ));
        assert!(!decide(
            std::slice::from_ref(&allow_db),
            Some(&session),
            "rds-db:connect",
            "arn:db/tenant-b"
        ));
        assert!(!decide(
            &[],
            Some(&session),
            "rds-db:connect",
            "arn:db/tenant-a"
        ));
        let session_deny = Policy {
            statements: vec![stmt(Effect::Deny, any(&["rds-db:*"]), any(&["*"]))],
        };
        assert!(!decide(
            &[allow_db],
            Some(&session_deny),
            "rds-db:connect",
            "arn:db/x"
        ));
    }

    #[test]
    fn conditions() {
        let with = |op: &str, key: &str, vals: &[&str]| Policy {
            statements: vec![Statement {
                conditions: vec![Condition {
                    operator: op.into(),
                    key: key.into(),
                    values: vals.iter().map(|s| (*s).to_owned()).collect(),
                }],
                ..stmt(Effect::Allow, any(&["*"]), any(&["*"]))
            }],
        };
        let req = |extra: &[(&'static str, &'static str)]| {
            let mut r = Request::new("a:b", "r", "arn:aws:iam::1:user/u", NOW);
            for (k, v) in extra {
                r = r.with(k, v);
            }
            r
        };
        let ok = |p: &Policy, r: &Request<'_>| evaluate(std::slice::from_ref(p), None, r).allowed();
        let tag = [("aws:PrincipalTag/team", "db")];
        assert!(ok(
            &with("StringEquals", "aws:PrincipalTag/team", &["db"]),
            &req(&tag)
        ));
        assert!(!ok(
            &with("StringEquals", "aws:PrincipalTag/team", &["web"]),
            &req(&tag)
        ));
        assert!(!ok(
            &with("StringEquals", "aws:PrincipalTag/team", &["db"]),
            &req(&[])
        ));
        assert!(ok(
            &with("StringEqualsIfExists", "aws:PrincipalTag/team", &["db"]),
            &req(&[])
        ));
        assert!(ok(
            &with("StringNotEquals", "aws:PrincipalTag/team", &["web"]),
            &req(&tag)
        ));
        assert!(ok(
            &with("StringLike", "aws:PrincipalArn", &["arn:aws:iam::1:user/*"]),
            &req(&[])
        ));
        assert!(ok(
            &with("ArnLike", "aws:PrincipalArn", &["arn:aws:iam::*:user/u"]),
            &req(&[])
        ));
        assert!(ok(
            &with("Bool", "aws:SecureTransport", &["false"]),
            &req(&[("aws:SecureTransport", "false")])
        ));
        assert!(ok(
            &with("NumericLessThan", "n", &["10"]),
            &req(&[("n", "3")])
        ));
        assert!(!ok(
            &with("NumericLessThan", "n", &["10"]),
            &req(&[("n", "30")])
        ));
        assert!(ok(
            &with("DateLessThan", "aws:CurrentTime", &["2030-01-01T00:00:00Z"]),
            &req(&[])
        ));
        assert!(!ok(
            &with(
                "DateGreaterThan",
                "aws:CurrentTime",
                &["2030-01-01T00:00:00Z"]
            ),
            &req(&[])
        ));
        assert!(ok(
            &with("Null", "aws:PrincipalTag/team", &["true"]),
            &req(&[])
        ));
        assert!(!ok(
            &with("Null", "aws:PrincipalTag/team", &["true"]),
            &req(&tag)
        ));
        // Unknown operators fail closed: an Allow does not apply...
        assert!(!ok(
            &with("StringSortOfEquals", "n", &["1"]),
            &req(&[("n", "1")])
        ));
        // ...and a Deny does.
        let deny = Policy {
            statements: vec![
                stmt(Effect::Allow, any(&["*"]), any(&["*"])),
                Statement {
                    conditions: vec![Condition {
                        operator: "Bogus".into(),
                        key: "n".into(),
                        values: vec![],
                    }],
                    ..stmt(Effect::Deny, any(&["*"]), any(&["*"]))
                },
            ],
        };
        assert!(!ok(&deny, &req(&[])));
        assert!(known_operator("ArnLikeIfExists") && known_operator("Null"));
        assert!(!known_operator("Bogus"));
    }

    #[test]
    fn session_policy_documents_parse_strictly() {
        let p = parse_document(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"rds-db:connect","Resource":["arn:a","arn:b"],"Condition":{"StringEquals":{"aws:PrincipalTag/t":"x"}}}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.statements.len(), 1);
        assert_eq!(p.statements[0].resource, any(&["arn:a", "arn:b"]));
        for bad in [
            "nope",
            "[]",
            r#"{"Statement":[],"Extra":1}"#,
            r#"{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Principal":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bogus":{"k":"v"}}}]}"#,
        ] {
            assert!(parse_document(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_deciding_statement_is_named() {
        let p = Policy {
            statements: vec![Statement {
                sid: Some("ReadOnly".into()),
                ..stmt(Effect::Allow, any(&["x:Get*"]), any(&["*"]))
            }],
        };
        let d = evaluate(&[p], None, &Request::new("x:GetThing", "r", "u", NOW));
        assert_eq!(
            d,
            Decision::Allow {
                statement: "ReadOnly".into()
            }
        );
    }
}
