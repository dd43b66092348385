//! Bad input and faults at start: each is one clear line, exit code 2, and nothing already on
//! disk is damaged.

mod common;

use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use spillway_testkit::{Spillway, free_port, processes_mentioning};

#[test]
fn a_configured_port_in_use_is_refused() {
    let port = free_port();
    let _taken = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| panic!("{e}"));
    let dir = stack(&[(
        "spillway.toml",
        &format!("[databases.main]\nengine = \"postgres\"\nport = {port}\n"),
    )]);
    let out = run(&["up"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "127.0.0.1:{port} (databases.main.port) is already in use"
        )),
        "{err}"
    );
    assert!(!dir.path().join(".spillway/databases/main/data").exists());
}

#[test]
fn a_missing_server_binary_names_the_package() {
    let dir = stack(&[("spillway.toml", "[databases.main]\nengine = \"postgres\"\n")]);
    let out = std::process::Command::new(binary())
        .arg("up")
        .current_dir(dir.path())
        .env("SPILLWAY_PG_BINDIR", "/nonexistent/bin")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("initdb was not found") && err.contains("apt-get install postgresql"),
        "{err}"
    );

    let dir = stack(&[("spillway.toml", "[databases.main]\nengine = \"mysql\"\n")]);
    let out = std::process::Command::new(binary())
        .arg("up")
        .current_dir(dir.path())
        .env("SPILLWAY_MARIADB_BINDIR", "/nonexistent/bin")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("mariadb-install-db was not found")
            && stderr(&out).contains("apt-get install mariadb-server"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_init_sql_fails_the_first_start_and_leaves_nothing_half_made() {
    let dir = stack(&[
        (
            "spillway.toml",
            "[databases.main]\nengine = \"postgres\"\ninit = [\"sql/schema.sql\"]\n",
        ),
        (
            "sql/schema.sql",
            "CREATE TABLE t (id int);\nINSERT INTO nope VALUES (1);\n",
        ),
    ]);
    let out = run(&["up"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("init file") && err.contains("relation \"nope\" does not exist"),
        "{err}"
    );
    let state = dir.path().join(".spillway/databases/main");
    assert!(
        !state.join("data").exists(),
        "a failed first start must not leave data/ behind"
    );
    assert!(processes_mentioning(&state.display().to_string()).is_empty());

    // Fixed, the next start creates the database from scratch.
    std::fs::write(
        dir.path().join("sql/schema.sql"),
        "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut up = Spillway::start(&binary(), &["up"], dir.path());
    up.wait_for("spillway is up", Duration::from_secs(120));
    assert!(!state.join("data.partial").exists());
    up.signal(Signal::SIGINT);
    assert!(
        up.wait_exit(Duration::from_secs(60)).success(),
        "{}",
        up.output()
    );
}

#[test]
fn a_data_directory_owned_by_someone_else_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: making a directory owned by another user needs root");
        return;
    }
    let dir = stack(&[("spillway.toml", "[databases.main]\nengine = \"postgres\"\n")]);
    let data = dir.path().join(".spillway/databases/main/data");
    std::fs::create_dir_all(&data).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(data.join("PG_VERSION"), "15\n").unwrap_or_else(|e| panic!("{e}"));
    nix::unistd::chown(
        &data,
        Some(nix::unistd::Uid::from_raw(54321)),
        Some(nix::unistd::Gid::from_raw(54321)),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = run(&["up"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("belongs to uid 54321"),
        "{}",
        stderr(&out)
    );
    // Untouched.
    assert_eq!(
        std::fs::read_to_string(data.join("PG_VERSION")).unwrap_or_default(),
        "15\n"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(&data).map(|m| m.uid()).unwrap_or(0),
        54321
    );
}
