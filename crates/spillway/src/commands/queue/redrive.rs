//! `spillway queue redrive DLQ`: StartMessageMoveTask, then ListMessageMoveTasks every second
//! until the task ends; Ctrl-C cancels it (CancelMessageMoveTask) so that nothing keeps moving
//! after the person who started it has gone.

use std::time::Duration;

use serde_json::{Value, json};

use super::client::AwsJsonClient;
use super::{QueueCliError, attributes, queue_url, text};
use crate::cli::QueueRedriveArgs;

/// The exit code after Ctrl-C, as a shell reports a process ended by SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

async fn arn(client: &AwsJsonClient, name: &str) -> Result<String, QueueCliError> {
    let url = queue_url(client, name).await?;
    let attrs = attributes(client, &url, &["QueueArn"]).await?;
    Ok(attrs
        .get("QueueArn")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned())
}

pub async fn run(client: &AwsJsonClient, args: &QueueRedriveArgs) -> Result<u8, QueueCliError> {
    let source = arn(client, &args.dlq).await?;
    let mut input = json!({"SourceArn": source});
    if let Some(to) = &args.to {
        input["DestinationArn"] = json!(arn(client, to).await?);
    }
    if let Some(rate) = args.rate {
        input["MaxNumberOfMessagesPerSecond"] = json!(rate);
    }
    // Installed before the task starts: from then on Ctrl-C must cancel it, not kill this
    // process and leave the task running (ctrl_c() would only install on its first poll).
    let mut interrupt =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(|e| QueueCliError::Transport(format!("installing the Ctrl-C handler: {e}")))?;
    let started = client.call("StartMessageMoveTask", &input).await?;
    let handle = text(&started, "TaskHandle").to_owned();
    println!(
        "redriving {} to {}",
        args.dlq,
        args.to.as_deref().unwrap_or("its source queues")
    );
    loop {
        let listed = client
            .call(
                "ListMessageMoveTasks",
                &json!({"SourceArn": source, "MaxResults": 1}),
            )
            .await?;
        // The newest task comes first: ours, unless another one started after it ended.
        let task = listed
            .get("Results")
            .and_then(Value::as_array)
            .and_then(|r| r.first())
            .cloned()
            .unwrap_or(Value::Null);
        let moved = task
            .get("ApproximateNumberOfMessagesMoved")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let to_move = task
            .get("ApproximateNumberOfMessagesToMove")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let status = text(&task, "Status");
        println!("{status}: moved {moved} of {to_move}");
        match status {
            "RUNNING" | "CANCELLING" => {}
            "COMPLETED" => return Ok(0),
            "FAILED" => {
                eprintln!(
                    "error: the move task failed: {}",
                    text(&task, "FailureReason")
                );
                return Ok(super::EXIT_RUNTIME);
            }
            _ => return Ok(super::EXIT_RUNTIME),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = interrupt.recv() => {
                let out = client
                    .call("CancelMessageMoveTask", &json!({"TaskHandle": handle}))
                    .await?;
                println!(
                    "cancelled after moving {}",
                    out.get("ApproximateNumberOfMessagesMoved").and_then(Value::as_i64).unwrap_or(0)
                );
                return Ok(EXIT_INTERRUPTED);
            }
        }
    }
}
