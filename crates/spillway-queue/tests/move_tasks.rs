//! Message move tasks over the real redb store: a running task survives closing and reopening
//! the store and finishes from where its last commit left it, without losing or doubling a
//! message; a message with nowhere to go fails the task with a reason; a deleted queue's name
//! is refused for a minute.

// In a test, a failed expectation is the failure report.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use spillway_queue::move_task::MoveStatus;
use spillway_queue::*;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "000000000000";

fn arn(name: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")
}

async fn create(service: &QueueService, name: &str, attributes: &[(&str, &str)]) {
    service
        .create_queue(CreateQueueRequest {
            queue_name: name.into(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            tags: BTreeMap::new(),
        })
        .await
        .expect("create queue");
}

async fn send(service: &QueueService, queue: &str, body: &str) {
    service
        .send_message(SendMessageRequest {
            queue_name: queue.into(),
            message_body: body.into(),
            sender_id: "AIDATEST".into(),
            ..Default::default()
        })
        .await
        .expect("send");
}

async fn total(service: &QueueService, queue: &str) -> u64 {
    let names = [
        "ApproximateNumberOfMessages".to_string(),
        "ApproximateNumberOfMessagesNotVisible".to_string(),
    ];
    let a = service
        .get_queue_attributes(queue, &names)
        .await
        .expect("attributes");
    names
        .iter()
        .map(|n| a.get(n).and_then(|v| v.parse::<u64>().ok()).expect("count"))
        .sum()
}

/// Polls the newest task of `source` until it is no longer RUNNING (at most 30 s).
async fn settled(service: &QueueService, source: &str) -> spillway_queue::move_task::MoveTask {
    for _ in 0..300 {
        let task = service
            .list_message_move_tasks(&arn(source), None)
            .await
            .expect("list")
            .remove(0);
        if task.status != MoveStatus::Running {
            return task;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the task never finished");
}

async fn dead_letter_setup(service: &QueueService) {
    create(service, "dlq", &[]).await;
    let policy = format!(
        r#"{{"deadLetterTargetArn":"{}","maxReceiveCount":1}}"#,
        arn("dlq")
    );
    create(service, "src", &[("RedrivePolicy", policy.as_str())]).await;
    create(service, "other", &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_task_resumes_after_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let service = QueueService::open(dir.path(), REGION, ACCOUNT)
            .await
            .expect("open");
        dead_letter_setup(&service).await;
        for i in 0..4 {
            send(&service, "dlq", &format!("m{i}")).await;
        }
        service
            .start_message_move_task(&arn("dlq"), Some(&arn("other")), Some(1))
            .await
            .expect("start");
        // At 1 a second the first message moves at once and the rest take 3 s: closing now
        // stops the task part way.
        service.close();
    }
    let service = QueueService::open(dir.path(), REGION, ACCOUNT)
        .await
        .expect("reopen");
    let task = service
        .list_message_move_tasks(&arn("dlq"), None)
        .await
        .expect("list")
        .remove(0);
    assert_eq!(task.status, MoveStatus::Running, "{task:?}");
    assert!(task.moved < 4, "{task:?}");
    let task = settled(&service, "dlq").await;
    assert_eq!(
        (task.status, task.moved, task.to_move),
        (MoveStatus::Completed, 4, 4)
    );
    assert_eq!(
        (total(&service, "other").await, total(&service, "dlq").await),
        (4, 0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_with_nowhere_to_go_fails_the_task() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = QueueService::open(dir.path(), REGION, ACCOUNT)
        .await
        .expect("open");
    dead_letter_setup(&service).await;
    // Sent straight to the dead-letter queue: no source queue to go back to.
    send(&service, "dlq", "direct").await;
    service
        .start_message_move_task(&arn("dlq"), None, None)
        .await
        .expect("start");
    let task = settled(&service, "dlq").await;
    assert_eq!((task.status, task.moved), (MoveStatus::Failed, 0));
    assert!(
        task.failure_reason
            .as_deref()
            .is_some_and(|r| r.contains("no DestinationArn")),
        "{task:?}"
    );
    assert_eq!(total(&service, "dlq").await, 1);
}

#[tokio::test]
async fn a_deleted_queue_name_is_refused_for_a_minute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = QueueService::open(dir.path(), REGION, ACCOUNT)
        .await
        .expect("open");
    create(&service, "q", &[]).await;
    service.delete_queue("q").await.expect("delete");
    let again = service
        .create_queue(CreateQueueRequest {
            queue_name: "q".into(),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(again, Err(QueueError::QueueDeletedRecently)),
        "{again:?}"
    );
    create(&service, "q2", &[]).await;
}

/// Without a DestinationArn, a message goes back only to a queue that still redrives into the
/// dead-letter queue: the caller was authorized on those, not on every queue a message once
/// came from.
#[tokio::test(flavor = "multi_thread")]
async fn a_source_that_no_longer_redrives_here_gets_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = QueueService::open(dir.path(), REGION, ACCOUNT)
        .await
        .expect("open");
    dead_letter_setup(&service).await;
    // Another source keeps "dlq" a dead-letter queue once "src" stops using it.
    let policy = format!(
        r#"{{"deadLetterTargetArn":"{}","maxReceiveCount":1}}"#,
        arn("dlq")
    );
    create(&service, "src2", &[("RedrivePolicy", policy.as_str())]).await;
    send(&service, "src", "once-from-src").await;
    // Received twice with maxReceiveCount 1: the second receive moves it to the DLQ.
    for _ in 0..2 {
        service
            .receive_message(ReceiveMessageRequest {
                queue_name: "src".into(),
                visibility_timeout: Some(0),
                ..Default::default()
            })
            .await
            .expect("receive");
    }
    assert_eq!(total(&service, "dlq").await, 1);
    service
        .set_queue_attributes(
            "src",
            BTreeMap::from([("RedrivePolicy".to_string(), String::new())]),
        )
        .await
        .expect("clear the redrive policy");
    service
        .start_message_move_task(&arn("dlq"), None, None)
        .await
        .expect("start");
    let task = settled(&service, "dlq").await;
    assert_eq!(
        (task.status, task.moved),
        (MoveStatus::Failed, 0),
        "{task:?}"
    );
    assert!(
        task.failure_reason
            .as_deref()
            .is_some_and(|r| r.contains("no longer uses this queue")),
        "{task:?}"
    );
    assert_eq!(
        (total(&service, "src").await, total(&service, "dlq").await),
        (0, 1)
    );
}
