//! The harness's own promises: private servers start in-process with a login that works and go
//! away without a trace; shared databases are unique and dropped.

use std::process::Command;

use spillway_testkit::{
    PrivateMariadb, PrivatePostgres, SharedServer, processes_mentioning, require_tool,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_private_postgres_serves_its_test_login_and_stops() {
    let init = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(init.path(), "CREATE TABLE seeded (n int); INSERT INTO seeded VALUES (42); GRANT SELECT ON seeded TO test;")
        .unwrap_or_else(|e| panic!("{e}"));
    let pg = PrivatePostgres::start_with_init(vec![init.path().to_path_buf()]).await;
    let (client, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(conn);
    let n: i32 = client
        .query_one("SELECT n FROM seeded", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or_default();
    assert_eq!(n, 42);
    let socket = pg
        .endpoint()
        .socket
        .clone()
        .unwrap_or_default()
        .display()
        .to_string();
    assert!(!processes_mentioning(&format!("-k {socket}")).is_empty());
    pg.stop().await;
    assert!(processes_mentioning(&format!("-k {socket}")).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_mariadb_serves_its_test_login() {
    let my = PrivateMariadb::start().await;
    let out = Command::new(require_tool("mariadb", "mariadb-client"))
        .args([
            "--no-defaults",
            "-N",
            "-h",
            "127.0.0.1",
            "-P",
            &my.port().to_string(),
            "-u",
            "test",
            "--database=test",
            "-e",
            "SELECT 40 + 2",
        ])
        .env("MYSQL_PWD", "test-password")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "42",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    my.stop().await;
}

#[test]
fn shared_databases_are_unique_and_dropped() {
    let name;
    {
        let a = SharedServer::postgres();
        let b = SharedServer::postgres();
        assert_ne!(a.dbname, b.dbname);
        a.sql("CREATE TABLE t (n int)");
        assert_eq!(
            b.sql("SELECT count(*) FROM pg_tables WHERE tablename = 't'")
                .trim(),
            "0"
        );
        name = a.dbname.clone();
    }
    let probe = SharedServer::postgres();
    let left = probe.sql(&format!(
        "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
    ));
    assert_eq!(left.trim(), "0", "the shared database was not dropped");

    let m = SharedServer::mysql();
    m.sql("CREATE TABLE t (n int)");
    assert_eq!(m.sql("SELECT COUNT(*) FROM t").trim(), "0");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_runs_in_process_and_resolves_references() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("spillway.toml"),
        "[stack]\nendpoint = \"127.0.0.1:0\"\n\n[databases.main]\nengine = \"postgres\"\nusers = [\"app\"]\n\n[secrets.app]\nusername = \"app\"\npassword = \"s3cret\"\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let running = spillway_testkit::up_in_process(dir.path()).await;
    let get = |attr| {
        running.lookup(spillway_stack::template::Reference {
            kind: "databases",
            name: "main",
            attr,
        })
    };
    // A managed server is reachable through its socket only; `host` is the socket directory.
    let host = get("host").unwrap_or_default();
    assert_eq!(get("socket").as_deref(), Some(host.as_str()));
    assert_eq!(
        get("url"),
        Some(format!("postgres://spillway@localhost/main?host={host}"))
    );
    let url = format!("host={host} user=app password=s3cret dbname=main");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(conn);
    let one: i32 = client
        .query_one("SELECT 1", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or_default();
    assert_eq!(one, 1);
    running.shutdown().await;
}
