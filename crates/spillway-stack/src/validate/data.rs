//! Databases, secrets, proxies and tables.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::Checker;
use crate::diagnostic::FieldPath;
use crate::model::*;
use crate::resource::{Kind, ResourceId};

/// The most read replicas a managed database may have (an Aurora cluster's limit).
pub const MAX_READERS: u32 = 15;

fn url_scheme_ok(engine: Engine, url: &str) -> bool {
    if url.contains("${") {
        return true; // checked once resolved
    }
    match engine {
        Engine::Postgres => url.starts_with("postgres://") || url.starts_with("postgresql://"),
        Engine::Mysql => url.starts_with("mysql://") || url.starts_with("mariadb://"),
    }
}

pub(super) fn check_databases(c: &mut Checker<'_>, stack: &Stack) {
    for (name, db) in &stack.databases {
        let at = |f: &str| FieldPath::of(&["databases", name, f]);
        let me = ResourceId::new(Kind::Database, name);
        if let Some(url) = &db.url {
            if !url_scheme_ok(db.engine, url.as_str()) {
                let scheme = if db.engine == Engine::Postgres {
                    "postgres://"
                } else {
                    "mysql://"
                };
                c.err(
                    at("url"),
                    format!(
                        "expected a URL starting with {scheme} for engine {:?}",
                        db.engine.as_str()
                    ),
                );
            }
            if db.port.is_some() {
                c.err(at("port"), "port applies to managed databases only; an external database's port is in its url");
            }
            if db.readers > 0 {
                c.err(at("readers"), "readers applies to managed databases only; list an external server's replicas in `replicas`");
            }
        } else if !db.replicas.is_empty() {
            c.err(
                at("replicas"),
                "replicas need an external primary (url); a managed database gets replicas with `readers = N`",
            );
        }
        // Aurora's limit: up to 15 replicas per cluster. A url database already has its one
        // error for `readers`.
        if db.url.is_none() {
            c.range(at("readers"), db.readers, 0, MAX_READERS);
        }
        for (i, r) in db.replicas.iter().enumerate() {
            if !url_scheme_ok(db.engine, r.as_str()) {
                c.err(
                    at("replicas").index(i),
                    "expected a URL of the same engine as the database",
                );
            }
        }
        if db.url.is_none() || db.apply_init {
            for (i, f) in db.init.iter().enumerate() {
                c.file_exists(at("init").index(i), f, "init file");
            }
        }
        if db.port == Some(0) {
            c.err(
                at("port"),
                "expected a port from 1 to 65535 (leave it out to pick a free one)",
            );
        }
        c.range(at("max_connections"), db.max_connections, 1, 262_143);
        if let Some(n) = &db.name
            && (n.is_empty()
                || n.len() > 63
                || !n.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'))
        {
            c.err(at("name"), "expected 1-63 letters, digits and '_'");
        }
        for (i, secret) in db.users.iter().enumerate() {
            let path = at("users").index(i);
            if c.named(stack, &me, path.clone(), Kind::Secret, secret, false) {
                let s = &stack.secrets[secret];
                if s.username.is_none() || s.password.is_none() {
                    c.err(path, format!("secret {secret:?} needs a username and a password to become a database user"));
                }
            }
        }
    }
}

pub(super) fn check_secrets(c: &mut Checker<'_>, stack: &Stack) {
    for (name, s) in &stack.secrets {
        let me = ResourceId::new(Kind::Secret, name);
        let at = |f: &str| FieldPath::of(&["secrets", name, f]);
        if let Some(SecretPassword::Generate(g)) = &s.password {
            if !g.generate {
                c.err(
                    at("password").key("generate"),
                    "expected true (or write the password as a string)",
                );
            }
            c.range(at("password").key("length"), g.length, 1, 4096);
        }
        if let Some(db) = &s.database {
            c.named(stack, &me, at("database"), Kind::Database, db, true);
        }
        for key in s.extra.keys() {
            if ["username", "password", "engine", "host", "port", "dbname"].contains(&key.as_str())
            {
                c.err_key(
                    at("extra").key(key.clone()),
                    "this key is set by username, password or database",
                );
            }
        }
    }
}

pub(super) fn check_proxies(c: &mut Checker<'_>, stack: &Stack) {
    for (name, p) in &stack.proxies {
        let me = ResourceId::new(Kind::Proxy, name);
        let at = |f: &str| FieldPath::of(&["proxies", name, f]);
        let engine = if c.named(
            stack,
            &me,
            at("database"),
            Kind::Database,
            &p.database,
            true,
        ) {
            Some(&stack.databases[&p.database])
        } else {
            None
        };
        if p.auth.is_empty() {
            c.err_key(
                at("auth"),
                "a proxy needs at least one auth entry (a secret per database user)",
            );
        }
        let mut users = BTreeSet::new();
        for (i, a) in p.auth.iter().enumerate() {
            let path = at("auth").index(i);
            if c.named(
                stack,
                &me,
                path.key("secret"),
                Kind::Secret,
                &a.secret,
                true,
            ) {
                match &stack.secrets[&a.secret].username {
                    None => c.err(
                        path.key("secret"),
                        format!("secret {:?} has no username", a.secret),
                    ),
                    Some(u) if !users.insert(u.clone()) => c.err(
                        path.key("secret"),
                        format!("user {u:?} appears twice in this proxy's auth"),
                    ),
                    Some(_) => {}
                }
            }
            if let (Some(kind), Some(db)) = (a.client_password_auth, engine) {
                let pg = matches!(
                    kind,
                    ClientPasswordAuth::PostgresMd5 | ClientPasswordAuth::PostgresScramSha256
                );
                if pg != (db.engine == Engine::Postgres) {
                    c.err(
                        path.key("client_password_auth"),
                        format!("does not fit engine {:?}", db.engine.as_str()),
                    );
                }
            }
        }
        c.range(
            at("max_connections_percent"),
            p.max_connections_percent,
            1,
            100,
        );
        if let Some(idle) = p.max_idle_connections_percent {
            c.range(
                at("max_idle_connections_percent"),
                idle,
                0,
                p.max_connections_percent,
            );
        }
        // spillway_proxy::runtime::MAX_WORKERS.
        c.range(at("workers"), p.workers, 1, 64);
        c.duration(
            at("connection_borrow_timeout"),
            p.connection_borrow_timeout,
            1,
            3600,
        );
        c.duration(at("idle_client_timeout"), p.idle_client_timeout, 1, 28_800);
        if p.require_tls && p.tls.is_none() {
            c.err_key(
                at("require_tls"),
                "require_tls needs a [proxies.NAME.tls] certificate and key, or self_signed = true",
            );
        }
        if let Some(tls) = &p.tls {
            let choice = super::TlsChoice {
                cert: tls.cert.as_deref(),
                key: tls.key.as_deref(),
                self_signed: tls.self_signed,
            };
            super::check_tls_choice(c, at("tls"), "tls", choice);
        }
        for (i, cidr) in p.allow_from.iter().enumerate() {
            if let Err(e) = parse_cidr(cidr) {
                c.err(at("allow_from").index(i), e);
            }
        }
        if let Some(0) = p.max_connections {
            c.err(at("max_connections"), "expected at least 1");
        }
        for (ep, e) in &p.endpoints {
            if e.role == EndpointRole::ReadOnly
                && engine.is_some_and(|db| db.replicas.is_empty() && db.readers == 0)
            {
                c.err(
                    at("endpoints").key(ep.clone()).key("role"),
                    format!(
                        "a read-only endpoint needs databases.{0}.replicas (external) or databases.{0}.readers (managed)",
                        p.database
                    ),
                );
            }
        }
    }
}

/// Parses `10.0.0.0/8` or a single address; returns the network and prefix length.
pub fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = addr
        .parse()
        .map_err(|_| format!("expected a CIDR like \"10.0.0.0/8\", found {s:?}"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        None => max,
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("expected a prefix length from 0 to {max}, found {l:?}"))?,
    };
    Ok((ip, len))
}

pub(super) fn check_tables(c: &mut Checker<'_>, stack: &Stack) {
    for (name, t) in &stack.tables {
        let at = |k: &str| FieldPath::of(&["tables", name, k]);
        if t.hash_key.name.is_empty() {
            c.err(
                at("hash_key").key("name"),
                "expected a non-empty attribute name",
            );
        }
        if t.range_key
            .as_ref()
            .is_some_and(|r| r.name == t.hash_key.name)
        {
            c.err(
                at("range_key").key("name"),
                "the sort key must differ from the partition key",
            );
        }
        if t.indexes.len() > 20 {
            c.err_key(
                at("indexes"),
                "a table has at most 20 global secondary indexes",
            );
        }
    }
}
