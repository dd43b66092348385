//! What one API is, resolved: the supervisor builds an [`ApiSpec`] from the stack file (with
//! `${...}` references already replaced), and the gateway serves it. Nothing here reads files.

use std::collections::BTreeMap;
use std::time::Duration;

/// HTTP API (API Gateway v2) or REST API (v1): they differ in event format defaults, error
/// bodies, request id headers, and how an unmatched request is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiKind {
    Http,
    Rest,
}

/// The Lambda proxy event shape a function receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadFormat {
    V1,
    V2,
}

#[derive(Clone, Debug)]
pub enum Integration {
    /// Invoke this function with a proxy event.
    Function(String),
    /// Answer with a fixed response.
    Mock {
        status: u16,
        headers: BTreeMap<String, String>,
        body: String,
    },
    /// Forward to this base URL (HTTP proxy integration).
    Http(String),
    /// Send to a queue (HTTP API `SQS-SendMessage`); served once the queue service exists.
    Queue {
        queue: String,
        parameters: BTreeMap<String, String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteAuth {
    None,
    /// SigV4, and `execute-api:Invoke` on the route's ARN.
    Iam,
    /// A JWT or function authorizer by name, with the scopes a JWT must carry.
    Authorizer {
        name: String,
        scopes: Vec<String>,
    },
}

#[derive(Clone, Debug)]
pub struct RouteSpec {
    /// `GET /users/{id}`, `ANY /{proxy+}` or `$default`.
    pub key: String,
    pub integration: Integration,
    pub payload: PayloadFormat,
    pub auth: RouteAuth,
    /// How long the integration may take (HTTP API default 30 s, REST 29 s).
    pub timeout: Duration,
    pub api_key_required: bool,
}

/// A token bucket's refill rate and size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    /// API Gateway's account-level default: 10,000 requests per second, bursts of 5,000.
    pub const DEFAULT: Rate = Rate {
        per_second: 10_000.0,
        burst: 5_000,
    };
}

#[derive(Clone, Debug, Default)]
pub struct StageSpec {
    pub variables: BTreeMap<String, String>,
    pub throttle: Option<Rate>,
    /// Per-route limits by route key.
    pub route_throttle: BTreeMap<String, Rate>,
}

#[derive(Clone, Debug, Default)]
pub struct CorsSpec {
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<Duration>,
    pub allow_credentials: bool,
}

#[derive(Clone, Debug)]
pub enum AuthorizerSpec {
    Jwt {
        issuer: String,
        audience: Vec<String>,
        /// The JWKS document's text (the supervisor reads the file).
        jwks: String,
        identity_source: String,
    },
    Function {
        function: String,
        simple_responses: bool,
        identity_sources: Vec<String>,
        result_ttl: Duration,
    },
}

#[derive(Clone, Debug)]
pub enum LogDestination {
    Stdout,
    File(std::path::PathBuf),
}

#[derive(Clone, Debug)]
pub struct AccessLogSpec {
    pub format: String,
    pub destination: LogDestination,
}

#[derive(Clone, Debug)]
pub struct ApiSpec {
    pub name: String,
    /// The API id (`abcdef1234`), part of the `execute-api` ARN and `requestContext.apiId`.
    pub id: String,
    pub kind: ApiKind,
    pub region: String,
    pub account: String,
    pub routes: Vec<RouteSpec>,
    /// Stages by name; `$default` serves paths without a stage prefix.
    pub stages: BTreeMap<String, StageSpec>,
    pub cors: Option<CorsSpec>,
    pub authorizers: BTreeMap<String, AuthorizerSpec>,
    pub access_log: Option<AccessLogSpec>,
    /// REST APIs: content types whose bodies reach functions base64-encoded.
    pub binary_media_types: Vec<String>,
    /// Custom domain names and their API mappings.
    pub domains: Vec<DomainMapping>,
    /// REST API keys, with their usage plan's limits.
    pub api_keys: Vec<ApiKeySpec>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaPeriod {
    Day,
    Week,
    Month,
}

#[derive(Clone, Debug)]
pub struct ApiKeySpec {
    /// The key's name in the stack (API Gateway's key id).
    pub name: String,
    pub value: String,
    pub enabled: bool,
    pub throttle: Option<Rate>,
    pub quota: Option<(u64, QuotaPeriod)>,
}

/// A custom domain's API mapping: requests for `name` under `base_path` go to `stage`,
/// without a stage segment in their path.
#[derive(Clone, Debug)]
pub struct DomainMapping {
    pub name: String,
    /// `None` maps the whole domain.
    pub base_path: Option<String>,
    /// `None` is `$default`.
    pub stage: Option<String>,
}

/// The largest request body API Gateway accepts (10 MB, both kinds).
pub const MAX_BODY: usize = 10 * 1024 * 1024;
