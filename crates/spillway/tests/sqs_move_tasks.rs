//! Dead-letter queue redrive (StartMessageMoveTask, ListMessageMoveTasks,
//! CancelMessageMoveTask) through boto3 (JSON 1.0) and aws-sdk v2 on the query protocol: the
//! errors AWS documents, messages going back to the queue they were dead-lettered from as new
//! messages with their body and attributes, only the messages present at the start moving, a
//! slow task cancelled part way, one active task per source, and the permissions a redrive
//! needs. Also CreateQueue of a name deleted less than 60 s ago (QueueDeletedRecently) in both
//! protocols.

use std::process::Command;

use spillway_testkit::{aws_client_env, up_in_process};

const ADMIN: (&str, &str) = (
    "AKIASPILLWAYADMIN001",
    "YWRtaW4tc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj",
);
const STARTER: (&str, &str) = (
    "AKIASPILLWAYSTARTER1",
    "c3RhcnRlci1zZWNyZXQta2V5LTAxMjM0NTY3ODlh",
);

const STACK: &str = r#"
[stack]
endpoint = "127.0.0.1:0"
account = "123456789012"

[users.admin]
access_key_id = "AKIASPILLWAYADMIN001"
secret_access_key = "YWRtaW4tc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj"
policies = [{ allow = ["sqs:*"], resources = ["*"] }]

# May run a redrive out of jobs-dlq and send into other, but not into jobs, where the messages
# go back to by default.
[users.starter]
access_key_id = "AKIASPILLWAYSTARTER1"
secret_access_key = "c3RhcnRlci1zZWNyZXQta2V5LTAxMjM0NTY3ODlh"
policies = [{ allow = ["sqs:StartMessageMoveTask", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], resources = ["arn:aws:sqs:us-east-1:123456789012:jobs-dlq"] },
            { allow = ["sqs:SendMessage"], resources = ["arn:aws:sqs:us-east-1:123456789012:other"] }]

[queues.jobs]
visibility_timeout = "30s"
dead_letter = { queue = "jobs-dlq", max_receive_count = 1 }

[queues.jobs-dlq]

[queues.other]

[queues.plain]
"#;

async fn up() -> (tempfile::TempDir, spillway_supervisor::Running, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("spillway.toml"), STACK).unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let endpoint = format!(
        "http://{}",
        running.http_addr().unwrap_or_else(|| panic!("no endpoint"))
    );
    (dir, running, endpoint)
}

