//! A rotated secret reaches the proxy: after the database user's password is changed and the
//! new value is put into Secrets Manager (what a rotation function does), clients log in with
//! the new password, new server connections use it, and the old password is refused.

use std::process::Command;

use spillway_testkit::up_in_process;

const STACK: &str = r#"
[stack]
endpoint = "127.0.0.1:0"

[databases.main]
engine = "postgres"

[secrets.db-app]
username = "app"
password = "old-password"

[users.rotator]
access_key_id = "AKIASPILLWAYROTATOR1"
secret_access_key = "cm90YXRvci1zZWNyZXQta2V5LTAxMjM0NTY3ODlh"
policies = [{ allow = ["secretsmanager:PutSecretValue"], resources = ["${secrets.db-app.arn}"] }]

[proxies.main]
database = "main"
listen = "127.0.0.1:0"
auth = [{ secret = "db-app" }]
"#;

async fn login(port: u16, password: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=app password={password} dbname=main"),
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(conn);
    Ok(client)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_secret_is_picked_up_by_new_connections() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("spillway.toml"), STACK).unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let port = running
        .proxy_addr("main")
        .map(|a| a.port())
        .unwrap_or_default();
    let endpoint = format!(
        "http://{}",
        running.http_addr().unwrap_or_else(|| panic!("no endpoint"))
    );
    let client = login(port, "old-password")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    client
        .simple_query("SELECT 1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // The rotation: the database first, then the secret (through the real SDK).
    let db = running
        .databases()
        .next()
        .unwrap_or_else(|| panic!("no database"))
        .clone();
    let admin_pw = std::fs::read_to_string(db.admin_password_file.clone().unwrap_or_default())
        .unwrap_or_default();
    let (admin, conn) = tokio_postgres::connect(
        &format!(
            "host={} port={} user={} password={} dbname=main",
            db.host,
            db.port,
            db.admin_user,
            admin_pw.trim()
        ),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(conn);
    admin
        .batch_execute("ALTER ROLE app PASSWORD 'new-password'")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new("python3")
        .args([
            "-c",
            "import boto3, json, sys\n\
             sm = boto3.client('secretsmanager', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
             \x20   aws_access_key_id='AKIASPILLWAYROTATOR1', aws_secret_access_key='cm90YXRvci1zZWNyZXQta2V5LTAxMjM0NTY3ODlh')\n\
             sm.put_secret_value(SecretId='db-app', SecretString=json.dumps({'username': 'app', 'password': 'new-password'}))",
            &endpoint,
        ])
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Terminate the server connections opened with the old password (as a restart would), so
    // the next ones must be opened with the new one.
    admin
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app'",
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut worked = false;
    for _ in 0..3 {
        // The first client may meet a pooled server connection that was just terminated (and
        // is closed with 08006, as after a database restart); the pool then starts afresh.
        let fresh = login(port, "new-password")
            .await
            .unwrap_or_else(|e| panic!("new password refused: {e}"));
        if fresh.simple_query("SELECT 1").await.is_ok() {
            worked = true;
            break;
        }
    }
    assert!(worked, "no server connection with the rotated password");
    let old = login(port, "old-password")
        .await
        .err()
        .and_then(|e| e.code().cloned());
    assert_eq!(old, Some(tokio_postgres::error::SqlState::INVALID_PASSWORD));
    running.shutdown().await;
}

const TWO_USERS: &str = r#"
[stack]
endpoint = "127.0.0.1:0"

[databases.main]
engine = "postgres"
users = ["usera", "userb"]

[secrets.usera]
username = "usera"
password = "password-a"

[secrets.userb]
username = "userb"
password = "password-b"

[users.rotator]
access_key_id = "AKIASPILLWAYROTATOR1"
secret_access_key = "cm90YXRvci1zZWNyZXQta2V5LTAxMjM0NTY3ODlh"
policies = [{ allow = ["secretsmanager:PutSecretValue"], resources = ["${secrets.usera.arn}"] }]

[proxies.main]
database = "main"
listen = "127.0.0.1:0"
auth = [{ secret = "usera" }, { secret = "userb" }]
"#;

async fn login_as(
    port: u16,
    user: &str,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user={user} password={password} dbname=main"),
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(conn);
    Ok(client)
}

/// A caller allowed to write only usera's secret writes userb's name into it. The proxy must
/// not let that password log in as userb: a secret stands for the user it named at start.
#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_secret_cannot_name_another_user() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("spillway.toml"), TWO_USERS).unwrap_or_else(|e| panic!("{e}"));
    let running = up_in_process(dir.path()).await;
    let port = running
        .proxy_addr("main")
        .map(|a| a.port())
        .unwrap_or_default();
    let endpoint = format!(
        "http://{}",
        running.http_addr().unwrap_or_else(|| panic!("no endpoint"))
    );
    // userb has been here before: its pool holds a server connection (and the proxy knows the
    // server's parameters), so a client the proxy accepts as userb gets a session at once.
    let before = login_as(port, "userb", "password-b")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    before
        .simple_query("SELECT 1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    drop(before);
    let out = Command::new("python3")
        .args([
            "-c",
            "import boto3, json, sys\n\
             sm = boto3.client('secretsmanager', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
             \x20   aws_access_key_id='AKIASPILLWAYROTATOR1', aws_secret_access_key='cm90YXRvci1zZWNyZXQta2V5LTAxMjM0NTY3ODlh')\n\
             sm.put_secret_value(SecretId='usera', SecretString=json.dumps({'username': 'userb', 'password': 'x'}))",
            &endpoint,
        ])
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    match login_as(port, "userb", "x").await {
        Ok(c) => {
            let who = c.simple_query("SELECT current_user").await;
            panic!("the password written into usera's secret logged in as userb: {who:?}");
        }
        Err(e) => assert_eq!(
            e.code(),
            Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD),
            "{e}"
        ),
    }
    // userb keeps its own password, towards the client and the server.
    let b = login_as(port, "userb", "password-b")
        .await
        .unwrap_or_else(|e| panic!("userb's own password refused: {e}"));
    b.simple_query("SELECT 1")
        .await
        .unwrap_or_else(|e| panic!("userb's server login: {e}"));
    // And usera is unchanged: the value was ignored, not half applied.
    let a = login_as(port, "usera", "password-a")
        .await
        .unwrap_or_else(|e| panic!("usera's password refused: {e}"));
    a.simple_query("SELECT 1")
        .await
        .unwrap_or_else(|e| panic!("usera's server login: {e}"));
    running.shutdown().await;
}
