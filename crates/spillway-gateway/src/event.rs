//! The Lambda proxy events, built as AWS documents them: payload format 2.0 (HTTP APIs'
//! default) and 1.0 (REST APIs, and HTTP APIs that ask for it). Absent parts are omitted in
//! 2.0 and `null` in 1.0, as in AWS's examples.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::authorized::Authorized;
use crate::request::GatewayRequest;
use crate::spec::{ApiKind, ApiSpec};

/// Everything an event says besides the request itself.
pub struct EventInput<'a> {
    pub req: &'a GatewayRequest,
    pub api: &'a ApiSpec,
    /// `GET /users/{id}` or `$default`.
    pub route_key: &'a str,
    pub stage: &'a str,
    pub stage_variables: &'a BTreeMap<String, String>,
    pub path_parameters: &'a [(String, String)],
    /// The path within the stage (REST's `path`).
    pub stage_path: &'a str,
    pub authorized: &'a Authorized,
    /// The API key the request used (REST routes with `api_key_required`): name and value.
    pub api_key: Option<(&'a str, &'a str)>,
}

impl EventInput<'_> {
    fn domain(&self) -> (String, String) {
        let host = self.req.host();
        // Without the port: AWS's domain names never carry one.
        let name = match host.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(']') => h,
            _ => host,
        };
        let prefix = name.split('.').next().unwrap_or(name);
        (name.to_owned(), prefix.to_owned())
    }

    fn body(&self) -> (Option<String>, bool) {
        if self.req.body.is_empty() {
            return (None, false);
        }
        if self
            .req
            .body_is_binary(self.api.kind, &self.api.binary_media_types)
        {
            (
                Some(base64::engine::general_purpose::STANDARD.encode(&self.req.body)),
                true,
            )
        } else {
            (
                Some(String::from_utf8_lossy(&self.req.body).into_owned()),
                false,
            )
        }
    }

    /// The resource (route path) of the matched route, as REST's `resource` says it.
    fn resource(&self) -> &str {
        self.route_key
            .split_once(' ')
            .map_or(self.route_key, |(_, p)| p)
    }
}

fn params_object(pairs: &[(String, String)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

/// Repeated names joined with commas (2.0's headers and query strings).
fn joined(pairs: impl IntoIterator<Item = (String, String)>) -> Map<String, Value> {
    let mut out: Map<String, Value> = Map::new();
    for (k, v) in pairs {
        match out.get_mut(&k) {
            Some(Value::String(s)) => {
                s.push(',');
                s.push_str(&v);
            }
            _ => {
                out.insert(k, Value::String(v));
            }
        }
    }
    out
}

/// 1.0's pair of single-value (the last value wins) and multi-value maps.
fn single_and_multi(
    pairs: impl IntoIterator<Item = (String, String)>,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (k, v) in pairs {
        single.insert(k.clone(), Value::String(v.clone()));
        match multi.get_mut(&k) {
            Some(Value::Array(a)) => a.push(Value::String(v)),
            _ => {
                multi.insert(k, Value::Array(vec![Value::String(v)]));
            }
        }
    }
    (single, multi)
}

fn or_null(m: Map<String, Value>) -> Value {
    if m.is_empty() {
        Value::Null
    } else {
        Value::Object(m)
    }
}

/// Payload format 2.0.
pub fn v2(input: &EventInput<'_>) -> Value {
    let req = input.req;
    let (domain, prefix) = input.domain();
    let (body, base64) = input.body();
    let mut e = Map::new();
    e.insert("version".into(), json!("2.0"));
    e.insert("routeKey".into(), json!(input.route_key));
    e.insert("rawPath".into(), json!(req.raw_path));
    e.insert("rawQueryString".into(), json!(req.raw_query));
    let cookies = req.cookies();
    if !cookies.is_empty() {
        e.insert("cookies".into(), json!(cookies));
    }
    // Cookies travel in `cookies`, not among the headers.
    let headers = joined(
        req.headers
            .iter()
            .filter(|(k, _)| k != "cookie")
            .cloned()
            .chain(forwarded(req)),
    );
    e.insert("headers".into(), Value::Object(headers));
    let query = joined(req.query());
    if !query.is_empty() {
        e.insert("queryStringParameters".into(), Value::Object(query));
    }
    let mut ctx = Map::new();
    ctx.insert("accountId".into(), json!(input.api.account));
    ctx.insert("apiId".into(), json!(input.api.id));
    if let Some(a) = input.authorized.v2() {
        ctx.insert("authorizer".into(), a);
    }
    ctx.insert("domainName".into(), json!(domain));
    ctx.insert("domainPrefix".into(), json!(prefix));
    ctx.insert(
        "http".into(),
        json!({
            "method": req.method,
            "path": req.raw_path,
            "protocol": req.protocol,
            "sourceIp": req.source_ip.to_string(),
            "userAgent": req.user_agent(),
        }),
    );
    ctx.insert("requestId".into(), json!(req.request_id));
    ctx.insert("routeKey".into(), json!(input.route_key));
    ctx.insert("stage".into(), json!(input.stage));
    ctx.insert(
        "time".into(),
        json!(spillway_identity::time::format_clf(req.time_ms / 1000)),
    );
    ctx.insert("timeEpoch".into(), json!(req.time_ms));
    e.insert("requestContext".into(), Value::Object(ctx));
    if let Some(b) = body {
        e.insert("body".into(), json!(b));
    }
    if !input.path_parameters.is_empty() {
        e.insert(
            "pathParameters".into(),
            Value::Object(params_object(input.path_parameters)),
        );
    }
    e.insert("isBase64Encoded".into(), json!(base64));
    if !input.stage_variables.is_empty() {
        e.insert("stageVariables".into(), json!(input.stage_variables));
    }
    Value::Object(e)
}

/// The `X-Forwarded-*` headers API Gateway adds (unless the client sent its own).
fn forwarded(req: &GatewayRequest) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if req.header("x-forwarded-for").is_none() {
        out.push(("x-forwarded-for".into(), req.source_ip.to_string()));
    }
    if req.header("x-forwarded-proto").is_none() {
        out.push(("x-forwarded-proto".into(), "http".into()));
    }
    out
}

/// `content-type` → `Content-Type`, `x-amz-date` → `X-Amz-Date`.
fn canonical_case(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A resource's id (API Gateway's are 6 to 10 lower-case letters and digits), derived from its
/// path so that it is stable across restarts.
fn resource_id(resource: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in resource.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..6)
        .map(|i| alphabet[((h >> (i * 6)) % 36) as usize] as char)
        .collect()
}

