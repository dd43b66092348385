//! What authorization found out about the caller, as events carry it in
//! `requestContext.authorizer` (and, for 1.0 with IAM, `requestContext.identity`).

use serde_json::{Map, Value, json};

use crate::request::GatewayRequest;

/// An IAM caller (SigV4-signed request).
#[derive(Clone, Debug)]
pub struct IamCaller {
    pub access_key: String,
    pub account_id: String,
    /// `AIDA...` for a user, `AROA...:session` for a role session; spillway derives it from
    /// the ARN since it keeps no unique ids.
    pub caller_id: String,
    pub user_arn: String,
}

#[derive(Clone, Debug, Default)]
pub enum Authorized {
    #[default]
    None,
    Iam(IamCaller),
    Jwt {
        claims: Map<String, Value>,
        scopes: Vec<String>,
    },
    /// A function authorizer's answer: its context, and the principal of an IAM-policy answer.
    Lambda {
        principal_id: Option<String>,
        context: Map<String, Value>,
    },
}

impl Authorized {
    /// `requestContext.authorizer` of a 2.0 event.
    pub fn v2(&self) -> Option<Value> {
        match self {
            Authorized::None => None,
            Authorized::Iam(c) => Some(json!({
                "iam": {
                    "accessKey": c.access_key,
                    "accountId": c.account_id,
                    "callerId": c.caller_id,
                    "cognitoIdentity": null,
                    "principalOrgId": null,
                    "userArn": c.user_arn,
                    "userId": c.caller_id,
                }
            })),
            Authorized::Jwt { claims, scopes } => Some(json!({
                "jwt": {
                    "claims": flatten_claims(claims),
                    "scopes": if scopes.is_empty() { Value::Null } else { json!(scopes) },
                }
            })),
            Authorized::Lambda { context, .. } => Some(json!({ "lambda": context })),
        }
    }

    /// `requestContext.authorizer` of a 1.0 event.
    pub fn v1(&self) -> Option<Value> {
        match self {
            Authorized::None | Authorized::Iam(_) => None,
            Authorized::Jwt { claims, scopes } => Some(json!({
                "claims": flatten_claims(claims),
                "scopes": if scopes.is_empty() { Value::Null } else { json!(scopes) },
            })),
            Authorized::Lambda {
                principal_id,
                context,
            } => {
                let mut m = context.clone();
                if let Some(p) = principal_id {
                    m.insert("principalId".into(), json!(p));
                }
                Some(Value::Object(m))
            }
        }
    }

    /// `requestContext.identity` of a 1.0 event.
    pub fn identity_v1(&self, req: &GatewayRequest) -> Value {
        let iam = match self {
            Authorized::Iam(c) => Some(c),
            _ => None,
        };
        json!({
            "accessKey": iam.map(|c| c.access_key.clone()),
            "accountId": iam.map(|c| c.account_id.clone()),
            "caller": iam.map(|c| c.caller_id.clone()),
            "cognitoAuthenticationProvider": null,
            "cognitoAuthenticationType": null,
            "cognitoIdentityId": null,
            "cognitoIdentityPoolId": null,
            "principalOrgId": null,
            "sourceIp": req.source_ip.to_string(),
            "user": iam.map(|c| c.caller_id.clone()),
            "userAgent": req.user_agent(),
            "userArn": iam.map(|c| c.user_arn.clone()),
        })
    }
}

/// API Gateway hands JWT claims over as strings: numbers and booleans as their text, arrays as
/// `[a b]` (its documented rendering of list claims), objects as JSON text.
fn flatten_claims(claims: &Map<String, Value>) -> Value {
    let out: Map<String, Value> = claims
        .iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Array(items) => format!(
                    "[{}]",
                    items
                        .iter()
                        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                other => other.to_string(),
            };
            (k.clone(), Value::String(s))
        })
        .collect();
    Value::Object(out)
}
