//! HTTP proxy integration: the request goes on to `base` + the path within the stage (for a
//! route with a greedy variable, `base` + that variable) with its query string, headers and
//! body; the answer comes back as it is, hop-by-hop headers removed.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::access_log::Record;
use crate::event::EventInput;
use crate::gateway::Gateway;
use crate::reply::GatewayError;
use crate::response::HttpReply;
use crate::spec::{MAX_BODY, RouteSpec};

pub type Client = HyperClient<HttpConnector, Full<Bytes>>;

pub fn client() -> Client {
    HyperClient::builder(TokioExecutor::new()).build_http()
}

/// Headers that belong to one connection and are not forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

pub async fn call(
    gw: &Gateway,
    base: &str,
    route: &RouteSpec,
    input: &EventInput<'_>,
    record: &mut Record,
) -> Result<HttpReply, GatewayError> {
    let req = input.req;
    let greedy = route.key.contains("+}");
    let tail = if greedy {
        input
            .path_parameters
            .last()
            .map(|(_, v)| format!("/{v}"))
            .unwrap_or_default()
    } else {
        input.stage_path.to_owned()
    };
    let mut url = format!("{}{}", base.trim_end_matches('/'), tail);
    if !req.raw_query.is_empty() {
        url.push('?');
        url.push_str(&req.raw_query);
    }
    let mut builder = hyper::Request::builder()
        .method(req.method.as_str())
        .uri(&url);
    for (k, v) in &req.headers {
        if !HOP_BY_HOP.contains(&k.as_str()) {
            builder = builder.header(k, v);
        }
    }
    builder = builder
        .header("x-forwarded-for", req.source_ip.to_string())
        .header("x-amzn-requestid", &req.request_id);
    let outgoing = builder.body(Full::new(req.body.clone())).map_err(|e| {
        tracing::warn!(api = %gw.spec.name, route = %route.key, "bad HTTP integration URL {url:?}: {e}");
        GatewayError::Internal
    })?;
    let fail = |record: &mut Record, msg: String| {
        tracing::info!(api = %gw.spec.name, route = %route.key, "HTTP integration failed: {msg}");
        record.set("integrationErrorMessage", msg.clone());
        record.set("integration.error", msg);
    };
    let answer = match tokio::time::timeout(route.timeout, gw.http.request(outgoing)).await {
        Err(_) => {
            fail(record, "the integration timed out".into());
            return Err(GatewayError::Timeout);
        }
        Ok(Err(e)) => {
            fail(record, e.to_string());
            return Err(GatewayError::IntegrationFailure);
        }
        Ok(Ok(a)) => a,
    };
    let (parts, body) = answer.into_parts();
    record.set("integrationStatus", parts.status.as_u16().to_string());
    record.set("integration.status", parts.status.as_u16().to_string());
    let body =
        match tokio::time::timeout(route.timeout, Limited::new(body, MAX_BODY).collect()).await {
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(e)) => {
                fail(record, format!("reading the answer: {e}"));
                return Err(GatewayError::IntegrationFailure);
            }
            Err(_) => {
                fail(record, "the integration timed out".into());
                return Err(GatewayError::Timeout);
            }
        };
    let headers = parts
        .headers
        .iter()
        .filter(|(k, _)| !HOP_BY_HOP.contains(&k.as_str()))
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Ok(HttpReply {
        status: parts.status.as_u16(),
        headers,
        body,
    })
}
