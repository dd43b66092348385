//! The service end to end over the real redb store in a temporary directory.

// In a test, a failed expectation is the failure report.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use spillway_queue::*;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "000000000000";

async fn service() -> (tempfile::TempDir, QueueService) {
    let dir = tempfile::tempdir().expect("tempdir");
    let service = QueueService::open(dir.path(), REGION, ACCOUNT)
        .await
        .expect("open");
    (dir, service)
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn create(service: &QueueService, name: &str, attributes: &[(&str, &str)]) {
    service
        .create_queue(CreateQueueRequest {
            queue_name: name.into(),
            attributes: attrs(attributes),
            tags: BTreeMap::new(),
        })
        .await
        .expect("create queue");
}

fn send(queue: &str, body: &str) -> SendMessageRequest {
    SendMessageRequest {
        queue_name: queue.into(),
        message_body: body.into(),
        sender_id: "AIDATEST".into(),
        ..Default::default()
    }
}

fn receive(queue: &str, max: u32) -> ReceiveMessageRequest {
    ReceiveMessageRequest {
        queue_name: queue.into(),
        max_number_of_messages: Some(max),
        message_system_attribute_names: vec!["All".into()],
        message_attribute_names: vec!["All".into()],
        ..Default::default()
    }
}

async fn count(service: &QueueService, queue: &str, name: &str) -> u64 {
    let attributes = service
        .get_queue_attributes(queue, &[name.to_string()])
        .await
        .expect("attributes");
    attributes
        .get(name)
        .and_then(|v| v.parse().ok())
        .expect("a count")
}

#[tokio::test]
async fn create_is_idempotent_only_with_equal_attributes() {
    let (_dir, service) = service().await;
    create(&service, "q", &[("VisibilityTimeout", "40")]).await;
    create(&service, "q", &[("VisibilityTimeout", "40")]).await;
    create(&service, "q", &[]).await;
    let again = service
        .create_queue(CreateQueueRequest {
            queue_name: "q".into(),
            attributes: attrs(&[("VisibilityTimeout", "41")]),
            tags: BTreeMap::new(),
        })
        .await;
    assert!(
        matches!(again, Err(QueueError::QueueAlreadyExists(ref a)) if a == "VisibilityTimeout")
    );
    let bad = service
        .create_queue(CreateQueueRequest {
            queue_name: "bad name".into(),
            ..Default::default()
        })
        .await;
    assert!(matches!(bad, Err(QueueError::InvalidParameterValue(_))));
    let fifo_without_suffix = service
        .create_queue(CreateQueueRequest {
            queue_name: "f".into(),
            attributes: attrs(&[("FifoQueue", "true")]),
            tags: BTreeMap::new(),
        })
        .await;
    assert!(fifo_without_suffix.is_err());
}

#[tokio::test]
async fn list_queues_pages_by_prefix() {
    let (_dir, service) = service().await;
    for name in ["a1", "a2", "a3", "b1"] {
        create(&service, name, &[]).await;
    }
    let first = service
        .list_queues(ListQueuesRequest {
            queue_name_prefix: Some("a".into()),
            max_results: Some(2),
            next_token: None,
        })
        .await
        .expect("list");
    assert_eq!(first.queue_names, vec!["a1", "a2"]);
    let second = service
        .list_queues(ListQueuesRequest {
            queue_name_prefix: Some("a".into()),
            max_results: Some(2),
            next_token: first.next_token,
        })
        .await
        .expect("list");
    assert_eq!(second.queue_names, vec!["a3"]);
    assert_eq!(second.next_token, None);
}

#[tokio::test]
async fn attributes_have_defaults_and_validation() {
    let (_dir, service) = service().await;
    create(&service, "q", &[]).await;
    let all = service
        .get_queue_attributes("q", &["All".into()])
        .await
        .expect("all");
    assert_eq!(all.get("VisibilityTimeout").map(String::as_str), Some("30"));
    assert_eq!(
        all.get("MaximumMessageSize").map(String::as_str),
        Some("262144")
    );
    assert_eq!(
        all.get("QueueArn").map(String::as_str),
        Some("arn:aws:sqs:us-east-1:000000000000:q")
    );
    assert_eq!(
        all.get("ApproximateNumberOfMessages").map(String::as_str),
        Some("0")
    );
    assert!(!all.contains_key("FifoQueue"));
    let bad = service
        .set_queue_attributes("q", attrs(&[("VisibilityTimeout", "43201")]))
        .await;
    assert!(matches!(bad, Err(QueueError::InvalidAttributeValue(_))));
    let unknown = service
        .set_queue_attributes("q", attrs(&[("Nope", "1")]))
        .await;
    assert!(matches!(unknown, Err(QueueError::InvalidAttributeName(_))));
    // A queue policy is enforced, so it must be one.
    let not_a_policy = service
        .set_queue_attributes("q", attrs(&[("Policy", "{}")]))
        .await;
    assert!(matches!(
        not_a_policy,
        Err(QueueError::InvalidAttributeValue(_))
    ));
    let policy =
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"sqs:*","Resource":"*"}}"#;
    service
        .set_queue_attributes("q", attrs(&[("DelaySeconds", "5"), ("Policy", policy)]))
        .await
        .expect("set");
    let some = service
        .get_queue_attributes("q", &["DelaySeconds".into(), "Policy".into()])
        .await
        .expect("get");
    assert_eq!(some, attrs(&[("DelaySeconds", "5"), ("Policy", policy)]));
    assert!(matches!(
        service.get_queue_attributes("nope", &[]).await,
        Err(QueueError::QueueDoesNotExist)
    ));
}

