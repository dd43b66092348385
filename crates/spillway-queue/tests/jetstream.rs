//! The JetStream engine against the real NATS server (`SPILLWAY_NATS_URL`, else
//! `nats://127.0.0.1:4222`; `scripts/lib/system.sh`'s `ensure_nats` starts one). Every test
//! has a namespace of its own and removes it at the end; two services over one namespace are
//! two spillway nodes sharing queues.

// In a test, a failed expectation is the failure report.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use spillway_queue::jetstream::{JetStreamOptions, remove_namespace};
use spillway_queue::*;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "000000000000";

fn url() -> String {
    std::env::var("SPILLWAY_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A namespace of its own, removed when dropped (also when the test fails).
struct Namespace(String);

impl Namespace {
    fn new() -> Self {
        Namespace(format!("t{:016x}", rand::random::<u64>()))
    }

    async fn node(&self) -> QueueService {
        QueueService::open_jetstream(
            JetStreamOptions {
                url: url(),
                namespace: self.0.clone(),
            },
            REGION,
            ACCOUNT,
        )
        .await
        .expect("connect to NATS (is nats-server -js running? scripts/lib/system.sh ensure_nats)")
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let ns = self.0.clone();
        // Drop runs inside the test's runtime: clean up on a thread of its own.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(remove_namespace(&url(), &ns));
            }
        })
        .join();
    }
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

fn receive(queue: &str, max: u32, wait: u32) -> ReceiveMessageRequest {
    ReceiveMessageRequest {
        queue_name: queue.into(),
        max_number_of_messages: Some(max),
        wait_time_seconds: Some(wait),
        message_system_attribute_names: vec!["All".into()],
        message_attribute_names: vec!["All".into()],
        ..Default::default()
    }
}

async fn count(service: &QueueService, queue: &str, name: &str) -> u64 {
    service
        .get_queue_attributes(queue, &[name.to_string()])
        .await
        .expect("attributes")
        .get(name)
        .and_then(|v| v.parse().ok())
        .expect("a count")
}

#[tokio::test]
async fn two_nodes_share_a_queue_visibility_and_deletes() {
    let ns = Namespace::new();
    let (a, b) = (ns.node().await, ns.node().await);
    create(&a, "shared", &[("VisibilityTimeout", "1")]).await;
    // The same queue from the other node: idempotent with equal attributes, refused otherwise.
    create(&b, "shared", &[("VisibilityTimeout", "1")]).await;
    let differs = b
        .create_queue(CreateQueueRequest {
            queue_name: "shared".into(),
            attributes: attrs(&[("VisibilityTimeout", "2")]),
            tags: BTreeMap::new(),
        })
        .await;
    assert!(matches!(differs, Err(QueueError::QueueAlreadyExists(_))));

    let mut request = send("shared", "hello from A");
    request
        .message_attributes
        .insert("kind".into(), MessageAttributeValue::string("greeting"));
    let sent = a.send_message(request).await.expect("send");
    assert_eq!(sent.md5_of_message_body, md5::md5_of_body("hello from A"));

    let got = b
        .receive_message(receive("shared", 10, 5))
        .await
        .expect("receive");
    assert_eq!(got.messages.len(), 1);
    let first = &got.messages[0];
    assert_eq!(first.message_id, sent.message_id);
    assert_eq!(first.body, "hello from A");
    assert_eq!(
        first.md5_of_message_attributes,
        sent.md5_of_message_attributes
    );
    assert_eq!(
        first.message_attributes["kind"].string_value.as_deref(),
        Some("greeting")
    );
    assert_eq!(first.attributes["ApproximateReceiveCount"], "1");
    assert_eq!(first.attributes["SenderId"], "AIDATEST");
    let first_receive = first.attributes["ApproximateFirstReceiveTimestamp"].clone();
    assert!(
        first.attributes["SentTimestamp"]
            .parse::<u64>()
            .expect("ms")
            > 0
    );

    // In flight on B: A sees nothing, and both count it as not visible.
    let none = a
        .receive_message(receive("shared", 10, 0))
        .await
        .expect("receive");
    assert!(none.messages.is_empty());
    for node in [&a, &b] {
        assert_eq!(
            count(node, "shared", "ApproximateNumberOfMessagesNotVisible").await,
            1
        );
        assert_eq!(
            count(node, "shared", "ApproximateNumberOfMessages").await,
            0
        );
    }

    // After the visibility timeout A receives it again, counted and dated from the first.
    let again = a
        .receive_message(receive("shared", 10, 5))
        .await
        .expect("receive");
    assert_eq!(again.messages.len(), 1);
    let second = &again.messages[0];
    assert_eq!(second.message_id, sent.message_id);
    assert_eq!(second.attributes["ApproximateReceiveCount"], "2");
    assert_eq!(
        second.attributes["ApproximateFirstReceiveTimestamp"],
        first_receive
    );

    // B deletes with the handle A was given; it is gone for both.
    b.delete_message("shared", &second.receipt_handle)
        .await
        .expect("delete");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for node in [&a, &b] {
        let none = node
            .receive_message(receive("shared", 10, 0))
            .await
            .expect("receive");
        assert!(none.messages.is_empty(), "a deleted message came back");
        assert_eq!(
            count(node, "shared", "ApproximateNumberOfMessagesNotVisible").await,
            0
        );
        assert_eq!(
            count(node, "shared", "ApproximateNumberOfMessages").await,
            0
        );
    }
}

