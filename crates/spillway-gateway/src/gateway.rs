//! One API answering one request: read the body (bounded, timed), find the stage and route,
//! throttle, authorize, call the integration, map its answer, add CORS and the request id,
//! then log and count it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use spillway_functions::FunctionHost;
use spillway_identity::principals::KeyRing;

use crate::access_log::{AccessLog, Record};
use crate::authorized::Authorized;
use crate::authorizers::Authorizers;
use crate::error::SetupError;
use crate::event::EventInput;
use crate::metrics::ApiMetrics;
use crate::reply::GatewayError;
use crate::request::GatewayRequest;
use crate::response::HttpReply;
use crate::routes::Router;
use crate::spec::{ApiKind, ApiSpec, Integration, MAX_BODY, RouteAuth, RouteSpec, StageSpec};
use crate::throttle::Throttles;
use crate::{event, integrations, response};

/// How long a client may take to send its body once the headers are in. A client that trickles
/// bytes (slowloris) is cut off instead of holding a task forever.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// What a gateway needs from the rest of spillway.
#[derive(Clone, Default)]
pub struct Services {
    pub functions: Option<Arc<FunctionHost>>,
    /// Access keys, for `AWS_IAM` routes.
    pub keys: Option<Arc<KeyRing>>,
    /// The queue service, for `SQS-SendMessage` routes.
    pub queues: Option<Arc<dyn integrations::queue::QueueSink>>,
}

pub struct Gateway {
    pub(crate) spec: ApiSpec,
    router: Router,
    default_stage: StageSpec,
    pub(crate) services: Services,
    iam: Option<spillway_aws::auth::Authenticator>,
    authorizers: Authorizers,
    throttles: Throttles,
    api_keys: crate::api_keys::ApiKeys,
    access_log: Option<AccessLog>,
    pub(crate) http: integrations::http::Client,
    pub metrics: ApiMetrics,
}

/// The stage a request is for, and its path within that stage.
struct StageMatch<'a> {
    name: String,
    spec: &'a StageSpec,
    path: String,
}

impl Gateway {
    pub fn new(spec: ApiSpec, services: Services) -> Result<Self, SetupError> {
        let router = Router::new(spec.routes.iter().map(|r| r.key.as_str()))
            .map_err(|e| SetupError::Config(format!("apis.{}: {e}", spec.name)))?;
        let iam = services.keys.as_ref().map(|k| {
            // An AWS_IAM route always wants a valid signature: dev mode's leniency for the AWS
            // endpoint does not apply here.
            spillway_aws::auth::Authenticator::new(Arc::clone(k), &spec.region, &spec.account, true)
        });
        let needs_iam = spec.routes.iter().any(|r| r.auth == RouteAuth::Iam);
        if needs_iam && iam.is_none() {
            return Err(SetupError::Config(format!(
                "apis.{}: AWS_IAM routes need the stack's access keys",
                spec.name
            )));
        }
        let access_log =
            match &spec.access_log {
                Some(a) => Some(AccessLog::open(a).map_err(|e| {
                    SetupError::Config(format!("apis.{}.access_log: {e}", spec.name))
                })?),
                None => None,
            };
        Ok(Self {
            authorizers: Authorizers::new(&spec)?,
            throttles: Throttles::new(&spec.stages),
            api_keys: crate::api_keys::ApiKeys::new(&spec.api_keys),
            default_stage: StageSpec::default(),
            metrics: ApiMetrics::new(&spec),
            http: integrations::http::client(),
            router,
            iam,
            access_log,
            services,
            spec,
        })
    }

    pub fn spec(&self) -> &ApiSpec {
        &self.spec
    }

