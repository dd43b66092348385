//! The aws CLI against the queue, as a shell script would drive it: every call through the
//! CLI's own argument parsing and output, MD5s checked by botocore on send and receive, and
//! AWS's error codes on stderr with a failing exit status.

use std::process::Command;

use spillway_testkit::{aws_client_env, require_tool, up_in_process};

const ADMIN: (&str, &str) = (
    "AKIASPILLWAYADMIN001",
    "YWRtaW4tc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj",
);

const STACK: &str = r#"
[stack]
endpoint = "127.0.0.1:0"
account = "123456789012"

[users.admin]
access_key_id = "AKIASPILLWAYADMIN001"
secret_access_key = "YWRtaW4tc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj"
policies = [{ allow = ["sqs:*"], resources = ["*"] }]
"#;

struct Cli {
    endpoint: String,
}

impl Cli {
    /// `aws sqs ARGS --output json`: (success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let mut cmd = Command::new(require_tool("aws", "awscli"));
        aws_client_env(&mut cmd, ADMIN.0, ADMIN.1)
            // Not AWS_ENDPOINT_URL: CLI v1 sends SQS to its legacy global endpoint
            // (queue.amazonaws.com) whatever that variable says.
            .args(["--endpoint-url", &self.endpoint])
            .arg("sqs")
            .args(args)
            .args(["--output", "json"]);
        let out = cmd.output().unwrap_or_else(|e| panic!("aws: {e}"));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A call that must succeed; its JSON answer (null when it printed nothing).
    fn ok(&self, args: &[&str]) -> serde_json::Value {
        let (ok, out, err) = self.run(args);
        assert!(ok, "aws sqs {args:?} failed: {err}");
        if out.trim().is_empty() {
            return serde_json::Value::Null;
        }
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("aws sqs {args:?}: {e}: {out}"))
    }

    /// A call that must fail; its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(!ok, "aws sqs {args:?} succeeded: {out}");
        err
    }
}

