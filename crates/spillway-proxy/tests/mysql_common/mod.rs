//! What the MySQL proxy tests share: a stack with a managed MariaDB behind the proxy, and the
//! real clients (the mariadb CLI, PyMySQL, node mysql2) run against it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use spillway_testkit::{ProxyStack, require_tool};

/// A managed MariaDB (`databases.main`, database `shop`, users from `users`) behind
/// `proxies.main`, with `extra` appended to the stack and `proxy` lines added to the proxy.
/// `secrets` are (secret name, user, password).
pub async fn stack(secrets: &[(&str, &str, &str)], proxy: &str, extra: &str) -> ProxyStack {
    let users: Vec<String> = secrets.iter().map(|(s, _, _)| format!("\"{s}\"")).collect();
    let mut text = format!(
        "[stack]\nendpoint = \"127.0.0.1:0\"\n\n[databases.main]\nengine = \"mysql\"\nname = \"shop\"\n\
         users = [{}]\n\n",
        users.join(", ")
    );
    for (secret, user, password) in secrets {
        text.push_str(&format!(
            "[secrets.{secret}]\nusername = \"{user}\"\npassword = \"{password}\"\n\n"
        ));
    }
    let auth: Vec<String> = secrets
        .iter()
        .map(|(s, _, _)| format!("{{ secret = \"{s}\" }}"))
        .collect();
    let auth = if proxy.contains("auth =") {
        String::new()
    } else {
        format!("auth = [{}]\n", auth.join(", "))
    };
    text.push_str(&format!(
        "[proxies.main]\ndatabase = \"main\"\nlisten = \"127.0.0.1:0\"\n{auth}{proxy}\n\n{extra}\n"
    ));
    ProxyStack::from_toml(&text).await
}

pub fn mariadb_bin() -> PathBuf {
    require_tool("mariadb", "mariadb-client")
}

/// The mariadb CLI through the proxy: `-N -B -e sql`, the password in MYSQL_PWD.
pub fn mariadb(port: u16, user: &str, password: &str, args: &[&str], sql: &str) -> Output {
    Command::new(mariadb_bin())
        .args(["--no-defaults", "-N", "-B", "-h", "127.0.0.1", "-P"])
        .arg(port.to_string())
        .args(["-u", user])
        .args(args)
        .args(["-e", sql])
        .env("MYSQL_PWD", password)
        .output()
        .unwrap_or_else(|e| panic!("mariadb: {e}"))
}

/// Standard output without the mariadb CLI's warnings about options (it prints them there).
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with("WARNING: option"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).trim().to_owned()
}

/// SQL straight to the managed server as its administrator, over its socket.
pub fn admin(stack: &ProxyStack, sql: &str) -> String {
    let db = stack
        .running
        .as_ref()
        .and_then(|r| r.databases().next().cloned())
        .unwrap_or_else(|| panic!("no database"));
    let pw = db
        .admin_password_file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .unwrap_or_default();
    let socket = db
        .socket
        .unwrap_or_else(|| panic!("managed servers have a socket"));
    // The SQL goes on standard input: it may be longer than an argument can be.
    let mut child = Command::new(mariadb_bin())
        .args(["--no-defaults", "-N", "-B", "-u", &db.admin_user])
        .arg(format!("--socket={}", socket.display()))
        .env("MYSQL_PWD", pw.trim())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("mariadb: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin
            .write_all(sql.as_bytes())
            .unwrap_or_else(|e| panic!("mariadb stdin: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("mariadb: {e}"));
    assert!(
        out.status.success(),
        "admin SQL {sql:?} failed: {}",
        stderr(&out)
    );
    stdout(&out)
}

/// The server's connections of `user` (the proxy's server connections, seen from the server).
pub fn server_connections(stack: &ProxyStack, user: &str) -> usize {
    admin(
        stack,
        &format!("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '{user}'"),
    )
    .parse()
    .unwrap_or(usize::MAX)
}

/// Runs a Python script (PyMySQL; scripts/test installs it) with `args`; returns stdout.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    assert!(
        out.status.success(),
        "python failed (scripts/test installs PyMySQL):\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// `node tests/node/mysql_clients.js args...` (mysql2; scripts/test runs npm ci there);
/// returns its JSON line and whether it succeeded.
pub fn node(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/node/mysql_clients.js");
    let mut cmd = Command::new(require_tool("node", "nodejs"));
    cmd.arg(script).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("node: {e}"));
    let line = stdout(&out)
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_default()
        .to_owned();
    assert!(!line.is_empty(), "node printed no result: {}", stderr(&out));
    (out.status.success(), line)
}

/// A self-signed certificate for the proxy's listener.
pub fn certificate(dir: &std::path::Path) -> (String, String) {
    let (cert, key) = (dir.join("proxy.crt"), dir.join("proxy.key"));
    let out = Command::new(require_tool("openssl", "openssl"))
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(out.status.success(), "{}", stderr(&out));
    (cert.display().to_string(), key.display().to_string())
}
