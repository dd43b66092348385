//! `spillway up` with managed readers (`readers = 2`) behind a proxy's read-only endpoint, for
//! MariaDB and PostgreSQL, checked with the engines' own clients: a row written through the
//! read-write endpoint is read back through the read-only one, a write there fails with the
//! engine's read-only error (so it landed on a replica), and a restart keeps the replicas
//! (their data, and replication still running).

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use spillway_testkit::{Spillway, eventually, free_port, processes_mentioning, require_tool};

const START: Duration = Duration::from_secs(180);
const REPLICATION: Duration = Duration::from_secs(60);

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stack_file(engine: &str, rw: u16, ro: u16) -> String {
    format!(
        r#"
[stack]
name = "readers"
endpoint = "127.0.0.1:0"

[databases.main]
engine = "{engine}"
name = "shop"
readers = 2
init = ["sql/schema.sql"]
users = ["app"]

[secrets.app]
username = "app"
password = "app-password-1"

[proxies.main]
database = "main"
listen = "127.0.0.1:{rw}"
auth = [{{ secret = "app" }}]

[proxies.main.endpoints.reader]
listen = "127.0.0.1:{ro}"
role = "read-only"
"#
    )
}

fn mariadb(port: u16, sql: &str) -> Output {
    Command::new(require_tool("mariadb", "mariadb-client"))
        .args(["--no-defaults", "-N", "-B", "-h", "127.0.0.1", "-P"])
        .arg(port.to_string())
        .args(["-u", "app", "--database=shop", "-e", sql])
        .env("MYSQL_PWD", "app-password-1")
        .output()
        .unwrap_or_else(|e| panic!("mariadb: {e}"))
}

fn psql(port: u16, sql: &str) -> Output {
    Command::new(require_tool("psql", "postgresql-client"))
        .args([
            "-X",
            "-A",
            "-t",
            "-v",
            "VERBOSITY=verbose",
            "-h",
            "127.0.0.1",
            "-p",
        ])
        .arg(port.to_string())
        .args(["-U", "app", "-d", "shop", "-c", sql])
        .env("PGPASSWORD", "app-password-1")
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .unwrap_or_else(|e| panic!("psql: {e}"))
}

/// One engine's client, its schema and its read-only error.
struct Engine {
    name: &'static str,
    schema: &'static str,
    client: fn(u16, &str) -> Output,
    /// What the client prints when a replica refuses a write.
    read_only_error: &'static str,
    /// SQL answering "1" on a replica.
    is_replica: &'static str,
}

const MARIADB: Engine = Engine {
    name: "mysql",
    schema: "CREATE TABLE notes (id INT PRIMARY KEY, body VARCHAR(64) NOT NULL);\n",
    client: mariadb,
    read_only_error: "ERROR 1290",
    is_replica: "SELECT @@global.read_only",
};

const POSTGRES: Engine = Engine {
    name: "postgres",
    schema: "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT NOT NULL);\n\
             GRANT ALL ON notes TO app;\n",
    client: psql,
    read_only_error: "ERROR:  25006",
    is_replica: "SELECT CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END",
};