/// Runs a boto3 script with `key` against `endpoint`; returns stdout. The script has `sqs`,
/// `code(f, **kw)` (the error code, or 'ok'), `wait_for(arn, status)` (polls
/// ListMessageMoveTasks until the newest task has `status`, at most 30 s) and the ARNs
/// `DLQ`, `JOBS`, `OTHER`, `PLAIN`.
fn boto3(endpoint: &str, key: (&str, &str), body: &str) -> String {
    let script = format!(
        "import boto3, json, sys, time\n\
         from botocore.exceptions import ClientError\n\
         sqs = boto3.client('sqs', endpoint_url=sys.argv[1])\n\
         ARN = 'arn:aws:sqs:us-east-1:123456789012:'\n\
         DLQ, JOBS, OTHER, PLAIN = ARN + 'jobs-dlq', ARN + 'jobs', ARN + 'other', ARN + 'plain'\n\
         def code(f, **kw):\n\
         \x20   try:\n\
         \x20       f(**kw)\n\
         \x20       return 'ok'\n\
         \x20   except ClientError as e:\n\
         \x20       return e.response['Error']['Code']\n\
         def wait_for(arn, status):\n\
         \x20   for _ in range(300):\n\
         \x20       t = sqs.list_message_move_tasks(SourceArn=arn)['Results'][0]\n\
         \x20       if t['Status'] == status:\n\
         \x20           return t\n\
         \x20       time.sleep(0.1)\n\
         \x20   raise Exception('task never reached ' + status + ': ' + json.dumps(t))\n\
         def url(name):\n\
         \x20   return sqs.get_queue_url(QueueName=name)['QueueUrl']\n\
         {body}"
    );
    spillway_testkit::run_python(endpoint, key, &script)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redrive_sends_dead_letters_back_where_they_came_from() {
    let (_dir, running, endpoint) = up().await;
    let out = boto3(
        &endpoint,
        ADMIN,
        r#"
jobs, dlq = url('jobs'), url('jobs-dlq')
print('not a dlq', code(sqs.start_message_move_task, SourceArn=PLAIN))
print('no source', code(sqs.start_message_move_task, SourceArn=ARN + 'nope'))
print('no destination', code(sqs.start_message_move_task, SourceArn=DLQ, DestinationArn=ARN + 'nope'))
print('rate', code(sqs.start_message_move_task, SourceArn=DLQ, MaxNumberOfMessagesPerSecond=501))
print('max results', code(sqs.list_message_move_tasks, SourceArn=DLQ, MaxResults=11))
print('bad handle', code(sqs.cancel_message_move_task, TaskHandle='foobared'))
print('none yet', sqs.list_message_move_tasks(SourceArn=DLQ)['Results'])
sent = {}
for i in range(3):
    r = sqs.send_message(QueueUrl=jobs, MessageBody='m%d' % i, MessageAttributes={'i': {'DataType': 'Number', 'StringValue': str(i)}})
    sent['m%d' % i] = r['MessageId']
# maxReceiveCount 1: the first receive delivers, the next one moves the message to the DLQ.
for _ in range(2):
    for _ in range(3):
        sqs.receive_message(QueueUrl=jobs, VisibilityTimeout=0, MaxNumberOfMessages=10)
print('in dlq', sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=['ApproximateNumberOfMessages'])['Attributes'])
# Slow enough that the late message is sent while the task runs; it was not there at the
# start, so it stays (had it been moved, the task would fail: it has no source queue).
handle = sqs.start_message_move_task(SourceArn=DLQ, MaxNumberOfMessagesPerSecond=2)['TaskHandle']
sqs.send_message(QueueUrl=dlq, MessageBody='late')
print('handle', json.loads(__import__('base64').b64decode(handle))['sourceArn'] == DLQ)
t = sqs.list_message_move_tasks(SourceArn=DLQ)['Results'][0]
print('running', t['Status'], t['TaskHandle'] == handle, t['ApproximateNumberOfMessagesToMove'], t['MaxNumberOfMessagesPerSecond'], 'DestinationArn' in t)
print('one at a time', code(sqs.start_message_move_task, SourceArn=DLQ))
t = wait_for(DLQ, 'COMPLETED')
print('completed', t['ApproximateNumberOfMessagesMoved'], 'TaskHandle' in t, 'FailureReason' in t)
back = []
for _ in range(5):
    for m in sqs.receive_message(QueueUrl=jobs, MaxNumberOfMessages=10, AttributeNames=['All'], MessageAttributeNames=['All']).get('Messages', []):
        back.append((m['Body'], m['MessageAttributes']['i']['StringValue'], m['MessageId'] != sent[m['Body']], m['Attributes']['ApproximateReceiveCount'], 'DeadLetterQueueSourceArn' in m['Attributes']))
    if len(back) == 3:
        break
print('back', sorted(back))
left = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)['Messages']
print('left', [m['Body'] for m in left])
print('cancel done', code(sqs.cancel_message_move_task, TaskHandle=handle))
sqs.delete_queue(QueueUrl=url('plain'))
print('recreate', code(sqs.create_queue, QueueName='plain'))
"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "not a dlq InvalidParameterValue",
            "no source ResourceNotFoundException",
            "no destination ResourceNotFoundException",
            "rate InvalidParameterValue",
            "max results InvalidParameterValue",
            "bad handle InvalidParameterValue",
            "none yet []",
            "in dlq {'ApproximateNumberOfMessages': '3'}",
            "handle True",
            "running RUNNING True 3 2 False",
            "one at a time InvalidParameterValue",
            "completed 3 False False",
            "back [('m0', '0', True, '1', False), ('m1', '1', True, '1', False), ('m2', '2', True, '1', False)]",
            "left ['late']",
            "cancel done AWS.SimpleQueueService.UnsupportedOperation",
            "recreate AWS.SimpleQueueService.QueueDeletedRecently",
        ],
        "{out}"
    );
    running.shutdown().await;
}

