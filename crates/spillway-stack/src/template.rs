//! `${...}` placeholders inside stack-file strings.
//!
//! Two kinds exist and they are resolved at different times:
//! - `${env:NAME}` (or `${env:NAME:-fallback}`) is replaced while the file is loaded, in every
//!   string of the file, so a stack can take ports, URLs and passwords from the environment;
//! - `${kind.name.attr}` (for example `${proxies.main.port}`) and `${stack.attr}` refer to another
//!   resource. They are checked at validation time (the resource and the attribute must exist, and
//!   references must not form a cycle) and resolved when the stack starts, because some values
//!   (a managed database's port, a generated password) are only known then. They are allowed only
//!   in fields typed [`Template`].
//!
//! `$${` writes a literal `${`.

use std::fmt;

use schemars::JsonSchema;
use schemars::r#gen::SchemaGenerator;
use schemars::schema::{InstanceType, Metadata, Schema, SchemaObject};
use serde::{Deserialize, Serialize};

/// One piece of a string with placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part<'a> {
    Literal(&'a str),
    Env {
        name: &'a str,
        fallback: Option<&'a str>,
    },
    Ref(Reference<'a>),
}

/// A reference to an attribute of a resource (`kind` is `stack` for the stack's own attributes,
/// and then `name` is empty).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub attr: &'a str,
}

impl fmt::Display for Reference<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            write!(f, "${{{}.{}}}", self.kind, self.attr)
        } else {
            write!(f, "${{{}.{}.{}}}", self.kind, self.name, self.attr)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed \"${{\" (write \"$${{\" for a literal \"${{\")")]
    Unclosed,
    #[error("empty placeholder \"${{}}\"")]
    Empty,
    #[error(
        "\"${{{0}}}\" is not a reference: expected ${{env:NAME}}, ${{stack.ATTR}} or ${{KIND.NAME.ATTR}}"
    )]
    Malformed(String),
}

/// Splits `s` into literal text and placeholders.
pub fn parse(s: &str) -> Result<Vec<Part<'_>>, TemplateError> {
    let mut parts = Vec::new();
    let mut rest = s;
    let mut literal_start = 0usize;
    let mut pos = 0usize;
    while let Some(idx) = rest.find('$') {
        let at = pos + idx;
        let after = &s[at..];
        if after.starts_with("$${") {
            // Escape: emit text up to and including one '$', skip the second.
            parts.push(Part::Literal(&s[literal_start..=at]));
            pos = at + 3;
            rest = &s[pos..];
            parts.push(Part::Literal("{"));
            literal_start = pos;
            continue;
        }
        if after.starts_with("${") {
            let body_start = at + 2;
            let close = s[body_start..].find('}').ok_or(TemplateError::Unclosed)?;
            let body = &s[body_start..body_start + close];
            if literal_start < at {
                parts.push(Part::Literal(&s[literal_start..at]));
            }
            parts.push(parse_placeholder(body)?);
            pos = body_start + close + 1;
            literal_start = pos;
            rest = &s[pos..];
            continue;
        }
        pos = at + 1;
        rest = &s[pos..];
    }
    if literal_start < s.len() {
        parts.push(Part::Literal(&s[literal_start..]));
    }
    Ok(parts)
}

fn parse_placeholder(body: &str) -> Result<Part<'_>, TemplateError> {
    let body_trimmed = body.trim();
    if body_trimmed.is_empty() {
        return Err(TemplateError::Empty);
    }
    if let Some(env) = body_trimmed.strip_prefix("env:") {
        let (name, fallback) = match env.split_once(":-") {
            Some((n, f)) => (n, Some(f)),
            None => (env, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(TemplateError::Malformed(body.to_owned()));
        }
        return Ok(Part::Env { name, fallback });
    }
    let malformed = || TemplateError::Malformed(body.to_owned());
    let (kind, rest) = body_trimmed.split_once('.').ok_or_else(malformed)?;
    if kind == "stack" {
        if rest.is_empty() || rest.contains('.') {
            return Err(malformed());
        }
        return Ok(Part::Ref(Reference {
            kind,
            name: "",
            attr: rest,
        }));
    }
    // Names may contain dots (DynamoDB tables do), so the attribute is the last segment.
    let (name, attr) = rest.rsplit_once('.').ok_or_else(malformed)?;
    if kind.is_empty() || name.is_empty() || attr.is_empty() {
        return Err(malformed());
    }
    Ok(Part::Ref(Reference { kind, name, attr }))
}

