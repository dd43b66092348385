#![allow(dead_code)]
//! curl and awscurl as the gateway tests' HTTP clients: run off the async runtime (the gateway
//! and the function host run on it), with the answer's status, headers and body parsed.

use std::process::Command;

use spillway_testkit::require_tool;

pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {} {}", self.status, self.text()))
    }
}

/// Parses `curl -i` output: the last header block (after any `100 Continue`) and the body.
fn parse(raw: &[u8]) -> Answer {
    let mut rest = raw;
    loop {
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header block in {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
        let body = &rest[end + 4..];
        let mut lines = head.lines();
        let status_line = lines.next().unwrap_or("");
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        if (100..200).contains(&status) && body.starts_with(b"HTTP/") {
            rest = body;
            continue;
        }
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        return Answer {
            status,
            headers,
            body: body.to_vec(),
        };
    }
}

async fn run(mut cmd: Command) -> Answer {
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse(&out.stdout)
}

/// `curl -sS -i ARGS...`
pub async fn curl(args: &[&str]) -> Answer {
    let mut cmd = Command::new(require_tool("curl", "curl"));
    cmd.args(["-sS", "-i", "--max-time", "30"]).args(args);
    run(cmd).await
}

/// `awscurl --fail-with-body` signing for `execute-api` with these keys: whether the status
/// was 2xx (awscurl prints no status line), and the body.
pub async fn awscurl(key: (&str, &str), args: &[&str]) -> (bool, String) {
    awscurl_with_env(key, &[], args).await
}

/// `awscurl` as above with more environment, e.g. `REQUESTS_CA_BUNDLE` to trust a
/// certificate (awscurl's HTTP library, requests, reads it).
pub async fn awscurl_with_env(
    key: (&str, &str),
    env: &[(&str, &str)],
    args: &[&str],
) -> (bool, String) {
    let mut cmd = Command::new(require_tool("awscurl", "awscurl (pip)"));
    spillway_testkit::aws_client_env(&mut cmd, key.0, key.1);
    cmd.envs(env.iter().copied());
    cmd.args([
        "--fail-with-body",
        "--service",
        "execute-api",
        "--region",
        "us-east-1",
        "--access_key",
        key.0,
        "--secret_key",
        key.1,
    ])
    .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let code = out.status.code();
    assert!(
        matches!(code, Some(0 | 22)),
        "awscurl failed ({code:?}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        code == Some(0),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}
