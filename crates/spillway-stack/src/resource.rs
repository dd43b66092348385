//! Resource kinds, their names and the attributes `${kind.name.attr}` may refer to.

use std::fmt;

/// The kinds of resource a stack declares, in the order they appear in the file model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Database,
    Secret,
    Proxy,
    Queue,
    Function,
    Api,
    Table,
    User,
    Role,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Database,
        Kind::Secret,
        Kind::Proxy,
        Kind::Queue,
        Kind::Function,
        Kind::Api,
        Kind::Table,
        Kind::User,
        Kind::Role,
    ];

    /// The table name in the stack file (`databases`, `proxies`, ...).
    pub fn key(self) -> &'static str {
        match self {
            Kind::Database => "databases",
            Kind::Secret => "secrets",
            Kind::Proxy => "proxies",
            Kind::Queue => "queues",
            Kind::Function => "functions",
            Kind::Api => "apis",
            Kind::Table => "tables",
            Kind::User => "users",
            Kind::Role => "roles",
        }
    }

    pub fn from_key(key: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.key() == key)
    }

    /// Attributes a reference may name. Values are derived (ARNs, URLs) or known at start
    /// (ports, generated passwords).
    pub fn attributes(self) -> &'static [&'static str] {
        match self {
            Kind::Database => &[
                "engine", "host", "port", "socket", "url", "name", "endpoint",
            ],
            Kind::Secret => &["arn", "name", "username", "password"],
            Kind::Proxy => &[
                "host",
                "port",
                "endpoint",
                "arn",
                "resource_id",
                "dbuser_arn",
            ],
            Kind::Queue => &["name", "url", "arn"],
            Kind::Function => &["name", "arn", "role_arn"],
            Kind::Api => &["id", "url", "endpoint", "execution_arn"],
            Kind::Table => &["name", "arn"],
            Kind::User => &["name", "arn", "access_key_id"],
            Kind::Role => &["name", "arn"],
        }
    }

    /// Name rules, following the AWS service each kind stands for.
    pub fn check_name(self, name: &str) -> Result<(), String> {
        let ok_chars = |extra: &str| {
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
        };
        let (max, rule): (usize, Result<(), &str>) = match self {
            Kind::Queue => {
                let base = name.strip_suffix(".fifo").unwrap_or(name);
                let ok = base
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                (
                    80,
                    if ok {
                        Ok(())
                    } else {
                        Err("letters, digits, '-' and '_' (and a .fifo suffix)")
                    },
                )
            }
            Kind::Function => (
                64,
                if ok_chars("-_") {
                    Ok(())
                } else {
                    Err("letters, digits, '-' and '_'")
                },
            ),
            Kind::Table => {
                let ok = name.len() >= 3 && ok_chars("-_.");
                (
                    255,
                    if ok {
                        Ok(())
                    } else {
                        Err("3-255 letters, digits, '-', '_' and '.'")
                    },
                )
            }
            Kind::Secret => (
                512,
                if ok_chars("/_+=.@-") {
                    Ok(())
                } else {
                    Err("letters, digits and /_+=.@-")
                },
            ),
            Kind::Proxy => {
                let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && ok_chars("-")
                    && !name.contains("--")
                    && !name.ends_with('-');
                (
                    63,
                    if ok {
                        Ok(())
                    } else {
                        Err("a letter, then letters, digits and single hyphens, not ending in '-'")
                    },
                )
            }
            Kind::User | Kind::Role => (
                64,
                if ok_chars("+=,.@_-") {
                    Ok(())
                } else {
                    Err("letters, digits and +=,.@_-")
                },
            ),
            Kind::Database | Kind::Api => (
                63,
                if ok_chars("-_") {
                    Ok(())
                } else {
                    Err("letters, digits, '-' and '_'")
                },
            ),
        };
        if name.is_empty() || name.len() > max {
            return Err(format!(
                "a {} name must be 1-{max} characters",
                self.singular()
            ));
        }
        rule.map_err(|r| format!("a {} name may contain {r}", self.singular()))
    }

    pub fn singular(self) -> &'static str {
        match self {
            Kind::Database => "database",
            Kind::Secret => "secret",
            Kind::Proxy => "proxy",
            Kind::Queue => "queue",
            Kind::Function => "function",
            Kind::Api => "API",
            Kind::Table => "table",
            Kind::User => "user",
            Kind::Role => "role",
        }
    }
}

/// Attributes of `${stack.attr}`.
pub const STACK_ATTRIBUTES: &[&str] = &["name", "region", "account", "endpoint"];

/// A resource of the stack, e.g. `proxies.main`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId {
    pub kind: Kind,
    pub name: String,
}

impl ResourceId {
    pub fn new(kind: Kind, name: impl Into<String>) -> Self {
        Self {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind.key(), self.name)
    }
}
