//! HTTP API `SQS-SendMessage` integration: request parameters (`MessageBody =
//! "$request.body"`, ...) are mapped to a SendMessage call, and SQS's answer goes back to the
//! client as API Gateway returns it. The queue service implements [`QueueSink`] (the
//! supervisor's `queues.rs`); a gateway built without one answers such routes 500 and says why
//! in the log.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use serde_json::{Value, json};

use crate::access_log::Record;
use crate::event::EventInput;
use crate::gateway::Gateway;
use crate::reply::GatewayError;
use crate::response::HttpReply;

/// One SendMessage call, as the integration's parameters made it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendMessage {
    /// The queue's name in the stack.
    pub queue: String,
    /// `QueueUrl` when the parameters name one, else the stack's URL of `queue`.
    pub queue_url: Option<String>,
    pub body: String,
    pub delay_seconds: Option<u32>,
    pub group_id: Option<String>,
    pub deduplication_id: Option<String>,
    /// `MessageAttributes` as JSON text, passed on as given.
    pub attributes: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentMessage {
    pub message_id: String,
    pub md5_of_body: String,
    pub sequence_number: Option<String>,
}

/// An SQS error, with the code and status SQS gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSendError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

pub type SendFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SentMessage, QueueSendError>> + Send + 'a>>;

/// What the queue service gives the gateway.
pub trait QueueSink: Send + Sync {
    fn send(&self, message: SendMessage) -> SendFuture<'_>;
}

/// A parameter's value: a whole-value expression (`$request.body`, `$request.body.a.b`,
/// `$request.header.X`, `$request.querystring.X`, `$request.path.X`, `$context.requestId`,
/// `$context.routeKey`, `$context.stage`, `$stageVariables.X`) or a literal.
pub fn parameter_value(expr: &str, input: &EventInput<'_>) -> Option<String> {
    let req = input.req;
    if expr == "$request.body" {
        return Some(String::from_utf8_lossy(&req.body).into_owned());
    }
    if let Some(path) = expr.strip_prefix("$request.body.") {
        let doc: Value = serde_json::from_slice(&req.body).ok()?;
        let v = path.split('.').try_fold(&doc, |v, k| v.get(k))?;
        return Some(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    }
    if let Some(h) = expr.strip_prefix("$request.header.") {
        return req.header_joined(&h.to_ascii_lowercase());
    }
    if let Some(q) = expr.strip_prefix("$request.querystring.") {
        return req.query_joined(q);
    }
    if let Some(p) = expr.strip_prefix("$request.path.") {
        return input
            .path_parameters
            .iter()
            .find(|(k, _)| k == p)
            .map(|(_, v)| v.clone());
    }
    if let Some(v) = expr.strip_prefix("$stageVariables.") {
        return input.stage_variables.get(v).cloned();
    }
    match expr {
        "$context.requestId" => Some(req.request_id.clone()),
        "$context.routeKey" => Some(input.route_key.to_owned()),
        "$context.stage" => Some(input.stage.to_owned()),
        "$context.httpMethod" => Some(req.method.clone()),
        "$context.identity.sourceIp" => Some(req.source_ip.to_string()),
        e if e.starts_with('$') => None,
        literal => Some(literal.to_owned()),
    }
}

/// The SendMessage call for these parameters; `Err` names what is wrong (a 400 to the client,
/// as API Gateway answers a request its mapping cannot fill).
pub fn build(
    queue: &str,
    parameters: &BTreeMap<String, String>,
    input: &EventInput<'_>,
) -> Result<SendMessage, String> {
    let mut m = SendMessage {
        queue: queue.to_owned(),
        ..SendMessage::default()
    };
    let mut body = None;
    for (name, expr) in parameters {
        let value = parameter_value(expr, input);
        match name.as_str() {
            "MessageBody" => body = value,
            "QueueUrl" => m.queue_url = value,
            "DelaySeconds" => {
                m.delay_seconds = match value {
                    Some(v) => Some(
                        v.parse()
                            .map_err(|_| format!("DelaySeconds {v:?} is not a number"))?,
                    ),
                    None => None,
                }
            }
            "MessageGroupId" => m.group_id = value,
            "MessageDeduplicationId" => m.deduplication_id = value,
            "MessageAttributes" => m.attributes = value,
            // Region and the like name where the queue is; here it is the stack's.
            _ => {}
        }
    }
    m.body = body
        .filter(|b| !b.is_empty())
        .ok_or_else(|| "MessageBody is empty or its source is missing".to_owned())?;
    Ok(m)
}

pub async fn call(
    gw: &Gateway,
    queue: &str,
    parameters: &BTreeMap<String, String>,
    input: &EventInput<'_>,
    record: &mut Record,
) -> Result<HttpReply, GatewayError> {
    let Some(sink) = &gw.services.queues else {
        record.set("integrationErrorMessage", "the stack has no queue service");
        tracing::warn!(
            api = %gw.spec.name,
            route = %input.route_key,
            "queue integration to {queue:?} is not served: the stack has no queue service"
        );
        return Err(GatewayError::Internal);
    };
    let message = build(queue, parameters, input).map_err(|why| {
        record.set("integrationErrorMessage", why.clone());
        GatewayError::BadRequest(why)
    })?;
    match sink.send(message).await {
        Ok(sent) => {
            record.set("integrationStatus", "200");
            let mut body = json!({
                "MD5OfMessageBody": sent.md5_of_body,
                "MessageId": sent.message_id,
            });
            if let (Some(seq), Value::Object(m)) = (sent.sequence_number, &mut body) {
                m.insert("SequenceNumber".into(), json!(seq));
            }
            Ok(HttpReply {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: bytes::Bytes::from(body.to_string()),
            })
        }
        // SQS's own error goes back with its status, as API Gateway passes it through.
        Err(e) => {
            record.set("integrationStatus", e.status.to_string());
            record.set("integrationErrorMessage", e.message.clone());
            Ok(HttpReply {
                status: e.status,
                headers: vec![("content-type".into(), "application/json".into())],
                body: bytes::Bytes::from(
                    json!({"__type": e.code, "message": e.message}).to_string(),
                ),
            })
        }
    }
}
