//! Function (Lambda) authorizers. HTTP APIs send the 2.0 authorizer event (`type: REQUEST`,
//! `routeArn`, `identitySource` and the request's fields) and accept a simple response
//! (`isAuthorized`, `context`) or an IAM policy; REST APIs send the 1.0 REQUEST event with
//! `methodArn` and want a policy. Answers are cached by identity for `result_ttl`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use spillway_functions::InvokeRequest;

use super::{Refusal, identity_value};
use crate::authorized::Authorized;
use crate::event::{self, EventInput};
use crate::gateway::Gateway;
use crate::reply::GatewayError;
use crate::request::GatewayRequest;
use crate::spec::{ApiKind, RouteSpec};

/// How long an authorizer function may take (API Gateway's limit is its 10 s... for the
/// authorizer as a whole, not configurable).
const AUTHORIZER_TIMEOUT: Duration = Duration::from_secs(10);
/// Cached answers kept at most, so that many identities cannot grow the cache without bound.
const CACHE_LIMIT: usize = 10_000;

/// Answers by identity (and route ARN), with when they were given.
type Cache = HashMap<String, (Instant, Result<Authorized, Refusal>)>;

pub struct FunctionAuthorizer {
    function: String,
    simple: bool,
    sources: Vec<String>,
    ttl: Duration,
    cache: Mutex<Cache>,
}

fn failure(why: impl Into<String>) -> Refusal {
    (GatewayError::AuthorizerFailure, why.into())
}

impl FunctionAuthorizer {
    pub fn new(function: String, simple: bool, sources: Vec<String>, ttl: Duration) -> Self {
        Self {
            function,
            simple,
            sources,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn authorize(
        &self,
        gw: &Gateway,
        req: &GatewayRequest,
        route: &RouteSpec,
        stage: &str,
        stage_path: &str,
    ) -> Result<Authorized, Refusal> {
        let stage_spec = gw.spec.stages.get(stage).cloned().unwrap_or_default();
        let mut identity = Vec::new();
        for s in &self.sources {
            match identity_value(s, req, stage, &stage_spec.variables) {
                Some(v) => identity.push(v),
                // A missing identity source is a 401 without calling the function.
                None => {
                    return Err((
                        GatewayError::Unauthorized {
                            www_authenticate: None,
                        },
                        format!("the identity source {s} is missing"),
                    ));
                }
            }
        }
        // The route ARN belongs in the key: a policy answer is about specific resources.
        let arn = crate::iam::route_arn(&gw.spec, stage, &req.method, stage_path);
        let key = format!("{}\u{0}{}", identity.join("\u{0}"), arn);
        if !self.ttl.is_zero()
            && !identity.is_empty()
            && let Ok(cache) = self.cache.lock()
            && let Some((at, answer)) = cache.get(&key)
            && at.elapsed() < self.ttl
        {
            return answer.clone();
        }
        let answer = self
            .call(
                gw,
                req,
                route,
                stage,
                stage_path,
                &stage_spec,
                &identity,
                &arn,
            )
            .await;
        // Failures of the authorizer itself are not cached; its refusals are.
        let cacheable = !matches!(&answer, Err((GatewayError::AuthorizerFailure, _)));
        if !self.ttl.is_zero()
            && !identity.is_empty()
            && cacheable
            && let Ok(mut cache) = self.cache.lock()
        {
            if cache.len() >= CACHE_LIMIT {
                cache.retain(|_, (at, _)| at.elapsed() < self.ttl);
                if cache.len() >= CACHE_LIMIT {
                    cache.clear();
                }
            }
            cache.insert(key, (Instant::now(), answer.clone()));
        }
        answer
    }

    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        gw: &Gateway,
        req: &GatewayRequest,
        route: &RouteSpec,
        stage: &str,
        stage_path: &str,
        stage_spec: &crate::spec::StageSpec,
        identity: &[String],
        arn: &str,
    ) -> Result<Authorized, Refusal> {
        let input = EventInput {
            req,
            api: &gw.spec,
            route_key: &route.key,
            stage,
            stage_variables: &stage_spec.variables,
            path_parameters: &[],
            stage_path,
            authorized: &Authorized::None,
            api_key: None,
        };
        let event = match gw.spec.kind {
            ApiKind::Http => {
                let mut e = event::v2(&input);
                if let Value::Object(m) = &mut e {
                    m.remove("body");
                    m.remove("isBase64Encoded");
                    m.insert("type".into(), json!("REQUEST"));
                    m.insert("routeArn".into(), json!(arn));
                    m.insert("identitySource".into(), json!(identity));
                }
                e
            }
            ApiKind::Rest => {
                let mut e = event::v1(&input);
                if let Value::Object(m) = &mut e {
                    m.remove("body");
                    m.remove("isBase64Encoded");
                    m.insert("type".into(), json!("REQUEST"));
                    m.insert("methodArn".into(), json!(arn));
                }
                e
            }
        };
        let host = gw
            .services
            .functions
            .as_ref()
            .ok_or_else(|| failure("no function host"))?;
        let payload = serde_json::to_vec(&event).map_err(|e| failure(e.to_string()))?;
        let outcome = tokio::time::timeout(
            AUTHORIZER_TIMEOUT,
            host.invoke(&self.function, InvokeRequest::new(payload)),
        )
        .await
        .map_err(|_| failure("the authorizer timed out"))?
        .map_err(|e| failure(format!("the authorizer could not be invoked: {e}")))?;
        if outcome.is_error() {
            return Err(failure(format!(
                "the authorizer failed ({})",
                outcome.error_type.as_deref().unwrap_or("Unhandled")
            )));
        }
        let answer: Value = serde_json::from_slice(&outcome.payload)
            .map_err(|_| failure("the authorizer's answer is not JSON"))?;
        let context = match answer.get("context") {
            Some(Value::Object(c)) => c.clone(),
            None | Some(Value::Null) => Map::new(),
            Some(_) => return Err(failure("the authorizer's context is not an object")),
        };
        if self.simple && gw.spec.kind == ApiKind::Http {
            return match answer.get("isAuthorized") {
                Some(Value::Bool(true)) => Ok(Authorized::Lambda {
                    principal_id: None,
                    context,
                }),
                Some(Value::Bool(false)) => {
                    Err((GatewayError::Forbidden, "the authorizer said no".into()))
                }
                _ => Err(failure("the authorizer's answer has no isAuthorized")),
            };
        }
        let principal_id = answer
            .get("principalId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let document = answer
            .get("policyDocument")
            .ok_or_else(|| failure("the authorizer's answer has no policyDocument"))?;
        let policy = spillway_identity::policy::parse_document(&document.to_string())
            .map_err(|e| failure(format!("the authorizer's policy: {e}")))?;
        let request = spillway_identity::policy::Request::new(
            "execute-api:Invoke",
            arn,
            principal_id.as_deref().unwrap_or(""),
            spillway_identity::time::now(),
        );
        if spillway_identity::policy::evaluate(&[policy], None, &request).allowed() {
            Ok(Authorized::Lambda {
                principal_id,
                context,
            })
        } else {
            Err((
                GatewayError::Forbidden,
                "the authorizer's policy does not allow this route".into(),
            ))
        }
    }
}