    fn new_request_id(&self) -> String {
        use base64::Engine as _;
        match self.spec.kind {
            // HTTP APIs' ids look like `LV7fzho-PHcEJPw=`; REST's are UUIDs.
            ApiKind::Http => {
                base64::engine::general_purpose::URL_SAFE.encode(rand::random::<[u8; 10]>())
            }
            ApiKind::Rest => spillway_aws::endpoint::request_id(),
        }
    }

    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let time_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let (parts, body) = req.into_parts();
        let mut headers: Vec<(String, String)> = Vec::with_capacity(parts.headers.len() + 1);
        for (k, v) in &parts.headers {
            headers.push((
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            ));
        }
        // HTTP/2 carries the host in :authority, which hyper keeps in the URI.
        if !parts.headers.contains_key(hyper::header::HOST)
            && let Some(a) = parts.uri.authority()
        {
            headers.push(("host".into(), a.to_string()));
        }
        let mut greq = GatewayRequest {
            method: parts.method.as_str().to_owned(),
            raw_path: parts.uri.path().to_owned(),
            raw_query: parts.uri.query().unwrap_or("").to_owned(),
            headers,
            body: Bytes::new(),
            source_ip: peer.ip().to_canonical(),
            protocol: match parts.version {
                hyper::Version::HTTP_2 => "HTTP/2.0",
                hyper::Version::HTTP_10 => "HTTP/1.0",
                _ => "HTTP/1.1",
            },
            request_id: self.new_request_id(),
            time_ms,
        };
        let mut record = self.start_record(&greq);
        let outcome = match read_body(body).await {
            Ok(b) => {
                greq.body = b;
                self.route(&greq, &mut record).await
            }
            Err(e) => Err(e),
        };
        let mut reply = match outcome {
            Ok(r) => r,
            Err(e) => {
                record.set("error.message", e.message(self.spec.kind));
                record.set("error.responseType", e.response_type());
                tracing::info!(
                    api = %self.spec.name,
                    request_id = %greq.request_id,
                    status = e.status(self.spec.kind),
                    "{} {}: {}",
                    greq.method,
                    greq.raw_path,
                    e.message(self.spec.kind)
                );
                self.error_reply(&e)
            }
        };
        // A preflight's answer already carries exactly the CORS headers it should.
        if let Some(cors) = &self.spec.cors
            && !crate::spec::CorsSpec::is_preflight(&greq)
        {
            cors.decorate(&greq, &mut reply);
        }
        let response = self.finish(reply, &greq.request_id);
        let latency = started.elapsed();
        record.set("status", response.status().as_u16().to_string());
        record.set(
            "responseLength",
            hyper::body::Body::size_hint(response.body())
                .exact()
                .unwrap_or(0)
                .to_string(),
        );
        record.set("responseLatency", latency.as_millis().to_string());
        self.metrics.observe(
            record.get("stage").unwrap_or("-"),
            response.status().as_u16(),
            latency,
            record
                .get("integrationLatency")
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis),
        );
        if let Some(log) = &self.access_log {
            log.write(&record);
        }
        response
    }

    fn start_record(&self, req: &GatewayRequest) -> Record {
        if self.access_log.is_none() {
            return Record::for_metrics();
        }
        let mut r = Record::default();
        r.set("requestId", req.request_id.clone());
        r.set("extendedRequestId", req.request_id.clone());
        r.set("apiId", self.spec.id.clone());
        r.set("identity.sourceIp", req.source_ip.to_string());
        r.set("identity.userAgent", req.user_agent());
        r.set(
            "requestTime",
            spillway_identity::time::format_clf(req.time_ms / 1000),
        );
        r.set("requestTimeEpoch", req.time_ms.to_string());
        r.set("httpMethod", req.method.clone());
        r.set("path", req.raw_path.clone());
        r.set("protocol", req.protocol);
        r.set("domainName", req.host());
        r
    }

    fn error_reply(&self, e: &GatewayError) -> HttpReply {
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let GatewayError::Unauthorized {
            www_authenticate: Some(w),
        } = e
        {
            headers.push(("www-authenticate".into(), w.clone()));
        }
        if self.spec.kind == ApiKind::Rest {
            headers.push(("x-amzn-ErrorType".into(), error_type(e).into()));
        }
        HttpReply {
            status: e.status(self.spec.kind),
            headers,
            body: Bytes::from(e.body(self.spec.kind)),
        }
    }

    /// The HTTP response: the reply's headers (names or values HTTP cannot carry are dropped
    /// with a log line), and the request id header of the API's kind.
    fn finish(&self, reply: HttpReply, request_id: &str) -> Response<Full<Bytes>> {
        let mut r = Response::new(Full::new(reply.body));
        *r.status_mut() = hyper::StatusCode::from_u16(reply.status)
            .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        let h = r.headers_mut();
        for (k, v) in &reply.headers {
            // The body's length is the gateway's to say.
            if k.eq_ignore_ascii_case("content-length")
                || k.eq_ignore_ascii_case("transfer-encoding")
                || k.eq_ignore_ascii_case("connection")
            {
                continue;
            }
            match (
                hyper::header::HeaderName::from_bytes(k.as_bytes()),
                hyper::header::HeaderValue::from_str(v),
            ) {
                (Ok(name), Ok(value)) => {
                    h.append(name, value);
                }
                _ => tracing::warn!(
                    api = %self.spec.name,
                    request_id,
                    "dropped a response header HTTP cannot carry: {k:?}"
                ),
            }
        }
        let id_header = match self.spec.kind {
            ApiKind::Http => "apigw-requestid",
            ApiKind::Rest => "x-amzn-requestid",
        };
        if let Ok(v) = hyper::header::HeaderValue::from_str(request_id) {
            h.insert(id_header, v);
        }
        r
    }

    /// Which stage a path is for: a named stage by its first segment, else `$default` (an HTTP
    /// API without stages has just that one).
    fn stage_of(&self, host: &str, path: &str) -> Result<StageMatch<'_>, GatewayError> {
        if let Some(m) = self.mapping_of(host) {
            return self.mapped_stage(m, path);
        }
        let rest = path.strip_prefix('/').unwrap_or(path);
        let (first, within) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if first != "$default"
            && let Some(s) = self.spec.stages.get(first)
        {
            return Ok(StageMatch {
                name: first.to_owned(),
                spec: s,
                path: within.to_owned(),
            });
        }
        let default = match self.spec.stages.get("$default") {
            Some(s) => Some(s),
            None if self.spec.stages.is_empty() && self.spec.kind == ApiKind::Http => {
                Some(&self.default_stage)
            }
            None => None,
        };
        match default {
            Some(spec) => Ok(StageMatch {
                name: "$default".into(),
                spec,
                path: path.to_owned(),
            }),
            None if self.spec.kind == ApiKind::Rest => Err(GatewayError::Forbidden),
            None => Err(GatewayError::NotFound),
        }
    }

    /// The API mapping for the request's host, if it came through a custom domain.
    fn mapping_of(&self, host: &str) -> Option<&crate::spec::DomainMapping> {
        let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
        self.spec
            .domains
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }

    /// A custom domain's request: its base path removed, its stage from the mapping. A path
    /// outside the base path is not this API's (API Gateway answers 403 Forbidden).
    fn mapped_stage(
        &self,
        m: &crate::spec::DomainMapping,
        path: &str,
    ) -> Result<StageMatch<'_>, GatewayError> {
        let within = match m.base_path.as_deref().map(|b| b.trim_matches('/')) {
            None | Some("") => path.to_owned(),
            Some(base) => {
                let rest = path
                    .strip_prefix('/')
                    .and_then(|p| p.strip_prefix(base))
                    .ok_or(GatewayError::Forbidden)?;
                match rest {
                    "" => "/".to_owned(),
                    r if r.starts_with('/') => r.to_owned(),
                    _ => return Err(GatewayError::Forbidden),
                }
            }
        };
        let name = m.stage.clone().unwrap_or_else(|| "$default".into());
        let spec = self.spec.stages.get(&name).unwrap_or(&self.default_stage);
        Ok(StageMatch {
            name,
            spec,
            path: within,
        })
    }

    async fn route(
        &self,
        req: &GatewayRequest,
        record: &mut Record,
    ) -> Result<HttpReply, GatewayError> {
        let stage = self.stage_of(req.host(), &req.raw_path)?;
        record.set("stage", stage.name.clone());
        if let Some(cors) = &self.spec.cors
            && let Some(preflight) = cors.preflight(req)
        {
            record.set("routeKey", "-");
            return Ok(preflight);
        }
        let Some(matched) = self.router.find(&req.method, &stage.path) else {
            return Err(match self.spec.kind {
                ApiKind::Http => GatewayError::NotFound,
                ApiKind::Rest => GatewayError::MissingAuthenticationToken,
            });
        };
        let route = &self.spec.routes[matched.index];
        record.set("routeKey", route.key.clone());
        record.set(
            "resourcePath",
            route.key.split_once(' ').map_or("$default", |(_, p)| p),
        );
        if !self.throttles.admit(&stage.name, &route.key) {
            return Err(GatewayError::Throttled);
        }
        // API Gateway checks the key (and its usage plan) after authorization.
        let authorized = self.authorize(req, route, &stage, record).await?;
        let api_key = if route.api_key_required {
            let key = self.api_keys.admit(req)?;
            record.set("identity.apiKeyId", key.0.clone());
            record.set("identity.apiKey", key.1.clone());
            Some(key)
        } else {
            None
        };
        let input = EventInput {
            req,
            api: &self.spec,
            route_key: &route.key,
            stage: &stage.name,
            stage_variables: &stage.spec.variables,
            path_parameters: &matched.params,
            stage_path: &stage.path,
            authorized: &authorized,
            api_key: api_key.as_ref().map(|(n, v)| (n.as_str(), v.as_str())),
        };
        let started = Instant::now();
        let result = self.integrate(route, &input, record).await;
        record.set(
            "integrationLatency",
            started.elapsed().as_millis().to_string(),
        );
        record.set(
            "integration.latency",
            started.elapsed().as_millis().to_string(),
        );
        result
    }

    async fn authorize(
        &self,
        req: &GatewayRequest,
        route: &RouteSpec,
        stage: &StageMatch<'_>,
        record: &mut Record,
    ) -> Result<Authorized, GatewayError> {
        match &route.auth {
            RouteAuth::None => Ok(Authorized::None),
            RouteAuth::Iam => {
                let iam = self.iam.as_ref().ok_or(GatewayError::Internal)?;
                let result = crate::iam::authorize(iam, &self.spec, req, &stage.name, &stage.path);
                if let Ok(Authorized::Iam(c)) = &result {
                    record.set("identity.caller", c.caller_id.clone());
                    record.set("identity.user", c.caller_id.clone());
                    record.set("identity.userArn", c.user_arn.clone());
                    record.set("identity.accessKey", c.access_key.clone());
                    record.set("identity.accountId", c.account_id.clone());
                }
                result
            }
            RouteAuth::Authorizer { name, scopes } => {
                let result = self
                    .authorizers
                    .authorize(self, name, scopes, req, route, &stage.name, &stage.path)
                    .await;
                match &result {
                    Err((e, why)) => {
                        record.set("authorizer.error", why.clone());
                        Err(e.clone())
                    }
                    Ok(a) => {
                        if let Authorized::Lambda {
                            principal_id: Some(p),
                            ..
                        } = a
                        {
                            record.set("authorizer.principalId", p.clone());
                        }
                        Ok(a.clone())
                    }
                }
            }
        }
    }

    async fn integrate(
        &self,
        route: &RouteSpec,
        input: &EventInput<'_>,
        record: &mut Record,
    ) -> Result<HttpReply, GatewayError> {
        match &route.integration {
            Integration::Function(name) => {
                let event = match route.payload {
                    crate::spec::PayloadFormat::V2 => event::v2(input),
                    crate::spec::PayloadFormat::V1 => event::v1(input),
                };
                integrations::function::call(self, name, route, &event, record).await
            }
            Integration::Mock {
                status,
                headers,
                body,
            } => Ok(HttpReply {
                status: *status,
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                body: Bytes::from(substitute_stage_variables(body, input.stage_variables)),
            }),
            Integration::Http(base) => {
                integrations::http::call(self, base, route, input, record).await
            }
            Integration::Queue { queue, parameters } => {
                integrations::queue::call(self, queue, parameters, input, record).await
            }
        }
    }

    /// Maps a function's payload by the route's format.
    pub(crate) fn map_function_output(
        &self,
        route: &RouteSpec,
        payload: &[u8],
    ) -> Result<HttpReply, response::Malformed> {
        match route.payload {
            crate::spec::PayloadFormat::V2 => response::from_v2(payload),
            crate::spec::PayloadFormat::V1 => response::from_v1(payload),
        }
    }
}

