//! TLS between clients and the proxy: psql and pgbench with sslmode=require through a
//! certificate made here with the openssl CLI, and RequireTLS refusing plaintext clients.

use std::process::Command;

use spillway_testkit::{ProxyStack, require_tool};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

fn certificate(dir: &std::path::Path) -> (String, String) {
    let (cert, key) = (dir.join("proxy.crt"), dir.join("proxy.key"));
    let out = Command::new(require_tool("openssl", "openssl"))
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert.display().to_string(), key.display().to_string())
}

fn psql(port: u16, sslmode: &str, sql: &str) -> std::process::Output {
    Command::new(require_tool("psql", "postgresql-client"))
        .args(["-X", "-A", "-t", "-c", sql])
        .arg(format!(
            "host=127.0.0.1 port={port} user=app dbname=main sslmode={sslmode}"
        ))
        .env("PGPASSWORD", "app-password")
        .output()
        .unwrap_or_else(|e| panic!("psql: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_clients_are_served_and_plaintext_is_refused_when_required() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (cert, key) = certificate(dir.path());
    let stack = ProxyStack::start(&format!(
        "require_tls = true\ntls = {{ cert = \"{cert}\", key = \"{key}\" }}"
    ))
    .await;
    let port = stack.port();

    let out = psql(port, "require", "\\conninfo");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("SSL connection (protocol: TLSv1."), "{text}");
    let out = psql(port, "require", "SELECT current_user");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "app",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Plaintext is refused with 28000 and a message that says what to do.
    let out = psql(port, "disable", "SELECT 1");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("this proxy requires TLS; connect with sslmode=require"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = tokio_postgres::connect(&stack.conn_str(), NoTls)
        .await
        .err()
        .and_then(|e| e.code().cloned());
    assert_eq!(err, Some(SqlState::INVALID_AUTHORIZATION_SPECIFICATION));

    // Load over TLS: extended protocol through the relay.
    let out = Command::new(require_tool("pgbench", "postgresql-contrib"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "app",
            "-i",
            "-s",
            "1",
            "-q",
            "main",
        ])
        .env("PGPASSWORD", "app-password")
        .env("PGSSLMODE", "require")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(require_tool("pgbench", "postgresql-contrib"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "app",
            "-c",
            "8",
            "-j",
            "2",
            "-t",
            "100",
            "-S",
            "-M",
            "extended",
            "main",
        ])
        .env("PGPASSWORD", "app-password")
        .env("PGSSLMODE", "require")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("number of transactions actually processed: 800/800"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stack.metric("ClientConnectionsNoTLS").await, 0.0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_certificate_tls_requests_are_declined_and_plaintext_continues() {
    let stack = ProxyStack::start("").await;
    // sslmode=prefer asks for TLS, gets 'N', and goes on in plaintext.
    let out = psql(stack.port(), "prefer", "SELECT 1");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = psql(stack.port(), "require", "SELECT 1");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("server does not support SSL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stack.stop().await;
}
