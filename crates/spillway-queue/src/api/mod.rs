//! SQS on the AWS endpoint: the JSON 1.0 protocol (current SDKs, aws CLI v2) and the query
//! protocol (aws CLI v1, older SDKs), both decoded into the JSON protocol's request shapes
//! (`query.rs` translates), run against [`QueueService`], and answered in the request's own
//! protocol. Every action is authorized as `sqs:ACTION` on the queue's ARN before it runs,
//! against the caller's policies and the queue's own `Policy`.
//!
//! Errors: the JSON protocol answers `{"__type": "com.amazonaws.sqs#SHAPE", "message": ...}`
//! with the `x-amzn-query-error: CODE;Sender|Receiver` header SDKs read for the legacy code;
//! the query protocol an `ErrorResponse` document with the legacy code.

mod convert;
pub mod query;
pub mod url;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use spillway_aws::auth::Caller;
use spillway_aws::protocol::Protocol;
use spillway_aws::service::{AsyncService, ServiceFuture, ServiceRequest, ServiceResponse};

use crate::{QueueError, QueueService};

/// Every SQS action, as the query protocol's `Action` names them.
pub const ACTIONS: &[&str] = &[
    "CreateQueue",
    "GetQueueUrl",
    "ListQueues",
    "DeleteQueue",
    "PurgeQueue",
    "GetQueueAttributes",
    "SetQueueAttributes",
    "SendMessage",
    "SendMessageBatch",
    "ReceiveMessage",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "ListDeadLetterSourceQueues",
    "TagQueue",
    "UntagQueue",
    "ListQueueTags",
    "AddPermission",
    "RemovePermission",
    "StartMessageMoveTask",
    "ListMessageMoveTasks",
    "CancelMessageMoveTask",
];

/// An error as a client sees it: SQS's own, or the endpoint's access refusal.
pub struct Refusal {
    /// The JSON protocol's shape name.
    pub shape: String,
    /// The legacy (query) code.
    pub code: String,
    pub status: u16,
    pub fault: &'static str,
    pub message: String,
}

impl From<QueueError> for Refusal {
    fn from(e: QueueError) -> Self {
        if let QueueError::Internal(why) = &e {
            tracing::error!("queue: {why}");
        }
        Refusal {
            shape: e.code().to_owned(),
            code: e.query_code().to_owned(),
            status: e.http_status(),
            fault: e.fault().as_str(),
            message: e.client_message(),
        }
    }
}

pub struct SqsApi {
    pub service: Arc<QueueService>,
}

impl AsyncService for SqsApi {
    fn service(&self) -> &'static str {
        "sqs"
    }

    fn has_action(&self, action: &str) -> bool {
        ACTIONS.contains(&action)
    }

    fn handle<'a>(&'a self, req: ServiceRequest<'a>) -> ServiceFuture<'a> {
        Box::pin(async move {
            let result = self.run(&req).await;
            render(&req, result)
        })
    }
}

/// What an action needs besides its request: who asks and how the client reached us.
pub(crate) struct Context<'a> {
    pub caller: &'a Caller,
    pub host: Option<&'a str>,
    pub path: &'a str,
}

impl SqsApi {
    async fn run(&self, req: &ServiceRequest<'_>) -> Result<Value, Refusal> {
        let action = req.op.name.as_str();
        if !ACTIONS.contains(&action) {
            return Err(Refusal {
                shape: "InvalidAction".into(),
                code: "InvalidAction".into(),
                status: 400,
                fault: "Sender",
                message: format!("The action {action} is not valid for this endpoint."),
            });
        }
        let input = match req.op.protocol {
            Protocol::Query => query::request(action, &req.op.params)?,
            _ if req.body.is_empty() => Value::Object(Default::default()),
            _ => serde_json::from_slice::<Value>(req.body).map_err(|e| Refusal {
                shape: "SerializationException".into(),
                code: "SerializationException".into(),
                status: 400,
                fault: "Sender",
                message: format!("the request body is not valid JSON: {e}"),
            })?,
        };
        if !input.is_object() {
            return Err(QueueError::InvalidParameterValue(
                "the request body must be a JSON object".into(),
            )
            .into());
        }
        let ctx = Context {
            caller: req.caller,
            host: req.host,
            path: req.path,
        };
        convert::run(&self.service, action, &input, &ctx).await
    }
}

/// Authorizes `sqs:ACTION` on `resource` for the caller. SQS answers a refusal with
/// AccessDenied (HTTP 403 in the query API's model, `AccessDeniedException` shape in JSON).
/// The queue's own `Policy`, if `resource` is a queue that has one, is evaluated beside the
/// caller's policies.
pub(crate) async fn authorize(
    service: &QueueService,
    caller: &Caller,
    action: &str,
    resource: &str,
) -> Result<(), Refusal> {
    let policy = service.resource_policy(resource).await;
    caller
        .authorize_with(&format!("sqs:{action}"), resource, policy.as_ref(), 403)
        .map_err(|e| Refusal {
            shape: "AccessDeniedException".into(),
            code: "AccessDenied".into(),
            status: 403,
            fault: "Sender",
            message: e.message,
        })
}

fn render(req: &ServiceRequest<'_>, result: Result<Value, Refusal>) -> ServiceResponse {
    let action = req.op.name.as_str();
    match (req.op.protocol, result) {
        (Protocol::Query, Ok(v)) => ServiceResponse {
            status: 200,
            content_type: "text/xml",
            body: query::response(action, &v, req.request_id),
            headers: Vec::new(),
        },
        (Protocol::Query, Err(r)) => {
            tracing::info!(request_id = req.request_id, code = %r.code, "SQS request refused: {}", r.message);
            ServiceResponse {
                status: r.status,
                content_type: "text/xml",
                body: query::error(r.fault, &r.code, &r.message, req.request_id),
                headers: Vec::new(),
            }
        }
        (_, Ok(v)) => ServiceResponse {
            status: 200,
            content_type: "application/x-amz-json-1.0",
            body: v.to_string(),
            headers: Vec::new(),
        },
        (_, Err(r)) => {
            tracing::info!(request_id = req.request_id, code = %r.code, "SQS request refused: {}", r.message);
            ServiceResponse {
                status: r.status,
                content_type: "application/x-amz-json-1.0",
                body: serde_json::json!({
                    "__type": format!("com.amazonaws.sqs#{}", r.shape),
                    "message": r.message,
                })
                .to_string(),
                headers: vec![("x-amzn-query-error", format!("{};{}", r.code, r.fault))],
            }
        }
    }
}

/// Message attributes in the JSON protocol's shape (`{"name": {"DataType", "StringValue" |
/// "BinaryValue" (base64)}}`), as the gateway's SQS integration passes them on.
pub fn message_attributes(v: &Value) -> Result<crate::MessageAttributes, QueueError> {
    convert::message_attributes(
        &serde_json::json!({ "MessageAttributes": v }),
        "MessageAttributes",
    )
}

/// A JSON object's string-to-string map member (`Attributes`, `tags`).
pub(crate) fn string_map(input: &Value, key: &str) -> Result<BTreeMap<String, String>, QueueError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(QueueError::InvalidParameterValue(format!(
                    "the value of {key}.{k} must be a string"
                ))),
            })
            .collect(),
        Some(_) => Err(QueueError::InvalidParameterValue(format!(
            "{key} must be a map of strings"
        ))),
    }
}
