//! External databases (`url = ...`) on the machine's own servers: checked, never written to
//! unless `apply_init = true`, and then only once.

mod common;

use std::time::Duration;

use common::*;
use nix::sys::signal::Signal;
use spillway_testkit::{SharedServer, Spillway};

fn up_and_down(dir: &std::path::Path) -> String {
    let mut up = Spillway::start(&binary(), &["up"], dir);
    up.wait_for("spillway is up", Duration::from_secs(60));
    up.signal(Signal::SIGINT);
    assert!(
        up.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        up.output()
    );
    up.output()
}

#[test]
fn external_postgres_with_apply_init_runs_init_once() {
    let db = SharedServer::postgres();
    let text = "[databases.ext]\nengine = \"postgres\"\nurl = \"${env:EXT_URL}\"\napply_init = true\ninit = [\"init.sql\"]\n";
    let dir = stack(&[
        ("spillway.toml", text),
        (
            "init.sql",
            "CREATE TABLE hits (n int);\nINSERT INTO hits VALUES (1);\n",
        ),
    ]);
    let mut up =
        Spillway::start_with_env(&binary(), &["up"], dir.path(), &[("EXT_URL", &db.url())]);
    let row = up.wait_for("databases.ext", Duration::from_secs(60));
    up.wait_for("spillway is up", Duration::from_secs(60));
    assert!(
        row.contains(&format!("/{}", db.dbname)) && row.contains("from its url"),
        "{row}"
    );
    up.signal(Signal::SIGINT);
    assert!(
        up.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        up.output()
    );
    let mut up =
        Spillway::start_with_env(&binary(), &["up"], dir.path(), &[("EXT_URL", &db.url())]);
    up.wait_for("spillway is up", Duration::from_secs(60));
    up.signal(Signal::SIGINT);
    assert!(
        up.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        up.output()
    );
    assert_eq!(
        db.sql("SELECT count(*) FROM hits").trim(),
        "1",
        "init must run once"
    );
}

#[test]
fn external_mysql_is_only_checked() {
    let db = SharedServer::mysql();
    let text = format!(
        "[databases.ext]\nengine = \"mysql\"\nurl = \"{}\"\ninit = [\"init.sql\"]\n",
        db.url()
    );
    let dir = stack(&[
        ("spillway.toml", &text),
        ("init.sql", "CREATE TABLE should_not_exist (n int);\n"),
    ]);
    let out = up_and_down(dir.path());
    assert!(out.contains("databases.ext"), "{out}");
    assert_eq!(
        db.sql("SHOW TABLES").trim(),
        "",
        "spillway wrote to a database it does not own"
    );
}

#[test]
fn an_unreachable_external_database_is_a_clear_error() {
    let port = spillway_testkit::free_port();
    let text = format!(
        "[databases.ext]\nengine = \"postgres\"\nurl = \"postgres://u:p@127.0.0.1:{port}/x\"\n"
    );
    let dir = stack(&[("spillway.toml", &text)]);
    let out = run(&["up"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "error: databases.ext: connecting to 127.0.0.1:{port} failed"
        )) && err.contains("Connection refused"),
        "{err}"
    );
}
