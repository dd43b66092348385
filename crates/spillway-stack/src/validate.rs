//! Semantic checks that types alone cannot express: names, ranges AWS enforces, references
//! between resources, listener clashes and dependency cycles. All problems are collected, not
//! just the first, so a user fixes a file in one pass.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::Duration;
use crate::diagnostic::{Diagnostic, FieldPath, Segment};
use crate::listeners;
use crate::load::{FoundRef, LoadedStack};
use crate::locate::SourceMap;
use crate::model::*;
use crate::resource::{Kind, ResourceId, STACK_ATTRIBUTES};

struct Checker<'a> {
    file: &'a Path,
    dir: &'a Path,
    map: &'a SourceMap<'a>,
    diags: Vec<Diagnostic>,
    /// Edges `from -> to` meaning `to` must be running before `from`, with where it was written.
    edges: BTreeMap<ResourceId, Vec<(ResourceId, FieldPath)>>,
    policy_files: BTreeMap<std::path::PathBuf, PolicyDocument>,
}

impl Checker<'_> {
    fn err(&mut self, path: FieldPath, message: impl Into<String>) {
        let position = self.map.position(&path);
        self.diags.push(Diagnostic::new(
            self.file,
            position,
            Some(path.to_string()),
            message.into(),
        ));
    }

    fn err_key(&mut self, path: FieldPath, message: impl Into<String>) {
        let position = self.map.key_position(&path);
        self.diags.push(Diagnostic::new(
            self.file,
            position,
            Some(path.to_string()),
            message.into(),
        ));
    }

    fn range<T: PartialOrd + std::fmt::Display>(&mut self, path: FieldPath, v: T, lo: T, hi: T) {
        if v < lo || v > hi {
            self.err(
                path,
                format!("expected a value from {lo} to {hi}, found {v}"),
            );
        }
    }

    fn duration(&mut self, path: FieldPath, d: Duration, lo: u64, hi: u64) {
        let ms = d.get().as_millis();
        if ms < u128::from(lo) * 1000 || ms > u128::from(hi) * 1000 {
            self.err(
                path,
                format!(
                    "expected a duration from {} to {}, found {d}",
                    Duration::from_secs(lo),
                    Duration::from_secs(hi)
                ),
            );
        }
    }

    /// A by-name reference to another resource; `depends` adds a start-order edge.
    fn named(
        &mut self,
        stack: &Stack,
        from: &ResourceId,
        path: FieldPath,
        kind: Kind,
        name: &str,
        depends: bool,
    ) -> bool {
        if !exists(stack, kind, name) {
            let known = names(stack, kind);
            let hint = if known.is_empty() {
                format!("the stack declares no {}", kind.key())
            } else {
                format!("known {}: {}", kind.key(), known.join(", "))
            };
            self.err(
                path,
                format!("no {} named {name:?} ({hint})", kind.singular()),
            );
            return false;
        }
        if depends {
            self.edges
                .entry(from.clone())
                .or_default()
                .push((ResourceId::new(kind, name), path));
        }
        true
    }

    fn file_exists(&mut self, path: FieldPath, p: &Path, what: &str) {
        let full = self.dir.join(p);
        if !full.exists() {
            self.err(path, format!("{what} {} does not exist", full.display()));
        }
    }
}

fn names(stack: &Stack, kind: Kind) -> Vec<String> {
    fn keys<V>(m: &BTreeMap<String, V>) -> Vec<String> {
        m.keys().cloned().collect()
    }
    match kind {
        Kind::Database => keys(&stack.databases),
        Kind::Secret => keys(&stack.secrets),
        Kind::Proxy => keys(&stack.proxies),
        Kind::Queue => keys(&stack.queues),
        Kind::Function => keys(&stack.functions),
        Kind::Api => keys(&stack.apis),
        Kind::Table => keys(&stack.tables),
        Kind::User => keys(&stack.users),
        Kind::Role => keys(&stack.roles),
    }
}