#[tokio::test]
async fn send_receive_delete_with_digests_and_filters() {
    let (_dir, service) = service().await;
    create(&service, "q", &[]).await;
    let mut request = send("q", "Test message.");
    request.message_attributes.insert(
        "timestamp".into(),
        MessageAttributeValue::number("1493147359900"),
    );
    request
        .message_attributes
        .insert("other.x".into(), MessageAttributeValue::string("y"));
    let sent = service.send_message(request).await.expect("send");
    assert_eq!(sent.md5_of_message_body, "e4e68fb7bd0e697a0ae8f1bb342846b3");
    assert!(sent.md5_of_message_attributes.is_some());
    assert_eq!(sent.sequence_number, None);
    let plain = service
        .send_message(send("q", "plain"))
        .await
        .expect("send");
    assert_eq!(plain.md5_of_message_attributes, None);

    let mut only_timestamp = receive("q", 1);
    only_timestamp.message_attribute_names = vec!["timestamp".into()];
    let got = service
        .receive_message(only_timestamp)
        .await
        .expect("receive")
        .messages;
    assert_eq!(got.len(), 1);
    let message = &got[0];
    assert_eq!(message.message_id, sent.message_id);
    assert_eq!(message.md5_of_body, sent.md5_of_message_body);
    assert_eq!(message.message_attributes.len(), 1);
    // The digest covers the attributes returned: the documented vector for this one attribute.
    assert_eq!(
        message.md5_of_message_attributes.as_deref(),
        Some("235c5c510d26fb653d073faed50ae77c")
    );
    assert_eq!(
        message
            .attributes
            .get("ApproximateReceiveCount")
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(
        message.attributes.get("SenderId").map(String::as_str),
        Some("AIDATEST")
    );
    assert!(message.attributes.contains_key("SentTimestamp"));
    assert!(
        message
            .attributes
            .contains_key("ApproximateFirstReceiveTimestamp")
    );

    let mut prefixed = receive("q", 1);
    prefixed.message_attribute_names = vec!["other.*".into()];
    prefixed.message_system_attribute_names = vec![];
    let got = service
        .receive_message(prefixed)
        .await
        .expect("receive")
        .messages;
    assert_eq!(got.len(), 1);
    assert!(got[0].attributes.is_empty());
    assert!(
        got[0].message_attributes.is_empty(),
        "plain has no attributes"
    );

    assert_eq!(
        count(&service, "q", "ApproximateNumberOfMessagesNotVisible").await,
        2
    );
    service
        .delete_message("q", &message.receipt_handle)
        .await
        .expect("delete");
    // Deleting again (the message is gone) is not an error.
    service
        .delete_message("q", &message.receipt_handle)
        .await
        .expect("delete again");
    assert_eq!(
        count(&service, "q", "ApproximateNumberOfMessagesNotVisible").await,
        1
    );
    let forged = service.delete_message("q", "AQEBforged").await;
    assert!(matches!(forged, Err(QueueError::ReceiptHandleIsInvalid(_))));
}

#[tokio::test]
async fn bodies_and_sizes_are_checked() {
    let (_dir, service) = service().await;
    create(&service, "q", &[("MaximumMessageSize", "1024")]).await;
    let bad = service.send_message(send("q", "a\u{1}b")).await;
    assert!(matches!(bad, Err(QueueError::InvalidMessageContents(_))));
    let big = service.send_message(send("q", &"x".repeat(1025))).await;
    assert!(matches!(big, Err(QueueError::InvalidParameterValue(_))));
    let mut with_attribute = send("q", &"x".repeat(1000));
    with_attribute
        .message_attributes
        .insert("name".into(), MessageAttributeValue::string("x".repeat(20)));
    // 1000 + 4 + 6 + 20 = 1030 > 1024
    assert!(service.send_message(with_attribute).await.is_err());
    service
        .send_message(send("q", &"x".repeat(1024)))
        .await
        .expect("exactly the limit");
}

#[tokio::test]
async fn batches_report_per_entry_and_request_errors() {
    let (_dir, service) = service().await;
    create(&service, "q", &[]).await;
    let entry = |id: &str, body: &str| SendMessageBatchRequestEntry {
        id: id.into(),
        message_body: body.into(),
        ..Default::default()
    };
    let batch = |entries| SendMessageBatchRequest {
        queue_name: "q".into(),
        entries,
        sender_id: "s".into(),
    };
    let response = service
        .send_message_batch(batch(vec![
            entry("a", "one"),
            entry("b", "bad\u{0}"),
            entry("c", "three"),
        ]))
        .await
        .expect("batch");
    assert_eq!(
        response
            .successful
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        vec!["a", "c"]
    );
    assert_eq!(response.failed.len(), 1);
    assert_eq!(response.failed[0].code, "InvalidMessageContents");
    assert!(response.failed[0].sender_fault);
    let repeated = service
        .send_message_batch(batch(vec![entry("a", "1"), entry("a", "2")]))
        .await;
    assert!(matches!(
        repeated,
        Err(QueueError::BatchEntryIdsNotDistinct(_))
    ));
    let many = (0..11).map(|i| entry(&i.to_string(), "x")).collect();
    assert!(matches!(
        service.send_message_batch(batch(many)).await,
        Err(QueueError::TooManyEntriesInBatchRequest(11))
    ));
    assert!(matches!(
        service.send_message_batch(batch(vec![])).await,
        Err(QueueError::EmptyBatchRequest)
    ));
    let long = (0..2)
        .map(|i| entry(&i.to_string(), &"x".repeat(200_000)))
        .collect();
    assert!(matches!(
        service.send_message_batch(batch(long)).await,
        Err(QueueError::BatchRequestTooLong(..))
    ));
    assert_eq!(count(&service, "q", "ApproximateNumberOfMessages").await, 2);

    let got = service
        .receive_message(receive("q", 10))
        .await
        .expect("receive")
        .messages;
    assert_eq!(got.len(), 2);
    let deletes = vec![
        DeleteMessageBatchRequestEntry {
            id: "x".into(),
            receipt_handle: got[0].receipt_handle.clone(),
        },
        DeleteMessageBatchRequestEntry {
            id: "y".into(),
            receipt_handle: "garbage".into(),
        },
    ];
    let response = service
        .delete_message_batch("q", deletes)
        .await
        .expect("delete batch");
    assert_eq!(
        response.successful,
        vec![BatchResultEntry { id: "x".into() }]
    );
    assert_eq!(response.failed[0].code, "ReceiptHandleIsInvalid");
}

#[tokio::test]
async fn an_older_receipt_handle_succeeds_but_deletes_nothing() {
    let (_dir, service) = service().await;
    create(&service, "q", &[]).await;
    service.send_message(send("q", "m")).await.expect("send");
    let mut quick = receive("q", 1);
    quick.visibility_timeout = Some(0);
    let first = service
        .receive_message(quick.clone())
        .await
        .expect("receive")
        .messages;
    let second = service
        .receive_message(quick)
        .await
        .expect("receive")
        .messages;
    assert_eq!(first.len(), 1);
    assert_eq!(second.len(), 1);
    assert_ne!(first[0].receipt_handle, second[0].receipt_handle);
    service
        .delete_message("q", &first[0].receipt_handle)
        .await
        .expect("old handle is accepted");
    assert_eq!(count(&service, "q", "ApproximateNumberOfMessages").await, 1);
    service
        .delete_message("q", &second[0].receipt_handle)
        .await
        .expect("latest handle");
    assert_eq!(count(&service, "q", "ApproximateNumberOfMessages").await, 0);
}

#[tokio::test]
async fn visibility_changes_and_the_message_comes_back() {
    let (_dir, service) = service().await;
    create(&service, "q", &[]).await;
    service.send_message(send("q", "m")).await.expect("send");
    let got = service
        .receive_message(receive("q", 1))
        .await
        .expect("receive")
        .messages;
    let handle = got[0].receipt_handle.clone();
    let too_long = service
        .change_message_visibility("q", &handle, 43_201)
        .await;
    assert!(matches!(
        too_long,
        Err(QueueError::InvalidParameterValue(_))
    ));
    assert!(
        service
            .receive_message(receive("q", 1))
            .await
            .expect("receive")
            .messages
            .is_empty()
    );
    service
        .change_message_visibility("q", &handle, 1)
        .await
        .expect("change");
    // A long poll wakes when the message becomes visible again.
    let mut wait = receive("q", 1);
    wait.wait_time_seconds = Some(20);
    let again = service
        .receive_message(wait)
        .await
        .expect("receive")
        .messages;
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0]
            .attributes
            .get("ApproximateReceiveCount")
            .map(String::as_str),
        Some("2")
    );
    service
        .change_message_visibility("q", &again[0].receipt_handle, 0)
        .await
        .expect("release");
    let not_in_flight = service
        .change_message_visibility("q", &again[0].receipt_handle, 10)
        .await;
    assert!(matches!(not_in_flight, Err(QueueError::MessageNotInflight)));
}

