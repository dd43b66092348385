//! A read-only endpoint over a MariaDB replica: two mariadbd processes started here (a primary
//! with a binary log, a replica with `read_only` that follows it), the proxy's default endpoint
//! on the primary and its read-only endpoint on the replica, found by `@@read_only` as RDS
//! Proxy's reader endpoint reaches Aurora readers.

mod mysql_common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mysql_common::*;
use spillway_testkit::{ProxyStack, eventually, free_port, require_tool};

/// A mariadbd of the test's own; killed when dropped.
struct Server {
    child: Child,
    port: u16,
    socket: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mariadbd_binary(name: &str) -> std::path::PathBuf {
    ["/usr/sbin", "/usr/bin"]
        .iter()
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| require_tool(name, "mariadb-server"))
}

fn start(server_id: u32, extra: &[&str]) -> Server {
    let dir = tempfile::Builder::new()
        .prefix("spillway-replica-")
        .tempdir()
        .unwrap_or_else(|e| panic!("{e}"));
    let data = dir.path().join("data");
    let root = nix::unistd::Uid::effective().is_root();
    let mut install = Command::new(mariadbd_binary("mariadb-install-db"));
    install
        .args([
            "--no-defaults",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ])
        .arg(format!("--datadir={}", data.display()));
    if root {
        install.arg("--user=root");
    }
    let out = install
        .output()
        .unwrap_or_else(|e| panic!("mariadb-install-db: {e}"));
    assert!(out.status.success(), "{}", stderr(&out));
    let port = free_port();
    let socket = dir.path().join("mysqld.sock");
    let mut cmd = Command::new(mariadbd_binary("mariadbd"));
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", socket.display()))
        .arg(format!("--port={port}"))
        .args([
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=16M",
        ])
        .arg(format!("--server-id={server_id}"))
        .arg(format!("--pid-file={}", dir.path().join("pid").display()))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if root {
        cmd.arg("--user=root");
    }
    let child = cmd.spawn().unwrap_or_else(|e| panic!("mariadbd: {e}"));
    let server = Server {
        child,
        port,
        socket,
        _dir: dir,
    };
    assert!(
        eventually(Duration::from_secs(60), || root_sql(&server, "SELECT 1")
            .is_ok()),
        "mariadbd {server_id} did not start"
    );
    server
}

fn root_sql(s: &Server, sql: &str) -> Result<String, String> {
    let out = Command::new(mariadb_bin())
        .args(["--no-defaults", "-N", "-B", "-u", "root"])
        .arg(format!("--socket={}", s.socket.display()))
        .args(["-e", sql])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(stdout(&out))
    } else {
        Err(stderr(&out))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_read_only_endpoint_reads_from_the_replica() {
    let primary = start(1, &["--log-bin=binlog"]);
    let replica = start(2, &["--read-only"]);
    root_sql(
        &primary,
        "CREATE USER 'repl'@'%' IDENTIFIED BY 'repl-pw'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%'; \
         CREATE DATABASE shop; CREATE TABLE shop.t (v TEXT); \
         CREATE USER 'app'@'%' IDENTIFIED BY 'app-password'; GRANT ALL ON shop.* TO 'app'@'%'",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    root_sql(
        &replica,
        &format!(
            "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = {}, MASTER_USER = 'repl', \
             MASTER_PASSWORD = 'repl-pw', MASTER_LOG_FILE = 'binlog.000001', MASTER_LOG_POS = 4; \
             START SLAVE",
            primary.port
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        eventually(Duration::from_secs(30), || {
            root_sql(
                &replica,
                "SELECT COUNT(*) FROM mysql.user WHERE user = 'app'",
            )
            .as_deref()
                == Ok("1")
        }),
        "the replica did not catch up"
    );
    let stack = ProxyStack::from_toml(&format!(
        "[stack]\nendpoint = \"127.0.0.1:0\"\n\n[databases.main]\nengine = \"mysql\"\n\
         url = \"mysql://app:app-password@127.0.0.1:{}/shop\"\n\
         replicas = [\"mysql://app:app-password@127.0.0.1:{}/shop\"]\n\n\
         [secrets.app]\nusername = \"app\"\npassword = \"app-password\"\n\n\
         [proxies.main]\ndatabase = \"main\"\nlisten = \"127.0.0.1:0\"\nauth = [{{ secret = \"app\" }}]\n\n\
         [proxies.main.endpoints.reader]\nlisten = \"127.0.0.1:0\"\nrole = \"read-only\"\n",
        primary.port, replica.port
    ))
    .await;
    let (writer, reader) = (stack.port(), stack.endpoint_port("reader"));
    let ask = |port: u16, sql: &str| mariadb(port, "app", "app-password", &["shop"], sql);
    // The topology monitor needs a probe round to know which server is which.
    assert!(eventually(Duration::from_secs(20), || stdout(&ask(
        reader,
        "SELECT @@server_id"
    )) == "2"));
    assert_eq!(stdout(&ask(writer, "SELECT @@server_id")), "1");
    let out = ask(writer, "INSERT INTO t VALUES ('written on the primary')");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(eventually(Duration::from_secs(20), || {
        stdout(&ask(reader, "SELECT v FROM t")) == "written on the primary"
    }));
    // The replica refuses writes, with its own error.
    let out = ask(reader, "INSERT INTO t VALUES ('no')");
    assert!(stderr(&out).contains("ERROR 1290"), "{}", stderr(&out));
    stack.stop().await;
}
