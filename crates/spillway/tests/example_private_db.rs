//! Report 003 on one machine, from `examples/private-db` as a user runs it: the database is
//! reachable only through the proxy, and the proxy only from the "private subnet".
//!
//! Two network namespaces stand in for two subnets: one inside `allow_from` (where the report
//! puts the Lambda, next to RDS) and one outside it (the Lambda "not in the VPC"). The proxy
//! listens on the host's address on the private subnet, 10.A.B.1, rather than 0.0.0.0: both
//! namespaces reach it (their default route is the host, which answers for all of its
//! addresses), so the refusal is allow_from's and not routing's, and nothing on the machine's
//! real interfaces can reach the proxy while the test runs. The function, on the host, connects
//! to that address too, so it arrives from 10.A.B.1, inside the private subnet.

mod common;
#[path = "common/netns.rs"]
mod netns;

use std::process::{Command, Output};
use std::time::Duration;

use common::{binary, example, generated_password};
use netns::Namespaces;
use spillway_testkit::{Spillway, free_port, require_tool};

const PRIVATE: usize = 0;
const OUTSIDE: usize = 1;

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The example listens on the documented ports; the test's copy takes free ones.
fn on_free_ports(toml: &str, endpoint: u16, api: u16) -> String {
    toml.replace(
        "[stack]\n",
        &format!("[stack]\nendpoint = \"127.0.0.1:{endpoint}\"\n"),
    )
    .replace(
        "[apis.items]\n",
        &format!("[apis.items]\nlisten = \"127.0.0.1:{api}\"\n"),
    )
}

