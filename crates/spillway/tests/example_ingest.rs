//! Report 001 end to end, from `examples/ingest` as a user runs it: `POST /submit` on an HTTP
//! API → the SQS-SendMessage integration → `data-sqs-queue` → a function with
//! `report_batch_item_failures` (the Node.js handler, or the Rust one with the flags swapped)
//! → the MySQL proxy with an RDS IAM token → MariaDB's `users`; invalid records end in
//! `data-dlq` after three receives. The spike tool runs scaled down (200 POSTs) and its report
//! is checked against the database and the dead-letter queue.

mod common;
#[path = "common/http.rs"]
mod http_client;

use std::path::Path;
use std::time::Duration;

use common::example;
use http_client::curl;
use spillway_supervisor::databases::DatabaseEndpoint;
use spillway_testkit::{eventually_async, require_tool, run_python, up_in_process};

const OPS: (&str, &str) = (
    "AKIAINGESTOPS0000001",
    "ingest/ops/secret/key/for/local/use/only",
);
const POSTS: usize = 200;
const INVALID_SHARE: f64 = 0.1;

/// The example listens on the documented ports; the test's copy takes free ones. With
/// `function = "ingest"` the Rust handler's mapping is the enabled one.
fn prepared(toml: &str, function: &str) -> String {
    let toml = toml
        .replace("[stack]\n", "[stack]\nendpoint = \"127.0.0.1:0\"\n")
        .replace(
            "[proxies.main]\n",
            "[proxies.main]\nlisten = \"127.0.0.1:0\"\n",
        )
        .replace(
            "[apis.ingest]\n",
            "[apis.ingest]\nlisten = \"127.0.0.1:0\"\n",
        );
    assert_eq!(toml.matches("enabled = true").count(), 1, "{toml}");
    assert_eq!(toml.matches("enabled = false").count(), 1, "{toml}");
    match function {
        "ingest-node" => toml,
        _ => toml
            .replace("enabled = true", "enabled = SWAP")
            .replace("enabled = false", "enabled = true")
            .replace("enabled = SWAP", "enabled = false"),
    }
}

