//! Each action: its JSON-shaped request decoded into the service's typed request, authorized,
//! run, and its result encoded in the JSON protocol's shape (which `query.rs` turns into XML).
//! Member names are the JSON 1.0 model's (`tags` in CreateQueue but `Tags` in TagQueue,
//! `queueUrls` in ListDeadLetterSourceQueues, as the model spells them).

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::{Context, Refusal, authorize, string_map, url};
use crate::model::*;
use crate::{QueueError, QueueService};

fn text<'a>(input: &'a Value, key: &str) -> Result<Option<&'a str>, QueueError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(QueueError::InvalidParameterValue(format!(
            "{key} must be a string"
        ))),
    }
}

fn required<'a>(input: &'a Value, key: &'static str) -> Result<&'a str, QueueError> {
    text(input, key)?.ok_or(QueueError::MissingParameter(key))
}

fn integer(input: &Value, key: &str) -> Result<Option<u32>, QueueError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                QueueError::InvalidParameterValue(format!(
                    "Value {v} for parameter {key} is invalid. Reason: must be a non-negative integer."
                ))
            }),
    }
}

fn strings(input: &Value, key: &str) -> Result<Vec<String>, QueueError> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    QueueError::InvalidParameterValue(format!("{key} must be a list of strings"))
                })
            })
            .collect(),
        Some(_) => Err(QueueError::InvalidParameterValue(format!(
            "{key} must be a list of strings"
        ))),
    }
}

pub(super) fn message_attributes(
    input: &Value,
    key: &str,
) -> Result<MessageAttributes, QueueError> {
    let mut out = MessageAttributes::new();
    let Some(map) = input.get(key) else {
        return Ok(out);
    };
    let Some(map) = map.as_object() else {
        return Err(QueueError::InvalidParameterValue(format!(
            "{key} must be a map"
        )));
    };
    for (name, v) in map {
        let data_type = text(v, "DataType")?
            .ok_or_else(|| {
                QueueError::InvalidParameterValue(format!(
                    "The message attribute '{name}' must contain non-empty message attribute type."
                ))
            })?
            .to_owned();
        let binary_value = match text(v, "BinaryValue")? {
            Some(b64) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|_| {
                        QueueError::InvalidParameterValue(format!(
                            "The message attribute '{name}' has an invalid binary value (not base64)."
                        ))
                    })?,
            ),
            None => None,
        };
        out.insert(
            name.clone(),
            MessageAttributeValue {
                data_type,
                string_value: text(v, "StringValue")?.map(str::to_owned),
                binary_value,
            },
        );
    }
    Ok(out)
}

fn attributes_json(attrs: &MessageAttributes) -> Value {
    let mut out = Map::new();
    for (name, v) in attrs {
        let mut m = Map::new();
        m.insert("DataType".into(), json!(v.data_type));
        if let Some(s) = &v.string_value {
            m.insert("StringValue".into(), json!(s));
        }
        if let Some(b) = &v.binary_value {
            m.insert(
                "BinaryValue".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(b)),
            );
        }
        out.insert(name.clone(), Value::Object(m));
    }
    Value::Object(out)
}

fn put_some(obj: &mut Map<String, Value>, key: &str, v: Option<String>) {
    if let Some(v) = v {
        obj.insert(key.to_owned(), Value::String(v));
    }
}

fn failures(failed: &[BatchResultErrorEntry]) -> Value {
    Value::Array(
        failed
            .iter()
            .map(|f| {
                json!({"Id": f.id, "SenderFault": f.sender_fault, "Code": f.code, "Message": f.message})
            })
            .collect(),
    )
}

fn batch(resp: &BatchResponse) -> Value {
    json!({
        "Successful": resp.successful.iter().map(|s| json!({"Id": s.id})).collect::<Vec<_>>(),
        "Failed": failures(&resp.failed),
    })
}

