//! The AWS endpoint with STS GetCallerIdentity, driven by the aws CLI and boto3: signed calls
//! name their caller; a wrong secret, an unknown key, an expired signature, an unsigned call and
//! a duplicated parameter get AWS's error codes, in the query protocol's XML with a request id.

use std::net::SocketAddr;
use std::process::Command;

use spillway_identity::sigv4;
use spillway_testkit::{aws_client_env, require_tool, up_in_process};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY_ID: &str = "AKIASPILLWAYALICE001";
const SECRET: &str = "YWxpY2Utc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj";

const STACK: &str = r#"
[stack]
endpoint = "127.0.0.1:0"
account = "123456789012"

[users.alice]
access_key_id = "AKIASPILLWAYALICE001"
secret_access_key = "YWxpY2Utc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj"
"#;

fn env<'a>(cmd: &'a mut Command, key: &str, secret: &str) -> &'a mut Command {
    aws_client_env(cmd, key, secret)
}

fn cli(addr: SocketAddr, key: &str, secret: &str) -> std::process::Output {
    env(
        Command::new(require_tool("aws", "awscli")).args([
            "--endpoint-url",
            &format!("http://{addr}"),
            "sts",
            "get-caller-identity",
            "--output",
            "json",
        ]),
        key,
        secret,
    )
    .output()
    .unwrap_or_else(|e| panic!("aws: {e}"))
}

fn boto3(addr: SocketAddr, key: &str, secret: &str) -> std::process::Output {
    let script = "import boto3, json, sys\n\
                  c = boto3.client('sts', endpoint_url=sys.argv[1])\n\
                  r = c.get_caller_identity()\n\
                  print(json.dumps({k: r[k] for k in ('Arn', 'Account', 'UserId')}))";
    env(
        Command::new("python3").args(["-c", script, &format!("http://{addr}")]),
        key,
        secret,
    )
    .output()
    .unwrap_or_else(|e| panic!("python3: {e}"))
}

/// Sends one raw HTTP request; returns (status line and headers, body).
async fn raw(addr: SocketAddr, request: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    s.write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = String::new();
    s.read_to_string(&mut out)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (head.to_owned(), body.to_owned())
}

fn post(addr: SocketAddr, body: &str, extra_headers: &str) -> String {
    format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\n{extra_headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A request signed by hand at `at` (Unix seconds), to test the time window.
fn signed_at(addr: SocketAddr, at: i64) -> String {
    let body = "Action=GetCallerIdentity&Version=2011-06-15";
    let date = spillway_identity::time::format_amz_date(at);
    let scope = sigv4::Scope {
        date: date[..8].to_owned(),
        region: "us-east-1".into(),
        service: "sts".into(),
    };
    let host = addr.to_string();
    let headers = |n: &str| match n {
        "host" => Some(host.clone()),
        "x-amz-date" => Some(date.clone()),
        _ => None,
    };
    let signed_headers = vec!["host".to_owned(), "x-amz-date".to_owned()];
    let canonical = sigv4::canonical_request(
        &sigv4::RequestParts {
            method: "POST",
            path: "/",
            header: &headers,
            payload_hash: &sigv4::sha256_hex(body.as_bytes()),
        },
        "",
        &signed_headers,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let signature = sigv4::signature(SECRET, &scope, &date, &canonical);
    post(
        addr,
        body,
        &format!(
            "X-Amz-Date: {date}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={KEY_ID}/{}, SignedHeaders=host;x-amz-date, Signature={signature}\r\n",
            scope.render()
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn get_caller_identity_with_real_clients_and_precise_errors() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("spillway.toml"), STACK).unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let addr = running
        .http_addr()
        .unwrap_or_else(|| panic!("no AWS endpoint"));

    // The aws CLI and boto3, signing with alice's key.
    for out in [cli(addr, KEY_ID, SECRET), boto3(addr, KEY_ID, SECRET)] {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("\"Arn\": \"arn:aws:iam::123456789012:user/alice\""),
            "{text}"
        );
        assert!(text.contains("\"Account\": \"123456789012\""), "{text}");
    }

    // A wrong secret and an unknown key, as the CLI reports them.
    let out = cli(addr, KEY_ID, "not-the-secret");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SignatureDoesNotMatch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = boto3(addr, "AKIANOBODYKNOWSTHIS1", SECRET);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("InvalidClientTokenId"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Unsigned: 403 MissingAuthenticationToken, XML, with a request id.
    let (head, body) = raw(
        addr,
        &post(addr, "Action=GetCallerIdentity&Version=2011-06-15", ""),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("x-amzn-requestid: "),
        "{head}"
    );
    assert!(
        body.contains("<Code>MissingAuthenticationToken</Code>"),
        "{body}"
    );
    assert!(body.contains("<Type>Sender</Type>"), "{body}");

    // Signed correctly now, then 20 minutes ago and 20 minutes ahead.
    let now = spillway_identity::time::now();
    let (head, body) = raw(addr, &signed_at(addr, now)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    assert!(
        body.contains("<Arn>arn:aws:iam::123456789012:user/alice</Arn>"),
        "{body}"
    );
    for skewed in [now - 20 * 60, now + 20 * 60] {
        let (head, body) = raw(addr, &signed_at(addr, skewed)).await;
        assert!(head.starts_with("HTTP/1.1 403"), "{head}");
        assert!(
            body.contains("<Code>SignatureDoesNotMatch</Code>"),
            "{body}"
        );
    }

    // Malformed: a duplicated parameter, a broken Authorization header.
    let (head, body) = raw(
        addr,
        &post(addr, "Action=GetCallerIdentity&Action=AssumeRole", ""),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(body.contains("<Code>MalformedQueryString</Code>"), "{body}");
    let (head, body) = raw(
        addr,
        &post(
            addr,
            "Action=GetCallerIdentity",
            "Authorization: AWS4-HMAC-SHA256 Credential=x\r\n",
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(body.contains("<Code>IncompleteSignature</Code>"), "{body}");
    // A body over the limit is refused before anything else (413), and a form body that is
    // not UTF-8 is a malformed query (400): never a 500, never a hang.
    let huge = "A".repeat(spillway_aws_max_body() + 1);
    let (head, body) = raw(addr, &post(addr, &huge, "")).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(
        body.contains("<Code>RequestEntityTooLarge</Code>"),
        "{body}"
    );
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut bytes = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    bytes.extend_from_slice(&[0xff, 0xfe, 0xfd]);
    s.write_all(&bytes).await.unwrap_or_else(|e| panic!("{e}"));
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(out.contains("<Code>MalformedQueryString</Code>"), "{out}");
    running.shutdown().await;
}

/// The endpoint's body limit (16 MiB), as documented in docs/identity.md.
fn spillway_aws_max_body() -> usize {
    16 * 1024 * 1024
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_mode_lets_unsigned_calls_in_as_the_account_root() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("spillway.toml"),
        format!("{STACK}\n[stack.identity]\nenforce = false\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let addr = running
        .http_addr()
        .unwrap_or_else(|| panic!("no AWS endpoint"));
    let (head, body) = raw(
        addr,
        &post(addr, "Action=GetCallerIdentity&Version=2011-06-15", ""),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    assert!(
        body.contains("<Arn>arn:aws:iam::123456789012:root</Arn>"),
        "{body}"
    );
    // A known key must still sign correctly.
    let out = cli(addr, KEY_ID, "not-the-secret");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("SignatureDoesNotMatch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    running.shutdown().await;
}