/// A query as the database's administrator, through the server's socket (not the proxy).
async fn sql(db: &DatabaseEndpoint, query: &str) -> String {
    let socket = db.socket.as_ref().unwrap_or_else(|| panic!("no socket"));
    let password_file = db
        .admin_password_file
        .as_ref()
        .unwrap_or_else(|| panic!("no admin password"));
    let password = std::fs::read_to_string(password_file).unwrap_or_else(|e| panic!("{e}"));
    let out = tokio::process::Command::new(require_tool("mariadb", "mariadb-client"))
        .args([
            "--no-defaults",
            "-N",
            "-B",
            "--default-character-set=utf8mb4",
        ])
        .arg(format!("--socket={}", socket.display()))
        .args(["-u", &db.admin_user, &db.dbname, "-e", query])
        .env("MYSQL_PWD", password.trim())
        .output()
        .await
        .unwrap_or_else(|e| panic!("mariadb: {e}"));
    assert!(
        out.status.success(),
        "{query}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Every message in data-dlq, received (and left to become visible again) with boto3.
async fn dead_letter_bodies(endpoint: String) -> Vec<String> {
    let script = r#"
import boto3, json, sys
sqs = boto3.client('sqs', endpoint_url=sys.argv[1])
url = sqs.get_queue_url(QueueName='data-dlq')['QueueUrl']
bodies = {}
for _ in range(100):
    ms = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300).get('Messages', [])
    if not ms:
        break
    for m in ms:
        bodies[m['MessageId']] = m['Body']
print(json.dumps(sorted(bodies.values())))
"#;
    let out = tokio::task::spawn_blocking(move || run_python(&endpoint, OPS, script))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn log_of(dir: &Path, function: &str) -> String {
    std::fs::read_to_string(dir.join(format!(".spillway/logs/functions/{function}.log")))
        .unwrap_or_default()
}

async fn ingests_once_and_dead_letters_the_invalid(function: &str, idle: &str) {
    let dir = example("ingest");
    let stack = dir.path().join("spillway.toml");
    let text = std::fs::read_to_string(&stack).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&stack, prepared(&text, function)).unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let api = running
        .api_addr("ingest")
        .unwrap_or_else(|| panic!("no api"));
    let endpoint = format!(
        "http://{}",
        running.http_addr().unwrap_or_else(|| panic!("no endpoint"))
    );
    let db = running
        .databases()
        .find(|d| d.resource == "main")
        .unwrap_or_else(|| panic!("no database"))
        .clone();

    // The report's own test: one POST, SQS's answer, the row in users.
    let a = curl(&[
        "-X",
        "POST",
        &format!("http://{api}/submit"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"name": "田中太郎", "email": "tanaka@example.com"}"#,
    ])
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    // SQS's SendMessage answer, as API Gateway passes it back.
    let message_id = a.json()["MessageId"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no MessageId in {}", a.text()));
    let landed = eventually_async(Duration::from_secs(60), || async {
        sql(&db, "SELECT COUNT(*) FROM users").await == "1"
    })
    .await;
    assert!(landed, "the report's record never reached users");
    assert_eq!(
        sql(
            &db,
            "SELECT name, email, message_id, created_at IS NOT NULL FROM users"
        )
        .await,
        format!("田中太郎\ttanaka@example.com\t{message_id}\t1")
    );

    // The spike, scaled down: 200 POSTs in one second, a tenth of them invalid.
    let spike = dir.path().join("spike");
    let out = tokio::process::Command::new(&spike)
        .args(["--count", &POSTS.to_string(), "--window", "1s"])
        .args(["--invalid", &INVALID_SHARE.to_string(), "--wait", "240s"])
        .args(["--url", &format!("http://{api}/submit"), "--json"])
        .output()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", spike.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "spike: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let n = |k: &str| {
        report[k]
            .as_u64()
            .unwrap_or_else(|| panic!("no {k} in {report}"))
    };
    let invalid = (POSTS as f64 * INVALID_SHARE) as u64;
    let valid = POSTS as u64 - invalid;
    assert_eq!(n("accepted"), POSTS as u64, "{report}");
    assert_eq!(n("valid"), valid, "{report}");
    assert_eq!(n("invalid"), invalid, "{report}");
    assert_eq!(n("rows"), valid, "{report}");
    assert_eq!(n("dead_letters"), invalid, "{report}");
    assert_eq!(report["complete"], true, "{report}");
    // The server saw the proxy's connections of the function's user, and never more threads
    // than it counted in all.
    assert!(n("max_app_connections") >= 1, "{report}");
    assert!(
        n("max_threads_connected") >= n("max_app_connections"),
        "{report}"
    );
    for k in ["p50_ms", "p99_ms", "last_row_s", "sent_s"] {
        assert!(report[k].as_f64().is_some(), "{k}: {report}");
    }

    // The database agrees with the spike: each valid record exactly once, no invalid one.
    let run = report["run"]
        .as_str()
        .unwrap_or_else(|| panic!("no run in {report}"));
    let counts = sql(
        &db,
        &format!(
            "SELECT COUNT(*), COUNT(DISTINCT name), COUNT(DISTINCT message_id) FROM users \
             WHERE name LIKE 'spike-{run}-%'"
        ),
    )
    .await;
    assert_eq!(counts, format!("{valid}\t{valid}\t{valid}"));
    assert_eq!(
        sql(
            &db,
            "SELECT COUNT(*) FROM users WHERE email NOT LIKE '%@example.com'"
        )
        .await,
        "0"
    );

    // The dead-letter queue holds exactly the invalid records, each once.
    let bodies = dead_letter_bodies(endpoint).await;
    assert_eq!(bodies.len() as u64, invalid, "{bodies:?}");
    for body in &bodies {
        assert!(body.contains(&format!("spike-{run}-")), "{body}");
        assert!(
            !body.contains("@example.com"),
            "a valid record in data-dlq: {body}"
        );
    }

    // The handler asked for consumed the queue; the other one never ran.
    assert!(
        log_of(dir.path(), function).contains("refused"),
        "{function}'s log: {}",
        log_of(dir.path(), function)
    );
    assert!(
        !log_of(dir.path(), idle).contains("stored"),
        "{idle} ran: {}",
        log_of(dir.path(), idle)
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_node_handler_stores_valid_records_once_and_dead_letters_the_rest() {
    ingests_once_and_dead_letters_the_invalid("ingest-node", "ingest").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rust_handler_stores_valid_records_once_and_dead_letters_the_rest() {
    ingests_once_and_dead_letters_the_invalid("ingest", "ingest-node").await;
}
