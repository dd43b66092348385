//! `spillway proxy --target URL`: the one-line pooler in front of an existing PostgreSQL (the
//! machine's), with real psql and pgbench, and a users file reloaded on SIGHUP.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use spillway_testkit::{SharedServer, Spillway, eventually, require_tool, unique};

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
            // MySQL sessions on two workers too (the pool core is the engines' shared one).
            "--workers",
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

/// A metric's value from the Prometheus text at `url` (the sum over its label sets).
fn metric(url: &str, name: &str) -> f64 {
    let out = Command::new(require_tool("curl", "curl"))
        .args(["-s", "--max-time", "10", url])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn two_workers_serve_clients_on_one_port_and_share_the_cap() {
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
            "3",
            "--workers",
            "2",
            "--metrics",
            "127.0.0.1:0",
        ],
        dir.path(),
    );
    let port = port_from(&p.wait_for("proxy listening on", Duration::from_secs(30)));
    let metrics_line = p.wait_for("metrics on", Duration::from_secs(10));
    let metrics_url = metrics_line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no metrics address in {metrics_line:?}"))
        .to_owned();
    // Two proxy threads run (the kernel shows at most 15 bytes of a thread's name; a new
    // thread names itself once it runs, so look until it has).
    let proxy_threads = || {
        std::fs::read_dir(format!("/proc/{}/task", p.pid()))
            .map(|tasks| {
                tasks
                    .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                    .filter(|name| name.starts_with("spillway-proxy"))
                    .count()
            })
            .unwrap_or(0)
    };
    assert!(
        eventually(Duration::from_secs(10), || proxy_threads() == 2),
        "proxy threads: {}",
        proxy_threads()
    );

    let (user, password) = ("spillway_test", "spillway_test");
    let pgbench = |args: &[&str]| {
        Command::new(require_tool("pgbench", "postgresql-contrib"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", user])
            .args(args)
            .arg(&db.dbname)
            .env("PGPASSWORD", password)
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let init = pgbench(&["-i", "-s", "1", "-q"]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    // 32 clients: the kernel's hash puts all of them on one worker's socket with odds of one
    // in two billion, so both workers serve sessions, over the three connections they share.
    let run = pgbench(&["-c", "32", "-j", "4", "-t", "50"]);
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        text.contains("number of transactions actually processed: 1600/1600"),
        "{text}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // Every TPC-B transaction landed whole: the balances add up to the history's deltas.
    let out = psql(
        port,
        user,
        password,
        &db.dbname,
        "SELECT (SELECT count(*) FROM pgbench_history), \
         (SELECT sum(abalance) FROM pgbench_accounts) = (SELECT sum(delta) FROM pgbench_history)",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1600|t",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let opened = metric(&metrics_url, "spillway_proxy_DatabaseConnectionRequests");
    let moved = metric(
        &metrics_url,
        "spillway_proxy_DatabaseConnectionsMovedBetweenWorkers",
    );
    assert!(
        (1.0..=3.0).contains(&opened),
        "one cap for both workers: {opened} connections opened"
    );
    assert!(
        moved >= 1.0,
        "sessions on both workers shared the connections: {moved} moves"
    );
    p.signal(Signal::SIGINT);
    assert!(
        p.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        p.output()
    );
}
