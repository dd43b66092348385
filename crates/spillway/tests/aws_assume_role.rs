//! STS AssumeRole scoping a tenant, as report 004 does: alice assumes a role with a session
//! policy that names one tenant's database user; the temporary credentials (with their session
//! token) sign an RDS IAM token with boto3, which logs in through the proxy for that tenant and
//! not for the other. Untrusted callers, too-long sessions and malformed policies are refused
//! with STS's codes.

use std::process::Command;

use spillway_stack::template::Reference;
use spillway_testkit::{require_tool, up_in_process};

const STACK: &str = r#"
[stack]
endpoint = "127.0.0.1:0"
account = "123456789012"

[databases.main]
engine = "postgres"

[secrets.tenant-a]
username = "tenant_a"
password = "pw-a"

[secrets.tenant-b]
username = "tenant_b"
password = "pw-b"

[users.alice]
access_key_id = "AKIASPILLWAYALICE002"
secret_access_key = "YWxpY2Utc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj"
policies = [{ allow = ["sts:AssumeRole"], resources = ["${roles.tenant-access.arn}"] }]

[users.mallory]
access_key_id = "AKIASPILLWAYMALLORY1"
secret_access_key = "bWFsbG9yeS1zZWNyZXQta2V5LTAxMjM0NTY3ODlh"
policies = [{ allow = ["sts:AssumeRole"], resources = ["*"] }]

[roles.tenant-access]
trusted = ["users.alice"]
max_session_duration = "1h"
policies = [{ allow = ["rds-db:connect"], resources = ["${proxies.main.dbuser_arn}/*"] }]

[proxies.main]
database = "main"
listen = "127.0.0.1:0"
auth = [{ secret = "tenant-a", iam = "required" }, { secret = "tenant-b", iam = "required" }]
"#;

const SCRIPT: &str = r#"
import boto3, json, sys
from botocore.exceptions import ClientError
endpoint, port, role, dbuser_arn = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def sts(key, secret):
    return boto3.client('sts', endpoint_url=endpoint, region_name='us-east-1',
                        aws_access_key_id=key, aws_secret_access_key=secret)
def code(f, **kw):
    try:
        f(**kw)
        return 'ok'
    except ClientError as e:
        return e.response['Error']['Code']
alice = sts('AKIASPILLWAYALICE002', 'YWxpY2Utc2VjcmV0LWtleS0wMTIzNDU2Nzg5YWJj')
mallory = sts('AKIASPILLWAYMALLORY1', 'bWFsbG9yeS1zZWNyZXQta2V5LTAxMjM0NTY3ODlh')
policy = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "rds-db:connect", "Resource": dbuser_arn + "/tenant_a"}]})
r = alice.assume_role(RoleArn=role, RoleSessionName='tenant-a', Policy=policy, DurationSeconds=900)
c = r['Credentials']
temp = boto3.Session(aws_access_key_id=c['AccessKeyId'], aws_secret_access_key=c['SecretAccessKey'],
                     aws_session_token=c['SessionToken'], region_name='us-east-1')
print(c['AccessKeyId'][:4], r['AssumedRoleUser']['Arn'])
print(temp.client('sts', endpoint_url=endpoint).get_caller_identity()['Arn'])
rds = temp.client('rds')
print(rds.generate_db_auth_token(DBHostname='127.0.0.1', Port=port, DBUsername='tenant_a'))
print(rds.generate_db_auth_token(DBHostname='127.0.0.1', Port=port, DBUsername='tenant_b'))
print(code(mallory.assume_role, RoleArn=role, RoleSessionName='x1'))
print(code(alice.assume_role, RoleArn=role, RoleSessionName='x2', DurationSeconds=7200))
print(code(alice.assume_role, RoleArn=role, RoleSessionName='x3', Policy='{"Statement": 5}'))
print(code(alice.assume_role, RoleArn=role + 'nope', RoleSessionName='x4'))
"#;

fn psql(port: u16, user: &str, token: &str) -> Result<String, String> {
    let out = Command::new(require_tool("psql", "postgresql-client"))
        .args(["-X", "-At", "-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-U", user, "-d", "main", "-c", "SELECT current_user"])
        .env("PGPASSWORD", token)
        .env("PGSSLMODE", "disable")
        .output()
        .unwrap_or_else(|e| panic!("psql: {e}"));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn assumed_role_sessions_are_scoped_by_their_session_policy() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("spillway.toml"), STACK).unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let endpoint = format!(
        "http://{}",
        running.http_addr().unwrap_or_else(|| panic!("no endpoint"))
    );
    let port = running
        .proxy_addr("main")
        .map(|a| a.port())
        .unwrap_or_default();
    let get = |kind, name, attr| {
        running
            .lookup(Reference { kind, name, attr })
            .unwrap_or_else(|| panic!("{kind}.{name}.{attr}"))
    };
    let role = get("roles", "tenant-access", "arn");
    let dbuser = get("proxies", "main", "dbuser_arn");
    let out = Command::new("python3")
        .args(["-c", SCRIPT, &endpoint, &port.to_string(), &role, &dbuser])
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    let session_arn = "arn:aws:sts::123456789012:assumed-role/tenant-access/tenant-a";
    assert_eq!(lines[0], format!("ASIA {session_arn}"));
    assert_eq!(lines[1], session_arn);
    assert!(lines[2].contains("X-Amz-Security-Token="), "{}", lines[2]);
    assert_eq!(psql(port, "tenant_a", lines[2]).as_deref(), Ok("tenant_a"));
    let refused = psql(port, "tenant_b", lines[3]);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("password authentication failed")),
        "the session policy should keep tenant_b out: {refused:?}"
    );
    assert_eq!(
        &lines[4..8],
        [
            "AccessDenied",
            "ValidationError",
            "MalformedPolicyDocument",
            "AccessDenied"
        ]
    );
    running.shutdown().await;
}
