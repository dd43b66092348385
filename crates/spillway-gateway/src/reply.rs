//! The responses the gateway makes itself, with API Gateway's statuses and bodies. Their
//! `responseType` names (API Gateway's gateway response types) go to access logs as
//! `$context.error.responseType`.

use crate::spec::ApiKind;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayError {
    /// No route (HTTP API) or no stage (HTTP API without `$default`).
    NotFound,
    /// REST: no resource or method for the request.
    MissingAuthenticationToken,
    /// REST: the path names no stage; any API: an authorizer said no.
    Forbidden,
    /// A JWT authorizer refused the token (`www-authenticate` says why) or a function
    /// authorizer found no identity.
    Unauthorized {
        www_authenticate: Option<String>,
    },
    /// IAM: the caller may not invoke this route; the message names both.
    AccessDenied(String),
    /// IAM: the signature is wrong or incomplete; the message says how.
    InvalidSignature(String),
    /// REST: the API key is missing or unknown.
    InvalidApiKey,
    /// The body is over 10 MB.
    RequestTooLarge,
    /// The body did not arrive in time.
    RequestTimeout,
    BadRequest(String),
    /// A stage or route token bucket is empty.
    Throttled,
    /// An API key used up its usage plan's quota.
    QuotaExceeded,
    /// The function integration failed: the function errored or answered in a shape API
    /// Gateway cannot map (HTTP API 500; REST 502).
    IntegrationFailure,
    /// The integration could not be called at all (no such function, event too large...).
    Internal,
    /// A function authorizer failed or answered nonsense.
    AuthorizerFailure,
    /// The function is throttled.
    Unavailable,
    /// The integration took longer than its timeout.
    Timeout,
}

impl GatewayError {
    pub fn status(&self, kind: ApiKind) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::MissingAuthenticationToken
            | Self::Forbidden
            | Self::AccessDenied(_)
            | Self::InvalidSignature(_)
            | Self::InvalidApiKey => 403,
            Self::Unauthorized { .. } => 401,
            Self::RequestTooLarge => 413,
            Self::RequestTimeout => 408,
            Self::BadRequest(_) => 400,
            Self::Throttled | Self::QuotaExceeded => 429,
            Self::IntegrationFailure if kind == ApiKind::Rest => 502,
            Self::IntegrationFailure | Self::Internal | Self::AuthorizerFailure => 500,
            Self::Unavailable => 503,
            Self::Timeout => 504,
        }
    }

    /// The `message` of the JSON body.
    pub fn message(&self, kind: ApiKind) -> String {
        let rest = kind == ApiKind::Rest;
        match self {
            Self::NotFound => "Not Found".into(),
            Self::MissingAuthenticationToken => "Missing Authentication Token".into(),
            Self::Forbidden => "Forbidden".into(),
            Self::Unauthorized { .. } => "Unauthorized".into(),
            Self::AccessDenied(m) | Self::InvalidSignature(m) | Self::BadRequest(m) => m.clone(),
            Self::InvalidApiKey => "Forbidden".into(),
            Self::RequestTooLarge => "Request Entity Too Large".into(),
            Self::RequestTimeout => "Request Timeout".into(),
            Self::Throttled => "Too Many Requests".into(),
            Self::QuotaExceeded => "Limit Exceeded".into(),
            Self::IntegrationFailure | Self::Internal | Self::AuthorizerFailure if rest => {
                "Internal server error".into()
            }
            Self::IntegrationFailure | Self::Internal | Self::AuthorizerFailure => {
                "Internal Server Error".into()
            }
            Self::Unavailable => "Service Unavailable".into(),
            Self::Timeout if rest => "Endpoint request timed out".into(),
            Self::Timeout => "Service Unavailable".into(),
        }
    }

    /// The body: `{"message":"..."}` (IAM's access denial says `Message`, as AWS does).
    pub fn body(&self, kind: ApiKind) -> String {
        let key = if matches!(self, Self::AccessDenied(_)) {
            "Message"
        } else {
            "message"
        };
        serde_json::json!({ key: self.message(kind) }).to_string()
    }

    /// API Gateway's gateway response type.
    pub fn response_type(&self) -> &'static str {
        match self {
            Self::NotFound => "RESOURCE_NOT_FOUND",
            Self::MissingAuthenticationToken => "MISSING_AUTHENTICATION_TOKEN",
            Self::Forbidden | Self::AccessDenied(_) => "ACCESS_DENIED",
            Self::Unauthorized { .. } => "UNAUTHORIZED",
            Self::InvalidSignature(_) => "INVALID_SIGNATURE",
            Self::InvalidApiKey => "INVALID_API_KEY",
            Self::RequestTooLarge => "REQUEST_TOO_LARGE",
            Self::RequestTimeout | Self::BadRequest(_) => "BAD_REQUEST_BODY",
            Self::Throttled => "THROTTLED",
            Self::QuotaExceeded => "QUOTA_EXCEEDED",
            Self::IntegrationFailure | Self::Unavailable => "INTEGRATION_FAILURE",
            Self::Internal => "API_CONFIGURATION_ERROR",
            Self::AuthorizerFailure => "AUTHORIZER_FAILURE",
            Self::Timeout => "INTEGRATION_TIMEOUT",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_match_api_gateway() {
        assert_eq!(
            GatewayError::NotFound.body(ApiKind::Http),
            r#"{"message":"Not Found"}"#
        );
        assert_eq!(
            GatewayError::MissingAuthenticationToken.body(ApiKind::Rest),
            r#"{"message":"Missing Authentication Token"}"#
        );
        let u = GatewayError::Unauthorized {
            www_authenticate: None,
        };
        assert_eq!(u.body(ApiKind::Http).len(), 26);
        assert_eq!(GatewayError::IntegrationFailure.status(ApiKind::Rest), 502);
        assert_eq!(GatewayError::IntegrationFailure.status(ApiKind::Http), 500);
        assert_eq!(
            GatewayError::Throttled.body(ApiKind::Http),
            r#"{"message":"Too Many Requests"}"#
        );
    }
}
