//! SQS on the AWS endpoint, driven by boto3 (JSON 1.0 protocol; botocore checks every MD5 it
//! is given) and the JavaScript SDKs (v2 on the query protocol and on JSON, v3): the stack's
//! queues exist on
//! `up` with their redrive policy, messages with attributes go round trip, batches report
//! per-entry failures, errors carry AWS's codes (the legacy one through `x-amzn-query-error`),
//! policies are enforced, and a message received too often ends in the dead-letter queue.

use std::process::Command;

use spillway_testkit::{aws_client_env, up_in_process};

const ADMIN: (&str, &str) = (
    "AKIASPILLWAYADMIN001",
    "YWRtaW4tc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj",
);
const SENDER: (&str, &str) = (
    "AKIASPILLWAYSENDER01",
    "c2VuZGVyLXNlY3JldC1rZXktMDEyMzQ1Njc4OWFi",
);

const STACK: &str = r#"
[stack]
endpoint = "127.0.0.1:0"
account = "123456789012"

[users.admin]
access_key_id = "AKIASPILLWAYADMIN001"
secret_access_key = "YWRtaW4tc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj"
policies = [{ allow = ["sqs:*"], resources = ["*"] }]

[users.sender]
access_key_id = "AKIASPILLWAYSENDER01"
secret_access_key = "c2VuZGVyLXNlY3JldC1rZXktMDEyMzQ1Njc4OWFi"
policies = [{ allow = ["sqs:SendMessage", "sqs:GetQueueUrl"], resources = ["arn:aws:sqs:us-east-1:123456789012:jobs"] }]

[queues.jobs]
visibility_timeout = "30s"
dead_letter = { queue = "jobs-dlq", max_receive_count = 2 }

[queues.jobs-dlq]
"#;

/// The stack `text` started in a directory of its own; (the directory, the stack, the AWS
/// endpoint's URL).
async fn up(text: &str) -> (tempfile::TempDir, spillway_supervisor::Running, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("spillway.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let endpoint = format!(
        "http://{}",
        running.http_addr().unwrap_or_else(|| panic!("no endpoint"))
    );
    (dir, running, endpoint)
}

/// Runs a boto3 script with `key` against `endpoint`; returns stdout.
fn boto3(endpoint: &str, key: (&str, &str), body: &str) -> String {
    let script = format!(
        "import boto3, json, sys\n\
         from botocore.exceptions import ClientError\n\
         sqs = boto3.client('sqs', endpoint_url=sys.argv[1])\n\
         def code(f, **kw):\n\
         \x20   try:\n\
         \x20       f(**kw)\n\
         \x20       return 'ok'\n\
         \x20   except ClientError as e:\n\
         \x20       return e.response['Error']['Code']\n\
         {body}"
    );
    spillway_testkit::run_python(endpoint, key, &script)
}

#[tokio::test(flavor = "multi_thread")]
async fn boto3_sends_receives_and_deletes_with_every_check_sqs_clients_make() {
    let (_dir, running, endpoint) = up(STACK).await;
    let out = boto3(
        &endpoint,
        ADMIN,
        r#"
url = sqs.get_queue_url(QueueName='jobs')['QueueUrl']
print('url', url.endswith('/123456789012/jobs'))
attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['All'])['Attributes']
print('redrive', json.loads(attrs['RedrivePolicy'])['maxReceiveCount'], attrs['QueueArn'])
sent = sqs.send_message(QueueUrl=url, MessageBody='hello <&> world', MessageAttributes={
    'n': {'DataType': 'Number', 'StringValue': '42'},
    'b': {'DataType': 'Binary', 'BinaryValue': b'\x00\x01\xff'},
    's': {'DataType': 'String.custom', 'StringValue': 'é'},
})
print('sent', 'MD5OfMessageAttributes' in sent)
got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=['All'], AttributeNames=['All'], WaitTimeSeconds=1)['Messages']
m = got[0]
print('body', m['Body'], m['MessageAttributes']['b']['BinaryValue'] == b'\x00\x01\xff', m['Attributes']['ApproximateReceiveCount'])
print('delete', code(sqs.delete_message, QueueUrl=url, ReceiptHandle=m['ReceiptHandle']))
print('empty', 'Messages' not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0))
r = sqs.send_message_batch(QueueUrl=url, Entries=[{'Id': 'a', 'MessageBody': 'one'}, {'Id': 'b', 'MessageBody': 'two\ufffe'}])
print('batch', [e['Id'] for e in r['Successful']], [(e['Id'], e['Code']) for e in r.get('Failed', [])])
print('dup', code(sqs.send_message_batch, QueueUrl=url, Entries=[{'Id': 'a', 'MessageBody': 'x'}, {'Id': 'a', 'MessageBody': 'y'}]))
print('missing', code(sqs.get_queue_url, QueueName='nope'))
print('forged', code(sqs.delete_message, QueueUrl=url, ReceiptHandle='not-a-handle'))
print('create', code(sqs.create_queue, QueueName='jobs', Attributes={'VisibilityTimeout': '5'}))
q2 = sqs.create_queue(QueueName='made.fifo', Attributes={'FifoQueue': 'true', 'ContentBasedDeduplication': 'true'})['QueueUrl']
s1 = sqs.send_message(QueueUrl=q2, MessageBody='x', MessageGroupId='g')
s2 = sqs.send_message(QueueUrl=q2, MessageBody='x', MessageGroupId='g')
print('fifo', s1['MessageId'] == s2['MessageId'], 'SequenceNumber' in s1)
print('list', sorted(u.rsplit('/', 1)[1] for u in sqs.list_queues()['QueueUrls']))
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "url True",
            "redrive 2 arn:aws:sqs:us-east-1:123456789012:jobs",
            "sent True",
            "body hello <&> world True 1",
            "delete ok",
            "empty True",
            "batch ['a'] [('b', 'InvalidMessageContents')]",
            "dup AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
            "missing AWS.SimpleQueueService.NonExistentQueue",
            "forged ReceiptHandleIsInvalid",
            "create QueueAlreadyExists",
            "fifo True True",
            "list ['jobs', 'jobs-dlq', 'made.fifo']",
        ],
        "{out}"
    );
    // The sender may send to jobs and nothing else.
    let out = boto3(
        &endpoint,
        SENDER,
        r#"
url = sqs.get_queue_url(QueueName='jobs')['QueueUrl']
print(code(sqs.send_message, QueueUrl=url, MessageBody='m'))
print(code(sqs.receive_message, QueueUrl=url))
print(code(sqs.send_message, QueueUrl=url.replace('/jobs', '/jobs-dlq'), MessageBody='m'))
"#,
    );
    assert_eq!(out, "ok\nAccessDenied\nAccessDenied\n");
    running.shutdown().await;
}