fn entries(input: &Value) -> Result<&Vec<Value>, QueueError> {
    match input.get("Entries") {
        Some(Value::Array(a)) => Ok(a),
        None | Some(Value::Null) => Err(QueueError::MissingParameter("Entries")),
        Some(_) => Err(QueueError::InvalidParameterValue(
            "Entries must be a list".into(),
        )),
    }
}

/// A ListMessageMoveTasksResultEntry: TaskHandle only while RUNNING, DestinationArn and
/// MaxNumberOfMessagesPerSecond only when the task was started with them, FailureReason only
/// when FAILED, as AWS documents the entry.
fn move_task_json(task: &crate::move_task::MoveTask) -> Value {
    use crate::move_task::MoveStatus;
    let mut o = Map::new();
    if task.status == MoveStatus::Running {
        o.insert("TaskHandle".into(), json!(task.handle()));
    }
    o.insert("Status".into(), json!(task.status.as_str()));
    o.insert("SourceArn".into(), json!(task.source_arn));
    put_some(&mut o, "DestinationArn", task.destination_arn.clone());
    if let Some(rate) = task.max_per_second {
        o.insert("MaxNumberOfMessagesPerSecond".into(), json!(rate));
    }
    o.insert("ApproximateNumberOfMessagesMoved".into(), json!(task.moved));
    o.insert(
        "ApproximateNumberOfMessagesToMove".into(),
        json!(task.to_move),
    );
    if task.status == MoveStatus::Failed {
        put_some(&mut o, "FailureReason", task.failure_reason.clone());
    }
    o.insert("StartedTimestamp".into(), json!(task.started_at));
    Value::Object(o)
}

