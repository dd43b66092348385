//! `spillway queue list|peek|purge|redrive`: the real binary against a stack started in
//! process, with boto3 putting messages in and checking what the command left behind.

use std::process::{Command, Output};

use spillway_testkit::up_in_process;

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

[queues.jobs]
visibility_timeout = "30s"
dead_letter = { queue = "jobs-dlq", max_receive_count = 2 }

[queues.jobs-dlq]

[queues.plain]
"#;

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

/// `spillway queue ARGS --stack DIR`, run to the end.
fn spillway(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spillway"))
        .arg("queue")
        .args(args)
        .arg("--stack")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("spillway: {e}"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a boto3 script (with `sqs` and `url(name)`) as the admin user; returns stdout.
fn boto3(endpoint: &str, body: &str) -> String {
    let script = format!(
        "import boto3, json, sys\n\
         sqs = boto3.client('sqs', endpoint_url=sys.argv[1])\n\
         def url(name):\n\
         \x20   return sqs.get_queue_url(QueueName=name)['QueueUrl']\n\
         {body}"
    );
    spillway_testkit::run_python(endpoint, ADMIN, &script)
}

/// The list's JSON entry for `name`.
fn listed(dir: &std::path::Path, name: &str) -> serde_json::Value {
    let out = spillway(dir, &["list", "--json"]);
    assert!(out.status.success(), "list: {}", stderr(&out));
    let all: serde_json::Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    all.as_array()
        .and_then(|a| a.iter().find(|q| q["QueueName"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("{name} not listed: {all}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn list_counts_peek_leaves_messages_and_purge_empties() {
    let (dir, running, endpoint) = up(STACK).await;
    boto3(
        &endpoint,
        r#"
q = url('plain')
sqs.send_message(QueueUrl=q, MessageBody='taken')
sqs.receive_message(QueueUrl=q, VisibilityTimeout=600)['Messages'][0]
sqs.send_message(QueueUrl=q, MessageBody='first body')
sqs.send_message(QueueUrl=q, MessageBody='later', DelaySeconds=600)
"#,
    );

    // The table: a header, counts right-aligned under it, the DLQ named with its count.
    let table = spillway(dir.path(), &["list"]);
    assert!(table.status.success(), "list: {}", stderr(&table));
    let text = stdout(&table);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("QUEUE"), "{text}");
    let plain: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with("plain "))
        .unwrap_or_else(|| panic!("{text}"))
        .split_whitespace()
        .collect();
    assert_eq!(plain, ["plain", "1", "1", "1", "-"], "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("jobs ") && l.ends_with("jobs-dlq (after 2 receives)")),
        "{text}"
    );
    let jobs = listed(dir.path(), "jobs");
    assert_eq!(jobs["DeadLetterQueue"], "jobs-dlq");
    assert_eq!(jobs["MaxReceiveCount"], 2);

    // Peek shows the visible one and leaves it receivable; the peek counted as a receive.
    let peek = spillway(dir.path(), &["peek", "plain", "-n", "5"]);
    assert!(peek.status.success(), "peek: {}", stderr(&peek));
    let shown = stdout(&peek);
    assert!(shown.contains("  first body"), "{shown}");
    assert!(
        !shown.contains("taken") && !shown.contains("later"),
        "{shown}"
    );
    assert!(shown.contains("receives 1"), "{shown}");
    let after = boto3(
        &endpoint,
        r#"
m = sqs.receive_message(QueueUrl=url('plain'), AttributeNames=['ApproximateReceiveCount'])['Messages'][0]
print(m['Body'], m['Attributes']['ApproximateReceiveCount'])
"#,
    );
    assert_eq!(after.trim(), "first body 2");

    // A queue with a RedrivePolicy: refused without --force, shown with it.
    let refused = spillway(dir.path(), &["peek", "jobs"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("RedrivePolicy"),
        "{}",
        stderr(&refused)
    );
    let forced = spillway(dir.path(), &["peek", "jobs", "--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert!(stdout(&forced).contains("jobs: no visible messages"));

    // An unknown queue: AWS's code and message.
    let missing = spillway(dir.path(), &["peek", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).starts_with("error: QueueDoesNotExist: "),
        "{}",
        stderr(&missing)
    );

    // Purge empties every count; a second purge within 60 s is AWS's PurgeQueueInProgress.
    let purged = spillway(dir.path(), &["purge", "plain"]);
    assert!(purged.status.success(), "{}", stderr(&purged));
    let plain = listed(dir.path(), "plain");
    for count in [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ] {
        assert_eq!(plain[count], "0", "{count}: {plain}");
    }
    let again = spillway(dir.path(), &["purge", "plain"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).starts_with("error: PurgeQueueInProgress: "),
        "{}",
        stderr(&again)
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redrive_moves_a_dead_letter_queues_messages_back_with_progress() {
    let (dir, running, endpoint) = up(STACK).await;
    // Three messages received past maxReceiveCount (2): the third receive moves each one.
    let moved = boto3(
        &endpoint,
        r#"
q, dlq = url('jobs'), url('jobs-dlq')
for i in range(3):
    sqs.send_message(QueueUrl=q, MessageBody=f'm{i}')
for _ in range(30):
    sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10, VisibilityTimeout=0)
    n = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=['ApproximateNumberOfMessages'])['Attributes']['ApproximateNumberOfMessages']
    if n == '3':
        break
print(n)
"#,
    );
    assert_eq!(moved.trim(), "3");

    let redrive = spillway(dir.path(), &["redrive", "jobs-dlq"]);
    let out = stdout(&redrive);
    assert!(redrive.status.success(), "{out}{}", stderr(&redrive));
    assert!(
        out.starts_with("redriving jobs-dlq to its source queues\n"),
        "{out}"
    );
    assert!(out.ends_with("COMPLETED: moved 3 of 3\n"), "{out}");

    let back = boto3(
        &endpoint,
        r#"
bodies = []
for _ in range(10):
    for m in sqs.receive_message(QueueUrl=url('jobs'), MaxNumberOfMessages=10).get('Messages', []):
        bodies.append(m['Body'])
        sqs.delete_message(QueueUrl=url('jobs'), ReceiptHandle=m['ReceiptHandle'])
    if len(bodies) >= 3:
        break
print(sorted(bodies))
"#,
    );
    assert_eq!(back.trim(), "['m0', 'm1', 'm2']");

    // An unknown dead-letter queue: AWS's error, exit 1.
    let wrong = spillway(dir.path(), &["redrive", "nope"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(stderr(&wrong).starts_with("error: QueueDoesNotExist: "));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_stack_and_an_ambiguous_user_are_clear_errors() {
    let two_users = format!(
        "{STACK}\n[users.other]\naccess_key_id = \"AKIASPILLWAYOTHER001\"\n\
         secret_access_key = \"b3RoZXItc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj\"\n"
    );
    let (dir, running, endpoint) = up(&two_users).await;
    let several = spillway(dir.path(), &["list"]);
    assert_eq!(several.status.code(), Some(2));
    assert!(
        stderr(&several).contains("several users (admin, other): choose one with --user"),
        "{}",
        stderr(&several)
    );
    // `other` has no policy: the endpoint refuses it as it would any client.
    let denied = spillway(dir.path(), &["list", "--user", "other"]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(
        stderr(&denied).starts_with("error: AccessDenied"),
        "{}",
        stderr(&denied)
    );
    let unknown = spillway(dir.path(), &["list", "--user", "ghost"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("no user \"ghost\""));
    assert!(
        spillway(dir.path(), &["list", "--user", "admin"])
            .status
            .success()
    );

    running.shutdown().await;
    let stopped = spillway(dir.path(), &["list", "--user", "admin"]);
    assert_eq!(stopped.status.code(), Some(1));
    // Shutdown removed .spillway/endpoint.
    assert!(
        stderr(&stopped).starts_with("error: the stack is not running: ")
            && stderr(&stopped).contains("names no endpoint; start it with `spillway up`"),
        "{}",
        stderr(&stopped)
    );
    // A stack killed with -9 leaves its endpoint file behind: nothing answers there any more.
    std::fs::write(
        dir.path().join(".spillway/endpoint"),
        format!("{endpoint}\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let killed = spillway(dir.path(), &["list", "--user", "admin"]);
    assert_eq!(killed.status.code(), Some(1));
    assert!(
        stderr(&killed).contains(&format!("not running: nothing answers on {endpoint}")),
        "{}",
        stderr(&killed)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_cancels_a_running_redrive() {
    use std::io::BufRead;
    let (dir, running, endpoint) = up(STACK).await;
    boto3(
        &endpoint,
        r#"
for i in range(20):
    sqs.send_message(QueueUrl=url('jobs-dlq'), MessageBody=f'm{i}')
"#,
    );
    // One message a second: twenty take far longer than reading the first progress line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_spillway"))
        .args([
            "queue", "redrive", "jobs-dlq", "--to", "plain", "--rate", "1", "--stack",
        ])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spillway: {e}"));
    let mut lines =
        std::io::BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("stdout"))).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref().take(5) {
        let line = line.unwrap_or_else(|e| panic!("{e}"));
        let running_line = line.starts_with("RUNNING: moved ");
        seen.push(line);
        if running_line {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|l| l.ends_with(" of 20")),
        "{seen:?}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let rest: Vec<String> = lines.take(30).map_while(Result::ok).collect();
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.code(), Some(130), "{seen:?} {rest:?}");
    assert!(
        rest.last()
            .is_some_and(|l| l.starts_with("cancelled after moving ")),
        "{rest:?}"
    );
    let task = boto3(
        &endpoint,
        r#"
arn = sqs.get_queue_attributes(QueueUrl=url('jobs-dlq'), AttributeNames=['QueueArn'])['Attributes']['QueueArn']
t = sqs.list_message_move_tasks(SourceArn=arn)['Results'][0]
left = sqs.get_queue_attributes(QueueUrl=url('jobs-dlq'), AttributeNames=['ApproximateNumberOfMessages'])['Attributes']['ApproximateNumberOfMessages']
print(t['Status'], int(left) > 0)
"#,
    );
    assert!(
        task.trim() == "CANCELLED True" || task.trim() == "CANCELLING True",
        "{task}"
    );
    running.shutdown().await;
}

/// A user whose keys `spillway up` generated: the command signs with the keys kept in
/// secrets.json, and leaves that file as it was even when the stack file names a user the
/// running stack has no keys for.
#[tokio::test(flavor = "multi_thread")]
async fn generated_keys_are_read_from_the_state_directory_and_never_written() {
    let text = r#"
[stack]
endpoint = "127.0.0.1:0"

[users.ops]
policies = [{ allow = ["sqs:*"], resources = ["*"] }]

[queues.work]
"#;
    let (dir, running, _) = up(text).await;
    let secrets = dir.path().join(".spillway/secrets.json");
    let before = std::fs::read_to_string(&secrets).unwrap_or_else(|e| panic!("{e}"));
    // A user added to the file after `up`: its keys exist nowhere yet. Making them up and
    // saving them here would race the running spillway's own saves of secrets.json.
    std::fs::write(
        dir.path().join("spillway.toml"),
        format!("{text}\n[users.late]\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = spillway(dir.path(), &["list", "--user", "ops"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).lines().any(|l| l.starts_with("work ")),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&secrets).unwrap_or_else(|e| panic!("{e}")),
        before
    );
    running.shutdown().await;
}
