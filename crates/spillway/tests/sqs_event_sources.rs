//! Event source mappings: a queue drained in batches by a function — Python with boto3 inside,
//! Rust with `aws_lambda_events`' `SqsEvent`/`SqsBatchResponse` and aws-sdk-sqs, Node.js with
//! `@aws-sdk/client-sqs` — successes deleted, `batchItemFailures` retried alone, and a batch
//! whose function throws left for the visibility timeout, receives and finally the
//! dead-letter queue. The three workers share one contract (see each one's header), so one
//! scenario checks them all.

use spillway_testkit::up_in_process;

const ADMIN: (&str, &str) = (
    "AKIASPILLWAYADMIN001",
    "YWRtaW4tc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj",
);

/// The worker's `[functions.worker]` lines other than its events and policies.
fn python_worker(functions: &std::path::Path) -> String {
    format!(
        "runtime = \"python\"\ncode = \"{}/python-sqs-worker\"\nhandler = \"app.handler\"",
        functions.display()
    )
}

fn rust_worker(functions: &std::path::Path) -> String {
    format!(
        "runtime = \"provided\"\ncode = \"{}/rust-sqs-worker\"",
        functions.display()
    )
}

fn node_worker(functions: &std::path::Path) -> String {
    let node_modules = functions.join("../node/node_modules");
    format!(
        "runtime = \"nodejs\"\ncode = \"{}/node-sqs-worker\"\nhandler = \"index.handler\"\n\
         environment = {{ NODE_PATH = \"{}\" }}",
        functions.display(),
        node_modules.display()
    )
}

fn stack(worker: &str) -> String {
    format!(
        r#"
[stack]
endpoint = "127.0.0.1:0"
account = "123456789012"

[users.admin]
access_key_id = "{key}"
secret_access_key = "{secret}"
policies = [{{ allow = ["sqs:*", "lambda:InvokeFunction"], resources = ["*"] }}]

# Long enough for a cold Python start with boto3 on a loaded 2-core machine, and for the third
# batch, throttled (reserved concurrency 2) and retried with a backoff that grows to 5 s, to get
# an instance: a batch still held or in its function when the timeout ends is received again,
# and "processed once" fails (6 s failed 2 runs of 6 on a slow day).
[queues.jobs]
visibility_timeout = "10s"
dead_letter = {{ queue = "jobs-dlq", max_receive_count = 2 }}

[queues.jobs-dlq]

[queues.done]

[queues.failed]

[functions.worker]
{worker}
timeout = "20s"
reserved_concurrency = 2
on_failure = "failed"
maximum_retry_attempts = 0
events = [{{ queue = "jobs", batch_size = 5, maximum_batching_window = "1s", report_batch_item_failures = true }}]
policies = [{{ allow = ["sqs:GetQueueUrl", "sqs:SendMessage"], resources = ["${{queues.done.arn}}"] }}]
"#,
        key = ADMIN.0,
        secret = ADMIN.1,
    )
}

fn boto3(endpoint: &str, body: &str) -> String {
    let script = format!(
        "import boto3, hashlib, json, sys, time\n\
         sqs = boto3.client('sqs', endpoint_url=sys.argv[1])\n\
         jobs = sqs.get_queue_url(QueueName='jobs')['QueueUrl']\n\
         done = sqs.get_queue_url(QueueName='done')['QueueUrl']\n\
         dlq = sqs.get_queue_url(QueueName='jobs-dlq')['QueueUrl']\n\
         def drain(url, n, limit=60):\n\
         \x20   got, end = [], time.time() + limit\n\
         \x20   while len(got) < n and time.time() < end:\n\
         \x20       for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get('Messages', []):\n\
         \x20           got.append(m['Body'])\n\
         \x20           sqs.delete_message(QueueUrl=url, ReceiptHandle=m['ReceiptHandle'])\n\
         \x20   return got\n\
         {body}"
    );
    spillway_testkit::run_python(endpoint, ADMIN, &script)
}