#[tokio::test]
async fn a_long_poll_wakes_on_a_send() {
    let (_dir, service) = service().await;
    create(&service, "q", &[]).await;
    let poller = {
        let service = service.clone();
        tokio::spawn(async move {
            let mut wait = receive("q", 1);
            wait.wait_time_seconds = Some(20);
            service.receive_message(wait).await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    service.send_message(send("q", "wake")).await.expect("send");
    let got = poller.await.expect("join").expect("receive").messages;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "wake");
}

#[tokio::test]
async fn delayed_messages_count_as_delayed_then_arrive() {
    let (_dir, service) = service().await;
    create(&service, "q", &[]).await;
    let mut delayed = send("q", "later");
    delayed.delay_seconds = Some(1);
    service.send_message(delayed).await.expect("send");
    assert_eq!(
        count(&service, "q", "ApproximateNumberOfMessagesDelayed").await,
        1
    );
    let mut wait = receive("q", 1);
    wait.wait_time_seconds = Some(20);
    let got = service
        .receive_message(wait)
        .await
        .expect("receive")
        .messages;
    assert_eq!(got.len(), 1);
    let mut too_late = send("q", "x");
    too_late.delay_seconds = Some(901);
    assert!(service.send_message(too_late).await.is_err());
}

#[tokio::test]
async fn redrive_moves_after_max_receive_count_keeping_the_message() {
    let (_dir, service) = service().await;
    create(&service, "dlq", &[]).await;
    let policy =
        r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":2}"#;
    create(&service, "src", &[("RedrivePolicy", policy)]).await;
    let mut request = send("src", "poison");
    request
        .message_attributes
        .insert("k".into(), MessageAttributeValue::string("v"));
    let sent = service.send_message(request).await.expect("send");
    let mut quick = receive("src", 1);
    quick.visibility_timeout = Some(0);
    let mut sent_at = None;
    for _ in 0..2 {
        let got = service
            .receive_message(quick.clone())
            .await
            .expect("receive")
            .messages;
        assert_eq!(got.len(), 1);
        sent_at = got[0].attributes.get("SentTimestamp").cloned();
    }
    // The third receive would exceed maxReceiveCount: the message moves instead.
    assert!(
        service
            .receive_message(quick)
            .await
            .expect("receive")
            .messages
            .is_empty()
    );
    let moved = service
        .receive_message(receive("dlq", 1))
        .await
        .expect("receive")
        .messages;
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].message_id, sent.message_id);
    assert_eq!(
        moved[0].message_attributes.get("k"),
        Some(&MessageAttributeValue::string("v"))
    );
    assert_eq!(moved[0].attributes.get("SentTimestamp"), sent_at.as_ref());
    assert_eq!(
        moved[0]
            .attributes
            .get("DeadLetterQueueSourceArn")
            .map(String::as_str),
        Some("arn:aws:sqs:us-east-1:000000000000:src")
    );
    let sources = service
        .list_dead_letter_source_queues("dlq", None, None)
        .await
        .expect("sources");
    assert_eq!(sources.queue_names, vec!["src"]);
}

