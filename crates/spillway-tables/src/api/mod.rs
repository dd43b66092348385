//! DynamoDB on the AWS endpoint: JSON 1.0 requests (`X-Amz-Target: DynamoDB_20120810.ACTION`,
//! routed here by `spillway-aws` once the signature is checked), authorized per action and
//! table (`dynamodb:PutItem` on `arn:aws:dynamodb:REGION:ACCOUNT:table/NAME`, `.../index/NAME`
//! for index reads), answered with DynamoDB's shapes and errors and an `x-amz-crc32` header
//! (the CRC32 of the body, which boto3 and the JavaScript SDKs check when present).

mod batch;
mod capacity;
mod control;
mod describe;
mod exprs;
pub mod input;
pub(crate) mod items;
mod query;
mod transact;

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use spillway_aws::auth::Caller;
use spillway_aws::service::{AsyncService, ServiceFuture, ServiceRequest, ServiceResponse};

use crate::error::TablesError;
use crate::service::Tables;
use input::Input;

pub use control::table_from_request;

/// Every action served, as `X-Amz-Target` names them.
pub const ACTIONS: &[&str] = &[
    "CreateTable",
    "DescribeTable",
    "ListTables",
    "UpdateTable",
    "DeleteTable",
    "UpdateTimeToLive",
    "DescribeTimeToLive",
    "TagResource",
    "UntagResource",
    "ListTagsOfResource",
    "DescribeLimits",
    "PutItem",
    "GetItem",
    "DeleteItem",
    "UpdateItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "TransactGetItems",
];

pub struct DynamoDbApi {
    pub tables: Arc<Tables>,
}

impl AsyncService for DynamoDbApi {
    fn service(&self) -> &'static str {
        "dynamodb"
    }

    fn has_action(&self, _action: &str) -> bool {
        // DynamoDB has no query-protocol actions.
        false
    }

    fn handle<'a>(&'a self, req: ServiceRequest<'a>) -> ServiceFuture<'a> {
        Box::pin(async move {
            let action = req.op.name.as_str();
            let result = self.run(&req).await;
            let (status, text) = match result {
                Ok(reply) => (200, reply.into_text()),
                Err(e) => {
                    match &e {
                        TablesError::Internal(why) => {
                            tracing::error!(
                                request_id = req.request_id,
                                action,
                                "DynamoDB request failed: {why}"
                            );
                            // A rare path: the table's name is read from the body again
                            // rather than carried through every action.
                            let table = serde_json::from_slice::<Value>(req.body)
                                .ok()
                                .and_then(|v| v.get("TableName")?.as_str().map(str::to_owned))
                                .unwrap_or_default();
                            self.tables
                                .metrics
                                .system_error(&table, static_action(action));
                        }
                        TablesError::ConditionalCheckFailed { .. }
                        | TablesError::TransactionCanceled { .. } => {}
                        _ => self.tables.metrics.user_error(),
                    }
                    tracing::info!(
                        request_id = req.request_id,
                        action,
                        code = e.name(),
                        "DynamoDB request refused: {e}"
                    );
                    (e.status(), e.body().to_string())
                }
            };
            let crc = crc32fast::hash(text.as_bytes());
            ServiceResponse {
                status,
                content_type: "application/x-amz-json-1.0",
                body: text,
                headers: vec![("x-amz-crc32", crc.to_string())],
            }
        })
    }
}

/// The action's name as a `'static` label for metrics (unknown ones share one label).
fn static_action(action: &str) -> &'static str {
    ACTIONS
        .iter()
        .find(|a| **a == action)
        .copied()
        .unwrap_or("Unknown")
}

/// Who asks, for authorization inside actions that touch several tables.
pub(crate) struct Ctx<'a> {
    pub tables: &'a Arc<Tables>,
    pub caller: &'a Caller,
}

impl Ctx<'_> {
    /// Authorizes `dynamodb:ACTION` on a table (or one of its indexes).
    pub fn authorize(
        &self,
        action: &str,
        table: &str,
        index: Option<&str>,
    ) -> Result<(), TablesError> {
        let mut resource = self.tables.table_arn(table);
        if let Some(i) = index {
            resource.push_str("/index/");
            resource.push_str(i);
        }
        self.caller
            .authorize(&format!("dynamodb:{action}"), &resource, 400)
            .map_err(|e| TablesError::AccessDenied(e.message))
    }

    pub fn authorize_any(&self, action: &str) -> Result<(), TablesError> {
        self.caller
            .authorize(&format!("dynamodb:{action}"), "*", 400)
            .map_err(|e| TablesError::AccessDenied(e.message))
    }
}