/// Sends ten plain, two partial and one poison message through `worker` and checks where each
/// one ends, with what the function's event said of it.
async fn drains_with_partial_failures_and_a_dead_letter_queue(
    worker: fn(&std::path::Path) -> String,
) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let functions = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/functions");
    std::fs::write(dir.path().join("spillway.toml"), stack(&worker(&functions)))
        .unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let endpoint = format!(
        "http://{}",
        running.http_addr().unwrap_or_else(|| panic!("no endpoint"))
    );
    let out = boto3(
        &endpoint,
        r#"
for i in range(10):
    sqs.send_message(QueueUrl=jobs, MessageBody=f'ok-{i}', MessageAttributes={'k': {'DataType': 'String', 'StringValue': f'v{i}'}})
for i in range(2):
    sqs.send_message(QueueUrl=jobs, MessageBody=f'partial-{i}')
seen = [json.loads(b) for b in drain(done, 12)]
ok = sorted((s['body'], s['count'], s['attr']) for s in seen if s['body'].startswith('ok'))
print('ok', len(ok), all(c == '1' and a == 'v' + b[3:] for b, c, a in ok))
print('partial', sorted((s['body'], s['count']) for s in seen if s['body'].startswith('partial')))
print('event', {(s['source'], s['arn'], s['md5'] == hashlib.md5(s['body'].encode()).hexdigest()) for s in seen})
print('fields', {(s['region'], s['sent'].isdigit(), s['receipt']) for s in seen})
sqs.send_message(QueueUrl=jobs, MessageBody='poison')
print('dlq', drain(dlq, 1))
print('jobs empty', 'Messages' not in sqs.receive_message(QueueUrl=jobs, WaitTimeSeconds=3))
"#,
    );
    assert_eq!(
        out,
        "ok 10 True\n\
         partial [('partial-0', '2'), ('partial-1', '2')]\n\
         event {('aws:sqs', 'arn:aws:sqs:us-east-1:123456789012:jobs', True)}\n\
         fields {('us-east-1', True, True)}\n\
         dlq ['poison']\n\
         jobs empty True\n"
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_drains_through_a_python_function() {
    drains_with_partial_failures_and_a_dead_letter_queue(python_worker).await;
}

/// `aws_lambda_events::event::sqs::{SqsEvent, SqsBatchResponse}` and the aws-sdk-sqs crate.
#[tokio::test(flavor = "multi_thread")]
async fn a_queue_drains_through_a_rust_function() {
    drains_with_partial_failures_and_a_dead_letter_queue(rust_worker).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_drains_through_a_node_function() {
    drains_with_partial_failures_and_a_dead_letter_queue(node_worker).await;
}

/// An asynchronous invocation that fails goes to the function's on-failure queue as Lambda's
/// destination record; when that queue is gone, to `.spillway/functions/failures/` instead,
/// so nothing accepted is lost.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_asynchronous_invocation_lands_in_the_on_failure_queue() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let functions = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/functions");
    std::fs::write(
        dir.path().join("spillway.toml"),
        stack(&python_worker(&functions)),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let endpoint = format!(
        "http://{}",
        running.http_addr().unwrap_or_else(|| panic!("no endpoint"))
    );
    // The worker expects an SQS event: anything else raises, so every attempt fails.
    let out = boto3(
        &endpoint,
        r#"
lam = boto3.client('lambda', endpoint_url=sys.argv[1])
failed = sqs.get_queue_url(QueueName='failed')['QueueUrl']
print('status', lam.invoke(FunctionName='worker', InvocationType='Event', Payload=b'{"n": 1}')['StatusCode'])
record = json.loads(drain(failed, 1, 30)[0])
ctx = record['requestContext']
print('record', record['version'], ctx['condition'], ctx['approximateInvokeCount'], ctx['functionArn'])
print('payload', record['requestPayload'], record['responseContext']['functionError'], record['responsePayload']['errorType'])
sqs.delete_queue(QueueUrl=failed)
print('status', lam.invoke(FunctionName='worker', InvocationType='Event', Payload=b'{"n": 2}')['StatusCode'])
"#,
    );
    assert_eq!(
        out,
        "status 202\n\
         record 1.0 RetriesExhausted 1 arn:aws:lambda:us-east-1:123456789012:function:worker:$LATEST\n\
         payload {'n': 1} Unhandled KeyError\n\
         status 202\n"
    );
    let file = dir.path().join(".spillway/functions/failures/worker.jsonl");
    let landed = spillway_testkit::eventually(std::time::Duration::from_secs(30), || {
        std::fs::read_to_string(&file).is_ok_and(|t| t.contains(r#""requestPayload":{"n":2}"#))
    });
    assert!(landed, "the second record is not in {}", file.display());
    running.shutdown().await;
}
