//! Two real `spillway up` processes (stack directories of their own, one NATS server and
//! namespace) sharing queues through the JetStream backend, driven by boto3: what one node
//! sends the other receives; a message in flight on one is invisible on the other and comes
//! back there after its visibility timeout; either deletes with the other's handle; a message
//! never deleted ends in the dead-letter queue with its attributes; both count alike; and a
//! `kill -9` of one node loses nothing it acknowledged.

mod common;

use std::process::Command;
use std::time::Duration;

use common::binary;
use nix::sys::signal::Signal;
use spillway_testkit::{Spillway, aws_client_env, free_port, unique};

const KEY: (&str, &str) = (
    "AKIASPILLWAYADMIN001",
    "YWRtaW4tc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj",
);

fn nats_url() -> String {
    std::env::var("SPILLWAY_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn stack(port: u16, namespace: &str) -> String {
    format!(
        r#"
[stack]
endpoint = "127.0.0.1:{port}"
account = "123456789012"
queue_backend = "{url}"
queue_namespace = "{namespace}"

[users.admin]
access_key_id = "{id}"
secret_access_key = "{secret}"
policies = [{{ allow = ["sqs:*"], resources = ["*"] }}]

[queues.work]
visibility_timeout = "2s"
dead_letter = {{ queue = "work-dlq", max_receive_count = 2 }}

[queues.work-dlq]
"#,
        url = nats_url(),
        id = KEY.0,
        secret = KEY.1,
    )
}

/// A node: its directory, process and endpoint URL.
struct Node {
    _dir: tempfile::TempDir,
    process: Spillway,
    endpoint: String,
}

fn start(namespace: &str) -> Node {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let port = free_port();
    std::fs::write(dir.path().join("spillway.toml"), stack(port, namespace))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut process = Spillway::start(&binary(), &["up", "."], dir.path());
    process.wait_for("spillway is up", Duration::from_secs(120));
    Node {
        _dir: dir,
        process,
        endpoint: format!("http://127.0.0.1:{port}"),
    }
}

/// Runs a boto3 script against a node with `args` as `sys.argv[2:]`; returns stdout's lines.
fn boto3(node: &Node, body: &str, args: &[&str]) -> Vec<String> {
    let script = format!(
        "import boto3, json, sys\n\
         sqs = boto3.client('sqs', endpoint_url=sys.argv[1])\n\
         work = sqs.get_queue_url(QueueName='work')['QueueUrl']\n\
         dlq = sqs.get_queue_url(QueueName='work-dlq')['QueueUrl']\n\
         def recv(url, wait):\n\
         \x20   return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait, AttributeNames=['All'], MessageAttributeNames=['All']).get('Messages', [])\n\
         def counts(url):\n\
         \x20   a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'])['Attributes']\n\
         \x20   return a['ApproximateNumberOfMessages'] + '/' + a['ApproximateNumberOfMessagesNotVisible']\n\
         {body}"
    );
    let out = aws_client_env(
        Command::new("python3")
            .args(["-c", &script, &node.endpoint])
            .args(args),
        KEY.0,
        KEY.1,
    )
    .output()
    .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        out.status.success(),
        "boto3 script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Removes the namespace's streams and buckets, also when the test fails.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let ns = self.0.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(spillway_queue::jetstream::remove_namespace(
                    &nats_url(),
                    &ns,
                ));
            }
        })
        .join();
    }
}