#[tokio::test]
async fn a_long_poll_on_one_node_wakes_for_a_send_on_the_other() {
    let ns = Namespace::new();
    let (a, b) = (ns.node().await, ns.node().await);
    create(&a, "poll", &[]).await;
    let waiting = tokio::spawn(async move { b.receive_message(receive("poll", 1, 20)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.send_message(send("poll", "wake up")).await.expect("send");
    let got = waiting.await.expect("join").expect("receive");
    assert_eq!(got.messages.len(), 1);
    assert_eq!(got.messages[0].body, "wake up");
}

#[tokio::test]
async fn a_message_never_deleted_ends_in_the_dead_letter_queue_intact() {
    let ns = Namespace::new();
    let (a, b) = (ns.node().await, ns.node().await);
    create(&a, "dlq", &[]).await;
    let dlq_arn = a.queue_arn("dlq");
    let policy = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"2"}}"#);
    create(
        &a,
        "work",
        &[("VisibilityTimeout", "1"), ("RedrivePolicy", &policy)],
    )
    .await;
    let mut request = send("work", "poison");
    request
        .message_attributes
        .insert("n".into(), MessageAttributeValue::string("7"));
    let sent = a.send_message(request).await.expect("send");

    let mut sent_at = None;
    for node in [&a, &b] {
        let got = node
            .receive_message(receive("work", 1, 5))
            .await
            .expect("receive");
        assert_eq!(got.messages.len(), 1, "received within maxReceiveCount");
        sent_at = Some(got.messages[0].attributes["SentTimestamp"].clone());
    }
    // The third receive finds it past maxReceiveCount: moved, not delivered.
    let third = a
        .receive_message(receive("work", 1, 3))
        .await
        .expect("receive");
    assert!(third.messages.is_empty());
    let moved = b
        .receive_message(receive("dlq", 1, 5))
        .await
        .expect("receive");
    assert_eq!(moved.messages.len(), 1);
    let m = &moved.messages[0];
    assert_eq!(m.message_id, sent.message_id);
    assert_eq!(m.body, "poison");
    assert_eq!(m.message_attributes["n"].string_value.as_deref(), Some("7"));
    assert_eq!(m.md5_of_message_attributes, sent.md5_of_message_attributes);
    assert_eq!(Some(m.attributes["SentTimestamp"].clone()), sent_at);
    assert_eq!(
        m.attributes["DeadLetterQueueSourceArn"],
        a.queue_arn("work")
    );
    assert_eq!(m.attributes["ApproximateReceiveCount"], "1");
    assert_eq!(count(&a, "work", "ApproximateNumberOfMessages").await, 0);
    assert_eq!(
        count(&a, "work", "ApproximateNumberOfMessagesNotVisible").await,
        0
    );
    let sources = b
        .list_dead_letter_source_queues("dlq", None, None)
        .await
        .expect("sources");
    assert_eq!(sources.queue_names, vec!["work".to_string()]);
}

#[tokio::test]
async fn a_delayed_message_waits_and_its_early_deliveries_are_not_receives() {
    let ns = Namespace::new();
    let a = ns.node().await;
    create(&a, "later", &[]).await;
    let mut request = send("later", "not yet");
    request.delay_seconds = Some(2);
    a.send_message(request).await.expect("send");
    let now = a
        .receive_message(receive("later", 1, 0))
        .await
        .expect("receive");
    assert!(
        now.messages.is_empty(),
        "a delayed message was delivered early"
    );
    let later = a
        .receive_message(receive("later", 1, 10))
        .await
        .expect("receive");
    assert_eq!(later.messages.len(), 1);
    assert_eq!(later.messages[0].attributes["ApproximateReceiveCount"], "1");
}

#[tokio::test]
async fn visibility_per_receive_and_change_message_visibility_across_nodes() {
    let ns = Namespace::new();
    let (a, b) = (ns.node().await, ns.node().await);
    create(&a, "vis", &[("VisibilityTimeout", "600")]).await;
    a.send_message(send("vis", "m")).await.expect("send");
    // A receive's own (shorter) timeout wins over the queue's.
    let mut short = receive("vis", 1, 0);
    short.visibility_timeout = Some(1);
    let got = a.receive_message(short).await.expect("receive");
    assert_eq!(got.messages.len(), 1);
    let back = b
        .receive_message(receive("vis", 1, 5))
        .await
        .expect("receive");
    assert_eq!(back.messages.len(), 1, "the receive's 1 s timeout ended");
    // B's delivery now has the queue's 600 s; A makes it visible again with B's handle.
    a.change_message_visibility("vis", &back.messages[0].receipt_handle, 0)
        .await
        .expect("change visibility");
    let third = a
        .receive_message(receive("vis", 1, 5))
        .await
        .expect("receive");
    assert_eq!(third.messages.len(), 1);
    assert_eq!(third.messages[0].attributes["ApproximateReceiveCount"], "3");
    let too_long = a
        .change_message_visibility("vis", &third.messages[0].receipt_handle, 43_201)
        .await;
    assert!(matches!(
        too_long,
        Err(QueueError::InvalidParameterValue(_))
    ));
}

#[tokio::test]
async fn handles_never_issued_or_for_another_queue_are_invalid() {
    let ns = Namespace::new();
    let (a, b) = (ns.node().await, ns.node().await);
    create(&a, "one", &[]).await;
    create(&a, "two", &[]).await;
    a.send_message(send("one", "m")).await.expect("send");
    let got = b
        .receive_message(receive("one", 1, 5))
        .await
        .expect("receive");
    let handle = &got.messages[0].receipt_handle;
    for (queue, handle) in [("two", handle.as_str()), ("one", "forged"), ("one", "")] {
        let refused = a.delete_message(queue, handle).await;
        assert!(
            matches!(refused, Err(QueueError::ReceiptHandleIsInvalid(_))),
            "{queue} {handle}: {refused:?}"
        );
    }
    // A handle sealed by another namespace's key is not this one's either.
    let other = Namespace::new();
    let c = other.node().await;
    create(&c, "one", &[]).await;
    let refused = c.delete_message("one", handle).await;
    assert!(matches!(
        refused,
        Err(QueueError::ReceiptHandleIsInvalid(_))
    ));
}

#[tokio::test]
async fn fifo_queues_are_refused_with_an_sqs_error() {
    let ns = Namespace::new();
    let a = ns.node().await;
    let refused = a
        .create_queue(CreateQueueRequest {
            queue_name: "q.fifo".into(),
            attributes: attrs(&[("FifoQueue", "true")]),
            tags: BTreeMap::new(),
        })
        .await;
    let error = refused.expect_err("a FIFO queue on JetStream");
    assert_eq!(error.code(), "UnsupportedOperation");
    assert_eq!(error.http_status(), 400);
}

#[tokio::test]
async fn attributes_tags_purge_and_delete_are_seen_by_every_node() {
    let ns = Namespace::new();
    let (a, b) = (ns.node().await, ns.node().await);
    create(&a, "admin", &[]).await;
    b.set_queue_attributes("admin", attrs(&[("VisibilityTimeout", "45")]))
        .await
        .expect("set");
    b.tag_queue("admin", attrs(&[("team", "queues")]))
        .await
        .expect("tag");
    let seen = a
        .get_queue_attributes("admin", &["VisibilityTimeout".into()])
        .await
        .expect("get");
    // The watch brings B's change to A's cache; bounded wait for it.
    let mut visible = seen["VisibilityTimeout"].clone();
    for _ in 0..50 {
        if visible == "45" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        visible = a
            .get_queue_attributes("admin", &["VisibilityTimeout".into()])
            .await
            .expect("get")["VisibilityTimeout"]
            .clone();
    }
    assert_eq!(visible, "45");
    assert_eq!(
        a.list_queue_tags("admin").await.expect("tags")["team"],
        "queues"
    );

    for i in 0..3 {
        a.send_message(send("admin", &format!("m{i}")))
            .await
            .expect("send");
    }
    assert_eq!(count(&b, "admin", "ApproximateNumberOfMessages").await, 3);
    b.purge_queue("admin").await.expect("purge");
    assert!(matches!(
        a.purge_queue("admin").await,
        Err(QueueError::PurgeQueueInProgress(_))
    ));
    assert_eq!(count(&a, "admin", "ApproximateNumberOfMessages").await, 0);

    let listed = a
        .list_queues(ListQueuesRequest::default())
        .await
        .expect("list");
    assert_eq!(listed.queue_names, vec!["admin".to_string()]);
    b.delete_queue("admin").await.expect("delete");
    let mut gone = false;
    for _ in 0..50 {
        if matches!(
            a.get_queue_url("admin").await,
            Err(QueueError::QueueDoesNotExist)
        ) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "A still serves a queue B deleted");
}

/// A queue's policy holds on a node that has never met the queue (made by another node): an
/// explicit Deny must not wait for the node's copy of the records.
#[tokio::test]
async fn a_queue_policy_is_seen_by_a_node_that_never_used_the_queue() {
    let ns = Namespace::new();
    let a = ns.node().await;
    let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:guarded");
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Principal":"*","Action":"sqs:DeleteQueue","Resource":"{arn}"}}]}}"#
    );
    create(&a, "guarded", &[("Policy", policy.as_str())]).await;
    let b = ns.node().await;
    assert!(
        b.resource_policy(&arn).await.is_some(),
        "node B judged the queue without its policy"
    );
    assert!(b.resource_policy(&format!("{arn}-none")).await.is_none());
}

