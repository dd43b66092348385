//! TLS between clients and the proxy: psql and pgbench with sslmode=require through a
//! certificate made here with the openssl CLI, and RequireTLS refusing plaintext clients; and TLS
//! between the proxy and a real PostgreSQL with ssl = on (sslmode=require and verify-full).

use std::process::Command;

use spillway_testkit::{PrivatePostgres, ProxyStack, require_tool};
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

fn openssl(args: &[&str]) {
    let out = Command::new(require_tool("openssl", "openssl"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it (webpki, rightly, refuses a
/// self-signed CA certificate as a server's own). Returns (ca, cert, key) paths.
fn ca_and_server_certificate(dir: &std::path::Path) -> (String, String, String) {
    let p = |n: &str| dir.join(n).display().to_string();
    let (ca_key, ca, key, csr, cert, ext) = (
        p("ca.key"),
        p("ca.crt"),
        p("server.key"),
        p("server.csr"),
        p("server.crt"),
        p("server.ext"),
    );
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=spillway test CA",
        "-keyout",
        &ca_key,
        "-out",
        &ca,
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &key,
        "-out",
        &csr,
    ]);
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &ext,
        "-out",
        &cert,
    ]);
    (ca, cert, key)
}

/// Turns TLS on in a private server with a certificate for 127.0.0.1; returns its CA.
fn enable_server_tls(pg: &PrivatePostgres) -> String {
    let data = pg.data_dir();
    let (ca, cert, key) = ca_and_server_certificate(&data);
    // The server's account must own its key, readable by nobody else.
    let owner = std::fs::metadata(&data)
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    for f in [&cert, &key] {
        let _ = std::os::unix::fs::chown(f, Some(owner), None);
        let _ = std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o600));
    }
    pg.admin_sql(&format!("ALTER SYSTEM SET ssl_cert_file = '{cert}'"));
    pg.admin_sql(&format!("ALTER SYSTEM SET ssl_key_file = '{key}'"));
    pg.admin_sql("ALTER SYSTEM SET ssl = on");
    pg.admin_sql("SELECT pg_reload_conf()");
    ca
}

async fn server_side_ssl(stack: &ProxyStack) -> Result<String, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user=test password=test-password dbname=test",
            stack.port()
        ),
        NoTls,
    )
    .await?;
    tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_speaks_tls_to_the_database_when_the_url_asks() {
    let pg = PrivatePostgres::start().await;
    let ca = enable_server_tls(&pg);
    let other = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (wrong_ca, _, _) = ca_and_server_certificate(other.path());
    for (query, expect_tls) in [
        (String::new(), Some("false")),
        ("?sslmode=require".to_owned(), Some("true")),
        (
            format!("?sslmode=verify-full&sslrootcert={ca}"),
            Some("true"),
        ),
        (format!("?sslmode=verify-full&sslrootcert={wrong_ca}"), None),
    ] {
        let stack = ProxyStack::start_with_database(
            &format!("engine = \"postgres\"\nurl = \"{}{query}\"", pg.url()),
            "test",
            "test-password",
            "",
        )
        .await;
        let got = server_side_ssl(&stack).await;
        match expect_tls {
            Some(want) => assert_eq!(got.as_deref().ok(), Some(want), "{query}: {got:?}"),
            // A certificate from another CA: the proxy cannot open a server connection.
            None => assert!(
                got.is_err(),
                "{query}: the server's certificate should be refused"
            ),
        }
        stack.stop().await;
    }
}
