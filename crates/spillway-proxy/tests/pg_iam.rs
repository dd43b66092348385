//! RDS IAM authentication through the proxy, with tokens made by the real signers (boto3's
//! generate_db_auth_token, `aws rds generate-db-auth-token`, `@aws-sdk/rds-signer`) and used
//! as psql's password; tampered tokens, tokens for another user, host or region, and the
//! secret's password (with `iam = "required"`) are refused with SQLSTATE 28P01.

use std::process::Command;

use spillway_testkit::{ProxyStack, aws_client_env, require_tool};

const KEY_ID: &str = "AKIASPILLWAYTEST0001";
const SECRET: &str = "c3BpbGx3YXktdGVzdC1rZXktb25seS0wMTIzNDU2";
const REGION: &str = "us-east-1";

fn stack_text() -> String {
    format!(
        r#"
[stack]
endpoint = "127.0.0.1:0"

[databases.main]
engine = "postgres"

[secrets.app]
username = "app"
password = "app-password"

[secrets.ops]
username = "ops"
password = "ops-password"

[users.signer]
access_key_id = "{KEY_ID}"
secret_access_key = "{SECRET}"
policies = [{{ allow = ["rds-db:connect"], resources = ["${{proxies.main.dbuser_arn}}/app"] }}]

[proxies.main]
database = "main"
listen = "127.0.0.1:0"
auth = [{{ secret = "app", iam = "required" }}, {{ secret = "ops", iam = "required" }}]
"#
    )
}

fn aws_env(cmd: &mut Command) -> &mut Command {
    aws_client_env(cmd, KEY_ID, SECRET)
}

fn output(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn boto3_token(host: &str, port: u16, user: &str, region: &str) -> String {
    let script = "import boto3, sys\n\
                  h, p, u, r = sys.argv[1:5]\n\
                  c = boto3.client('rds', region_name=r)\n\
                  print(c.generate_db_auth_token(DBHostname=h, Port=int(p), DBUsername=u), end='')";
    output(
        aws_env(Command::new("python3").args([
            "-c",
            script,
            host,
            &port.to_string(),
            user,
            region,
        ])),
        "boto3 generate_db_auth_token (scripts/test installs boto3)",
    )
}

fn cli_token(port: u16, user: &str) -> String {
    output(
        aws_env(Command::new(require_tool("aws", "awscli")).args([
            "rds",
            "generate-db-auth-token",
            "--hostname",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--username",
            user,
            "--region",
            REGION,
        ])),
        "aws rds generate-db-auth-token",
    )
}

fn node_token(port: u16, user: &str) -> String {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/node/rds_token.js");
    output(
        aws_env(Command::new("node").arg(script).args([
            "127.0.0.1",
            &port.to_string(),
            user,
            REGION,
        ])),
        "@aws-sdk/rds-signer (scripts/test runs npm ci in tests/node)",
    )
}

/// psql through the proxy with `password`; Ok(current_user) or Err(stderr).
fn psql(port: u16, user: &str, password: &str) -> Result<String, String> {
    let out = Command::new(require_tool("psql", "postgresql-client"))
        .args(["-X", "-At", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-U", user, "-d", "main", "-c", "SELECT current_user"])
        .env("PGPASSWORD", password)
        .env("PGSSLMODE", "disable")
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .unwrap_or_else(|e| panic!("psql: {e}"));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn refused(result: Result<String, String>, what: &str) {
    match result {
        Ok(user) => panic!("{what} was accepted (logged in as {user})"),
        Err(e) => assert!(
            e.contains("password authentication failed"),
            "{what}: expected 28P01, got {e}"
        ),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_from_real_signers_log_in_and_bad_ones_do_not() {
    let stack = ProxyStack::from_toml(&stack_text()).await;
    let port = stack.port();

    // Each real signer's token is accepted as the password, by psql.
    let token = boto3_token("127.0.0.1", port, "app", REGION);
    assert!(token.starts_with(&format!("127.0.0.1:{port}/?")), "{token}");
    assert_eq!(psql(port, "app", &token).as_deref(), Ok("app"));
    // A token is good for 15 minutes, not for one login.
    assert_eq!(psql(port, "app", &token).as_deref(), Ok("app"));
    assert_eq!(
        psql(port, "app", &cli_token(port, "app")).as_deref(),
        Ok("app")
    );
    assert_eq!(
        psql(port, "app", &node_token(port, "app")).as_deref(),
        Ok("app")
    );
    let localhost = boto3_token("localhost", port, "app", REGION);
    assert_eq!(psql(port, "app", &localhost).as_deref(), Ok("app"));

    // Refused: tampered, another user's token, a user the policy does not cover, another
    // port, another region, and the secret's password (IAM is required).
    let sig_at = token.find("X-Amz-Signature=").unwrap_or(0) + "X-Amz-Signature=".len();
    let mut tampered = token.clone().into_bytes();
    tampered[sig_at] = if tampered[sig_at] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap_or_default();
    refused(psql(port, "app", &tampered), "a tampered token");
    refused(psql(port, "ops", &token), "app's token used for ops");
    refused(
        psql(port, "ops", &boto3_token("127.0.0.1", port, "ops", REGION)),
        "a token for a user the policy does not allow",
    );
    refused(
        psql(
            port,
            "app",
            &boto3_token("127.0.0.1", port + 1, "app", REGION),
        ),
        "a token for another port",
    );
    refused(
        psql(
            port,
            "app",
            &boto3_token("127.0.0.1", port, "app", "eu-west-1"),
        ),
        "a token for another region",
    );
    refused(
        psql(port, "app", "app-password"),
        "the password when IAM is required",
    );
    assert!(stack.metric("ClientConnectionsSetupFailedAuth").await >= 6.0);
    stack.stop().await;
}
