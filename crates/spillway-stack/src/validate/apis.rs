//! APIs: routes, integrations, authorizers, stages, domains.

use std::collections::HashMap;

use super::{Checker, TlsChoice, check_tls_choice};
use crate::diagnostic::FieldPath;
use crate::model::*;
use crate::resource::{Kind, ResourceId};

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

pub(super) fn check_apis(c: &mut Checker<'_>, stack: &Stack) {
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
        if http {
            for (field, used) in [
                ("api_keys", !api.api_keys.is_empty()),
                ("usage_plans", !api.usage_plans.is_empty()),
            ] {
                if used {
                    c.err_key(at(field), "API keys and usage plans are a REST API feature");
                }
            }
        }
        for (kn, k) in &api.api_keys {
            let len = k.value.as_str().len();
            if !k.value.as_str().contains("${") && !(20..=128).contains(&len) {
                c.err(
                    at("api_keys").key(kn.clone()).key("value"),
                    format!("an API key has 20 to 128 characters, found {len}"),
                );
            }
        }
        for (pn, p) in &api.usage_plans {
            let path = at("usage_plans").key(pn.clone());
            for k in &p.keys {
                if !api.api_keys.contains_key(k) {
                    c.err(
                        path.key("keys"),
                        format!("no key {k:?} in apis.{name}.api_keys"),
                    );
                }
            }
            if let Some(t) = &p.throttle
                && !(t.rate_limit > 0.0 && t.rate_limit.is_finite())
            {
                c.err(
                    path.key("throttle").key("rate_limit"),
                    "expected a positive number",
                );
            }
            if let Some(q) = &p.quota
                && q.limit == 0
            {
                c.err(path.key("quota").key("limit"), "expected a positive number");
            }
        }
        if api.routes.iter().any(|r| r.api_key_required) && api.api_keys.is_empty() {
            c.err_key(
                at("api_keys"),
                "routes require an API key but the API declares none",
            );
        }
        for (i, d) in api.domains.iter().enumerate() {
            let choice = TlsChoice {
                cert: d.tls.cert.as_deref(),
                key: d.tls.key.as_deref(),
                self_signed: d.tls.self_signed,
            };
            check_tls_choice(c, at("domains").index(i).key("tls"), "tls", choice);
            // A generated certificate names the domain and is kept in a directory named
            // after it: a host name, not a pattern or a path.
            if d.tls.self_signed && !is_host_name(&d.name) {
                c.err(
                    at("domains").index(i).key("name"),
                    format!(
                        "a self-signed certificate needs a host name (letters, digits, '-' and '.'), found {:?}",
                        d.name
                    ),
                );
            }
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

/// A DNS host name: dot-separated labels of letters, digits and inner hyphens.
fn is_host_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        })
}
