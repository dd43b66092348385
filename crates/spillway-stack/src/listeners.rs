//! Every address a stack listens on, with the field that set it. Validation uses this to find
//! clashes; the supervisor uses it to bind.

use std::net::SocketAddr;

use crate::diagnostic::FieldPath;
use crate::model::{Engine, Stack};

/// The first HTTP API listens here unless told otherwise; later ones take the next ports.
pub const FIRST_API_PORT: u16 = 3000;

/// The address a proxy's default endpoint listens on.
pub fn proxy_listen(stack: &Stack, name: &str) -> Option<SocketAddr> {
    let p = stack.proxies.get(name)?;
    let engine = stack
        .databases
        .get(&p.database)
        .map_or(Engine::Postgres, |d| d.engine);
    Some(
        p.listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], engine.default_proxy_port()))),
    )
}

/// The address an API listens on (explicit, or 3000, 3001, ... in name order).
pub fn api_listen(stack: &Stack, name: &str) -> Option<SocketAddr> {
    let api = stack.apis.get(name)?;
    if let Some(l) = api.listen {
        return Some(l);
    }
    let implicit = stack
        .apis
        .iter()
        .filter(|(_, a)| a.listen.is_none())
        .position(|(n, _)| n == name)?;
    let port = FIRST_API_PORT.checked_add(u16::try_from(implicit).ok()?)?;
    Some(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// All listeners of the stack.
pub fn all(stack: &Stack) -> Vec<(SocketAddr, FieldPath)> {
    let mut out = vec![(stack.stack.endpoint, FieldPath::of(&["stack", "endpoint"]))];
    for (name, p) in &stack.proxies {
        if let Some(addr) = proxy_listen(stack, name) {
            out.push((addr, FieldPath::of(&["proxies", name, "listen"])));
        }
        for (ep, e) in &p.endpoints {
            out.push((
                e.listen,
                FieldPath::of(&["proxies", name, "endpoints", ep, "listen"]),
            ));
        }
    }
    for name in stack.apis.keys() {
        if let Some(addr) = api_listen(stack, name) {
            out.push((addr, FieldPath::of(&["apis", name, "listen"])));
        }
    }
    out
}
