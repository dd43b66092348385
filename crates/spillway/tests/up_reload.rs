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
