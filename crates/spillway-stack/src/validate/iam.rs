//! Users, roles and IAM policy documents (inline or in JSON files).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::Checker;
use crate::diagnostic::{Diagnostic, FieldPath};
use crate::model::*;

pub(super) fn check_identities(c: &mut Checker<'_>, stack: &Stack) {
    for (name, u) in &stack.users {
        let at = |k: &str| FieldPath::of(&["users", name, k]);
        if let Some(id) = &u.access_key_id
            && (!(16..=128).contains(&id.len()) || !id.chars().all(|ch| ch.is_ascii_alphanumeric()))
        {
            c.err(at("access_key_id"), "expected 16-128 letters and digits");
        }
        check_policies(c, &at("policies"), &u.policies);
    }
    let mut ids = HashMap::new();
    for (name, u) in &stack.users {
        if let Some(id) = &u.access_key_id
            && let Some(other) = ids.insert(id.clone(), name.clone())
        {
            c.err(
                FieldPath::of(&["users", name, "access_key_id"]),
                format!("the same access key id as users.{other}"),
            );
        }
    }
    for (name, r) in &stack.roles {
        let at = |k: &str| FieldPath::of(&["roles", name, k]);
        for (i, t) in r.trusted.iter().enumerate() {
            if let Err(why) = trusted_principal(stack, t) {
                c.err(at("trusted").index(i), why);
            }
        }
        c.duration(
            at("max_session_duration"),
            r.max_session_duration,
            900,
            43_200,
        );
        check_policies(c, &at("policies"), &r.policies);
    }
}

/// What a role's `trusted` entry names: `users.NAME`, `roles.NAME`, or the IAM ARN of one of
/// the stack's users or roles. A bare name is refused: a user and a role may share it, and a
/// trust policy that cannot say which it means is the kind of mistake that grants too much.
pub fn trusted_principal(stack: &Stack, t: &str) -> Result<TrustedPrincipal, String> {
    let account = &stack.stack.account;
    let (kind, name) = if let Some(rest) = t.strip_prefix("arn:") {
        let mut parts = rest.splitn(5, ':');
        let (partition, service, region, acct, resource) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        if partition != "aws" || service != "iam" || !region.is_empty() {
            return Err(format!(
                "expected an IAM user or role ARN like \"arn:aws:iam::{account}:user/NAME\", found {t:?}"
            ));
        }
        if acct != account {
            return Err(format!(
                "{t:?} is in account {acct}; only this stack's account ({account}) has principals"
            ));
        }
        match resource.split_once('/') {
            Some(("user", n)) => ("users", n),
            Some(("role", n)) => ("roles", n),
            _ => {
                return Err(format!(
                    "expected an IAM user or role ARN like \"arn:aws:iam::{account}:user/NAME\", found {t:?}"
                ));
            }
        }
    } else {
        match t.split_once('.') {
            Some((kind @ ("users" | "roles"), n)) => (kind, n),
            _ => {
                return Err(format!(
                    "{t:?} does not say whether it is a user or a role: write \"users.{t}\" or \"roles.{t}\" (or an IAM ARN)"
                ));
            }
        }
    };
    let exists = match kind {
        "users" => stack.users.contains_key(name),
        _ => stack.roles.contains_key(name),
    };
    if !exists {
        return Err(format!("no {} named {name:?}", &kind[..kind.len() - 1]));
    }
    Ok(match kind {
        "users" => TrustedPrincipal::User(name.to_owned()),
        _ => TrustedPrincipal::Role(name.to_owned()),
    })
}

/// A principal a role trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustedPrincipal {
    User(String),
    Role(String),
}

/// Condition operators IAM knows (each may also take an `IfExists` suffix and a
/// `ForAnyValue:`/`ForAllValues:` prefix).
const CONDITION_OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
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
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Null",
];

fn operator_known(op: &str) -> bool {
    let op = op
        .strip_prefix("ForAnyValue:")
        .or_else(|| op.strip_prefix("ForAllValues:"))
        .unwrap_or(op);
    let op = op.strip_suffix("IfExists").unwrap_or(op);
    CONDITION_OPERATORS.contains(&op)
}

fn action_ok(a: &str) -> bool {
    a == "*"
        || a.split_once(':').is_some_and(|(svc, act)| {
            !svc.is_empty()
                && svc
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
                && !act.is_empty()
                && act
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '*' || ch == '?')
        })
}

type Conditions = BTreeMap<String, BTreeMap<String, StringOrList>>;

