//! Who may read `/_spillway/metrics` and `/_spillway/pools` (they name users, databases and
//! functions): anyone while the endpoint is on loopback; otherwise a SigV4 signature of a stack
//! principal (any service name in its scope) or `[stack] metrics_token` as a bearer token.

use hyper::http::request::Parts;
use spillway_aws::auth::{Authenticator, RawRequest};
use spillway_identity::sigv4::constant_eq;

/// The check for an endpoint that is not on loopback.
pub struct ObserverGuard {
    pub token: Option<String>,
}

/// What a refused reader is told (no detail of why: the reason is logged).
pub const REFUSED: &str = "{\"message\":\"/_spillway/metrics and /_spillway/pools need a SigV4 signature of a stack principal or [stack] metrics_token (Authorization: Bearer) when the endpoint is not on loopback\"}";

impl ObserverGuard {
    pub fn allows(&self, parts: &Parts, auth: Option<&Authenticator>, secure: bool) -> bool {
        let header = |name: &str| {
            let values: Vec<&str> = parts
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            (!values.is_empty()).then(|| values.join(","))
        };
        if let (Some(token), Some(given)) = (
            &self.token,
            header("authorization")
                .as_deref()
                .and_then(|h| h.strip_prefix("Bearer "))
                .map(str::trim)
                .map(str::to_owned),
        ) {
            return constant_eq(given.as_bytes(), token.as_bytes());
        }
        let Some(auth) = auth else {
            return false;
        };
        let names: Vec<String> = parts
            .headers
            .keys()
            .map(|k| k.as_str().to_owned())
            .collect();
        let raw = RawRequest {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            header: &header,
            header_names: &names,
            // GET carries no body; a body sent anyway is not read, so its hash must be that of
            // nothing (or UNSIGNED-PAYLOAD) for the signature to hold.
            body: &[],
            secure_transport: secure,
        };
        match auth.authenticate_any_service(&raw, spillway_identity::time::now()) {
            Ok(_) => true,
            Err(e) => {
                tracing::info!(code = %e.code, "refused a read of {}: {}", parts.uri.path(), e.message);
                false
            }
        }
    }
}
