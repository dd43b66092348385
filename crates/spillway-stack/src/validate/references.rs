//! `${kind.name.attr}` references and listener clashes.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::{Checker, exists};
use crate::diagnostic::{FieldPath, Segment};
use crate::listeners;
use crate::load::FoundRef;
use crate::model::*;
use crate::resource::{Kind, ResourceId, STACK_ATTRIBUTES};

/// Fields typed [`Template`]: the only places a `${kind.name.attr}` reference may appear.
/// `*` matches any key and `[]` any index.
fn template_field(path: &FieldPath) -> bool {
    const POLICY: &[&str] = &[
        "policies.[].resources.[]",
        "policies.[].condition.*.*",
        "policies.[].condition.*.*.[]",
        "policies.[].statement.[].Action",
        "policies.[].statement.[].Action.[]",
        "policies.[].statement.[].NotAction",
        "policies.[].statement.[].NotAction.[]",
        "policies.[].statement.[].Resource",
        "policies.[].statement.[].Resource.[]",
        "policies.[].statement.[].NotResource",
        "policies.[].statement.[].NotResource.[]",
        "policies.[].statement.[].Condition.*.*",
        "policies.[].statement.[].Condition.*.*.[]",
    ];
    const FIELDS: &[&str] = &[
        "databases.*.url",
        "databases.*.replicas.[]",
        "secrets.*.password",
        "secrets.*.extra.*",
        "proxies.*.init_query",
        "functions.*.environment.*",
        "apis.*.routes.[].http",
        "apis.*.routes.[].parameters.*",
        "apis.*.stages.*.variables.*",
        "apis.*.api_keys.*.value",
        "users.*.secret_access_key",
    ];
    let segs = &path.0;
    let matches = |pattern: &str, segs: &[Segment]| {
        let pat: Vec<&str> = pattern.split('.').collect();
        pat.len() == segs.len()
            && pat.iter().zip(segs).all(|(p, s)| match (p, s) {
                (&"[]", Segment::Index(_)) => true,
                (&"*", Segment::Key(_)) => true,
                (lit, Segment::Key(k)) => lit == k,
                _ => false,
            })
    };
    if FIELDS.iter().any(|p| matches(p, segs)) {
        return true;
    }
    let owner = matches!(segs.first(), Some(Segment::Key(k)) if ["functions", "users", "roles"].contains(&k.as_str()));
    owner && segs.len() > 2 && POLICY.iter().any(|p| matches(p, &segs[2..]))
}

pub(super) fn check_references(c: &mut Checker<'_>, stack: &Stack, refs: &[FoundRef]) {
    for r in refs {
        if !template_field(&r.path) {
            c.err(
                r.path.clone(),
                "references (${...}) are not allowed in this field; only ${env:NAME} is",
            );
            continue;
        }
        let shown = if r.kind == "stack" {
            format!("${{stack.{}}}", r.attr)
        } else {
            format!("${{{}.{}.{}}}", r.kind, r.name, r.attr)
        };
        if r.kind == "stack" {
            if !STACK_ATTRIBUTES.contains(&r.attr.as_str()) {
                c.err(
                    r.path.clone(),
                    format!(
                        "{shown}: the stack has no attribute {:?}; it has {}",
                        r.attr,
                        STACK_ATTRIBUTES.join(", ")
                    ),
                );
            }
            continue;
        }
        let Some(kind) = Kind::from_key(&r.kind) else {
            let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.key()).collect();
            c.err(
                r.path.clone(),
                format!(
                    "{shown}: unknown resource kind {:?}; expected stack or one of {}",
                    r.kind,
                    kinds.join(", ")
                ),
            );
            continue;
        };
        if !exists(stack, kind, &r.name) {
            c.err(
                r.path.clone(),
                format!("{shown}: no {} named {:?}", kind.singular(), r.name),
            );
            continue;
        }
        if !kind.attributes().contains(&r.attr.as_str()) {
            c.err(
                r.path.clone(),
                format!(
                    "{shown}: a {} has no attribute {:?}; it has {}",
                    kind.singular(),
                    r.attr,
                    kind.attributes().join(", ")
                ),
            );
            continue;
        }
        if let Some((owner_kind, owner_name)) = r.path.resource()
            && let Some(owner_kind) = Kind::from_key(owner_kind)
        {
            let from = ResourceId::new(owner_kind, owner_name);
            c.edges
                .entry(from)
                .or_default()
                .push((ResourceId::new(kind, &r.name), r.path.clone()));
        }
    }
}

pub(super) fn check_listeners(c: &mut Checker<'_>, stack: &Stack) {
    let mut seen: HashMap<SocketAddr, FieldPath> = HashMap::new();
    for (addr, path) in listeners::all(stack) {
        if addr.port() == 0 {
            continue; // "any free port" never clashes
        }
        if let Some(first) = seen.get(&addr) {
            c.err(path.clone(), format!("{addr} is also used by {first}"));
        } else {
            seen.insert(addr, path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field path whose schema type is `Template`, with `*` for map keys and `[]` for items.
    fn template_paths() -> Vec<String> {
        let schema = serde_json::to_value(schemars::schema_for!(Stack)).unwrap_or_default();
        let defs = schema["definitions"].clone();
        let mut out = Vec::new();
        walk(&schema, &defs, &mut Vec::new(), &mut out);
        out.sort();
        out.dedup();
        out
    }

    fn walk(
        node: &serde_json::Value,
        defs: &serde_json::Value,
        path: &mut Vec<String>,
        out: &mut Vec<String>,
    ) {
        if path.len() > 12 {
            return;
        }
        if let Some(r) = node["$ref"].as_str() {
            let name = r.trim_start_matches("#/definitions/");
            if name == "Template" {
                out.push(path.join("."));
                return;
            }
            return walk(&defs[name], defs, path, out);
        }
        for key in ["anyOf", "oneOf", "allOf"] {
            for alt in node[key].as_array().into_iter().flatten() {
                walk(alt, defs, path, out);
            }
        }
        if let Some(props) = node["properties"].as_object() {
            for (k, v) in props {
                path.push(k.clone());
                walk(v, defs, path, out);
                path.pop();
            }
        }
        if node["additionalProperties"].is_object() {
            path.push("*".into());
            walk(&node["additionalProperties"], defs, path, out);
            path.pop();
        }
        if node["items"].is_object() {
            path.push("[]".into());
            walk(&node["items"], defs, path, out);
            path.pop();
        }
    }

    fn concrete(pattern: &str) -> FieldPath {
        FieldPath(
            pattern
                .split('.')
                .map(|s| match s {
                    "[]" => Segment::Index(0),
                    "*" => Segment::Key("x".into()),
                    k => Segment::Key(k.into()),
                })
                .collect(),
        )
    }

    #[test]
    fn references_are_allowed_exactly_where_the_schema_says_template() {
        let paths = template_paths();
        assert!(paths.len() > 20, "{paths:?}");
        for p in &paths {
            assert!(
                template_field(&concrete(p)),
                "{p} is a Template in the model but refused by template_field"
            );
        }
        // And nothing that is not a Template is accepted.
        for p in [
            "databases.x.name",
            "queues.x.dead_letter.queue",
            "functions.x.handler",
            "apis.x.routes.[].route",
            "proxies.x.database",
        ] {
            assert!(
                !template_field(&concrete(p)),
                "{p} is accepted but is not a Template"
            );
        }
    }
}