pub(super) fn check_conditions(c: &mut Checker<'_>, path: &FieldPath, cond: &Conditions) {
    for op in cond.keys() {
        if !operator_known(op) {
            c.err_key(
                path.key(op.clone()),
                format!("unknown condition operator {op:?}"),
            );
        }
    }
}

pub(super) fn check_policies(c: &mut Checker<'_>, path: &FieldPath, policies: &[PolicyEntry]) {
    for (i, p) in policies.iter().enumerate() {
        let at = path.index(i);
        let shorthand = !p.allow.is_empty() || !p.deny.is_empty();
        let forms = [shorthand, p.file.is_some(), !p.statement.is_empty()];
        if forms.iter().filter(|b| **b).count() != 1 {
            c.err(
                at.clone(),
                "a policy is exactly one of: allow/deny with resources, file, or statement",
            );
            continue;
        }
        if shorthand {
            for (field, actions) in [("allow", &p.allow), ("deny", &p.deny)] {
                for (j, a) in actions.iter().enumerate() {
                    if !action_ok(a) {
                        c.err(at.key(field).index(j), format!("expected an action like \"sqs:SendMessage\" or \"rds-db:*\", found {a:?}"));
                    }
                }
            }
            if p.resources.is_empty() {
                c.err_key(
                    at.clone(),
                    "a shorthand policy needs resources (use [\"*\"] for all)",
                );
            }
            if let Some(cond) = &p.condition {
                check_conditions(c, &at.key("condition"), cond);
            }
        } else if !p.resources.is_empty() || p.condition.is_some() {
            c.err(
                at.clone(),
                "resources and condition belong to the allow/deny shorthand",
            );
        }
        for (j, s) in p.statement.iter().enumerate() {
            check_statement(c, &at.key("statement").index(j), s, None);
        }
        if let Some(file) = &p.file {
            load_policy_file(c, &at.key("file"), file);
        }
    }
}

pub(super) fn check_statement(
    c: &mut Checker<'_>,
    at: &FieldPath,
    s: &Statement,
    file: Option<&Path>,
) {
    let mut problems = Vec::new();
    if s.action.is_some() == s.not_action.is_some() {
        problems.push((
            at.clone(),
            "a statement has exactly one of Action and NotAction".to_owned(),
        ));
    }
    if s.resource.is_some() == s.not_resource.is_some() {
        problems.push((
            at.clone(),
            "a statement has exactly one of Resource and NotResource".to_owned(),
        ));
    }
    for (key, list) in [("Action", &s.action), ("NotAction", &s.not_action)] {
        for a in list.iter().flat_map(StringOrList::iter) {
            if !action_ok(a.as_str()) {
                problems.push((
                    at.key(key),
                    format!(
                        "expected an action like \"sqs:SendMessage\", found {:?}",
                        a.as_str()
                    ),
                ));
            }
        }
    }
    if let Some(cond) = &s.condition {
        for op in cond.keys() {
            if !operator_known(op) {
                problems.push((
                    at.key("Condition").key(op.clone()),
                    format!("unknown condition operator {op:?}"),
                ));
            }
        }
    }
    for (path, msg) in problems {
        match file {
            // Inside a JSON file the TOML locator cannot help; name the file and the statement.
            Some(f) => c
                .diags
                .push(Diagnostic::new(f, None, Some(path.to_string()), msg)),
            None => c.err(path, msg),
        }
    }
}

fn load_policy_file(c: &mut Checker<'_>, at: &FieldPath, file: &Path) {
    let full = c.dir.join(file);
    let text = match std::fs::read_to_string(&full) {
        Ok(t) => t,
        Err(e) => {
            return c.err(
                at.clone(),
                format!("cannot read policy file {}: {e}", full.display()),
            );
        }
    };
    let mut de = serde_json::Deserializer::from_str(&text);
    match serde_path_to_error::deserialize::<_, PolicyDocument>(&mut de) {
        Ok(doc) => {
            for (j, s) in doc.statement.as_slice().iter().enumerate() {
                check_statement(c, &FieldPath::of(&["Statement"]).index(j), s, Some(&full));
            }
            c.policy_files.insert(file.to_owned(), doc);
        }
        Err(e) => {
            let inner = e.inner();
            let position = Some(crate::diagnostic::Position {
                line: inner.line(),
                column: inner.column(),
            });
            let field = e.path().to_string();
            let message = inner.to_string();
            // serde_json appends " at line L column C"; the position already says it.
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            c.diags.push(Diagnostic::new(
                &full,
                position,
                Some(field).filter(|f| f != "."),
                message,
            ));
        }
    }
}
