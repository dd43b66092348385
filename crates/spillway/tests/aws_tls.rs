//! https on the AWS endpoint (`[stack] endpoint_tls`) and `aws:SecureTransport`: with a
//! generated self-signed pair (0600, kept across restarts) boto3 and curl talk https when told
//! to trust it; plain HTTP from another machine is refused before a byte of the request is read;
//! plain HTTP from loopback (functions) is served with `aws:SecureTransport = false`, so a
//! "Deny unless TLS" statement applies to it and not to https. An endpoint bound off loopback
//! without TLS says so at start.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use spillway_testkit::Spillway;
use spillway_testkit::{aws_client_env, require_tool, up_in_process};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ALICE: (&str, &str) = (
    "AKIASPILLWAYTLS00001",
    "dGxzLWVuZHBvaW50LXNlY3JldC0wMTIzNDU2Nzg5",
);

fn stack_text(endpoint: &str, tls: &str) -> String {
    format!(
        r#"
[stack]
endpoint = "{endpoint}"
account = "123456789012"
{tls}

[users.alice]
access_key_id = "{key}"
secret_access_key = "{secret}"
policies = [
  {{ allow = ["secretsmanager:*"], resources = ["*"] }},
  {{ deny = ["secretsmanager:*"], resources = ["*"], condition = {{ Bool = {{ "aws:SecureTransport" = "false" }} }} }},
]

[secrets.db]
username = "app"
password = "app-password"
"#,
        key = ALICE.0,
        secret = ALICE.1,
    )
}

/// boto3 against `url`, trusting `ca` (or nothing extra): GetCallerIdentity's ARN, then
/// GetSecretValue's username or its error code.
fn boto3(url: &str, ca: Option<&Path>) -> String {
    let script = "import boto3, json, sys\n\
                  from botocore.exceptions import ClientError\n\
                  kw = {'endpoint_url': sys.argv[1]}\n\
                  if len(sys.argv) > 2: kw['verify'] = sys.argv[2]\n\
                  arn = boto3.client('sts', **kw).get_caller_identity()['Arn']\n\
                  try:\n\
                  \x20   v = boto3.client('secretsmanager', **kw).get_secret_value(SecretId='db')\n\
                  \x20   got = json.loads(v['SecretString'])['username']\n\
                  except ClientError as e:\n\
                  \x20   got = e.response['Error']['Code']\n\
                  print(arn, got)";
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script, url]);
    if let Some(ca) = ca {
        cmd.arg(ca);
    }
    let out = aws_client_env(&mut cmd, ALICE.0, ALICE.1)
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// An address of this machine that is not loopback, if it has one (the source address of a
/// route to a documentation address; nothing is sent).
fn non_loopback_ip() -> Option<IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_endpoint_serves_https_and_policies_see_secure_transport() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("spillway.toml"),
        stack_text("0.0.0.0:0", "endpoint_tls = { self_signed = true }"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let port = running
        .http_addr()
        .unwrap_or_else(|| panic!("no endpoint"))
        .port();
    let cert = dir.path().join(".spillway/endpoint-tls/cert.pem");
    for f in ["cert.pem", "key.pem"] {
        let mode = std::fs::metadata(dir.path().join(".spillway/endpoint-tls").join(f))
            .map(|m| m.permissions().mode())
            .unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }

    // https, trusting the generated certificate: STS and Secrets Manager, TLS satisfies the
    // Deny-unless-SecureTransport statement.
    let https = format!("https://localhost:{port}");
    assert_eq!(
        tokio::task::block_in_place(|| boto3(&https, Some(&cert))),
        "arn:aws:iam::123456789012:user/alice app"
    );
    let out = Command::new(require_tool("curl", "curl"))
        .args(["-sS", "--cacert"])
        .arg(&cert)
        .arg(format!("https://127.0.0.1:{port}/_spillway/health"))
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Plain HTTP from loopback (as functions call it): served, but aws:SecureTransport is
    // false, so the Deny applies; GetCallerIdentity is never denied.
    let http = format!("http://127.0.0.1:{port}");
    assert_eq!(
        tokio::task::block_in_place(|| boto3(&http, None)),
        "arn:aws:iam::123456789012:user/alice AccessDeniedException"
    );

    // Plain HTTP from another machine's address: refused without reading the request.
    if let Some(ip) = non_loopback_ip() {
        let mut s = tokio::net::TcpStream::connect(SocketAddr::new(ip, port))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let req = format!(
            "POST / HTTP/1.1\r\nHost: {ip}:{port}\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: secretsmanager.GetSecretValue\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{{\"SecretId\":\"db\"}}"
        );
        s.write_all(req.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        assert!(out.starts_with("HTTP/1.1 400"), "{out}");
        assert!(out.contains("this endpoint requires https"), "{out}");
        assert!(!out.contains("app-password"), "{out}");
    } else {
        eprintln!(
            "no non-loopback address on this machine: the off-loopback refusal is not tested"
        );
    }
    running.shutdown().await;

    // A restart keeps the pair (clients already trust it).
    let before = std::fs::read(&cert).unwrap_or_default();
    let running = up_in_process(dir.path()).await;
    assert_eq!(std::fs::read(&cert).unwrap_or_default(), before);
    running.shutdown().await;
}

#[test]
fn an_endpoint_off_loopback_without_tls_is_warned_about_at_start() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("spillway.toml"),
        stack_text("0.0.0.0:0", ""),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut up = Spillway::start(&common::binary(), &["up"], dir.path());
    let line = up.wait_for("without TLS", Duration::from_secs(60));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("set [stack] endpoint_tls"), "{line}");
    up.wait_for("spillway is up", Duration::from_secs(60));
    up.signal(nix::sys::signal::Signal::SIGTERM);
    up.wait_exit(Duration::from_secs(30));

    // On loopback, or with TLS, no such line.
    std::fs::write(
        dir.path().join("spillway.toml"),
        stack_text("127.0.0.1:0", ""),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut up = Spillway::start(&common::binary(), &["up"], dir.path());
    up.wait_for("spillway is up", Duration::from_secs(60));
    up.signal(nix::sys::signal::Signal::SIGTERM);
    up.wait_exit(Duration::from_secs(30));
    assert!(
        !up.seen.iter().any(|l| l.contains("without TLS")),
        "{:#?}",
        up.seen
    );
}

// Issue 15, item 17: without TLS on the endpoint every request has aws:SecureTransport =
// false, so the stack's "Deny unless TLS" statement refuses Secrets Manager over plain HTTP.
#[tokio::test(flavor = "multi_thread")]
async fn deny_unless_secure_transport_applies_to_plain_http() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("spillway.toml"),
        stack_text("127.0.0.1:0", ""),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let addr = running.http_addr().unwrap_or_else(|| panic!("no endpoint"));
    assert_eq!(
        tokio::task::block_in_place(|| boto3(&format!("http://{addr}"), None)),
        "arn:aws:iam::123456789012:user/alice AccessDeniedException"
    );
    running.shutdown().await;
}
