//! `spillway proxy --target URL`: the one-line pooler in front of an existing PostgreSQL (the
//! machine's), with real psql and pgbench, and a users file reloaded on SIGHUP.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use spillway_testkit::{SharedServer, Spillway, require_tool, unique};

fn psql(port: u16, user: &str, password: &str, db: &str, sql: &str) -> std::process::Output {
    Command::new(require_tool("psql", "postgresql-client"))
        .args([
            "-X",
            "-A",
            "-t",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            user,
            "-d",
            db,
            "-c",
            sql,
        ])
        .env("PGPASSWORD", password)
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn port_from(line: &str) -> u16 {
    line.rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

#[test]
fn one_line_mode_pools_for_the_target_user_and_reloads_users_on_sighup() {
    let db = SharedServer::postgres();
    let url = db.url();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut p = Spillway::start(
        &binary(),
        &[
            "proxy",
            "--target",
            &url,
            "--listen",
            "127.0.0.1:0",
            "--pool-size",
            "2",
            "--metrics",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    let port = port_from(&p.wait_for("proxy listening on", Duration::from_secs(30)));
    let (user, password) = ("spillway_test", "spillway_test");
    let out = psql(
        port,
        user,
        password,
        &db.dbname,
        "SELECT current_database()",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), db.dbname);

    let bench = Command::new(require_tool("pgbench", "postgresql-contrib"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            user,
            "-i",
            "-s",
            "1",
            "-q",
            &db.dbname,
        ])
        .env("PGPASSWORD", password)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        bench.status.success(),
        "{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    let bench = Command::new(require_tool("pgbench", "postgresql-contrib"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            user,
            "-c",
            "10",
            "-j",
            "2",
            "-t",
            "100",
            "-S",
            &db.dbname,
        ])
        .env("PGPASSWORD", password)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&bench.stdout);
    assert!(
        text.contains("number of transactions actually processed: 1000/1000"),
        "{text}{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    p.signal(Signal::SIGINT);
    assert!(
        p.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        p.output()
    );

    // A users file, then a second user added while running.
    let role = unique("spw_role");
    db.sql(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'role-pw'; GRANT CONNECT ON DATABASE {} TO {role}",
        db.dbname
    ));
    let users = dir.path().join("users.txt");
    std::fs::write(&users, format!("\"{user}\" \"{password}\"\n"))
        .unwrap_or_else(|e| panic!("{e}"));
    let users_arg = users.display().to_string();
    let mut p = Spillway::start(
        &binary(),
        &[
            "proxy",
            "--target",
            &url,
            "--listen",
            "127.0.0.1:0",
            "--users",
            &users_arg,
        ],
        dir.path(),
    );
    let port = port_from(&p.wait_for("proxy listening on", Duration::from_secs(30)));
    let out = psql(port, &role, "role-pw", &db.dbname, "SELECT current_user");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("password authentication failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        &users,
        format!("\"{user}\" \"{password}\"\n\"{role}\" \"role-pw\"\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    p.signal(Signal::SIGHUP);
    p.wait_for("reloaded", Duration::from_secs(10));
    let out = psql(port, &role, "role-pw", &db.dbname, "SELECT current_user");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        role,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.signal(Signal::SIGTERM);
    assert!(
        p.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        p.output()
    );
    db.sql(&format!("DROP OWNED BY {role}; DROP ROLE {role}"));
}

#[test]
fn one_line_mode_rejects_a_bad_target_with_exit_2() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = run(
        &["proxy", "--target", "not a url", "--listen", "127.0.0.1:0"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--target"), "{}", stderr(&out));
    let out = run(&["proxy"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn one_line_mode_for_mysql_pools_in_front_of_the_machines_mariadb() {
    let db = SharedServer::mysql();
    let url = db.url();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut p = Spillway::start(
        &binary(),
        &[
            "proxy",
            "--target",
            &url,
            "--listen",
            "127.0.0.1:0",
            "--pool-size",
            "2",
            "--metrics",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    let port = port_from(&p.wait_for("proxy listening on", Duration::from_secs(30)));
    let mariadb = |sql: &str| {
        Command::new(require_tool("mariadb", "mariadb-client"))
            .args([
                "--no-defaults",
                "-N",
                "-B",
                "-h",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ])
            .args(["-u", "spillway_test", &db.dbname, "-e", sql])
            .env("MYSQL_PWD", "spillway_test")
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let out =
        mariadb("CREATE TABLE t (i INT); INSERT INTO t VALUES (1), (2); SELECT SUM(i) FROM t");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
    let out = mariadb("SELECT 1");
    assert!(out.status.success());
    let bad = Command::new(require_tool("mariadb", "mariadb-client"))
        .args(["--no-defaults", "-h", "127.0.0.1", "-P", &port.to_string()])
        .args(["-u", "spillway_test", &db.dbname, "-e", "SELECT 1"])
        .env("MYSQL_PWD", "wrong")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("ERROR 1045 (28000)"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    p.signal(Signal::SIGINT);
    assert!(
        p.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        p.output()
    );
}