/// A message whose consumer never deletes it is received max_receive_count times, then moves to
/// the dead-letter queue with its body, attributes and original send time.
#[tokio::test(flavor = "multi_thread")]
async fn a_message_received_too_often_ends_in_the_dead_letter_queue() {
    let (_dir, running, endpoint) = up(STACK).await;
    let out = boto3(
        &endpoint,
        ADMIN,
        r#"
url = sqs.get_queue_url(QueueName='jobs')['QueueUrl']
dlq = sqs.get_queue_url(QueueName='jobs-dlq')['QueueUrl']
sqs.send_message(QueueUrl=url, MessageBody='poison', MessageAttributes={'k': {'DataType': 'String', 'StringValue': 'v'}})
sent_at = None
for i in range(2):
    m = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=2, AttributeNames=['All'])['Messages'][0]
    sent_at = m['Attributes']['SentTimestamp']
print('source', 'Messages' not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1))
d = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=2, AttributeNames=['All'], MessageAttributeNames=['All'])['Messages'][0]
print('dlq', d['Body'], d['MessageAttributes']['k']['StringValue'], d['Attributes']['SentTimestamp'] == sent_at)
print('sources', [u.rsplit('/', 1)[1] for u in sqs.list_dead_letter_source_queues(QueueUrl=dlq)['queueUrls']])
"#,
    );
    assert_eq!(out, "source True\ndlq poison v True\nsources ['jobs']\n");
    running.shutdown().await;
}

