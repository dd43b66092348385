//! `spillway up` on the quickstart with a managed PostgreSQL, driven like a user would: real
//! psql and tokio-postgres against the printed endpoint, Ctrl-C, SIGTERM, kill -9, restart.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use spillway_testkit::{Spillway, eventually, processes_mentioning, require_tool};

/// The first start builds the quickstart's Rust function in release mode, which on a cold
/// build cache takes minutes on two cores.
const START: Duration = Duration::from_secs(600);

/// psql over the managed server's Unix socket (`socket` is its directory).
fn psql(socket: &str, user: &str, password: &str, sql: &str) -> std::process::Output {
    Command::new(require_tool("psql", "postgresql-client"))
        .args([
            "-X", "-A", "-t", "-h", socket, "-U", user, "-d", "main", "-c", sql,
        ])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .unwrap_or_else(|e| panic!("psql: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn quickstart_lifecycle_with_real_clients() {
    let dir = example("quickstart");
    let data_dir = dir.path().join(".spillway/databases/main/data");
    let data_str = data_dir.display().to_string();

    // First start: initdb, init SQL, the endpoint table.
    let mut up = Spillway::start(&binary(), &["up", "."], dir.path());
    up.wait_for("creating a PostgreSQL data directory", START);
    // Socket only: the endpoint is libpq's URI for a socket directory.
    let row = up.wait_for(
        // (the table's columns are as wide as the longest resource name)
        "postgres://spillway@localhost/main?host=",
        START,
    );
    up.wait_for("spillway is up", START);
    let socket = row
        .split("?host=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_default()
        .to_owned();
    assert!(!dir.path().join(".spillway/databases/main/port").exists());
    assert!(
        row.contains(".spillway/databases/main/admin-password"),
        "{row}"
    );

    // psql as the administrator, with the password from the printed file.
    let admin = read_trimmed(&dir.path().join(".spillway/databases/main/admin-password"));
    let out = psql(
        &socket,
        "spillway",
        &admin,
        "SELECT name FROM users ORDER BY id",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Aiko Tanaka\nBen Carter\nChen Wei\n"
    );

    // The server listens on no TCP address (like an RDS instance in a private subnet).
    let out = psql(&socket, "spillway", &admin, "SHOW listen_addresses");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "");

    // tokio-postgres as the app user whose password spillway generated into the secret.
    let app = generated_password(dir.path(), "app");
    let conn_str = format!("host={socket} user=app password={app} dbname=main");
    let (client, conn) = tokio_postgres::connect(&conn_str, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(conn);
    client
        .execute(
            "INSERT INTO users (name, email) VALUES ($1, $2)",
            &[&"Dana", &"dana@example.com"],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let n: i64 = client
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or_default();
    assert_eq!(n, 4);
    drop(client);

    // Password auth is really on: a wrong password is refused with SQLSTATE 28P01.
    let bad = format!("host={socket} user=app password=wrong dbname=main");
    let err = tokio_postgres::connect(&bad, tokio_postgres::NoTls)
        .await
        .err()
        .and_then(|e| e.code().cloned());
    assert_eq!(err, Some(tokio_postgres::error::SqlState::INVALID_PASSWORD));

    // The quickstart's Rust function, invoked with the aws CLI exactly as the README says.
    let mut aws = Command::new(require_tool("aws", "awscli"));
    let out = spillway_testkit::aws_client_env(
        &mut aws,
        "AKIAQUICKSTART0DEV01",
        "quickstart/dev/secret/key/local/use/only",
    )
    .env("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    .current_dir(dir.path())
    .args([
        "lambda",
        "invoke",
        "--function-name",
        "hello",
        "--payload",
        r#"{"name":"x"}"#,
        "out.json",
    ])
    .output()
    .unwrap_or_else(|e| panic!("aws: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.json")).unwrap_or_default(),
        r#"{"hello":"x"}"#
    );
    let hello = processes_mentioning("/release/hello");
    assert_eq!(hello.len(), 1, "one warm instance: {hello:?}");

    // A second up on the same directory is refused and damages nothing.
    let second = run(&["up", "."], dir.path());
    assert_eq!(second.status.code(), Some(2));
    assert!(
        stderr(&second).contains(&format!(
            "another spillway (pid {}) is already running this stack",
            up.pid()
        )),
        "{}",
        stderr(&second)
    );

    // Ctrl-C: clean exit, no postgres left.
    assert!(
        !processes_mentioning(&data_str).is_empty(),
        "postgres should be running"
    );
    up.signal(Signal::SIGINT);
    let status = up.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "exit {status}: {}", up.output());
    assert!(
        processes_mentioning(&data_str).is_empty(),
        "postgres outlived spillway: {:?}",
        processes_mentioning(&data_str)
    );
    assert!(
        hello
            .iter()
            .all(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()),
        "the function's instance outlived spillway"
    );

    // Restart: no initdb, data intact. Then SIGTERM.
    let mut up = Spillway::start(&binary(), &["up"], dir.path());
    up.wait_for("spillway is up", START);
    assert!(
        !up.output().contains("creating a PostgreSQL data directory"),
        "{}",
        up.output()
    );
    let out = psql(&socket, "app", &app, "SELECT count(*) FROM users");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "4",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    up.signal(Signal::SIGTERM);
    assert!(
        up.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        up.output()
    );
    assert!(processes_mentioning(&data_str).is_empty());

    // kill -9 of spillway: the parent-death signal still stops postgres, and the data survives.
    let mut up = Spillway::start(&binary(), &["up"], dir.path());
    up.wait_for("spillway is up", START);
    assert!(!processes_mentioning(&data_str).is_empty());
    up.signal(Signal::SIGKILL);
    let _ = up.wait_exit(Duration::from_secs(10));
    assert!(
        eventually(Duration::from_secs(30), || processes_mentioning(&data_str)
            .is_empty()),
        "postgres outlived a killed spillway: {:?}",
        processes_mentioning(&data_str)
    );
    let mut up = Spillway::start(&binary(), &["up"], dir.path());
    up.wait_for("spillway is up", START);
    let out = psql(&socket, "app", &app, "SELECT count(*) FROM users");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "4",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    up.signal(Signal::SIGINT);
    assert!(up.wait_exit(Duration::from_secs(60)).success());
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = stack(&[("spillway.toml", "[databases.main]\nengine = \"postgres\"\n")]);
    let mut up = Spillway::start(&binary(), &["--log-format", "json", "up"], dir.path());
    up.wait_for("spillway is up", START);
    up.signal(Signal::SIGINT);
    assert!(up.wait_exit(Duration::from_secs(30)).success());
    // Everything on stderr is JSON; stdout has the endpoint table for people.
    let json_lines: Vec<&String> = up.seen.iter().filter(|l| l.starts_with('{')).collect();
    assert!(
        json_lines
            .iter()
            .any(|l| l.contains("creating a PostgreSQL data directory")),
        "{}",
        up.output()
    );
    assert!(
        !up.seen.iter().any(|l| l.starts_with("  databases.main:")),
        "{}",
        up.output()
    );
    for l in json_lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{l}");
    }
}
