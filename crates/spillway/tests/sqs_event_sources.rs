//! Event source mappings: a queue drained in batches by a Python function (boto3 inside, as
//! Lambda handlers use it), successes deleted, `batchItemFailures` retried alone, and a batch
//! whose function throws left for the visibility timeout, receives and finally the
//! dead-letter queue.

use std::process::Command;

use spillway_testkit::{aws_client_env, up_in_process};

const ADMIN: (&str, &str) = (
    "AKIASPILLWAYADMIN001",
    "YWRtaW4tc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj",
);

fn stack(functions: &std::path::Path) -> String {
    format!(
        r#"
[stack]
endpoint = "127.0.0.1:0"
account = "123456789012"

[users.admin]
access_key_id = "{key}"
secret_access_key = "{secret}"
policies = [{{ allow = ["sqs:*"], resources = ["*"] }}]

[queues.jobs]
visibility_timeout = "2s"
dead_letter = {{ queue = "jobs-dlq", max_receive_count = 2 }}

[queues.jobs-dlq]

[queues.done]

[functions.worker]
runtime = "python"
code = "{f}/python-sqs-worker"
handler = "app.handler"
timeout = "20s"
reserved_concurrency = 2
events = [{{ queue = "jobs", batch_size = 5, maximum_batching_window = "1s", report_batch_item_failures = true }}]
policies = [{{ allow = ["sqs:GetQueueUrl", "sqs:SendMessage"], resources = ["${{queues.done.arn}}"] }}]
"#,
        key = ADMIN.0,
        secret = ADMIN.1,
        f = functions.display(),
    )
}

fn boto3(endpoint: &str, body: &str) -> String {
    let script = format!(
        "import boto3, json, sys, time\n\
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
    let out = aws_client_env(
        Command::new("python3").args(["-c", &script, endpoint]),
        ADMIN.0,
        ADMIN.1,
    )
    .output()
    .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        out.status.success(),
        "boto3 script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_drains_through_its_function_with_partial_failures_and_a_dead_letter_queue() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let functions = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/functions");
    std::fs::write(dir.path().join("spillway.toml"), stack(&functions))
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
print('event', {(s['source'], s['arn']) for s in seen})
sqs.send_message(QueueUrl=jobs, MessageBody='poison')
print('dlq', drain(dlq, 1))
print('jobs empty', 'Messages' not in sqs.receive_message(QueueUrl=jobs, WaitTimeSeconds=3))
"#,
    );
    assert_eq!(
        out,
        "ok 10 True\n\
         partial [('partial-0', '2'), ('partial-1', '2')]\n\
         event {('aws:sqs', 'arn:aws:sqs:us-east-1:123456789012:jobs')}\n\
         dlq ['poison']\n\
         jobs empty True\n"
    );
    running.shutdown().await;
}