fn readers_end_to_end(engine: &Engine) {
    let (rw, ro) = (free_port(), free_port());
    let file = stack_file(engine.name, rw, ro);
    let dir = stack(&[("spillway.toml", &file), ("sql/schema.sql", engine.schema)]);
    let readers_dir = dir
        .path()
        .join(".spillway/databases/main/readers")
        .display()
        .to_string();
    let sql = |port: u16, q: &str| (engine.client)(port, q);
    let rows = |port: u16| {
        let out = sql(port, "SELECT id, body FROM notes ORDER BY id");
        String::from_utf8_lossy(&out.stdout).replace('|', "\t")
    };

    let mut up = Spillway::start(&binary(), &["up"], dir.path());
    up.wait_for("spillway is up", START);
    for i in [1, 2] {
        assert!(
            up.output()
                .contains(&format!("databases.main.readers.{i} ")),
            "{}",
            up.output()
        );
    }

    // Written through the read-write endpoint, read back (eventually) through the read-only one.
    let out = sql(rw, "INSERT INTO notes VALUES (1, 'first')");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        eventually(REPLICATION, || rows(ro) == "1\tfirst\n"),
        "never replicated: {:?}",
        rows(ro)
    );
    // The read-only endpoint lands on a replica: it says so, and it refuses writes with the
    // engine's read-only error. The read-write endpoint is the primary.
    assert_eq!(text(&sql(ro, engine.is_replica)).trim(), "1");
    assert_eq!(text(&sql(rw, engine.is_replica)).trim(), "0");
    let out = sql(ro, "INSERT INTO notes VALUES (2, 'refused')");
    assert!(!out.status.success());
    assert!(
        text(&out).contains(engine.read_only_error),
        "{}",
        text(&out)
    );

    up.signal(Signal::SIGINT);
    assert!(
        up.wait_exit(Duration::from_secs(120)).success(),
        "{}",
        up.output()
    );
    assert!(
        processes_mentioning(&readers_dir).is_empty(),
        "a reader outlived spillway"
    );

    // A restart keeps the readers: no new copy, the old row is there, and replication runs.
    let mut up = Spillway::start(&binary(), &["up"], dir.path());
    up.wait_for("spillway is up", START);
    assert!(
        !up.output().contains("first start of this reader"),
        "{}",
        up.output()
    );
    assert_eq!(rows(ro), "1\tfirst\n");
    let out = sql(rw, "INSERT INTO notes VALUES (3, 'after the restart')");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        eventually(REPLICATION, || rows(ro)
            == "1\tfirst\n3\tafter the restart\n"),
        "replication stopped after the restart: {:?}",
        rows(ro)
    );
    up.signal(Signal::SIGINT);
    assert!(
        up.wait_exit(Duration::from_secs(120)).success(),
        "{}",
        up.output()
    );
    assert!(
        processes_mentioning(&readers_dir).is_empty(),
        "a reader outlived spillway"
    );
}

#[test]
fn mariadb_readers_serve_the_read_only_endpoint_and_survive_a_restart() {
    readers_end_to_end(&MARIADB);
}

#[test]
fn postgres_readers_serve_the_read_only_endpoint_and_survive_a_restart() {
    readers_end_to_end(&POSTGRES);
}

/// The loopback port a MariaDB primary opens for its readers is not a way around the proxy:
/// the stack's users are refused there (root and the replication login keep it).
#[test]
fn mariadb_replication_port_refuses_the_stacks_users() {
    let (rw, ro) = (free_port(), free_port());
    let file = stack_file("mysql", rw, ro).replace("readers = 2", "readers = 1");
    let dir = stack(&[("spillway.toml", &file), ("sql/schema.sql", MARIADB.schema)]);
    let mut up = Spillway::start(&binary(), &["up"], dir.path());
    up.wait_for("spillway is up", START);
    let port: u16 = read_trimmed(&dir.path().join(".spillway/databases/main/port"))
        .parse()
        .unwrap_or_default();
    assert!(port > 0);
    let direct = mariadb(port, "SELECT 1");
    assert!(!direct.status.success(), "{}", text(&direct));
    assert!(text(&direct).contains("ERROR 1045"), "{}", text(&direct));
    // Nor root's: its 127.0.0.1 account is locked while the stack has no TCP, and the socket
    // still lets it in.
    let admin = read_trimmed(&dir.path().join(".spillway/databases/main/admin-password"));
    let root = |args: &[&str]| {
        Command::new(require_tool("mariadb", "mariadb-client"))
            .args(["--no-defaults", "-N", "-B", "-u", "root", "-e", "SELECT 1"])
            .args(args)
            .env("MYSQL_PWD", &admin)
            .output()
            .unwrap_or_else(|e| panic!("mariadb: {e}"))
    };
    let over_tcp = root(&["-h", "127.0.0.1", "-P", &port.to_string()]);
    assert!(!over_tcp.status.success(), "{}", text(&over_tcp));
    assert!(
        text(&over_tcp).contains("ERROR 4151") || text(&over_tcp).contains("ERROR 1045"),
        "{}",
        text(&over_tcp)
    );
    let socket = dir.path().join(".spillway/databases/main/run/mysqld.sock");
    let on_socket = root(&[&format!("--socket={}", socket.display())]);
    assert_eq!(text(&on_socket).trim(), "1");
    // Through the proxy, the same login works.
    let out = mariadb(rw, "SELECT 1");
    assert_eq!(text(&out).trim(), "1");
    up.signal(Signal::SIGINT);
    assert!(
        up.wait_exit(Duration::from_secs(120)).success(),
        "{}",
        up.output()
    );
}

