//! What a signature covers and how long it lasts, as a hostile client tests it: a request whose
//! signature leaves out an `x-amz-*` header (or, for the JSON protocols, `Content-Type`) is
//! refused on every service the endpoint serves and on API Gateway's `AWS_IAM` routes, so a
//! captured DescribeSecret cannot be replayed as DeleteSecret; and each service keeps AWS's
//! time window (STS 15 minutes, Lambda, Secrets Manager and `AWS_IAM` routes 5) with AWS's
//! message. boto3, the aws CLI and awscurl, which sign what they send, still get in.

mod common;
#[path = "common/http.rs"]
mod http_client;

use std::net::SocketAddr;
use std::process::Command;

use common::repo_root;
use spillway_identity::sigv4;
use spillway_testkit::{aws_client_env, require_tool, up_in_process};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ALICE: (&str, &str) = (
    "AKIASPILLWAYSIGNED01",
    "c2lnbmVkLWhlYWRlcnMtc2VjcmV0LTAxMjM0NTY3",
);

fn stack_text() -> String {
    let f = repo_root().join("tests/functions");
    format!(
        r#"
[stack]
endpoint = "127.0.0.1:0"
account = "123456789012"

[users.alice]
access_key_id = "{key}"
secret_access_key = "{secret}"
policies = [{{ allow = ["secretsmanager:*", "lambda:*", "execute-api:Invoke"], resources = ["*"] }}]

[secrets.db]
username = "app"
password = "app-password"

[functions.py]
runtime = "python"
code = "{f}/python-app"
handler = "app.handler"

[apis.web]
listen = "127.0.0.1:0"

[[apis.web.routes]]
route = "GET /private"
function = "py"
authorization = "iam"
"#,
        key = ALICE.0,
        secret = ALICE.1,
        f = f.display(),
    )
}

/// A request signed by hand, so that the test chooses what the signature covers and when it
/// was made.
struct Signed<'a> {
    method: &'a str,
    path: &'a str,
    service: &'a str,
    /// Headers besides Host, X-Amz-Date, Authorization and Content-Length.
    headers: Vec<(&'a str, &'a str)>,
    /// Header names the signature covers (lower case), besides host and x-amz-date.
    signs: &'a [&'a str],
    body: &'a str,
    at: i64,
}

impl Signed<'_> {
    fn render(&self, addr: SocketAddr) -> String {
        let date = spillway_identity::time::format_amz_date(self.at);
        let host = addr.to_string();
        let scope = sigv4::Scope {
            date: date[..8].to_owned(),
            region: "us-east-1".into(),
            service: self.service.into(),
        };
        let lookup = |n: &str| match n {
            "host" => Some(host.clone()),
            "x-amz-date" => Some(date.clone()),
            _ => self
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| (*v).to_owned()),
        };
        let mut signed: Vec<String> = ["host", "x-amz-date"]
            .iter()
            .chain(self.signs)
            .map(|s| (*s).to_owned())
            .collect();
        signed.sort();
        let canonical = sigv4::canonical_request(
            &sigv4::RequestParts {
                method: self.method,
                path: self.path,
                header: &lookup,
                payload_hash: &sigv4::sha256_hex(self.body.as_bytes()),
            },
            "",
            &signed,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let signature = sigv4::signature(ALICE.1, &scope, &date, &canonical);
        let mut text = format!(
            "{} {} HTTP/1.1\r\nHost: {host}\r\nX-Amz-Date: {date}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={}, Signature={signature}\r\n",
            self.method,
            self.path,
            ALICE.0,
            scope.render(),
            signed.join(";")
        );
        for (k, v) in &self.headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        text.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
            self.body.len(),
            self.body
        ));
        text
    }
}

