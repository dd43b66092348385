//! `spillway up` applies a changed stack file (or SIGHUP) to running proxies without dropping
//! their clients; a file with errors is reported and ignored.

mod common;

use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use spillway_testkit::{Spillway, http_get};

const STACK: &str = r#"
[stack]
endpoint = "127.0.0.1:0"

[databases.main]
engine = "postgres"

[secrets.app]
username = "app"
password = "app-password"

[proxies.main]
database = "main"
listen = "127.0.0.1:0"
auth = [{ secret = "app" }]
max_connections = 1
"#;

fn addr_of(up: &Spillway, resource: &str) -> std::net::SocketAddr {
    let line = up
        .seen
        .iter()
        .find(|l| l.starts_with(resource))
        .cloned()
        .unwrap_or_default();
    let addr = line.split_whitespace().find_map(|w| {
        w.trim_start_matches("postgres://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
    });
    addr.unwrap_or_else(|| panic!("no address for {resource} in {line:?}"))
}

async fn max_allowed(metrics: std::net::SocketAddr) -> String {
    let text = http_get(metrics, "/_spillway/metrics").await;
    text.lines()
        .find(|l| l.starts_with("spillway_proxy_MaxDatabaseConnectionsAllowed{"))
        .unwrap_or_default()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_stack_file_resizes_the_pool_without_dropping_clients() {
    let dir = stack(&[("spillway.toml", STACK)]);
    let mut up = Spillway::start(&binary(), &["up"], dir.path());
    up.wait_for("spillway is up", Duration::from_secs(120));
    let proxy = addr_of(&up, "proxies.main");
    let metrics = addr_of(&up, "metrics");
    assert_eq!(max_allowed(metrics).await, "1");

    let conn = format!(
        "host=127.0.0.1 port={} user=app password=app-password dbname=main",
        proxy.port()
    );
    let (client, c) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(c);
    client
        .simple_query("SELECT 1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Edit the file: the pool grows, the connected client stays.
    std::fs::write(
        dir.path().join("spillway.toml"),
        STACK.replace("max_connections = 1", "max_connections = 5"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    up.wait_for("reloaded", Duration::from_secs(30));
    assert_eq!(max_allowed(metrics).await, "5");
    client
        .simple_query("SELECT 2")
        .await
        .unwrap_or_else(|e| panic!("the client was dropped by the reload: {e}"));

    // A broken edit is refused with its location, and nothing changes.
    std::fs::write(
        dir.path().join("spillway.toml"),
        STACK.replace("max_connections = 1", "max_connections = \"many\""),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    up.wait_for("keeping the running settings", Duration::from_secs(30));
    let diag = up.wait_for(
        "proxies.main.max_connections: expected",
        Duration::from_secs(10),
    );
    assert!(
        diag.trim_start().starts_with("spillway.toml:16:19: "),
        "{diag}"
    );
    assert_eq!(max_allowed(metrics).await, "5");

    // SIGHUP applies the (fixed) file too.
    std::fs::write(
        dir.path().join("spillway.toml"),
        STACK.replace("max_connections = 1", "max_connections = 3"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    up.signal(Signal::SIGHUP);
    assert!(
        spillway_testkit::eventually_async(Duration::from_secs(30), || async {
            max_allowed(metrics).await == "3"
        })
        .await,
        "SIGHUP did not apply the file"
    );
    client
        .simple_query("SELECT 3")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    up.signal(Signal::SIGINT);
    assert!(
        up.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        up.output()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn debug_logging_turned_on_by_a_reload_logs_new_sessions_statements() {
    let dir = stack(&[("spillway.toml", STACK)]);
    let mut up = Spillway::start(&binary(), &["up"], dir.path());
    up.wait_for("spillway is up", Duration::from_secs(120));
    let proxy = addr_of(&up, "proxies.main");
    let conn = format!(
        "host=127.0.0.1 port={} user=app password=app-password dbname=main",
        proxy.port()
    );
    let query = |sql: &'static str| {
        let conn = conn.clone();
        async move {
            let (client, c) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            tokio::spawn(c);
            client
                .simple_query(sql)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    };
    query("SELECT 'quiet-marker'").await;

    std::fs::write(
        dir.path().join("spillway.toml"),
        format!("{STACK}debug_logging = true\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    up.wait_for("reloaded", Duration::from_secs(30));
    query("SELECT 'logged-marker'").await;
    up.wait_for("statement: SELECT 'logged-marker'", Duration::from_secs(30));
    assert!(
        !up.output().contains("quiet-marker"),
        "statements were logged with debug_logging off"
    );
    up.signal(Signal::SIGINT);
    assert!(up.wait_exit(Duration::from_secs(60)).success());
}

const IAM_STACK: &str = r#"
[stack]
endpoint = "127.0.0.1:0"
account = "123456789012"

[secrets.report]
username = "report"
password = "report-password"

[users.bob]
access_key_id = "AKIASPILLWAYBOB00001"
secret_access_key = "Ym9iLXNlY3JldC1rZXktMDEyMzQ1Njc4OWFiY2Rl"
policies = [{ allow = ["sts:AssumeRole"], resources = ["*"] }]

[users.carol]
access_key_id = "AKIASPILLWAYCAROL001"
secret_access_key = "Y2Fyb2wtc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj"
policies = [{ allow = ["sts:AssumeRole"], resources = ["*"] }]

[roles.reader]
trusted = ["users.bob", "users.carol"]
policies = [{ allow = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], resources = ["${secrets.report.arn}"] }]
"#;

/// Runs a boto3 script against `endpoint`; the script gets `code(f, **kw)` and `sts(key, secret)`.
fn boto3(endpoint: &str, body: &str) -> String {
    let script = format!(
        "import boto3, json, sys\n\
         from botocore.exceptions import ClientError\n\
         endpoint = sys.argv[1]\n\
         def code(f, **kw):\n\
         \x20   try:\n\
         \x20       f(**kw)\n\
         \x20       return 'ok'\n\
         \x20   except ClientError as e:\n\
         \x20       return e.response['Error']['Code']\n\
         def client(service, key, secret, token=None):\n\
         \x20   return boto3.client(service, endpoint_url=endpoint, region_name='us-east-1',\n\
         \x20       aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token)\n\
         bob = client('sts', 'AKIASPILLWAYBOB00001', 'Ym9iLXNlY3JldC1rZXktMDEyMzQ1Njc4OWFiY2Rl')\n\
         carol = client('sts', 'AKIASPILLWAYCAROL001', 'Y2Fyb2wtc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj')\n\
         role = 'arn:aws:iam::123456789012:role/reader'\n\
         {body}"
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script, endpoint])
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// After SIGHUP, a user taken out of a role's `trusted` can no longer assume it, and a
/// permission taken out of the role stops working for new sessions and for the sessions
/// already issued (IAM evaluates a session against its role's current policies).
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_applies_role_trust_and_policies_to_new_and_existing_sessions() {
    let dir = stack(&[("spillway.toml", IAM_STACK)]);
    let mut up = Spillway::start(&binary(), &["up"], dir.path());
    up.wait_for("spillway is up", Duration::from_secs(120));
    let endpoint = format!("http://{}", addr_of(&up, "aws endpoint"));
    let session = boto3(
        &endpoint,
        "c = bob.assume_role(RoleArn=role, RoleSessionName='before')['Credentials']\n\
         sm = client('secretsmanager', c['AccessKeyId'], c['SecretAccessKey'], c['SessionToken'])\n\
         assert code(sm.get_secret_value, SecretId='report') == 'ok'\n\
         print(json.dumps([c['AccessKeyId'], c['SecretAccessKey'], c['SessionToken']]))",
    );

    // bob loses the role's trust, and the role loses GetSecretValue.
    std::fs::write(
        dir.path().join("spillway.toml"),
        IAM_STACK
            .replace(
                "trusted = [\"users.bob\", \"users.carol\"]",
                "trusted = [\"users.carol\"]",
            )
            .replace(
                "\"secretsmanager:GetSecretValue\", \"secretsmanager:DescribeSecret\"",
                "\"secretsmanager:DescribeSecret\"",
            ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    up.signal(Signal::SIGHUP);
    up.wait_for("reloaded", Duration::from_secs(30));

    let out = boto3(
        &endpoint,
        &format!(
            "k, s, t = json.loads('{session}')\n\
             old = client('secretsmanager', k, s, t)\n\
             print('existing', code(old.get_secret_value, SecretId='report'), code(old.describe_secret, SecretId='report'))\n\
             print('bob', code(bob.assume_role, RoleArn=role, RoleSessionName='after'))\n\
             c = carol.assume_role(RoleArn=role, RoleSessionName='after')['Credentials']\n\
             new = client('secretsmanager', c['AccessKeyId'], c['SecretAccessKey'], c['SessionToken'])\n\
             print('new', code(new.get_secret_value, SecretId='report'), code(new.describe_secret, SecretId='report'))"
        ),
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "existing AccessDeniedException ok",
            "bob AccessDenied",
            "new AccessDeniedException ok",
        ],
        "{out}"
    );
    up.signal(Signal::SIGINT);
    assert!(
        up.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        up.output()
    );
}
