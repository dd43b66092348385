//! Real DynamoDB clients against the stack's tables: the scripts in tests/tables (boto3's
//! client and resource APIs, the aws CLI, `@aws-sdk/client-dynamodb` with `lib-dynamodb`, and
//! aws-sdk v2's DocumentClient), each asserting DynamoDB's documented answers and errors. They
//! were proven against dynalite first (tests/tables/README.md); here nothing is skipped.

mod common;

use std::process::Command;

use spillway_testkit::{aws_client_env, up_in_process};

const KEY: (&str, &str) = (
    "AKIASPILLWAYADMIN001",
    "YWRtaW4tc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj",
);

const STACK: &str = r#"
[stack]
endpoint = "127.0.0.1:0"
account = "123456789012"

[users.admin]
access_key_id = "AKIASPILLWAYADMIN001"
secret_access_key = "YWRtaW4tc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj"
policies = [{ allow = ["dynamodb:*"], resources = ["*"] }]
"#;

async fn run_script(runner: &[&str], script: &str) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("spillway.toml"), STACK).unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let endpoint = format!(
        "http://{}",
        running.http_addr().unwrap_or_else(|| panic!("no endpoint"))
    );
    let path = common::repo_root().join("tests/tables").join(script);
    let tools = std::env::var("HOME").unwrap_or_default() + "/.cache/spillway/tools/bin";
    let mut cmd = Command::new(runner[0]);
    cmd.args(&runner[1..])
        .arg(&path)
        .arg(&endpoint)
        .env("KEEP_GOING", "1")
        .env(
            "PATH",
            format!("{tools}:{}", std::env::var("PATH").unwrap_or_default()),
        );
    let out = tokio::task::spawn_blocking(move || aws_client_env(&mut cmd, KEY.0, KEY.1).output())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.lines().last().is_some_and(|l| l.starts_with("ok ")),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn boto3_client_api() {
    run_script(&["python3"], "boto3_client.py").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn boto3_resource_api() {
    run_script(&["python3"], "boto3_resource.py").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_cli() {
    run_script(&["bash"], "aws_cli.sh").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_sdk_v3_client_and_document_client() {
    run_script(&["node", "--no-warnings"], "node_v3.mjs").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_sdk_v2_document_client() {
    run_script(&["node", "--no-warnings"], "node_v2.js").await;
}
