//! Custom authorizers: JWT (HTTP APIs) and function (Lambda) authorizers, by name.

mod function;
mod jwt;

use std::collections::HashMap;

use crate::authorized::Authorized;
use crate::error::SetupError;
use crate::gateway::Gateway;
use crate::reply::GatewayError;
use crate::request::GatewayRequest;
use crate::spec::{ApiSpec, AuthorizerSpec, RouteSpec};

enum Authorizer {
    Jwt(jwt::JwtAuthorizer),
    Function(function::FunctionAuthorizer),
}

pub struct Authorizers {
    by_name: HashMap<String, Authorizer>,
}

/// An authorizer's refusal: what the client gets, and why (for `$context.authorizer.error`).
pub type Refusal = (GatewayError, String);

impl Authorizers {
    pub fn new(api: &ApiSpec) -> Result<Self, SetupError> {
        let mut by_name = HashMap::new();
        for (name, spec) in &api.authorizers {
            let a = match spec {
                AuthorizerSpec::Jwt {
                    issuer,
                    audience,
                    jwks,
                    identity_source,
                } => Authorizer::Jwt(
                    jwt::JwtAuthorizer::new(issuer, audience, jwks, identity_source).map_err(
                        |e| {
                            SetupError::Config(format!("apis.{}.authorizers.{name}: {e}", api.name))
                        },
                    )?,
                ),
                AuthorizerSpec::Function {
                    function,
                    simple_responses,
                    identity_sources,
                    result_ttl,
                } => Authorizer::Function(function::FunctionAuthorizer::new(
                    function.clone(),
                    *simple_responses,
                    identity_sources.clone(),
                    *result_ttl,
                )),
            };
            by_name.insert(name.clone(), a);
        }
        Ok(Self { by_name })
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn authorize(
        &self,
        gw: &Gateway,
        name: &str,
        scopes: &[String],
        req: &GatewayRequest,
        route: &RouteSpec,
        stage: &str,
        stage_path: &str,
    ) -> Result<Authorized, Refusal> {
        match self.by_name.get(name) {
            Some(Authorizer::Jwt(j)) => j.authorize(req, scopes),
            Some(Authorizer::Function(f)) => f.authorize(gw, req, route, stage, stage_path).await,
            None => Err((
                GatewayError::Internal,
                format!("no authorizer named {name:?}"),
            )),
        }
    }
}

/// The value of an identity source: `$request.header.X`, `$request.querystring.X`,
/// `$context.X` (requestId, httpMethod, stage) or `$stageVariables.X`.
pub(crate) fn identity_value(
    source: &str,
    req: &GatewayRequest,
    stage: &str,
    stage_variables: &std::collections::BTreeMap<String, String>,
) -> Option<String> {
    if let Some(h) = source.strip_prefix("$request.header.") {
        return req.header_joined(&h.to_ascii_lowercase());
    }
    if let Some(q) = source.strip_prefix("$request.querystring.") {
        return req.query_joined(q);
    }
    if let Some(v) = source.strip_prefix("$stageVariables.") {
        return stage_variables.get(v).cloned();
    }
    match source {
        "$context.requestId" => Some(req.request_id.clone()),
        "$context.httpMethod" => Some(req.method.clone()),
        "$context.stage" => Some(stage.to_owned()),
        _ => None,
    }
    .filter(|v| !v.is_empty())
}
