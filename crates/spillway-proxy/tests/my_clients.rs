//! Real MySQL clients through the proxy in front of a managed MariaDB: the mariadb CLI
//! (multi-statements, TLS, IAM tokens with the clear-text plugin), PyMySQL, node mysql2 (text
//! queries, `execute()`'s binary prepared statements from 200 clients over a pool of two, and
//! the two reports' IAM shapes: `@aws-sdk/rds-signer` and aws-sdk v2's `RDS.Signer`),
//! mariadb-slap and sysbench (text and prepared), with the server's own view of how many
//! connections the proxy opened.

mod mysql_common;

use mysql_common::*;
use spillway_testkit::require_tool;

const KEY_ID: &str = "AKIASPILLWAYTEST0001";
const SECRET: &str = "c3BpbGx3YXktdGVzdC1rZXktb25seS0wMTIzNDU2";
const REGION: &str = "us-east-1";

#[tokio::test(flavor = "multi_thread")]
async fn cli_pymysql_mysql2_slap_and_sysbench_share_a_pool_of_two() {
    let stack = stack(&[("app", "app", "app-password")], "max_connections = 2", "").await;
    let port = stack.port();

    // The mariadb CLI asks for multi-statements; each statement's result comes back.
    let out = mariadb(
        port,
        "app",
        "app-password",
        &["shop"],
        "CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT); \
         INSERT INTO notes (body) VALUES ('one'), ('two'); SELECT COUNT(*) FROM notes; \
         SELECT body FROM notes ORDER BY id",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "2\none\ntwo");
    // A bad statement is the server's error, and the connection goes on.
    let out = mariadb(
        port,
        "app",
        "app-password",
        &["shop"],
        "SELECT * FROM nowhere",
    );
    assert!(stderr(&out).contains("ERROR 1146"), "{}", stderr(&out));

    // PyMySQL: parameters (client-side), executemany, a transaction, NULLs and binary data.
    let py = python(
        r#"
import json, sys, pymysql
# binary_prefix: bytes go as _binary'...' literals (PyMySQL 1.x sends them as text otherwise,
# and the server answers them as utf8mb4 text that is not valid UTF-8).
c = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user="app", password="app-password", database="shop", binary_prefix=True)
with c.cursor() as cur:
    cur.executemany("INSERT INTO notes (body) VALUES (%s)", [("three",), (None,), ("fünf",)])
    c.commit()
    cur.execute("SELECT body FROM notes WHERE id > %s ORDER BY id", (2,))
    rows = [r[0] for r in cur.fetchall()]
    cur.execute("SELECT %s", (b"\x00\x01\xff",))
    blob = list(cur.fetchone()[0])
    c.begin(); cur.execute("DELETE FROM notes"); c.rollback()
    cur.execute("SELECT COUNT(*) FROM notes")
    count = cur.fetchone()[0]
print(json.dumps({"rows": rows, "blob": blob, "count": count}))
"#,
        &[&port.to_string()],
    );
    assert_eq!(
        py,
        r#"{"rows": ["three", null, "f\u00fcnf"], "blob": [0, 1, 255], "count": 5}"#
    );

    // mysql2's execute() (binary prepared statements) from 200 clients at once, two server
    // connections between them.
    let (ok, line) = node(
        &[
            "prepared",
            "127.0.0.1",
            &port.to_string(),
            "app",
            "app-password",
            "shop",
            "200",
        ],
        &[],
    );
    assert!(ok, "{line}");
    assert_eq!(line, r#"{"ok":200}"#);
    let seen = server_connections(&stack, "app");
    assert!(
        seen <= 2,
        "the server saw {seen} connections of app for a pool of two"
    );

    // mariadb-slap: concurrent generated load, in a schema of its own that it creates and
    // drops (the app user may, on that name only).
    admin(&stack, "GRANT ALL PRIVILEGES ON slap.* TO 'app'@'%'");
    let out = std::process::Command::new(require_tool("mariadb-slap", "mariadb-client"))
        .args([
            "--no-defaults",
            "-h",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "-u",
            "app",
        ])
        .args([
            "--create-schema=slap",
            "--concurrency=20",
            "--iterations=1",
            "--number-of-queries=400",
            "--auto-generate-sql",
        ])
        .env("MYSQL_PWD", "app-password")
        .output()
        .unwrap_or_else(|e| panic!("mariadb-slap: {e}"));
    assert!(
        out.status.success() && stdout(&out).contains("Number of clients running queries: 20"),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );

    // sysbench's point selects, text and server-side prepared (libmariadb's binary protocol).
    let sysbench = require_tool("sysbench", "sysbench");
    let common = [
        "--db-driver=mysql".to_owned(),
        "--mysql-host=127.0.0.1".to_owned(),
        format!("--mysql-port={port}"),
        "--mysql-user=app".to_owned(),
        "--mysql-password=app-password".to_owned(),
        "--mysql-db=shop".to_owned(),
        "--tables=1".to_owned(),
        "--table-size=500".to_owned(),
    ];
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(&sysbench)
            .arg("oltp_point_select")
            .args(&common)
            .args(extra)
            .output()
            .unwrap_or_else(|e| panic!("sysbench: {e}"));
        assert!(
            out.status.success(),
            "sysbench {extra:?}: {}\n{}",
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    };
    run(&["prepare"]);
    for mode in ["--db-ps-mode=auto", "--db-ps-mode=disable"] {
        let report = run(&["--threads=8", "--events=2000", "--time=0", mode, "run"]);
        assert!(
            report.contains("transactions:                        2000"),
            "{mode}: {report}"
        );
        assert!(
            report.contains("ignored errors:                      0"),
            "{mode}: {report}"
        );
    }
    let seen = server_connections(&stack, "app");
    assert!(
        seen <= 2,
        "the server saw {seen} connections of app for a pool of two"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_tokens_over_tls_from_mysql2_and_the_mariadb_cli() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (cert, key) = certificate(dir.path());
    let stack = stack(
        &[("app", "app", "app-password"), ("ops", "ops", "ops-password")],
        &format!(
            "tls = {{ cert = \"{cert}\", key = \"{key}\" }}\n\
             auth = [{{ secret = \"app\", iam = \"required\" }}, {{ secret = \"ops\" }}]"
        ),
        &format!(
            "[users.signer]\naccess_key_id = \"{KEY_ID}\"\nsecret_access_key = \"{SECRET}\"\n\
             policies = [{{ allow = [\"rds-db:connect\"], resources = [\"${{proxies.main.dbuser_arn}}/app\"] }}]\n"
        ),
    )
    .await;
    let port = stack.port().to_string();
    let env = [
        ("AWS_ACCESS_KEY_ID", KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_REGION", REGION),
    ];
    // Report 001's shape (v3 signer, mysql_clear_password) and report 004's (v2 signer).
    for mode in ["iam-v3", "iam-v2"] {
        let (ok, line) = node(&[mode, "127.0.0.1", &port, "app", REGION, "shop"], &env);
        assert!(ok, "{mode}: {line}");
        assert!(
            line.contains(r#""who":"app@%","db":"shop""#),
            "{mode}: {line}"
        );
    }
    // A token for a user the policy does not name, and a token for a password user.
    let (ok, line) = node(&["iam-v3", "127.0.0.1", &port, "ops", REGION, "shop"], &env);
    assert!(!ok && line.contains(r#""errno":1045"#), "{line}");

    // The mariadb CLI with a token from the aws CLI, over TLS.
    let token = {
        let mut cmd = std::process::Command::new(require_tool("aws", "awscli"));
        cmd.args([
            "rds",
            "generate-db-auth-token",
            "--hostname",
            "127.0.0.1",
            "--port",
            &port,
        ])
        .args(["--username", "app", "--region", REGION]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("aws: {e}"));
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let cleartext = [
        "--ssl",
        "--skip-ssl-verify-server-cert",
        "--enable-cleartext-plugin",
        "shop",
    ];
    let out = mariadb(
        stack.port(),
        "app",
        &token,
        &cleartext,
        "SELECT CURRENT_USER()",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "app@%");
    // The same token without TLS: clear text is refused before it is sent.
    let out = mariadb(
        stack.port(),
        "app",
        &token,
        &["--skip-ssl", "--enable-cleartext-plugin", "shop"],
        "SELECT 1",
    );
    assert!(stderr(&out).contains("ERROR 3159"), "{}", stderr(&out));
    // A tampered token, the secret's password instead of a token, and an unknown user: the
    // same error, which cannot tell them apart.
    let mut tampered = token.clone();
    tampered.push('x');
    for (user, password) in [
        ("app", tampered.as_str()),
        ("app", "app-password"),
        ("nobody", token.as_str()),
    ] {
        let out = mariadb(stack.port(), user, password, &cleartext, "SELECT 1");
        assert!(
            stderr(&out).contains(&format!(
                "ERROR 1045 (28000): Access denied for user '{user}'@'%' (using password: YES)"
            )),
            "{user}: {}",
            stderr(&out)
        );
    }
    // A password user over TLS with the native plugin.
    let out = mariadb(
        stack.port(),
        "ops",
        "ops-password",
        &["--ssl", "--skip-ssl-verify-server-cert", "shop"],
        "SELECT CURRENT_USER()",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "ops@%");
    assert!(stack.metric("ClientConnectionsSetupFailedAuth").await >= 4.0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn require_tls_refuses_plaintext_with_rds_proxys_error() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (cert, key) = certificate(dir.path());
    let stack = stack(
        &[("app", "app", "app-password")],
        &format!(
            "require_tls = true\ntls = {{ cert = \"{cert}\", key = \"{key}\" }}\n\
             auth = [{{ secret = \"app\", client_password_auth = \"mysql-caching-sha2-password\" }}]"
        ),
        "",
    )
    .await;
    let out = mariadb(
        stack.port(),
        "app",
        "app-password",
        &["--skip-ssl", "shop"],
        "SELECT 1",
    );
    assert!(
        stderr(&out).contains("ERROR 3159 (HY000): This RDS Proxy requires TLS connections."),
        "{}",
        stderr(&out)
    );
    let out = mariadb(
        stack.port(),
        "app",
        "app-password",
        &["--ssl", "--skip-ssl-verify-server-cert", "shop"],
        "SELECT @@version_comment IS NOT NULL",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The greeting names caching_sha2_password: PyMySQL answers with it (the fast path) over
    // TLS; the mariadb CLI above answered with its native plugin and was accepted too.
    let py = python(
        r#"
import sys, pymysql
c = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user="app", password="app-password",
                    database="shop", ssl={"check_hostname": False, "verify_mode": 0})
with c.cursor() as cur:
    cur.execute("SELECT 7")
    print(cur.fetchone()[0])
"#,
        &[&stack.port().to_string()],
    );
    assert_eq!(py, "7");
    stack.stop().await;
}

const LOAD_LOCAL: &str = r#"
import json, os, sys, tempfile, pymysql
path = os.path.join(tempfile.mkdtemp(), "rows.csv")
with open(path, "w") as f:
    f.write("".join(f"{i},row {i}\n" for i in range(5000)))
c = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user="app", password="app-password",
                    database="shop", local_infile=True, autocommit=True)
with c.cursor() as cur:
    cur.execute("CREATE TABLE IF NOT EXISTS loaded (id INT PRIMARY KEY, name TEXT)")
    try:
        cur.execute(f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE loaded FIELDS TERMINATED BY ','")
        cur.execute("SELECT COUNT(*), MAX(name) FROM loaded")
        print(json.dumps(list(cur.fetchone())))
    except pymysql.MySQLError as e:
        print(json.dumps({"error": e.args[0]}))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn load_data_local_infile_only_where_the_stack_allows_it() {
    let refused = stack(&[("app", "app", "app-password")], "", "").await;
    assert_eq!(
        python(LOAD_LOCAL, &[&refused.port().to_string()]),
        r#"{"error": 1148}"#
    );
    refused.stop().await;
    let allowed = stack(&[("app", "app", "app-password")], "local_infile = true", "").await;
    assert_eq!(
        python(LOAD_LOCAL, &[&allowed.port().to_string()]),
        r#"[5000, "row 999"]"#
    );
    allowed.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlx_mysql_prepared_queries_from_many_tasks_over_two_connections() {
    use sqlx::Row;
    let stack = stack(&[("app", "app", "app-password")], "max_connections = 2", "").await;
    let url = format!("mysql://app:app-password@127.0.0.1:{}/shop", stack.port());
    // sqlx prepares every query (binary protocol) and caches statements per connection; it
    // asks for DEPRECATE_EOF and session tracking, the forms the proxy passes through as is.
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(20)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    sqlx::query("CREATE TABLE kv (k INT PRIMARY KEY, v VARCHAR(32), at DATETIME(6))")
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut tasks = Vec::new();
    for i in 0..40i32 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut tx = pool.begin().await?;
            sqlx::query("INSERT INTO kv VALUES (?, ?, NOW(6))")
                .bind(i)
                .bind(format!("value {i}"))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            let row = sqlx::query("SELECT v, k * 2 AS twice FROM kv WHERE k = ?")
                .bind(i)
                .fetch_one(&pool)
                .await?;
            let v: String = row.try_get("v")?;
            let twice: i64 = row.try_get("twice")?;
            Ok::<_, sqlx::Error>((v == format!("value {i}")) && twice == i64::from(i) * 2)
        }));
    }
    for t in tasks {
        assert!(
            t.await
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|e| panic!("{e}"))
        );
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kv")
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(count, 40);
    pool.close().await;
    assert!(server_connections(&stack, "app") <= 2);
    stack.stop().await;
}