#[test]
fn two_spillway_processes_share_one_queue_through_jetstream() {
    let namespace = unique("e2e");
    let _cleanup = Cleanup(namespace.clone());
    let a = start(&namespace);
    let mut b = start(&namespace);

    // Send via A, receive via B with everything the message carried.
    let sent = boto3(
        &a,
        "r = sqs.send_message(QueueUrl=work, MessageBody='from A', MessageAttributes={'n': {'DataType': 'Number', 'StringValue': '42'}, 'b': {'DataType': 'Binary', 'BinaryValue': b'\\x00\\xff'}})\n\
         print(r['MessageId'])",
        &[],
    );
    let id = sent[0].clone();
    let got = boto3(
        &b,
        "m = recv(work, 10)\n\
         print(len(m), m[0]['MessageId'], m[0]['Body'], m[0]['MessageAttributes']['n']['StringValue'], m[0]['MessageAttributes']['b']['BinaryValue'] == b'\\x00\\xff', m[0]['Attributes']['ApproximateReceiveCount'])\n\
         print(m[0]['Attributes']['SentTimestamp'])\n\
         print(counts(work))",
        &[],
    );
    assert_eq!(got[0], format!("1 {id} from A 42 True 1"), "{got:?}");
    let sent_at = got[1].clone();
    assert_eq!(got[2], "0/1", "B counts it in flight");

    // In flight on B: A does not get it and counts it alike; after the 2 s visibility
    // timeout A gets it again, its second receive.
    let on_a = boto3(
        &a,
        "print(len(recv(work, 0)), counts(work))\n\
         m = recv(work, 10)\n\
         print(len(m), m[0]['MessageId'], m[0]['Attributes']['ApproximateReceiveCount'])",
        &[],
    );
    assert_eq!(on_a[0], "0 0/1", "{on_a:?}");
    assert_eq!(on_a[1], format!("1 {id} 2"), "{on_a:?}");

    // Never deleted: past maxReceiveCount (2) the next receive moves it to the dead-letter
    // queue, where it keeps its id, body, attributes and send time.
    let moved = boto3(
        &b,
        "print(len(recv(work, 5)))\n\
         m = recv(dlq, 10)\n\
         print(len(m), m[0]['MessageId'], m[0]['Body'], m[0]['MessageAttributes']['n']['StringValue'], m[0]['Attributes']['SentTimestamp'], m[0]['Attributes']['DeadLetterQueueSourceArn'])\n\
         sqs.delete_message(QueueUrl=dlq, ReceiptHandle=m[0]['ReceiptHandle'])",
        &[],
    );
    assert_eq!(moved[0], "0", "{moved:?}");
    assert_eq!(
        moved[1],
        format!("1 {id} from A 42 {sent_at} arn:aws:sqs:us-east-1:123456789012:work"),
        "{moved:?}"
    );

    // Delete through either node: A receives, B deletes with A's handle.
    let handle = boto3(
        &a,
        "sqs.send_message(QueueUrl=work, MessageBody='delete me')\n\
         m = recv(work, 5)\n\
         print(m[0]['ReceiptHandle'])",
        &[],
    );
    let deleted = boto3(
        &b,
        "sqs.delete_message(QueueUrl=work, ReceiptHandle=sys.argv[2])\n\
         print(counts(work), counts(dlq))",
        &[&handle[0]],
    );
    assert_eq!(deleted[0], "0/0 0/0", "{deleted:?}");
    // Past the visibility timeout it has not come back on A.
    std::thread::sleep(Duration::from_millis(2500));
    let after = boto3(&a, "print(len(recv(work, 0)), counts(work))", &[]);
    assert_eq!(after[0], "0 0/0", "{after:?}");

    // kill -9 of A right after it acknowledged 30 sends and while it holds one in flight:
    // B receives every one of them (the held one after its visibility timeout).
    let acked = boto3(
        &a,
        "ids = []\n\
         for i in range(3):\n\
         \x20   r = sqs.send_message_batch(QueueUrl=work, Entries=[{'Id': str(j), 'MessageBody': f'burst {i} {j}'} for j in range(10)])\n\
         \x20   ids += [e['MessageId'] for e in r['Successful']]\n\
         held = recv(work, 0)\n\
         print(' '.join(ids))\n\
         print(len(held))",
        &[],
    );
    a.process.signal(Signal::SIGKILL);
    let mut acked_ids: Vec<String> = acked[0].split(' ').map(str::to_owned).collect();
    assert_eq!(acked_ids.len(), 30);
    assert!(acked[1].parse::<u32>().is_ok_and(|n| n >= 1), "{acked:?}");
    let drained = boto3(
        &b,
        "seen = set()\n\
         for _ in range(40):\n\
         \x20   for m in recv(work, 3):\n\
         \x20       seen.add(m['MessageId'])\n\
         \x20       sqs.delete_message(QueueUrl=work, ReceiptHandle=m['ReceiptHandle'])\n\
         \x20   if len(seen) >= int(sys.argv[2]) and counts(work) == '0/0':\n\
         \x20       break\n\
         print(' '.join(sorted(seen)))\n\
         print(counts(work))",
        &["30"],
    );
    let mut drained_ids: Vec<String> = drained[0].split(' ').map(str::to_owned).collect();
    acked_ids.sort();
    drained_ids.sort();
    assert_eq!(drained_ids, acked_ids, "every acknowledged send, no other");
    assert_eq!(drained[1], "0/0");
    b.process.signal(Signal::SIGTERM);
    b.process.wait_exit(Duration::from_secs(30));
}