/// Every file in `dir` whose name starts with one of `prefixes` (binary and relay logs).
fn logs_in(dir: &std::path::Path, prefixes: &[&str]) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    prefixes.iter().any(|p| name.starts_with(p))
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// The stack's passwords do not land in the primary's binary log (which the replication login
/// can stream) nor in a reader's relay or binary logs.
#[test]
fn mariadb_binary_logs_hold_no_passwords() {
    let (rw, ro) = (free_port(), free_port());
    let file = stack_file("mysql", rw, ro).replace("readers = 2", "readers = 1");
    let dir = stack(&[("spillway.toml", &file), ("sql/schema.sql", MARIADB.schema)]);
    let state = dir.path().join(".spillway/databases/main");
    for round in 0..2 {
        let mut up = Spillway::start(&binary(), &["up"], dir.path());
        up.wait_for("spillway is up", START);
        let out = mariadb(rw, &format!("INSERT INTO notes VALUES ({round}, 'x')"));
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            eventually(REPLICATION, || text(&mariadb(
                ro,
                "SELECT COUNT(*) FROM notes"
            ))
            .trim()
                == (round + 1).to_string()),
            "never replicated"
        );
        let primary = logs_in(&state.join("data"), &["binlog."]);
        assert!(!primary.is_empty(), "the primary keeps no binary log");
        let reader = logs_in(&state.join("readers/1/data"), &["binlog.", "relay-bin."]);
        for log in primary.iter().chain(&reader) {
            let bytes = std::fs::read(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
            assert!(
                !bytes.windows(14).any(|w| w == b"app-password-1"),
                "{} holds the password",
                log.display()
            );
        }
        up.signal(Signal::SIGINT);
        assert!(
            up.wait_exit(Duration::from_secs(120)).success(),
            "{}",
            up.output()
        );
    }
}

/// A primary created anew (its data directory deleted between two runs) gets readers copied
/// from it, not the old ones: the read-only endpoint does not serve the old rows.
fn recreated_primary_gets_new_readers(engine: &Engine) {
    let (rw, ro) = (free_port(), free_port());
    let file = stack_file(engine.name, rw, ro).replace("readers = 2", "readers = 1");
    let dir = stack(&[("spillway.toml", &file), ("sql/schema.sql", engine.schema)]);
    let sql = |port: u16, q: &str| (engine.client)(port, q);
    let rows = |port: u16| {
        let out = sql(port, "SELECT id, body FROM notes ORDER BY id");
        String::from_utf8_lossy(&out.stdout).replace('|', "\t")
    };
    let run = |check: &dyn Fn()| {
        let mut up = Spillway::start(&binary(), &["up"], dir.path());
        up.wait_for("spillway is up", START);
        check();
        up.signal(Signal::SIGINT);
        assert!(
            up.wait_exit(Duration::from_secs(120)).success(),
            "{}",
            up.output()
        );
    };
    run(&|| {
        let out = sql(rw, "INSERT INTO notes VALUES (1, 'old')");
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            eventually(REPLICATION, || rows(ro) == "1\told\n"),
            "never replicated: {:?}",
            rows(ro)
        );
    });
    let data = dir.path().join(".spillway/databases/main/data");
    std::fs::remove_dir_all(&data).unwrap_or_else(|e| panic!("{}: {e}", data.display()));
    run(&|| {
        assert_eq!(
            rows(ro),
            "",
            "the read-only endpoint serves the old primary's rows"
        );
        assert_eq!(text(&sql(ro, engine.is_replica)).trim(), "1");
        let out = sql(rw, "INSERT INTO notes VALUES (2, 'new')");
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            eventually(REPLICATION, || rows(ro) == "2\tnew\n"),
            "the new primary does not replicate: {:?}",
            rows(ro)
        );
    });
}

#[test]
fn mariadb_readers_follow_a_recreated_primary() {
    recreated_primary_gets_new_readers(&MARIADB);
}

#[test]
fn postgres_readers_follow_a_recreated_primary() {
    recreated_primary_gets_new_readers(&POSTGRES);
}