fn exists(stack: &Stack, kind: Kind, name: &str) -> bool {
    match kind {
        Kind::Database => stack.databases.contains_key(name),
        Kind::Secret => stack.secrets.contains_key(name),
        Kind::Proxy => stack.proxies.contains_key(name),
        Kind::Queue => stack.queues.contains_key(name),
        Kind::Function => stack.functions.contains_key(name),
        Kind::Api => stack.apis.contains_key(name),
        Kind::Table => stack.tables.contains_key(name),
        Kind::User => stack.users.contains_key(name),
        Kind::Role => stack.roles.contains_key(name),
    }
}

/// Runs every check; fills `loaded.order` and `loaded.policy_files` when there are no errors.
pub fn check(loaded: &mut LoadedStack, map: &SourceMap<'_>, refs: &[FoundRef]) -> Vec<Diagnostic> {
    let mut c = Checker {
        file: &loaded.file,
        dir: &loaded.dir,
        map,
        diags: Vec::new(),
        edges: BTreeMap::new(),
        policy_files: BTreeMap::new(),
    };
    let stack = &loaded.stack;
    check_settings(&mut c, &stack.stack);
    for kind in Kind::ALL {
        for name in names(stack, kind) {
            if let Err(e) = kind.check_name(&name) {
                c.err_key(FieldPath::of(&[kind.key(), &name]), e);
            }
        }
    }
    check_databases(&mut c, stack);
    check_secrets(&mut c, stack);
    check_proxies(&mut c, stack);
    check_queues(&mut c, stack);
    check_functions(&mut c, stack);
    check_apis(&mut c, stack);
    check_tables(&mut c, stack);
    check_identities(&mut c, stack);
    check_references(&mut c, stack, refs);
    check_listeners(&mut c, stack);
    let order = if c.diags.is_empty() {
        order(&mut c, stack)
    } else {
        Vec::new()
    };
    let (diags, policy_files) = (c.diags, c.policy_files);
    loaded.order = order;
    loaded.policy_files = policy_files;
    diags
}

fn check_settings(c: &mut Checker<'_>, s: &StackSettings) {
    let region_ok = {
        let parts: Vec<&str> = s.region.split('-').collect();
        parts.len() >= 3
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            })
            && parts
                .last()
                .is_some_and(|p| p.chars().all(|ch| ch.is_ascii_digit()))
    };
    if !region_ok {
        c.err(
            FieldPath::of(&["stack", "region"]),
            format!("expected a region like \"us-east-1\", found {:?}", s.region),
        );
    }
    if s.account.len() != 12 || !s.account.chars().all(|ch| ch.is_ascii_digit()) {
        c.err(
            FieldPath::of(&["stack", "account"]),
            format!("expected a 12-digit account id, found {:?}", s.account),
        );
    }
    if !s.identity.enforce && !s.endpoint.ip().is_loopback() {
        c.err(
            FieldPath::of(&["stack", "identity", "enforce"]),
            "identity enforcement may be turned off only while the endpoint listens on a loopback address",
        );
    }
}

fn url_scheme_ok(engine: Engine, url: &str) -> bool {
    if url.contains("${") {
        return true; // checked once resolved
    }
    match engine {
        Engine::Postgres => url.starts_with("postgres://") || url.starts_with("postgresql://"),
        Engine::Mysql => url.starts_with("mysql://") || url.starts_with("mariadb://"),
    }
}