/// Deleted messages leave the NATS server (work-queue retention), not only the consumer.
#[tokio::test]
async fn deleted_messages_leave_the_stream() {
    let ns = Namespace::new();
    let node = ns.node().await;
    create(&node, "gone", &[]).await;
    for i in 0..3 {
        node.send_message(send("gone", &format!("m{i}")))
            .await
            .expect("send");
    }
    let got = node
        .receive_message(receive("gone", 10, 1))
        .await
        .expect("receive");
    assert_eq!(got.messages.len(), 3);
    for m in &got.messages {
        node.delete_message("gone", &m.receipt_handle)
            .await
            .expect("delete");
    }
    let client = async_nats::connect(url()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let prefix = format!("{}_sqs_", ns.0);
    let mut names = js.stream_names();
    let mut stored = Vec::new();
    while let Some(Ok(name)) = futures_util::StreamExt::next(&mut names).await {
        if name.starts_with(&prefix) {
            let mut stream = js.get_stream(&name).await.expect("stream");
            stored.push(stream.info().await.expect("info").state.messages);
        }
    }
    assert_eq!(stored, [0], "messages kept after their delete");
}

/// Deleting a message already deleted succeeds at once, as SQS answers it (the server may not
/// answer an ack for a message no longer pending).
#[tokio::test]
async fn a_second_delete_of_a_message_succeeds() {
    let ns = Namespace::new();
    let node = ns.node().await;
    create(&node, "twice", &[]).await;
    node.send_message(send("twice", "m")).await.expect("send");
    let got = node
        .receive_message(receive("twice", 1, 1))
        .await
        .expect("receive");
    let handle = &got.messages[0].receipt_handle;
    node.delete_message("twice", handle).await.expect("delete");
    let again = tokio::time::timeout(Duration::from_secs(5), node.delete_message("twice", handle))
        .await
        .expect("the second delete answered within 5 s");
    assert!(again.is_ok(), "{again:?}");
}

/// A QueueUrl naming something no queue can be called (NATS wildcards, dots) is an unknown
/// queue, not a server failure.
#[tokio::test]
async fn a_name_no_queue_can_have_is_an_unknown_queue() {
    let ns = Namespace::new();
    let node = ns.node().await;
    for name in ["*", ">", "a..b", "a.b"] {
        let err = node
            .send_message(send(name, "m"))
            .await
            .expect_err("no such queue");
        assert_eq!(err.code(), "QueueDoesNotExist", "{name}: {err:?}");
    }
}