/// A task at 1 message a second over 20 messages is cancelled at once: it ends CANCELLED with
/// what it moved (in DestinationArn) and the rest still in the dead-letter queue; the history
/// lists the newest task first; the query protocol's client reads every answer.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_task_is_cancelled_part_way_and_the_query_protocol_sees_it() {
    let (_dir, running, endpoint) = up().await;
    let out = boto3(
        &endpoint,
        ADMIN,
        r#"
dlq, other = url('jobs-dlq'), url('other')
for b in range(2):
    sqs.send_message_batch(QueueUrl=dlq, Entries=[{'Id': str(i), 'MessageBody': 'b%d-%d' % (b, i)} for i in range(10)])
handle = sqs.start_message_move_task(SourceArn=DLQ, DestinationArn=OTHER, MaxNumberOfMessagesPerSecond=1)['TaskHandle']
moved = sqs.cancel_message_move_task(TaskHandle=handle)['ApproximateNumberOfMessagesMoved']
t = wait_for(DLQ, 'CANCELLED')
n = t['ApproximateNumberOfMessagesMoved']
count = lambda u: int(sqs.get_queue_attributes(QueueUrl=u, AttributeNames=['ApproximateNumberOfMessages'])['Attributes']['ApproximateNumberOfMessages'])
print('cancelled', n >= moved, n < 20, t['DestinationArn'] == OTHER, count(other) == n, count(dlq) == 20 - n)
h2 = sqs.start_message_move_task(SourceArn=DLQ, DestinationArn=OTHER)['TaskHandle']
wait_for(DLQ, 'COMPLETED')
print('history', [r['Status'] for r in sqs.list_message_move_tasks(SourceArn=DLQ, MaxResults=10)['Results']])
print('all moved', count(other), count(dlq))
# For the query client below: enough that a task at 1 a second is still running when it looks.
sqs.send_message_batch(QueueUrl=dlq, Entries=[{'Id': str(i), 'MessageBody': 'q%d' % i} for i in range(5)])
"#,
    );
    assert_eq!(
        out,
        "cancelled True True True True True\nhistory ['COMPLETED', 'CANCELLED']\nall moved 20 0\n",
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let node = aws_client_env(
        Command::new("node")
            .arg(root.join("tests/node/sqs_query_move_tasks.js"))
            .args([
                endpoint.as_str(),
                "arn:aws:sqs:us-east-1:123456789012:jobs-dlq",
                "arn:aws:sqs:us-east-1:123456789012:other",
            ])
            .env("NODE_PATH", root.join("tests/node/node_modules"))
            .env("AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE", "1"),
        ADMIN.0,
        ADMIN.1,
    )
    .output()
    .unwrap_or_else(|e| panic!("node: {e}"));
    assert!(
        node.status.success(),
        "{}",
        String::from_utf8_lossy(&node.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&node.stdout).unwrap_or_else(|e| panic!("{e}: {node:?}"));
    assert_eq!(
        v,
        serde_json::json!({
            "handle": true,
            "listed": ["RUNNING", true, 1, "number"],
            "again": "InvalidParameterValue",
            "cancelMoved": "number",
            "badHandle": "InvalidParameterValue",
            "missing": "ResourceNotFoundException",
            "recreate": "AWS.SimpleQueueService.QueueDeletedRecently",
        })
    );
    running.shutdown().await;
}

/// Starting a redrive needs SendMessage on where the messages go: without a DestinationArn,
/// the queues that dead-letter into the source. Listing needs its own permission.
#[tokio::test(flavor = "multi_thread")]
async fn a_redrive_needs_send_permission_on_its_destinations() {
    let (_dir, running, endpoint) = up().await;
    let out = boto3(
        &endpoint,
        STARTER,
        r#"
print(code(sqs.start_message_move_task, SourceArn=DLQ))
print(code(sqs.start_message_move_task, SourceArn=DLQ, DestinationArn=OTHER))
print(code(sqs.list_message_move_tasks, SourceArn=DLQ))
"#,
    );
    assert_eq!(out, "AccessDenied\nok\nAccessDenied\n");
    running.shutdown().await;
}