fn check_databases(c: &mut Checker<'_>, stack: &Stack) {
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
        } else if !db.replicas.is_empty() {
            c.err(
                at("replicas"),
                "replicas need an external primary (url); managed databases have no replicas",
            );
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

fn check_secrets(c: &mut Checker<'_>, stack: &Stack) {
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

fn check_proxies(c: &mut Checker<'_>, stack: &Stack) {
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
        c.range(
            at("max_idle_connections_percent"),
            p.max_idle_connections_percent,
            0,
            p.max_connections_percent.max(1),
        );
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
                "require_tls needs a [proxies.NAME.tls] certificate and key",
            );
        }
        if let Some(tls) = &p.tls {
            c.file_exists(at("tls").key("cert"), &tls.cert, "certificate");
            c.file_exists(at("tls").key("key"), &tls.key, "key");
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
            if e.role == EndpointRole::ReadOnly && engine.is_some_and(|db| db.replicas.is_empty()) {
                c.err(
                    at("endpoints").key(ep.clone()).key("role"),
                    format!(
                        "a read-only endpoint needs databases.{}.replicas",
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

fn check_queues(c: &mut Checker<'_>, stack: &Stack) {
    for (name, q) in &stack.queues {
        let me = ResourceId::new(Kind::Queue, name);
        let at = |f: &str| FieldPath::of(&["queues", name, f]);
        if q.fifo != name.ends_with(".fifo") {
            c.err_key(
                FieldPath::of(&["queues", name]),
                "a FIFO queue's name must end in \".fifo\", and only a FIFO queue's may",
            );
        }
        if q.content_based_deduplication && !q.fifo {
            c.err(
                at("content_based_deduplication"),
                "applies to FIFO queues only",
            );
        }
        c.duration(at("visibility_timeout"), q.visibility_timeout, 0, 43_200);
        c.duration(at("message_retention"), q.message_retention, 60, 1_209_600);
        c.duration(at("delay"), q.delay, 0, 900);
        c.duration(at("receive_wait_time"), q.receive_wait_time, 0, 20);
        c.range(
            at("maximum_message_size"),
            q.maximum_message_size,
            1024,
            262_144,
        );
        if let Some(dl) = &q.dead_letter {
            let path = at("dead_letter").key("queue");
            if &dl.queue == name {
                c.err(path, "a queue cannot be its own dead-letter queue");
            } else if c.named(stack, &me, path.clone(), Kind::Queue, &dl.queue, true)
                && stack.queues[&dl.queue].fifo != q.fifo
            {
                c.err(
                    path,
                    "a dead-letter queue must be of the same type (standard or FIFO) as its source",
                );
            }
            c.range(
                at("dead_letter").key("max_receive_count"),
                dl.max_receive_count,
                1,
                1000,
            );
        }
    }
}

/// Environment variables Lambda reserves; a function may not set them.
const RESERVED_ENV: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

fn check_functions(c: &mut Checker<'_>, stack: &Stack) {
    for (name, f) in &stack.functions {
        let me = ResourceId::new(Kind::Function, name);
        let at = |k: &str| FieldPath::of(&["functions", name, k]);
        c.file_exists(at("code"), &f.code, "code");
        match (f.runtime, &f.handler) {
            (Runtime::Nodejs | Runtime::Python, None) => c.err_key(
                FieldPath::of(&["functions", name]),
                "nodejs and python functions need a handler like \"index.handler\"",
            ),
            (_, Some(h)) if !h.contains('.') => c.err(at("handler"), "expected \"file.function\""),
            _ => {}
        }
        c.duration(at("timeout"), f.timeout, 1, 900);
        c.range(at("memory"), f.memory, 128, 10_240);
        if let Some(rc) = f.reserved_concurrency {
            c.range(at("reserved_concurrency"), rc, 0, 1000);
        }
        for key in f.environment.keys() {
            let valid = key
                .chars()
                .next()
                .is_some_and(|ch| ch.is_ascii_alphabetic())
                && key
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
            if !valid {
                c.err_key(
                    at("environment").key(key.clone()),
                    "expected a name of letters, digits and '_', starting with a letter",
                );
            } else if RESERVED_ENV.contains(&key.as_str()) {
                c.err_key(
                    at("environment").key(key.clone()),
                    "this variable is reserved by the Lambda runtime",
                );
            }
        }
        if let Some(role) = &f.role {
            c.named(stack, &me, at("role"), Kind::Role, role, true);
            if !f.policies.is_empty() {
                c.err_key(
                    at("policies"),
                    "give policies to the role, or leave out role to have one made from these",
                );
            }
        }
        check_policies(c, &at("policies"), &f.policies);
        for (i, e) in f.events.iter().enumerate() {
            let p = at("events").index(i);
            if c.named(stack, &me, p.key("queue"), Kind::Queue, &e.queue, true) {
                let max = if stack.queues[&e.queue].fifo {
                    10
                } else {
                    10_000
                };
                c.range(p.key("batch_size"), e.batch_size, 1, max);
            }
            if e.batch_size > 10 && e.maximum_batching_window.get().is_zero() {
                c.err(
                    p.key("batch_size"),
                    "a batch size above 10 needs a maximum_batching_window of at least 1s",
                );
            }
            c.duration(
                p.key("maximum_batching_window"),
                e.maximum_batching_window,
                0,
                300,
            );
            if let Some(mc) = e.maximum_concurrency {
                c.range(p.key("maximum_concurrency"), mc, 2, 1000);
            }
        }
        if let Some(q) = &f.on_failure {
            c.named(stack, &me, at("on_failure"), Kind::Queue, q, true);
        }
        c.duration(at("keep_warm"), f.keep_warm, 0, 86_400);
    }
}

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY",
];

/// Checks `METHOD /path` (or `$default`); returns a normalized key for duplicate detection.
pub fn check_route(route: &str) -> Result<String, String> {
    if route == "$default" {
        return Ok(route.to_owned());
    }
    let (method, path) = route
        .split_once(' ')
        .ok_or_else(|| format!("expected \"METHOD /path\" or \"$default\", found {route:?}"))?;
    if !METHODS.contains(&method) {
        return Err(format!(
            "expected a method of {}, found {method:?}",
            METHODS.join(", ")
        ));
    }
    if !path.starts_with('/') {
        return Err(format!("a route path starts with '/', found {path:?}"));
    }
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, seg) in segments.iter().enumerate() {
        if let Some(inner) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let greedy = inner.ends_with('+');
            let name = inner.trim_end_matches('+');
            if name.is_empty()
                || !name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
            {
                return Err(format!("bad path parameter {seg:?}"));
            }
            if greedy && i + 1 != segments.len() {
                return Err("a greedy {param+} must be the last segment".to_owned());
            }
        } else if seg.contains(['{', '}']) {
            return Err(format!(
                "a path parameter must be a whole segment, found {seg:?}"
            ));
        }
    }
    // Parameter names do not distinguish routes: GET /a/{x} and GET /a/{y} clash.
    let shape: Vec<String> = segments
        .iter()
        .map(|s| {
            if s.starts_with('{') {
                if s.ends_with("+}") {
                    "{+}".into()
                } else {
                    "{}".into()
                }
            } else {
                (*s).to_owned()
            }
        })
        .collect();
    Ok(format!("{method} /{}", shape.join("/")))
}

fn check_apis(c: &mut Checker<'_>, stack: &Stack) {
    for (name, api) in &stack.apis {
        let me = ResourceId::new(Kind::Api, name);
        let at = |k: &str| FieldPath::of(&["apis", name, k]);
        let http = api.protocol == ApiProtocol::Http;
        let mut seen = HashMap::new();
        for (i, r) in api.routes.iter().enumerate() {
            let p = at("routes").index(i);
            match check_route(&r.route) {
                Ok(key) => {
                    if let Some(first) = seen.insert(key, i) {
                        c.err(p.key("route"), format!("the same route as routes[{first}]"));
                    }
                }
                Err(e) => c.err(p.key("route"), e),
            }
            if r.route == "$default" && !http {
                c.err(
                    p.key("route"),
                    "$default routes exist in HTTP APIs only; REST APIs use ANY /{proxy+}",
                );
            }
            let integrations = [
                r.function.is_some(),
                r.queue.is_some(),
                r.http.is_some(),
                r.mock.is_some(),
            ];
            if integrations.iter().filter(|b| **b).count() != 1 {
                c.err(
                    p.clone(),
                    "a route needs exactly one integration: function, queue, http or mock",
                );
            }
            if let Some(f) = &r.function {
                c.named(stack, &me, p.key("function"), Kind::Function, f, true);
            }
            if let Some(q) = &r.queue {
                if !http {
                    c.err(p.key("queue"), "queue integrations are an HTTP API feature");
                }
                c.named(stack, &me, p.key("queue"), Kind::Queue, q, true);
            }
            if let Some(fmt) = &r.payload_format {
                let ok = matches!((http, fmt.as_str()), (true, "1.0" | "2.0") | (false, "1.0"));
                if !ok {
                    c.err(
                        p.key("payload_format"),
                        if http {
                            "expected \"2.0\" or \"1.0\""
                        } else {
                            "REST APIs use payload format \"1.0\""
                        },
                    );
                }
                if r.function.is_none() {
                    c.err(
                        p.key("payload_format"),
                        "applies to function integrations only",
                    );
                }
            }
            if let Some(m) = &r.mock {
                c.range(p.key("mock").key("status"), m.status, 100, 599);
            }
            match (r.authorization, &r.authorizer) {
                (Authorization::Custom, None) => c.err(
                    p.key("authorization"),
                    "custom authorization needs an authorizer",
                ),
                (Authorization::Custom, Some(a)) if !api.authorizers.contains_key(a) => c.err(
                    p.key("authorizer"),
                    format!("no authorizer named {a:?} in apis.{name}.authorizers"),
                ),
                (Authorization::None | Authorization::Iam, Some(_)) => c.err(
                    p.key("authorizer"),
                    "an authorizer applies only with authorization = \"custom\"",
                ),
                _ => {}
            }
            if let Some(t) = r.timeout {
                let max = if http { 30 } else { 29 };
                if t.get().as_millis() < 50 || t.get().as_secs_f64() > f64::from(max) {
                    c.err(
                        p.key("timeout"),
                        format!("expected a duration from 50ms to {max}s, found {t}"),
                    );
                }
            }
            if r.api_key_required && http {
                c.err(p.key("api_key_required"), "API keys are a REST API feature");
            }
        }
        for (an, a) in &api.authorizers {
            let p = at("authorizers").key(an.clone());
            match a.kind {
                AuthorizerKind::Jwt => {
                    if a.issuer.is_none() || a.jwks.is_none() {
                        c.err_key(p.clone(), "a JWT authorizer needs issuer and jwks");
                    }
                    if !http {
                        c.err(p.key("kind"), "JWT authorizers are an HTTP API feature");
                    }
                }
                AuthorizerKind::Function => match &a.function {
                    Some(f) => {
                        c.named(stack, &me, p.key("function"), Kind::Function, f, true);
                    }
                    None => c.err_key(p.clone(), "a function authorizer needs function"),
                },
            }
            c.duration(p.key("result_ttl"), a.result_ttl, 0, 3600);
        }
        if api.cors.is_some() && !http {
            c.err_key(
                at("cors"),
                "CORS configuration is an HTTP API feature; REST APIs answer OPTIONS with a route",
            );
        }
        for (sn, s) in &api.stages {
            let p = at("stages").key(sn.clone());
            if sn != "$default"
                && (sn.is_empty()
                    || !sn
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'))
            {
                c.err_key(
                    p.clone(),
                    "a stage name may contain letters, digits, '-' and '_'",
                );
            }
            for (t, path) in s.throttle.iter().map(|t| (t, p.key("throttle"))).chain(
                s.route_throttle
                    .iter()
                    .map(|(k, t)| (t, p.key("route_throttle").key(k.clone()))),
            ) {
                if !(t.rate_limit > 0.0 && t.rate_limit.is_finite()) {
                    c.err(path.key("rate_limit"), "expected a positive number");
                }
            }
            for k in s.route_throttle.keys() {
                if !api.routes.iter().any(|r| &r.route == k) {
                    c.err_key(
                        p.key("route_throttle").key(k.clone()),
                        "no such route in this API",
                    );
                }
            }
        }
        if !http && api.stages.is_empty() {
            c.err_key(
                FieldPath::of(&["apis", name]),
                "a REST API needs at least one stage, e.g. [apis.NAME.stages.prod]",
            );
        }
        for (i, d) in api.domains.iter().enumerate() {
            c.file_exists(
                at("domains").index(i).key("tls").key("cert"),
                &d.tls.cert,
                "certificate",
            );
            c.file_exists(
                at("domains").index(i).key("tls").key("key"),
                &d.tls.key,
                "key",
            );
            if let Some(s) = &d.stage
                && !api.stages.contains_key(s)
                && s != "$default"
            {
                c.err(
                    at("domains").index(i).key("stage"),
                    format!("no stage {s:?} in this API"),
                );
            }
        }
    }
}

fn check_tables(c: &mut Checker<'_>, stack: &Stack) {
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

fn check_identities(c: &mut Checker<'_>, stack: &Stack) {
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
            if !stack.users.contains_key(t) && !stack.roles.contains_key(t) {
                c.err(
                    at("trusted").index(i),
                    format!("no user or role named {t:?}"),
                );
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

fn check_conditions(c: &mut Checker<'_>, path: &FieldPath, cond: &Conditions) {
    for op in cond.keys() {
        if !operator_known(op) {
            c.err_key(
                path.key(op.clone()),
                format!("unknown condition operator {op:?}"),
            );
        }
    }
}

fn check_policies(c: &mut Checker<'_>, path: &FieldPath, policies: &[PolicyEntry]) {
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

fn check_statement(c: &mut Checker<'_>, at: &FieldPath, s: &Statement, file: Option<&Path>) {
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

fn check_references(c: &mut Checker<'_>, stack: &Stack, refs: &[FoundRef]) {
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

fn check_listeners(c: &mut Checker<'_>, stack: &Stack) {
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

/// Orders resources so that dependencies come first; reports a cycle if there is one.
fn order(c: &mut Checker<'_>, stack: &Stack) -> Vec<ResourceId> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    let all: Vec<ResourceId> = Kind::ALL
        .iter()
        .flat_map(|k| {
            names(stack, *k)
                .into_iter()
                .map(move |n| ResourceId::new(*k, n))
        })
        .collect();
    let mut marks: HashMap<ResourceId, Mark> = HashMap::new();
    let mut out = Vec::new();
    let mut stack_path: Vec<(ResourceId, Option<FieldPath>)> = Vec::new();
    let edges = c.edges.clone();

    fn visit(
        id: &ResourceId,
        via: Option<FieldPath>,
        edges: &BTreeMap<ResourceId, Vec<(ResourceId, FieldPath)>>,
        marks: &mut HashMap<ResourceId, Mark>,
        trail: &mut Vec<(ResourceId, Option<FieldPath>)>,
        out: &mut Vec<ResourceId>,
    ) -> Option<(Vec<ResourceId>, FieldPath)> {
        match marks.get(id) {
            Some(Mark::Done) => return None,
            Some(Mark::Visiting) => {
                let start = trail.iter().position(|(r, _)| r == id).unwrap_or(0);
                let mut cycle: Vec<ResourceId> =
                    trail[start..].iter().map(|(r, _)| r.clone()).collect();
                cycle.push(id.clone());
                let at = via
                    .or_else(|| trail.get(start + 1).and_then(|(_, p)| p.clone()))
                    .unwrap_or_default();
                return Some((cycle, at));
            }
            None => {}
        }
        marks.insert(id.clone(), Mark::Visiting);
        trail.push((id.clone(), via));
        for (dep, path) in edges.get(id).map(Vec::as_slice).unwrap_or_default() {
            if let Some(found) = visit(dep, Some(path.clone()), edges, marks, trail, out) {
                return Some(found);
            }
        }
        trail.pop();
        marks.insert(id.clone(), Mark::Done);
        out.push(id.clone());
        None
    }

    for id in &all {
        if let Some((cycle, at)) = visit(id, None, &edges, &mut marks, &mut stack_path, &mut out) {
            let shown: Vec<String> = cycle.iter().map(ToString::to_string).collect();
            c.err(at, format!("reference cycle: {}", shown.join(" -> ")));
            return Vec::new();
        }
    }
    out
}