impl DynamoDbApi {
    async fn run(&self, req: &ServiceRequest<'_>) -> Result<Reply, TablesError> {
        let action = req.op.name.as_str();
        if !ACTIONS.contains(&action) {
            return Err(TablesError::UnknownOperation(format!(
                "The operation {action} is not supported by spillway's DynamoDB"
            )));
        }
        let input: Value = if req.body.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(req.body).map_err(|e| {
                TablesError::Serialization(format!(
                    "Start of structure or map found where not expected: {e}"
                ))
            })?
        };
        let Value::Object(input) = input else {
            return Err(TablesError::Serialization(
                "Start of structure or map found where not expected".into(),
            ));
        };
        let ctx = Ctx {
            tables: &self.tables,
            caller: req.caller,
        };
        let started = Instant::now();
        let out = dispatch(&ctx, action, &input).await?;
        let table = input.get("TableName").and_then(Value::as_str).unwrap_or("");
        let returned = match &out {
            Reply::Json(v) => v
                .get("Items")
                .and_then(Value::as_array)
                .map(|a| a.len() as u64)
                .unwrap_or(0),
            Reply::Text { returned, .. } => *returned,
        };
        self.tables.metrics.success(
            table,
            static_action(action),
            started.elapsed().as_secs_f64() * 1000.0,
            returned,
        );
        Ok(out)
    }
}

/// An answer: a JSON tree, or JSON text written directly (Query and Scan pages, which are
/// mostly items: building a tree for them first cost more than the read).
pub(crate) enum Reply {
    Json(Value),
    Text { body: String, returned: u64 },
}

impl Reply {
    fn into_text(self) -> String {
        match self {
            Reply::Json(v) => v.to_string(),
            Reply::Text { body, .. } => body,
        }
    }
}

async fn dispatch(ctx: &Ctx<'_>, action: &str, input: &Input) -> Result<Reply, TablesError> {
    if let "Query" | "Scan" = action {
        let index = input.get("IndexName").and_then(Value::as_str);
        let table = input.get("TableName").and_then(Value::as_str).unwrap_or("");
        ctx.authorize(action, table, index)?;
        return if action == "Query" {
            query::query(ctx, input).await
        } else {
            query::scan(ctx, input).await
        };
    }
    dispatch_json(ctx, action, input).await.map(Reply::Json)
}

async fn dispatch_json(ctx: &Ctx<'_>, action: &str, input: &Input) -> Result<Value, TablesError> {
    let tables = ctx.tables;
    let named = |input: &Input| {
        input
            .get("TableName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    match action {
        "ListTables" => {
            ctx.authorize_any("ListTables")?;
            control::list_tables(tables, input)
        }
        "DescribeLimits" => {
            ctx.authorize_any("DescribeLimits")?;
            Ok(control::describe_limits())
        }
        "TagResource" | "UntagResource" | "ListTagsOfResource" => {
            let arn = input
                .get("ResourceArn")
                .and_then(Value::as_str)
                .unwrap_or("*");
            ctx.caller
                .authorize(&format!("dynamodb:{action}"), arn, 400)
                .map_err(|e| TablesError::AccessDenied(e.message))?;
            match action {
                "TagResource" => control::tag_resource(tables, input).await,
                "UntagResource" => control::untag_resource(tables, input).await,
                _ => control::list_tags_of_resource(tables, input),
            }
        }
        "BatchGetItem" => batch::batch_get(ctx, input).await,
        "BatchWriteItem" => batch::batch_write(ctx, input).await,
        "TransactWriteItems" => transact::transact_write(ctx, input).await,
        "TransactGetItems" => transact::transact_get(ctx, input).await,
        _ => {
            ctx.authorize(action, &named(input), None)?;
            match action {
                "CreateTable" => control::create_table(tables, input).await,
                "DescribeTable" => control::describe_table(tables, input),
                "UpdateTable" => control::update_table(tables, input).await,
                "DeleteTable" => control::delete_table(tables, input).await,
                "UpdateTimeToLive" => control::update_time_to_live(tables, input).await,
                "DescribeTimeToLive" => control::describe_time_to_live(tables, input),
                "PutItem" => items::put_item(ctx, input).await,
                "GetItem" => items::get_item(ctx, input).await,
                "DeleteItem" => items::delete_item(ctx, input).await,
                "UpdateItem" => items::update_item(ctx, input).await,
                other => Err(TablesError::UnknownOperation(format!(
                    "The operation {other} is not supported"
                ))),
            }
        }
    }
}