pub(super) async fn run(
    service: &QueueService,
    action: &str,
    input: &Value,
    ctx: &Context<'_>,
) -> Result<Value, Refusal> {
    let account = service.account_id().to_owned();
    let url_of = |name: &str| url::queue_url(ctx.host, ctx.caller.secure_transport, &account, name);
    // The queue a request names: its QueueUrl member, else (query protocol) the URL path it
    // was sent to.
    let queue = || -> Result<String, QueueError> {
        match text(input, "QueueUrl")? {
            Some(u) => url::queue_name(u, &account).map(str::to_owned),
            None if ctx.path.trim_matches('/').contains('/') => {
                url::queue_name(ctx.path, &account).map(str::to_owned)
            }
            None => Err(QueueError::MissingParameter("QueueUrl")),
        }
    };
    let arn = |name: &str| service.queue_arn(name);
    let all_queues = format!("arn:aws:sqs:{}:{account}:*", service.region());
    let out = match action {
        "CreateQueue" => {
            let name = required(input, "QueueName")?;
            authorize(service, ctx.caller, action, &arn(name)).await?;
            let r = service
                .create_queue(CreateQueueRequest {
                    queue_name: name.to_owned(),
                    attributes: string_map(input, "Attributes")?,
                    tags: string_map(input, "tags")?,
                })
                .await?;
            json!({"QueueUrl": url_of(&r.queue_name)})
        }
        "GetQueueUrl" => {
            let name = required(input, "QueueName")?;
            if let Some(owner) = text(input, "QueueOwnerAWSAccountId")?
                && owner != account
            {
                return Err(QueueError::QueueDoesNotExist.into());
            }
            authorize(service, ctx.caller, action, &arn(name)).await?;
            let r = service.get_queue_url(name).await?;
            json!({"QueueUrl": url_of(&r.queue_name)})
        }
        "ListQueues" => {
            authorize(service, ctx.caller, action, &all_queues).await?;
            let r = service
                .list_queues(ListQueuesRequest {
                    queue_name_prefix: text(input, "QueueNamePrefix")?.map(str::to_owned),
                    max_results: integer(input, "MaxResults")?,
                    next_token: text(input, "NextToken")?.map(str::to_owned),
                })
                .await?;
            let mut out = Map::new();
            if !r.queue_names.is_empty() {
                out.insert(
                    "QueueUrls".into(),
                    r.queue_names.iter().map(|n| url_of(n)).collect(),
                );
            }
            put_some(&mut out, "NextToken", r.next_token);
            Value::Object(out)
        }
        "ListDeadLetterSourceQueues" => {
            let name = queue()?;
            authorize(service, ctx.caller, action, &arn(&name)).await?;
            let r = service
                .list_dead_letter_source_queues(
                    &name,
                    integer(input, "MaxResults")?,
                    text(input, "NextToken")?.map(str::to_owned),
                )
                .await?;
            let mut out = Map::new();
            out.insert(
                "queueUrls".into(),
                r.queue_names.iter().map(|n| url_of(n)).collect(),
            );
            put_some(&mut out, "NextToken", r.next_token);
            Value::Object(out)
        }
        "DeleteQueue" => {
            let name = queue()?;
            authorize(service, ctx.caller, action, &arn(&name)).await?;
            service.delete_queue(&name).await?;
            json!({})
        }
        "PurgeQueue" => {
            let name = queue()?;
            authorize(service, ctx.caller, action, &arn(&name)).await?;
            service.purge_queue(&name).await?;
            json!({})
        }
        "GetQueueAttributes" => {
            let name = queue()?;
            authorize(service, ctx.caller, action, &arn(&name)).await?;
            let names = strings(input, "AttributeNames")?;
            let attrs = service.get_queue_attributes(&name, &names).await?;
            if attrs.is_empty() {
                json!({})
            } else {
                json!({"Attributes": attrs})
            }
        }
        "SetQueueAttributes" => {
            let name = queue()?;
            authorize(service, ctx.caller, action, &arn(&name)).await?;
            service
                .set_queue_attributes(&name, string_map(input, "Attributes")?)
                .await?;
            json!({})
        }
        "TagQueue" => {
            let name = queue()?;
            authorize(service, ctx.caller, action, &arn(&name)).await?;
            service.tag_queue(&name, string_map(input, "Tags")?).await?;
            json!({})
        }
        "UntagQueue" => {
            let name = queue()?;
            authorize(service, ctx.caller, action, &arn(&name)).await?;
            service
                .untag_queue(&name, &strings(input, "TagKeys")?)
                .await?;
            json!({})
        }
        "ListQueueTags" => {
            let name = queue()?;
            authorize(service, ctx.caller, action, &arn(&name)).await?;
            let tags = service.list_queue_tags(&name).await?;
            if tags.is_empty() {
                json!({})
            } else {
                json!({"Tags": tags})
            }
        }
        "SendMessage" => {
            let name = queue()?;
            authorize(service, ctx.caller, action, &arn(&name)).await?;
            let r = service
                .send_message(SendMessageRequest {
                    queue_name: name,
                    message_body: required(input, "MessageBody")?.to_owned(),
                    delay_seconds: integer(input, "DelaySeconds")?,
                    message_attributes: message_attributes(input, "MessageAttributes")?,
                    message_system_attributes: message_attributes(
                        input,
                        "MessageSystemAttributes",
                    )?,
                    message_deduplication_id: text(input, "MessageDeduplicationId")?
                        .map(str::to_owned),
                    message_group_id: text(input, "MessageGroupId")?.map(str::to_owned),
                    sender_id: spillway_aws::sts::user_id(&ctx.caller.principal.arn),
                })
                .await?;
            let mut out = Map::new();
            out.insert("MessageId".into(), json!(r.message_id));
            out.insert("MD5OfMessageBody".into(), json!(r.md5_of_message_body));
            put_some(
                &mut out,
                "MD5OfMessageAttributes",
                r.md5_of_message_attributes,
            );
            put_some(
                &mut out,
                "MD5OfMessageSystemAttributes",
                r.md5_of_message_system_attributes,
            );
            put_some(&mut out, "SequenceNumber", r.sequence_number);
            Value::Object(out)
        }
        "SendMessageBatch" => {
            let name = queue()?;
            authorize(service, ctx.caller, "SendMessage", &arn(&name)).await?;
            let mut list = Vec::new();
            for e in entries(input)? {
                list.push(SendMessageBatchRequestEntry {
                    id: required(e, "Id")?.to_owned(),
                    message_body: required(e, "MessageBody")?.to_owned(),
                    delay_seconds: integer(e, "DelaySeconds")?,
                    message_attributes: message_attributes(e, "MessageAttributes")?,
                    message_system_attributes: message_attributes(e, "MessageSystemAttributes")?,
                    message_deduplication_id: text(e, "MessageDeduplicationId")?.map(str::to_owned),
                    message_group_id: text(e, "MessageGroupId")?.map(str::to_owned),
                });
            }
            let r = service
                .send_message_batch(SendMessageBatchRequest {
                    queue_name: name,
                    entries: list,
                    sender_id: spillway_aws::sts::user_id(&ctx.caller.principal.arn),
                })
                .await?;
            let successful: Vec<Value> = r
                .successful
                .into_iter()
                .map(|s| {
                    let mut o = Map::new();
                    o.insert("Id".into(), json!(s.id));
                    o.insert("MessageId".into(), json!(s.message_id));
                    o.insert("MD5OfMessageBody".into(), json!(s.md5_of_message_body));
                    put_some(
                        &mut o,
                        "MD5OfMessageAttributes",
                        s.md5_of_message_attributes,
                    );
                    put_some(
                        &mut o,
                        "MD5OfMessageSystemAttributes",
                        s.md5_of_message_system_attributes,
                    );
                    put_some(&mut o, "SequenceNumber", s.sequence_number);
                    Value::Object(o)
                })
                .collect();
            json!({"Successful": successful, "Failed": failures(&r.failed)})
        }
        "ReceiveMessage" => {
            let name = queue()?;
            authorize(service, ctx.caller, action, &arn(&name)).await?;
            let r = service
                .receive_message(ReceiveMessageRequest {
                    queue_name: name,
                    max_number_of_messages: integer(input, "MaxNumberOfMessages")?,
                    visibility_timeout: integer(input, "VisibilityTimeout")?,
                    wait_time_seconds: integer(input, "WaitTimeSeconds")?,
                    attribute_names: strings(input, "AttributeNames")?,
                    message_system_attribute_names: strings(input, "MessageSystemAttributeNames")?,
                    message_attribute_names: strings(input, "MessageAttributeNames")?,
                    receive_request_attempt_id: text(input, "ReceiveRequestAttemptId")?
                        .map(str::to_owned),
                })
                .await?;
            if r.messages.is_empty() {
                json!({})
            } else {
                let messages: Vec<Value> = r
                    .messages
                    .into_iter()
                    .map(|m| {
                        let mut o = Map::new();
                        o.insert("MessageId".into(), json!(m.message_id));
                        o.insert("ReceiptHandle".into(), json!(m.receipt_handle));
                        o.insert("MD5OfBody".into(), json!(m.md5_of_body));
                        o.insert("Body".into(), json!(m.body));
                        if !m.attributes.is_empty() {
                            o.insert("Attributes".into(), json!(m.attributes));
                        }
                        put_some(
                            &mut o,
                            "MD5OfMessageAttributes",
                            m.md5_of_message_attributes,
                        );
                        if !m.message_attributes.is_empty() {
                            o.insert(
                                "MessageAttributes".into(),
                                attributes_json(&m.message_attributes),
                            );
                        }
                        Value::Object(o)
                    })
                    .collect();
                json!({"Messages": messages})
            }
        }
        "DeleteMessage" => {
            let name = queue()?;
            authorize(service, ctx.caller, action, &arn(&name)).await?;
            service
                .delete_message(&name, required(input, "ReceiptHandle")?)
                .await?;
            json!({})
        }
        "DeleteMessageBatch" => {
            let name = queue()?;
            authorize(service, ctx.caller, "DeleteMessage", &arn(&name)).await?;
            let mut list = Vec::new();
            for e in entries(input)? {
                list.push(DeleteMessageBatchRequestEntry {
                    id: required(e, "Id")?.to_owned(),
                    receipt_handle: required(e, "ReceiptHandle")?.to_owned(),
                });
            }
            batch(&service.delete_message_batch(&name, list).await?)
        }
        "ChangeMessageVisibility" => {
            let name = queue()?;
            authorize(service, ctx.caller, action, &arn(&name)).await?;
            let timeout = integer(input, "VisibilityTimeout")?
                .ok_or(QueueError::MissingParameter("VisibilityTimeout"))?;
            service
                .change_message_visibility(&name, required(input, "ReceiptHandle")?, timeout)
                .await?;
            json!({})
        }
        "ChangeMessageVisibilityBatch" => {
            let name = queue()?;
            authorize(service, ctx.caller, "ChangeMessageVisibility", &arn(&name)).await?;
            let mut list = Vec::new();
            for e in entries(input)? {
                list.push(ChangeMessageVisibilityBatchRequestEntry {
                    id: required(e, "Id")?.to_owned(),
                    receipt_handle: required(e, "ReceiptHandle")?.to_owned(),
                    visibility_timeout: integer(e, "VisibilityTimeout")?
                        .ok_or(QueueError::MissingParameter("VisibilityTimeout"))?,
                });
            }
            batch(&service.change_message_visibility_batch(&name, list).await?)
        }
        "AddPermission" => {
            let name = queue()?;
            authorize(service, ctx.caller, action, &arn(&name)).await?;
            service
                .add_permission(
                    &name,
                    required(input, "Label")?,
                    &strings(input, "AWSAccountIds")?,
                    &strings(input, "Actions")?,
                )
                .await?;
            json!({})
        }
        "RemovePermission" => {
            let name = queue()?;
            authorize(service, ctx.caller, action, &arn(&name)).await?;
            service
                .remove_permission(&name, required(input, "Label")?)
                .await?;
            json!({})
        }
        "StartMessageMoveTask" => {
            let source = required(input, "SourceArn")?;
            let destination = text(input, "DestinationArn")?.filter(|d| !d.is_empty());
            // Redrive reads and deletes in the source and sends to the destination: AWS asks
            // for those permissions too (the Developer Guide's "configure a dead-letter queue
            // redrive" lists them). Without a DestinationArn the destinations are the queues
            // that dead-letter into the source.
            for needed in [
                action,
                "ReceiveMessage",
                "DeleteMessage",
                "GetQueueAttributes",
            ] {
                authorize(service, ctx.caller, needed, source).await?;
            }
            let destinations = match destination {
                Some(d) => vec![d.to_owned()],
                None => service.dead_letter_source_arns(source),
            };
            for d in &destinations {
                authorize(service, ctx.caller, "SendMessage", d).await?;
            }
            let handle = service
                .start_message_move_task(
                    source,
                    destination,
                    integer(input, "MaxNumberOfMessagesPerSecond")?,
                )
                .await?;
            json!({"TaskHandle": handle})
        }
        "ListMessageMoveTasks" => {
            let source = required(input, "SourceArn")?;
            authorize(service, ctx.caller, action, source).await?;
            let tasks = service
                .list_message_move_tasks(source, integer(input, "MaxResults")?)
                .await?;
            json!({"Results": tasks.iter().map(move_task_json).collect::<Vec<_>>()})
        }
        "CancelMessageMoveTask" => {
            let handle = required(input, "TaskHandle")?;
            let (_, source) = crate::move_task::parse_handle(handle)?;
            authorize(service, ctx.caller, action, &source).await?;
            let moved = service.cancel_message_move_task(handle).await?;
            json!({"ApproximateNumberOfMessagesMoved": moved})
        }
        other => {
            return Err(QueueError::UnsupportedOperation(format!(
                "{other} is not supported by spillway's queue yet"
            ))
            .into());
        }
    };
    Ok(out)
}
