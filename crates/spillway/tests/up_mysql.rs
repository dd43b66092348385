//! `spillway up` with a managed MariaDB, checked with the real mariadb client.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use spillway_testkit::{Spillway, eventually, processes_mentioning, require_tool};

fn mysql(port: u16, user: &str, password: Option<&str>, sql: &str) -> std::process::Output {
    let mut cmd = Command::new(require_tool("mariadb", "mariadb-client"));
    cmd.args([
        "--no-defaults",
        "-N",
        "-B",
        "-h",
        "127.0.0.1",
        "-P",
        &port.to_string(),
        "-u",
        user,
        "--database=shop",
        "-e",
        sql,
    ]);
    if let Some(p) = password {
        cmd.env("MYSQL_PWD", p);
    }
    cmd.output().unwrap_or_else(|e| panic!("mariadb: {e}"))
}

const STACK: &str = r#"
[stack]
name = "shop"
endpoint = "127.0.0.1:0"

[databases.main]
engine = "mysql"
name = "shop"
init = ["sql/schema.sql"]
users = ["app"]
# This test checks what a client on the network sees (no password-less accounts).
tcp = true

[secrets.app]
username = "app"
password = { generate = true, length = 24 }
"#;

const SCHEMA: &str = "
DELIMITER //
CREATE PROCEDURE seed() BEGIN INSERT INTO users (name) VALUES ('Aiko'), ('Ben'); END //
DELIMITER ;
CREATE TABLE users (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL);
CALL seed();
";

#[test]
fn managed_mariadb_with_init_users_and_clean_stop() {
    let dir = stack(&[("spillway.toml", STACK), ("sql/schema.sql", SCHEMA)]);
    let data = dir
        .path()
        .join(".spillway/databases/main/data")
        .display()
        .to_string();
    let mut up = Spillway::start(&binary(), &["up"], dir.path());
    up.wait_for(
        "creating a MariaDB data directory",
        Duration::from_secs(120),
    );
    up.wait_for("spillway is up", Duration::from_secs(120));
    let port: u16 = read_trimmed(&dir.path().join(".spillway/databases/main/port"))
        .parse()
        .unwrap_or_default();

    // The init file (with DELIMITER, as the mariadb client understands it) ran once.
    let app = generated_password(dir.path(), "app");
    assert_eq!(app.chars().count(), 24);
    let out = mysql(
        port,
        "app",
        Some(&app),
        "SELECT name FROM users ORDER BY id",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Aiko\nBen\n");

    // No password-less accounts: root without a password is refused over TCP, and so is a
    // wrong password for the app user.
    let out = mysql(port, "root", None, "SELECT 1");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ERROR 1045"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = mysql(port, "app", Some("wrong"), "SELECT 1");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ERROR 1045"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = read_trimmed(&dir.path().join(".spillway/databases/main/admin-password"));
    let out = mysql(
        port,
        "root",
        Some(&admin),
        "SELECT COUNT(*) FROM mysql.global_priv WHERE User = ''",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");

    up.signal(Signal::SIGTERM);
    assert!(
        up.wait_exit(Duration::from_secs(90)).success(),
        "{}",
        up.output()
    );
    assert!(
        processes_mentioning(&data).is_empty(),
        "mariadbd outlived spillway"
    );

    // kill -9, then a restart finds the data.
    let mut up = Spillway::start(&binary(), &["up"], dir.path());
    up.wait_for("spillway is up", Duration::from_secs(120));
    up.signal(Signal::SIGKILL);
    let _ = up.wait_exit(Duration::from_secs(10));
    assert!(
        eventually(Duration::from_secs(60), || processes_mentioning(&data)
            .is_empty()),
        "mariadbd outlived a killed spillway"
    );
    let mut up = Spillway::start(&binary(), &["up"], dir.path());
    up.wait_for("spillway is up", Duration::from_secs(120));
    let port: u16 = read_trimmed(&dir.path().join(".spillway/databases/main/port"))
        .parse()
        .unwrap_or_default();
    let out = mysql(port, "app", Some(&app), "SELECT COUNT(*) FROM users");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "2",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    up.signal(Signal::SIGINT);
    assert!(up.wait_exit(Duration::from_secs(90)).success());
}

#[test]
fn managed_mariadb_listens_only_on_its_socket_by_default() {
    let dir = stack(&[(
        "spillway.toml",
        "[stack]\nendpoint = \"127.0.0.1:0\"\n\n[databases.main]\nengine = \"mysql\"\nname = \"shop\"\nusers = [\"app\"]\n\n\
         [secrets.app]\nusername = \"app\"\npassword = \"app-password\"\n",
    )]);
    let mut up = Spillway::start(&binary(), &["up"], dir.path());
    let row = up.wait_for(
        "databases.main  mysql://root@localhost/shop?socket=",
        Duration::from_secs(120),
    );
    up.wait_for("spillway is up", Duration::from_secs(120));
    let socket = row
        .split("?socket=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_default()
        .to_owned();
    assert!(!dir.path().join(".spillway/databases/main/port").exists());
    let out = Command::new(require_tool("mariadb", "mariadb-client"))
        .args([
            "--no-defaults",
            "-N",
            "-B",
            "--socket",
            &socket,
            "-u",
            "app",
        ])
        .args(["--database=shop", "-e", "SELECT @@skip_networking"])
        .env("MYSQL_PWD", "app-password")
        .output()
        .unwrap_or_else(|e| panic!("mariadb: {e}"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    up.signal(Signal::SIGINT);
    assert!(up.wait_exit(Duration::from_secs(90)).success());
}
