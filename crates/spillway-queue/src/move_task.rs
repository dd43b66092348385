//! Message move tasks (StartMessageMoveTask, the dead-letter queue redrive): what a task is,
//! its statuses, and its handle.
//!
//! A task moves the messages that were in its source queue (a dead-letter queue) when it
//! started: those with a sequence below [`MoveTask::below_seq`], so messages that arrive
//! later stay. Tasks are stored per source queue (at most [`KEPT_PER_QUEUE`], newest first)
//! in the store's metadata, rewritten in the same commit as each batch of moved messages, so
//! the count moved and the position survive a restart with the messages they describe, and a
//! running task resumes where its last commit left it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::QueueError;

/// The highest MaxNumberOfMessagesPerSecond AWS accepts.
pub const MAX_RATE: u32 = 500;
/// The rate of a task started without MaxNumberOfMessagesPerSecond. AWS picks one from the
/// backlog ("system optimized") without saying which; spillway uses the highest rate a caller
/// could ask for, which a laptop's store sustains easily.
pub const DEFAULT_RATE: u32 = MAX_RATE;
/// Tasks remembered per source queue: ListMessageMoveTasks returns at most 10.
pub const KEPT_PER_QUEUE: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MoveStatus {
    Running,
    Completed,
    Cancelling,
    Cancelled,
    Failed,
}

impl MoveStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MoveStatus::Running => "RUNNING",
            MoveStatus::Completed => "COMPLETED",
            MoveStatus::Cancelling => "CANCELLING",
            MoveStatus::Cancelled => "CANCELLED",
            MoveStatus::Failed => "FAILED",
        }
    }

    /// Running or being cancelled: a source queue has at most one such task.
    pub fn active(self) -> bool {
        matches!(self, MoveStatus::Running | MoveStatus::Cancelling)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveTask {
    pub task_id: String,
    pub source_arn: String,
    /// As given; `None` sends each message back to the queue it was dead-lettered from.
    pub destination_arn: Option<String>,
    /// As given; `None` runs at [`DEFAULT_RATE`].
    pub max_per_second: Option<u32>,
    pub status: MoveStatus,
    pub moved: u64,
    /// The source queue's message count when the task started.
    pub to_move: u64,
    pub failure_reason: Option<String>,
    /// Epoch milliseconds.
    pub started_at: u64,
    /// Messages with a lower sequence were in the source queue when the task started.
    pub below_seq: u64,
    /// Where the next scan of the source queue starts.
    pub cursor: u64,
}

impl MoveTask {
    /// AWS's handle shape: base64 of `{"taskId": ..., "sourceArn": ...}`, so that
    /// CancelMessageMoveTask finds the source queue from the handle alone.
    pub fn handle(&self) -> String {
        STANDARD.encode(
            serde_json::json!({"taskId": self.task_id, "sourceArn": self.source_arn}).to_string(),
        )
    }

    pub fn rate(&self) -> u32 {
        self.max_per_second.unwrap_or(DEFAULT_RATE)
    }
}

/// The task id and source queue ARN a TaskHandle names.
pub fn parse_handle(handle: &str) -> Result<(String, String), QueueError> {
    let invalid =
        || QueueError::InvalidParameterValue("Value for parameter TaskHandle is invalid.".into());
    let bytes = STANDARD.decode(handle.trim()).map_err(|_| invalid())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    match (
        value.get("taskId").and_then(Value::as_str),
        value.get("sourceArn").and_then(Value::as_str),
    ) {
        (Some(id), Some(arn)) if !id.is_empty() && !arn.is_empty() => {
            Ok((id.to_owned(), arn.to_owned()))
        }
        _ => Err(invalid()),
    }
}

/// The metadata key holding a queue's tasks.
pub(crate) fn meta_key(queue: u64) -> String {
    format!("move-tasks/{queue}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_names_its_task_and_source() {
        let task = MoveTask {
            task_id: "t-1".into(),
            source_arn: "arn:aws:sqs:us-east-1:000000000000:dlq".into(),
            destination_arn: None,
            max_per_second: None,
            status: MoveStatus::Running,
            moved: 0,
            to_move: 0,
            failure_reason: None,
            started_at: 0,
            below_seq: 1,
            cursor: 0,
        };
        let parsed = parse_handle(&task.handle()).ok();
        assert_eq!(parsed, Some(("t-1".to_owned(), task.source_arn.clone())));
        for bad in [
            "",
            "not base64!",
            &STANDARD.encode("{}"),
            &STANDARD.encode("[1]"),
        ] {
            assert!(
                matches!(parse_handle(bad), Err(QueueError::InvalidParameterValue(_))),
                "{bad}"
            );
        }
    }
}
