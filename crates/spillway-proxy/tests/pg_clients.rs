//! The PostgreSQL proxy against real clients: psql, pgbench, tokio-postgres. Each test runs its
//! own managed PostgreSQL and proxy (spillway in-process) on ports chosen by the kernel.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use spillway_testkit::{ProxyStack, require_tool};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

async fn connect(conn_str: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(conn_str, NoTls)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(conn);
    client
}

fn psql(stack: &ProxyStack, password: &str, args: &[&str]) -> std::process::Output {
    Command::new(require_tool("psql", "postgresql-client"))
        .args([
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            &stack.port().to_string(),
            "-U",
            "app",
            "-d",
            "main",
        ])
        .args(args)
        .env("PGPASSWORD", password)
        .output()
        .unwrap_or_else(|e| panic!("psql: {e}"))
}

/// Runs pgbench through the proxy, ended after two minutes (a deadlocked run fails the test
/// instead of hanging it).
fn pgbench(stack: &ProxyStack, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .arg("120")
        .arg(require_tool("pgbench", "postgresql-contrib"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &stack.port().to_string(),
            "-U",
            "app",
        ])
        .args(args)
        .arg("main")
        .env("PGPASSWORD", "app-password")
        .output()
        .unwrap_or_else(|e| panic!("pgbench: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pgbench {args:?} failed:\n{text}");
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_logs_in_with_scram_and_bad_passwords_get_28p01() {
    let stack = ProxyStack::start("").await;
    let out = psql(
        &stack,
        "app-password",
        &["-c", "SELECT current_user || ' ' || current_database()"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "app main");

    let out = psql(&stack, "wrong", &["-c", "SELECT 1"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("password authentication failed for user \"app\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An unknown user gets exactly the same answer.
    let bad_user = stack.conn_str().replace("user=app", "user=nobody");
    let err = tokio_postgres::connect(&bad_user, NoTls)
        .await
        .err()
        .and_then(|e| e.code().cloned());
    assert_eq!(err, Some(SqlState::INVALID_PASSWORD));
    assert_eq!(stack.metric("ClientConnectionsSetupFailedAuth").await, 2.0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pgbench_in_every_query_mode_and_with_a_connection_per_transaction() {
    let stack = ProxyStack::start("max_connections = 4").await;
    // -i loads its tables with COPY through the proxy.
    pgbench(&stack, &["-i", "-s", "1", "-q"]);
    // TPC-B (BEGIN ... END) with 16 clients on 4 server connections.
    for mode in ["simple", "extended"] {
        let out = pgbench(&stack, &["-c", "16", "-j", "2", "-t", "200", "-M", mode]);
        assert!(
            out.contains("number of failed transactions: 0"),
            "{mode}:\n{out}"
        );
        assert!(
            out.contains("number of transactions actually processed: 3200/3200"),
            "{mode}:\n{out}"
        );
    }
    // Prepared: select-only, and TPC-B with 8 clients per thread on 4 connections. pgbench
    // prepares synchronously on first use, blocking its thread while sibling clients hold
    // every connection mid-transaction: a pooler that needs a connection for that Parse
    // deadlocks (issue 16, item 10); the proxy answers a known statement's Parse itself.
    for script in ["-S", "-N", "-b tpcb-like"] {
        let mut args = vec!["-c", "16", "-j", "2", "-t", "200", "-M", "prepared"];
        args.extend(script.split(' '));
        let out = pgbench(&stack, &args);
        assert!(
            out.contains("number of transactions actually processed: 3200/3200"),
            "{script}:\n{out}"
        );
    }
    let out = pgbench(&stack, &["-c", "4", "-j", "2", "-t", "25", "-S", "-C"]);
    assert!(
        out.contains("number of transactions actually processed: 100/100"),
        "{out}"
    );
    // 16 clients shared at most 4 server connections, none of them pinned.
    assert!(stack.metric("DatabaseConnections").await <= 4.0);
    assert_eq!(stack.metric("DatabaseConnectionsPinnedTotal").await, 0.0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tokio_postgres_prepared_statements_work_across_server_connections() {
    let stack = ProxyStack::start("max_connections = 2").await;
    let setup = connect(&stack.conn_str()).await;
    setup
        .batch_execute("CREATE TABLE kv (k int PRIMARY KEY, v text)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut tasks = Vec::new();
    for c in 0..20 {
        let conn_str = stack.conn_str();
        tasks.push(tokio::spawn(async move {
            let client = connect(&conn_str).await;
            let insert = client
                .prepare("INSERT INTO kv (k, v) VALUES ($1, $2)")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let select = client
                .prepare("SELECT v FROM kv WHERE k = $1")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            for i in 0..25 {
                let k: i32 = c * 1000 + i;
                client
                    .execute(&insert, &[&k, &format!("v{k}")])
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let v: String = client
                    .query_one(&select, &[&k])
                    .await
                    .map(|r| r.get(0))
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(v, format!("v{k}"));
            }
            // A transaction keeps one server connection from BEGIN to COMMIT.
            let mut client = client;
            let tx = client.transaction().await.unwrap_or_else(|e| panic!("{e}"));
            let a: i32 = tx
                .query_one("SELECT pg_backend_pid()", &[])
                .await
                .map(|r| r.get(0))
                .unwrap_or_else(|e| panic!("{e}"));
            tokio::time::sleep(Duration::from_millis(5)).await;
            let b: i32 = tx
                .query_one("SELECT pg_backend_pid()", &[])
                .await
                .map(|r| r.get(0))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(a, b, "a transaction moved between server connections");
            tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
        }));
    }
    for t in tasks {
        t.await.unwrap_or_else(|e| panic!("{e}"));
    }
    let n: i64 = setup
        .query_one("SELECT count(*) FROM kv", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or_default();
    assert_eq!(n, 500);
    assert!(stack.metric("DatabaseConnections").await <= 2.0);
    assert_eq!(stack.metric("DatabaseConnectionsPinnedTotal").await, 0.0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_clients_share_a_pool_of_two() {
    let stack = ProxyStack::start("max_connections = 2").await;
    let conn_str = Arc::new(stack.conn_str());
    let mut tasks = Vec::new();
    for c in 0..200i32 {
        let conn_str = Arc::clone(&conn_str);
        tasks.push(tokio::spawn(async move {
            let client = connect(&conn_str).await;
            for i in 0..5i32 {
                let v: i32 = client
                    .query_one("SELECT $1::int + $2::int", &[&c, &i])
                    .await
                    .map(|r| r.get(0))
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(v, c + i);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(stack.metric("DatabaseConnections").await <= 2.0);
    assert_eq!(stack.metric("ClientConnectionsSetupSucceeded").await, 200.0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn session_state_pins_and_the_variable_set_filter() {
    let stack = ProxyStack::start("max_connections = 4").await;
    let plain = connect(&stack.conn_str()).await;
    plain
        .simple_query("SELECT 1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stack.metric("DatabaseConnectionsPinnedTotal").await, 0.0);

    let mut pinned = Vec::new();
    for (i, sql) in [
        "SET search_path = public",
        "LISTEN jobs",
        "CREATE TEMP TABLE t (x int)",
        "SELECT pg_advisory_lock(7)",
    ]
    .iter()
    .enumerate()
    {
        let c = connect(&stack.conn_str()).await;
        c.simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(
            stack.metric("DatabaseConnectionsPinnedTotal").await,
            (i + 1) as f64,
            "{sql}"
        );
        // Pinned: every later transaction runs on the same backend.
        let a: i32 = c
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map(|r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let b: i32 = c
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map(|r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(a, b, "{sql}");
        pinned.push(c);
    }
    assert_eq!(
        stack
            .metric("DatabaseConnectionsCurrentlySessionPinned")
            .await,
        4.0
    );
    drop(pinned);
    // Pinned connections are reset (DISCARD ALL) and returned when their clients leave.
    assert!(
        spillway_testkit::eventually_async(Duration::from_secs(10), || async {
            stack
                .metric("DatabaseConnectionsCurrentlySessionPinned")
                .await
                == 0.0
        })
        .await,
        "pinned connections were not released"
    );
    stack.stop().await;

    let stack = ProxyStack::start("session_pinning_filters = [\"exclude_variable_sets\"]").await;
    let c = connect(&stack.conn_str()).await;
    c.simple_query("SET application_name = 'filtered'")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stack.metric("DatabaseConnectionsPinnedTotal").await, 0.0);
    c.simple_query("LISTEN still_pins")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stack.metric("DatabaseConnectionsPinnedTotal").await, 1.0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_client_gets_an_error_at_the_borrow_timeout() {
    let stack = ProxyStack::start("max_connections = 1\nconnection_borrow_timeout = \"1s\"").await;
    let mut holder = connect(&stack.conn_str()).await;
    let tx = holder.transaction().await.unwrap_or_else(|e| panic!("{e}"));
    tx.query_one("SELECT 1", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let waiter = connect(&stack.conn_str()).await;
    let err = waiter.simple_query("SELECT 2").await.err();
    let code = err.as_ref().and_then(|e| e.code().cloned());
    assert_eq!(code, Some(SqlState::TOO_MANY_CONNECTIONS), "{err:?}");
    let message = err
        .as_ref()
        .and_then(|e| e.as_db_error())
        .map(|d| d.message().to_owned())
        .unwrap_or_default();
    assert!(message.contains("connection_borrow_timeout"), "{message}");
    tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
    // Once the holder is done, others are served again.
    let again = connect(&stack.conn_str()).await;
    again
        .simple_query("SELECT 3")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stack.metric("DatabaseConnectionsBorrowTimeouts").await, 1.0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancels_reach_the_right_backend() {
    let stack = ProxyStack::start("").await;
    // A client's own cancel request, through the proxy.
    let client = connect(&stack.conn_str()).await;
    let token = client.cancel_token();
    let sleeper = tokio::spawn(async move {
        client
            .simple_query("SELECT pg_sleep(30)")
            .await
            .err()
            .and_then(|e| e.code().cloned())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    token
        .cancel_query(NoTls)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let code = tokio::time::timeout(Duration::from_secs(10), sleeper)
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    assert_eq!(code, Some(SqlState::QUERY_CANCELED));

    // pg_cancel_backend from another session, straight on the database.
    let mut client = connect(&stack.conn_str()).await;
    let tx = client.transaction().await.unwrap_or_else(|e| panic!("{e}"));
    let pid: i32 = tx
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or_default();
    let admin = connect(&stack.direct_admin_conn_str()).await;
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        admin
            .query_one("SELECT pg_cancel_backend($1)", &[&pid])
            .await
            .map(|r| r.get::<_, bool>(0))
    });
    let code = tx
        .simple_query("SELECT pg_sleep(30)")
        .await
        .err()
        .and_then(|e| e.code().cloned());
    assert_eq!(code, Some(SqlState::QUERY_CANCELED));
    assert_eq!(canceller.await.ok().and_then(Result::ok), Some(true));
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_both_ways_with_psql() {
    let stack = ProxyStack::start("").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let input = dir.path().join("in.csv");
    let rows: String = (0..20_000)
        .map(|i| format!("{i},row {i} {}\n", "x".repeat(40)))
        .collect();
    std::fs::write(&input, &rows).unwrap_or_else(|e| panic!("{e}"));
    let output = dir.path().join("out.csv");
    let script = format!(
        "CREATE TABLE c (id int, t text);\n\\copy c FROM '{}' WITH (FORMAT csv)\n\\copy (SELECT * FROM c ORDER BY id) TO '{}' WITH (FORMAT csv)\nSELECT count(*) FROM c;\n",
        input.display(),
        output.display()
    );
    let out = psql(&stack, "app-password", &["-c", "SELECT 1"]);
    assert!(out.status.success());
    let script_file = dir.path().join("copy.sql");
    std::fs::write(&script_file, script).unwrap_or_else(|e| panic!("{e}"));
    let out = psql(
        &stack,
        "app-password",
        &["-f", &script_file.display().to_string()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("20000"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(std::fs::read_to_string(&output).unwrap_or_default(), rows);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_vanishes_mid_transaction_leaves_no_dirty_connection() {
    let stack = ProxyStack::start("max_connections = 1").await;
    let setup = connect(&stack.conn_str()).await;
    setup
        .batch_execute("CREATE TABLE t (x int)")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    drop(setup);
    {
        let client = connect(&stack.conn_str()).await;
        client
            .batch_execute("BEGIN; INSERT INTO t VALUES (1);")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // Dropped without COMMIT or Terminate ordering guarantees.
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let next = connect(&stack.conn_str()).await;
    let n: i64 = next
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, 0, "the abandoned transaction was not rolled back");
    let in_tx: Option<i64> = next
        .query_one("SELECT txid_current_if_assigned()", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(in_tx, None, "the next client inherited a transaction");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn node_postgres_named_statements_through_transaction_pooling() {
    let stack = ProxyStack::start("max_connections = 3").await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/node/pg_prepared.js");
    let out = tokio::process::Command::new(require_tool("node", "nodejs"))
        .arg(&script)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", stack.port().to_string())
        .env("PGUSER", "app")
        .env("PGPASSWORD", "app-password")
        .env("PGDATABASE", "main")
        .output()
        .await
        .unwrap_or_else(|e| panic!("node: {e}"));
    assert!(
        out.status.success(),
        "node-postgres failed (scripts/test runs npm install in tests/node):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok 30 clients");
    assert!(stack.metric("DatabaseConnections").await <= 3.0);
    assert_eq!(stack.metric("DatabaseConnectionsPinnedTotal").await, 0.0);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlx_prepared_queries_in_a_transaction_pool() {
    let stack = ProxyStack::start("max_connections = 2").await;
    let url = format!(
        "postgres://app:app-password@127.0.0.1:{}/main",
        stack.port()
    );
    // sqlx caches prepared statements per connection; its pool holds 8 client connections
    // that the proxy multiplexes over 2 server connections.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    sqlx::query("CREATE TABLE items (id int PRIMARY KEY, name text)")
        .execute(&pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut tasks = Vec::new();
    for w in 0..8i32 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25i32 {
                let id = w * 100 + i;
                sqlx::query("INSERT INTO items (id, name) VALUES ($1, $2)")
                    .bind(id)
                    .bind(format!("item {id}"))
                    .execute(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let (name,): (String,) = sqlx::query_as("SELECT name FROM items WHERE id = $1")
                    .bind(id)
                    .fetch_one(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(name, format!("item {id}"));
            }
            let mut tx = pool.begin().await.unwrap_or_else(|e| panic!("{e}"));
            let (a,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
                .fetch_one(&mut *tx)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let (b,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
                .fetch_one(&mut *tx)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(a, b, "a transaction moved between server connections");
            tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
        }));
    }
    for t in tasks {
        t.await.unwrap_or_else(|e| panic!("{e}"));
    }
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM items")
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, 200);
    pool.close().await;
    assert!(stack.metric("DatabaseConnections").await <= 2.0);
    assert_eq!(stack.metric("DatabaseConnectionsPinnedTotal").await, 0.0);
    stack.stop().await;
}

/// libpq sends PGTZ as a `timezone` startup parameter: the client gets its time zone on
/// whichever server connection it borrows, and the next client, which asked for none, gets the
/// server's default back on the same (only) connection instead of the previous client's.
#[tokio::test(flavor = "multi_thread")]
async fn startup_time_zones_follow_their_client_and_do_not_leak() {
    let stack = ProxyStack::start("max_connections = 1").await;
    let show = |tz: Option<&str>| {
        let mut cmd = Command::new(require_tool("psql", "postgresql-client"));
        cmd.args([
            "-X",
            "-At",
            "-h",
            "127.0.0.1",
            "-p",
            &stack.port().to_string(),
        ])
        .args(["-U", "app", "-d", "main", "-c", "SHOW TimeZone"])
        .env("PGPASSWORD", "app-password");
        match tz {
            Some(tz) => cmd.env("PGTZ", tz),
            None => cmd.env_remove("PGTZ"),
        };
        let out = cmd.output().unwrap_or_else(|e| panic!("psql: {e}"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let default = show(None);
    assert_ne!(default, "America/New_York");
    assert_eq!(show(Some("America/New_York")), "America/New_York");
    assert_eq!(
        show(None),
        default,
        "the previous client's time zone leaked"
    );
    assert_eq!(show(Some("Asia/Tokyo")), "Asia/Tokyo");
    stack.stop().await;
}
