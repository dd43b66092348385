//! 10,000 queues: each created durably, listed across pages exactly once, every one usable,
//! all of them back after the store is opened again, and deletes that leave nothing behind.

// In a test, a failed expectation is the failure report.
#![allow(clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Instant;

use spillway_queue::*;

const QUEUES: usize = 10_000;

async fn all_names(service: &QueueService, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut token = None;
    // Bounded: 10,000 names at 1,000 a page is 10 pages.
    for _ in 0..100 {
        let page = service
            .list_queues(ListQueuesRequest {
                queue_name_prefix: Some(prefix.into()),
                max_results: Some(1000),
                next_token: token,
            })
            .await
            .expect("list queues");
        names.extend(page.queue_names);
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_queues_are_created_listed_reopened_and_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = QueueService::open(dir.path(), "us-east-1", "000000000000")
        .await
        .expect("open");
    let started = Instant::now();
    let mut tasks = Vec::new();
    // 50 creators at once share commits, as many clients would.
    for creator in 0..50 {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            for n in (creator..QUEUES).step_by(50) {
                service
                    .create_queue(CreateQueueRequest {
                        queue_name: format!("q-{n:05}"),
                        ..Default::default()
                    })
                    .await
                    .expect("create queue");
            }
        }));
    }
    for task in tasks {
        task.await.expect("creator");
    }
    let created = started.elapsed();

    // Without MaxResults AWS answers at most 1,000 names and no token.
    let first = service
        .list_queues(ListQueuesRequest::default())
        .await
        .expect("list");
    assert_eq!(first.queue_names.len(), 1000);
    assert_eq!(first.next_token, None);

    let names = all_names(&service, "q-").await;
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(names.len(), QUEUES, "every queue once");
    assert_eq!(unique.len(), QUEUES);
    assert_eq!(all_names(&service, "q-0999").await.len(), 10);

    // The last queue works like the first.
    for queue in ["q-00000", "q-09999"] {
        service
            .send_message(SendMessageRequest {
                queue_name: queue.into(),
                message_body: "hello".into(),
                sender_id: "AIDATEST".into(),
                ..Default::default()
            })
            .await
            .expect("send");
        let got = service
            .receive_message(ReceiveMessageRequest {
                queue_name: queue.into(),
                ..Default::default()
            })
            .await
            .expect("receive");
        assert_eq!(got.messages.len(), 1);
    }
    service.close();

    let started = Instant::now();
    let service = QueueService::open(dir.path(), "us-east-1", "000000000000")
        .await
        .expect("reopen");
    let reopened = started.elapsed();
    assert_eq!(all_names(&service, "q-").await.len(), QUEUES);

    for n in 0..QUEUES {
        service
            .delete_queue(&format!("q-{n:05}"))
            .await
            .expect("delete queue");
    }
    assert!(all_names(&service, "q-").await.is_empty());
    let err = service
        .get_queue_url("q-00042")
        .await
        .expect_err("a deleted queue");
    assert_eq!(err.code(), "QueueDoesNotExist");
    eprintln!("{QUEUES} queues created in {created:?}, reopened in {reopened:?}");
}