/// The query protocol (aws-sdk v2 for JavaScript at its last query-protocol SQS model, which
/// checks the MD5s of bodies and attributes itself), and JSON 1.0 from the newest aws-sdk v2
/// (Content-Type unsigned) and @aws-sdk/client-sqs v3, against the same queue.
#[tokio::test(flavor = "multi_thread")]
async fn both_javascript_sdks_speak_to_the_queue() {
    let (_dir, running, endpoint) = up(STACK).await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = aws_client_env(
        Command::new("node")
            .arg(root.join("tests/node/sqs_clients.js"))
            .args([endpoint.as_str(), "jobs"])
            .env("NODE_PATH", root.join("tests/node/node_modules"))
            .env("AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE", "1"),
        ADMIN.0,
        ADMIN.1,
    )
    .output()
    .unwrap_or_else(|e| panic!("node: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(
        v,
        serde_json::json!({
            "v2url": true,
            "v2sent": true,
            "v2body": "from v2 & <query>",
            "v2bin": "000102ff",
            "v2count": "1",
            "v2missing": "AWS.SimpleQueueService.NonExistentQueue",
            "v2json": [true, "v2 json"],
            "v3bodies": ["a", "b"],
            "v3deleted": 2,
            "v3failed": ["forged:ReceiptHandleIsInvalid"],
            "v3missing": "QueueDoesNotExist",
        })
    );
    running.shutdown().await;
}

/// Report 001's spike: 1,000 POSTs at once to an HTTP API route with the SQS-SendMessage
/// integration are all answered 200 at once and all wait in the queue, body intact.
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_posts_through_the_gateway_lands_whole_in_the_queue() {
    let api_port = spillway_testkit::free_port();
    let stack = format!(
        "{STACK}\n[apis.ingest]\nprotocol = \"http\"\nlisten = \"127.0.0.1:{api_port}\"\n\
         [[apis.ingest.routes]]\nroute = \"POST /submit\"\nqueue = \"jobs\"\n\
         parameters = {{ MessageBody = \"$request.body\" }}\n"
    );
    let (_dir, running, endpoint) = up(&stack).await;
    let script = format!(
        "import json, urllib.request, concurrent.futures\n\
         def post(i):\n\
         \x20   req = urllib.request.Request('http://127.0.0.1:{api_port}/submit', data=json.dumps({{'n': i}}).encode(), method='POST')\n\
         \x20   with urllib.request.urlopen(req, timeout=30) as r:\n\
         \x20       return r.status, json.loads(r.read())\n\
         with concurrent.futures.ThreadPoolExecutor(50) as ex:\n\
         \x20   results = list(ex.map(post, range(1000)))\n\
         print(sorted(set(s for s, _ in results)), len(set(b['MessageId'] for _, b in results)))\n"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "[200] 1000\n");
    // The queue's CloudWatch-named metrics follow.
    let addr = running.http_addr().unwrap_or_else(|| panic!("no endpoint"));
    let metrics = spillway_testkit::http_get(addr, "/_spillway/metrics").await;
    for line in [
        "spillway_sqs_NumberOfMessagesSent{queue=\"jobs\"} 1000",
        "spillway_sqs_ApproximateNumberOfMessagesVisible{queue=\"jobs\"} 1000",
        "spillway_sqs_ApproximateNumberOfMessagesVisible{queue=\"jobs-dlq\"} 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in:\n{metrics}"
        );
    }
    let out = boto3(
        &endpoint,
        ADMIN,
        r#"
url = sqs.get_queue_url(QueueName='jobs')['QueueUrl']
print(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['ApproximateNumberOfMessages'])['Attributes']['ApproximateNumberOfMessages'])
seen = set()
for _ in range(200):
    r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    ms = r.get('Messages', [])
    if not ms:
        break
    for m in ms:
        seen.add(json.loads(m['Body'])['n'])
    sqs.delete_message_batch(QueueUrl=url, Entries=[{'Id': str(i), 'ReceiptHandle': m['ReceiptHandle']} for i, m in enumerate(ms)])
print(len(seen), min(seen), max(seen))
"#,
    );
    assert_eq!(out, "1000\n1000 0 999\n");
    let metrics = spillway_testkit::http_get(addr, "/_spillway/metrics").await;
    for line in [
        "spillway_sqs_NumberOfMessagesDeleted{queue=\"jobs\"} 1000",
        "spillway_sqs_ApproximateNumberOfMessagesVisible{queue=\"jobs\"} 0",
        "spillway_sqs_NumberOfEmptyReceives{queue=\"jobs\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in:\n{metrics}"
        );
    }
    running.shutdown().await;
}

/// A request signed with `x-amz-content-sha256: UNSIGNED-PAYLOAD` (S3's, which spillway does
/// not serve) leaves the body outside the signature; with the query protocol the body holds
/// the Action. Found by review: a ListQueues signature, its body swapped, created a queue.
#[tokio::test(flavor = "multi_thread")]
async fn an_unsigned_payload_cannot_carry_another_action() {
    let (_dir, running, endpoint) = up(STACK).await;
    let out = boto3(
        &endpoint,
        ADMIN,
        r#"
import urllib.request, urllib.error
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
class Unsigned(SigV4Auth):
    def payload(self, request):
        return 'UNSIGNED-PAYLOAD'
creds = botocore.session.get_session().get_credentials()
req = AWSRequest(method='POST', url=sys.argv[1] + '/', data='Action=ListQueues',
                 headers={'Content-Type': 'application/x-www-form-urlencoded', 'X-Amz-Content-SHA256': 'UNSIGNED-PAYLOAD'})
Unsigned(creds, 'sqs', 'us-east-1').add_auth(req)
headers = {k: v for k, v in req.prepare().headers.items() if k.lower() != 'content-length'}
tampered = urllib.request.Request(sys.argv[1] + '/', data=b'Action=CreateQueue&QueueName=tampered', headers=headers, method='POST')
try:
    urllib.request.urlopen(tampered)
    print('accepted')
except urllib.error.HTTPError as e:
    print('refused', e.code)
print('tampered exists', code(sqs.get_queue_url, QueueName='tampered'))
"#,
    );
    assert_eq!(
        out,
        "refused 400\ntampered exists AWS.SimpleQueueService.NonExistentQueue\n"
    );
    running.shutdown().await;
}