/// Replaces `${env:...}` placeholders with values from `lookup`, leaving resource references and
/// `$${` escapes as written. Returns the names of variables that were unset and had no fallback.
pub fn interpolate_env(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<String>), TemplateError> {
    if !s.contains("${") {
        return Ok((s.to_owned(), Vec::new()));
    }
    let mut out = String::with_capacity(s.len());
    let mut missing = Vec::new();
    let mut rest = s;
    while let Some(idx) = rest.find('$') {
        out.push_str(&rest[..idx]);
        let after = &rest[idx..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("$${");
            rest = tail;
        } else if let Some(body_and_more) = after.strip_prefix("${") {
            let close = body_and_more.find('}').ok_or(TemplateError::Unclosed)?;
            let body = &body_and_more[..close];
            match parse_placeholder(body)? {
                Part::Env { name, fallback } => match (lookup(name), fallback) {
                    (Some(v), _) => out.push_str(&escape(&v)),
                    (None, Some(f)) => out.push_str(f),
                    (None, None) => missing.push(name.to_owned()),
                },
                _ => {
                    out.push_str("${");
                    out.push_str(body);
                    out.push('}');
                }
            }
            rest = &body_and_more[close + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok((out, missing))
}

/// An environment value is data, not a template: keep a `${` inside it literal.
fn escape(v: &str) -> String {
    v.replace("${", "$${")
}

/// The resource references in `s`, in order of appearance.
pub fn references(s: &str) -> Result<Vec<Reference<'_>>, TemplateError> {
    Ok(parse(s)?
        .into_iter()
        .filter_map(|p| match p {
            Part::Ref(r) => Some(r),
            _ => None,
        })
        .collect())
}

/// A string field that may contain `${kind.name.attr}` references, resolved when the stack starts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Template(pub String);

impl Template {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Resolves every reference with `lookup`, which returns `None` for a value that is not known.
    pub fn resolve(
        &self,
        lookup: &mut dyn FnMut(Reference<'_>) -> Option<String>,
    ) -> Result<String, ResolveError> {
        let mut out = String::with_capacity(self.0.len());
        for part in parse(&self.0)? {
            match part {
                Part::Literal(l) => out.push_str(l),
                // Already replaced at load time; one left here had no value and was reported.
                Part::Env { name, .. } => return Err(ResolveError::Env(name.to_owned())),
                Part::Ref(r) => match lookup(r) {
                    Some(v) => out.push_str(&v),
                    None => return Err(ResolveError::Unknown(r.to_string())),
                },
            }
        }
        Ok(out)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Syntax(#[from] TemplateError),
    #[error("environment variable {0} is not set")]
    Env(String),
    #[error("{0} has no value yet")]
    Unknown(String),
}

impl JsonSchema for Template {
    fn schema_name() -> String {
        "Template".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        SchemaObject {
            instance_type: Some(InstanceType::String.into()),
            format: Some("spillway-template".into()),
            metadata: Some(Box::new(Metadata {
                description: Some(
                    "A string that may contain ${env:NAME} and ${kind.name.attr} references."
                        .into(),
                ),
                ..Default::default()
            })),
            ..Default::default()
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("5555".into()),
            "TRICKY" => Some("a${b}".into()),
            _ => None,
        }
    }

    #[test]
    fn splits_literals_and_references() {
        let parts = parse("postgres://${secrets.db-app.username}@h:${proxies.main.port}/x")
            .unwrap_or_default();
        assert_eq!(
            parts,
            vec![
                Part::Literal("postgres://"),
                Part::Ref(Reference {
                    kind: "secrets",
                    name: "db-app",
                    attr: "username"
                }),
                Part::Literal("@h:"),
                Part::Ref(Reference {
                    kind: "proxies",
                    name: "main",
                    attr: "port"
                }),
                Part::Literal("/x"),
            ]
        );
    }

    #[test]
    fn names_may_contain_dots_and_stack_refs_have_two_parts() {
        let r = references("${tables.Event.Log.arn} ${stack.region}").unwrap_or_default();
        assert_eq!(
            r[0],
            Reference {
                kind: "tables",
                name: "Event.Log",
                attr: "arn"
            }
        );
        assert_eq!(
            r[1],
            Reference {
                kind: "stack",
                name: "",
                attr: "region"
            }
        );
    }

    #[test]
    fn malformed_placeholders_are_errors() {
        assert_eq!(parse("x ${oops"), Err(TemplateError::Unclosed));
        assert_eq!(parse("${}"), Err(TemplateError::Empty));
        assert!(matches!(
            parse("${proxies}"),
            Err(TemplateError::Malformed(_))
        ));
        assert!(matches!(
            parse("${proxies.main}"),
            Err(TemplateError::Malformed(_))
        ));
        assert!(matches!(parse("${env:}"), Err(TemplateError::Malformed(_))));
    }

    #[test]
    fn env_interpolation_keeps_refs_and_escapes() {
        let (s, missing) = interpolate_env(
            "${env:PORT}:${proxies.p.port}:$${lit}:${env:NOPE}:${env:NOPE:-d}",
            &env,
        )
        .unwrap_or_default();
        assert_eq!(s, "5555:${proxies.p.port}:$${lit}::d");
        assert_eq!(missing, vec!["NOPE".to_owned()]);
        // A value that looks like a placeholder stays literal.
        let (s, _) = interpolate_env("${env:TRICKY}", &env).unwrap_or_default();
        let t = Template(s);
        assert_eq!(t.resolve(&mut |_| None).ok().as_deref(), Some("a${b}"));
    }

    #[test]
    fn resolve_fills_references() {
        let t = Template("${databases.main.host}:${databases.main.port}".into());
        let v = t.resolve(&mut |r| Some(format!("<{}>", r.attr)));
        assert_eq!(v.ok().as_deref(), Some("<host>:<port>"));
        let err = t.resolve(&mut |_| None).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("${databases.main.host} has no value yet")
        );
    }
}
