//! `AWS_IAM` routes: the request's SigV4 signature (service `execute-api`) is verified against
//! the stack's access keys, and the caller's policies must allow `execute-api:Invoke` on
//! `arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/{path}`.

use spillway_aws::auth::{Authenticator, RawRequest};
use spillway_aws::protocol::Protocol;

use crate::authorized::{Authorized, IamCaller};
use crate::reply::GatewayError;
use crate::request::GatewayRequest;
use crate::spec::{ApiKind, ApiSpec};

/// The ARN a request invokes. `$default` stage and path are written as API Gateway writes them.
pub fn route_arn(api: &ApiSpec, stage: &str, method: &str, stage_path: &str) -> String {
    format!(
        "arn:aws:execute-api:{}:{}:{}/{stage}/{method}/{}",
        api.region,
        api.account,
        api.id,
        stage_path.trim_start_matches('/')
    )
}

pub fn authorize(
    iam: &Authenticator,
    api: &ApiSpec,
    req: &GatewayRequest,
    stage: &str,
    stage_path: &str,
) -> Result<Authorized, GatewayError> {
    let header = |name: &str| req.header_joined(name);
    let names: Vec<String> = req.headers.iter().map(|(k, _)| k.clone()).collect();
    let raw = RawRequest {
        method: &req.method,
        path: &req.raw_path,
        query: &req.raw_query,
        header: &header,
        header_names: &names,
        body: &req.body,
        // An API with custom domains serves only TLS on its listener (server.rs), one without
        // them only plain HTTP.
        secure_transport: !api.domains.is_empty(),
    };
    let caller = iam
        .authenticate(
            &raw,
            "execute-api",
            Protocol::RestJson,
            spillway_identity::time::now(),
        )
        .map_err(|e| {
            if e.code.starts_with("MissingAuthenticationToken") {
                match api.kind {
                    ApiKind::Rest => GatewayError::MissingAuthenticationToken,
                    ApiKind::Http => GatewayError::Forbidden,
                }
            } else {
                GatewayError::InvalidSignature(e.message)
            }
        })?;
    let arn = route_arn(api, stage, &req.method, stage_path);
    caller
        .authorize("execute-api:Invoke", &arn, 403)
        .map_err(|e| GatewayError::AccessDenied(e.message))?;
    let user_arn = caller.principal.arn.clone();
    let account_id = user_arn.split(':').nth(4).unwrap_or_default().to_owned();
    // spillway keeps no unique ids (AIDA.../AROA...); the principal's name stands in for one.
    let caller_id = user_arn
        .rsplit(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok(Authorized::Iam(IamCaller {
        access_key: caller.access_key_id.unwrap_or_default(),
        account_id,
        caller_id,
        user_arn,
    }))
}
