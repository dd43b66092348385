//! Semantic checks that types alone cannot express: names, ranges AWS enforces, references
//! between resources, listener clashes and dependency cycles. All problems are collected, not
//! just the first, so a user fixes a file in one pass.

mod apis;
mod data;
mod events;
mod iam;
mod references;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::Duration;
use crate::diagnostic::{Diagnostic, FieldPath};
use crate::load::{FoundRef, LoadedStack};
use crate::locate::SourceMap;
use crate::model::*;
use crate::resource::{Kind, ResourceId};

use apis::check_apis;
pub use apis::check_route;
pub use data::parse_cidr;
use data::{check_databases, check_proxies, check_secrets, check_tables};
use events::{check_functions, check_queues};
use iam::check_identities;
pub use iam::{TrustedPrincipal, trusted_principal};
use references::{check_listeners, check_references};

pub(super) struct Checker<'a> {
    pub(super) file: &'a Path,
    pub(super) dir: &'a Path,
    pub(super) map: &'a SourceMap<'a>,
    pub(super) diags: Vec<Diagnostic>,
    /// Edges `from -> to` meaning `to` must be running before `from`, with where it was written.
    pub(super) edges: BTreeMap<ResourceId, Vec<(ResourceId, FieldPath)>>,
    pub(super) policy_files: BTreeMap<std::path::PathBuf, PolicyDocument>,
}

impl Checker<'_> {
    pub(super) fn err(&mut self, path: FieldPath, message: impl Into<String>) {
        let position = self.map.position(&path);
        self.diags.push(Diagnostic::new(
            self.file,
            position,
            Some(path.to_string()),
            message.into(),
        ));
    }

    pub(super) fn err_key(&mut self, path: FieldPath, message: impl Into<String>) {
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

    pub(super) fn duration(&mut self, path: FieldPath, d: Duration, lo: u64, hi: u64) {
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
    pub(super) fn named(
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

    pub(super) fn file_exists(&mut self, path: FieldPath, p: &Path, what: &str) {
        let full = self.dir.join(p);
        if !full.exists() {
            self.err(path, format!("{what} {} does not exist", full.display()));
        }
    }
}

pub(super) fn names(stack: &Stack, kind: Kind) -> Vec<String> {
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

pub(super) fn exists(stack: &Stack, kind: Kind, name: &str) -> bool {
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
    check_dev_mode(&mut c, stack);
    check_endpoint_tls(&mut c, &stack.stack);
    check_metrics_token(&mut c, &stack.stack);
    check_queue_backend(&mut c, &stack.stack);
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
}

/// A metrics token is a password: one too short to resist guessing is refused.
fn check_metrics_token(c: &mut Checker<'_>, s: &StackSettings) {
    if s.metrics_token.as_ref().is_some_and(|t| t.len() < 16) {
        c.err(
            FieldPath::of(&["stack", "metrics_token"]),
            "metrics_token must be at least 16 characters",
        );
    }
}

/// `queue_backend` is `embedded` or a `nats://HOST:PORT` URL (what the NATS client connects
/// to: no credentials in the file, no path); `queue_namespace` is a name JetStream accepts in
/// stream, bucket and subject names, and means something only with NATS.
fn check_queue_backend(c: &mut Checker<'_>, s: &StackSettings) {
    if let Some(url) = s.queue_nats_url() {
        let host_port = url.strip_prefix("nats://").filter(|rest| {
            let Some((host, port)) = rest.rsplit_once(':') else {
                return false;
            };
            !host.is_empty()
                && host.chars().all(|ch| {
                    ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '[' | ']' | ':')
                })
                && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if host_port.is_none() {
            c.err(
                FieldPath::of(&["stack", "queue_backend"]),
                format!(
                    "expected \"embedded\" or a NATS URL like \"nats://127.0.0.1:4222\", found {:?}",
                    s.queue_backend
                ),
            );
        }
    }
    let Some(namespace) = &s.queue_namespace else {
        return;
    };
    let at = FieldPath::of(&["stack", "queue_namespace"]);
    if s.queue_nats_url().is_none() {
        c.err(
            at,
            "queue_namespace names the queues' place on a NATS server: it needs a nats:// queue_backend",
        );
    } else if !(1..=32).contains(&namespace.len())
        || !namespace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        c.err(
            at,
            format!("expected 1-32 characters of A-Z, a-z, 0-9, '_' and '-', found {namespace:?}"),
        );
    }
}

/// `endpoint_tls` names its files or asks for a generated pair, never both or neither.
fn check_endpoint_tls(c: &mut Checker<'_>, s: &StackSettings) {
    let Some(tls) = &s.endpoint_tls else {
        return;
    };
    let choice = TlsChoice {
        cert: tls.cert.as_deref(),
        key: tls.key.as_deref(),
        self_signed: tls.self_signed,
    };
    check_tls_choice(
        c,
        FieldPath::of(&["stack", "endpoint_tls"]),
        "endpoint_tls",
        choice,
    );
}

/// A listener's certificate as written: its files, or a request to generate one.
pub(super) struct TlsChoice<'a> {
    pub cert: Option<&'a Path>,
    pub key: Option<&'a Path>,
    pub self_signed: bool,
}

/// A TLS table (at `at`, called `field` in messages) names both files that exist, or asks
/// for a generated pair; never both, never neither.
pub(super) fn check_tls_choice(
    c: &mut Checker<'_>,
    at: FieldPath,
    field: &str,
    tls: TlsChoice<'_>,
) {
    match (tls.cert, tls.key, tls.self_signed) {
        (Some(cert), Some(key), false) => {
            c.file_exists(at.key("cert"), cert, "certificate");
            c.file_exists(at.key("key"), key, "key");
        }
        (None, None, true) => {}
        (Some(_), Some(_), true) => c.err(
            at.key("self_signed"),
            "self_signed = true generates a certificate; it cannot be combined with cert and key",
        ),
        _ => c.err(
            at,
            format!("{field} needs both cert and key (PEM files), or self_signed = true"),
        ),
    }
}

/// Dev mode lets unsigned requests in as the account root, so credentials it mints (an unsigned
/// AssumeRole) are good on every listener: all of them, not only the endpoint, must be out of
/// other machines' reach.
fn check_dev_mode(c: &mut Checker<'_>, stack: &Stack) {
    if stack.stack.identity.enforce {
        return;
    }
    for (addr, path) in crate::listeners::all(stack) {
        if !addr.ip().is_loopback() {
            c.err(
                FieldPath::of(&["stack", "identity", "enforce"]),
                format!(
                    "identity enforcement may be turned off only while every listener is on a loopback address; {path} is {addr}"
                ),
            );
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