/// Payload format 1.0 (REST APIs' only format).
pub fn v1(input: &EventInput<'_>) -> Value {
    let req = input.req;
    let (domain, prefix) = input.domain();
    let (body, base64) = input.body();
    let rest = input.api.kind == ApiKind::Rest;
    let mut e = Map::new();
    if !rest {
        e.insert("version".into(), json!("1.0"));
    }
    e.insert("resource".into(), json!(input.resource()));
    // REST's `path` is within the stage; an HTTP API's is the request's whole path.
    let path = if rest {
        input.stage_path
    } else {
        req.raw_path.as_str()
    };
    e.insert("path".into(), json!(path));
    e.insert("httpMethod".into(), json!(req.method));
    // HTTP/1 header names are case-insensitive and spillway's HTTP stack lower-cases them; REST
    // events carry the client's case, which handlers index by (`event.headers['Content-Type']`),
    // so REST gets the canonical case HTTP/1 clients write. HTTP APIs lower-case, as AWS does.
    let name_case = |(k, v): (String, String)| {
        if rest {
            (canonical_case(&k), v)
        } else {
            (k, v)
        }
    };
    let (headers, multi_headers) = single_and_multi(
        req.headers
            .iter()
            .cloned()
            .chain(forwarded(req))
            .map(name_case),
    );
    e.insert("headers".into(), Value::Object(headers));
    e.insert("multiValueHeaders".into(), Value::Object(multi_headers));
    let (query, multi_query) = single_and_multi(req.query());
    e.insert("queryStringParameters".into(), or_null(query));
    e.insert(
        "multiValueQueryStringParameters".into(),
        or_null(multi_query),
    );
    let mut ctx = Map::new();
    ctx.insert("accountId".into(), json!(input.api.account));
    ctx.insert("apiId".into(), json!(input.api.id));
    if let Some(a) = input.authorized.v1() {
        ctx.insert("authorizer".into(), a);
    }
    ctx.insert("domainName".into(), json!(domain));
    ctx.insert("domainPrefix".into(), json!(prefix));
    ctx.insert("extendedRequestId".into(), json!(req.request_id));
    ctx.insert("httpMethod".into(), json!(req.method));
    let mut identity = input.authorized.identity_v1(req);
    if let (Some((id, key)), serde_json::Value::Object(m)) = (input.api_key, &mut identity) {
        m.insert("apiKey".into(), json!(key));
        m.insert("apiKeyId".into(), json!(id));
    }
    ctx.insert("identity".into(), identity);
    ctx.insert("path".into(), json!(req.raw_path));
    ctx.insert("protocol".into(), json!(req.protocol));
    ctx.insert("requestId".into(), json!(req.request_id));
    ctx.insert(
        "requestTime".into(),
        json!(spillway_identity::time::format_clf(req.time_ms / 1000)),
    );
    ctx.insert("requestTimeEpoch".into(), json!(req.time_ms));
    ctx.insert("resourceId".into(), json!(resource_id(input.resource())));
    ctx.insert("resourcePath".into(), json!(input.resource()));
    ctx.insert("stage".into(), json!(input.stage));
    e.insert("requestContext".into(), Value::Object(ctx));
    e.insert(
        "pathParameters".into(),
        or_null(params_object(input.path_parameters)),
    );
    e.insert(
        "stageVariables".into(),
        if input.stage_variables.is_empty() {
            Value::Null
        } else {
            json!(input.stage_variables)
        },
    );
    e.insert("body".into(), body.map_or(Value::Null, Value::String));
    e.insert("isBase64Encoded".into(), json!(base64));
    Value::Object(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::GatewayRequest;
    use crate::spec::*;
    use bytes::Bytes;

    fn api(kind: ApiKind) -> ApiSpec {
        ApiSpec {
            name: "a".into(),
            id: "abc123".into(),
            kind,
            region: "us-east-1".into(),
            account: "123456789012".into(),
            routes: Vec::new(),
            stages: BTreeMap::new(),
            cors: None,
            authorizers: BTreeMap::new(),
            access_log: None,
            binary_media_types: Vec::new(),
            domains: Vec::new(),
            api_keys: Vec::new(),
        }
    }

    fn request() -> GatewayRequest {
        GatewayRequest {
            method: "POST".into(),
            raw_path: "/my/path".into(),
            raw_query: "parameter1=value1&parameter1=value2&parameter2=value".into(),
            headers: vec![
                ("header1".into(), "value1".into()),
                ("header2".into(), "value1".into()),
                ("header2".into(), "value2".into()),
                ("cookie".into(), "cookie1; cookie2".into()),
                (
                    "host".into(),
                    "id.execute-api.us-east-1.amazonaws.com".into(),
                ),
                ("user-agent".into(), "agent".into()),
            ],
            body: Bytes::from_static(b"Hello from Lambda"),
            source_ip: std::net::IpAddr::from([192, 0, 2, 1]),
            protocol: "HTTP/1.1",
            request_id: "id".into(),
            time_ms: 1_583_348_638_390,
        }
    }

    #[test]
    fn v2_has_the_documented_shape() {
        let api = api(ApiKind::Http);
        let req = request();
        let vars = BTreeMap::from([("stageVariable1".to_owned(), "value1".to_owned())]);
        let e = v2(&EventInput {
            req: &req,
            api: &api,
            route_key: "$default",
            stage: "$default",
            stage_variables: &vars,
            path_parameters: &[("parameter1".into(), "value1".into())],
            stage_path: "/my/path",
            authorized: &Authorized::None,
            api_key: None,
        });
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["rawQueryString"], req.raw_query);
        assert_eq!(e["cookies"], json!(["cookie1", "cookie2"]));
        assert_eq!(e["headers"]["header2"], "value1,value2");
        assert!(e["headers"].get("cookie").is_none());
        assert_eq!(
            e["queryStringParameters"],
            json!({"parameter1": "value1,value2", "parameter2": "value"})
        );
        let ctx = &e["requestContext"];
        assert_eq!(ctx["domainPrefix"], "id");
        assert_eq!(ctx["http"]["sourceIp"], "192.0.2.1");
        assert_eq!(ctx["time"], "04/Mar/2020:19:03:58 +0000");
        assert_eq!(ctx["timeEpoch"], 1_583_348_638_390_i64);
        assert!(ctx.get("authorizer").is_none());
        assert_eq!(e["body"], "Hello from Lambda");
        assert_eq!(e["isBase64Encoded"], false);
        assert_eq!(e["pathParameters"]["parameter1"], "value1");
        assert_eq!(e["stageVariables"]["stageVariable1"], "value1");
    }

    #[test]
    fn v1_rest_has_multi_value_fields_and_nulls() {
        let api = api(ApiKind::Rest);
        let mut req = request();
        req.raw_path = "/prod/my/path".into();
        let e = v1(&EventInput {
            req: &req,
            api: &api,
            route_key: "POST /my/path",
            stage: "prod",
            stage_variables: &BTreeMap::new(),
            path_parameters: &[],
            stage_path: "/my/path",
            authorized: &Authorized::None,
            api_key: None,
        });
        assert!(e.get("version").is_none());
        assert_eq!(e["resource"], "/my/path");
        assert_eq!(e["path"], "/my/path");
        assert_eq!(e["requestContext"]["path"], "/prod/my/path");
        // REST events: header names in canonical case.
        assert_eq!(e["headers"]["Header2"], "value2");
        assert_eq!(
            e["multiValueHeaders"]["Header2"],
            json!(["value1", "value2"])
        );
        assert_eq!(e["headers"]["User-Agent"], "agent");
        assert_eq!(
            e["requestContext"]["resourceId"].as_str().map(str::len),
            Some(6)
        );
        assert_eq!(
            e["multiValueQueryStringParameters"]["parameter1"],
            json!(["value1", "value2"])
        );
        assert_eq!(e["pathParameters"], Value::Null);
        assert_eq!(e["stageVariables"], Value::Null);
        assert_eq!(e["requestContext"]["identity"]["sourceIp"], "192.0.2.1");
        assert_eq!(e["requestContext"]["stage"], "prod");
    }
}
