//! Reloading a stack under connected MySQL clients: a user added to the proxy can log in and the
//! pool's cap changes, while a client connected before keeps its session (and its state).

mod mysql_common;

use mysql_common::*;

const STACK: &str = "[stack]\nendpoint = \"127.0.0.1:0\"\n\n[databases.main]\nengine = \"mysql\"\nname = \"shop\"\n\
    users = [\"app\", \"ops\"]\n\n[secrets.app]\nusername = \"app\"\npassword = \"app-password\"\n\n\
    [secrets.ops]\nusername = \"ops\"\npassword = \"ops-password\"\n\n\
    [proxies.main]\ndatabase = \"main\"\nlisten = \"127.0.0.1:0\"\n";

#[tokio::test(flavor = "multi_thread")]
async fn reload_adds_users_and_changes_caps_without_dropping_clients() {
    let mut stack = spillway_testkit::ProxyStack::from_toml(&format!(
        "{STACK}auth = [{{ secret = \"app\" }}]\nmax_connections = 2\n"
    ))
    .await;
    let port = stack.port();
    // A client that stays connected across the reload, with a session variable set.
    let mut client = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import sys, pymysql
c = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user="app", password="app-password", database="shop", autocommit=True)
cur = c.cursor()
cur.execute("SET time_zone = '+03:00'")
print("ready", flush=True)
sys.stdin.readline()
cur.execute("SELECT @@time_zone")
print(cur.fetchone()[0], flush=True)
"#,
        )
        .arg(port.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    let mut out = std::io::BufReader::new(client.stdout.take().unwrap_or_else(|| panic!("stdout")));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(line.trim(), "ready");

    let refused = mariadb(port, "ops", "ops-password", &["shop"], "SELECT 1");
    assert!(
        stderr(&refused).contains("ERROR 1045"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(stack.metric("MaxDatabaseConnectionsAllowed").await, 2.0);

    std::fs::write(
        stack.dir.path().join("spillway.toml"),
        format!(
            "{STACK}auth = [{{ secret = \"app\" }}, {{ secret = \"ops\" }}]\nmax_connections = 3\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let loaded = spillway_stack::load(stack.dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let notes = stack
        .running
        .as_mut()
        .map(|r| r.reload(&loaded))
        .unwrap_or_else(|| panic!("not running"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        notes.iter().all(|n| !n.contains("proxies.main")),
        "{notes:?}"
    );

    let ok = mariadb(
        port,
        "ops",
        "ops-password",
        &["shop"],
        "SELECT CURRENT_USER()",
    );
    assert_eq!(stdout(&ok), "ops@%", "{}", stderr(&ok));
    assert_eq!(stack.metric("MaxDatabaseConnectionsAllowed").await, 3.0);
    if let Some(mut stdin) = client.stdin.take() {
        std::io::Write::write_all(&mut stdin, b"go\n").unwrap_or_else(|e| panic!("{e}"));
    }
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        line.trim(),
        "+03:00",
        "the client connected before the reload kept its session"
    );
    assert!(client.wait().map(|s| s.success()).unwrap_or(false));
    stack.stop().await;
}