#[tokio::test]
async fn redrive_policies_are_checked() {
    let (_dir, service) = service().await;
    create(&service, "q", &[]).await;
    let missing =
        r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:nope","maxReceiveCount":2}"#;
    let err = service
        .set_queue_attributes("q", attrs(&[("RedrivePolicy", missing)]))
        .await;
    assert!(
        matches!(err, Err(QueueError::InvalidParameterValue(ref m)) if m.contains("Dead letter target does not exist"))
    );
    create(&service, "dlq.fifo", &[("FifoQueue", "true")]).await;
    let fifo = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq.fifo","maxReceiveCount":2}"#;
    assert!(
        service
            .set_queue_attributes("q", attrs(&[("RedrivePolicy", fifo)]))
            .await
            .is_err()
    );
    create(
        &service,
        "closed",
        &[("RedriveAllowPolicy", r#"{"redrivePermission":"denyAll"}"#)],
    )
    .await;
    let closed = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:closed","maxReceiveCount":2}"#;
    assert!(
        service
            .set_queue_attributes("q", attrs(&[("RedrivePolicy", closed)]))
            .await
            .is_err()
    );
    // A queue cannot be its own dead-letter queue (its messages would never be delivered).
    let itself =
        r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:q","maxReceiveCount":1}"#;
    let err = service
        .set_queue_attributes("q", attrs(&[("RedrivePolicy", itself)]))
        .await;
    assert!(
        matches!(err, Err(QueueError::InvalidParameterValue(ref m)) if m.contains("its own")),
        "{err:?}"
    );
}

/// A dead-letter queue deleted after its source named it: messages past maxReceiveCount are
/// delivered as without a redrive policy, not left in front of the queue where every receive
/// found them again (found by review: a long poll then spun and returned nothing).
#[tokio::test]
async fn a_deleted_dead_letter_queue_takes_nothing_and_blocks_nothing() {
    let (_dir, service) = service().await;
    create(&service, "d1", &[]).await;
    let policy =
        r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:d1","maxReceiveCount":1}"#;
    create(&service, "src", &[("RedrivePolicy", policy)]).await;
    service
        .send_message(send("src", "poison"))
        .await
        .expect("send");
    let mut first = receive("src", 1);
    first.visibility_timeout = Some(0);
    assert_eq!(
        service
            .receive_message(first)
            .await
            .expect("receive")
            .messages
            .len(),
        1
    );
    service.delete_queue("d1").await.expect("delete dlq");
    for i in 0..3 {
        service
            .send_message(send("src", &format!("good{i}")))
            .await
            .expect("send");
    }
    let mut r = receive("src", 10);
    r.wait_time_seconds = Some(2);
    let bodies: Vec<String> = service
        .receive_message(r)
        .await
        .expect("receive")
        .messages
        .into_iter()
        .map(|m| m.body)
        .collect();
    let mut sorted = bodies.clone();
    sorted.sort();
    assert_eq!(sorted, ["good0", "good1", "good2", "poison"], "{bodies:?}");
}

#[tokio::test]
async fn repeated_attribute_names_are_answered_once_and_trace_headers_are_bounded() {
    let (_dir, service) = service().await;
    create(&service, "q", &[]).await;
    let many = vec!["All".to_owned(); 10_000];
    let a = service
        .get_queue_attributes("q", &many)
        .await
        .expect("attributes");
    assert!(a.contains_key("QueueArn"));
    let mut big = send("q", "x");
    big.message_system_attributes.insert(
        "AWSTraceHeader".into(),
        MessageAttributeValue::string("R".repeat(1 << 20)),
    );
    assert!(matches!(
        service.send_message(big).await,
        Err(QueueError::InvalidParameterValue(_))
    ));
}

#[tokio::test]
async fn fifo_orders_groups_blocks_in_flight_groups_and_deduplicates() {
    let (_dir, service) = service().await;
    create(
        &service,
        "f.fifo",
        &[("FifoQueue", "true"), ("ContentBasedDeduplication", "true")],
    )
    .await;
    let fifo_send = |body: &str, group: &str| {
        let mut request = send("f.fifo", body);
        request.message_group_id = Some(group.into());
        request
    };
    let mut sequence_numbers = Vec::new();
    for (body, group) in [("a1", "a"), ("b1", "b"), ("a2", "a")] {
        let sent = service
            .send_message(fifo_send(body, group))
            .await
            .expect("send");
        sequence_numbers.push(sent.sequence_number.expect("a sequence number"));
    }
    assert!(sequence_numbers.windows(2).all(|w| w[0] < w[1]));
    let first = service
        .send_message(fifo_send("dup", "c"))
        .await
        .expect("send");
    let again = service
        .send_message(fifo_send("dup", "c"))
        .await
        .expect("send");
    assert_eq!(first.message_id, again.message_id);
    assert_eq!(
        count(&service, "f.fifo", "ApproximateNumberOfMessages").await,
        4
    );

    let missing_group = service.send_message(send("f.fifo", "x")).await;
    assert!(matches!(
        missing_group,
        Err(QueueError::MissingParameter("MessageGroupId"))
    ));
    let mut delayed = fifo_send("x", "a");
    delayed.delay_seconds = Some(1);
    assert!(service.send_message(delayed).await.is_err());

    let one = service
        .receive_message(receive("f.fifo", 1))
        .await
        .expect("receive")
        .messages;
    assert_eq!(one[0].body, "a1");
    // Group a is in flight: the next receive skips a2 and takes the other groups.
    let rest = service
        .receive_message(receive("f.fifo", 10))
        .await
        .expect("receive")
        .messages;
    let bodies: Vec<&str> = rest.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, vec!["b1", "dup"]);
    service
        .delete_message("f.fifo", &one[0].receipt_handle)
        .await
        .expect("delete");
    let next = service
        .receive_message(receive("f.fifo", 10))
        .await
        .expect("receive")
        .messages;
    assert_eq!(
        next.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        vec!["a2"]
    );
    assert_eq!(
        next[0].attributes.get("MessageGroupId").map(String::as_str),
        Some("a")
    );
    // An old handle on FIFO is expired.
    let stale = service
        .delete_message("f.fifo", &one[0].receipt_handle)
        .await;
    assert!(
        stale.is_ok(),
        "the message is gone, so deleting it again succeeds"
    );
}

#[tokio::test]
async fn receive_request_attempt_id_returns_the_same_messages() {
    let (_dir, service) = service().await;
    create(&service, "f.fifo", &[("FifoQueue", "true")]).await;
    for i in 0..3 {
        let mut request = send("f.fifo", &format!("m{i}"));
        request.message_group_id = Some(format!("g{i}"));
        request.message_deduplication_id = Some(format!("d{i}"));
        service.send_message(request).await.expect("send");
    }
    let mut attempt = receive("f.fifo", 2);
    attempt.receive_request_attempt_id = Some("try-1".into());
    let first = service
        .receive_message(attempt.clone())
        .await
        .expect("receive")
        .messages;
    let retry = service
        .receive_message(attempt)
        .await
        .expect("receive")
        .messages;
    assert_eq!(first.len(), 2);
    assert_eq!(
        first.iter().map(|m| &m.receipt_handle).collect::<Vec<_>>(),
        retry.iter().map(|m| &m.receipt_handle).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn purge_once_per_minute_and_tags() {
    let (_dir, service) = service().await;
    create(&service, "q", &[]).await;
    service.send_message(send("q", "m")).await.expect("send");
    service.purge_queue("q").await.expect("purge");
    assert_eq!(count(&service, "q", "ApproximateNumberOfMessages").await, 0);
    assert!(matches!(
        service.purge_queue("q").await,
        Err(QueueError::PurgeQueueInProgress(_))
    ));
    service
        .tag_queue("q", attrs(&[("team", "core"), ("env", "dev")]))
        .await
        .expect("tag");
    service
        .untag_queue("q", &["env".into()])
        .await
        .expect("untag");
    assert_eq!(
        service.list_queue_tags("q").await.expect("tags"),
        attrs(&[("team", "core")])
    );
    service.delete_queue("q").await.expect("delete");
    assert!(matches!(
        service.get_queue_url("q").await,
        Err(QueueError::QueueDoesNotExist)
    ));
}

#[tokio::test]
async fn state_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let handle;
    {
        let service = QueueService::open(dir.path(), REGION, ACCOUNT)
            .await
            .expect("open");
        create(&service, "q", &[]).await;
        for body in ["keep", "gone"] {
            service.send_message(send("q", body)).await.expect("send");
        }
        let got = service
            .receive_message(receive("q", 10))
            .await
            .expect("receive")
            .messages;
        let gone = got
            .iter()
            .find(|m| m.body == "gone")
            .expect("gone received");
        service
            .delete_message("q", &gone.receipt_handle)
            .await
            .expect("delete");
        handle = got
            .iter()
            .find(|m| m.body == "keep")
            .expect("keep")
            .receipt_handle
            .clone();
    }
    // redb allows one open database per file; give the writer thread time to drop it.
    let service = loop_open(dir.path()).await;
    assert_eq!(
        count(&service, "q", "ApproximateNumberOfMessagesNotVisible").await,
        1
    );
    // The receipt key is durable too: the handle from before the restart still deletes.
    service
        .delete_message("q", &handle)
        .await
        .expect("delete after reopen");
    assert_eq!(
        count(&service, "q", "ApproximateNumberOfMessagesNotVisible").await,
        0
    );
}

async fn loop_open(path: &std::path::Path) -> QueueService {
    for _ in 0..100 {
        if let Ok(service) = QueueService::open(path, REGION, ACCOUNT).await {
            return service;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("could not reopen the queue store");
}