fn listeners() -> String {
    let out = Command::new("ss")
        .args(["-H", "-l", "-t", "-n", "-p"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run ss: {e}"));
    assert!(out.status.success(), "ss: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_database_is_reachable_only_through_the_proxy_and_the_proxy_only_from_allow_from() {
    for (tool, package) in [
        ("psql", "postgresql-client"),
        ("ip", "iproute2"),
        ("ss", "iproute2"),
        ("runuser", "util-linux"),
        ("curl", "curl"),
    ] {
        require_tool(tool, package);
    }
    let nets = Namespaces::create(2);
    let (private, outside) = (&nets.subnets[PRIVATE], &nets.subnets[OUTSIDE]);

    let dir = example("private-db");
    let stack = dir.path().join("spillway.toml");
    let toml = std::fs::read_to_string(&stack).unwrap_or_else(|e| panic!("{e}"));
    let api_port = free_port();
    std::fs::write(&stack, on_free_ports(&toml, free_port(), api_port))
        .unwrap_or_else(|e| panic!("{e}"));
    let proxy = format!("{}:{}", private.host_addr, free_port());
    let mut up = Spillway::start_with_env(
        &binary(),
        &["up", "."],
        dir.path(),
        &[
            ("PRIVATE_DB_LISTEN", proxy.as_str()),
            ("PRIVATE_DB_SUBNET", private.cidr.as_str()),
        ],
    );
    // The first start makes the database and runs `npm ci` for the function.
    up.wait_for("spillway is up", Duration::from_secs(300));
    let (host, port) = proxy.split_once(':').unwrap_or_else(|| panic!("{proxy}"));
    let conninfo =
        format!("host={host} port={port} dbname=main user=app sslmode=disable connect_timeout=20");
    let password = generated_password(dir.path(), "app");
    let psql_env = [("PGPASSWORD", password.as_str())];
    let query = "SELECT current_user || ' ' || count(*) FROM items";

    // Inside the private subnet: psql logs in through the proxy and reads.
    let inside = nets.exec(
        PRIVATE,
        "psql",
        &["-X", "-A", "-t", "-c", query, &conninfo],
        &psql_env,
    );
    assert!(inside.status.success(), "{}", text(&inside));
    assert_eq!(String::from_utf8_lossy(&inside.stdout).trim(), "app 3");

    // Outside it: the proxy closes the connection before any byte, and says so with the peer.
    let refused = nets.exec(
        OUTSIDE,
        "psql",
        &["-X", "-A", "-t", "-c", query, &conninfo],
        &psql_env,
    );
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("server closed the connection"),
        "the peer reached the proxy and was dropped, not unroutable: {}",
        text(&refused)
    );
    let line = up.wait_for(
        "refused a connection from outside allow_from",
        Duration::from_secs(30),
    );
    assert!(
        line.contains(&format!("peer={}:", outside.peer_addr)),
        "{line}"
    );
    assert!(
        !up.seen.iter().any(|l| l.contains("outside allow_from")
            && l.contains(&format!("peer={}:", private.peer_addr))),
        "the private subnet's client was refused:\n{}",
        up.output()
    );

    // The function behind the API, on the host, reaches the proxy from 10.A.B.1 (inside
    // allow_from), and the proxy reaches PostgreSQL over its Unix socket.
    let answer = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{api_port}/items"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run curl: {e}"));
    let body = String::from_utf8_lossy(&answer.stdout).into_owned();
    let (json, status) = body.rsplit_once('\n').unwrap_or((&body, ""));
    assert_eq!(status, "200", "{body}\n{}", up.output());
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let names: Vec<&str> = v["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        ["private subnet", "security group", "rds proxy"],
        "{json}"
    );
    assert_eq!(v["server"]["via"], "unix socket", "{json}");
    assert_eq!(v["server"]["user"], "app", "{json}");

    // The server has no TCP listener; the proxy has one (so `ss -p` does show pids here).
    let data = dir.path().join(".spillway/databases/main/data");
    let pid_text =
        std::fs::read_to_string(data.join("postmaster.pid")).unwrap_or_else(|e| panic!("{e}"));
    let server_pid = pid_text.lines().next().unwrap_or_default().trim();
    assert!(!server_pid.is_empty(), "{pid_text}");
    let listening = listeners();
    assert!(
        listening
            .lines()
            .any(|l| l.contains(&proxy) && l.contains(&format!("pid={},", up.pid()))),
        "the proxy's listener is not in ss's output:\n{listening}"
    );
    assert!(
        !listening
            .lines()
            .any(|l| l.contains(&format!("pid={server_pid},"))),
        "PostgreSQL (pid {server_pid}) listens on TCP:\n{listening}"
    );

    // Its socket: root (spillway's user here) gets in; another OS user does not.
    let sockets = dir.path().join(".spillway/databases/main/run");
    assert!(
        sockets.join(".s.PGSQL.5432").exists(),
        "no socket in {}",
        sockets.display()
    );
    let admin = std::fs::read_to_string(dir.path().join(".spillway/databases/main/admin-password"))
        .unwrap_or_else(|e| panic!("{e}"));
    let socket_args = |psql: &mut Command| {
        psql.args(["-X", "-A", "-t", "-h"])
            .arg(&sockets)
            .args(["-U", "spillway", "-d", "main", "-c", "SELECT 1"])
            .env("PGPASSWORD", admin.trim())
            .current_dir("/");
    };
    let mut own = Command::new("psql");
    socket_args(&mut own);
    let own = own.output().unwrap_or_else(|e| panic!("{e}"));
    assert!(own.status.success(), "{}", text(&own));
    let nobody = Command::new("id").args(["-u", "nobody"]).output();
    if nobody.is_ok_and(|o| o.status.success()) {
        // The stranger gets as far as the databases' directory, so what stops it below is the
        // database's own directories and not some parent of the test's.
        let databases = dir.path().join(".spillway/databases");
        let reach = Command::new("runuser")
            .args(["-u", "nobody", "--", "test", "-x"])
            .arg(&databases)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            reach.status.success(),
            "nobody cannot even reach {}; the checks below would prove nothing",
            databases.display()
        );
        // The server's files (its log holds statements' errors) are closed too.
        let log = Command::new("runuser")
            .args(["-u", "nobody", "--", "cat"])
            .arg(databases.join("main/postgres.log"))
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!log.status.success(), "{}", text(&log));
        assert!(
            String::from_utf8_lossy(&log.stderr).contains("Permission denied"),
            "{}",
            text(&log)
        );
        let mut other = Command::new("runuser");
        other.args(["-u", "nobody", "--", "psql"]);
        socket_args(&mut other);
        let other = other.output().unwrap_or_else(|e| panic!("{e}"));
        assert!(!other.status.success(), "{}", text(&other));
        assert!(
            String::from_utf8_lossy(&other.stderr).contains("Permission denied"),
            "{}",
            text(&other)
        );
    } else {
        eprintln!("skipped the other-user check: this machine has no unprivileged user `nobody`");
    }

    up.signal(nix::sys::signal::Signal::SIGTERM);
    up.wait_exit(Duration::from_secs(60));
}