/// `${stageVariables.name}` in a mock body, as mapping templates see stage variables.
fn substitute_stage_variables(body: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = body.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("${{stageVariables.{k}}}"), v);
    }
    out
}

/// REST APIs name the gateway response type in `x-amzn-ErrorType`, as AWS's exception names.
fn error_type(e: &GatewayError) -> &'static str {
    match e {
        GatewayError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
        GatewayError::Forbidden => "ForbiddenException",
        GatewayError::AccessDenied(_) => "AccessDeniedException",
        GatewayError::InvalidSignature(_) => "InvalidSignatureException",
        GatewayError::Unauthorized { .. } => "UnauthorizedException",
        GatewayError::InvalidApiKey => "ForbiddenException",
        GatewayError::Throttled => "TooManyRequestsException",
        GatewayError::RequestTooLarge => "RequestTooLargeException",
        GatewayError::NotFound => "NotFoundException",
        GatewayError::BadRequest(_) | GatewayError::RequestTimeout => "BadRequestException",
        _ => "InternalServerErrorException",
    }
}

async fn read_body(body: Incoming) -> Result<Bytes, GatewayError> {
    let collected = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect())
        .await
        .map_err(|_| GatewayError::RequestTimeout)?;
    match collected {
        Ok(b) => Ok(b.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(GatewayError::RequestTooLarge)
        }
        Err(_) => Err(GatewayError::BadRequest(
            "the request body could not be read".into(),
        )),
    }
}
