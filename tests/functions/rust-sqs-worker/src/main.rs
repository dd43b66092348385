//! An SQS event source mapping's function, written as Rust handlers are on Lambda: the event is
//! `aws_lambda_events`' `SqsEvent`, the answer its `SqsBatchResponse`. A record whose body is
//! "poison" fails the whole batch (an error); a "partial-*" record is reported in
//! `batchItemFailures` on its first receive; every other record is forwarded to the queue named
//! by the DONE_QUEUE environment variable with what the event said of it (through aws-sdk-sqs,
//! with the credentials and endpoint spillway gives the function).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, service_fn};

struct Worker {
    sqs: aws_sdk_sqs::Client,
    done_url: String,
}

impl Worker {
    async fn handle(&self, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
        let mut response = SqsBatchResponse::default();
        for record in event.payload.records {
            let body = record.body.clone().unwrap_or_default();
            let id = record.message_id.clone().unwrap_or_default();
            if body == "poison" {
                return Err(format!("poison message {id}").into());
            }
            let count = record
                .attributes
                .get("ApproximateReceiveCount")
                .cloned()
                .unwrap_or_default();
            if body.starts_with("partial") && count == "1" {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
                continue;
            }
            let seen = serde_json::json!({
                "body": body,
                "count": count,
                "source": record.event_source,
                "arn": record.event_source_arn,
                "region": record.aws_region,
                "attr": record.message_attributes.get("k").and_then(|a| a.string_value.clone()),
                "md5": record.md5_of_body,
                "sent": record.attributes.get("SentTimestamp"),
                "receipt": record.receipt_handle.is_some(),
            });
            self.sqs
                .send_message()
                .queue_url(&self.done_url)
                .message_body(seen.to_string())
                .send()
                .await?;
        }
        Ok(response)
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let done = std::env::var("DONE_QUEUE").unwrap_or_else(|_| "done".to_owned());
    let done_url = sqs
        .get_queue_url()
        .queue_name(&done)
        .send()
        .await?
        .queue_url
        .ok_or("GetQueueUrl answered without a QueueUrl")?;
    let worker = Worker { sqs, done_url };
    let worker = &worker;
    lambda_runtime::run(service_fn(move |event| worker.handle(event))).await
}