fn text<'a>(value: &'a serde_json::Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("no {pointer} in {value}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_aws_cli_drives_a_queue_through_its_life() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("spillway.toml"), STACK).unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let addr = running.http_addr().unwrap_or_else(|| panic!("no endpoint"));
    let cli = Cli {
        endpoint: format!("http://{addr}"),
    };

    let created = cli.ok(&[
        "create-queue",
        "--queue-name",
        "cli-jobs",
        "--attributes",
        "VisibilityTimeout=5,DelaySeconds=0",
    ]);
    let url = text(&created, "/QueueUrl").to_owned();
    assert_eq!(url, format!("http://{addr}/123456789012/cli-jobs"));
    // The same attributes again: the same queue; others: QueueAlreadyExists.
    assert_eq!(
        cli.ok(&[
            "create-queue",
            "--queue-name",
            "cli-jobs",
            "--attributes",
            "VisibilityTimeout=5"
        ]),
        created
    );
    let err = cli.fails(&[
        "create-queue",
        "--queue-name",
        "cli-jobs",
        "--attributes",
        "VisibilityTimeout=6",
    ]);
    assert!(err.contains("QueueAlreadyExists"), "{err}");

    let sent = cli.ok(&[
        "send-message",
        "--queue-url",
        &url,
        "--message-body",
        "hello from the CLI",
        "--message-attributes",
        r#"{"k":{"DataType":"String","StringValue":"v"},"n":{"DataType":"Number","StringValue":"42"}}"#,
    ]);
    // md5("hello from the CLI") by Python's hashlib; botocore has also checked both digests
    // before printing.
    assert_eq!(
        text(&sent, "/MD5OfMessageBody"),
        "59da6b08ceb7b6dcb24f80ac24fb822e"
    );
    assert!(sent.pointer("/MD5OfMessageAttributes").is_some(), "{sent}");

    let batch = cli.ok(&[
        "send-message-batch",
        "--queue-url",
        &url,
        "--entries",
        r#"[{"Id":"a","MessageBody":"one"},{"Id":"b","MessageBody":"two","DelaySeconds":900}]"#,
    ]);
    assert_eq!(
        batch["Successful"].as_array().map(Vec::len),
        Some(2),
        "{batch}"
    );
    let err = cli.fails(&[
        "send-message-batch",
        "--queue-url",
        &url,
        "--entries",
        r#"[{"Id":"a","MessageBody":"one"},{"Id":"a","MessageBody":"two"}]"#,
    ]);
    assert!(err.contains("BatchEntryIdsNotDistinct"), "{err}");

    let attrs = cli.ok(&[
        "get-queue-attributes",
        "--queue-url",
        &url,
        "--attribute-names",
        "All",
    ]);
    assert_eq!(text(&attrs, "/Attributes/ApproximateNumberOfMessages"), "2");
    assert_eq!(
        text(&attrs, "/Attributes/ApproximateNumberOfMessagesDelayed"),
        "1"
    );
    assert_eq!(text(&attrs, "/Attributes/VisibilityTimeout"), "5");
    assert_eq!(
        text(&attrs, "/Attributes/QueueArn"),
        "arn:aws:sqs:us-east-1:123456789012:cli-jobs"
    );

    // Both visible messages in one receive (they may come in either order).
    let mut bodies = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..5 {
        let got = cli.ok(&[
            "receive-message",
            "--queue-url",
            &url,
            "--max-number-of-messages",
            "10",
            "--wait-time-seconds",
            "1",
            "--attribute-names",
            "All",
            "--message-attribute-names",
            "All",
        ]);
        for m in got["Messages"].as_array().into_iter().flatten() {
            bodies.push(text(m, "/Body").to_owned());
            handles.push(text(m, "/ReceiptHandle").to_owned());
            if text(m, "/Body") == "hello from the CLI" {
                assert_eq!(text(m, "/MessageAttributes/n/StringValue"), "42");
                assert_eq!(text(m, "/Attributes/ApproximateReceiveCount"), "1");
                // An IAM user's unique id, as AWS gives it (not the access key).
                let sender = text(m, "/Attributes/SenderId");
                assert!(sender.starts_with("AIDA") && sender.len() == 21, "{sender}");
            }
        }
        if bodies.len() >= 2 {
            break;
        }
    }
    bodies.sort();
    assert_eq!(bodies, ["hello from the CLI", "one"]);

    // Back to visible at once, received again, then deleted for good.
    cli.ok(&[
        "change-message-visibility",
        "--queue-url",
        &url,
        "--receipt-handle",
        &handles[0],
        "--visibility-timeout",
        "0",
    ]);
    let again = cli.ok(&[
        "receive-message",
        "--queue-url",
        &url,
        "--wait-time-seconds",
        "2",
        "--attribute-names",
        "ApproximateReceiveCount",
    ]);
    assert_eq!(
        text(&again, "/Messages/0/Attributes/ApproximateReceiveCount"),
        "2"
    );
    cli.ok(&[
        "delete-message",
        "--queue-url",
        &url,
        "--receipt-handle",
        text(&again, "/Messages/0/ReceiptHandle"),
    ]);
    cli.ok(&[
        "delete-message",
        "--queue-url",
        &url,
        "--receipt-handle",
        &handles[1],
    ]);
    let err = cli.fails(&[
        "delete-message",
        "--queue-url",
        &url,
        "--receipt-handle",
        "never-issued",
    ]);
    assert!(err.contains("ReceiptHandleIsInvalid"), "{err}");

    let listed = cli.ok(&["list-queues", "--queue-name-prefix", "cli-"]);
    assert_eq!(listed["QueueUrls"], serde_json::json!([url]));
    cli.ok(&["tag-queue", "--queue-url", &url, "--tags", "team=data"]);
    let tags = cli.ok(&["list-queue-tags", "--queue-url", &url]);
    assert_eq!(text(&tags, "/Tags/team"), "data");

    cli.ok(&["purge-queue", "--queue-url", &url]);
    let err = cli.fails(&["purge-queue", "--queue-url", &url]);
    assert!(err.contains("PurgeQueueInProgress"), "{err}");

    cli.ok(&["delete-queue", "--queue-url", &url]);
    let err = cli.fails(&["get-queue-url", "--queue-name", "cli-jobs"]);
    assert!(
        err.contains("AWS.SimpleQueueService.NonExistentQueue")
            || err.contains("QueueDoesNotExist"),
        "{err}"
    );
    running.shutdown().await;
}