/// Sends one raw request; returns (status, lower-cased head, body).
async fn send(addr: SocketAddr, request: &str) -> (u16, String, String) {
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
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

const JSON_11: &str = "application/x-amz-json-1.1";
const DESCRIBE: &str = r#"{"SecretId":"db"}"#;
const DELETE: &str = r#"{"SecretId":"db","ForceDeleteWithoutRecovery":true}"#;
const STS_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

fn secrets<'a>(target: &'a str, body: &'a str, signs: &'a [&'a str], at: i64) -> Signed<'a> {
    Signed {
        method: "POST",
        path: "/",
        service: "secretsmanager",
        headers: vec![("Content-Type", JSON_11), ("X-Amz-Target", target)],
        signs,
        body,
        at,
    }
}

fn sts<'a>(headers: Vec<(&'a str, &'a str)>, signs: &'a [&'a str], at: i64) -> Signed<'a> {
    let mut all = vec![("Content-Type", FORM)];
    all.extend(headers);
    Signed {
        method: "POST",
        path: "/",
        service: "sts",
        headers: all,
        signs,
        body: STS_BODY,
        at,
    }
}

const INVOKE: &str = "/2015-03-31/functions/py/invocations";

fn lambda<'a>(headers: Vec<(&'a str, &'a str)>, signs: &'a [&'a str], at: i64) -> Signed<'a> {
    Signed {
        method: "POST",
        path: INVOKE,
        service: "lambda",
        headers,
        signs,
        body: "{}",
        at,
    }
}

fn gateway<'a>(headers: Vec<(&'a str, &'a str)>, signs: &'a [&'a str], at: i64) -> Signed<'a> {
    Signed {
        method: "GET",
        path: "/private",
        service: "execute-api",
        headers,
        signs,
        body: "",
        at,
    }
}

fn message(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["message"]
        .as_str()
        .or_else(|| v["Message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn boto3(endpoint: SocketAddr, script: &str) -> std::process::Output {
    let script = format!("import boto3, json, sys\nep = sys.argv[1]\n{script}");
    aws_client_env(
        Command::new("python3").args(["-c", &script, &format!("http://{endpoint}")]),
        ALICE.0,
        ALICE.1,
    )
    .output()
    .unwrap_or_else(|e| panic!("python3: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_amz_header_must_be_signed_on_every_service() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("spillway.toml"), stack_text())
        .unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let ep = running.http_addr().unwrap_or_else(|| panic!("no endpoint"));
    let api = running.api_addr("web").unwrap_or_else(|| panic!("no api"));
    let now = spillway_identity::time::now();
    let target = "secretsmanager.DescribeSecret";
    let all = ["content-type", "x-amz-target"];

    // The signer works: everything signed, DescribeSecret answers.
    let (status, _, body) = send(ep, &secrets(target, DESCRIBE, &all, now).render(ep)).await;
    assert_eq!(status, 200, "{body}");

    // A request signed over host and x-amz-date only, replayed with X-Amz-Target naming
    // DeleteSecret: refused, and the secret is still there.
    let replayed = secrets(
        "secretsmanager.DeleteSecret",
        DELETE,
        &["content-type"],
        now,
    );
    let (status, head, body) = send(ep, &replayed.render(ep)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("InvalidSignatureException"), "{body}");
    assert_eq!(
        message(&body),
        "'x-amz-target' must be a 'SignedHeader' in the AWS Authorization."
    );
    assert!(head.contains("x-amzn-requestid: "), "{head}");
    let bare = secrets("secretsmanager.DeleteSecret", DELETE, &[], now);
    let (status, _, body) = send(ep, &bare.render(ep)).await;
    assert_eq!(status, 403, "{body}");
    let (status, _, body) = send(ep, &secrets(target, DESCRIBE, &all, now).render(ep)).await;
    assert_eq!(status, 200, "the secret was deleted: {body}");

    // Content-Type may stay unsigned, as aws-sdk v2 for JavaScript sends it and AWS accepts:
    // it only picks JSON 1.0 or 1.1 (see `auth::required_signed`).
    let (status, _, body) = send(
        ep,
        &secrets(target, DESCRIBE, &["x-amz-target"], now).render(ep),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // STS (query protocol): AWS's SignatureDoesNotMatch in XML.
    let (status, _, body) = send(ep, &sts(vec![], &[], now).render(ep)).await;
    assert_eq!(status, 200, "{body}");
    let extra = vec![("X-Amz-User-Agent", "replayed")];
    let (status, _, body) = send(ep, &sts(extra, &[], now).render(ep)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{body}"
    );
    assert!(
        body.contains(
            "&apos;x-amz-user-agent&apos; must be a &apos;SignedHeader&apos; in the AWS Authorization."
        ),
        "{body}"
    );

    // Lambda: X-Amz-Invocation-Type and X-Amz-Log-Type outside the signature.
    for (header, value) in [
        ("X-Amz-Invocation-Type", "Event"),
        ("X-Amz-Log-Type", "Tail"),
    ] {
        let (status, head, body) =
            send(ep, &lambda(vec![(header, value)], &[], now).render(ep)).await;
        assert_eq!(status, 403, "{header}: {body}");
        assert!(
            head.contains("x-amzn-errortype: invalidsignatureexception"),
            "{head}"
        );
        assert_eq!(
            message(&body),
            format!(
                "'{}' must be a 'SignedHeader' in the AWS Authorization.",
                header.to_ascii_lowercase()
            )
        );
    }

    // API Gateway's AWS_IAM route: the same check, API Gateway's 403 shape.
    let (status, _, body) = send(api, &gateway(vec![], &[], now).render(api)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = send(
        api,
        &gateway(vec![("X-Amz-Security-Token", "x")], &[], now).render(api),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        message(&body),
        "'x-amz-security-token' must be a 'SignedHeader' in the AWS Authorization."
    );

    // Real clients sign what they send: boto3 with LogType=Tail (an x-amz-* header) and
    // Secrets Manager, the aws CLI, awscurl on the IAM route.
    let out = boto3(
        ep,
        "l = boto3.client('lambda', endpoint_url=ep)\n\
         r = l.invoke(FunctionName='py', Payload=b'{}', LogType='Tail')\n\
         assert r['StatusCode'] == 200, r\n\
         assert 'LogResult' in r, r\n\
         sm = boto3.client('secretsmanager', endpoint_url=ep)\n\
         print(json.loads(sm.get_secret_value(SecretId='db')['SecretString'])['username'])",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "app");
    let out = aws_client_env(
        Command::new(require_tool("aws", "awscli")).args([
            "--endpoint-url",
            &format!("http://{ep}"),
            "sts",
            "get-caller-identity",
        ]),
        ALICE.0,
        ALICE.1,
    )
    .output()
    .unwrap_or_else(|e| panic!("aws: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, body) = http_client::awscurl(ALICE, &[&format!("http://{api}/private")]).await;
    assert!(ok, "{body}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_service_keeps_awss_signature_window_and_message() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("spillway.toml"), stack_text())
        .unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let ep = running.http_addr().unwrap_or_else(|| panic!("no endpoint"));
    let api = running.api_addr("web").unwrap_or_else(|| panic!("no api"));
    let now = spillway_identity::time::now();
    let all = ["content-type", "x-amz-target"];
    let target = "secretsmanager.DescribeSecret";
    let (six_ago, six_ahead) = (now - 6 * 60, now + 6 * 60);
    let date = spillway_identity::time::format_amz_date;

    // STS accepts 6 minutes either way, refuses 16 with "- 15 min.".
    for at in [six_ago, six_ahead] {
        let (status, _, body) = send(ep, &sts(vec![], &[], at).render(ep)).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _, body) = send(ep, &sts(vec![], &[], now - 16 * 60).render(ep)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{body}"
    );
    let expected = format!(
        "<Message>Signature expired: {} is now earlier than ",
        date(now - 16 * 60)
    );
    assert!(body.contains(&expected), "{body}");
    assert!(body.contains(" - 15 min.)</Message>"), "{body}");

    // Secrets Manager: 4 minutes old is fine, 6 is not; AWS's words, 403.
    let (status, _, body) = send(
        ep,
        &secrets(target, DESCRIBE, &all, now - 4 * 60).render(ep),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = send(ep, &secrets(target, DESCRIBE, &all, six_ago).render(ep)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("InvalidSignatureException"), "{body}");
    let m = message(&body);
    assert!(
        m.starts_with(&format!(
            "Signature expired: {} is now earlier than ",
            date(six_ago)
        )) && m.ends_with(" - 5 min.)"),
        "{m}"
    );
    let (status, _, body) = send(ep, &secrets(target, DESCRIBE, &all, six_ahead).render(ep)).await;
    assert_eq!(status, 403, "{body}");
    let m = message(&body);
    assert!(
        m.starts_with(&format!(
            "Signature not yet current: {} is still later than ",
            date(six_ahead)
        )) && m.ends_with(" + 5 min.)"),
        "{m}"
    );

    // Lambda and the AWS_IAM route: 5 minutes too.
    let (status, head, body) = send(ep, &lambda(vec![], &[], six_ago).render(ep)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        head.contains("x-amzn-errortype: invalidsignatureexception"),
        "{head}"
    );
    assert!(message(&body).ends_with(" - 5 min.)"), "{body}");
    let (status, _, body) = send(api, &gateway(vec![], &[], six_ago).render(api)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        message(&body).starts_with("Signature expired: ") && body.contains(" - 5 min.)"),
        "{body}"
    );
    let (status, _, body) = send(api, &gateway(vec![], &[], now - 60).render(api)).await;
    assert_eq!(status, 200, "{body}");
    running.shutdown().await;
}
